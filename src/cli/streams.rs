//! `streamforge streams`: provider streams with their parsed quality.

use clap::Args;
use serde::Serialize;

use crate::store::StreamFilter;
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
    quality: &'static str,
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
            name: s.name,
            quality: Tier::from_rank(s.tier).label(),
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
            let mut quality = r.quality.to_owned();
            if r.labels.iter().any(|l| l == "HEVC") {
                quality.push_str(" HEVC");
            }
            vec![
                r.stream,
                r.name,
                quality,
                r.category.unwrap_or_default(),
                r.epg_channel_id.unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&["STREAM", "NAME", "QUALITY", "CATEGORY", "EPG ID"], &table);
    Ok(())
}
