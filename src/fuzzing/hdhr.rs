//! What the LAN sends the tuner emulation: SiliconDust discovery datagrams and control frames,
//! and SSDP searches.

use std::time::Duration;

use super::Script;
use crate::hdhr::packet::{self, FrameBuilder, TYPE_DISCOVER_RPY, TYPE_GETSET_RPY};
use crate::hdhr::{Device, DeviceId, control, discovery, ssdp};

fn device() -> Device {
    let id: DeviceId = "1251129F".parse().expect("a valid id");
    Device::new("Fuzz Tuner", id, "http://127.0.0.1:5004", 2)
}

/// A frame around the fuzzer's payload with a good length and CRC, so that the TLV walk is
/// reached; kept under the packet limit.
fn sealed(kind: u16, payload: &[u8]) -> Vec<u8> {
    let payload = &payload[..payload.len().min(packet::MAX_PACKET - 8)];
    let mut frame = kind.to_be_bytes().to_vec();
    frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    frame.extend_from_slice(payload);
    frame.extend_from_slice(&crc32fast::hash(&frame).to_le_bytes());
    frame
}

/// Discovery datagrams and a control connection's byte stream, raw or sealed (the first byte
/// says): never a panic; every reply we would send is a well-formed frame of the reply type; a
/// stream is consumed frame by frame without running past its bytes.
pub fn hdhr_packets(data: &[u8]) {
    let mut script = Script::new(data);
    let selector = script.byte();
    let device = device();
    let rest = script.take(usize::MAX);
    let datagram = if selector.is_multiple_of(2) {
        rest.to_vec()
    } else {
        sealed(u16::from(selector >> 1) % 6, rest)
    };
    if let Some(reply) = discovery::respond(&datagram, &device) {
        let frame = packet::parse_datagram(&reply).expect("our discovery reply parses");
        assert_eq!(frame.kind, TYPE_DISCOVER_RPY);
        assert!(frame.tlvs().all(|t| t.is_ok()));
    }
    let mut stream = &datagram[..];
    while let Ok(Some((frame, used))) = packet::parse_stream(stream) {
        assert!(used >= 8 && used <= stream.len());
        if let Some(reply) = control::respond(&frame) {
            let parsed = packet::parse_datagram(&reply).expect("our control reply parses");
            assert_eq!(parsed.kind, TYPE_GETSET_RPY);
            assert!(parsed.tlvs().all(|t| t.is_ok()));
        }
        stream = &stream[used..];
    }
    let _ = FrameBuilder::new(0x4).tlv(0x3, rest).finish();
}

/// An SSDP datagram: never a panic; a search we answer gets replies that are whole HTTP
/// responses whose ST is exactly one of ours (nothing of the search's text leaks into them).
pub fn ssdp(data: &[u8]) {
    let Some(search) = ssdp::parse_search(data) else {
        return;
    };
    assert!(!search.st.is_empty());
    let delay = ssdp::reply_delay(search.mx, 0xffff_ffff);
    assert!(delay <= Duration::from_secs(1));
    let device = device();
    for reply in ssdp::search_replies(&device, &search.st) {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        let parsed = response.parse(reply.as_bytes());
        assert!(
            matches!(parsed, Ok(httparse::Status::Complete(n)) if n == reply.len()),
            "{reply:?}"
        );
        let st = response
            .headers
            .iter()
            .find(|h| h.name == "ST")
            .map(|h| h.value)
            .expect("an ST header");
        assert!(!st.is_empty() && st.len() <= 100, "{reply:?}");
        assert!(!st.contains(&b'\r') && !st.contains(&b'\n'));
    }
}
