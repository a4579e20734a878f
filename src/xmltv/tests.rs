//! End-to-end tests: sources on disk, rendered EPGs re-parsed with quick-xml and checked with
//! `tv_validate_file`, and a generated multi-megabyte guide.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use std::cell::Cell;

use super::output::{EPG_XML, EPG_XML_GZ};
use super::time::XmltvTime;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, TestRunner};
use quick_xml::Reader;
use quick_xml::events::Event;

use super::testdata::write_guide;
use super::*;

/// A top-level element of a rendered EPG: name, attributes, and children as (name, text).
#[derive(Debug)]
struct Elem {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<(String, String)>,
}

impl Elem {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn child_names(&self) -> Vec<&str> {
        self.children.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn text(&self, child: &str) -> Option<&str> {
        self.children
            .iter()
            .find(|(n, _)| n == child)
            .map(|(_, t)| t.as_str())
    }
}

/// Parses `xml` independently of our reader (strict end names) into the children of `<tv>`.
fn parse_epg(xml: &str) -> Vec<Elem> {
    let mut reader = Reader::from_str(xml);
    let mut out: Vec<Elem> = Vec::new();
    let mut depth = 0;
    let mut text = String::new();
    loop {
        let event = reader
            .read_event()
            .expect("rendered EPG must be well-formed");
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                let name = e.name().as_ref().to_owned();
                match depth {
                    0 => assert_eq!(name, "tv"),
                    1 => out.push(Elem {
                        name,
                        attrs: e
                            .attributes()
                            .map(|a| {
                                let a = a.expect("attribute");
                                let v = a
                                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                    .expect("attribute value");
                                (a.key.as_ref().to_owned(), v.into_owned())
                            })
                            .collect(),
                        children: Vec::new(),
                    }),
                    2 => {
                        let last = out.last_mut().expect("parent");
                        last.children.push((name, String::new()));
                        text.clear();
                    }
                    _ => {}
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => {
                depth -= 1;
                if depth == 2 {
                    let last = out.last_mut().and_then(|l| l.children.last_mut());
                    last.expect("child").1 = std::mem::take(&mut text);
                }
            }
            Event::Text(t) if depth >= 3 => text.push_str(&t.xml10_content()),
            Event::CData(t) if depth >= 3 => text.push_str(t),
            Event::GeneralRef(r) if depth >= 3 => match r.resolve_char_ref().expect("char ref") {
                Some(c) => text.push(c),
                None => text.push_str(
                    quick_xml::escape::resolve_xml_entity(r).expect("only predefined entities"),
                ),
            },
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "every element closed");
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).expect("gzip into memory");
    enc.finish().expect("finish gzip")
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("rendered .gz must decompress");
    out
}

const SOURCE_A: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE tv SYSTEM "xmltv.dtd">
<tv>
  <channel id="a1"><display-name>A One</display-name></channel>
  <channel id="a2"><display-name>A Two</display-name></channel>
  <channel id="a3"><display-name>A Three</display-name></channel>
  <programme start="20240131233000 +0100" stop="20240201003000 +0100" channel="a1">
    <title lang="en">Tom &amp; Jerry &lt;3 "quoted" 'single'</title>
    <desc>Line one &amp; more &#233;</desc>
    <category>Kids</category>
  </programme>
  <programme start="20240201003000 +0100" stop="20240201013000 +0100" channel="a3">
    <title>Not in the lineup</title>
  </programme>
  <programme start="20240201003000 +0100" stop="20240201013000 +0100" channel="a2" pdc-start="x">
    <category>Drama</category>
    <unknown-element>dropped</unknown-element>
    <date>2020</date>
    <title>Second</title>
    <date>2021</date>
    <sub-title>Sub <b>bold</b>title</sub-title>
    <desc>   </desc>
    <episode-num system="xmltv_ns">1.2.0/1</episode-num>
    <credits>stray text
      <director>Dee</director>
      <actor role="Bob">Ann &amp; Co</actor>
    </credits>
    <icon/>
    <length units="fortnights">2</length>
    <new/>
  </programme>
  <programme start="2024-02-01" channel="a1"><title>Bad start</title></programme>
  <programme start="20240201013000 +0100" stop="nope" channel="a1"><title>Bad stop</title></programme>
  <programme start="20240201013000 +0100" channel="a2"><desc>No title</desc></programme>
  <programme start="20240201013000 +0100" channel="a2"/>
</tv>
"#;

/// Latin-1, to be gzipped under a plain-XML name.
fn source_b() -> Vec<u8> {
    let mut doc = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<tv>\n\
        <channel id=\"b1\"><display-name>B</display-name></channel>\n\
        <programme start=\"20240229233000 -0500\" stop=\"20240301003000 -0500\" channel=\"b1\">\
        <title>Caf"
        .to_vec();
    doc.push(0xE9);
    doc.extend_from_slice(b"</title></programme>\n</tv>\n");
    doc
}

fn lineup_channel(source_id: i64, source: &str, output: &str, name: &str) -> LineupChannel {
    LineupChannel {
        source_id,
        source_channel_id: source.into(),
        output_id: output.into(),
        number: output.into(),
        name: name.into(),
        icon: None,
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    lineup: Vec<LineupChannel>,
    sources: Vec<SourceFile>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.xml.gz");
        fs::write(&a, SOURCE_A).expect("write a");
        let b = dir.path().join("b.xml");
        fs::write(&b, gzip(&source_b())).expect("write b");
        let lineup = vec![
            LineupChannel {
                icon: Some("http://x/logo.png?a=1&b=2".into()),
                ..lineup_channel(1, "a1", "101", r#"A One & <Friends> "Q" 'S'"#)
            },
            lineup_channel(1, "a2", "102", "A Two"),
            lineup_channel(2, "b1", "200", "B"),
            // The same source channel under a second number.
            lineup_channel(1, "a1", "101.copy", "A One (copy)"),
            // A repeated output id: left out.
            lineup_channel(1, "a3", "101", "A Three"),
        ];
        let sources = vec![
            SourceFile {
                source_id: 1,
                path: a,
                shift_seconds: 0,
            },
            SourceFile {
                source_id: 2,
                path: b,
                shift_seconds: 3600,
            },
            // Not used by the lineup: never opened.
            SourceFile {
                source_id: 3,
                path: dir.path().join("missing.xml"),
                shift_seconds: 0,
            },
        ];
        let out = dir.path().join("out");
        fs::create_dir(&out).expect("out dir");
        Fixture {
            dir,
            lineup,
            sources,
        }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn render(&self) -> Result<RenderReport, XmltvError> {
        render(&self.lineup, &self.sources, &self.out(), &Limits::default())
    }
}

fn read_epg(dir: &Path) -> String {
    fs::read_to_string(dir.join(EPG_XML)).expect("epg.xml")
}

#[test]
fn render_writes_lineup_channels_then_their_programmes() {
    let fx = Fixture::new();
    let report = fx.render().expect("render");
    assert_eq!(
        report,
        RenderReport {
            channels: 4,
            programmes: 6,
            skipped_bad_time: 1,
            skipped_invalid: 2,
            dropped_stops: 1,
            channels_without_programmes: 0,
        }
    );
    let xml = read_epg(&fx.out());
    assert!(xml.starts_with(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE tv SYSTEM \"xmltv.dtd\">\n<tv generator-info-name=\"StreamForge\">\n"
    ));
    let elems = parse_epg(&xml);
    let names: Vec<&str> = elems.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "channel",
            "channel",
            "channel",
            "channel",
            "programme",
            "programme",
            "programme",
            "programme",
            "programme",
            "programme"
        ],
        "all channels first"
    );
    let ids: Vec<&str> = elems.iter().take(4).filter_map(|e| e.attr("id")).collect();
    assert_eq!(
        ids,
        ["101", "102", "200", "101.copy"],
        "lineup order, repeated id left out"
    );

    // Escaping survives a round trip through a strict parser.
    let first = &elems[0];
    assert_eq!(
        first.child_names(),
        ["display-name", "display-name", "icon"]
    );
    assert_eq!(first.children[0].1, r#"A One & <Friends> "Q" 'S'"#);
    assert_eq!(first.children[1].1, "101");
    assert!(xml.contains(r#"<icon src="http://x/logo.png?a=1&amp;b=2"/>"#));

    let programmes: Vec<&Elem> = elems.iter().filter(|e| e.name == "programme").collect();
    let channels: Vec<&str> = programmes
        .iter()
        .filter_map(|p| p.attr("channel"))
        .collect();
    assert_eq!(
        channels,
        ["101", "101.copy", "102", "101", "101.copy", "200"]
    );

    let tom = programmes[0];
    assert_eq!(tom.attr("start"), Some("20240131233000 +0100"));
    assert_eq!(tom.attr("stop"), Some("20240201003000 +0100"));
    assert_eq!(
        tom.text("title"),
        Some(r#"Tom & Jerry <3 "quoted" 'single'"#)
    );
    assert_eq!(tom.text("desc"), Some("Line one & more é"));
    assert_eq!(programmes[1].children, tom.children);

    // Reordered into DTD order; unknown, repeated, empty and invalid children dropped.
    let second = programmes[2];
    assert_eq!(
        second.child_names(),
        [
            "title",
            "sub-title",
            "credits",
            "date",
            "category",
            "episode-num",
            "new"
        ]
    );
    assert_eq!(second.text("sub-title"), Some("Sub title"));
    assert_eq!(second.text("date"), Some("2020"));
    assert_eq!(second.text("credits"), Some("DeeAnn & Co"));
    assert_eq!(second.attr("pdc-start"), None);
    assert!(xml.contains(r#"<actor role="Bob">Ann &amp; Co</actor>"#));

    let bad_stop = programmes[3];
    assert_eq!(bad_stop.text("title"), Some("Bad stop"));
    assert_eq!(bad_stop.attr("stop"), None, "an invalid stop is dropped");

    // Shifted by an hour across a leap-day midnight, offset kept; Latin-1 transcoded.
    let leap = programmes[5];
    assert_eq!(leap.attr("start"), Some("20240301003000 -0500"));
    assert_eq!(leap.attr("stop"), Some("20240301013000 -0500"));
    assert_eq!(leap.text("title"), Some("Café"));

    assert!(!xml.contains("Not in the lineup"));
    assert!(
        !xml.contains("a1") && !xml.contains("b1"),
        "source ids rewritten"
    );
}

#[test]
fn gz_holds_the_same_bytes_as_the_plain_file() {
    let fx = Fixture::new();
    fx.render().expect("render");
    let plain = fs::read(fx.out().join(EPG_XML)).expect("epg.xml");
    let gz = fs::read(fx.out().join(EPG_XML_GZ)).expect("epg.xml.gz");
    assert!(gz.starts_with(&[0x1f, 0x8b]));
    assert_eq!(gunzip(&gz), plain);
}

#[test]
fn rendering_again_replaces_the_files() {
    let mut fx = Fixture::new();
    fx.render().expect("first render");
    fx.lineup.truncate(1);
    fx.lineup
        .push(lineup_channel(1, "a3-not-there", "5", "Nothing"));
    let report = fx.render().expect("second render");
    assert_eq!(report.channels, 2);
    assert_eq!(report.channels_without_programmes, 1);
    let xml = read_epg(&fx.out());
    assert_eq!(
        parse_epg(&xml)
            .iter()
            .filter(|e| e.name == "channel")
            .count(),
        2
    );
    assert_eq!(
        gunzip(&fs::read(fx.out().join(EPG_XML_GZ)).expect("gz")),
        xml.as_bytes()
    );
}

/// The files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_failed_render_leaves_the_previous_epg_untouched() {
    let mut fx = Fixture::new();
    fx.render().expect("good render");
    let before_xml = fs::read(fx.out().join(EPG_XML)).expect("xml");
    let before_gz = fs::read(fx.out().join(EPG_XML_GZ)).expect("gz");

    // A source that vanished.
    fx.sources[1].path = fx.dir.path().join("gone.xml");
    let err = fx.render().expect_err("missing source");
    assert!(
        matches!(&err, XmltvError::Source { source_id: 2, error, .. } if matches!(**error, XmltvError::Io { .. })),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("guide source 2 ("), "{err}");

    // A source cut off mid-way, between lines and inside a tag.
    let cut = fx.dir.path().join("cut.xml");
    let half = SOURCE_A.len() / 2;
    let line_end = half + SOURCE_A[half..].find('\n').expect("a later line");
    fs::write(&cut, &SOURCE_A[..=line_end]).expect("write");
    fx.sources[0].path = cut.clone();
    let err = fx.render().expect_err("truncated source");
    assert!(
        err.to_string()
            .contains("before </tv> (truncated download?)"),
        "{err}"
    );
    fs::write(&cut, &SOURCE_A[..line_end - 3]).expect("write");
    let err = fx.render().expect_err("truncated inside a tag");
    assert!(err.to_string().contains("malformed XML at line"), "{err}");

    // A source that is an HTML error page.
    let html = fx.dir.path().join("html.xml");
    fs::write(&html, "<html><body>502 Bad Gateway</body></html>").expect("write");
    fx.sources[0].path = html;
    let err = fx.render().expect_err("html source");
    assert!(
        err.to_string().contains("an HTML page, not an XMLTV guide"),
        "{err}"
    );

    assert_eq!(fs::read(fx.out().join(EPG_XML)).expect("xml"), before_xml);
    assert_eq!(fs::read(fx.out().join(EPG_XML_GZ)).expect("gz"), before_gz);
    assert_eq!(
        listing(&fx.out()),
        [EPG_XML, EPG_XML_GZ],
        "no temporary files left"
    );
}

#[test]
fn temporary_files_of_dead_processes_are_cleaned_up() {
    let fx = Fixture::new();
    // No process can have this pid (above Linux's pid_max).
    let stale = [".epg.xml.4294967000.0.tmp", ".epg.xml.gz.4294967000.3.tmp"];
    for name in stale {
        fs::write(fx.out().join(name), "junk").expect("write");
    }
    fs::write(fx.out().join("notes.txt"), "kept").expect("write");
    fx.render().expect("render");
    assert_eq!(listing(&fx.out()), [EPG_XML, EPG_XML_GZ, "notes.txt"]);
}

#[test]
fn rendering_into_a_missing_directory_fails_cleanly() {
    let fx = Fixture::new();
    let err = render(
        &fx.lineup,
        &fx.sources,
        &fx.dir.path().join("no-such-dir"),
        &Limits::default(),
    )
    .expect_err("no dir");
    assert!(matches!(err, XmltvError::Output { .. }), "{err:?}");
}

#[test]
fn oversized_programmes_are_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("big.xml");
    let long = "x".repeat(4000);
    fs::write(
        &source,
        format!(
            "<tv><channel id='c'><display-name>C</display-name></channel>\
             <programme start='20240101000000' channel='c'><title>Big</title><desc>{long}</desc><desc>{long}</desc></programme>\
             <programme start='20240101010000' channel='c'><title>Small</title></programme></tv>"
        ),
    )
    .expect("write");
    let limits = Limits {
        max_programme_bytes: 6000,
        ..Limits::default()
    };
    let report = render(
        &[lineup_channel(1, "c", "1", "C")],
        &[SourceFile {
            source_id: 1,
            path: source,
            shift_seconds: 0,
        }],
        dir.path(),
        &limits,
    )
    .expect("render");
    assert_eq!((report.programmes, report.skipped_invalid), (1, 1));
    assert!(read_epg(dir.path()).contains("<title>Small</title>"));
}

/// `tv_validate_file` (Debian xmltv-util) must accept the rendered EPG, apart from `invalidid`
/// for numeric channel ids, which is the id convention Plex needs.
#[test]
fn rendered_epg_passes_tv_validate_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("source.xml.gz");
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    write_guide(&mut gz, 12, 200_000).expect("generate");
    fs::write(&source, gz.finish().expect("gzip")).expect("write");
    let fx = Fixture::new();
    let mut lineup: Vec<LineupChannel> = (0..12)
        .map(|n| {
            lineup_channel(
                7,
                &format!("ch{n}.example"),
                &(100 + n).to_string(),
                &format!("Channel {n} & Co"),
            )
        })
        .collect();
    // The fixture's tricky programmes (reordering, dropped children, escaping, Latin-1), under
    // ids of their own.
    lineup.extend(fx.lineup.iter().take(3).map(|c| LineupChannel {
        output_id: format!("9{}", c.output_id),
        ..c.clone()
    }));
    let mut sources = fx.sources.clone();
    sources.push(SourceFile {
        source_id: 7,
        path: source,
        shift_seconds: -1800,
    });
    let out = dir.path().join("out");
    fs::create_dir(&out).expect("out");
    let report = render(&lineup, &sources, &out, &Limits::default()).expect("render");
    assert_eq!(report.channels, 15);
    assert!(read_epg(&out).contains("<credits><director>"));

    // The DTD that xmltv-util installs; without it the tool tries to download one.
    let dtd = Path::new("/usr/share/xmltv/xmltv.dtd");
    let result = Command::new("tv_validate_file")
        .arg("--dtd-file")
        .arg(dtd)
        .arg(out.join(EPG_XML))
        .output();
    let output = match result {
        Ok(output) => output,
        Err(e) => panic!(
            "cannot run tv_validate_file ({e}): install it with `apt-get install -y xmltv-util`"
        ),
    };
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
    assert!(
        stdout.contains("Invalid channel-id '100'"),
        "numeric ids are reported: {stdout}"
    );
}

#[test]
fn generated_five_megabyte_guide_scans_and_renders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut plain = Vec::new();
    let written = write_guide(&mut plain, 50, 5 * 1024 * 1024).expect("generate");
    assert!(written.bytes >= 5 * 1024 * 1024);

    let scan = read_channels(plain.as_slice(), &Limits::default()).expect("scan");
    assert_eq!(scan.channels.len(), 50);
    assert_eq!(scan.programmes, written.programmes);
    assert_eq!(
        (
            scan.bad_timestamps,
            scan.bad_stops,
            scan.duplicate_channel_ids
        ),
        (0, 0, 0)
    );
    assert_eq!(scan.unknown_channel_programmes, 0);
    let per_channel: u64 = scan.channels.iter().map(|c| c.programmes).sum();
    assert_eq!(per_channel, written.programmes);
    assert_eq!(scan.channels[7].id, "ch7.example");
    assert_eq!(scan.channels[7].number.as_deref(), Some("107"));
    assert_eq!(scan.channels[7].display_names, ["Channel 7", "107"]);
    assert_eq!(
        scan.channels[7].icon.as_deref(),
        Some("http://logos.example/7.png?size=big&v=2")
    );

    // The same guide gzipped, rendered for ten of its channels.
    let source = dir.path().join("guide");
    fs::write(&source, gzip(&plain)).expect("write");
    let gz_scan = read_channels(
        open_source(&source, &Limits::default()).expect("open"),
        &Limits::default(),
    )
    .expect("scan gz");
    assert_eq!(gz_scan, scan);

    let lineup: Vec<LineupChannel> = scan
        .channels
        .iter()
        .take(10)
        .map(|c| {
            lineup_channel(
                1,
                &c.id,
                c.number.as_deref().unwrap_or_default(),
                &c.display_names[0],
            )
        })
        .collect();
    let report = render(
        &lineup,
        &[SourceFile {
            source_id: 1,
            path: source,
            shift_seconds: 0,
        }],
        dir.path(),
        &Limits::default(),
    )
    .expect("render");
    let expected: u64 = scan.channels.iter().take(10).map(|c| c.programmes).sum();
    assert_eq!(report.channels, 10);
    assert_eq!(report.programmes, expected);
    let xml = read_epg(dir.path());
    let elems = parse_epg(&xml);
    assert_eq!(
        elems.iter().filter(|e| e.name == "programme").count() as u64,
        expected
    );
    // Output times are normalised to the full form.
    assert!(
        elems
            .iter()
            .filter_map(|e| e.attr("start"))
            .all(|s| XmltvTime::parse(s).map(|t| t.to_string()).as_deref() == Some(s))
    );
}

/// Mutated guides never panic, and a guide that scans also renders (the promise that lets the
/// caller store channels only from guides it will be able to serve).
#[test]
fn mutated_guides_fail_cleanly_and_scanning_predicts_rendering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("mutated.xml");
    let lineup = [
        lineup_channel(1, "a1", "1", "A"),
        lineup_channel(1, "a2", "2", "B"),
    ];
    let sources = [SourceFile {
        source_id: 1,
        path: source.clone(),
        shift_seconds: -7200,
    }];
    // One to four edits of SOURCE_A: replace, remove, insert or truncate at a random place.
    let edit = (
        0..4u8,
        any::<Index>(),
        select(&b"<>&\"'/=;#x \n\xE9\xFF\x00"[..]),
        select(&b"<>&\"'/ab"[..]),
    );
    let doc = vec(edit, 1..=4).prop_map(|edits| {
        let mut doc = SOURCE_A.as_bytes().to_vec();
        for (op, at, replacement, inserted) in edits {
            if doc.is_empty() {
                break;
            }
            let at = at.index(doc.len());
            match op {
                0 => doc[at] = replacement,
                1 => {
                    doc.remove(at);
                }
                2 => doc.insert(at, inserted),
                _ => doc.truncate(at),
            }
        }
        doc
    });
    // Rendering is slower (two fsyncs): check a quarter of them, and every one that scanned.
    let input = (doc, proptest::bool::weighted(0.25));
    let (scanned, rendered) = (Cell::new(0), Cell::new(0));
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&input, |(doc, render_anyway)| {
            let scan = read_channels(doc.as_slice(), &Limits::default());
            if scan.is_ok() {
                scanned.set(scanned.get() + 1);
            }
            if scan.is_ok() || render_anyway {
                fs::write(&source, &doc).expect("write");
                let result = render(&lineup, &sources, dir.path(), &Limits::default());
                if scan.is_ok() {
                    let report = result.map_err(|e| {
                        TestCaseError::fail(format!(
                            "scanned but did not render: {e}\n{}",
                            String::from_utf8_lossy(&doc)
                        ))
                    })?;
                    parse_epg(&read_epg(dir.path()));
                    rendered.set(rendered.get() + report.programmes);
                }
            }
            Ok(())
        })
        .unwrap();
    let (scanned, rendered) = (scanned.get(), rendered.get());
    assert!(
        scanned > 20,
        "some mutations keep the guide valid ({scanned})"
    );
    assert!(rendered > 0);
}

/// Found by the xmltv fuzz target: a text child written in empty-element form (`<category/>`)
/// was copied as an unclosed start tag, which broke the whole served EPG.
#[test]
fn an_empty_element_child_is_written_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("a.xml");
    fs::write(
        &source,
        r#"<tv><channel id="a"><display-name>A</display-name></channel>
<programme start="20261120000000 +0000" channel="a"><title>T</title><category/><sub-title lang="en"/><credits/></programme></tv>"#,
    )
    .expect("write");
    let out = dir.path().join("out");
    fs::create_dir(&out).expect("out dir");
    let lineup = [lineup_channel(1, "a", "101", "A")];
    let sources = [SourceFile {
        source_id: 1,
        path: source,
        shift_seconds: 0,
    }];
    let report = render(&lineup, &sources, &out, &Limits::default()).expect("render");
    assert_eq!(report.programmes, 1);
    let xml = read_epg(&out);
    assert!(xml.contains("<category/>"), "{xml}");
    let again = read_channels(xml.as_bytes(), &Limits::default()).expect("the EPG reads back");
    assert_eq!((again.channels.len(), again.programmes), (1, 1));
}
