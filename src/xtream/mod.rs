//! The Xtream Codes API (PROTOCOLS §4): login, live categories and live streams, parsed leniently;
//! the quality tier of each stream name; and the catalog sync that stores them.

pub mod api;
mod client;
mod lenient;
pub mod quality;
pub mod sync;

pub use client::{XtreamClient, XtreamError, live_url};
