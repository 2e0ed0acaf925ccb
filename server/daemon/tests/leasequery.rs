//! Leasequery (RFC 5007) against a running server, in network namespaces, over the UDP socket
//! and over AF_XDP: ISC dhclient and the lab's own clients take leases, then a requestor asks
//! by unicast, from its own port, who holds an address and what a client holds, and gets the
//! Client Data the control API shows for the same leases; a requestor outside
//! `[leasequery] requestors` gets NotAllowed, and a client's unicast Solicit is still dropped.
//!
//! No packaged software sends DHCPv6 Leasequery on Debian (scapy there knows only the LQ
//! Client Link option, Kea's requestor side is a commercial hook, dibbler's requestor is not
//! packaged), so the queries are written with the proto crate.

mod common;

use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::path::Path;
use std::time::Duration;

use common::{DAEMON, DaemonOptions, Datapath, exchange, fixtures, lease_value};
use xdhcp6_engine::proto::{MessageType, QueryType, StatusCode};
use xdhcp6_engine::testing::Client;
use xdhcp6_engine::testing::leasequery::{LeasequeryReply, encode, query_option};

const SERVER_IF: &str = "lq6s";
const CLIENT_IF: &str = "lq6c";
/// The server's global address on the client's link, where requestors send.
const SERVER_ADDRESS: &str = "2001:db8:ffff:9::1";
/// The requestor's address, the one `[leasequery] requestors` lists.
const REQUESTOR: &str = "2001:db8:ffff:9::5";
/// Another host on the link, not listed.
const OUTSIDER: &str = "2001:db8:ffff:9::6";
/// The requestor's own DUID (its Client Identifier in the LEASEQUERY).
const REQUESTOR_DUID: &[u8] = &[0, 3, 0, 1, 2, 0, 0, 0, 0x4c, 0x51];
/// Clients of the lab's own exchange helper.
const CLIENTS: u64 = 3;

fn ip(text: &str) -> Ipv6Addr {
    text.parse().unwrap()
}

fn config() -> String {
    let mut text = fixtures::render(fixtures::ACCESS, &[("SERVER_IF", SERVER_IF)]).unwrap();
    text.push_str(&format!(
        "\n[leasequery]\nrequestors = [\"{REQUESTOR}/128\"]\n"
    ));
    text
}

/// Sends one LEASEQUERY from `from` (an ephemeral port) to the server by unicast and returns
/// the reply with the address it came from; `None` when nothing came.
fn query(
    net: &common::Lab,
    from: &str,
    xid: u32,
    body: Vec<u8>,
) -> Option<(LeasequeryReply, SocketAddrV6)> {
    let from = ip(from);
    net.netns("cli")
        .run(move || {
            let socket = UdpSocket::bind(SocketAddrV6::new(from, 0, 0, 0)).unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(700)))
                .unwrap();
            let server = SocketAddrV6::new(ip(SERVER_ADDRESS), 547, 0, 0);
            let message = encode(xid, REQUESTOR_DUID, &body);
            // UDP may lose one; a requestor retransmits (RFC 5007 §4.1.4).
            for _ in 0..3 {
                socket.send_to(&message, server).unwrap();
                let mut buf = [0u8; 1500];
                while let Ok((len, source)) = socket.recv_from(&mut buf) {
                    let reply = LeasequeryReply::parse(&buf[..len]);
                    if reply.xid == xid {
                        let std::net::SocketAddr::V6(source) = source else {
                            panic!("an IPv4 reply from {source}");
                        };
                        return Some((reply, source));
                    }
                }
            }
            None
        })
        .unwrap()
}

fn by_address(address: Ipv6Addr) -> Vec<u8> {
    let mut iaaddr = address.octets().to_vec();
    iaaddr.extend_from_slice(&[0; 8]);
    query_option(
        QueryType::ByAddress.into(),
        Ipv6Addr::UNSPECIFIED,
        &[(5, &iaaddr)],
    )
}

fn by_client_id(duid: &[u8]) -> Vec<u8> {
    query_option(
        QueryType::ByClientId.into(),
        Ipv6Addr::UNSPECIFIED,
        &[(1, duid)],
    )
}

/// Asks as the listed requestor and expects an answer from the server's port 547.
fn ask(net: &common::Lab, xid: u32, body: Vec<u8>) -> LeasequeryReply {
    let (reply, source) = query(net, REQUESTOR, xid, body)
        .unwrap_or_else(|| panic!("no LEASEQUERY-REPLY\n{}", net.daemon_log()));
    assert_eq!(*source.ip(), ip(SERVER_ADDRESS));
    assert_eq!(source.port(), 547);
    assert_eq!(reply.msg_type, MessageType::LeasequeryReply);
    assert_eq!(reply.client_id.as_deref(), Some(REQUESTOR_DUID));
    reply
}

/// The DUID the control API shows for the lease `ctl leases FLAG VALUE` finds (`--address`
/// or `--prefix`).
fn duid_by_control_api(socket: &Path, flag: &str, value: &str) -> Vec<u8> {
    let output = std::process::Command::new(DAEMON)
        .args(["ctl", "--json", "--socket"])
        .arg(socket)
        .args(["leases", flag, value])
        .output()
        .expect("xdhcp6d ctl runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let found: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let duid = found["leases"][0]["duid"]
        .as_str()
        .unwrap_or_else(|| panic!("no lease for {flag} {value}: {found}"));
    duid.split(':')
        .map(|pair| u8::from_str_radix(pair, 16).unwrap())
        .collect()
}

/// The value of one sample, `name{labels}`, in a scrape.
fn sample(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
}

#[test]
#[ignore = "needs root, network namespaces, dhclient; run by cargo xtask test"]
fn leasequery_by_unicast_is_answered_over_udp() {
    scenario(Datapath::Udp);
}

#[test]
#[ignore = "needs root, network namespaces, dhclient and the eBPF object; run by cargo xtask test"]
fn leasequery_by_unicast_is_answered_over_xdp() {
    scenario(Datapath::XdpSkb);
}

fn scenario(datapath: Datapath) {
    common::require_tools(&["dhclient"]);
    let mut net = common::lab("leasequery", &["srv", "cli"]);
    net.veth(("srv", SERVER_IF), ("cli", CLIENT_IF));
    net.address("srv", SERVER_IF, &format!("{SERVER_ADDRESS}/64"));
    net.address("cli", CLIENT_IF, &format!("{REQUESTOR}/64"));
    net.address("cli", CLIENT_IF, &format!("{OUTSIDER}/64"));
    let journal = net.path("leases.journal");
    let options = DaemonOptions {
        datapath,
        journal: &journal,
        durability: "always",
        log: "daemon",
    };
    net.start_daemon("srv", &config(), &options);

    // The lab's clients take addresses, then ISC dhclient an address and a prefix.
    let mut addresses = Vec::new();
    for n in 1..=CLIENTS {
        match exchange(&net, CLIENT_IF, n) {
            common::Exchange::Bound(address) => addresses.push(address),
            other => panic!("client {n}: {other:?}\n{}", net.daemon_log()),
        }
    }
    let na = net.dhclient("cli", CLIENT_IF, "na", &[]);
    let dhclient_address: Ipv6Addr = lease_value(&na, "iaaddr ")
        .unwrap_or_else(|| panic!("no address:\n{na}"))
        .parse()
        .unwrap();
    let pd = net.dhclient("cli", CLIENT_IF, "pd", &["-P"]);
    let prefix_text = lease_value(&pd, "iaprefix ").unwrap_or_else(|| panic!("no prefix:\n{pd}"));
    let (prefix, len) = prefix_text.split_once('/').unwrap();
    let (prefix, len): (Ipv6Addr, u8) = (prefix.parse().unwrap(), len.parse().unwrap());
    let socket = net.daemon_control_socket();

    // By address: dhclient's address, with the DUID the control API shows for it.
    let reply = ask(&net, 0x10, by_address(dhclient_address));
    assert_eq!(reply.status_code(), StatusCode::Success);
    let data = reply
        .client_data
        .unwrap_or_else(|| panic!("no Client Data\n{}", net.daemon_log()));
    let dhclient_duid = duid_by_control_api(&socket, "--address", &dhclient_address.to_string());
    assert_eq!(data.client_id.as_ref(), Some(&dhclient_duid));
    assert_eq!(data.addresses.len(), 1, "{data:?}");
    let (address, preferred, valid) = data.addresses[0];
    assert_eq!(address, dhclient_address);
    // The fixture gives 200 s preferred and 300 s valid: what remains, a few seconds on.
    assert!(valid <= 300 && valid > 200, "valid {valid}");
    assert!(preferred <= 200 && preferred > 100, "preferred {preferred}");
    let clt = data.clt_time.expect("CLT Time");
    assert!(clt <= 300 - valid + 1, "CLT Time {clt}, valid left {valid}");

    // By client identifier: the same client's address (and its prefix when dhclient kept
    // one DUID for both runs).
    let reply = ask(&net, 0x11, by_client_id(&dhclient_duid));
    let data = reply.client_data.expect("Client Data by client identifier");
    assert!(
        data.addresses.iter().any(|a| a.0 == dhclient_address),
        "{data:?}"
    );

    // By an address inside dhclient's delegated prefix: the prefix.
    let inside = Ipv6Addr::from(u128::from(prefix) | 0x1234);
    let reply = ask(&net, 0x12, by_address(inside));
    let data = reply.client_data.expect("Client Data for the prefix");
    assert_eq!(data.prefixes.len(), 1, "{data:?}");
    assert_eq!((data.prefixes[0].0, data.prefixes[0].1), (prefix, len));
    assert_eq!(
        data.client_id,
        Some(duid_by_control_api(&socket, "--prefix", &prefix_text))
    );

    // The lab's clients, each by address and by DUID.
    for (i, address) in addresses.iter().enumerate() {
        let duid = Client::new(i as u64 + 1).duid;
        let reply = ask(&net, 0x20 + i as u32, by_address(*address));
        let data = reply.client_data.expect("Client Data");
        assert_eq!(data.client_id.as_ref(), Some(&duid));
        assert_eq!(data.addresses[0].0, *address);
        let reply = ask(&net, 0x30 + i as u32, by_client_id(&duid));
        let data = reply.client_data.expect("Client Data");
        assert_eq!(data.addresses.len(), 1);
        assert_eq!(data.addresses[0].0, *address);
    }

    // An address nobody holds: a reply without Client Data.
    let reply = ask(&net, 0x40, by_address(ip("2001:db8:1::7fff:ffff")));
    assert!(reply.client_data.is_none());
    assert_eq!(reply.status_code(), StatusCode::Success);

    // A host the list does not name: NotAllowed, and no data.
    let (reply, _) = query(&net, OUTSIDER, 0x41, by_address(dhclient_address))
        .unwrap_or_else(|| panic!("no reply to the outsider\n{}", net.daemon_log()));
    assert_eq!(reply.status_code(), StatusCode::NotAllowed);
    assert!(reply.client_data.is_none());

    // A client's Solicit sent to the same unicast address is still dropped (RFC 9915 §16;
    // counted below as reason `unicast`).
    net.netns("cli")
        .run(|| {
            let socket = UdpSocket::bind(SocketAddrV6::new(ip(REQUESTOR), 0, 0, 0)).unwrap();
            let solicit = Client::new(99).solicit().ia_na(1, &[]).encode();
            socket
                .send_to(&solicit, SocketAddrV6::new(ip(SERVER_ADDRESS), 547, 0, 0))
                .unwrap();
        })
        .unwrap();
    // The last query after it: the worker has handled the Solicit once this is answered.
    let reply = ask(&net, 0x42, by_address(ip("2001:db8:1::7fff:fffe")));
    assert!(reply.client_data.is_none());

    let metrics = net.metrics();
    let queries = 6 + 2 * CLIENTS;
    assert_eq!(
        sample(
            &metrics,
            "xdhcp6_messages_received_total{type=\"leasequery\"}"
        ),
        queries
    );
    assert_eq!(
        sample(
            &metrics,
            "xdhcp6_messages_sent_total{type=\"leasequery_reply\"}"
        ),
        queries
    );
    assert_eq!(
        sample(
            &metrics,
            "xdhcp6_leasequery_replies_total{result=\"found\"}"
        ),
        3 + 2 * CLIENTS
    );
    assert_eq!(
        sample(
            &metrics,
            "xdhcp6_leasequery_replies_total{result=\"no_binding\"}"
        ),
        2
    );
    assert_eq!(
        sample(
            &metrics,
            "xdhcp6_leasequery_replies_total{result=\"not_allowed\"}"
        ),
        1
    );
    assert_eq!(
        sample(&metrics, "xdhcp6_dropped_total{reason=\"unicast\"}"),
        1
    );
    if datapath != Datapath::Udp {
        // The queries came through AF_XDP, not the kernel's slow path.
        net.assert_steered(datapath, queries);
    }
    net.stop_daemon();
}

#[test]
fn check_config_shows_the_requestors() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let show = |name: &str| {
        let path = examples.join(name).display().to_string();
        let output = common::run(DAEMON, &["check-config", &path]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let reference = show("reference.toml");
    assert!(
        reference.contains("  leasequery requestors: 2001:db8:ffff::/48\n"),
        "{reference}"
    );
    let split = show("split-a.toml");
    assert!(
        split.contains("  leasequery requestors: none (every Leasequery is answered NotAllowed)\n"),
        "{split}"
    );
}
