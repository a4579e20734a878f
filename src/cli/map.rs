//! `streamforge map …`: automatic and manual mappings from guide channels to provider streams.

use clap::{Args, Subcommand};
use serde::Serialize;

use crate::guide::automap::{AutoMapReport, auto_map};

use super::{Context, Failure, Outcome, output};

#[derive(Debug, Subcommand)]
pub enum MapCommand {
    /// Map every guide channel to the provider streams that carry it (manual mappings are kept).
    Auto(AutoArgs),
    /// Map a stream to a channel by hand.
    Add {
        /// Guide channel id or channel number.
        channel: String,
        /// ACCOUNT:STREAM_ID, as `streamforge streams` lists them.
        stream: String,
        /// Lower is tried first (default: after the channel's current streams).
        #[arg(long)]
        priority: Option<i64>,
    },
    /// Remove a mapping.
    Remove { channel: String, stream: String },
    /// List mappings (all, or one channel's).
    List {
        channel: Option<String>,
        /// Print one JSON array.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct AutoArgs {
    /// Take only matches at least this confident (0 to 1).
    #[arg(long, default_value_t = 0.8, value_parser = confidence)]
    min_confidence: f32,
    /// Print the plan without changing anything.
    #[arg(long)]
    dry_run: bool,
    /// Print the plan as one JSON object.
    #[arg(long)]
    json: bool,
}

fn confidence(text: &str) -> Result<f32, String> {
    let value: f32 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err("must be between 0 and 1".into())
    }
}

/// `ACCOUNT:STREAM_ID`.
fn stream_ref(text: &str) -> Result<(&str, i64), Failure> {
    text.rsplit_once(':')
        .and_then(|(account, id)| Some((account, id.parse().ok()?)))
        .filter(|(account, _)| !account.is_empty())
        .ok_or_else(|| {
            Failure::usage(format!(
                "{text:?}: expected ACCOUNT:STREAM_ID, e.g. main:1234"
            ))
        })
}

pub fn run(context: &Context, command: &MapCommand) -> Outcome {
    match command {
        MapCommand::Auto(args) => auto(context, args),
        MapCommand::Add {
            channel,
            stream,
            priority,
        } => {
            let (account, stream_id) = stream_ref(stream)?;
            let store = context.open_store()?;
            let found = store.guide_channel(channel)?;
            let row = store.stream_row(account, stream_id)?;
            store.add_manual_mapping(found.id, row, *priority)?;
            println!(
                "mapped {stream} to channel {} ({})",
                found.number,
                found.name()
            );
            context.rerender(&store);
            Ok(())
        }
        MapCommand::Remove { channel, stream } => {
            let (account, stream_id) = stream_ref(stream)?;
            let store = context.open_store()?;
            let found = store.guide_channel(channel)?;
            let row = store.stream_row(account, stream_id)?;
            store.remove_mapping(found.id, row)?;
            println!(
                "unmapped {stream} from channel {} ({})",
                found.number,
                found.name()
            );
            context.rerender(&store);
            Ok(())
        }
        MapCommand::List { channel, json } => list(context, channel.as_deref(), *json),
    }
}

fn auto(context: &Context, args: &AutoArgs) -> Outcome {
    let store = context.open_store()?;
    let report = auto_map(&store, args.min_confidence, args.dry_run)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report)
                .map_err(|e| Failure::new(format!("cannot encode JSON: {e}")))?
        );
    } else {
        print_report(&report, args.dry_run);
    }
    if !args.dry_run {
        context.rerender(&store);
    }
    Ok(())
}

fn print_report(report: &AutoMapReport, dry_run: bool) {
    if dry_run {
        println!("plan (dry run, nothing changed):");
        for p in &report.mapped {
            println!(
                "  {}  ←  {}  {}  ({:.2})",
                p.channel, p.stream, p.stream_name, p.confidence
            );
        }
    }
    for miss in report.ambiguous.iter().chain(&report.low_confidence) {
        println!(
            "not mapped: {} {}: {}",
            miss.stream, miss.stream_name, miss.reason
        );
    }
    println!(
        "{}{} mappings for {} channels; {} channels unmapped, {} ambiguous, {} low-confidence{}",
        if dry_run { "would make " } else { "" },
        report.mapped.len(),
        report.channels_mapped,
        report.channels_unmapped,
        report.ambiguous.len(),
        report.low_confidence.len(),
        if report.kept_manual > 0 {
            format!(", {} manual kept", report.kept_manual)
        } else {
            String::new()
        }
    );
}

#[derive(Serialize)]
struct MappingRow {
    channel: String,
    channel_id: String,
    stream: String,
    stream_name: String,
    priority: i64,
    primary: bool,
    manual: bool,
    confidence: f64,
    account_enabled: bool,
}

fn list(context: &Context, channel: Option<&str>, json: bool) -> Outcome {
    let store = context.open_store()?;
    let channel_row = match channel {
        Some(reference) => Some(store.guide_channel(reference)?.id),
        None => None,
    };
    let rows: Vec<MappingRow> = store
        .mappings(channel_row)?
        .into_iter()
        .map(|m| MappingRow {
            stream: m.stream_ref(),
            channel: m.channel_number,
            channel_id: m.channel_id,
            stream_name: m.stream_name,
            priority: m.priority,
            primary: m.is_primary,
            manual: m.is_manual,
            confidence: m.confidence,
            account_enabled: m.account_active,
        })
        .collect();
    if json {
        return output::json(&rows);
    }
    let table: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| {
            vec![
                r.channel,
                r.channel_id,
                r.priority.to_string(),
                r.stream,
                r.stream_name,
                format!("{:.2}", r.confidence),
                [
                    r.primary.then_some("primary"),
                    r.manual.then_some("manual"),
                    (!r.account_enabled).then_some("account disabled"),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", "),
            ]
        })
        .collect();
    output::table(
        &["CHANNEL", "ID", "PRIO", "STREAM", "NAME", "CONF", "NOTES"],
        &table,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_refs() {
        assert_eq!(stream_ref("main:12").unwrap(), ("main", 12));
        assert!(stream_ref("main").is_err());
        assert!(stream_ref(":12").is_err());
        assert!(stream_ref("main:x").is_err());
    }
}
