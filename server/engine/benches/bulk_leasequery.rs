//! Bulk Leasequery (RFC 5460): leases encoded per second for one relay's bindings, the
//! engine's side of the stream (the table walk by relay selection, the framed REPLY, DATA and
//! DONE messages into a reused buffer, one 64 KiB chunk at a time, as the daemon writes them).
//! `cargo bench -p xdhcp6-engine --bench bulk_leasequery` (`XDHCP6_BULK_LEASES` sets the
//! count, default 1,000,000).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xdhcp6_engine::testing::T0;
use xdhcp6_engine::testing::bulk_leasequery::{BENCH_REQUESTOR, bench_query, one_relay_engine};

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

criterion_group!(benches, bulk);
criterion_main!(benches);
