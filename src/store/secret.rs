//! Secrets at rest: the key file `<data_dir>/secret.key` and AES-256-GCM sealing with it.
//!
//! A sealed value is `nonce (12 bytes) || ciphertext || tag (16 bytes)` with a fresh random nonce
//! each time. The key lives outside the database, so a copied database reveals no password.

use super::{Store, StoreError};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::cell::OnceCell;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// File name of the key inside the data dir.
pub const KEY_FILE: &str = "secret.key";

const KEY_LEN: usize = 32;

/// A password held in memory. Prints as `***` so that it cannot reach a log by accident; the
/// only way to the text is [`Password::expose`].
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn new(text: impl Into<String>) -> Self {
        Password(text.into())
    }

    /// The password itself: only for sending it to the provider.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Password {
    fn from(text: String) -> Self {
        Password(text)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// What is wrong with the key file, or with a sealed value under it.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyProblem {
    Missing,
    NotAFile,
    WrongLength(u64),
    /// Group or others have access; carries the permission bits.
    Insecure(u32),
    Unreadable(io::Error),
    /// Authentication failed: sealed under another key, or the stored bytes are damaged.
    WrongKey,
}

impl KeyProblem {
    /// Whether the key that sealed the data is gone for good (as opposed to a fixable
    /// permission problem).
    pub(super) fn is_loss(&self) -> bool {
        matches!(
            self,
            KeyProblem::Missing
                | KeyProblem::NotAFile
                | KeyProblem::WrongLength(_)
                | KeyProblem::WrongKey
        )
    }

    /// The problem in words, naming the key file at `path`.
    pub(super) fn describe(&self, path: &Path) -> String {
        let path = path.display();
        match self {
            KeyProblem::Missing => format!("the key file {path} is missing"),
            KeyProblem::NotAFile => format!("the key file {path} is not a regular file"),
            KeyProblem::WrongLength(n) => {
                format!("the key file {path} is corrupt ({n} bytes, expected {KEY_LEN})")
            }
            KeyProblem::Insecure(mode) => format!(
                "the key file {path} has mode {mode:04o}: group and others must have no \
                 access (run `chmod 600 {path}`)"
            ),
            KeyProblem::Unreadable(e) => format!("cannot read the key file {path}: {e}"),
            KeyProblem::WrongKey => format!(
                "it was encrypted with a different key than {path}, or the stored bytes are \
                 damaged"
            ),
        }
    }
}

/// The key file, read (or created) on first use and then kept for the life of the store.
pub(super) struct KeyFile {
    path: PathBuf,
    cipher: OnceCell<Cipher>,
}

impl KeyFile {
    pub(super) fn new(data_dir: &Path) -> Self {
        KeyFile {
            path: data_dir.join(KEY_FILE),
            cipher: OnceCell::new(),
        }
    }

    /// The existing key.
    fn load(&self) -> Result<&Cipher, KeyProblem> {
        if let Some(cipher) = self.cipher.get() {
            return Ok(cipher);
        }
        let cipher = Cipher::new(&read_key(&self.path)?)?;
        Ok(self.cipher.get_or_init(|| cipher))
    }

    /// Creates a new random key, or takes the one another process created first.
    fn create(&self) -> Result<&Cipher, StoreError> {
        let rng = SystemRandom::new();
        let mut key = [0u8; KEY_LEN];
        let mut tag = [0u8; 8];
        rng.fill(&mut key)
            .and_then(|()| rng.fill(&mut tag))
            .map_err(|_| StoreError::Crypto("the system random generator failed"))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        // Written in full under a private name, then linked into place: the link fails if the
        // key exists, so no process ever sees a partial key or replaces another's.
        let tmp = dir.join(format!(
            ".{KEY_FILE}.{}.{}",
            std::process::id(),
            u64::from_ne_bytes(tag)
        ));
        let io_err = |doing: &str| {
            let doing = format!("{doing} {}", self.path.display());
            move |source| StoreError::Io { doing, source }
        };
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut file| {
                file.write_all(&key)?;
                file.sync_all()
            });
        let linked = written.and_then(|()| fs::hard_link(&tmp, &self.path));
        // A leftover temp file holds an unused key in a private dir: harmless, so not an error.
        let _ = fs::remove_file(&tmp);
        match linked {
            // Make the new name durable before anything sealed with the key is committed.
            Ok(()) => File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err("creating the key file"))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("creating the key file")(e)),
        }
        self.load().map_err(|problem| StoreError::Key {
            path: self.path.clone(),
            problem,
        })
    }
}

/// Reads the key, refusing a file that others can read or that has the wrong size.
fn read_key(path: &Path) -> Result<[u8; KEY_LEN], KeyProblem> {
    let mut file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => KeyProblem::Missing,
        _ => KeyProblem::Unreadable(e),
    })?;
    let meta = file.metadata().map_err(KeyProblem::Unreadable)?;
    if !meta.is_file() {
        return Err(KeyProblem::NotAFile);
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyProblem::Insecure(mode));
    }
    if meta.len() != KEY_LEN as u64 {
        return Err(KeyProblem::WrongLength(meta.len()));
    }
    let mut key = [0u8; KEY_LEN];
    file.read_exact(&mut key).map_err(KeyProblem::Unreadable)?;
    Ok(key)
}

/// AES-256-GCM under the store's key, and a keyed hash derived from it.
pub(super) struct Cipher {
    key: LessSafeKey,
    rng: SystemRandom,
    /// HMAC-SHA256 under a key derived from the store's: a fingerprint of a secret that reveals
    /// nothing of it without the key file (an unkeyed hash of a URL would let a copied database
    /// confirm guessed passwords).
    fingerprints: hmac::Key,
}

impl Cipher {
    fn new(key: &[u8; KEY_LEN]) -> Result<Self, KeyProblem> {
        let derived = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, key),
            b"streamforge fingerprints",
        );
        let key = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| KeyProblem::WrongLength(KEY_LEN as u64))?;
        Ok(Cipher {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
            fingerprints: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
        })
    }

    /// A keyed 48-bit fingerprint of `text`: short enough to type as a stream id, wide enough
    /// that 100,000 of them collide with odds of about 1 in 56,000.
    pub(super) fn fingerprint(&self, text: &str) -> i64 {
        let tag = hmac::sign(&self.fingerprints, text.as_bytes());
        tag.as_ref()
            .iter()
            .take(6)
            .fold(0i64, |acc, &b| (acc << 8) | i64::from(b))
    }

    /// Seals `plaintext`; `aad` names the column so a value cannot be moved to another one.
    pub(super) fn seal(&self, aad: &'static [u8], plaintext: &str) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| StoreError::Crypto("the system random generator failed"))?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plaintext.as_bytes());
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut sealed[NONCE_LEN..],
            )
            .map_err(|_| StoreError::Crypto("AES-256-GCM sealing failed"))?;
        sealed.extend_from_slice(tag.as_ref());
        Ok(sealed)
    }

    /// Opens a value made by [`Cipher::seal`] with the same `aad`.
    pub(super) fn open(&self, aad: &'static [u8], sealed: &[u8]) -> Result<String, KeyProblem> {
        let (nonce, ciphertext) = sealed
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(KeyProblem::WrongKey)?;
        let mut buf = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| KeyProblem::WrongKey)?;
        let len = plain.len();
        buf.truncate(len);
        String::from_utf8(buf).map_err(|_| KeyProblem::WrongKey)
    }
}

impl Store {
    /// The key for sealing a new secret, created on first use.
    ///
    /// A missing key is not replaced while sealed values exist: they were sealed with the lost
    /// key, and mixing keys would leave some secrets readable and others not.
    pub(super) fn sealing_cipher(&self) -> Result<&Cipher, StoreError> {
        match self.key.load() {
            Ok(cipher) => Ok(cipher),
            Err(KeyProblem::Missing) => {
                let sealed: i64 = self
                    .conn
                    .query_row(
                        "SELECT (SELECT count(*) FROM accounts) + (SELECT count(*) FROM xmltv_sources)",
                        [],
                        |row| row.get(0),
                    )
                    .map_err(|source| StoreError::Db {
                        doing: "counting stored secrets".into(),
                        source,
                    })?;
                if sealed > 0 {
                    return Err(StoreError::Undecryptable {
                        what: format!("the {sealed} stored password(s)"),
                        path: self.key.path.clone(),
                        problem: KeyProblem::Missing,
                    });
                }
                self.key.create()
            }
            Err(problem) => Err(StoreError::Key {
                path: self.key.path.clone(),
                problem,
            }),
        }
    }

    /// Opens a sealed value; `what` names it in the error (never its content).
    pub(super) fn unseal(
        &self,
        aad: &'static [u8],
        sealed: &[u8],
        what: impl FnOnce() -> String,
    ) -> Result<String, StoreError> {
        let problem = match self.key.load() {
            Ok(cipher) => match cipher.open(aad, sealed) {
                Ok(plain) => return Ok(plain),
                Err(problem) => problem,
            },
            Err(problem) => problem,
        };
        let path = self.key.path.clone();
        Err(if problem.is_loss() {
            StoreError::Undecryptable {
                what: what(),
                path,
                problem,
            }
        } else {
            StoreError::Key { path, problem }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::temp_store;

    const AAD: &[u8] = b"test";

    #[test]
    fn password_never_prints() {
        let p = Password::new("hunter2-secret");
        assert_eq!(format!("{p}"), "***");
        assert_eq!(format!("{p:?}"), "***");
        assert_eq!(format!("{:?}", Some(p.clone())), "Some(***)");
        assert_eq!(p.expose(), "hunter2-secret");
    }

    #[test]
    fn key_is_created_private_and_reused() {
        let (dir, store) = temp_store();
        let path = dir.path().join(KEY_FILE);
        assert!(!path.exists(), "key created before it was needed");
        let sealed = store
            .sealing_cipher()
            .expect("key")
            .seal(AAD, "x")
            .expect("seal");
        let meta = fs::metadata(&path).expect("key file");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), KEY_LEN as u64);
        let first = fs::read(&path).expect("read key");
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".secret.key."))
            .collect();
        assert!(leftovers.is_empty(), "temp key files left: {leftovers:?}");
        drop(store);

        let store = Store::open(dir.path()).expect("reopen");
        store.sealing_cipher().expect("key");
        assert_eq!(
            fs::read(&path).expect("read key"),
            first,
            "key was replaced"
        );
        assert_eq!(
            store.unseal(AAD, &sealed, || "x".into()).expect("unseal"),
            "x"
        );
    }

    #[test]
    fn racing_creators_end_up_with_one_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let barrier = std::sync::Barrier::new(2);
        let sealed: Vec<Vec<u8>> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let key = KeyFile::new(dir.path());
                        barrier.wait();
                        key.create()
                            .and_then(|c| c.seal(AAD, "shared"))
                            .expect("create")
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().expect("thread"))
                .collect()
        });
        let key = KeyFile::new(dir.path());
        for blob in &sealed {
            assert_eq!(
                key.load().expect("load").open(AAD, blob).expect("open"),
                "shared"
            );
        }
    }

    #[test]
    fn seal_round_trips_with_fresh_nonces() {
        let (_dir, store) = temp_store();
        let cipher = store.sealing_cipher().expect("key");
        let a = cipher.seal(AAD, "pässwörd ✓").expect("seal");
        let b = cipher.seal(AAD, "pässwörd ✓").expect("seal");
        assert_ne!(a, b, "nonce reused");
        assert_eq!(a.len(), NONCE_LEN + "pässwörd ✓".len() + 16);
        assert_eq!(cipher.open(AAD, &a).expect("open"), "pässwörd ✓");
        assert_eq!(cipher.open(AAD, &b).expect("open"), "pässwörd ✓");
        let empty = cipher.seal(AAD, "").expect("seal empty");
        assert_eq!(cipher.open(AAD, &empty).expect("open empty"), "");
    }

    #[test]
    fn fingerprints_are_stable_per_key_and_differ_across_keys() {
        let (_dir, store) = temp_store();
        let cipher = store.sealing_cipher().expect("key");
        let a = cipher.fingerprint("http://h/live/u/p/1.ts");
        assert_eq!(a, cipher.fingerprint("http://h/live/u/p/1.ts"));
        assert_ne!(a, cipher.fingerprint("http://h/live/u/p/2.ts"));
        assert!((0..1 << 48).contains(&a), "{a}");
        let (_other_dir, other) = temp_store();
        let other = other.sealing_cipher().expect("key");
        assert_ne!(a, other.fingerprint("http://h/live/u/p/1.ts"), "not keyed");
    }

    #[test]
    fn tampering_and_other_columns_are_rejected() {
        let (_dir, store) = temp_store();
        let cipher = store.sealing_cipher().expect("key");
        let mut sealed = cipher.seal(AAD, "secret").expect("seal");
        assert!(matches!(
            cipher.open(b"other column", &sealed),
            Err(KeyProblem::WrongKey)
        ));
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(matches!(
            cipher.open(AAD, &sealed),
            Err(KeyProblem::WrongKey)
        ));
        for short in [&[][..], &[0u8; 5][..], &[0u8; NONCE_LEN + 3][..]] {
            assert!(matches!(cipher.open(AAD, short), Err(KeyProblem::WrongKey)));
        }
    }

    #[test]
    fn insecure_or_corrupt_key_files_are_refused() {
        let (dir, store) = temp_store();
        store.sealing_cipher().expect("key");
        let path = dir.path().join(KEY_FILE);
        drop(store);

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let store = Store::open(dir.path()).expect("reopen");
        let err = store.sealing_cipher().err().expect("insecure key accepted");
        assert!(
            matches!(
                err,
                StoreError::Key {
                    problem: KeyProblem::Insecure(0o644),
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
        drop(store);

        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        fs::write(&path, b"short").expect("truncate");
        let store = Store::open(dir.path()).expect("reopen");
        let err = store.sealing_cipher().err().expect("corrupt key accepted");
        assert!(err.to_string().contains("5 bytes"), "{err}");
    }

    #[test]
    fn key_errors_say_what_to_do() {
        let path = PathBuf::from("/d/secret.key");
        let lost = StoreError::Key {
            path: path.clone(),
            problem: KeyProblem::Missing,
        };
        assert_eq!(
            lost.to_string(),
            "the key file /d/secret.key is missing; restore it from a backup, or move it away \
             and add the accounts again"
        );
        let fixable = StoreError::Key {
            path: path.clone(),
            problem: KeyProblem::Insecure(0o644),
        };
        assert_eq!(
            fixable.to_string(),
            "the key file /d/secret.key has mode 0644: group and others must have no access \
             (run `chmod 600 /d/secret.key`)"
        );
        let sealed = StoreError::Undecryptable {
            what: "the password of \"main\"".into(),
            path,
            problem: KeyProblem::WrongKey,
        };
        assert_eq!(
            sealed.to_string(),
            "the password of \"main\" cannot be decrypted: it was encrypted with a different key \
             than /d/secret.key, or the stored bytes are damaged. Passwords cannot be recovered \
             without the key that encrypted them: remove the accounts (`streamforge account \
             remove NAME`) and add them again"
        );
    }
}
