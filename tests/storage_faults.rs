//! A full disk and a read-only data dir (SPEC §9, issue 14): CLI writes fail with exit 1 and a
//! message naming the database, nothing stored is lost; a running `serve` keeps relaying while
//! its event log cannot be written, dropping and counting the events in `/metrics`.
//!
//! A full disk is a file size limit (RLIMIT_FSIZE, what `prlimit --fsize` sets): it needs no
//! privilege, and a write past it fails like one on a full disk. A read-only data dir is one
//! without write permission; as root (CI) the files are given to `nobody` first, so that the
//! commands (which run as the data dir's owner) meet the permissions as any user would.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Sandbox, Server, files_below, http_get, run_bounded};
use nix::sys::resource::{Resource, setrlimit};
use streamforge::fake_provider::{
    FakeAccount, FakeCategory, FakeProvider, FakeStream, ProviderOptions, generated_catalog,
};

const PASSWORD: &str = "Disk-Pw-4471";

/// A file size limit the open store fits in (its shared-memory index is 32 KiB) but a
/// catalog's worth of write-ahead log does not.
const SMALL_FILES: u64 = 128 * 1024;

/// How long a log line may take to appear after what caused it; only a failure waits this long.
const LIMIT: Duration = Duration::from_secs(60);

/// A sandbox with an account on `provider`, synced.
fn synced(provider: &FakeProvider) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.add_account("main", &provider.http_url(), "alice", PASSWORD, 4);
    sandbox.run(&["sync"], "").expect(0);
    sandbox
}

/// `streamforge ARGS` with every file it writes limited to `bytes`.
fn run_with_file_limit(sandbox: &Sandbox, args: &[&str], stdin: &str, bytes: u64) -> common::Run {
    let mut command = sandbox.command(args);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(move || Ok(setrlimit(Resource::RLIMIT_FSIZE, bytes, bytes)?));
    }
    run_bounded(command, stdin)
}

fn stream_count(sandbox: &Sandbox) -> usize {
    let run = sandbox.run(&["streams", "--json"], "").expect(0);
    run.json().as_array().expect("array").len()
}

fn integrity(data_dir: &Path) -> String {
    rusqlite::Connection::open(data_dir.join("streamforge.db"))
        .and_then(|db| db.query_row("PRAGMA integrity_check", [], |r| r.get(0)))
        .expect("integrity_check")
}

/// A failed write: exit 1, one clear line naming the database, no panic, no password.
fn assert_clear_failure(run: &common::Run, data_dir: &Path, what: &str) {
    assert_eq!(run.code, 1, "{what}: exit code\n{}", run.stderr);
    let db = data_dir.join("streamforge.db");
    assert!(
        run.stderr.contains(&db.display().to_string()),
        "{what}: the error does not name {}:\n{}",
        db.display(),
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{what}:\n{}", run.stderr);
    assert!(!run.stderr.contains(PASSWORD), "{what}:\n{}", run.stderr);
}

#[test]
fn on_a_full_disk_cli_writes_fail_naming_the_database_and_keep_the_old_data() {
    let (provider, categories, streams) = provider_with_catalog(3000);
    let sandbox = synced(&provider);
    let before = stream_count(&sandbox);
    assert_eq!(before, 3000);

    // The panel's catalog changes; the sync that would store it runs out of room mid-way.
    provider.set_catalog(categories, streams[..1000].to_vec());
    let run = run_with_file_limit(&sandbox, &["sync"], "", SMALL_FILES);
    assert_clear_failure(&run, &sandbox.data_dir(), "sync");
    assert!(
        run.stderr.contains("is the disk full"),
        "no hint at the cause: {}",
        run.stderr
    );

    // No room at all: not even a new account.
    let run = run_with_file_limit(
        &sandbox,
        &add_other_account(&provider.http_url()),
        &format!("{PASSWORD}\n"),
        0,
    );
    assert_clear_failure(&run, &sandbox.data_dir(), "account add");

    // With room again, the store is sound and holds what it held.
    assert_eq!(integrity(&sandbox.data_dir()), "ok");
    assert_eq!(stream_count(&sandbox), before);
    let accounts = sandbox.run(&["account", "list", "--json"], "").expect(0);
    assert_eq!(accounts.json().as_array().expect("array").len(), 1);
    sandbox.run(&["sync"], "").expect(0);
    assert_eq!(stream_count(&sandbox), 1000);
}

/// Takes write permission away from the data dir and everything in it (as root, after giving it
/// all to `nobody`, who the commands then run as); gives it back on drop.
struct ReadOnly {
    data_dir: PathBuf,
}

const NOBODY: u32 = 65534;

impl ReadOnly {
    fn new(sandbox: &Sandbox) -> ReadOnly {
        let data_dir = sandbox.data_dir();
        if nix::unistd::geteuid().is_root() {
            // `nobody` must reach the data dir inside the sandbox.
            set_mode(sandbox.path(), 0o755);
            for path in files_below(&data_dir).iter().chain([&data_dir]) {
                std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).expect("chown");
            }
        }
        for file in files_below(&data_dir) {
            set_mode(&file, 0o400);
        }
        set_mode(&data_dir, 0o500);
        ReadOnly { data_dir }
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        set_mode(&self.data_dir, 0o700);
        for file in files_below(&self.data_dir) {
            set_mode(&file, 0o600);
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn in_a_read_only_data_dir_cli_writes_fail_naming_the_database() {
    let (provider, categories, streams) = provider_with_catalog(200);
    let sandbox = synced(&provider);
    provider.set_catalog(categories, streams[..50].to_vec());
    {
        let _read_only = ReadOnly::new(&sandbox);
        let run = sandbox.run(&["sync"], "");
        assert_clear_failure(&run, &sandbox.data_dir(), "sync");
        let run = sandbox.run(
            &add_other_account(&provider.http_url()),
            &format!("{PASSWORD}\n"),
        );
        assert_clear_failure(&run, &sandbox.data_dir(), "account add");
    }
    assert_eq!(integrity(&sandbox.data_dir()), "ok");
    assert_eq!(stream_count(&sandbox), 200);
}

/// A viewer of `/auto/vCHANNEL`, its response head read.
fn tune(server: &Server, channel: &str) -> TcpStream {
    let mut socket = TcpStream::connect(server.addr).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(socket, "GET /auto/v{channel} HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        socket.read_exact(&mut byte).expect("response head");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{head:?}");
    socket
}

/// Reads `n` stream bytes (within the socket's timeout).
fn watch(viewer: &mut TcpStream, n: usize) {
    let mut data = vec![0; n];
    viewer.read_exact(&mut data).expect("stream bytes");
    assert_eq!(data[0], 0x47, "MPEG-TS sync byte");
}

/// Sets the (soft) file size limit of the running process `pid`: lowered and raised again
/// without privilege.
fn limit_files_of(pid: u32, limit: &str) {
    let status = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--fsize={limit}:")])
        .status()
        .expect("run prlimit (util-linux)");
    assert!(status.success(), "prlimit failed");
}

fn metric(server: &Server, name: &str) -> u64 {
    let (status, _, body) = http_get(&server.url("/metrics"));
    assert_eq!(status, 200);
    String::from_utf8(body)
        .expect("UTF-8")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[test]
fn serve_keeps_relaying_while_its_event_log_cannot_be_written() {
    let provider = FakeProvider::start(ProviderOptions {
        accounts: vec![FakeAccount::new("alice", PASSWORD, 4)],
        ..ProviderOptions::default()
    })
    .expect("start fake provider");
    // At debug level the server logs each event it could not record.
    let sandbox = Sandbox::with_config("[log]\nlevel = \"debug\"\n");
    sandbox.add_account("main", &provider.http_url(), "alice", PASSWORD, 4);
    sandbox.sync_guide_and_map();
    let mut server = sandbox.serve(&["--listen", "127.0.0.1:0", "--no-discovery"]);
    let events = sandbox.follow_events();
    let mut first = tune(&server, "101");
    watch(&mut first, 188 * 50);
    events.wait_for("session", "channel 101 ", LIMIT);
    assert_eq!(metric(&server, "streamforge_events_dropped_total"), 0);

    // The disk fills up under the running server.
    let pid = server.pid();
    limit_files_of(pid, "0");
    let mut second = tune(&server, "300");
    let lines = server.log_lines();
    lines
        .wait_for(LIMIT, 1, |l| l.contains("not recorded: channel 300 "))
        .unwrap_or_else(|| panic!("the event was not dropped:\n{}", server.log()));
    let warning = lines
        .wait_for(LIMIT, 1, |l| l.contains("could not record an event"))
        .expect("a warning");
    assert!(warning.contains("streamforge.db"), "{warning}");
    assert!(metric(&server, "streamforge_events_dropped_total") >= 1);
    // Both viewers are still served, and so is a document.
    watch(&mut first, 188 * 500);
    watch(&mut second, 188 * 500);
    assert_eq!(http_get(&server.url("/lineup.json")).0, 200);

    // Room again: the next event is recorded.
    limit_files_of(pid, "unlimited");
    let mut third = tune(&server, "1000");
    watch(&mut third, 188 * 50);
    server
        .log_lines()
        .wait_for(LIMIT, 1, |l| l.contains("the event log is written again"))
        .unwrap_or_else(|| panic!("the event log did not recover:\n{}", server.log()));
    let events = sandbox.run(&["events", "--json"], "").expect(0).json();
    let messages: Vec<&str> = events
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    let started = |channel: &str| {
        messages
            .iter()
            .any(|m| m.starts_with(&format!("channel {channel} ")) && m.contains("started"))
    };
    assert!(started("101") && started("1000"), "{messages:#?}");
    assert!(
        !started("300"),
        "an event written to a full disk: {messages:#?}"
    );
    drop((first, second, third, events));
    assert_eq!(server.stop(), 0, "{}", server.log());
}

/// `account add other` against the provider at `url`, the password on stdin.
fn add_other_account(url: &str) -> [&str; 8] {
    [
        "account",
        "add",
        "other",
        "--url",
        url,
        "--username",
        "alice",
        "--password-stdin",
    ]
}

/// A fake provider whose one account sees a generated catalog of `streams` streams, and that
/// catalog (to change it from).
fn provider_with_catalog(streams: usize) -> (FakeProvider, Vec<FakeCategory>, Vec<FakeStream>) {
    let (categories, streams) = generated_catalog(streams);
    let provider = FakeProvider::start(ProviderOptions {
        accounts: vec![FakeAccount::new("alice", PASSWORD, 4)],
        categories: categories.clone(),
        streams: streams.clone(),
        ..ProviderOptions::default()
    })
    .expect("start fake provider");
    (provider, categories, streams)
}
