//! Throw-away network namespaces joined by veth pairs, removed on drop.

use std::ffi::OsStr;
use std::fs::File;
use std::net::Ipv6Addr;
use std::os::fd::AsFd;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

use crate::cmd;
use crate::{Error, Result};

/// A network namespace that is deleted (with its interfaces) when dropped.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace, replacing a stale one of the same name (left over by a run that
    /// was killed), with loopback up.
    pub fn create(name: &str) -> Result<Self> {
        let _ = cmd::capture(Command::new("ip").args(["netns", "delete", name]));
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

    /// `ip -n NAME args...`, its standard output.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        cmd::output(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// A command that runs `program` inside the namespace (`ip netns exec` execs it in place,
    /// so the child's pid is the program's).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Runs `args` inside the namespace and returns its output, whatever its status.
    pub fn exec(&self, args: &[&str]) -> Result<Output> {
        let (program, rest) = args
            .split_first()
            .ok_or_else(|| Error::State("nothing to run".to_owned()))?;
        cmd::capture(self.command(program).args(rest))
    }

    /// Turns off duplicate address detection: addresses are usable at once (dhclient binds
    /// to a tentative link-local address otherwise and fails).
    pub fn disable_dad(&self) -> Result<()> {
        for key in [
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ] {
            cmd::output(self.command("sysctl").args(["-qw", key]))?;
        }
        Ok(())
    }

    /// Has the kernel finish the UDP checksums it sends on `interface`. veth leaves them to
    /// "hardware" (CHECKSUM_PARTIAL), so a frame read raw through AF_XDP carries only the
    /// pseudo-header sum (the server accepts those, as the kernel does); real NICs hand over
    /// finished checksums. Tests use this to cover both kinds of frame.
    pub fn finish_checksums(&self, interface: &str) -> Result<()> {
        cmd::output(self.command("ethtool").args(["-K", interface, "tx", "off"]))?;
        Ok(())
    }

    /// Adds an address (`2001:db8::1/64`) to an interface, usable at once.
    pub fn add_address(&self, interface: &str, cidr: &str) -> Result<()> {
        self.ip(&["addr", "add", cidr, "dev", interface, "nodad"])?;
        Ok(())
    }

    /// Adds a bridge (a switch: no STP, no forwarding delay, no MLD snooping, so that
    /// multicast reaches every port at once) and brings it up.
    pub fn add_bridge(&self, bridge: &str) -> Result<()> {
        self.ip(&[
            "link",
            "add",
            bridge,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        self.ip(&["link", "set", bridge, "up"])?;
        Ok(())
    }

    /// Makes an interface a port of a bridge in the same namespace.
    pub fn attach(&self, interface: &str, bridge: &str) -> Result<()> {
        self.ip(&["link", "set", interface, "master", bridge])?;
        Ok(())
    }

    /// The global IPv6 addresses of an interface.
    pub fn global_addresses(&self, interface: &str) -> Result<Vec<Ipv6Addr>> {
        let text = self.ip(&[
            "-6", "-o", "addr", "show", "dev", interface, "scope", "global",
        ])?;
        Ok(text
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                words.find(|word| *word == "inet6")?;
                words.next()?.split('/').next()?.parse().ok()
            })
            .collect())
    }

    /// The MAC address of an interface (`aa:bb:cc:dd:ee:ff`).
    pub fn mac(&self, interface: &str) -> Result<String> {
        let link = self.ip(&["-o", "link", "show", "dev", interface])?;
        link.split_whitespace()
            .skip_while(|word| *word != "link/ether")
            .nth(1)
            .map(str::to_owned)
            .ok_or_else(|| Error::State(format!("{interface} has no MAC address")))
    }

    /// The index of an interface in the namespace.
    pub fn if_index(&self, interface: &str) -> Result<u32> {
        parse_index(
            interface,
            &self.ip(&["-o", "link", "show", "dev", interface])?,
        )
    }

    /// Waits until an interface has its link-local address (it comes with the carrier;
    /// clients such as perfdhcp bind to it).
    pub fn wait_for_link_local(&self, interface: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.ip(&["-6", "addr", "show", "dev", interface, "scope", "link"])?;
            if text.contains("fe80::") {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::State(format!(
                    "{interface} in {} has no link-local address",
                    self.name
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until no IPv6 address on `interface` is tentative (duplicate address detection
    /// done) and it has a link-local one, so that sockets can bind to and send from them.
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
                return Err(Error::State(format!(
                    "{interface} in {} still has no usable IPv6 address",
                    self.name
                )));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `body` on a thread inside the namespace: the network namespace belongs to a
    /// thread, and threads it spawns inherit it.
    pub fn run<T: Send>(&self, body: impl FnOnce() -> T + Send) -> Result<T> {
        let path = format!("/run/netns/{}", self.name);
        let namespace = File::open(&path).map_err(Error::io(format!("opening {path}")))?;
        thread::scope(|scope| {
            let handle = scope.spawn(|| {
                move_into_link_name_space(namespace.as_fd(), Some(LinkNameSpaceType::Network))
                    .map_err(|error| Error::io(format!("entering {path}"))(error.into()))?;
                Ok(body())
            });
            match handle.join() {
                Ok(value) => value,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
}

/// The index of an interface in the calling thread's namespace (as entered by
/// [`Netns::run`]: `ip` runs as a child of this thread, in its namespace).
pub fn if_index(interface: &str) -> Result<u32> {
    let link = cmd::output(Command::new("ip").args(["-o", "link", "show", "dev", interface]))?;
    parse_index(interface, &link)
}

fn parse_index(interface: &str, link: &str) -> Result<u32> {
    link.split(':')
        .next()
        .and_then(|index| index.trim().parse().ok())
        .ok_or_else(|| Error::State(format!("no index for {interface} in {link:?}")))
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = cmd::capture(Command::new("ip").args(["netns", "delete", &self.name]));
    }
}

/// Creates a veth pair with one end in each namespace (the same one is fine), both up, with
/// the kernel's default number of queues.
pub fn veth_pair(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<()> {
    add_veth(a, a_if, b, b_if, &[])
}

/// As [`veth_pair`], with `queues` receive and transmit queues on each end (binding AF_XDP
/// to queue 1 of a one-queue veth fails with EINVAL).
pub fn veth_pair_with_queues(
    a: &Netns,
    a_if: &str,
    b: &Netns,
    b_if: &str,
    queues: u32,
) -> Result<()> {
    let queues = queues.to_string();
    add_veth(
        a,
        a_if,
        b,
        b_if,
        &["numtxqueues", &queues, "numrxqueues", &queues],
    )
}

fn add_veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str, queues: &[&str]) -> Result<()> {
    let mut args = vec!["link", "add", a_if];
    args.extend_from_slice(queues);
    args.extend_from_slice(&["type", "veth", "peer", "name", b_if, "netns", b.name()]);
    args.extend_from_slice(queues);
    a.ip(&args)?;
    a.ip(&["link", "set", a_if, "up"])?;
    b.ip(&["link", "set", b_if, "up"])?;
    Ok(())
}
