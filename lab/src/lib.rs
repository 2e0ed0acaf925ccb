//! The xdhcp6 test lab: the network, processes and tools that the appliance tests,
//! `cargo xtask demo`, `cargo xtask bench`, `cargo xtask failover` and `cargo xtask torture`
//! build their runs from.
//!
//! - [`netns`]: throw-away network namespaces joined by veth pairs (with several queues where
//!   multi-queue AF_XDP is tested), bridges and addresses, all removed on drop;
//! - [`process`]: child processes that are stopped when dropped (SIGTERM, then SIGKILL);
//! - the client-side tools: [`dhclient`] (its script and lease file), [`relay`] (dhcrelay),
//!   [`perfdhcp`] (its command line and report), [`capture`] (tcpdump, read back through
//!   tshark), [`http`] (the metrics endpoint);
//! - [`harness`]: the test harness that puts these together around `xdhcp6d`;
//! - [`fixtures`]: the configurations under `tests/fixtures/` at the repository root.
//!
//! Everything here needs root and the tools `cargo xtask setup` installs; a missing tool is an
//! error, never a skipped test.

pub mod capture;
pub mod cmd;
pub mod dhclient;
pub mod fixtures;
pub mod harness;
pub mod http;
pub mod netns;
pub mod perfdhcp;
pub mod process;
pub mod relay;

use std::io;
use std::process::ExitStatus;

/// What went wrong while building or running a lab.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A program could not be started.
    #[error("cannot start `{line}`: {source}")]
    Start { line: String, source: io::Error },
    /// A program ran and failed.
    #[error("`{line}` failed ({status}): {stderr}")]
    Failed {
        line: String,
        status: ExitStatus,
        stderr: String,
    },
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    /// The lab is not in the state a step needs (a timeout, a missing tool, an early exit).
    #[error("{0}")]
    State(String),
}

/// The lab's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}
