//! Test support for the relay's glue: a fake connector whose attempts the test drives by hand, a
//! hand-driven clock, and an event sink that records. No sockets, no sleeping.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::config::Deadlines;
use crate::measure::Measurement;
use crate::store::Level;
use crate::upstream::Url;

use super::metrics::Metrics;
use super::program::packet::{self, PACKET};
use super::program::synth::{FRAME_TICKS, Synth};
use super::ring::Ring;
use super::services::{Clock, EventSink, RING_BYTES, Services};
use super::session::AttemptId;
use super::source::{Attempt, ChannelInfo, Connect, Feed, StreamSource};
use super::ts::Aligned;
use super::tuners::{Tuner, Tuners};

/// An attempt as the fake connector saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub attempt: AttemptId,
    pub stream: String,
    /// The channel closed it.
    pub closed: bool,
    /// Its connection (and so its tuner) still exists.
    pub connected: bool,
}

struct FakeAttempt {
    attempt: AttemptId,
    stream: String,
    closed: Rc<Cell<bool>>,
    tuner: Option<Tuner>,
}

/// Opens attempts that do nothing by themselves: the test reports for them through the
/// channel's [`Feed`] and ends their connections with [`FakeConnector::drop_connection`].
#[derive(Default)]
pub struct FakeConnector {
    attempts: RefCell<Vec<FakeAttempt>>,
}

struct Handle(Rc<Cell<bool>>);

impl Attempt for Handle {
    fn close(&self) {
        assert!(!self.0.replace(true), "an attempt is closed once");
    }
}

impl Connect for Rc<FakeConnector> {
    fn open(
        &self,
        attempt: AttemptId,
        source: &StreamSource,
        tuner: Tuner,
        _feed: Weak<dyn Feed>,
    ) -> Box<dyn Attempt> {
        let closed = Rc::new(Cell::new(false));
        self.attempts.borrow_mut().push(FakeAttempt {
            attempt,
            stream: source.stream.clone(),
            closed: closed.clone(),
            tuner: Some(tuner),
        });
        Box::new(Handle(closed))
    }
}

impl FakeConnector {
    /// Every attempt opened so far, oldest first.
    pub fn opened(&self) -> Vec<Opened> {
        self.attempts
            .borrow()
            .iter()
            .map(|a| Opened {
                attempt: a.attempt,
                stream: a.stream.clone(),
                closed: a.closed.get(),
                connected: a.tuner.is_some(),
            })
            .collect()
    }

    /// The attempt's connection is gone: its tuner is released.
    pub fn drop_connection(&self, attempt: AttemptId) {
        let tuner = self
            .attempts
            .borrow_mut()
            .iter_mut()
            .find(|a| a.attempt == attempt)
            .and_then(|a| a.tuner.take());
        assert!(tuner.is_some(), "attempt {attempt} had a connection");
    }

    /// Lets the runtime run spawned tasks until `done` holds (a bounded number of turns).
    pub async fn settle(mut done: impl FnMut() -> bool) {
        for _ in 0..1000 {
            if done() {
                return;
            }
            tokio::task::yield_now().await;
        }
    }
}

/// A clock that moves only when the test says so.
#[derive(Clone)]
pub struct ManualClock(Rc<Cell<Instant>>);

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.0.get()
    }
}

#[derive(Default)]
pub struct RecordedEvents(
    RefCell<Vec<(Level, &'static str, String)>>,
    RefCell<Vec<(StreamSource, Measurement)>>,
);

impl EventSink for RecordedEvents {
    fn emit(&self, level: Level, category: &'static str, message: String, _: serde_json::Value) {
        self.0.borrow_mut().push((level, category, message));
    }

    fn measured(&self, source: &StreamSource, measurement: Measurement) {
        self.1.borrow_mut().push((source.clone(), measurement));
    }
}

impl RecordedEvents {
    /// Categories of the events so far, in order.
    pub fn categories(&self) -> Vec<&'static str> {
        self.0.borrow().iter().map(|e| e.1).collect()
    }

    pub fn messages(&self) -> Vec<String> {
        self.0.borrow().iter().map(|e| e.2.clone()).collect()
    }

    /// The streams measured so far, in order, with what was measured.
    pub fn measured(&self) -> Vec<(String, Measurement)> {
        self.1
            .borrow()
            .iter()
            .map(|(s, m)| (s.stream.clone(), m.clone()))
            .collect()
    }
}

/// Everything a channel under test draws on, shared with the test.
pub struct Rig {
    pub connector: Rc<FakeConnector>,
    pub clock: ManualClock,
    pub events: Rc<RecordedEvents>,
    pub tuners: Rc<Tuners>,
}

impl Rig {
    /// Accounts with their connection limits.
    pub fn new(limits: &[(i64, u32)]) -> Rig {
        let tuners = Rc::new(Tuners::default());
        tuners.set_limits(limits.iter().copied());
        Rig {
            connector: Rc::default(),
            clock: ManualClock(Rc::new(Cell::new(Instant::now()))),
            events: Rc::default(),
            tuners,
        }
    }

    /// Services with the default deadlines, sharing this rig's fakes.
    pub fn services(&self) -> Services {
        Services {
            connector: Box::new(self.connector.clone()),
            deadlines: Deadlines::default(),
            tuners: self.tuners.clone(),
            events: self.events.clone(),
            metrics: Metrics::default(),
            clock: Box::new(self.clock.clone()),
            ring_bytes: RING_BYTES,
        }
    }

    /// Channel `number` with one stream per entry of `accounts`, best first, named
    /// `NUMBER:INDEX`.
    pub fn channel(&self, number: &str, accounts: &[i64]) -> ChannelInfo {
        let sources = accounts
            .iter()
            .enumerate()
            .map(|(index, &account_id)| StreamSource {
                stream: format!("{number}:{index}"),
                stream_row: index as i64,
                account_id,
                url: Url::parse(&format!("http://panel.test/live/me/s3cret/{index}.ts")).unwrap(),
                user_agent: "test".into(),
                referrer: None,
            })
            .collect();
        ChannelInfo {
            number: number.into(),
            name: format!("Channel {number}"),
            guide_id: format!("{number}.test"),
            sources,
        }
    }

    /// Headers, then one chunk starting with a PAT.
    pub fn deliver(&self, channel: &dyn Feed, attempt: AttemptId) {
        channel.headers(attempt);
        channel.media(attempt, chunk(0xEE));
    }

    pub fn advance(&self, by: Duration) {
        self.clock.0.set(self.clock.0.get() + by);
    }
}

/// One keyframe of a synthetic program (PAT, PMT, video, audio), its payload tagged `tag`.
/// A source's last chunk is held back until its next one (it might be cut short), so a test
/// sees a chunk in the ring once the next chunk from the same source has come.
pub fn chunk(tag: u8) -> Aligned {
    let mut source = Synth::new(0x1000, 0x100, Some(0x101));
    source.clock += u64::from(tag) * FRAME_TICKS;
    BytesMut::from(&source.frame(true, tag)[..])
}

/// The tags of the frames in the ring from its oldest byte on.
pub fn ring_tags(ring: &Ring) -> Vec<u8> {
    let mut bufs = Vec::new();
    let start = ring.oldest();
    ring.read(start, &mut bufs, usize::MAX)
        .expect("the oldest position is held");
    let bytes: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
    frame_tags(&bytes)
}

/// The tags of the [`chunk`] frames in `bytes`.
pub fn frame_tags(bytes: &[u8]) -> Vec<u8> {
    bytes
        .chunks(PACKET)
        .filter(|p| packet::pid(p) == 0x100 && packet::unit_start(p))
        .map(|p| p[PACKET - 1])
        .collect()
}

/// The length of one [`chunk`].
pub const CHUNK_BYTES: usize = 5 * PACKET;
