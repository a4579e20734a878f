//! `streamforge serve`, end to end: the HDHomeRun documents, M3U and EPG as clients fetch them,
//! hostile requests, live changes from the CLI, discovery with Debian's `hdhomerun_config`, and
//! a clean stop on SIGTERM.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Sandbox, Server, header, http_get, raw_request};
use serde_json::Value;
use streamforge::fake_provider::{FakeAccount, FakeProvider, ProviderOptions};

fn provider() -> FakeProvider {
    FakeProvider::start(ProviderOptions {
        accounts: vec![FakeAccount::new("alice", "Pw-Serve-31", 2)],
        ..ProviderOptions::default()
    })
    .expect("start fake provider")
}

/// A sandbox with the demo catalog synced, the fixture guide added and auto-mapped.
fn appliance(provider: &FakeProvider, config: &str) -> Sandbox {
    let sandbox = Sandbox::with_config(config);
    sandbox.add_account("main", &provider.http_url(), "alice", "Pw-Serve-31", 2);
    sandbox.sync_guide_and_map();
    sandbox
}

fn json(url: &str) -> Value {
    let (status, headers, body) = http_get(url);
    assert_eq!(status, 200, "{url}");
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{url}: {e}"))
}

#[test]
fn documents_agree_and_match_the_protocol() {
    let provider = provider();
    let sandbox = appliance(&provider, "");
    let server = sandbox.serve(&["--listen", "127.0.0.1:0", "--no-discovery"]);
    let base = format!("http://{}", server.addr);

    let discover = json(&server.url("/discover.json"));
    assert_eq!(
        discover["BaseURL"],
        base.as_str(),
        "advertises where it listens"
    );
    assert_eq!(discover["LineupURL"], format!("{base}/lineup.json"));
    assert_eq!(
        discover["TunerCount"].as_u64(),
        Some(2),
        "an integer: the account's connections"
    );
    let id = discover["DeviceID"].as_str().unwrap();
    assert_eq!(id.len(), 8);
    for key in [
        "FriendlyName",
        "ModelNumber",
        "FirmwareName",
        "FirmwareVersion",
        "DeviceAuth",
    ] {
        assert!(discover[key].is_string(), "{key}: {discover}");
    }
    let status = json(&server.url("/lineup_status.json"));
    assert_eq!(status["ScanInProgress"], 0);
    assert_eq!(status["ScanPossible"], 1);

    let lineup = json(&server.url("/lineup.json"));
    let numbers: Vec<&str> = lineup
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["GuideNumber"].as_str().unwrap())
        .collect();
    assert_eq!(
        numbers,
        vec!["101", "300", "1000"],
        "number order, mapped channels only"
    );
    assert_eq!(lineup[0]["GuideName"], "StreamForge One");
    assert_eq!(lineup[0]["URL"], format!("{base}/auto/v101"));
    assert_eq!(lineup[0]["HD"], 1);

    // The M3U lists the same channels with the same numbers; tvg-id is the EPG's channel id.
    let (status, headers, m3u) = http_get(&server.url("/playlist.m3u"));
    assert_eq!(status, 200);
    assert!(header(&headers, "content-length").is_some());
    let m3u = String::from_utf8(m3u).unwrap();
    assert!(
        m3u.starts_with(&format!(
            "#EXTM3U url-tvg=\"{base}/epg.xml\" x-tvg-url=\"{base}/epg.xml\""
        )),
        "{m3u}"
    );
    for number in &numbers {
        assert!(m3u.contains(&format!("tvg-id=\"{number}\"")), "{m3u}");
        assert!(m3u.contains(&format!("tvg-chno=\"{number}\"")), "{m3u}");
    }
    assert_eq!(http_get(&server.url("/lineup.m3u")).2, m3u.as_bytes());

    // The EPG served is the rendered file, and lists the same channels.
    let (status, _, epg) = http_get(&server.url("/epg.xml"));
    assert_eq!(status, 200);
    assert_eq!(
        epg,
        std::fs::read(sandbox.data_dir().join("epg.xml")).unwrap()
    );
    let epg = String::from_utf8(epg).unwrap();
    for number in &numbers {
        assert!(epg.contains(&format!("<channel id=\"{number}\"")), "{epg}");
    }
    let (status, _, gz) = http_get(&server.url("/epg.xml.gz"));
    assert_eq!(status, 200);
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, epg);

    let (status, headers, xml) = http_get(&server.url("/device.xml"));
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type").unwrap().contains("xml"));
    let xml = String::from_utf8(xml).unwrap();
    assert!(xml.contains(&format!("<URLBase>{base}</URLBase>")), "{xml}");
    assert!(xml.contains(&format!("<UDN>uuid:{id}</UDN>")), "{xml}");
    let (status, _, lineup_xml) = http_get(&server.url("/lineup.xml"));
    assert_eq!(status, 200);
    assert!(
        String::from_utf8(lineup_xml)
            .unwrap()
            .contains("<GuideNumber>101</GuideNumber>")
    );

    // Query strings are tolerated; HEAD has the headers and no body.
    assert_eq!(
        http_get(&server.url("/lineup.json?tuning&show=found")).0,
        200
    );
    let (status, headers, body) = raw_request(&server.url("/lineup.json"), "HEAD", "HTTP/1.1");
    assert_eq!(status, 200);
    assert!(
        header(&headers, "content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 0
    );
    assert!(body.is_empty());
}

#[test]
fn plex_style_requests_and_stream_paths() {
    let provider = provider();
    let sandbox = appliance(&provider, "");
    let server = sandbox.serve(&["--listen", "127.0.0.1:0", "--no-discovery"]);
    // Plex registers the tuner with an HTTP/1.0 POST.
    let (status, headers, _) = raw_request(
        &server.url("/lineup.post?scan=start&source=Cable"),
        "POST",
        "HTTP/1.0",
    );
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-length"), Some("0"));
    assert_eq!(
        raw_request(&server.url("/lineup.post?scan=start"), "GET", "HTTP/1.1").0,
        200
    );
    // An HTTP/1.0 GET gets a Content-Length, never chunked.
    let (status, headers, body) = raw_request(&server.url("/discover.json"), "GET", "HTTP/1.0");
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-length").unwrap(),
        body.len().to_string()
    );
    assert!(header(&headers, "transfer-encoding").is_none());

    assert_eq!(http_get(&server.url("/nowhere")).0, 404);
    assert_eq!(
        raw_request(&server.url("/lineup.json"), "DELETE", "HTTP/1.1").0,
        405
    );
    let (status, _, body) = http_get(&server.url("/auto/v999"));
    assert_eq!((status, body.len()), (404, 0), "unknown channel");
    // A HEAD probe of a stream answers without taking a tuner.
    let (status, _, body) = raw_request(&server.url("/auto/v101"), "HEAD", "HTTP/1.1");
    assert_eq!((status, body.len()), (200, 0));
    assert_eq!(provider.stream_requests(101), 0);
}

#[test]
fn hostile_clients_do_not_disturb_others() {
    let provider = provider();
    let sandbox = appliance(&provider, "");
    let server = sandbox.serve(&["--listen", "127.0.0.1:0", "--no-discovery"]);

    // A slow client that never finishes its head, held open throughout.
    let connected = Instant::now();
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.write_all(b"GET /discover.json HTTP/1.1\r\nHost: x\r\n")
        .unwrap();

    let mut oversized = TcpStream::connect(server.addr).unwrap();
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(10_000)
    );
    let _ = oversized.write_all(big.as_bytes());
    assert_eq!(status_of(&mut oversized), Some(431));

    let mut garbage = TcpStream::connect(server.addr).unwrap();
    garbage
        .write_all(b"\x16\x03\x01\x02\x00 not http at all\r\n\r\n")
        .unwrap();
    assert_eq!(status_of(&mut garbage), Some(400));

    // Meanwhile a normal client is served.
    assert_eq!(http_get(&server.url("/discover.json")).0, 200);

    // The server cuts the slow client (408, or just a close) at the 5 s head deadline, which
    // starts when it accepts the connection: not earlier.
    let status = status_of(&mut slow);
    assert!(matches!(status, Some(408) | None), "{status:?}");
    assert!(connected.elapsed() >= Duration::from_secs(5));
    assert_eq!(http_get(&server.url("/lineup.json")).0, 200);
}

/// The status of the reply the server sends before it closes `stream` (`None`: it closed
/// without a reply). Panics if it is still open after a generous bound.
fn status_of(stream: &mut TcpStream) -> Option<u16> {
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut reply = Vec::new();
    match stream.read_to_end(&mut reply) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server did not close the connection: {e}"),
    }
    let text = String::from_utf8_lossy(&reply);
    text.split(' ').nth(1).and_then(|s| s.parse().ok())
}

/// Waits until `holds`, re-checking after each lineup rebuild the server logs (at debug): a
/// rebuild under way while the CLI committed may miss the change, the next one cannot.
fn after_rebuilds(server: &Server, what: &str, mut holds: impl FnMut() -> bool) {
    let rebuilt = |l: &str| l.contains("the database changed: lineup rebuilt");
    let mut seen = server.log_lines().count(rebuilt);
    while !holds() {
        seen += 1;
        server
            .log_lines()
            .wait_for(Duration::from_secs(60), seen, rebuilt)
            .unwrap_or_else(|| panic!("{what}:\n{}", server.log()));
    }
}

#[test]
fn cli_changes_reach_the_running_server() {
    let provider = provider();
    let sandbox = appliance(&provider, "[log]\nlevel = \"debug\"\n");
    let server = sandbox.serve(&["--listen", "127.0.0.1:0", "--no-discovery"]);
    let lineup_numbers = || -> Vec<String> {
        json(&server.url("/lineup.json"))
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["GuideNumber"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!lineup_numbers().contains(&"1001".to_string()));
    // nothing.uk (number 1001) gets a stream by hand: it appears without a restart.
    sandbox
        .run(&["map", "add", "nothing.uk", "main:401"], "")
        .expect(0);
    after_rebuilds(&server, "the mapping never reached the server", || {
        lineup_numbers().contains(&"1001".to_string())
    });
    let epg = String::from_utf8(http_get(&server.url("/epg.xml")).2).unwrap();
    assert!(epg.contains("<channel id=\"1001\""), "the EPG follows too");

    // Disabling the account empties the lineup and the tuner count.
    sandbox.run(&["account", "disable", "main"], "").expect(0);
    after_rebuilds(
        &server,
        "the tuner count never followed the account",
        || json(&server.url("/discover.json"))["TunerCount"] == 0,
    );
    assert!(lineup_numbers().is_empty());
}

#[test]
fn discovery_with_the_real_hdhomerun_client_and_sigterm() {
    let provider = provider();
    let sandbox = appliance(&provider, "[discovery]\nssdp = false\n");
    let mut server = sandbox.serve(&["--listen", "127.0.0.1:0"]);
    let id = json(&server.url("/discover.json"))["DeviceID"]
        .as_str()
        .unwrap()
        .to_string();

    let discover = Command::new("hdhomerun_config")
        .args(["discover", "127.0.0.1"])
        .output()
        .expect("hdhomerun_config must be installed (Debian package hdhomerun-config; .ci/run installs it)");
    let printed = String::from_utf8_lossy(&discover.stdout);
    assert!(
        discover.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&discover.stderr)
    );
    assert!(
        printed.contains(&format!("hdhomerun device {id} found at 127.0.0.1")),
        "{printed}"
    );

    let model = Command::new("hdhomerun_config")
        .args(["127.0.0.1", "get", "/sys/model"])
        .output()
        .unwrap();
    assert!(
        model.status.success(),
        "{}",
        String::from_utf8_lossy(&model.stderr)
    );
    assert!(!String::from_utf8_lossy(&model.stdout).trim().is_empty());

    // The device id is stored: a restart keeps it.
    assert_eq!(server.stop(), 0, "clean exit on SIGTERM:\n{}", server.log());
    assert!(server.log().contains("stopped"), "{}", server.log());
    let server = sandbox.serve(&["--listen", "127.0.0.1:0", "--no-discovery"]);
    assert_eq!(json(&server.url("/discover.json"))["DeviceID"], id.as_str());
}

#[test]
fn bad_serve_arguments() {
    let sandbox = Sandbox::new();
    sandbox
        .run(&["serve", "--advertise", "localhost"], "")
        .expect(2);
    sandbox.run(&["serve", "--listen", "nowhere"], "").expect(2);
    let bad_id = Sandbox::with_config("[device]\nid = \"12345678\"\n");
    let run = bad_id
        .run(&["serve", "--listen", "127.0.0.1:0", "--no-discovery"], "")
        .expect(1);
    assert!(run.stderr.contains("device.id"), "{}", run.stderr);
}
