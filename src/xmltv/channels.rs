//! Guide ingest: the `<channel>` elements of a guide, read in one streaming pass.
//!
//! Programmes are counted and their times checked, never stored. The whole document is still
//! parsed, so a guide that scans without error will also render.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::BufRead;

use quick_xml::events::BytesStart;

use super::Limits;
use super::error::{XmltvError, human_bytes};
use super::stream::{Tok, XmlStream};
use super::text::{attrs, push_capped, push_ref, trim};
use super::time::XmltvTime;

/// One `<channel>` of a guide.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuideChannel {
    /// The `id` attribute, which programmes refer to.
    pub id: String,
    /// Non-empty display names in document order (at most [`Limits::max_display_names`]).
    pub display_names: Vec<String>,
    /// The first `<icon src>`.
    pub icon: Option<String>,
    /// The first numeric display-name ("101", "4.1"), else a numeric `<lcn>`.
    pub number: Option<String>,
    /// Programmes for this channel that follow its `<channel>` element.
    pub programmes: u64,
}

/// What a guide holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuideScan {
    /// Channels in document order; for a repeated id the first one wins.
    pub channels: Vec<GuideChannel>,
    /// All `<programme>` elements.
    pub programmes: u64,
    /// Programmes with a missing or invalid `start`: rendering skips them.
    pub bad_timestamps: u64,
    /// Programmes with an invalid `stop`: rendering drops the stop, keeps the programme.
    pub bad_stops: u64,
    /// The latest end of a programme (its stop, else its start), as Unix seconds: how far
    /// ahead the guide reaches.
    pub programmes_until: Option<i64>,
    /// Programmes whose channel has no `<channel>` before them.
    pub unknown_channel_programmes: u64,
    /// `<channel>` elements whose id was already seen (ignored).
    pub duplicate_channel_ids: u64,
    /// `<channel>` elements without a usable id (ignored).
    pub invalid_channels: u64,
}

/// Reads the channels of the guide in `reader`, plain or gzipped ([`super::open_source`] opens
/// a file).
pub fn read_channels<R: BufRead>(reader: R, limits: &Limits) -> Result<GuideScan, XmltvError> {
    let mut xml = XmlStream::new(reader, limits)?;
    let mut found = Found::default();
    loop {
        let top = xml.depth() == 0;
        match xml.next()? {
            Tok::Eof => return Ok(found.scan),
            Tok::Start(e) if top && e.name().as_ref() == "channel" => {
                let id = channel_id(&e, limits).map_err(|r| xml.malformed(r))?;
                let channel = read_channel(&mut xml, id, limits)?;
                found.channel(channel, limits, xml.line())?;
            }
            Tok::Empty(e) if top && e.name().as_ref() == "channel" => {
                // No display-name: invalid, but the id is still worth keeping.
                let id = channel_id(&e, limits).map_err(|r| xml.malformed(r))?;
                let channel = id.map(|id| GuideChannel {
                    id,
                    ..GuideChannel::default()
                });
                found.channel(channel, limits, xml.line())?;
            }
            Tok::Start(e) if top => {
                if e.name().as_ref() == "programme" {
                    found.programme(&e).map_err(|r| xml.malformed(r))?;
                }
                xml.skip_element()?;
            }
            Tok::Empty(e) if top && e.name().as_ref() == "programme" => {
                found.programme(&e).map_err(|r| xml.malformed(r))?;
            }
            _ => {}
        }
    }
}

/// The usable id of a channel start tag: `Ok(None)` if missing, blank or over the text limit.
fn channel_id(e: &BytesStart<'_>, limits: &Limits) -> Result<Option<String>, String> {
    let [id] = attrs(e, ["id"])?;
    Ok(id
        .map(|id| trim(&id).to_owned())
        .filter(|id| !id.is_empty() && id.len() <= limits.max_text_bytes))
}

/// The scan so far, with the index of channel ids and the bytes of channel text kept.
#[derive(Default)]
struct Found {
    scan: GuideScan,
    index: HashMap<String, usize>,
    kept_bytes: usize,
}

impl Found {
    fn channel(
        &mut self,
        channel: Option<GuideChannel>,
        limits: &Limits,
        line: u64,
    ) -> Result<(), XmltvError> {
        let Some(channel) = channel else {
            self.scan.invalid_channels += 1;
            return Ok(());
        };
        let Entry::Vacant(slot) = self.index.entry(channel.id.clone()) else {
            self.scan.duplicate_channel_ids += 1;
            return Ok(());
        };
        // The id is held twice: in the channel and in the index.
        let size = 2 * channel.id.len()
            + channel.display_names.iter().map(String::len).sum::<usize>()
            + channel.icon.as_ref().map_or(0, String::len)
            + channel.number.as_ref().map_or(0, String::len);
        self.kept_bytes = self.kept_bytes.saturating_add(size);
        let what = if self.scan.channels.len() >= limits.max_channels {
            format!("more than {} channels", limits.max_channels)
        } else if self.kept_bytes > limits.max_channel_bytes {
            format!(
                "more than {} of channel names, ids and icons",
                human_bytes(limits.max_channel_bytes as u64)
            )
        } else {
            slot.insert(self.scan.channels.len());
            self.scan.channels.push(channel);
            return Ok(());
        };
        Err(XmltvError::Limit { line, what })
    }

    fn programme(&mut self, e: &BytesStart<'_>) -> Result<(), String> {
        let [channel, start, stop] = attrs(e, ["channel", "start", "stop"])?;
        let scan = &mut self.scan;
        scan.programmes += 1;
        let start = start.as_deref().and_then(XmltvTime::parse);
        if start.is_none() {
            scan.bad_timestamps += 1;
        }
        let stop = match stop {
            Some(stop) => {
                let parsed = XmltvTime::parse(&stop);
                scan.bad_stops += u64::from(parsed.is_none());
                parsed
            }
            None => None,
        };
        if let Some(start) = start {
            let end = stop.unwrap_or(start).unix().max(start.unix());
            scan.programmes_until = scan.programmes_until.max(Some(end));
        }
        match channel
            .and_then(|c| self.index.get(c.as_ref()).copied())
            .and_then(|i| scan.channels.get_mut(i))
        {
            Some(channel) => channel.programmes += 1,
            None => scan.unknown_channel_programmes += 1,
        }
        Ok(())
    }
}

/// Reads the children of a `<channel>` whose start tag was just returned.
fn read_channel<R: BufRead>(
    xml: &mut XmlStream<R>,
    id: Option<String>,
    limits: &Limits,
) -> Result<Option<GuideChannel>, XmltvError> {
    let mut channel = GuideChannel::default();
    let mut lcn = None;
    loop {
        let child = xml.depth() == 1;
        match xml.next()? {
            Tok::End(_) if child => break,
            Tok::Eof => break,
            Tok::Start(e) if child => match e.name().as_ref() {
                "display-name" => {
                    let name = element_text(xml, limits.max_text_bytes)?;
                    if !name.is_empty() && channel.display_names.len() < limits.max_display_names {
                        channel.display_names.push(name);
                    }
                }
                "lcn" => {
                    let number = element_text(xml, limits.max_text_bytes)?;
                    lcn = lcn.or(Some(number));
                }
                "icon" => {
                    let src = icon_src(&e, limits).map_err(|r| xml.malformed(r))?;
                    channel.icon = channel.icon.or(src);
                    xml.skip_element()?;
                }
                _ => xml.skip_element()?,
            },
            Tok::Empty(e) if child && e.name().as_ref() == "icon" => {
                let src = icon_src(&e, limits).map_err(|r| xml.malformed(r))?;
                channel.icon = channel.icon.or(src);
            }
            _ => {}
        }
    }
    channel.number = channel
        .display_names
        .iter()
        .find(|name| is_channel_number(name))
        .cloned()
        .or(lcn.filter(|n| is_channel_number(n)));
    Ok(id.map(|id| GuideChannel { id, ..channel }))
}

fn icon_src(e: &BytesStart<'_>, limits: &Limits) -> Result<Option<String>, String> {
    let [src] = attrs(e, ["src"])?;
    Ok(src
        .map(|src| trim(&src).to_owned())
        .filter(|src| !src.is_empty() && src.len() <= limits.max_text_bytes))
}

/// "101", "4.1": digits, optionally one dot and more digits (ATSC major.minor).
fn is_channel_number(s: &str) -> bool {
    let mut parts = s.split('.');
    let is_digits = |p: Option<&str>| {
        p.is_some_and(|p| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
    };
    let major = parts.next();
    match parts.next() {
        None => is_digits(major),
        minor => is_digits(major) && is_digits(minor) && parts.next().is_none(),
    }
}

/// The text content of the element whose start tag was just returned (nested elements'
/// text included), trimmed and capped at `max` bytes.
fn element_text<R: BufRead>(xml: &mut XmlStream<R>, max: usize) -> Result<String, XmltvError> {
    let open = xml.depth();
    let mut text = String::new();
    let mut reference = String::new();
    while xml.depth() >= open {
        match xml.next()? {
            Tok::Text(t) | Tok::CData(t) => push_capped(&mut text, &t, max),
            Tok::Ref(name) => {
                reference.clear();
                push_ref(&mut reference, &name);
                push_capped(&mut text, &reference, max);
            }
            Tok::Eof => break,
            _ => {}
        }
    }
    Ok(trim(&text).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(doc: &str) -> Result<GuideScan, XmltvError> {
        read_channels(doc.as_bytes(), &Limits::default())
    }

    const GUIDE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE tv SYSTEM "xmltv.dtd">
<tv generator-info-name="test">
  <!-- a comment -->
  <channel id="bbc1.uk">
    <display-name lang="en">BBC One</display-name>
    <display-name>101</display-name>
    <display-name>  </display-name>
    <icon src="http://img/bbc1.png?a=1&amp;b=2"/>
    <icon src="http://img/second.png"/>
    <url>http://bbc.co.uk</url>
  </channel>
  <channel id="itv.uk">
    <display-name>ITV &amp; Friends</display-name>
    <lcn>103</lcn>
  </channel>
  <channel id="atsc">
    <display-name>KABC</display-name>
    <display-name>7.1</display-name>
    <lcn>9</lcn>
  </channel>
  <channel id="bbc1.uk"><display-name>Duplicate</display-name></channel>
  <channel><display-name>No id</display-name></channel>
  <channel id="bad-lcn"><display-name>X</display-name><lcn>channel 5</lcn></channel>
  <programme start="20240101060000 +0000" stop="20240101070000 +0000" channel="bbc1.uk">
    <title>Breakfast</title><desc>News &amp; weather</desc>
  </programme>
  <programme start="20241301060000 +0000" channel="bbc1.uk"><title>Bad month</title></programme>
  <programme start="20240101070000 +0000" stop="garbage" channel="itv.uk"><title>T</title></programme>
  <programme channel="itv.uk"><title>No start</title></programme>
  <programme start="20240101070000" channel="nowhere"><title>T</title></programme>
</tv>
"#;

    #[test]
    fn extracts_channels_numbers_icons_and_counts() {
        let scan = scan(GUIDE).expect("valid guide");
        let ids: Vec<&str> = scan.channels.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["bbc1.uk", "itv.uk", "atsc", "bad-lcn"]);

        let bbc = &scan.channels[0];
        assert_eq!(bbc.display_names, ["BBC One", "101"]);
        assert_eq!(bbc.number.as_deref(), Some("101"));
        assert_eq!(bbc.icon.as_deref(), Some("http://img/bbc1.png?a=1&b=2"));
        assert_eq!(bbc.programmes, 2);

        let itv = &scan.channels[1];
        assert_eq!(itv.display_names, ["ITV & Friends"]);
        assert_eq!(itv.number.as_deref(), Some("103"), "number from <lcn>");
        assert_eq!(itv.icon, None);
        assert_eq!(itv.programmes, 2);

        // A numeric display-name wins over the lcn.
        assert_eq!(scan.channels[2].number.as_deref(), Some("7.1"));
        assert_eq!(scan.channels[3].number, None);

        assert_eq!(scan.duplicate_channel_ids, 1);
        assert_eq!(scan.invalid_channels, 1);
        assert_eq!(scan.programmes, 5);
        assert_eq!(scan.bad_timestamps, 2);
        assert_eq!(scan.bad_stops, 1);
        // The last valid programme ends 2024-01-01T07:00Z; the bad ones do not count.
        assert_eq!(scan.programmes_until, Some(1_704_092_400));
        assert_eq!(scan.unknown_channel_programmes, 1);
    }

    #[test]
    fn channel_numbers() {
        for good in ["1", "101", "4.1", "0999"] {
            assert!(is_channel_number(good), "{good}");
        }
        for bad in [
            "",
            "1.",
            ".1",
            "4.1.2",
            "10 1",
            "BBC 1",
            "１",
            "-1",
            "12345678901",
        ] {
            assert!(!is_channel_number(bad), "{bad}");
        }
    }

    #[test]
    fn empty_root_and_cdata_and_references() {
        let scan = scan("<tv/>").expect("empty tv");
        assert_eq!(scan, GuideScan::default());
        let doc = "<tv><channel id='c'><display-name><![CDATA[A <b> & ]]>&#233;&nbsp;AT&T</display-name></channel></tv>";
        let scan = super::super::read_channels(doc.as_bytes(), &Limits::default()).expect("ok");
        assert_eq!(scan.channels[0].display_names, ["A <b> & é&nbsp;AT&T"]);
    }

    #[test]
    fn long_names_are_capped_and_huge_tokens_refused() {
        let limits = Limits {
            max_text_bytes: 16,
            max_token_bytes: 64 * 1024,
            ..Limits::default()
        };
        let doc = format!(
            "<tv><channel id='c'><display-name>{}</display-name></channel></tv>",
            "é".repeat(100)
        );
        let scan = read_channels(doc.as_bytes(), &limits).expect("capped");
        assert_eq!(scan.channels[0].display_names, ["é".repeat(8)]);

        let doc = format!(
            "<tv><channel id='c'><display-name>{}</display-name></channel></tv>",
            "x".repeat(10 * 1024 * 1024)
        );
        let err = read_channels(doc.as_bytes(), &limits).expect_err("10 MB name");
        assert!(
            matches!(&err, XmltvError::Limit { line: 1, what } if what.contains("64 KiB")),
            "{err:?}"
        );
    }

    #[test]
    fn too_many_channels_and_too_deep_are_limits() {
        let limits = Limits {
            max_channels: 2,
            ..Limits::default()
        };
        let doc = "<tv><channel id='a'/><channel id='b'/><channel id='c'/></tv>";
        let err = read_channels(doc.as_bytes(), &limits).expect_err("3 channels");
        assert_eq!(err.to_string(), "line 1: more than 2 channels");
        let limits = Limits {
            max_channel_bytes: 1024,
            ..Limits::default()
        };
        let doc: String = (0..100)
            .map(|n| {
                format!(
                    "<channel id='c{n}'><display-name>Channel number {n}</display-name></channel>\n"
                )
            })
            .collect();
        let err = read_channels(format!("<tv>\n{doc}</tv>").as_bytes(), &limits)
            .expect_err("too much channel text");
        assert!(
            err.to_string()
                .ends_with("more than 1 KiB of channel names, ids and icons"),
            "{err}"
        );
        let limits = Limits {
            max_depth: 4,
            ..Limits::default()
        };
        let doc = "<tv>\n<a><b><c><d><e></e></d></c></b></a></tv>";
        let err = read_channels(doc.as_bytes(), &limits).expect_err("deep");
        assert_eq!(err.to_string(), "line 2: elements nested deeper than 4");
    }

    #[test]
    fn broken_input_gives_clear_errors_with_lines() {
        let cases: [(&[u8], &str); 9] = [
            (b"", "the guide is empty"),
            (b" \n\t\n", "the guide is empty"),
            (
                b"<!DOCTYPE html>\n<html><body><h1>404 Not Found</h1>",
                "an HTML page, not an XMLTV guide (line 1)",
            ),
            (
                b"<?xml version=\"1.0\"?>\n<rss><channel/></rss>",
                "not an XMLTV guide: the root element at line 2 is <rss>, not <tv>",
            ),
            (
                b"<tv>\n<channel id='a'>\n<display-name>A</display-name>\n</chanel>\n</tv>",
                "malformed XML at line 4",
            ),
            (
                b"<tv>\n<channel id='a'>\n",
                "the guide ends at line 3 before </tv> (truncated download?)",
            ),
            (
                b"Service Unavailable",
                "not XML at line 1: text where the first element should be",
            ),
            (
                b"<tv></tv>\n<tv></tv>",
                "malformed XML at line 2: content after the end of the </tv> root",
            ),
            (
                b"<tv>\n<channel id='a' id='b'/></tv>",
                "malformed XML at line 2: bad attribute",
            ),
        ];
        for (doc, want) in cases {
            let err = read_channels(doc, &Limits::default()).expect_err(want);
            assert!(
                err.to_string().starts_with(want),
                "{:?}: got {err}, want {want}",
                String::from_utf8_lossy(doc)
            );
        }
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        let doc = b"<tv>\n<channel id='a'>\n<display-name>caf\xE9</display-name></channel></tv>";
        let err = read_channels(&doc[..], &Limits::default()).expect_err("latin-1 bytes");
        assert_eq!(err.to_string(), "invalid UTF-8 at line 3");
        // The same bytes are fine when the guide says it is Latin-1.
        let mut latin = b"<?xml version='1.0' encoding='ISO-8859-1'?>".to_vec();
        latin.extend_from_slice(doc);
        let scan = read_channels(latin.as_slice(), &Limits::default()).expect("latin-1");
        assert_eq!(scan.channels[0].display_names, ["café"]);
    }

    #[test]
    fn gzipped_input_is_read_too() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(GUIDE.as_bytes()).expect("gzip");
        let gz = gz.finish().expect("gzip");
        assert_eq!(
            read_channels(gz.as_slice(), &Limits::default()).expect("gzip"),
            scan(GUIDE).expect("plain")
        );
    }

    #[test]
    fn bad_encoding_declaration_is_refused() {
        let doc = b"<?xml version='1.0' encoding='EBCDIC-US'?><tv/>";
        let err = read_channels(&doc[..], &Limits::default()).expect_err("ebcdic");
        assert!(
            err.to_string()
                .starts_with("unsupported encoding EBCDIC-US"),
            "{err}"
        );
    }
}
