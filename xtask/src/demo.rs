//! `cargo xtask demo`: the appliance at work in throw-away network namespaces.
//!
//! Builds everything, joins a server namespace and a client namespace with a veth pair,
//! attaches the XDP steering program to the server end and sends DHCPv6 and other UDP traffic
//! from the client end, printing the program's counters as they move. The namespaces are
//! removed at the end, also when a step fails.

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::build;
use crate::cmd;
use crate::netns::{self, Netns};

const SERVER_IF: &str = "xd-srv0";
const CLIENT_IF: &str = "xd-cli0";
const WATCH_SECONDS: &str = "5";

pub fn run() -> Result<()> {
    cmd::require_root("cargo xtask demo")?;
    let daemon = build::all()?;

    eprintln!(
        "\ndemo: namespaces xdhcp6-demo-srv ({SERVER_IF}) <-veth-> xdhcp6-demo-cli ({CLIENT_IF})"
    );
    let server = Netns::create("xdhcp6-demo-srv")?;
    let client = Netns::create("xdhcp6-demo-cli")?;
    netns::veth_pair(&server, SERVER_IF, &client, CLIENT_IF)?;
    server.wait_for_addresses(SERVER_IF)?;
    client.wait_for_addresses(CLIENT_IF)?;

    eprintln!("demo: attaching the XDP program to {SERVER_IF} and watching its counters");
    let mut watch = server.command(&daemon);
    watch.args([
        "xdp-watch",
        "--interface",
        SERVER_IF,
        "--seconds",
        WATCH_SECONDS,
    ]);
    eprintln!("$ {}", cmd::display(&watch));
    let mut watcher = watch.spawn().context("starting xdhcp6d xdp-watch")?;
    std::thread::sleep(Duration::from_millis(1500));

    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let mut probes = client.command(exe);
    probes.args(["send-probes", "--interface", CLIENT_IF, "--count", "20"]);
    let sent = cmd::run(&mut probes);
    let watched = watcher.wait().context("waiting for xdhcp6d xdp-watch")?;
    sent?;
    if !watched.success() {
        bail!("xdhcp6d xdp-watch failed ({watched})");
    }
    eprintln!(
        "\ndemo: the Solicits were steered towards AF_XDP (no socket is bound yet, so they went \
         on to the kernel and count as no_socket); other traffic was passed. Cleaning up."
    );
    Ok(())
}
