//! A flood of Solicits from random DUIDs (each with an IA_NA and an IA_PD) against an engine
//! that already serves a population of bound clients: prints the resident memory (from
//! /proc/self/statm) at steady state, during the flood and after it, with the table's size.
//! An Advertise reserves nothing, so the flood should leave memory and table where they were.
//! `cargo bench -p xdhcp6-engine --bench solicit_flood [-- MESSAGES [BOUND]]`.

use std::sync::Arc;
use std::time::Instant;

use xdhcp6_engine::alloc::SaltKey;
use xdhcp6_engine::engine::OFFER_HOLD;
use xdhcp6_engine::table::{Discard, LeaseTable};
use xdhcp6_engine::testing::{Client, config};
use xdhcp6_engine::{Arrival, Context, Engine, Outcome};

const DEFAULT_MESSAGES: u64 = 1_000_000;
const DEFAULT_BOUND: u64 = 100_000;
const T0: u32 = 1_750_000_000;

const CONFIG: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:01"
salt = "flood"
expected-leases = 200000

[[link]]
name = "access-1"
interfaces = ["eth1"]
rapid-commit = true

[[link.pool]]
prefix = "2001:db8:1::/64"

[[link.pd-pool]]
prefix = "2001:db8:1000::/36"
delegated-length = 56
"#;

/// Resident memory in bytes: the second field of /proc/self/statm, in pages.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// A DUID-EN no client sends twice.
fn random_duid(n: u64) -> Vec<u8> {
    let mut duid = vec![0, 2, 0, 0, 0x7f, 0x01];
    duid.extend_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    duid
}

fn main() {
    let numbers: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|arg| arg.parse().ok())
        .collect();
    let messages = numbers.first().copied().unwrap_or(DEFAULT_MESSAGES);
    let bound = numbers.get(1).copied().unwrap_or(DEFAULT_BOUND);
    let config = config(CONFIG);
    let table = Arc::new(LeaseTable::with_capacity(
        config.server.expected_leases as usize,
        SaltKey::from_salt(&config.server.salt),
    ));
    let engine = Engine::new(Arc::clone(&config), Arc::clone(&table)).expect("an engine");
    let link = engine.link_for_interface("eth1", None);
    let mut reply = vec![0u8; 1500];
    let mut request = vec![0u8; 1500];
    let mut now = T0;
    let mut send = |message: &[u8], now: u32| {
        let cx = Context {
            link,
            arrival: Arrival::Multicast,
            now,
        };
        engine.handle(message, &cx, &mut reply, &mut Discard)
    };

    // The population: bound clients, an address and a prefix each.
    for n in 0..bound {
        let client = Client::new(n);
        let len = client
            .solicit()
            .ia_na(1, &[])
            .ia_pd(2, &[])
            .rapid_commit()
            .encode_into(&mut request);
        send(&request[..len], now);
    }
    let steady = resident_bytes();
    let leases = table.len();
    println!(
        "steady state: {leases} leases, {:.1} MiB resident",
        mib(steady)
    );

    let start = Instant::now();
    let mut peak = steady;
    let mut answered = 0u64;
    for n in 0..messages {
        let client = Client::with_duid(&random_duid(n));
        let len = client
            .solicit()
            .ia_na(1, &[])
            .ia_pd(2, &[])
            .encode_into(&mut request);
        if let Outcome::Reply { .. } = send(&request[..len], now) {
            answered += 1;
        }
        if (n + 1).is_multiple_of((messages / 10).max(1)) {
            let resident = resident_bytes();
            peak = peak.max(resident);
            println!(
                "after {:>9} Solicits: {} leases, {:.1} MiB resident (+{:.1} MiB)",
                n + 1,
                table.len(),
                mib(resident),
                mib(resident.saturating_sub(steady))
            );
        }
        if n.is_multiple_of(10_000) {
            now += 1;
        }
    }
    let elapsed = start.elapsed();
    now += OFFER_HOLD + 1;
    engine.handle_timeout(now, &mut Discard);
    let after = resident_bytes();
    println!(
        "flood: {messages} Solicits, {answered} answered, {:.0} messages/s",
        messages as f64 / elapsed.as_secs_f64()
    );
    println!(
        "resident: steady {:.1} MiB, peak +{:.1} MiB during the flood, +{:.1} MiB after; \
         leases: {leases} before, {} after",
        mib(steady),
        mib(peak.saturating_sub(steady)),
        mib(after.saturating_sub(steady)),
        table.len()
    );
}
