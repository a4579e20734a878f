//! The guide, end to end: XMLTV ingested three ways (file, URL, xtream:ACCOUNT), auto-mapped
//! against a synced fake catalog, numbered, and rendered into an EPG that Debian's
//! `tv_validate_file` accepts.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use common::Sandbox;
use serde_json::Value;
use streamforge::fake_provider::{FakeAccount, FakeProvider, Fault, ProviderOptions};

const GUIDE: &[u8] = include_bytes!("fixtures/guide.xml");

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn provider() -> FakeProvider {
    let provider = FakeProvider::start(ProviderOptions {
        accounts: vec![FakeAccount::new("alice", "Pw-Guide-77", 2)],
        xmltv: Some(GUIDE.to_vec()),
        ..ProviderOptions::default()
    })
    .expect("start fake provider");
    provider.add_file("/epg/guide.xml.gz", gzip(GUIDE), "application/gzip");
    provider.add_file(
        "/epg/page.html",
        b"<html><body>Not here</body></html>".to_vec(),
        "text/html",
    );
    provider
}

/// A sandbox with the demo catalog synced as account `main`.
fn synced(provider: &FakeProvider) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.add_account("main", &provider.http_url(), "alice", "Pw-Guide-77", 2);
    sandbox.run(&["sync"], "").expect(0);
    sandbox
}

fn channels(sandbox: &Sandbox) -> Value {
    sandbox.run(&["channels", "--json"], "").expect(0).json()
}

fn channel<'a>(channels: &'a Value, id: &str) -> &'a Value {
    channels
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no channel {id} in {channels}"))
}

fn epg(sandbox: &Sandbox) -> String {
    std::fs::read_to_string(sandbox.data_dir().join("epg.xml")).expect("epg.xml rendered")
}

/// Runs Debian's XMLTV validator; numeric channel ids (`invalidid`) are the one complaint we
/// accept, since they are the id convention Plex needs.
fn validate(path: &Path) {
    let output = Command::new("tv_validate_file")
        .arg("--dtd-file")
        .arg("/usr/share/xmltv/xmltv.dtd")
        .arg(path)
        .output()
        .expect(
            "tv_validate_file must be installed (Debian package xmltv-util; .ci/run installs it)",
        );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let complaints: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            !l.contains("Invalid channel-id") && !l.ends_with("found.") && *l != "Validated ok."
        })
        .collect();
    assert!(
        complaints.is_empty(),
        "tv_validate_file complained:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Ingest, map and render, then check what a client of the EPG and lineup would see.
fn check_mapped_and_rendered(sandbox: &Sandbox) {
    let run = sandbox.run(&["map", "auto"], "").expect(0);
    assert!(
        run.stdout.contains("mappings for 3 channels"),
        "{}",
        run.stdout
    );

    let listed = channels(sandbox);
    assert_eq!(
        channel(&listed, "sfone.uk")["number"],
        "101",
        "number from a numeric display-name"
    );
    assert_eq!(
        channel(&listed, "sfsports.uk")["number"],
        "300",
        "number from lcn"
    );
    assert_eq!(
        channel(&listed, "sfnews.uk")["number"],
        "1000",
        "assigned from the start number"
    );
    assert_eq!(
        channel(&listed, "sfone.uk")["streams"],
        serde_json::json!(["main:101", "main:102"]),
        "FHD first, HD backup"
    );
    assert_eq!(
        channel(&listed, "nothing.uk")["streams"],
        serde_json::json!([])
    );
    let unmapped = sandbox
        .run(&["channels", "--unmapped", "--json"], "")
        .expect(0)
        .json();
    assert_eq!(unmapped.as_array().unwrap().len(), 1);

    let mappings = sandbox
        .run(&["map", "list", "101", "--json"], "")
        .expect(0)
        .json();
    assert_eq!(mappings[0]["stream"], "main:101");
    assert_eq!(mappings[0]["primary"], true);
    assert_eq!(mappings[1]["primary"], false);

    let xml = epg(sandbox);
    let first_programme = xml.find("<programme").expect("programmes rendered");
    let last_channel = xml.rfind("<channel ").expect("channels rendered");
    assert!(last_channel < first_programme, "channels before programmes");
    for id in ["101", "1000", "300"] {
        assert!(
            xml.contains(&format!("<channel id=\"{id}\"")),
            "channel {id}:\n{xml}"
        );
    }
    assert!(!xml.contains("Unmapped Programme"), "only lineup channels");
    assert!(!xml.contains("Nobody"), "only lineup channels");
    assert!(!xml.contains("Bad Timestamp"));
    assert!(
        xml.contains("Fish &amp; Chips &lt;Live&gt;"),
        "escaping kept:\n{xml}"
    );
    assert!(xml.contains("start=\"20261121180000 +0000\""), "{xml}");
    assert!(xml.contains("channel=\"101\""));
    assert!(xml.contains("<display-name>101</display-name>"));

    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(sandbox.data_dir().join("epg.xml.gz")).unwrap(),
    )
    .read_to_string(&mut unzipped)
    .unwrap();
    assert_eq!(unzipped, xml);
    validate(&sandbox.data_dir().join("epg.xml"));
}

#[test]
fn guide_from_a_gzipped_file_with_a_misleading_name() {
    let provider = provider();
    let sandbox = synced(&provider);
    let path = sandbox.path().join("guide.xml");
    std::fs::write(&path, gzip(GUIDE)).unwrap();
    let run = sandbox
        .run(
            &["epg", "add", path.to_str().unwrap(), "--name", "file"],
            "",
        )
        .expect(0);
    assert!(run.stdout.contains("file: 4 channels"), "{}", run.stdout);
    assert!(
        run.stdout.contains("1 with bad timestamps skipped"),
        "{}",
        run.stdout
    );
    check_mapped_and_rendered(&sandbox);
}

#[test]
fn guide_from_a_url() {
    let provider = provider();
    let sandbox = synced(&provider);
    let url = format!("{}/epg/guide.xml.gz", provider.http_url());
    sandbox.run(&["epg", "add", &url], "").expect(0);
    let sources = sandbox.run(&["epg", "list", "--json"], "").expect(0).json();
    assert_eq!(sources[0]["name"], "127.0.0.1");
    assert_eq!(sources[0]["channels"], 4);
    // The fixture's last programme ends at 00:30 +0100 on the 22nd.
    assert_eq!(sources[0]["programmes_until"], "2026-11-21T23:30:00Z");
    check_mapped_and_rendered(&sandbox);
}

#[test]
fn guide_from_the_provider_and_its_failures() {
    let provider = provider();
    let sandbox = synced(&provider);
    sandbox
        .run(&["epg", "add", "xtream:main", "--name", "panel"], "")
        .expect(0);
    check_mapped_and_rendered(&sandbox);
    let before = channels(&sandbox);
    let epg_before = epg(&sandbox);

    // The panel serves an HTML page, then garbage: each refresh fails clearly, nothing is lost.
    for (fault, expected) in [
        (Fault::Html200, "HTML"),
        (Fault::Garbage, "XMLTV"),
        (Fault::Status(404), "HTTP 404"),
    ] {
        provider.set_api_fault(fault, None);
        let run = sandbox.run(&["epg", "refresh", "panel"], "").expect(1);
        provider.clear_faults();
        assert!(run.stderr.contains(expected), "{fault:?}:\n{}", run.stderr);
        assert_eq!(channels(&sandbox), before, "{fault:?} changed the channels");
        assert_eq!(epg(&sandbox), epg_before, "{fault:?} changed the EPG");
    }
    let sources = sandbox.run(&["epg", "list", "--json"], "").expect(0).json();
    assert!(
        sources[0]["last_status"]
            .as_str()
            .unwrap()
            .starts_with("error")
    );
    // The password in xmltv.php's query string appears nowhere we print.
    let listing = sandbox.run(&["epg", "list"], "").expect(0);
    assert!(!listing.stdout.contains("Pw-Guide-77"));

    // A good refresh keeps every number and mapping.
    sandbox.run(&["epg", "refresh"], "").expect(0);
    assert_eq!(channels(&sandbox), before);
}

#[test]
fn broken_sources_are_not_added() {
    let provider = provider();
    let sandbox = synced(&provider);
    let broken = sandbox.path().join("broken.xml");
    std::fs::write(
        &broken,
        "<?xml version=\"1.0\"?><tv><channel id=\"a\"><display-name>A</channel></tv>",
    )
    .unwrap();
    let run = sandbox
        .run(&["epg", "add", broken.to_str().unwrap()], "")
        .expect(1);
    assert!(run.stderr.contains("broken"), "{}", run.stderr);
    let html = format!("{}/epg/page.html", provider.http_url());
    let run = sandbox.run(&["epg", "add", &html], "").expect(1);
    assert!(run.stderr.contains("HTML"), "{}", run.stderr);
    let missing = format!("{}/epg/none.xml", provider.http_url());
    let run = sandbox.run(&["epg", "add", &missing], "").expect(1);
    assert!(run.stderr.contains("HTTP 404"), "{}", run.stderr);
    sandbox
        .run(&["epg", "add", "/no/such/file.xml"], "")
        .expect(2);
    sandbox.run(&["epg", "add", "xtream:nobody"], "").expect(1);
    let sources = sandbox.run(&["epg", "list", "--json"], "").expect(0).json();
    assert_eq!(sources.as_array().unwrap().len(), 0, "{sources}");
}

#[test]
fn manual_mappings_numbers_shift_and_lineup_changes() {
    let provider = provider();
    let sandbox = synced(&provider);
    let path = sandbox.path().join("guide.xml");
    std::fs::write(&path, GUIDE).unwrap();
    sandbox
        .run(&["epg", "add", path.to_str().unwrap(), "--shift", "1h"], "")
        .expect(0);
    let sources = sandbox.run(&["epg", "list", "--json"], "").expect(0).json();
    assert_eq!(
        sources[0]["programmes_until"], "2026-11-22T00:30:00Z",
        "the shift moves the guide's reach"
    );
    sandbox.run(&["map", "auto", "--dry-run"], "").expect(0);
    assert_eq!(
        channel(&channels(&sandbox), "sfone.uk")["streams"],
        serde_json::json!([]),
        "dry run changes nothing"
    );

    // A manual mapping of the unguided movie stream survives auto-mapping.
    sandbox
        .run(&["map", "add", "nothing.uk", "main:401"], "")
        .expect(0);
    sandbox.run(&["map", "auto"], "").expect(0);
    let listed = channels(&sandbox);
    assert_eq!(
        channel(&listed, "nothing.uk")["streams"],
        serde_json::json!(["main:401"])
    );
    let xml = epg(&sandbox);
    assert!(xml.contains("Unmapped Programme"), "now in the lineup");
    assert!(
        xml.contains("start=\"20261121190000 +0000\""),
        "shifted by 1h:\n{xml}"
    );
    assert!(
        !xml.contains("start=\"20261121180000 +0000\""),
        "nothing unshifted:\n{xml}"
    );

    // Renumber, disable, and disabling the account empties the lineup.
    sandbox
        .run(&["channel", "number", "sfnews.uk", "5"], "")
        .expect(0);
    let taken = sandbox
        .run(&["channel", "number", "sfsports.uk", "5"], "")
        .expect(1);
    assert!(taken.stderr.contains("already taken"), "{}", taken.stderr);
    sandbox.run(&["channel", "disable", "101"], "").expect(0);
    let xml = epg(&sandbox);
    assert!(xml.contains("<channel id=\"5\""), "{xml}");
    assert!(!xml.contains("<channel id=\"101\""), "{xml}");
    sandbox
        .run(&["map", "remove", "nothing.uk", "main:401"], "")
        .expect(0);
    assert!(!epg(&sandbox).contains("Unmapped Programme"));
    sandbox.run(&["account", "disable", "main"], "").expect(0);
    assert!(
        !epg(&sandbox).contains("<channel "),
        "no enabled account, no lineup"
    );

    // Numbers are stable across a refresh.
    let before: Vec<(String, String)> = numbers(&sandbox);
    sandbox.run(&["epg", "refresh"], "").expect(0);
    assert_eq!(numbers(&sandbox), before);

    sandbox
        .run(&["map", "add", "nothing.uk", "main"], "")
        .expect(2);
    sandbox
        .run(&["map", "add", "nosuch", "main:401"], "")
        .expect(1);
    sandbox
        .run(&["map", "auto", "--min-confidence", "2"], "")
        .expect(2);
}

#[test]
fn dry_run_explains_close_misses() {
    let provider = provider();
    let sandbox = synced(&provider);
    // The demo streams' ids are not in this guide: names decide. "SF News" is two channels here,
    // and "SF Sports Extra" only resembles "UK: SF Sports FHD".
    let path = sandbox.path().join("close.xml");
    std::fs::write(
        &path,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<tv>
  <channel id="a.uk"><display-name>SF News</display-name></channel>
  <channel id="b.uk"><display-name>SF News</display-name></channel>
  <channel id="c.uk"><display-name>SF Sports Extra</display-name></channel>
</tv>
"#,
    )
    .unwrap();
    sandbox
        .run(&["epg", "add", path.to_str().unwrap()], "")
        .expect(0);
    let run = sandbox.run(&["map", "auto", "--dry-run"], "").expect(0);
    let line = |needle: &str| {
        run.stdout
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{}", run.stdout))
            .to_string()
    };
    let news = line("UK: SF News HD");
    assert!(
        news.contains("ambiguous between") && news.contains("(a.uk)") && news.contains("(b.uk)"),
        "{news}"
    );
    let sports = line("UK: SF Sports FHD");
    assert!(sports.contains("below threshold: 0.67"), "{sports}");
    assert!(sports.contains("(c.uk) SF Sports Extra"), "{sports}");
    let json = sandbox
        .run(&["map", "auto", "--dry-run", "--json"], "")
        .expect(0)
        .json();
    assert_eq!(
        json["ambiguous"][0]["candidates"].as_array().unwrap().len(),
        2
    );
    assert!(
        json["low_confidence"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("below threshold"),
        "{json}"
    );
}

fn numbers(sandbox: &Sandbox) -> Vec<(String, String)> {
    channels(sandbox)
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["number"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
