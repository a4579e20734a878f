//! StreamForge: an IPTV tuner appliance.
//!
//! Layers, from the edge down (dependencies point downwards only):
//! - `cli`: the `streamforge` command line; opens the store and drives the rest.
//! - `xtream`: the Xtream Codes API (auth, categories, live streams) and stream-name quality parsing.
//! - `upstream`: our HTTP/1.1 client (TCP or TLS, redirects, body framing) yielding shared buffers.
//! - `net`: the thin seam over tokio-uring (runtime start, connect with deadline, socket close).
//! - `store`: SQLite persistence (schema, migrations, encrypted passwords, events).
//! - `config`: the TOML config and data-dir resolution.
//! - `fake_provider`: a loopback Xtream panel for tests and `streamforge demo`.

pub mod cli;
pub mod config;
pub mod fake_provider;
pub mod guide;
pub mod hdhr;
pub mod http;
pub mod matching;
pub mod net;
pub mod store;
pub mod time;
pub mod upstream;
pub mod xmltv;
pub mod xtream;
