//! The thin seam over tokio-uring's pitfalls: starting the runtime, TCP connect, listen and close,
//! and socket options. Other modules use tokio-uring's own types directly (`spawn`, `UdpSocket`,
//! the buffer traits); what must be done carefully with sockets is done here.
//!
//! tokio-uring has no maintainer and known pitfalls (see `shared/reference/RUNTIME-NOTES.md`): its
//! `start` panics where io_uring is unavailable, and dropping a future does not cancel the kernel
//! operation, so a socket must be shut down before it is dropped. This module turns the first into
//! a clear error and offers `close` for the second. Nothing here uses `send_zc`.

use std::future::Future;
use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::sys::socket::{self as sock, SockaddrLike, SockaddrStorage, sockopt};

pub use tokio_uring::fs::File;
pub use tokio_uring::net::{TcpListener, TcpStream};

/// Why the io_uring runtime could not start, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error(
    "io_uring is unavailable ({0}): StreamForge needs Linux 5.11 or newer with io_uring enabled; \
     check `sysctl kernel.io_uring_disabled` (must be 0) and, in a container, allow the io_uring \
     syscalls in its seccomp profile"
)]
pub struct RuntimeUnavailable(io::Error);

/// Runs `future` to completion on a fresh tokio-uring runtime on this thread.
pub fn run<F: Future>(future: F) -> Result<F::Output, RuntimeUnavailable> {
    let runtime = tokio_uring::Runtime::new(&tokio_uring::builder()).map_err(RuntimeUnavailable)?;
    Ok(runtime.block_on(future))
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The name did not resolve, or resolved to no address.
    #[error("name resolution failed: {0}")]
    Resolve(io::Error),
    /// The deadline passed before any address accepted the connection.
    #[error("connect timed out")]
    Timeout,
    /// Every address refused or failed; the last error.
    #[error("connect failed: {0}")]
    Connect(io::Error),
}

/// Resolves `host` and connects to `port` on it, trying each address (IPv4 and IPv6) until the
/// deadline.
///
/// Resolution and connect run on tokio's blocking pool: `getaddrinfo` may block, and a blocking
/// `connect_timeout` closes its own socket when the deadline passes, so a timed-out attempt leaks
/// neither a thread of the relay nor a half-open file descriptor (which an abandoned io_uring
/// connect would). The connected socket then moves onto io_uring.
pub async fn connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, ConnectError> {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let blocking = tokio::task::spawn_blocking(move || connect_blocking(&host, port, deadline));
    let remaining = deadline.saturating_duration_since(Instant::now());
    // The blocking side honours the deadline itself; the margin only guards against a stuck resolver.
    let joined = tokio::time::timeout(remaining + Duration::from_millis(250), blocking)
        .await
        .map_err(|_| ConnectError::Timeout)?
        .map_err(|e| ConnectError::Connect(io::Error::other(e)))?;
    let stream = joined?;
    Ok(TcpStream::from_std(stream))
}

fn connect_blocking(
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<std::net::TcpStream, ConnectError> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(ConnectError::Resolve)?
        .collect();
    if addrs.is_empty() {
        return Err(ConnectError::Resolve(io::Error::new(
            io::ErrorKind::NotFound,
            "no address",
        )));
    }
    let mut last = None;
    for addr in addrs {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(ConnectError::Timeout);
        }
        match std::net::TcpStream::connect_timeout(&addr, remaining) {
            Ok(stream) => {
                stream.set_nodelay(true).map_err(ConnectError::Connect)?;
                return Ok(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => last = Some(ConnectError::Timeout),
            Err(e) => last = Some(ConnectError::Connect(e)),
        }
    }
    Err(last.unwrap_or(ConnectError::Timeout))
}

/// Asks the kernel to complete reads on `stream` only once `bytes` are buffered (or at EOF or an
/// error): fewer, larger reads and wake-ups for a stream that is delivering steadily. Not for
/// a connection still waiting for its first bytes, which it would delay.
pub fn set_receive_low_water(stream: &TcpStream, bytes: usize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = nix::libc::c_int::try_from(bytes).unwrap_or(nix::libc::c_int::MAX);
    let size = std::mem::size_of::<nix::libc::c_int>() as nix::libc::socklen_t;
    // SAFETY: a valid fd owned by `stream`, and a pointer to a c_int of the size passed. nix
    // has no wrapper for SO_RCVLOWAT.
    let result = unsafe {
        nix::libc::setsockopt(
            stream.as_raw_fd(),
            nix::libc::SOL_SOCKET,
            nix::libc::SO_RCVLOWAT,
            (&value as *const nix::libc::c_int).cast(),
            size,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Shuts a socket down in both directions so that any read or write still in flight on it
/// completes, and the peer sees FIN. Call before dropping a stream that may have an operation in
/// flight (RUNTIME-NOTES pitfall 2). Errors (already closed, not connected) are irrelevant here.
pub fn close(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Both);
}

/// Pending connections the kernel queues for a listener before refusing more.
const LISTEN_BACKLOG: i32 = 1024;

/// Binds a TCP listener on `addr`.
///
/// SO_REUSEADDR lets a restart bind at once despite connections in TIME_WAIT; SO_REUSEPORT (which
/// tokio-uring's own `bind` sets) is left off so that a second instance fails with EADDRINUSE
/// instead of silently sharing the port. IPv6 listeners are v6-only so that `0.0.0.0:P` and
/// `[::]:P` can both be configured.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let family = match addr {
        SocketAddr::V4(_) => sock::AddressFamily::Inet,
        SocketAddr::V6(_) => sock::AddressFamily::Inet6,
    };
    let fd = sock::socket(
        family,
        sock::SockType::Stream,
        sock::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    sock::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if addr.is_ipv6() {
        sock::setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    sock::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    sock::listen(&fd, sock::Backlog::new(LISTEN_BACKLOG)?)?;
    Ok(TcpListener::from_std(std::net::TcpListener::from(fd)))
}

/// Stops a listener: an accept in flight on it completes with an error and new connections are
/// refused, so the listener can then be dropped with nothing in flight (RUNTIME-NOTES pitfall 2).
pub fn close_listener(listener: &TcpListener) {
    let _ = sock::shutdown(listener.as_raw_fd(), sock::Shutdown::Both);
}

/// Which of our addresses the peer of `stream` connected to.
pub fn local_addr(stream: &TcpStream) -> io::Result<SocketAddr> {
    let addr: SockaddrStorage = sock::getsockname(stream.as_raw_fd())?;
    if let Some(v4) = addr.as_sockaddr_in() {
        Ok(SocketAddr::V4((*v4).into()))
    } else if let Some(v6) = addr.as_sockaddr_in6() {
        Ok(SocketAddr::V6((*v6).into()))
    } else {
        Err(io::Error::other(format!(
            "unexpected socket family {:?}",
            addr.family()
        )))
    }
}
