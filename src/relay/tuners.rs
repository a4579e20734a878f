//! Tuner accounting: one upstream connection is one tuner, and an account never has more open
//! than its `max_connections` (panels evict the oldest connection past it: our own stream).
//! A [`Tuner`] is held for as long as its connection may exist and frees the slot on drop.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::session::Capacity;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Slots {
    open: u32,
    max: u32,
}

/// Open connections per account against each account's limit.
#[derive(Debug, Default)]
pub struct Tuners {
    accounts: RefCell<HashMap<i64, Slots>>,
    /// Notified whenever a connection is released, so waiting sessions can start at once.
    pub freed: tokio::sync::Notify,
}

impl Tuners {
    /// Sets every account's limit (accounts not listed get none). Open connections stay counted.
    pub fn set_limits(&self, limits: impl IntoIterator<Item = (i64, u32)>) {
        let mut accounts = self.accounts.borrow_mut();
        for slots in accounts.values_mut() {
            slots.max = 0;
        }
        for (account, max) in limits {
            accounts.entry(account).or_default().max = max;
        }
        // An account gone (removed, disabled) is forgotten once it holds no connection, so the
        // map is bounded by the accounts that exist, not by every account ever seen.
        accounts.retain(|_, s| s.max > 0 || s.open > 0);
    }

    /// Takes a connection of `account` if one is free.
    pub fn try_take(self: &Rc<Self>, account: i64) -> Option<Tuner> {
        let mut accounts = self.accounts.borrow_mut();
        let slots = accounts.get_mut(&account)?;
        (slots.open < slots.max).then(|| {
            slots.open += 1;
            Tuner {
                tuners: self.clone(),
                account,
            }
        })
    }

    /// Connections open now, over all accounts.
    pub fn in_use(&self) -> u32 {
        self.accounts.borrow().values().map(|s| s.open).sum()
    }

    /// `(account, open, max)` for every account with a limit or an open connection.
    pub fn usage(&self) -> Vec<(i64, u32, u32)> {
        let mut usage: Vec<_> = self
            .accounts
            .borrow()
            .iter()
            .filter(|(_, s)| s.max > 0 || s.open > 0)
            .map(|(&account, s)| (account, s.open, s.max))
            .collect();
        usage.sort_unstable();
        usage
    }

    pub fn total(&self) -> u32 {
        self.accounts.borrow().values().map(|s| s.max).sum()
    }
}

impl Capacity for Tuners {
    fn can_open(&self, account_id: i64) -> bool {
        self.accounts
            .borrow()
            .get(&account_id)
            .is_some_and(|s| s.open < s.max)
    }
}

/// One open (or opening) upstream connection; frees its slot on drop.
#[derive(Debug)]
pub struct Tuner {
    tuners: Rc<Tuners>,
    account: i64,
}

impl Drop for Tuner {
    fn drop(&mut self) {
        let mut accounts = self.tuners.accounts.borrow_mut();
        if let Some(slots) = accounts.get_mut(&self.account) {
            slots.open = slots.open.saturating_sub(1);
            if *slots == (Slots { open: 0, max: 0 }) {
                accounts.remove(&self.account);
            }
        }
        drop(accounts);
        self.tuners.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_than_the_limit_and_freed_on_drop() {
        let tuners = Rc::new(Tuners::default());
        tuners.set_limits([(1, 2), (2, 1)]);
        let a = tuners.try_take(1).unwrap();
        let b = tuners.try_take(1).unwrap();
        assert!(tuners.try_take(1).is_none());
        assert!(!tuners.can_open(1));
        assert!(tuners.can_open(2));
        assert_eq!(tuners.in_use(), 2);
        drop(a);
        assert!(tuners.can_open(1));
        let _c = tuners.try_take(1).unwrap();
        assert!(
            tuners.try_take(3).is_none(),
            "unknown account has no tuners"
        );
        // Lowering a limit below what is open blocks new ones until enough are freed.
        tuners.set_limits([(1, 1), (2, 1)]);
        drop(b);
        assert!(!tuners.can_open(1));
        assert_eq!(tuners.total(), 2);
        // A disabled account (no limit) still shows the connection it has open.
        let _d = tuners.try_take(2).unwrap();
        tuners.set_limits([(1, 1)]);
        assert_eq!(tuners.usage(), [(1, 1, 1), (2, 1, 0)]);
    }

    #[test]
    fn accounts_gone_are_forgotten_once_their_connections_close() {
        let tuners = Rc::new(Tuners::default());
        tuners.set_limits((1..=1000).map(|account| (account, 2)));
        let held = tuners.try_take(7).unwrap();
        // Every account removed but one, which still holds a connection.
        tuners.set_limits([(1000, 2)]);
        assert_eq!(tuners.accounts.borrow().len(), 2);
        drop(held);
        assert_eq!(tuners.accounts.borrow().len(), 1);
        assert_eq!(tuners.usage(), [(1000, 0, 2)]);
    }
}
