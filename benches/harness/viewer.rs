//! A viewer: one thread, one std `TcpStream`, one `GET`. It times the start (request sent → first
//! body byte), counts bytes, notes every pause in the arrival of bytes, and checks that what it
//! receives is what the fake provider's streams send (its clip run as a live channel): one
//! contiguous piece when nothing fails, or contiguous pieces joined at splices (failover, upgrade)
//! when faults run. The first piece must be the provider's bytes exactly; the relay rewrites every
//! later source onto the session's program (SPEC §7), so pieces after a splice are compared masked
//! (see [`masked`]).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use streamforge::fake_provider::{FakeProvider, StreamVariant};

use masked::{PACKET, SYNC};

/// Bytes collected before locating them in the stream.
const LOCATE_BYTES: usize = PACKET * 100;
/// A pause in arrivals longer than this is recorded.
pub const PAUSE_NOTED: Duration = Duration::from_millis(150);
/// A viewer that receives nothing for this long gives up.
const SILENCE_LIMIT: Duration = Duration::from_secs(30);
const READ_BUF: usize = 64 * 1024;

/// What a spliced-in source may differ in from the provider's bytes, and the clip as the check
/// after a splice sees it. The relay gives a later source the session's PAT/PMT and PIDs, carries
/// the continuity counters on, rebases every clock by one constant, nulls the packets of PIDs
/// outside the program, and nulls each elementary stream's packets until the PES start it resumes
/// at. So after a splice a packet must equal the clip's, bar its continuity counter and clock
/// fields; the clocks must all be the clip's plus one offset for the whole piece; and a null
/// packet stands where the clip has a PID outside the program or a stream not yet resumed.
pub mod masked {
    use std::collections::HashMap;
    use std::sync::OnceLock;

    use streamforge::fake_provider::FakeProvider;

    pub const PACKET: usize = 188;
    pub const SYNC: u8 = 0x47;
    pub const NULL_PID: u16 = 0x1fff;
    /// PCR bases, PTS and DTS are 33-bit counters of a 90 kHz clock.
    const WRAP: u64 = (1 << 33) - 1;

    /// A clock field in a packet: a PCR or OPCR (6 bytes, the 33-bit base first) or a PES
    /// header's PTS or DTS (5 bytes).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Field {
        pub at: usize,
        pub len: usize,
    }

    impl Field {
        /// The field's 90 kHz value (a PCR's 27 MHz extension left out).
        pub fn value(self, packet: &[u8]) -> u64 {
            let b = |i: usize| u64::from(packet[self.at + i]);
            match self.len {
                6 => (b(0) << 25) | (b(1) << 17) | (b(2) << 9) | (b(3) << 1) | (b(4) >> 7),
                _ => {
                    ((b(0) >> 1) & 7) << 30 | b(1) << 22 | (b(2) >> 1) << 15 | b(3) << 7 | b(4) >> 1
                }
            }
        }
    }

    pub fn pid(packet: &[u8]) -> u16 {
        (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2])
    }

    fn unit_start(packet: &[u8]) -> bool {
        packet[1] & 0x40 != 0
    }

    /// The packet's payload (empty if it has none).
    fn payload(packet: &[u8]) -> &[u8] {
        if packet[3] & 0x10 == 0 {
            return &[];
        }
        let start = match packet[3] & 0x20 {
            0 => 4,
            _ => 5 + usize::from(packet[4]),
        };
        packet.get(start..).unwrap_or(&[])
    }

    /// Where the packet's clock fields are: PCR and OPCR in the adaptation field, and PTS and DTS
    /// in the header of a PES packet that the packet starts (unit start set).
    pub fn clock_fields(packet: &[u8]) -> Vec<Field> {
        let mut fields = Vec::new();
        if packet[3] & 0x20 != 0 && packet[4] > 0 {
            let (flags, end) = (packet[5], (5 + usize::from(packet[4])).min(PACKET));
            let mut at = 6;
            for flag in [0x10, 0x08] {
                if flags & flag != 0 && at + 6 <= end {
                    fields.push(Field { at, len: 6 });
                    at += 6;
                }
            }
        }
        let pes = payload(packet);
        // Stream ids without the optional PES header: program stream map, padding, private 2,
        // ECM, EMM, directory, DSM-CC, H.222.1 type E.
        let has_header =
            |id: u8| !matches!(id, 0xbc | 0xbe | 0xbf | 0xf0 | 0xf1 | 0xf2 | 0xf8 | 0xff);
        if unit_start(packet) && pes.len() >= 9 && pes[..3] == [0, 0, 1] && has_header(pes[3]) {
            let start = PACKET - pes.len();
            let header_end = 9 + usize::from(pes[8]);
            let fits = |end: usize| end <= header_end && end <= pes.len();
            let flags = pes[7] >> 6;
            if flags & 2 != 0 && fits(14) {
                fields.push(Field {
                    at: start + 9,
                    len: 5,
                });
                if flags == 3 && fits(19) {
                    fields.push(Field {
                        at: start + 14,
                        len: 5,
                    });
                }
            }
        }
        fields
    }

    /// `packet` with what a rewritten splice may change zeroed: its continuity counter and the
    /// bytes of `fields` (the clock fields of the packet it is compared with).
    pub fn masked(packet: &[u8], fields: &[Field]) -> [u8; PACKET] {
        let mut out = [0u8; PACKET];
        out.copy_from_slice(&packet[..PACKET]);
        out[3] &= 0xf0;
        for f in fields {
            out[f.at..f.at + f.len].fill(0);
        }
        out
    }

    /// What the relay makes of a packet it drops: a null packet, unit start cleared, the rest kept.
    pub fn nulled(packet: &[u8]) -> [u8; PACKET] {
        let mut out = [0u8; PACKET];
        out.copy_from_slice(&packet[..PACKET]);
        out[1] = (out[1] & 0xa0) | (NULL_PID >> 8) as u8;
        out[2] = NULL_PID as u8;
        out
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Role {
        /// The PAT or the PMT.
        Psi,
        /// An elementary stream of the PMT (its index there), and whether the packet starts a PES packet.
        Stream { slot: usize, start: bool },
        /// A PID the PAT and PMT do not name (the clip's SDT): nulled after a splice.
        Outside,
    }

    struct Entry {
        /// The packet as a rewritten splice must send it, masked.
        expected: [u8; PACKET],
        /// Its clock fields and their values in the clip's first loop.
        fields: Vec<Field>,
        values: Vec<u64>,
        role: Role,
    }

    /// The clip, analysed once for the masked check.
    pub struct Clip {
        clip: &'static [u8],
        entries: Vec<Entry>,
        /// Masked packets (each masked by its own clock fields) → where the clip has them.
        starts: HashMap<[u8; PACKET], Vec<usize>>,
        psi: [u16; 2],
        streams: usize,
        /// 90 kHz ticks each loop of a stream moves the clocks on.
        loop_ticks: u64,
    }

    /// A one-packet section of `pid`'s first unit start in the clip.
    fn section(clip: &[u8], pid_wanted: u16) -> &[u8] {
        let packet = clip
            .chunks_exact(PACKET)
            .find(|p| pid(p) == pid_wanted && unit_start(p))
            .expect("the clip has its PSI");
        let payload = payload(packet);
        let s = &payload[1 + usize::from(payload[0])..];
        &s[..3 + ((usize::from(s[1] & 0x0f) << 8) | usize::from(s[2]))]
    }

    impl Clip {
        fn new(clip: &'static [u8], loop_ticks: u64) -> Clip {
            let pat = section(clip, 0);
            let pmt_pid = pat[8..pat.len() - 4]
                .chunks_exact(4)
                .find(|e| e[..2] != [0, 0])
                .map(|e| (u16::from(e[2] & 0x1f) << 8) | u16::from(e[3]))
                .expect("the PAT names a program");
            let pmt = section(clip, pmt_pid);
            let mut at = 12 + ((usize::from(pmt[10] & 0x0f) << 8) | usize::from(pmt[11]));
            let mut es = Vec::new();
            while at + 5 <= pmt.len() - 4 {
                es.push((u16::from(pmt[at + 1] & 0x1f) << 8) | u16::from(pmt[at + 2]));
                at += 5 + ((usize::from(pmt[at + 3] & 0x0f) << 8) | usize::from(pmt[at + 4]));
            }
            let mut starts: HashMap<[u8; PACKET], Vec<usize>> = HashMap::new();
            let entries = clip
                .chunks_exact(PACKET)
                .enumerate()
                .map(|(i, packet)| {
                    let p = pid(packet);
                    let role = match es.iter().position(|&e| e == p) {
                        Some(slot) => Role::Stream {
                            slot,
                            start: unit_start(packet),
                        },
                        None if p == 0 || p == pmt_pid => Role::Psi,
                        None => Role::Outside,
                    };
                    let form = match role {
                        Role::Outside => nulled(packet),
                        _ => masked(packet, &[]),
                    };
                    starts
                        .entry(masked(&form, &clock_fields(&form)))
                        .or_default()
                        .push(i);
                    let fields = clock_fields(packet);
                    Entry {
                        expected: masked(&form, &fields),
                        values: fields.iter().map(|f| f.value(packet)).collect(),
                        fields,
                        role,
                    }
                })
                .collect();
            Clip {
                clip,
                entries,
                starts,
                psi: [0, pmt_pid],
                streams: es.len(),
                loop_ticks,
            }
        }

        /// The fake provider's clip.
        pub fn get() -> &'static Clip {
            static CLIP: OnceLock<Clip> = OnceLock::new();
            CLIP.get_or_init(|| Clip::new(FakeProvider::clip(), FakeProvider::loop_ticks()))
        }

        pub fn packets(&self) -> usize {
            self.entries.len()
        }

        pub fn role(&self, index: usize) -> Role {
            self.entries[index].role
        }

        /// The PAT's or the PMT's PID.
        pub fn is_psi(&self, pid: u16) -> bool {
            self.psi.contains(&pid)
        }
    }

    /// A piece of the stream after a splice, followed masked: where it is in the looped clip,
    /// the offset its clocks were rebased by, and which elementary streams have not resumed yet.
    pub struct Piece {
        /// Clip packets from the first loop's start: loop and index.
        at: u64,
        offset: Option<u64>,
        waiting: Vec<bool>,
    }

    impl Piece {
        pub fn new(clip: &Clip, index: usize) -> Piece {
            Piece {
                at: index as u64,
                offset: None,
                waiting: vec![true; clip.streams],
            }
        }

        /// Whether `packet` is the piece's next packet; if so the piece moves on.
        pub fn accept(&mut self, clip: &Clip, packet: &[u8]) -> bool {
            let n = clip.entries.len() as u64;
            let index = (self.at % n) as usize;
            let entry = &clip.entries[index];
            let got = masked(packet, &entry.fields);
            if got == entry.expected {
                if let Role::Stream { slot, start } = entry.role {
                    if self.waiting[slot] {
                        // A stream resumes at a PES start.
                        if !start {
                            return false;
                        }
                        self.waiting[slot] = false;
                    }
                    let shift = (self.at / n).wrapping_mul(clip.loop_ticks);
                    for (f, &v) in entry.fields.iter().zip(&entry.values) {
                        let offset = f.value(packet).wrapping_sub(v.wrapping_add(shift)) & WRAP;
                        if *self.offset.get_or_insert(offset) != offset {
                            return false;
                        }
                    }
                }
            } else {
                let clip_packet = &clip.clip[index * PACKET..(index + 1) * PACKET];
                let waiting = match entry.role {
                    Role::Stream { slot, .. } => self.waiting[slot],
                    _ => false,
                };
                if !waiting || got != masked(&nulled(clip_packet), &entry.fields) {
                    return false;
                }
            }
            self.at += 1;
            true
        }
    }

    /// The piece of a rewritten source that `data` (whole packets) is, if it is one.
    pub fn locate(clip: &Clip, data: &[u8]) -> Option<Piece> {
        let first = data.get(..PACKET)?;
        let key = masked(first, &clock_fields(first));
        clip.starts.get(&key)?.iter().find_map(|&index| {
            let mut piece = Piece::new(clip, index);
            data.chunks_exact(PACKET)
                .all(|p| piece.accept(clip, p))
                .then_some(piece)
        })
    }
}

/// Where the received bytes are in the provider's stream.
enum Track {
    /// Collecting packets to locate (at the start, or after a splice), and where the piece they
    /// start began.
    Locating {
        pending: Vec<u8>,
        start: Option<Start>,
    },
    /// The first piece: the next packet must be the stream's packet at this offset, exactly.
    Exact { offset: u64 },
    /// After a splice: the next packet must be the piece's next, masked.
    Masked(masked::Piece),
}

/// Where a piece began in the received bytes, and the longest pause before its first packets.
#[derive(Clone, Copy, Debug)]
struct Start {
    position: u64,
    pause: Duration,
}

/// How a byte arrived: the pause before the read that brought it.
#[derive(Clone, Copy, Debug)]
struct Arrival {
    pause_before: Duration,
}

/// A change of source seen in the bytes: the piece before ended, a new piece of the stream began.
#[derive(Clone, Debug)]
pub struct Splice {
    /// The pause before the read that brought the new piece's first byte (the longest, if its
    /// PAT and PMT came in reads of their own): an upper bound of the gap between the last byte
    /// of the old source and the first of the new.
    pub gap: Duration,
    pub stream_offset: u64,
}

/// The stream check of one viewer.
struct ClipCheck {
    clip: &'static masked::Clip,
    track: Track,
    /// An incomplete packet carried over to the next read, and when its first byte came.
    carry: Vec<u8>,
    carry_at: Option<Arrival>,
    position: u64,
    /// The PAT and what followed it up to the last packet checked, if that was only PSI and null
    /// packets: a new source begins with its PAT and PMT, which may equal the old one's next ones
    /// but for the masked fields, so a mismatch just after them dates the splice back to them.
    psi_run: Option<Start>,
    pub splices: Vec<Splice>,
    pub located: bool,
    /// Packets found nowhere in the stream (dropped one at a time while re-locating).
    pub unlocated_packets: u64,
    pub misaligned: bool,
}

impl ClipCheck {
    fn new() -> ClipCheck {
        ClipCheck {
            clip: masked::Clip::get(),
            track: Track::Locating {
                pending: Vec::new(),
                start: None,
            },
            carry: Vec::new(),
            carry_at: None,
            position: 0,
            psi_run: None,
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
        let clip = self.clip;
        while !data.is_empty() {
            let good = match &mut self.track {
                Track::Exact { offset } => {
                    let good =
                        FakeProvider::stream_mismatch(&StreamVariant::default(), *offset, data)
                            .map_or(data.len(), |at| at / PACKET * PACKET);
                    *offset += good as u64;
                    good
                }
                Track::Masked(piece) => {
                    data.chunks_exact(PACKET)
                        .take_while(|p| piece.accept(clip, p))
                        .count()
                        * PACKET
                }
                Track::Locating { pending, start } => {
                    if start.is_none() {
                        *start = Some(Start {
                            position: self.position,
                            pause: arrival.pause_before,
                        });
                    }
                    let take = (LOCATE_BYTES - pending.len()).min(data.len());
                    pending.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if pending.len() >= LOCATE_BYTES {
                        self.locate();
                    }
                    continue;
                }
            };
            for packet in data[..good].chunks_exact(PACKET) {
                self.note_psi(packet, arrival);
                self.position += PACKET as u64;
            }
            data = &data[good..];
            if !data.is_empty() {
                // A new piece starts at the first packet that differs, or with the PSI before it.
                let here = Start {
                    position: self.position,
                    pause: arrival.pause_before,
                };
                let start = match self.psi_run.take() {
                    Some(run) => Start {
                        position: run.position,
                        pause: run.pause.max(here.pause),
                    },
                    None => here,
                };
                self.track = Track::Locating {
                    pending: Vec::with_capacity(LOCATE_BYTES),
                    start: Some(start),
                };
            }
        }
    }

    /// Keeps `psi_run` up to date with a packet that matched.
    fn note_psi(&mut self, packet: &[u8], arrival: Arrival) {
        let pid = masked::pid(packet);
        if pid == 0 && self.psi_run.is_none() {
            self.psi_run = Some(Start {
                position: self.position,
                pause: Duration::ZERO,
            });
        }
        match &mut self.psi_run {
            Some(run) if self.clip.is_psi(pid) || pid == masked::NULL_PID => {
                run.pause = run.pause.max(arrival.pause_before);
            }
            _ => self.psi_run = None,
        }
    }

    /// Finds the pending bytes in the stream (exactly for the first piece, masked after a
    /// splice); drops their first packet when they are nowhere.
    fn locate(&mut self) {
        let Track::Locating { pending, start } = &mut self.track else {
            return;
        };
        if pending.first() != Some(&SYNC) {
            self.misaligned = true;
        }
        let len = pending.len();
        let found =
            match self.located {
                false => FakeProvider::locate_in_stream(&StreamVariant::default(), pending).map(
                    |offset| Track::Exact {
                        offset: offset + len as u64,
                    },
                ),
                true => masked::locate(self.clip, pending).map(Track::Masked),
            };
        match found {
            Some(track) => {
                let start = start.unwrap_or(Start {
                    position: self.position,
                    pause: Duration::ZERO,
                });
                if self.located {
                    self.splices.push(Splice {
                        gap: start.pause,
                        stream_offset: start.position,
                    });
                }
                self.located = true;
                self.position += len as u64;
                self.track = track;
                self.psi_run = None;
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

/// Checks of the stream check, run by `harness --self-test` (a bench target without the test
/// harness has no `#[test]`): masking, and the check fed the provider's bytes spliced the way the
/// relay splices them, and spoilt in the ways it must notice.
pub mod self_test {
    use std::time::Duration;

    use streamforge::fake_provider::{FakeProvider, StreamVariant};

    use super::masked::{self, Clip, Field, NULL_PID, PACKET, Role};
    use super::{Arrival, ClipCheck};

    type Test = (&'static str, fn());

    const TESTS: &[Test] = &[
        (
            "mask_hides_only_the_counter_and_the_clocks",
            mask_hides_only_the_counter_and_the_clocks,
        ),
        (
            "timestamps_count_only_in_unit_starts",
            timestamps_count_only_in_unit_starts,
        ),
        (
            "a_null_keeps_all_but_pid_and_unit_start",
            a_null_keeps_all_but_pid_and_unit_start,
        ),
        (
            "the_clip_program_is_read_from_its_psi",
            the_clip_program_is_read_from_its_psi,
        ),
        (
            "an_unbroken_stream_is_one_exact_piece",
            an_unbroken_stream_is_one_exact_piece,
        ),
        (
            "rewritten_splices_are_counted_with_their_gaps",
            rewritten_splices_are_counted_with_their_gaps,
        ),
        (
            "a_splice_at_the_loop_point_shows_in_the_clocks",
            a_splice_at_the_loop_point_shows_in_the_clocks,
        ),
        (
            "a_changed_payload_byte_is_caught",
            a_changed_payload_byte_is_caught,
        ),
        (
            "an_sdt_left_in_after_a_splice_is_caught",
            an_sdt_left_in_after_a_splice_is_caught,
        ),
        (
            "a_null_in_a_resumed_stream_is_caught",
            a_null_in_a_resumed_stream_is_caught,
        ),
        (
            "a_clock_off_the_piece_offset_is_caught",
            a_clock_off_the_piece_offset_is_caught,
        ),
        (
            "the_first_piece_must_be_exact",
            the_first_piece_must_be_exact,
        ),
    ];

    /// Runs every check; returns how many passed and the names of those that failed.
    pub fn run() -> (usize, Vec<&'static str>) {
        let mut failed = Vec::new();
        for &(name, test) in TESTS {
            if std::panic::catch_unwind(test).is_err() {
                failed.push(name);
            }
        }
        (TESTS.len() - failed.len(), failed)
    }

    fn clip() -> &'static Clip {
        Clip::get()
    }

    fn n() -> u64 {
        clip().packets() as u64
    }

    /// `packets` packets of the provider's stream from packet `from`.
    fn stream(from: u64, packets: usize) -> Vec<u8> {
        FakeProvider::stream_bytes(
            &StreamVariant::default(),
            from * PACKET as u64,
            packets * PACKET,
        )
    }

    fn write_value(packet: &mut [u8], f: Field, v: u64) {
        let b = &mut packet[f.at..f.at + 5];
        if f.len == 6 {
            b[..4].copy_from_slice(&((v >> 1) as u32).to_be_bytes());
            b[4] = (b[4] & 0x7f) | (((v & 1) as u8) << 7);
        } else {
            b[0] = (b[0] & 0xf1) | (((v >> 30) as u8 & 7) << 1);
            b[1] = (v >> 22) as u8;
            b[2] = (b[2] & 0x01) | (((v >> 15) as u8) << 1);
            b[3] = (v >> 7) as u8;
            b[4] = (b[4] & 0x01) | ((v as u8) << 1);
        }
    }

    /// What the relay does to a spliced-in source (`data`, from stream packet `from`): counters
    /// moved on by `cc_add`, clocks by `shift`, PIDs outside the program nulled (if `null_outside`),
    /// and each stream nulled up to a PES start, audio (stream 1) up to its second one, as when
    /// its first PES would overlap the old source's audio.
    fn rewrite(data: &mut [u8], from: u64, shift: u64, cc_add: u8, null_outside: bool) {
        let mut starts_seen = [0u32; 8];
        for (k, packet) in data.chunks_exact_mut(PACKET).enumerate() {
            let index = ((from + k as u64) % n()) as usize;
            match clip().role(index) {
                Role::Outside if null_outside => {
                    let null = masked::nulled(packet);
                    packet.copy_from_slice(&null);
                    continue;
                }
                Role::Stream { slot, start } => {
                    starts_seen[slot] += u32::from(start);
                    let resume = if slot == 1 { 2 } else { 1 };
                    if starts_seen[slot] < resume {
                        let null = masked::nulled(packet);
                        packet.copy_from_slice(&null);
                        continue;
                    }
                    for f in masked::clock_fields(packet) {
                        let v = f.value(packet);
                        write_value(packet, f, (v + shift) & ((1 << 33) - 1));
                    }
                }
                _ => {}
            }
            packet[3] = (packet[3] & 0xf0) | ((packet[3] + cc_add) & 0x0f);
        }
    }

    /// The check fed `parts`, each in reads of 1000 bytes, the first read of each after `pause`.
    fn check(parts: &[(&[u8], Duration)]) -> ClipCheck {
        let mut check = ClipCheck::new();
        for &(bytes, pause) in parts {
            for (i, read) in bytes.chunks(1000).enumerate() {
                let pause_before = if i == 0 { pause } else { Duration::ZERO };
                check.feed(read, Arrival { pause_before });
            }
        }
        check.finish();
        check
    }

    /// The first packet of the clip with PCR, PTS and DTS.
    fn timed_packet() -> [u8; PACKET] {
        let clip = FakeProvider::clip();
        let p = clip
            .chunks_exact(PACKET)
            .find(|p| masked::clock_fields(p).len() == 3)
            .expect("a packet with PCR, PTS and DTS");
        p.try_into().unwrap()
    }

    fn mask_hides_only_the_counter_and_the_clocks() {
        let packet = timed_packet();
        let fields = masked::clock_fields(&packet);
        assert_eq!(fields[0], Field { at: 6, len: 6 });
        assert_eq!(fields.iter().map(|f| f.len).collect::<Vec<_>>(), [6, 5, 5]);
        let base = masked::masked(&packet, &fields);
        assert_eq!(base[3] & 0x0f, 0);
        for byte in 0..PACKET {
            for bit in 0..8 {
                let mut spoilt = packet;
                spoilt[byte] ^= 1 << bit;
                let hidden = (byte == 3 && bit < 4)
                    || fields.iter().any(|f| (f.at..f.at + f.len).contains(&byte));
                assert_eq!(
                    masked::masked(&spoilt, &fields) == base,
                    hidden,
                    "byte {byte} bit {bit}"
                );
            }
        }
    }

    fn timestamps_count_only_in_unit_starts() {
        let mut packet = timed_packet();
        packet[1] &= !0x40;
        assert_eq!(masked::clock_fields(&packet), [Field { at: 6, len: 6 }]);
        packet[5] &= !0x10;
        assert!(masked::clock_fields(&packet).is_empty());
    }

    fn a_null_keeps_all_but_pid_and_unit_start() {
        let packet = timed_packet();
        let null = masked::nulled(&packet);
        assert_eq!(masked::pid(&null), NULL_PID);
        assert_eq!(null[1] & 0x40, 0);
        assert_eq!(null[1] & 0xa0, packet[1] & 0xa0);
        assert_eq!((null[0], &null[3..]), (packet[0], &packet[3..]));
    }

    fn the_clip_program_is_read_from_its_psi() {
        let clip = clip();
        assert!(clip.is_psi(0) && clip.is_psi(0x1000) && !clip.is_psi(0x100));
        let raw = FakeProvider::clip();
        let role_of = |pid: u16| {
            let i = raw
                .chunks_exact(PACKET)
                .position(|p| masked::pid(p) == pid)
                .unwrap();
            clip.role(i)
        };
        assert_eq!(role_of(0x11), Role::Outside);
        assert!(matches!(role_of(0x100), Role::Stream { slot: 0, .. }));
        assert!(matches!(role_of(0x101), Role::Stream { slot: 1, .. }));
    }

    fn an_unbroken_stream_is_one_exact_piece() {
        let data = stream(3 * n() + 1, 3000);
        let c = check(&[(&data, Duration::ZERO)]);
        assert!(c.located && c.splices.is_empty() && c.unlocated_packets == 0 && !c.misaligned);
        assert!(matches!(c.track, super::Track::Exact { .. }));
    }

    /// An exact piece, then two rewritten ones: a failover to packet 252 of another loop (the
    /// PAT before a keyframe) and a return to the stream's start.
    fn three_pieces() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let a = stream(2 * n() + 1, 1200);
        let mut b = stream(7 * n() + 252, 3000);
        rewrite(&mut b, 7 * n() + 252, 123_456_789, 5, true);
        let mut c = stream(1, 2000);
        rewrite(&mut c, 1, (1 << 33) - 77, 9, true);
        (a, b, c)
    }

    fn rewritten_splices_are_counted_with_their_gaps() {
        let (a, b, c) = three_pieces();
        let nulls = |d: &[u8]| {
            d.chunks_exact(PACKET)
                .filter(|p| masked::pid(p) == NULL_PID)
                .count()
        };
        assert!(
            nulls(&b) > 20,
            "the fixture nulls the SDT and the first audio"
        );
        let ms = Duration::from_millis;
        let got = check(&[(&a, ms(0)), (&b, ms(400)), (&c, ms(30))]);
        assert_eq!(got.unlocated_packets, 0);
        let at: Vec<(u64, Duration)> = got
            .splices
            .iter()
            .map(|s| (s.stream_offset, s.gap))
            .collect();
        assert_eq!(at, [(1200 * 188, ms(400)), (4200 * 188, ms(30))]);
    }

    fn a_splice_at_the_loop_point_shows_in_the_clocks() {
        // Each piece ends where the next begins in the clip: only the clock offset changes, from
        // the keyframe after the new source's PAT and PMT on.
        let a = stream(3 * n() + 1, n() as usize);
        let mut b = stream(4 * n() + 1, n() as usize);
        rewrite(&mut b, 4 * n() + 1, 1000, 0, true);
        let mut c = stream(5 * n() + 1, 600);
        rewrite(&mut c, 5 * n() + 1, 2000, 0, true);
        let ms = Duration::from_millis;
        let got = check(&[
            (&a, ms(0)),
            (&b[..2 * PACKET], ms(250)),
            (&b[2 * PACKET..], ms(0)),
            (&c, ms(0)),
        ]);
        assert_eq!(got.unlocated_packets, 0);
        let at: Vec<(u64, Duration)> = got
            .splices
            .iter()
            .map(|s| (s.stream_offset, s.gap))
            .collect();
        let len = a.len() as u64;
        assert_eq!(at, [(len, ms(250)), (2 * len, ms(0))]);
    }

    /// Whether the check saw something wrong beyond the two splices of `three_pieces`.
    fn spotted(a: &[u8], b: &[u8], c: &[u8]) -> bool {
        let got = check(&[
            (a, Duration::ZERO),
            (b, Duration::ZERO),
            (c, Duration::ZERO),
        ]);
        got.unlocated_packets > 0 || got.splices.len() != 2
    }

    fn a_changed_payload_byte_is_caught() {
        let (a, mut b, c) = three_pieces();
        assert!(!spotted(&a, &b, &c));
        b[500 * PACKET + 100] ^= 0x10;
        assert!(spotted(&a, &b, &c));
    }

    fn an_sdt_left_in_after_a_splice_is_caught() {
        let (a, _, c) = three_pieces();
        let mut b = stream(7 * n() + 252, 3000);
        rewrite(&mut b, 7 * n() + 252, 123_456_789, 5, false);
        assert!(spotted(&a, &b, &c));
    }

    fn a_null_in_a_resumed_stream_is_caught() {
        let (a, mut b, c) = three_pieces();
        let last_audio = b
            .chunks_exact(PACKET)
            .rposition(|p| masked::pid(p) == 0x101)
            .unwrap();
        let null = masked::nulled(&b[last_audio * PACKET..(last_audio + 1) * PACKET]);
        b[last_audio * PACKET..(last_audio + 1) * PACKET].copy_from_slice(&null);
        assert!(spotted(&a, &b, &c));
    }

    fn a_clock_off_the_piece_offset_is_caught() {
        let (a, mut b, c) = three_pieces();
        let (k, f) = b
            .chunks_exact(PACKET)
            .enumerate()
            .skip(1500)
            .find_map(|(k, p)| masked::clock_fields(p).last().map(|&f| (k, f)))
            .unwrap();
        let packet = &mut b[k * PACKET..(k + 1) * PACKET];
        let v = f.value(packet);
        write_value(packet, f, v + 1);
        assert!(spotted(&a, &b, &c));
    }

    fn the_first_piece_must_be_exact() {
        let (mut a, b, c) = three_pieces();
        // A continuity counter, which the masked pieces may change, must not change before the
        // first splice: the check sees a splice there (and more, as the rest of the piece is
        // not what a rewritten source sends).
        let is_stream = |k: u64| {
            let index = ((2 * n() + 1 + k) % n()) as usize;
            matches!(clip().role(index), Role::Stream { .. })
        };
        let k = (600..1200)
            .find(|&k| is_stream(k - 1) && is_stream(k))
            .unwrap();
        a[k as usize * PACKET + 3] ^= 0x01;
        let got = check(&[
            (&a, Duration::ZERO),
            (&b, Duration::ZERO),
            (&c, Duration::ZERO),
        ]);
        assert!(got.splices.len() > 2);
        assert_eq!(got.splices[0].stream_offset, k * 188);
    }
}
