//! What every channel of the relay draws on, one floor below the channels and their registry:
//! the upstream connector, the deadlines, the tuners, the clock, the event sink and the metrics.
//! Nothing here knows about channels, so channels and the registry can both depend on it.

use std::rc::Rc;
use std::time::Instant;

use crate::config::Deadlines;
use crate::measure::Measurement;
use crate::store::Level;

use super::metrics::Metrics;
use super::source::{Connect, StreamSource};
use super::tuners::Tuners;

/// Where the relay's events go (the event log and the log, in the server), and what it measured
/// of the streams it played (the store, once per stream per session).
pub trait EventSink {
    fn emit(
        &self,
        level: Level,
        category: &'static str,
        message: String,
        details: serde_json::Value,
    );

    fn measured(&self, source: &StreamSource, measurement: Measurement);

    /// Events and measurements that were not recorded (the sink could not keep up, or its
    /// storage failed): the relay never waits for its sink.
    fn dropped(&self) -> u64 {
        0
    }
}

/// The relay's time source: the real clock in the server, a hand-driven one in tests.
pub trait Clock {
    fn now(&self) -> Instant;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A channel's fan-out buffer, and every viewer's backlog bound beyond its socket buffer: about
/// 0.4 s at 20 Mbit/s, 2 s at 4 Mbit/s. Ten channels of it must fit the 32 MB budget.
pub const RING_BYTES: usize = 1024 * 1024;

pub struct Services {
    pub connector: Box<dyn Connect>,
    pub deadlines: Deadlines,
    pub tuners: Rc<Tuners>,
    pub events: Rc<dyn EventSink>,
    pub metrics: Metrics,
    pub clock: Box<dyn Clock>,
    pub ring_bytes: usize,
}

impl Services {
    /// The services of a server: the real clock, no account limits yet.
    pub fn new(
        connector: Box<dyn Connect>,
        deadlines: Deadlines,
        events: Rc<dyn EventSink>,
    ) -> Services {
        Services {
            connector,
            deadlines,
            tuners: Rc::new(Tuners::default()),
            events,
            metrics: Metrics::default(),
            clock: Box::new(SystemClock),
            ring_bytes: RING_BYTES,
        }
    }
}
