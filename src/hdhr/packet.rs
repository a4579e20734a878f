//! SiliconDust packet framing, shared by UDP discovery and TCP control (PROTOCOLS §2.1):
//! `u16 type BE | u16 payload length BE | TLVs | CRC-32 LE` over everything before the CRC.
//!
//! Parsing borrows from the input and reports every defect as an error value; nothing here
//! allocates on the read side or panics on any input.

/// Largest frame either side sends or accepts (libhdhomerun's limit).
pub const MAX_PACKET: usize = 1460;
const HEADER: usize = 4;
const CRC: usize = 4;

pub const TYPE_DISCOVER_REQ: u16 = 0x0002;
pub const TYPE_DISCOVER_RPY: u16 = 0x0003;
pub const TYPE_GETSET_REQ: u16 = 0x0004;
pub const TYPE_GETSET_RPY: u16 = 0x0005;

pub const TAG_DEVICE_TYPE: u8 = 0x01;
pub const TAG_DEVICE_ID: u8 = 0x02;
pub const TAG_GETSET_NAME: u8 = 0x03;
pub const TAG_GETSET_VALUE: u8 = 0x04;
pub const TAG_ERROR_MESSAGE: u8 = 0x05;
pub const TAG_TUNER_COUNT: u8 = 0x10;
pub const TAG_LINEUP_URL: u8 = 0x27;
pub const TAG_BASE_URL: u8 = 0x2A;
pub const TAG_DEVICE_AUTH_STR: u8 = 0x2B;
pub const TAG_MULTI_TYPE: u8 = 0x2D;

pub const DEVICE_TYPE_TUNER: u32 = 1;
/// Wildcard device type and device id.
pub const WILDCARD: u32 = 0xFFFF_FFFF;

/// What is wrong with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes than the header and CRC need, or than the header announces.
    Short,
    /// A datagram longer than its header announces.
    TrailingBytes,
    /// Longer than `MAX_PACKET`.
    TooLong,
    /// The CRC does not match.
    Crc,
    /// A TLV runs past the end of the payload.
    Tlv,
}

/// One frame, borrowed from the bytes it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub kind: u16,
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// The payload's TLVs in order.
    pub fn tlvs(&self) -> Tlvs<'a> {
        Tlvs { rest: self.payload }
    }
}

fn header(bytes: &[u8]) -> Option<(u16, usize)> {
    let kind = u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]);
    let len = u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?]);
    Some((kind, usize::from(len)))
}

/// Checks length and CRC of the frame that fills `bytes` exactly.
fn check(bytes: &[u8], payload_len: usize) -> Result<Frame<'_>, FrameError> {
    let (body, crc) = bytes.split_at(HEADER + payload_len);
    let crc = u32::from_le_bytes(crc.try_into().map_err(|_| FrameError::Short)?);
    if crc32fast::hash(body) != crc {
        return Err(FrameError::Crc);
    }
    Ok(Frame {
        kind: u16::from_be_bytes([body[0], body[1]]),
        payload: &body[HEADER..],
    })
}

/// Parses a datagram that must hold exactly one frame.
pub fn parse_datagram(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    if bytes.len() > MAX_PACKET {
        return Err(FrameError::TooLong);
    }
    let (_, len) = header(bytes).ok_or(FrameError::Short)?;
    let total = HEADER + len + CRC;
    if bytes.len() < total {
        return Err(FrameError::Short);
    }
    if bytes.len() > total {
        return Err(FrameError::TrailingBytes);
    }
    check(bytes, len)
}

/// Parses the frame at the start of a stream buffer: `Ok(None)` while it is incomplete, else the
/// frame and how many bytes it used. An error means the stream cannot be resynchronised.
pub fn parse_stream(bytes: &[u8]) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let Some((_, len)) = header(bytes) else {
        return Ok(None);
    };
    let total = HEADER + len + CRC;
    if total > MAX_PACKET {
        return Err(FrameError::TooLong);
    }
    if bytes.len() < total {
        return Ok(None);
    }
    check(&bytes[..total], len).map(|frame| Some((frame, total)))
}

/// Iterator over `(tag, value)`; yields one `Err(FrameError::Tlv)` and stops on a truncated TLV.
pub struct Tlvs<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Tlvs<'a> {
    type Item = Result<(u8, &'a [u8]), FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&tag, after_tag) = self.rest.split_first()?;
        let parsed = (|| {
            let (&first, after_len) = after_tag.split_first()?;
            let (len, after_len) = if first & 0x80 == 0 {
                (usize::from(first), after_len)
            } else {
                let (&second, after) = after_len.split_first()?;
                (usize::from(first & 0x7F) | usize::from(second) << 7, after)
            };
            (after_len.len() >= len).then(|| after_len.split_at(len))
        })();
        match parsed {
            Some((value, rest)) => {
                self.rest = rest;
                Some(Ok((tag, value)))
            }
            None => {
                self.rest = &[];
                Some(Err(FrameError::Tlv))
            }
        }
    }
}

/// A big-endian u32 value, or `None` when the value is not 4 bytes.
pub fn u32_value(value: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(value.try_into().ok()?))
}

/// Builds a frame TLV by TLV; `finish` seals it with the length and CRC.
pub struct FrameBuilder {
    bytes: Vec<u8>,
}

impl FrameBuilder {
    pub fn new(kind: u16) -> FrameBuilder {
        let mut bytes = Vec::with_capacity(128);
        bytes.extend_from_slice(&kind.to_be_bytes());
        bytes.extend_from_slice(&[0, 0]);
        FrameBuilder { bytes }
    }

    /// Appends a TLV. Values past `MAX_PACKET` make `finish` fail rather than wrap the length.
    pub fn tlv(mut self, tag: u8, value: &[u8]) -> FrameBuilder {
        let len = value.len().min(MAX_PACKET + 1);
        self.bytes.push(tag);
        if len <= 0x7F {
            self.bytes.push(len as u8);
        } else {
            self.bytes.push((len & 0x7F) as u8 | 0x80);
            self.bytes.push((len >> 7) as u8);
        }
        self.bytes.extend_from_slice(value);
        self
    }

    /// A TLV holding `text` and a terminating NUL, as the control protocol's strings are.
    pub fn string_nul(self, tag: u8, text: &[u8]) -> FrameBuilder {
        let mut value = Vec::with_capacity(text.len() + 1);
        value.extend_from_slice(text);
        value.push(0);
        self.tlv(tag, &value)
    }

    /// The sealed frame, or `TooLong` past `MAX_PACKET`.
    pub fn finish(mut self) -> Result<Vec<u8>, FrameError> {
        if self.bytes.len() + CRC > MAX_PACKET {
            return Err(FrameError::TooLong);
        }
        let payload_len = (self.bytes.len() - HEADER) as u16;
        self.bytes[2..4].copy_from_slice(&payload_len.to_be_bytes());
        let crc = crc32fast::hash(&self.bytes);
        self.bytes.extend_from_slice(&crc.to_le_bytes());
        Ok(self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_one_and_two_byte_lengths() {
        let long = vec![b'x'; 300];
        let frame = FrameBuilder::new(TYPE_GETSET_RPY)
            .tlv(TAG_DEVICE_ID, &0x10AB_1237u32.to_be_bytes())
            .tlv(TAG_GETSET_VALUE, &long)
            .tlv(0x7E, &[])
            .finish()
            .unwrap();
        // 300 = 0x12C: low seven bits 0x2C | 0x80, then 300 >> 7 = 2.
        assert_eq!(&frame[10..13], &[TAG_GETSET_VALUE, 0xAC, 0x02]);
        let parsed = parse_datagram(&frame).unwrap();
        assert_eq!(parsed.kind, TYPE_GETSET_RPY);
        let tlvs: Vec<_> = parsed.tlvs().collect::<Result<_, _>>().unwrap();
        assert_eq!(tlvs.len(), 3);
        assert_eq!(u32_value(tlvs[0].1), Some(0x10AB_1237));
        assert_eq!(tlvs[1], (TAG_GETSET_VALUE, &long[..]));
        assert_eq!(tlvs[2], (0x7E, &[][..]));
    }

    #[test]
    fn defects_are_reported() {
        let good = FrameBuilder::new(TYPE_DISCOVER_REQ)
            .tlv(TAG_DEVICE_TYPE, &[0xFF; 4])
            .finish()
            .unwrap();
        assert_eq!(
            parse_datagram(&good[..good.len() - 1]),
            Err(FrameError::Short)
        );
        assert_eq!(parse_datagram(&good[..3]), Err(FrameError::Short));
        assert_eq!(parse_datagram(&[]), Err(FrameError::Short));
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(parse_datagram(&trailing), Err(FrameError::TrailingBytes));
        let mut bad_crc = good.clone();
        *bad_crc.last_mut().unwrap() ^= 1;
        assert_eq!(parse_datagram(&bad_crc), Err(FrameError::Crc));
        let mut flipped = good.clone();
        flipped[5] ^= 0x40;
        assert_eq!(parse_datagram(&flipped), Err(FrameError::Crc));
        assert_eq!(
            parse_datagram(&vec![0; MAX_PACKET + 1]),
            Err(FrameError::TooLong)
        );
        assert_eq!(
            FrameBuilder::new(1).tlv(1, &vec![0; MAX_PACKET]).finish(),
            Err(FrameError::TooLong)
        );
    }

    #[test]
    fn truncated_tlvs_stop_the_iteration() {
        for payload in [
            &[0x01][..],
            &[0x01, 0x04, 0, 0],
            &[0x01, 0x80],
            &[0x01, 0x81, 0x01, 0],
        ] {
            let frame = Frame { kind: 2, payload };
            let items: Vec<_> = frame.tlvs().collect();
            assert_eq!(items, vec![Err(FrameError::Tlv)], "{payload:?}");
        }
    }

    #[test]
    fn stream_parsing_waits_for_a_whole_frame() {
        let a = FrameBuilder::new(TYPE_GETSET_REQ)
            .string_nul(TAG_GETSET_NAME, b"/sys/model")
            .finish()
            .unwrap();
        let mut two = a.clone();
        two.extend_from_slice(&a);
        for cut in 0..a.len() {
            assert_eq!(parse_stream(&two[..cut]), Ok(None), "cut at {cut}");
        }
        let (frame, used) = parse_stream(&two).unwrap().unwrap();
        assert_eq!((frame.kind, used), (TYPE_GETSET_REQ, a.len()));
        assert!(parse_stream(&two[used..]).unwrap().is_some());
        assert_eq!(parse_stream(&[0, 4, 0x10, 0]), Err(FrameError::TooLong));
    }
}
