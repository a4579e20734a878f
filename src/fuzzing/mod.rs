//! Entry points for the cargo-fuzz targets in `fuzz/`, not an API: each feeds arbitrary bytes to
//! one parser of outside input (SPEC §9) and asserts what must hold whatever the bytes. `cargo
//! test` replays each target's committed corpus (`fuzz/corpus/TARGET`) through the same function,
//! so CI guards the findings without nightly.
//!
//! Where a parser sees its input in pieces, the first input byte usually seeds how it is split,
//! and the property is that the split changes nothing.

mod hdhr;
mod http;
mod text;
mod ts;

pub use hdhr::{hdhr_packets, ssdp};
pub use http::{chunked, http_request, response_head};
pub use text::{config, m3u, xmltv, xtream_json};
pub use ts::{psi_pes, sequence_header, splice, ts_aligner};

/// Reads fuzz input as a script: bytes taken from the front, zeros once it runs out.
struct Script<'a> {
    rest: &'a [u8],
}

impl<'a> Script<'a> {
    fn new(data: &'a [u8]) -> Script<'a> {
        Script { rest: data }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.rest.split_first() else {
            return 0;
        };
        self.rest = rest;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// Up to `n` bytes (fewer at the end).
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.rest.split_at(n.min(self.rest.len()));
        self.rest = rest;
        taken
    }
}

/// Piece sizes for splitting an input, from a seed: mostly small, sometimes large.
struct Splits {
    state: u32,
}

impl Splits {
    fn new(seed: u8) -> Splits {
        Splits {
            state: 0x9e37_79b9 ^ u32::from(seed).wrapping_mul(0x0101_0101),
        }
    }

    fn next(&mut self) -> usize {
        // xorshift32: cheap and deterministic, so a corpus entry replays the same splits.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        match self.state % 8 {
            0 => 1,
            1..=5 => 1 + (self.state >> 8) as usize % 16,
            _ => 1 + (self.state >> 8) as usize % 1024,
        }
    }

    /// `data` cut into pieces of the next sizes.
    fn cut<'a>(&mut self, mut data: &'a [u8]) -> Vec<&'a [u8]> {
        let mut pieces = Vec::new();
        while !data.is_empty() {
            let (piece, rest) = data.split_at(self.next().min(data.len()));
            pieces.push(piece);
            data = rest;
        }
        pieces
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

    macro_rules! replays {
        ($($target:ident),* $(,)?) => {
            $(
                #[test]
                fn $target() {
                    replay(stringify!($target), crate::fuzzing::$target);
                }
            )*
        };
    }

    mod the_corpus_of {
        use super::replay;

        replays!(
            chunked,
            config,
            hdhr_packets,
            http_request,
            m3u,
            psi_pes,
            response_head,
            sequence_header,
            splice,
            ssdp,
            ts_aligner,
            xmltv,
            xtream_json,
        );
    }

    #[test]
    fn splits_cover_the_whole_input_in_order() {
        let data: Vec<u8> = (0..=255).cycle().take(5000).collect();
        for seed in [0, 1, 77, 255] {
            let pieces = super::Splits::new(seed).cut(&data);
            assert!(pieces.iter().all(|p| !p.is_empty()));
            assert_eq!(pieces.concat(), data);
        }
    }
}
