//! Provider accounts (Xtream Codes subscriptions and plain M3U playlists), with their passwords
//! and playlist locations sealed at rest.

use super::secret::Password;
use super::{Ctx, Store, StoreError, is_unique_violation};
use crate::time::rfc3339;
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use std::time::SystemTime;

/// Associated data for sealed passwords: a value sealed for another column will not open here.
const PASSWORD_AAD: &[u8] = b"streamforge accounts.password_encrypted";
const PLAYLIST_AAD: &[u8] = b"streamforge accounts.playlist_encrypted";

const COLUMNS: &str = "id, name, server_url, username, password_encrypted, max_connections, \
                       is_active, user_agent, created_at, last_sync_at, subscription_status, \
                       subscription_expires_at, kind, playlist_encrypted";

/// Longest account name, in characters: names appear in every `ACCOUNT:STREAM_ID`.
const MAX_NAME_CHARS: usize = 64;

/// Where an account's catalog comes from.
#[derive(Debug, Clone)]
pub enum AccountKind {
    /// An Xtream Codes panel: `server_url`, `username` and `password` log in.
    Xtream,
    /// A plain M3U playlist: its URL or file path, sealed (it may carry credentials). The
    /// account's `server_url` is only what may be shown of it (its origin, or the file path).
    M3u { playlist: Password },
}

impl AccountKind {
    /// `xtream` or `m3u`, as stored and listed.
    pub fn label(&self) -> &'static str {
        match self {
            AccountKind::Xtream => "xtream",
            AccountKind::M3u { .. } => "m3u",
        }
    }
}

/// An account to add.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: String,
    pub kind: AccountKind,
    pub server_url: String,
    pub username: String,
    pub password: Password,
    pub max_connections: u32,
    pub user_agent: Option<String>,
}

/// A stored account. Serializes without its password.
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub id: i64,
    pub name: String,
    #[serde(skip)]
    pub kind: AccountKind,
    pub server_url: String,
    pub username: String,
    #[serde(skip)]
    pub password: Password,
    pub max_connections: u32,
    pub is_active: bool,
    pub user_agent: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; `None` until the first successful sync.
    pub last_sync_at: Option<String>,
    /// What the panel said of the subscription at the last sync.
    pub subscription: Subscription,
}

/// The subscription as the panel's `user_info` describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Subscription {
    /// `Active`, `Expired`, `Banned`, …; `None` until a panel said.
    pub status: Option<String>,
    /// RFC 3339; `None` for a subscription that never expires, or one not synced yet.
    pub expires_at: Option<String>,
}

/// An account row before its password is opened.
struct SealedAccount {
    account: Account,
    sealed: Vec<u8>,
    kind: String,
    playlist: Option<Vec<u8>>,
}

impl SealedAccount {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(SealedAccount {
            account: Account {
                id: row.get(0)?,
                name: row.get(1)?,
                kind: AccountKind::Xtream,
                server_url: row.get(2)?,
                username: row.get(3)?,
                password: Password::new(String::new()),
                max_connections: row.get(5)?,
                is_active: row.get(6)?,
                user_agent: row.get(7)?,
                created_at: row.get(8)?,
                last_sync_at: row.get(9)?,
                subscription: Subscription {
                    status: row.get(10)?,
                    expires_at: row.get(11)?,
                },
            },
            sealed: row.get(4)?,
            kind: row.get(12)?,
            playlist: row.get(13)?,
        })
    }
}

/// Rejects names that would break `ACCOUNT:STREAM_ID` or a terminal listing.
fn check_name(name: &str) -> Result<(), StoreError> {
    let reason = if name.is_empty() {
        "must not be empty"
    } else if name.chars().count() > MAX_NAME_CHARS {
        "must be at most 64 characters"
    } else if name.contains(':') {
        "must not contain ':' (it separates account and stream id in ACCOUNT:STREAM_ID)"
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "must not contain spaces or control characters"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidAccountName {
        name: name.to_string(),
        reason,
    })
}

impl Store {
    /// Adds an account, sealing its password (the key file is created on first use).
    pub fn add_account(&self, new: &NewAccount) -> Result<Account, StoreError> {
        check_name(&new.name)?;
        if new.max_connections == 0 {
            return Err(StoreError::InvalidMaxConnections(0));
        }
        let doing = || {
            format!(
                "adding account {:?} in {}",
                new.name,
                self.db_path.display()
            )
        };
        let tx = self.conn.unchecked_transaction().ctx(doing)?;
        let cipher = self.sealing_cipher()?;
        let sealed = cipher.seal(PASSWORD_AAD, new.password.expose())?;
        let playlist = match &new.kind {
            AccountKind::Xtream => None,
            AccountKind::M3u { playlist } => Some(cipher.seal(PLAYLIST_AAD, playlist.expose())?),
        };
        let created_at = rfc3339(SystemTime::now());
        let inserted = tx.execute(
            "INSERT INTO accounts (name, server_url, username, password_encrypted, \
             max_connections, user_agent, created_at, kind, playlist_encrypted) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                new.name,
                new.server_url,
                new.username,
                sealed,
                new.max_connections,
                new.user_agent,
                created_at,
                new.kind.label(),
                playlist
            ],
        );
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::AccountExists(new.name.clone()));
            }
            other => other.ctx(doing)?,
        };
        let id = tx.last_insert_rowid();
        tx.commit().ctx(doing)?;
        Ok(Account {
            id,
            name: new.name.clone(),
            kind: new.kind.clone(),
            server_url: new.server_url.clone(),
            username: new.username.clone(),
            password: new.password.clone(),
            max_connections: new.max_connections,
            is_active: true,
            user_agent: new.user_agent.clone(),
            created_at,
            last_sync_at: None,
            subscription: Subscription::default(),
        })
    }

    /// Every account, by name, with its password opened.
    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let doing = || "reading accounts".to_string();
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM accounts ORDER BY name"))
            .ctx(doing)?;
        let rows = stmt
            .query_map([], SealedAccount::from_row)
            .ctx(doing)?
            .collect::<Result<Vec<_>, _>>()
            .ctx(doing)?;
        rows.into_iter().map(|row| self.open_account(row)).collect()
    }

    /// One account by name, with its password opened.
    pub fn account(&self, name: &str) -> Result<Account, StoreError> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM accounts WHERE name = ?1"),
                [name],
                SealedAccount::from_row,
            )
            .optional()
            .ctx(|| format!("reading account {name:?}"))?
            .ok_or_else(|| StoreError::AccountNotFound(name.to_string()))?;
        self.open_account(row)
    }

    /// Removes an account with its streams and their mappings. Needs no key, so accounts whose
    /// password can no longer be decrypted can still be removed.
    pub fn remove_account(&self, name: &str) -> Result<(), StoreError> {
        let removed = self
            .conn
            .execute("DELETE FROM accounts WHERE name = ?1", [name])
            .ctx(|| format!("removing account {name:?} in {}", self.db_path.display()))?;
        if removed == 0 {
            return Err(StoreError::AccountNotFound(name.to_string()));
        }
        Ok(())
    }

    /// Enables or disables an account; a disabled account's streams are never tuned.
    pub fn set_account_active(&self, name: &str, active: bool) -> Result<(), StoreError> {
        let changed = self
            .conn
            .execute(
                "UPDATE accounts SET is_active = ?2 WHERE name = ?1",
                params![name, active],
            )
            .ctx(|| format!("updating account {name:?} in {}", self.db_path.display()))?;
        if changed == 0 {
            return Err(StoreError::AccountNotFound(name.to_string()));
        }
        Ok(())
    }

    /// Records when the account's catalog was last synced.
    pub fn record_sync(&self, account_id: i64, at: SystemTime) -> Result<(), StoreError> {
        self.update_account(
            account_id,
            "UPDATE accounts SET last_sync_at = ?2 WHERE id = ?1",
            params![account_id, rfc3339(at)],
        )
    }

    /// Records what the panel said of the subscription at login: its status and expiry date
    /// (`None`: it never expires).
    pub fn record_subscription(
        &self,
        account_id: i64,
        status: &str,
        expires_at: Option<SystemTime>,
    ) -> Result<(), StoreError> {
        self.update_account(
            account_id,
            "UPDATE accounts SET subscription_status = ?2, subscription_expires_at = ?3 \
             WHERE id = ?1",
            params![account_id, status, expires_at.map(rfc3339)],
        )
    }

    /// Records a status alone (a login refused as `Expired`), keeping the known expiry date.
    pub fn record_subscription_status(
        &self,
        account_id: i64,
        status: &str,
    ) -> Result<(), StoreError> {
        self.update_account(
            account_id,
            "UPDATE accounts SET subscription_status = ?2 WHERE id = ?1",
            params![account_id, status],
        )
    }

    /// Runs an UPDATE of one account by id; no row changed means the account is gone.
    fn update_account<P: rusqlite::Params>(
        &self,
        account_id: i64,
        sql: &str,
        params: P,
    ) -> Result<(), StoreError> {
        let changed = self.conn.execute(sql, params).ctx(|| {
            format!(
                "updating account #{account_id} in {}",
                self.db_path.display()
            )
        })?;
        if changed == 0 {
            return Err(StoreError::AccountGone(account_id));
        }
        Ok(())
    }

    fn open_account(&self, row: SealedAccount) -> Result<Account, StoreError> {
        let SealedAccount {
            mut account,
            sealed,
            kind,
            playlist,
        } = row;
        let password = self.unseal(PASSWORD_AAD, &sealed, || {
            format!("the password of account {:?}", account.name)
        })?;
        account.password = Password::from(password);
        account.kind = match (kind.as_str(), playlist) {
            ("xtream", _) => AccountKind::Xtream,
            ("m3u", Some(sealed)) => AccountKind::M3u {
                playlist: Password::from(self.unseal(PLAYLIST_AAD, &sealed, || {
                    format!("the playlist of account {:?}", account.name)
                })?),
            },
            _ => {
                return Err(StoreError::Corrupt {
                    what: format!(
                        "account {:?}: kind {kind:?} without its source",
                        account.name
                    ),
                });
            }
        };
        Ok(account)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::secret::KEY_FILE;
    use crate::store::tests::temp_store;
    use crate::store::{DB_FILE, KeyProblem};
    use std::path::Path;

    /// Distinctive enough that finding it in a file cannot be a coincidence.
    const PLAINTEXT: &str = "Zebra-Quokka-7731!pw";

    pub(crate) fn new_account(name: &str) -> NewAccount {
        NewAccount {
            name: name.to_string(),
            kind: AccountKind::Xtream,
            server_url: "http://provider.example:8080".to_string(),
            username: "alice".to_string(),
            password: Password::new(PLAINTEXT),
            max_connections: 2,
            user_agent: None,
        }
    }

    #[test]
    fn add_list_get_round_trips_the_password() {
        let (_dir, store) = temp_store();
        let mut b = new_account("b-provider");
        b.user_agent = Some("Kodi/20".to_string());
        b.password = Password::new("other pass");
        store.add_account(&b).expect("add b");
        let a = store
            .add_account(&new_account("a-provider"))
            .expect("add a");
        assert_eq!(a.password.expose(), PLAINTEXT);
        assert!(a.is_active && a.last_sync_at.is_none());

        let all = store.accounts().expect("list");
        let names: Vec<_> = all.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["a-provider", "b-provider"]);
        assert_eq!(all[0].password.expose(), PLAINTEXT);
        assert_eq!(all[0].id, a.id);
        assert_eq!(all[0].created_at, a.created_at);
        assert_eq!(all[1].password.expose(), "other pass");
        assert_eq!(all[1].user_agent.as_deref(), Some("Kodi/20"));
        assert_eq!(all[1].max_connections, 2);

        let got = store.account("b-provider").expect("get");
        assert_eq!(got.password.expose(), "other pass");
        let json = serde_json::to_string(&got).expect("json");
        assert!(
            !json.contains("other pass") && !json.contains("password"),
            "{json}"
        );
    }

    #[test]
    fn an_m3u_account_keeps_its_playlist_sealed() {
        let (dir, store) = temp_store();
        let mut new = new_account("list");
        let location = format!("http://p.example/get?token={PLAINTEXT}");
        new.kind = AccountKind::M3u {
            playlist: Password::new(location.as_str()),
        };
        store.add_account(&new).expect("add");
        store.add_account(&new_account("panel")).expect("add");
        let got = store.account("list").expect("get");
        match &got.kind {
            AccountKind::M3u { playlist } => assert_eq!(playlist.expose(), location),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            store.account("panel").expect("get").kind,
            AccountKind::Xtream
        ));
        let json = serde_json::to_string(&got).expect("json");
        assert!(!json.contains(PLAINTEXT), "{json}");
        assert_no_plaintext(dir.path(), "m3u account");
    }

    #[test]
    fn duplicate_and_invalid_accounts_are_refused() {
        let (_dir, store) = temp_store();
        store.add_account(&new_account("main")).expect("add");
        let err = store.add_account(&new_account("main")).expect_err("dup");
        assert!(
            matches!(&err, StoreError::AccountExists(n) if n == "main"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "an account named \"main\" already exists");
        for bad in ["", "a:b", "with space", "tab\there", &"x".repeat(65)] {
            let err = store.add_account(&new_account(bad)).expect_err(bad);
            assert!(
                matches!(err, StoreError::InvalidAccountName { .. }),
                "{bad:?}"
            );
        }
        let mut zero = new_account("zero");
        zero.max_connections = 0;
        assert!(matches!(
            store.add_account(&zero),
            Err(StoreError::InvalidMaxConnections(0))
        ));
        assert_eq!(store.accounts().expect("list").len(), 1);
    }

    #[test]
    fn missing_accounts_are_reported_by_name() {
        let (_dir, store) = temp_store();
        for result in [
            store.account("nope").map(|_| ()),
            store.remove_account("nope"),
            store.set_account_active("nope", false),
        ] {
            assert!(matches!(result, Err(StoreError::AccountNotFound(ref n)) if n == "nope"));
        }
        assert!(matches!(
            store.record_sync(42, SystemTime::now()),
            Err(StoreError::AccountGone(42))
        ));
    }

    #[test]
    fn the_subscription_is_recorded_and_a_status_alone_keeps_the_expiry() {
        let (_dir, store) = temp_store();
        let a = store.add_account(&new_account("main")).expect("add");
        assert_eq!(a.subscription, Subscription::default());
        let expiry = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_295_176);
        store
            .record_subscription(a.id, "Active", Some(expiry))
            .expect("record");
        store
            .record_subscription_status(a.id, "Expired")
            .expect("status");
        let stored = store.account("main").expect("get").subscription;
        assert_eq!(stored.status.as_deref(), Some("Expired"));
        assert_eq!(stored.expires_at.as_deref(), Some("2026-11-21T21:06:16Z"));
        store
            .record_subscription(a.id, "Active", None)
            .expect("never expires");
        assert_eq!(
            store.account("main").expect("get").subscription.expires_at,
            None
        );
        assert!(matches!(
            store.record_subscription_status(42, "Active"),
            Err(StoreError::AccountGone(42))
        ));
    }

    #[test]
    fn enable_disable_and_record_sync() {
        let (_dir, store) = temp_store();
        let a = store.add_account(&new_account("main")).expect("add");
        store.set_account_active("main", false).expect("disable");
        assert!(!store.account("main").expect("get").is_active);
        store.set_account_active("main", true).expect("enable");
        assert!(store.account("main").expect("get").is_active);
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_295_176);
        store.record_sync(a.id, at).expect("sync");
        assert_eq!(
            store.account("main").expect("get").last_sync_at.as_deref(),
            Some("2026-11-21T21:06:16Z")
        );
    }

    /// Every file in the data dir except the key, as bytes.
    fn files_without_key(dir: &Path) -> Vec<(String, Vec<u8>)> {
        std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.file_name().is_some_and(|n| n != KEY_FILE))
            .map(|p| {
                let bytes = std::fs::read(&p).expect("read");
                (p.display().to_string(), bytes)
            })
            .collect()
    }

    fn assert_no_plaintext(dir: &Path, when: &str) -> usize {
        let files = files_without_key(dir);
        for (name, bytes) in &files {
            assert!(
                !bytes
                    .windows(PLAINTEXT.len())
                    .any(|w| w == PLAINTEXT.as_bytes()),
                "password in plaintext in {name} ({when})"
            );
        }
        files.len()
    }

    #[test]
    fn database_files_never_hold_the_plaintext() {
        let (dir, store) = temp_store();
        store.add_account(&new_account("main")).expect("add");
        // The username is stored in clear: proof that the search would find a plaintext.
        let wal = dir.path().join(format!("{DB_FILE}-wal"));
        let wal_bytes = std::fs::read(&wal).expect("wal exists before a checkpoint");
        assert!(
            wal_bytes.windows(5).any(|w| w == b"alice"),
            "search is blind"
        );
        assert!(assert_no_plaintext(dir.path(), "before checkpoint") >= 2);

        store
            .conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("checkpoint");
        let db = std::fs::read(dir.path().join(DB_FILE)).expect("db");
        assert!(
            db.windows(5).any(|w| w == b"alice"),
            "checkpoint did not copy"
        );
        assert_no_plaintext(dir.path(), "after checkpoint");
        drop(store);
        assert_no_plaintext(dir.path(), "after close");
    }

    #[test]
    fn lost_key_gives_a_clear_error_and_accounts_can_be_readded() {
        let (dir, store) = temp_store();
        store.add_account(&new_account("main")).expect("add");
        store.add_account(&new_account("second")).expect("add");
        drop(store);
        std::fs::remove_file(dir.path().join(KEY_FILE)).expect("remove key");

        let store = Store::open(dir.path()).expect("reopen without key");
        let err = store.accounts().expect_err("decrypted without the key");
        assert!(
            matches!(
                err,
                StoreError::Undecryptable {
                    problem: KeyProblem::Missing,
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("cannot be decrypted")
                && msg.contains("missing")
                && msg.contains("add them again")
                && msg.contains("\"main\""),
            "{msg}"
        );
        assert!(!msg.contains(PLAINTEXT));
        assert!(store.account("second").is_err());

        // A new key is not minted over passwords sealed with the lost one...
        let err = store
            .add_account(&new_account("third"))
            .expect_err("mixed keys");
        assert!(err.to_string().contains("2 stored password"), "{err}");
        assert!(!dir.path().join(KEY_FILE).exists());
        // ...but once they are removed (which needs no key), accounts can be added again.
        store.remove_account("main").expect("remove");
        store.remove_account("second").expect("remove");
        store.add_account(&new_account("main")).expect("re-add");
        assert_eq!(
            store.account("main").expect("get").password.expose(),
            PLAINTEXT
        );
    }

    #[test]
    fn a_different_or_corrupt_key_gives_a_clear_error() {
        let (dir, store) = temp_store();
        store.add_account(&new_account("main")).expect("add");
        drop(store);
        let key = dir.path().join(KEY_FILE);

        std::fs::write(&key, [7u8; 32]).expect("replace key");
        let store = Store::open(dir.path()).expect("reopen");
        let err = store.accounts().expect_err("opened with the wrong key");
        assert!(
            matches!(
                err,
                StoreError::Undecryptable {
                    problem: KeyProblem::WrongKey,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("different key"), "{err}");
        drop(store);

        std::fs::write(&key, b"garbage").expect("corrupt key");
        let store = Store::open(dir.path()).expect("reopen");
        let msg = store.accounts().expect_err("corrupt key").to_string();
        assert!(
            msg.contains("corrupt") && msg.contains("add them again"),
            "{msg}"
        );
    }

    #[test]
    fn copied_database_without_key_reveals_nothing() {
        let (dir, store) = temp_store();
        store.add_account(&new_account("main")).expect("add");
        drop(store);
        let copy = tempfile::tempdir().expect("temp dir");
        for name in [DB_FILE.to_string(), format!("{DB_FILE}-wal")] {
            let from = dir.path().join(&name);
            if from.exists() {
                std::fs::copy(&from, copy.path().join(&name)).expect("copy");
            }
        }
        let store = Store::open(copy.path()).expect("open copy");
        assert!(store.accounts().is_err());
        assert_no_plaintext(copy.path(), "copy");
    }
}
