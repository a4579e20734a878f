//! `streamforge sync [ACCOUNT]...`: refresh provider catalogs, with progress on a terminal and a
//! one-line summary per account.

use clap::Args;

use crate::upstream;
use crate::xtream::sync::{SyncSettings, SyncStep, sync_account};

use super::progress::Progress;
use super::{Context, Failure, Outcome, block_on};

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Accounts to sync (default: every enabled account).
    accounts: Vec<String>,
}

/// What a sync left out, if anything.
fn skipped_note(skipped: usize, hls: usize) -> String {
    let mut note = String::new();
    if skipped > 0 {
        note.push_str(&format!(", {skipped} unusable entries skipped"));
    }
    if hls > 0 {
        note.push_str(&format!(
            ", {hls} HLS streams refused: Plex takes MPEG-TS only"
        ));
    }
    note
}

pub fn run(context: &Context, args: &SyncArgs) -> Outcome {
    let store = context.open_store()?;
    let accounts = if args.accounts.is_empty() {
        let enabled: Vec<_> = store
            .accounts()?
            .into_iter()
            .filter(|a| a.is_active)
            .collect();
        if enabled.is_empty() {
            return Err(Failure::new(
                "no enabled accounts to sync: add one with `streamforge account add`",
            ));
        }
        enabled
    } else {
        args.accounts
            .iter()
            .map(|name| store.account(name))
            .collect::<Result<_, _>>()?
    };
    let http = upstream::Client::new(&upstream::ClientOptions {
        extra_ca_file: context.config.extra_ca_file().map(Into::into),
    })?;
    let settings = SyncSettings {
        default_user_agent: &context.config.upstream.user_agent,
        api_timeout: context.config.upstream.api_timeout,
    };
    let failures = block_on(async {
        let mut failures = 0;
        for account in &accounts {
            let mut progress = Progress::new();
            let name = &account.name;
            let result = sync_account(&http, &store, account, &settings, &mut |step| {
                progress.show(&match step {
                    SyncStep::LoggingIn => format!("{name}: logging in…"),
                    SyncStep::Categories => format!("{name}: fetching categories…"),
                    SyncStep::Downloading { bytes } => {
                        format!("{name}: downloading streams… {:.1} MB", bytes as f64 / 1e6)
                    }
                    SyncStep::Saving { streams } => format!("{name}: saving {streams} streams…"),
                })
            })
            .await;
            progress.clear();
            match result {
                Ok(report) => println!(
                    "{name}: {} streams ({} new, {} updated, {} removed{}) in {:.2}s",
                    report.streams,
                    report.change.added,
                    report.change.updated,
                    report.change.removed,
                    skipped_note(report.skipped, report.hls),
                    report.elapsed.as_secs_f64()
                ),
                Err(e) => {
                    eprintln!("error: {name}: sync failed: {e}");
                    failures += 1;
                }
            }
        }
        failures
    })?;
    context.rerender(&store);
    match failures {
        0 => Ok(()),
        n => Err(Failure::new(format!(
            "{n} of {} accounts failed to sync; their previous catalogs are kept",
            accounts.len()
        ))),
    }
}
