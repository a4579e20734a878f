//! What the emulated tuner says about itself: the identity shared by the HTTP documents, the UDP
//! discovery reply, SSDP and the control protocol.
//!
//! Model and firmware strings are the common emulator values (PROTOCOLS §1.1); `HDTC` in the model
//! makes Jellyfin treat the tuner as transcoding-capable, which only adds a query string to stream
//! URLs.

use super::device_id::DeviceId;

/// `ModelNumber` in discover.json, `/sys/hwmodel` over the control protocol.
pub const MODEL_NUMBER: &str = "HDTC-2US";
/// `FirmwareName` in discover.json; real devices report the same string as `/sys/model`.
pub const FIRMWARE_NAME: &str = "hdhomeruntc_atsc";
/// `FirmwareVersion` in discover.json, `/sys/version` over the control protocol.
pub const FIRMWARE_VERSION: &str = "20150826";
/// What Home Assistant and UPnP clients match HDHomeRuns by.
pub const MANUFACTURER: &str = "Silicondust";

/// A snapshot of the tuner's identity. The tuner count may change at run time (it follows the
/// accounts); the rest is fixed for the life of the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub friendly_name: String,
    pub device_id: DeviceId,
    /// Where clients reach the HTTP API, e.g. `http://192.168.1.50:5004` (a trailing `/` is ignored).
    pub base_url: String,
    pub tuner_count: u32,
    /// A short opaque string (≤ 24 bytes; the UDP reply leaves a longer one out).
    pub device_auth: String,
}

impl Device {
    /// A device with a stable `device_auth` derived from the id.
    pub fn new(
        friendly_name: &str,
        device_id: DeviceId,
        base_url: &str,
        tuner_count: u32,
    ) -> Device {
        Device {
            friendly_name: friendly_name.to_owned(),
            device_id,
            base_url: base_url.to_owned(),
            tuner_count,
            device_auth: format!("streamforge-{device_id}"),
        }
    }

    /// The base URL without a trailing `/`.
    pub fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }

    /// `BaseURL/lineup.json`.
    pub fn lineup_url(&self) -> String {
        format!("{}/lineup.json", self.base())
    }

    /// `BaseURL/device.xml`, the SSDP `LOCATION`.
    pub fn device_xml_url(&self) -> String {
        format!("{}/device.xml", self.base())
    }

    /// The UPnP unique device name, `uuid:<id>`, shared by device.xml and SSDP.
    pub fn udn(&self) -> String {
        format!("uuid:{}", self.device_id)
    }
}
