//! A response whose head has been read: status, headers, and the body handed out as frozen slices
//! of the receive buffer, framed by Content-Length, chunked encoding or the connection's close.

use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::chunked::{Chunked, Step};
use super::conn::{Closer, Conn};
use super::head::{Framing, Head};
use super::{UpstreamError, Url};

enum Body {
    Length(u64),
    Chunked(Chunked),
    Close,
    Done,
    /// An error was returned: the framing position is unknown, nothing more can be read.
    Failed,
}

/// An upstream response. Non-2xx statuses are responses too: the caller decides.
///
/// Dropping it shuts the socket down, even with a read in flight.
pub struct Response {
    pub status: u16,
    /// Kept from the head, which is not: what the body claims to be.
    content_type: Option<String>,
    #[cfg(test)]
    head: Head,
    url: Url,
    conn: Conn,
    body: Body,
    idle_timeout: Option<Duration>,
}

impl Response {
    pub(crate) fn new(
        url: Url,
        head: Head,
        conn: Conn,
        framing: Framing,
        idle_timeout: Option<Duration>,
    ) -> Response {
        let body = match framing {
            Framing::Empty => Body::Done,
            Framing::Length(n) => Body::Length(n),
            Framing::Chunked => Body::Chunked(Chunked::new()),
            Framing::Close => Body::Close,
        };
        Response {
            status: head.status,
            content_type: head.header("content-type").map(str::to_owned),
            #[cfg(test)]
            head,
            url,
            conn,
            body,
            idle_timeout,
        }
    }

    /// The first value of header `name` (case-insensitive).
    #[cfg(test)]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    /// The `Content-Type` header's value, if any.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The URL that answered, after redirects. Its path and query carry credentials: print only
    /// its `origin()`.
    #[cfg(test)]
    pub fn final_url(&self) -> &Url {
        &self.url
    }

    /// The next piece of the body, as received (a slice of the receive buffer, not a copy);
    /// `Ok(None)` at the end of a well-framed body. After an error (including `Stalled`), every
    /// later call fails. Dropping this future mid-read (e.g. in a `select!`) leaves the
    /// response unusable: later calls fail with `Closed`.
    pub async fn next_chunk(&mut self) -> Result<Option<BytesMut>, UpstreamError> {
        let result = self.next_chunk_inner().await;
        if result.is_err() {
            self.body = Body::Failed;
            self.conn.shutdown();
        }
        result
    }

    async fn next_chunk_inner(&mut self) -> Result<Option<BytesMut>, UpstreamError> {
        self.conn.check()?;
        loop {
            let buf = &mut self.conn.buf;
            match &mut self.body {
                Body::Done => return Ok(None),
                Body::Failed => return Err(self.closed()),
                Body::Length(0) => {
                    self.body = Body::Done;
                    return Ok(None);
                }
                Body::Length(remaining) => {
                    if !buf.is_empty() {
                        let take =
                            usize::try_from(*remaining).map_or(buf.len(), |r| r.min(buf.len()));
                        *remaining -= take as u64;
                        return Ok(Some(buf.split_to(take)));
                    }
                }
                Body::Close => {
                    if !buf.is_empty() {
                        return Ok(Some(buf.split()));
                    }
                }
                Body::Chunked(decoder) => match decoder.decode(buf) {
                    Ok(Step::Data(data)) => return Ok(Some(data)),
                    Ok(Step::Done) => {
                        self.body = Body::Done;
                        return Ok(None);
                    }
                    Ok(Step::NeedMore) => {}
                    Err(reason) => {
                        return Err(UpstreamError::Malformed {
                            origin: self.conn.origin().to_owned(),
                            reason: reason.to_owned(),
                        });
                    }
                },
            }
            if self.fill().await? == 0 {
                if matches!(self.body, Body::Close) {
                    self.body = Body::Done;
                    return Ok(None);
                }
                return Err(UpstreamError::UnexpectedEof {
                    origin: self.conn.origin().to_owned(),
                });
            }
        }
    }

    /// Reads more, giving up after the idle timeout: the socket is then shut down so the read
    /// in flight completes and the peer sees FIN.
    async fn fill(&mut self) -> Result<usize, UpstreamError> {
        let Some(idle) = self.idle_timeout else {
            return self.conn.fill().await;
        };
        match tokio::time::timeout(idle, self.conn.fill()).await {
            Ok(result) => result,
            Err(_) => {
                self.conn.shutdown();
                Err(UpstreamError::Stalled {
                    origin: self.conn.origin().to_owned(),
                    after: idle,
                })
            }
        }
    }

    /// The whole body, failing with `BodyTooLarge` past `limit` bytes. A body that arrived in
    /// one piece is returned without a copy.
    pub async fn read_to_end(mut self, limit: usize) -> Result<Bytes, UpstreamError> {
        let too_large = |origin: &str| UpstreamError::BodyTooLarge {
            origin: origin.to_owned(),
            limit,
        };
        if let Body::Length(n) = self.body
            && n > limit as u64
        {
            return Err(too_large(self.conn.origin()));
        }
        let mut first: Option<Bytes> = None;
        let mut rest = BytesMut::new();
        let mut total = 0usize;
        while let Some(chunk) = self.next_chunk().await? {
            total = total.saturating_add(chunk.len());
            if total > limit {
                return Err(too_large(self.conn.origin()));
            }
            match first.take() {
                None if rest.is_empty() => first = Some(chunk.freeze()),
                earlier => {
                    if let Some(earlier) = earlier {
                        rest.extend_from_slice(&earlier);
                    }
                    rest.extend_from_slice(&chunk);
                }
            }
        }
        Ok(first.unwrap_or_else(|| rest.freeze()))
    }

    /// Lets reads complete only once `bytes` are buffered (see
    /// [`crate::net::set_receive_low_water`]); for a body that is already flowing steadily.
    pub fn set_receive_low_water(&mut self, bytes: usize) -> std::io::Result<()> {
        self.conn.set_receive_low_water(bytes)
    }

    /// A handle that can shut this response's socket down from another task.
    pub fn closer(&self) -> Closer {
        self.conn.closer()
    }

    /// Shuts the socket down both ways and drops the response.
    pub fn close(self) {
        self.conn.shutdown();
    }

    fn closed(&self) -> UpstreamError {
        UpstreamError::Closed {
            origin: self.conn.origin().to_owned(),
        }
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("origin", &self.url.origin())
            .finish_non_exhaustive()
    }
}
