//! Why an upstream request failed, worded so that no URL path or query ever reaches a log.
//!
//! Xtream credentials live in paths (`/live/USER/PASS/1.ts`) and queries (`?password=`), so errors
//! carry at most the origin (`scheme://host:port`).

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why an upstream request failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The URL is not an absolute http(s) URL we can fetch; the reason never quotes the URL.
    #[error("invalid upstream URL: {0}")]
    InvalidUrl(&'static str),
    /// A header value we send (User-Agent, Referer) is empty or would break the request head.
    #[error("invalid {0} header: {1}")]
    InvalidHeader(&'static str, &'static str),
    /// The extra CA file could not be read or holds no usable certificate.
    #[error("extra CA file {}: {reason}", .path.display())]
    CaFile { path: PathBuf, reason: String },
    /// The host name did not resolve.
    #[error("{origin}: name resolution failed: {source}")]
    Resolve { origin: String, source: io::Error },
    /// No address accepted the TCP connection before the deadline.
    #[error("{origin}: connect timed out")]
    ConnectTimeout { origin: String },
    /// Every address refused or failed.
    #[error("{origin}: connect failed: {source}")]
    Connect { origin: String, source: io::Error },
    /// The TLS handshake or a TLS record failed.
    #[error("{origin}: TLS failed: {reason}")]
    Tls { origin: String, reason: String },
    /// Connect, TLS and the response head did not complete within the head timeout.
    #[error("{origin}: no response head within {}", humantime::format_duration(*.after))]
    HeadTimeout { origin: String, after: Duration },
    /// The peer broke HTTP/1.1 (status line, headers, framing, chunking, Location).
    #[error("{origin}: malformed response: {reason}")]
    Malformed { origin: String, reason: String },
    /// More redirects than allowed (or a loop).
    #[error("{origin}: more than {max} redirects")]
    TooManyRedirects { origin: String, max: u8 },
    /// The connection ended before the response head or before the framed end of the body.
    #[error("{origin}: connection closed before the response was complete")]
    UnexpectedEof { origin: String },
    /// No body bytes arrived for the idle timeout; the socket has been shut down.
    #[error("{origin}: no data for {}", humantime::format_duration(*.after))]
    Stalled { origin: String, after: Duration },
    /// The body is larger than the caller's limit.
    #[error("{origin}: response body larger than {limit} bytes")]
    BodyTooLarge { origin: String, limit: usize },
    /// A socket read or write failed.
    #[error("{origin}: I/O error: {source}")]
    Io { origin: String, source: io::Error },
    /// The response was closed (by a `Closer`), or an earlier failure made it unusable.
    #[error("{origin}: response already closed")]
    Closed { origin: String },
}

/// The coarse class of an [`UpstreamError`], for failover reasons and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Our own input was wrong (URL, User-Agent, CA file): retrying will not help.
    Config,
    /// Connect or head deadline passed.
    ConnectionTimeout,
    /// Resolve, connect, I/O failure, early EOF, or closed on purpose.
    ConnectionError,
    /// TLS handshake, certificate or record failure.
    Tls,
    /// The peer spoke broken HTTP, or redirected too often.
    Protocol,
    /// The body stopped flowing for the idle timeout.
    Stall,
    /// The body exceeded the caller's limit.
    TooLarge,
}

impl UpstreamError {
    /// The coarse class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            UpstreamError::InvalidUrl(_)
            | UpstreamError::InvalidHeader(..)
            | UpstreamError::CaFile { .. } => ErrorKind::Config,
            UpstreamError::ConnectTimeout { .. } | UpstreamError::HeadTimeout { .. } => {
                ErrorKind::ConnectionTimeout
            }
            UpstreamError::Resolve { .. }
            | UpstreamError::Connect { .. }
            | UpstreamError::UnexpectedEof { .. }
            | UpstreamError::Io { .. }
            | UpstreamError::Closed { .. } => ErrorKind::ConnectionError,
            UpstreamError::Tls { .. } => ErrorKind::Tls,
            UpstreamError::Malformed { .. } | UpstreamError::TooManyRedirects { .. } => {
                ErrorKind::Protocol
            }
            UpstreamError::Stalled { .. } => ErrorKind::Stall,
            UpstreamError::BodyTooLarge { .. } => ErrorKind::TooLarge,
        }
    }
}
