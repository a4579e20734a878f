//! The budgets of `config/budgets.toml` (SPEC §8) and the checks of a run against them.

use serde::{Deserialize, Serialize};

use crate::run::{FaultKind, RunResult, Target};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Budgets {
    pub start: Start,
    pub failover: Failover,
    pub cpu: Cpu,
    pub memory: Memory,
    pub soak: Soak,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Soak {
    pub rss_growth_max_mb: f64,
    pub settle_s: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    pub p99_ms: f64,
    pub overhead_p99_ms: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Failover {
    pub drop_gap_p99_ms: f64,
    pub stall_extra_p99_ms: f64,
    pub recovery_min: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    pub shared_max_ratio: f64,
    pub unshared_max_ratio: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    pub rss_max_mb: f64,
    pub rss_max_channels: usize,
    pub rss_max_viewers: usize,
}

pub fn load(path: &std::path::Path) -> Result<Budgets, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// One budget checked against one figure.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub scenario: String,
    pub what: String,
    pub value: Option<f64>,
    /// `<= limit` unless `at_least`.
    pub limit: f64,
    pub at_least: bool,
    pub unit: &'static str,
    pub pass: bool,
}

fn check(scenario: &str, what: &str, value: Option<f64>, limit: f64, unit: &'static str) -> Check {
    Check {
        scenario: scenario.to_owned(),
        what: what.to_owned(),
        value,
        limit,
        at_least: false,
        unit,
        pass: value.is_some_and(|v| v <= limit),
    }
}

/// The budgets that apply to one streamforge run.
pub fn run_checks(b: &Budgets, r: &RunResult) -> Vec<Check> {
    let Some(spec) = &r.spec else {
        return Vec::new();
    };
    let s = spec.scenario.as_str();
    if let Some(error) = &r.error {
        return vec![Check {
            scenario: s.to_owned(),
            what: format!("run completed ({error})"),
            value: None,
            limit: 0.0,
            at_least: false,
            unit: "",
            pass: false,
        }];
    }
    if spec.target != Target::Streamforge {
        return Vec::new();
    }
    let mut out = vec![
        check(
            s,
            "tunes failed",
            Some(r.failed_tunes.len() as f64),
            0.0,
            "",
        ),
        check(
            s,
            "responses ended early",
            Some(r.ended_early.len() as f64),
            0.0,
            "",
        ),
        check(
            s,
            "start p99, cold (NFR1)",
            r.start_cold_ms.p99,
            b.start.p99_ms,
            "ms",
        ),
        check(
            s,
            &format!("viewers failing the byte check ({})", r.integrity.mode),
            Some((r.integrity.viewers - r.integrity.passed) as f64),
            0.0,
            "",
        ),
    ];
    if spec.viewers > 1 {
        out.push(check(
            s,
            "start p99, join (NFR1)",
            r.start_join_ms.p99,
            b.start.p99_ms,
            "ms",
        ));
    }
    if !spec.dead_primary {
        out.push(check(
            s,
            "own overhead: start p99, cold",
            r.start_cold_ms.p99,
            b.start.overhead_p99_ms,
            "ms",
        ));
        if spec.viewers > 1 {
            out.push(check(
                s,
                "own overhead: start p99, join",
                r.start_join_ms.p99,
                b.start.overhead_p99_ms,
                "ms",
            ));
        }
    }
    if spec.channels <= b.memory.rss_max_channels
        && spec.channels * spec.viewers <= b.memory.rss_max_viewers
    {
        out.push(check(
            s,
            "peak RSS",
            Some(r.memory.peak_rss_mb),
            b.memory.rss_max_mb,
            "MB",
        ));
    }
    if let Some(f) = &r.failover {
        let (what, limit) = match f.kind {
            Some(FaultKind::Stall) => (
                "failover gap p99, stalls (NFR2)",
                spec.stall_s.unwrap_or(5.0) * 1000.0 + b.failover.stall_extra_p99_ms,
            ),
            _ => ("failover gap p99, drops (NFR2)", b.failover.drop_gap_p99_ms),
        };
        out.push(check(s, what, f.viewer_gap_ms.p99, limit, "ms"));
        out.push(Check {
            scenario: s.to_owned(),
            what: "recovery rate (NFR11)".into(),
            value: f.recovery_rate,
            limit: b.failover.recovery_min,
            at_least: true,
            unit: "",
            pass: f
                .recovery_rate
                .is_some_and(|v| v >= b.failover.recovery_min),
        });
    }
    out
}

/// The CPU budget of a comparison: streamforge's s/GB ÷ nginx's.
pub fn ratio_check(b: &Budgets, scenario: &str, load: &str, ratio: Option<f64>) -> Check {
    let limit = match load {
        "shared" => b.cpu.shared_max_ratio,
        _ => b.cpu.unshared_max_ratio,
    };
    check(
        scenario,
        &format!("CPU s/GB vs nginx, {load} load (NFR7)"),
        ratio,
        limit,
        "x",
    )
}
