//! The process's log: records of the `log` facade (`log::info!`, `log::debug!`, … anywhere in the
//! crate), one line each on stderr, at the config's `[log] level`.
//!
//! When stderr is the systemd journal (`JOURNAL_STREAM` names the same device and inode as fd 2),
//! a line is the sd-daemon priority and the message, `<4>message`, with no timestamp since journald
//! adds one; otherwise it reads `streamforge: warn: message`. A line is formatted into a buffer the
//! thread keeps and written with one `write`, so lines of the serving, refresh and event threads
//! never interleave and a line allocates nothing once the buffer has grown. Line breaks inside a
//! message become spaces: one record is one line, in a terminal and in the journal.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::config::LogLevel;

/// What a line looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// For a person at a terminal or reading a file: `streamforge: LEVEL: message`.
    Plain,
    /// For journald: `<PRIORITY>message`.
    Journal,
}

/// A buffer that grew past this is not kept for the next line.
const KEEP_BUFFER: usize = 16 * 1024;

static JOURNAL: AtomicBool = AtomicBool::new(false);
static LOGGER: Stderr = Stderr;

thread_local! {
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Sends the crate's log records to stderr at `level`, in the style stderr calls for. The first
/// call installs the logger; later ones only change the level.
pub fn init(level: LogLevel) {
    let journal = is_journal(
        std::env::var("JOURNAL_STREAM").ok().as_deref(),
        stderr_identity(),
    );
    JOURNAL.store(journal, Ordering::Relaxed);
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(filter(level));
}

/// The `log` filter for a configured level.
pub fn filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Trace => LevelFilter::Trace,
        LogLevel::Debug => LevelFilter::Debug,
        LogLevel::Info => LevelFilter::Info,
        LogLevel::Warn => LevelFilter::Warn,
        LogLevel::Error => LevelFilter::Error,
    }
}

/// Whether stderr is the journal: `JOURNAL_STREAM` (`DEVICE:INODE`, as systemd sets it) names the
/// file that fd 2 is (`stderr`: its device and inode). A variable inherited by a process whose
/// stderr was redirected elsewhere does not match.
pub fn is_journal(journal_stream: Option<&str>, stderr: Option<(u64, u64)>) -> bool {
    let Some((device, inode)) = journal_stream.and_then(|v| v.split_once(':')) else {
        return false;
    };
    match (device.parse::<u64>(), inode.parse::<u64>(), stderr) {
        (Ok(device), Ok(inode), Some(stderr)) => (device, inode) == stderr,
        _ => false,
    }
}

/// The sd-daemon priority of a level (sd-daemon(3)): trace has none of its own.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// Appends the line for a record at `level` saying `message`, newline included.
pub fn format_line(out: &mut String, style: Style, level: Level, message: fmt::Arguments<'_>) {
    match style {
        Style::Plain => {
            let name = match level {
                Level::Error => "error",
                Level::Warn => "warn",
                Level::Info => "info",
                Level::Debug => "debug",
                Level::Trace => "trace",
            };
            let _ = write!(out, "streamforge: {name}: ");
        }
        Style::Journal => {
            let _ = write!(out, "<{}>", priority(level));
        }
    }
    let _ = OneLine(out).write_fmt(message);
    out.push('\n');
}

/// Writes text with its line breaks turned into spaces.
struct OneLine<'a>(&'a mut String);

impl fmt::Write for OneLine<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for (i, part) in text.split(['\r', '\n']).enumerate() {
            if i > 0 {
                self.0.push(' ');
            }
            self.0.push_str(part);
        }
        Ok(())
    }
}

/// Fd 2's device and inode, compared with `JOURNAL_STREAM`.
fn stderr_identity() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let metadata = std::fs::File::from(fd).metadata().ok()?;
    Some((metadata.dev(), metadata.ino()))
}

struct Stderr;

impl Stderr {
    fn write(line: &mut String, record: &Record<'_>) {
        let style = if JOURNAL.load(Ordering::Relaxed) {
            Style::Journal
        } else {
            Style::Plain
        };
        line.clear();
        format_line(line, style, record.level(), *record.args());
        // Nowhere to report a failing stderr.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // A message whose formatting logs, or a thread already tearing down, gets a fresh buffer.
        let kept = LINE.try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => {
                Stderr::write(&mut line, record);
                if line.capacity() > KEEP_BUFFER {
                    *line = String::new();
                }
                true
            }
            Err(_) => false,
        });
        if !matches!(kept, Ok(true)) {
            Stderr::write(&mut String::new(), record);
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(style: Style, level: Level, message: fmt::Arguments<'_>) -> String {
        let mut out = String::new();
        format_line(&mut out, style, level, message);
        out
    }

    #[test]
    fn plain_lines_name_the_program_and_the_level() {
        assert_eq!(
            line(Style::Plain, Level::Warn, format_args!("tuner {} busy", 2)),
            "streamforge: warn: tuner 2 busy\n"
        );
        assert_eq!(
            line(Style::Plain, Level::Trace, format_args!("x")),
            "streamforge: trace: x\n"
        );
    }

    #[test]
    fn journal_lines_carry_the_priority_and_nothing_else() {
        let cases = [
            (Level::Error, "<3>"),
            (Level::Warn, "<4>"),
            (Level::Info, "<6>"),
            (Level::Debug, "<7>"),
            (Level::Trace, "<7>"),
        ];
        for (level, prefix) in cases {
            assert_eq!(
                line(Style::Journal, level, format_args!("serving")),
                format!("{prefix}serving\n")
            );
        }
    }

    #[test]
    fn a_record_is_one_line() {
        let text = "first\nsecond\r\nthird";
        assert_eq!(
            line(Style::Journal, Level::Info, format_args!("{text}")),
            "<6>first second  third\n"
        );
    }

    #[test]
    fn the_journal_is_recognised_only_on_its_own_file() {
        let stderr = Some((27, 123_456));
        assert!(is_journal(Some("27:123456"), stderr));
        // Inherited by a process whose stderr now goes elsewhere.
        assert!(!is_journal(Some("27:999"), stderr));
        assert!(!is_journal(Some("28:123456"), stderr));
        assert!(!is_journal(None, stderr));
        assert!(!is_journal(Some("27:123456"), None));
        for garbage in ["", "27", "27:", ":123456", "a:b", "27:123456:1"] {
            assert!(!is_journal(Some(garbage), stderr), "{garbage:?}");
        }
    }

    #[test]
    fn every_configured_level_has_its_filter() {
        assert_eq!(filter(LogLevel::Trace), LevelFilter::Trace);
        assert_eq!(filter(LogLevel::Debug), LevelFilter::Debug);
        assert_eq!(filter(LogLevel::Info), LevelFilter::Info);
        assert_eq!(filter(LogLevel::Warn), LevelFilter::Warn);
        assert_eq!(filter(LogLevel::Error), LevelFilter::Error);
    }
}
