//! The live relay, end to end: the real binary relaying the fake provider's MPEG-TS to real
//! sockets. Byte-exact relay, one shared upstream, tuner limits, slow-viewer isolation, no ghost
//! sessions, every kind of upstream, ffprobe on the output, and failover that the viewer's one
//! response survives.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{EventLog, Sandbox, Server, http_get};
use serde_json::Value;
use streamforge::fake_provider::{
    FakeAccount, FakeProvider, Fault, ProviderOptions, RedirectStyle, StreamVariant,
};

const PASSWORD: &str = "Pw-Relay-88";

/// Channel numbers from the fixture guide: 101 = streams 101 (FHD) then 102 (HD), 1000 = the
/// news stream 201, 300 = the sports stream 301 (chunked).
const ONE: &str = "101";
const NEWS: &str = "1000";
const SPORTS: &str = "300";

/// Fields drop in order: the event follower and the server stop before their data dir goes.
struct Setup {
    events: EventLog,
    server: Server,
    sandbox: Sandbox,
    provider: FakeProvider,
}

/// How long an event may take to be logged after what caused it; only a failure waits this long.
const EVENT_LIMIT: Duration = Duration::from_secs(60);

/// Provider → account (with `max` connections) → sync → guide → map → serve.
fn appliance(
    max: u32,
    bitrate_bps: u64,
    redirect: RedirectStyle,
    extra_config: &str,
    https: bool,
) -> Setup {
    let provider = FakeProvider::start(ProviderOptions {
        accounts: vec![FakeAccount::new("alice", PASSWORD, max)],
        bitrate_bps,
        redirect,
        ..ProviderOptions::default()
    })
    .expect("start fake provider");
    let sandbox = Sandbox::new();
    let ca = sandbox.path().join("ca.pem");
    std::fs::write(&ca, provider.ca_pem()).unwrap();
    std::fs::write(
        sandbox.config_path(),
        format!(
            "[upstream]\nextra_ca_file = {:?}\n{extra_config}",
            ca.display().to_string()
        ),
    )
    .unwrap();
    let url = if https {
        provider.https_url()
    } else {
        provider.http_url()
    };
    sandbox.add_account("main", &url, "alice", PASSWORD, max);
    sandbox.sync_guide_and_map();
    let server = sandbox.serve(&["--listen", "127.0.0.1:0", "--no-discovery"]);
    Setup {
        events: sandbox.follow_events(),
        server,
        sandbox,
        provider,
    }
}

fn simple(max: u32) -> Setup {
    appliance(max, 4_000_000, RedirectStyle::Absolute, "", false)
}

/// An open stream response: the head has been read and checked.
struct Viewer {
    socket: TcpStream,
}

impl Viewer {
    fn tune(server: &Server, channel: &str) -> Viewer {
        let mut socket = TcpStream::connect(server.addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(socket, "GET /auto/v{channel} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let head = read_head(&mut socket);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.to_lowercase().contains("content-type: video/mp2t"),
            "{head}"
        );
        assert!(!head.to_lowercase().contains("content-length"), "{head}");
        Viewer { socket }
    }

    fn read(&mut self, n: usize) -> Vec<u8> {
        let mut data = vec![0; n];
        self.socket.read_exact(&mut data).expect("stream bytes");
        data
    }
}

fn read_head(socket: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        match socket.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// `data` is 188-aligned TS starting with a PAT.
fn assert_ts_from_pat(data: &[u8]) {
    assert_eq!(data[0], 0x47);
    assert_eq!(data[1] & 0x40, 0x40, "payload start");
    assert_eq!(
        ((data[1] as u16 & 0x1f) << 8) | data[2] as u16,
        0,
        "PID 0: a PAT"
    );
    for (i, packet) in data.chunks(188).enumerate() {
        assert_eq!(packet[0], 0x47, "sync byte of packet {i}");
    }
}

/// `data` is a contiguous piece of what the provider's stream sends, starting in any loop.
fn assert_piece_of_stream(data: &[u8]) {
    let head = &data[..data.len().min(188 * 100)];
    let start = FakeProvider::locate_in_stream(&StreamVariant::default(), head)
        .expect("the first packets are a piece of the provider's stream");
    assert_eq!(
        FakeProvider::stream_mismatch(&StreamVariant::default(), start, data),
        None,
        "the byte that differs from the provider's stream (piece from offset {start})"
    );
}

fn status(server: &Server) -> Value {
    serde_json::from_slice(&http_get(&server.url("/status")).2).unwrap()
}

fn events(sandbox: &Sandbox) -> Vec<Value> {
    sandbox
        .run(&["events", "--json", "--limit", "500"], "")
        .expect(0)
        .json()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_viewer_gets_exactly_what_the_provider_sent() {
    let mut setup = simple(2);
    let mut viewer = Viewer::tune(&setup.server, NEWS);
    let data = viewer.read(900_000);
    assert_ts_from_pat(&data);
    assert_piece_of_stream(&data);
    let sessions = status(&setup.server);
    assert_eq!(sessions["sessions"][0]["channel"], NEWS);
    assert_eq!(sessions["sessions"][0]["stream"], "main:201");
    assert_eq!(sessions["sessions"][0]["state"], "live");
    let addr = setup.server.addr.to_string();
    let table = setup
        .sandbox
        .run(&["status", "--server", &addr], "")
        .expect(0);
    assert!(
        table.stdout.contains("tuners in use: 1 of 2"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains("main:201"), "{}", table.stdout);
    let listed = setup
        .sandbox
        .run(&["status", "--server", &addr, "--json"], "")
        .expect(0)
        .json();
    assert_eq!(listed[0]["viewers"], 1);
    let metrics = String::from_utf8(http_get(&setup.server.url("/metrics")).2).unwrap();
    assert!(metrics.contains("streamforge_sessions 1"), "{metrics}");
    assert!(
        metrics.contains("streamforge_start_latency_seconds_count 1"),
        "{metrics}"
    );
    drop(viewer);
    assert_eq!(setup.server.stop(), 0);
    let gone = setup
        .sandbox
        .run(&["status", "--server", &addr], "")
        .expect(1);
    assert!(
        gone.stderr.contains("is `streamforge serve` running?"),
        "{}",
        gone.stderr
    );
}

#[test]
fn three_viewers_share_one_upstream() {
    let setup = simple(2);
    let mut viewers: Vec<Viewer> = (0..3).map(|_| Viewer::tune(&setup.server, NEWS)).collect();
    for viewer in &mut viewers {
        let data = viewer.read(200_000);
        assert_ts_from_pat(&data);
        assert_piece_of_stream(&data);
    }
    assert_eq!(
        setup.provider.stream_requests(201),
        1,
        "one upstream for three viewers"
    );
    assert_eq!(setup.provider.peak_connections("alice"), 1);
    assert_eq!(status(&setup.server)["sessions"][0]["viewers"], 3);
}

#[test]
fn the_tuner_limit_is_never_exceeded_and_a_refusal_is_805() {
    let setup = simple(1);
    let mut first = Viewer::tune(&setup.server, NEWS);
    first.read(50_000);
    let (code, headers, body) = http_get(&setup.server.url(&format!("/auto/v{SPORTS}")));
    assert_eq!(code, 503);
    assert_eq!(
        common::header(&headers, "x-hdhomerun-error"),
        Some("805 All Tuners In Use")
    );
    assert!(body.is_empty());
    // The same channel still joins the running session.
    let mut second = Viewer::tune(&setup.server, NEWS);
    second.read(50_000);
    first.read(50_000);
    assert_eq!(setup.provider.peak_connections("alice"), 1);
    assert_eq!(setup.provider.evictions("alice"), 0);
    setup
        .events
        .wait_for("tuner", "all tuners in use", EVENT_LIMIT);
}

#[test]
fn a_slow_viewer_is_dropped_and_never_slows_the_others() {
    // 40 Mbit/s: the stuck viewer's socket buffer and the 1 MiB ring fill within seconds.
    let setup = appliance(2, 40_000_000, RedirectStyle::Absolute, "", false);
    let mut stuck = Viewer::tune(&setup.server, NEWS);
    let mut fast = Viewer::tune(&setup.server, NEWS);
    // The fast viewer reads on while the stuck one is dropped: every byte it gets is the
    // provider's stream without a gap, so it was never held back nor lagged itself.
    let mut received = Vec::new();
    let started = Instant::now();
    while setup.events.count("viewer", "fell too far behind") == 0 {
        // Everything read is kept: at 40 Mbit/s this bound caps it at about 150 MB.
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the stuck viewer was never dropped"
        );
        received.extend(fast.read(500_000));
    }
    received.extend(fast.read(2_000_000));
    assert_ts_from_pat(&received);
    assert_piece_of_stream(&received);
    let metrics = String::from_utf8(http_get(&setup.server.url("/metrics")).2).unwrap();
    assert!(
        metrics.contains("streamforge_dropped_viewers_total 1"),
        "only the stuck viewer: {metrics}"
    );
    assert_eq!(status(&setup.server)["sessions"][0]["viewers"], 1);
    // The stuck viewer got a stream from a PAT, then its connection was closed.
    let mut rest = Vec::new();
    stuck
        .socket
        .read_to_end(&mut rest)
        .expect("closed by the server");
    assert_ts_from_pat(&rest[..188]);
    assert_eq!(setup.events.count("viewer", "fell too far behind"), 1);
}

#[test]
fn abrupt_disconnects_leave_no_ghost_sessions() {
    let setup = appliance(
        2,
        4_000_000,
        RedirectStyle::Absolute,
        "[deadlines]\nlinger = \"1s\"\n",
        false,
    );
    for round in 1..=3 {
        let mut viewers: Vec<Viewer> = (0..3).map(|_| Viewer::tune(&setup.server, NEWS)).collect();
        viewers[0].read(10_000);
        for viewer in viewers {
            // Reset, not FIN: the way a crashed client vanishes.
            let reset = nix::libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            nix::sys::socket::setsockopt(&viewer.socket, nix::sys::socket::sockopt::Linger, &reset)
                .unwrap();
        }
        assert!(
            setup
                .provider
                .wait_active_connections("alice", 0, Duration::from_secs(20)),
            "the upstream was not released"
        );
        setup
            .events
            .wait_for_count("session", "ended after", round, EVENT_LIMIT);
        let after = status(&setup.server);
        assert_eq!(after["sessions"], serde_json::json!([]), "a ghost session");
        assert_eq!(after["tuners"]["in_use"], 0);
    }
    assert_eq!(setup.provider.peak_connections("alice"), 1);
}

#[test]
fn every_kind_of_upstream_relays() {
    // Absolute redirect + close-delimited, and chunked.
    let setup = simple(2);
    let mut news = Viewer::tune(&setup.server, NEWS);
    assert_piece_of_stream(&news.read(100_000));
    let mut sports = Viewer::tune(&setup.server, SPORTS);
    let data = sports.read(100_000);
    assert_ts_from_pat(&data);
    assert_piece_of_stream(&data);
    drop((news, sports, setup));
    // Relative redirect over TLS.
    let setup = appliance(2, 4_000_000, RedirectStyle::Relative, "", true);
    let mut viewer = Viewer::tune(&setup.server, NEWS);
    let data = viewer.read(100_000);
    assert_ts_from_pat(&data);
    assert_piece_of_stream(&data);
    drop((viewer, setup));
    // No redirect at all.
    let setup = appliance(2, 4_000_000, RedirectStyle::None, "", false);
    assert_piece_of_stream(&Viewer::tune(&setup.server, NEWS).read(100_000));
}

#[test]
fn ffprobe_reads_the_relayed_stream() {
    let setup = simple(2);
    let mut viewer = Viewer::tune(&setup.server, NEWS);
    let path = setup.sandbox.path().join("capture.ts");
    std::fs::write(&path, viewer.read(1_000_000)).unwrap();
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe must be installed (Debian package ffmpeg)");
    let codecs = String::from_utf8_lossy(&output.stdout);
    assert!(
        codecs.contains("h264") && codecs.contains("aac"),
        "{codecs}"
    );
}

/// Fast deadlines so failover and the return to the primary happen within a test's patience.
const FAST: &str = "[deadlines]\nstall = \"1s\"\nupgrade_interval = \"3s\"\nlinger = \"1s\"\n";

/// Reads from `viewer` (at a packet boundary) until `done` says so (bounded), checking the one
/// response stays a clean 188-aligned TS stream with no second HTTP head in it. Reads end
/// anywhere, so the bytes of a packet split across reads are carried to the next; the viewer is
/// left at a packet boundary again.
fn watch_until(viewer: &mut Viewer, limit: Duration, done: impl Fn() -> bool) {
    let started = Instant::now();
    let mut total = 0;
    let mut carry = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    while !done() || !carry.is_empty() {
        assert!(started.elapsed() < limit, "timed out after {total} bytes");
        let want = if done() { 188 - carry.len() } else { buf.len() };
        let n = viewer.socket.read(&mut buf[..want]).expect("stream bytes");
        assert!(n > 0, "the response ended after {total} bytes");
        carry.extend_from_slice(&buf[..n]);
        assert!(
            !carry.windows(9).any(|w| w == b"HTTP/1.1 "),
            "a second response head mid-stream after {total} bytes"
        );
        let whole = carry.len() - carry.len() % 188;
        for (i, packet) in carry[..whole].chunks(188).enumerate() {
            assert_eq!(
                packet[0],
                0x47,
                "output lost 188-alignment at byte {}",
                total + i * 188
            );
        }
        total += whole;
        carry.drain(..whole);
    }
}

#[test]
fn a_viewer_survives_a_dropped_source_and_returns_to_the_primary() {
    let setup = appliance(2, 4_000_000, RedirectStyle::Absolute, FAST, false);
    // The primary dies once after 300 KB.
    setup
        .provider
        .set_stream_fault(101, Fault::DropAfter(300_000), Some(1));
    let mut viewer = Viewer::tune(&setup.server, ONE);
    let log = &setup.events;
    watch_until(&mut viewer, EVENT_LIMIT, || {
        log.count("failover", "from main:101 to main:102 (StreamError)") > 0
    });
    watch_until(&mut viewer, EVENT_LIMIT, || {
        log.count("upgrade", "back to the better stream main:101") > 0
    });
    assert_eq!(viewer.read(188)[0], 0x47, "still streaming on the primary");
    // The return went through `/live/…` again: redirect tokens are single-use, never reused.
    assert!(setup.provider.stream_requests(101) >= 2);
    assert!(setup.provider.peak_connections("alice") <= 2);
    let failover = events(&setup.sandbox)
        .into_iter()
        .find(|e| e["category"] == "failover")
        .unwrap();
    assert_eq!(failover["level"], "warn");
    assert_eq!(failover["details"]["from_stream"], "main:101");
    assert_eq!(failover["details"]["to_stream"], "main:102");
    assert_eq!(failover["details"]["reason"], "StreamError");
    assert!(failover["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn a_viewer_survives_a_stall_and_an_http_error() {
    let setup = appliance(2, 4_000_000, RedirectStyle::Absolute, FAST, false);
    setup
        .provider
        .set_stream_fault(101, Fault::StallAfter(200_000), Some(1));
    let mut viewer = Viewer::tune(&setup.server, ONE);
    let log = &setup.events;
    watch_until(&mut viewer, EVENT_LIMIT, || {
        log.count("failover", "(Stall)") > 0
    });
    // The primary answers 500 to the upgrade probes twice, then recovers.
    setup
        .provider
        .set_stream_fault(101, Fault::Status(500), Some(2));
    watch_until(&mut viewer, EVENT_LIMIT, || {
        log.count("upgrade", "back to the better stream") > 0
    });
    assert!(log.count("upgrade", "still failing (HttpError(500))") > 0);
    assert_eq!(status(&setup.server)["sessions"][0]["stream"], "main:101");
}

#[test]
fn an_html_page_instead_of_ts_fails_over_at_tune_time() {
    let setup = appliance(2, 4_000_000, RedirectStyle::Absolute, FAST, false);
    setup
        .provider
        .set_stream_fault(101, Fault::Html200, Some(1));
    let mut viewer = Viewer::tune(&setup.server, ONE);
    let data = viewer.read(100_000);
    assert_ts_from_pat(&data);
    setup
        .events
        .wait_for("session", "started on main:102", EVENT_LIMIT);
}

#[test]
fn all_streams_dead_at_tune_time_is_807() {
    let setup = appliance(
        2,
        4_000_000,
        RedirectStyle::Absolute,
        "[deadlines]\ngrace = \"3s\"\n",
        false,
    );
    setup
        .provider
        .set_stream_fault(201, Fault::Status(404), None);
    let (code, headers, body) = http_get(&setup.server.url(&format!("/auto/v{NEWS}")));
    assert_eq!(code, 503);
    assert_eq!(
        common::header(&headers, "x-hdhomerun-error"),
        Some("807 No Video Data")
    );
    assert!(body.is_empty());
    setup
        .events
        .wait_for("failover", "every stream failed", EVENT_LIMIT);
    assert!(events(&setup.sandbox).iter().any(|e| {
        e["level"] == "error"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("every stream failed")
    }));
    // Back-off: a dead stream is not hammered during the 3 s grace.
    assert!(
        setup.provider.stream_requests(201) <= 3,
        "{}",
        setup.provider.stream_requests(201)
    );
}
