//! Conversation tests: one test per RFC rule, each a short exchange with the engine on a
//! virtual clock. Test names end in the section they check.

use std::net::Ipv6Addr;

use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::engine::HOP_COUNT_LIMIT;
use xdhcp6_engine::proto::{MessageType, OptionCode, StatusCode};
use xdhcp6_engine::table::{EventKind, IaKind, LeaseState};
use xdhcp6_engine::{Destination, DropReason};

use xdhcp6_engine::testing::{self, Client, Relay, Server, T0, ip};

const SPLIT_A: &str = include_str!("../../../examples/split-a.toml");
const SPLIT_B: &str = include_str!("../../../examples/split-b.toml");
const UNIQUE_A: &str = include_str!("../../../examples/unique-a.toml");
const UNIQUE_B: &str = include_str!("../../../examples/unique-b.toml");
const IDENTICAL_A: &str = include_str!("../../../examples/identical-a.toml");
const IDENTICAL_B: &str = include_str!("../../../examples/identical-b.toml");

/// Two links (the second with Rapid Commit), NA and PD pools, reservations.
const BASE: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:01"
preference = 100
salt = "conversation"
decline-probation = 600
expected-leases = 1000
t1 = 100
t2 = 160
preferred-lifetime = 200
valid-lifetime = 300

[options]
dns-servers = ["2001:db8:53::1", "2001:db8:53::2"]
domain-search = ["example.net"]
information-refresh-time = 86400

[[link]]
name = "access-1"
interfaces = ["eth1"]
relay-prefixes = ["2001:db8:ffff:1::/64"]
interface-ids = ["relay-1:port-7"]

[[link.pool]]
prefix = "2001:db8:1::/64"

[[link.pd-pool]]
prefix = "2001:db8:100::/48"
delegated-length = 56
excluded-prefix-length = 64
excluded-subnet = 5

[[link]]
name = "access-2"
interfaces = ["eth2"]
relay-prefixes = ["2001:db8:ffff:2::/64"]
interface-ids = ["relay-2:port-9"]
rapid-commit = true

[[link.pool]]
prefix = "2001:db8:2::/64"

[[reservation]]
duid = "00:03:00:01:00:11:22:33:44:55"
address = "2001:db8:1::100"
prefix = "2001:db8:100:100::/56"
link = "access-1"

[[reservation]]
hw-address = "00:11:22:33:44:66"
hw-type = 1
address = "2001:db8:1::abcd"
"#;

/// One link whose pools hold one address and one /56.
const TINY: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:02"
salt = "tiny"
decline-probation = 600
t1 = 100
t2 = 160
preferred-lifetime = 200
valid-lifetime = 300

[[link]]
name = "tiny"
interfaces = ["eth1"]

[[link.pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:1::10/128"

[[link.pd-pool]]
prefix = "2001:db8:100::/48"
range = "2001:db8:100::/56"
delegated-length = 56
"#;

const LINK_1: &str = "2001:db8:1::/64";
const LINK_2: &str = "2001:db8:2::/64";

fn server() -> Server {
    Server::new(BASE)
}

fn tiny() -> Server {
    Server::new(TINY)
}

/// The base configuration with `renew-creates-bindings = false`: Renew and Rebind only extend.
fn without_renew_bindings() -> Server {
    Server::new(&BASE.replace(
        "decline-probation = 600",
        "decline-probation = 600\nrenew-creates-bindings = false",
    ))
}

fn in_prefix(addr: Ipv6Addr, prefix: &str) -> bool {
    let prefix: xdhcp6_engine::prefix::Prefix = match prefix.parse() {
        Ok(prefix) => prefix,
        Err(error) => panic!("bad prefix {prefix}: {error:?}"),
    };
    prefix.contains(addr)
}

/// The table's lease on `addr`.
fn lease_on(server: &Server, addr: Ipv6Addr) -> Option<xdhcp6_engine::table::LeaseRecord> {
    server.engine.table().lease_at(u128::from(addr), IaKind::Na)
}

// ---- Solicit and Advertise (RFC 9915 §16.2, §18.3.1, §18.3.9) ----

#[test]
fn solicit_gets_advertise_with_preference_rfc9915_18_3_1() {
    let mut s = server();
    let client = Client::new(1);
    let advertise = s.send(&client.solicit().ia_na(1, &[]).xid(0xabcdef));
    assert_eq!(advertise.msg_type, MessageType::Advertise);
    assert_eq!(advertise.xid, 0xabcdef);
    assert_eq!(advertise.to, Destination::Client);
    assert_eq!(advertise.server_id.as_deref(), Some(s.duid().as_slice()));
    assert_eq!(advertise.client_id.as_deref(), Some(client.duid.as_slice()));
    assert_eq!(advertise.preference, Some(100));
    assert!(!advertise.rapid_commit);
    let ia = advertise.ia_na(1);
    assert_eq!((ia.t1, ia.t2), (100, 160));
    assert_eq!(ia.status_code(), StatusCode::Success);
    let addr = ia.address();
    assert!(in_prefix(addr, LINK_1), "{addr}");
    assert_eq!(ia.lifetimes_of(addr), Some((200, 300)));
    // Nothing is bound, nor reserved: the Request claims the address.
    assert!(s.take_event_kinds().is_empty());
    assert!(lease_on(&s, addr).is_none());
}

#[test]
fn solicit_without_client_id_is_discarded_rfc9915_16_2() {
    let mut s = server();
    let msg = Client::new(1).solicit().ia_na(1, &[]).without_client_id();
    assert_eq!(s.drop_reason(&msg), DropReason::MissingClientId);
    assert!(s.events.is_empty());
}

#[test]
fn solicit_with_server_id_is_discarded_rfc9915_16_2() {
    let mut s = server();
    let msg = Client::new(1).solicit().ia_na(1, &[]).server_id(&s.duid());
    assert_eq!(s.drop_reason(&msg), DropReason::UnexpectedServerId);
    assert!(s.events.is_empty());
}

#[test]
fn solicit_with_rapid_commit_gets_committed_reply_rfc9915_18_3_1() {
    let mut s = server();
    s.link = Some(LinkId(1));
    let client = Client::new(1);
    let reply = s.send(&client.solicit().ia_na(1, &[]).rapid_commit());
    assert_eq!(reply.msg_type, MessageType::Reply);
    assert!(reply.rapid_commit);
    let addr = reply.ia_na(1).address();
    assert!(in_prefix(addr, LINK_2), "{addr}");
    assert_eq!(s.take_event_kinds(), [EventKind::Bound]);
    let record = lease_on(&s, addr).expect("binding");
    assert_eq!(record.lease.state, LeaseState::Bound);
    assert_eq!(record.lease.expires, T0 + 300);
}

#[test]
fn solicit_with_rapid_commit_on_link_without_it_gets_advertise_rfc9915_18_3_1() {
    let mut s = server();
    let reply = s.send(&Client::new(1).solicit().ia_na(1, &[]).rapid_commit());
    assert_eq!(reply.msg_type, MessageType::Advertise);
    assert!(!reply.rapid_commit);
    assert_eq!(reply.preference, Some(100));
    assert!(s.take_event_kinds().is_empty());
}

#[test]
fn solicit_without_rapid_commit_on_rapid_commit_link_gets_advertise_rfc9915_18_3_1() {
    let mut s = server();
    s.link = Some(LinkId(1));
    let reply = s.send(&Client::new(1).solicit().ia_na(1, &[]));
    assert_eq!(reply.msg_type, MessageType::Advertise);
    assert!(!reply.rapid_commit);
}

#[test]
fn repeated_solicit_offers_the_same_address_rfc9915_18_3_1() {
    let mut s = server();
    let client = Client::new(1);
    let first = s.send(&client.solicit().ia_na(1, &[])).ia_na(1).address();
    s.advance(5);
    let second = s.send(&client.solicit().ia_na(1, &[])).ia_na(1).address();
    assert_eq!(first, second);
}

#[test]
fn offers_reserve_nothing_and_the_first_request_wins_rfc9915_18_3_2() {
    let mut s = tiny();
    let (one, two) = (Client::new(1), Client::new(2));
    let addr = s.send(&one.solicit().ia_na(1, &[])).ia_na(1).address();
    // The only address is offered to both: an Advertise reserves nothing.
    let other = s.send(&two.solicit().ia_na(1, &[]));
    assert_eq!(other.ia_na(1).address(), addr);
    assert!(s.take_events().is_empty());
    let reply = s.send(&two.request(&s.duid()).ia_na(1, &[addr]));
    assert_eq!(reply.ia_na(1).address(), addr);
    // RFC 9915 §18.3.2: the server may assign other addresses than it advertised; here
    // none is left.
    let reply = s.send(&one.request(&s.duid()).ia_na(1, &[addr]));
    assert_eq!(reply.ia_na(1).status_code(), StatusCode::NoAddrsAvail);
    // Once bound, the address is offered to nobody else.
    let again = s.send(&one.solicit().ia_na(1, &[]));
    assert_eq!(again.ia_na(1).status_code(), StatusCode::NoAddrsAvail);
}

// ---- Request (RFC 9915 §16.4, §18.3.2) ----

#[test]
fn request_binds_the_advertised_address_rfc9915_18_3_2() {
    let mut s = server();
    let client = Client::new(1);
    let (advertise, reply) = s.bind_na(&client, 7);
    assert_eq!(reply.msg_type, MessageType::Reply);
    assert_eq!(reply.xid, client.xid);
    assert_eq!(reply.preference, None);
    let offered = advertise.ia_na(7).address();
    assert_eq!(reply.ia_na(7).address(), offered);
    assert_eq!(reply.ia_na(7).lifetimes_of(offered), Some((200, 300)));
    assert_eq!(s.take_event_kinds(), [EventKind::Bound]);
    let record = lease_on(&s, offered).expect("binding");
    assert_eq!(record.duid.as_bytes(), client.duid.as_slice());
    assert_eq!(record.lease.state, LeaseState::Bound);
    assert_eq!(record.lease.iaid, 7);
    assert_eq!(record.lease.expires, T0 + 300);
}

#[test]
fn request_without_advertise_binds_an_address_rfc9915_18_3_2() {
    let mut s = server();
    let reply = s.send(&Client::new(1).request(&s.duid()).ia_na(1, &[]));
    let addr = reply.ia_na(1).address();
    assert!(in_prefix(addr, LINK_1));
    assert_eq!(s.take_event_kinds(), [EventKind::Bound]);
}

#[test]
fn request_without_server_id_is_discarded_rfc9915_16_4() {
    let mut s = server();
    let msg = Client::new(1)
        .request(&[])
        .without_server_id()
        .ia_na(1, &[]);
    assert_eq!(s.drop_reason(&msg), DropReason::MissingServerId);
}

#[test]
fn request_with_wrong_server_id_is_discarded_rfc9915_16_4() {
    let mut s = server();
    let other = testing::duid_llt(0xdead);
    let msg = Client::new(1).request(&other).ia_na(1, &[]);
    assert_eq!(s.drop_reason(&msg), DropReason::WrongServerId);
    assert!(s.events.is_empty());
}

#[test]
fn request_without_client_id_is_discarded_rfc9915_16_4() {
    let mut s = server();
    let msg = Client::new(1)
        .request(&s.duid())
        .ia_na(1, &[])
        .without_client_id();
    assert_eq!(s.drop_reason(&msg), DropReason::MissingClientId);
}

#[test]
fn request_with_address_not_on_link_gets_notonlink_rfc9915_18_3_2() {
    let mut s = server();
    let msg = Client::new(1)
        .request(&s.duid())
        .ia_na(1, &[ip("2001:db8:9::1")]);
    let reply = s.send(&msg);
    let ia = reply.ia_na(1);
    assert_eq!(ia.status_code(), StatusCode::NotOnLink);
    assert!(ia.addrs.is_empty());
    assert!(s.events.is_empty());
}

#[test]
fn several_ia_na_and_ia_pd_are_each_answered_rfc9915_18_3_2() {
    let mut s = server();
    let client = Client::new(1);
    let solicit = client
        .solicit()
        .ia_na(1, &[])
        .ia_na(2, &[])
        .ia_pd(3, &[])
        .ia_pd(4, &[]);
    let advertise = s.send(&solicit);
    assert_eq!(advertise.ia_na.len(), 2);
    assert_eq!(advertise.ia_pd.len(), 2);
    let request = client
        .request(&s.duid())
        .ia_na(1, &[])
        .ia_na(2, &[])
        .ia_pd(3, &[])
        .ia_pd(4, &[]);
    let reply = s.send(&request);
    let (a1, a2) = (reply.ia_na(1).address(), reply.ia_na(2).address());
    let (p3, p4) = (reply.ia_pd(3).prefix(), reply.ia_pd(4).prefix());
    assert_ne!(a1, a2);
    assert_ne!(p3, p4);
    assert_eq!(a1, advertise.ia_na(1).address());
    assert_eq!(a2, advertise.ia_na(2).address());
    assert_eq!(p3, advertise.ia_pd(3).prefix());
    assert_eq!(p4, advertise.ia_pd(4).prefix());
    for (prefix, len) in [p3, p4] {
        assert_eq!(len, 56);
        assert!(in_prefix(prefix, "2001:db8:100::/48"));
    }
    assert_eq!(s.engine.table().len(), 4);
}

#[test]
fn exhausted_pool_gets_noaddrsavail_inside_the_ia_rfc9915_18_3_2() {
    let mut s = tiny();
    s.bind_address(&Client::new(1), 1);
    let msg = Client::new(2).request(&s.duid()).ia_na(1, &[]);
    let reply = s.send(&msg);
    assert_eq!(reply.status_code(), StatusCode::Success);
    let ia = reply.ia_na(1);
    assert_eq!(ia.status_code(), StatusCode::NoAddrsAvail);
    assert!(ia.addrs.is_empty());
    let advertise = s.send(&Client::new(2).solicit().ia_na(1, &[]));
    assert_eq!(advertise.ia_na(1).status_code(), StatusCode::NoAddrsAvail);
}

#[test]
fn exhausted_pd_pool_gets_noprefixavail_inside_the_ia_rfc9915_18_3_2() {
    let mut s = tiny();
    s.bind_prefix(&Client::new(1), 1);
    let reply = s.send(&Client::new(2).request(&s.duid()).ia_pd(1, &[]));
    let ia = reply.ia_pd(1);
    assert_eq!(ia.status_code(), StatusCode::NoPrefixAvail);
    assert!(ia.prefixes.is_empty());
}

// ---- Renew (RFC 9915 §16.6, §18.3.4) ----

#[test]
fn renew_extends_the_binding_rfc9915_18_3_4() {
    let mut s = server();
    let client = Client::new(1);
    let addr = s.bind_address(&client, 1);
    s.take_events();
    s.advance(150);
    let reply = s.send(&client.renew(&s.duid()).ia_na(1, &[addr]));
    assert_eq!(reply.msg_type, MessageType::Reply);
    let ia = reply.ia_na(1);
    assert_eq!(ia.status_code(), StatusCode::Success);
    assert_eq!(ia.address(), addr);
    assert_eq!(ia.lifetimes_of(addr), Some((200, 300)));
    assert_eq!(s.take_event_kinds(), [EventKind::Renewed]);
    let record = lease_on(&s, addr).expect("binding");
    assert_eq!(record.lease.expires, T0 + 150 + 300);
    // Past the first expiry, the renewed lease is still there.
    s.advance(200);
    s.handle_timeout();
    assert!(s.events.is_empty());
    assert!(lease_on(&s, addr).is_some());
}

#[test]
fn renew_of_unknown_ia_gets_nobinding_without_renew_creates_bindings_rfc9915_18_3_4() {
    let mut s = without_renew_bindings();
    let msg = Client::new(1)
        .renew(&s.duid())
        .ia_na(1, &[ip("2001:db8:1::77")]);
    let reply = s.send(&msg);
    let ia = reply.ia_na(1);
    assert_eq!(ia.status_code(), StatusCode::NoBinding);
    assert!(ia.live_addrs().is_empty());
    assert!(s.events.is_empty());
    assert!(s.engine.table().is_empty());
}

#[test]
fn renew_of_an_address_only_advertised_gets_nobinding_without_renew_creates_bindings_rfc9915_18_3_4()
 {
    let mut s = without_renew_bindings();
    let client = Client::new(1);
    let advertise = s.send(&client.solicit().ia_na(1, &[]));
    let offered = advertise.ia_na(1).address();
    let reply = s.send(&client.renew(&s.duid()).ia_na(1, &[offered]));
    let ia = reply.ia_na(1);
    assert_eq!(ia.status_code(), StatusCode::NoBinding);
    assert!(ia.live_addrs().is_empty(), "{ia:?}");
}

#[test]
fn renew_of_unknown_ia_pd_gets_nobinding_without_renew_creates_bindings_rfc9915_18_3_4() {
    let mut s = without_renew_bindings();
    let msg = Client::new(1)
        .renew(&s.duid())
        .ia_pd(1, &[(ip("2001:db8:100:4200::"), 56)]);
    let ia = s.send(&msg).ia_pd(1).clone();
    assert_eq!(ia.status_code(), StatusCode::NoBinding);
    assert!(s.engine.table().is_empty());
}

#[test]
fn renew_returns_addresses_not_on_link_with_zero_lifetimes_rfc9915_18_3_4() {
    let mut s = server();
    let client = Client::new(1);
    let addr = s.bind_address(&client, 1);
    let foreign = ip("2001:db8:9::1");
    let reply = s.send(&client.renew(&s.duid()).ia_na(1, &[addr, foreign]));
    let ia = reply.ia_na(1);
    assert_eq!(ia.address(), addr);
    assert_eq!(ia.lifetimes_of(foreign), Some((0, 0)));
    assert_eq!(ia.status_code(), StatusCode::Success);
}

#[test]
fn renew_extends_a_delegated_prefix_rfc9915_18_3_4() {
    let mut s = server();
    let client = Client::new(1);
    let (prefix, len) = s.bind_prefix(&client, 9);
    s.take_events();
    s.advance(120);
    let reply = s.send(&client.renew(&s.duid()).ia_pd(9, &[(prefix, len)]));
    assert_eq!(reply.ia_pd(9).prefix(), (prefix, len));
    assert_eq!(s.take_event_kinds(), [EventKind::Renewed]);
    let record = s
        .engine
        .table()
        .lease_at(u128::from(prefix), IaKind::Pd)
        .expect("delegation");
    assert_eq!(record.lease.expires, T0 + 120 + 300);
}

#[test]
fn renew_without_server_id_is_discarded_rfc9915_16_6() {
    let mut s = server();
    let client = Client::new(1);
    let addr = s.bind_address(&client, 1);
    let msg = client.renew(&[]).without_server_id().ia_na(1, &[addr]);
    assert_eq!(s.drop_reason(&msg), DropReason::MissingServerId);
}

#[test]
fn renew_with_wrong_server_id_is_discarded_rfc9915_16_6() {
    let mut s = server();
    let client = Client::new(1);
    let addr = s.bind_address(&client, 1);
    s.take_events();
    let msg = client.renew(&testing::duid_llt(0xbeef)).ia_na(1, &[addr]);
    assert_eq!(s.drop_reason(&msg), DropReason::WrongServerId);
    assert!(s.events.is_empty());
}

// ---- Rebind (RFC 9915 §16.7, §18.3.5; RFC 6853 models) ----

#[test]
fn rebind_extends_own_binding_rfc9915_18_3_5() {
    let mut s = server();
    let client = Client::new(1);
    let addr = s.bind_address(&client, 1);
    s.take_events();
    s.advance(170);
    let reply = s.send(&client.rebind().ia_na(1, &[addr]));
    assert_eq!(reply.msg_type, MessageType::Reply);
    assert_eq!(reply.ia_na(1).address(), addr);
    assert!(reply.ia_na(1).zeroed_addrs().is_empty());
    assert_eq!(s.take_event_kinds(), [EventKind::Renewed]);
    assert_eq!(
        lease_on(&s, addr).map(|record| record.lease.expires),
        Some(T0 + 170 + 300)
    );
}

#[test]
fn rebind_with_server_id_is_discarded_rfc9915_16_7() {
    let mut s = server();
    let msg = Client::new(1)
        .rebind()
        .ia_na(1, &[ip("2001:db8:1::5")])
        .server_id(&s.duid());
    assert_eq!(s.drop_reason(&msg), DropReason::UnexpectedServerId);
}

#[test]
fn rebind_without_client_id_is_discarded_rfc9915_16_7() {
    let mut s = server();
    let msg = Client::new(1)
        .rebind()
        .ia_na(1, &[ip("2001:db8:1::5")])
        .without_client_id();
    assert_eq!(s.drop_reason(&msg), DropReason::MissingClientId);
}

#[test]
fn rebind_returns_addresses_not_on_link_with_zero_lifetimes_rfc9915_18_3_5() {
    let mut s = server();
    let client = Client::new(1);
    let addr = s.bind_address(&client, 1);
    let foreign = ip("2001:db8:9::1");
    let reply = s.send(&client.rebind().ia_na(1, &[addr, foreign]));
    assert_eq!(reply.ia_na(1).address(), addr);
    assert_eq!(reply.ia_na(1).lifetimes_of(foreign), Some((0, 0)));
}

#[test]
fn rebind_to_split_partner_zeroes_foreign_address_and_binds_own_slice_rfc6853_split() {
    let mut a = Server::new(SPLIT_A);
    let mut b = Server::new(SPLIT_B);
    let client = Client::new(1);
    let old = a.bind_address(&client, 1);
    assert!(in_prefix(old, "2001:db8:1::/65"), "{old}");
    // A is down: the client rebinds and B answers.
    b.advance(20);
    let reply = b.send(&client.rebind().ia_na(1, &[old]));
    assert_eq!(reply.server_id.as_deref(), Some(b.duid().as_slice()));
    let ia = reply.ia_na(1);
    assert_eq!(ia.lifetimes_of(old), Some((0, 0)));
    let fresh = ia.address();
    assert!(in_prefix(fresh, "2001:db8:1:0:8000::/65"), "{fresh}");
    assert_eq!(ia.lifetimes_of(fresh), Some((20, 30)));
    assert_eq!(ia.status_code(), StatusCode::Success);
    assert!(lease_on(&b, old).is_none());
    assert_eq!(
        lease_on(&b, fresh).map(|record| record.lease.state),
        Some(LeaseState::Bound)
    );
}

#[test]
fn rebind_to_split_partner_zeroes_foreign_prefix_and_delegates_own_slice_rfc6853_split() {
    let mut a = Server::new(SPLIT_A);
    let mut b = Server::new(SPLIT_B);
    let client = Client::new(1);
    let (old, len) = a.bind_prefix(&client, 1);
    assert!(in_prefix(old, "2001:db8:100::/49"), "{old}");
    let reply = b.send(&client.rebind().ia_pd(1, &[(old, len)]));
    let ia = reply.ia_pd(1);
    let zeroed: Vec<_> = ia
        .prefixes
        .iter()
        .filter(|prefix| prefix.valid == 0)
        .map(|prefix| prefix.prefix)
        .collect();
    assert_eq!(zeroed, [old]);
    let (fresh, fresh_len) = ia.prefix();
    assert_eq!(fresh_len, 56);
    assert!(in_prefix(fresh, "2001:db8:100:8000::/49"), "{fresh}");
}

fn split_extend(text: &str) -> String {
    text.replace("rebind-foreign = \"zero\"", "rebind-foreign = \"extend\"")
}

#[test]
fn rebind_foreign_extend_keeps_partner_address_rfc9915_18_3_5() {
    let mut a = Server::new(SPLIT_A);
    let b_config = split_extend(SPLIT_B);
    assert!(b_config.contains("rebind-foreign = \"extend\""));
    let mut b = Server::new(&b_config);
    let client = Client::new(1);
    let old = a.bind_address(&client, 1);
    let reply = b.send(&client.rebind().ia_na(1, &[old]));
    let ia = reply.ia_na(1);
    assert_eq!(ia.address(), old);
    assert!(ia.zeroed_addrs().is_empty());
    let record = lease_on(&b, old).expect("B now holds the address");
    assert_eq!(record.duid.as_bytes(), client.duid.as_slice());
    // And B renews it like any of its own bindings.
    b.advance(10);
    let renewed = b.send(&client.renew(&b.duid()).ia_na(1, &[old]));
    assert_eq!(renewed.ia_na(1).address(), old);
}

#[test]
fn rebind_foreign_extend_does_not_take_address_held_by_another_client_rfc9915_18_3_5() {
    let mut b = Server::new(&split_extend(SPLIT_B));
    let foreign = ip("2001:db8:1::1234");
    let first = Client::new(1);
    let reply = b.send(&first.rebind().ia_na(1, &[foreign]));
    assert_eq!(reply.ia_na(1).address(), foreign);
    // A second client claims the same address: B holds it for the first one.
    let second = Client::new(2);
    let reply = b.send(&second.rebind().ia_na(1, &[foreign]));
    let ia = reply.ia_na(1);
    assert_eq!(ia.lifetimes_of(foreign), Some((0, 0)));
    let fresh = ia.address();
    assert_ne!(fresh, foreign);
    assert!(in_prefix(fresh, "2001:db8:1:0:8000::/65"), "{fresh}");
    let record = lease_on(&b, foreign).expect("first client's lease");
    assert_eq!(record.duid.as_bytes(), first.duid.as_slice());
}

#[test]
fn rebind_with_address_from_unserved_prefix_gets_zero_and_fresh_binding_rfc6853_unique() {
    let mut a = Server::new(UNIQUE_A);
    let mut b = Server::new(UNIQUE_B);
    let client = Client::new(1);
    let old = a.bind_address(&client, 1);
    assert!(in_prefix(old, "2001:db8:a::/64"));
    let reply = b.send(&client.rebind().ia_na(1, &[old]));
    let ia = reply.ia_na(1);
    assert_eq!(ia.lifetimes_of(old), Some((0, 0)));
    let fresh = ia.address();
    assert!(in_prefix(fresh, "2001:db8:b::/64"), "{fresh}");
    assert!(lease_on(&b, old).is_none());
}

#[test]
fn rebind_in_identical_model_keeps_the_same_address_rfc6853_identical() {
    let mut a = Server::new(IDENTICAL_A);
    let mut b = Server::new(IDENTICAL_B);
    assert_ne!(a.duid(), b.duid());
    let client = Client::new(1);
    let addr = a.bind_address(&client, 1);
    let reply = b.send(&client.rebind().ia_na(1, &[addr]));
    let ia = reply.ia_na(1);
    assert_eq!(ia.address(), addr);
    assert!(ia.zeroed_addrs().is_empty());
    assert_eq!(
        lease_on(&b, addr).map(|record| record.lease.state),
        Some(LeaseState::Bound)
    );
}

#[test]
fn solicit_in_identical_model_offers_the_same_address_rfc6853_identical() {
    let mut a = Server::new(IDENTICAL_A);
    let mut b = Server::new(IDENTICAL_B);
    // Both servers hold the same bindings (b learns each one by the client's Rebind, as
    // after a failover), so each offers what the other binds, hash collisions included.
    for n in 0..50 {
        let client = Client::new(n);
        let addr = a.bind_address(&client, 1);
        let advertise = b.send(&client.solicit().ia_na(1, &[]));
        assert_eq!(advertise.ia_na(1).address(), addr, "client {n}");
        assert_eq!(advertise.preference, Some(0));
        let (prefix, len) = a.bind_prefix(&client, 2);
        let advertise = b.send(&client.solicit().ia_pd(2, &[]));
        assert_eq!(advertise.ia_pd(2).prefix().0, prefix, "client {n}");
        b.send(&client.rebind().ia_na(1, &[addr]));
        b.send(&client.rebind().ia_pd(2, &[(prefix, len)]));
    }
}

// ---- Release (RFC 9915 §16.9, §18.3.7) ----

#[test]
fn release_removes_the_lease_and_frees_the_address_rfc9915_18_3_7() {
    let mut s = tiny();
    let first = Client::new(1);
    let addr = s.bind_address(&first, 1);
    assert_eq!(s.engine.pool_usage()[0].free, Some(0));
    s.take_events();
    let reply = s.send(&first.release(&s.duid()).ia_na(1, &[addr]));
    assert_eq!(reply.msg_type, MessageType::Reply);
    assert_eq!(reply.status_code(), StatusCode::Success);
    assert_eq!(reply.ia_na(1).status_code(), StatusCode::Success);
    assert!(reply.ia_na(1).addrs.is_empty(), "{:?}", reply.ia_na);
    assert_eq!(s.take_event_kinds(), [EventKind::Released]);
    assert!(lease_on(&s, addr).is_none());
    assert!(s.engine.table().is_empty());
    assert_eq!(s.engine.pool_usage()[0].free, Some(1));
    // The only address goes to the next client.
    assert_eq!(s.bind_address(&Client::new(2), 1), addr);
}

#[test]
fn release_of_unknown_ia_gets_nobinding_rfc9915_18_3_7() {
    let mut s = server();
    let client = Client::new(1);
    let addr = s.bind_address(&client, 1);
    s.take_events();
    let msg = client
        .release(&s.duid())
        .ia_na(1, &[addr])
        .ia_na(2, &[ip("2001:db8:1::99")]);
    let reply = s.send(&msg);
    assert_eq!(reply.status_code(), StatusCode::Success);
    assert_eq!(reply.ia_na.len(), 2, "{:?}", reply.ia_na);
    assert_eq!(reply.ia_na(1).status_code(), StatusCode::Success);
    assert_eq!(reply.ia_na(2).status_code(), StatusCode::NoBinding);
    assert_eq!(s.take_event_kinds(), [EventKind::Released]);
}

#[test]
fn release_of_another_clients_address_gets_nobinding_rfc9915_18_3_7() {
    let mut s = server();
    let owner = Client::new(1);
    let addr = s.bind_address(&owner, 1);
    s.take_events();
    let reply = s.send(&Client::new(2).release(&s.duid()).ia_na(1, &[addr]));
    assert_eq!(reply.ia_na(1).status_code(), StatusCode::NoBinding);
    assert!(s.events.is_empty());
    assert!(lease_on(&s, addr).is_some());
}

#[test]
fn release_without_server_id_is_discarded_rfc9915_16_9() {
    let mut s = server();
    let client = Client::new(1);
    let addr = s.bind_address(&client, 1);
    let msg = client.release(&[]).without_server_id().ia_na(1, &[addr]);
    assert_eq!(s.drop_reason(&msg), DropReason::MissingServerId);
    let msg = client.release(&testing::duid_llt(9)).ia_na(1, &[addr]);
    assert_eq!(s.drop_reason(&msg), DropReason::WrongServerId);
    assert!(lease_on(&s, addr).is_some());
}

// ---- Decline (RFC 9915 §16.8, §18.3.8) ----

#[test]
fn decline_quarantines_the_address_for_the_probation_rfc9915_18_3_8() {
    let mut s = tiny();
    let first = Client::new(1);
    let addr = s.bind_address(&first, 1);
    s.take_events();
    let reply = s.send(&first.decline(&s.duid()).ia_na(1, &[addr]));
    assert_eq!(reply.status_code(), StatusCode::Success);
    assert_eq!(reply.ia_na(1).status_code(), StatusCode::Success);
    assert!(reply.ia_na(1).addrs.is_empty());
    assert_eq!(s.take_event_kinds(), [EventKind::Declined]);
    let record = lease_on(&s, addr).expect("quarantined");
    assert_eq!(record.lease.state, LeaseState::Declined);
    assert_eq!(record.lease.expires, s.now + 600);
    // Nobody gets it during the probation, the decliner included.
    for (step, n) in [(0, 2), (300, 3), (299, 1)] {
        s.advance(step);
        s.handle_timeout();
        let reply = s.send(&Client::new(n).solicit().ia_na(1, &[]));
        assert_eq!(reply.ia_na(1).status_code(), StatusCode::NoAddrsAvail);
    }
    assert!(
        s.take_events()
            .iter()
            .all(|event| event.kind != EventKind::ProbationEnded)
    );
    s.advance(1);
    s.handle_timeout();
    assert_eq!(s.take_event_kinds(), [EventKind::ProbationEnded]);
    assert!(lease_on(&s, addr).is_none());
    assert_eq!(s.bind_address(&Client::new(2), 1), addr);
}

#[test]
fn decline_of_unknown_ia_gets_nobinding_rfc9915_18_3_8() {
    let mut s = server();
    let msg = Client::new(1)
        .decline(&s.duid())
        .ia_na(1, &[ip("2001:db8:1::99")]);
    let reply = s.send(&msg);
    assert_eq!(reply.status_code(), StatusCode::Success);
    assert_eq!(reply.ia_na(1).status_code(), StatusCode::NoBinding);
    assert!(s.engine.table().is_empty());
}

#[test]
fn decline_without_server_id_is_discarded_rfc9915_16_8() {
    let mut s = server();
    let client = Client::new(1);
    let addr = s.bind_address(&client, 1);
    let msg = client.decline(&[]).without_server_id().ia_na(1, &[addr]);
    assert_eq!(s.drop_reason(&msg), DropReason::MissingServerId);
    let msg = client.decline(&testing::duid_llt(9)).ia_na(1, &[addr]);
    assert_eq!(s.drop_reason(&msg), DropReason::WrongServerId);
    let msg = client
        .decline(&s.duid())
        .ia_na(1, &[addr])
        .without_client_id();
    assert_eq!(s.drop_reason(&msg), DropReason::MissingClientId);
    assert_eq!(
        lease_on(&s, addr).map(|record| record.lease.state),
        Some(LeaseState::Bound)
    );
}

// ---- Confirm (RFC 9915 §16.5, §18.3.3) ----

#[test]
fn confirm_of_on_link_addresses_gets_success_rfc9915_18_3_3() {
    let mut s = server();
    let client = Client::new(1);
    let addr = s.bind_address(&client, 1);
    let reply = s.send(&client.confirm().ia_na(1, &[addr]));
    assert_eq!(reply.msg_type, MessageType::Reply);
    assert_eq!(reply.status_code(), StatusCode::Success);
    assert!(
        reply.status.is_some(),
        "Confirm replies carry an explicit status"
    );
    assert!(reply.ia_na.is_empty());
    // Any address on the link passes, bound or not (the test is about the link).
    let reply = s.send(&Client::new(2).confirm().ia_na(1, &[ip("2001:db8:1::42")]));
    assert_eq!(reply.status_code(), StatusCode::Success);
    assert!(reply.status.is_some());
}

#[test]
fn confirm_of_an_off_link_address_gets_notonlink_rfc9915_18_3_3() {
    let mut s = server();
    let msg = Client::new(1)
        .confirm()
        .ia_na(1, &[ip("2001:db8:1::42")])
        .ia_na(2, &[ip("2001:db8:2::42")]);
    let reply = s.send(&msg);
    assert_eq!(reply.status_code(), StatusCode::NotOnLink);
}

#[test]
fn confirm_without_addresses_gets_no_reply_rfc9915_18_3_3() {
    let mut s = server();
    let msg = Client::new(1).confirm().ia_na(1, &[]);
    assert_eq!(s.drop_reason(&msg), DropReason::NothingToConfirm);
    let msg = Client::new(1).confirm();
    assert_eq!(s.drop_reason(&msg), DropReason::NothingToConfirm);
}

#[test]
fn confirm_with_server_id_is_discarded_rfc9915_16_5() {
    let mut s = server();
    let msg = Client::new(1)
        .confirm()
        .ia_na(1, &[ip("2001:db8:1::42")])
        .server_id(&s.duid());
    assert_eq!(s.drop_reason(&msg), DropReason::UnexpectedServerId);
    let msg = Client::new(1)
        .confirm()
        .ia_na(1, &[ip("2001:db8:1::42")])
        .without_client_id();
    assert_eq!(s.drop_reason(&msg), DropReason::MissingClientId);
}

// ---- Information-request (RFC 9915 §16.12, §18.3.6) ----

#[test]
fn information_request_gets_options_without_ias_rfc9915_18_3_6() {
    let mut s = server();
    let msg = Client::new(1)
        .information_request()
        .oro(&[OptionCode::DnsServers, OptionCode::DomainList]);
    let reply = s.send(&msg);
    assert_eq!(reply.msg_type, MessageType::Reply);
    assert!(reply.ia_na.is_empty() && reply.ia_pd.is_empty());
    assert_eq!(
        reply.dns_servers(),
        [ip("2001:db8:53::1"), ip("2001:db8:53::2")]
    );
    assert!(reply.has(OptionCode::DomainList));
    assert!(s.events.is_empty());
    assert!(s.engine.table().is_empty());
    // Without a Client Identifier too (RFC 9915 §18.2.6: it is optional here).
    let reply = s.send(
        &Client::new(1)
            .information_request()
            .without_client_id()
            .oro(&[OptionCode::DnsServers]),
    );
    assert_eq!(reply.client_id, None);
    assert_eq!(reply.dns_servers().len(), 2);
}

#[test]
fn information_request_with_an_ia_is_discarded_rfc9915_16_12() {
    let mut s = server();
    let base = Client::new(1)
        .information_request()
        .oro(&[OptionCode::DnsServers]);
    assert_eq!(
        s.drop_reason(&base.clone().ia_na(1, &[])),
        DropReason::IaInInformationRequest
    );
    assert_eq!(
        s.drop_reason(&base.clone().ia_pd(1, &[])),
        DropReason::IaInInformationRequest
    );
    assert_eq!(
        s.drop_reason(&base.ia_ta(1)),
        DropReason::IaInInformationRequest
    );
}

#[test]
fn information_request_with_a_foreign_server_id_is_discarded_rfc9915_16_12() {
    let mut s = server();
    let msg = Client::new(1)
        .information_request()
        .server_id(&testing::duid_llt(77));
    assert_eq!(s.drop_reason(&msg), DropReason::WrongServerId);
    // Our own Server Identifier is fine.
    let msg = Client::new(1)
        .information_request()
        .server_id(&s.duid())
        .oro(&[OptionCode::DnsServers]);
    assert_eq!(s.send(&msg).dns_servers().len(), 2);
}

// ---- Options (RFC 9915 §18.3, §21.7, §21.23) ----

#[test]
fn options_are_sent_only_when_requested_in_the_oro_rfc9915_21_7() {
    let mut s = server();
    let client = Client::new(1);
    let bare = s.send(&client.solicit().ia_na(1, &[]));
    assert!(!bare.has(OptionCode::DnsServers));
    assert!(!bare.has(OptionCode::DomainList));
    let asked = s.send(
        &client
            .solicit()
            .ia_na(1, &[])
            .oro(&[OptionCode::DnsServers]),
    );
    assert_eq!(asked.dns_servers().len(), 2);
    assert!(!asked.has(OptionCode::DomainList));
    let reply = s.send(
        &client
            .request(&s.duid())
            .ia_na(1, &[])
            .oro(&[OptionCode::DomainList]),
    );
    assert!(reply.has(OptionCode::DomainList));
    assert!(!reply.has(OptionCode::DnsServers));
    let renewed = s.send(
        &client
            .renew(&s.duid())
            .ia_na(1, &[])
            .oro(&[OptionCode::DnsServers]),
    );
    assert_eq!(renewed.dns_servers().len(), 2);
    let info = s.send(&client.information_request());
    assert!(!info.has(OptionCode::DnsServers));
}

#[test]
fn information_refresh_time_only_in_information_request_replies_rfc9915_21_23() {
    let mut s = server();
    let client = Client::new(1);
    let oro = [OptionCode::DnsServers, OptionCode::InformationRefreshTime];
    let advertise = s.send(&client.solicit().ia_na(1, &[]).oro(&oro));
    assert!(advertise.has(OptionCode::DnsServers));
    assert!(!advertise.has(OptionCode::InformationRefreshTime));
    let reply = s.send(&client.request(&s.duid()).ia_na(1, &[]).oro(&oro));
    assert!(!reply.has(OptionCode::InformationRefreshTime));
    let renew = s.send(&client.renew(&s.duid()).ia_na(1, &[]).oro(&oro));
    assert!(!renew.has(OptionCode::InformationRefreshTime));
    let info = s.send(&client.information_request().oro(&oro));
    assert_eq!(
        info.option(OptionCode::InformationRefreshTime),
        Some(86_400u32.to_be_bytes().as_slice())
    );
}

#[test]
fn prefix_exclude_is_sent_when_requested_rfc6603_4_2() {
    let mut s = server();
    let client = Client::new(1);
    let plain = s.send(&client.solicit().ia_pd(1, &[]));
    assert_eq!(plain.ia_pd(1).prefixes.len(), 1);
    assert_eq!(plain.ia_pd(1).prefixes[0].exclude, None);
    let oro = [OptionCode::PdExclude];
    let advertise = s.send(&client.solicit().ia_pd(1, &[]).oro(&oro));
    let prefix = &advertise.ia_pd(1).prefixes[0];
    // The 5th /64 of the /56: eight bits of subnet id after the delegated length.
    assert_eq!(prefix.exclude, Some((64, vec![5])));
    let reply = s.send(&client.request(&s.duid()).ia_pd(1, &[]).oro(&oro));
    assert_eq!(reply.ia_pd(1).prefixes[0].exclude, Some((64, vec![5])));
    let renewed = s.send(&client.renew(&s.duid()).ia_pd(1, &[]).oro(&oro));
    assert_eq!(renewed.ia_pd(1).prefixes[0].exclude, Some((64, vec![5])));
}

// ---- Server message types and malformed input (RFC 9915 §16) ----

#[test]
fn messages_servers_never_receive_are_discarded_rfc9915_16() {
    let mut s = server();
    let client = Client::new(1);
    for msg_type in [
        MessageType::Advertise,
        MessageType::Reply,
        MessageType::Reconfigure,
    ] {
        let msg = client.message(msg_type).server_id(&s.duid()).ia_na(1, &[]);
        assert_eq!(
            s.drop_reason(&msg),
            DropReason::NotForServer,
            "{msg_type:?}"
        );
    }
    // A Relay-reply sent to the server.
    let relayed = client
        .solicit()
        .ia_na(1, &[])
        .via(Relay::new(ip("2001:db8:ffff:1::1")));
    let mut bytes = relayed.encode();
    bytes[0] = MessageType::RelayRepl.into();
    assert_eq!(s.handle_bytes(&bytes).err(), Some(DropReason::NotForServer));
    // A server message inside a Relay-forward.
    let wrapped = client
        .message(MessageType::Advertise)
        .via(Relay::new(ip("2001:db8:ffff:1::1")));
    assert_eq!(s.drop_reason(&wrapped), DropReason::NotForServer);
    assert!(s.events.is_empty());
}

#[test]
fn truncated_and_empty_messages_are_discarded_rfc9915_16() {
    let mut s = server();
    assert_eq!(s.handle_bytes(&[]).err(), Some(DropReason::Malformed));
    assert_eq!(s.handle_bytes(&[1, 0]).err(), Some(DropReason::Malformed));
    let mut bytes = Client::new(1).solicit().ia_na(1, &[]).encode();
    bytes.truncate(bytes.len() - 3);
    assert_eq!(s.handle_bytes(&bytes).err(), Some(DropReason::Malformed));
    assert_eq!(
        s.handle_bytes(&[99, 0, 0, 1]).err(),
        Some(DropReason::Unsupported)
    );
    // A Leasequery without the requestor's Client Identifier (RFC 5007 §4.2.1).
    assert_eq!(
        s.handle_bytes(&[14, 0, 0, 1]).err(),
        Some(DropReason::MissingClientId)
    );
}

#[test]
fn direct_message_from_an_unserved_interface_is_discarded_rfc9915_13_1() {
    let mut s = server();
    s.link = None;
    let msg = Client::new(1).solicit().ia_na(1, &[]);
    assert_eq!(s.drop_reason(&msg), DropReason::UnknownLink);
    assert_eq!(s.engine.link_for_interface("eth2", None), Some(LinkId(1)));
    assert_eq!(s.engine.link_for_interface("eth9", None), None);
}

// ---- Relay agents (RFC 9915 §13.1, §19) ----

#[test]
fn relayed_solicit_gets_relay_reply_with_copied_fields_rfc9915_19_3() {
    let mut s = server();
    let relay = Relay::new(ip("2001:db8:ffff:1::1"))
        .peer(ip("fe80::aa"))
        .interface_id(b"port-3");
    let client = Client::new(1).via(relay);
    let reply = s.send(&client.solicit().ia_na(1, &[]));
    assert_eq!(
        reply.to,
        Destination::Relay {
            to_source_port: false
        }
    );
    assert_eq!(reply.relays.len(), 1);
    let hop = &reply.relays[0];
    assert_eq!(hop.msg_type, MessageType::RelayRepl);
    assert_eq!(hop.hop_count, 0);
    assert_eq!(hop.link, ip("2001:db8:ffff:1::1"));
    assert_eq!(hop.peer, ip("fe80::aa"));
    assert_eq!(hop.interface_id.as_deref(), Some(b"port-3".as_slice()));
    assert_eq!(reply.msg_type, MessageType::Advertise);
    assert!(in_prefix(reply.ia_na(1).address(), LINK_1));
    // The whole exchange works through the relay.
    let addr = s.bind_address(&client, 1);
    assert!(in_prefix(addr, LINK_1));
}

#[test]
fn relay_reply_through_three_relays_wraps_each_hop_rfc9915_19_3() {
    let mut s = server();
    let client = Client::new(1)
        .via(
            Relay::new(ip("2001:db8:2::1"))
                .peer(ip("fe80::1"))
                .interface_id(b"inner"),
        )
        .via(Relay::new(ip("2001:db8:ffff:1::1")).peer(ip("2001:db8:ffff:1::1")))
        .via(
            Relay::new(ip("2001:db8:ffff:3::1"))
                .peer(ip("2001:db8:ffff:1::2"))
                .interface_id(b"outer"),
        );
    let reply = s.send(&client.solicit().ia_na(1, &[]));
    let hops: Vec<_> = reply
        .relays
        .iter()
        .map(|hop| {
            (
                hop.msg_type,
                hop.hop_count,
                hop.link,
                hop.peer,
                hop.interface_id.clone(),
            )
        })
        .collect();
    assert_eq!(
        hops,
        [
            (
                MessageType::RelayRepl,
                2,
                ip("2001:db8:ffff:3::1"),
                ip("2001:db8:ffff:1::2"),
                Some(b"outer".to_vec())
            ),
            (
                MessageType::RelayRepl,
                1,
                ip("2001:db8:ffff:1::1"),
                ip("2001:db8:ffff:1::1"),
                None
            ),
            (
                MessageType::RelayRepl,
                0,
                ip("2001:db8:2::1"),
                ip("fe80::1"),
                Some(b"inner".to_vec())
            ),
        ]
    );
    // The link comes from the relay closest to the client: access-2.
    assert!(in_prefix(reply.ia_na(1).address(), LINK_2));
}

#[test]
fn relay_link_is_chosen_by_link_address_rfc9915_13_1() {
    let mut s = server();
    for (link, expected) in [
        ("2001:db8:ffff:1::9", LINK_1),
        ("2001:db8:1::1", LINK_1),
        ("2001:db8:ffff:2::9", LINK_2),
        ("2001:db8:2::1", LINK_2),
    ] {
        let client = Client::new(1).via(Relay::new(ip(link)));
        let addr = s.send(&client.solicit().ia_na(1, &[])).ia_na(1).address();
        assert!(in_prefix(addr, expected), "{link}: {addr}");
    }
}

#[test]
fn relay_link_is_chosen_by_interface_id_rfc9915_13_1() {
    let mut s = server();
    // A lightweight relay (RFC 6221) sends no link-address: the Interface-Id decides.
    let client =
        Client::new(1).via(Relay::new(Ipv6Addr::UNSPECIFIED).interface_id(b"relay-2:port-9"));
    let addr = s.send(&client.solicit().ia_na(1, &[])).ia_na(1).address();
    assert!(in_prefix(addr, LINK_2), "{addr}");
    // A known Interface-Id wins over the link-address.
    let client =
        Client::new(2).via(Relay::new(ip("2001:db8:ffff:2::1")).interface_id(b"relay-1:port-7"));
    let addr = s.send(&client.solicit().ia_na(1, &[])).ia_na(1).address();
    assert!(in_prefix(addr, LINK_1), "{addr}");
    // A lightweight relay with an unknown Interface-Id: the next relay's link-address decides.
    let client = Client::new(3)
        .via(Relay::new(Ipv6Addr::UNSPECIFIED).interface_id(b"ldra-port-1"))
        .via(Relay::new(ip("2001:db8:ffff:2::1")));
    let reply = s.send(&client.solicit().ia_na(1, &[]));
    assert!(in_prefix(reply.ia_na(1).address(), LINK_2));
    assert_eq!(
        reply.relays[1].interface_id.as_deref(),
        Some(b"ldra-port-1".as_slice())
    );
}

#[test]
fn relayed_message_from_an_unknown_link_is_discarded_rfc9915_13_1() {
    let mut s = server();
    let client = Client::new(1).via(Relay::new(ip("2001:db8:ffff:9::1")).interface_id(b"nope"));
    assert_eq!(
        s.drop_reason(&client.solicit().ia_na(1, &[])),
        DropReason::UnknownLink
    );
    let client = Client::new(1).via(Relay::new(Ipv6Addr::UNSPECIFIED));
    assert_eq!(
        s.drop_reason(&client.solicit().ia_na(1, &[])),
        DropReason::UnknownLink
    );
    assert!(s.events.is_empty());
}

fn relayed_through(hops: usize) -> Client {
    let mut client = Client::new(1);
    for hop in 0..hops {
        let link = if hop == 0 {
            ip("2001:db8:ffff:1::1")
        } else {
            ip("2001:db8:eeee::1")
        };
        client = client.via(Relay::new(link).interface_id(format!("hop-{hop}").as_bytes()));
    }
    client
}

#[test]
fn relay_chain_up_to_hop_count_limit_is_answered_rfc9915_7_6() {
    let mut s = server();
    let reply = s.send(&relayed_through(HOP_COUNT_LIMIT).solicit().ia_na(1, &[]));
    assert_eq!(reply.relays.len(), HOP_COUNT_LIMIT);
    for (depth, hop) in reply.relays.iter().enumerate() {
        let position = HOP_COUNT_LIMIT - 1 - depth;
        assert_eq!(usize::from(hop.hop_count), position);
        assert_eq!(
            hop.interface_id.as_deref(),
            Some(format!("hop-{position}").as_bytes())
        );
    }
    assert_eq!(reply.msg_type, MessageType::Advertise);
}

#[test]
fn relay_chain_deeper_than_hop_count_limit_is_discarded_rfc9915_7_6() {
    let mut s = server();
    let msg = relayed_through(HOP_COUNT_LIMIT + 1).solicit().ia_na(1, &[]);
    assert_eq!(s.drop_reason(&msg), DropReason::HopLimit);
    let msg = relayed_through(40).solicit().ia_na(1, &[]);
    assert_eq!(s.drop_reason(&msg), DropReason::HopLimit);
    assert!(s.events.is_empty());
}

#[test]
fn relay_source_port_sends_the_reply_to_that_port_rfc8357_5_2() {
    let mut s = server();
    let client = Client::new(1).via(Relay::new(ip("2001:db8:ffff:1::1")).source_port(10547));
    let reply = s.send(&client.solicit().ia_na(1, &[]));
    assert_eq!(
        reply.to,
        Destination::Relay {
            to_source_port: true
        }
    );
}

// ---- Reservations (RFC 9915 §18.3.2 "assign", RFC 6939) ----

#[test]
fn reservation_by_duid_gets_the_reserved_address_and_prefix() {
    let mut s = server();
    let client = Client::with_duid(&[0, 3, 0, 1, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);
    let advertise = s.send(&client.solicit().ia_na(1, &[]).ia_pd(2, &[]));
    assert_eq!(advertise.ia_na(1).address(), ip("2001:db8:1::100"));
    assert_eq!(advertise.ia_pd(2).prefix(), (ip("2001:db8:100:100::"), 56));
    let reply = s.send(&client.request(&s.duid()).ia_na(1, &[]).ia_pd(2, &[]));
    assert_eq!(reply.ia_na(1).address(), ip("2001:db8:1::100"));
    assert_eq!(reply.ia_pd(2).prefix(), (ip("2001:db8:100:100::"), 56));
    // The reservation is limited to access-1: on access-2 the client gets a dynamic address.
    s.link = Some(LinkId(1));
    let other = s.send(&client.solicit().ia_na(1, &[])).ia_na(1).address();
    assert!(in_prefix(other, LINK_2));
}

#[test]
fn reserved_address_is_not_handed_to_other_clients() {
    let config = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:03"
[[link]]
name = "small"
interfaces = ["eth1"]
[[link.pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:1::/126"
[[reservation]]
duid = "00:03:00:01:00:11:22:33:44:55"
address = "2001:db8:1::2"
"#;
    let mut s = Server::new(config);
    // Four addresses in the range, ::0 is the subnet-router anycast, ::2 is reserved.
    let mut handed = Vec::new();
    for n in 0..3 {
        let reply = s.send(&Client::new(n).request(&s.duid()).ia_na(1, &[]));
        if let Some(addr) = reply.ia_na(1).live_addrs().first() {
            handed.push(*addr);
        }
    }
    handed.sort();
    assert_eq!(handed, [ip("2001:db8:1::1"), ip("2001:db8:1::3")]);
    let reserved = Client::with_duid(&[0, 3, 0, 1, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);
    assert_eq!(s.bind_address(&reserved, 1), ip("2001:db8:1::2"));
}

#[test]
fn reservation_by_client_link_layer_address_from_the_relay_rfc6939() {
    let mut s = server();
    // A DUID-EN carries no link-layer address: only the relay's option can match.
    let duid = [0, 2, 0, 0, 0x30, 0x39, 1, 2, 3, 4];
    let relay =
        Relay::new(ip("2001:db8:ffff:1::1")).link_layer(1, &[0, 0x11, 0x22, 0x33, 0x44, 0x66]);
    let client = Client::with_duid(&duid).via(relay);
    let reply = s.send(&client.solicit().ia_na(1, &[]));
    assert_eq!(reply.ia_na(1).address(), ip("2001:db8:1::abcd"));
    assert_eq!(s.bind_address(&client, 1), ip("2001:db8:1::abcd"));
    // Without the relay's option the same DUID gets a dynamic address.
    let direct = Client::with_duid(&duid);
    let addr = s.send(&direct.solicit().ia_na(2, &[])).ia_na(2).address();
    assert_ne!(addr, ip("2001:db8:1::abcd"));
    // Another hardware type does not match.
    let relay =
        Relay::new(ip("2001:db8:ffff:1::1")).link_layer(6, &[0, 0x11, 0x22, 0x33, 0x44, 0x66]);
    let client = Client::with_duid(&duid).via(relay);
    let addr = s.send(&client.solicit().ia_na(3, &[])).ia_na(3).address();
    assert_ne!(addr, ip("2001:db8:1::abcd"));
}

#[test]
fn reservation_by_link_layer_address_inside_a_duid_ll_rfc9915_11_4() {
    let mut s = server();
    let client = Client::with_duid(&[0, 3, 0, 1, 0, 0x11, 0x22, 0x33, 0x44, 0x66]);
    assert_eq!(s.bind_address(&client, 1), ip("2001:db8:1::abcd"));
}

// ---- Expiry and events ----

#[test]
fn expiry_by_handle_timeout_emits_expired_and_frees_the_address() {
    let mut s = tiny();
    let first = Client::new(1);
    let addr = s.bind_address(&first, 1);
    let prefix = s.bind_prefix(&first, 2);
    s.take_events();
    s.advance(299);
    s.handle_timeout();
    assert!(s.events.is_empty());
    assert_eq!(s.engine.table().len(), 2);
    s.advance(1);
    s.handle_timeout();
    let events = s.take_events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().all(|event| event.kind == EventKind::Expired));
    assert!(events.iter().all(|event| event.at == s.now));
    assert!(s.engine.table().is_empty());
    assert!(
        s.engine
            .pool_usage()
            .iter()
            .all(|usage| usage.free == Some(1))
    );
    // Another client gets the address; the first client's late Renew finds no binding, and
    // no address to bind anew in the one-address pool: lifetimes 0.
    assert_eq!(s.bind_address(&Client::new(2), 1), addr);
    assert_eq!(s.bind_prefix(&Client::new(2), 2), prefix);
    let renew = s.send(&first.renew(&s.duid()).ia_na(1, &[addr]));
    assert_eq!(renew.ia_na(1).status_code(), StatusCode::NoAddrsAvail);
    assert_eq!(renew.ia_na(1).lifetimes_of(addr), Some((0, 0)));
}

#[test]
fn events_report_bound_renewed_released_and_declined() {
    let mut s = server();
    let client = Client::new(1);
    let addr = s.bind_address(&client, 1);
    let second = s.bind_address(&client, 2);
    s.advance(10);
    s.send(&client.renew(&s.duid()).ia_na(1, &[addr]));
    s.send(&client.release(&s.duid()).ia_na(1, &[addr]));
    s.send(&client.decline(&s.duid()).ia_na(2, &[second]));
    let events = s.take_events();
    let summary: Vec<_> = events
        .iter()
        .map(|event| (event.kind, event.record.lease.ip(), event.record.lease.iaid))
        .collect();
    assert_eq!(
        summary,
        [
            (EventKind::Bound, addr, 1),
            (EventKind::Bound, second, 2),
            (EventKind::Renewed, addr, 1),
            (EventKind::Released, addr, 1),
            (EventKind::Declined, second, 2),
        ]
    );
    assert!(
        events
            .iter()
            .all(|event| event.record.duid.as_bytes() == client.duid.as_slice())
    );
    assert_eq!(events[2].at, T0 + 10);
    assert_eq!(events[2].record.lease.expires, T0 + 10 + 300);
}

#[test]
fn restored_leases_are_renewed_and_block_other_clients() {
    let mut s = tiny();
    let client = Client::new(1);
    let addr = s.bind_address(&client, 1);
    let records: Vec<_> = s
        .take_events()
        .into_iter()
        .filter(|event| event.kind == EventKind::Bound)
        .map(|event| event.record)
        .collect();
    // A restarted server replays its journal.
    let mut restarted = Server::new(TINY);
    restarted.now = s.now;
    let report = restarted.engine.restore(records);
    assert_eq!(report.loaded, 1);
    let other = restarted.send(&Client::new(2).solicit().ia_na(1, &[]));
    assert_eq!(other.ia_na(1).status_code(), StatusCode::NoAddrsAvail);
    let renewed = restarted.send(&client.renew(&restarted.duid()).ia_na(1, &[addr]));
    assert_eq!(renewed.ia_na(1).address(), addr);
}

// ---- Rebind must not hand out what the allocator never hands out ----

#[test]
fn rebind_does_not_take_a_prefix_reserved_for_another_client_rfc9915_18_3_5() {
    let mut s = server();
    let reserved = (ip("2001:db8:100:100::"), 56);
    let intruder = Client::new(1);
    let reply = s.send(&intruder.rebind().ia_pd(1, &[reserved]));
    let ia = reply.ia_pd(1);
    assert_ne!(ia.prefix(), reserved, "a Rebind took a reserved prefix");
    let owner = Client::with_duid(&[0, 3, 0, 1, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);
    assert_eq!(s.bind_prefix(&owner, 1), reserved);
}

#[test]
fn rebind_foreign_extend_does_not_take_a_reserved_address_rfc9915_18_3_5() {
    let mut s = Server::new(&BASE.replace(
        "decline-probation = 600",
        "decline-probation = 600\nrebind-foreign = \"extend\"",
    ));
    let reserved = ip("2001:db8:1::100");
    let intruder = Client::new(1);
    let reply = s.send(&intruder.rebind().ia_na(1, &[reserved]));
    assert_eq!(reply.ia_na(1).lifetimes_of(reserved), Some((0, 0)));
    let owner = Client::with_duid(&[0, 3, 0, 1, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55]);
    assert_eq!(s.bind_address(&owner, 1), reserved);
}

#[test]
fn rebind_foreign_extend_does_not_take_the_subnet_router_anycast_address_rfc4291_2_6_1() {
    let mut s = Server::new(IDENTICAL_B);
    let anycast = ip("2001:db8:1::");
    let reply = s.send(&Client::new(1).rebind().ia_na(1, &[anycast]));
    let ia = reply.ia_na(1);
    assert_eq!(ia.lifetimes_of(anycast), Some((0, 0)));
    assert_ne!(ia.address(), anycast);
}

#[test]
fn release_of_a_delegated_prefix_frees_it_rfc9915_18_3_7() {
    let mut s = tiny();
    let first = Client::new(1);
    let prefix = s.bind_prefix(&first, 4);
    s.take_events();
    let reply = s.send(&first.release(&s.duid()).ia_pd(4, &[prefix]));
    assert_eq!(reply.status_code(), StatusCode::Success);
    assert_eq!(reply.ia_pd(4).status_code(), StatusCode::Success);
    assert!(reply.ia_pd(4).prefixes.is_empty());
    assert_eq!(s.take_event_kinds(), [EventKind::Released]);
    assert_eq!(s.bind_prefix(&Client::new(2), 4), prefix);
}

#[test]
fn rebind_in_identical_model_keeps_the_same_prefix_rfc6853_identical() {
    let mut a = Server::new(IDENTICAL_A);
    let mut b = Server::new(IDENTICAL_B);
    let client = Client::new(1);
    let prefix = a.bind_prefix(&client, 1);
    let reply = b.send(&client.rebind().ia_pd(1, &[prefix]));
    assert_eq!(reply.ia_pd(1).prefix(), prefix);
    assert_eq!(reply.ia_pd(1).prefixes.len(), 1);
}

#[test]
fn release_ignores_addresses_not_assigned_to_a_bound_ia_rfc9915_18_3_7() {
    let mut s = server();
    let client = Client::new(1);
    let addr = s.bind_address(&client, 1);
    s.take_events();
    let stray = ip("2001:db8:1::dead");
    let reply = s.send(&client.release(&s.duid()).ia_na(1, &[addr, stray]));
    assert_eq!(reply.status_code(), StatusCode::Success);
    assert_eq!(s.take_event_kinds(), [EventKind::Released]);
    // The IA was in a binding: "The server ignores addresses not assigned to the IAs";
    // NoBinding is only "for each IA ... for which the server has no binding information".
    assert_eq!(reply.ia_na(1).status_code(), StatusCode::Success);
    assert!(reply.ia_na(1).addrs.is_empty(), "{:?}", reply.ia_na);
}

#[test]
fn decline_ignores_addresses_not_assigned_to_a_bound_ia_rfc9915_18_3_8() {
    let mut s = server();
    let client = Client::new(1);
    let addr = s.bind_address(&client, 1);
    s.take_events();
    let stray = ip("2001:db8:1::dead");
    let reply = s.send(&client.decline(&s.duid()).ia_na(1, &[stray, addr]));
    assert_eq!(reply.status_code(), StatusCode::Success);
    assert_eq!(s.take_event_kinds(), [EventKind::Declined]);
    assert_eq!(reply.ia_na(1).status_code(), StatusCode::Success);
    assert!(reply.ia_na(1).addrs.is_empty(), "{:?}", reply.ia_na);
}

/// Two links, written in the order given.
fn two_links(first_is_access_1: bool) -> String {
    let access_1 = r#"
[[link]]
name = "access-1"
interfaces = ["eth1"]
[[link.pool]]
prefix = "2001:db8:1::/64"
[[link.pd-pool]]
prefix = "2001:db8:100::/48"
delegated-length = 56
"#;
    let access_2 = r#"
[[link]]
name = "access-2"
interfaces = ["eth2"]
[[link.pool]]
prefix = "2001:db8:2::/64"
[[link.pd-pool]]
prefix = "2001:db8:200::/48"
delegated-length = 56
"#;
    let (first, second) = if first_is_access_1 {
        (access_1, access_2)
    } else {
        (access_2, access_1)
    };
    format!(
        "[server]\nduid = \"00:01:00:01:2e:00:00:01:02:00:00:00:00:0a\"\nsalt = \"order\"\n{first}{second}"
    )
}

#[test]
fn reordered_links_give_every_client_the_same_address_and_prefix() {
    let mut before = Server::new(&two_links(true));
    let mut after = Server::new(&two_links(false));
    for name in ["access-1", "access-2"] {
        let (Some(old), Some(new)) = (
            before.engine.config().link_by_name(name),
            after.engine.config().link_by_name(name),
        ) else {
            panic!("link {name} not found");
        };
        // The link moved in the file, so its in-process handle changed; its name did not.
        assert_ne!(old, new);
        assert_eq!(after.engine.config().link(new).name, name);
        before.link = Some(old);
        after.link = Some(new);
        for n in 0..20 {
            let client = Client::new(n);
            assert_eq!(
                before.bind_address(&client, 1),
                after.bind_address(&client, 1),
                "client {n} on {name}"
            );
            assert_eq!(
                before.bind_prefix(&client, 2),
                after.bind_prefix(&client, 2),
                "client {n} on {name}"
            );
        }
    }
}

#[test]
fn two_client_ids_in_one_message_are_dropped_rfc9915_21_1() {
    let mut s = Server::new(BASE);
    let client = Client::new(90);
    let other = testing::duid_llt(91);
    let solicit = client.solicit().ia_na(1, &[]).option(1, &other);
    assert_eq!(s.drop_reason(&solicit), DropReason::DuplicateId);
    // The same message with one identity is answered.
    s.send(&client.solicit().ia_na(1, &[]));
}

#[test]
fn two_server_ids_in_one_message_are_dropped_rfc9915_21_1() {
    let mut s = Server::new(BASE);
    let client = Client::new(92);
    s.bind_na(&client, 1);
    let server = s.duid();
    // Ours first, then another server's: the message cannot be taken for ours.
    let renew = client
        .renew(&server)
        .ia_na(1, &[])
        .option(2, &testing::duid_llt(93));
    assert_eq!(s.drop_reason(&renew), DropReason::DuplicateId);
    let info = client
        .information_request()
        .server_id(&server)
        .option(2, &server);
    assert_eq!(s.drop_reason(&info), DropReason::DuplicateId);
}

#[test]
fn nine_ia_nas_in_one_solicit_all_get_an_answer_rfc9915_18_3_9() {
    let mut s = Server::new(BASE);
    let client = Client::new(94);
    let mut solicit = client.solicit();
    for iaid in 1..=9 {
        solicit = solicit.ia_na(iaid, &[]);
    }
    let solicit = solicit.ia_pd(1, &[]).ia_pd(2, &[]);
    let advertise = s.send(&solicit);
    assert_eq!(advertise.ia_na.len(), 9, "every IA_NA is answered");
    for iaid in 1..=8 {
        assert_eq!(advertise.ia_na(iaid).status_code(), StatusCode::Success);
        assert_eq!(advertise.ia_na(iaid).live_addrs().len(), 1);
    }
    let ninth = advertise.ia_na(9);
    assert_eq!(ninth.status_code(), StatusCode::NoAddrsAvail);
    assert!(ninth.live_addrs().is_empty());
    assert_eq!(advertise.ia_pd.len(), 2);
}

#[test]
fn ten_ia_nas_in_one_release_all_get_an_answer_rfc9915_18_3_7() {
    let mut s = Server::new(BASE);
    let client = Client::new(95);
    s.bind_na(&client, 1);
    let server = s.duid();
    let mut release = client.release(&server);
    for iaid in 1..=10 {
        release = release.ia_na(iaid, &[]);
    }
    let reply = s.send(&release);
    assert_eq!(reply.status_code(), StatusCode::Success);
    assert_eq!(reply.ia_na.len(), 10);
    for iaid in 9..=10 {
        assert_eq!(reply.ia_na(iaid).status_code(), StatusCode::NoBinding);
    }
}
