//! Socket tests of the discovery runner on loopback, and the real `hdhomerun_config` client.
//!
//! Every wait is bounded by a timeout that only expires on failure; nothing sleeps to synchronise.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_uring::net::{TcpStream, UdpSocket};

use super::packet::{self, FrameBuilder, TAG_GETSET_NAME, TAG_GETSET_VALUE, TYPE_GETSET_REQ};
use super::*;

const WAIT: Duration = Duration::from_secs(5);

fn device(tuners: u32) -> Device {
    Device::new(
        "Test Tuner",
        "1251129F".parse().unwrap(),
        "http://127.0.0.1:5004",
        tuners,
    )
}

struct Running {
    shutdown: oneshot::Sender<()>,
    handle: JoinHandle<()>,
    udp: SocketAddr,
    control: SocketAddr,
    ssdp: Option<SocketAddr>,
}

fn settings(device: watch::Receiver<Device>) -> DiscoverySettings {
    DiscoverySettings {
        bind: Ipv4Addr::LOCALHOST,
        udp_port: 0,
        ssdp: false,
        ssdp_port: 0,
        ssdp_notify_to: "127.0.0.1:9".parse().unwrap(),
        device,
    }
}

fn start(settings: DiscoverySettings) -> Running {
    let discovery = Discovery::bind(settings).unwrap();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let (udp, control) = (
        discovery.udp_addr().unwrap(),
        discovery.control_addr().unwrap(),
    );
    let ssdp = discovery.ssdp_addr().unwrap();
    let handle = tokio_uring::spawn(discovery.run(async {
        let _ = stopped.await;
    }));
    Running {
        shutdown,
        handle,
        udp,
        control,
        ssdp,
    }
}

impl Running {
    async fn stop(self) {
        let _ = self.shutdown.send(());
        tokio::time::timeout(WAIT, self.handle)
            .await
            .expect("the discovery runner did not stop")
            .unwrap();
    }
}

async fn receive(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let (result, buf) = tokio::time::timeout(WAIT, socket.recv_from(vec![0u8; 2048]))
        .await
        .expect("no datagram arrived");
    let (n, from) = result.unwrap();
    (buf[..n].to_vec(), from)
}

fn run<F: std::future::Future>(test: F) -> F::Output {
    crate::net::run(test).expect("io_uring runtime")
}

const JELLYFIN_REQUEST: [u8; 20] = [
    0x00, 0x02, 0x00, 0x0C, 0x01, 0x04, 0xFF, 0xFF, 0xFF, 0xFF, 0x02, 0x04, 0xFF, 0xFF, 0xFF, 0xFF,
    0x73, 0xCC, 0x7D, 0x8F,
];

#[test]
fn udp_discovery_answers_by_unicast_and_follows_the_tuner_count() {
    run(async {
        let (device_tx, device_rx) = watch::channel(device(4));
        let server = start(settings(device_rx));
        let client = UdpSocket::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();

        // A bad CRC first: were it answered, that reply would arrive before the good one's.
        let mut bad = JELLYFIN_REQUEST.to_vec();
        bad[19] ^= 1;
        let _ = client.send_to(bad, server.udp).await;
        let _ = client.send_to(JELLYFIN_REQUEST.to_vec(), server.udp).await;
        let (reply, from) = receive(&client).await;
        assert_eq!(from, server.udp, "the reply comes from the discovery port");
        assert_eq!(reply, discovery::build_reply(&device(4)));

        device_tx.send_replace(device(7));
        let _ = client.send_to(JELLYFIN_REQUEST.to_vec(), server.udp).await;
        let (reply, _) = receive(&client).await;
        assert_eq!(reply, discovery::build_reply(&device(7)));

        let control = server.control;
        server.stop().await;
        // The listener is closed, not left half-alive.
        let refused = TcpStream::connect(control).await;
        assert!(
            refused.is_err(),
            "control port still accepts after shutdown"
        );
    });
}

fn getset(name: &str) -> Vec<u8> {
    FrameBuilder::new(TYPE_GETSET_REQ)
        .string_nul(TAG_GETSET_NAME, name.as_bytes())
        .finish()
        .unwrap()
}

/// Reads whole frames until `count` have arrived; returns the GETSET_VALUE or ERROR_MESSAGE of each.
async fn read_answers(stream: &TcpStream, count: usize) -> Vec<String> {
    let mut pending = Vec::new();
    let mut answers = Vec::new();
    while answers.len() < count {
        let (result, buf) = tokio::time::timeout(WAIT, stream.read(vec![0u8; 512]))
            .await
            .expect("no reply");
        let n = result.unwrap();
        assert!(n > 0, "connection closed early");
        pending.extend_from_slice(&buf[..n]);
        while let Some((frame, used)) = packet::parse_stream(&pending).unwrap() {
            let text = frame
                .tlvs()
                .map(Result::unwrap)
                .find(|(tag, _)| *tag != TAG_GETSET_NAME)
                .map(|(tag, value)| {
                    let text = String::from_utf8_lossy(value)
                        .trim_end_matches('\0')
                        .to_owned();
                    if tag == TAG_GETSET_VALUE {
                        text
                    } else {
                        format!("error: {text}")
                    }
                })
                .unwrap();
            answers.push(text);
            pending.drain(..used);
        }
    }
    answers
}

#[test]
fn tcp_control_connections_are_capped() {
    run(async {
        let (_device_tx, device_rx) = watch::channel(device(2));
        let server = start(settings(device_rx));
        let mut open = Vec::new();
        for _ in 0..control::MAX_CONNECTIONS {
            let stream = TcpStream::connect(server.control).await.unwrap();
            stream.write_all(getset("/sys/model")).await.0.unwrap();
            assert_eq!(read_answers(&stream, 1).await, ["hdhomeruntc_atsc"]);
            open.push(stream);
        }
        // One more is closed at once: a client cannot make the server hold more.
        let excess = TcpStream::connect(server.control).await.unwrap();
        let (result, _) = tokio::time::timeout(WAIT, excess.read(vec![0u8; 64]))
            .await
            .expect("the connection past the cap was not closed");
        assert!(matches!(result, Ok(0) | Err(_)), "{result:?}");
        crate::net::close(&excess);
        // Those within the cap are still served.
        open[0].write_all(getset("/sys/hwmodel")).await.0.unwrap();
        assert_eq!(read_answers(&open[0], 1).await, ["HDTC-2US"]);
        for stream in &open {
            crate::net::close(stream);
        }
        server.stop().await;
    });
}

#[test]
fn tcp_control_answers_gets_pipelined_and_split() {
    run(async {
        let (_device_tx, device_rx) = watch::channel(device(2));
        let server = start(settings(device_rx));
        let stream = TcpStream::connect(server.control).await.unwrap();

        let (written, _) = stream.write_all(getset("/sys/model")).await;
        written.unwrap();
        assert_eq!(read_answers(&stream, 1).await, ["hdhomeruntc_atsc"]);

        // Two requests in one write, then one split in two writes.
        let mut two = getset("/sys/hwmodel");
        two.extend_from_slice(&getset("/nope"));
        stream.write_all(two).await.0.unwrap();
        assert_eq!(
            read_answers(&stream, 2).await,
            ["HDTC-2US", "error: ERROR: unknown getset variable"]
        );
        let split = getset("/sys/version");
        stream.write_all(split[..5].to_vec()).await.0.unwrap();
        stream.write_all(split[5..].to_vec()).await.0.unwrap();
        assert_eq!(read_answers(&stream, 1).await, ["20150826"]);

        // A broken frame ends the connection: the stream cannot be resynchronised.
        let mut broken = getset("/sys/model");
        let last = broken.len() - 1;
        broken[last] ^= 1;
        stream.write_all(broken).await.0.unwrap();
        let (result, _) = tokio::time::timeout(WAIT, stream.read(vec![0u8; 64]))
            .await
            .expect("the connection was not closed");
        assert!(matches!(result, Ok(0) | Err(_)), "{result:?}");
        crate::net::close(&stream);

        // A connection left open does not hold shutdown up.
        let idle = TcpStream::connect(server.control).await.unwrap();
        server.stop().await;
        let (result, _) = tokio::time::timeout(WAIT, idle.read(vec![0u8; 64]))
            .await
            .expect("the idle connection was not closed at shutdown");
        assert!(matches!(result, Ok(0) | Err(_)), "{result:?}");
        crate::net::close(&idle);
    });
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

#[test]
fn ssdp_announces_answers_searches_and_says_byebye() {
    run(async {
        let listener = UdpSocket::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let (_device_tx, device_rx) = watch::channel(device(2));
        let mut settings = settings(device_rx);
        settings.ssdp = true;
        settings.ssdp_notify_to = listener.local_addr().unwrap();
        let server = start(settings);
        let ssdp = server.ssdp.expect("SSDP enabled");

        let mut notified = Vec::new();
        for _ in 0..3 {
            let (message, _) = receive(&listener).await;
            notified.push(String::from_utf8(message).unwrap());
        }
        assert!(
            notified
                .iter()
                .all(|m| header(m, "NTS") == Some("ssdp:alive")),
            "{notified:?}"
        );

        let client = UdpSocket::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let search = |st: &str| {
            format!(
                "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: {st}\r\n\r\n"
            )
            .into_bytes()
        };
        // Not ours first: were it answered, that reply would come before the next one's.
        client
            .send_to(search("urn:schemas-upnp-org:device:MediaRenderer:1"), ssdp)
            .await
            .0
            .unwrap();
        client
            .send_to(search("upnp:rootdevice"), ssdp)
            .await
            .0
            .unwrap();
        let (reply, from) = receive(&client).await;
        let reply = String::from_utf8(reply).unwrap();
        assert_eq!(from, ssdp);
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert_eq!(header(&reply, "ST"), Some("upnp:rootdevice"));
        assert_eq!(
            header(&reply, "USN"),
            Some("uuid:1251129F::upnp:rootdevice")
        );
        assert_eq!(
            header(&reply, "LOCATION"),
            Some("http://127.0.0.1:5004/device.xml")
        );

        client.send_to(search("ssdp:all"), ssdp).await.0.unwrap();
        let mut sts = Vec::new();
        for _ in 0..3 {
            let (reply, _) = receive(&client).await;
            sts.push(
                header(&String::from_utf8(reply).unwrap(), "ST")
                    .unwrap()
                    .to_owned(),
            );
        }
        sts.sort();
        assert_eq!(
            sts,
            ["upnp:rootdevice", ssdp::MEDIA_SERVER, "uuid:1251129F"]
        );

        server.stop().await;
        let mut byebye = Vec::new();
        for _ in 0..3 {
            let (message, _) = receive(&listener).await;
            byebye.push(String::from_utf8(message).unwrap());
        }
        assert!(
            byebye
                .iter()
                .all(|m| header(m, "NTS") == Some("ssdp:byebye")),
            "{byebye:?}"
        );
    });
}

#[test]
fn a_port_1900_held_elsewhere_only_disables_ssdp() {
    run(async {
        // Held without SO_REUSEADDR, so our socket cannot share it.
        let holder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (_device_tx, device_rx) = watch::channel(device(2));
        let mut settings = settings(device_rx);
        settings.ssdp = true;
        settings.ssdp_port = holder.local_addr().unwrap().port();
        let server = start(settings);
        assert_eq!(server.ssdp, None);

        let client = UdpSocket::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        client
            .send_to(JELLYFIN_REQUEST.to_vec(), server.udp)
            .await
            .0
            .unwrap();
        let (reply, _) = receive(&client).await;
        assert_eq!(reply, discovery::build_reply(&device(2)));
        server.stop().await;
    });
}

/// Runs a command on the blocking pool (the runtime thread must not block) and returns its
/// stdout and stderr.
async fn command(args: &[&str]) -> (bool, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let shown = args.join(" ");
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("hdhomerun_config")
                .args(&args)
                .output()
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("`hdhomerun_config {shown}` hung"))
    .unwrap()
    .unwrap_or_else(|e| {
        panic!(
            "cannot run hdhomerun_config ({e}): install it with `apt-get install hdhomerun-config`"
        )
    });
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        output.status.success(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

/// The real client only talks to port 65001, so this test needs it free on this machine.
#[test]
fn the_real_hdhomerun_config_finds_and_queries_the_tuner() {
    for probe in ["127.0.0.1:65001", "0.0.0.0:65001"] {
        if let Err(e) = std::net::UdpSocket::bind(probe) {
            panic!(
                "UDP {probe} is busy ({e}): stop whatever holds it (another HDHomeRun or emulator) and rerun"
            );
        }
        if let Err(e) = std::net::TcpListener::bind(probe) {
            panic!(
                "TCP {probe} is busy ({e}): stop whatever holds it (another HDHomeRun or emulator) and rerun"
            );
        }
    }
    run(async {
        let (_device_tx, device_rx) = watch::channel(device(3));
        let mut settings = settings(device_rx);
        settings.udp_port = DISCOVERY_PORT;
        let server = start(settings);

        let (ok, stdout, stderr) = command(&["discover", "127.0.0.1"]).await;
        assert!(ok, "discover failed: {stdout}{stderr}");
        assert_eq!(
            stdout, "hdhomerun device 1251129F found at 127.0.0.1\n",
            "{stderr}"
        );

        let (ok, stdout, stderr) = command(&["127.0.0.1", "get", "/sys/model"]).await;
        assert!(ok, "get failed: {stdout}{stderr}");
        assert_eq!(stdout, "hdhomeruntc_atsc\n", "{stderr}");

        let (_, stdout, stderr) = command(&["127.0.0.1", "get", "/sys/hwmodel"]).await;
        assert_eq!(stdout, "HDTC-2US\n", "{stderr}");

        let (_, stdout, stderr) = command(&["127.0.0.1", "set", "/sys/model", "x"]).await;
        assert!(
            (stdout.clone() + &stderr).contains("ERROR: permission denied"),
            "set was not refused: {stdout}{stderr}"
        );

        server.stop().await;
    });
}
