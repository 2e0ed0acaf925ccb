//! A sequence of steps against one engine: DHCPv6 messages (direct, by multicast or unicast,
//! or relayed) and clock advances with the timer sweep. After every step the lease table must
//! be sound: no address or prefix held by two clients, every binding inside a range or
//! reservation of its link, the engine's binding counters equal to a walk of the table, the
//! server's and links' `max-leases` caps kept, and no delegated prefix declined.
//!
//! Input: steps until the bytes run out (at most [`MAX_STEPS`]). A step starts with a byte
//! `op`. `op & 3 == 0`: the next byte `n` advances the clock by `4 * n` seconds, then the
//! timer sweep runs. Otherwise a big-endian `u16` length and that many message bytes follow
//! (fewer where the input ends); `op & 3` picks the arrival context (1: the direct link,
//! 2: no direct link, as from a relay-facing interface, 3: the direct link from a global
//! source), bit 2 unicast arrival instead of multicast, bits 3-4 the sender's MAC and address.

#![no_main]

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use xdhcp6_engine::config::{ClientKey, Config, LinkId};
use xdhcp6_engine::prefix::Prefix;
use xdhcp6_engine::proto::Packet;
use xdhcp6_engine::table::{IaKind, LeaseEvent, LeaseRecord, LeaseState};
use xdhcp6_engine::testing::{REPLY_BUF, T0, config};
use xdhcp6_engine::{Arrival, Context, Engine, Outcome, Peer};

/// Steps at most per input, so that one input stays cheap.
const MAX_STEPS: usize = 64;

/// Tiny pools (7 addresses, 4 prefixes a link) so that exhaustion is reached, limits on, a
/// reservation, short lifetimes so that the sweep has work; Leasequery answered for the global
/// senders (ops 2 and 3) and refused for the link-local ones.
const CONFIG: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:0c"
salt = "fuzz"
decline-probation = 120
decline-limit = 2
t1 = 10
t2 = 16
preferred-lifetime = 20
valid-lifetime = 30
expected-leases = 64
max-leases = 14
relay-max-bindings = 6
relay-binding-rate = 2
relay-binding-burst = 4
mac-max-bindings = 4
mac-binding-rate = 2
mac-binding-burst = 4

[[link]]
name = "direct"
interfaces = ["eth0"]
rapid-commit = true
max-leases = 8
binding-rate = 4
binding-burst = 8

[[link.pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:1::/125"

[[link.pd-pool]]
prefix = "2001:db8:100::/48"
range = "2001:db8:100::/54"
delegated-length = 56

[[link]]
name = "relayed"

[[link.pool]]
prefix = "2001:db8:2::/64"
range = "2001:db8:2::/125"

[[link.pd-pool]]
prefix = "2001:db8:200::/48"
range = "2001:db8:200::/54"
delegated-length = 56

[[reservation]]
duid = "00:01:00:01:2e:00:00:00:02:00:00:00:00:01"
address = "2001:db8:1::100"
prefix = "2001:db8:100:ff00::/56"

[leasequery]
requestors = ["2001:db8:ffff::/112"]
"#;

fn shared_config() -> Arc<Config> {
    static CONFIG_CELL: OnceLock<Arc<Config>> = OnceLock::new();
    CONFIG_CELL.get_or_init(|| config(CONFIG)).clone()
}

fuzz_target!(|data: &[u8]| {
    let config = shared_config();
    let table = Arc::new(xdhcp6_engine::table::LeaseTable::with_shards(
        64,
        4,
        xdhcp6_engine::alloc::SaltKey::from_salt(&config.server.salt),
    ));
    let engine = Engine::new(config.clone(), table).expect("the fuzz configuration starts");
    let direct = engine.link_for_interface("eth0", None);
    let mut now = T0;
    let mut events: Vec<LeaseEvent> = Vec::new();
    let mut reply = vec![0u8; REPLY_BUF];
    let mut rest = data;
    for _ in 0..MAX_STEPS {
        let Some((&op, tail)) = rest.split_first() else {
            break;
        };
        rest = tail;
        if op & 3 == 0 {
            let Some((&n, tail)) = rest.split_first() else {
                break;
            };
            rest = tail;
            now += 4 * u32::from(n);
            engine.handle_timeout(now, &mut events);
        } else {
            let len = match rest {
                [hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])),
                _ => break,
            };
            rest = &rest[2..];
            let (message, tail) = rest.split_at(len.min(rest.len()));
            rest = tail;
            let who = (op >> 3) & 3;
            let cx = Context {
                link: if op & 3 == 2 { None } else { direct },
                arrival: if op & 4 != 0 {
                    Arrival::Unicast
                } else {
                    Arrival::Multicast
                },
                now,
            };
            let peer = Peer {
                address: Some(if op & 3 == 1 {
                    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(who) + 1)
                } else {
                    Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, u16::from(who) + 1)
                }),
                mac: (op & 3 != 2).then_some([2, 0, 0, 0, 0, who + 1]),
            };
            if let Outcome::Reply { len, .. } =
                engine.handle_from(message, &cx, peer, &mut reply, &mut events)
            {
                assert!(
                    len <= reply.len(),
                    "reply of {len} bytes in a {} buffer",
                    reply.len()
                );
                if let Err(error) = Packet::parse(&reply[..len]) {
                    panic!("the engine's reply does not parse: {error:?}");
                }
            }
        }
        events.clear();
        check_table(&engine, &config);
    }
});

/// The table invariants: one holder per address and prefix, bindings inside their link's
/// ranges or reservations, and counters equal to a walk.
fn check_table(engine: &Engine, config: &Config) {
    let table = engine.table();
    let mut leases: Vec<LeaseRecord> = Vec::new();
    for shard in 0..table.shard_count() {
        table.iter_shard(shard, |record| leases.push(record.clone()));
    }

    // Addresses: one holder each.
    let mut holders: HashMap<u128, &[u8]> = HashMap::new();
    for record in leases.iter().filter(|r| r.lease.kind == IaKind::Na) {
        if let Some(other) = holders.insert(record.lease.addr, record.duid.as_bytes()) {
            assert_eq!(
                other,
                record.duid.as_bytes(),
                "{} held by two clients",
                record.lease.ip()
            );
        }
    }
    // Prefixes: no two of different clients overlap.
    let prefixes: Vec<(Prefix, &LeaseRecord)> = leases
        .iter()
        .filter(|r| r.lease.kind == IaKind::Pd)
        .map(|r| (Prefix::containing(r.lease.ip(), r.lease.prefix_len), r))
        .collect();
    for (i, (a, ra)) in prefixes.iter().enumerate() {
        for (b, rb) in &prefixes[i + 1..] {
            assert!(
                !a.overlaps(b) || ra.duid.as_bytes() == rb.duid.as_bytes(),
                "{}/{} and {}/{} of two clients overlap",
                a.addr(),
                a.len(),
                b.addr(),
                b.len()
            );
        }
    }

    // Every binding inside a range or a reservation of its link; counters equal a walk.
    let mut bound = 0u64;
    let mut link_bound = vec![0u64; config.links.len()];
    let mut in_pools = 0u64;
    for record in leases.iter().filter(|r| r.lease.state == LeaseState::Bound) {
        let lease = &record.lease;
        bound += 1;
        link_bound[lease.link.index()] += 1;
        let link = config.link(lease.link);
        let prefix = Prefix::containing(lease.ip(), lease.prefix_len);
        let in_pool = match lease.kind {
            IaKind::Na => {
                lease.prefix_len == 128
                    && link.na_pools.iter().any(|p| p.range.contains(lease.ip()))
            }
            IaKind::Pd => link
                .pd_pools
                .iter()
                .any(|p| p.delegated_len == lease.prefix_len && p.range.covers(&prefix)),
        };
        in_pools += u64::from(in_pool);
        let reserved = config.reservations.iter().any(|r| {
            r.applies_to(lease.link)
                && matches!(&r.client, ClientKey::Duid(duid) if duid[..] == *record.duid.as_bytes())
                && match lease.kind {
                    IaKind::Na => r.address == Some(lease.ip()),
                    IaKind::Pd => r.prefix == Some(prefix),
                }
        });
        assert!(
            in_pool || reserved,
            "{}/{} bound on link {} lies in no range or reservation of it",
            lease.ip(),
            lease.prefix_len,
            link.name
        );
    }
    assert_eq!(
        engine.bound_leases(None),
        bound,
        "server-wide binding count"
    );
    for (index, count) in link_bound.iter().enumerate() {
        let link = LinkId(u16::try_from(index).expect("few links"));
        assert_eq!(
            engine.bound_leases(Some(link)),
            *count,
            "binding count of link {index}"
        );
    }
    let usage: u64 = engine.pool_usage().iter().map(|pool| pool.bound).sum();
    assert_eq!(usage, in_pools, "pool binding counters");
}
