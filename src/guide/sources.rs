//! Guide sources: what `epg add SOURCE` means, and refreshing a source.
//!
//! A refresh downloads (or copies) the source to a new file in the data dir's cache, parses it,
//! and only then replaces the stored channels, naming that file as their cache in the same
//! transaction; the previous cache file goes after the commit. A failed download or parse, or a
//! process killed at any moment, leaves the previous channels with their cache untouched.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::store::{
    Event, GuideChannelInput, Level, Refreshed, Source, SourceKind, Store, StoreError,
};
use crate::upstream::{self, RequestOptions, Url};
use crate::xmltv::{self, Limits};
use crate::xtream::XtreamClient;

/// Where cached raw sources live, inside the data dir.
const CACHE_DIR: &str = "guides";
/// Bounds the download of one source; real guides are 20-200 MB.
const MAX_DOWNLOAD_BYTES: u64 = 1024 * 1024 * 1024;

/// What `SOURCE` in `epg add SOURCE` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    pub kind: SourceKind,
    /// The URL, the absolute file path, or the account name.
    pub location: String,
    /// A name for the source when the user gives none.
    pub default_name: String,
}

/// Reads `xtream:ACCOUNT`, an http(s) URL, or a path to an existing file.
pub fn parse_source(text: &str) -> Result<SourceSpec, String> {
    if let Some(account) = text.strip_prefix("xtream:") {
        if account.is_empty() {
            return Err("xtream: needs an account name, e.g. xtream:myprovider".into());
        }
        return Ok(SourceSpec {
            kind: SourceKind::Xtream,
            location: account.to_string(),
            default_name: account.to_string(),
        });
    }
    if text.starts_with("http://") || text.starts_with("https://") {
        let url = Url::parse(text).map_err(|e| format!("invalid guide URL: {e}"))?;
        return Ok(SourceSpec {
            kind: SourceKind::Url,
            location: text.to_string(),
            default_name: url.host().to_string(),
        });
    }
    let path = std::fs::canonicalize(text).map_err(|e| {
        format!("{text}: not a URL, not xtream:ACCOUNT, and not a readable file ({e})")
    })?;
    if !path.is_file() {
        return Err(format!("{}: not a file", path.display()));
    }
    let default_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.split('.').next().unwrap_or(n).to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "guide".into());
    Ok(SourceSpec {
        kind: SourceKind::File,
        location: path.to_string_lossy().into_owned(),
        default_name,
    })
}

/// Where a source is shown to people: a URL by its origin only (it may carry credentials).
pub fn display_location(source: &Source) -> String {
    match source.kind {
        SourceKind::Url => Url::parse(&source.location)
            .map(|u| format!("{}/…", u.origin()))
            .unwrap_or_else(|_| "(invalid URL)".into()),
        SourceKind::File => source.location.clone(),
        SourceKind::Xtream => format!("xtream:{}", source.location),
    }
}

/// The cached raw source the EPG is rendered from: the file its last refresh recorded with the
/// channels, else (a data dir refreshed before schema version 5) the one file of old.
pub fn cache_path(data_dir: &Path, source: &Source) -> PathBuf {
    let dir = data_dir.join(CACHE_DIR);
    match &source.cache_file {
        Some(name) => dir.join(name),
        None => dir.join(format!("{}.xmltv", source.id)),
    }
}

/// A new file name for a refresh of `source_id` to cache its guide under: unique, so that the
/// cache the stored channels name stays untouched until they are replaced.
fn new_cache_file(source_id: i64) -> String {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{source_id}-{stamp}-{}.xmltv", std::process::id())
}

/// Removes every cached file of a source (after the source is removed).
pub fn remove_caches(data_dir: &Path, source_id: i64) {
    remove_stale_caches(&data_dir.join(CACHE_DIR), source_id, None);
}

/// Removes the cached files of `source_id` no longer in use: all of them without `keep`; else
/// all but `keep` (the cache the channels now name) and the downloads of refreshes still running
/// in other processes. So the previous cache goes, and so do files left by refreshes killed
/// before their commit.
fn remove_stale_caches(dir: &Path, source_id: i64, keep: Option<&str>) {
    let prefix = format!("{source_id}-");
    // The names of versions before 5: the cache, and the download a killed refresh left.
    let old = [format!("{source_id}.xmltv"), format!("{source_id}.part")];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = name.starts_with(&prefix) && name.ends_with(".xmltv");
        let in_use = keep.is_some_and(|keep| name == keep || downloading_elsewhere(name));
        if (ours && !in_use) || old.iter().any(|o| o == name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether the cache file `name` (see [`new_cache_file`]) is being written by another process
/// that still runs: a refresh of the same source in `serve` and the CLI at once.
fn downloading_elsewhere(name: &str) -> bool {
    let pid = name
        .strip_suffix(".xmltv")
        .and_then(|n| n.rsplit('-').next())
        .and_then(|pid| pid.parse::<u32>().ok());
    match pid {
        Some(pid) if pid != std::process::id() => Path::new("/proc").join(pid.to_string()).exists(),
        _ => false,
    }
}

/// What a refresh needs from the config.
pub struct RefreshSettings<'a> {
    pub user_agent: &'a str,
    pub api_timeout: Duration,
    pub first_channel_number: u32,
    pub limits: Limits,
}

#[derive(Debug)]
pub struct RefreshReport {
    pub channels: usize,
    pub programmes: u64,
    /// The end of the last programme, the source's shift applied.
    pub programmes_until: Option<SystemTime>,
    pub bad_timestamps: u64,
    pub duplicate_channel_ids: u64,
    pub added: usize,
    pub removed: usize,
    pub bytes: u64,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("{0}")]
    Fetch(String),
    #[error("not a usable XMLTV guide: {0}")]
    Parse(xmltv::XmltvError),
    #[error("saving the guide: {0}")]
    Store(StoreError),
}

/// Refreshes one source (see the module doc) and records the outcome on the source and in the
/// event log.
pub async fn refresh(
    http: &upstream::Client,
    store: &Store,
    data_dir: &Path,
    source: &Source,
    settings: &RefreshSettings<'_>,
) -> Result<RefreshReport, RefreshError> {
    let started = Instant::now();
    let result = fetch_parse_store(http, store, data_dir, source, settings, started).await;
    let (status, event) = match &result {
        Ok(r) => (
            format!(
                "ok: {} channels, {} programmes, {} bad timestamps skipped",
                r.channels, r.programmes, r.bad_timestamps
            ),
            Event {
                level: Level::Info,
                category: "guide",
                message: format!(
                    "guide {}: {} channels ({} new, {} removed), {} programmes",
                    source.name, r.channels, r.added, r.removed, r.programmes
                ),
                details: json!({
                    "source": source.name,
                    "channels": r.channels,
                    "programmes": r.programmes,
                    "bad_timestamps": r.bad_timestamps,
                    "duplicate_channel_ids": r.duplicate_channel_ids,
                    "bytes": r.bytes,
                    "seconds": r.elapsed.as_secs_f64(),
                }),
            },
        ),
        Err(e) => (
            format!("error: {e}"),
            Event {
                level: Level::Error,
                category: "guide",
                message: format!(
                    "guide {}: refresh failed, previous data kept: {e}",
                    source.name
                ),
                details: json!({ "source": source.name }),
            },
        ),
    };
    let refreshed = result.as_ref().ok().map(|r| Refreshed {
        channels: r.channels,
        programmes_until: r.programmes_until,
    });
    // The refresh's own outcome matters more than a failure to record it.
    let _ = store.record_refresh(source.id, &status, refreshed);
    let _ = store.log_event(&event);
    result
}

async fn fetch_parse_store(
    http: &upstream::Client,
    store: &Store,
    data_dir: &Path,
    source: &Source,
    settings: &RefreshSettings<'_>,
    started: Instant,
) -> Result<RefreshReport, RefreshError> {
    let dir = data_dir.join(CACHE_DIR);
    std::fs::create_dir_all(&dir)
        .map_err(|e| RefreshError::Fetch(format!("creating {}: {e}", dir.display())))?;
    let cache_file = new_cache_file(source.id);
    let partial = TempFile(dir.join(&cache_file));
    let bytes = match source.kind {
        SourceKind::File => std::fs::copy(&source.location, &partial.0)
            .map_err(|e| RefreshError::Fetch(format!("reading {}: {e}", source.location)))?,
        SourceKind::Url => {
            let url = Url::parse(&source.location)
                .map_err(|e| RefreshError::Fetch(format!("invalid guide URL: {e}")))?;
            download(
                http,
                &url,
                settings.user_agent,
                settings.api_timeout,
                &partial.0,
            )
            .await?
        }
        SourceKind::Xtream => {
            let account = store
                .account(&source.location)
                .map_err(RefreshError::Store)?;
            if let crate::store::AccountKind::M3u { .. } = account.kind {
                return Err(RefreshError::Fetch(format!(
                    "account {} is a plain M3U playlist, not an Xtream panel: it has no guide to \
                     fetch; add its guide by URL or file",
                    account.name
                )));
            }
            let user_agent = account.user_agent.as_deref().unwrap_or(settings.user_agent);
            let client = XtreamClient::new(
                http.clone(),
                &account.server_url,
                &account.username,
                account.password.expose(),
                user_agent,
                settings.api_timeout,
            )
            .map_err(|e| RefreshError::Fetch(e.to_string()))?;
            let url = client
                .xmltv_url()
                .map_err(|e| RefreshError::Fetch(e.to_string()))?;
            download(http, &url, user_agent, settings.api_timeout, &partial.0).await?
        }
    };

    let reader = xmltv::open_source(&partial.0, &settings.limits).map_err(RefreshError::Parse)?;
    let scan = xmltv::read_channels(reader, &settings.limits).map_err(RefreshError::Parse)?;
    let inputs: Vec<GuideChannelInput> = scan
        .channels
        .iter()
        .map(|c| GuideChannelInput {
            channel_id: c.id.clone(),
            display_names: c.display_names.clone(),
            icon: c.icon.clone(),
            number: c.number.clone(),
        })
        .collect();
    let change = store
        .replace_guide_channels(
            source.id,
            &inputs,
            settings.first_channel_number,
            Some(&cache_file),
        )
        .map_err(RefreshError::Store)?;
    partial.keep();
    remove_stale_caches(&dir, source.id, Some(&cache_file));
    Ok(RefreshReport {
        channels: inputs.len(),
        programmes: scan.programmes,
        programmes_until: scan
            .programmes_until
            .and_then(|end| end.checked_add(source.shift_seconds))
            .and_then(|end| u64::try_from(end).ok())
            .and_then(|end| UNIX_EPOCH.checked_add(Duration::from_secs(end))),
        bad_timestamps: scan.bad_timestamps,
        duplicate_channel_ids: scan.duplicate_channel_ids,
        added: change.added,
        removed: change.removed,
        bytes,
        elapsed: started.elapsed(),
    })
}

/// Streams a guide download into `path`, bounded in size and in silence.
async fn download(
    http: &upstream::Client,
    url: &Url,
    user_agent: &str,
    timeout: Duration,
    path: &Path,
) -> Result<u64, RefreshError> {
    let options = RequestOptions {
        user_agent: user_agent.to_string(),
        head_timeout: timeout,
        idle_timeout: Some(timeout),
        max_redirects: 5,
        referrer: None,
    };
    let fail = |e: upstream::UpstreamError| RefreshError::Fetch(e.to_string());
    let mut response = http.get(url, &options).await.map_err(fail)?;
    if response.status != 200 {
        let status = response.status;
        response.close();
        return Err(RefreshError::Fetch(format!(
            "{} answered HTTP {status} for the guide",
            url.origin()
        )));
    }
    let mut file = std::fs::File::create(path)
        .map_err(|e| RefreshError::Fetch(format!("creating {}: {e}", path.display())))?;
    let mut written = 0u64;
    while let Some(chunk) = response.next_chunk().await.map_err(fail)? {
        written += chunk.len() as u64;
        if written > MAX_DOWNLOAD_BYTES {
            response.close();
            return Err(RefreshError::Fetch(format!(
                "{}: guide larger than {} MiB, refusing it",
                url.origin(),
                MAX_DOWNLOAD_BYTES >> 20
            )));
        }
        file.write_all(&chunk)
            .map_err(|e| RefreshError::Fetch(format!("writing {}: {e}", path.display())))?;
    }
    Ok(written)
}

/// A file removed on drop unless kept.
struct TempFile(PathBuf);

impl TempFile {
    fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_kinds() {
        let xtream = parse_source("xtream:main").unwrap();
        assert_eq!(xtream.kind, SourceKind::Xtream);
        assert_eq!(xtream.location, "main");
        let url = parse_source("https://epg.example.com/guide.xml.gz?key=1").unwrap();
        assert_eq!(url.kind, SourceKind::Url);
        assert_eq!(url.default_name, "epg.example.com");
        assert!(parse_source("xtream:").is_err());
        assert!(parse_source("/definitely/not/here.xml").is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("uk-guide.xml.gz");
        std::fs::write(&file, b"x").unwrap();
        let spec = parse_source(file.to_str().unwrap()).unwrap();
        assert_eq!(spec.kind, SourceKind::File);
        assert_eq!(spec.default_name, "uk-guide");
        assert!(parse_source(dir.path().to_str().unwrap()).is_err());
    }

    #[test]
    fn stale_caches_go_and_other_sources_stay() {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().join(CACHE_DIR);
        std::fs::create_dir(&dir).unwrap();
        // 99999999 is above any pid_max (no such process); 1 (init) always runs.
        let names = [
            "3-1-99999999.xmltv",
            "3-2-99999999.xmltv",
            "3-3-1.xmltv",
            "3.xmltv",
            "3.part",
            "31-1-99999999.xmltv",
            "4-1-99999999.xmltv",
        ];
        for name in names {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        let left = || {
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        };
        remove_stale_caches(&dir, 3, Some("3-2-99999999.xmltv"));
        assert_eq!(
            left(),
            [
                "3-2-99999999.xmltv",
                "3-3-1.xmltv",
                "31-1-99999999.xmltv",
                "4-1-99999999.xmltv"
            ],
            "kept: the cache in use, a download still running elsewhere, other sources'"
        );
        remove_caches(data.path(), 3);
        assert_eq!(left(), ["31-1-99999999.xmltv", "4-1-99999999.xmltv"]);
    }

    #[test]
    fn urls_are_shown_by_origin_only() {
        let source = Source {
            id: 1,
            name: "g".into(),
            kind: SourceKind::Url,
            location: "http://epg.example.com:8080/xmltv.php?username=u&password=secret".into(),
            shift_seconds: 0,
            last_refresh_at: None,
            last_status: None,
            channel_count: 0,
            programmes_until: None,
            cache_file: None,
        };
        assert_eq!(display_location(&source), "http://epg.example.com:8080/…");
    }
}
