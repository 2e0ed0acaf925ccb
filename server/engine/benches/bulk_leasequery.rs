//! Bulk Leasequery (RFC 5460): leases encoded per second for one relay's bindings, the
//! engine's side of the stream (the table walk by relay selection, the framed REPLY, DATA and
//! DONE messages into a reused buffer, one 64 KiB chunk at a time, as the daemon writes them).
//! `cargo bench -p xdhcp6-engine --bench bulk_leasequery` (`XDHCP6_BULK_LEASES` sets the
//! count, default 1,000,000).
//!
//! The same table answers UDP Leasequery (RFC 5007) too: `leasequery/by_client_id` and
//! `leasequery/by_address` are one query each, against a client picked at random.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::net::Ipv6Addr;

use xdhcp6_engine::table::Discard;
use xdhcp6_engine::testing::bulk_leasequery::{BENCH_REQUESTOR, bench_query, one_relay_engine};
use xdhcp6_engine::testing::leasequery::{by_address, by_client_id};
use xdhcp6_engine::testing::{Client, T0};
use xdhcp6_engine::{Arrival, Context, Outcome, Peer};

const CHUNK: usize = 64 * 1024;

fn leases() -> u64 {
    std::env::var("XDHCP6_BULK_LEASES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1_000_000)
}

fn bulk(c: &mut Criterion) {
    let count = leases();
    let engine = one_relay_engine(count);
    let query = bench_query(0x51);
    let mut out = Vec::with_capacity(2 * CHUNK);
    let mut group = c.benchmark_group("bulk_leasequery");
    group.throughput(Throughput::Elements(count));
    group.sample_size(10);
    group.bench_function(format!("by_relay_id_{count}"), |b| {
        b.iter(|| {
            let mut answer = engine
                .bulk_leasequery(&query, BENCH_REQUESTOR, T0 + 10)
                .expect("answered");
            let mut bytes = 0;
            loop {
                out.clear();
                let done = answer.write_more(&engine, T0 + 10, &mut out, CHUNK);
                bytes += out.len();
                if done {
                    break;
                }
            }
            assert_eq!(answer.streamed(), count);
            bytes
        });
    });
    group.finish();
}

/// One UDP Leasequery per iteration, by client identifier or by address, for one of the
/// table's clients picked by a counter stepped by a large odd number.
fn udp(c: &mut Criterion) {
    let count = leases();
    let engine = one_relay_engine(count);
    let requestor = Client::new(9000);
    // The fixture's clients: DUID-LLT-like 00:01:00:01:2e:00:00:00 then 6 octets of n, and
    // address 2001:db8:1::(n + 0x100).
    let duid = |n: u64| {
        let mut duid = vec![0, 1, 0, 1, 0x2e, 0, 0, 0];
        duid.extend_from_slice(&n.to_be_bytes()[2..]);
        duid
    };
    let address =
        |n: u64| Ipv6Addr::from(0x2001_0db8_0001_0000_0000_0000_0000_0000 | u128::from(n + 0x100));
    let queries = 4096u64;
    let by_id: Vec<Vec<u8>> = (0..queries)
        .map(|i| {
            by_client_id(
                &requestor,
                &duid(i.wrapping_mul(0x9e37_79b9) % count),
                Ipv6Addr::UNSPECIFIED,
            )
            .encode()
        })
        .collect();
    let by_addr: Vec<Vec<u8>> = (0..queries)
        .map(|i| {
            by_address(
                &requestor,
                address(i.wrapping_mul(0x9e37_79b9) % count),
                Ipv6Addr::UNSPECIFIED,
            )
            .encode()
        })
        .collect();
    let cx = Context {
        link: None,
        arrival: Arrival::Unicast,
        now: T0 + 10,
    };
    let peer = Peer {
        address: Some(BENCH_REQUESTOR),
        mac: None,
    };
    let mut buf = vec![0; 4096];
    let mut group = c.benchmark_group("leasequery");
    group.throughput(Throughput::Elements(1));
    for (name, set) in [("by_client_id", &by_id), ("by_address", &by_addr)] {
        let mut next = 0usize;
        group.bench_function(format!("{name}_{count}"), |b| {
            b.iter(|| {
                let request = &set[next % set.len()];
                next += 1;
                match engine.handle_from(request, &cx, peer, &mut buf, &mut Discard) {
                    Outcome::Reply { len, .. } => len,
                    Outcome::Drop { reason, .. } => panic!("dropped: {reason:?}"),
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bulk, udp);
criterion_main!(benches);
