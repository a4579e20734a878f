//! StreamForge: an IPTV tuner appliance.
//!
//! Layers, from the edge down (dependencies point downwards only):
//! - `cli`: the `streamforge` command line; opens the store and drives the rest.
//! - `server`: `serve`, composing the HTTP server, discovery, the snapshot and refreshes.
//! - `web`: the appliance's pages for people (`/`, `/tuners.html`, `/lineup.html`), rendered
//!   from the snapshot and the relay's status.
//! - `hdhr`, `http`: the tuner's face on the LAN (HDHomeRun documents and discovery; our HTTP/1.1
//!   server).
//! - `relay`: the live relay: per-channel sessions (a pure state machine), shared upstreams,
//!   fan-out to viewers, tuner accounting.
//! - `guide`: guide sources, auto-mapping, the lineup and the rendered EPG.
//! - `xtream`: the Xtream Codes API (auth, categories, live streams), quality parsing, catalog sync.
//! - `playlist`: plain M3U playlist accounts: fetching a playlist into catalog streams, `get.php`
//!   recognition, and where a stored stream (Xtream or playlist) is fetched from.
//! - `m3u`: pure logic for plain M3U playlists (a streaming, lenient parser).
//! - `xmltv`, `matching`: pure logic for XMLTV (streaming parse and render) and for pairing guide
//!   channels with provider streams.
//! - `upstream`: our HTTP/1.1 client (TCP or TLS, redirects, body framing) yielding shared buffers.
//! - `net`: the thin seam over tokio-uring (runtime start, connect with deadline, socket close).
//! - `store`: SQLite persistence (schema, migrations, encrypted secrets, events).
//! - `config`, `time`: the TOML config and data-dir resolution; UTC calendar time.
//! - `measure`: what was measured of a stream (codec, picture, audio, bit rate) and how it ranks.
//! - `logging`: the `log` facade's records to stderr (journald priorities when it is the journal).
//! - `demo`: `streamforge demo`, the appliance against the built-in provider and guide.
//! - `fake_provider`: a loopback Xtream panel for tests and `streamforge demo`.

pub mod cli;
pub mod config;
pub mod demo;
pub mod fake_provider;
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod guide;
pub mod hdhr;
pub mod http;
pub(crate) mod logging;
pub mod m3u;
pub(crate) mod matching;
pub mod measure;
pub(crate) mod net;
pub(crate) mod playlist;
pub mod relay;
pub(crate) mod server;
pub mod store;
pub mod time;
pub(crate) mod upstream;
pub(crate) mod web;
pub mod xmltv;
pub mod xtream;
