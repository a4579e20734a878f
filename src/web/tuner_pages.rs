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
