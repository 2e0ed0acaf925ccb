//! The lease journal: an append-only file of checksummed lease events, written by one thread.
//!
//! # Data flow
//!
//! Workers hand a [`JournalSink`] to `Engine::handle`; the table calls [`EventSink::emit`] with
//! a shard lock held, so the sink only encodes the event (Offered events are skipped: an offer
//! hold is not worth a disk write) and appends the bytes to one shared queue under a short
//! mutex, taking the next sequence number. The writer thread ([`JournalWriter`]) takes
//! everything queued at once, writes it with one `write`, calls `fdatasync` once (group commit)
//! and publishes the newest durable sequence number, waking [`Journal::wait_durable`].
//!
//! With [`Durability::Always`] a worker calls `wait_durable(sink.last_seq())` before it sends
//! the replies of a batch, so no Reply leaves before its lease is on disk. With
//! [`Durability::Batch`] the writer syncs at most once per interval and nobody waits.
//!
//! # File format (version 1, little endian)
//!
//! ```text
//! header : magic "XD6JRNL\0" (8) | version u32 | reserved u32 (0)
//! record : len u32 | crc u32 (CRC-32/IEEE of the len bytes then the payload) | payload (len)
//! payload: event u8 | at u32 | ia kind u8 | state u8 | prefix_len u8 | link u16 | iaid u32
//!          | addr u128 | preferred u32 | valid u32 | expires u32 | duid len u16 | duid bytes
//! ```
//!
//! # Replay
//!
//! Events apply in file order: Bound, Renewed and Declined upsert the lease keyed by
//! (DUID, IAID, IA kind, link, address); Released, Expired and ProbationEnded remove it. A
//! record cut short by a crash at the end of the file (or followed only by zeros, as a file
//! extended by a write that never reached the disk reads back) is torn: it is ignored and cut
//! off on open. A bad record followed by real data is corruption: replay stops there and says
//! so in [`Replay::corrupt`]; [`Journal::open`] then keeps a copy of the damaged file as
//! `<path>.corrupt` and replaces the journal with a fresh one holding what was replayed.
//!
//! # Compaction
//!
//! When the file outgrows [`JournalOptions`]' thresholds, a compaction thread calls the
//! snapshot closure and writes the live leases into `<path>.compact` as upsert records while
//! the writer keeps appending to the old file and also keeps a copy of everything it writes
//! from that moment (the tail). When the snapshot is synced, the writer appends the tail to it,
//! syncs, renames it over the journal, syncs the directory and appends to the new file from
//! then on. Why that replays to the same state, see [`Compaction`].

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::table::{
    DuidBuf, EventKind, EventSink, IaKind, Lease, LeaseEvent, LeaseRecord, LeaseState, Lifetimes,
};

/// The first eight bytes of every journal file.
pub const MAGIC: [u8; 8] = *b"XD6JRNL\0";

/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

/// Bytes of the file header: magic, version, reserved.
pub const HEADER_LEN: u64 = 16;

/// Bytes in front of every payload: length and checksum.
const FRAME_LEN: usize = 8;

/// Payload bytes before the DUID.
const FIXED_PAYLOAD_LEN: usize = 1 + 4 + 1 + 1 + 1 + 2 + 4 + 16 + 4 + 4 + 4 + 2;

/// The largest payload a valid record can have (a DUID length is a `u16`).
const MAX_PAYLOAD_LEN: usize = FIXED_PAYLOAD_LEN + u16::MAX as usize;

/// The sync interval of `"batch"` when none is given.
pub const DEFAULT_BATCH_INTERVAL: Duration = Duration::from_millis(10);

/// When the writer syncs the journal.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Durability {
    /// Every event is synced before [`Journal::wait_durable`] returns for it (group commit).
    Always,
    /// The writer syncs at most once per `interval`; a crash loses at most that much.
    Batch {
        /// The longest time between two syncs.
        interval: Duration,
    },
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Always => f.write_str("always"),
            Self::Batch { interval } => write!(f, "batch:{}ms", interval.as_millis()),
        }
    }
}

/// Why a durability setting did not parse.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("invalid durability {0:?}: expected \"always\", \"batch\" or \"batch:<n>ms\" (also us, s)")]
pub struct ParseDurabilityError(String);

impl FromStr for Durability {
    type Err = ParseDurabilityError;

    /// Parses `always`, `batch` (every [`DEFAULT_BATCH_INTERVAL`]) or `batch:<n><us|ms|s>`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ParseDurabilityError(text.to_owned());
        let text = text.trim();
        if text.eq_ignore_ascii_case("always") {
            return Ok(Self::Always);
        }
        if text.eq_ignore_ascii_case("batch") {
            return Ok(Self::Batch {
                interval: DEFAULT_BATCH_INTERVAL,
            });
        }
        let interval = text
            .strip_prefix("batch:")
            .and_then(parse_interval)
            .ok_or_else(error)?;
        if interval.is_zero() {
            return Err(error());
        }
        Ok(Self::Batch { interval })
    }
}

fn parse_interval(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit): (&str, fn(u64) -> Duration) = if let Some(n) = text.strip_suffix("us") {
        (n, Duration::from_micros)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, Duration::from_millis)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, Duration::from_secs)
    } else {
        (text, Duration::from_millis)
    };
    number.trim().parse().ok().map(unit)
}

/// When the writer compacts the journal: once the file is at least `min_bytes` long and at
/// least `ratio` times the size of the last snapshot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct JournalOptions {
    /// The smallest file worth compacting.
    pub min_bytes: u64,
    /// How many times the last snapshot's size the file may grow to.
    pub ratio: u64,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            min_bytes: 64 << 20,
            ratio: 4,
        }
    }
}

/// Why the journal could not be read, opened or kept.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file operation failed.
    #[error("lease journal {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The file does not start with the journal magic.
    #[error("{path} is not an xdhcp6 lease journal")]
    NotAJournal {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a format version this build does not read.
    #[error(
        "{path}: journal format version {version} is not supported (this build reads {VERSION})"
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// The version found in the header.
        version: u32,
    },
    /// A write or sync failed earlier; nothing is made durable any more.
    #[error("the lease journal writer failed; events are no longer made durable")]
    Failed,
}

impl JournalError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// What a journal replayed to: the live leases, and what was skipped.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Replay {
    /// The leases live after every good event, bound or declined, in no particular order.
    pub records: Vec<LeaseRecord>,
    /// Good records read.
    pub events: u64,
    /// Bytes of a torn last record (cut off on open).
    pub torn_bytes: u64,
    /// Whether a damaged record with data after it stopped the replay.
    pub corrupt: bool,
    /// Where the damaged record starts (file offset), when `corrupt`.
    pub corrupt_offset: Option<u64>,
    /// Bytes from the damaged record to the end of the file, not replayed.
    pub skipped_bytes: u64,
    /// Bytes of the good part of the file, header included.
    pub valid_bytes: u64,
}

/// Reads a journal without changing it (for `xdhcp6d leases`).
pub fn read_journal(path: &Path) -> Result<Replay, JournalError> {
    Ok(scan(path)?.replay)
}

/// The snapshot closure compaction calls: every live lease of the table.
pub type Snapshot = Arc<dyn Fn() -> Vec<LeaseRecord> + Send + Sync>;

/// The lease journal: shared by all workers (via `Arc`), written by one thread.
pub struct Journal {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("durability", &self.shared.durability)
            .field("durable_seq", &self.durable_seq())
            .field("lag", &self.lag())
            .finish()
    }
}

impl Journal {
    /// Replays the journal at `path` (creating it if missing) and starts the writer thread.
    pub fn open(
        path: &Path,
        durability: Durability,
        snapshot: Snapshot,
    ) -> Result<(Self, Replay), JournalError> {
        Self::open_with(path, durability, snapshot, JournalOptions::default())
    }

    /// [`Journal::open`] with compaction thresholds of your own.
    pub fn open_with(
        path: &Path,
        durability: Durability,
        snapshot: Snapshot,
        options: JournalOptions,
    ) -> Result<(Self, Replay), JournalError> {
        let compact_path = sibling(path, "compact");
        // A compaction that never reached its rename: the journal itself is complete.
        match fs::remove_file(&compact_path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                return Err(JournalError::io(&compact_path)(error));
            }
            _ => {}
        }
        let scanned = match scan(path) {
            Ok(scanned) => Some(scanned),
            Err(JournalError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                None
            }
            Err(error) => return Err(error),
        };
        let (file, len, base, replay) = match scanned {
            Some(Scan {
                replay,
                header_ok: true,
            }) if !replay.corrupt => {
                let file = OpenOptions::new()
                    .append(true)
                    .open(path)
                    .map_err(JournalError::io(path))?;
                if replay.torn_bytes > 0 {
                    file.set_len(replay.valid_bytes)
                        .and_then(|()| file.sync_all())
                        .map_err(JournalError::io(path))?;
                    tracing::warn!(
                        path = %path.display(),
                        torn_bytes = replay.torn_bytes,
                        "cut a torn last record off the lease journal"
                    );
                }
                let base = HEADER_LEN + replay.records.iter().map(encoded_len).sum::<u64>();
                (file, replay.valid_bytes, base, replay)
            }
            scanned => {
                let replay = scanned.map(|scan| scan.replay).unwrap_or_default();
                if replay.corrupt {
                    let aside = set_aside(path)?;
                    tracing::error!(
                        path = %path.display(),
                        kept_as = %aside.display(),
                        offset = replay.corrupt_offset,
                        skipped_bytes = replay.skipped_bytes,
                        "lease journal is corrupt; replayed the part before the damage"
                    );
                }
                // Missing, torn inside its header, or corrupt: start a fresh file holding what
                // was replayed, written aside and renamed so that a crash leaves either file.
                let at = 0;
                let (file, len) = write_snapshot(&compact_path, &replay.records, at)?;
                install(&compact_path, path)?;
                (file, len, len, replay)
            }
        };
        let shared = Arc::new(Shared {
            durability,
            pending: Mutex::new(Pending::default()),
            wake_writer: Condvar::new(),
            issued_seq: AtomicU64::new(0),
            durable_seq: AtomicU64::new(0),
            durable_lock: Mutex::new(()),
            durable_changed: Condvar::new(),
            failed: AtomicBool::new(false),
            compactions: AtomicU64::new(0),
        });
        let writer = JournalWriter {
            shared: Arc::clone(&shared),
            path: path.to_owned(),
            compact_path,
            file,
            len,
            snapshot,
            options,
            base,
            retry_at: 0,
            compaction: None,
            spare: Vec::new(),
        };
        let writer = thread::Builder::new()
            .name("xdhcp6-journal".into())
            .spawn(move || writer.run())
            .map_err(JournalError::io(path))?;
        let journal = Self {
            shared,
            writer: Some(writer),
            path: path.to_owned(),
        };
        Ok((journal, replay))
    }

    /// A sink for one worker's events.
    pub fn sink(&self) -> JournalSink {
        JournalSink {
            shared: Arc::clone(&self.shared),
            scratch: Vec::with_capacity(128),
            last_seq: 0,
        }
    }

    /// Blocks until every event up to `seq` is synced ([`Durability::Always`]); returns at
    /// once with [`Durability::Batch`]. Fails once the writer has failed: the caller must then
    /// not send the replies that depend on those events.
    pub fn wait_durable(&self, seq: u64) -> Result<(), JournalError> {
        let shared = &self.shared;
        if matches!(shared.durability, Durability::Batch { .. }) {
            return Ok(());
        }
        // Never wait for a number no sink has taken: it would never become durable.
        let seq = seq.min(shared.issued_seq.load(Ordering::Acquire));
        if shared.durable_seq.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let mut guard = lock(&shared.durable_lock);
        loop {
            if shared.durable_seq.load(Ordering::Acquire) >= seq {
                return Ok(());
            }
            if shared.failed.load(Ordering::Acquire) {
                return Err(JournalError::Failed);
            }
            guard = shared
                .durable_changed
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Whether every event up to `seq` is as durable as [`Self::wait_durable`] would make it,
    /// without waiting (always true with [`Durability::Batch`]).
    pub fn is_durable(&self, seq: u64) -> bool {
        let shared = &self.shared;
        matches!(shared.durability, Durability::Batch { .. })
            || shared.durable_seq.load(Ordering::Acquire)
                >= seq.min(shared.issued_seq.load(Ordering::Acquire))
    }

    /// The newest sequence number whose event (and every earlier one) is synced.
    pub fn durable_seq(&self) -> u64 {
        self.shared.durable_seq.load(Ordering::Acquire)
    }

    /// Events queued but not yet synced.
    pub fn lag(&self) -> u64 {
        let issued = self.shared.issued_seq.load(Ordering::Acquire);
        issued.saturating_sub(self.durable_seq())
    }

    /// Whether a write or sync failed (the journal then stops writing).
    pub fn has_failed(&self) -> bool {
        self.shared.failed.load(Ordering::Acquire)
    }

    /// Compactions completed since open.
    pub fn compactions(&self) -> u64 {
        self.shared.compactions.load(Ordering::Acquire)
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes and syncs everything queued, then stops the writer thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        lock(&self.shared.pending).closing = true;
        self.shared.wake_writer.notify_one();
        if writer.join().is_err() {
            tracing::error!(path = %self.path.display(), "lease journal writer panicked");
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One worker's way into the journal: an [`EventSink`] that encodes and queues events.
pub struct JournalSink {
    shared: Arc<Shared>,
    scratch: Vec<u8>,
    last_seq: u64,
}

impl fmt::Debug for JournalSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalSink")
            .field("last_seq", &self.last_seq)
            .finish()
    }
}

impl JournalSink {
    /// The sequence number of the newest event this sink queued (0 if none).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
}

impl EventSink for JournalSink {
    fn emit(&mut self, event: LeaseEvent) {
        // An offer is a hold of seconds: losing it in a crash costs the client one more
        // Solicit, so it is not worth a write.
        if event.kind == EventKind::Offered {
            return;
        }
        self.scratch.clear();
        encode(&mut self.scratch, event.kind, event.at, &event.record);
        let mut pending = lock(&self.shared.pending);
        if pending.closing {
            return;
        }
        let was_empty = pending.bytes.is_empty();
        pending.bytes.extend_from_slice(&self.scratch);
        pending.seq += 1;
        pending.last_at = pending.last_at.max(event.at);
        self.last_seq = pending.seq;
        self.shared.issued_seq.store(pending.seq, Ordering::Release);
        drop(pending);
        if was_empty {
            self.shared.wake_writer.notify_one();
        }
    }
}

/// State shared by the journal, its sinks and its writer.
struct Shared {
    durability: Durability,
    pending: Mutex<Pending>,
    /// Signalled when the queue goes from empty to not, on close, and when a compaction ends.
    wake_writer: Condvar,
    /// The newest sequence number handed out (mirrors `Pending::seq` for lock-free reads).
    issued_seq: AtomicU64,
    durable_seq: AtomicU64,
    durable_lock: Mutex<()>,
    durable_changed: Condvar,
    failed: AtomicBool,
    compactions: AtomicU64,
}

impl Shared {
    fn publish(&self, seq: u64) {
        self.durable_seq.store(seq, Ordering::Release);
        // Taking the lock orders this with a waiter between its check and its wait.
        drop(lock(&self.durable_lock));
        self.durable_changed.notify_all();
    }

    fn fail(&self) {
        self.failed.store(true, Ordering::Release);
        drop(lock(&self.durable_lock));
        self.durable_changed.notify_all();
    }
}

/// The queue between the sinks and the writer.
#[derive(Default)]
struct Pending {
    /// Encoded records, in sequence order.
    bytes: Vec<u8>,
    /// The sequence number of the last record in `bytes` (or the last one taken).
    seq: u64,
    /// The latest event time seen, for the records a snapshot writes.
    last_at: u32,
    closing: bool,
    /// A finished compaction, handed over by its thread.
    compacted: Option<io::Result<(File, u64)>>,
}

/// A compaction in flight.
///
/// # Why replay stays correct
///
/// Every event carries the whole lease and applies to exactly one key (DUID, IAID, kind, link,
/// address): an upsert sets the key's lease to the event's, a removal deletes it, so the state
/// of a key after replay is decided by the last event for that key alone. The table emits all
/// events of one address under that address's shard lock and queues them before releasing it,
/// so per key, queue order is table order.
///
/// The writer starts the snapshot only after it has written everything it dequeued so far;
/// call the first event it dequeues afterwards `p`. The snapshot reads each shard at some
/// moment after `p` was queued (or later than `p`'s slot in the queue). Every event from `p` on
/// is written to the old file and copied into the tail, and the tail follows the snapshot in
/// the new file. For a key with an event at or after `p`, the last such event is in the tail
/// and decides the key after replaying the new file, as it does in the old one. For a key with
/// no event from `p` on, its state never changed after `p`, so the snapshot holds exactly its
/// state (or nothing, if it was removed), which is what the old file replays to. Events of the
/// tail that the snapshot already reflects are applied twice in effect, which is harmless as
/// upserts and removals are idempotent.
///
/// The switch is crash-safe: the new file is synced before the rename and the directory after
/// it, so a crash leaves either the old complete journal or the new complete one, and a stale
/// `<path>.compact` is removed on open.
struct Compaction {
    tail: Vec<u8>,
    thread: JoinHandle<()>,
}

/// The writer thread: drains the queue, writes, syncs, publishes, compacts.
struct JournalWriter {
    shared: Arc<Shared>,
    path: PathBuf,
    compact_path: PathBuf,
    file: File,
    len: u64,
    snapshot: Snapshot,
    options: JournalOptions,
    /// Bytes of the last snapshot (or of the live set at open).
    base: u64,
    /// After a failed compaction, no new one before the file reaches this length.
    retry_at: u64,
    compaction: Option<Compaction>,
    spare: Vec<u8>,
}

/// What the writer took from the queue in one go.
struct Taken {
    bytes: Vec<u8>,
    seq: u64,
    last_at: u32,
    closing: bool,
    compacted: Option<io::Result<(File, u64)>>,
}

impl JournalWriter {
    fn run(mut self) {
        let mut last_sync = Instant::now();
        loop {
            let taken = self.take(last_sync);
            if !taken.bytes.is_empty() {
                self.write(&taken.bytes, taken.seq);
                last_sync = Instant::now();
            }
            if let Some(done) = taken.compacted {
                self.finish_compaction(done);
            } else if taken.closing {
                self.abandon_compaction();
            } else if self.compaction.is_none() && self.should_compact() {
                self.start_compaction(taken.last_at);
            }
            let mut bytes = taken.bytes;
            bytes.clear();
            self.spare = bytes;
            if taken.closing {
                return;
            }
        }
    }

    /// Waits for work, then takes the whole queue.
    fn take(&mut self, last_sync: Instant) -> Taken {
        let shared = Arc::clone(&self.shared);
        let mut pending = lock(&shared.pending);
        loop {
            if pending.closing || pending.compacted.is_some() {
                break;
            }
            if !pending.bytes.is_empty() {
                match shared.durability {
                    Durability::Always => break,
                    Durability::Batch { interval } => {
                        let elapsed = last_sync.elapsed();
                        if elapsed >= interval {
                            break;
                        }
                        pending = shared
                            .wake_writer
                            .wait_timeout(pending, interval - elapsed)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                        continue;
                    }
                }
            }
            pending = shared
                .wake_writer
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let mut bytes = std::mem::take(&mut self.spare);
        std::mem::swap(&mut bytes, &mut pending.bytes);
        Taken {
            bytes,
            seq: pending.seq,
            last_at: pending.last_at,
            closing: pending.closing,
            compacted: pending.compacted.take(),
        }
    }

    /// Appends `bytes` (events up to `seq`), syncs, publishes.
    fn write(&mut self, bytes: &[u8], seq: u64) {
        if self.shared.failed.load(Ordering::Acquire) {
            return;
        }
        if let Some(compaction) = &mut self.compaction {
            compaction.tail.extend_from_slice(bytes);
        }
        // One write and one fdatasync for the whole batch: the group commit.
        let result = self
            .file
            .write_all(bytes)
            .and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.len += bytes.len() as u64;
                self.shared.publish(seq);
            }
            Err(error) => {
                // After a failed write or fsync the file's tail is unknown (and a retried
                // fsync may report success for pages the kernel already dropped): stop.
                tracing::error!(
                    path = %self.path.display(),
                    %error,
                    "lease journal write failed; journaling stopped"
                );
                self.shared.fail();
            }
        }
    }

    fn should_compact(&self) -> bool {
        !self.shared.failed.load(Ordering::Acquire)
            && self.len >= self.options.min_bytes
            && self.len >= self.base.saturating_mul(self.options.ratio)
            && self.len >= self.retry_at
    }

    fn start_compaction(&mut self, at: u32) {
        let snapshot = Arc::clone(&self.snapshot);
        let shared = Arc::clone(&self.shared);
        let compact_path = self.compact_path.clone();
        let spawned = thread::Builder::new()
            .name("xdhcp6-compact".into())
            .spawn(move || {
                let records = snapshot();
                let result =
                    write_snapshot(&compact_path, &records, at).map_err(|error| match error {
                        JournalError::Io { source, .. } => source,
                        other => io::Error::other(other.to_string()),
                    });
                lock(&shared.pending).compacted = Some(result);
                shared.wake_writer.notify_one();
            });
        match spawned {
            Ok(thread) => {
                self.compaction = Some(Compaction {
                    tail: Vec::new(),
                    thread,
                });
            }
            Err(error) => self.compaction_failed(&error),
        }
    }

    fn finish_compaction(&mut self, done: io::Result<(File, u64)>) {
        let Some(compaction) = self.compaction.take() else {
            return;
        };
        if compaction.thread.join().is_err() {
            tracing::error!("lease journal compaction thread panicked");
        }
        let switched = done.and_then(|(mut file, snapshot_len)| {
            if self.shared.failed.load(Ordering::Acquire) {
                return Err(io::Error::other("journal writer failed"));
            }
            file.write_all(&compaction.tail)?;
            file.sync_data()?;
            fs::rename(&self.compact_path, &self.path)?;
            sync_dir(&self.path)?;
            Ok((file, snapshot_len))
        });
        match switched {
            Ok((file, snapshot_len)) => {
                let old_len = self.len;
                self.file = file;
                self.len = snapshot_len + compaction.tail.len() as u64;
                self.base = snapshot_len;
                self.shared.compactions.fetch_add(1, Ordering::AcqRel);
                tracing::info!(
                    path = %self.path.display(),
                    old_len,
                    new_len = self.len,
                    "compacted the lease journal"
                );
            }
            Err(error) => {
                let _ = fs::remove_file(&self.compact_path);
                self.compaction_failed(&error);
            }
        }
    }

    fn compaction_failed(&mut self, error: &io::Error) {
        self.retry_at = self.len.saturating_add(self.options.min_bytes.max(1));
        tracing::warn!(
            path = %self.path.display(),
            %error,
            retry_at = self.retry_at,
            "lease journal compaction failed; appending to the old file"
        );
    }

    /// Shutting down: let a running snapshot finish, then drop its file.
    fn abandon_compaction(&mut self) {
        if let Some(compaction) = self.compaction.take() {
            let _ = compaction.thread.join();
            lock(&self.shared.pending).compacted = None;
            let _ = fs::remove_file(&self.compact_path);
        }
    }
}

/// Appends the framed record of one event to `out`.
fn encode(out: &mut Vec<u8>, kind: EventKind, at: u32, record: &LeaseRecord) {
    let lease = &record.lease;
    let duid = record.duid.as_bytes();
    let duid = duid.get(..usize::from(u16::MAX)).unwrap_or(duid);
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_LEN]);
    out.push(event_code(kind));
    out.extend_from_slice(&at.to_le_bytes());
    out.push(match lease.kind {
        IaKind::Na => 0,
        IaKind::Pd => 1,
    });
    out.push(match lease.state {
        LeaseState::Offered => 0,
        LeaseState::Bound => 1,
        LeaseState::Declined => 2,
    });
    out.push(lease.prefix_len);
    out.extend_from_slice(&lease.link.0.to_le_bytes());
    out.extend_from_slice(&lease.iaid.to_le_bytes());
    out.extend_from_slice(&lease.addr.to_le_bytes());
    out.extend_from_slice(&lease.lifetimes.preferred.to_le_bytes());
    out.extend_from_slice(&lease.lifetimes.valid.to_le_bytes());
    out.extend_from_slice(&lease.expires.to_le_bytes());
    out.extend_from_slice(&(duid.len() as u16).to_le_bytes());
    out.extend_from_slice(duid);
    let len = (out.len() - start - FRAME_LEN) as u32;
    let len_bytes = len.to_le_bytes();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes);
    hasher.update(&out[start + FRAME_LEN..]);
    out[start..start + 4].copy_from_slice(&len_bytes);
    out[start + 4..start + FRAME_LEN].copy_from_slice(&hasher.finalize().to_le_bytes());
}

fn encoded_len(record: &LeaseRecord) -> u64 {
    (FRAME_LEN + FIXED_PAYLOAD_LEN + record.duid.as_bytes().len().min(usize::from(u16::MAX))) as u64
}

fn checksum(len: u32, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

fn event_code(kind: EventKind) -> u8 {
    match kind {
        EventKind::Offered => 0,
        EventKind::Bound => 1,
        EventKind::Renewed => 2,
        EventKind::Released => 3,
        EventKind::Declined => 4,
        EventKind::Expired => 5,
        EventKind::ProbationEnded => 6,
    }
}

/// Decodes a payload whose checksum matched; `None` if it is not a valid version-1 payload.
fn decode(payload: &[u8]) -> Option<(EventKind, u32, LeaseRecord)> {
    let mut reader = Fields(payload);
    let kind = match reader.u8()? {
        0 => EventKind::Offered,
        1 => EventKind::Bound,
        2 => EventKind::Renewed,
        3 => EventKind::Released,
        4 => EventKind::Declined,
        5 => EventKind::Expired,
        6 => EventKind::ProbationEnded,
        _ => return None,
    };
    let at = reader.u32()?;
    let ia_kind = match reader.u8()? {
        0 => IaKind::Na,
        1 => IaKind::Pd,
        _ => return None,
    };
    let state = match reader.u8()? {
        0 => LeaseState::Offered,
        1 => LeaseState::Bound,
        2 => LeaseState::Declined,
        _ => return None,
    };
    let prefix_len = reader.u8()?;
    let link = LinkId(u16::from_le_bytes(reader.array()?));
    let iaid = reader.u32()?;
    let addr = u128::from_le_bytes(reader.array()?);
    let preferred = reader.u32()?;
    let valid = reader.u32()?;
    let expires = reader.u32()?;
    let duid_len = u16::from_le_bytes(reader.array()?);
    let duid = reader.take(usize::from(duid_len))?;
    if !reader.0.is_empty() || prefix_len > 128 {
        return None;
    }
    let record = LeaseRecord {
        duid: DuidBuf::new(duid),
        lease: Lease {
            addr,
            prefix_len,
            kind: ia_kind,
            iaid,
            link,
            state,
            lifetimes: Lifetimes { preferred, valid },
            expires,
        },
    };
    Some((kind, at, record))
}

/// A cursor over a payload.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.array()?))
    }
}

/// A lease compared and hashed by its key alone: (DUID, IAID, kind, link, address).
struct Keyed(LeaseRecord);

impl PartialEq for Keyed {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.0.lease, &other.0.lease);
        a.addr == b.addr
            && a.kind == b.kind
            && a.iaid == b.iaid
            && a.link == b.link
            && self.0.duid == other.0.duid
    }
}

impl Eq for Keyed {}

impl Hash for Keyed {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let lease = &self.0.lease;
        lease.addr.hash(state);
        lease.kind.hash(state);
        lease.iaid.hash(state);
        lease.link.hash(state);
        self.0.duid.as_bytes().hash(state);
    }
}

fn apply(live: &mut HashSet<Keyed>, kind: EventKind, record: LeaseRecord) {
    match kind {
        EventKind::Offered => {}
        EventKind::Bound | EventKind::Renewed | EventKind::Declined => {
            live.replace(Keyed(record));
        }
        EventKind::Released | EventKind::Expired | EventKind::ProbationEnded => {
            live.remove(&Keyed(record));
        }
    }
}

/// A scanned file.
struct Scan {
    replay: Replay,
    /// Whether the file had a complete, valid header.
    header_ok: bool,
}

/// Reads the journal at `path` and replays it, changing nothing.
fn scan(path: &Path) -> Result<Scan, JournalError> {
    let file = File::open(path).map_err(JournalError::io(path))?;
    let file_len = file.metadata().map_err(JournalError::io(path))?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut replay = Replay::default();

    let mut header = [0; HEADER_LEN as usize];
    let got = read_full(&mut reader, &mut header).map_err(JournalError::io(path))?;
    if got < header.len() {
        // Created but never fully written: empty, if what is there is a header's beginning.
        let mut expected = [0; HEADER_LEN as usize];
        expected[..8].copy_from_slice(&MAGIC);
        expected[8..12].copy_from_slice(&VERSION.to_le_bytes());
        let head = &header[..got];
        if head != &expected[..got] && head.iter().any(|&byte| byte != 0) {
            return Err(JournalError::NotAJournal {
                path: path.to_owned(),
            });
        }
        replay.torn_bytes = got as u64;
        return Ok(Scan {
            replay,
            header_ok: false,
        });
    }
    if header[..8] != MAGIC {
        return Err(JournalError::NotAJournal {
            path: path.to_owned(),
        });
    }
    let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if version != VERSION {
        return Err(JournalError::Version {
            path: path.to_owned(),
            version,
        });
    }

    let mut live = HashSet::new();
    let mut pos = HEADER_LEN;
    let mut payload = Vec::new();
    loop {
        let remaining = file_len - pos;
        if remaining == 0 {
            break;
        }
        let mut frame = [0; FRAME_LEN];
        let got = read_full(&mut reader, &mut frame).map_err(JournalError::io(path))?;
        if got < FRAME_LEN {
            replay.torn_bytes = remaining;
            break;
        }
        let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let bad = if len as usize > MAX_PAYLOAD_LEN || (len as usize) < FIXED_PAYLOAD_LEN {
            Some(frame.iter().all(|&byte| byte == 0))
        } else if remaining < (FRAME_LEN as u64) + u64::from(len) {
            // Cut short by the end of the file: a write that did not finish.
            replay.torn_bytes = remaining;
            break;
        } else {
            payload.resize(len as usize, 0);
            reader
                .read_exact(&mut payload)
                .map_err(JournalError::io(path))?;
            if checksum(len, &payload) != crc {
                Some(true)
            } else if let Some((kind, _at, record)) = decode(&payload) {
                apply(&mut live, kind, record);
                replay.events += 1;
                pos += (FRAME_LEN as u64) + u64::from(len);
                None
            } else {
                // The checksum matched but the payload is not one this build writes.
                Some(false)
            }
        };
        if let Some(may_be_torn) = bad {
            // A bad record with only zeros after it is the end of a write that never reached
            // the disk (a file extended by the write reads back zeros): torn, not corrupt.
            let zeros_after = rest_is_zero(&mut reader).map_err(JournalError::io(path))?;
            if may_be_torn && zeros_after {
                replay.torn_bytes = remaining;
            } else {
                replay.corrupt = true;
                replay.corrupt_offset = Some(pos);
                replay.skipped_bytes = remaining;
            }
            break;
        }
    }
    replay.valid_bytes = pos;
    replay.records = live.into_iter().map(|keyed| keyed.0).collect();
    Ok(Scan {
        replay,
        header_ok: true,
    })
}

/// Reads until `buf` is full or the end of the input; returns how much was read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(got)
}

fn rest_is_zero(reader: &mut impl Read) -> io::Result<bool> {
    let mut chunk = [0; 8192];
    loop {
        let n = read_full(reader, &mut chunk)?;
        if chunk[..n].iter().any(|&byte| byte != 0) {
            return Ok(false);
        }
        if n < chunk.len() {
            return Ok(true);
        }
    }
}

/// Writes a journal holding `records` as upserts to `path`, synced; returns it open for
/// appending, with its length.
fn write_snapshot(
    path: &Path,
    records: &[LeaseRecord],
    at: u32,
) -> Result<(File, u64), JournalError> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .map_err(JournalError::io(path))?;
    let mut out = Vec::with_capacity(1 << 20);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let mut len = 0;
    for record in records {
        let kind = match record.lease.state {
            // Offers are not journaled; a snapshot drops them too.
            LeaseState::Offered => continue,
            LeaseState::Bound => EventKind::Bound,
            LeaseState::Declined => EventKind::Declined,
        };
        encode(&mut out, kind, at, record);
        if out.len() >= 1 << 20 {
            file.write_all(&out).map_err(JournalError::io(path))?;
            len += out.len() as u64;
            out.clear();
        }
    }
    file.write_all(&out)
        .and_then(|()| file.sync_all())
        .map_err(JournalError::io(path))?;
    len += out.len() as u64;
    Ok((file, len))
}

/// Renames `from` over `to` and syncs the directory.
fn install(from: &Path, to: &Path) -> Result<(), JournalError> {
    fs::rename(from, to).map_err(JournalError::io(to))?;
    sync_dir(to).map_err(JournalError::io(to))
}

fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// Keeps a copy of a corrupt journal as `<path>.corrupt` (or `.corrupt.N`, keeping older
/// ones). The journal itself stays in place until the fresh one is renamed over it, so a crash
/// in between replays the same damaged file again rather than nothing.
fn set_aside(path: &Path) -> Result<PathBuf, JournalError> {
    let mut aside = sibling(path, "corrupt");
    for n in 1.. {
        if !aside.exists() {
            break;
        }
        aside = sibling(path, &format!("corrupt.{n}"));
    }
    if fs::hard_link(path, &aside).is_err() {
        fs::copy(path, &aside)
            .and_then(|_| File::open(&aside)?.sync_all())
            .map_err(JournalError::io(&aside))?;
    }
    Ok(aside)
}

/// `<path>.<suffix>`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(duid: &[u8], addr: u128) -> LeaseRecord {
        LeaseRecord {
            duid: DuidBuf::new(duid),
            lease: Lease {
                addr,
                prefix_len: 128,
                kind: IaKind::Na,
                iaid: 7,
                link: LinkId(3),
                state: LeaseState::Bound,
                lifetimes: Lifetimes {
                    preferred: 100,
                    valid: 200,
                },
                expires: 1234,
            },
        }
    }

    #[test]
    fn payload_round_trips_and_rejects_junk() {
        let original = record(&[1, 2, 3, 4], 0x2001_0db8 << 96 | 5);
        let mut out = Vec::new();
        encode(&mut out, EventKind::Renewed, 99, &original);
        assert_eq!(out.len() as u64, encoded_len(&original));
        let len = u32::from_le_bytes(out[..4].try_into().unwrap());
        let crc = u32::from_le_bytes(out[4..8].try_into().unwrap());
        assert_eq!(checksum(len, &out[8..]), crc);
        assert_eq!(
            decode(&out[8..]),
            Some((EventKind::Renewed, 99, original.clone()))
        );
        assert_eq!(decode(&out[8..out.len() - 1]), None);
        let mut bad = out[8..].to_vec();
        bad[0] = 42;
        assert_eq!(decode(&bad), None);
    }

    #[test]
    fn journal_is_shared_across_threads() {
        fn shared<T: Send + Sync>() {}
        fn sent<T: Send>() {}
        shared::<Journal>();
        sent::<JournalSink>();
    }

    #[test]
    fn durability_parses_and_prints() {
        assert_eq!("always".parse(), Ok(Durability::Always));
        assert_eq!(
            "batch".parse(),
            Ok(Durability::Batch {
                interval: DEFAULT_BATCH_INTERVAL
            })
        );
        let twenty = Durability::Batch {
            interval: Duration::from_millis(20),
        };
        assert_eq!("batch:20ms".parse(), Ok(twenty));
        assert_eq!("batch:20".parse(), Ok(twenty));
        assert_eq!(twenty.to_string().parse(), Ok(twenty));
        assert_eq!(
            "batch:1s".parse(),
            Ok(Durability::Batch {
                interval: Duration::from_secs(1)
            })
        );
        assert!("batch:0ms".parse::<Durability>().is_err());
        assert!("sometimes".parse::<Durability>().is_err());
    }
}
