//! Scale: a 500-channel guide against a 20 000-stream catalog. Prints the time the plan takes
//! (performance budgets are the benchmark harness's business, SPEC §8) and checks the result.

use std::time::Instant;

use super::{GuideChannel, PlanOptions, StreamCandidate, plan};
use crate::xtream::quality;

const BRANDS: [&str; 10] = [
    "Sky", "BBC", "Star", "Nova", "Prime", "Max", "Cine", "Sport", "Kids", "News",
];
const GENRES: [&str; 10] = [
    "Action", "Drama", "Comedy", "Family", "Docs", "Music", "Arena", "Extra", "World", "Classic",
];
const PREFIXES: [&str; 8] = [
    "UK: ", "|UK| ", "[US] ", "VIP ", "", "DE - ", "FR| ", "US: ",
];
const QUALITIES: [&str; 5] = [" HD", " FHD", "", " 4K", "ᴴᴰ"];

#[test]
fn five_hundred_channels_against_twenty_thousand_streams() {
    // Numbered names with shared words everywhere: the hard case for a word index.
    let guide: Vec<GuideChannel> = (0..500)
        .map(|i| GuideChannel {
            key: i,
            id: format!("Channel{i}"),
            display_names: vec![format!(
                "{} {} {}",
                BRANDS[i as usize % 10],
                GENRES[i as usize / 10 % 10],
                i + 1
            )],
        })
        .collect();
    let streams: Vec<StreamCandidate> = (0..20_000)
        .map(|i: i64| {
            let channel = &guide[(i % 500) as usize];
            let variant = (i / 500) as usize;
            let name = if variant % 4 == 3 {
                // Catalog noise: channels no guide entry has.
                format!(
                    "24/7 {} {} {}",
                    GENRES[variant % 10],
                    BRANDS[i as usize % 10],
                    i
                )
            } else {
                format!(
                    "{}{}{}",
                    PREFIXES[variant % 8],
                    channel.display_names[0],
                    QUALITIES[variant / 8 % 5]
                )
            };
            StreamCandidate {
                key: i,
                rank: crate::measure::Rank::of(quality::parse(&name).tier, None),
                name,
                epg_channel_id: None,
            }
        })
        .collect();

    let started = Instant::now();
    let p = plan(&guide, &streams, &[], &PlanOptions::default());
    let elapsed = started.elapsed();
    println!(
        "plan: {} guide channels x {} streams in {:.1} ms ({} mappings, {} ambiguous, {} low)",
        guide.len(),
        streams.len(),
        elapsed.as_secs_f64() * 1000.0,
        p.mappings.len(),
        p.ambiguous.len(),
        p.low_confidence.len()
    );

    assert_eq!(p.mappings.len(), 15_000);
    for m in &p.mappings {
        assert_eq!(m.guide_key, m.stream_key % 500, "stream {}", m.stream_key);
    }
    assert!(p.unmatched_guide.is_empty());
    for key in 0..500 {
        let mine: Vec<_> = p.mappings.iter().filter(|m| m.guide_key == key).collect();
        assert_eq!(mine.len(), 30);
        assert!(mine[0].is_primary && mine[0].priority == 0);
        assert!(
            quality::parse(&streams[mine[0].stream_key as usize].name).tier == quality::Tier::Uhd
        );
    }
}
