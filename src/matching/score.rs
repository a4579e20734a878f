//! How well a guide channel name and a stream name agree, in [0, 1].
//!
//! Equal canonicals score [`EXACT`], names equal once run together (`Channel4`) [`COMPACT`], and
//! anything else a weighted token-set similarity (Jaccard) below [`TOKEN_MAX`]. Words that tell
//! channels apart override similarity: a different number or timeshift (`BBC One`/`BBC Two`,
//! `ITV`/`ITV +1`) or feed (East/West) caps the score far below any threshold; East against no
//! feed caps it just below the default threshold, so it is reported rather than taken. Two names
//! from different countries (`UK:` prefix, `.us` id) lose [`COUNTRY_PENALTY`].

use super::normalize::{Feed, Normalized};
use super::vocab;

pub const EXACT: f32 = 0.99;
pub const COMPACT: f32 = 0.97;
/// Below [`COMPACT`], so a textual equality always wins over a merely similar name.
pub const TOKEN_MAX: f32 = 0.95;
/// A number, timeshift or feed mismatch: never a match, not worth reporting.
pub const MARK_CAP: f32 = 0.3;
/// East against no feed: the same channel more often than not (ESPN's national feed is its East
/// one), but not certainly.
pub const EAST_CAP: f32 = 0.75;
pub const COUNTRY_PENALTY: f32 = 0.2;
/// Filler words ("the", "tv", "channel", a trailing "UK") weigh this much; others weigh 1.
pub const FILLER_WEIGHT: f32 = 0.2;
/// `Sports` for `Sport` counts for this much of a match.
const PLURAL_CREDIT: f32 = 0.9;
/// A word that abbreviates another (`Scot` for `Scotland`) counts for this much of a match.
const ABBREVIATION_CREDIT: f32 = 0.85;

/// Scores a guide channel name against a stream name.
pub fn score(guide: &Normalized, stream: &Normalized) -> f32 {
    if guide.tokens.is_empty() || stream.tokens.is_empty() {
        return 0.0;
    }
    let mut score = if guide.canonical == stream.canonical {
        EXACT
    } else if guide.compact == stream.compact {
        COMPACT
    } else if same_marks(&guide.tokens, &stream.tokens) {
        token_similarity(&guide.tokens, &stream.tokens).min(TOKEN_MAX)
    } else {
        token_similarity(&guide.tokens, &stream.tokens).min(MARK_CAP)
    };
    score = score.min(feed_cap(guide.feed, stream.feed));
    if let (Some(a), Some(b)) = (guide.country, stream.country)
        && a != b
    {
        score -= COUNTRY_PENALTY;
    }
    score.clamp(0.0, 1.0)
}

/// The highest score two names can reach given their feeds.
pub fn feed_cap(guide: Option<Feed>, stream: Option<Feed>) -> f32 {
    match (guide, stream) {
        (a, b) if a == b => 1.0,
        (None, Some(Feed::East)) | (Some(Feed::East), None) => EAST_CAP,
        _ => MARK_CAP,
    }
}

/// Whether both names carry the same numbers and timeshifts (tokens with a digit).
pub fn same_marks(a: &[String], b: &[String]) -> bool {
    let marks = |t: &&String| t.bytes().any(|c| c.is_ascii_digit());
    a.iter().filter(marks).all(|m| b.contains(m)) && b.iter().filter(marks).all(|m| a.contains(m))
}

/// Whether the timeshifts (`+1`) of two names agree.
pub fn same_timeshift(a: &[String], b: &[String]) -> bool {
    let shift = |t: &&String| t.starts_with('+');
    a.iter().filter(shift).all(|m| b.contains(m)) && b.iter().filter(shift).all(|m| a.contains(m))
}

fn weight(token: &str) -> f32 {
    if vocab::is_filler(token) {
        FILLER_WEIGHT
    } else {
        1.0
    }
}

/// Weighted Jaccard similarity of the two token sets. Words that differ only by a plural `s`
/// (`sport`/`sports`) or abbreviate one another (`scot`/`scotland`) are partial matches, but
/// only next to a word both names share: on its own, `France` is not `franceinfo`.
fn token_similarity(a: &[String], b: &[String]) -> f32 {
    // A bit per token of `b` marks it used; normalised names have at most MAX_TOKENS (< 64),
    // hand-built ones are cut.
    let (a, b) = (&a[..a.len().min(64)], &b[..b.len().min(64)]);
    let mut used: u64 = 0;
    let mut unmatched: Vec<&str> = Vec::new();
    let mut matched = 0.0;
    let mut total = 0.0;
    for (i, t) in a.iter().enumerate() {
        if a[..i].contains(t) {
            continue;
        }
        match b.iter().position(|u| u == t) {
            Some(j) => {
                used |= 1 << j;
                matched += weight(t);
                total += weight(t);
            }
            None => unmatched.push(t),
        }
    }
    let shared = used != 0;
    for t in unmatched {
        let partial = b.iter().enumerate().find_map(|(j, u)| {
            let free = used & (1 << j) == 0 && !b[..j].contains(u);
            free.then(|| partial_credit(t, u).map(|credit| (j, credit)))
                .flatten()
        });
        if let Some((j, credit)) = partial.filter(|_| shared) {
            used |= 1 << j;
            matched += credit * weight(t);
        }
        total += weight(t);
    }
    for (j, u) in b.iter().enumerate() {
        if used & (1 << j) == 0 && !b[..j].contains(u) {
            total += weight(u);
        }
    }
    if total > 0.0 { matched / total } else { 0.0 }
}

/// How much of a match two different words are: a plural `s` ([`PLURAL_CREDIT`]), or a clear
/// abbreviation, a prefix of at least four letters and two letters shorter
/// ([`ABBREVIATION_CREDIT`]).
pub fn partial_credit(a: &str, b: &str) -> Option<f32> {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let letters = |s: &str| s.chars().all(char::is_alphabetic);
    let (short_len, long_len) = (short.chars().count(), long.chars().count());
    if short_len < 4 || !long.starts_with(short) || !letters(long) {
        return None;
    }
    match long_len - short_len {
        1 if long.ends_with('s') => Some(PLURAL_CREDIT),
        2.. => Some(ABBREVIATION_CREDIT),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::normalize::{normalize, normalize_id};

    fn s(guide: &str, stream: &str) -> f32 {
        score(&normalize(guide), &normalize(stream))
    }

    const THRESHOLD: f32 = 0.8;

    #[test]
    fn same_channel_scores_high() {
        for (guide, stream) in [
            ("BBC One", "UK: BBC ONE (HD) (720p)"),
            ("BBC One", "|UK| BBC Oneᴴᴰ"),
            ("BBC One", "UK: BBC 1 FHD"),
            ("BBC One", "UK: BBCONEHD"),
            ("Channel 4", "UK: CHANNEL4 HD"),
            ("Das Erste", "[DE] Das Erste HD+"),
            ("Téva", "FR: TEVA (FHD)"),
            ("ITV1 +1", "UK: ITV 1 +1 HD"),
            ("RTL Zwei", "DE: RTL II"),
            ("ZDFneo", "DE: ZDF NEO"),
            ("Canal+", "FR: CANAL PLUS HD"),
            ("Sky Sports News", "VIP Sky Sports News FHD"),
        ] {
            let score = s(guide, stream);
            assert!(score >= COMPACT, "{guide} / {stream}: {score}");
        }
        let id = score(&normalize_id("BBCOne.uk"), &normalize("UK: BBC One HD"));
        assert!(id >= EXACT, "{id}");
    }

    #[test]
    fn similar_names_score_by_tokens() {
        let scot = s("BBC One Scotland", "UK: BBC One Scot FHD (1080p)");
        assert!((THRESHOLD..=TOKEN_MAX).contains(&scot), "{scot}");
        let filler = s("Hallmark Channel", "US: Hallmark");
        assert!((THRESHOLD..=TOKEN_MAX).contains(&filler), "{filler}");
        // Reordered words are the same words, but not the same spelling.
        let reordered = s("One BBC", "BBC One");
        assert!(
            reordered > THRESHOLD && reordered <= TOKEN_MAX,
            "{reordered}"
        );
    }

    #[test]
    fn different_channels_score_low() {
        for (guide, stream) in [
            ("BBC One", "UK: BBC Two HD"),
            ("BBC One", "UK: BBC 2"),
            ("Sky Sports 1", "Sky Sports 2"),
            ("ITV", "UK: ITV +1"),
            ("ITV +1", "UK: ITV"),
            ("ITV1 +1", "UK: ITV1 +2"),
            ("ESPN East", "US| ESPN WEST"),
            ("ESPN", "US| ESPN WEST"),
            ("BBC One Scotland", "UK: BBC One London"),
            ("BBC One", "UK: BBC One Scotland"),
            ("BBC One", "UK: BBC Radio 1"),
            ("Sky News", "UK: Sky Sports News"),
            ("Sky Sport News", "UK: Sky Sports News Extra"),
            ("E4", "UK: 4Music"),
            ("E4", "UK: E4 +1"),
            ("ITV", "UK: ITVBe"),
            ("Sky Sports F1", "UK: Sky Sports 1"),
            ("MDR Sachsen", "DE: MDR Sachsen-Anhalt"),
            ("3sat", "SAT.1"),
        ] {
            let score = s(guide, stream);
            assert!(score < THRESHOLD, "{guide} / {stream}: {score}");
        }
    }

    #[test]
    fn marks_cap_below_reporting() {
        assert!(s("BBC One", "BBC Two") <= MARK_CAP);
        assert!(s("ITV", "ITV +1") <= MARK_CAP);
        assert!(s("HBO East", "HBO West") <= MARK_CAP);
        assert!(s("HBO", "HBO West") <= MARK_CAP);
    }

    #[test]
    fn east_against_no_feed_is_doubtful() {
        let east = s("ESPN", "US| ESPN EAST");
        assert!((0.6..THRESHOLD).contains(&east), "{east}");
        assert!(s("HBO East", "US: HBO (E)") >= EXACT);
    }

    #[test]
    fn other_country_loses() {
        let mut guide = normalize("Comedy Central");
        guide.country = Some("us");
        let uk = score(&guide, &normalize("UK: Comedy Central HD"));
        let us = score(&guide, &normalize("US: Comedy Central HD"));
        let unknown = score(&guide, &normalize("Comedy Central HD"));
        assert!(
            uk < THRESHOLD && us >= EXACT && unknown >= EXACT,
            "{uk} {us} {unknown}"
        );
    }

    #[test]
    fn hand_built_long_names_do_not_panic() {
        let long = Normalized {
            tokens: (0..200).map(|i| format!("w{i}x")).collect(),
            ..Normalized::default()
        };
        let value = score(&long, &long);
        assert!((0.0..=1.0).contains(&value));
        let _ = score(&long, &normalize("w1x"));
    }

    #[test]
    fn empty_names_score_zero() {
        assert_eq!(s("", "BBC One"), 0.0);
        assert_eq!(s("BBC One", "UK: HD"), 0.0);
    }

    #[test]
    fn partial_words() {
        assert_eq!(
            partial_credit("scot", "scotland"),
            Some(ABBREVIATION_CREDIT)
        );
        assert_eq!(
            partial_credit("scotland", "scot"),
            Some(ABBREVIATION_CREDIT)
        );
        assert_eq!(partial_credit("sport", "sports"), Some(PLURAL_CREDIT));
        assert_eq!(partial_credit("sport", "sporty"), None);
        assert_eq!(partial_credit("itv", "itvbe"), None);
        assert_eq!(partial_credit("f1", "f123"), None);
        // A partial word needs a shared one beside it.
        assert!(s("franceinfo", "★★ FRANCE ★★") < 0.6);
        assert!(s("beIN Sports 2", "FR: BEIN SPORT 2") >= THRESHOLD);
        // The exact spelling beats the plural.
        assert!(
            s("Sky Sports News", "Sky Sports News") - s("Sky Sport News", "Sky Sports News") > 0.03
        );
    }
}
