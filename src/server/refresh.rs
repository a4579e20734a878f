//! Periodic refreshes while serving: provider catalogs every `refresh.catalog`, guides every
//! `refresh.epg`, then the EPG rendered again. It runs on its own thread with its own runtime and
//! store connection, so a 20,000-stream sync or a 200 MB guide never stalls the serving thread;
//! the serving thread sees the result through the database's `data_version`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::config::Config;
use crate::guide::sources::{self, RefreshSettings};
use crate::http::Shutdown;
use crate::store::Store;
use crate::time::parse_rfc3339;
use crate::upstream;
use crate::xtream::sync::{SyncSettings, sync_account};

/// How often due work is looked for.
const CHECK_INTERVAL: Duration = Duration::from_secs(60);
/// A failed refresh is not retried sooner than this (never hammer a broken panel).
const RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

pub fn start(config: Config, data_dir: PathBuf, shutdown: Shutdown) -> JoinHandle<()> {
    std::thread::spawn(move || {
        if let Err(e) = crate::net::run(refresh_loop(config, data_dir, shutdown)) {
            log::error!("periodic refreshes are off: {e}");
        }
    })
}

/// Whether something last done at `last` (RFC 3339, or never) is due again after `interval`.
fn due(last: Option<&str>, interval: Duration, now: SystemTime) -> bool {
    match last.and_then(parse_rfc3339) {
        Some(at) => now.duration_since(at).unwrap_or_default() >= interval,
        None => true,
    }
}

/// When each account (`'a'`) and guide source (`'s'`) was last tried, for [`RETRY_AFTER`].
/// Only tries within that time are kept: the map holds at most one entry per account and
/// source tried lately, however many come and go while the server runs.
#[derive(Default)]
struct Attempts(HashMap<(char, i64), Instant>);

impl Attempts {
    /// Whether `key` may be tried at `now` (not tried within [`RETRY_AFTER`]); if so, counts
    /// this try.
    fn try_now(&mut self, key: (char, i64), now: Instant) -> bool {
        self.0
            .retain(|_, at| now.saturating_duration_since(*at) < RETRY_AFTER);
        if self.0.contains_key(&key) {
            return false;
        }
        self.0.insert(key, now);
        true
    }
}

async fn refresh_loop(config: Config, data_dir: PathBuf, shutdown: Shutdown) {
    let store = match Store::open(&data_dir) {
        Ok(store) => store,
        Err(e) => {
            log::error!("periodic refreshes are off: {e}");
            return;
        }
    };
    let http = match upstream::Client::new(&upstream::ClientOptions {
        extra_ca_file: config.extra_ca_file().map(Into::into),
    }) {
        Ok(http) => http,
        Err(e) => {
            log::error!("periodic refreshes are off: {e}");
            return;
        }
    };
    let mut attempted = Attempts::default();
    loop {
        let now = SystemTime::now();
        let mut changed = false;
        for account in store.accounts().unwrap_or_default() {
            let key = ('a', account.id);
            if !account.is_active
                || !due(account.last_sync_at.as_deref(), config.refresh.catalog, now)
                || !attempted.try_now(key, Instant::now())
            {
                continue;
            }
            let settings = SyncSettings {
                default_user_agent: &config.upstream.user_agent,
                api_timeout: config.upstream.api_timeout,
            };
            log::debug!("refresh: syncing account {}", account.name);
            // Outcomes also go to the event log inside sync_account.
            match sync_account(&http, &store, &account, &settings, &mut |_| {}).await {
                Ok(report) => {
                    changed = true;
                    log::info!(
                        "account {}: synced {} streams ({} new, {} updated, {} removed) in {:.1} s",
                        account.name,
                        report.streams,
                        report.change.added,
                        report.change.updated,
                        report.change.removed,
                        report.elapsed.as_secs_f64()
                    );
                }
                Err(e) => log::error!(
                    "account {}: sync failed, the catalog is kept: {e}",
                    account.name
                ),
            }
        }
        for source in store.sources().unwrap_or_default() {
            let key = ('s', source.id);
            if !due(source.last_refresh_at.as_deref(), config.refresh.epg, now)
                || !attempted.try_now(key, Instant::now())
            {
                continue;
            }
            let settings = RefreshSettings {
                user_agent: &config.upstream.user_agent,
                api_timeout: config.upstream.api_timeout,
                first_channel_number: config.epg.first_channel_number,
                limits: Default::default(),
            };
            log::debug!("refresh: fetching guide {}", source.name);
            match sources::refresh(&http, &store, &data_dir, &source, &settings).await {
                Ok(report) => {
                    changed = true;
                    log::info!(
                        "guide {}: {} channels, {} programmes in {:.1} s",
                        source.name,
                        report.channels,
                        report.programmes,
                        report.elapsed.as_secs_f64()
                    );
                }
                Err(e) => log::error!(
                    "guide {}: refresh failed, the previous guide is kept: {e}",
                    source.name
                ),
            }
        }
        if changed {
            match crate::guide::render_epg(
                &store,
                &data_dir,
                config.epg.channel_ids,
                &Default::default(),
            ) {
                Ok(_) => log::debug!("refresh: EPG rendered again"),
                Err(e) => {
                    log::warn!("the EPG was not re-rendered (the previous one is served): {e}")
                }
            }
        }
        tokio::select! {
            _ = shutdown.fired() => return,
            _ = tokio::time::sleep(CHECK_INTERVAL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn due_after_the_interval_or_when_never_done() {
        let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let stamp = crate::time::rfc3339(at);
        let hour = Duration::from_secs(3600);
        assert!(!due(Some(&stamp), hour, at + Duration::from_secs(3599)));
        assert!(due(Some(&stamp), hour, at + hour));
        assert!(due(None, hour, at));
        assert!(due(Some("garbage"), hour, at));
    }

    #[test]
    fn a_failed_try_waits_and_old_tries_are_forgotten() {
        let mut attempts = Attempts::default();
        let start = Instant::now();
        for id in 0..1000 {
            assert!(attempts.try_now(('a', id), start));
        }
        assert!(!attempts.try_now(('a', 7), start + RETRY_AFTER / 2));
        let later = start + RETRY_AFTER;
        assert!(attempts.try_now(('s', 1), later));
        assert_eq!(attempts.0.len(), 1, "the accounts' old tries are gone");
        assert!(attempts.try_now(('a', 7), later));
    }
}
