//! A fake Xtream Codes panel on loopback, for integration tests, `streamforge demo` and the
//! benchmark harness's paced upstreams.
//!
//! It speaks the real API the way real panels do (`get.php` M3U playlists too), nastiness included: numbers as strings, nulls,
//! a User-Agent filter, a 302 to a single-use token URL before every stream, close-delimited (or
//! chunked) MPEG-TS bodies paced at a fixed bitrate, the oldest connection cut when an account
//! goes over `max_connections`, and faults on demand. Every stream body is the shipped clip run
//! as a continuous live channel (clocks and continuity counters carried on across its loops). It runs on plain std threads and blocking
//! sockets, on purpose independent of the tokio-uring code it tests.

mod catalog;
mod faults;
mod http;
mod live;
mod psi;
mod routes;
mod server;
mod slots;
mod stream;
mod tls;
mod tokens;
mod ts;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

pub use catalog::{
    DEMO_BACKUP_STREAM, DEMO_PRIMARY_STREAM, FakeCategory, FakeStream, Framing,
    demo_backup_variant, demo_catalog, generated_catalog,
};
pub use faults::Fault;
pub use live::{ClipKind, StreamVariant};
pub use stream::clip_bitrate_bps;

use faults::FaultTable;
use server::{Listener, Server};
use slots::Slots;
use tokens::Tokens;

/// A subscription the panel knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeAccount {
    pub username: String,
    pub password: String,
    /// Concurrent stream connections allowed; 0 means unlimited.
    pub max_connections: u32,
    /// `Active`, `Expired`, `Banned`, `Disabled`: streams need `Active`.
    pub status: String,
    /// Unix seconds, sent as a string; `None` is sent as `null` (no expiry).
    pub exp_date: Option<u64>,
}

impl FakeAccount {
    /// An `Active` account without expiry.
    pub fn new(username: &str, password: &str, max_connections: u32) -> FakeAccount {
        FakeAccount {
            username: username.to_owned(),
            password: password.to_owned(),
            max_connections,
            status: "Active".to_owned(),
            exp_date: None,
        }
    }
}

/// Where `/live/…` sends the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RedirectStyle {
    /// `302` with `Location: http(s)://IP:PORT/sauth/<token>`.
    #[default]
    Absolute,
    /// `302` with `Location: /sauth/<token>`.
    Relative,
    /// No redirect: `/live/…` serves the body itself.
    None,
}

/// What the panel serves.
#[derive(Debug, Clone)]
pub struct ProviderOptions {
    /// The address both listeners bind (ports are picked by the OS).
    pub bind: IpAddr,
    pub accounts: Vec<FakeAccount>,
    pub categories: Vec<FakeCategory>,
    pub streams: Vec<FakeStream>,
    /// Pacing of stream bodies in bits per second, for the main clip (a stream of another clip
    /// goes in proportion to its own bit rate); 0 sends as fast as the client reads.
    pub bitrate_bps: u64,
    pub redirect: RedirectStyle,
    /// What `xmltv.php` serves; `None` gives 404.
    pub xmltv: Option<Vec<u8>>,
}

impl Default for ProviderOptions {
    /// Loopback, one account `demo`/`demo` with 2 connections, the demo catalog, real-time pacing.
    fn default() -> ProviderOptions {
        let (categories, streams) = demo_catalog();
        ProviderOptions {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            accounts: vec![FakeAccount::new("demo", "demo", 2)],
            categories,
            streams,
            bitrate_bps: clip_bitrate_bps(),
            redirect: RedirectStyle::Absolute,
            xmltv: None,
        }
    }
}

/// A file served at a fixed path.
#[derive(Clone)]
struct StaticFile {
    body: Arc<Vec<u8>>,
    content_type: String,
}

/// A stream fault that struck: at a request, or at a flowing body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FiredFault {
    pub stream_id: u64,
    pub fault: Fault,
    pub at: SystemTime,
    /// Struck at a body flowing then ([`FakeProvider::strike_stream`]), not at a request.
    pub mid_body: bool,
}

#[derive(Default)]
struct Stats {
    stream_requests: HashMap<u64, u32>,
    faults_struck: HashMap<u64, u32>,
    fired: Vec<FiredFault>,
    last_user_agent: Option<String>,
    last_referrer: Option<String>,
}

/// What the connection threads share: the configuration and the live state.
struct Shared {
    accounts: HashMap<String, FakeAccount>,
    /// Replaced whole by [`FakeProvider::set_catalog`]; a request works on the one it found.
    catalog: Mutex<Arc<Catalog>>,
    bitrate_bps: u64,
    redirect: RedirectStyle,
    xmltv: Option<Vec<u8>>,
    http_port: u16,
    https_port: u16,
    files: Mutex<HashMap<String, StaticFile>>,
    faults: Mutex<FaultTable>,
    tokens: Mutex<Tokens>,
    slots: Slots,
    stats: Mutex<Stats>,
}

impl Shared {
    fn authenticate(&self, username: Option<&str>, password: Option<&str>) -> Option<&FakeAccount> {
        let account = self.accounts.get(username?)?;
        (account.password == password?).then_some(account)
    }

    fn catalog(&self) -> Arc<Catalog> {
        lock(&self.catalog).clone()
    }

    fn stream(&self, stream_id: u64) -> Option<FakeStream> {
        let catalog = self.catalog();
        let index = *catalog.index.get(&stream_id)?;
        Some(catalog.streams[index].clone())
    }

    fn file(&self, path: &str) -> Option<StaticFile> {
        lock(&self.files).get(path).cloned()
    }

    fn record_headers(&self, user_agent: Option<String>, referrer: Option<String>) {
        let mut stats = lock(&self.stats);
        stats.last_user_agent = user_agent;
        stats.last_referrer = referrer;
    }

    fn record_fired(&self, stream_id: u64, fault: Fault, mid_body: bool) {
        lock(&self.stats).fired.push(FiredFault {
            stream_id,
            fault,
            at: SystemTime::now(),
            mid_body,
        });
    }

    fn count_stream_request(&self, stream_id: u64) {
        *lock(&self.stats)
            .stream_requests
            .entry(stream_id)
            .or_default() += 1;
    }
}

/// The live categories and streams the panel lists, with the streams indexed by id.
struct Catalog {
    categories: Vec<FakeCategory>,
    streams: Vec<FakeStream>,
    index: HashMap<u64, usize>,
}

impl Catalog {
    fn new(categories: Vec<FakeCategory>, streams: Vec<FakeStream>) -> Catalog {
        let index = streams
            .iter()
            .enumerate()
            .map(|(i, s)| (s.stream_id, i))
            .collect();
        Catalog {
            categories,
            streams,
            index,
        }
    }
}

/// Locks a mutex, shrugging off poisoning: a panicked connection thread must not take the rest down.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running fake panel: HTTP and HTTPS listeners on the same handlers. Dropping it stops it.
pub struct FakeProvider {
    shared: Arc<Shared>,
    server: Server,
    http_addr: SocketAddr,
    https_addr: SocketAddr,
    ca_pem: String,
}

impl FakeProvider {
    /// Binds both listeners on `opts.bind` (OS-picked ports) and starts serving.
    pub fn start(opts: ProviderOptions) -> io::Result<FakeProvider> {
        let tls = tls::generate()?;
        let http = TcpListener::bind((opts.bind, 0))?;
        let https = TcpListener::bind((opts.bind, 0))?;
        let (http_addr, https_addr) = (http.local_addr()?, https.local_addr()?);
        let shared = Arc::new(Shared {
            accounts: opts
                .accounts
                .into_iter()
                .map(|a| (a.username.clone(), a))
                .collect(),
            catalog: Mutex::new(Arc::new(Catalog::new(opts.categories, opts.streams))),
            bitrate_bps: opts.bitrate_bps,
            redirect: opts.redirect,
            xmltv: opts.xmltv,
            http_port: http_addr.port(),
            https_port: https_addr.port(),
            files: Mutex::default(),
            faults: Mutex::default(),
            tokens: Mutex::default(),
            slots: Slots::default(),
            stats: Mutex::default(),
        });
        let listeners = vec![
            Listener {
                socket: http,
                tls: None,
            },
            Listener {
                socket: https,
                tls: Some(tls.config),
            },
        ];
        let server = Server::start(listeners, shared.clone())?;
        Ok(FakeProvider {
            shared,
            server,
            http_addr,
            https_addr,
            ca_pem: tls.ca_pem,
        })
    }

    /// `http://IP:PORT`, no trailing slash.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// `https://IP:PORT`, no trailing slash; the certificate is valid for 127.0.0.1, ::1 and localhost.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.https_addr)
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn https_addr(&self) -> SocketAddr {
        self.https_addr
    }

    /// The PEM of the throwaway CA that signed the HTTPS certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The TS clip every stream body loops. Only the first loop is sent as is: later loops carry
    /// their clocks and continuity counters on (see [`FakeProvider::stream_bytes`]).
    pub fn clip() -> &'static [u8] {
        live::CLIP
    }

    /// The bytes `offset..offset + len` of what the body of a stream of `variant` sends, counted
    /// from the body's first byte: the clip (made into the variant) looped as a live channel, with
    /// loop N's PCR, OPCR, PTS and DTS moved on by N times the clip's duration (33-bit wrap
    /// included) and each PID's continuity counters continued.
    pub fn stream_bytes(variant: &StreamVariant, offset: u64, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        live::live_clip(variant).write(offset, len, &mut out);
        out
    }

    /// Where `data` first differs from the body of a stream of `variant` from `offset` on
    /// (`None`: it is exactly that piece of the stream).
    pub fn stream_mismatch(variant: &StreamVariant, offset: u64, data: &[u8]) -> Option<usize> {
        live::live_clip(variant).mismatch(offset, data)
    }

    /// Where in the body of a stream of `variant` `data` is: the offset of its first byte, if
    /// `data` (starting on a packet boundary and holding at least one packet with a PCR, PTS or
    /// DTS) is a contiguous piece of it. The piece may start in any loop: the loop is told by its
    /// clock values.
    pub fn locate_in_stream(variant: &StreamVariant, data: &[u8]) -> Option<u64> {
        live::live_clip(variant).locate(data)
    }

    /// How long one loop of a stream body lasts, in 90 kHz ticks: what its clocks move on per loop.
    pub fn loop_ticks() -> u64 {
        live::live_clip(&StreamVariant::default()).duration()
    }

    /// Arms `fault` for the next `times` requests of a stream (`None`: until cleared). Refuse and
    /// SlowHeaders strike the `/live/…` request; the others the token response after the redirect.
    pub fn set_stream_fault(&self, stream_id: u64, fault: Fault, times: Option<u32>) {
        lock(&self.shared.faults).set_stream(stream_id, fault, times);
    }

    /// Whether a fault is armed for this stream's next request.
    pub fn stream_fault_armed(&self, stream_id: u64) -> bool {
        lock(&self.shared.faults).stream_armed(stream_id)
    }

    /// Strikes the bodies of this stream flowing now with `fault` (one that
    /// [strikes mid-body](Fault::strikes_mid_body); the count of a `DropAfter` or `StallAfter` is
    /// ignored: it strikes at once). How many bodies it hit; each counts as fired.
    pub fn strike_stream(&self, stream_id: u64, fault: Fault) -> u32 {
        let struck = lock(&self.shared.faults).strike(stream_id, fault);
        for _ in 0..struck {
            self.shared.record_fired(stream_id, fault, true);
        }
        struck
    }

    /// Every stream fault that struck so far, oldest first: armed ones at the request they hit,
    /// and strikes at flowing bodies.
    pub fn faults_fired(&self) -> Vec<FiredFault> {
        lock(&self.shared.stats).fired.clone()
    }

    /// Arms `fault` for the next `times` requests of `player_api.php` and `xmltv.php`.
    pub fn set_api_fault(&self, fault: Fault, times: Option<u32>) {
        lock(&self.shared.faults).set_api(fault, times);
    }

    /// Disarms every stream and API fault.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Serves `body` at `path` (e.g. `/epg/guide.xml`), replacing what was there.
    pub fn add_file(&self, path: &str, body: Vec<u8>, content_type: &str) {
        let path = match path.starts_with('/') {
            true => path.to_owned(),
            false => format!("/{path}"),
        };
        let file = StaticFile {
            body: Arc::new(body),
            content_type: content_type.to_owned(),
        };
        lock(&self.shared.files).insert(path, file);
    }

    /// Most stream connections `username` ever had open at once.
    pub fn peak_connections(&self, username: &str) -> u32 {
        self.shared.slots.peak(username)
    }

    /// Stream connections `username` has open now (from the token response until the socket closes).
    pub fn active_connections(&self, username: &str) -> u32 {
        self.shared.slots.active(username)
    }

    /// Waits until `username` has exactly `want` open stream connections; `false` on timeout.
    pub fn wait_active_connections(&self, username: &str, want: u32, timeout: Duration) -> bool {
        self.shared.slots.wait_active(username, want, timeout)
    }

    /// Open stream connections of `username` cut because a newer one went over `max_connections`.
    pub fn evictions(&self, username: &str) -> u32 {
        self.shared.slots.evictions(username)
    }

    /// How many times `/live/…` (or `/U/P/<id>`) was requested for this stream, faulted or not.
    pub fn stream_requests(&self, stream_id: u64) -> u32 {
        lock(&self.shared.stats)
            .stream_requests
            .get(&stream_id)
            .copied()
            .unwrap_or(0)
    }

    /// How many bodies of this stream a `DropAfter` or `StallAfter` fault cut short so far (counted
    /// when the fault strikes): the benchmark harness's count of injected mid-stream failures.
    pub fn faults_struck(&self, stream_id: u64) -> u32 {
        lock(&self.shared.stats)
            .faults_struck
            .get(&stream_id)
            .copied()
            .unwrap_or(0)
    }

    /// The User-Agent of the latest request (`None` if it sent none).
    pub fn last_user_agent(&self) -> Option<String> {
        lock(&self.shared.stats).last_user_agent.clone()
    }

    /// The Referer of the latest request (`None` if it sent none).
    pub fn last_referrer(&self) -> Option<String> {
        lock(&self.shared.stats).last_referrer.clone()
    }

    /// What `get.php?username=…&password=…&type=m3u_plus` serves `username`: the live streams
    /// as an extended M3U whose URLs (`/live/U/P/<id>.ts` on the HTTP listener) carry the
    /// credentials. `None` for an unknown user.
    pub fn playlist(&self, username: &str) -> Option<String> {
        let account = self.shared.accounts.get(username)?;
        Some(catalog::m3u_playlist(
            &self.http_url(),
            account,
            &self.shared.catalog().categories,
            &self.shared.catalog().streams,
        ))
    }

    /// Lists `categories` and `streams` from now on, as a panel's catalog changes between syncs.
    pub fn set_catalog(&self, categories: Vec<FakeCategory>, streams: Vec<FakeStream>) {
        *lock(&self.shared.catalog) = Arc::new(Catalog::new(categories, streams));
    }

    /// Stops serving: closes the listeners and every connection and joins every thread.
    /// Idempotent; dropping the provider does the same.
    pub fn stop(&self) {
        self.server.stop();
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.stop();
    }
}
