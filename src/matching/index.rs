//! An inverted index of guide names, so a stream is scored only against the names it could
//! reach the reporting floor with, not against the whole guide.
//!
//! A name is a candidate when it shares a word with the stream (or a four-letter word start,
//! for plurals, abbreviations and typos), is spelled the same once run together, has initials the
//! stream uses as a word, or the stream's call sign. The weight of the shared words bounds the
//! token similarity from above, which prunes names sharing only a common word (`sky`, `bbc`).

use std::collections::HashMap;

use super::normalize::Normalized;
use super::score::FILLER_WEIGHT;
use super::vocab;

pub struct NameIndex {
    by_token: HashMap<String, Vec<u32>>,
    by_start: HashMap<String, Vec<u32>>,
    by_compact: HashMap<String, Vec<u32>>,
    /// Names by the initials of runs of their words (`fdf` for `Factoría de Ficción`).
    by_initials: HashMap<String, Vec<u32>>,
    by_call_sign: HashMap<String, Vec<u32>>,
    /// Per name, the weight of its distinct words that always count ([`bound_weight`]).
    weights: Vec<f32>,
}

/// Per-lookup working memory, reused from one stream to the next.
pub struct Scratch {
    /// Per name, the weight of the words it shares with the stream, and of those of them that
    /// always count.
    shared: Vec<(f32, f32)>,
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
            by_call_sign: HashMap::new(),
            weights: Vec::new(),
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
            for initials in acronyms(&name.tokens) {
                let names = index.by_initials.entry(initials).or_default();
                if names.last() != Some(&id) {
                    names.push(id);
                }
            }
            if let Some(sign) = &name.call_sign {
                index.by_call_sign.entry(sign.clone()).or_default().push(id);
            }
            index
                .weights
                .push(words.iter().filter_map(|w| bound_weight(w)).sum());
        }
        index
    }

    pub fn scratch(&self) -> Scratch {
        Scratch {
            shared: vec![(0.0, 0.0); self.weights.len()],
            counted_for: vec![0; self.weights.len()],
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
        let stream_weight: f32 = words.iter().filter_map(|w| bound_weight(w)).sum();
        for word in &words {
            scratch.word += 1;
            let counted = bound_weight(word);
            let exact = self.by_token.get(*word).into_iter().flatten();
            let start = word_start(word).and_then(|s| self.by_start.get(s));
            for &id in exact.chain(start.into_iter().flatten()) {
                let i = id as usize;
                if scratch.counted_for[i] == scratch.word {
                    continue;
                }
                scratch.counted_for[i] = scratch.word;
                let shared = &mut scratch.shared[i];
                if shared.0 == 0.0 {
                    scratch.touched.push(id);
                }
                shared.0 += counted.unwrap_or(1.0);
                shared.1 += counted.unwrap_or(0.0);
            }
        }
        // Words that may match a word of the name the index cannot see: an unlabelled stream's
        // East or West (a regional name's word) and initials (`R.` for `Real`).
        let feed_word = usize::from(stream.feed.is_some());
        let initials = words.iter().filter(|w| w.chars().count() == 1).count();
        let wild = (feed_word + initials) as f32;
        for &id in &scratch.touched {
            let i = id as usize;
            let (shared, counted) = scratch.shared[i];
            let name_weight = (self.weights[i] - wild).max(0.0);
            let bound = similarity_bound(shared + wild, counted, name_weight, stream_weight);
            if bound >= floor {
                out.push(id);
            }
            scratch.shared[i] = (0.0, 0.0);
        }
        scratch.touched.clear();
        let sign = stream
            .call_sign
            .as_ref()
            .and_then(|s| self.by_call_sign.get(s));
        for &id in sign.into_iter().flatten() {
            if !out.contains(&id) {
                out.push(id);
            }
        }
        // Names spelled the same, and names the stream abbreviates (`FDF`, `CI`): the bound does
        // not hold for them, so they are always scored.
        let spelled = self.by_compact.get(&stream.compact);
        let acronyms = words.iter().filter_map(|w| self.by_initials.get(*w));
        for &id in spelled.into_iter().chain(acronyms).flatten() {
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }
}

/// The highest weighted Jaccard similarity two names can reach when words of weight `shared`
/// match, `counted` of it in words that always count, and the names' words that always count
/// weigh `a` and `b`: the words that do not match weigh at least the rest of those.
fn similarity_bound(shared: f32, counted: f32, a: f32, b: f32) -> f32 {
    if shared <= 0.0 {
        return 0.0;
    }
    let unmatched = (a - counted).max(0.0) + (b - counted).max(0.0);
    shared / (shared + unmatched)
}

/// A word's weight in [`similarity_bound`], or None for words that may not count at all: numbers
/// (a local station's channel number is ignored) and single letters (an initial matches a word).
fn bound_weight(word: &str) -> Option<f32> {
    let free = word.bytes().all(|b| b.is_ascii_digit()) || word.chars().count() == 1;
    (!free).then(|| {
        if vocab::is_filler(word) {
            FILLER_WEIGHT
        } else {
            1.0
        }
    })
}

/// The acronyms a stream may use for a name: the initials of each run of two to five of its
/// words, not all filler (`fdf` for `Factoría de Ficción`, `ci` in `Planète+ Crime Investigation`).
fn acronyms(tokens: &[String]) -> impl Iterator<Item = String> + '_ {
    (2..=5).flat_map(move |len| {
        tokens
            .windows(len)
            .filter(|run| !run.iter().all(|w| vocab::is_filler(w)))
            .filter_map(|run| run.iter().map(|w| w.chars().next()).collect())
    })
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
        let guide = [
            "Factoría de Ficción",
            "Antena 3",
            "Planète+ Crime Investigation",
        ];
        assert_eq!(lookup(&guide, "|SP| FDF", 0.6), vec![0]);
        assert_eq!(lookup(&guide, "|FR| PLANETE+ CI HD", 0.6), vec![2]);
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
            "Channel 5",
            "NBC (WBAL) Baltimore, MD",
            "Real Madrid TV",
            "Canal J",
            "Planète+ Crime Investigation",
        ];
        let streams = [
            "History",
            "Sky Sports",
            "BBC One Scot",
            "US: Hallmark",
            "Sky Sports News UK",
            "UK: 5 HD",
            "US: NBC 11 BALTIMORE",
            "R. MADRID TV",
            "CANAL J HD",
            "|FR| PLANETE+ CI HD",
        ];
        for g in names {
            let guide = NameIndex::new([&normalize(g)]);
            let mut scratch = guide.scratch();
            let mut out = Vec::new();
            for s in streams {
                let value = score(&normalize(g), &normalize(s));
                // A name the stream could reach the floor with is always a candidate.
                guide.candidates(&normalize(s), value, &mut scratch, &mut out);
                assert!(value == 0.0 || out == vec![0], "{g} / {s}: {value}");
            }
        }
    }
}
