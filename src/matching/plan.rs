//! The mapping plan: which provider streams carry which guide channel, in which order
//! (SPEC §5 `channel_mappings`, §7 Selection).
//!
//! XMLTV-first: every guide channel is scored against every stream it shares a word with (via
//! [`NameIndex`]), and each stream then goes to its best guide channel, if any. Section headers
//! (`----- USA -----`) are never planned. A guide channel's names are its id read as a name, its
//! display names and their short forms (`LCI - La Chaîne Info` is also `LCI`); a stream is also
//! scored under a well-known rename of its name (`BT Sport 1` as `TNT Sports 1`), a little less.
//! The lineup's countries are the ones most of its ids are from; a channel from elsewhere is
//! foreign, and a stream filed under the lineup's country may still be it.
//! - a stream whose `epg_channel_id` is the channel's id, or the same channel in another quality
//!   (`BBCOne.uk` for `BBCOne.uk@HD`), is certain (1.0), unless its name says
//!   it is another feed of that channel (providers often give `ITV +1` or `HBO West` the parent's
//!   id), or it is exactly another guide channel's name and not this one's (`BBC One Scotland`
//!   with `BBCOne.uk`). Then the id is ignored and the names decide;
//! - otherwise the best score across the channel's display names and its id read as a name;
//!   taken at `min_confidence` or above, unless a second channel scores within
//!   `ambiguity_margin` of it and above the threshold too (then reported as ambiguous; two quality
//!   feeds of one channel are not a choice, the first in the guide takes it);
//!   reported as low confidence when just below the threshold.
//!
//! Streams in `fixed` (the user's manual mappings) are not planned. A guide channel's planned
//! streams are ordered by quality ([`Rank`]: the measured tier where the stream was measured,
//! else the label's, then the measured bit rate), then confidence, then stream key; when the channel has
//! manual mappings those come first (the user chose them): planned priorities start after them
//! and none of the planned ones is primary.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::index::NameIndex;
use super::normalize::{
    Normalized, id_key, is_section_header, normalize, normalize_id, renamed, short_form,
};
use super::score::{COMPACT, MARK_CAP, feed_cap, same_timeshift, score};
use crate::measure::Rank;

/// A name found through a rename ([`renamed`]) counts a little less than the name as spelled.
const RENAME_FACTOR: f32 = 0.98;

/// A channel of the XMLTV guide.
#[derive(Debug, Clone)]
pub struct GuideChannel {
    pub key: i64,
    /// The XMLTV channel id (`BBCOne.uk`).
    pub id: String,
    pub display_names: Vec<String>,
}

/// A provider stream that may be mapped.
#[derive(Debug, Clone)]
pub struct StreamCandidate {
    pub key: i64,
    pub name: String,
    pub epg_channel_id: Option<String>,
    pub rank: Rank,
}

#[derive(Debug, Clone, Copy)]
pub struct PlanOptions {
    /// Scores at or above this are taken.
    pub min_confidence: f32,
    /// Two channels closer than this are ambiguous.
    pub ambiguity_margin: f32,
    /// Scores this far below `min_confidence` are still reported as low confidence.
    pub report_band: f32,
}

impl Default for PlanOptions {
    fn default() -> PlanOptions {
        PlanOptions {
            min_confidence: 0.8,
            ambiguity_margin: 0.03,
            report_band: 0.2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedMapping {
    pub guide_key: i64,
    pub stream_key: i64,
    pub confidence: f32,
    pub priority: u32,
    pub is_primary: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub guide_key: i64,
    pub confidence: f32,
}

/// A stream whose two best guide channels are both above the threshold and too close to call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ambiguous {
    pub stream_key: i64,
    /// Best first.
    pub candidates: [Candidate; 2],
}

/// A stream whose best guide channel scored just below the threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LowConfidence {
    pub stream_key: i64,
    pub best: Candidate,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    /// In guide order, then priority.
    pub mappings: Vec<PlannedMapping>,
    /// In stream order.
    pub ambiguous: Vec<Ambiguous>,
    /// In stream order.
    pub low_confidence: Vec<LowConfidence>,
    /// Guide channels left with neither a planned nor a manual mapping, in guide order.
    pub unmatched_guide: Vec<i64>,
}

/// Plans the automatic mappings of `streams` to `guide` channels. `fixed` holds the manual
/// `(guide_key, stream_key)` pairs: their streams are left out, and a channel with `n` of them
/// gets planned priorities from `n` on, none primary.
pub fn plan(
    guide: &[GuideChannel],
    streams: &[StreamCandidate],
    fixed: &[(i64, i64)],
    options: &PlanOptions,
) -> Plan {
    let options = sanitize(options);
    let names = GuideNames::new(guide);
    let index = NameIndex::new(&names.names);
    let mut scratch = index.scratch();
    let mut candidates = Vec::new();
    let mut best_of = Vec::new();
    let fixed: HashSet<(i64, i64)> = fixed.iter().copied().collect();
    let fixed_streams: HashSet<i64> = fixed.iter().map(|&(_, s)| s).collect();
    let mut taken: Vec<Vec<(usize, f32)>> = vec![Vec::new(); guide.len()];
    let mut result = Plan::default();
    let candidate = |(c, confidence): (usize, f32)| Candidate {
        guide_key: guide[c].key,
        confidence,
    };

    for (s, stream) in streams.iter().enumerate() {
        if fixed_streams.contains(&stream.key) || is_section_header(&stream.name) {
            continue;
        }
        let name = normalize(&stream.name);
        let floor = options.min_confidence - options.report_band;
        best_of.clear();
        index.candidates(&name, floor, &mut scratch, &mut candidates);
        names.add_scores(&name, 1.0, &candidates, &mut best_of);
        if let Some(renamed) = renamed(&name) {
            index.candidates(&renamed, floor, &mut scratch, &mut candidates);
            names.add_scores(&renamed, RENAME_FACTOR, &candidates, &mut best_of);
        }
        // Best first; ties in guide order, so plans are deterministic.
        best_of.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let certain = stream
            .epg_channel_id
            .as_deref()
            .and_then(|id| names.channel_by_id(id))
            .filter(|&c| names.of(c).any(|n| same_feed(n, &name)))
            .filter(|&c| !named_after_another(c, &best_of, options.min_confidence));
        if let Some(c) = certain {
            taken[c].push((s, 1.0));
            continue;
        }
        let Some(&(c, best)) = best_of.first() else {
            continue;
        };
        match best_of.get(1).copied() {
            _ if best < options.min_confidence => {
                if best >= floor && best > MARK_CAP {
                    result.low_confidence.push(LowConfidence {
                        stream_key: stream.key,
                        best: candidate((c, best)),
                    });
                }
            }
            // Two quality feeds of one channel (`RMCSport1.fr`, `RMCSport1.fr@UHD`) are not a
            // choice between channels: the first in the guide takes it.
            Some(other)
                if other.1 >= options.min_confidence
                    && best - other.1 < options.ambiguity_margin
                    && names.keys[c] != names.keys[other.0] =>
            {
                result.ambiguous.push(Ambiguous {
                    stream_key: stream.key,
                    candidates: [candidate((c, best)), candidate(other)],
                });
            }
            _ => taken[c].push((s, best)),
        }
    }

    let mut manual: HashMap<i64, u32> = HashMap::new();
    for &(g, _) in &fixed {
        let count = manual.entry(g).or_default();
        *count = count.saturating_add(1);
    }
    for (channel, mut mine) in guide.iter().zip(taken) {
        let before = manual.get(&channel.key).copied().unwrap_or(0);
        if mine.is_empty() && before == 0 {
            result.unmatched_guide.push(channel.key);
        }
        mine.sort_by(|&(a, ca), &(b, cb)| {
            quality_order(
                (streams[a].rank, ca, streams[a].key),
                (streams[b].rank, cb, streams[b].key),
            )
        });
        for (rank, (s, confidence)) in mine.into_iter().enumerate() {
            let priority = before.saturating_add(u32::try_from(rank).unwrap_or(u32::MAX));
            result.mappings.push(PlannedMapping {
                guide_key: channel.key,
                stream_key: streams[s].key,
                confidence,
                priority,
                is_primary: priority == 0,
            });
        }
    }
    result
}

/// The order of a channel's streams, best first: quality (SPEC §7), then confidence; the key
/// keeps the order stable. Each side is (rank, confidence, key).
pub fn quality_order(a: (Rank, f32, i64), b: (Rank, f32, i64)) -> std::cmp::Ordering {
    b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)).then(a.2.cmp(&b.2))
}

/// Every name of every guide channel (the id read as a name included), and the channels by id.
struct GuideNames {
    names: Vec<Normalized>,
    /// The channel (index into the guide) of each name.
    owner: Vec<usize>,
    /// The names (indexes into `names`) of each channel.
    names_of: Vec<Vec<usize>>,
    /// Each channel's id key ([`id_key`]): equal keys are one channel in two qualities.
    keys: Vec<String>,
    /// Channel by id, trimmed and lowercased, then by id key; the first channel wins a duplicate.
    by_id: HashMap<String, usize>,
}

impl GuideNames {
    fn new(guide: &[GuideChannel]) -> GuideNames {
        let mut all = GuideNames {
            names: Vec::new(),
            owner: Vec::new(),
            names_of: Vec::with_capacity(guide.len()),
            keys: Vec::with_capacity(guide.len()),
            by_id: HashMap::new(),
        };
        let ids: Vec<Normalized> = guide.iter().map(|c| normalize_id(&c.id)).collect();
        let home = home_countries(&ids);
        for ((c, channel), id) in guide.iter().enumerate().zip(ids) {
            let country = id.country;
            let foreign = country.is_some_and(|country| !home.contains(&country));
            let display = channel.display_names.iter().flat_map(|d| {
                let full = normalize(d);
                // A description is only cut from names that are not station listings.
                let short = short_form(d)
                    .filter(|_| full.call_sign.is_none())
                    .map(|s| normalize(&s));
                std::iter::once(full).chain(short)
            });
            let mut own = Vec::new();
            for mut name in std::iter::once(id).chain(display) {
                // A name that says its country ("MTV UK") is that country's, whatever the id says.
                name.country = name.country.or(country);
                if foreign {
                    name.home.clone_from(&home);
                }
                name.regionalize();
                // A numeric display-name is the channel's number, not its name.
                let numeric = name.compact.bytes().all(|b| b.is_ascii_digit());
                if !numeric && !own.iter().any(|&n| all.names[n] == name) {
                    own.push(all.names.len());
                    all.names.push(name);
                    all.owner.push(c);
                }
            }
            all.names_of.push(own);
            let exact = channel.id.trim().to_lowercase();
            let key = id_key(&channel.id);
            for id in [exact, key.clone()] {
                if !id.is_empty() {
                    all.by_id.entry(id).or_insert(c);
                }
            }
            all.keys.push(key);
        }
        all
    }

    fn of(&self, channel: usize) -> impl Iterator<Item = &Normalized> {
        self.names_of[channel].iter().map(|&n| &self.names[n])
    }

    /// The channel a stream's `epg_channel_id` names: the same id, or the same channel in another
    /// quality (`BBCOne.uk` for `BBCOne.uk@HD`).
    fn channel_by_id(&self, id: &str) -> Option<usize> {
        let exact = id.trim().to_lowercase();
        self.by_id
            .get(&exact)
            .or_else(|| self.by_id.get(&id_key(id)))
            .copied()
    }

    /// Raises each candidate channel's entry in `best_of` to its best score against `stream`,
    /// times `factor`.
    fn add_scores(
        &self,
        stream: &Normalized,
        factor: f32,
        names: &[u32],
        best_of: &mut Vec<(usize, f32)>,
    ) {
        for &n in names {
            let (c, value) = (
                self.owner[n as usize],
                score(&self.names[n as usize], stream) * factor,
            );
            match best_of.iter_mut().find(|(b, _)| *b == c) {
                Some(best) => best.1 = best.1.max(value),
                None => best_of.push((c, value)),
            }
        }
    }
}

/// The countries a guide is for: every country with at least a quarter as many channels as the
/// most common one. A channel from elsewhere is a foreign one in the lineup.
fn home_countries(ids: &[Normalized]) -> Vec<&'static str> {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for country in ids.iter().filter_map(|id| id.country) {
        match counts.iter_mut().find(|(c, _)| *c == country) {
            Some((_, n)) => *n += 1,
            None => counts.push((country, 1)),
        }
    }
    let most = counts.iter().map(|&(_, n)| n).max().unwrap_or(0);
    counts
        .into_iter()
        .filter(|&(_, n)| n * 4 >= most)
        .map(|(c, _)| c)
        .collect()
}

/// Whether a stream carrying channel `c`'s id is named exactly like another channel and not like
/// `c`: providers give regional variants (`BBC One Scotland`) the national channel's id.
fn named_after_another(c: usize, best_of: &[(usize, f32)], min_confidence: f32) -> bool {
    let own = best_of.iter().find(|b| b.0 == c).map_or(0.0, |b| b.1);
    best_of.iter().any(|&(o, value)| o != c && value >= COMPACT) && own < min_confidence
}

/// Whether a stream name may be the feed a guide name describes: same timeshift, and no
/// West/East contradiction.
fn same_feed(guide: &Normalized, stream: &Normalized) -> bool {
    same_timeshift(&guide.tokens, &stream.tokens) && feed_cap(guide.feed, stream.feed) > MARK_CAP
}

fn sanitize(options: &PlanOptions) -> PlanOptions {
    let default = PlanOptions::default();
    let pick = |value: f32, fallback: f32| {
        if value.is_finite() {
            value.clamp(0.0, 1.0)
        } else {
            fallback
        }
    };
    PlanOptions {
        min_confidence: pick(options.min_confidence, default.min_confidence),
        ambiguity_margin: pick(options.ambiguity_margin, default.ambiguity_margin),
        report_band: pick(options.report_band, default.report_band),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(key: i64, id: &str, names: &[&str]) -> GuideChannel {
        GuideChannel {
            key,
            id: id.into(),
            display_names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    fn stream(key: i64, name: &str) -> StreamCandidate {
        StreamCandidate {
            key,
            name: name.into(),
            epg_channel_id: None,
            rank: Rank::of(crate::xtream::quality::parse(name).tier, None),
        }
    }

    fn with_epg(key: i64, name: &str, epg: &str) -> StreamCandidate {
        StreamCandidate {
            epg_channel_id: Some(epg.into()),
            ..stream(key, name)
        }
    }

    /// Below an equal name's score: what a rename reaches.
    const EXACT_TAKE: f32 = 0.99;

    fn run(guide: &[GuideChannel], streams: &[StreamCandidate]) -> Plan {
        plan(guide, streams, &[], &PlanOptions::default())
    }

    fn pairs(plan: &Plan) -> Vec<(i64, i64)> {
        plan.mappings
            .iter()
            .map(|m| (m.guide_key, m.stream_key))
            .collect()
    }

    fn uk() -> Vec<GuideChannel> {
        vec![
            channel(1, "BBCOne.uk", &["BBC One"]),
            channel(2, "BBCTwo.uk", &["BBC Two"]),
            channel(3, "ITV1.uk", &["ITV1", "ITV"]),
            channel(4, "ITV1Plus1.uk", &["ITV1 +1"]),
        ]
    }

    #[test]
    fn names_map_to_their_channel() {
        let p = run(
            &uk(),
            &[
                stream(10, "UK: BBC ONE (HD) (720p)"),
                stream(11, "UK | BBC Two FHD"),
                stream(12, "|UK| ITV ᴴᴰ"),
                stream(13, "UK: ITV 1 +1"),
                stream(14, "UK: Dave HD"),
            ],
        );
        assert_eq!(pairs(&p), vec![(1, 10), (2, 11), (3, 12), (4, 13)]);
        assert!(p.unmatched_guide.is_empty());
        assert!(p.ambiguous.is_empty() && p.low_confidence.is_empty());
    }

    #[test]
    fn matching_epg_id_is_certain() {
        // The name alone would not match; the id does, whatever its case and spaces.
        let p = run(&uk(), &[with_epg(10, "UK: BBC 1st channel", " bbcone.UK ")]);
        assert_eq!(pairs(&p), vec![(1, 10)]);
        assert_eq!(p.mappings[0].confidence, 1.0);
        // An id that is no guide's falls back to the name.
        let p = run(&uk(), &[with_epg(10, "UK: BBC Two", "bbc2.tv")]);
        assert_eq!(pairs(&p), vec![(2, 10)]);
        assert!(p.mappings[0].confidence < 1.0);
    }

    #[test]
    fn parent_epg_id_on_a_timeshift_is_ignored() {
        let p = run(&uk(), &[with_epg(10, "UK: ITV 1 +1 HD", "ITV1.uk")]);
        assert_eq!(pairs(&p), vec![(4, 10)]);
        let guide = [channel(1, "HBOEast.us", &["HBO East", "HBO"])];
        let p = run(&guide, &[with_epg(10, "US| HBO WEST", "HBOEast.us")]);
        assert!(p.mappings.is_empty());
    }

    #[test]
    fn parent_epg_id_on_a_regional_variant_is_ignored() {
        let guide = [
            channel(1, "BBCOne.uk", &["BBC One"]),
            channel(2, "BBCOneScotland.uk", &["BBC One Scotland"]),
        ];
        let streams = [
            with_epg(10, "UK: BBC ONE SCOTLAND HD", "BBCOne.uk"),
            with_epg(11, "UK: BBC ONE HD", "BBCOne.uk"),
            // A name that is no guide channel's keeps its id.
            with_epg(12, "UK: BBC ONE Yorkshire", "BBCOne.uk"),
        ];
        let p = run(&guide, &streams);
        assert_eq!(pairs(&p), vec![(1, 11), (1, 12), (2, 10)]);
    }

    #[test]
    fn numeric_display_names_are_numbers_not_names() {
        let guide = [
            channel(1, "WNYW.us", &["FOX 5 New York", "5"]),
            channel(2, "Channel5.uk", &["Channel 5"]),
            channel(3, "4seven.uk", &["4seven"]),
        ];
        let p = run(
            &guide,
            &[stream(10, "UK: 5 HD"), stream(11, "UK: 4SEVEN HD")],
        );
        assert_eq!(pairs(&p), vec![(2, 10), (3, 11)]);
    }

    #[test]
    fn a_stream_goes_to_one_channel_only() {
        let guide = [
            channel(1, "BBCOne.uk", &["BBC One"]),
            channel(2, "BBCOneScotland.uk", &["BBC One Scotland"]),
        ];
        let p = run(
            &guide,
            &[stream(10, "UK: BBC One Scotland HD"), stream(11, "BBC One")],
        );
        assert_eq!(pairs(&p), vec![(1, 11), (2, 10)]);
    }

    #[test]
    fn ambiguity_is_reported_not_taken() {
        let guide = [
            channel(1, "ComedyCentral.uk", &["Comedy Central"]),
            channel(2, "ComedyCentral.us", &["Comedy Central"]),
        ];
        let p = run(
            &guide,
            &[
                stream(10, "Comedy Central HD"),
                stream(11, "UK: Comedy Central HD"),
            ],
        );
        assert_eq!(pairs(&p), vec![(1, 11)]);
        assert_eq!(p.ambiguous.len(), 1);
        let a = &p.ambiguous[0];
        assert_eq!(a.stream_key, 10);
        assert_eq!(
            [a.candidates[0].guide_key, a.candidates[1].guide_key],
            [1, 2]
        );
        assert!(a.candidates[0].confidence >= 0.8 && a.candidates[1].confidence >= 0.8);
        assert_eq!(p.unmatched_guide, vec![2]);
    }

    #[test]
    fn low_confidence_is_reported_not_taken() {
        let guide = [
            channel(1, "BBCNews.uk", &["BBC News"]),
            channel(2, "ESPN.us", &["ESPN"]),
        ];
        let p = run(
            &guide,
            &[
                stream(10, "UK: BBC WORLD NEWS"),
                stream(11, "US| ESPN WEST"),
            ],
        );
        assert!(p.mappings.is_empty());
        assert_eq!(p.low_confidence.len(), 1);
        assert_eq!(p.low_confidence[0].stream_key, 10);
        assert_eq!(p.low_confidence[0].best.guide_key, 1);
        assert_eq!(p.unmatched_guide, vec![1, 2]);
        // A lower threshold takes it.
        let options = PlanOptions {
            min_confidence: 0.6,
            ..PlanOptions::default()
        };
        let p = plan(&guide, &[stream(10, "UK: BBC WORLD NEWS")], &[], &options);
        assert_eq!(pairs(&p), vec![(1, 10)]);
    }

    #[test]
    fn an_unfed_stream_is_the_east_feed() {
        let guide = [
            channel(1, "TNTEast.us", &["TNT East"]),
            channel(2, "TNTWest.us", &["TNT West"]),
        ];
        let p = run(
            &guide,
            &[stream(10, "US: TNT HD"), stream(11, "|US| TNT (WEST) HD")],
        );
        assert_eq!(pairs(&p), vec![(1, 10), (2, 11)]);
    }

    #[test]
    fn feeds_of_an_id_are_channels_of_their_own() {
        let guide = [
            channel(1, "ITV3.uk", &["ITV 3"]),
            channel(2, "ITV3.uk@Plus1", &["ITV 3 +1"]),
            channel(3, "France3.fr", &["France 3"]),
            // Only the id says which region: read as a name, it must say it too.
            channel(4, "France3.fr@Aquitaine", &[]),
        ];
        let p = run(
            &guide,
            &[
                stream(10, "UK: ITV 3 HD"),
                stream(11, "UK: ITV3 + 1"),
                stream(12, "FR: FRANCE 3 AQUITAINE"),
                stream(13, "FR: FRANCE 3 HD"),
            ],
        );
        assert_eq!(pairs(&p), vec![(1, 10), (2, 11), (3, 13), (4, 12)]);
    }

    #[test]
    fn a_bare_epg_id_is_its_quality_feed() {
        let guide = [
            channel(1, "BBCOne.uk@HD", &["BBC One HD"]),
            channel(2, "BBCOne.uk@Scotland", &["BBC One Scotland"]),
            channel(3, "CBeebies.uk", &["CBeebies"]),
        ];
        let p = run(
            &guide,
            &[
                with_epg(10, "UK: BBC 1st channel", "BBCOne.uk"),
                with_epg(11, "UK: CBEEBIES HD", "CBeebies.uk@HD"),
                with_epg(12, "UK: BBC ONE SCOTLAND", "BBCOne.uk"),
            ],
        );
        assert_eq!(pairs(&p), vec![(1, 10), (2, 12), (3, 11)]);
        assert_eq!(p.mappings[0].confidence, 1.0);
    }

    #[test]
    fn quality_feeds_are_one_channel_not_a_choice() {
        let guide = [
            channel(1, "RMCSport1.fr", &["RMC Sport 1"]),
            channel(2, "RMCSport1.fr@UHD", &["RMC Sport 1 UHD"]),
        ];
        let p = run(&guide, &[stream(10, "FR: RMC SPORT 1 HD")]);
        assert_eq!(pairs(&p), vec![(1, 10)]);
        assert!(p.ambiguous.is_empty());
    }

    #[test]
    fn foreign_channels_and_renames() {
        let mut guide = vec![
            channel(1, "ORF1.at", &["ORF 1"]),
            channel(2, "ComedyCentralGermany.de", &["Comedy Central"]),
            channel(3, "WarnerTVSerie.de", &["Warner TV Serie"]),
        ];
        guide.extend((10..16).map(|k| channel(k, &format!("Filler{k}.de"), &[])));
        let p = run(
            &guide,
            &[
                stream(20, "DE: ORF 1 HD"),
                stream(21, "UK: COMEDY CENTRAL"),
                stream(22, "|DE| TNT SERIE HD"),
                stream(23, "----- DEUTSCHLAND -----"),
            ],
        );
        assert_eq!(pairs(&p), vec![(1, 20), (3, 22)]);
        assert!(p.mappings[1].confidence < EXACT_TAKE);
    }
    #[test]
    fn priorities_follow_tier_then_confidence() {
        let guide = [channel(1, "BBCOneScotland.uk", &["BBC One Scotland"])];
        let p = run(
            &guide,
            &[
                stream(10, "UK: BBC One Scotland SD"),
                stream(11, "UK: BBC One Scot HD"),
                stream(12, "UK: BBC One Scotland HD"),
                stream(13, "UK: BBC One Scotland 4K"),
                stream(14, "UK: BBC One Scotland FHD"),
            ],
        );
        let order: Vec<(i64, u32, bool)> = p
            .mappings
            .iter()
            .map(|m| (m.stream_key, m.priority, m.is_primary))
            .collect();
        // 4K, FHD, then the two HD streams: the exact name before the abbreviation; SD last.
        assert_eq!(
            order,
            vec![
                (13, 0, true),
                (14, 1, false),
                (12, 2, false),
                (11, 3, false),
                (10, 4, false)
            ]
        );
    }

    #[test]
    fn measurements_outrank_labels_and_bit_rate_breaks_ties() {
        use crate::measure::{Measurement, Video};
        let measured = |codec: &str, width, height, bitrate| Measurement {
            video: Some(Video {
                codec: codec.into(),
                width: Some(width),
                height: Some(height),
                frame_rate: Some(25.0),
                interlaced: Some(false),
            }),
            audio: Vec::new(),
            bitrate: Some(bitrate),
        };
        let guide = [channel(1, "BBCOne.uk", &["BBC One"])];
        let with = |key, name: &str, m: Option<Measurement>| StreamCandidate {
            rank: Rank::of(crate::xtream::quality::parse(name).tier, m.as_ref()),
            ..stream(key, name)
        };
        let streams = [
            // An FHD label over a 640×360 picture: SD.
            with(
                10,
                "UK: BBC One FHD",
                Some(measured("H.264", 640, 360, 900_000)),
            ),
            // No label at all, but 1280×720: HD, and HEVC ranks with H.264.
            with(
                11,
                "UK: BBC One",
                Some(measured("HEVC", 1280, 720, 1_000_000)),
            ),
            with(
                12,
                "UK: BBC One",
                Some(measured("H.264", 1280, 720, 2_500_000)),
            ),
            // An HD label never measured: HD, below the measured HD streams.
            with(13, "UK: BBC One HD", None),
            // An SD label never measured, and an honest FHD stream.
            with(14, "UK: BBC One SD", None),
            with(
                15,
                "UK: BBC One 1080p",
                Some(measured("H.264", 1920, 1080, 6_000_000)),
            ),
        ];
        let p = run(&guide, &streams);
        let order: Vec<i64> = p.mappings.iter().map(|m| m.stream_key).collect();
        assert_eq!(order, vec![15, 12, 11, 13, 10, 14]);
    }

    #[test]
    fn manual_mappings_are_respected() {
        let streams = [
            stream(10, "UK: BBC One FHD"),
            stream(11, "UK: BBC One HD"),
            stream(12, "UK: BBC Two HD"),
        ];
        // Stream 10 is manually on BBC One and stream 12 manually on BBC One too.
        let p = plan(
            &uk(),
            &streams,
            &[(1, 10), (1, 12)],
            &PlanOptions::default(),
        );
        assert_eq!(
            p.mappings,
            vec![PlannedMapping {
                guide_key: 1,
                stream_key: 11,
                confidence: p.mappings[0].confidence,
                priority: 2,
                is_primary: false,
            }]
        );
        // BBC Two's only stream is manually elsewhere: it has no mapping at all.
        assert_eq!(p.unmatched_guide, vec![2, 3, 4]);
    }

    #[test]
    fn empty_and_odd_input() {
        let p = run(&[], &[stream(1, "BBC One")]);
        assert_eq!(p, Plan::default());
        let p = run(&uk(), &[]);
        assert_eq!(p.unmatched_guide, vec![1, 2, 3, 4]);
        let weird = [
            channel(1, "", &[]),
            channel(2, "  ", &["", "HD", "UK:"]),
            channel(2, "BBCOne.uk", &["BBC One"]),
        ];
        let options = PlanOptions {
            min_confidence: f32::NAN,
            ambiguity_margin: -3.0,
            report_band: f32::INFINITY,
        };
        let streams = [stream(1, ""), stream(2, "+1"), with_epg(3, "BBC One", "")];
        let p = plan(&weird, &streams, &[(9, 9)], &options);
        assert_eq!(pairs(&p), vec![(2, 3)]);
    }
}
