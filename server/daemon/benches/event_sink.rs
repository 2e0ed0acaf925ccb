//! The lease table and the journal's event sink under 1 to 16 threads: each thread renews its
//! own clients' leases in a shared table (64 shards), so every operation takes a shard lock
//! and emits one Renewed event into its sink. Three sinks are compared in one run:
//!
//! - `table`: a sink that takes the event and drops it, the ceiling of the table alone.
//! - `mutex`: the sink as it was before per-sink lanes, kept here as a baseline: encode, then
//!   append to one shared buffer under one `std::sync::Mutex` (with the shard lock held),
//!   take the next sequence number, wake the writer; a writer thread writes and syncs every
//!   10 ms. Time waiting for that mutex is measured by timing `lock()` whenever `try_lock()`
//!   fails.
//! - `lanes`: the journal itself ([`Journal::sink`], `--durability batch`, 10 ms): encode, one
//!   atomic add for the sequence number, one copy into the sink's own ring. Its only wait is a
//!   full ring ([`Journal::lane_waits`]).
//!
//! Neither waits for durability (that is the workers' barrier, not the sink). Built with
//! `--features lock-stats`, the table's shard locks count the acquisitions that found the lock
//! held and the time they waited, and the bench reports them too; without it those columns
//! read `-`. Prints one line per (threads, sink): events per second, the sink's lock (or full
//! ring) waits and time, the shard locks' waits and time, and the share of the threads' time
//! spent waiting for either. Threads beyond the machine's cores oversubscribe it, and the
//! output says so.
//!
//! `cargo bench -p xdhcp6d --features lock-stats --bench event_sink [-- EVENTS [RUNS]]`
//! (default 400,000 events per configuration, 5 runs of each sink taking turns, the best
//! run of each reported).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Condvar, Mutex, TryLockError};
use std::thread;
use std::time::{Duration, Instant};

use xdhcp6_engine::alloc::SaltKey;
use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::table::{
    ClaimAs, Discard, EventKind, EventSink, IaKind, LeaseEvent, LeaseTable, Lifetimes,
};
use xdhcp6d::journal::{Durability, Journal, Link, LinkNames, format};

const THREADS: [usize; 5] = [1, 2, 4, 8, 16];
const CLIENTS_PER_THREAD: u64 = 1024;
const INTERVAL: Duration = Duration::from_millis(10);
const LIFE: Lifetimes = Lifetimes {
    preferred: 300,
    valid: 600,
};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let events: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(400_000);
    let runs: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let cores = thread::available_parallelism().map_or(1, usize::from);
    let dir = std::env::temp_dir().join(format!("xdhcp6-event-sink-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("a scratch folder");
    println!(
        "table + event sink: {events} Renewed events per configuration, best of {runs} runs taking turns, \
         {cores} core(s) available"
    );
    println!(
        "{:>7} {:>6} {:>12} {:>10} {:>11} {:>10} {:>11} {:>7}  note",
        "threads",
        "sink",
        "events/s",
        "sink waits",
        "sink waited",
        "shard waits",
        "shard waited",
        "wait %"
    );
    for threads in THREADS {
        let note = if threads > cores {
            format!("oversubscribed: {threads} threads on {cores} core(s)")
        } else {
            String::new()
        };
        // Runs of the three sinks take turns, so that a change in the machine's load between
        // them does not favour one.
        let kinds = [SinkKind::Table, SinkKind::Mutex, SinkKind::Lanes];
        let mut best: [Option<Outcome>; 3] = [None, None, None];
        for _ in 0..runs {
            for (slot, kind) in best.iter_mut().zip(kinds) {
                let outcome = run(kind, threads, events, &dir);
                if slot
                    .as_ref()
                    .is_none_or(|best| outcome.rate() > best.rate())
                {
                    *slot = Some(outcome);
                }
            }
        }
        for (best, kind) in best.into_iter().zip(kinds) {
            let best = best.expect("at least one run");
            let (shard_waits, shard_waited) = match best.shard {
                Some((waits, waited)) => (waits.to_string(), format!("{waited:.3?}")),
                None => ("-".to_owned(), "-".to_owned()),
            };
            let waited = best.waited + best.shard.map_or(Duration::ZERO, |(_, waited)| waited);
            println!(
                "{threads:>7} {:>6} {:>12.0} {:>10} {:>11.3?} {:>10} {:>12} {:>6.2}%  {note}",
                kind.name(),
                best.rate(),
                best.waits,
                best.waited,
                shard_waits,
                shard_waited,
                100.0 * waited.as_secs_f64() / (best.elapsed.as_secs_f64() * threads as f64),
            );
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

#[derive(Clone, Copy)]
enum SinkKind {
    Table,
    Mutex,
    Lanes,
}

impl SinkKind {
    fn name(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::Mutex => "mutex",
            Self::Lanes => "lanes",
        }
    }
}

struct Outcome {
    events: u64,
    elapsed: Duration,
    waits: u64,
    waited: Duration,
    /// The shard locks' waits and their time (`--features lock-stats`).
    shard: Option<(u64, Duration)>,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
}

fn duid(thread: usize, client: u64) -> Vec<u8> {
    let mut duid = vec![0, 3, 0, 1];
    duid.extend_from_slice(&(thread as u32).to_be_bytes());
    duid.extend_from_slice(&client.to_be_bytes());
    duid
}

fn addr(thread: usize, client: u64) -> u128 {
    0x2001_0db8 << 96 | (thread as u128) << 32 | u128::from(client)
}

/// One configuration: a fresh table with every thread's clients bound, then `events` renewals
/// split among `threads` threads, each into its own sink of `kind`.
fn run(kind: SinkKind, threads: usize, events: u64, dir: &Path) -> Outcome {
    let table = Arc::new(LeaseTable::with_shards(
        threads * CLIENTS_PER_THREAD as usize,
        64,
        SaltKey::from_salt("event-sink"),
    ));
    for thread in 0..threads {
        for client in 0..CLIENTS_PER_THREAD {
            let duid = duid(thread, client);
            let key = table.ia_key(&duid, 1, IaKind::Na, LinkId(0));
            table
                .claim(
                    &key,
                    addr(thread, client),
                    128,
                    ClaimAs::Bound,
                    LIFE,
                    1,
                    &mut Discard,
                )
                .expect("a free address");
        }
    }
    let per_thread = events / threads as u64;
    let path = dir.join(format!("{}-{threads}.journal", kind.name()));
    let _ = fs::remove_file(&path);
    let links = LinkNames::new(["bench"]);
    let start = Arc::new(Barrier::new(threads + 1));
    let shard_before = shard_waits();
    let mut outcome = match kind {
        SinkKind::Table => {
            let sinks: Vec<_> = (0..threads).map(|_| Dropped).collect();
            let (elapsed, _) = drive(&table, sinks, per_thread, &start);
            Outcome {
                events: per_thread * threads as u64,
                elapsed,
                waits: 0,
                waited: Duration::ZERO,
                shard: None,
            }
        }
        SinkKind::Mutex => {
            let queue = MutexQueue::start(path.clone());
            let sinks: Vec<_> = (0..threads)
                .map(|_| MutexSink::new(Arc::clone(&queue), links.clone()))
                .collect();
            let (elapsed, sinks) = drive(&table, sinks, per_thread, &start);
            let waits = sinks.iter().map(|sink| sink.contended).sum();
            let waited = sinks.iter().map(|sink| sink.waited).sum();
            queue.close();
            Outcome {
                events: per_thread * threads as u64,
                elapsed,
                waits,
                waited,
                shard: None,
            }
        }
        SinkKind::Lanes => {
            let durability = Durability::Batch { interval: INTERVAL };
            let (journal, _) = Journal::open(&path, durability, links, Arc::new(Vec::new))
                .expect("a fresh journal");
            let sinks: Vec<_> = (0..threads).map(|_| journal.sink()).collect();
            let (elapsed, sinks) = drive(&table, sinks, per_thread, &start);
            drop(sinks);
            let waits = journal.lane_waits();
            journal.shutdown();
            let _ = fs::remove_file(&path);
            let _ = fs::remove_file(path.with_extension("journal.lock"));
            Outcome {
                events: per_thread * threads as u64,
                elapsed,
                waits: waits.waits,
                waited: waits.wait_time,
                shard: None,
            }
        }
    };
    outcome.shard = shard_waits()
        .zip(shard_before)
        .map(|((waits, waited), (waits0, waited0))| (waits - waits0, waited - waited0));
    outcome
}

/// What the table's shard locks counted so far, when they count (`--features lock-stats`).
#[cfg(feature = "lock-stats")]
fn shard_waits() -> Option<(u64, Duration)> {
    let waits = xdhcp6_engine::table::lock_waits();
    Some((waits.waits, waits.wait_time))
}

#[cfg(not(feature = "lock-stats"))]
fn shard_waits() -> Option<(u64, Duration)> {
    None
}

/// The table alone: takes the whole event (as a journal sink does) and drops it.
struct Dropped;

impl EventSink for Dropped {
    fn emit(&mut self, event: LeaseEvent) {
        std::hint::black_box(event);
    }
}

/// Runs one thread per sink, each renewing its own clients `per_thread` times in turn; the
/// time from the common start until the last thread ends, and the sinks back.
fn drive<S: EventSink + Send + 'static>(
    table: &Arc<LeaseTable>,
    sinks: Vec<S>,
    per_thread: u64,
    start: &Arc<Barrier>,
) -> (Duration, Vec<S>) {
    let handles: Vec<_> = sinks
        .into_iter()
        .enumerate()
        .map(|(thread, mut sink)| {
            let (table, start) = (Arc::clone(table), Arc::clone(start));
            thread::spawn(move || {
                let duids: Vec<Vec<u8>> = (0..CLIENTS_PER_THREAD)
                    .map(|client| duid(thread, client))
                    .collect();
                start.wait();
                for i in 0..per_thread {
                    let client = i % CLIENTS_PER_THREAD;
                    let key = table.ia_key(&duids[client as usize], 1, IaKind::Na, LinkId(0));
                    let now = 2 + (i / CLIENTS_PER_THREAD) as u32;
                    table
                        .renew(&key, addr(thread, client), LIFE, now, &mut sink)
                        .expect("the client's lease");
                }
                sink
            })
        })
        .collect();
    start.wait();
    let started = Instant::now();
    let sinks: Vec<S> = handles
        .into_iter()
        .map(|handle| handle.join().expect("a bench thread"))
        .collect();
    (started.elapsed(), sinks)
}

/// The baseline: one buffer behind one mutex, shared by every sink, as the journal's queue
/// was before per-sink lanes.
struct MutexQueue {
    pending: Mutex<Pending>,
    wake: Condvar,
    writer: Mutex<Option<thread::JoinHandle<()>>>,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    seq: u64,
    closing: bool,
}

impl MutexQueue {
    /// A queue whose writer thread appends to `path`.
    fn start(path: PathBuf) -> Arc<Self> {
        let queue = Arc::new(Self {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            writer: Mutex::new(None),
        });
        let writing = Arc::clone(&queue);
        let writer = thread::spawn(move || writing.write_until_closed(&path));
        *queue.writer.lock().unwrap() = Some(writer);
        queue
    }

    /// The old writer: take everything queued, write it; sync at most once per interval.
    fn write_until_closed(&self, path: &Path) {
        let mut file = File::create(path).expect("the baseline's file");
        let mut spare = Vec::new();
        let mut last_sync = Instant::now();
        loop {
            let (mut bytes, closing) = {
                let mut pending = self.pending.lock().unwrap();
                loop {
                    if pending.closing {
                        break;
                    }
                    let elapsed = last_sync.elapsed();
                    if !pending.bytes.is_empty() && elapsed >= INTERVAL {
                        break;
                    }
                    let wait = if pending.bytes.is_empty() {
                        Duration::from_secs(1)
                    } else {
                        INTERVAL - elapsed
                    };
                    pending = self.wake.wait_timeout(pending, wait).unwrap().0;
                }
                std::mem::swap(&mut spare, &mut pending.bytes);
                (std::mem::take(&mut spare), pending.closing)
            };
            file.write_all(&bytes)
                .and_then(|()| file.sync_data())
                .expect("the baseline writes");
            last_sync = Instant::now();
            bytes.clear();
            spare = bytes;
            if closing {
                let _ = fs::remove_file(path);
                return;
            }
        }
    }

    fn close(&self) {
        self.pending.lock().unwrap().closing = true;
        self.wake.notify_one();
        if let Some(writer) = self.writer.lock().unwrap().take() {
            writer.join().expect("the baseline writer");
        }
    }
}

/// The baseline sink: encodes, then appends under the shared mutex.
struct MutexSink {
    queue: Arc<MutexQueue>,
    links: LinkNames,
    scratch: Vec<u8>,
    contended: u64,
    waited: Duration,
}

impl MutexSink {
    fn new(queue: Arc<MutexQueue>, links: LinkNames) -> Self {
        Self {
            queue,
            links,
            scratch: Vec::with_capacity(128),
            contended: 0,
            waited: Duration::ZERO,
        }
    }
}

impl EventSink for MutexSink {
    fn emit(&mut self, event: LeaseEvent) {
        if event.kind == EventKind::Offered {
            return;
        }
        self.scratch.clear();
        let link = match self.links.name(event.record.lease.link) {
            Some(name) => Link::Name(name.into()),
            None => Link::Position(event.record.lease.link.0),
        };
        format::encode(
            &mut self.scratch,
            event.kind,
            event.at,
            &link,
            &event.record,
        );
        let mut pending = match self.queue.pending.try_lock() {
            Ok(pending) => pending,
            Err(TryLockError::WouldBlock) => {
                let started = Instant::now();
                let pending = self.queue.pending.lock().unwrap();
                self.contended += 1;
                self.waited += started.elapsed();
                pending
            }
            Err(TryLockError::Poisoned(_)) => panic!("a bench thread panicked"),
        };
        let was_empty = pending.bytes.is_empty();
        pending.bytes.extend_from_slice(&self.scratch);
        pending.seq += 1;
        drop(pending);
        if was_empty {
            self.queue.wake.notify_one();
        }
    }
}
