//! The bit rate a session takes in, for `/status` and the appliance's page. It is measured only
//! when someone looks: each look leaves a mark (at most one a second), and the rate runs from the
//! newest mark at least [`WINDOW`] old, so the relay path pays nothing for it. Looked at every few
//! seconds (the page does), it is the rate of the last 10 to 15 seconds; looked at after a long
//! while, the rate since the previous look. Pure: the caller passes the time and the byte count.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back the rate reaches at least.
const WINDOW: Duration = Duration::from_secs(10);
/// Looks closer together than this leave no new mark.
const SPACING: Duration = Duration::from_secs(1);
/// Bounds the marks whatever the looks (`WINDOW / SPACING` plus the base, with room).
const MAX_MARKS: usize = 16;

#[derive(Debug)]
pub struct BitRate {
    /// (when, bytes taken in by then), oldest first; never empty.
    marks: VecDeque<(Instant, u64)>,
}

impl BitRate {
    /// Starts counting at `start`, with nothing taken in yet.
    pub fn new(start: Instant) -> BitRate {
        BitRate {
            marks: VecDeque::from([(start, 0)]),
        }
    }

    /// Bits per second up to `now`, when `total_bytes` have come in since the start.
    pub fn observe(&mut self, now: Instant, total_bytes: u64) -> u64 {
        while self
            .marks
            .get(1)
            .is_some_and(|&(at, _)| now.saturating_duration_since(at) >= WINDOW)
        {
            self.marks.pop_front();
        }
        let (since, base) = self.marks[0];
        let elapsed = now.saturating_duration_since(since).as_secs_f64();
        let bits = total_bytes.saturating_sub(base).saturating_mul(8) as f64;
        let rate = if elapsed > 0.0 { bits / elapsed } else { 0.0 };
        let last = self.marks.back().map_or(since, |&(at, _)| at);
        if now.saturating_duration_since(last) >= SPACING {
            if self.marks.len() == MAX_MARKS {
                self.marks.pop_front();
            }
            self.marks.push_back((now, total_bytes));
        }
        rate.round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_first_look_gives_the_average_since_the_start() {
        let start = Instant::now();
        let mut rate = BitRate::new(start);
        assert_eq!(rate.observe(start, 0), 0, "no time has passed");
        assert_eq!(rate.observe(start + 4 * SECOND, 2_000_000), 4_000_000);
    }

    #[test]
    fn regular_looks_follow_a_change_of_rate_within_the_window() {
        let start = Instant::now();
        let mut rate = BitRate::new(start);
        let mut bytes = 0;
        // A minute at 8 Mbit/s, then a backup at 2 Mbit/s; the page looks every 5 s.
        for second in 1..=60u64 {
            bytes += 1_000_000;
            if second % 5 == 0 {
                rate.observe(start + Duration::from_secs(second), bytes);
            }
        }
        assert_eq!(rate.observe(start + 60 * SECOND, bytes), 8_000_000);
        for second in 61..=80u64 {
            bytes += 250_000;
            if second % 5 == 0 {
                rate.observe(start + Duration::from_secs(second), bytes);
            }
        }
        assert_eq!(rate.observe(start + 80 * SECOND, bytes), 2_000_000);
    }

    #[test]
    fn marks_stay_bounded_however_often_it_is_looked_at() {
        let start = Instant::now();
        let mut rate = BitRate::new(start);
        for tenth in 0..10_000u64 {
            rate.observe(start + Duration::from_millis(tenth * 100), tenth * 1000);
            assert!(rate.marks.len() <= MAX_MARKS);
        }
        // 1000 bytes per 100 ms is 80 kbit/s, whatever the spacing of the looks.
        assert_eq!(
            rate.observe(start + Duration::from_millis(10_000 * 100), 10_000 * 1000),
            80_000
        );
    }

    #[test]
    fn a_clock_or_count_going_back_gives_zero_not_a_panic() {
        let start = Instant::now() + 60 * SECOND;
        let mut rate = BitRate::new(start);
        rate.observe(start + 5 * SECOND, 1_000);
        assert_eq!(
            rate.observe(start + 16 * SECOND, 10),
            0,
            "fewer bytes than at the base"
        );
        assert_eq!(rate.observe(start - 30 * SECOND, 10), 0, "before the start");
    }
}
