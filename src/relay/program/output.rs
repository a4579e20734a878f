//! The session's output program (SPEC §7 "A splice the player never sees"): the first source's
//! PIDs, PMT PID and program number, with the continuity counters and clocks the viewers have
//! seen so far. A later source is mapped onto it ([`Mapping`]) and its packets rewritten in
//! place: PIDs, the session's own PAT and PMT, continued counters, rebased clocks.

use std::time::Duration;

use super::input::{Cut, Learnt};
use super::packet::{self, NULL_PID, PACKET, PAT_PID};
use super::psi::{self, Kind, PatProgram, Pmt, Stream};

/// 90 kHz ticks of a 25 fps frame: the frame duration assumed before one has been seen.
const DEFAULT_FRAME: u64 = 3600;
const PIDS: usize = 8192;

/// The clocks the viewers have seen last.
#[derive(Debug, Clone, Copy, Default)]
struct Clocks {
    pcr: Option<u64>,
    video_dts: Option<u64>,
    video_pts_max: Option<u64>,
    /// The last step between two video DTS.
    frame: Option<u64>,
}

/// The last PTS of one audio track, and the step before it.
#[derive(Debug, Clone, Copy)]
struct AudioClock {
    pid: u16,
    pts: u64,
    step: u64,
}

/// What the viewers see: one program, whatever feeds it.
#[derive(Debug)]
pub struct Output {
    program: PatProgram,
    pat_section: Vec<u8>,
    pmt: Pmt,
    /// Our PAT and PMT packets, continuity counters to be filled in when sent.
    pat_packet: [u8; PACKET],
    pmt_packet: [u8; PACKET],
    /// The first PMT after a program change carries the discontinuity indicator.
    pmt_discontinuity: bool,
    /// The last continuity counter sent per PID, `NONE` before any.
    cc: Box<[u8; PIDS]>,
    clocks: Clocks,
    audio: Vec<AudioClock>,
    /// The generation of the first source's PSI this copies, while it is passed through.
    copied: u32,
}

const NONE: u8 = 0xff;

impl Output {
    /// The program of the session's first source, once its PAT and PMT are known.
    pub fn of(learnt: &Learnt) -> Option<Output> {
        let (program, pmt) = (learnt.pat?, learnt.pmt.clone()?);
        let mut output = Output {
            program,
            pat_section: learnt.pat_section.clone(),
            pmt: pmt.clone(),
            pat_packet: [0; PACKET],
            pmt_packet: [0; PACKET],
            pmt_discontinuity: false,
            cc: Box::new([NONE; PIDS]),
            clocks: Clocks::default(),
            audio: Vec::new(),
            copied: learnt.generation,
        };
        output.set_program(pmt, false);
        Some(output)
    }

    /// While the first source is passed through: follows its PSI when it changes.
    pub fn follow(&mut self, learnt: &Learnt) {
        if learnt.generation == self.copied {
            return;
        }
        if let Some(output) = Output::of(learnt) {
            self.program = output.program;
            self.pat_section = output.pat_section;
            self.set_program(output.pmt, false);
        }
        self.copied = learnt.generation;
    }

    fn set_program(&mut self, pmt: Pmt, discontinuity: bool) {
        self.pmt = pmt;
        self.pmt_discontinuity = discontinuity;
        self.pat_packet =
            psi::section_packet(PAT_PID, &self.pat_section, false).unwrap_or_else(null_packet);
        self.pmt_packet = self.pmt_packet_for(false);
    }

    /// Our PMT in one packet; descriptors are dropped if the whole does not fit.
    fn pmt_packet_for(&self, discontinuity: bool) -> [u8; PACKET] {
        let pid = self.program.pmt_pid;
        psi::section_packet(pid, &psi::write_pmt(&self.pmt), discontinuity)
            .or_else(|| {
                let mut bare = self.pmt.clone();
                bare.program_info.clear();
                bare.streams.iter_mut().for_each(|s| s.descriptors.clear());
                psi::section_packet(pid, &psi::write_pmt(&bare), discontinuity)
            })
            .unwrap_or_else(null_packet)
    }

    fn next_cc(&mut self, pid: u16) -> u8 {
        let slot = &mut self.cc[usize::from(pid)];
        *slot = if *slot == NONE { 0 } else { (*slot + 1) & 0x0f };
        *slot
    }

    /// Learns from what the viewers got last (oldest first) their continuity counters and
    /// clocks, before a splice: the steady state never pays for it.
    pub fn catch_up<'a>(&mut self, recent: impl Iterator<Item = &'a [u8]>) {
        self.clocks = Clocks::default();
        self.audio.clear();
        for piece in recent {
            for packet in piece.chunks_exact(PACKET) {
                self.sent(packet);
            }
        }
    }

    /// Records a packet the viewers got: its counter and its clocks.
    fn sent(&mut self, packet: &[u8]) {
        let pid = packet::pid(packet);
        if pid == NULL_PID {
            return;
        }
        self.cc[usize::from(pid)] = packet::continuity(packet);
        if pid == self.pmt.pcr_pid
            && let Some(pcr) = packet::pcr(packet)
        {
            self.clocks.pcr = Some(pcr);
        }
        if !packet::unit_start(packet) {
            return;
        }
        let Some(kind) = self
            .pmt
            .streams
            .iter()
            .find(|s| s.pid == pid)
            .map(Stream::kind)
        else {
            return;
        };
        let Some(header) = packet::pes_header(packet) else {
            return;
        };
        let pts = header.pts.map(|at| packet::read_timestamp(packet, at));
        let dts = header
            .dts
            .map(|at| packet::read_timestamp(packet, at))
            .or(pts);
        match kind {
            Kind::Video(_) => {
                if let (Some(dts), Some(last)) = (dts, self.clocks.video_dts) {
                    let step = packet::ahead33(dts, last);
                    if step > 0 && step < 90_000 {
                        self.clocks.frame = Some(step as u64);
                    }
                }
                self.clocks.video_dts = dts.or(self.clocks.video_dts);
                if let Some(pts) = pts
                    && self
                        .clocks
                        .video_pts_max
                        .is_none_or(|max| packet::ahead33(pts, max) > 0)
                {
                    self.clocks.video_pts_max = Some(pts);
                }
            }
            Kind::Audio => {
                let Some(pts) = pts else { return };
                match self.audio.iter_mut().find(|a| a.pid == pid) {
                    Some(clock) => {
                        let step = packet::ahead33(pts, clock.pts);
                        if step > 0 && step < 90_000 {
                            clock.step = step as u64;
                        }
                        clock.pts = pts;
                    }
                    None => self.audio.push(AudioClock { pid, pts, step: 0 }),
                }
            }
            Kind::Other => {}
        }
    }

    /// Maps a source onto the program for a splice at `cut`, `gap` after the viewers' last
    /// bytes; changes the program (new PMT version) where the source really differs.
    pub fn map(&mut self, learnt: &Learnt, cut: &Cut, gap: Duration) -> Mapping {
        let mut mapping = self.routes(learnt);
        mapping.offset = self.rebase_offset(cut, gap);
        for stream in &self.pmt.streams {
            let min_pts = match stream.kind() {
                Kind::Audio => self
                    .audio
                    .iter()
                    .find(|a| a.pid == stream.pid)
                    .map(|a| packet::add33(a.pts, a.step.max(1))),
                _ => None,
            };
            mapping.gates.push(Gate {
                pid: stream.pid,
                open: false,
                min_pts,
            });
        }
        mapping
    }

    /// Maps a spliced-in source again after its PSI changed: same clock offset, no gates.
    pub fn remap(&mut self, learnt: &Learnt, old: &Mapping) -> Mapping {
        let mut mapping = self.routes(learnt);
        mapping.offset = old.offset;
        mapping
    }

    /// Where each of the source's PIDs goes, changing the program where it must.
    fn routes(&mut self, learnt: &Learnt) -> Mapping {
        let mut mapping = Mapping {
            route: Box::new([NULL_PID; PIDS]),
            source_pmt_pid: learnt.pat.map(|p| p.pmt_pid),
            offset: 0,
            gates: Vec::new(),
            discontinuity: Vec::new(),
            generation: learnt.generation,
        };
        let Some(source) = learnt.pmt.as_ref() else {
            return mapping;
        };
        let pmt_pid = self.program.pmt_pid;
        let (streams, pairs) = match_streams(&self.pmt.streams, &source.streams, pmt_pid);
        for &(from, to) in &pairs {
            mapping.route[usize::from(from)] = to;
        }
        let pcr_pid = match pairs.iter().find(|&&(from, _)| from == source.pcr_pid) {
            Some(&(_, to)) => to,
            None => {
                let taken = |pid: u16| streams.iter().any(|s| s.pid == pid);
                let pid = if taken(self.pmt.pcr_pid) {
                    free_pid(&streams, pmt_pid, source.pcr_pid)
                } else {
                    self.pmt.pcr_pid
                };
                mapping.route[usize::from(source.pcr_pid)] = pid;
                pid
            }
        };
        let changed = pcr_pid != self.pmt.pcr_pid
            || streams.len() != self.pmt.streams.len()
            || streams
                .iter()
                .zip(&self.pmt.streams)
                .any(|(a, b)| (a.pid, a.stream_type) != (b.pid, b.stream_type));
        if changed {
            let pmt = Pmt {
                program_number: self.program.program_number,
                version: (self.pmt.version + 1) & 0x1f,
                pcr_pid,
                program_info: source.program_info.clone(),
                streams,
            };
            self.set_program(pmt, true);
            mapping.discontinuity = self.pmt.streams.iter().map(|s| s.pid).collect();
        }
        mapping
    }

    /// The clock offset that makes the source's frame at `cut` come one frame (or the real gap)
    /// after the viewers' last, with the PCR and the PTS still moving forward.
    fn rebase_offset(&self, cut: &Cut, gap: Duration) -> u64 {
        let frame = self.clocks.frame.unwrap_or(DEFAULT_FRAME);
        let gap = (gap.as_micros() * 9 / 100) as u64;
        let step = frame.max(gap);
        let mut offset = match (self.clocks.video_dts, cut.dts, self.clocks.pcr, cut.pcr) {
            (Some(last), Some(first), _, _) => packet::offset33(first, packet::add33(last, step)),
            (_, _, Some(last), Some(first)) => packet::offset33(first, packet::add33(last, step)),
            _ => 0,
        };
        // Never behind what was sent: the first frame shown once the last one shown has had its
        // frame's time, the PCR after the last PCR.
        let floors = [
            (self.clocks.video_pts_max, cut.pts, frame),
            (self.clocks.pcr, cut.pcr, 1),
        ];
        for (last, first, margin) in floors {
            if let (Some(last), Some(first)) = (last, first) {
                let short =
                    packet::ahead33(packet::add33(last, margin), packet::add33(first, offset));
                if short > 0 {
                    offset = packet::add33(offset, short as u64);
                }
            }
        }
        offset
    }

    /// Rewrites one packet of a mapped source in place.
    pub fn rewrite(&mut self, packet: &mut [u8], mapping: &mut Mapping) {
        let pid = packet::pid(packet);
        if pid == NULL_PID {
            return;
        }
        if pid == PAT_PID || Some(pid) == mapping.source_pmt_pid {
            self.replace_psi(packet, pid == PAT_PID);
            return;
        }
        let to = mapping.route[usize::from(pid)];
        if to == NULL_PID || !mapping.admit(packet, to) {
            packet::make_null(packet);
            return;
        }
        packet::set_pid(packet, to);
        let cc = if packet::has_payload(packet) {
            self.next_cc(to)
        } else {
            self.cc[usize::from(to)] & 0x0f
        };
        packet::set_continuity(packet, cc);
        rebase(packet, mapping.offset);
        if let Some(i) = mapping.discontinuity.iter().position(|&p| p == to)
            && packet::set_discontinuity(packet)
        {
            mapping.discontinuity.swap_remove(i);
        }
    }

    /// Puts our PAT or PMT in place of the source's (a section's later packets become null).
    fn replace_psi(&mut self, packet: &mut [u8], pat: bool) {
        if !packet::unit_start(packet) {
            packet::make_null(packet);
            return;
        }
        if pat {
            packet.copy_from_slice(&self.pat_packet);
        } else if self.pmt_discontinuity {
            packet.copy_from_slice(&self.pmt_packet_for(true));
            self.pmt_discontinuity = false;
        } else {
            packet.copy_from_slice(&self.pmt_packet);
        }
        let cc = self.next_cc(packet::pid(packet));
        packet::set_continuity(packet, cc);
    }
}

/// Moves a packet's PCR, OPCR, PTS and DTS on by `offset` ticks.
fn rebase(packet: &mut [u8], offset: u64) {
    if offset == 0 {
        return;
    }
    let (pcr, opcr) = packet::clock_fields(packet);
    for at in [pcr, opcr].into_iter().flatten() {
        let base = packet::read_clock_base(packet, at);
        packet::write_clock_base(packet, at, packet::add33(base, offset));
    }
    if packet::unit_start(packet)
        && let Some(header) = packet::pes_header(packet)
    {
        for at in [header.pts, header.dts].into_iter().flatten() {
            let ts = packet::read_timestamp(packet, at);
            packet::write_timestamp(packet, at, packet::add33(ts, offset));
        }
    }
}

fn null_packet() -> [u8; PACKET] {
    let mut p = [0xffu8; PACKET];
    p[..4].copy_from_slice(&[0x47, 0x1f, 0xff, 0x10]);
    p
}

/// Which output stream a source's elementary stream feeds: video to video, audio tracks in
/// order (by language where both PMTs say), others by stream type; a source's stream with no
/// match is added with a free PID. Returns the new stream list and the (source, output) PIDs.
fn match_streams(
    output: &[Stream],
    source: &[Stream],
    pmt_pid: u16,
) -> (Vec<Stream>, Vec<(u16, u16)>) {
    let mut used = vec![false; source.len()];
    let mut streams = Vec::new();
    let mut pairs = Vec::new();
    for out in output {
        let same_class = |s: &Stream| match (out.kind(), s.kind()) {
            (Kind::Video(_), Kind::Video(_)) | (Kind::Audio, Kind::Audio) => true,
            (Kind::Other, Kind::Other) => s.stream_type == out.stream_type,
            _ => false,
        };
        let free = |i: &usize| !used[*i] && same_class(&source[*i]);
        let by_language = (0..source.len())
            .filter(free)
            .find(|&i| out.language().is_some() && source[i].language() == out.language());
        let Some(i) = by_language.or_else(|| (0..source.len()).find(free)) else {
            continue;
        };
        used[i] = true;
        let from = &source[i];
        streams.push(Stream {
            stream_type: from.stream_type,
            pid: out.pid,
            descriptors: if from.stream_type == out.stream_type {
                out.descriptors.clone()
            } else {
                from.descriptors.clone()
            },
        });
        pairs.push((from.pid, out.pid));
    }
    for (from, _) in source.iter().zip(&used).filter(|&(_, &used)| !used) {
        let pid = free_pid(&streams, pmt_pid, from.pid);
        streams.push(Stream {
            pid,
            ..from.clone()
        });
        pairs.push((from.pid, pid));
    }
    (streams, pairs)
}

/// `wanted` if no stream (nor the PMT) has it, else the first free PID from 0x100.
fn free_pid(streams: &[Stream], pmt_pid: u16, wanted: u16) -> u16 {
    let taken = |pid: u16| pid == pmt_pid || streams.iter().any(|s| s.pid == pid);
    if (0x20..NULL_PID).contains(&wanted) && !taken(wanted) {
        return wanted;
    }
    (0x100..NULL_PID).find(|&p| !taken(p)).unwrap_or(NULL_PID)
}

/// Holds an output stream back after a splice until its first PES start (for audio: the first
/// one after what was already sent).
#[derive(Debug, Clone, Copy)]
struct Gate {
    pid: u16,
    open: bool,
    min_pts: Option<u64>,
}

/// How one spliced-in source's packets become the output program's.
#[derive(Debug)]
pub struct Mapping {
    /// Output PID per source PID; `NULL_PID`: dropped.
    route: Box<[u16; PIDS]>,
    source_pmt_pid: Option<u16>,
    /// Added to every clock, mod 2^33.
    offset: u64,
    gates: Vec<Gate>,
    /// Output PIDs still to carry the discontinuity indicator after a program change.
    discontinuity: Vec<u16>,
    /// The source's PSI generation this was made for.
    pub generation: u32,
}

impl Mapping {
    /// Whether a packet bound for output PID `to` may pass its gate.
    fn admit(&mut self, packet: &[u8], to: u16) -> bool {
        let Some(gate) = self.gates.iter_mut().find(|g| g.pid == to) else {
            // A PCR-only PID has no gate.
            return true;
        };
        if gate.open {
            return true;
        }
        if !packet::unit_start(packet) {
            return false;
        }
        let pts = packet::pes_header(packet)
            .and_then(|h| h.pts)
            .map(|at| packet::add33(packet::read_timestamp(packet, at), self.offset));
        gate.open = match (gate.min_pts, pts) {
            (Some(min), Some(pts)) => packet::ahead33(pts, min) >= 0,
            _ => true,
        };
        gate.open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebase_moves_pcr_opcr_pts_and_dts_across_the_wrap_and_keeps_the_rest() {
        let top = (1u64 << 33) - 1;
        let mut p = [0xffu8; PACKET];
        p[..4].copy_from_slice(&[0x47, 0x41, 0x00, 0x30]);
        p[4] = 13;
        p[5] = 0x18;
        p[6..18].copy_from_slice(&[0, 0, 0, 0, 0x7e, 0x2a, 0, 0, 0, 0, 0x7f, 0x05]);
        packet::write_clock_base(&mut p, 6, top - 1);
        packet::write_clock_base(&mut p, 12, top - 2);
        let pes = 18;
        p[pes..pes + 9].copy_from_slice(&[0, 0, 1, 0xe0, 0, 0, 0x80, 0xc0, 10]);
        p[pes + 9..pes + 19].copy_from_slice(&[0x31, 0, 1, 0, 1, 0x11, 0, 1, 0, 1]);
        packet::write_timestamp(&mut p, pes + 9, top);
        packet::write_timestamp(&mut p, pes + 14, top - 3600);
        let before = p;
        rebase(&mut p, 7200);
        assert_eq!(packet::clock_fields(&p), (Some(6), Some(12)));
        assert_eq!(packet::read_clock_base(&p, 6), 7198);
        assert_eq!(packet::read_clock_base(&p, 12), 7197);
        let header = packet::pes_header(&p).unwrap();
        assert_eq!(packet::read_timestamp(&p, header.pts.unwrap()), 7199);
        assert_eq!(packet::read_timestamp(&p, header.dts.unwrap()), 3599);
        assert_eq!(
            (p[11], p[17]),
            (0x2a, 0x05),
            "the 27 MHz extensions are kept"
        );
        assert_eq!(
            p[pes + 19..],
            before[pes + 19..],
            "the payload is untouched"
        );
        assert_eq!(p[..6], before[..6]);
    }
}
