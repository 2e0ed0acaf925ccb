//! The delayed-reply queue: replies a datapath worker holds until they are due.
//!
//! A standby server of an RFC 6853 pair (Preference below 255) may hold its Advertise messages
//! for `advertise-delay-ms`, so that clients which take the first Advertise and ignore
//! Preference bind to the primary. The engine says how long to hold a reply
//! ([`xdhcp6_engine::Outcome::Reply`] `delay_ms`; only ever an Advertise); the worker that
//! built it keeps it here and sends it when due, between batches, while every other reply
//! leaves at once. Nothing sleeps: the worker's wait for the next request is shortened to the
//! next due time ([`DelayQueue::timeout_ms`]).
//!
//! The queue is per worker (no locks) and bounded in count and in bytes; a reply that does
//! not fit is dropped and counted (`xdhcp6_advertise_delay_overflow_total`): the client
//! retransmits its Solicit, and the primary, which holds nothing, answers it.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Replies one worker holds at most.
pub const MAX_DELAYED: usize = 4096;

/// Reply bytes one worker holds at most.
pub const MAX_DELAYED_BYTES: usize = 4 << 20;

/// Held replies ordered by due time, then by arrival.
#[derive(Debug)]
pub struct DelayQueue<T> {
    heap: BinaryHeap<Reverse<Entry<T>>>,
    bytes: usize,
    max_len: usize,
    max_bytes: usize,
    next_seq: u64,
}

#[derive(Debug)]
struct Entry<T> {
    due: Instant,
    seq: u64,
    bytes: usize,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

impl<T> Default for DelayQueue<T> {
    fn default() -> Self {
        Self::new(MAX_DELAYED, MAX_DELAYED_BYTES)
    }
}

impl<T> DelayQueue<T> {
    /// An empty queue holding at most `max_len` items and `max_bytes` bytes.
    pub fn new(max_len: usize, max_bytes: usize) -> Self {
        Self {
            heap: BinaryHeap::new(),
            bytes: 0,
            max_len,
            max_bytes,
            next_seq: 0,
        }
    }

    /// Holds `item` (`bytes` long) until `due`; gives it back when the queue is full.
    pub fn push(&mut self, due: Instant, bytes: usize, item: T) -> Result<(), T> {
        if self.heap.len() >= self.max_len || self.bytes.saturating_add(bytes) > self.max_bytes {
            return Err(item);
        }
        self.bytes += bytes;
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.heap.push(Reverse(Entry {
            due,
            seq,
            bytes,
            item,
        }));
        Ok(())
    }

    /// The earliest due time held.
    pub fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(entry)| entry.due)
    }

    /// The earliest item when it is due at `now`.
    pub fn peek_due(&self, now: Instant) -> Option<&T> {
        self.heap
            .peek()
            .filter(|Reverse(entry)| entry.due <= now)
            .map(|Reverse(entry)| &entry.item)
    }

    /// Takes the earliest item when it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        self.peek_due(now)?;
        self.pop()
    }

    /// The earliest item, due or not.
    pub fn peek(&self) -> Option<&T> {
        self.heap.peek().map(|Reverse(entry)| &entry.item)
    }

    /// Takes the earliest item, due or not.
    pub fn pop(&mut self) -> Option<T> {
        let Reverse(entry) = self.heap.pop()?;
        self.bytes -= entry.bytes;
        Some(entry.item)
    }

    /// Items held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// How long a worker may wait for requests at `now`: `idle_ms` when nothing is held,
    /// else until the next item is due (0 when one is; rounded up to whole milliseconds).
    pub fn timeout_ms(&self, now: Instant, idle_ms: i32) -> i32 {
        match self.next_due() {
            None => idle_ms,
            Some(due) => {
                let wait = due.saturating_duration_since(now);
                let ms = wait.as_millis() + u128::from(wait.subsec_nanos() % 1_000_000 != 0);
                i32::try_from(ms).unwrap_or(i32::MAX).min(idle_ms.max(0))
            }
        }
    }
}

/// When a reply held `delay_ms` from `now` is due.
pub fn due(now: Instant, delay_ms: u16) -> Instant {
    now + Duration::from_millis(u64::from(delay_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_leave_in_due_order_only_when_due() {
        let start = Instant::now();
        let mut queue = DelayQueue::new(8, 1000);
        queue.push(due(start, 50), 10, "late").unwrap();
        queue.push(due(start, 10), 10, "early").unwrap();
        queue.push(due(start, 10), 10, "early-2").unwrap();
        assert_eq!(queue.pop_due(start), None);
        assert_eq!(queue.pop_due(due(start, 9)), None);
        assert_eq!(queue.pop_due(due(start, 10)), Some("early"));
        assert_eq!(queue.pop_due(due(start, 10)), Some("early-2"));
        assert_eq!(queue.pop_due(due(start, 10)), None);
        assert_eq!(queue.bytes(), 10);
        assert_eq!(queue.pop_due(due(start, 60)), Some("late"));
        assert!(queue.is_empty());
        assert_eq!(queue.bytes(), 0);
    }

    #[test]
    fn bounded_in_count_and_bytes() {
        let now = Instant::now();
        let mut by_count = DelayQueue::new(2, 1000);
        assert!(by_count.push(now, 1, 1).is_ok());
        assert!(by_count.push(now, 1, 2).is_ok());
        assert_eq!(by_count.push(now, 1, 3), Err(3));
        let mut by_bytes = DelayQueue::new(100, 100);
        assert!(by_bytes.push(now, 60, 1).is_ok());
        assert_eq!(by_bytes.push(now, 41, 2), Err(2));
        assert!(by_bytes.push(now, 40, 3).is_ok());
        // Room again once one leaves.
        assert_eq!(by_bytes.pop(), Some(1));
        assert!(by_bytes.push(now, 60, 4).is_ok());
    }

    #[test]
    fn timeout_runs_to_the_next_due_item() {
        let now = Instant::now();
        let mut queue = DelayQueue::new(8, 1000);
        assert_eq!(queue.timeout_ms(now, 200), 200);
        queue.push(due(now, 30), 1, ()).unwrap();
        assert_eq!(queue.timeout_ms(now, 200), 30);
        assert_eq!(queue.timeout_ms(now, 10), 10);
        assert_eq!(queue.timeout_ms(due(now, 40), 200), 0);
        assert_eq!(
            queue.timeout_ms(now + Duration::from_micros(29_500), 200),
            1,
            "rounded up, never a busy zero before it is due"
        );
    }
}
