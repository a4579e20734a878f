//! Quality from the stream, not the label (SPEC §7 Selection), end to end: the fake provider's
//! labels lie (an "FHD" stream that is 640×360, an unlabelled one that is 1280×720), and the real
//! binary measures them while relaying and with `probe`, orders by what it measured, shows label
//! and measurement side by side, and never takes more connections than the account allows.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::Sandbox;
use serde_json::Value;
use streamforge::fake_provider::{
    ClipKind, FakeAccount, FakeCategory, FakeProvider, FakeStream, ProviderOptions, StreamVariant,
};

const PASSWORD: &str = "Pw-Quality-51";

/// One channel of the fixture guide (sfone.uk, number 101) carried by an "FHD" stream that is
/// really 640×360 and an unlabelled one that is really 1280×720; the news channel (sfnews.uk) by
/// an "HD" stream that is 640×360.
fn provider(max_connections: u32) -> FakeProvider {
    let stream = |id, name: &str, epg: &str, clip| FakeStream {
        epg_channel_id: Some(epg.into()),
        variant: StreamVariant {
            clip,
            ..StreamVariant::default()
        },
        ..FakeStream::new(id, name, "1")
    };
    FakeProvider::start(ProviderOptions {
        accounts: vec![FakeAccount::new("alice", PASSWORD, max_connections)],
        categories: vec![FakeCategory::new("1", "UK| GENERAL")],
        streams: vec![
            stream(101, "UK: StreamForge One FHD", "sfone.uk", ClipKind::Main),
            stream(102, "UK: StreamForge One", "sfone.uk", ClipKind::Hd720),
            stream(201, "UK: SF News HD", "sfnews.uk", ClipKind::Main),
        ],
        ..ProviderOptions::default()
    })
    .expect("start fake provider")
}

fn appliance(provider: &FakeProvider, max_connections: u32) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.add_account(
        "main",
        &provider.http_url(),
        "alice",
        PASSWORD,
        max_connections,
    );
    sandbox.sync_guide_and_map();
    sandbox
}

fn channel(sandbox: &Sandbox, id: &str) -> Value {
    let listed = sandbox.run(&["channels", "--json"], "").expect(0).json();
    listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no channel {id} in {listed}"))
        .clone()
}

fn streams_of(channel: &Value) -> Vec<String> {
    channel["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn stream(sandbox: &Sandbox, reference: &str) -> Value {
    let listed = sandbox.run(&["streams", "--json"], "").expect(0).json();
    listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stream"] == reference)
        .unwrap_or_else(|| panic!("no stream {reference} in {listed}"))
        .clone()
}

fn size(measured: &Value) -> (u64, u64) {
    let video = &measured["video"];
    (
        video["width"].as_u64().expect("a width"),
        video["height"].as_u64().expect("a height"),
    )
}

/// A server address nothing listens on: `probe` then counts no server's connections.
const NO_SERVER: &str = "127.0.0.1:9";

#[test]
fn probe_measures_every_stream_within_the_limit_and_orders_by_what_it_found() {
    let provider = provider(1);
    let sandbox = appliance(&provider, 1);
    // Labels first: the "FHD" stream leads.
    assert_eq!(
        streams_of(&channel(&sandbox, "sfone.uk")),
        ["main:101", "main:102"]
    );
    assert!(stream(&sandbox, "main:101")["measured"].is_null());

    let run = sandbox
        .run(
            &[
                "probe", "--all", "--pause", "0s", "--server", NO_SERVER, "--json",
            ],
            "",
        )
        .expect(0);
    let rows = run.json();
    let row = |reference: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["stream"] == reference)
            .unwrap_or_else(|| panic!("{reference} not probed: {rows}"))
            .clone()
    };
    assert_eq!(rows.as_array().unwrap().len(), 3, "{rows}");
    for reference in ["main:101", "main:102", "main:201"] {
        assert_eq!(row(reference)["result"], "measured", "{rows}");
    }
    assert_eq!(size(&row("main:101")["measured"]), (640, 360));
    assert_eq!(size(&row("main:102")["measured"]), (1280, 720));
    assert_eq!(row("main:101")["mismatch"], "FHD label, measured 640×360");
    assert!(
        row("main:102")["mismatch"].is_null(),
        "no label to disagree"
    );
    // One at a time: never more than the account's one connection.
    assert_eq!(provider.peak_connections("alice"), 1);

    // Stored, with the codec, the audio and a bit rate near the clip's own.
    let stored = stream(&sandbox, "main:102");
    let measured = &stored["measured"];
    assert_eq!(measured["how"], "probe");
    assert_eq!(measured["video"]["codec"], "H.264");
    assert_eq!(measured["audio"][0]["codec"], "AAC");
    assert_eq!(measured["audio"][0]["channels"], 2);
    assert!(measured["bitrate"].as_u64().expect("a bit rate") > 300_000);
    assert_eq!(
        stored["quality"], "HD",
        "measured, though the name says nothing"
    );
    assert!(stored["label_quality"].is_null());
    let liar = stream(&sandbox, "main:101");
    assert_eq!(
        (liar["quality"].as_str(), liar["label_quality"].as_str()),
        (Some("SD"), Some("FHD"))
    );

    // Re-ordered by measurement right after the probe, and kept so by the next `map auto`.
    let one = channel(&sandbox, "sfone.uk");
    assert_eq!(streams_of(&one), ["main:102", "main:101"]);
    assert_eq!(
        one["stream_quality"][1]["mismatch"],
        "FHD label, measured 640×360"
    );
    sandbox.run(&["map", "auto"], "").expect(0);
    assert_eq!(
        streams_of(&channel(&sandbox, "sfone.uk")),
        ["main:102", "main:101"]
    );

    // People see both, the label and the measurement.
    let listed = sandbox.run(&["streams"], "").expect(0).stdout;
    let line = listed
        .lines()
        .find(|l| l.starts_with("main:101 "))
        .expect("main:101 listed");
    assert!(line.contains("FHD label, measured 640×360"), "{listed}");
    let channels = sandbox.run(&["channels"], "").expect(0).stdout;
    assert!(
        channels.contains("main:102 HD (+1 backup)"),
        "the measured HD stream leads:\n{channels}"
    );
}

#[test]
fn a_session_stores_what_it_measured_and_probe_keeps_off_a_busy_account() {
    let provider = provider(1);
    let sandbox = appliance(&provider, 1);
    let server = sandbox.serve(&["--listen", "127.0.0.1:0", "--no-discovery"]);

    // Channel 101's primary is the "FHD" stream; watch it until the relay has measured it.
    let mut viewer = TcpStream::connect(server.addr).unwrap();
    viewer
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(viewer, "GET /auto/v101 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let reader = std::thread::spawn(move || {
        // Keep reading so the session stays healthy; ends when the server closes it.
        let mut sink = [0u8; 65536];
        while matches!(viewer.read(&mut sink), Ok(n) if n > 0) {}
    });
    let line = server
        .log_lines()
        .wait_for(Duration::from_secs(60), 1, |l| {
            l.contains("measured main:101")
        })
        .unwrap_or_else(|| panic!("no measurement logged:\n{}", server.log()));
    assert!(line.contains("640×360"), "{line}");

    // Stored before it was logged: the CLI sees it while the session still runs.
    let stored = stream(&sandbox, "main:101");
    assert_eq!(stored["measured"]["how"], "session");
    assert_eq!(size(&stored["measured"]), (640, 360));
    assert_eq!(stored["mismatch"], "FHD label, measured 640×360");
    let status: Value =
        serde_json::from_slice(&common::http_get(&server.url("/status")).2).unwrap();
    assert_eq!(size(&status["sessions"][0]["measured"]), (640, 360));
    assert_eq!(status["accounts"][0]["tuners_in_use"], 1);
    let shown = sandbox
        .run(&["status", "--server", &server.addr.to_string()], "")
        .expect(0)
        .stdout;
    assert!(shown.contains("H.264 640×360 25p"), "{shown}");

    // The account's one connection is the server's: the probe must not take another.
    let server_addr = server.addr.to_string();
    let refused = sandbox
        .run(
            &["probe", "main:102", "--server", &server_addr, "--json"],
            "",
        )
        .expect(1);
    let rows = refused.json();
    assert_eq!(rows[0]["result"], "skipped", "{rows}");
    assert!(
        rows[0]["reason"]
            .as_str()
            .unwrap()
            .contains("no free connection"),
        "{rows}"
    );
    assert!(stream(&sandbox, "main:102")["measured"].is_null());
    assert_eq!(provider.peak_connections("alice"), 1);
    drop(server);
    let _ = reader.join();
}
