//! End-to-end tests of the fake panel with plain std::net (and rustls) clients. Every wait is
//! bounded by a socket timeout or a deadline; nothing sleeps to synchronise.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::*;

const UA: &str = "StreamForge-test/1.0";
const IO_TIMEOUT: Duration = Duration::from_secs(5);

fn options() -> ProviderOptions {
    let (categories, streams) = demo_catalog();
    ProviderOptions {
        accounts: vec![
            FakeAccount::new("alice", "secret", 2),
            FakeAccount::new("solo", "pw", 1),
            FakeAccount {
                status: "Expired".to_owned(),
                exp_date: Some(1_550_619_710),
                ..FakeAccount::new("old", "pw", 1)
            },
            FakeAccount::new("we ird&user", "p/w+x", 1),
        ],
        categories,
        streams,
        // Fast enough that tests read a lot quickly, paced all the same.
        bitrate_bps: 40_000_000,
        ..ProviderOptions::default()
    }
}

fn start() -> FakeProvider {
    FakeProvider::start(options()).expect("provider starts")
}

/// A response head and whatever body bytes arrived with it.
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
    rest: Vec<u8>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let sock = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    sock.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    sock
}

fn send_get(stream: &mut impl Write, path: &str, ua: Option<&str>) {
    let ua = ua.map_or(String::new(), |ua| format!("User-Agent: {ua}\r\n"));
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{ua}\r\n");
    stream.write_all(req.as_bytes()).unwrap();
}

/// Reads a response head; `None` if the server closed without answering.
fn read_head(stream: &mut impl Read) -> Option<Head> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("reading head: {e}"),
        }
    };
    let text = String::from_utf8(buf[..end].to_vec()).unwrap();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    Some(Head {
        status,
        headers,
        rest: buf[end + 4..].to_vec(),
    })
}

/// Reads until EOF (bounded by the socket timeout).
fn read_to_end(stream: &mut impl Read, mut body: Vec<u8>) -> Vec<u8> {
    let mut chunk = [0u8; 16384];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return body,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return body,
            Err(e) => panic!("reading body: {e}"),
        }
    }
}

/// Reads exactly `n` body bytes after what came with the head.
fn read_n(stream: &mut impl Read, mut body: Vec<u8>, n: usize) -> Vec<u8> {
    let have = body.len().min(n);
    let mut rest = vec![0u8; n - have];
    stream.read_exact(&mut rest).expect("body bytes");
    body.truncate(have);
    body.extend_from_slice(&rest);
    body
}

fn get(addr: SocketAddr, path: &str, ua: Option<&str>) -> (Head, Vec<u8>) {
    let mut sock = connect(addr);
    send_get(&mut sock, path, ua);
    let mut head = read_head(&mut sock).expect("a response");
    let body = read_to_end(&mut sock, std::mem::take(&mut head.rest));
    (head, body)
}

fn get_json(p: &FakeProvider, query: &str) -> Value {
    let (head, body) = get(p.http_addr(), &format!("/player_api.php?{query}"), Some(UA));
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("application/json"));
    serde_json::from_slice(&body).expect("valid JSON")
}

/// Follows `/live/…` to its token URL; returns the token path.
fn live_redirect(p: &FakeProvider, user: &str, pass: &str, id: u64) -> String {
    let (head, _) = get(
        p.http_addr(),
        &format!("/live/{user}/{pass}/{id}.ts"),
        Some(UA),
    );
    assert_eq!(head.status, 302);
    let location = head.header("location").expect("Location").to_owned();
    let prefix = format!("{}/sauth/", p.http_url());
    assert!(location.starts_with(&prefix), "{location}");
    location[p.http_url().len()..].to_owned()
}

/// Opens a stream through the redirect; returns the socket and the token response head.
fn open_stream(p: &FakeProvider, user: &str, pass: &str, id: u64) -> (TcpStream, Head) {
    let path = live_redirect(p, user, pass, id);
    let mut sock = connect(p.http_addr());
    send_get(&mut sock, &path, Some(UA));
    let head = read_head(&mut sock).expect("token response");
    (sock, head)
}

/// Asserts the connection ends (EOF or reset) within the socket timeout.
fn assert_ends(sock: &mut TcpStream) {
    let mut chunk = [0u8; 65536];
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        assert!(Instant::now() < deadline, "connection did not end");
        match sock.read(&mut chunk) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) => panic!("connection did not end: {e}"),
        }
    }
}

/// Asserts nothing arrives (and the connection stays open) for `quiet`.
fn assert_silent(sock: &mut TcpStream, quiet: Duration) {
    sock.set_read_timeout(Some(quiet)).unwrap();
    let mut byte = [0u8; 1];
    match sock.read(&mut byte) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("expected silence, got {other:?}"),
    }
    sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
}

fn stream_start(len: usize) -> Vec<u8> {
    FakeProvider::stream_bytes(&StreamVariant::default(), 0, len)
}

#[test]
fn auth_ok_has_real_panel_types() {
    let p = start();
    let v = get_json(&p, "username=alice&password=secret");
    let user = &v["user_info"];
    assert_eq!(user["auth"], 1);
    assert_eq!(user["username"], "alice");
    assert_eq!(user["status"], "Active");
    assert_eq!(user["max_connections"], "2");
    assert_eq!(user["is_trial"], "0");
    assert_eq!(user["active_cons"], "0");
    assert!(user["exp_date"].is_null());
    assert_eq!(user["allowed_output_formats"][1], "ts");
    let server = &v["server_info"];
    assert_eq!(server["port"], p.http_addr().port().to_string());
    assert_eq!(server["https_port"], p.https_addr().port().to_string());
    assert!(server["timestamp_now"].is_u64());
    assert_eq!(server["time_now"].as_str().unwrap().len(), 19);

    let v = get_json(&p, "username=old&password=pw");
    assert_eq!(v["user_info"]["status"], "Expired");
    assert_eq!(v["user_info"]["exp_date"], "1550619710");
    assert_eq!(p.last_user_agent().as_deref(), Some(UA));
}

#[test]
fn bad_credentials_get_auth_0_with_200() {
    let p = start();
    for query in [
        "username=alice&password=wrong",
        "username=nobody&password=x",
        "",
    ] {
        let v = get_json(&p, query);
        assert_eq!(v, serde_json::json!({"user_info": {"auth": 0}}), "{query}");
    }
    let v = get_json(&p, "username=alice&password=wrong&action=get_live_streams");
    assert_eq!(v["user_info"]["auth"], 0);
}

#[test]
fn query_parameters_are_percent_decoded() {
    let p = start();
    let v = get_json(&p, "username=we%20ird%26user&password=p%2Fw%2Bx");
    assert_eq!(v["user_info"]["auth"], 1);
    assert_eq!(v["user_info"]["username"], "we ird&user");
}

#[test]
fn categories_and_streams_mix_types() {
    let p = start();
    let cats = get_json(
        &p,
        "username=alice&password=secret&action=get_live_categories",
    );
    let cats = cats.as_array().unwrap();
    assert_eq!(cats.len(), 3);
    assert_eq!(cats[0]["category_id"], "1");
    assert_eq!(cats[0]["parent_id"], 0);

    let streams = get_json(&p, "username=alice&password=secret&action=get_live_streams");
    let streams = streams.as_array().unwrap();
    assert_eq!(streams.len(), 5);
    assert!(streams.iter().any(|s| s["stream_id"].is_u64()));
    assert_eq!(streams[1]["stream_id"], "102");
    assert_eq!(streams[0]["stream_id"], 101);
    for (i, s) in streams.iter().enumerate() {
        assert_eq!(s["num"], i + 1);
        assert!(s["category_id"].is_string());
        assert!(s["category_ids"][0].is_u64());
        assert!(s["added"].is_string());
        assert_eq!(s["tv_archive"], 0);
        assert_eq!(s["direct_source"], "");
        assert_eq!(s["stream_type"], "live");
        assert!(s["stream_icon"].is_string());
    }
    assert!(streams.iter().any(|s| s["epg_channel_id"].is_null()));
    assert!(streams.iter().any(|s| s["epg_channel_id"].is_string()));
    assert!(streams.iter().any(|s| s["custom_sid"].is_null()));
    assert!(streams.iter().any(|s| s["custom_sid"] == ""));

    let one = get_json(
        &p,
        "username=alice&password=secret&action=get_live_streams&category_id=2",
    );
    let one = one.as_array().unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["name"], "UK: SF News HD");

    let unknown = get_json(&p, "username=alice&password=secret&action=get_vod_streams");
    assert_eq!(unknown, serde_json::json!([]));
}

#[test]
fn hostile_names_are_escaped() {
    let (categories, streams) = generated_catalog(500);
    let p = FakeProvider::start(ProviderOptions {
        categories,
        streams: streams.clone(),
        ..options()
    })
    .unwrap();
    let got = get_json(&p, "username=alice&password=secret&action=get_live_streams");
    let names: Vec<&str> = got
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = streams.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, want);
}

#[test]
fn missing_or_empty_user_agent_gets_404() {
    let p = start();
    let (head, _) = get(
        p.http_addr(),
        "/player_api.php?username=alice&password=secret",
        None,
    );
    assert_eq!(head.status, 404);
    assert_eq!(p.last_user_agent(), None);
    let (head, _) = get(p.http_addr(), "/live/alice/secret/101.ts", Some(" "));
    assert_eq!(head.status, 404);
    assert_eq!(p.last_user_agent().as_deref(), Some(""));
    assert_eq!(p.stream_requests(101), 0);
}

#[test]
fn xmltv_and_static_files() {
    let guide = b"<?xml version=\"1.0\"?><tv></tv>".to_vec();
    let p = FakeProvider::start(ProviderOptions {
        xmltv: Some(guide.clone()),
        ..options()
    })
    .unwrap();
    let (head, body) = get(
        p.http_addr(),
        "/xmltv.php?username=alice&password=secret",
        Some(UA),
    );
    assert_eq!(head.status, 200);
    assert_eq!(body, guide);
    let (head, _) = get(
        p.http_addr(),
        "/xmltv.php?username=alice&password=bad",
        Some(UA),
    );
    assert_eq!(head.status, 401);

    let (head, _) = get(
        start().http_addr(),
        "/xmltv.php?username=alice&password=secret",
        Some(UA),
    );
    assert_eq!(head.status, 404);

    p.add_file("epg/guide.xml", b"<tv/>".to_vec(), "text/xml");
    let (head, body) = get(p.http_addr(), "/epg/guide.xml", Some(UA));
    assert_eq!((head.status, body.as_slice()), (200, b"<tv/>".as_slice()));
    assert_eq!(head.header("content-type"), Some("text/xml"));
    let (head, _) = get(p.http_addr(), "/nothing/here", Some(UA));
    assert_eq!(head.status, 404);
}

#[test]
fn live_redirects_to_a_token_that_streams_the_clip() {
    let p = start();
    let (mut sock, head) = open_stream(&p, "alice", "secret", 101);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("video/mp2t"));
    assert_eq!(head.header("connection"), Some("close"));
    assert_eq!(head.header("content-length"), None);
    assert_eq!(head.header("transfer-encoding"), None);
    let clip = FakeProvider::clip();
    let n = clip.len() + 188 * 100;
    let body = read_n(&mut sock, head.rest, n);
    assert_eq!(body[0], 0x47);
    assert!(body == stream_start(n), "body is not the stream");
    assert_eq!(p.stream_requests(101), 1);
    assert_eq!(p.active_connections("alice"), 1);
    drop(sock);
    assert!(p.wait_active_connections("alice", 0, IO_TIMEOUT));
    assert_eq!(p.peak_connections("alice"), 1);
    assert_eq!(p.evictions("alice"), 0);
}

#[test]
fn live_url_variants_and_errors() {
    let p = start();
    for path in [
        "/live/alice/secret/102",
        "/alice/secret/102",
        "/alice/secret/102.ts",
    ] {
        let (head, _) = get(p.http_addr(), path, Some(UA));
        assert_eq!(head.status, 302, "{path}");
    }
    assert_eq!(p.stream_requests(102), 3);
    let cases = [
        ("/live/alice/wrong/101.ts", 401),
        ("/live/nobody/x/101.ts", 401),
        ("/live/old/pw/101.ts", 403),
        ("/live/alice/secret/999.ts", 404),
        ("/live/alice/secret/abc.ts", 404),
        ("/live/alice/secret/101.m3u8", 404),
        ("/sauth/deadbeef", 403),
    ];
    for (path, status) in cases {
        let (head, _) = get(p.http_addr(), path, Some(UA));
        assert_eq!(head.status, status, "{path}");
    }
}

#[test]
fn token_is_single_use() {
    let p = start();
    let path = live_redirect(&p, "alice", "secret", 101);
    let mut sock = connect(p.http_addr());
    send_get(&mut sock, &path, Some(UA));
    assert_eq!(read_head(&mut sock).unwrap().status, 200);
    let (head, _) = get(p.http_addr(), &path, Some(UA));
    assert_eq!(head.status, 403);
}

#[test]
fn relative_and_no_redirect() {
    let p = FakeProvider::start(ProviderOptions {
        redirect: RedirectStyle::Relative,
        ..options()
    })
    .unwrap();
    let (head, _) = get(p.http_addr(), "/live/alice/secret/101.ts", Some(UA));
    assert_eq!(head.status, 302);
    assert!(head.header("location").unwrap().starts_with("/sauth/"));

    let p = FakeProvider::start(ProviderOptions {
        redirect: RedirectStyle::None,
        ..options()
    })
    .unwrap();
    let mut sock = connect(p.http_addr());
    send_get(&mut sock, "/live/alice/secret/101.ts", Some(UA));
    let head = read_head(&mut sock).unwrap();
    assert_eq!(head.status, 200);
    let body = read_n(&mut sock, head.rest, 188 * 10);
    assert_eq!(body, stream_start(188 * 10));
}

/// Decodes chunked framing from `sock` until `n` payload bytes are in.
fn read_chunked(sock: &mut TcpStream, rest: Vec<u8>, n: usize) -> Vec<u8> {
    let mut raw = rest;
    let mut payload = Vec::new();
    let mut pos = 0;
    let mut chunk = [0u8; 16384];
    while payload.len() < n {
        let parsed = raw[pos..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .and_then(|line_end| {
                let size_line = std::str::from_utf8(&raw[pos..pos + line_end]).unwrap();
                let size = usize::from_str_radix(size_line, 16).expect("hex chunk size");
                let start = pos + line_end + 2;
                (raw.len() >= start + size + 2).then_some((start, size))
            });
        match parsed {
            Some((start, size)) => {
                assert!(size > 0, "a live stream never ends its chunks");
                assert_eq!(&raw[start + size..start + size + 2], b"\r\n");
                payload.extend_from_slice(&raw[start..start + size]);
                pos = start + size + 2;
            }
            None => {
                let got = sock.read(&mut chunk).expect("chunked body");
                assert!(got > 0, "EOF inside chunked body");
                raw.extend_from_slice(&chunk[..got]);
            }
        }
    }
    payload
}

#[test]
fn chunked_framing_decodes_to_the_clip() {
    let p = start();
    let (mut sock, head) = open_stream(&p, "alice", "secret", 301);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    let n = FakeProvider::clip().len() + 5000;
    let payload = read_chunked(&mut sock, head.rest, n);
    assert!(payload[..n] == stream_start(n), "payload is not the stream");
}

#[test]
fn pacing_holds_the_bitrate() {
    // 100 kB/s: 50 kB cannot arrive before ~0.49 s (each tick sends what is due by the next).
    let p = FakeProvider::start(ProviderOptions {
        bitrate_bps: 800_000,
        ..options()
    })
    .unwrap();
    let (mut sock, head) = open_stream(&p, "alice", "secret", 101);
    let started = Instant::now();
    read_n(&mut sock, head.rest, 50_000);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(450),
        "too fast: {elapsed:?}"
    );
    // Only a hang guard (each read is bounded by IO_TIMEOUT too): a loaded machine is slow.
    assert!(elapsed < Duration::from_secs(60), "stalled: {elapsed:?}");
}

#[test]
fn over_max_connections_evicts_the_oldest() {
    let p = start();
    let (mut first, head) = open_stream(&p, "solo", "pw", 101);
    read_n(&mut first, head.rest, 10_000);
    assert_eq!(p.active_connections("solo"), 1);
    let (mut second, head) = open_stream(&p, "solo", "pw", 102);
    assert_eq!(head.status, 200);
    read_n(&mut second, head.rest, 10_000);
    assert_ends(&mut first);
    assert_eq!(p.active_connections("solo"), 1);
    assert_eq!(p.peak_connections("solo"), 1);
    assert_eq!(p.evictions("solo"), 1);
    // The survivor keeps streaming.
    read_n(&mut second, Vec::new(), 100_000);
    drop(second);
    assert!(p.wait_active_connections("solo", 0, IO_TIMEOUT));
    // A client that left is not evicted again.
    let (_third, head) = open_stream(&p, "solo", "pw", 101);
    assert_eq!(head.status, 200);
    assert_eq!(p.evictions("solo"), 1);
}

#[test]
fn two_connections_fit_under_a_limit_of_two() {
    let p = start();
    let (_a, _) = open_stream(&p, "alice", "secret", 101);
    let (_b, _) = open_stream(&p, "alice", "secret", 201);
    assert!(p.wait_active_connections("alice", 2, IO_TIMEOUT));
    let v = get_json(&p, "username=alice&password=secret");
    assert_eq!(v["user_info"]["active_cons"], "2");
    assert_eq!(p.evictions("alice"), 0);
    assert_eq!(p.peak_connections("alice"), 2);
}

#[test]
fn fault_refuse_closes_without_answer_then_clears() {
    let p = start();
    p.set_stream_fault(101, Fault::Refuse, Some(1));
    let mut sock = connect(p.http_addr());
    send_get(&mut sock, "/live/alice/secret/101.ts", Some(UA));
    assert!(read_head(&mut sock).is_none());
    let (head, _) = get(p.http_addr(), "/live/alice/secret/101.ts", Some(UA));
    assert_eq!(head.status, 302);
    assert_eq!(p.stream_requests(101), 2);
}

#[test]
fn fault_status_after_redirect_counts_down() {
    let p = start();
    p.set_stream_fault(101, Fault::Status(503), Some(2));
    for _ in 0..2 {
        let (_, head) = open_stream(&p, "alice", "secret", 101);
        assert_eq!(head.status, 503);
    }
    let (_, head) = open_stream(&p, "alice", "secret", 101);
    assert_eq!(head.status, 200);
    assert_eq!(p.peak_connections("alice"), 1);
}

#[test]
fn fault_until_cleared() {
    let p = start();
    p.set_stream_fault(101, Fault::Status(404), None);
    for _ in 0..3 {
        assert_eq!(open_stream(&p, "alice", "secret", 101).1.status, 404);
    }
    assert_eq!(open_stream(&p, "alice", "secret", 102).1.status, 200);
    p.clear_faults();
    assert_eq!(open_stream(&p, "alice", "secret", 101).1.status, 200);
}

#[test]
fn fault_html200() {
    let p = start();
    p.set_stream_fault(101, Fault::Html200, Some(1));
    let (mut sock, head) = open_stream(&p, "alice", "secret", 101);
    assert_eq!(head.status, 200);
    assert!(
        head.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let body = read_to_end(&mut sock, head.rest);
    assert!(body.starts_with(b"<!DOCTYPE html>"));
}

#[test]
fn fault_garbage_stream_is_not_ts() {
    let p = start();
    p.set_stream_fault(101, Fault::Garbage, Some(1));
    let (mut sock, head) = open_stream(&p, "alice", "secret", 101);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("video/mp2t"));
    let body = read_n(&mut sock, head.rest, 188 * 200);
    assert!(!body.contains(&0x47));
}

#[test]
fn fault_drop_after() {
    let p = start();
    p.set_stream_fault(101, Fault::DropAfter(5000), Some(1));
    let (mut sock, head) = open_stream(&p, "alice", "secret", 101);
    assert_eq!(head.status, 200);
    let body = read_to_end(&mut sock, head.rest);
    assert_eq!(body, stream_start(5000));
    assert!(p.wait_active_connections("alice", 0, IO_TIMEOUT));
}

#[test]
fn fault_stall_after_holds_until_client_leaves() {
    let p = start();
    p.set_stream_fault(101, Fault::StallAfter(1880), Some(1));
    let (mut sock, head) = open_stream(&p, "alice", "secret", 101);
    let body = read_n(&mut sock, head.rest, 1880);
    assert_eq!(body, stream_start(1880));
    assert_silent(&mut sock, Duration::from_millis(300));
    assert_eq!(p.active_connections("alice"), 1);
    drop(sock);
    assert!(p.wait_active_connections("alice", 0, IO_TIMEOUT));
}

#[test]
fn fault_slow_headers_delays_the_redirect() {
    let p = start();
    p.set_stream_fault(101, Fault::SlowHeaders(Duration::from_millis(400)), Some(1));
    let started = Instant::now();
    let (head, _) = get(p.http_addr(), "/live/alice/secret/101.ts", Some(UA));
    assert_eq!(head.status, 302);
    assert!(started.elapsed() >= Duration::from_millis(400));
    // The token response is never delayed: with an hour's delay armed, the delayed redirect's
    // token is answered within the socket timeout, while a new `/live/…` request is held.
    let location = head.header("location").expect("Location");
    let token = location.strip_prefix(&p.http_url()).expect("our URL");
    p.set_stream_fault(101, Fault::SlowHeaders(Duration::from_secs(3600)), None);
    let mut sock = connect(p.http_addr());
    send_get(&mut sock, token, Some(UA));
    assert_eq!(read_head(&mut sock).expect("token response").status, 200);
    let mut held = connect(p.http_addr());
    send_get(&mut held, "/live/alice/secret/101.ts", Some(UA));
    assert_silent(&mut held, Duration::from_millis(300));
    // Hanging up ends the delay.
    drop(held);
    p.clear_faults();
}

#[test]
fn api_faults() {
    let p = start();
    let auth = "/player_api.php?username=alice&password=secret";
    p.set_api_fault(Fault::Status(500), Some(1));
    assert_eq!(get(p.http_addr(), auth, Some(UA)).0.status, 500);
    assert_eq!(
        get_json(&p, "username=alice&password=secret")["user_info"]["auth"],
        1
    );

    p.set_api_fault(Fault::Garbage, Some(1));
    let (head, body) = get(p.http_addr(), auth, Some(UA));
    assert_eq!(head.status, 200);
    assert!(serde_json::from_slice::<Value>(&body).is_err());

    p.set_api_fault(Fault::Html200, Some(1));
    let (head, _) = get(p.http_addr(), auth, Some(UA));
    assert_eq!(head.header("content-type"), Some("text/html"));

    p.set_api_fault(Fault::Refuse, Some(1));
    let mut sock = connect(p.http_addr());
    send_get(&mut sock, auth, Some(UA));
    assert!(read_head(&mut sock).is_none());

    p.set_api_fault(Fault::DropAfter(10), Some(1));
    let (head, body) = get(p.http_addr(), auth, Some(UA));
    let length: usize = head.header("content-length").unwrap().parse().unwrap();
    assert_eq!(body.len(), 10);
    assert!(length > 10);

    p.set_api_fault(Fault::StallAfter(10), Some(1));
    let mut sock = connect(p.http_addr());
    send_get(&mut sock, auth, Some(UA));
    let head = read_head(&mut sock).unwrap();
    read_n(&mut sock, head.rest, 10);
    assert_silent(&mut sock, Duration::from_millis(200));

    p.set_api_fault(Fault::SlowHeaders(Duration::from_millis(300)), Some(1));
    let started = Instant::now();
    assert_eq!(
        get_json(&p, "username=alice&password=secret")["user_info"]["auth"],
        1
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn hostile_requests_get_errors_not_panics() {
    let p = start();
    let mut sock = connect(p.http_addr());
    let huge = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(20_000));
    let _ = sock.write_all(huge.as_bytes());
    assert_eq!(read_head(&mut sock).unwrap().status, 431);

    let mut sock = connect(p.http_addr());
    sock.write_all(b"\x16\x03\x01garbage\r\n\r\n").unwrap();
    assert_eq!(read_head(&mut sock).unwrap().status, 400);

    let mut sock = connect(p.http_addr());
    sock.write_all(b"POST /player_api.php HTTP/1.1\r\nUser-Agent: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_head(&mut sock).unwrap().status, 405);

    let mut sock = connect(p.http_addr());
    sock.write_all(b"HEAD /anything HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_head(&mut sock).unwrap().status, 200);

    // Still serving.
    assert_eq!(
        get_json(&p, "username=alice&password=secret")["user_info"]["auth"],
        1
    );
}

fn tls_client(
    p: &FakeProvider,
    server_name: &str,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(p.ca_pem().as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    rustls::StreamOwned::new(conn, connect(p.https_addr()))
}

#[test]
fn https_is_verified_against_the_ca() {
    let p = start();
    assert!(p.https_url().starts_with("https://127.0.0.1:"));
    for name in ["localhost", "127.0.0.1"] {
        let mut tls = tls_client(&p, name);
        send_get(
            &mut tls,
            "/player_api.php?username=alice&password=secret",
            Some(UA),
        );
        let mut head = read_head(&mut tls).expect("TLS response");
        assert_eq!(head.status, 200);
        let body = read_to_end(&mut tls, std::mem::take(&mut head.rest));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["user_info"]["auth"], 1);
        assert_eq!(v["server_info"]["server_protocol"], "https");
    }

    // A stream over TLS: the redirect stays on https, the body is the clip.
    let mut tls = tls_client(&p, "localhost");
    send_get(&mut tls, "/live/alice/secret/101.ts", Some(UA));
    let head = read_head(&mut tls).unwrap();
    assert_eq!(head.status, 302);
    let location = head.header("location").unwrap();
    assert!(
        location.starts_with(&format!("{}/sauth/", p.https_url())),
        "{location}"
    );
    let path = &location[p.https_url().len()..];
    let mut tls = tls_client(&p, "localhost");
    send_get(&mut tls, path, Some(UA));
    let head = read_head(&mut tls).unwrap();
    assert_eq!(head.status, 200);
    let body = read_n(&mut tls, head.rest, 50_000);
    assert_eq!(body, stream_start(50_000));

    // Not trusted by a client without the CA.
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, connect(p.https_addr()));
    let mut byte = [0u8; 1];
    let refused = tls
        .write_all(b"GET / HTTP/1.1\r\n\r\n")
        .and_then(|()| tls.read(&mut byte));
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("UnknownIssuer")),
        "{refused:?}"
    );
}

#[test]
fn binds_ipv6_loopback() {
    let opts = ProviderOptions {
        bind: IpAddr::V6(Ipv6Addr::LOCALHOST),
        ..options()
    };
    let p = match FakeProvider::start(opts) {
        Ok(p) => p,
        // No IPv6 in this sandbox: nothing to test.
        Err(e) if e.kind() == ErrorKind::AddrNotAvailable => return,
        Err(e) => panic!("{e}"),
    };
    assert!(p.http_url().starts_with("http://[::1]:"));
    let path = live_redirect(&p, "alice", "secret", 101);
    let mut sock = connect(p.http_addr());
    send_get(&mut sock, &path, Some(UA));
    let head = read_head(&mut sock).unwrap();
    assert_eq!(read_n(&mut sock, head.rest, 188)[0], 0x47);
}

#[test]
fn stop_is_prompt_with_connections_open() {
    let p = start();
    let (mut streaming, head) = open_stream(&p, "alice", "secret", 101);
    read_n(&mut streaming, head.rest, 1000);
    p.set_stream_fault(102, Fault::StallAfter(188), None);
    let (mut stalled, head) = open_stream(&p, "alice", "secret", 102);
    read_n(&mut stalled, head.rest, 188);
    let mut half_request = connect(p.http_addr());
    half_request
        .write_all(b"GET /player_api.php HTTP/1.1\r\n")
        .unwrap();
    let mut tls_handshaking = connect(p.https_addr());
    p.set_api_fault(Fault::SlowHeaders(Duration::from_secs(60)), None);
    let mut slow = connect(p.http_addr());
    send_get(&mut slow, "/player_api.php", Some(UA));

    // Stop on another thread so that a hang fails the test instead of hanging it.
    let p = Arc::new(p);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let stopper = p.clone();
    std::thread::spawn(move || {
        stopper.stop();
        let _ = done_tx.send(());
    });
    assert!(
        done_rx.recv_timeout(Duration::from_secs(2)).is_ok(),
        "stop did not finish within 2 s"
    );
    for sock in [
        &mut streaming,
        &mut stalled,
        &mut half_request,
        &mut tls_handshaking,
        &mut slow,
    ] {
        assert_ends(sock);
    }
    assert!(TcpStream::connect_timeout(&p.http_addr(), IO_TIMEOUT).is_err());
    p.stop();
}

#[test]
fn another_clip_is_paced_in_proportion_to_its_own_bit_rate() {
    let main = StreamVariant::default();
    let other = StreamVariant {
        clip: ClipKind::OtherEncoder,
        ..StreamVariant::default()
    };
    let real_time = clip_bitrate_bps();
    assert_eq!(stream::pace_of(&main, real_time), real_time);
    let own = live::live_clip(&other).bitrate_bps();
    assert!(own < real_time * 9 / 10, "a lighter recording: {own} bit/s");
    assert_eq!(stream::pace_of(&other, real_time), own);
    assert_eq!(stream::pace_of(&other, 2 * real_time), 2 * own);
    assert_eq!(stream::pace_of(&other, 0), 0, "unpaced stays unpaced");
}

/// Reads a TLS stream until it fails or ends: the error, if it failed.
fn tls_read_error(tls: &mut impl Read) -> Option<std::io::Error> {
    let mut chunk = [0u8; 65536];
    let deadline = Instant::now() + IO_TIMEOUT;
    while Instant::now() < deadline {
        match tls.read(&mut chunk) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => return Some(e),
        }
    }
    panic!("the TLS stream neither failed nor ended");
}

#[test]
fn fault_tls_corrupt_fails_the_clients_tls() {
    let p = start();
    p.set_stream_fault(101, Fault::TlsCorrupt, Some(1));
    let mut tls = tls_client(&p, "localhost");
    send_get(&mut tls, "/live/alice/secret/101.ts", Some(UA));
    let head = read_head(&mut tls).unwrap();
    assert_eq!(head.status, 302, "the fault strikes the token response");
    let path = &head.header("location").unwrap()[p.https_url().len()..];
    let mut tls = tls_client(&p, "localhost");
    send_get(&mut tls, path, Some(UA));
    let error = tls_read_error(&mut tls).expect("a TLS error, not a clean end");
    assert_eq!(error.kind(), ErrorKind::InvalidData, "{error}");
    let fired = p.faults_fired();
    assert_eq!(fired.len(), 1);
    assert_eq!(
        (fired[0].stream_id, fired[0].fault),
        (101, Fault::TlsCorrupt)
    );
    assert!(p.wait_active_connections("alice", 0, IO_TIMEOUT));
}

#[test]
fn a_strike_hits_a_flowing_body_mid_stream() {
    let p = start();
    // TLS: the body's bytes arrive, then a record the client cannot decrypt.
    let path = {
        let mut tls = tls_client(&p, "localhost");
        send_get(&mut tls, "/live/alice/secret/101.ts", Some(UA));
        let head = read_head(&mut tls).unwrap();
        head.header("location").unwrap()[p.https_url().len()..].to_owned()
    };
    let mut tls = tls_client(&p, "localhost");
    send_get(&mut tls, &path, Some(UA));
    let head = read_head(&mut tls).unwrap();
    assert_eq!(head.status, 200);
    let body = read_n(&mut tls, head.rest, 20_000);
    assert_eq!(body, stream_start(20_000));
    assert_eq!(p.strike_stream(101, Fault::TlsCorrupt), 1);
    let error = tls_read_error(&mut tls).expect("a TLS error, not a clean end");
    assert_eq!(error.kind(), ErrorKind::InvalidData, "{error}");

    // Plain: a stall goes silent with the socket open, a drop closes it.
    let (mut sock, head) = open_stream(&p, "alice", "secret", 101);
    let _ = read_n(&mut sock, head.rest, 5_000);
    assert_eq!(
        p.strike_stream(102, Fault::StallAfter(0)),
        0,
        "no body of 102"
    );
    assert_eq!(p.strike_stream(101, Fault::Status(500)), 0, "not mid-body");
    assert_eq!(p.strike_stream(101, Fault::StallAfter(0)), 1);
    // What was in flight before the strike still arrives; then silence.
    std::thread::sleep(Duration::from_millis(100));
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut chunk = [0u8; 65536];
    while sock.read(&mut chunk).is_ok_and(|n| n > 0) {}
    assert_silent(&mut sock, Duration::from_millis(300));
    drop(sock);
    let (mut sock, head) = open_stream(&p, "alice", "secret", 101);
    let _ = read_n(&mut sock, head.rest, 5_000);
    assert_eq!(p.strike_stream(101, Fault::DropAfter(0)), 1);
    assert_ends(&mut sock);
    assert!(p.wait_active_connections("alice", 0, IO_TIMEOUT));
    let fired = p.faults_fired();
    assert_eq!(fired.len(), 3);
    assert!(fired.iter().all(|f| f.mid_body));
}
