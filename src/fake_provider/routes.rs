//! Request routing: the panel's endpoints (`player_api.php`, `xmltv.php`, `get.php`, static files, `/live/…`
//! and `/sauth/…`), its User-Agent filter, and where each fault strikes.

use std::io::Write;
use std::net::Shutdown;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::catalog::{self, ServerInfo};
use super::http::{self, Conn, ReadError, Request};
use super::live::live_clip;
use super::stream::{self, Body, Ended};
use super::tokens::Grant;
use super::{FakeAccount, FakeStream, Fault, Framing, RedirectStyle, Shared, lock};

/// What panels serve with `200` when something is wrong behind them.
const HTML_ERROR_PAGE: &[u8] =
    b"<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head>\
<body><h1>Account temporarily suspended</h1><p>Please contact your reseller.</p></body></html>\n";
/// A truncated, binary-prefixed body that is neither JSON nor XML.
const GARBAGE_BODY: &[u8] = b"\x1f\x8b\x08\x00\xff<br />\n<b>Warning</b>: mysqli_connect(): {\"user_info\":{\"auth\":1,\"status\":\"Act";

/// A TLS application-data record that no session key decrypts: what a corrupted or foreign TLS
/// stream looks like to the client (a plain HTTP client just sees bytes that are no response).
const CORRUPT_TLS_RECORD: &[u8] = &[
    0x17, 0x03, 0x03, 0x00, 0x20, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66,
    0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
    0xef, 0xfe, 0xdc, 0xba, 0x98,
];

/// Writes [`CORRUPT_TLS_RECORD`] under the TLS layer, straight to the socket, and closes.
fn corrupt_tls(conn: Conn) {
    let mut raw = conn.sock();
    let _ = raw.write_all(CORRUPT_TLS_RECORD);
    let _ = conn.sock().shutdown(Shutdown::Both);
}

/// Serves one connection: one request, one response.
pub(super) fn handle(mut conn: Conn, shared: &Shared) {
    let req = match http::read_request(&mut conn) {
        Ok(req) => req,
        Err(ReadError::Gone) => return,
        Err(ReadError::Reject(status)) => return error(conn, status),
    };
    shared.record_headers(req.user_agent.clone(), req.referrer.clone());
    match req.method.as_str() {
        "GET" => {}
        // Panels answer HEAD with 200 for anything: a HEAD probe proves nothing.
        "HEAD" => return http::respond(conn, 200, "text/html", b""),
        _ => return error(conn, 405),
    }
    if req
        .user_agent
        .as_deref()
        .is_none_or(|ua| ua.trim().is_empty())
    {
        return error(conn, 404);
    }
    if let Some(file) = shared.file(&req.path) {
        return http::respond(conn, 200, &file.content_type, &file.body);
    }
    let segments = req.segments();
    match segments
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["player_api.php"] => player_api(conn, shared, &req),
        ["xmltv.php"] => xmltv(conn, shared, &req),
        ["get.php"] => get_php(conn, shared, &req),
        ["sauth", token] => sauth(conn, shared, token),
        ["live", user, pass, id] | [user, pass, id] => live(conn, shared, user, pass, id),
        _ => error(conn, 404),
    }
}

/// An nginx-style error page with this status.
fn error(conn: Conn, status: u16) {
    let reason = http::reason(status);
    let page = format!(
        "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n\
         <center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    );
    http::respond(conn, status, "text/html", page.as_bytes());
}

/// Applies the faults that strike before any answer; `None` when the connection is done with.
fn before_answer(conn: Conn, fault: Option<Fault>) -> Option<Conn> {
    match fault {
        Some(Fault::Refuse) => {
            let _ = conn.sock().shutdown(Shutdown::Both);
            None
        }
        Some(Fault::SlowHeaders(delay)) => {
            let mut conn = conn;
            stream::wait_for_client(&mut conn, Some(Instant::now() + delay)).then_some(conn)
        }
        _ => Some(conn),
    }
}

/// Answers an API request with `body`, or with what `fault` makes of it.
fn answer(mut conn: Conn, fault: Option<Fault>, content_type: &str, body: &[u8]) {
    match fault {
        Some(Fault::Status(status)) => error(conn, status),
        Some(Fault::Html200) => http::respond(conn, 200, "text/html", HTML_ERROR_PAGE),
        Some(Fault::Garbage) => http::respond(conn, 200, content_type, GARBAGE_BODY),
        Some(Fault::TlsCorrupt) => corrupt_tls(conn),
        Some(Fault::StallAfter(n)) => {
            if http::respond_partial(&mut conn, 200, content_type, body, n).is_ok() {
                stream::wait_for_client(&mut conn, None);
            }
        }
        Some(Fault::DropAfter(n)) => {
            let _ = http::respond_partial(&mut conn, 200, content_type, body, n);
            let _ = conn.sock().shutdown(Shutdown::Both);
        }
        Some(Fault::Refuse | Fault::SlowHeaders(_)) | None => {
            http::respond(conn, 200, content_type, body);
        }
    }
}

fn player_api(conn: Conn, shared: &Shared, req: &Request) {
    let fault = lock(&shared.faults).take_api();
    let Some(conn) = before_answer(conn, fault) else {
        return;
    };
    let body = match shared.authenticate(req.param("username"), req.param("password")) {
        None => catalog::auth_failed_json(),
        Some(account) => match req.param("action").unwrap_or("") {
            "" => {
                let host = conn
                    .sock()
                    .local_addr()
                    .map(|a| a.ip().to_string())
                    .unwrap_or_default();
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let server = ServerInfo {
                    host: &host,
                    http_port: shared.http_port,
                    https_port: shared.https_port,
                    tls: conn.is_tls(),
                    now,
                };
                catalog::auth_json(account, shared.slots.active(&account.username), &server)
            }
            "get_live_categories" => catalog::categories_json(&shared.catalog().categories),
            "get_live_streams" => {
                let category = req.param("category_id").filter(|c| !c.is_empty());
                catalog::streams_json(&shared.catalog().streams, category)
            }
            _ => json!([]),
        },
    };
    let body = serde_json::to_vec(&body).unwrap_or_else(|_| b"[]".to_vec());
    answer(conn, fault, "application/json", &body);
}

fn xmltv(conn: Conn, shared: &Shared, req: &Request) {
    let fault = lock(&shared.faults).take_api();
    let Some(conn) = before_answer(conn, fault) else {
        return;
    };
    if shared
        .authenticate(req.param("username"), req.param("password"))
        .is_none()
    {
        return error(conn, 401);
    }
    match &shared.xmltv {
        Some(guide) => answer(conn, fault, "application/xml; charset=utf-8", guide),
        None => error(conn, 404),
    }
}

/// `get.php?username&password&type=m3u_plus`: the live streams as an extended M3U.
fn get_php(conn: Conn, shared: &Shared, req: &Request) {
    let fault = lock(&shared.faults).take_api();
    let Some(conn) = before_answer(conn, fault) else {
        return;
    };
    let Some(account) = shared.authenticate(req.param("username"), req.param("password")) else {
        return error(conn, 401);
    };
    let Ok(local) = conn.sock().local_addr() else {
        return;
    };
    let scheme = if conn.is_tls() { "https" } else { "http" };
    let body = catalog::m3u_playlist(
        &format!("{scheme}://{local}"),
        account,
        &shared.catalog().categories,
        &shared.catalog().streams,
    );
    answer(conn, fault, "audio/x-mpegurl", body.as_bytes());
}

/// `/live/U/P/<id>[.ts]` or `/U/P/<id>`: authenticate, then redirect to a single-use token URL
/// (or, without redirects, serve the stream here).
fn live(conn: Conn, shared: &Shared, user: &str, pass: &str, id: &str) {
    let Ok(stream_id) = id.strip_suffix(".ts").unwrap_or(id).parse::<u64>() else {
        return error(conn, 404);
    };
    shared.count_stream_request(stream_id);
    let fault = lock(&shared.faults).take_stream(stream_id);
    if let Some(fault) = fault {
        shared.record_fired(stream_id, fault, false);
    }
    let Some(mut conn) = before_answer(conn, fault) else {
        return;
    };
    let Some(account) = shared.authenticate(Some(user), Some(pass)) else {
        return error(conn, 401);
    };
    if account.status != "Active" {
        return error(conn, 403);
    }
    let Some(stream) = shared.stream(stream_id) else {
        return error(conn, 404);
    };
    // Refuse and SlowHeaders struck already; the rest strike the token response.
    let fault = fault.filter(|f| !matches!(f, Fault::Refuse | Fault::SlowHeaders(_)));
    let path = match shared.redirect {
        RedirectStyle::None => return serve_stream(conn, shared, &stream, account, fault),
        RedirectStyle::Absolute | RedirectStyle::Relative => {
            let token = lock(&shared.tokens).issue(Grant {
                stream_id,
                username: account.username.clone(),
                fault,
            });
            format!("/sauth/{token}")
        }
    };
    let location = match shared.redirect {
        RedirectStyle::Relative => path,
        _ => {
            let Ok(local) = conn.sock().local_addr() else {
                return;
            };
            let scheme = if conn.is_tls() { "https" } else { "http" };
            format!("{scheme}://{local}{path}")
        }
    };
    let headers = [("Location", location.as_str()), ("Content-Length", "0")];
    if http::write_head(&mut conn, 302, &headers).is_ok() {
        conn.close_gracefully();
    }
}

/// `/sauth/<token>`: the stream a token grants, once.
fn sauth(conn: Conn, shared: &Shared, token: &str) {
    let Some(grant) = lock(&shared.tokens).redeem(token) else {
        return error(conn, 403);
    };
    match (
        shared.stream(grant.stream_id),
        shared.accounts.get(&grant.username),
    ) {
        (Some(stream), Some(account)) => serve_stream(conn, shared, &stream, account, grant.fault),
        _ => error(conn, 404),
    }
}

/// Serves a stream body (or what `fault` makes of it), holding one of the account's slots while
/// the body flows; a fault struck while it flows ([`super::FakeProvider::strike_stream`]) ends it
/// the fault's way.
fn serve_stream(
    mut conn: Conn,
    shared: &Shared,
    stream: &FakeStream,
    account: &FakeAccount,
    fault: Option<Fault>,
) {
    let live = Body::Live(live_clip(&stream.variant));
    let (body, limit) = match fault {
        Some(Fault::Status(status)) => return error(conn, status),
        Some(Fault::Html200) => return http::respond(conn, 200, "text/html", HTML_ERROR_PAGE),
        Some(Fault::TlsCorrupt) => return corrupt_tls(conn),
        Some(Fault::Garbage) => (Body::Loop(stream::garbage()), None),
        Some(Fault::StallAfter(n) | Fault::DropAfter(n)) => (live, Some(n as u64)),
        Some(Fault::Refuse | Fault::SlowHeaders(_)) | None => (live, None),
    };
    let Ok(sock) = conn.sock().try_clone() else {
        return;
    };
    let _slot = shared
        .slots
        .acquire(&account.username, account.max_connections, sock);
    let mut headers = vec![
        ("Content-Type", "video/mp2t"),
        ("Access-Control-Allow-Origin", "*"),
    ];
    if stream.framing == Framing::Chunked {
        headers.push(("Transfer-Encoding", "chunked"));
    }
    if http::write_head(&mut conn, 200, &headers).is_err() {
        return;
    }
    let (body_id, strike) = lock(&shared.faults).open_body(stream.stream_id);
    let pace = stream::pace_of(&stream.variant, shared.bitrate_bps);
    let mut ended = stream::pump(&mut conn, body, pace, stream.framing, limit, &strike);
    if ended == Ended::LimitReached {
        *lock(&shared.stats)
            .faults_struck
            .entry(stream.stream_id)
            .or_default() += 1;
        ended = Ended::Struck(fault.unwrap_or(Fault::DropAfter(0)));
    }
    if let Ended::Struck(Fault::Garbage) = ended {
        // The body turns to garbage mid-stream until the client gives up on it.
        ended = stream::pump(
            &mut conn,
            Body::Loop(stream::garbage()),
            pace,
            stream.framing,
            None,
            &strike,
        );
    }
    lock(&shared.faults).close_body(body_id);
    match ended {
        Ended::Struck(Fault::StallAfter(_)) => {
            stream::wait_for_client(&mut conn, None);
        }
        Ended::Struck(Fault::TlsCorrupt) => return corrupt_tls(conn),
        _ => {}
    }
    // Never a clean end: a live body stops only by the client leaving, eviction, a fault or stop.
    let _ = conn.sock().shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn garbage_body_is_not_json() {
        assert!(serde_json::from_slice::<Value>(GARBAGE_BODY).is_err());
        assert!(!GARBAGE_BODY.starts_with(b"<?xml"));
    }
}
