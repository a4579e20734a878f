//! Why reading a guide or rendering the EPG failed, worded for a person and naming the line.

use std::io;
use std::path::PathBuf;

const MIB: u64 = 1024 * 1024;

/// Why a guide could not be read, or the EPG could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum XmltvError {
    /// A file could not be opened or read.
    #[error("cannot read {}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    /// Reading failed part way through the guide.
    #[error("read error at line {line}: {reason}")]
    Read { line: u64, reason: String },
    /// The gzip layer is corrupt or truncated.
    #[error("corrupt gzip data (at guide line {line}): {reason}")]
    Gzip { line: u64, reason: String },
    /// Decompressing produced more than the limit: a gzip bomb, or no guide we could use.
    #[error("decompressed guide exceeds {} (a gzip bomb?)", human_bytes(*.limit_bytes))]
    DecompressedTooLarge { limit_bytes: u64 },
    /// Nothing but whitespace.
    #[error("the guide is empty")]
    Empty,
    /// An HTML page (a provider's error or login page), not a guide.
    #[error("an HTML page, not an XMLTV guide (line {line})")]
    Html { line: u64 },
    /// Well-formed so far, but the root element is not `<tv>`.
    #[error("not an XMLTV guide: the root element at line {line} is <{root}>, not <tv>")]
    NotXmltv { line: u64, root: String },
    /// Not XML at all (text where the first element should be, or no element).
    #[error("not XML at line {line}: {reason}")]
    NotXml { line: u64, reason: String },
    /// The declared (or byte-order-marked) encoding is one we do not read.
    #[error(
        "unsupported encoding {name} (guides must be UTF-8, US-ASCII, ISO-8859-1 or windows-1252)"
    )]
    UnsupportedEncoding { name: String },
    /// Bytes that are not UTF-8 in a guide read as UTF-8.
    #[error("invalid UTF-8 at line {line}")]
    InvalidUtf8 { line: u64 },
    /// Broken XML: unclosed or mismatched tags, bad attributes and the like.
    #[error("malformed XML at line {line}: {reason}")]
    Malformed { line: u64, reason: String },
    /// The file ends inside `<tv>`: usually a cut-off download.
    #[error("the guide ends at line {line} before </tv> (truncated download?)")]
    Truncated { line: u64 },
    /// One of the [`Limits`](super::Limits) was exceeded.
    #[error("line {line}: {what}")]
    Limit { line: u64, what: String },
    /// Writing the rendered EPG failed.
    #[error("cannot write {}: {source}", .path.display())]
    Output { path: PathBuf, source: io::Error },
    /// A guide source failed while rendering the EPG.
    #[error("guide source {source_id} ({}): {error}", .path.display())]
    Source {
        source_id: i64,
        path: PathBuf,
        #[source]
        error: Box<XmltvError>,
    },
}

/// A failure raised inside our own readers, carried through quick-xml and `BufReader` as an
/// `io::Error` payload and turned back into an [`XmltvError`] by [`from_io`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum InputFault {
    #[error("decompressed guide exceeds {limit_bytes} bytes")]
    DecompressedTooLarge { limit_bytes: u64 },
    #[error("corrupt gzip data: {0}")]
    Gzip(String),
    #[error("an XML token exceeds {limit_bytes} bytes")]
    TokenTooLarge { limit_bytes: usize },
}

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
