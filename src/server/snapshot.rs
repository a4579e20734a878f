//! The in-memory snapshot every non-stream request is served from: the HDHomeRun documents and
//! the M3U, rendered once from the store whenever it changes. The request path never touches
//! SQLite.

use bytes::Bytes;

use crate::config::{ChannelIds, Config};
use crate::guide::{LineupChannel, lineup};
use crate::hdhr::{self, Device, GuideNumber, LineupEntry, M3uEntry};
use crate::store::{Store, StoreError};
use crate::xtream::quality::Tier;

/// Rendered documents plus the lineup they describe.
pub struct Snapshot {
    pub device: Device,
    pub discover_json: Bytes,
    pub lineup_status_json: Bytes,
    pub lineup_json: Bytes,
    pub lineup_xml: Bytes,
    pub device_xml: Bytes,
    pub playlist_m3u: Bytes,
    pub channels: Vec<LineupChannel>,
}

impl Snapshot {
    /// Reads the lineup and accounts and renders every document for `device` (whose tuner count
    /// is filled in here from the config or the accounts).
    pub fn build(
        store: &Store,
        config: &Config,
        mut device: Device,
    ) -> Result<Snapshot, StoreError> {
        device.tuner_count = tuner_count(store, config)?;
        let channels = lineup(store)?;
        let base = device.base().to_string();
        let mut entries = Vec::with_capacity(channels.len());
        let mut m3u = Vec::with_capacity(channels.len());
        for channel in &channels {
            // Store numbers are validated digits and dots, which GuideNumber accepts.
            let Ok(number) = channel.channel.number.parse::<GuideNumber>() else {
                continue;
            };
            let primary = &channel.streams[0];
            entries.push(LineupEntry {
                number: number.clone(),
                name: channel.channel.name().to_string(),
                url: format!("{base}/auto/v{number}"),
                hd: Tier::from_rank(primary.tier) >= Tier::Hd,
                favorite: false,
            });
            m3u.push(M3uEntry {
                tvg_id: channel.epg_id(config.epg.channel_ids).to_string(),
                tvg_chno: number.clone(),
                tvg_name: channel.channel.name().to_string(),
                tvg_logo: channel.channel.icon.clone().unwrap_or_default(),
                group_title: primary.category.clone().unwrap_or_default(),
                url: format!("{base}/stream/{number}"),
            });
        }
        Ok(Snapshot {
            discover_json: hdhr::discover_json(&device).into(),
            lineup_status_json: hdhr::lineup_status_json().into(),
            lineup_json: hdhr::lineup_json(&entries).into(),
            lineup_xml: hdhr::lineup_xml(&entries).into(),
            device_xml: hdhr::device_xml(&device).into(),
            playlist_m3u: hdhr::playlist_m3u(&m3u, &format!("{base}/epg.xml")).into(),
            device,
            channels,
        })
    }

    /// The lineup channel a stream path names: its number, or with `channel_ids = "source"`
    /// also its guide id.
    pub fn channel(&self, reference: &str, ids: ChannelIds) -> Option<&LineupChannel> {
        self.channels
            .iter()
            .find(|c| c.channel.number == reference)
            .or_else(|| {
                (ids == ChannelIds::Source)
                    .then(|| {
                        self.channels
                            .iter()
                            .find(|c| c.channel.channel_id == reference)
                    })
                    .flatten()
            })
    }
}

/// `device.tuner_count`, or when 0 the sum of the enabled accounts' connections.
fn tuner_count(store: &Store, config: &Config) -> Result<u32, StoreError> {
    if config.device.tuner_count > 0 {
        return Ok(config.device.tuner_count);
    }
    Ok(store
        .accounts()?
        .iter()
        .filter(|a| a.is_active)
        .map(|a| a.max_connections)
        .sum())
}
