//! Conversation tests of prefix delegation and pool shapes: prefix-length hints over several
//! PD pools (RFC 8168), prefix hints (RFC 9915 §18.2.1), PD pools inside the on-link prefix,
//! and pools of one or a few addresses (RFC 4291 §2.6.1, RFC 5453).

use std::net::Ipv6Addr;

use xdhcp6_engine::prefix::Prefix;
use xdhcp6_engine::proto::{MessageType, StatusCode};
use xdhcp6_engine::testing::{Client, Server, ip};

/// One link, an address pool and three PD pools of different lengths, in this order: /56,
/// /60, /48.
const LENGTHS: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:21"
salt = "delegation"
t1 = 100
t2 = 160
preferred-lifetime = 200
valid-lifetime = 300

[[link]]
name = "access"
interfaces = ["eth1"]

[[link.pool]]
prefix = "2001:db8:1::/64"

[[link.pd-pool]]
prefix = "2001:db8:100::/40"
delegated-length = 56

[[link.pd-pool]]
prefix = "2001:db8:200::/40"
range = "2001:db8:200::/41"
delegated-length = 60

[[link.pd-pool]]
prefix = "2001:db8:300::/40"
delegated-length = 48
"#;

/// PD pools of one /56 and one /48, and a big /60 pool listed first.
const SCARCE: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:22"
salt = "scarce"

[[link]]
name = "access"
interfaces = ["eth1"]

[[link.pd-pool]]
prefix = "2001:db8:200::/40"
delegated-length = 60

[[link.pd-pool]]
prefix = "2001:db8:100::/48"
range = "2001:db8:100::/56"
delegated-length = 56

[[link.pd-pool]]
prefix = "2001:db8:300::/40"
range = "2001:db8:300::/48"
delegated-length = 48
"#;

/// /80s delegated from the upper half of the link's /64, addresses from the lower half.
const ON_LINK: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:23"
salt = "on-link"
rebind-foreign = "extend"

[[link]]
name = "access"
interfaces = ["eth1"]

[[link.pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:1::/66"

[[link.pd-pool]]
prefix = "2001:db8:1:0:8000::/65"
delegated-length = 80
inside-on-link = true
"#;

fn prefix(text: &str) -> Prefix {
    match text.parse() {
        Ok(prefix) => prefix,
        Err(error) => panic!("bad prefix {text}: {error:?}"),
    }
}

fn inside(delegated: (Ipv6Addr, u8), aggregate: &str) -> bool {
    prefix(aggregate).covers(&Prefix::containing(delegated.0, delegated.1))
}

/// Solicit with one IA_PD carrying `hints`; the prefix advertised.
fn advertised(server: &mut Server, client: &Client, hints: &[(Ipv6Addr, u8)]) -> (Ipv6Addr, u8) {
    let advertise = server.send(&client.solicit().ia_pd(1, hints));
    assert_eq!(advertise.msg_type, MessageType::Advertise);
    advertise.ia_pd(1).prefix()
}

/// Solicit then Request with one IA_PD carrying `hints`; the prefix bound.
fn bound(server: &mut Server, client: &Client, hints: &[(Ipv6Addr, u8)]) -> (Ipv6Addr, u8) {
    let offered = advertised(server, client, hints);
    let reply = server.send(&client.request(&server.duid()).ia_pd(1, &[offered]));
    assert_eq!(reply.msg_type, MessageType::Reply);
    let prefix = reply.ia_pd(1).prefix();
    assert_eq!(prefix, offered);
    prefix
}

// ---- Prefix-length hints over several PD pools (RFC 8168 §3.1) ----

#[test]
fn length_hint_gets_a_prefix_of_that_length_rfc8168_3_1() {
    let mut s = Server::new(LENGTHS);
    let unspecified = Ipv6Addr::UNSPECIFIED;
    // No hint: the pools in configuration order.
    let plain = bound(&mut s, &Client::new(1), &[]);
    assert_eq!(plain.1, 56);
    assert!(inside(plain, "2001:db8:100::/40"));
    // A hint of each configured length gets that length, from that pool (and this server's
    // slice of it).
    let sixty = bound(&mut s, &Client::new(2), &[(unspecified, 60)]);
    assert_eq!(sixty.1, 60);
    assert!(inside(sixty, "2001:db8:200::/41"));
    let forty_eight = bound(&mut s, &Client::new(3), &[(unspecified, 48)]);
    assert_eq!(forty_eight.1, 48);
    assert!(inside(forty_eight, "2001:db8:300::/40"));
    let fifty_six = bound(&mut s, &Client::new(4), &[(unspecified, 56)]);
    assert_eq!(fifty_six.1, 56);
}

#[test]
fn length_hint_without_a_pool_of_that_length_gets_the_closest_shorter_prefix_rfc8168_3_1() {
    let mut s = Server::new(LENGTHS);
    // /52: no such pool; /48 is the closest shorter length (bigger prefix).
    let got = advertised(&mut s, &Client::new(1), &[(Ipv6Addr::UNSPECIFIED, 52)]);
    assert_eq!(got.1, 48);
    // /64: /60 is the closest shorter one.
    let got = advertised(&mut s, &Client::new(2), &[(Ipv6Addr::UNSPECIFIED, 64)]);
    assert_eq!(got.1, 60);
}

#[test]
fn length_hint_shorter_than_every_pool_gets_the_closest_longer_prefix_rfc8168_3_1() {
    let mut s = Server::new(LENGTHS);
    // /44: nothing that long or shorter; any available, the closest length first.
    let got = advertised(&mut s, &Client::new(1), &[(Ipv6Addr::UNSPECIFIED, 44)]);
    assert_eq!(got.1, 48);
}

#[test]
fn exhausted_length_falls_back_to_shorter_then_any_rfc8168_3_1() {
    let mut s = Server::new(SCARCE);
    let hint = [(Ipv6Addr::UNSPECIFIED, 56)];
    // The only /56, then the only /48 (shorter), then a /60 (any).
    assert_eq!(
        bound(&mut s, &Client::new(1), &hint),
        (ip("2001:db8:100::"), 56)
    );
    assert_eq!(
        bound(&mut s, &Client::new(2), &hint),
        (ip("2001:db8:300::"), 48)
    );
    let any = bound(&mut s, &Client::new(3), &hint);
    assert_eq!(any.1, 60);
    assert!(inside(any, "2001:db8:200::/40"));
}

#[test]
fn client_with_a_binding_keeps_it_whatever_it_hints_rfc8168_3_1() {
    let mut s = Server::new(LENGTHS);
    let client = Client::new(7);
    let held = bound(&mut s, &client, &[(Ipv6Addr::UNSPECIFIED, 60)]);
    assert_eq!(held.1, 60);
    // A later Solicit (say after a reboot) with another length hint: the binding stays.
    assert_eq!(
        advertised(&mut s, &client, &[(Ipv6Addr::UNSPECIFIED, 48)]),
        held
    );
    // Renew of the prefix with lifetimes: extended as it is.
    let reply = s.send(&client.renew(&s.duid()).ia_pd(1, &[held]));
    assert_eq!(reply.ia_pd(1).prefix(), held);
}

#[test]
fn rebind_without_binding_gets_a_prefix_of_the_listed_length_rfc9915_18_3_5() {
    let mut s = Server::new(LENGTHS);
    let client = Client::new(8);
    // A /60 of an aggregate this server does not serve: back with lifetimes 0, and a fresh
    // binding of the length the client had.
    let foreign = (ip("2001:db8:ff00:10::"), 60);
    let reply = s.send(&client.rebind().ia_pd(1, &[foreign]));
    let ia = reply.ia_pd(1);
    let fresh = ia.prefix();
    assert_eq!(fresh.1, 60);
    assert!(inside(fresh, "2001:db8:200::/41"));
    assert!(
        ia.prefixes
            .iter()
            .any(|p| (p.prefix, p.len) == foreign && p.valid == 0)
    );
}

// ---- Prefix hints (RFC 9915 §18.2.1) ----

#[test]
fn prefix_hint_of_a_free_prefix_in_this_slice_is_delegated_rfc9915_18_2_1() {
    let mut s = Server::new(LENGTHS);
    let wanted = (ip("2001:db8:200:1230::"), 60);
    assert_eq!(bound(&mut s, &Client::new(1), &[wanted]), wanted);
    // Taken now: the next client asking for it gets another /60.
    let other = bound(&mut s, &Client::new(2), &[wanted]);
    assert_ne!(other, wanted);
    assert_eq!(other.1, 60);
    // A /60 of the other server's half of the aggregate is that server's: only the length
    // counts.
    let foreign = (ip("2001:db8:280::"), 60);
    let got = bound(&mut s, &Client::new(3), &[foreign]);
    assert_ne!(got, foreign);
    assert!(inside(got, "2001:db8:200::/41"));
    // A prefix of the right pool but the wrong length: the length wins, the prefix is ignored.
    let misaligned = (ip("2001:db8:200:1240::"), 56);
    let got = bound(&mut s, &Client::new(4), &[misaligned]);
    assert_eq!(got.1, 56);
    assert!(inside(got, "2001:db8:100::/40"));
}

#[test]
fn identical_servers_pick_the_same_prefix_for_the_same_client_and_hint() {
    // The identical-prefix model of RFC 6853: two servers with the same file and salt, each
    // with its own table, agree for every hint.
    let mut a = Server::new(LENGTHS);
    let mut b = Server::new(LENGTHS);
    for (n, len) in [(1, 56), (2, 60), (3, 48), (4, 52), (5, 64), (6, 44)] {
        let client = Client::new(n);
        let hint = [(Ipv6Addr::UNSPECIFIED, len)];
        let from_a = bound(&mut a, &client, &hint);
        assert_eq!(bound(&mut b, &client, &hint), from_a, "hint /{len}");
    }
    assert_eq!(
        advertised(&mut a, &Client::new(2), &[(Ipv6Addr::UNSPECIFIED, 60)]).1,
        60
    );
}

// ---- PD pools inside the on-link prefix ----

#[test]
fn pd_pool_inside_the_on_link_prefix_delegates_from_it() {
    let mut s = Server::new(ON_LINK);
    let delegated = bound(&mut s, &Client::new(1), &[]);
    assert_eq!(delegated.1, 80);
    assert!(inside(delegated, "2001:db8:1:0:8000::/65"));
    let addr = s.bind_address(&Client::new(2), 1);
    assert!(prefix("2001:db8:1::/66").contains(addr));
}

#[test]
fn address_inside_delegated_space_is_not_on_link_rfc9915_18_3_2() {
    let mut s = Server::new(ON_LINK);
    let client = Client::new(3);
    // A Request for an address in the delegated half: that space is not for addresses.
    let wanted = ip("2001:db8:1:0:8000::1234");
    let reply = s.send(&client.request(&s.duid()).ia_na(1, &[wanted]));
    assert_eq!(reply.ia_na(1).status_code(), StatusCode::NotOnLink);
    // Nor does a Rebind take it, even with rebind-foreign = "extend".
    let reply = s.send(&client.rebind().ia_na(1, &[wanted]));
    let ia = reply.ia_na(1);
    assert_eq!(ia.lifetimes_of(wanted), Some((0, 0)));
    assert!(prefix("2001:db8:1::/66").contains(ia.address()));
}

#[test]
fn confirm_of_an_address_inside_delegated_space_gets_not_on_link_rfc9915_18_3_3() {
    let mut s = Server::new(ON_LINK);
    let client = Client::new(4);
    let reply = s.send(&client.confirm().ia_na(1, &[ip("2001:db8:1::1234")]));
    assert_eq!(reply.status_code(), StatusCode::Success);
    let reply = s.send(&client.confirm().ia_na(1, &[ip("2001:db8:1:0:8000::1234")]));
    assert_eq!(reply.status_code(), StatusCode::NotOnLink);
}

#[test]
fn prefix_holding_the_subnet_router_anycast_address_is_not_delegated_rfc4291_2_6_1() {
    // The lower half of the /64 is delegated in /66s: the one holding 2001:db8:1:: (the
    // subnet-router anycast address) stays with the link, one /66 is left.
    let config = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:24"

[[link]]
name = "access"
interfaces = ["eth1"]

[[link.pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:1:0:8000::/65"

[[link.pd-pool]]
prefix = "2001:db8:1::/65"
delegated-length = 66
inside-on-link = true
"#;
    let mut s = Server::new(config);
    assert_eq!(
        bound(&mut s, &Client::new(1), &[]),
        (ip("2001:db8:1:0:4000::"), 66)
    );
    let advertise = s.send(&Client::new(2).solicit().ia_pd(1, &[]));
    assert_eq!(advertise.ia_pd(1).status_code(), StatusCode::NoPrefixAvail);
    // Asked for by name, it is still not given.
    let advertise = s.send(
        &Client::new(3)
            .solicit()
            .ia_pd(1, &[(ip("2001:db8:1::"), 66)]),
    );
    assert_eq!(advertise.ia_pd(1).status_code(), StatusCode::NoPrefixAvail);
}

// ---- Pools of one or a few addresses (RFC 4291 §2.6.1, RFC 5453) ----

#[test]
fn single_address_pool_assigns_its_address_rfc4291_2_6_1() {
    let config = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:25"

[[link]]
name = "access"
interfaces = ["eth1"]

[[link.pool]]
prefix = "2001:db8::5/128"
"#;
    let mut s = Server::new(config);
    assert_eq!(s.bind_address(&Client::new(1), 1), ip("2001:db8::5"));
    let advertise = s.send(&Client::new(2).solicit().ia_na(1, &[]));
    assert_eq!(advertise.ia_na(1).status_code(), StatusCode::NoAddrsAvail);
}

#[test]
fn tiny_pool_assigns_every_address_rfc4291_2_6_1() {
    // Only the subnet-router anycast address of the link's /64 is excluded: a /126 pool that
    // does not start the /64 has four addresses to give.
    let config = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:26"

[[link]]
name = "access"
interfaces = ["eth1"]

[[link.pool]]
prefix = "2001:db8::104/126"
"#;
    let mut s = Server::new(config);
    let mut got: Vec<Ipv6Addr> = (1..=4)
        .map(|n| s.bind_address(&Client::new(n), 1))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ip("2001:db8::104"),
            ip("2001:db8::105"),
            ip("2001:db8::106"),
            ip("2001:db8::107")
        ]
    );
}

#[test]
fn reserved_interface_identifiers_are_never_assigned_rfc5453() {
    // A pool at the top of the /64: the upper half are reserved subnet anycast identifiers
    // (RFC 2526), whatever the pool's length.
    let config = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:27"

[[link]]
name = "access"
interfaces = ["eth1"]

[[link.pool]]
prefix = "2001:db8::fdff:ffff:ffff:ff7e/127"
range = "2001:db8::fdff:ffff:ffff:ff7e/127"

[[link.pool]]
prefix = "2001:db8::fdff:ffff:ffff:ff80/126"
"#;
    let mut s = Server::new(config);
    let first = s.bind_address(&Client::new(1), 1);
    let second = s.bind_address(&Client::new(2), 1);
    let mut got = [first, second];
    got.sort();
    assert_eq!(
        got,
        [
            ip("2001:db8::fdff:ffff:ffff:ff7e"),
            ip("2001:db8::fdff:ffff:ffff:ff7f")
        ]
    );
    let advertise = s.send(&Client::new(3).solicit().ia_na(1, &[]));
    assert_eq!(advertise.ia_na(1).status_code(), StatusCode::NoAddrsAvail);
}
