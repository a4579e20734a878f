//! The floor of the relay's design, for the benchmark harness (`--compare` runs it beside nginx):
//! the least a one-thread io_uring fan-out can spend on the same load, so that streamforge's CPU
//! can be read as a ratio to the limit of its own design on this machine.
//!
//! It does only what no relay of this design can skip: one upstream read per batch of a channel,
//! and the same frozen bytes written to every viewer of it. No TS check, no session, no ring
//! bounds, no metrics. Like the relay it batches a steady stream's reads to [`BATCH`] of it, and
//! writes each viewer's pending bytes with one call.
//!
//!     relay-floor --listen 127.0.0.1:PORT --upstream 127.0.0.1:PORT
//!
//! A viewer's `GET /any/path` is relayed from `GET /any/path` on the upstream, which must answer
//! with a close-delimited body (the harness's fake provider without redirects). The first viewer
//! of a path opens its upstream; later ones join at the next read. Not a product: no timeouts, no
//! limits, errors end the connection they happened on.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::{TcpListener, TcpStream};

/// How much of a steady stream one read gathers (the relay's own figure).
const BATCH: Duration = Duration::from_millis(200);
/// The rate is measured over this long before reads are batched.
const WARM_UP: Duration = Duration::from_secs(1);
const READ_SIZE: usize = 2 * 1024 * 1024;
const HEAD_LIMIT: usize = 16 * 1024;

fn main() {
    let (listen, upstream) = match args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("relay-floor: {message}\nusage: relay-floor --listen ADDR --upstream ADDR");
            std::process::exit(2);
        }
    };
    tokio_uring::start(async move {
        let listener = match TcpListener::bind(listen) {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("relay-floor: bind {listen}: {e}");
                std::process::exit(1);
            }
        };
        eprintln!("relay-floor: serving on {listen}, upstream {upstream}");
        let channels = Channels::default();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let channels = channels.clone();
            tokio_uring::spawn(async move {
                if let Err(e) = viewer(stream, upstream, &channels).await {
                    eprintln!("relay-floor: viewer: {e}");
                }
            });
        }
    });
}

fn args() -> Result<(SocketAddr, SocketAddr), String> {
    let mut listen = None;
    let mut upstream = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--listen" => &mut listen,
            "--upstream" => &mut upstream,
            other => return Err(format!("unknown argument {other:?}")),
        };
        let value = args.next().ok_or(format!("{flag} needs an address"))?;
        *slot = Some(value.parse().map_err(|e| format!("{flag} {value}: {e}"))?);
    }
    Ok((
        listen.ok_or("--listen is required")?,
        upstream.ok_or("--upstream is required")?,
    ))
}

/// One relayed path and the viewers that want its bytes.
#[derive(Default)]
struct Channel {
    viewers: RefCell<Vec<Rc<Viewer>>>,
}

/// A viewer's bytes not written yet, and the wake-up for its writer.
#[derive(Default)]
struct Viewer {
    pending: RefCell<Vec<Bytes>>,
    ready: Notify,
    gone: Cell<bool>,
}

type Channels = Rc<RefCell<HashMap<String, Rc<Channel>>>>;

async fn viewer(stream: TcpStream, upstream: SocketAddr, channels: &Channels) -> io::Result<()> {
    let (head, _) = read_head(&stream, BytesMut::with_capacity(4096)).await?;
    let path = request_path(&head)?;
    let ok = Bytes::from_static(
        b"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nConnection: close\r\n\r\n",
    );
    stream.write_all(ok).await.0?;
    let me = Rc::new(Viewer::default());
    let channel = channels.borrow().get(&path).cloned();
    let channel = channel.unwrap_or_else(|| open(channels, upstream, path));
    channel.viewers.borrow_mut().push(me.clone());
    let written = write_pending(&stream, &me).await;
    let _ = stream.shutdown(std::net::Shutdown::Both);
    channel.viewers.borrow_mut().retain(|v| !Rc::ptr_eq(v, &me));
    written
}

/// Starts relaying `path`; the channel is forgotten, and its viewers end, when its upstream does.
fn open(channels: &Channels, upstream: SocketAddr, path: String) -> Rc<Channel> {
    let channel = Rc::new(Channel::default());
    channels.borrow_mut().insert(path.clone(), channel.clone());
    let (feed, channels) = (channel.clone(), channels.clone());
    tokio_uring::spawn(async move {
        if let Err(e) = relay(&feed, upstream, &path).await {
            eprintln!("relay-floor: upstream {path}: {e}");
        }
        channels.borrow_mut().remove(&path);
        for viewer in feed.viewers.borrow().iter() {
            viewer.gone.set(true);
            viewer.ready.notify_one();
        }
    });
    channel
}

/// Writes what the channel hands this viewer, as it comes, until either side ends.
async fn write_pending(stream: &TcpStream, me: &Viewer) -> io::Result<()> {
    let mut bufs = Vec::new();
    loop {
        me.ready.notified().await;
        if me.gone.get() {
            return Ok(());
        }
        std::mem::swap(&mut bufs, &mut *me.pending.borrow_mut());
        for buf in bufs.drain(..) {
            stream.write_all(buf).await.0?;
        }
    }
}

/// Reads one channel's upstream to its end, handing every read to each viewer.
async fn relay(channel: &Channel, upstream: SocketAddr, path: &str) -> io::Result<()> {
    let stream = TcpStream::connect(upstream).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {upstream}\r\nUser-Agent: relay-floor\r\nConnection: close\r\n\r\n"
    );
    let (written, _) = stream.write_all(request.into_bytes()).await;
    written?;
    let (mut buf, body_at) = read_head(&stream, BytesMut::with_capacity(READ_SIZE)).await?;
    let head = buf.split_to(body_at);
    if !head.starts_with(b"HTTP/1.1 200 ") && !head.starts_with(b"HTTP/1.0 200 ") {
        let status = head[..].split(|&b| b == b'\r').next().unwrap_or_default();
        return Err(io::Error::other(
            String::from_utf8_lossy(status).into_owned(),
        ));
    }
    let started = Instant::now();
    let mut received = 0usize;
    let mut batching = false;
    loop {
        if !buf.is_empty() {
            received += buf.len();
            let chunk = buf.split().freeze();
            for viewer in channel.viewers.borrow().iter() {
                viewer.pending.borrow_mut().push(chunk.clone());
                viewer.ready.notify_one();
            }
        }
        let elapsed = started.elapsed();
        if !batching && elapsed >= WARM_UP {
            batching = true;
            let low_water =
                (received as f64 / elapsed.as_secs_f64() * BATCH.as_secs_f64()) as usize;
            set_receive_low_water(&stream, low_water.min(READ_SIZE / 2))?;
        }
        if buf.capacity() < READ_SIZE / 2 {
            buf = BytesMut::with_capacity(READ_SIZE);
        }
        let (read, returned) = stream.read(buf).await;
        buf = returned;
        if read? == 0 {
            return Ok(());
        }
    }
}

/// Reads until a blank line; returns the buffer and where the body starts in it.
async fn read_head(stream: &TcpStream, mut buf: BytesMut) -> io::Result<(BytesMut, usize)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok((buf, end + 4));
        }
        if buf.len() >= HEAD_LIMIT {
            return Err(io::Error::other("head too large"));
        }
        buf.reserve(4096);
        let at = buf.len();
        let (read, slice) = stream.read(buf.slice(at..)).await;
        buf = slice.into_inner();
        if read? == 0 {
            return Err(io::Error::other("closed before the end of the head"));
        }
    }
}

fn request_path(head: &[u8]) -> io::Result<String> {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = std::str::from_utf8(line).map_err(io::Error::other)?;
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(path)) if path.starts_with('/') => Ok(path.to_owned()),
        _ => Err(io::Error::other(format!("not a GET: {line:?}"))),
    }
}

fn set_receive_low_water(stream: &TcpStream, bytes: usize) -> io::Result<()> {
    let value = nix::libc::c_int::try_from(bytes).unwrap_or(nix::libc::c_int::MAX);
    // SAFETY: a valid fd owned by `stream`, and a pointer to a c_int of the size passed.
    let result = unsafe {
        nix::libc::setsockopt(
            stream.as_raw_fd(),
            nix::libc::SOL_SOCKET,
            nix::libc::SO_RCVLOWAT,
            (&value as *const nix::libc::c_int).cast(),
            std::mem::size_of::<nix::libc::c_int>() as nix::libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
