//! The soak run's actors (benches/harness/soak.rs drives and checks them), each on its own std
//! thread with its own xorshift stream of the run's seed, each keeping a log for the report:
//! the audience (a viewer holding every channel, guests joining and leaving at random), the fault
//! injector (a fault of every kind at the upstreams every few seconds), hostile clients
//! (slowloris, random bytes, oversized heads) and the CLI changes made while it streams.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde_json::Value;
use streamforge::fake_provider::{FakeProvider, Fault};

use crate::setup;

/// xorshift64*: enough randomness for a load generator, and the same choices for the same seed.
pub struct Rng(u64);

impl Rng {
    /// The stream of `seed` for one actor (`salt`), so that actors do not mirror each other.
    pub fn new(seed: u64, salt: u64) -> Rng {
        let mut rng = Rng((seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1);
        rng.next();
        rng
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn seconds(&mut self, lo: f64, hi: f64) -> Duration {
        Duration::from_secs_f64(self.between(lo, hi))
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// Sleeps `d` in short naps; `false` as soon as `stop` is set.
pub fn nap(stop: &AtomicBool, d: Duration) -> bool {
    let end = Instant::now() + d;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
    !stop.load(Ordering::SeqCst)
}

/// Seconds since the run's start, for the logs.
fn since(epoch: Instant) -> f64 {
    (epoch.elapsed().as_secs_f64() * 10.0).round() / 10.0
}

/// One channel as the actors see it: its number and its streams (`ACCOUNT:ID`) in priority order.
#[derive(Clone, Debug, Serialize)]
pub struct SoakChannel {
    pub number: String,
    pub streams: Vec<String>,
}

/// The three panels: `main` (plain HTTP), `alt` (reached over HTTPS) and `flap` (whose API is
/// made to fail under the CLI's feet).
pub struct Upstreams {
    pub main: FakeProvider,
    pub alt: FakeProvider,
    pub flap: FakeProvider,
}

impl Upstreams {
    /// The panel of `ACCOUNT:ID`, and the id.
    pub fn of(&self, stream: &str) -> Option<(&FakeProvider, u64)> {
        let (account, id) = stream.split_once(':')?;
        let provider = match account {
            "main" => &self.main,
            "alt" => &self.alt,
            "flap" => &self.flap,
            _ => return None,
        };
        Some((provider, id.parse().ok()?))
    }

    /// Every panel with its account name, as in `ACCOUNT:ID`.
    pub fn all(&self) -> [(&'static str, &FakeProvider); 3] {
        [
            ("main", &self.main),
            ("alt", &self.alt),
            ("flap", &self.flap),
        ]
    }
}

// ---------------------------------------------------------------------------------------------
// The audience

/// A viewer's running figures, read while it plays.
#[derive(Default)]
pub struct Live {
    pub bytes: AtomicU64,
}

/// How a guest behaves: most watch and close, some vanish with a reset, some stop reading (the
/// server must drop them past its backlog, and free what they held).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Manner {
    #[default]
    Close,
    Reset,
    StopReading,
}

/// How a viewer's visit went.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Visit {
    pub channel: String,
    pub anchor: bool,
    pub manner: Manner,
    pub joined_s: f64,
    pub status: Option<u16>,
    pub start_ms: Option<f64>,
    pub bytes: u64,
    pub max_pause_ms: f64,
    /// Packets whose first byte was not 0x47 (the viewer counts from the first body byte).
    pub misaligned_packets: u64,
    /// The stream ended while the viewer still wanted it: when, and how.
    pub cut: Option<(f64, String)>,
    pub error: Option<String>,
}

struct Viewer {
    leave: Arc<AtomicBool>,
    live: Arc<Live>,
    handle: JoinHandle<Visit>,
}

impl Viewer {
    fn start(
        addr: SocketAddr,
        channel: &str,
        anchor: bool,
        manner: Manner,
        epoch: Instant,
    ) -> Viewer {
        let leave = Arc::new(AtomicBool::new(false));
        let live = Arc::new(Live::default());
        let mut visit = Visit {
            channel: channel.to_owned(),
            anchor,
            manner,
            joined_s: since(epoch),
            ..Visit::default()
        };
        let (l, lv) = (leave.clone(), live.clone());
        let handle = std::thread::spawn(move || {
            if let Err(e) = watch(addr, &l, &lv, &mut visit, epoch) {
                visit.error = Some(e);
            }
            visit
        });
        Viewer {
            leave,
            live,
            handle,
        }
    }

    fn finish(self) -> Visit {
        self.leave.store(true, Ordering::SeqCst);
        self.handle.join().unwrap_or_default()
    }
}

/// A viewer gives up after this long without a byte.
const VIEWER_SILENCE: Duration = Duration::from_secs(30);

/// A viewer that stops reading does so after this much.
const STOP_READING_AFTER: u64 = 1 << 20;

/// Closes with a reset (SO_LINGER 0) instead of a FIN: a client that vanishes.
fn reset(sock: &TcpStream) {
    let off = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let _ = nix::sys::socket::setsockopt(sock, nix::sys::socket::sockopt::Linger, &off);
}

/// One visit: tune, then read until asked to leave or the stream ends, and leave the visit's way.
fn watch(
    addr: SocketAddr,
    leave: &AtomicBool,
    live: &Live,
    visit: &mut Visit,
    epoch: Instant,
) -> Result<(), String> {
    let mut sock =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| e.to_string())?;
    let sent = Instant::now();
    write!(
        sock,
        "GET /auto/v{} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: soak\r\n\r\n",
        visit.channel
    )
    .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut head = Vec::new();
    let mut last = Instant::now();
    let mut offset: u64 = 0;
    let mut in_body = false;
    loop {
        if visit.manner == Manner::StopReading && offset >= STOP_READING_AFTER {
            while !leave.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if leave.load(Ordering::SeqCst) {
            if visit.manner == Manner::Reset {
                reset(&sock);
            }
            return Ok(());
        }
        let n = match sock.read(&mut buf) {
            Ok(0) => 0,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if last.elapsed() > VIEWER_SILENCE {
                    visit.cut = Some((since(epoch), "silent for 30 s".into()));
                    return Ok(());
                }
                continue;
            }
            Err(e) => {
                if !leave.load(Ordering::SeqCst) && in_body {
                    visit.cut = Some((since(epoch), e.to_string()));
                }
                return Ok(());
            }
        };
        if n == 0 {
            if !leave.load(Ordering::SeqCst) && in_body {
                visit.cut = Some((since(epoch), "the response ended".into()));
            }
            return Ok(());
        }
        let mut data = &buf[..n];
        if !in_body {
            head.extend_from_slice(data);
            let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                if head.len() > 16 * 1024 {
                    return Err("response head over 16 KiB".into());
                }
                continue;
            };
            let text = String::from_utf8_lossy(&head[..end]);
            visit.status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok());
            if visit.status != Some(200) {
                return Ok(());
            }
            in_body = true;
            let rest = head.split_off(end + 4);
            if rest.is_empty() {
                continue;
            }
            buf[..rest.len()].copy_from_slice(&rest);
            data = &buf[..rest.len()];
        }
        let now = Instant::now();
        if offset == 0 {
            visit.start_ms = Some(sent.elapsed().as_secs_f64() * 1000.0);
        } else {
            visit.max_pause_ms = visit.max_pause_ms.max((now - last).as_secs_f64() * 1000.0);
        }
        last = now;
        // Every 188th byte from the first is a sync byte.
        let first = ((188 - offset % 188) % 188) as usize;
        visit.misaligned_packets += data
            .iter()
            .skip(first)
            .step_by(188)
            .filter(|&&b| b != 0x47)
            .count() as u64;
        offset += data.len() as u64;
        visit.bytes = offset;
        live.bytes.store(offset, Ordering::Relaxed);
    }
}

/// Churn stops; the anchors stay.
const CALM: u8 = 1;
/// Everyone leaves.
const LEAVE: u8 = 2;

/// What the audience did.
#[derive(Debug, Default, Serialize)]
pub struct AudienceLog {
    pub visits: Vec<Visit>,
    pub guest_joins: u64,
    pub most_viewers: usize,
}

/// A viewer on every channel all along (re-tuned if its stream is cut), and guests joining and
/// leaving random channels at random.
pub struct Audience {
    phase: Arc<AtomicU8>,
    anchors: Arc<Mutex<Vec<Arc<Live>>>>,
    handle: JoinHandle<AudienceLog>,
}

impl Audience {
    pub fn start(
        addr: SocketAddr,
        channels: &[SoakChannel],
        max_guests: usize,
        mut rng: Rng,
        epoch: Instant,
    ) -> Audience {
        let phase = Arc::new(AtomicU8::new(0));
        let numbers: Vec<String> = channels.iter().map(|c| c.number.clone()).collect();
        let mut anchors: Vec<Viewer> = numbers
            .iter()
            .map(|n| {
                let v = Viewer::start(addr, n, true, Manner::Close, epoch);
                std::thread::sleep(Duration::from_millis(50));
                v
            })
            .collect();
        let shared = Arc::new(Mutex::new(
            anchors.iter().map(|a| a.live.clone()).collect::<Vec<_>>(),
        ));
        let (p, s) = (phase.clone(), shared.clone());
        let handle = std::thread::spawn(move || {
            let mut log = AudienceLog::default();
            let mut guests: Vec<(Viewer, Instant)> = Vec::new();
            while p.load(Ordering::SeqCst) < LEAVE {
                std::thread::sleep(rng.seconds(0.3, 1.5));
                for (i, slot) in anchors.iter_mut().enumerate() {
                    if slot.handle.is_finished() {
                        let again = Viewer::start(addr, &numbers[i], true, Manner::Close, epoch);
                        s.lock().unwrap()[i] = again.live.clone();
                        log.visits.push(std::mem::replace(slot, again).finish());
                    }
                }
                let calm = p.load(Ordering::SeqCst) >= CALM;
                // Guests whose time is up (or all, when calm) leave; a new one may join.
                let (leaving, staying): (Vec<_>, Vec<_>) =
                    guests.into_iter().partition(|(v, until)| {
                        calm || Instant::now() > *until || v.handle.is_finished()
                    });
                guests = staying;
                log.visits
                    .extend(leaving.into_iter().map(|(v, _)| v.finish()));
                if !calm && guests.len() < max_guests && rng.below(3) != 0 {
                    let channel = &numbers[rng.below(numbers.len())];
                    let stay = rng.seconds(3.0, 60.0);
                    let manner = match rng.below(6) {
                        0 => Manner::StopReading,
                        1 | 2 => Manner::Reset,
                        _ => Manner::Close,
                    };
                    guests.push((
                        Viewer::start(addr, channel, false, manner, epoch),
                        Instant::now() + stay,
                    ));
                    log.guest_joins += 1;
                }
                log.most_viewers = log.most_viewers.max(anchors.len() + guests.len());
            }
            log.visits
                .extend(guests.into_iter().map(|(v, _)| v.finish()));
            log.visits.extend(anchors.into_iter().map(Viewer::finish));
            log
        });
        Audience {
            phase,
            anchors: shared,
            handle,
        }
    }

    /// Guests leave and no more join; the anchors stay.
    pub fn calm(&self) {
        self.phase.store(CALM, Ordering::SeqCst);
    }

    /// Bytes each anchor has received so far (channel order).
    pub fn anchor_bytes(&self) -> Vec<u64> {
        self.anchors
            .lock()
            .unwrap()
            .iter()
            .map(|l| l.bytes.load(Ordering::Relaxed))
            .collect()
    }

    /// Everyone leaves; the log of every visit.
    pub fn leave(self) -> AudienceLog {
        self.phase.store(LEAVE, Ordering::SeqCst);
        self.handle.join().unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Faults

/// The kinds of upstream fault the soak injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Drop,
    Stall,
    HttpError,
    Html,
    Refused,
    SlowHeaders,
    Tls,
    NotTs,
}

impl FaultKind {
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Drop,
        FaultKind::Stall,
        FaultKind::HttpError,
        FaultKind::Html,
        FaultKind::Refused,
        FaultKind::SlowHeaders,
        FaultKind::Tls,
        FaultKind::NotTs,
    ];

    /// The kind of a fault the provider reports as fired.
    pub fn of(fault: Fault) -> FaultKind {
        match fault {
            Fault::DropAfter(_) => FaultKind::Drop,
            Fault::StallAfter(_) => FaultKind::Stall,
            Fault::Status(_) => FaultKind::HttpError,
            Fault::Html200 => FaultKind::Html,
            Fault::Refuse => FaultKind::Refused,
            Fault::SlowHeaders(_) => FaultKind::SlowHeaders,
            Fault::TlsCorrupt => FaultKind::Tls,
            Fault::Garbage => FaultKind::NotTs,
        }
    }

    fn fault(self, rng: &mut Rng) -> Fault {
        match self {
            FaultKind::Drop => Fault::DropAfter(0),
            FaultKind::Stall => Fault::StallAfter(0),
            FaultKind::HttpError => Fault::Status([403, 404, 500, 502, 503][rng.below(5)]),
            FaultKind::Html => Fault::Html200,
            FaultKind::Refused => Fault::Refuse,
            // Past the connect + headers deadline (1 s).
            FaultKind::SlowHeaders => Fault::SlowHeaders(rng.seconds(1.5, 4.0)),
            FaultKind::Tls => Fault::TlsCorrupt,
            FaultKind::NotTs => Fault::Garbage,
        }
    }
}

/// One injection: a strike at a flowing body, or a fault armed for the stream's next request.
#[derive(Clone, Debug, Serialize)]
pub struct Injection {
    pub at_s: f64,
    pub kind: FaultKind,
    pub channel: String,
    pub stream: String,
    /// `struck` (a body flowing now), `armed` (the next request of the stream) or `struck to
    /// lead in` (a drop that makes the channel ask for a stream with a fault armed).
    pub how: &'static str,
}

/// The stream each channel's session plays now, from `/status`.
fn streams_playing(addr: SocketAddr) -> BTreeMap<String, String> {
    let Ok(text) = setup::http_get(addr, "/status") else {
        return BTreeMap::new();
    };
    let status: Value = serde_json::from_str(&text).unwrap_or_default();
    status["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            Some((
                s["channel"].as_str()?.to_owned(),
                s["stream"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// The stream a channel asks for next: its primary when on a backup, else its first backup.
fn request_target<'c>(channel: &'c SoakChannel, playing: Option<&str>) -> &'c str {
    let primary = &channel.streams[0];
    match playing {
        Some(p) if p != primary => primary,
        _ => channel.streams.get(1).unwrap_or(primary),
    }
}

/// The kinds of the stream faults that fired so far, at any panel.
fn fired_kinds(up: &Upstreams) -> BTreeSet<FaultKind> {
    up.all()
        .iter()
        .flat_map(|(_, p)| p.faults_fired())
        .map(|f| FaultKind::of(f.fault))
        .collect()
}

/// Every `lo..hi` seconds a fault of the next kind (every kind in turn, shuffled per round) at a
/// random channel: mid-body kinds strike the stream it plays (TLS ones its HTTPS stream), request
/// kinds are armed for the stream it asks for next ([`request_target`]; channels on a backup are
/// picked first, a channel on its primary is led in by a drop), never over a fault waiting there.
pub fn inject_faults<'a>(
    addr: SocketAddr,
    up: &Upstreams,
    channels: &'a [SoakChannel],
    every: (f64, f64),
    mut rng: Rng,
    stop: &AtomicBool,
    epoch: Instant,
) -> Vec<Injection> {
    let mut log = Vec::new();
    let mut round: Vec<FaultKind> = Vec::new();
    while nap(stop, rng.seconds(every.0, every.1)) {
        if round.is_empty() {
            round = FaultKind::ALL.to_vec();
            rng.shuffle(&mut round);
            // Kinds that have not fired yet go first (the round is popped from its end).
            let fired = fired_kinds(up);
            round.sort_by_key(|k| !fired.contains(k));
        }
        let kind = round.pop().expect("refilled above");
        let fault = kind.fault(&mut rng);
        let now_playing = streams_playing(addr);
        let playing = |c: &SoakChannel| now_playing.get(&c.number).cloned();
        // Arming a stream again would replace the fault waiting there before it fired.
        let armed = |stream: &str| {
            up.of(stream)
                .is_some_and(|(p, id)| p.stream_fault_armed(id))
        };
        let free: Vec<&SoakChannel> = channels
            .iter()
            .filter(|c| !armed(request_target(c, playing(c).as_deref())))
            .collect();
        // A request fault fires soonest on a channel that plays a backup: its next upgrade
        // attempt (every 5 s) asks for the primary.
        let on_backup: Vec<&SoakChannel> = free
            .iter()
            .copied()
            .filter(|c| playing(c).is_some_and(|s| s != c.streams[0]))
            .collect();
        // A TLS fault strikes best at a channel playing its HTTPS stream (for the few seconds
        // after a failover, before the upgrade back).
        let on_tls: Vec<&SoakChannel> = channels
            .iter()
            .filter(|c| playing(c).is_some_and(|s| s.starts_with("alt:")))
            .collect();
        let pick = |among: &[&'a SoakChannel], rng: &mut Rng| among[rng.below(among.len())];
        let channel = match kind {
            FaultKind::Tls if !on_tls.is_empty() => pick(&on_tls, &mut rng),
            _ if fault.strikes_mid_body() => &channels[rng.below(channels.len())],
            _ if !on_backup.is_empty() => pick(&on_backup, &mut rng),
            _ if !free.is_empty() => pick(&free, &mut rng),
            _ => &channels[rng.below(channels.len())],
        };
        let playing = playing(channel);
        let primary = &channel.streams[0];
        let tls_stream = channel.streams.iter().find(|s| s.starts_with("alt:"));
        let target = match kind {
            FaultKind::Tls => tls_stream.unwrap_or(primary).clone(),
            _ if fault.strikes_mid_body() => playing.clone().unwrap_or_else(|| primary.clone()),
            _ => request_target(channel, playing.as_deref()).to_owned(),
        };
        let Some((provider, id)) = up.of(&target) else {
            continue;
        };
        let how = if fault.strikes_mid_body() && provider.strike_stream(id, fault) > 0 {
            "struck"
        } else {
            provider.set_stream_fault(id, fault, Some(1));
            "armed"
        };
        log.push(Injection {
            at_s: since(epoch),
            kind,
            channel: channel.number.clone(),
            stream: target,
            how,
        });
        // A request fault at a channel on its primary would wait for a failure that may never
        // come: a drop at the primary makes the channel ask for its backups (or, when the fault
        // waits at the primary itself, for the primary again at the next upgrade).
        if how == "armed"
            && streams_playing(addr).get(&channel.number) == Some(primary)
            && let Some((provider, id)) = up.of(primary)
            && provider.strike_stream(id, Fault::DropAfter(0)) > 0
        {
            log.push(Injection {
                at_s: since(epoch),
                kind: FaultKind::Drop,
                channel: channel.number.clone(),
                stream: primary.clone(),
                how: "struck to lead in",
            });
        }
    }
    log
}

// ---------------------------------------------------------------------------------------------
// Hostile clients

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostileKind {
    /// A request head dribbled one byte every 2 s.
    Slowloris,
    /// Random bytes, some with line ends.
    Garbage,
    /// A head of 20 KB or more (the server allows 8 KiB).
    Oversized,
}

/// How the server dealt with a hostile client.
#[derive(Clone, Debug, Serialize)]
pub struct Hostile {
    pub kind: HostileKind,
    pub at_s: f64,
    /// The status the server answered, if it did.
    pub status: Option<u16>,
    /// Seconds until the server answered or closed; `None`: still open when the client gave up.
    pub closed_after_s: Option<f64>,
}

/// A hostile client gives up (and is reported still open) after this.
const HOSTILE_PATIENCE: Duration = Duration::from_secs(40);

fn hostile(addr: SocketAddr, kind: HostileKind, mut rng: Rng, epoch: Instant) -> Hostile {
    let mut out = Hostile {
        kind,
        at_s: since(epoch),
        status: None,
        closed_after_s: None,
    };
    let Ok(mut sock) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        out.closed_after_s = Some(0.0);
        return out;
    };
    let started = Instant::now();
    let _ = sock.set_read_timeout(Some(Duration::from_millis(100)));
    let mut dribble: Vec<u8> = Vec::new();
    match kind {
        HostileKind::Slowloris => {
            dribble = b"GET /discover.json HTTP/1.1\r\nHost: soak\r\nX-Slow: ".to_vec();
            dribble.extend(std::iter::repeat_n(b'z', 64));
        }
        HostileKind::Garbage => {
            let len = 1 + rng.below(16 * 1024);
            let bytes: Vec<u8> = (0..len)
                .map(|_| match rng.below(20) {
                    0 => b'\r',
                    1 => b'\n',
                    _ => rng.next() as u8,
                })
                .collect();
            let _ = sock.write_all(&bytes);
        }
        HostileKind::Oversized => {
            let size = 20_000 + rng.below(100_000);
            let head = format!(
                "GET /lineup.json HTTP/1.1\r\nHost: soak\r\nX-Big: {}\r\n\r\n",
                "a".repeat(size)
            );
            let _ = sock.write_all(head.as_bytes());
        }
    }
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut next_byte = Instant::now();
    while started.elapsed() < HOSTILE_PATIENCE {
        if !dribble.is_empty() && Instant::now() >= next_byte {
            if sock.write_all(&dribble[..1]).is_err() {
                out.closed_after_s = Some(started.elapsed().as_secs_f64());
                break;
            }
            dribble.remove(0);
            next_byte = Instant::now() + Duration::from_secs(2);
        }
        match sock.read(&mut chunk) {
            Ok(0) => {
                out.closed_after_s = Some(started.elapsed().as_secs_f64());
                break;
            }
            Ok(n) => reply.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                out.closed_after_s = Some(started.elapsed().as_secs_f64());
                break;
            }
        }
    }
    out.status = String::from_utf8_lossy(&reply)
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|s| s.parse().ok());
    out
}

/// Every few seconds a hostile client of a random kind, each on its own thread.
pub fn hostile_clients(
    addr: SocketAddr,
    mut rng: Rng,
    stop: &AtomicBool,
    epoch: Instant,
) -> Vec<Hostile> {
    let kinds = [
        HostileKind::Slowloris,
        HostileKind::Garbage,
        HostileKind::Oversized,
    ];
    let mut running = Vec::new();
    let mut salt = 0;
    while nap(stop, rng.seconds(2.0, 6.0)) {
        let kind = kinds[rng.below(kinds.len())];
        salt += 1;
        let child = Rng::new(rng.next(), salt);
        running.push(std::thread::spawn(move || {
            hostile(addr, kind, child, epoch)
        }));
    }
    running.into_iter().filter_map(|h| h.join().ok()).collect()
}

// ---------------------------------------------------------------------------------------------
// CLI changes

/// How to run `streamforge` against the server's data dir.
#[derive(Clone)]
pub struct Cli {
    pub binary: PathBuf,
    pub config: PathBuf,
    pub data_dir: PathBuf,
}

/// One CLI command run during the soak.
#[derive(Clone, Debug, Serialize)]
pub struct CliRun {
    pub at_s: f64,
    pub args: Vec<String>,
    /// The API fault armed at the `flap` panel for it, if any.
    pub fault: Option<String>,
    /// `None`: killed by a signal (or timed out).
    pub exit: Option<i32>,
    pub seconds: f64,
    /// For a faulted `sync`/`epg refresh`: the flap catalog's streams or the flap guide's
    /// channels before and after.
    pub kept: Option<(u64, u64)>,
    pub stderr_tail: String,
}

/// A CLI command is killed past this.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

impl Cli {
    /// Runs `streamforge ARGS` to completion (bounded): exit code, stdout, stderr.
    pub fn run(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let child = Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(args)
            .env_remove("STREAMFORGE_CONFIG")
            .env_remove("STREAMFORGE_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => return (None, String::new(), e.to_string()),
        };
        let deadline = Instant::now() + CLI_TIMEOUT;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
        }
        match child.wait_with_output() {
            Ok(o) => (
                o.status.code(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            ),
            Err(e) => (None, String::new(), e.to_string()),
        }
    }

    /// The number of entries of a `--json` listing that satisfy `keep`.
    fn count(&self, args: &[&str], keep: impl Fn(&Value) -> Option<u64>) -> u64 {
        let (_, out, _) = self.run(args);
        let rows: Value = serde_json::from_str(&out).unwrap_or_default();
        rows.as_array().into_iter().flatten().filter_map(keep).sum()
    }

    fn flap_streams(&self) -> u64 {
        self.count(&["streams", "--account", "flap", "--json"], |_| Some(1))
    }

    fn flap_guide_channels(&self) -> u64 {
        self.count(&["epg", "list", "--json"], |s| {
            (s["name"] == "flapguide").then(|| s["channels"].as_u64().unwrap_or(0))
        })
    }
}

/// The CLI changes, each one in turn (shuffled per round).
#[derive(Clone, Copy, Debug)]
enum Change {
    /// `map remove` a channel's last backup, then `map add` it back.
    Remap,
    /// `account disable`, then `account enable`, of `flap` or of `alt` (every channel's first
    /// backup, over HTTPS) in turn.
    DisableEnable,
    /// `sync` of every account, healthy.
    Sync,
    /// `sync flap` with its `player_api.php` failing.
    SyncFlapping,
    /// `epg refresh guide` (a file), healthy.
    EpgRefresh,
    /// `epg refresh flapguide` (`xtream:flap`) with its `xmltv.php` failing.
    EpgRefreshFlapping,
}

/// An API fault for the flapping panel: HTTP errors, garbage JSON/XML, an HTML page, no answer.
fn api_fault(rng: &mut Rng) -> Fault {
    match rng.below(5) {
        0 => Fault::Status(500),
        1 => Fault::Status(502),
        2 => Fault::Garbage,
        3 => Fault::Html200,
        // Past the CLI's api_timeout (5 s in the soak's config).
        _ => Fault::SlowHeaders(Duration::from_secs(8)),
    }
}

/// Every `lo..hi` seconds the next CLI change, against the running server's data dir.
pub fn cli_changes(
    cli: &Cli,
    flap: &FakeProvider,
    channels: &[SoakChannel],
    every: (f64, f64),
    mut rng: Rng,
    stop: &AtomicBool,
    epoch: Instant,
) -> Vec<CliRun> {
    let mut log = Vec::new();
    let mut round: Vec<Change> = Vec::new();
    let mut disabled_alt = false;
    let mut record = |args: &[&str], fault: Option<Fault>, kept: Option<(u64, u64)>, run| {
        let (exit, seconds, stderr, at_s): (Option<i32>, f64, String, f64) = run;
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        log.push(CliRun {
            at_s,
            args: args.iter().map(|a| a.to_string()).collect(),
            fault: fault.map(|f| format!("{f:?}")),
            exit,
            seconds,
            kept,
            stderr_tail: tail.into_iter().rev().collect::<Vec<_>>().join(" / "),
        });
    };
    let timed = |args: &[&str]| {
        let (at_s, started) = (since(epoch), Instant::now());
        let (exit, _, stderr) = cli.run(args);
        (exit, started.elapsed().as_secs_f64(), stderr, at_s)
    };
    while nap(stop, rng.seconds(every.0, every.1)) {
        if round.is_empty() {
            round = vec![
                Change::Remap,
                Change::DisableEnable,
                Change::Sync,
                Change::SyncFlapping,
                Change::EpgRefresh,
                Change::EpgRefreshFlapping,
            ];
            rng.shuffle(&mut round);
        }
        match round.pop().expect("refilled above") {
            Change::Remap => {
                let c = &channels[rng.below(channels.len())];
                let last = c.streams.last().expect("streams").clone();
                let args = ["map", "remove", &c.number, &last];
                record(&args, None, None, timed(&args));
                // Put back even when stopping: the lineup must end as it began.
                std::thread::sleep(rng.seconds(2.0, 8.0));
                let args = ["map", "add", &c.number, &last];
                record(&args, None, None, timed(&args));
            }
            Change::DisableEnable => {
                disabled_alt = !disabled_alt;
                let account = if disabled_alt { "alt" } else { "flap" };
                let args = ["account", "disable", account];
                record(&args, None, None, timed(&args));
                std::thread::sleep(rng.seconds(2.0, 8.0));
                let args = ["account", "enable", account];
                record(&args, None, None, timed(&args));
            }
            Change::Sync => {
                let args = ["sync"];
                record(&args, None, None, timed(&args));
            }
            Change::SyncFlapping => {
                let before = cli.flap_streams();
                let fault = api_fault(&mut rng);
                flap.set_api_fault(fault, Some(1));
                let args = ["sync", "flap"];
                let run = timed(&args);
                flap.set_api_fault(fault, Some(0));
                let after = cli.flap_streams();
                record(&args, Some(fault), Some((before, after)), run);
            }
            Change::EpgRefresh => {
                let args = ["epg", "refresh", "guide"];
                record(&args, None, None, timed(&args));
            }
            Change::EpgRefreshFlapping => {
                let before = cli.flap_guide_channels();
                let fault = api_fault(&mut rng);
                flap.set_api_fault(fault, Some(1));
                let args = ["epg", "refresh", "flapguide"];
                let run = timed(&args);
                flap.set_api_fault(fault, Some(0));
                let after = cli.flap_guide_channels();
                record(&args, Some(fault), Some((before, after)), run);
            }
        }
    }
    log
}

/// Wall-clock seconds of `at` since `epoch_wall`, for matching the provider's fired faults.
pub fn wall_since(at: SystemTime, epoch_wall: SystemTime) -> f64 {
    match at.duration_since(epoch_wall) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}
