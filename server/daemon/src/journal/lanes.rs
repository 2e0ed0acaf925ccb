//! The queues between the sinks and the writer: one bounded queue (a lane) per sink, merged by
//! the writer in sequence order.
//!
//! # Design
//!
//! A sink encodes its event, takes the next sequence number from one `AtomicU64`
//! (`Shared::issued_seq`) and pushes the record onto its own lane, a bounded crossbeam
//! channel (an array queue with parking); no lock is shared by the sinks. The table emits
//! an event with the lock of the event's address shard held, so the number is taken under
//! that lock, and every event of one key (DUID, IAID, kind, link, address) lives in one
//! address shard: per key, sequence order is table order. The writer ([`Merge`]) moves what
//! every lane holds into a staging area (each lane is already in ascending order, its one
//! producer taking numbers one after the other) and writes records strictly in sequence
//! order, stopping at the first number it has not received yet (a sink between taking its
//! number and pushing): the file's order is the sequence order, a total order that agrees
//! with every shard's, and the durable mark stays one number, as the workers' barriers
//! expect. A per-shard sequence would avoid the one shared counter but would need the
//! engine to hand the shard and its number with every event and the workers' barriers to
//! track a number per lane; one atomic add per event does not block anyone.
//!
//! A full lane (the writer is behind: a long `fdatasync`, a failing disk) makes its sink wait
//! for the writer: the push blocks until the writer has taken from that lane, and the wait is
//! counted ([`LaneStats`]); no record is ever dropped, except once the writer has stopped
//! (shutdown). The writer takes from every lane whenever it wakes, even while a gap keeps it
//! from writing, so a wait lasts at most one write and sync.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender, TryRecvError, TrySendError};

/// The records one lane holds before its sink waits for the writer.
pub const LANE_CAPACITY: usize = 8192;

/// Records up to this many bytes travel inline, without an allocation.
const INLINE_LEN: usize = 200;

/// One encoded record and its sequence number.
pub(super) struct Entry {
    seq: u64,
    at: u32,
    bytes: Bytes,
}

enum Bytes {
    Inline { len: u8, buf: [u8; INLINE_LEN] },
    Heap(Box<[u8]>),
}

impl Entry {
    /// Record `bytes` (an event at `at`) with sequence number `seq`.
    pub(super) fn new(seq: u64, at: u32, bytes: &[u8]) -> Self {
        let bytes = match u8::try_from(bytes.len()) {
            Ok(len) if bytes.len() <= INLINE_LEN => {
                let mut buf = [0; INLINE_LEN];
                buf[..bytes.len()].copy_from_slice(bytes);
                Bytes::Inline { len, buf }
            }
            _ => Bytes::Heap(bytes.into()),
        };
        Self { seq, at, bytes }
    }

    fn bytes(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Inline { len, buf } => &buf[..usize::from(*len)],
            Bytes::Heap(bytes) => bytes,
        }
    }
}

/// What the writer hears besides records.
pub(super) enum Control {
    /// A new sink's lane.
    Lane(Receiver<Entry>),
    /// Look again: closing, or a compaction finished.
    Wake,
}

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

/// A new lane: the sink's end and the writer's.
pub(super) fn lane(capacity: usize) -> (Sender<Entry>, Receiver<Entry>) {
    crossbeam_channel::bounded(capacity.max(1))
}

/// Pushes `entry` onto `lane`, waiting for the writer while the lane is full (counted in
/// `stats`). False when the writer has stopped (the journal is closed): the record is lost,
/// as any record emitted after the shutdown.
pub(super) fn push(lane: &Sender<Entry>, entry: Entry, stats: &LaneStats) -> bool {
    match lane.try_send(entry) {
        Ok(()) => true,
        Err(TrySendError::Full(entry)) => {
            // Counted before the wait, so that a wait in progress shows.
            stats.waits.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let sent = lane.send(entry).is_ok();
            let waited = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            stats.wait_ns.fetch_add(waited, Ordering::Relaxed);
            sent
        }
        Err(TrySendError::Disconnected(_)) => false,
    }
}

/// One lane as the writer sees it.
struct Lane {
    queue: Receiver<Entry>,
    staged: VecDeque<Entry>,
    /// The sink is gone: once `staged` is empty, the lane goes too.
    closed: bool,
}

/// The writer's side: every lane, the records taken from them and not yet written, and the
/// next sequence number to write.
pub(super) struct Merge {
    lanes: Vec<Lane>,
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

    /// Takes the new lanes and everything queued (at most one lane's capacity from each, so
    /// a busy sink cannot keep the writer here), and drops the lanes of sinks that are gone
    /// once they are drained.
    pub(super) fn collect(&mut self) {
        while let Ok(control) = self.control.try_recv() {
            if let Control::Lane(queue) = control {
                self.add(queue);
            }
        }
        for lane in &mut self.lanes {
            for _ in 0..lane.queue.capacity().unwrap_or(LANE_CAPACITY) {
                match lane.queue.try_recv() {
                    Ok(entry) => lane.staged.push_back(entry),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        lane.closed = true;
                        break;
                    }
                }
            }
        }
        let before = self.lanes.len();
        self.lanes
            .retain(|lane| !(lane.closed && lane.staged.is_empty()));
        if self.lanes.len() != before {
            self.hint = 0;
        }
    }

    /// Whether the next record to write has been taken.
    pub(super) fn ready(&self) -> bool {
        self.lanes.iter().any(|lane| {
            lane.staged
                .front()
                .is_some_and(|entry| entry.seq == self.next)
        })
    }

    /// Appends to `out` the staged records that follow the last one written without a gap,
    /// in sequence order; the sequence number of the last, or `None` if there was none.
    pub(super) fn take(&mut self, out: &mut Vec<u8>) -> Option<u64> {
        let mut last = None;
        while let Some(index) = self.find(self.next) {
            let Some(entry) = self.lanes[index].staged.pop_front() else {
                break;
            };
            out.extend_from_slice(entry.bytes());
            self.last_at = self.last_at.max(entry.at);
            last = Some(entry.seq);
            self.next = entry.seq + 1;
            self.hint = index;
        }
        last
    }

    /// Appends every staged record to `out` in sequence order, over any gap (closing: a
    /// number taken but never pushed will not come); the sequence number of the last record
    /// that followed the earlier ones without a gap.
    pub(super) fn take_all(&mut self, out: &mut Vec<u8>) -> Option<u64> {
        let mut last = self.take(out);
        let mut rest: Vec<Entry> = self
            .lanes
            .iter_mut()
            .flat_map(|lane| lane.staged.drain(..))
            .collect();
        rest.sort_unstable_by_key(|entry| entry.seq);
        for entry in rest {
            out.extend_from_slice(entry.bytes());
            self.last_at = self.last_at.max(entry.at);
            if last.is_none() && entry.seq == self.next {
                last = Some(entry.seq);
            }
            self.next = self.next.max(entry.seq + 1);
        }
        last
    }

    /// Waits until a lane or the control queue has something (or is closed), or `timeout`
    /// passes; `None` waits without a limit.
    pub(super) fn wait(&mut self, timeout: Option<Duration>) {
        let mut select = Select::new();
        for lane in self.lanes.iter().filter(|lane| !lane.closed) {
            select.recv(&lane.queue);
        }
        select.recv(&self.control);
        match timeout {
            Some(timeout) => {
                let _ = select.ready_timeout(timeout);
            }
            None => {
                select.ready();
            }
        }
    }

    /// Waits for a control message (a new lane, closing, a finished compaction) or until
    /// `timeout` passes, without waking for records: a sink pushing onto a lane the writer
    /// does not wait on pays no wake-up.
    pub(super) fn wait_control(&mut self, timeout: Duration) {
        if let Ok(Control::Lane(queue)) = self.control.recv_timeout(timeout) {
            self.add(queue);
        }
    }

    /// Whether records were taken from the lanes and not written yet.
    pub(super) fn has_staged(&self) -> bool {
        self.lanes.iter().any(|lane| !lane.staged.is_empty())
    }

    fn add(&mut self, queue: Receiver<Entry>) {
        self.lanes.push(Lane {
            queue,
            staged: VecDeque::new(),
            closed: false,
        });
    }

    /// The latest event time among the records written.
    pub(super) fn last_at(&self) -> u32 {
        self.last_at
    }

    /// Records taken from the lanes and not written yet.
    #[cfg(test)]
    fn staged(&self) -> usize {
        self.lanes.iter().map(|lane| lane.staged.len()).sum()
    }

    fn find(&self, seq: u64) -> Option<usize> {
        let at_hint = self
            .lanes
            .get(self.hint)
            .and_then(|lane| lane.staged.front())
            .is_some_and(|entry| entry.seq == seq);
        if at_hint {
            return Some(self.hint);
        }
        self.lanes
            .iter()
            .position(|lane| lane.staged.front().is_some_and(|entry| entry.seq == seq))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::thread;

    use super::*;

    fn record(seq: u64) -> Vec<u8> {
        format!("<{seq}>").into_bytes()
    }

    fn written(seqs: impl IntoIterator<Item = u64>) -> Vec<u8> {
        seqs.into_iter().flat_map(record).collect()
    }

    #[test]
    fn records_travel_inline_or_boxed_unchanged() {
        let small = vec![7; INLINE_LEN];
        let large = vec![9; INLINE_LEN + 1];
        assert!(matches!(
            Entry::new(1, 0, &small).bytes,
            Bytes::Inline { .. }
        ));
        assert!(matches!(Entry::new(1, 0, &large).bytes, Bytes::Heap(_)));
        assert_eq!(Entry::new(1, 0, &small).bytes(), &small[..]);
        assert_eq!(Entry::new(1, 0, &large).bytes(), &large[..]);
        assert_eq!(Entry::new(1, 0, &[]).bytes(), &[] as &[u8]);
    }

    #[test]
    fn lanes_merge_in_sequence_order_and_stop_at_a_gap() {
        let (control_tx, control) = crossbeam_channel::unbounded();
        let mut merge = Merge::new(control);
        let (a, a_rx) = lane(16);
        let (b, b_rx) = lane(16);
        control_tx.send(Control::Lane(a_rx)).unwrap();
        control_tx.send(Control::Lane(b_rx)).unwrap();
        let stats = LaneStats::default();
        // Lane a took 1, 2, 5, 6; lane b took 3 and 7; 4 is taken but not pushed yet.
        for seq in [1, 2, 5, 6] {
            assert!(push(&a, Entry::new(seq, seq as u32, &record(seq)), &stats));
        }
        for seq in [3, 7] {
            assert!(push(&b, Entry::new(seq, 0, &record(seq)), &stats));
        }
        merge.collect();
        assert!(merge.ready());
        let mut out = Vec::new();
        assert_eq!(merge.take(&mut out), Some(3));
        assert_eq!(out, written([1, 2, 3]));
        assert!(!merge.ready(), "4 has not arrived");
        assert_eq!(merge.take(&mut out), None);
        assert_eq!(merge.staged(), 3);
        // 4 arrives on lane b, after 7 in b's queue would be out of order: a producer takes
        // its numbers in order, so it comes from a third lane here.
        let (c, c_rx) = lane(16);
        control_tx.send(Control::Lane(c_rx)).unwrap();
        assert!(push(&c, Entry::new(4, 0, &record(4)), &stats));
        merge.collect();
        out.clear();
        assert_eq!(merge.take(&mut out), Some(7));
        assert_eq!(out, written([4, 5, 6, 7]));
        assert_eq!(merge.last_at(), 6);
        assert_eq!(stats.snapshot(), LaneWaits::default());
    }

    #[test]
    fn a_closed_lane_is_drained_before_it_goes() {
        let (control_tx, control) = crossbeam_channel::unbounded();
        let mut merge = Merge::new(control);
        let (a, a_rx) = lane(4);
        control_tx.send(Control::Lane(a_rx)).unwrap();
        let stats = LaneStats::default();
        assert!(push(&a, Entry::new(2, 0, &record(2)), &stats));
        drop(a);
        merge.collect();
        assert_eq!(merge.lanes.len(), 1, "kept while it holds a record");
        let (b, b_rx) = lane(4);
        control_tx.send(Control::Lane(b_rx)).unwrap();
        assert!(push(&b, Entry::new(1, 0, &record(1)), &stats));
        merge.collect();
        let mut out = Vec::new();
        assert_eq!(merge.take(&mut out), Some(2));
        assert_eq!(out, written([1, 2]));
        merge.collect();
        assert_eq!(merge.lanes.len(), 1, "the drained, closed lane is gone");
        drop(control_tx);
    }

    #[test]
    fn closing_writes_over_a_gap() {
        let (control_tx, control) = crossbeam_channel::unbounded();
        let mut merge = Merge::new(control);
        let (a, a_rx) = lane(4);
        control_tx.send(Control::Lane(a_rx)).unwrap();
        let stats = LaneStats::default();
        for seq in [1, 3, 4] {
            assert!(push(&a, Entry::new(seq, 0, &record(seq)), &stats));
        }
        merge.collect();
        let mut out = Vec::new();
        assert_eq!(merge.take_all(&mut out), Some(1));
        assert_eq!(out, written([1, 3, 4]));
    }

    #[test]
    fn a_full_lane_waits_for_the_writer_and_loses_nothing() {
        const CAPACITY: usize = 4;
        const RECORDS: u64 = 64;
        let (control_tx, control) = crossbeam_channel::unbounded();
        let mut merge = Merge::new(control);
        let (tx, rx) = lane(CAPACITY);
        control_tx.send(Control::Lane(rx)).unwrap();
        let stats = Arc::new(LaneStats::default());
        let producer = {
            let stats = Arc::clone(&stats);
            thread::spawn(move || {
                for seq in 1..=RECORDS {
                    assert!(push(&tx, Entry::new(seq, 0, &record(seq)), &stats));
                }
            })
        };
        // Nothing is taken until the producer found its lane full and waits.
        while stats.snapshot().waits == 0 {
            thread::yield_now();
        }
        let mut out = Vec::new();
        let mut last = None;
        while last != Some(RECORDS) {
            merge.collect();
            match merge.take(&mut out) {
                Some(seq) => last = Some(seq),
                None => merge.wait(Some(Duration::from_millis(100))),
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
    fn a_push_after_the_writer_stopped_fails_instead_of_waiting() {
        let (tx, rx) = lane(1);
        let stats = LaneStats::default();
        assert!(push(&tx, Entry::new(1, 0, b"x"), &stats));
        drop(rx);
        assert!(!push(&tx, Entry::new(2, 0, b"y"), &stats));
    }
}
