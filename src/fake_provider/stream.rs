//! Stream bodies: the looping TS clip, paced at a fixed bitrate, close-delimited or chunked, and
//! noticing at once when the client leaves.

use std::io::{ErrorKind, Read, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::faults::{Fault, StrikeCell};
use super::http::Conn;
use super::live::{CLIP, LiveClip, StreamVariant, live_clip};
use super::{Framing, lock};

/// The clip's own bitrate: pacing at it plays the stream in real time, its clocks keeping pace
/// with the wall clock.
pub fn clip_bitrate_bps() -> u64 {
    CLIP.len() as u64 * 8 * 90_000 / live_clip(&StreamVariant::default()).duration()
}

/// The pace of a stream of `variant` when the main clip's streams go at `bitrate_bps`: in
/// proportion to its clip's own bit rate, so that real time stays real time for every clip.
pub(super) fn pace_of(variant: &StreamVariant, bitrate_bps: u64) -> u64 {
    let own = live_clip(variant).bitrate_bps();
    (u128::from(bitrate_bps) * u128::from(own) / u128::from(clip_bitrate_bps())) as u64
}

const TS_PACKET: u64 = 188;
/// Pacing period: each tick sends what is due by the next one.
const TICK: Duration = Duration::from_millis(10);
/// Most bytes one write sends, so that a client that fell behind gets a bounded burst.
const MAX_WRITE: u64 = TS_PACKET * 5_000;
/// Bytes per write when unpaced.
const UNPACED_WRITE: u64 = TS_PACKET * 348;

/// Bytes that look nothing like MPEG-TS (no 0x47 anywhere), for the `Garbage` fault.
pub(super) fn garbage() -> &'static [u8] {
    static GARBAGE: OnceLock<Vec<u8>> = OnceLock::new();
    GARBAGE.get_or_init(|| {
        let mut x: u32 = 0x9E37_79B9;
        (0..TS_PACKET * 64)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                match x.to_le_bytes()[0] {
                    0x47 => 0x48,
                    b => b,
                }
            })
            .collect()
    })
}

/// What a body sends.
#[derive(Clone, Copy)]
pub(super) enum Body {
    /// The clip as a live channel.
    Live(&'static LiveClip),
    /// These bytes over and over.
    Loop(&'static [u8]),
}

impl Body {
    /// Appends the body's bytes `offset..offset + len` to `out`.
    fn write(self, offset: u64, len: usize, out: &mut Vec<u8>) {
        match self {
            Body::Live(clip) => clip.write(offset, len, out),
            Body::Loop(bytes) => {
                let mut pos = (offset % bytes.len() as u64) as usize;
                let mut left = len;
                while left > 0 {
                    let take = left.min(bytes.len() - pos);
                    out.extend_from_slice(&bytes[pos..pos + take]);
                    pos = (pos + take) % bytes.len();
                    left -= take;
                }
            }
        }
    }
}

/// How a body pump ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Ended {
    /// The client closed, reset or was cut off.
    ClientGone,
    /// `limit` bytes were sent.
    LimitReached,
    /// A fault struck the flowing body.
    Struck(Fault),
}

/// Sends `body` framed by `framing`, paced at `bitrate_bps` (0: as fast as the client reads)
/// from a fixed start so it never drifts, until the client leaves, `limit` body bytes are out, or
/// a fault lands in `strike` (looked at once per pacing tick).
pub(super) fn pump(
    conn: &mut Conn,
    body: Body,
    bitrate_bps: u64,
    framing: Framing,
    limit: Option<u64>,
    strike: &StrikeCell,
) -> Ended {
    let start = Instant::now();
    let mut sent: u64 = 0;
    let mut ticks: u32 = 0;
    let mut out = Vec::new();
    loop {
        if let Some(fault) = lock(strike).take() {
            return Ended::Struck(fault);
        }
        let due = match bitrate_bps {
            0 => sent + UNPACED_WRITE,
            bps => packets_due(start.elapsed() + TICK, bps),
        };
        let target = limit.map_or(due, |l| due.min(l)).min(sent + MAX_WRITE);
        if target > sent {
            let len = (target - sent) as usize;
            out.clear();
            if framing == Framing::Chunked {
                out.extend_from_slice(format!("{len:x}\r\n").as_bytes());
            }
            body.write(sent, len, &mut out);
            if framing == Framing::Chunked {
                out.extend_from_slice(b"\r\n");
            }
            if conn.write_all(&out).and_then(|()| conn.flush()).is_err() {
                return Ended::ClientGone;
            }
            sent = target;
        }
        if limit == Some(sent) {
            return Ended::LimitReached;
        }
        if bitrate_bps > 0 {
            ticks = ticks.saturating_add(1);
            if !wait_for_client(conn, Some(start + TICK * ticks)) {
                return Ended::ClientGone;
            }
        }
    }
}

/// Bytes due `elapsed` after the start at `bps`, in whole TS packets.
fn packets_due(elapsed: Duration, bps: u64) -> u64 {
    let bytes = elapsed.as_nanos() * u128::from(bps) / 8 / 1_000_000_000;
    (bytes as u64) / TS_PACKET * TS_PACKET
}

/// Waits until `until` (or forever), reading and discarding whatever the client sends;
/// `false` as soon as the client has left (EOF, reset, or the socket was shut down).
pub(super) fn wait_for_client(conn: &mut Conn, until: Option<Instant>) -> bool {
    let mut scratch = [0u8; 512];
    loop {
        let timeout = match until {
            None => None,
            Some(until) => match until.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return true,
            },
        };
        if conn.sock().set_read_timeout(timeout).is_err() {
            return false;
        }
        match conn.read(&mut scratch) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_is_aligned_ts() {
        assert!(CLIP.len() > 100_000);
        assert_eq!(CLIP.len() % 188, 0);
        assert!(CLIP.chunks(188).all(|p| p[0] == 0x47));
    }

    #[test]
    fn garbage_has_no_sync_byte() {
        assert!(!garbage().is_empty());
        assert!(!garbage().contains(&0x47));
    }

    #[test]
    fn pacing_counts_whole_packets() {
        assert_eq!(packets_due(Duration::from_secs(1), 8 * 188 * 10), 1880);
        assert_eq!(packets_due(Duration::from_millis(10), 8 * 100), 0);
        assert_eq!(packets_due(Duration::from_secs(2), 1_000_000) % 188, 0);
    }
}
