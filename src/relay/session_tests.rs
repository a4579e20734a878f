//! The session state machine driven by hand: every path of SPEC §7 and the failover issue, with
//! time advanced explicitly and no sleeping.

use super::*;
use std::cell::RefCell;
use std::collections::HashSet;

/// Accounts listed here have no free connection.
#[derive(Default)]
struct Full(RefCell<HashSet<i64>>);

impl Capacity for Full {
    fn can_open(&self, account_id: i64) -> bool {
        !self.0.borrow().contains(&account_id)
    }
}

fn deadlines() -> Deadlines {
    Deadlines::default()
}

/// Media that brings a random-access point.
fn media(attempt: AttemptId) -> Input {
    Input::Media {
        attempt,
        random_access: true,
    }
}

/// Media with no random-access point yet.
fn media_mid_gop(attempt: AttemptId) -> Input {
    Input::Media {
        attempt,
        random_access: false,
    }
}

fn splice(attempt: AttemptId, kind: SpliceKind) -> Action {
    Action::Splice {
        attempt,
        kind,
        forced: false,
    }
}

/// Three streams: 0 and 1 on account 1, 2 on account 2.
fn candidates() -> Vec<Candidate> {
    vec![
        Candidate { account_id: 1 },
        Candidate { account_id: 1 },
        Candidate { account_id: 2 },
    ]
}

/// A session under test with its own clock.
struct Rig {
    session: Session,
    now: Instant,
    capacity: Full,
    log: Vec<Action>,
}

impl Rig {
    fn start() -> Rig {
        Rig::with(candidates(), Full::default())
    }

    fn with(candidates: Vec<Candidate>, capacity: Full) -> Rig {
        let now = Instant::now();
        let (session, actions) = Session::start(candidates, deadlines(), now, &capacity);
        Rig {
            session,
            now,
            capacity,
            log: actions,
        }
    }

    fn feed(&mut self, input: Input) -> Vec<Action> {
        let actions = self.session.handle(input, self.now, &self.capacity);
        self.log.extend(actions.clone());
        actions
    }

    /// Moves the clock forward and ticks at every deadline on the way.
    fn advance(&mut self, by: Duration) -> Vec<Action> {
        let end = self.now + by;
        let mut actions = Vec::new();
        while let Some(at) = self.session.next_deadline().filter(|&at| at <= end) {
            self.now = at.max(self.now);
            actions.extend(self.feed(Input::Tick));
        }
        self.now = end;
        actions.extend(self.feed(Input::Tick));
        actions
    }

    /// The attempt of the latest Connect for `candidate` in `actions`.
    fn connected(actions: &[Action], candidate: usize) -> AttemptId {
        actions
            .iter()
            .rev()
            .find_map(|a| match a {
                Action::Connect {
                    attempt,
                    candidate: c,
                } if *c == candidate => Some(*attempt),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no Connect for candidate {candidate} in {actions:?}"))
    }

    /// Headers and media for an attempt.
    fn deliver(&mut self, attempt: AttemptId) -> Vec<Action> {
        let mut actions = self.feed(Input::Headers(attempt));
        actions.extend(self.feed(media(attempt)));
        actions
    }
}

fn events(actions: &[Action]) -> Vec<SessionEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Log(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn healthy_tune_starts_on_the_best_stream() {
    let mut rig = Rig::start();
    let attempt = Rig::connected(&rig.log, 0);
    let actions = rig.deliver(attempt);
    assert_eq!(
        actions,
        vec![
            splice(attempt, SpliceKind::First),
            Action::StartViewers,
            Action::Log(SessionEvent::Started { stream: 0 })
        ]
    );
    assert_eq!(rig.session.active_candidate(), Some(0));
    // On the best stream there is nothing to upgrade to and nothing to wait for.
    rig.feed(media(attempt));
    assert!(rig.advance(Duration::from_secs(4)).is_empty());
}

#[test]
fn primary_dead_at_tune_time() {
    let mut rig = Rig::start();
    let primary = Rig::connected(&rig.log, 0);
    let actions = rig.feed(Input::Failed(primary, FailReason::ConnectionError));
    assert_eq!(actions[0], Action::Close(primary));
    let backup = Rig::connected(&actions, 1);
    rig.now += Duration::from_millis(30);
    let actions = rig.deliver(backup);
    assert!(actions.contains(&Action::StartViewers));
    assert_eq!(events(&actions), vec![SessionEvent::Started { stream: 1 }]);
}

#[test]
fn primary_silent_at_tune_time_times_out_within_a_second() {
    let mut rig = Rig::start();
    let requested = rig.now;
    let primary = Rig::connected(&rig.log, 0);
    let actions = rig.advance(Duration::from_millis(999));
    assert!(actions.is_empty(), "{actions:?}");
    let actions = rig.advance(Duration::from_millis(1));
    assert_eq!(actions[0], Action::Close(primary));
    let backup = Rig::connected(&actions, 1);
    // Headers but no bytes: the first bytes get one more connect deadline.
    rig.feed(Input::Headers(backup));
    let actions = rig.advance(Duration::from_secs(1));
    assert_eq!(actions[0], Action::Close(backup));
    let third = Rig::connected(&actions, 2);
    assert!(rig.deliver(third).contains(&Action::StartViewers));
    // First media within 3 s of the request even with two dead streams.
    assert!(rig.now.duration_since(requested) <= Duration::from_secs(3));
}

#[test]
fn mid_stream_drop_fails_over_and_logs_it() {
    let mut rig = Rig::start();
    let primary = Rig::connected(&rig.log, 0);
    rig.deliver(primary);
    rig.now += Duration::from_secs(30);
    rig.feed(media(primary));
    let actions = rig.feed(Input::Failed(primary, FailReason::StreamError));
    assert_eq!(actions[0], Action::Close(primary));
    let backup = Rig::connected(&actions, 1);
    rig.now += Duration::from_millis(120);
    let actions = rig.deliver(backup);
    assert_eq!(actions[0], splice(backup, SpliceKind::Failover));
    assert!(
        !actions.contains(&Action::StartViewers),
        "viewers' responses continue untouched"
    );
    assert_eq!(
        events(&actions),
        vec![SessionEvent::Failover {
            from: 0,
            to: 1,
            reason: FailReason::StreamError,
            gap: Duration::from_millis(120)
        }]
    );
}

#[test]
fn stall_fails_over_after_the_stall_timeout() {
    let mut rig = Rig::start();
    let primary = Rig::connected(&rig.log, 0);
    rig.deliver(primary);
    rig.advance(Duration::from_millis(4_900));
    rig.feed(media(primary));
    assert!(rig.advance(Duration::from_millis(4_999)).is_empty());
    let actions = rig.advance(Duration::from_millis(1));
    assert_eq!(actions[0], Action::Close(primary));
    let backup = Rig::connected(&actions, 1);
    let actions = rig.deliver(backup);
    assert!(matches!(
        events(&actions)[..],
        [SessionEvent::Failover {
            from: 0,
            to: 1,
            reason: FailReason::Stall,
            ..
        }]
    ));
}

#[test]
fn http_error_after_a_redirect_moves_on() {
    let mut rig = Rig::start();
    let primary = Rig::connected(&rig.log, 0);
    let actions = rig.feed(Input::Failed(primary, FailReason::HttpError(404)));
    let backup = Rig::connected(&actions, 1);
    rig.deliver(backup);
    assert_eq!(rig.session.active_candidate(), Some(1));
    assert_eq!(rig.session.last_failure, Some(FailReason::HttpError(404)));
}

#[test]
fn every_stream_failing_at_tune_time_is_refused_with_807_after_the_grace() {
    let mut rig = Rig::start();
    let mut seen = Vec::new();
    // Fail every attempt as soon as it is made, for the whole grace period.
    let mut actions = rig.log.clone();
    loop {
        for action in &actions {
            if let Action::Connect { attempt, candidate } = action {
                seen.push(*candidate);
                let failed = rig.feed(Input::Failed(*attempt, FailReason::ConnectionError));
                actions = failed;
                break;
            }
        }
        if rig.session.is_finished() {
            break;
        }
        if !actions.iter().any(|a| matches!(a, Action::Connect { .. })) {
            actions = rig.advance(Duration::from_millis(100));
        }
    }
    assert!(rig.log.contains(&Action::Refuse(Refusal::NoVideoData)));
    assert!(rig.log.contains(&Action::Log(SessionEvent::Exhausted {
        last: Some(FailReason::ConnectionError)
    })));
    assert!(!rig.log.contains(&Action::StartViewers));
    assert!(rig.log.contains(&Action::Finished));
    // Back-off kept the retries few: no tight reconnect loop in 10 s.
    assert!(seen.len() < 20, "{} attempts: {seen:?}", seen.len());
    assert_eq!(&seen[..3], &[0, 1, 2], "priority order first");
}

#[test]
fn budget_exceeded_then_recovery_within_the_grace() {
    let mut rig = Rig::start();
    let primary = Rig::connected(&rig.log, 0);
    rig.deliver(primary);
    let failed_at = rig.now;
    let mut actions = rig.feed(Input::Failed(primary, FailReason::ConnectionError));
    // The backups hang until their connect deadline; the primary is in back-off.
    let mut budget_missed = false;
    let mut recovered = None;
    for _ in 0..40 {
        if let Some(Action::Connect { attempt, .. }) =
            actions.iter().find(|a| matches!(a, Action::Connect { .. }))
        {
            let attempt = *attempt;
            if rig.now.duration_since(failed_at) >= Duration::from_secs(3) {
                recovered = Some(attempt);
                actions = rig.deliver(attempt);
                break;
            }
        }
        actions = rig.advance(Duration::from_millis(250));
        budget_missed |= events(&actions)
            .iter()
            .any(|e| matches!(e, SessionEvent::BudgetMissed { from: 0, .. }));
    }
    assert!(budget_missed, "the missed budget is logged");
    assert!(recovered.is_some(), "a stream was retried within the grace");
    assert!(
        matches!(
            events(&actions)[..],
            [SessionEvent::Failover { from: 0, .. }]
        ),
        "{actions:?}"
    );
    assert!(!rig.log.contains(&Action::EndViewers));
    assert!(rig.session.is_live());
}

#[test]
fn mid_stream_exhaustion_ends_the_viewers_after_budget_and_grace() {
    let mut rig = Rig::with(vec![candidates().remove(0)], Full::default());
    let primary = Rig::connected(&rig.log, 0);
    rig.deliver(primary);
    let failed_at = rig.now;
    let mut actions = rig.feed(Input::Failed(primary, FailReason::Stall));
    while !rig.session.is_finished() {
        if let Some(Action::Connect { attempt, .. }) =
            actions.iter().find(|a| matches!(a, Action::Connect { .. }))
        {
            let attempt = *attempt;
            rig.feed(Input::Failed(attempt, FailReason::HttpError(503)));
        }
        actions = rig.advance(Duration::from_millis(200));
        assert!(rig.now.duration_since(failed_at) < Duration::from_secs(13));
    }
    let ended = rig.now.duration_since(failed_at);
    assert!(
        ended >= Duration::from_secs(12),
        "budget 2 s + grace 10 s, ended after {ended:?}"
    );
    assert!(rig.log.contains(&Action::EndViewers));
    assert!(events(&rig.log).contains(&SessionEvent::Exhausted {
        last: Some(FailReason::HttpError(503))
    }));
}

#[test]
fn upgrade_returns_to_the_better_stream() {
    let capacity = Full::default();
    let mut rig = Rig::with(candidates(), capacity);
    let primary = Rig::connected(&rig.log, 0);
    let actions = rig.feed(Input::Failed(primary, FailReason::ConnectionError));
    let backup = Rig::connected(&actions, 1);
    rig.deliver(backup);
    // Keep the backup healthy; nothing happens before the upgrade interval.
    for _ in 0..59 {
        rig.feed(media(backup));
        assert!(rig.advance(Duration::from_secs(1)).is_empty());
    }
    rig.feed(media(backup));
    let actions = rig.advance(Duration::from_secs(1));
    let probe = Rig::connected(&actions, 0);
    let actions = rig.deliver(probe);
    assert_eq!(
        actions,
        vec![
            Action::Close(backup),
            splice(probe, SpliceKind::Upgrade),
            Action::Log(SessionEvent::Upgraded { from: 1, to: 0 })
        ]
    );
    assert_eq!(rig.session.active_candidate(), Some(0));
    rig.feed(media(probe));
    assert!(
        rig.advance(Duration::from_secs(4)).is_empty(),
        "no more upgrades from the best"
    );
}

#[test]
fn failed_upgrade_stays_then_succeeds_next_interval() {
    let mut rig = Rig::start();
    let primary = Rig::connected(&rig.log, 0);
    let actions = rig.feed(Input::Failed(primary, FailReason::ConnectionError));
    let backup = Rig::connected(&actions, 1);
    rig.deliver(backup);
    let keep_alive = |rig: &mut Rig, secs: u64| -> Vec<Action> {
        let mut out = Vec::new();
        for _ in 0..secs {
            rig.feed(media(backup));
            out.extend(rig.advance(Duration::from_secs(1)));
        }
        out
    };
    let actions = keep_alive(&mut rig, 60);
    let probe = Rig::connected(&actions, 0);
    let actions = rig.feed(Input::Failed(probe, FailReason::HttpError(502)));
    assert_eq!(
        actions,
        vec![
            Action::Close(probe),
            Action::Log(SessionEvent::UpgradeFailed {
                stream: 0,
                reason: FailReason::HttpError(502)
            })
        ]
    );
    assert_eq!(
        rig.session.active_candidate(),
        Some(1),
        "stays on the backup"
    );
    let actions = keep_alive(&mut rig, 59);
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Connect { .. })),
        "waits a whole interval"
    );
    let actions = keep_alive(&mut rig, 1);
    let second = Rig::connected(&actions, 0);
    rig.deliver(second);
    assert_eq!(rig.session.active_candidate(), Some(0));
}

#[test]
fn upgrade_never_takes_the_last_connection_of_a_full_account() {
    // Stream 0 and 1 share account 1 with one connection, held by the running backup.
    let mut rig = Rig::start();
    let primary = Rig::connected(&rig.log, 0);
    let actions = rig.feed(Input::Failed(primary, FailReason::ConnectionError));
    let backup = Rig::connected(&actions, 1);
    rig.deliver(backup);
    rig.capacity.0.borrow_mut().insert(1);
    for _ in 0..130 {
        rig.feed(media(backup));
        let actions = rig.advance(Duration::from_secs(1));
        assert!(
            !actions.iter().any(|a| matches!(a, Action::Connect { .. })),
            "{actions:?}"
        );
    }
    // A connection frees up: the next interval tries the primary.
    rig.capacity.0.borrow_mut().clear();
    let mut probe = None;
    for _ in 0..60 {
        rig.feed(media(backup));
        let actions = rig.advance(Duration::from_secs(1));
        if actions
            .iter()
            .any(|a| matches!(a, Action::Connect { candidate: 0, .. }))
        {
            probe = Some(Rig::connected(&actions, 0));
        }
    }
    assert!(probe.is_some());
}

#[test]
fn an_account_at_its_limit_is_skipped_and_a_full_lineup_is_refused_with_805() {
    let capacity = Full::default();
    capacity.0.borrow_mut().insert(1);
    let rig = Rig::with(candidates(), capacity);
    assert_eq!(
        Rig::connected(&rig.log, 2),
        1,
        "skips account 1, takes account 2"
    );

    let capacity = Full::default();
    capacity.0.borrow_mut().extend([1, 2]);
    let rig = Rig::with(candidates(), capacity);
    assert_eq!(
        rig.log,
        vec![
            Action::Refuse(Refusal::AllTunersInUse),
            Action::Log(SessionEvent::TunersBusy),
            Action::Log(SessionEvent::Ended),
            Action::Finished
        ]
    );
}

#[test]
fn failover_waits_for_a_connection_the_failing_stream_frees() {
    // One account, one connection: the dying stream's own connection is the one the backup needs.
    let streams = vec![Candidate { account_id: 1 }, Candidate { account_id: 1 }];
    let mut rig = Rig::with(streams, Full::default());
    let primary = Rig::connected(&rig.log, 0);
    rig.deliver(primary);
    // The relay frees the connection when it carries out Close(primary), which comes first.
    let actions = rig.feed(Input::Failed(primary, FailReason::StreamError));
    assert_eq!(actions[0], Action::Close(primary));
    assert!(matches!(actions[1], Action::Connect { candidate: 1, .. }));
}

#[test]
fn a_freed_connection_starts_the_waiting_replacement_at_once() {
    let streams = vec![Candidate { account_id: 1 }, Candidate { account_id: 1 }];
    let mut rig = Rig::with(streams, Full::default());
    let primary = Rig::connected(&rig.log, 0);
    rig.deliver(primary);
    // The dying stream's connection is still held while its socket closes.
    rig.capacity.0.borrow_mut().insert(1);
    let actions = rig.feed(Input::Failed(primary, FailReason::StreamError));
    assert_eq!(actions, vec![Action::Close(primary)]);
    rig.capacity.0.borrow_mut().clear();
    let actions = rig.feed(Input::CapacityFreed);
    assert!(
        matches!(actions[..], [Action::Connect { candidate: 1, .. }]),
        "{actions:?}"
    );
    // Nothing to do when live.
    let backup = Rig::connected(&actions, 1);
    rig.deliver(backup);
    assert!(rig.feed(Input::CapacityFreed).is_empty());
}

#[test]
fn back_off_grows_and_a_dead_stream_is_not_hammered() {
    let streams = vec![Candidate { account_id: 1 }];
    let mut rig = Rig::with(streams, Full::default());
    let mut connects = vec![rig.now];
    let mut actions = rig.log.clone();
    while !rig.session.is_finished() {
        if let Some(Action::Connect { attempt, .. }) =
            actions.iter().find(|a| matches!(a, Action::Connect { .. }))
        {
            let attempt = *attempt;
            rig.feed(Input::Failed(attempt, FailReason::ConnectionError));
        }
        actions = rig.advance(Duration::from_millis(50));
        if actions.iter().any(|a| matches!(a, Action::Connect { .. })) {
            connects.push(rig.now);
        }
    }
    let gaps: Vec<u128> = connects
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    // 2 s, then 4 s: doubling; the next (8 s) would pass the 10 s grace.
    assert_eq!(gaps.len(), 2, "{gaps:?}");
    for (gap, want) in gaps.iter().zip([2000u128, 4000]) {
        assert!((want..want + 100).contains(gap), "{gaps:?}");
    }
}

#[test]
fn viewers_leaving_lingers_then_frees_the_upstream() {
    let mut rig = Rig::start();
    let primary = Rig::connected(&rig.log, 0);
    rig.deliver(primary);
    rig.feed(Input::ViewerJoined);
    assert_eq!(rig.session.viewers(), 2);
    rig.feed(Input::ViewerLeft);
    rig.feed(Input::ViewerLeft);
    rig.feed(media(primary));
    // A viewer that comes back within the linger keeps the session.
    rig.advance(Duration::from_secs(3));
    rig.feed(media(primary));
    rig.feed(Input::ViewerJoined);
    assert!(rig.advance(Duration::from_secs(3)).is_empty());
    rig.feed(media(primary));
    rig.feed(Input::ViewerLeft);
    rig.feed(media(primary));
    assert!(rig.advance(Duration::from_millis(4_999)).is_empty());
    let actions = rig.advance(Duration::from_millis(1));
    assert_eq!(
        actions,
        vec![
            Action::Close(primary),
            Action::Log(SessionEvent::Ended),
            Action::Finished
        ]
    );
    assert!(rig.session.next_deadline().is_none());
}

#[test]
fn a_tune_abandoned_before_media_stops_at_once() {
    let mut rig = Rig::start();
    let primary = Rig::connected(&rig.log, 0);
    let actions = rig.feed(Input::ViewerLeft);
    assert_eq!(actions[0], Action::Close(primary));
    assert!(rig.session.is_finished());
}

#[test]
fn a_probe_under_way_replaces_a_failing_active_stream() {
    let mut rig = Rig::start();
    let primary = Rig::connected(&rig.log, 0);
    let actions = rig.feed(Input::Failed(primary, FailReason::ConnectionError));
    let backup = Rig::connected(&actions, 1);
    rig.deliver(backup);
    let mut probe = None;
    for _ in 0..60 {
        rig.feed(media(backup));
        let actions = rig.advance(Duration::from_secs(1));
        if actions
            .iter()
            .any(|a| matches!(a, Action::Connect { candidate: 0, .. }))
        {
            probe = Some(Rig::connected(&actions, 0));
        }
    }
    let probe = probe.expect("probe started");
    let actions = rig.feed(Input::Failed(backup, FailReason::StreamError));
    assert_eq!(
        actions,
        vec![Action::Close(backup)],
        "no new connect: the probe is the replacement"
    );
    let actions = rig.deliver(probe);
    assert!(matches!(
        events(&actions)[..],
        [SessionEvent::Failover { from: 1, to: 0, .. }]
    ));
}

#[test]
fn stale_inputs_are_ignored() {
    let mut rig = Rig::start();
    let primary = Rig::connected(&rig.log, 0);
    rig.deliver(primary);
    assert!(rig.feed(media(999)).is_empty());
    assert!(rig.feed(Input::Failed(999, FailReason::Stall)).is_empty());
    assert!(rig.feed(Input::Headers(999)).is_empty());
    assert_eq!(rig.session.active_candidate(), Some(0));
}

#[test]
fn what_viewers_may_do_follows_the_phase() {
    let mut rig = Rig::start();
    assert_eq!(rig.session.viewing(), Viewing::Waiting);
    assert_eq!(rig.session.state_name(), "tuning");
    let primary = Rig::connected(&rig.log, 0);
    rig.deliver(primary);
    assert_eq!(rig.session.viewing(), Viewing::Live);
    assert_eq!(rig.session.feeding(), Some(primary));
    rig.feed(Input::Failed(primary, FailReason::Stall));
    assert_eq!(rig.session.state_name(), "failing");
    assert_eq!(rig.session.viewing(), Viewing::Live, "responses stay open");
    assert_eq!(rig.session.feeding(), None);
    rig.feed(Input::ViewerJoined);
    rig.feed(Input::ViewerLeft);
    rig.feed(Input::ViewerLeft);
    rig.advance(Duration::from_secs(5));
    assert_eq!(rig.session.viewing(), Viewing::Ended);
    assert_eq!(rig.session.peak_viewers(), 2);
}

#[test]
fn a_refused_session_says_why() {
    let capacity = Full::default();
    capacity.0.borrow_mut().extend([1, 2]);
    let rig = Rig::with(candidates(), capacity);
    assert_eq!(
        rig.session.viewing(),
        Viewing::Refused(Refusal::AllTunersInUse)
    );
    let mut rig = Rig::start();
    for _ in 0..100 {
        let pending: Vec<AttemptId> = rig
            .log
            .iter()
            .filter_map(|a| match a {
                Action::Connect { attempt, .. } => Some(*attempt),
                _ => None,
            })
            .collect();
        for attempt in pending {
            rig.feed(Input::Failed(attempt, FailReason::ConnectionError));
        }
        rig.log.clear();
        rig.advance(Duration::from_millis(500));
        if rig.session.is_finished() {
            break;
        }
    }
    assert_eq!(
        rig.session.viewing(),
        Viewing::Refused(Refusal::NoVideoData)
    );
}

fn forced(attempt: AttemptId, kind: SpliceKind) -> Action {
    Action::Splice {
        attempt,
        kind,
        forced: true,
    }
}

#[test]
fn a_tune_waits_for_a_random_access_point_then_starts_there() {
    let mut rig = Rig::start();
    let attempt = Rig::connected(&rig.log, 0);
    rig.feed(Input::Headers(attempt));
    assert!(rig.feed(media_mid_gop(attempt)).is_empty());
    rig.now += Duration::from_millis(900);
    assert!(rig.feed(media_mid_gop(attempt)).is_empty(), "still waiting");
    assert_eq!(rig.session.viewing(), Viewing::Waiting);
    let actions = rig.feed(media(attempt));
    assert_eq!(actions[0], splice(attempt, SpliceKind::First));
    assert!(actions.contains(&Action::StartViewers));
}

#[test]
fn a_source_with_no_random_access_point_is_spliced_at_the_keyframe_deadline() {
    let mut rig = Rig::start();
    let attempt = Rig::connected(&rig.log, 0);
    rig.feed(Input::Headers(attempt));
    rig.feed(media_mid_gop(attempt));
    let keyframe = deadlines().keyframe;
    assert!(rig.advance(keyframe - Duration::from_millis(1)).is_empty());
    // More media does not move the deadline.
    rig.feed(media_mid_gop(attempt));
    let actions = rig.advance(Duration::from_millis(1));
    assert_eq!(actions[0], forced(attempt, SpliceKind::First));
    assert!(actions.contains(&Action::StartViewers));
    assert!(rig.session.take_failures().is_empty(), "not a failure");
}

#[test]
fn a_failover_waits_for_the_backups_random_access_point_within_the_deadline() {
    let mut rig = Rig::start();
    let primary = Rig::connected(&rig.log, 0);
    rig.deliver(primary);
    let actions = rig.feed(Input::Failed(primary, FailReason::StreamError));
    let backup = Rig::connected(&actions, 1);
    rig.feed(Input::Headers(backup));
    assert!(rig.feed(media_mid_gop(backup)).is_empty());
    rig.now += Duration::from_millis(400);
    let actions = rig.feed(media(backup));
    assert_eq!(actions[0], splice(backup, SpliceKind::Failover));

    // A second failure, to a backup that never shows one: spliced at the deadline.
    let actions = rig.feed(Input::Failed(backup, FailReason::StreamError));
    let third = Rig::connected(&actions, 2);
    rig.feed(Input::Headers(third));
    rig.feed(media_mid_gop(third));
    let actions = rig.advance(deadlines().keyframe);
    assert_eq!(actions[0], forced(third, SpliceKind::Failover));
}

#[test]
fn the_return_to_the_better_stream_keeps_the_backup_until_the_random_access_point() {
    let mut rig = Rig::start();
    let primary = Rig::connected(&rig.log, 0);
    let actions = rig.feed(Input::Failed(primary, FailReason::ConnectionError));
    let backup = Rig::connected(&actions, 1);
    rig.deliver(backup);
    let mut actions = Vec::new();
    for _ in 0..60 {
        rig.feed(media(backup));
        actions.extend(rig.advance(Duration::from_secs(1)));
    }
    let probe = Rig::connected(&actions, 0);
    rig.feed(Input::Headers(probe));
    assert!(rig.feed(media_mid_gop(probe)).is_empty());
    rig.now += Duration::from_millis(500);
    assert!(rig.feed(media(backup)).is_empty(), "the backup still feeds");
    assert_eq!(rig.session.feeding(), Some(backup));
    let actions = rig.feed(media(probe));
    assert_eq!(
        actions[..2],
        [Action::Close(backup), splice(probe, SpliceKind::Upgrade)]
    );
    assert_eq!(rig.session.feeding(), Some(probe));
}
