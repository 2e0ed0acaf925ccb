//! Lease table benchmarks: claims, renewals and lookups in a table of 1,000,000 leases.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use xdhcp6_engine::alloc::{AllocKey, Range, SaltKey};
use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::prefix::Prefix;
use xdhcp6_engine::table::{ClaimAs, IaKey, IaKind, LeaseEvent, LeaseTable, Lifetimes};

const FILLED: u64 = 1_000_000;
const LIFE: Lifetimes = Lifetimes {
    preferred: 3600,
    valid: 7200,
};

/// The allocation key of `key`'s client on a link named "access-1", under `table`'s salt.
fn alloc_key(table: &LeaseTable, key: &IaKey<'_>) -> AllocKey {
    AllocKey::new(table.salt(), key.duid(), key.iaid(), "access-1")
}

/// A distinct 14-byte DUID-LLT per client number.
fn duid(client: u64) -> [u8; 14] {
    let mut duid = [0, 1, 0, 1, 0x2a, 0x2b, 0, 0, 0, 0, 0, 0, 0, 0];
    duid[6..].copy_from_slice(&client.to_be_bytes());
    duid
}

fn pool() -> Prefix {
    "2001:db8:1::/64".parse().expect("a valid prefix")
}

fn filled() -> LeaseTable {
    let table = LeaseTable::with_capacity(FILLED as usize * 2, SaltKey::from_salt("bench"));
    let base = pool().bits();
    let mut events = Vec::new();
    for client in 0..FILLED {
        let id = duid(client);
        let key = table.ia_key(&id, 1, IaKind::Na, LinkId(0));
        events.clear();
        table
            .claim(
                &key,
                base | u128::from(client),
                128,
                ClaimAs::Bound,
                LIFE,
                0,
                &mut events,
            )
            .expect("a free address");
    }
    table
}

fn table(c: &mut Criterion) {
    let table = filled();
    let base = pool().bits();
    let mut events: Vec<LeaseEvent> = Vec::with_capacity(4);

    let mut next = FILLED;
    c.bench_function("claim new lease (table of 1M)", |b| {
        b.iter_custom(|iters| {
            let first = next;
            let start = Instant::now();
            for client in first..first + iters {
                let id = duid(client);
                let key = table.ia_key(&id, 1, IaKind::Na, LinkId(0));
                events.clear();
                let lease = table.claim(
                    &key,
                    base | u128::from(client),
                    128,
                    ClaimAs::Bound,
                    LIFE,
                    10,
                    &mut events,
                );
                black_box(lease.is_ok());
            }
            let elapsed = start.elapsed();
            // Keep the table at 1M leases: release what was claimed, untimed.
            for client in first..first + iters {
                let id = duid(client);
                let key = table.ia_key(&id, 1, IaKind::Na, LinkId(0));
                events.clear();
                let _ = table.release(&key, base | u128::from(client), 11, &mut events);
            }
            next = first + iters;
            elapsed
        })
    });

    let range = Range::addresses(pool(), pool(), 0).expect("a valid range");
    let mut next = 10 * FILLED;
    c.bench_function("allocate + claim new lease (table of 1M)", |b| {
        b.iter_custom(|iters| {
            let first = next;
            let mut claimed = Vec::with_capacity(iters as usize);
            let start = Instant::now();
            for client in first..first + iters {
                let id = duid(client);
                let key = table.ia_key(&id, 1, IaKind::Na, LinkId(0));
                events.clear();
                let result = range.allocate(&alloc_key(&table, &key), |addr| {
                    table
                        .claim(&key, addr, 128, ClaimAs::Bound, LIFE, 10, &mut events)
                        .ok()
                });
                if let Ok((addr, _)) = result {
                    claimed.push((client, addr));
                }
            }
            let elapsed = start.elapsed();
            for (client, addr) in claimed {
                let id = duid(client);
                let key = table.ia_key(&id, 1, IaKind::Na, LinkId(0));
                events.clear();
                let _ = table.release(&key, addr, 11, &mut events);
            }
            next = first + iters;
            elapsed
        })
    });

    let mut client = 0u64;
    c.bench_function("renew existing lease (table of 1M)", |b| {
        b.iter(|| {
            client = (client + 7919) % FILLED;
            let id = duid(client);
            let key = table.ia_key(&id, 1, IaKind::Na, LinkId(0));
            events.clear();
            let lease = table.renew(&key, base | u128::from(client), LIFE, 20, &mut events);
            black_box(lease.is_ok())
        })
    });

    let mut client = 0u64;
    c.bench_function("find client (table of 1M)", |b| {
        b.iter(|| {
            client = (client + 7919) % FILLED;
            let id = duid(client);
            let key = table.ia_key(&id, 1, IaKind::Na, LinkId(0));
            black_box(table.find_client(&key))
        })
    });

    let mut client = 0u64;
    c.bench_function("client key hash", |b| {
        b.iter(|| {
            client += 1;
            let id = duid(client);
            black_box(table.ia_key(black_box(&id), 1, IaKind::Na, LinkId(0)));
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = table
}
criterion_main!(benches);
