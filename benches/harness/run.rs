//! One run: a relay (streamforge, nginx or the floor) under N channels × V viewers × R Mbit/s, optionally
//! with faults, measured from the viewers' side and from /proc.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde_json::{Value, json};
use streamforge::fake_provider::{FakeProvider, Fault, RedirectStyle};
use streamforge::store::Store;

use crate::procfs;
use crate::setup::{self, BenchChannel, PASSWORD, USER};
use crate::stats::{Summary, summarize};
use crate::viewer::{PAUSE_NOTED, Viewer, ViewerResult, ViewerSpec};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Streamforge,
    Nginx,
    /// `relay-floor`: the least this design can spend (benches/harness/relay_floor.rs).
    Floor,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Streamforge => "streamforge",
            Target::Nginx => "nginx",
            Target::Floor => "floor",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    Drop,
    Stall,
}

/// What to run.
#[derive(Clone, Debug, Serialize)]
pub struct RunSpec {
    pub scenario: String,
    pub target: Target,
    pub channels: usize,
    pub viewers: usize,
    pub mbps: f64,
    /// The steady window measured, after every viewer is in.
    pub duration_s: f64,
    pub fault: Option<FaultKind>,
    /// Each primary connection fails after this many seconds of data.
    pub every_s: f64,
    /// Primaries dead at tune time (404, refused, or no headers) on every channel.
    pub dead_primary: bool,
    /// The provider redirects `/live/…` to a token URL (as real panels do); off for comparisons.
    pub redirect: bool,
    pub upgrade_interval_s: f64,
    /// `deadlines.stall` when set (documented per scenario).
    pub stall_s: Option<f64>,
    /// Pause between the cold tunes of successive channels.
    pub stagger_ms: u64,
    /// The `streamforge` binary under test.
    pub binary: std::path::PathBuf,
}

impl RunSpec {
    pub fn load(&self) -> String {
        format!("{}x{}x{}M", self.channels, self.viewers, self.mbps)
    }

    /// An upper bound of the run's wall time, for the watchdog.
    pub fn time_bound(&self) -> Duration {
        let settle = if self.fault.is_some() {
            self.every_s + self.stall_s.unwrap_or(5.0) + 4.0
        } else {
            0.0
        };
        Duration::from_secs_f64(
            self.duration_s
                + settle
                + 90.0
                + self.channels as f64 * self.stagger_ms as f64 / 1000.0,
        )
    }

    /// The streamforge config of this run.
    fn config(&self) -> String {
        let mut deadlines = vec!["linger = \"1s\"".to_owned()];
        if self.fault.is_some() {
            deadlines.push(format!(
                "upgrade_interval = \"{}ms\"",
                (self.upgrade_interval_s * 1000.0) as u64
            ));
        }
        if let Some(stall) = self.stall_s {
            deadlines.push(format!("stall = \"{}ms\"", (stall * 1000.0) as u64));
        }
        format!("[deadlines]\n{}\n", deadlines.join("\n"))
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Cpu {
    pub seconds: f64,
    pub percent_core: f64,
    pub s_per_gb: Option<f64>,
    /// The harness itself (fake provider and viewers), for context: it shares the machine.
    pub harness_percent_core: f64,
    /// The whole machine's busy share over the window.
    pub machine_busy_percent: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Memory {
    /// Peak resident set (VmHWM; nginx: summed over master and workers), MB.
    pub peak_rss_mb: f64,
    /// Resident set at the end of the window (VmRSS), MB, and its anonymous (heap) and
    /// file-backed (binary, libraries) parts.
    pub end_rss_mb: f64,
    pub end_anon_mb: f64,
    pub end_file_mb: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Integrity {
    /// `exact` (no fault: one contiguous piece of the provider's stream) or `pieces` (faults:
    /// pieces of the stream joined at splices, 188-aligned; the first exact, the later ones as
    /// the relay rewrites a spliced-in source, compared masked).
    pub mode: &'static str,
    pub viewers: usize,
    pub passed: usize,
    pub failures: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Failover {
    pub kind: Option<FaultKind>,
    /// Injected failures of a primary (the provider's count of bodies cut by the fault).
    pub injected: u64,
    /// `streamforge_failovers_total`.
    pub server_failovers: u64,
    pub server_upgrades: u64,
    pub upstream_errors: BTreeMap<String, u64>,
    pub events_failover: u64,
    pub events_budget_missed: u64,
    pub events_exhausted: u64,
    pub recovery_rate: Option<f64>,
    /// Viewer side: the pause before the first byte of the new source, per failover and viewer.
    pub viewer_gap_ms: Summary,
    /// Same for the returns to the primary.
    pub upgrade_gap_ms: Summary,
    /// The server's own `gap_ms` of its failover events (failure noticed → new source delivering).
    pub server_gap_ms: Summary,
    pub viewer_splices: u64,
    /// The splices the viewers should have seen: their channel's failover and upgrade events.
    pub expected_splices: u64,
    /// Viewers whose splices did not line up one-to-one with their channel's failover/upgrade events.
    pub unmatched_viewers: usize,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RunResult {
    pub spec: Option<RunSpec>,
    pub error: Option<String>,
    pub window_s: f64,
    pub bytes: u64,
    pub delivered_mbps: f64,
    /// Delivered ÷ (channels × viewers × Mbit/s × window).
    pub delivered_ratio: f64,
    pub cpu: Cpu,
    pub memory: Memory,
    pub start_cold_ms: Summary,
    pub start_join_ms: Summary,
    pub failed_tunes: Vec<String>,
    pub ended_early: Vec<String>,
    /// Longest pause between arrivals over all viewers (ms), and pauses over 150 ms.
    pub max_pause_ms: f64,
    pub pauses_over_150ms: usize,
    pub integrity: Integrity,
    pub failover: Option<Failover>,
    pub metrics: BTreeMap<String, f64>,
}

/// The processes whose CPU counts: streamforge or the floor, or nginx's master and workers.
fn tree(pid: u32, target: Target) -> Vec<u32> {
    let mut pids = vec![pid];
    if target == Target::Nginx {
        pids.extend(procfs::children(pid));
    }
    pids
}

fn cpu_of(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|&p| procfs::cpu_seconds(p)).sum()
}

fn bytes_of(viewers: &[Viewer]) -> u64 {
    viewers
        .iter()
        .map(|v| v.live.bytes.load(Ordering::Relaxed))
        .sum()
}

/// Waits (bounded) until every viewer got its first byte or gave up.
fn wait_settled(viewers: &[Viewer], limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline
        && !viewers
            .iter()
            .all(|v| v.live.settled.load(Ordering::SeqCst))
    {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Arms the provider's faults for this run.
fn arm_faults(spec: &RunSpec, provider: &FakeProvider, channels: &[BenchChannel]) {
    if let Some(kind) = spec.fault {
        let bytes = (spec.every_s * spec.mbps * 1e6 / 8.0) as usize / 188 * 188;
        let fault = match kind {
            FaultKind::Drop => Fault::DropAfter(bytes),
            FaultKind::Stall => Fault::StallAfter(bytes),
        };
        for c in channels {
            provider.set_stream_fault(c.primary, fault, None);
        }
    }
    if spec.dead_primary {
        for (i, c) in channels.iter().enumerate() {
            let fault = match i % 3 {
                0 => Fault::Status(404),
                1 => Fault::Refuse,
                // Accepts and never answers: the connect deadline (1 s) has to notice.
                _ => Fault::SlowHeaders(Duration::from_secs(30)),
            };
            provider.set_stream_fault(c.primary, fault, None);
        }
    }
}

pub fn run(spec: &RunSpec) -> RunResult {
    match run_inner(spec) {
        Ok(result) => result,
        Err(error) => RunResult {
            spec: Some(spec.clone()),
            error: Some(error),
            ..RunResult::default()
        },
    }
}

fn run_inner(spec: &RunSpec) -> Result<RunResult, String> {
    if spec.target != Target::Streamforge && (spec.fault.is_some() || spec.dead_primary) {
        return Err("only streamforge fails over: faults are for streamforge runs".into());
    }
    let channels = setup::channels(spec.channels);
    let redirect = match spec.redirect {
        true => RedirectStyle::Absolute,
        false => RedirectStyle::None,
    };
    let provider = setup::provider(&channels, (spec.mbps * 1e6) as u64, redirect)?;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let data_dir = tmp.path().join("data");
    let (mut child, addr) = match spec.target {
        Target::Streamforge => {
            setup::prepare_data_dir(&data_dir, &provider, &channels)?;
            let config = tmp.path().join("streamforge.toml");
            std::fs::write(&config, spec.config()).map_err(|e| e.to_string())?;
            setup::start_streamforge(&spec.binary, &config, &data_dir)?
        }
        Target::Nginx => setup::start_nginx(&tmp.path().join("nginx"), provider.http_addr())?,
        Target::Floor => setup::start_floor(provider.http_addr())?,
    };
    arm_faults(spec, &provider, &channels);
    let stop = Arc::new(AtomicBool::new(false));
    let path = |c: &BenchChannel| match spec.target {
        Target::Streamforge => format!("/auto/v{}", c.number),
        Target::Nginx | Target::Floor => format!("/live/{USER}/{PASSWORD}/{}.ts", c.primary),
    };

    // Cold tunes, one per channel, then the viewers that join running channels.
    let mut viewers = Vec::new();
    for (i, c) in channels.iter().enumerate() {
        let spec_v = ViewerSpec {
            addr,
            path: path(c),
            channel: i,
            index: 0,
            cold: true,
        };
        viewers.push(Viewer::start(spec_v, stop.clone()));
        std::thread::sleep(Duration::from_millis(spec.stagger_ms));
    }
    wait_settled(&viewers, Duration::from_secs(20));
    for v in 1..spec.viewers {
        for (i, c) in channels.iter().enumerate() {
            let spec_v = ViewerSpec {
                addr,
                path: path(c),
                channel: i,
                index: v,
                cold: false,
            };
            viewers.push(Viewer::start(spec_v, stop.clone()));
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    wait_settled(&viewers, Duration::from_secs(20));
    // Let the channels' rings and the sockets reach their steady state.
    std::thread::sleep(Duration::from_secs(2));

    let pids = tree(child.pid(), spec.target);
    let me = std::process::id();
    let (cpu0, own0, machine0, bytes0, t0) = (
        cpu_of(&pids),
        procfs::cpu_seconds(me).unwrap_or(0.0),
        procfs::machine_jiffies(),
        bytes_of(&viewers),
        Instant::now(),
    );
    let window_end = t0 + Duration::from_secs_f64(spec.duration_s);
    while Instant::now() < window_end {
        std::thread::sleep(Duration::from_millis(100).min(window_end - Instant::now()));
    }
    let (cpu1, own1, machine1, bytes1, window) = (
        cpu_of(&pids),
        procfs::cpu_seconds(me).unwrap_or(0.0),
        procfs::machine_jiffies(),
        bytes_of(&viewers),
        t0.elapsed().as_secs_f64(),
    );
    let kb = |field: &str| {
        pids.iter()
            .filter_map(|&p| procfs::status_kb(p, field))
            .sum::<u64>()
    };
    let memory = Memory {
        peak_rss_mb: kb("VmHWM") as f64 / 1024.0,
        end_rss_mb: kb("VmRSS") as f64 / 1024.0,
        end_anon_mb: kb("RssAnon") as f64 / 1024.0,
        end_file_mb: kb("RssFile") as f64 / 1024.0,
    };

    // Faults: stop arming new ones, and let the armed connections fail and be recovered.
    if spec.fault.is_some() {
        provider.clear_faults();
        let settle = spec.every_s + spec.stall_s.unwrap_or(5.0) + 2.5;
        std::thread::sleep(Duration::from_secs_f64(settle));
    }
    let metrics = match spec.target {
        Target::Streamforge => setup::http_get(addr, "/metrics")
            .map(|t| setup::parse_metrics(&t))
            .unwrap_or_default(),
        Target::Nginx | Target::Floor => BTreeMap::new(),
    };
    let injected: u64 = channels
        .iter()
        .map(|c| u64::from(provider.faults_struck(c.primary)))
        .sum();

    stop.store(true, Ordering::SeqCst);
    let results: Vec<ViewerResult> = viewers.into_iter().map(Viewer::finish).collect();
    let exit = child.stop(Duration::from_secs(10));
    let events = match spec.target {
        Target::Streamforge => read_events(&data_dir),
        Target::Nginx | Target::Floor => Vec::new(),
    };
    if spec.target == Target::Streamforge && exit != Some(0) {
        eprintln!(
            "bench: streamforge exited with {exit:?}:\n{}",
            child.log_tail(10)
        );
    }
    drop(child);
    drop(provider);

    let cpu_s = cpu1 - cpu0;
    let bytes = bytes1 - bytes0;
    let gb = bytes as f64 / 1e9;
    let expected = spec.channels as f64 * spec.viewers as f64 * spec.mbps * 1e6 / 8.0 * window;
    let (busy0, total0) = machine0;
    let (busy1, total1) = machine1;
    let mut result = RunResult {
        spec: Some(spec.clone()),
        window_s: window,
        bytes,
        delivered_mbps: bytes as f64 * 8.0 / 1e6 / window,
        delivered_ratio: bytes as f64 / expected,
        cpu: Cpu {
            seconds: cpu_s,
            percent_core: cpu_s / window * 100.0,
            s_per_gb: (gb > 0.0).then(|| cpu_s / gb),
            harness_percent_core: (own1 - own0) / window * 100.0,
            machine_busy_percent: (busy1 - busy0) as f64 / (total1 - total0).max(1) as f64 * 100.0,
        },
        memory,
        metrics,
        ..RunResult::default()
    };
    viewer_figures(spec, &channels, &results, &mut result);
    if spec.fault.is_some() {
        result.failover = Some(failover_figures(
            spec,
            &channels,
            &results,
            &events,
            &result.metrics,
            injected,
        ));
    }
    Ok(result)
}

fn viewer_figures(
    spec: &RunSpec,
    channels: &[BenchChannel],
    results: &[ViewerResult],
    out: &mut RunResult,
) {
    let name = |r: &ViewerResult| format!("ch {} viewer {}", channels[r.channel].number, r.index);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let latencies = |cold: bool| -> Vec<f64> {
        results
            .iter()
            .filter(|r| r.cold == cold)
            .filter_map(|r| r.start_latency.map(ms))
            .collect()
    };
    out.start_cold_ms = summarize(&latencies(true));
    out.start_join_ms = summarize(&latencies(false));
    for r in results {
        if r.start_latency.is_none() {
            out.failed_tunes.push(format!(
                "{}: {}",
                name(r),
                r.error.as_deref().unwrap_or("no media")
            ));
        } else if r.ended_early {
            out.ended_early.push(format!(
                "{}: {} after {} bytes",
                name(r),
                r.error.as_deref().unwrap_or("ended"),
                r.bytes
            ));
        }
        out.max_pause_ms = out.max_pause_ms.max(ms(r.max_pause));
        out.pauses_over_150ms += r.pauses.iter().filter(|(_, p)| *p > PAUSE_NOTED).count();
    }
    let exact = spec.fault.is_none();
    let mut integrity = Integrity {
        mode: if exact { "exact" } else { "pieces" },
        viewers: results.len(),
        ..Integrity::default()
    };
    for r in results {
        let mut problems = Vec::new();
        if !r.located {
            problems.push("never located in the provider's stream".to_owned());
        }
        if r.unlocated_packets > 0 {
            problems.push(format!(
                "{} packets not from the provider's stream",
                r.unlocated_packets
            ));
        }
        if r.misaligned {
            problems.push("lost 188-byte alignment".to_owned());
        }
        if exact && !r.splices.is_empty() {
            problems.push(format!(
                "{} discontinuities (first at byte {})",
                r.splices.len(),
                r.splices[0].stream_offset
            ));
        }
        if problems.is_empty() {
            integrity.passed += 1;
        } else if integrity.failures.len() < 20 {
            integrity
                .failures
                .push(format!("{}: {}", name(r), problems.join(", ")));
        }
    }
    out.integrity = integrity;
}

/// The relay's events, oldest first (read after the server stopped).
pub fn read_events(data_dir: &Path) -> Vec<streamforge::store::StoredEvent> {
    let Ok(store) = Store::open(data_dir) else {
        return Vec::new();
    };
    let mut events = store.events(None, 1_000_000).unwrap_or_default();
    events.reverse();
    events
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SpliceKind {
    Failover,
    Upgrade,
}

fn failover_figures(
    spec: &RunSpec,
    channels: &[BenchChannel],
    results: &[ViewerResult],
    events: &[streamforge::store::StoredEvent],
    metrics: &BTreeMap<String, f64>,
    injected: u64,
) -> Failover {
    let metric = |name: &str| metrics.get(name).copied().unwrap_or(0.0) as u64;
    let mut out = Failover {
        kind: spec.fault,
        injected,
        server_failovers: metric("streamforge_failovers_total"),
        server_upgrades: metric("streamforge_upgrades_total"),
        ..Failover::default()
    };
    for (name, value) in metrics {
        if let Some(reason) = name
            .strip_prefix("streamforge_upstream_errors_total{reason=\"")
            .and_then(|r| r.strip_suffix("\"}"))
        {
            out.upstream_errors.insert(reason.to_owned(), *value as u64);
        }
    }
    // Each channel's splices (failovers and upgrades), in order, from the event log.
    let mut splices: HashMap<String, Vec<SpliceKind>> = HashMap::new();
    let mut server_gaps = Vec::new();
    for e in events {
        let channel = e
            .details
            .get("channel")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let has_to = e.details.get("to_stream").is_some();
        match e.category.as_str() {
            "failover" if has_to => {
                out.events_failover += 1;
                if let Some(gap) = e.details.get("gap_ms").and_then(Value::as_f64) {
                    server_gaps.push(gap);
                }
                splices
                    .entry(channel)
                    .or_default()
                    .push(SpliceKind::Failover);
            }
            "failover" if e.level == streamforge::store::Level::Error => out.events_exhausted += 1,
            "failover" => out.events_budget_missed += 1,
            "upgrade" if has_to => splices
                .entry(channel)
                .or_default()
                .push(SpliceKind::Upgrade),
            _ => {}
        }
    }
    out.server_gap_ms = summarize(&server_gaps);
    let (mut failover_gaps, mut upgrade_gaps) = (Vec::new(), Vec::new());
    for r in results {
        let expected = splices
            .get(&channels[r.channel].number)
            .cloned()
            .unwrap_or_default();
        out.expected_splices += expected.len() as u64;
        if r.splices.len() != expected.len() {
            out.unmatched_viewers += 1;
        }
        out.viewer_splices += r.splices.len() as u64;
        for (i, s) in r.splices.iter().enumerate() {
            // Sessions start on the primary: failover, upgrade, failover, … when events are short.
            let kind = expected.get(i).copied().unwrap_or(if i % 2 == 0 {
                SpliceKind::Failover
            } else {
                SpliceKind::Upgrade
            });
            let gap = s.gap.as_secs_f64() * 1000.0;
            match kind {
                SpliceKind::Failover => failover_gaps.push(gap),
                SpliceKind::Upgrade => upgrade_gaps.push(gap),
            }
        }
    }
    out.viewer_gap_ms = summarize(&failover_gaps);
    out.upgrade_gap_ms = summarize(&upgrade_gaps);
    // Recovered: failovers the server made (its metric; its events should agree).
    let recovered = out.server_failovers.min(injected);
    out.recovery_rate = (injected > 0).then(|| recovered as f64 / injected as f64);
    out
}

/// When the run happened, for the report.
pub fn now_rfc3339() -> String {
    streamforge::time::rfc3339(SystemTime::now())
}

pub fn to_json(result: &RunResult) -> Value {
    serde_json::to_value(result).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}
