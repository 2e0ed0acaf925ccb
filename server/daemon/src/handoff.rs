//! Spreading one receive queue's requests over the AF_XDP workers of an interface.
//!
//! A cable CMTS (any relay agent) sends all its Relay-forward messages from one address and
//! port, so the NIC's RSS hash puts them all on one receive queue and one worker answers a
//! whole CMTS while the others idle. With `--spread auto` the workers of an interface form a
//! [`Group`]: each request has an owner among them, chosen by [`owner`] from the client's
//! identity (a cheap keyed hash, no DHCPv6 parsing), and the worker that receives a request
//! owned by another copies its frame into the owner's inbox ([`Handoff::hand_off`]) instead
//! of answering it. Every turn of its loop, a worker takes what was handed to it
//! ([`Handoff::take`]) and handles it like a frame of its own receive ring: the reply is
//! written into its own UMEM, leaves on its own transmit queue (the same interface), waits for
//! its own journal sink's durability mark like the rest of its batch, and takes its Ethernet,
//! IP and UDP addresses from the copied frame. The same client always has the same owner, so
//! its messages are answered in order by one worker.
//!
//! Each inbox is bounded: a fixed number of fixed-size buffers ([`SLOT_BYTES`]: the largest
//! frame the XDP program steers), all allocated when the group is made and recycled through
//! a free list, so nothing is allocated per packet. When an owner's buffers are all in use the
//! request is dropped and counted (`handoff_full`; the client retransmits), as a full receive
//! ring would. A worker that stops closes its inbox ([`Handoff::close`]): what is left in it,
//! and what is handed to it afterwards, is dropped and counted (`handoff_stopped`), never
//! lost without a trace. A worker sleeping in `poll(2)` on its socket polls its inbox's
//! [`Wakeup`] too; a sender writes it once per batch, and only when the owner said it sleeps.
//!
//! The owner of a Relay-forward is chosen by the outermost relay header's link-address and
//! peer-address (the client's address as its relay saw it, or the next relay's, when relays
//! are chained); of a direct client's message by its IPv6 source address. A frame the hash
//! cannot read (not DHCPv6 over UDP, too short) stays with the worker that received it, which
//! counts it as it always did.

use std::{
    fmt,
    hash::BuildHasher,
    io,
    os::fd::{AsFd, BorrowedFd},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering, fence},
    },
};

use crossbeam_queue::ArrayQueue;
use xdhcp6_common::{MAX_STEERED_FRAME_LEN, Verdict, classify};
use xdhcp6_datapath::wake::{Wakeup, wait_either};

use crate::stats::WorkerStats;

/// Bytes of one inbox buffer: the longest frame the XDP program steers to AF_XDP.
pub const SLOT_BYTES: usize = MAX_STEERED_FRAME_LEN;

/// Buffers per inbox (per worker): 2 MiB of frames, a quarter of a worker's UMEM frames.
pub const INBOX_SLOTS: usize = 1024;

/// The DHCPv6 Relay-forward message type.
const RELAY_FORW: u8 = 12;
/// A Relay-forward's link-address and peer-address, after msg-type and hop-count.
const RELAY_ADDRESSES: std::ops::Range<usize> = 2..34;
/// The IPv6 source address, from the start of the IPv6 header.
const IPV6_SOURCE: std::ops::Range<usize> = 8..24;

/// Whether the AF_XDP workers of an interface spread requests over each other
/// (`xdhcp6d run --spread`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Spread {
    /// Each request goes to the worker its client hashes to, when the interface has more than
    /// one receive queue.
    #[default]
    Auto,
    /// Each worker answers what its own receive queue brings.
    Off,
}

impl fmt::Display for Spread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Spread::Auto => "auto",
            Spread::Off => "off",
        })
    }
}

impl Spread {
    /// Whether an interface with `queues` receive queues (one worker each) spreads.
    pub fn applies(self, queues: u32) -> bool {
        self == Spread::Auto && queues > 1
    }
}

/// The worker (of `workers`) that owns the request in `frame` (an Ethernet frame), by the
/// client's identity hashed under `key`; `None` when the frame is not one the hash can read
/// (the receiving worker keeps it). Never panics, whatever the frame.
pub fn owner(frame: &[u8], workers: usize, key: u64) -> Option<usize> {
    if workers < 2 {
        return None;
    }
    let Verdict::Steer(offsets) = classify(frame) else {
        return None;
    };
    let payload = frame.get(offsets.payload()..)?;
    let identity = if *payload.first()? == RELAY_FORW {
        payload.get(RELAY_ADDRESSES)?
    } else {
        frame.get(offsets.l3 + IPV6_SOURCE.start..offsets.l3 + IPV6_SOURCE.end)?
    };
    Some(reduce(hash(identity, key), workers))
}

/// A multiply-xorshift hash of `bytes` (16 or 32 of them) under `key`, finished with
/// MurmurHash3's 64-bit mix so that every input bit reaches the high bits [`reduce`] reads.
fn hash(bytes: &[u8], key: u64) -> u64 {
    let mut h = key ^ 0x243f_6a88_85a3_08d3;
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 29;
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// `h` mapped onto `0..n` (the high bits, Lemire's reduction).
fn reduce(h: u64, n: usize) -> usize {
    ((u128::from(h) * n as u128) >> 64) as usize
}

/// A copied request frame in an inbox.
pub struct Packet {
    len: usize,
    bytes: [u8; SLOT_BYTES],
}

impl Packet {
    /// The frame.
    pub fn frame(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fmt::Debug for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packet").field("len", &self.len).finish()
    }
}

/// One worker's inbox: frames handed to it, the free buffers senders copy into, and its
/// wakeup.
struct Inbox {
    queue: ArrayQueue<Box<Packet>>,
    free: ArrayQueue<Box<Packet>>,
    /// Set by the owner before it sleeps in `poll(2)`, cleared when it wakes.
    sleeping: AtomicBool,
    /// Set once by the owner when it stops ([`Handoff::close`]).
    closed: AtomicBool,
    wakeup: Wakeup,
}

/// The AF_XDP workers of one interface that spread requests over each other.
pub struct Group {
    inboxes: Vec<Inbox>,
    key: u64,
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("workers", &self.inboxes.len())
            .finish_non_exhaustive()
    }
}

impl Group {
    /// A group of `workers` with `slots` buffers per inbox, all allocated now, hashing under a
    /// key drawn for this process.
    pub fn new(workers: usize, slots: usize) -> io::Result<Arc<Self>> {
        let key = std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64);
        Self::with_key(workers, slots, key)
    }

    /// [`Self::new`] with a given hash key.
    pub fn with_key(workers: usize, slots: usize, key: u64) -> io::Result<Arc<Self>> {
        let slots = slots.max(1);
        let mut inboxes = Vec::with_capacity(workers);
        for _ in 0..workers {
            let free = ArrayQueue::new(slots);
            for _ in 0..slots {
                let _ = free.push(Box::new(Packet {
                    len: 0,
                    bytes: [0; SLOT_BYTES],
                }));
            }
            inboxes.push(Inbox {
                queue: ArrayQueue::new(slots),
                free,
                sleeping: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                wakeup: Wakeup::new()?,
            });
        }
        Ok(Arc::new(Self { inboxes, key }))
    }

    /// The handle of worker `me` (`0..workers`).
    pub fn member(self: &Arc<Self>, me: usize) -> Handoff {
        Handoff {
            group: Arc::clone(self),
            me,
            to_wake: vec![false; self.inboxes.len()],
        }
    }

    /// The number of workers.
    pub fn workers(&self) -> usize {
        self.inboxes.len()
    }
}

/// One worker's side of a [`Group`].
pub struct Handoff {
    group: Arc<Group>,
    me: usize,
    /// Owners handed something since the last [`Self::notify`].
    to_wake: Vec<bool>,
}

impl fmt::Debug for Handoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handoff")
            .field("me", &self.me)
            .field("workers", &self.group.inboxes.len())
            .finish_non_exhaustive()
    }
}

impl Handoff {
    /// This worker's number in its group.
    pub fn me(&self) -> usize {
        self.me
    }

    /// Hands `frame` to its owner when that is another worker: true when it was taken (copied
    /// into the owner's inbox, counted `handoff_out`, or dropped because the inbox is full,
    /// counted `handoff_full`); false when this worker answers it itself.
    pub fn hand_off(&mut self, frame: &[u8], stats: &WorkerStats) -> bool {
        let Some(owner) = owner(frame, self.group.inboxes.len(), self.group.key) else {
            return false;
        };
        if owner == self.me || frame.len() > SLOT_BYTES {
            return false;
        }
        let inbox = &self.group.inboxes[owner];
        if inbox.closed.load(Ordering::Acquire) {
            stats.count_handoff_stopped();
            return true;
        }
        let Some(mut packet) = inbox.free.pop() else {
            stats.count_handoff_full();
            return true;
        };
        packet.bytes[..frame.len()].copy_from_slice(frame);
        packet.len = frame.len();
        match inbox.queue.push(packet) {
            Ok(()) => {
                stats.count_handoff_out();
                self.to_wake[owner] = true;
                // Pairs with the fence in `close`: either the owner's drain sees this packet,
                // or this sees the inbox closed and takes one out (its own or another's:
                // each packet is counted by whoever pops it).
                fence(Ordering::SeqCst);
                if inbox.closed.load(Ordering::Relaxed)
                    && let Some(packet) = inbox.queue.pop()
                {
                    let _ = inbox.free.push(packet);
                    stats.count_handoff_stopped();
                }
            }
            // Never: the queue holds as many as there are buffers. Keep the buffer anyway.
            Err(packet) => {
                let _ = inbox.free.push(packet);
                stats.count_handoff_full();
            }
        }
        true
    }

    /// Wakes the owners handed something since the last call, if they sleep: once per batch.
    pub fn notify(&mut self) {
        // Pairs with the fence in `sleep`: either the owner sees the packets before it
        // sleeps, or this sees its flag and wakes it.
        fence(Ordering::SeqCst);
        for (owner, wake) in self.to_wake.iter_mut().enumerate() {
            if std::mem::take(wake) {
                let inbox = &self.group.inboxes[owner];
                if inbox.sleeping.load(Ordering::Relaxed) {
                    inbox.wakeup.notify();
                }
            }
        }
    }

    /// Whether requests wait in this worker's inbox.
    pub fn has_inbound(&self) -> bool {
        !self.inbox().queue.is_empty()
    }

    /// The oldest request handed to this worker.
    pub fn take(&self) -> Option<Box<Packet>> {
        self.inbox().queue.pop()
    }

    /// Returns a buffer from [`Self::take`] to the free list, once handled.
    pub fn recycle(&self, packet: Box<Packet>) {
        // Never full: every buffer came from this inbox.
        let _ = self.inbox().free.push(packet);
    }

    /// Closes this worker's inbox when it stops: the requests left in it are dropped and
    /// counted (`handoff_stopped`), and so is whatever is handed to it from now on (by the
    /// sender). Returns how many were left.
    pub fn close(&self, stats: &WorkerStats) -> usize {
        let inbox = self.inbox();
        inbox.closed.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let mut left = 0;
        while let Some(packet) = inbox.queue.pop() {
            let _ = inbox.free.push(packet);
            stats.count_handoff_stopped();
            left += 1;
        }
        left
    }

    /// Sleeps until `socket` is readable, something is handed to this worker, or
    /// `timeout_ms` passes.
    pub fn sleep(&self, socket: BorrowedFd<'_>, timeout_ms: i32) {
        let inbox = self.inbox();
        inbox.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if inbox.queue.is_empty() && wait_either(socket, inbox.wakeup.as_fd(), timeout_ms) {
            inbox.wakeup.clear();
        }
        inbox.sleeping.store(false, Ordering::Relaxed);
    }

    /// Runs `sleep` with the descriptor that becomes readable when something is handed to
    /// this worker, marked as sleeping meanwhile; does not run it when something waits already.
    pub fn sleep_beside(&self, sleep: impl FnOnce(BorrowedFd<'_>)) {
        let inbox = self.inbox();
        inbox.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if inbox.queue.is_empty() {
            sleep(inbox.wakeup.as_fd());
            inbox.wakeup.clear();
        }
        inbox.sleeping.store(false, Ordering::Relaxed);
    }

    fn inbox(&self) -> &Inbox {
        &self.group.inboxes[self.me]
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeSet, net::Ipv6Addr, sync::atomic::Ordering, thread};

    use xdhcp6_common::IPPROTO_UDP;
    use xdhcp6_common::frames::FrameBuilder;

    use super::*;

    const KEY: u64 = 0x1234_5678_9abc_def0;

    /// A direct client's Solicit frame from `source`, with `tags`.
    fn direct(source: Ipv6Addr, tags: &[u16]) -> Vec<u8> {
        let frame = FrameBuilder::with_tags(tags).ipv6(IPPROTO_UDP).udp(
            546,
            547,
            &[1, 0, 0, 1, 0, 8, 0, 2, 0, 0],
        );
        let mut frame = frame.bytes().to_vec();
        let l3 = 14 + 4 * tags.len();
        frame[l3 + 8..l3 + 24].copy_from_slice(&source.octets());
        frame
    }

    /// A Relay-forward frame from one relay (fixed source address and port) for the client at
    /// `peer` on the link `link`, with `transaction` in the inner Solicit.
    fn relayed(link: Ipv6Addr, peer: Ipv6Addr, transaction: u8) -> Vec<u8> {
        let mut message = vec![RELAY_FORW, 0];
        message.extend_from_slice(&link.octets());
        message.extend_from_slice(&peer.octets());
        let inner = [1, 0, 0, transaction, 0, 8, 0, 2, 0, 0];
        message.extend_from_slice(&[0, 9, 0, inner.len() as u8]);
        message.extend_from_slice(&inner);
        let frame = FrameBuilder::with_tags(&[])
            .ipv6(IPPROTO_UDP)
            .udp(547, 547, &message);
        let mut frame = frame.bytes().to_vec();
        frame[22..38].copy_from_slice(&"2001:db8:f::2".parse::<Ipv6Addr>().unwrap().octets());
        frame
    }

    fn client(n: u16) -> Ipv6Addr {
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0x0200, 0x5eff, 0xfe00, n)
    }

    fn link() -> Ipv6Addr {
        "2001:db8:2::1".parse().unwrap()
    }

    #[test]
    fn the_same_client_has_the_same_owner() {
        for workers in 2..=16 {
            for n in 0..64 {
                let first = owner(&relayed(link(), client(n), 1), workers, KEY);
                // Another message of the same client: another transaction, same relay header.
                let again = owner(&relayed(link(), client(n), 2), workers, KEY);
                assert!(first.is_some_and(|owner| owner < workers));
                assert_eq!(first, again, "client {n}, {workers} workers");
                let direct_first = owner(&direct(client(n), &[]), workers, KEY);
                assert_eq!(direct_first, owner(&direct(client(n), &[]), workers, KEY));
                // VLAN tags move the headers, not the identity.
                assert_eq!(
                    direct_first,
                    owner(&direct(client(n), &[0x8100]), workers, KEY)
                );
            }
        }
    }

    #[test]
    fn many_clients_of_one_relay_spread_over_every_worker() {
        for workers in [2usize, 3, 4, 8, 16] {
            let mut counts = vec![0usize; workers];
            let clients = 4096;
            for n in 0..clients {
                let owner = owner(&relayed(link(), client(n as u16), 1), workers, KEY).unwrap();
                counts[owner] += 1;
            }
            let fair = clients / workers;
            for (worker, count) in counts.iter().enumerate() {
                // Within a third of an even share.
                assert!(
                    count.abs_diff(fair) < fair / 3,
                    "{workers} workers: worker {worker} owns {count} of {clients}: {counts:?}"
                );
            }
            // Direct clients too.
            let mut direct_counts = vec![0usize; workers];
            for n in 0..clients {
                direct_counts[owner(&direct(client(n as u16), &[]), workers, KEY).unwrap()] += 1;
            }
            assert!(direct_counts.iter().all(|count| *count > fair / 2));
        }
    }

    #[test]
    fn the_link_address_counts_in_the_owner() {
        let other: Ipv6Addr = "2001:db8:3::1".parse().unwrap();
        let differs = (0..64)
            .filter(|n| {
                owner(&relayed(link(), client(*n), 1), 16, KEY)
                    != owner(&relayed(other, client(*n), 1), 16, KEY)
            })
            .count();
        assert!(differs > 32, "{differs} of 64");
    }

    #[test]
    fn unreadable_frames_stay_with_the_receiver_and_never_panic() {
        let frame = relayed(link(), client(7), 1);
        // Every truncation, and every single-byte corruption of the headers.
        for len in 0..frame.len() {
            let _ = owner(&frame[..len], 4, KEY);
        }
        // Cut inside the relay header: the hash cannot read the addresses.
        let payload = 14 + 40 + 8;
        for len in 0..payload + 34 {
            assert_eq!(owner(&frame[..len], 4, KEY), None, "length {len}");
        }
        for index in 0..frame.len() {
            for value in [0u8, 0xff, 0x81, 12] {
                let mut bad = frame.clone();
                bad[index] = value;
                let _ = owner(&bad, 4, KEY);
            }
        }
        assert_eq!(owner(&[], 4, KEY), None);
        assert_eq!(owner(&[0xff; 3000], 4, KEY), None);
        // Not UDP to 547: not steered, kept.
        let mut other_port = frame.clone();
        other_port[14 + 40 + 2..14 + 40 + 4].copy_from_slice(&546u16.to_be_bytes());
        assert_eq!(owner(&other_port, 4, KEY), None);
        // One worker: nobody to hand to.
        assert_eq!(owner(&frame, 1, KEY), None);

        let group = Group::with_key(4, 8, KEY).unwrap();
        let stats = WorkerStats::default();
        let mut member = group.member(0);
        assert!(!member.hand_off(&frame[..payload + 10], &stats));
        assert!(!member.hand_off(&[], &stats));
        assert_eq!(stats.handoff_out.load(Ordering::Relaxed), 0);
    }

    /// A client of `relay` that `group` assigns to `worker`.
    fn client_of(worker: usize, workers: usize, skip: usize) -> Vec<u8> {
        (0..u16::MAX)
            .map(|n| relayed(link(), client(n), 1))
            .filter(|frame| owner(frame, workers, KEY) == Some(worker))
            .nth(skip)
            .unwrap()
    }

    #[test]
    fn a_full_inbox_drops_and_counts_and_buffers_are_recycled() {
        let slots = 4;
        let group = Group::with_key(2, slots, KEY).unwrap();
        let stats0 = WorkerStats::default();
        let mut sender = group.member(0);
        let receiver = group.member(1);
        // Its own clients: not handed off.
        assert!(!sender.hand_off(&client_of(0, 2, 0), &stats0));
        let frames: Vec<Vec<u8>> = (0..slots + 3).map(|i| client_of(1, 2, i)).collect();
        for frame in &frames {
            assert!(sender.hand_off(frame, &stats0));
        }
        sender.notify();
        assert_eq!(stats0.handoff_out.load(Ordering::Relaxed), slots as u64);
        assert_eq!(stats0.handoff_full.load(Ordering::Relaxed), 3);
        // Taken in order, the bytes as sent; the buffers are the ones made with the group.
        let mut buffers = BTreeSet::new();
        for frame in &frames[..slots] {
            let packet = receiver.take().unwrap();
            assert_eq!(packet.frame(), &frame[..]);
            buffers.insert(&*packet as *const Packet as usize);
            receiver.recycle(packet);
        }
        assert!(receiver.take().is_none());
        assert!(!receiver.has_inbound());
        // Recycled: the next round fits again, in the same buffers.
        for frame in &frames[..slots] {
            assert!(sender.hand_off(frame, &stats0));
        }
        assert_eq!(stats0.handoff_full.load(Ordering::Relaxed), 3);
        assert!(receiver.has_inbound());
        while let Some(packet) = receiver.take() {
            assert!(buffers.contains(&(&*packet as *const Packet as usize)));
            receiver.recycle(packet);
        }
    }

    #[test]
    fn a_sleeping_owner_wakes_when_handed_work() {
        let group = Group::with_key(2, 16, KEY).unwrap();
        let frame = client_of(1, 2, 0);
        // Something to poll that never becomes readable.
        let idle = Wakeup::new().unwrap();
        let receiver = group.member(1);
        let sender_group = Arc::clone(&group);
        let sender = thread::spawn(move || {
            let stats = WorkerStats::default();
            let mut sender = sender_group.member(0);
            // Wait until the receiver sleeps, then hand it work.
            while !sender_group.inboxes[1].sleeping.load(Ordering::SeqCst) {
                thread::yield_now();
            }
            assert!(sender.hand_off(&frame, &stats));
            sender.notify();
        });
        // An hour's timeout: only the wakeup ends it.
        receiver.sleep(idle.as_fd(), 3_600_000);
        sender.join().unwrap();
        assert!(receiver.take().is_some());
    }

    #[test]
    fn a_stopped_worker_counts_what_was_left_and_what_comes_after() {
        let group = Group::with_key(2, 8, KEY).unwrap();
        let (stats0, stats1) = (WorkerStats::default(), WorkerStats::default());
        let mut sender = group.member(0);
        let receiver = group.member(1);
        for i in 0..3 {
            assert!(sender.hand_off(&client_of(1, 2, i), &stats0));
        }
        assert_eq!(receiver.close(&stats1), 3);
        assert_eq!(stats1.handoff_stopped.load(Ordering::Relaxed), 3);
        assert!(!receiver.has_inbound());
        // Handed after the owner stopped: dropped by the sender, counted, not queued.
        assert!(sender.hand_off(&client_of(1, 2, 3), &stats0));
        assert_eq!(stats0.handoff_stopped.load(Ordering::Relaxed), 1);
        assert_eq!(stats0.handoff_out.load(Ordering::Relaxed), 3);
        assert!(!receiver.has_inbound());
        // Every buffer is free again.
        assert_eq!(group.inboxes[1].free.len(), 8);
    }

    #[test]
    fn a_worker_stopping_while_others_hand_to_it_loses_nothing_uncounted() {
        let frames: Arc<Vec<Vec<u8>>> = Arc::new((0..20).map(|i| client_of(1, 3, i)).collect());
        for _ in 0..50 {
            let group = Group::with_key(3, 64, KEY).unwrap();
            let senders: Vec<_> = [0, 2]
                .into_iter()
                .map(|me| {
                    let group = Arc::clone(&group);
                    let frames = Arc::clone(&frames);
                    thread::spawn(move || {
                        let stats = WorkerStats::default();
                        let mut sender = group.member(me);
                        for i in 0..200 {
                            sender.hand_off(&frames[i % frames.len()], &stats);
                        }
                        stats
                    })
                })
                .collect();
            let receiver = group.member(1);
            let stats1 = WorkerStats::default();
            let mut taken = 0u64;
            for _ in 0..50 {
                if let Some(packet) = receiver.take() {
                    receiver.recycle(packet);
                    taken += 1;
                }
            }
            receiver.close(&stats1);
            let mut sent = 0;
            let mut dropped = stats1.handoff_stopped.load(Ordering::Relaxed);
            for sender in senders {
                let stats = sender.join().unwrap();
                sent += 200;
                dropped += stats.handoff_stopped.load(Ordering::Relaxed)
                    + stats.handoff_full.load(Ordering::Relaxed);
            }
            assert!(!receiver.has_inbound());
            assert_eq!(taken + dropped, sent, "taken {taken}, dropped {dropped}");
        }
    }

    #[test]
    fn spread_applies_with_several_queues() {
        assert!(Spread::Auto.applies(2));
        assert!(!Spread::Auto.applies(1));
        assert!(!Spread::Off.applies(4));
    }
}
