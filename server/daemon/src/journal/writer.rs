//! The writer thread: takes from the sinks' lanes in sequence order (`lanes`), writes the
//! records with one `write` at the offset where the file's records end (into its zero tail,
//! `prealloc`, or growing it where there is none), syncs them with one `fdatasync` (group
//! commit), publishes the newest durable sequence number and starts and finishes compactions
//! (`compaction`), which also rotate the file when its zero tail runs low. A failed write or
//! sync (a full disk, an I/O error) is retried with a growing pause until it succeeds;
//! meanwhile the journal says it has failed.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use super::compaction::Compaction;
use super::lanes::Merge;
use super::{Durability, JournalOptions, Shared, Snapshot, lock};

/// The writer thread's state.
pub(super) struct JournalWriter {
    pub(super) shared: Arc<Shared>,
    pub(super) path: PathBuf,
    pub(super) compact_path: PathBuf,
    pub(super) file: File,
    /// Where the records end: the next write's offset.
    pub(super) len: u64,
    /// The file's size: past `len`, zeros written and synced (`prealloc`).
    pub(super) size: u64,
    pub(super) snapshot: Snapshot,
    pub(super) options: JournalOptions,
    /// Bytes of the last snapshot (or of the live set at open).
    pub(super) base: u64,
    /// Records in the file.
    pub(super) records: u64,
    /// The estimated number of live leases: the records a snapshot would write.
    pub(super) live: u64,
    /// After a failed compaction, no new one before the file reaches this length.
    pub(super) retry_at: u64,
    pub(super) compaction: Option<Compaction>,
    /// The sinks' lanes, merged in sequence order.
    pub(super) merge: Merge,
    /// The records taken from the lanes and not written yet: the next group commit.
    bytes: Vec<u8>,
    /// The sequence number of the last record in `bytes`.
    pending_seq: u64,
}

impl JournalWriter {
    /// A writer writing to `file` from offset `len` on (`size` bytes long, zeros after `len`;
    /// `base` of its records were its snapshot), taking records from the sinks' lanes through
    /// `merge`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        shared: Arc<Shared>,
        path: PathBuf,
        compact_path: PathBuf,
        (file, len, size, base): (File, u64, u64, u64),
        (records, live): (u64, u64),
        snapshot: Snapshot,
        options: JournalOptions,
        merge: Merge,
    ) -> Self {
        Self {
            shared,
            path,
            compact_path,
            file,
            len,
            size: size.max(len),
            snapshot,
            options,
            base,
            records,
            live,
            // With no room for a zero tail at open, no rotation before another
            // preallocation's worth of records.
            retry_at: if super::prealloc::tail_low(len, size, options.prealloc_bytes) {
                len.saturating_add(options.prealloc_bytes)
            } else {
                0
            },
            compaction: None,
            merge,
            bytes: Vec::new(),
            pending_seq: 0,
        }
    }

    /// Takes what follows the records taken so far from the lanes into the next write.
    pub(super) fn take_pending(&mut self) -> Option<u64> {
        let taken = self.merge.take(&mut self.bytes);
        if let Some(seq) = taken {
            self.pending_seq = seq;
        }
        taken
    }

    /// Closing: takes every record the lanes hold into the next write, over any gap.
    fn take_all_pending(&mut self) -> Option<u64> {
        let taken = self.merge.take_all(&mut self.bytes);
        if let Some(seq) = taken {
            self.pending_seq = seq;
        }
        taken
    }

    /// The thread's loop, until the journal closes.
    pub(super) fn run(mut self) {
        let _ = self.shared.writer_thread.set(thread::current());
        let mut last_sync = Instant::now();
        // When the last group commit started: with a window, the next waits until it is
        // that old (`JournalOptions::group_window`).
        let mut sync_started = Instant::now()
            .checked_sub(self.options.group_window)
            .unwrap_or_else(Instant::now);
        let mut gap_rounds: u32 = 0;
        loop {
            // Closing is read before the lanes are, so that everything pushed before it was
            // set is taken below.
            let closing = self.shared.closing.load(Ordering::Acquire);
            if self.take_pending().is_some() {
                gap_rounds = 0;
            }
            let compacted = lock(&self.shared.compacted).take();
            if closing {
                // Let a running snapshot finish first (the lanes are taken from meanwhile),
                // then write everything.
                self.abandon_compaction();
                let durable = self.shared.durable_seq.load(Ordering::Acquire);
                let before = if self.bytes.is_empty() {
                    durable
                } else {
                    self.pending_seq
                };
                let seq = self.take_all_pending().unwrap_or(before);
                let bytes = std::mem::take(&mut self.bytes);
                if !bytes.is_empty() {
                    self.write(&bytes, seq);
                }
                return;
            }
            let due = self.until_due(last_sync, sync_started).is_zero();
            let mut wrote = false;
            if due && !self.bytes.is_empty() {
                sync_started = Instant::now();
                let mut bytes = std::mem::take(&mut self.bytes);
                self.write(&bytes, self.pending_seq);
                bytes.clear();
                self.bytes = bytes;
                last_sync = Instant::now();
                wrote = true;
            }
            let finished = compacted.is_some();
            if let Some(done) = compacted {
                self.finish_compaction(done);
            } else if self.compaction.is_none() && self.bytes.is_empty() && self.should_compact() {
                self.start_compaction(self.merge.last_at());
            }
            if wrote || finished {
                // Look again at once: records pushed during the write are the next group.
                continue;
            }
            let left = self.until_due(last_sync, sync_started);
            if self.shared.issued_seq.load(Ordering::SeqCst) > self.merge.taken() {
                if !due {
                    // Between syncs: a sink whose lane is half full wakes the writer to take
                    // from the lanes; otherwise it sleeps until the interval ends.
                    thread::park_timeout(left);
                } else if gap_rounds < GAP_YIELDS {
                    // A sink between taking its number and pushing: it is about to push.
                    gap_rounds += 1;
                    thread::yield_now();
                } else {
                    thread::park_timeout(GAP_POLL);
                }
                continue;
            }
            if !self.bytes.is_empty() {
                // Everything is taken and waits for the interval.
                thread::park_timeout(left);
                continue;
            }
            // Every number handed out is written: sleep until a sink pushes (`lanes`), a new
            // lane comes, the journal closes or a compaction finishes.
            self.shared.writer_idle.store(true, Ordering::SeqCst);
            if self.shared.issued_seq.load(Ordering::SeqCst) == self.merge.taken() {
                thread::park_timeout(IDLE_POLL);
            }
            self.shared.writer_idle.store(false, Ordering::SeqCst);
        }
    }

    /// How long until the next group commit may start (zero: now): with
    /// [`Durability::Batch`], the interval from the end of the last one (`last_sync`); with
    /// [`Durability::Always`], the group window from the start of the last one
    /// (`sync_started`), which without a window is always now.
    fn until_due(&self, last_sync: Instant, sync_started: Instant) -> Duration {
        match self.shared.durability {
            Durability::Always => self
                .options
                .group_window
                .saturating_sub(sync_started.elapsed()),
            Durability::Batch { interval } => interval.saturating_sub(last_sync.elapsed()),
        }
    }

    /// Appends `bytes` (events up to `seq`), syncs, publishes. When that fails, retries
    /// until it succeeds (or the journal closes); meanwhile the journal reports itself failed,
    /// which stops the server from making or extending bindings.
    fn write(&mut self, bytes: &[u8], seq: u64) {
        if let Some(compaction) = &mut self.compaction {
            compaction.tail.extend_from_slice(bytes);
        }
        // One write and one fdatasync for the whole batch: the group commit. Inside the zero
        // tail the sync has no size or extent to commit.
        let result = self
            .file
            .write_all_at(bytes, self.len)
            .and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => self.committed(bytes, seq),
            Err(error) => self.recover(bytes, seq, &error),
        }
    }

    /// After `bytes` (events up to `seq`) were written at the end of the records and synced:
    /// moves the end past them, counts them and the sync, and publishes `seq` as durable.
    fn committed(&mut self, bytes: &[u8], seq: u64) {
        self.len += bytes.len() as u64;
        self.size = self.size.max(self.len);
        self.count_written(bytes);
        self.shared.syncs.fetch_add(1, Ordering::Relaxed);
        self.shared.publish(seq);
    }

    /// After a failed write or sync of `bytes`: cuts the file back to its
    /// last synced length (or, inside its zero tail, leaves its size) and writes everything
    /// not yet synced again at that offset, with a growing pause between tries, until a try
    /// succeeds or the journal closes.
    ///
    /// Everything past the last good sync is written again rather than synced again, because
    /// after a failed fsync the kernel may have dropped the dirty pages and a second fsync may
    /// report success for data that never reached the disk; rewritten from memory, what the
    /// journal then calls durable was written and synced in one successful go.
    fn recover(&mut self, bytes: &[u8], seq: u64, error: &io::Error) {
        self.shared.fail();
        tracing::error!(
            path = %self.path.display(),
            %error,
            "lease journal write failed; no new or extended bindings until it writes again"
        );
        // A compaction's tail now misses what failed; the next one starts afresh.
        self.abandon_compaction();
        let mut unsynced = bytes.to_vec();
        let mut seq = seq;
        let mut pause = RETRY_FIRST;
        let mut tries: u64 = 1;
        loop {
            // Wait out the pause, taking what the sinks push meanwhile so that none of them
            // waits on a full lane for the whole pause.
            let deadline = Instant::now() + pause;
            let closing = loop {
                let closing = self.shared.closing.load(Ordering::Acquire);
                self.take_pending();
                let left = deadline.saturating_duration_since(Instant::now());
                if closing || left.is_zero() {
                    break closing;
                }
                thread::park_timeout(left.min(BATCH_POLL));
            };
            if closing {
                self.take_all_pending();
            }
            if !self.bytes.is_empty() {
                unsynced.append(&mut self.bytes);
                seq = seq.max(self.pending_seq);
            }
            // The compaction was abandoned: what it handed over is stale.
            drop(lock(&self.shared.compacted).take());
            tries += 1;
            // Past the zero tail, the failed write may have grown the file: cut it back.
            let cut = if self.size > self.len {
                Ok(())
            } else {
                self.file.set_len(self.len)
            };
            let result = cut
                .and_then(|()| self.file.write_all_at(&unsynced, self.len))
                .and_then(|()| self.file.sync_data());
            match result {
                Ok(()) => {
                    self.committed(&unsynced, seq);
                    self.shared.recover();
                    tracing::warn!(
                        path = %self.path.display(),
                        tries,
                        written = unsynced.len(),
                        "lease journal writes again; serving new and extended bindings"
                    );
                    return;
                }
                Err(error) if closing => {
                    tracing::error!(
                        path = %self.path.display(),
                        %error,
                        lost_bytes = unsynced.len(),
                        "closing with lease journal records that could not be written"
                    );
                    return;
                }
                Err(error) => {
                    tracing::debug!(
                        path = %self.path.display(),
                        %error,
                        tries,
                        "lease journal write failed again"
                    );
                    pause = (pause * 2).min(RETRY_MAX);
                }
            }
        }
    }
}

/// How often the writer takes from the lanes while it waits to retry a failed write.
const BATCH_POLL: Duration = Duration::from_millis(1);

/// How often the writer yields to a sink between its number and its push before it sleeps.
const GAP_YIELDS: u32 = 64;

/// How long the writer sleeps waiting for a number a sink has taken but not pushed yet.
const GAP_POLL: Duration = Duration::from_micros(20);

/// The longest the writer sleeps with nothing to write: a safety net, as every record pushed
/// while it sleeps wakes it.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// The first pause before a failed write is tried again.
const RETRY_FIRST: Duration = Duration::from_millis(50);

/// The longest pause between two tries of a failed write.
const RETRY_MAX: Duration = Duration::from_secs(2);
