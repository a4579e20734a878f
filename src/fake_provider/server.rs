//! Listeners, accept loops and a thread per connection, with a prompt and complete stop: every
//! thread joined and every socket closed, so nothing lingers between tests.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::http::Conn;
use super::{Shared, lock, routes};

/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);
/// How long `stop` tries to reach its own listener to wake a blocked accept.
const WAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// The open connections, so that stop can cut them, and their threads, so that it can join them.
#[derive(Default)]
struct Registry {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Registry {
    fn add(&self, sock: TcpStream) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.open).insert(id, sock);
        id
    }

    fn remove(&self, id: u64) {
        lock(&self.open).remove(&id);
    }

    fn keep(&self, handle: JoinHandle<()>) {
        let mut threads = lock(&self.threads);
        threads.retain(|t| !t.is_finished());
        threads.push(handle);
    }
}

/// A listener and, for HTTPS, its TLS configuration.
pub(super) struct Listener {
    pub socket: TcpListener,
    pub tls: Option<Arc<ServerConfig>>,
}

pub(super) struct Server {
    stopping: Arc<AtomicBool>,
    acceptors: Mutex<Vec<(SocketAddr, JoinHandle<()>)>>,
    registry: Arc<Registry>,
}

impl Server {
    /// Starts one accept loop per listener.
    pub(super) fn start(listeners: Vec<Listener>, shared: Arc<Shared>) -> io::Result<Server> {
        let server = Server {
            stopping: Arc::new(AtomicBool::new(false)),
            acceptors: Mutex::new(Vec::new()),
            registry: Arc::new(Registry::default()),
        };
        for listener in listeners {
            let addr = listener.socket.local_addr()?;
            let (stopping, registry, shared) = (
                server.stopping.clone(),
                server.registry.clone(),
                shared.clone(),
            );
            let handle = thread::Builder::new()
                .name("fakeprov-accept".into())
                .spawn(move || accept_loop(listener, &stopping, &registry, &shared));
            match handle {
                Ok(handle) => lock(&server.acceptors).push((addr, handle)),
                Err(e) => {
                    server.stop();
                    return Err(e);
                }
            }
        }
        Ok(server)
    }

    /// Stops accepting, cuts every connection and joins every thread. Idempotent.
    pub(super) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let acceptors = std::mem::take(&mut *lock(&self.acceptors));
        for (addr, handle) in acceptors {
            // A blocked accept wakes when we connect; if we cannot, leave that thread detached
            // rather than hang.
            if TcpStream::connect_timeout(&wake_addr(addr), WAKE_TIMEOUT).is_ok() {
                let _ = handle.join();
            }
        }
        // No acceptor runs now, so no connection can be added behind this sweep.
        for sock in lock(&self.registry.open).values() {
            let _ = sock.shutdown(Shutdown::Both);
        }
        let threads = std::mem::take(&mut *lock(&self.registry.threads));
        for handle in threads {
            let _ = handle.join();
        }
    }
}

/// Where to connect to reach a listener bound to `addr` (a wildcard address means loopback).
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

fn accept_loop(
    listener: Listener,
    stopping: &AtomicBool,
    registry: &Arc<Registry>,
    shared: &Arc<Shared>,
) {
    loop {
        let accepted = listener.socket.accept();
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let sock = match accepted {
            Ok((sock, _)) => sock,
            Err(_) => {
                thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        let Ok(handle) = sock.try_clone() else {
            continue;
        };
        let conn = match &listener.tls {
            None => Conn::Plain(sock),
            Some(config) => match ServerConnection::new(config.clone()) {
                Ok(tls) => Conn::Tls(Box::new(StreamOwned::new(tls, sock))),
                Err(_) => continue,
            },
        };
        let id = registry.add(handle);
        let (thread_registry, thread_shared) = (registry.clone(), shared.clone());
        let spawned = thread::Builder::new()
            .name("fakeprov-conn".into())
            .spawn(move || {
                routes::handle(conn, &thread_shared);
                thread_registry.remove(id);
            });
        match spawned {
            Ok(thread) => registry.keep(thread),
            Err(_) => registry.remove(id),
        }
    }
}
