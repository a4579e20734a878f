//! What a run stands on: the fake provider (in this process, on std threads) with N channels of a
//! primary and a backup stream each, a data dir prepared through the library (account, sync,
//! guide, auto-map, as `streamforge demo` does), and the relays under test as child processes:
//! the real release binary `streamforge serve`, or nginx with a generated config.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use streamforge::config::Config;
use streamforge::fake_provider::{
    FakeAccount, FakeCategory, FakeProvider, FakeStream, ProviderOptions, RedirectStyle,
};
use streamforge::store::{AccountKind, NewAccount, NewSource, SourceKind, Store};

pub const USER: &str = "bench";
pub const PASSWORD: &str = "bench";
const ACCOUNT: &str = "bench";

/// One channel of the bench lineup.
#[derive(Clone, Debug)]
pub struct BenchChannel {
    pub number: String,
    pub guide_id: String,
    pub primary: u64,
    pub backup: u64,
}

/// `n` channels: numbers 101…, a primary "Bench NNN FHD" (ids 10001…) and a backup
/// "Bench NNN HD" (ids 20001…) sharing the guide id `benchNNN.sf`.
pub fn channels(n: usize) -> Vec<BenchChannel> {
    (0..n)
        .map(|i| BenchChannel {
            number: (101 + i).to_string(),
            guide_id: format!("bench{i:03}.sf"),
            primary: 10_001 + i as u64,
            backup: 20_001 + i as u64,
        })
        .collect()
}

/// The paced fake panel serving `channels`; one account without a connection limit.
pub fn provider(
    channels: &[BenchChannel],
    bitrate_bps: u64,
    redirect: RedirectStyle,
) -> Result<FakeProvider, String> {
    let mut streams = Vec::new();
    for (i, c) in channels.iter().enumerate() {
        for (id, quality) in [(c.primary, "FHD"), (c.backup, "HD")] {
            streams.push(FakeStream {
                epg_channel_id: Some(c.guide_id.clone()),
                ..FakeStream::new(id, &format!("Bench {i:03} {quality}"), "1")
            });
        }
    }
    FakeProvider::start(ProviderOptions {
        accounts: vec![FakeAccount::new(USER, PASSWORD, 0)],
        categories: vec![FakeCategory::new("1", "BENCH")],
        streams,
        bitrate_bps,
        redirect,
        ..ProviderOptions::default()
    })
    .map_err(|e| format!("starting the fake provider: {e}"))
}

/// An XMLTV guide of `channels` (numbers as display names) with a few programmes each.
pub fn guide(channels: &[BenchChannel]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tv generator-info-name=\"streamforge bench\">\n",
    );
    for (i, c) in channels.iter().enumerate() {
        let _ = writeln!(
            xml,
            "  <channel id=\"{}\"><display-name>Bench {i:03}</display-name><display-name>{}</display-name></channel>",
            c.guide_id, c.number
        );
    }
    for c in channels {
        for slot in 0..4 {
            let _ = writeln!(
                xml,
                "  <programme start=\"20300101{:02}0000 +0000\" stop=\"20300101{:02}0000 +0000\" channel=\"{}\"><title>Show {slot}</title></programme>",
                slot,
                slot + 1,
                c.guide_id
            );
        }
    }
    xml.push_str("</tv>\n");
    xml
}

/// Prepares `data_dir` for serving `channels` from `provider`: account, sync, guide, auto-map.
/// Checks that every channel got its primary first and its backup second.
pub fn prepare_data_dir(
    data_dir: &Path,
    provider: &FakeProvider,
    channels: &[BenchChannel],
) -> Result<(), String> {
    let config = Config::default();
    let store = Store::open(data_dir).map_err(|e| e.to_string())?;
    let account = store
        .add_account(&NewAccount {
            name: ACCOUNT.into(),
            kind: AccountKind::Xtream,
            server_url: provider.http_url(),
            username: USER.into(),
            password: PASSWORD.to_string().into(),
            // A primary, a backup and an upgrade probe per channel at most.
            max_connections: 3 * channels.len() as u32 + 4,
            user_agent: None,
        })
        .map_err(|e| e.to_string())?;
    let guide_path = data_dir.join("bench-guide.xml");
    std::fs::write(&guide_path, guide(channels)).map_err(|e| e.to_string())?;
    let source = store
        .add_source(&NewSource {
            name: "bench-guide".into(),
            kind: SourceKind::File,
            location: guide_path.to_string_lossy().into_owned(),
            shift_seconds: 0,
        })
        .map_err(|e| e.to_string())?;
    streamforge::demo::load(&config, &store, data_dir, &account, &source)?;
    let mappings = store.mappings(None).map_err(|e| e.to_string())?;
    for c in channels {
        let mut ours: Vec<&streamforge::store::Mapping> = mappings
            .iter()
            .filter(|m| m.channel_number == c.number)
            .collect();
        ours.sort_by_key(|m| m.priority);
        let ids: Vec<i64> = ours.iter().map(|m| m.stream_id).collect();
        if ids != [c.primary as i64, c.backup as i64] {
            return Err(format!(
                "auto-map gave channel {} the streams {ids:?}, not [{}, {}] (primary, backup)",
                c.number, c.primary, c.backup
            ));
        }
    }
    Ok(())
}

/// Kills every child the harness started, from the watchdog or on exit.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

pub fn kill_all_children() {
    for pid in CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
        let pid = nix::unistd::Pid::from_raw(pid as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
}

/// A child process killed on drop (and by the kernel if the harness dies: PDEATHSIG).
pub struct Child {
    child: std::process::Child,
    pub log: Arc<Mutex<Vec<String>>>,
    what: &'static str,
}

impl Child {
    fn spawn(
        mut command: Command,
        what: &'static str,
        death: nix::sys::signal::Signal,
    ) -> Result<Child, String> {
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Some(death)).map_err(std::io::Error::from)
            });
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {what}: {e}"))?;
        CHILDREN.lock().unwrap().push(child.id());
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                if log.len() > 2000 {
                    log.drain(..1000);
                }
                log.push(line);
            }
        });
        Ok(Child { child, log, what })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log.lock().unwrap();
        log[log.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGTERM, then SIGKILL past `patience`.
    pub fn stop(&mut self, patience: Duration) -> Option<i32> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + patience;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                eprintln!(
                    "bench: {} did not stop on SIGTERM within {patience:?}: killed",
                    self.what
                );
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let id = self.child.id();
        CHILDREN
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|&p| p != id);
    }
}

/// `streamforge serve` on a prepared data dir, listening on an OS-picked loopback port.
pub fn start_streamforge(
    binary: &Path,
    config: &Path,
    data_dir: &Path,
) -> Result<(Child, SocketAddr), String> {
    let mut command = Command::new(binary);
    command
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--no-discovery"])
        .env_remove("STREAMFORGE_CONFIG")
        .env_remove("STREAMFORGE_DATA_DIR");
    let child = Child::spawn(
        command,
        "streamforge serve",
        nix::sys::signal::Signal::SIGKILL,
    )?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = child.log.lock().unwrap().iter().find_map(|line| {
            let rest = line.split(" on ").nth(1)?;
            line.contains("serving")
                .then(|| rest.split([',', ' ']).next()?.parse().ok())?
        });
        if let Some(addr) = found {
            return Ok((child, addr));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "streamforge serve did not start:\n{}",
                child.log_tail(20)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// nginx relaying `/` to the provider: one worker, `proxy_pass` with buffering off and 64k
/// buffers, HTTP/1.1 upstream, no access log, its own prefix, pid and temp dirs in `dir`.
pub fn start_nginx(dir: &Path, provider: SocketAddr) -> Result<(Child, SocketAddr), String> {
    let binary = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or("nginx is not installed (Debian: apt-get install -y nginx-light)")?;
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        probe.local_addr().map_err(|e| e.to_string())?.port()
    };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    for sub in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
    }
    let d = dir.display();
    // SAFETY: geteuid cannot fail and has no preconditions.
    let user = if unsafe { nix::libc::geteuid() } == 0 {
        "user root;\n"
    } else {
        ""
    };
    let conf = format!(
        "{user}worker_processes 1;\ndaemon off;\nmaster_process on;\npid {d}/nginx.pid;\n\
error_log {d}/logs/error.log warn;\nevents {{ worker_connections 4096; }}\n\
http {{\n  access_log off;\n  client_body_temp_path {d}/client_body;\n  proxy_temp_path {d}/proxy;\n\
  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
  server {{\n    listen {addr};\n    location / {{\n      proxy_pass http://{provider};\n\
      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_buffering off;\n\
      proxy_buffers 8 64k;\n      proxy_buffer_size 64k;\n      chunked_transfer_encoding off;\n\
    }}\n  }}\n}}\n"
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
    let mut command = Command::new(binary);
    command
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(dir.join("logs/error.log"));
    // SIGTERM: the master takes its worker down with it.
    let child = Child::spawn(command, "nginx", nix::sys::signal::Signal::SIGTERM)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("logs/error.log")).unwrap_or_default();
            return Err(format!(
                "nginx did not start:\n{}\n{log}",
                child.log_tail(20)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((child, addr))
}

/// The floor program (`relay-floor`, built with this harness) relaying to the provider.
pub fn start_floor(provider: SocketAddr) -> Result<(Child, SocketAddr), String> {
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        probe.local_addr().map_err(|e| e.to_string())?.port()
    };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut command = Command::new(env!("CARGO_BIN_EXE_relay-floor"));
    command
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--upstream")
        .arg(provider.to_string());
    let child = Child::spawn(command, "relay-floor", nix::sys::signal::Signal::SIGKILL)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "relay-floor did not start:\n{}",
                child.log_tail(20)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((child, addr))
}

/// A GET on loopback with a time bound: the body, or why not.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&reply).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no response head")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(head.lines().next().unwrap_or("").to_owned());
    }
    Ok(body.to_owned())
}

/// Prometheus text → `name{labels}` → value.
pub fn parse_metrics(text: &str) -> std::collections::BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}
