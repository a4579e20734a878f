//! One viewer: waits until its channel has media (or is refused), sends the response head once,
//! then writes the channel's ring from a recent PAT onwards. The bytes are the ring's shared
//! slices, written with writev: no per-viewer copy. A viewer that falls further behind than the
//! ring holds is dropped; it never slows the upstream or the other viewers.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;

use crate::http::{Connection, Request, Version};
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

/// Serves one viewer of `channel` on `connection` until either side ends.
pub async fn watch(channel: Rc<Channel>, connection: Connection, request: Request) {
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
        Viewing::Live => Some(ok_head(request.version)),
        Viewing::Refused(Refusal::AllTunersInUse) => {
            Some(refusal_head(request.version, "805 All Tuners In Use"))
        }
        Viewing::Refused(Refusal::NoVideoData) | Viewing::Ended | Viewing::Waiting => {
            Some(refusal_head(request.version, "807 No Video Data"))
        }
    };
    let live = channel.viewing() == Viewing::Live;
    if let Some(head) = head
        && connection.write_all(head).await.is_ok()
        && live
    {
        stream(&channel, &connection, &gone, requested).await;
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
    connection: &Connection,
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

fn drop_slow(channel: &Channel, connection: &Connection) {
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
fn spawn_hangup_watch(connection: Rc<Connection>, gone: Rc<Cell<bool>>, channel: Rc<Channel>) {
    tokio_uring::spawn(async move {
        let mut buf = vec![0u8; 512];
        loop {
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
