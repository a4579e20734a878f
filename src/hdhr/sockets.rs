//! Socket setup the runtime cannot do (options that must be set before `bind`, via nix; the std
//! socket is then handed to tokio-uring with `from_std`), and ending a pending UDP receive safely.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, Backlog, IpMembershipRequest, SockFlag, SockType, SockaddrIn, bind, listen,
    setsockopt, socket, sockopt,
};

/// A socket with SO_REUSEADDR (a restarted server binds at once), `configure`d, then bound.
fn bound(
    kind: SockType,
    addr: SocketAddrV4,
    configure: impl FnOnce(&OwnedFd) -> nix::Result<()>,
) -> io::Result<OwnedFd> {
    let fd = socket(AddressFamily::Inet, kind, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    configure(&fd)?;
    bind(fd.as_raw_fd(), &SockaddrIn::from(addr))?;
    Ok(fd)
}

/// A UDP socket bound to `addr` with SO_REUSEADDR and SO_BROADCAST (discovery requests are
/// broadcasts).
pub(crate) fn udp(addr: SocketAddrV4) -> io::Result<std::net::UdpSocket> {
    let fd = bound(SockType::Datagram, addr, |fd| {
        setsockopt(fd, sockopt::Broadcast, &true)
    })?;
    Ok(std::net::UdpSocket::from(fd))
}

/// A listening TCP socket bound to `addr` with SO_REUSEADDR.
pub(crate) fn tcp_listener(addr: SocketAddrV4) -> io::Result<std::net::TcpListener> {
    let fd = bound(SockType::Stream, addr, |_| Ok(()))?;
    listen(&fd, Backlog::new(16).unwrap_or(Backlog::MAXCONN))?;
    Ok(std::net::TcpListener::from(fd))
}

/// Joins `group` on every IPv4 interface that is up (loopback included, so local clients and
/// tests reach it too), falling back to the kernel's default interface (INADDR_ANY) when none
/// could be joined. Already-joined interfaces fail harmlessly, so calling it again picks up
/// interfaces that came up later. Returns how many memberships are new.
pub(crate) fn join_multicast(socket: &std::net::UdpSocket, group: Ipv4Addr) -> usize {
    let mut joined = 0;
    if let Ok(interfaces) = nix::ifaddrs::getifaddrs() {
        for interface in interfaces {
            let up = interface
                .flags
                .contains(nix::net::if_::InterfaceFlags::IFF_UP);
            let address = interface
                .address
                .as_ref()
                .and_then(|a| a.as_sockaddr_in())
                .map(|a| a.ip());
            if let (true, Some(address)) = (up, address) {
                let request = IpMembershipRequest::new(group, Some(address));
                joined +=
                    usize::from(setsockopt(socket, sockopt::IpAddMembership, &request).is_ok());
            }
        }
    }
    if joined == 0 {
        let request = IpMembershipRequest::new(group, None);
        joined += usize::from(setsockopt(socket, sockopt::IpAddMembership, &request).is_ok());
    }
    joined
}

/// The SSDP socket: UDP on `addr` (0.0.0.0:1900 in production), shareable with other UPnP
/// software on the host (Plex Media Server, minidlna) through SO_REUSEADDR and SO_REUSEPORT,
/// multicast TTL 2 as UPnP asks, member of `group` (see `join_multicast`; the count of interfaces
/// joined comes back with it).
pub(crate) fn ssdp(
    addr: SocketAddrV4,
    group: Ipv4Addr,
) -> io::Result<(std::net::UdpSocket, usize)> {
    let fd = bound(SockType::Datagram, addr, |fd| {
        setsockopt(fd, sockopt::ReusePort, &true)
    })?;
    setsockopt(&fd, sockopt::IpMulticastTtl, &2)?;
    let socket = std::net::UdpSocket::from(fd);
    let joined = join_multicast(&socket, group);
    Ok((socket, joined))
}

/// Completes `receive`, a pending `recv_from` on `socket`, before the socket is dropped.
///
/// Shutting a UDP socket down completes its receive without a sender address, which tokio-uring
/// 0.5 unwraps (`recv_from.rs`: a panic in our task); merely dropping the future leaves the
/// operation, and with it the descriptor, alive until a datagram comes. So the socket is sent an
/// empty datagram from itself, which completes the receive normally. Bounded: if that datagram is
/// lost, the receive is abandoned as a dropped one would be.
pub(crate) async fn end_receive<F: Future>(socket: &tokio_uring::net::UdpSocket, receive: F) {
    if let Ok(local) = socket.local_addr() {
        let target = match local {
            SocketAddr::V4(a) if a.ip().is_unspecified() => {
                SocketAddr::from((Ipv4Addr::LOCALHOST, a.port()))
            }
            other => other,
        };
        let _ = socket.send_to(Vec::new(), target).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), receive).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ssdp_socket_joins_the_group_at_least_on_loopback() {
        let (socket, joined) = ssdp(
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            Ipv4Addr::new(239, 255, 255, 250),
        )
        .unwrap();
        assert!(joined >= 1, "joined on no interface");
        // A second SSDP socket shares the port, as UPnP software on one host must.
        let port = socket.local_addr().unwrap().port();
        assert!(
            ssdp(
                SocketAddrV4::new(Ipv4Addr::LOCALHOST, port),
                Ipv4Addr::new(239, 255, 255, 250)
            )
            .is_ok()
        );
    }
}
