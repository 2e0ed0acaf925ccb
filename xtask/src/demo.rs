//! `cargo xtask demo`: the appliance at work in throw-away network namespaces.
//!
//! Builds everything, joins a server namespace and a client namespace with a veth pair, starts
//! `xdhcp6d` over AF_XDP with a small configuration, lets ISC `dhclient -6` obtain an address
//! and a delegated prefix, runs the load generator (direct clients, then clients behind
//! emulated relays), and shows the server's metrics. The namespaces and the daemon are removed
//! at the end, also when a step fails.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::build;
use crate::cmd;
use crate::netns::{self, Netns};
use crate::process::{self, Process};

const SERVER_IF: &str = "xd-srv0";
const CLIENT_IF: &str = "xd-cli0";
const METRICS: &str = "[::1]:9547";

/// The demo's server: one link on the veth, a /64 of which this server owns the first half,
/// and /56 prefixes from the first half of a /40 (32,768 of them). Short lifetimes so renewals show within the demo.
const CONFIG: &str = r#"# xdhcp6 demo: one link, the first half of a /64 (RFC 6853 split model, server A).
[server]
duid-file = "server.duid"
preference = 255
salt = "xdhcp6-demo"
expected-leases = 100000
t1 = "5m"
t2 = "8m"
preferred-lifetime = "10m"
valid-lifetime = "15m"

[options]
dns-servers = ["2001:db8:53::1"]
domain-search = ["demo.example"]

[[link]]
name = "demo"
interfaces = ["xd-srv0"]

[[link.pool]]
prefix = "2001:db8:1::/64"
split = "1/2"

[[link.pd-pool]]
prefix = "2001:db8:100::/40"
delegated-length = 56
split = "1/2"
"#;

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
    std::fs::write(&config, CONFIG).with_context(|| format!("writing {}", config.display()))?;

    step("namespaces xdhcp6-demo-srv and xdhcp6-demo-cli, joined by a veth pair");
    let server = Netns::create("xdhcp6-demo-srv")?;
    let client = Netns::create("xdhcp6-demo-cli")?;
    netns::veth_pair(&server, SERVER_IF, &client, CLIENT_IF)?;
    // veth hands AF_XDP frames whose UDP checksum the kernel has not filled in yet; real NICs
    // deliver finished checksums. Turn the offload off on both ends.
    cmd::output(
        server
            .command("ethtool")
            .args(["-K", SERVER_IF, "tx", "off"]),
    )?;
    cmd::output(
        client
            .command("ethtool")
            .args(["-K", CLIENT_IF, "tx", "off"]),
    )?;
    server.wait_for_addresses(SERVER_IF)?;
    client.wait_for_addresses(CLIENT_IF)?;

    step("xdhcp6d run --datapath xdp (AF_XDP, native XDP on the veth)");
    println!("{}", indent(CONFIG));
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
        .arg(work.join("leases.journal"));
    let daemon = Process::start(command, &log, "xdhcp6d")?;
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
    let metrics = cmd::output(
        server
            .command(std::env::current_exe().context("locating the xtask binary")?)
            .args(["http-get", METRICS, "/metrics"]),
    )?;
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

fn step(text: &str) {
    println!("\n== {text}");
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("  | {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `dhclient -6 -1` in the client namespace and returns the address or prefix it bound.
fn dhclient(client: &Netns, work: &Path, name: &str, extra: &[&str]) -> Result<String> {
    let leases = work.join(format!("dhclient-{name}.leases"));
    let pid = work.join(format!("dhclient-{name}.pid"));
    let mut command = client.command("timeout");
    command
        .args(["30", "dhclient", "-6"])
        // No dhclient-script: Debian's would write the DNS servers into /etc/resolv.conf,
        // which `ip netns exec` shares with the host. The demo only needs the lease file.
        .args(["-sf", "/bin/true"])
        .args(extra)
        .args(["-1", "-lf"])
        .arg(&leases)
        .arg("-pf")
        .arg(&pid)
        .arg(CLIENT_IF);
    let result = cmd::output(&mut command);
    // dhclient stays in the background to renew; the demo needs only the lease.
    if let Ok(text) = std::fs::read_to_string(&pid) {
        let _ = Command::new("kill").arg(text.trim()).status();
    }
    result.with_context(|| format!("dhclient -6 {extra:?}"))?;
    let text = std::fs::read_to_string(&leases)
        .with_context(|| format!("reading {}", leases.display()))?;
    let keyword = if extra.contains(&"-P") {
        "iaprefix"
    } else {
        "iaaddr"
    };
    text.split_whitespace()
        .skip_while(|word| *word != keyword)
        .nth(1)
        .map(str::to_owned)
        .with_context(|| format!("no {keyword} in {}", leases.display()))
}
