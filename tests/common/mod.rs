//! Support for integration tests: run the real `streamforge` binary with a scratch data dir and a
//! time bound, and read what it printed. Long-running children (`serve`, `events --follow`) are
//! read line by line, so a test blocks (bounded) until a line appears instead of polling.
#![allow(dead_code)] // each test crate uses a different part of this module

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

pub mod ts;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// No CLI command in these tests should take anywhere near this long.
const COMMAND_LIMIT: Duration = Duration::from_secs(120);

/// What one run of the binary printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with both streams when the exit code is not `code`.
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// A scratch installation: its own data dir and config file.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox::with_config("")
    }

    pub fn with_config(config: &str) -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("streamforge.toml"), config).expect("write config");
        Sandbox { dir }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("streamforge.toml")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `account add NAME --url URL --username USER --max-connections MAX`, the password on
    /// stdin; it must succeed.
    pub fn add_account(&self, name: &str, url: &str, user: &str, password: &str, max: u32) {
        let max = max.to_string();
        self.run(
            &[
                "account",
                "add",
                name,
                "--url",
                url,
                "--username",
                user,
                "--password-stdin",
                "--max-connections",
                &max,
            ],
            &format!("{password}\n"),
        )
        .expect(0);
    }

    /// Runs `streamforge ARGS` against this sandbox, with `stdin` as standard input.
    pub fn run(&self, args: &[&str], stdin: &str) -> Run {
        run_bounded(self.command(args), stdin)
    }

    /// Syncs the accounts, adds the fixture guide (`tests/fixtures/guide.xml`) and auto-maps.
    pub fn sync_guide_and_map(&self) {
        self.run(&["sync"], "").expect(0);
        let guide = self.path().join("guide.xml");
        std::fs::write(&guide, include_bytes!("../fixtures/guide.xml")).unwrap();
        self.run(&["epg", "add", guide.to_str().unwrap()], "")
            .expect(0);
        self.run(&["map", "auto"], "").expect(0);
    }
}

/// Runs a command to completion within `COMMAND_LIMIT`, killing it past that.
pub fn run_bounded(mut command: Command, stdin: &str) -> Run {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn streamforge");
    let pid = child.id();
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes());
    }
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = match finished.recv_timeout(COMMAND_LIMIT) {
        Ok(output) => output.expect("wait for streamforge"),
        Err(_) => {
            let _ = signal::kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            panic!("streamforge did not finish within {COMMAND_LIMIT:?}");
        }
    };
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Every file below `dir`, recursively.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// How long `serve` may take to say it is serving, and to exit after SIGTERM.
const SERVER_LIMIT: Duration = Duration::from_secs(60);

/// What a child process prints, line by line, collected by a reader thread so that a test can
/// wait (bounded) for a line instead of polling.
pub struct Lines {
    state: Mutex<Printed>,
    changed: Condvar,
}

struct Printed {
    text: String,
    closed: bool,
}

impl Lines {
    /// Collects what `output` prints until it closes.
    pub fn follow(output: impl Read + Send + 'static) -> Arc<Lines> {
        let lines = Arc::new(Lines {
            state: Mutex::new(Printed {
                text: String::new(),
                closed: false,
            }),
            changed: Condvar::new(),
        });
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines().map_while(Result::ok) {
                let mut state = sink.state.lock().unwrap();
                state.text.push_str(&line);
                state.text.push('\n');
                sink.changed.notify_all();
            }
            sink.state.lock().unwrap().closed = true;
            sink.changed.notify_all();
        });
        lines
    }

    /// Everything printed so far.
    pub fn text(&self) -> String {
        self.state.lock().unwrap().text.clone()
    }

    /// How many lines so far satisfy `matches`.
    pub fn count(&self, matches: impl Fn(&str) -> bool) -> usize {
        self.state
            .lock()
            .unwrap()
            .text
            .lines()
            .filter(|l| matches(l))
            .count()
    }

    /// Blocks until `count` (at least 1) lines satisfy `matches` and returns the `count`th;
    /// `None` when the output closed first or `limit` passed.
    pub fn wait_for(
        &self,
        limit: Duration,
        count: usize,
        matches: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + limit;
        let mut state = self.state.lock().unwrap();
        loop {
            let found: Vec<&str> = state.text.lines().filter(|l| matches(l)).collect();
            if found.len() >= count {
                return Some(found[count - 1].to_string());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if state.closed || left.is_zero() {
                return None;
            }
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }

    /// Blocks until the output closes (the process exited); `false` after `limit`.
    pub fn wait_closed(&self, limit: Duration) -> bool {
        let state = self.state.lock().unwrap();
        let (state, _) = self
            .changed
            .wait_timeout_while(state, limit, |s| !s.closed)
            .unwrap();
        state.closed
    }
}

/// A running `streamforge serve`: `stop` sends SIGTERM; dropping it kills the process.
pub struct Server {
    child: Option<Child>,
    /// The first address the server printed that it listens on.
    pub addr: std::net::SocketAddr,
    stderr: Arc<Lines>,
}

impl Sandbox {
    /// Starts `streamforge serve ARGS` and waits (bounded) until it says it is serving.
    pub fn serve(&self, args: &[&str]) -> Server {
        self.start_server("serve", args)
    }

    /// Starts `streamforge COMMAND ARGS` (`serve` or `demo`) and waits (bounded) until it says
    /// it is serving.
    pub fn start_server(&self, command: &str, args: &[&str]) -> Server {
        let mut child = self
            .command(&[command])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn streamforge serve");
        let stderr = Lines::follow(child.stderr.take().expect("stderr"));
        let serving = stderr.wait_for(SERVER_LIMIT, 1, |line| {
            line.contains("serving") && line.contains(" on ")
        });
        let Some(line) = serving else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not start:\n{}", stderr.text());
        };
        let addr = line
            .split(" on ")
            .nth(1)
            .and_then(|rest| rest.split([',', ' ']).next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no listen address in {line:?}"));
        Server {
            child: Some(child),
            addr,
            stderr,
        }
    }

    /// Starts `streamforge events --follow`: every event logged so far, then each new one.
    pub fn follow_events(&self) -> EventLog {
        let mut child = self
            .command(&["events", "--follow", "--limit", "100000"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn streamforge events --follow");
        let lines = Lines::follow(child.stdout.take().expect("stdout"));
        EventLog { child, lines }
    }

    /// `streamforge ARGS` against this sandbox, not started yet.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_streamforge"));
        command
            .arg("--config")
            .arg(self.config_path())
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .env_remove("STREAMFORGE_CONFIG")
            .env_remove("STREAMFORGE_DATA_DIR");
        command
    }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    /// What the server printed so far.
    pub fn log(&self) -> String {
        self.stderr.text()
    }

    /// The server's log: count lines, or block (bounded) for the nth that matches.
    pub fn log_lines(&self) -> &Lines {
        &self.stderr
    }

    /// Sends SIGTERM and waits (bounded) for the exit code; the log is complete afterwards.
    pub fn stop(&mut self) -> i32 {
        let mut child = self.child.take().expect("the server is running");
        let pid = Pid::from_raw(child.id() as i32);
        let _ = signal::kill(pid, Signal::SIGTERM);
        let (exited, exit) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = exited.send(child.wait());
        });
        let Ok(status) = exit.recv_timeout(SERVER_LIMIT) else {
            let _ = signal::kill(pid, Signal::SIGKILL);
            panic!("serve did not stop on SIGTERM:\n{}", self.log());
        };
        assert!(
            self.stderr.wait_closed(SERVER_LIMIT),
            "serve exited but its stderr stayed open"
        );
        status.expect("wait for serve").code().unwrap_or(-1)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `streamforge events --follow` running against a sandbox: the event log as it grows, each
/// line `TIMESTAMP  LEVEL  CATEGORY  MESSAGE`. Stopped on drop.
pub struct EventLog {
    child: Child,
    lines: Arc<Lines>,
}

impl EventLog {
    /// How many events of `category` so far have `needle` in their message.
    pub fn count(&self, category: &str, needle: &str) -> usize {
        self.lines.count(|line| is_event(line, category, needle))
    }

    /// Waits (bounded) until `count` events of `category` with `needle` in their message have
    /// been logged, and returns the line of the last of them.
    pub fn wait_for_count(
        &self,
        category: &str,
        needle: &str,
        count: usize,
        limit: Duration,
    ) -> String {
        self.lines
            .wait_for(limit, count, |line| is_event(line, category, needle))
            .unwrap_or_else(|| {
                panic!(
                    "no {count} {category} events with {needle:?} within {limit:?}:\n{}",
                    self.lines.text()
                )
            })
    }

    /// Waits (bounded) for an event of `category` with `needle` in its message.
    pub fn wait_for(&self, category: &str, needle: &str, limit: Duration) -> String {
        self.wait_for_count(category, needle, 1, limit)
    }
}

fn is_event(line: &str, category: &str, needle: &str) -> bool {
    line.split_whitespace().nth(2) == Some(category) && line.contains(needle)
}

impl Drop for EventLog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A GET with a time bound: (status, headers, body).
pub fn http_get(url: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    raw_request(url, "GET", "HTTP/1.1")
}

/// Sends one request with `method` and `version` and reads the whole close-delimited reply.
pub fn raw_request(
    url: &str,
    method: &str,
    version: &str,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "{method} {path} {version}\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("read reply");
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("reply head");
    let head = String::from_utf8_lossy(&reply[..split]).into_owned();
    let body = reply[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body)
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
