//! Counters shared by the datapath workers and read by the metrics endpoint.
//!
//! Each worker owns one [`WorkerStats`] (no sharing on the hot path: plain relaxed atomics on
//! its own cache lines); the metrics endpoint sums them when it is scraped.

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};

use xdhcp6_engine::DropReason;
use xdhcp6_engine::proto::MessageType;

use crate::frame::FrameError;

/// Message types counted one by one (index = RFC 9915 message type code, 0 = unknown).
pub const MESSAGE_TYPES: usize = 18;

/// The kernel's AF_XDP socket counters (`struct xdp_statistics`), in [`WorkerStats::xsk`] order.
pub const XSK_COUNTER_NAMES: [&str; 6] = [
    "rx_dropped",
    "rx_invalid_descs",
    "tx_invalid_descs",
    "rx_ring_full",
    "rx_fill_ring_empty_descs",
    "tx_ring_empty_descs",
];

/// The counters of one datapath worker.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerStats {
    /// Messages received, by the type of the innermost (client) message.
    pub received: [AtomicU64; MESSAGE_TYPES],
    /// Replies sent, by type (Advertise, Reply).
    pub sent: [AtomicU64; MESSAGE_TYPES],
    /// Messages dropped, by [`DropReason`] (index in [`DropReason::ALL`]).
    pub dropped: [AtomicU64; DropReason::ALL.len()],
    /// Relayed Solicit and Request messages from a link no `[[link]]` selects, answered
    /// NoAddrsAvail / NoPrefixAvail (`unknown-link = "no-addrs-avail"`).
    pub unknown_link_answered: AtomicU64,
    /// Frames the datapath itself could not use (not IPv6/UDP, bad checksum, for another
    /// host, too large...).
    pub bad_frames: AtomicU64,
    /// The same frames by [`FrameError`] (index [`FrameError::index`]).
    pub frame_errors: [AtomicU64; FrameError::NAMES.len()],
    /// Frames accepted with a checksum left to offload (CHECKSUM_PARTIAL, veth peers).
    pub partial_checksums: AtomicU64,
    /// Replies larger than the interface MTU sent through the kernel socket (fragmented)
    /// rather than the AF_XDP ring.
    pub replies_through_kernel: AtomicU64,
    /// The AF_XDP socket's own kernel counters (`XDP_STATISTICS`), as last read; names in
    /// [`XSK_COUNTER_NAMES`].
    pub xsk: [AtomicU64; XSK_COUNTER_NAMES.len()],
    /// Replies that could not be sent (socket or ring full).
    pub send_failures: AtomicU64,
    /// Advertise messages held for `advertise-delay-ms` before they were sent.
    pub advertise_delayed: AtomicU64,
    /// Advertise messages to be held that did not fit the worker's delayed-reply queue, and
    /// were dropped.
    pub advertise_delay_overflow: AtomicU64,
    /// Requests this AF_XDP worker received and handed to the worker that owns their client
    /// ([`crate::handoff`]).
    pub handoff_out: AtomicU64,
    /// Requests another worker handed to this one, taken from its inbox and handled.
    pub handoff_in: AtomicU64,
    /// Requests to hand off that found the owner's inbox full, and were dropped.
    pub handoff_full: AtomicU64,
    /// Requests handed to a worker that stopped before taking them (left in its inbox, or
    /// handed after it stopped), dropped.
    pub handoff_stopped: AtomicU64,
    /// Turns of the worker's loop that found requests to handle (received, or handed over);
    /// `received` over this is the mean batch: near 1 the worker waits for work, near the
    /// batch size it is saturated.
    pub busy_turns: AtomicU64,
    /// Times the worker slept in `poll(2)` because a turn found nothing.
    pub sleeps: AtomicU64,
}

impl WorkerStats {
    /// Counts a received message of `msg_type`.
    #[inline]
    pub fn count_received(&self, msg_type: MessageType) {
        bump(&self.received[type_index(msg_type)]);
    }

    /// Counts a sent reply of `msg_type`.
    #[inline]
    pub fn count_sent(&self, msg_type: MessageType) {
        bump(&self.sent[type_index(msg_type)]);
    }

    /// Counts a dropped message.
    #[inline]
    pub fn count_drop(&self, reason: DropReason) {
        let index = DropReason::ALL
            .iter()
            .position(|known| *known == reason)
            .unwrap_or(0);
        bump(&self.dropped[index]);
    }

    /// Counts a client on an unknown link that was answered (see [`Outcome::Reply`]).
    ///
    /// [`Outcome::Reply`]: xdhcp6_engine::Outcome::Reply
    #[inline]
    pub fn count_unknown_link_answered(&self) {
        bump(&self.unknown_link_answered);
    }

    /// Counts a frame the datapath could not use.
    #[inline]
    pub fn count_bad_frame(&self) {
        bump(&self.bad_frames);
    }

    /// Counts a frame the datapath could not use, and why.
    #[inline]
    pub fn count_frame_error(&self, error: FrameError) {
        bump(&self.bad_frames);
        if let Some(counter) = self.frame_errors.get(error.index()) {
            bump(counter);
        }
    }

    /// Counts a frame accepted with its checksum left to offload.
    #[inline]
    pub fn count_partial_checksum(&self) {
        bump(&self.partial_checksums);
    }

    /// Counts a reply sent through the kernel socket because it exceeds the MTU.
    #[inline]
    pub fn count_reply_through_kernel(&self) {
        bump(&self.replies_through_kernel);
    }

    /// Stores the AF_XDP socket's kernel counters, in [`XSK_COUNTER_NAMES`] order.
    pub fn store_xsk(&self, values: [u64; XSK_COUNTER_NAMES.len()]) {
        for (counter, value) in self.xsk.iter().zip(values) {
            counter.store(value, Ordering::Relaxed);
        }
    }

    /// Counts a reply that could not be sent.
    #[inline]
    pub fn count_send_failure(&self) {
        bump(&self.send_failures);
    }

    /// Counts an Advertise held in the delayed-reply queue.
    #[inline]
    pub fn count_advertise_delayed(&self) {
        bump(&self.advertise_delayed);
    }

    /// Counts an Advertise dropped because the delayed-reply queue was full.
    #[inline]
    pub fn count_advertise_delay_overflow(&self) {
        bump(&self.advertise_delay_overflow);
    }
}

impl WorkerStats {
    /// Counts a request handed to the worker that owns it.
    #[inline]
    pub fn count_handoff_out(&self) {
        bump(&self.handoff_out);
    }

    /// Counts a request handed to this worker and taken from its inbox.
    #[inline]
    pub fn count_handoff_in(&self) {
        bump(&self.handoff_in);
    }

    /// Counts a request dropped because its owner's inbox was full.
    #[inline]
    pub fn count_handoff_full(&self) {
        bump(&self.handoff_full);
    }

    /// Counts a request dropped because its owner stopped before taking it.
    #[inline]
    pub fn count_handoff_stopped(&self) {
        bump(&self.handoff_stopped);
    }

    /// Counts a turn of the loop that found requests.
    #[inline]
    pub fn count_busy_turn(&self) {
        bump(&self.busy_turns);
    }

    /// Counts a sleep of the worker in `poll(2)`.
    #[inline]
    pub fn count_sleep(&self) {
        bump(&self.sleeps);
    }
}

/// One counter summed over the workers in `stats` (wrapping, as counters do).
pub fn total(
    stats: &[impl Deref<Target = WorkerStats>],
    counter: impl Fn(&WorkerStats) -> &AtomicU64,
) -> u64 {
    stats
        .iter()
        .map(|stats| counter(stats).load(Ordering::Relaxed))
        .fold(0, u64::wrapping_add)
}

/// Every message and frame the workers in `stats` lost, by cause, with its count: the drop
/// reasons, unusable frames, failed sends, full hand-off inboxes and delayed-reply queues,
/// and the AF_XDP sockets' own drops (the kernel's counters, as last read), comma-separated
/// (`rate_limited 3, xsk rx_ring_full 1200`); `none` when nothing was lost. Drops the
/// server chose by policy (`rate_limited`, `wrong_server_id`...) are listed too: this is the
/// accounting of every request that got no answer.
pub fn losses(stats: &[impl Deref<Target = WorkerStats>]) -> String {
    let sum = |counter: &dyn Fn(&WorkerStats) -> &AtomicU64| total(stats, counter);
    let mut found: Vec<(String, u64)> = Vec::new();
    for (index, reason) in DropReason::ALL.iter().enumerate() {
        found.push((
            reason.as_str().to_owned(),
            sum(&|stats| &stats.dropped[index]),
        ));
    }
    for (index, name) in FrameError::NAMES.iter().enumerate() {
        found.push((
            format!("frame {name}"),
            sum(&|stats| &stats.frame_errors[index]),
        ));
    }
    found.push((
        "send_failures".to_owned(),
        sum(&|stats| &stats.send_failures),
    ));
    found.push(("handoff_full".to_owned(), sum(&|stats| &stats.handoff_full)));
    found.push((
        "handoff_stopped".to_owned(),
        sum(&|stats| &stats.handoff_stopped),
    ));
    found.push((
        "advertise_delay_overflow".to_owned(),
        sum(&|stats| &stats.advertise_delay_overflow),
    ));
    // The socket's counters of what it did not take; tx_ring_empty_descs counts the
    // kernel finding nothing to send, not a loss.
    for (index, name) in XSK_COUNTER_NAMES.iter().enumerate() {
        if *name != "tx_ring_empty_descs" {
            found.push((format!("xsk {name}"), sum(&|stats| &stats.xsk[index])));
        }
    }
    let listed: Vec<String> = found
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(name, count)| format!("{name} {count}"))
        .collect();
    if listed.is_empty() {
        "none".to_owned()
    } else {
        listed.join(", ")
    }
}

/// The index of a message type in the per-type arrays (0 for unknown types).
pub fn type_index(msg_type: MessageType) -> usize {
    let code = usize::from(u8::from(msg_type));
    if code < MESSAGE_TYPES { code } else { 0 }
}

#[inline]
fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_type_and_reason() {
        let stats = WorkerStats::default();
        stats.count_received(MessageType::Solicit);
        stats.count_received(MessageType::Solicit);
        stats.count_sent(MessageType::Advertise);
        stats.count_received(MessageType::Unknown(200));
        stats.count_drop(DropReason::WrongServerId);
        assert_eq!(stats.received[1].load(Ordering::Relaxed), 2);
        assert_eq!(stats.sent[2].load(Ordering::Relaxed), 1);
        assert_eq!(stats.received[0].load(Ordering::Relaxed), 1);
        let index = DropReason::ALL
            .iter()
            .position(|reason| *reason == DropReason::WrongServerId)
            .unwrap();
        assert_eq!(stats.dropped[index].load(Ordering::Relaxed), 1);
    }

    #[test]
    fn losses_name_every_cause_with_its_count_over_all_workers() {
        let workers = [WorkerStats::default(), WorkerStats::default()];
        assert_eq!(losses(&workers.iter().collect::<Vec<_>>()), "none");
        workers[0].count_drop(DropReason::RateLimited);
        workers[1].count_drop(DropReason::RateLimited);
        workers[1].count_frame_error(FrameError::BadChecksum);
        workers[0].count_send_failure();
        workers[0].store_xsk([0, 0, 0, 1200, 7, 99]);
        workers[1].store_xsk([5, 0, 0, 0, 0, 99]);
        assert_eq!(
            losses(&workers.iter().collect::<Vec<_>>()),
            "rate_limited 2, frame bad_checksum 1, send_failures 1, xsk rx_dropped 5, \
             xsk rx_ring_full 1200, xsk rx_fill_ring_empty_descs 7"
        );
    }
}
