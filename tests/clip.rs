//! The shipped TS clip that every fake stream loops is real, playable H.264 + AAC, as a real
//! client (Debian's ffprobe) sees it.

use std::process::Command;

use streamforge::fake_provider::FakeProvider;

#[test]
fn clip_is_h264_and_aac_mpeg_ts() {
    let clip = FakeProvider::clip();
    assert_eq!(clip.len() % 188, 0);
    assert!(clip.chunks(188).all(|packet| packet[0] == 0x47));

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/clip.ts");
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
            path,
        ])
        .output()
        .expect("ffprobe must be installed (Debian package ffmpeg; .ci/run installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let codecs = String::from_utf8_lossy(&output.stdout);
    let codecs: Vec<&str> = codecs.lines().map(str::trim).collect();
    assert!(codecs.contains(&"h264"), "{codecs:?}");
    assert!(codecs.contains(&"aac"), "{codecs:?}");
}
