//! One upstream connection: the socket (plain or TLS), the receive buffer the body is handed out
//! from, and the `Closer` that lets another task shut the socket down.
//!
//! Reads go into the spare capacity of one `BytesMut`; what was read leaves it as frozen slices,
//! so body bytes are never copied on plain TCP and one buffer serves ~64 KiB of reads.

use std::cell::Cell;
use std::io;
use std::mem;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use bytes::BytesMut;
use tokio_uring::buf::{BoundedBuf, IoBufMut};

use super::UpstreamError;
use super::tls::TlsLayer;
use crate::net::{self, TcpStream};

/// Bytes asked of each read when the buffer is (re)allocated.
const READ_SIZE: usize = 64 * 1024;
/// Below this much spare capacity a new buffer is reserved, so reads never get tiny.
const MIN_SPARE: usize = 16 * 1024;

/// The least room beyond a batch's low-water mark.
const MIN_BATCH_MARGIN: usize = 8 * 1024;

/// How much room each read is given: [`READ_SIZE`] at first, and room for a whole batch once the
/// socket's low-water mark asks reads to gather one, so that a batch arrives in one read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ReadRoom {
    /// What a new buffer is reserved for.
    pub(crate) reserve: usize,
    /// Below this much spare capacity a new buffer is reserved.
    pub(crate) min_spare: usize,
}

impl ReadRoom {
    pub(crate) const DEFAULT: ReadRoom = ReadRoom {
        reserve: READ_SIZE,
        min_spare: MIN_SPARE,
    };

    /// Room for reads that complete once `low_water` bytes are buffered: the batch and an eighth
    /// more for what arrives with its last segments. Each chunk keeps its buffer alive in the
    /// fan-out ring, so the margin is kept small (its unused tail is memory held for nothing);
    /// what does not fit is read at once in a second, short read.
    pub(crate) fn for_batch(low_water: usize) -> ReadRoom {
        ReadRoom {
            reserve: low_water + (low_water / 8).max(MIN_BATCH_MARGIN),
            min_spare: low_water,
        }
    }
}

/// Why a transport-level operation failed, before the origin is attached.
#[derive(Debug)]
pub(crate) enum Fail {
    Tls(String),
    /// The stream ended inside a TLS record.
    Truncated,
    Io(io::Error),
}

struct Socket {
    stream: TcpStream,
    /// Set by a `Closer`: whatever the next read returns, the response is over.
    closed: Cell<bool>,
}

/// Shuts an upstream socket down from elsewhere (e.g. the other branch of a `select!`), so that a
/// pending `next_chunk` returns promptly with an error.
///
/// Holds a weak reference: it never keeps a dropped response's socket open.
#[derive(Clone)]
pub struct Closer {
    socket: Weak<Socket>,
}

impl Closer {
    /// Shuts the socket down both ways; later reads of the response fail with `Closed`.
    pub fn close(&self) {
        if let Some(socket) = self.socket.upgrade() {
            socket.closed.set(true);
            net::close(&socket.stream);
        }
    }
}

pub(crate) struct Conn {
    socket: Rc<Socket>,
    tls: Option<Box<TlsLayer>>,
    /// Received plaintext not yet handed out.
    pub(crate) buf: BytesMut,
    /// A read or write is (or was, when its future was dropped) in flight: the buffer it owns is
    /// gone, so the connection must not be used again.
    busy: bool,
    eof: bool,
    origin: String,
    room: ReadRoom,
}

impl Conn {
    /// Wraps a connected socket, with TLS to `host` when `tls` is given.
    pub(crate) fn new(
        stream: TcpStream,
        tls: Option<(Arc<rustls::ClientConfig>, &str)>,
        origin: String,
    ) -> Result<Conn, UpstreamError> {
        let mut conn = Conn {
            socket: Rc::new(Socket {
                stream,
                closed: Cell::new(false),
            }),
            tls: None,
            buf: BytesMut::with_capacity(READ_SIZE),
            busy: false,
            eof: false,
            origin,
            room: ReadRoom::DEFAULT,
        };
        if let Some((config, host)) = tls {
            let layer = TlsLayer::new(config, host).map_err(|f| conn.error(f))?;
            conn.tls = Some(Box::new(layer));
        }
        Ok(conn)
    }

    /// See [`crate::net::set_receive_low_water`]. Reads then have room for the whole batch.
    pub(crate) fn set_receive_low_water(&mut self, bytes: usize) -> std::io::Result<()> {
        crate::net::set_receive_low_water(&self.socket.stream, bytes)?;
        self.room = ReadRoom::for_batch(bytes);
        Ok(())
    }

    /// Sends the request: at once on plain TCP; with TLS, queued until the handshake allows
    /// (the first `fill` drives both).
    pub(crate) async fn send_request(&mut self, request: Vec<u8>) -> Result<(), UpstreamError> {
        self.check()?;
        if let Some(tls) = &mut self.tls {
            tls.queue_request(request);
            return Ok(());
        }
        self.busy = true;
        let (result, _) = self.socket.stream.write_all(request).await;
        self.busy = false;
        result.map_err(|e| self.error(Fail::Io(e)))
    }

    /// Reads more into `buf`; returns how many bytes were added, 0 at the end of the stream.
    pub(crate) async fn fill(&mut self) -> Result<usize, UpstreamError> {
        self.check()?;
        if self.eof {
            return Ok(0);
        }
        self.busy = true;
        let result = match &mut self.tls {
            Some(tls) => {
                tls.fill(&self.socket.stream, &mut self.buf, self.room)
                    .await
            }
            None => {
                if self.buf.capacity() - self.buf.len() < self.room.min_spare {
                    // Reclaims the allocation when every slice handed out is gone.
                    self.buf.reserve(self.room.reserve);
                }
                read_more(&self.socket.stream, &mut self.buf)
                    .await
                    .map_err(Fail::Io)
            }
        };
        self.busy = false;
        self.check()?;
        let n = result.map_err(|f| self.error(f))?;
        self.eof = n == 0;
        Ok(n)
    }

    /// Fails once the connection was closed or an operation on it was abandoned.
    pub(crate) fn check(&self) -> Result<(), UpstreamError> {
        if self.busy || self.socket.closed.get() {
            return Err(UpstreamError::Closed {
                origin: self.origin.clone(),
            });
        }
        Ok(())
    }

    pub(crate) fn closer(&self) -> Closer {
        Closer {
            socket: Rc::downgrade(&self.socket),
        }
    }

    /// Shuts the socket down (completing any operation in flight) and marks it closed.
    pub(crate) fn shutdown(&self) {
        self.socket.closed.set(true);
        net::close(&self.socket.stream);
    }

    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    fn error(&self, fail: Fail) -> UpstreamError {
        let origin = self.origin.clone();
        match fail {
            Fail::Tls(reason) => UpstreamError::Tls { origin, reason },
            Fail::Truncated => UpstreamError::UnexpectedEof { origin },
            Fail::Io(source) => UpstreamError::Io { origin, source },
        }
    }
}

impl Drop for Conn {
    /// Dropping a tokio-uring future does not cancel its read: shutting down makes it complete
    /// and the peer see FIN (RUNTIME-NOTES pitfall 2).
    fn drop(&mut self) {
        net::close(&self.socket.stream);
    }
}

/// Reads into the spare capacity after `buf`'s initialised bytes.
pub(crate) async fn read_more<B: IoBufMut + Default>(
    stream: &TcpStream,
    buf: &mut B,
) -> io::Result<usize> {
    let owned = mem::take(buf);
    let filled = owned.bytes_init();
    if filled >= owned.bytes_total() {
        *buf = owned;
        return Err(io::Error::other("receive buffer full"));
    }
    let (result, slice) = stream.read(owned.slice(filled..)).await;
    *buf = slice.into_inner();
    result
}

/// Writes all of `buf` and leaves it empty (keeping its allocation).
pub(crate) async fn write_all(stream: &TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    let (result, mut owned) = stream.write_all(mem::take(buf)).await;
    owned.clear();
    *buf = owned;
    result
}
