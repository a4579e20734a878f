//! PSI: the PAT and the PMT, parsed (CRC-32/MPEG-2 checked) and written, and the reassembly of
//! a section from the packets of its PID.

use super::packet::{self, PACKET};

/// The longest PAT or PMT section accepted (ISO 13818-1 caps both at 1024 bytes).
const MAX_SECTION: usize = 1024;

const PAT_TABLE: u8 = 0x00;
const PMT_TABLE: u8 = 0x02;

/// CRC-32/MPEG-2 (polynomial 0x04c11db7, no reflection, no final xor): a section with its CRC
/// appended checks to 0.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    static TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut crc = (i as u32) << 24;
            let mut bit = 0;
            while bit < 8 {
                crc = if crc & 0x8000_0000 != 0 {
                    (crc << 1) ^ 0x04c1_1db7
                } else {
                    crc << 1
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

/// Reassembles the sections of one PID from its packets; only the first section of a packet
/// is read (PAT and PMT carry one each).
#[derive(Debug, Default)]
pub struct SectionReader {
    buf: Vec<u8>,
    /// The whole section's length, once its header is in.
    want: Option<usize>,
    active: bool,
}

impl SectionReader {
    /// Feeds one packet of the PID; returns a complete section (CRC included) when one ends.
    pub fn push(&mut self, packet: &[u8]) -> Option<&[u8]> {
        let payload = packet::payload(packet);
        if packet::unit_start(packet) {
            let pointer = usize::from(*payload.first()?);
            let start = payload.get(1 + pointer..)?;
            self.buf.clear();
            self.want = None;
            self.active = true;
            self.buf.extend_from_slice(start);
        } else if self.active {
            self.buf.extend_from_slice(payload);
        } else {
            return None;
        }
        if self.want.is_none() && self.buf.len() >= 3 {
            let len = 3 + usize::from(u16::from_be_bytes([self.buf[1], self.buf[2]]) & 0x0fff);
            if !(12..=MAX_SECTION).contains(&len) {
                self.active = false;
                return None;
            }
            self.want = Some(len);
        }
        let want = self.want?;
        if self.buf.len() < want {
            return None;
        }
        self.active = false;
        Some(&self.buf[..want])
    }
}

/// A section's body between its 8-byte header and its CRC, if it is a whole, current section of
/// `table` with a good CRC.
fn body(section: &[u8], table: u8) -> Option<&[u8]> {
    let n = section.len();
    if n < 12 || section[0] != table || crc32_mpeg2(section) != 0 {
        return None;
    }
    let current = section[5] & 0x01 != 0;
    current.then(|| &section[8..n - 4])
}

/// The program a PAT points to: the first with a non-zero number (0 is the NIT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatProgram {
    pub program_number: u16,
    pub pmt_pid: u16,
}

pub fn parse_pat(section: &[u8]) -> Option<PatProgram> {
    body(section, PAT_TABLE)?
        .chunks_exact(4)
        .map(|e| PatProgram {
            program_number: u16::from_be_bytes([e[0], e[1]]),
            pmt_pid: u16::from_be_bytes([e[2], e[3]]) & 0x1fff,
        })
        .find(|p| p.program_number != 0)
}

/// What an elementary stream is, as far as splicing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Video(Codec),
    Audio,
    Other,
}

/// Video codecs whose random-access points the relay can find in the bitstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Mpeg2,
    H264,
    Hevc,
    /// Any other video: its random-access points come from the adaptation field's hint.
    Other,
}

/// One elementary stream of a PMT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub stream_type: u8,
    pub pid: u16,
    pub descriptors: Vec<u8>,
}

impl Stream {
    pub fn kind(&self) -> Kind {
        match self.stream_type {
            0x01 | 0x02 => Kind::Video(Codec::Mpeg2),
            0x1b => Kind::Video(Codec::H264),
            0x24 => Kind::Video(Codec::Hevc),
            0x10 | 0x42 | 0xd1 | 0xea => Kind::Video(Codec::Other),
            0x03 | 0x04 | 0x0f | 0x11 | 0x81 | 0x87 => Kind::Audio,
            // Private data: AC-3, E-AC-3, DTS or AAC by descriptor (DVB), else subtitles/data.
            0x06 if self.has_descriptor(&[0x6a, 0x7a, 0x7b, 0x7c]) => Kind::Audio,
            _ => Kind::Other,
        }
    }

    fn descriptors(&self) -> impl Iterator<Item = (u8, &[u8])> {
        let mut rest = &self.descriptors[..];
        std::iter::from_fn(move || {
            let (&[tag, len], tail) = rest.split_first_chunk::<2>()?;
            let body = tail.get(..usize::from(len))?;
            rest = &tail[usize::from(len)..];
            Some((tag, body))
        })
    }

    pub fn descriptor_tags(&self) -> impl Iterator<Item = u8> + '_ {
        self.descriptors().map(|(tag, _)| tag)
    }

    fn has_descriptor(&self, tags: &[u8]) -> bool {
        self.descriptors().any(|(tag, _)| tags.contains(&tag))
    }

    /// The ISO 639 language descriptor's first code, lower-cased.
    pub fn language(&self) -> Option<[u8; 3]> {
        self.descriptors()
            .find(|&(tag, body)| tag == 0x0a && body.len() >= 3)
            .map(|(_, body)| [body[0], body[1], body[2]].map(|b| b.to_ascii_lowercase()))
    }
}

/// A program map table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pmt {
    pub program_number: u16,
    pub version: u8,
    pub pcr_pid: u16,
    pub program_info: Vec<u8>,
    pub streams: Vec<Stream>,
}

pub fn parse_pmt(section: &[u8]) -> Option<Pmt> {
    let body = body(section, PMT_TABLE)?;
    let (&[pcr_hi, pcr_lo, info_hi, info_lo], rest) = body.split_first_chunk::<4>()?;
    let info_len = usize::from(u16::from_be_bytes([info_hi, info_lo]) & 0x0fff);
    let program_info = rest.get(..info_len)?.to_vec();
    let mut rest = &rest[info_len..];
    let mut streams = Vec::new();
    while let Some((&[stream_type, pid_hi, pid_lo, es_hi, es_lo], tail)) =
        rest.split_first_chunk::<5>()
    {
        let es_len = usize::from(u16::from_be_bytes([es_hi, es_lo]) & 0x0fff);
        streams.push(Stream {
            stream_type,
            pid: u16::from_be_bytes([pid_hi, pid_lo]) & 0x1fff,
            descriptors: tail.get(..es_len)?.to_vec(),
        });
        rest = &tail[es_len..];
    }
    Some(Pmt {
        program_number: u16::from_be_bytes([section[3], section[4]]),
        version: (section[5] >> 1) & 0x1f,
        pcr_pid: u16::from_be_bytes([pcr_hi, pcr_lo]) & 0x1fff,
        program_info,
        streams,
    })
}

/// The PMT as a section, CRC included.
pub fn write_pmt(pmt: &Pmt) -> Vec<u8> {
    let mut s = vec![PMT_TABLE, 0, 0];
    s.extend_from_slice(&pmt.program_number.to_be_bytes());
    s.extend_from_slice(&[0xc1 | (pmt.version & 0x1f) << 1, 0, 0]);
    s.extend_from_slice(&(0xe000 | pmt.pcr_pid).to_be_bytes());
    s.extend_from_slice(&(0xf000 | pmt.program_info.len() as u16).to_be_bytes());
    s.extend_from_slice(&pmt.program_info);
    for es in &pmt.streams {
        s.push(es.stream_type);
        s.extend_from_slice(&(0xe000 | es.pid).to_be_bytes());
        s.extend_from_slice(&(0xf000 | es.descriptors.len() as u16).to_be_bytes());
        s.extend_from_slice(&es.descriptors);
    }
    let len = (s.len() + 4 - 3) as u16;
    s[1..3].copy_from_slice(&(0xb000 | len).to_be_bytes());
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

/// A packet of `pid` carrying `section` from its first payload byte, or `None` if it does not
/// fit one packet. `discontinuity` adds an adaptation field with the indicator set.
pub fn section_packet(pid: u16, section: &[u8], discontinuity: bool) -> Option<[u8; PACKET]> {
    let mut p = [0xffu8; PACKET];
    p[0] = 0x47;
    p[1] = 0x40 | (pid >> 8) as u8 & 0x1f;
    p[2] = pid as u8;
    let mut at = 4;
    if discontinuity {
        p[3] = 0x30;
        p[4] = 1;
        p[5] = 0x80;
        at = 6;
    } else {
        p[3] = 0x10;
    }
    p[at] = 0;
    let dest = p.get_mut(at + 1..at + 1 + section.len())?;
    dest.copy_from_slice(section);
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn pmt(version: u8, streams: &[(u8, u16)]) -> Pmt {
        Pmt {
            program_number: 1,
            version,
            pcr_pid: streams.first().map_or(0x1fff, |s| s.1),
            program_info: Vec::new(),
            streams: streams
                .iter()
                .map(|&(stream_type, pid)| Stream {
                    stream_type,
                    pid,
                    descriptors: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_mpeg2_crc_matches_known_values() {
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_e6e7);
        assert_eq!(crc32_mpeg2(b""), 0xffff_ffff);
    }

    #[test]
    fn a_written_pmt_parses_back_and_checks_to_zero() {
        let mut table = pmt(3, &[(0x1b, 0x100), (0x0f, 0x101)]);
        table.streams[1].descriptors = vec![0x0a, 4, b'E', b'n', b'g', 0];
        let section = write_pmt(&table);
        assert_eq!(crc32_mpeg2(&section), 0);
        let parsed = parse_pmt(&section).expect("parses");
        assert_eq!(parsed, table);
        assert_eq!(parsed.streams[1].language(), Some(*b"eng"));
        assert_eq!(parsed.streams[0].kind(), Kind::Video(Codec::H264));
        assert_eq!(parsed.streams[1].kind(), Kind::Audio);
    }

    #[test]
    fn a_corrupt_or_foreign_section_is_refused() {
        let mut section = write_pmt(&pmt(0, &[(0x24, 0x100)]));
        assert_eq!(
            parse_pmt(&section).unwrap().streams[0].kind(),
            Kind::Video(Codec::Hevc)
        );
        assert!(parse_pat(&section).is_none(), "not a PAT");
        section[10] ^= 1;
        assert!(parse_pmt(&section).is_none(), "CRC mismatch");
        assert!(parse_pmt(&section[..8]).is_none());
    }

    #[test]
    fn a_pat_names_its_first_real_program() {
        let mut s = vec![0x00, 0xb0, 0, 0, 1, 0xc1, 0, 0];
        s.extend_from_slice(&[0, 0, 0xe0, 0x10, 0, 7, 0xf0, 0x00]);
        let len = (s.len() + 1) as u16;
        s[1..3].copy_from_slice(&(0xb000 | len).to_be_bytes());
        let crc = crc32_mpeg2(&s);
        s.extend_from_slice(&crc.to_be_bytes());
        assert_eq!(
            parse_pat(&s),
            Some(PatProgram {
                program_number: 7,
                pmt_pid: 0x1000
            })
        );
    }

    #[test]
    fn sections_are_reassembled_across_packets() {
        let mut table = pmt(1, &[(0x1b, 0x100)]);
        table.program_info = vec![0x05, 200, 0].into_iter().chain([7; 199]).collect();
        let section = write_pmt(&table);
        assert!(section.len() > 183);
        let mut first = [0xffu8; PACKET];
        first[..5].copy_from_slice(&[0x47, 0x50, 0x00, 0x10, 0x00]);
        first[5..].copy_from_slice(&section[..183]);
        let mut second = [0xffu8; PACKET];
        second[..4].copy_from_slice(&[0x47, 0x10, 0x00, 0x11]);
        second[4..4 + section.len() - 183].copy_from_slice(&section[183..]);
        let mut reader = SectionReader::default();
        assert!(reader.push(&second).is_none(), "no start seen yet");
        assert!(reader.push(&first).is_none());
        assert_eq!(reader.push(&second), Some(&section[..]));
        assert_eq!(parse_pmt(&section), Some(table));
    }

    #[test]
    fn a_section_packet_carries_the_section_and_maybe_a_discontinuity() {
        let section = write_pmt(&pmt(2, &[(0x1b, 0x100)]));
        for discontinuity in [false, true] {
            let p = section_packet(0x1000, &section, discontinuity).expect("fits");
            assert_eq!(packet::pid(&p), 0x1000);
            let mut reader = SectionReader::default();
            assert_eq!(reader.push(&p), Some(&section[..]));
            assert_eq!(p[3] & 0x20 != 0, discontinuity);
        }
        assert!(section_packet(0x1000, &[0; 184], false).is_none());
    }
}
