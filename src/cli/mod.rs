//! The `streamforge` command line (SPEC §3): argument parsing, then one function per command.
//!
//! Exit codes: 0 ok, 1 failure, 2 usage. Every failure prints one clear line to stderr.

mod account;
mod channels;
mod demo;
mod epg;
mod events;
mod identity;
mod map;
mod output;
mod probe;
mod progress;
mod prompt;
mod serve;
mod status;
mod streams;
mod sync;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "streamforge",
    version,
    about = "IPTV tuner appliance: Xtream Codes + XMLTV in, an HDHomeRun tuner for Plex out"
)]
pub struct Cli {
    /// Config file (TOML). Default: /etc/streamforge/streamforge.toml if present, else built-in defaults.
    #[arg(long, global = true, env = "STREAMFORGE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where the database and secret key live. Default: the config's data_dir, else $XDG_DATA_HOME/streamforge.
    #[arg(long, global = true, env = "STREAMFORGE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the tuner: HDHomeRun emulation, discovery, M3U and EPG, and the stream relay.
    Serve(serve::ServeArgs),
    /// Run the whole appliance on loopback against a built-in demo provider and guide.
    Demo(demo::DemoArgs),
    /// Ask the running server what it is relaying.
    Status(status::StatusArgs),
    /// Manage Xtream Codes subscriptions.
    #[command(subcommand)]
    Account(account::AccountCommand),
    /// Refresh provider catalogs (categories and live streams).
    Sync(sync::SyncArgs),
    /// List provider streams with their parsed quality.
    Streams(streams::StreamsArgs),
    /// Measure streams (codec, picture, frame rate, audio, bit rate) by reading a few seconds of
    /// each, on free connections only; then order the mappings by what was measured.
    Probe(probe::ProbeArgs),
    /// Manage XMLTV guide sources.
    #[command(subcommand)]
    Epg(epg::EpgCommand),
    /// List guide channels with their numbers and mapped streams.
    Channels(channels::ChannelsArgs),
    /// Enable, disable or renumber a guide channel (by guide id or number).
    #[command(subcommand)]
    Channel(channels::ChannelCommand),
    /// Map guide channels to provider streams.
    #[command(subcommand)]
    Map(map::MapCommand),
    /// Show the event log.
    Events(events::EventsArgs),
}

/// A command's failure: the message for stderr and the exit code.
#[derive(Debug)]
pub struct Failure {
    message: String,
    code: i32,
}

impl Failure {
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Something went wrong while doing the work (exit 1).
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 1,
        }
    }

    /// The command was asked for something it cannot do as given (exit 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 2,
        }
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure::new(error.to_string())
    }
}

pub type Outcome = Result<(), Failure>;

/// What every command may need: the loaded config and the resolved data dir.
pub struct Context {
    pub config: Config,
    pub data_dir: PathBuf,
    /// Whether the data dir was chosen (flag, environment or config) rather than defaulted.
    pub data_dir_chosen: bool,
}

impl Context {
    fn load(cli: &Cli) -> Result<Context, Failure> {
        let (config, _path) = Config::load(cli.config.as_deref())?;
        let data_dir =
            config::resolve_data_dir(cli.data_dir.as_deref(), &config).map_err(Failure::new)?;
        Ok(Context {
            data_dir_chosen: cli.data_dir.is_some() || config.data_dir.is_some(),
            config,
            data_dir,
        })
    }

    pub fn open_store(&self) -> Result<Store, Failure> {
        Ok(Store::open(&self.data_dir)?)
    }

    /// Renders the served EPG again after a change to the lineup. The change itself has been
    /// made; a failed render keeps the previous EPG and is reported as a warning.
    pub fn rerender(&self, store: &Store) {
        let limits = crate::xmltv::Limits::default();
        if let Err(e) =
            crate::guide::render_epg(store, &self.data_dir, self.config.epg.channel_ids, &limits)
        {
            eprintln!("warning: the EPG was not re-rendered (the previous one is kept): {e}");
        }
    }
}

/// Parses the arguments, runs the command, and returns the process exit code.
pub fn main() -> i32 {
    ignore_file_size_signal();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match run(&cli) {
        Ok(()) => 0,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            failure.code
        }
    }
}

/// A file size limit (`ulimit -f`, systemd's `LimitFSIZE=`) reached while writing kills the
/// process with SIGXFSZ by default, mid-transaction and without a word. Ignored, the write fails
/// with EFBIG instead: the command reports which file it could not write, and `serve` keeps
/// relaying while its event log drops writes.
fn ignore_file_size_signal() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_IGN installs no handler code, and this runs before any other thread starts.
    let _ = unsafe { signal(Signal::SIGXFSZ, SigHandler::SigIgn) };
}

fn run(cli: &Cli) -> Outcome {
    let context = Context::load(cli)?;
    crate::logging::init(context.config.log.level);
    // The demo keeps to a temporary dir of its own unless given one.
    if !matches!(cli.command, Command::Demo(_)) || cli.data_dir.is_some() {
        identity::assume_data_dir_owner(&context.data_dir)?;
    }
    match &cli.command {
        Command::Serve(args) => serve::run(&context, args),
        Command::Demo(args) => demo::run(&context, args),
        Command::Status(args) => status::run(&context, args),
        Command::Account(command) => account::run(&context, command),
        Command::Sync(args) => sync::run(&context, args),
        Command::Streams(args) => streams::run(&context, args),
        Command::Probe(args) => probe::run(&context, args),
        Command::Epg(command) => epg::run(&context, command),
        Command::Channels(args) => channels::list(&context, args),
        Command::Channel(command) => channels::run(&context, command),
        Command::Map(command) => map::run(&context, command),
        Command::Events(args) => events::run(&context, args),
    }
}

/// Runs async work (network I/O) on the io_uring runtime, turning its absence into a clear error.
pub fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, Failure> {
    crate::net::run(future).map_err(|e| Failure::new(e.to_string()))
}
