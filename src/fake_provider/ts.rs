//! Just enough MPEG-TS and PES parsing for the fake provider to run its clip as a live channel:
//! continuity counters, the adaptation field's PCR and OPCR, and a PES header's PTS and DTS, read
//! and written in place, plus the length of a run of AAC ADTS frames. Written here, not shared with `relay`, so that the test support stays
//! independent of the code it tests.

pub(super) const PACKET: usize = 188;
pub(super) const SYNC: u8 = 0x47;
pub(super) const NULL_PID: u16 = 0x1fff;
/// PTS, DTS and the PCR base are 33-bit counters of a 90 kHz clock.
pub(super) const WRAP_MASK: u64 = (1 << 33) - 1;

pub(super) fn pid(packet: &[u8]) -> u16 {
    (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2])
}

fn payload_unit_start(packet: &[u8]) -> bool {
    packet[1] & 0x40 != 0
}

fn has_adaptation(packet: &[u8]) -> bool {
    packet[3] & 0x20 != 0
}

/// Whether the packet carries a payload, and so counts for the continuity counter.
pub(super) fn has_payload(packet: &[u8]) -> bool {
    packet[3] & 0x10 != 0
}

pub(super) fn continuity(packet: &[u8]) -> u8 {
    packet[3] & 0x0f
}

pub(super) fn set_continuity(packet: &mut [u8], cc: u8) {
    packet[3] = (packet[3] & 0xf0) | (cc & 0x0f);
}

/// `a + b` on a 33-bit clock.
pub(super) fn add_wrapping(a: u64, b: u64) -> u64 {
    a.wrapping_add(b) & WRAP_MASK
}

/// The adaptation field's flags byte and its end, if it has one with flags.
fn adaptation(packet: &[u8]) -> Option<(u8, usize)> {
    if !has_adaptation(packet) || packet[4] == 0 {
        return None;
    }
    let end = (5 + usize::from(packet[4])).min(PACKET);
    Some((packet[5], end))
}

/// Where the 6-byte PCR and OPCR fields are, when present.
pub(super) fn clock_fields(packet: &[u8]) -> (Option<usize>, Option<usize>) {
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

/// The 33-bit base of the PCR (or OPCR) at `at`; the 27 MHz extension is left alone.
pub(super) fn read_clock_base(packet: &[u8], at: usize) -> u64 {
    let b = &packet[at..at + 5];
    (u64::from(b[0]) << 25)
        | (u64::from(b[1]) << 17)
        | (u64::from(b[2]) << 9)
        | (u64::from(b[3]) << 1)
        | u64::from(b[4] >> 7)
}

pub(super) fn write_clock_base(packet: &mut [u8], at: usize, base: u64) {
    let b = &mut packet[at..at + 5];
    b[0] = (base >> 25) as u8;
    b[1] = (base >> 17) as u8;
    b[2] = (base >> 9) as u8;
    b[3] = (base >> 1) as u8;
    b[4] = (b[4] & 0x7f) | (((base & 1) as u8) << 7);
}

/// The packet's payload (empty if it has none).
pub(super) fn payload(packet: &[u8]) -> &[u8] {
    if !has_payload(packet) {
        return &[];
    }
    let start = match has_adaptation(packet) {
        true => 5 + usize::from(packet[4]),
        false => 4,
    };
    packet.get(start..).unwrap_or(&[])
}

/// A PES packet's elementary stream bytes (after its header), given its start.
pub(super) fn pes_data(pes: &[u8]) -> &[u8] {
    match pes.get(8) {
        Some(&len) if pes.starts_with(&[0, 0, 1]) => pes.get(9 + usize::from(len)..).unwrap_or(&[]),
        _ => &[],
    }
}

/// How long `es` plays in 90 kHz ticks if it is whole AAC ADTS frames, one or more.
pub(super) fn adts_ticks(mut es: &[u8]) -> Option<u64> {
    const RATES: [u64; 13] = [
        96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025,
        8_000, 7_350,
    ];
    let mut samples_at_rate = 0u64;
    while !es.is_empty() {
        if es.len() < 7 || es[0] != 0xff || es[1] & 0xf0 != 0xf0 {
            return None;
        }
        let rate = *RATES.get(usize::from((es[2] >> 2) & 0x0f))?;
        let len =
            (usize::from(es[3] & 0x03) << 11) | (usize::from(es[4]) << 3) | usize::from(es[5] >> 5);
        let blocks = u64::from(es[6] & 0x03) + 1;
        if len < 7 || len > es.len() {
            return None;
        }
        samples_at_rate += blocks * 1024 * 90_000 / rate;
        es = &es[len..];
    }
    (samples_at_rate > 0).then_some(samples_at_rate)
}

/// Where the 5-byte PTS and DTS fields are in a packet that starts a PES packet with them.
pub(super) fn pes_timestamps(packet: &[u8]) -> (Option<usize>, Option<usize>) {
    if !payload_unit_start(packet) || !has_payload(packet) {
        return (None, None);
    }
    let pes = payload(packet);
    if pes.len() < 9 {
        return (None, None);
    }
    let start = PACKET - pes.len();
    // Stream ids without the optional PES header: program stream map, padding, private 2, ECM,
    // EMM, directory, DSM-CC, H.222.1 type E.
    if pes[..3] != [0, 0, 1]
        || matches!(
            pes[3],
            0xbc | 0xbe | 0xbf | 0xf0 | 0xf1 | 0xf2 | 0xf8 | 0xff
        )
    {
        return (None, None);
    }
    let header_end = 9 + usize::from(pes[8]);
    let fits = |len: usize| len <= header_end && len <= pes.len();
    match pes[7] >> 6 {
        2 if fits(14) => (Some(start + 9), None),
        3 if fits(19) => (Some(start + 9), Some(start + 14)),
        _ => (None, None),
    }
}

/// The 33-bit PTS or DTS at `at`.
pub(super) fn read_timestamp(packet: &[u8], at: usize) -> u64 {
    let b = &packet[at..at + 5];
    (u64::from((b[0] >> 1) & 0x07) << 30)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] >> 1) << 15)
        | (u64::from(b[3]) << 7)
        | u64::from(b[4] >> 1)
}

/// Writes a PTS or DTS, keeping the field's 4-bit prefix and setting its marker bits.
pub(super) fn write_timestamp(packet: &mut [u8], at: usize, ts: u64) {
    let b = &mut packet[at..at + 5];
    b[0] = (b[0] & 0xf0) | ((ts >> 29) as u8 & 0x0e) | 1;
    b[1] = (ts >> 22) as u8;
    b[2] = ((ts >> 14) as u8 & 0xfe) | 1;
    b[3] = (ts >> 7) as u8;
    b[4] = ((ts << 1) as u8 & 0xfe) | 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet on PID 0x100 starting a video PES with PTS and DTS, and a PCR in its adaptation field.
    fn video_packet(pcr_base: u64, pts: u64, dts: u64) -> [u8; PACKET] {
        let mut p = [0xffu8; PACKET];
        p[..4].copy_from_slice(&[SYNC, 0x41, 0x00, 0x37]);
        p[4] = 7;
        p[5] = 0x10;
        p[6..12].copy_from_slice(&[0, 0, 0, 0, 0x7e, 0x2a]);
        write_clock_base(&mut p, 6, pcr_base);
        p[12..21].copy_from_slice(&[0, 0, 1, 0xe0, 0, 0, 0x80, 0xc0, 10]);
        p[21] = 0x31;
        p[26] = 0x11;
        write_timestamp(&mut p, 21, pts);
        write_timestamp(&mut p, 26, dts);
        p
    }

    #[test]
    fn header_fields() {
        let p = video_packet(1, 2, 3);
        assert_eq!(pid(&p), 0x100);
        assert!(has_payload(&p));
        assert_eq!(continuity(&p), 7);
        let mut q = p;
        set_continuity(&mut q, 0x1a);
        assert_eq!(continuity(&q), 0x0a);
        assert_eq!(q[3] & 0xf0, 0x30, "adaptation field control kept");
        q[3] = 0x20;
        assert!(!has_payload(&q));
        assert_eq!(pes_timestamps(&q), (None, None), "no payload, no PES");
    }

    #[test]
    fn pcr_round_trips_and_keeps_its_extension() {
        for base in [0, 1, 0x1_0000_0001, WRAP_MASK, 8_589_934_000] {
            let mut p = video_packet(base, 0, 0);
            assert_eq!(clock_fields(&p), (Some(6), None));
            assert_eq!(read_clock_base(&p, 6), base);
            write_clock_base(&mut p, 6, add_wrapping(base, 900_000));
            assert_eq!(read_clock_base(&p, 6), add_wrapping(base, 900_000));
            assert_eq!(p[10] & 0x7f, 0x7e, "reserved bits and extension's top bit");
            assert_eq!(p[11], 0x2a, "extension");
        }
    }

    #[test]
    fn opcr_follows_the_pcr() {
        let mut p = video_packet(5, 0, 0);
        p[4] = 13;
        p[5] = 0x18;
        assert_eq!(clock_fields(&p), (Some(6), Some(12)));
        p[5] = 0x08;
        assert_eq!(clock_fields(&p), (None, Some(6)));
        p[4] = 3;
        assert_eq!(
            clock_fields(&p),
            (None, None),
            "a field cut short is not read"
        );
    }

    #[test]
    fn pts_and_dts_round_trip_with_markers() {
        let p = video_packet(0, 0x1_2345_6789, 0x0_8765_4321);
        assert_eq!(pes_timestamps(&p), (Some(21), Some(26)));
        assert_eq!(read_timestamp(&p, 21), 0x1_2345_6789);
        assert_eq!(read_timestamp(&p, 26), 0x0_8765_4321);
        assert_eq!(p[21] >> 4, 0x3, "PTS prefix kept");
        assert_eq!(p[26] >> 4, 0x1, "DTS prefix kept");
        for at in [21, 26] {
            assert_eq!(p[at] & 1, 1);
            assert_eq!(p[at + 2] & 1, 1);
            assert_eq!(p[at + 4] & 1, 1);
        }
    }

    #[test]
    fn timestamps_wrap_at_33_bits() {
        assert_eq!(add_wrapping(WRAP_MASK, 1), 0);
        assert_eq!(add_wrapping(WRAP_MASK - 99, 900_000), 900_000 - 100);
        let mut p = video_packet(WRAP_MASK, WRAP_MASK, WRAP_MASK - 3600);
        write_timestamp(&mut p, 21, add_wrapping(WRAP_MASK, 3600));
        write_clock_base(&mut p, 6, add_wrapping(WRAP_MASK, 3600));
        assert_eq!(read_timestamp(&p, 21), 3599);
        assert_eq!(read_clock_base(&p, 6), 3599);
    }

    /// An ADTS frame header: 48 kHz, `len` bytes in all.
    fn adts(len: usize) -> Vec<u8> {
        let mut f = vec![0xff, 0xf1, 0x4c, 0x80, 0, 0, 0xfc];
        f[3] |= (len >> 11) as u8;
        f[4] = (len >> 3) as u8;
        f[5] = ((len & 7) << 5) as u8 | 0x1f;
        f.resize(len, 0);
        f
    }

    #[test]
    fn adts_frames_are_timed() {
        let two = [adts(100), adts(7)].concat();
        assert_eq!(adts_ticks(&two), Some(2 * 1920));
        assert_eq!(adts_ticks(&two[..106]), None, "a frame cut short");
        assert_eq!(adts_ticks(&[0u8; 20]), None);
        assert_eq!(adts_ticks(&[]), None);
        let pes = [
            &[0, 0, 1, 0xc0, 0, 0, 0x80, 0x80, 5, 1, 2, 3, 4, 5][..],
            &two,
        ]
        .concat();
        assert_eq!(pes_data(&pes), &two[..]);
    }

    #[test]
    fn pes_without_timestamps_or_header() {
        let mut p = video_packet(0, 1, 1);
        p[19] = 0x80;
        assert_eq!(pes_timestamps(&p), (Some(21), None), "PTS only");
        p[19] = 0;
        assert_eq!(pes_timestamps(&p), (None, None));
        let mut padding = video_packet(0, 1, 1);
        padding[15] = 0xbe;
        assert_eq!(pes_timestamps(&padding), (None, None));
        let mut continuation = video_packet(0, 1, 1);
        continuation[1] = 0x01;
        assert_eq!(pes_timestamps(&continuation), (None, None));
    }
}
