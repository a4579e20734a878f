//! What a source's scan learns of its stream (SPEC §7 Selection, labels lie): the codecs from the
//! PMT, the picture from the first keyframe's sequence header, each audio track's channels from
//! its first frame header, and the bit rate and frame rate from where frames start (their DTS
//! and stream offset, which the scan reads anyway).
//!
//! Nearly free in the steady state: the scan hands over only frame starts and, until the
//! sequence header is read, the few packets after a start that carries one. The buffer for it is
//! allocated once per PMT, never per packet.

use super::audio::{self, AudioCodec};
use super::packet::offset33;
use super::psi::{Codec, Kind, Pmt};
use super::sps::{self, Picture};
use crate::measure::{Audio, Measurement, Video};

/// The most of a sequence header gathered: SPSes are tens of bytes, a few hundred with scaling
/// lists.
const HEADER_BYTES: usize = 1024;
/// Keyframes with a sequence header tried before the picture is given up on.
const HEADER_TRIES: u32 = 8;
/// Audio PES starts tried for a frame header before a track is named from the PMT alone.
const AUDIO_TRIES: u32 = 8;
/// A DTS step longer than this between two frames is a clock jump, left out of the rates.
const MAX_FRAME_STEP: u64 = 90_000;
/// Stream time counted before the rates are believed: a session's measurement is stored once
/// this much has been seen (90 kHz ticks: 4 s).
pub const SETTLED_SPAN: u64 = 4 * 90_000;
/// Stream time before a bit rate or frame rate is given at all.
const MIN_SPAN: u64 = 90_000;
/// Stream time after which learning stops even if a header never came (30 s).
const GIVE_UP_SPAN: u64 = 30 * 90_000;

#[derive(Debug)]
struct VideoTrack {
    pid: u16,
    stream_type: u8,
    codec: Codec,
    picture: Option<Picture>,
    /// The sequence header being gathered, from its header byte on.
    header: Vec<u8>,
    gathering: bool,
    tries: u32,
}

#[derive(Debug)]
struct AudioTrack {
    pid: u16,
    codec: AudioCodec,
    language: Option<String>,
    frame: Option<audio::Frame>,
    tries: u32,
}

/// Bytes and frames against the stream's own clock.
#[derive(Debug, Default)]
struct Rates {
    last: Option<(u64, u64)>,
    span: u64,
    bytes: u64,
    frames: u64,
}

#[derive(Debug, Default)]
pub struct Learner {
    video: Option<VideoTrack>,
    audio: Vec<AudioTrack>,
    pmt_seen: bool,
    rates: Rates,
    /// Everything that can be learnt has been (or learning gave up): the scan stops calling.
    complete: bool,
    reported: bool,
}

impl Learner {
    /// A new PMT: the tracks are learnt afresh when its streams changed.
    pub fn pmt(&mut self, pmt: &Pmt) {
        let same_video = |v: &VideoTrack| {
            pmt.streams
                .iter()
                .any(|s| s.pid == v.pid && s.stream_type == v.stream_type)
        };
        let same_audio = self.audio.len()
            == pmt
                .streams
                .iter()
                .filter(|s| s.kind() == Kind::Audio)
                .count()
            && self
                .audio
                .iter()
                .all(|a| pmt.streams.iter().any(|s| s.pid == a.pid));
        let video_same = match &self.video {
            Some(video) => same_video(video),
            None => !pmt
                .streams
                .iter()
                .any(|s| matches!(s.kind(), Kind::Video(_))),
        };
        if self.pmt_seen && video_same && same_audio {
            return;
        }
        // Other tracks: learnt again (what is stored stays at most one measurement a session).
        self.pmt_seen = true;
        self.complete = false;
        self.video = pmt.streams.iter().find_map(|s| match s.kind() {
            Kind::Video(codec) => Some(VideoTrack {
                pid: s.pid,
                stream_type: s.stream_type,
                codec,
                picture: None,
                header: Vec::with_capacity(HEADER_BYTES),
                gathering: false,
                tries: 0,
            }),
            _ => None,
        });
        self.audio = pmt
            .streams
            .iter()
            .filter(|s| s.kind() == Kind::Audio)
            .map(|s| AudioTrack {
                pid: s.pid,
                codec: AudioCodec::of(s),
                language: s
                    .language()
                    .map(|l| String::from_utf8_lossy(&l).into_owned()),
                frame: None,
                tries: 0,
            })
            .collect();
    }

    /// Whether the scan should still hand over frame and audio starts: no longer once the
    /// measurement is complete, so that a long session pays for learning only at its start.
    #[inline]
    pub fn learning(&self) -> bool {
        !self.complete
    }

    /// A frame of the lead stream starts at stream offset `at`; `data` is the rest of its
    /// first packet after the PES header.
    pub fn frame_start(&mut self, at: u64, dts: Option<u64>, data: &[u8]) {
        if let Some(dts) = dts {
            self.rates.frame(dts, at);
        }
        let span = self.rates.span;
        if (span >= SETTLED_SPAN && self.all_learnt()) || span >= GIVE_UP_SPAN {
            self.complete = true;
            if let Some(video) = self.video.as_mut() {
                video.gathering = false;
            }
            return;
        }
        let Some(video) = self.video.as_mut().filter(|v| v.picture.is_none()) else {
            return;
        };
        if video.gathering {
            // The previous frame ended before its header looked whole: read what came.
            video.settle();
        }
        if video.picture.is_some() || video.tries >= HEADER_TRIES {
            return;
        }
        let found = data
            .windows(4)
            .position(|w| w[..3] == [0, 0, 1] && sps::is_sequence_header(video.codec, w[3]));
        if let Some(start) = found {
            video.header.clear();
            video.gathering = true;
            video.gather(&data[start + 3..]);
        }
    }

    /// Whether the lead stream's packets in mid-frame are wanted (a sequence header is being
    /// gathered).
    pub fn wants_lead_packets(&self) -> bool {
        self.video.as_ref().is_some_and(|v| v.gathering)
    }

    /// The payload of a lead stream's packet in mid-frame, while one is wanted.
    pub fn lead_packet(&mut self, payload: &[u8]) {
        if let Some(video) = self.video.as_mut().filter(|v| v.gathering) {
            video.gather(payload);
        }
    }

    /// An audio PES of `pid` starts; `data` is the rest of its packet after the PES header.
    pub fn audio_start(&mut self, pid: u16, data: &[u8]) {
        let Some(track) = self
            .audio
            .iter_mut()
            .find(|t| t.pid == pid && t.frame.is_none() && t.tries < AUDIO_TRIES)
        else {
            return;
        };
        if !track.codec.has_header() {
            track.tries = AUDIO_TRIES;
            return;
        }
        track.tries += 1;
        track.frame = audio::frame(track.codec, data);
    }

    /// What is known so far; `None` before the PMT.
    pub fn measurement(&self) -> Option<Measurement> {
        if !self.pmt_seen {
            return None;
        }
        let rates = &self.rates;
        let counted = rates.span >= MIN_SPAN;
        let video = self.video.as_ref().map(|v| Video {
            codec: video_name(v.stream_type).to_string(),
            width: v.picture.map(|p| p.width),
            height: v.picture.map(|p| p.height),
            frame_rate: v
                .picture
                .and_then(|p| p.frame_rate)
                .or_else(|| counted.then(|| rates.frames as f64 * 90_000.0 / rates.span as f64))
                .map(|r| (r * 1000.0).round() / 1000.0),
            interlaced: v.picture.map(|p| p.interlaced),
        });
        let audio = self
            .audio
            .iter()
            .map(|a| Audio {
                codec: a.frame.map_or(a.codec.name(), |f| f.name).to_string(),
                channels: a.frame.and_then(|f| f.channels),
                language: a.language.clone(),
            })
            .collect();
        Some(Measurement {
            video,
            audio,
            bitrate: counted.then(|| rates.bytes * 8 * 90_000 / rates.span),
        })
    }

    /// The measurement, once, as soon as everything that can be learnt has been and the rates
    /// have run for [`SETTLED_SPAN`] (or learning gave up).
    pub fn take_settled(&mut self) -> Option<Measurement> {
        if self.reported || !self.complete {
            return None;
        }
        self.reported = true;
        self.measurement()
    }

    /// The picture and every audio track are known, or were given up on.
    fn all_learnt(&self) -> bool {
        let video = self.video.as_ref().is_none_or(|v| {
            v.picture.is_some() || v.tries >= HEADER_TRIES || v.codec == Codec::Other
        });
        video
            && self
                .audio
                .iter()
                .all(|a| a.frame.is_some() || a.tries >= AUDIO_TRIES)
    }

    /// The measurement not reported yet, when the source ends: only if it says what the picture
    /// is (or, for radio, what the audio is).
    pub fn take_unreported(&mut self) -> Option<Measurement> {
        let worth = match &self.video {
            Some(video) => video.picture.is_some(),
            None => !self.audio.is_empty(),
        };
        if self.reported || !worth {
            return None;
        }
        self.reported = true;
        self.measurement()
    }
}

impl VideoTrack {
    fn gather(&mut self, data: &[u8]) {
        let room = HEADER_BYTES - self.header.len();
        self.header.extend_from_slice(&data[..data.len().min(room)]);
        if self.header.len() >= HEADER_BYTES || self.whole() {
            self.settle();
        }
    }

    /// The header has ended in what was gathered: the next start code follows it (for MPEG-2,
    /// with the two bytes of a sequence extension after it).
    fn whole(&self) -> bool {
        let h = &self.header;
        match self.codec {
            Codec::Mpeg2 => h
                .windows(3)
                .skip(1)
                .position(|w| w == [0, 0, 1])
                .is_some_and(|at| h.len() >= at + 1 + 3 + 2),
            _ => sps::nal_end(h) < h.len(),
        }
    }

    fn settle(&mut self) {
        self.gathering = false;
        self.tries += 1;
        self.picture = sps::parse(self.codec, &self.header);
    }
}

impl Rates {
    fn frame(&mut self, dts: u64, at: u64) {
        if let Some((last_dts, last_at)) = self.last {
            let step = offset33(last_dts, dts);
            if step > 0 && step <= MAX_FRAME_STEP {
                self.span += step;
                self.bytes += at.saturating_sub(last_at);
                self.frames += 1;
            }
        }
        self.last = Some((dts, at));
    }
}

/// The video codec a PMT stream type names.
fn video_name(stream_type: u8) -> &'static str {
    match stream_type {
        0x01 => "MPEG-1",
        0x02 => "MPEG-2",
        0x10 => "MPEG-4",
        0x1b => "H.264",
        0x24 => "HEVC",
        0x42 => "AVS",
        0xd1 => "Dirac",
        0xea => "VC-1",
        _ => "video",
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use bytes::BytesMut;

    use super::super::input::SourceStream;
    use super::super::packet::PACKET;
    use super::*;

    /// What ffprobe says of a clip: the video's size, rate and field order, the first audio
    /// track's codec and channels, and the container's bit rate.
    fn ffprobe(path: &str) -> serde_json::Value {
        let output = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_streams",
                "-show_format",
                "-of",
                "json",
                path,
            ])
            .output()
            .expect("ffprobe must be installed (Debian package ffmpeg)");
        serde_json::from_slice(&output.stdout).expect("ffprobe JSON")
    }

    /// Scans a clip the way the relay does (whole packets, in pieces, nothing held).
    fn scan(clip: &[u8]) -> (SourceStream, Vec<Measurement>) {
        let mut source = SourceStream::default();
        let mut settled = Vec::new();
        let usable = clip.len() / PACKET * PACKET;
        for piece in clip[..usable].chunks(PACKET * 70) {
            source.push(BytesMut::from(piece));
            source.discard_until(source.end());
            settled.extend(source.take_settled());
        }
        (source, settled)
    }

    fn check_clip(name: &str, codec: &str) {
        let path = format!("{}/assets/{name}", env!("CARGO_MANIFEST_DIR"));
        let clip = std::fs::read(&path).expect("the clip");
        let probe = ffprobe(&path);
        let streams = probe["streams"].as_array().expect("streams");
        let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
        let audio = streams.iter().find(|s| s["codec_type"] == "audio").unwrap();
        let (mut source, settled) = scan(&clip);
        assert_eq!(settled.len(), 1, "{name}: settled once");
        let measured = &settled[0];
        let v = measured.video.as_ref().expect("video");
        assert_eq!(v.codec, codec);
        assert_eq!(v.width, video["width"].as_u64().map(|w| w as u32), "{name}");
        assert_eq!(
            v.height,
            video["height"].as_u64().map(|h| h as u32),
            "{name}"
        );
        let rate = video["r_frame_rate"].as_str().unwrap();
        let (num, den) = rate.split_once('/').unwrap();
        let rate = num.parse::<f64>().unwrap() / den.parse::<f64>().unwrap();
        assert!((v.frame_rate.unwrap() - rate).abs() < 0.01, "{name}: {v:?}");
        let fields = matches!(
            video["field_order"].as_str(),
            Some("tt" | "bb" | "tb" | "bt")
        );
        assert_eq!(v.interlaced, Some(fields), "{name}");
        assert_eq!(measured.audio.len(), 1);
        assert_eq!(
            measured.audio[0].codec.to_lowercase(),
            audio["codec_name"].as_str().unwrap()
        );
        assert_eq!(
            measured.audio[0].channels.map(u64::from),
            audio["channels"].as_u64()
        );
        // The container's rate over its whole length; ours over the frames of the first
        // seconds. Within a tenth.
        let container: f64 = probe["format"]["bit_rate"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let ours = measured.bitrate.expect("a bit rate") as f64;
        assert!(
            (ours / container - 1.0).abs() < 0.1,
            "{name}: {ours} vs {container}"
        );
        assert_eq!(source.take_settled(), None, "only once");
        assert_eq!(source.take_unreported(), None, "already taken");
    }

    #[test]
    fn the_h264_clip_is_measured_as_ffprobe_sees_it() {
        check_clip("clip.ts", "H.264");
    }

    #[test]
    fn the_hevc_clip_is_measured_as_ffprobe_sees_it() {
        check_clip("clip-hevc.ts", "HEVC");
    }

    #[test]
    fn a_codec_change_is_learnt_again_and_still_reported_once() {
        let read = |name: &str| {
            std::fs::read(format!("{}/assets/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
        };
        let (h264, hevc) = (read("clip.ts"), read("clip-hevc.ts"));
        let (mut source, settled) = scan(&h264);
        assert_eq!(settled.len(), 1);
        let usable = hevc.len() / PACKET * PACKET;
        for piece in hevc[..usable].chunks(PACKET * 70) {
            source.push(BytesMut::from(piece));
            source.discard_until(source.end());
            assert_eq!(source.take_settled(), None, "once a session");
        }
        let now = source.measurement().expect("measured");
        assert_eq!(now.video.map(|v| v.codec).as_deref(), Some("HEVC"));
    }

    #[test]
    fn a_short_source_reports_its_picture_when_it_ends_and_never_twice() {
        let path = format!("{}/assets/clip.ts", env!("CARGO_MANIFEST_DIR"));
        let clip = std::fs::read(&path).expect("the clip");
        // Two seconds' worth: the picture is known, the rates not settled.
        let (mut source, settled) = scan(&clip[..clip.len() / 5]);
        assert!(settled.is_empty());
        let measured = source
            .take_unreported()
            .expect("the picture is worth keeping");
        assert!(measured.video.unwrap().width.is_some());
        assert_eq!(source.take_unreported(), None);
        // Before any keyframe's header: nothing worth keeping.
        let (mut early, _) = scan(&clip[..PACKET * 3]);
        assert_eq!(early.take_unreported(), None);
    }
}
