//! Small key/value settings that must survive restarts (e.g. the generated device id).

use super::{Ctx, Store, StoreError};
use rusqlite::OptionalExtension;

impl Store {
    /// The value stored under `key`, if any.
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()
            .ctx(|| format!("reading setting {key:?}"))
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map(|_| ())
            .ctx(|| format!("storing setting {key:?} in {}", self.db_path.display()))
    }
}

#[cfg(test)]
mod tests {
    use crate::store::tests::temp_store;

    #[test]
    fn set_get_overwrite() {
        let (_dir, store) = temp_store();
        assert_eq!(store.setting("device_id").expect("read"), None);
        store.set_setting("device_id", "10AB12CD").expect("write");
        assert_eq!(
            store.setting("device_id").expect("read").as_deref(),
            Some("10AB12CD")
        );
        store
            .set_setting("device_id", "20EF34AB")
            .expect("overwrite");
        assert_eq!(
            store.setting("device_id").expect("read").as_deref(),
            Some("20EF34AB")
        );
        assert_eq!(store.setting("other").expect("read"), None);
    }
}
