//! SiliconDust UDP discovery (PROTOCOLS §2.2): which requests to answer, the reply, and the thin
//! responder loop that answers by unicast to the sender.
//!
//! Anything that is not a well-formed DISCOVER_REQ with a good CRC is ignored without a word, as a
//! real tuner does: a reply to garbage would only feed reflection attacks.

use std::time::Duration;

use tokio::sync::watch;
use tokio_uring::net::UdpSocket;

use super::device::Device;
use super::device_id::DeviceId;
use super::packet::{
    self, DEVICE_TYPE_TUNER, FrameBuilder, FrameError, MAX_PACKET, TAG_BASE_URL,
    TAG_DEVICE_AUTH_STR, TAG_DEVICE_ID, TAG_DEVICE_TYPE, TAG_LINEUP_URL, TAG_MULTI_TYPE,
    TAG_TUNER_COUNT, TYPE_DISCOVER_REQ, TYPE_DISCOVER_RPY, WILDCARD,
};
use super::sockets;

/// Old v2-API apps copy BASE_URL into a 29-byte buffer; libhdhomerun drops a longer one.
pub const MAX_BASE_URL: usize = 28;
/// libhdhomerun's buffers for LINEUP_URL and DEVICE_AUTH_STR hold one byte more (the NUL).
const MAX_LINEUP_URL: usize = 127;
const MAX_DEVICE_AUTH: usize = 24;

/// A parsed DISCOVER_REQ.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoverRequest {
    /// Every type asked for, from DEVICE_TYPE and MULTI_TYPE; empty when the request names none.
    pub device_types: Vec<u32>,
    pub device_id: Option<u32>,
}

/// Why a datagram gets no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    Frame(FrameError),
    /// A valid frame of another type (e.g. another tuner's reply).
    NotARequest(u16),
    /// A known tag with a value of the wrong size.
    BadTag(u8),
}

/// Parses a DISCOVER_REQ datagram; unknown tags are skipped.
pub fn parse_request(datagram: &[u8]) -> Result<DiscoverRequest, Ignored> {
    let frame = packet::parse_datagram(datagram).map_err(Ignored::Frame)?;
    if frame.kind != TYPE_DISCOVER_REQ {
        return Err(Ignored::NotARequest(frame.kind));
    }
    let mut request = DiscoverRequest::default();
    for tlv in frame.tlvs() {
        let (tag, value) = tlv.map_err(Ignored::Frame)?;
        match tag {
            TAG_DEVICE_TYPE => {
                let kind = packet::u32_value(value).ok_or(Ignored::BadTag(tag))?;
                request.device_types.push(kind);
            }
            TAG_DEVICE_ID => {
                request.device_id = Some(packet::u32_value(value).ok_or(Ignored::BadTag(tag))?);
            }
            TAG_MULTI_TYPE => {
                if value.len() % 4 != 0 {
                    return Err(Ignored::BadTag(tag));
                }
                request
                    .device_types
                    .extend(value.chunks_exact(4).filter_map(packet::u32_value));
            }
            _ => {}
        }
    }
    Ok(request)
}

impl DiscoverRequest {
    /// Whether a tuner with id `id` answers: a tuner (or any) type, and no id, the wildcard or `id`.
    /// A request that names no type at all is taken as asking for any.
    pub fn wants(&self, id: DeviceId) -> bool {
        let type_ok = self.device_types.is_empty()
            || self
                .device_types
                .iter()
                .any(|&t| t == WILDCARD || t == DEVICE_TYPE_TUNER);
        let id_ok = match self.device_id {
            None | Some(WILDCARD) => true,
            Some(asked) => asked == id.value(),
        };
        type_ok && id_ok
    }
}

/// The DISCOVER_RPY for `device`. A base URL longer than `MAX_BASE_URL` is left out rather than
/// cut (a cut URL would point nowhere): clients then fall back to `http://<sender ip>:80`, which
/// the appliance also serves, and LINEUP_URL still carries the full address. An over-long lineup
/// URL or auth string is left out likewise, as libhdhomerun would drop it.
pub fn build_reply(device: &Device) -> Vec<u8> {
    let mut frame = FrameBuilder::new(TYPE_DISCOVER_RPY)
        .tlv(TAG_DEVICE_TYPE, &DEVICE_TYPE_TUNER.to_be_bytes())
        .tlv(TAG_DEVICE_ID, &device.device_id.value().to_be_bytes())
        .tlv(
            TAG_TUNER_COUNT,
            &[u8::try_from(device.tuner_count).unwrap_or(u8::MAX)],
        );
    let base = device.base();
    if base.len() <= MAX_BASE_URL {
        frame = frame.tlv(TAG_BASE_URL, base.as_bytes());
    }
    let lineup = device.lineup_url();
    if lineup.len() <= MAX_LINEUP_URL {
        frame = frame.tlv(TAG_LINEUP_URL, lineup.as_bytes());
    }
    if device.device_auth.len() <= MAX_DEVICE_AUTH {
        frame = frame.tlv(TAG_DEVICE_AUTH_STR, device.device_auth.as_bytes());
    }
    // Every value above is capped, so the frame stays far below MAX_PACKET.
    frame.finish().unwrap_or_default()
}

/// The reply to `datagram`, if it is a discovery request this tuner should answer.
pub fn respond(datagram: &[u8], device: &Device) -> Option<Vec<u8>> {
    let request = parse_request(datagram).ok()?;
    let reply = build_reply(device);
    (request.wants(device.device_id) && !reply.is_empty()).then_some(reply)
}

/// Answers discovery requests on `socket` until `stop` turns true, then ends the pending receive.
/// That receive is kept across iterations, so no datagram is lost to a dropped operation.
pub(crate) async fn serve(
    socket: &UdpSocket,
    device: &watch::Receiver<Device>,
    stop: &mut watch::Receiver<bool>,
) {
    // One byte more than the largest frame, so an oversized datagram fails the length check.
    let mut receive = Box::pin(socket.recv_from(vec![0u8; MAX_PACKET + 1]));
    loop {
        tokio::select! {
            (result, buf) = &mut receive => {
                match result {
                    Ok((n, from)) => {
                        let reply = buf.get(..n).and_then(|d| respond(d, &device.borrow()));
                        if let Some(reply) = reply {
                            log::debug!("discovery: answering {from}");
                            // Best effort: a lost reply is retried by the client.
                            let _ = socket.send_to(reply, from).await;
                        }
                    }
                    // Receive errors are transient (e.g. memory pressure); don't spin on them.
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
                receive.set(socket.recv_from(buf));
            }
            _ = stop.wait_for(|&stopped| stopped) => break,
        }
    }
    sockets::end_receive(socket, receive).await;
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::{Index, select};

    use super::*;

    /// PROTOCOLS §2.2's example device.
    fn example_device() -> Device {
        let mut device = Device::new(
            "StreamForge",
            "10AB1237".parse().unwrap(),
            "http://192.168.1.50:5004",
            4,
        );
        device.device_auth = "emulated-device-auth-000".into();
        device
    }

    fn hex(text: &str) -> Vec<u8> {
        text.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    const JELLYFIN: &str = "00 02 00 0C 01 04 FF FF FF FF 02 04 FF FF FF FF 73 CC 7D 8F";
    const HOME_ASSISTANT: &str = "00 02 00 0C 01 04 00 00 00 01 02 04 FF FF FF FF 4E 50 7F 35";
    const HDHOMERUN_CONFIG: &str = "00 02 00 06 01 04 FF FF FF FF 4C 20 CB 4E";

    const EXAMPLE_REPLY: &str = "
        00 03 00 69 01 04 00 00 00 01 02 04 10 ab 12 37
        10 01 04 2a 18 68 74 74 70 3a 2f 2f 31 39 32 2e
        31 36 38 2e 31 2e 35 30 3a 35 30 30 34 27 24 68
        74 74 70 3a 2f 2f 31 39 32 2e 31 36 38 2e 31 2e
        35 30 3a 35 30 30 34 2f 6c 69 6e 65 75 70 2e 6a
        73 6f 6e 2b 18 65 6d 75 6c 61 74 65 64 2d 64 65
        76 69 63 65 2d 61 75 74 68 2d 30 30 30 40 9d 1c
        79";

    #[test]
    fn the_real_requests_parse() {
        assert_eq!(
            parse_request(&hex(JELLYFIN)),
            Ok(DiscoverRequest {
                device_types: vec![WILDCARD],
                device_id: Some(WILDCARD)
            })
        );
        assert_eq!(
            parse_request(&hex(HOME_ASSISTANT)),
            Ok(DiscoverRequest {
                device_types: vec![1],
                device_id: Some(WILDCARD)
            })
        );
        assert_eq!(
            parse_request(&hex(HDHOMERUN_CONFIG)),
            Ok(DiscoverRequest {
                device_types: vec![WILDCARD],
                device_id: None
            })
        );
    }

    #[test]
    fn the_real_requests_get_the_example_reply_byte_for_byte() {
        let expected = hex(EXAMPLE_REPLY);
        assert_eq!(build_reply(&example_device()), expected);
        for request in [JELLYFIN, HOME_ASSISTANT, HDHOMERUN_CONFIG] {
            assert_eq!(
                respond(&hex(request), &example_device()),
                Some(expected.clone()),
                "{request}"
            );
        }
    }

    fn request(tlvs: &[(u8, &[u8])]) -> Vec<u8> {
        let mut frame = FrameBuilder::new(TYPE_DISCOVER_REQ);
        for (tag, value) in tlvs {
            frame = frame.tlv(*tag, value);
        }
        frame.finish().unwrap()
    }

    #[test]
    fn type_and_id_filters() {
        let device = example_device();
        let ours = 0x10AB_1237u32.to_be_bytes();
        let other = 0x1251_129Fu32.to_be_bytes();
        let storage = 5u32.to_be_bytes();
        let tuner = 1u32.to_be_bytes();
        let answered = |tlvs: &[(u8, &[u8])]| respond(&request(tlvs), &device).is_some();
        assert!(answered(&[(TAG_DEVICE_ID, &ours)]));
        assert!(answered(&[
            (TAG_DEVICE_TYPE, &tuner),
            (TAG_DEVICE_ID, &ours)
        ]));
        assert!(answered(&[]), "no filter at all");
        assert!(!answered(&[(TAG_DEVICE_ID, &other)]));
        assert!(!answered(&[(TAG_DEVICE_TYPE, &storage)]));
        let multi: Vec<u8> = [5u32, 1].iter().flat_map(|t| t.to_be_bytes()).collect();
        assert!(answered(&[(TAG_MULTI_TYPE, &multi)]));
        assert!(!answered(&[(TAG_MULTI_TYPE, &storage)]));
        assert!(
            !answered(&[(TAG_MULTI_TYPE, &[0, 0, 1])]),
            "ragged MULTI_TYPE"
        );
        assert!(!answered(&[(TAG_DEVICE_ID, &[1, 2])]), "short id");
        // Unknown tags, even long ones, are skipped.
        assert!(answered(&[(0x77, &[9; 200]), (TAG_DEVICE_TYPE, &tuner)]));
    }

    #[test]
    fn bad_frames_are_ignored() {
        let device = example_device();
        let mut bad_crc = hex(JELLYFIN);
        bad_crc[19] ^= 0xFF;
        assert_eq!(
            parse_request(&bad_crc),
            Err(Ignored::Frame(FrameError::Crc))
        );
        assert_eq!(respond(&bad_crc, &device), None);
        let reply = hex(EXAMPLE_REPLY);
        assert_eq!(
            parse_request(&reply),
            Err(Ignored::NotARequest(TYPE_DISCOVER_RPY))
        );
        assert_eq!(
            respond(&reply, &device),
            None,
            "never answer another tuner's reply"
        );
        let short = hex(JELLYFIN);
        assert_eq!(respond(&short[..10], &device), None);
        assert_eq!(respond(&[], &device), None);
    }

    #[test]
    fn long_values_are_left_out_not_cut() {
        let mut device = example_device();
        device.base_url = "http://tuner.living-room.lan:5004".into();
        device.device_auth = "x".repeat(25);
        device.tuner_count = 1000;
        let reply = build_reply(&device);
        let frame = packet::parse_datagram(&reply).unwrap();
        let tags: Vec<(u8, Vec<u8>)> = frame
            .tlvs()
            .map(|t| t.map(|(k, v)| (k, v.to_vec())).unwrap())
            .collect();
        assert!(
            tags.iter()
                .all(|(tag, _)| *tag != TAG_BASE_URL && *tag != TAG_DEVICE_AUTH_STR)
        );
        assert!(tags.contains(&(
            TAG_LINEUP_URL,
            b"http://tuner.living-room.lan:5004/lineup.json".to_vec()
        )));
        assert!(
            tags.contains(&(TAG_TUNER_COUNT, vec![255])),
            "tuner count saturates"
        );
        // The longest IPv4 URL fits.
        device.base_url = "http://255.255.255.255:65535".into();
        let reply = build_reply(&device);
        assert!(
            packet::parse_datagram(&reply)
                .unwrap()
                .tlvs()
                .any(|t| t.unwrap().0 == TAG_BASE_URL)
        );
    }

    /// Random bytes, or a captured packet; then up to three bytes replaced.
    fn packets() -> impl Strategy<Value = Vec<u8>> {
        let captured = vec![
            hex(JELLYFIN),
            hex(HOME_ASSISTANT),
            hex(HDHOMERUN_CONFIG),
            hex(EXAMPLE_REPLY),
        ];
        let start = prop_oneof![vec(any::<u8>(), 0..64), select(captured)];
        (start, vec((any::<Index>(), any::<u8>()), 0..4)).prop_map(|(mut packet, edits)| {
            for (at, byte) in edits {
                if !packet.is_empty() {
                    let at = at.index(packet.len());
                    packet[at] = byte;
                }
            }
            packet
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn random_and_mutated_packets_never_panic(mut packet in packets(), reseal: bool) {
            // Half the time, re-seal with a valid CRC so the TLV parser is reached.
            if reseal && packet.len() >= 8 {
                let body = packet.len() - 4;
                let len = (body - 4) as u16;
                packet[2..4].copy_from_slice(&len.to_be_bytes());
                let crc = crc32fast::hash(&packet[..body]);
                packet[body..].copy_from_slice(&crc.to_le_bytes());
            }
            let _ = respond(&packet, &example_device());
        }
    }
}
