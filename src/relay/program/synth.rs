//! Synthetic MPEG-TS for tests and the splice fuzz targets: a program (PAT, PMT, one H.264 or HEVC video PID, optionally an
//! AAC-like audio PID) sent frame by frame, with chosen PIDs, clock origin and keyframes. Every
//! payload byte after the headers is the frame's tag, so a test can tell frames apart.

use std::collections::HashMap;

use super::packet::{PACKET, PAT_PID, write_clock_base, write_timestamp};
use super::psi::{self, Pmt, Stream};

pub const FRAME_TICKS: u64 = 3600;

/// A program sent frame by frame.
#[derive(Debug, Clone)]
pub struct Synth {
    pub program_number: u16,
    pub pmt_pid: u16,
    pub video_pid: u16,
    pub audio_pid: Option<u16>,
    pub hevc: bool,
    /// The next frame's DTS (= PTS), the PCR running 0.5 s behind it.
    pub clock: u64,
    cc: HashMap<u16, u8>,
}

impl Synth {
    pub fn new(pmt_pid: u16, video_pid: u16, audio_pid: Option<u16>) -> Synth {
        Synth {
            program_number: 1,
            pmt_pid,
            video_pid,
            audio_pid,
            hevc: false,
            clock: 900_000,
            cc: HashMap::new(),
        }
    }

    pub fn pmt(&self) -> Pmt {
        let video = Stream {
            stream_type: if self.hevc { 0x24 } else { 0x1b },
            pid: self.video_pid,
            descriptors: Vec::new(),
        };
        let audio = self.audio_pid.map(|pid| Stream {
            stream_type: 0x0f,
            pid,
            descriptors: Vec::new(),
        });
        Pmt {
            program_number: self.program_number,
            version: 0,
            pcr_pid: self.video_pid,
            program_info: Vec::new(),
            streams: std::iter::once(video).chain(audio).collect(),
        }
    }

    fn next_cc(&mut self, pid: u16) -> u8 {
        let cc = self.cc.entry(pid).or_insert(15);
        *cc = (*cc + 1) & 0x0f;
        *cc
    }

    fn psi_packet(&mut self, pid: u16, section: &[u8]) -> [u8; PACKET] {
        let mut p = psi::section_packet(pid, section, false).expect("fits");
        p[3] |= self.next_cc(pid);
        p
    }

    pub fn pat_section(&self) -> Vec<u8> {
        let mut s = vec![0x00, 0xb0, 0, 0, 1, 0xc1, 0, 0];
        s.extend_from_slice(&self.program_number.to_be_bytes());
        s.extend_from_slice(&(0xe000 | self.pmt_pid).to_be_bytes());
        let len = (s.len() + 4 - 3) as u16;
        s[1..3].copy_from_slice(&(0xb000 | len).to_be_bytes());
        let crc = psi::crc32_mpeg2(&s);
        s.extend_from_slice(&crc.to_be_bytes());
        s
    }

    /// PAT and PMT packets.
    pub fn psi(&mut self) -> Vec<u8> {
        let pat = self.pat_section();
        let pmt = psi::write_pmt(&self.pmt());
        let mut out = self.psi_packet(PAT_PID, &pat).to_vec();
        out.extend_from_slice(&self.psi_packet(self.pmt_pid, &pmt));
        out
    }

    /// One frame: PAT and PMT first when `key` (a keyframe), then two video packets (the first
    /// with the PCR and the PES header), then one whole audio PES.
    pub fn frame(&mut self, key: bool, tag: u8) -> Vec<u8> {
        let mut out = if key { self.psi() } else { Vec::new() };
        let dts = self.clock;
        let pid = self.video_pid;
        let mut first = [tag; PACKET];
        first[..4].copy_from_slice(&[0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x30]);
        first[3] |= self.next_cc(pid);
        first[4] = 7;
        first[5] = if key { 0x50 } else { 0x10 };
        first[6..12].copy_from_slice(&[0, 0, 0, 0, 0x7e, 0]);
        write_clock_base(&mut first, 6, dts.wrapping_sub(45_000) & ((1 << 33) - 1));
        let pes = 12;
        first[pes..pes + 9].copy_from_slice(&[0, 0, 1, 0xe0, 0, 0, 0x80, 0xc0, 10]);
        first[pes + 9..pes + 19].copy_from_slice(&[0x31, 0, 1, 0, 1, 0x11, 0, 1, 0, 1]);
        write_timestamp(&mut first, pes + 9, dts);
        write_timestamp(&mut first, pes + 14, dts);
        let es = pes + 19;
        let slice: &[u8] = match (self.hevc, key) {
            (false, true) => &[0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x65, 0x88],
            (false, false) => &[0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x41, 0x9a],
            (true, true) => &[0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 1, 19 << 1, 0x01],
            (true, false) => &[0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 1, 1 << 1, 0x01],
        };
        first[es..es + slice.len()].copy_from_slice(slice);
        out.extend_from_slice(&first);
        let mut second = [tag; PACKET];
        second[..4].copy_from_slice(&[0x47, (pid >> 8) as u8, pid as u8, 0x10]);
        second[3] |= self.next_cc(pid);
        out.extend_from_slice(&second);
        if let Some(pid) = self.audio_pid {
            let mut audio = [tag; PACKET];
            audio[..4].copy_from_slice(&[0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10]);
            audio[3] |= self.next_cc(pid);
            let length = (PACKET - 4 - 6) as u16;
            audio[4..9].copy_from_slice(&[0, 0, 1, 0xc0, (length >> 8) as u8]);
            audio[9..14].copy_from_slice(&[length as u8, 0x80, 0x80, 5, 0x21]);
            audio[15] = 1;
            audio[17] = 1;
            write_timestamp(&mut audio, 13, dts);
            out.extend_from_slice(&audio);
        }
        self.clock = (self.clock + FRAME_TICKS) & ((1 << 33) - 1);
        out
    }

    /// Frames by pattern: `K` a keyframe, `P` another frame; tags count up from `first_tag`.
    #[cfg(test)]
    pub fn frames(&mut self, pattern: &str, first_tag: u8) -> Vec<u8> {
        pattern
            .chars()
            .enumerate()
            .flat_map(|(i, c)| self.frame(c == 'K', first_tag.wrapping_add(i as u8)))
            .collect()
    }
}
