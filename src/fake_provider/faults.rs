//! Faults on demand: what can go wrong with a request, and the table of armed faults.
//!
//! A fault armed with a count applies to that many requests and then disarms itself; a fault armed
//! without one stays until cleared. Stream faults are counted at the `/live/…` request.

use std::collections::HashMap;
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
}

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
    pub(super) fn take_stream(&mut self, stream_id: u64) -> Option<Fault> {
        let (fault, rest) = self.streams.remove(&stream_id)?.fire();
        if let Some(rest) = rest {
            self.streams.insert(stream_id, rest);
        }
        Some(fault)
    }

    /// The fault for one API request, counting it down.
    pub(super) fn take_api(&mut self) -> Option<Fault> {
        let (fault, rest) = self.api.take()?.fire();
        self.api = rest;
        Some(fault)
    }
}
