//! An inverted index of guide names, so a stream is scored only against the names it could
//! reach the reporting floor with, not against the whole guide.
//!
//! A name is a candidate when it shares a word with the stream (or a four-letter word start,
//! for plurals, abbreviations and typos), is spelled the same once run together, or has initials
//! the stream uses as a word. Shared-word counts bound the
//! token similarity from above, which prunes names sharing only a common word (`sky`, `bbc`).

use std::collections::HashMap;

use super::normalize::Normalized;
use super::score::FILLER_WEIGHT;

pub struct NameIndex {
    by_token: HashMap<String, Vec<u32>>,
    by_start: HashMap<String, Vec<u32>>,
    by_compact: HashMap<String, Vec<u32>>,
    /// Names by their initials (`fdf` for `Factoría de Ficción`).
    by_initials: HashMap<String, Vec<u32>>,
    /// Distinct tokens per name.
    sizes: Vec<usize>,
}

/// Per-lookup working memory, reused from one stream to the next.
pub struct Scratch {
    hits: Vec<u32>,
    /// The lookup word a name was last counted for, so a word counts once per name.
    counted_for: Vec<u64>,
    touched: Vec<u32>,
    word: u64,
}

impl NameIndex {
    pub fn new<'a>(names: impl IntoIterator<Item = &'a Normalized>) -> NameIndex {
        let mut index = NameIndex {
            by_token: HashMap::new(),
            by_start: HashMap::new(),
            by_compact: HashMap::new(),
            by_initials: HashMap::new(),
            sizes: Vec::new(),
        };
        for (i, name) in names.into_iter().enumerate() {
            let Ok(id) = u32::try_from(i) else { break };
            let words = distinct(&name.tokens);
            for word in &words {
                index.by_token.entry(word.to_string()).or_default().push(id);
                if let Some(start) = word_start(word) {
                    index
                        .by_start
                        .entry(start.to_string())
                        .or_default()
                        .push(id);
                }
            }
            if !name.compact.is_empty() {
                index
                    .by_compact
                    .entry(name.compact.clone())
                    .or_default()
                    .push(id);
            }
            if let Some(initials) = initials(&name.tokens) {
                index.by_initials.entry(initials).or_default().push(id);
            }
            index.sizes.push(words.len());
        }
        index
    }

    pub fn scratch(&self) -> Scratch {
        Scratch {
            hits: vec![0; self.sizes.len()],
            counted_for: vec![0; self.sizes.len()],
            touched: Vec::new(),
            word: 0,
        }
    }

    /// Fills `out` with the names that may score at least `floor` against `stream`.
    pub fn candidates(
        &self,
        stream: &Normalized,
        floor: f32,
        scratch: &mut Scratch,
        out: &mut Vec<u32>,
    ) {
        out.clear();
        let words = distinct(&stream.tokens);
        for word in &words {
            scratch.word += 1;
            let exact = self.by_token.get(*word).into_iter().flatten();
            let start = word_start(word).and_then(|s| self.by_start.get(s));
            for &id in exact.chain(start.into_iter().flatten()) {
                let i = id as usize;
                if scratch.counted_for[i] == scratch.word {
                    continue;
                }
                scratch.counted_for[i] = scratch.word;
                if scratch.hits[i] == 0 {
                    scratch.touched.push(id);
                }
                scratch.hits[i] += 1;
            }
        }
        for &id in &scratch.touched {
            let i = id as usize;
            if similarity_bound(scratch.hits[i] as usize, self.sizes[i], words.len()) >= floor {
                out.push(id);
            }
            scratch.hits[i] = 0;
        }
        scratch.touched.clear();
        // Names spelled the same, and names the stream abbreviates (`FDF`): the bound does not
        // hold for them, so they are always scored.
        let spelled = self.by_compact.get(&stream.compact);
        let acronyms = words.iter().filter_map(|w| self.by_initials.get(*w));
        for &id in spelled.into_iter().chain(acronyms).flatten() {
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }
}

/// The highest weighted Jaccard similarity two names of `a` and `b` distinct words can reach
/// when `shared` words match: every other word weighs at least a filler's weight.
fn similarity_bound(shared: usize, a: usize, b: usize) -> f32 {
    let shared = shared.min(a).min(b);
    let others = (a - shared) + (b - shared);
    if shared == 0 {
        return 0.0;
    }
    shared as f32 / (shared as f32 + FILLER_WEIGHT * others as f32)
}

/// The initials of a name of two to five words, for acronyms.
fn initials(tokens: &[String]) -> Option<String> {
    if !(2..=5).contains(&tokens.len()) {
        return None;
    }
    tokens.iter().map(|t| t.chars().next()).collect()
}

fn distinct(tokens: &[String]) -> Vec<&str> {
    let mut words: Vec<&str> = Vec::with_capacity(tokens.len());
    for t in tokens {
        if !words.contains(&t.as_str()) {
            words.push(t);
        }
    }
    words
}

/// The first four letters of a word long enough to be a plural, an abbreviation or abbreviated.
fn word_start(word: &str) -> Option<&str> {
    if !word.chars().all(char::is_alphabetic) {
        return None;
    }
    let (last, c) = word.char_indices().nth(3)?;
    Some(&word[..last + c.len_utf8()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::normalize::normalize;

    fn lookup(guide: &[&str], stream: &str, floor: f32) -> Vec<u32> {
        let names: Vec<Normalized> = guide.iter().map(|n| normalize(n)).collect();
        let index = NameIndex::new(&names);
        let mut scratch = index.scratch();
        let mut out = Vec::new();
        index.candidates(&normalize(stream), floor, &mut scratch, &mut out);
        out.sort_unstable();
        out
    }

    #[test]
    fn finds_names_sharing_words_abbreviations_and_spelling() {
        let guide = [
            "BBC One",
            "BBC One Scotland",
            "Channel 4",
            "Sky News",
            "Sky Sports Main Event",
        ];
        assert_eq!(lookup(&guide, "UK: BBC One HD", 0.0), vec![0, 1]);
        assert_eq!(lookup(&guide, "BBC One Scot", 0.0), vec![0, 1]);
        assert_eq!(lookup(&guide, "UK: CHANNEL4", 0.0), vec![2]);
        assert!(lookup(&guide, "Cartoon Network", 0.0).is_empty());
        // A name the stream abbreviates.
        let guide = ["Factoría de Ficción", "Antena 3"];
        assert_eq!(lookup(&guide, "|SP| FDF", 0.6), vec![0]);
    }

    #[test]
    fn prunes_names_that_cannot_reach_the_floor() {
        let guide = ["Sky News", "Sky Sports Main Event", "Sky Cinema Premiere"];
        // Sharing only "sky" cannot reach 0.75 against these.
        assert_eq!(lookup(&guide, "Sky Sports Main Event", 0.75), vec![1]);
        assert_eq!(lookup(&guide, "Sky Sports Main Event", 0.0), vec![0, 1, 2]);
    }

    #[test]
    fn the_bound_is_never_below_the_score() {
        use crate::matching::score::score;
        let names = [
            "BBC One",
            "The History Channel",
            "Sky Sports News",
            "BBC One Scotland",
            "Hallmark Channel",
        ];
        let streams = [
            "History",
            "Sky Sports",
            "BBC One Scot",
            "US: Hallmark",
            "Sky Sports News UK",
        ];
        for g in names {
            for s in streams {
                let (g, s) = (normalize(g), normalize(s));
                let shared = distinct(&g.tokens)
                    .iter()
                    .filter(|w| {
                        s.tokens.iter().any(|t| {
                            t == *w || (word_start(t).is_some() && word_start(t) == word_start(w))
                        })
                    })
                    .count();
                let bound =
                    similarity_bound(shared, distinct(&g.tokens).len(), distinct(&s.tokens).len());
                assert!(score(&g, &s) <= bound + 1e-6, "{g:?} {s:?}");
            }
        }
    }
}
