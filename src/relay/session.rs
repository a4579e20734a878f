//! One channel's session as a pure state machine: which stream feeds the viewers, when to fail
//! over, when to give up, when to try the better stream again, when to let go of the upstream.
//!
//! No I/O and no clock reads happen here (sans-IO, like rustls and quinn-proto): the relay feeds
//! in what happened ([`Input`]) with the current `now`, and carries out the [`Action`]s that
//! come back. Every deadline is an `Instant` held in the state; [`Session::next_deadline`] tells
//! the relay when to deliver the next [`Input::Tick`]. Tests drive time by hand.
//!
//! Streams are the channel's candidates in priority order: index 0 is the best. At most three
//! upstream attempts exist at once: the active source, a replacement being connected (during a
//! tune or a failover), and an upgrade probe (while on a backup).

use std::time::{Duration, Instant};

use crate::config::Deadlines;

/// A stream the session may use, best first. Events name it by its index; the relay knows its
/// name and URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub account_id: i64,
}

/// Identifies one upstream connection attempt; never reused within a session.
pub type AttemptId = u64;

/// Why a source was abandoned (SPEC §7 Events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// Connect, TLS, response headers or first bytes not within their deadline.
    ConnectionTimeout,
    ConnectionError,
    TlsError,
    HttpError(u16),
    /// The body ended, or its framing broke.
    StreamError,
    /// No bytes for the stall timeout.
    Stall,
    /// The body is not MPEG-TS (an HTML page, garbage).
    NotTs,
    /// The body is an HLS playlist: Plex takes MPEG-TS only, and we relay nothing else.
    Hls,
}

impl std::fmt::Display for FailReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailReason::ConnectionTimeout => f.write_str("ConnectionTimeout"),
            FailReason::ConnectionError => f.write_str("ConnectionError"),
            FailReason::TlsError => f.write_str("TlsError"),
            FailReason::HttpError(status) => write!(f, "HttpError({status})"),
            FailReason::StreamError => f.write_str("StreamError"),
            FailReason::Stall => f.write_str("Stall"),
            FailReason::NotTs => f.write_str("NotTs"),
            FailReason::Hls => f.write_str("Hls"),
        }
    }
}

/// What happened, as the relay saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The attempt's response headers arrived with a 2xx status.
    Headers(AttemptId),
    /// The attempt delivered MPEG-TS bytes (checked by the relay); `random_access`: a place to
    /// splice in cleanly (PAT, PMT, a random-access frame) has arrived from it.
    Media {
        attempt: AttemptId,
        random_access: bool,
    },
    /// The attempt failed; the relay has already stopped reading it.
    Failed(AttemptId, FailReason),
    /// A deadline may have passed.
    Tick,
    /// An upstream connection was released somewhere: a stream waiting for one may start now.
    CapacityFreed,
    ViewerJoined,
    ViewerLeft,
}

/// Why a tune is refused before any media was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every account that carries the channel is at its connection limit (HDHomeRun 805).
    AllTunersInUse,
    /// No stream delivered MPEG-TS before the grace ended (HDHomeRun 807).
    NoVideoData,
}

/// What the viewers of the session may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewing {
    /// Tuning: no media yet, no response head sent.
    Waiting,
    /// Media flows (or a failover is under way): the viewers' responses are open.
    Live,
    Refused(Refusal),
    Ended,
}

/// Why a source starts feeding the viewers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpliceKind {
    /// The session's first source, at the tune.
    First,
    /// A replacement for a source that failed.
    Failover,
    /// The return to a better stream while the current one is healthy.
    Upgrade,
}

/// What the session tells the relay to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open an upstream for `candidate`; the relay takes the account's connection at once.
    Connect {
        attempt: AttemptId,
        candidate: usize,
    },
    /// Feed the viewers from this attempt from now on, from its random-access point; `forced`:
    /// none came within the keyframe deadline, so from its next PAT.
    Splice {
        attempt: AttemptId,
        kind: SpliceKind,
        forced: bool,
    },
    /// Close this attempt and free its connection.
    Close(AttemptId),
    /// Media is ready: send the viewers' response headers.
    StartViewers,
    /// End the viewers' responses (close-delimited: closing is the end).
    EndViewers,
    /// Answer the waiting viewers with a 503 instead of media.
    Refuse(Refusal),
    /// Record this in the event log.
    Log(SessionEvent),
    /// The session is over; every attempt has been closed.
    Finished,
}

/// Something worth an event (SPEC §7 Events). Streams are named by candidate index; the relay
/// turns them into `ACCOUNT:STREAM_ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    Started {
        stream: usize,
    },
    Failover {
        from: usize,
        to: usize,
        reason: FailReason,
        gap: Duration,
    },
    /// The failover budget passed with no stream delivering (the session keeps trying).
    BudgetMissed {
        from: usize,
        reason: FailReason,
    },
    Upgraded {
        from: usize,
        to: usize,
    },
    UpgradeFailed {
        stream: usize,
        reason: FailReason,
    },
    /// Every stream failed through the grace period.
    Exhausted {
        last: Option<FailReason>,
    },
    TunersBusy,
    Ended,
}

/// Whether an account has a free connection right now.
pub trait Capacity {
    fn can_open(&self, account_id: i64) -> bool;
}

/// First back-off after a failure; it doubles per consecutive failure up to the maximum. Longer
/// than the connect deadline, so a dead primary is not retried before every backup was tried.
const BACKOFF_BASE: Duration = Duration::from_secs(2);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// While waiting for a connection to free up, look again this often.
const CAPACITY_RECHECK: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for the response headers.
    Connecting,
    /// Headers in, waiting for the first TS bytes.
    Receiving,
    /// Delivering, waiting for a random-access point to be spliced in at.
    Keyframe,
    /// Delivering.
    Streaming,
}

#[derive(Debug, Clone, Copy)]
struct Attempt {
    id: AttemptId,
    candidate: usize,
    stage: Stage,
    /// Next byte (or headers) must arrive before this.
    deadline: Instant,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// No media sent yet; give up (807) at `give_up`.
    Tuning {
        give_up: Instant,
    },
    Live,
    /// The active source failed at `since`; a replacement is being sought.
    Failing {
        since: Instant,
        from: usize,
        reason: FailReason,
        budget_end: Instant,
        budget_logged: bool,
        give_up: Instant,
    },
    Ended,
}

#[derive(Debug, Clone, Copy, Default)]
struct Backoff {
    failures: u32,
    until: Option<Instant>,
}

/// One channel's session.
#[derive(Debug)]
pub struct Session {
    candidates: Vec<Candidate>,
    deadlines: Deadlines,
    phase: Phase,
    active: Option<Attempt>,
    pending: Option<Attempt>,
    probe: Option<Attempt>,
    backoff: Vec<Backoff>,
    /// When no attempt is pending while tuning or failing: look for a startable stream again.
    retry_at: Option<Instant>,
    next_upgrade: Option<Instant>,
    viewers: usize,
    peak_viewers: usize,
    refused: Option<Refusal>,
    linger_until: Option<Instant>,
    last_failure: Option<FailReason>,
    /// Every attempt failure since the relay last asked, timeouts included (for metrics).
    failures: Vec<FailReason>,
    next_attempt: AttemptId,
}

impl Session {
    /// A session for its first viewer, tuning at once.
    pub fn start(
        candidates: Vec<Candidate>,
        deadlines: Deadlines,
        now: Instant,
        capacity: &dyn Capacity,
    ) -> (Session, Vec<Action>) {
        let mut session = Session {
            backoff: vec![Backoff::default(); candidates.len()],
            phase: Phase::Tuning {
                give_up: now + deadlines.grace,
            },
            candidates,
            deadlines,
            active: None,
            pending: None,
            probe: None,
            retry_at: None,
            next_upgrade: None,
            viewers: 1,
            peak_viewers: 1,
            refused: None,
            linger_until: None,
            last_failure: None,
            failures: Vec::new(),
            next_attempt: 1,
        };
        let mut actions = Vec::new();
        session.seek_replacement(now, capacity, &mut actions);
        (session, actions)
    }

    /// The candidate feeding the viewers, if any.
    pub fn active_candidate(&self) -> Option<usize> {
        self.active.map(|a| a.candidate)
    }

    /// The attempt whose media feeds the viewers, if any.
    pub fn feeding(&self) -> Option<AttemptId> {
        self.active.map(|a| a.id)
    }

    pub fn viewers(&self) -> usize {
        self.viewers
    }

    pub fn peak_viewers(&self) -> usize {
        self.peak_viewers
    }

    pub fn viewing(&self) -> Viewing {
        match self.phase {
            Phase::Tuning { .. } => Viewing::Waiting,
            Phase::Live | Phase::Failing { .. } => Viewing::Live,
            Phase::Ended => self.refused.map_or(Viewing::Ended, Viewing::Refused),
        }
    }

    /// `tuning`, `live`, `failing` or `ended`, for `/status`.
    pub fn state_name(&self) -> &'static str {
        match self.phase {
            Phase::Tuning { .. } => "tuning",
            Phase::Live => "live",
            Phase::Failing { .. } => "failing",
            Phase::Ended => "ended",
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Live | Phase::Failing { .. })
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Ended)
    }

    /// The attempt failures since the last call, including those the session detected itself
    /// (timeouts, stalls).
    pub fn take_failures(&mut self) -> Vec<FailReason> {
        std::mem::take(&mut self.failures)
    }

    /// When the relay must deliver the next [`Input::Tick`], if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::Tuning { give_up } => Some(give_up),
            Phase::Failing {
                budget_end,
                budget_logged,
                give_up,
                ..
            } => Some(if budget_logged { give_up } else { budget_end }),
            Phase::Live => None,
            Phase::Ended => return None,
        };
        [
            phase,
            self.active.map(|a| a.deadline),
            self.pending.map(|a| a.deadline),
            self.probe.map(|a| a.deadline),
            self.retry_at,
            self.next_upgrade.filter(|_| self.probe.is_none()),
            self.linger_until,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Feeds one input at `now`; returns what to do.
    pub fn handle(&mut self, input: Input, now: Instant, capacity: &dyn Capacity) -> Vec<Action> {
        let mut actions = Vec::new();
        if matches!(self.phase, Phase::Ended) {
            return actions;
        }
        match input {
            Input::Headers(id) => self.on_headers(id, now),
            Input::Media {
                attempt,
                random_access,
            } => self.on_media(attempt, random_access, now, &mut actions),
            Input::Failed(id, reason) => self.on_failed(id, reason, now, capacity, &mut actions),
            Input::Tick => self.on_tick(now, capacity, &mut actions),
            Input::CapacityFreed => {
                if matches!(self.phase, Phase::Tuning { .. } | Phase::Failing { .. }) {
                    self.seek_replacement(now, capacity, &mut actions);
                }
            }
            Input::ViewerJoined => {
                self.viewers += 1;
                self.peak_viewers = self.peak_viewers.max(self.viewers);
                self.linger_until = None;
            }
            Input::ViewerLeft => {
                self.viewers = self.viewers.saturating_sub(1);
                if self.viewers == 0 {
                    if self.is_live() {
                        self.linger_until = Some(now + self.deadlines.linger);
                    } else {
                        // Nobody waits for a tune that never delivered: stop now.
                        self.finish(&mut actions);
                    }
                }
            }
        }
        actions
    }

    fn on_headers(&mut self, id: AttemptId, now: Instant) {
        for attempt in [&mut self.pending, &mut self.probe].into_iter().flatten() {
            if attempt.id == id && attempt.stage == Stage::Connecting {
                attempt.stage = Stage::Receiving;
                // The first TS bytes get as long as the connection did.
                attempt.deadline = now + self.deadlines.connect;
            }
        }
    }

    fn on_media(
        &mut self,
        id: AttemptId,
        random_access: bool,
        now: Instant,
        actions: &mut Vec<Action>,
    ) {
        if let Some(active) = self.active.as_mut().filter(|a| a.id == id) {
            active.deadline = now + self.deadlines.stall;
            return;
        }
        if random_access {
            self.take_over(id, false, now, actions);
            return;
        }
        // Media with no place to splice in yet: wait for one, but not past the keyframe deadline.
        let keyframe = now + self.deadlines.keyframe;
        for attempt in [&mut self.pending, &mut self.probe].into_iter().flatten() {
            if attempt.id == id && attempt.stage != Stage::Keyframe {
                attempt.stage = Stage::Keyframe;
                attempt.deadline = keyframe;
            }
        }
    }

    /// A pending attempt or the upgrade probe feeds the viewers from now on.
    fn take_over(&mut self, id: AttemptId, forced: bool, now: Instant, actions: &mut Vec<Action>) {
        if let Some(pending) = self.pending.filter(|a| a.id == id) {
            self.pending = None;
            self.become_active(pending, forced, now, actions);
            return;
        }
        if let Some(probe) = self.probe.filter(|a| a.id == id) {
            self.probe = None;
            let from = self.active.map(|a| a.candidate);
            if let Some(old) = self.active.take() {
                actions.push(Action::Close(old.id));
            }
            self.promote(probe, SpliceKind::Upgrade, forced, now, actions);
            if let Some(from) = from {
                actions.push(Action::Log(SessionEvent::Upgraded {
                    from,
                    to: probe.candidate,
                }));
            }
        }
    }

    /// A pending attempt delivered: it feeds the viewers from now on.
    fn become_active(
        &mut self,
        attempt: Attempt,
        forced: bool,
        now: Instant,
        actions: &mut Vec<Action>,
    ) {
        match self.phase {
            Phase::Tuning { .. } => {
                self.promote(attempt, SpliceKind::First, forced, now, actions);
                actions.push(Action::StartViewers);
                actions.push(Action::Log(SessionEvent::Started {
                    stream: attempt.candidate,
                }));
            }
            Phase::Failing {
                since,
                from,
                reason,
                ..
            } => {
                self.promote(attempt, SpliceKind::Failover, forced, now, actions);
                actions.push(Action::Log(SessionEvent::Failover {
                    from,
                    to: attempt.candidate,
                    reason,
                    gap: now.saturating_duration_since(since),
                }));
            }
            Phase::Live | Phase::Ended => actions.push(Action::Close(attempt.id)),
        }
    }

    fn promote(
        &mut self,
        attempt: Attempt,
        kind: SpliceKind,
        forced: bool,
        now: Instant,
        actions: &mut Vec<Action>,
    ) {
        actions.push(Action::Splice {
            attempt: attempt.id,
            kind,
            forced,
        });
        self.backoff[attempt.candidate] = Backoff::default();
        self.active = Some(Attempt {
            stage: Stage::Streaming,
            deadline: now + self.deadlines.stall,
            ..attempt
        });
        self.phase = Phase::Live;
        self.retry_at = None;
        self.next_upgrade = (attempt.candidate > 0).then(|| now + self.deadlines.upgrade_interval);
    }

    fn on_failed(
        &mut self,
        id: AttemptId,
        reason: FailReason,
        now: Instant,
        capacity: &dyn Capacity,
        actions: &mut Vec<Action>,
    ) {
        let known = [self.active, self.pending, self.probe]
            .iter()
            .flatten()
            .any(|a| a.id == id);
        if known {
            self.failures.push(reason);
        }
        if let Some(probe) = self.probe.filter(|a| a.id == id) {
            self.probe = None;
            actions.push(Action::Close(id));
            self.back_off(probe.candidate, now);
            self.next_upgrade = Some(now + self.deadlines.upgrade_interval);
            actions.push(Action::Log(SessionEvent::UpgradeFailed {
                stream: probe.candidate,
                reason,
            }));
            return;
        }
        self.last_failure = Some(reason);
        if let Some(active) = self.active.filter(|a| a.id == id) {
            self.active = None;
            actions.push(Action::Close(id));
            self.back_off(active.candidate, now);
            self.phase = Phase::Failing {
                since: now,
                from: active.candidate,
                reason,
                budget_end: now + self.deadlines.failover_budget,
                budget_logged: false,
                give_up: now + self.deadlines.failover_budget + self.deadlines.grace,
            };
            self.next_upgrade = None;
            // An upgrade probe under way is the best replacement there is.
            match self.probe.take() {
                Some(probe) => self.pending = Some(probe),
                None => self.seek_replacement(now, capacity, actions),
            }
            return;
        }
        if let Some(pending) = self.pending.filter(|a| a.id == id) {
            self.pending = None;
            actions.push(Action::Close(id));
            self.back_off(pending.candidate, now);
            self.seek_replacement(now, capacity, actions);
        }
    }

    fn on_tick(&mut self, now: Instant, capacity: &dyn Capacity, actions: &mut Vec<Action>) {
        if self.linger_until.is_some_and(|at| now >= at) {
            self.finish(actions);
            return;
        }
        // Attempts past their deadline fail first, so the phase checks below see the outcome.
        let overdue = |a: &Option<Attempt>| a.filter(|a| now >= a.deadline);
        if let Some(active) = overdue(&self.active) {
            self.on_failed(active.id, FailReason::Stall, now, capacity, actions);
        }
        for attempt in [overdue(&self.probe), overdue(&self.pending)]
            .into_iter()
            .flatten()
        {
            match timeout_reason(attempt.stage) {
                // No random-access point in time: splice in anyway.
                None => self.take_over(attempt.id, true, now, actions),
                Some(reason) => self.on_failed(attempt.id, reason, now, capacity, actions),
            }
        }
        if self.retry_at.is_some_and(|at| now >= at) && self.pending.is_none() {
            self.retry_at = None;
            self.seek_replacement(now, capacity, actions);
        }
        match self.phase {
            Phase::Tuning { give_up } if now >= give_up => {
                self.close_all(actions);
                self.refused = Some(Refusal::NoVideoData);
                actions.push(Action::Refuse(Refusal::NoVideoData));
                actions.push(Action::Log(SessionEvent::Exhausted {
                    last: self.last_failure,
                }));
                self.finish(actions);
                return;
            }
            Phase::Failing {
                from,
                reason,
                budget_end,
                budget_logged: false,
                ..
            } if now >= budget_end => {
                actions.push(Action::Log(SessionEvent::BudgetMissed { from, reason }));
                if let Phase::Failing { budget_logged, .. } = &mut self.phase {
                    *budget_logged = true;
                }
            }
            _ => {}
        }
        if let Phase::Failing { give_up, .. } = self.phase
            && now >= give_up
        {
            self.close_all(actions);
            actions.push(Action::EndViewers);
            actions.push(Action::Log(SessionEvent::Exhausted {
                last: self.last_failure,
            }));
            self.finish(actions);
            return;
        }
        if self.next_upgrade.is_some_and(|at| now >= at) && self.probe.is_none() {
            self.try_upgrade(now, capacity, actions);
        }
    }

    /// While tuning or failing: connect the best stream that can start now, or wait for one.
    fn seek_replacement(
        &mut self,
        now: Instant,
        capacity: &dyn Capacity,
        actions: &mut Vec<Action>,
    ) {
        if self.pending.is_some() {
            return;
        }
        let mut capacity_blocked = false;
        let mut soonest_backoff: Option<Instant> = None;
        for (index, candidate) in self.candidates.iter().enumerate() {
            if let Some(until) = self.backoff[index].until.filter(|&u| u > now) {
                soonest_backoff = Some(soonest_backoff.map_or(until, |s| s.min(until)));
                continue;
            }
            if !capacity.can_open(candidate.account_id) {
                capacity_blocked = true;
                continue;
            }
            self.pending = Some(self.new_attempt(index, now));
            self.retry_at = None;
            actions.push(Action::Connect {
                attempt: self.next_attempt - 1,
                candidate: index,
            });
            return;
        }
        let first_tune = matches!(self.phase, Phase::Tuning { .. }) && self.last_failure.is_none();
        if first_tune && capacity_blocked && soonest_backoff.is_none() {
            // Nothing failed; the accounts are simply full.
            self.refused = Some(Refusal::AllTunersInUse);
            actions.push(Action::Refuse(Refusal::AllTunersInUse));
            actions.push(Action::Log(SessionEvent::TunersBusy));
            self.finish(actions);
            return;
        }
        let recheck = capacity_blocked.then(|| now + CAPACITY_RECHECK);
        self.retry_at = [recheck, soonest_backoff].into_iter().flatten().min();
    }

    /// While on a backup: try the best better stream that can start without taking a
    /// connection the running stream needs.
    fn try_upgrade(&mut self, now: Instant, capacity: &dyn Capacity, actions: &mut Vec<Action>) {
        self.next_upgrade = Some(now + self.deadlines.upgrade_interval);
        let Some(active) = self.active else {
            return;
        };
        let better = (0..active.candidate).find(|&index| {
            self.backoff[index].until.is_none_or(|until| until <= now)
                && capacity.can_open(self.candidates[index].account_id)
        });
        if let Some(index) = better {
            self.probe = Some(self.new_attempt(index, now));
            actions.push(Action::Connect {
                attempt: self.next_attempt - 1,
                candidate: index,
            });
        }
    }

    fn new_attempt(&mut self, candidate: usize, now: Instant) -> Attempt {
        let id = self.next_attempt;
        self.next_attempt += 1;
        Attempt {
            id,
            candidate,
            stage: Stage::Connecting,
            deadline: now + self.deadlines.connect,
        }
    }

    fn back_off(&mut self, candidate: usize, now: Instant) {
        let entry = &mut self.backoff[candidate];
        entry.failures = entry.failures.saturating_add(1);
        let doublings = entry.failures.saturating_sub(1).min(16);
        let wait = BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_MAX);
        entry.until = Some(now + wait);
    }

    fn close_all(&mut self, actions: &mut Vec<Action>) {
        for attempt in [self.active.take(), self.pending.take(), self.probe.take()]
            .into_iter()
            .flatten()
        {
            actions.push(Action::Close(attempt.id));
        }
    }

    fn finish(&mut self, actions: &mut Vec<Action>) {
        self.close_all(actions);
        self.phase = Phase::Ended;
        self.retry_at = None;
        self.next_upgrade = None;
        self.linger_until = None;
        actions.push(Action::Log(SessionEvent::Ended));
        actions.push(Action::Finished);
    }
}

/// Why an attempt past its deadline failed; `None`: it did not, it only waited for a keyframe.
fn timeout_reason(stage: Stage) -> Option<FailReason> {
    match stage {
        Stage::Connecting | Stage::Receiving => Some(FailReason::ConnectionTimeout),
        Stage::Keyframe => None,
        Stage::Streaming => Some(FailReason::Stall),
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
