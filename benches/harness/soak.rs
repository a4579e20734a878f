//! The soak run (SPEC §9, issue 14): `scripts/soak.sh --minutes N`.
//!
//! The release binary serves 10 channels for N minutes, each with a primary (`main`, plain HTTP),
//! a backup from another encoder on another panel reached over HTTPS (`alt`) and a last backup of
//! other PIDs and clock (`main`); channel 101 has one more on a panel whose API flaps
//! (`flap`). Meanwhile (benches/harness/soak_load.rs) a viewer holds every channel, guests join and
//! leave at random, a fault of every kind hits the upstreams every few seconds, hostile clients
//! connect, and the CLI changes mappings, accounts, catalogs and guides. Every minute it samples
//! the server's fds, RSS, tuners and sessions and the panels' open stream connections.
//!
//! At the end it checks, and writes to a JSON report and a table: fds back to the baseline taken
//! before the load, RSS growth from the first to the last minute within `[soak]` of
//! config/budgets.toml, peak RSS within `[memory]`, 0 tuners, sessions, viewers and provider
//! connections once the last viewer left and the linger passed, every fault that fired either
//! recovered by a failover or accounted for by an event, every viewer cut matched by an event,
//! hostile clients dealt with, CLI changes applied (failing ones losing nothing), and the same
//! server process all along. Exit 1 when a check fails.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde_json::{Value, json};
use streamforge::fake_provider::{
    FakeAccount, FakeCategory, FakeProvider, FakeStream, ProviderOptions, RedirectStyle,
    StreamVariant, demo_backup_variant,
};
use streamforge::store::{AccountKind, Level, NewAccount, Store, StoredEvent};

use crate::budget::{Budgets, Check};
use crate::procfs;
use crate::setup::{self, BenchChannel};
use crate::soak_load::{
    self, Audience, Cli, CliRun, FaultKind, Hostile, Injection, Rng, SoakChannel, Upstreams, Visit,
};

/// What to run.
pub struct SoakSpec {
    pub minutes: f64,
    pub seed: u64,
    pub channels: usize,
    pub mbps: f64,
    pub max_guests: usize,
    pub binary: PathBuf,
    pub report: PathBuf,
}

/// `deadlines.linger` of the soak's server.
const LINGER_S: f64 = 2.0;

/// The server's config for the soak: quick stalls and upgrades so faults turn over fast, a short
/// linger, the `alt` panel's CA, and an API timeout the flapping panel's slow answers exceed.
fn config(ca: &Path) -> String {
    format!(
        "[upstream]\nextra_ca_file = \"{}\"\napi_timeout = \"5s\"\n\n[deadlines]\nstall = \"2s\"\nlinger = \"{}ms\"\nupgrade_interval = \"5s\"\n",
        ca.display(),
        (LINGER_S * 1000.0) as u64
    )
}

/// How long after a fault fires its failover or event may come: stall (2 s) + failover budget
/// (2 s) + grace (10 s), and a second for event times in whole seconds.
const FAULT_WINDOW_S: f64 = 15.0;
/// How far from a viewer's cut or failed tune the event that explains it may be.
const TROUBLE_WINDOW_S: f64 = 20.0;

/// One sample of the server and the panels.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Sample {
    pub at_s: f64,
    pub fds: Option<usize>,
    pub rss_mb: Option<f64>,
    pub peak_rss_mb: Option<f64>,
    pub threads: Option<u64>,
    pub tuners_in_use: Option<u64>,
    pub sessions: Option<usize>,
    pub viewers: Option<u64>,
    /// Open stream connections at the three panels.
    pub provider_connections: u32,
}

fn sample(pid: u32, addr: SocketAddr, up: &Upstreams, epoch: Instant) -> Sample {
    let mb = |field| procfs::status_kb(pid, field).map(|kb| kb as f64 / 1024.0);
    let status: Option<Value> = setup::http_get(addr, "/status")
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let metrics = setup::http_get(addr, "/metrics")
        .map(|t| setup::parse_metrics(&t))
        .unwrap_or_default();
    Sample {
        at_s: (epoch.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        fds: procfs::fd_count(pid),
        rss_mb: mb("VmRSS"),
        peak_rss_mb: mb("VmHWM"),
        threads: procfs::status_kb(pid, "Threads"),
        tuners_in_use: status.as_ref().and_then(|s| s["tuners"]["in_use"].as_u64()),
        sessions: status
            .as_ref()
            .and_then(|s| s["sessions"].as_array().map(Vec::len)),
        viewers: metrics.get("streamforge_viewers").map(|v| *v as u64),
        provider_connections: provider_connections(up),
    }
}

fn provider_connections(up: &Upstreams) -> u32 {
    up.main.active_connections("soak")
        + up.alt.active_connections("soakalt")
        + up.flap.active_connections("flap")
}

/// The three panels: `n` channels' streams on `main` and `alt`, one stream of channel 0 on `flap`,
/// whose `xmltv.php` serves a guide of its own.
fn upstreams(channels: &[BenchChannel], bitrate_bps: u64) -> Result<Upstreams, String> {
    let panel = |user: &str, streams: Vec<FakeStream>, xmltv: Option<Vec<u8>>| {
        FakeProvider::start(ProviderOptions {
            accounts: vec![FakeAccount::new(user, user, 0)],
            categories: vec![FakeCategory::new("1", "SOAK")],
            streams,
            bitrate_bps,
            redirect: RedirectStyle::Absolute,
            xmltv,
            ..ProviderOptions::default()
        })
        .map_err(|e| format!("starting a fake panel: {e}"))
    };
    let stream =
        |id: u64, c: &BenchChannel, i: usize, quality: &str, variant: StreamVariant| FakeStream {
            epg_channel_id: Some(c.guide_id.clone()),
            variant,
            ..FakeStream::new(id, &format!("Soak {i:03} {quality}"), "1")
        };
    // Other PIDs and another clock: a splice onto it is rewritten.
    let other_pids = StreamVariant {
        pmt_pid: Some(0x50),
        es_pids: vec![0x300, 0x301],
        clock_offset: 1_000_000_000,
        ..StreamVariant::default()
    };
    let mut main = Vec::new();
    let mut alt = Vec::new();
    for (i, c) in channels.iter().enumerate() {
        main.push(stream(c.primary, c, i, "FHD", StreamVariant::default()));
        main.push(stream(c.backup, c, i, "SD", other_pids.clone()));
        alt.push(stream(alt_id(c), c, i, "HD", demo_backup_variant()));
    }
    let flap_stream = StreamVariant {
        drop_audio: true,
        ..StreamVariant::default()
    };
    let flap_guide = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tv>\n  <channel id=\"flapnews.sf\"><display-name>Flap News</display-name></channel>\n  <programme start=\"20300101000000 +0000\" stop=\"20300101010000 +0000\" channel=\"flapnews.sf\"><title>News</title></programme>\n</tv>\n";
    Ok(Upstreams {
        main: panel("soak", main, None)?,
        alt: panel("soakalt", alt, None)?,
        flap: panel(
            "flap",
            vec![stream(FLAP_STREAM, &channels[0], 0, "SD", flap_stream)],
            Some(flap_guide.as_bytes().to_vec()),
        )?,
    })
}

fn alt_id(c: &BenchChannel) -> u64 {
    c.primary + 20_000
}

const FLAP_STREAM: u64 = 40_001;

/// Accounts in the store, then the CLI: sync, the two guides, auto-map. Returns each channel's
/// streams in priority order, checked to be the primary, then alt's, then main's other backup
/// (and, for the first channel, flap's).
fn prepare(
    data_dir: &Path,
    up: &Upstreams,
    cli: &Cli,
    channels: &[BenchChannel],
) -> Result<Vec<SoakChannel>, String> {
    {
        let store = Store::open(data_dir).map_err(|e| e.to_string())?;
        for (name, url, user) in [
            ("main", up.main.http_url(), "soak"),
            ("alt", up.alt.https_url(), "soakalt"),
            ("flap", up.flap.http_url(), "flap"),
        ] {
            store
                .add_account(&NewAccount {
                    name: name.into(),
                    kind: AccountKind::Xtream,
                    server_url: url,
                    username: user.into(),
                    password: user.to_string().into(),
                    max_connections: 4 * channels.len() as u32,
                    user_agent: None,
                })
                .map_err(|e| e.to_string())?;
        }
    }
    let guide = data_dir.join("soak-guide.xml");
    std::fs::write(&guide, setup::guide(channels)).map_err(|e| e.to_string())?;
    let guide = guide.to_string_lossy().into_owned();
    for args in [
        vec!["sync"],
        vec!["epg", "add", &guide, "--name", "guide"],
        vec!["epg", "add", "xtream:flap", "--name", "flapguide"],
        vec!["map", "auto"],
    ] {
        let (exit, _, err) = cli.run(&args);
        if exit != Some(0) {
            return Err(format!("streamforge {}: {err}", args.join(" ")));
        }
    }
    let store = Store::open(data_dir).map_err(|e| e.to_string())?;
    let mappings = store.mappings(None).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for c in channels {
        let mut ours: Vec<_> = mappings
            .iter()
            .filter(|m| m.channel_number == c.number)
            .collect();
        ours.sort_by_key(|m| m.priority);
        let streams: Vec<String> = ours
            .iter()
            .map(|m| format!("{}:{}", m.account_name, m.stream_id))
            .collect();
        let want = [format!("main:{}", c.primary), format!("alt:{}", alt_id(c))];
        let other = format!("main:{}", c.backup);
        if streams.len() < 3 || streams[..2] != want || !streams.contains(&other) {
            return Err(format!(
                "auto-map gave channel {} the streams {streams:?}, not {want:?} first and {other} later",
                c.number
            ));
        }
        out.push(SoakChannel {
            number: c.number.clone(),
            streams,
        });
    }
    Ok(out)
}

/// One event of the server's log, as the accounting reads it.
struct Ev {
    at_s: f64,
    category: String,
    level: Level,
    channel: String,
    from: Option<String>,
    to: Option<String>,
    stream: Option<String>,
    /// A session start (a session end names its stream too).
    start: bool,
    message: String,
}

fn events(stored: &[StoredEvent], epoch_wall: SystemTime) -> Vec<Ev> {
    let text = |e: &StoredEvent, key: &str| {
        e.details
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    stored
        .iter()
        .filter_map(|e| {
            let at = streamforge::time::parse_rfc3339(&e.timestamp)?;
            Some(Ev {
                at_s: soak_load::wall_since(at, epoch_wall),
                category: e.category.clone(),
                level: e.level,
                channel: text(e, "channel").unwrap_or_default(),
                from: text(e, "from_stream"),
                to: text(e, "to_stream"),
                stream: text(e, "stream"),
                start: e.category == "session" && e.details.get("viewers").is_some(),
                message: format!("{} {}", e.timestamp, e.message),
            })
        })
        .collect()
}

/// What became of the faults that fired.
#[derive(Debug, Default, Serialize)]
pub struct Accounting {
    pub injected: BTreeMap<FaultKind, u64>,
    pub fired: BTreeMap<FaultKind, u64>,
    /// Struck mid-body: a failover from the stream followed. At a request: a failover (or a
    /// start) onto another stream followed on its channel.
    pub recovered: BTreeMap<FaultKind, u64>,
    /// No failover, but an event names the stream or the channel's exhaustion.
    pub evented: BTreeMap<FaultKind, u64>,
    pub unaccounted: Vec<String>,
    /// Armed for a request that never came before the end.
    pub never_fired: u64,
    /// Every fault that fired and what became of it.
    pub log: Vec<Fired>,
}

#[derive(Debug, Serialize)]
pub struct Fired {
    pub at_s: f64,
    pub kind: FaultKind,
    pub stream: String,
    pub mid_body: bool,
    /// `recovered`, `evented` or `unaccounted`, with the event that says so.
    pub outcome: String,
}

fn account_faults(
    up: &Upstreams,
    channels: &[SoakChannel],
    injections: &[Injection],
    evs: &[Ev],
    epoch_wall: SystemTime,
) -> Accounting {
    let mut out = Accounting::default();
    let channel_of: HashMap<&str, &str> = channels
        .iter()
        .flat_map(|c| c.streams.iter().map(|s| (s.as_str(), c.number.as_str())))
        .collect();
    for i in injections {
        *out.injected.entry(i.kind).or_default() += 1;
    }
    let mut fired_total = 0;
    for (account, provider) in up.all() {
        for f in provider.faults_fired() {
            fired_total += 1;
            let kind = FaultKind::of(f.fault);
            *out.fired.entry(kind).or_default() += 1;
            let stream = format!("{account}:{}", f.stream_id);
            let at = soak_load::wall_since(f.at, epoch_wall);
            let channel = channel_of.get(stream.as_str()).copied().unwrap_or("");
            // Event times have whole seconds.
            let near: Vec<&Ev> = evs
                .iter()
                .filter(|e| e.channel == channel && e.at_s >= at.floor() - 1.0)
                .filter(|e| e.at_s <= at + FAULT_WINDOW_S)
                .collect();
            let names = |e: &Ev| {
                [&e.from, &e.to, &e.stream]
                    .iter()
                    .any(|s| s.as_deref() == Some(&stream))
            };
            // A strike at the stream playing must be followed by a failover away from it; a
            // fault at a request (a tune, failover or upgrade asking for the stream) by the
            // channel going on on another stream.
            let recovers = |e: &Ev| match e.category.as_str() {
                "failover" if f.mid_body => e.to.is_some() && e.from.as_deref() == Some(&stream),
                "failover" => e.to.is_some() && e.to.as_deref() != Some(&stream),
                "session" => !f.mid_body && e.start && e.stream.as_deref() != Some(&stream),
                _ => false,
            };
            // The first event that answers the fault says what became of it.
            let answer = near
                .iter()
                .find(|e| recovers(e) || names(e) || e.level == Level::Error);
            let outcome = match answer {
                Some(e) if recovers(e) => {
                    *out.recovered.entry(kind).or_default() += 1;
                    format!("recovered: {}", e.message)
                }
                Some(e) => {
                    *out.evented.entry(kind).or_default() += 1;
                    format!("evented: {}", e.message)
                }
                None => {
                    out.unaccounted.push(format!(
                        "{kind:?} ({:?}) on {stream} (channel {channel}) at {at:.1} s",
                        f.fault
                    ));
                    "unaccounted".to_owned()
                }
            };
            out.log.push(Fired {
                at_s: (at * 10.0).round() / 10.0,
                kind,
                stream,
                mid_body: f.mid_body,
                outcome,
            });
        }
    }
    out.never_fired = (injections.len() as u64).saturating_sub(fired_total);
    out
}

/// Viewer cuts and failed tunes not matched by a warning or error event on their channel.
fn unexplained_troubles(visits: &[Visit], evs: &[Ev]) -> Vec<String> {
    let explained = |channel: &str, at: f64| {
        evs.iter().any(|e| {
            e.channel == channel
                && matches!(e.level, Level::Warn | Level::Error)
                && (e.at_s - at).abs() <= TROUBLE_WINDOW_S
        })
    };
    let mut out = Vec::new();
    for v in visits {
        let trouble = match (&v.cut, v.status, &v.error) {
            (Some((at, why)), _, _) => Some((*at, format!("cut: {why}"))),
            (None, Some(s), _) if s != 200 => Some((v.joined_s, format!("answered {s}"))),
            (None, None, Some(e)) => Some((v.joined_s, format!("failed: {e}"))),
            _ => None,
        };
        if let Some((at, what)) = trouble
            && !explained(&v.channel, at)
        {
            out.push(format!(
                "{} of channel {} at {at:.1} s: {what}",
                if v.anchor { "anchor" } else { "guest" },
                v.channel
            ));
        }
    }
    out
}

fn check(what: &str, value: Option<f64>, limit: f64, at_least: bool, unit: &'static str) -> Check {
    Check {
        scenario: "soak".into(),
        what: what.to_owned(),
        value,
        limit,
        at_least,
        unit,
        pass: value.is_some_and(|v| if at_least { v >= limit } else { v <= limit }),
    }
}

/// Polls `done` every 200 ms until it holds or `limit` passes; whether it held.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs the soak; `Ok(pass)`, or why it could not run.
pub fn run(spec: &SoakSpec, budgets: &Budgets) -> Result<bool, String> {
    let (epoch, epoch_wall) = (Instant::now(), SystemTime::now());
    println!("soak: seed {} ({} min)", spec.seed, spec.minutes);
    let bench_channels = setup::channels(spec.channels);
    let up = upstreams(&bench_channels, (spec.mbps * 1e6) as u64)?;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let data_dir = tmp.path().join("data");
    let ca = tmp.path().join("alt-ca.pem");
    std::fs::write(&ca, up.alt.ca_pem()).map_err(|e| e.to_string())?;
    let config_path = tmp.path().join("streamforge.toml");
    std::fs::write(&config_path, config(&ca)).map_err(|e| e.to_string())?;
    let cli = Cli {
        binary: spec.binary.clone(),
        config: config_path.clone(),
        data_dir: data_dir.clone(),
    };
    let channels = prepare(&data_dir, &up, &cli, &bench_channels)?;
    let (mut server, addr) = setup::start_streamforge(&spec.binary, &config_path, &data_dir)?;
    let pid = server.pid();
    let started_ticks = procfs::start_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let baseline = sample(pid, addr, &up, epoch);
    eprintln!("soak: server pid {pid} on {addr}; baseline {baseline:?}");

    let stop = AtomicBool::new(false);
    let load = Duration::from_secs_f64(spec.minutes * 60.0);
    let mut samples = Vec::new();
    let audience = Audience::start(
        addr,
        &channels,
        spec.max_guests,
        Rng::new(spec.seed, 1),
        epoch,
    );
    let (injections, hostiles, cli_runs): (Vec<Injection>, Vec<Hostile>, Vec<CliRun>) =
        std::thread::scope(|s| {
            let (stop, up, channels, cli) = (&stop, &up, &channels, &cli);
            let faults = s.spawn(move || {
                soak_load::inject_faults(
                    addr,
                    up,
                    channels,
                    (2.0, 5.0),
                    Rng::new(spec.seed, 2),
                    stop,
                    epoch,
                )
            });
            let hostile = s.spawn(move || {
                soak_load::hostile_clients(addr, Rng::new(spec.seed, 3), stop, epoch)
            });
            let changes = s.spawn(move || {
                soak_load::cli_changes(
                    cli,
                    &up.flap,
                    channels,
                    (8.0, 16.0),
                    Rng::new(spec.seed, 4),
                    stop,
                    epoch,
                )
            });
            let load_start = Instant::now();
            let mut next = load_start + Duration::from_secs(60);
            while load_start.elapsed() < load {
                let wake = next.min(load_start + load);
                std::thread::sleep(wake.saturating_duration_since(Instant::now()));
                if Instant::now() >= next {
                    let sm = sample(pid, addr, up, epoch);
                    eprintln!(
                        "soak: {:.0} s: fds {:?}, RSS {:.1} MB, tuners {:?}, sessions {:?}, viewers {:?}, panel connections {}",
                        sm.at_s,
                        sm.fds,
                        sm.rss_mb.unwrap_or(0.0),
                        sm.tuners_in_use,
                        sm.sessions,
                        sm.viewers,
                        sm.provider_connections
                    );
                    samples.push(sm);
                    next += Duration::from_secs(60);
                }
            }
            stop.store(true, Ordering::SeqCst);
            (
                faults.join().unwrap_or_default(),
                hostile.join().unwrap_or_default(),
                changes.join().unwrap_or_default(),
            )
        });
    // No new faults; the armed ones are disarmed. Guests leave; the anchors must be delivering.
    for (_, p) in up.all() {
        p.clear_faults();
    }
    audience.calm();
    std::thread::sleep(Duration::from_secs_f64(FAULT_WINDOW_S));
    let before = audience.anchor_bytes();
    std::thread::sleep(Duration::from_secs(5));
    let after = audience.anchor_bytes();
    let delivering = before.iter().zip(&after).filter(|(b, a)| a > b).count();
    let audience_log = audience.leave();
    let left_at = Instant::now();

    // Everyone left: after the linger, nothing may stay open.
    std::thread::sleep(Duration::from_secs_f64(LINGER_S));
    let settle = Duration::from_secs_f64(budgets.soak.settle_s);
    let mut end = sample(pid, addr, &up, epoch);
    wait_for(settle, || {
        end = sample(pid, addr, &up, epoch);
        end.tuners_in_use == Some(0)
            && end.sessions == Some(0)
            && end.viewers == Some(0)
            && end.provider_connections == 0
            && end.fds.is_some_and(|f| Some(f) <= baseline.fds)
    });
    let settled_s = left_at.elapsed().as_secs_f64();
    let counters: BTreeMap<String, f64> = setup::http_get(addr, "/metrics")
        .map(|t| setup::parse_metrics(&t))
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !k.contains("latency"))
        .collect();
    let same_process = procfs::start_ticks(pid).is_some()
        && procfs::start_ticks(pid) == started_ticks
        && procfs::state(pid).is_some_and(|s| s != "Z");
    let exit = server.stop(Duration::from_secs(10));
    if exit != Some(0) {
        eprintln!(
            "soak: streamforge exited with {exit:?}:\n{}",
            server.log_tail(20)
        );
    }
    let server_log = server.log_tail(40);
    drop(server);
    let evs = events(&crate::run::read_events(&data_dir), epoch_wall);
    let accounting = account_faults(&up, &channels, &injections, &evs, epoch_wall);
    let troubles = unexplained_troubles(&audience_log.visits, &evs);

    // Figures.
    let first = samples.first().cloned().unwrap_or_default();
    let last = samples.last().cloned().unwrap_or_default();
    let rss_growth = match (first.rss_mb, last.rss_mb) {
        (Some(a), Some(b)) if samples.len() >= 2 => Some(b - a),
        _ => None,
    };
    let max_rss = samples
        .iter()
        .chain([&end])
        .filter_map(|s| s.peak_rss_mb)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let count = |f: &dyn Fn(&Hostile) -> bool| hostiles.iter().filter(|h| f(h)).count() as f64;
    let crashed = cli_runs
        .iter()
        .filter(|r| r.exit.is_none() || r.exit == Some(101))
        .count();
    let healthy_failed: Vec<&CliRun> = cli_runs
        .iter()
        .filter(|r| r.fault.is_none() && r.exit != Some(0))
        .collect();
    let lost: Vec<&CliRun> = cli_runs
        .iter()
        .filter(|r| r.kept.is_some_and(|(b, a)| a < b))
        .collect();
    let misaligned: u64 = audience_log
        .visits
        .iter()
        .map(|v| v.misaligned_packets)
        .sum();
    let fired_kinds = accounting.fired.values().filter(|&&n| n > 0).count();
    let recovered: u64 = accounting.recovered.values().sum();
    let evented: u64 = accounting.evented.values().sum();
    let n = channels.len() as f64;
    let checks = vec![
        check(
            "server process unchanged (pid and start time)",
            Some(same_process as u8 as f64),
            1.0,
            true,
            "",
        ),
        check(
            "server exit status on SIGTERM",
            exit.map(f64::from),
            0.0,
            false,
            "",
        ),
        check(
            "open fds at the end (limit: the baseline)",
            end.fds.map(|v| v as f64),
            baseline.fds.map_or(0.0, |v| v as f64),
            false,
            "",
        ),
        check(
            "RSS growth, first to last minute",
            rss_growth,
            budgets.soak.rss_growth_max_mb,
            false,
            "MB",
        ),
        check(
            "peak RSS (VmHWM)",
            max_rss,
            budgets.memory.rss_max_mb,
            false,
            "MB",
        ),
        check(
            "tuners in use at the end",
            end.tuners_in_use.map(|v| v as f64),
            0.0,
            false,
            "",
        ),
        check(
            "provider connections at the end",
            Some(f64::from(end.provider_connections)),
            0.0,
            false,
            "",
        ),
        check(
            "sessions at the end (ghosts)",
            end.sessions.map(|v| v as f64),
            0.0,
            false,
            "",
        ),
        check(
            "viewers at the end (ghosts)",
            end.viewers.map(|v| v as f64),
            0.0,
            false,
            "",
        ),
        check(
            "fault kinds that fired",
            Some(fired_kinds as f64),
            FaultKind::ALL.len() as f64,
            true,
            "",
        ),
        check(
            "faults neither recovered nor evented",
            Some(accounting.unaccounted.len() as f64),
            0.0,
            false,
            "",
        ),
        check(
            "viewer cuts / failed tunes without an event",
            Some(troubles.len() as f64),
            0.0,
            false,
            "",
        ),
        check(
            "channels delivering after the load",
            Some(delivering as f64),
            n,
            true,
            "",
        ),
        check(
            "misaligned TS packets at viewers",
            Some(misaligned as f64),
            0.0,
            false,
            "",
        ),
        check(
            "hostile clients still open after 40 s",
            Some(count(&|h| h.closed_after_s.is_none())),
            0.0,
            false,
            "",
        ),
        check(
            "hostile clients answered 2xx",
            Some(count(&|h| h.status.is_some_and(|s| s < 300))),
            0.0,
            false,
            "",
        ),
        check(
            "CLI commands crashed or timed out",
            Some(crashed as f64),
            0.0,
            false,
            "",
        ),
        check(
            "healthy CLI commands failed",
            Some(healthy_failed.len() as f64),
            0.0,
            false,
            "",
        ),
        check(
            "faulted CLI commands that lost data",
            Some(lost.len() as f64),
            0.0,
            false,
            "",
        ),
    ];
    let pass = checks.iter().all(|c| c.pass);

    let guests: Vec<&Visit> = audience_log.visits.iter().filter(|v| !v.anchor).collect();
    let starts: Vec<f64> = guests.iter().filter_map(|v| v.start_ms).collect();
    let max_pause = audience_log
        .visits
        .iter()
        .filter(|v| v.anchor)
        .map(|v| v.max_pause_ms)
        .fold(0.0, f64::max);
    let mut hostile_by_kind: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for h in &hostiles {
        let outcome = match (h.status, h.closed_after_s) {
            (Some(s), _) => format!("answered {s}"),
            (None, Some(_)) => "closed".to_owned(),
            (None, None) => "still open".to_owned(),
        };
        *hostile_by_kind
            .entry(format!("{:?}", h.kind).to_lowercase())
            .or_default()
            .entry(outcome)
            .or_default() += 1;
    }
    let mut cli_by_command: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in &cli_runs {
        let name = r.args[..2.min(r.args.len())].join(" ")
            + if r.fault.is_some() { " (flapping)" } else { "" };
        let e = cli_by_command.entry(name).or_default();
        e.0 += 1;
        e.1 += u64::from(r.exit == Some(0));
    }
    let report = json!({
        "tool": "streamforge benches/harness.rs --soak-minutes",
        "started": crate::run::now_rfc3339(),
        "seconds": epoch.elapsed().as_secs(),
        "seed": spec.seed,
        "minutes": spec.minutes,
        "load": { "channels": channels.len(), "mbps": spec.mbps, "max_guests": spec.max_guests },
        "machine": procfs::machine(),
        "channels": channels,
        "server": { "pid": pid, "same_process": same_process, "exit": exit },
        "baseline": baseline,
        "samples": samples,
        "end": end,
        "settled_after_leaving_s": settled_s,
        "rss": { "first_minute_mb": first.rss_mb, "last_minute_mb": last.rss_mb, "growth_mb": rss_growth, "max_mb": max_rss },
        "faults": accounting,
        "faults_recovered": recovered,
        "faults_evented": evented,
        "injections": injections,
        "viewers": {
            "guest_joins": audience_log.guest_joins,
            "guests_by_manner": guests.iter().fold(BTreeMap::new(), |mut m: BTreeMap<String, u64>, v| {
                *m.entry(format!("{:?}", v.manner)).or_default() += 1;
                m
            }),
            "most_at_once": audience_log.most_viewers,
            "guest_start_ms": crate::stats::summarize(&starts),
            "anchor_max_pause_ms": max_pause,
            "anchor_retunes": audience_log.visits.iter().filter(|v| v.anchor && v.cut.is_some()).count(),
            "troubles_without_event": troubles,
            "misaligned_packets": misaligned,
            "delivering_after_load": delivering,
        },
        "hostile": hostile_by_kind,
        "cli": {
            "by_command": cli_by_command.iter().map(|(k, (n, ok))| (k.clone(), json!({ "runs": n, "exit_0": ok }))).collect::<BTreeMap<_, _>>(),
            "healthy_failed": healthy_failed,
            "lost_data": lost,
            "runs": cli_runs,
        },
        "events": evs.len(),
        "server_counters_at_end": counters,
        "checks": checks,
        "pass": pass,
        "server_log_tail": server_log,
    });
    if let Some(dir) = spec.report.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&spec.report, text).map_err(|e| format!("{}: {e}", spec.report.display()))?;

    println!();
    println!(
        "soak: seed {}, {:.0} s; server pid {pid}; {} events; {} guest visits (at most {} viewers at once)",
        spec.seed,
        epoch.elapsed().as_secs_f64(),
        evs.len(),
        audience_log.guest_joins,
        audience_log.most_viewers
    );
    println!(
        "fds baseline {:?}, end {:?}; RSS first minute {:.1} MB, last {:.1} MB, max {:.1} MB; settled {:.1} s after the last viewer left",
        baseline.fds,
        end.fds,
        first.rss_mb.unwrap_or(f64::NAN),
        last.rss_mb.unwrap_or(f64::NAN),
        max_rss.unwrap_or(f64::NAN),
        settled_s
    );
    println!();
    println!("| fault | injected | fired | recovered by failover | evented |");
    println!("|---|---|---|---|---|");
    for kind in FaultKind::ALL {
        let get = |m: &BTreeMap<FaultKind, u64>| m.get(&kind).copied().unwrap_or(0);
        println!(
            "| {kind:?} | {} | {} | {} | {} |",
            get(&accounting.injected),
            get(&accounting.fired),
            get(&accounting.recovered),
            get(&accounting.evented)
        );
    }
    println!();
    println!("| check | figure | limit | verdict |");
    println!("|---|---|---|---|");
    for c in &checks {
        println!(
            "| {} | {} {} | {}{} {} | {} |",
            c.what,
            c.value.map_or("-".into(), |v| format!("{v:.1}")),
            c.unit,
            if c.at_least { ">= " } else { "<= " },
            c.limit,
            c.unit,
            if c.pass { "pass" } else { "FAIL" }
        );
    }
    for line in accounting.unaccounted.iter().chain(&troubles).take(20) {
        println!("  - {line}");
    }
    println!();
    println!(
        "{}; report: {}",
        if pass { "soak passed" } else { "SOAK FAILED" },
        spec.report.display()
    );
    Ok(pass)
}
