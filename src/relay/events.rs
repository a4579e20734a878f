//! How a session's events read in the event log (SPEC §7 Events): level, category, a line for
//! people and JSON details for tools, with streams named `ACCOUNT:STREAM_ID` and channels by
//! number and guide id. Pure: the channel gathers the facts and emits the result.

use std::time::Duration;

use serde_json::{Value, json};

use crate::store::Level;

use super::session::SessionEvent;
use super::source::ChannelInfo;

/// What the session's events mention besides the event itself.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    pub viewers: usize,
    pub peak_viewers: usize,
    /// Bytes the session fed to its viewers (the ring) so far.
    pub bytes: u64,
    pub elapsed: Duration,
    /// The candidate feeding the viewers.
    pub active: Option<usize>,
}

/// One event, ready for the sink.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub level: Level,
    pub category: &'static str,
    pub message: String,
    pub details: Value,
}

pub fn describe(info: &ChannelInfo, event: &SessionEvent, facts: &Facts) -> Entry {
    let stream = |index: usize| info.sources.get(index).map_or("?", |s| s.stream.as_str());
    let streams = || {
        info.sources
            .iter()
            .map(|s| s.stream.clone())
            .collect::<Vec<_>>()
    };
    let channel = format!("channel {} ({})", info.number, info.guide_id);
    let (level, category, message, extra) = match *event {
        SessionEvent::Started { stream: index } => (
            Level::Info,
            "session",
            format!("{channel}: started on {}", stream(index)),
            json!({ "stream": stream(index), "viewers": facts.viewers }),
        ),
        SessionEvent::Failover {
            from,
            to,
            reason,
            gap,
        } => (
            Level::Warn,
            "failover",
            format!(
                "{channel}: failover from {} to {} ({reason}), {} ms without data",
                stream(from),
                stream(to),
                gap.as_millis()
            ),
            json!({
                "from_stream": stream(from),
                "to_stream": stream(to),
                "reason": reason.to_string(),
                "gap_ms": gap.as_millis() as u64,
            }),
        ),
        SessionEvent::BudgetMissed { from, reason } => (
            Level::Warn,
            "failover",
            format!(
                "{channel}: no stream took over from {} ({reason}) within the failover budget; still trying",
                stream(from)
            ),
            json!({ "from_stream": stream(from), "reason": reason.to_string() }),
        ),
        SessionEvent::Upgraded { from, to } => (
            Level::Info,
            "upgrade",
            format!(
                "{channel}: back to the better stream {} from {}",
                stream(to),
                stream(from)
            ),
            json!({ "from_stream": stream(from), "to_stream": stream(to) }),
        ),
        SessionEvent::UpgradeFailed {
            stream: index,
            reason,
        } => (
            Level::Info,
            "upgrade",
            format!(
                "{channel}: the better stream {} is still failing ({reason}); staying",
                stream(index)
            ),
            json!({ "stream": stream(index), "reason": reason.to_string() }),
        ),
        SessionEvent::Exhausted { last } => (
            Level::Error,
            "failover",
            format!(
                "{channel}: every stream failed{}",
                last.map(|r| format!(" (last: {r})")).unwrap_or_default()
            ),
            json!({ "reason": last.map(|r| r.to_string()), "streams": streams() }),
        ),
        SessionEvent::TunersBusy => (
            Level::Warn,
            "tuner",
            format!("{channel}: refused, all tuners in use"),
            json!({ "streams": streams() }),
        ),
        SessionEvent::Ended => {
            let seconds = facts.elapsed.as_secs_f64();
            (
                Level::Info,
                "session",
                format!(
                    "{channel}: ended after {seconds:.0} s, {} bytes, up to {} viewers",
                    facts.bytes, facts.peak_viewers
                ),
                json!({
                    "seconds": seconds,
                    "bytes": facts.bytes,
                    "peak_viewers": facts.peak_viewers,
                    "stream": facts.active.map(stream),
                }),
            )
        }
    };
    let mut details = json!({ "channel": info.number, "guide_id": info.guide_id });
    if let (Some(details), Value::Object(extra)) = (details.as_object_mut(), extra) {
        details.extend(extra);
    }
    Entry {
        level,
        category,
        message,
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::session::FailReason;
    use crate::relay::source::StreamSource;
    use crate::upstream::Url;

    fn info() -> ChannelInfo {
        let source = |stream: &str| StreamSource {
            stream: stream.into(),
            stream_row: 1,
            account_id: 1,
            url: Url::parse("http://panel.test/live/me/s3cret/1.ts").unwrap(),
            user_agent: "ua".into(),
            referrer: None,
        };
        ChannelInfo {
            number: "101".into(),
            name: "News".into(),
            guide_id: "news.uk".into(),
            sources: vec![source("main:1"), source("backup:2")],
        }
    }

    fn facts() -> Facts {
        Facts {
            viewers: 2,
            peak_viewers: 3,
            bytes: 1234,
            elapsed: Duration::from_secs(61),
            active: Some(1),
        }
    }

    #[test]
    fn a_failover_names_both_streams_the_reason_and_the_gap() {
        let event = SessionEvent::Failover {
            from: 0,
            to: 1,
            reason: FailReason::HttpError(502),
            gap: Duration::from_millis(140),
        };
        let entry = describe(&info(), &event, &facts());
        assert_eq!(entry.level, Level::Warn);
        assert_eq!(entry.category, "failover");
        assert_eq!(
            entry.message,
            "channel 101 (news.uk): failover from main:1 to backup:2 (HttpError(502)), 140 ms without data"
        );
        assert_eq!(
            entry.details,
            json!({
                "channel": "101", "guide_id": "news.uk", "from_stream": "main:1",
                "to_stream": "backup:2", "reason": "HttpError(502)", "gap_ms": 140,
            })
        );
    }

    #[test]
    fn the_end_reports_duration_bytes_peak_and_stream() {
        let entry = describe(&info(), &SessionEvent::Ended, &facts());
        assert_eq!(entry.level, Level::Info);
        assert!(
            entry
                .message
                .ends_with("ended after 61 s, 1234 bytes, up to 3 viewers"),
            "{}",
            entry.message
        );
        assert_eq!(entry.details["stream"], "backup:2");
        assert_eq!(entry.details["peak_viewers"], 3);
    }

    #[test]
    fn exhaustion_is_an_error_and_no_event_carries_a_credential() {
        let events = [
            SessionEvent::Started { stream: 0 },
            SessionEvent::Exhausted {
                last: Some(FailReason::Stall),
            },
            SessionEvent::TunersBusy,
            SessionEvent::UpgradeFailed {
                stream: 0,
                reason: FailReason::NotTs,
            },
        ];
        let entries: Vec<Entry> = events
            .iter()
            .map(|e| describe(&info(), e, &facts()))
            .collect();
        assert_eq!(entries[1].level, Level::Error);
        assert_eq!(entries[1].details["streams"], json!(["main:1", "backup:2"]));
        for entry in entries {
            let text = format!("{} {}", entry.message, entry.details);
            assert!(
                !text.contains("s3cret") && !text.contains("panel.test"),
                "{text}"
            );
        }
    }
}
