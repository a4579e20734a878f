//! An audio track's codec and channel count, from its PMT entry and the first frame header of a
//! PES: AAC (ADTS), MPEG audio layers 1 to 3, AC-3 and E-AC-3. Other codecs are named from the
//! PMT alone. Outside input: a header that does not check out says nothing.

use super::psi::Stream;

/// The codec a PMT entry names, and how its frames' headers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Adts,
    Latm,
    Mpeg,
    Ac3,
    Eac3,
    Dts,
    Other,
}

impl AudioCodec {
    pub fn of(stream: &Stream) -> AudioCodec {
        match stream.stream_type {
            0x0f => AudioCodec::Adts,
            0x11 => AudioCodec::Latm,
            0x03 | 0x04 => AudioCodec::Mpeg,
            0x81 => AudioCodec::Ac3,
            0x87 => AudioCodec::Eac3,
            0x06 => match stream
                .descriptor_tags()
                .find(|t| matches!(t, 0x6a | 0x7a | 0x7b | 0x7c))
            {
                Some(0x6a) => AudioCodec::Ac3,
                Some(0x7a) => AudioCodec::Eac3,
                Some(0x7b) => AudioCodec::Dts,
                Some(_) => AudioCodec::Adts,
                None => AudioCodec::Other,
            },
            _ => AudioCodec::Other,
        }
    }

    /// The name shown when no frame header was read.
    pub fn name(self) -> &'static str {
        match self {
            AudioCodec::Adts => "AAC",
            AudioCodec::Latm => "AAC LATM",
            AudioCodec::Mpeg => "MPEG audio",
            AudioCodec::Ac3 => "AC-3",
            AudioCodec::Eac3 => "E-AC-3",
            AudioCodec::Dts => "DTS",
            AudioCodec::Other => "audio",
        }
    }

    /// Whether a frame header says anything more (the codec's own name, the channels).
    pub fn has_header(self) -> bool {
        matches!(
            self,
            AudioCodec::Adts | AudioCodec::Mpeg | AudioCodec::Ac3 | AudioCodec::Eac3
        )
    }
}

/// What one frame header says: the codec's exact name and the channel count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub name: &'static str,
    pub channels: Option<u8>,
}

/// The bytes of a PES payload looked at for a frame's sync word.
const LOOK: usize = 64;

/// Reads the first frame header in `data` (a PES payload's first bytes).
pub fn frame(codec: AudioCodec, data: &[u8]) -> Option<Frame> {
    let data = &data[..data.len().min(LOOK)];
    (0..data.len()).find_map(|at| header(codec, &data[at..]))
}

fn header(codec: AudioCodec, h: &[u8]) -> Option<Frame> {
    match codec {
        AudioCodec::Adts => {
            let &[a, b, _, d, ..] = h else { return None };
            // 12-bit sync, layer 0; the channel configuration straddles bytes 2 and 3.
            if a != 0xff || b & 0xf6 != 0xf0 {
                return None;
            }
            let config = ((h[2] & 0x01) << 2) | (d >> 6);
            let channels = match config {
                0 => None,
                7 => Some(8),
                n => Some(n),
            };
            Some(Frame {
                name: "AAC",
                channels,
            })
        }
        AudioCodec::Mpeg => {
            let &[a, b, c, d, ..] = h else { return None };
            let layer = (b >> 1) & 0x03;
            // 11-bit sync, a known version and layer, a bit rate index that is not "bad".
            if a != 0xff || b & 0xe0 != 0xe0 || layer == 0 || (b >> 3) & 0x03 == 1 || c >> 4 == 15 {
                return None;
            }
            let name = match layer {
                3 => "MP1",
                2 => "MP2",
                _ => "MP3",
            };
            let channels = if d >> 6 == 3 { 1 } else { 2 };
            Some(Frame {
                name,
                channels: Some(channels),
            })
        }
        AudioCodec::Ac3 | AudioCodec::Eac3 => dolby(h),
        AudioCodec::Latm | AudioCodec::Dts | AudioCodec::Other => None,
    }
}

/// AC-3 (bsid up to 10) and E-AC-3 (bsid 11 to 16) sync frames (ETSI TS 102 366).
fn dolby(h: &[u8]) -> Option<Frame> {
    let &[0x0b, 0x77, _, _, _, b5, b6, ..] = h else {
        return None;
    };
    let bsid = b5 >> 3;
    const ACMOD_CHANNELS: [u8; 8] = [2, 1, 2, 3, 3, 4, 4, 5];
    if bsid <= 10 {
        let acmod = b6 >> 5;
        // After acmod: cmixlev, surmixlev and dsurmod when present, then lfeon.
        let mut skip = 0;
        if acmod & 0x01 != 0 && acmod != 1 {
            skip += 2;
        }
        if acmod & 0x04 != 0 {
            skip += 2;
        }
        if acmod == 2 {
            skip += 2;
        }
        let bits = u16::from_be_bytes([b6, *h.get(7)?]);
        let lfe = (bits >> (12 - skip)) & 1;
        return Some(Frame {
            name: "AC-3",
            channels: Some(ACMOD_CHANNELS[usize::from(acmod)] + lfe as u8),
        });
    }
    if bsid > 16 {
        return None;
    }
    // E-AC-3: strmtyp(2) substreamid(3) frmsiz(11) fscod(2) numblkscod(2) acmod(3) lfeon(1).
    let b4 = h[4];
    let acmod = (b4 >> 1) & 0x07;
    let lfe = b4 & 0x01;
    Some(Frame {
        name: "E-AC-3",
        channels: Some(ACMOD_CHANNELS[usize::from(acmod)] + lfe),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adts_headers_give_their_channels() {
        // Sync, MPEG-4, no CRC; LC, 48 kHz; channel configurations 2, 6 (5.1) and 7 (7.1).
        for (config, channels) in [(2u8, 2u8), (6, 6), (7, 8), (1, 1)] {
            let header = [
                0xff,
                0xf1,
                0x4c | (config >> 2),
                (config & 0x03) << 6,
                0,
                0x1f,
                0xfc,
            ];
            let found = frame(AudioCodec::Adts, &header).expect("a header");
            assert_eq!(found.channels, Some(channels), "configuration {config}");
        }
        assert_eq!(frame(AudioCodec::Adts, &[0xff, 0x00, 0, 0]), None);
    }

    #[test]
    fn mpeg_audio_layers_and_modes() {
        // MPEG-1 layer 2, 192 kbit/s, 48 kHz; stereo, then mono.
        let stereo = [0xff, 0xfd, 0xa4, 0x04];
        assert_eq!(
            frame(AudioCodec::Mpeg, &stereo),
            Some(Frame {
                name: "MP2",
                channels: Some(2)
            })
        );
        let mono = [0xff, 0xfb, 0x90, 0xc4];
        assert_eq!(
            frame(AudioCodec::Mpeg, &mono),
            Some(Frame {
                name: "MP3",
                channels: Some(1)
            })
        );
        assert_eq!(
            frame(AudioCodec::Mpeg, &[0xff, 0xf9, 0, 0]),
            None,
            "layer 0"
        );
    }

    #[test]
    fn ac3_and_eac3_count_their_channels_and_lfe() {
        // AC-3, bsid 8, acmod 7 (3/2), after cmixlev and surmixlev: lfeon set. 5.1.
        let ac3 = [0x0b, 0x77, 0, 0, 0x10, 0x40, 0xe0 | 0x01, 0x00];
        assert_eq!(frame(AudioCodec::Ac3, &ac3).unwrap().channels, Some(6));
        // AC-3 2/0 (acmod 2): dsurmod, then lfeon clear.
        let stereo = [0x0b, 0x77, 0, 0, 0x10, 0x40, 0x40, 0x00];
        assert_eq!(frame(AudioCodec::Ac3, &stereo).unwrap().channels, Some(2));
        // E-AC-3 (bsid 16), acmod 7 with lfe.
        let eac3 = [0x0b, 0x77, 0x00, 0x00, 0x0f, 0x80, 0, 0];
        let found = frame(AudioCodec::Eac3, &eac3).unwrap();
        assert_eq!((found.name, found.channels), ("E-AC-3", Some(6)));
    }

    #[test]
    fn garbage_says_nothing() {
        for codec in [
            AudioCodec::Adts,
            AudioCodec::Mpeg,
            AudioCodec::Ac3,
            AudioCodec::Dts,
        ] {
            assert_eq!(frame(codec, &[]), None);
            assert_eq!(frame(codec, &[0x0b, 0x77, 0xff]), None);
            assert_eq!(frame(codec, &[0x12; 200]), None);
        }
    }
}
