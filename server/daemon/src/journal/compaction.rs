//! Compaction: when the file outgrows [`JournalOptions`]' thresholds, a compaction thread calls
//! the snapshot closure and writes the live leases into `<path>.compact` as upsert records
//! while the writer keeps appending to the old file and also keeps a copy of everything it
//! writes from that moment (the tail). When the snapshot is synced, the writer appends the tail
//! to it, syncs, renames it over the journal, syncs the directory and appends to the new file
//! from then on. Why that replays to the same state, see [`Compaction`].
//!
//! Leases on links the configuration lacks ([`Unplaced`]) are not in the table, so every
//! snapshot writes them again from the replay, until they expire.
//!
//! [`JournalOptions`]: super::JournalOptions

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use xdhcp6_engine::table::{EventKind, LeaseRecord, LeaseState};

use super::format::{self, HEADER_LEN, VERSION};
use super::writer::JournalWriter;
use super::{JournalError, LinkNames, Unplaced, lock};

/// A compaction in flight.
///
/// # Why replay stays correct
///
/// Every event carries the whole lease and applies to exactly one key (DUID, IAID, kind, link,
/// address): an upsert sets the key's lease to the event's, a removal deletes it, so the state
/// of a key after replay is decided by the last event for that key alone. The table emits all
/// events of one address under that address's shard lock, and the sink takes the event's
/// sequence number before releasing it; the writer writes in sequence order (`lanes`), so per
/// key, file order is table order.
///
/// The writer starts the snapshot between two writes; call `p` the first sequence number it
/// has not written then. Every event numbered below `p` was emitted (and applied to the table)
/// before the snapshot starts, and every event from `p` on is written afterwards, to the old
/// file and copied into the tail, and the tail follows the snapshot in the new file. For a key
/// with an event at or after `p`, the last such event is in the tail and decides the key after
/// replaying the new file, as it does in the old one. For a key with no event from `p` on, its
/// state has not changed since its last event, applied before the snapshot started, so the
/// snapshot holds exactly its state (or nothing, if it was removed), which is what the old
/// file replays to. Events of the
/// tail that the snapshot already reflects are applied twice in effect, which is harmless as
/// upserts and removals are idempotent. Unplaced leases get no events (no link of the
/// configuration is theirs), so writing them again keeps them as they were.
///
/// The switch is crash-safe: the new file is synced before the rename and the directory after
/// it, so a crash leaves either the old complete journal or the new complete one, and a stale
/// `<path>.compact` is removed on open.
pub(super) struct Compaction {
    pub(super) tail: Vec<u8>,
    thread: JoinHandle<()>,
}

impl JournalWriter {
    pub(super) fn should_compact(&self) -> bool {
        !self.shared.failed.load(Ordering::Acquire)
            && self.len >= self.options.min_bytes
            && self.len >= self.base.saturating_mul(self.options.ratio)
            && self.len >= self.retry_at
    }

    pub(super) fn start_compaction(&mut self, at: u32) {
        if self
            .unplaced
            .iter()
            .any(|lease| lease.record.lease.is_expired(at))
        {
            let kept: Vec<Unplaced> = self
                .unplaced
                .iter()
                .filter(|lease| !lease.record.lease.is_expired(at))
                .cloned()
                .collect();
            tracing::info!(
                path = %self.path.display(),
                expired = self.unplaced.len() - kept.len(),
                kept = kept.len(),
                "dropped expired leases of links the configuration does not have"
            );
            self.unplaced = kept.into();
        }
        let snapshot = Arc::clone(&self.snapshot);
        let shared = Arc::clone(&self.shared);
        let unplaced = Arc::clone(&self.unplaced);
        let compact_path = self.compact_path.clone();
        let spawned = thread::Builder::new()
            .name("xdhcp6-compact".into())
            .spawn(move || {
                let records = snapshot();
                let result =
                    write_snapshot(&compact_path, &shared.links.load(), &records, &unplaced, at)
                        .map_err(|error| match error {
                            JournalError::Io { source, .. } => source,
                            other => io::Error::other(other.to_string()),
                        });
                *lock(&shared.compacted) = Some(result);
                shared.wake();
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

    pub(super) fn finish_compaction(&mut self, done: io::Result<(File, u64)>) {
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
    ///
    /// The snapshot takes the table's shard locks, and a sink waiting on a full lane holds
    /// one: the lanes are taken from while it runs (into the next write).
    pub(super) fn abandon_compaction(&mut self) {
        if let Some(compaction) = self.compaction.take() {
            while !compaction.thread.is_finished() {
                self.take_pending();
                std::thread::park_timeout(Duration::from_millis(1));
            }
            let _ = compaction.thread.join();
            drop(lock(&self.shared.compacted).take());
            let _ = fs::remove_file(&self.compact_path);
        }
    }
}

/// The upsert event that re-creates a lease in a snapshot; `None` for an offer (offers are not
/// journaled, so a snapshot drops them too).
fn upsert(record: &LeaseRecord) -> Option<EventKind> {
    match record.lease.state {
        LeaseState::Offered => None,
        LeaseState::Bound => Some(EventKind::Bound),
        LeaseState::Declined => Some(EventKind::Declined),
    }
}

/// The length of the file [`write_snapshot`] writes.
pub(super) fn snapshot_len(
    links: &LinkNames,
    records: &[LeaseRecord],
    unplaced: &[Unplaced],
) -> u64 {
    let placed = records
        .iter()
        .filter(|record| upsert(record).is_some())
        .map(|record| format::encoded_len(&links.link(record.lease.link), record));
    let unplaced = unplaced
        .iter()
        .filter(|lease| upsert(&lease.record).is_some())
        .map(|lease| format::encoded_len(&lease.link, &lease.record));
    HEADER_LEN + placed.chain(unplaced).sum::<u64>()
}

/// Writes a journal holding `records` (on `links`) and `unplaced` as upserts to `path`,
/// synced; returns it open for appending, with its length.
pub(super) fn write_snapshot(
    path: &Path,
    links: &LinkNames,
    records: &[LeaseRecord],
    unplaced: &[Unplaced],
    at: u32,
) -> Result<(File, u64), JournalError> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .map_err(JournalError::io(path))?;
    let mut out = Vec::with_capacity(1 << 20);
    out.extend_from_slice(&format::header(VERSION));
    let mut len = 0;
    let placed = records
        .iter()
        .map(|record| (links.link(record.lease.link), record));
    let unplaced = unplaced
        .iter()
        .map(|lease| (lease.link.clone(), &lease.record));
    for (link, record) in placed.chain(unplaced) {
        let Some(kind) = upsert(record) else {
            continue;
        };
        format::encode(&mut out, kind, at, &link, record);
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
pub(super) fn install(from: &Path, to: &Path) -> Result<(), JournalError> {
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
