//! `streamforge serve`: the appliance itself. It composes the HTTP server (documents from an
//! in-memory snapshot, EPG from the rendered files), HDHomeRun discovery, a watcher that rebuilds
//! the snapshot when the database changes (CLI edits show up without a restart), and a refresh
//! thread that re-syncs catalogs and guides on their intervals.
//!
//! Everything on the serving thread is non-blocking except the snapshot rebuild, which reads
//! SQLite only when `data_version` says another connection committed; long refreshes run on
//! their own thread with their own store connection.

mod address;
mod events;
mod refresh;
mod routes;
mod snapshot;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::Config;
use crate::hdhr::{self, Device, DeviceId, DiscoverySettings};
use crate::http::{self, ServerConfig, Shutdown, ShutdownTrigger};
use crate::relay::{Relay, Services, UpstreamConnector};
use crate::store::{Event, Level, Store};

pub use address::detected_base_url;
pub use snapshot::Snapshot;

/// How often the database is checked for changes made by other processes.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// Where the generated device id is kept.
const DEVICE_ID_SETTING: &str = "device_id";

/// What `serve` was asked for on the command line, over the config.
pub struct ServeOptions {
    pub listen: Vec<SocketAddr>,
    pub advertise: Option<String>,
    pub discovery: bool,
}

/// Runs the appliance until SIGTERM or SIGINT.
pub fn serve(config: Config, data_dir: PathBuf, options: ServeOptions) -> Result<(), String> {
    let store = Store::open(&data_dir).map_err(|e| e.to_string())?;
    let device_id = device_id(&store, &config)?;
    let listen = if options.listen.is_empty() {
        config.listen.clone()
    } else {
        options.listen.clone()
    };
    let advertise = options
        .advertise
        .clone()
        .or_else(|| (!config.advertise_url.is_empty()).then(|| config.advertise_url.clone()));
    crate::guide::render_epg(
        &store,
        &data_dir,
        config.epg.channel_ids,
        &Default::default(),
    )
    .map_err(|e| format!("rendering the EPG at start: {e}"))?;

    let (trigger, shutdown) = ShutdownTrigger::new();
    http::fire_on_signals(trigger.clone())
        .map_err(|e| format!("installing signal handlers: {e}"))?;
    let refresher = refresh::start(config.clone(), data_dir.clone(), trigger.subscribe());

    let result = crate::net::run(run(
        config,
        data_dir,
        store,
        Identity {
            device_id,
            advertise,
        },
        listen,
        options.discovery,
        shutdown,
    ))
    .map_err(|e| e.to_string())?;
    trigger.fire();
    let _ = refresher.join();
    result
}

/// Who the tuner says it is; the base URL is only known once the listeners are bound.
struct Identity {
    device_id: DeviceId,
    advertise: Option<String>,
}

async fn run(
    config: Config,
    data_dir: PathBuf,
    store: Store,
    identity: Identity,
    listen: Vec<SocketAddr>,
    discovery: bool,
    shutdown: Shutdown,
) -> Result<(), String> {
    let server = http::Server::bind(ServerConfig {
        listen,
        ..ServerConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let base_url = identity
        .advertise
        .unwrap_or_else(|| address::detected_base_url(&server.local_addrs()));
    let device = Device::new(&config.device.name, identity.device_id, &base_url, 0);
    let snapshot = Snapshot::build(&store, &config, device).map_err(|e| e.to_string())?;
    let (device_tx, device_rx) = watch::channel(snapshot.device.clone());
    let discovery_task = if discovery && config.discovery.enabled {
        let settings = DiscoverySettings {
            udp_port: config.discovery.udp_port,
            ssdp: config.discovery.ssdp,
            ..DiscoverySettings::new(device_rx)
        };
        let bound = hdhr::Discovery::bind(settings).map_err(|e| {
            format!(
                "starting discovery on port {}: {e} (or use --no-discovery)",
                config.discovery.udp_port
            )
        })?;
        let shutdown = shutdown.clone();
        Some(tokio_uring::spawn(async move {
            bound.run(async move { shutdown.fired().await }).await
        }))
    } else {
        None
    };

    let addresses: Vec<String> = server.local_addrs().iter().map(|a| a.to_string()).collect();
    let device = snapshot.device.clone();
    log::info!(
        "serving {} channels on {} as {} (device {}); guide {}/epg.xml, playlist {}/playlist.m3u",
        snapshot.channels.len(),
        addresses.join(", "),
        device.base(),
        device.device_id,
        device.base(),
        device.base()
    );
    let _ = store.log_event(&Event {
        level: Level::Info,
        category: "server",
        message: format!("serving on {} as {}", addresses.join(", "), device.base()),
        details: serde_json::json!({ "listen": addresses, "base_url": device.base(), "device_id": device.device_id.to_string() }),
    });

    let http_client = crate::upstream::Client::new(&crate::upstream::ClientOptions {
        extra_ca_file: config.extra_ca_file().map(Into::into),
    })
    .map_err(|e| e.to_string())?;
    let events = Rc::new(events::EventLog::start(&data_dir)?);
    let connector = UpstreamConnector::new(http_client, config.deadlines.connect);
    let relay = Relay::new(Services::new(
        Box::new(connector),
        config.deadlines.clone(),
        events,
    ));
    relay.set_account_limits(snapshot.account_limits.iter().copied());
    let current = Rc::new(RefCell::new(Rc::new(snapshot)));
    let routes = Rc::new(routes::Routes {
        snapshot: current.clone(),
        data_dir: data_dir.clone(),
        channel_ids: config.epg.channel_ids,
        relay: relay.clone(),
        favicon: crate::web::favicon_ico().into(),
    });
    let watcher = tokio_uring::spawn(watch_store(
        store,
        config,
        device,
        current,
        device_tx,
        relay,
        shutdown.clone(),
    ));
    server.run(routes, shutdown).await;
    let _ = watcher.await;
    if let Some(task) = discovery_task {
        let _ = task.await;
    }
    log::info!("stopped");
    Ok(())
}

/// Rebuilds the snapshot whenever another connection (the CLI, the refresh thread) commits.
async fn watch_store(
    store: Store,
    config: Config,
    device: Device,
    current: Rc<RefCell<Rc<Snapshot>>>,
    device_tx: watch::Sender<Device>,
    relay: Rc<Relay>,
    shutdown: Shutdown,
) {
    let mut seen = store.data_version().ok();
    loop {
        tokio::select! {
            _ = shutdown.fired() => break,
            _ = tokio::time::sleep(WATCH_INTERVAL) => {}
        }
        let version = store.data_version().ok();
        if version == seen {
            continue;
        }
        seen = version;
        match Snapshot::build(&store, &config, device.clone()) {
            Ok(snapshot) => {
                log::debug!(
                    "the database changed: lineup rebuilt with {} channels",
                    snapshot.channels.len()
                );
                let _ = device_tx.send(snapshot.device.clone());
                relay.set_account_limits(snapshot.account_limits.iter().copied());
                *current.borrow_mut() = Rc::new(snapshot);
            }
            Err(e) => log::warn!("keeping the previous lineup: {e}"),
        }
    }
    let _ = store.log_event(&Event {
        level: Level::Info,
        category: "server",
        message: "stopped".into(),
        details: serde_json::json!({}),
    });
}

/// The configured device id, else the stored one, else a new one (stored for next time).
fn device_id(store: &Store, config: &Config) -> Result<DeviceId, String> {
    if !config.device.id.is_empty() {
        return config
            .device
            .id
            .parse()
            .map_err(|e| format!("config key `device.id`: {e}"));
    }
    let stored = store
        .setting(DEVICE_ID_SETTING)
        .map_err(|e| e.to_string())?;
    if let Some(id) = stored.and_then(|s| s.parse().ok()) {
        return Ok(id);
    }
    let id = DeviceId::generate().map_err(|e| e.to_string())?;
    store
        .set_setting(DEVICE_ID_SETTING, &id.to_string())
        .map_err(|e| e.to_string())?;
    Ok(id)
}
