//! Where the relay's events go: the log (stderr, the journal on the appliance) at once, at the
//! event's own level, and the SQLite event log through a writer thread with its own connection,
//! so the serving thread never waits on the database. What the relay measured of a stream goes
//! the same way, in order with the events, to the stream's row.

use std::path::Path;
use std::sync::mpsc::{Sender, channel};
use std::time::SystemTime;

use crate::measure::Measurement;
use crate::relay::{EventSink, StreamSource};
use crate::store::{Event, How, Level, Store};

enum Write {
    Event {
        level: Level,
        category: &'static str,
        message: String,
        details: serde_json::Value,
    },
    Measured {
        stream: String,
        stream_row: i64,
        measurement: Measurement,
        at: SystemTime,
    },
}

/// Sends events to the writer thread; dropping every sender ends the thread.
pub struct EventLog {
    sender: Sender<Write>,
}

impl EventLog {
    pub fn start(data_dir: &Path) -> Result<EventLog, String> {
        let store = Store::open(data_dir).map_err(|e| e.to_string())?;
        let (sender, receiver) = channel::<Write>();
        std::thread::spawn(move || {
            for write in receiver {
                match write {
                    Write::Event {
                        level,
                        category,
                        message,
                        details,
                    } => {
                        let event = Event {
                            level,
                            category,
                            message,
                            details,
                        };
                        if let Err(e) = store.log_event(&event) {
                            log::warn!("could not record an event: {e}");
                        }
                    }
                    Write::Measured {
                        stream,
                        stream_row,
                        measurement,
                        at,
                    } => {
                        match store.record_measurement(stream_row, &measurement, How::Session, at) {
                            Ok(true) => {
                                log::info!("measured {stream}: {}", measurement.summary());
                            }
                            Ok(false) => {}
                            Err(e) => log::warn!("could not store what {stream} measured: {e}"),
                        }
                    }
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
        let _ = self.sender.send(Write::Event {
            level,
            category,
            message,
            details,
        });
    }

    fn measured(&self, source: &StreamSource, measurement: Measurement) {
        let _ = self.sender.send(Write::Measured {
            stream: source.stream.clone(),
            stream_row: source.stream_row,
            measurement,
            at: SystemTime::now(),
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
