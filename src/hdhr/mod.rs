//! HDHomeRun emulation: what makes Plex, Jellyfin and `hdhomerun_config` take StreamForge for a
//! SiliconDust tuner (SPEC §6, PROTOCOLS §1–§3, §6).
//!
//! - `device_id`: checksum-valid device ids, generated or checked.
//! - `device`: the identity every protocol reports.
//! - `documents`: discover.json, lineup(.json/.xml), lineup_status.json, device.xml, the M3U
//!   (pure renderers; the HTTP server serves them).
//! - `packet`: SiliconDust framing; `discovery` (UDP 65001) and `control` (TCP 65001) use it.
//! - `ssdp`: UPnP discovery on 239.255.255.250:1900.
//! - `sockets`: socket options tokio-uring cannot set, and ending a pending UDP receive without
//!   tripping tokio-uring's unwrap on a shut-down socket.
//!
//! Codecs and renderers are sans-IO and tested as pure functions; the loops only move datagrams.
//! IPv4 only: SiliconDust's IPv6 discovery (ff02::176) is not served.
//!
//! The device snapshot comes through a `tokio::sync::watch::Receiver<Device>`: the tuner count
//! follows the accounts and may change while the server runs, watch hands every loop the latest
//! value without a lock held across an await (each reply borrows it briefly), and its sender may
//! live anywhere, another thread included.

pub(crate) mod control;
mod device;
mod device_id;
pub(crate) mod discovery;
mod documents;
pub(crate) mod packet;
mod sockets;
pub(crate) mod ssdp;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use tokio::sync::watch;
use tokio_uring::net::{TcpListener, UdpSocket};

pub use device::Device;
pub use device_id::DeviceId;
pub use documents::{
    GuideNumber, LineupEntry, M3uEntry, device_xml, discover_json, lineup_json, lineup_status_json,
    lineup_xml, playlist_m3u,
};

/// The SiliconDust discovery and control port.
pub const DISCOVERY_PORT: u16 = 65001;

/// What `run_discovery` listens on and announces.
pub struct DiscoverySettings {
    /// 0.0.0.0 in production; tests use 127.0.0.1.
    pub bind: Ipv4Addr,
    /// UDP discovery and TCP control (65001; 0 picks a free port, for tests).
    pub udp_port: u16,
    pub ssdp: bool,
    /// 1900; 0 picks a free port (tests).
    pub ssdp_port: u16,
    /// Where NOTIFY alive/byebye go: 239.255.255.250:1900, or a test socket.
    pub ssdp_notify_to: SocketAddr,
    pub device: watch::Receiver<Device>,
}

impl DiscoverySettings {
    /// The production settings for `device`: all interfaces, the standard ports, SSDP on.
    pub fn new(device: watch::Receiver<Device>) -> DiscoverySettings {
        DiscoverySettings {
            bind: Ipv4Addr::UNSPECIFIED,
            udp_port: DISCOVERY_PORT,
            ssdp: true,
            ssdp_port: ssdp::PORT,
            ssdp_notify_to: SocketAddr::V4(SocketAddrV4::new(ssdp::GROUP, ssdp::PORT)),
            device,
        }
    }
}

/// The bound discovery sockets, ready to `run`.
pub struct Discovery {
    udp: UdpSocket,
    control: TcpListener,
    /// The SSDP socket and a clone of its descriptor for multicast membership changes.
    ssdp: Option<(UdpSocket, std::net::UdpSocket)>,
    device: watch::Receiver<Device>,
    notify_to: SocketAddr,
}

fn context(what: &str, addr: SocketAddrV4, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("discovery: cannot bind {what} {addr}: {e}"),
    )
}

/// UDP and TCP on the same port; with port 0, a free port for both (a few tries, since the UDP
/// port found free may be taken on TCP).
fn bind_pair(ip: Ipv4Addr, port: u16) -> io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
    let mut tries = if port == 0 { 16 } else { 1 };
    loop {
        let wanted = SocketAddrV4::new(ip, port);
        let udp = sockets::udp(wanted).map_err(|e| context("UDP", wanted, e))?;
        let bound = SocketAddrV4::new(ip, udp.local_addr()?.port());
        match sockets::tcp_listener(bound) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if tries > 1 && e.kind() == io::ErrorKind::AddrInUse => tries -= 1,
            Err(e) => return Err(context("TCP", bound, e)),
        }
    }
}

/// The SSDP socket, or `None` with a warning: SSDP is a bonus next to SiliconDust discovery, so a
/// port 1900 held by software that does not share it must not take UDP 65001 down too.
fn bind_ssdp(addr: SocketAddrV4) -> Option<(UdpSocket, std::net::UdpSocket)> {
    let bound = sockets::ssdp(addr, ssdp::GROUP).and_then(|(socket, joined)| {
        let membership = socket.try_clone()?;
        Ok((socket, membership, joined))
    });
    match bound {
        Ok((socket, membership, joined)) => {
            if joined == 0 {
                log::warn!(
                    "SSDP could not join {} on any interface; only unicast M-SEARCH will be answered",
                    ssdp::GROUP
                );
            }
            Some((UdpSocket::from_std(socket), membership))
        }
        Err(e) => {
            log::warn!("SSDP disabled: cannot bind UDP {addr}: {e}");
            None
        }
    }
}

impl Discovery {
    /// Binds UDP and TCP on `udp_port` (and SSDP when enabled; SSDP failing only disables SSDP,
    /// with a warning). Errors name the socket and address.
    /// Must run inside the tokio-uring runtime.
    pub fn bind(settings: DiscoverySettings) -> io::Result<Discovery> {
        let (udp, control) = bind_pair(settings.bind, settings.udp_port)?;
        let ssdp = if settings.ssdp {
            bind_ssdp(SocketAddrV4::new(settings.bind, settings.ssdp_port))
        } else {
            None
        };
        Ok(Discovery {
            udp: UdpSocket::from_std(udp),
            control: TcpListener::from_std(control),
            ssdp,
            device: settings.device,
            notify_to: settings.ssdp_notify_to,
        })
    }

    /// Where UDP discovery listens.
    pub fn udp_addr(&self) -> io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// Where TCP control listens (same port as UDP).
    pub fn control_addr(&self) -> io::Result<SocketAddr> {
        self.control.local_addr()
    }

    /// Where SSDP listens, when enabled.
    pub fn ssdp_addr(&self) -> io::Result<Option<SocketAddr>> {
        self.ssdp.as_ref().map(|(s, _)| s.local_addr()).transpose()
    }

    /// Serves until `shutdown` completes; then sends SSDP byebye, ends every pending operation (so
    /// none outlives its socket), waits briefly for open control connections, and closes.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let (mut stop_udp, mut stop_tcp, mut stop_ssdp) =
            (stop_rx.clone(), stop_rx.clone(), stop_rx);
        let stopper = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        let ssdp = async {
            if let Some((socket, membership)) = &self.ssdp {
                ssdp::serve(
                    socket,
                    membership,
                    &self.device,
                    self.notify_to,
                    &mut stop_ssdp,
                )
                .await;
            }
        };
        tokio::join!(
            stopper,
            discovery::serve(&self.udp, &self.device, &mut stop_udp),
            control::serve(&self.control, &mut stop_tcp),
            ssdp,
        );
    }
}

/// Binds and runs UDP discovery, TCP control and (when enabled) SSDP until `shutdown` completes.
/// Only binding can fail; per-packet errors are ignored.
pub async fn run_discovery(
    settings: DiscoverySettings,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    Discovery::bind(settings)?.run(shutdown).await;
    Ok(())
}
