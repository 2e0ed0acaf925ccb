//! The writer thread: drains the sinks' queue, writes it with one `write`, syncs it with one
//! `fdatasync` (group commit), publishes the newest durable sequence number and starts and
//! finishes compactions (`compaction`).

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Instant;

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
}
