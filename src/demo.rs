//! `streamforge demo`: the whole appliance on loopback against the built-in demo provider (the
//! fake panel with a few channels of real, playable MPEG-TS) and a generated guide. The primary
//! stream of channel 101 drops every minute or so, so failover and the return to it can be
//! watched in `streamforge events --follow`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::fake_provider::{DEMO_PRIMARY_STREAM, FakeProvider, Fault, ProviderOptions};
use crate::guide::sources::{self, RefreshSettings};
use crate::server::{ServeOptions, detected_base_url, serve};
use crate::store::{Account, AccountKind, NewAccount, NewSource, Source, SourceKind, Store};
use crate::time::Civil;
use crate::upstream;
use crate::xtream::sync::{SyncSettings, sync_account};

const ACCOUNT: &str = "demo";
const GUIDE: &str = "demo-guide";
/// How long the flaky primary plays before each drop: about a minute at the clip's bitrate.
const PRIMARY_DROP_AFTER: usize = 3_000_000;

/// The demo guide's channels: XMLTV id, name, number.
const CHANNELS: [(&str, &str, &str); 4] = [
    ("sfone.uk", "StreamForge One", "101"),
    ("sfnews.uk", "SF News", "102"),
    ("sfsports.uk", "SF Sports", "103"),
    ("sfmovies.uk", "SF Movies", "104"),
];

/// Runs the demo until SIGTERM or SIGINT; `data_dir` is used when the user chose one, else a
/// temporary dir that is removed at the end.
pub fn run(
    mut config: Config,
    data_dir: Option<PathBuf>,
    listen: SocketAddr,
) -> Result<(), String> {
    let temporary = data_dir.is_none();
    let data_dir = data_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("streamforge-demo-{}", std::process::id()))
    });
    let result = prepare_and_serve(&mut config, &data_dir, listen);
    if temporary {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    result
}

fn prepare_and_serve(
    config: &mut Config,
    data_dir: &Path,
    listen: SocketAddr,
) -> Result<(), String> {
    // The provider serves the demo guide too, so `epg add xtream:ACCOUNT` works against it.
    let provider = FakeProvider::start(ProviderOptions {
        xmltv: Some(demo_guide(SystemTime::now()).into_bytes()),
        ..ProviderOptions::default()
    })
    .map_err(|e| format!("starting the demo provider: {e}"))?;
    provider.set_stream_fault(
        DEMO_PRIMARY_STREAM,
        Fault::DropAfter(PRIMARY_DROP_AFTER),
        None,
    );
    let store = Store::open(data_dir).map_err(|e| e.to_string())?;
    let account = match store.account(ACCOUNT) {
        Ok(account) => account,
        Err(_) => store
            .add_account(&NewAccount {
                name: ACCOUNT.into(),
                kind: AccountKind::Xtream,
                server_url: provider.http_url(),
                username: "demo".into(),
                password: "demo".to_string().into(),
                max_connections: 2,
                user_agent: None,
            })
            .map_err(|e| e.to_string())?,
    };
    if account.server_url != provider.http_url() {
        return Err(format!(
            "{} holds a demo from another run (its provider is gone): use a new --data-dir",
            data_dir.display()
        ));
    }
    let guide_path = data_dir.join("demo-guide.xml");
    std::fs::write(&guide_path, demo_guide(SystemTime::now()))
        .map_err(|e| format!("writing {}: {e}", guide_path.display()))?;
    let source = match store.source(GUIDE) {
        Ok(source) => source,
        Err(_) => store
            .add_source(&NewSource {
                name: GUIDE.into(),
                kind: SourceKind::File,
                location: guide_path.to_string_lossy().into_owned(),
                shift_seconds: 0,
            })
            .map_err(|e| e.to_string())?,
    };
    load(config, &store, data_dir, &account, &source)?;
    drop(store);

    // What clients can use: the LAN address when listening on all interfaces, as `serve` does.
    let base = detected_base_url(&[listen]);
    println!("StreamForge demo: a built-in provider with a few channels of real MPEG-TS.");
    println!("  playlist (VLC, Kodi, Jellyfin):  {base}/playlist.m3u");
    println!("  guide (XMLTV):                   {base}/epg.xml");
    let tuner = base.trim_start_matches("http://");
    println!("  HDHomeRun lineup (Plex: add {tuner} as the tuner): {base}/lineup.json");
    println!("  watch channel 101:               vlc {base}/auto/v101");
    println!("Channel 101's primary stream drops about once a minute: watch the failover and the");
    println!(
        "return to it with `streamforge --data-dir {} events --follow`.",
        data_dir.display()
    );
    println!(
        "  its provider (Xtream panel, user demo, password demo): {}",
        provider.http_url()
    );
    println!(
        "  and its M3U playlist: {}/get.php?username=demo&password=demo&type=m3u_plus",
        provider.http_url()
    );
    println!("Ctrl-C stops the demo.");
    serve(
        config.clone(),
        data_dir.to_path_buf(),
        ServeOptions {
            listen: vec![listen],
            advertise: None,
            discovery: false,
        },
    )
}

/// Loads an appliance's data in-process: syncs `account`, ingests the guide `source`, and
/// auto-maps. `streamforge demo` and the benchmark harness prepare their data dirs with it.
pub fn load(
    config: &Config,
    store: &Store,
    data_dir: &Path,
    account: &Account,
    source: &Source,
) -> Result<(), String> {
    let http =
        upstream::Client::new(&upstream::ClientOptions::default()).map_err(|e| e.to_string())?;
    crate::net::run(async {
        let settings = SyncSettings {
            default_user_agent: &config.upstream.user_agent,
            api_timeout: config.upstream.api_timeout,
        };
        sync_account(&http, store, account, &settings, &mut |_| {})
            .await
            .map_err(|e| format!("sync: {e}"))?;
        let settings = RefreshSettings {
            user_agent: &config.upstream.user_agent,
            api_timeout: config.upstream.api_timeout,
            first_channel_number: config.epg.first_channel_number,
            limits: Default::default(),
        };
        sources::refresh(&http, store, data_dir, source, &settings)
            .await
            .map(|_| ())
            .map_err(|e| format!("guide refresh: {e}"))
    })
    .map_err(|e| e.to_string())??;
    crate::guide::automap::auto_map(store, 0.8, false).map_err(|e| e.to_string())?;
    Ok(())
}

/// A guide for the demo channels: half-hour programmes from two hours ago to a day ahead.
pub fn demo_guide(now: SystemTime) -> String {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let start = now - now % 1800 - 2 * 3600;
    let stamp = |unix: i64| {
        let c = Civil::from_unix(unix);
        format!(
            "{:04}{:02}{:02}{:02}{:02}{:02} +0000",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        )
    };
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE tv SYSTEM \"xmltv.dtd\">\n<tv generator-info-name=\"StreamForge demo\">\n",
    );
    for (id, name, number) in CHANNELS {
        let _ = writeln!(
            xml,
            "  <channel id=\"{id}\"><display-name>{name}</display-name><display-name>{number}</display-name></channel>"
        );
    }
    let shows = [
        "Morning Show",
        "Test Card Classics",
        "The News",
        "Match Highlights",
        "Feature Film",
    ];
    for (index, (id, name, _)) in CHANNELS.iter().enumerate() {
        for slot in 0..52 {
            let begin = start + slot * 1800;
            let title = shows[(slot as usize + index) % shows.len()];
            let _ = writeln!(
                xml,
                "  <programme start=\"{}\" stop=\"{}\" channel=\"{id}\"><title lang=\"en\">{title}</title><desc lang=\"en\">{title} on {name}.</desc></programme>",
                stamp(begin),
                stamp(begin + 1800)
            );
        }
    }
    xml.push_str("</tv>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_demo_guide_parses_with_every_channel_and_numbers() {
        let guide = demo_guide(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let scan = crate::xmltv::read_channels(guide.as_bytes(), &Default::default()).unwrap();
        assert_eq!(scan.channels.len(), CHANNELS.len());
        assert_eq!(scan.channels[0].number.as_deref(), Some("101"));
        assert_eq!(scan.programmes, 52 * CHANNELS.len() as u64);
        assert_eq!(scan.bad_timestamps, 0);
    }
}
