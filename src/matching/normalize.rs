//! Channel-name normalisation (PROTOCOLS §4.4): turns `UK: BBC ONE (HD) (720p)`, `|UK| BBC Oneᴴᴰ`
//! and the guide's `BBC One` / `BBCOne.uk` into the same tokens (`bbc 1`).
//!
//! Dropped: country prefixes (`UK:`, `UK |`, `|UK|`, `[UK]`, `UK -`), quality and format labels
//! (HD, FHD, 1080p, HEVC, H.265, Full HD, ᴴᴰ…), panel annotations (VIP, RAW, Backup, Multi-Audio),
//! bracketed country codes, punctuation, case and diacritics (NFKD, which also folds superscripts
//! and full-width letters). Kept, because they tell channels apart: numbers (number words become
//! digits: One = 1, Uno = 1, II = 2), timeshifts (`+1`, `+ 1`, `+1 hour`, `-1`), feeds (East/West,
//! kept apart in [`Normalized::feed`] where channels have coast feeds, words elsewhere: `BBC One
//! West` is a region), US/Canadian call signs (kept apart in [`Normalized::call_sign`], with the
//! state that ends a station listing dropped) and every other word, bracketed ones included.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

use super::vocab;

/// Real channel names are short; longer input is cut so scoring stays cheap and bounded.
pub const MAX_TOKENS: usize = 24;

/// A feed of a channel broadcast on several schedules (US East and West coast feeds). `Pacific` is
/// the West feed by another word, which some guides use for a channel of its own (`SportsNet
/// Pacific` beside `SportsNet West`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    East,
    West,
    Pacific,
}

impl Feed {
    /// The coast: Pacific is the West feed.
    pub fn coast(self) -> Feed {
        match self {
            Feed::Pacific => Feed::West,
            feed => feed,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Feed::East => "east",
            Feed::West => "west",
            Feed::Pacific => "pacific",
        }
    }
}

/// The canonical form of a name: its words, then its feed's word (`hbo west`).
fn canonical(tokens: &[String], feed: Option<Feed>) -> String {
    let mut canonical = tokens.join(" ");
    if let Some(feed) = feed {
        canonical.push(' ');
        canonical.push_str(feed.word());
    }
    canonical
}

/// A normalised channel name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Normalized {
    /// Lowercase words in order; numbers as digits without leading zeros, timeshifts as `+1`.
    pub tokens: Vec<String>,
    /// The tokens joined by spaces, then the feed's word: equal canonicals name the same channel.
    pub canonical: String,
    /// The words as spelled, run together, then the feed's word: `Channel4` and `Channel 4` both
    /// give `channel4`.
    pub compact: String,
    pub feed: Option<Feed>,
    /// Canonical country code from a label prefix (`UK:`), a bracketed country (`(España)`) or a
    /// guide id (`.uk`, `@France`, `ComedyCentralGermany`).
    pub country: Option<&'static str>,
    /// A local station's call sign (`wbal`), with its subchannel when not the first (`wbal-2`).
    pub call_sign: Option<String>,
    /// Set on a guide channel from another country than its lineup (ORF in a German guide): the
    /// lineup's countries, whose labels panels may file it under.
    pub home: Vec<&'static str>,
}

/// Normalises a provider stream name or a guide display name.
pub fn normalize(name: &str) -> Normalized {
    let folded = fold(name);
    let (rest, country) = strip_prefix_labels(&folded);
    let mut normalized = tokenize(rest);
    normalized.country = country.or(normalized.country);
    normalized.regionalize();
    normalized
}

impl Normalized {
    /// Where channels have no coast feeds (`BBC One West`), East and West are words of the name.
    pub fn regionalize(&mut self) {
        let Some(feed) = self.feed else { return };
        if self.country.is_some_and(|c| !vocab::has_coast_feeds(c)) {
            // The compact spelling already ends with the word.
            self.tokens.push(feed.word().to_string());
            self.feed = None;
            self.canonical = canonical(&self.tokens, None);
        }
    }
}

/// Whether a provider stream is a section header (`----- USA -----`, `#### SPORTS ####`, `▬▬ UK
/// ▬▬`): a run of decoration at the start or the end. Headers are never channels.
pub fn is_section_header(name: &str) -> bool {
    let decoration = |c: char| {
        matches!(
            c,
            '#' | '-'
                | '='
                | '*'
                | '~'
                | '_'
                | '▬'
                | '═'
                | '─'
                | '━'
                | '•'
                | '★'
                | '☆'
                | '◆'
                | '►'
        )
    };
    let run = |chars: &mut dyn Iterator<Item = char>| {
        let mut chars = chars.skip_while(|c| c.is_whitespace());
        let Some(first) = chars.next().filter(|&c| decoration(c)) else {
            return 0;
        };
        1 + chars.take_while(|&c| c == first).count()
    };
    run(&mut name.chars()) >= 3 || run(&mut name.chars().rev()) >= 3 || {
        let trimmed = name.trim();
        run(&mut trimmed.chars()) >= 2 && run(&mut trimmed.chars().rev()) >= 2
    }
}

/// Normalises an XMLTV channel id used as a name: `BBCOne.uk` gives `bbc 1` from the UK,
/// `ITV1Plus1.uk` and `ITV1.uk@Plus1` give `itv 1 +1`, `France3.fr@Aquitaine` gives `france 3
/// aquitaine`, `SkySportsF1.uk@HD` gives `sky sports f1`. A country the id names (`@France`,
/// `ComedyCentralGermany.de`) is the channel's country, whatever the suffix says.
pub fn normalize_id(id: &str) -> Normalized {
    let id = id.trim();
    // iptv-org ids name a feed after '@' (`BBCOne.uk@HD`, `ITV3.uk@Plus1`, `beINSports1.qa@France`).
    let (id, feed) = id.split_once('@').unwrap_or((id, ""));
    let (stem, tld_country) = match id.rsplit_once('.') {
        Some((stem, tld))
            if (2..=3).contains(&tld.len()) && tld.bytes().all(|b| b.is_ascii_alphabetic()) =>
        {
            (stem, vocab::country(&tld.to_ascii_lowercase()))
        }
        _ => (id, None),
    };
    let mut words: Vec<String> = split_id_words(stem)
        .split(' ')
        .map(str::to_string)
        .collect();
    let mut country = None;
    // `ComedyCentralGermany`: the country is not part of the name (but `5USA` is).
    let named = words
        .last()
        .and_then(|w| vocab::country_name(&w.to_lowercase()));
    let lettered = |w: &String| w.chars().any(char::is_alphabetic);
    if let Some(named) = named
        && words[..words.len() - 1].iter().any(lettered)
    {
        country = Some(named);
        words.pop();
    }
    let feed_lower = feed.to_lowercase();
    if let Some(named) = vocab::country_name(&feed_lower) {
        country = Some(named);
    } else if !feed.is_empty() && !vocab::is_quality_label(&feed_lower) {
        words.push(split_id_words(feed));
    }
    let mut normalized = tokenize(&fold(&words.join(" ")));
    normalized.country = country.or(normalized.country).or(tld_country);
    normalized
}

/// The id key two XMLTV ids of the same channel share: case, spaces and quality feeds aside,
/// `BBCOne.uk` = `BBCOne.uk@HD` and `ITV1Plus1.uk` = `ITV1.uk@Plus1`.
pub fn id_key(id: &str) -> String {
    let id = id.trim().to_lowercase();
    let (base, feed) = id.split_once('@').unwrap_or((&id, ""));
    if feed.is_empty() || vocab::is_quality_label(feed) {
        return base.to_string();
    }
    match base.rsplit_once('.') {
        Some((stem, tld)) => format!("{stem}{feed}.{tld}"),
        None => format!("{base}{feed}"),
    }
}

/// A guide display name without its description: `LCI - La Chaîne Info` gives `LCI`, `Canal TCM
/// (España)` gives `Canal TCM`, `Telemundo East (National Feed)` gives `Telemundo East`. None when
/// nothing would be cut or nothing would be left.
pub fn short_form(name: &str) -> Option<String> {
    let head = name.split(" - ").next().unwrap_or(name);
    let mut out = String::with_capacity(head.len());
    let mut depth = 0u32;
    for c in head.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    let out = out.trim();
    (out != name.trim() && out.chars().any(char::is_alphanumeric)).then(|| out.to_string())
}

/// The name under a well-known rename ([`vocab::RENAMES`]): `UK: BT Sport 1` gives `tnt sports 1`.
/// The longest old name found in the words is replaced; None when there is none.
pub fn renamed(name: &Normalized) -> Option<Normalized> {
    let (start, old, new) = vocab::RENAMES
        .iter()
        .filter_map(|&(old, new)| {
            let start = name
                .tokens
                .windows(old.len())
                .position(|w| w.iter().zip(old).all(|(a, b)| a == b))?;
            Some((start, old.len(), new))
        })
        .max_by_key(|&(_, words, _)| words)?;
    let mut tokens: Vec<String> = name.tokens[..start].to_vec();
    tokens.extend(new.iter().map(|w| w.to_string()));
    tokens.extend_from_slice(&name.tokens[start + old..]);
    Some(Normalized {
        canonical: canonical(&tokens, name.feed),
        compact: tokens.concat(),
        tokens,
        ..name.clone()
    })
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
        // An unknown code (`EN`, `EX`, `PPV`, `CL ★`, `NG -`) counts only when clearly a label:
        // upper case, and bracketed, or followed by a symbol no name uses, or (two letters) by a
        // spaced dash. Known codes also take dashes, slashes and arrows.
        let letters = word.chars().count();
        let spaced_dash = separator == '-'
            && after
                .trim_start()
                .chars()
                .nth(1)
                .is_some_and(char::is_whitespace);
        let unknown_label = (2..=4).contains(&letters)
            && word.chars().all(|c| c.is_ascii_uppercase())
            && (enclosed || is_symbol_separator(separator) || (letters == 2 && spaced_dash));
        let known_label = known.is_some() && (enclosed || is_label_separator(separator));
        if !(known_label || unknown_label) {
            break;
        }
        country = country.or(known);
        rest = after;
    }
    (rest, country)
}

/// Separators that only labels use: `:`, `|` and symbols (`★`, `┃`, `»`, `➤`).
fn is_symbol_separator(c: char) -> bool {
    matches!(c, ':' | '|') || (!c.is_ascii() && !c.is_alphanumeric() && !c.is_whitespace())
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
    let mut country = None;
    let mut call_sign = None;
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
        if bracketed && let Some(named) = vocab::country(word).or(vocab::country_name(word)) {
            country = country.or(Some(named));
            continue;
        }
        // Outside brackets only a clear suffix makes a call sign ("WWE TV" is a name).
        let suffixed = vocab::is_station_suffix(next) && !matches!(next, "tv" | "ca");
        if vocab::is_call_sign(word) && (bracketed || suffixed) {
            i += station_suffix_len(&items[i..]);
            let sub = match items.get(i) {
                Some(Item::Word { text, .. }) if text.bytes().all(|b| b.is_ascii_digit()) => {
                    i += 1;
                    text.as_str()
                }
                _ => "1",
            };
            let sign = if sub == "1" {
                word.to_string()
            } else {
                format!("{word}-{sub}")
            };
            call_sign = call_sign.or(Some(sign));
            continue;
        }
        // Short feed words are other words mid-name ("Science et Vie").
        let last = !matches!(items.get(i), Some(Item::Word { .. }));
        let other_word = matches!(word, "et" | "pt" | "este" | "oeste") && !bracketed && !last;
        if let Some(f) = vocab::feed(word, bracketed).filter(|_| !other_word) {
            feed = feed.or(Some(f));
            continue;
        }
        // "AMC - Eastern Feed", "(National Feed)".
        if word == "feed" && feed.is_some() {
            continue;
        }
        let token = vocab::number_word(word)
            .or(vocab::synonym(word))
            .unwrap_or(word);
        tokens.push(token.to_string());
        spelled.push(word.to_string());
    }
    // "TRUTV USA": a trailing USA says where, not what (but "5 USA" and "USA Network" are names).
    if tokens.len() >= 2
        && tokens.last().is_some_and(|t| t == "usa")
        && tokens[tokens.len() - 2].chars().all(char::is_alphabetic)
    {
        tokens.pop();
        spelled.pop();
        country = country.or(Some("us"));
    }
    // "Cartoon Network Canada", "History2 Canada": the country is not part of the name; a trailing
    // code ("MTV UK") stays, as a filler word, but says where too.
    // ("Paris Ile-de-France" keeps its France: it is a region's name there.)
    if let [.., before, last] = tokens.as_slice()
        && tokens.len() >= 3
        && last.len() > 3
        && !tokens[..tokens.len() - 1].contains(last)
        && !matches!(before.as_str(), "de" | "of" | "du" | "di" | "del" | "and")
        && let Some(named) = vocab::country_name(last)
    {
        tokens.pop();
        spelled.pop();
        country = country.or(Some(named));
    }
    if let Some(last) = tokens.last().filter(|_| tokens.len() >= 2)
        && vocab::is_trailing_country(last)
    {
        country = country.or(vocab::country(last));
    }
    // A station listing ends with its state or province: "NBC (WBAL) Baltimore, MD".
    if call_sign.is_some()
        && tokens.len() >= 2
        && tokens.last().is_some_and(|t| vocab::is_region_code(t))
    {
        tokens.pop();
        spelled.pop();
    }
    let mut compact = spelled.concat();
    if let Some(feed) = feed {
        compact.push_str(feed.word());
    }
    Normalized {
        canonical: canonical(&tokens, feed),
        compact,
        tokens,
        feed,
        country,
        call_sign,
        home: Vec::new(),
    }
}

/// How many items a call sign's suffix takes: `DT`, `TV`, `LD` (a subchannel number after it is
/// read by the caller).
fn station_suffix_len(items: &[Item]) -> usize {
    match items.first() {
        Some(Item::Word { text, .. }) if vocab::is_station_suffix(text) => 1,
        _ => 0,
    }
}

/// Splits text into words (lowercase, see [`split_word`]), `+`, timeshifts and `&`. Apostrophes
/// join (`Children's`); every other symbol separates.
fn lex(text: &str) -> Vec<Item> {
    let chars: Vec<char> = text.chars().collect();
    let mut items = Vec::new();
    let mut word = String::new();
    let mut depth = 0u32;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
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
            '+' | '-' => {
                let spaced_before = i < 2 || chars[i - 2].is_whitespace();
                match timeshift(&chars, i, c, spaced_before) {
                    Some((shift, next)) => {
                        items.push(Item::Shift(shift));
                        i = next;
                    }
                    None if c == '+' => items.push(Item::Plus),
                    None => {}
                }
            }
            _ => {}
        }
    }
    flush_word(&mut word, depth > 0, &mut items);
    items
}

/// Reads a timeshift after the sign at `chars[at - 1]`: `+1`, `+ 1`, `+1 hour`, `+1h`, or ` -1`.
/// A spaced `+ 1` and a `-1` must end there (`+ 1 HD`, not `- 1080p`); `-1` also needs a space
/// before it, so `WBAL-DT1` and `CHBC-DT-2` are not timeshifts. Returns the shift and where
/// reading goes on.
fn timeshift(
    chars: &[char],
    at: usize,
    sign: char,
    spaced_before: bool,
) -> Option<(String, usize)> {
    let mut i = at;
    while sign == '+' && chars.get(i).is_some_and(|c| *c == ' ') {
        i += 1;
    }
    let spaced = i > at;
    let digits_start = i;
    while chars.get(i).is_some_and(char::is_ascii_digit) {
        i += 1;
    }
    let digits: String = chars[digits_start..i].iter().collect();
    if digits.is_empty() || digits.len() > 3 || (sign == '-' && !spaced_before) {
        return None;
    }
    let mut end = i;
    while chars.get(end).is_some_and(|c| *c == ' ') {
        end += 1;
    }
    let unit_start = end;
    while chars.get(end).is_some_and(|c| c.is_alphabetic()) {
        end += 1;
    }
    let unit: String = chars[unit_start..end]
        .iter()
        .collect::<String>()
        .to_lowercase();
    let ends = |at: usize| chars.get(at).is_none_or(|c| !c.is_alphanumeric());
    let next = if matches!(unit.as_str(), "h" | "hr" | "hrs" | "hour" | "hours") && ends(end) {
        end
    } else if ends(i) || (sign == '+' && !spaced) {
        i
    } else {
        return None;
    };
    let sign = if sign == '-' { "-" } else { "+" };
    Some((format!("{sign}{}", strip_zeros(&digits)), next))
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
    // A roman numeral glued to an all-caps name: `RTLII` is `RTL II`.
    if !word.chars().any(char::is_lowercase) {
        for numeral in ["iii", "ii"] {
            if let Some(stem) = lower.strip_suffix(numeral)
                && stem.len() >= 3
                && stem.bytes().all(|b| b.is_ascii_lowercase())
            {
                return vec![stem.to_string(), numeral.to_string()];
            }
        }
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
        assert_eq!(canon("24/7 COPS (ETV)"), "24 7 cops etv");
        // A bracketed call sign is the station's, apart from the words.
        let station = normalize("ABC 7 NEW YORK (WABC)");
        assert_eq!(station.canonical, "abc 7 new york");
        assert_eq!(station.call_sign.as_deref(), Some("wabc"));
        // Labels no name uses.
        assert_eq!(canon("CL ★ SKY SPORTS NEWS HD"), "sky sports news");
        assert_eq!(canon("NG - SKY NEWS"), "sky news");
        assert_eq!(canon("┃UK┃ BBC ONE ᴿᴬᵂ"), "bbc 1");
        assert_eq!(canon("UK: ITV 4 H265 50FPS"), "itv 4");
        assert_eq!(canon("LCI - LA CHAINE INFO"), "lci la chaine info");
    }

    #[test]
    fn punctuation_case_and_diacritics() {
        assert_eq!(canon("Téva"), "teva");
        assert_eq!(canon("MDR Thüringen"), "mdr thuringen");
        assert_eq!(canon("Paris Première"), "paris premiere");
        assert_eq!(canon("ＢＢＣ ＮＥＷＳ"), "bbc news");
        assert_eq!(canon("Nick Jr."), "nick junior");
        assert_eq!(canon("Science et Vie"), canon("Science & Vie"));
        assert_eq!(canon("RTLII"), "rtl 2");
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
            (east.tokens.join(" ").as_str(), east.feed),
            ("espn", Some(Feed::East))
        );
        assert_eq!(east.canonical, "espn east");
        assert_eq!(normalize("HBO WEST").feed, Some(Feed::West));
        assert_eq!(normalize("HBO Pacific").feed, Some(Feed::Pacific));
        assert_eq!(normalize("HBO (E)").feed, Some(Feed::East));
        assert_eq!(normalize("HBO (W)").feed, Some(Feed::West));
        assert_eq!(normalize("US: AMC - Eastern Feed").canonical, "amc east");
        assert_eq!(normalize("TRUTV USA - EAST").canonical, "trutv east");
        assert_eq!(normalize("TRUTV USA - EAST").country, Some("us"));
        assert_eq!(normalize("HBO").feed, None);
        // A lone E outside brackets is a name (E!).
        assert_eq!(canon("E!"), "e");
        // Where channels have no coast feeds, East and West are regions.
        let west = normalize("UK: BBC ONE WEST");
        assert_eq!((west.canonical.as_str(), west.feed), ("bbc 1 west", None));
    }

    #[test]
    fn timeshifts_in_every_spelling() {
        for name in [
            "ITV +1",
            "ITV + 1",
            "ITV +1 hour",
            "ITV +1HD",
            "ITV +1h",
            "ITV + 1 HD",
        ] {
            assert_eq!(canon(name), "itv +1", "{name}");
        }
        assert_eq!(canon("Sky Cinema -1"), "sky cinema -1");
        // Not timeshifts: a dash inside a call sign or before a quality, a plus before a word.
        assert_eq!(canon("BBC One - 1080p"), "bbc 1");
        assert_eq!(canon("SPORT TV + HD"), "sport tv plus");
        assert_eq!(canon("5 +24"), "5 +24");
    }

    #[test]
    fn station_call_signs_are_not_numbers() {
        let guide = normalize("NBC (WBAL-DT1) Baltimore, MD");
        assert_eq!(guide.canonical, "nbc baltimore");
        assert_eq!(guide.call_sign.as_deref(), Some("wbal"));
        let sub = normalize("MeTV (WBAL-TV2) Baltimore, MD");
        assert_eq!(sub.call_sign.as_deref(), Some("wbal-2"));
        assert_eq!(
            normalize("Global (CHBC-DT-2) Vernon, BC")
                .call_sign
                .as_deref(),
            Some("chbc-2")
        );
        assert_eq!(
            normalize("US: NBC 11 BALTIMORE").canonical,
            "nbc 11 baltimore"
        );
        // Only brackets or a station suffix make a call sign.
        assert_eq!(normalize("WWE NETWORK").call_sign, None);
        assert_eq!(normalize("|US| ANIMAL PLANET (WEST) HD").call_sign, None);
        assert_eq!(
            normalize("WLNY 10/55 (WLNY-DT1) New York, NY").canonical,
            "wlny 10 55 new york"
        );
    }

    #[test]
    fn section_headers() {
        for name in [
            "----- USA -----",
            "#### SPORTS ####",
            "▬▬ UK ▬▬",
            "##### |FR|HD| FRANCE #####",
            "|USA| KIDS #####",
            "*** ITALIA ***",
        ] {
            assert!(is_section_header(name), "{name}");
        }
        for name in [
            "UK: BBC One",
            "-frisbee-",
            "24/7 COPS",
            "CANAL+ -1",
            "|UK| ITV 1",
        ] {
            assert!(!is_section_header(name), "{name}");
        }
    }

    #[test]
    fn descriptions_and_renames() {
        assert_eq!(short_form("LCI - La Chaîne Info").as_deref(), Some("LCI"));
        assert_eq!(
            short_form("Canal TCM (España)").as_deref(),
            Some("Canal TCM")
        );
        assert_eq!(
            short_form("Telemundo East (National Feed)").as_deref(),
            Some("Telemundo East")
        );
        assert_eq!(short_form("BBC One"), None);
        assert_eq!(short_form("(HD)"), None);
        let bt = renamed(&normalize("|UK|FHD| BT SPORTS 1")).expect("a rename");
        assert_eq!(bt.canonical, "tnt sports 1");
        let tnt = renamed(&normalize("FR: TNT SERIES")).expect("a rename");
        assert_eq!(tnt.canonical, "warner tv", "the longest old name wins");
        assert_eq!(renamed(&normalize("UK: BBC One")), None);
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
        // Feeds are words of the name; countries and qualities are not.
        assert_eq!(normalize_id("ITV3.uk@Plus1").canonical, "itv 3 +1");
        assert_eq!(
            normalize_id("France3.fr@Aquitaine").canonical,
            "france 3 aquitaine"
        );
        assert_eq!(normalize_id("BBCOne.uk@HD").canonical, "bbc 1");
        let bein = normalize_id("beINSports1.qa@France");
        assert_eq!(
            (bein.canonical.as_str(), bein.country),
            ("be in sports 1", Some("fr"))
        );
        let germany = normalize_id("ComedyCentralGermany.de");
        assert_eq!(germany.canonical, "comedy central");
        assert_eq!(normalize_id("5USA.uk").canonical, "5 usa");
        assert_eq!(normalize_id("NationalGeographicUK.us").country, Some("uk"));
        // One channel, whatever the quality feed or the id style.
        assert_eq!(id_key(" BBCOne.uk@HD "), id_key("bbcone.uk"));
        assert_eq!(id_key("ITV1.uk@Plus1"), id_key("ITV1Plus1.uk"));
        assert_ne!(id_key("BBCOne.uk@Scotland"), id_key("BBCOne.uk"));
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
