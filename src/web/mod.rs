//! The appliance's pages for a person with a browser (SPEC §6): the page at `/`, the
//! HDHomeRun-style `/tuners.html` and `/lineup.html`, and the favicon.
//!
//! Rendering is pure: the server hands over what the store said at the last snapshot
//! ([`Overview`], read off the request path) and what the relay says now. Nothing here knows a
//! credential: an [`Overview`] keeps only what may be shown, and everything a provider or a guide
//! named is escaped.

mod favicon;
mod home;
mod html;
mod tuner_pages;

pub use favicon::favicon_ico;
pub use home::{Home, home};
pub use tuner_pages::{lineup_html, tuners_html};

use crate::store::{Level, Store, StoreError, StoredEvent};

/// How many recent events the page lists.
const RECENT_EVENTS: usize = 20;

/// What the page shows of the database, read when the snapshot is built.
#[derive(Debug, Default)]
pub struct Overview {
    pub accounts: Vec<AccountView>,
    pub guides: Vec<GuideView>,
    /// Newest first, `info` and above.
    pub events: Vec<StoredEvent>,
}

/// An account without its panel URL, username or password.
#[derive(Debug, Clone)]
pub struct AccountView {
    pub id: i64,
    pub name: String,
    pub enabled: bool,
    pub max_connections: u32,
    pub subscription_status: Option<String>,
    /// RFC 3339; `None` with a `last_sync_at` means it never expires.
    pub expires_at: Option<String>,
    pub last_sync_at: Option<String>,
}

/// A guide source without its location (a URL may carry credentials).
#[derive(Debug, Clone)]
pub struct GuideView {
    pub name: String,
    pub last_refresh_at: Option<String>,
    /// Whether the last refresh failed (its message may name the location, so it stays out).
    pub last_refresh_failed: bool,
    pub channels: i64,
    pub programmes_until: Option<String>,
}

impl Overview {
    pub fn read(store: &Store) -> Result<Overview, StoreError> {
        let accounts = store
            .accounts()?
            .into_iter()
            .map(|a| AccountView {
                id: a.id,
                name: a.name,
                enabled: a.is_active,
                max_connections: a.max_connections,
                subscription_status: a.subscription.status,
                expires_at: a.subscription.expires_at,
                last_sync_at: a.last_sync_at,
            })
            .collect();
        let guides = store
            .sources()?
            .into_iter()
            .map(|s| GuideView {
                name: s.name,
                last_refresh_at: s.last_refresh_at,
                last_refresh_failed: s.last_status.is_some_and(|s| !s.starts_with("ok")),
                channels: s.channel_count,
                programmes_until: s.programmes_until,
            })
            .collect();
        Ok(Overview {
            accounts,
            guides,
            events: store.events(Some(Level::Info), RECENT_EVENTS)?,
        })
    }
}
