//! The matching fixtures, measured: precision and recall of the plan on each.
//!
//! - `fixtures/channels.json`: one guide and stream names in the styles of PROTOCOLS §4.4.
//! - `fixtures/real_names.json` (issue 15): per country, a real EPG site's lineup and a real panel's
//!   stream names for it, with headers and distractors; each lineup is planned on its own.

use serde::Deserialize;

use super::{GuideChannel, PlanOptions, StreamCandidate, plan};
use crate::xtream::quality;

#[derive(Deserialize)]
struct Lineup {
    #[serde(default)]
    country: String,
    guide: Vec<FixtureChannel>,
    streams: Vec<FixtureStream>,
}

#[derive(Deserialize)]
struct RealNames {
    lineups: Vec<Lineup>,
}

#[derive(Deserialize)]
struct FixtureChannel {
    id: String,
    names: Vec<String>,
}

#[derive(Deserialize)]
struct FixtureStream {
    name: String,
    epg: Option<String>,
    expect: Option<String>,
}

/// What the plan got right and wrong on one lineup.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    taken: usize,
    correct: usize,
    should_map: usize,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.taken += other.taken;
        self.correct += other.correct;
        self.should_map += other.should_map;
    }

    fn precision(&self) -> f64 {
        self.correct as f64 / self.taken.max(1) as f64
    }

    fn recall(&self) -> f64 {
        self.correct as f64 / self.should_map.max(1) as f64
    }
}

/// Plans one lineup and prints every wrong mapping and every miss with its reason.
fn measure(lineup: &Lineup) -> Tally {
    let guide: Vec<GuideChannel> = (0..)
        .zip(&lineup.guide)
        .map(|(key, c)| GuideChannel {
            key,
            id: c.id.clone(),
            display_names: c.names.clone(),
        })
        .collect();
    let streams: Vec<StreamCandidate> = (0..)
        .zip(&lineup.streams)
        .map(|(key, s)| StreamCandidate {
            key,
            name: s.name.clone(),
            epg_channel_id: s.epg.clone(),
            rank: crate::measure::Rank::of(quality::parse(&s.name).tier, None),
        })
        .collect();
    let expected = |stream: i64| lineup.streams[stream as usize].expect.as_deref();
    let id_of = |guide_key: i64| lineup.guide[guide_key as usize].id.as_str();

    let p = plan(&guide, &streams, &[], &PlanOptions::default());

    let mut tally = Tally {
        taken: p.mappings.len(),
        ..Tally::default()
    };
    for m in &p.mappings {
        if expected(m.stream_key) == Some(id_of(m.guide_key)) {
            tally.correct += 1;
        } else {
            println!(
                "[{}] WRONG  {:<45} -> {} ({:.2}), expected {:?}",
                lineup.country,
                streams[m.stream_key as usize].name,
                id_of(m.guide_key),
                m.confidence,
                expected(m.stream_key)
            );
        }
    }
    for (key, s) in (0..).zip(&lineup.streams) {
        let Some(want) = s.expect.as_deref() else {
            continue;
        };
        tally.should_map += 1;
        if p.mappings
            .iter()
            .any(|m| m.stream_key == key && id_of(m.guide_key) == want)
        {
            continue;
        }
        let why = if let Some(a) = p.ambiguous.iter().find(|a| a.stream_key == key) {
            format!(
                "ambiguous {} ({:.2}) / {} ({:.2})",
                id_of(a.candidates[0].guide_key),
                a.candidates[0].confidence,
                id_of(a.candidates[1].guide_key),
                a.candidates[1].confidence
            )
        } else if let Some(l) = p.low_confidence.iter().find(|l| l.stream_key == key) {
            format!("low {} ({:.2})", id_of(l.best.guide_key), l.best.confidence)
        } else {
            "no candidate".to_string()
        };
        println!(
            "[{}] MISSED {:<45} expected {want}: {why}",
            lineup.country, s.name
        );
    }
    println!(
        "[{}] {} guide channels, {} streams ({} should map); taken {}, correct {}; precision {:.3}, \
         recall {:.3}",
        lineup.country,
        guide.len(),
        streams.len(),
        tally.should_map,
        tally.taken,
        tally.correct,
        tally.precision(),
        tally.recall()
    );
    tally
}

#[test]
fn fixture_precision_and_recall() {
    let lineup: Lineup =
        serde_json::from_str(include_str!("fixtures/channels.json")).expect("fixture parses");
    let tally = measure(&lineup);
    assert!(
        tally.precision() >= 0.97,
        "precision {:.3}",
        tally.precision()
    );
    assert!(tally.recall() >= 0.93, "recall {:.3}", tally.recall());
}

/// Issue 15: precision ≥ 0.995 and recall ≥ 0.93 on real names, overall and for each country.
#[test]
fn real_names_precision_and_recall_per_country() {
    let fixture: RealNames =
        serde_json::from_str(include_str!("fixtures/real_names.json")).expect("fixture parses");
    assert!(fixture.lineups.len() >= 4, "UK, US, DE and FR at least");
    let mut overall = Tally::default();
    let mut failures = Vec::new();
    for lineup in &fixture.lineups {
        let tally = measure(lineup);
        overall.add(tally);
        if tally.precision() < 0.995 || tally.recall() < 0.93 {
            failures.push(format!(
                "{}: precision {:.3}, recall {:.3}",
                lineup.country,
                tally.precision(),
                tally.recall()
            ));
        }
    }
    println!(
        "overall: taken {}, correct {}, should map {}; precision {:.3}, recall {:.3}",
        overall.taken,
        overall.correct,
        overall.should_map,
        overall.precision(),
        overall.recall()
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert!(overall.precision() >= 0.995 && overall.recall() >= 0.93);
}
