//! Where the relay's events go: the log (stderr, the journal on the appliance) at once, at the
//! event's own level, and the SQLite event log through a writer thread with its own connection,
//! so the serving thread never waits on the database. What the relay measured of a stream goes
//! the same way, in order with the events, to the stream's row.
//!
//! The queue to the writer is bounded: when the database is slow (another process holds the
//! write lock), full or read-only, writes are dropped and counted (`/metrics`
//! `streamforge_events_dropped_total`) instead of piling up in memory or stalling the relay.
//! The log line of each event is written either way.

use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
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

/// Writes waiting for the writer thread at most; past it, new ones are dropped. Events come a
/// few a minute; a burst this long means the database is not keeping up.
pub const QUEUE: usize = 1024;

/// Sends events to the writer thread; dropping every sender ends the thread.
pub struct EventLog {
    sender: SyncSender<Write>,
    /// Writes dropped: the queue was full, or the database refused them.
    dropped: Arc<AtomicU64>,
    /// A full queue was reported in the log (once: it says the database is too slow).
    full_reported: Cell<bool>,
}

impl EventLog {
    pub fn start(data_dir: &Path) -> Result<EventLog, String> {
        let store = Store::open(data_dir).map_err(|e| e.to_string())?;
        let (sender, receiver) = sync_channel::<Write>(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = dropped.clone();
        std::thread::spawn(move || write_all(&store, receiver, &counter));
        Ok(EventLog {
            sender,
            dropped,
            full_reported: Cell::new(false),
        })
    }

    fn send(&self, write: Write) {
        match self.sender.try_send(write) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                if !self.full_reported.replace(true) {
                    log::warn!("the event log is not keeping up: events are being dropped");
                }
            }
            // The writer is gone only when the process is ending.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// The writer thread: stores each write in turn. A failure is counted and logged once per run of
/// failures (a full disk would otherwise log every event twice), and the recovery is logged.
fn write_all(store: &Store, receiver: Receiver<Write>, dropped: &AtomicU64) {
    let mut failing_since: Option<u64> = None;
    for write in receiver {
        // On failure: the error, and what was not recorded.
        let outcome = match write {
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
                store
                    .log_event(&event)
                    .map(drop)
                    .map_err(|e| (e, event.message))
            }
            Write::Measured {
                stream,
                stream_row,
                measurement,
                at,
            } => match store.record_measurement(stream_row, &measurement, How::Session, at) {
                Ok(stored) => {
                    if stored {
                        log::info!("measured {stream}: {}", measurement.summary());
                    }
                    Ok(())
                }
                Err(e) => Err((e, format!("what {stream} measured"))),
            },
        };
        match (outcome, failing_since) {
            (Ok(()), None) => {}
            (Ok(()), Some(since)) => {
                failing_since = None;
                let lost = dropped.load(Ordering::Relaxed) - since;
                log::info!("the event log is written again ({lost} writes were dropped)");
            }
            (Err((e, what)), failing) => {
                let before = dropped.fetch_add(1, Ordering::Relaxed);
                if failing.is_none() {
                    failing_since = Some(before);
                    log::warn!("could not record an event, dropping events until it works: {e}");
                }
                log::debug!("not recorded: {what}");
            }
        }
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
        self.send(Write::Event {
            level,
            category,
            message,
            details,
        });
    }

    fn measured(&self, source: &StreamSource, measurement: Measurement) {
        self.send(Write::Measured {
            stream: source.stream.clone(),
            stream_row: source.stream_row,
            measurement,
            at: SystemTime::now(),
        });
    }

    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DB_FILE;
    use serde_json::json;

    fn emit(log: &EventLog, n: usize) {
        for i in 0..n {
            log.emit(Level::Debug, "test", format!("event {i}"), json!({}));
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = EventLog::start(dir.path()).expect("start");
        // Another process holds the write lock: the writer waits on its first event.
        let blocker = rusqlite::Connection::open(dir.path().join(DB_FILE)).expect("open");
        blocker.execute_batch("BEGIN IMMEDIATE").expect("lock");
        emit(&log, QUEUE + 10);
        // The writer holds one event (or none yet), the queue QUEUE: the rest are dropped.
        let dropped = log.dropped();
        assert!((9..=10).contains(&dropped), "dropped {dropped}");
        blocker.execute_batch("COMMIT").expect("unlock");
    }

    #[test]
    fn failed_writes_are_counted_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open");
        let (sender, receiver) = sync_channel(QUEUE);
        let event = || Write::Event {
            level: Level::Info,
            category: "test",
            message: "m".into(),
            details: json!({}),
        };
        for _ in 0..3 {
            sender.send(event()).expect("queue");
        }
        // The database refuses every write from now on (as a full or read-only disk would).
        rusqlite::Connection::open(dir.path().join(DB_FILE))
            .and_then(|c| c.execute_batch("DROP TABLE event_log"))
            .expect("break the event log");
        drop(sender);
        let dropped = AtomicU64::new(0);
        write_all(&store, receiver, &dropped);
        assert_eq!(dropped.load(Ordering::Relaxed), 3);
    }
}
