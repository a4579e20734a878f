//! How well a guide channel name and a stream name agree, in [0, 1].
//!
//! Equal canonicals score [`EXACT`], names equal once run together (`Channel4`) [`COMPACT`], and
//! anything else a weighted token-set similarity (Jaccard) below [`TOKEN_MAX`]. Words that tell
//! channels apart override similarity: a different number or timeshift (`BBC One`/`BBC Two`,
//! `ITV`/`ITV +1`) or feed (East/West) caps the score far below any threshold; East against no
//! feed caps it at [`EAST_CAP`], since a US channel's national feed is its East one. Local
//! stations compare by call sign when both names have one, else by their words without the
//! virtual channel number. Two names from different countries (`UK:` prefix, `.us` id) lose
//! [`COUNTRY_PENALTY`], or only [`SOFT_COUNTRY_PENALTY`] when the guide channel is a foreign one
//! in its lineup and the stream is filed under the lineup's country (ORF under `DE:`).

use std::borrow::Cow;

use super::normalize::{Feed, Normalized};
use super::vocab;

pub const EXACT: f32 = 0.99;
pub const COMPACT: f32 = 0.97;
/// Below [`COMPACT`], so a textual equality always wins over a merely similar name.
pub const TOKEN_MAX: f32 = 0.95;
/// A number, timeshift or feed mismatch: never a match, not worth reporting.
pub const MARK_CAP: f32 = 0.3;
/// East against no feed: the same channel (a US channel's national feed is its East one), a little
/// less surely than equal names, so an exact East name still wins.
pub const EAST_CAP: f32 = 0.9;
pub const COUNTRY_PENALTY: f32 = 0.2;
/// A foreign channel of a lineup, named exactly, under the lineup's country label: panels file
/// them either way.
pub const SOFT_COUNTRY_PENALTY: f32 = 0.05;
/// Filler words ("the", "tv", "channel", a trailing "UK") weigh this much; others weigh 1.
pub const FILLER_WEIGHT: f32 = 0.1;
/// A name matched through an acronym (`TCM`) counts this much of the match.
const ACRONYM_CREDIT: f32 = 0.95;
/// `Sports` for `Sport` counts for this much of a match.
const PLURAL_CREDIT: f32 = 0.9;
/// A word that abbreviates another (`Scot` for `Scotland`) counts for this much of a match.
const ABBREVIATION_CREDIT: f32 = 0.85;

/// Scores a guide channel name against a stream name.
pub fn score(guide: &Normalized, stream: &Normalized) -> f32 {
    if guide.tokens.is_empty() || stream.tokens.is_empty() {
        return 0.0;
    }
    let stream = regional_for(guide, stream);
    let mut score = if guide.call_sign.is_some() || stream.call_sign.is_some() {
        local_score(guide, &stream)
    } else {
        name_score(guide, &stream)
    };
    score = score.min(feed_cap(guide.feed, stream.feed));
    score -= country_penalty(guide, &stream, score);
    score.clamp(0.0, 1.0)
}

/// An unlabelled stream's East or West is a region when the guide channel's country has no coast
/// feeds (`BBC One West HD` against the UK's `BBC One West`).
fn regional_for<'a>(guide: &Normalized, stream: &'a Normalized) -> Cow<'a, Normalized> {
    let regional_guide =
        guide.feed.is_none() && guide.country.is_some_and(|c| !vocab::has_coast_feeds(c));
    if stream.feed.is_none() || stream.country.is_some() || !regional_guide {
        return Cow::Borrowed(stream);
    }
    let mut copy = stream.clone();
    copy.country = guide.country;
    copy.regionalize();
    copy.country = None;
    Cow::Owned(copy)
}

fn name_score(guide: &Normalized, stream: &Normalized) -> f32 {
    if guide.canonical == stream.canonical {
        return EXACT;
    }
    if guide.compact == stream.compact {
        return COMPACT;
    }
    // Panels abbreviate what guides spell out (`FDF`, `PARIS IDF`), rarely the other way round.
    let (g, s) = (&guide.tokens, &stream.tokens);
    let spelled_out = expand_acronym(s, g).map_or(0.0, |s| similar(g, &s) * ACRONYM_CREDIT);
    similar(g, s).max(spelled_out)
}

/// Token similarity, capped by whether the numbers and timeshifts agree.
fn similar(guide: &[String], stream: &[String]) -> f32 {
    let cap = if same_marks(guide, stream) {
        TOKEN_MAX
    } else {
        MARK_CAP
    };
    token_similarity(guide, stream).min(cap)
}

/// Local stations: equal call signs are the same station; otherwise the words decide, without the
/// virtual channel number one name gives and the other does not (`NBC 11 Baltimore` is `NBC
/// (WBAL) Baltimore, MD`).
fn local_score(guide: &Normalized, stream: &Normalized) -> f32 {
    if !same_timeshift(&guide.tokens, &stream.tokens) {
        return MARK_CAP;
    }
    if let (Some(a), Some(b)) = (&guide.call_sign, &stream.call_sign) {
        return if a == b { TOKEN_MAX } else { MARK_CAP };
    }
    // `PBS 13 WNET New York`: the call sign is there, unbracketed.
    let named = |sign: &Option<String>, other: &Normalized| {
        sign.as_ref()
            .is_some_and(|sign| other.tokens.contains(sign))
    };
    if named(&guide.call_sign, stream) || named(&stream.call_sign, guide) {
        return TOKEN_MAX;
    }
    let words = |n: &Normalized| -> Vec<String> {
        n.tokens
            .iter()
            .filter(|t| !t.bytes().all(|b| b.is_ascii_digit()))
            .cloned()
            .collect()
    };
    let (a, b) = (words(guide), words(stream));
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    token_similarity(&a, &b).min(TOKEN_MAX)
}

/// The penalty for names from two countries. The soft one is only for a match otherwise certain
/// (equal names): a merely similar name under the lineup's label is as likely that country's own
/// channel (`UK: Sky Sports 1` is not Italy's `Sky Sport Uno`).
fn country_penalty(guide: &Normalized, stream: &Normalized, score: f32) -> f32 {
    match (guide.country, stream.country) {
        (Some(a), Some(b)) if a != b && guide.home.contains(&b) && score >= COMPACT => {
            SOFT_COUNTRY_PENALTY
        }
        (Some(a), Some(b)) if a != b => COUNTRY_PENALTY,
        _ => 0.0,
    }
}

/// The highest score two names can reach given their feeds.
pub fn feed_cap(guide: Option<Feed>, stream: Option<Feed>) -> f32 {
    match (guide.map(Feed::coast), stream.map(Feed::coast)) {
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

/// Whether the timeshifts (`+1`, `-1`) of two names agree.
pub fn same_timeshift(a: &[String], b: &[String]) -> bool {
    let shift = |t: &&String| t.starts_with(['+', '-']);
    a.iter().filter(shift).all(|m| b.contains(m)) && b.iter().filter(shift).all(|m| a.contains(m))
}

fn weight(token: &str) -> f32 {
    if vocab::is_filler(token) {
        FILLER_WEIGHT
    } else {
        1.0
    }
}

/// Weighted Jaccard similarity of a guide name's tokens `a` and a stream name's tokens `b`. Words
/// that differ only by a plural `s`, abbreviate one another (`scot`/`scotland`) or by one typo
/// are partial matches, but only next to a word both names share: on its own, `France` is not
/// `franceinfo`.
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
    // Partial matches need a shared word that is not a filler: `W Network` is not `WWE Network`.
    let shared = a.iter().any(|t| !vocab::is_filler(t) && b.contains(t));
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

/// `fdf` for `Factoría de Ficción`, `idf` for `Ile de France`, `ci` for `Crime Investigation`:
/// `a` with a word that is the initials of two or more consecutive words of `b` (not all filler)
/// replaced by those words. None when `a` has no such word.
fn expand_acronym(a: &[String], b: &[String]) -> Option<Vec<String>> {
    a.iter().enumerate().find_map(|(i, t)| {
        let letters = t.len();
        let acronym = (2..=5).contains(&letters)
            && t.bytes().all(|c| c.is_ascii_lowercase())
            && !vocab::is_filler(t)
            && !b.contains(t);
        if !acronym {
            return None;
        }
        let run = b.windows(letters).find(|run| {
            run.iter().zip(t.chars()).all(|(w, c)| w.starts_with(c))
                && !run.iter().all(|w| vocab::is_filler(w))
        })?;
        let mut out = a[..i].to_vec();
        out.extend_from_slice(run);
        out.extend_from_slice(&a[i + 1..]);
        Some(out)
    })
}

/// How much of a match a guide name's word and a different stream name's word are: a plural `s`
/// or a spelling's `e` (`premier`, `premiere`) ([`PLURAL_CREDIT`]); a typo, one letter off in a
/// long word that starts the same; or the stream's abbreviation of the guide's word, a prefix of
/// at least four letters and two letters shorter (`scot` for `scotland`) or an initial (`R.` for
/// `Real`) ([`ABBREVIATION_CREDIT`]). A stream word that only starts with the guide's is another
/// word (`Seriesmania` is not `Series`).
pub fn partial_credit(guide: &str, stream: &str) -> Option<f32> {
    let (short, long) = if guide.len() <= stream.len() {
        (guide, stream)
    } else {
        (stream, guide)
    };
    let letters = |s: &str| s.chars().all(char::is_alphabetic);
    if !letters(long) {
        return None;
    }
    let count = |s: &str| {
        if s.is_ascii() {
            s.len()
        } else {
            s.chars().count()
        }
    };
    let (short_len, long_len) = (count(short), count(long));
    let abbreviated = short == stream;
    if short_len == 1 {
        let initial = abbreviated && long_len >= 3 && letters(short) && long.starts_with(short);
        return initial.then_some(ABBREVIATION_CREDIT);
    }
    if short_len < 4 {
        return None;
    }
    if !long.starts_with(short) {
        let typo = short_len >= 6
            && letters(short)
            && short.chars().take(4).eq(long.chars().take(4))
            && one_edit_apart(short, long);
        return typo.then_some(ABBREVIATION_CREDIT);
    }
    match long_len - short_len {
        1 if long.ends_with(['s', 'e']) => Some(PLURAL_CREDIT),
        2.. if abbreviated => Some(ABBREVIATION_CREDIT),
        _ => None,
    }
}

/// Whether `short` becomes `long` by one substitution or one insertion.
fn one_edit_apart(short: &str, long: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (short.chars().collect(), long.chars().collect());
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    match b.len().checked_sub(a.len()) {
        Some(0) => a[prefix + 1..] == b[prefix + 1..],
        Some(1) => a[prefix..] == b[prefix + 1..],
        _ => false,
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
    fn east_against_no_feed_is_the_national_feed() {
        let east = s("ESPN", "US| ESPN EAST");
        assert!((THRESHOLD..EXACT).contains(&east), "{east}");
        assert!(s("TNT East", "TNT") == EAST_CAP);
        assert!(s("HBO East", "US: HBO (E)") >= EXACT);
        // Pacific is a West feed, and a word that tells a guide's West from its Pacific.
        assert!(s("HBO West", "US: HBO PACIFIC") >= THRESHOLD);
        assert!(
            s("SportsNet Pacific", "CA: SPORTSNET PACIFIC")
                - s("SportsNet West", "CA: SPORTSNET PACIFIC")
                > 0.03
        );
        // In the UK, West is a region, labelled or not.
        let mut west = normalize("BBC One West");
        west.country = Some("uk");
        west.regionalize();
        assert!(score(&west, &normalize("BBC One West HD")) >= EXACT);
        assert!(score(&west, &normalize("UK: BBC ONE")) < THRESHOLD);
    }

    #[test]
    fn local_stations() {
        let wbal = normalize("NBC (WBAL-DT1) Baltimore, MD");
        for stream in [
            "US: NBC 11 BALTIMORE",
            "US: NBC (WBAL) Baltimore",
            "NBC 11 (WBAL) HD",
        ] {
            let value = score(&wbal, &normalize(stream));
            assert!(value >= THRESHOLD, "{stream}: {value}");
        }
        for stream in [
            "US: ABC 2 BALTIMORE",
            "US: NBC 47 SALISBURY",
            "US: NBC 4 (WNBC) NEW YORK",
        ] {
            let value = score(&wbal, &normalize(stream));
            assert!(value < THRESHOLD, "{stream}: {value}");
        }
        // A subchannel is another station.
        let metv = normalize("MeTV (WBAL-TV2) Baltimore, MD");
        assert!(score(&metv, &normalize("NBC (WBAL) Baltimore")) <= MARK_CAP);
        assert!(s("PBS (WNET-DT1) New York, NY", "US: PBS 13 WNET NEW YORK") >= THRESHOLD);
    }

    #[test]
    fn foreign_channels_of_a_lineup() {
        let mut orf = normalize_id("ORF1.at");
        orf.home = vec!["de"];
        let mut orf_name = normalize("ORF 1");
        orf_name.country = Some("at");
        orf_name.home = vec!["de"];
        // Filed under the lineup's country, an equal name still counts.
        assert!(score(&orf_name, &normalize("DE: ORF 1 HD")) >= THRESHOLD);
        assert!(score(&orf, &normalize("AT: ORF 1")) >= EXACT);
        // Another country's label is the full penalty, and so is a merely similar name.
        assert!(score(&orf_name, &normalize("CH: ORF 1")) < THRESHOLD);
        let mut uno = normalize("Sky Sport Uno");
        uno.country = Some("it");
        uno.home = vec!["uk"];
        assert!(score(&uno, &normalize("UK: Sky Sports 1 HD")) < THRESHOLD);
    }

    #[test]
    fn acronyms_initials_and_typos() {
        assert!(s("Factoría de Ficción", "|SP| FDF") >= THRESHOLD);
        assert!(s("France 3 Paris Ile-de-France", "FR: FRANCE 3 PARIS IDF") >= THRESHOLD);
        assert!(s("Real Madrid TV", "|SP| R. MADRID TV") >= THRESHOLD);
        assert!(s("Sky Cinema Suspense", "|IT| SKY CINEMA SUSPENCE HD") >= THRESHOLD);
        // Panels abbreviate; a guide's acronym is not the stream's words.
        assert!(s("SEC Network", "|US| STARZ ENCORE CLASSIC HD") < THRESHOLD);
        assert!(s("WWE Network", "CA: W NETWORK") < THRESHOLD);
        assert!(s("M+ Series", "|SP| M.SERIESMANIA HD") < THRESHOLD);
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
        // Guide word first, stream word second.
        assert_eq!(
            partial_credit("scotland", "scot"),
            Some(ABBREVIATION_CREDIT)
        );
        assert_eq!(partial_credit("series", "seriesmania"), None);
        assert_eq!(partial_credit("sport", "sports"), Some(PLURAL_CREDIT));
        assert_eq!(partial_credit("sports", "sport"), Some(PLURAL_CREDIT));
        assert_eq!(partial_credit("premiere", "premier"), Some(PLURAL_CREDIT));
        assert_eq!(partial_credit("sport", "sporty"), None);
        assert_eq!(partial_credit("itv", "itvbe"), None);
        assert_eq!(partial_credit("f1", "f123"), None);
        assert_eq!(partial_credit("real", "r"), Some(ABBREVIATION_CREDIT));
        assert_eq!(partial_credit("r", "real"), None);
        assert_eq!(
            partial_credit("cartoonito", "cartonito"),
            Some(ABBREVIATION_CREDIT)
        );
        assert_eq!(
            partial_credit("suspense", "suspence"),
            Some(ABBREVIATION_CREDIT)
        );
        assert_eq!(partial_credit("suspense", "suspenders"), None);
        // A partial word needs a shared one beside it.
        assert!(s("franceinfo", "★★ FRANCE ★★") < 0.6);
        assert!(s("beIN Sports 2", "FR: BEIN SPORT 2") >= THRESHOLD);
        // The exact spelling beats the plural.
        assert!(
            s("Sky Sports News", "Sky Sports News") - s("Sky Sport News", "Sky Sports News") > 0.03
        );
    }
}
