//! The HDHomeRun-style pages: `/tuners.html`, one line per tuner in the form Jellyfin's
//! HDHomeRun code scrapes, and `/lineup.html`, the lineup as a table.
//!
//! Jellyfin reads `/tuners.html` line by line, strips the tags, and takes every line holding
//! `Channel`: the text before it (less one character) is the tuner's name, the text after it the
//! channel, `none` when idle. So each tuner is one line, and no other line may say `Channel`.

use crate::guide::LineupChannel;
use crate::relay::SessionStatus;

use super::html::{Text, push};

/// One line per tuner: each upstream connection a session holds is a busy tuner (a session
/// trying its better stream holds two), then idle ones up to `tuner_count`.
pub fn tuners_html(sessions: &[SessionStatus], tuner_count: u32) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Tuner status</title>\n</head>\n<body>\n<table>\n",
    );
    let busy = sessions
        .iter()
        .flat_map(|s| std::iter::repeat_n(s.channel.as_str(), s.connections));
    let idle = std::iter::repeat("none");
    let count = (tuner_count as usize).max(sessions.iter().map(|s| s.connections).sum());
    for (index, channel) in busy.chain(idle).take(count).enumerate() {
        push(
            &mut out,
            format_args!(
                "<tr><td>Tuner {index} Channel</td><td>{}</td></tr>\n",
                Text(channel)
            ),
        );
    }
    out.push_str("</table>\n</body>\n</html>\n");
    out
}

/// The lineup: number (linked to the stream), name, and how many streams back it.
pub fn lineup_html(lineup: &[LineupChannel]) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Lineup</title>\n</head>\n<body>\n<table>\n\
         <thead><tr><th>Number</th><th>Name</th><th>Streams</th></tr></thead>\n<tbody>\n",
    );
    for channel in lineup {
        let number = Text(&channel.channel.number);
        push(
            &mut out,
            format_args!(
                "<tr><td><a href=\"/auto/v{number}\">{number}</a></td><td>{}</td><td>{}</td></tr>\n",
                Text(channel.channel.name()),
                channel.streams.len()
            ),
        );
    }
    out.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(channel: &str, connections: usize) -> SessionStatus {
        SessionStatus {
            channel: channel.into(),
            name: "x".into(),
            guide_id: "x".into(),
            state: "live",
            stream: None,
            role: None,
            measured: None,
            viewers: 1,
            bytes: 0,
            bitrate_bps: 0,
            connections,
            started_at: String::new(),
            uptime_seconds: 0,
            last_failover: None,
        }
    }

    fn tuner_lines(html: &str) -> Vec<&str> {
        html.lines().filter(|l| l.contains("Channel")).collect()
    }

    #[test]
    fn one_line_per_connection_then_idle_tuners() {
        let html = tuners_html(&[session("101", 2), session("7.1", 1)], 4);
        assert_eq!(
            tuner_lines(&html),
            [
                "<tr><td>Tuner 0 Channel</td><td>101</td></tr>",
                "<tr><td>Tuner 1 Channel</td><td>101</td></tr>",
                "<tr><td>Tuner 2 Channel</td><td>7.1</td></tr>",
                "<tr><td>Tuner 3 Channel</td><td>none</td></tr>",
            ]
        );
        // A session still waiting for a connection holds no tuner.
        assert_eq!(tuner_lines(&tuners_html(&[session("5", 0)], 1)).len(), 1);
        // More connections than configured tuners (a lowered limit): every one is listed.
        assert_eq!(tuner_lines(&tuners_html(&[session("5", 3)], 2)).len(), 3);
        assert_eq!(tuner_lines(&tuners_html(&[], 0)).len(), 0);
    }
}
