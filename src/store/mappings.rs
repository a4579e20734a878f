//! Channel mappings (guide channel → provider streams, in priority order) and the lineup they
//! make: enabled channels with at least one stream on an enabled account.
//!
//! Auto-mapping replaces only the automatic mappings, in one transaction; manual ones are the
//! user's and survive every re-plan. Within a channel, the stream with the lowest priority value
//! is primary.

use super::measurements::{self, Measured};
use super::{Ctx, Store, StoreError};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// A mapping with enough of both ends to show and to tune.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mapping {
    pub channel_row: i64,
    pub channel_number: String,
    pub channel_id: String,
    pub stream_row: i64,
    pub account_id: i64,
    pub account_name: String,
    pub account_active: bool,
    pub max_connections: u32,
    pub stream_id: i64,
    pub stream_name: String,
    /// The provider's category name for the stream.
    pub category: Option<String>,
    pub tier: i64,
    pub confidence: f64,
    pub is_manual: bool,
    pub is_primary: bool,
    pub priority: i64,
    /// The quality labels of the stream's name (`qualities`).
    pub labels: Vec<String>,
    /// What was last measured of the stream.
    pub measured: Option<Measured>,
}

impl Mapping {
    /// `ACCOUNT:STREAM_ID`, as the CLI and the events name a stream.
    pub fn stream_ref(&self) -> String {
        format!("{}:{}", self.account_name, self.stream_id)
    }
}

/// One automatic mapping to store.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedMapping {
    pub channel_row: i64,
    pub stream_row: i64,
    pub confidence: f64,
    pub priority: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MappingChange {
    pub before: usize,
    pub after: usize,
    /// Planned pairs already mapped by hand, left as the user set them.
    pub kept_manual: usize,
}

const MAPPING_QUERY: &str = "SELECT m.xmltv_channel_id, c.number, c.channel_id, m.xtream_channel_id, \
     a.id, a.name, a.is_active, a.max_connections, x.stream_id, x.name, x.tier, \
     m.match_confidence, m.is_manual, m.is_primary, m.stream_priority, x.category, x.qualities, \
     sm.facts, sm.measured_at, sm.how \
     FROM channel_mappings m \
     JOIN xmltv_channels c ON c.id = m.xmltv_channel_id \
     JOIN xtream_channels x ON x.id = m.xtream_channel_id \
     JOIN accounts a ON a.id = x.account_id \
     LEFT JOIN stream_measurements sm ON sm.xtream_channel_id = x.id";

fn read_mappings<P: rusqlite::Params>(
    conn: &Connection,
    filter: &str,
    params: P,
) -> Result<Vec<Mapping>, StoreError> {
    let doing = || "reading channel mappings".to_string();
    let mut statement = conn
        .prepare(&format!(
            "{MAPPING_QUERY} {filter} ORDER BY m.xmltv_channel_id, m.stream_priority, \
             m.is_manual DESC, x.tier DESC, m.match_confidence DESC"
        ))
        .ctx(doing)?;
    let mut rows = statement.query(params).ctx(doing)?;
    let mut found = Vec::new();
    while let Some(r) = rows.next().ctx(doing)? {
        let stream_row: i64 = r.get(3).ctx(doing)?;
        let labels: String = r.get(16).ctx(doing)?;
        let labels = serde_json::from_str(&labels).map_err(|e| StoreError::Corrupt {
            what: format!("qualities of stream row #{stream_row}: {e}"),
        })?;
        let mapping = (|| {
            Ok(Mapping {
                channel_row: r.get(0)?,
                channel_number: r.get(1)?,
                channel_id: r.get(2)?,
                stream_row,
                account_id: r.get(4)?,
                account_name: r.get(5)?,
                account_active: r.get(6)?,
                max_connections: r.get(7)?,
                stream_id: r.get(8)?,
                stream_name: r.get(9)?,
                tier: r.get(10)?,
                confidence: r.get(11)?,
                is_manual: r.get(12)?,
                is_primary: r.get(13)?,
                priority: r.get(14)?,
                category: r.get(15)?,
                labels,
                measured: None,
            })
        })()
        .ctx(doing)?;
        found.push(Mapping {
            measured: measurements::read(r, 17, stream_row)?,
            ..mapping
        });
    }
    Ok(found)
}

/// Marks the first stream of each channel (in `read_mappings` order) primary, the rest not.
fn refresh_primaries(conn: &Connection) -> Result<(), StoreError> {
    let doing = || "choosing primary streams".to_string();
    conn.execute_batch(
        "UPDATE channel_mappings SET is_primary = (id = (
             SELECT m2.id FROM channel_mappings m2
             JOIN xtream_channels x2 ON x2.id = m2.xtream_channel_id
             WHERE m2.xmltv_channel_id = channel_mappings.xmltv_channel_id
             ORDER BY m2.stream_priority, m2.is_manual DESC, x2.tier DESC, m2.match_confidence DESC
             LIMIT 1));",
    )
    .ctx(doing)
}

impl Store {
    /// Every mapping, or one channel's, in priority order.
    pub fn mappings(&self, channel_row: Option<i64>) -> Result<Vec<Mapping>, StoreError> {
        match channel_row {
            Some(row) => read_mappings(&self.conn, "WHERE m.xmltv_channel_id = ?1", [row]),
            None => read_mappings(&self.conn, "", []),
        }
    }

    /// The row id of `ACCOUNT:STREAM_ID`.
    pub fn stream_row(&self, account: &str, stream_id: i64) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT x.id FROM xtream_channels x JOIN accounts a ON a.id = x.account_id \
                 WHERE a.name = ?1 AND x.stream_id = ?2",
                params![account, stream_id],
                |r| r.get(0),
            )
            .optional()
            .ctx(|| format!("looking up stream {account}:{stream_id}"))?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "no stream {account}:{stream_id} (see `streamforge streams --account {account}`; sync first?)"
                ))
            })
    }

    /// Maps a stream to a channel by hand. Without a priority it goes after the channel's
    /// current streams.
    pub fn add_manual_mapping(
        &self,
        channel_row: i64,
        stream_row: i64,
        priority: Option<i64>,
    ) -> Result<(), StoreError> {
        let doing = || {
            format!(
                "mapping stream #{stream_row} to channel #{channel_row} in {}",
                self.db_path.display()
            )
        };
        let tx = self.conn.unchecked_transaction().ctx(doing)?;
        let priority = match priority {
            Some(p) => p,
            None => tx
                .query_row(
                    "SELECT COALESCE(MAX(stream_priority) + 1, 0) FROM channel_mappings \
                     WHERE xmltv_channel_id = ?1 AND xtream_channel_id != ?2",
                    [channel_row, stream_row],
                    |r| r.get(0),
                )
                .ctx(doing)?,
        };
        tx.execute(
            "INSERT INTO channel_mappings (xmltv_channel_id, xtream_channel_id, match_confidence, \
             is_manual, stream_priority) VALUES (?1, ?2, 1.0, 1, ?3) \
             ON CONFLICT (xmltv_channel_id, xtream_channel_id) DO UPDATE SET is_manual = 1, \
             match_confidence = 1.0, stream_priority = excluded.stream_priority",
            params![channel_row, stream_row, priority],
        )
        .ctx(doing)?;
        refresh_primaries(&tx)?;
        tx.commit().ctx(doing)
    }

    pub fn remove_mapping(&self, channel_row: i64, stream_row: i64) -> Result<(), StoreError> {
        let doing = || {
            format!(
                "unmapping stream #{stream_row} from channel #{channel_row} in {}",
                self.db_path.display()
            )
        };
        let tx = self.conn.unchecked_transaction().ctx(doing)?;
        let removed = tx
            .execute(
                "DELETE FROM channel_mappings WHERE xmltv_channel_id = ?1 AND xtream_channel_id = ?2",
                [channel_row, stream_row],
            )
            .ctx(doing)?;
        if removed == 0 {
            return Err(StoreError::NotFound(
                "that stream is not mapped to that channel (see `streamforge map list`)".into(),
            ));
        }
        refresh_primaries(&tx)?;
        tx.commit().ctx(doing)
    }

    /// Gives automatic mappings (channel row, stream row) new priorities in one transaction;
    /// manual mappings are never touched.
    pub fn set_auto_priorities(&self, priorities: &[(i64, i64, i64)]) -> Result<(), StoreError> {
        let doing = || {
            format!(
                "re-ordering automatic mappings in {}",
                self.db_path.display()
            )
        };
        let tx = self.conn.unchecked_transaction().ctx(doing)?;
        {
            let mut update = tx
                .prepare_cached(
                    "UPDATE channel_mappings SET stream_priority = ?3 \
                     WHERE xmltv_channel_id = ?1 AND xtream_channel_id = ?2 AND is_manual = 0",
                )
                .ctx(doing)?;
            for &(channel, stream, priority) in priorities {
                update.execute([channel, stream, priority]).ctx(doing)?;
            }
        }
        refresh_primaries(&tx)?;
        tx.commit().ctx(doing)
    }

    /// Replaces every automatic mapping with `planned` in one transaction; manual mappings stay.
    pub fn replace_auto_mappings(
        &self,
        planned: &[PlannedMapping],
    ) -> Result<MappingChange, StoreError> {
        let doing = || format!("replacing automatic mappings in {}", self.db_path.display());
        let tx = self.conn.unchecked_transaction().ctx(doing)?;
        let count = |tx: &Connection| -> Result<usize, StoreError> {
            tx.query_row("SELECT COUNT(*) FROM channel_mappings", [], |r| {
                r.get::<_, i64>(0)
            })
            .ctx(doing)
            .map(|n| usize::try_from(n).unwrap_or(0))
        };
        let before = count(&tx)?;
        tx.execute("DELETE FROM channel_mappings WHERE is_manual = 0", [])
            .ctx(doing)?;
        let mut kept_manual = 0;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO channel_mappings (xmltv_channel_id, xtream_channel_id, \
                     match_confidence, is_manual, stream_priority) VALUES (?1, ?2, ?3, 0, ?4) \
                     ON CONFLICT (xmltv_channel_id, xtream_channel_id) DO NOTHING",
                )
                .ctx(doing)?;
            for m in planned {
                let inserted = insert
                    .execute(params![
                        m.channel_row,
                        m.stream_row,
                        m.confidence,
                        m.priority
                    ])
                    .ctx(doing)?;
                if inserted == 0 {
                    kept_manual += 1;
                }
            }
        }
        refresh_primaries(&tx)?;
        let after = count(&tx)?;
        tx.commit().ctx(doing)?;
        Ok(MappingChange {
            before,
            after,
            kept_manual,
        })
    }

    /// The pairs mapped by hand, which auto-mapping must leave alone.
    pub fn manual_pairs(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        let doing = || "reading manual mappings".to_string();
        self.conn
            .prepare("SELECT xmltv_channel_id, xtream_channel_id FROM channel_mappings WHERE is_manual = 1")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .ctx(doing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::accounts::tests::new_account;
    use crate::store::tests::temp_store;
    use crate::store::{CatalogStream, GuideChannelInput, NewSource, SourceKind};

    /// A store with one account of three streams (ids 1, 2, 3; tiers 1, 3, 2) and one guide
    /// channel; returns (channel row, stream rows).
    fn setup() -> (tempfile::TempDir, Store, i64, Vec<i64>) {
        let (dir, store) = temp_store();
        let account = store.add_account(&new_account("acc")).unwrap();
        let streams: Vec<CatalogStream> = [(1, 1), (2, 3), (3, 2)]
            .iter()
            .map(|&(id, tier)| CatalogStream {
                playlist: None,
                stream_id: id,
                name: format!("stream {id}"),
                icon: None,
                category: None,
                epg_channel_id: None,
                qualities: vec![],
                tier,
            })
            .collect();
        store.replace_catalog(account.id, &streams).unwrap();
        let source = store
            .add_source(&NewSource {
                name: "g".into(),
                kind: SourceKind::File,
                location: "/g.xml".into(),
                shift_seconds: 0,
            })
            .unwrap();
        store
            .replace_guide_channels(
                source.id,
                &[GuideChannelInput {
                    channel_id: "one.uk".into(),
                    display_names: vec!["One".into()],
                    icon: None,
                    number: Some("1".into()),
                }],
                100,
                None,
            )
            .unwrap();
        let channel = store.guide_channel("one.uk").unwrap().id;
        let rows = (1..=3)
            .map(|id| store.stream_row("acc", id).unwrap())
            .collect();
        (dir, store, channel, rows)
    }

    fn order(store: &Store, channel: i64) -> Vec<(i64, bool, bool)> {
        store
            .mappings(Some(channel))
            .unwrap()
            .iter()
            .map(|m| (m.stream_id, m.is_primary, m.is_manual))
            .collect()
    }

    #[test]
    fn auto_mappings_replace_each_other_and_choose_a_primary() {
        let (_dir, store, channel, rows) = setup();
        let plan = |pairs: &[(usize, i64)]| -> Vec<PlannedMapping> {
            pairs
                .iter()
                .map(|&(i, priority)| PlannedMapping {
                    channel_row: channel,
                    stream_row: rows[i],
                    confidence: 0.9,
                    priority,
                })
                .collect()
        };
        store
            .replace_auto_mappings(&plan(&[(1, 0), (2, 1), (0, 2)]))
            .unwrap();
        assert_eq!(
            order(&store, channel),
            vec![(2, true, false), (3, false, false), (1, false, false)]
        );
        let change = store.replace_auto_mappings(&plan(&[(0, 0)])).unwrap();
        assert_eq!((change.before, change.after), (3, 1));
        assert_eq!(order(&store, channel), vec![(1, true, false)]);
    }

    #[test]
    fn manual_mappings_survive_auto_mapping() {
        let (_dir, store, channel, rows) = setup();
        store.add_manual_mapping(channel, rows[0], None).unwrap();
        let change = store
            .replace_auto_mappings(&[
                PlannedMapping {
                    channel_row: channel,
                    stream_row: rows[0],
                    confidence: 0.5,
                    priority: 5,
                },
                PlannedMapping {
                    channel_row: channel,
                    stream_row: rows[1],
                    confidence: 0.9,
                    priority: 1,
                },
            ])
            .unwrap();
        assert_eq!(change.kept_manual, 1);
        // The manual mapping keeps priority 0 and stays primary.
        assert_eq!(
            order(&store, channel),
            vec![(1, true, true), (2, false, false)]
        );
        assert_eq!(store.manual_pairs().unwrap(), vec![(channel, rows[0])]);
        store.remove_mapping(channel, rows[0]).unwrap();
        assert_eq!(order(&store, channel), vec![(2, true, false)]);
        assert!(matches!(
            store.remove_mapping(channel, rows[0]),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn manual_mapping_without_priority_goes_last() {
        let (_dir, store, channel, rows) = setup();
        store.add_manual_mapping(channel, rows[1], Some(0)).unwrap();
        store.add_manual_mapping(channel, rows[2], None).unwrap();
        let mappings = store.mappings(Some(channel)).unwrap();
        assert_eq!(mappings[1].stream_ref(), "acc:3");
        assert_eq!(mappings[1].priority, 1);
    }

    #[test]
    fn unknown_stream_reference() {
        let (_dir, store, _, _) = setup();
        assert!(matches!(
            store.stream_row("acc", 99),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.stream_row("nobody", 1),
            Err(StoreError::NotFound(_))
        ));
    }
}
