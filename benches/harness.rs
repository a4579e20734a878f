//! The benchmark harness (SPEC §8): "how fast is it".
//!
//! It runs the real release binary `streamforge serve` against the fake provider's paced MPEG-TS
//! (N channels × R Mbit/s, each with a primary and a backup stream) and V viewers per channel, all
//! on loopback, and measures from outside: CPU (utime + stime from /proc) as % of one core and as
//! CPU-seconds per GB delivered, peak RSS, start latency (cold and joining), byte integrity,
//! failover gaps and recovery under injected faults, and, with `--compare nginx`, the same load
//! through nginx `proxy_pass` (the budget's yardstick) and through `relay-floor` (the least this
//! design can spend: benches/harness/relay_floor.rs). It writes a JSON report and a table and exits 1 when a budget of
//! `config/budgets.toml` is exceeded.
//!
//!     cargo bench --bench harness -- --all                # the standard suite (scripts/bench.sh)
//!     cargo bench --bench harness -- --scenario failover-drop
//!     cargo bench --bench harness -- --channels 10 --viewers 5 --mbps 20 --compare nginx
//!     cargo bench --bench harness -- --self-test          # the viewers' stream check, checked
//!     cargo bench --bench harness -- --soak-minutes 30    # the soak run (scripts/soak.sh)
//!
//! Plain Rust, std threads and Linux /proc: it runs on a Raspberry Pi as well.

#[path = "harness/budget.rs"]
mod budget;
#[path = "harness/procfs.rs"]
mod procfs;
#[path = "harness/run.rs"]
mod run;
#[path = "harness/setup.rs"]
mod setup;
#[path = "harness/soak.rs"]
mod soak;
#[path = "harness/soak_load.rs"]
mod soak_load;
#[path = "harness/stats.rs"]
mod stats;
#[path = "harness/viewer.rs"]
mod viewer;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};

use budget::{Budgets, Check};
use run::{FaultKind, RunResult, RunSpec, Target};

#[derive(Parser, Debug)]
#[command(
    name = "harness",
    about = "StreamForge benchmark harness: the relay under paced loopback load, against the SPEC §8 budgets"
)]
struct Args {
    /// Run the standard suite (every budget scenario and both nginx comparisons).
    #[arg(long)]
    all: bool,
    /// Run these suite scenarios (repeatable; see --list).
    #[arg(long)]
    scenario: Vec<String>,
    /// List the suite's scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Check the viewers' stream check on made-up spliced streams and exit.
    #[arg(long)]
    self_test: bool,
    /// Channels (custom run).
    #[arg(long, default_value_t = 10)]
    channels: usize,
    /// Viewers per channel (custom run).
    #[arg(long, default_value_t = 3)]
    viewers: usize,
    /// Bitrate of every stream, Mbit/s (custom run).
    #[arg(long, default_value_t = 20.0)]
    mbps: f64,
    /// Seconds of steady state measured, after every viewer is in. Overrides the scenarios' own.
    #[arg(long)]
    duration: Option<f64>,
    /// Inject this fault into every primary (custom run).
    #[arg(long, value_enum)]
    fault: Option<FaultKind>,
    /// Each primary connection fails after this many seconds of data.
    #[arg(long, default_value_t = 5.0)]
    every: f64,
    /// deadlines.upgrade_interval for fault runs, seconds.
    #[arg(long, default_value_t = 3.0)]
    upgrade_interval: f64,
    /// deadlines.stall, seconds (default: the product's 5 s).
    #[arg(long)]
    stall: Option<f64>,
    /// Primaries dead at tune time (404, refused, no headers) (custom run).
    #[arg(long)]
    dead_primary: bool,
    /// Run the same load through nginx and the floor too (`nginx`), alternating, and print the
    /// CPU ratios.
    #[arg(long)]
    compare: Option<String>,
    /// Rounds of (streamforge, nginx, floor) in a comparison.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Where to write the JSON report.
    #[arg(long, default_value = "target/bench-report.json")]
    report: PathBuf,
    /// The budgets file.
    #[arg(long, default_value = "config/budgets.toml")]
    budgets: PathBuf,
    /// The `streamforge` binary under test (default: the one cargo built with this harness).
    #[arg(long, env = "STREAMFORGE_BENCH_BIN", default_value = env!("CARGO_BIN_EXE_streamforge"))]
    binary: PathBuf,
    /// Run the soak for this many minutes instead (benches/harness/soak.rs; scripts/soak.sh).
    #[arg(long)]
    soak_minutes: Option<f64>,
    /// The soak's random seed (default: from the clock; the run prints it).
    #[arg(long)]
    soak_seed: Option<u64>,
    /// Where the soak writes its JSON report.
    #[arg(long, default_value = "target/soak-report.json")]
    soak_report: PathBuf,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// One item of a plan: a single run, or a comparison with nginx and the floor.
#[derive(Clone, Debug)]
enum Plan {
    Single(RunSpec),
    Compare {
        load: &'static str,
        spec: RunSpec,
        rounds: usize,
    },
}

impl Plan {
    fn time_bound(&self) -> Duration {
        match self {
            Plan::Single(spec) => spec.time_bound(),
            Plan::Compare { spec, rounds, .. } => spec.time_bound() * 2 * *rounds as u32,
        }
    }
}

fn base(scenario: &str, channels: usize, viewers: usize, mbps: f64, duration_s: f64) -> RunSpec {
    RunSpec {
        scenario: scenario.to_owned(),
        target: Target::Streamforge,
        channels,
        viewers,
        mbps,
        duration_s,
        fault: None,
        every_s: 3.0,
        dead_primary: false,
        redirect: true,
        upgrade_interval_s: 2.0,
        stall_s: None,
        stagger_ms: 20,
        binary: PathBuf::new(),
    }
}

/// The standard suite: one scenario per budget of SPEC §8.
fn suite() -> Vec<(&'static str, &'static str, Plan)> {
    vec![
        (
            "steady",
            "10 ch x 3 viewers x 20 Mbit/s: byte integrity, start overhead, CPU, peak RSS",
            Plan::Single(base("steady", 10, 3, 20.0, 20.0)),
        ),
        (
            "start",
            "40 ch x 2 viewers x 4 Mbit/s, tuned 50 ms apart: start latency with more samples",
            Plan::Single(RunSpec {
                stagger_ms: 50,
                ..base("start", 40, 2, 4.0, 5.0)
            }),
        ),
        (
            "dead-primary",
            "30 ch x 2 x 4 Mbit/s, every primary dead at tune time (404 / refused / silent): start p99 < 3 s",
            Plan::Single(RunSpec {
                stagger_ms: 50,
                dead_primary: true,
                ..base("dead-primary", 30, 2, 4.0, 5.0)
            }),
        ),
        (
            "failover-drop",
            "10 ch x 2 x 4 Mbit/s, each primary connection drops after 3 s; upgrade_interval 2 s",
            Plan::Single(RunSpec {
                fault: Some(FaultKind::Drop),
                ..base("failover-drop", 10, 2, 4.0, 30.0)
            }),
        ),
        (
            "failover-stall",
            "10 ch x 2 x 4 Mbit/s, each primary connection stalls after 3 s; stall 2 s, upgrade_interval 2 s",
            Plan::Single(RunSpec {
                fault: Some(FaultKind::Stall),
                stall_s: Some(2.0),
                ..base("failover-stall", 10, 2, 4.0, 30.0)
            }),
        ),
        (
            "compare-shared",
            "shared load 10 ch x 5 x 20 Mbit/s, streamforge vs nginx alternating, no redirects",
            Plan::Compare {
                load: "shared",
                spec: RunSpec {
                    redirect: false,
                    ..base("compare-shared", 10, 5, 20.0, 20.0)
                },
                rounds: 3,
            },
        ),
        (
            "compare-unshared",
            "unshared load 20 ch x 1 x 20 Mbit/s, streamforge vs nginx alternating, no redirects",
            Plan::Compare {
                load: "unshared",
                spec: RunSpec {
                    redirect: false,
                    ..base("compare-unshared", 20, 1, 20.0, 20.0)
                },
                rounds: 3,
            },
        ),
    ]
}

fn plan(args: &Args) -> Result<Vec<Plan>, String> {
    let mut plans: Vec<Plan> = if args.all {
        suite().into_iter().map(|(_, _, p)| p).collect()
    } else if !args.scenario.is_empty() {
        let all = suite();
        args.scenario
            .iter()
            .map(|name| {
                all.iter()
                    .find(|(n, _, _)| n == name)
                    .map(|(_, _, p)| p.clone())
                    .ok_or_else(|| format!("no scenario {name:?} (see --list)"))
            })
            .collect::<Result<_, _>>()?
    } else {
        let spec = RunSpec {
            fault: args.fault,
            every_s: args.every,
            upgrade_interval_s: args.upgrade_interval,
            stall_s: args.stall,
            dead_primary: args.dead_primary,
            redirect: args.compare.is_none(),
            ..base("custom", args.channels, args.viewers, args.mbps, 20.0)
        };
        match args.compare.as_deref() {
            None => vec![Plan::Single(spec)],
            Some("nginx") => vec![Plan::Compare {
                load: if args.viewers > 1 {
                    "shared"
                } else {
                    "unshared"
                },
                spec,
                rounds: args.rounds,
            }],
            Some(other) => return Err(format!("--compare {other}: only nginx is known")),
        }
    };
    for p in &mut plans {
        let spec = match p {
            Plan::Single(spec) => spec,
            Plan::Compare { spec, rounds, .. } => {
                if args.rounds != 2 {
                    *rounds = args.rounds.max(1);
                }
                spec
            }
        };
        if let Some(d) = args.duration {
            spec.duration_s = d;
        }
        spec.binary = args.binary.clone();
        if spec.fault.is_some() && spec.every_s < 2.0 {
            return Err(
                "--every must be at least 2 s (viewers join before the first fault)".into(),
            );
        }
    }
    Ok(plans)
}

/// A comparison's figures: streamforge against nginx (the budget) and against the floor.
struct Comparison {
    scenario: String,
    load: &'static str,
    runs: Vec<RunResult>,
    /// streamforge ÷ nginx, of the medians.
    ratio: Option<f64>,
    per_round: Vec<Option<f64>>,
    /// streamforge ÷ floor, of the medians: how close to the limit of this design.
    floor_ratio: Option<f64>,
    floor_per_round: Vec<Option<f64>>,
}

fn s_per_gb(runs: &[RunResult], target: Target) -> Vec<f64> {
    runs.iter()
        .filter(|r| r.spec.as_ref().is_some_and(|s| s.target == target) && r.error.is_none())
        .filter_map(|r| r.cpu.s_per_gb)
        .collect()
}

/// `a ÷ b` of two runs' CPU per GB, when both ran cleanly.
fn run_ratio(a: &RunResult, b: &RunResult) -> Option<f64> {
    match (a.cpu.s_per_gb, b.cpu.s_per_gb) {
        (Some(a_s), Some(b_s)) if b_s > 0.0 && a.error.is_none() && b.error.is_none() => {
            Some(a_s / b_s)
        }
        _ => None,
    }
}

fn median_ratio(runs: &[RunResult], of: Target, to: Target) -> Option<f64> {
    match (
        stats::median(&s_per_gb(runs, of)),
        stats::median(&s_per_gb(runs, to)),
    ) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// Rounds of streamforge, nginx and the floor on the same load, one after another.
fn compare(load: &'static str, spec: &RunSpec, rounds: usize) -> Comparison {
    let mut runs = Vec::new();
    let mut per_round = Vec::new();
    let mut floor_per_round = Vec::new();
    for round in 0..rounds {
        let mut trio = Vec::new();
        for target in [Target::Streamforge, Target::Nginx, Target::Floor] {
            let spec = RunSpec {
                target,
                ..spec.clone()
            };
            eprintln!(
                "bench: {} round {}/{rounds}: {} {} for {} s",
                spec.scenario,
                round + 1,
                target.name(),
                spec.load(),
                spec.duration_s
            );
            let result = run::run(&spec);
            report_progress(&result);
            trio.push(result);
        }
        per_round.push(run_ratio(&trio[0], &trio[1]));
        floor_per_round.push(run_ratio(&trio[0], &trio[2]));
        runs.extend(trio);
    }
    Comparison {
        scenario: spec.scenario.clone(),
        load,
        ratio: median_ratio(&runs, Target::Streamforge, Target::Nginx),
        floor_ratio: median_ratio(&runs, Target::Streamforge, Target::Floor),
        runs,
        per_round,
        floor_per_round,
    }
}

fn report_progress(r: &RunResult) {
    match &r.error {
        Some(e) => eprintln!("bench:   failed: {e}"),
        None => eprintln!(
            "bench:   {:.0} Mbit/s out, CPU {:.1}% of a core, {:.3} s/GB, peak RSS {:.1} MB, start cold p99 {} ms",
            r.delivered_mbps,
            r.cpu.percent_core,
            r.cpu.s_per_gb.unwrap_or(f64::NAN),
            r.memory.peak_rss_mb,
            r.start_cold_ms
                .p99
                .map_or("-".into(), |v| format!("{v:.0}"))
        ),
    }
}

fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

fn print_tables(runs: &[&RunResult], comparisons: &[Comparison], checks: &[Check]) {
    println!();
    println!(
        "| scenario | relay | load (ch x viewers x Mbit/s) | out Mbit/s | CPU % core | CPU s/GB | peak RSS MB | start cold p50/p99 ms | join p50/p99 ms | bytes check | failover gap p50/p99 ms | recovery |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in runs {
        let Some(spec) = &r.spec else { continue };
        if let Some(e) = &r.error {
            println!(
                "| {} | {:?} | {} | error: {e} |",
                spec.scenario,
                spec.target,
                spec.load()
            );
            continue;
        }
        let (gap, recovery) = match &r.failover {
            Some(f) => (
                format!(
                    "{} ({:?}; server {})",
                    stats::cell(&f.viewer_gap_ms),
                    f.kind.unwrap_or(FaultKind::Drop),
                    stats::cell(&f.server_gap_ms)
                ),
                format!(
                    "{} ({}/{})",
                    fmt_opt(f.recovery_rate.map(|v| v * 100.0), 1) + "%",
                    f.server_failovers,
                    f.injected
                ),
            ),
            None => ("-".into(), "-".into()),
        };
        // Splices seen by the viewers against their channels' failover and upgrade events.
        let splices = match &r.failover {
            Some(f) if f.unmatched_viewers > 0 => format!(
                ", {}/{} splices, {} viewers off",
                f.viewer_splices, f.expected_splices, f.unmatched_viewers
            ),
            Some(f) => format!(", {}/{} splices", f.viewer_splices, f.expected_splices),
            None => String::new(),
        };
        println!(
            "| {} | {} | {} | {:.0} ({:.0}%) | {:.1} | {} | {:.1} | {} | {} | {}/{} {}{} | {} | {} |",
            spec.scenario,
            spec.target.name(),
            spec.load(),
            r.delivered_mbps,
            r.delivered_ratio * 100.0,
            r.cpu.percent_core,
            fmt_opt(r.cpu.s_per_gb, 3),
            r.memory.peak_rss_mb,
            stats::cell(&r.start_cold_ms),
            stats::cell(&r.start_join_ms),
            r.integrity.passed,
            r.integrity.viewers,
            r.integrity.mode,
            splices,
            gap,
            recovery
        );
    }
    if !comparisons.is_empty() {
        println!();
        println!(
            "| comparison | streamforge s/GB | nginx s/GB | floor s/GB | ÷ nginx (medians) | per round | ÷ floor (medians) | per round |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        for c in comparisons {
            let list = |t| {
                s_per_gb(&c.runs, t)
                    .iter()
                    .map(|v| format!("{v:.3}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let rounds = |r: &[Option<f64>]| {
                r.iter()
                    .map(|r| fmt_opt(*r, 2))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!(
                "| {} ({}) | {} | {} | {} | {} | {} | {} | {} |",
                c.scenario,
                c.load,
                list(Target::Streamforge),
                list(Target::Nginx),
                list(Target::Floor),
                fmt_opt(c.ratio, 2),
                rounds(&c.per_round),
                fmt_opt(c.floor_ratio, 2),
                rounds(&c.floor_per_round),
            );
        }
    }
    println!();
    println!("| scenario | budget | figure | limit | verdict |");
    println!("|---|---|---|---|---|");
    for c in checks {
        println!(
            "| {} | {} | {} {} | {}{} {} | {} |",
            c.scenario,
            c.what,
            fmt_opt(
                c.value,
                if c.unit == "x" || c.unit.is_empty() {
                    2
                } else {
                    1
                }
            ),
            c.unit,
            if c.at_least { ">= " } else { "<= " },
            c.limit,
            c.unit,
            if c.pass { "pass" } else { "FAIL" }
        );
    }
}

/// The soak run, under a watchdog of its length plus five minutes.
fn run_soak(args: &Args, minutes: f64, budgets: &Budgets) -> ExitCode {
    let seed = args.soak_seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let bound = Duration::from_secs_f64(minutes * 60.0 + 300.0);
    std::thread::spawn(move || {
        std::thread::sleep(bound);
        eprintln!("soak: still running after {bound:?}: giving up");
        setup::kill_all_children();
        std::process::exit(3);
    });
    let spec = soak::SoakSpec {
        minutes,
        seed,
        channels: 10,
        mbps: 2.0,
        max_guests: 20,
        binary: args.binary.clone(),
        report: args.soak_report.clone(),
    };
    match soak::run(&spec, budgets) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: could not run: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for (name, what, _) in suite() {
            println!("{name:18} {what}");
        }
        return ExitCode::SUCCESS;
    }
    if args.self_test {
        let (passed, failed) = viewer::self_test::run();
        for name in &failed {
            println!("FAILED {name}");
        }
        println!("self-test: {passed} passed, {} failed", failed.len());
        return if failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let budgets: Budgets = match budget::load(&args.budgets) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(minutes) = args.soak_minutes {
        if minutes < 2.0 {
            // RSS growth compares the first and the last minute.
            eprintln!("soak: --soak-minutes must be at least 2");
            return ExitCode::from(2);
        }
        return run_soak(&args, minutes, &budgets);
    }
    let plans = match plan(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    // Everything is bounded: past this the children are killed and the harness exits.
    let bound: Duration =
        plans.iter().map(Plan::time_bound).sum::<Duration>() + Duration::from_secs(60);
    std::thread::spawn(move || {
        std::thread::sleep(bound);
        eprintln!("bench: still running after {bound:?}: giving up");
        setup::kill_all_children();
        std::process::exit(3);
    });
    let started = run::now_rfc3339();
    let clock = Instant::now();
    let mut singles = Vec::new();
    let mut comparisons = Vec::new();
    for p in &plans {
        match p {
            Plan::Single(spec) => {
                eprintln!(
                    "bench: {}: {} for {} s",
                    spec.scenario,
                    spec.load(),
                    spec.duration_s
                );
                let result = run::run(spec);
                report_progress(&result);
                singles.push(result);
            }
            Plan::Compare { load, spec, rounds } => comparisons.push(compare(load, spec, *rounds)),
        }
    }
    let mut checks = Vec::new();
    for r in singles
        .iter()
        .chain(comparisons.iter().flat_map(|c| c.runs.iter()))
    {
        checks.extend(budget::run_checks(&budgets, r));
    }
    for c in &comparisons {
        checks.push(budget::ratio_check(&budgets, &c.scenario, c.load, c.ratio));
    }
    let pass = checks.iter().all(|c| c.pass);
    let all_runs: Vec<&RunResult> = singles
        .iter()
        .chain(comparisons.iter().flat_map(|c| c.runs.iter()))
        .collect();
    let report = json!({
        "tool": "streamforge benches/harness.rs",
        "started": started,
        "seconds": clock.elapsed().as_secs(),
        "command": std::env::args().filter(|a| a != "--bench").collect::<Vec<_>>(),
        "machine": procfs::machine(),
        "budgets": budgets,
        "runs": all_runs.iter().map(|r| run::to_json(r)).collect::<Vec<Value>>(),
        "comparisons": comparisons.iter().map(|c| json!({
            "scenario": c.scenario,
            "load": c.load,
            "streamforge_s_per_gb": s_per_gb(&c.runs, Target::Streamforge),
            "nginx_s_per_gb": s_per_gb(&c.runs, Target::Nginx),
            "floor_s_per_gb": s_per_gb(&c.runs, Target::Floor),
            "ratio_of_medians": c.ratio,
            "ratio_per_round": c.per_round,
            "floor_ratio_of_medians": c.floor_ratio,
            "floor_ratio_per_round": c.floor_per_round,
        })).collect::<Vec<_>>(),
        "checks": checks,
        "pass": pass,
    });
    if let Some(dir) = args.report.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match serde_json::to_string_pretty(&report) {
        Ok(text) => {
            if let Err(e) = std::fs::write(&args.report, text) {
                eprintln!("bench: writing {}: {e}", args.report.display());
            }
        }
        Err(e) => eprintln!("bench: report: {e}"),
    }
    print_tables(&all_runs, &comparisons, &checks);
    println!();
    println!(
        "{} in {} s; report: {}",
        if pass {
            "all budgets met"
        } else {
            "BUDGETS EXCEEDED"
        },
        clock.elapsed().as_secs(),
        args.report.display()
    );
    if pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
