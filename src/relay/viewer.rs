//! One viewer: waits until its channel has media (or is refused), sends the response head once,
//! then writes the channel's ring from a recent PAT onwards. The bytes are the ring's shared
//! slices, written with writev: no per-viewer copy. A viewer that falls further behind than the
//! ring holds is dropped; it never slows the upstream or the other viewers.
//!
//! The viewer sees its connection through [`ViewerSocket`], so its tests use an in-memory one.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;

use crate::http::{Connection, Version};
use crate::store::Level;

use super::channel::Channel;
use super::metrics::add;
use super::ring::Lagged;
use super::session::{Refusal, Viewing};

/// Slices handed to one writev.
const MAX_WRITE_BUFS: usize = 64;
/// A write that makes no progress this long means the viewer stopped reading: it is dropped like
/// one that fell behind the ring.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a viewer needs of its connection.
pub(crate) trait ViewerSocket {
    fn peer(&self) -> SocketAddr;
    /// Writes all of `buf`, shared, not copied.
    async fn write_all(&self, buf: Bytes) -> io::Result<()>;
    /// Writes all of `bufs`; returns the vector for reuse.
    async fn writev_all(&self, bufs: Vec<Bytes>) -> (io::Result<()>, Vec<Bytes>);
    /// Reads what the client sends; `Ok(0)` when it closed its side.
    async fn read(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>);
    /// Shuts the socket down: an operation in flight on it completes.
    fn close(&self);
}

impl ViewerSocket for Connection {
    fn peer(&self) -> SocketAddr {
        Connection::peer(self)
    }
    async fn write_all(&self, buf: Bytes) -> io::Result<()> {
        Connection::write_all(self, buf).await
    }
    async fn writev_all(&self, bufs: Vec<Bytes>) -> (io::Result<()>, Vec<Bytes>) {
        Connection::writev_all(self, bufs).await
    }
    async fn read(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        Connection::read(self, buf).await
    }
    fn close(&self) {
        Connection::close(self)
    }
}

/// Serves one viewer of `channel` on `connection` until either side ends. `channel` already
/// counts this viewer; it is told when the viewer leaves.
pub(crate) async fn watch<S: ViewerSocket + 'static>(
    channel: Rc<Channel>,
    connection: S,
    version: Version,
) {
    let requested = Instant::now();
    let connection = Rc::new(connection);
    log::debug!(
        "channel {}: viewer {} tuned in",
        channel.info.number,
        connection.peer()
    );
    let gone = Rc::new(Cell::new(false));
    spawn_hangup_watch(connection.clone(), gone.clone(), channel.clone());

    channel
        .wakeup()
        .until(|| gone.get() || channel.viewing() != Viewing::Waiting)
        .await;
    let head = match channel.viewing() {
        _ if gone.get() => None,
        Viewing::Live => Some(ok_head(version)),
        Viewing::Refused(Refusal::AllTunersInUse) => {
            Some(refusal_head(version, "805 All Tuners In Use"))
        }
        Viewing::Refused(Refusal::NoVideoData) | Viewing::Ended | Viewing::Waiting => {
            Some(refusal_head(version, "807 No Video Data"))
        }
    };
    let live = channel.viewing() == Viewing::Live;
    if let Some(head) = head
        && connection.write_all(head).await.is_ok()
        && live
    {
        stream(&channel, &*connection, &gone, requested).await;
    }
    connection.close();
    log::debug!(
        "channel {}: viewer {} left",
        channel.info.number,
        connection.peer()
    );
    channel.leave();
}

/// Writes the ring to the viewer until the channel ends, the viewer leaves or lags.
async fn stream(
    channel: &Rc<Channel>,
    connection: &impl ViewerSocket,
    gone: &Cell<bool>,
    requested: Instant,
) {
    let metrics = &channel.services().metrics;
    let mut position = None;
    channel
        .wakeup()
        .until(|| {
            position = channel.ring().start();
            position.is_some() || gone.get() || channel.viewing() != Viewing::Live
        })
        .await;
    let Some(mut position) = position else {
        return;
    };
    let mut first = true;
    let mut bufs: Vec<Bytes> = Vec::with_capacity(MAX_WRITE_BUFS);
    loop {
        bufs.clear();
        let read = channel.ring().read(position, &mut bufs, MAX_WRITE_BUFS);
        match read {
            Ok(next) => position = next,
            Err(Lagged) => return drop_slow(channel, connection),
        }
        if bufs.is_empty() {
            let at = position;
            channel
                .wakeup()
                .until(|| {
                    gone.get() || channel.viewing() != Viewing::Live || channel.ring().end() != at
                })
                .await;
            if gone.get() || channel.viewing() != Viewing::Live {
                return;
            }
            continue;
        }
        let len: usize = bufs.iter().map(Bytes::len).sum();
        let written = tokio::time::timeout(
            WRITE_TIMEOUT,
            connection.writev_all(std::mem::take(&mut bufs)),
        )
        .await;
        match written {
            Ok((Ok(()), returned)) => bufs = returned,
            Ok((Err(e), _)) => {
                log::debug!(
                    "channel {}: viewer {}: write failed: {e}",
                    channel.info.number,
                    connection.peer()
                );
                return;
            }
            // The abandoned write stays in flight until close() shuts the socket down.
            Err(_) => return drop_slow(channel, connection),
        }
        add(&metrics.bytes_out, len as u64);
        if first {
            metrics.start_latency(requested.elapsed());
            first = false;
        }
    }
}

fn drop_slow(channel: &Channel, connection: &impl ViewerSocket) {
    let services = channel.services();
    add(&services.metrics.dropped_viewers, 1);
    services.events.emit(
        Level::Warn,
        "viewer",
        format!(
            "channel {}: dropped a viewer ({}) that fell too far behind",
            channel.info.number,
            connection.peer()
        ),
        json!({ "channel": channel.info.number, "peer": connection.peer().to_string() }),
    );
}

/// Notices a viewer that hung up while nothing is being written (tuning, a failover gap).
fn spawn_hangup_watch<S: ViewerSocket + 'static>(
    connection: Rc<S>,
    gone: Rc<Cell<bool>>,
    channel: Rc<Channel>,
) {
    tokio_uring::spawn(async move {
        // What the client sends is read and dropped: the buffer never grows.
        let mut buf = Vec::with_capacity(512);
        loop {
            buf.clear();
            let (read, returned) = connection.read(buf).await;
            buf = returned;
            match read {
                Ok(n) if n > 0 => continue,
                _ => break,
            }
        }
        gone.set(true);
        channel.wakeup().wake();
    });
}

fn ok_head(version: Version) -> Bytes {
    let status = match version {
        Version::Http10 => "HTTP/1.0 200 OK",
        Version::Http11 => "HTTP/1.1 200 OK",
    };
    // Close-delimited: no Content-Length, no chunking, for 1.0 and 1.1 clients alike.
    Bytes::from(format!(
        "{status}\r\nContent-Type: video/mp2t\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
    ))
}

fn refusal_head(version: Version, error: &str) -> Bytes {
    let status = match version {
        Version::Http10 => "HTTP/1.0 503 Service Unavailable",
        Version::Http11 => "HTTP/1.1 503 Service Unavailable",
    };
    // Never a text body on a stream URL: some clients copy any body into their TS buffer.
    Bytes::from(format!(
        "{status}\r\nX-HDHomeRun-Error: {error}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    ))
}

#[cfg(test)]
#[path = "viewer_tests.rs"]
mod tests;
