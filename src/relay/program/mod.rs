//! The channel's output program (SPEC §7 "A splice the player never sees"), sans-IO: bytes and
//! a clock in, bytes out. It scans every source that delivers media ([`input`]), and it owns
//! what the viewers see ([`output`]): one continuous MPEG-TS program, whichever source feeds it.
//!
//! - The first source is passed through byte for byte from its first start (a PAT, the PMT,
//!   then a random-access frame) until the first splice.
//! - A later source is spliced in at its first start (or, forced by the keyframe deadline, at
//!   its first PAT), mapped onto the output program and rewritten in place before its bytes are
//!   frozen: once per channel, never per viewer.
//! - Each source is released up to its latest cut; the tail after it (about a frame) waits for
//!   the next, so that leaving a source never cuts a frame or an audio packet in two.
//! - Every released piece says where a new viewer may start in it: the latest start, or (when
//!   no random-access point came for the keyframe deadline) the latest PAT.

pub(crate) mod access;
pub(crate) mod audio;
pub(crate) mod input;
pub(crate) mod learn;
pub(crate) mod output;
pub(crate) mod packet;
pub(crate) mod psi;
pub(crate) mod sps;
pub(crate) mod synth;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::session::AttemptId;
use crate::measure::Measurement;
use input::{HOLD_LIMIT, SourceStream};
use output::{Mapping, Output};
use packet::PACKET;

/// The source feeding the viewers.
#[derive(Debug)]
struct Feeding {
    attempt: AttemptId,
    /// `None` while the session's first source is passed through unchanged.
    mapping: Option<Mapping>,
    /// Until the source's first start (or its first PAT, when `forced`) has arrived.
    waiting: bool,
    forced: bool,
}

/// One released piece of output.
#[derive(Debug)]
pub struct Piece {
    pub data: Bytes,
    /// The offset in `data` of the latest place a new viewer may start.
    pub start: Option<usize>,
}

#[derive(Debug)]
pub struct Program {
    keyframe: Duration,
    sources: HashMap<AttemptId, SourceStream>,
    feeding: Option<Feeding>,
    output: Option<Output>,
    /// The viewers' latest bytes (shared with the ring, not copied), at least [`RECENT_BYTES`]:
    /// a splice learns the counters and clocks to continue from them.
    recent: VecDeque<Bytes>,
    recent_bytes: usize,
    /// When the viewers last got bytes, and last got a random-access start.
    last_release: Option<Instant>,
    last_start: Option<Instant>,
    /// Measurements of sources left at a splice, until their attempt is forgotten.
    left: HashMap<AttemptId, Measurement>,
}

/// Enough of the output for every PID's last packet and a few frames' clocks: PAT and PMT come
/// every 100 ms or so, and this is 0.4 s even at 20 Mbit/s.
const RECENT_BYTES: usize = 1024 * 1024;

impl Program {
    /// `keyframe`: how long a viewer waits for a random-access point before it may start at a
    /// plain PAT (`deadlines.keyframe`; the session applies the same deadline to splices).
    pub fn new(keyframe: Duration) -> Program {
        Program {
            keyframe,
            sources: HashMap::new(),
            feeding: None,
            output: None,
            recent: VecDeque::new(),
            recent_bytes: 0,
            last_release: None,
            last_start: None,
            left: HashMap::new(),
        }
    }

    /// Takes whole packets from an attempt; returns whether the attempt has a start held, so a
    /// splice to it can go ahead cleanly now.
    pub fn receive(&mut self, attempt: AttemptId, data: BytesMut) -> bool {
        debug_assert_eq!(data.len() % PACKET, 0);
        let source = self.sources.entry(attempt).or_default();
        source.push(data);
        let feeding = self.feeding.as_ref().is_some_and(|f| f.attempt == attempt);
        if !feeding {
            source.keep_recent();
        }
        source.first_start().is_some()
    }

    /// Makes `attempt` the viewers' source from its first start, or (`forced`, when none came in
    /// time) from its first PAT. The previous source's held tail is dropped with it.
    pub fn splice(&mut self, attempt: AttemptId, forced: bool, now: Instant) {
        if let Some(old) = self.feeding.take()
            && old.attempt != attempt
            && let Some(mut source) = self.sources.remove(&old.attempt)
            && let Some(measured) = source.take_unreported()
        {
            self.left.insert(old.attempt, measured);
        }
        self.feeding = Some(Feeding {
            attempt,
            mapping: None,
            waiting: true,
            forced,
        });
        self.try_begin(now);
    }

    /// Forgets an attempt that was closed or failed; returns what was measured of it and not
    /// yet taken, if that is worth keeping.
    pub fn forget(&mut self, attempt: AttemptId) -> Option<Measurement> {
        let left = self.left.remove(&attempt);
        self.sources
            .remove(&attempt)
            .and_then(|mut s| s.take_unreported())
            .or(left)
    }

    /// What has been measured of an attempt's stream so far.
    pub fn measurement(&self, attempt: AttemptId) -> Option<Measurement> {
        self.sources.get(&attempt)?.measurement()
    }

    /// An attempt's measurement, once, as soon as it is complete.
    pub fn take_settled(&mut self, attempt: AttemptId) -> Option<Measurement> {
        self.sources.get_mut(&attempt)?.take_settled()
    }

    /// Hands over the feeding source's output that is ready now, rewritten, in order.
    pub fn release(&mut self, now: Instant, emit: &mut impl FnMut(Piece)) {
        self.try_begin(now);
        let Some(feeding) = self.feeding.as_mut().filter(|f| !f.waiting) else {
            return;
        };
        let Some(source) = self.sources.get_mut(&feeding.attempt) else {
            return;
        };
        let from = source.held_from();
        let mut upto = source.last_cut().unwrap_or(source.end());
        if source.end() - from > HOLD_LIMIT {
            upto = source.end();
        }
        if upto <= from {
            return;
        }
        if self.output.is_none() {
            self.output = Output::of(source.learnt());
        }
        if let Some(output) = self.output.as_mut() {
            match feeding.mapping.as_mut() {
                None => output.follow(source.learnt()),
                Some(mapping) if mapping.generation != source.learnt().generation => {
                    *mapping = output.remap(source.learnt(), mapping);
                }
                Some(_) => {}
            }
        }
        let rap_fresh = self.last_start.is_some_and(|at| now - at <= self.keyframe);
        let latest = source
            .cuts_between(from, upto)
            .filter(|c| c.is_start() || (c.pat_first && !rap_fresh))
            .last()
            .copied();
        if latest.is_some_and(|c| c.is_start()) {
            self.last_start = Some(now);
        }
        let output = &mut self.output;
        let (recent, recent_bytes) = (&mut self.recent, &mut self.recent_bytes);
        let mut at = from;
        source.take_until(upto, &mut |mut piece: BytesMut| {
            if let (Some(output), Some(mapping)) = (output.as_mut(), feeding.mapping.as_mut()) {
                for packet in piece.chunks_exact_mut(PACKET) {
                    output.rewrite(packet, mapping);
                }
            }
            let end = at + piece.len() as u64;
            let start = latest
                .filter(|c| (at..end).contains(&c.at))
                .map(|c| (c.at - at) as usize);
            at = end;
            let data = piece.freeze();
            *recent_bytes += data.len();
            recent.push_back(data.clone());
            while *recent_bytes - recent.front().map_or(0, Bytes::len) >= RECENT_BYTES {
                *recent_bytes -= recent.pop_front().map_or(0, |b| b.len());
            }
            emit(Piece { data, start });
        });
        self.last_release = Some(now);
    }

    /// A splice waiting for its source's first start (or PAT, when forced) goes ahead once that
    /// has arrived.
    fn try_begin(&mut self, now: Instant) {
        let Some(feeding) = self.feeding.as_mut().filter(|f| f.waiting) else {
            return;
        };
        let Some(source) = self.sources.get_mut(&feeding.attempt) else {
            return;
        };
        let forced = feeding.forced;
        let cut = source
            .first_start()
            .or_else(|| forced.then(|| source.first_pat_cut()).flatten());
        let Some(mut cut) = cut else {
            return;
        };
        cut.pcr = source.first_pcr(cut.at);
        source.discard_until(cut.at);
        feeding.waiting = false;
        match self.output.as_mut() {
            // The session's first source is passed through as it is.
            None => self.output = Output::of(source.learnt()),
            Some(output) => {
                output.catch_up(self.recent.iter().map(|b| &b[..]));
                let gap = self.last_release.map_or(Duration::ZERO, |at| now - at);
                feeding.mapping = Some(output.map(source.learnt(), &cut, gap));
            }
        }
    }
}
