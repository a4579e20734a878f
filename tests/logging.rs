//! The log, end to end: `[log] level` changes what `serve` prints, lines carry journald
//! priorities when stderr is the journal, and no credential is printed even at `trace`.
//!
//! Each run tunes a channel on a one-tuner account, is refused a second one, asks for the lineup
//! and stops. Since `warn` hides the line saying where the server listens, the address and the
//! relay's events are read from `streamforge events --follow` (the event log), and each check
//! compares those events with what `serve` printed.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::{Sandbox, http_get};
use streamforge::fake_provider::{FakeAccount, FakeProvider, ProviderOptions};

const PASSWORD: &str = "Pw-Logging-41";
/// Channels of the fixture guide: the news stream and the (chunked) sports stream.
const NEWS: &str = "1000";
const SPORTS: &str = "300";
/// The longest wait for any one line.
const LIMIT: Duration = Duration::from_secs(60);

/// The lines a child prints, read on a thread so that every wait on them is bounded.
struct Lines {
    receiver: Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    fn read(from: impl Read + Send + 'static) -> Lines {
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Lines {
            receiver,
            seen: Vec::new(),
        }
    }

    /// The next line for which `wanted` holds, waiting at most `LIMIT`.
    fn wait_for(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receiver.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no {what} within {LIMIT:?}:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Every line up to the end of the stream, waiting at most `LIMIT` for it.
    fn until_end(mut self) -> Vec<String> {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receiver.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => return self.seen,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("the output did not end:\n{}", self.seen.join("\n"))
                }
            }
        }
    }
}

/// A child killed when the test is done with it.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `streamforge events --follow` prints `TIMESTAMP  LEVEL  CATEGORY  MESSAGE`.
fn event(line: &str) -> Option<(&str, &str, &str)> {
    let (_, rest) = line.split_once(' ')?;
    let (level, rest) = rest.trim_start().split_once(' ')?;
    let (category, message) = rest.trim_start().split_once(' ')?;
    Some((level, category, message.trim_start()))
}

/// The event of `category` at `level` that `follow` prints next; its message.
fn next_event(follow: &mut Lines, level: &str, category: &str) -> String {
    let line = follow.wait_for(&format!("{level} {category} event"), |line| {
        event(line).is_some_and(|(l, c, _)| l == level && c == category)
    });
    event(&line).unwrap().2.to_string()
}

/// What `JOURNAL_STREAM` says to `serve`.
enum Journal {
    /// Not set.
    Unset,
    /// Names `serve`'s stderr, as systemd sets it.
    ThisStderr,
    /// Names another file, as a variable inherited past a redirection would.
    Elsewhere,
}

/// What one run printed, and the events it logged.
struct Printed {
    /// Everything `serve` wrote to stdout and stderr.
    lines: Vec<String>,
    /// The messages of the session that started, and of the refusal for want of a tuner.
    started: String,
    refused: String,
}

impl Printed {
    fn has(&self, line: &str) -> bool {
        self.lines.iter().any(|l| l == line)
    }

    fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// Provider (one connection) → account → sync → guide → map, with `[log] level = LEVEL`; then
/// `serve` and the run described at the top.
fn serve_and_tune(level: &str, journal: Journal) -> Printed {
    let provider = FakeProvider::start(ProviderOptions {
        accounts: vec![FakeAccount::new("alice", PASSWORD, 1)],
        bitrate_bps: 4_000_000,
        ..ProviderOptions::default()
    })
    .expect("start fake provider");
    let sandbox = Sandbox::with_config(&format!("[log]\nlevel = {level:?}\n"));
    sandbox.add_account("main", &provider.http_url(), "alice", PASSWORD, 1);
    sandbox.sync_guide_and_map();

    let (reader, writer) = std::io::pipe().expect("pipe");
    let stderr = File::from(std::os::fd::OwnedFd::from(writer));
    let identity = |file: &File| {
        let metadata = file.metadata().expect("fstat");
        format!("{}:{}", metadata.dev(), metadata.ino())
    };
    let mut server = {
        let mut command = Command::new(env!("CARGO_BIN_EXE_streamforge"));
        command
            .arg("--config")
            .arg(sandbox.config_path())
            .arg("--data-dir")
            .arg(sandbox.data_dir())
            .args(["serve", "--listen", "127.0.0.1:0", "--no-discovery"])
            .env_remove("STREAMFORGE_CONFIG")
            .env_remove("STREAMFORGE_DATA_DIR")
            .env_remove("JOURNAL_STREAM");
        match journal {
            Journal::Unset => {}
            Journal::ThisStderr => {
                command.env("JOURNAL_STREAM", identity(&stderr));
            }
            Journal::Elsewhere => {
                let other = File::open(sandbox.config_path()).unwrap();
                command.env("JOURNAL_STREAM", identity(&other));
            }
        }
        command
            .stdin(Stdio::null())
            .stdout(stderr.try_clone().unwrap())
            .stderr(stderr);
        // The command (holding the pipe's write end) is dropped here, so the output ends with
        // the server.
        Killed(command.spawn().expect("spawn streamforge serve"))
    };
    let output = Lines::read(reader);
    let mut follower = Command::new(env!("CARGO_BIN_EXE_streamforge"))
        .arg("--config")
        .arg(sandbox.config_path())
        .arg("--data-dir")
        .arg(sandbox.data_dir())
        .args(["events", "--follow"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn streamforge events --follow");
    let mut follow = Lines::read(follower.stdout.take().unwrap());
    let _follower = Killed(follower);

    let serving = next_event(&mut follow, "info", "server");
    let addr: SocketAddr = serving
        .strip_prefix("serving on ")
        .and_then(|rest| rest.split([',', ' ']).next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no address in {serving:?}"));
    let mut viewer = TcpStream::connect(addr).unwrap();
    viewer
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(viewer, "GET /auto/v{NEWS} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut relayed = vec![0; 100_000];
    viewer
        .read_exact(&mut relayed)
        .expect("the channel is relayed");
    assert!(relayed.starts_with(b"HTTP/1.1 200"));
    let started = next_event(&mut follow, "info", "session");
    let (code, _, _) = http_get(&format!("http://{addr}/auto/v{SPORTS}"));
    assert_eq!(code, 503, "the only tuner is busy");
    let refused = next_event(&mut follow, "warn", "tuner");
    let (code, _, _) = http_get(&format!("http://{addr}/lineup.json"));
    assert_eq!(code, 200);
    drop(viewer);

    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let lines = output.until_end();
    // The output ended: the server has exited or is just about to.
    let status = server.0.wait().expect("wait for serve");
    assert_eq!(status.code(), Some(0), "{}", lines.join("\n"));
    Printed {
        lines,
        started,
        refused,
    }
}

#[test]
fn debug_adds_lines_that_info_leaves_out() {
    let info = serve_and_tune("info", Journal::Elsewhere);
    let debug = serve_and_tune("debug", Journal::Unset);
    for run in [&info, &debug] {
        let text = run.text();
        assert!(
            run.lines.iter().all(|l| l.starts_with("streamforge: ")),
            "plain lines (a JOURNAL_STREAM naming another file is not the journal):\n{text}"
        );
        assert!(
            run.lines
                .iter()
                .any(|l| l.starts_with("streamforge: info: serving ")),
            "{text}"
        );
        assert!(
            run.has(&format!("streamforge: info: {}", run.started)),
            "{text}"
        );
        assert!(
            run.has(&format!("streamforge: warn: {}", run.refused)),
            "{text}"
        );
        assert!(run.has("streamforge: info: stopped"), "{text}");
    }
    let requests = |run: &Printed| {
        run.lines
            .iter()
            .filter(|l| {
                l.starts_with("streamforge: debug: ") && l.ends_with("GET /lineup.json: 200")
            })
            .count()
    };
    assert_eq!(requests(&debug), 1, "{}", debug.text());
    // The relay's own steps: each attempt, the splice that starts the viewers, each viewer.
    for step in [
        ": attempt 1 on ",
        ": attempt 1 feeds the viewers (First, from a keyframe)",
        " tuned in",
    ] {
        assert!(
            debug
                .lines
                .iter()
                .any(|l| l.starts_with("streamforge: debug: channel ") && l.contains(step)),
            "no debug line with {step:?}:\n{}",
            debug.text()
        );
    }
    assert!(
        !info
            .lines
            .iter()
            .any(|l| l.starts_with("streamforge: debug: ")),
        "{}",
        info.text()
    );
    assert_eq!(requests(&info), 0);
}

#[test]
fn warn_leaves_out_the_info_lines() {
    let warn = serve_and_tune("warn", Journal::Unset);
    let text = warn.text();
    assert!(
        warn.has(&format!("streamforge: warn: {}", warn.refused)),
        "{text}"
    );
    // The session started (the event log says so) but is not printed, nor is anything else
    // below warn.
    assert!(!text.contains(&warn.started), "{text}");
    assert!(
        warn.lines
            .iter()
            .all(|l| l.starts_with("streamforge: warn: ") || l.starts_with("streamforge: error: ")),
        "{text}"
    );
    assert!(!text.contains("serving"), "{text}");
}

#[test]
fn nothing_printed_at_trace_holds_the_password() {
    let trace = serve_and_tune("trace", Journal::Unset);
    let text = trace.text();
    assert!(!text.contains(PASSWORD), "password printed:\n{text}");
    // Trace prints at least what debug does.
    assert!(
        trace
            .lines
            .iter()
            .any(|l| l.starts_with("streamforge: debug: ") && l.ends_with("GET /lineup.json: 200")),
        "{text}"
    );
    assert!(
        trace.has(&format!("streamforge: info: {}", trace.started)),
        "{text}"
    );
}

#[test]
fn on_the_journal_lines_carry_its_priorities() {
    let journal = serve_and_tune("debug", Journal::ThisStderr);
    let text = journal.text();
    for line in &journal.lines {
        let priority = line
            .strip_prefix('<')
            .and_then(|rest| rest.split_once('>'))
            .map(|(priority, _)| priority);
        assert!(
            matches!(priority, Some("3" | "4" | "6" | "7")),
            "{line:?} in:\n{text}"
        );
    }
    assert!(
        journal.lines.iter().any(|l| l.starts_with("<6>serving ")),
        "{text}"
    );
    assert!(journal.has(&format!("<6>{}", journal.started)), "{text}");
    assert!(journal.has(&format!("<4>{}", journal.refused)), "{text}");
    assert!(
        journal
            .lines
            .iter()
            .any(|l| l.starts_with("<7>") && l.ends_with("GET /lineup.json: 200")),
        "{text}"
    );
}
