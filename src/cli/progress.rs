//! Progress for long work: a self-rewriting status line on a terminal, nothing otherwise (the
//! command prints a one-line summary at the end either way).

use std::io::{IsTerminal, Write};

pub struct Progress {
    enabled: bool,
    drawn: bool,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            enabled: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    pub fn show(&mut self, status: &str) {
        if self.enabled {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{status}");
            let _ = err.flush();
            self.drawn = true;
        }
    }

    /// Erases the status line so the summary starts on a clean line.
    pub fn clear(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}
