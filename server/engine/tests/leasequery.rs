//! Leasequery (RFC 5007): a requestor asks who holds an address, or what a client holds.
//! Test names end in the section they check.

use std::net::Ipv6Addr;

use xdhcp6_engine::LeasequeryResult;
use xdhcp6_engine::proto::{MessageType, OptionCode, StatusCode};
use xdhcp6_engine::testing::leasequery::{
    LeasequeryReply, by_address, by_client_id, leasequery, query_option,
};
use xdhcp6_engine::testing::{Client, REPLY_BUF, Relay, Server, ip};
use xdhcp6_engine::{Arrival, Context, Destination, DropReason, Outcome, Peer};

/// Two links: `cable` (direct on eth1, relays from 2001:db8:ffff:1::/64) with addresses and
/// delegated /56s, and `bng` (relays from 2001:db8:ffff:2::/64) with addresses. Requestors
/// from 2001:db8:ffff::/48 may ask.
const CONFIG: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:07"
salt = "leasequery"
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

const PREFERRED: u32 = 3600;
const VALID: u32 = 7200;

fn requestor() -> Client {
    Client::new(9000)
}

/// The requestor's address, inside `[leasequery] requestors`.
fn requestor_address() -> Ipv6Addr {
    ip("2001:db8:ffff:9::5")
}

fn any_link() -> Ipv6Addr {
    Ipv6Addr::UNSPECIFIED
}

fn ask(server: &mut Server, query: &xdhcp6_engine::testing::Msg) -> LeasequeryReply {
    match server.leasequery(query, requestor_address()) {
        Ok(reply) => reply,
        Err(reason) => panic!("the Leasequery was dropped: {reason:?}"),
    }
}

fn bng_client(n: u64) -> Client {
    Client::new(n).via(Relay::new(ip("2001:db8:ffff:2::1")))
}

fn count(server: &Server, result: LeasequeryResult) -> u64 {
    server
        .engine
        .leasequery_results()
        .find(|(own, _)| *own == result)
        .map_or(0, |(_, count)| count)
}

// ---- query by address (RFC 5007 §4.1.2.1, §4.3.3) ----

#[test]
fn query_by_address_returns_the_client_data_of_its_holder_4_1_2_2() {
    let mut server = Server::new(CONFIG);
    let client = Client::new(1);
    let address = server.bind_address(&client, 7);
    let reply = ask(&mut server, &by_address(&requestor(), address, any_link()));
    assert_eq!(reply.msg_type, MessageType::LeasequeryReply);
    assert_eq!(reply.xid, requestor().xid);
    assert_eq!(reply.server_id, Some(server.duid()));
    assert_eq!(reply.client_id, Some(requestor().duid));
    assert_eq!(reply.status_code(), StatusCode::Success);
    let data = reply.client_data.expect("Client Data");
    assert_eq!(data.client_id, Some(client.duid.clone()));
    assert_eq!(data.addresses, vec![(address, PREFERRED, VALID)]);
    assert!(data.prefixes.is_empty());
    assert_eq!(data.clt_time, Some(0));
    // Client-ID, IAADDR and CLT Time at least (RFC 5007 §4.1.2.2); no LQ Relay Data for a
    // client that talked to the server directly (§4.1.2.4).
    assert_eq!(
        data.codes,
        vec![
            u16::from(OptionCode::ClientId),
            u16::from(OptionCode::IaAddr),
            u16::from(OptionCode::CltTime)
        ]
    );
    assert!(reply.client_links.is_empty());
    assert_eq!(count(&server, LeasequeryResult::Found), 1);
}

#[test]
fn an_address_inside_a_delegated_prefix_finds_the_prefix_4_3_3() {
    let mut server = Server::new(CONFIG);
    let client = Client::new(2);
    let (prefix, len) = server.bind_prefix(&client, 3);
    assert_eq!(len, 56);
    // An address of a host behind the delegating router, deep inside the /56.
    let inside = Ipv6Addr::from(u128::from(prefix) | (0x42 << 64) | 0x1234);
    let reply = ask(&mut server, &by_address(&requestor(), inside, any_link()));
    let data = reply.client_data.expect("Client Data");
    assert_eq!(data.client_id, Some(client.duid.clone()));
    assert_eq!(data.prefixes, vec![(prefix, 56, PREFERRED, VALID)]);
    assert!(data.addresses.is_empty());
    // The prefix's own first address finds it too.
    let reply = ask(&mut server, &by_address(&requestor(), prefix, any_link()));
    assert_eq!(reply.client_data.expect("Client Data").prefixes.len(), 1);
}

#[test]
fn an_unknown_address_gets_a_reply_without_client_data_4_3_3() {
    let mut server = Server::new(CONFIG);
    server.bind_address(&Client::new(3), 1);
    for address in [
        ip("2001:db8:1::dead"),
        ip("2001:db8:100:ff00::1"),
        ip("2001:db8:2::1"),
    ] {
        let reply = ask(&mut server, &by_address(&requestor(), address, any_link()));
        assert_eq!(reply.msg_type, MessageType::LeasequeryReply);
        assert!(reply.client_data.is_none(), "{address}");
        assert!(reply.client_links.is_empty());
        assert_eq!(reply.status_code(), StatusCode::Success);
    }
    assert_eq!(count(&server, LeasequeryResult::NoBinding), 3);
}

#[test]
fn an_address_outside_every_configured_prefix_is_not_configured_4_1_3() {
    let mut server = Server::new(CONFIG);
    server.bind_address(&Client::new(3), 1);
    for (address, link) in [
        (ip("2001:db8:9999::1"), any_link()),
        (ip("2001:db8:ffff:1::1"), any_link()),
        // On `bng`, cable's pool prefixes are not configured.
        (ip("2001:db8:1::dead"), ip("2001:db8:ffff:2::1")),
        (ip("2001:db8:100::1"), ip("2001:db8:ffff:2::1")),
    ] {
        let reply = ask(&mut server, &by_address(&requestor(), address, link));
        assert_eq!(reply.status_code(), StatusCode::NotConfigured, "{address}");
        assert!(reply.client_data.is_none());
    }
    assert_eq!(count(&server, LeasequeryResult::NotConfigured), 4);
}

#[test]
fn a_released_or_expired_address_is_no_longer_reported_4_3_3() {
    let mut server = Server::new(CONFIG);
    let client = Client::new(4);
    let address = server.bind_address(&client, 1);
    server.advance(VALID);
    let reply = ask(&mut server, &by_address(&requestor(), address, any_link()));
    assert!(
        reply.client_data.is_none(),
        "an expired lease is no binding"
    );

    let other = Client::new(5);
    let address = server.bind_address(&other, 1);
    let release = other.release(&server.duid()).ia_na(1, &[address]);
    server.send(&release);
    let reply = ask(&mut server, &by_address(&requestor(), address, any_link()));
    assert!(
        reply.client_data.is_none(),
        "a released lease is no binding"
    );
}

#[test]
fn query_by_address_on_another_link_finds_nothing_4_3_3() {
    let mut server = Server::new(CONFIG);
    let address = server.bind_address(&Client::new(6), 1);
    // The address is on `cable`; asking on `bng` (its relay prefix) finds nothing there.
    let reply = ask(
        &mut server,
        &by_address(&requestor(), address, ip("2001:db8:ffff:2::1")),
    );
    assert!(reply.client_data.is_none());
    assert_eq!(reply.status_code(), StatusCode::NotConfigured);
    // On `cable`, by its relay prefix or its on-link prefix, it is found.
    for link in [ip("2001:db8:ffff:1::1"), ip("2001:db8:1::1")] {
        let reply = ask(&mut server, &by_address(&requestor(), address, link));
        assert!(reply.client_data.is_some(), "link-address {link}");
    }
}

// ---- query by client identifier (RFC 5007 §4.1.2.1, §4.1.2.5) ----

#[test]
fn query_by_client_id_reports_every_ia_of_the_client_4_1_2_2() {
    let mut server = Server::new(CONFIG);
    let client = Client::new(10);
    let first = server.bind_address(&client, 1);
    let second = server.bind_address(&client, 2);
    let (prefix, len) = server.bind_prefix(&client, 3);
    // Another client's lease is not reported.
    server.bind_address(&Client::new(11), 1);
    let reply = ask(
        &mut server,
        &by_client_id(&requestor(), &client.duid, any_link()),
    );
    let data = reply.client_data.expect("Client Data");
    assert_eq!(data.client_id, Some(client.duid.clone()));
    let mut addresses: Vec<Ipv6Addr> = data.addresses.iter().map(|a| a.0).collect();
    addresses.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(addresses, expected);
    assert_eq!(data.prefixes, vec![(prefix, len, PREFERRED, VALID)]);
    assert_eq!(data.clt_time, Some(0));
    assert!(reply.client_links.is_empty());
}

#[test]
fn a_client_on_several_links_is_answered_with_its_links_4_1_2_5() {
    let mut server = Server::new(CONFIG);
    let duid = Client::new(20).duid;
    let on_cable = Client::with_duid(&duid);
    let on_bng = Client::with_duid(&duid).via(Relay::new(ip("2001:db8:ffff:2::1")));
    let cable_address = server.bind_address(&on_cable, 1);
    let bng_address = server.bind_address(&on_bng, 1);
    assert!(cable_address.segments()[2] == 1 && bng_address.segments()[2] == 2);

    // No link named: the links, and no Client Data.
    let reply = ask(&mut server, &by_client_id(&requestor(), &duid, any_link()));
    assert!(reply.client_data.is_none());
    assert_eq!(reply.client_links.len(), 2);
    assert_eq!(count(&server, LeasequeryResult::ClientLink), 1);

    // Each listed link-address, asked again, gives that link's binding alone.
    let mut found = Vec::new();
    for link in reply.client_links.clone() {
        let reply = ask(&mut server, &by_client_id(&requestor(), &duid, link));
        let data = reply.client_data.expect("Client Data on one link");
        assert_eq!(data.addresses.len(), 1, "link-address {link}");
        found.push(data.addresses[0].0);
    }
    found.sort();
    let mut expected = vec![cable_address, bng_address];
    expected.sort();
    assert_eq!(found, expected);

    // By address, the client is on one link: Client Data, no link list.
    let reply = ask(
        &mut server,
        &by_address(&requestor(), bng_address, any_link()),
    );
    assert_eq!(
        reply.client_data.expect("Client Data").addresses[0].0,
        bng_address
    );
}

#[test]
fn a_client_without_bindings_gets_a_reply_without_client_data_4_3_3() {
    let mut server = Server::new(CONFIG);
    server.bind_address(&Client::new(30), 1);
    let reply = ask(
        &mut server,
        &by_client_id(&requestor(), &Client::new(31).duid, any_link()),
    );
    assert!(reply.client_data.is_none());
    assert!(reply.client_links.is_empty());
}

// ---- lifetimes and CLT Time (RFC 5007 §4.1.2.2, §4.1.2.3) ----

#[test]
fn remaining_lifetimes_decrease_with_time_4_1_2_2() {
    let mut server = Server::new(CONFIG);
    let client = Client::new(40);
    let address = server.bind_address(&client, 1);
    server.advance(1000);
    let reply = ask(&mut server, &by_address(&requestor(), address, any_link()));
    let data = reply.client_data.expect("Client Data");
    assert_eq!(
        data.addresses,
        vec![(address, PREFERRED - 1000, VALID - 1000)]
    );
    assert_eq!(data.clt_time, Some(1000));

    // Past the preferred lifetime: deprecated (0), still valid.
    server.advance(3000);
    let reply = ask(
        &mut server,
        &by_client_id(&requestor(), &client.duid, any_link()),
    );
    let data = reply.client_data.expect("Client Data");
    assert_eq!(data.addresses, vec![(address, 0, VALID - 4000)]);
    assert_eq!(data.clt_time, Some(4000));

    // A Renew is a transaction: full lifetimes again, CLT Time 0.
    let renew = client.renew(&server.duid()).ia_na(1, &[address]);
    server.send(&renew);
    server.advance(5);
    let reply = ask(&mut server, &by_address(&requestor(), address, any_link()));
    let data = reply.client_data.expect("Client Data");
    assert_eq!(data.addresses, vec![(address, PREFERRED - 5, VALID - 5)]);
    assert_eq!(data.clt_time, Some(5));
}

// ---- refusals and bad queries (RFC 5007 §4.3.3, §5) ----

#[test]
fn a_requestor_outside_the_list_is_not_allowed_5() {
    let mut server = Server::new(CONFIG);
    let address = server.bind_address(&Client::new(50), 1);
    let query = by_address(&requestor(), address, any_link());
    for source in [ip("2001:db8:fffe::5"), ip("fe80::5"), ip("2001:db8:1::77")] {
        let reply = server.leasequery(&query, source).expect("a reply");
        assert_eq!(reply.status_code(), StatusCode::NotAllowed, "{source}");
        assert!(reply.client_data.is_none());
    }
    assert_eq!(count(&server, LeasequeryResult::NotAllowed), 3);
}

#[test]
fn without_a_requestors_list_nobody_is_allowed_5() {
    let config = CONFIG.replace("[leasequery]\nrequestors = [\"2001:db8:ffff::/48\"]\n", "");
    assert_ne!(config, CONFIG);
    let mut server = Server::new(&config);
    let address = server.bind_address(&Client::new(51), 1);
    let reply = ask(&mut server, &by_address(&requestor(), address, any_link()));
    assert_eq!(reply.status_code(), StatusCode::NotAllowed);
    assert!(reply.client_data.is_none());
}

#[test]
fn a_link_address_of_no_link_is_not_configured_4_3_3() {
    let mut server = Server::new(CONFIG);
    let address = server.bind_address(&Client::new(60), 1);
    for query in [
        by_address(&requestor(), address, ip("2001:db8:7777::1")),
        by_client_id(&requestor(), &Client::new(60).duid, ip("2001:db8:7777::1")),
    ] {
        let reply = ask(&mut server, &query);
        assert_eq!(reply.status_code(), StatusCode::NotConfigured);
        assert!(reply.client_data.is_none());
    }
}

#[test]
fn a_query_missing_its_parts_is_malformed_4_3_3() {
    let mut server = Server::new(CONFIG);
    server.bind_address(&Client::new(70), 1);
    let requestor = requestor();
    let queries = [
        // No OPTION_LQ_QUERY.
        requestor.message(MessageType::Leasequery),
        // Shorter than its fixed 17 bytes.
        leasequery(&requestor, &[1, 0, 0]),
        // By address without an IA Address option.
        leasequery(&requestor, &query_option(1, any_link(), &[])),
        // By client identifier without a Client Identifier option.
        leasequery(&requestor, &query_option(2, any_link(), &[(5, &[0; 24])])),
        // Two query options.
        by_address(&requestor, ip("2001:db8:1::1"), any_link())
            .option(44, &query_option(1, any_link(), &[])),
    ];
    for query in &queries {
        let reply = ask(&mut server, query);
        assert_eq!(reply.status_code(), StatusCode::MalformedQuery, "{query:?}");
        assert!(reply.client_data.is_none());
    }
    assert_eq!(count(&server, LeasequeryResult::MalformedQuery), 5);
}

#[test]
fn a_query_type_the_server_does_not_answer_is_unknown_4_3_3() {
    let mut server = Server::new(CONFIG);
    // QUERY_BY_RELAY_ID, QUERY_BY_LINK_ADDRESS, QUERY_BY_REMOTE_ID (RFC 5460: Bulk
    // Leasequery over TCP), and an unassigned type.
    for query_type in [3, 4, 5, 200] {
        let query = leasequery(&requestor(), &query_option(query_type, any_link(), &[]));
        let reply = ask(&mut server, &query);
        assert_eq!(
            reply.status_code(),
            StatusCode::UnknownQueryType,
            "type {query_type}"
        );
    }
}

#[test]
fn a_leasequery_without_client_id_or_for_another_server_is_discarded_4_2_1() {
    let mut server = Server::new(CONFIG);
    let address = server.bind_address(&Client::new(80), 1);
    let query = by_address(&requestor(), address, any_link());
    let reason = server
        .leasequery(&query.clone().without_client_id(), requestor_address())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(reason, DropReason::MissingClientId);
    let reason = server
        .leasequery(
            &query.clone().server_id(&Client::new(81).duid),
            requestor_address(),
        )
        .map(|_| ())
        .unwrap_err();
    assert_eq!(reason, DropReason::WrongServerId);
    let reason = server
        .leasequery(
            &query.clone().option(1, &requestor().duid),
            requestor_address(),
        )
        .map(|_| ())
        .unwrap_err();
    assert_eq!(reason, DropReason::DuplicateId);
    // Our own Server Identifier is fine.
    let reply = server
        .leasequery(&query.server_id(&server.duid()), requestor_address())
        .expect("a reply");
    assert!(reply.client_data.is_some());
}

// ---- how it arrives and where the reply goes (RFC 5007 §4.3.2, §4.3.5) ----

#[test]
fn a_unicast_leasequery_is_answered_while_a_unicast_solicit_is_dropped_4_3_5() {
    let mut server = Server::new(CONFIG);
    let client = Client::new(90);
    let address = server.bind_address(&client, 1);
    let cx = Context {
        link: Some(server.link.expect("a link")),
        arrival: Arrival::Unicast,
        now: server.now,
    };
    let peer = Peer {
        address: Some(requestor_address()),
        mac: None,
    };
    let mut buf = vec![0; REPLY_BUF];
    let query = by_address(&requestor(), address, any_link()).encode();
    let mut events = Vec::new();
    let outcome = server
        .engine
        .handle_from(&query, &cx, peer, &mut buf, &mut events);
    let Outcome::Reply {
        len,
        to,
        received,
        sent,
        unknown_link,
        delay_ms,
    } = outcome
    else {
        panic!("a unicast Leasequery was dropped: {outcome:?}");
    };
    assert_eq!(delay_ms, 0, "a LEASEQUERY-REPLY is never held");
    // Back to the requestor's own address and port.
    assert_eq!(to, Destination::Requestor);
    assert_eq!(received, MessageType::Leasequery);
    assert_eq!(sent, MessageType::LeasequeryReply);
    assert!(!unknown_link);
    assert!(LeasequeryReply::parse(&buf[..len]).client_data.is_some());
    assert!(events.is_empty(), "a Leasequery changes no lease");

    // RFC 9915 §16: a client's Solicit sent by unicast is still dropped.
    let solicit = client.solicit().ia_na(2, &[]).encode();
    let outcome = server
        .engine
        .handle_from(&solicit, &cx, peer, &mut buf, &mut events);
    assert_eq!(
        outcome,
        Outcome::Drop {
            reason: DropReason::Unicast,
            received: MessageType::Solicit
        }
    );
}

#[test]
fn a_relayed_leasequery_is_answered_through_the_relay_4_3_2() {
    let mut server = Server::new(CONFIG);
    let address = server.bind_address(&bng_client(100), 1);
    // The requestor sits behind a relay; its own address is the relay's peer-address.
    let relayed_requestor = requestor().via(
        Relay::new(ip("2001:db8:ffff:2::1"))
            .peer(requestor_address())
            .interface_id(b"uplink"),
    );
    let query = by_address(&relayed_requestor, address, any_link());
    // The relay's own source is outside the list: the requestor's address decides.
    let reply = server
        .leasequery(&query, ip("2001:db8:ffff:2::1"))
        .expect("a reply");
    assert_eq!(reply.relays, 1);
    assert_eq!(reply.msg_type, MessageType::LeasequeryReply);
    let data = reply.client_data.expect("Client Data");
    assert_eq!(data.addresses[0].0, address);

    let outsider = requestor().via(Relay::new(ip("2001:db8:ffff:2::1")).peer(ip("2001:db8:5::5")));
    let reply = server
        .leasequery(
            &by_address(&outsider, address, any_link()),
            requestor_address(),
        )
        .expect("a reply");
    assert_eq!(reply.status_code(), StatusCode::NotAllowed);
}

// ---- LQ Relay Data (RFC 5007 §4.1.2.4) ----

/// Reads one Relay-forward header and its options off `message`: (hop-count, link-address,
/// peer-address, options as (code, body)).
fn relay_forward(message: &[u8]) -> (u8, Ipv6Addr, Ipv6Addr, Vec<(u16, Vec<u8>)>) {
    assert_eq!(message[0], u8::from(MessageType::RelayForw));
    let address = |at: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&message[at..at + 16]).unwrap());
    let mut options = Vec::new();
    let mut rest = &message[34..];
    while !rest.is_empty() {
        let code = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        options.push((code, rest[4..4 + len].to_vec()));
        rest = &rest[4 + len..];
    }
    (message[1], address(2), address(18), options)
}

#[test]
fn relay_data_holds_the_relay_agents_source_and_its_relay_forward_4_1_2_4() {
    let mut server = Server::new(CONFIG);
    let relay = Relay::new(ip("2001:db8:ffff:2::1"))
        .peer(ip("fe80::2:1"))
        .interface_id(b"bng-1/1/7")
        .option(37, &[0, 0, 0x0d, 0xe9, b'l', b'i', b'n', b'e', b'7']);
    let client = Client::new(200).via(relay);
    // The relay agent sends from its own upstream address, which is none of the fields.
    server.peer.address = Some(ip("2001:db8:ffff:aa::7"));
    let address = server.bind_address(&client, 1);
    server.peer.address = None;
    let reply = ask(&mut server, &by_address(&requestor(), address, any_link()));
    let data = reply.client_data.expect("Client Data");
    let (peer, message) = data.relay_data.expect("LQ Relay Data");
    // peer-address: the relay agent from which the server received the relayed message.
    assert_eq!(peer, ip("2001:db8:ffff:aa::7"));
    let (hop_count, link, client_peer, options) = relay_forward(&message);
    assert_eq!(hop_count, 0);
    assert_eq!(link, ip("2001:db8:ffff:2::1"));
    assert_eq!(client_peer, ip("fe80::2:1"));
    // The relay's options, without the client's message (no OPTION_RELAY_MSG).
    assert_eq!(
        options,
        vec![
            (18, b"bng-1/1/7".to_vec()),
            (37, vec![0, 0, 0x0d, 0xe9, b'l', b'i', b'n', b'e', b'7'])
        ]
    );
    assert_eq!(data.codes.last(), Some(&u16::from(OptionCode::LqRelayData)));
    // Asked by client identifier: the same.
    let reply = ask(
        &mut server,
        &by_client_id(&requestor(), &client.duid, any_link()),
    );
    let (again, _) = reply
        .client_data
        .unwrap()
        .relay_data
        .expect("LQ Relay Data");
    assert_eq!(again, ip("2001:db8:ffff:aa::7"));
}

#[test]
fn relay_data_of_two_hops_nests_the_inner_relay_forward_4_1_2_4() {
    let mut server = Server::new(CONFIG);
    let client = Client::new(201)
        .via(Relay::new(ip("2001:db8:ffff:2::1")).peer(ip("fe80::2:2")))
        .via(
            Relay::new(ip("2001:db8:ffff:2::100"))
                .peer(ip("2001:db8:ffff:2::1"))
                .hop_count(1)
                .interface_id(b"agg-3"),
        );
    server.peer.address = Some(ip("2001:db8:ffff:2::100"));
    let address = server.bind_address(&client, 1);
    let reply = ask(&mut server, &by_address(&requestor(), address, any_link()));
    let (peer, message) = reply
        .client_data
        .unwrap()
        .relay_data
        .expect("LQ Relay Data");
    assert_eq!(peer, ip("2001:db8:ffff:2::100"));
    let (hop_count, link, inner_peer, options) = relay_forward(&message);
    assert_eq!(
        (hop_count, link, inner_peer),
        (1, ip("2001:db8:ffff:2::100"), ip("2001:db8:ffff:2::1"))
    );
    assert_eq!(options[0], (18, b"agg-3".to_vec()));
    // The outer Relay-forward's Relay Message option holds the inner one, which has none.
    let (code, inner) = &options[1];
    assert_eq!(*code, u16::from(OptionCode::RelayMsg));
    let (hop_count, link, client_peer, inner_options) = relay_forward(inner);
    assert_eq!(
        (hop_count, link, client_peer),
        (0, ip("2001:db8:ffff:2::1"), ip("fe80::2:2"))
    );
    assert!(inner_options.is_empty());
}

#[test]
fn relay_data_follows_the_last_transaction_and_needs_its_source_4_1_2_4() {
    let mut server = Server::new(CONFIG);
    let client = Client::new(202).via(Relay::new(ip("2001:db8:ffff:2::1")));
    // Relay data stored without the datagram's source (as replayed from an older journal)
    // is not returned: the server did not retain the relay agent's address.
    let address = server.bind_address(&client, 1);
    let reply = ask(&mut server, &by_address(&requestor(), address, any_link()));
    assert_eq!(reply.client_data.unwrap().relay_data, None);
    // The client renews through another relay agent: its relay data is replaced.
    let moved = Client::new(202).via(Relay::new(ip("2001:db8:ffff:2::2")).peer(ip("fe80::9")));
    server.advance(60);
    server.peer.address = Some(ip("2001:db8:ffff:2::2"));
    let renew = moved.renew(&server.duid()).ia_na(1, &[address]);
    server.send(&renew);
    let reply = ask(&mut server, &by_address(&requestor(), address, any_link()));
    let (peer, message) = reply
        .client_data
        .unwrap()
        .relay_data
        .expect("LQ Relay Data");
    assert_eq!(peer, ip("2001:db8:ffff:2::2"));
    let (_, link, client_peer, _) = relay_forward(&message);
    assert_eq!(
        (link, client_peer),
        (ip("2001:db8:ffff:2::2"), ip("fe80::9"))
    );
}

#[test]
fn a_leasequery_changes_no_lease_and_leaves_the_clients_alone_4_3_3() {
    let mut server = Server::new(CONFIG);
    let client = Client::new(110);
    let address = server.bind_address(&client, 1);
    server.take_events();
    for _ in 0..3 {
        ask(&mut server, &by_address(&requestor(), address, any_link()));
        ask(
            &mut server,
            &by_client_id(&requestor(), &client.duid, any_link()),
        );
    }
    assert!(server.take_events().is_empty());
    // The client renews as before.
    let reply = server.send(&client.renew(&server.duid()).ia_na(1, &[address]));
    assert_eq!(reply.ia_na(1).address(), address);
}

// ---- configuration ----

#[test]
fn the_requestors_list_round_trips_and_names_bad_entries() {
    use xdhcp6_engine::config::Config;

    let config = Config::from_toml_str(CONFIG, "lq.toml").expect("valid");
    assert_eq!(config.leasequery.requestors.len(), 1);
    assert!(config.leasequery_allowed(ip("2001:db8:ffff:1234::1")));
    assert!(!config.leasequery_allowed(ip("2001:db8:fffe::1")));
    let text = config.to_toml_string();
    assert!(text.contains("[leasequery]"), "{text}");
    let again = Config::from_toml_str(&text, "again.toml").expect("valid again");
    assert_eq!(again, config);

    let bad = CONFIG.replace(
        "requestors = [\"2001:db8:ffff::/48\"]",
        "requestors = [\"2001:db8:ffff::/48\", \"not a prefix\"]",
    );
    let error = Config::from_toml_str(&bad, "lq.toml").unwrap_err();
    assert_eq!(error.file(), "lq.toml");
    assert_eq!(error.field(), "leasequery.requestors[1]", "{error}");
    let twice = CONFIG.replace(
        "requestors = [\"2001:db8:ffff::/48\"]",
        "requestors = [\"2001:db8:ffff::/48\", \"2001:db8:ffff::/48\"]",
    );
    let error = Config::from_toml_str(&twice, "lq.toml").unwrap_err();
    assert_eq!(error.field(), "leasequery.requestors[1]", "{error}");
    assert!(error.problem().contains("twice"), "{error}");
    let unknown = CONFIG.replace("[leasequery]\n", "[leasequery]\nallow-all = true\n");
    let error = Config::from_toml_str(&unknown, "lq.toml").unwrap_err();
    assert!(error.to_string().contains("allow-all"), "{error}");

    // Without the section: nobody, and nothing written back.
    let none = Config::from_toml_str(
        &CONFIG.replace("[leasequery]\nrequestors = [\"2001:db8:ffff::/48\"]\n", ""),
        "lq.toml",
    )
    .expect("valid");
    assert!(none.leasequery.requestors.is_empty());
    assert!(!none.leasequery_allowed(ip("2001:db8:ffff::1")));
    assert!(!none.to_toml_string().contains("[leasequery]"));
}
