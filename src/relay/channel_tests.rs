//! The channel's glue driven by hand: fake attempts, a hand-driven clock, no socket and no
//! sleep. What the session decides is tested in `session_tests.rs`; here, that the channel
//! carries it out: attempts opened and closed, the ring fed from the right attempt from the
//! right chunk, viewers counted, metrics and events where things happen, tuners released.

use std::rc::Rc;
use std::time::Duration;

use super::*;
use crate::relay::testing::{CHUNK_BYTES, Rig, chunk, ring_tags};

fn start(rig: &Rig, accounts: &[i64]) -> Rc<Channel> {
    Channel::start(Rc::new(rig.services()), rig.channel("101", accounts))
}

fn metric(channel: &Channel, name: &str) -> String {
    let text = channel.services().metrics.render(&Default::default());
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("streamforge_{name} ")))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .to_string()
}

#[test]
fn the_first_media_starts_the_viewers_and_is_the_first_chunk_they_get() {
    let rig = Rig::new(&[(1, 2)]);
    let channel = start(&rig, &[1]);
    let opened = rig.connector.opened();
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].stream, "101:0");
    assert_eq!(rig.tuners.in_use(), 1, "the attempt holds a tuner");
    assert_eq!(channel.viewing(), Viewing::Waiting);

    channel.headers(opened[0].attempt);
    assert_eq!(channel.viewing(), Viewing::Waiting, "headers are not media");
    channel.media(opened[0].attempt, chunk(1));
    assert_eq!(channel.viewing(), Viewing::Live);
    assert!(
        ring_tags(&channel.ring()).is_empty(),
        "held until the next frame shows it whole"
    );
    channel.media(opened[0].attempt, chunk(2));
    assert_eq!(ring_tags(&channel.ring()), [1]);
    assert_eq!(channel.status().state, "live");
    let status = channel.status();
    assert_eq!(status.stream.as_deref(), Some("101:0"));
    assert_eq!((status.role, status.connections), (Some("primary"), 1));
    assert_eq!(status.bytes, CHUNK_BYTES as u64);
    assert!(status.last_failover.is_none());
    // The bit rate runs on the channel's clock: one chunk in the first two seconds.
    rig.advance(Duration::from_secs(2));
    let status = channel.status();
    assert_eq!(status.bitrate_bps, CHUNK_BYTES as u64 * 8 / 2);
    assert_eq!(status.uptime_seconds, 2);
    assert_eq!(metric(&channel, "sessions_started_total"), "1");
    assert_eq!(
        metric(&channel, "upstream_bytes_total"),
        CHUNK_BYTES.to_string()
    );
    assert_eq!(metric(&channel, "splices_without_keyframe_total"), "0");
    assert_eq!(rig.events.categories(), ["session"]);
}

#[test]
fn a_failover_splices_at_the_replacement_s_first_keyframe_and_ignores_the_dead_source() {
    let rig = Rig::new(&[(1, 1), (2, 1)]);
    let channel = start(&rig, &[1, 2]);
    let primary = rig.connector.opened()[0].attempt;
    rig.deliver(&*channel, primary);
    channel.media(primary, chunk(2));

    rig.advance(Duration::from_millis(40));
    channel.failed(primary, FailReason::StreamError);
    let opened = rig.connector.opened();
    assert!(opened[0].closed, "the failed attempt is closed");
    assert_eq!(opened[1].stream, "101:1", "the backup is connected");
    assert_eq!(channel.status().state, "failing");
    assert_eq!(channel.viewing(), Viewing::Live, "the responses stay open");

    // Whatever the dead attempt still reports is not relayed.
    channel.media(primary, chunk(3));
    let backup = opened[1].attempt;
    channel.headers(backup);
    rig.advance(Duration::from_millis(60));
    channel.media(backup, chunk(4));
    channel.media(backup, chunk(5));
    // The primary's last frame, never seen whole, is not relayed.
    assert_eq!(ring_tags(&channel.ring()), [0xEE, 4]);
    let status = channel.status();
    assert_eq!(status.state, "live");
    assert_eq!(status.role, Some("backup"));
    let last = status.last_failover.expect("the failover is remembered");
    assert_eq!(
        (last.from.as_str(), last.to.as_str(), last.reason.as_str()),
        ("101:0", "101:1", "StreamError")
    );
    assert_eq!(metric(&channel, "failovers_total"), "1");
    let text = channel.services().metrics.render(&Default::default());
    assert!(text.contains("streamforge_upstream_errors_total{reason=\"StreamError\"} 1"));
    assert_eq!(rig.events.categories(), ["session", "failover"]);
    assert!(
        rig.events.messages()[1]
            .contains("failover from 101:0 to 101:1 (StreamError), 60 ms without data"),
        "{:?}",
        rig.events.messages()
    );
}

#[test]
fn the_return_to_the_better_stream_switches_at_its_first_keyframe() {
    let rig = Rig::new(&[(1, 1), (2, 1)]);
    let channel = start(&rig, &[1, 2]);
    let primary = rig.connector.opened()[0].attempt;
    channel.failed(primary, FailReason::ConnectionError);
    rig.connector.drop_connection(primary);
    let backup = rig.connector.opened()[1].attempt;
    rig.deliver(&*channel, backup);

    // Every upgrade interval the better stream is probed while the backup keeps playing.
    rig.advance(Duration::from_secs(60));
    channel.media(backup, chunk(1));
    channel.tick();
    let opened = rig.connector.opened();
    assert_eq!(opened.len(), 3);
    let probe = opened[2].attempt;
    assert_eq!(opened[2].stream, "101:0");
    channel.headers(probe);
    channel.media(backup, chunk(2));
    assert!(!rig.connector.opened()[1].closed);
    channel.media(probe, chunk(3));
    assert!(rig.connector.opened()[1].closed, "the backup goes at once");
    channel.media(backup, chunk(4));
    channel.media(probe, chunk(5));
    // The backup's frame 2, held back when the better stream took over, is not relayed.
    assert_eq!(ring_tags(&channel.ring()), [0xEE, 1, 3]);
    let status = channel.status();
    assert_eq!(status.stream.as_deref(), Some("101:0"));
    assert_eq!(status.role, Some("primary"), "back on the better stream");
    assert_eq!(metric(&channel, "upgrades_total"), "1");
    assert_eq!(metric(&channel, "failovers_total"), "0");
    assert_eq!(rig.events.categories(), ["session", "upgrade"]);
}

#[test]
fn viewers_are_counted_by_the_session_and_the_last_one_out_ends_it_after_the_linger() {
    let rig = Rig::new(&[(1, 2)]);
    let channel = start(&rig, &[1]);
    let attempt = rig.connector.opened()[0].attempt;
    rig.deliver(&*channel, attempt);
    channel.join();
    channel.join();
    assert_eq!(channel.viewers(), 3);
    for _ in 0..3 {
        channel.leave();
    }
    assert_eq!(channel.viewers(), 0);
    rig.advance(Duration::from_secs(4));
    channel.media(attempt, chunk(1));
    channel.tick();
    assert!(!channel.is_finished(), "still lingering");
    rig.advance(Duration::from_secs(1));
    channel.tick();
    assert!(channel.is_finished());
    assert_eq!(channel.viewing(), Viewing::Ended);
    assert!(rig.connector.opened()[0].closed);
    let ended = rig.events.messages().pop().unwrap();
    assert!(
        ended.ends_with(&format!(
            "ended after 5 s, {CHUNK_BYTES} bytes, up to 3 viewers"
        )),
        "{ended}"
    );
}

#[test]
fn a_tuner_is_held_until_the_connection_is_gone_and_released_once() {
    let rig = Rig::new(&[(1, 2)]);
    let news = start(&rig, &[1]);
    let sport = Channel::start(Rc::new(rig.services()), rig.channel("102", &[1]));
    assert_eq!(rig.tuners.in_use(), 2);
    let attempt = rig.connector.opened()[0].attempt;
    news.leave();
    assert!(news.is_finished());
    assert!(rig.connector.opened()[0].closed);
    assert_eq!(
        rig.tuners.in_use(),
        2,
        "closed, but the socket may not be gone yet"
    );
    rig.connector.drop_connection(attempt);
    assert_eq!(rig.tuners.in_use(), 1, "released exactly once");
    // The freed tuner is usable, and the limit still holds.
    let third = Channel::start(Rc::new(rig.services()), rig.channel("103", &[1]));
    assert_eq!(third.viewing(), Viewing::Waiting);
    let fourth = Channel::start(Rc::new(rig.services()), rig.channel("104", &[1]));
    assert!(matches!(fourth.viewing(), Viewing::Refused(_)));
    assert_eq!(rig.tuners.in_use(), 2);
    drop(sport);
}

#[test]
fn a_tune_with_every_account_full_is_refused_without_an_attempt() {
    let rig = Rig::new(&[(1, 1)]);
    let _news = start(&rig, &[1]);
    let sport = Channel::start(Rc::new(rig.services()), rig.channel("102", &[1]));
    assert_eq!(
        sport.viewing(),
        Viewing::Refused(crate::relay::session::Refusal::AllTunersInUse)
    );
    assert!(sport.is_finished());
    assert_eq!(rig.connector.opened().len(), 1);
    assert_eq!(metric(&sport, "refusals_total"), "1");
    assert_eq!(rig.events.categories(), ["tuner", "session"]);
}

#[test]
fn deadlines_the_session_detects_itself_count_as_upstream_errors() {
    let rig = Rig::new(&[(1, 1), (2, 1)]);
    let channel = start(&rig, &[1, 2]);
    rig.advance(Duration::from_secs(1));
    channel.tick();
    let opened = rig.connector.opened();
    assert!(opened[0].closed, "the silent primary is abandoned");
    assert_eq!(opened[1].stream, "101:1");
    let text = channel.services().metrics.render(&Default::default());
    assert!(
        text.contains("streamforge_upstream_errors_total{reason=\"ConnectionTimeout\"} 1"),
        "{text}"
    );
}

#[test]
fn no_event_or_status_names_a_stream_url() {
    let rig = Rig::new(&[(1, 1), (2, 1)]);
    let channel = start(&rig, &[1, 2]);
    let primary = rig.connector.opened()[0].attempt;
    rig.deliver(&*channel, primary);
    channel.failed(primary, FailReason::HttpError(403));
    let backup = rig.connector.opened()[1].attempt;
    rig.deliver(&*channel, backup);
    channel.leave();
    rig.advance(Duration::from_secs(5));
    channel.tick();
    let status = serde_json::to_string(&channel.status()).unwrap();
    for text in rig.events.messages().into_iter().chain([status]) {
        assert!(
            !text.contains("s3cret") && !text.contains("panel.test"),
            "{text}"
        );
    }
}

/// The shipped clip in reads of 64 KiB: real H.264 and AAC, 640×360.
fn clip_reads(seconds_tenths: usize) -> Vec<Aligned> {
    let clip = include_bytes!("../../assets/clip.ts");
    let usable = clip.len() / 188 * 188 * seconds_tenths.min(10) / 10 / 188 * 188;
    clip[..usable]
        .chunks(188 * 348)
        .map(bytes::BytesMut::from)
        .collect()
}

#[test]
fn what_a_stream_is_measured_as_is_handed_over_once_when_settled() {
    let rig = Rig::new(&[(1, 2)]);
    let channel = start(&rig, &[1]);
    let attempt = rig.connector.opened()[0].attempt;
    channel.headers(attempt);
    for read in clip_reads(10) {
        channel.media(attempt, read);
    }
    let measured = rig.events.measured();
    assert_eq!(measured.len(), 1, "settled once, during the session");
    assert_eq!(measured[0].0, "101:0");
    let video = measured[0].1.video.clone().expect("video");
    assert_eq!((video.width, video.height), (Some(640), Some(360)));
    let status = channel.status().measured.expect("/status shows it too");
    assert_eq!(status.video.and_then(|v| v.width), Some(640));

    // The session ends: nothing more to store.
    channel.leave();
    rig.advance(Duration::from_secs(60));
    channel.tick();
    assert!(channel.is_finished());
    assert_eq!(rig.events.measured().len(), 1);
}

#[test]
fn a_stream_left_before_it_settled_is_stored_when_its_attempt_closes() {
    let rig = Rig::new(&[(1, 1), (2, 1)]);
    let channel = start(&rig, &[1, 2]);
    let primary = rig.connector.opened()[0].attempt;
    channel.headers(primary);
    // Two seconds: the picture is known, the rates have not run long enough.
    for read in clip_reads(2) {
        channel.media(primary, read);
    }
    assert!(rig.events.measured().is_empty());
    channel.failed(primary, FailReason::StreamError);
    let measured = rig.events.measured();
    assert_eq!(measured.len(), 1);
    assert_eq!(measured[0].0, "101:0");
    assert!(measured[0].1.bitrate.is_some(), "two seconds give a rate");
}
