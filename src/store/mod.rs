//! SQLite persistence: opening the database, its errors, and change detection between processes.
//!
//! The CLI and a running server each open their own [`Store`] on the same file; WAL mode lets the
//! server read while the CLI writes, and [`Store::data_version`] tells the server when to reload.
//! Every write goes through an IMMEDIATE transaction so two writers queue on the busy timeout
//! instead of failing when one upgrades a read lock.

mod accounts;
mod catalog;
mod events;
mod guide;
mod mappings;
mod measurements;
mod schema;
mod secret;
mod settings;

pub use accounts::{Account, AccountKind, NewAccount, Subscription};
pub use catalog::{CatalogChange, CatalogStream, PlaylistStream, StoredStream, StreamFilter};
pub use events::{Event, Level, StoredEvent};
pub use guide::{
    GuideChannel, GuideChannelInput, NewSource, Refreshed, Source, SourceKind, number_order,
};
pub use mappings::{Mapping, PlannedMapping};
pub use measurements::{How, Measured};
pub use secret::{KeyProblem, Password};

use rusqlite::{Connection, TransactionBehavior};
use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// File name of the database inside the data dir.
pub const DB_FILE: &str = "streamforge.db";

/// How long a statement waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An open database plus the key that seals its passwords.
pub struct Store {
    conn: Connection,
    db_path: PathBuf,
    key: secret::KeyFile,
}

impl Store {
    /// Opens (creating if needed) `<data_dir>/streamforge.db` and brings its schema up to date.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        if !data_dir.exists() {
            // 0700: the dir holds the key file and the database.
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(data_dir)
                .map_err(|source| StoreError::Io {
                    doing: format!("creating data directory {}", data_dir.display()),
                    source,
                })?;
        }
        let db_path = data_dir.join(DB_FILE);
        create_private_file(&db_path)?;
        let opening = |step: &str| {
            let doing = format!("opening database {}{step}", db_path.display());
            move || doing
        };
        let mut conn = Connection::open(&db_path).ctx(opening(""))?;
        conn.busy_timeout(BUSY_TIMEOUT).ctx(opening(""))?;
        conn.pragma_update(None, "foreign_keys", true)
            .ctx(opening(": enabling foreign keys"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .ctx(opening(": setting synchronous=NORMAL"))?;
        let mode = enable_wal(&conn).ctx(opening(": switching to WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NotWal {
                path: db_path,
                mode,
            });
        }
        conn.set_transaction_behavior(TransactionBehavior::Immediate);
        schema::migrate(&conn, &db_path, schema::MIGRATIONS)?;
        Ok(Store {
            conn,
            key: secret::KeyFile::new(data_dir),
            db_path,
        })
    }

    /// SQLite's `data_version`: changes whenever another connection commits to the database.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        self.conn
            .pragma_query_value(None, "data_version", |row| row.get(0))
            .ctx(|| format!("reading data_version of {}", self.db_path.display()))
    }
}

/// Switches the database to WAL and returns the journal mode now in force.
///
/// When two connections switch a new database at the same moment, SQLite answers one of them
/// "busy" at once instead of calling the busy handler (waiting could deadlock), so wait here.
fn enable_wal(conn: &Connection) -> rusqlite::Result<String> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)) {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            done => return done,
        }
    }
}

/// Creates an empty database file readable by its owner only, unless it exists. SQLite gives the
/// `-wal` and `-shm` files the same mode as the database.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Io {
            doing: format!("creating database {}", path.display()),
            source,
        }),
    }
}

/// Why a store operation failed. No variant ever carries a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A database call failed while doing what `doing` says.
    #[error("{doing}: {source}{}", storage_hint(.source))]
    Db {
        doing: String,
        source: rusqlite::Error,
    },
    /// A file-system call failed while doing what `doing` says.
    #[error("{doing}: {source}")]
    Io { doing: String, source: io::Error },
    /// The database was written by a newer StreamForge.
    #[error(
        "database {} has schema version {found}, but this StreamForge supports up to \
         {supported}: it was written by a newer version; upgrade StreamForge",
        .path.display()
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// The file system refused write-ahead logging (e.g. a network mount).
    #[error(
        "database {}: cannot switch to write-ahead logging (journal mode stays {mode}); \
         put the data dir on a local file system",
        .path.display()
    )]
    NotWal { path: PathBuf, mode: String },
    /// The key file cannot be used.
    #[error("{}{}", .problem.describe(.path), key_advice(.problem))]
    Key { path: PathBuf, problem: KeyProblem },
    /// Stored secrets cannot be decrypted; `what` names them.
    #[error(
        "{what} cannot be decrypted: {}. Passwords cannot be recovered without the key that \
         encrypted them: remove the accounts (`streamforge account remove NAME`) and add them again",
        .problem.describe(.path)
    )]
    Undecryptable {
        what: String,
        path: PathBuf,
        problem: KeyProblem,
    },
    /// The system random generator or the cipher failed.
    #[error("encryption failed: {0}")]
    Crypto(&'static str),
    #[error("invalid account name {name:?}: {reason}")]
    InvalidAccountName { name: String, reason: &'static str },
    #[error("invalid max_connections {0}: must be at least 1")]
    InvalidMaxConnections(u32),
    #[error("an account named {0:?} already exists")]
    AccountExists(String),
    #[error("no account named {0:?}")]
    AccountNotFound(String),
    /// An account id given by a caller no longer exists (removed by another process meanwhile).
    #[error("account #{0} no longer exists (removed meanwhile?)")]
    AccountGone(i64),
    /// A catalog listed the same provider stream twice.
    #[error("the catalog lists stream_id {0} more than once; nothing was changed")]
    DuplicateStreamId(i64),
    /// A stored value is not what this program wrote.
    #[error("corrupt data in the database: {what}")]
    Corrupt { what: String },
    /// A guide source, channel, stream or mapping named by the user does not exist; says which.
    #[error("{0}")]
    NotFound(String),
    /// The change would break a rule (a name or number already taken, an ambiguous reference).
    #[error("{0}")]
    Conflict(String),
}

/// What to do about a key that is gone for good; nothing for a problem that can be fixed.
fn key_advice(problem: &KeyProblem) -> &'static str {
    if problem.is_loss() {
        "; restore it from a backup, or move it away and add the accounts again"
    } else {
        ""
    }
}

/// Attaches "what we were doing" to a rusqlite error; the closure runs only on failure.
trait Ctx<T> {
    fn ctx(self, doing: impl FnOnce() -> String) -> Result<T, StoreError>;
}

impl<T> Ctx<T> for rusqlite::Result<T> {
    fn ctx(self, doing: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Db {
            doing: doing(),
            source,
        })
    }
}

/// Said after an error of the file system under SQLite (a full disk, a file size limit, a
/// read-only file or directory, a file it cannot open), so that the message points at the disk
/// rather than at StreamForge.
fn storage_hint(e: &rusqlite::Error) -> &'static str {
    use rusqlite::ErrorCode::*;
    match e.sqlite_error_code() {
        Some(DiskFull | SystemIoFailure | ReadOnly | CannotOpen | PermissionDenied) => {
            " (is the disk full, or the data dir read-only?)"
        }
        _ => "",
    }
}

/// Whether `e` is a UNIQUE constraint violation (as opposed to any other failure).
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    e.sqlite_error()
        .is_some_and(|e| e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// Converts a count or limit to SQLite's integer, saturating (SQLite has no unsigned type).
fn sql_int(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A store in a fresh temp dir; keep the dir alive as long as the store.
    pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open store");
        (dir, store)
    }

    #[test]
    fn creates_private_data_dir_and_database() {
        let root = tempfile::tempdir().expect("temp dir");
        let data = root.path().join("a").join("b");
        let _store = Store::open(&data).expect("open");
        let mode = std::fs::metadata(&data).expect("dir").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let mode = std::fs::metadata(data.join(DB_FILE))
            .expect("db")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "database readable by others: {mode:o}");
    }

    #[test]
    fn store_can_move_to_another_thread() {
        fn is_send<T: Send>() {}
        is_send::<Store>();
    }

    #[test]
    fn concurrent_first_opens_both_succeed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let barrier = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            let opens: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        Store::open(dir.path()).map(|store| store.set_setting("k", "v"))
                    })
                })
                .collect();
            for open in opens {
                let result = open.join().expect("thread");
                assert!(matches!(result, Ok(Ok(()))), "{result:?}");
            }
        });
    }

    #[test]
    fn wal_and_foreign_keys_are_on() {
        let (_dir, store) = temp_store();
        let mode: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("journal_mode");
        assert_eq!(mode, "wal");
        let fk: i64 = store
            .conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .expect("foreign_keys");
        assert_eq!(fk, 1);
    }

    #[test]
    fn data_version_sees_other_connections() {
        let (dir, server) = temp_store();
        let cli = Store::open(dir.path()).expect("second open");
        let before = server.data_version().expect("data_version");
        cli.set_setting("device_id", "1234ABCD").expect("write");
        let after = server.data_version().expect("data_version");
        assert_ne!(before, after);
        assert_eq!(
            server.setting("device_id").expect("read").as_deref(),
            Some("1234ABCD")
        );
        // Our own writes do not count as "someone else changed it".
        server.set_setting("x", "y").expect("write");
        assert_eq!(server.data_version().expect("data_version"), after);
    }

    #[test]
    fn unopenable_database_names_the_file() {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            root.path().join(DB_FILE),
            b"this is not a database, just text",
        )
        .expect("write");
        let err = match Store::open(root.path()) {
            Ok(_) => panic!("opened a text file as a database"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(DB_FILE), "{err}");
    }
}
