//! The words that mean something to matching: labels to drop, number words, feeds, country codes
//! and names, filler words, US/Canadian station words and the renames of well-known channels
//! (PROTOCOLS §4.4). Everything here is lowercase ASCII.

use super::normalize::Feed;

/// Quality and format labels: they say how a stream is encoded, not which channel it is.
pub fn is_quality_label(word: &str) -> bool {
    matches!(
        word,
        "hd" | "fhd"
            | "uhd"
            | "sd"
            | "4k"
            | "8k"
            | "hq"
            | "lq"
            | "hdtv"
            | "sdtv"
            | "uhdtv"
            | "fullhd"
            | "2160p"
            | "1080p"
            | "1080i"
            | "720p"
            | "576p"
            | "576i"
            | "480p"
            | "480i"
            | "2160"
            | "1080"
            | "720"
            | "576"
            | "480"
            | "hevc"
            | "h264"
            | "h265"
            | "x264"
            | "x265"
            | "avc"
            | "hdr"
            | "hdr10"
            | "sdr"
            | "25fps"
            | "50fps"
            | "60fps"
    )
}

/// Panel annotations that are not part of a channel's name.
pub fn is_noise_label(word: &str) -> bool {
    matches!(
        word,
        "vip" | "raw" | "backup" | "bkp" | "alt" | "multi" | "dolby" | "atmos" | "ac3" | "eac3"
    )
}

/// Words that stand for the same word in channel names ("Nick Jr" / "Nick Junior").
pub fn synonym(word: &str) -> Option<&'static str> {
    Some(match word {
        "jr" => "junior",
        "ch" => "channel",
        "intl" => "international",
        // "and" in French, German, Dutch and Spanish names (`Science & Vie`, `Science et Vie`).
        "et" | "und" | "en" | "y" => "and",
        _ => return None,
    })
}

/// Number words providers and guides use interchangeably with digits ("BBC One" / "BBC 1",
/// "Rai Uno", "kabel eins", "RTL II").
pub fn number_word(word: &str) -> Option<&'static str> {
    Some(match word {
        "one" | "uno" | "eins" => "1",
        "two" | "due" | "zwei" | "ii" => "2",
        "three" | "tre" | "drei" | "iii" => "3",
        "four" => "4",
        "five" => "5",
        "six" => "6",
        "seven" => "7",
        "eight" => "8",
        "nine" => "9",
        "ten" => "10",
        _ => return None,
    })
}

/// Feed words (US East/West feeds). `bracketed` allows the one-letter forms of `HBO (E)`.
pub fn feed(word: &str, bracketed: bool) -> Option<Feed> {
    match word {
        "east" | "et" | "eastern" | "este" => Some(Feed::East),
        "west" | "pt" | "western" | "oeste" => Some(Feed::West),
        "pacific" => Some(Feed::Pacific),
        "e" if bracketed => Some(Feed::East),
        "w" if bracketed => Some(Feed::West),
        _ => None,
    }
}

/// Country and region codes used as labels (`UK:`, `|FR|`, `[DE]`, guide ids' `.uk`), mapped
/// to one canonical code per country.
pub fn country(word: &str) -> Option<&'static str> {
    Some(match word {
        "uk" | "gb" | "gbr" => "uk",
        "us" | "usa" => "us",
        "ca" | "can" => "ca",
        "fr" | "fra" => "fr",
        "de" | "ger" | "deu" => "de",
        "it" | "ita" => "it",
        "es" | "esp" | "sp" => "es",
        "nl" | "ned" | "nld" => "nl",
        "be" | "bel" => "be",
        "ch" | "sui" => "ch",
        "at" | "aut" => "at",
        "ie" | "irl" => "ie",
        "pl" | "pol" => "pl",
        "pt" | "por" => "pt",
        "se" | "swe" => "se",
        "no" | "nor" => "no",
        "dk" | "den" => "dk",
        "fi" | "fin" => "fi",
        "au" | "aus" => "au",
        "nz" => "nz",
        "in" | "ind" => "in",
        "br" | "bra" => "br",
        "mx" | "mex" => "mx",
        "ar" => "ar",
        "tr" | "tur" => "tr",
        "gr" | "gre" => "gr",
        "ro" | "rom" => "ro",
        "ru" | "rus" => "ru",
        "ua" => "ua",
        "al" => "al",
        "rs" => "rs",
        "hr" => "hr",
        "ba" => "ba",
        "si" => "si",
        "bg" => "bg",
        "hu" => "hu",
        "cz" => "cz",
        "sk" => "sk",
        "il" => "il",
        "ae" => "ae",
        "sa" => "sa",
        "qa" => "qa",
        "eg" => "eg",
        "ma" => "ma",
        "za" => "za",
        "pk" => "pk",
        "ph" => "ph",
        "jp" => "jp",
        "kr" => "kr",
        _ => return None,
    })
}

/// Countries where East and West are the feeds of one channel; elsewhere they name regions (`BBC
/// One West`).
pub fn has_coast_feeds(country: &str) -> bool {
    matches!(country, "us" | "ca" | "mx")
}

/// Country names as XMLTV ids and feeds spell them (`ComedyCentralGermany.de`, `@France`) and as
/// guides add them (`Canal TCM (España)`).
pub fn country_name(word: &str) -> Option<&'static str> {
    Some(match word {
        "uk" | "britain" => "uk",
        "usa" => "us",
        "canada" => "ca",
        "france" => "fr",
        "germany" | "deutschland" => "de",
        "italy" | "italia" => "it",
        "spain" | "espana" => "es",
        "netherlands" | "holland" | "nederland" => "nl",
        "belgium" | "belgique" => "be",
        "switzerland" | "schweiz" | "suisse" => "ch",
        "austria" | "osterreich" => "at",
        "ireland" => "ie",
        "portugal" => "pt",
        "poland" | "polska" => "pl",
        _ => return None,
    })
}

/// Country codes that may also trail a name ("Comedy Central UK"); codes that are common words
/// ("it", "no", "in", "be", "at"), feeds ("pt") or names ("5USA", "USA Network") are left out.
pub fn is_trailing_country(word: &str) -> bool {
    matches!(
        word,
        "uk" | "gb" | "us" | "ca" | "fr" | "de" | "nl" | "es" | "pl" | "se" | "dk" | "ie" | "au"
    )
}

/// Words that add little to a name: a difference in them weighs less than in other words.
pub fn is_filler(word: &str) -> bool {
    matches!(
        word,
        "the"
            | "tv"
            | "channel"
            | "network"
            | "and"
            | "television"
            | "entertainment"
            | "canal"
            | "kanal"
            | "chaine"
            | "fernsehen"
    ) || is_trailing_country(word)
}

/// A US or Canadian call sign (`WBAL`, `WJZ`, `KABC`, `CFTO`): the letters alone look like words,
/// so callers only ask about bracketed words or words before a `-DT`-style suffix.
pub fn is_call_sign(word: &str) -> bool {
    let len = word.len();
    feed(word, false).is_none()
        && !matches!(word, "kids" | "wild" | "kino" | "wwe")
        && word.bytes().all(|b| b.is_ascii_lowercase())
        && match word.as_bytes().first() {
            Some(b'w' | b'k') => (3..=4).contains(&len),
            Some(b'c') => len == 4,
            _ => false,
        }
}

/// The suffixes of a station's call sign (`WBAL-DT1`, `WMAR-TV2`, `WGDV-LD`, `WMBQ-CD`): a digit
/// after them is the subchannel, not a channel number.
pub fn is_station_suffix(word: &str) -> bool {
    let letters = word.trim_end_matches(|c: char| c.is_ascii_digit());
    matches!(letters, "dt" | "tv" | "ld" | "lp" | "cd" | "ca")
}

/// US state and Canadian province codes, as station listings end (`Baltimore, MD`, `Toronto ON`).
pub fn is_region_code(word: &str) -> bool {
    matches!(
        word,
        "al" | "ak"
            | "az"
            | "ar"
            | "ca"
            | "co"
            | "ct"
            | "de"
            | "dc"
            | "fl"
            | "ga"
            | "hi"
            | "id"
            | "il"
            | "in"
            | "ia"
            | "ks"
            | "ky"
            | "la"
            | "me"
            | "md"
            | "ma"
            | "mi"
            | "mn"
            | "ms"
            | "mo"
            | "mt"
            | "ne"
            | "nv"
            | "nh"
            | "nj"
            | "nm"
            | "ny"
            | "nc"
            | "nd"
            | "oh"
            | "ok"
            | "or"
            | "pa"
            | "ri"
            | "sc"
            | "sd"
            | "tn"
            | "tx"
            | "ut"
            | "vt"
            | "va"
            | "wa"
            | "wv"
            | "wi"
            | "wy"
            | "on"
            | "qc"
            | "bc"
            | "ab"
            | "mb"
            | "sk"
            | "ns"
            | "nb"
            | "pe"
            | "nl"
    )
}

/// Well-known renames, old name to new, as normalised words. Panels keep old names for years;
/// guides move on. Each is a rename of the same channel, not a replacement by another one.
pub const RENAMES: &[(&[&str], &[&str])] = &[
    // BT Sport became TNT Sports (UK, 2023).
    (&["bt", "sport"], &["tnt", "sports"]),
    (&["bt", "sports"], &["tnt", "sports"]),
    // Sky Movies became Sky Cinema (UK, 2016).
    (&["sky", "movies"], &["sky", "cinema"]),
    // TNT channels became Warner TV (France 2021, Germany 2021, Spain 2022); US TNT stays TNT,
    // and the rename is only tried next to the name as spelled.
    (&["tnt"], &["warner", "tv"]),
    (&["tnt", "series"], &["warner", "tv"]),
    // RTLplus became RTLup (Germany, 2021); RTL Nitro became NITRO; HSE24 became HSE (2020).
    (&["rtl", "plus"], &["rtlup"]),
    (&["rtl", "nitro"], &["nitro"]),
    (&["hse", "24"], &["hse"]),
    // L'Équipe 21 became L'Équipe (France, 2016).
    (&["equipe", "21"], &["lequipe"]),
    // Space became CTV Sci-Fi Channel (Canada, 2019).
    (&["space"], &["ctv", "sci", "fi", "channel"]),
    // Spike became Paramount Network (2018).
    (&["spike"], &["paramount", "network"]),
    // Radio-Canada's channels took the ICI brand (2013).
    (&["rdi"], &["ici", "rdi"]),
    // Short forms panels use for long names (`M.` for Movistar's `M+`).
    (&["nat", "geo"], &["national", "geographic"]),
    (&["ngc"], &["national", "geographic"]),
    (&["pro", "7"], &["prosieben"]),
    (&["ard"], &["das", "erste"]),
    (&["ny"], &["new", "york"]),
    (&["movistar"], &["m", "plus"]),
    (&["m"], &["m", "plus"]),
];
