//! The address clients are told to use when none is configured: the first LAN IPv4 address of an
//! interface that is up, with the first listen port. Never localhost when a LAN address exists,
//! since Plex re-tests the device at BaseURL.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;

pub fn detected_base_url(listen: &[SocketAddr]) -> String {
    let port = listen.first().map_or(5004, SocketAddr::port);
    let ip = listen
        .iter()
        .map(SocketAddr::ip)
        .find(|ip| !ip.is_unspecified())
        .or_else(|| lan_ipv4().map(IpAddr::V4))
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{port}"),
        IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
    }
}

fn lan_ipv4() -> Option<Ipv4Addr> {
    getifaddrs().ok()?.find_map(|interface| {
        let up = interface.flags.contains(InterfaceFlags::IFF_UP)
            && !interface.flags.contains(InterfaceFlags::IFF_LOOPBACK);
        let ip = interface.address?.as_sockaddr_in()?.ip();
        (up && !ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specific_listen_address_is_advertised_as_is() {
        let listen = ["127.0.0.1:5004".parse().unwrap()];
        assert_eq!(detected_base_url(&listen), "http://127.0.0.1:5004");
    }

    #[test]
    fn wildcard_listen_advertises_a_real_address_and_the_port() {
        let listen = ["0.0.0.0:8080".parse().unwrap()];
        let url = detected_base_url(&listen);
        assert!(
            url.starts_with("http://") && url.ends_with(":8080"),
            "{url}"
        );
        assert!(!url.contains("0.0.0.0"), "{url}");
    }
}
