//! `streamforge epg …`: add, list, remove and refresh XMLTV guide sources.

use clap::{Args, Subcommand};
use serde::Serialize;

use crate::guide::sources::{self, RefreshSettings, display_location, parse_source};
use crate::store::{NewSource, Source, Store};
use crate::upstream;

use super::{Context, Failure, Outcome, block_on, output};

#[derive(Debug, Subcommand)]
pub enum EpgCommand {
    /// Add a guide and fetch it. SOURCE: an http(s) URL, a file path, or xtream:ACCOUNT.
    Add(AddArgs),
    /// List guide sources.
    List {
        /// Print one JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Remove a guide source and its channels.
    Remove { name: String },
    /// Fetch guide sources again (all, or the one named).
    Refresh { name: Option<String> },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    source: String,
    /// A short name for the source (default: from the URL's host, the file or the account).
    #[arg(long)]
    name: Option<String>,
    /// Move every programme time by this much, e.g. "1h", "-30m" (humantime).
    #[arg(long, allow_hyphen_values = true, value_parser = parse_shift)]
    shift: Option<i64>,
}

/// A signed humantime duration in whole seconds.
fn parse_shift(text: &str) -> Result<i64, String> {
    let (sign, magnitude) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let duration = humantime::parse_duration(magnitude)
        .map_err(|e| format!("{e} (write e.g. \"1h\", \"-30m\")"))?;
    let seconds = i64::try_from(duration.as_secs())
        .ok()
        .filter(|s| *s <= 7 * 24 * 3600)
        .ok_or("a shift of more than a week is surely a mistake")?;
    Ok(sign * seconds)
}

pub fn run(context: &Context, command: &EpgCommand) -> Outcome {
    match command {
        EpgCommand::Add(args) => add(context, args),
        EpgCommand::List { json } => list(context, *json),
        EpgCommand::Remove { name } => {
            let store = context.open_store()?;
            let source = store.source(name)?;
            store.remove_source(name)?;
            crate::guide::sources::remove_caches(&context.data_dir, source.id);
            println!("removed guide {name}");
            context.rerender(&store);
            Ok(())
        }
        EpgCommand::Refresh { name } => {
            let store = context.open_store()?;
            let sources = match name {
                Some(name) => vec![store.source(name)?],
                None => store.sources()?,
            };
            if sources.is_empty() {
                return Err(Failure::new(
                    "no guide sources: add one with `streamforge epg add SOURCE`",
                ));
            }
            let failed = refresh_all(context, &store, &sources)?;
            context.rerender(&store);
            match failed {
                0 => Ok(()),
                n => Err(Failure::new(format!(
                    "{n} of {} guides failed to refresh; their previous data is kept",
                    sources.len()
                ))),
            }
        }
    }
}

fn add(context: &Context, args: &AddArgs) -> Outcome {
    let spec = parse_source(&args.source).map_err(Failure::usage)?;
    let store = context.open_store()?;
    if spec.kind == crate::store::SourceKind::Xtream
        && let crate::store::AccountKind::M3u { .. } = store.account(&spec.location)?.kind
    {
        return Err(Failure::usage(format!(
            "account {} is a plain M3U playlist, not an Xtream panel: add its guide by URL or file",
            spec.location
        )));
    }
    let name = args.name.clone().unwrap_or(spec.default_name);
    let source = store.add_source(&NewSource {
        name: name.clone(),
        kind: spec.kind,
        location: spec.location,
        shift_seconds: args.shift.unwrap_or(0),
    })?;
    if refresh_all(context, &store, std::slice::from_ref(&source))? > 0 {
        // Nothing to keep from a source that never loaded: leave no half-added guide behind.
        let _ = store.remove_source(&name);
        return Err(Failure::new(format!("guide {name} not added")));
    }
    context.rerender(&store);
    Ok(())
}

/// Refreshes each source, printing one line per source; returns how many failed.
fn refresh_all(context: &Context, store: &Store, sources: &[Source]) -> Result<usize, Failure> {
    let http = upstream::Client::new(&upstream::ClientOptions {
        extra_ca_file: context.config.extra_ca_file().map(Into::into),
    })?;
    let settings = RefreshSettings {
        user_agent: &context.config.upstream.user_agent,
        api_timeout: context.config.upstream.api_timeout,
        first_channel_number: context.config.epg.first_channel_number,
        limits: Default::default(),
    };
    block_on(async {
        let mut failed = 0;
        for source in sources {
            let mut progress = super::progress::Progress::new();
            progress.show(&format!("{}: fetching and parsing…", source.name));
            let result = sources::refresh(&http, store, &context.data_dir, source, &settings).await;
            progress.clear();
            match result {
                Ok(r) => println!(
                    "{}: {} channels ({} new, {} removed), {} programmes{} in {:.2}s",
                    source.name,
                    r.channels,
                    r.added,
                    r.removed,
                    r.programmes,
                    if r.bad_timestamps > 0 {
                        format!(", {} with bad timestamps skipped", r.bad_timestamps)
                    } else {
                        String::new()
                    },
                    r.elapsed.as_secs_f64()
                ),
                Err(e) => {
                    eprintln!("error: {}: {e}", source.name);
                    failed += 1;
                }
            }
        }
        failed
    })
}

#[derive(Serialize)]
struct SourceRow {
    name: String,
    kind: crate::store::SourceKind,
    location: String,
    shift_seconds: i64,
    channels: i64,
    last_refresh_at: Option<String>,
    last_status: Option<String>,
    /// RFC 3339: how far ahead the programmes reach.
    programmes_until: Option<String>,
}

fn list(context: &Context, json: bool) -> Outcome {
    let store = context.open_store()?;
    let rows: Vec<SourceRow> = store
        .sources()?
        .into_iter()
        .map(|s| SourceRow {
            location: display_location(&s),
            name: s.name,
            kind: s.kind,
            shift_seconds: s.shift_seconds,
            channels: s.channel_count,
            last_refresh_at: s.last_refresh_at,
            last_status: s.last_status,
            programmes_until: s.programmes_until,
        })
        .collect();
    if json {
        return output::json(&rows);
    }
    let table: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| {
            vec![
                r.name,
                r.location,
                humantime_signed(r.shift_seconds),
                r.channels.to_string(),
                r.last_refresh_at.unwrap_or_else(|| "never".into()),
                r.last_status.unwrap_or_default(),
            ]
        })
        .collect();
    output::table(
        &[
            "NAME",
            "SOURCE",
            "SHIFT",
            "CHANNELS",
            "LAST REFRESH",
            "STATUS",
        ],
        &table,
    );
    Ok(())
}

fn humantime_signed(seconds: i64) -> String {
    let text = humantime::format_duration(std::time::Duration::from_secs(seconds.unsigned_abs()));
    if seconds < 0 {
        format!("-{text}")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts() {
        assert_eq!(parse_shift("1h"), Ok(3600));
        assert_eq!(parse_shift("-30m"), Ok(-1800));
        assert_eq!(parse_shift("+1h 30m"), Ok(5400));
        assert!(parse_shift("soon").is_err());
        assert!(parse_shift("30d").is_err());
        assert_eq!(humantime_signed(-5400), "-1h 30m");
    }
}
