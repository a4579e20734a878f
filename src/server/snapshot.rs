//! The in-memory snapshot every non-stream request is served from: the HDHomeRun documents, the
//! M3U and what the appliance's page shows of the database (recent events included), read once
//! from the store whenever it changes. The request path never touches SQLite.

use bytes::Bytes;

use crate::config::{ChannelIds, Config};
use crate::guide::{LineupChannel, lineup};
use crate::hdhr::{self, Device, GuideNumber, LineupEntry, M3uEntry};
use crate::playlist;
use crate::relay::{ChannelInfo, StreamSource};
use crate::store::{Account, Mapping, Store, StoreError};
use crate::web::Overview;
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
    /// What the relay needs to tune each lineup channel, in lineup order.
    pub tunable: Vec<ChannelInfo>,
    /// `max_connections` of every enabled account.
    pub account_limits: Vec<(i64, u32)>,
    /// What the appliance's page shows of the database.
    pub overview: Overview,
}

impl Snapshot {
    /// Reads the lineup and accounts and renders every document for `device` (whose tuner count
    /// is filled in here from the config or the accounts).
    pub fn build(
        store: &Store,
        config: &Config,
        mut device: Device,
    ) -> Result<Snapshot, StoreError> {
        let accounts: Vec<Account> = store
            .accounts()?
            .into_iter()
            .filter(|a| a.is_active)
            .collect();
        device.tuner_count = match config.device.tuner_count {
            0 => accounts.iter().map(|a| a.max_connections).sum(),
            configured => configured,
        };
        let channels = lineup(store)?;
        let tunable = channels
            .iter()
            .map(|c| ChannelInfo {
                number: c.channel.number.clone(),
                name: c.channel.name().to_string(),
                guide_id: c.channel.channel_id.clone(),
                sources: c
                    .streams
                    .iter()
                    .filter_map(|m| stream_source(store, m, &accounts, config))
                    .collect(),
            })
            .collect();
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
            tunable,
            account_limits: accounts.iter().map(|a| (a.id, a.max_connections)).collect(),
            overview: Overview::read(store)?,
        })
    }

    /// The channel a stream path names: its number, or with `channel_ids = "source"` also its
    /// guide id.
    pub fn channel(&self, reference: &str, ids: ChannelIds) -> Option<&ChannelInfo> {
        self.tunable
            .iter()
            .find(|c| c.number == reference)
            .or_else(|| {
                (ids == ChannelIds::Source)
                    .then(|| self.tunable.iter().find(|c| c.guide_id == reference))
                    .flatten()
            })
    }
}

/// Where the relay fetches a mapped stream: the account's `/live/…` URL, or a playlist stream's
/// own URL, with its user agent. A stream that cannot be located is left out of the channel.
fn stream_source(
    store: &Store,
    mapping: &Mapping,
    accounts: &[Account],
    config: &Config,
) -> Option<StreamSource> {
    let account = accounts.iter().find(|a| a.id == mapping.account_id)?;
    let location = match playlist::locate(
        store,
        account,
        mapping.stream_row,
        mapping.stream_id,
        &config.upstream.user_agent,
    ) {
        Ok(location) => location,
        Err(e) => {
            log::warn!("{e}");
            return None;
        }
    };
    Some(StreamSource {
        stream: mapping.stream_ref(),
        stream_row: mapping.stream_row,
        account_id: account.id,
        url: location.url,
        user_agent: location.user_agent,
        referrer: location.referrer,
    })
}
