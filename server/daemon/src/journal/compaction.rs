//! Compaction: when the file outgrows [`JournalOptions`]' thresholds, a compaction thread calls
//! the snapshot closure and writes the live leases into `<path>.compact` as upsert records
//! while the writer keeps appending to the old file and also keeps a copy of everything it
//! writes from that moment (the tail). When the snapshot is synced, the writer appends the tail
//! to it, syncs, renames it over the journal, syncs the directory and appends to the new file
//! from then on. Why that replays to the same state, see [`Compaction`].
//!
//! It also rotates the file: when the zero tail after the records (`prealloc`) is less than
//! half of [`JournalOptions::prealloc_bytes`], the writer starts a compaction whatever the
//! garbage, and the new file is the snapshot followed by a zero tail of its own, written and
//! synced by the compaction thread; the writer goes on in the old file's zeros meanwhile, and
//! writes the tail into the new file's zeros at the hand-over.
//!
//! When it pays: the writer counts the records in the file and estimates the live set from
//! the records it writes ([`Tally`]: a `Bound` adds a lease, a `Released`, `Expired` or
//! `ProbationEnded` of a journaled lease removes one, starting from the replay's or the last
//! snapshot's leases), and compacts only once the file holds `ratio` times as many records as
//! the snapshot would ([`worth_compacting`]). By this rule a file of new leases only is never
//! compacted, however long: its snapshot would be as large as the file (only a rotation,
//! above, rewrites it).
//!
//! What the compaction costs the writer: the snapshot closure takes one table shard lock at a
//! time, the snapshot is written and synced in 4 MiB steps by its own thread (so that no large
//! write-back queues the group commits' `fdatasync` behind it), and the writer waits only for
//! the hand-over: the tail written, one sync, the rename and the directory sync. The snapshot
//! thread runs at the lowest best-effort I/O priority ([`COMPACTION_IO_PRIORITY`]), so that
//! a scheduler that orders by class serves the group commits' `fdatasync` first.
//!
//! Leases on links the configuration lacks ([`Unplaced`], held over in `held`) are not in the
//! table, so every snapshot writes them again from the replay, until they expire or a reload
//! adds their link and loads them into the table. A snapshot started before such a reload
//! may write a lease twice, from the table and from the held-over copy it started with: both
//! are the lease as it was loaded or newer, and every event on it since is in the tail, so
//! replay ends at the same state.
//!
//! [`JournalOptions`]: super::JournalOptions

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use xdhcp6_datapath::ioprio::{IoPriority, set_thread_io_priority, thread_io_priority};
use xdhcp6_engine::table::{EventKind, LeaseRecord, LeaseState};

use super::format::{self, HEADER_LEN, VERSION};
use super::writer::JournalWriter;
use super::{JournalError, JournalOptions, LinkNames, Unplaced, lock, prealloc};

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
    /// What the tail's records do to the live set.
    pub(super) tail_tally: Tally,
    thread: JoinHandle<()>,
}

/// What a run of records does to the journal: how many there are, how many of them add a
/// lease to the live set (`Bound`) and how many remove one (`Released`, `Expired`,
/// `ProbationEnded` of a bound or declined lease).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(super) struct Tally {
    pub(super) records: u64,
    pub(super) added: u64,
    pub(super) removed: u64,
}

impl Tally {
    /// Counts the framed records in `bytes` (whole records, as the writer writes them),
    /// reading only each record's length, event and state bytes.
    pub(super) fn of(bytes: &[u8]) -> Self {
        let mut tally = Self::default();
        let mut at = 0;
        while let Some(frame) = bytes.get(at..at + 8) {
            let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
            // Payload: event u8 | at u32 | ia kind u8 | state u8 | ...
            let event = bytes.get(at + 8).copied();
            let state = bytes.get(at + 14).copied();
            tally.records += 1;
            match (event, state) {
                (Some(EVENT_BOUND), _) => tally.added += 1,
                (Some(EVENT_RELEASED | EVENT_EXPIRED | EVENT_PROBATION_ENDED), Some(state))
                    if state != STATE_OFFERED =>
                {
                    tally.removed += 1;
                }
                _ => {}
            }
            at += 8 + len;
        }
        tally
    }

    pub(super) fn add(&mut self, other: Self) {
        self.records += other.records;
        self.added += other.added;
        self.removed += other.removed;
    }
}

// The event and state codes of `format` (version 2 on) that change the live set.
const EVENT_BOUND: u8 = 1;
const EVENT_RELEASED: u8 = 3;
const EVENT_EXPIRED: u8 = 5;
const EVENT_PROBATION_ENDED: u8 = 6;
const STATE_OFFERED: u8 = 0;

/// Whether a journal of `len` bytes holding `records` records, of which an estimated `live`
/// leases are live, is worth compacting: it is at least `min_bytes` long and at least `ratio`
/// times as many records as the snapshot would write (so the snapshot drops at least
/// `1 - 1/ratio` of the file). A file of new leases only, however long, is never compacted:
/// its snapshot would be as large as the file.
pub(super) fn worth_compacting(
    len: u64,
    records: u64,
    live: u64,
    options: &JournalOptions,
) -> bool {
    len >= options.min_bytes && records >= live.saturating_mul(options.ratio.max(1))
}

/// The snapshot's I/O class: the lowest level of best effort. Its writes and syncs then queue
/// behind the group commits' `fdatasync` wherever the device's scheduler orders by class.
/// Not the idle class: under a steady load of commits that would starve the snapshot, and the
/// writer keeps a copy of every record written until the snapshot is done.
pub const COMPACTION_IO_PRIORITY: IoPriority = IoPriority::BestEffort(7);

/// Puts the calling compaction thread at [`COMPACTION_IO_PRIORITY`] and records what the
/// kernel reads back (a failure is logged: the snapshot is written all the same).
fn lower_io_priority(shared: &super::Shared) {
    let read_back =
        set_thread_io_priority(COMPACTION_IO_PRIORITY).and_then(|()| thread_io_priority());
    match read_back {
        Ok(priority) => *lock(&shared.compaction_io_priority) = Some(priority),
        Err(error) => tracing::warn!(
            %error,
            "the compaction runs at the writer's I/O priority: it could not be lowered"
        ),
    }
}

impl JournalWriter {
    /// Whether to start a compaction: the file holds enough garbage, or its zero tail runs
    /// low (a rotation into a new file with a tail of its own, prepared by the compaction
    /// thread while the writer writes into what is left, see `prealloc`).
    pub(super) fn should_compact(&self) -> bool {
        !self.shared.failed.load(Ordering::Acquire)
            && self.len >= self.retry_at
            && (worth_compacting(self.len, self.records, self.live, &self.options)
                || prealloc::tail_low(self.len, self.size, self.options.prealloc_bytes))
    }

    /// Counts records just written to the file into the live-set estimate.
    pub(super) fn count_written(&mut self, bytes: &[u8]) {
        let tally = Tally::of(bytes);
        self.records += tally.records;
        self.live = (self.live + tally.added).saturating_sub(tally.removed);
        if let Some(compaction) = &mut self.compaction {
            compaction.tail_tally.add(tally);
        }
    }

    pub(super) fn start_compaction(&mut self, at: u32) {
        let unplaced = {
            let mut held = lock(&self.shared.held);
            let expired = held.drop_expired(at);
            if expired > 0 {
                tracing::info!(
                    path = %self.path.display(),
                    expired,
                    kept = held.len(),
                    "dropped expired leases of links the configuration does not have"
                );
            }
            held.leases()
        };
        tracing::info!(
            path = %self.path.display(),
            len = self.len,
            records = self.records,
            live = self.live,
            last_snapshot_len = self.base,
            zero_tail = self.size.saturating_sub(self.len),
            "compacting the lease journal"
        );
        let snapshot = Arc::clone(&self.snapshot);
        let shared = Arc::clone(&self.shared);
        let compact_path = self.compact_path.clone();
        let prealloc = self.options.prealloc_bytes;
        let spawned = thread::Builder::new()
            .name("xdhcp6-compact".into())
            .spawn(move || {
                lower_io_priority(&shared);
                let records = snapshot();
                let result = write_snapshot(
                    &compact_path,
                    &shared.links.load(),
                    &records,
                    &unplaced,
                    at,
                    prealloc,
                )
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
                    tail_tally: Tally::default(),
                    thread,
                });
            }
            Err(error) => self.compaction_failed(&error),
        }
    }

    pub(super) fn finish_compaction(&mut self, done: io::Result<Snapshotted>) {
        let Some(compaction) = self.compaction.take() else {
            return;
        };
        if compaction.thread.join().is_err() {
            tracing::error!("lease journal compaction thread panicked");
        }
        let switched = done.and_then(|snapshot| {
            if self.shared.failed.load(Ordering::Acquire) {
                return Err(io::Error::other("journal writer failed"));
            }
            // Into the snapshot's zero tail, where there is one: a data-only sync.
            snapshot.file.write_all_at(&compaction.tail, snapshot.len)?;
            snapshot.file.sync_data()?;
            fs::rename(&self.compact_path, &self.path)?;
            sync_dir(&self.path)?;
            Ok(snapshot)
        });
        match switched {
            Ok(Snapshotted {
                file,
                len: snapshot_len,
                records: snapshot_records,
                size,
            }) => {
                let old_len = self.len;
                let old_records = self.records;
                let tail = compaction.tail_tally;
                self.file = file;
                self.len = snapshot_len + compaction.tail.len() as u64;
                self.size = size.max(self.len);
                if prealloc::tail_low(self.len, self.size, self.options.prealloc_bytes) {
                    // No room for the zeros: grow the file, and rotate again only after
                    // another preallocation's worth of records.
                    self.retry_at = self.len.saturating_add(self.options.prealloc_bytes);
                }
                self.base = snapshot_len;
                self.records = snapshot_records + tail.records;
                // The snapshot is the live set when it started; the tail's events follow it
                // (a tail event the snapshot already holds counts twice, an overestimate that
                // only delays the next compaction a little).
                self.live = (snapshot_records + tail.added).saturating_sub(tail.removed);
                self.shared.compactions.fetch_add(1, Ordering::AcqRel);
                tracing::info!(
                    path = %self.path.display(),
                    old_len,
                    old_records,
                    new_len = self.len,
                    new_records = self.records,
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

/// A snapshot written and synced: the file, open for writing, where its records end (the
/// writer's next offset), how many it holds, and the file's size (its zero tail included).
pub(super) struct Snapshotted {
    pub(super) file: File,
    pub(super) len: u64,
    pub(super) records: u64,
    pub(super) size: u64,
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
/// followed by a zero tail of `prealloc` bytes, or as long as the records if that is more
/// (`prealloc`; best effort: none where they do not fit), synced; returns it open for writing, with where its records end, their number and
/// the file's size.
///
/// The file is written in pieces of [`SNAPSHOT_CHUNK`] and synced after every
/// [`SNAPSHOT_SYNC_EVERY`] bytes, so that the disk never holds more than that much of it
/// unsynced: the group commits' `fdatasync` on the same disk then never queues behind the
/// whole snapshot's write-back, and the last sync is a small one.
pub(super) fn write_snapshot(
    path: &Path,
    links: &LinkNames,
    records: &[LeaseRecord],
    unplaced: &[Unplaced],
    at: u32,
    prealloc: u64,
) -> Result<Snapshotted, JournalError> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .map_err(JournalError::io(path))?;
    let mut out = Vec::with_capacity(SNAPSHOT_CHUNK + 4096);
    out.extend_from_slice(&format::header(VERSION));
    let mut len = 0;
    let mut unsynced = 0;
    let mut written = 0;
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
        written += 1;
        if out.len() >= SNAPSHOT_CHUNK {
            file.write_all(&out).map_err(JournalError::io(path))?;
            len += out.len() as u64;
            unsynced += out.len();
            out.clear();
            if unsynced >= SNAPSHOT_SYNC_EVERY {
                file.sync_data().map_err(JournalError::io(path))?;
                unsynced = 0;
            }
        }
    }
    file.write_all(&out)
        .and_then(|()| file.sync_all())
        .map_err(JournalError::io(path))?;
    len += out.len() as u64;
    let size = prealloc::extend(
        &file,
        path,
        len,
        len,
        prealloc::snapshot_tail(prealloc, len),
    );
    Ok(Snapshotted {
        file,
        len,
        records: written,
        size,
    })
}

/// How much of a snapshot is encoded before it is written.
const SNAPSHOT_CHUNK: usize = 1 << 20;

/// How much of a snapshot is written between two syncs of it.
const SNAPSHOT_SYNC_EVERY: usize = 4 << 20;

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

#[cfg(test)]
mod tests {
    use xdhcp6_engine::config::LinkId;
    use xdhcp6_engine::table::{DuidBuf, IaKind, Lease, Lifetimes};

    use super::format::Link;
    use super::*;

    fn record(n: u32, state: LeaseState) -> LeaseRecord {
        LeaseRecord {
            relay: None,
            reconfigure: false,
            duid: DuidBuf::new(&n.to_be_bytes()),
            lease: Lease {
                addr: u128::from(n),
                prefix_len: 128,
                kind: IaKind::Na,
                iaid: n,
                link: LinkId(0),
                state,
                lifetimes: Lifetimes {
                    preferred: 10,
                    valid: 20,
                },
                expires: 100,
            },
        }
    }

    /// `count` records of `kind`, as the writer writes them.
    fn records(kind: EventKind, state: LeaseState, count: u32) -> Vec<u8> {
        let link = Link::Name("lan".into());
        let mut out = Vec::new();
        for n in 0..count {
            format::encode(&mut out, kind, 1, &link, &record(n, state));
        }
        out
    }

    #[test]
    fn tally_counts_records_and_the_live_set_changes() {
        let mut bytes = records(EventKind::Bound, LeaseState::Bound, 5);
        bytes.extend(records(EventKind::Renewed, LeaseState::Bound, 4));
        bytes.extend(records(EventKind::Declined, LeaseState::Declined, 1));
        bytes.extend(records(EventKind::Released, LeaseState::Bound, 2));
        bytes.extend(records(EventKind::Expired, LeaseState::Bound, 1));
        bytes.extend(records(EventKind::ProbationEnded, LeaseState::Declined, 1));
        // An offer hold running out removes nothing the journal holds.
        bytes.extend(records(EventKind::Expired, LeaseState::Offered, 3));
        assert_eq!(
            Tally::of(&bytes),
            Tally {
                records: 17,
                added: 5,
                removed: 4,
            }
        );
        assert_eq!(Tally::of(&[]), Tally::default());
    }

    #[test]
    fn only_a_journal_holding_garbage_is_worth_compacting() {
        let options = JournalOptions {
            min_bytes: 64 << 20,
            ratio: 2,
            ..JournalOptions::default()
        };
        let over = 100 << 20;
        // Every record live (new leases only): the snapshot would be the file again.
        assert!(!worth_compacting(over, 1_000_000, 1_000_000, &options));
        // Half the records superseded or removed.
        assert!(worth_compacting(over, 1_000_000, 500_000, &options));
        assert!(!worth_compacting(over, 1_000_000, 500_001, &options));
        // Nothing live at all.
        assert!(worth_compacting(over, 1_000_000, 0, &options));
        // Under `min_bytes`, however much garbage.
        assert!(!worth_compacting(
            options.min_bytes - 1,
            1_000_000,
            1,
            &options
        ));
        // The default ratio waits until three quarters are garbage.
        let default = JournalOptions {
            min_bytes: 64 << 20,
            ..JournalOptions::default()
        };
        assert!(!worth_compacting(over, 1_000_000, 500_000, &default));
        assert!(worth_compacting(over, 1_000_000, 250_000, &default));
    }

    #[test]
    fn a_snapshot_reports_the_records_it_wrote() {
        let dir = std::env::temp_dir().join(format!("xdhcp6-snapshot-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("leases.compact");
        let links = LinkNames::new(["lan".to_owned()]);
        let mut live: Vec<_> = (0..80_000).map(|n| record(n, LeaseState::Bound)).collect();
        live.push(record(90_000, LeaseState::Offered));
        let Snapshotted {
            len,
            records: written,
            size,
            ..
        } = write_snapshot(&path, &links, &live, &[], 7, 0).unwrap();
        assert_eq!(size, len);
        assert_eq!(written, 80_000);
        assert_eq!(len, fs::metadata(&path).unwrap().len());
        assert_eq!(len, snapshot_len(&links, &live, &[]));
        let bytes = fs::read(&path).unwrap();
        let tally = Tally::of(&bytes[HEADER_LEN as usize..]);
        assert_eq!(tally.records, 80_000);
        assert_eq!(tally.added, 80_000);
        fs::remove_dir_all(&dir).unwrap();
    }
}
