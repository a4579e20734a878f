//! One connection: the socket wrapper handed to take-over handlers, and the request loop (read a
//! head within its deadline, read the body, answer, repeat while the client keeps the connection
//! alive).
//!
//! Every exit from the loop drops the `Connection`, whose `Drop` shuts the socket down, so no read
//! or write is left in flight on a socket nobody owns (RUNTIME-NOTES pitfall 2).

use std::io;
use std::mem;
use std::net::{Shutdown as Direction, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::time::{Instant, timeout, timeout_at};
use tokio_uring::buf::BoundedBuf;

use super::request::{Head, Parse, parse_head};
use super::response::{Body, CONTINUE, encode_head, has_body};
use super::{Handler, Method, Request, Response, Shutdown, Version};
use crate::net::{self, TcpStream};

/// Most buffers one `writev` may carry (Linux's IOV_MAX).
const IOV_MAX: usize = 1024;
/// Size of the pieces a file body is read and sent in.
const FILE_CHUNK: usize = 64 * 1024;
/// After an error answer, how long and how much we keep reading (and discarding) what the client
/// still sends: closing with unread input makes the kernel reset the connection, which can destroy
/// the answer before the client reads it.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;

/// A client connection. A take-over handler owns it; dropping it shuts the socket down.
pub struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
}

impl Connection {
    pub(crate) fn new(stream: TcpStream, peer: SocketAddr, local: SocketAddr) -> Self {
        Connection {
            stream,
            peer,
            local,
        }
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Which of our addresses the client reached.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Writes all of `buf`; the bytes are shared, not copied.
    pub async fn write_all(&self, buf: Bytes) -> io::Result<()> {
        self.stream.write_all(buf).await.0
    }

    /// Writes all of `bufs` with as few `writev` calls as the socket allows, without copying.
    /// Returns the vector for reuse: empty on success, holding what was not written on error.
    /// At most 1024 buffers (IOV_MAX).
    pub async fn writev_all(&self, bufs: Vec<Bytes>) -> (io::Result<()>, Vec<Bytes>) {
        self.writev_stalled(bufs, None).await
    }

    /// Reads into the spare capacity of `buf` (reserving some if there is none), appending.
    /// `Ok(0)` means the client closed its side. Useful to notice a client that went away while
    /// nothing is being written to it.
    pub async fn read(&self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        if buf.len() == buf.capacity() {
            buf.reserve(4096);
        }
        let start = buf.len();
        let (result, slice) = self.stream.read(buf.slice(start..)).await;
        (result, slice.into_inner())
    }

    /// Shuts the socket down in both directions: an operation in flight on it completes, and the
    /// client sees the end of the stream. Dropping the connection does this too.
    pub fn close(&self) {
        net::close(&self.stream);
    }

    /// `writev_all`, failing with `TimedOut` when one write makes no progress within `stall`
    /// (the vector is then lost: the caller closes the connection anyway).
    async fn writev_stalled(
        &self,
        mut bufs: Vec<Bytes>,
        stall: Option<Duration>,
    ) -> (io::Result<()>, Vec<Bytes>) {
        bufs.retain(|b| !b.is_empty());
        if bufs.len() > IOV_MAX {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "more than 1024 buffers");
            return (Err(e), bufs);
        }
        while !bufs.is_empty() {
            let op = self.stream.writev(bufs);
            let (result, back) = match stall {
                Some(stall) => match timeout(stall, op).await {
                    Ok(done) => done,
                    Err(_) => return (Err(io::ErrorKind::TimedOut.into()), Vec::new()),
                },
                None => op.await,
            };
            bufs = back;
            match result {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), bufs),
                Ok(n) => advance(&mut bufs, n),
                Err(e) => return (Err(e), bufs),
            }
        }
        (Ok(()), bufs)
    }

    /// Reads into `buf` up to `limit` bytes in all; `limit` must exceed `buf.len()`.
    async fn read_until(&self, mut buf: Vec<u8>, limit: usize) -> (io::Result<usize>, Vec<u8>) {
        let start = buf.len();
        let limit = limit.max(start + 1);
        buf.reserve(limit - start);
        let (result, slice) = self.stream.read(buf.slice(start..limit)).await;
        (result, slice.into_inner())
    }

    /// Sends a head-only answer that ends the connection, then lingers (see `LINGER_TIME`).
    async fn reject(&self, status: u16, stall: Duration) {
        let head = encode_head(status, &[], 0, false, Version::Http11);
        if self
            .writev_stalled(vec![head.into()], Some(stall))
            .await
            .0
            .is_err()
        {
            return;
        }
        let _ = self.stream.shutdown(Direction::Write);
        let drain = async {
            let mut buf = Vec::with_capacity(4096);
            let mut total = 0;
            while total < LINGER_BYTES {
                buf.clear();
                let (result, back) = self.read(buf).await;
                buf = back;
                match result {
                    Ok(n) if n > 0 => total += n,
                    _ => break,
                }
            }
        };
        let _ = timeout(LINGER_TIME, drain).await;
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        net::close(&self.stream);
    }
}

/// Drops the first `n` bytes of `bufs`.
fn advance(bufs: &mut Vec<Bytes>, mut n: usize) {
    let mut done = 0;
    for b in bufs.iter_mut() {
        if n >= b.len() {
            n -= b.len();
            done += 1;
        } else {
            b.advance(n);
            break;
        }
    }
    bufs.drain(..done);
}

/// The limits one connection works under (copied from `ServerConfig`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub head_timeout: Duration,
    pub idle_timeout: Duration,
    pub send_timeout: Duration,
    pub max_head_bytes: usize,
    pub max_body_bytes: usize,
}

impl Limits {
    pub(crate) fn from_config(config: &super::ServerConfig) -> Self {
        Limits {
            head_timeout: config.head_timeout,
            idle_timeout: config.idle_timeout,
            send_timeout: config.send_timeout,
            max_head_bytes: config.max_head_bytes,
            max_body_bytes: config.max_body_bytes,
        }
    }
}

/// Serves requests on `conn` until the client or a limit ends the connection, shutdown catches it
/// idle, or a handler takes it over.
pub(crate) async fn serve(
    conn: Connection,
    handler: Rc<dyn Handler>,
    limits: Limits,
    shutdown: Shutdown,
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut first = true;
    loop {
        // Idle between requests (or before the first): shutdown may close the connection here.
        let mut deadline = Instant::now() + limits.head_timeout;
        if buf.is_empty() {
            let wait = if first {
                limits.head_timeout
            } else {
                limits.idle_timeout
            };
            let read = conn.read_until(mem::take(&mut buf), limits.max_head_bytes + 1);
            tokio::select! {
                biased;
                _ = shutdown.fired() => return,
                read = timeout(wait, read) => match read {
                    Ok((Ok(n), back)) if n > 0 => buf = back,
                    // Closed, failed, or silent for too long: nothing to answer.
                    _ => return,
                },
            }
            if !first {
                deadline = Instant::now() + limits.head_timeout;
            }
        }
        first = false;

        let Some(head) = read_head(&conn, &mut buf, deadline, limits).await else {
            return;
        };
        let Some(body) = read_body(&conn, &mut buf, &head, limits).await else {
            return;
        };
        let keep_alive = head.keep_alive() && !shutdown.is_fired();
        let Some(method) = head.method else {
            let allow = [("Allow", "GET, HEAD, POST".to_owned())];
            let answer = encode_head(405, &allow, 0, keep_alive, head.version);
            let sent = conn
                .writev_stalled(vec![answer.into()], Some(limits.send_timeout))
                .await;
            if sent.0.is_err() || !keep_alive {
                return;
            }
            continue;
        };
        let request = Request {
            method,
            path: head.path,
            query: head.query,
            version: head.version,
            headers: head.headers,
            body,
            peer: conn.peer,
            local: conn.local,
        };
        match handler.handle(&request) {
            Response::TakeOver(take_over) => {
                drop(buf);
                take_over(conn, request).await;
                return;
            }
            Response::Full {
                status,
                headers,
                body,
            } => {
                // A handler bug must not produce an unreadable status line.
                let status = if (200..=999).contains(&status) {
                    status
                } else {
                    500
                };
                let answer = encode_head(status, &headers, body.len(), keep_alive, request.version);
                let body = (method != Method::Head && has_body(status)).then_some(body);
                if send(&conn, answer.into(), body, limits.send_timeout)
                    .await
                    .is_err()
                    || !keep_alive
                {
                    return;
                }
            }
        }
    }
}

/// Reads until `buf` starts with a complete head, answering and returning `None` if the request is
/// refused, the deadline passes, or the client goes away.
async fn read_head(
    conn: &Connection,
    buf: &mut Vec<u8>,
    deadline: Instant,
    limits: Limits,
) -> Option<Head> {
    loop {
        match parse_head(buf, limits.max_head_bytes, limits.max_body_bytes) {
            Parse::Complete(head) => return Some(head),
            Parse::Reject(reject) => {
                conn.reject(reject.status(), limits.send_timeout).await;
                return None;
            }
            Parse::Partial => {}
        }
        // Partial means at most `max_head_bytes` are buffered, so there is room below the limit.
        let read = conn.read_until(mem::take(buf), limits.max_head_bytes + 1);
        match timeout_at(deadline, read).await {
            Ok((Ok(n), back)) if n > 0 => *buf = back,
            Ok(_) => return None,
            // A slow sender (slowloris): it had its chance.
            Err(_) => {
                conn.reject(408, limits.send_timeout).await;
                return None;
            }
        }
    }
}

/// Reads the body that follows `head` and removes both from `buf`, leaving any pipelined request.
async fn read_body(
    conn: &Connection,
    buf: &mut Vec<u8>,
    head: &Head,
    limits: Limits,
) -> Option<Bytes> {
    let end = head.len + head.body_len;
    if buf.len() < end {
        if head.expect_continue {
            let sent = conn
                .writev_stalled(
                    vec![Bytes::from_static(CONTINUE)],
                    Some(limits.send_timeout),
                )
                .await;
            sent.0.ok()?;
        }
        let deadline = Instant::now() + limits.head_timeout;
        while buf.len() < end {
            match timeout_at(deadline, conn.read_until(mem::take(buf), end)).await {
                Ok((Ok(n), back)) if n > 0 => *buf = back,
                Ok(_) => return None,
                Err(_) => {
                    conn.reject(408, limits.send_timeout).await;
                    return None;
                }
            }
        }
    }
    let body = Bytes::copy_from_slice(buf.get(head.len..end)?);
    buf.drain(..end);
    Some(body)
}

/// Sends a response head and, unless `None`, its body.
async fn send(
    conn: &Connection,
    head: Bytes,
    body: Option<Body>,
    stall: Duration,
) -> io::Result<()> {
    match body {
        None => conn.writev_stalled(vec![head], Some(stall)).await.0,
        Some(Body::Bytes(body)) => conn.writev_stalled(vec![head, body], Some(stall)).await.0,
        Some(Body::File { file, len }) => {
            conn.writev_stalled(vec![head], Some(stall)).await.0?;
            send_file(conn, file, len, stall).await
        }
    }
}

/// Streams the first `len` bytes of `file` through one reused buffer.
async fn send_file(
    conn: &Connection,
    file: std::fs::File,
    len: u64,
    stall: Duration,
) -> io::Result<()> {
    let file = net::File::from_std(file);
    let mut buf = Vec::with_capacity(FILE_CHUNK);
    let mut pos = 0u64;
    while pos < len {
        let want = usize::try_from(len - pos).map_or(FILE_CHUNK, |left| left.min(FILE_CHUNK));
        buf.clear();
        let (result, slice) = file.read_at(buf.slice(..want), pos).await;
        buf = slice.into_inner();
        let n = result?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shorter than the length announced",
            ));
        }
        let (result, slice) = timeout(stall, conn.stream.write_all(buf.slice(..n)))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?;
        result?;
        buf = slice.into_inner();
        pos += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_drops_written_bytes() {
        let mut bufs = vec![
            Bytes::from_static(b"abc"),
            Bytes::from_static(b"de"),
            Bytes::from_static(b"fgh"),
        ];
        advance(&mut bufs, 4);
        assert_eq!(bufs, [&b"e"[..], &b"fgh"[..]]);
        advance(&mut bufs, 1);
        assert_eq!(bufs, [&b"fgh"[..]]);
        advance(&mut bufs, 3);
        assert!(bufs.is_empty());
    }
}
