//! What was measured of a stream (SPEC §7 Selection: labels lie): its video codec, picture and
//! frame rate, its audio tracks, and the bit rate it delivers. The relay and `probe` learn it, the
//! store keeps it, and the ordering and the listings read it. Pure data and the rules on it.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::xtream::quality::Tier;

/// What one stream turned out to be.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub video: Option<Video>,
    pub audio: Vec<Audio>,
    /// Bits per second of the whole stream, counted against the stream's own clock.
    pub bitrate: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Video {
    /// `H.264`, `HEVC`, `MPEG-2`, …, from the PMT.
    pub codec: String,
    /// The displayed frame (cropping applied, both fields of an interlaced frame).
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Frames per second.
    pub frame_rate: Option<f64>,
    pub interlaced: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Audio {
    /// `AAC`, `AC-3`, `MP2`, …
    pub codec: String,
    pub channels: Option<u8>,
    pub language: Option<String>,
}

impl Measurement {
    /// The tier the picture size says: 2160p is 4K, 1080p FHD, 720p HD, anything less SD. A
    /// cropped picture (1920×800) counts by whichever side reaches the tier.
    pub fn tier(&self) -> Option<Tier> {
        let video = self.video.as_ref()?;
        let (width, height) = (video.width?, video.height?);
        let reaches = |w: u32, h: u32| width >= w || height >= h;
        Some(if reaches(3840, 2160) {
            Tier::Uhd
        } else if reaches(1920, 1080) {
            Tier::Fhd
        } else if reaches(1280, 720) {
            Tier::Hd
        } else {
            Tier::Sd
        })
    }

    /// `1280×720`, when the picture size is known.
    pub fn size(&self) -> Option<String> {
        let video = self.video.as_ref()?;
        Some(format!("{}×{}", video.width?, video.height?))
    }

    /// One line for people: `H.264 1280×720 25p, AAC 2ch, 1.2 Mbit/s`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(video) = &self.video {
            let mut text = video.codec.clone();
            if let Some(size) = self.size() {
                let _ = write!(text, " {size}");
            }
            let scan = if video.interlaced == Some(true) {
                "i"
            } else {
                "p"
            };
            match video.frame_rate {
                Some(rate) => {
                    let _ = write!(text, " {}{scan}", rate_text(rate));
                }
                None if video.interlaced == Some(true) => text.push_str(" interlaced"),
                None => {}
            }
            parts.push(text);
        }
        for audio in &self.audio {
            let mut text = audio.codec.clone();
            if let Some(channels) = audio.channels {
                let _ = write!(text, " {channels}ch");
            }
            if let Some(language) = &audio.language {
                let _ = write!(text, " {language}");
            }
            parts.push(text);
        }
        if let Some(bitrate) = self.bitrate {
            parts.push(format!("{:.1} Mbit/s", bitrate as f64 / 1e6));
        }
        parts.join(", ")
    }
}

/// `25`, `29.97`, `59.94`: at most two decimals, none when whole.
fn rate_text(rate: f64) -> String {
    let text = format!("{rate:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// How a stream ranks for selection: by tier, then (within a tier) by measured bit rate, higher
/// first; a stream never measured ranks below a measured one of its tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank {
    pub tier: Tier,
    pub bitrate: Option<u64>,
}

impl Rank {
    /// The rank of a stream whose name says `label` and which may have been measured: the
    /// measurement's tier wins over the label's. HEVC ranks with H.264 at the same resolution.
    pub fn of(label: Tier, measured: Option<&Measurement>) -> Rank {
        Rank {
            tier: measured.and_then(Measurement::tier).unwrap_or(label),
            bitrate: measured.and_then(|m| m.bitrate),
        }
    }
}

/// The tier the name's labels give, if it carries a resolution label at all (`HEVC` alone is
/// none).
pub fn label_tier(labels: &[String], tier: Tier) -> Option<Tier> {
    labels
        .iter()
        .any(|l| matches!(l.as_str(), "4K" | "FHD" | "HD" | "SD"))
        .then_some(tier)
}

/// `FHD label, measured 1280×720` when the name's label and the measured picture disagree.
pub fn disagreement(label: Option<Tier>, measured: &Measurement) -> Option<String> {
    let label = label?;
    let tier = measured.tier()?;
    let size = measured.size()?;
    (tier != label).then(|| format!("{label} label, measured {size}"))
}

#[cfg(test)]
impl Measurement {
    /// A progressive 25 fps H.264 picture of this size and nothing else, for tests.
    pub(crate) fn h264(width: u32, height: u32, bitrate: Option<u64>) -> Measurement {
        Measurement {
            video: Some(Video {
                codec: "H.264".into(),
                width: Some(width),
                height: Some(height),
                frame_rate: Some(25.0),
                interlaced: Some(false),
            }),
            audio: Vec::new(),
            bitrate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(width: u32, height: u32, bitrate: Option<u64>) -> Measurement {
        Measurement {
            audio: vec![Audio {
                codec: "AAC".into(),
                channels: Some(2),
                language: None,
            }],
            ..Measurement::h264(width, height, bitrate)
        }
    }

    #[test]
    fn tiers_come_from_the_picture_size() {
        let tier = |w, h| picture(w, h, None).tier();
        assert_eq!(tier(3840, 2160), Some(Tier::Uhd));
        assert_eq!(tier(1920, 1080), Some(Tier::Fhd));
        assert_eq!(tier(1920, 800), Some(Tier::Fhd), "a cropped film");
        assert_eq!(tier(1440, 1080), Some(Tier::Fhd));
        assert_eq!(tier(1280, 720), Some(Tier::Hd));
        assert_eq!(tier(1024, 576), Some(Tier::Sd));
        assert_eq!(tier(640, 360), Some(Tier::Sd));
        assert_eq!(Measurement::default().tier(), None);
    }

    #[test]
    fn the_measurement_outranks_the_label_and_bit_rate_breaks_ties() {
        let small = picture(640, 360, Some(400_000));
        assert_eq!(Rank::of(Tier::Fhd, Some(&small)).tier, Tier::Sd);
        assert_eq!(Rank::of(Tier::Fhd, None).tier, Tier::Fhd);
        let hd_fast = Rank::of(Tier::Sd, Some(&picture(1280, 720, Some(3_000_000))));
        let hd_slow = Rank::of(Tier::Sd, Some(&picture(1280, 720, Some(1_000_000))));
        let hd_unmeasured = Rank::of(Tier::Hd, None);
        assert!(hd_fast > hd_slow && hd_slow > hd_unmeasured);
        assert!(Rank::of(Tier::Fhd, None) > hd_fast);
    }

    #[test]
    fn a_disagreement_names_both() {
        let small = picture(640, 360, None);
        assert_eq!(
            disagreement(Some(Tier::Fhd), &small).as_deref(),
            Some("FHD label, measured 640×360")
        );
        assert_eq!(disagreement(Some(Tier::Sd), &small), None);
        assert_eq!(disagreement(None, &small), None);
        let labels = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(label_tier(&labels(&["HEVC"]), Tier::Sd), None);
        assert_eq!(
            label_tier(&labels(&["FHD", "HEVC"]), Tier::Fhd),
            Some(Tier::Fhd)
        );
    }

    #[test]
    fn the_summary_reads_well() {
        let mut m = picture(1280, 720, Some(1_234_567));
        assert_eq!(m.summary(), "H.264 1280×720 25p, AAC 2ch, 1.2 Mbit/s");
        if let Some(video) = m.video.as_mut() {
            video.frame_rate = Some(29.97);
            video.interlaced = Some(true);
        }
        m.audio[0].language = Some("eng".into());
        assert_eq!(
            m.summary(),
            "H.264 1280×720 29.97i, AAC 2ch eng, 1.2 Mbit/s"
        );
        assert_eq!(Measurement::default().summary(), "");
    }
}
