//! The relay: the channels being relayed now (one shared session per channel), the tuners they
//! draw on, and what every session needs (the upstream client, deadlines, events, metrics).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde::Serialize;

use crate::config::Deadlines;
use crate::http::{Connection, Request, Response};
use crate::store::Level;
use crate::upstream;

use super::channel::{Channel, ChannelInfo, Viewing};
use super::metrics::Metrics;
use super::session::Input;
use super::tuners::Tuners;
use super::viewer;

/// Where the relay's events go (the event log and stderr, in the server).
pub trait EventSink {
    fn emit(
        &self,
        level: Level,
        category: &'static str,
        message: String,
        details: serde_json::Value,
    );
}

/// A channel's fan-out buffer, and every viewer's backlog bound beyond its socket buffer: about
/// 0.4 s at 20 Mbit/s, 2 s at 4 Mbit/s. Ten channels of it must fit the 32 MB budget.
pub const RING_BYTES: usize = 1024 * 1024;

pub struct Relay {
    pub http: upstream::Client,
    pub deadlines: Deadlines,
    pub tuners: Rc<Tuners>,
    pub events: Rc<dyn EventSink>,
    pub metrics: Metrics,
    pub ring_bytes: usize,
    channels: RefCell<HashMap<String, Rc<Channel>>>,
}

/// One session, for `/status`.
#[derive(Debug, Serialize)]
pub struct SessionStatus {
    pub channel: String,
    pub name: String,
    pub guide_id: String,
    pub state: &'static str,
    pub stream: Option<String>,
    pub viewers: usize,
    pub bytes: u64,
    pub started_at: String,
}

impl Relay {
    /// A relay on the current runtime; it listens for freed tuners from now on.
    pub fn new(
        http: upstream::Client,
        deadlines: Deadlines,
        events: Rc<dyn EventSink>,
    ) -> Rc<Relay> {
        let relay = Rc::new(Relay {
            http,
            deadlines,
            tuners: Rc::new(Tuners::default()),
            events,
            metrics: Metrics::default(),
            ring_bytes: RING_BYTES,
            channels: RefCell::new(HashMap::new()),
        });
        let weak = Rc::downgrade(&relay);
        let tuners = relay.tuners.clone();
        tokio_uring::spawn(async move {
            loop {
                tuners.freed.notified().await;
                match weak.upgrade() {
                    Some(relay) => relay.capacity_freed(),
                    None => return,
                }
            }
        });
        relay
    }

    /// Each enabled account's connection limit (accounts not listed get none).
    pub fn set_account_limits(&self, limits: impl IntoIterator<Item = (i64, u32)>) {
        self.tuners.set_limits(limits);
    }

    /// The response to a tune of `info`: the connection is taken over and fed from the channel's
    /// shared session, started if none runs.
    pub fn tune(self: &Rc<Self>, info: ChannelInfo) -> Response {
        let relay = self.clone();
        Response::take_over(move |connection: Connection, request: Request| async move {
            let channel = relay.channel_for(info);
            viewer::watch(relay, channel, connection, request).await;
        })
    }

    fn channel_for(self: &Rc<Self>, info: ChannelInfo) -> Rc<Channel> {
        let existing = self.channels.borrow().get(&info.number).cloned();
        match existing {
            Some(channel) if matches!(channel.viewing(), Viewing::Waiting | Viewing::Live) => {
                channel.join();
                channel
            }
            _ => {
                let number = info.number.clone();
                let channel = Channel::start(self, info);
                if !matches!(channel.viewing(), Viewing::Refused(_) | Viewing::Ended) {
                    self.channels.borrow_mut().insert(number, channel.clone());
                }
                channel
            }
        }
    }

    /// Drops a finished channel (if it is still the one registered under its number).
    pub(super) fn forget(&self, channel: &Channel) {
        let mut channels = self.channels.borrow_mut();
        if channels
            .get(&channel.info.number)
            .is_some_and(|c| std::ptr::eq(Rc::as_ptr(c), channel))
        {
            channels.remove(&channel.info.number);
        }
    }

    /// A connection was released: every session waiting for one may start now.
    pub fn capacity_freed(&self) {
        let channels: Vec<Rc<Channel>> = self.channels.borrow().values().cloned().collect();
        for channel in channels {
            channel.input(Input::CapacityFreed);
        }
    }

    pub fn status(&self) -> Vec<SessionStatus> {
        let mut sessions: Vec<SessionStatus> = self
            .channels
            .borrow()
            .values()
            .map(|c| SessionStatus {
                channel: c.info.number.clone(),
                name: c.info.name.clone(),
                guide_id: c.info.guide_id.clone(),
                state: c.state(),
                stream: c.active_stream(),
                viewers: c.viewers.get(),
                bytes: c.bytes_in.get(),
                started_at: crate::time::rfc3339(c.started_at),
            })
            .collect();
        sessions.sort_by(|a, b| crate::store::number_order(&a.channel, &b.channel));
        sessions
    }

    /// `/metrics` in Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let channels = self.channels.borrow();
        let viewers = channels.values().map(|c| c.viewers.get()).sum();
        self.metrics.render(
            channels.len(),
            viewers,
            self.tuners.in_use(),
            self.tuners.total(),
        )
    }
}
