//! XMLTV guides: reading provider sources and rendering the served EPG, streaming, in memory
//! bounded by [`Limits`] whatever the input (real guides are 20–200 MB, often gzipped).
//!
//! - [`open_source`]: a cached source file as bytes, gunzipped if its magic bytes say so.
//! - [`read_channels`]: a guide's channels; programmes are counted and their times checked.
//! - [`render`]: `epg.xml` and `epg.xml.gz` for the lineup, replaced atomically.
//! - [`XmltvTime`]: timestamps, parsed, shifted and formatted.
//!
//! No network and no database here: the caller fetches sources and stores channels.

mod channels;
mod error;
mod input;
mod output;
mod programme;
mod render;
mod source;
mod stream;
mod text;
mod time;

#[cfg(test)]
mod testdata;
#[cfg(test)]
mod tests;

pub use channels::read_channels;
pub use error::XmltvError;
pub use render::{LineupChannel, RenderReport, SourceFile, render};
pub use source::open_source;

/// Caps on what a guide can make us allocate or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes a gzipped source may decompress to (default 2 GiB).
    pub max_decompressed_bytes: u64,
    /// Longest single tag or run of text (default 1 MiB): the parser buffers one at a time.
    pub max_token_bytes: usize,
    /// Longest display name or lcn kept, cut to fit; longer channel ids and icon URLs are
    /// ignored (default 1 KiB).
    pub max_text_bytes: usize,
    /// Display names kept per channel (default 8).
    pub max_display_names: usize,
    /// Channels per guide (default 100 000).
    pub max_channels: usize,
    /// Text kept for all of a guide's channels together (default 32 MiB; real guides need a
    /// few hundred KiB).
    pub max_channel_bytes: usize,
    /// Deepest element nesting inside `<tv>` (default 32).
    pub max_depth: usize,
    /// Largest programme rendered (default 256 KiB); larger ones are skipped.
    pub max_programme_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_decompressed_bytes: 2 * 1024 * 1024 * 1024,
            max_token_bytes: 1024 * 1024,
            max_text_bytes: 1024,
            max_display_names: 8,
            max_channels: 100_000,
            max_channel_bytes: 32 * 1024 * 1024,
            max_depth: 32,
            max_programme_bytes: 256 * 1024,
        }
    }
}
