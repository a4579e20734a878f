//! Small pieces every page is written with: escaped text, and times, durations and bit rates
//! as people read them. Everything a provider or a guide named goes through [`Text`].

use std::fmt::{self, Display, Write};
use std::time::{Duration, SystemTime};

use crate::time::{Civil, parse_rfc3339};

/// Text escaped for HTML element content and quoted attribute values.
pub struct Text<'a>(pub &'a str);

impl Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

/// Appends formatted text to a page; writing to a `String` cannot fail.
pub fn push(page: &mut String, args: fmt::Arguments<'_>) {
    let _ = page.write_fmt(args);
}

/// A table of already-escaped cells. On a phone each row reads as a card, each cell after its
/// header (the CSS shows `data-label`), so no table is wider than the screen.
pub fn table(out: &mut String, headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    out.push_str("<table class=\"cards\">\n<thead><tr>");
    for header in headers {
        push(out, format_args!("<th>{}</th>", Text(header)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for (header, cell) in headers.iter().zip(row) {
            push(
                out,
                format_args!("<td data-label=\"{}\">{cell}</td>", Text(header)),
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

/// `2026-12-07 18:04 UTC (5 min ago)` for an RFC 3339 time we stored; the text as it is
/// otherwise.
pub fn when(rfc3339: &str, now: SystemTime) -> String {
    let Some(at) = parse_rfc3339(rfc3339) else {
        return rfc3339.to_string();
    };
    let civil = Civil::from_unix(unix(at));
    let relative = match now.duration_since(at) {
        Ok(ago) => format!("{} ago", span(ago)),
        Err(ahead) => format!("in {}", span(ahead.duration())),
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC ({relative})",
        civil.year, civil.month, civil.day, civil.hour, civil.minute
    )
}

/// A duration to the coarsest unit that still says enough: `45 s`, `12 min`, `3 h 05 min`,
/// `4 days`.
pub fn span(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3_600 => format!("{} min", seconds / 60),
        3_600..172_800 => format!("{} h {:02} min", seconds / 3_600, seconds % 3_600 / 60),
        _ => format!("{} days", seconds / 86_400),
    }
}

/// `4.2 Mbit/s`, `640 kbit/s`.
pub fn bitrate(bits_per_second: u64) -> String {
    if bits_per_second >= 1_000_000 {
        format!("{:.1} Mbit/s", bits_per_second as f64 / 1e6)
    } else {
        format!("{} kbit/s", bits_per_second / 1_000)
    }
}

fn unix(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_special_character_is_escaped() {
        let hostile = r#"<script>alert("x" & 'y')</script>"#;
        assert_eq!(
            Text(hostile).to_string(),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(Text("BBC One – Ünïcode").to_string(), "BBC One – Ünïcode");
        assert_eq!(Text("").to_string(), "");
    }

    #[test]
    fn times_read_as_dates_with_how_long_ago() {
        let now = parse_rfc3339("2026-12-07T18:04:46Z").unwrap();
        assert_eq!(
            when("2026-12-07T17:59:00Z", now),
            "2026-12-07 17:59 UTC (5 min ago)"
        );
        assert_eq!(
            when("2026-12-09T18:04:46Z", now),
            "2026-12-09 18:04 UTC (in 2 days)"
        );
        assert_eq!(when("garbage", now), "garbage");
    }

    #[test]
    fn table_cells_carry_their_header_as_a_label() {
        let mut out = String::new();
        table(
            &mut out,
            &["No.", "Name & co"],
            [vec!["1".into(), "<b>x</b>".into()]],
        );
        assert!(out.contains("<th>Name &amp; co</th>"), "{out}");
        assert!(
            out.contains("<tr><td data-label=\"No.\">1</td><td data-label=\"Name &amp; co\"><b>x</b></td></tr>"),
            "{out}"
        );
    }

    #[test]
    fn spans_and_bit_rates() {
        assert_eq!(span(Duration::from_secs(45)), "45 s");
        assert_eq!(span(Duration::from_secs(720)), "12 min");
        assert_eq!(span(Duration::from_secs(3 * 3600 + 300)), "3 h 05 min");
        assert_eq!(span(Duration::from_secs(4 * 86_400 + 10)), "4 days");
        assert_eq!(bitrate(4_240_000), "4.2 Mbit/s");
        assert_eq!(bitrate(640_500), "640 kbit/s");
    }
}
