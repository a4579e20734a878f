//! What was measured of each stream (SPEC §7 Selection): one row per stream, replaced by the next
//! measurement, deleted with the stream. Written at most once per stream per session, or by
//! `probe`: never per packet, so the SD card is spared.

use std::time::SystemTime;

use rusqlite::params;
use serde::Serialize;

use super::{Ctx, Store, StoreError};
use crate::measure::Measurement;
use crate::time::rfc3339;

/// How a measurement was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// While the stream played for viewers.
    Session,
    /// By `streamforge probe`.
    Probe,
}

impl How {
    fn as_str(self) -> &'static str {
        match self {
            How::Session => "session",
            How::Probe => "probe",
        }
    }
}

/// A stored measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measured {
    #[serde(flatten)]
    pub facts: Measurement,
    /// RFC 3339, UTC.
    pub measured_at: String,
    /// `session` or `probe`.
    pub how: String,
}

/// The columns a query selects for a stream's measurement (table alias `sm`).
pub(super) const COLUMNS: &str = "sm.facts, sm.measured_at, sm.how";
/// The join that brings them (stream table alias `x` or `c` given as `stream`).
pub(super) fn join(stream: &str) -> String {
    format!("LEFT JOIN stream_measurements sm ON sm.xtream_channel_id = {stream}.id")
}

/// The measurement in three selected columns, if the stream has one.
pub(super) fn read(
    row: &rusqlite::Row,
    first: usize,
    stream_row: i64,
) -> Result<Option<Measured>, StoreError> {
    let doing = || format!("reading the measurement of stream row #{stream_row}");
    let facts: Option<String> = row.get(first).ctx(doing)?;
    let Some(facts) = facts else {
        return Ok(None);
    };
    let facts = serde_json::from_str(&facts).map_err(|e| StoreError::Corrupt {
        what: format!("measurement of stream row #{stream_row}: {e}"),
    })?;
    Ok(Some(Measured {
        facts,
        measured_at: row.get(first + 1).ctx(doing)?,
        how: row.get(first + 2).ctx(doing)?,
    }))
}

impl Store {
    /// Stores what was measured of a stream, in place of what was before. Returns `false` when
    /// the stream is gone (a sync dropped it meanwhile): nothing to keep then.
    pub fn record_measurement(
        &self,
        stream_row: i64,
        facts: &Measurement,
        how: How,
        at: SystemTime,
    ) -> Result<bool, StoreError> {
        let doing = || {
            format!(
                "storing the measurement of stream row #{stream_row} in {}",
                self.db_path.display()
            )
        };
        let json = serde_json::to_string(facts).map_err(|e| StoreError::Corrupt {
            what: format!("measurement of stream row #{stream_row}: {e}"),
        })?;
        let changed = self
            .conn
            .execute(
                "INSERT INTO stream_measurements (xtream_channel_id, facts, measured_at, how) \
                 SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM xtream_channels WHERE id = ?1) \
                 ON CONFLICT (xtream_channel_id) DO UPDATE SET facts = excluded.facts, \
                 measured_at = excluded.measured_at, how = excluded.how",
                params![stream_row, json, rfc3339(at), how.as_str()],
            )
            .ctx(doing)?;
        Ok(changed > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::accounts::tests::new_account;
    use crate::store::tests::temp_store;
    use crate::store::{CatalogStream, StreamFilter};

    fn picture(width: u32, height: u32) -> Measurement {
        Measurement::h264(width, height, Some(1_500_000))
    }

    #[test]
    fn a_measurement_is_kept_replaced_and_dropped_with_its_stream() {
        let (_dir, store) = temp_store();
        let account = store.add_account(&new_account("main")).expect("add");
        let stream = |id| CatalogStream {
            playlist: None,
            stream_id: id,
            name: format!("Stream {id}"),
            icon: None,
            category: None,
            epg_channel_id: None,
            qualities: Vec::new(),
            tier: 1,
        };
        store
            .replace_catalog(account.id, &[stream(1), stream(2)])
            .expect("sync");
        let listed = store.streams(&StreamFilter::default()).expect("list");
        let row = listed[0].id;
        assert!(listed.iter().all(|s| s.measured.is_none()));

        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let first = picture(640, 360);
        assert!(
            store
                .record_measurement(row, &first, How::Session, at)
                .expect("store")
        );
        let second = picture(1280, 720);
        assert!(
            store
                .record_measurement(row, &second, How::Probe, at)
                .expect("store")
        );
        let listed = store.streams(&StreamFilter::default()).expect("list");
        let measured = listed[0].measured.as_ref().expect("measured");
        assert_eq!(measured.facts, second, "the newer replaces the older");
        assert_eq!(measured.how, "probe");
        assert_eq!(measured.measured_at, rfc3339(at));
        assert!(listed[1].measured.is_none());

        // The stream goes at the next sync: so does its measurement, and a late one is refused.
        store
            .replace_catalog(account.id, &[stream(2)])
            .expect("sync");
        assert!(
            !store
                .record_measurement(row, &first, How::Session, at)
                .expect("store")
        );
        let count: i64 = store
            .conn
            .query_row("SELECT count(*) FROM stream_measurements", [], |r| r.get(0))
            .expect("count");
        assert_eq!(count, 0);
    }
}
