//! Downloading (or reading) a playlist and turning each entry into a catalog stream as it is
//! parsed: the body is never held whole, so memory grows with the entries kept, not the file.

use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use crate::m3u::{self, Entry};
use crate::store::{CatalogStream, PlaylistStream, Store, StoreError};
use crate::upstream::{self, RequestOptions, Url};
use crate::xtream::quality;

use super::{is_url, shown};

/// Bounds a hostile or broken source; real playlists of 100,000 entries are about 30 MB.
const MAX_PLAYLIST_BYTES: u64 = 512 * 1024 * 1024;
const READ_CHUNK: usize = 64 * 1024;

/// A parsed playlist, ready to replace the account's catalog.
#[derive(Debug)]
pub struct Fetched {
    pub streams: Vec<CatalogStream>,
    /// Lines that made no entry, and entries repeating a URL already listed.
    pub skipped: usize,
    /// HLS entries (`.m3u8`), refused: Plex takes MPEG-TS only.
    pub hls: usize,
    pub bytes: u64,
}

/// A playlist that could not be fetched or parsed; names a URL by its origin only.
#[derive(Debug, thiserror::Error)]
pub enum PlaylistError {
    #[error("invalid playlist URL: {0}")]
    InvalidUrl(upstream::UpstreamError),
    // Upstream errors already name the origin.
    #[error("{0}")]
    Unreachable(upstream::UpstreamError),
    #[error("{origin} answered HTTP {status} for the playlist")]
    Status { origin: String, status: u16 },
    #[error("reading playlist {}: {source}", .path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{shown}: playlist larger than {} MiB, refusing it", MAX_PLAYLIST_BYTES / (1024 * 1024))]
    TooLarge { shown: String },
    #[error(
        "{shown}: not a usable M3U playlist: no http(s) stream in it ({lines} lines, {skipped} \
         skipped, {hls} HLS); the previous catalog is kept"
    )]
    NoStreams {
        shown: String,
        lines: usize,
        skipped: usize,
        hls: usize,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Turns parsed entries into catalog streams as they come.
struct Collector<'a> {
    store: &'a Store,
    streams: Vec<CatalogStream>,
    seen: HashSet<i64>,
    duplicates: usize,
    hls: usize,
    failed: Option<StoreError>,
}

impl Collector<'_> {
    fn add(&mut self, entry: Entry) {
        if self.failed.is_some() {
            return;
        }
        if is_hls(&entry.url) {
            self.hls += 1;
            return;
        }
        let stream_id = match self.store.playlist_stream_id(&entry.url) {
            Ok(id) => id,
            Err(e) => {
                self.failed = Some(e);
                return;
            }
        };
        // One stream per URL: the first listing wins.
        if !self.seen.insert(stream_id) {
            self.duplicates += 1;
            return;
        }
        let quality = quality::parse(&entry.name);
        self.streams.push(CatalogStream {
            stream_id,
            name: entry.name,
            icon: entry.tvg_logo,
            category: entry.group,
            epg_channel_id: entry.tvg_id,
            qualities: quality.labels.iter().map(|l| l.to_string()).collect(),
            tier: quality.tier.rank(),
            playlist: Some(PlaylistStream {
                url: entry.url,
                user_agent: entry.user_agent,
                referrer: entry.referrer,
            }),
        });
    }
}

/// An HLS playlist rather than a stream: its path ends in `.m3u8`.
fn is_hls(url: &str) -> bool {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.to_ascii_lowercase().ends_with(".m3u8")
}

/// Fetches `location` (an http(s) URL or a file path) and parses it; `on_bytes` sees the running
/// byte count. Fails, keeping nothing, unless at least one stream came out of it.
pub async fn fetch(
    http: &upstream::Client,
    store: &Store,
    location: &str,
    user_agent: &str,
    timeout: Duration,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<Fetched, PlaylistError> {
    let shown = shown(location);
    let mut parser = m3u::Parser::new();
    let mut collector = Collector {
        store,
        streams: Vec::new(),
        seen: HashSet::new(),
        duplicates: 0,
        hls: 0,
        failed: None,
    };
    let mut bytes = 0u64;
    let mut feed = |chunk: &[u8], collector: &mut Collector| -> Result<(), PlaylistError> {
        bytes += chunk.len() as u64;
        if bytes > MAX_PLAYLIST_BYTES {
            return Err(PlaylistError::TooLarge {
                shown: shown.clone(),
            });
        }
        parser.push(chunk, &mut |entry| collector.add(entry));
        on_bytes(bytes);
        Ok(())
    };
    if is_url(location) {
        let url = Url::parse(location).map_err(PlaylistError::InvalidUrl)?;
        let options = RequestOptions {
            head_timeout: timeout,
            idle_timeout: Some(timeout),
            ..RequestOptions::new(user_agent)
        };
        let mut response = http
            .get(&url, &options)
            .await
            .map_err(PlaylistError::Unreachable)?;
        if response.status != 200 {
            let status = response.status;
            response.close();
            return Err(PlaylistError::Status {
                origin: url.origin(),
                status,
            });
        }
        loop {
            match response.next_chunk().await {
                Ok(Some(chunk)) => {
                    if let Err(e) = feed(&chunk, &mut collector) {
                        response.close();
                        return Err(e);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    response.close();
                    return Err(PlaylistError::Unreachable(e));
                }
            }
        }
    } else {
        let path = PathBuf::from(location);
        let file_error = |source| PlaylistError::File {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::File::open(&path).map_err(file_error)?;
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = file.read(&mut buf).map_err(file_error)?;
            if n == 0 {
                break;
            }
            feed(&buf[..n], &mut collector)?;
        }
    }
    let counts = parser.finish(&mut |entry| collector.add(entry));
    if let Some(e) = collector.failed {
        return Err(e.into());
    }
    if collector.streams.is_empty() {
        return Err(PlaylistError::NoStreams {
            shown,
            lines: counts.lines,
            skipped: counts.skipped + collector.duplicates,
            hls: collector.hls,
        });
    }
    Ok(Fetched {
        streams: collector.streams,
        skipped: counts.skipped + collector.duplicates,
        hls: collector.hls,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hls_is_told_by_the_path() {
        assert!(is_hls("http://h/live/1.m3u8"));
        assert!(is_hls("http://h/live/1.M3U8?token=x"));
        assert!(!is_hls("http://h/live/1.ts?fmt=.m3u8"));
        assert!(!is_hls("http://h/live/1"));
    }
}
