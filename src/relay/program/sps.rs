//! The picture a video stream carries, read from its sequence parameter set (H.264 and HEVC)
//! or sequence header (MPEG-2): the displayed size (cropping applied, a field-coded picture
//! counted as its frame), the frame rate when the stream states it, and whether it is
//! interlaced. Outside input: every read is bounded and a short or absurd set gives `None`.

use super::psi::Codec;

/// What a sequence parameter set says of the picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    /// Frames per second, from the VUI timing (or MPEG-2's frame rate code).
    pub frame_rate: Option<f64>,
    pub interlaced: bool,
}

/// The largest picture side believed: H.264 and HEVC levels stop at 8K.
const MAX_SIDE: u64 = 16_384;

/// Whether a NAL (or MPEG-2 start code) header byte opens the codec's sequence parameter set.
pub fn is_sequence_header(codec: Codec, header: u8) -> bool {
    match codec {
        Codec::H264 => header & 0x1f == 7,
        Codec::Hevc => (header >> 1) & 0x3f == 33,
        Codec::Mpeg2 => header == 0xb3,
        Codec::Other => false,
    }
}

/// Parses one unit from its header byte on (after the start code), emulation prevention
/// bytes included.
pub fn parse(codec: Codec, unit: &[u8]) -> Option<Picture> {
    match codec {
        Codec::H264 => h264(&unit[..nal_end(unit)]),
        Codec::Hevc => hevc(&unit[..nal_end(unit)]),
        Codec::Mpeg2 => mpeg2(unit),
        Codec::Other => None,
    }
}

/// Where the NAL unit that `data` begins with ends: at the next start code, or at `00 00 00` or
/// `00 00 02` (which emulation prevention keeps out of a unit); else at the end of `data`.
pub fn nal_end(data: &[u8]) -> usize {
    data.windows(3)
        .position(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2)
        .unwrap_or(data.len())
}

/// An RBSP read bit by bit, emulation prevention bytes (`00 00 03`) dropped on the way.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
    zeros: u8,
    current: u8,
    left: u8,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Bits<'a> {
        Bits {
            data,
            at: 0,
            zeros: 0,
            current: 0,
            left: 0,
        }
    }

    fn byte(&mut self) -> Option<u8> {
        let mut byte = *self.data.get(self.at)?;
        self.at += 1;
        if self.zeros >= 2 && byte == 3 {
            self.zeros = 0;
            byte = *self.data.get(self.at)?;
            self.at += 1;
        }
        self.zeros = if byte == 0 { self.zeros + 1 } else { 0 };
        Some(byte)
    }

    fn bit(&mut self) -> Option<u32> {
        if self.left == 0 {
            self.current = self.byte()?;
            self.left = 8;
        }
        self.left -= 1;
        Some(u32::from((self.current >> self.left) & 1))
    }

    fn flag(&mut self) -> Option<bool> {
        self.bit().map(|b| b == 1)
    }

    /// `n` bits (at most 32), most significant first.
    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |v, _| Some((v << 1) | self.bit()?))
    }

    fn skip(&mut self, n: u32) -> Option<()> {
        (0..n).try_for_each(|_| self.bit().map(drop))
    }

    /// Exp-Golomb, unsigned; values past 32 bits are refused.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some(((1u64 << zeros) - 1 + u64::from(self.bits(zeros)?)) as u32)
    }

    /// An unsigned Exp-Golomb value that must be at most `max`.
    fn ue_max(&mut self, max: u32) -> Option<u32> {
        self.ue().filter(|&v| v <= max)
    }

    fn se(&mut self) -> Option<i32> {
        let v = i64::from(self.ue()?);
        Some(if v % 2 == 1 { (v + 1) / 2 } else { -(v / 2) } as i32)
    }
}

/// A frame rate from VUI timing: `time_scale / (ticks_per_frame × num_units_in_tick)`.
fn rate(time_scale: u32, num_units: u32, ticks_per_frame: u32) -> Option<f64> {
    let divisor = f64::from(num_units) * f64::from(ticks_per_frame);
    let rate = f64::from(time_scale) / divisor;
    (num_units > 0 && time_scale > 0 && (0.5..=1000.0).contains(&rate)).then_some(rate)
}

fn side(value: u64) -> Option<u32> {
    (1..=MAX_SIDE).contains(&value).then_some(value as u32)
}

/// H.264 (ITU-T H.264 7.3.2.1.1 and Annex E).
fn h264(unit: &[u8]) -> Option<Picture> {
    let mut b = Bits::new(unit.get(1..)?);
    let profile = b.bits(8)?;
    b.skip(16)?; // constraint flags, level
    b.ue_max(31)?; // seq_parameter_set_id
    let mut chroma_format = 1;
    let mut separate_planes = false;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format = b.ue_max(3)?;
        if chroma_format == 3 {
            separate_planes = b.flag()?;
        }
        b.ue_max(6)?; // bit_depth_luma_minus8
        b.ue_max(6)?; // bit_depth_chroma_minus8
        b.skip(1)?; // qpprime_y_zero_transform_bypass_flag
        if b.flag()? {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if b.flag()? {
                    h264_scaling_list(&mut b, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    b.ue_max(12)?; // log2_max_frame_num_minus4
    match b.ue_max(2)? {
        0 => {
            b.ue_max(12)?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            b.skip(1)?; // delta_pic_order_always_zero_flag
            b.se()?; // offset_for_non_ref_pic
            b.se()?; // offset_for_top_to_bottom_field
            for _ in 0..b.ue_max(255)? {
                b.se()?;
            }
        }
        _ => {}
    }
    b.ue()?; // max_num_ref_frames
    b.skip(1)?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(b.ue()?) + 1;
    let height_units = u64::from(b.ue()?) + 1;
    let frame_mbs_only = b.flag()?;
    if !frame_mbs_only {
        b.skip(1)?; // mb_adaptive_frame_field_flag
    }
    b.skip(1)?; // direct_8x8_inference_flag
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let (sub_width, sub_height) = match (chroma_format, separate_planes) {
        (0, _) | (3, true) => (1, 1),
        (1, _) => (2, 2),
        (2, _) => (2, 1),
        _ => (1, 1),
    };
    let monochrome_like = chroma_format == 0 || separate_planes;
    let crop_x = if monochrome_like { 1 } else { sub_width };
    let crop_y = field_factor * if monochrome_like { 1 } else { sub_height };
    let mut crop = [0u64; 4];
    if b.flag()? {
        for c in &mut crop {
            *c = u64::from(b.ue()?);
        }
    }
    let width = (width_mbs * 16).checked_sub(crop_x * (crop[0] + crop[1]))?;
    let height = (field_factor * height_units * 16).checked_sub(crop_y * (crop[2] + crop[3]))?;
    let frame_rate = if b.flag()? {
        h264_vui_rate(&mut b)
    } else {
        None
    };
    Some(Picture {
        width: side(width)?,
        height: side(height)?,
        frame_rate,
        interlaced: !frame_mbs_only,
    })
}

fn h264_scaling_list(b: &mut Bits, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            // delta_scale is -128..=127; anything else is not H.264 (and would overflow).
            let delta = b.se().filter(|d| (-128..=127).contains(d))?;
            next = (last + delta + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// The frame rate an H.264 VUI states: a tick is a field, two to a frame.
fn h264_vui_rate(b: &mut Bits) -> Option<f64> {
    if b.flag()? && b.bits(8)? == 255 {
        b.skip(32)?; // sar_width, sar_height
    }
    if b.flag()? {
        b.skip(1)?; // overscan_appropriate_flag
    }
    if b.flag()? {
        b.skip(4)?; // video_format, video_full_range_flag
        if b.flag()? {
            b.skip(24)?; // colour_primaries, transfer, matrix
        }
    }
    if b.flag()? {
        b.ue()?;
        b.ue()?; // chroma_sample_loc_type top and bottom
    }
    if !b.flag()? {
        return None;
    }
    let num_units = b.bits(32)?;
    let time_scale = b.bits(32)?;
    rate(time_scale, num_units, 2)
}

/// HEVC (ITU-T H.265 7.3.2.2 and Annex E).
fn hevc(unit: &[u8]) -> Option<Picture> {
    let mut b = Bits::new(unit.get(2..)?);
    b.skip(4)?; // sps_video_parameter_set_id
    let sub_layers = b.bits(3)?; // sps_max_sub_layers_minus1
    b.skip(1)?; // sps_temporal_id_nesting_flag
    // profile_tier_level: the general profile, then what each sub-layer has.
    b.skip(8 + 32)?; // profile space, tier, profile idc; compatibility flags
    let progressive_source = b.flag()?;
    let interlaced_source = b.flag()?;
    b.skip(2 + 43 + 1 + 8)?; // non_packed, frame_only, reserved, inbld, general_level_idc
    let mut present = [(false, false); 8];
    for p in present.iter_mut().take(sub_layers as usize) {
        *p = (b.flag()?, b.flag()?);
    }
    if sub_layers > 0 {
        b.skip(2 * (8 - sub_layers))?;
    }
    for &(profile, level) in present.iter().take(sub_layers as usize) {
        if profile {
            b.skip(88)?;
        }
        if level {
            b.skip(8)?;
        }
    }
    b.ue_max(15)?; // sps_seq_parameter_set_id
    let chroma_format = b.ue_max(3)?;
    let separate_planes = chroma_format == 3 && b.flag()?;
    let width = u64::from(b.ue()?);
    let height = u64::from(b.ue()?);
    let (sub_width, sub_height) = match (chroma_format, separate_planes) {
        (1, _) => (2, 2),
        (2, _) => (2, 1),
        _ => (1, 1),
    };
    let mut window = [0u64; 4];
    if b.flag()? {
        for w in &mut window {
            *w = u64::from(b.ue()?);
        }
    }
    let width = width.checked_sub(sub_width * (window[0] + window[1]))?;
    let height = height.checked_sub(sub_height * (window[2] + window[3]))?;
    let vui = hevc_vui(&mut b, sub_layers);
    let field_coded = vui.is_some_and(|v| v.field_seq);
    // A field-coded picture is one field: the frame has twice its lines, at half the rate.
    let fields: u32 = if field_coded { 2 } else { 1 };
    Some(Picture {
        width: side(width)?,
        height: side(height * u64::from(fields))?,
        frame_rate: vui.and_then(|v| v.rate).map(|r| r / f64::from(fields)),
        interlaced: field_coded || (interlaced_source && !progressive_source),
    })
}

#[derive(Debug, Clone, Copy)]
struct HevcVui {
    field_seq: bool,
    rate: Option<f64>,
}

/// Reads from after the conformance window through the VUI; `None` when the SPS has no VUI or
/// is cut short before its field flag.
fn hevc_vui(b: &mut Bits, sub_layers: u32) -> Option<HevcVui> {
    b.ue_max(8)?; // bit_depth_luma_minus8
    b.ue_max(8)?; // bit_depth_chroma_minus8
    let poc_lsb_bits = b.ue_max(12)? + 4;
    let ordering_all = b.flag()?;
    let first = if ordering_all { 0 } else { sub_layers };
    for _ in first..=sub_layers {
        b.ue()?;
        b.ue()?;
        b.ue()?;
    }
    for _ in 0..6 {
        b.ue()?; // block sizes and transform hierarchy depths
    }
    if b.flag()? && b.flag()? {
        hevc_scaling_list_data(b)?;
    }
    b.skip(2)?; // amp_enabled_flag, sample_adaptive_offset_enabled_flag
    if b.flag()? {
        b.skip(8)?; // pcm sample bit depths
        b.ue()?;
        b.ue()?;
        b.skip(1)?; // pcm_loop_filter_disabled_flag
    }
    let sets = b.ue_max(64)? as usize;
    let mut delta_pocs = [0u32; 64];
    for i in 0..sets {
        delta_pocs[i] = hevc_short_term_set(b, i, &delta_pocs)?;
    }
    if b.flag()? {
        for _ in 0..b.ue_max(32)? {
            b.skip(poc_lsb_bits + 1)?;
        }
    }
    b.skip(2)?; // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
    if !b.flag()? {
        return None;
    }
    if b.flag()? && b.bits(8)? == 255 {
        b.skip(32)?;
    }
    if b.flag()? {
        b.skip(1)?;
    }
    if b.flag()? {
        b.skip(4)?;
        if b.flag()? {
            b.skip(24)?;
        }
    }
    if b.flag()? {
        b.ue()?;
        b.ue()?;
    }
    b.skip(1)?; // neutral_chroma_indication_flag
    let field_seq = b.flag()?;
    let mut vui = HevcVui {
        field_seq,
        rate: None,
    };
    let timing = (|| {
        b.skip(1)?; // frame_field_info_present_flag
        if b.flag()? {
            for _ in 0..4 {
                b.ue()?; // default display window
            }
        }
        if !b.flag()? {
            return None;
        }
        let num_units = b.bits(32)?;
        let time_scale = b.bits(32)?;
        rate(time_scale, num_units, 1)
    })();
    vui.rate = timing;
    Some(vui)
}

fn hevc_scaling_list_data(b: &mut Bits) -> Option<()> {
    for size in 0..4u32 {
        let step = if size == 3 { 3 } else { 1 };
        for _ in (0..6).step_by(step) {
            if !b.flag()? {
                b.ue()?; // scaling_list_pred_matrix_id_delta
                continue;
            }
            let coefficients = 64.min(1 << (4 + (size << 1)));
            if size > 1 {
                b.se()?; // scaling_list_dc_coef_minus8
            }
            for _ in 0..coefficients {
                b.se()?;
            }
        }
    }
    Some(())
}

/// One `st_ref_pic_set` of the SPS; returns its number of delta POCs, which a later set
/// predicted from it needs.
fn hevc_short_term_set(b: &mut Bits, index: usize, delta_pocs: &[u32; 64]) -> Option<u32> {
    if index > 0 && b.flag()? {
        b.skip(1)?; // delta_rps_sign
        b.ue_max(1 << 15)?; // abs_delta_rps_minus1
        let mut count = 0;
        for _ in 0..=delta_pocs[index - 1] {
            let used = b.flag()?;
            if used || b.flag()? {
                count += 1;
            }
        }
        return Some(count);
    }
    let negative = b.ue_max(16)?;
    let positive = b.ue_max(16)?;
    for _ in 0..negative + positive {
        b.ue()?;
        b.skip(1)?;
    }
    Some(negative + positive)
}

/// MPEG-2 (ISO 13818-2 6.2.2.1): the sequence header, and its extension when it follows.
fn mpeg2(unit: &[u8]) -> Option<Picture> {
    let mut b = Bits::new(unit.get(1..)?);
    let width = b.bits(12)?;
    let height = b.bits(12)?;
    b.skip(4)?; // aspect_ratio_information
    let frame_rate = match b.bits(4)? {
        1 => Some(24000.0 / 1001.0),
        2 => Some(24.0),
        3 => Some(25.0),
        4 => Some(30000.0 / 1001.0),
        5 => Some(30.0),
        6 => Some(50.0),
        7 => Some(60000.0 / 1001.0),
        8 => Some(60.0),
        _ => None,
    };
    // The sequence extension (start code 0xb5, id 1) says progressive_sequence; MPEG-1 has none.
    let extension = unit
        .windows(6)
        .find(|w| w[..4] == [0, 0, 1, 0xb5] && w[4] >> 4 == 1)
        .map(|w| w[5] & 0x08 == 0);
    Some(Picture {
        width: side(u64::from(width))?,
        height: side(u64::from(height))?,
        frame_rate,
        interlaced: extension.unwrap_or(false),
    })
}

#[cfg(test)]
#[path = "sps_tests.rs"]
mod tests;
