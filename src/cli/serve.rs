//! `streamforge serve`: run the tuner.

use std::net::SocketAddr;

use clap::Args;

use crate::server::{ServeOptions, serve};

use super::{Context, Failure, Outcome};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (repeatable); default: the config's `listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,
    /// The URL clients are told to use, e.g. http://192.168.1.50:5004 (default: detected).
    #[arg(long, value_name = "URL")]
    advertise: Option<String>,
    /// Do not answer HDHomeRun discovery (UDP/TCP 65001) or SSDP.
    #[arg(long)]
    no_discovery: bool,
}

pub fn run(context: &Context, args: &ServeArgs) -> Outcome {
    if let Some(url) = &args.advertise
        && !(url.starts_with("http://") && url.len() > 7)
    {
        return Err(Failure::usage(
            "--advertise must be an http:// URL such as http://192.168.1.50:5004",
        ));
    }
    serve(
        context.config.clone(),
        context.data_dir.clone(),
        ServeOptions {
            listen: args.listen.clone(),
            advertise: args.advertise.clone(),
            discovery: !args.no_discovery,
        },
    )
    .map_err(Failure::new)
}
