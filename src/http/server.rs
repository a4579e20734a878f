//! Listeners, accept loops, the connection cap and shutdown.
//!
//! Each connection is its own task on the current thread's runtime, so one stuck or hostile
//! client only ever holds its own slot. Over the cap, a new connection is accepted and closed at
//! once: answering it would cost the very work the cap exists to bound, and a refused client
//! retries. On shutdown the listeners are closed, idle connections close at once, a request in
//! progress is answered (with `Connection: close`), and after `shutdown_grace` whatever is still
//! open (e.g. a taken-over stream) is cut.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::Notify;

use super::conn::{self, Connection, Limits};
use super::{Handler, Shutdown};
use crate::net::{self, TcpListener};

/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: Vec<SocketAddr>,
    /// Open connections at most, taken-over ones included; past it new ones are closed at once.
    pub max_connections: usize,
    /// The request head must arrive within this of the connection becoming ready for it (accepted,
    /// or the first byte after a keep-alive pause); the body gets as long again. A client that
    /// sent part of a head gets `408` and the connection is closed; a silent one is just closed.
    pub head_timeout: Duration,
    /// How long a kept-alive connection may sit between requests.
    pub idle_timeout: Duration,
    /// How long one write of a response may make no progress before the connection is cut.
    pub send_timeout: Duration,
    /// Request line plus headers at most; past it, `431` and close.
    pub max_head_bytes: usize,
    /// Request body at most; past it, `413` and close.
    pub max_body_bytes: usize,
    /// After shutdown, how long connections still busy get before they are cut.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: Vec::new(),
            max_connections: 512,
            head_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(30),
            max_head_bytes: 8 * 1024,
            max_body_bytes: 64 * 1024,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Bound listeners, ready to serve.
pub struct Server {
    config: ServerConfig,
    listeners: Vec<(SocketAddr, Rc<TcpListener>)>,
}

impl Server {
    /// Binds every address in `config.listen`, or none: the error names the address that failed.
    pub fn bind(config: ServerConfig) -> io::Result<Server> {
        if config.listen.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no address to listen on",
            ));
        }
        let mut listeners = Vec::with_capacity(config.listen.len());
        for &addr in &config.listen {
            let listener = net::listen(addr).map_err(|e| bind_error(addr, e))?;
            let local = listener.local_addr().map_err(|e| bind_error(addr, e))?;
            listeners.push((local, Rc::new(listener)));
        }
        Ok(Server { config, listeners })
    }

    /// The bound addresses (with the actual port where port 0 was asked for).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|(addr, _)| *addr).collect()
    }

    /// Serves until `shutdown` fires, then stops as described in the module doc and returns once
    /// every connection is closed. Must run inside `crate::net::run`.
    pub async fn run(self, handler: Rc<dyn Handler>, shutdown: Shutdown) {
        let tracker = Rc::new(Tracker::default());
        let accepting: Vec<_> = self
            .listeners
            .iter()
            .map(|(_, listener)| {
                tokio_uring::spawn(accept_loop(
                    listener.clone(),
                    handler.clone(),
                    self.config.clone(),
                    shutdown.clone(),
                    tracker.clone(),
                ))
            })
            .collect();
        shutdown.fired().await;
        for (_, listener) in &self.listeners {
            net::close_listener(listener);
        }
        for task in accepting {
            let _ = task.await;
        }
        while tracker.open.get() > 0 {
            tracker.drained.notified().await;
        }
    }
}

fn bind_error(addr: SocketAddr, e: io::Error) -> io::Error {
    let hint = match e.kind() {
        io::ErrorKind::AddrInUse => " (another program, or another StreamForge, uses this port)",
        io::ErrorKind::PermissionDenied => {
            " (ports below 1024 need CAP_NET_BIND_SERVICE, as the systemd unit grants)"
        }
        io::ErrorKind::AddrNotAvailable => " (no interface of this machine has that address)",
        _ => "",
    };
    io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}{hint}"))
}

/// Counts open connections, and wakes the stopping server when the last one closes.
#[derive(Default)]
struct Tracker {
    open: Cell<usize>,
    drained: Notify,
}

/// One connection's place under the cap, given back when its task ends (even by panic).
struct Slot(Rc<Tracker>);

impl Slot {
    fn take(tracker: &Rc<Tracker>) -> Slot {
        tracker.open.set(tracker.open.get() + 1);
        Slot(tracker.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let open = self.0.open.get().saturating_sub(1);
        self.0.open.set(open);
        if open == 0 {
            self.0.drained.notify_one();
        }
    }
}

async fn accept_loop(
    listener: Rc<TcpListener>,
    handler: Rc<dyn Handler>,
    config: ServerConfig,
    shutdown: Shutdown,
    tracker: Rc<Tracker>,
) {
    let limits = Limits::from_config(&config);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // `run` closes the listener once shutdown fired, which fails the accept.
            Err(_) if shutdown.is_fired() => return,
            Err(e) => {
                log::warn!("HTTP: accepting a connection failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let local = match net::local_addr(&stream) {
            Ok(local) if tracker.open.get() < config.max_connections => local,
            _ => {
                log::debug!(
                    "HTTP: closed {peer} at once (connection limit reached, or its socket failed)"
                );
                net::close(&stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let slot = Slot::take(&tracker);
        let conn = Connection::new(stream, peer, local);
        let (handler, shutdown, grace) = (handler.clone(), shutdown.clone(), config.shutdown_grace);
        tokio_uring::spawn(async move {
            let _slot = slot;
            let cut = async {
                shutdown.fired().await;
                tokio::time::sleep(grace).await;
            };
            // Dropping the connection's future (past the grace) drops, and so closes, its socket.
            tokio::select! {
                _ = conn::serve(conn, handler, limits, shutdown.clone()) => {}
                _ = cut => {}
            }
        });
    }
}
