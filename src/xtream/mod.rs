//! The Xtream Codes API (PROTOCOLS §4): login, live categories and live streams, parsed leniently,
//! plus the quality tier of each stream name.

pub mod api;

mod lenient;
pub mod quality;
