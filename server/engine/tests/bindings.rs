//! Conversation tests of what is a binding: an offer is none (Release, Decline), the Reply to
//! Release and Decline names every IA, Renew and Rebind extend only what this server's ranges
//! hand out, and may create a binding (`renew-creates-bindings`). Test names end in the
//! section they check.

use std::net::Ipv6Addr;

use xdhcp6_engine::config::Config;
use xdhcp6_engine::engine::OFFER_HOLD;
use xdhcp6_engine::proto::{MessageType, StatusCode};
use xdhcp6_engine::table::{EventKind, IaKind, LeaseRecord, LeaseState};
use xdhcp6_engine::testing::{Client, Server, ip};

const SPLIT_B: &str = include_str!("../../../examples/split-b.toml");
const IDENTICAL_B: &str = include_str!("../../../examples/identical-b.toml");

/// Two links with address and prefix pools, every range the whole pool.
const BASE: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:07"
salt = "bindings"
decline-probation = 600
t1 = 100
t2 = 160
preferred-lifetime = 200
valid-lifetime = 300

[[link]]
name = "access-1"
interfaces = ["eth1"]

[[link.pool]]
prefix = "2001:db8:1::/64"

[[link.pd-pool]]
prefix = "2001:db8:100::/48"
delegated-length = 56

[[link]]
name = "access-2"
interfaces = ["eth2"]

[[link.pool]]
prefix = "2001:db8:2::/64"
"#;

/// One link whose pools hold one address and one /56.
const TINY: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:08"
salt = "tiny"
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

fn server() -> Server {
    Server::new(BASE)
}

/// `BASE` with `renew-creates-bindings = false` in `[server]`.
fn without_renew_bindings(text: &str) -> String {
    text.replacen(
        "[server]\n",
        "[server]\nrenew-creates-bindings = false\n",
        1,
    )
}

fn in_prefix(addr: Ipv6Addr, prefix: &str) -> bool {
    let prefix: xdhcp6_engine::prefix::Prefix = match prefix.parse() {
        Ok(prefix) => prefix,
        Err(error) => panic!("bad prefix {prefix}: {error:?}"),
    };
    prefix.contains(addr)
}

/// The table's lease on `addr` (an address, or the first address of a delegated prefix).
fn lease_on(server: &Server, addr: Ipv6Addr, kind: IaKind) -> Option<LeaseRecord> {
    server.engine.table().lease_at(u128::from(addr), kind)
}

fn state_of(server: &Server, addr: Ipv6Addr, kind: IaKind) -> Option<LeaseState> {
    lease_on(server, addr, kind).map(|record| record.lease.state)
}

/// The bindings a server made so far, as its journal would replay them.
fn bound_records(server: &mut Server) -> Vec<LeaseRecord> {
    server
        .take_events()
        .into_iter()
        .filter(|event| matches!(event.kind, EventKind::Bound | EventKind::Renewed))
        .map(|event| event.record)
        .collect()
}

/// A server for `text` that restarted at `now` and replayed `records`.
fn restarted(text: &str, now: u32, records: Vec<LeaseRecord>) -> Server {
    let mut server = Server::new(text);
    server.now = now;
    let report = server.engine.restore(records);
    assert!(report.loaded > 0, "{report:?}");
    server
}

/// `BASE` with the ranges moved to the half of each pool that holds neither `addr` nor
/// `prefix`: the leases on them are still on the link, but no longer in this server's ranges.
fn shrunk(addr: Ipv6Addr, prefix: Ipv6Addr) -> String {
    let na = if in_prefix(addr, "2001:db8:1::/65") {
        "2001:db8:1:0:8000::/65"
    } else {
        "2001:db8:1::/65"
    };
    let pd = if in_prefix(prefix, "2001:db8:100::/49") {
        "2001:db8:100:8000::/49"
    } else {
        "2001:db8:100::/49"
    };
    BASE.replacen(
        "prefix = \"2001:db8:1::/64\"\n",
        &format!("prefix = \"2001:db8:1::/64\"\nrange = \"{na}\"\n"),
        1,
    )
    .replacen(
        "prefix = \"2001:db8:100::/48\"\n",
        &format!("prefix = \"2001:db8:100::/48\"\nrange = \"{pd}\"\n"),
        1,
    )
}

// ---- An offer is not a binding (RFC 9915 §18.3.7, §18.3.8) ----

#[test]
fn release_of_an_offered_only_address_gets_nobinding_and_keeps_the_offer_rfc9915_18_3_7() {
    let mut s = server();
    let client = Client::new(1);
    let advertise = s.send(&client.solicit().ia_na(1, &[]));
    let offered = advertise.ia_na(1).address();
    s.take_events();
    let reply = s.send(&client.release(&s.duid()).ia_na(1, &[offered]));
    assert_eq!(reply.msg_type, MessageType::Reply);
    assert_eq!(reply.status_code(), StatusCode::Success);
    assert_eq!(reply.ia_na(1).status_code(), StatusCode::NoBinding);
    assert!(s.events.is_empty(), "{:?}", s.events);
    assert_eq!(state_of(&s, offered, IaKind::Na), None);
    // The offer still stands: the Request binds the advertised address.
    let reply = s.send(&client.request(&s.duid()).ia_na(1, &[offered]));
    assert_eq!(reply.ia_na(1).address(), offered);
}

#[test]
fn release_of_an_offered_only_prefix_gets_nobinding_rfc9915_18_3_7() {
    let mut s = server();
    let client = Client::new(1);
    let advertise = s.send(&client.solicit().ia_pd(2, &[]));
    let offered = advertise.ia_pd(2).prefix();
    s.take_events();
    let reply = s.send(&client.release(&s.duid()).ia_pd(2, &[offered]));
    assert_eq!(reply.ia_pd(2).status_code(), StatusCode::NoBinding);
    assert!(s.events.is_empty(), "{:?}", s.events);
    assert_eq!(state_of(&s, offered.0, IaKind::Pd), None);
}

#[test]
fn decline_of_an_offered_only_address_gets_nobinding_and_no_probation_rfc9915_18_3_8() {
    let mut s = Server::new(TINY);
    let client = Client::new(1);
    let advertise = s.send(&client.solicit().ia_na(1, &[]));
    let offered = advertise.ia_na(1).address();
    s.take_events();
    let reply = s.send(&client.decline(&s.duid()).ia_na(1, &[offered]));
    assert_eq!(reply.status_code(), StatusCode::Success);
    assert_eq!(reply.ia_na(1).status_code(), StatusCode::NoBinding);
    assert!(s.events.is_empty(), "{:?}", s.events);
    assert_eq!(state_of(&s, offered, IaKind::Na), None);
    // Not in probation: the only address goes to another client.
    assert_eq!(s.bind_address(&Client::new(2), 1), offered);
}

// ---- Replies to Release and Decline name each IA (RFC 9915 §18.3.7, §18.3.8) ----

#[test]
fn reply_to_release_names_each_ia_with_its_status_rfc9915_18_3_7() {
    let mut s = server();
    let client = Client::new(1);
    let addr = s.bind_address(&client, 1);
    let prefix = s.bind_prefix(&client, 2);
    s.take_events();
    let msg = client
        .release(&s.duid())
        .ia_na(1, &[addr])
        .ia_pd(2, &[prefix])
        .ia_na(3, &[ip("2001:db8:1::99")]);
    let reply = s.send(&msg);
    assert_eq!(reply.status_code(), StatusCode::Success);
    assert_eq!(reply.ia_na.len(), 2, "{:?}", reply.ia_na);
    for ia in [reply.ia_na(1), reply.ia_pd(2)] {
        assert_eq!(ia.status_code(), StatusCode::Success, "{ia:?}");
        assert_eq!((ia.t1, ia.t2), (0, 0));
        assert!(ia.addrs.is_empty() && ia.prefixes.is_empty(), "{ia:?}");
    }
    let unknown = reply.ia_na(3);
    assert_eq!(unknown.status_code(), StatusCode::NoBinding);
    assert_eq!((unknown.t1, unknown.t2), (0, 0));
    assert!(unknown.addrs.is_empty());
    assert_eq!(
        s.take_event_kinds(),
        [EventKind::Released, EventKind::Released]
    );
}

#[test]
fn reply_to_decline_names_each_ia_with_its_status_rfc9915_18_3_8() {
    let mut s = server();
    let client = Client::new(1);
    let addr = s.bind_address(&client, 1);
    s.take_events();
    let msg = client
        .decline(&s.duid())
        .ia_na(1, &[addr])
        .ia_na(2, &[ip("2001:db8:1::98")]);
    let reply = s.send(&msg);
    assert_eq!(reply.status_code(), StatusCode::Success);
    let declined = reply.ia_na(1);
    assert_eq!(declined.status_code(), StatusCode::Success);
    assert_eq!((declined.t1, declined.t2), (0, 0));
    assert!(declined.addrs.is_empty());
    assert_eq!(reply.ia_na(2).status_code(), StatusCode::NoBinding);
    assert_eq!(s.take_event_kinds(), [EventKind::Declined]);
    assert_eq!(state_of(&s, addr, IaKind::Na), Some(LeaseState::Declined));
}

// ---- Leases outside the configured ranges (RFC 9915 §18.3.4, §18.3.5) ----

#[test]
fn renew_of_an_address_outside_the_shrunk_range_gets_zero_lifetimes_and_a_new_binding_rfc9915_18_3_4()
 {
    let mut s = server();
    let client = Client::new(1);
    let old = s.bind_address(&client, 1);
    let (old_prefix, len) = s.bind_prefix(&client, 2);
    let records = bound_records(&mut s);
    // The ranges move within the same pools; the server restarts and replays its journal.
    let text = shrunk(old, old_prefix);
    let mut s = restarted(&text, s.now + 10, records);
    let msg = client
        .renew(&s.duid())
        .ia_na(1, &[old])
        .ia_pd(2, &[(old_prefix, len)]);
    let reply = s.send(&msg);
    let ia = reply.ia_na(1);
    assert_eq!(ia.status_code(), StatusCode::Success);
    assert_eq!(ia.lifetimes_of(old), Some((0, 0)));
    let fresh = ia.address();
    assert_ne!(fresh, old);
    assert_eq!(ia.lifetimes_of(fresh), Some((200, 300)));
    let pd = reply.ia_pd(2);
    let zeroed: Vec<_> = pd
        .prefixes
        .iter()
        .filter(|prefix| prefix.valid == 0 && prefix.preferred == 0)
        .map(|prefix| prefix.prefix)
        .collect();
    assert_eq!(zeroed, [old_prefix]);
    let (fresh_prefix, _) = pd.prefix();
    assert_ne!(fresh_prefix, old_prefix);
    // The old bindings ended with the Reply; the new ones are in the table.
    assert!(lease_on(&s, old, IaKind::Na).is_none());
    assert!(lease_on(&s, old_prefix, IaKind::Pd).is_none());
    assert_eq!(state_of(&s, fresh, IaKind::Na), Some(LeaseState::Bound));
    assert_eq!(
        state_of(&s, fresh_prefix, IaKind::Pd),
        Some(LeaseState::Bound)
    );
    // The next Renew extends the new address.
    let again = s.send(&client.renew(&s.duid()).ia_na(1, &[fresh]));
    assert_eq!(again.ia_na(1).address(), fresh);
    assert!(again.ia_na(1).zeroed_addrs().is_empty());
}

#[test]
fn rebind_of_an_address_outside_the_shrunk_range_gets_zero_lifetimes_and_a_new_binding_rfc9915_18_3_5()
 {
    let mut s = server();
    let client = Client::new(1);
    let old = s.bind_address(&client, 1);
    let (old_prefix, _) = s.bind_prefix(&client, 2);
    let records = bound_records(&mut s);
    let mut s = restarted(&shrunk(old, old_prefix), s.now, records);
    let reply = s.send(&client.rebind().ia_na(1, &[old]));
    let ia = reply.ia_na(1);
    assert_eq!(ia.lifetimes_of(old), Some((0, 0)));
    assert_ne!(ia.address(), old);
    assert!(lease_on(&s, old, IaKind::Na).is_none());
}

#[test]
fn renew_of_an_address_outside_the_range_gets_zero_lifetimes_without_renew_creates_bindings_rfc9915_18_3_4()
 {
    let mut s = server();
    let client = Client::new(1);
    let old = s.bind_address(&client, 1);
    let records = bound_records(&mut s);
    let text = without_renew_bindings(&shrunk(old, ip("2001:db8:100::")));
    let mut s = restarted(&text, s.now, records);
    s.take_events();
    let reply = s.send(&client.renew(&s.duid()).ia_na(1, &[old]));
    let ia = reply.ia_na(1);
    assert_eq!(ia.lifetimes_of(old), Some((0, 0)));
    assert!(ia.live_addrs().is_empty(), "{ia:?}");
    assert_eq!(ia.status_code(), StatusCode::NoBinding);
    assert_eq!(s.take_event_kinds(), [EventKind::Released]);
}

#[test]
fn solicit_from_a_client_whose_lease_left_the_range_is_offered_a_new_address_rfc9915_18_3_1() {
    let mut s = server();
    let client = Client::new(1);
    let old = s.bind_address(&client, 1);
    let records = bound_records(&mut s);
    let text = shrunk(old, ip("2001:db8:100::"));
    let mut s = restarted(&text, s.now, records);
    let advertise = s.send(&client.solicit().ia_na(1, &[]));
    let offered = advertise.ia_na(1).address();
    assert_ne!(offered, old);
    let range = if in_prefix(old, "2001:db8:1::/65") {
        "2001:db8:1:0:8000::/65"
    } else {
        "2001:db8:1::/65"
    };
    assert!(in_prefix(offered, range), "{offered} not in {range}");
}

#[test]
fn split_server_does_not_renew_an_address_of_the_peers_half_rfc6853_split() {
    // B held an address of A's half for a client: taken over by a Rebind while B extended
    // foreign addresses. B now runs with `rebind-foreign = "zero"` and restarts.
    let extend = SPLIT_B.replace("rebind-foreign = \"zero\"", "rebind-foreign = \"extend\"");
    assert_ne!(extend, SPLIT_B);
    let mut b = Server::new(&extend);
    let client = Client::new(1);
    let foreign = ip("2001:db8:1::1234");
    let reply = b.send(&client.rebind().ia_na(1, &[foreign]));
    assert_eq!(reply.ia_na(1).address(), foreign);
    let records = bound_records(&mut b);
    let mut b = restarted(SPLIT_B, b.now, records);
    let reply = b.send(&client.renew(&b.duid()).ia_na(1, &[foreign]));
    let ia = reply.ia_na(1);
    assert_eq!(ia.lifetimes_of(foreign), Some((0, 0)));
    let fresh = ia.address();
    assert!(in_prefix(fresh, "2001:db8:1:0:8000::/65"), "{fresh}");
    assert!(lease_on(&b, foreign, IaKind::Na).is_none());
}

// ---- Renew and Rebind may create bindings (RFC 9915 §18.3.4, §18.3.5; RFC 7550) ----

#[test]
fn renew_adding_an_ia_na_gets_a_new_binding_rfc9915_18_3_4() {
    let mut s = server();
    let client = Client::new(1);
    let addr = s.bind_address(&client, 1);
    s.take_events();
    let reply = s.send(&client.renew(&s.duid()).ia_na(1, &[addr]).ia_na(2, &[]));
    assert_eq!(reply.ia_na(1).address(), addr);
    let added = reply.ia_na(2);
    assert_eq!(added.status_code(), StatusCode::Success);
    assert_eq!((added.t1, added.t2), (100, 160));
    let second = added.address();
    assert_ne!(second, addr);
    assert_eq!(state_of(&s, second, IaKind::Na), Some(LeaseState::Bound));
    assert_eq!(s.take_event_kinds(), [EventKind::Renewed, EventKind::Bound]);
}

#[test]
fn renew_adding_an_ia_pd_gets_a_delegated_prefix_rfc9915_18_3_4() {
    let mut s = server();
    let client = Client::new(1);
    let addr = s.bind_address(&client, 1);
    let reply = s.send(&client.renew(&s.duid()).ia_na(1, &[addr]).ia_pd(7, &[]));
    let (prefix, len) = reply.ia_pd(7).prefix();
    assert_eq!(len, 56);
    assert!(in_prefix(prefix, "2001:db8:100::/48"), "{prefix}");
    assert_eq!(state_of(&s, prefix, IaKind::Pd), Some(LeaseState::Bound));
}

#[test]
fn renew_after_the_lease_expired_binds_the_address_again_rfc9915_18_3_4() {
    let mut s = server();
    let client = Client::new(1);
    let addr = s.bind_address(&client, 1);
    s.advance(300);
    s.handle_timeout();
    assert!(s.engine.table().is_empty());
    s.take_events();
    let reply = s.send(&client.renew(&s.duid()).ia_na(1, &[addr]));
    let ia = reply.ia_na(1);
    assert_eq!(ia.status_code(), StatusCode::Success);
    assert_eq!(ia.address(), addr);
    assert_eq!(ia.lifetimes_of(addr), Some((200, 300)));
    assert_eq!(s.take_event_kinds(), [EventKind::Bound]);
}

#[test]
fn renew_of_an_offered_address_binds_it_rfc9915_18_3_4() {
    let mut s = server();
    let client = Client::new(1);
    let offered = s.send(&client.solicit().ia_na(1, &[])).ia_na(1).address();
    let reply = s.send(&client.renew(&s.duid()).ia_na(1, &[offered]));
    assert_eq!(reply.ia_na(1).address(), offered);
    assert_eq!(state_of(&s, offered, IaKind::Na), Some(LeaseState::Bound));
}

#[test]
fn renew_that_finds_nothing_to_assign_gets_noaddrsavail_rfc9915_18_3_4() {
    let mut s = Server::new(TINY);
    s.bind_address(&Client::new(1), 1);
    s.bind_prefix(&Client::new(1), 2);
    let late = Client::new(2);
    let msg = late.renew(&s.duid()).ia_na(1, &[]).ia_pd(2, &[]);
    let reply = s.send(&msg);
    assert_eq!(reply.ia_na(1).status_code(), StatusCode::NoAddrsAvail);
    assert_eq!(reply.ia_pd(2).status_code(), StatusCode::NoPrefixAvail);
}

#[test]
fn renew_without_renew_creates_bindings_gets_nobinding_rfc9915_18_3_4() {
    let mut s = Server::new(&without_renew_bindings(BASE));
    let client = Client::new(1);
    let addr = s.bind_address(&client, 1);
    s.take_events();
    let reply = s.send(&client.renew(&s.duid()).ia_na(1, &[addr]).ia_na(2, &[]));
    assert_eq!(reply.ia_na(1).address(), addr);
    let added = reply.ia_na(2);
    assert_eq!(added.status_code(), StatusCode::NoBinding);
    assert!(added.addrs.is_empty());
    assert_eq!(s.take_event_kinds(), [EventKind::Renewed]);
}

#[test]
fn rebind_without_renew_creates_bindings_gets_nobinding_rfc9915_18_3_5() {
    let mut b = Server::new(&without_renew_bindings(SPLIT_B));
    let client = Client::new(1);
    let foreign = ip("2001:db8:1::1234");
    let reply = b.send(&client.rebind().ia_na(1, &[foreign]).ia_na(2, &[]));
    let ia = reply.ia_na(1);
    assert_eq!(ia.lifetimes_of(foreign), Some((0, 0)));
    assert!(ia.live_addrs().is_empty(), "{ia:?}");
    assert_eq!(ia.status_code(), StatusCode::NoBinding);
    assert_eq!(reply.ia_na(2).status_code(), StatusCode::NoBinding);
    assert!(b.engine.table().is_empty());
}

#[test]
fn rebind_without_renew_creates_bindings_still_extends_an_appropriate_address_rfc9915_18_3_5() {
    // The identical-prefix model: B computes the address A gave, and may extend it.
    let mut b = Server::new(&without_renew_bindings(IDENTICAL_B));
    let client = Client::new(1);
    let addr = b.send(&client.solicit().ia_na(1, &[])).ia_na(1).address();
    b.advance(OFFER_HOLD);
    b.handle_timeout();
    assert!(b.engine.table().is_empty());
    let reply = b.send(&client.rebind().ia_na(1, &[addr]));
    assert_eq!(reply.ia_na(1).address(), addr);
    assert_eq!(state_of(&b, addr, IaKind::Na), Some(LeaseState::Bound));
}

#[test]
fn renew_creates_bindings_can_be_turned_off_per_link_rfc9915_18_3_4() {
    let text = BASE.replacen(
        "name = \"access-2\"\n",
        "name = \"access-2\"\nrenew-creates-bindings = false\n",
        1,
    );
    let mut s = Server::new(&text);
    let client = Client::new(1);
    let first = s.send(&client.renew(&s.duid()).ia_na(1, &[]));
    assert_eq!(first.ia_na(1).status_code(), StatusCode::Success);
    assert!(in_prefix(first.ia_na(1).address(), "2001:db8:1::/64"));
    s.link = s.engine.link_for_interface("eth2", None);
    let second = s.send(&client.renew(&s.duid()).ia_na(9, &[]));
    assert_eq!(second.ia_na(9).status_code(), StatusCode::NoBinding);
}

// ---- Configuration ----

fn load(text: &str) -> Config {
    match Config::from_toml_str(text, "bindings.toml") {
        Ok(config) => config,
        Err(error) => panic!("{error}"),
    }
}

#[test]
fn renew_creates_bindings_is_on_by_default_and_links_inherit_the_server_setting() {
    let config = load(BASE);
    assert!(config.server.renew_creates_bindings);
    assert!(config.links.iter().all(|link| link.renew_creates_bindings));
    let config = load(&without_renew_bindings(BASE));
    assert!(!config.server.renew_creates_bindings);
    assert!(config.links.iter().all(|link| !link.renew_creates_bindings));
}

#[test]
fn renew_creates_bindings_per_link_overrides_the_server_and_round_trips() {
    let text = without_renew_bindings(BASE).replacen(
        "name = \"access-2\"\n",
        "name = \"access-2\"\nrenew-creates-bindings = true\n",
        1,
    );
    let config = load(&text);
    assert!(!config.server.renew_creates_bindings);
    assert!(!config.links[0].renew_creates_bindings);
    assert!(config.links[1].renew_creates_bindings);
    let written = config.to_toml_string();
    assert!(
        written.contains("renew-creates-bindings = false"),
        "{written}"
    );
    let again = load(&written);
    assert_eq!(again, config, "{written}");
}

#[test]
fn renew_creates_bindings_must_be_a_boolean() {
    let text = BASE.replacen(
        "name = \"access-2\"\n",
        "name = \"access-2\"\nrenew-creates-bindings = \"yes\"\n",
        1,
    );
    let error = match Config::from_toml_str(&text, "bindings.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(error) => error,
    };
    assert_eq!(error.file(), "bindings.toml", "{error}");
    assert_eq!(error.field(), "link[1].renew-creates-bindings", "{error}");
}
