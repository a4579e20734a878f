//! Catalog sync: log in, fetch categories and live streams, parse each name's quality, and
//! replace the account's stored catalog in one transaction, only once everything has parsed.
//! A playlist (M3U) account is fetched and parsed instead (see [`crate::playlist`]), then stored
//! the same way. The CLI's `sync` and the server's periodic refresh both run this.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::playlist::{self, PlaylistError};
use crate::store::{
    Account, AccountKind, CatalogChange, CatalogStream, Event, Level, Store, StoreError,
};
use crate::upstream;

use super::client::{XtreamClient, XtreamError};
use super::quality;

/// Where a sync is, for progress display.
#[derive(Debug, Clone, Copy)]
pub enum SyncStep {
    LoggingIn,
    Categories,
    Downloading { bytes: u64 },
    Saving { streams: usize },
}

/// The config values a sync uses.
pub struct SyncSettings<'a> {
    /// Sent unless the account has its own user agent.
    pub default_user_agent: &'a str,
    pub api_timeout: Duration,
}

#[derive(Debug)]
pub struct SyncReport {
    pub streams: usize,
    /// Listing entries without a usable id or name (playlist lines that made no entry).
    pub skipped: usize,
    /// Playlist entries refused because they are HLS (Plex takes MPEG-TS only).
    pub hls: usize,
    pub change: CatalogChange,
    pub downloaded_bytes: u64,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Provider(XtreamError),
    #[error("{0}")]
    Playlist(PlaylistError),
    #[error("saving the catalog: {0}")]
    Store(StoreError),
}

/// Syncs one account's catalog and records the outcome in the event log.
pub async fn sync_account(
    http: &upstream::Client,
    store: &Store,
    account: &Account,
    settings: &SyncSettings<'_>,
    progress: &mut dyn FnMut(SyncStep),
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let result = fetch_and_store(http, store, account, settings, progress).await;
    let event = match &result {
        Ok(report) => Event {
            level: Level::Info,
            category: "sync",
            message: format!(
                "account {}: {} streams ({} new, {} updated, {} removed)",
                account.name,
                report.streams,
                report.change.added,
                report.change.updated,
                report.change.removed
            ),
            details: json!({
                "account": account.name,
                "streams": report.streams,
                "skipped": report.skipped,
                "hls": report.hls,
                "added": report.change.added,
                "updated": report.change.updated,
                "removed": report.change.removed,
                "bytes": report.downloaded_bytes,
                "seconds": started.elapsed().as_secs_f64(),
            }),
        },
        Err(e) => Event {
            level: Level::Error,
            category: "sync",
            message: format!("account {}: sync failed: {e}", account.name),
            details: json!({ "account": account.name }),
        },
    };
    // The sync's own outcome matters more than a failure to record it.
    if let Err(SyncError::Provider(XtreamError::AccountInactive { status, .. })) = &result {
        let _ = store.record_subscription_status(account.id, status);
    }
    let _ = store.log_event(&event);
    result
}

async fn fetch_and_store(
    http: &upstream::Client,
    store: &Store,
    account: &Account,
    settings: &SyncSettings<'_>,
    progress: &mut dyn FnMut(SyncStep),
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let user_agent = account
        .user_agent
        .as_deref()
        .unwrap_or(settings.default_user_agent);
    if let AccountKind::M3u { playlist } = &account.kind {
        let fetched = playlist::fetch(
            http,
            store,
            playlist.expose(),
            user_agent,
            settings.api_timeout,
            &mut |bytes| progress(SyncStep::Downloading { bytes }),
        )
        .await
        .map_err(SyncError::Playlist)?;
        progress(SyncStep::Saving {
            streams: fetched.streams.len(),
        });
        let change = store
            .replace_catalog(account.id, &fetched.streams)
            .map_err(SyncError::Store)?;
        store
            .record_sync(account.id, std::time::SystemTime::now())
            .map_err(SyncError::Store)?;
        return Ok(SyncReport {
            streams: fetched.streams.len(),
            skipped: fetched.skipped,
            hls: fetched.hls,
            change,
            downloaded_bytes: fetched.bytes,
            elapsed: started.elapsed(),
        });
    }
    let client = XtreamClient::new(
        http.clone(),
        &account.server_url,
        &account.username,
        account.password.expose(),
        user_agent,
        settings.api_timeout,
    )
    .map_err(SyncError::Provider)?;

    progress(SyncStep::LoggingIn);
    let login = client.login().await.map_err(SyncError::Provider)?;
    let info = &login.user_info;
    store
        .record_subscription(
            account.id,
            info.status.as_deref().unwrap_or("Active"),
            info.expires_at(),
        )
        .map_err(SyncError::Store)?;
    progress(SyncStep::Categories);
    let categories: HashMap<String, String> = client
        .live_categories()
        .await
        .map_err(SyncError::Provider)?
        .into_iter()
        .filter_map(|c| Some((c.category_id?, c.category_name?)))
        .collect();
    let mut downloaded_bytes = 0;
    let listing = client
        .live_streams(&mut |bytes| {
            downloaded_bytes = bytes;
            progress(SyncStep::Downloading { bytes });
        })
        .await
        .map_err(SyncError::Provider)?;

    // Panels repeat entries; the first of each stream id wins.
    let mut seen = std::collections::HashSet::new();
    let streams: Vec<CatalogStream> = listing
        .streams
        .into_iter()
        .filter(|s| seen.insert(s.stream_id))
        .map(|s| {
            let quality = quality::parse(&s.name);
            CatalogStream {
                playlist: None,
                stream_id: s.stream_id,
                category: s
                    .category_id
                    .as_ref()
                    .and_then(|id| categories.get(id).cloned()),
                name: s.name,
                icon: s.icon,
                epg_channel_id: s.epg_channel_id,
                qualities: quality.labels.iter().map(|l| l.to_string()).collect(),
                tier: quality.tier.rank(),
            }
        })
        .collect();
    progress(SyncStep::Saving {
        streams: streams.len(),
    });
    let change = store
        .replace_catalog(account.id, &streams)
        .map_err(SyncError::Store)?;
    store
        .record_sync(account.id, std::time::SystemTime::now())
        .map_err(SyncError::Store)?;
    Ok(SyncReport {
        streams: streams.len(),
        skipped: listing.skipped,
        hls: 0,
        change,
        downloaded_bytes,
        elapsed: started.elapsed(),
    })
}
