//! A cloneable shutdown signal, and the hook that fires it on SIGTERM or SIGINT.
//!
//! The signal is a `tokio::sync::watch`, so it can be fired from any thread (the signal thread)
//! and awaited on the io_uring runtime. Signals reach that thread through signal-hook, not
//! tokio's `signal`: a thread apart from the runtime can be set up before the runtime starts, and
//! the second signal still ends a process whose runtime is stuck or already gone (as while
//! `serve` waits for the guide refresher).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tokio::sync::watch;

/// Fires the shutdown; cloneable and `Send`, so a signal thread or a test can hold one.
#[derive(Clone)]
pub struct ShutdownTrigger {
    tx: Arc<watch::Sender<bool>>,
}

/// Tells whether, and lets one wait until, shutdown was fired.
#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

impl ShutdownTrigger {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger { tx: Arc::new(tx) }, Shutdown { rx })
    }

    /// Fires the shutdown; idempotent.
    pub fn fire(&self) {
        self.tx.send_replace(true);
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }
}

impl Shutdown {
    pub fn is_fired(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes once shutdown is fired (at once if it already was). If every trigger is dropped
    /// unfired, it never completes.
    pub async fn fired(&self) {
        let mut rx = self.rx.clone();
        if rx.wait_for(|fired| *fired).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Fires `trigger` on the first SIGTERM or SIGINT; a second one exits the process at once (with
/// status 128 + signal), for when a graceful stop hangs. Call once per process.
pub fn fire_on_signals(trigger: ShutdownTrigger) -> io::Result<()> {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "signal handling is already set up",
        ));
    }
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut arrivals = signals.forever();
            if arrivals.next().is_some() {
                trigger.fire();
            }
            if let Some(signal) = arrivals.next() {
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}
