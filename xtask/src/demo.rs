//! `cargo xtask demo`: the appliance at work in throw-away network namespaces.
//!
//! Builds everything, joins a server namespace and a client namespace with a veth pair, starts
//! `xdhcp6d` over AF_XDP with a small configuration, lets ISC `dhclient -6` obtain an address
//! and a delegated prefix, runs the load generator (direct clients, then clients behind
//! emulated relays), and shows the server's metrics. The namespaces and the daemon are removed
//! at the end, also when a step fails.

use std::path::Path;

use anyhow::{Context, Result};

use xdhcp6_lab::dhclient::{Dhclient, lease_value};
use xdhcp6_lab::fixtures;
use xdhcp6_lab::netns::{self, Netns};
use xdhcp6_lab::process::kill_pid_file;

use crate::build;
use crate::cmd::{self, indent, step};
use crate::process;

const SERVER_IF: &str = "xd-srv0";
const CLIENT_IF: &str = "xd-cli0";
const METRICS: &str = "[::1]:9547";

pub fn run() -> Result<()> {
    cmd::require_root("cargo xtask demo")?;
    build::all()?;
    let release = build::target_dir().join("release");
    let daemon = release.join("xdhcp6d");
    let bench = release.join("xdhcp6-bench");
    let work = build::target_dir().join("xtask-demo");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let config = work.join("demo.toml");
    let text = fixtures::render(fixtures::DEMO, &[("SERVER_IF", SERVER_IF)])?;
    std::fs::write(&config, &text).with_context(|| format!("writing {}", config.display()))?;

    step("namespaces xdhcp6-demo-srv and xdhcp6-demo-cli, joined by a veth pair");
    let server = Netns::create("xdhcp6-demo-srv")?;
    let client = Netns::create("xdhcp6-demo-cli")?;
    // Offloads stay on, as on any container or VM bridge: dhclient's datagrams reach AF_XDP
    // with checksums left to the (virtual) hardware, and are answered.
    netns::veth_pair(&server, SERVER_IF, &client, CLIENT_IF)?;
    server.wait_for_addresses(SERVER_IF)?;
    client.wait_for_addresses(CLIENT_IF)?;

    step("xdhcp6d run --datapath xdp (AF_XDP, native XDP on the veth)");
    println!("{}", indent(&text));
    let log = work.join("xdhcp6d.log");
    let mut command = server.command(&daemon);
    command
        .current_dir(&work)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .args([
            "--datapath",
            "xdp",
            "--xdp-mode",
            "native",
            "--metrics",
            METRICS,
        ])
        .arg("--journal")
        .arg(work.join("leases.journal"))
        .arg("--control")
        .arg(work.join("control.sock"));
    let daemon = process::start(command, &log, "xdhcp6d")?;
    process::wait_for_metrics(&server, METRICS, &log)?;

    step("ISC dhclient -6 asks for an address, then dhclient -6 -P for a prefix");
    let address = dhclient(&client, &work, "address", &[])?;
    println!("  dhclient -6    -> address {address}");
    let prefix = dhclient(&client, &work, "prefix", &["-P"])?;
    println!("  dhclient -6 -P -> prefix  {prefix}");

    let generator = |name: &str, extra: &[&str]| -> Result<()> {
        let mut command = client.command(&bench);
        command
            .args([
                "--interface",
                CLIENT_IF,
                "--scenario",
                "mix",
                "--ia",
                "na+pd",
            ])
            .args(["--clients", "10000", "--rate", "2000", "--duration", "5"])
            .args(["--expect-range", "2001:db8:1::/65"])
            .args(["--expect-pd-range", "2001:db8:100::/41"])
            .args(extra)
            .arg("--json")
            .arg(work.join(format!("{name}.json")))
            .arg("--plot")
            .arg(work.join(format!("{name}.svg")));
        cmd::run(&mut command)
    };
    step("xdhcp6-bench: 10,000 emulated direct clients, mixed scenarios, 2,000 flows/s for 5 s");
    generator("direct", &[])?;
    step("xdhcp6-bench: 10,000 more clients behind 8 emulated relays (Relay-forward), 5 s");
    generator("relayed", &["--relays", "8", "--seed", "191"])?;

    step("a few lines of http://[::1]:9547/metrics");
    let metrics = process::metrics(&server, METRICS)?;
    for line in metrics.lines().filter(|line| {
        !line.starts_with('#')
            && (line.starts_with("xdhcp6_messages_received_total{type=\"solicit\"")
                || line.starts_with("xdhcp6_messages_received_total{type=\"renew\"")
                || line.starts_with("xdhcp6_messages_sent_total{type=\"reply\"")
                || line.starts_with("xdhcp6_leases ")
                || line.starts_with("xdhcp6_pool_bound")
                || line.starts_with("xdhcp6_xdp_frames_total")
                || line.starts_with("xdhcp6_journal_lag_events"))
    }) {
        println!("  {line}");
    }

    step("done");
    println!("  plots:   {}", work.join("direct.svg").display());
    println!("           {}", work.join("relayed.svg").display());
    println!("  reports: {}", work.join("direct.json").display());
    println!(
        "  journal: {} (xdhcp6d leases --journal ...)",
        work.join("leases.journal").display()
    );
    println!("  cleaning up: stopping xdhcp6d, removing the namespaces");
    drop(daemon);
    if let Some(last) = std::fs::read_to_string(&log)
        .ok()
        .and_then(|text| text.lines().last().map(str::to_owned))
    {
        println!("  xdhcp6d: {last}");
    }
    Ok(())
}

/// Runs `dhclient -6 -1` in the client namespace and returns the address or prefix it bound.
/// Its script is the lab's, which keeps it away from the host's /etc/resolv.conf (shared by
/// `ip netns exec`).
fn dhclient(client: &Netns, work: &Path, name: &str, extra: &[&str]) -> Result<String> {
    let files = Dhclient::new(work, &format!("dhclient-{name}"))?;
    let result = cmd::output(&mut files.command(client, CLIENT_IF, extra, true));
    // dhclient stays in the background to renew; the demo needs only the lease.
    if result.is_ok() {
        files.stop_background();
    } else {
        kill_pid_file(&files.pid);
    }
    result.with_context(|| format!("dhclient -6 {extra:?}"))?;
    let keyword = if extra.contains(&"-P") {
        "iaprefix"
    } else {
        "iaaddr"
    };
    lease_value(&files.lease_file(), keyword)
        .with_context(|| format!("no {keyword} in {}", files.leases.display()))
}
