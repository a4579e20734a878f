//! A splice the player never sees (SPEC §7), judged by real players: the real binary relays the
//! fake provider's primary, fails over to a backup from another encoder (other PIDs, another
//! clock, keyframes elsewhere) and returns to the primary, while ffmpeg (Plex's transcoder) and a
//! raw viewer that joined mid-stream watch. Both must see one continuous, decodable program.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::ts::{Report, inspect};
use common::{EventLog, Sandbox, Server};
use streamforge::fake_provider::{
    ClipKind, DEMO_BACKUP_STREAM, DEMO_PRIMARY_STREAM, FakeAccount, FakeProvider, Fault,
    ProviderOptions, StreamVariant, demo_backup_variant, demo_catalog,
};

const PASSWORD: &str = "Pw-Splice-31";
/// Channel 101 of the fixture guide: stream 101 (FHD) first, then 102 (HD).
const CHANNEL: &str = "101";
const LIMIT: Duration = Duration::from_secs(90);
/// The clip's frame rate.
const FPS: f64 = 25.0;
/// Fast deadlines, so the failover and the return happen within a test's patience.
const FAST: &str = "[deadlines]\nstall = \"2s\"\nupgrade_interval = \"4s\"\nlinger = \"1s\"\n";

/// Fields drop in order: the event follower and the server stop before their data dir goes.
struct Setup {
    events: EventLog,
    server: Server,
    sandbox: Sandbox,
    provider: FakeProvider,
}

/// A real-time paced provider whose channel 101 has `backup` as its backup stream.
fn appliance(backup: StreamVariant) -> Setup {
    let (categories, mut streams) = demo_catalog();
    for stream in &mut streams {
        if stream.stream_id == DEMO_BACKUP_STREAM {
            stream.variant = backup.clone();
        }
    }
    let provider = FakeProvider::start(ProviderOptions {
        accounts: vec![FakeAccount::new("alice", PASSWORD, 2)],
        categories,
        streams,
        ..ProviderOptions::default()
    })
    .expect("start fake provider");
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.config_path(), FAST).unwrap();
    sandbox.add_account("main", &provider.http_url(), "alice", PASSWORD, 2);
    sandbox.sync_guide_and_map();
    let server = sandbox.serve(&["--listen", "127.0.0.1:0", "--no-discovery"]);
    Setup {
        events: sandbox.follow_events(),
        server,
        sandbox,
        provider,
    }
}

/// Reads a viewer's stream body until `done` (checked between reads) or the limit.
fn capture_until(server: &Server, limit: Duration, done: impl Fn() -> bool) -> Vec<u8> {
    let mut socket = TcpStream::connect(server.addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(socket, "GET /auto/v{CHANNEL} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let started = Instant::now();
    let mut data = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    while !done() {
        assert!(started.elapsed() < limit, "timed out");
        let n = socket.read(&mut buf).expect("stream bytes");
        assert!(n > 0, "the response ended");
        data.extend_from_slice(&buf[..n]);
    }
    let head = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    assert!(data.starts_with(b"HTTP/1.1 200"));
    data.drain(..head);
    // End before the last video PES start, so the capture does not end in a partial frame (the
    // clip's PES packets are sent whole, one after another).
    let is_frame_start =
        |p: &[u8]| p[1] & 0x40 != 0 && (u16::from(p[1] & 0x1f) << 8 | u16::from(p[2])) == 0x100;
    let last = data
        .chunks_exact(188)
        .rposition(is_frame_start)
        .expect("video");
    data.truncate(last * 188);
    data
}

/// What `ffmpeg -v error` prints reading `path` (decoding everything).
fn decoder_errors(path: &Path) -> String {
    let output = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg must be installed (Debian package ffmpeg)");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Per stream of a media file: (packet count, first and last DTS in seconds, largest step, steps
/// backwards), from ffprobe.
fn timeline(path: &Path) -> Vec<(usize, f64, f64, f64, usize)> {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=stream_index,dts_time",
        ])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe must be installed");
    let mut streams: Vec<(usize, f64, f64, f64, usize)> = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let mut fields = line.split(',');
        let (Some(index), Some(dts)) = (fields.next(), fields.next()) else {
            continue;
        };
        let (Ok(index), Ok(dts)) = (index.parse::<usize>(), dts.parse::<f64>()) else {
            continue;
        };
        if streams.len() <= index {
            streams.resize(index + 1, (0, dts, dts, 0.0, 0));
        }
        let s = &mut streams[index];
        if s.0 > 0 {
            let step = dts - s.2;
            s.3 = s.3.max(step);
            s.4 += usize::from(step <= 0.0);
        }
        s.0 += 1;
        s.2 = dts;
    }
    streams
}

fn assert_one_program(report: &Report, what: &str) {
    let pids: Vec<u16> = report.pids.iter().copied().collect();
    assert_eq!(
        pids,
        [0, 0x11, 0x100, 0x101, 0x1000],
        "{what}: the primary's PIDs only"
    );
    assert_eq!(report.cc_errors, Vec::<String>::new(), "{what}");
    assert_eq!(report.pcr_backwards, 0, "{what}: PCR backwards");
    assert_eq!(report.dts_backwards, 0, "{what}: video DTS backwards");
    assert!(
        report.pcrs > 50 && report.video_frames > 100,
        "{what}: {report:?}"
    );
}

#[test]
fn ffmpeg_and_a_joining_viewer_see_one_program_across_a_failover_and_the_return() {
    let setup = appliance(demo_backup_variant());
    // The primary drops once, about 6 s in.
    setup
        .provider
        .set_stream_fault(DEMO_PRIMARY_STREAM, Fault::DropAfter(300_000), Some(1));
    let dir = setup.sandbox.path();
    let remuxed = dir.join("ffmpeg.ts");
    let url = setup.server.url(&format!("/auto/v{CHANNEL}"));
    let started = Instant::now();
    let ffmpeg = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "warning", "-i", &url])
        .args(["-map", "0:v:0", "-map", "0:a:0", "-c", "copy", "-t", "18"])
        .args(["-f", "mpegts", "-y"])
        .arg(&remuxed)
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg must be installed");
    let log = &setup.events;
    log.wait_for("session", "started", LIMIT);
    // A raw viewer joins the running channel and stays through both splices.
    let joined = capture_until(&setup.server, LIMIT, || {
        log.count("upgrade", "back to the better stream main:101") > 0
    });
    assert_eq!(log.count("failover", "from main:101 to main:102"), 1);
    let output = ffmpeg.wait_with_output().unwrap();
    let wall = started.elapsed().as_secs_f64();
    let ffmpeg_said = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{ffmpeg_said}");

    // The raw stream: one program, continuous counters, clocks only forward.
    let raw = dir.join("joined.ts");
    std::fs::write(&raw, &joined).unwrap();
    assert_one_program(&inspect(&joined), "the joined viewer");
    assert_eq!(
        decoder_errors(&raw),
        "",
        "decoding the joined viewer's capture"
    );

    // ffmpeg kept producing video and audio to the end, on a monotonic timeline.
    assert!(!ffmpeg_said.contains("Non-monotonous"), "{ffmpeg_said}");
    let streams = timeline(&remuxed);
    assert_eq!(streams.len(), 2, "video and audio: {streams:?}");
    let (frames, first, last, step, backwards) = streams[0];
    assert!(
        frames as f64 >= 0.8 * 18.0 * FPS,
        "{frames} video frames in 18 s of output ({wall:.1} s of wall time)"
    );
    assert!(last - first > 17.0, "video ran to the end: {first}..{last}");
    assert_eq!(backwards, 0);
    // The failover's gap is at most the failover budget: no step beyond it plus a second.
    assert!(step < 3.0, "largest video step {step} s");
    let (audio, _, audio_last, audio_step, audio_backwards) = streams[1];
    assert!(audio > 500 && audio_last - first > 16.0, "{streams:?}");
    assert_eq!(audio_backwards, 0);
    assert!(audio_step < 3.0, "largest audio step {audio_step} s");
    assert_eq!(decoder_errors(&remuxed), "", "decoding ffmpeg's output");
}

#[test]
fn a_backup_without_audio_changes_the_program_version_and_ffmpeg_keeps_the_video_going() {
    let setup = appliance(StreamVariant {
        drop_audio: true,
        ..demo_backup_variant()
    });
    setup
        .provider
        .set_stream_fault(DEMO_PRIMARY_STREAM, Fault::DropAfter(300_000), Some(1));
    let dir = setup.sandbox.path();
    let remuxed = dir.join("ffmpeg.ts");
    let url = setup.server.url(&format!("/auto/v{CHANNEL}"));
    let ffmpeg = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "warning", "-i", &url])
        .args([
            "-map", "0:v:0", "-c", "copy", "-t", "18", "-f", "mpegts", "-y",
        ])
        .arg(&remuxed)
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg must be installed");
    let log = &setup.events;
    log.wait_for("session", "started", LIMIT);
    let joined = capture_until(&setup.server, LIMIT, || {
        log.count("upgrade", "back to the better stream main:101") > 0
    });
    let output = ffmpeg.wait_with_output().unwrap();
    let ffmpeg_said = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{ffmpeg_said}");

    let report = inspect(&joined);
    let versions: Vec<u8> = report.pmts.iter().map(|(v, _)| *v).collect();
    assert_eq!(
        versions.len(),
        3,
        "a new version at each change: {:?}",
        report.pmts
    );
    assert_eq!(
        report.pmts[1].1,
        [(0x1b, 0x100)],
        "video only on the backup"
    );
    assert_eq!(
        report.pmts[2].1, report.pmts[0].1,
        "the primary's program again"
    );
    assert_eq!(report.cc_errors, Vec::<String>::new());
    assert_eq!((report.pcr_backwards, report.dts_backwards), (0, 0));
    let raw = dir.join("joined.ts");
    std::fs::write(&raw, &joined).unwrap();
    assert_eq!(
        decoder_errors(&raw),
        "",
        "decoding the joined viewer's capture"
    );

    let streams = timeline(&remuxed);
    let (frames, first, last, step, backwards) = streams[0];
    assert!(
        frames as f64 >= 0.8 * 18.0 * FPS,
        "{frames} frames: {ffmpeg_said}"
    );
    assert!(
        last - first > 17.0 && backwards == 0 && step < 3.0,
        "{streams:?}"
    );
}

#[test]
fn an_hevc_backup_changes_the_codec_in_a_new_program_version_on_the_same_pids() {
    let setup = appliance(StreamVariant {
        clip: ClipKind::Hevc,
        ..demo_backup_variant()
    });
    setup
        .provider
        .set_stream_fault(DEMO_PRIMARY_STREAM, Fault::DropAfter(300_000), Some(1));
    let log = &setup.events;
    let joined = capture_until(&setup.server, LIMIT, || {
        log.count("upgrade", "back to the better stream main:101") > 0
    });
    let report = inspect(&joined);
    let types: Vec<Vec<(u8, u16)>> = report.pmts.iter().map(|(_, s)| s.clone()).collect();
    assert_eq!(
        types,
        [
            vec![(0x1b, 0x100), (0x0f, 0x101)],
            vec![(0x24, 0x100), (0x0f, 0x101)],
            vec![(0x1b, 0x100), (0x0f, 0x101)],
        ],
        "H.264, then HEVC on the same PIDs, then H.264 again"
    );
    assert_eq!(report.cc_errors, Vec::<String>::new());
    assert_eq!((report.pcr_backwards, report.dts_backwards), (0, 0));
    // Not asserted: Debian's ffmpeg 5.1 keeps its H.264 decoder when the PMT changes a PID's
    // codec, so it cannot decode the HEVC part (the relay's closing note for issue 11).
}
