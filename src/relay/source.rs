//! One upstream attempt: connect through the upstream client (from the panel's `/live/…` URL
//! every time: redirect tokens are single-use), check that the body is MPEG-TS, align it to
//! whole packets from its first PAT, and report everything to the channel as messages. The
//! attempt holds its [`Tuner`] until its connection is really gone.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::upstream::{self, Closer, ErrorKind, RequestOptions, Url};

use super::session::{AttemptId, FailReason};
use super::ts::{Aligned, Aligner};
use super::tuners::Tuner;

/// A stream a channel may be fed from.
#[derive(Debug, Clone)]
pub struct StreamSource {
    /// `ACCOUNT:STREAM_ID`.
    pub stream: String,
    pub account_id: i64,
    /// The panel's `/live/…` URL (carries credentials: never print it).
    pub url: Url,
    pub user_agent: String,
}

/// What an attempt reports to its channel, called in the attempt's task as it happens (no
/// queue in between: one task hop less per chunk on the hot path).
pub type Report = Rc<dyn Fn(SourceMsg)>;

/// What an attempt reports to its channel.
pub enum SourceMsg {
    Headers(AttemptId),
    Data(AttemptId, Aligned),
    Failed(AttemptId, FailReason),
}

/// The channel's handle on a running attempt.
pub struct AttemptHandle {
    closer: Rc<RefCell<Option<Closer>>>,
    cancelled: Rc<std::cell::Cell<bool>>,
}

impl AttemptHandle {
    /// Stops the attempt: its socket is shut down so a pending read returns, and nothing more is
    /// reported but `Ended`.
    pub fn close(&self) {
        self.cancelled.set(true);
        if let Some(closer) = self.closer.borrow().as_ref() {
            closer.close();
        }
    }
}

/// Starts an attempt on the current runtime.
pub fn spawn(
    id: AttemptId,
    source: &StreamSource,
    http: &upstream::Client,
    head_timeout: Duration,
    tuner: Tuner,
    report: Report,
) -> AttemptHandle {
    let closer = Rc::new(RefCell::new(None));
    let cancelled = Rc::new(std::cell::Cell::new(false));
    let handle = AttemptHandle {
        closer: closer.clone(),
        cancelled: cancelled.clone(),
    };
    let url = source.url.clone();
    let options = RequestOptions {
        user_agent: source.user_agent.clone(),
        head_timeout,
        // The session machine owns stall detection and closes the attempt.
        idle_timeout: None,
        max_redirects: 5,
    };
    let http = http.clone();
    tokio_uring::spawn(async move {
        let failure = run(id, &http, &url, &options, &closer, &cancelled, &report).await;
        if let Some(reason) = failure
            && !cancelled.get()
        {
            report(SourceMsg::Failed(id, reason));
        }
        // Only now is the connection gone: the tuner frees its slot (and says so) on drop.
        drop(tuner);
    });
    handle
}

/// Reads the attempt to its end; returns why it failed (`None` if it was cancelled).
async fn run(
    id: AttemptId,
    http: &upstream::Client,
    url: &Url,
    options: &RequestOptions,
    closer: &RefCell<Option<Closer>>,
    cancelled: &std::cell::Cell<bool>,
    report: &Report,
) -> Option<FailReason> {
    let mut response = match http.get(url, options).await {
        Ok(response) => response,
        Err(e) => return Some(reason_of(&e)),
    };
    if cancelled.get() {
        response.close();
        return None;
    }
    if !(200..300).contains(&response.status) {
        let status = response.status;
        response.close();
        return Some(FailReason::HttpError(status));
    }
    *closer.borrow_mut() = Some(response.closer());
    report(SourceMsg::Headers(id));
    let mut aligner = Aligner::new();
    let mut delivered = false;
    let mut batching = Batching::new();
    loop {
        match response.next_chunk().await {
            _ if cancelled.get() => {
                response.close();
                return None;
            }
            Ok(Some(chunk)) => {
                if let Some(low_water) = batching.observe(chunk.len()) {
                    // Best effort: without it the stream works, with more wake-ups.
                    let _ = response.set_receive_low_water(low_water);
                }
                let pushed = aligner.push(chunk, &mut |aligned| {
                    delivered = true;
                    report(SourceMsg::Data(id, aligned));
                });
                if pushed.is_err() {
                    response.close();
                    return Some(FailReason::NotTs);
                }
            }
            // A short body that never showed TS (an error page) is not TS; else the stream ended.
            Ok(None) if aligner.skipped() > 0 && !delivered => return Some(FailReason::NotTs),
            Ok(None) => return Some(FailReason::StreamError),
            Err(e) => {
                response.close();
                return Some(reason_of(&e));
            }
        }
    }
}

/// Once a source has delivered steadily for a while, reads wait for about [`BATCH`] of its data
/// instead of completing every few kilobytes: the relay's cost is per read, write and wake-up,
/// not per byte. Off while tuning, so the first bytes (and a splice) are never delayed.
struct Batching {
    started: Option<std::time::Instant>,
    bytes: usize,
    set: bool,
}

/// How much of the stream a read may gather: far below the stall timeout and any player's buffer.
const BATCH: Duration = Duration::from_millis(60);
/// Measure the rate over this long before batching.
const WARM_UP: Duration = Duration::from_secs(1);
const MIN_LOW_WATER: usize = 8 * 1024;
const MAX_LOW_WATER: usize = 192 * 1024;

impl Batching {
    fn new() -> Batching {
        Batching {
            started: None,
            bytes: 0,
            set: false,
        }
    }

    /// Counts a chunk; returns the low-water mark to set, once.
    fn observe(&mut self, len: usize) -> Option<usize> {
        if self.set {
            return None;
        }
        let started = *self.started.get_or_insert_with(std::time::Instant::now);
        self.bytes += len;
        let elapsed = started.elapsed();
        if elapsed < WARM_UP {
            return None;
        }
        self.set = true;
        let per_second = self.bytes as f64 / elapsed.as_secs_f64();
        let batch = (per_second * BATCH.as_secs_f64()) as usize;
        Some(batch.clamp(MIN_LOW_WATER, MAX_LOW_WATER))
    }
}

fn reason_of(error: &upstream::UpstreamError) -> FailReason {
    match error.kind() {
        ErrorKind::ConnectionTimeout => FailReason::ConnectionTimeout,
        ErrorKind::Tls => FailReason::TlsError,
        ErrorKind::Stall => FailReason::Stall,
        ErrorKind::Config | ErrorKind::ConnectionError => FailReason::ConnectionError,
        ErrorKind::Protocol | ErrorKind::TooLarge => FailReason::StreamError,
    }
}
