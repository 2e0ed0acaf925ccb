//! Bulk Leasequery (RFC 5460): every binding of a relay, a link or a remote-id, streamed as
//! LEASEQUERY-REPLY, LEASEQUERY-DATA ... LEASEQUERY-DONE. Test names end in the section they
//! check.

use std::collections::BTreeSet;
use std::net::Ipv6Addr;

use xdhcp6_engine::engine::BulkResult;
use xdhcp6_engine::proto::{MessageType, StatusCode};
use xdhcp6_engine::testing::bulk_leasequery::{
    BulkReplies, by_link_address, by_relay_id, by_remote_id, split_frames,
};
use xdhcp6_engine::testing::leasequery::{by_address, by_client_id, leasequery, query_option};
use xdhcp6_engine::testing::{Client, Relay, Server, ip};

/// Two links: `cable` (relays from 2001:db8:ffff:1::/64) with addresses and delegated /56s,
/// and `bng` (relays from 2001:db8:ffff:2::/64) with addresses. Requestors from
/// 2001:db8:ffff::/48 may ask.
const CONFIG: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:07"
salt = "bulk-leasequery"
preferred-lifetime = "1h"
valid-lifetime = "2h"

[leasequery]
requestors = ["2001:db8:ffff::/48"]

[[link]]
name = "cable"
interfaces = ["eth1"]
relay-prefixes = ["2001:db8:ffff:1::/64"]

[[link.pool]]
prefix = "2001:db8:1::/64"

[[link.pd-pool]]
prefix = "2001:db8:100::/48"
delegated-length = 56

[[link]]
name = "bng"
relay-prefixes = ["2001:db8:ffff:2::/64"]

[[link.pool]]
prefix = "2001:db8:2::/64"
"#;

const CMTS_DUID: &[u8] = &[0, 3, 0, 1, 0xc0, 0, 0, 0, 0, 1];
const BNG_DUID: &[u8] = &[0, 3, 0, 1, 0xb0, 0, 0, 0, 0, 2];
const CMTS_LINK: &str = "2001:db8:ffff:1::1";
const BNG_LINK: &str = "2001:db8:ffff:2::1";

fn requestor() -> Client {
    Client::new(9000)
}

fn requestor_address() -> Ipv6Addr {
    ip("2001:db8:ffff:9::5")
}

/// The address the CMTS sends its Relay-forward messages from.
const CMTS_SOURCE: &str = "2001:db8:ffff:aa::1";

/// A Remote-ID option body: enterprise number 4491 (CableLabs), then `id`.
fn remote_id(id: &[u8]) -> Vec<u8> {
    let mut body = 4491u32.to_be_bytes().to_vec();
    body.extend_from_slice(id);
    body
}

/// A client behind the CMTS (Relay-ID `CMTS_DUID`), on the modem `modem`.
fn cable_client(n: u64, modem: &[u8]) -> Client {
    Client::new(n).via(
        Relay::new(ip(CMTS_LINK))
            .option(53, CMTS_DUID)
            .option(37, &remote_id(modem)),
    )
}

/// A client behind the BNG (Relay-ID `BNG_DUID`) with the line's Remote-ID `line`.
fn bng_client(n: u64, line: &[u8]) -> Client {
    Client::new(n).via(
        Relay::new(ip(BNG_LINK))
            .option(53, BNG_DUID)
            .option(37, &remote_id(line)),
    )
}

/// The bound leases: (DUID, address) per client.
struct Bound {
    cable: Vec<(Vec<u8>, Ipv6Addr)>,
    cable_prefixes: Vec<(Vec<u8>, Ipv6Addr)>,
    bng: Vec<(Vec<u8>, Ipv6Addr)>,
    direct: Vec<(Vec<u8>, Ipv6Addr)>,
}

/// Five cable clients on two modems (one also with a delegated prefix), three BNG clients,
/// two direct clients.
fn populated() -> (Server, Bound) {
    let mut server = Server::new(CONFIG);
    let mut bound = Bound {
        cable: Vec::new(),
        cable_prefixes: Vec::new(),
        bng: Vec::new(),
        direct: Vec::new(),
    };
    // The CMTS sends from its own upstream address (LQ Relay Data's peer-address).
    server.peer.address = Some(ip(CMTS_SOURCE));
    for n in 1..=5u64 {
        let modem: &[u8] = if n <= 3 { b"modem-a" } else { b"modem-b" };
        let client = cable_client(n, modem);
        let address = server.bind_address(&client, 1);
        bound.cable.push((client.duid.clone(), address));
        if n == 1 {
            let (prefix, _) = server.bind_prefix(&client, 2);
            bound.cable_prefixes.push((client.duid.clone(), prefix));
        }
    }
    server.peer.address = None;
    for n in 11..=13u64 {
        let client = bng_client(n, format!("line-{n}").as_bytes());
        let address = server.bind_address(&client, 1);
        bound.bng.push((client.duid.clone(), address));
    }
    for n in 21..=22u64 {
        let client = Client::new(n);
        let address = server.bind_address(&client, 1);
        bound.direct.push((client.duid.clone(), address));
    }
    (server, bound)
}

fn ask(server: &mut Server, query: &xdhcp6_engine::testing::Msg) -> BulkReplies {
    server
        .bulk_leasequery(query, requestor_address())
        .unwrap_or_else(|reason| panic!("the query was dropped: {reason:?}"))
}

/// Every (DUID, address or prefix) streamed, with checks that hold for any answer: the REPLY
/// first with both identifiers, DATA messages, then one DONE; one transaction-id; one binding
/// per Client Data.
fn streamed(server: &Server, replies: &BulkReplies, xid: u32) -> BTreeSet<(Vec<u8>, Ipv6Addr)> {
    let types = replies.types();
    assert_eq!(types[0], MessageType::LeasequeryReply, "{types:?}");
    assert_eq!(
        types.last(),
        Some(&MessageType::LeasequeryDone),
        "{types:?}"
    );
    assert!(
        types[1..types.len() - 1]
            .iter()
            .all(|t| *t == MessageType::LeasequeryData),
        "{types:?}"
    );
    let reply = replies.reply();
    assert_eq!(reply.server_id, Some(server.duid()));
    assert_eq!(reply.client_id, Some(requestor().duid));
    assert_eq!(reply.status_code(), StatusCode::Success);
    for message in &replies.messages {
        assert_eq!(message.xid, xid);
    }
    for message in &replies.messages[1..] {
        assert_eq!(message.server_id, None);
        assert_eq!(message.client_id, None);
    }
    let done = replies.messages.last().unwrap();
    assert_eq!(done.status_code(), StatusCode::Success);
    assert!(done.client_data.is_none());
    let mut seen = BTreeSet::new();
    for data in replies.client_data() {
        assert_eq!(data.addresses.len() + data.prefixes.len(), 1, "{data:?}");
        assert!(data.clt_time.is_some());
        let duid = data.client_id.clone().expect("a Client Identifier");
        let held = data
            .addresses
            .iter()
            .map(|a| a.0)
            .chain(data.prefixes.iter().map(|p| p.0))
            .next()
            .unwrap();
        assert!(seen.insert((duid, held)), "{held} streamed twice");
    }
    seen
}

fn set(items: &[&[(Vec<u8>, Ipv6Addr)]]) -> BTreeSet<(Vec<u8>, Ipv6Addr)> {
    items.iter().flat_map(|list| list.iter().cloned()).collect()
}

#[test]
fn query_by_relay_id_streams_every_binding_of_the_relay_5_3() {
    let (mut server, bound) = populated();
    let replies = ask(
        &mut server,
        &by_relay_id(&requestor(), CMTS_DUID, Ipv6Addr::UNSPECIFIED),
    );
    let got = streamed(&server, &replies, requestor().xid);
    assert_eq!(got, set(&[&bound.cable, &bound.cable_prefixes]));
    // The REPLY, one DATA per further binding (5 addresses and a prefix), the DONE.
    assert_eq!(replies.messages.len(), 1 + 5 + 1);
    // Each binding carries LQ Relay Data (RFC 5007 §4.1.2.4): the Relay-forward the CMTS sent,
    // with its Relay-ID, from the relay agent's datagram source.
    for data in replies.client_data() {
        let (peer, relayed) = data.relay_data.as_ref().expect("LQ Relay Data");
        assert_eq!(*peer, ip(CMTS_SOURCE), "{data:?}");
        assert_eq!(relayed[0], 12, "a Relay-forward: {data:?}");
        assert!(
            relayed.windows(CMTS_DUID.len()).any(|w| w == CMTS_DUID),
            "{data:?}"
        );
    }
    let replies = ask(
        &mut server,
        &by_relay_id(&requestor(), BNG_DUID, Ipv6Addr::UNSPECIFIED),
    );
    assert_eq!(
        streamed(&server, &replies, requestor().xid),
        set(&[&bound.bng])
    );
}

#[test]
fn query_by_relay_id_on_a_link_keeps_that_link_5_3() {
    let (mut server, bound) = populated();
    // The CMTS's clients are all on `cable`: asking on `bng` finds none.
    let on_bng = ask(
        &mut server,
        &by_relay_id(&requestor(), CMTS_DUID, ip(BNG_LINK)),
    );
    assert!(streamed(&server, &on_bng, requestor().xid).is_empty());
    assert_eq!(
        on_bng.types(),
        vec![MessageType::LeasequeryReply, MessageType::LeasequeryDone]
    );
    let on_cable = ask(
        &mut server,
        &by_relay_id(&requestor(), CMTS_DUID, ip(CMTS_LINK)),
    );
    assert_eq!(
        streamed(&server, &on_cable, requestor().xid),
        set(&[&bound.cable, &bound.cable_prefixes])
    );
    // A link-address no link holds: NotConfigured.
    let unknown = ask(
        &mut server,
        &by_relay_id(&requestor(), CMTS_DUID, ip("2001:db8:eeee::1")),
    );
    assert_eq!(unknown.types(), vec![MessageType::LeasequeryReply]);
    assert_eq!(unknown.reply().status_code(), StatusCode::NotConfigured);
}

#[test]
fn query_by_link_address_streams_the_clients_of_that_relay_link_5_3() {
    let (mut server, bound) = populated();
    let replies = ask(&mut server, &by_link_address(&requestor(), ip(BNG_LINK)));
    assert_eq!(
        streamed(&server, &replies, requestor().xid),
        set(&[&bound.bng])
    );
    let replies = ask(&mut server, &by_link_address(&requestor(), ip(CMTS_LINK)));
    assert_eq!(
        streamed(&server, &replies, requestor().xid),
        set(&[&bound.cable, &bound.cable_prefixes])
    );
    // A relay link nobody came through: nothing, and a complete answer.
    let replies = ask(
        &mut server,
        &by_link_address(&requestor(), ip("2001:db8:ffff:1::99")),
    );
    assert!(streamed(&server, &replies, requestor().xid).is_empty());
    // 0::0 names no link.
    let replies = ask(
        &mut server,
        &by_link_address(&requestor(), Ipv6Addr::UNSPECIFIED),
    );
    assert_eq!(replies.types(), vec![MessageType::LeasequeryReply]);
    assert_eq!(replies.reply().status_code(), StatusCode::MalformedQuery);
}

#[test]
fn query_by_remote_id_streams_the_clients_of_one_modem_5_3() {
    let (mut server, bound) = populated();
    let replies = ask(
        &mut server,
        &by_remote_id(&requestor(), &remote_id(b"modem-b"), Ipv6Addr::UNSPECIFIED),
    );
    assert_eq!(
        streamed(&server, &replies, requestor().xid),
        set(&[&bound.cable[3..5]])
    );
    let replies = ask(
        &mut server,
        &by_remote_id(&requestor(), &remote_id(b"modem-a"), Ipv6Addr::UNSPECIFIED),
    );
    assert_eq!(
        streamed(&server, &replies, requestor().xid),
        set(&[&bound.cable[0..3], &bound.cable_prefixes])
    );
    let replies = ask(
        &mut server,
        &by_remote_id(&requestor(), &remote_id(b"line-12"), ip(BNG_LINK)),
    );
    assert_eq!(
        streamed(&server, &replies, requestor().xid),
        set(&[&bound.bng[1..2]])
    );
    // A Remote-ID without its remote-id: MalformedQuery.
    let replies = ask(
        &mut server,
        &by_remote_id(&requestor(), &4491u32.to_be_bytes(), Ipv6Addr::UNSPECIFIED),
    );
    assert_eq!(replies.reply().status_code(), StatusCode::MalformedQuery);
}

#[test]
fn rfc_5007_queries_are_answered_over_tcp_then_done_5_3() {
    let (mut server, bound) = populated();
    let (duid, address) = bound.direct[0].clone();
    let replies = ask(
        &mut server,
        &by_address(&requestor(), address, Ipv6Addr::UNSPECIFIED),
    );
    assert_eq!(
        streamed(&server, &replies, requestor().xid),
        set(&[&bound.direct[0..1]])
    );
    assert_eq!(replies.messages.len(), 2);
    // By client identifier: the client's address and prefix in one Client Data.
    let (duid_cable, address_cable) = bound.cable[0].clone();
    let replies = ask(
        &mut server,
        &by_client_id(&requestor(), &duid_cable, Ipv6Addr::UNSPECIFIED),
    );
    assert_eq!(
        replies.types(),
        vec![MessageType::LeasequeryReply, MessageType::LeasequeryDone]
    );
    let data = replies.reply().client_data.clone().expect("Client Data");
    assert_eq!(data.client_id, Some(duid_cable));
    assert_eq!(data.addresses[0].0, address_cable);
    assert_eq!(data.prefixes[0].0, bound.cable_prefixes[0].1);
    // Nobody holds it: a REPLY without Client Data, then the DONE.
    let replies = ask(
        &mut server,
        &by_address(&requestor(), ip("2001:db8:1::dead"), Ipv6Addr::UNSPECIFIED),
    );
    assert_eq!(
        replies.types(),
        vec![MessageType::LeasequeryReply, MessageType::LeasequeryDone]
    );
    assert!(replies.reply().client_data.is_none());
    assert_ne!(duid, Vec::<u8>::new());
}

#[test]
fn a_requestor_not_listed_gets_not_allowed_and_nothing_else_7_1() {
    let (mut server, _) = populated();
    for query in [
        by_relay_id(&requestor(), CMTS_DUID, Ipv6Addr::UNSPECIFIED),
        by_link_address(&requestor(), ip(CMTS_LINK)),
        by_address(&requestor(), ip("2001:db8:1::1"), Ipv6Addr::UNSPECIFIED),
    ] {
        let replies = server
            .bulk_leasequery(&query, ip("2001:db8:eeee::5"))
            .unwrap();
        assert_eq!(replies.types(), vec![MessageType::LeasequeryReply]);
        assert_eq!(replies.reply().status_code(), StatusCode::NotAllowed);
        assert!(replies.reply().client_data.is_none());
    }
}

#[test]
fn unknown_and_malformed_queries_get_their_status_5_5() {
    let (mut server, _) = populated();
    let unknown = leasequery(&requestor(), &query_option(9, Ipv6Addr::UNSPECIFIED, &[]));
    let replies = ask(&mut server, &unknown);
    assert_eq!(replies.types(), vec![MessageType::LeasequeryReply]);
    assert_eq!(replies.reply().status_code(), StatusCode::UnknownQueryType);
    // QUERY_BY_RELAY_ID without its Relay-ID.
    let no_relay_id = leasequery(&requestor(), &query_option(3, Ipv6Addr::UNSPECIFIED, &[]));
    assert_eq!(
        ask(&mut server, &no_relay_id).reply().status_code(),
        StatusCode::MalformedQuery
    );
    // No query option at all.
    let bare = requestor().message(MessageType::Leasequery);
    assert_eq!(
        ask(&mut server, &bare).reply().status_code(),
        StatusCode::MalformedQuery
    );
    // Not a LEASEQUERY, or without the requestor's Client Identifier: no answer.
    assert!(
        server
            .bulk_leasequery(&requestor().solicit(), requestor_address())
            .is_err()
    );
    assert!(
        server
            .bulk_leasequery(
                &by_link_address(&requestor(), ip(CMTS_LINK)).without_client_id(),
                requestor_address()
            )
            .is_err()
    );
    assert!(
        server
            .engine
            .bulk_leasequery(&[0x0e, 0, 0], requestor_address(), server.now)
            .is_err()
    );
}

#[test]
fn released_and_expired_bindings_are_not_streamed_5_3() {
    let (mut server, bound) = populated();
    let client = bng_client(11, b"line-11");
    server.send(&client.release(&server.duid()).ia_na(1, &[bound.bng[0].1]));
    let replies = ask(
        &mut server,
        &by_relay_id(&requestor(), BNG_DUID, Ipv6Addr::UNSPECIFIED),
    );
    assert_eq!(
        streamed(&server, &replies, requestor().xid),
        set(&[&bound.bng[1..]])
    );
    // Past every valid lifetime: nothing, before the timer even ran.
    server.advance(7201);
    let replies = ask(
        &mut server,
        &by_relay_id(&requestor(), BNG_DUID, Ipv6Addr::UNSPECIFIED),
    );
    assert!(streamed(&server, &replies, requestor().xid).is_empty());
}

#[test]
fn the_stream_is_the_same_whatever_the_chunk_size_5_1() {
    let (mut server, _) = populated();
    let query = by_link_address(&requestor(), ip(CMTS_LINK));
    let whole = server
        .bulk_leasequery_bytes(&query, requestor_address(), 1 << 20)
        .unwrap();
    let byte_at_a_time = server
        .bulk_leasequery_bytes(&query, requestor_address(), 1)
        .unwrap();
    assert_eq!(whole, byte_at_a_time);
    // Every frame holds one whole message.
    assert_eq!(split_frames(&whole).len(), 7);
}

#[test]
fn a_terminated_query_ends_with_query_terminated_5_5() {
    let (server, _) = populated();
    let engine = &server.engine;
    let query = by_relay_id(&requestor(), CMTS_DUID, Ipv6Addr::UNSPECIFIED).encode();
    let mut answer = engine
        .bulk_leasequery(&query, requestor_address(), server.now)
        .unwrap();
    let mut out = Vec::new();
    // One message is enough to pass a limit of one byte: the REPLY.
    assert!(!answer.write_more(engine, server.now, &mut out, 1));
    answer.terminate(engine, "server stopping", &mut out);
    assert!(answer.is_finished());
    assert_eq!(answer.result(), BulkResult::Terminated);
    assert_eq!(answer.streamed(), 1);
    let replies = BulkReplies::parse(&out);
    assert_eq!(
        replies.types(),
        vec![MessageType::LeasequeryReply, MessageType::LeasequeryDone]
    );
    assert_eq!(
        replies.messages[1].status_code(),
        StatusCode::QueryTerminated
    );
    // Terminated before anything was written: the REPLY carries the status.
    let mut answer = engine
        .bulk_leasequery(&query, requestor_address(), server.now)
        .unwrap();
    let mut out = Vec::new();
    answer.terminate(engine, "query limit", &mut out);
    let replies = BulkReplies::parse(&out);
    assert_eq!(replies.types(), vec![MessageType::LeasequeryReply]);
    assert_eq!(replies.reply().status_code(), StatusCode::QueryTerminated);
}

#[test]
fn results_are_reported_for_the_counters() {
    let (server, _) = populated();
    let engine = &server.engine;
    let result = |query: xdhcp6_engine::testing::Msg, from: &str| {
        let mut answer = engine
            .bulk_leasequery(&query.encode(), ip(from), server.now)
            .unwrap();
        let mut out = Vec::new();
        while !answer.write_more(engine, server.now, &mut out, 4096) {}
        (answer.result(), answer.streamed())
    };
    let here = "2001:db8:ffff:9::5";
    assert_eq!(
        result(
            by_relay_id(&requestor(), CMTS_DUID, Ipv6Addr::UNSPECIFIED),
            here
        ),
        (BulkResult::Found, 6)
    );
    assert_eq!(
        result(
            by_relay_id(&requestor(), b"\x00\x03nobody", Ipv6Addr::UNSPECIFIED),
            here
        ),
        (BulkResult::NoBinding, 0)
    );
    assert_eq!(
        result(
            by_link_address(&requestor(), ip(CMTS_LINK)),
            "2001:db8:eeee::5"
        ),
        (BulkResult::NotAllowed, 0)
    );
    assert_eq!(
        result(
            leasequery(&requestor(), &query_option(9, Ipv6Addr::UNSPECIFIED, &[])),
            here
        ),
        (BulkResult::UnknownQueryType, 0)
    );
}

#[test]
fn bulk_keys_have_defaults_and_errors_name_the_field() {
    use xdhcp6_engine::config::{BulkLeasequerySettings, Config};
    let config = xdhcp6_engine::testing::config(CONFIG);
    assert_eq!(config.leasequery.bulk, BulkLeasequerySettings::default());
    assert!(config.leasequery.bulk.listen.is_empty());
    assert_eq!(config.leasequery.bulk.max_connections, 10);
    assert_eq!(config.leasequery.bulk.idle_timeout, 300);
    assert_eq!(config.leasequery.bulk.max_queries, 1000);
    let with = |keys: &str| {
        CONFIG.replace(
            "requestors = [\"2001:db8:ffff::/48\"]",
            &format!("requestors = [\"2001:db8:ffff::/48\"]\n{keys}"),
        )
    };
    let set = with(
        "bulk-listen = [\"[::]:547\", \"[2001:db8::1]:5470\"]\nbulk-max-connections = 4\n\
         bulk-idle-timeout = \"2m\"\nbulk-max-queries = 7",
    );
    let config = Config::from_toml_str(&set, "server.toml").unwrap();
    let bulk = &config.leasequery.bulk;
    assert_eq!(
        bulk.listen,
        vec![
            "[::]:547".parse().unwrap(),
            "[2001:db8::1]:5470".parse().unwrap()
        ]
    );
    assert_eq!(
        (bulk.max_connections, bulk.idle_timeout, bulk.max_queries),
        (4, 120, 7)
    );
    for (keys, expected) in [
        (
            "bulk-listen = [\"[::]:547\", \"nowhere\"]",
            "server.toml: leasequery.bulk-listen[1]: \"nowhere\" is not an address and port",
        ),
        (
            "bulk-listen = [\"[::]:547\", \"[::]:547\"]",
            "server.toml: leasequery.bulk-listen[1]: [::]:547 is listed twice",
        ),
        (
            "bulk-max-connections = 0",
            "server.toml: leasequery.bulk-max-connections: must be at least 1",
        ),
        (
            "bulk-idle-timeout = 0",
            "server.toml: leasequery.bulk-idle-timeout: must be at least 1",
        ),
    ] {
        let error = Config::from_toml_str(&with(keys), "server.toml")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with(expected), "{error}");
    }
}
