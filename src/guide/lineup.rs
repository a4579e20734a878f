//! The lineup: the channels the tuner serves (enabled, with at least one stream on an enabled
//! account), in number order, each with its streams in priority order; and the EPG rendered
//! for exactly those channels. Lineup, M3U and EPG are all derived from this one list.

use std::path::Path;

use crate::config::ChannelIds;
use crate::store::{GuideChannel, Mapping, Store, StoreError};
use crate::xmltv::{self, Limits};

use super::sources::cache_path;

/// A served channel and its streams, best first.
#[derive(Debug, Clone)]
pub struct LineupChannel {
    pub channel: GuideChannel,
    pub streams: Vec<Mapping>,
}

impl LineupChannel {
    /// The channel's id in the served EPG and the M3U `tvg-id`.
    pub fn epg_id(&self, ids: ChannelIds) -> &str {
        match ids {
            ChannelIds::Number => &self.channel.number,
            ChannelIds::Source => &self.channel.channel_id,
        }
    }
}

/// The channels to serve, ordered by number.
pub fn lineup(store: &Store) -> Result<Vec<LineupChannel>, StoreError> {
    let mut mappings = store.mappings(None)?;
    mappings.retain(|m| m.account_active);
    let mut lineup = Vec::new();
    for channel in store.guide_channels()? {
        if !channel.enabled {
            continue;
        }
        let streams: Vec<Mapping> = mappings
            .iter()
            .filter(|m| m.channel_row == channel.id)
            .cloned()
            .collect();
        if !streams.is_empty() {
            lineup.push(LineupChannel { channel, streams });
        }
    }
    Ok(lineup)
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("reading the lineup: {0}")]
    Store(StoreError),
    #[error("rendering the EPG: {0}")]
    Xmltv(xmltv::XmltvError),
}

/// Writes `epg.xml` and `epg.xml.gz` into the data dir for the current lineup, from the cached
/// sources. On failure the previous files stay.
pub fn render_epg(
    store: &Store,
    data_dir: &Path,
    ids: ChannelIds,
    limits: &Limits,
) -> Result<xmltv::RenderReport, RenderError> {
    let lineup = lineup(store).map_err(RenderError::Store)?;
    let channels: Vec<xmltv::LineupChannel> = lineup
        .iter()
        .map(|l| xmltv::LineupChannel {
            source_id: l.channel.source_id,
            source_channel_id: l.channel.channel_id.clone(),
            output_id: l.epg_id(ids).to_string(),
            number: l.channel.number.clone(),
            name: l.channel.name().to_string(),
            icon: l.channel.icon.clone(),
        })
        .collect();
    let sources: Vec<xmltv::SourceFile> = store
        .sources()
        .map_err(RenderError::Store)?
        .into_iter()
        .map(|s| xmltv::SourceFile {
            source_id: s.id,
            path: cache_path(data_dir, &s),
            shift_seconds: s.shift_seconds,
        })
        .filter(|s| s.path.exists())
        .collect();
    xmltv::render(&channels, &sources, data_dir, limits).map_err(RenderError::Xmltv)
}
