//! `streamforge demo` (README's run command): the appliance on loopback against its built-in
//! provider serves playable channels, and stops cleanly.

mod common;

use std::process::Command;

use common::{Sandbox, http_get};

#[test]
fn the_demo_serves_playable_channels() {
    let port = free_port();
    let sandbox = Sandbox::new();
    let listen = format!("127.0.0.1:{port}");
    let mut demo = sandbox.start_server("demo", &["--listen", &listen]);
    let lineup: serde_json::Value =
        serde_json::from_slice(&http_get(&demo.url("/lineup.json")).2).unwrap();
    let channels = lineup.as_array().unwrap();
    assert!(channels.len() >= 3, "{lineup}");
    assert_eq!(channels[0]["GuideNumber"], "101");
    let playlist = String::from_utf8(http_get(&demo.url("/playlist.m3u")).2).unwrap();
    assert!(playlist.contains("tvg-chno=\"101\""), "{playlist}");
    let epg = String::from_utf8(http_get(&demo.url("/epg.xml")).2).unwrap();
    assert!(
        epg.contains("<programme"),
        "the demo guide has programmes now"
    );

    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-read_intervals",
            "%+2",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(demo.url("/auto/v101"))
        .output()
        .expect("ffprobe must be installed (Debian package ffmpeg)");
    let codecs = String::from_utf8_lossy(&probe.stdout);
    assert!(
        codecs.contains("h264") && codecs.contains("aac"),
        "{codecs}{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    assert_eq!(demo.stop(), 0, "{}", demo.log());
}

#[test]
fn the_demo_on_every_interface_advertises_an_address_clients_can_use() {
    let port = free_port();
    let sandbox = Sandbox::new();
    let mut demo = sandbox.start_server("demo", &["--listen", &format!("0.0.0.0:{port}")]);
    let url = format!("http://127.0.0.1:{port}/discover.json");
    let discover: serde_json::Value = serde_json::from_slice(&http_get(&url).2).unwrap();
    let base = discover["BaseURL"].as_str().unwrap();
    assert!(
        base.starts_with("http://") && base.ends_with(&format!(":{port}")),
        "{base}"
    );
    assert!(!base.contains("0.0.0.0"), "{base}");
    assert_eq!(demo.stop(), 0, "{}", demo.log());
}

/// A port nothing listens on now (the demo takes its address from the command line).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
