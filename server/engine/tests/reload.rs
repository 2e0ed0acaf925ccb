//! A configuration reload: a new engine over the same lease table (`Engine::reloaded`, with
//! the links aligned by `Config::aligned_to`). Links keep their ids, a link taken out keeps its
//! leases until they expire and gets them back when it returns, a shrunk range moves its
//! clients on their next Renew, and unchanged pools keep their state.

use std::sync::Arc;

use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::proto::{OptionCode, StatusCode};
use xdhcp6_engine::table::{EventKind, IaKind, LeaseState};
use xdhcp6_engine::testing::{Client, Server};

/// Two links with address and prefix pools.
const BASE: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:07"
salt = "reload"
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

[link.options]
dns-servers = ["2001:db8::53"]

[[link]]
name = "access-2"
interfaces = ["eth2"]

[[link.pool]]
prefix = "2001:db8:2::/64"
"#;

/// `BASE` with the links in the other order, a third link in front, and another DNS server.
const REORDERED: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:07"
salt = "reload"
t1 = 100
t2 = 160
preferred-lifetime = 200
valid-lifetime = 300

[[link]]
name = "access-3"
interfaces = ["eth3"]

[[link.pool]]
prefix = "2001:db8:3::/64"

[[link]]
name = "access-2"
interfaces = ["eth2"]

[[link.pool]]
prefix = "2001:db8:2::/64"

[[link]]
name = "access-1"
interfaces = ["eth1"]

[[link.pool]]
prefix = "2001:db8:1::/64"

[[link.pd-pool]]
prefix = "2001:db8:100::/48"
delegated-length = 56

[link.options]
dns-servers = ["2001:db8::5353"]
"#;

/// `BASE` without link `access-2`.
fn without_access_2() -> String {
    let cut = BASE
        .find("[[link]]\nname = \"access-2\"")
        .expect("access-2 in BASE");
    BASE[..cut].to_owned()
}

fn on(server: &mut Server, link: &str) {
    server.link = server.engine.config().link_by_name(link);
    assert!(server.link.is_some(), "no link {link}");
}

#[test]
fn links_keep_their_ids_and_leases_across_a_reordering_reload() {
    let mut s = Server::new(BASE);
    let client = Client::new(1);
    on(&mut s, "access-2");
    let address = s.bind_address(&client, 1);
    let before = s.engine.table().lease_at(u128::from(address), IaKind::Na);
    assert_eq!(before.map(|r| r.lease.link), Some(LinkId(1)));

    s.reload(REORDERED);
    let config = s.engine.config();
    assert_eq!(config.link_by_name("access-1"), Some(LinkId(0)));
    assert_eq!(config.link_by_name("access-2"), Some(LinkId(1)));
    assert_eq!(config.link_by_name("access-3"), Some(LinkId(2)));
    assert_eq!(config.link_for_interface("eth3", None), Some(LinkId(2)));

    // The client's Renew on eth2 still finds its binding.
    on(&mut s, "access-2");
    s.advance(100);
    let reply = s.send(&client.renew(&s.duid()).ia_na(1, &[address]));
    let ia = reply.ia_na(1);
    assert_eq!(ia.status_code(), StatusCode::Success);
    assert_eq!(ia.live_addrs(), [address]);
    assert!(ia.zeroed_addrs().is_empty());

    // The new option value is what access-1 clients now get.
    on(&mut s, "access-1");
    let info = s.send(
        &Client::new(2)
            .information_request()
            .oro(&[OptionCode::DnsServers]),
    );
    assert_eq!(
        info.dns_servers(),
        ["2001:db8::5353".parse::<std::net::Ipv6Addr>().unwrap()]
    );
}

#[test]
fn a_link_taken_out_keeps_its_leases_until_they_expire_and_gets_them_back_when_it_returns() {
    let mut s = Server::new(BASE);
    on(&mut s, "access-2");
    let first = Client::new(1);
    let second = Client::new(2);
    let kept = s.bind_address(&first, 1);
    let ends = s.bind_address(&second, 1);
    s.take_events();

    s.reload(&without_access_2());
    let retired = s.engine.config().link(LinkId(1));
    assert!(retired.retired);
    assert_eq!(retired.name, "access-2");
    assert_eq!(s.engine.config().link_for_interface("eth2", None), None);
    // The leases are still there, on the retired link.
    for address in [kept, ends] {
        let record = s.engine.table().lease_at(u128::from(address), IaKind::Na);
        assert_eq!(record.map(|r| r.lease.link), Some(LinkId(1)));
    }
    // Nothing selects the link: a client there is not served.
    s.link = None;
    s.advance(50);
    assert!(s.handle(&first.renew(&s.duid()).ia_na(1, &[kept])).is_err());

    // The link returns before the leases end: its id and its leases with it.
    s.reload(BASE);
    on(&mut s, "access-2");
    assert_eq!(s.link, Some(LinkId(1)));
    assert!(!s.engine.config().link(LinkId(1)).retired);
    let reply = s.send(&first.renew(&s.duid()).ia_na(1, &[kept]));
    assert_eq!(reply.ia_na(1).live_addrs(), [kept]);
    s.take_events();

    // Taken out again: the lease nobody renewed expires on the timer.
    s.reload(&without_access_2());
    s.advance(260);
    s.handle_timeout();
    let expired: Vec<_> = s
        .take_events()
        .into_iter()
        .filter(|event| event.kind == EventKind::Expired)
        .map(|event| (event.record.lease.addr, event.record.lease.link))
        .collect();
    assert_eq!(expired, [(u128::from(ends), LinkId(1))]);
    assert!(
        s.engine
            .table()
            .lease_at(u128::from(ends), IaKind::Na)
            .is_none()
    );
    assert!(
        s.engine
            .table()
            .lease_at(u128::from(kept), IaKind::Na)
            .is_some()
    );
}

/// `BASE` with `access-1`'s address range cut to the half of its pool without `address`.
fn shrunk(address: std::net::Ipv6Addr) -> String {
    let prefix: xdhcp6_engine::prefix::Prefix = "2001:db8:1::/65".parse().unwrap();
    let range = if prefix.contains(address) {
        "2001:db8:1:0:8000::/65"
    } else {
        "2001:db8:1::/65"
    };
    BASE.replacen(
        "prefix = \"2001:db8:1::/64\"\n",
        &format!("prefix = \"2001:db8:1::/64\"\nrange = \"{range}\"\n"),
        1,
    )
}

#[test]
fn renew_after_a_reload_that_shrank_the_range_gets_zero_lifetimes_and_a_new_binding_rfc9915_18_3_4()
{
    let mut s = Server::new(BASE);
    let client = Client::new(1);
    let old = s.bind_address(&client, 1);
    s.reload(&shrunk(old));
    s.advance(100);
    let reply = s.send(&client.renew(&s.duid()).ia_na(1, &[old]));
    let ia = reply.ia_na(1);
    assert_eq!(ia.status_code(), StatusCode::Success);
    // RFC 9915 §18.3.4: an address not appropriate for the link is returned with lifetimes 0.
    assert_eq!(ia.lifetimes_of(old), Some((0, 0)));
    let fresh = ia.address();
    assert_ne!(fresh, old);
    assert_eq!(ia.lifetimes_of(fresh), Some((200, 300)));
    assert!(
        s.engine
            .table()
            .lease_at(u128::from(old), IaKind::Na)
            .is_none()
    );
    let record = s.engine.table().lease_at(u128::from(fresh), IaKind::Na);
    assert_eq!(record.map(|r| r.lease.state), Some(LeaseState::Bound));
    // The new range's pool counts the new binding, and the old unit is not in it.
    let usage = s.engine.pool_usage();
    let na = usage
        .iter()
        .find(|pool| pool.link == "access-1" && pool.kind == IaKind::Na)
        .unwrap();
    assert!(na.range.contains(fresh));
    assert!(!na.range.contains(old));
    assert_eq!(na.bound, 1);
}

#[test]
fn unchanged_pools_keep_their_counts_and_see_claims_of_the_engine_they_replace() {
    let mut s = Server::new(BASE);
    for n in 0..5 {
        s.bind_address(&Client::new(n), 1);
    }
    on(&mut s, "access-2");
    s.bind_address(&Client::new(10), 1);
    let before = s.engine.pool_usage();
    let old = Arc::clone(&s.engine);

    // Another option value: every pool is the same.
    s.reload(&BASE.replace("2001:db8::53", "2001:db8::54"));
    assert_eq!(s.engine.pool_usage(), before);
    assert_eq!(s.engine.bound_leases(None), 6);
    assert_eq!(s.engine.bound_leases(Some(LinkId(1))), 1);

    // A worker still on the old engine binds one more: the new engine counts it.
    let mut late = Server::new(BASE);
    late.engine = old;
    late.now = s.now;
    late.bind_address(&Client::new(20), 1);
    let after = s.engine.pool_usage();
    let na = |usage: &[xdhcp6_engine::engine::PoolUsage]| {
        usage
            .iter()
            .find(|pool| pool.link == "access-1" && pool.kind == IaKind::Na)
            .map(|pool| pool.bound)
    };
    assert_eq!(na(&before), Some(5));
    assert_eq!(na(&after), Some(6));
    assert_eq!(s.engine.bound_leases(None), 7);
}

#[test]
fn a_changed_pool_is_counted_from_the_table() {
    let mut s = Server::new(BASE);
    let mut bound = Vec::new();
    for n in 0..8 {
        bound.push(s.bind_address(&Client::new(n), 1));
    }
    // Cut the range to the half holding the first address: the leases inside it count.
    let first = bound[0];
    let half: xdhcp6_engine::prefix::Prefix = if "2001:db8:1::/65"
        .parse::<xdhcp6_engine::prefix::Prefix>()
        .unwrap()
        .contains(first)
    {
        "2001:db8:1::/65".parse().unwrap()
    } else {
        "2001:db8:1:0:8000::/65".parse().unwrap()
    };
    let text = BASE.replacen(
        "prefix = \"2001:db8:1::/64\"\n",
        &format!("prefix = \"2001:db8:1::/64\"\nrange = \"{half}\"\n"),
        1,
    );
    s.reload(&text);
    let inside = bound
        .iter()
        .filter(|address| half.contains(**address))
        .count() as u64;
    let usage = s.engine.pool_usage();
    let na = usage
        .iter()
        .find(|pool| pool.link == "access-1" && pool.kind == IaKind::Na)
        .unwrap();
    assert_eq!(na.range, half);
    assert_eq!(na.bound, inside);
    // Every lease still counts for the server and its link, wherever its range went.
    assert_eq!(s.engine.bound_leases(Some(LinkId(0))), 8);
}

#[test]
fn a_reload_that_moves_a_link_is_refused_by_the_engine() {
    let s = Server::new(BASE);
    // Not aligned: access-2 first.
    let swapped = xdhcp6_engine::config::Config::from_toml_str(REORDERED, "r.toml").unwrap();
    let error = s.engine.reloaded(Arc::new(swapped)).unwrap_err();
    assert!(error.to_string().contains("access-1"), "{error}");
}

#[test]
fn a_changed_pool_sees_claims_and_releases_of_the_engine_it_replaces() {
    // A range small enough for an occupancy bitmap.
    let small = BASE.replacen(
        "prefix = \"2001:db8:1::/64\"\n",
        "prefix = \"2001:db8:1::/64\"\nrange = \"2001:db8:1::/108\"\n",
        1,
    );
    let mut s = Server::new(&small);
    s.bind_address(&Client::new(1), 1);
    let free = |s: &Server| {
        s.engine
            .pool_usage()
            .into_iter()
            .find(|pool| pool.link == "access-1" && pool.kind == IaKind::Na)
            .and_then(|pool| pool.free)
            .unwrap()
    };
    let old = Arc::clone(&s.engine);
    // A reservation inside the range changes the pool (its reserved units).
    let reserved = format!(
        "{small}\n[[reservation]]\nduid = \"00:03:00:01:02:00:00:00:00:99\"\n\
         address = \"2001:db8:1::fff\"\n"
    );
    s.reload(&reserved);
    let after_reload = free(&s);

    // A worker still on the old engine binds a client, then releases it.
    let mut late = Server::new(&small);
    late.engine = old;
    late.now = s.now;
    let client = Client::new(30);
    let address = late.bind_address(&client, 1);
    assert_eq!(
        free(&s),
        after_reload - 1,
        "the new bitmap misses {address}"
    );
    let release = client.release(&late.duid()).ia_na(1, &[address]);
    late.send(&release);
    assert_eq!(free(&s), after_reload);
}
