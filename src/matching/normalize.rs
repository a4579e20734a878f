//! Channel-name normalisation (PROTOCOLS §4.4): turns `UK: BBC ONE (HD) (720p)`, `|UK| BBC Oneᴴᴰ`
//! and the guide's `BBC One` / `BBCOne.uk` into the same tokens (`bbc 1`).
//!
//! Dropped: country prefixes (`UK:`, `UK |`, `|UK|`, `[UK]`, `UK -`), quality and format labels
//! (HD, FHD, 1080p, HEVC, H.265, Full HD, ᴴᴰ…), panel annotations (VIP, RAW, Backup, Multi-Audio),
//! bracketed country codes, punctuation, case and diacritics (NFKD, which also folds superscripts
//! and full-width letters). Kept, because they tell channels apart: numbers (number words become
//! digits: One = 1, Uno = 1, II = 2), timeshifts (`+1`), feeds (East/West, kept apart in
//! [`Normalized::feed`]), regions and every other word, bracketed ones included (`(WABC)`).

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

use super::vocab;

/// Real channel names are short; longer input is cut so scoring stays cheap and bounded.
pub const MAX_TOKENS: usize = 24;

/// A feed of a channel broadcast on several schedules (US East and West coast feeds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    East,
    West,
}

/// A normalised channel name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Normalized {
    /// Lowercase words in order; numbers as digits without leading zeros, timeshifts as `+1`.
    pub tokens: Vec<String>,
    /// The tokens joined by spaces: equal canonicals name the same channel.
    pub canonical: String,
    /// The words as spelled, run together: `Channel4` and `Channel 4` both give `channel4`.
    pub compact: String,
    pub feed: Option<Feed>,
    /// Canonical country code from a label prefix (`UK:`) or a guide id suffix (`.uk`).
    pub country: Option<&'static str>,
}

/// Normalises a provider stream name or a guide display name.
pub fn normalize(name: &str) -> Normalized {
    let folded = fold(name);
    let (rest, country) = strip_prefix_labels(&folded);
    let mut normalized = tokenize(rest);
    normalized.country = country;
    normalized
}

/// Normalises an XMLTV channel id used as a name: `BBCOne.uk` gives `bbc 1` from the UK,
/// `ITV1Plus1.uk` gives `itv 1 +1`, `SkySportsF1.uk@HD` gives `sky sports f1`.
pub fn normalize_id(id: &str) -> Normalized {
    let id = id.trim();
    // iptv-org ids name a feed after '@' (`BBCOne.uk@HD`).
    let id = id.split('@').next().unwrap_or_default();
    let (stem, country) = match id.rsplit_once('.') {
        Some((stem, tld))
            if (2..=3).contains(&tld.len()) && tld.bytes().all(|b| b.is_ascii_alphabetic()) =>
        {
            (stem, vocab::country(&tld.to_ascii_lowercase()))
        }
        _ => (id, None),
    };
    let mut normalized = tokenize(&fold(&split_id_words(stem)));
    normalized.country = country;
    normalized
}

/// Splits an id into words: dots, dashes and underscores, camel case (`BBCOne` → `BBC One`,
/// `ITV1Plus1` → `ITV1 Plus1`), and
/// the ids' `Plus1` convention for timeshifts.
fn split_id_words(stem: &str) -> String {
    let chars: Vec<char> = stem.chars().collect();
    let mut spaced = String::with_capacity(stem.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        if matches!(c, '.' | '_' | '-') {
            spaced.push(' ');
            continue;
        }
        let prev = i.checked_sub(1).and_then(|p| chars.get(p)).copied();
        let next = chars.get(i + 1).copied();
        let lower_to_upper =
            prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit()) && c.is_uppercase();
        let acronym_end = prev.is_some_and(char::is_uppercase)
            && c.is_uppercase()
            && next.is_some_and(char::is_lowercase);
        if lower_to_upper || acronym_end {
            spaced.push(' ');
        }
        spaced.push(c);
    }
    spaced
        .split(' ')
        .map(
            |word| match word.strip_prefix("Plus").or(word.strip_prefix("plus")) {
                Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    format!("+{n}")
                }
                _ => word.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join(" ")
}

/// Compatibility decomposition without combining marks: é → e, ᴴᴰ → HD, ＢＢＣ → BBC. A run of
/// superscripts becomes a word of its own (`Oneᴴᴰ` → `One HD`). Case is kept for the tokenizer.
fn fold(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut in_superscript = false;
    for c in name.chars() {
        let superscript = is_modifier_letter(c);
        if superscript != in_superscript {
            out.push(' ');
            in_superscript = superscript;
        }
        if let Some(plain) = small_capital(c) {
            out.push(plain);
            continue;
        }
        decompose_compatible(c, |d| {
            if !is_combining_mark(d) {
                out.push(d);
            }
        });
    }
    out
}

/// Superscript and modifier letters, as in `ᴴᴰ`, `ᵁᴴᴰ`, `ᶠᴴᴰ`, `⁴ᴷ`.
fn is_modifier_letter(c: char) -> bool {
    matches!(c, '\u{1D2C}'..='\u{1D6A}' | '\u{1D9B}'..='\u{1DBF}' | '\u{2070}'..='\u{209F}')
}

/// Small capitals (`ʙʙᴄ ᴏɴᴇ ʜᴅ`) have no decomposition; panels use them as a font.
fn small_capital(c: char) -> Option<char> {
    Some(match c {
        'ᴀ' => 'a',
        'ʙ' => 'b',
        'ᴄ' => 'c',
        'ᴅ' => 'd',
        'ᴇ' => 'e',
        'ꜰ' => 'f',
        'ɢ' => 'g',
        'ʜ' => 'h',
        'ɪ' => 'i',
        'ᴊ' => 'j',
        'ᴋ' => 'k',
        'ʟ' => 'l',
        'ᴍ' => 'm',
        'ɴ' => 'n',
        'ᴏ' => 'o',
        'ᴘ' => 'p',
        'ʀ' => 'r',
        'ꜱ' => 's',
        'ᴛ' => 't',
        'ᴜ' => 'u',
        'ᴠ' => 'v',
        'ᴡ' => 'w',
        'ʏ' => 'y',
        'ᴢ' => 'z',
        _ => return None,
    })
}

/// Strips leading labels: country codes followed by a separator or inside brackets or pipes
/// (`UK:`, `UK |`, `|UK|`, `[UK]`, `UK -`, `UK/IE:`, `|EN|`), and `VIP`/`4K`-style labels. Returns
/// the rest and the first country recognised.
fn strip_prefix_labels(name: &str) -> (&str, Option<&'static str>) {
    let mut rest = name;
    let mut country = None;
    loop {
        let start = rest.trim_start_matches(|c: char| !c.is_alphanumeric());
        let end = start
            .find(|c: char| !c.is_alphanumeric())
            .unwrap_or(start.len());
        let (word, after) = start.split_at(end);
        if word.is_empty() || !after.contains(char::is_alphanumeric) {
            break;
        }
        let lower = word.to_lowercase();
        if vocab::is_quality_label(&lower) || vocab::is_noise_label(&lower) {
            rest = after;
            continue;
        }
        let separator = after.trim_start().chars().next().unwrap_or(' ');
        let opener = rest[..rest.len() - start.len()].trim_end().chars().last();
        let enclosed = matches!(
            (opener, separator),
            (Some('['), ']') | (Some('('), ')') | (Some('{'), '}') | (Some('|'), '|')
        );
        let known = vocab::country(&lower);
        // An unknown code (`EN`, `EX`, `PPV`) counts only when clearly a label: upper case, and
        // bracketed or followed by ':' or '|'. Known codes also take dashes, slashes and arrows.
        let unknown_label = (2..=4).contains(&word.chars().count())
            && word.chars().all(|c| c.is_ascii_uppercase())
            && (enclosed || matches!(separator, ':' | '|'));
        let known_label = known.is_some() && (enclosed || is_label_separator(separator));
        if !(known_label || unknown_label) {
            break;
        }
        country = country.or(known);
        rest = after;
    }
    (rest, country)
}

fn is_label_separator(c: char) -> bool {
    !c.is_alphanumeric()
        && !c.is_whitespace()
        && !matches!(c, '+' | '&' | '\'' | '’' | '.' | '!' | '(' | '[' | '{')
}

/// One lexical item of a name.
enum Item {
    Word {
        text: String,
        bracketed: bool,
    },
    /// `+` not followed by digits: part of a name (`Canal+`) or of a label (`HD+`).
    Plus,
    /// `+1`, `+24`: a timeshift.
    Shift(String),
    And,
}

fn tokenize(text: &str) -> Normalized {
    let items = lex(text);
    let mut tokens: Vec<String> = Vec::new();
    let mut spelled: Vec<String> = Vec::new();
    let mut feed = None;
    let mut after_label = false;
    let mut i = 0;
    while i < items.len() && tokens.len() < MAX_TOKENS {
        let item = &items[i];
        i += 1;
        let (word, bracketed) = match item {
            Item::Word { text, bracketed } => (text.as_str(), *bracketed),
            Item::Plus => {
                if !after_label {
                    tokens.push("plus".into());
                    spelled.push("plus".into());
                }
                continue;
            }
            Item::Shift(shift) => {
                tokens.push(shift.clone());
                spelled.push(shift.clone());
                after_label = false;
                continue;
            }
            Item::And => {
                tokens.push("and".into());
                spelled.push("and".into());
                after_label = false;
                continue;
            }
        };
        let next = match items.get(i) {
            Some(Item::Word { text, .. }) => text.as_str(),
            _ => "",
        };
        // Two-word labels: "Full HD", "H.265", "Multi Audio".
        if matches!(
            (word, next),
            ("full", "hd") | ("h", "264") | ("h", "265") | ("multi", "audio")
        ) {
            i += 1;
            after_label = true;
            continue;
        }
        if vocab::is_quality_label(word) || vocab::is_noise_label(word) {
            after_label = true;
            continue;
        }
        after_label = false;
        if bracketed && vocab::country(word).is_some() {
            continue;
        }
        if let Some(f) = vocab::feed(word, bracketed) {
            feed = feed.or(Some(f));
            continue;
        }
        let token = vocab::number_word(word).unwrap_or(word);
        tokens.push(token.to_string());
        spelled.push(word.to_string());
    }
    Normalized {
        canonical: tokens.join(" "),
        compact: spelled.concat(),
        tokens,
        feed,
        country: None,
    }
}

/// Splits text into words (lowercase, see [`split_word`]), `+`, timeshifts and `&`. Apostrophes
/// join (`Children's`); every other symbol separates.
fn lex(text: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut word = String::new();
    let mut depth = 0u32;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() {
            word.push(c);
            continue;
        }
        if matches!(c, '\'' | '’') {
            continue;
        }
        flush_word(&mut word, depth > 0, &mut items);
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '&' => items.push(Item::And),
            '+' if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut digits = String::new();
                while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(d);
                    chars.next();
                }
                items.push(Item::Shift(format!("+{}", strip_zeros(&digits))));
            }
            '+' => items.push(Item::Plus),
            _ => {}
        }
    }
    flush_word(&mut word, depth > 0, &mut items);
    items
}

fn flush_word(word: &mut String, bracketed: bool, items: &mut Vec<Item>) {
    if word.is_empty() {
        return;
    }
    for text in split_word(word) {
        items.push(Item::Word { text, bracketed });
    }
    word.clear();
}

/// Lowercases a word and splits it where letters meet digits (`ITV1` → `itv 1`, `5USA` →
/// `5 usa`), except after a single leading letter (`E4`, `F1`, `M6` stay whole). A quality
/// suffix glued to an all-caps word is cut off (`BBCONEHD` → `bbcone`).
fn split_word(word: &str) -> Vec<String> {
    let mut word = word;
    if !word.chars().any(char::is_lowercase) {
        for suffix in ["FHD", "UHD", "HD"] {
            if let Some(stem) = word.strip_suffix(suffix)
                && stem.len() >= 3
                && stem.bytes().all(|b| b.is_ascii_uppercase())
            {
                word = stem;
                break;
            }
        }
    }
    let lower = word.to_lowercase();
    if vocab::is_quality_label(&lower) {
        return vec![lower];
    }
    let mut runs: Vec<String> = Vec::new();
    for c in lower.chars() {
        match runs.last_mut() {
            Some(run)
                if run.chars().last().is_some_and(|p| p.is_ascii_digit()) == c.is_ascii_digit() =>
            {
                run.push(c)
            }
            _ => runs.push(c.to_string()),
        }
    }
    if runs.len() > 1
        && runs[0].chars().count() == 1
        && runs[1].starts_with(|c: char| c.is_ascii_digit())
    {
        let digits = runs.remove(1);
        runs[0].push_str(&digits);
    }
    for run in &mut runs {
        if run.starts_with(|c: char| c.is_ascii_digit()) {
            *run = strip_zeros(run).to_string();
        }
    }
    runs
}

/// `01` → `1`, `0` stays `0`.
fn strip_zeros(digits: &str) -> &str {
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() && !digits.is_empty() {
        "0"
    } else {
        trimmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(name: &str) -> String {
        normalize(name).canonical
    }

    #[test]
    fn country_prefixes_in_every_style() {
        for name in [
            "UK: BBC One",
            "UK | BBC One",
            "UK| BBC One",
            "|UK| BBC One",
            "[UK] BBC One",
            "(UK) BBC One",
            "UK - BBC One",
            "UK➤ BBC One",
            "UK :: BBC One",
            "UK/IE: BBC One",
            "uk: BBC One",
            "ᴜᴋ: ʙʙᴄ ᴏɴᴇ",
        ] {
            let n = normalize(name);
            assert_eq!(n.canonical, "bbc 1", "{name}");
            assert_eq!(n.country, Some("uk"), "{name}");
        }
        assert_eq!(normalize("US| ESPN").country, Some("us"));
        assert_eq!(normalize("GB: Dave").country, Some("uk"));
        // Unknown codes are labels only when clearly marked as such.
        let en = normalize("|EN| Top Gun");
        assert_eq!((en.canonical.as_str(), en.country), ("top gun", None));
        assert_eq!(canon("PPV: UFC 300"), "ufc 300");
        // A country code that is not a label stays (and counts little when scoring).
        assert_eq!(canon("UK BBC One"), "uk bbc 1");
        assert_eq!(canon("BBC One UK"), "bbc 1 uk");
        // Dashes after unknown words are names, not labels.
        assert_eq!(canon("BFM-TV"), "bfm tv");
        // Nothing after the label: it is all there is.
        assert_eq!(canon("UK:"), "uk");
    }

    #[test]
    fn leading_vip_and_quality_labels() {
        assert_eq!(canon("VIP Sky Sports News FHD"), "sky sports news");
        assert_eq!(canon("VIP UK: Sky News"), "sky news");
        assert_eq!(canon("4K| Sky Sports Main Event"), "sky sports main event");
        assert_eq!(normalize("VIP UK: Sky News").country, Some("uk"));
    }

    #[test]
    fn quality_and_format_labels() {
        for name in [
            "BBC One FHD",
            "BBC One UHD",
            "BBC One 4K",
            "BBC One HD",
            "BBC One SD",
            "BBC One 1080P",
            "BBC One 1080i",
            "BBC One 720p",
            "BBC One 480p",
            "BBC One 576p",
            "BBC One 2160p",
            "BBC One HEVC",
            "BBC One H264",
            "BBC One H265",
            "BBC One H.265",
            "BBC One x265",
            "BBC One FULL HD",
            "BBC One Full HD",
            "BBC Oneᴴᴰ",
            "BBC One ᵁᴴᴰ",
            "BBC One ᶠᴴᴰ",
            "BBC One (HD) (720p)",
            "BBC One [FHD]",
            "BBCONEHD",
            "BBC One HDR 50fps",
        ] {
            let n = normalize(name);
            assert!(
                n.canonical == "bbc 1" || n.compact == "bbcone",
                "{name}: {n:?}"
            );
        }
        assert_eq!(canon("Das Erste HD+"), "das erste");
        // "HD" inside words is not a label.
        assert_eq!(canon("ACHD Channel"), "achd channel");
        assert_eq!(canon("Nature HDR Showcase"), "nature showcase");
    }

    #[test]
    fn panel_annotations() {
        assert_eq!(canon("BBC ONE HD [Multi-Audio]"), "bbc 1");
        assert_eq!(canon("MUTV HD (Backup)"), "mutv");
        assert_eq!(canon("BBC ONE RAW"), "bbc 1");
        assert_eq!(canon("ESPN (US)"), "espn");
        // Bracketed words that are not labels are kept: they tell channels apart.
        assert_eq!(canon("ABC 7 NEW YORK (WABC)"), "abc 7 new york wabc");
        assert_eq!(canon("24/7 COPS (ETV)"), "24 7 cops etv");
    }

    #[test]
    fn punctuation_case_and_diacritics() {
        assert_eq!(canon("Téva"), "teva");
        assert_eq!(canon("MDR Thüringen"), "mdr thuringen");
        assert_eq!(canon("Paris Première"), "paris premiere");
        assert_eq!(canon("ＢＢＣ ＮＥＷＳ"), "bbc news");
        assert_eq!(canon("Nick Jr."), "nick jr");
        assert_eq!(canon("Children's BBC"), "childrens bbc");
        assert_eq!(
            canon("Sky Cinema Sci-Fi/Horror"),
            "sky cinema sci fi horror"
        );
        assert_eq!(canon("n-tv"), "n tv");
        assert_eq!(canon("Канал 1"), "канал 1");
    }

    #[test]
    fn ampersand_and_plus() {
        assert_eq!(canon("A&E"), "a and e");
        assert_eq!(canon("A & E"), "a and e");
        assert_eq!(canon("Canal+"), "canal plus");
        assert_eq!(canon("CANAL PLUS"), "canal plus");
        assert_eq!(canon("Ciné+ Premier"), "cine plus premier");
    }

    #[test]
    fn numbers_are_digits() {
        assert_eq!(canon("BBC One"), "bbc 1");
        assert_eq!(canon("BBC 1"), "bbc 1");
        assert_eq!(canon("BBC1"), "bbc 1");
        assert_eq!(canon("BBC Two"), "bbc 2");
        assert_eq!(canon("Rai Uno"), "rai 1");
        assert_eq!(canon("kabel eins"), "kabel 1");
        assert_eq!(canon("RTL II"), "rtl 2");
        assert_eq!(canon("RTL Zwei"), "rtl 2");
        assert_eq!(canon("NBA League Pass 03"), "nba league pass 3");
        assert_eq!(canon("5USA"), "5 usa");
        assert_eq!(canon("ITV1"), "itv 1");
        // One letter and a number are one name.
        assert_eq!(canon("E4"), "e4");
        assert_eq!(canon("Sky Sports F1"), "sky sports f1");
    }

    #[test]
    fn timeshift_is_kept() {
        assert_eq!(canon("ITV +1"), "itv +1");
        assert_eq!(canon("ITV1+1"), "itv 1 +1");
        assert_eq!(canon("5 +24"), "5 +24");
        assert_eq!(canon("E4 +01"), "e4 +1");
    }

    #[test]
    fn feeds_are_apart() {
        let east = normalize("US| ESPN EAST");
        assert_eq!(
            (east.canonical.as_str(), east.feed),
            ("espn", Some(Feed::East))
        );
        assert_eq!(normalize("HBO WEST").feed, Some(Feed::West));
        assert_eq!(normalize("HBO Pacific").feed, Some(Feed::West));
        assert_eq!(normalize("HBO (E)").feed, Some(Feed::East));
        assert_eq!(normalize("HBO (W)").feed, Some(Feed::West));
        assert_eq!(normalize("HBO").feed, None);
        // A lone E outside brackets is a name (E!).
        assert_eq!(canon("E!"), "e");
    }

    #[test]
    fn compact_joins_spelled_words() {
        assert_eq!(
            normalize("Channel 4").compact,
            normalize("Channel4").compact
        );
        assert_eq!(normalize("BFM TV").compact, normalize("BFMTV").compact);
        assert_eq!(normalize("ZDF NEO").compact, "zdfneo");
        assert_eq!(normalize("BBC One").compact, "bbcone");
    }

    #[test]
    fn ids_as_names() {
        let one = normalize_id("BBCOne.uk");
        assert_eq!((one.canonical.as_str(), one.country), ("bbc 1", Some("uk")));
        assert_eq!(normalize_id("bbcone.uk").compact, "bbcone");
        assert_eq!(normalize_id("ITV1Plus1.uk").canonical, "itv 1 +1");
        assert_eq!(normalize_id("SkySportsF1.uk@HD").canonical, "sky sports f1");
        assert_eq!(normalize_id("5USA.uk").canonical, "5 usa");
        assert_eq!(normalize_id("CanalPlus.fr").canonical, "canal plus");
        assert_eq!(normalize_id("HBOEast.us").feed, Some(Feed::East));
        assert_eq!(normalize_id("Sky.Sports.News").canonical, "sky sports news");
        assert_eq!(normalize_id("bbc1.tv").country, None);
    }

    #[test]
    fn odd_input_does_not_panic() {
        for name in [
            "", " ", "+", "+1", "++", "((((", "))))", "|||", "HD", "UK:", "ᴴᴰ", "\u{0301}", "0",
            "00", "+0000", "ǅ", "İ", "ß", "ﬁ", "😀 HD",
        ] {
            let _ = normalize(name);
            let _ = normalize_id(name);
        }
        let long = "word ".repeat(1000);
        assert_eq!(normalize(&long).tokens.len(), MAX_TOKENS);
        assert!(normalize("HD").tokens.is_empty());
    }
}
