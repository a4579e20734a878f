//! One 188-byte MPEG-TS packet, read and written in place: the header, the adaptation field's
//! flags and clocks (PCR, OPCR), and a PES header's PTS and DTS. Every accessor takes a whole
//! packet (`len == 188`) and tolerates a malformed one: a field that does not fit is absent.
//!
//! Clocks are 33-bit counters of a 90 kHz clock (the PCR adds a 27 MHz extension, left alone
//! here); [`add33`] and [`ahead33`] do their arithmetic with the wrap.

pub const PACKET: usize = 188;
pub const NULL_PID: u16 = 0x1fff;
pub const PAT_PID: u16 = 0;

const WRAP: u64 = 1 << 33;
const WRAP_MASK: u64 = WRAP - 1;

pub fn pid(packet: &[u8]) -> u16 {
    (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2])
}

pub fn set_pid(packet: &mut [u8], pid: u16) {
    packet[1] = (packet[1] & 0xe0) | ((pid >> 8) as u8 & 0x1f);
    packet[2] = pid as u8;
}

/// The payload_unit_start_indicator: a PES packet or a PSI section starts here.
pub fn unit_start(packet: &[u8]) -> bool {
    packet[1] & 0x40 != 0
}

/// Whether the packet carries a payload, and so steps its PID's continuity counter.
pub fn has_payload(packet: &[u8]) -> bool {
    packet[3] & 0x10 != 0
}

pub fn continuity(packet: &[u8]) -> u8 {
    packet[3] & 0x0f
}

pub fn set_continuity(packet: &mut [u8], cc: u8) {
    packet[3] = (packet[3] & 0xf0) | (cc & 0x0f);
}

/// The adaptation field's flags byte and the offset just past the field, when it has flags.
fn adaptation(packet: &[u8]) -> Option<(u8, usize)> {
    if packet[3] & 0x20 == 0 || packet[4] == 0 {
        return None;
    }
    let end = 5 + usize::from(packet[4]);
    (end <= PACKET).then_some((packet[5], end))
}

/// The adaptation field's random_access_indicator.
pub fn random_access(packet: &[u8]) -> bool {
    adaptation(packet).is_some_and(|(flags, _)| flags & 0x40 != 0)
}

/// Sets the discontinuity_indicator; false when the packet has no adaptation field to carry it
/// (one cannot be added in place).
pub fn set_discontinuity(packet: &mut [u8]) -> bool {
    if adaptation(packet).is_none() {
        return false;
    }
    packet[5] |= 0x80;
    true
}

/// The payload: after the header and the adaptation field; empty when there is none.
pub fn payload(packet: &[u8]) -> &[u8] {
    if !has_payload(packet) {
        return &[];
    }
    let start = if packet[3] & 0x20 != 0 {
        5 + usize::from(packet[4])
    } else {
        4
    };
    packet.get(start..PACKET).unwrap_or_default()
}

/// Offsets of the 6-byte PCR and OPCR fields, when present.
pub fn clock_fields(packet: &[u8]) -> (Option<usize>, Option<usize>) {
    let Some((flags, end)) = adaptation(packet) else {
        return (None, None);
    };
    let mut at = 6;
    let pcr = (flags & 0x10 != 0 && at + 6 <= end).then_some(at);
    if pcr.is_some() {
        at += 6;
    }
    let opcr = (flags & 0x08 != 0 && at + 6 <= end).then_some(at);
    (pcr, opcr)
}

/// The 33-bit base of the PCR (or OPCR) at `at`.
pub fn read_clock_base(packet: &[u8], at: usize) -> u64 {
    let b = &packet[at..at + 5];
    (u64::from(b[0]) << 25)
        | (u64::from(b[1]) << 17)
        | (u64::from(b[2]) << 9)
        | (u64::from(b[3]) << 1)
        | u64::from(b[4] >> 7)
}

/// Writes the 33-bit base at `at`, keeping the reserved bits and the 27 MHz extension.
pub fn write_clock_base(packet: &mut [u8], at: usize, base: u64) {
    let b = &mut packet[at..at + 5];
    b[0] = (base >> 25) as u8;
    b[1] = (base >> 17) as u8;
    b[2] = (base >> 9) as u8;
    b[3] = (base >> 1) as u8;
    b[4] = (b[4] & 0x7f) | (((base & 1) as u8) << 7);
}

/// The PCR base of a packet, if it carries one.
pub fn pcr(packet: &[u8]) -> Option<u64> {
    clock_fields(packet).0.map(|at| read_clock_base(packet, at))
}

/// A PES header at the start of a packet's payload: where its PTS and DTS are (offsets in the
/// packet), its PES_packet_length (0: unbounded) and where the elementary stream data starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PesHeader {
    pub pts: Option<usize>,
    pub dts: Option<usize>,
    pub length: u16,
    pub data: usize,
}

/// Stream ids whose PES packets have no optional header (padding, private 2, ECM, EMM, ...).
fn has_optional_header(stream_id: u8) -> bool {
    !matches!(
        stream_id,
        0xbc | 0xbe | 0xbf | 0xf0 | 0xf1 | 0xf2 | 0xf8 | 0xff
    )
}

/// Reads the PES header a unit-start packet begins with.
pub fn pes_header(packet: &[u8]) -> Option<PesHeader> {
    let payload = payload(packet);
    let start = PACKET - payload.len();
    if payload.len() < 6 || payload[..3] != [0, 0, 1] {
        return None;
    }
    let length = u16::from_be_bytes([payload[4], payload[5]]);
    if !has_optional_header(payload[3]) {
        return Some(PesHeader {
            pts: None,
            dts: None,
            length,
            data: start + 6,
        });
    }
    if payload.len() < 9 {
        return None;
    }
    let data = start + 9 + usize::from(payload[8]);
    let flags = payload[7] >> 6;
    let fits = |at: usize| (at + 5 <= data && at + 5 <= PACKET).then_some(at);
    let pts = (flags & 0b10 != 0).then(|| fits(start + 9)).flatten();
    let dts = (flags == 0b11).then(|| fits(start + 14)).flatten();
    Some(PesHeader {
        pts,
        dts,
        length,
        data: data.min(PACKET),
    })
}

/// The 33-bit PTS or DTS at `at`.
pub fn read_timestamp(packet: &[u8], at: usize) -> u64 {
    let b = &packet[at..at + 5];
    (u64::from(b[0] >> 1 & 0x07) << 30)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] >> 1) << 15)
        | (u64::from(b[3]) << 7)
        | u64::from(b[4] >> 1)
}

/// Writes a PTS or DTS at `at`, keeping the 4-bit prefix and the marker bits.
pub fn write_timestamp(packet: &mut [u8], at: usize, ts: u64) {
    let b = &mut packet[at..at + 5];
    b[0] = (b[0] & 0xf1) | (((ts >> 30) as u8 & 0x07) << 1);
    b[1] = (ts >> 22) as u8;
    b[2] = (b[2] & 0x01) | (((ts >> 15) as u8) << 1);
    b[3] = (ts >> 7) as u8;
    b[4] = (b[4] & 0x01) | ((ts as u8) << 1);
}

/// `a + b` on the 33-bit clock.
pub fn add33(a: u64, b: u64) -> u64 {
    a.wrapping_add(b) & WRAP_MASK
}

/// How far `a` is ahead of `b` on the 33-bit clock, taking the shorter way round: negative when
/// `a` is behind.
pub fn ahead33(a: u64, b: u64) -> i64 {
    let d = a.wrapping_sub(b) & WRAP_MASK;
    if d >= WRAP / 2 {
        d as i64 - WRAP as i64
    } else {
        d as i64
    }
}

/// The offset that moves `from` onto `to` on the 33-bit clock.
pub fn offset33(from: u64, to: u64) -> u64 {
    to.wrapping_sub(from) & WRAP_MASK
}

/// Turns a packet into a null packet (PID 0x1fff), which every receiver discards.
pub fn make_null(packet: &mut [u8]) {
    set_pid(packet, NULL_PID);
    packet[1] &= !0x40;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A video-like packet: adaptation field with PCR, then a PES header with PTS and DTS.
    pub(crate) fn timed_packet(pcr_base: u64, pts: u64, dts: u64) -> [u8; PACKET] {
        let mut p = [0xffu8; PACKET];
        p[..4].copy_from_slice(&[0x47, 0x41, 0x00, 0x37]);
        p[4] = 7;
        p[5] = 0x50;
        p[6..12].copy_from_slice(&[0, 0, 0, 0, 0x7e, 0x2a]);
        write_clock_base(&mut p, 6, pcr_base);
        let pes = 12;
        p[pes..pes + 9].copy_from_slice(&[0, 0, 1, 0xe0, 0, 0, 0x80, 0xc0, 10]);
        p[pes + 9] = 0x31;
        p[pes + 13] = 0x01;
        p[pes + 11] = 0x01;
        p[pes + 14] = 0x11;
        p[pes + 16] = 0x01;
        p[pes + 18] = 0x01;
        write_timestamp(&mut p, pes + 9, pts);
        write_timestamp(&mut p, pes + 14, dts);
        p
    }

    #[test]
    fn header_fields_read_and_write() {
        let mut p = timed_packet(0, 0, 0);
        assert_eq!(
            (pid(&p), unit_start(&p), has_payload(&p)),
            (0x100, true, true)
        );
        assert_eq!(continuity(&p), 7);
        set_pid(&mut p, 0x1abc);
        set_continuity(&mut p, 0x1f);
        assert_eq!(
            (pid(&p), continuity(&p), unit_start(&p)),
            (0x1abc, 15, true)
        );
        assert!(random_access(&p));
        assert!(set_discontinuity(&mut p));
        assert_eq!(p[5] & 0x80, 0x80);
        make_null(&mut p);
        assert_eq!((pid(&p), unit_start(&p)), (NULL_PID, false));
    }

    #[test]
    fn a_packet_without_adaptation_field_takes_no_discontinuity() {
        let mut p = [0u8; PACKET];
        p[..4].copy_from_slice(&[0x47, 0x01, 0x01, 0x10]);
        assert!(!set_discontinuity(&mut p));
        assert_eq!(payload(&p).len(), 184);
        assert_eq!(clock_fields(&p), (None, None));
    }

    #[test]
    fn pcr_pts_and_dts_round_trip_and_keep_their_neighbours() {
        let top = (1 << 33) - 1;
        let p = timed_packet(top, 0x1_2345_6789, 12345);
        assert_eq!(pcr(&p), Some(top));
        assert_eq!(p[11], 0x2a, "the 27 MHz extension is kept");
        let header = pes_header(&p).expect("a PES header");
        assert_eq!(read_timestamp(&p, header.pts.unwrap()), 0x1_2345_6789);
        assert_eq!(read_timestamp(&p, header.dts.unwrap()), 12345);
        assert_eq!(p[header.pts.unwrap()] >> 4, 0x3, "the PTS prefix is kept");
        assert_eq!(p[header.pts.unwrap() + 4] & 1, 1, "marker bits are kept");
        assert_eq!(header.data, 12 + 19);
    }

    #[test]
    fn a_truncated_pes_header_has_no_timestamps() {
        let mut p = timed_packet(0, 1, 1);
        p[12 + 8] = 200;
        let header = pes_header(&p).expect("a PES start");
        assert_eq!((header.pts.is_some(), header.data), (true, PACKET));
        p[12] = 9;
        assert_eq!(pes_header(&p), None);
    }

    #[test]
    fn clock_arithmetic_wraps_at_33_bits() {
        let top = (1u64 << 33) - 1;
        assert_eq!(add33(top, 1), 0);
        assert_eq!(add33(5, offset33(10, 3)), top - 1);
        assert_eq!(ahead33(1, top), 2);
        assert_eq!(ahead33(top, 1), -2);
        assert_eq!(offset33(top, 4), 5);
    }
}
