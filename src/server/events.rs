//! Where the relay's events go: the log (stderr, the journal on the appliance) at once, at the
//! event's own level, and the SQLite event log through a writer thread with its own connection,
//! so the serving thread never waits on the database.

use std::path::Path;
use std::sync::mpsc::{Sender, channel};

use crate::relay::EventSink;
use crate::store::{Event, Level, Store};

struct Owned {
    level: Level,
    category: &'static str,
    message: String,
    details: serde_json::Value,
}

/// Sends events to the writer thread; dropping every sender ends the thread.
pub struct EventLog {
    sender: Sender<Owned>,
}

impl EventLog {
    pub fn start(data_dir: &Path) -> Result<EventLog, String> {
        let store = Store::open(data_dir).map_err(|e| e.to_string())?;
        let (sender, receiver) = channel::<Owned>();
        std::thread::spawn(move || {
            for event in receiver {
                let stored = store.log_event(&Event {
                    level: event.level,
                    category: event.category,
                    message: event.message,
                    details: event.details,
                });
                if let Err(e) = stored {
                    log::warn!("could not record an event: {e}");
                }
            }
        });
        Ok(EventLog { sender })
    }
}

impl EventSink for EventLog {
    fn emit(
        &self,
        level: Level,
        category: &'static str,
        message: String,
        details: serde_json::Value,
    ) {
        log::log!(log_level(level), "{message}");
        let _ = self.sender.send(Owned {
            level,
            category,
            message,
            details,
        });
    }
}

/// The log level an event of `level` is printed at.
fn log_level(level: Level) -> log::Level {
    match level {
        Level::Debug => log::Level::Debug,
        Level::Info => log::Level::Info,
        Level::Warn => log::Level::Warn,
        Level::Error => log::Level::Error,
    }
}
