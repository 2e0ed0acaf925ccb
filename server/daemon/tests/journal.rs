//! Lease journal: format, replay, torn and corrupt files, durability modes, compaction and
//! concurrent writers.

mod common;

use common::Scratch;
use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use xdhcp6_engine::alloc::SaltKey;
use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::table::{
    ClaimAs, DuidBuf, EventKind, EventSink, INFINITE, IaKind, LeaseEvent, LeaseRecord, LeaseState,
    LeaseTable, Lifetimes,
};
use xdhcp6_engine::testing::bound_lease;
use xdhcp6d::journal::{
    COMPACTION_IO_PRIORITY, Durability, HEADER_LEN, Journal, JournalError, JournalErrors,
    JournalOptions, JournalSink, LinkNames, Replay, Snapshot, read_journal,
};

fn scratch(name: &str) -> Scratch {
    common::scratch_dir("journal", name)
}

/// A name for every link id, so that every lease of these tests is on a configured link.
fn links() -> LinkNames {
    static LINKS: LazyLock<LinkNames> =
        LazyLock::new(|| LinkNames::new((0..=u16::MAX).map(|id| format!("link-{id}"))));
    LINKS.clone()
}

fn no_snapshot() -> Snapshot {
    Arc::new(Vec::new)
}

fn lease(duid: &[u8], iaid: u32, addr: u128) -> LeaseRecord {
    bound_lease(duid, iaid, addr, LinkId(1))
}

fn emit(sink: &mut impl EventSink, kind: EventKind, at: u32, record: &LeaseRecord) {
    let mut record = record.clone();
    match kind {
        EventKind::Declined => record.lease.state = LeaseState::Declined,
        EventKind::Offered => record.lease.state = LeaseState::Offered,
        _ => {}
    }
    sink.emit(LeaseEvent { kind, at, record });
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

/// Writes `events` to a new journal at `path` and closes it.
fn write_events(path: &Path, events: &[(EventKind, LeaseRecord)]) {
    let (journal, _) = Journal::open(path, Durability::Always, links(), no_snapshot()).unwrap();
    let mut sink = journal.sink();
    for (at, (kind, record)) in events.iter().enumerate() {
        emit(&mut sink, *kind, at as u32, record);
    }
    journal.wait_durable(sink.last_seq()).unwrap();
    journal.shutdown();
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Binds a lease of DUID `duid` (IAID and address `i`) through `sink`, waits until
/// `journal` calls it durable, and checks that the file at `path` then holds it. Returns the
/// event's sequence number.
fn bind_and_wait(
    journal: &Journal,
    sink: &mut JournalSink,
    path: &Path,
    duid: &str,
    i: u32,
) -> u64 {
    emit(
        sink,
        EventKind::Bound,
        i,
        &lease(duid.as_bytes(), i, i.into()),
    );
    let seq = sink.last_seq();
    journal.wait_durable(seq).unwrap();
    // Another handle sees the record as soon as the wait is over.
    assert!(
        contains(&fs::read(path).unwrap(), duid.as_bytes()),
        "event {i}"
    );
    seq
}

#[test]
fn every_event_kind_round_trips() {
    let dir = scratch("kinds");
    let path = dir.join("leases.journal");
    let bound = lease(b"bound", 1, 1);
    let mut renewed = lease(b"renewed", 2, 2);
    renewed.lease.lifetimes = Lifetimes {
        preferred: INFINITE,
        valid: INFINITE,
    };
    renewed.lease.expires = INFINITE;
    let mut declined = lease(b"declined", 3, 3);
    declined.lease.state = LeaseState::Declined;
    declined.lease.lifetimes = Lifetimes::default();
    let mut prefix = LeaseRecord {
        duid: DuidBuf::new(&[0xab; 130]),
        ..lease(b"", 4, 0x2001_0db8_ff00 << 80)
    };
    prefix.lease.kind = IaKind::Pd;
    prefix.lease.prefix_len = 56;
    prefix.lease.link = LinkId(u16::MAX);
    let released = lease(b"released", 5, 5);
    let expired = lease(b"expired", 6, 6);
    let probation = lease(b"probation", 7, 7);
    let offered = lease(b"offered", 8, 8);

    let (journal, replay) =
        Journal::open(&path, Durability::Always, links(), no_snapshot()).unwrap();
    assert_eq!(replay, Replay::default());
    let mut sink = journal.sink();
    assert_eq!(sink.last_seq(), 0);
    assert!(
        !sink.wants(EventKind::Offered),
        "the table builds no offer for the journal"
    );
    for kind in [
        EventKind::Bound,
        EventKind::Renewed,
        EventKind::Declined,
        EventKind::Released,
        EventKind::Expired,
        EventKind::ProbationEnded,
    ] {
        assert!(sink.wants(kind), "{kind:?}");
    }
    emit(&mut sink, EventKind::Offered, 1, &offered);
    assert_eq!(sink.last_seq(), 0, "offers are not journaled");
    emit(&mut sink, EventKind::Bound, 1, &bound);
    emit(&mut sink, EventKind::Renewed, 2, &renewed);
    emit(&mut sink, EventKind::Declined, 3, &declined);
    emit(&mut sink, EventKind::Bound, 4, &prefix);
    emit(&mut sink, EventKind::Bound, 5, &released);
    emit(&mut sink, EventKind::Released, 6, &released);
    emit(&mut sink, EventKind::Bound, 7, &expired);
    emit(&mut sink, EventKind::Expired, 8, &expired);
    emit(&mut sink, EventKind::Declined, 9, &probation);
    emit(&mut sink, EventKind::ProbationEnded, 10, &probation);
    assert_eq!(sink.last_seq(), 10);
    journal.wait_durable(sink.last_seq()).unwrap();
    assert_eq!(journal.durable_seq(), 10);
    assert_eq!(journal.lag(), 0);
    journal.shutdown();

    let replay = read_journal(&path, &links()).unwrap();
    assert_eq!(replay.events, 10);
    assert_eq!(replay.torn_bytes, 0);
    assert!(!replay.corrupt);
    assert_eq!(replay.valid_bytes, fs::metadata(&path).unwrap().len());
    assert_eq!(
        sorted(replay.records),
        sorted(vec![bound, renewed, declined, prefix])
    );
    // Opening again replays the same and appends after it.
    let (journal, again) =
        Journal::open(&path, Durability::Always, links(), no_snapshot()).unwrap();
    assert_eq!(again.events, 10);
    assert_eq!(again.records.len(), 4);
    drop(journal);
}

#[test]
fn replay_follows_bind_renew_release() {
    let dir = scratch("sequence");
    let path = dir.join("leases.journal");
    let a = lease(b"client-a", 1, 100);
    let mut a_renewed = a.clone();
    a_renewed.lease.lifetimes.valid = 900;
    a_renewed.lease.expires = 2900;
    let a_other_ia = lease(b"client-a", 2, 101);
    let b = lease(b"client-b", 1, 200);
    let b_again = lease(b"client-b", 1, 201);
    let mut c = lease(b"client-c", 1, 300);
    c.lease.link = LinkId(9);
    write_events(
        &path,
        &[
            (EventKind::Bound, a.clone()),
            (EventKind::Bound, a_other_ia.clone()),
            (EventKind::Bound, b.clone()),
            (EventKind::Renewed, a_renewed.clone()),
            (EventKind::Released, b.clone()),
            (EventKind::Bound, b_again.clone()),
            (EventKind::Bound, c.clone()),
            (EventKind::Expired, a_other_ia.clone()),
            (EventKind::Renewed, c.clone()),
        ],
    );
    let replay = read_journal(&path, &links()).unwrap();
    assert_eq!(replay.events, 9);
    assert_eq!(sorted(replay.records), sorted(vec![a_renewed, b_again, c]));

    // A removal only removes its own key: same address, another link, stays.
    let mut c_elsewhere = lease(b"client-c", 1, 300);
    c_elsewhere.lease.link = LinkId(10);
    let path = dir.join("keys.journal");
    write_events(
        &path,
        &[
            (EventKind::Bound, lease(b"client-c", 1, 300)),
            (EventKind::Released, c_elsewhere),
        ],
    );
    assert_eq!(read_journal(&path, &links()).unwrap().records.len(), 1);
}

#[test]
fn torn_last_record_at_every_offset_is_cut_off() {
    let dir = scratch("torn");
    let full = dir.join("full.journal");
    let prefix = dir.join("prefix.journal");
    let events: Vec<_> = (0..3u32)
        .map(|i| {
            (
                EventKind::Bound,
                lease(format!("torn-{i}").as_bytes(), i, i.into()),
            )
        })
        .collect();
    write_events(&full, &events);
    write_events(&prefix, &events[..2]);
    let bytes = fs::read(&full).unwrap();
    let good = fs::metadata(&prefix).unwrap().len() as usize;
    assert!(good < bytes.len());
    let path = dir.join("cut.journal");
    for cut in good..bytes.len() {
        fs::write(&path, &bytes[..cut]).unwrap();
        let seen = read_journal(&path, &links()).unwrap();
        assert_eq!(seen.events, 2, "cut at {cut}");
        assert_eq!(seen.torn_bytes, (cut - good) as u64, "cut at {cut}");
        assert!(!seen.corrupt, "cut at {cut}");
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            cut as u64,
            "read changes nothing"
        );

        let (journal, replay) =
            Journal::open(&path, Durability::Always, links(), no_snapshot()).unwrap();
        assert_eq!(replay.events, 2);
        assert_eq!(replay.torn_bytes, (cut - good) as u64);
        assert_eq!(
            sorted(replay.records),
            sorted(vec![events[0].1.clone(), events[1].1.clone()])
        );
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            good as u64,
            "cut at {cut}"
        );
        // The journal appends right after the good part.
        let mut sink = journal.sink();
        emit(&mut sink, EventKind::Bound, 2, &events[2].1);
        journal.wait_durable(sink.last_seq()).unwrap();
        journal.shutdown();
        assert_eq!(fs::read(&path).unwrap(), bytes);
        let after = read_journal(&path, &links()).unwrap();
        assert_eq!((after.events, after.torn_bytes), (3, 0));
    }

    // Cut inside the header: an empty journal, started again.
    for cut in 0..HEADER_LEN as usize {
        fs::write(&path, &bytes[..cut]).unwrap();
        let (journal, replay) =
            Journal::open(&path, Durability::Always, links(), no_snapshot()).unwrap();
        assert_eq!((replay.events, replay.torn_bytes), (0, cut as u64));
        assert!(replay.records.is_empty());
        journal.shutdown();
        assert_eq!(fs::metadata(&path).unwrap().len(), HEADER_LEN);
    }
}

#[test]
fn zeros_after_the_last_record_end_the_journal_and_a_record_cut_short_by_them_is_torn() {
    let dir = scratch("zeros");
    let path = dir.join("leases.journal");
    let events = [
        (EventKind::Bound, lease(b"one", 1, 1)),
        (EventKind::Bound, lease(b"two", 2, 2)),
    ];
    write_events(&path, &events);
    let mut bytes = fs::read(&path).unwrap();
    let good = bytes.len();
    // A preallocated file's zero tail (or a size-extending write whose data never reached
    // the disk, which reads back as zeros): the journal ends at the last record.
    bytes.extend_from_slice(&[0; 100]);
    fs::write(&path, &bytes).unwrap();
    let seen = read_journal(&path, &links()).unwrap();
    assert_eq!(
        (seen.events, seen.torn_bytes, seen.corrupt, seen.valid_bytes),
        (2, 0, false, good as u64)
    );
    // Opened, the zeros stay and the next record is written over them.
    let (journal, replay) =
        Journal::open(&path, Durability::Always, links(), no_snapshot()).unwrap();
    assert_eq!((replay.events, replay.torn_bytes), (2, 0));
    let mut sink = journal.sink();
    emit(&mut sink, EventKind::Bound, 3, &lease(b"three", 3, 3));
    journal.wait_durable(sink.last_seq()).unwrap();
    journal.shutdown();
    let three = fs::read(&path).unwrap();
    assert_eq!(three.len(), bytes.len());
    assert_eq!(three[..good], bytes[..good]);
    assert_eq!(read_journal(&path, &links()).unwrap().events, 3);
    fs::write(&path, &bytes).unwrap();
    // Same when the last record's header made it but its payload did not.
    let mut half = fs::read(dir.join("leases.journal")).unwrap();
    half.truncate(good);
    let last_len = good - read_journal_prefix_len(&dir, &events[..1]);
    for byte in &mut half[good - last_len + 8..] {
        *byte = 0;
    }
    fs::write(&path, &half).unwrap();
    let seen = read_journal(&path, &links()).unwrap();
    assert_eq!((seen.events, seen.corrupt), (1, false));
    assert_eq!(seen.torn_bytes, last_len as u64);
}

/// The length of a journal holding `events`.
fn read_journal_prefix_len(dir: &Path, events: &[(EventKind, LeaseRecord)]) -> usize {
    let path = dir.join("prefix-len.journal");
    let _ = fs::remove_file(&path);
    write_events(&path, events);
    fs::metadata(&path).unwrap().len() as usize
}

#[test]
fn corrupt_record_mid_file_is_skipped_and_the_file_kept() {
    let dir = scratch("corrupt");
    let path = dir.join("leases.journal");
    let events: Vec<_> = (0..3u32)
        .map(|i| {
            (
                EventKind::Bound,
                lease(format!("corrupt-{i}").as_bytes(), i, i.into()),
            )
        })
        .collect();
    let first = read_journal_prefix_len(&dir, &events[..1]);
    let second = read_journal_prefix_len(&dir, &events[..2]);
    write_events(&path, &events);
    let mut bytes = fs::read(&path).unwrap();
    bytes[first + 20] ^= 0x40;
    fs::write(&path, &bytes).unwrap();

    let seen = read_journal(&path, &links()).unwrap();
    assert!(seen.corrupt);
    assert_eq!((seen.events, seen.damaged_records), (2, 1));
    assert_eq!(seen.corrupt_offset, Some(first as u64));
    assert_eq!(seen.skipped_bytes, (second - first) as u64);
    assert_eq!(seen.torn_bytes, 0);
    let kept = sorted(vec![events[0].1.clone(), events[2].1.clone()]);
    assert_eq!(sorted(seen.records), kept);

    // Opening keeps the damaged file aside and starts over from what replayed.
    let (journal, replay) =
        Journal::open(&path, Durability::Always, links(), no_snapshot()).unwrap();
    assert!(replay.corrupt);
    assert_eq!(sorted(replay.records), kept);
    assert_eq!(fs::read(dir.join("leases.journal.corrupt")).unwrap(), bytes);
    let mut sink = journal.sink();
    emit(&mut sink, EventKind::Bound, 5, &events[1].1);
    journal.wait_durable(sink.last_seq()).unwrap();
    journal.shutdown();
    let after = read_journal(&path, &links()).unwrap();
    assert!(!after.corrupt);
    assert_eq!(
        sorted(after.records),
        sorted(events.iter().map(|(_, record)| record.clone()).collect())
    );
}

/// `count` leases, each bound by its own record, and where each record starts in the file.
fn journal_of(dir: &Path, path: &Path, count: u32) -> (Vec<LeaseRecord>, Vec<usize>) {
    let leases: Vec<LeaseRecord> = (0..count)
        .map(|i| {
            lease(
                format!("client-{i:04}").as_bytes(),
                i,
                0x2001_0db8_u128 << 96 | u128::from(i),
            )
        })
        .collect();
    let events: Vec<_> = leases
        .iter()
        .map(|record| (EventKind::Bound, record.clone()))
        .collect();
    write_events(path, &events);
    let bytes = fs::read(path).unwrap();
    // Every record of these leases has the same length.
    let one = read_journal_prefix_len(dir, &events[..1]) - HEADER_LEN as usize;
    assert_eq!(bytes.len(), HEADER_LEN as usize + one * count as usize);
    let starts = (0..count as usize)
        .map(|i| HEADER_LEN as usize + i * one)
        .collect();
    (leases, starts)
}

#[test]
fn journal_with_a_flipped_byte_in_record_10_keeps_every_other_lease() {
    let dir = scratch("flipped-10");
    let path = dir.join("leases.journal");
    let (leases, starts) = journal_of(&dir, &path, 40);
    let clean = fs::read(&path).unwrap();
    let others = sorted(
        leases
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 10)
            .map(|(_, record)| record.clone())
            .collect(),
    );
    // A byte of the payload (the checksum fails), of the checksum, and of the length field
    // (the record claims a length no record has, or one that ends inside the next record).
    for (offset, flip) in [(30, 0x01), (5, 0x80), (3, 0x01), (0, 0x08)] {
        let mut bytes = clean.clone();
        bytes[starts[10] + offset] ^= flip;
        fs::write(&path, &bytes).unwrap();
        let seen = read_journal(&path, &links()).unwrap();
        assert_eq!(
            (seen.events, seen.damaged_records, seen.torn_bytes),
            (39, 1, 0),
            "byte {offset}"
        );
        assert_eq!(seen.corrupt_offset, Some(starts[10] as u64));
        assert_eq!(seen.skipped_bytes, (starts[11] - starts[10]) as u64);
        assert_eq!(sorted(seen.records), others, "byte {offset}");

        let (journal, replay) =
            Journal::open(&path, Durability::Always, links(), no_snapshot()).unwrap();
        assert_eq!(sorted(replay.records), others);
        journal.shutdown();
        assert!(
            (0..)
                .map(|n| match n {
                    0 => dir.join("leases.journal.corrupt"),
                    n => dir.join(format!("leases.journal.corrupt.{}", n)),
                })
                .take_while(|copy| copy.exists())
                .any(|copy| fs::read(copy).unwrap() == bytes),
            "the damaged file is kept"
        );
        let after = read_journal(&path, &links()).unwrap();
        assert!(!after.corrupt);
        assert_eq!(sorted(after.records), others);
    }
}

#[test]
fn journal_errors_strict_refuses_a_damaged_journal_and_changes_nothing() {
    let dir = scratch("strict");
    let path = dir.join("leases.journal");
    let (_, starts) = journal_of(&dir, &path, 12);
    let mut bytes = fs::read(&path).unwrap();
    bytes[starts[10] + 30] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    let options = JournalOptions {
        errors: JournalErrors::Strict,
        ..JournalOptions::default()
    };
    let error =
        Journal::open_with(&path, Durability::Always, links(), no_snapshot(), options).unwrap_err();
    assert!(
        matches!(error, JournalError::Damaged { records: 1, offset, .. } if offset == starts[10] as u64),
        "{error}"
    );
    assert!(error.to_string().contains("--journal-errors"), "{error}");
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert!(!dir.join("leases.journal.corrupt").exists());
}

#[test]
fn journal_with_a_damaged_length_near_the_end_is_not_cut_as_torn() {
    let dir = scratch("length-end");
    let path = dir.join("leases.journal");
    let (leases, starts) = journal_of(&dir, &path, 10);
    let clean = fs::read(&path).unwrap();

    // Record 8 of 10 claims 60,000 bytes: more than the rest of the file, but below the old
    // bound. It is damage, not a torn write: record 9 is kept.
    let mut bytes = clean.clone();
    bytes[starts[8]..starts[8] + 4].copy_from_slice(&60_000u32.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    let seen = read_journal(&path, &links()).unwrap();
    assert_eq!(
        (seen.events, seen.damaged_records, seen.torn_bytes),
        (9, 1, 0)
    );
    let without_8: Vec<LeaseRecord> = leases
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 8)
        .map(|(_, record)| record.clone())
        .collect();
    assert_eq!(sorted(seen.records), sorted(without_8.clone()));
    let (journal, replay) =
        Journal::open(&path, Durability::Always, links(), no_snapshot()).unwrap();
    assert_eq!(sorted(replay.records), sorted(without_8));
    journal.shutdown();
    assert_eq!(fs::read(dir.join("leases.journal.corrupt")).unwrap(), bytes);

    // The last record claims a few bytes more than the file holds: that looks like a torn
    // write and is cut, but only after the bytes are copied aside.
    let mut bytes = clean.clone();
    let last_len = (clean.len() - starts[9]) as u32;
    let longer = last_len - 8 + 20;
    bytes[starts[9]..starts[9] + 4].copy_from_slice(&longer.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    let (journal, replay) =
        Journal::open(&path, Durability::Always, links(), no_snapshot()).unwrap();
    assert_eq!(replay.torn_bytes, u64::from(last_len));
    assert_eq!(replay.events, 9);
    journal.shutdown();
    assert_eq!(fs::metadata(&path).unwrap().len(), starts[9] as u64);
    assert_eq!(
        fs::read(dir.join("leases.journal.torn")).unwrap(),
        bytes[starts[9]..]
    );
}

#[test]
fn junk_after_the_last_good_record_is_damage_kept_aside_not_a_torn_write() {
    let dir = scratch("junk-end");
    let path = dir.join("leases.journal");
    let (leases, _) = journal_of(&dir, &path, 4);
    let mut bytes = fs::read(&path).unwrap();
    let good = bytes.len();
    bytes.extend_from_slice(&[0x5a; 300]);
    fs::write(&path, &bytes).unwrap();
    let seen = read_journal(&path, &links()).unwrap();
    assert_eq!(
        (seen.events, seen.damaged_records, seen.torn_bytes),
        (4, 1, 0)
    );
    assert_eq!(seen.corrupt_offset, Some(good as u64));
    assert_eq!(seen.skipped_bytes, 300);
    let (journal, replay) =
        Journal::open(&path, Durability::Always, links(), no_snapshot()).unwrap();
    assert_eq!(sorted(replay.records), sorted(leases));
    journal.shutdown();
    assert_eq!(fs::read(dir.join("leases.journal.corrupt")).unwrap(), bytes);
}

#[test]
fn a_link_name_longer_than_a_record_holds_is_refused() {
    let dir = scratch("long-name");
    let long = "l".repeat(256);
    let error = Journal::open(
        &dir.join("leases.journal"),
        Durability::Always,
        LinkNames::new(["short".to_owned(), long.clone()]),
        no_snapshot(),
    )
    .unwrap_err();
    assert!(
        matches!(&error, JournalError::LinkName { name } if *name == long),
        "{error}"
    );
}

#[test]
fn a_second_journal_on_the_same_file_is_refused_naming_the_first() {
    let dir = scratch("locked");
    let path = dir.join("leases.journal");
    let (journal, _) = Journal::open(&path, Durability::Always, links(), no_snapshot()).unwrap();
    let error = Journal::open(&path, Durability::Always, links(), no_snapshot()).unwrap_err();
    let pid = format!("pid {}", std::process::id());
    assert!(
        matches!(&error, JournalError::Locked { holder, .. } if *holder == pid),
        "{error}"
    );
    assert!(error.to_string().contains(&pid), "{error}");
    journal.shutdown();
    // Once the first closes, the file is free again.
    let (journal, _) = Journal::open(&path, Durability::Always, links(), no_snapshot()).unwrap();
    journal.shutdown();
}

#[test]
fn foreign_files_are_refused() {
    let dir = scratch("foreign");
    let path = dir.join("leases.journal");
    fs::write(&path, b"this is not a journal at all").unwrap();
    assert!(matches!(
        Journal::open(&path, Durability::Always, links(), no_snapshot()),
        Err(JournalError::NotAJournal { .. })
    ));
    assert_eq!(fs::read(&path).unwrap(), b"this is not a journal at all");
    let mut header = b"XD6JRNL\0".to_vec();
    header.extend_from_slice(&99u32.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    fs::write(&path, &header).unwrap();
    assert!(matches!(
        read_journal(&path, &links()),
        Err(JournalError::Version { version: 99, .. })
    ));
    assert!(matches!(
        read_journal(&dir.join("missing"), &links()),
        Err(JournalError::Io { .. })
    ));
}

#[test]
fn always_returns_only_once_the_record_is_in_the_file() {
    let dir = scratch("always");
    let path = dir.join("leases.journal");
    let (journal, _) = Journal::open(&path, Durability::Always, links(), no_snapshot()).unwrap();
    let mut sink = journal.sink();
    for i in 0..50u32 {
        let duid = format!("always-marker-{i:04}");
        let seq = bind_and_wait(&journal, &mut sink, &path, &duid, i);
        assert!(journal.durable_seq() >= seq);
    }
    assert_eq!(journal.lag(), 0);
    // Waiting for a number nobody took does not hang.
    journal.wait_durable(u64::MAX).unwrap();
    journal.shutdown();
}

#[test]
fn a_group_commit_window_spaces_the_syncs_and_still_returns_only_once_durable() {
    let dir = scratch("group-window");
    let path = dir.join("leases.journal");
    let window = Duration::from_millis(25);
    let options = JournalOptions {
        group_window: window,
        ..JournalOptions::default()
    };
    let (journal, _) =
        Journal::open_with(&path, Durability::Always, links(), no_snapshot(), options).unwrap();
    let mut sink = journal.sink();
    // One lease at a time, each waited for: every wait is a sync of its own, and each sync
    // starts a window after the one before.
    let started = Instant::now();
    for i in 0..8u32 {
        let duid = format!("window-marker-{i:04}");
        bind_and_wait(&journal, &mut sink, &path, &duid, i);
    }
    let one_by_one = started.elapsed();
    assert_eq!(journal.syncs(), 8);
    assert!(one_by_one >= window * 7, "8 syncs took {one_by_one:?}");
    // Leases bound meanwhile join the next sync: 400 over about 200 ms take at most one sync
    // per window, not one each.
    let syncs_before = journal.syncs();
    let started = Instant::now();
    for i in 0..400u32 {
        emit(
            &mut sink,
            EventKind::Bound,
            i,
            &lease(b"window-stream", i, 1000 + u128::from(i)),
        );
        thread::sleep(Duration::from_micros(500));
    }
    journal.wait_durable(sink.last_seq()).unwrap();
    let elapsed = started.elapsed();
    let syncs = journal.syncs() - syncs_before;
    let most = (elapsed.as_millis() / window.as_millis()) as u64 + 2;
    assert!(
        (1..=most).contains(&syncs),
        "{syncs} syncs in {elapsed:?} with a window of {window:?}"
    );
    assert_eq!(journal.lag(), 0);
    journal.shutdown();
    let replay = read_journal(&path, &links()).unwrap();
    assert_eq!(replay.events, 408);

    // Without a window every wait in turn is a sync of its own, at once.
    let path = dir.join("no-window.journal");
    let (journal, _) = Journal::open(&path, Durability::Always, links(), no_snapshot()).unwrap();
    let mut sink = journal.sink();
    for i in 0..8u32 {
        emit(
            &mut sink,
            EventKind::Bound,
            i,
            &lease(b"no-window", i, i.into()),
        );
        journal.wait_durable(sink.last_seq()).unwrap();
    }
    assert_eq!(journal.syncs(), 8);
    journal.shutdown();
}

#[test]
fn batch_syncs_within_the_interval_and_on_shutdown() {
    let dir = scratch("batch");
    let path = dir.join("leases.journal");
    let durability = Durability::Batch {
        interval: Duration::from_millis(20),
    };
    let (journal, _) = Journal::open(&path, durability, links(), no_snapshot()).unwrap();
    let mut sink = journal.sink();
    emit(
        &mut sink,
        EventKind::Bound,
        1,
        &lease(b"batch-marker-1", 1, 1),
    );
    let started = Instant::now();
    journal.wait_durable(sink.last_seq()).unwrap();
    while journal.durable_seq() < sink.last_seq() {
        assert!(started.elapsed() < Duration::from_secs(10), "never synced");
        thread::sleep(Duration::from_millis(1));
    }
    assert!(contains(&fs::read(&path).unwrap(), b"batch-marker-1"));
    journal.shutdown();

    // With an interval that never runs out, shutdown still writes everything queued.
    let hour = Durability::Batch {
        interval: Duration::from_secs(3600),
    };
    let (journal, _) = Journal::open(&path, hour, links(), no_snapshot()).unwrap();
    let mut sink = journal.sink();
    for i in 0..10u32 {
        emit(
            &mut sink,
            EventKind::Bound,
            i,
            &lease(b"batch-drained", i, 10 + u128::from(i)),
        );
    }
    // Batch never holds a reply back: this returns long before the hour is up.
    journal.wait_durable(sink.last_seq()).unwrap();
    assert_eq!(journal.lag(), 10);
    assert_eq!(journal.durable_seq(), 0);
    drop(journal);
    let replay = read_journal(&path, &links()).unwrap();
    assert_eq!(replay.events, 11);
    assert_eq!(replay.records.len(), 11);
}

/// The lease table stand-in for compaction: a map the test and the snapshot both see.
type Model = Arc<Mutex<HashMap<(Vec<u8>, u32, u128), LeaseRecord>>>;

#[test]
fn compaction_keeps_the_live_set_and_later_events() {
    let dir = scratch("compact");
    let path = dir.join("leases.journal");
    let model: Model = Arc::default();
    let snapshot: Snapshot = {
        let model = Arc::clone(&model);
        Arc::new(move || {
            let mut records: Vec<_> = model.lock().unwrap().values().cloned().collect();
            // Offers in the table are not leases; compaction must leave them out.
            let mut offer = lease(b"only-offered", 1, 999_999);
            offer.lease.state = LeaseState::Offered;
            records.push(offer);
            records
        })
    };
    let options = JournalOptions {
        min_bytes: 4096,
        ratio: 2,
        ..JournalOptions::default()
    };
    let (journal, _) =
        Journal::open_with(&path, Durability::Always, links(), snapshot, options).unwrap();
    let mut sink = journal.sink();
    // Churn: 40 clients bind, renew and release over and over; the last round stays bound.
    let mut at = 0;
    for round in 0..60u32 {
        for client in 0..40u32 {
            at += 1;
            let duid = format!("compact-{client}").into_bytes();
            let mut record = lease(&duid, client, u128::from(client) + 1000);
            record.lease.expires = at;
            // The table changes and emits under one lock; so does the test.
            let mut live = model.lock().unwrap();
            let key = (duid, client, record.lease.addr);
            if round % 3 == 2 && client % 2 == 0 {
                live.remove(&key);
                emit(&mut sink, EventKind::Released, at, &record);
            } else {
                // As the table does: a lease already bound is renewed, not bound again.
                let kind = if live.insert(key, record.clone()).is_some() {
                    EventKind::Renewed
                } else {
                    EventKind::Bound
                };
                emit(&mut sink, kind, at, &record);
            }
        }
        journal.wait_durable(sink.last_seq()).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while journal.compactions() == 0 {
        assert!(Instant::now() < deadline, "no compaction happened");
        thread::sleep(Duration::from_millis(5));
    }
    // Events after the switch land in the new file.
    let late = lease(b"after-compaction", 77, 77_777);
    emit(&mut sink, EventKind::Bound, at + 1, &late);
    model
        .lock()
        .unwrap()
        .insert((b"after-compaction".to_vec(), 77, 77_777), late.clone());
    let gone = lease(b"compact-1", 1, 1001);
    emit(&mut sink, EventKind::Released, at + 2, &gone);
    model
        .lock()
        .unwrap()
        .remove(&(b"compact-1".to_vec(), 1, 1001));
    journal.wait_durable(sink.last_seq()).unwrap();
    let compactions = journal.compactions();
    // The snapshot thread ran at the low I/O priority, as the kernel read it back.
    assert_eq!(
        journal.compaction_io_priority(),
        Some(COMPACTION_IO_PRIORITY)
    );
    journal.shutdown();

    assert!(!dir.join("leases.journal.compact").exists());
    let replay = read_journal(&path, &links()).unwrap();
    assert!(!replay.corrupt);
    assert_eq!(replay.torn_bytes, 0);
    let expected: Vec<_> = model.lock().unwrap().values().cloned().collect();
    assert_eq!(sorted(replay.records), sorted(expected));
    // The file holds far fewer records than were written.
    assert!(
        replay.events < 60 * 40,
        "{} events after {compactions} compactions",
        replay.events
    );
}

#[test]
fn a_journal_of_new_leases_is_not_compacted_until_it_holds_garbage() {
    let dir = scratch("worth");
    let path = dir.join("leases.journal");
    let model: Model = Arc::default();
    let snapshots = Arc::new(AtomicU32::new(0));
    let snapshot: Snapshot = {
        let (model, snapshots) = (Arc::clone(&model), Arc::clone(&snapshots));
        Arc::new(move || {
            snapshots.fetch_add(1, Ordering::SeqCst);
            model.lock().unwrap().values().cloned().collect()
        })
    };
    let options = JournalOptions {
        min_bytes: 8 << 10,
        ratio: 2,
        ..JournalOptions::default()
    };
    let bind_all = |journal: &Journal, from: u32, count: u32, kind: EventKind| {
        let mut sink = journal.sink();
        for client in from..from + count {
            let duid = format!("worth-{client}").into_bytes();
            let mut record = lease(&duid, client, u128::from(client) + 5000);
            record.lease.expires = client + 1;
            let mut live = model.lock().unwrap();
            live.insert((duid, client, record.lease.addr), record.clone());
            emit(&mut sink, kind, client + 1, &record);
        }
        journal.wait_durable(sink.last_seq()).unwrap();
    };
    // Every lease new: the file passes `min_bytes` three times over, and every record in it
    // is live, so a snapshot would be as large as the file.
    let (journal, _) = Journal::open_with(
        &path,
        Durability::Always,
        links(),
        Arc::clone(&snapshot),
        options,
    )
    .unwrap();
    bind_all(&journal, 0, 200, EventKind::Bound);
    let grown = fs::metadata(&path).unwrap().len();
    bind_all(&journal, 200, 200, EventKind::Bound);
    let len = fs::metadata(&path).unwrap().len();
    assert!(len >= 3 * options.min_bytes, "{len} bytes");
    assert!(grown >= options.min_bytes, "{grown} bytes");
    // Shutting down waits for a compaction that started; none may have.
    journal.shutdown();
    assert_eq!(snapshots.load(Ordering::SeqCst), 0);
    assert_eq!(fs::metadata(&path).unwrap().len(), len);

    // Reopened (the live set now comes from the replay), the same leases renewed: once half
    // the file is garbage, it is compacted.
    let (journal, replay) =
        Journal::open_with(&path, Durability::Always, links(), snapshot, options).unwrap();
    assert_eq!(replay.records.len(), 400);
    let mut rounds = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while journal.compactions() == 0 {
        assert!(Instant::now() < deadline, "no compaction happened");
        if rounds < 2 {
            bind_all(&journal, 0, 400, EventKind::Renewed);
            rounds += 1;
        } else {
            thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(snapshots.load(Ordering::SeqCst) >= 1);
    journal.shutdown();
    let replay = read_journal(&path, &links()).unwrap();
    assert!(!replay.corrupt);
    let expected: Vec<_> = model.lock().unwrap().values().cloned().collect();
    assert_eq!(sorted(replay.records), sorted(expected));
    assert!(replay.events < 3 * 400, "{} events", replay.events);
}

#[test]
fn compaction_leftover_is_removed_on_open() {
    let dir = scratch("leftover");
    let path = dir.join("leases.journal");
    write_events(&path, &[(EventKind::Bound, lease(b"kept", 1, 1))]);
    fs::write(dir.join("leases.journal.compact"), b"half a snapshot").unwrap();
    let (journal, replay) =
        Journal::open(&path, Durability::Always, links(), no_snapshot()).unwrap();
    assert_eq!(replay.records, vec![lease(b"kept", 1, 1)]);
    assert!(!dir.join("leases.journal.compact").exists());
    journal.shutdown();
}

#[test]
fn four_concurrent_writers_lose_nothing() {
    let dir = scratch("concurrent");
    let path = dir.join("leases.journal");
    let (journal, _) = Journal::open(&path, Durability::Always, links(), no_snapshot()).unwrap();
    let journal = Arc::new(journal);
    const PER_THREAD: u32 = 2000;
    let workers: Vec<_> = (0..4u32)
        .map(|worker| {
            let journal = Arc::clone(&journal);
            thread::spawn(move || {
                let mut sink = journal.sink();
                let mut last = 0;
                for i in 0..PER_THREAD {
                    let addr = u128::from(worker) << 64 | u128::from(i);
                    let duid = format!("worker-{worker}-{i}");
                    emit(
                        &mut sink,
                        EventKind::Bound,
                        i,
                        &lease(duid.as_bytes(), i, addr),
                    );
                    assert!(sink.last_seq() > last, "sequence numbers grow");
                    last = sink.last_seq();
                    if i % 50 == 49 {
                        journal.wait_durable(last).unwrap();
                        assert!(journal.durable_seq() >= last);
                    }
                }
                journal.wait_durable(last).unwrap();
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(journal.durable_seq(), u64::from(4 * PER_THREAD));
    assert_eq!(journal.lag(), 0);
    let journal = Arc::into_inner(journal).unwrap();
    journal.shutdown();

    let replay = read_journal(&path, &links()).unwrap();
    assert_eq!(replay.events, u64::from(4 * PER_THREAD));
    assert_eq!(replay.records.len(), (4 * PER_THREAD) as usize);
    let mut seen: Vec<_> = replay.records.iter().map(|r| r.lease.addr).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), (4 * PER_THREAD) as usize);
}

/// Every lease of `table` that the journal keeps (offers are not journaled).
fn table_leases(table: &LeaseTable) -> Vec<LeaseRecord> {
    let mut records = Vec::new();
    for shard in 0..table.shard_count() {
        table.iter_shard(shard, |record| records.push(record.clone()));
    }
    records
}

#[test]
fn replay_matches_a_busy_lease_table_across_compactions() {
    let dir = scratch("table");
    let path = dir.join("leases.journal");
    let table = Arc::new(LeaseTable::with_shards(
        1024,
        8,
        SaltKey::from_salt("journal"),
    ));
    let snapshot: Snapshot = {
        let table = Arc::clone(&table);
        Arc::new(move || table_leases(&table))
    };
    let options = JournalOptions {
        min_bytes: 8192,
        ratio: 2,
        ..JournalOptions::default()
    };
    let (journal, _) =
        Journal::open_with(&path, Durability::Always, links(), snapshot, options).unwrap();
    let journal = Arc::new(journal);
    let clock = Arc::new(AtomicU32::new(1));
    let life = Lifetimes {
        preferred: 20,
        valid: 40,
    };
    let workers: Vec<_> = (0..4u64)
        .map(|worker| {
            let (table, journal, clock) =
                (Arc::clone(&table), Arc::clone(&journal), Arc::clone(&clock));
            thread::spawn(move || {
                let mut sink = journal.sink();
                let mut rng = 0x9e37_79b9_7f4a_7c15 ^ (worker + 1);
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                for step in 0..3000 {
                    let pick = next();
                    let duid = format!("client-{}", pick % 48).into_bytes();
                    let key = table.ia_key(&duid, 1, IaKind::Na, LinkId(0));
                    let addr = u128::from((pick >> 8) % 64);
                    let now = clock.fetch_add(u32::from(step % 7 == 0), Ordering::Relaxed);
                    let _ = match (pick >> 20) % 8 {
                        0 => table
                            .claim(
                                &key,
                                addr,
                                128,
                                ClaimAs::Offered { hold: 5 },
                                life,
                                now,
                                &mut sink,
                            )
                            .map(drop)
                            .map_err(drop),
                        1..=3 => table
                            .claim(&key, addr, 128, ClaimAs::Bound, life, now, &mut sink)
                            .map(drop)
                            .map_err(drop),
                        4 => table
                            .renew(&key, addr, life, now, &mut sink)
                            .map(drop)
                            .map_err(drop),
                        5 => table
                            .release(&key, addr, now, &mut sink)
                            .map(drop)
                            .map_err(drop),
                        6 => table
                            .decline(&key, addr, 30, now, &mut sink)
                            .map(drop)
                            .map_err(drop),
                        _ => {
                            table.handle_timeout(now, 16, &mut sink);
                            Ok(())
                        }
                    };
                    if step % 16 == 15 {
                        journal.wait_durable(sink.last_seq()).unwrap();
                    }
                }
                journal.wait_durable(sink.last_seq()).unwrap();
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let compactions = journal.compactions();
    assert!(compactions > 0, "the journal never compacted");
    Arc::into_inner(journal).unwrap().shutdown();

    let replay = read_journal(&path, &links()).unwrap();
    assert!(!replay.corrupt);
    let expected: Vec<_> = table_leases(&table)
        .into_iter()
        .filter(|record| record.lease.state != LeaseState::Offered)
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(sorted(replay.records.clone()), sorted(expected));
    // And the table restored from it holds the same leases.
    let restored = LeaseTable::with_shards(1024, 8, SaltKey::from_salt("journal"));
    let report = restored.restore(replay.records);
    assert_eq!(report.conflicts, 0);
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped: a disk that fills.
struct SmallDisk(Scratch);

impl SmallDisk {
    fn mount(name: &str, size: &str) -> Self {
        let dir = scratch(name);
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&*dir)
            .status()
            .unwrap();
        assert!(status.success(), "mount a tmpfs (needs root)");
        Self(dir)
    }

    /// Fills the disk with `filler` until a write fails for lack of space.
    fn fill(&self) {
        use std::io::Write as _;
        let mut filler = fs::File::create(self.0.join("filler")).unwrap();
        let chunk = [0xaa; 4096];
        loop {
            match filler.write_all(&chunk).and_then(|()| filler.sync_all()) {
                Ok(()) => {}
                Err(error) => {
                    assert_eq!(error.raw_os_error(), Some(28), "{error}"); // ENOSPC
                    return;
                }
            }
        }
    }

    fn free(&self) {
        fs::remove_file(self.0.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&*self.0)
            .status();
    }
}

/// Leases of `count` clients named after `tag`.
fn clients(tag: &str, count: u32) -> Vec<LeaseRecord> {
    (0..count)
        .map(|i| {
            lease(
                format!("{tag}-{i:04}").as_bytes(),
                i,
                0x2001_0db8_0001_u128 << 80 | u128::from(i),
            )
        })
        .collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Fills the disk under a journal of `durability`, checks that it stops acknowledging, frees
/// the space and checks that it writes again and that every lease it was given is on disk.
fn full_disk(name: &str, durability: Durability) {
    use xdhcp6d::events::Events as _;
    let disk = SmallDisk::mount(name, "256k");
    let path = disk.0.join("leases.journal");
    let (journal, _) = Journal::open(&path, durability, links(), no_snapshot()).unwrap();
    let mut sink = journal.sink();
    let before = clients("before", 5);
    for record in &before {
        emit(&mut sink, EventKind::Bound, 1, record);
    }
    assert!(sink.settle());
    journal.shutdown();
    let (journal, _) = Journal::open(&path, durability, links(), no_snapshot()).unwrap();
    let mut sink = journal.sink();
    assert!(journal.is_healthy() && sink.persisting());

    disk.fill();
    // More than the file's last page holds, so that the writer needs new blocks.
    let during = clients("during", 100);
    for record in &during {
        emit(&mut sink, EventKind::Bound, 2, record);
    }
    wait_until("the journal fails", || journal.has_failed());
    assert!(!journal.is_healthy());
    assert!(
        !sink.persisting(),
        "bindings pause while the journal cannot write"
    );
    // Nothing is acknowledged past the failed write, with either durability.
    assert!(!sink.settle());
    assert_eq!(journal.wait_durable(sink.last_seq()).ok(), None);
    // The writer keeps trying, and keeps failing while the disk is full.
    thread::sleep(Duration::from_millis(300));
    assert!(journal.has_failed());
    assert_eq!(journal.write_failures(), 1);

    disk.free();
    wait_until("the journal writes again", || journal.is_healthy());
    assert!(sink.persisting());
    let after = clients("after", 5);
    for record in &after {
        emit(&mut sink, EventKind::Bound, 3, record);
    }
    assert!(sink.settle());
    journal.wait_durable(sink.last_seq()).unwrap();
    journal.shutdown();

    let replay = read_journal(&path, &links()).unwrap();
    assert!(!replay.corrupt && replay.torn_bytes == 0);
    let mut every: Vec<LeaseRecord> = before;
    every.extend(during);
    every.extend(after);
    assert_eq!(sorted(replay.records), sorted(every));
}

#[test]
#[ignore = "needs root: mounts a small tmpfs"]
fn full_disk_with_durability_always_stops_acknowledging_and_resumes_when_space_returns() {
    full_disk("full-always", Durability::Always);
}

#[test]
#[ignore = "needs root: mounts a small tmpfs"]
fn full_disk_with_durability_batch_stops_acknowledging_and_resumes_when_space_returns() {
    full_disk(
        "full-batch",
        Durability::Batch {
            interval: Duration::from_millis(5),
        },
    );
}
