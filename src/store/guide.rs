//! Guide sources and their channels, with the lineup's channel numbers.
//!
//! A refresh replaces a source's channels in one transaction, after the new guide parsed. A
//! channel keeps its row id (mappings point at it), its enabled flag and its number for as long
//! as the guide lists it. Numbers are unique across sources: the guide's own number when it has
//! one that is free, else the next free number from the configured start; a number the user set
//! never changes on refresh.

use super::{Ctx, Store, StoreError, is_unique_violation};
use crate::time::rfc3339;
use rusqlite::{Row, Transaction, params};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

/// Associated data for sealed source locations (URLs may carry credentials).
const LOCATION_AAD: &[u8] = b"streamforge xmltv_sources.location_encrypted";

/// Where a guide comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// An http(s) URL, fetched with the upstream client.
    Url,
    /// A file on this machine.
    File,
    /// `xtream:ACCOUNT`: the account's `xmltv.php`.
    Xtream,
}

impl SourceKind {
    fn as_str(self) -> &'static str {
        match self {
            SourceKind::Url => "url",
            SourceKind::File => "file",
            SourceKind::Xtream => "xtream",
        }
    }

    fn parse(text: &str) -> Option<SourceKind> {
        match text {
            "url" => Some(SourceKind::Url),
            "file" => Some(SourceKind::File),
            "xtream" => Some(SourceKind::Xtream),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewSource {
    pub name: String,
    pub kind: SourceKind,
    /// The URL, the absolute file path, or the account name.
    pub location: String,
    pub shift_seconds: i64,
}

/// A stored guide source. Serializes without its location, which may carry credentials.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub id: i64,
    pub name: String,
    pub kind: SourceKind,
    #[serde(skip)]
    pub location: String,
    pub shift_seconds: i64,
    pub last_refresh_at: Option<String>,
    pub last_status: Option<String>,
    pub channel_count: i64,
    /// RFC 3339: the end of the last programme at the last successful refresh.
    pub programmes_until: Option<String>,
    /// The cached guide its channels came from: a file name in `<data_dir>/guides`.
    #[serde(skip)]
    pub cache_file: Option<String>,
}

/// What a successful refresh found.
#[derive(Debug, Clone, Copy)]
pub struct Refreshed {
    pub channels: usize,
    pub programmes_until: Option<SystemTime>,
}

/// One channel of a freshly parsed guide.
#[derive(Debug, Clone, PartialEq)]
pub struct GuideChannelInput {
    pub channel_id: String,
    pub display_names: Vec<String>,
    pub icon: Option<String>,
    /// The number the guide gives it (numeric display-name or lcn), if any.
    pub number: Option<String>,
}

/// What a guide refresh did to the stored channels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GuideChange {
    pub added: usize,
    pub kept: usize,
    pub removed: usize,
}

/// A stored guide channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuideChannel {
    pub id: i64,
    pub source_id: i64,
    pub source_name: String,
    pub channel_id: String,
    pub display_names: Vec<String>,
    pub icon: Option<String>,
    pub number: String,
    pub enabled: bool,
}

impl GuideChannel {
    /// The first display-name that is not just a number, else the channel id.
    pub fn name(&self) -> &str {
        self.display_names
            .iter()
            .find(|n| !is_channel_number(n))
            .map_or(self.channel_id.as_str(), String::as_str)
    }
}

/// Whether a display-name is a channel number such as `101` or `4.1`.
pub fn is_channel_number(text: &str) -> bool {
    let mut parts = text.split('.');
    let numeric = |p: &str| !p.is_empty() && p.len() <= 6 && p.bytes().all(|b| b.is_ascii_digit());
    parts.next().is_some_and(numeric) && parts.clone().count() <= 1 && parts.all(numeric)
}

const CHANNEL_COLUMNS: &str = "c.id, c.source_id, s.name, c.channel_id, c.display_names, c.icon, \
                               c.number, c.enabled";

fn channel_from_row(row: &Row<'_>) -> rusqlite::Result<GuideChannel> {
    let names: String = row.get(4)?;
    Ok(GuideChannel {
        id: row.get(0)?,
        source_id: row.get(1)?,
        source_name: row.get(2)?,
        channel_id: row.get(3)?,
        display_names: serde_json::from_str(&names).unwrap_or_default(),
        icon: row.get(5)?,
        number: row.get(6)?,
        enabled: row.get(7)?,
    })
}

impl Store {
    pub fn add_source(&self, new: &NewSource) -> Result<Source, StoreError> {
        if new.name.trim().is_empty() || new.name.chars().any(char::is_control) {
            return Err(StoreError::Conflict(format!(
                "invalid guide source name {:?}",
                new.name
            )));
        }
        let doing = || {
            format!(
                "adding guide source {:?} in {}",
                new.name,
                self.db_path.display()
            )
        };
        let sealed = self.sealing_cipher()?.seal(LOCATION_AAD, &new.location)?;
        let inserted = self.conn.execute(
            "INSERT INTO xmltv_sources (name, location_encrypted, kind, shift_seconds) \
             VALUES (?1, ?2, ?3, ?4)",
            params![new.name, sealed, new.kind.as_str(), new.shift_seconds],
        );
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!(
                    "a guide source named {:?} already exists",
                    new.name
                )));
            }
            other => other.ctx(doing)?,
        };
        self.source(&new.name)
    }

    pub fn sources(&self) -> Result<Vec<Source>, StoreError> {
        self.query_sources("", [])
    }

    pub fn source(&self, name: &str) -> Result<Source, StoreError> {
        self.query_sources("WHERE name = ?1", [name])?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("no guide source named {name:?}")))
    }

    fn query_sources<P: rusqlite::Params>(
        &self,
        filter: &str,
        params: P,
    ) -> Result<Vec<Source>, StoreError> {
        let doing = || "reading guide sources".to_string();
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT id, name, kind, location_encrypted, shift_seconds, last_refresh_at, \
                 last_status, channel_count, programmes_until, cache_file FROM xmltv_sources {filter} \
                 ORDER BY name"
            ))
            .ctx(doing)?;
        let rows = statement
            .query_map(params, |row| {
                Ok((
                    Source {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        kind: SourceKind::Url,
                        location: String::new(),
                        shift_seconds: row.get(4)?,
                        last_refresh_at: row.get(5)?,
                        last_status: row.get(6)?,
                        channel_count: row.get(7)?,
                        programmes_until: row.get(8)?,
                        cache_file: row.get(9)?,
                    },
                    row.get::<_, String>(2)?,
                    row.get::<_, Vec<u8>>(3)?,
                ))
            })
            .ctx(doing)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx(doing)?;
        rows.into_iter()
            .map(|(mut source, kind, sealed)| {
                source.kind = SourceKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
                    what: format!("guide source {:?} has kind {kind:?}", source.name),
                })?;
                source.location = self.unseal(LOCATION_AAD, &sealed, || {
                    format!("the location of guide source {:?}", source.name)
                })?;
                Ok(source)
            })
            .collect()
    }

    /// Removes a source with its channels and their mappings.
    pub fn remove_source(&self, name: &str) -> Result<(), StoreError> {
        let removed = self
            .conn
            .execute("DELETE FROM xmltv_sources WHERE name = ?1", [name])
            .ctx(|| {
                format!(
                    "removing guide source {name:?} in {}",
                    self.db_path.display()
                )
            })?;
        if removed == 0 {
            return Err(StoreError::NotFound(format!(
                "no guide source named {name:?}"
            )));
        }
        Ok(())
    }

    /// Records the outcome of a refresh attempt; what it found only on success.
    pub fn record_refresh(
        &self,
        source_id: i64,
        status: &str,
        refreshed: Option<Refreshed>,
    ) -> Result<(), StoreError> {
        let now = rfc3339(SystemTime::now());
        match refreshed {
            Some(found) => self.conn.execute(
                "UPDATE xmltv_sources SET last_refresh_at = ?2, last_status = ?3, \
                 channel_count = ?4, programmes_until = ?5 WHERE id = ?1",
                params![
                    source_id,
                    now,
                    status,
                    super::sql_int(found.channels),
                    found.programmes_until.map(rfc3339)
                ],
            ),
            None => self.conn.execute(
                "UPDATE xmltv_sources SET last_refresh_at = ?2, last_status = ?3 WHERE id = ?1",
                params![source_id, now, status],
            ),
        }
        .ctx(|| {
            format!(
                "recording the refresh of guide source #{source_id} in {}",
                self.db_path.display()
            )
        })?;
        Ok(())
    }

    /// Replaces a source's channels in one transaction, numbering new ones (see module doc).
    /// `cache_file` names the cached guide they come from, recorded in the same transaction.
    pub fn replace_guide_channels(
        &self,
        source_id: i64,
        channels: &[GuideChannelInput],
        first_number: u32,
        cache_file: Option<&str>,
    ) -> Result<GuideChange, StoreError> {
        let doing = || {
            format!(
                "replacing the channels of guide source #{source_id} in {}",
                self.db_path.display()
            )
        };
        let tx = self.conn.unchecked_transaction().ctx(doing)?;
        let existing: HashMap<String, (i64, String, String)> = tx
            .prepare("SELECT channel_id, id, number, number_origin FROM xmltv_channels WHERE source_id = ?1")
            .and_then(|mut s| {
                s.query_map([source_id], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))?
                    .collect()
            })
            .ctx(doing)?;
        let listed: HashSet<&str> = channels.iter().map(|c| c.channel_id.as_str()).collect();
        let mut change = GuideChange::default();
        for (channel_id, (id, _, _)) in &existing {
            if !listed.contains(channel_id.as_str()) {
                tx.execute("DELETE FROM xmltv_channels WHERE id = ?1", [id])
                    .ctx(doing)?;
                change.removed += 1;
            }
        }
        let mut numbers = Numbers::load(&tx, first_number).ctx(doing)?;
        let mut seen = HashSet::new();
        for channel in channels {
            if !seen.insert(channel.channel_id.as_str()) {
                continue;
            }
            let names = serde_json::Value::from(channel.display_names.clone()).to_string();
            match existing.get(&channel.channel_id) {
                Some((id, number, origin)) => {
                    let (number, origin) = match (origin.as_str(), &channel.number) {
                        ("guide" | "assigned", Some(wanted)) if wanted != number => {
                            match numbers.take(wanted) {
                                true => {
                                    numbers.release(number);
                                    (wanted.clone(), "guide")
                                }
                                false => (number.clone(), origin.as_str()),
                            }
                        }
                        _ => (number.clone(), origin.as_str()),
                    };
                    tx.execute(
                        "UPDATE xmltv_channels SET display_names = ?2, icon = ?3, number = ?4, \
                         number_origin = ?5 WHERE id = ?1",
                        params![id, names, channel.icon, number, origin],
                    )
                    .ctx(doing)?;
                    change.kept += 1;
                }
                None => {
                    let (number, origin) = match &channel.number {
                        Some(wanted) if numbers.take(wanted) => (wanted.clone(), "guide"),
                        _ => (numbers.next_free(), "assigned"),
                    };
                    tx.execute(
                        "INSERT INTO xmltv_channels (source_id, channel_id, display_names, icon, \
                         number, number_origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            source_id,
                            channel.channel_id,
                            names,
                            channel.icon,
                            number,
                            origin
                        ],
                    )
                    .ctx(doing)?;
                    change.added += 1;
                }
            }
        }
        tx.execute(
            "UPDATE xmltv_sources SET cache_file = ?2 WHERE id = ?1",
            params![source_id, cache_file],
        )
        .ctx(doing)?;
        tx.commit().ctx(doing)?;
        Ok(change)
    }

    /// Every guide channel, ordered by number.
    pub fn guide_channels(&self) -> Result<Vec<GuideChannel>, StoreError> {
        let doing = || "reading guide channels".to_string();
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT {CHANNEL_COLUMNS} FROM xmltv_channels c \
                 JOIN xmltv_sources s ON s.id = c.source_id"
            ))
            .ctx(doing)?;
        let mut channels = statement
            .query_map([], channel_from_row)
            .ctx(doing)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx(doing)?;
        channels.sort_by(|a, b| number_order(&a.number, &b.number));
        Ok(channels)
    }

    /// Finds a channel by its guide id or its number. A guide id listed by two sources must be
    /// given as a number instead.
    pub fn guide_channel(&self, reference: &str) -> Result<GuideChannel, StoreError> {
        let doing = || format!("looking up channel {reference:?}");
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT {CHANNEL_COLUMNS} FROM xmltv_channels c \
                 JOIN xmltv_sources s ON s.id = c.source_id \
                 WHERE c.number = ?1 OR c.channel_id = ?1 ORDER BY c.number = ?1 DESC"
            ))
            .ctx(doing)?;
        let found = statement
            .query_map([reference], channel_from_row)
            .ctx(doing)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx(doing)?;
        match found.as_slice() {
            [] => Err(StoreError::NotFound(format!(
                "no channel with guide id or number {reference:?} (see `streamforge channels`)"
            ))),
            [only] => Ok(only.clone()),
            [first, ..] if first.number == reference => Ok(first.clone()),
            several => Err(StoreError::Conflict(format!(
                "channel id {reference:?} is in several guides (numbers {}): give the number instead",
                several
                    .iter()
                    .map(|c| c.number.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    pub fn set_channel_enabled(&self, channel_row: i64, enabled: bool) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE xmltv_channels SET enabled = ?2 WHERE id = ?1",
                params![channel_row, enabled],
            )
            .ctx(|| {
                format!(
                    "updating channel #{channel_row} in {}",
                    self.db_path.display()
                )
            })?;
        Ok(())
    }

    /// Gives a channel a number of the user's choosing, kept across refreshes.
    pub fn set_channel_number(&self, channel_row: i64, number: &str) -> Result<(), StoreError> {
        if !is_channel_number(number) {
            return Err(StoreError::Conflict(format!(
                "invalid channel number {number:?}: use digits, optionally with one dot (e.g. 101 or 4.1)"
            )));
        }
        let updated = self.conn.execute(
            "UPDATE xmltv_channels SET number = ?2, number_origin = 'user' WHERE id = ?1",
            params![channel_row, number],
        );
        match updated {
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "channel number {number} is already taken (see `streamforge channels`)"
            ))),
            other => other
                .ctx(|| {
                    format!(
                        "numbering channel #{channel_row} in {}",
                        self.db_path.display()
                    )
                })
                .map(drop),
        }
    }
}

/// Orders channel numbers numerically (`9` before `10`, `4.1` before `4.2`).
pub fn number_order(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |n: &str| {
        let mut parts = n.split('.').map(|p| p.parse::<u64>().unwrap_or(u64::MAX));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    };
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}

/// The numbers in use, for handing out free ones inside a refresh transaction.
struct Numbers {
    taken: HashSet<String>,
    next: u64,
}

impl Numbers {
    fn load(tx: &Transaction<'_>, first: u32) -> rusqlite::Result<Numbers> {
        let taken = tx
            .prepare("SELECT number FROM xmltv_channels")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<HashSet<String>>>()?;
        Ok(Numbers {
            taken,
            next: u64::from(first),
        })
    }

    /// Claims `number` if it is a valid channel number and free.
    fn take(&mut self, number: &str) -> bool {
        is_channel_number(number) && self.taken.insert(number.to_string())
    }

    fn release(&mut self, number: &str) {
        self.taken.remove(number);
    }

    fn next_free(&mut self) -> String {
        loop {
            let candidate = self.next.to_string();
            self.next += 1;
            if self.taken.insert(candidate.clone()) {
                return candidate;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::temp_store;

    fn input(id: &str, number: Option<&str>) -> GuideChannelInput {
        GuideChannelInput {
            channel_id: id.to_string(),
            display_names: vec![format!("{id} name")],
            icon: None,
            number: number.map(str::to_string),
        }
    }

    fn add(store: &Store, name: &str) -> Source {
        store
            .add_source(&NewSource {
                name: name.into(),
                kind: SourceKind::Url,
                location: format!("http://guide.example/{name}.xml?password=Sekr1t-Loc"),
                shift_seconds: 0,
            })
            .expect("add source")
    }

    fn numbers(store: &Store) -> Vec<(String, String)> {
        store
            .guide_channels()
            .unwrap()
            .into_iter()
            .map(|c| (c.channel_id, c.number))
            .collect()
    }

    #[test]
    fn sources_round_trip_with_sealed_location() {
        let (dir, store) = temp_store();
        let source = add(&store, "main");
        assert_eq!(source.kind, SourceKind::Url);
        assert!(source.location.contains("Sekr1t-Loc"));
        let db = std::fs::read(dir.path().join(crate::store::DB_FILE)).unwrap();
        let wal = std::fs::read(dir.path().join("streamforge.db-wal")).unwrap_or_default();
        for bytes in [db, wal] {
            assert!(!bytes.windows(10).any(|w| w == b"Sekr1t-Loc"));
        }
        assert!(add_err(&store, "main").contains("already exists"));
        store.remove_source("main").unwrap();
        assert!(matches!(store.source("main"), Err(StoreError::NotFound(_))));
    }

    fn add_err(store: &Store, name: &str) -> String {
        store
            .add_source(&NewSource {
                name: name.into(),
                kind: SourceKind::File,
                location: "/x".into(),
                shift_seconds: 0,
            })
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn numbers_from_guide_else_assigned_and_stable() {
        let (_dir, store) = temp_store();
        let source = add(&store, "g");
        let first = vec![
            input("a", Some("101")),
            input("b", None),
            input("c", Some("101")),
        ];
        store
            .replace_guide_channels(source.id, &first, 1000, None)
            .unwrap();
        assert_eq!(
            numbers(&store),
            vec![
                ("a".into(), "101".into()),
                ("b".into(), "1000".into()),
                ("c".into(), "1001".into())
            ]
        );
        let ids_before: Vec<i64> = store
            .guide_channels()
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect();
        // Same guide again, in another order, plus one new channel: nothing renumbers.
        let second = vec![
            input("d", None),
            input("c", Some("101")),
            input("b", None),
            input("a", Some("101")),
        ];
        let change = store
            .replace_guide_channels(source.id, &second, 1000, None)
            .unwrap();
        assert_eq!(
            change,
            GuideChange {
                added: 1,
                kept: 3,
                removed: 0
            }
        );
        assert_eq!(
            numbers(&store),
            vec![
                ("a".into(), "101".into()),
                ("b".into(), "1000".into()),
                ("c".into(), "1001".into()),
                ("d".into(), "1002".into())
            ]
        );
        let ids_after: Vec<i64> = store
            .guide_channels()
            .unwrap()
            .iter()
            .take(3)
            .map(|c| c.id)
            .collect();
        assert_eq!(ids_before, ids_after);
    }

    #[test]
    fn user_numbers_survive_refresh_and_must_be_unique() {
        let (_dir, store) = temp_store();
        let source = add(&store, "g");
        store
            .replace_guide_channels(
                source.id,
                &[input("a", Some("5")), input("b", None)],
                1000,
                None,
            )
            .unwrap();
        let a = store.guide_channel("a").unwrap();
        let err = store.set_channel_number(a.id, "1000").unwrap_err();
        assert!(err.to_string().contains("already taken"), "{err}");
        assert!(store.set_channel_number(a.id, "abc").is_err());
        store.set_channel_number(a.id, "7").unwrap();
        store
            .replace_guide_channels(
                source.id,
                &[input("a", Some("5")), input("b", None)],
                1000,
                None,
            )
            .unwrap();
        assert_eq!(store.guide_channel("7").unwrap().channel_id, "a");
        assert_eq!(store.guide_channel("a").unwrap().number, "7");
    }

    #[test]
    fn refresh_removes_vanished_channels_and_keeps_enabled_flag() {
        let (_dir, store) = temp_store();
        let source = add(&store, "g");
        store
            .replace_guide_channels(source.id, &[input("a", None), input("b", None)], 1, None)
            .unwrap();
        let b = store.guide_channel("b").unwrap();
        store.set_channel_enabled(b.id, false).unwrap();
        let change = store
            .replace_guide_channels(source.id, &[input("b", None)], 1, None)
            .unwrap();
        assert_eq!(change.removed, 1);
        assert!(matches!(
            store.guide_channel("a"),
            Err(StoreError::NotFound(_))
        ));
        assert!(!store.guide_channel("b").unwrap().enabled);
    }

    #[test]
    fn same_id_in_two_sources_needs_a_number() {
        let (_dir, store) = temp_store();
        let one = add(&store, "one");
        let two = add(&store, "two");
        store
            .replace_guide_channels(one.id, &[input("bbc1.uk", None)], 1, None)
            .unwrap();
        store
            .replace_guide_channels(two.id, &[input("bbc1.uk", None)], 1, None)
            .unwrap();
        let err = store.guide_channel("bbc1.uk").unwrap_err();
        assert!(err.to_string().contains("several guides"), "{err}");
        assert_eq!(store.guide_channel("2").unwrap().source_name, "two");
    }

    #[test]
    fn channel_numbers_and_order() {
        assert!(is_channel_number("101"));
        assert!(is_channel_number("4.1"));
        assert!(!is_channel_number("4.1.2"));
        assert!(!is_channel_number("BBC 1"));
        assert!(!is_channel_number(""));
        assert!(!is_channel_number("1."));
        let mut numbers = vec!["10", "9", "4.2", "4.1", "100"];
        numbers.sort_by(|a, b| number_order(a, b));
        assert_eq!(numbers, vec!["4.1", "4.2", "9", "10", "100"]);
    }

    #[test]
    fn display_name_skips_numbers() {
        let channel = GuideChannel {
            id: 1,
            source_id: 1,
            source_name: "g".into(),
            channel_id: "x.uk".into(),
            display_names: vec!["101".into(), "BBC One".into()],
            icon: None,
            number: "101".into(),
            enabled: true,
        };
        assert_eq!(channel.name(), "BBC One");
    }
}
