//! The words that mean something to matching: labels to drop, number words, feeds, country codes
//! and filler words (PROTOCOLS §4.4). Everything here is lowercase ASCII.

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
        "east" | "et" => Some(Feed::East),
        "west" | "pt" | "pacific" => Some(Feed::West),
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
        "es" | "esp" => "es",
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
    matches!(word, "the" | "tv" | "channel" | "network" | "and") || is_trailing_country(word)
}
