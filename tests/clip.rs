//! The shipped TS clip that every fake stream loops is real, playable H.264 + AAC, and a fake
//! stream plays as one continuous live channel across the clip's loop points, as real clients
//! (Debian's ffprobe and ffmpeg) see them.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use streamforge::fake_provider::{
    ClipKind, DEMO_PRIMARY_STREAM, FakeProvider, ProviderOptions, RedirectStyle, StreamVariant,
    demo_catalog,
};

const PACKET: usize = 188;

#[test]
fn clip_is_h264_and_aac_mpeg_ts() {
    let clip = FakeProvider::clip();
    assert_eq!(clip.len() % 188, 0);
    assert!(clip.chunks(188).all(|packet| packet[0] == 0x47));

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/clip.ts");
    let codecs = ffprobe(
        Path::new(path),
        &["-show_entries", "stream=codec_name", "-of", "csv=p=0"],
    );
    let codecs: Vec<&str> = codecs.lines().map(str::trim).collect();
    assert!(codecs.contains(&"h264"), "{codecs:?}");
    assert!(codecs.contains(&"aac"), "{codecs:?}");
}

/// Runs ffprobe on `path`; its stdout.
fn ffprobe(path: &Path, args: &[&str]) -> String {
    let output = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(path)
        .output()
        .expect("ffprobe must be installed (Debian package ffmpeg; .ci/run installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Runs ffmpeg with `args`; what it printed on stderr.
fn ffmpeg_stderr(args: &[&str]) -> String {
    let output = Command::new("ffmpeg")
        .arg("-nostdin")
        .args(args)
        .output()
        .expect("ffmpeg must be installed (Debian package ffmpeg)");
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The first `len` body bytes of a stream, fetched from the provider over HTTP.
fn fetch_stream(provider: &FakeProvider, stream_id: u64, len: usize) -> Vec<u8> {
    let mut sock = TcpStream::connect(provider.http_addr()).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        sock,
        "GET /live/demo/demo/{stream_id}.ts HTTP/1.1\r\nHost: x\r\nUser-Agent: VLC/3.0\r\n\r\n"
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let body_start = loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            assert!(got.starts_with(b"HTTP/1.1 200"), "{:?}", &got[..end]);
            break end + 4;
        }
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "EOF in the response head");
        got.extend_from_slice(&buf[..n]);
    };
    while got.len() < body_start + len {
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "EOF in a live body");
        got.extend_from_slice(&buf[..n]);
    }
    got.drain(..body_start);
    got.truncate(len);
    got
}

/// The 33-bit PCR base of a packet, if it carries one.
fn pcr_base(packet: &[u8]) -> Option<u64> {
    let has_field = packet[3] & 0x20 != 0 && packet[4] >= 7 && packet[5] & 0x10 != 0;
    has_field.then(|| {
        packet[6..11]
            .iter()
            .fold(0u64, |v, &b| (v << 8) | u64::from(b))
            >> 7
    })
}

/// Fetches 25 s of a stream of `variant` (2.5 loops of the clip: two loop points) unpaced from
/// the provider and checks it plays as one continuous live channel: PCR monotonic, continuity
/// counters unbroken, DTS per stream strictly increasing, and ffmpeg decodes and remuxes it
/// without a word. The capture is left in `dir`.
fn check_live_stream(variant: &StreamVariant, video_pid: u16, dir: &Path) -> PathBuf {
    let (categories, mut streams) = demo_catalog();
    for stream in &mut streams {
        stream.variant = variant.clone();
    }
    let provider = FakeProvider::start(ProviderOptions {
        bitrate_bps: 0,
        redirect: RedirectStyle::None,
        categories,
        streams,
        ..ProviderOptions::default()
    })
    .unwrap();
    let len = FakeProvider::clip().len() * 5 / 2 / PACKET * PACKET;
    let data = fetch_stream(&provider, DEMO_PRIMARY_STREAM, len);
    assert_eq!(FakeProvider::stream_mismatch(variant, 0, &data), None);

    // Our own reading of the raw stream: PCR monotonic (on its 33-bit clock: a step forward is
    // less than half of it), no continuity-counter error.
    let (mut last_pcr, mut pcrs) = (None, 0);
    let mut last_cc: HashMap<u16, u8> = HashMap::new();
    for packet in data.chunks(PACKET) {
        let pid = (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2]);
        if let Some(pcr) = pcr_base(packet) {
            assert!(
                last_pcr.is_none_or(|last: u64| {
                    let step = pcr.wrapping_sub(last) & ((1 << 33) - 1);
                    step > 0 && step < 1 << 32
                }),
                "PCR went from {last_pcr:?} back to {pcr}"
            );
            last_pcr = Some(pcr);
            pcrs += 1;
        }
        if packet[3] & 0x10 != 0 && pid != 0x1fff {
            let cc = packet[3] & 0x0f;
            if let Some(prev) = last_cc.insert(pid, cc) {
                assert_eq!(cc, (prev + 1) % 16, "continuity of PID {pid:#x}");
            }
        }
    }
    assert!(pcrs > 100, "{pcrs} PCRs");

    let capture = dir.join("capture.ts");
    // Cut before the last video PES start, so the capture does not end in a partial frame.
    let is_video = |p: &[u8]| (u16::from(p[1] & 0x1f) << 8 | u16::from(p[2])) == video_pid;
    let last_frame = data
        .chunks(PACKET)
        .rposition(|p| is_video(p) && p[1] & 0x40 != 0)
        .unwrap();
    std::fs::write(&capture, &data[..last_frame * PACKET]).unwrap();
    // DTS strictly increasing per stream, across both loop points.
    let packets = ffprobe(
        &capture,
        &["-show_entries", "packet=stream_index,dts", "-of", "csv=p=0"],
    );
    let mut first_dts: HashMap<&str, i64> = HashMap::new();
    let mut last_dts: HashMap<&str, i64> = HashMap::new();
    let mut counted: HashMap<&str, usize> = HashMap::new();
    for line in packets.lines().filter(|l| !l.is_empty()) {
        let (stream, dts) = line.split_once(',').unwrap_or_else(|| panic!("{line:?}"));
        let Ok(dts) = dts.trim_end_matches(',').parse::<i64>() else {
            continue;
        };
        first_dts.entry(stream).or_insert(dts);
        if let Some(prev) = last_dts.insert(stream, dts) {
            assert!(dts > prev, "stream {stream}: DTS {prev} then {dts}");
        }
        *counted.entry(stream).or_default() += 1;
    }
    assert!(counted["0"] >= 600, "video packets: {counted:?}");
    assert!(counted["1"] >= 1100, "audio packets: {counted:?}");
    // Over 22 s of it by the clock (the clip's first frame is at 1.4 s): the timestamps moved on
    // at every loop.
    let span = (last_dts["0"] - first_dts["0"]) as f64 / 90_000.0;
    assert!(span > 22.0, "the video DTS span {span} s");

    let path = capture.to_str().unwrap();
    let decoded = ffmpeg_stderr(&["-v", "error", "-i", path, "-f", "null", "-"]);
    assert_eq!(decoded, "", "decoder errors");
    let copied = ffmpeg_stderr(&[
        "-v",
        "warning",
        "-i",
        path,
        "-map",
        "0",
        "-c",
        "copy",
        "-f",
        "mpegts",
        "-y",
        "/dev/null",
    ]);
    assert!(!copied.contains("Non-monotonous"), "{copied}");
    assert_eq!(copied, "", "remuxing warnings");
    capture
}

#[test]
fn a_stream_runs_on_across_the_clip_s_loop_points() {
    let dir = tempfile::tempdir().unwrap();
    check_live_stream(&StreamVariant::default(), 0x100, dir.path());
}

#[test]
fn a_variant_stream_has_its_pids_and_language_and_plays_across_a_clock_wrap() {
    let variant = StreamVariant {
        pmt_pid: Some(0x0abc),
        es_pids: vec![0x0211, 0x0222],
        audio_language: Some(*b"fra"),
        // The 33-bit clock wraps about 3.6 s in.
        clock_offset: (1 << 33) - 5 * 90_000,
        ..StreamVariant::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let capture = check_live_stream(&variant, 0x0211, dir.path());
    let shown = ffprobe(
        &capture,
        &[
            "-show_entries",
            "program=pmt_pid:stream=index,id,codec_name:stream_tags=language",
            "-of",
            "compact",
        ],
    );
    assert!(shown.contains("pmt_pid=2748"), "{shown}");
    assert!(shown.contains("codec_name=h264|id=0x211"), "{shown}");
    assert!(
        shown.contains("codec_name=aac|id=0x222|tag:language=fra"),
        "{shown}"
    );
}

#[test]
fn another_encoder_s_clip_runs_on_across_its_loop_points_too() {
    let variant = StreamVariant {
        clip: ClipKind::OtherEncoder,
        ..StreamVariant::default()
    };
    let dir = tempfile::tempdir().unwrap();
    check_live_stream(&variant, 0x300, dir.path());
    // Its keyframes come every 1.6 s, not every second.
    let keyframes = ffprobe(
        &dir.path().join("capture.ts"),
        &[
            "-select_streams",
            "v",
            "-show_entries",
            "packet=flags",
            "-of",
            "csv=p=0",
        ],
    );
    let keys = keyframes.lines().filter(|l| l.starts_with('K')).count();
    let frames = keyframes.lines().filter(|l| !l.is_empty()).count();
    let gop = frames as f64 / keys as f64;
    assert!(
        (38.0..=40.0).contains(&gop),
        "{keys} keyframes in {frames} frames"
    );
}
