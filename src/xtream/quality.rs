//! The quality tier of a provider stream, parsed from its name (SPEC §7 Selection).
//!
//! Providers label quality in the name: `UK: BBC ONE (HD) (720p)`, `Sky Sports FHD`, `NBA 4K`,
//! `Canal+ ᵁᴴᴰ`. Tiers rank 4K > FHD > HD > SD; a name with no label is SD. When a name carries
//! several labels the highest wins. HEVC is noted as a tag, not a tier.

use std::fmt;

/// Quality tiers in ascending order, so `Ord` ranks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    Sd = 1,
    Hd = 2,
    Fhd = 3,
    Uhd = 4,
}

impl Tier {
    pub fn label(self) -> &'static str {
        match self {
            Tier::Sd => "SD",
            Tier::Hd => "HD",
            Tier::Fhd => "FHD",
            Tier::Uhd => "4K",
        }
    }

    /// The rank stored in the database (higher is better).
    pub fn rank(self) -> i64 {
        self as i64
    }

    pub fn from_rank(rank: i64) -> Tier {
        match rank {
            4.. => Tier::Uhd,
            3 => Tier::Fhd,
            2 => Tier::Hd,
            _ => Tier::Sd,
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What a stream name says about its quality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quality {
    pub tier: Tier,
    /// The labels found in the name, normalised (`4K`, `FHD`, `HD`, `SD`, `HEVC`), in order of
    /// appearance and without repeats: the `qualities` JSON column.
    pub labels: Vec<&'static str>,
}

/// Parses the quality labels out of a stream name.
pub fn parse(name: &str) -> Quality {
    let normalised = fold_superscripts(name).to_ascii_uppercase();
    let tokens: Vec<&str> = normalised
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .collect();
    let mut tier = None;
    let mut labels = Vec::new();
    let mut note = |label: &'static str, found: Option<Tier>| {
        if !labels.contains(&label) {
            labels.push(label);
        }
        if found > tier {
            tier = found;
        }
    };
    let mut previous = "";
    for (i, &token) in tokens.iter().enumerate() {
        let next = tokens.get(i + 1).copied().unwrap_or("");
        match token {
            "UHD" | "4K" | "2160P" | "2160" | "8K" => note("4K", Some(Tier::Uhd)),
            "FHD" | "1080P" | "1080I" | "1080" | "FULLHD" => note("FHD", Some(Tier::Fhd)),
            "HD" if previous == "FULL" => note("FHD", Some(Tier::Fhd)),
            "HD" | "720P" | "720" | "HDTV" => note("HD", Some(Tier::Hd)),
            "SD" | "576P" | "576I" | "480P" | "480I" | "576" | "480" | "SDTV" => {
                note("SD", Some(Tier::Sd))
            }
            "HEVC" | "H265" | "X265" => note("HEVC", None),
            // "H.265" splits into "H" and "265".
            "H" if next == "265" => note("HEVC", None),
            _ => {}
        }
        previous = token;
    }
    Quality {
        tier: tier.unwrap_or(Tier::Sd),
        labels,
    }
}

/// Maps the modifier letters providers use for labels (ᴴᴰ, ᵁᴴᴰ, ᶠᴴᴰ, ⁴ᴷ) to plain ASCII.
fn fold_superscripts(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'ᴴ' => 'H',
            'ᴰ' => 'D',
            'ᵁ' => 'U',
            'ᶠ' => 'F',
            'ˢ' => 'S',
            'ᴷ' => 'K',
            '⁴' => '4',
            'ᴱ' => 'E',
            'ⱽ' => 'V',
            'ᶜ' => 'C',
            'ᴿ' => 'R',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(name: &str) -> Tier {
        parse(name).tier
    }

    #[test]
    fn real_world_names() {
        assert_eq!(tier("UK: BBC ONE (HD) (720p)"), Tier::Hd);
        assert_eq!(tier("UK: BBC One Scot FHD (1080p)"), Tier::Fhd);
        assert_eq!(tier("VIP Sky Sports News FHD"), Tier::Fhd);
        assert_eq!(tier("24/7 COPS (ETV)"), Tier::Sd);
        assert_eq!(tier("US| ESPN 4K"), Tier::Uhd);
        assert_eq!(tier("|FR| TF1 UHD"), Tier::Uhd);
        assert_eq!(tier("[DE] Das Erste HD+"), Tier::Hd);
        assert_eq!(tier("NL: NPO 1 SD"), Tier::Sd);
        assert_eq!(tier("CA: CBC Toronto 1080i"), Tier::Fhd);
        assert_eq!(tier("IT: Rai 1 Full HD"), Tier::Fhd);
        assert_eq!(tier("UK: Sky Cinema Premiere 2160p HEVC"), Tier::Uhd);
        assert_eq!(tier("PL: TVP 1 576p"), Tier::Sd);
        assert_eq!(tier("FR: Canal+ ᵁᴴᴰ"), Tier::Uhd);
        assert_eq!(tier("FR: Canal+ ᴴᴰ"), Tier::Hd);
        assert_eq!(tier("ES: La 1 ᶠᴴᴰ"), Tier::Fhd);
    }

    #[test]
    fn unlabelled_and_lookalikes_are_sd() {
        assert_eq!(tier("BBC News"), Tier::Sd);
        assert_eq!(tier(""), Tier::Sd);
        // HDR, HDMI and words that merely contain "HD" are not labels.
        assert_eq!(tier("Nature HDR Showcase"), Tier::Sd);
        assert_eq!(tier("SHDTV Shop"), Tier::Sd);
        assert_eq!(tier("ACHD Channel"), Tier::Sd);
    }

    #[test]
    fn highest_label_wins() {
        assert_eq!(tier("UK: BBC ONE HD (1080p)"), Tier::Fhd);
        assert_eq!(tier("SD / HD simulcast"), Tier::Hd);
    }

    #[test]
    fn hevc_is_a_tag_not_a_tier() {
        let q = parse("DE: ProSieben FHD HEVC");
        assert_eq!(q.tier, Tier::Fhd);
        assert_eq!(q.labels, vec!["FHD", "HEVC"]);
        let hevc = |name: &str| parse(name).labels.contains(&"HEVC");
        assert!(hevc("UK: ITV H.265"));
        assert!(hevc("x265 Movies"));
        assert!(!hevc("UK: ITV H.264"));
        assert_eq!(parse("UK: ITV H.265").tier, Tier::Sd);
    }

    #[test]
    fn labels_do_not_repeat() {
        assert_eq!(parse("HD HD 720p").labels, vec!["HD"]);
    }

    #[test]
    fn ranks_round_trip_and_order() {
        for t in [Tier::Sd, Tier::Hd, Tier::Fhd, Tier::Uhd] {
            assert_eq!(Tier::from_rank(t.rank()), t);
        }
        assert!(Tier::Uhd > Tier::Fhd && Tier::Fhd > Tier::Hd && Tier::Hd > Tier::Sd);
        assert_eq!(Tier::from_rank(0), Tier::Sd);
    }
}
