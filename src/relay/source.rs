//! Upstream attempts: the connector that opens them and the attempt task that reads one.
//!
//! An attempt connects through the upstream client (from the panel's `/live/…` URL every time:
//! redirect tokens are single-use), checks that the body is MPEG-TS, aligns it to whole packets
//! from its first PAT, and reports to its channel through the [`Feed`] trait, in the attempt's
//! own task as things happen (no queue in between: one task hop less per chunk on the hot path).
//! The attempt holds its [`Tuner`] until its connection is really gone.
//!
//! The channel sees only the [`Connect`] and [`Attempt`] traits, so its tests open fake attempts.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::upstream::{self, Closer, ErrorKind, RequestOptions, Url};

use super::session::{AttemptId, FailReason};
use super::ts::{Aligned, Aligner};
use super::tuners::Tuner;

/// A stream a channel may be fed from.
#[derive(Debug, Clone)]
pub struct StreamSource {
    /// `ACCOUNT:STREAM_ID`.
    pub stream: String,
    /// The stream's row in the store, where what is measured of it is kept.
    pub stream_row: i64,
    pub account_id: i64,
    /// The panel's `/live/…` URL, or a playlist stream's own URL (carries credentials: never
    /// print it).
    pub url: Url,
    pub user_agent: String,
    /// Sent as `Referer` (a playlist's `#EXTVLCOPT:http-referrer`).
    pub referrer: Option<String>,
}

/// A lineup channel as the relay needs it.
#[derive(Debug, Clone)]
pub struct ChannelInfo {
    pub number: String,
    pub name: String,
    pub guide_id: String,
    /// Best first.
    pub sources: Vec<StreamSource>,
}

/// What an attempt reports to (its channel).
pub trait Feed {
    /// The response head arrived with a 2xx status.
    fn headers(&self, attempt: AttemptId);
    /// Whole packets of the body, still writable: the channel's output program rewrites them
    /// in place.
    fn media(&self, attempt: AttemptId, aligned: Aligned);
    /// The attempt failed; nothing more comes from it.
    fn failed(&self, attempt: AttemptId, reason: FailReason);
}

/// Opens upstream attempts.
pub trait Connect {
    /// Starts an attempt on `source` that reports to `feed` and holds `tuner` until its
    /// connection is gone. It must not report before `open` returns.
    fn open(
        &self,
        attempt: AttemptId,
        source: &StreamSource,
        tuner: Tuner,
        feed: Weak<dyn Feed>,
    ) -> Box<dyn Attempt>;
}

/// The channel's handle on a running attempt.
pub trait Attempt {
    /// Stops the attempt: nothing more is reported, and its connection (with its tuner) goes as
    /// soon as the socket is shut down.
    fn close(&self);
}

/// The real connector: attempts over our upstream client, each in its own task.
pub struct UpstreamConnector {
    http: upstream::Client,
    head_timeout: Duration,
}

impl UpstreamConnector {
    /// `head_timeout` covers connect, TLS and the response head of the whole redirect chain.
    pub fn new(http: upstream::Client, head_timeout: Duration) -> UpstreamConnector {
        UpstreamConnector { http, head_timeout }
    }
}

impl Connect for UpstreamConnector {
    fn open(
        &self,
        attempt: AttemptId,
        source: &StreamSource,
        tuner: Tuner,
        feed: Weak<dyn Feed>,
    ) -> Box<dyn Attempt> {
        let handle = Rc::new(Handle::default());
        let options = RequestOptions {
            user_agent: source.user_agent.clone(),
            head_timeout: self.head_timeout,
            // The session machine owns stall detection and closes the attempt.
            idle_timeout: None,
            max_redirects: 5,
            referrer: source.referrer.clone(),
        };
        let reader = Reader {
            id: attempt,
            http: self.http.clone(),
            url: source.url.clone(),
            options,
            handle: handle.clone(),
            feed,
        };
        tokio_uring::spawn(async move {
            let failure = reader.run().await;
            if let Some(reason) = failure
                && !reader.handle.cancelled.get()
                && let Some(feed) = reader.feed.upgrade()
            {
                feed.failed(reader.id, reason);
            }
            // Only now is the connection gone: the tuner frees its slot (and says so) on drop.
            drop(tuner);
        });
        Box::new(AttemptHandle(handle))
    }
}

/// Shared between an attempt's task and its channel's handle.
#[derive(Default)]
struct Handle {
    closer: RefCell<Option<Closer>>,
    cancelled: Cell<bool>,
}

struct AttemptHandle(Rc<Handle>);

impl Attempt for AttemptHandle {
    fn close(&self) {
        self.0.cancelled.set(true);
        if let Some(closer) = self.0.closer.borrow().as_ref() {
            // A pending read returns at once; the task then ends and drops its tuner.
            closer.close();
        }
    }
}

/// One attempt's task state.
struct Reader {
    id: AttemptId,
    http: upstream::Client,
    url: Url,
    options: RequestOptions,
    handle: Rc<Handle>,
    feed: Weak<dyn Feed>,
}

impl Reader {
    /// Reads the attempt to its end; returns why it failed (`None` if it was cancelled or its
    /// channel is gone).
    async fn run(&self) -> Option<FailReason> {
        let mut response = match self.http.get(&self.url, &self.options).await {
            Ok(response) => response,
            Err(e) => return Some(reason_of(&e)),
        };
        if self.handle.cancelled.get() {
            response.close();
            return None;
        }
        if !(200..300).contains(&response.status) {
            let status = response.status;
            response.close();
            return Some(FailReason::HttpError(status));
        }
        if response.content_type().is_some_and(is_hls_type) {
            response.close();
            return Some(FailReason::Hls);
        }
        *self.handle.closer.borrow_mut() = Some(response.closer());
        self.feed.upgrade()?.headers(self.id);
        let mut body = BodyCheck::default();
        let mut batching = Batching::default();
        loop {
            let next = response.next_chunk().await;
            let feed = self.feed.upgrade().filter(|_| !self.handle.cancelled.get());
            let Some(feed) = feed else {
                response.close();
                return None;
            };
            match next {
                Ok(Some(chunk)) => {
                    if let Some(low_water) = batching.observe(chunk.len(), Instant::now()) {
                        // Best effort: without it the stream works, with more wake-ups.
                        let _ = response.set_receive_low_water(low_water);
                    }
                    let checked = body.push(chunk, &mut |aligned| feed.media(self.id, aligned));
                    if let Err(reason) = checked {
                        response.close();
                        return Some(reason);
                    }
                }
                Ok(None) => return Some(body.ended()),
                Err(e) => {
                    response.close();
                    return Some(reason_of(&e));
                }
            }
        }
    }
}

/// Checks and aligns one attempt's body: whole packets from its first PAT, or why it is not a
/// usable stream.
#[derive(Debug, Default)]
struct BodyCheck {
    aligner: Aligner,
    delivered: bool,
    /// Whether the body began as an HLS playlist does (served under a TS content type).
    began: Option<bool>,
}

impl BodyCheck {
    fn push(&mut self, chunk: BytesMut, out: &mut impl FnMut(Aligned)) -> Result<(), FailReason> {
        let hls = *self.began.get_or_insert_with(|| is_hls_body(&chunk));
        let delivered = &mut self.delivered;
        self.aligner
            .push(chunk, &mut |aligned| {
                *delivered = true;
                out(aligned);
            })
            .map_err(|_| {
                if hls {
                    FailReason::Hls
                } else {
                    FailReason::NotTs
                }
            })
    }

    /// Why the body's end ends the attempt: a short body that never showed TS (an error page, an
    /// HLS playlist) is not TS; anything else is a stream that stopped.
    fn ended(&self) -> FailReason {
        match self.began {
            Some(true) if !self.delivered => FailReason::Hls,
            _ if self.aligner.skipped() > 0 && !self.delivered => FailReason::NotTs,
            _ => FailReason::StreamError,
        }
    }
}

/// The content types HLS playlists are served with (RFC 8216 §4 and the older names).
fn is_hls_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    [
        "application/vnd.apple.mpegurl",
        "application/x-mpegurl",
        "audio/mpegurl",
        "audio/x-mpegurl",
    ]
    .iter()
    .any(|hls| essence.eq_ignore_ascii_case(hls))
}

fn is_hls_body(start: &[u8]) -> bool {
    start
        .strip_prefix(b"\xef\xbb\xbf")
        .unwrap_or(start)
        .starts_with(b"#EXTM3U")
}

/// Once a source has delivered steadily for a while, reads wait for about [`BATCH`] of its data
/// instead of completing every few kilobytes: the relay's cost is per read, write and wake-up,
/// not per byte. Each batch arrives in one read, goes into the ring as one piece, and so reaches
/// every viewer in one writev: batching the reads batches the viewers' writes too. Off while
/// tuning, so the first bytes (and a splice onto a new source) are never delayed; a viewer who
/// joins a running channel is sent the ring's backlog at once.
#[derive(Debug, Default)]
struct Batching {
    started: Option<Instant>,
    bytes: usize,
    set: bool,
}

/// How much of the stream a read may gather: far below the stall timeout and any player's buffer
/// (BENCHMARKS.md has the measurements behind the figure: longer batches saved little CPU and
/// cost memory, since the ring keeps each read's buffer alive).
const BATCH: Duration = Duration::from_millis(100);
/// Measure the rate over this long before batching.
const WARM_UP: Duration = Duration::from_secs(1);
const MIN_LOW_WATER: usize = 8 * 1024;
const MAX_LOW_WATER: usize = 1024 * 1024;

impl Batching {
    /// Counts a chunk that arrived at `now`; returns the low-water mark to set, once.
    fn observe(&mut self, len: usize, now: Instant) -> Option<usize> {
        if self.set {
            return None;
        }
        let started = *self.started.get_or_insert(now);
        self.bytes += len;
        let elapsed = now.saturating_duration_since(started);
        if elapsed < WARM_UP {
            return None;
        }
        self.set = true;
        let per_second = self.bytes as f64 / elapsed.as_secs_f64();
        let batch = (per_second * BATCH.as_secs_f64()) as usize;
        Some(batch.clamp(MIN_LOW_WATER, MAX_LOW_WATER))
    }
}

pub(super) fn reason_of(error: &upstream::UpstreamError) -> FailReason {
    match error.kind() {
        ErrorKind::ConnectionTimeout => FailReason::ConnectionTimeout,
        ErrorKind::Tls => FailReason::TlsError,
        ErrorKind::Stall => FailReason::Stall,
        ErrorKind::Config | ErrorKind::ConnectionError => FailReason::ConnectionError,
        ErrorKind::Protocol | ErrorKind::TooLarge => FailReason::StreamError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::ts::{NOT_TS_LIMIT, PACKET};

    fn packets(pids: &[u16]) -> Vec<u8> {
        let mut out = Vec::new();
        for &pid in pids {
            let mut packet = [0xffu8; PACKET];
            packet[0] = 0x47;
            packet[1] = 0x40 | (pid >> 8) as u8;
            packet[2] = pid as u8;
            packet[3] = 0x10;
            out.extend_from_slice(&packet);
        }
        out
    }

    fn push_all(check: &mut BodyCheck, body: &[u8]) -> (Result<(), FailReason>, usize) {
        let mut got = 0;
        let result = check.push(BytesMut::from(body), &mut |a| got += a.len());
        (result, got)
    }

    #[test]
    fn a_ts_body_is_forwarded_from_its_pat_and_its_end_is_a_stream_error() {
        let mut check = BodyCheck::default();
        let (result, got) = push_all(&mut check, &packets(&[0x100, 0, 0x100, 0x101]));
        assert_eq!(result, Ok(()));
        assert_eq!(got, 3 * PACKET, "nothing before the first PAT");
        assert_eq!(check.ended(), FailReason::StreamError);
    }

    #[test]
    fn a_short_error_page_is_not_ts() {
        let mut check = BodyCheck::default();
        let (result, got) = push_all(&mut check, b"<html><body>Forbidden</body></html>");
        assert_eq!((result, got), (Ok(()), 0));
        assert_eq!(check.ended(), FailReason::NotTs);
    }

    #[test]
    fn an_hls_playlist_is_refused_as_hls_by_its_type_or_its_body() {
        assert!(is_hls_type("application/vnd.apple.mpegurl"));
        assert!(is_hls_type("Application/X-MpegURL; charset=utf-8"));
        assert!(!is_hls_type("video/mp2t"));
        let mut check = BodyCheck::default();
        let playlist = b"\xef\xbb\xbf#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:6.0,\nseg1.ts\n";
        assert_eq!(push_all(&mut check, playlist), (Ok(()), 0));
        assert_eq!(check.ended(), FailReason::Hls);
        let mut long = BodyCheck::default();
        let mut big = b"#EXTM3U\n".to_vec();
        big.resize(NOT_TS_LIMIT as usize + 1, b'#');
        assert_eq!(push_all(&mut long, &big).0, Err(FailReason::Hls));
    }

    #[test]
    fn a_long_body_without_sync_fails_as_not_ts() {
        let mut check = BodyCheck::default();
        let page = vec![b'x'; NOT_TS_LIMIT as usize + 1];
        assert_eq!(push_all(&mut check, &page).0, Err(FailReason::NotTs));
    }

    #[test]
    fn batching_waits_for_a_steady_second_then_sizes_reads_to_the_rate() {
        let start = Instant::now();
        let mut batching = Batching::default();
        // 2.5 MB/s in 25 KB pieces every 10 ms (20 Mbit/s, as the fake provider paces it).
        for tick in 0..100 {
            let at = start + Duration::from_millis(10 * tick);
            assert_eq!(batching.observe(25_000, at), None, "tick {tick}");
        }
        let mark = batching.observe(25_000, start + Duration::from_secs(1));
        // 2.525 MB over 1 s, 100 ms of it.
        assert_eq!(mark, Some(252_500));
        assert_eq!(
            batching.observe(25_000, start + Duration::from_secs(2)),
            None
        );
    }

    #[test]
    fn batching_is_clamped() {
        let start = Instant::now();
        let mut slow = Batching::default();
        slow.observe(100, start);
        assert_eq!(slow.observe(100, start + WARM_UP), Some(MIN_LOW_WATER));
        let mut fast = Batching::default();
        fast.observe(50_000_000, start);
        assert_eq!(fast.observe(1, start + WARM_UP), Some(MAX_LOW_WATER));
    }
}
