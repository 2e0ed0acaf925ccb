//! How a message arrives decides how it is answered: at a multicast or a unicast address
//! (RFC 9915 §16), through which relay and Interface-Id (§13.1), on which link (Preference per
//! link, §18.3.9), or from a link this server does not know (§18.3.1, §18.3.2, §18.3.9).
//! Test names end in the section they check.

use std::net::Ipv6Addr;

use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::prefix::Prefix;
use xdhcp6_engine::proto::{MessageType, StatusCode};
use xdhcp6_engine::testing::{self, Client, Relay, Server, T0, ip};
use xdhcp6_engine::{Arrival, Context, Destination, DropReason, Outcome};

/// Two links served directly and through relays; Preference 100 server-wide, 255 on `primary`.
const BASE: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:07"
preference = 100
salt = "arrival"

[[link]]
name = "primary"
interfaces = ["eth1"]
relay-prefixes = ["2001:db8:ffff:1::/64"]
preference = 255

[[link.pool]]
prefix = "2001:db8:1::/64"

[[link.pd-pool]]
prefix = "2001:db8:100::/48"
delegated-length = 56

[[link]]
name = "standby"
interfaces = ["eth2"]
relay-prefixes = ["2001:db8:ffff:2::/64"]

[[link.pool]]
prefix = "2001:db8:2::/64"
"#;

fn in_prefix(addr: Ipv6Addr, prefix: &str) -> bool {
    let prefix: Prefix = match prefix.parse() {
        Ok(prefix) => prefix,
        Err(error) => panic!("bad prefix {prefix}: {error:?}"),
    };
    prefix.contains(addr)
}

fn with_server_key(key: &str) -> String {
    BASE.replacen(
        "salt = \"arrival\"",
        &format!("salt = \"arrival\"\n{key}"),
        1,
    )
}

// ---- unicast destinations (RFC 9915 §16) ----

#[test]
fn unicast_solicit_confirm_rebind_information_request_are_discarded_rfc9915_16() {
    let mut s = Server::new(BASE);
    let client = Client::new(1);
    let address = s.bind_address(&client, 1);
    s.take_events();
    for msg in [
        client.solicit().ia_na(2, &[]),
        client.confirm().ia_na(1, &[address]),
        client.rebind().ia_na(1, &[address]),
        client.information_request(),
    ] {
        assert_eq!(
            s.handle_unicast(&msg).err(),
            Some(DropReason::Unicast),
            "{:?} sent unicast",
            msg.msg_type
        );
        // The same message sent to ff02::1:2 is answered.
        let reply = s.send(&msg);
        assert!(
            matches!(reply.msg_type, MessageType::Advertise | MessageType::Reply),
            "{:?}",
            msg.msg_type
        );
    }
}

#[test]
fn unicast_request_renew_release_decline_are_discarded_not_answered_use_multicast_rfc9915_16() {
    let mut s = Server::new(BASE);
    let client = Client::new(1);
    let (advertise, _) = s.bind_na(&client, 1);
    let address = advertise.ia_na(1).address();
    s.take_events();
    let duid = s.duid();
    // RFC 9915 obsoletes the Server Unicast option and the UseMulticast status: the server
    // never told a client to unicast, so it answers none of them, with UseMulticast or else.
    for msg in [
        client.request(&duid).ia_na(1, &[address]),
        client.renew(&duid).ia_na(1, &[address]),
        client.release(&duid).ia_na(1, &[address]),
        client.decline(&duid).ia_na(1, &[address]),
    ] {
        assert_eq!(
            s.handle_unicast(&msg).err(),
            Some(DropReason::Unicast),
            "{:?} sent unicast",
            msg.msg_type
        );
    }
    assert!(
        s.take_events().is_empty(),
        "a unicast message touched a lease"
    );
    // The binding is as it was: a Renew sent to ff02::1:2 extends it.
    let reply = s.send(&client.renew(&duid).ia_na(1, &[address]));
    assert_eq!(reply.ia_na(1).live_addrs(), [address]);
}

#[test]
fn relay_forward_sent_to_a_unicast_address_is_answered_rfc9915_16() {
    // Relay agents send to the server's unicast address; only a client's own message is
    // judged by its destination.
    let mut s = Server::new(BASE);
    let client = Client::new(1).via(Relay::new(ip("2001:db8:ffff:2::1")));
    let reply = s
        .handle_unicast(&client.solicit().ia_na(1, &[]))
        .expect("a unicast Relay-forward is answered");
    assert_eq!(reply.msg_type, MessageType::Advertise);
    assert!(in_prefix(reply.ia_na(1).address(), "2001:db8:2::/64"));
}

#[test]
fn arrival_follows_the_destination_address_rfc9915_16() {
    assert_eq!(Arrival::of(ip("ff02::1:2")), Arrival::Multicast);
    assert_eq!(Arrival::of(ip("ff05::1:3")), Arrival::Multicast);
    assert_eq!(Arrival::of(ip("fe80::1")), Arrival::Unicast);
    assert_eq!(Arrival::of(ip("2001:db8::547")), Arrival::Unicast);
}

// ---- link selection by both relay keys (RFC 9915 §13.1) ----

/// A CMTS that relays every cable bundle from one address, telling them apart by Interface-Id,
/// and a second CMTS whose bundles send the same Interface-Id values from other addresses.
const CMTS: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:08"
salt = "cmts"

[[link]]
name = "cmts-1-bundle-1"
relay-prefixes = ["2001:db8:ffff::1/128"]
interface-ids = ["bundle-1"]
[[link.pool]]
prefix = "2001:db8:1::/64"

[[link]]
name = "cmts-1-bundle-2"
relay-prefixes = ["2001:db8:ffff::1/128"]
interface-ids = ["bundle-2"]
[[link.pool]]
prefix = "2001:db8:2::/64"

[[link]]
name = "cmts-2-bundle-1"
relay-prefixes = ["2001:db8:ffff::2/128"]
interface-ids = ["bundle-1"]
[[link.pool]]
prefix = "2001:db8:3::/64"
"#;

fn advertised(s: &mut Server, relay: Relay) -> Result<Ipv6Addr, DropReason> {
    let client = Client::new(1).via(relay);
    s.handle(&client.solicit().ia_na(1, &[]))
        .map(|reply| reply.ia_na(1).address())
}

#[test]
fn links_behind_one_relay_address_are_told_apart_by_interface_id_rfc9915_13_1() {
    let mut s = Server::new(CMTS);
    let cmts_1 = || Relay::new(ip("2001:db8:ffff::1"));
    let addr = advertised(&mut s, cmts_1().interface_id(b"bundle-1")).unwrap();
    assert!(in_prefix(addr, "2001:db8:1::/64"), "{addr}");
    let addr = advertised(&mut s, cmts_1().interface_id(b"bundle-2")).unwrap();
    assert!(in_prefix(addr, "2001:db8:2::/64"), "{addr}");
    // The relay address alone names two links: no guess.
    assert_eq!(
        advertised(&mut s, cmts_1()).err(),
        Some(DropReason::UnknownLink)
    );
    assert_eq!(
        advertised(&mut s, cmts_1().interface_id(b"bundle-9")).err(),
        Some(DropReason::UnknownLink)
    );
}

#[test]
fn one_interface_id_from_two_relays_is_told_apart_by_link_address_rfc9915_13_1() {
    let mut s = Server::new(CMTS);
    let bundle_1 = |relay: &str| Relay::new(ip(relay)).interface_id(b"bundle-1");
    let addr = advertised(&mut s, bundle_1("2001:db8:ffff::1")).unwrap();
    assert!(in_prefix(addr, "2001:db8:1::/64"), "{addr}");
    let addr = advertised(&mut s, bundle_1("2001:db8:ffff::2")).unwrap();
    assert!(in_prefix(addr, "2001:db8:3::/64"), "{addr}");
    // The Interface-Id alone names two links, and the relay address none.
    assert_eq!(
        advertised(&mut s, bundle_1("2001:db8:ffff::3")).err(),
        Some(DropReason::UnknownLink)
    );
    // The Interface-Id that only one link lists still selects it from any relay.
    let addr = advertised(
        &mut s,
        Relay::new(ip("2001:db8:ffff::3")).interface_id(b"bundle-2"),
    )
    .unwrap();
    assert!(in_prefix(addr, "2001:db8:2::/64"), "{addr}");
}

#[test]
fn renew_through_the_same_relay_and_interface_id_keeps_its_link_rfc9915_13_1() {
    let mut s = Server::new(CMTS);
    let client = Client::new(7).via(Relay::new(ip("2001:db8:ffff::1")).interface_id(b"bundle-2"));
    let address = s.bind_address(&client, 1);
    assert!(in_prefix(address, "2001:db8:2::/64"), "{address}");
    let reply = s.send(&client.renew(&s.duid()).ia_na(1, &[address]));
    assert_eq!(reply.ia_na(1).live_addrs(), [address]);
    assert_eq!(
        reply.relays[0].interface_id.as_deref(),
        Some(&b"bundle-2"[..])
    );
}

// ---- Preference per link (RFC 9915 §18.3.9) ----

#[test]
fn advertise_carries_the_preference_of_the_clients_link_rfc9915_18_3_9() {
    let mut s = Server::new(BASE);
    // `primary` sets 255; `standby` takes the server's 100.
    let reply = s.send(&Client::new(1).solicit().ia_na(1, &[]));
    assert_eq!(reply.preference, Some(255));
    s.link = Some(LinkId(1));
    let reply = s.send(&Client::new(2).solicit().ia_na(1, &[]));
    assert_eq!(reply.preference, Some(100));
    // Relayed clients get their link's too.
    let relayed = Client::new(3).via(Relay::new(ip("2001:db8:ffff:1::1")));
    assert_eq!(
        s.send(&relayed.solicit().ia_na(1, &[])).preference,
        Some(255)
    );
    let relayed = Client::new(4).via(Relay::new(ip("2001:db8:ffff:2::1")));
    assert_eq!(
        s.send(&relayed.solicit().ia_na(1, &[])).preference,
        Some(100)
    );
}

#[test]
fn link_preference_zero_overrides_the_server_preference_rfc9915_18_3_9() {
    let text = BASE.replacen("preference = 255", "preference = 0", 1);
    let mut s = Server::new(&text);
    let reply = s.send(&Client::new(1).solicit().ia_na(1, &[]));
    assert_eq!(reply.preference, Some(0));
}

// ---- relayed clients on no known link (RFC 9915 §18.3.1, §18.3.2, §18.3.9) ----

fn unknown_relay() -> Relay {
    Relay::new(ip("2001:db8:eeee::1")).interface_id(b"nobody")
}

#[test]
fn relayed_solicit_from_an_unknown_link_is_dropped_by_default_rfc9915_18_3_1() {
    let mut s = Server::new(BASE);
    let client = Client::new(1).via(unknown_relay());
    assert_eq!(
        s.drop_reason(&client.solicit().ia_na(1, &[])),
        DropReason::UnknownLink
    );
    assert_eq!(
        s.drop_reason(&client.request(&s.duid()).ia_na(1, &[])),
        DropReason::UnknownLink
    );
}

#[test]
fn relayed_solicit_from_an_unknown_link_gets_no_addrs_avail_when_configured_rfc9915_18_3_9() {
    let mut s = Server::new(&with_server_key("unknown-link = \"no-addrs-avail\""));
    let client = Client::new(1).via(unknown_relay());
    let reply = s.send(&client.solicit().ia_na(1, &[]).ia_pd(2, &[]).rapid_commit());
    assert_eq!(reply.msg_type, MessageType::Advertise);
    assert_eq!(
        reply.to,
        Destination::Relay {
            to_source_port: false
        }
    );
    assert_eq!(reply.relays[0].link, ip("2001:db8:eeee::1"));
    assert_eq!(
        reply.relays[0].interface_id.as_deref(),
        Some(&b"nobody"[..])
    );
    assert_eq!(reply.server_id, Some(s.duid()));
    assert_eq!(reply.client_id, Some(client.duid.clone()));
    assert!(!reply.rapid_commit);
    let na = reply.ia_na(1);
    assert!(na.addrs.is_empty());
    assert_eq!(na.status_code(), StatusCode::NoAddrsAvail);
    let pd = reply.ia_pd(2);
    assert!(pd.prefixes.is_empty());
    assert_eq!(pd.status_code(), StatusCode::NoPrefixAvail);
    assert!(s.take_events().is_empty(), "nothing is offered");
}

#[test]
fn relayed_request_from_an_unknown_link_gets_no_addrs_avail_when_configured_rfc9915_18_3_2() {
    let mut s = Server::new(&with_server_key("unknown-link = \"no-addrs-avail\""));
    let client = Client::new(1).via(unknown_relay());
    let reply = s.send(
        &client
            .request(&s.duid())
            .ia_na(1, &[ip("2001:db8:1::5")])
            .ia_pd(2, &[]),
    );
    assert_eq!(reply.msg_type, MessageType::Reply);
    assert!(reply.ia_na(1).addrs.is_empty());
    assert_eq!(reply.ia_na(1).status_code(), StatusCode::NoAddrsAvail);
    assert_eq!(reply.ia_pd(2).status_code(), StatusCode::NoPrefixAvail);
    assert!(s.take_events().is_empty());
    // The discard rules of §16 still come first.
    assert_eq!(
        s.drop_reason(
            &client
                .request(&[0, 3, 0, 1, 1, 2, 3, 4, 5, 6])
                .ia_na(1, &[])
        ),
        DropReason::WrongServerId
    );
}

#[test]
fn other_messages_from_an_unknown_link_are_dropped_whatever_unknown_link_says_rfc9915_18_3_3() {
    let mut s = Server::new(&with_server_key("unknown-link = \"no-addrs-avail\""));
    let client = Client::new(1).via(unknown_relay());
    let duid = s.duid();
    let address = ip("2001:db8:1::5");
    for msg in [
        // §18.3.3: no Reply when the server knows nothing of the client's link.
        client.confirm().ia_na(1, &[address]),
        client.renew(&duid).ia_na(1, &[address]),
        client.rebind().ia_na(1, &[address]),
        client.release(&duid).ia_na(1, &[address]),
        client.decline(&duid).ia_na(1, &[address]),
        client.information_request(),
    ] {
        assert_eq!(
            s.handle(&msg).err(),
            Some(DropReason::UnknownLink),
            "{:?}",
            msg.msg_type
        );
    }
    // A direct client on an interface that serves no link is dropped too.
    s.link = None;
    assert_eq!(
        s.drop_reason(&Client::new(2).solicit().ia_na(1, &[])),
        DropReason::UnknownLink
    );
}

#[test]
fn outcome_says_when_an_unknown_link_was_answered_rfc9915_18_3_9() {
    let s = Server::new(&with_server_key("unknown-link = \"no-addrs-avail\""));
    let cx = Context {
        link: None,
        arrival: Arrival::Unicast,
        now: T0,
    };
    let mut reply = vec![0; testing::REPLY_BUF];
    let unknown = Client::new(1).via(unknown_relay()).solicit().ia_na(1, &[]);
    let outcome = s
        .engine
        .handle(&unknown.encode(), &cx, &mut reply, &mut Vec::new());
    assert!(
        matches!(
            outcome,
            Outcome::Reply {
                unknown_link: true,
                sent: MessageType::Advertise,
                ..
            }
        ),
        "{outcome:?}"
    );
    let known = Client::new(1)
        .via(Relay::new(ip("2001:db8:ffff:1::1")))
        .solicit()
        .ia_na(1, &[]);
    let outcome = s
        .engine
        .handle(&known.encode(), &cx, &mut reply, &mut Vec::new());
    assert!(
        matches!(
            outcome,
            Outcome::Reply {
                unknown_link: false,
                ..
            }
        ),
        "{outcome:?}"
    );
}
