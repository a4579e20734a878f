//! The catalog (categories and live streams) and the panel's JSON, typed the inconsistent way real
//! panels type it: numbers as strings here, integers there, nulls and empty strings mixed.

use serde_json::{Value, json};

use super::{ClipKind, FakeAccount, StreamVariant};

/// A live category, as `get_live_categories` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCategory {
    pub category_id: String,
    pub category_name: String,
}

impl FakeCategory {
    pub fn new(category_id: &str, category_name: &str) -> FakeCategory {
        FakeCategory {
            category_id: category_id.to_owned(),
            category_name: category_name.to_owned(),
        }
    }
}

/// How a stream body is delimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Framing {
    /// No length, no chunking: the body ends when the connection closes (most panels).
    #[default]
    Close,
    /// `Transfer-Encoding: chunked` (some CDNs).
    Chunked,
}

/// A live stream of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeStream {
    pub stream_id: u64,
    pub name: String,
    pub category_id: String,
    pub epg_channel_id: Option<String>,
    pub icon: Option<String>,
    pub framing: Framing,
    /// What the body sends: the clip, or a variant of it.
    pub variant: StreamVariant,
}

impl FakeStream {
    /// A close-delimited stream of the plain clip, with no guide id and no icon.
    pub fn new(stream_id: u64, name: &str, category_id: &str) -> FakeStream {
        FakeStream {
            stream_id,
            name: name.to_owned(),
            category_id: category_id.to_owned(),
            epg_channel_id: None,
            icon: None,
            framing: Framing::Close,
            variant: StreamVariant::default(),
        }
    }
}

/// The demo channel whose primary stream is meant to be made flaky with faults.
pub const DEMO_PRIMARY_STREAM: u64 = 101;
/// The backup stream of the same channel (same guide id, lower quality).
pub const DEMO_BACKUP_STREAM: u64 = 102;

/// The demo backup as another encoder sends it: its own recording (keyframes every 1.6 s, not
/// every second), other PMT and elementary PIDs, an audio language, and an unrelated clock (which
/// wraps its 33 bits about 2.4 hours in).
pub fn demo_backup_variant() -> StreamVariant {
    StreamVariant {
        clip: ClipKind::OtherEncoder,
        pmt_pid: Some(0x42),
        es_pids: vec![0x211, 0x212],
        audio_language: Some(*b"eng"),
        clock_offset: 5_000_000_000,
        ..StreamVariant::default()
    }
}

/// A handful of channels for `streamforge demo`. One channel has two streams: a primary
/// ([`DEMO_PRIMARY_STREAM`], FHD) and a backup ([`DEMO_BACKUP_STREAM`], HD) from another encoder
/// ([`demo_backup_variant`]); one stream is chunked.
pub fn demo_catalog() -> (Vec<FakeCategory>, Vec<FakeStream>) {
    let categories = vec![
        FakeCategory::new("1", "UK| GENERAL"),
        FakeCategory::new("2", "UK| NEWS"),
        FakeCategory::new("3", "UK| SPORTS"),
    ];
    let stream = |id, name, category, epg: Option<&str>, framing| FakeStream {
        epg_channel_id: epg.map(str::to_owned),
        framing,
        ..FakeStream::new(id, name, category)
    };
    let streams = vec![
        stream(
            DEMO_PRIMARY_STREAM,
            "UK: StreamForge One FHD (1080p)",
            "1",
            Some("sfone.uk"),
            Framing::Close,
        ),
        FakeStream {
            variant: demo_backup_variant(),
            ..stream(
                DEMO_BACKUP_STREAM,
                "UK: StreamForge One HD (720p)",
                "1",
                Some("sfone.uk"),
                Framing::Close,
            )
        },
        stream(
            201,
            "UK: SF News HD",
            "2",
            Some("sfnews.uk"),
            Framing::Close,
        ),
        stream(
            301,
            "UK: SF Sports FHD",
            "3",
            Some("sfsports.uk"),
            Framing::Chunked,
        ),
        stream(401, "24/7 SF Movies SD", "1", None, Framing::Close),
    ];
    (categories, streams)
}

const COUNTRIES: [(&str, &str); 6] = [
    ("UK: ", "uk"),
    ("US| ", "us"),
    ("|DE| ", "de"),
    ("[FR] ", "fr"),
    ("VIP ", "uk"),
    ("", "us"),
];
const GENRES: [(&str, [&str; 6]); 6] = [
    (
        "ENTERTAINMENT",
        [
            "BBC One",
            "ITV",
            "Das Erste",
            "TF1",
            "AMC",
            "Comedy Central",
        ],
    ),
    (
        "NEWS",
        [
            "Sky News",
            "CNN",
            "BBC World News",
            "Euronews",
            "ZDFinfo",
            "France 24",
        ],
    ),
    (
        "SPORTS",
        [
            "Sky Sports News",
            "ESPN",
            "Eurosport 1",
            "Canal+ Sport",
            "BT Sport 1",
            "AT&T SportsNet",
        ],
    ),
    (
        "MOVIES",
        [
            "Sky Cinema Premiere",
            "HBO",
            "Cinemax",
            "TCM",
            "24/7 \"Classic\" Movies",
            "Ciné+ Frisson",
        ],
    ),
    (
        "KIDS",
        [
            "Cartoon Network",
            "Nickelodeon",
            "KiKA",
            "Gulli",
            "Disney Junior",
            "Boomerang",
        ],
    ),
    (
        "DOCUMENTARY",
        [
            "Discovery",
            "National Geographic",
            "History",
            "Arte",
            "Animal Planet",
            "24/7 COPS (ETV)",
        ],
    ),
];
const QUALITIES: [&str; 10] = [
    "FHD (1080p)",
    "HD (720p)",
    "SD",
    "UHD 4K",
    "HEVC FHD",
    "ᴴᴰ",
    "HD EAST",
    "(1080i)",
    "SD WEST",
    "ᵁᴴᴰ 2160p",
];

/// `n` streams with realistic names (country prefixes, quality and feed tokens, superscripts,
/// quotes and ampersands), spread over 36 categories; stream ids start at 1001. Deterministic.
pub fn generated_catalog(n: usize) -> (Vec<FakeCategory>, Vec<FakeStream>) {
    let mut categories = Vec::new();
    for (country, cc) in COUNTRIES {
        for (genre, _) in GENRES {
            let id = categories.len() + 1;
            let label = cc.to_uppercase();
            let name = match country {
                "VIP " => format!("VIP {genre}"),
                _ => format!("{label}| {genre}"),
            };
            categories.push(FakeCategory::new(&id.to_string(), &name));
        }
    }
    let streams = (0..n)
        .map(|i| {
            let country = i % COUNTRIES.len();
            let genre = (i / COUNTRIES.len()) % GENRES.len();
            let brand = (i / (COUNTRIES.len() * GENRES.len())) % 6;
            let round = i / (COUNTRIES.len() * GENRES.len() * 6);
            let (prefix, cc) = COUNTRIES[country];
            let base = GENRES[genre].1[brand];
            let base = match round {
                0 => base.to_owned(),
                r => format!("{base} {}", r + 1),
            };
            let quality = QUALITIES[i % QUALITIES.len()];
            let stream_id = 1001 + i as u64;
            let category = (country * GENRES.len() + genre + 1).to_string();
            let slug: String = base
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
                .to_lowercase();
            FakeStream {
                epg_channel_id: (i % 3 != 2).then(|| format!("{slug}.{cc}")),
                icon: (i % 2 == 0).then(|| format!("http://logos.example.net/{stream_id}.png")),
                ..FakeStream::new(stream_id, &format!("{prefix}{base} {quality}"), &category)
            }
        })
        .collect();
    (categories, streams)
}

/// What `get.php?type=m3u_plus` serves: each live stream with its guide id, name, logo and
/// category, at its `/live/U/P/<id>.ts` URL under `base`. Quotes in names become apostrophes, as
/// panels do, so that attributes stay well formed.
pub(super) fn m3u_playlist(
    base: &str,
    account: &FakeAccount,
    categories: &[FakeCategory],
    streams: &[FakeStream],
) -> String {
    let mut out = String::from("#EXTM3U\n");
    let attr = |s: &str| s.replace('"', "'");
    for s in streams {
        let group = categories
            .iter()
            .find(|c| c.category_id == s.category_id)
            .map_or("", |c| c.category_name.as_str());
        out.push_str(&format!(
            "#EXTINF:-1 tvg-id=\"{}\" tvg-name=\"{}\" tvg-logo=\"{}\" group-title=\"{}\",{}\n\
             {base}/live/{}/{}/{}.ts\n",
            attr(s.epg_channel_id.as_deref().unwrap_or("")),
            attr(&s.name),
            attr(s.icon.as_deref().unwrap_or("")),
            attr(group),
            s.name,
            account.username,
            account.password,
            s.stream_id
        ));
    }
    out
}

/// What `server_info` says about the panel.
pub(super) struct ServerInfo<'a> {
    pub host: &'a str,
    pub http_port: u16,
    pub https_port: u16,
    pub tls: bool,
    pub now: u64,
}

/// The answer to `player_api.php` without an action.
pub(super) fn auth_json(account: &FakeAccount, active: u32, server: &ServerInfo) -> Value {
    json!({
        "user_info": {
            "username": account.username,
            "password": account.password,
            "message": "",
            "auth": 1,
            "status": account.status,
            "exp_date": account.exp_date.map(|t| t.to_string()),
            "is_trial": "0",
            "active_cons": active.to_string(),
            "created_at": "1519083710",
            "max_connections": account.max_connections.to_string(),
            "allowed_output_formats": ["m3u8", "ts", "rtmp"],
        },
        "server_info": {
            "url": server.host,
            "port": server.http_port.to_string(),
            "https_port": server.https_port.to_string(),
            "server_protocol": if server.tls { "https" } else { "http" },
            "rtmp_port": "25462",
            "timezone": "UTC",
            "timestamp_now": server.now,
            "time_now": format_utc(server.now),
            "process": true,
        },
    })
}

/// What panels answer to bad credentials, with HTTP 200.
pub(super) fn auth_failed_json() -> Value {
    json!({ "user_info": { "auth": 0 } })
}

/// `get_live_categories`: `category_id` a string, `parent_id` an integer.
pub(super) fn categories_json(categories: &[FakeCategory]) -> Value {
    categories
        .iter()
        .map(|c| {
            json!({
                "category_id": c.category_id,
                "category_name": c.category_name,
                "parent_id": 0,
            })
        })
        .collect()
}

/// `get_live_streams`, optionally of one category. Every fourth stream of the catalog (positions
/// 1, 5, 9, … counting from 0) carries its `stream_id` as a string; `custom_sid` alternates null and "".
pub(super) fn streams_json(streams: &[FakeStream], category: Option<&str>) -> Value {
    streams
        .iter()
        .enumerate()
        .filter(|(_, s)| category.is_none_or(|c| s.category_id == c))
        .map(|(i, s)| {
            let stream_id = match i % 4 {
                1 => json!(s.stream_id.to_string()),
                _ => json!(s.stream_id),
            };
            let category_ids: Vec<u64> = s.category_id.parse().into_iter().collect();
            json!({
                "num": i + 1,
                "name": s.name,
                "stream_type": "live",
                "stream_id": stream_id,
                "stream_icon": s.icon.as_deref().unwrap_or(""),
                "epg_channel_id": s.epg_channel_id,
                "added": (1_600_000_000 + i as u64).to_string(),
                "is_adult": "0",
                "category_id": s.category_id,
                "category_ids": category_ids,
                "custom_sid": if i % 2 == 0 { Value::Null } else { json!("") },
                "tv_archive": 0,
                "direct_source": "",
                "tv_archive_duration": 0,
            })
        })
        .collect()
}

/// Unix seconds as `Y-m-d H:i:s` in UTC, the way panels print `time_now`.
fn format_utc(unix: u64) -> String {
    let c = crate::time::Civil::from_unix(i64::try_from(unix).unwrap_or(i64::MAX));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_like_panels() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(1_535_230_020), "2018-08-25 20:47:00");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(format_utc(4_107_542_399), "2100-02-28 23:59:59");
    }

    #[test]
    fn generated_catalog_is_realistic_and_unique() {
        let (categories, streams) = generated_catalog(20_000);
        assert_eq!(categories.len(), 36);
        assert_eq!(streams.len(), 20_000);
        let ids: std::collections::HashSet<u64> = streams.iter().map(|s| s.stream_id).collect();
        assert_eq!(ids.len(), 20_000);
        assert!(
            streams
                .iter()
                .all(|s| { categories.iter().any(|c| c.category_id == s.category_id) })
        );
        assert_eq!(streams[0].name, "UK: BBC One FHD (1080p)");
        assert!(streams.iter().any(|s| s.name.contains('"')));
        assert!(streams.iter().any(|s| s.name.contains('ᴴ')));
        assert!(streams.iter().any(|s| s.epg_channel_id.is_none()));
    }
}
