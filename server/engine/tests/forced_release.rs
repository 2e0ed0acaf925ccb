//! `Engine::release_lease`, the operator's forced release: the lease goes as a client's
//! Release would take it, with the same event, pool counters and allocator state.

use xdhcp6_engine::proto::{MessageType, StatusCode};
use xdhcp6_engine::table::{EventKind, IaKind};
use xdhcp6_engine::testing::{Client, Server};

const ONE_EACH: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:0a"
salt = "forced"
t1 = 100
t2 = 160
preferred-lifetime = 200
valid-lifetime = 300
decline-probation = 600
renew-creates-bindings = false

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

fn bound(s: &Server, kind: IaKind) -> u64 {
    s.engine
        .pool_usage()
        .iter()
        .filter(|pool| pool.kind == kind)
        .map(|pool| pool.bound)
        .sum()
}

#[test]
fn a_forced_release_ends_the_binding_as_a_release_would() {
    let mut s = Server::new(ONE_EACH);
    let client = Client::new(1);
    let address = s.bind_address(&client, 1);
    let (prefix, len) = s.bind_prefix(&client, 2);
    s.take_events();
    assert_eq!(bound(&s, IaKind::Na), 1);
    assert_eq!(bound(&s, IaKind::Pd), 1);

    let released = s
        .engine
        .release_lease(u128::from(address), IaKind::Na, s.now, &mut s.events)
        .expect("the address is bound");
    assert_eq!(released.lease.ip(), address);
    assert_eq!(released.lease.iaid, 1);
    assert_eq!(released.duid.as_bytes(), client.duid.as_slice());
    let events = s.take_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, EventKind::Released);
    assert_eq!(events[0].record, released);
    assert_eq!(bound(&s, IaKind::Na), 0);
    assert!(
        s.engine
            .table()
            .lease_at(u128::from(address), IaKind::Na)
            .is_none()
    );

    // A second forced release finds nothing, and emits nothing.
    assert!(
        s.engine
            .release_lease(u128::from(address), IaKind::Na, s.now, &mut s.events)
            .is_none()
    );
    assert!(s.events.is_empty());

    // RFC 9915 §18.3.4: the client's Renew of the released address finds no binding.
    let renew = s.send(&client.renew(&s.duid()).ia_na(1, &[address]));
    assert_eq!(renew.msg_type, MessageType::Reply);
    assert_eq!(renew.ia_na(1).status_code(), StatusCode::NoBinding);

    // A prefix goes the same way, and its unit is free for another client.
    s.take_events();
    let gone = s
        .engine
        .release_lease(u128::from(prefix), IaKind::Pd, s.now, &mut s.events)
        .expect("the prefix is bound");
    assert_eq!(gone.lease.prefix_len, len);
    assert_eq!(s.take_event_kinds(), [EventKind::Released]);
    assert_eq!(bound(&s, IaKind::Pd), 0);
    let other = Client::new(2);
    assert_eq!(s.bind_prefix(&other, 2), (prefix, len));
}

#[test]
fn a_declined_address_is_not_released() {
    let mut s = Server::new(ONE_EACH);
    let client = Client::new(1);
    let address = s.bind_address(&client, 1);
    s.send(&client.decline(&s.duid()).ia_na(1, &[address]));
    s.take_events();
    assert!(
        s.engine
            .release_lease(u128::from(address), IaKind::Na, s.now, &mut s.events)
            .is_none()
    );
    assert!(s.events.is_empty());
}
