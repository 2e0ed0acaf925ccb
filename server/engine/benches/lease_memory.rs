//! Loads 10,000,000 IA_NA leases (distinct 14-byte DUID-LLTs) and prints the resident memory
//! per lease and the load rate, then measures lookup + renew throughput of the loaded table
//! from 1, 2, 4, ... threads. `cargo bench --bench lease_memory [-- COUNT [CAPACITY_HINT]]
//! [relay]`.
//!
//! With `relay`, every lease is bound through a relay and keeps its relay data, in the mix of
//! a cable network: 1,000 relays (CMTS ports: link-address, Interface-Id, Relay-ID), one
//! Remote-ID per 4 clients (a cable modem's CPEs), and per client a link-local peer-address
//! and a Client Link-Layer Address; renewals carry the same relay data again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use xdhcp6_engine::alloc::{AllocKey, Range, SaltKey};
use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::prefix::Prefix;
use xdhcp6_engine::table::{ClaimAs, IaKey, IaKind, LeaseEvent, LeaseTable, Lifetimes, RelayData};

const DEFAULT_LEASES: u64 = 10_000_000;

/// Relays (CMTS ports) of the `relay` mix.
const RELAYS: u64 = 1000;

/// Clients behind one Remote-ID (cable modem) in the `relay` mix.
const CLIENTS_PER_REMOTE_ID: u64 = 4;

/// The relay data of `client` in the `relay` mix (canonical encoding: one hop).
fn relay_data(client: u64) -> RelayData {
    let modem = client / CLIENTS_PER_REMOTE_ID;
    let relay = modem % RELAYS;
    let option = |out: &mut Vec<u8>, code: u16, body: &[u8]| {
        out.extend_from_slice(&code.to_be_bytes());
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
    };
    let mut options = Vec::with_capacity(64);
    option(&mut options, 18, format!("cable-{relay}/0/0").as_bytes());
    let mut relay_id = vec![0, 3, 0, 1, 0x00, 0x10];
    relay_id.extend_from_slice(&(relay as u32).to_be_bytes());
    option(&mut options, 53, &relay_id);
    let mut remote_id = vec![0, 0, 0x11, 0x8b, 0x00, 0x20];
    remote_id.extend_from_slice(&(modem as u32).to_be_bytes());
    option(&mut options, 37, &remote_id);
    let mut link_layer = vec![0, 1, 0x02, 0x30];
    link_layer.extend_from_slice(&(client as u32).to_be_bytes());
    option(&mut options, 79, &link_layer);
    let mut bytes = Vec::with_capacity(128);
    // One hop, with the relay agent's source address (its uplink address) in front.
    bytes.push(1 | 0x80);
    let source = 0x2001_0db8_fffe_0000_0000_0000_0000_0001u128 | u128::from(relay) << 16;
    bytes.extend_from_slice(&source.to_be_bytes());
    bytes.push(0);
    let link = 0x2001_0db8_ffff_0000_0000_0000_0000_0001u128 | u128::from(relay) << 80;
    bytes.extend_from_slice(&link.to_be_bytes());
    // A link-local peer-address with a stable-privacy interface identifier (RFC 7217).
    let iid = client.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let peer = 0xfe80u128 << 112 | u128::from(iid);
    bytes.extend_from_slice(&peer.to_be_bytes());
    bytes.extend_from_slice(&(options.len() as u16).to_be_bytes());
    bytes.extend_from_slice(&options);
    RelayData::from_bytes(&bytes).expect("canonical relay data")
}

/// The allocation key of `key`'s client on a link named "access-1", under `table`'s salt.
fn alloc_key(table: &LeaseTable, key: &IaKey<'_>) -> AllocKey {
    AllocKey::new(table.salt(), key.duid(), key.iaid(), "access-1")
}

/// VmRSS of this process in bytes, from /proc/self/status.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

fn main() {
    // `cargo bench` passes `--bench`; numbers override the lease count and the capacity hint.
    let numbers: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|arg| arg.parse().ok())
        .collect();
    let relayed = std::env::args().any(|arg| arg == "relay");
    let leases = numbers.first().copied().unwrap_or(DEFAULT_LEASES);
    let hint = numbers.get(1).copied().unwrap_or(leases);
    let pool: Prefix = "2001:db8:1::/64".parse().expect("a valid prefix");
    let range = Range::addresses(pool, pool, 0).expect("a valid range");
    let life = Lifetimes {
        preferred: 3600,
        valid: 7200,
    };

    let before = resident_bytes();
    let table = LeaseTable::with_capacity(hint as usize, SaltKey::from_salt("memory"));
    let mut events: Vec<LeaseEvent> = Vec::with_capacity(4);
    let mut duid = [0u8, 1, 0, 1, 0x2a, 0x2b, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut failed = 0u64;
    let start = Instant::now();
    for client in 0..leases {
        duid[6..].copy_from_slice(&client.to_be_bytes());
        let relay = relayed.then(|| relay_data(client));
        let key = table
            .ia_key(&duid, 1, IaKind::Na, LinkId(0))
            .with_relay(relay.as_ref());
        events.clear();
        let result = range.allocate(&alloc_key(&table, &key), |addr| {
            table
                .claim(&key, addr, 128, ClaimAs::Bound, life, 0, &mut events)
                .ok()
        });
        if result.is_err() {
            failed += 1;
        }
    }
    let elapsed = start.elapsed();
    let after = resident_bytes();
    let held = table.len() as u64;
    println!(
        "leases: {held} ({failed} failed), capacity hint: {hint}, shards: {}, relay data: {}",
        table.shard_count(),
        if relayed { "yes" } else { "no" }
    );
    if relayed {
        let stats = table.relay_stats();
        println!(
            "relay data: {} paths, {} subscriber parts interned, {} bytes on the heap",
            stats.paths, stats.subscribers, stats.heap_bytes
        );
    }
    println!(
        "resident: {:.1} MiB before, {:.1} MiB after: {:.1} bytes per lease",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        after.saturating_sub(before) as f64 / held.max(1) as f64
    );
    println!(
        "load: {:.2} s, {:.0} leases/s (allocate + claim, one thread)",
        elapsed.as_secs_f64(),
        held as f64 / elapsed.as_secs_f64()
    );
    renew_scaling(&table, leases, life, relayed);
}

/// Looks up random clients and renews their lease from several threads for a second each.
fn renew_scaling(table: &LeaseTable, leases: u64, life: Lifetimes, relayed: bool) {
    let cores = thread::available_parallelism().map_or(1, |cores| cores.get());
    let mut threads = 1;
    while threads <= cores.min(16) {
        let stop = AtomicBool::new(false);
        let done = AtomicU64::new(0);
        let start = Instant::now();
        thread::scope(|scope| {
            for worker in 0..threads {
                let (stop, done) = (&stop, &done);
                scope.spawn(move || {
                    let mut events: Vec<LeaseEvent> = Vec::with_capacity(4);
                    let mut duid = [0u8, 1, 0, 1, 0x2a, 0x2b, 0, 0, 0, 0, 0, 0, 0, 0];
                    let mut client = worker as u64 * 7_777_777 % leases.max(1);
                    let mut count = 0;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..256 {
                            client = (client + 1_000_003) % leases.max(1);
                            duid[6..].copy_from_slice(&client.to_be_bytes());
                            let relay = relayed.then(|| relay_data(client));
                            let key = table
                                .ia_key(&duid, 1, IaKind::Na, LinkId(0))
                                .with_relay(relay.as_ref());
                            if let Some(lease) = table.find_client(&key) {
                                events.clear();
                                let _ = table.renew(&key, lease.addr, life, 100, &mut events);
                            }
                            count += 1;
                        }
                    }
                    done.fetch_add(count, Ordering::Relaxed);
                });
            }
            thread::sleep(Duration::from_secs(1));
            stop.store(true, Ordering::Relaxed);
        });
        let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
        println!(
            "find_client + renew, {threads:2} threads: {rate:>12.0}/s ({:.0}/s per thread)",
            rate / threads as f64
        );
        threads *= 2;
    }
}
