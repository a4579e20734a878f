//! Requests, and the sans-IO parsing of a request head out of the bytes read so far.
//!
//! The parser never reads: the connection loop feeds it its buffer and acts on the outcome, so every
//! rule (limits, framing, keep-alive) is tested here without a socket.

use std::net::SocketAddr;

use bytes::Bytes;

/// Most header lines a request may carry; more is answered like an oversized head (431).
const MAX_HEADERS: usize = 64;

/// The methods we serve; any other is answered `405` by the server before reaching the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// One request, its body read in full (bodies are small: see `ServerConfig::max_body_bytes`).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// The target's path as sent (not percent-decoded), always starting with `/`; an absolute-form
    /// target (`http://host/path`) is reduced to its path.
    pub path: String,
    /// What followed the first `?`, if there was one.
    pub query: Option<String>,
    pub version: Version,
    /// In order, as sent; values that are not UTF-8 are decoded lossily.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub peer: SocketAddr,
    /// Which of our addresses the client reached: a LAN address the client can reach us on.
    pub local: SocketAddr,
}

impl Request {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// Whether the client allows another request on this connection: HTTP/1.1 unless it sent
    /// `Connection: close`, HTTP/1.0 only if it sent `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        keep_alive(self.version, &self.headers)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Whether any `Connection` header lists `token`.
fn connection_has(headers: &[(String, String)], token: &str) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn keep_alive(version: Version, headers: &[(String, String)]) -> bool {
    match version {
        Version::Http11 => !connection_has(headers, "close"),
        Version::Http10 => connection_has(headers, "keep-alive"),
    }
}

/// A parsed request head: everything but the body, which follows it in `body_len` bytes.
#[derive(Debug)]
pub struct Head {
    /// `None`: a well-formed request with a method we do not serve (405).
    pub method: Option<Method>,
    pub path: String,
    pub query: Option<String>,
    pub version: Version,
    pub headers: Vec<(String, String)>,
    /// Bytes of the head, up to and including the blank line.
    pub len: usize,
    pub body_len: usize,
    /// The client waits for `100 Continue` before sending the body.
    pub expect_continue: bool,
}

impl Head {
    pub fn keep_alive(&self) -> bool {
        keep_alive(self.version, &self.headers)
    }
}

/// Why a request is refused before the handler sees it; the connection is closed after the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// 400: not HTTP, or framing we cannot trust (conflicting lengths, a bad target).
    Malformed,
    /// 411: a body framed other than by Content-Length (chunked request bodies are not supported).
    LengthRequired,
    /// 413: a body over the limit.
    BodyTooLarge,
    /// 431: the head is over the limit or has too many lines.
    HeadTooLarge,
}

impl Reject {
    pub fn status(self) -> u16 {
        match self {
            Reject::Malformed => 400,
            Reject::LengthRequired => 411,
            Reject::BodyTooLarge => 413,
            Reject::HeadTooLarge => 431,
        }
    }
}

#[derive(Debug)]
pub enum Parse {
    /// The head is not complete yet and may still fit: read more.
    Partial,
    Complete(Head),
    Reject(Reject),
}

/// Parses the request head at the start of `buf`, which holds everything read and not yet consumed.
pub fn parse_head(buf: &[u8], max_head: usize, max_body: usize) -> Parse {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > max_head => {
            return Parse::Reject(Reject::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Parse::Partial,
        Err(httparse::Error::TooManyHeaders) => return Parse::Reject(Reject::HeadTooLarge),
        Err(_) => return Parse::Reject(Reject::Malformed),
    };
    if len > max_head {
        return Parse::Reject(Reject::HeadTooLarge);
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Parse::Reject(Reject::Malformed);
    };
    let version = if minor == 0 {
        Version::Http10
    } else {
        Version::Http11
    };
    let Some((path, query)) = split_target(target) else {
        return Parse::Reject(Reject::Malformed);
    };
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).trim().to_owned(),
            )
        })
        .collect();
    if headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
    {
        return Parse::Reject(Reject::LengthRequired);
    }
    let body_len = match content_length(&headers) {
        Ok(n) => n,
        Err(reject) => return Parse::Reject(reject),
    };
    if body_len > max_body {
        return Parse::Reject(Reject::BodyTooLarge);
    }
    let expect_continue = version == Version::Http11
        && header(&headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    let method = match method {
        "GET" => Some(Method::Get),
        "HEAD" => Some(Method::Head),
        "POST" => Some(Method::Post),
        _ => None,
    };
    Parse::Complete(Head {
        method,
        path,
        query,
        version,
        headers,
        len,
        body_len,
        expect_continue,
    })
}

/// The path and query of an origin-form (`/p?q`) or absolute-form (`http://h/p?q`) target.
fn split_target(target: &str) -> Option<(String, Option<String>)> {
    let origin = match absolute_rest(target) {
        Some(rest) => rest.find('/').map_or("/", |i| rest.get(i..).unwrap_or("/")),
        None => target,
    };
    if !origin.starts_with('/') {
        return None;
    }
    // A fragment is never meant for the server.
    let origin = origin.split('#').next().unwrap_or(origin);
    Some(match origin.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (origin.to_owned(), None),
    })
}

/// What follows `http://` or `https://` (any case) in `target`.
fn absolute_rest(target: &str) -> Option<&str> {
    ["http://", "https://"].iter().find_map(|scheme| {
        let head = target.get(..scheme.len())?;
        if head.eq_ignore_ascii_case(scheme) {
            target.get(scheme.len()..)
        } else {
            None
        }
    })
}

/// The body length: 0 without Content-Length; several values (in one header or many) must agree,
/// since disagreeing lengths are how requests get smuggled.
fn content_length(headers: &[(String, String)]) -> Result<usize, Reject> {
    let mut length = None;
    for value in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .flat_map(|(_, v)| v.split(','))
    {
        let value = value.trim();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Reject::Malformed);
        }
        // Only too many digits fail to parse here: a length past usize is over any limit.
        let n = value.parse::<usize>().map_err(|_| Reject::BodyTooLarge)?;
        if length.is_some_and(|l| l != n) {
            return Err(Reject::Malformed);
        }
        length = Some(n);
    }
    Ok(length.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::select;

    use super::*;
    use crate::http::tests::{mutated, runner};

    const MAX_HEAD: usize = 8192;
    const MAX_BODY: usize = 65536;

    fn parse(bytes: &[u8]) -> Parse {
        parse_head(bytes, MAX_HEAD, MAX_BODY)
    }

    fn complete(bytes: &[u8]) -> Head {
        match parse(bytes) {
            Parse::Complete(head) => head,
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    fn rejected(bytes: &[u8]) -> Reject {
        match parse(bytes) {
            Parse::Reject(r) => r,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn complete_get_with_query() {
        let raw = b"GET /lineup.json?show=found&x HTTP/1.1\r\nHost: tuner\r\nUser-Agent: t\r\n\r\n";
        let head = complete(raw);
        assert_eq!(head.method, Some(Method::Get));
        assert_eq!(head.path, "/lineup.json");
        assert_eq!(head.query.as_deref(), Some("show=found&x"));
        assert_eq!(head.version, Version::Http11);
        assert_eq!(head.len, raw.len());
        assert_eq!(head.body_len, 0);
        assert_eq!(header(&head.headers, "HOST"), Some("tuner"));
        assert!(head.keep_alive());
    }

    #[test]
    fn every_prefix_of_a_head_is_partial() {
        let raw = b"POST /lineup.post?scan=start HTTP/1.0\r\nContent-Length: 3\r\n\r\n";
        for end in 0..raw.len() {
            assert!(
                matches!(parse(&raw[..end]), Parse::Partial),
                "prefix of {end} bytes"
            );
        }
        let head = complete(raw);
        assert_eq!(head.method, Some(Method::Post));
        assert_eq!(head.body_len, 3);
        assert_eq!(head.version, Version::Http10);
    }

    #[test]
    fn oversized_heads_are_431() {
        let mut raw = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        raw.resize(MAX_HEAD + 1, b'a');
        assert_eq!(rejected(&raw), Reject::HeadTooLarge);
        // Complete, but one byte over.
        let mut raw = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        raw.resize(MAX_HEAD - 3, b'a');
        raw.extend_from_slice(b"\r\n\r\n");
        assert_eq!(raw.len(), MAX_HEAD + 1);
        assert_eq!(rejected(&raw), Reject::HeadTooLarge);
        // Exactly at the limit is fine.
        raw.truncate(MAX_HEAD - 4);
        raw.extend_from_slice(b"\r\n\r\n");
        assert_eq!(complete(&raw).len, MAX_HEAD);
    }

    #[test]
    fn too_many_headers_are_431() {
        let mut raw = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        assert_eq!(rejected(&raw), Reject::HeadTooLarge);
    }

    #[test]
    fn garbage_is_400() {
        for raw in [
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET /\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
            b"GET nopath HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n",
        ] {
            assert_eq!(rejected(raw), Reject::Malformed, "{raw:?}");
        }
    }

    #[test]
    fn framing_rules() {
        let same =
            complete(b"POST / HTTP/1.1\r\nContent-Length: 4, 4\r\nContent-Length: 4\r\n\r\n");
        assert_eq!(same.body_len, 4);
        assert_eq!(
            rejected(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Reject::LengthRequired
        );
        assert_eq!(
            rejected(b"POST / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n"),
            Reject::BodyTooLarge
        );
        assert_eq!(
            rejected(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
            Reject::BodyTooLarge
        );
        let expect =
            complete(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 65536\r\n\r\n");
        assert!(expect.expect_continue);
        assert_eq!(expect.body_len, MAX_BODY);
        let ten = complete(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n");
        assert!(!ten.expect_continue, "1.0 clients get no interim response");
    }

    #[test]
    fn unknown_methods_parse_for_a_405() {
        let head = complete(b"DELETE /x HTTP/1.1\r\n\r\n");
        assert_eq!(head.method, None);
        assert_eq!(
            complete(b"get / HTTP/1.1\r\n\r\n").method,
            None,
            "methods are case-sensitive"
        );
    }

    #[test]
    fn keep_alive_rules() {
        let cases: [(&[u8], bool); 7] = [
            (b"GET / HTTP/1.1\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false),
            (
                b"GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n",
                false,
            ),
            (b"GET / HTTP/1.0\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
            (
                b"GET / HTTP/1.0\r\nConnection: x\r\nConnection: keep-alive\r\n\r\n",
                true,
            ),
            (b"GET / HTTP/1.0\r\nKeep-Alive: 300\r\n\r\n", false),
        ];
        for (raw, expected) in cases {
            assert_eq!(complete(raw).keep_alive(), expected, "{raw:?}");
        }
    }

    #[test]
    fn targets() {
        let abs = complete(b"GET HTTP://tuner:5004/discover.json?a=b HTTP/1.1\r\n\r\n");
        assert_eq!(abs.path, "/discover.json");
        assert_eq!(abs.query.as_deref(), Some("a=b"));
        assert_eq!(complete(b"GET http://tuner HTTP/1.1\r\n\r\n").path, "/");
        let frag = complete(b"GET /a%20b?#frag HTTP/1.1\r\n\r\n");
        assert_eq!(frag.path, "/a%20b");
        assert_eq!(frag.query.as_deref(), Some(""));
        assert_eq!(rejected(b"OPTIONS * HTTP/1.1\r\n\r\n"), Reject::Malformed);
    }

    #[test]
    fn pipelined_requests_parse_one_after_the_other() {
        let raw =
            b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\nGET /c HT";
        let first = complete(raw);
        assert_eq!(first.path, "/a");
        let rest = &raw[first.len + first.body_len..];
        let second = complete(rest);
        assert_eq!(second.path, "/b");
        assert!(matches!(parse(&rest[second.len..]), Parse::Partial));
    }

    /// Checks what any outcome must satisfy, whatever the input.
    fn assert_sane(buf: &[u8], max_head: usize) {
        match parse_head(buf, max_head, MAX_BODY) {
            Parse::Partial => assert!(buf.len() <= max_head, "partial past the limit"),
            Parse::Complete(head) => {
                assert!(head.len <= buf.len() && head.len <= max_head);
                assert!(head.path.starts_with('/'), "path {:?}", head.path);
                assert!(!head.path.contains('?'));
                assert!(head.body_len <= MAX_BODY);
            }
            Parse::Reject(r) => assert!([400, 411, 413, 431].contains(&r.status())),
        }
    }

    #[test]
    fn fuzz_random_and_mutated_requests() {
        const SEEDS: &[&[u8]] = &[
            b"GET /lineup.json HTTP/1.1\r\nHost: a\r\n\r\n",
            b"HEAD /discover.json?x=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            b"POST /lineup.post?scan=start HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nok",
            b"GET http://h/auto/v1 HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\nx",
            b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ];
        const ALPHABET: &[u8] = b"GET POST/?:\r\n HTTP/1.01Content-Length,chunked\x00\xff\t%#";
        // A third random bytes, the rest from the alphabet.
        let byte = (
            proptest::bool::weighted(1.0 / 3.0),
            any::<u8>(),
            select(ALPHABET),
        )
            .prop_map(|(random, byte, token)| if random { byte } else { token });
        let input = (
            select(&[64, 256, 8192][..]),
            prop_oneof![1 => vec(byte, 0..300), 3 => mutated(SEEDS, ALPHABET, 4)],
        );
        let outcomes = [Cell::new(0usize), Cell::new(0), Cell::new(0)];
        runner(10_000)
            .run(&input, |(max_head, buf)| {
                assert_sane(&buf, max_head);
                let outcome = &outcomes[match parse_head(&buf, max_head, MAX_BODY) {
                    Parse::Partial => 0,
                    Parse::Complete(_) => 1,
                    Parse::Reject(_) => 2,
                }];
                outcome.set(outcome.get() + 1);
                Ok(())
            })
            .unwrap();
        // The mutations must exercise every outcome, or the test proves little.
        let outcomes = outcomes.map(Cell::into_inner);
        assert!(outcomes.iter().all(|&n| n > 100), "outcomes {outcomes:?}");
    }
}
