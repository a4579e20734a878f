//! Plain M3U playlist sources, end to end: the real binary adds the fake provider's playlist,
//! syncs it, maps it to the guide and tunes it, with the playlist's own user agent reaching the
//! provider; a broken refresh keeps the catalog; no URL credential is ever shown or stored in
//! clear; and an Xtream get.php URL becomes the Xtream account it is.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Sandbox, files_below};
use streamforge::fake_provider::{FakeAccount, FakeProvider, ProviderOptions, demo_catalog};

/// In every stream URL of the playlist (`/live/alice/PASSWORD/<id>.ts`).
const PASSWORD: &str = "Numbat-Pw-6120";
/// In the playlist URL's query.
const TOKEN: &str = "Tok-Platypus-4471";
const AGENT: &str = "PlaylistAgent/2.0";
const REFERRER: &str = "http://portal.example/watch";
/// The fixture guide's channel for demo stream 101.
const ONE: &str = "101";

fn provider() -> FakeProvider {
    FakeProvider::start(ProviderOptions {
        accounts: vec![FakeAccount::new("alice", PASSWORD, 2)],
        ..ProviderOptions::default()
    })
    .expect("start fake provider")
}

/// The provider's playlist for alice, with `#EXTVLCOPT` headers before stream 101's URL, served
/// at `/lists/tv.m3u`; returns the URL to add (its query carries a token).
fn serve_playlist(provider: &FakeProvider) -> String {
    let mut text = String::new();
    for line in provider
        .playlist("alice")
        .expect("alice's playlist")
        .lines()
    {
        if line.ends_with("/101.ts") {
            text.push_str(&format!(
                "#EXTVLCOPT:http-user-agent={AGENT}\r\n#EXTVLCOPT:http-referrer={REFERRER}\r\n"
            ));
        }
        text.push_str(line);
        text.push_str("\r\n");
    }
    provider.add_file("/lists/tv.m3u", text.into_bytes(), "audio/x-mpegurl");
    format!("{}/lists/tv.m3u?token={TOKEN}", provider.http_url())
}

fn add_m3u(sandbox: &Sandbox, name: &str, location: &str) -> common::Run {
    sandbox
        .run(
            &[
                "account",
                "add",
                name,
                "--m3u",
                location,
                "--max-connections",
                "2",
            ],
            "",
        )
        .expect(0)
}

fn streams(sandbox: &Sandbox, account: &str) -> Vec<serde_json::Value> {
    let run = sandbox
        .run(&["streams", "--account", account, "--json"], "")
        .expect(0);
    run.json().as_array().expect("array").clone()
}

/// Tunes `channel` and reads its response head and some TS.
fn tune(server: &common::Server, channel: &str) -> Vec<u8> {
    let mut socket = TcpStream::connect(server.addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(socket, "GET /auto/v{channel} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut data = vec![0u8; 188 * 100];
    socket.read_exact(&mut data).expect("stream bytes");
    data
}

#[test]
fn add_sync_map_and_tune_a_playlist_with_its_own_user_agent() {
    let provider = provider();
    let sandbox = Sandbox::new();
    let url = serve_playlist(&provider);
    let added = add_m3u(&sandbox, "tv", &url);
    assert!(
        added.stdout.contains("added account tv"),
        "{}",
        added.stdout
    );

    let list = sandbox
        .run(&["account", "list", "--json"], "")
        .expect(0)
        .json();
    assert_eq!(list[0]["kind"], "m3u");
    assert_eq!(list[0]["url"], provider.http_url(), "shown by origin only");

    let sync = sandbox.run(&["sync", "tv"], "").expect(0);
    let (categories, expected) = demo_catalog();
    assert!(
        sync.stdout.contains(&format!(
            "tv: {} streams ({} new",
            expected.len(),
            expected.len()
        )),
        "{}",
        sync.stdout
    );
    let listed = streams(&sandbox, "tv");
    assert_eq!(listed.len(), expected.len());
    for fake in &expected {
        let row = listed
            .iter()
            .find(|s| s["name"] == fake.name.as_str())
            .unwrap_or_else(|| panic!("{} missing", fake.name));
        let tier = streamforge::xtream::parse_quality(&fake.name).tier;
        assert_eq!(row["quality"], tier.label(), "quality from the title");
        let category = categories
            .iter()
            .find(|c| c.category_id == fake.category_id)
            .map(|c| c.category_name.as_str());
        assert_eq!(row["category"].as_str(), category, "group-title");
        assert_eq!(
            row["epg_channel_id"].as_str(),
            fake.epg_channel_id.as_deref(),
            "tvg-id is the EPG id"
        );
    }

    // Guide, auto-mapping (XMLTV-first by tvg-id), serve, tune.
    sandbox.sync_guide_and_map();
    let mappings = sandbox
        .run(&["map", "list", ONE, "--json"], "")
        .expect(0)
        .json();
    assert!(
        mappings.as_array().is_some_and(|m| !m.is_empty()),
        "{mappings}"
    );
    let server = sandbox.serve(&["--listen", "127.0.0.1:0", "--no-discovery"]);
    let data = tune(&server, ONE);
    assert_eq!(data[0], 0x47, "MPEG-TS from the playlist's stream URL");
    assert_eq!(provider.last_user_agent().as_deref(), Some(AGENT));
    assert_eq!(provider.last_referrer().as_deref(), Some(REFERRER));
    assert!(
        provider.stream_requests(101) >= 1,
        "stream 101 fetched from its URL"
    );
}

#[test]
fn a_broken_refresh_keeps_the_catalog_and_ids_survive_a_resync() {
    let provider = provider();
    let sandbox = Sandbox::new();
    let url = serve_playlist(&provider);
    add_m3u(&sandbox, "tv", &url);
    sandbox.sync_guide_and_map();
    let before = streams(&sandbox, "tv");
    let mappings_before = sandbox.run(&["map", "list", "--json"], "").expect(0).json();
    assert!(!before.is_empty());

    // An HTML error page served with 200, then the playlist gone (404).
    provider.add_file(
        "/lists/tv.m3u",
        b"<html><body>Account suspended</body></html>".to_vec(),
        "text/html",
    );
    let html = sandbox.run(&["sync", "tv"], "").expect(1);
    assert!(
        html.stderr.contains("not a usable M3U playlist") && html.stderr.contains("kept"),
        "{}",
        html.stderr
    );
    let gone = Sandbox::new();
    add_m3u(
        &gone,
        "tv",
        &format!("{}/lists/missing.m3u", provider.http_url()),
    );
    let missing = gone.run(&["sync", "tv"], "").expect(1);
    assert!(missing.stderr.contains("HTTP 404"), "{}", missing.stderr);
    assert_eq!(streams(&sandbox, "tv"), before, "the catalog is kept");

    // The playlist back: every stream keeps its id, so the mappings are untouched.
    serve_playlist(&provider);
    let again = sandbox.run(&["sync", "tv"], "").expect(0);
    assert!(
        again.stdout.contains("(0 new, 0 updated, 0 removed)"),
        "{}",
        again.stdout
    );
    assert_eq!(
        sandbox.run(&["map", "list", "--json"], "").expect(0).json(),
        mappings_before
    );
}

#[test]
fn a_playlist_file_with_hls_and_junk_lines() {
    let provider = provider();
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("list.m3u");
    let base = provider.http_url();
    // No header, Latin-1, unquoted attributes, an HLS entry, an orphan #EXTINF and junk.
    let mut bytes = format!(
        "#EXTINF:-1 tvg-id=one.uk group-title=News,One HD\n{base}/live/alice/{PASSWORD}/101.ts\n\
         #EXTINF:-1,Hls FHD\n{base}/live/alice/{PASSWORD}/102.m3u8\n\
         #EXTINF:-1,Orphan\nnot a url\n"
    )
    .into_bytes();
    bytes.extend_from_slice(b"#EXTINF:-1,M\xFCnchen\n");
    bytes.extend_from_slice(format!("{base}/live/alice/{PASSWORD}/201.ts\n").as_bytes());
    std::fs::write(&file, bytes).unwrap();
    add_m3u(&sandbox, "file", file.to_str().unwrap());
    let sync = sandbox.run(&["sync", "file"], "").expect(0);
    assert!(
        sync.stdout.contains("file: 2 streams")
            && sync.stdout.contains("1 unusable entries skipped")
            && sync
                .stdout
                .contains("1 HLS streams refused: Plex takes MPEG-TS only"),
        "{}",
        sync.stdout
    );
    let names: Vec<String> = streams(&sandbox, "file")
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["München", "One HD"]);

    let bad = sandbox
        .run(&["account", "add", "x", "--m3u", "/no/such/file.m3u"], "")
        .expect(2);
    assert!(bad.stderr.contains("not a readable file"), "{}", bad.stderr);
    let both = sandbox
        .run(
            &[
                "account",
                "add",
                "x",
                "--m3u",
                "http://h/l.m3u",
                "--url",
                "http://h",
            ],
            "",
        )
        .expect(2);
    assert!(
        both.stderr.contains("cannot be used with"),
        "{}",
        both.stderr
    );
}

#[test]
fn a_get_php_url_becomes_the_xtream_account_it_is() {
    let provider = provider();
    let sandbox = Sandbox::new();
    let url = format!(
        "{}/get.php?username=alice&password={PASSWORD}&type=m3u_plus&output=ts",
        provider.http_url()
    );
    let added = add_m3u(&sandbox, "panel", &url);
    assert!(
        added
            .stdout
            .contains("Xtream Codes panel's playlist (get.php)")
            && added.stdout.contains("user alice"),
        "{}",
        added.stdout
    );
    assert!(!added.stdout.contains(PASSWORD), "{}", added.stdout);
    let list = sandbox
        .run(&["account", "list", "--json"], "")
        .expect(0)
        .json();
    assert_eq!(list[0]["kind"], "xtream");
    assert_eq!(list[0]["username"], "alice");
    assert_eq!(list[0]["url"], provider.http_url());
    // It logs in to the panel's API like any Xtream account.
    let test = sandbox.run(&["account", "test", "panel"], "").expect(0);
    assert!(test.stdout.contains("login ok"), "{}", test.stdout);
    sandbox.run(&["sync", "panel"], "").expect(0);
    assert_eq!(streams(&sandbox, "panel").len(), demo_catalog().1.len());
}

#[test]
fn no_url_credential_in_any_output_or_data_file() {
    let provider = provider();
    let sandbox = Sandbox::new();
    let url = serve_playlist(&provider);
    let mut printed = add_m3u(&sandbox, "tv", &url).stdout;
    sandbox.sync_guide_and_map();
    for args in [
        vec!["account", "list"],
        vec!["account", "list", "--json"],
        vec!["account", "test", "tv"],
        vec!["sync"],
        vec!["streams"],
        vec!["streams", "--json"],
        vec!["map", "list", "--json"],
        vec!["channels", "--json"],
        vec!["events", "--json"],
    ] {
        let run = sandbox.run(&args, "").expect(0);
        printed.push_str(&run.stdout);
        printed.push_str(&run.stderr);
    }
    // Failures name the playlist by origin only.
    provider.add_file("/lists/tv.m3u", b"junk".to_vec(), "text/plain");
    let failed = sandbox.run(&["sync", "tv"], "").expect(1);
    printed.push_str(&failed.stderr);
    assert!(
        failed.stderr.contains(&provider.http_url()),
        "{}",
        failed.stderr
    );
    serve_playlist(&provider);

    // What the server serves and logs while a playlist stream plays.
    let mut server = sandbox.serve(&["--listen", "127.0.0.1:0", "--no-discovery"]);
    tune(&server, ONE);
    for path in ["/lineup.json", "/playlist.m3u", "/", "/tuners.html"] {
        let (_, _, body) = common::http_get(&server.url(path));
        printed.push_str(&String::from_utf8_lossy(&body));
    }
    server.stop();
    printed.push_str(&server.log());
    printed.push_str(&sandbox.run(&["events", "--json"], "").expect(0).stdout);
    for secret in [PASSWORD, TOKEN, "/lists/tv.m3u"] {
        assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
    }

    let files = files_below(&sandbox.data_dir());
    assert!(files.iter().any(|f| f.ends_with("streamforge.db")));
    for file in files {
        if file.ends_with("secret.key") {
            continue;
        }
        let bytes = std::fs::read(&file).expect("read data file");
        for secret in [PASSWORD, TOKEN] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in clear in {}",
                file.display()
            );
        }
    }
}
