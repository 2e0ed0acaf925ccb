//! Regression tests of state an attacker can create, each named after the attack: floods of
//! Solicits from random DUIDs, expiry that falls behind, and metrics scrapes that hold the
//! table.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use xdhcp6_engine::alloc::SaltKey;
use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::table::{
    DuidBuf, EventKind, EventSink, IaKind, Lease, LeaseEvent, LeaseRecord, LeaseState, LeaseTable,
    Lifetimes,
};
use xdhcp6_engine::testing::{Client, Server, T0, config};
use xdhcp6_engine::{Arrival, Context, Engine};

/// One link with an address pool and a small prefix pool.
const ONE_LINK: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:0c"
salt = "abuse"
expected-leases = 1000
t1 = 100
t2 = 160
preferred-lifetime = 200
valid-lifetime = 300

[[link]]
name = "access"
interfaces = ["eth1"]
rapid-commit = true

[[link.pool]]
prefix = "2001:db8:1::/64"

[[link.pd-pool]]
prefix = "2001:db8:100::/48"
delegated-length = 56
"#;

/// A DUID-EN made from `n`, as a flood of clients that never come back would send.
fn random_duid(n: u64) -> Vec<u8> {
    let mut duid = vec![0, 2, 0, 0, 0x7f, 0x01];
    duid.extend_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    duid
}

#[test]
fn solicit_flood_with_random_duids_leaves_the_table_empty() {
    let mut s = Server::new(ONE_LINK);
    let free_before: Vec<_> = s.engine.pool_usage().iter().map(|u| u.free).collect();
    for n in 0..5_000 {
        let client = Client::with_duid(&random_duid(n));
        let advertise = s.send(&client.solicit().ia_na(1, &[]).ia_pd(2, &[]));
        // Every one is answered with an address and a prefix...
        advertise.ia_na(1).address();
        advertise.ia_pd(2).prefix();
    }
    // ...and none of them costs the table an entry, the allocators a bit or the journal a
    // record.
    assert_eq!(s.engine.table().len(), 0);
    assert!(s.take_events().is_empty());
    let free_after: Vec<_> = s.engine.pool_usage().iter().map(|u| u.free).collect();
    assert_eq!(free_after, free_before);
}

#[test]
fn offer_expiry_is_not_journaled() {
    let mut s = Server::new(ONE_LINK);
    for n in 0..100 {
        let client = Client::with_duid(&random_duid(n));
        s.send(&client.solicit().ia_na(1, &[]).ia_pd(2, &[]));
    }
    s.advance(3600);
    s.handle_timeout();
    let expired = s
        .take_events()
        .into_iter()
        .filter(|event| event.kind == EventKind::Expired)
        .count();
    assert_eq!(expired, 0, "offers that were never journaled expired");
}

#[test]
fn request_after_a_solicit_flood_binds_the_advertised_address() {
    let mut s = Server::new(ONE_LINK);
    let client = Client::new(7);
    let advertise = s.send(&client.solicit().ia_na(1, &[]));
    let offered = advertise.ia_na(1).address();
    for n in 0..1_000 {
        s.send(&Client::with_duid(&random_duid(n)).solicit().ia_na(1, &[]));
    }
    let reply = s.send(&client.request(&s.duid()).ia_na(1, &[offered]));
    assert_eq!(reply.ia_na(1).address(), offered);
    assert_eq!(s.engine.table().len(), 1);
}

#[test]
fn leases_expire_within_a_second_of_their_end() {
    // Many leases ending over a few minutes, more in each second than a fixed sweep budget
    // reaches: every one must be gone once the clock passes its end.
    const LEASES: u32 = 60_000;
    const SPREAD: u32 = 60;
    let config = config(ONE_LINK);
    let table = Arc::new(LeaseTable::with_capacity(
        LEASES as usize,
        SaltKey::from_salt("abuse"),
    ));
    let mut s = Server::with_table(Arc::clone(&config), Arc::clone(&table));
    let records = (0..LEASES).map(|n| LeaseRecord {
        relay: None,
        reconfigure: false,
        duid: DuidBuf::new(&random_duid(u64::from(n))),
        lease: Lease {
            addr: 0x2001_0db8_0001_0000_0000_0000_0001_0000 + u128::from(n),
            prefix_len: 128,
            kind: IaKind::Na,
            iaid: 1,
            link: LinkId(0),
            state: LeaseState::Bound,
            lifetimes: Lifetimes {
                preferred: 100,
                valid: 200,
            },
            expires: T0 + 1 + n % SPREAD,
        },
    });
    assert_eq!(s.engine.restore(records).loaded, LEASES as usize);
    for second in 0..=SPREAD {
        s.handle_timeout();
        let ending = s.take_events();
        for event in &ending {
            assert_eq!(event.kind, EventKind::Expired);
            assert!(event.at <= event.record.lease.expires + 1, "{event:?}");
        }
        // Every lease whose end has come is gone: those left end later.
        let left = LEASES - LEASES / SPREAD * second.min(SPREAD);
        assert_eq!(table.len(), left as usize, "at second {second}");
        s.advance(1);
    }
    assert!(table.is_empty());
}

#[test]
fn scrape_counters_follow_every_change_of_a_binding() {
    let mut s = Server::new(ONE_LINK);
    let walk = |s: &Server| {
        let mut bound = [0u64; 2];
        for shard in 0..s.engine.table().shard_count() {
            s.engine.table().iter_shard(shard, |record| {
                if record.lease.state == LeaseState::Bound {
                    bound[usize::from(record.lease.kind == IaKind::Pd)] += 1;
                }
            });
        }
        bound
    };
    let counted = |s: &Server| {
        let usage = s.engine.pool_usage();
        [usage[0].bound, usage[1].bound]
    };
    let clients: Vec<_> = (0..20).map(Client::new).collect();
    for client in &clients {
        s.bind_address(client, 1);
        s.bind_prefix(client, 2);
    }
    assert_eq!(counted(&s), [20, 20]);
    for client in &clients[..5] {
        let addr = s.send(&client.solicit().ia_na(1, &[])).ia_na(1).address();
        s.send(&client.release(&s.duid()).ia_na(1, &[addr]));
    }
    for client in &clients[5..8] {
        let addr = s.send(&client.solicit().ia_na(1, &[])).ia_na(1).address();
        s.send(&client.decline(&s.duid()).ia_na(1, &[addr]));
    }
    s.advance(10);
    for client in &clients[8..] {
        let addr = s.send(&client.solicit().ia_na(1, &[])).ia_na(1).address();
        s.send(&client.renew(&s.duid()).ia_na(1, &[addr]));
    }
    assert_eq!(counted(&s), walk(&s));
    assert_eq!(counted(&s), [12, 20]);
    // The prefixes were not renewed: they run out first.
    s.advance(295);
    s.handle_timeout();
    assert_eq!(counted(&s), walk(&s));
    assert_eq!(counted(&s), [12, 0]);
    s.advance(3600);
    s.handle_timeout();
    assert_eq!(counted(&s), [0, 0]);
    assert_eq!(counted(&s), walk(&s));
}

/// Scrapes the pool usage from inside the engine's event path, where table locks are held.
struct ScrapingSink {
    engine: Arc<Engine>,
    bound: Vec<u64>,
}

impl EventSink for ScrapingSink {
    fn emit(&mut self, _event: LeaseEvent) {
        let usage = self.engine.pool_usage();
        self.bound = usage.iter().map(|pool| pool.bound).collect();
    }
}

#[test]
fn metrics_scrape_takes_no_table_lock() {
    // A scrape that walked the table under its shard locks stalled the workers for as long as
    // the walk took (0.8 s at 6.9M leases). One that takes no table lock at all can run even
    // while a lease changes: here from the event sink, where the table holds its locks.
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let config = config(ONE_LINK);
        let table = Arc::new(LeaseTable::with_capacity(64, SaltKey::from_salt("abuse")));
        let engine = Arc::new(Engine::new(config, table).expect("an engine"));
        let mut sink = ScrapingSink {
            engine: Arc::clone(&engine),
            bound: Vec::new(),
        };
        let request = Client::new(1)
            .solicit()
            .ia_na(1, &[])
            .rapid_commit()
            .encode();
        let cx = Context {
            link: engine.link_for_interface("eth1", None),
            arrival: Arrival::Multicast,
            now: T0,
        };
        let mut reply = [0u8; 1500];
        let _ = engine.handle(&request, &cx, &mut reply, &mut sink);
        let _ = done.send(sink.bound);
    });
    let bound = finished
        .recv_timeout(Duration::from_secs(20))
        .expect("the scrape waited for a table lock");
    assert_eq!(bound.len(), 2);
}
