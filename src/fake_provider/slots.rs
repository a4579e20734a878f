//! Per-account stream connection slots, enforced the way common panels do: a connection beyond
//! `max_connections` is served, and the account's oldest open stream connection is cut mid-body.

use std::collections::{HashMap, VecDeque};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::lock;

#[derive(Default)]
struct Account {
    /// Open stream connections, oldest first, with a handle to cut them.
    open: VecDeque<(u64, TcpStream)>,
    peak: u32,
    evictions: u32,
}

#[derive(Default)]
pub(super) struct Slots {
    accounts: Mutex<HashMap<String, Account>>,
    changed: Condvar,
    next_id: AtomicU64,
}

/// One open stream connection; frees its slot when dropped.
pub(super) struct Slot<'a> {
    slots: &'a Slots,
    username: String,
    id: u64,
}

impl Slots {
    /// Takes a slot for a stream connection of `username`, first cutting the oldest connections
    /// that would exceed `max_connections` (0: unlimited).
    pub(super) fn acquire(
        &self,
        username: &str,
        max_connections: u32,
        sock: TcpStream,
    ) -> Slot<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut accounts = lock(&self.accounts);
        let account = accounts.entry(username.to_owned()).or_default();
        while max_connections > 0 && account.open.len() >= max_connections as usize {
            let Some((_, victim)) = account.open.pop_front() else {
                break;
            };
            let _ = victim.shutdown(Shutdown::Both);
            account.evictions += 1;
        }
        account.open.push_back((id, sock));
        account.peak = account.peak.max(account.open.len() as u32);
        self.changed.notify_all();
        Slot {
            slots: self,
            username: username.to_owned(),
            id,
        }
    }

    fn release(&self, username: &str, id: u64) {
        let mut accounts = lock(&self.accounts);
        if let Some(account) = accounts.get_mut(username) {
            account.open.retain(|(open, _)| *open != id);
        }
        self.changed.notify_all();
    }

    fn read<T>(&self, username: &str, f: impl FnOnce(&Account) -> T) -> Option<T> {
        lock(&self.accounts).get(username).map(f)
    }

    pub(super) fn active(&self, username: &str) -> u32 {
        self.read(username, |a| a.open.len() as u32).unwrap_or(0)
    }

    pub(super) fn peak(&self, username: &str) -> u32 {
        self.read(username, |a| a.peak).unwrap_or(0)
    }

    pub(super) fn evictions(&self, username: &str) -> u32 {
        self.read(username, |a| a.evictions).unwrap_or(0)
    }

    /// Waits until `username` has exactly `want` open stream connections; `false` on timeout.
    pub(super) fn wait_active(&self, username: &str, want: u32, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut accounts = lock(&self.accounts);
        loop {
            let active = accounts.get(username).map_or(0, |a| a.open.len() as u32);
            if active == want {
                return true;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            accounts = match self.changed.wait_timeout(accounts, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.slots.release(&self.username, self.id);
    }
}
