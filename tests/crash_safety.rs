//! Crash safety (SPEC §9, issue 14): `streamforge sync`, `epg refresh`, `map auto` and `serve`
//! (whose refresh thread syncs and refreshes at start) are killed with SIGKILL at random moments,
//! many times over, while the provider's catalog, the guide file and the mapping threshold change
//! between runs, so that every run has old data to replace with different new data. After each
//! kill the database must open, pass `PRAGMA integrity_check` and `foreign_key_check`, hold for
//! each of catalog, guide and mappings exactly the old or exactly the new set (never a mix), and
//! `serve` must start on it and list in `lineup.json` exactly the channels the store holds, with
//! an EPG whose programmes all come from the guide the store holds.
//!
//! The kill delays are the test's input (spread over a measured full run of each command), drawn
//! from a seeded generator: the seed is printed, and `CRASH_SEED=N` replays a run (`CRASH_KILLS=N`
//! kills each command N times instead of 8). Every fourth kill instead strikes the moment the
//! process is seen holding SQLite's WAL write lock (in `/proc/locks`), so that each command is
//! killed inside its write transaction however fast it runs. The test prints how many kills
//! struck a running process and how many of those struck inside a write transaction.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{Lines, Sandbox, http_get};
use streamforge::fake_provider::{
    FakeAccount, FakeProvider, FakeStream, ProviderOptions, generated_catalog,
};

/// Streams in the provider's catalog: enough that a sync's transaction takes a measurable time.
const STREAMS: usize = 8_000;
/// Guide channels: enough for a refresh's transaction to take a while.
const GUIDE_CHANNELS: usize = 1_000;
/// Streams in the catalog while mapping: auto-mapping scores every stream name, which is slow
/// in a debug build, so that phase runs on the streams of a third of the guide's channels.
const MAPPED_EVERY: usize = 3;
/// New streams in the second catalog, with guide channels of their own in the second guide.
const EXTRA: usize = 200;
/// The two auto-mapping thresholds the mapping runs alternate between: the second is above an
/// exact name's score, so it maps by guide id only.
const THRESHOLDS: [&str; 2] = ["0.5", "0.995"];
/// The two guide generations; each programme's title carries its generation's tag.
const GENERATIONS: [&str; 2] = ["genA", "genB"];

/// splitmix64: a small, seeded, good-enough generator for kill delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform draw from `from..to`.
    fn between(&mut self, from: f64, to: f64) -> f64 {
        from + (to - from) * ((self.next() >> 11) as f64 / (1u64 << 53) as f64)
    }

    /// When to kill a run that takes about `full` when left alone: the even kills anywhere in
    /// it (or up to half as long again: runs vary), the others in its last fifth, where the
    /// writes are.
    fn delay(&mut self, full: Duration, kill: usize) -> Duration {
        let (from, to) = if kill.is_multiple_of(2) {
            (0.0, 1.5)
        } else {
            (0.8, 1.1)
        };
        full.mul_f64(self.between(from, to))
    }
}

/// Kills per command: `CRASH_KILLS=N` for a longer run.
fn kills() -> usize {
    std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8)
}

fn seed() -> u64 {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("crash_safety seed {seed} (CRASH_SEED={seed} replays it)");
    seed
}

/// The second catalog: a tenth of the streams gone, a seventh renamed, some new ones.
fn changed_catalog(streams: &[FakeStream]) -> Vec<FakeStream> {
    let mut changed: Vec<FakeStream> = streams
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 != 3)
        .map(|(i, s)| match i % 7 {
            0 => FakeStream {
                name: format!("{} Plus", s.name),
                ..s.clone()
            },
            _ => s.clone(),
        })
        .collect();
    changed.extend((0..EXTRA).map(|i| FakeStream {
        epg_channel_id: Some(format!("extra{i}.new")),
        ..FakeStream::new(900_000 + i as u64, &format!("Extra Channel {i}"), "1")
    }));
    changed
}

/// An XMLTV guide with a channel per guide id in `streams` (named like the stream, without
/// its quality), one programme each titled with `generation`; generation B drops every ninth
/// channel and adds the new catalog's extra channels.
fn guide(streams: &[FakeStream], generation: usize) -> String {
    let mut ids: Vec<(&str, &str)> = streams
        .iter()
        .filter_map(|s| Some((s.epg_channel_id.as_deref()?, s.name.as_str())))
        .collect();
    ids.sort();
    ids.dedup_by(|a, b| a.0 == b.0);
    ids.truncate(GUIDE_CHANNELS);
    let extra: Vec<(String, String)> = (0..EXTRA)
        .map(|i| (format!("extra{i}.new"), format!("Extra Channel {i}")))
        .collect();
    let mut channels: Vec<(&str, &str)> = ids
        .into_iter()
        .enumerate()
        .filter(|(i, _)| generation == 0 || i % 9 != 4)
        .map(|(_, c)| c)
        .collect();
    if generation == 1 {
        channels.extend(extra.iter().map(|(id, name)| (id.as_str(), name.as_str())));
    }
    let tag = GENERATIONS[generation];
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tv>\n");
    for (id, name) in &channels {
        let name = name.replace('&', "&amp;").replace('<', "&lt;");
        xml.push_str(&format!(
            "<channel id=\"{id}\"><display-name>{name}</display-name></channel>\n"
        ));
    }
    for (id, _) in &channels {
        xml.push_str(&format!(
            "<programme start=\"20261207180000 +0000\" stop=\"20261207190000 +0000\" \
             channel=\"{id}\"><title>{tag} show</title></programme>\n"
        ));
    }
    xml.push_str("</tv>\n");
    xml
}

/// What the store holds, read straight from SQLite after checking the file is sound.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stored {
    catalog: BTreeSet<(i64, String)>,
    guide: BTreeSet<String>,
    mappings: BTreeSet<(i64, i64, i64)>,
    /// The numbers `lineup.json` must list.
    lineup: BTreeSet<String>,
}

fn read_store(data_dir: &Path) -> Stored {
    let db = rusqlite::Connection::open(data_dir.join("streamforge.db")).expect("open database");
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(integrity, "ok", "integrity_check");
    let broken_keys: i64 = db
        .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .expect("foreign_key_check");
    assert_eq!(broken_keys, 0, "rows referencing rows that are gone");
    let catalog = db
        .prepare("SELECT stream_id, name FROM xtream_channels")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()
        })
        .expect("catalog");
    let guide = db
        .prepare("SELECT channel_id FROM xmltv_channels")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect::<Result<_, _>>())
        .expect("guide");
    let mappings = db
        .prepare(
            "SELECT xmltv_channel_id, xtream_channel_id, stream_priority FROM channel_mappings",
        )
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()
        })
        .expect("mappings");
    let lineup = db
        .prepare(
            "SELECT DISTINCT c.number FROM xmltv_channels c \
             JOIN channel_mappings m ON m.xmltv_channel_id = c.id \
             JOIN xtream_channels x ON x.id = m.xtream_channel_id \
             JOIN accounts a ON a.id = x.account_id \
             WHERE c.enabled = 1 AND a.is_active = 1",
        )
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect::<Result<_, _>>())
        .expect("lineup");
    Stored {
        catalog,
        guide,
        mappings,
        lineup,
    }
}

/// Whether process `pid` is inside a write transaction: it holds SQLite's WAL write lock, a
/// POSIX lock on byte 120 of the `-shm` file (what `/proc/locks` lists).
fn in_write_transaction(pid: u32, data_dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(shm) = std::fs::metadata(data_dir.join("streamforge.db-shm")) else {
        return false;
    };
    let inode = format!(":{}", shm.ino());
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    locks.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // `1: POSIX  ADVISORY  WRITE 4242 08:01:1234 120 120`
        fields.len() >= 8
            && fields[3] == "WRITE"
            && fields[4] == pid.to_string()
            && fields[5].ends_with(&inode)
            && fields[6] == "120"
    })
}

/// Asserts that `now` is `old` or `new` for one kind of data, naming it and the seed.
fn old_or_new<T: PartialEq + std::fmt::Debug>(what: &str, now: &T, old: &T, new: &T, at: &str) {
    assert!(
        now == old || now == new,
        "{at}: the {what} is neither the old nor the new one (a mix)"
    );
}

/// Which of the two guide generations the stored channel set is.
fn generation_of(guide: &BTreeSet<String>, generations: &[BTreeSet<String>; 2]) -> usize {
    generations
        .iter()
        .position(|g| g == guide)
        .expect("the guide is one of the two generations")
}

/// Starts `serve` (refreshes off) on what the kill left, and checks that it serves what the
/// store holds: `lineup.json` lists exactly the stored lineup, and every programme of the EPG
/// comes from the stored guide's generation.
fn check_serves(sandbox: &Sandbox, stored: &Stored, generation: usize, at: &str) {
    write_config(sandbox, "100d");
    let mut server = sandbox.serve(&["--listen", "127.0.0.1:0", "--no-discovery"]);
    let (status, _, body) = http_get(&server.url("/lineup.json"));
    assert_eq!(status, 200, "{at}: lineup.json");
    let lineup: serde_json::Value = serde_json::from_slice(&body).expect("lineup JSON");
    let served: BTreeSet<String> = lineup
        .as_array()
        .expect("array")
        .iter()
        .map(|c| c["GuideNumber"].as_str().expect("GuideNumber").to_string())
        .collect();
    assert_eq!(
        served, stored.lineup,
        "{at}: lineup.json is not what the store holds"
    );
    let (status, _, epg) = http_get(&server.url("/epg.xml"));
    assert_eq!(status, 200, "{at}: epg.xml");
    let epg = String::from_utf8(epg).expect("UTF-8 EPG");
    let other = GENERATIONS[1 - generation];
    assert!(
        !epg.contains(other),
        "{at}: the EPG has programmes of the guide the store no longer holds ({other})"
    );
    if !stored.lineup.is_empty() {
        assert!(epg.contains(GENERATIONS[generation]), "{at}: no programmes");
    }
    assert_eq!(server.stop(), 0, "{at}: serve exit");
}

/// The sandbox's config: the provider's CA is not needed (plain HTTP); `interval` is how often
/// `serve` refreshes catalogs and guides (at start when due).
fn write_config(sandbox: &Sandbox, interval: &str) {
    std::fs::write(
        sandbox.config_path(),
        format!("[refresh]\ncatalog = \"{interval}\"\nepg = \"{interval}\"\n"),
    )
    .expect("write config");
}

/// How a kill found the process.
#[derive(Clone, Copy)]
struct Struck {
    /// It was still running.
    running: bool,
    /// It was inside a write transaction (looked at just before the kill).
    writing: bool,
}

/// Runs `streamforge ARGS` and SIGKILLs it: every fourth kill (`kill % 4 == 3`) the moment it
/// is seen inside a write transaction in the second half of a run that takes about `full` (the
/// first half opens the store, whose schema check is a write transaction too), so that every
/// command is struck mid-transaction whatever the timing; the others after a random delay over
/// the run (see [`Rng::delay`]). Returns how the kill found the process, and when it struck for
/// the failure messages.
fn strike(
    sandbox: &Sandbox,
    args: &[&str],
    full: Duration,
    kill: usize,
    rng: &mut Rng,
) -> (Struck, String) {
    let mut child = spawn(sandbox, args);
    let when = if kill % 4 == 3 {
        let started = Instant::now();
        while !(started.elapsed() >= full / 2
            && in_write_transaction(child.id(), &sandbox.data_dir()))
            && matches!(child.try_wait(), Ok(None))
            && started.elapsed() < full * 2
        {
            std::thread::yield_now();
        }
        format!("at its write transaction, after {:?}", started.elapsed())
    } else {
        let delay = rng.delay(full, kill);
        std::thread::sleep(delay);
        format!("after {delay:?}")
    };
    let struck = Struck {
        running: matches!(child.try_wait(), Ok(None)),
        writing: in_write_transaction(child.id(), &sandbox.data_dir()),
    };
    let _ = child.kill();
    let _ = child.wait();
    (struck, when)
}

fn spawn(sandbox: &Sandbox, args: &[&str]) -> Child {
    sandbox
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn streamforge")
}

/// How long a full run of `streamforge ARGS` takes.
fn timed(sandbox: &Sandbox, args: &[&str]) -> Duration {
    let started = Instant::now();
    sandbox.run(args, "").expect(0);
    started.elapsed()
}

#[test]
fn killed_at_random_moments_the_store_holds_old_or_new_and_serves_it() {
    let mut rng = Rng(seed());
    let kills = kills();
    let test_started = Instant::now();
    let (categories, catalog_a) = generated_catalog(STREAMS);
    let catalog_b = changed_catalog(&catalog_a);
    let catalogs = [catalog_a.clone(), catalog_b.clone()];
    let provider = FakeProvider::start(ProviderOptions {
        accounts: vec![FakeAccount::new("alice", "Crash-Pw-1", 2)],
        categories: categories.clone(),
        streams: catalog_a.clone(),
        ..ProviderOptions::default()
    })
    .expect("start fake provider");
    let sandbox = Sandbox::new();
    write_config(&sandbox, "100d");
    sandbox.add_account("main", &provider.http_url(), "alice", "Crash-Pw-1", 2);
    let guide_file = sandbox.path().join("guide.xml");
    let guides = [guide(&catalog_a, 0), guide(&catalog_b, 1)];
    std::fs::write(&guide_file, &guides[0]).expect("write guide");
    sandbox.run(&["sync"], "").expect(0);
    sandbox
        .run(
            &["epg", "add", guide_file.to_str().unwrap(), "--name", "g"],
            "",
        )
        .expect(0);

    // Each kind of data's two states, learnt from full runs that replace one with the other
    // (timed: the kills are spread over such runs).
    let a = read_store(&sandbox.data_dir()).catalog;
    provider.set_catalog(categories.clone(), catalog_b.clone());
    let sync_time = timed(&sandbox, &["sync"]);
    let catalog_sets = [a, read_store(&sandbox.data_dir()).catalog];
    let a = read_store(&sandbox.data_dir()).guide;
    std::fs::write(&guide_file, &guides[1]).expect("write guide");
    let refresh_time = timed(&sandbox, &["epg", "refresh", "g"]);
    let guide_sets = [a, read_store(&sandbox.data_dir()).guide];
    println!("full runs: sync {sync_time:?}, epg refresh {refresh_time:?}");
    assert_ne!(catalog_sets[0], catalog_sets[1]);
    assert_ne!(guide_sets[0], guide_sets[1]);
    let mut outcomes = Vec::new();

    // Catalog syncs, the provider's catalog flipping between A and B before each.
    for kill in 0..kills {
        let before = read_store(&sandbox.data_dir());
        let next = catalog_sets
            .iter()
            .position(|c| *c != before.catalog)
            .unwrap();
        provider.set_catalog(categories.clone(), catalogs[next].clone());
        let (killed, when) = strike(&sandbox, &["sync"], sync_time, kill, &mut rng);
        let at = format!("sync kill {kill} {when}");
        let after = read_store(&sandbox.data_dir());
        old_or_new(
            "catalog",
            &after.catalog,
            &before.catalog,
            &catalog_sets[next],
            &at,
        );
        outcomes.push(("sync", killed, after.catalog == catalog_sets[next]));
        let generation = generation_of(&after.guide, &guide_sets);
        check_serves(&sandbox, &after, generation, &at);
    }

    // Guide refreshes, the guide file flipping between generations A and B.
    for kill in 0..kills {
        let before = read_store(&sandbox.data_dir());
        let next = 1 - generation_of(&before.guide, &guide_sets);
        std::fs::write(&guide_file, &guides[next]).expect("write guide");
        let (killed, when) = strike(
            &sandbox,
            &["epg", "refresh", "g"],
            refresh_time,
            kill,
            &mut rng,
        );
        let at = format!("epg refresh kill {kill} {when}");
        let after = read_store(&sandbox.data_dir());
        old_or_new("guide", &after.guide, &before.guide, &guide_sets[next], &at);
        outcomes.push(("epg refresh", killed, after.guide == guide_sets[next]));
        let generation = generation_of(&after.guide, &guide_sets);
        check_serves(&sandbox, &after, generation, &at);
    }

    // Auto-mapping, alternating between two thresholds that map different sets, on a catalog
    // of the streams of every MAPPED_EVERY-th guide channel, every second one without its guide
    // id (mapped by name only).
    let guide_ids = &guide_sets[generation_of(&read_store(&sandbox.data_dir()).guide, &guide_sets)];
    let mapped_ids: BTreeSet<&String> = guide_ids.iter().step_by(MAPPED_EVERY).collect();
    let mapped_catalog: Vec<FakeStream> = catalog_a
        .iter()
        .filter(|s| {
            s.epg_channel_id
                .as_ref()
                .is_some_and(|id| mapped_ids.contains(id))
        })
        .enumerate()
        .map(|(i, s)| FakeStream {
            epg_channel_id: s.epg_channel_id.clone().filter(|_| i % 2 == 0),
            ..s.clone()
        })
        .collect();
    provider.set_catalog(categories.clone(), mapped_catalog);
    sandbox.run(&["sync"], "").expect(0);
    // The two mapping sets, from full runs one way and the other (timed: they take different
    // times, and the kills alternate between them).
    let to_first = timed(
        &sandbox,
        &["map", "auto", "--min-confidence", THRESHOLDS[0]],
    );
    let first = read_store(&sandbox.data_dir()).mappings;
    let to_second = timed(
        &sandbox,
        &["map", "auto", "--min-confidence", THRESHOLDS[1]],
    );
    let mapping_sets = [first, read_store(&sandbox.data_dir()).mappings];
    let map_time = (to_first + to_second) / 2;
    println!("map auto: {map_time:?}");
    assert_ne!(mapping_sets[0], mapping_sets[1]);
    for kill in 0..kills {
        let before = read_store(&sandbox.data_dir());
        let next = mapping_sets
            .iter()
            .position(|m| *m != before.mappings)
            .unwrap();
        let args = ["map", "auto", "--min-confidence", THRESHOLDS[next]];
        let (killed, when) = strike(&sandbox, &args, map_time, kill, &mut rng);
        let at = format!("map auto kill {kill} {when}");
        let after = read_store(&sandbox.data_dir());
        old_or_new(
            "mappings",
            &after.mappings,
            &before.mappings,
            &mapping_sets[next],
            &at,
        );
        outcomes.push(("map auto", killed, after.mappings == mapping_sets[next]));
        let generation = generation_of(&after.guide, &guide_sets);
        check_serves(&sandbox, &after, generation, &at);
    }

    // `serve`, whose refresh thread syncs the catalog and refreshes the guide at start (both
    // are due at once), flipping both between runs.
    let serve_time = {
        let flip = read_store(&sandbox.data_dir());
        let next = catalog_sets
            .iter()
            .position(|c| *c != flip.catalog)
            .unwrap();
        provider.set_catalog(categories.clone(), catalogs[next].clone());
        let generation = 1 - generation_of(&flip.guide, &guide_sets);
        std::fs::write(&guide_file, &guides[generation]).expect("write guide");
        write_config(&sandbox, "1s");
        let started = Instant::now();
        let mut child = sandbox
            .command(&["serve", "--listen", "127.0.0.1:0", "--no-discovery"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let log = Lines::follow(child.stderr.take().expect("stderr"));
        let refreshed = log.wait_for(Duration::from_secs(120), 1, |l| l.contains("programmes in"));
        let elapsed = started.elapsed();
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            refreshed.is_some(),
            "serve did not refresh:\n{}",
            log.text()
        );
        elapsed
    };
    println!("serve until its refreshes are done: {serve_time:?}");
    for kill in 0..kills {
        let before = read_store(&sandbox.data_dir());
        let next_catalog = catalog_sets
            .iter()
            .position(|c| *c != before.catalog)
            .unwrap();
        provider.set_catalog(categories.clone(), catalogs[next_catalog].clone());
        let next_guide = 1 - generation_of(&before.guide, &guide_sets);
        std::fs::write(&guide_file, &guides[next_guide]).expect("write guide");
        write_config(&sandbox, "1s");
        let (killed, when) = strike(
            &sandbox,
            &["serve", "--listen", "127.0.0.1:0", "--no-discovery"],
            serve_time,
            kill,
            &mut rng,
        );
        let at = format!("serve kill {kill} {when}");
        let after = read_store(&sandbox.data_dir());
        old_or_new(
            "catalog",
            &after.catalog,
            &before.catalog,
            &catalog_sets[next_catalog],
            &at,
        );
        old_or_new(
            "guide",
            &after.guide,
            &before.guide,
            &guide_sets[next_guide],
            &at,
        );
        outcomes.push(("serve", killed, after.catalog == catalog_sets[next_catalog]));
        let generation = generation_of(&after.guide, &guide_sets);
        check_serves(&sandbox, &after, generation, &at);
    }

    for command in ["sync", "epg refresh", "map auto", "serve"] {
        let of = |pick: fn(&(&str, Struck, bool)) -> bool| {
            outcomes
                .iter()
                .filter(|o| o.0 == command && pick(o))
                .count()
        };
        println!(
            "{command}: {} of {kills} kills struck a running process, {} of them inside a write \
             transaction; {} left the new data, the rest the old",
            of(|o| o.1.running),
            of(|o| o.1.writing),
            of(|o| o.2)
        );
    }
    println!("{kills} kills per command in {:?}", test_started.elapsed());
    // The point is to strike inside transactions: every command's runs write, and a quarter of
    // its kills wait for that.
    for command in ["sync", "epg refresh", "map auto"] {
        assert!(
            kills < 4 || outcomes.iter().any(|o| o.0 == command && o.1.writing),
            "no kill of {command} struck inside a write transaction"
        );
    }
}
