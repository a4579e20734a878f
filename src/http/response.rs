//! What a handler answers, and the bytes of a response head.
//!
//! The server owns the framing: it writes the status line, `Date`, `Content-Length` and
//! `Connection` itself, so a handler cannot produce a response whose length lies or that is
//! chunked (which HTTP/1.0 clients such as Plex cannot read).

use std::fmt::Write as _;
use std::fs::File;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::{Connection, Request, Version};
use crate::time::Civil;

/// The interim answer to `Expect: 100-continue`.
pub(crate) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Headers the server writes itself; a handler's own are dropped.
const SERVER_OWNED: [&str; 5] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "date",
];

/// A handler's take-over of the connection: it gets the socket and the request and answers as it
/// likes (e.g. a close-delimited stream).
pub type TakeOver = Box<dyn FnOnce(Connection, Request) -> Pin<Box<dyn Future<Output = ()>>>>;

pub enum Response {
    /// A complete response. The server adds `Content-Length` (always), `Date` and `Connection`,
    /// and sends no body to a HEAD request.
    Full {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Body,
    },
    /// The handler takes the connection over after this request: the server sends nothing, runs
    /// the future (still counted against the connection cap) and closes the socket when it ends.
    /// Bytes the client sent past this request are discarded.
    TakeOver(TakeOver),
}

impl Response {
    pub fn full(status: u16, headers: Vec<(&'static str, String)>, body: impl Into<Body>) -> Self {
        Response::Full {
            status,
            headers,
            body: body.into(),
        }
    }

    /// A response with no headers of the handler's and an empty body.
    pub fn empty(status: u16) -> Self {
        Response::full(status, Vec::new(), Bytes::new())
    }

    pub fn take_over<F, Fut>(f: F) -> Self
    where
        F: FnOnce(Connection, Request) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        Response::TakeOver(Box::new(move |conn, req| Box::pin(f(conn, req))))
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Response::Full {
                status,
                headers,
                body,
            } => f
                .debug_struct("Full")
                .field("status", status)
                .field("headers", headers)
                .field("body_len", &body.len())
                .finish(),
            Response::TakeOver(_) => f.write_str("TakeOver"),
        }
    }
}

/// A response body: bytes in memory, or a file streamed from disk in small pieces (e.g. a rendered
/// guide of many megabytes, which must not be held in memory).
pub enum Body {
    Bytes(Bytes),
    /// `len` bytes from the start of `file`; if the file turns out shorter, the connection is cut
    /// rather than the length broken.
    File {
        file: File,
        len: u64,
    },
}

impl Body {
    /// The whole of `file`, its length taken now: a file replaced by rename meanwhile is still
    /// served whole from the open descriptor.
    pub fn file(file: File) -> io::Result<Body> {
        let len = file.metadata()?.len();
        Ok(Body::File { file, len })
    }

    pub fn len(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Body::Bytes(b)
    }
}

impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Self {
        Body::Bytes(b.into())
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Body::Bytes(s.into())
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Body::Bytes(Bytes::from_static(s.as_bytes()))
    }
}

/// Whether a response with `status` carries a body (and so a `Content-Length`).
pub(crate) fn has_body(status: u16) -> bool {
    !(status < 200 || status == 204 || status == 304)
}

/// The response head: status line, `Date`, the handler's headers, then the framing headers.
/// `body_len` is the length of the body a GET would get, also for HEAD.
pub(crate) fn encode_head(
    status: u16,
    headers: &[(&str, String)],
    body_len: u64,
    keep_alive: bool,
    version: Version,
) -> Vec<u8> {
    let mut head = String::with_capacity(256);
    let _ = write!(
        head,
        "HTTP/1.1 {status} {}\r\nDate: {}\r\n",
        reason(status),
        http_date(SystemTime::now())
    );
    for (name, value) in headers {
        if SERVER_OWNED.iter().any(|o| name.eq_ignore_ascii_case(o)) {
            continue;
        }
        // A stray line break would let a value forge headers of its own.
        let value = value.replace(['\r', '\n'], " ");
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if has_body(status) {
        let _ = write!(head, "Content-Length: {body_len}\r\n");
    }
    match (keep_alive, version) {
        (false, _) => head.push_str("Connection: close\r\n"),
        (true, Version::Http10) => head.push_str("Connection: keep-alive\r\n"),
        (true, Version::Http11) => {}
    }
    head.push_str("\r\n");
    head.into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form RFC 9110 asks for in `Date`.
pub(crate) fn http_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let c = Civil::from_unix(secs);
    // 1970-01-01 was a Thursday.
    let weekday = DAYS
        .get(secs.div_euclid(86_400).rem_euclid(7) as usize)
        .unwrap_or(&"Thu");
    let month = MONTHS
        .get(usize::try_from(c.month - 1).unwrap_or(0))
        .unwrap_or(&"Jan");
    format!(
        "{weekday}, {:02} {month} {:04} {:02}:{:02}:{:02} GMT",
        c.day, c.year, c.hour, c.minute, c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_imf_fixdate() {
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        let leap = UNIX_EPOCH + Duration::from_secs(1_709_164_800); // 2024-02-29
        assert_eq!(http_date(leap), "Thu, 29 Feb 2024 00:00:00 GMT");
    }

    fn head_text(
        status: u16,
        headers: &[(&str, String)],
        len: u64,
        keep: bool,
        v: Version,
    ) -> String {
        String::from_utf8(encode_head(status, headers, len, keep, v)).unwrap()
    }

    #[test]
    fn heads_carry_framing_and_drop_the_handlers() {
        let headers = [
            ("Content-Type", "application/json".to_owned()),
            ("Content-Length", "999".to_owned()),
            ("Transfer-Encoding", "chunked".to_owned()),
            ("X-Evil", "a\r\nSet-Cookie: b".to_owned()),
        ];
        let text = head_text(200, &headers, 12, true, Version::Http11);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nDate: "), "{text}");
        assert!(text.contains("\r\nContent-Type: application/json\r\n"));
        assert!(text.contains("\r\nContent-Length: 12\r\n"));
        assert!(!text.contains("999") && !text.to_ascii_lowercase().contains("chunked"));
        assert!(text.contains("\r\nX-Evil: a  Set-Cookie: b\r\n"));
        assert!(!text.contains("Connection"));
        assert!(text.ends_with("\r\n\r\n"));

        let ten = head_text(404, &[], 0, true, Version::Http10);
        assert!(ten.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(ten.contains("\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"));
        let close = head_text(503, &[], 0, false, Version::Http11);
        assert!(close.contains("\r\nConnection: close\r\n"));
        let none = head_text(204, &[], 0, true, Version::Http11);
        assert!(!none.contains("Content-Length"));
    }
}
