//! Simulations and property tests: many clients against one engine or a pair of engines on a
//! virtual clock, checking after every step that no address or prefix is bound to two clients,
//! that every address is inside the server's range, and that replies agree with the table.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::Ipv6Addr;

use proptest::prelude::*;
use xdhcp6_engine::prefix::Prefix;
use xdhcp6_engine::proto::{MessageType, StatusCode};
use xdhcp6_engine::table::{IaKind, LeaseState};

use xdhcp6_engine::testing::{self, Client, ReplyView, Server};

/// One link, a small NA range and a small PD range so that clients compete for addresses.
const SMALL: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:01"
salt = "simulation"
decline-probation = 40
expected-leases = 4096
t1 = 10
t2 = 16
preferred-lifetime = 20
valid-lifetime = 30

[[link]]
name = "access-1"
interfaces = ["eth1"]

[[link.pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:1::/123"

[[link.pd-pool]]
prefix = "2001:db8:100::/48"
range = "2001:db8:100::/60"
delegated-length = 64
"#;

/// The split pair, on a /120 so that the halves are small and fill up.
const SPLIT: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:01:02:00:00:00:00:0PART"
salt = "example-split"
decline-probation = 40
t1 = 10
t2 = 16
preferred-lifetime = 20
valid-lifetime = 30

[[link]]
name = "access-1"
interfaces = ["eth1"]

[[link.pool]]
prefix = "2001:db8:1::/120"
split = "PART/2"

[[link.pd-pool]]
prefix = "2001:db8:100::/56"
delegated-length = 64
split = "PART/2"
"#;

fn split_server(part: u32) -> Server {
    Server::new(&SPLIT.replace("PART", &part.to_string()))
}

fn prefix(text: &str) -> Prefix {
    match text.parse() {
        Ok(prefix) => prefix,
        Err(error) => panic!("bad prefix {text}: {error:?}"),
    }
}

/// What a client does next.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// Solicit then Request (IA_NA and IA_PD), or Solicit with Rapid Commit semantics off.
    Bind,
    /// Solicit only (an offer that is never taken up).
    Solicit,
    Renew,
    Rebind,
    Release,
    Decline,
    /// Rebind listing the address and prefix that client `n` holds (a lying client).
    Steal(u64),
    /// Move the clock forward by this many seconds and run the timer sweep.
    Wait(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Bind),
        1 => Just(Op::Solicit),
        2 => Just(Op::Renew),
        2 => Just(Op::Rebind),
        1 => Just(Op::Release),
        1 => Just(Op::Decline),
        2 => (0u64..24).prop_map(Op::Steal),
        2 => (1u32..50).prop_map(Op::Wait),
    ]
}

/// What clients believe they hold: the binding ledger the invariants are checked against.
#[derive(Default)]
struct Ledger {
    /// Address or prefix (with kind) to (client, valid until).
    held: HashMap<(IaKind, u128), (u64, u32)>,
    /// Per client and kind, what it last got.
    of_client: HashMap<(u64, IaKind), u128>,
}

impl Ledger {
    /// Records that `client` holds `addr` until `until`; fails if another client still does.
    fn bind(
        &mut self,
        kind: IaKind,
        addr: u128,
        client: u64,
        now: u32,
        until: u32,
    ) -> Result<(), String> {
        if let Some(&(other, other_until)) = self.held.get(&(kind, addr))
            && other != client
            && now < other_until
        {
            return Err(format!(
                "{kind:?} {} bound to client {client} while client {other} holds it until \
                 {other_until} (now {now})",
                Ipv6Addr::from(addr)
            ));
        }
        if let Some(old) = self.of_client.insert((client, kind), addr)
            && old != addr
        {
            self.held.remove(&(kind, old));
        }
        self.held.insert((kind, addr), (client, until));
        Ok(())
    }

    /// The client gives up what it holds of `kind`.
    fn drop_client(&mut self, client: u64, kind: IaKind) -> Option<u128> {
        let addr = self.of_client.remove(&(client, kind))?;
        if self
            .held
            .get(&(kind, addr))
            .is_some_and(|(holder, _)| *holder == client)
        {
            self.held.remove(&(kind, addr));
        }
        Some(addr)
    }

    fn holding(&self, client: u64, kind: IaKind) -> Option<u128> {
        self.of_client.get(&(client, kind)).copied()
    }
}

/// Checks one reply against the ledger and the table and records what it binds.
fn absorb(
    server: &Server,
    ledger: &mut Ledger,
    client: u64,
    duid: &[u8],
    reply: &ReplyView,
    ranges: (Prefix, Prefix),
) -> Result<Vec<(IaKind, u128)>, String> {
    let mut bound = Vec::new();
    if reply.msg_type != MessageType::Reply {
        return Ok(bound);
    }
    let now = server.now;
    for ia in &reply.ia_na {
        let live = ia.live_addrs();
        if live.len() > 1 {
            return Err(format!("IA_NA with several live addresses: {ia:?}"));
        }
        match live.first() {
            Some(addr) => {
                check_lease(server, IaKind::Na, u128::from(*addr), duid, ranges.0)?;
                let valid = ia.lifetimes_of(*addr).map_or(0, |(_, valid)| valid);
                ledger.bind(IaKind::Na, u128::from(*addr), client, now, now + valid)?;
                bound.push((IaKind::Na, u128::from(*addr)));
            }
            None => {
                ledger.drop_client(client, IaKind::Na);
            }
        }
    }
    for ia in &reply.ia_pd {
        let live: Vec<_> = ia.prefixes.iter().filter(|p| p.valid > 0).collect();
        if live.len() > 1 {
            return Err(format!("IA_PD with several live prefixes: {ia:?}"));
        }
        match live.first() {
            Some(view) => {
                let bits = u128::from(view.prefix);
                check_lease(server, IaKind::Pd, bits, duid, ranges.1)?;
                ledger.bind(IaKind::Pd, bits, client, now, now + view.valid)?;
                bound.push((IaKind::Pd, bits));
            }
            None => {
                ledger.drop_client(client, IaKind::Pd);
            }
        }
    }
    Ok(bound)
}

/// The table holds `addr` bound to `duid`, inside `range`.
fn check_lease(
    server: &Server,
    kind: IaKind,
    addr: u128,
    duid: &[u8],
    range: Prefix,
) -> Result<(), String> {
    let ip = Ipv6Addr::from(addr);
    if !range.contains(ip) {
        return Err(format!(
            "{kind:?} {ip} is outside the owned range {range:?}"
        ));
    }
    let Some(record) = server.engine.table().lease_at(addr, kind) else {
        return Err(format!(
            "{kind:?} {ip} was handed out but is not in the table"
        ));
    };
    if record.duid.as_bytes() != duid || record.lease.state != LeaseState::Bound {
        return Err(format!(
            "{kind:?} {ip}: reply and table disagree: {record:?}"
        ));
    }
    Ok(())
}

/// Runs `ops` (client index, op) against one server; what replies bind goes to `handed`.
fn run_ops(
    server: &mut Server,
    ledger: &mut Ledger,
    ops: &[(u64, Op)],
    ranges: (Prefix, Prefix),
    handed: &mut Vec<(IaKind, u128)>,
) -> Result<(), String> {
    let duid = server.duid();
    for &(n, op) in ops {
        let client = Client::new(n);
        let reply = match op {
            Op::Wait(seconds) => {
                server.advance(seconds);
                server.handle_timeout();
                None
            }
            Op::Solicit => {
                let advertise = server.send(&client.solicit().ia_na(1, &[]).ia_pd(2, &[]));
                for addr in advertise.ia_na(1).live_addrs() {
                    if !ranges.0.contains(addr) {
                        return Err(format!("offer {addr} outside the range"));
                    }
                }
                None
            }
            Op::Bind => {
                server.send(&client.solicit().ia_na(1, &[]).ia_pd(2, &[]));
                Some(server.send(&client.request(&duid).ia_na(1, &[]).ia_pd(2, &[])))
            }
            Op::Renew | Op::Rebind => {
                let addrs: Vec<Ipv6Addr> = ledger
                    .holding(n, IaKind::Na)
                    .map(Ipv6Addr::from)
                    .into_iter()
                    .collect();
                let prefixes: Vec<(Ipv6Addr, u8)> = ledger
                    .holding(n, IaKind::Pd)
                    .map(|bits| (Ipv6Addr::from(bits), 64))
                    .into_iter()
                    .collect();
                let msg = if matches!(op, Op::Renew) {
                    client.renew(&duid)
                } else {
                    client.rebind()
                };
                Some(server.send(&msg.ia_na(1, &addrs).ia_pd(2, &prefixes)))
            }
            Op::Steal(victim) => {
                let addrs: Vec<Ipv6Addr> = ledger
                    .holding(victim, IaKind::Na)
                    .map(Ipv6Addr::from)
                    .into_iter()
                    .collect();
                let prefixes: Vec<(Ipv6Addr, u8)> = ledger
                    .holding(victim, IaKind::Pd)
                    .map(|bits| (Ipv6Addr::from(bits), 64))
                    .into_iter()
                    .collect();
                Some(server.send(&client.rebind().ia_na(1, &addrs).ia_pd(2, &prefixes)))
            }
            Op::Release | Op::Decline => {
                let addrs: Vec<Ipv6Addr> = ledger
                    .drop_client(n, IaKind::Na)
                    .map(Ipv6Addr::from)
                    .into_iter()
                    .collect();
                let msg = if matches!(op, Op::Release) {
                    client.release(&duid)
                } else {
                    client.decline(&duid)
                };
                let reply = server.send(&msg.ia_na(1, &addrs));
                if reply.status_code() != StatusCode::Success {
                    return Err(format!("{op:?} got {:?}", reply.status));
                }
                None
            }
        };
        if let Some(reply) = reply {
            handed.extend(absorb(server, ledger, n, &client.duid, &reply, ranges)?);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        // Integration tests have no lib.rs for proptest to put regressions next to.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random operation sequences of up to 24 clients over a 32-address range and 16 /64s:
    /// no address or prefix is ever bound to two clients at once.
    #[test]
    fn no_address_or_prefix_is_bound_to_two_clients(
        ops in prop::collection::vec((0u64..24, op()), 1..300)
    ) {
        let mut server = Server::new(SMALL);
        let mut ledger = Ledger::default();
        let ranges = (prefix("2001:db8:1::/123"), prefix("2001:db8:100::/60"));
        let result = run_ops(&mut server, &mut ledger, &ops, ranges, &mut Vec::new());
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }

    /// A split pair serving the same clients (Solicit, Request, Renew, Rebind, Release,
    /// Decline going to either server at random): neither ever hands out an address or prefix
    /// of the other's slice, so no address is ever handed out by both.
    #[test]
    fn split_pair_never_hands_out_the_same_address(
        ops in prop::collection::vec((0u64..40, op(), any::<bool>()), 1..300)
    ) {
        let mut servers = [split_server(1), split_server(2)];
        let ranges = [
            (prefix("2001:db8:1::/121"), prefix("2001:db8:100::/57")),
            (prefix("2001:db8:1::80/121"), prefix("2001:db8:100:80::/57")),
        ];
        // One ledger across both servers: a client holds what it was last told by either.
        let mut ledger = Ledger::default();
        let mut handed: [Vec<(IaKind, u128)>; 2] = Default::default();
        for (n, op, to_b) in ops {
            let which = usize::from(to_b);
            if let Op::Wait(seconds) = op {
                for server in &mut servers {
                    server.advance(seconds);
                    server.handle_timeout();
                }
                continue;
            }
            let result = run_ops(
                &mut servers[which],
                &mut ledger,
                &[(n, op)],
                ranges[which],
                &mut handed[which],
            );
            prop_assert!(result.is_ok(), "server {}: {}", which, result.unwrap_err());
        }
        for key in &handed[0] {
            prop_assert!(!handed[1].contains(key), "both servers handed out {:?}", key);
        }
    }

    /// Two servers in the identical model (same salt and range): whatever order clients
    /// arrive in, each client gets the same address and prefix from both.
    #[test]
    fn identical_pair_gives_a_client_the_same_address(
        ids in prop::collection::hash_set(prop::collection::vec(any::<u8>(), 1..30), 1..40),
        iaid in any::<u32>(),
    ) {
        let a_config = include_str!("../../../examples/identical-a.toml");
        let b_config = include_str!("../../../examples/identical-b.toml");
        let mut a = Server::new(a_config);
        let mut b = Server::new(b_config);
        // DUID-EN (enterprise 12345) with a random identifier.
        let clients: Vec<Client> = ids
            .iter()
            .map(|id| Client::with_duid(&[&[0, 2, 0, 0, 0x30, 0x39], id.as_slice()].concat()))
            .collect();
        let mut from_a = HashMap::new();
        for client in &clients {
            let address = a.bind_address(client, iaid);
            let prefix = a.bind_prefix(client, iaid);
            from_a.insert(client.duid.clone(), (address, prefix));
        }
        // Addresses come from a /64: no collisions, so the order clients arrive in does not
        // matter. The /48 holds only 256 /56s, where collisions are likely and the probe
        // sequence depends on who came first: B sees the clients in the same order there.
        for client in clients.iter().rev() {
            let address = b.bind_address(client, iaid);
            prop_assert_eq!(from_a.get(&client.duid).map(|(address, _)| *address), Some(address));
        }
        for client in &clients {
            let prefix = b.bind_prefix(client, iaid);
            prop_assert_eq!(from_a.get(&client.duid).map(|(_, prefix)| *prefix), Some(prefix));
        }
    }
}

/// splitmix64: a small deterministic generator for the large simulation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The large simulation's server: a /108 range (2^20 addresses, with a bitmap) and /64s from a
/// /44, lifetimes short enough that many leases expire during the run.
const LARGE: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:01"
salt = "large"
decline-probation = 120
expected-leases = 131072
t1 = 100
t2 = 160
preferred-lifetime = 200
valid-lifetime = 300

[[link]]
name = "access-1"
interfaces = ["eth1"]

[[link.pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:1::/108"

[[link.pd-pool]]
prefix = "2001:db8:100::/40"
range = "2001:db8:100::/44"
delegated-length = 64
"#;

/// What a simulated client does at a scheduled time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Renew,
    Rebind,
    Release,
    Decline,
}

/// 100,000 clients arrive over time, bind, and then renew, rebind, release, decline or go
/// silent (and expire). After every reply: the address is inside the range, bound to nobody
/// else, and equal to the table's lease. At the end, one pass over the whole table.
#[test]
fn simulation_of_100000_clients_keeps_every_invariant() {
    const CLIENTS: u64 = 100_000;
    const PER_SECOND: u64 = 50;
    let mut server = Server::new(LARGE);
    let na_range = prefix("2001:db8:1::/108");
    let pd_range = prefix("2001:db8:100::/44");
    let ranges = (na_range, pd_range);
    let duid = server.duid();
    let mut rng = Rng(0x5eed);
    let mut ledger = Ledger::default();
    // (time, client, step), earliest first.
    let mut agenda: BinaryHeap<Reverse<(u32, u64, Step)>> = BinaryHeap::new();
    let mut declined: HashMap<u128, u32> = HashMap::new();
    let mut counts = [0u64; 6];
    let start = server.now;
    let mut next_client = 0;
    loop {
        let arrivals_done = next_client >= CLIENTS;
        if arrivals_done && agenda.is_empty() {
            break;
        }
        // One second of the virtual clock: new arrivals, then what is scheduled now.
        let now = server.now;
        for _ in 0..PER_SECOND {
            if next_client >= CLIENTS {
                break;
            }
            let n = next_client;
            next_client += 1;
            let client = Client::new(n);
            let pd = n % 4 == 0;
            let mut solicit = client.solicit().ia_na(1, &[]);
            let mut request = client.request(&duid).ia_na(1, &[]);
            if pd {
                solicit = solicit.ia_pd(2, &[]);
                request = request.ia_pd(2, &[]);
            }
            let advertise = server.send(&solicit);
            let offered = advertise.ia_na(1).address();
            assert!(
                na_range.contains(offered),
                "offer {offered} outside the range"
            );
            let reply = server.send(&request);
            assert_eq!(
                reply.ia_na(1).address(),
                offered,
                "client {n}: Reply != Advertise"
            );
            if let Err(problem) = absorb(&server, &mut ledger, n, &client.duid, &reply, ranges) {
                panic!("client {n} at {now}: {problem}");
            }
            let addr = u128::from(offered);
            if let Some(until) = declined.get(&addr) {
                assert!(
                    now >= *until,
                    "declined {offered} handed out during probation"
                );
            }
            counts[0] += 1;
            let step = match rng.below(10) {
                0..=3 => Some((now + 100, Step::Renew)),
                4 | 5 => Some((now + 160, Step::Rebind)),
                6 => Some((now + 1 + rng.below(50) as u32, Step::Release)),
                7 => Some((now + 1, Step::Decline)),
                _ => None,
            };
            if let Some((at, step)) = step {
                agenda.push(Reverse((at, n, step)));
            }
        }
        while let Some(&Reverse((at, n, step))) = agenda.peek() {
            if at > now {
                break;
            }
            agenda.pop();
            let client = Client::new(n);
            let addrs: Vec<Ipv6Addr> = ledger
                .holding(n, IaKind::Na)
                .map(Ipv6Addr::from)
                .into_iter()
                .collect();
            let prefixes: Vec<(Ipv6Addr, u8)> = ledger
                .holding(n, IaKind::Pd)
                .map(|bits| (Ipv6Addr::from(bits), 64))
                .into_iter()
                .collect();
            match step {
                Step::Renew | Step::Rebind => {
                    let msg = if step == Step::Renew {
                        counts[1] += 1;
                        client.renew(&duid)
                    } else {
                        counts[2] += 1;
                        client.rebind()
                    };
                    let mut msg = msg.ia_na(1, &addrs);
                    if !prefixes.is_empty() {
                        msg = msg.ia_pd(2, &prefixes);
                    }
                    let reply = server.send(&msg);
                    assert_eq!(reply.ia_na(1).live_addrs(), addrs, "client {n} moved");
                    if let Err(problem) =
                        absorb(&server, &mut ledger, n, &client.duid, &reply, ranges)
                    {
                        panic!("client {n} at {now}: {problem}");
                    }
                    // A third of the renewers renew once more, then go silent.
                    if step == Step::Renew && rng.below(3) == 0 {
                        agenda.push(Reverse((now + 100, n, Step::Release)));
                    }
                }
                Step::Release => {
                    counts[3] += 1;
                    ledger.drop_client(n, IaKind::Na);
                    ledger.drop_client(n, IaKind::Pd);
                    let mut msg = client.release(&duid).ia_na(1, &addrs);
                    if !prefixes.is_empty() {
                        msg = msg.ia_pd(2, &prefixes);
                    }
                    let reply = server.send(&msg);
                    assert_eq!(reply.status_code(), StatusCode::Success);
                    assert_eq!(
                        reply.ia_na(1).status_code(),
                        StatusCode::Success,
                        "client {n}: {:?}",
                        reply.ia_na
                    );
                    for addr in &addrs {
                        assert!(
                            server
                                .engine
                                .table()
                                .lease_at(u128::from(*addr), IaKind::Na)
                                .is_none()
                        );
                    }
                }
                Step::Decline => {
                    counts[4] += 1;
                    ledger.drop_client(n, IaKind::Na);
                    let reply = server.send(&client.decline(&duid).ia_na(1, &addrs));
                    assert_eq!(reply.status_code(), StatusCode::Success);
                    for addr in &addrs {
                        declined.insert(u128::from(*addr), now + 120);
                    }
                }
            }
        }
        server.advance(1);
        server.handle_timeout();
        counts[5] += server
            .take_events()
            .iter()
            .filter(|event| event.kind == xdhcp6_engine::table::EventKind::Expired)
            .count() as u64;
    }
    // Let everything run out, then check the whole table once.
    server.advance(400);
    let mut passes = 0;
    while !server.engine.table().is_empty() && passes < 1000 {
        server.handle_timeout();
        passes += 1;
    }
    server.take_events();
    assert!(
        server.engine.table().is_empty(),
        "leases left after every lifetime ended"
    );
    let usage = server.engine.pool_usage();
    assert_eq!(
        usage[0].free,
        Some((1 << 20) - 1),
        "NA bitmap leaks: {usage:?}"
    );
    assert_eq!(usage[1].free, Some(1 << 20), "PD bitmap leaks: {usage:?}");
    let [bound, renewed, rebound, released, declines, expired] = counts;
    assert_eq!(bound, CLIENTS);
    assert!(renewed > 30_000 && rebound > 15_000 && released > 10_000 && declines > 5_000);
    assert!(expired > 10_000, "expired {expired}");
    assert!(server.now > start);
}

/// A mid-run full check: every lease in the table is inside the range, and held leases agree
/// with what their clients were told.
#[test]
fn table_agrees_with_clients_after_a_busy_minute() {
    let mut server = Server::new(SMALL);
    let duid = server.duid();
    let ranges = (prefix("2001:db8:1::/123"), prefix("2001:db8:100::/60"));
    let mut ledger = Ledger::default();
    let mut rng = Rng(7);
    for second in 0..60u32 {
        for _ in 0..8 {
            let n = rng.below(48);
            let client = Client::new(n);
            let reply = match rng.below(4) {
                0 | 1 => server.send(&client.request(&duid).ia_na(1, &[]).ia_pd(2, &[])),
                2 => server.send(&client.rebind().ia_na(1, &[]).ia_pd(2, &[])),
                _ => {
                    let addrs: Vec<Ipv6Addr> = ledger
                        .drop_client(n, IaKind::Na)
                        .map(Ipv6Addr::from)
                        .into_iter()
                        .collect();
                    let prefixes: Vec<(Ipv6Addr, u8)> = ledger
                        .drop_client(n, IaKind::Pd)
                        .map(|bits| (Ipv6Addr::from(bits), 64))
                        .into_iter()
                        .collect();
                    server.send(&client.release(&duid).ia_na(1, &addrs).ia_pd(2, &prefixes))
                }
            };
            if let Err(problem) = absorb(&server, &mut ledger, n, &client.duid, &reply, ranges) {
                panic!("second {second}: {problem}");
            }
        }
        server.advance(1);
        server.handle_timeout();
    }
    let now = server.now;
    let table = server.engine.table();
    for shard in 0..table.shard_count() {
        table.iter_shard(shard, |record| {
            let lease = &record.lease;
            let range = match lease.kind {
                IaKind::Na => ranges.0,
                IaKind::Pd => ranges.1,
            };
            assert!(range.contains(lease.ip()), "{record:?} outside {range:?}");
            if lease.state == LeaseState::Bound && !lease.is_expired(now) {
                let holder = ledger.held.get(&(lease.kind, lease.addr));
                assert!(
                    holder.is_some(),
                    "table lease no client knows of: {record:?}"
                );
            }
        });
    }
}

/// Four workers share one engine (as the datapath's pinned workers do) and race for a range
/// of 255 addresses and 16 prefixes with 4 × 150 clients, releasing some as they go: no
/// address or prefix ends up with two clients, and the pools are used to the last address.
#[test]
fn concurrent_workers_never_bind_an_address_twice() {
    const WORKERS: u64 = 4;
    const PER_WORKER: u64 = 150;
    let config = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:01"
salt = "threads"
t1 = 100
t2 = 160
preferred-lifetime = 200
valid-lifetime = 300

[[link]]
name = "access-1"
interfaces = ["eth1"]

[[link.pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:1::/120"

[[link.pd-pool]]
prefix = "2001:db8:100::/48"
range = "2001:db8:100::/52"
delegated-length = 56
"#;
    let server = Server::new(config);
    let engine = &server.engine;
    let duid = server.duid();
    // What each worker's clients kept: client, address, delegated prefix.
    type Held = Vec<(u64, Option<Ipv6Addr>, Option<Ipv6Addr>)>;
    let results: Vec<Held> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|worker| {
                let duid = duid.clone();
                scope.spawn(move || {
                    let mut held = Vec::new();
                    let mut buf = vec![0; testing::REPLY_BUF];
                    let cx = xdhcp6_engine::Context {
                        link: Some(xdhcp6_engine::config::LinkId(0)),
                        arrival: xdhcp6_engine::Arrival::Multicast,
                        now: testing::T0,
                    };
                    let mut ask = |bytes: &[u8]| -> ReplyView {
                        let mut events = Vec::new();
                        match engine.handle(bytes, &cx, &mut buf, &mut events) {
                            xdhcp6_engine::Outcome::Reply { len, to, .. } => {
                                ReplyView::parse(&buf[..len], to)
                            }
                            xdhcp6_engine::Outcome::Drop { reason, .. } => panic!("{reason:?}"),
                        }
                    };
                    for i in 0..PER_WORKER {
                        let n = worker * 1000 + i;
                        let client = Client::new(n);
                        ask(&client.solicit().ia_na(1, &[]).ia_pd(2, &[]).encode());
                        let reply =
                            ask(&client.request(&duid).ia_na(1, &[]).ia_pd(2, &[]).encode());
                        let addr = reply.ia_na(1).live_addrs().first().copied();
                        let prefix = reply
                            .ia_pd(2)
                            .prefixes
                            .iter()
                            .find(|p| p.valid > 0)
                            .map(|p| p.prefix);
                        // Every fifth client leaves again at once.
                        if i % 5 == 4 {
                            let release = client
                                .release(&duid)
                                .ia_na(1, &addr.into_iter().collect::<Vec<_>>())
                                .ia_pd(2, &prefix.map(|p| (p, 56)).into_iter().collect::<Vec<_>>());
                            ask(&release.encode());
                        } else {
                            held.push((n, addr, prefix));
                        }
                    }
                    held
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("worker panicked"))
            .collect()
    });
    let mut addrs = HashMap::new();
    let mut prefixes = HashMap::new();
    for (n, addr, delegated) in results.into_iter().flatten() {
        if let Some(addr) = addr {
            assert!(prefix("2001:db8:1::/120").contains(addr));
            if let Some(other) = addrs.insert(addr, n) {
                panic!("{addr} bound to clients {other} and {n}");
            }
        }
        if let Some(delegated) = delegated
            && let Some(other) = prefixes.insert(delegated, n)
        {
            panic!("{delegated}/56 bound to clients {other} and {n}");
        }
    }
    // 480 clients stayed for 255 addresses and 16 prefixes: all of them are in use.
    assert_eq!(addrs.len(), 255);
    assert_eq!(prefixes.len(), 16);
    assert_eq!(server.engine.table().len(), 255 + 16);
}
