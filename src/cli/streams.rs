//! `streamforge streams`: provider streams with their quality: as the name labels it, and as
//! measured (SPEC §7: labels lie), both shown where they disagree.

use clap::Args;
use serde::Serialize;

use crate::measure::{Rank, disagreement, label_tier};
use crate::store::{Measured, StreamFilter};
use crate::xtream::quality::Tier;

use super::{Context, Outcome, output};

#[derive(Debug, Args)]
pub struct StreamsArgs {
    /// Only this account's streams.
    #[arg(long)]
    account: Option<String>,
    /// Only streams whose name contains this text (case-insensitive).
    #[arg(long)]
    search: Option<String>,
    /// Print one JSON array.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct StreamRow {
    /// `ACCOUNT:STREAM_ID`, as `map add` takes it.
    stream: String,
    account: String,
    stream_id: i64,
    name: String,
    #[serde(flatten)]
    quality: Quality,
    labels: Vec<String>,
    category: Option<String>,
    epg_channel_id: Option<String>,
    icon: Option<String>,
}

pub fn run(context: &Context, args: &StreamsArgs) -> Outcome {
    let store = context.open_store()?;
    if let Some(account) = &args.account {
        store.account(account)?;
    }
    let rows: Vec<StreamRow> = store
        .streams(&StreamFilter {
            account: args.account.clone(),
            search: args.search.clone(),
        })?
        .into_iter()
        .map(|s| StreamRow {
            stream: format!("{}:{}", s.account_name, s.stream_id),
            account: s.account_name,
            stream_id: s.stream_id,
            quality: Quality::of(s.tier, &s.qualities, s.measured),
            name: s.name,
            labels: s.qualities,
            category: s.category,
            epg_channel_id: s.epg_channel_id,
            icon: s.icon,
        })
        .collect();
    if args.json {
        return output::json(&rows);
    }
    let table: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| {
            let mut quality = r.quality.quality.to_owned();
            if r.labels.iter().any(|l| l == "HEVC") {
                quality.push_str(" HEVC");
            }
            if let Some(mismatch) = &r.quality.mismatch {
                quality.push_str(&format!(" ({mismatch})"));
            }
            vec![
                r.stream,
                r.name,
                quality,
                r.quality.measured_text(),
                r.category.unwrap_or_default(),
                r.epg_channel_id.unwrap_or_default(),
            ]
        })
        .collect();
    output::table(
        &[
            "STREAM", "NAME", "QUALITY", "MEASURED", "CATEGORY", "EPG ID",
        ],
        &table,
    );
    Ok(())
}

/// A stream's quality as the name labels it and as it was measured.
#[derive(Debug, Serialize)]
pub struct Quality {
    /// The tier the stream is ordered by: measured where it was measured, else labelled.
    pub quality: &'static str,
    /// The tier the name's labels say, if they say one.
    pub label_quality: Option<&'static str>,
    /// `FHD label, measured 1280×720` when the two disagree.
    pub mismatch: Option<String>,
    /// What was measured of it, and when.
    pub measured: Option<Measured>,
}

impl Quality {
    /// From the stored tier rank and labels of the name and the stored measurement.
    pub fn of(tier: i64, labels: &[String], measured: Option<Measured>) -> Quality {
        let labelled = Tier::from_rank(tier);
        let facts = measured.as_ref().map(|m| &m.facts);
        let label = label_tier(labels, labelled);
        Quality {
            quality: Rank::of(labelled, facts).tier.label(),
            label_quality: label.map(Tier::label),
            mismatch: facts.and_then(|f| disagreement(label, f)),
            measured,
        }
    }

    /// The measurement in a table cell: what it found, and the day it was taken.
    pub fn measured_text(&self) -> String {
        let Some(measured) = &self.measured else {
            return "-".into();
        };
        let day = measured
            .measured_at
            .get(..10)
            .unwrap_or(&measured.measured_at);
        format!("{} ({} {day})", measured.facts.summary(), measured.how)
    }
}
