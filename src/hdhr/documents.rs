//! The HDHomeRun HTTP documents and the extended M3U (PROTOCOLS §1 and §6), as pure renderers.
//!
//! JSON goes through serde_json (flags are integers left out when false, `TunerCount` an integer),
//! XML text is escaped and stripped of characters XML 1.0 forbids, and M3U attribute values lose
//! the quotes and line breaks that would end them early. Guide numbers are a checked type, so no
//! document can carry a `_` (Jellyfin splits its channel ids on it) or a character unsafe in a URL.

use std::fmt;
use std::fmt::Write as _;
use std::str::FromStr;

use serde::Serialize;

use super::device::{Device, FIRMWARE_NAME, FIRMWARE_VERSION, MANUFACTURER, MODEL_NUMBER};

/// A channel number as clients see it (`GuideNumber`, `tvg-chno`, `/auto/v<number>`): 1 to 32
/// ASCII letters, digits, `.` or `-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct GuideNumber(String);

/// Why a guide number was refused; carries the refused text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuideNumberError {
    #[error("guide number {0:?} contains '_' (Jellyfin splits channel ids on it); use '.' instead")]
    Underscore(String),
    #[error("guide number {0:?} must be 1 to 32 ASCII letters, digits, '.' or '-'")]
    Invalid(String),
}

impl GuideNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for GuideNumber {
    type Err = GuideNumberError;

    fn from_str(s: &str) -> Result<GuideNumber, GuideNumberError> {
        let ok = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if ok {
            Ok(GuideNumber(s.to_owned()))
        } else if s.contains('_') {
            Err(GuideNumberError::Underscore(s.to_owned()))
        } else {
            Err(GuideNumberError::Invalid(s.to_owned()))
        }
    }
}

impl fmt::Display for GuideNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One channel of `/lineup.json` and `/lineup.xml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineupEntry {
    pub number: GuideNumber,
    pub name: String,
    /// An `http://` stream URL, e.g. `http://192.168.1.50:5004/auto/v101`.
    pub url: String,
    pub hd: bool,
    pub favorite: bool,
}

/// One channel of the M3U playlist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct M3uEntry {
    /// The EPG channel id (the number by default, SPEC §6).
    pub tvg_id: String,
    pub tvg_chno: GuideNumber,
    /// Also the title after the comma.
    pub tvg_name: String,
    /// Empty: attribute left out.
    pub tvg_logo: String,
    /// Empty: attribute left out.
    pub group_title: String,
    pub url: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Discover<'a> {
    friendly_name: &'a str,
    model_number: &'a str,
    firmware_name: &'a str,
    firmware_version: &'a str,
    #[serde(rename = "DeviceID")]
    device_id: String,
    device_auth: &'a str,
    #[serde(rename = "BaseURL")]
    base_url: &'a str,
    #[serde(rename = "LineupURL")]
    lineup_url: String,
    tuner_count: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LineupStatus {
    scan_in_progress: u8,
    scan_possible: u8,
    source: &'static str,
    source_list: [&'static str; 2],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Program<'a> {
    guide_number: &'a GuideNumber,
    guide_name: &'a str,
    #[serde(rename = "HD", skip_serializing_if = "Option::is_none")]
    hd: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    favorite: Option<u8>,
    #[serde(rename = "URL")]
    url: &'a str,
}

/// Serialising these plain structs cannot fail; an empty body would be the symptom if it did.
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn flag(on: bool) -> Option<u8> {
    on.then_some(1)
}

/// `/discover.json`.
pub fn discover_json(device: &Device) -> String {
    json(&Discover {
        friendly_name: &device.friendly_name,
        model_number: MODEL_NUMBER,
        firmware_name: FIRMWARE_NAME,
        firmware_version: FIRMWARE_VERSION,
        device_id: device.device_id.to_string(),
        device_auth: &device.device_auth,
        base_url: device.base(),
        lineup_url: device.lineup_url(),
        tuner_count: device.tuner_count,
    })
}

/// `/lineup_status.json`: always idle; a scan "completes" at once (PROTOCOLS §1.4).
pub fn lineup_status_json() -> String {
    json(&LineupStatus {
        scan_in_progress: 0,
        scan_possible: 1,
        source: "Cable",
        source_list: ["Antenna", "Cable"],
    })
}

/// `/lineup.json`.
pub fn lineup_json(entries: &[LineupEntry]) -> String {
    let programs: Vec<Program<'_>> = entries
        .iter()
        .map(|e| Program {
            guide_number: &e.number,
            guide_name: &e.name,
            hd: flag(e.hd),
            favorite: flag(e.favorite),
            url: &e.url,
        })
        .collect();
    json(&programs)
}

/// `/lineup.xml`: the same channels and fields as `/lineup.json`.
pub fn lineup_xml(entries: &[LineupEntry]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Lineup>\n");
    for e in entries {
        out.push_str("<Program>");
        element(&mut out, "GuideNumber", e.number.as_str());
        element(&mut out, "GuideName", &e.name);
        if e.hd {
            element(&mut out, "HD", "1");
        }
        if e.favorite {
            element(&mut out, "Favorite", "1");
        }
        element(&mut out, "URL", &e.url);
        out.push_str("</Program>\n");
    }
    out.push_str("</Lineup>\n");
    out
}

/// `/device.xml`, the UPnP description SSDP points at (PROTOCOLS §1.5).
pub fn device_xml(device: &Device) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <root xmlns=\"urn:schemas-upnp-org:device-1-0\">\n\
         <specVersion><major>1</major><minor>0</minor></specVersion>\n",
    );
    element(&mut out, "URLBase", device.base());
    out.push_str("\n<device>\n");
    element(&mut out, "deviceType", super::ssdp::MEDIA_SERVER);
    out.push('\n');
    element(&mut out, "friendlyName", &device.friendly_name);
    out.push('\n');
    element(&mut out, "manufacturer", MANUFACTURER);
    out.push('\n');
    element(&mut out, "modelName", MODEL_NUMBER);
    element(&mut out, "modelNumber", MODEL_NUMBER);
    out.push('\n');
    element(&mut out, "serialNumber", "");
    out.push('\n');
    element(&mut out, "UDN", &device.udn());
    out.push_str("\n</device>\n</root>\n");
    out
}

/// The extended M3U (`/playlist.m3u`), pointing players at `epg_url` for the guide.
pub fn playlist_m3u(entries: &[M3uEntry], epg_url: &str) -> String {
    let epg = attribute_value(epg_url);
    let mut out = format!("#EXTM3U url-tvg=\"{epg}\" x-tvg-url=\"{epg}\"\n");
    for e in entries {
        out.push_str("#EXTINF:-1");
        attribute(&mut out, "tvg-id", &e.tvg_id);
        attribute(&mut out, "tvg-name", &e.tvg_name);
        attribute(&mut out, "tvg-logo", &e.tvg_logo);
        attribute(&mut out, "tvg-chno", e.tvg_chno.as_str());
        attribute(&mut out, "group-title", &e.group_title);
        let _ = writeln!(out, ",{}", one_line(&e.tvg_name));
        let _ = writeln!(out, "{}", one_line(&e.url));
    }
    out
}

/// ` name="value"`, left out when the cleaned value is empty (players ignore empty values anyway).
fn attribute(out: &mut String, name: &str, value: &str) {
    let value = attribute_value(value);
    if !value.is_empty() {
        let _ = write!(out, " {name}=\"{value}\"");
    }
}

/// A value that cannot end its quoted attribute or its line early.
fn attribute_value(value: &str) -> String {
    one_line(value).replace('"', "'")
}

/// Control characters (line breaks included) become spaces; surrounding space is trimmed.
fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

fn element(out: &mut String, name: &str, text: &str) {
    let _ = write!(out, "<{name}>");
    escape_xml(out, text);
    let _ = write!(out, "</{name}>");
}

/// Escapes markup characters and drops characters that XML 1.0 does not allow at all.
fn escape_xml(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hdhr::device_id::DeviceId;
    use serde_json::{Value, json};

    fn device() -> Device {
        Device::new(
            "My \"Tuner\" <&>",
            "10AB1237".parse::<DeviceId>().unwrap(),
            "http://192.168.1.50:5004/",
            4,
        )
    }

    fn number(s: &str) -> GuideNumber {
        s.parse().unwrap()
    }

    fn entries() -> Vec<LineupEntry> {
        vec![
            LineupEntry {
                number: number("4.1"),
                name: "WDAF-DT".into(),
                url: "http://10.0.0.5:5004/auto/v4.1".into(),
                hd: true,
                favorite: true,
            },
            LineupEntry {
                number: number("101"),
                name: "News & <More>".into(),
                url: "http://10.0.0.5:5004/auto/v101".into(),
                hd: false,
                favorite: false,
            },
        ]
    }

    #[test]
    fn discover_json_has_every_field_with_the_right_types() {
        let value: Value = serde_json::from_str(&discover_json(&device())).unwrap();
        assert_eq!(
            value,
            json!({
                "FriendlyName": "My \"Tuner\" <&>",
                "ModelNumber": "HDTC-2US",
                "FirmwareName": "hdhomeruntc_atsc",
                "FirmwareVersion": "20150826",
                "DeviceID": "10AB1237",
                "DeviceAuth": "streamforge-10AB1237",
                "BaseURL": "http://192.168.1.50:5004",
                "LineupURL": "http://192.168.1.50:5004/lineup.json",
                "TunerCount": 4
            })
        );
        assert!(value["TunerCount"].is_u64());
    }

    #[test]
    fn lineup_status_is_idle() {
        assert_eq!(
            lineup_status_json(),
            r#"{"ScanInProgress":0,"ScanPossible":1,"Source":"Cable","SourceList":["Antenna","Cable"]}"#
        );
    }

    #[test]
    fn lineup_json_has_integer_flags_left_out_when_false() {
        let text = lineup_json(&entries());
        assert_eq!(
            text,
            r#"[{"GuideNumber":"4.1","GuideName":"WDAF-DT","HD":1,"Favorite":1,"URL":"http://10.0.0.5:5004/auto/v4.1"},{"GuideNumber":"101","GuideName":"News & <More>","URL":"http://10.0.0.5:5004/auto/v101"}]"#
        );
        let value: Value = serde_json::from_str(&text).unwrap();
        assert!(value[0]["HD"].is_u64() && value[0]["Favorite"].is_u64());
        assert!(value[0]["GuideNumber"].is_string());
        assert_eq!(lineup_json(&[]), "[]");
    }

    #[test]
    fn guide_numbers_refuse_underscores_and_unsafe_characters() {
        let err = "4_1".parse::<GuideNumber>().unwrap_err();
        assert!(err.to_string().contains("'_'"), "{err}");
        assert_eq!(
            "1 2".parse::<GuideNumber>().unwrap_err().to_string(),
            "guide number \"1 2\" must be 1 to 32 ASCII letters, digits, '.' or '-'"
        );
        for bad in ["", "1 2", "4/1", "1?x", "é", "\"1\"", &"9".repeat(33)] {
            assert!(bad.parse::<GuideNumber>().is_err(), "{bad:?}");
        }
        for good in ["1", "4.1", "101", "A-1", &"9".repeat(32)] {
            assert_eq!(
                good.parse::<GuideNumber>()
                    .map(|n| n.to_string())
                    .as_deref(),
                Ok(good)
            );
        }
    }

    #[test]
    fn lineup_xml_escapes_and_matches_the_json() {
        let xml = lineup_xml(&entries());
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Lineup>\n\
             <Program><GuideNumber>4.1</GuideNumber><GuideName>WDAF-DT</GuideName><HD>1</HD><Favorite>1</Favorite><URL>http://10.0.0.5:5004/auto/v4.1</URL></Program>\n\
             <Program><GuideNumber>101</GuideNumber><GuideName>News &amp; &lt;More&gt;</GuideName><URL>http://10.0.0.5:5004/auto/v101</URL></Program>\n\
             </Lineup>\n"
        );
        assert_well_formed(&xml);
    }

    #[test]
    fn device_xml_is_the_upnp_description() {
        let xml = device_xml(&device());
        assert_well_formed(&xml);
        for part in [
            "<root xmlns=\"urn:schemas-upnp-org:device-1-0\">",
            "<specVersion><major>1</major><minor>0</minor></specVersion>",
            "<URLBase>http://192.168.1.50:5004</URLBase>",
            "<deviceType>urn:schemas-upnp-org:device:MediaServer:1</deviceType>",
            "<friendlyName>My &quot;Tuner&quot; &lt;&amp;&gt;</friendlyName>",
            "<manufacturer>Silicondust</manufacturer>",
            "<modelName>HDTC-2US</modelName><modelNumber>HDTC-2US</modelNumber>",
            "<serialNumber></serialNumber>",
            "<UDN>uuid:10AB1237</UDN>",
        ] {
            assert!(xml.contains(part), "{part} missing from\n{xml}");
        }
    }

    #[test]
    fn xml_drops_forbidden_characters() {
        let mut out = String::new();
        escape_xml(&mut out, "a\u{0}b\u{1b}c\td\u{FFFF}'");
        assert_eq!(out, "abc\td&apos;");
    }

    /// A well-formedness check with quick-xml (already a dependency, for the EPG).
    fn assert_well_formed(xml: &str) {
        let mut reader = quick_xml::Reader::from_str(xml);
        reader.config_mut().check_end_names = true;
        let mut depth = 0i32;
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Start(_)) => depth += 1,
                Ok(quick_xml::events::Event::End(_)) => depth -= 1,
                Ok(quick_xml::events::Event::GeneralRef(r)) => {
                    let name: &str = r.as_ref();
                    assert!(
                        matches!(name, "amp" | "lt" | "gt" | "quot" | "apos"),
                        "undefined entity {name:?}\n{xml}"
                    );
                }
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("not well-formed: {e}\n{xml}"),
            }
        }
        assert_eq!(depth, 0, "unbalanced\n{xml}");
    }

    #[test]
    fn m3u_has_the_header_and_clean_attributes() {
        let entries = vec![
            M3uEntry {
                tvg_id: "101".into(),
                tvg_chno: number("101"),
                tvg_name: "BBC \"One\"\r\nHD".into(),
                tvg_logo: "http://logos/bbc.png".into(),
                group_title: "UK".into(),
                url: "http://192.168.1.50:5004/auto/v101".into(),
            },
            M3uEntry {
                tvg_id: "102".into(),
                tvg_chno: number("102"),
                tvg_name: "Two, Plus".into(),
                tvg_logo: String::new(),
                group_title: String::new(),
                url: "http://192.168.1.50:5004/auto/v102\n#EXTINF:-1,evil".into(),
            },
        ];
        let m3u = playlist_m3u(&entries, "http://192.168.1.50:5004/epg.xml");
        assert_eq!(
            m3u,
            "#EXTM3U url-tvg=\"http://192.168.1.50:5004/epg.xml\" x-tvg-url=\"http://192.168.1.50:5004/epg.xml\"\n\
             #EXTINF:-1 tvg-id=\"101\" tvg-name=\"BBC 'One'  HD\" tvg-logo=\"http://logos/bbc.png\" tvg-chno=\"101\" group-title=\"UK\",BBC \"One\"  HD\n\
             http://192.168.1.50:5004/auto/v101\n\
             #EXTINF:-1 tvg-id=\"102\" tvg-name=\"Two, Plus\" tvg-chno=\"102\",Two, Plus\n\
             http://192.168.1.50:5004/auto/v102 #EXTINF:-1,evil\n"
        );
        // Every entry is exactly two lines: nothing broke a line early.
        assert_eq!(m3u.lines().count(), 1 + 2 * entries.len());
    }
}
