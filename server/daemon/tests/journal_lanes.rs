//! The journal's per-sink lanes: many threads changing the same keys through the lease table
//! leave a journal that replays to the table's final state (the writer's merge keeps each
//! key's order), tiny lanes that fill make their sinks wait and lose nothing, and a durable
//! mark covers what every lane queued before it.

mod common;

use common::Scratch;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use xdhcp6_engine::alloc::SaltKey;
use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::table::{
    ClaimAs, EventKind, EventSink, IaKind, LeaseEvent, LeaseRecord, LeaseState, LeaseTable,
    Lifetimes,
};
use xdhcp6_engine::testing::bound_lease;
use xdhcp6d::journal::{Durability, Journal, JournalSink, LinkNames, Snapshot, read_journal};

fn scratch(name: &str) -> Scratch {
    common::scratch_dir("lanes", name)
}

fn links() -> LinkNames {
    LinkNames::new(["lab"])
}

fn no_snapshot() -> Snapshot {
    Arc::new(Vec::new)
}

/// Every lease of `table` that the journal keeps (offers are not journaled).
fn table_leases(table: &LeaseTable) -> Vec<LeaseRecord> {
    let mut records = Vec::new();
    for shard in 0..table.shard_count() {
        table.iter_shard(shard, |record| {
            if record.lease.state != LeaseState::Offered {
                records.push(record.clone());
            }
        });
    }
    sorted(records)
}

fn sorted(mut records: Vec<LeaseRecord>) -> Vec<LeaseRecord> {
    records.sort_by_key(|record| {
        (
            record.lease.addr,
            record.lease.iaid,
            record.duid.as_bytes().to_vec(),
        )
    });
    records
}

/// `threads` threads change the leases of 12 clients on 24 addresses (few keys, so that they
/// meet on the same keys and shards all the time) for `steps` steps each; thread `i` has a
/// lane of `capacity(i)` records.
fn hammer(
    durability: Durability,
    threads: u64,
    steps: u32,
    capacity: impl Fn(u64) -> usize,
) -> (Scratch, Arc<LeaseTable>, Journal) {
    let dir = scratch(&format!("hammer-{durability}-{threads}"));
    let path = dir.join("leases.journal");
    let table = Arc::new(LeaseTable::with_shards(64, 4, SaltKey::from_salt("lanes")));
    let (journal, _) = Journal::open(&path, durability, links(), no_snapshot()).unwrap();
    let journal = Arc::new(journal);
    let clock = Arc::new(AtomicU32::new(1));
    let start = Arc::new(Barrier::new(threads as usize));
    let life = Lifetimes {
        preferred: 20,
        valid: 40,
    };
    let workers: Vec<_> = (0..threads)
        .map(|worker| {
            let (table, journal, clock, start) = (
                Arc::clone(&table),
                Arc::clone(&journal),
                Arc::clone(&clock),
                Arc::clone(&start),
            );
            let mut sink = journal.sink_with_capacity(capacity(worker));
            thread::spawn(move || {
                let mut rng = 0x9e37_79b9_7f4a_7c15 ^ (worker + 1);
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                start.wait();
                for step in 0..steps {
                    let pick = next();
                    let duid = format!("client-{}", pick % 12).into_bytes();
                    let key = table.ia_key(&duid, 1, IaKind::Na, LinkId(0));
                    let addr = u128::from((pick >> 8) % 24);
                    let now = clock.fetch_add(u32::from(step % 5 == 0), Ordering::Relaxed);
                    step_once(&table, &mut sink, &key, addr, pick >> 20, now, life);
                    if step % 32 == 31 {
                        let mark = sink.last_seq();
                        journal.wait_durable(mark).unwrap();
                        assert!(journal.is_durable(mark));
                    }
                }
                journal.wait_durable(sink.last_seq()).unwrap();
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let journal = Arc::into_inner(journal).unwrap();
    (dir, table, journal)
}

fn step_once(
    table: &LeaseTable,
    sink: &mut JournalSink,
    key: &xdhcp6_engine::table::IaKey<'_>,
    addr: u128,
    pick: u64,
    now: u32,
    life: Lifetimes,
) {
    match pick % 8 {
        0 => drop(table.claim(
            key,
            addr,
            128,
            ClaimAs::Offered { hold: 5 },
            life,
            now,
            sink,
        )),
        1..=3 => drop(table.claim(key, addr, 128, ClaimAs::Bound, life, now, sink)),
        4 => drop(table.renew(key, addr, life, now, sink)),
        5 => drop(table.release(key, addr, now, sink)),
        6 => drop(table.decline(key, addr, 30, now, sink)),
        _ => drop(table.handle_timeout(now, 16, sink)),
    }
}

/// Replays the journal at `dir` and compares it with the table.
fn assert_replays_to(dir: &Path, table: &LeaseTable, events: u64) {
    let replay = read_journal(&dir.join("leases.journal"), &links()).unwrap();
    assert!(!replay.corrupt);
    assert_eq!(replay.torn_bytes, 0);
    assert_eq!(replay.events, events, "every event journaled once");
    let expected = table_leases(table);
    assert!(!expected.is_empty());
    assert_eq!(sorted(replay.records), expected);
}

#[test]
fn eight_threads_on_the_same_keys_replay_to_the_tables_final_state() {
    let (dir, table, journal) = hammer(Durability::Always, 8, 3000, |_| 256);
    let events = journal.durable_seq();
    assert_eq!(journal.lag(), 0);
    journal.shutdown();
    assert_replays_to(&dir, &table, events);
}

#[test]
fn batch_durability_keeps_each_keys_order_too() {
    let durability = Durability::Batch {
        interval: Duration::from_millis(2),
    };
    let (dir, table, journal) = hammer(durability, 6, 3000, |_| 64);
    journal.shutdown();
    // With batch nothing is waited for: the number of events is what the file holds.
    let replay = read_journal(&dir.join("leases.journal"), &links()).unwrap();
    assert_replays_to(&dir, &table, replay.events);
}

#[test]
fn the_smallest_lanes_wait_for_the_writer_and_lose_nothing() {
    // Lanes of the smallest size (two of the largest records) fill after a few dozen
    // events the writer has not taken yet.
    let (dir, table, journal) = hammer(Durability::Always, 4, 1500, |worker| {
        1 + worker as usize % 2
    });
    let events = journal.durable_seq();
    let waits = journal.lane_waits();
    journal.shutdown();
    assert_replays_to(&dir, &table, events);
    // How often they waited depends on the scheduler; what is counted is consistent.
    assert_eq!(waits.waits == 0, waits.wait_time.is_zero());
}

fn record(name: &str, addr: u128) -> LeaseRecord {
    bound_lease(name.as_bytes(), 1, addr, LinkId(0))
}

#[test]
fn a_durable_mark_means_the_records_of_every_lane_before_it_are_in_the_file() {
    let dir = scratch("mark");
    let path = dir.join("leases.journal");
    let (journal, _) = Journal::open(&path, Durability::Always, links(), no_snapshot()).unwrap();
    let (mut a, mut b) = (journal.sink(), journal.sink());
    for i in 0..50u32 {
        let (sink, name) = match i % 2 {
            0 => (&mut a, "a"),
            _ => (&mut b, "b"),
        };
        sink.emit(LeaseEvent {
            kind: EventKind::Bound,
            at: i,
            record: record(&format!("{name}-{i}"), u128::from(i)),
        });
    }
    // b's mark is the newest number: once durable, a's records before it are in the file.
    assert!(b.last_seq() > a.last_seq());
    journal.wait_durable(b.last_seq()).unwrap();
    let replay = read_journal(&path, &links()).unwrap();
    assert_eq!(replay.events, 50);
    assert_eq!(replay.records.len(), 50);
    drop((a, b));
    journal.shutdown();
}

#[test]
fn sinks_outliving_the_journal_drop_their_events_without_waiting() {
    let dir = scratch("outlive");
    let path = dir.join("leases.journal");
    let (journal, _) = Journal::open(&path, Durability::Always, links(), no_snapshot()).unwrap();
    let mut sink = journal.sink_with_capacity(1);
    sink.emit(LeaseEvent {
        kind: EventKind::Bound,
        at: 1,
        record: record("before", 1),
    });
    journal.shutdown();
    // The writer is gone: a full lane must not block the (shutting down) worker.
    for i in 0..4 {
        sink.emit(LeaseEvent {
            kind: EventKind::Bound,
            at: 2,
            record: record("after", 2 + i),
        });
    }
    let replay = read_journal(&path, &links()).unwrap();
    assert_eq!(replay.records, vec![record("before", 1)]);
}
