//! Schema migrations keyed by `PRAGMA user_version`.
//!
//! `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`. A step and its version bump
//! commit together, so a failed or interrupted migration leaves the previous version intact.
//! Steps are append-only: never edit one that has shipped.

use super::{Ctx, StoreError};
use rusqlite::Connection;
use std::path::Path;

/// Every migration, oldest first.
pub(super) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5];

/// Version 1: every table of SPEC §5. STRICT tables turn a type mix-up into an error at write time.
const V1: &str = "
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    server_url TEXT NOT NULL,
    username TEXT NOT NULL,
    password_encrypted BLOB NOT NULL,          -- nonce || AES-256-GCM ciphertext || tag
    max_connections INTEGER NOT NULL DEFAULT 1 CHECK (max_connections >= 1),
    is_active INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    user_agent TEXT NULL,
    created_at TEXT NOT NULL,
    last_sync_at TEXT NULL
) STRICT;

CREATE TABLE xtream_channels (
    id INTEGER PRIMARY KEY,                    -- kept across syncs: mappings reference it
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    stream_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    icon TEXT NULL,
    category TEXT NULL,
    epg_channel_id TEXT NULL,
    qualities TEXT NOT NULL DEFAULT '[]',      -- JSON array, e.g. [\"FHD\",\"HEVC\"]
    tier INTEGER NOT NULL DEFAULT 0,           -- quality rank, higher is better
    last_seen TEXT NOT NULL,
    UNIQUE (account_id, stream_id)
) STRICT;
CREATE INDEX xtream_channels_account_name ON xtream_channels(account_id, name);
CREATE INDEX xtream_channels_epg_channel_id ON xtream_channels(epg_channel_id);

CREATE TABLE xmltv_sources (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    location_encrypted BLOB NOT NULL,          -- URLs may carry credentials: sealed like passwords
    kind TEXT NOT NULL,                        -- url, file or xtream
    shift_seconds INTEGER NOT NULL DEFAULT 0,
    last_refresh_at TEXT NULL,
    last_status TEXT NULL,
    channel_count INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE xmltv_channels (
    id INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL REFERENCES xmltv_sources(id) ON DELETE CASCADE,
    channel_id TEXT NOT NULL,
    display_names TEXT NOT NULL DEFAULT '[]',  -- JSON array
    icon TEXT NULL,
    number TEXT NOT NULL,                      -- the lineup's GuideNumber, unique across sources
    number_origin TEXT NOT NULL CHECK (number_origin IN ('guide', 'assigned', 'user')),
    enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    UNIQUE (source_id, channel_id)
) STRICT;
CREATE UNIQUE INDEX xmltv_channels_number ON xmltv_channels(number);
CREATE INDEX xmltv_channels_channel_id ON xmltv_channels(channel_id);

CREATE TABLE channel_mappings (
    id INTEGER PRIMARY KEY,
    xmltv_channel_id INTEGER NOT NULL REFERENCES xmltv_channels(id) ON DELETE CASCADE,
    xtream_channel_id INTEGER NOT NULL REFERENCES xtream_channels(id) ON DELETE CASCADE,
    match_confidence REAL NOT NULL DEFAULT 0,
    is_manual INTEGER NOT NULL DEFAULT 0 CHECK (is_manual IN (0, 1)),
    is_primary INTEGER NOT NULL DEFAULT 0 CHECK (is_primary IN (0, 1)),
    stream_priority INTEGER NOT NULL DEFAULT 0,
    UNIQUE (xmltv_channel_id, xtream_channel_id)
) STRICT;
-- Without it every stream deleted by a catalog refresh would scan all mappings for the cascade.
CREATE INDEX channel_mappings_xtream_channel_id ON channel_mappings(xtream_channel_id);

-- AUTOINCREMENT: ids never go back, so `events --follow` can resume after the last id it saw.
CREATE TABLE event_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp TEXT NOT NULL,                   -- RFC 3339, UTC
    level TEXT NOT NULL CHECK (level IN ('debug', 'info', 'warn', 'error')),
    category TEXT NOT NULL,
    message TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '{}'         -- JSON
) STRICT;
CREATE INDEX event_log_timestamp ON event_log(timestamp);

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;
";

/// Version 2: what the appliance's page shows. The subscription as the panel reported it at the
/// last sync, and how far ahead each guide source's programmes reach.
const V2: &str = "
ALTER TABLE accounts ADD COLUMN subscription_status TEXT NULL;      -- `Active`, `Expired`, …
ALTER TABLE accounts ADD COLUMN subscription_expires_at TEXT NULL;  -- RFC 3339; NULL: never, or unknown
ALTER TABLE xmltv_sources ADD COLUMN programmes_until TEXT NULL;    -- RFC 3339, shift applied
";

/// Version 3: what was measured of each stream (SPEC §7 Selection), one row per stream, replaced
/// by the next measurement.
const V3: &str = "
CREATE TABLE stream_measurements (
    xtream_channel_id INTEGER PRIMARY KEY REFERENCES xtream_channels(id) ON DELETE CASCADE,
    facts TEXT NOT NULL,                       -- JSON: video, audio, bitrate (measure::Measurement)
    measured_at TEXT NOT NULL,                 -- RFC 3339, UTC
    how TEXT NOT NULL CHECK (how IN ('session', 'probe'))
) STRICT;
";

/// Version 4: plain M3U playlist sources (SPEC §3). An `m3u` account keeps its playlist's
/// location sealed (a URL may carry credentials; its `server_url` holds only what may be shown),
/// and each of its streams its own sealed URL and `#EXTVLCOPT` headers.
const V4: &str = "
ALTER TABLE accounts ADD COLUMN kind TEXT NOT NULL DEFAULT 'xtream' CHECK (kind IN ('xtream', 'm3u'));
ALTER TABLE accounts ADD COLUMN playlist_encrypted BLOB NULL;       -- m3u: URL or file path, sealed
ALTER TABLE xtream_channels ADD COLUMN url_encrypted BLOB NULL;     -- m3u: the stream URL, sealed
ALTER TABLE xtream_channels ADD COLUMN user_agent TEXT NULL;        -- m3u: #EXTVLCOPT:http-user-agent
ALTER TABLE xtream_channels ADD COLUMN referrer TEXT NULL;          -- m3u: #EXTVLCOPT:http-referrer
";

/// Version 5: which cached file a guide source's channels came from. A refresh writes the new
/// guide to a file of its own and names it here in the transaction that replaces the channels,
/// so a process killed in between leaves the channels and the programmes of one guide, never
/// the channels of one and the programmes of the other. NULL: the file of versions before 5.
const V5: &str = "
ALTER TABLE xmltv_sources ADD COLUMN cache_file TEXT NULL;          -- a file name in <data_dir>/guides
";

/// The schema version this binary writes.
fn supported_version(steps: &[&str]) -> i64 {
    i64::try_from(steps.len()).unwrap_or(i64::MAX)
}

/// Applies the steps the database has not seen yet, each in its own transaction.
pub(super) fn migrate(conn: &Connection, path: &Path, steps: &[&str]) -> Result<(), StoreError> {
    let supported = supported_version(steps);
    loop {
        // IMMEDIATE (the connection's default): a second process opening the same fresh file
        // waits here, then sees the version the first one committed.
        let tx = conn
            .unchecked_transaction()
            .ctx(|| format!("migrating database {}", path.display()))?;
        let found: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .ctx(|| format!("reading schema version of {}", path.display()))?;
        if found > supported {
            return Err(StoreError::SchemaTooNew {
                path: path.to_path_buf(),
                found,
                supported,
            });
        }
        let Some(step) = usize::try_from(found).ok().and_then(|i| steps.get(i)) else {
            // Up to date (a negative version was never written by us; treat it as corrupt).
            if found < 0 {
                return Err(StoreError::Corrupt {
                    what: format!("{}: schema version {found}", path.display()),
                });
            }
            return Ok(());
        };
        let target = found + 1;
        let doing = || {
            format!(
                "migrating database {} to schema version {target}",
                path.display()
            )
        };
        tx.execute_batch(step).ctx(doing)?;
        tx.pragma_update(None, "user_version", target).ctx(doing)?;
        tx.commit().ctx(doing)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DB_FILE, Store};

    fn user_version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("user_version")
    }

    #[test]
    fn migrates_from_scratch_and_reopens_idempotently() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("first open");
        assert_eq!(user_version(&store.conn), supported_version(MIGRATIONS));
        let tables: Vec<String> = store
            .conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("tables");
        for want in [
            "accounts",
            "channel_mappings",
            "event_log",
            "settings",
            "stream_measurements",
            "xmltv_channels",
            "xmltv_sources",
            "xtream_channels",
        ] {
            assert!(
                tables.iter().any(|t| t == want),
                "missing {want}: {tables:?}"
            );
        }
        store.set_setting("kept", "yes").expect("write");
        drop(store);

        let store = Store::open(dir.path()).expect("second open");
        assert_eq!(user_version(&store.conn), supported_version(MIGRATIONS));
        assert_eq!(store.setting("kept").expect("read").as_deref(), Some("yes"));
    }

    #[test]
    fn a_version_1_database_keeps_its_data_through_version_2() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(DB_FILE);
        let conn = Connection::open(&path).expect("raw open");
        migrate(&conn, &path, &MIGRATIONS[..1]).expect("version 1");
        conn.execute_batch(
            "INSERT INTO accounts (name, server_url, username, password_encrypted, created_at) \
             VALUES ('main', 'http://p', 'u', x'00', '2026-01-01T00:00:00Z');
             INSERT INTO xmltv_sources (name, location_encrypted, kind) VALUES ('g', x'00', 'url');",
        )
        .expect("version 1 rows");
        migrate(&conn, &path, MIGRATIONS).expect("to the latest");
        assert_eq!(user_version(&conn), supported_version(MIGRATIONS));
        let (name, status): (String, Option<String>) = conn
            .query_row("SELECT name, subscription_status FROM accounts", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("the account survived");
        assert_eq!((name.as_str(), status), ("main", None));
        let until: Option<String> = conn
            .query_row("SELECT programmes_until FROM xmltv_sources", [], |r| {
                r.get(0)
            })
            .expect("the source survived");
        assert_eq!(until, None);
        let kind: String = conn
            .query_row("SELECT kind FROM accounts", [], |r| r.get(0))
            .expect("kind");
        assert_eq!(kind, "xtream", "an older account is an Xtream one");
    }

    #[test]
    fn newer_database_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        drop(Store::open(dir.path()).expect("open"));
        let conn = Connection::open(dir.path().join(DB_FILE)).expect("raw open");
        conn.pragma_update(None, "user_version", 99).expect("bump");
        drop(conn);
        let err = match Store::open(dir.path()) {
            Ok(_) => panic!("opened a database from the future"),
            Err(e) => e,
        };
        assert!(
            matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("99") && msg.contains("newer"), "{msg}");
    }

    #[test]
    fn failed_step_keeps_the_previous_version() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(DB_FILE);
        let conn = Connection::open(&path).expect("raw open");
        let steps = [
            "CREATE TABLE a (x INTEGER);",
            "CREATE TABLE b (x INTEGER); CREATE TABLE a (x INTEGER);",
        ];
        let err = migrate(&conn, &path, &steps).expect_err("second step must fail");
        assert!(err.to_string().contains("schema version 2"), "{err}");
        assert_eq!(user_version(&conn), 1);
        let b: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'b'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(b, 0, "half-applied step was not rolled back");
        // A fixed step list then completes.
        migrate(&conn, &path, &steps[..1]).expect("nothing left to do");
        assert_eq!(user_version(&conn), 1);
    }
}
