//! The output program driven by hand: synthetic sources in, the viewers' bytes out, checked the
//! way a player would (one program, continuous counters, clocks that only move forward).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::packet::{self, PACKET};
use super::psi::{self, SectionReader};
use super::synth::{FRAME_TICKS, Synth};
use super::*;

const KEYFRAME: Duration = Duration::from_millis(1500);

struct Rig {
    program: Program,
    now: Instant,
    out: Vec<u8>,
    starts: Vec<usize>,
}

impl Rig {
    fn new() -> Rig {
        Rig {
            program: Program::new(KEYFRAME),
            now: Instant::now(),
            out: Vec::new(),
            starts: Vec::new(),
        }
    }

    fn receive(&mut self, attempt: AttemptId, bytes: &[u8]) -> bool {
        let ready = self.program.receive(attempt, BytesMut::from(bytes));
        self.release();
        ready
    }

    fn splice(&mut self, attempt: AttemptId, forced: bool) {
        self.program.splice(attempt, forced, self.now);
        self.release();
    }

    fn release(&mut self) {
        let (out, starts) = (&mut self.out, &mut self.starts);
        self.program.release(self.now, &mut |piece| {
            if let Some(start) = piece.start {
                starts.push(out.len() + start);
            }
            out.extend_from_slice(&piece.data);
        });
    }
}

/// What a player sees in the output.
#[derive(Debug, Default)]
struct Seen {
    pids: Vec<u16>,
    cc_errors: usize,
    pcr_back: usize,
    dts_back: usize,
    /// DTS and PTS of each video PES, in order.
    video_dts: Vec<u64>,
    video_pts: Vec<u64>,
    audio_pts: Vec<u64>,
    /// Tag bytes of the video frames, in order.
    tags: Vec<u8>,
    pmt_versions: Vec<u8>,
    pmts: Vec<psi::Pmt>,
    discontinuities: usize,
}

fn watch(bytes: &[u8], video_pid: u16, audio_pid: u16, pmt_pid: u16) -> Seen {
    let mut seen = Seen::default();
    let mut cc: HashMap<u16, u8> = HashMap::new();
    let mut pmt_reader = SectionReader::default();
    let mut last_pcr = None;
    for p in bytes.chunks(PACKET) {
        let pid = packet::pid(p);
        if pid == packet::NULL_PID {
            continue;
        }
        if !seen.pids.contains(&pid) {
            seen.pids.push(pid);
        }
        if packet::has_payload(p) {
            let expected = cc.get(&pid).map(|c| (c + 1) & 0x0f);
            if expected.is_some_and(|e| e != packet::continuity(p)) {
                seen.cc_errors += 1;
            }
            cc.insert(pid, packet::continuity(p));
        }
        if p[3] & 0x20 != 0 && p[4] > 0 && p[5] & 0x80 != 0 {
            seen.discontinuities += 1;
        }
        if let Some(pcr) = packet::pcr(p) {
            if last_pcr.is_some_and(|l| packet::ahead33(pcr, l) <= 0) {
                seen.pcr_back += 1;
            }
            last_pcr = Some(pcr);
        }
        if pid == pmt_pid
            && let Some(pmt) = pmt_reader.push(p).and_then(psi::parse_pmt)
            && seen.pmt_versions.last() != Some(&pmt.version)
        {
            seen.pmt_versions.push(pmt.version);
            seen.pmts.push(pmt);
        }
        if !packet::unit_start(p) {
            continue;
        }
        let Some(header) = packet::pes_header(p) else {
            continue;
        };
        let pts = header.pts.map(|at| packet::read_timestamp(p, at));
        let dts = header.dts.map(|at| packet::read_timestamp(p, at)).or(pts);
        if pid == video_pid {
            let dts = dts.expect("video has a DTS");
            if seen
                .video_dts
                .last()
                .is_some_and(|&l| packet::ahead33(dts, l) <= 0)
            {
                seen.dts_back += 1;
            }
            seen.video_dts.push(dts);
            seen.video_pts.push(pts.expect("video has a PTS"));
            seen.tags.push(p[PACKET - 1]);
        } else if pid == audio_pid {
            seen.audio_pts.push(pts.expect("audio has a PTS"));
        }
    }
    seen
}

fn primary() -> Synth {
    Synth::new(0x1000, 0x100, Some(0x101))
}

/// Another encoder: other PIDs, an unrelated clock.
fn backup() -> Synth {
    let mut s = Synth::new(0x42, 0x200, Some(0x201));
    s.program_number = 9;
    s.clock = 7_000_000_000;
    s
}

#[test]
fn the_first_source_is_passed_through_byte_for_byte_from_its_first_keyframe() {
    let mut rig = Rig::new();
    let mut source = primary();
    let mid_gop = source.frames("PP", 1);
    assert!(!rig.receive(1, &mid_gop), "no place to start yet");
    let gop = source.frames("KPPK", 3);
    assert!(rig.receive(1, &gop));
    rig.splice(1, false);
    let more = source.frames("PP", 7);
    rig.receive(1, &more);
    let sent = [&gop[..], &more[..]].concat();
    assert!(!rig.out.is_empty());
    assert!(
        sent.starts_with(&rig.out),
        "unchanged bytes, from the keyframe's PAT"
    );
    // Held back: the last frame, which might still be cut short.
    let last_frame = Synth::new(0x1000, 0x100, Some(0x101)).frame(false, 0).len();
    assert_eq!(rig.out.len(), sent.len() - last_frame);
    assert_eq!(rig.starts, [0, 3 * last_frame + 2 * PACKET]);
}

#[test]
fn a_failover_to_another_encoder_keeps_one_continuous_program() {
    let mut rig = Rig::new();
    let mut first = primary();
    rig.receive(1, &first.frames("KPPPKPP", 0));
    rig.splice(1, false);
    rig.receive(1, &first.frames("P", 7));
    // The primary dies; the backup starts mid-GOP and is spliced in at its keyframe.
    rig.program.forget(1);
    rig.now += Duration::from_millis(100);
    let mut second = backup();
    assert!(!rig.receive(2, &second.frames("PP", 20)));
    assert!(rig.receive(2, &second.frames("KPP", 22)));
    rig.splice(2, false);
    rig.receive(2, &second.frames("PKP", 25));

    let seen = watch(&rig.out, 0x100, 0x101, 0x1000);
    assert_eq!(
        seen.pids,
        [0, 0x1000, 0x100, 0x101],
        "the first source's PIDs only"
    );
    assert_eq!(seen.cc_errors, 0);
    assert_eq!((seen.pcr_back, seen.dts_back), (0, 0));
    assert_eq!(seen.pmt_versions, [0], "same program: no new version");
    // Every primary frame up to the last whole one, then the backup from its keyframe.
    assert_eq!(seen.tags, [0, 1, 2, 3, 4, 5, 6, 22, 23, 24, 25, 26]);
    let steps: Vec<i64> = seen
        .video_dts
        .windows(2)
        .map(|w| packet::ahead33(w[1], w[0]))
        .collect();
    // 100 ms of real gap, in 90 kHz ticks.
    let gap = 9000;
    assert!(steps.iter().all(|&s| s == FRAME_TICKS as i64 || s == gap));
    assert_eq!(
        steps.iter().filter(|&&s| s != FRAME_TICKS as i64).count(),
        1
    );
    assert!(
        seen.audio_pts
            .windows(2)
            .all(|w| packet::ahead33(w[1], w[0]) > 0)
    );
}

#[test]
fn rebased_clocks_wrap_at_33_bits() {
    let mut rig = Rig::new();
    let mut first = primary();
    first.clock = (1 << 33) - 5 * FRAME_TICKS;
    rig.receive(1, &first.frames("KPPP", 0));
    rig.splice(1, false);
    rig.receive(1, &first.frames("PPPP", 4));
    rig.program.forget(1);
    let mut second = backup();
    second.clock = 1234;
    rig.receive(2, &second.frames("KPPP", 20));
    rig.splice(2, false);
    rig.receive(2, &second.frames("K", 24));
    let seen = watch(&rig.out, 0x100, 0x101, 0x1000);
    assert!(
        seen.video_dts.iter().any(|&d| d < FRAME_TICKS * 8),
        "the clock wrapped"
    );
    assert_eq!((seen.pcr_back, seen.dts_back, seen.cc_errors), (0, 0, 0));
    assert!(
        seen.video_dts
            .windows(2)
            .all(|w| packet::ahead33(w[1], w[0]) == FRAME_TICKS as i64)
    );
}

#[test]
fn the_return_to_the_better_stream_switches_at_its_keyframe_with_no_gap() {
    let mut rig = Rig::new();
    let mut first = backup();
    rig.receive(1, &first.frames("KPPP", 0));
    rig.splice(1, false);
    let mut better = primary();
    assert!(!rig.receive(2, &better.frames("PP", 10)));
    rig.receive(1, &first.frames("PP", 4));
    assert!(rig.receive(2, &better.frames("K", 12)));
    rig.splice(2, false);
    rig.receive(2, &better.frames("PP", 13));
    let seen = watch(&rig.out, 0x200, 0x201, 0x42);
    assert_eq!(seen.pids, [0, 0x42, 0x200, 0x201]);
    assert_eq!(seen.tags, [0, 1, 2, 3, 4, 12, 13]);
    assert_eq!((seen.pcr_back, seen.dts_back, seen.cc_errors), (0, 0, 0));
    assert!(
        seen.video_dts
            .windows(2)
            .all(|w| packet::ahead33(w[1], w[0]) == FRAME_TICKS as i64),
        "one frame apart across the switch: {:?}",
        seen.video_dts
    );
}

#[test]
fn audio_from_before_what_was_sent_is_dropped_after_a_splice() {
    let mut rig = Rig::new();
    let mut first = primary();
    rig.receive(1, &first.frames("KPPP", 0));
    rig.splice(1, false);
    rig.program.forget(1);
    // The backup's audio runs a second behind its video.
    let mut second = backup();
    let mut frames = second.frames("KPPPP", 20);
    for p in frames.chunks_mut(PACKET) {
        if packet::pid(p) == 0x201 {
            let at = packet::pes_header(p).unwrap().pts.unwrap();
            let pts = packet::read_timestamp(p, at);
            packet::write_timestamp(p, at, pts - 90_000 + FRAME_TICKS);
        }
    }
    rig.receive(2, &frames);
    rig.splice(2, false);
    rig.receive(2, &second.frames("K", 25));
    let seen = watch(&rig.out, 0x100, 0x101, 0x1000);
    assert_eq!(seen.audio_pts.len(), 3, "only the primary's audio");
    assert_eq!(seen.tags, [0, 1, 2, 20, 21, 22, 23, 24]);
    assert_eq!(seen.cc_errors, 0);
}

#[test]
fn a_backup_with_another_codec_changes_the_program_version() {
    let mut rig = Rig::new();
    let mut first = primary();
    rig.receive(1, &first.frames("KPP", 0));
    rig.splice(1, false);
    rig.program.forget(1);
    let mut hevc = backup();
    hevc.hevc = true;
    assert!(rig.receive(2, &hevc.frames("PKP", 20)));
    rig.splice(2, false);
    rig.receive(2, &hevc.frames("K", 23));
    let seen = watch(&rig.out, 0x100, 0x101, 0x1000);
    assert_eq!(seen.pmt_versions, [0, 1]);
    assert_eq!(seen.pmts[1].streams[0].stream_type, 0x24);
    assert_eq!(seen.pmts[1].streams[0].pid, 0x100);
    assert_eq!(seen.pids, [0, 0x1000, 0x100, 0x101]);
    assert!(
        seen.discontinuities >= 2,
        "the PMT and the video's first packet"
    );
    assert_eq!(seen.tags, [0, 1, 21, 22]);
}

#[test]
fn a_backup_with_fewer_tracks_changes_the_program_and_the_return_restores_it() {
    let mut rig = Rig::new();
    let mut first = primary();
    rig.receive(1, &first.frames("KP", 0));
    rig.splice(1, false);
    rig.program.forget(1);
    let mut silent = Synth::new(0x50, 0x300, None);
    rig.receive(2, &silent.frames("KPP", 10));
    rig.splice(2, false);
    let mut back = primary();
    back.clock = 100;
    rig.receive(3, &back.frames("KP", 20));
    rig.splice(3, false);
    rig.receive(3, &back.frames("K", 22));
    let seen = watch(&rig.out, 0x100, 0x101, 0x1000);
    assert_eq!(seen.pmt_versions, [0, 1, 2]);
    assert_eq!(seen.pmts[1].streams.len(), 1, "video only");
    assert_eq!(seen.pmts[2].streams.len(), 2);
    assert_eq!(seen.pmts[2].streams[1].pid, 0x101, "audio back on its PID");
    assert_eq!((seen.cc_errors, seen.dts_back, seen.pcr_back), (0, 0, 0));
}

#[test]
fn a_forced_splice_starts_at_the_next_pat() {
    let mut rig = Rig::new();
    let mut source = primary();
    // PAT and PMT but never a keyframe.
    let mut bytes = source.psi();
    bytes.extend(source.frames("PP", 1));
    bytes.extend(source.psi());
    bytes.extend(source.frames("PP", 3));
    assert!(!rig.receive(1, &bytes));
    rig.splice(1, true);
    rig.receive(1, &source.frames("P", 5));
    let seen = watch(&rig.out, 0x100, 0x101, 0x1000);
    assert_eq!(seen.tags, [3, 4], "from the latest PAT held");
    assert_eq!(packet::pid(&rig.out), 0);
}

#[test]
fn without_keyframes_new_viewers_may_start_at_a_pat_after_the_deadline() {
    let mut rig = Rig::new();
    let mut source = primary();
    rig.receive(1, &source.frames("KPP", 0));
    rig.splice(1, false);
    let psi_frame = |s: &mut Synth, tag| [s.psi(), s.frame(false, tag)].concat();
    rig.receive(1, &psi_frame(&mut source, 3));
    rig.receive(1, &psi_frame(&mut source, 4));
    assert_eq!(rig.starts, [0], "a PAT without a keyframe is no start");
    rig.now += KEYFRAME + Duration::from_millis(1);
    rig.receive(1, &psi_frame(&mut source, 5));
    assert_eq!(rig.starts.len(), 2);
    let at = rig.starts[1];
    assert_eq!(packet::pid(&rig.out[at..]), 0, "at a PAT");
}

#[test]
fn a_source_that_is_not_spliced_in_keeps_only_what_it_may_start_from() {
    let mut rig = Rig::new();
    let mut source = primary();
    let held = |rig: &Rig| rig.program.sources[&1].end() - rig.program.sources[&1].held_from();
    rig.receive(1, &[source.psi(), source.frames("PPP", 0)].concat());
    let latest = [source.psi(), source.frames("PP", 3)].concat();
    rig.receive(1, &latest);
    assert_eq!(held(&rig), latest.len() as u64, "from the latest PAT");
    // With no PAT for longer than the hold limit: the last frame only.
    while held(&rig) > 3 * PACKET as u64 {
        rig.receive(1, &source.frames("PPPPPPPPPP", 0));
        assert!(held(&rig) <= HOLD_LIMIT + 30 * PACKET as u64);
    }
    assert!(rig.out.is_empty());
    assert!(rig.receive(1, &source.frames("K", 0)), "a keyframe is kept");
}

#[test]
fn the_first_new_frame_is_shown_after_the_last_old_one_has_had_its_time() {
    let mut rig = Rig::new();
    let mut first = primary();
    let mut frames = first.frames("KPPP", 0);
    // Frame 2 is shown last, three frames after it is decoded (B-frames before it).
    for p in frames.chunks_mut(PACKET) {
        if packet::pid(p) == 0x100 && packet::unit_start(p) && p[PACKET - 1] == 2 {
            let at = packet::pes_header(p).unwrap().pts.unwrap();
            let pts = packet::read_timestamp(p, at);
            packet::write_timestamp(p, at, pts + 3 * FRAME_TICKS);
        }
    }
    rig.receive(1, &frames);
    rig.splice(1, false);
    rig.program.forget(1);
    let mut second = backup();
    rig.receive(2, &second.frames("KP", 20));
    rig.splice(2, false);
    rig.receive(2, &second.frames("K", 22));
    let seen = watch(&rig.out, 0x100, 0x101, 0x1000);
    assert_eq!(seen.tags, [0, 1, 2, 20, 21]);
    let shown_last = seen.video_pts[2];
    assert_eq!(
        packet::ahead33(seen.video_pts[3], shown_last),
        FRAME_TICKS as i64,
        "{:?}",
        seen.video_pts
    );
    assert_eq!(seen.dts_back, 0);
}
