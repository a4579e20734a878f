//! HDHomeRun device ids (PROTOCOLS §2.4): the checksum, generation and validation.
//!
//! Clients key a tuner by its id; `hdhomerun_config` refuses ids with a bad checksum, and ids with a
//! legacy prefix make clients treat the tuner as an old model without the HTTP API. So a generated
//! id is random, checksum-valid and never legacy, and an id from the config gets the same checks.

use std::fmt;
use std::str::FromStr;

use ring::rand::{SecureRandom, SystemRandom};

/// A checksum-valid, non-legacy, non-reserved HDHomeRun device id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeviceId(u32);

/// Why a device id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceIdError {
    /// Not exactly 8 hexadecimal digits.
    #[error(
        "device id {0:?} must be 8 hexadecimal digits (e.g. 1251129F); leave it empty to generate one"
    )]
    Syntax(String),
    /// The HDHomeRun checksum does not hold.
    #[error(
        "device id {0:08X} fails the HDHomeRun checksum (hdhomerun_config and clients refuse it); \
         leave it empty to generate a valid one"
    )]
    Checksum(u32),
    /// 00000000 or FFFFFFFF (the wildcard).
    #[error("device id {0:08X} is reserved")]
    Reserved(u32),
    /// A prefix clients take for a legacy model without the HTTP API.
    #[error(
        "device id {0:08X} has a legacy HDHomeRun prefix (clients would expect an old model \
         without the HTTP API); leave it empty to generate one"
    )]
    Legacy(u32),
    /// The system random source failed, or kept returning unusable ids.
    #[error("the system random source failed")]
    Random,
}

const LOOKUP: [u8; 16] = [
    0xA, 0x5, 0xF, 0x6, 0x7, 0xC, 0x1, 0xB, 0x9, 0x2, 0x8, 0xD, 0x4, 0x3, 0xE, 0x0,
];

/// The XOR of the checksum terms; zero for a valid id. Digit i counts from the least significant.
fn checksum(id: u32) -> u8 {
    let digit = |i: u32| ((id >> (4 * i)) & 0xF) as u8;
    let lookup = |i: u32| LOOKUP[usize::from(digit(i))];
    lookup(7) ^ digit(6) ^ lookup(5) ^ digit(4) ^ lookup(3) ^ digit(2) ^ lookup(1) ^ digit(0)
}

/// Whether `id` passes the HDHomeRun checksum.
pub fn checksum_is_valid(id: u32) -> bool {
    checksum(id) == 0
}

/// Whether clients treat `id` as a legacy device (no HTTP API).
pub fn is_legacy(id: u32) -> bool {
    match id >> 20 {
        0x100 => id < 0x1004_0000,
        0x120 => id < 0x1203_0000,
        0x101 | 0x102 | 0x103 | 0x111 | 0x121 | 0x122 => true,
        _ => false,
    }
}

impl DeviceId {
    /// Checks a raw id: checksum, not reserved, not legacy.
    pub fn new(id: u32) -> Result<DeviceId, DeviceIdError> {
        if id == 0 || id == u32::MAX {
            Err(DeviceIdError::Reserved(id))
        } else if !checksum_is_valid(id) {
            Err(DeviceIdError::Checksum(id))
        } else if is_legacy(id) {
            Err(DeviceIdError::Legacy(id))
        } else {
            Ok(DeviceId(id))
        }
    }

    /// A fresh random id from the system random source.
    pub fn generate() -> Result<DeviceId, DeviceIdError> {
        let rng = SystemRandom::new();
        DeviceId::generate_from(|bytes| rng.fill(bytes).is_ok())
    }

    /// Seven random digits, the last one set to make the checksum hold; legacy and reserved draws
    /// are drawn again, a bounded number of times so that a broken source gives an error, not a hang.
    fn generate_from(mut fill: impl FnMut(&mut [u8]) -> bool) -> Result<DeviceId, DeviceIdError> {
        for _ in 0..64 {
            let mut bytes = [0u8; 4];
            if !fill(&mut bytes) {
                return Err(DeviceIdError::Random);
            }
            let high = u32::from_be_bytes(bytes) & !0xF;
            if let Ok(id) = DeviceId::new(high | u32::from(checksum(high))) {
                return Ok(id);
            }
        }
        Err(DeviceIdError::Random)
    }

    /// The id as a number.
    pub fn value(self) -> u32 {
        self.0
    }
}

impl FromStr for DeviceId {
    type Err = DeviceIdError;

    fn from_str(s: &str) -> Result<DeviceId, DeviceIdError> {
        let trimmed = s.trim();
        if trimmed.len() != 8 || !trimmed.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DeviceIdError::Syntax(s.to_owned()));
        }
        let id =
            u32::from_str_radix(trimmed, 16).map_err(|_| DeviceIdError::Syntax(s.to_owned()))?;
        DeviceId::new(id)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08X}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ids_validate() {
        for text in ["1251129F", "104E8010", "10439EFD", "10ab1237"] {
            let id: DeviceId = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(id.to_string(), text.to_ascii_uppercase());
        }
    }

    #[test]
    fn bad_ids_are_refused_with_reasons() {
        assert_eq!(
            "12345678".parse::<DeviceId>(),
            Err(DeviceIdError::Checksum(0x1234_5678))
        );
        assert_eq!(
            "FFFFFFFF".parse::<DeviceId>(),
            Err(DeviceIdError::Reserved(u32::MAX))
        );
        assert_eq!(
            "00000000".parse::<DeviceId>(),
            Err(DeviceIdError::Reserved(0))
        );
        for bad in ["", "1251129", "1251129F0", "1251129G", "0x125112"] {
            assert!(
                matches!(bad.parse::<DeviceId>(), Err(DeviceIdError::Syntax(_))),
                "{bad:?}"
            );
        }
        let message = "12345678".parse::<DeviceId>().unwrap_err().to_string();
        assert!(message.contains("checksum"), "{message}");
    }

    #[test]
    fn legacy_prefixes_are_refused() {
        // Build checksum-valid ids under each legacy prefix and check they are refused as legacy.
        for high in [
            0x1010_0000u32,
            0x1020_0000,
            0x1030_0000,
            0x1110_0000,
            0x1210_0000,
            0x1220_0000,
            0x1000_0000,
            0x1200_0000,
        ] {
            let id = high | u32::from(checksum(high));
            assert!(checksum_is_valid(id));
            assert_eq!(
                DeviceId::new(id),
                Err(DeviceIdError::Legacy(id)),
                "{id:08X}"
            );
        }
        // The same prefixes past their legacy range are fine.
        let modern = 0x1004_0000 | u32::from(checksum(0x1004_0000));
        assert!(DeviceId::new(modern).is_ok());
    }

    #[test]
    fn generated_ids_are_valid_and_not_legacy() {
        let mut distinct = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = DeviceId::generate().unwrap();
            assert!(checksum_is_valid(id.value()), "{id}");
            assert!(!is_legacy(id.value()), "{id}");
            assert_ne!(id.value(), u32::MAX);
            assert_eq!(id.to_string().parse::<DeviceId>(), Ok(id));
            distinct.insert(id);
        }
        assert!(
            distinct.len() > 9_900,
            "ids are not random: {}",
            distinct.len()
        );
    }

    #[test]
    fn generation_fixes_the_last_digit_and_redraws_legacy_ids() {
        let id = DeviceId::generate_from(|b| {
            b.copy_from_slice(&[0x10, 0xAB, 0x12, 0x30]);
            true
        });
        assert_eq!(id.map(|id| id.to_string()), Ok("10AB1237".to_owned()));

        let mut draws = [[0x10u8, 0x10, 0, 0], [0x15, 0x00, 0x00, 0x00]].into_iter();
        let id = DeviceId::generate_from(|b| draws.next().map(|d| b.copy_from_slice(&d)).is_some());
        assert_eq!(
            id.map(|id| id.value() >> 20),
            Ok(0x150),
            "the legacy draw was kept"
        );
    }

    #[test]
    fn a_broken_random_source_gives_an_error() {
        assert_eq!(
            DeviceId::generate_from(|_| false),
            Err(DeviceIdError::Random)
        );
        // A source stuck on a legacy value does not hang.
        let stuck = DeviceId::generate_from(|b| {
            b.copy_from_slice(&[0x10, 0x10, 0, 0]);
            true
        });
        assert_eq!(stuck, Err(DeviceIdError::Random));
    }
}
