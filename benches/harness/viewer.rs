//! A viewer: one thread, one std `TcpStream`, one `GET`. It times the start (request sent → first
//! body byte), counts bytes, notes every pause in the arrival of bytes, and checks that what it
//! receives is what the fake provider's streams send (its clip run as a live channel): one
//! contiguous piece when nothing fails, or contiguous pieces joined at splices (failover, upgrade)
//! when faults run.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use streamforge::fake_provider::{FakeProvider, StreamVariant};

const PACKET: usize = 188;
/// Bytes collected before locating them in the stream.
const LOCATE_BYTES: usize = PACKET * 100;
/// A pause in arrivals longer than this is recorded.
pub const PAUSE_NOTED: Duration = Duration::from_millis(150);
/// A viewer that receives nothing for this long gives up.
const SILENCE_LIMIT: Duration = Duration::from_secs(30);
const READ_BUF: usize = 64 * 1024;

/// Where the received bytes are in the provider's stream.
enum Track {
    /// Collecting packets to locate (at the start, or after a splice).
    Locating { pending: Vec<u8>, first_at: Arrival },
    /// The next packet must be the stream's packet at this offset.
    Following { offset: u64 },
}

/// How a byte arrived: the pause before the read that brought it.
#[derive(Clone, Copy, Debug)]
struct Arrival {
    pause_before: Duration,
}

/// A change of source seen in the bytes: the piece before ended, a new piece of the stream began.
#[derive(Clone, Debug)]
pub struct Splice {
    /// The pause before the read that brought the new piece's first byte: an upper bound of the
    /// gap between the last byte of the old source and the first of the new.
    pub gap: Duration,
    pub stream_offset: u64,
}

/// The stream check of one viewer.
struct ClipCheck {
    track: Track,
    /// An incomplete packet carried over to the next read, and when its first byte came.
    carry: Vec<u8>,
    carry_at: Option<Arrival>,
    position: u64,
    pub splices: Vec<Splice>,
    pub located: bool,
    /// Packets found nowhere in the stream (dropped one at a time while re-locating).
    pub unlocated_packets: u64,
    pub misaligned: bool,
}

impl ClipCheck {
    fn new() -> ClipCheck {
        ClipCheck {
            track: Track::Locating {
                pending: Vec::new(),
                first_at: Arrival {
                    pause_before: Duration::ZERO,
                },
            },
            carry: Vec::new(),
            carry_at: None,
            position: 0,
            splices: Vec::new(),
            located: false,
            unlocated_packets: 0,
            misaligned: false,
        }
    }

    fn feed(&mut self, mut data: &[u8], arrival: Arrival) {
        if !self.carry.is_empty() {
            let need = PACKET - self.carry.len();
            let take = need.min(data.len());
            self.carry.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.carry.len() < PACKET {
                return;
            }
            let packet = std::mem::take(&mut self.carry);
            let at = self.carry_at.take().unwrap_or(arrival);
            self.packets(&packet, at);
        }
        let whole = data.len() / PACKET * PACKET;
        self.packets(&data[..whole], arrival);
        if whole < data.len() {
            self.carry.extend_from_slice(&data[whole..]);
            self.carry_at = Some(arrival);
        }
    }

    /// Whole packets, all arrived with `arrival`.
    fn packets(&mut self, mut data: &[u8], arrival: Arrival) {
        while !data.is_empty() {
            match &mut self.track {
                Track::Following { offset } => {
                    let Some(differs) =
                        FakeProvider::stream_mismatch(&StreamVariant::default(), *offset, data)
                    else {
                        *offset += data.len() as u64;
                        self.position += data.len() as u64;
                        return;
                    };
                    // A new piece starts at the first packet that differs.
                    let at = differs / PACKET * PACKET;
                    self.position += at as u64;
                    data = &data[at..];
                    self.track = Track::Locating {
                        pending: Vec::with_capacity(LOCATE_BYTES),
                        first_at: arrival,
                    };
                }
                Track::Locating { pending, first_at } => {
                    if pending.is_empty() {
                        *first_at = arrival;
                    }
                    let take = (LOCATE_BYTES - pending.len()).min(data.len());
                    pending.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if pending.len() >= LOCATE_BYTES {
                        self.locate();
                    }
                }
            }
        }
    }

    /// Finds the pending bytes in the stream; drops their first packet when they are nowhere.
    fn locate(&mut self) {
        let Track::Locating { pending, first_at } = &mut self.track else {
            return;
        };
        if pending.first() != Some(&0x47) {
            self.misaligned = true;
        }
        match FakeProvider::locate_in_stream(&StreamVariant::default(), pending) {
            Some(offset) => {
                let len = pending.len();
                if self.located {
                    self.splices.push(Splice {
                        gap: first_at.pause_before,
                        stream_offset: self.position,
                    });
                }
                self.located = true;
                self.position += len as u64;
                self.track = Track::Following {
                    offset: offset + len as u64,
                };
            }
            None => {
                self.unlocated_packets += 1;
                self.position += PACKET as u64;
                pending.drain(..PACKET);
            }
        }
    }

    /// The end of the stream: whatever is still pending is located as far as it goes.
    fn finish(&mut self) {
        if let Track::Locating { pending, .. } = &mut self.track {
            pending.truncate(pending.len() / PACKET * PACKET);
        }
        while matches!(&self.track, Track::Locating { pending, .. } if !pending.is_empty()) {
            self.locate();
        }
    }
}

/// What a viewer asks for.
#[derive(Clone, Debug)]
pub struct ViewerSpec {
    pub addr: SocketAddr,
    pub path: String,
    pub channel: usize,
    pub index: usize,
    pub cold: bool,
}

/// What the runner reads while the viewer runs.
#[derive(Default)]
pub struct Live {
    pub bytes: AtomicU64,
    /// Set once the viewer got its first body byte or gave up.
    pub settled: AtomicBool,
}

/// A viewer's outcome.
#[derive(Clone, Debug, Default)]
pub struct ViewerResult {
    pub channel: usize,
    pub index: usize,
    pub cold: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub start_latency: Option<Duration>,
    pub bytes: u64,
    /// The response ended (or failed) before the run told the viewer to stop.
    pub ended_early: bool,
    pub max_pause: Duration,
    pub pauses: Vec<(Instant, Duration)>,
    pub splices: Vec<Splice>,
    pub located: bool,
    pub unlocated_packets: u64,
    pub misaligned: bool,
}

pub struct Viewer {
    pub live: Arc<Live>,
    handle: JoinHandle<ViewerResult>,
    socket: Arc<Mutex<Option<TcpStream>>>,
}

impl Viewer {
    pub fn start(spec: ViewerSpec, stop: Arc<AtomicBool>) -> Viewer {
        let live = Arc::new(Live::default());
        let socket = Arc::new(Mutex::new(None));
        let (thread_live, thread_socket) = (live.clone(), socket.clone());
        let handle = std::thread::Builder::new()
            .name(format!("viewer-{}-{}", spec.channel, spec.index))
            .stack_size(256 * 1024)
            .spawn(move || run(&spec, &thread_live, &stop, &thread_socket))
            .expect("spawn a viewer thread");
        Viewer {
            live,
            handle,
            socket,
        }
    }

    /// Waits for the viewer's end (after the stop flag was set), cutting its socket first.
    pub fn finish(self) -> ViewerResult {
        if let Some(socket) = self.socket.lock().unwrap().as_ref() {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
        self.handle.join().unwrap_or_else(|_| ViewerResult {
            error: Some("viewer thread panicked".into()),
            ..ViewerResult::default()
        })
    }
}

fn run(
    spec: &ViewerSpec,
    live: &Live,
    stop: &AtomicBool,
    socket_slot: &Mutex<Option<TcpStream>>,
) -> ViewerResult {
    let mut result = ViewerResult {
        channel: spec.channel,
        index: spec.index,
        cold: spec.cold,
        ..ViewerResult::default()
    };
    let outcome = watch(spec, live, stop, socket_slot, &mut result);
    live.settled.store(true, Ordering::SeqCst);
    if let Err(e) = outcome {
        result.error = Some(e);
    }
    result
}

fn watch(
    spec: &ViewerSpec,
    live: &Live,
    stop: &AtomicBool,
    socket_slot: &Mutex<Option<TcpStream>>,
    result: &mut ViewerResult,
) -> Result<(), String> {
    let mut socket = TcpStream::connect_timeout(&spec.addr, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .map_err(|e| e.to_string())?;
    *socket_slot.lock().unwrap() = socket.try_clone().ok();
    let requested = Instant::now();
    write!(
        socket,
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: streamforge-bench\r\nAccept: */*\r\n\r\n",
        spec.path, spec.addr
    )
    .map_err(|e| format!("request: {e}"))?;

    let mut buf = vec![0u8; READ_BUF];
    let mut head = Vec::new();
    let mut check: Option<ClipCheck> = None;
    let mut last_data = requested;
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        let n = match socket.read(&mut buf) {
            Ok(0) => {
                result.ended_early = !stop.load(Ordering::SeqCst);
                if result.ended_early && check.is_some() {
                    result.error = Some("the response ended".into());
                }
                break;
            }
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if stopping {
                    break;
                }
                if last_data.elapsed() > SILENCE_LIMIT {
                    result.ended_early = true;
                    result.error = Some(format!("nothing for {SILENCE_LIMIT:?}"));
                    break;
                }
                continue;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                result.ended_early = !stop.load(Ordering::SeqCst);
                if result.ended_early {
                    result.error = Some(format!("read: {e}"));
                }
                break;
            }
        };
        let now = Instant::now();
        let mut body = &buf[..n];
        if result.status.is_none() {
            head.extend_from_slice(body);
            let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                if head.len() > 16 * 1024 {
                    return Err("response head too large".into());
                }
                continue;
            };
            let status = std::str::from_utf8(&head[..end])
                .ok()
                .and_then(|h| h.split(' ').nth(1))
                .and_then(|s| s.parse::<u16>().ok())
                .ok_or("unparsable status line")?;
            result.status = Some(status);
            if status != 200 {
                return Err(format!("HTTP {status}"));
            }
            let rest = head.split_off(end + 4);
            if rest.is_empty() {
                continue;
            }
            // The body bytes that came with the head.
            buf[..rest.len()].copy_from_slice(&rest);
            body = &buf[..rest.len()];
        }
        if body.is_empty() {
            continue;
        }
        let pause = now - last_data;
        match &mut check {
            None => {
                result.start_latency = Some(now - requested);
                live.settled.store(true, Ordering::SeqCst);
                check = Some(ClipCheck::new());
            }
            Some(_) => {
                result.max_pause = result.max_pause.max(pause);
                if pause > PAUSE_NOTED && result.pauses.len() < 10_000 {
                    result.pauses.push((now, pause));
                }
            }
        }
        last_data = now;
        result.bytes += body.len() as u64;
        live.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        if let Some(check) = &mut check {
            check.feed(
                body,
                Arrival {
                    pause_before: if result.bytes == body.len() as u64 {
                        Duration::ZERO
                    } else {
                        pause
                    },
                },
            );
        }
        if stopping {
            break;
        }
    }
    if let Some(mut check) = check {
        check.finish();
        result.splices = check.splices;
        result.located = check.located;
        result.unlocated_packets = check.unlocated_packets;
        result.misaligned = check.misaligned;
    }
    Ok(())
}
