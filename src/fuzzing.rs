//! Entry points for the cargo-fuzz targets in `fuzz/`, not an API: each feeds arbitrary bytes to
//! one parser of outside input and asserts what must hold whatever the bytes. `cargo test`
//! replays each target's committed corpus through the same function, so CI guards the findings
//! without nightly.

use crate::relay::program::psi::Codec;
use crate::relay::program::sps;

/// A sequence header of the codec the first byte picks (H.264 SPS, HEVC SPS, MPEG-2): never a
/// panic, and any picture it yields is one a decoder could show.
pub fn sequence_header(data: &[u8]) {
    let Some((&selector, unit)) = data.split_first() else {
        return;
    };
    let codec = match selector % 3 {
        0 => Codec::H264,
        1 => Codec::Hevc,
        _ => Codec::Mpeg2,
    };
    if let Some(picture) = sps::parse(codec, unit) {
        assert!(
            (1..=16_384).contains(&picture.width) && (1..=16_384).contains(&picture.height),
            "{picture:?}"
        );
        if let Some(rate) = picture.frame_rate {
            assert!(rate.is_finite() && rate > 0.0, "{picture:?}");
        }
    }
}

/// An M3U playlist fed in chunks whose size the first byte picks: never a panic, the same
/// entries and counts as one whole push, counts that add up, and only fetchable, clean entries.
pub fn m3u(data: &[u8]) {
    let Some((&selector, playlist)) = data.split_first() else {
        return;
    };
    let (whole, counts) = crate::m3u::parse(playlist);
    let mut parser = crate::m3u::Parser::new();
    let mut chunked = Vec::new();
    for chunk in playlist.chunks(usize::from(selector) + 1) {
        parser.push(chunk, &mut |e| chunked.push(e));
    }
    let chunked_counts = parser.finish(&mut |e| chunked.push(e));
    assert_eq!(
        (&whole, counts),
        (&chunked, chunked_counts),
        "chunking changed the result"
    );
    assert_eq!(counts.entries, whole.len());
    let newlines = playlist.iter().filter(|&&b| b == b'\n').count();
    let last = usize::from(!playlist.is_empty() && !playlist.ends_with(b"\n"));
    assert_eq!(counts.lines, newlines + last, "every line counted once");
    assert!(
        counts.entries + counts.skipped <= counts.lines,
        "{counts:?}"
    );
    for entry in &whole {
        let lower = entry.url.to_ascii_lowercase();
        assert!(lower.starts_with("http://") || lower.starts_with("https://"));
        assert!(!entry.name.is_empty());
        let fields = [
            Some(&entry.url),
            Some(&entry.name),
            entry.tvg_id.as_ref(),
            entry.group.as_ref(),
            entry.user_agent.as_ref(),
            entry.referrer.as_ref(),
        ];
        for field in fields.into_iter().flatten() {
            assert!(!field.chars().any(char::is_control), "{entry:?}");
            assert!(field.len() <= 2 * crate::m3u::MAX_LINE, "{entry:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every committed corpus entry of `target` goes through `run`.
    fn replay(target: &str, run: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("corpus entry").path())
            .collect();
        assert!(!entries.is_empty(), "{} is empty", dir.display());
        for entry in entries {
            run(&std::fs::read(&entry).expect("read corpus entry"));
        }
    }

    #[test]
    fn the_m3u_corpus_replays() {
        replay("m3u", super::m3u);
    }

    #[test]
    fn the_sequence_header_corpus_replays() {
        replay("sequence_header", super::sequence_header);
    }
}
