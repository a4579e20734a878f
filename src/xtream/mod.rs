//! The Xtream Codes API (PROTOCOLS §4): login, live categories and live streams, parsed leniently;
//! the quality tier of each stream name; and the catalog sync that stores them.

pub(crate) mod api;
mod client;
mod lenient;
pub(crate) mod quality;
pub(crate) mod sync;

pub use client::{XtreamClient, live_url};
pub use quality::parse as parse_quality;
