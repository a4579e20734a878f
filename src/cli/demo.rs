//! `streamforge demo`: the appliance against its built-in demo provider, on loopback.

use std::net::SocketAddr;

use clap::Args;

use super::{Context, Failure, Outcome};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to serve (loopback by default: the demo is for this machine).
    #[arg(long, default_value = "127.0.0.1:5004", value_name = "ADDR:PORT")]
    listen: SocketAddr,
}

pub fn run(context: &Context, args: &DemoArgs) -> Outcome {
    // The demo never touches a real installation unless a data dir was chosen on purpose.
    let data_dir = context.data_dir_chosen.then(|| context.data_dir.clone());
    crate::demo::run(context.config.clone(), data_dir, args.listen).map_err(Failure::new)
}
