//! `streamforge status`: asks the running server what it is relaying.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use crate::measure::Measurement;
use crate::upstream::{self, RequestOptions, Url};

use super::{Context, Failure, Outcome, block_on, output};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The server's address (default: the first `listen` address of the config).
    #[arg(long, value_name = "ADDR:PORT")]
    server: Option<SocketAddr>,
    /// Print the sessions as one JSON array.
    #[arg(long)]
    json: bool,
}

pub fn run(context: &Context, args: &StatusArgs) -> Outcome {
    let status = fetch(context, args.server)?;
    let sessions = status["sessions"].as_array().cloned().unwrap_or_default();
    if args.json {
        return output::json(&sessions);
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            vec![
                text(&s["channel"]),
                text(&s["name"]),
                text(&s["state"]),
                text(&s["stream"]),
                text(&s["viewers"]),
                serde_json::from_value::<Measurement>(s["measured"].clone())
                    .map_or_else(|_| "-".into(), |m| m.summary()),
                format!("{:.1} MB", s["bytes"].as_f64().unwrap_or(0.0) / 1e6),
                text(&s["started_at"]),
            ]
        })
        .collect();
    println!(
        "tuners in use: {} of {}",
        text(&status["tuners"]["in_use"]),
        text(&status["tuners"]["total"])
    );
    if rows.is_empty() {
        println!("nothing is playing");
        return Ok(());
    }
    output::table(
        &[
            "CHANNEL", "NAME", "STATE", "STREAM", "VIEWERS", "MEASURED", "RELAYED", "SINCE",
        ],
        &rows,
    );
    Ok(())
}

/// The running server's `/status`, from `server` or the config's first `listen` address.
pub(super) fn fetch(context: &Context, server: Option<SocketAddr>) -> Result<Value, Failure> {
    let mut addr = server
        .or_else(|| context.config.listen.first().copied())
        .ok_or_else(|| Failure::usage("no server address: pass --server ADDR:PORT"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = Url::parse(&format!("http://{addr}/status"))?;
    let http = upstream::Client::new(&upstream::ClientOptions::default())?;
    let options = RequestOptions {
        head_timeout: Duration::from_secs(3),
        idle_timeout: Some(Duration::from_secs(3)),
        ..RequestOptions::new("streamforge-cli")
    };
    let body = block_on(async {
        let response = http.get(&url, &options).await?;
        if response.status != 200 {
            return Err(Failure::new(format!(
                "{addr} answered HTTP {}",
                response.status
            )));
        }
        Ok(response.read_to_end(1 << 20).await?)
    })
    .and_then(|r| r)
    .map_err(|e| {
        Failure::new(format!(
            "cannot reach the server at {addr} (is `streamforge serve` running?): {}",
            e.message()
        ))
    })?;
    serde_json::from_slice(&body)
        .map_err(|e| Failure::new(format!("{addr}/status is not JSON: {e}")))
}
