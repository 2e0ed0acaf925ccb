//! The writer thread: drains the sinks' queue, writes it with one `write`, syncs it with one
//! `fdatasync` (group commit), publishes the newest durable sequence number and starts and
//! finishes compactions (`compaction`). A failed write or sync (a full disk, an I/O error) is
//! retried with a growing pause until it succeeds; meanwhile the journal says it has failed.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use super::compaction::Compaction;
use super::{Durability, JournalOptions, Shared, Snapshot, Unplaced, lock};

/// The writer thread's state.
pub(super) struct JournalWriter {
    pub(super) shared: Arc<Shared>,
    pub(super) path: PathBuf,
    pub(super) compact_path: PathBuf,
    pub(super) file: File,
    pub(super) len: u64,
    pub(super) snapshot: Snapshot,
    pub(super) options: JournalOptions,
    /// Bytes of the last snapshot (or of the live set at open).
    pub(super) base: u64,
    /// After a failed compaction, no new one before the file reaches this length.
    pub(super) retry_at: u64,
    pub(super) compaction: Option<Compaction>,
    /// Leases on links the configuration lacks: every snapshot writes them again.
    pub(super) unplaced: Arc<[Unplaced]>,
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
    /// A writer appending to `file` (`len` bytes long, of which `base` were its snapshot).
    pub(super) fn new(
        shared: Arc<Shared>,
        path: PathBuf,
        compact_path: PathBuf,
        (file, len, base): (File, u64, u64),
        snapshot: Snapshot,
        options: JournalOptions,
        unplaced: Vec<Unplaced>,
    ) -> Self {
        Self {
            shared,
            path,
            compact_path,
            file,
            len,
            snapshot,
            options,
            base,
            retry_at: 0,
            compaction: None,
            unplaced: unplaced.into(),
            spare: Vec::new(),
        }
    }

    /// The thread's loop, until the journal closes.
    pub(super) fn run(mut self) {
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

    /// Appends `bytes` (events up to `seq`), syncs, publishes. When that fails, retries
    /// until it succeeds (or the journal closes); meanwhile the journal reports itself failed,
    /// which stops the server from making or extending bindings.
    fn write(&mut self, bytes: &[u8], seq: u64) {
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
            Err(error) => self.recover(bytes, &error),
        }
    }

    /// After a failed write or sync of `bytes`: cuts the file back to its
    /// last synced length and writes everything not yet synced again, with a growing pause
    /// between tries, until a try succeeds or the journal closes.
    ///
    /// The file is cut back rather than synced again because after a failed fsync the kernel
    /// may have dropped the dirty pages and a second fsync may report success for data that
    /// never reached the disk; everything past the last good sync is written again from
    /// memory, so that what the journal then calls durable was written and synced in one
    /// successful go.
    fn recover(&mut self, bytes: &[u8], error: &io::Error) {
        self.shared.fail();
        tracing::error!(
            path = %self.path.display(),
            %error,
            "lease journal write failed; no new or extended bindings until it writes again"
        );
        // A compaction's tail now misses what failed; the next one starts afresh.
        self.abandon_compaction();
        let mut unsynced = bytes.to_vec();
        let mut pause = RETRY_FIRST;
        let mut tries: u64 = 1;
        loop {
            let (seq, closing) = {
                let mut pending = lock(&self.shared.pending);
                if !pending.closing {
                    pending = self
                        .shared
                        .wake_writer
                        .wait_timeout_while(pending, pause, |pending| !pending.closing)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                unsynced.extend_from_slice(&pending.bytes);
                pending.bytes.clear();
                pending.compacted = None;
                (pending.seq, pending.closing)
            };
            tries += 1;
            let result = self
                .file
                .set_len(self.len)
                .and_then(|()| self.file.write_all(&unsynced))
                .and_then(|()| self.file.sync_data());
            match result {
                Ok(()) => {
                    self.len += unsynced.len() as u64;
                    self.shared.publish(seq);
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

/// The first pause before a failed write is tried again.
const RETRY_FIRST: Duration = Duration::from_millis(50);

/// The longest pause between two tries of a failed write.
const RETRY_MAX: Duration = Duration::from_secs(2);
