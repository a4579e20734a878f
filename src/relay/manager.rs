//! The relay: the registry of channels being relayed now (one shared session per channel
//! number), and the entry points the server calls: tune a viewer, set the account limits, read
//! `/status` and `/metrics`. A channel leaves the registry when its clock task, run here,
//! returns.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::http::{Connection, Request, Response};

use super::channel::{Channel, SessionStatus};
use super::metrics::Gauges;
use super::services::Services;
use super::session::Viewing;
use super::source::ChannelInfo;
use super::tuners::Tuners;
use super::viewer;

pub struct Relay {
    services: Rc<Services>,
    channels: RefCell<HashMap<String, Rc<Channel>>>,
}

impl Relay {
    /// A relay on the current runtime; it listens for freed tuners from now on.
    pub fn new(services: Services) -> Rc<Relay> {
        let relay = Rc::new(Relay {
            services: Rc::new(services),
            channels: RefCell::new(HashMap::new()),
        });
        let weak = Rc::downgrade(&relay);
        let tuners = relay.services.tuners.clone();
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

    pub fn tuners(&self) -> &Tuners {
        &self.services.tuners
    }

    /// Each enabled account's connection limit (accounts not listed get none).
    pub fn set_account_limits(&self, limits: impl IntoIterator<Item = (i64, u32)>) {
        self.services.tuners.set_limits(limits);
    }

    /// The response to a tune of `info`: the connection is taken over and fed from the channel's
    /// shared session, started if none runs.
    pub fn tune(self: &Rc<Self>, info: ChannelInfo) -> Response {
        let relay = self.clone();
        Response::take_over(move |connection: Connection, request: Request| async move {
            let channel = relay.channel_for(info);
            viewer::watch(channel, connection, request.version).await;
        })
    }

    /// The channel a new viewer joins: the running one, or a new session.
    pub fn channel_for(self: &Rc<Self>, info: ChannelInfo) -> Rc<Channel> {
        let running = self
            .channels
            .borrow()
            .get(&info.number)
            .filter(|c| matches!(c.viewing(), Viewing::Waiting | Viewing::Live))
            .cloned();
        if let Some(channel) = running {
            channel.join();
            return channel;
        }
        let channel = Channel::start(self.services.clone(), info);
        if !channel.is_finished() {
            self.channels
                .borrow_mut()
                .insert(channel.info.number.clone(), channel.clone());
            let relay = Rc::downgrade(self);
            let clocked = channel.clone();
            tokio_uring::spawn(async move {
                clocked.run_clock().await;
                if let Some(relay) = relay.upgrade() {
                    relay.forget(&clocked);
                }
            });
        }
        channel
    }

    /// Drops a finished channel, if it is still the one registered under its number (a new
    /// session may have taken the number while this one was ending).
    fn forget(&self, channel: &Rc<Channel>) {
        let mut channels = self.channels.borrow_mut();
        if channels
            .get(&channel.info.number)
            .is_some_and(|c| Rc::ptr_eq(c, channel))
        {
            channels.remove(&channel.info.number);
        }
    }

    /// A connection was released: every session waiting for one may start now.
    fn capacity_freed(&self) {
        let channels: Vec<Rc<Channel>> = self.channels.borrow().values().cloned().collect();
        for channel in channels {
            channel.capacity_freed();
        }
    }

    pub fn status(&self) -> Vec<SessionStatus> {
        let mut sessions: Vec<SessionStatus> = self
            .channels
            .borrow()
            .values()
            .map(|c| c.status())
            .collect();
        sessions.sort_by(|a, b| crate::store::number_order(&a.channel, &b.channel));
        sessions
    }

    /// `/metrics` in Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let channels = self.channels.borrow();
        let viewers = channels.values().map(|c| c.viewers()).sum();
        let tuners = &self.services.tuners;
        self.services.metrics.render(&Gauges {
            sessions: channels.len(),
            viewers,
            tuners_in_use: tuners.in_use(),
            tuners: tuners.total(),
            events_dropped: self.services.events.dropped(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::session::FailReason;
    use crate::relay::source::Feed;
    use crate::relay::testing::{FakeConnector, Rig};
    use std::time::Duration;

    #[test]
    fn viewers_of_a_channel_share_one_session_and_a_finished_one_is_forgotten() {
        tokio_uring::start(async {
            let rig = Rig::new(&[(1, 2)]);
            let relay = Relay::new(rig.services());
            let first = relay.channel_for(rig.channel("101", &[1]));
            let second = relay.channel_for(rig.channel("101", &[1]));
            assert!(Rc::ptr_eq(&first, &second));
            assert_eq!(rig.connector.opened().len(), 1, "one upstream for both");
            assert_eq!(relay.status()[0].viewers, 2);
            assert_eq!(relay.status()[0].state, "tuning");

            // Both leave before any media: the tune is abandoned, its clock task ends, and the
            // registry lets it go.
            first.leave();
            second.leave();
            assert!(first.is_finished());
            FakeConnector::settle(|| relay.status().is_empty()).await;
            assert!(relay.status().is_empty());

            // The next tune of the number is a new session.
            let third = relay.channel_for(rig.channel("101", &[1]));
            assert!(!Rc::ptr_eq(&first, &third));
            assert_eq!(rig.connector.opened().len(), 2);
        });
    }

    #[test]
    fn a_channel_whose_last_viewer_left_is_freed_with_its_ring() {
        tokio_uring::start(async {
            let rig = Rig::new(&[(1, 2)]);
            let relay = Relay::new(rig.services());
            let channel = relay.channel_for(rig.channel("101", &[1]));
            let attempt = rig.connector.opened()[0].attempt;
            rig.deliver(&*channel, attempt);
            assert_eq!(relay.status()[0].state, "live");
            channel.leave();
            // The linger passes (the clock is driven by hand): the session ends.
            rig.advance(Duration::from_secs(60));
            channel.tick();
            assert!(channel.is_finished());
            FakeConnector::settle(|| relay.status().is_empty()).await;
            assert!(relay.status().is_empty());
            // Nothing but this test holds the channel (and so its ring and program) any more.
            let weak = Rc::downgrade(&channel);
            drop(channel);
            assert!(weak.upgrade().is_none(), "the channel outlived its session");
        });
    }

    #[test]
    fn a_refused_tune_is_never_registered() {
        tokio_uring::start(async {
            let rig = Rig::new(&[(1, 1)]);
            let relay = Relay::new(rig.services());
            let news = relay.channel_for(rig.channel("101", &[1]));
            let sport = relay.channel_for(rig.channel("102", &[1]));
            assert_eq!(news.viewing(), Viewing::Waiting);
            assert!(matches!(sport.viewing(), Viewing::Refused(_)));
            let listed: Vec<String> = relay.status().into_iter().map(|s| s.channel).collect();
            assert_eq!(listed, ["101"]);
            assert!(
                relay
                    .metrics_text()
                    .contains("streamforge_refusals_total 1")
            );
        });
    }

    #[test]
    fn a_freed_connection_restarts_a_waiting_session() {
        tokio_uring::start(async {
            let rig = Rig::new(&[(1, 1)]);
            let relay = Relay::new(rig.services());
            let news = relay.channel_for(rig.channel("101", &[1, 1]));
            let attempt = rig.connector.opened()[0].attempt;
            rig.deliver(&*news, attempt);
            // The stream dies, but its connection lingers: the replacement must wait for it.
            news.failed(attempt, FailReason::StreamError);
            assert_eq!(rig.connector.opened().len(), 1);
            assert_eq!(relay.tuners().in_use(), 1);
            // The connection goes: the relay hears of it and the session connects again.
            rig.connector.drop_connection(attempt);
            FakeConnector::settle(|| rig.connector.opened().len() == 2).await;
            assert_eq!(rig.connector.opened().len(), 2);
            assert_eq!(relay.tuners().in_use(), 1);
        });
    }
}
