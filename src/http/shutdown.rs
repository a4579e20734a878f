//! A cloneable shutdown signal, and the hook that fires it on SIGTERM or SIGINT.
//!
//! The signal is a `tokio::sync::watch`, so it can be fired from any thread (the signal thread)
//! and awaited on the io_uring runtime. Signals reach it through a self-pipe: the handler only
//! writes a byte, which is async-signal-safe and works whichever thread the kernel picks, so the
//! hook need not be installed before other threads start.

use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, OnceLock};
use std::thread;

use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
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

/// The write end of the self-pipe, set once, never closed.
static SIGNAL_PIPE: OnceLock<UnixStream> = OnceLock::new();

extern "C" fn on_signal(signal: nix::libc::c_int) {
    let saved = Errno::last_raw();
    if let Some(pipe) = SIGNAL_PIPE.get() {
        // Non-blocking: if the pipe is full, a signal is already waiting to be handled.
        let _ = nix::unistd::write(pipe, &[u8::try_from(signal).unwrap_or(0)]);
    }
    Errno::set_raw(saved);
}

/// Fires `trigger` on the first SIGTERM or SIGINT; a second one exits the process at once (with
/// status 128 + signal), for when a graceful stop hangs. Call once per process.
pub fn fire_on_signals(trigger: ShutdownTrigger) -> io::Result<()> {
    let (mut reader, writer) = UnixStream::pair()?;
    writer.set_nonblocking(true)?;
    SIGNAL_PIPE.set(writer).map_err(|_| {
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            "signal handling is already set up",
        )
    })?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut signal = [0u8];
            let mut seen = 0;
            loop {
                match reader.read(&mut signal) {
                    Ok(1) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    _ => return,
                }
                seen += 1;
                if seen > 1 {
                    std::process::exit(128 + i32::from(signal[0]));
                }
                trigger.fire();
            }
        })?;
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only reads a OnceLock (an atomic load once set) and calls write(2),
        // both async-signal-safe, and restores errno.
        unsafe { sigaction(signal, &action) }?;
    }
    Ok(())
}
