//! Signals that steer a running `hold` scenario from outside: SIGUSR1 marks the timeline (a
//! server was just stopped), SIGINT and SIGTERM end the run with its report.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

static MARK: AtomicBool = AtomicBool::new(false);
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    if signal == libc::SIGUSR1 {
        MARK.store(true, Ordering::SeqCst);
    } else {
        STOP.store(true, Ordering::SeqCst);
    }
}

/// Installs the handlers for SIGUSR1, SIGINT and SIGTERM.
pub fn install() -> io::Result<()> {
    for signal in [libc::SIGUSR1, libc::SIGINT, libc::SIGTERM] {
        // Safety: a zeroed sigaction is valid (empty mask, no flags); the handler only stores
        // to atomics, which is async-signal-safe, and lives for the whole program.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether SIGUSR1 arrived since the last call.
pub fn take_mark() -> bool {
    MARK.swap(false, Ordering::SeqCst)
}

/// Whether SIGINT or SIGTERM arrived.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}
