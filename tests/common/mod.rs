//! Support for integration tests: run the real `streamforge` binary with a scratch data dir and a
//! time bound, and read what it printed.
#![allow(dead_code)] // each test crate uses a different part of this module

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

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

    /// Runs `streamforge ARGS` against this sandbox, with `stdin` as standard input.
    pub fn run(&self, args: &[&str], stdin: &str) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_streamforge"));
        command
            .arg("--config")
            .arg(self.config_path())
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .env_remove("STREAMFORGE_CONFIG")
            .env_remove("STREAMFORGE_DATA_DIR");
        run_bounded(command, stdin)
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
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
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
