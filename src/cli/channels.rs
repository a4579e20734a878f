//! `streamforge channels` and `streamforge channel …`: the guide's channels, their numbers and
//! mappings; enabling, disabling and renumbering them.

use clap::{Args, Subcommand};
use serde::Serialize;

use crate::store::Mapping;

use super::streams::Quality;

use super::{Context, Outcome, output};

#[derive(Debug, Args)]
pub struct ChannelsArgs {
    /// Only channels without any mapped stream.
    #[arg(long)]
    unmapped: bool,
    /// Only channels whose name or id contains this text (case-insensitive).
    #[arg(long)]
    search: Option<String>,
    /// Print one JSON array.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// Serve this channel (if it has a mapped stream).
    Enable { channel: String },
    /// Stop serving this channel.
    Disable { channel: String },
    /// Give a channel a number of your choosing; it is kept across refreshes.
    Number { channel: String, number: String },
}

#[derive(Serialize)]
struct ChannelRow {
    number: String,
    id: String,
    name: String,
    guide: String,
    enabled: bool,
    icon: Option<String>,
    /// Mapped streams, best first, as `ACCOUNT:STREAM_ID`.
    streams: Vec<String>,
    /// The same streams' quality, labelled and measured, in the same order.
    stream_quality: Vec<StreamQuality>,
}

#[derive(Serialize)]
struct StreamQuality {
    stream: String,
    #[serde(flatten)]
    quality: Quality,
}

pub fn list(context: &Context, args: &ChannelsArgs) -> Outcome {
    let store = context.open_store()?;
    let mappings = store.mappings(None)?;
    let search = args.search.as_deref().map(str::to_lowercase);
    let rows: Vec<ChannelRow> = store
        .guide_channels()?
        .into_iter()
        .map(|c| {
            let mine: Vec<&Mapping> = mappings.iter().filter(|m| m.channel_row == c.id).collect();
            let streams = mine.iter().map(|m| m.stream_ref()).collect();
            let stream_quality = mine
                .iter()
                .map(|m| StreamQuality {
                    stream: m.stream_ref(),
                    quality: Quality::of(m.tier, &m.labels, m.measured.clone()),
                })
                .collect();
            ChannelRow {
                name: c.name().to_string(),
                number: c.number,
                id: c.channel_id,
                guide: c.source_name,
                enabled: c.enabled,
                icon: c.icon,
                streams,
                stream_quality,
            }
        })
        .filter(|r| !args.unmapped || r.streams.is_empty())
        .filter(|r| {
            search.as_ref().is_none_or(|s| {
                r.name.to_lowercase().contains(s) || r.id.to_lowercase().contains(s)
            })
        })
        .collect();
    if args.json {
        return output::json(&rows);
    }
    let table: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| {
            let streams = match r.stream_quality.as_slice() {
                [] => "-".to_string(),
                [only] => shown(only),
                [first, rest @ ..] => format!("{} (+{} backup)", shown(first), rest.len()),
            };
            vec![
                r.number,
                r.id,
                r.name,
                if r.enabled { "yes" } else { "no" }.into(),
                streams,
            ]
        })
        .collect();
    output::table(&["NUMBER", "ID", "NAME", "ENABLED", "STREAMS"], &table);
    Ok(())
}

pub fn run(context: &Context, command: &ChannelCommand) -> Outcome {
    let store = context.open_store()?;
    match command {
        ChannelCommand::Enable { channel } | ChannelCommand::Disable { channel } => {
            let enabled = matches!(command, ChannelCommand::Enable { .. });
            let found = store.guide_channel(channel)?;
            store.set_channel_enabled(found.id, enabled)?;
            println!(
                "channel {} ({}) {}",
                found.number,
                found.name(),
                if enabled { "enabled" } else { "disabled" }
            );
        }
        ChannelCommand::Number { channel, number } => {
            let found = store.guide_channel(channel)?;
            store.set_channel_number(found.id, number)?;
            println!(
                "channel {} ({}) is now number {number}",
                found.channel_id,
                found.name()
            );
        }
    }
    context.rerender(&store);
    Ok(())
}

/// `main:101 SD (FHD label, measured 640×360)`: a stream with the quality it is ordered by.
fn shown(stream: &StreamQuality) -> String {
    let quality = &stream.quality;
    match &quality.mismatch {
        Some(mismatch) => format!("{} {} ({mismatch})", stream.stream, quality.quality),
        None => format!("{} {}", stream.stream, quality.quality),
    }
}
