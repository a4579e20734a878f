//! One channel being relayed: the I/O edge of its [`Session`] and its [`Program`]. It carries
//! out the machine's actions (open and close upstream attempts, splice, wake or refuse the
//! viewers, log), feeds the machine what the attempts report and the clock, and pushes the output
//! program's bytes into the fan-out ring that every viewer reads from.
//!
//! Everything runs on the relay's one thread. The session is the one source of truth: who feeds
//! the viewers, how many viewers there are, and whether they may watch are asked of it, never
//! copied. The channel never reaches up to its registry: the registry runs [`Channel::run_clock`],
//! which returns when the session is over.

use std::cell::{Cell, Ref, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};
use std::time::{Instant, SystemTime};

use serde::Serialize;
use tokio::sync::Notify;

use super::bitrate::BitRate;
use super::events::{Facts, describe};
use super::metrics::add;
use super::program::Program;
use super::ring::{Ring, Wakeup};
use super::services::Services;
use super::session::{
    Action, AttemptId, Candidate, FailReason, Input, Session, SessionEvent, SpliceKind, Viewing,
};
use super::source::{Attempt, ChannelInfo, Feed};
use super::ts::Aligned;
use crate::measure::Measurement;

/// One session, for `/status` and the appliance's page.
#[derive(Debug, Serialize)]
pub struct SessionStatus {
    pub channel: String,
    pub name: String,
    pub guide_id: String,
    pub state: &'static str,
    /// The stream feeding the viewers, as `ACCOUNT:STREAM_ID`.
    pub stream: Option<String>,
    /// Whether that stream is the channel's first choice (`primary`) or a `backup`.
    pub role: Option<&'static str>,
    /// What has been measured of the stream playing, so far.
    pub measured: Option<Measurement>,
    pub viewers: usize,
    pub bytes: u64,
    /// Bits per second coming in lately (see [`BitRate`]).
    pub bitrate_bps: u64,
    /// Upstream connections the session holds (one, or two while trying the better stream).
    pub connections: usize,
    pub started_at: String,
    pub uptime_seconds: u64,
    pub last_failover: Option<LastFailover>,
}

/// The session's latest failover.
#[derive(Debug, Clone, Serialize)]
pub struct LastFailover {
    /// RFC 3339.
    pub at: String,
    pub from: String,
    pub to: String,
    pub reason: String,
}

/// An open attempt, with the candidate (index into `info.sources`) it is on.
type OpenAttempt = (usize, Box<dyn Attempt>);

pub struct Channel {
    pub info: ChannelInfo,
    /// Handed to attempts as their [`Feed`].
    me: Weak<Channel>,
    services: Rc<Services>,
    session: RefCell<Session>,
    /// Every source's packets go through it; what the viewers get comes out of it.
    program: RefCell<Program>,
    ring: RefCell<Ring>,
    wakeup: Wakeup,
    attempts: RefCell<HashMap<AttemptId, OpenAttempt>>,
    /// The deadline the clock task sleeps until; it is woken only when an input brings the next
    /// deadline earlier (a later one just costs one idle tick), so the per-chunk path touches no
    /// timer.
    armed: Cell<Option<Instant>>,
    rescheduled: Notify,
    started_at: SystemTime,
    started: Instant,
    bitrate: RefCell<BitRate>,
    last_failover: RefCell<Option<LastFailover>>,
}

impl Channel {
    /// Starts relaying for a first viewer. The caller runs [`Channel::run_clock`] for it unless
    /// it is already finished (refused at once).
    pub fn start(services: Rc<Services>, info: ChannelInfo) -> Rc<Channel> {
        let candidates = info
            .sources
            .iter()
            .map(|s| Candidate {
                account_id: s.account_id,
            })
            .collect();
        let now = services.clock.now();
        let (session, actions) = Session::start(
            candidates,
            services.deadlines.clone(),
            now,
            &*services.tuners,
        );
        let channel = Rc::new_cyclic(|me| Channel {
            ring: RefCell::new(Ring::new(services.ring_bytes)),
            program: RefCell::new(Program::new(services.deadlines.keyframe)),
            info,
            me: me.clone(),
            services,
            session: RefCell::new(session),
            wakeup: Wakeup::default(),
            attempts: RefCell::new(HashMap::new()),
            armed: Cell::new(None),
            rescheduled: Notify::new(),
            started_at: SystemTime::now(),
            started: now,
            bitrate: RefCell::new(BitRate::new(now)),
            last_failover: RefCell::new(None),
        });
        channel.carry_out(actions);
        channel
    }

    pub fn viewing(&self) -> Viewing {
        self.session.borrow().viewing()
    }

    pub fn is_finished(&self) -> bool {
        self.session.borrow().is_finished()
    }

    pub fn viewers(&self) -> usize {
        self.session.borrow().viewers()
    }

    /// The shared services (metrics and events for the viewers).
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The fan-out ring; never hold the borrow across an `.await`.
    pub fn ring(&self) -> Ref<'_, Ring> {
        self.ring.borrow()
    }

    /// Woken on every push to the ring and every change of [`Channel::viewing`].
    pub fn wakeup(&self) -> &Wakeup {
        &self.wakeup
    }

    pub fn join(&self) {
        self.input(Input::ViewerJoined);
    }

    pub fn leave(&self) {
        self.input(Input::ViewerLeft);
    }

    /// A connection was released somewhere: a stream waiting for one may start now.
    pub fn capacity_freed(&self) {
        self.input(Input::CapacityFreed);
    }

    /// The stream feeding the viewers, as `ACCOUNT:STREAM_ID`.
    pub fn active_stream(&self) -> Option<String> {
        let index = self.session.borrow().active_candidate()?;
        self.info.sources.get(index).map(|s| s.stream.clone())
    }

    pub fn status(&self) -> SessionStatus {
        let now = self.services.clock.now();
        let bytes = self.ring.borrow().bytes_pushed();
        let active = self.session.borrow().active_candidate();
        let feeding = self.session.borrow().feeding();
        SessionStatus {
            measured: feeding.and_then(|a| self.program.borrow().measurement(a)),
            channel: self.info.number.clone(),
            name: self.info.name.clone(),
            guide_id: self.info.guide_id.clone(),
            state: self.session.borrow().state_name(),
            stream: self.active_stream(),
            role: active.map(|index| if index == 0 { "primary" } else { "backup" }),
            viewers: self.viewers(),
            bytes,
            bitrate_bps: self.bitrate.borrow_mut().observe(now, bytes),
            connections: self.attempts.borrow().len(),
            started_at: crate::time::rfc3339(self.started_at),
            uptime_seconds: now.saturating_duration_since(self.started).as_secs(),
            last_failover: self.last_failover.borrow().clone(),
        }
    }

    /// The channel's clock: ticks the session at its deadlines; returns once the session is
    /// over. The attempts feed the channel from their own tasks.
    pub async fn run_clock(&self) {
        while !self.is_finished() {
            let deadline = self.session.borrow().next_deadline();
            self.armed.set(deadline);
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep => self.tick(),
                _ = self.rescheduled.notified() => {}
            }
        }
    }

    /// A deadline may have passed (the clock task's input; tests call it by hand).
    pub fn tick(&self) {
        self.input(Input::Tick);
    }

    /// Feeds one input to the session at the clock's `now` and carries out what it says.
    fn input(&self, input: Input) {
        let now = self.services.clock.now();
        let actions = self
            .session
            .borrow_mut()
            .handle(input, now, &*self.services.tuners);
        self.carry_out(actions);
    }

    /// Carries out the session's actions in order. An action may produce an input of its own (a
    /// Connect that finds no free connection fails at once); it is fed after the whole batch, and
    /// its actions carried out in turn. No session borrow is held while an action runs.
    fn carry_out(&self, mut actions: Vec<Action>) {
        let mut follow_ups = VecDeque::new();
        loop {
            self.count_failures();
            for action in actions {
                self.apply(action, &mut follow_ups);
            }
            let Some(input) = follow_ups.pop_front() else {
                break;
            };
            let now = self.services.clock.now();
            actions = self
                .session
                .borrow_mut()
                .handle(input, now, &*self.services.tuners);
        }
        self.reschedule();
    }

    fn apply(&self, action: Action, follow_ups: &mut VecDeque<Input>) {
        let metrics = &self.services.metrics;
        match action {
            Action::Connect { attempt, candidate } => self.connect(attempt, candidate, follow_ups),
            Action::Splice {
                attempt,
                kind,
                forced,
            } => {
                let from = if forced { "a PAT" } else { "a keyframe" };
                log::debug!(
                    "channel {}: attempt {attempt} feeds the viewers ({kind:?}, from {from})",
                    self.info.number
                );
                add(
                    match kind {
                        SpliceKind::First => &metrics.sessions_started,
                        SpliceKind::Failover => &metrics.failovers,
                        SpliceKind::Upgrade => &metrics.upgrades,
                    },
                    1,
                );
                if forced {
                    add(&metrics.splices_without_keyframe, 1);
                }
                let now = self.services.clock.now();
                self.program.borrow_mut().splice(attempt, forced, now);
                self.release();
            }
            Action::Close(attempt) => {
                let measured = self.program.borrow_mut().forget(attempt);
                let closed = self.attempts.borrow_mut().remove(&attempt);
                if let Some((candidate, closed)) = closed {
                    log::debug!("channel {}: closing attempt {attempt}", self.info.number);
                    closed.close();
                    if let Some(measured) = measured {
                        self.measured(candidate, measured);
                    }
                }
            }
            Action::Refuse(_) => {
                add(&metrics.refusals, 1);
                self.wakeup.wake();
            }
            Action::StartViewers | Action::EndViewers | Action::Finished => self.wakeup.wake(),
            Action::Log(event) => self.log(&event),
        }
    }

    fn connect(&self, attempt: AttemptId, candidate: usize, follow_ups: &mut VecDeque<Input>) {
        let source = &self.info.sources[candidate];
        let Some(tuner) = self.services.tuners.try_take(source.account_id) else {
            // The machine checked capacity; losing the race is a failed attempt.
            follow_ups.push_back(Input::Failed(attempt, FailReason::ConnectionError));
            return;
        };
        log::debug!(
            "channel {}: attempt {attempt} on {}",
            self.info.number,
            source.stream
        );
        let feed: Weak<dyn Feed> = self.me.clone();
        let opened = self.services.connector.open(attempt, source, tuner, feed);
        self.attempts
            .borrow_mut()
            .insert(attempt, (candidate, opened));
    }

    /// Every attempt failure the session saw (reported, or detected by its own clock) counts in
    /// `/metrics`.
    fn count_failures(&self) {
        for reason in self.session.borrow_mut().take_failures() {
            log::debug!("channel {}: an attempt failed: {reason}", self.info.number);
            self.services.metrics.upstream_error(&reason.to_string());
        }
    }

    /// Wakes the clock task when the next deadline moved earlier than the one it sleeps until,
    /// went away, or the session is over.
    fn reschedule(&self) {
        let (next, finished) = {
            let session = self.session.borrow();
            (session.next_deadline(), session.is_finished())
        };
        let sooner = match (next, self.armed.get()) {
            (Some(next), Some(armed)) => next < armed,
            (next, armed) => next.is_some() != armed.is_some() || finished,
        };
        if sooner {
            self.rescheduled.notify_one();
        }
    }

    /// Moves what the output program has ready into the ring and wakes the viewers.
    fn release(&self) {
        let now = self.services.clock.now();
        let mut ring = self.ring.borrow_mut();
        let mut bytes = 0;
        self.program.borrow_mut().release(now, &mut |piece| {
            bytes += piece.data.len() as u64;
            ring.push(piece);
        });
        drop(ring);
        if bytes > 0 {
            add(&self.services.metrics.bytes_in, bytes);
            self.wakeup.wake();
        }
    }

    /// Hands what was measured of a candidate's stream to be stored (once per attempt).
    fn measured(&self, candidate: usize, measurement: Measurement) {
        if let Some(source) = self.info.sources.get(candidate) {
            self.services.events.measured(source, measurement);
        }
    }

    fn log(&self, event: &SessionEvent) {
        let facts = {
            let session = self.session.borrow();
            Facts {
                viewers: session.viewers(),
                peak_viewers: session.peak_viewers(),
                bytes: self.ring.borrow().bytes_pushed(),
                elapsed: self
                    .services
                    .clock
                    .now()
                    .saturating_duration_since(self.started),
                active: session.active_candidate(),
            }
        };
        let entry = describe(&self.info, event, &facts);
        if let SessionEvent::Failover {
            from, to, reason, ..
        } = event
        {
            let stream = |index: usize| self.info.sources.get(index).map(|s| s.stream.clone());
            *self.last_failover.borrow_mut() = Some(LastFailover {
                at: crate::time::rfc3339(SystemTime::now()),
                from: stream(*from).unwrap_or_default(),
                to: stream(*to).unwrap_or_default(),
                reason: reason.to_string(),
            });
        }
        self.services
            .events
            .emit(entry.level, entry.category, entry.message, entry.details);
    }
}

impl Feed for Channel {
    fn headers(&self, attempt: AttemptId) {
        self.input(Input::Headers(attempt));
    }

    fn media(&self, attempt: AttemptId, aligned: Aligned) {
        let Some(candidate) = self.attempts.borrow().get(&attempt).map(|a| a.0) else {
            // Closed already: whatever it still reports is not ours.
            return;
        };
        // The program first (it finds where the source may be spliced in), then the session
        // (which may splice it in now), then what the viewers get.
        let (random_access, settled) = {
            let mut program = self.program.borrow_mut();
            let random_access = program.receive(attempt, aligned);
            (random_access, program.take_settled(attempt))
        };
        if let Some(measured) = settled {
            self.measured(candidate, measured);
        }
        self.input(Input::Media {
            attempt,
            random_access,
        });
        if self.session.borrow().feeding() == Some(attempt) {
            self.release();
        }
    }

    fn failed(&self, attempt: AttemptId, reason: FailReason) {
        self.input(Input::Failed(attempt, reason));
    }
}

#[cfg(test)]
#[path = "channel_tests.rs"]
mod tests;
