//! ISC dhclient against `xdhcp6d run --datapath udp`, across a veth pair between two network
//! namespaces: an address (IA_NA) and a delegated prefix (IA_PD) end up in dhclient's lease
//! file and, after the daemon stops, in `xdhcp6d leases --json`.

mod common;

use common::{DAEMON, DaemonOptions, Datapath, fixtures, lease_value, run};

/// The server's and the client's end of the veth pair (names are per namespace).
const SERVER_IF: &str = "xd6s";
const CLIENT_IF: &str = "xd6c";

fn config(server_if: &str) -> String {
    fixtures::render(fixtures::ACCESS, &[("SERVER_IF", server_if)]).expect("the access fixture")
}

#[test]
#[ignore = "needs root, network namespaces and dhclient; run by cargo xtask test"]
fn dhclient_gets_an_address_and_a_prefix_over_udp() {
    dhclient_scenario(Datapath::Udp);
}

#[test]
#[ignore = "needs root, network namespaces, dhclient and the eBPF object; run by cargo xtask test"]
fn dhclient_gets_an_address_and_a_prefix_over_xdp() {
    // The XDP object comes from XDHCP6_EBPF_OBJECT (set by `cargo xtask test`) or is embedded.
    dhclient_scenario(Datapath::XdpSkb);
}

/// Address, prefix, `leases --json`, then a restart that replays both from the journal.
fn dhclient_scenario(datapath: Datapath) {
    let mut net = common::lab("udp-dhclient", &["srv", "cli"]);
    net.veth(("srv", SERVER_IF), ("cli", CLIENT_IF));
    let config_path = net.path("server.toml");
    let journal = net.path("leases.journal");
    let options = DaemonOptions {
        datapath,
        journal: &journal,
        durability: "always",
        log: "daemon",
    };
    net.start_daemon("srv", &config(SERVER_IF), &options);

    let na = net.dhclient("cli", CLIENT_IF, "na", &[]);
    let address = lease_value(&na, "iaaddr ").unwrap_or_else(|| panic!("no address:\n{na}"));
    let parsed: std::net::Ipv6Addr = address.parse().unwrap();
    // Split "1/2": this server allocates from the first half of the /64.
    assert_eq!(parsed.segments()[..4], [0x2001, 0xdb8, 1, 0], "{address}");
    assert!(
        parsed.segments()[4] < 0x8000,
        "{address} is outside 2001:db8:1::/65"
    );

    let pd = net.dhclient("cli", CLIENT_IF, "pd", &["-P"]);
    let prefix = lease_value(&pd, "iaprefix ").unwrap_or_else(|| panic!("no prefix:\n{pd}"));
    assert!(
        prefix.starts_with("2001:db8:1") && prefix.ends_with("/56"),
        "{prefix}"
    );

    net.stop_daemon();

    let journal_arg = journal.display().to_string();
    let output = run(DAEMON, &["leases", "--journal", &journal_arg, "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = rows.as_array().expect("a JSON array");
    let find = |kind: &str, lease: &str| {
        rows.iter()
            .find(|row| row["kind"] == kind && row["lease"] == lease && row["state"] == "bound")
    };
    let na_row = find("na", &address).unwrap_or_else(|| panic!("{address} not in {rows:#?}"));
    assert_eq!(na_row["valid"], 300);
    let pd_row = find("pd", &prefix).unwrap_or_else(|| panic!("{prefix} not in {rows:#?}"));
    // The journal records the link by name, so it is known even without --config.
    assert_eq!(pd_row["link"], "access-1");

    // The table form lists both too, with link names from the configuration.
    let config_arg = config_path.display().to_string();
    let output = run(
        DAEMON,
        &["leases", "--journal", &journal_arg, "--config", &config_arg],
    );
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains(&address) && table.contains(&prefix) && table.contains("access-1"),
        "{table}"
    );

    // A restart replays both leases, and the client (same DUID, from its lease file) gets
    // its address back.
    let options = DaemonOptions {
        log: "daemon-restarted",
        ..options
    };
    net.start_daemon("srv", &config(SERVER_IF), &options);
    let log = net.daemon_log();
    assert!(
        log.contains("leases=2 loaded=2 conflicts=0 torn_bytes=0"),
        "{log}"
    );
    let again = net.dhclient("cli", CLIENT_IF, "na", &[]);
    assert!(again.contains(&format!("iaaddr {address} ")), "{again}");
    net.stop_daemon();
}
