//! MPEG-TS from upstream: the aligner that finds the packet grid, the PSI and PES parsers that
//! learn a source's program, the splice that maps one source onto another, and the video
//! sequence headers the measurements read.
//!
//! Random bytes rarely make a PAT with a good CRC, so the program-level targets read their input
//! as a script over synthetic programs ([`Synth`]): frames, PSI, raw packets and damaged frames,
//! in an order and with PIDs and clocks the fuzzer chooses.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::{Script, Splits};
use crate::relay::program::input::SourceStream;
use crate::relay::program::packet::{self, NULL_PID, PACKET, PAT_PID};
use crate::relay::program::psi::{self, Codec, PatProgram, SectionReader};
use crate::relay::program::synth::Synth;
use crate::relay::program::{Program, sps};
use crate::relay::ts::{Aligner, NOT_TS_LIMIT};

/// A sequence header of the codec the first byte picks (H.264 SPS, HEVC SPS, MPEG-2): never a
/// panic, and any picture it yields is one a decoder could show.
pub fn sequence_header(data: &[u8]) {
    let Some((&selector, unit)) = data.split_first() else {
        return;
    };
    let codec = match selector % 3 {
        0 => Codec::H264,
        1 => Codec::Hevc,
        _ => Codec::Mpeg2,
    };
    if let Some(picture) = sps::parse(codec, unit) {
        assert!(
            (1..=16_384).contains(&picture.width) && (1..=16_384).contains(&picture.height),
            "{picture:?}"
        );
        if let Some(rate) = picture.frame_rate {
            assert!(rate.is_finite() && rate > 0.0, "{picture:?}");
        }
    }
}

/// Upstream bytes (repeated up to 8 times, as the first byte says, so that junk reaches the
/// not-TS limit) in random splits the first byte seeds: never a panic; output is whole packets
/// from a PAT on; nothing is both forwarded and counted skipped; `NotTs` is final, and comes for
/// any stream of the limit's length without a sync byte.
pub fn ts_aligner(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let repeats = 1 + usize::from(selector >> 5);
    let mut aligner = Aligner::new();
    let mut out = 0usize;
    let mut first = true;
    let mut not_ts = false;
    let mut splits = Splits::new(selector);
    for _ in 0..repeats {
        for piece in splits.cut(stream) {
            let result = aligner.push(BytesMut::from(piece), &mut |aligned| {
                assert!(!aligned.is_empty() && aligned.len() % PACKET == 0);
                for p in aligned.chunks_exact(PACKET) {
                    assert_eq!(p[0], 0x47, "a packet off the grid");
                }
                if first {
                    assert!(packet::unit_start(&aligned) && packet::pid(&aligned) == PAT_PID);
                    first = false;
                }
                out += aligned.len();
            });
            assert!(!not_ts || result.is_err(), "NotTs undone");
            not_ts = result.is_err();
        }
    }
    let total = (stream.len() * repeats) as u64;
    assert!(out as u64 + aligner.skipped() <= total);
    if !stream.contains(&0x47) && total >= NOT_TS_LIMIT {
        assert!(
            not_ts,
            "{total} bytes without a sync byte taken for MPEG-TS"
        );
    }
}

/// PIDs for a program, kept apart from PSI, null and each other.
fn program_pids(script: &mut Script) -> (u16, u16, Option<u16>) {
    let pmt = 0x20 + script.u16() % 0x1000;
    let video = 0x1020 + script.u16() % 0x0f00;
    let audio = script.byte().is_multiple_of(2).then_some(video + 1);
    (pmt, video, audio)
}

/// A synthetic program whose PIDs, codec and clock origin the script picks.
fn synth(script: &mut Script) -> Synth {
    let (pmt, video, audio) = program_pids(script);
    let mut synth = Synth::new(pmt, video, audio);
    synth.program_number = 1 + script.u16() % 100;
    synth.hevc = script.byte().is_multiple_of(4);
    synth.clock = u64::from(script.u16()) << 17;
    synth
}

/// The next bytes a source sends: a keyframe, a frame, its PSI, a raw packet, or a damaged frame.
fn source_step(synth: &mut Synth, script: &mut Script) -> Vec<u8> {
    let op = script.byte();
    let tag = script.byte();
    match op % 8 {
        0 => synth.frame(true, tag),
        1..=3 => synth.frame(false, tag),
        4 => synth.psi(),
        5 => {
            let mut raw = [0xff; PACKET];
            raw[0] = 0x47;
            let body = script.take(PACKET - 1);
            raw[1..1 + body.len()].copy_from_slice(body);
            raw.to_vec()
        }
        _ => {
            let mut frame = synth.frame(op & 0x80 != 0, tag);
            let at = usize::from(script.u16()) % frame.len();
            frame[at] ^= script.byte() | 1;
            // Damage inside packets, not to the grid the aligner has already found.
            frame[at - at % PACKET] = 0x47;
            frame
        }
    }
}

/// A PSI section made consistent (length field, CRC) around the fuzzer's bytes.
fn sealed_section(body: &[u8]) -> Option<Vec<u8>> {
    if body.len() < 8 || body.len() + 4 > 1024 {
        return None;
    }
    let mut section = body.to_vec();
    let len = (section.len() + 4 - 3) as u16;
    section[1] = (section[1] & 0xf0) | (len >> 8) as u8;
    section[2] = len as u8;
    let crc = psi::crc32_mpeg2(&section);
    section.extend_from_slice(&crc.to_be_bytes());
    Some(section)
}

/// The PSI and PES parsers. With an even first byte, a section around the fuzzer's bytes: a PMT
/// that parses writes back to itself, and a section that fits a packet reads back from it. With
/// an odd one, a scripted source scanned in pieces: cuts on the packet grid inside what is held,
/// starts that are starts, and every held byte handed over once.
pub fn psi_pes(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector % 2 == 0 {
        let Some(section) = sealed_section(rest) else {
            return;
        };
        let _ = psi::parse_pat(&section);
        if let Some(pmt) = psi::parse_pmt(&section) {
            let written = psi::write_pmt(&pmt);
            assert_eq!(psi::parse_pmt(&written).as_ref(), Some(&pmt), "{pmt:?}");
        }
        if let Some(p) = psi::section_packet(0x100, &section, false) {
            assert_eq!(p[0], 0x47);
            let mut reader = SectionReader::default();
            assert_eq!(reader.push(&p), Some(&section[..]));
        }
        return;
    }
    let mut script = Script::new(rest);
    let mut source = synth(&mut script);
    let mut stream = SourceStream::default();
    let mut handed = 0u64;
    while !script.is_empty() {
        let bytes = source_step(&mut source, &mut script);
        for p in bytes.chunks_exact(PACKET) {
            if let Some(header) = packet::pes_header(p) {
                assert!(header.data <= PACKET);
                for at in [header.pts, header.dts].into_iter().flatten() {
                    packet::read_timestamp(p, at);
                }
            }
            let (pcr, opcr) = packet::clock_fields(p);
            for at in [pcr, opcr].into_iter().flatten() {
                packet::read_clock_base(p, at);
            }
        }
        stream.push(BytesMut::from(&bytes[..]));
        let (from, end) = (stream.held_from(), stream.end());
        for cut in stream.cuts_between(from, end) {
            assert!(
                cut.at % PACKET as u64 == 0 && (from..end).contains(&cut.at),
                "{cut:?}"
            );
        }
        if let Some(start) = stream.first_start() {
            assert!(start.is_start(), "{start:?}");
        }
        if script.byte().is_multiple_of(4)
            && let Some(upto) = stream.last_cut()
        {
            stream.take_until(upto, &mut |piece| {
                assert_eq!(piece.len() % PACKET, 0);
                handed += piece.len() as u64;
            });
            assert_eq!(handed, stream.held_from());
        }
    }
}

/// What the viewers have been shown: the program as a player tracks it, checked from the first
/// splice that replaces a program they already had.
#[derive(Default)]
struct Viewer {
    out: Vec<u8>,
    /// Output offset where the checks begin (the first splice onto a known program).
    checked_from: Option<usize>,
}

impl Viewer {
    /// The PAT and PMTs seen in `out[..upto]`: the program, and every PID a PMT listed.
    fn programs(&self, upto: usize) -> (Option<PatProgram>, Vec<u16>) {
        let mut pat = None;
        let mut listed = Vec::new();
        let mut readers: HashMap<u16, SectionReader> = HashMap::new();
        for p in self.out[..upto].chunks_exact(PACKET) {
            let pid = packet::pid(p);
            if pid == PAT_PID {
                if let Some(found) = readers
                    .entry(pid)
                    .or_default()
                    .push(p)
                    .and_then(psi::parse_pat)
                {
                    pat = Some(found);
                }
            } else if pat.is_some_and(|pat| pat.pmt_pid == pid)
                && let Some(pmt) = readers
                    .entry(pid)
                    .or_default()
                    .push(p)
                    .and_then(psi::parse_pmt)
            {
                listed.push(pmt.pcr_pid);
                listed.extend(pmt.streams.iter().map(|s| s.pid));
            }
        }
        (pat, listed)
    }

    fn splicing(&mut self) {
        if self.checked_from.is_none() && !self.programs(self.out.len()).1.is_empty() {
            self.checked_from = Some(self.out.len());
        }
    }

    /// From the first splice on: one program (the same PAT), only PIDs its PMTs list, and
    /// continuity counters that run on across every splice.
    fn check(&self) {
        let Some(from) = self.checked_from else {
            return;
        };
        let (before, _) = self.programs(from);
        let (_, listed) = self.programs(self.out.len());
        let mut pat_reader = SectionReader::default();
        let mut cc: HashMap<u16, u8> = HashMap::new();
        for (i, p) in self.out.chunks_exact(PACKET).enumerate() {
            let pid = packet::pid(p);
            let checked = i * PACKET >= from;
            if pid == NULL_PID {
                continue;
            }
            if pid == PAT_PID
                && let Some(pat) = pat_reader.push(p).and_then(psi::parse_pat)
                && checked
            {
                assert_eq!(Some(pat), before, "the program changed at a splice");
            }
            let discontinuity = p[3] & 0x20 != 0 && p[4] > 0 && p[5] & 0x80 != 0;
            let counter = packet::continuity(p);
            if checked && !discontinuity {
                let pmt_pid = before.map(|b| b.pmt_pid);
                assert!(
                    pid == PAT_PID || Some(pid) == pmt_pid || listed.contains(&pid),
                    "PID {pid:#x} at packet {i} is in no PMT"
                );
                if let Some(&last) = cc.get(&pid) {
                    let want = if packet::has_payload(p) {
                        (last + 1) & 0x0f
                    } else {
                        last
                    };
                    assert_eq!(counter, want, "continuity of PID {pid:#x} at packet {i}");
                }
            }
            cc.insert(pid, counter);
        }
    }
}

fn release(program: &mut Program, now: Instant, viewer: &mut Viewer) {
    program.release(now, &mut |piece| {
        assert!(!piece.data.is_empty() && piece.data.len() % PACKET == 0);
        if let Some(start) = piece.start {
            assert!(start < piece.data.len() && start % PACKET == 0, "{start}");
        }
        viewer.out.extend_from_slice(&piece.data);
    });
}

/// Two scripted sources and a script of splices between them, with time moving on: never a
/// panic; the viewers' bytes are whole packets; and from the first splice onto a program they
/// already have, they keep its PAT, carry only PIDs its PMTs list, and never break a PID's
/// continuity counters.
pub fn splice(data: &[u8]) {
    splice_run(data).check();
}

fn splice_run(data: &[u8]) -> Viewer {
    let mut script = Script::new(data);
    let mut sources = [synth(&mut script), synth(&mut script)];
    let mut program = Program::new(Duration::from_millis(1500));
    let mut now = Instant::now();
    let mut viewer = Viewer::default();
    program.splice(0, false, now);
    while !script.is_empty() {
        let op = script.byte();
        match op % 8 {
            0..=4 => {
                let attempt = u64::from(op % 2);
                let bytes = source_step(&mut sources[op as usize % 2], &mut script);
                program.receive(attempt, BytesMut::from(&bytes[..]));
            }
            5 | 6 => {
                viewer.splicing();
                program.splice(u64::from(op % 2), op & 0x80 != 0, now);
            }
            _ => now += Duration::from_millis(u64::from(script.byte()) * 20),
        }
        release(&mut program, now, &mut viewer);
    }
    viewer
}

#[cfg(test)]
mod tests {
    /// A script of two programs with different PIDs, keyframes and frames on both, splices
    /// between them, and time moving on.
    fn structured_script() -> Vec<u8> {
        let a = [0, 0x10, 0, 0x20, 0, 0, 1, 1, 0, 0];
        let b = [0, 0x30, 0, 0x40, 1, 0, 2, 0, 0x12, 0x34];
        let (key_a, frame_a, key_b, frame_b) = ([0, 0], [2, 1], [1, 0], [3, 1]);
        let time = [7, 2];
        let mut script = [a, b].concat();
        let mut tag = 0u8;
        let mut step = |script: &mut Vec<u8>, op: [u8; 2]| {
            tag += 1;
            script.extend_from_slice(&[op[0], op[1], tag]);
            script.extend_from_slice(&time);
        };
        for _ in 0..3 {
            for op in [key_a, frame_a, frame_a, key_b, frame_b] {
                step(&mut script, op);
            }
        }
        script.push(5);
        for op in [frame_b, frame_b, key_a, key_b, frame_b, frame_a] {
            step(&mut script, op);
        }
        script.push(6);
        for op in [frame_a, key_a, frame_a, key_b] {
            step(&mut script, op);
        }
        script.push(5 | 0x80);
        for op in [frame_b, key_b, frame_b] {
            step(&mut script, op);
        }
        script
    }

    /// The checks are reached: a splice onto a program the viewers already have, with output
    /// after it, passes them.
    #[test]
    fn a_structured_script_reaches_the_checks_and_passes() {
        let viewer = super::splice_run(&structured_script());
        let from = viewer.checked_from.expect("a splice onto a known program");
        assert!(
            viewer.out.len() > from + 10 * super::PACKET,
            "{} {from}",
            viewer.out.len()
        );
        viewer.check();
    }
}
