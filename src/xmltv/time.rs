//! XMLTV timestamps: `YYYYMMDDhhmmss +zzzz`, parsed, shifted and formatted.
//!
//! Accepted: 8, 10, 12 or 14 digits (date, then hours, minutes, seconds; missing parts are 0),
//! then optionally a zone: `+hhmm`/`-hhmm` (also `+hh:mm` or `+hh`), with or without spaces
//! before it, or `Z`/`UTC`/`GMT`. No zone means UTC, as the DTD says. Other zone names (`EST`,
//! `BST`) are ambiguous and rejected, as are impossible dates and times (month 13, 30 February,
//! 24:00) and years outside 0001–9999. Output is always the full form with a numeric offset,
//! which is what Jellyfin's and tv_validate_file's patterns require.

use std::fmt;

// Our own calendar arithmetic: humantime reads and writes only UTC RFC 3339, not zoned XMLTV stamps.
use crate::time::{civil_from_days, days_from_civil};

const DAY: i64 = 86_400;

/// A point in time together with the UTC offset it was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct XmltvTime {
    unix: i64,
    offset_minutes: i32,
}

impl XmltvTime {
    /// Parses an XMLTV timestamp; `None` if it is not a valid one.
    pub fn parse(s: &str) -> Option<Self> {
        let s = super::text::trim(s);
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        if !matches!(digits, 8 | 10 | 12 | 14) {
            return None;
        }
        let (number, zone) = s.split_at_checked(digits)?;
        let field = |from: usize, len: usize| -> Option<i64> {
            match number.get(from..from + len) {
                Some(part) => part.parse().ok(),
                None => Some(0),
            }
        };
        let (year, month, day) = (field(0, 4)?, field(4, 2)?, field(6, 2)?);
        let (hour, minute, second) = (field(8, 2)?, field(10, 2)?, field(12, 2)?);
        if !(1..=9999).contains(&year)
            || !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return None;
        }
        let offset_minutes = parse_zone(zone)?;
        let local = days_from_civil(year, month, day) * DAY + hour * 3600 + minute * 60 + second;
        Some(XmltvTime {
            unix: local - i64::from(offset_minutes) * 60,
            offset_minutes,
        })
    }

    /// The time `unix` (seconds since 1970, UTC) written with `offset_minutes` east of UTC;
    /// `None` if the local year leaves 0001–9999 or the offset is not below 24 hours.
    pub fn from_unix(unix: i64, offset_minutes: i32) -> Option<Self> {
        if offset_minutes.abs() >= 24 * 60 {
            return None;
        }
        let local = unix.checked_add(i64::from(offset_minutes) * 60)?;
        let (year, _, _) = civil_from_days(local.div_euclid(DAY));
        (1..=9999).contains(&year).then_some(XmltvTime {
            unix,
            offset_minutes,
        })
    }

    /// Seconds since 1970-01-01 UTC.
    pub fn unix(self) -> i64 {
        self.unix
    }

    /// The offset the time is written in, in minutes east of UTC.
    #[cfg(test)]
    pub fn offset_minutes(self) -> i32 {
        self.offset_minutes
    }

    /// This time moved by `seconds` (negative: earlier), keeping its offset.
    pub fn shifted(self, seconds: i64) -> Option<Self> {
        Self::from_unix(self.unix.checked_add(seconds)?, self.offset_minutes)
    }
}

impl fmt::Display for XmltvTime {
    /// `YYYYMMDDhhmmss +zzzz`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = self.unix + i64::from(self.offset_minutes) * 60;
        let (year, month, day) = civil_from_days(local.div_euclid(DAY));
        let of_day = local.rem_euclid(DAY);
        let sign = if self.offset_minutes < 0 { '-' } else { '+' };
        let offset = self.offset_minutes.unsigned_abs();
        write!(
            f,
            "{year:04}{month:02}{day:02}{:02}{:02}{:02} {sign}{:02}{:02}",
            of_day / 3600,
            of_day % 3600 / 60,
            of_day % 60,
            offset / 60,
            offset % 60
        )
    }
}

/// Minutes east of UTC for what follows the digits.
fn parse_zone(zone: &str) -> Option<i32> {
    let zone = super::text::trim(zone);
    if zone.is_empty()
        || ["Z", "UTC", "GMT"]
            .iter()
            .any(|z| zone.eq_ignore_ascii_case(z))
    {
        return Some(0);
    }
    let (sign, rest) = match zone.split_at_checked(1)? {
        ("+", rest) => (1, rest),
        ("-", rest) => (-1, rest),
        _ => return None,
    };
    let rest = rest.replacen(':', "", 1);
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes) = match rest.len() {
        2 => (rest.parse::<i32>().ok()?, 0),
        4 => (
            rest.get(..2)?.parse::<i32>().ok()?,
            rest.get(2..)?.parse::<i32>().ok()?,
        ),
        _ => return None,
    };
    (hours < 24 && minutes < 60).then_some(sign * (hours * 60 + minutes))
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> XmltvTime {
        XmltvTime::parse(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    #[test]
    fn parses_the_dtd_example() {
        let time = t("19880523083000 +0300");
        assert_eq!(time.unix(), 580_368_600);
        assert_eq!(time.offset_minutes(), 180);
        assert_eq!(time.to_string(), "19880523083000 +0300");
    }

    #[test]
    fn leading_parts_and_zone_spellings() {
        assert_eq!(t("20240301").to_string(), "20240301000000 +0000");
        assert_eq!(t("2024030112").to_string(), "20240301120000 +0000");
        assert_eq!(t("202403011230").to_string(), "20240301123000 +0000");
        assert_eq!(t("20240301123000+0100").to_string(), "20240301123000 +0100");
        assert_eq!(
            t("  20240301123000   -0530 ").to_string(),
            "20240301123000 -0530"
        );
        assert_eq!(
            t("20240301123000 +01:00").to_string(),
            "20240301123000 +0100"
        );
        assert_eq!(t("20240301123000 +01").to_string(), "20240301123000 +0100");
        assert_eq!(
            t("20240301123000 Z").unix(),
            t("20240301123000 +0000").unix()
        );
        assert_eq!(t("20240301123000 UTC").unix(), t("20240301123000").unix());
        // Same instant, different offsets.
        assert_eq!(
            t("20240301123000 +0100").unix(),
            t("20240301113000 +0000").unix()
        );
    }

    #[test]
    fn rejects_bad_timestamps() {
        for bad in [
            "",
            "2024",
            "202403",
            "2024030112300",
            "202403011230000",
            "20241301000000",
            "20240230000000",
            "20230229000000",
            "20240431000000",
            "20240100000000",
            "20240301240000",
            "20240301126000",
            "20240301123060",
            "00000101000000",
            "20240301123000 EST",
            "20240301123000 +2400",
            "20240301123000 +0160",
            "20240301123000 +01000",
            "20240301123000 0100",
            "20240301123000 +0100 x",
            "2024-03-01 12:30",
            "２０２４０３０１",
        ] {
            assert_eq!(XmltvTime::parse(bad), None, "{bad:?} should be rejected");
        }
        assert!(XmltvTime::parse("20240229000000").is_some());
        assert!(XmltvTime::parse("20000229000000").is_some());
        assert!(XmltvTime::parse("19000229000000").is_none());
    }

    #[test]
    fn shift_crosses_midnight_and_month_and_year_ends() {
        let time = t("20240131233000 +0100");
        assert_eq!(
            time.shifted(3600).map(|x| x.to_string()).as_deref(),
            Some("20240201003000 +0100")
        );
        assert_eq!(
            t("20240229230000 +0000")
                .shifted(2 * 3600)
                .map(|x| x.to_string())
                .as_deref(),
            Some("20240301010000 +0000")
        );
        assert_eq!(
            t("20250101003000 -0500")
                .shifted(-3600)
                .map(|x| x.to_string())
                .as_deref(),
            Some("20241231233000 -0500")
        );
        assert_eq!(
            t("20240301000000 +0000")
                .shifted(-1)
                .map(|x| x.to_string())
                .as_deref(),
            Some("20240229235959 +0000")
        );
        assert_eq!(
            t("20240301000000 +0000").shifted(0),
            Some(t("20240301000000 +0000"))
        );
        assert_eq!(t("99991231230000 +0000").shifted(3600), None);
        assert_eq!(t("20240101000000").shifted(i64::MAX), None);
    }

    #[test]
    fn negative_offsets_format_and_compare() {
        let ny = t("20241231200000 -0500");
        assert_eq!(ny.unix(), t("20250101010000 +0000").unix());
        assert_eq!(ny.to_string(), "20241231200000 -0500");
        let st_johns = t("20240101000000 -0330");
        assert_eq!(st_johns.to_string(), "20240101000000 -0330");
        assert_eq!(st_johns.unix(), t("20240101033000").unix());
    }

    #[test]
    fn civil_conversion_round_trips() {
        for days in (-800_000..2_900_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }
}
