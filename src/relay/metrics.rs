//! Relay counters for `/metrics` (Prometheus text format): sessions, viewers, bytes, start
//! latency, failovers, splices without a keyframe, refusals, dropped viewers and upstream errors by reason. Plain cells:
//! the relay runs on one thread.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// Upper bounds (seconds) of the start-latency histogram buckets.
const LATENCY_BUCKETS: [f64; 10] = [0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0];

/// What `/metrics` reports as it is now, besides the counters.
#[derive(Debug, Default)]
pub struct Gauges {
    pub sessions: usize,
    pub viewers: usize,
    pub tuners_in_use: u32,
    pub tuners: u32,
    /// A counter kept by the event sink, which lives on another thread.
    pub events_dropped: u64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub sessions_started: Cell<u64>,
    pub bytes_in: Cell<u64>,
    pub bytes_out: Cell<u64>,
    pub failovers: Cell<u64>,
    pub upgrades: Cell<u64>,
    /// Splices (tunes included) that went ahead at a PAT: no random-access point in time.
    pub splices_without_keyframe: Cell<u64>,
    pub refusals: Cell<u64>,
    pub dropped_viewers: Cell<u64>,
    upstream_errors: RefCell<BTreeMap<String, u64>>,
    latency_counts: [Cell<u64>; LATENCY_BUCKETS.len()],
    latency_sum: Cell<f64>,
    latency_count: Cell<u64>,
}

pub fn add(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get().wrapping_add(n));
}

impl Metrics {
    pub fn upstream_error(&self, reason: &str) {
        *self
            .upstream_errors
            .borrow_mut()
            .entry(reason.to_string())
            .or_default() += 1;
    }

    /// Request to first TS byte written to the viewer.
    pub fn start_latency(&self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        for (bound, count) in LATENCY_BUCKETS.iter().zip(&self.latency_counts) {
            if seconds <= *bound {
                add(count, 1);
            }
        }
        self.latency_sum.set(self.latency_sum.get() + seconds);
        add(&self.latency_count, 1);
    }

    /// The Prometheus text exposition, with the current gauges.
    pub fn render(&self, gauges: &Gauges) -> String {
        let &Gauges {
            sessions,
            viewers,
            tuners_in_use,
            tuners,
            events_dropped,
        } = gauges;
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(out, "# HELP streamforge_{name} {help}");
            let _ = writeln!(out, "# TYPE streamforge_{name} {kind}");
            let _ = writeln!(out, "streamforge_{name} {value}");
        };
        metric(
            "sessions",
            "gauge",
            "Channels being relayed now.",
            sessions.to_string(),
        );
        metric(
            "viewers",
            "gauge",
            "Viewers connected now.",
            viewers.to_string(),
        );
        metric(
            "tuners_in_use",
            "gauge",
            "Upstream connections open now.",
            tuners_in_use.to_string(),
        );
        metric(
            "tuners",
            "gauge",
            "Upstream connections allowed by the enabled accounts.",
            tuners.to_string(),
        );
        metric(
            "sessions_started_total",
            "counter",
            "Sessions that started delivering.",
            self.sessions_started.get().to_string(),
        );
        metric(
            "upstream_bytes_total",
            "counter",
            "Bytes received from upstreams and relayed.",
            self.bytes_in.get().to_string(),
        );
        metric(
            "viewer_bytes_total",
            "counter",
            "Bytes written to viewers.",
            self.bytes_out.get().to_string(),
        );
        metric(
            "failovers_total",
            "counter",
            "Mid-stream switches to another stream.",
            self.failovers.get().to_string(),
        );
        metric(
            "upgrades_total",
            "counter",
            "Returns to a better stream.",
            self.upgrades.get().to_string(),
        );
        metric(
            "splices_without_keyframe_total",
            "counter",
            "Splices and tunes that started at a PAT: no keyframe within deadlines.keyframe.",
            self.splices_without_keyframe.get().to_string(),
        );
        metric(
            "refusals_total",
            "counter",
            "Tunes answered 503.",
            self.refusals.get().to_string(),
        );
        metric(
            "dropped_viewers_total",
            "counter",
            "Viewers dropped for falling too far behind.",
            self.dropped_viewers.get().to_string(),
        );
        metric(
            "events_dropped_total",
            "counter",
            "Events and measurements not recorded: the database was slow, full or read-only.",
            events_dropped.to_string(),
        );
        let _ = writeln!(
            out,
            "# HELP streamforge_upstream_errors_total Upstream failures by reason."
        );
        let _ = writeln!(out, "# TYPE streamforge_upstream_errors_total counter");
        for (reason, count) in self.upstream_errors.borrow().iter() {
            let _ = writeln!(
                out,
                "streamforge_upstream_errors_total{{reason=\"{reason}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP streamforge_start_latency_seconds Request to first TS byte at the viewer."
        );
        let _ = writeln!(out, "# TYPE streamforge_start_latency_seconds histogram");
        for (bound, count) in LATENCY_BUCKETS.iter().zip(&self.latency_counts) {
            let _ = writeln!(
                out,
                "streamforge_start_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                count.get()
            );
        }
        let total = self.latency_count.get();
        let _ = writeln!(
            out,
            "streamforge_start_latency_seconds_bucket{{le=\"+Inf\"}} {total}"
        );
        let _ = writeln!(
            out,
            "streamforge_start_latency_seconds_sum {}",
            self.latency_sum.get()
        );
        let _ = writeln!(out, "streamforge_start_latency_seconds_count {total}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_errors_are_labelled() {
        let metrics = Metrics::default();
        metrics.start_latency(Duration::from_millis(30));
        metrics.start_latency(Duration::from_millis(700));
        metrics.upstream_error("Stall");
        metrics.upstream_error("Stall");
        metrics.upstream_error("HttpError(404)");
        let text = metrics.render(&Gauges {
            sessions: 1,
            viewers: 3,
            tuners_in_use: 1,
            tuners: 2,
            events_dropped: 4,
        });
        assert!(text.contains("streamforge_start_latency_seconds_bucket{le=\"0.025\"} 0"));
        assert!(text.contains("streamforge_start_latency_seconds_bucket{le=\"0.05\"} 1"));
        assert!(text.contains("streamforge_start_latency_seconds_bucket{le=\"1\"} 2"));
        assert!(text.contains("streamforge_start_latency_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("streamforge_start_latency_seconds_count 2"));
        assert!(text.contains("streamforge_upstream_errors_total{reason=\"Stall\"} 2"));
        assert!(text.contains("streamforge_upstream_errors_total{reason=\"HttpError(404)\"} 1"));
        assert!(text.contains("streamforge_viewers 3"));
        assert!(text.contains("streamforge_events_dropped_total 4"));
    }
}
