//! Provider catalogs: each account's live streams, replaced as a whole on every sync.
//!
//! A stream keeps its row id across syncs for as long as the provider lists it, because guide
//! mappings point at that id; a stream the provider dropped is deleted with its mappings.

use super::measurements::{self, Measured};
use super::{Ctx, Store, StoreError};
use crate::time::rfc3339;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use std::collections::HashSet;
use std::time::SystemTime;

/// One live stream as the provider lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogStream {
    pub stream_id: i64,
    pub name: String,
    pub icon: Option<String>,
    pub category: Option<String>,
    pub epg_channel_id: Option<String>,
    /// Quality tags parsed from the name, e.g. `["FHD", "HEVC"]`.
    pub qualities: Vec<String>,
    /// Quality rank for ordering; higher is better.
    pub tier: i64,
    /// Where a playlist (M3U) stream is fetched; `None` for an Xtream stream, whose URL is built
    /// from its account.
    pub playlist: Option<PlaylistStream>,
}

/// A playlist stream's own URL and `#EXTVLCOPT` headers.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistStream {
    /// May carry credentials: stored sealed, never printed.
    pub url: String,
    pub user_agent: Option<String>,
    pub referrer: Option<String>,
}

/// Associated data for sealed stream URLs.
const URL_AAD: &[u8] = b"streamforge xtream_channels.url_encrypted";

/// What a catalog replacement did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CatalogChange {
    pub added: usize,
    /// Streams still listed whose details changed.
    pub updated: usize,
    /// Streams still listed exactly as before.
    pub unchanged: usize,
    pub removed: usize,
}

/// Which streams to list; `None` means no restriction.
#[derive(Debug, Clone, Default)]
pub struct StreamFilter {
    pub account: Option<String>,
    /// Case-insensitive substring of the stream name.
    pub search: Option<String>,
}

/// A stored stream, with the account it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredStream {
    pub id: i64,
    pub account_id: i64,
    pub account_name: String,
    pub stream_id: i64,
    pub name: String,
    pub icon: Option<String>,
    pub category: Option<String>,
    pub epg_channel_id: Option<String>,
    pub qualities: Vec<String>,
    pub tier: i64,
    /// RFC 3339: the last sync that listed it.
    pub last_seen: String,
    /// What was last measured of it, if it ever was.
    pub measured: Option<Measured>,
}

impl Store {
    /// Replaces an account's catalog with `streams` in one transaction: on any error (including
    /// a stream_id listed twice) the previous catalog stays as it was.
    pub fn replace_catalog(
        &self,
        account_id: i64,
        streams: &[CatalogStream],
    ) -> Result<CatalogChange, StoreError> {
        let doing = || {
            format!(
                "replacing the catalog of account #{account_id} in {}",
                self.db_path.display()
            )
        };
        let tx = self.conn.unchecked_transaction().ctx(doing)?;
        tx.query_row("SELECT 1 FROM accounts WHERE id = ?1", [account_id], |_| {
            Ok(())
        })
        .optional()
        .ctx(doing)?
        .ok_or(StoreError::AccountGone(account_id))?;

        let cipher = match streams.iter().any(|s| s.playlist.is_some()) {
            true => Some(self.sealing_cipher()?),
            false => None,
        };
        let now = rfc3339(SystemTime::now());
        let mut change = CatalogChange::default();
        let mut listed = HashSet::with_capacity(streams.len());
        {
            // `IS NOT` compares NULLs as values, so a vanished icon counts as a change.
            let mut compare = tx
                .prepare_cached(
                    "SELECT name IS NOT ?3 OR icon IS NOT ?4 OR category IS NOT ?5 \
                     OR epg_channel_id IS NOT ?6 OR qualities IS NOT ?7 OR tier IS NOT ?8 \
                     OR user_agent IS NOT ?9 OR referrer IS NOT ?10 \
                     FROM xtream_channels WHERE account_id = ?1 AND stream_id = ?2",
                )
                .ctx(doing)?;
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO xtream_channels (account_id, stream_id, name, icon, category, \
                     epg_channel_id, qualities, tier, last_seen, url_encrypted, user_agent, \
                     referrer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
                     ON CONFLICT (account_id, stream_id) DO UPDATE SET name = excluded.name, \
                     icon = excluded.icon, category = excluded.category, \
                     epg_channel_id = excluded.epg_channel_id, qualities = excluded.qualities, \
                     tier = excluded.tier, last_seen = excluded.last_seen, \
                     url_encrypted = excluded.url_encrypted, user_agent = excluded.user_agent, \
                     referrer = excluded.referrer",
                )
                .ctx(doing)?;
            for s in streams {
                if !listed.insert(s.stream_id) {
                    return Err(StoreError::DuplicateStreamId(s.stream_id));
                }
                let qualities = serde_json::Value::from(s.qualities.clone()).to_string();
                let user_agent = s.playlist.as_ref().and_then(|p| p.user_agent.as_deref());
                let referrer = s.playlist.as_ref().and_then(|p| p.referrer.as_deref());
                let sealed_url = match (&s.playlist, cipher) {
                    (Some(p), Some(cipher)) => Some(cipher.seal(URL_AAD, &p.url)?),
                    _ => None,
                };
                let fields = params![
                    account_id,
                    s.stream_id,
                    s.name,
                    s.icon,
                    s.category,
                    s.epg_channel_id,
                    qualities,
                    s.tier,
                    user_agent,
                    referrer
                ];
                let differs: Option<bool> = compare
                    .query_row(fields, |row| row.get(0))
                    .optional()
                    .ctx(doing)?;
                match differs {
                    None => change.added += 1,
                    Some(true) => change.updated += 1,
                    Some(false) => change.unchanged += 1,
                }
                upsert
                    .execute(params![
                        account_id,
                        s.stream_id,
                        s.name,
                        s.icon,
                        s.category,
                        s.epg_channel_id,
                        qualities,
                        s.tier,
                        now,
                        sealed_url,
                        user_agent,
                        referrer
                    ])
                    .ctx(doing)?;
            }
        }
        let vanished: Vec<i64> = {
            let mut stmt = tx
                .prepare_cached("SELECT stream_id FROM xtream_channels WHERE account_id = ?1")
                .ctx(doing)?;
            let ids = stmt
                .query_map([account_id], |row| row.get::<_, i64>(0))
                .ctx(doing)?
                .collect::<Result<Vec<_>, _>>()
                .ctx(doing)?;
            ids.into_iter().filter(|id| !listed.contains(id)).collect()
        };
        {
            let mut delete = tx
                .prepare_cached(
                    "DELETE FROM xtream_channels WHERE account_id = ?1 AND stream_id = ?2",
                )
                .ctx(doing)?;
            for stream_id in &vanished {
                delete.execute([account_id, *stream_id]).ctx(doing)?;
            }
        }
        change.removed = vanished.len();
        tx.commit().ctx(doing)?;
        Ok(change)
    }

    /// Stored streams matching `filter`, ordered by account name, then stream name.
    pub fn streams(&self, filter: &StreamFilter) -> Result<Vec<StoredStream>, StoreError> {
        let doing = || "listing streams".to_string();
        if let Some(name) = &filter.account {
            self.conn
                .query_row("SELECT 1 FROM accounts WHERE name = ?1", [name], |_| Ok(()))
                .optional()
                .ctx(doing)?
                .ok_or_else(|| StoreError::AccountNotFound(name.clone()))?;
        }
        // Matched in Rust rather than with SQL `lower()`, which folds ASCII only.
        let needle = filter.search.as_deref().map(str::to_lowercase);
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT c.name, c.id, c.account_id, a.name, c.stream_id, c.icon, c.category, \
                 c.epg_channel_id, c.qualities, c.tier, c.last_seen, {} \
                 FROM xtream_channels c JOIN accounts a ON a.id = c.account_id {} \
                 WHERE ?1 IS NULL OR a.name = ?1 \
                 ORDER BY a.name, c.name, c.stream_id",
                measurements::COLUMNS,
                measurements::join("c")
            ))
            .ctx(doing)?;
        let mut rows = stmt.query([&filter.account]).ctx(doing)?;
        let mut found = Vec::new();
        while let Some(row) = rows.next().ctx(doing)? {
            let name: String = row.get(0).ctx(doing)?;
            if let Some(needle) = &needle
                && !name.to_lowercase().contains(needle.as_str())
            {
                continue;
            }
            let id: i64 = row.get(1).ctx(doing)?;
            let qualities: String = row.get(8).ctx(doing)?;
            let qualities = serde_json::from_str(&qualities).map_err(|e| StoreError::Corrupt {
                what: format!("qualities of stream row #{id}: {e}"),
            })?;
            found.push(StoredStream {
                id,
                account_id: row.get(2).ctx(doing)?,
                account_name: row.get(3).ctx(doing)?,
                stream_id: row.get(4).ctx(doing)?,
                name,
                icon: row.get(5).ctx(doing)?,
                category: row.get(6).ctx(doing)?,
                epg_channel_id: row.get(7).ctx(doing)?,
                qualities,
                tier: row.get(9).ctx(doing)?,
                last_seen: row.get(10).ctx(doing)?,
                measured: measurements::read(row, 11, id)?,
            });
        }
        Ok(found)
    }

    /// The stream id of a playlist entry: a keyed fingerprint of its URL, so the same URL keeps
    /// its id (and its mappings) across syncs, and the id reveals nothing of the URL.
    pub fn playlist_stream_id(&self, url: &str) -> Result<i64, StoreError> {
        Ok(self.sealing_cipher()?.fingerprint(url))
    }

    /// Where a playlist stream is fetched (its URL opened); `None` for an Xtream stream.
    pub fn playlist_stream(&self, stream_row: i64) -> Result<Option<PlaylistStream>, StoreError> {
        let doing = || format!("reading stream row #{stream_row}");
        let row = self
            .conn
            .query_row(
                "SELECT url_encrypted, user_agent, referrer FROM xtream_channels WHERE id = ?1",
                [stream_row],
                |r| {
                    Ok((
                        r.get::<_, Option<Vec<u8>>>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                },
            )
            .optional()
            .ctx(doing)?;
        let Some((Some(sealed), user_agent, referrer)) = row else {
            return Ok(None);
        };
        let url = self.unseal(URL_AAD, &sealed, || {
            format!("the URL of stream row #{stream_row}")
        })?;
        Ok(Some(PlaylistStream {
            url,
            user_agent,
            referrer,
        }))
    }

    /// How many streams an account's catalog holds.
    pub fn stream_count(&self, account_id: i64) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM xtream_channels WHERE account_id = ?1",
                [account_id],
                |row| row.get::<_, i64>(0),
            )
            .map(i64::unsigned_abs) // count(*) is never negative
            .ctx(|| format!("counting the streams of account #{account_id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::accounts::tests::new_account;
    use crate::store::tests::temp_store;
    use std::collections::HashMap;
    use std::time::Instant;

    fn stream(stream_id: i64, name: &str) -> CatalogStream {
        CatalogStream {
            stream_id,
            name: name.to_string(),
            icon: Some(format!("http://logo.example/{stream_id}.png")),
            category: Some("News".to_string()),
            epg_channel_id: Some(format!("ch{stream_id}.example")),
            qualities: vec!["FHD".to_string(), "HEVC".to_string()],
            tier: 3,
            playlist: None,
        }
    }

    /// stream_id -> row id for an account.
    fn row_ids(store: &Store, account: &str) -> HashMap<i64, i64> {
        store
            .streams(&StreamFilter {
                account: Some(account.to_string()),
                search: None,
            })
            .expect("list")
            .into_iter()
            .map(|s| (s.stream_id, s.id))
            .collect()
    }

    /// Maps a guide channel to a stored stream, as the mapping code will.
    fn map_to(store: &Store, xtream_row_id: i64) {
        store
            .conn
            .execute_batch(
                "INSERT OR IGNORE INTO xmltv_sources (id, name, location_encrypted, kind) \
                 VALUES (1, 'guide', x'00', 'file'); \
                 INSERT OR IGNORE INTO xmltv_channels (id, source_id, channel_id, number, \
                 number_origin) VALUES (1, 1, 'bbc1.uk', '1', 'guide');",
            )
            .expect("guide rows");
        store
            .conn
            .execute(
                "INSERT INTO channel_mappings (xmltv_channel_id, xtream_channel_id) VALUES (1, ?1)",
                [xtream_row_id],
            )
            .expect("mapping");
    }

    fn mapping_count(store: &Store) -> i64 {
        store
            .conn
            .query_row("SELECT count(*) FROM channel_mappings", [], |r| r.get(0))
            .expect("count")
    }

    #[test]
    fn replace_keeps_ids_of_surviving_streams_and_drops_vanished_ones() {
        let (_dir, store) = temp_store();
        let acc = store.add_account(&new_account("main")).expect("add");
        let first = [stream(1, "One"), stream(2, "Two"), stream(3, "Three")];
        let change = store.replace_catalog(acc.id, &first).expect("first sync");
        assert_eq!(
            change,
            CatalogChange {
                added: 3,
                ..Default::default()
            }
        );
        let before = row_ids(&store, "main");
        map_to(&store, before[&2]);
        map_to(&store, before[&3]);

        let mut two = stream(2, "Two HD");
        two.icon = None;
        let second = [stream(1, "One"), two, stream(4, "Four")];
        let change = store.replace_catalog(acc.id, &second).expect("second sync");
        assert_eq!(
            change,
            CatalogChange {
                added: 1,
                updated: 1,
                unchanged: 1,
                removed: 1
            }
        );
        let after = row_ids(&store, "main");
        assert_eq!(after.len(), 3);
        assert_eq!(after[&1], before[&1]);
        assert_eq!(after[&2], before[&2], "row id of a kept stream changed");
        assert!(!after.contains_key(&3));
        assert_eq!(
            mapping_count(&store),
            1,
            "mapping of the vanished stream kept"
        );
        let listed = store.streams(&StreamFilter::default()).expect("list");
        let two = listed.iter().find(|s| s.stream_id == 2).expect("stream 2");
        assert_eq!(two.name, "Two HD");
        assert_eq!(two.icon, None);
        assert_eq!(two.qualities, ["FHD", "HEVC"]);
        assert_eq!(two.account_name, "main");
        assert!(two.last_seen.ends_with('Z'));
    }

    #[test]
    fn failed_replace_leaves_the_old_catalog_intact() {
        let (_dir, store) = temp_store();
        let acc = store.add_account(&new_account("main")).expect("add");
        store
            .replace_catalog(acc.id, &[stream(1, "One"), stream(2, "Two")])
            .expect("first sync");
        let before = store.streams(&StreamFilter::default()).expect("list");

        // Stream 7 is new, 1 renamed, 2 vanished; then the duplicate fails the whole lot.
        let bad = [stream(7, "Seven"), stream(1, "Renamed"), stream(7, "Again")];
        let err = store.replace_catalog(acc.id, &bad).expect_err("duplicate");
        assert!(matches!(err, StoreError::DuplicateStreamId(7)), "{err:?}");
        assert!(err.to_string().contains("nothing was changed"));
        assert_eq!(
            store.streams(&StreamFilter::default()).expect("list"),
            before
        );

        // The connection is usable afterwards (the transaction was rolled back, not left open).
        store
            .replace_catalog(acc.id, &[stream(1, "One")])
            .expect("next sync");
        assert_eq!(store.stream_count(acc.id).expect("count"), 1);
    }

    #[test]
    fn replace_for_a_removed_account_fails_cleanly() {
        let (_dir, store) = temp_store();
        let acc = store.add_account(&new_account("main")).expect("add");
        store.remove_account("main").expect("remove");
        assert!(matches!(
            store.replace_catalog(acc.id, &[stream(1, "One")]),
            Err(StoreError::AccountGone(id)) if id == acc.id
        ));
    }

    #[test]
    fn removing_an_account_removes_its_streams_and_mappings() {
        let (_dir, store) = temp_store();
        let main = store.add_account(&new_account("main")).expect("add");
        let other = store.add_account(&new_account("other")).expect("add");
        store
            .replace_catalog(main.id, &[stream(1, "One"), stream(2, "Two")])
            .expect("sync");
        store
            .replace_catalog(other.id, &[stream(1, "One")])
            .expect("sync");
        map_to(&store, row_ids(&store, "main")[&1]);
        store.remove_account("main").expect("remove");
        assert_eq!(store.stream_count(main.id).expect("count"), 0);
        assert_eq!(store.stream_count(other.id).expect("count"), 1);
        assert_eq!(mapping_count(&store), 0);
    }

    #[test]
    fn filters_by_account_and_case_insensitive_search() {
        let (_dir, store) = temp_store();
        let b = store.add_account(&new_account("b-acc")).expect("add");
        let a = store.add_account(&new_account("a-acc")).expect("add");
        store
            .replace_catalog(b.id, &[stream(1, "ZDF HD"), stream(2, "Das Erste")])
            .expect("sync");
        store
            .replace_catalog(
                a.id,
                &[
                    stream(5, "ÄRD Ünïcode"),
                    stream(3, "zdf neo"),
                    stream(4, "Arte"),
                ],
            )
            .expect("sync");

        let all = store.streams(&StreamFilter::default()).expect("all");
        let order: Vec<_> = all
            .iter()
            .map(|s| (s.account_name.as_str(), s.name.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("a-acc", "Arte"),
                ("a-acc", "zdf neo"),
                ("a-acc", "ÄRD Ünïcode"),
                ("b-acc", "Das Erste"),
                ("b-acc", "ZDF HD"),
            ]
        );

        let search = |account: Option<&str>, text: &str| -> Vec<String> {
            store
                .streams(&StreamFilter {
                    account: account.map(str::to_string),
                    search: Some(text.to_string()),
                })
                .expect("search")
                .into_iter()
                .map(|s| s.name)
                .collect()
        };
        assert_eq!(search(None, "ZdF"), ["zdf neo", "ZDF HD"]);
        assert_eq!(search(Some("b-acc"), "zdf"), ["ZDF HD"]);
        assert_eq!(search(None, "ärd ü"), ["ÄRD Ünïcode"]);
        assert!(search(None, "nothing like it").is_empty());
        assert!(matches!(
            store.streams(&StreamFilter {
                account: Some("typo".to_string()),
                search: None
            }),
            Err(StoreError::AccountNotFound(_))
        ));
    }

    #[test]
    fn playlist_streams_keep_their_url_sealed_and_headers_count_as_changes() {
        let (dir, store) = temp_store();
        let acc = store.add_account(&new_account("list")).expect("add");
        let secret_url = "http://cdn.example/play/Wombat-Secret-42/1.ts";
        let id = store.playlist_stream_id(secret_url).expect("id");
        assert_eq!(id, store.playlist_stream_id(secret_url).expect("id"));
        let mut s = stream(id, "One");
        s.playlist = Some(PlaylistStream {
            url: secret_url.to_string(),
            user_agent: Some("Kodi/20".to_string()),
            referrer: None,
        });
        store
            .replace_catalog(acc.id, std::slice::from_ref(&s))
            .expect("sync");
        let row = row_ids(&store, "list")[&id];
        assert_eq!(
            store.playlist_stream(row).expect("read"),
            s.playlist.clone()
        );
        // The same entry again is unchanged; a new user agent is a change.
        let again = store
            .replace_catalog(acc.id, std::slice::from_ref(&s))
            .expect("resync");
        assert_eq!(again.unchanged, 1);
        s.playlist.as_mut().unwrap().user_agent = Some("VLC".to_string());
        let changed = store.replace_catalog(acc.id, &[s]).expect("resync");
        assert_eq!(changed.updated, 1);
        store
            .conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("checkpoint");
        for file in std::fs::read_dir(dir.path()).expect("list") {
            let bytes = std::fs::read(file.expect("entry").path()).expect("read");
            assert!(
                !bytes.windows(18).any(|w| w == b"Wombat-Secret-42/1"),
                "stream URL in plaintext"
            );
        }
        // An Xtream stream has no playlist URL.
        let (_dir, other) = temp_store();
        let xtream = other.add_account(&new_account("panel")).expect("add");
        other
            .replace_catalog(xtream.id, &[stream(1, "One")])
            .expect("sync");
        let row = row_ids(&other, "panel")[&1];
        assert_eq!(other.playlist_stream(row).expect("read"), None);
    }

    #[test]
    fn replaces_twenty_thousand_streams() {
        let (_dir, store) = temp_store();
        let acc = store.add_account(&new_account("big")).expect("add");
        let catalog: Vec<_> = (0..20_000)
            .map(|i| stream(i, &format!("Channel {i:05} FHD")))
            .collect();

        let started = Instant::now();
        let change = store.replace_catalog(acc.id, &catalog).expect("first sync");
        println!("20k streams, first sync: {:?}", started.elapsed());
        assert_eq!(change.added, 20_000);
        assert_eq!(store.stream_count(acc.id).expect("count"), 20_000);
        let ids_before = row_ids(&store, "big");

        // Second sync: 1,000 gone, 1,000 new, 500 renamed.
        let mut next: Vec<_> = catalog[1_000..].to_vec();
        next.extend((20_000..21_000).map(|i| stream(i, &format!("Channel {i:05} HD"))));
        for s in next.iter_mut().take(500) {
            s.name.push_str(" (backup)");
        }
        let started = Instant::now();
        let change = store.replace_catalog(acc.id, &next).expect("second sync");
        println!("20k streams, resync: {:?}", started.elapsed());
        assert_eq!(
            change,
            CatalogChange {
                added: 1_000,
                updated: 500,
                unchanged: 18_500,
                removed: 1_000
            }
        );
        let ids_after = row_ids(&store, "big");
        assert_eq!(ids_after.len(), 20_000);
        assert!((1_000..20_000).all(|i| ids_after[&i] == ids_before[&i]));
        assert!((0..1_000).all(|i| !ids_after.contains_key(&i)));
    }
}
