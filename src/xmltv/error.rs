//! Why reading a guide or rendering the EPG failed, worded for a person and naming the line.

use std::fmt;
use std::io;
use std::path::PathBuf;

const MIB: u64 = 1024 * 1024;

/// Why a guide could not be read, or the EPG could not be rendered.
#[derive(Debug)]
pub enum XmltvError {
    /// A file could not be opened or read.
    Io { path: PathBuf, source: io::Error },
    /// Reading failed part way through the guide.
    Read { line: u64, reason: String },
    /// The gzip layer is corrupt or truncated.
    Gzip { line: u64, reason: String },
    /// Decompressing produced more than the limit: a gzip bomb, or no guide we could use.
    DecompressedTooLarge { limit_bytes: u64 },
    /// Nothing but whitespace.
    Empty,
    /// An HTML page (a provider's error or login page), not a guide.
    Html { line: u64 },
    /// Well-formed so far, but the root element is not `<tv>`.
    NotXmltv { line: u64, root: String },
    /// Not XML at all (text where the first element should be, or no element).
    NotXml { line: u64, reason: String },
    /// The declared (or byte-order-marked) encoding is one we do not read.
    UnsupportedEncoding { name: String },
    /// Bytes that are not UTF-8 in a guide read as UTF-8.
    InvalidUtf8 { line: u64 },
    /// Broken XML: unclosed or mismatched tags, bad attributes and the like.
    Malformed { line: u64, reason: String },
    /// The file ends inside `<tv>`: usually a cut-off download.
    Truncated { line: u64 },
    /// One of the [`Limits`](super::Limits) was exceeded.
    Limit { line: u64, what: String },
    /// Writing the rendered EPG failed.
    Output { path: PathBuf, source: io::Error },
    /// A guide source failed while rendering the EPG.
    Source {
        source_id: i64,
        path: PathBuf,
        error: Box<XmltvError>,
    },
}

impl fmt::Display for XmltvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XmltvError::Io { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            XmltvError::Read { line, reason } => write!(f, "read error at line {line}: {reason}"),
            XmltvError::Gzip { line, reason } => {
                write!(f, "corrupt gzip data (at guide line {line}): {reason}")
            }
            XmltvError::DecompressedTooLarge { limit_bytes } => write!(
                f,
                "decompressed guide exceeds {} (a gzip bomb?)",
                human_bytes(*limit_bytes)
            ),
            XmltvError::Empty => write!(f, "the guide is empty"),
            XmltvError::Html { line } => {
                write!(f, "an HTML page, not an XMLTV guide (line {line})")
            }
            XmltvError::NotXmltv { line, root } => write!(
                f,
                "not an XMLTV guide: the root element at line {line} is <{root}>, not <tv>"
            ),
            XmltvError::NotXml { line, reason } => write!(f, "not XML at line {line}: {reason}"),
            XmltvError::UnsupportedEncoding { name } => write!(
                f,
                "unsupported encoding {name} (guides must be UTF-8, US-ASCII, ISO-8859-1 or windows-1252)"
            ),
            XmltvError::InvalidUtf8 { line } => write!(f, "invalid UTF-8 at line {line}"),
            XmltvError::Malformed { line, reason } => {
                write!(f, "malformed XML at line {line}: {reason}")
            }
            XmltvError::Truncated { line } => write!(
                f,
                "the guide ends at line {line} before </tv> (truncated download?)"
            ),
            XmltvError::Limit { line, what } => write!(f, "line {line}: {what}"),
            XmltvError::Output { path, source } => {
                write!(f, "cannot write {}: {source}", path.display())
            }
            XmltvError::Source {
                source_id,
                path,
                error,
            } => write!(f, "guide source {source_id} ({}): {error}", path.display()),
        }
    }
}

impl std::error::Error for XmltvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            XmltvError::Io { source, .. } | XmltvError::Output { source, .. } => Some(source),
            XmltvError::Source { error, .. } => Some(error.as_ref()),
            _ => None,
        }
    }
}

/// A failure raised inside our own readers, carried through quick-xml and `BufReader` as an
/// `io::Error` payload and turned back into an [`XmltvError`] by [`from_io`].
#[derive(Debug)]
pub(crate) enum InputFault {
    DecompressedTooLarge { limit_bytes: u64 },
    Gzip(String),
    TokenTooLarge { limit_bytes: usize },
}

impl fmt::Display for InputFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputFault::DecompressedTooLarge { limit_bytes } => {
                write!(f, "decompressed guide exceeds {limit_bytes} bytes")
            }
            InputFault::Gzip(reason) => write!(f, "corrupt gzip data: {reason}"),
            InputFault::TokenTooLarge { limit_bytes } => {
                write!(f, "an XML token exceeds {limit_bytes} bytes")
            }
        }
    }
}

impl std::error::Error for InputFault {}

impl InputFault {
    pub(crate) fn into_io(self) -> io::Error {
        io::Error::other(self)
    }
}

/// Maps a read error met at `line` to what it means for the guide.
pub(crate) fn from_io(err: &io::Error, line: u64) -> XmltvError {
    match err.get_ref().and_then(|e| e.downcast_ref::<InputFault>()) {
        Some(InputFault::DecompressedTooLarge { limit_bytes }) => {
            XmltvError::DecompressedTooLarge {
                limit_bytes: *limit_bytes,
            }
        }
        Some(InputFault::Gzip(reason)) => XmltvError::Gzip {
            line,
            reason: reason.clone(),
        },
        Some(InputFault::TokenTooLarge { limit_bytes }) => XmltvError::Limit {
            line,
            what: format!(
                "a single tag or text run is longer than {} (the limit)",
                human_bytes(*limit_bytes as u64)
            ),
        },
        None => XmltvError::Read {
            line,
            reason: err.to_string(),
        },
    }
}

/// `1 MiB`, `64 KiB` or `100 bytes`, for limits in messages.
pub(crate) fn human_bytes(n: u64) -> String {
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}
