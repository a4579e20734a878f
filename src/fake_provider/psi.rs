//! PAT and PMT, read and rewritten for the fake provider's stream variants (other PMT and
//! elementary PIDs, an audio language), with the MPEG-2 CRC-32 their sections end in. Only
//! sections that fit in one packet are handled: the shipped clip's do.

use super::ts::{self, PACKET};

/// The MPEG-2 CRC-32 (polynomial 0x04C11DB7, initial value all ones, not reflected, no final
/// XOR): not the zlib CRC-32 that `crc32fast` computes.
pub(super) fn crc32_mpeg2(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut crc = (i as u32) << 24;
            let mut bit = 0;
            while bit < 8 {
                crc = match crc & 0x8000_0000 {
                    0 => crc << 1,
                    _ => (crc << 1) ^ 0x04c1_1db7,
                };
                bit += 1;
            }
            table[i] = crc;
            i += 1;
        }
        table
    };
    data.iter().fold(0xffff_ffff, |crc, &b| {
        (crc << 8) ^ TABLE[usize::from((crc >> 24) as u8 ^ b)]
    })
}

/// Where a one-packet section is in `packet`: its start (after the pointer field) and length
/// (CRC included), if the packet starts one that ends in it with a good CRC.
pub(super) fn section(packet: &[u8]) -> Option<(usize, usize)> {
    if packet[1] & 0x40 == 0 {
        return None;
    }
    let payload = ts::payload(packet);
    let start = PACKET - payload.len() + 1 + usize::from(*payload.first()?);
    let header = packet.get(start..start + 3)?;
    let len = 3 + (usize::from(header[1] & 0x0f) << 8 | usize::from(header[2]));
    let body = packet.get(start..start + len).filter(|_| len >= 12)?;
    (crc32_mpeg2(body) == 0).then_some((start, len))
}

/// The PMT PIDs a PAT section lists, by program.
pub(super) fn pat_programs(section: &[u8]) -> Vec<(u16, u16)> {
    section[8..section.len() - 4]
        .chunks_exact(4)
        .map(|e| {
            let program = u16::from_be_bytes([e[0], e[1]]);
            (program, u16::from_be_bytes([e[2] & 0x1f, e[3]]))
        })
        .collect()
}

/// One elementary stream of a PMT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EsInfo {
    pub stream_type: u8,
    pub pid: u16,
    pub descriptors: Vec<u8>,
}

/// A PMT section, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pmt {
    /// Bytes 3..8 of the section: program number, version, section numbers.
    pub header: [u8; 5],
    pub pcr_pid: u16,
    pub program_info: Vec<u8>,
    pub streams: Vec<EsInfo>,
}

/// Parses a PMT section (CRC already checked by [`section`]).
pub(super) fn parse_pmt(section: &[u8]) -> Option<Pmt> {
    if section.first() != Some(&0x02) || section.len() < 16 {
        return None;
    }
    let end = section.len() - 4;
    let pcr_pid = u16::from_be_bytes([section[8] & 0x1f, section[9]]);
    let info_len = usize::from(section[10] & 0x0f) << 8 | usize::from(section[11]);
    let program_info = section.get(12..12 + info_len)?.to_vec();
    let mut at = 12 + info_len;
    let mut streams = Vec::new();
    while at + 5 <= end {
        let e = &section[at..];
        let len = usize::from(e[3] & 0x0f) << 8 | usize::from(e[4]);
        streams.push(EsInfo {
            stream_type: e[0],
            pid: u16::from_be_bytes([e[1] & 0x1f, e[2]]),
            descriptors: section.get(at + 5..at + 5 + len)?.to_vec(),
        });
        at += 5 + len;
    }
    Some(Pmt {
        header: section[3..8].try_into().ok()?,
        pcr_pid,
        program_info,
        streams,
    })
}

/// Whether a stream type is audio (MPEG-1/2 audio, AAC ADTS and LATM, AC-3, E-AC-3).
pub(super) fn is_audio(stream_type: u8) -> bool {
    matches!(stream_type, 0x03 | 0x04 | 0x0f | 0x11 | 0x81 | 0x87)
}

/// The descriptors with the ISO 639 language descriptor set to `language` (added or replaced).
pub(super) fn with_language(descriptors: &[u8], language: [u8; 3]) -> Vec<u8> {
    let mut out = vec![0x0a, 4, language[0], language[1], language[2], 0];
    let mut at = 0;
    while at + 2 <= descriptors.len() {
        let end = (at + 2 + usize::from(descriptors[at + 1])).min(descriptors.len());
        if descriptors[at] != 0x0a {
            out.extend_from_slice(&descriptors[at..end]);
        }
        at = end;
    }
    out
}

/// The section bytes of `pmt`, CRC included.
pub(super) fn write_pmt(pmt: &Pmt) -> Vec<u8> {
    let mut s = vec![0x02, 0, 0];
    s.extend_from_slice(&pmt.header);
    s.extend_from_slice(&(0xe000 | pmt.pcr_pid).to_be_bytes());
    s.extend_from_slice(&(0xf000 | pmt.program_info.len() as u16).to_be_bytes());
    s.extend_from_slice(&pmt.program_info);
    for es in &pmt.streams {
        s.push(es.stream_type);
        s.extend_from_slice(&(0xe000 | es.pid).to_be_bytes());
        s.extend_from_slice(&(0xf000 | es.descriptors.len() as u16).to_be_bytes());
        s.extend_from_slice(&es.descriptors);
    }
    finish_section(s)
}

/// A PAT section like `section` with every program's PMT PID replaced through `map`.
pub(super) fn rewrite_pat(section: &[u8], map: impl Fn(u16) -> u16) -> Vec<u8> {
    let mut s = section[..section.len() - 4].to_vec();
    for e in s[8..].chunks_exact_mut(4) {
        let pid = map(u16::from_be_bytes([e[2] & 0x1f, e[3]]));
        e[2] = (e[2] & 0xe0) | (pid >> 8) as u8;
        e[3] = pid as u8;
    }
    finish_section(s)
}

/// Sets the section length (syntax indicator and reserved bits set) and appends the CRC.
fn finish_section(mut s: Vec<u8>) -> Vec<u8> {
    let len = (s.len() + 4 - 3) as u16;
    s[1] = 0xb0 | (len >> 8) as u8;
    s[2] = len as u8;
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

/// Puts `section` into the packet in place of the one at `start` (pointer field before it),
/// stuffing the rest with 0xFF; `false` if it does not fit.
pub(super) fn replace_section(packet: &mut [u8], start: usize, section: &[u8]) -> bool {
    let Some(end) = start.checked_add(section.len()).filter(|&e| e <= PACKET) else {
        return false;
    };
    packet[start..end].copy_from_slice(section);
    packet[end..].fill(0xff);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_provider::live::CLIP;

    fn first_packet_of(pid: u16) -> [u8; PACKET] {
        CLIP.chunks(PACKET)
            .find(|p| ts::pid(p) == pid)
            .unwrap()
            .try_into()
            .unwrap()
    }

    #[test]
    fn mpeg2_crc_matches_known_values() {
        // The check value of CRC-32/MPEG-2.
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_e6e7);
        assert_eq!(crc32_mpeg2(&[]), 0xffff_ffff);
        assert_ne!(crc32_mpeg2(b"123456789"), 0xcbf4_3926, "not the zlib CRC");
    }

    #[test]
    fn the_clip_s_pat_and_pmt_parse() {
        let pat = first_packet_of(0);
        let (start, len) = section(&pat).expect("a PAT with a good CRC");
        assert_eq!(pat_programs(&pat[start..start + len]), vec![(1, 0x1000)]);
        let pmt = first_packet_of(0x1000);
        let (start, len) = section(&pmt).unwrap();
        let parsed = parse_pmt(&pmt[start..start + len]).unwrap();
        assert_eq!(parsed.pcr_pid, 0x100);
        let streams: Vec<(u8, u16)> = parsed
            .streams
            .iter()
            .map(|e| (e.stream_type, e.pid))
            .collect();
        assert_eq!(streams, vec![(0x1b, 0x100), (0x0f, 0x101)]);
        assert_eq!(
            write_pmt(&parsed),
            &pmt[start..start + len],
            "written back unchanged"
        );
        let mut bad = pmt;
        bad[start + 10] ^= 1;
        assert_eq!(section(&bad), None, "a bad CRC");
    }

    #[test]
    fn a_rewritten_pat_and_pmt_check_out() {
        let mut pat = first_packet_of(0);
        let (start, len) = section(&pat).unwrap();
        let new = rewrite_pat(&pat[start..start + len], |_| 0x1234);
        assert!(replace_section(&mut pat, start, &new));
        let (start, len) = section(&pat).expect("a good CRC");
        assert_eq!(pat_programs(&pat[start..start + len]), vec![(1, 0x1234)]);

        let mut pmt = first_packet_of(0x1000);
        let (start, len) = section(&pmt).unwrap();
        let mut parsed = parse_pmt(&pmt[start..start + len]).unwrap();
        parsed.pcr_pid = 0x200;
        parsed.streams[0].pid = 0x200;
        parsed.streams[1].pid = 0x300;
        parsed.streams[1].descriptors = with_language(&parsed.streams[1].descriptors, *b"fra");
        assert!(replace_section(&mut pmt, start, &write_pmt(&parsed)));
        let (start, len) = section(&pmt).expect("a good CRC");
        assert_eq!(parse_pmt(&pmt[start..start + len]), Some(parsed));
        assert_eq!(pmt[PACKET - 1], 0xff, "stuffed");
    }

    #[test]
    fn a_language_is_set_once() {
        let other = [0x52, 1, 7];
        let once = with_language(&other, *b"eng");
        assert_eq!(once, [0x0a, 4, b'e', b'n', b'g', 0, 0x52, 1, 7]);
        assert_eq!(with_language(&once, *b"deu")[2..5], *b"deu");
        assert_eq!(with_language(&once, *b"deu").len(), once.len());
    }

    #[test]
    fn a_section_too_big_is_refused() {
        let mut p = first_packet_of(0);
        assert!(!replace_section(&mut p, 5, &[0u8; 184]));
    }
}
