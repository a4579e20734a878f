//! The page at `/`: what a real HDHomeRun's page is to its owner, and more. The URLs to add the
//! tuner with, tuners per account with the subscription, the live sessions, recent events, the
//! guide sources and the lineup. Server-rendered and complete without JavaScript; a few lines of
//! inline script add copy buttons and swap in the live sections of a fresh copy of the page every
//! few seconds, so there is one renderer.

use std::time::{Duration, SystemTime};

use crate::guide::LineupChannel;
use crate::hdhr::Device;
use crate::measure::{Rank, disagreement, label_tier};
use crate::relay::SessionStatus;
use crate::store::Level;
use crate::time::parse_rfc3339;
use crate::xtream::quality::Tier;

use super::html::{Text, bitrate, push, span, table, when};
use super::{AccountView, GuideView, Overview};

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("live.js");

/// A guide that ends sooner than this gets a warning.
const GUIDE_WARNING: Duration = Duration::from_secs(24 * 3600);
/// A subscription that ends sooner than this gets a warning.
const EXPIRY_WARNING: Duration = Duration::from_secs(7 * 24 * 3600);

/// Everything the page shows.
pub struct Home<'a> {
    pub device: &'a Device,
    pub version: &'a str,
    pub overview: &'a Overview,
    pub lineup: &'a [LineupChannel],
    pub sessions: &'a [SessionStatus],
    /// `(account, open, max)`, from the relay's tuner accounting.
    pub tuners: &'a [(i64, u32, u32)],
    pub now: SystemTime,
}

/// Renders the page.
pub fn home(page: &Home<'_>) -> String {
    let mut out = String::with_capacity(16 * 1024 + page.lineup.len() * 256);
    let name = Text(&page.device.friendly_name);
    push(
        &mut out,
        format_args!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{name}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header>\n\
             <h1>{name}</h1>\n<p class=\"quiet\">StreamForge {} · device {} · {} tuners</p>\n\
             </header>\n<main>\n",
            Text(page.version),
            page.device.device_id,
            page.device.tuner_count
        ),
    );
    add_to_players(&mut out, page.device);
    tuners(&mut out, page);
    sessions(&mut out, page);
    events(&mut out, page);
    guides(&mut out, &page.overview.guides, page.now);
    lineup(&mut out, page.lineup);
    push(
        &mut out,
        format_args!(
            "</main>\n<footer class=\"quiet\">\n<a href=\"/tuners.html\">tuners.html</a> · \
             <a href=\"/lineup.html\">lineup.html</a> · <a href=\"/lineup.json\">lineup.json</a> · \
             <a href=\"/status\">status</a> · <a href=\"/metrics\">metrics</a>\n</footer>\n\
             <script>{SCRIPT}</script>\n</body>\n</html>\n"
        ),
    );
    out
}

/// The URLs to paste into each player, with copy buttons (shown by the script).
fn add_to_players(out: &mut String, device: &Device) {
    let base = device.base();
    let host = base.split_once("://").map_or(base, |(_, rest)| rest);
    let rows = [
        ("Plex", "Device address", host.to_string()),
        ("Jellyfin", "Tuner URL", base.to_string()),
        ("Jellyfin", "XMLTV guide", format!("{base}/epg.xml")),
        (
            "Channels DVR",
            "M3U playlist",
            format!("{base}/playlist.m3u"),
        ),
        ("Channels DVR", "XMLTV guide", format!("{base}/epg.xml")),
        ("VLC, Kodi", "M3U playlist", format!("{base}/playlist.m3u")),
    ];
    out.push_str(
        "<section id=\"add\">\n<h2>Add this tuner</h2>\n<p>Plex finds it on its own \
         (Live TV &amp; DVR, Set up); if not, type the address below.</p>\n<dl class=\"urls\">\n",
    );
    for (index, (player, what, url)) in rows.iter().enumerate() {
        push(
            out,
            format_args!(
                "<dt>{} · {}</dt>\n<dd><input id=\"url{index}\" readonly value=\"{}\" \
                 aria-label=\"{} {}\"> <button type=\"button\" data-copy=\"url{index}\" \
                 hidden>Copy</button></dd>\n",
                Text(player),
                Text(what),
                Text(url),
                Text(player),
                Text(what)
            ),
        );
    }
    out.push_str("</dl>\n</section>\n");
}

fn tuners(out: &mut String, page: &Home<'_>) {
    out.push_str("<section id=\"tuners\" data-live>\n<h2>Tuners</h2>\n");
    if page.overview.accounts.is_empty() {
        out.push_str(
            "<p>No account yet: <code>sudo streamforge account add</code></p>\n</section>\n",
        );
        return;
    }
    let rows = page.overview.accounts.iter().map(|account| {
        let open = page
            .tuners
            .iter()
            .find(|(id, _, _)| *id == account.id)
            .map_or(0, |&(_, open, _)| open);
        let in_use = if account.enabled {
            format!("{open} of {}", account.max_connections)
        } else {
            "disabled".to_string()
        };
        let synced = account.last_sync_at.as_deref().map_or_else(
            || "never".to_string(),
            |t| Text(&when(t, page.now)).to_string(),
        );
        vec![
            Text(&account.name).to_string(),
            in_use,
            subscription_status(account),
            expiry(account, page.now),
            synced,
        ]
    });
    table(
        out,
        &["Account", "In use", "Subscription", "Expires", "Last sync"],
        rows,
    );
    out.push_str("</section>\n");
}

fn subscription_status(account: &AccountView) -> String {
    match account.subscription_status.as_deref() {
        None => "unknown".to_string(),
        Some("Active") => "Active".to_string(),
        Some(other) => format!("<strong class=\"bad\">{}</strong>", Text(other)),
    }
}

fn expiry(account: &AccountView, now: SystemTime) -> String {
    match (account.expires_at.as_deref(), &account.subscription_status) {
        (None, Some(_)) => "never".to_string(),
        (None, None) => "unknown".to_string(),
        (Some(at), _) => {
            let text = Text(&when(at, now)).to_string();
            match parse_rfc3339(at).map(|at| at.duration_since(now)) {
                Some(Err(_)) => format!("<strong class=\"bad\">{text}</strong>"),
                Some(Ok(left)) if left < EXPIRY_WARNING => {
                    format!("<strong class=\"warn\">{text}</strong>")
                }
                _ => text,
            }
        }
    }
}

fn sessions(out: &mut String, page: &Home<'_>) {
    out.push_str("<section id=\"live\" data-live>\n<h2>Watching now</h2>\n");
    if page.sessions.is_empty() {
        out.push_str("<p>Nothing is being watched.</p>\n</section>\n");
        return;
    }
    let rows = page.sessions.iter().map(|session| {
        let stream = match (&session.stream, session.role) {
            (Some(stream), Some(role)) => format!(
                "{} <span class=\"tag {role}\">{role}</span>",
                Text(&stream_label(page.lineup, &session.channel, stream))
            ),
            _ => format!("<em>{}</em>", Text(session.state)),
        };
        let failover = session.last_failover.as_ref().map_or_else(
            || "none".to_string(),
            |f| {
                Text(&format!(
                    "{} → {} ({}), {}",
                    f.from,
                    f.to,
                    f.reason,
                    when(&f.at, page.now)
                ))
                .to_string()
            },
        );
        vec![
            format!("{} {}", Text(&session.channel), Text(&session.name)),
            stream,
            session.viewers.to_string(),
            span(Duration::from_secs(session.uptime_seconds)),
            bitrate(session.bitrate_bps),
            failover,
        ]
    });
    table(
        out,
        &[
            "Channel",
            "Stream",
            "Viewers",
            "Up",
            "Bit rate",
            "Last failover",
        ],
        rows,
    );
    out.push_str("</section>\n");
}

/// `ACCOUNT:STREAM_ID` with the provider's name of the stream when the lineup has it.
fn stream_label(lineup: &[LineupChannel], channel: &str, stream: &str) -> String {
    lineup
        .iter()
        .filter(|c| c.channel.number == channel)
        .flat_map(|c| &c.streams)
        .find(|m| m.stream_ref() == stream)
        .map_or_else(
            || stream.to_string(),
            |m| format!("{} ({stream})", m.stream_name),
        )
}

fn events(out: &mut String, page: &Home<'_>) {
    out.push_str("<section id=\"events\" data-live>\n<h2>Recent events</h2>\n");
    if page.overview.events.is_empty() {
        out.push_str("<p>None yet.</p>\n</section>\n");
        return;
    }
    out.push_str("<ul class=\"events\">\n");
    for event in &page.overview.events {
        let class = match event.level {
            Level::Error => " class=\"bad\"",
            Level::Warn => " class=\"warn\"",
            Level::Info | Level::Debug => "",
        };
        push(
            out,
            format_args!(
                "<li{class}><span class=\"quiet\">{}</span> {}</li>\n",
                Text(&when(&event.timestamp, page.now)),
                Text(&event.message)
            ),
        );
    }
    out.push_str("</ul>\n</section>\n");
}

fn guides(out: &mut String, guides: &[GuideView], now: SystemTime) {
    out.push_str("<section id=\"guide\">\n<h2>Guide</h2>\n");
    if guides.is_empty() {
        out.push_str(
            "<p>No guide source yet: <code>sudo streamforge epg add URL|FILE|xtream:ACCOUNT</code></p>\n</section>\n",
        );
        return;
    }
    let rows = guides.iter().map(|guide| {
        let refreshed = match (&guide.last_refresh_at, guide.last_refresh_failed) {
            (None, _) => "never".to_string(),
            (Some(at), false) => Text(&when(at, now)).to_string(),
            (Some(at), true) => format!(
                "<strong class=\"bad\">failed</strong> {}",
                Text(&when(at, now))
            ),
        };
        let until = match guide.programmes_until.as_deref() {
            None => "no programmes".to_string(),
            Some(at) => {
                let text = Text(&when(at, now)).to_string();
                match parse_rfc3339(at).map(|at| at.duration_since(now)) {
                    Some(Err(_)) => {
                        format!("<strong class=\"bad\">{text}: the guide has run out</strong>")
                    }
                    Some(Ok(left)) if left < GUIDE_WARNING => {
                        format!("<strong class=\"warn\">{text}: runs out within a day</strong>")
                    }
                    _ => text,
                }
            }
        };
        vec![
            Text(&guide.name).to_string(),
            refreshed,
            guide.channels.to_string(),
            until,
        ]
    });
    table(
        out,
        &["Source", "Last refresh", "Channels", "Programmes until"],
        rows,
    );
    out.push_str("</section>\n");
}

fn lineup(out: &mut String, lineup: &[LineupChannel]) {
    push(
        out,
        format_args!(
            "<section id=\"lineup\">\n<h2>Lineup <span class=\"quiet\">({} channels)</span></h2>\n",
            lineup.len()
        ),
    );
    if lineup.is_empty() {
        out.push_str(
            "<p>Empty: add a guide and an account, then <code>sudo streamforge map auto</code></p>\n</section>\n",
        );
        return;
    }
    let rows = lineup.iter().map(|channel| {
        let number = Text(&channel.channel.number);
        let mut streams = String::from("<ol>");
        for stream in &channel.streams {
            let labelled = Tier::from_rank(stream.tier);
            let facts = stream.measured.as_ref().map(|m| &m.facts);
            push(
                &mut streams,
                format_args!(
                    "<li><span class=\"tag\">{}</span> {} <span class=\"quiet\">{}</span>",
                    Rank::of(labelled, facts).tier,
                    Text(&stream.stream_name),
                    Text(&stream.stream_ref())
                ),
            );
            // What was measured, and where the name's label disagrees, both (SPEC §7).
            if let Some(facts) = facts {
                let label = label_tier(&stream.labels, labelled);
                let mismatch = disagreement(label, facts).map(|m| format!(" ({m})"));
                push(
                    &mut streams,
                    format_args!(
                        " <span class=\"quiet measured\">· {}{}</span>",
                        Text(&facts.summary()),
                        Text(mismatch.as_deref().unwrap_or_default())
                    ),
                );
            }
            streams.push_str("</li>");
        }
        streams.push_str("</ol>");
        vec![
            format!("<a href=\"/auto/v{number}\">{number}</a>"),
            Text(channel.channel.name()).to_string(),
            streams,
        ]
    });
    table(out, &["No.", "Name", "Streams, best first"], rows);
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hdhr::DeviceId;
    use crate::relay::channel::LastFailover;
    use crate::store::StoredEvent;
    use crate::time::rfc3339;

    const HOUR: Duration = Duration::from_secs(3600);

    fn device() -> Device {
        let id: DeviceId = "C7077097".parse().unwrap();
        Device::new("Den <Tuner>", id, "http://192.168.1.50:5004/", 4)
    }

    fn account(name: &str, status: &str, expires_at: Option<SystemTime>) -> AccountView {
        AccountView {
            id: 1,
            name: name.into(),
            enabled: true,
            max_connections: 2,
            subscription_status: Some(status.into()),
            expires_at: expires_at.map(rfc3339),
            last_sync_at: None,
        }
    }

    fn guide(failed: bool, until: Option<SystemTime>) -> GuideView {
        GuideView {
            name: "uk <guide>".into(),
            last_refresh_at: Some("2026-12-07T10:00:00Z".into()),
            last_refresh_failed: failed,
            channels: 12,
            programmes_until: until.map(rfc3339),
        }
    }

    fn render(overview: &Overview, sessions: &[SessionStatus], now: SystemTime) -> String {
        home(&Home {
            device: &device(),
            version: "0.1.0",
            overview,
            lineup: &[],
            sessions,
            tuners: &[(1, 1, 2)],
            now,
        })
    }

    #[test]
    fn subscriptions_and_guides_warn_before_they_run_out() {
        let now = crate::time::parse_rfc3339("2026-12-07T18:00:00Z").unwrap();
        let overview = Overview {
            accounts: vec![
                account("gone", "Expired", Some(now - HOUR)),
                account("soon", "Active", Some(now + 72 * HOUR)),
                account("fine", "Active", Some(now + 90 * 24 * HOUR)),
                account("forever", "Active", None),
            ],
            guides: vec![
                guide(false, Some(now + 5 * HOUR)),
                guide(false, Some(now - HOUR)),
                guide(true, Some(now + 100 * HOUR)),
            ],
            events: vec![],
        };
        let page = render(&overview, &[], now);
        let tuners = &page[page.find("id=\"tuners\"").unwrap()..page.find("id=\"live\"").unwrap()];
        let row = |name: &str| {
            let start = tuners.find(&format!(">{name}<")).unwrap();
            &tuners[start..start + tuners[start..].find("</tr>").unwrap()]
        };
        assert!(row("gone").contains("<strong class=\"bad\">Expired</strong>"));
        assert!(
            row("gone").contains("<strong class=\"bad\">2026-12-07 17:00 UTC (1 h 00 min ago)")
        );
        assert!(row("soon").contains("<strong class=\"warn\">2026-12-10 18:00 UTC (in 3 days)"));
        assert!(!row("fine").contains("<strong"), "{}", row("fine"));
        assert!(row("forever").contains(">never<"));
        assert!(
            row("fine").contains(">1 of 2<"),
            "tuners from the relay's accounting"
        );
        assert!(page.contains("(in 5 h 00 min): runs out within a day</strong>"));
        assert!(page.contains("(1 h 00 min ago): the guide has run out</strong>"));
        assert!(page.contains("<strong class=\"bad\">failed</strong>"));
        assert_eq!(page.matches("within a day").count(), 1);
        assert!(page.contains("uk &lt;guide&gt;") && !page.contains("<guide>"));
    }

    #[test]
    fn what_providers_and_events_say_is_escaped() {
        let now = SystemTime::now();
        let overview = Overview {
            events: vec![StoredEvent {
                id: 1,
                timestamp: rfc3339(now),
                level: Level::Warn,
                category: "failover".into(),
                message: "failover <img src=x onerror=alert(1)>".into(),
                details: serde_json::json!({}),
            }],
            ..Overview::default()
        };
        let session = SessionStatus {
            channel: "101".into(),
            name: "<b>One</b>".into(),
            guide_id: "one.uk".into(),
            state: "live",
            stream: Some("main:<7>".into()),
            role: Some("backup"),
            measured: None,
            viewers: 2,
            bytes: 1,
            bitrate_bps: 4_200_000,
            connections: 1,
            started_at: rfc3339(now),
            uptime_seconds: 75,
            last_failover: Some(LastFailover {
                at: rfc3339(now),
                from: "main:1".into(),
                to: "main:<7>".into(),
                reason: "StreamError".into(),
            }),
        };
        let page = render(&overview, &[session], now);
        for raw in ["<img", "<b>One", "main:<7>", "Den <Tuner>"] {
            assert!(!page.contains(raw), "{raw} unescaped");
        }
        assert!(page.contains("<li class=\"warn\">"));
        assert!(page.contains("failover &lt;img src=x onerror=alert(1)&gt;"));
        assert!(page.contains("101 &lt;b&gt;One&lt;/b&gt;"));
        assert!(page.contains("main:1 → main:&lt;7&gt; (StreamError)"));
        assert!(page.contains(">4.2 Mbit/s<") && page.contains(">1 min<"));
        assert!(page.contains("<span class=\"tag backup\">backup</span>"));
        assert!(
            page.contains("value=\"192.168.1.50:5004\""),
            "Plex's address"
        );
        assert!(page.contains("value=\"http://192.168.1.50:5004/epg.xml\""));
        assert_eq!(page.matches("<script>").count(), 1);
    }

    #[test]
    fn the_lineup_shows_what_was_measured_and_a_label_that_lies() {
        use crate::measure::Measurement;
        use crate::store::{GuideChannel, Mapping, Measured};
        let mapping =
            |stream_id: i64, name: &str, tier: i64, labels: &[&str], size: Option<(u32, u32)>| {
                Mapping {
                    channel_row: 1,
                    channel_number: "101".into(),
                    channel_id: "one.uk".into(),
                    stream_row: stream_id,
                    account_id: 1,
                    account_name: "main".into(),
                    account_active: true,
                    max_connections: 1,
                    stream_id,
                    stream_name: name.into(),
                    category: None,
                    tier,
                    confidence: 1.0,
                    is_manual: false,
                    is_primary: stream_id == 2,
                    priority: 0,
                    labels: labels.iter().map(|l| l.to_string()).collect(),
                    measured: size.map(|(width, height)| Measured {
                        facts: Measurement::h264(width, height, Some(1_200_000)),
                        measured_at: "2026-12-07T18:00:00Z".into(),
                        how: "probe".into(),
                    }),
                }
            };
        let channel = LineupChannel {
            channel: GuideChannel {
                id: 1,
                source_id: 1,
                source_name: "guide".into(),
                channel_id: "one.uk".into(),
                display_names: vec!["One".into()],
                icon: None,
                number: "101".into(),
                enabled: true,
            },
            streams: vec![
                mapping(2, "One <raw>", 1, &[], Some((1280, 720))),
                mapping(1, "One FHD", 3, &["FHD"], Some((640, 360))),
                mapping(3, "One HD", 2, &["HD"], None),
            ],
        };
        let page = home(&Home {
            device: &device(),
            version: "0.1.0",
            overview: &Overview::default(),
            lineup: std::slice::from_ref(&channel),
            sessions: &[],
            tuners: &[],
            now: SystemTime::now(),
        });
        let lineup = &page[page.find("id=\"lineup\"").unwrap()..];
        let item = |name: &str| {
            let start = lineup.find(name).unwrap();
            &lineup[start..start + lineup[start..].find("</li>").unwrap()]
        };
        assert!(lineup.contains("<span class=\"tag\">HD</span> One &lt;raw&gt;"));
        assert!(item("One &lt;raw&gt;").contains("H.264 1280×720 25p, 1.2 Mbit/s"));
        assert!(item("One FHD").contains("(FHD label, measured 640×360)"));
        assert!(lineup.contains("<span class=\"tag\">SD</span> One FHD"));
        assert!(!item("One HD").contains("measured"), "never measured");
    }
}
