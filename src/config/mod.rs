//! The TOML config (SPEC §4) and where the data dir lives (SPEC §3).
//!
//! Every key is optional; a missing file means built-in defaults. Unknown keys, wrong types and bad
//! values are rejected at start with the file, the key and the reason, so a typo never silently
//! falls back to a default.

mod duration;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Used when neither `--config` nor `$STREAMFORGE_CONFIG` names a file.
pub const SYSTEM_CONFIG: &str = "/etc/streamforge/streamforge.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data_dir: Option<PathBuf>,
    pub listen: Vec<SocketAddr>,
    pub advertise_url: String,
    pub device: Device,
    pub discovery: Discovery,
    pub upstream: Upstream,
    pub deadlines: Deadlines,
    pub refresh: Refresh,
    pub epg: Epg,
    pub log: Log,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Device {
    pub name: String,
    /// Empty: generated once (checksum-valid) and stored.
    pub id: String,
    /// 0: the sum of the enabled accounts' `max_connections`.
    pub tuner_count: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Discovery {
    pub enabled: bool,
    pub udp_port: u16,
    pub ssdp: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Upstream {
    /// Sent to providers unless an account overrides it; never empty.
    pub user_agent: String,
    /// PEM roots trusted besides webpki-roots; empty for none.
    pub extra_ca_file: PathBuf,
    /// Panel API calls (login, listings, guides): longest wait for the reply to start, and
    /// longest silence within it. Not the relay's deadlines.
    #[serde(with = "duration")]
    pub api_timeout: Duration,
}

/// The relay's deadlines (SPEC §7), all humantime strings in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Deadlines {
    #[serde(with = "duration")]
    pub connect: Duration,
    #[serde(with = "duration")]
    pub first_bytes: Duration,
    #[serde(with = "duration")]
    pub stall: Duration,
    #[serde(with = "duration")]
    pub failover_budget: Duration,
    #[serde(with = "duration")]
    pub grace: Duration,
    #[serde(with = "duration")]
    pub upgrade_interval: Duration,
    #[serde(with = "duration")]
    pub linger: Duration,
    /// How long a splice (and a new viewer) waits for a random-access point before going ahead
    /// at a PAT anyway.
    #[serde(with = "duration")]
    pub keyframe: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Refresh {
    #[serde(with = "duration")]
    pub catalog: Duration,
    #[serde(with = "duration")]
    pub epg: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelIds {
    /// The EPG channel id is the channel number (the convention proven with Plex).
    Number,
    /// The EPG channel id is the guide source's own id.
    Source,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Epg {
    pub channel_ids: ChannelIds,
    pub first_channel_number: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Everything, including what `debug` leaves out.
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    pub level: LogLevel,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: None,
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 5004))],
            advertise_url: String::new(),
            device: Device::default(),
            discovery: Discovery::default(),
            upstream: Upstream::default(),
            deadlines: Deadlines::default(),
            refresh: Refresh::default(),
            epg: Epg::default(),
            log: Log::default(),
        }
    }
}

impl Default for Device {
    fn default() -> Self {
        Device {
            name: "StreamForge".into(),
            id: String::new(),
            tuner_count: 0,
        }
    }
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery {
            enabled: true,
            udp_port: 65001,
            ssdp: true,
        }
    }
}

impl Default for Upstream {
    fn default() -> Self {
        Upstream {
            user_agent: "VLC/3.0.20 LibVLC/3.0.20".into(),
            extra_ca_file: PathBuf::new(),
            api_timeout: Duration::from_secs(20),
        }
    }
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            connect: Duration::from_secs(1),
            first_bytes: Duration::from_secs(3),
            stall: Duration::from_secs(5),
            failover_budget: Duration::from_secs(2),
            grace: Duration::from_secs(10),
            upgrade_interval: Duration::from_secs(60),
            linger: Duration::from_secs(5),
            keyframe: Duration::from_millis(1500),
        }
    }
}

impl Default for Refresh {
    fn default() -> Self {
        Refresh {
            catalog: Duration::from_secs(24 * 3600),
            epg: Duration::from_secs(12 * 3600),
        }
    }
}

impl Default for Epg {
    fn default() -> Self {
        Epg {
            channel_ids: ChannelIds::Number,
            first_channel_number: 1000,
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: LogLevel::Info,
        }
    }
}

/// A config file that cannot be used: which file, which key, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config {}: {}{reason}", .file.display(), key_label(.key))]
pub struct ConfigError {
    pub file: PathBuf,
    /// Dotted key path, e.g. `deadlines.connect`; empty when the file as a whole is at fault.
    pub key: String,
    pub reason: String,
}

/// "key `deadlines.connect`: " before the reason, or nothing for the file as a whole.
fn key_label(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("key `{key}`: ")
    }
}

impl Config {
    /// Loads the config named on the command line (or by `$STREAMFORGE_CONFIG`, which clap folds
    /// into `explicit`), else the system file if present, else the defaults.
    pub fn load(explicit: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
        let path = match explicit {
            Some(path) => path.to_path_buf(),
            None if Path::new(SYSTEM_CONFIG).exists() => PathBuf::from(SYSTEM_CONFIG),
            None => return Ok((Config::default(), None)),
        };
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
            file: path.clone(),
            key: String::new(),
            reason: format!("cannot read: {e}"),
        })?;
        let config = Config::parse(&text).map_err(|(key, reason)| ConfigError {
            file: path.clone(),
            key,
            reason,
        })?;
        Ok((config, Some(path)))
    }

    /// Parses and validates config text; the error is `(key, reason)`.
    pub fn parse(text: &str) -> Result<Config, (String, String)> {
        let deserializer = toml::Deserializer::parse(text).map_err(|e| {
            (
                String::new(),
                e.message().to_owned() + &line_of(text, e.span()),
            )
        })?;
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let reason = inner.message().to_owned() + &line_of(text, inner.span());
            (if key == "." { String::new() } else { key }, reason)
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let fail = |key: &str, reason: &str| Err((key.to_owned(), reason.to_owned()));
        if self.upstream.user_agent.trim().is_empty() {
            return fail(
                "upstream.user_agent",
                "must not be empty: providers reject requests without a user agent",
            );
        }
        if self.listen.is_empty() {
            return fail(
                "listen",
                "needs at least one address, e.g. \"0.0.0.0:5004\"",
            );
        }
        if !self.advertise_url.is_empty()
            && (!self.advertise_url.starts_with("http://") || self.advertise_url.len() <= 7)
        {
            return fail(
                "advertise_url",
                "must be an http:// URL such as http://192.168.1.50:5004 (clients need plain HTTP)",
            );
        }
        if self.device.name.trim().is_empty() {
            return fail("device.name", "must not be empty");
        }
        if self.discovery.udp_port == 0 {
            return fail(
                "discovery.udp_port",
                "must be a port number from 1 to 65535",
            );
        }
        let d = &self.deadlines;
        for (key, value) in [
            ("deadlines.connect", d.connect),
            ("deadlines.first_bytes", d.first_bytes),
            ("deadlines.stall", d.stall),
            ("deadlines.failover_budget", d.failover_budget),
            ("deadlines.grace", d.grace),
            ("deadlines.upgrade_interval", d.upgrade_interval),
            ("upstream.api_timeout", self.upstream.api_timeout),
            ("refresh.catalog", self.refresh.catalog),
            ("refresh.epg", self.refresh.epg),
        ] {
            if value.is_zero() {
                return fail(key, "must be longer than zero");
            }
        }
        Ok(())
    }

    /// The extra CA file, if one is configured.
    pub fn extra_ca_file(&self) -> Option<&Path> {
        let path = self.upstream.extra_ca_file.as_path();
        (!path.as_os_str().is_empty()).then_some(path)
    }
}

fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    span.map(|span| {
        let before = &text.as_bytes()[..span.start.min(text.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        format!(" (line {line})")
    })
    .unwrap_or_default()
}

/// Where state lives: `--data-dir` or `$STREAMFORGE_DATA_DIR` (clap folds both into `explicit`),
/// else the config's `data_dir`, else `$XDG_DATA_HOME/streamforge`, else
/// `$HOME/.local/share/streamforge`.
pub fn resolve_data_dir(explicit: Option<&Path>, config: &Config) -> Result<PathBuf, String> {
    if let Some(dir) = explicit.or(config.data_dir.as_deref()) {
        return Ok(dir.to_path_buf());
    }
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(xdg) = non_empty("XDG_DATA_HOME") {
        return Ok(PathBuf::from(xdg).join("streamforge"));
    }
    if let Some(home) = non_empty("HOME") {
        return Ok(PathBuf::from(home).join(".local/share/streamforge"));
    }
    Err(
        "no data dir: pass --data-dir, set STREAMFORGE_DATA_DIR, or set data_dir in the config"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_gives_defaults() {
        let config = Config::parse("").unwrap();
        assert_eq!(config.deadlines.connect, Duration::from_secs(1));
        assert_eq!(config.deadlines.upgrade_interval, Duration::from_secs(60));
        assert_eq!(config.listen, vec!["0.0.0.0:5004".parse().unwrap()]);
        assert_eq!(config.epg.channel_ids, ChannelIds::Number);
        assert_eq!(config.discovery.udp_port, 65001);
    }

    #[test]
    fn the_documented_example_parses_to_the_defaults() {
        let text = include_str!("../../config/streamforge.toml");
        let config = Config::parse(text).unwrap();
        let defaults = Config::default();
        assert_eq!(config.deadlines.stall, defaults.deadlines.stall);
        assert_eq!(config.refresh.epg, defaults.refresh.epg);
        assert_eq!(config.upstream.user_agent, defaults.upstream.user_agent);
        assert_eq!(config.device.name, defaults.device.name);
    }

    #[test]
    fn the_appliance_config_parses() {
        let config = Config::parse(include_str!("../../config/appliance.toml")).unwrap();
        assert_eq!(config.listen.len(), 2);
        assert!(config.listen.iter().any(|a| a.port() == 80));
    }

    #[test]
    fn humantime_durations() {
        let config =
            Config::parse("[deadlines]\nconnect = \"1500ms\"\ngrace = \"1m 30s\"\n").unwrap();
        assert_eq!(config.deadlines.connect, Duration::from_millis(1500));
        assert_eq!(config.deadlines.grace, Duration::from_secs(90));
    }

    #[test]
    fn bad_duration_names_the_key() {
        let (key, reason) = Config::parse("[deadlines]\nstall = \"five seconds\"\n").unwrap_err();
        assert_eq!(key, "deadlines.stall");
        assert!(reason.contains("duration"), "{reason}");
    }

    #[test]
    fn unknown_key_is_rejected() {
        let (key, reason) = Config::parse("[discovery]\nudp_prot = 1\n").unwrap_err();
        assert!(reason.contains("udp_prot"), "{key}: {reason}");
    }

    #[test]
    fn wrong_type_names_the_key_and_line() {
        let (key, reason) = Config::parse("\n[device]\ntuner_count = \"four\"\n").unwrap_err();
        assert_eq!(key, "device.tuner_count");
        assert!(reason.contains("line 3"), "{reason}");
    }

    #[test]
    fn bad_listen_address_names_the_key() {
        let (key, _) = Config::parse("listen = [\"nowhere\"]\n").unwrap_err();
        assert_eq!(key, "listen[0]");
    }

    #[test]
    fn empty_user_agent_is_rejected() {
        let (key, _) = Config::parse("[upstream]\nuser_agent = \" \"\n").unwrap_err();
        assert_eq!(key, "upstream.user_agent");
    }

    #[test]
    fn zero_deadline_is_rejected() {
        let (key, _) = Config::parse("[deadlines]\nconnect = \"0s\"\n").unwrap_err();
        assert_eq!(key, "deadlines.connect");
    }

    #[test]
    fn malformed_toml_reports_the_line() {
        let (key, reason) = Config::parse("a = 1\nlisten = [\n").unwrap_err();
        assert!(key.is_empty());
        assert!(reason.contains("line"), "{reason}");
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[log]\nlevel = \"loud\"\n").unwrap();
        let err = Config::load(Some(&path)).unwrap_err();
        assert_eq!(err.file, path);
        assert_eq!(err.key, "log.level");
        assert!(err.to_string().contains("bad.toml"));
        let missing = Config::load(Some(&dir.path().join("none.toml"))).unwrap_err();
        assert!(missing.reason.contains("cannot read"));
    }

    #[test]
    fn error_names_the_key_only_when_there_is_one() {
        let mut err = ConfigError {
            file: PathBuf::from("/etc/sf.toml"),
            key: "deadlines.connect".into(),
            reason: "invalid duration".into(),
        };
        assert_eq!(
            err.to_string(),
            "config /etc/sf.toml: key `deadlines.connect`: invalid duration"
        );
        err.key.clear();
        assert_eq!(err.to_string(), "config /etc/sf.toml: invalid duration");
    }

    #[test]
    fn data_dir_precedence() {
        let config = Config {
            data_dir: Some(PathBuf::from("/from/config")),
            ..Config::default()
        };
        let flag = resolve_data_dir(Some(Path::new("/from/flag")), &config).unwrap();
        assert_eq!(flag, PathBuf::from("/from/flag"));
        let from_config = resolve_data_dir(None, &config).unwrap();
        assert_eq!(from_config, PathBuf::from("/from/config"));
    }
}
