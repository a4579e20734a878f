//! Synthetic guides for tests: realistic channels and programmes, of a chosen size.

use std::io::{self, Write};

use super::time::XmltvTime;

/// What [`write_guide`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    pub channels: usize,
    pub programmes: u64,
    pub bytes: u64,
}

const TITLES: [&str; 6] = [
    "News &amp; Weather",
    "The \"Big\" Match",
    "Kids' Club &lt;Live&gt;",
    "Documentary: Planet Earth",
    "Late Movie",
    "Café Society",
];

/// Writes a guide of `channels` channels (ids `chN.example`, names `Channel N`, numbers
/// `100+N`) and half-hour programmes, round-robin over the channels, until about `target` bytes.
pub(crate) fn write_guide(
    out: &mut impl Write,
    channels: usize,
    target: u64,
) -> io::Result<Written> {
    let mut out = Counting { out, bytes: 0 };
    out.put("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE tv SYSTEM \"xmltv.dtd\">\n<tv generator-info-name=\"testdata\">\n")?;
    for n in 0..channels {
        out.put(&format!(
            "  <channel id=\"ch{n}.example\">\n    <display-name lang=\"en\">Channel {n}</display-name>\n    <display-name>{}</display-name>\n    <icon src=\"http://logos.example/{n}.png?size=big&amp;v=2\"/>\n  </channel>\n",
            100 + n
        ))?;
    }
    let mut programmes = 0u64;
    // 2024-01-01 00:00 UTC, half-hour slots, written at +0100.
    let epoch = 1_704_067_200i64;
    while out.bytes < target && channels > 0 {
        let n = programmes % channels as u64;
        let slot = programmes / channels as u64;
        let start = epoch + slot as i64 * 1800;
        let title = TITLES
            .get((programmes % 6) as usize)
            .copied()
            .unwrap_or_default();
        let (Some(start), Some(stop)) = (
            XmltvTime::from_unix(start, 60),
            XmltvTime::from_unix(start + 1800, 60),
        ) else {
            break;
        };
        out.put(&format!(
            "  <programme start=\"{start}\" stop=\"{stop}\" channel=\"ch{n}.example\">\n    <title lang=\"en\">{title}</title>\n    <sub-title>Episode {slot}</sub-title>\n    <desc lang=\"en\">Programme {programmes} on channel {n}: a long description with &lt;markup&gt; &amp; quotes \"like this\" to make the guide realistic in size and content.</desc>\n    <category lang=\"en\">Entertainment</category>\n    <episode-num system=\"xmltv_ns\">{}.{}.0/1</episode-num>\n  </programme>\n",
            slot % 10,
            slot % 20
        ))?;
        programmes += 1;
    }
    out.put("</tv>\n")?;
    Ok(Written {
        channels,
        programmes,
        bytes: out.bytes,
    })
}

struct Counting<'a, W> {
    out: &'a mut W,
    bytes: u64,
}

impl<W: Write> Counting<'_, W> {
    fn put(&mut self, s: &str) -> io::Result<()> {
        self.bytes += s.len() as u64;
        self.out.write_all(s.as_bytes())
    }
}
