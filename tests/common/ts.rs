//! A test's own reading of a captured MPEG-TS stream, independent of the relay's code: which
//! PIDs it uses, whether each PID's continuity counter runs on, whether the PCR and the video
//! DTS only move forward, and the PMT versions it went through.

use std::collections::{BTreeSet, HashMap};

pub const PACKET: usize = 188;

/// What a capture looks like to a demuxer.
#[derive(Debug, Default)]
pub struct Report {
    pub pids: BTreeSet<u16>,
    pub pmt_pid: Option<u16>,
    /// Each PMT version seen, in order, with its (stream type, PID) list.
    pub pmts: Vec<(u8, Vec<(u8, u16)>)>,
    pub cc_errors: Vec<String>,
    pub pcrs: usize,
    pub pcr_backwards: usize,
    pub video_pid: Option<u16>,
    pub video_frames: usize,
    pub dts_backwards: usize,
    /// The largest forward step of the video DTS, in 90 kHz ticks.
    pub largest_dts_step: u64,
}

fn pid(p: &[u8]) -> u16 {
    (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2])
}

fn payload(p: &[u8]) -> &[u8] {
    let start = if p[3] & 0x20 != 0 {
        5 + usize::from(p[4])
    } else {
        4
    };
    p.get(start..).unwrap_or_default()
}

/// `a - b` on the 33-bit clock, the shorter way round.
fn ahead(a: u64, b: u64) -> i64 {
    let d = a.wrapping_sub(b) & ((1 << 33) - 1);
    if d >= 1 << 32 {
        d as i64 - (1 << 33)
    } else {
        d as i64
    }
}

fn timestamp(b: &[u8]) -> u64 {
    (u64::from(b[0] >> 1 & 7) << 30)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] >> 1) << 15)
        | (u64::from(b[3]) << 7)
        | u64::from(b[4] >> 1)
}

/// The DTS (or PTS) of a PES starting in this payload.
fn pes_dts(pes: &[u8]) -> Option<u64> {
    if pes.len() < 19 || pes[..3] != [0, 0, 1] {
        return None;
    }
    match pes[7] >> 6 {
        0b11 => Some(timestamp(&pes[14..19])),
        0b10 => Some(timestamp(&pes[9..14])),
        _ => None,
    }
}

/// Reads a capture of whole packets (a trailing partial packet is ignored).
pub fn inspect(data: &[u8]) -> Report {
    let mut report = Report::default();
    let mut cc: HashMap<u16, u8> = HashMap::new();
    let mut last_pcr: Option<u64> = None;
    let mut last_dts: Option<u64> = None;
    for p in data.chunks_exact(PACKET) {
        assert_eq!(p[0], 0x47, "lost sync");
        let pid = pid(p);
        if pid == 0x1fff {
            continue;
        }
        report.pids.insert(pid);
        let discontinuity = p[3] & 0x20 != 0 && p[4] > 0 && p[5] & 0x80 != 0;
        if p[3] & 0x10 != 0 {
            let now = p[3] & 0x0f;
            if let Some(prev) = cc.insert(pid, now)
                && now != (prev + 1) & 0x0f
                && !discontinuity
            {
                report
                    .cc_errors
                    .push(format!("PID {pid:#x}: {prev} then {now}"));
            }
        }
        if p[3] & 0x20 != 0 && p[4] >= 7 && p[5] & 0x10 != 0 {
            let pcr = p[6..11].iter().fold(0u64, |v, &b| (v << 8) | u64::from(b)) >> 7;
            if last_pcr.is_some_and(|last| ahead(pcr, last) <= 0) {
                report.pcr_backwards += 1;
            }
            last_pcr = Some(pcr);
            report.pcrs += 1;
        }
        let start = p[1] & 0x40 != 0;
        let body = payload(p);
        if start && pid == 0 && body.len() > 16 {
            let section = &body[1 + usize::from(body[0])..];
            report.pmt_pid = Some(u16::from_be_bytes([section[10], section[11]]) & 0x1fff);
        } else if start && Some(pid) == report.pmt_pid {
            let s = &body[1 + usize::from(body[0])..];
            let version = (s[5] >> 1) & 0x1f;
            if report.pmts.last().is_none_or(|(v, _)| *v != version) {
                let end = 3 + usize::from(u16::from_be_bytes([s[1], s[2]]) & 0x0fff) - 4;
                let info = usize::from(u16::from_be_bytes([s[10], s[11]]) & 0x0fff);
                let mut at = 12 + info;
                let mut streams = Vec::new();
                while at + 5 <= end {
                    let es = u16::from_be_bytes([s[at + 1], s[at + 2]]) & 0x1fff;
                    streams.push((s[at], es));
                    at += 5 + usize::from(u16::from_be_bytes([s[at + 3], s[at + 4]]) & 0x0fff);
                }
                report.video_pid = streams
                    .iter()
                    .find(|(t, _)| [0x02, 0x1b, 0x24].contains(t))
                    .map(|&(_, p)| p);
                report.pmts.push((version, streams));
            }
        } else if start
            && Some(pid) == report.video_pid
            && let Some(dts) = pes_dts(body)
        {
            report.video_frames += 1;
            if let Some(last) = last_dts {
                let step = ahead(dts, last);
                if step <= 0 {
                    report.dts_backwards += 1;
                } else {
                    report.largest_dts_step = report.largest_dts_step.max(step as u64);
                }
            }
            last_dts = Some(dts);
        }
    }
    report
}
