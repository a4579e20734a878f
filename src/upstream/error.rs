//! Why an upstream request failed, worded so that no URL path or query ever reaches a log.
//!
//! Xtream credentials live in paths (`/live/USER/PASS/1.ts`) and queries (`?password=`), so errors
//! carry at most the origin (`scheme://host:port`).

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why an upstream request failed.
#[derive(Debug)]
pub enum UpstreamError {
    /// The URL is not an absolute http(s) URL we can fetch; the reason never quotes the URL.
    InvalidUrl(&'static str),
    /// The User-Agent is empty or would break the request head.
    InvalidUserAgent(&'static str),
    /// The extra CA file could not be read or holds no usable certificate.
    CaFile { path: PathBuf, reason: String },
    /// The host name did not resolve.
    Resolve { origin: String, source: io::Error },
    /// No address accepted the TCP connection before the deadline.
    ConnectTimeout { origin: String },
    /// Every address refused or failed.
    Connect { origin: String, source: io::Error },
    /// The TLS handshake or a TLS record failed.
    Tls { origin: String, reason: String },
    /// Connect, TLS and the response head did not complete within the head timeout.
    HeadTimeout { origin: String, after: Duration },
    /// The peer broke HTTP/1.1 (status line, headers, framing, chunking, Location).
    Malformed { origin: String, reason: String },
    /// More redirects than allowed (or a loop).
    TooManyRedirects { origin: String, max: u8 },
    /// The connection ended before the response head or before the framed end of the body.
    UnexpectedEof { origin: String },
    /// No body bytes arrived for the idle timeout; the socket has been shut down.
    Stalled { origin: String, after: Duration },
    /// The body is larger than the caller's limit.
    BodyTooLarge { origin: String, limit: usize },
    /// A socket read or write failed.
    Io { origin: String, source: io::Error },
    /// The response was closed (by a `Closer`), or an earlier failure made it unusable.
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
            | UpstreamError::InvalidUserAgent(_)
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

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::InvalidUrl(why) => write!(f, "invalid upstream URL: {why}"),
            UpstreamError::InvalidUserAgent(why) => write!(f, "invalid user agent: {why}"),
            UpstreamError::CaFile { path, reason } => {
                write!(f, "extra CA file {}: {reason}", path.display())
            }
            UpstreamError::Resolve { origin, source } => {
                write!(f, "{origin}: name resolution failed: {source}")
            }
            UpstreamError::ConnectTimeout { origin } => write!(f, "{origin}: connect timed out"),
            UpstreamError::Connect { origin, source } => {
                write!(f, "{origin}: connect failed: {source}")
            }
            UpstreamError::Tls { origin, reason } => write!(f, "{origin}: TLS failed: {reason}"),
            UpstreamError::HeadTimeout { origin, after } => write!(
                f,
                "{origin}: no response head within {}",
                humantime::format_duration(*after)
            ),
            UpstreamError::Malformed { origin, reason } => {
                write!(f, "{origin}: malformed response: {reason}")
            }
            UpstreamError::TooManyRedirects { origin, max } => {
                write!(f, "{origin}: more than {max} redirects")
            }
            UpstreamError::UnexpectedEof { origin } => {
                write!(
                    f,
                    "{origin}: connection closed before the response was complete"
                )
            }
            UpstreamError::Stalled { origin, after } => write!(
                f,
                "{origin}: no data for {}",
                humantime::format_duration(*after)
            ),
            UpstreamError::BodyTooLarge { origin, limit } => {
                write!(f, "{origin}: response body larger than {limit} bytes")
            }
            UpstreamError::Io { origin, source } => write!(f, "{origin}: I/O error: {source}"),
            UpstreamError::Closed { origin } => write!(f, "{origin}: response already closed"),
        }
    }
}

impl std::error::Error for UpstreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpstreamError::Resolve { source, .. }
            | UpstreamError::Connect { source, .. }
            | UpstreamError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
