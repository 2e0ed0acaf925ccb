//! Throw-away network namespaces joined by veth pairs, removed on drop.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::cmd;

/// A network namespace that is deleted (with its interfaces) when dropped.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace, replacing a stale one of the same name, with loopback up.
    pub fn create(name: &str) -> Result<Self> {
        let _ = cmd::output(Command::new("ip").args(["netns", "delete", name]));
        cmd::output(Command::new("ip").args(["netns", "add", name]))?;
        let netns = Self {
            name: name.to_owned(),
        };
        netns.ip(&["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME args...`.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        cmd::output(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Waits until no IPv6 address on `interface` is tentative (duplicate address detection
    /// done), so that sockets can bind to and send from them.
    pub fn wait_for_addresses(&self, interface: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let tentative = self.ip(&["-6", "addr", "show", "dev", interface, "tentative"])?;
            let has_link_local = self
                .ip(&["-6", "addr", "show", "dev", interface, "scope", "link"])?
                .contains("inet6");
            if tentative.trim().is_empty() && has_link_local {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{interface} in {} still has no usable IPv6 address",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = cmd::output(Command::new("ip").args(["netns", "delete", &self.name]));
    }
}

/// Creates a veth pair with one end in each namespace, both up.
pub fn veth_pair(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<()> {
    cmd::output(Command::new("ip").args([
        "link",
        "add",
        a_if,
        "netns",
        a.name(),
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ]))?;
    a.ip(&["link", "set", a_if, "up"])?;
    b.ip(&["link", "set", b_if, "up"])?;
    Ok(())
}
