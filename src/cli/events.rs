//! `streamforge events`: the event log, newest last, optionally followed as it grows.

use std::time::Duration;

use clap::Args;

use crate::store::{Level, StoredEvent};

use super::{Context, Failure, Outcome, output};

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only events at this level or above: debug, info, warn, error.
    #[arg(long)]
    level: Option<String>,
    /// How many of the most recent events to show.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Keep printing new events as they are logged (Ctrl-C to stop).
    #[arg(long)]
    follow: bool,
    /// Print one JSON array (not with --follow).
    #[arg(long)]
    json: bool,
}

pub fn run(context: &Context, args: &EventsArgs) -> Outcome {
    let level = match &args.level {
        Some(text) => Some(
            text.parse::<Level>()
                .map_err(|e| Failure::usage(e.to_string()))?,
        ),
        None => None,
    };
    if args.json && args.follow {
        return Err(Failure::usage("--json and --follow cannot be combined"));
    }
    let store = context.open_store()?;
    let mut events = store.events(level, args.limit)?;
    events.reverse();
    if args.json {
        return output::json(&events);
    }
    let mut last_id = events.last().map_or(0, |e| e.id);
    print_events(&events);
    if !args.follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let fresh = store.events_after(last_id, level, 1000)?;
        if let Some(last) = fresh.last() {
            last_id = last.id;
        }
        print_events(&fresh);
    }
}

fn print_events(events: &[StoredEvent]) {
    for event in events {
        println!(
            "{}  {:<5}  {:<8}  {}",
            event.timestamp, event.level, event.category, event.message
        );
    }
}
