//! Faults on demand: what can go wrong with a request, and the table of armed faults.
//!
//! A fault armed with a count applies to that many requests and then disarms itself; a fault armed
//! without one stays until cleared. Stream faults are counted at the `/live/…` request. A body
//! already flowing can be struck too (the soak run's faults hit live upstreams): each open body has
//! a cell the table drops the fault into, which its pump looks at every pacing tick.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Something a real panel or CDN does wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Close the connection right after reading the request, sending nothing.
    Refuse,
    /// Answer with this HTTP status and a small HTML body.
    Status(u16),
    /// Answer `200` with a `text/html` error page.
    Html200,
    /// Answer `200` with bytes that are neither MPEG-TS nor valid JSON/XML.
    Garbage,
    /// Send this many body bytes, then go silent while holding the socket open until the client leaves.
    StallAfter(usize),
    /// Send this many body bytes, then close the connection.
    DropAfter(usize),
    /// Wait this long before answering.
    SlowHeaders(Duration),
    /// Send bytes that are no TLS record the client can decrypt (a corrupted or foreign record)
    /// instead of the answer, then close: on HTTPS the client's TLS fails. Struck mid-body, it
    /// comes after the bytes sent so far.
    TlsCorrupt,
}

impl Fault {
    /// Whether the fault can strike a body already flowing (the others act on the request).
    pub fn strikes_mid_body(self) -> bool {
        matches!(
            self,
            Fault::DropAfter(_) | Fault::StallAfter(_) | Fault::Garbage | Fault::TlsCorrupt
        )
    }
}

/// Where a fault struck at an open body waits for its pump.
pub(super) type StrikeCell = Arc<Mutex<Option<Fault>>>;

#[derive(Debug, Clone, Copy)]
struct Armed {
    fault: Fault,
    /// `None`: until cleared.
    remaining: Option<u32>,
}

impl Armed {
    fn new(fault: Fault, times: Option<u32>) -> Option<Armed> {
        (times != Some(0)).then_some(Armed {
            fault,
            remaining: times,
        })
    }

    /// The fault for one request, and what stays armed after it.
    fn fire(mut self) -> (Fault, Option<Armed>) {
        match self.remaining {
            Some(n) if n <= 1 => (self.fault, None),
            Some(n) => {
                self.remaining = Some(n - 1);
                (self.fault, Some(self))
            }
            None => (self.fault, Some(self)),
        }
    }
}

/// The faults currently armed, per stream and for the API.
#[derive(Debug, Default)]
pub(super) struct FaultTable {
    streams: HashMap<u64, Armed>,
    api: Option<Armed>,
    /// The bodies flowing now: id → (stream id, its strike cell).
    bodies: HashMap<u64, (u64, StrikeCell)>,
    next_body: u64,
}

impl FaultTable {
    pub(super) fn set_stream(&mut self, stream_id: u64, fault: Fault, times: Option<u32>) {
        match Armed::new(fault, times) {
            Some(armed) => self.streams.insert(stream_id, armed),
            None => self.streams.remove(&stream_id),
        };
    }

    pub(super) fn set_api(&mut self, fault: Fault, times: Option<u32>) {
        self.api = Armed::new(fault, times);
    }

    pub(super) fn clear(&mut self) {
        self.streams.clear();
        self.api = None;
    }

    /// The fault for one request of this stream, counting it down.
    pub(super) fn stream_armed(&self, stream_id: u64) -> bool {
        self.streams.contains_key(&stream_id)
    }

    pub(super) fn take_stream(&mut self, stream_id: u64) -> Option<Fault> {
        let (fault, rest) = self.streams.remove(&stream_id)?.fire();
        if let Some(rest) = rest {
            self.streams.insert(stream_id, rest);
        }
        Some(fault)
    }

    /// Registers a body of `stream_id` that starts flowing: its id (for [`Self::close_body`]) and
    /// the cell where a strike lands.
    pub(super) fn open_body(&mut self, stream_id: u64) -> (u64, StrikeCell) {
        let id = self.next_body;
        self.next_body += 1;
        let cell = StrikeCell::default();
        self.bodies.insert(id, (stream_id, cell.clone()));
        (id, cell)
    }

    pub(super) fn close_body(&mut self, id: u64) {
        self.bodies.remove(&id);
    }

    /// Strikes every open body of `stream_id` with `fault` (one that strikes mid-body); how many.
    pub(super) fn strike(&mut self, stream_id: u64, fault: Fault) -> u32 {
        if !fault.strikes_mid_body() {
            return 0;
        }
        let mut struck = 0;
        for (stream, cell) in self.bodies.values() {
            if *stream == stream_id {
                *super::lock(cell) = Some(fault);
                struck += 1;
            }
        }
        struck
    }

    /// The fault for one API request, counting it down.
    pub(super) fn take_api(&mut self) -> Option<Fault> {
        let (fault, rest) = self.api.take()?.fire();
        self.api = rest;
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_strike_lands_on_the_open_bodies_of_its_stream_only() {
        let mut table = FaultTable::default();
        let (a, cell_a) = table.open_body(1);
        let (_, cell_b) = table.open_body(1);
        let (_, other) = table.open_body(2);
        assert_eq!(table.strike(1, Fault::TlsCorrupt), 2);
        assert_eq!(*cell_a.lock().unwrap(), Some(Fault::TlsCorrupt));
        assert_eq!(*cell_b.lock().unwrap(), Some(Fault::TlsCorrupt));
        assert_eq!(*other.lock().unwrap(), None);
        table.close_body(a);
        assert_eq!(table.strike(1, Fault::DropAfter(0)), 1);
        assert_eq!(table.strike(3, Fault::StallAfter(0)), 0);
    }

    #[test]
    fn request_faults_never_strike_a_flowing_body() {
        let mut table = FaultTable::default();
        let (_, cell) = table.open_body(1);
        for fault in [
            Fault::Refuse,
            Fault::Status(500),
            Fault::Html200,
            Fault::SlowHeaders(Duration::from_secs(1)),
        ] {
            assert!(!fault.strikes_mid_body());
            assert_eq!(table.strike(1, fault), 0);
        }
        assert_eq!(*cell.lock().unwrap(), None);
    }

    #[test]
    fn a_counted_fault_disarms_itself() {
        let mut table = FaultTable::default();
        table.set_stream(7, Fault::TlsCorrupt, Some(2));
        assert!(table.stream_armed(7) && !table.stream_armed(8));
        assert_eq!(table.take_stream(7), Some(Fault::TlsCorrupt));
        assert_eq!(table.take_stream(7), Some(Fault::TlsCorrupt));
        assert!(!table.stream_armed(7));
        assert_eq!(table.take_stream(7), None);
    }
}
