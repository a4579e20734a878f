//! Plain M3U playlist accounts (SPEC §3): fetching a playlist (URL or file) through the pure
//! [`crate::m3u`] parser chunk by chunk into catalog streams, recognising an Xtream `get.php`
//! URL for the panel it is, and where any stored stream is fetched from.
//!
//! Playlist and stream URLs may carry credentials: errors name a URL by its origin only.

mod fetch;
mod get_php;

pub use fetch::{PlaylistError, fetch};
pub use get_php::{XtreamLogin, xtream_login};

use crate::store::{Account, AccountKind, Store, StoreError};
use crate::upstream::{self, Url};
use crate::xtream::live_url;

/// Where and how to fetch a stored stream.
#[derive(Debug, Clone)]
pub struct Location {
    /// Carries credentials: never print it.
    pub url: Url,
    pub user_agent: String,
    pub referrer: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("stream {0}: {1}")]
    Url(String, upstream::UpstreamError),
    #[error("stream {0} has no URL stored: sync its account again")]
    Missing(String),
}

/// Where stream `stream_id` (row `stream_row`) of `account` is fetched: the panel's `/live/…`
/// URL for an Xtream account, the stream's own URL for a playlist. The user agent is the
/// playlist entry's, else the account's, else `default_user_agent`.
pub fn locate(
    store: &Store,
    account: &Account,
    stream_row: i64,
    stream_id: i64,
    default_user_agent: &str,
) -> Result<Location, LocateError> {
    let reference = || format!("{}:{stream_id}", account.name);
    let account_agent = || {
        account
            .user_agent
            .clone()
            .unwrap_or_else(|| default_user_agent.to_owned())
    };
    match account.kind {
        AccountKind::Xtream => Ok(Location {
            url: live_url(
                &account.server_url,
                &account.username,
                account.password.expose(),
                stream_id,
            )
            .map_err(|e| LocateError::Url(reference(), e))?,
            user_agent: account_agent(),
            referrer: None,
        }),
        AccountKind::M3u { .. } => {
            let stream = store
                .playlist_stream(stream_row)?
                .ok_or_else(|| LocateError::Missing(reference()))?;
            Ok(Location {
                url: Url::parse(&stream.url).map_err(|e| LocateError::Url(reference(), e))?,
                user_agent: stream.user_agent.unwrap_or_else(account_agent),
                referrer: stream.referrer,
            })
        }
    }
}

/// What may be shown of a playlist location: a URL's origin, or a file's path.
pub fn shown(location: &str) -> String {
    match Url::parse(location) {
        Ok(url) => url.origin(),
        Err(_) => location.to_owned(),
    }
}

/// Whether a location names a URL (else a file).
pub fn is_url(location: &str) -> bool {
    let lower = location.trim_start().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}
