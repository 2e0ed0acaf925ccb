//! The latency of one journal append and its `fdatasync`, into a file that grows with every
//! append against one preallocated with written zeros, where an append overwrites blocks the
//! file already has (docs/architecture.md, "Lease-event path").
//!
//! Two levels, each with both files, taking turns round by round so that the machine's load
//! falls on both alike:
//!
//! - `raw`: one 128-byte `write` and one `fdatasync` per append, straight on a file: appended
//!   to a file that grows (as the journal did before it was preallocated), or written in place
//!   into a file of [`PREALLOC`] zeros, written and synced before the round.
//! - `journal`: the journal itself with `--durability always`: one sink emits one Bound event
//!   and settles (waits until the writer has written and synced it), with
//!   `JournalOptions::prealloc_bytes` 0 (the file grows) against the daemon's default (64
//!   MiB), and with [`ROTATING`]: a tail so short that the writer rotates every thousand or
//!   so appends (a compaction writes the next file and its zeros while the writer goes on,
//!   then the hand-over: the tail, a sync, the rename and the folder's sync), far more often
//!   than the default's once per 32 MiB of records or more (some 300,000), to show what a
//!   rotation costs.
//!
//! Prints, per level and file, the appends measured and their p50, p99 and p99.9 latency over
//! every round, and the median of the rounds' p99.
//!
//! `cargo bench -p xdhcp6d --bench journal_sync [-- APPENDS [ROUNDS [DIR]]]` (default 2,000
//! appends per round and file, 6 rounds each, in the system's temporary folder; give a DIR on
//! the disk that holds the journal to measure that disk).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::table::{EventKind, EventSink, LeaseEvent, LeaseRecord};
use xdhcp6_engine::testing::bound_lease;
use xdhcp6d::events::Events;
use xdhcp6d::journal::{Durability, Journal, JournalOptions, LinkNames, Snapshot};

/// The zeros the raw preallocated file starts a round with.
const PREALLOC: u64 = 64 << 20;

/// The journal's zero tail in the rotating runs: a rotation every 800 or so appends.
const ROTATING: u64 = 128 << 10;

/// Bytes of one raw append: about one record.
const RECORD: usize = 128;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let appends: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(6);
    let base = args.get(2).map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = base.join(format!("xdhcp6-journal-sync-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("a scratch folder");
    println!(
        "journal append + fdatasync: {appends} appends per round and file, {rounds} rounds \
         taking turns, in {}",
        dir.display()
    );
    let mut results: Vec<Samples> = [
        "raw growing",
        "raw preallocated",
        "journal growing",
        "journal preallocated",
        "journal rotating",
    ]
    .into_iter()
    .map(Samples::new)
    .collect();
    for round in 0..rounds {
        // Alternate which file goes first, too.
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for &which in &order {
            let took = raw(&dir, which == 1, appends);
            results[which].round(took);
        }
        let journals: [usize; 3] = if round % 2 == 0 { [0, 1, 2] } else { [2, 1, 0] };
        for &which in &journals {
            let prealloc = [0, PREALLOC, ROTATING][which];
            let took = journal(&dir, prealloc, appends);
            results[2 + which].round(took);
        }
    }
    for samples in &mut results {
        samples.print();
    }
    fs::remove_dir_all(&dir).expect("removing the scratch folder");
}

/// One round of raw appends; their latencies.
fn raw(dir: &Path, preallocated: bool, appends: usize) -> Vec<Duration> {
    let path = dir.join("raw");
    let _ = fs::remove_file(&path);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .expect("the raw file");
    if preallocated {
        let zeros = vec![0; 1 << 20];
        let mut at = 0;
        while at < PREALLOC {
            file.write_all(&zeros).expect("zeros");
            at += zeros.len() as u64;
        }
        file.sync_all().expect("sync");
    }
    let record = [0x5a_u8; RECORD];
    let mut took = Vec::with_capacity(appends);
    for n in 0..appends {
        let start = Instant::now();
        if preallocated {
            file.write_all_at(&record, (n * RECORD) as u64)
                .expect("write");
        } else {
            file.write_all(&record).expect("write");
        }
        file.sync_data().expect("fdatasync");
        took.push(start.elapsed());
    }
    drop(file);
    fs::remove_file(&path).expect("removing the raw file");
    took
}

/// One round through the journal with a zero tail of `prealloc`; the latency of each event's
/// emit and settle.
fn journal(dir: &Path, prealloc: u64, appends: usize) -> Vec<Duration> {
    let path = dir.join("leases.journal");
    let _ = fs::remove_file(&path);
    let options = JournalOptions {
        prealloc_bytes: prealloc,
        ..JournalOptions::default()
    };
    // The live set, for the rotations' snapshots.
    let live: Arc<Mutex<Vec<LeaseRecord>>> = Arc::default();
    let snapshot: Snapshot = {
        let live = Arc::clone(&live);
        Arc::new(move || live.lock().unwrap_or_else(PoisonError::into_inner).clone())
    };
    let (journal, _) = Journal::open_with(
        &path,
        Durability::Always,
        LinkNames::new(["lan"]),
        snapshot,
        options,
    )
    .expect("the journal");
    let mut sink = journal.sink();
    let mut took = Vec::with_capacity(appends);
    for n in 0..appends {
        let record = record(n as u32);
        live.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record.clone());
        let start = Instant::now();
        sink.emit(LeaseEvent {
            kind: EventKind::Bound,
            at: 1,
            record,
        });
        assert!(sink.settle(), "the journal failed");
        took.push(start.elapsed());
    }
    drop(sink);
    if prealloc == ROTATING {
        eprintln!("journal rotating: {} rotations", journal.compactions());
    }
    journal.shutdown();
    for entry in fs::read_dir(dir).expect("the scratch folder") {
        let _ = fs::remove_file(entry.expect("an entry").path());
    }
    took
}

fn record(n: u32) -> LeaseRecord {
    let mut record = bound_lease(
        &[0, 1, 0, 1, 0, 0, 0, 0, (n >> 8) as u8, n as u8],
        n,
        0x2001_0db8_u128 << 96 | u128::from(n),
        LinkId(0),
    );
    record.lease.expires = 601;
    record
}

/// One level and file's latencies: every sample, and each round's p99.
struct Samples {
    name: &'static str,
    all: Vec<Duration>,
    round_p99: Vec<Duration>,
}

impl Samples {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            all: Vec::new(),
            round_p99: Vec::new(),
        }
    }

    fn round(&mut self, mut took: Vec<Duration>) {
        took.sort_unstable();
        self.round_p99.push(quantile(&took, 0.99));
        self.all.extend(took);
    }

    fn print(&mut self) {
        self.all.sort_unstable();
        self.round_p99.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{:<21} n={:<6} p50 {:>7.3} ms  p99 {:>7.3} ms  p99.9 {:>7.3} ms  max {:>7.3} ms  \
             median of rounds' p99 {:>7.3} ms",
            self.name,
            self.all.len(),
            ms(quantile(&self.all, 0.5)),
            ms(quantile(&self.all, 0.99)),
            ms(quantile(&self.all, 0.999)),
            ms(self.all.last().copied().unwrap_or_default()),
            ms(quantile(&self.round_p99, 0.5)),
        );
    }
}

/// The `q` quantile of sorted `samples` (nearest rank).
fn quantile(samples: &[Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}
