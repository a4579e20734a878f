//! The fan-out buffer of one channel (SPEC §7 "Tuners and sharing"): the recent output program,
//! handed to every viewer as shared slices (no per-viewer copy).
//!
//! Each viewer keeps its own [`Position`]; the ring never waits for anyone. A viewer whose
//! position has been evicted gets [`Lagged`] and is dropped by the caller, so a viewer's backlog
//! is bounded by the ring size and a slow one never holds back the upstream or the others.
//!
//! A new viewer starts at the latest *start* (a PAT, the PMT and a random-access frame, as the
//! output program marks them), so the ring keeps the bytes back to it even past its size, up to
//! [`START_HOLD`] times the size (a long GOP at a high bit rate).
//!
//! Viewers wait for new bytes with a [`Wakeup`] kept beside the ring, not inside it, so that no
//! borrow of the ring is held across an `.await`:
//!
//! ```
//! use std::cell::RefCell;
//! use streamforge::relay::ring::{Lagged, Ring, Wakeup};
//!
//! async fn viewer(ring: &RefCell<Ring>, wakeup: &Wakeup) -> Result<(), Lagged> {
//!     let mut start = None;
//!     wakeup.until(|| { start = ring.borrow().start(); start.is_some() }).await;
//!     let Some(mut at) = start else { return Ok(()) };
//!     let mut bufs = Vec::new();
//!     loop {
//!         wakeup.until(|| ring.borrow().end() != at).await;
//!         at = ring.borrow().read(at, &mut bufs, 64)?;
//!         // write `bufs` to the viewer's socket, then:
//!         bufs.clear();
//!     }
//! }
//! ```

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::sync::Notify;

use super::program::Piece;

/// How many ring sizes the ring may grow to, to keep the latest start.
pub const START_HOLD: usize = 4;

/// A viewer's place in the ring. A position at the end of a chunk is always expressed as the
/// start of the next one, so equal places compare equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    seq: u64,
    offset: usize,
}

/// The viewer's position is no longer in the ring: it fell too far behind.
#[derive(Debug, PartialEq)]
pub struct Lagged;

/// A channel's recent output, oldest chunk first, bounded by `max_bytes`.
#[derive(Debug)]
pub struct Ring {
    /// Chunk `i` has sequence number `first_seq + i`.
    chunks: VecDeque<Bytes>,
    first_seq: u64,
    held: usize,
    max_bytes: usize,
    pushed: u64,
    latest_start: Option<Position>,
}

impl Ring {
    /// `max_bytes` (the relay uses 1 MiB) is every viewer's backlog bound, and a quarter of the
    /// most the ring holds.
    pub fn new(max_bytes: usize) -> Ring {
        Ring {
            chunks: VecDeque::new(),
            first_seq: 0,
            held: 0,
            max_bytes,
            pushed: 0,
            latest_start: None,
        }
    }

    /// Appends a piece as it came (no splitting), then drops the oldest chunks past `max_bytes`,
    /// except those back to the latest start while the ring holds less than [`START_HOLD`] sizes;
    /// the newest is always kept, however large.
    pub fn push(&mut self, piece: Piece) {
        let len = piece.data.len();
        if len == 0 {
            return;
        }
        let seq = self.first_seq + self.chunks.len() as u64;
        if let Some(offset) = piece.start {
            self.latest_start = Some(Position { seq, offset });
        }
        self.chunks.push_back(piece.data);
        self.held += len;
        self.pushed += len as u64;
        let keep_from = self.latest_start.map_or(u64::MAX, |p| p.seq);
        while self.held > self.max_bytes && self.chunks.len() > 1 {
            let over_hold = self.held > self.max_bytes * START_HOLD;
            if self.first_seq == keep_from && !over_hold {
                break;
            }
            if let Some(old) = self.chunks.pop_front() {
                self.held -= old.len();
                self.first_seq += 1;
            }
        }
        if self.latest_start.is_some_and(|p| p.seq < self.first_seq) {
            self.latest_start = None;
        }
    }

    /// Where a new viewer starts: the latest start still in the ring. None before any, and
    /// also when it has been evicted (then the viewer waits for the next one).
    pub fn start(&self) -> Option<Position> {
        self.latest_start
    }

    /// Appends to `out` the bytes from `from` onwards as shared slices (at most `max_bufs`
    /// entries) and returns the position after them. `Lagged` when `from` is older than the
    /// oldest chunk still held. A position at or past the end reads nothing and is returned as is.
    pub fn read(
        &self,
        from: Position,
        out: &mut Vec<Bytes>,
        max_bufs: usize,
    ) -> Result<Position, Lagged> {
        let Some(index) = from.seq.checked_sub(self.first_seq) else {
            return Err(Lagged);
        };
        let index = match usize::try_from(index) {
            Ok(index) if index < self.chunks.len() => index,
            _ => return Ok(from),
        };
        let mut at = from;
        let mut offset = from.offset;
        let mut taken = 0;
        // Seqs are consecutive, so the first chunk to read is found by index: O(chunks returned).
        for (i, chunk) in self.chunks.range(index..).enumerate() {
            if taken == max_bufs {
                break;
            }
            if let Some(rest) = chunk.get(offset..).filter(|rest| !rest.is_empty()) {
                out.push(if offset == 0 {
                    chunk.clone()
                } else {
                    chunk.slice_ref(rest)
                });
                taken += 1;
            }
            offset = 0;
            at = Position {
                seq: from.seq + i as u64 + 1,
                offset: 0,
            };
        }
        Ok(at)
    }

    /// The position after the newest byte.
    pub fn end(&self) -> Position {
        Position {
            seq: self.first_seq + self.chunks.len() as u64,
            offset: 0,
        }
    }

    /// The oldest position still held.
    #[cfg(test)]
    pub fn oldest(&self) -> Position {
        Position {
            seq: self.first_seq,
            offset: 0,
        }
    }

    /// Bytes pushed since the ring was made (the channel's delivered volume).
    pub fn bytes_pushed(&self) -> u64 {
        self.pushed
    }
}

/// Wakes the viewers waiting for a channel's next bytes, or for anything else they check (the end
/// of the session, say). Shared beside the ring, e.g. as `Rc<Wakeup>`.
#[derive(Debug, Default)]
pub struct Wakeup(Notify);

impl Wakeup {
    /// Wakes every viewer waiting now. Call after each [`Ring::push`] and after any other change
    /// viewers check.
    pub fn wake(&self) {
        self.0.notify_waiters();
    }

    /// Returns once `ready()` holds, checking it again after each wake.
    pub async fn until(&self, mut ready: impl FnMut() -> bool) {
        loop {
            // `notify_waiters` stores no permit: register before checking, so that a wake between
            // the check and the await is not lost.
            let notified = self.0.notified();
            if ready() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::relay::ts::PACKET;

    /// `packets` packets, each filled with `tag`, with a start at packet `start`.
    fn chunk(tag: u8, packets: usize, start: Option<usize>) -> Piece {
        Piece {
            data: Bytes::from(vec![tag; packets * PACKET]),
            start: start.map(|p| p * PACKET),
        }
    }

    fn read_all(ring: &Ring, from: Position) -> Result<(Vec<u8>, Position), Lagged> {
        let mut out = Vec::new();
        let end = ring.read(from, &mut out, usize::MAX)?;
        Ok((out.iter().flat_map(|b| b.iter().copied()).collect(), end))
    }

    #[test]
    fn new_viewers_start_at_the_latest_start() {
        let mut ring = Ring::new(1 << 20);
        assert_eq!(ring.start(), None);
        ring.push(chunk(1, 4, None));
        assert_eq!(ring.start(), None);
        ring.push(chunk(2, 4, Some(1)));
        ring.push(chunk(3, 4, Some(3)));
        ring.push(chunk(4, 4, None));
        let start = ring.start().unwrap();
        assert_eq!(
            start,
            Position {
                seq: 2,
                offset: 3 * PACKET
            }
        );
        let (bytes, end) = read_all(&ring, start).unwrap();
        assert_eq!(bytes, [vec![3; PACKET], vec![4; 4 * PACKET]].concat());
        assert_eq!(end, ring.end());
        assert_eq!(ring.bytes_pushed(), 16 * PACKET as u64);
    }

    #[test]
    fn reads_share_the_pushed_memory_and_respect_max_bufs() {
        let mut ring = Ring::new(1 << 20);
        let pushed: Vec<Bytes> = (0..5)
            .map(|i| {
                let a = chunk(i, 2, Some(0));
                let data = a.data.clone();
                ring.push(a);
                data
            })
            .collect();
        let mut out = Vec::new();
        let next = ring
            .read(
                Position {
                    seq: 1,
                    offset: PACKET,
                },
                &mut out,
                2,
            )
            .unwrap();
        assert_eq!(next, Position { seq: 3, offset: 0 });
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].as_ptr(), pushed[1][PACKET..].as_ptr());
        assert_eq!(out[1].as_ptr(), pushed[2].as_ptr());
        assert_eq!(ring.read(next, &mut out, 10).unwrap(), ring.end());
        assert_eq!(out.len(), 4);
        assert_eq!(ring.read(next, &mut out, 0).unwrap(), next);
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn the_oldest_chunks_go_past_max_bytes_and_their_readers_lag() {
        let mut ring = Ring::new(10 * PACKET);
        let early = ring.end();
        ring.push(chunk(1, 4, None));
        ring.push(chunk(2, 4, None));
        assert_eq!(read_all(&ring, early).unwrap().0.len(), 8 * PACKET);
        ring.push(chunk(3, 4, None));
        // 12 packets > 10, and no start to keep: the first chunk went.
        assert_eq!(ring.read(early, &mut Vec::new(), 8), Err(Lagged));
        let (bytes, _) = read_all(&ring, Position { seq: 1, offset: 0 }).unwrap();
        assert_eq!(bytes, [vec![2; 4 * PACKET], vec![3; 4 * PACKET]].concat());
        // The newest chunk stays however large; everything older goes.
        ring.push(chunk(4, 50, Some(49)));
        assert_eq!(
            ring.read(Position { seq: 2, offset: 0 }, &mut Vec::new(), 8),
            Err(Lagged)
        );
        let (bytes, end) = read_all(&ring, ring.start().unwrap()).unwrap();
        assert_eq!(bytes, vec![4; PACKET]);
        assert_eq!(end, ring.end());
    }

    #[test]
    fn the_latest_start_is_kept_past_max_bytes_up_to_the_hold() {
        let mut ring = Ring::new(10 * PACKET);
        ring.push(chunk(1, 4, Some(0)));
        let start = ring.start().unwrap();
        for tag in 2..=9 {
            ring.push(chunk(tag, 4, None));
        }
        // 36 packets: within four ring sizes, so a new viewer still gets the start.
        assert_eq!(ring.start(), Some(start));
        assert_eq!(read_all(&ring, start).unwrap().0.len(), 36 * PACKET);
        ring.push(chunk(10, 8, None));
        // Past the hold the start goes too, down to the ring's size.
        assert_eq!(ring.start(), None);
        assert_eq!(ring.read(start, &mut Vec::new(), 8), Err(Lagged));
        let held = read_all(&ring, ring.oldest()).unwrap().0.len();
        assert!(held <= 10 * PACKET, "{held}");
    }

    #[test]
    fn a_reader_that_keeps_up_never_lags() {
        let mut ring = Ring::new(8 * PACKET);
        let mut at = ring.end();
        let mut seen = 0;
        for i in 0..10_000 {
            ring.push(chunk(i as u8, 1 + i % 4, None));
            let (bytes, next) = read_all(&ring, at).unwrap();
            assert!(bytes.iter().all(|&b| b == i as u8));
            seen += bytes.len();
            at = next;
        }
        assert_eq!(seen as u64, ring.bytes_pushed());
    }

    #[test]
    fn positions_at_or_past_the_end_read_nothing() {
        let mut ring = Ring::new(1 << 20);
        ring.push(chunk(1, 2, Some(0)));
        let end = ring.end();
        let past = Position {
            seq: end.seq + 5,
            offset: 0,
        };
        for at in [
            end,
            past,
            Position {
                seq: u64::MAX,
                offset: usize::MAX,
            },
        ] {
            let mut out = Vec::new();
            assert_eq!(ring.read(at, &mut out, 8), Ok(at));
            assert!(out.is_empty());
        }
        ring.push(chunk(2, 1, None));
        assert_eq!(read_all(&ring, end).unwrap().0, vec![2; PACKET]);
    }

    fn poll_once(future: std::pin::Pin<&mut impl Future<Output = ()>>) -> Poll<()> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn a_waiting_viewer_is_woken_by_a_push() {
        let ring = RefCell::new(Ring::new(1 << 20));
        let wakeup = Wakeup::default();
        let at = ring.borrow().end();
        let mut waiting = pin!(wakeup.until(|| ring.borrow().end() != at));
        assert_eq!(poll_once(waiting.as_mut()), Poll::Pending);
        assert_eq!(poll_once(waiting.as_mut()), Poll::Pending);
        ring.borrow_mut().push(chunk(1, 1, None));
        wakeup.wake();
        assert_eq!(poll_once(waiting.as_mut()), Poll::Ready(()));
    }

    #[test]
    fn a_wake_between_the_check_and_the_wait_is_not_lost() {
        let ring = RefCell::new(Ring::new(1 << 20));
        let wakeup = Wakeup::default();
        let at = ring.borrow().end();
        let checks = Cell::new(0);
        let mut waiting = pin!(wakeup.until(|| {
            checks.set(checks.get() + 1);
            let ready = ring.borrow().end() != at;
            if checks.get() == 1 {
                // The upstream pushes right after this check said "nothing new".
                ring.borrow_mut().push(chunk(1, 1, None));
                wakeup.wake();
            }
            ready
        }));
        assert_eq!(poll_once(waiting.as_mut()), Poll::Ready(()));
        assert_eq!(checks.get(), 2);
    }
}
