//! The lab's supervised processes as the xtask runs use them: a log line per start, the
//! generator's exit codes, and waiting for a daemon to serve.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use xdhcp6_lab::http;
use xdhcp6_lab::netns::Netns;
use xdhcp6_lab::process::Process;

/// Starts `command` with its output in `log`, and says where the log is.
pub fn start(command: Command, log: &Path, name: &str) -> Result<Process> {
    println!("  log: {}", log.display());
    Ok(Process::start(command, log, name)?)
}

/// Waits for the generator to end, killing it after `limit`; its exit code 1 (some reply
/// failed validation; the report says which) is a finding, not a failure.
pub fn wait_generator(generator: &mut Process, limit: Duration) -> Result<()> {
    let status = generator.wait(limit)?;
    if status.success() || status.code() == Some(1) {
        return Ok(());
    }
    bail!("{} failed ({status})", generator.name())
}

/// Waits until the `xdhcp6d` in `netns` answers on its metrics endpoint `address` (it is then
/// serving); `log` names where to look when it does not.
pub fn wait_for_metrics(netns: &Netns, address: &str, log: &Path) -> Result<()> {
    let address: SocketAddr = address
        .parse()
        .with_context(|| format!("metrics address {address}"))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if netns.run(|| http::get(address, "/metrics"))?.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "xdhcp6d in {} did not start serving within 15 s (see {})",
                netns.name(),
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The metrics `netns`'s daemon serves on `address`.
pub fn metrics(netns: &Netns, address: &str) -> Result<String> {
    let address: SocketAddr = address
        .parse()
        .with_context(|| format!("metrics address {address}"))?;
    Ok(netns.run(|| http::get(address, "/metrics"))??)
}
