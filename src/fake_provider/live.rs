//! The clip run as a continuous live channel: loop N of the clip is sent with its PCR, OPCR, PTS
//! and DTS moved on by N clip durations (33-bit wrap included) and each PID's continuity counters
//! carried on, so a player sees one unbroken program instead of a clock that jumps back every loop.
//!
//! A stream may be a *variant* of the clip: other PMT and elementary PIDs (PAT and PMT rewritten),
//! an audio language, and a fixed offset added to every clock value.
//!
//! The bytes of a stream are a pure function of its variant and of their offset from the stream's
//! start, which is what lets the tests and the benchmark harness check relayed bytes against what
//! was really sent.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use super::psi;
use super::ts::{self, NULL_PID, PACKET, SYNC, WRAP_MASK};

/// The clip every stream body loops: 10 s of H.264 + AAC MPEG-TS (see `scripts/make-clip.sh`).
pub(super) static CLIP: &[u8] = include_bytes!("../../assets/clip.ts");
/// The same program shape from another encoder: a 1.6 s GOP, another picture and tone, its own
/// PIDs (see `scripts/make-clip.sh`).
static OTHER_ENCODER_CLIP: &[u8] = include_bytes!("../../assets/clip-other.ts");
/// The main clip's layout with HEVC video: another codec on the same PIDs.
static HEVC_CLIP: &[u8] = include_bytes!("../../assets/clip-hevc.ts");
/// A 1280×720 picture: what a stream whose name carries no label may really be.
static HD_CLIP: &[u8] = include_bytes!("../../assets/clip-720p.ts");

/// Which recording a stream loops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ClipKind {
    /// `assets/clip.ts`: keyframes every second.
    #[default]
    Main,
    /// `assets/clip-other.ts`: another encoder's, keyframes every 1.6 s at another phase.
    OtherEncoder,
    /// `assets/clip-hevc.ts`: HEVC video, keyframes every second.
    Hevc,
    /// `assets/clip-720p.ts`: 1280×720 H.264 (the others are 640×360), keyframes every second.
    Hd720,
}

impl ClipKind {
    fn bytes(self) -> &'static [u8] {
        match self {
            ClipKind::Main => CLIP,
            ClipKind::OtherEncoder => OTHER_ENCODER_CLIP,
            ClipKind::Hevc => HEVC_CLIP,
            ClipKind::Hd720 => HD_CLIP,
        }
    }
}

/// Stamped packets of `data` tried before `locate` gives up.
const LOCATE_TRIES: usize = 8;

/// How a fake stream differs from the shipped clip; the default is the clip itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct StreamVariant {
    /// The recording looped (its GOP, picture and native PIDs); the fields below apply to it.
    pub clip: ClipKind,
    /// The program's PMT PID (`None`: the clip's, 0x1000).
    pub pmt_pid: Option<u16>,
    /// Elementary PIDs in the PMT's order, video then audio (the clip's are 0x100 and 0x101); a
    /// stream past the end of the list keeps its PID. The PCR PID follows its stream.
    pub es_pids: Vec<u16>,
    /// An ISO 639-2 language code (e.g. `*b"fra"`) set on every audio track in the PMT.
    pub audio_language: Option<[u8; 3]>,
    /// 90 kHz ticks added to every PCR, OPCR, PTS and DTS (33-bit wrap included): another
    /// encoder's clock.
    pub clock_offset: u64,
    /// Video only: no audio track in the PMT, and the audio packets sent as null packets (so
    /// the stream's byte offsets stay those of the clip).
    pub drop_audio: bool,
}

/// What changes in one packet of the clip from loop to loop.
#[derive(Clone, Copy, Default)]
struct Plan {
    /// The packet's PID's payload-carrying packets per clip, mod 16: its CC step per loop.
    cc_step: u8,
    pcr: Option<u8>,
    opcr: Option<u8>,
    pts: Option<u8>,
    dts: Option<u8>,
}

/// A clock value a packet carries, for finding which loop a received packet came from.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Stamp {
    Pcr(u16),
    Pts(u16),
}

/// The clip analysed once: what to rewrite where, and how long one loop lasts.
pub(super) struct LiveClip {
    clip: Box<[u8]>,
    clock_offset: u64,
    plans: Vec<Plan>,
    /// One loop's length in 90 kHz ticks: every PID's timestamp span plus its frame duration,
    /// the longest of them, so no stream's next loop starts before its previous one ended.
    duration: u64,
    /// For each kind of stamp, the clip's packets with it and the stamp's value there.
    stamps: HashMap<Stamp, Vec<(usize, u64)>>,
}

/// The clip as the streams of `variant` send it, analysed on first use. Each variant's clip is
/// kept for the life of the process: tests and the demo use a handful.
pub(super) fn live_clip(variant: &StreamVariant) -> &'static LiveClip {
    static CLIPS: OnceLock<Mutex<HashMap<StreamVariant, &'static LiveClip>>> = OnceLock::new();
    let mut clips = CLIPS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    clips.entry(variant.clone()).or_insert_with(|| {
        let clip = LiveClip::new(
            variant_clip(variant.clip.bytes(), variant),
            variant.clock_offset,
        );
        Box::leak(Box::new(clip))
    })
}

/// `clip` with the PIDs and PMT of `variant`.
fn variant_clip(clip: &[u8], variant: &StreamVariant) -> Vec<u8> {
    let mut out = clip.to_vec();
    if variant.pmt_pid.is_none()
        && variant.es_pids.is_empty()
        && variant.audio_language.is_none()
        && !variant.drop_audio
    {
        return out;
    }
    let psi_of = |pid: u16| {
        clip.chunks(PACKET).find_map(|p| {
            let (start, len) = psi::section(p).filter(|_| ts::pid(p) == pid)?;
            Some(p[start..start + len].to_vec())
        })
    };
    let pat = psi_of(0).expect("the clip has a PAT");
    let [(_, pmt_pid)] = psi::pat_programs(&pat)[..] else {
        panic!("the clip has one program");
    };
    let pmt = psi::parse_pmt(&psi_of(pmt_pid).expect("the clip has a PMT")).expect("a PMT");
    let mut map: HashMap<u16, u16> = HashMap::new();
    map.insert(pmt_pid, variant.pmt_pid.unwrap_or(pmt_pid));
    for (es, &new) in pmt.streams.iter().zip(&variant.es_pids) {
        map.insert(es.pid, new);
    }
    let mut targets: Vec<u16> = map.values().copied().collect();
    targets.sort_unstable();
    targets.dedup();
    assert!(
        targets.len() == map.len() && targets.iter().all(|&p| (0x10..NULL_PID).contains(&p)),
        "a variant's PIDs are distinct and in 0x10..0x1fff: {variant:?}"
    );
    let dropped: Vec<u16> = pmt
        .streams
        .iter()
        .filter(|es| variant.drop_audio && psi::is_audio(es.stream_type))
        .map(|es| es.pid)
        .collect();
    let remap = |pid: u16| match dropped.contains(&pid) {
        true => NULL_PID,
        false => map.get(&pid).copied().unwrap_or(pid),
    };
    let mut new_pmt = pmt.clone();
    new_pmt.streams.retain(|es| !dropped.contains(&es.pid));
    new_pmt.pcr_pid = remap(pmt.pcr_pid);
    for es in &mut new_pmt.streams {
        es.pid = remap(es.pid);
        if let Some(language) = variant
            .audio_language
            .filter(|_| psi::is_audio(es.stream_type))
        {
            es.descriptors = psi::with_language(&es.descriptors, language);
        }
    }
    let new_pmt = psi::write_pmt(&new_pmt);
    let new_pat = psi::rewrite_pat(&pat, remap);
    for packet in out.chunks_mut(PACKET) {
        let pid = ts::pid(packet);
        let section = match pid {
            0 => Some(&new_pat),
            p if p == pmt_pid => Some(&new_pmt),
            _ => None,
        };
        if let (Some(new), Some((start, _))) = (section, psi::section(packet)) {
            assert!(
                psi::replace_section(packet, start, new),
                "the new PSI fits its packet"
            );
        }
        let new = remap(pid);
        packet[1] = (packet[1] & 0xe0) | (new >> 8) as u8;
        packet[2] = new as u8;
        if new == NULL_PID {
            packet[1] &= !0x40;
        }
    }
    out
}

/// First, last and smallest forward step of one PID's clock values.
#[derive(Clone, Copy)]
struct Span {
    first: u64,
    last: u64,
    min: u64,
    max: u64,
    step: u64,
}

impl Span {
    fn new(v: u64) -> Span {
        Span {
            first: v,
            last: v,
            min: v,
            max: v,
            step: u64::MAX,
        }
    }

    fn push(&mut self, v: u64) {
        if v > self.last {
            self.step = self.step.min(v - self.last);
        }
        self.last = v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// How long this clock runs per loop: to its last value, plus `last_lasts` (how long the
    /// last frame or PES packet plays) or else its smallest step.
    fn length(&self, last_lasts: Option<u64>) -> u64 {
        let step = if self.step == u64::MAX { 1 } else { self.step };
        self.max - self.min + last_lasts.unwrap_or(step)
    }
}

/// How long the PES packet of `pid` starting at packet `first` and running to the clip's end
/// plays, where its bytes tell (AAC in ADTS, whose PES packets hold many frames).
fn last_pes_ticks(clip: &[u8], pid: u16, first: usize) -> Option<u64> {
    let mut pes = Vec::new();
    for packet in clip[first * PACKET..].chunks(PACKET) {
        if ts::pid(packet) == pid {
            pes.extend_from_slice(ts::payload(packet));
        }
    }
    ts::adts_ticks(ts::pes_data(&pes))
}

impl LiveClip {
    /// Analyses `clip` (whole TS packets whose timestamps do not wrap within it), to be sent
    /// with `clock_offset` added to its clocks.
    pub(super) fn new(clip: Vec<u8>, clock_offset: u64) -> LiveClip {
        assert!(
            !clip.is_empty() && clip.len().is_multiple_of(PACKET),
            "the clip is whole TS packets"
        );
        let mut payloads: HashMap<u16, u64> = HashMap::new();
        let mut spans: HashMap<Stamp, Span> = HashMap::new();
        let mut stamps: HashMap<Stamp, Vec<(usize, u64)>> = HashMap::new();
        let mut plans = Vec::with_capacity(clip.len() / PACKET);
        for (i, packet) in clip.chunks(PACKET).enumerate() {
            assert_eq!(packet[0], SYNC, "packet {i} of the clip has no sync byte");
            let pid = ts::pid(packet);
            if pid != NULL_PID && ts::has_payload(packet) {
                *payloads.entry(pid).or_default() += 1;
            }
            let (pcr, opcr) = ts::clock_fields(packet);
            let (pts, dts) = match pid {
                NULL_PID => (None, None),
                _ => ts::pes_timestamps(packet),
            };
            let mut note = |stamp: Stamp, v: u64| {
                spans
                    .entry(stamp)
                    .and_modify(|s| s.push(v))
                    .or_insert(Span::new(v));
                stamps.entry(stamp).or_default().push((i, v));
            };
            if let Some(at) = pcr {
                note(Stamp::Pcr(pid), ts::read_clock_base(packet, at));
            }
            // DTS where there is one: it is the decode order the loop must keep increasing.
            if let Some(at) = dts.or(pts) {
                note(Stamp::Pts(pid), ts::read_timestamp(packet, at));
            }
            let narrow = |at: Option<usize>| at.map(|a| a as u8);
            plans.push(Plan {
                cc_step: 0,
                pcr: narrow(pcr),
                opcr: narrow(opcr),
                pts: narrow(pts),
                dts: narrow(dts),
            });
        }
        for (packet, plan) in clip.chunks(PACKET).zip(&mut plans) {
            let pid = ts::pid(packet);
            if pid != NULL_PID {
                plan.cc_step = (payloads[&pid] % 16) as u8;
            }
        }
        let duration = spans
            .iter()
            .map(|(&stamp, span)| {
                let last_lasts = match stamp {
                    Stamp::Pts(pid) => last_pes_ticks(&clip, pid, stamps[&stamp].last().unwrap().0),
                    Stamp::Pcr(_) => None,
                };
                span.length(last_lasts)
            })
            .max()
            .unwrap_or(0);
        assert!(
            spans
                .values()
                .all(|s| s.first == s.min && s.max - s.min < WRAP_MASK / 2),
            "the clip's clocks start at their lowest value and do not wrap"
        );
        LiveClip {
            clip: clip.into_boxed_slice(),
            clock_offset: clock_offset & WRAP_MASK,
            plans,
            duration,
            stamps,
        }
    }

    /// One loop's length in 90 kHz ticks.
    /// The bit rate that plays this clip in real time.
    pub(super) fn bitrate_bps(&self) -> u64 {
        self.clip.len() as u64 * 8 * 90_000 / self.duration
    }

    pub(super) fn duration(&self) -> u64 {
        self.duration
    }

    fn packets(&self) -> u64 {
        self.plans.len() as u64
    }

    /// Rewrites `packet`, a copy of the clip's packet `index`, into what loop `round` sends.
    fn rewrite(&self, packet: &mut [u8], index: usize, round: u64) {
        if round == 0 && self.clock_offset == 0 {
            return;
        }
        let plan = self.plans[index];
        let shift = ts::add_wrapping(round.wrapping_mul(self.duration), self.clock_offset);
        let cc = ts::continuity(packet).wrapping_add((round % 16) as u8 * plan.cc_step);
        ts::set_continuity(packet, cc);
        for at in [plan.pcr, plan.opcr].into_iter().flatten() {
            let at = usize::from(at);
            let base = ts::read_clock_base(packet, at);
            ts::write_clock_base(packet, at, ts::add_wrapping(base, shift));
        }
        for at in [plan.pts, plan.dts].into_iter().flatten() {
            let at = usize::from(at);
            let value = ts::read_timestamp(packet, at);
            ts::write_timestamp(packet, at, ts::add_wrapping(value, shift));
        }
    }

    /// Appends the stream's bytes `offset..offset + len` to `out`, rewriting each packet in
    /// place there.
    pub(super) fn write(&self, offset: u64, len: usize, out: &mut Vec<u8>) {
        out.reserve(len + PACKET);
        let end = offset + len as u64;
        let mut pos = offset;
        while pos < end {
            let number = pos / PACKET as u64;
            let (round, index) = (number / self.packets(), (number % self.packets()) as usize);
            let within = (pos % PACKET as u64) as usize;
            let take = (PACKET - within).min((end - pos) as usize);
            let at = out.len();
            out.extend_from_slice(&self.clip[index * PACKET..(index + 1) * PACKET]);
            self.rewrite(&mut out[at..], index, round);
            if take < PACKET {
                out.copy_within(at + within..at + within + take, at);
                out.truncate(at + take);
            }
            pos += take as u64;
        }
    }

    /// Where `data` first differs from the stream's bytes from `offset` on, if it does.
    pub(super) fn mismatch(&self, offset: u64, data: &[u8]) -> Option<usize> {
        let mut packet = [0u8; PACKET];
        let mut done = 0;
        while done < data.len() {
            let pos = offset + done as u64;
            let number = pos / PACKET as u64;
            let (round, index) = (number / self.packets(), (number % self.packets()) as usize);
            let within = (pos % PACKET as u64) as usize;
            let take = (PACKET - within).min(data.len() - done);
            packet.copy_from_slice(&self.clip[index * PACKET..(index + 1) * PACKET]);
            self.rewrite(&mut packet, index, round);
            let want = &packet[within..within + take];
            let got = &data[done..done + take];
            if let Some(i) = want.iter().zip(got).position(|(w, g)| w != g) {
                return Some(done + i);
            }
            done += take;
        }
        None
    }

    /// The offset from the stream's start at which `data` (starting on a packet boundary) is
    /// found, or `None` if it is nowhere. The loop is told by the clock values in `data`, so a
    /// stream longer than the 33-bit clock's wrap (26.5 hours) is located in its first lap.
    pub(super) fn locate(&self, data: &[u8]) -> Option<u64> {
        let stamped = data
            .chunks_exact(PACKET)
            .enumerate()
            .filter_map(|(k, packet)| {
                (packet[0] == SYNC)
                    .then(|| self.stamp_of(packet))
                    .flatten()
                    .map(|s| (k, s))
            })
            .take(LOCATE_TRIES);
        for (k, (stamp, value)) in stamped {
            for &(index, clip_value) in self.stamps.get(&stamp).into_iter().flatten() {
                let diff = value
                    .wrapping_sub(clip_value)
                    .wrapping_sub(self.clock_offset)
                    & WRAP_MASK;
                if self.duration == 0 || !diff.is_multiple_of(self.duration) {
                    continue;
                }
                let number = diff / self.duration * self.packets() + index as u64;
                let Some(first) = number.checked_sub(k as u64) else {
                    continue;
                };
                let offset = first * PACKET as u64;
                if self.mismatch(offset, data).is_none() {
                    return Some(offset);
                }
            }
        }
        None
    }

    fn stamp_of(&self, packet: &[u8]) -> Option<(Stamp, u64)> {
        let pid = ts::pid(packet);
        if let (Some(at), _) = ts::clock_fields(packet) {
            return Some((Stamp::Pcr(pid), ts::read_clock_base(packet, at)));
        }
        match ts::pes_timestamps(packet) {
            (_, Some(at)) | (Some(at), None) => {
                Some((Stamp::Pts(pid), ts::read_timestamp(packet, at)))
            }
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clip's H.264 stream (ffmpeg's default first elementary PID).
    const VIDEO_PID: u16 = 0x100;

    fn plain() -> &'static LiveClip {
        live_clip(&StreamVariant::default())
    }

    fn stream(offset: u64, len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        plain().write(offset, len, &mut out);
        out
    }

    #[test]
    fn a_loop_lasts_as_long_as_the_longest_track() {
        // The audio's 470 AAC frames outlast the video's 250 frames (10 s) by 2/3 of a frame.
        assert_eq!(plain().duration(), 470 * 1920);
    }

    #[test]
    fn the_first_loop_is_the_clip_itself() {
        assert!(stream(0, CLIP.len()) == CLIP);
        assert!(stream(1000, 5000) == CLIP[1000..6000]);
    }

    #[test]
    fn later_loops_move_every_clock_on_and_keep_the_rest() {
        let clip = plain();
        let third = stream(2 * CLIP.len() as u64, CLIP.len());
        let mut clocks = 0;
        for (index, (got, orig)) in third.chunks(PACKET).zip(CLIP.chunks(PACKET)).enumerate() {
            let plan = clip.plans[index];
            assert_eq!(got[..3], orig[..3]);
            for at in [plan.pcr, plan.opcr].into_iter().flatten().map(usize::from) {
                let want = ts::add_wrapping(ts::read_clock_base(orig, at), 2 * clip.duration);
                assert_eq!(ts::read_clock_base(got, at), want);
                assert_eq!(got[at + 4] & 0x7f, orig[at + 4] & 0x7f);
                assert_eq!(got[at + 5], orig[at + 5]);
                clocks += 1;
            }
            for at in [plan.pts, plan.dts].into_iter().flatten().map(usize::from) {
                let want = ts::add_wrapping(ts::read_timestamp(orig, at), 2 * clip.duration);
                assert_eq!(ts::read_timestamp(got, at), want);
                clocks += 1;
            }
            let fields: Vec<usize> = [plan.pcr, plan.opcr, plan.pts, plan.dts]
                .into_iter()
                .flatten()
                .map(usize::from)
                .collect();
            for i in 4..PACKET {
                if !fields.iter().any(|&at| (at..at + 6).contains(&i)) {
                    assert_eq!(got[i], orig[i], "packet {index} byte {i}");
                }
            }
        }
        assert!(clocks > 500, "{clocks} clock fields");
    }

    #[test]
    fn continuity_counters_run_on_across_loops() {
        let two = stream(0, 3 * CLIP.len());
        let mut last: HashMap<u16, u8> = HashMap::new();
        let mut checked = 0;
        for packet in two.chunks(PACKET) {
            let pid = ts::pid(packet);
            if pid == NULL_PID || !ts::has_payload(packet) {
                continue;
            }
            let cc = ts::continuity(packet);
            if let Some(prev) = last.insert(pid, cc) {
                assert_eq!(cc, (prev + 1) % 16, "PID {pid:#x}");
                checked += 1;
            }
        }
        assert!(checked > 3 * CLIP.len() / PACKET - 10);
    }

    #[test]
    fn clocks_never_step_back_at_the_loop_point() {
        let data = stream(0, 3 * CLIP.len());
        let mut last: HashMap<Stamp, u64> = HashMap::new();
        for packet in data.chunks(PACKET) {
            let pid = ts::pid(packet);
            if let (Some(at), _) = ts::clock_fields(packet) {
                let v = ts::read_clock_base(packet, at);
                if let Some(prev) = last.insert(Stamp::Pcr(pid), v) {
                    assert!(v >= prev, "PCR of {pid:#x} went back: {prev} to {v}");
                }
            }
            let (pts, dts) = ts::pes_timestamps(packet);
            if let Some(at) = dts.or(pts) {
                let v = ts::read_timestamp(packet, at);
                if let Some(prev) = last.insert(Stamp::Pts(pid), v) {
                    assert!(v > prev, "DTS of {pid:#x} went back: {prev} to {v}");
                }
            }
        }
    }

    #[test]
    fn unaligned_ranges_match_whole_packets() {
        let whole = stream(2 * CLIP.len() as u64 - 10 * PACKET as u64, 30 * PACKET);
        let from = 2 * CLIP.len() as u64 - 10 * PACKET as u64;
        let part = stream(from + 77, 20 * PACKET + 5);
        assert!(part == whole[77..77 + 20 * PACKET + 5]);
        assert_eq!(plain().mismatch(from + 77, &part), None);
        let mut bad = part.clone();
        bad[400] ^= 1;
        assert_eq!(plain().mismatch(from + 77, &bad), Some(400));
    }

    #[test]
    fn a_piece_is_located_in_any_loop() {
        let clip = plain();
        for offset in [
            0,
            188 * 5,
            CLIP.len() as u64 * 7 + 188 * 321,
            CLIP.len() as u64 * 1000 - 188 * 50,
        ] {
            let piece = stream(offset, 188 * 200);
            assert_eq!(clip.locate(&piece), Some(offset));
        }
        let mut piece = stream(CLIP.len() as u64 * 3, 188 * 200);
        piece[188 * 150 + 100] ^= 0xff;
        assert_eq!(clip.locate(&piece), None);
        assert_eq!(clip.locate(&[0x47; 100]), None);
    }

    #[test]
    fn the_clock_wraps_after_26_hours() {
        let clip = plain();
        let rounds = WRAP_MASK / clip.duration + 1;
        let data = stream(
            rounds * CLIP.len() as u64 - CLIP.len() as u64,
            2 * CLIP.len(),
        );
        let mut pts: Vec<u64> = data
            .chunks(PACKET)
            .filter(|p| ts::pid(p) == VIDEO_PID)
            .filter_map(|p| ts::pes_timestamps(p).1.map(|at| ts::read_timestamp(p, at)))
            .collect();
        let wrap = pts.windows(2).position(|w| w[1] < w[0]).expect("a wrap");
        assert!(pts[wrap] > WRAP_MASK - 90_000 && pts[wrap + 1] < 90_000);
        pts.truncate(wrap + 2);
        assert!(pts.windows(2).take(wrap).all(|w| w[1] > w[0]));
    }

    #[test]
    fn a_variant_has_its_own_pids_and_clock() {
        let variant = StreamVariant {
            pmt_pid: Some(0x0abc),
            es_pids: vec![0x0211, 0x0222],
            audio_language: Some(*b"fra"),
            clock_offset: WRAP_MASK - 45_000,
            ..StreamVariant::default()
        };
        let clip = live_clip(&variant);
        assert_eq!(clip.duration(), plain().duration());
        let mut data = Vec::new();
        clip.write(0, 2 * CLIP.len(), &mut data);
        let plain_data = stream(0, 2 * CLIP.len());
        let (mut pats, mut pmts) = (0, 0);
        for (got, orig) in data.chunks(PACKET).zip(plain_data.chunks(PACKET)) {
            let want_pid = match ts::pid(orig) {
                0x1000 => 0x0abc,
                0x100 => 0x0211,
                0x101 => 0x0222,
                other => other,
            };
            assert_eq!(ts::pid(got), want_pid);
            assert_eq!(ts::continuity(got), ts::continuity(orig));
            if let (Some(at), _) = ts::clock_fields(orig) {
                let want = ts::add_wrapping(ts::read_clock_base(orig, at), variant.clock_offset);
                assert_eq!(ts::read_clock_base(got, at), want);
            }
            if let (Some(at), _) = ts::pes_timestamps(orig) {
                let want = ts::add_wrapping(ts::read_timestamp(orig, at), variant.clock_offset);
                assert_eq!(ts::read_timestamp(got, at), want);
            }
            let Some((start, len)) = psi::section(got) else {
                continue;
            };
            let section = &got[start..start + len];
            match ts::pid(got) {
                0 => {
                    assert_eq!(psi::pat_programs(section), vec![(1, 0x0abc)]);
                    pats += 1;
                }
                0x0abc => {
                    let pmt = psi::parse_pmt(section).unwrap();
                    assert_eq!(pmt.pcr_pid, 0x0211);
                    let pids: Vec<u16> = pmt.streams.iter().map(|e| e.pid).collect();
                    assert_eq!(pids, vec![0x0211, 0x0222]);
                    assert_eq!(pmt.streams[1].descriptors[..5], [0x0a, 4, b'f', b'r', b'a']);
                    pmts += 1;
                }
                _ => {}
            }
        }
        assert!(pats > 10 && pmts > 10, "{pats} PATs, {pmts} PMTs");
        let piece = &data[CLIP.len() + 188 * 40..CLIP.len() + 188 * 240];
        assert_eq!(
            clip.locate(piece),
            Some(CLIP.len() as u64 + 188 * 40),
            "located through the offset clock"
        );
        assert_eq!(plain().locate(piece), None);
    }

    #[test]
    fn a_video_only_variant_sends_null_packets_where_the_audio_was() {
        let variant = StreamVariant {
            drop_audio: true,
            ..StreamVariant::default()
        };
        let mut data = Vec::new();
        live_clip(&variant).write(0, CLIP.len(), &mut data);
        let pids = |d: &[u8]| d.chunks(PACKET).filter(|p| ts::pid(p) == 0x101).count();
        assert!(pids(CLIP) > 100);
        assert_eq!(pids(&data), 0, "no audio packets");
        let nulls = data
            .chunks(PACKET)
            .filter(|p| ts::pid(p) == NULL_PID)
            .count();
        assert_eq!(nulls, pids(CLIP));
        let pmt = data
            .chunks(PACKET)
            .filter(|p| ts::pid(p) == 0x1000)
            .find_map(|p| {
                let (start, len) = psi::section(p)?;
                psi::parse_pmt(&p[start..start + len])
            })
            .expect("a PMT");
        assert_eq!(pmt.streams.len(), 1);
        assert_eq!(data.len(), CLIP.len());
    }

    #[test]
    #[should_panic(expected = "distinct")]
    fn a_variant_with_clashing_pids_is_refused() {
        live_clip(&StreamVariant {
            es_pids: vec![0x0300, 0x0300],
            ..StreamVariant::default()
        });
    }
}
