//! One source's stream as the output program sees it: scanned packet by packet as it arrives
//! (its PAT and PMT learnt, its frames judged), and held from its latest *cut* on.
//!
//! A cut is a place where the source can be left or joined cleanly: just before a video PES (a
//! frame) starts, moved back to the PAT that precedes the frame when there is one, and only
//! where no audio PES is half sent. A cut that begins with a PAT and whose frame is a
//! random-access point is a *start*: a splice or a new viewer begins there.
//!
//! Bytes after the latest cut are held back until the next one arrives (about a frame), so that
//! a source that dies or is left mid-frame never hands the player a truncated frame.

use std::collections::VecDeque;

use bytes::BytesMut;

use super::access::FrameScan;
use super::learn::Learner;
use super::packet::{self, PACKET, PAT_PID};
use super::psi::{self, Codec, Kind, PatProgram, Pmt, SectionReader};
use crate::measure::Measurement;

/// The most held back from one source: a source with no cuts (no program found, no video PES
/// starts) must not hold the viewers up, and one waiting to be spliced in is kept from its
/// latest PAT only this far back.
pub const HOLD_LIMIT: u64 = 1024 * 1024;

/// A place in the source's stream where it can be left or joined cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// Offset in the source's stream (bytes since its first aligned byte).
    pub at: u64,
    /// The cut begins with a PAT (then the PMT, then the frame).
    pub pat_first: bool,
    /// Whether the frame is a random-access point, once known.
    pub access: Option<bool>,
    /// The source's first PCR base at or after the cut, filled in when it is spliced in.
    pub pcr: Option<u64>,
    /// The frame's DTS (its PTS when it has no DTS) and PTS.
    pub dts: Option<u64>,
    pub pts: Option<u64>,
}

impl Cut {
    pub fn is_start(&self) -> bool {
        self.pat_first && self.access == Some(true)
    }
}

/// What the scan learnt of the source's program.
#[derive(Debug, Clone, Default)]
pub struct Learnt {
    pub pat: Option<PatProgram>,
    pub pat_section: Vec<u8>,
    pub pmt: Option<Pmt>,
    /// Bumped whenever the PAT or the PMT changes.
    pub generation: u32,
}

/// Audio PES packets of one PID, to know whether one is half sent.
#[derive(Debug, Clone, Copy)]
struct AudioTrack {
    pid: u16,
    /// Bytes of the current PES still to come (0: complete, or of unknown length).
    remaining: usize,
}

/// The stream the cuts follow: the video, or the first audio track of a radio program.
#[derive(Debug, Clone, Copy)]
struct Lead {
    pid: u16,
    codec: Option<Codec>,
}

#[derive(Debug, Default)]
struct Scan {
    pat_reader: SectionReader,
    pmt_reader: SectionReader,
    pmt_section: Vec<u8>,
    learnt: Learnt,
    lead: Option<Lead>,
    pcr_pid: Option<u16>,
    audio: Vec<AudioTrack>,
    /// The first PAT since the lead stream's last packet, and whether audio was whole there.
    pat_since_lead: Option<(u64, bool)>,
    frame: Option<FrameScan>,
    /// The current frame has a cut (the newest one), still waiting for its verdict.
    frame_has_cut: bool,
    learner: Learner,
    /// The lead's packets in mid-frame are wanted: the frame awaits its verdict, or the learner
    /// gathers a sequence header. One flag, so the bulk of the stream costs one check.
    mid_frame_wanted: bool,
}

/// One source: its scan, its cuts, and its bytes from the oldest cut still wanted.
#[derive(Debug, Default)]
pub struct SourceStream {
    scan: Scan,
    cuts: VecDeque<Cut>,
    held: VecDeque<BytesMut>,
    /// Stream offset of `held`'s first byte.
    held_from: u64,
    /// Stream offset just past the last byte received.
    end: u64,
}

impl SourceStream {
    /// Scans and holds the next whole packets of the source.
    pub fn push(&mut self, data: BytesMut) {
        let lead = self.scan.lead.map(|l| l.pid);
        for (i, packet) in data.chunks_exact(PACKET).enumerate() {
            // The bulk of a stream: the lead's packets in mid-frame, once the frame is judged.
            let mid_frame = Some(packet::pid(packet)) == lead && !packet::unit_start(packet);
            if mid_frame && !self.scan.mid_frame_wanted {
                if self.scan.pat_since_lead.is_some() {
                    self.scan.pat_since_lead = None;
                }
                continue;
            }
            let at = self.end + (i * PACKET) as u64;
            self.scan.packet(packet, at, &mut self.cuts);
        }
        self.end += data.len() as u64;
        self.held.push_back(data);
    }

    /// The source's first PCR base from `from` on, in the bytes still held.
    pub fn first_pcr(&self, from: u64) -> Option<u64> {
        let pcr_pid = self.scan.pcr_pid?;
        let mut at = self.held_from;
        for piece in &self.held {
            let skip = from.saturating_sub(at).min(piece.len() as u64) as usize;
            at += piece.len() as u64;
            let found = piece[skip..]
                .chunks_exact(PACKET)
                .filter(|p| packet::pid(p) == pcr_pid)
                .find_map(packet::pcr);
            if found.is_some() {
                return found;
            }
        }
        None
    }

    pub fn learnt(&self) -> &Learnt {
        &self.scan.learnt
    }

    /// What has been measured of the stream so far.
    pub fn measurement(&self) -> Option<Measurement> {
        self.scan.learner.measurement()
    }

    /// The measurement, once, when it is complete.
    pub fn take_settled(&mut self) -> Option<Measurement> {
        self.scan.learner.take_settled()
    }

    /// The measurement not taken yet, if it is worth keeping.
    pub fn take_unreported(&mut self) -> Option<Measurement> {
        self.scan.learner.take_unreported()
    }

    /// The earliest start still held.
    pub fn first_start(&self) -> Option<Cut> {
        self.cuts.iter().find(|c| c.is_start()).copied()
    }

    /// The earliest held cut that begins with a PAT.
    pub fn first_pat_cut(&self) -> Option<Cut> {
        self.cuts.iter().find(|c| c.pat_first).copied()
    }

    /// The newest cut: where the held-back tail begins.
    pub fn last_cut(&self) -> Option<u64> {
        self.cuts.back().map(|c| c.at)
    }

    /// The cuts from `from` (inclusive) to `to` (exclusive).
    pub fn cuts_between(&self, from: u64, to: u64) -> impl Iterator<Item = &Cut> {
        self.cuts.iter().filter(move |c| c.at >= from && c.at < to)
    }

    pub fn held_from(&self) -> u64 {
        self.held_from
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    /// Hands the held bytes before `upto` to `out` in order, as the pieces they were received
    /// in (split where needed, never copied), and forgets the cuts before `upto`.
    pub fn take_until(&mut self, upto: u64, out: &mut impl FnMut(BytesMut)) {
        while self.held_from < upto {
            let Some(front) = self.held.front_mut() else {
                break;
            };
            let want = (upto - self.held_from) as usize;
            let piece = if front.len() <= want {
                self.held.pop_front().unwrap_or_default()
            } else {
                front.split_to(want)
            };
            self.held_from += piece.len() as u64;
            out(piece);
        }
        while self.cuts.front().is_some_and(|c| c.at < upto) {
            self.cuts.pop_front();
        }
    }

    /// Drops the held bytes and cuts before `upto`.
    pub fn discard_until(&mut self, upto: u64) {
        self.take_until(upto, &mut |_| {});
    }

    /// While the source only waits to be spliced in: keeps the earliest start, or else from the
    /// newest cut at a PAT (for a forced splice) or the newest cut (whose frame may yet prove a
    /// start), and drops what lies before.
    pub fn keep_recent(&mut self) {
        let keep = self
            .first_start()
            .or_else(|| {
                let recent = |c: &&Cut| c.pat_first && self.end - c.at <= HOLD_LIMIT;
                self.cuts.iter().rev().find(recent).copied()
            })
            .map(|c| c.at)
            .or(self.last_cut())
            .unwrap_or(self.end);
        self.discard_until(keep);
    }
}

impl Scan {
    /// Reads one packet at stream offset `at`: a cut made just before it (or before the PAT
    /// that preceded it) goes to `cuts`, and so does the verdict on the newest cut's frame.
    /// Most packets are the lead's, in mid-frame: they cost a PID and a flag check.
    fn packet(&mut self, packet: &[u8], at: u64, cuts: &mut VecDeque<Cut>) {
        let pid = packet::pid(packet);
        let start = packet::unit_start(packet);
        if let Some(lead) = self.lead.filter(|l| l.pid == pid) {
            if start {
                self.frame_starts(packet, at, lead, cuts);
            } else {
                if self.learner.wants_lead_packets() {
                    self.learner.lead_packet(packet::payload(packet));
                }
                if self.frame_has_cut
                    && let Some(frame) = self.frame.as_mut()
                    && let Some(verdict) = frame.push(packet::payload(packet))
                {
                    judge_newest(cuts, verdict);
                    self.frame_has_cut = false;
                }
            }
            self.mid_frame_wanted = self.frame_has_cut || self.learner.wants_lead_packets();
            self.pat_since_lead = None;
            return;
        }
        if pid == PAT_PID {
            if let Some(cut) = self.pat_packet(packet, at) {
                cuts.push_back(cut);
            }
            return;
        }
        if Some(pid) == self.learnt.pat.map(|p| p.pmt_pid) {
            self.pmt_packet(packet);
            return;
        }
        if let Some(track) = self.audio.iter_mut().find(|t| t.pid == pid) {
            let len = packet::payload(packet).len();
            if start {
                let header = packet::pes_header(packet);
                if let Some(h) = header.filter(|_| self.learner.learning()) {
                    self.learner
                        .audio_start(pid, packet.get(h.data..).unwrap_or_default());
                }
                track.remaining = header
                    .filter(|h| h.length > 0)
                    .map_or(0, |h| (usize::from(h.length) + 6).saturating_sub(len));
            } else {
                track.remaining = track.remaining.saturating_sub(len);
            }
        }
    }

    fn audio_whole(&self) -> bool {
        self.audio.iter().all(|t| t.remaining == 0)
    }

    fn pat_packet(&mut self, packet: &[u8], at: u64) -> Option<Cut> {
        if packet::unit_start(packet) && self.pat_since_lead.is_none() {
            self.pat_since_lead = Some((at, self.audio_whole()));
        }
        if let Some(section) = self.pat_reader.push(packet)
            && section != self.learnt.pat_section
            && let Some(program) = psi::parse_pat(section)
        {
            self.learnt.pat_section = section.to_vec();
            if self
                .learnt
                .pat
                .is_some_and(|p| p.pmt_pid != program.pmt_pid)
            {
                self.learnt.pmt = None;
                self.lead = None;
            }
            self.learnt.pat = Some(program);
            self.learnt.generation += 1;
        }
        // Until the program is known every PAT is a cut, so a forced splice has somewhere to go.
        (self.lead.is_none() && packet::unit_start(packet)).then_some(Cut {
            at,
            pat_first: true,
            access: Some(false),
            pcr: None,
            dts: None,
            pts: None,
        })
    }

    fn pmt_packet(&mut self, packet: &[u8]) {
        let Some(section) = self.pmt_reader.push(packet) else {
            return;
        };
        if section == self.pmt_section {
            return;
        }
        let Some(pmt) = psi::parse_pmt(section) else {
            return;
        };
        self.pmt_section = section.to_vec();
        self.learner.pmt(&pmt);
        self.mid_frame_wanted = self.frame_has_cut || self.learner.wants_lead_packets();
        let video = pmt.streams.iter().find_map(|s| match s.kind() {
            Kind::Video(codec) => Some((s.pid, codec)),
            _ => None,
        });
        let audio: Vec<u16> = pmt
            .streams
            .iter()
            .filter(|s| s.kind() == Kind::Audio)
            .map(|s| s.pid)
            .collect();
        self.lead = match (video, audio.first()) {
            (Some((pid, codec)), _) => Some(Lead {
                pid,
                codec: Some(codec),
            }),
            (None, Some(&pid)) => Some(Lead { pid, codec: None }),
            (None, None) => None,
        };
        self.audio = audio
            .into_iter()
            .map(|pid| AudioTrack { pid, remaining: 0 })
            .collect();
        self.pcr_pid = Some(pmt.pcr_pid);
        self.learnt.pmt = Some(pmt);
        self.learnt.generation += 1;
    }

    /// A PES of the lead stream starts: judge the previous frame, start on this one, and cut
    /// here if the place is clean.
    fn frame_starts(&mut self, packet: &[u8], at: u64, lead: Lead, cuts: &mut VecDeque<Cut>) {
        if let Some(mut previous) = self.frame.take()
            && self.frame_has_cut
        {
            judge_newest(cuts, previous.finish());
        }
        let header = packet::pes_header(packet);
        let clean = match self.pat_since_lead {
            Some((_, audio_whole)) => audio_whole,
            // Radio: the lead is an audio track, whose own PES just ended.
            None => self
                .audio
                .iter()
                .all(|t| t.pid == lead.pid || t.remaining == 0),
        };
        let pts = header
            .and_then(|h| h.pts)
            .map(|o| packet::read_timestamp(packet, o));
        let dts = header
            .and_then(|h| h.dts)
            .map(|o| packet::read_timestamp(packet, o))
            .or(pts);
        if self.learner.learning() {
            let es = header
                .and_then(|h| packet.get(h.data..))
                .unwrap_or_default();
            match lead.codec {
                Some(_) => self.learner.frame_start(at, dts, es),
                // Radio: the lead is the audio, timed by its own PES.
                None => {
                    self.learner.frame_start(at, dts, &[]);
                    self.learner.audio_start(lead.pid, es);
                }
            }
        }
        let access = match lead.codec {
            None => Some(true),
            Some(codec) => {
                let mut frame = FrameScan::new(codec, packet::random_access(packet));
                if let Some(h) = header {
                    frame.push(packet.get(h.data..).unwrap_or_default());
                }
                let verdict = frame.verdict();
                self.frame = Some(frame);
                verdict
            }
        };
        self.frame_has_cut = clean && access.is_none();
        if clean {
            cuts.push_back(Cut {
                at: self.pat_since_lead.map_or(at, |(pat, _)| pat),
                pat_first: self.pat_since_lead.is_some(),
                access,
                pcr: None,
                dts,
                pts,
            });
        }
    }
}

/// Settles the newest cut's verdict.
fn judge_newest(cuts: &mut VecDeque<Cut>, verdict: bool) {
    if let Some(cut) = cuts.back_mut().filter(|c| c.access.is_none()) {
        cut.access = Some(verdict);
    }
}
