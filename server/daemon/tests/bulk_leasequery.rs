//! Bulk Leasequery (RFC 5460) against a running server, in network namespaces: ISC dhclient
//! through ISC dhcrelay takes an address and a prefix, and the lab's own relayed clients (a
//! CMTS that adds its Relay-ID and each modem's Remote-ID, sent from the relay's namespace)
//! take more; then a requestor opens TCP connections to port 547 and asks by Relay-ID,
//! link-address, Remote-ID and address, several queries on one connection, and every streamed
//! binding is checked against what was bound. A host outside `[leasequery] requestors` gets
//! NotAllowed and its connection closed; an idle connection is closed.
//!
//! No packaged software sends Bulk Leasequery on Debian, so the queries are written with the
//! engine's testing helpers.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{DAEMON, DaemonOptions, Datapath, fixtures, lease_value};
use xdhcp6_engine::Destination;
use xdhcp6_engine::proto::{MessageType, StatusCode};
use xdhcp6_engine::testing::bulk_leasequery::{
    BulkReplies, by_link_address, by_relay_id, by_remote_id,
};
use xdhcp6_engine::testing::leasequery::{LeasequeryReply, by_address};
use xdhcp6_engine::testing::{Client, Msg, Relay, ReplyView};

/// Interfaces (names are per namespace): server — relay upstream, relay downstream — client.
const SERVER_IF: &str = "blq6s";
const RELAY_UP_IF: &str = "blq6u";
const RELAY_DOWN_IF: &str = "blq6d";
const CLIENT_IF: &str = "blq6c";

const SERVER_ADDRESS: &str = "2001:db8:f::1";
/// The relay's upstream address: dhcrelay and the lab's CMTS send from it, and the requestor
/// asks from it (the one address `[leasequery] requestors` lists).
const RELAY_UP_ADDRESS: &str = "2001:db8:f::2";
/// Another address of the relay's namespace, not listed.
const OUTSIDER: &str = "2001:db8:f::6";
/// dhcrelay's address on the clients' link: the link-address of its Relay-forwards.
const DHCRELAY_LINK: &str = "2001:db8:2::1";
/// The link-address the lab's CMTS puts in its Relay-forwards (the same link, another port).
const CMTS_LINK: &str = "2001:db8:2::2";
const CMTS_DUID: &[u8] = &[0, 3, 0, 1, 0xc0, 0, 0, 0, 0, 1];
const REQUESTOR_DUID: &[u8] = &[0, 3, 0, 1, 2, 0, 0, 0, 0x4c, 0x52];
/// The lab's relayed clients: 1-4 on modem A, 5-6 on modem B; client 1 also takes a prefix.
const CMTS_CLIENTS: u64 = 6;

fn ip(text: &str) -> Ipv6Addr {
    text.parse().unwrap()
}

fn config() -> String {
    let mut text = fixtures::render(
        fixtures::TWO_LINKS,
        &[("SERVER_IF", SERVER_IF), ("SALT", "bulk-leasequery")],
    )
    .unwrap();
    text = text.replacen(
        "[[link]]",
        &format!(
            "[leasequery]\nrequestors = [\"{RELAY_UP_ADDRESS}/128\"]\nbulk-listen = \
             [\"[::]:547\"]\nbulk-idle-timeout = 2\n\n[[link]]"
        ),
        1,
    );
    text
}

/// A Remote-ID option body: enterprise 4491, then `id`.
fn remote_id(id: &[u8]) -> Vec<u8> {
    let mut body = 4491u32.to_be_bytes().to_vec();
    body.extend_from_slice(id);
    body
}

fn modem(n: u64) -> &'static [u8] {
    if n <= 4 { b"modem-a" } else { b"modem-b" }
}

/// Binds the lab's relayed clients from the relay's namespace: Solicit and Request inside
/// Relay-forwards with the CMTS's link-address, Relay-ID and the modem's Remote-ID, sent by
/// unicast to the server. Returns (DUID, address or prefix) per binding and the modem of each.
fn bind_cmts_clients(net: &common::Lab) -> Vec<(Vec<u8>, Ipv6Addr, &'static [u8])> {
    net.netns("rly")
        .run(|| {
            let socket = UdpSocket::bind(SocketAddrV6::new(ip(RELAY_UP_ADDRESS), 0, 0, 0)).unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(700)))
                .unwrap();
            let port = socket.local_addr().unwrap().port();
            let server = SocketAddrV6::new(ip(SERVER_ADDRESS), 547, 0, 0);
            let ask = |msg: &Msg, expect: MessageType| -> ReplyView {
                for _ in 0..3 {
                    socket.send_to(&msg.encode(), server).unwrap();
                    let mut buf = [0u8; 1500];
                    let deadline = Instant::now() + Duration::from_millis(700);
                    while Instant::now() < deadline {
                        let Ok((len, _)) = socket.recv_from(&mut buf) else {
                            break;
                        };
                        let reply = ReplyView::parse(
                            &buf[..len],
                            Destination::Relay {
                                to_source_port: true,
                            },
                        );
                        if reply.msg_type == expect {
                            return reply;
                        }
                    }
                }
                panic!("no {expect:?} through the relay");
            };
            let mut bound = Vec::new();
            for n in 1..=CMTS_CLIENTS {
                let relay = Relay::new(ip(CMTS_LINK))
                    .option(53, CMTS_DUID)
                    .option(37, &remote_id(modem(n)))
                    .source_port(port);
                let mut client = Client::new(100 + n).via(relay);
                client.xid = 0x1000 + n as u32;
                let advertise = ask(&client.solicit().ia_na(1, &[]), MessageType::Advertise);
                let server_id = advertise.server_id.clone().unwrap();
                let offered = advertise.ia_na[0].live_addrs();
                let reply = ask(
                    &client.request(&server_id).ia_na(1, &offered),
                    MessageType::Reply,
                );
                bound.push((client.duid.clone(), reply.ia_na(1).address(), modem(n)));
                if n == 1 {
                    let advertise = ask(&client.solicit().ia_pd(2, &[]), MessageType::Advertise);
                    let offered: Vec<(Ipv6Addr, u8)> = advertise
                        .ia_pd(2)
                        .prefixes
                        .iter()
                        .map(|prefix| (prefix.prefix, prefix.len))
                        .collect();
                    let reply = ask(
                        &client.request(&server_id).ia_pd(2, &offered),
                        MessageType::Reply,
                    );
                    bound.push((client.duid.clone(), reply.ia_pd(2).prefix().0, modem(n)));
                }
            }
            bound
        })
        .unwrap()
}

/// A TCP connection to the server's port 547 from `from`, in the relay's namespace.
fn connect(net: &common::Lab, from: &str) -> TcpStream {
    let from = ip(from);
    net.netns("rly")
        .run(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .unwrap();
            let stream = runtime.block_on(async {
                let socket = tokio::net::TcpSocket::new_v6().unwrap();
                socket.bind(SocketAddr::new(from.into(), 0)).unwrap();
                let server = SocketAddr::new(ip(SERVER_ADDRESS).into(), 547);
                socket.connect(server).await.unwrap().into_std().unwrap()
            });
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            stream
        })
        .unwrap()
}

/// Writes one query in its frame (RFC 5460 §5.1).
fn send(stream: &mut TcpStream, xid: u32, query: Msg) {
    let message = query.xid(xid).encode();
    let mut frame = (message.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(&message);
    stream.write_all(&frame).unwrap();
}

/// Reads one whole answer: frames up to the LEASEQUERY-DONE, or a REPLY with an error status.
fn answer(stream: &mut TcpStream) -> BulkReplies {
    let mut bytes = Vec::new();
    loop {
        let mut length = [0u8; 2];
        stream.read_exact(&mut length).expect("an answer");
        let mut message = vec![0; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut message).expect("a whole message");
        bytes.extend_from_slice(&length);
        bytes.extend_from_slice(&message);
        let parsed = LeasequeryReply::parse(&message);
        let refused = parsed.msg_type == MessageType::LeasequeryReply
            && parsed.status_code() != StatusCode::Success;
        if parsed.msg_type == MessageType::LeasequeryDone || refused {
            return BulkReplies::parse(&bytes);
        }
    }
}

/// Every (DUID, address or prefix) an answer streamed, checking its shape: the REPLY first
/// with the requestor's identifier, DATA messages, one DONE, one transaction-id throughout.
fn bindings(replies: &BulkReplies, xid: u32) -> BTreeSet<(Vec<u8>, Ipv6Addr)> {
    let types = replies.types();
    assert_eq!(types[0], MessageType::LeasequeryReply, "{types:?}");
    assert_eq!(
        types.last(),
        Some(&MessageType::LeasequeryDone),
        "{types:?}"
    );
    assert_eq!(replies.reply().client_id.as_deref(), Some(REQUESTOR_DUID));
    assert_eq!(replies.reply().status_code(), StatusCode::Success);
    let mut seen = BTreeSet::new();
    for message in &replies.messages {
        assert_eq!(message.xid, xid);
    }
    for data in replies.client_data() {
        let duid = data.client_id.clone().expect("Client Identifier");
        for held in data
            .addresses
            .iter()
            .map(|a| a.0)
            .chain(data.prefixes.iter().map(|p| p.0))
        {
            assert!(seen.insert((duid.clone(), held)), "{held} twice");
        }
    }
    seen
}

/// The DUID the control API shows for the lease `ctl leases FLAG VALUE` finds.
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

fn sample(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
}

#[test]
#[ignore = "needs root, network namespaces, dhclient and dhcrelay; run by cargo xtask test"]
fn bulk_leasequery_streams_what_relayed_clients_bound() {
    common::require_tools(&["dhclient", "dhcrelay"]);
    let mut net = common::lab("bulklq", &["srv", "rly", "cli"]);
    net.veth(("srv", SERVER_IF), ("rly", RELAY_UP_IF));
    net.veth(("rly", RELAY_DOWN_IF), ("cli", CLIENT_IF));
    net.address("srv", SERVER_IF, &format!("{SERVER_ADDRESS}/64"));
    net.address("rly", RELAY_UP_IF, &format!("{RELAY_UP_ADDRESS}/64"));
    net.address("rly", RELAY_UP_IF, &format!("{OUTSIDER}/64"));
    net.address("rly", RELAY_DOWN_IF, &format!("{DHCRELAY_LINK}/64"));
    let journal = net.path("leases.journal");
    let options = DaemonOptions {
        datapath: Datapath::Udp,
        journal: &journal,
        durability: "always",
        log: "daemon",
    };
    net.start_daemon("srv", &config(), &options);

    // The CMTS's clients, then dhclient (an address, then a prefix) through dhcrelay.
    let cmts = bind_cmts_clients(&net);
    let upper = format!("{SERVER_ADDRESS}%{RELAY_UP_IF}");
    net.start_dhcrelay("rly", RELAY_DOWN_IF, &[upper]);
    let na = net.dhclient("cli", CLIENT_IF, "na", &[]);
    let dhclient_address: Ipv6Addr = lease_value(&na, "iaaddr ")
        .unwrap_or_else(|| panic!("no address:\n{na}"))
        .parse()
        .unwrap();
    let pd = net.dhclient("cli", CLIENT_IF, "pd", &["-P"]);
    let prefix_text = lease_value(&pd, "iaprefix ").unwrap_or_else(|| panic!("no prefix:\n{pd}"));
    let dhclient_prefix: Ipv6Addr = prefix_text.split_once('/').unwrap().0.parse().unwrap();
    let socket = net.daemon_control_socket();
    let dhclient: BTreeSet<(Vec<u8>, Ipv6Addr)> = [
        (
            duid_by_control_api(&socket, "--address", &dhclient_address.to_string()),
            dhclient_address,
        ),
        (
            duid_by_control_api(&socket, "--prefix", &prefix_text),
            dhclient_prefix,
        ),
    ]
    .into_iter()
    .collect();
    let all_cmts: BTreeSet<(Vec<u8>, Ipv6Addr)> = cmts
        .iter()
        .map(|(duid, held, _)| (duid.clone(), *held))
        .collect();
    let on_modem = |wanted: &[u8]| -> BTreeSet<(Vec<u8>, Ipv6Addr)> {
        cmts.iter()
            .filter(|(_, _, modem)| *modem == wanted)
            .map(|(duid, held, _)| (duid.clone(), *held))
            .collect()
    };
    let requestor = Client::with_duid(REQUESTOR_DUID);

    // Four queries written back to back on one connection, answered in order.
    let mut stream = connect(&net, RELAY_UP_ADDRESS);
    send(
        &mut stream,
        0x51,
        by_relay_id(&requestor, CMTS_DUID, Ipv6Addr::UNSPECIFIED),
    );
    send(
        &mut stream,
        0x52,
        by_link_address(&requestor, ip(DHCRELAY_LINK)),
    );
    send(
        &mut stream,
        0x53,
        by_remote_id(&requestor, &remote_id(b"modem-b"), Ipv6Addr::UNSPECIFIED),
    );
    send(
        &mut stream,
        0x54,
        by_address(&requestor, dhclient_address, Ipv6Addr::UNSPECIFIED),
    );
    let by_relay = answer(&mut stream);
    assert_eq!(
        bindings(&by_relay, 0x51),
        all_cmts,
        "{:?}",
        by_relay.types()
    );
    // One binding per message: the REPLY, a DATA for each further one, the DONE.
    assert_eq!(by_relay.messages.len(), all_cmts.len() + 1);
    let by_link = answer(&mut stream);
    assert_eq!(bindings(&by_link, 0x52), dhclient);
    let by_remote = answer(&mut stream);
    assert_eq!(bindings(&by_remote, 0x53), on_modem(b"modem-b"));
    let by_addr = answer(&mut stream);
    assert_eq!(
        bindings(&by_addr, 0x54),
        dhclient
            .iter()
            .filter(|(_, held)| *held == dhclient_address)
            .cloned()
            .collect()
    );
    // The CMTS's own link-address, and modem A, on the same connection afterwards.
    send(
        &mut stream,
        0x55,
        by_link_address(&requestor, ip(CMTS_LINK)),
    );
    assert_eq!(bindings(&answer(&mut stream), 0x55), all_cmts);
    send(
        &mut stream,
        0x56,
        by_remote_id(&requestor, &remote_id(b"modem-a"), Ipv6Addr::UNSPECIFIED),
    );
    assert_eq!(bindings(&answer(&mut stream), 0x56), on_modem(b"modem-a"));

    // Idle for longer than bulk-idle-timeout (2 s): the server closes the connection.
    let mut rest = Vec::new();
    let closed = stream.read_to_end(&mut rest);
    assert!(matches!(closed, Ok(0)), "{closed:?} {rest:?}");

    // A host the list does not name: NotAllowed, then the connection is closed.
    let mut outsider = connect(&net, OUTSIDER);
    send(
        &mut outsider,
        0x60,
        by_relay_id(&requestor, CMTS_DUID, Ipv6Addr::UNSPECIFIED),
    );
    let refused = answer(&mut outsider);
    assert_eq!(refused.types(), vec![MessageType::LeasequeryReply]);
    assert_eq!(refused.reply().status_code(), StatusCode::NotAllowed);
    assert!(refused.client_data().is_empty());
    let mut rest = Vec::new();
    assert!(matches!(outsider.read_to_end(&mut rest), Ok(0)));

    let metrics = net.metrics();
    assert_eq!(
        sample(
            &metrics,
            "xdhcp6_bulk_leasequery_queries_total{result=\"found\"}"
        ),
        6
    );
    assert_eq!(
        sample(
            &metrics,
            "xdhcp6_bulk_leasequery_queries_total{result=\"not_allowed\"}"
        ),
        1
    );
    let streamed =
        2 * all_cmts.len() + 2 + on_modem(b"modem-b").len() + 1 + on_modem(b"modem-a").len();
    assert_eq!(
        sample(&metrics, "xdhcp6_bulk_leasequery_leases_streamed_total"),
        streamed as u64
    );
    assert_eq!(
        sample(&metrics, "xdhcp6_bulk_leasequery_connections_total"),
        2
    );
    // The last connection's task ends just after the peer sees it closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while sample(&net.metrics(), "xdhcp6_bulk_leasequery_connections") != 0
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        sample(&net.metrics(), "xdhcp6_bulk_leasequery_connections"),
        0
    );
    net.stop_daemon();
    net.stop("dhcrelay", "-TERM");
}
