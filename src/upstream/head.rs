//! Parses a response head (status line and headers) with httparse, skipping interim 1xx
//! responses, and decides how the body that follows is framed (RFC 9112 §6.3).

use bytes::{Buf, BytesMut};

/// The largest response head we accept.
pub(crate) const HEAD_LIMIT: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;

/// A final (non-1xx) response head.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) status: u16,
    /// Names as sent; values decoded lossily (non-UTF-8 bytes become U+FFFD).
    pub(crate) headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of the header `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.values(name).next()
    }

    fn values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How the body after a head ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (204, 304).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the peer closes the connection.
    Close,
}

/// Parses the final head at the front of `buf` and removes it (and any interim 1xx heads before
/// it) from `buf`, leaving the body bytes that came with it. `Ok(None)`: incomplete, read more.
pub(crate) fn parse_final_head(buf: &mut BytesMut) -> Result<Option<Head>, String> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let mut config = httparse::ParserConfig::default();
        config
            .allow_multiple_spaces_in_response_status_delimiters(true)
            .allow_obsolete_multiline_headers_in_responses(true)
            .allow_spaces_after_header_name_in_responses(true);
        let used = match config.parse_response(&mut response, buf) {
            Ok(httparse::Status::Complete(used)) if used <= HEAD_LIMIT => used,
            Ok(httparse::Status::Partial) if buf.len() < HEAD_LIMIT => return Ok(None),
            Ok(_) => return Err(format!("response head larger than {HEAD_LIMIT} bytes")),
            Err(e) => return Err(format!("bad response head: {e}")),
        };
        let status = response.code.unwrap_or(0);
        match status {
            101 => return Err("unexpected 101 Switching Protocols".to_owned()),
            100..=199 => {
                buf.advance(used);
                continue;
            }
            _ => {}
        }
        let headers = response
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).trim().to_owned(),
                )
            })
            .collect();
        buf.advance(used);
        return Ok(Some(Head { status, headers }));
    }
}

/// Decides the body framing of a response to a GET.
pub(crate) fn framing(head: &Head) -> Result<Framing, &'static str> {
    if matches!(head.status, 204 | 304) {
        return Ok(Framing::Empty);
    }
    // Chunked wins over Content-Length; any other final coding runs to the close.
    let codings: Vec<&str> = head
        .values("transfer-encoding")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    if let Some(last) = codings.last() {
        return Ok(if last.eq_ignore_ascii_case("chunked") {
            Framing::Chunked
        } else {
            Framing::Close
        });
    }
    let mut length = None;
    for value in head.values("content-length").flat_map(|v| v.split(',')) {
        let value = value.trim();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err("invalid Content-Length");
        }
        let n: u64 = value.parse().map_err(|_| "invalid Content-Length")?;
        if length.is_some_and(|l| l != n) {
            return Err("conflicting Content-Length values");
        }
        length = Some(n);
    }
    Ok(length.map_or(Framing::Close, Framing::Length))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(text: &str) -> Head {
        let mut buf = BytesMut::from(text.as_bytes());
        parse_final_head(&mut buf).unwrap().unwrap()
    }

    #[test]
    fn parses_head_and_leaves_the_body() {
        let text =
            b"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nX-Multi: a\r\nx-multi: b\r\n\r\nBODY";
        let mut buf = BytesMut::from(&text[..]);
        let head = parse_final_head(&mut buf).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-type"), Some("video/mp2t"));
        assert_eq!(head.header("X-MULTI"), Some("a"));
        assert_eq!(head.header("missing"), None);
        assert_eq!(&buf[..], b"BODY");
    }

    #[test]
    fn partial_heads_wait_for_more_at_every_split() {
        let text = b"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\nrest";
        let mut buf = BytesMut::new();
        let mut head = None;
        for &b in text {
            buf.extend_from_slice(&[b]);
            if head.is_none() {
                head = parse_final_head(&mut buf).unwrap();
            }
        }
        assert_eq!(head.unwrap().status, 404);
        assert_eq!(&buf[..], b"rest");
    }

    #[test]
    fn skips_interim_responses() {
        let text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
                    HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let mut buf = BytesMut::from(text.as_bytes());
        let head = parse_final_head(&mut buf).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.header("link"), None);
        assert_eq!(&buf[..], b"ok");

        // An interim head alone is consumed; the final one is still awaited.
        let mut buf = BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2"[..]);
        assert!(parse_final_head(&mut buf).unwrap().is_none());
        assert_eq!(&buf[..], b"HTTP/1.1 2");

        let mut buf = BytesMut::from(&b"HTTP/1.1 101 Switching Protocols\r\n\r\n"[..]);
        assert!(parse_final_head(&mut buf).is_err());
    }

    #[test]
    fn rejects_garbage_status_lines() {
        for text in [
            "garbage\r\n\r\n",
            "HTTP/1.1 abc OK\r\n\r\n",
            "HTTP/9 200 OK\r\n\r\n",
            "\x47\x00\x11\x10 TS packet",
            "ICY 200 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        ] {
            let mut buf = BytesMut::from(text.as_bytes());
            assert!(parse_final_head(&mut buf).is_err(), "{text:?}");
        }
    }

    #[test]
    fn rejects_oversized_heads() {
        let big = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(HEAD_LIMIT));
        let mut buf = BytesMut::from(big.as_bytes());
        let err = parse_final_head(&mut buf).unwrap_err();
        assert!(err.contains("larger than"), "{err}");
        // Also when the end of the head has not arrived yet.
        let mut buf = BytesMut::from(big.as_bytes().get(..HEAD_LIMIT + 1).unwrap());
        assert!(parse_final_head(&mut buf).is_err());
        // Too many headers.
        let many = format!(
            "HTTP/1.1 200 OK\r\n{}\r\n",
            "A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        let mut buf = BytesMut::from(many.as_bytes());
        assert!(parse_final_head(&mut buf).is_err());
    }

    #[test]
    fn decides_framing() {
        let f = |text: &str| framing(&head_of(text));
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n"),
            Ok(Framing::Length(42))
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\ncontent-length: 7\r\n\r\n"),
            Ok(Framing::Length(7))
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n"),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\ntransfer-encoding: Chunked\r\n\r\n"),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            Ok(Framing::Close)
        );
        assert_eq!(f("HTTP/1.1 200 OK\r\n\r\n"), Ok(Framing::Close));
        assert_eq!(
            f("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
            Ok(Framing::Empty)
        );
        assert_eq!(f("HTTP/1.1 304 Not Modified\r\n\r\n"), Ok(Framing::Empty));
        for bad in ["-1", "abc", "", "1 2", "99999999999999999999999", "+5"] {
            let text = format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\n");
            assert!(f(&text).is_err(), "{bad:?}");
        }
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err("conflicting Content-Length values")
        );
    }
}
