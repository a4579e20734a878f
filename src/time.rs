//! UTC calendar time: RFC 3339 timestamps (as stored in the database and printed in events) and
//! the civil date of a Unix time.
//!
//! RFC 3339 goes through humantime. The civil-date conversion stays here: humantime has none, and
//! HTTP dates, XMLTV timestamps and the demo guide need it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 9999-12-31T23:59:59Z, the last second with a four-digit year.
const LAST_SECOND: Duration = Duration::from_secs(253_402_300_799);

/// Formats `t` as RFC 3339 in UTC with whole seconds, e.g. `2026-11-21T21:06:16Z`.
///
/// Times before 1970 or after 9999 are clamped to those bounds: humantime panics beyond them, and
/// no clock we record gets there.
pub fn rfc3339(t: SystemTime) -> String {
    let t = t.clamp(UNIX_EPOCH, UNIX_EPOCH + LAST_SECOND);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Reads back what [`rfc3339`] wrote (`YYYY-MM-DDTHH:MM:SSZ`); `None` for anything else, such as
/// the fractions and `+00:00` humantime would also take. A leap second (`:60`) reads as `:59`.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    if text.len() != 20 || !text.ends_with('Z') {
        return None;
    }
    humantime::parse_rfc3339(text).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date: the inverse of `civil_from_days`.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let shifted_month = (month + 9) % 12; // 0 = March
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A UTC calendar date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
}

impl Civil {
    /// The UTC calendar time of `secs` seconds since the Unix epoch.
    pub fn from_unix(secs: i64) -> Civil {
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let of_day = secs.rem_euclid(86_400);
        Civil {
            year,
            month,
            day,
            hour: of_day / 3600,
            minute: of_day % 3600 / 60,
            second: of_day % 60,
        }
    }
}

/// Proleptic Gregorian (year, month, day) of a count of days since 1970-01-01.
///
/// Howard Hinnant's `civil_from_days`: shifting the year to start on 1 March puts the leap day
/// last, so month lengths follow a fixed pattern and 400-year eras repeat exactly.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097); // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // [0, 399]
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // [0, 365]
    let shifted_month = (5 * day_of_year + 2) / 153; // [0, 11], 0 = March
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> String {
        let t = if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        };
        rfc3339(t)
    }

    #[test]
    fn known_values() {
        // Reference values from `date -u -d @SECONDS`.
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (68_256, "1970-01-01T18:57:36Z"),
            (1_795_295_176, "2026-11-21T21:06:16Z"),
            (1_798_362_376, "2026-12-27T09:06:16Z"),
            (1_735_689_599, "2024-12-31T23:59:59Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
        ];
        for (secs, want) in cases {
            assert_eq!(at(secs), want, "unix time {secs}");
        }
    }

    #[test]
    fn times_outside_four_digit_years_are_clamped() {
        assert_eq!(at(-1), "1970-01-01T00:00:00Z");
        assert_eq!(at(-62_135_596_800), "1970-01-01T00:00:00Z");
        assert_eq!(at(253_402_300_800), "9999-12-31T23:59:59Z");
        assert_eq!(at(i64::MAX / 2), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn parse_reads_back_what_format_writes() {
        for secs in [
            0u64,
            951_782_400,
            1_709_251_199,
            4_107_542_400,
            1_779_397_576,
        ] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t), "{secs}");
        }
        for bad in [
            "",
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01 00:00:00Z",
            "2026-01-01T00:00:00+01:00",
            "2026-0a-01T00:00:00Z",
            "2026-01-01T00:00:00.5Z",
            "2026-01-01T00:00:00+00:00",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn leap_years() {
        // 2000 is a leap year (divisible by 400), 2024 an ordinary one, 2100 is not (by 100).
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(951_868_799), "2000-02-29T23:59:59Z");
        assert_eq!(at(1_709_164_800), "2024-02-29T00:00:00Z");
        assert_eq!(at(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(at(4_107_456_000), "2100-02-28T00:00:00Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn fractions_are_dropped() {
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(1_999)),
            "1970-01-01T00:00:01Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(1_795_295_176_999)),
            "2026-11-21T21:06:16Z"
        );
    }

    #[test]
    fn every_day_round_trips_through_the_calendar() {
        // Walk 1970..2401 day by day and check the calendar advances by exactly one day each time.
        let mut prev = civil_from_days(-1);
        assert_eq!(prev, (1969, 12, 31));
        for days in 0..157_000 {
            let (y, m, d) = civil_from_days(days);
            let next_day = (prev.0, prev.1, prev.2 + 1);
            let next_month = (prev.0, prev.1 + 1, 1);
            let next_year = (prev.0 + 1, 1, 1);
            assert!(
                (y, m, d) == next_day || (y, m, d) == next_month || (y, m, d) == next_year,
                "day {days}: {prev:?} -> {:?}",
                (y, m, d)
            );
            if d == 1 && m == 3 {
                let leap = (prev.0 % 4 == 0 && prev.0 % 100 != 0) || prev.0 % 400 == 0;
                assert_eq!(prev.2, if leap { 29 } else { 28 }, "February {}", prev.0);
            }
            prev = (y, m, d);
        }
    }
}
