//! Text from providers and from the user: Xtream JSON, XMLTV guides, M3U playlists and the
//! config file.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::xmltv::{self, Limits, LineupChannel, SourceFile};

/// The error of parsing `body` as the Xtream reply the selector picks, if any.
fn xtream_error(selector: u8, body: &[u8]) -> Option<String> {
    let error = match selector % 3 {
        0 => crate::xtream::api::parse_login(body).err(),
        1 => crate::xtream::api::parse_categories(body).err(),
        _ => crate::xtream::api::parse_live_streams(body).err(),
    };
    error.map(|e| e.to_string())
}

/// Every string value of a JSON document replaced by the same letter, keys kept.
fn blank_strings(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => *s = "x".to_owned(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(blank_strings),
        serde_json::Value::Object(map) => map.values_mut().for_each(blank_strings),
        _ => {}
    }
}

/// An Xtream reply of the kind the first byte picks (login, categories, live streams): never a
/// panic, and an error is a short message that quotes nothing of the body (a panel's reply may
/// hold credentials): a document refused for its shape is refused in the same words whatever
/// its string values say.
pub fn xtream_json(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let Some(message) = xtream_error(selector, body) else {
        return;
    };
    assert!(!message.is_empty() && message.len() <= 200, "{message}");
    if let Ok(mut document) = serde_json::from_slice::<serde_json::Value>(body) {
        blank_strings(&mut document);
        let blanked = serde_json::to_vec(&document).expect("a Value serialises");
        if let Some(again) = xtream_error(selector, &blanked) {
            assert_eq!(message, again, "the message depends on the body's strings");
        }
    }
}

/// Limits small enough for the fuzzer to reach every one of them.
fn small_limits() -> Limits {
    Limits {
        max_decompressed_bytes: 64 * 1024,
        max_token_bytes: 4096,
        max_text_bytes: 64,
        max_display_names: 3,
        max_channels: 16,
        max_channel_bytes: 1024,
        max_depth: 8,
        max_programme_bytes: 2048,
    }
}

/// This process's scratch dir for the renderer.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("streamforge-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    })
}

/// An XMLTV guide (plain or gzipped): the scanner never panics, and what the renderer writes for
/// the channels it found reads back as a valid guide with exactly those channels and programmes,
/// none of them with a bad time.
pub fn xmltv(data: &[u8]) {
    let limits = small_limits();
    let Ok(scan) = xmltv::read_channels(data, &limits) else {
        return;
    };
    assert!(scan.channels.len() <= limits.max_channels);
    let dir = scratch();
    let source = dir.join("source.xml");
    std::fs::write(&source, data).expect("write the source");
    let lineup: Vec<LineupChannel> = scan
        .channels
        .iter()
        .enumerate()
        .map(|(i, channel)| LineupChannel {
            source_id: 1,
            source_channel_id: channel.id.clone(),
            output_id: (100 + i).to_string(),
            number: (100 + i).to_string(),
            name: channel.display_names.first().cloned().unwrap_or_default(),
            icon: channel.icon.clone(),
        })
        .collect();
    let sources = [SourceFile {
        source_id: 1,
        path: source,
        shift_seconds: 3600,
    }];
    let out = dir.join("out");
    std::fs::create_dir_all(&out).expect("out dir");
    let Ok(report) = xmltv::render(&lineup, &sources, &out, &limits) else {
        return;
    };
    let rendered = std::fs::read(out.join("epg.xml")).expect("epg.xml written");
    let again = xmltv::read_channels(&rendered[..], &Limits::default())
        .unwrap_or_else(|e| panic!("the rendered guide does not read back: {e}"));
    assert_eq!(again.channels.len(), report.channels);
    assert_eq!(again.programmes, report.programmes);
    assert_eq!((again.bad_timestamps, again.bad_stops), (0, 0));
    assert_eq!(again.unknown_channel_programmes, 0);
}

/// The config file: never a panic; a rejection names a reason.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err((_key, reason)) = crate::config::Config::parse(text) {
        assert!(!reason.trim().is_empty());
    }
}

/// An M3U playlist fed in chunks whose size the first byte picks: never a panic, the same
/// entries and counts as one whole push, counts that add up, and only fetchable, clean entries.
pub fn m3u(data: &[u8]) {
    let Some((&selector, playlist)) = data.split_first() else {
        return;
    };
    let (whole, counts) = crate::m3u::parse(playlist);
    let mut parser = crate::m3u::Parser::new();
    let mut chunked = Vec::new();
    for chunk in playlist.chunks(usize::from(selector) + 1) {
        parser.push(chunk, &mut |e| chunked.push(e));
    }
    let chunked_counts = parser.finish(&mut |e| chunked.push(e));
    assert_eq!(
        (&whole, counts),
        (&chunked, chunked_counts),
        "chunking changed the result"
    );
    assert_eq!(counts.entries, whole.len());
    let newlines = playlist.iter().filter(|&&b| b == b'\n').count();
    let last = usize::from(!playlist.is_empty() && !playlist.ends_with(b"\n"));
    assert_eq!(counts.lines, newlines + last, "every line counted once");
    assert!(
        counts.entries + counts.skipped <= counts.lines,
        "{counts:?}"
    );
    for entry in &whole {
        let lower = entry.url.to_ascii_lowercase();
        assert!(lower.starts_with("http://") || lower.starts_with("https://"));
        assert!(!entry.name.is_empty());
        let fields = [
            Some(&entry.url),
            Some(&entry.name),
            entry.tvg_id.as_ref(),
            entry.group.as_ref(),
            entry.user_agent.as_ref(),
            entry.referrer.as_ref(),
        ];
        for field in fields.into_iter().flatten() {
            assert!(!field.chars().any(char::is_control), "{entry:?}");
            assert!(field.len() <= 2 * crate::m3u::MAX_LINE, "{entry:?}");
        }
    }
}
