//! A reload that adds a link the server started without: the journal's leases on that link,
//! held over since start-up, are loaded into the table, so Leasequery finds them and their
//! clients' Renews keep their addresses.
//!
//! Needs root and network namespaces; `cargo xtask test` runs it with `--include-ignored
//! --test-threads=1`.

mod common;

use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use common::{DaemonOptions, Datapath, Exchange, exchange};
use xdhcp6_engine::proto::{MessageType, QueryType, StatusCode};
use xdhcp6_engine::testing::leasequery::{LeasequeryReply, encode, query_option};
use xdhcp6_engine::testing::{Client, ReplyView};

const SERVER_IF: &str = "rl6s";
const CLIENT_IF: &str = "rl6c";
const SERVER_DUID: &[u8] = &[0, 1, 0, 1, 0x2e, 0, 0, 0x0e, 2, 0, 0, 0, 0, 0x0e];
const SERVER_ADDRESS: &str = "2001:db8:ffff:e::1";
const REQUESTOR: &str = "2001:db8:ffff:e::5";
const REQUESTOR_DUID: &[u8] = &[0, 3, 0, 1, 2, 0, 0, 0, 0x4c, 0x52];

/// One link called `name` on the server's interface, with the pool `prefix`.
fn config(name: &str, prefix: &str) -> String {
    format!(
        r#"
[server]
duid = "00:01:00:01:2e:00:00:0e:02:00:00:00:00:0e"
salt = "reload-link"
t1 = 100
t2 = 160
preferred-lifetime = 200
valid-lifetime = 300

[[link]]
name = "{name}"
interfaces = ["{SERVER_IF}"]

[[link.pool]]
prefix = "{prefix}"

[leasequery]
requestors = ["{REQUESTOR}/128"]
"#
    )
}

/// Asks the server who holds `address`, as the listed requestor.
fn who_holds(net: &common::Lab, xid: u32, address: Ipv6Addr) -> LeasequeryReply {
    let mut iaaddr = address.octets().to_vec();
    iaaddr.extend_from_slice(&[0; 8]);
    let body = query_option(
        QueryType::ByAddress.into(),
        Ipv6Addr::UNSPECIFIED,
        &[(5, &iaaddr)],
    );
    net.netns("cli")
        .run(move || {
            let from: Ipv6Addr = REQUESTOR.parse().unwrap();
            let socket = UdpSocket::bind(SocketAddrV6::new(from, 0, 0, 0)).unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(700)))
                .unwrap();
            let server = SocketAddrV6::new(SERVER_ADDRESS.parse().unwrap(), 547, 0, 0);
            let message = encode(xid, REQUESTOR_DUID, &body);
            for _ in 0..3 {
                socket.send_to(&message, server).unwrap();
                let mut buf = [0u8; 1500];
                while let Ok((len, _)) = socket.recv_from(&mut buf) {
                    let reply = LeasequeryReply::parse(&buf[..len]);
                    if reply.xid == xid {
                        return Some(reply);
                    }
                }
            }
            None
        })
        .unwrap()
        .unwrap_or_else(|| panic!("no LEASEQUERY-REPLY\n{}", net.daemon_log()))
}

/// Client `n` renews `address` (IAID 1) and returns the Reply.
fn renew(net: &common::Lab, n: u64, address: Ipv6Addr) -> ReplyView {
    common::ask(
        net,
        CLIENT_IF,
        n,
        0x00ab_cd00 | n as u32,
        |client| client.renew(SERVER_DUID).ia_na(1, &[address]).encode(),
        MessageType::Reply,
    )
    .unwrap_or_else(|| panic!("no Reply to the Renew\n{}", net.daemon_log()))
}

#[test]
#[ignore = "needs root and network namespaces; run by cargo xtask test"]
fn a_reload_that_adds_a_link_serves_its_journaled_leases() {
    let mut net = common::lab("reload-link", &["srv", "cli"]);
    net.veth_with_finished_checksums(("srv", SERVER_IF), ("cli", CLIENT_IF));
    net.address("srv", SERVER_IF, &format!("{SERVER_ADDRESS}/64"));
    net.address("cli", CLIENT_IF, &format!("{REQUESTOR}/64"));
    let journal = net.path("leases.journal");
    let options = |log| DaemonOptions {
        datapath: Datapath::Udp,
        journal: &journal,
        durability: "always",
        log,
    };

    // Link "b" binds two clients, then the server restarts without it: its leases are
    // held over from the journal's replay.
    let with_b = config("b", "2001:db8:b::/64");
    net.start_daemon("srv", &with_b, &options("with-b"));
    let mut addresses = Vec::new();
    for n in 1..=2 {
        match exchange(&net, CLIENT_IF, n) {
            Exchange::Bound(address) => addresses.push(address),
            other => panic!("client {n}: {other:?}\n{}", net.daemon_log()),
        }
    }
    net.stop_daemon();
    net.start_daemon(
        "srv",
        &config("a", "2001:db8:a::/64"),
        &options("without-b"),
    );
    let log = net.daemon_log();
    assert!(log.contains("unplaced=2"), "{log}");
    // Not served: the address is on no link of the running configuration.
    let reply = who_holds(&net, 1, addresses[0]);
    assert_eq!(reply.status_code(), StatusCode::NotConfigured);
    assert!(reply.client_data.is_none(), "{:?}", reply.client_data);

    // The reload that brings "b" back loads both leases into the table.
    let config_path = net.path("server.toml");
    std::fs::write(&config_path, &with_b).unwrap();
    let before = net.daemon_log().len();
    net.signal_server("server", "HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    let reloaded = loop {
        let log = net.daemon_log();
        let new = log.get(before..).unwrap_or_default().to_owned();
        if new.contains("configuration reload") {
            break new;
        }
        assert!(Instant::now() < deadline, "no reload logged:\n{log}");
        thread::sleep(Duration::from_millis(20));
    };
    assert!(reloaded.contains("configuration reloaded"), "{reloaded}");
    assert!(reloaded.contains("leases_loaded=2"), "{reloaded}");
    assert!(reloaded.contains("lease_conflicts=0"), "{reloaded}");

    // Leasequery finds each lease with its client, as journaled: what remains of the 300 s
    // valid lifetime given before the restart, not a fresh binding.
    for (i, address) in addresses.iter().enumerate() {
        let reply = who_holds(&net, 10 + i as u32, *address);
        let data = reply
            .client_data
            .unwrap_or_else(|| panic!("no Client Data for {address}\n{}", net.daemon_log()));
        assert_eq!(
            data.client_id.as_ref(),
            Some(&Client::new(i as u64 + 1).duid)
        );
        assert_eq!(data.addresses.len(), 1, "{data:?}");
        assert_eq!(data.addresses[0].0, *address);
        assert!(data.addresses[0].2 <= 300, "{data:?}");
    }

    // The first client's Renew keeps its address.
    let reply = renew(&net, 1, addresses[0]);
    let ia = reply.ia_na.first().expect("an IA_NA in the Reply");
    assert_eq!(ia.live_addrs(), vec![addresses[0]], "{reply:?}");
    net.stop_daemon();

    // The journal names both leases on "b" after the restart as before.
    let leases = common::journal_leases(&journal);
    for address in &addresses {
        let row = leases
            .iter()
            .find(|row| row["lease"] == address.to_string() && row["state"] == "bound")
            .unwrap_or_else(|| panic!("{address} not in the journal: {leases:?}"));
        assert_eq!(row["link"], "b", "{row}");
    }
}
