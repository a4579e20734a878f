//! The TCP 65001 control protocol, only as far as `hdhomerun_config <ip> get /sys/model` and its
//! kin need (PROTOCOLS §2.3): GETSET_REQ in, GETSET_RPY out, same framing as discovery.
//!
//! Every variable is read-only: a set gets an error, as does an unknown name. The listener caps
//! its connections, bounds each one's buffer to one frame, closes idle ones, and shuts every
//! socket down before dropping it (RUNTIME-NOTES pitfall 2).

use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_uring::net::{TcpListener, TcpStream};

use super::device::{FIRMWARE_NAME, FIRMWARE_VERSION, MODEL_NUMBER};
use super::packet::{
    self, Frame, FrameBuilder, MAX_PACKET, TAG_ERROR_MESSAGE, TAG_GETSET_NAME, TAG_GETSET_VALUE,
    TYPE_GETSET_REQ, TYPE_GETSET_RPY,
};
use crate::net;

pub const ERROR_UNKNOWN: &str = "ERROR: unknown getset variable";
pub const ERROR_READ_ONLY: &str = "ERROR: permission denied";
const ERROR_NO_NAME: &str = "ERROR: missing getset variable name";

const HELP: &str = "Supported configuration options:\n/sys/hwmodel\n/sys/model\n/sys/version";

/// At most this many control connections at once; more are closed at once.
pub(super) const MAX_CONNECTIONS: usize = 16;
/// A connection that sends nothing for this long is closed.
const IDLE: Duration = Duration::from_secs(60);
/// How long shutdown waits for open connections to close.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// The answer to a get or set of `name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Value(&'static str),
    Error(&'static str),
}

/// Looks a variable up: `/sys/model` is the firmware name, as on real devices.
pub fn answer(name: &str, is_set: bool) -> Answer {
    let value = match name {
        "/sys/model" => FIRMWARE_NAME,
        "/sys/hwmodel" => MODEL_NUMBER,
        "/sys/version" => FIRMWARE_VERSION,
        "help" => HELP,
        _ => return Answer::Error(ERROR_UNKNOWN),
    };
    if is_set {
        Answer::Error(ERROR_READ_ONLY)
    } else {
        Answer::Value(value)
    }
}

/// The reply to one control frame: GETSET_RPY echoing GETSET_NAME, then GETSET_VALUE or
/// ERROR_MESSAGE (NUL-terminated, like a real device's). Other frame types get no reply.
pub fn respond(frame: &Frame<'_>) -> Option<Vec<u8>> {
    if frame.kind != TYPE_GETSET_REQ {
        return None;
    }
    let mut name = None;
    let mut is_set = false;
    for tlv in frame.tlvs() {
        match tlv.ok()? {
            (TAG_GETSET_NAME, value) => name = Some(value),
            (TAG_GETSET_VALUE, _) => is_set = true,
            _ => {}
        }
    }
    let mut reply = FrameBuilder::new(TYPE_GETSET_RPY);
    let answer = match name {
        Some(raw) => {
            reply = reply.tlv(TAG_GETSET_NAME, raw);
            let text = std::str::from_utf8(raw).unwrap_or("");
            answer(text.trim_end_matches('\0'), is_set)
        }
        None => Answer::Error(ERROR_NO_NAME),
    };
    let reply = match answer {
        Answer::Value(value) => reply.string_nul(TAG_GETSET_VALUE, value.as_bytes()),
        Answer::Error(message) => reply.string_nul(TAG_ERROR_MESSAGE, message.as_bytes()),
    };
    reply.finish().ok()
}

/// Accepts control connections until `stop` turns true, then shuts the listener down, waits for
/// the pending accept and (briefly) for open connections to close.
pub(crate) async fn serve(listener: &TcpListener, stop: &mut watch::Receiver<bool>) {
    let active = Rc::new(Cell::new(0usize));
    // Each connection task holds a sender; `recv` yields `None` once all of them are gone.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    let connection_stop = stop.clone();
    let mut accept = Box::pin(listener.accept());
    loop {
        tokio::select! {
            result = &mut accept => {
                match result {
                    Ok((stream, _)) if active.get() < MAX_CONNECTIONS => {
                        let guard = ConnectionGuard::new(&active, open_tx.clone());
                        let stop = connection_stop.clone();
                        tokio_uring::spawn(async move {
                            connection(stream, stop).await;
                            drop(guard);
                        });
                    }
                    Ok((stream, _)) => net::close(&stream),
                    // Out of descriptors and the like: back off instead of spinning.
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
                accept.set(listener.accept());
            }
            _ = stop.wait_for(|&stopped| stopped) => break,
        }
    }
    // Shutting a listening socket down makes its pending accept fail, so no operation is left
    // in flight when the listener is dropped.
    let _ = nix::sys::socket::shutdown(listener.as_raw_fd(), nix::sys::socket::Shutdown::Both);
    if let Ok(Ok((stream, _))) = tokio::time::timeout(CLOSE_WAIT, &mut accept).await {
        net::close(&stream);
    }
    drop(open_tx);
    let _ = tokio::time::timeout(CLOSE_WAIT, open_rx.recv()).await;
}

/// Counts a connection while it lives.
struct ConnectionGuard {
    active: Rc<Cell<usize>>,
    _open: mpsc::Sender<()>,
}

impl ConnectionGuard {
    fn new(active: &Rc<Cell<usize>>, open: mpsc::Sender<()>) -> ConnectionGuard {
        active.set(active.get() + 1);
        ConnectionGuard {
            active: Rc::clone(active),
            _open: open,
        }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.active.set(self.active.get().saturating_sub(1));
    }
}

/// Answers one connection's frames in order until EOF, an error, a broken frame, idleness or stop.
async fn connection(stream: TcpStream, mut stop: watch::Receiver<bool>) {
    // Holds at most one partial frame plus one read: `parse_stream` refuses longer frames.
    let mut pending: Vec<u8> = Vec::with_capacity(2 * MAX_PACKET);
    let mut buf = vec![0u8; MAX_PACKET];
    'connection: loop {
        loop {
            let (reply, used) = match packet::parse_stream(&pending) {
                Ok(Some((frame, used))) => (respond(&frame), used),
                Ok(None) => break,
                Err(_) => break 'connection,
            };
            pending.drain(..used);
            if let Some(reply) = reply {
                let (written, _) = stream.write_all(reply).await;
                if written.is_err() {
                    break 'connection;
                }
            }
        }
        tokio::select! {
            outcome = tokio::time::timeout(IDLE, stream.read(buf)) => match outcome {
                Ok((Ok(n), read_buf)) if n > 0 => {
                    pending.extend_from_slice(read_buf.get(..n).unwrap_or_default());
                    buf = read_buf;
                }
                _ => break,
            },
            _ = stop.wait_for(|&stopped| stopped) => break,
        }
    }
    net::close(&stream);
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    fn request(name: &[u8], value: Option<&[u8]>) -> Vec<u8> {
        let mut frame = FrameBuilder::new(TYPE_GETSET_REQ).tlv(TAG_GETSET_NAME, name);
        if let Some(value) = value {
            frame = frame.tlv(TAG_GETSET_VALUE, value);
        }
        frame.finish().unwrap()
    }

    /// The reply's (tag, value) pairs.
    fn reply_to(bytes: &[u8]) -> Option<Vec<(u8, Vec<u8>)>> {
        let frame = packet::parse_datagram(bytes).unwrap();
        let reply = respond(&frame)?;
        let frame = packet::parse_datagram(&reply).unwrap();
        assert_eq!(frame.kind, TYPE_GETSET_RPY);
        Some(
            frame
                .tlvs()
                .map(|t| t.map(|(k, v)| (k, v.to_vec())).unwrap())
                .collect(),
        )
    }

    #[test]
    fn gets_are_answered() {
        for (name, value) in [
            ("/sys/model", "hdhomeruntc_atsc"),
            ("/sys/hwmodel", "HDTC-2US"),
            ("/sys/version", "20150826"),
        ] {
            let raw = format!("{name}\0");
            assert_eq!(
                reply_to(&request(raw.as_bytes(), None)),
                Some(vec![
                    (TAG_GETSET_NAME, raw.clone().into_bytes()),
                    (TAG_GETSET_VALUE, format!("{value}\0").into_bytes()),
                ])
            );
        }
        assert!(matches!(answer("help", false), Answer::Value(v) if v.contains("/sys/model")));
    }

    #[test]
    fn unknown_names_sets_and_missing_names_get_errors() {
        let error = |msg: &str| (TAG_ERROR_MESSAGE, format!("{msg}\0").into_bytes());
        let unknown = reply_to(&request(b"/tuner0/channel\0", None)).unwrap();
        assert_eq!(unknown[1], error(ERROR_UNKNOWN));
        let set = reply_to(&request(b"/sys/model\0", Some(b"x\0"))).unwrap();
        assert_eq!(set[1], error(ERROR_READ_ONLY));
        let set_unknown = reply_to(&request(b"/x\0", Some(b"1\0"))).unwrap();
        assert_eq!(set_unknown[1], error(ERROR_UNKNOWN));
        let not_utf8 = reply_to(&request(b"\xff\xfe\0", None)).unwrap();
        assert_eq!(not_utf8[1], error(ERROR_UNKNOWN));
        let nameless = FrameBuilder::new(TYPE_GETSET_REQ).finish().unwrap();
        assert_eq!(reply_to(&nameless), Some(vec![error(ERROR_NO_NAME)]));
        // A name without its NUL still works.
        let bare = reply_to(&request(b"/sys/model", None)).unwrap();
        assert_eq!(bare[1], (TAG_GETSET_VALUE, b"hdhomeruntc_atsc\0".to_vec()));
    }

    #[test]
    fn other_frames_get_no_reply() {
        let discover = FrameBuilder::new(packet::TYPE_DISCOVER_REQ)
            .finish()
            .unwrap();
        assert_eq!(reply_to(&discover), None);
        let truncated = Frame {
            kind: TYPE_GETSET_REQ,
            payload: &[TAG_GETSET_NAME, 9, b'/'],
        };
        assert_eq!(respond(&truncated), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn random_frames_never_panic(
            kind in prop_oneof![Just(TYPE_GETSET_REQ), any::<u16>()],
            payload in vec(any::<u8>(), 0..40),
        ) {
            let _ = respond(&Frame {
                kind,
                payload: &payload,
            });
            let _ = packet::parse_stream(&payload);
        }
    }
}
