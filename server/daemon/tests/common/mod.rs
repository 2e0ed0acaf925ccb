//! The lab harness (`xdhcp6-lab`) for this crate's root tests, bound to the daemon under test.

#![allow(dead_code, unused_imports)] // Each test binary uses its own part of the harness.

use std::path::Path;

pub use xdhcp6_lab::capture::{self, CapturedMessage};
pub use xdhcp6_lab::dhclient::{ScriptEvent, lease_value};
pub use xdhcp6_lab::harness::{
    DaemonOptions, Datapath, Lab, captured_messages, contains, require_tools, run,
};
pub use xdhcp6_lab::http::metric_sum;
pub use xdhcp6_lab::{fixtures, perfdhcp};

/// The daemon under test.
pub const DAEMON: &str = env!("CARGO_BIN_EXE_xdhcp6d");

/// A lab for the daemon under test, named after the test (`tag`), one namespace per role.
pub fn lab(tag: &str, roles: &[&str]) -> Lab {
    Lab::new(DAEMON, tag, roles)
}

/// The rows of `xdhcp6d leases --journal J --json`.
pub fn journal_leases(journal: &Path) -> Vec<serde_json::Value> {
    xdhcp6_lab::harness::journal_leases(Path::new(DAEMON), journal)
}
