//! Random-access points in a video elementary stream: whether a video PES (one frame) can be
//! decoded from with no earlier data. H.264: the frame's first slice is an IDR (NAL type 5).
//! HEVC: its first slice is an IRAP (NAL types 16 to 23). MPEG-2: a sequence header comes
//! before the first picture. Other codecs: the adaptation field's random_access_indicator.
//!
//! The start codes are found across packet boundaries, so a PES whose first slice comes after a
//! long SEI is judged right.

use super::psi::Codec;

/// Bytes of a PES looked at before giving up on finding its first slice.
const LOOK_LIMIT: usize = 16 * 1024;

/// Looks for the first slice of one video PES.
#[derive(Debug, Clone)]
pub struct FrameScan {
    codec: Codec,
    /// The last three bytes seen, for start codes split across packets.
    window: u32,
    /// A start code ended the previous push: its NAL header byte is the next byte.
    header_next: bool,
    seen: usize,
    /// MPEG-2: a sequence header was seen.
    sequence_header: bool,
    verdict: Option<bool>,
}

impl FrameScan {
    /// Starts on a new PES; `hint` is its first packet's random_access_indicator.
    pub fn new(codec: Codec, hint: bool) -> FrameScan {
        FrameScan {
            codec,
            window: 0xffff_ffff,
            header_next: false,
            seen: 0,
            sequence_header: false,
            verdict: (codec == Codec::Other).then_some(hint),
        }
    }

    /// Whether the frame is a random-access point, once known.
    pub fn verdict(&self) -> Option<bool> {
        self.verdict
    }

    /// Feeds the next elementary-stream bytes of the PES; returns the verdict once known.
    pub fn push(&mut self, data: &[u8]) -> Option<bool> {
        if self.verdict.is_some() {
            return self.verdict;
        }
        for &byte in data {
            if self.header_next {
                self.header_next = false;
                if let Some(verdict) = self.nal(byte) {
                    self.verdict = Some(verdict);
                    return self.verdict;
                }
            }
            self.window = (self.window << 8) | u32::from(byte);
            if self.window & 0x00ff_ffff == 0x0000_0001 {
                self.header_next = true;
            }
        }
        self.seen += data.len();
        if self.seen > LOOK_LIMIT {
            self.verdict = Some(false);
        }
        self.verdict
    }

    /// The PES ended: a frame whose first slice was never seen is no access point.
    pub fn finish(&mut self) -> bool {
        *self.verdict.get_or_insert(false)
    }

    /// Judges the unit whose header byte (the byte after a start code) is `header`; `None`
    /// while no slice has been seen.
    fn nal(&mut self, header: u8) -> Option<bool> {
        match self.codec {
            Codec::H264 => {
                let kind = header & 0x1f;
                (1..=5).contains(&kind).then_some(kind == 5)
            }
            Codec::Hevc => {
                let kind = (header >> 1) & 0x3f;
                (kind <= 31).then_some((16..=23).contains(&kind))
            }
            Codec::Mpeg2 => match header {
                0xb3 => {
                    self.sequence_header = true;
                    None
                }
                0x00 => Some(self.sequence_header),
                _ => None,
            },
            Codec::Other => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(codec: Codec, pieces: &[&[u8]]) -> Option<bool> {
        let mut scan = FrameScan::new(codec, false);
        pieces.iter().map(|p| scan.push(p)).last().flatten()
    }

    const AUD: &[u8] = &[0, 0, 0, 1, 0x09, 0xf0];
    const SPS: &[u8] = &[0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1e];
    const SEI: &[u8] = &[0, 0, 1, 0x06, 0x05, 0x10, 0xaa];

    #[test]
    fn an_h264_idr_is_an_access_point_and_a_p_slice_is_not() {
        let idr = [AUD, SPS, SEI, &[0, 0, 1, 0x65, 0x88]].concat();
        assert_eq!(judge(Codec::H264, &[&idr]), Some(true));
        let p_slice = [AUD, &[0, 0, 1, 0x41, 0x9a]].concat();
        assert_eq!(judge(Codec::H264, &[&p_slice]), Some(false));
        assert_eq!(judge(Codec::H264, &[AUD, SPS]), None, "no slice yet");
    }

    #[test]
    fn a_start_code_split_across_packets_is_found() {
        for split in 1..5 {
            let idr = [AUD, &[0, 0, 1, 0x65, 0x88]].concat();
            let (a, b) = idr.split_at(AUD.len() + split);
            assert_eq!(judge(Codec::H264, &[a, b]), Some(true), "split {split}");
        }
    }

    #[test]
    fn hevc_irap_types_are_access_points() {
        let aud = &[0, 0, 1, 0x46, 0x01, 0x50][..];
        for (kind, expected) in [(19, true), (20, true), (21, true), (1, false), (0, false)] {
            let slice = [aud, &[0, 0, 1, kind << 1, 0x01, 0xaf]].concat();
            assert_eq!(judge(Codec::Hevc, &[&slice]), Some(expected), "type {kind}");
        }
        let vps = &[0, 0, 1, 32 << 1, 0x01][..];
        assert_eq!(judge(Codec::Hevc, &[aud, vps]), None);
    }

    #[test]
    fn mpeg2_needs_a_sequence_header_before_its_picture() {
        let picture = &[0, 0, 1, 0x00, 0x12][..];
        assert_eq!(
            judge(Codec::Mpeg2, &[&[0, 0, 1, 0xb3, 1], picture]),
            Some(true)
        );
        assert_eq!(judge(Codec::Mpeg2, &[picture]), Some(false));
    }

    #[test]
    fn other_codecs_follow_the_hint_and_unfinished_frames_are_not_access_points() {
        assert_eq!(FrameScan::new(Codec::Other, true).verdict(), Some(true));
        assert_eq!(FrameScan::new(Codec::Other, false).verdict(), Some(false));
        let mut scan = FrameScan::new(Codec::H264, true);
        scan.push(AUD);
        assert!(!scan.finish());
        let mut long = FrameScan::new(Codec::H264, false);
        assert_eq!(long.push(&vec![0xaa; LOOK_LIMIT + 1]), Some(false));
    }
}
