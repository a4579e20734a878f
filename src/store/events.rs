//! The event log: what happened (failovers, refused tunes, syncs), for `streamforge events`.

use super::{Ctx, Store, StoreError, sql_int};
use crate::time::rfc3339;
use rusqlite::{Row, params};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

/// Severity, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    /// Numeric rank, as the SQL below ranks the stored text.
    fn rank(self) -> i64 {
        self as i64
    }
}

/// Ranks the stored level text like [`Level::rank`], for "at least this severe" filters.
const LEVEL_RANK_SQL: &str =
    "CASE level WHEN 'debug' THEN 0 WHEN 'info' THEN 1 WHEN 'warn' THEN 2 ELSE 3 END";

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A level name that is not one of debug, info, warn, error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown level {0:?}: expected debug, info, warn or error")]
pub struct ParseLevelError(pub String);

impl FromStr for Level {
    type Err = ParseLevelError;

    /// Case-insensitive; `warning` is accepted for `warn`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "debug" => Ok(Level::Debug),
            "info" => Ok(Level::Info),
            "warn" | "warning" => Ok(Level::Warn),
            "error" => Ok(Level::Error),
            _ => Err(ParseLevelError(s.to_string())),
        }
    }
}

/// An event to record. Never put a credential in any field.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub level: Level,
    /// Short machine-friendly kind, e.g. `failover`, `tuner`, `sync`.
    pub category: &'a str,
    pub message: String,
    /// Structured fields (channel, from_stream, reason, ...).
    pub details: serde_json::Value,
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Grows with every event: `--follow` resumes after the last id it saw.
    pub id: i64,
    /// RFC 3339, UTC.
    pub timestamp: String,
    pub level: Level,
    pub category: String,
    pub message: String,
    pub details: serde_json::Value,
}

const COLUMNS: &str = "id, timestamp, level, category, message, details";

fn stored_event(row: &Row<'_>) -> rusqlite::Result<Result<StoredEvent, StoreError>> {
    let id: i64 = row.get(0)?;
    let level: String = row.get(2)?;
    let details: String = row.get(5)?;
    let Ok(level) = level.parse() else {
        return Ok(Err(StoreError::Corrupt {
            what: format!("level {level:?} of event #{id}"),
        }));
    };
    Ok(Ok(StoredEvent {
        id,
        timestamp: row.get(1)?,
        level,
        category: row.get(3)?,
        message: row.get(4)?,
        // Kept as text if damaged: the event log is what one reads when things are broken.
        details: serde_json::from_str(&details).unwrap_or(serde_json::Value::String(details)),
    }))
}

/// Events kept: each new one deletes those this many ids older, so the log on the SD card stays
/// within a few MB (an event is a few hundred bytes) however long the appliance runs: weeks of
/// a busy household's sessions and failovers.
pub const EVENTS_KEPT: i64 = 20_000;

impl Store {
    /// Records an event stamped with the current time, dropping the oldest past
    /// [`EVENTS_KEPT`]; returns its id.
    pub fn log_event(&self, event: &Event<'_>) -> Result<i64, StoreError> {
        self.record_event(event, EVENTS_KEPT)
    }

    fn record_event(&self, event: &Event<'_>, kept: i64) -> Result<i64, StoreError> {
        let doing = || {
            format!(
                "recording a {} event in {}",
                event.category,
                self.db_path.display()
            )
        };
        // One transaction: the insert and the trim are one write, one commit.
        let tx = self.conn.unchecked_transaction().ctx(doing)?;
        let id = tx
            .prepare_cached(
                "INSERT INTO event_log (timestamp, level, category, message, details) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut stmt| {
                stmt.insert(params![
                    rfc3339(SystemTime::now()),
                    event.level.as_str(),
                    event.category,
                    event.message,
                    event.details.to_string()
                ])
            })
            .ctx(doing)?;
        // Ids only grow (AUTOINCREMENT), so the oldest are a range of the primary key.
        tx.prepare_cached("DELETE FROM event_log WHERE id <= ?1")
            .and_then(|mut stmt| stmt.execute([id - kept]))
            .ctx(doing)?;
        tx.commit().ctx(doing)?;
        Ok(id)
    }

    /// The `limit` newest events at `min_level` or above, newest first.
    pub fn events(
        &self,
        min_level: Option<Level>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.query_events(
            &format!(
                "SELECT {COLUMNS} FROM event_log WHERE {LEVEL_RANK_SQL} >= ?1 \
                 ORDER BY id DESC LIMIT ?2"
            ),
            params![min_level.map_or(0, Level::rank), sql_int(limit)],
        )
    }

    /// Up to `limit` events newer than `after_id` at `min_level` or above, oldest first: the
    /// next page for `events --follow`.
    pub fn events_after(
        &self,
        after_id: i64,
        min_level: Option<Level>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.query_events(
            &format!(
                "SELECT {COLUMNS} FROM event_log WHERE id > ?1 AND {LEVEL_RANK_SQL} >= ?2 \
                 ORDER BY id LIMIT ?3"
            ),
            params![after_id, min_level.map_or(0, Level::rank), sql_int(limit)],
        )
    }

    fn query_events(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let doing = || "reading events".to_string();
        let mut stmt = self.conn.prepare_cached(sql).ctx(doing)?;
        let rows = stmt
            .query_map(params, stored_event)
            .ctx(doing)?
            .collect::<Result<Vec<_>, _>>()
            .ctx(doing)?;
        rows.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::temp_store;
    use serde_json::json;

    fn log(store: &Store, level: Level, message: &str) -> i64 {
        store
            .log_event(&Event {
                level,
                category: "test",
                message: message.to_string(),
                details: json!({ "n": message }),
            })
            .expect("log")
    }

    #[test]
    fn newest_first_with_level_filter_and_limit() {
        let (_dir, store) = temp_store();
        let ids = [
            log(&store, Level::Info, "a"),
            log(&store, Level::Warn, "b"),
            log(&store, Level::Debug, "c"),
            log(&store, Level::Error, "d"),
            log(&store, Level::Info, "e"),
        ];
        assert!(ids.windows(2).all(|w| w[0] < w[1]));

        let messages = |events: Vec<StoredEvent>| -> Vec<String> {
            events.into_iter().map(|e| e.message).collect()
        };
        assert_eq!(
            messages(store.events(None, 10).expect("all")),
            ["e", "d", "c", "b", "a"]
        );
        assert_eq!(messages(store.events(None, 2).expect("limit")), ["e", "d"]);
        assert_eq!(
            messages(store.events(Some(Level::Warn), 10).expect("warn+")),
            ["d", "b"]
        );
        assert_eq!(
            messages(store.events(Some(Level::Info), 10).expect("info+")),
            ["e", "d", "b", "a"]
        );
        assert!(store.events(None, 0).expect("zero").is_empty());

        let newest = &store.events(None, 1).expect("one")[0];
        assert_eq!(newest.id, ids[4]);
        assert_eq!(newest.level, Level::Info);
        assert_eq!(newest.category, "test");
        assert_eq!(newest.details, json!({ "n": "e" }));
        assert_eq!(newest.timestamp.len(), "2026-11-21T21:06:16Z".len());
        assert!(newest.timestamp.ends_with('Z'));
    }

    #[test]
    fn only_the_newest_events_are_kept() {
        let (_dir, store) = temp_store();
        let event = |n: usize| Event {
            level: Level::Info,
            category: "test",
            message: format!("{n}"),
            details: json!({}),
        };
        for n in 0..25 {
            store.record_event(&event(n), 10).expect("log");
        }
        let kept: Vec<String> = store
            .events(None, 100)
            .expect("read")
            .into_iter()
            .map(|e| e.message)
            .collect();
        let newest: Vec<String> = (15..25).rev().map(|n| n.to_string()).collect();
        assert_eq!(kept, newest);
        // `--follow` resumes by id: the survivors keep theirs.
        let after = store.events_after(0, None, 100).expect("follow");
        assert_eq!(after.len(), 10);
        assert_eq!(after[0].id, 16);
    }

    #[test]
    fn follow_pages_oldest_first() {
        let (_dir, store) = temp_store();
        let first = log(&store, Level::Info, "a");
        log(&store, Level::Debug, "b");
        log(&store, Level::Warn, "c");
        log(&store, Level::Error, "d");
        let page = store.events_after(first, None, 2).expect("page");
        let got: Vec<_> = page.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(got, ["b", "c"]);
        let rest = store
            .events_after(page[1].id, Some(Level::Warn), 10)
            .expect("rest");
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].message, "d");
        assert!(
            store
                .events_after(rest[0].id, None, 10)
                .expect("none")
                .is_empty()
        );
    }

    #[test]
    fn damaged_details_are_shown_as_text() {
        let (_dir, store) = temp_store();
        let id = log(&store, Level::Info, "a");
        store
            .conn
            .execute("UPDATE event_log SET details = '{oops' WHERE id = ?1", [id])
            .expect("damage");
        let events = store.events(None, 1).expect("read");
        assert_eq!(events[0].details, json!("{oops"));
    }

    #[test]
    fn levels_parse_case_insensitively() {
        assert_eq!("WARN".parse(), Ok(Level::Warn));
        assert_eq!("Warning".parse(), Ok(Level::Warn));
        assert_eq!(" error ".parse(), Ok(Level::Error));
        assert_eq!("debug".parse(), Ok(Level::Debug));
        assert_eq!("Info".parse(), Ok(Level::Info));
        let err = "loud".parse::<Level>().expect_err("not a level");
        assert_eq!(
            err.to_string(),
            "unknown level \"loud\": expected debug, info, warn or error"
        );
        assert!(Level::Debug < Level::Info && Level::Warn < Level::Error);
        for level in [Level::Debug, Level::Info, Level::Warn, Level::Error] {
            assert_eq!(level.as_str().parse(), Ok(level));
            assert_eq!(
                serde_json::to_value(level).expect("json"),
                json!(level.as_str())
            );
        }
    }
}
