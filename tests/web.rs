//! The appliance's pages, end to end: the real binary serving a live session from the fake
//! provider, looked at by the real clients. Debian's headless Chromium renders `/` (DOM and
//! screenshots at desktop and phone sizes), `tidy` validates the HTML, and `/tuners.html` is read
//! line by line the way Jellyfin's HDHomeRun code scrapes it.
//!
//! The screenshots are kept under the test's target temp dir; their paths are printed (run with
//! `--nocapture` to see them).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use common::{EventLog, Run, Sandbox, Server, header, http_get, run_bounded};
use serde_json::Value;
use streamforge::fake_provider::{
    FakeAccount, FakeProvider, FakeStream, Fault, ProviderOptions, demo_catalog,
};

const USERNAME: &str = "Wren-Subscriber-5521";
const PASSWORD: &str = "Pw-Web-4417-Otter";
/// A stream name no provider should send, mapped as channel 1000's backup.
const HOSTILE: &str = "UK: SF News <script>alert('pwned')</script> SD";
/// How long an event may take to be logged, or the server to rebuild its snapshot; only a
/// failure waits this long.
const LIMIT: Duration = Duration::from_secs(60);

/// Fields drop in order: the viewer, the event follower and the server stop before their data
/// dir goes.
struct Appliance {
    viewer: Option<Viewer>,
    events: EventLog,
    server: Server,
    _sandbox: Sandbox,
    provider: FakeProvider,
}

/// A provider whose account expires in 30 days and whose catalog has a hostile stream name; the
/// account synced, the fixture guide added and auto-mapped, and `serve` running (logging at
/// debug, so a test can wait on its snapshot rebuilds).
fn appliance() -> Appliance {
    let (categories, mut streams) = demo_catalog();
    streams.push(FakeStream {
        epg_channel_id: Some("sfnews.uk".into()),
        ..FakeStream::new(202, HOSTILE, "2")
    });
    let expires = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 30 * 86_400;
    let provider = FakeProvider::start(ProviderOptions {
        accounts: vec![FakeAccount {
            exp_date: Some(expires),
            ..FakeAccount::new(USERNAME, PASSWORD, 2)
        }],
        categories,
        streams,
        ..ProviderOptions::default()
    })
    .expect("start fake provider");
    let sandbox = Sandbox::with_config("[log]\nlevel = \"debug\"\n");
    sandbox.add_account("main", &provider.http_url(), USERNAME, PASSWORD, 2);
    sandbox.sync_guide_and_map();
    let server = sandbox.serve(&["--listen", "127.0.0.1:0", "--no-discovery"]);
    Appliance {
        viewer: None,
        events: sandbox.follow_events(),
        server,
        _sandbox: sandbox,
        provider,
    }
}

/// A viewer of one channel, drained on its own thread until dropped.
struct Viewer {
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl Viewer {
    /// Tunes `channel` and returns once the first stream bytes came: the session is live.
    fn watch(server: &Server, channel: &str) -> Viewer {
        let mut socket = TcpStream::connect(server.addr).unwrap();
        socket.set_read_timeout(Some(LIMIT)).unwrap();
        write!(socket, "GET /auto/v{channel} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut first = vec![0; 64 * 1024];
        let n = socket.read(&mut first).expect("the response starts");
        let head = String::from_utf8_lossy(&first[..n]);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let mut more = [0; 188];
        socket.read_exact(&mut more).expect("stream bytes");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let reader = std::thread::spawn(move || {
            let mut sink = vec![0; 64 * 1024];
            while !stopped.load(Ordering::Relaxed) {
                match socket.read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
            }
        });
        Viewer {
            stop,
            reader: Some(reader),
        }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// Debian's Chromium, headless, with a fresh profile and none of its background traffic.
fn chromium(args: &[&str], url: &str) -> Run {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut command = Command::new("chromium");
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url);
    let run = run_bounded(command, "");
    assert_eq!(run.code, 0, "chromium failed:\n{}", run.stderr);
    run
}

/// Takes a screenshot at `width`×`height`, checks it is a PNG of that size, and keeps it.
fn screenshot(url: &str, width: u32, height: u32) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("home-{width}x{height}.png"));
    let _ = std::fs::remove_file(&path);
    chromium(
        &[
            &format!("--window-size={width},{height}"),
            &format!("--screenshot={}", path.display()),
        ],
        url,
    );
    let png = std::fs::read(&path).expect("chromium wrote the screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    let dimension = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!((dimension(16), dimension(20)), (width, height));
    println!("screenshot: {}", path.display());
    path
}

fn page(server: &Server, path: &str) -> String {
    let (status, headers, body) = http_get(&server.url(path));
    assert_eq!(status, 200, "{path}");
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/html; charset=utf-8"),
        "{path}"
    );
    String::from_utf8(body).expect("UTF-8 page")
}

/// `tidy` finds neither errors nor warnings.
fn assert_valid_html(name: &str, html: &str) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), html).unwrap();
    let mut command = Command::new("tidy");
    command.args(["-q", "-e"]).arg(file.path());
    let run = run_bounded(command, "");
    assert_eq!(
        run.code, 0,
        "tidy on {name}:\n{}{}\n--- page\n{html}",
        run.stdout, run.stderr
    );
}

/// What the page must never show: the account's credentials, or anything of the panel's URL.
fn assert_no_credential(what: &str, text: &str, provider: &FakeProvider) {
    for secret in [PASSWORD, USERNAME, &provider.http_url(), "/live/"] {
        assert!(!text.contains(secret), "{what} shows {secret:?}");
    }
}

/// The tuners of `/tuners.html` as Jellyfin's `GetTunerInfosHttp` reads them: each line with
/// its tags stripped; a line holding `Channel` is a tuner, named by what comes before it (less
/// one character), on the channel after it.
fn jellyfin_tuners(html: &str) -> Vec<(String, String)> {
    html.lines()
        .map(|line| {
            let mut inside = false;
            line.chars()
                .filter(|&c| match c {
                    '<' => {
                        inside = true;
                        false
                    }
                    '>' => {
                        inside = false;
                        false
                    }
                    _ => !inside,
                })
                .collect::<String>()
        })
        .filter_map(|line| {
            let index = line.find("Channel")?;
            assert!(index >= 1, "Jellyfin throws on {line:?}");
            Some((line[..index - 1].to_string(), line[index + 7..].to_string()))
        })
        .collect()
}

fn status(server: &Server) -> Value {
    let (code, _, body) = http_get(&server.url("/status"));
    assert_eq!(code, 200);
    serde_json::from_slice(&body).expect("/status is JSON")
}

#[test]
fn a_real_browser_sees_the_live_session_the_plex_url_and_no_credential() {
    let mut appliance = appliance();
    let server = &appliance.server;
    appliance.viewer = Some(Viewer::watch(server, "101"));
    let url = server.url("/");

    let html = page(server, "/");
    assert_valid_html("/", &html);
    assert_no_credential("the page", &html, &appliance.provider);

    let dom = chromium(&["--dump-dom"], &url).stdout;
    assert_no_credential("the DOM", &dom, &appliance.provider);
    let live = section(&dom, "live");
    assert!(live.contains("101 StreamForge One"), "{live}");
    assert!(
        live.contains("UK: StreamForge One FHD (1080p) (main:101)"),
        "{live}"
    );
    assert!(live.contains(">primary<"), "{live}");
    let plex = format!("value=\"{}\"", server.addr);
    assert!(section(&dom, "add").contains(&plex), "no {plex}");
    assert!(
        !dom.contains("hidden=\"\"") && dom.matches("data-copy=").count() == 6,
        "the script shows the copy buttons"
    );
    // The hostile name is text in the lineup, never an element.
    assert!(
        section(&dom, "lineup")
            .contains("UK: SF News &lt;script&gt;alert('pwned')&lt;/script&gt; SD"),
        "the hostile stream is listed as text"
    );
    assert_eq!(
        dom.matches("<script").count(),
        1,
        "only the page's own script"
    );
    assert!(!dom.contains("alert('pwned')</script>"));
    // The subscription from the panel's user_info, stored at sync.
    let tuners = section(&dom, "tuners");
    assert!(
        tuners.contains("Active") && tuners.contains("(in 29 days)"),
        "{tuners}"
    );
    // The events the store held when the snapshot was built.
    assert!(
        section(&dom, "events").contains("account main: 6 streams"),
        "{}",
        section(&dom, "events")
    );

    screenshot(&url, 1280, 800);
    screenshot(&url, 390, 844);
}

#[test]
fn tuners_html_parses_as_jellyfin_reads_it_and_status_follows_a_failover() {
    let mut appliance = appliance();
    let server = &appliance.server;
    let idle = page(server, "/tuners.html");
    assert_valid_html("/tuners.html", &idle);
    assert_eq!(
        jellyfin_tuners(&idle),
        [("Tuner 0", "none"), ("Tuner 1", "none")].map(|(t, c)| (t.to_string(), c.to_string()))
    );

    // The primary will drop after about ten seconds of stream; until then it plays.
    appliance
        .provider
        .set_stream_fault(101, Fault::DropAfter(600_000), Some(1));
    let rebuilds_before = rebuilds(server);
    appliance.viewer = Some(Viewer::watch(server, "101"));
    let busy = page(server, "/tuners.html");
    assert_eq!(
        jellyfin_tuners(&busy),
        [("Tuner 0", "101"), ("Tuner 1", "none")].map(|(t, c)| (t.to_string(), c.to_string()))
    );
    let session = &status(server)["sessions"][0];
    assert_eq!(session["role"], "primary");
    assert_eq!(session["connections"], 1);
    assert!(session["last_failover"].is_null());
    let account = &status(server)["accounts"][0];
    assert_eq!(account["tuners_in_use"], 1);
    assert_eq!(account["subscription_status"], "Active");
    assert!(account["expires_at"].as_str().unwrap().ends_with('Z'));

    // The primary drops: the backup plays (the return is a minute away), and the page says so
    // at once (from the relay)...
    appliance
        .events
        .wait_for("failover", "from main:101", LIMIT);
    let session = &status(server)["sessions"][0];
    assert_eq!(session["role"], "backup");
    assert_eq!(session["stream"], "main:102");
    assert_eq!(session["last_failover"]["reason"], "StreamError");
    assert!(session["bitrate_bps"].as_u64().unwrap() > 0);
    let live = section(&page(server, "/"), "live");
    assert!(live.contains(">backup<"), "{live}");
    assert!(live.contains("main:101 → main:102 (StreamError)"), "{live}");
    // ...and lists the failover among the recent events once the snapshot has it.
    let events = events_after_rebuild(server, rebuilds_before, "failover from main:101");
    assert!(events.contains("class=\"warn\""), "{events}");

    let lineup = page(server, "/lineup.html");
    assert_valid_html("/lineup.html", &lineup);
    assert!(
        lineup.contains("<a href=\"/auto/v101\">101</a>"),
        "{lineup}"
    );
    let (code, headers, icon) = http_get(&server.url("/favicon.ico"));
    assert_eq!(
        (code, header(&headers, "content-type")),
        (200, Some("image/x-icon"))
    );
    assert_eq!(&icon[..4], &[0, 0, 1, 0]);
}

/// How many times the server has rebuilt its snapshot (it logs each at debug).
fn rebuilds(server: &Server) -> usize {
    server
        .log_lines()
        .count(|line| line.contains("lineup rebuilt"))
}

/// The page's events section once it holds `needle`. The event was committed before this is
/// called, so the first rebuild after `before` that read the database after that commit has it;
/// a rebuild already under way may not, and then the commit causes one more.
fn events_after_rebuild(server: &Server, before: usize, needle: &str) -> String {
    for count in before + 1..=before + 3 {
        server
            .log_lines()
            .wait_for(LIMIT, count, |line| line.contains("lineup rebuilt"))
            .unwrap_or_else(|| panic!("no snapshot rebuild #{count}:\n{}", server.log()));
        let events = section(&page(server, "/"), "events");
        if events.contains(needle) {
            return events;
        }
    }
    panic!("the page never listed {needle:?}");
}

/// The `<section id="ID">` of a page.
fn section(html: &str, id: &str) -> String {
    let start = html
        .find(&format!("<section id=\"{id}\""))
        .unwrap_or_else(|| panic!("no section {id}"));
    let end = html[start..]
        .find("</section>")
        .map_or(html.len(), |end| start + end);
    html[start..end].to_string()
}
