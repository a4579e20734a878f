//! The sequence parameter set parser on real encoder output: ffmpeg encodes a few frames at test
//! time, and what ffprobe and ffmpeg's own `trace_headers` read from the same stream is the
//! oracle. Then garbage and every truncation: never a panic.

use std::path::Path;
use std::process::Command;

use proptest::prelude::*;

use super::*;

/// Encodes a few frames of `size` at `rate` with `codec_args`, as a raw elementary stream
/// (`format`: h264, hevc or mpeg2video); returns its bytes and where it was written.
fn encode(
    dir: &Path,
    name: &str,
    source: &str,
    codec_args: &[&str],
    format: &str,
) -> (Vec<u8>, String) {
    let path = dir.join(name).display().to_string();
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
        .args(["-i", source, "-frames:v", "4", "-threads", "1"])
        .args(codec_args)
        .args(["-f", format, &path])
        .status()
        .expect("ffmpeg must be installed (Debian package ffmpeg)");
    assert!(status.success(), "ffmpeg failed on {source} {codec_args:?}");
    (std::fs::read(&path).expect("encoded stream"), path)
}

/// Encodes `source` (see [`encode`]), parses its first sequence header as `codec`, and checks
/// the picture's size and frame rate against ffprobe's; returns the picture, ffprobe's field
/// order and where the stream was written.
fn parsed_as_ffprobe_reads(
    dir: &Path,
    name: &str,
    source: &str,
    codec_args: &[&str],
    format: &str,
    codec: Codec,
) -> (Picture, String, String) {
    let (stream, path) = encode(dir, name, source, codec_args, format);
    let picture = parse(codec, first_sequence_header(codec, &stream))
        .unwrap_or_else(|| panic!("{source}: no picture"));
    let (width, height, rate, order) = ffprobe(&path);
    assert_eq!((picture.width, picture.height), (width, height), "{source}");
    assert!(
        close(picture.frame_rate.unwrap(), rate),
        "{source}: {picture:?}"
    );
    (picture, order, path)
}

/// What ffprobe reads: width, height, frame rate, field order.
fn ffprobe(path: &str) -> (u32, u32, f64, String) {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_streams"])
        .args(["-of", "json", path])
        .output()
        .expect("ffprobe must be installed (Debian package ffmpeg)");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("ffprobe JSON");
    let stream = &json["streams"][0];
    let number = |key: &str| stream[key].as_u64().expect(key) as u32;
    let rate = stream["r_frame_rate"].as_str().expect("r_frame_rate");
    let (num, den) = rate.split_once('/').expect("a fraction");
    let rate = num.parse::<f64>().unwrap() / den.parse::<f64>().unwrap();
    let order = stream["field_order"]
        .as_str()
        .unwrap_or("unknown")
        .to_string();
    (number("width"), number("height"), rate, order)
}

/// A syntax element's value in the stream's first parameter sets, as ffmpeg's `trace_headers`
/// bitstream filter reads it.
fn traced(path: &str, element: &str) -> Option<u64> {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-i", path, "-c", "copy"])
        .args(["-bsf:v", "trace_headers", "-f", "null", "-"])
        .output()
        .expect("ffmpeg must be installed (Debian package ffmpeg)");
    let text = String::from_utf8_lossy(&output.stderr);
    text.lines()
        .find(|l| l.split_whitespace().nth(4) == Some(element))
        .and_then(|l| l.rsplit("= ").next())
        .and_then(|v| v.trim().parse().ok())
}

/// The first sequence parameter set in an Annex B stream, from its header byte to the stream's
/// end (the parser finds its end itself).
fn first_sequence_header(codec: Codec, stream: &[u8]) -> &[u8] {
    let at = stream
        .windows(4)
        .position(|w| w[..3] == [0, 0, 1] && is_sequence_header(codec, w[3]))
        .expect("a sequence parameter set");
    &stream[at + 3..]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn h264_progressive_pictures_with_cropping_and_chroma_formats() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str]); 4] = [
        // 360 lines are 22.5 macroblocks: cropped at the bottom.
        (
            "testsrc2=size=640x360:rate=25",
            &["-c:v", "libx264", "-preset", "ultrafast"],
        ),
        // Cropped on the right too, at 29.97 fps, Main profile.
        (
            "testsrc2=size=854x478:rate=30000/1001",
            &["-c:v", "libx264", "-profile:v", "main"],
        ),
        // 4:2:2 (High 4:2:2: chroma format 2, another crop unit) at 50 fps.
        (
            "testsrc2=size=1280x718:rate=50",
            &[
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv422p",
                "-preset",
                "ultrafast",
            ],
        ),
        // Monochrome-free 4:4:4 with scaling matrices (High 4:4:4 Predictive).
        (
            "testsrc2=size=352x290:rate=24",
            &[
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv444p",
                "-x264-params",
                "cqm=jvt",
            ],
        ),
    ];
    for (i, (source, args)) in cases.iter().enumerate() {
        let name = format!("{i}.h264");
        let (picture, order, path) =
            parsed_as_ffprobe_reads(dir.path(), &name, source, args, "h264", Codec::H264);
        assert_eq!(order, "progressive");
        assert!(!picture.interlaced, "{source}");
        assert_eq!(traced(&path, "frame_mbs_only_flag"), Some(1));
    }
}

#[test]
fn h264_field_coding_is_interlaced_and_counts_the_whole_frame() {
    let dir = tempfile::tempdir().unwrap();
    // 360 lines interlaced: coded in pairs of 16-line field macroblocks, so 368 coded lines,
    // cropped in units of four.
    for (i, size) in ["640x360", "720x576"].iter().enumerate() {
        let source = format!("testsrc2=size={size}:rate=25");
        let args = ["-c:v", "libx264", "-flags", "+ilme+ildct", "-top", "1"];
        let name = format!("i{i}.h264");
        let (picture, order, path) =
            parsed_as_ffprobe_reads(dir.path(), &name, &source, &args, "h264", Codec::H264);
        assert_eq!(traced(&path, "frame_mbs_only_flag"), Some(0), "{source}");
        assert_ne!(order, "progressive", "{source}");
        assert!(picture.interlaced, "{source}");
    }
}

#[test]
fn hevc_pictures_with_a_conformance_window() {
    let dir = tempfile::tempdir().unwrap();
    let x265 = |extra: &str| format!("log-level=error:pools=none:frame-threads=1{extra}");
    let cases = [
        ("testsrc2=size=854x478:rate=30000/1001", x265(""), "yuv420p"),
        ("testsrc2=size=640x360:rate=25", x265(""), "yuv420p"),
        ("testsrc2=size=1280x718:rate=50", x265(""), "yuv422p"),
    ];
    for (i, (source, params, pix_fmt)) in cases.iter().enumerate() {
        let args = [
            "-c:v",
            "libx265",
            "-pix_fmt",
            pix_fmt,
            "-x265-params",
            params,
        ];
        let name = format!("{i}.hevc");
        let (picture, _, path) =
            parsed_as_ffprobe_reads(dir.path(), &name, source, &args, "hevc", Codec::Hevc);
        assert!(!picture.interlaced, "{source}");
        assert_eq!(traced(&path, "field_seq_flag"), Some(0));
    }
}

#[test]
fn hevc_field_coding_counts_two_fields_as_one_frame() {
    let dir = tempfile::tempdir().unwrap();
    // Each 720×576 frame split into its two 288-line fields, coded as field pictures.
    let (stream, path) = encode(
        dir.path(),
        "fields.hevc",
        "testsrc2=size=720x576:rate=25,separatefields",
        &[
            "-c:v",
            "libx265",
            "-x265-params",
            "interlace=tff:log-level=error:pools=none:frame-threads=1",
        ],
        "hevc",
    );
    let picture = parse(Codec::Hevc, first_sequence_header(Codec::Hevc, &stream)).expect("picture");
    // ffmpeg's decoder shows the fields one by one: half the lines, twice the rate.
    let (width, field_height, field_rate, _) = ffprobe(&path);
    assert_eq!(traced(&path, "field_seq_flag"), Some(1));
    assert_eq!(traced(&path, "general_interlaced_source_flag"), Some(1));
    assert_eq!((picture.width, picture.height), (width, 2 * field_height));
    assert!(
        close(picture.frame_rate.unwrap(), field_rate / 2.0),
        "{picture:?}"
    );
    assert!(picture.interlaced);
}

#[test]
fn mpeg2_sequence_headers_and_their_extension() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], bool); 2] = [
        (
            "testsrc2=size=720x576:rate=25",
            &["-c:v", "mpeg2video"],
            false,
        ),
        (
            "testsrc2=size=720x480:rate=30000/1001",
            &["-c:v", "mpeg2video", "-flags", "+ilme+ildct"],
            true,
        ),
    ];
    for (i, (source, args, interlaced)) in cases.iter().enumerate() {
        let name = format!("{i}.m2v");
        let (picture, _, path) =
            parsed_as_ffprobe_reads(dir.path(), &name, source, args, "mpeg2video", Codec::Mpeg2);
        assert_eq!(
            traced(&path, "progressive_sequence"),
            Some(u64::from(!interlaced))
        );
        assert_eq!(picture.interlaced, *interlaced, "{source}");
    }
}

#[test]
fn every_truncation_of_a_real_set_is_refused_or_read_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (h264, _) = encode(
        dir.path(),
        "t.h264",
        "testsrc2=size=640x360:rate=25",
        &["-c:v", "libx264", "-preset", "ultrafast"],
        "h264",
    );
    let (hevc, _) = encode(
        dir.path(),
        "t.hevc",
        "testsrc2=size=640x360:rate=25",
        &[
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error:pools=none",
        ],
        "hevc",
    );
    for (codec, stream) in [(Codec::H264, &h264), (Codec::Hevc, &hevc)] {
        let unit = first_sequence_header(codec, stream);
        let end = nal_end(unit);
        let whole = parse(codec, unit).expect("the whole set parses");
        for cut in 0..end {
            let picture = parse(codec, &unit[..cut]);
            // A set cut before its picture size is refused; after it, the size is right.
            if let Some(p) = picture {
                assert_eq!(
                    (p.width, p.height),
                    (whole.width, whole.height),
                    "cut {cut}"
                );
            }
        }
    }
}

#[test]
fn garbage_is_refused() {
    assert_eq!(parse(Codec::H264, &[]), None);
    assert_eq!(parse(Codec::Hevc, &[0x42]), None);
    assert_eq!(parse(Codec::Mpeg2, &[0xb3, 0, 0]), None);
    assert_eq!(parse(Codec::Other, &[0x67; 64]), None);
    // One macroblock, baseline, cropped by nothing: 16×16; cropped by 16 columns: nothing left.
    let one_macroblock = parse(Codec::H264, &[0x67, 66, 0, 30, 0xdd, 0xff, 0x40]);
    assert_eq!(one_macroblock.map(|p| (p.width, p.height)), Some((16, 16)));
    assert_eq!(
        parse(Codec::H264, &[0x67, 66, 0, 30, 0xdd, 0xf1, 0x3d]),
        None
    );
    // Zeros: an Exp-Golomb value that never ends.
    assert_eq!(parse(Codec::H264, &[0; 300]), None);
    assert_eq!(parse(Codec::Hevc, &[0; 300]), None);
}

proptest! {
    #[test]
    fn no_input_panics(codec in 0..4u8, data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let codec = [Codec::H264, Codec::Hevc, Codec::Mpeg2, Codec::Other][usize::from(codec)];
        if let Some(p) = parse(codec, &data) {
            prop_assert!(p.width >= 1 && u64::from(p.width) <= MAX_SIDE);
            prop_assert!(p.height >= 1 && u64::from(p.height) <= MAX_SIDE);
        }
    }

    #[test]
    fn mutated_real_sets_never_panic(flips in proptest::collection::vec((0..40usize, any::<u8>()), 1..8)) {
        // Bytes shaped like a High-profile SPS (with an emulation prevention byte), overwritten.
        let mut unit = vec![
            0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x6a, 0x02, 0x02,
            0x02, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x19, 0x07, 0x8c, 0x18, 0xcb,
        ];
        for (at, value) in flips {
            if let Some(b) = unit.get_mut(at) {
                *b = value;
            }
        }
        for codec in [Codec::H264, Codec::Hevc, Codec::Mpeg2] {
            let _ = parse(codec, &unit);
        }
    }
}
