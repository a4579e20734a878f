//! `streamforge account …`: add, list, test, remove, enable and disable Xtream subscriptions and
//! plain M3U playlist sources.

use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::json;

use crate::playlist::{self, XtreamLogin};
use crate::store::{AccountKind, Event, Level, NewAccount, Password, Store, Subscription};
use crate::upstream::{self, Url};
use crate::xtream::XtreamClient;

use super::{Context, Failure, Outcome, block_on, output, prompt};

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Add an Xtream subscription (--url, --username; the password from --password-stdin or a
    /// no-echo prompt), or a plain M3U playlist source (--m3u URL|FILE).
    Add(AddArgs),
    /// List subscriptions.
    List {
        /// Print one JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Log in to the panel and show the subscription's state (a playlist: fetch and count it).
    Test { name: String },
    /// Remove a subscription, its catalog and its mappings.
    Remove { name: String },
    /// Use this subscription for streams again.
    Enable { name: String },
    /// Stop using this subscription for streams (its catalog is kept).
    Disable { name: String },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// A short name for the subscription, used in stream references (NAME:STREAM_ID).
    name: String,
    /// The panel's address, e.g. http://provider.example:8080
    #[arg(long, required_unless_present = "m3u")]
    url: Option<String>,
    #[arg(long, required_unless_present = "m3u")]
    username: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
    /// A plain M3U playlist (http(s) URL or file) as the catalog, instead of an Xtream panel.
    /// Its URLs are stored encrypted and shown only by origin. An Xtream get.php URL is added as
    /// the Xtream account it is.
    #[arg(long, value_name = "URL|FILE", conflicts_with_all = ["url", "username", "password_stdin"])]
    m3u: Option<String>,
    /// Connections the subscription allows at once (each is one tuner).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    max_connections: u32,
    /// User agent for this panel, instead of the config's upstream.user_agent.
    #[arg(long)]
    user_agent: Option<String>,
}

pub fn run(context: &Context, command: &AccountCommand) -> Outcome {
    match command {
        AccountCommand::Add(args) => add(context, args),
        AccountCommand::List { json } => list(context, *json),
        AccountCommand::Test { name } => test(context, name),
        AccountCommand::Remove { name } => {
            let store = context.open_store()?;
            store.remove_account(name)?;
            note(&store, format!("account {name} removed"), name);
            println!("removed account {name}");
            context.rerender(&store);
            Ok(())
        }
        AccountCommand::Enable { name } => set_active(context, name, true),
        AccountCommand::Disable { name } => set_active(context, name, false),
    }
}

fn add(context: &Context, args: &AddArgs) -> Outcome {
    if args
        .user_agent
        .as_deref()
        .is_some_and(|ua| ua.trim().is_empty() || ua.chars().any(char::is_control))
    {
        return Err(Failure::usage(
            "--user-agent must not be empty (providers reject an empty user agent)",
        ));
    }
    let new = match (&args.m3u, &args.url, &args.username) {
        (Some(location), _, _) => match playlist::xtream_login(location) {
            Some(login) => {
                let new = xtream_from_get_php(args, login)?;
                println!(
                    "{} is an Xtream Codes panel's playlist (get.php): adding {} as the Xtream \
                     account it is (panel {}, user {})",
                    playlist::shown(location),
                    args.name,
                    playlist::shown(&new.server_url),
                    new.username
                );
                new
            }
            None => m3u_account(args, location)?,
        },
        (None, Some(url), Some(username)) => {
            let url = validate_url(url)?;
            if username.trim().is_empty() {
                return Err(Failure::usage("--username must not be empty"));
            }
            let password = prompt::password(args.password_stdin)?;
            NewAccount {
                name: args.name.clone(),
                kind: AccountKind::Xtream,
                server_url: url,
                username: username.clone(),
                password: password.into(),
                max_connections: args.max_connections,
                user_agent: args.user_agent.clone(),
            }
        }
        _ => {
            return Err(Failure::usage(
                "give --url and --username for an Xtream panel, or --m3u URL|FILE for a playlist",
            ));
        }
    };
    let store = context.open_store()?;
    store.add_account(&new)?;
    note(&store, format!("account {} added", args.name), &args.name);
    println!(
        "added account {}; fetch its catalog with `streamforge sync {}`",
        args.name, args.name
    );
    Ok(())
}

/// The Xtream account a `get.php` playlist URL logs in to.
fn xtream_from_get_php(args: &AddArgs, login: XtreamLogin) -> Result<NewAccount, Failure> {
    Ok(NewAccount {
        name: args.name.clone(),
        kind: AccountKind::Xtream,
        server_url: validate_url(&login.server_url)?,
        username: login.username,
        password: login.password.into(),
        max_connections: args.max_connections,
        user_agent: args.user_agent.clone(),
    })
}

/// A playlist source: an http(s) URL (shown by its origin only), or an existing file (stored by
/// its absolute path, so `sync` finds it from any directory).
fn m3u_account(args: &AddArgs, location: &str) -> Result<NewAccount, Failure> {
    let location = location.trim();
    let (location, shown) = if playlist::is_url(location) {
        let url = Url::parse(location).map_err(|e| {
            Failure::usage(format!(
                "invalid --m3u URL: {e} (expected e.g. http://provider.example/playlist.m3u)"
            ))
        })?;
        (location.to_owned(), url.origin())
    } else {
        let path = std::fs::canonicalize(location)
            .ok()
            .filter(|p| p.is_file())
            .ok_or_else(|| {
                Failure::usage(format!(
                    "--m3u {location}: not an http(s) URL and not a readable file"
                ))
            })?;
        let text = path.to_str().ok_or_else(|| {
            Failure::usage(format!("--m3u {location}: the path is not valid UTF-8"))
        })?;
        (text.to_owned(), text.to_owned())
    };
    Ok(NewAccount {
        name: args.name.clone(),
        kind: AccountKind::M3u {
            playlist: Password::new(location),
        },
        server_url: shown,
        username: String::new(),
        password: Password::new(""),
        max_connections: args.max_connections,
        user_agent: args.user_agent.clone(),
    })
}

/// The panel URL: http(s), no credentials, no query; stored without a trailing slash.
fn validate_url(text: &str) -> Result<String, Failure> {
    let trimmed = text.trim().trim_end_matches('/');
    let url = Url::parse(trimmed).map_err(|e| {
        Failure::usage(format!(
            "invalid --url: {e} (expected e.g. http://provider.example:8080)"
        ))
    })?;
    if url.path_and_query().contains('?') {
        return Err(Failure::usage(
            "invalid --url: give only the panel's address, without a query such as ?username=…",
        ));
    }
    if trimmed.contains('@') {
        return Err(Failure::usage(
            "invalid --url: do not put credentials in the URL; use --username and the password prompt",
        ));
    }
    Ok(trimmed.to_owned())
}

#[derive(Serialize)]
struct AccountRow {
    name: String,
    /// `xtream` or `m3u`.
    kind: &'static str,
    /// A playlist's origin (or file path): never its full URL.
    url: String,
    username: String,
    max_connections: u32,
    enabled: bool,
    user_agent: Option<String>,
    streams: u64,
    last_sync_at: Option<String>,
    subscription: Subscription,
}

fn list(context: &Context, json: bool) -> Outcome {
    let store = context.open_store()?;
    let mut rows = Vec::new();
    for account in store.accounts()? {
        rows.push(AccountRow {
            streams: store.stream_count(account.id)?,
            kind: account.kind.label(),
            name: account.name,
            url: account.server_url,
            username: account.username,
            max_connections: account.max_connections,
            enabled: account.is_active,
            user_agent: account.user_agent,
            last_sync_at: account.last_sync_at,
            subscription: account.subscription,
        });
    }
    if json {
        return output::json(&rows);
    }
    if rows.is_empty() {
        println!(
            "no accounts yet: add one with `streamforge account add NAME --url URL --username USER` \
             or `streamforge account add NAME --m3u URL|FILE`"
        );
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| {
            let subscription = match (r.subscription.status, r.subscription.expires_at) {
                (None, _) => "unknown".to_string(),
                (Some(status), None) => status,
                (Some(status), Some(until)) => format!("{status} until {until}"),
            };
            vec![
                r.name,
                r.kind.to_string(),
                r.url,
                if r.username.is_empty() {
                    "-".to_string()
                } else {
                    r.username
                },
                r.max_connections.to_string(),
                if r.enabled { "yes" } else { "no" }.into(),
                r.streams.to_string(),
                r.last_sync_at.unwrap_or_else(|| "never".into()),
                subscription,
            ]
        })
        .collect();
    output::table(
        &[
            "NAME",
            "KIND",
            "URL",
            "USERNAME",
            "MAX",
            "ENABLED",
            "STREAMS",
            "LAST SYNC",
            "SUBSCRIPTION",
        ],
        &table,
    );
    Ok(())
}

fn test(context: &Context, name: &str) -> Outcome {
    let store = context.open_store()?;
    let account = store.account(name)?;
    let http = upstream::Client::new(&upstream::ClientOptions {
        extra_ca_file: context.config.extra_ca_file().map(Into::into),
    })?;
    let user_agent = account
        .user_agent
        .clone()
        .unwrap_or_else(|| context.config.upstream.user_agent.clone());
    if let AccountKind::M3u { playlist } = &account.kind {
        let fetched = block_on(playlist::fetch(
            &http,
            &store,
            playlist.expose(),
            &user_agent,
            context.config.upstream.api_timeout,
            &mut |_| {},
        ))??;
        println!(
            "{name}: playlist ok at {}: {} streams, {} lines skipped, {} HLS streams refused \
             (Plex takes MPEG-TS only)",
            account.server_url,
            fetched.streams.len(),
            fetched.skipped,
            fetched.hls
        );
        return Ok(());
    }
    let client = XtreamClient::new(
        http,
        &account.server_url,
        &account.username,
        account.password.expose(),
        &user_agent,
        context.config.upstream.api_timeout,
    )?;
    let login = block_on(client.login())??;
    let info = login.user_info;
    let expires = info
        .expires_at()
        .map_or_else(|| "never".into(), crate::time::rfc3339);
    println!(
        "{name}: login ok at {}; status {}, expires {expires}, connections {}/{} in use{}",
        client.origin(),
        info.status.as_deref().unwrap_or("unknown"),
        info.active_cons.map_or("?".into(), |n| n.to_string()),
        info.max_connections.map_or("?".into(), |n| n.to_string()),
        if info.is_trial { ", trial" } else { "" }
    );
    if let Some(panel_max) = info.max_connections
        && panel_max >= 1
        && i64::from(account.max_connections) > panel_max
    {
        println!(
            "warning: configured max_connections {} exceeds the panel's {panel_max}; the panel would close our oldest stream",
            account.max_connections
        );
    }
    Ok(())
}

fn set_active(context: &Context, name: &str, active: bool) -> Outcome {
    let store = context.open_store()?;
    store.set_account_active(name, active)?;
    let state = if active { "enabled" } else { "disabled" };
    note(&store, format!("account {name} {state}"), name);
    println!("account {name} {state}");
    context.rerender(&store);
    Ok(())
}

fn note(store: &Store, message: String, account: &str) {
    let _ = store.log_event(&Event {
        level: Level::Info,
        category: "account",
        message,
        details: json!({ "account": account }),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            validate_url("http://panel.example:8080/").unwrap(),
            "http://panel.example:8080"
        );
        assert!(validate_url("ftp://panel").is_err());
        assert!(validate_url("http://panel/get.php?username=a").is_err());
        assert!(validate_url("http://user:pass@panel").is_err());
        assert!(validate_url("not a url").is_err());
    }
}
