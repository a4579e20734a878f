//! SSDP (PROTOCOLS §3): M-SEARCH parsing and replies, NOTIFY alive/byebye, and the thin loop on
//! 239.255.255.250:1900 that answers searches after a random delay, re-announces every 300 s and
//! says byebye on shutdown.
//!
//! The tuner advertises three things, as a UPnP root device must: `upnp:rootdevice`, its own
//! `uuid:<device id>` and `urn:schemas-upnp-org:device:MediaServer:1` (what Home Assistant matches
//! HDHomeRuns by). USNs are `uuid:<id>::<type>`, except for the uuid itself, whose USN is the bare
//! uuid (UPnP 1.0 §1.1.2).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_uring::net::UdpSocket;

use super::device::Device;
use super::sockets;

pub const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 250);
pub const PORT: u16 = 1900;
pub const ROOT_DEVICE: &str = "upnp:rootdevice";
pub const MEDIA_SERVER: &str = "urn:schemas-upnp-org:device:MediaServer:1";
const ALL: &str = "ssdp:all";
const MAX_AGE: u32 = 1800;
/// Re-announce well inside `MAX_AGE`.
pub const ALIVE_INTERVAL: Duration = Duration::from_secs(300);
/// The reply delay is random up to MX, but never above this: clients wait little.
const MAX_DELAY: Duration = Duration::from_secs(1);
/// Replies waiting for their delay; more are dropped (a flood of searches must not grow memory).
const MAX_QUEUED: usize = 64;
const SERVER: &str = concat!("Linux UPnP/1.0 StreamForge/", env!("CARGO_PKG_VERSION"));

/// An M-SEARCH request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub st: String,
    /// Seconds; absent in unicast searches.
    pub mx: Option<u64>,
}

/// Parses an M-SEARCH (`M-SEARCH * HTTP/1.1`, `MAN: "ssdp:discover"`, an `ST`); anything else,
/// our own NOTIFYs looping back included, is `None`.
pub fn parse_search(datagram: &[u8]) -> Option<Search> {
    let mut headers = [httparse::EMPTY_HEADER; 24];
    let mut request = httparse::Request::new(&mut headers);
    if !matches!(request.parse(datagram), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    if request.method != Some("M-SEARCH") || request.path != Some("*") {
        return None;
    }
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    let man = header("MAN")?.trim_matches('"');
    if !man.eq_ignore_ascii_case("ssdp:discover") {
        return None;
    }
    let st = header("ST").filter(|st| !st.is_empty())?.to_owned();
    let mx = header("MX").and_then(|mx| mx.parse().ok());
    Some(Search { st, mx })
}

/// The (type, USN) pairs this device advertises.
fn advertised(device: &Device) -> [(String, String); 3] {
    let udn = device.udn();
    [
        (ROOT_DEVICE.to_owned(), format!("{udn}::{ROOT_DEVICE}")),
        (udn.clone(), udn.clone()),
        (MEDIA_SERVER.to_owned(), format!("{udn}::{MEDIA_SERVER}")),
    ]
}

/// The replies to a search for `st`: one per matching type (three for `ssdp:all`), none when the
/// search is not for this device.
pub fn search_replies(device: &Device, st: &str) -> Vec<String> {
    let location = device.device_xml_url();
    advertised(device)
        .into_iter()
        .filter(|(kind, _)| st == ALL || st.eq_ignore_ascii_case(kind))
        .map(|(kind, usn)| {
            format!(
                "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age={MAX_AGE}\r\nEXT:\r\nLOCATION: {location}\r\n\
                 SERVER: {SERVER}\r\nST: {kind}\r\nUSN: {usn}\r\nCONTENT-LENGTH: 0\r\n\r\n"
            )
        })
        .collect()
}

/// `NOTIFY ssdp:alive` for each advertised type.
pub fn alive(device: &Device) -> Vec<String> {
    let location = device.device_xml_url();
    advertised(device)
        .into_iter()
        .map(|(kind, usn)| {
            format!(
                "NOTIFY * HTTP/1.1\r\nHOST: {GROUP}:{PORT}\r\nCACHE-CONTROL: max-age={MAX_AGE}\r\n\
                 LOCATION: {location}\r\nNT: {kind}\r\nNTS: ssdp:alive\r\nSERVER: {SERVER}\r\n\
                 USN: {usn}\r\n\r\n"
            )
        })
        .collect()
}

/// `NOTIFY ssdp:byebye` for each advertised type.
pub fn byebye(device: &Device) -> Vec<String> {
    advertised(device)
        .into_iter()
        .map(|(kind, usn)| {
            format!(
                "NOTIFY * HTTP/1.1\r\nHOST: {GROUP}:{PORT}\r\nNT: {kind}\r\nNTS: ssdp:byebye\r\n\
                 USN: {usn}\r\n\r\n"
            )
        })
        .collect()
}

/// A delay in `[0, min(MX, 1 s)]` from a random number; no MX (a unicast search) means at once.
pub fn reply_delay(mx: Option<u64>, random: u32) -> Duration {
    let cap = Duration::from_secs(mx.unwrap_or(0)).min(MAX_DELAY);
    let cap_ms = u32::try_from(cap.as_millis()).unwrap_or(0);
    Duration::from_millis(u64::from(random % (cap_ms + 1)))
}

async fn send_all(socket: &UdpSocket, messages: Vec<String>, to: SocketAddr) {
    for message in messages {
        // Best effort: SSDP is repeated by design.
        let _ = socket.send_to(message.into_bytes(), to).await;
    }
}

/// The SSDP loop. `membership` is a clone of the socket's descriptor for re-joining the group on
/// interfaces that came up since the last announcement.
pub(crate) async fn serve(
    socket: &UdpSocket,
    membership: &std::net::UdpSocket,
    device: &watch::Receiver<Device>,
    notify_to: SocketAddr,
    stop: &mut watch::Receiver<bool>,
) {
    let rng = SystemRandom::new();
    let alive_messages = || alive(&device.borrow());
    send_all(socket, alive_messages(), notify_to).await;
    let mut next_alive = Instant::now() + ALIVE_INTERVAL;
    let mut queued = Replies::default();
    let mut receive = Box::pin(socket.recv_from(vec![0u8; 2048]));
    loop {
        let wake = queued
            .next_due()
            .map_or(next_alive, |due| due.min(next_alive));
        tokio::select! {
            (result, buf) = &mut receive => {
                match result {
                    Ok((n, from)) => {
                        if let Some(search) = buf.get(..n).and_then(parse_search) {
                            log::debug!("SSDP: answering M-SEARCH for {} from {from}", search.st);
                            let mut random = [0u8; 4];
                            let _ = rng.fill(&mut random);
                            let at = Instant::now() + reply_delay(search.mx, u32::from_ne_bytes(random));
                            for reply in search_replies(&device.borrow(), &search.st) {
                                queued.push(at, from, reply);
                            }
                        }
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
                receive.set(socket.recv_from(buf));
            }
            _ = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                for (to, reply) in queued.take_due(now) {
                    let _ = socket.send_to(reply.into_bytes(), to).await;
                }
                if now >= next_alive {
                    sockets::join_multicast(membership, GROUP);
                    send_all(socket, alive_messages(), notify_to).await;
                    next_alive = now + ALIVE_INTERVAL;
                }
            }
            _ = stop.wait_for(|&stopped| stopped) => break,
        }
    }
    send_all(socket, byebye(&device.borrow()), notify_to).await;
    sockets::end_receive(socket, receive).await;
}

/// Search replies waiting for their delay, at most [`MAX_QUEUED`]: past it a search goes
/// unanswered (it is UDP; a flood of searches must not grow memory).
#[derive(Default)]
struct Replies(Vec<(Instant, SocketAddr, String)>);

impl Replies {
    fn push(&mut self, at: Instant, to: SocketAddr, reply: String) {
        if self.0.len() < MAX_QUEUED {
            self.0.push((at, to, reply));
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.0.iter().map(|q| q.0).min()
    }

    /// The replies due at `now`, taken out of the queue.
    fn take_due(&mut self, now: Instant) -> Vec<(SocketAddr, String)> {
        let (due, waiting) = std::mem::take(&mut self.0)
            .into_iter()
            .partition(|q| q.0 <= now);
        self.0 = waiting;
        due.into_iter().map(|(_, to, reply)| (to, reply)).collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::*;

    fn device() -> Device {
        Device::new(
            "T",
            "10AB1237".parse().unwrap(),
            "http://192.168.1.50:5004",
            2,
        )
    }

    fn search(st: &str, mx: Option<&str>) -> Vec<u8> {
        let mx = mx.map(|mx| format!("MX: {mx}\r\n")).unwrap_or_default();
        format!(
            "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n{mx}ST: {st}\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn a_flood_of_searches_queues_a_bounded_number_of_replies() {
        let mut replies = Replies::default();
        let now = Instant::now();
        let from: SocketAddr = "192.0.2.7:1900".parse().unwrap();
        for i in 0..10 * MAX_QUEUED {
            replies.push(now + Duration::from_millis(i as u64), from, "reply".into());
        }
        assert_eq!(replies.0.len(), MAX_QUEUED);
        assert_eq!(replies.next_due(), Some(now));
        assert_eq!(replies.take_due(now + Duration::from_millis(9)).len(), 10);
        assert_eq!(replies.0.len(), MAX_QUEUED - 10);
    }

    #[test]
    fn searches_parse() {
        assert_eq!(
            parse_search(&search("ssdp:all", Some("1"))),
            Some(Search {
                st: "ssdp:all".into(),
                mx: Some(1)
            })
        );
        assert_eq!(
            parse_search(
                b"M-SEARCH * HTTP/1.1\r\nman: ssdp:discover\r\nst:  upnp:rootdevice \r\n\r\n"
            ),
            Some(Search {
                st: "upnp:rootdevice".into(),
                mx: None
            })
        );
        for not_a_search in [
            &b"NOTIFY * HTTP/1.1\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\n\r\n"[..],
            b"M-SEARCH * HTTP/1.1\r\nST: ssdp:all\r\n\r\n",
            b"M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:update\"\r\nST: ssdp:all\r\n\r\n",
            b"M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nST:\r\n\r\n",
            b"M-SEARCH /x HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nST: ssdp:all\r\n\r\n",
            b"M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nST: ssdp:all\r\n",
            b"\xff\x00garbage",
            b"",
        ] {
            assert_eq!(
                parse_search(not_a_search),
                None,
                "{:?}",
                String::from_utf8_lossy(not_a_search)
            );
        }
    }

    fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
        message
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    }

    #[test]
    fn each_target_gets_its_reply() {
        let device = device();
        for (st, usn) in [
            ("upnp:rootdevice", "uuid:10AB1237::upnp:rootdevice"),
            ("uuid:10AB1237", "uuid:10AB1237"),
            ("uuid:10ab1237", "uuid:10AB1237"),
            (
                MEDIA_SERVER,
                "uuid:10AB1237::urn:schemas-upnp-org:device:MediaServer:1",
            ),
        ] {
            let replies = search_replies(&device, st);
            assert_eq!(replies.len(), 1, "{st}");
            let reply = &replies[0];
            assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
            assert!(reply.ends_with("\r\n\r\n"));
            assert_eq!(header(reply, "CACHE-CONTROL"), Some("max-age=1800"));
            assert_eq!(header(reply, "EXT"), Some(""));
            assert_eq!(
                header(reply, "LOCATION"),
                Some("http://192.168.1.50:5004/device.xml")
            );
            assert!(header(reply, "SERVER").is_some_and(|s| s.contains("UPnP/1.0")));
            assert_eq!(header(reply, "USN"), Some(usn));
            assert!(header(reply, "ST").is_some_and(|s| s.eq_ignore_ascii_case(st)));
        }
        let all = search_replies(&device, "ssdp:all");
        let sts: Vec<_> = all.iter().filter_map(|r| header(r, "ST")).collect();
        assert_eq!(sts, ["upnp:rootdevice", "uuid:10AB1237", MEDIA_SERVER]);
        for other in [
            "uuid:1251129F",
            "urn:schemas-upnp-org:device:MediaRenderer:1",
            "urn:dial-multiscreen-org:service:dial:1",
            "ssdp:alive",
        ] {
            assert!(search_replies(&device, other).is_empty(), "{other}");
        }
    }

    #[test]
    fn notifications_cover_every_type() {
        let device = device();
        let alive = alive(&device);
        let byebye = byebye(&device);
        assert_eq!((alive.len(), byebye.len()), (3, 3));
        for (message, nts) in alive
            .iter()
            .map(|m| (m, "ssdp:alive"))
            .chain(byebye.iter().map(|m| (m, "ssdp:byebye")))
        {
            assert!(message.starts_with("NOTIFY * HTTP/1.1\r\n"), "{message}");
            assert_eq!(header(message, "HOST"), Some("239.255.255.250:1900"));
            assert_eq!(header(message, "NTS"), Some(nts));
            assert!(header(message, "USN").is_some_and(|u| u.starts_with("uuid:10AB1237")));
            assert_eq!(
                parse_search(message.as_bytes()),
                None,
                "our own NOTIFY is not a search"
            );
        }
        assert_eq!(
            header(&alive[0], "LOCATION"),
            Some("http://192.168.1.50:5004/device.xml")
        );
        assert_eq!(header(&alive[2], "NT"), Some(MEDIA_SERVER));
        assert_eq!(header(&byebye[1], "NT"), Some("uuid:10AB1237"));
    }

    #[test]
    fn delays_stay_within_mx_and_one_second() {
        for random in [0, 1, 999, 1000, 1001, u32::MAX] {
            assert!(reply_delay(Some(1), random) <= Duration::from_secs(1));
            assert!(reply_delay(Some(120), random) <= Duration::from_secs(1));
            assert_eq!(reply_delay(None, random), Duration::ZERO);
            assert_eq!(reply_delay(Some(0), random), Duration::ZERO);
        }
        assert_eq!(reply_delay(Some(5), 1000), Duration::from_millis(1000));
        assert_eq!(reply_delay(Some(5), 1001), Duration::ZERO);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// A search, perhaps cut short, with a few bytes replaced.
        #[test]
        fn random_datagrams_never_panic(
            cut in any::<Option<Index>>(),
            edits in vec((any::<Index>(), any::<u8>()), 0..4),
        ) {
            let mut datagram = search("ssdp:all", Some("2"));
            if let Some(cut) = cut {
                datagram.truncate(cut.index(datagram.len()));
            }
            for (at, byte) in edits {
                if !datagram.is_empty() {
                    let at = at.index(datagram.len());
                    datagram[at] = byte;
                }
            }
            if let Some(search) = parse_search(&datagram) {
                let _ = search_replies(&device(), &search.st);
            }
        }
    }
}
