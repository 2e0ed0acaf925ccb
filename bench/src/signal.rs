//! Signals that steer a running `hold` scenario from outside: SIGUSR1 marks the timeline (a
//! server was just stopped), SIGINT and SIGTERM end the run with its report.
//!
//! The handlers are `xdhcp6_datapath::os`'s; this module names what they mean here.

use std::io;

use xdhcp6_datapath::os;

/// Installs the handlers for SIGUSR1, SIGINT and SIGTERM.
pub fn install() -> io::Result<()> {
    os::install_mark_handler()?;
    os::install_stop_handler()
}

/// Whether SIGUSR1 arrived since the last call.
pub fn take_mark() -> bool {
    os::take_mark()
}

/// Whether SIGINT or SIGTERM arrived.
pub fn stop_requested() -> bool {
    os::stop_requested()
}
