//! The queues between the sinks and the writer: one ring of bytes (a lane) per sink, merged by
//! the writer in sequence order.
//!
//! # Design
//!
//! A sink encodes its event behind a 16-byte lane header, takes the next sequence number from
//! one `AtomicU64` (`Shared::issued_seq`), writes it into the header and copies header and
//! record into its own lane, a single-producer single-consumer ring of bytes (`rtrb`): one
//! copy and one release store, no lock and no wake-up per record. The ring is what the
//! writer reads, so a record is visible to it as soon as it is pushed: a worker never holds
//! records back, between batches or when it stops. The table emits an event with the lock of
//! the event's address shard held, so the number is taken under that lock, and every event of
//! one key (DUID, IAID, kind, link, address) lives in one address shard: per key, sequence
//! order is table order.
//!
//! The writer ([`Merge`]) reads every lane where it stands and copies records strictly in
//! sequence order into its group-commit buffer, stopping at the first number it has not found
//! (a sink between taking its number and pushing); each lane is already in ascending order,
//! its one producer taking numbers one after the other, so the merge looks only at each lane's
//! first record and copies runs from one lane while they follow each other. Records behind a
//! gap stay in their ring. The file's order is the sequence order, a total order that agrees
//! with every shard's, and the durable mark stays one number, as the workers' barriers expect.
//! A per-shard sequence would avoid the one shared counter but would need the engine to hand
//! the shard and its number with every event and the workers' barriers to track a number per
//! lane; one atomic add per event does not block anyone.
//!
//! A gap never holds the writer for long: every number below the smallest one still unpushed
//! is in some ring, so the writer always empties the ring of the sink holding that number.
//!
//! A full lane (the writer is behind: a long `fdatasync`, a failing disk) makes its sink wait
//! for the writer, which it wakes: no record is ever dropped, except once the writer has
//! stopped (shutdown). The wait is counted ([`LaneStats`]). The writer takes from every lane
//! whenever it wakes, also between syncs with `--durability batch`, so a wait lasts at most one
//! write and sync.
//!
//! The writer sleeps only when every number handed out is written; it says so in
//! `Shared::writer_idle`, and the first record pushed after that wakes it (a sequentially
//! consistent store and load on each side, so that either the writer sees the new number or
//! the sink sees the flag). While it is awake, pushes wake nobody, except that a sink finding
//! its lane half full (it looks every [`FILL_CHECK`] numbers) wakes a writer waiting for its
//! next batch interval, so that it takes from the lanes before they fill.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use rtrb::{Consumer, Producer, RingBuffer};

use super::format::MAX_RECORD_LEN;

/// The records one lane holds (at an average record's size) before its sink waits for the
/// writer: 4 MiB, about 10 ms of one busy worker's records, so that a worker does not wait
/// for the writer's `fdatasync` of the records before.
pub const LANE_CAPACITY: usize = 32_768;

/// The bytes a lane reserves per record of its capacity: an address lease with a DUID of 14
/// bytes and relay data takes about 100.
const BYTES_PER_RECORD: usize = 128;

/// A lane header: sequence number (8 bytes), event time (4), record length (4), little-endian.
pub(super) const LANE_HEADER: usize = 16;

/// The sink's end of a lane.
pub(super) type LaneSender = Producer<u8>;

/// The writer's end of a lane.
type LaneReceiver = Consumer<u8>;

/// Every how many sequence numbers a sink looks how full its lane is.
pub(super) const FILL_CHECK: u64 = 256;

/// Whether `lane` is at least half full.
pub(super) fn half_full(lane: &LaneSender) -> bool {
    lane.slots() <= lane.buffer().capacity() / 2
}

/// A new lane for about `records` records, never too small for the largest record.
pub(super) fn lane(records: usize) -> (LaneSender, LaneReceiver) {
    let bytes = records
        .saturating_mul(BYTES_PER_RECORD)
        .max(2 * (LANE_HEADER + MAX_RECORD_LEN));
    RingBuffer::new(bytes)
}

/// Fills the lane header at the start of `entry` (whose record follows it).
pub(super) fn set_header(entry: &mut [u8], seq: u64, at: u32) {
    let len = u32::try_from(entry.len() - LANE_HEADER).unwrap_or(u32::MAX);
    entry[..8].copy_from_slice(&seq.to_le_bytes());
    entry[8..12].copy_from_slice(&at.to_le_bytes());
    entry[12..16].copy_from_slice(&len.to_le_bytes());
}

/// What the writer hears besides records: a new sink's lane.
pub(super) type Control = LaneReceiver;

/// How often sinks found their lane full and waited for the writer.
#[derive(Default)]
pub(super) struct LaneStats {
    waits: AtomicU64,
    wait_ns: AtomicU64,
}

/// What [`LaneStats`] counted so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LaneWaits {
    /// Events whose sink found its lane full and waited for the writer.
    pub waits: u64,
    /// The time those waits took altogether.
    pub wait_time: Duration,
}

impl LaneStats {
    pub(super) fn snapshot(&self) -> LaneWaits {
        LaneWaits {
            waits: self.waits.load(Ordering::Relaxed),
            wait_time: Duration::from_nanos(self.wait_ns.load(Ordering::Relaxed)),
        }
    }
}

/// Pushes `entry` (a lane header and its record) onto `lane`, waiting for the writer while the
/// lane is full (counted in `stats`; `wake` wakes the writer). False when the writer has
/// stopped (the journal is closed) and the lane is full: the record is lost, as any record
/// emitted after the shutdown.
pub(super) fn push(
    lane: &mut LaneSender,
    entry: &[u8],
    stats: &LaneStats,
    wake: impl Fn(),
) -> bool {
    if lane.push_entire_slice(entry).is_ok() {
        return true;
    }
    if entry.len() > lane.buffer().capacity() {
        // Never: a lane holds two of the largest records.
        return false;
    }
    // Counted before the wait, so that a wait in progress shows.
    stats.waits.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let mut rounds: u32 = 0;
    let pushed = loop {
        if lane.is_abandoned() {
            break false;
        }
        wake();
        match rounds {
            0..16 => thread::yield_now(),
            _ => thread::sleep(Duration::from_micros(50)),
        }
        rounds = rounds.saturating_add(1);
        if lane.push_entire_slice(entry).is_ok() {
            break true;
        }
    };
    let waited = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    stats.wait_ns.fetch_add(waited, Ordering::Relaxed);
    pushed
}

/// A lane header read back.
#[derive(Clone, Copy)]
struct Head {
    seq: u64,
    at: u32,
    len: usize,
}

/// Copies `dst.len()` bytes from offset `at` of the ring slices `(a, b)` into `dst`.
fn copy_out((a, b): (&[u8], &[u8]), at: usize, dst: &mut [u8]) {
    let len = dst.len();
    if at >= a.len() {
        dst.copy_from_slice(&b[at - a.len()..][..len]);
    } else if at + len <= a.len() {
        dst.copy_from_slice(&a[at..][..len]);
    } else {
        let first = a.len() - at;
        dst[..first].copy_from_slice(&a[at..]);
        dst[first..].copy_from_slice(&b[..len - first]);
    }
}

/// Appends `len` bytes from offset `at` of the ring slices `(a, b)` to `out`.
fn extend_out(out: &mut Vec<u8>, (a, b): (&[u8], &[u8]), at: usize, len: usize) {
    if at >= a.len() {
        out.extend_from_slice(&b[at - a.len()..][..len]);
    } else if at + len <= a.len() {
        out.extend_from_slice(&a[at..][..len]);
    } else {
        let first = a.len() - at;
        out.extend_from_slice(&a[at..]);
        out.extend_from_slice(&b[..len - first]);
    }
}

/// The header at offset `at` of the readable slices `(a, b)`, if a record starts there.
fn head_at(slices: (&[u8], &[u8]), at: usize) -> Option<Head> {
    if at + LANE_HEADER > slices.0.len() + slices.1.len() {
        return None;
    }
    let mut header = [0; LANE_HEADER];
    copy_out(slices, at, &mut header);
    let [
        s0,
        s1,
        s2,
        s3,
        s4,
        s5,
        s6,
        s7,
        a0,
        a1,
        a2,
        a3,
        l0,
        l1,
        l2,
        l3,
    ] = header;
    Some(Head {
        seq: u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]),
        at: u32::from_le_bytes([a0, a1, a2, a3]),
        len: u32::from_le_bytes([l0, l1, l2, l3]) as usize,
    })
}

/// One lane during a merge: what it held when the merge started, and how far it was read.
struct Cursor<'a> {
    chunk: rtrb::chunks::ReadChunk<'a, u8>,
    offset: usize,
    head: Option<Head>,
}

impl Cursor<'_> {
    /// Appends the current record to `out` and moves to the next.
    fn copy(&mut self, out: &mut Vec<u8>, head: Head) {
        let slices = self.chunk.as_slices();
        extend_out(out, slices, self.offset + LANE_HEADER, head.len);
        self.offset += LANE_HEADER + head.len;
        self.head = head_at(slices, self.offset);
    }
}

/// The writer's side: every lane and the next sequence number to write.
pub(super) struct Merge {
    lanes: Vec<LaneReceiver>,
    control: Receiver<Control>,
    next: u64,
    /// The lane the last record written came from (tried first: runs are common).
    hint: usize,
    last_at: u32,
}

impl Merge {
    /// A merge that writes from sequence number 1 on.
    pub(super) fn new(control: Receiver<Control>) -> Self {
        Self {
            lanes: Vec::new(),
            control,
            next: 1,
            hint: 0,
            last_at: 0,
        }
    }

    /// Takes the new sinks' lanes.
    pub(super) fn collect(&mut self) {
        while let Ok(lane) = self.control.try_recv() {
            self.lanes.push(lane);
        }
    }

    /// Appends to `out` the records that follow the last one taken without a gap, in sequence
    /// order; the sequence number of the last, or `None` if there was none. Lanes of sinks
    /// that are gone leave once they are empty.
    pub(super) fn take(&mut self, out: &mut Vec<u8>) -> Option<u64> {
        self.collect();
        let Self {
            lanes,
            next,
            hint,
            last_at,
            ..
        } = self;
        let mut last = None;
        {
            let mut cursors: Vec<Cursor<'_>> = lanes
                .iter_mut()
                .map(|lane| {
                    let slots = lane.slots();
                    let chunk = lane
                        .read_chunk(slots)
                        .unwrap_or_else(|_| unreachable!("{slots} slots are readable"));
                    let head = head_at(chunk.as_slices(), 0);
                    Cursor {
                        chunk,
                        offset: 0,
                        head,
                    }
                })
                .collect();
            loop {
                let found = match cursors.get(*hint).and_then(|cursor| cursor.head) {
                    Some(head) if head.seq == *next => Some(*hint),
                    _ => cursors
                        .iter()
                        .position(|cursor| cursor.head.is_some_and(|head| head.seq == *next)),
                };
                let Some(index) = found else {
                    break;
                };
                let cursor = &mut cursors[index];
                while let Some(head) = cursor.head.filter(|head| head.seq == *next) {
                    cursor.copy(out, head);
                    *last_at = (*last_at).max(head.at);
                    last = Some(head.seq);
                    *next = head.seq + 1;
                }
                *hint = index;
            }
            for cursor in cursors {
                cursor.chunk.commit(cursor.offset);
            }
        }
        // Abandoned first: a sink may push once more before it goes.
        let before = lanes.len();
        lanes.retain(|lane| !(lane.is_abandoned() && lane.is_empty()));
        if lanes.len() != before {
            *hint = 0;
        }
        last
    }

    /// Appends every record the lanes hold to `out` in sequence order, over any gap (closing:
    /// a number taken but never pushed will not come); the sequence number of the last record
    /// that followed the earlier ones without a gap.
    pub(super) fn take_all(&mut self, out: &mut Vec<u8>) -> Option<u64> {
        let mut last = self.take(out);
        let mut rest: Vec<(Head, Vec<u8>)> = Vec::new();
        for lane in &mut self.lanes {
            let slots = lane.slots();
            let Ok(chunk) = lane.read_chunk(slots) else {
                continue;
            };
            let slices = chunk.as_slices();
            let mut offset = 0;
            while let Some(head) = head_at(slices, offset) {
                let mut bytes = Vec::with_capacity(head.len);
                extend_out(&mut bytes, slices, offset + LANE_HEADER, head.len);
                rest.push((head, bytes));
                offset += LANE_HEADER + head.len;
            }
            chunk.commit_all();
        }
        rest.sort_unstable_by_key(|(head, _)| head.seq);
        for (head, bytes) in rest {
            out.extend_from_slice(&bytes);
            self.last_at = self.last_at.max(head.at);
            if last.is_none() && head.seq == self.next {
                last = Some(head.seq);
            }
            self.next = self.next.max(head.seq + 1);
        }
        last
    }

    /// The sequence number of the last record taken (0 if none).
    pub(super) fn taken(&self) -> u64 {
        self.next - 1
    }

    /// The latest event time among the records taken.
    pub(super) fn last_at(&self) -> u32 {
        self.last_at
    }

    /// Lanes the merge reads.
    #[cfg(test)]
    fn lanes(&self) -> usize {
        self.lanes.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn record(seq: u64) -> Vec<u8> {
        format!("<{seq}>").into_bytes()
    }

    fn entry(seq: u64, at: u32) -> Vec<u8> {
        let mut entry = vec![0; LANE_HEADER];
        entry.extend_from_slice(&record(seq));
        set_header(&mut entry, seq, at);
        entry
    }

    fn written(seqs: impl IntoIterator<Item = u64>) -> Vec<u8> {
        seqs.into_iter().flat_map(record).collect()
    }

    fn merge() -> (crossbeam_channel::Sender<Control>, Merge) {
        let (control_tx, control) = crossbeam_channel::unbounded();
        (control_tx, Merge::new(control))
    }

    fn small_lane(bytes: usize) -> (LaneSender, LaneReceiver) {
        RingBuffer::new(bytes)
    }

    #[test]
    fn lanes_hold_the_largest_record_twice() {
        let (tx, _rx) = lane(1);
        assert!(tx.buffer().capacity() >= 2 * (LANE_HEADER + MAX_RECORD_LEN));
        let (tx, _rx) = lane(LANE_CAPACITY);
        assert_eq!(tx.buffer().capacity(), LANE_CAPACITY * BYTES_PER_RECORD);
    }

    #[test]
    fn records_wrapping_around_the_ring_come_out_unchanged() {
        let (control_tx, mut merge) = merge();
        // 7 bytes of record and 16 of header per entry: the ring wraps inside headers and
        // records alike.
        let (mut tx, rx) = small_lane(50);
        control_tx.send(rx).unwrap();
        let stats = LaneStats::default();
        let mut out = Vec::new();
        for seq in 1..=40u64 {
            let entry = entry(seq + 100, seq as u32);
            assert!(push(&mut tx, &entry, &stats, || ()));
            if seq == 1 {
                merge.next = 101;
            }
            assert_eq!(merge.take(&mut out), Some(seq + 100));
        }
        assert_eq!(out, written(101..=140));
        assert_eq!(merge.last_at(), 40);
    }

    #[test]
    fn lanes_merge_in_sequence_order_and_stop_at_a_gap() {
        let (control_tx, mut merge) = merge();
        let (mut a, a_rx) = lane(16);
        let (mut b, b_rx) = lane(16);
        control_tx.send(a_rx).unwrap();
        control_tx.send(b_rx).unwrap();
        let stats = LaneStats::default();
        // Lane a took 1, 2, 5, 6; lane b took 3 and 7; 4 is taken but not pushed yet.
        for seq in [1, 2, 5, 6] {
            assert!(push(&mut a, &entry(seq, seq as u32), &stats, || ()));
        }
        for seq in [3, 7] {
            assert!(push(&mut b, &entry(seq, 0), &stats, || ()));
        }
        let mut out = Vec::new();
        assert_eq!(merge.take(&mut out), Some(3));
        assert_eq!(out, written([1, 2, 3]));
        assert_eq!(merge.take(&mut out), None, "4 has not arrived");
        assert_eq!(merge.taken(), 3);
        // 4 comes from a third lane (a producer takes its numbers in order).
        let (mut c, c_rx) = lane(16);
        control_tx.send(c_rx).unwrap();
        assert!(push(&mut c, &entry(4, 0), &stats, || ()));
        out.clear();
        assert_eq!(merge.take(&mut out), Some(7));
        assert_eq!(out, written([4, 5, 6, 7]));
        assert_eq!(merge.last_at(), 6);
        assert_eq!(stats.snapshot(), LaneWaits::default());
    }

    #[test]
    fn a_closed_lane_is_drained_before_it_goes() {
        let (control_tx, mut merge) = merge();
        let (mut a, a_rx) = lane(4);
        control_tx.send(a_rx).unwrap();
        let stats = LaneStats::default();
        assert!(push(&mut a, &entry(2, 0), &stats, || ()));
        drop(a);
        let mut out = Vec::new();
        assert_eq!(merge.take(&mut out), None);
        assert_eq!(merge.lanes(), 1, "kept while it holds a record");
        let (mut b, b_rx) = lane(4);
        control_tx.send(b_rx).unwrap();
        assert!(push(&mut b, &entry(1, 0), &stats, || ()));
        assert_eq!(merge.take(&mut out), Some(2));
        assert_eq!(out, written([1, 2]));
        assert_eq!(merge.lanes(), 1, "the drained, closed lane is gone");
    }

    #[test]
    fn closing_writes_over_a_gap() {
        let (control_tx, mut merge) = merge();
        let (mut a, a_rx) = lane(4);
        let (mut b, b_rx) = lane(4);
        control_tx.send(a_rx).unwrap();
        control_tx.send(b_rx).unwrap();
        let stats = LaneStats::default();
        for seq in [1, 4, 6] {
            assert!(push(&mut a, &entry(seq, 0), &stats, || ()));
        }
        assert!(push(&mut b, &entry(3, 0), &stats, || ()));
        let mut out = Vec::new();
        assert_eq!(merge.take_all(&mut out), Some(1));
        assert_eq!(out, written([1, 3, 4, 6]));
    }

    #[test]
    fn a_full_lane_waits_for_the_writer_and_loses_nothing() {
        const RECORDS: u64 = 64;
        let (control_tx, mut merge) = merge();
        // Room for two entries.
        let (mut tx, rx) = small_lane(2 * (LANE_HEADER + 4));
        control_tx.send(rx).unwrap();
        let stats = Arc::new(LaneStats::default());
        let producer = {
            let stats = Arc::clone(&stats);
            thread::spawn(move || {
                for seq in 1..=RECORDS {
                    let entry = entry(seq, 0);
                    assert!(push(&mut tx, &entry, &stats, || ()));
                }
            })
        };
        // Nothing is taken until the producer found its lane full and waits.
        while stats.snapshot().waits == 0 {
            thread::yield_now();
        }
        let mut out = Vec::new();
        while merge.taken() != RECORDS {
            if merge.take(&mut out).is_none() {
                thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert_eq!(out, written(1..=RECORDS), "every record, in order");
        let waits = stats.snapshot();
        assert!(
            waits.waits >= 1,
            "the full lane made its sink wait: {waits:?}"
        );
        assert!(waits.wait_time > Duration::ZERO);
    }

    #[test]
    fn a_push_onto_a_full_lane_after_the_writer_stopped_fails_instead_of_waiting() {
        let (mut tx, rx) = small_lane(LANE_HEADER + 1);
        let stats = LaneStats::default();
        let mut first = vec![0; LANE_HEADER + 1];
        set_header(&mut first, 1, 0);
        assert!(push(&mut tx, &first, &stats, || ()));
        drop(rx);
        let mut second = vec![0; LANE_HEADER + 1];
        set_header(&mut second, 2, 0);
        assert!(!push(&mut tx, &second, &stats, || ()));
    }
}
