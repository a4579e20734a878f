//! `streamforge probe`: measures streams on purpose (SPEC §7 Selection: labels lie), a few
//! seconds each, one at a time, and only on a free connection: never over an account's
//! `max_connections`, counting what a running server holds (its `/status`). Then the automatic
//! mappings are put in quality order again.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use clap::Args;
use serde::Serialize;

use crate::measure::{Measurement, disagreement, label_tier};
use crate::playlist;
use crate::relay::probe::{ProbeTime, probe};
use crate::store::{Account, How, Store, StoredStream, StreamFilter};
use crate::upstream;
use crate::xtream::quality::Tier;

use super::progress::Progress;
use super::{Context, Failure, Outcome, block_on, output, status};

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Channels (guide id or number: every stream mapped to them) or streams (ACCOUNT:STREAM_ID).
    targets: Vec<String>,
    /// Every mapped stream, one at a time, with a pause between two of the same account.
    #[arg(long, conflicts_with = "targets")]
    all: bool,
    /// How long a stream is read at most (humantime); it ends sooner once measured.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// The pause between two streams of the same account (humantime).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pause: Duration,
    /// The running server's address (default: the first `listen` address of the config); its
    /// connections count against the accounts' limits.
    #[arg(long, value_name = "ADDR:PORT")]
    server: Option<SocketAddr>,
    /// Print one JSON array.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct ProbeRow {
    stream: String,
    name: String,
    /// `measured`, `skipped` (no free connection, account disabled) or `failed`.
    result: &'static str,
    reason: Option<String>,
    measured: Option<Measurement>,
    /// `FHD label, measured 640×360` when the name's label and the measurement disagree.
    mismatch: Option<String>,
}

pub fn run(context: &Context, args: &ProbeArgs) -> Outcome {
    if args.targets.is_empty() && !args.all {
        return Err(Failure::usage(
            "name channels or ACCOUNT:STREAM_ID streams to probe, or pass --all",
        ));
    }
    let store = context.open_store()?;
    let streams = targets(&store, args)?;
    let accounts = store.accounts()?;
    let http = upstream::Client::new(&upstream::ClientOptions {
        extra_ca_file: context.config.extra_ca_file().map(Into::into),
    })?;
    let time = ProbeTime {
        connect: context.config.deadlines.connect.max(Duration::from_secs(3)),
        read: args.duration,
    };
    let mut progress = Progress::new();
    let mut rows = Vec::new();
    let mut previous_account = None;
    for (i, stream) in streams.iter().enumerate() {
        let reference = format!("{}:{}", stream.account_name, stream.stream_id);
        progress.show(&format!("probing {}/{}: {reference}", i + 1, streams.len()));
        let account = accounts.iter().find(|a| a.id == stream.account_id);
        let row = |result, reason: Option<String>, measured: Option<Measurement>| {
            let label = label_tier(&stream.qualities, Tier::from_rank(stream.tier));
            ProbeRow {
                stream: reference.clone(),
                name: stream.name.clone(),
                result,
                reason,
                mismatch: measured.as_ref().and_then(|m| disagreement(label, m)),
                measured,
            }
        };
        let Some(account) = account.filter(|a| a.is_active) else {
            rows.push(row("skipped", Some("the account is disabled".into()), None));
            continue;
        };
        if previous_account == Some(account.id) {
            std::thread::sleep(args.pause);
        }
        previous_account = Some(account.id);
        if let Some(busy) = no_free_connection(context, args.server, account) {
            rows.push(row("skipped", Some(busy), None));
            continue;
        }
        let location = playlist::locate(
            &store,
            account,
            stream.id,
            stream.stream_id,
            &context.config.upstream.user_agent,
        )?;
        let measured = probe(
            &http,
            &location.url,
            &location.user_agent,
            location.referrer,
            time,
        );
        match block_on(measured)? {
            Ok(measured) => {
                store.record_measurement(stream.id, &measured, How::Probe, SystemTime::now())?;
                rows.push(row("measured", None, Some(measured)));
            }
            Err(reason) => rows.push(row("failed", Some(reason), None)),
        }
    }
    progress.clear();
    let measured = rows.iter().filter(|r| r.result == "measured").count();
    let moved = crate::guide::automap::reorder(&store)?;
    if moved > 0 {
        context.rerender(&store);
    }
    if args.json {
        output::json(&rows)?;
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let what = match (&r.measured, &r.reason) {
                    (Some(m), _) => match &r.mismatch {
                        Some(mismatch) => format!("{} ({mismatch})", m.summary()),
                        None => m.summary(),
                    },
                    (None, Some(reason)) => format!("{}: {reason}", r.result),
                    (None, None) => r.result.to_string(),
                };
                vec![r.stream.clone(), r.name.clone(), what]
            })
            .collect();
        output::table(&["STREAM", "NAME", "MEASURED"], &table);
        println!(
            "probed {} streams: {measured} measured; {moved} mappings re-ordered",
            rows.len()
        );
    }
    if measured == 0 {
        return Err(Failure::new("no stream could be measured"));
    }
    Ok(())
}

/// The streams the arguments name, each once, grouped by account.
fn targets(store: &Store, args: &ProbeArgs) -> Result<Vec<StoredStream>, Failure> {
    let all = store.streams(&StreamFilter::default())?;
    let mut rows: Vec<i64> = Vec::new();
    if args.all {
        rows.extend(store.mappings(None)?.iter().map(|m| m.stream_row));
    }
    for target in &args.targets {
        let stream = target
            .rsplit_once(':')
            .and_then(|(account, id)| Some((account, id.parse::<i64>().ok()?)));
        match stream {
            Some((account, id)) if store.account(account).is_ok() => {
                rows.push(store.stream_row(account, id)?);
            }
            _ => {
                let channel = store.guide_channel(target)?;
                let mapped = store.mappings(Some(channel.id))?;
                if mapped.is_empty() {
                    return Err(Failure::new(format!(
                        "channel {target} has no mapped stream (see `streamforge map list`)"
                    )));
                }
                rows.extend(mapped.iter().map(|m| m.stream_row));
            }
        }
    }
    let mut seen = HashSet::new();
    let mut streams: Vec<StoredStream> = rows
        .into_iter()
        .filter(|row| seen.insert(*row))
        .filter_map(|row| all.iter().find(|s| s.id == row).cloned())
        .collect();
    streams.sort_by_key(|s| s.account_id);
    Ok(streams)
}

/// Why `account` has no connection free now, if it has none: the running server's open ones
/// count (a server that does not answer holds none).
fn no_free_connection(
    context: &Context,
    server: Option<SocketAddr>,
    account: &Account,
) -> Option<String> {
    let in_use = status::fetch(context, server)
        .ok()
        .and_then(|status| {
            status["accounts"]
                .as_array()?
                .iter()
                .find(|a| a["name"].as_str() == Some(account.name.as_str()))?["tuners_in_use"]
                .as_u64()
        })
        .unwrap_or(0);
    (in_use >= u64::from(account.max_connections)).then(|| {
        format!(
            "no free connection: the server uses {in_use} of {}'s {}",
            account.name, account.max_connections
        )
    })
}
