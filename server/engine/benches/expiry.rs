//! Expiry on a virtual clock: loads LEASES bound leases (default 10,000,000) whose ends are
//! spread over SPREAD seconds, with one second in which a tenth of them end at once, then
//! calls `Engine::handle_timeout` once per virtual second as the daemon's timer does. Prints
//! the worst lateness (seconds between a lease's end and its removal), the longest call, and
//! the time of a metrics scrape (`Engine::pool_usage`) at full size.
//! `cargo bench -p xdhcp6-engine --bench expiry [-- LEASES [SPREAD]]`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use xdhcp6_engine::Engine;
use xdhcp6_engine::alloc::SaltKey;
use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::table::{
    DuidBuf, EventKind, EventSink, IaKind, Lease, LeaseEvent, LeaseRecord, LeaseState, LeaseTable,
    Lifetimes,
};
use xdhcp6_engine::testing::config;

const DEFAULT_LEASES: u64 = 10_000_000;
const DEFAULT_SPREAD: u64 = 3_600;
const T0: u32 = 1_750_000_000;

const CONFIG: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:01"
salt = "expiry"

[[link]]
name = "access-1"
interfaces = ["eth1"]

[[link.pool]]
prefix = "2001:db8:1::/64"
"#;

/// Counts removals and the worst lateness.
#[derive(Default)]
struct Lateness {
    expired: u64,
    worst: u32,
}

impl EventSink for Lateness {
    fn emit(&mut self, event: LeaseEvent) {
        if event.kind == EventKind::Expired {
            self.expired += 1;
            self.worst = self
                .worst
                .max(event.at.saturating_sub(event.record.lease.expires));
        }
    }
}

fn main() {
    let numbers: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|arg| arg.parse().ok())
        .collect();
    let leases = numbers.first().copied().unwrap_or(DEFAULT_LEASES);
    let spread = numbers.get(1).copied().unwrap_or(DEFAULT_SPREAD).max(2);
    let config = config(CONFIG);
    let table = Arc::new(LeaseTable::with_capacity(
        leases as usize,
        SaltKey::from_salt("expiry"),
    ));
    // One second, in the middle, in which a tenth of the leases end together.
    let burst = T0 + (spread / 2) as u32;
    let end = |n: u64| {
        if n.is_multiple_of(10) {
            burst
        } else {
            T0 + 1 + (n.wrapping_mul(0x9e37_79b9) % spread) as u32
        }
    };
    let start = Instant::now();
    let report = table.restore((0..leases).map(|n| {
        let mut duid = [0, 1, 0, 1, 0x2e, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        duid[6..].copy_from_slice(&n.to_be_bytes());
        LeaseRecord {
            relay: None,
            reconfigure: false,
            duid: DuidBuf::new(&duid),
            lease: Lease {
                addr: 0x2001_0db8_0001_0000_0000_0000_0000_0000 + u128::from(n) + 0x1_0000,
                prefix_len: 128,
                kind: IaKind::Na,
                iaid: 1,
                link: LinkId(0),
                state: LeaseState::Bound,
                lifetimes: Lifetimes {
                    preferred: 3_600,
                    valid: 7_200,
                },
                expires: end(n),
            },
        }
    }));
    println!(
        "loaded {} leases in {:.1} s",
        report.loaded,
        start.elapsed().as_secs_f64()
    );
    let engine = Engine::new(config, Arc::clone(&table)).expect("an engine");

    let scrape = Instant::now();
    let usage = engine.pool_usage();
    println!(
        "metrics scrape: {:?} for {} ranges, {} bindings counted",
        scrape.elapsed(),
        usage.len(),
        usage.iter().map(|pool| pool.bound).sum::<u64>()
    );

    let mut sink = Lateness::default();
    let mut longest = (Duration::ZERO, 0);
    let mut total = Duration::ZERO;
    for second in 0..=spread as u32 + 1 {
        let now = T0 + second;
        let before = sink.expired;
        let call = Instant::now();
        engine.handle_timeout(now, &mut sink);
        let took = call.elapsed();
        total += took;
        if took > longest.0 {
            longest = (took, sink.expired - before);
        }
    }
    println!(
        "expired {} of {} leases over {} virtual seconds; worst lateness {} s; longest call \
         {:?} ({} leases); all calls {:.2} s; {} left",
        sink.expired,
        report.loaded,
        spread + 2,
        sink.worst,
        longest.0,
        longest.1,
        total.as_secs_f64(),
        table.len()
    );
}
