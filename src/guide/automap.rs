//! `map auto`: plan mappings from every guide channel to the provider streams that carry it, and
//! store the plan in place of the previous automatic mappings (manual ones are never touched).
//! Streams a channel came close to are reported with the reason they were left alone. After a
//! probe, [`reorder`] puts each channel's automatic mappings in quality order again without
//! planning anew.

use crate::matching::{self, PlanOptions, StreamCandidate};
use crate::measure::Rank;
use crate::store::{Mapping, PlannedMapping, Store, StoreError, StreamFilter};
use crate::xtream::quality::Tier;

/// A planned or reported pairing, named for people.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pairing {
    pub channel: String,
    pub channel_name: String,
    pub stream: String,
    pub stream_name: String,
    pub confidence: f32,
}

/// A guide channel a stream came close to.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NearChannel {
    pub channel: String,
    pub channel_name: String,
    pub confidence: f32,
}

/// A stream left unmapped although a channel came close, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CloseMiss {
    pub stream: String,
    pub stream_name: String,
    /// "ambiguous between …" or "below threshold: 0.79".
    pub reason: String,
    /// Best first.
    pub candidates: Vec<NearChannel>,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct AutoMapReport {
    /// Every mapping the plan makes, channel by channel in priority order.
    pub mapped: Vec<Pairing>,
    /// Streams that fit two channels about equally well: not taken.
    pub ambiguous: Vec<CloseMiss>,
    /// Matches just under the threshold: not taken.
    pub low_confidence: Vec<CloseMiss>,
    pub channels_mapped: usize,
    pub channels_unmapped: usize,
    /// Pairs the user mapped by hand, left as they are.
    pub kept_manual: usize,
}

/// Plans (and unless `dry_run`, stores) automatic mappings.
pub fn auto_map(
    store: &Store,
    min_confidence: f32,
    dry_run: bool,
) -> Result<AutoMapReport, StoreError> {
    let channels = store.guide_channels()?;
    let streams = store.streams(&StreamFilter::default())?;
    let guide: Vec<matching::GuideChannel> = channels
        .iter()
        .map(|c| matching::GuideChannel {
            key: c.id,
            id: c.channel_id.clone(),
            display_names: c.display_names.clone(),
        })
        .collect();
    let candidates: Vec<StreamCandidate> = streams
        .iter()
        .map(|s| StreamCandidate {
            key: s.id,
            name: s.name.clone(),
            epg_channel_id: s.epg_channel_id.clone(),
            rank: Rank::of(
                Tier::from_rank(s.tier),
                s.measured.as_ref().map(|m| &m.facts),
            ),
        })
        .collect();
    let fixed = store.manual_pairs()?;
    let options = PlanOptions {
        min_confidence,
        ..PlanOptions::default()
    };
    let plan = matching::plan(&guide, &candidates, &fixed, &options);

    let channel_by_row: std::collections::HashMap<i64, _> =
        channels.iter().map(|c| (c.id, c)).collect();
    let stream_by_row: std::collections::HashMap<i64, _> =
        streams.iter().map(|s| (s.id, s)).collect();
    let near = |channel_row: i64, confidence: f32| -> Option<NearChannel> {
        let channel = channel_by_row.get(&channel_row)?;
        Some(NearChannel {
            channel: format!("{} ({})", channel.number, channel.channel_id),
            channel_name: channel.name().to_string(),
            confidence,
        })
    };
    let pairing = |channel_row: i64, stream_row: i64, confidence: f32| -> Option<Pairing> {
        let channel = near(channel_row, confidence)?;
        let stream = stream_by_row.get(&stream_row)?;
        Some(Pairing {
            channel: channel.channel,
            channel_name: channel.channel_name,
            stream: format!("{}:{}", stream.account_name, stream.stream_id),
            stream_name: stream.name.clone(),
            confidence,
        })
    };
    let miss = |stream_row: i64, candidates: Vec<NearChannel>| -> Option<CloseMiss> {
        let stream = stream_by_row.get(&stream_row)?;
        let reason = match candidates.as_slice() {
            [best, other, ..] => format!(
                "ambiguous between {} and {}",
                describe(best),
                describe(other)
            ),
            [best] => format!(
                "below threshold: {:.2} (needs {min_confidence:.2}) for {}",
                best.confidence,
                describe(best)
            ),
            [] => return None,
        };
        Some(CloseMiss {
            stream: format!("{}:{}", stream.account_name, stream.stream_id),
            stream_name: stream.name.clone(),
            reason,
            candidates,
        })
    };

    let mut report = AutoMapReport {
        mapped: plan
            .mappings
            .iter()
            .filter_map(|m| pairing(m.guide_key, m.stream_key, m.confidence))
            .collect(),
        ambiguous: plan
            .ambiguous
            .iter()
            .filter_map(|a| {
                let candidates = a
                    .candidates
                    .iter()
                    .filter_map(|c| near(c.guide_key, c.confidence))
                    .collect();
                miss(a.stream_key, candidates)
            })
            .collect(),
        low_confidence: plan
            .low_confidence
            .iter()
            .filter_map(|l| {
                let best = near(l.best.guide_key, l.best.confidence)?;
                miss(l.stream_key, vec![best])
            })
            .collect(),
        channels_unmapped: plan.unmatched_guide.len(),
        ..AutoMapReport::default()
    };
    let mut mapped_channels: std::collections::HashSet<i64> =
        plan.mappings.iter().map(|m| m.guide_key).collect();
    mapped_channels.extend(fixed.iter().map(|&(channel, _)| channel));
    report.channels_mapped = mapped_channels.len();
    if !dry_run {
        let planned: Vec<PlannedMapping> = plan
            .mappings
            .iter()
            .map(|m| PlannedMapping {
                channel_row: m.guide_key,
                stream_row: m.stream_key,
                confidence: f64::from(m.confidence),
                priority: i64::from(m.priority),
            })
            .collect();
        report.kept_manual = store.replace_auto_mappings(&planned)?.kept_manual;
    }
    Ok(report)
}

/// `101 (sfone.uk) StreamForge One (0.97)`.
fn describe(channel: &NearChannel) -> String {
    format!(
        "{} {} ({:.2})",
        channel.channel, channel.channel_name, channel.confidence
    )
}

/// Re-orders every channel's automatic mappings by quality (measured where measured), as `map
/// auto` would order them; manual mappings keep their priorities and stay first. Returns how
/// many mappings moved.
pub fn reorder(store: &Store) -> Result<usize, StoreError> {
    let mappings = store.mappings(None)?;
    let mut channels: std::collections::BTreeMap<i64, Vec<&Mapping>> = Default::default();
    for mapping in &mappings {
        channels
            .entry(mapping.channel_row)
            .or_default()
            .push(mapping);
    }
    let key = |m: &Mapping| {
        let rank = Rank::of(
            Tier::from_rank(m.tier),
            m.measured.as_ref().map(|x| &x.facts),
        );
        (rank, m.confidence as f32, m.stream_row)
    };
    let mut moved = Vec::new();
    for (channel, list) in channels {
        let manual = list.iter().filter(|m| m.is_manual).count();
        let mut planned: Vec<&Mapping> = list.into_iter().filter(|m| !m.is_manual).collect();
        planned.sort_by(|a, b| matching::quality_order(key(a), key(b)));
        for (rank, mapping) in planned.into_iter().enumerate() {
            let priority = i64::try_from(manual + rank).unwrap_or(i64::MAX);
            if mapping.priority != priority {
                moved.push((channel, mapping.stream_row, priority));
            }
        }
    }
    store.set_auto_priorities(&moved)?;
    Ok(moved.len())
}
