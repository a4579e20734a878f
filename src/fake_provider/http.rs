//! Minimal, defensive HTTP/1.1 over a plain or TLS socket: read one request, write one response.
//!
//! Every response says `Connection: close`; one request per connection is all a panel needs.
//! Hostile input gets 400/431 or a closed socket, never a panic.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use rustls::{ServerConnection, StreamOwned};

/// The request head may not exceed this.
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
/// A client must send its whole request head within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a graceful close waits for the client to finish sending and close its side.
const LINGER: Duration = Duration::from_secs(2);

/// A client connection, plain or TLS.
pub(super) enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Conn {
    /// The TCP socket underneath, for timeouts, addresses and shutdown.
    pub(super) fn sock(&self) -> &TcpStream {
        match self {
            Conn::Plain(sock) => sock,
            Conn::Tls(tls) => tls.get_ref(),
        }
    }

    pub(super) fn is_tls(&self) -> bool {
        matches!(self, Conn::Tls(_))
    }

    /// Ends a finished response: close_notify for TLS, then FIN, then drain what the client still
    /// sends (bounded) so that closing never resets the connection before the client read the answer.
    pub(super) fn close_gracefully(mut self) {
        if let Conn::Tls(tls) = &mut self {
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
        let sock = self.sock();
        if sock.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let deadline = Instant::now() + LINGER;
        let mut scratch = [0u8; 1024];
        let mut raw = sock;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if left.is_zero() || raw.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match raw.read(&mut scratch) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(sock) => sock.read(buf),
            Conn::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(sock) => sock.write(buf),
            Conn::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(sock) => sock.flush(),
            Conn::Tls(tls) => tls.flush(),
        }
    }
}

/// A parsed request head.
#[derive(Debug)]
pub(super) struct Request {
    pub method: String,
    /// The percent-encoded path, without the query.
    pub path: String,
    /// Percent-decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// `None` when the header is missing.
    pub user_agent: Option<String>,
    /// The `Referer` header, if sent.
    pub referrer: Option<String>,
}

impl Request {
    /// The first value of a query parameter.
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The percent-decoded path segments (`/live/u/p/1.ts` → `live`, `u`, `p`, `1.ts`).
    pub(super) fn segments(&self) -> Vec<String> {
        let path = self.path.strip_prefix('/').unwrap_or(&self.path);
        path.split('/').map(|s| decode(s, false)).collect()
    }
}

/// Why no request came.
#[derive(Debug)]
pub(super) enum ReadError {
    /// The client closed, timed out or broke the connection: nothing to answer.
    Gone,
    /// The request was malformed: answer with this status.
    Reject(u16),
}

/// Reads and parses one request head.
pub(super) fn read_request(conn: &mut Conn) -> Result<Request, ReadError> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let head_len = loop {
        // One deadline for the whole head, so a client dribbling bytes cannot hold the thread.
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or(ReadError::Gone)?;
        conn.sock()
            .set_read_timeout(Some(left))
            .map_err(|_| ReadError::Gone)?;
        let n = match conn.read(&mut chunk) {
            Ok(0) => return Err(ReadError::Gone),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Err(ReadError::Gone),
        };
        // Search only the new bytes (and the three before them) for the end of the head.
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            break from + end + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(ReadError::Reject(431));
        }
    };
    if head_len > MAX_HEAD {
        return Err(ReadError::Reject(431));
    }
    parse_head(&buf[..head_len])
}

fn parse_head(head: &[u8]) -> Result<Request, ReadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(ReadError::Reject(400)),
        Err(httparse::Error::TooManyHeaders) => return Err(ReadError::Reject(431)),
        Err(_) => return Err(ReadError::Reject(400)),
    }
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Err(ReadError::Reject(400));
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k, true), decode(v, true))
        })
        .collect();
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    Ok(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query,
        user_agent: header("user-agent"),
        referrer: header("referer"),
    })
}

/// Percent-decodes (and, in a query, turns `+` into a space); malformed escapes stay literal.
fn decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let hex_at = |i: usize| bytes.get(i).and_then(|&b| (b as char).to_digit(16));
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(hi), Some(lo)) = (hex_at(i + 1), hex_at(i + 2))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(if b == b'+' && plus_is_space { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

/// Writes a status line and headers (plus `Server` and `Connection: close`).
pub(super) fn write_head(conn: &mut Conn, status: u16, headers: &[(&str, &str)]) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\nServer: nginx\r\n", reason(status));
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    conn.write_all(head.as_bytes())?;
    conn.flush()
}

/// Writes a complete response with a Content-Length; `sent` limits how much of the body goes out
/// (a lying length, for faults).
pub(super) fn respond_partial(
    conn: &mut Conn,
    status: u16,
    content_type: &str,
    body: &[u8],
    sent: usize,
) -> io::Result<()> {
    let length = body.len().to_string();
    write_head(
        conn,
        status,
        &[("Content-Type", content_type), ("Content-Length", &length)],
    )?;
    conn.write_all(&body[..sent.min(body.len())])?;
    conn.flush()
}

/// Writes a complete response and closes the connection gracefully.
pub(super) fn respond(mut conn: Conn, status: u16, content_type: &str, body: &[u8]) {
    if respond_partial(&mut conn, status, content_type, body, body.len()).is_ok() {
        conn.close_gracefully();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(decode("a%20b+c", true), "a b c");
        assert_eq!(decode("a%20b+c", false), "a b+c");
        assert_eq!(decode("%zz%4", true), "%zz%4");
        assert_eq!(decode("100%", true), "100%");
        assert_eq!(decode("%C3%A9", true), "é");
        assert_eq!(decode("%FF", true), "\u{fffd}");
    }

    #[test]
    fn parses_query_and_user_agent() {
        let req = parse_head(
            b"GET /player_api.php?username=a%26b&password=p+w&&action HTTP/1.1\r\nuser-agent: VLC\r\n\r\n",
        )
        .unwrap();
        assert_eq!(req.path, "/player_api.php");
        assert_eq!(req.param("username"), Some("a&b"));
        assert_eq!(req.param("password"), Some("p w"));
        assert_eq!(req.param("action"), Some(""));
        assert_eq!(req.user_agent.as_deref(), Some("VLC"));
    }

    #[test]
    fn rejects_malformed_heads() {
        assert!(matches!(
            parse_head(b"\x00\x01\r\n\r\n"),
            Err(ReadError::Reject(400))
        ));
        let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
        let head = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert!(matches!(
            parse_head(head.as_bytes()),
            Err(ReadError::Reject(431))
        ));
    }
}
