//! Serde glue: durations in the config are humantime strings ("1s", "500ms", "1m 30s").

use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "invalid duration {text:?}: {e} (write e.g. \"2s\", \"500ms\" or \"1m 30s\")"
        ))
    })
}
