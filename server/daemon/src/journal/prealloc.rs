//! The journal's zero tail: the file is kept longer than its records, the rest written with
//! zeros and synced before the writer reaches it, so that a group commit overwrites blocks
//! the file already has and its `fdatasync` has no metadata to commit.
//!
//! # Why
//!
//! An append that grows the file changes its size (and, on ext4 and XFS, allocates blocks):
//! `fdatasync` must then commit that metadata too, a journal commit of the file system on
//! top of the data's own write, which is most of a sync's latency on a virtual disk. A write
//! inside the file's size, into blocks already written, changes only data (the modification
//! time it also changes is not what `fdatasync` waits for).
//!
//! # Written zeros, not `fallocate`
//!
//! `fallocate(2)` reserves blocks as unwritten extents: reading them gives zeros, but the first
//! write into one converts it to a written extent, a metadata change that the next
//! `fdatasync` must commit, which is the cost this avoids. So the tail is written with zeros,
//! in [`ZERO_CHUNK`] pieces synced every [`ZERO_SYNC_EVERY`] bytes (the disk never holds much
//! of it unsynced ahead of the group commits' syncs), then synced as a whole (size and
//! extents) once, before the writer uses it.
//!
//! # Where the zeros are written
//!
//! - At open, when the tail left after the last record is under half of
//!   [`super::JournalOptions::prealloc_bytes`]: the start-up, before any reply.
//! - By every compaction, after the snapshot's records, in the compaction thread
//!   (`compaction`): the writer takes the new file, with its tail, at the hand-over. That
//!   tail is as long as the snapshot when it is longer than `prealloc_bytes`
//!   ([`snapshot_tail`]), so that a large table is not rewritten every `prealloc_bytes / 2`
//!   of records.
//! - When the writer's tail falls under half of `prealloc_bytes`, it starts a compaction even
//!   if the file holds little garbage (a rotation): the next file is prepared off the
//!   writer's path while it writes into the rest of the old file's zeros.
//!
//! Filling is best effort: where the disk has no room for it the tail is cut back and the
//! writer appends and grows the file as before (and tries again after another
//! `prealloc_bytes` of records). Replay reads the zeros after the last record as the end of
//! the journal (`replay`).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// How many zero bytes are written with one `write`.
const ZERO_CHUNK: usize = 1 << 20;

/// How many zero bytes are written between two syncs of the file.
const ZERO_SYNC_EVERY: u64 = 4 << 20;

/// The zero tail a snapshot of `len` bytes gets: `prealloc`, or as many bytes as the
/// snapshot if that is more (none with `prealloc` 0). A rotation then comes at most once per
/// about a snapshot's worth of records, so that rewriting a large table's snapshot costs at
/// most about one byte written in the background per byte of records (and one of zeros),
/// however small `prealloc` is; and the file, at most twice its snapshot and `prealloc`, is no
/// larger than the garbage rule lets it grow anyway.
pub(super) fn snapshot_tail(prealloc: u64, len: u64) -> u64 {
    if prealloc == 0 { 0 } else { prealloc.max(len) }
}

/// Whether the zeros left after `len` bytes of records in a file of `size` bytes are under
/// half of `prealloc` (never with `prealloc` 0: the file grows with every write).
pub(super) fn tail_low(len: u64, size: u64, prealloc: u64) -> bool {
    prealloc > 0 && size.saturating_sub(len) < prealloc / 2
}

/// Writes zeros over `from..to` of `file` and syncs it (data, size and extents).
pub(super) fn fill_zeros(file: &File, from: u64, to: u64) -> io::Result<()> {
    let zeros = vec![0; ZERO_CHUNK];
    let mut at = from;
    let mut unsynced = 0;
    while at < to {
        let n = usize::try_from(to - at).map_or(ZERO_CHUNK, |left| left.min(ZERO_CHUNK));
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
        unsynced += n as u64;
        if unsynced >= ZERO_SYNC_EVERY && at < to {
            file.sync_data()?;
            unsynced = 0;
        }
    }
    file.sync_all()
}

/// Gives `file` (`size` bytes, records up to `len`, zeros after them) a tail of `prealloc`
/// zeros after `len` when what it has is under half of that; returns the file's size after.
/// Best effort: when the zeros cannot be written (a full disk), the file is cut back to
/// `size`, logged, and the writer grows it as before.
pub(super) fn extend(file: &File, path: &Path, len: u64, size: u64, prealloc: u64) -> u64 {
    if !tail_low(len, size, prealloc) {
        return size;
    }
    let to = len.saturating_add(prealloc);
    match fill_zeros(file, size, to) {
        Ok(()) => to,
        Err(error) => {
            give_up(file, path, size, &error);
            size
        }
    }
}

/// After zeros from `size` on could not be written: cuts them off (best effort too) and logs.
pub(super) fn give_up(file: &File, path: &Path, size: u64, error: &io::Error) {
    let _ = file.set_len(size).and_then(|()| file.sync_all());
    tracing::warn!(
        path = %path.display(),
        %error,
        "the lease journal's zero tail could not be written; it grows with every write \
         until there is room"
    );
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use xdhcp6_engine::config::LinkId;
    use xdhcp6_engine::table::{EventKind, EventSink, LeaseEvent, LeaseRecord};
    use xdhcp6_engine::testing::bound_lease;

    use super::super::format::HEADER_LEN;
    use super::super::{
        Durability, Journal, JournalOptions, LinkNames, Replay, Snapshot, read_journal,
    };
    use super::*;
    use crate::events::Events;

    /// A fresh folder for one test, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("xdhcp6-prealloc-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Small enough for a test, large enough for some hundreds of records.
    const PREALLOC: u64 = 256 << 10;

    fn options(prealloc_bytes: u64) -> JournalOptions {
        JournalOptions {
            prealloc_bytes,
            ..JournalOptions::default()
        }
    }

    fn links() -> LinkNames {
        LinkNames::new(["lan"])
    }

    fn lease(n: u32) -> LeaseRecord {
        bound_lease(
            format!("client-{n:06}").as_bytes(),
            n,
            0x2001_0db8_u128 << 96 | u128::from(n),
            LinkId(0),
        )
    }

    fn sorted(mut records: Vec<LeaseRecord>) -> Vec<LeaseRecord> {
        records.sort_by_key(|record| record.lease.iaid);
        records
    }

    /// Opens the journal at `path` for `--durability always` with a `prealloc` tail, its
    /// snapshots taken from `snapshot`.
    fn open(path: &Path, snapshot: Snapshot, prealloc: u64) -> (Journal, Replay) {
        Journal::open_with(
            path,
            Durability::Always,
            links(),
            snapshot,
            options(prealloc),
        )
        .unwrap()
    }

    /// Opens the journal at `path` with `prealloc`, binds `leases` one sync each, closes it.
    fn write(path: &Path, prealloc: u64, leases: impl IntoIterator<Item = u32>) {
        let (journal, _) = open(path, Arc::new(Vec::new), prealloc);
        let mut sink = journal.sink();
        for n in leases {
            sink.emit(LeaseEvent {
                kind: EventKind::Bound,
                at: 1,
                record: lease(n),
            });
            assert!(sink.settle());
        }
        drop(sink);
        journal.shutdown();
    }

    fn size(path: &Path) -> u64 {
        fs::metadata(path).unwrap().len()
    }

    /// Where each record of the journal at `path` starts, and where the last one ends.
    fn record_starts(dir: &Path, count: u32) -> Vec<u64> {
        let path = dir.join("starts.journal");
        (0..=count)
            .map(|n| {
                let _ = fs::remove_file(&path);
                write(&path, 0, 0..n);
                size(&path)
            })
            .collect()
    }

    #[test]
    fn a_preallocated_journal_of_n_records_then_zeros_replays_exactly_n() {
        let dir = Scratch::new("n-records");
        let path = dir.0.join("leases.journal");
        write(&path, PREALLOC, 0..40);
        let starts = record_starts(&dir.0, 40);
        let end = starts[40];
        // The file is longer than its records by the zeros, written before they were used.
        assert_eq!(size(&path), HEADER_LEN + PREALLOC);
        let bytes = fs::read(&path).unwrap();
        assert_eq!(
            bytes[..end as usize],
            fs::read(dir.0.join("starts.journal")).unwrap()
        );
        assert!(bytes[end as usize..].iter().all(|&byte| byte == 0));
        let seen = read_journal(&path, &links()).unwrap();
        assert_eq!(
            (seen.events, seen.torn_bytes, seen.corrupt, seen.valid_bytes),
            (40, 0, false, end)
        );
        assert_eq!(sorted(seen.records), (0..40).map(lease).collect::<Vec<_>>());
    }

    #[test]
    fn a_record_cut_short_then_zeros_is_torn_and_the_complete_ones_replay() {
        let dir = Scratch::new("torn");
        let path = dir.0.join("leases.journal");
        let starts = record_starts(&dir.0, 5);
        let (last, end) = (starts[4] as usize, starts[5] as usize);
        write(&path, PREALLOC, 0..5);
        let clean = fs::read(&path).unwrap();
        // The crash left the first `kept` bytes of the last record, zeros after them (where
        // the bytes lost were not zeros already).
        let written = clean[..end].iter().rposition(|&byte| byte != 0).unwrap() + 1 - last;
        assert!(written > end - last - 8);
        for kept in 1..written {
            let mut bytes = clean.clone();
            bytes[last + kept..end].fill(0);
            fs::write(&path, &bytes).unwrap();
            let seen = read_journal(&path, &links()).unwrap();
            assert_eq!(
                (seen.events, seen.corrupt, seen.torn_bytes, seen.valid_bytes),
                (4, false, (end - last) as u64, last as u64),
                "{kept} bytes kept"
            );
        }
        // With none of it written, only zeros follow the fourth record: a clean end.
        let mut bytes = clean.clone();
        bytes[last..end].fill(0);
        fs::write(&path, &bytes).unwrap();
        let seen = read_journal(&path, &links()).unwrap();
        assert_eq!((seen.events, seen.corrupt, seen.torn_bytes), (4, false, 0));

        // Opened: the torn bytes (without the zeros) are kept aside, the tail is zeros again,
        // and the next record goes where the torn one was.
        let mut bytes = clean.clone();
        bytes[last + 20..end].fill(0);
        fs::write(&path, &bytes).unwrap();
        let (journal, replay) = open(&path, Arc::new(Vec::new), PREALLOC);
        assert_eq!((replay.events, replay.torn_bytes), (4, (end - last) as u64));
        assert_eq!(
            fs::read(dir.0.join("leases.journal.torn")).unwrap(),
            bytes[last..end]
        );
        let mut sink = journal.sink();
        sink.emit(LeaseEvent {
            kind: EventKind::Bound,
            at: 1,
            record: lease(4),
        });
        assert!(sink.settle());
        drop(sink);
        journal.shutdown();
        let after = fs::read(&path).unwrap();
        assert_eq!(after[..end], clean[..end]);
        assert!(after[end..].iter().all(|&byte| byte == 0));
        let seen = read_journal(&path, &links()).unwrap();
        assert_eq!((seen.events, seen.torn_bytes), (5, 0));
    }

    #[test]
    fn damage_in_a_preallocated_journal_is_reported_as_before() {
        let dir = Scratch::new("damage");
        let path = dir.0.join("leases.journal");
        let starts = record_starts(&dir.0, 8);
        write(&path, PREALLOC, 0..8);
        let clean = fs::read(&path).unwrap();
        let record = |n: usize| (starts[n] as usize, (starts[n + 1] - starts[n]) as usize);

        // A flipped byte in record 3: that record is skipped, the others replay.
        let mut bytes = clean.clone();
        let (at, len) = record(3);
        bytes[at + 12] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let seen = read_journal(&path, &links()).unwrap();
        assert_eq!(
            (
                seen.events,
                seen.damaged_records,
                seen.skipped_bytes,
                seen.torn_bytes
            ),
            (7, 1, len as u64, 0)
        );
        assert_eq!(seen.corrupt_offset, Some(at as u64));

        // Record 5 zeroed as a whole, records after it: damage, not the end of the journal.
        let mut bytes = clean.clone();
        let (at, len) = record(5);
        bytes[at..at + len].fill(0);
        fs::write(&path, &bytes).unwrap();
        let seen = read_journal(&path, &links()).unwrap();
        assert_eq!(
            (seen.events, seen.damaged_records, seen.skipped_bytes),
            (7, 1, len as u64)
        );
        assert_eq!(seen.valid_bytes, starts[8]);

        // Junk after the last record, zeros after it: damage of the junk's length.
        let mut bytes = clean.clone();
        let end = starts[8] as usize;
        bytes[end..end + 300].fill(0x5a);
        fs::write(&path, &bytes).unwrap();
        let seen = read_journal(&path, &links()).unwrap();
        assert_eq!(
            (
                seen.events,
                seen.damaged_records,
                seen.skipped_bytes,
                seen.torn_bytes
            ),
            (8, 1, 300, 0)
        );
    }

    #[test]
    fn a_restart_writes_after_the_last_record_not_at_the_end_of_the_file() {
        let dir = Scratch::new("restart");
        let path = dir.0.join("leases.journal");
        write(&path, PREALLOC, 0..3);
        let before = size(&path);
        write(&path, PREALLOC, 3..6);
        // Written into the zeros: the file did not grow, and the records follow each other.
        assert_eq!(size(&path), before);
        let starts = record_starts(&dir.0, 6);
        let bytes = fs::read(&path).unwrap();
        assert_eq!(
            bytes[..starts[6] as usize],
            fs::read(dir.0.join("starts.journal")).unwrap()
        );
        let seen = read_journal(&path, &links()).unwrap();
        assert_eq!((seen.events, seen.valid_bytes), (6, starts[6]));
        assert_eq!(sorted(seen.records), (0..6).map(lease).collect::<Vec<_>>());
    }

    #[test]
    fn a_journal_written_without_zeros_replays_and_gets_them_at_open() {
        let dir = Scratch::new("old");
        let path = dir.0.join("leases.journal");
        // As the previous version wrote it: the file ends with the last record.
        write(&path, 0, 0..4);
        let old = fs::read(&path).unwrap();
        let (journal, replay) = open(&path, Arc::new(Vec::new), PREALLOC);
        assert_eq!(
            (replay.events, replay.torn_bytes, replay.corrupt),
            (4, 0, false)
        );
        assert_eq!(size(&path), old.len() as u64 + PREALLOC);
        journal.shutdown();
        write(&path, PREALLOC, 4..6);
        assert_eq!(size(&path), old.len() as u64 + PREALLOC);
        assert_eq!(fs::read(&path).unwrap()[..old.len()], old);
        let seen = read_journal(&path, &links()).unwrap();
        assert_eq!(sorted(seen.records), (0..6).map(lease).collect::<Vec<_>>());
    }

    #[test]
    fn a_low_tail_rotates_into_a_prepared_file_and_keeps_every_lease() {
        let dir = Scratch::new("rotate");
        let path = dir.0.join("leases.journal");
        // The live set, as the table would hand it to a snapshot.
        let live: Arc<Mutex<Vec<LeaseRecord>>> = Arc::default();
        let snapshot: Snapshot = {
            let live = Arc::clone(&live);
            Arc::new(move || live.lock().unwrap().clone())
        };
        let prealloc = 32 << 10;
        let (journal, _) = open(&path, snapshot, prealloc);
        let mut sink = journal.sink();
        let count = 1_500;
        for n in 0..count {
            // Applied to the "table" before it is emitted, as the engine does.
            live.lock().unwrap().push(lease(n));
            sink.emit(LeaseEvent {
                kind: EventKind::Bound,
                at: 1,
                record: lease(n),
            });
            assert!(sink.settle());
        }
        // Far more records than one tail holds: the writer rotated, every file with zeros of
        // its own (the file of new leases only holds no garbage worth a compaction).
        let deadline = Instant::now() + Duration::from_secs(10);
        while journal.compactions() < 2 {
            assert!(Instant::now() < deadline, "no rotation");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(sink);
        journal.shutdown();
        let seen = read_journal(&path, &links()).unwrap();
        // A snapshot may hold a lease whose Bound is in the tail too: counted twice.
        assert!(seen.events >= u64::from(count));
        assert_eq!((seen.torn_bytes, seen.corrupt), (0, false));
        assert_eq!(
            sorted(seen.records),
            (0..count).map(lease).collect::<Vec<_>>()
        );
        assert!(
            size(&path) > seen.valid_bytes,
            "a zero tail after the records"
        );
        assert!(!dir.0.join("leases.journal.compact").exists());
    }

    #[test]
    fn the_tail_is_low_under_half_of_the_preallocation() {
        assert!(!tail_low(100, 100, 0), "0: no preallocation");
        assert!(tail_low(100, 100, 64));
        assert!(tail_low(100, 131, 64));
        assert!(!tail_low(100, 132, 64));
        assert!(!tail_low(100, 164, 64));
    }

    #[test]
    fn a_snapshot_gets_a_tail_at_least_as_long_as_itself() {
        assert_eq!(snapshot_tail(0, 1 << 30), 0);
        assert_eq!(snapshot_tail(64 << 20, 1 << 20), 64 << 20);
        assert_eq!(snapshot_tail(64 << 20, 1 << 30), 1 << 30);
    }

    #[test]
    fn extend_writes_zeros_after_the_records_only_when_the_tail_is_low() {
        let dir = std::env::temp_dir().join(format!("xdhcp6-prealloc-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j");
        fs::write(&path, [7u8; 10]).unwrap();
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let size = extend(&file, &path, 10, 10, 3 << 20);
        assert_eq!(size, 10 + (3 << 20));
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, size);
        assert_eq!(bytes[..10], [7; 10]);
        assert!(bytes[10..].iter().all(|&byte| byte == 0));
        // Enough left: nothing written.
        assert_eq!(extend(&file, &path, 20, size, 3 << 20), size);
        assert_eq!(fs::metadata(&path).unwrap().len(), size);
        fs::remove_dir_all(&dir).unwrap();
    }
}
