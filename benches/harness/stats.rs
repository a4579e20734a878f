//! Percentiles (nearest rank) of millisecond samples.

use serde::Serialize;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub n: usize,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

/// The nearest-rank percentile `p` (0–100) of sorted samples.
fn nearest_rank(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

pub fn summarize(samples: &[f64]) -> Summary {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let round = |v: Option<f64>| v.map(|v| (v * 10.0).round() / 10.0);
    Summary {
        n: sorted.len(),
        p50: round(nearest_rank(&sorted, 50.0)),
        p99: round(nearest_rank(&sorted, 99.0)),
        max: round(sorted.last().copied()),
    }
}

pub fn median(samples: &[f64]) -> Option<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// `p50/p99` for a table cell.
pub fn cell(s: &Summary) -> String {
    match (s.p50, s.p99) {
        (Some(a), Some(b)) => format!("{a:.0}/{b:.0}"),
        _ => "-".into(),
    }
}
