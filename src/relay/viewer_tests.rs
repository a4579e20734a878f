//! A viewer on an in-memory socket, fed by a channel whose attempts the test drives: the head
//! once, the ring's bytes in order across a failover, refusals, hang-ups and a lagging viewer.
//! No network, no sleep: the runtime just runs the viewer's task between the test's steps.

use std::cell::RefCell;

use tokio::sync::Notify;

use super::*;
use crate::relay::session::FailReason;
use crate::relay::source::Feed;
use crate::relay::testing::{CHUNK_BYTES, FakeConnector, Rig, chunk, frame_tags};
use crate::relay::ts::PACKET;

/// Records what is written; a hang-up ends its pending read; writes can be held.
#[derive(Default)]
struct MemorySocket {
    written: RefCell<Vec<u8>>,
    hangup: Notify,
    hold_writes: Cell<bool>,
    release: Notify,
    closed: Cell<bool>,
}

impl ViewerSocket for Rc<MemorySocket> {
    fn peer(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 40000))
    }
    async fn write_all(&self, buf: Bytes) -> io::Result<()> {
        self.written.borrow_mut().extend_from_slice(&buf);
        Ok(())
    }
    async fn writev_all(&self, bufs: Vec<Bytes>) -> (io::Result<()>, Vec<Bytes>) {
        if self.hold_writes.get() {
            self.release.notified().await;
        }
        for buf in &bufs {
            self.written.borrow_mut().extend_from_slice(buf);
        }
        (Ok(()), Vec::new())
    }
    async fn read(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        self.hangup.notified().await;
        (Ok(0), buf)
    }
    fn close(&self) {
        self.closed.set(true);
        self.hangup.notify_one();
    }
}

impl MemorySocket {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.written.borrow()).into_owned()
    }

    /// The bytes after the response head (none before it).
    fn body(&self) -> Vec<u8> {
        let written = self.written.borrow();
        match written.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(end) => written[end + 4..].to_vec(),
            None => Vec::new(),
        }
    }
}

#[test]
fn the_head_goes_once_then_the_ring_in_order_across_a_failover() {
    tokio_uring::start(async {
        let rig = Rig::new(&[(1, 1), (2, 1)]);
        let channel = Channel::start(Rc::new(rig.services()), rig.channel("101", &[1, 2]));
        let socket = Rc::new(MemorySocket::default());
        let viewer = tokio_uring::spawn(watch(channel.clone(), socket.clone(), Version::Http11));
        FakeConnector::settle(|| false).await;
        assert!(socket.written.borrow().is_empty(), "no head before media");

        let primary = rig.connector.opened()[0].attempt;
        channel.headers(primary);
        channel.media(primary, chunk(1));
        channel.media(primary, chunk(2));
        FakeConnector::settle(|| socket.body().len() == CHUNK_BYTES).await;
        assert!(socket.text().starts_with(
            "HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
        ));

        channel.failed(primary, FailReason::StreamError);
        let backup = rig.connector.opened()[1].attempt;
        channel.headers(backup);
        channel.media(backup, chunk(3));
        channel.media(backup, chunk(4));
        channel.media(backup, chunk(5));
        FakeConnector::settle(|| socket.body().len() == 3 * CHUNK_BYTES).await;
        assert_eq!(frame_tags(&socket.body()), [1, 3, 4]);
        assert_eq!(socket.text().matches("HTTP/1.1").count(), 1, "one head");

        // The viewer hangs up: it leaves the channel, which lingers.
        socket.hangup.notify_one();
        viewer.await.unwrap();
        assert!(socket.closed.get());
        assert_eq!(channel.viewers(), 0);
        assert_eq!(channel.viewing(), Viewing::Live, "lingering");
    });
}

#[test]
fn a_refused_tune_gets_an_empty_503_with_the_hdhomerun_error() {
    tokio_uring::start(async {
        let rig = Rig::new(&[(1, 1)]);
        let _busy = Channel::start(Rc::new(rig.services()), rig.channel("101", &[1]));
        let refused = Channel::start(Rc::new(rig.services()), rig.channel("102", &[1]));
        let socket = Rc::new(MemorySocket::default());
        watch(refused.clone(), socket.clone(), Version::Http10).await;
        assert_eq!(
            socket.text(),
            "HTTP/1.0 503 Service Unavailable\r\nX-HDHomeRun-Error: 805 All Tuners In Use\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        assert!(socket.closed.get());
    });
}

#[test]
fn a_viewer_that_hangs_up_while_tuning_ends_the_tune() {
    tokio_uring::start(async {
        let rig = Rig::new(&[(1, 1)]);
        let channel = Channel::start(Rc::new(rig.services()), rig.channel("101", &[1]));
        let socket = Rc::new(MemorySocket::default());
        let viewer = tokio_uring::spawn(watch(channel.clone(), socket.clone(), Version::Http11));
        FakeConnector::settle(|| false).await;
        socket.hangup.notify_one();
        viewer.await.unwrap();
        assert!(socket.written.borrow().is_empty());
        assert!(channel.is_finished(), "nobody waits for the tune");
        assert!(rig.connector.opened()[0].closed);
    });
}

#[test]
fn a_viewer_left_behind_by_the_ring_is_dropped_with_an_event() {
    tokio_uring::start(async {
        let rig = Rig::new(&[(1, 1)]);
        let mut services = rig.services();
        services.ring_bytes = 4 * 2 * PACKET;
        let channel = Channel::start(Rc::new(services), rig.channel("101", &[1]));
        let socket = Rc::new(MemorySocket::default());
        socket.hold_writes.set(true);
        let viewer = tokio_uring::spawn(watch(channel.clone(), socket.clone(), Version::Http11));
        let attempt = rig.connector.opened()[0].attempt;
        rig.deliver(&*channel, attempt);
        channel.media(attempt, chunk(1));
        FakeConnector::settle(|| false).await;
        // Its write is stuck while ten chunks go by: its place leaves the ring.
        for tag in 0..10 {
            channel.media(attempt, chunk(tag));
        }
        socket.release.notify_one();
        viewer.await.unwrap();
        assert!(rig.events.categories().contains(&"viewer"));
        let metrics = channel.services().metrics.render(&Default::default());
        assert!(
            metrics.contains("streamforge_dropped_viewers_total 1"),
            "{metrics}"
        );
        assert_eq!(channel.viewers(), 0);
    });
}
