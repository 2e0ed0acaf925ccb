//! Lease table and allocator tests: behaviour, a model-based property test, and concurrency.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::thread;

use proptest::prelude::*;
use xdhcp6_engine::alloc::{AllocKey, Range, SaltKey};
use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::prefix::Prefix;
use xdhcp6_engine::table::{
    ClaimAs, ClaimError, Discard, EventKind, IaKey, IaKind, LeaseError, LeaseEvent, LeaseRecord,
    LeaseState, LeaseTable, Lifetimes,
};

const LIFE: Lifetimes = Lifetimes {
    preferred: 50,
    valid: 100,
};

/// The allocation key of `key`'s client on a link named "access-1", under `table`'s salt.
fn alloc_key(table: &LeaseTable, key: &IaKey<'_>) -> AllocKey {
    AllocKey::new(table.salt(), key.duid(), key.iaid(), "access-1")
}

fn table() -> LeaseTable {
    LeaseTable::with_capacity(1000, SaltKey::from_salt("test"))
}

fn duid(client: u32) -> [u8; 14] {
    // DUID-LLT: type 1, hardware type 1, time, link-layer address.
    let mut duid = [0, 1, 0, 1, 0x2a, 0x2b, 0x2c, 0x2d, 0x02, 0, 0, 0, 0, 0];
    duid[10..].copy_from_slice(&client.to_be_bytes());
    duid
}

fn prefix(text: &str) -> Prefix {
    text.parse().unwrap()
}

fn kinds(events: &[LeaseEvent]) -> Vec<EventKind> {
    events.iter().map(|event| event.kind).collect()
}

#[test]
fn offer_then_bind_then_renew_then_release() {
    let table = table();
    let duid = duid(1);
    let key = table.ia_key(&duid, 7, IaKind::Na, LinkId(3));
    let mut events = Vec::new();
    let offered = table
        .claim(
            &key,
            0x10,
            128,
            ClaimAs::Offered { hold: 5 },
            LIFE,
            1000,
            &mut events,
        )
        .unwrap();
    assert_eq!(offered.state, LeaseState::Offered);
    assert_eq!(offered.expires, 1005);
    let bound = table
        .claim(&key, 0x10, 128, ClaimAs::Bound, LIFE, 1002, &mut events)
        .unwrap();
    assert_eq!(bound.state, LeaseState::Bound);
    assert_eq!(bound.expires, 1102);
    // A second Solicit does not turn the binding back into an offer.
    let again = table
        .claim(
            &key,
            0x10,
            128,
            ClaimAs::Offered { hold: 5 },
            LIFE,
            1003,
            &mut events,
        )
        .unwrap();
    assert_eq!(again, bound);
    let renewed = table.renew(&key, 0x10, LIFE, 1050, &mut events).unwrap();
    assert_eq!(renewed.expires, 1150);
    assert_eq!(table.find_client(&key), Some(renewed));
    let record = table.lease_at(0x10, IaKind::Na).unwrap();
    assert_eq!(record.duid.as_bytes(), &duid);
    assert_eq!(record.lease.link, LinkId(3));
    assert_eq!(record.lease.iaid, 7);
    table.release(&key, 0x10, 1060, &mut events).unwrap();
    assert_eq!(table.find_client(&key), None);
    assert_eq!(table.lease_at(0x10, IaKind::Na), None);
    assert!(table.is_empty());
    assert_eq!(
        kinds(&events),
        [
            EventKind::Offered,
            EventKind::Bound,
            EventKind::Renewed,
            EventKind::Released
        ]
    );
    assert_eq!(events[3].record.duid.as_bytes(), &duid);
    assert_eq!(events[3].at, 1060);
}

#[test]
fn another_client_cannot_take_a_live_lease_but_reclaims_an_expired_one() {
    let table = table();
    let (one, two) = (duid(1), duid(2));
    let first = table.ia_key(&one, 1, IaKind::Na, LinkId(0));
    let second = table.ia_key(&two, 1, IaKind::Na, LinkId(0));
    table
        .claim(&first, 0x20, 128, ClaimAs::Bound, LIFE, 0, &mut Discard)
        .unwrap();
    let taken = table.claim(&second, 0x20, 128, ClaimAs::Bound, LIFE, 99, &mut Discard);
    assert_eq!(taken, Err(ClaimError::Taken));
    assert_eq!(
        table.renew(&second, 0x20, LIFE, 50, &mut Discard),
        Err(LeaseError::NotFound)
    );
    assert_eq!(
        table.release(&second, 0x20, 50, &mut Discard),
        Err(LeaseError::NotFound)
    );
    let mut events = Vec::new();
    let lease = table
        .claim(&second, 0x20, 128, ClaimAs::Bound, LIFE, 100, &mut events)
        .unwrap();
    assert_eq!(kinds(&events), [EventKind::Expired, EventKind::Bound]);
    assert_eq!(events[0].record.duid.as_bytes(), &one);
    assert_eq!(table.find_client(&first), None);
    assert_eq!(table.find_client(&second), Some(lease));
    assert_eq!(table.len(), 1);
}

#[test]
fn an_expired_lease_can_still_be_renewed_by_its_owner() {
    let table = table();
    let id = duid(1);
    let key = table.ia_key(&id, 1, IaKind::Na, LinkId(0));
    table
        .claim(&key, 0x30, 128, ClaimAs::Bound, LIFE, 0, &mut Discard)
        .unwrap();
    let lease = table.renew(&key, 0x30, LIFE, 500, &mut Discard).unwrap();
    assert_eq!(lease.expires, 600);
}

#[test]
fn declined_addresses_are_quarantined_until_probation_ends() {
    let table = table();
    let (one, two) = (duid(1), duid(2));
    let first = table.ia_key(&one, 1, IaKind::Na, LinkId(0));
    let second = table.ia_key(&two, 1, IaKind::Na, LinkId(0));
    let mut events = Vec::new();
    table
        .claim(&first, 0x40, 128, ClaimAs::Bound, LIFE, 0, &mut events)
        .unwrap();
    let declined = table.decline(&first, 0x40, 3600, 10, &mut events).unwrap();
    assert_eq!(declined.state, LeaseState::Declined);
    assert_eq!(table.find_client(&first), None);
    for (client, now) in [(&first, 11), (&second, 3609)] {
        let result = table.claim(client, 0x40, 128, ClaimAs::Bound, LIFE, now, &mut Discard);
        assert_eq!(result, Err(ClaimError::Taken));
    }
    assert_eq!(
        table.renew(&first, 0x40, LIFE, 20, &mut Discard),
        Err(LeaseError::NotFound)
    );
    assert_eq!(
        table.lease_at(0x40, IaKind::Na).unwrap().lease.state,
        LeaseState::Declined
    );
    table
        .claim(&second, 0x40, 128, ClaimAs::Bound, LIFE, 3610, &mut events)
        .unwrap();
    assert_eq!(
        kinds(&events),
        [
            EventKind::Bound,
            EventKind::Declined,
            EventKind::ProbationEnded,
            EventKind::Bound
        ]
    );
}

#[test]
fn na_and_pd_on_the_same_bits_are_different_leases() {
    let table = table();
    let id = duid(1);
    let na = table.ia_key(&id, 1, IaKind::Na, LinkId(0));
    let pd = table.ia_key(&id, 1, IaKind::Pd, LinkId(0));
    table
        .claim(&na, 1 << 80, 128, ClaimAs::Bound, LIFE, 0, &mut Discard)
        .unwrap();
    let delegated = table
        .claim(&pd, 1 << 80, 56, ClaimAs::Bound, LIFE, 0, &mut Discard)
        .unwrap();
    assert_eq!(delegated.prefix_len, 56);
    assert_eq!(table.find_client(&pd), Some(delegated));
    assert_eq!(table.find_client(&na).unwrap().prefix_len, 128);
    assert_eq!(table.len(), 2);
}

#[test]
fn a_client_may_hold_several_addresses() {
    let table = table();
    let id = duid(1);
    let key = table.ia_key(&id, 1, IaKind::Na, LinkId(0));
    for addr in [1u128, 2, 3] {
        table
            .claim(&key, addr, 128, ClaimAs::Bound, LIFE, 0, &mut Discard)
            .unwrap();
    }
    let mut held = Vec::new();
    table.leases_of(&key, |lease| held.push(lease.addr));
    held.sort_unstable();
    assert_eq!(held, [1, 2, 3]);
    table.release(&key, 2, 1, &mut Discard).unwrap();
    held.clear();
    table.leases_of(&key, |lease| held.push(lease.addr));
    held.sort_unstable();
    assert_eq!(held, [1, 3]);
}

#[test]
fn long_duids_spill_and_round_trip() {
    let table = table();
    let long = [0xab; 130];
    let key = table.ia_key(&long, 1, IaKind::Na, LinkId(0));
    let mut events = Vec::new();
    table
        .claim(&key, 0x50, 128, ClaimAs::Bound, LIFE, 0, &mut events)
        .unwrap();
    assert!(events[0].record.duid.is_spilled());
    assert_eq!(
        table.lease_at(0x50, IaKind::Na).unwrap().duid.as_bytes(),
        &long
    );
    assert!(table.find_client(&key).is_some());
}

#[test]
fn sweep_is_bounded_and_resumes() {
    let table = LeaseTable::with_shards(1000, 4, SaltKey::from_salt("sweep"));
    let mut duids = Vec::new();
    for client in 0..100u32 {
        duids.push(duid(client));
    }
    for (client, id) in duids.iter().enumerate() {
        let key = table.ia_key(id, 1, IaKind::Na, LinkId(0));
        let life = Lifetimes {
            preferred: 5,
            valid: if client % 2 == 0 { 10 } else { 1000 },
        };
        table
            .claim(
                &key,
                client as u128 + 1,
                128,
                ClaimAs::Bound,
                life,
                0,
                &mut Discard,
            )
            .unwrap();
    }
    let mut events = Vec::new();
    let report = table.handle_timeout(10, 7, &mut events);
    assert!(report.examined <= 7);
    let mut removed = report.removed;
    let mut calls = 1;
    while removed < 50 {
        let report = table.handle_timeout(10, 7, &mut events);
        assert!(report.examined <= 7);
        removed += report.removed;
        calls += 1;
        assert!(calls < 100, "the sweep does not progress");
    }
    assert_eq!(removed, 50);
    assert!(events.iter().all(|event| event.kind == EventKind::Expired));
    assert_eq!(table.len(), 50);
    for (client, id) in duids.iter().enumerate() {
        let key = table.ia_key(id, 1, IaKind::Na, LinkId(0));
        assert_eq!(table.find_client(&key).is_some(), client % 2 == 1);
    }
    // Slots freed by the sweep are reused.
    let id = duid(5000);
    let key = table.ia_key(&id, 1, IaKind::Na, LinkId(0));
    table
        .claim(&key, 0x9999, 128, ClaimAs::Bound, LIFE, 11, &mut Discard)
        .unwrap();
    assert_eq!(table.len(), 51);
}

#[test]
fn sweep_ends_probation_and_expires_offers() {
    let table = table();
    let (one, two) = (duid(1), duid(2));
    let first = table.ia_key(&one, 1, IaKind::Na, LinkId(0));
    let second = table.ia_key(&two, 1, IaKind::Na, LinkId(0));
    table
        .claim(&first, 1, 128, ClaimAs::Bound, LIFE, 0, &mut Discard)
        .unwrap();
    table.decline(&first, 1, 30, 0, &mut Discard).unwrap();
    table
        .claim(
            &second,
            2,
            128,
            ClaimAs::Offered { hold: 2 },
            LIFE,
            0,
            &mut Discard,
        )
        .unwrap();
    let mut events = Vec::new();
    table.handle_timeout(29, usize::MAX, &mut events);
    assert_eq!(kinds(&events), [EventKind::Expired]);
    assert_eq!(events[0].record.lease.state, LeaseState::Offered);
    events.clear();
    table.handle_timeout(30, usize::MAX, &mut events);
    assert_eq!(kinds(&events), [EventKind::ProbationEnded]);
    assert!(table.is_empty());
}

#[test]
fn dump_and_restore_round_trip() {
    let table = table();
    let ids: Vec<_> = (0..200).map(duid).collect();
    for (client, id) in ids.iter().enumerate() {
        let kind = if client % 3 == 0 {
            IaKind::Pd
        } else {
            IaKind::Na
        };
        let key = table.ia_key(id, client as u32, kind, LinkId((client % 5) as u16));
        table
            .claim(
                &key,
                client as u128 * 256,
                120,
                ClaimAs::Bound,
                LIFE,
                0,
                &mut Discard,
            )
            .unwrap();
        if client % 7 == 0 {
            table
                .decline(&key, client as u128 * 256, 60, 1, &mut Discard)
                .unwrap();
        }
    }
    let mut dump: Vec<LeaseRecord> = Vec::new();
    for shard in 0..table.shard_count() {
        table.iter_shard(shard, |record| dump.push(record.clone()));
    }
    assert_eq!(dump.len(), 200);
    let copy = LeaseTable::with_capacity(200, SaltKey::from_salt("test"));
    let report = copy.restore(dump.iter().cloned());
    assert_eq!(report.loaded, 200);
    assert_eq!(report.conflicts, 0);
    for record in &dump {
        let lease = record.lease;
        assert_eq!(copy.lease_at(lease.addr, lease.kind).as_ref(), Some(record));
        let key = copy.ia_key(record.duid.as_bytes(), lease.iaid, lease.kind, lease.link);
        let found = copy.find_client(&key);
        if lease.state == LeaseState::Declined {
            assert_eq!(found, None);
        } else {
            assert_eq!(found, Some(lease));
        }
    }
    // Replaying again changes nothing; another client's record on a held address conflicts.
    assert_eq!(copy.restore(dump.iter().cloned()).loaded, 200);
    let mut intruder = dump[1].clone();
    intruder.duid = xdhcp6_engine::table::DuidBuf::new(b"someone else");
    assert_eq!(copy.restore([intruder]).conflicts, 1);
    assert_eq!(copy.len(), 200);
}

#[test]
fn identical_salt_gives_identical_addresses_on_two_servers() {
    let pool = prefix("2001:db8:1::/64");
    let mut addrs = Vec::new();
    for _server in 0..2 {
        let table = LeaseTable::with_capacity(10, SaltKey::from_salt("shared"));
        let range = Range::addresses(pool, pool, 0).unwrap();
        let id = duid(77);
        let key = table.ia_key(&id, 1, IaKind::Na, LinkId(4));
        let (addr, _lease) = range
            .allocate(&alloc_key(&table, &key), |addr| {
                table
                    .claim(&key, addr, 128, ClaimAs::Bound, LIFE, 0, &mut Discard)
                    .ok()
            })
            .unwrap();
        addrs.push(addr);
    }
    assert_eq!(addrs[0], addrs[1]);
    let other = LeaseTable::with_capacity(10, SaltKey::from_salt("other"));
    let id = duid(77);
    let key = other.ia_key(&id, 1, IaKind::Na, LinkId(4));
    assert_ne!(
        Range::addresses(pool, pool, 0)
            .unwrap()
            .candidate(&alloc_key(&other, &key), 0),
        addrs[0]
    );
}

#[test]
fn split_servers_allocate_only_inside_their_slice() {
    let pool = prefix("2001:db8:2::/64");
    let mut seen = HashSet::new();
    for index in 0..4 {
        let slice = pool.split(index, 4).unwrap();
        let table = LeaseTable::with_capacity(100, SaltKey::from_salt("split"));
        let range = Range::addresses(pool, slice, 0).unwrap();
        for client in 0..100 {
            let id = duid(client);
            let key = table.ia_key(&id, 1, IaKind::Na, LinkId(0));
            let (addr, _) = range
                .allocate(&alloc_key(&table, &key), |addr| {
                    table
                        .claim(&key, addr, 128, ClaimAs::Bound, LIFE, 0, &mut Discard)
                        .ok()
                })
                .unwrap();
            assert!(slice.contains(addr.into()));
            assert!(seen.insert(addr), "two servers handed out {addr:x}");
        }
    }
}

#[test]
fn pd_allocation_through_the_table_fills_the_range() {
    let pool = prefix("2001:db8:100::/48");
    let range = Range::prefixes(pool, pool, 56, 9).unwrap();
    let table = LeaseTable::with_capacity(300, SaltKey::from_salt("pd"));
    let mut got = HashSet::new();
    for client in 0..300 {
        let id = duid(client);
        let key = table.ia_key(&id, 1, IaKind::Pd, LinkId(0));
        let result = range.allocate(&alloc_key(&table, &key), |bits| {
            table
                .claim(&key, bits, 56, ClaimAs::Bound, LIFE, 0, &mut Discard)
                .ok()
        });
        match result {
            Ok((bits, lease)) => {
                assert_eq!(lease.prefix_len, 56);
                assert!(got.insert(bits));
            }
            Err(_) => assert!(client >= 256, "failed with free prefixes left"),
        }
    }
    assert_eq!(got.len(), 256);
    assert_eq!(range.free_count(), Some(0));
}

#[test]
fn concurrent_allocation_never_binds_an_address_twice() {
    let table = Arc::new(LeaseTable::with_capacity(
        10_000,
        SaltKey::from_salt("race"),
    ));
    let pool = prefix("2001:db8:3::/116");
    let range = Arc::new(Range::addresses(pool, pool, 0).unwrap().with_max_probes(4));
    let workers: Vec<_> = (0..4u32)
        .map(|worker| {
            let table = Arc::clone(&table);
            let range = Arc::clone(&range);
            thread::spawn(move || {
                let mut won = Vec::new();
                for client in 0..2000u32 {
                    let id = duid(worker << 16 | client);
                    let key = table.ia_key(&id, 1, IaKind::Na, LinkId(0));
                    if let Ok((addr, _)) = range.allocate(&alloc_key(&table, &key), |addr| {
                        table
                            .claim(&key, addr, 128, ClaimAs::Bound, LIFE, 0, &mut Discard)
                            .ok()
                    }) {
                        won.push((addr, worker << 16 | client));
                    }
                }
                won
            })
        })
        .collect();
    let mut owners = HashMap::new();
    for worker in workers {
        for (addr, client) in worker.join().unwrap() {
            assert!(
                owners.insert(addr, client).is_none(),
                "{addr:x} bound twice"
            );
        }
    }
    // 4096 addresses less the subnet-router anycast address: all handed out, once each.
    assert_eq!(owners.len(), 4095);
    assert_eq!(table.len(), 4095);
    for (addr, client) in owners {
        let record = table.lease_at(addr, IaKind::Na).unwrap();
        assert_eq!(record.duid.as_bytes(), &duid(client));
    }
}

#[test]
fn concurrent_claims_of_the_same_addresses_have_one_winner_each() {
    let table = Arc::new(LeaseTable::with_shards(1000, 8, SaltKey::from_salt("race")));
    let workers: Vec<_> = (0..4u32)
        .map(|worker| {
            let table = Arc::clone(&table);
            thread::spawn(move || {
                let mut won = 0;
                for step in 0..1000u32 {
                    // Each worker walks the addresses in its own order, with its own clients.
                    let addr = u128::from((step * (2 * worker + 1) + worker * 250) % 1000);
                    let id = duid(worker << 16 | step);
                    let key = table.ia_key(&id, 1, IaKind::Na, LinkId(0));
                    let result =
                        table.claim(&key, addr, 128, ClaimAs::Bound, LIFE, 0, &mut Discard);
                    if result.is_ok() {
                        won += 1;
                    }
                    // Releases and declines interleave with the claims of the others.
                    if step % 5 == 0 && result.is_ok() {
                        table.release(&key, addr, 0, &mut Discard).unwrap();
                        won -= 1;
                    }
                }
                won
            })
        })
        .collect();
    let won: usize = workers
        .into_iter()
        .map(|worker| worker.join().unwrap())
        .sum();
    assert_eq!(won, table.len());
    assert!(table.len() <= 1000);
}

#[derive(Clone, Debug)]
enum Op {
    Claim {
        client: u32,
        addr: u128,
        bound: bool,
    },
    Renew {
        client: u32,
        addr: u128,
    },
    Release {
        client: u32,
        addr: u128,
    },
    Decline {
        client: u32,
        addr: u128,
    },
    Advance(u32),
    Sweep(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let client = 0u32..4;
    let addr = 0u128..6;
    prop_oneof![
        4 => (client.clone(), addr.clone(), any::<bool>())
            .prop_map(|(client, addr, bound)| Op::Claim { client, addr, bound }),
        2 => (client.clone(), addr.clone()).prop_map(|(client, addr)| Op::Renew { client, addr }),
        1 => (client.clone(), addr.clone())
            .prop_map(|(client, addr)| Op::Release { client, addr }),
        1 => (client, addr).prop_map(|(client, addr)| Op::Decline { client, addr }),
        2 => (0u32..8).prop_map(Op::Advance),
        1 => (1usize..20).prop_map(Op::Sweep),
    ]
}

/// The model: address → (client, state, expiry).
#[derive(Default)]
struct Model {
    leases: HashMap<u128, (u32, LeaseState, u32)>,
}

const HOLD: u32 = 3;
const PROBATION: u32 = 20;

impl Model {
    fn claim(&mut self, client: u32, addr: u128, bound: bool, now: u32) -> bool {
        let fresh = if bound {
            (client, LeaseState::Bound, now + LIFE.valid)
        } else {
            (client, LeaseState::Offered, now + HOLD)
        };
        match self.leases.get(&addr).copied() {
            Some((owner, state, _)) if owner == client && state != LeaseState::Declined => {
                if state != LeaseState::Bound || bound {
                    self.leases.insert(addr, fresh);
                }
                true
            }
            Some((_, _, expires)) if now < expires => false,
            _ => {
                self.leases.insert(addr, fresh);
                true
            }
        }
    }

    fn held_by(&mut self, client: u32, addr: u128) -> Option<&mut (u32, LeaseState, u32)> {
        self.leases
            .get_mut(&addr)
            .filter(|(owner, state, _)| *owner == client && *state != LeaseState::Declined)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn table_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let table = LeaseTable::with_shards(16, 2, SaltKey::from_salt("model"));
        let ids: Vec<_> = (0..4).map(duid).collect();
        let mut model = Model::default();
        let mut now = 100u32;
        for op in ops {
            match op {
                Op::Claim { client, addr, bound } => {
                    let key = table.ia_key(&ids[client as usize], 1, IaKind::Na, LinkId(0));
                    let how = if bound { ClaimAs::Bound } else { ClaimAs::Offered { hold: HOLD } };
                    let got = table.claim(&key, addr, 128, how, LIFE, now, &mut Discard);
                    prop_assert_eq!(got.is_ok(), model.claim(client, addr, bound, now));
                }
                Op::Renew { client, addr } => {
                    let key = table.ia_key(&ids[client as usize], 1, IaKind::Na, LinkId(0));
                    let got = table.renew(&key, addr, LIFE, now, &mut Discard);
                    let want = model.held_by(client, addr).map(|lease| {
                        *lease = (client, LeaseState::Bound, now + LIFE.valid);
                    });
                    prop_assert_eq!(got.is_ok(), want.is_some());
                }
                Op::Release { client, addr } => {
                    let key = table.ia_key(&ids[client as usize], 1, IaKind::Na, LinkId(0));
                    let got = table.release(&key, addr, now, &mut Discard);
                    let want = model.held_by(client, addr).is_some();
                    if want {
                        model.leases.remove(&addr);
                    }
                    prop_assert_eq!(got.is_ok(), want);
                }
                Op::Decline { client, addr } => {
                    let key = table.ia_key(&ids[client as usize], 1, IaKind::Na, LinkId(0));
                    let got = table.decline(&key, addr, PROBATION, now, &mut Discard);
                    let want = model.held_by(client, addr).map(|lease| {
                        *lease = (client, LeaseState::Declined, now + PROBATION);
                    });
                    prop_assert_eq!(got.is_ok(), want.is_some());
                }
                Op::Advance(seconds) => now += seconds * 10,
                Op::Sweep(budget) => {
                    // Enough calls to cover the whole table whatever the budget.
                    for _ in 0..40 {
                        table.handle_timeout(now, budget, &mut Discard);
                    }
                    model.leases.retain(|_, (_, _, expires)| now < *expires);
                }
            }
            for addr in 0..6u128 {
                let got = table
                    .lease_at(addr, IaKind::Na)
                    .map(|record| (record.duid, record.lease.state, record.lease.expires));
                let want = model
                    .leases
                    .get(&addr)
                    .map(|&(client, state, expires)| {
                        (xdhcp6_engine::table::DuidBuf::new(&ids[client as usize]), state, expires)
                    });
                prop_assert_eq!(got, want, "address {}", addr);
            }
            prop_assert_eq!(table.len(), model.leases.len());
            for client in 0..4u32 {
                let key = table.ia_key(&ids[client as usize], 1, IaKind::Na, LinkId(0));
                let held: HashSet<u128> = model
                    .leases
                    .iter()
                    .filter(|(_, (owner, state, _))| {
                        *owner == client && *state != LeaseState::Declined
                    })
                    .map(|(addr, _)| *addr)
                    .collect();
                match table.find_client(&key) {
                    Some(lease) => prop_assert!(held.contains(&lease.addr)),
                    None => prop_assert!(held.is_empty()),
                }
            }
        }
    }
}

#[test]
fn claim_current_binds_renews_and_respects_accept() {
    let table = table();
    let duid = duid(9);
    let key = table.ia_key(&duid, 1, IaKind::Na, LinkId(0));
    let mut events = Vec::new();
    let everything = |_: &xdhcp6_engine::table::Lease| true;
    assert_eq!(
        table.claim_current(&key, ClaimAs::Bound, LIFE, 1000, everything, &mut events),
        None,
        "no lease yet"
    );
    table
        .claim(
            &key,
            0x20,
            128,
            ClaimAs::Offered { hold: 5 },
            LIFE,
            1000,
            &mut events,
        )
        .unwrap();
    // An offer can be turned down: nothing changes.
    let bound_only = |lease: &xdhcp6_engine::table::Lease| lease.state == LeaseState::Bound;
    assert_eq!(
        table.claim_current(&key, ClaimAs::Bound, LIFE, 1001, bound_only, &mut events),
        None
    );
    assert_eq!(table.find_client(&key).unwrap().state, LeaseState::Offered);
    // The offer becomes a binding in place, then a binding is renewed.
    let bound = table
        .claim_current(&key, ClaimAs::Bound, LIFE, 1002, everything, &mut events)
        .unwrap();
    assert_eq!(
        (bound.addr, bound.state, bound.expires),
        (0x20, LeaseState::Bound, 1102)
    );
    let renewed = table
        .claim_current(&key, ClaimAs::Bound, LIFE, 1050, bound_only, &mut events)
        .unwrap();
    assert_eq!(renewed.expires, 1150);
    // A Solicit from a bound client leaves the binding as it is.
    let again = table
        .claim_current(
            &key,
            ClaimAs::Offered { hold: 5 },
            LIFE,
            1060,
            everything,
            &mut events,
        )
        .unwrap();
    assert_eq!(again, renewed);
    assert_eq!(
        kinds(&events),
        [EventKind::Offered, EventKind::Bound, EventKind::Renewed]
    );
    assert_eq!(table.lease_at(0x20, IaKind::Na).unwrap().lease, renewed);
}
