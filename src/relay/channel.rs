//! One channel being relayed: the I/O edge of its [`Session`]. It carries out the machine's
//! actions (open and close upstream attempts, splice, start or end or refuse the viewers, log),
//! feeds it what the attempts report and the clock, and pushes the active source's packets
//! into the fan-out ring that every viewer reads from.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};
use std::time::{Instant, SystemTime};

use serde_json::json;
use tokio::sync::Notify;

use crate::store::Level;

use super::manager::Relay;
use super::metrics::add;
use super::ring::{Ring, Wakeup};
use super::session::{Action, AttemptId, Candidate, Input, Refusal, Session, SessionEvent};
use super::source::{self, AttemptHandle, SourceMsg, StreamSource};

/// What a viewer of the channel may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewing {
    /// Tuning: no media yet.
    Waiting,
    Live,
    Refused(Refusal),
    Ended,
}

/// A lineup channel as the relay needs it.
#[derive(Debug, Clone)]
pub struct ChannelInfo {
    pub number: String,
    pub name: String,
    pub guide_id: String,
    /// Best first.
    pub sources: Vec<StreamSource>,
}

pub struct Channel {
    pub info: ChannelInfo,
    relay: Weak<Relay>,
    session: RefCell<Session>,
    pub ring: RefCell<Ring>,
    pub wakeup: Wakeup,
    viewing: Cell<Viewing>,
    /// The attempt whose packets feed the ring.
    output: Cell<Option<AttemptId>>,
    attempts: RefCell<HashMap<AttemptId, AttemptHandle>>,
    /// The deadline the driver sleeps until; it is woken only when an input brings the next
    /// deadline earlier (a later one just costs one idle tick), so the per-chunk path touches no
    /// timer.
    armed: Cell<Option<Instant>>,
    rescheduled: Notify,
    /// Inputs produced while carrying out actions, fed after them.
    queued: RefCell<VecDeque<Input>>,
    pub started_at: SystemTime,
    started: Instant,
    pub bytes_in: Cell<u64>,
    pub viewers: Cell<usize>,
    peak_viewers: Cell<usize>,
}

impl Channel {
    /// Starts relaying for a first viewer.
    pub fn start(relay: &Rc<Relay>, info: ChannelInfo) -> Rc<Channel> {
        let candidates = info
            .sources
            .iter()
            .map(|s| Candidate {
                stream: s.stream.clone(),
                account_id: s.account_id,
            })
            .collect();
        let now = Instant::now();
        let (session, actions) =
            Session::start(candidates, relay.deadlines.clone(), now, &*relay.tuners);
        let channel = Rc::new(Channel {
            info,
            relay: Rc::downgrade(relay),
            session: RefCell::new(session),
            ring: RefCell::new(Ring::new(relay.ring_bytes)),
            wakeup: Wakeup::default(),
            viewing: Cell::new(Viewing::Waiting),
            output: Cell::new(None),
            attempts: RefCell::new(HashMap::new()),
            armed: Cell::new(None),
            rescheduled: Notify::new(),
            queued: RefCell::new(VecDeque::new()),
            started_at: SystemTime::now(),
            started: now,
            bytes_in: Cell::new(0),
            viewers: Cell::new(1),
            peak_viewers: Cell::new(1),
        });
        channel.apply(actions);
        channel.drain_queue();
        tokio_uring::spawn(drive(channel.clone()));
        channel
    }

    pub fn viewing(&self) -> Viewing {
        self.viewing.get()
    }

    /// `tuning`, `live` or `failing`, for `/status`.
    pub fn state(&self) -> &'static str {
        let session = self.session.borrow();
        match (self.viewing.get(), session.active_candidate()) {
            (Viewing::Waiting, _) => "tuning",
            (Viewing::Live, Some(_)) => "live",
            (Viewing::Live, None) => "failing",
            _ => "ended",
        }
    }

    /// The stream feeding the viewers, as `ACCOUNT:STREAM_ID`.
    pub fn active_stream(&self) -> Option<String> {
        let index = self.session.borrow().active_candidate()?;
        self.info.sources.get(index).map(|s| s.stream.clone())
    }

    pub fn join(self: &Rc<Self>) {
        let viewers = self.viewers.get() + 1;
        self.viewers.set(viewers);
        self.peak_viewers.set(self.peak_viewers.get().max(viewers));
        self.input(Input::ViewerJoined);
    }

    pub fn leave(self: &Rc<Self>) {
        let remaining = self.viewers.get().saturating_sub(1);
        self.viewers.set(remaining);
        self.input(Input::ViewerLeft { remaining });
    }

    /// Feeds one input to the machine and carries out what it says.
    pub fn input(self: &Rc<Self>, input: Input) {
        self.queued.borrow_mut().push_back(input);
        self.drain_queue();
        let next = self.session.borrow().next_deadline();
        let sooner = match (next, self.armed.get()) {
            (Some(next), Some(armed)) => next < armed,
            (next, armed) => {
                next.is_some() != armed.is_some() || self.session.borrow().is_finished()
            }
        };
        if sooner {
            self.rescheduled.notify_one();
        }
    }

    fn drain_queue(self: &Rc<Self>) {
        let Some(relay) = self.relay.upgrade() else {
            return;
        };
        loop {
            let Some(input) = self.queued.borrow_mut().pop_front() else {
                return;
            };
            let (actions, failures) = {
                let mut session = self.session.borrow_mut();
                let actions = session.handle(input, Instant::now(), &*relay.tuners);
                (actions, session.take_failures())
            };
            for reason in failures {
                relay.metrics.upstream_error(&reason.to_string());
            }
            self.apply(actions);
        }
    }

    fn apply(self: &Rc<Self>, actions: Vec<Action>) {
        let Some(relay) = self.relay.upgrade() else {
            return;
        };
        for action in actions {
            match action {
                Action::Connect { attempt, candidate } => {
                    let source = &self.info.sources[candidate];
                    match relay.tuners.try_take(source.account_id) {
                        Some(tuner) => {
                            let channel = Rc::downgrade(self);
                            let report: source::Report = Rc::new(move |message| {
                                if let Some(channel) = channel.upgrade() {
                                    channel.on_message(message);
                                }
                            });
                            let handle = source::spawn(
                                attempt,
                                source,
                                &relay.http,
                                relay.deadlines.connect,
                                tuner,
                                report,
                            );
                            self.attempts.borrow_mut().insert(attempt, handle);
                        }
                        // The machine checked capacity; losing the race is a failed attempt.
                        None => self.queued.borrow_mut().push_back(Input::Failed(
                            attempt,
                            super::session::FailReason::ConnectionError,
                        )),
                    }
                }
                Action::Splice(attempt) => self.output.set(Some(attempt)),
                Action::Close(attempt) => {
                    if let Some(handle) = self.attempts.borrow_mut().remove(&attempt) {
                        handle.close();
                    }
                    if self.output.get() == Some(attempt) {
                        self.output.set(None);
                    }
                }
                Action::StartViewers => self.set_viewing(Viewing::Live),
                Action::EndViewers => self.set_viewing(Viewing::Ended),
                Action::Refuse(refusal) => {
                    add(&relay.metrics.refusals, 1);
                    self.set_viewing(Viewing::Refused(refusal));
                }
                Action::Log(event) => self.log(&relay, event),
                Action::Finished => {
                    if self.viewing.get() == Viewing::Waiting || self.viewing.get() == Viewing::Live
                    {
                        self.set_viewing(Viewing::Ended);
                    }
                    relay.forget(self);
                }
            }
        }
    }

    fn set_viewing(&self, viewing: Viewing) {
        self.viewing.set(viewing);
        self.wakeup.wake();
    }

    fn on_message(self: &Rc<Self>, message: SourceMsg) {
        let Some(relay) = self.relay.upgrade() else {
            return;
        };
        match message {
            SourceMsg::Headers(attempt) => self.input(Input::Headers(attempt)),
            SourceMsg::Data(attempt, aligned) => {
                self.input(Input::Media(attempt));
                if self.output.get() == Some(attempt) {
                    let len = aligned.data.len() as u64;
                    add(&self.bytes_in, len);
                    add(&relay.metrics.bytes_in, len);
                    self.ring.borrow_mut().push(aligned);
                    self.wakeup.wake();
                }
            }
            SourceMsg::Failed(attempt, reason) => self.input(Input::Failed(attempt, reason)),
        }
    }

    fn stream(&self, index: usize) -> &str {
        self.info
            .sources
            .get(index)
            .map_or("?", |s| s.stream.as_str())
    }

    fn log(&self, relay: &Relay, event: SessionEvent) {
        let channel = format!("channel {} ({})", self.info.number, self.info.guide_id);
        let base = json!({ "channel": self.info.number, "guide_id": self.info.guide_id });
        let with = |extra: serde_json::Value| {
            let mut details = base.clone();
            if let (Some(d), Some(e)) = (details.as_object_mut(), extra.as_object()) {
                d.extend(e.clone());
            }
            details
        };
        let (level, category, message, details) = match event {
            SessionEvent::Started { stream } => {
                add(&relay.metrics.sessions_started, 1);
                (
                    Level::Info,
                    "session",
                    format!("{channel}: started on {}", self.stream(stream)),
                    with(json!({ "stream": self.stream(stream), "viewers": self.viewers.get() })),
                )
            }
            SessionEvent::Failover {
                from,
                to,
                reason,
                gap,
            } => {
                add(&relay.metrics.failovers, 1);
                (
                    Level::Warn,
                    "failover",
                    format!(
                        "{channel}: failover from {} to {} ({reason}), {} ms without data",
                        self.stream(from),
                        self.stream(to),
                        gap.as_millis()
                    ),
                    with(
                        json!({ "from_stream": self.stream(from), "to_stream": self.stream(to), "reason": reason.to_string(), "gap_ms": gap.as_millis() as u64 }),
                    ),
                )
            }
            SessionEvent::BudgetMissed { from, reason } => (
                Level::Warn,
                "failover",
                format!(
                    "{channel}: no stream took over from {} ({reason}) within the failover budget; still trying",
                    self.stream(from)
                ),
                with(json!({ "from_stream": self.stream(from), "reason": reason.to_string() })),
            ),
            SessionEvent::Upgraded { from, to } => {
                add(&relay.metrics.upgrades, 1);
                (
                    Level::Info,
                    "upgrade",
                    format!(
                        "{channel}: back to the better stream {} from {}",
                        self.stream(to),
                        self.stream(from)
                    ),
                    with(json!({ "from_stream": self.stream(from), "to_stream": self.stream(to) })),
                )
            }
            SessionEvent::UpgradeFailed { stream, reason } => (
                Level::Info,
                "upgrade",
                format!(
                    "{channel}: the better stream {} is still failing ({reason}); staying",
                    self.stream(stream)
                ),
                with(json!({ "stream": self.stream(stream), "reason": reason.to_string() })),
            ),
            SessionEvent::Exhausted { last } => (
                Level::Error,
                "failover",
                format!(
                    "{channel}: every stream failed{}",
                    last.map(|r| format!(" (last: {r})")).unwrap_or_default()
                ),
                with(
                    json!({ "reason": last.map(|r| r.to_string()), "streams": self.info.sources.iter().map(|s| s.stream.clone()).collect::<Vec<_>>() }),
                ),
            ),
            SessionEvent::TunersBusy => (
                Level::Warn,
                "tuner",
                format!("{channel}: refused, all tuners in use"),
                with(
                    json!({ "streams": self.info.sources.iter().map(|s| s.stream.clone()).collect::<Vec<_>>() }),
                ),
            ),
            SessionEvent::Ended => {
                let seconds = self.started.elapsed().as_secs_f64();
                (
                    Level::Info,
                    "session",
                    format!(
                        "{channel}: ended after {seconds:.0} s, {} bytes, up to {} viewers",
                        self.bytes_in.get(),
                        self.peak_viewers.get()
                    ),
                    with(
                        json!({ "seconds": seconds, "bytes": self.bytes_in.get(), "peak_viewers": self.peak_viewers.get(), "stream": self.active_stream() }),
                    ),
                )
            }
        };
        relay.events.emit(level, category, message, details);
    }
}

/// The channel's clock: ticks the machine at its deadlines until the session is over. The
/// attempts feed the channel directly from their own tasks.
async fn drive(channel: Rc<Channel>) {
    while !channel.session.borrow().is_finished() {
        let deadline = channel.session.borrow().next_deadline();
        channel.armed.set(deadline);
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => channel.input(Input::Tick),
            _ = channel.rescheduled.notified() => {}
        }
    }
}
