//! The AF_XDP datapath: one socket, UMEM and pinned worker thread per receive queue.
//!
//! # Entry points
//!
//! - [`spawn_workers`]: everything for one interface. Finds its queues
//!   ([`rx_queue_count`]), binds an [`XskSocket`] per queue, puts each into the XDP program's
//!   XskMap ([`register`]) and starts one thread per queue running [`serve_queue`], pinned to the
//!   next core of the list. The program must already be attached ([`Steering::attach`]).
//! - [`serve_queue`]: one queue's loop with the engine: each group of up to [`GROUP`]
//!   requests goes through [`Engine::handle_batch`] with the link of the receiving interface
//!   and VLAN, and each [`Outcome::Reply`] is framed ([`crate::frame`]) and sent. Returns
//!   when `stop` is set.
//! - [`run_queue`]: the same loop with any responder
//!   ([`Respond`]: a group at a time, or any `FnMut(request payload, &FrameMeta, reply
//!   payload buffer, &mut events) -> Option<ReplyPlan>` one request at a time) and any
//!   [`Events`] sink, for tests and other servers.
//!
//! # The loop
//!
//! Every UMEM frame is in exactly one place: our free list, the fill ring (or the kernel, on its
//! way to the RX ring), the RX ring, the TX ring (or the kernel, on its way to the completion
//! ring), or the completion ring. Each turn of [`XskWorker::poll`] moves completed transmit
//! frames back to the free list, tops the fill ring up from it (keeping one batch free for
//! replies), then takes up to one batch from the RX ring. Each received frame is checked (framing,
//! checksum, addressed to us, journal writable), gets a free frame for its reply, and joins a
//! group; each group of [`GROUP`] is answered at once, the engine reading each request once
//! and fetching the memory of the whole group together ([`Engine::handle_batch`]). The
//! replies are written by the engine straight into their frames, at the request's header
//! offset, so nothing is copied; the requests' frames go back to the free list once their
//! group is answered. Transmit descriptors of a batch are
//! published together and the kernel is woken with one `sendto` only when the TX ring asks
//! (`XDP_USE_NEED_WAKEUP`); an idle worker sleeps in `poll(2)`, which is also the fill ring's
//! wakeup. Received frames are prefetched a few ahead of the one being checked.
//! [`XskWorker::audit`] checks the frame accounting.
//!
//! With `--durability always` a reply must not leave before the lease it announces is synced.
//! The worker does not wait for each batch: it takes the journal's mark after handling a batch,
//! holds the batch's reply frames, and goes on with the next batch; each turn sends the held
//! replies whose mark is durable ([`Events::barrier`]). One sync then covers every batch that
//! arrived while the previous one ran. With nothing received it sleeps in `poll(2)` on its
//! socket and the journal's wakeup ([`Events::sleep_until`]), so that requests arriving during
//! a sync are handled while it runs and the held replies leave as soon as it ends. The worker
//! blocks on the journal only when the replies held use every frame the fill ring does not
//! need ([`held_limit`]; with the server's UMEM, [`SERVER_FRAMES`] and [`SERVER_RING`], that
//! is a sync of about 80 ms at 120,000 replies/s). The marks come from the same sink the
//! engine emits the lease events into (the journal's [`crate::journal::JournalSink`]): the
//! event path is engine → journal, with no handler in between.
//!
//! With [`Spread::Auto`] and several queues, the workers of an interface spread requests by
//! client ([`crate::handoff`]): a received frame another worker owns is copied into that
//! worker's inbox instead of being handled, and each turn a worker handles up to a batch from
//! its own inbox, copied into a free frame, exactly as if its RX ring had brought it.
//!
//! The socket, its rings and the frame accounting are `xdhcp6_datapath` ([`XskQueue`]),
//! shared with the load generator and re-exported here; this module is the server's loop.
//!
//! Copy mode (`XDP_COPY`) works on every driver, veth included; [`BindMode::Auto`] tries
//! zero-copy first.
use std::{
    cell::Cell,
    collections::VecDeque,
    fmt,
    net::SocketAddrV6,
    os::fd::AsFd,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use tracing::{debug, warn};
use xdhcp6_datapath::mmsg::{MmsgBatch, PacketInfo};
pub use xdhcp6_datapath::os::pin_to_core;
use xdhcp6_datapath::queue::TX_CHUNK;
use xdhcp6_datapath::udp::ServerSocket;
pub use xdhcp6_datapath::{
    BindMode, FrameAudit, InterfaceInfo, XskConfig, XskError, XskQueue, XskSocket, register,
    rx_queue_count,
};
use xdhcp6_engine::{
    Arrival, Context, Destination, DropReason, Engine, Outcome, Peer, config::LinkId,
    engine::BatchItem,
};

use crate::{
    delay::{self, DelayQueue},
    events::{Barrier, Events, refused_by_journal},
    frame::{self, FrameMeta, Local, ReplySource},
    handoff::{self, Handoff, Spread},
    reload::EngineSource,
    stats::WorkerStats,
    xdp::Steering,
};

/// The MTU assumed when the interface's cannot be read.
const DEFAULT_MTU: u32 = 1500;
/// Ethernet header without tags.
const ETHERNET_HEADER_LEN: usize = 14;
/// One 802.1Q or 802.1ad tag.
const VLAN_TAG_LEN: usize = 4;
/// Largest reply sent through the kernel socket: a UMEM frame's worth.
const KERNEL_REPLY_SIZE: usize = 4096;
/// How many received frames ahead of the one being read a worker prefetches.
const PREFETCH_AHEAD: u32 = 4;
/// How often a worker copies its socket's kernel counters into its stats.
const STATISTICS_INTERVAL: Duration = Duration::from_secs(1);

/// The addresses replies from `interface` are sent from.
pub fn reply_source(interface: &InterfaceInfo) -> ReplySource {
    ReplySource {
        mac: interface.mac,
        link_local: interface.link_local,
        global: interface.global,
    }
}

// ---------------------------------------------------------------------------------------------
// The worker loop.

/// What a responder wants sent: `len` bytes of the reply buffer, to `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyPlan {
    /// Bytes of the reply payload written to the buffer.
    pub len: usize,
    /// Where it goes, relative to the request.
    pub to: Destination,
    /// Milliseconds to hold it before it leaves (0: at once): an Advertise of a standby link
    /// ([`crate::delay`]).
    pub delay_ms: u16,
}

/// One received request of a group, as a responder sees it.
#[derive(Debug)]
pub struct Request<'a> {
    /// The DHCPv6 message.
    pub payload: &'a [u8],
    /// Its framing.
    pub meta: FrameMeta,
    /// Where the reply payload goes.
    pub reply: &'a mut [u8],
    /// What to send, set by the responder: `None` sends nothing.
    pub plan: Option<ReplyPlan>,
}

/// What answers a worker's requests: any `FnMut(request, meta, reply, events) ->
/// Option<ReplyPlan>` closure (one request at a time), or a responder that answers a group
/// at once ([`serve_queue`]'s, through [`Engine::handle_batch`]).
pub trait Respond<E> {
    /// Answers each request of `group` (at most [`GROUP`], in the order received) into its
    /// reply buffer and sets its plan, as answering them one after the other would.
    fn respond(&mut self, group: &mut [Request<'_>], events: &mut E);
}

impl<E, F> Respond<E> for F
where
    F: FnMut(&[u8], &FrameMeta, &mut [u8], &mut E) -> Option<ReplyPlan>,
{
    fn respond(&mut self, group: &mut [Request<'_>], events: &mut E) {
        for request in group {
            request.plan = self(request.payload, &request.meta, request.reply, events);
        }
    }
}

/// Requests a worker hands its responder at once: the engine's group, whose memory is
/// fetched together ([`Engine::handle_batch`]).
pub const GROUP: usize = xdhcp6_engine::engine::LOOKAHEAD;

/// One queue's datapath: the socket with its frame accounting, and the reply source.
pub struct XskWorker {
    queue: XskQueue,
    source: ReplySource,
    /// What a request must be addressed to.
    local: Local,
    /// The interface's index, for replies sent through the kernel socket.
    interface_index: u32,
    /// The largest reply frame the interface sends: its MTU plus the Ethernet header (the
    /// request's VLAN tags come on top).
    max_frame: usize,
    /// Replies built and waiting for their batch's events to become durable, oldest first.
    held: VecDeque<Held>,
    /// At most this many replies are held; past it the worker waits for the journal before
    /// it takes more requests, so that held frames never starve the fill ring.
    held_max: usize,
    /// The kernel socket that sends replies larger than the MTU (it fragments them); without
    /// it they are dropped and counted.
    kernel: Option<KernelSend>,
    /// Reply frames held for `advertise-delay-ms` ([`crate::delay`]), with the mark of their
    /// batch: they leave when due and durable.
    delayed: DelayQueue<Held>,
    /// The delayed reply frames of the batch being handled, queued once its mark is known.
    staged: Vec<(Instant, Held)>,
    /// The interface's other workers, when requests are spread over them ([`crate::handoff`]).
    handoff: Option<Handoff>,
    /// The requests admitted and waiting to be answered together, at most [`GROUP`].
    group: Vec<Admitted>,
}

/// A request admitted to a group: its frame, the frame its reply is written into, and its
/// framing.
#[derive(Clone, Copy)]
struct Admitted {
    desc: libc::xdp_desc,
    tx_addr: u64,
    meta: FrameMeta,
}

/// Replies sent through the kernel socket: the socket, a one-datagram batch, and the replies
/// waiting for their barrier, oldest first.
struct KernelSend {
    socket: Arc<ServerSocket>,
    batch: MmsgBatch,
    held: VecDeque<HeldDatagram>,
}

/// A reply too large for the link, waiting for the durability barrier of its batch.
struct HeldDatagram {
    payload: Vec<u8>,
    to: SocketAddrV6,
    from: PacketInfo,
    mark: u64,
}

/// A reply frame waiting for the durability barrier of its batch.
#[derive(Clone, Copy, Debug)]
struct Held {
    addr: u64,
    len: u32,
    mark: u64,
}

impl fmt::Debug for XskWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XskWorker")
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

impl XskWorker {
    /// A worker for `socket`, replying from `interface`'s addresses; every frame starts free.
    pub fn new(socket: XskSocket, interface: &InterfaceInfo) -> Self {
        let mut queue = XskQueue::new(socket);
        let batch = queue.config().batch as usize;
        queue.refill(batch);
        let queue_frames = queue.config().frames as usize;
        let delayed_max = (queue_frames / 8).min(delay::MAX_DELAYED);
        let held_max = held_limit(queue.config(), delayed_max);
        let mut addresses = interface.addresses.clone();
        addresses.extend(interface.global);
        let mtu = interface.mtu.unwrap_or(DEFAULT_MTU) as usize;
        XskWorker {
            queue,
            source: reply_source(interface),
            local: Local {
                mac: interface.mac,
                addresses,
            },
            interface_index: interface.index,
            max_frame: mtu + ETHERNET_HEADER_LEN,
            held: VecDeque::with_capacity(held_max),
            held_max,
            kernel: None,
            // Held frames are UMEM frames: at most an eighth of them, so that the fill ring
            // never starves.
            delayed: DelayQueue::new(delayed_max, delay::MAX_DELAYED_BYTES),
            staged: Vec::new(),
            handoff: None,
            group: Vec::with_capacity(GROUP),
        }
    }

    /// Spreads requests over the interface's workers: frames owned by another worker go to
    /// it, and what they hand to this one is answered here ([`crate::handoff`]).
    pub fn with_handoff(mut self, handoff: Handoff) -> Self {
        self.handoff = Some(handoff);
        self
    }

    /// Sends replies larger than the interface MTU through `socket` (the kernel's UDP socket
    /// on port 547, which fragments them) instead of dropping them.
    pub fn with_kernel_socket(mut self, socket: Arc<ServerSocket>) -> Self {
        self.kernel = Some(KernelSend {
            socket,
            batch: MmsgBatch::new(1, KERNEL_REPLY_SIZE),
            held: VecDeque::new(),
        });
        self
    }

    /// The socket.
    pub fn socket(&self) -> &XskSocket {
        self.queue.socket()
    }

    /// Runs the loop until `stop` is set; then sends (or, if the journal failed, drops) the
    /// replies still held.
    ///
    /// `respond(request, meta, reply, events)` answers one request into the reply payload
    /// buffer, handing the lease events it causes to `events`, and returns what to send
    /// (`None`: nothing); `events` is also the durability barrier the replies wait on.
    pub fn run<E, R>(&mut self, respond: R, events: &mut E, stop: &AtomicBool, stats: &WorkerStats)
    where
        E: Events,
        R: Respond<E>,
    {
        self.run_with(respond, &mut || {}, events, stop, stats);
    }

    /// [`Self::run`], calling `on_batch` before each batch is handled (where a reloadable
    /// responder takes the engine for the batch).
    pub fn run_with<E, R>(
        &mut self,
        mut respond: R,
        on_batch: &mut dyn FnMut(),
        events: &mut E,
        stop: &AtomicBool,
        stats: &WorkerStats,
    ) where
        E: Events,
        R: Respond<E>,
    {
        let idle_timeout = i32::from(self.queue.config().idle_timeout_ms);
        let busy_poll = Duration::from_micros(u64::from(self.queue.config().busy_poll_us));
        let mut next_statistics = Instant::now();
        let mut last_received = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= next_statistics {
                self.read_statistics(stats);
                next_statistics = now + STATISTICS_INTERVAL;
            }
            if self.poll_with(&mut respond, on_batch, events, stats) > 0 {
                last_received = now;
            } else if now.duration_since(last_received) < busy_poll {
                // Busy polling: look at the rings again rather than sleep, so that the next
                // request does not wait for this core to wake.
                std::hint::spin_loop();
            } else {
                // Transmit completions are reclaimed on the next turn; do not sleep long
                // while some are outstanding, nor past the next delayed reply.
                let timeout = if self.queue.in_tx() > 0 {
                    1
                } else {
                    idle_timeout
                };
                let timeout = self.delayed.timeout_ms(Instant::now(), timeout);
                if self.oldest_mark().is_some() {
                    // Nothing arrived: sleep until the journal syncs or a request comes.
                    stats.count_sleep();
                    self.sleep_for_journal(events, stats, timeout);
                } else if timeout > 0 {
                    stats.count_sleep();
                    match &self.handoff {
                        Some(handoff) => handoff.sleep(self.queue.socket().as_fd(), timeout),
                        None => self.queue.wait(timeout),
                    }
                }
            }
        }

        // The journal syncs what is queued when it closes, after the workers; give it a few
        // seconds, then drop what is still held rather than hang the shutdown.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while let Some(mark) = self.newest_mark() {
            let ok = events.wait(mark) && std::time::Instant::now() < deadline;
            self.release(events, stats, ok);
            self.queue.reclaim();
            self.queue.kick_tx();
        }
        // The delayed replies leave now rather than never (or are dropped with the rest).
        while let Some(mark) = self.delayed.peek().map(|held| held.mark) {
            let ok = events.wait(mark) && std::time::Instant::now() < deadline;
            self.release_delayed(events, stats, ok, true);
            self.queue.reclaim();
            self.queue.kick_tx();
        }
        // Requests other workers handed to this one and it did not take: dropped, counted.
        if let Some(handoff) = &self.handoff {
            let left = handoff.close(stats);
            if left > 0 {
                tracing::info!(
                    worker = handoff.me(),
                    left,
                    "handed-off requests left unanswered at stop"
                );
            }
        }
        // The socket's counters as they end, for the daemon's last line.
        self.read_statistics(stats);
    }

    /// One turn: reclaims completions, refills (keeping one batch free for replies), sends the
    /// held replies whose events are durable, handles up to one batch. Returns the number of
    /// frames received.
    ///
    /// A batch's replies are held until [`Events::barrier`] passes for the mark taken after
    /// the batch, while later batches are handled: with `--durability always` one journal sync
    /// then covers every batch that arrived during the previous one.
    pub fn poll<E, R>(&mut self, respond: &mut R, events: &mut E, stats: &WorkerStats) -> usize
    where
        E: Events,
        R: Respond<E>,
    {
        self.poll_with(respond, &mut || {}, events, stats)
    }

    /// [`Self::poll`], calling `on_batch` before a batch that arrived is handled.
    pub fn poll_with<E, R>(
        &mut self,
        respond: &mut R,
        on_batch: &mut dyn FnMut(),
        events: &mut E,
        stats: &WorkerStats,
    ) -> usize
    where
        E: Events,
        R: Respond<E>,
    {
        let batch = self.queue.config().batch;
        self.queue.reclaim();
        self.queue.refill(batch as usize);
        self.release(events, stats, true);
        // A wakeup that found the kernel busy (EAGAIN) left descriptors on the TX ring: kick
        // again rather than wait for the next reply to do it.
        self.queue.kick_tx();
        if self.held.len() >= self.held_max {
            self.wait_for_oldest(events, stats);
        }

        let (rx_first, received) = self.queue.rx_peek(batch);
        let inbound = self.handoff.as_ref().is_some_and(Handoff::has_inbound);
        if received == 0 && !inbound {
            self.queue.kick_rx();
            return 0;
        }
        stats.count_busy_turn();
        on_batch();
        let before = self.held.len();
        let kernel_before = self.kernel.as_ref().map_or(0, |kernel| kernel.held.len());
        // The kernel copied the frames in, often on another core: ask for each a few frames
        // ahead of reading it, so that the misses overlap.
        for i in 0..received.min(PREFETCH_AHEAD) {
            self.queue.prefetch_rx(rx_first.wrapping_add(i));
        }
        for i in 0..received {
            if i + PREFETCH_AHEAD < received {
                self.queue
                    .prefetch_rx(rx_first.wrapping_add(i + PREFETCH_AHEAD));
            }
            let Some(desc) = self.queue.rx_desc(rx_first.wrapping_add(i)) else {
                continue;
            };
            if let Some(handoff) = &mut self.handoff
                && handoff.hand_off(self.queue.frame(desc.addr, desc.len as usize), stats)
            {
                self.queue.recycle(desc.addr);
                continue;
            }
            self.admit(desc, events, stats);
            if self.group.len() == GROUP {
                self.answer_group(respond, events, stats);
            }
        }
        self.answer_group(respond, events, stats);
        self.queue.rx_release(rx_first, received);
        let handed = self.handle_handed(batch, respond, events, stats);
        let mark = events.mark();
        for held in self.held.range_mut(before..) {
            held.mark = mark;
        }
        if let Some(kernel) = &mut self.kernel {
            for held in kernel.held.range_mut(kernel_before..) {
                held.mark = mark;
            }
        }
        for (due, mut held) in self.staged.drain(..) {
            held.mark = mark;
            let bytes = held.len as usize;
            match self.delayed.push(due, bytes, held) {
                Ok(()) => stats.count_advertise_delayed(),
                Err(held) => {
                    stats.count_advertise_delay_overflow();
                    self.queue.recycle(held.addr);
                }
            }
        }
        self.release(events, stats, true);
        self.queue.kick_rx();
        received as usize + handed
    }

    /// Holds a reply from [`Self::finish`] until its batch's mark (and its delay) allow it.
    fn keep(&mut self, reply: Option<(u64, u32, u16)>) {
        if let Some((addr, len, delay_ms)) = reply {
            // The batch's mark is known once all of it is handled.
            let held = Held { addr, len, mark: 0 };
            if delay_ms > 0 {
                self.staged
                    .push((delay::due(Instant::now(), delay_ms), held));
            } else {
                self.held.push_back(held);
            }
        }
    }

    /// Wakes the workers this batch handed requests to, then handles up to `batch` requests
    /// handed to this one, each copied into a free frame and answered like a received one;
    /// returns how many.
    fn handle_handed<E: Events, R>(
        &mut self,
        batch: u32,
        respond: &mut R,
        events: &mut E,
        stats: &WorkerStats,
    ) -> usize
    where
        R: Respond<E>,
    {
        let Some(handoff) = &mut self.handoff else {
            return 0;
        };
        handoff.notify();
        let mut handled = 0;
        // Each takes a frame for the request and one for its reply (taken when it is
        // admitted): what finds no free frames now waits in the inbox.
        while handled < batch as usize && self.queue.free_frames() >= 2 {
            let Some(addr) = self.queue.alloc() else {
                break;
            };
            let Some(handoff) = &self.handoff else { break };
            let Some(packet) = handoff.take() else {
                self.queue.recycle(addr);
                break;
            };
            let frame = packet.frame();
            let buffer = self.queue.frame_mut(addr);
            let len = frame.len().min(buffer.len());
            buffer[..len].copy_from_slice(&frame[..len]);
            handoff.recycle(packet);
            stats.count_handoff_in();
            let desc = libc::xdp_desc {
                addr,
                len: len as u32,
                options: 0,
            };
            self.admit(desc, events, stats);
            if self.group.len() == GROUP {
                self.answer_group(respond, events, stats);
            }
            handled += 1;
        }
        self.answer_group(respond, events, stats);
        handled
    }

    /// Copies the socket's kernel counters (`XDP_STATISTICS`) into `stats`.
    pub fn read_statistics(&self, stats: &WorkerStats) {
        if let Ok(xsk) = self.queue.socket().statistics() {
            stats.store_xsk([
                xsk.rx_dropped,
                xsk.rx_invalid_descs,
                xsk.tx_invalid_descs,
                xsk.rx_ring_full,
                xsk.rx_fill_ring_empty_descs,
                xsk.tx_ring_empty_descs,
            ]);
        }
    }

    /// With replies held and nothing received: sleeps until the oldest held reply's mark is
    /// durable, a request arrives (on the socket or handed over) or `timeout_ms` passes, so
    /// that requests arriving during a sync are handled while it runs and ride the next one
    /// ([`Events::sleep_until`]). Where the sink cannot sleep so, blocks on the journal.
    fn sleep_for_journal<E: Events>(
        &mut self,
        events: &mut E,
        stats: &WorkerStats,
        timeout_ms: i32,
    ) {
        let Some(mark) = self.oldest_mark() else {
            return;
        };
        let socket = self.queue.socket().as_fd();
        let slept = match &self.handoff {
            Some(handoff) => {
                let mut slept = true;
                handoff.sleep_beside(|inbox| {
                    slept = events.sleep_until(mark, &[socket, inbox], timeout_ms);
                });
                slept
            }
            None => events.sleep_until(mark, &[socket], timeout_ms),
        };
        if !slept {
            self.wait_for_oldest(events, stats);
        }
    }

    /// Waits until the oldest held reply may leave, then sends what may.
    fn wait_for_oldest<E: Events>(&mut self, events: &mut E, stats: &WorkerStats) {
        if let Some(mark) = self.oldest_mark() {
            let ok = events.wait(mark);
            self.release(events, stats, ok);
        }
    }

    /// The mark of the oldest held reply, frame or kernel datagram (marks only grow).
    fn oldest_mark(&self) -> Option<u64> {
        let frame = self.held.front().map(|held| held.mark);
        let kernel = self
            .kernel
            .as_ref()
            .and_then(|k| k.held.front())
            .map(|held| held.mark);
        frame.into_iter().chain(kernel).min()
    }

    /// The mark of the newest held reply, frame or kernel datagram.
    fn newest_mark(&self) -> Option<u64> {
        let frame = self.held.back().map(|held| held.mark);
        let kernel = self
            .kernel
            .as_ref()
            .and_then(|k| k.held.back())
            .map(|held| held.mark);
        frame.into_iter().chain(kernel).max()
    }

    /// Sends the held kernel datagrams whose marks pass the barrier; drops (and counts) every
    /// one when the journal failed.
    fn release_kernel<E: Events>(&mut self, events: &E, stats: &WorkerStats, ok: bool) {
        let Some(kernel) = &mut self.kernel else {
            return;
        };
        while let Some(held) = kernel.held.front() {
            let barrier = if ok {
                events.barrier(held.mark)
            } else {
                Barrier::Failed
            };
            match barrier {
                Barrier::Ready => {}
                Barrier::Failed => {
                    for _ in kernel.held.drain(..) {
                        stats.count_send_failure();
                    }
                    return;
                }
                _ => return,
            }
            let len = held.payload.len().min(KERNEL_REPLY_SIZE);
            if let Some(slot) = kernel.batch.slot_mut(0).get_mut(..len) {
                slot.copy_from_slice(&held.payload[..len]);
            }
            kernel.batch.prepare(0, len, held.to, Some(held.from));
            match kernel.batch.send(kernel.socket.as_fd(), 0..1) {
                Ok(1) => {
                    // Counted as sent when the engine answered; this says how it left.
                    stats.count_reply_through_kernel();
                }
                _ => stats.count_send_failure(),
            }
            kernel.held.pop_front();
        }
    }

    /// Sends the held replies whose marks pass the barrier, oldest first, as far as the TX ring
    /// has room. With `ok` false (a wait for the journal failed), or when the barrier says the
    /// journal failed, every held reply is dropped and counted as a send failure: it would
    /// announce a lease a restart could forget.
    fn release<E: Events>(&mut self, events: &E, stats: &WorkerStats, ok: bool) {
        self.release_kernel(events, stats, ok);
        self.release_held(events, stats, ok);
        self.release_delayed(events, stats, ok, false);
    }

    /// Sends the delayed reply frames that are due (with `all`, every one) and durable, as
    /// far as the TX ring has room; drops (and counts) every one when the journal failed.
    fn release_delayed<E: Events>(&mut self, events: &E, stats: &WorkerStats, ok: bool, all: bool) {
        if self.delayed.is_empty() {
            return;
        }
        let now = Instant::now();
        let (first, space) = self.queue.tx_space();
        let mut queued = 0;
        while queued < space {
            let next = if all {
                self.delayed.peek()
            } else {
                self.delayed.peek_due(now)
            };
            let Some(held) = next.copied() else { break };
            let barrier = if ok {
                events.barrier(held.mark)
            } else {
                Barrier::Failed
            };
            match barrier {
                Barrier::Ready => {}
                Barrier::Failed => {
                    while let Some(held) = self.delayed.pop() {
                        stats.count_send_failure();
                        self.queue.recycle(held.addr);
                    }
                    break;
                }
                _ => break,
            }
            self.delayed.pop();
            self.queue.prefetch_tx(held.addr, held.len);
            self.queue
                .tx_write(first.wrapping_add(queued), held.addr, held.len);
            queued += 1;
        }
        self.queue.tx_submit(first, queued);
    }

    /// Sends the held reply frames (see [`XskWorker::release`]).
    fn release_held<E: Events>(&mut self, events: &E, stats: &WorkerStats, ok: bool) {
        let Some(newest) = self.held.back() else {
            return;
        };
        let failed = !ok || events.barrier(newest.mark) == Barrier::Failed;
        if failed {
            for held in self.held.drain(..) {
                stats.count_send_failure();
                self.queue.recycle(held.addr);
            }
            return;
        }
        let (first, space) = self.queue.tx_space();
        let (mut queued, mut submitted) = (0, 0);
        let mut checked = None;
        while queued < space
            && let Some(held) = self.held.front().copied()
        {
            if checked != Some(held.mark) {
                if events.barrier(held.mark) != Barrier::Ready {
                    break;
                }
                checked = Some(held.mark);
            }
            // Held since its batch, a frame is cold: the kernel's copy would miss on it line
            // after line. The first chunk's frames are asked for once one of them may leave
            // (a turn whose oldest reply still waits asks for none), each later chunk's before
            // the kernel copies the chunk before it.
            if queued == 0 {
                self.prefetch_held();
            }
            self.queue
                .tx_write(first.wrapping_add(queued), held.addr, held.len);
            queued += 1;
            self.held.pop_front();
            if queued - submitted == TX_CHUNK {
                self.prefetch_held();
                self.queue
                    .tx_submit(first.wrapping_add(submitted), queued - submitted);
                submitted = queued;
            }
        }
        self.queue
            .tx_submit(first.wrapping_add(submitted), queued - submitted);
    }

    /// Asks for the frames of the next [`TX_CHUNK`] held replies (see [`Self::release_held`]).
    fn prefetch_held(&self) {
        for held in self.held.iter().take(TX_CHUNK as usize) {
            self.queue.prefetch_tx(held.addr, held.len);
        }
    }

    /// Admits one received frame (or one handed to this worker) to the group answered next,
    /// with a free frame taken for its reply; a frame that is not ours, cannot be read, or
    /// asks for a binding the journal cannot record goes back to the free list at once and is
    /// counted.
    fn admit<E: Events>(&mut self, desc: libc::xdp_desc, events: &E, stats: &WorkerStats) {
        // The reply's frame is taken first (and given back when unused): the request is read
        // in place while it is written.
        let tx_addr = self.queue.alloc();
        if let Some(addr) = tx_addr {
            // Written once the group is answered; fetched meanwhile.
            self.queue.prefetch_reply(addr);
        }
        let verify = self.queue.config().verify_checksum;
        let request = self.queue.frame(desc.addr, desc.len as usize);
        let meta = frame::parse(request, verify).and_then(|meta| {
            self.local.admits(&meta)?;
            Ok(meta)
        });
        let refused = match meta {
            Ok(meta) => {
                if meta.partial_checksum {
                    stats.count_partial_checksum();
                }
                let payload = request.get(meta.payload()).unwrap_or_default();
                if let Some(kind) = refused_by_journal(events, payload) {
                    // The journal cannot be written: make and extend no binding (see
                    // `events`).
                    stats.count_received(kind);
                    stats.count_drop(DropReason::JournalUnavailable);
                    true
                } else if tx_addr.is_none() {
                    // Every free frame is out: drop the request before the engine sees it, so
                    // that it has no effect; the client retransmits.
                    stats.count_received(xdhcp6_engine::received_type(payload));
                    stats.count_send_failure();
                    true
                } else {
                    false
                }
            }
            Err(error) => {
                stats.count_frame_error(error);
                true
            }
        };
        match (meta, tx_addr) {
            (Ok(meta), Some(tx_addr)) if !refused => {
                self.group.push(Admitted {
                    desc,
                    tx_addr,
                    meta,
                });
            }
            _ => {
                if let Some(tx_addr) = tx_addr {
                    self.queue.recycle(tx_addr);
                }
                self.queue.recycle(desc.addr);
            }
        }
    }

    /// Answers the admitted group at once (the responder writes each reply straight into its
    /// frame), then frames and holds each reply ([`Self::finish`]) and frees the requests'
    /// frames.
    fn answer_group<E, R: Respond<E>>(
        &mut self,
        respond: &mut R,
        events: &mut E,
        stats: &WorkerStats,
    ) {
        let Some(first) = self.group.first() else {
            return;
        };
        let placeholder = first.meta;
        let len = self.group.len().min(GROUP);
        let mut pairs = [(0, 0, 0); GROUP];
        for (pair, admitted) in pairs.iter_mut().zip(&self.group) {
            *pair = (
                admitted.desc.addr,
                admitted.desc.len as usize,
                admitted.tx_addr,
            );
        }
        let mut plans = [None; GROUP];
        // Without a kernel socket the engine writes no more than the link carries: a reply
        // past the MTU is dropped by the engine and counted (reply_too_large), never handed
        // to a TX ring that would drop it without a word. With one, the engine has the whole
        // frame and a reply past the MTU leaves through the kernel, which fragments it.
        let whole = self.kernel.is_some();
        let max_frame = self.max_frame;
        // The replies' frames came from the free list, so none is a request's frame.
        match self.queue.frame_pairs(&pairs[..len]) {
            Some(frames) => {
                let mut requests: [Request<'_>; GROUP] = std::array::from_fn(|_| Request {
                    payload: &[],
                    meta: placeholder,
                    reply: Default::default(),
                    plan: None,
                });
                for ((request, (read, write)), admitted) in
                    requests.iter_mut().zip(frames).zip(&self.group)
                {
                    let meta = admitted.meta;
                    let end = if whole {
                        write.len()
                    } else {
                        (max_frame + meta.vlan_tags() * VLAN_TAG_LEN).min(write.len())
                    };
                    request.payload = read.get(meta.payload()).unwrap_or_default();
                    request.meta = meta;
                    request.reply = write.get_mut(meta.header_len..end).unwrap_or_default();
                }
                respond.respond(&mut requests[..len], events);
                for (plan, request) in plans.iter_mut().zip(&requests[..len]) {
                    *plan = request.plan;
                }
            }
            None => {
                for _ in 0..len {
                    stats.count_send_failure();
                }
            }
        }
        for (i, plan) in plans.into_iter().enumerate().take(len) {
            let admitted = self.group[i];
            let reply = self.finish(&admitted, plan, stats);
            self.keep(reply);
            self.queue.recycle(admitted.desc.addr);
        }
        self.group.clear();
    }

    /// Frames the reply `plan` of an answered request in its frame; returns the transmit
    /// frame (address, length) and how long to hold it, or hands a reply past the MTU to the
    /// kernel socket.
    fn finish(
        &mut self,
        admitted: &Admitted,
        plan: Option<ReplyPlan>,
        stats: &WorkerStats,
    ) -> Option<(u64, u32, u16)> {
        let Some(plan) = plan else {
            self.queue.recycle(admitted.tx_addr);
            return None;
        };
        let meta = &admitted.meta;
        let max_frame = self.max_frame + meta.vlan_tags() * VLAN_TAG_LEN;
        let reply = self.queue.frame_mut(admitted.tx_addr);
        if meta.header_len + plan.len > max_frame {
            hold_for_kernel(
                &mut self.kernel,
                &self.source,
                self.interface_index,
                reply,
                meta,
                plan,
                stats,
            );
            self.queue.recycle(admitted.tx_addr);
            return None;
        }
        match frame::write_headers(reply, meta, &self.source, plan.to, plan.len) {
            Ok(len) => Some((admitted.tx_addr, len as u32, plan.delay_ms)),
            Err(_) => {
                stats.count_send_failure();
                self.queue.recycle(admitted.tx_addr);
                None
            }
        }
    }

    /// Where every frame is. Meaningful when no traffic is in flight: then a complete audit
    /// ([`FrameAudit::is_complete`]) proves that no frame has leaked or been doubled.
    pub fn audit(&self) -> FrameAudit {
        self.queue.audit()
    }
}

/// Holds a reply larger than the link's MTU for the kernel socket (mark set with its
/// batch's); counts it as a send failure when there is no kernel socket (the engine
/// already kept such replies within the MTU then) or no route.
fn hold_for_kernel(
    kernel: &mut Option<KernelSend>,
    source: &ReplySource,
    interface_index: u32,
    frame: &[u8],
    meta: &FrameMeta,
    plan: ReplyPlan,
    stats: &WorkerStats,
) {
    let route = frame::route(meta, source, plan.to);
    let (Some(kernel), Ok(route)) = (kernel, route) else {
        stats.count_send_failure();
        return;
    };
    let Some(payload) = frame.get(meta.header_len..meta.header_len + plan.len) else {
        stats.count_send_failure();
        return;
    };
    let scope = if route.destination.is_unicast_link_local() {
        interface_index
    } else {
        0
    };
    kernel.held.push_back(HeldDatagram {
        payload: payload.to_vec(),
        to: SocketAddrV6::new(route.destination, route.destination_port, 0, scope),
        from: PacketInfo {
            local: route.source,
            interface: interface_index,
        },
        mark: 0,
    });
}

/// Runs `worker`'s loop with `respond` until `stop` is set, on this thread (pinned to `core`
/// when given); returns the worker, for its [`XskWorker::audit`].
///
/// `worker` is built ([`XskWorker::new`] primes its fill ring) before its socket is
/// registered in the program's map ([`register`]): a frame steered to a socket with an empty
/// fill ring is dropped.
///
/// `respond(request, meta, reply, events)` gets the DHCPv6 message, the request's framing,
/// the buffer where the reply payload goes and the worker's event sink; it returns what to
/// send, or `None` to send nothing. Replies leave once `events` says what they announce is
/// durable ([`Events`]).
pub fn run_queue<E, R>(
    worker: XskWorker,
    interface: &InterfaceInfo,
    core: Option<usize>,
    respond: R,
    events: &mut E,
    stop: &AtomicBool,
    stats: &WorkerStats,
) -> Result<XskWorker, XskError>
where
    E: Events,
    R: Respond<E>,
{
    run_queue_with(
        worker,
        interface,
        core,
        respond,
        &mut || {},
        events,
        stop,
        stats,
    )
}

/// [`run_queue`], calling `on_batch` before each batch that arrived is handled.
#[allow(clippy::too_many_arguments)]
fn run_queue_with<E, R>(
    mut worker: XskWorker,
    interface: &InterfaceInfo,
    core: Option<usize>,
    respond: R,
    on_batch: &mut dyn FnMut(),
    events: &mut E,
    stop: &AtomicBool,
    stats: &WorkerStats,
) -> Result<XskWorker, XskError>
where
    E: Events,
    R: Respond<E>,
{
    if let Some(core) = core {
        pin_to_core(core).map_err(|source| XskError::Pin {
            queue: worker.socket().queue(),
            core,
            source,
        })?;
    }
    debug!(
        interface = interface.name,
        queue = worker.socket().queue(),
        core,
        "AF_XDP worker running"
    );
    worker.run_with(respond, on_batch, events, stop, stats);
    Ok(worker)
}

/// Runs one queue's loop with the engine until `stop` is set: [`run_queue`] answering with
/// [`Engine::handle_batch`] a group at a time, whose lease events go to `events` (the
/// journal), and counting drops.
///
/// The link is the one configured for `interface` and the VLAN stack of each request, outer
/// and inner tag ([`Engine::link_for_vlans`]); `now` is the engine clock (Unix seconds).
///
/// With a kernel socket ([`XskWorker::with_kernel_socket`], the server's UDP socket),
/// replies larger than the interface MTU leave through it, fragmented by the kernel; without
/// it they are dropped and counted (`reply_too_large`). `worker` is built before its socket
/// is registered, as for [`run_queue`].
#[allow(clippy::too_many_arguments)]
pub fn serve_queue<E: Events, S: EngineSource + ?Sized>(
    worker: XskWorker,
    interface: &InterfaceInfo,
    core: Option<usize>,
    source: &S,
    now: impl Fn() -> u32,
    events: &mut E,
    stop: &AtomicBool,
    stats: &WorkerStats,
) -> Result<XskWorker, XskError> {
    // Set before each batch: the batch's first group takes the engine that answers all of
    // it (a reload takes effect between batches).
    let batch_starts = Cell::new(false);
    let engine = source.current();
    let relays_here = engine.config().relays_on(&interface.name);
    let respond = EngineResponder {
        source,
        engine,
        interface: &interface.name,
        relays_here,
        links: LinkCache::default(),
        now,
        stats,
        batch_starts: &batch_starts,
    };
    run_queue_with(
        worker,
        interface,
        core,
        respond,
        &mut || batch_starts.set(true),
        events,
        stop,
        stats,
    )
}

/// Remembers `Engine::link_for_vlans` per VLAN stack: a handful of VLANs per interface at most
/// are seen on a queue, and the lookup hashes the interface name.
#[derive(Default)]
struct LinkCache {
    entries: Vec<(VlanStack, Option<LinkId>)>,
}

/// [`serve_queue`]'s responder: answers each group through [`Engine::handle_batch`], so
/// that the client index slots and lease records of its requests are fetched together and
/// each request is read once; refuses relayed messages the interface does not take, and
/// counts what the engine read, sent and dropped.
struct EngineResponder<'a, S: EngineSource + ?Sized + 'a, N> {
    source: &'a S,
    /// The engine of the current batch.
    engine: S::Current<'a>,
    interface: &'a str,
    /// Whether relayed messages are taken on this interface, for `engine`.
    relays_here: bool,
    /// Links per VLAN stack, for `engine`.
    links: LinkCache,
    /// The engine clock (Unix seconds).
    now: N,
    stats: &'a WorkerStats,
    /// Set by the worker before each batch.
    batch_starts: &'a Cell<bool>,
}

impl<'a, E, S, N> Respond<E> for EngineResponder<'a, S, N>
where
    E: Events,
    S: EngineSource + ?Sized + 'a,
    N: Fn() -> u32,
{
    fn respond(&mut self, group: &mut [Request<'_>], events: &mut E) {
        if self.batch_starts.replace(false) {
            let next = self.source.current();
            if !std::ptr::eq::<Engine>(&*next, &*self.engine) {
                self.links.entries.clear();
                self.relays_here = next.config().relays_on(self.interface);
            }
            self.engine = next;
        }
        let Some(first) = group.first() else {
            return;
        };
        let engine = &*self.engine;
        let now = (self.now)();
        let unused = Context {
            link: None,
            arrival: Arrival::of(first.meta.destination),
            now,
        };
        for chunk in group.chunks_mut(GROUP) {
            let mut items: [BatchItem<'_>; GROUP] = std::array::from_fn(|_| {
                BatchItem::new(&[], unused, Peer::default(), Default::default())
            });
            // Which request of the chunk each item is.
            let mut of = [0; GROUP];
            let mut len = 0;
            for (i, request) in chunk.iter_mut().enumerate() {
                request.plan = None;
                let meta = &request.meta;
                if !engine.admits_relay(self.relays_here, request.payload, meta.source) {
                    self.stats
                        .count_received(xdhcp6_engine::received_type(request.payload));
                    self.stats.count_drop(DropReason::RelayNotAllowed);
                    continue;
                }
                let link = self
                    .links
                    .lookup(engine, self.interface, VlanStack::of(meta));
                // RFC 9915 §14, in substance: DHCP servers SHOULD NOT check to see whether
                // the Layer 2 address used was multicast or not, as long as the Layer 3
                // address was correct.
                let cx = Context {
                    link,
                    arrival: Arrival::of(meta.destination),
                    now,
                };
                // The sender, for the per-relay and per-client limits.
                let peer = Peer {
                    address: Some(meta.source),
                    mac: Some(meta.source_mac),
                };
                let reply = std::mem::take(&mut request.reply);
                items[len] = BatchItem::new(request.payload, cx, peer, reply);
                of[len] = i;
                len += 1;
            }
            engine.handle_batch(&mut items[..len], events);
            // The responder counts what the engine read and wrote; the worker parses no
            // DHCPv6.
            for (item, &i) in items[..len].iter_mut().zip(&of) {
                chunk[i].reply = std::mem::take(&mut item.reply);
                chunk[i].plan = plan(item.outcome, self.stats);
            }
        }
    }
}

/// What to send for the engine's `outcome`, counted.
fn plan(outcome: Outcome, stats: &WorkerStats) -> Option<ReplyPlan> {
    stats.count_received(outcome.received());
    match outcome {
        Outcome::Reply {
            len,
            to,
            sent,
            unknown_link,
            delay_ms,
            ..
        } => {
            stats.count_sent(sent);
            if unknown_link {
                stats.count_unknown_link_answered();
            }
            Some(ReplyPlan { len, to, delay_ms })
        }
        Outcome::Drop { reason, .. } => {
            stats.count_drop(reason);
            None
        }
    }
}

/// A frame's VLAN ids, outermost first: `ids[..len]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct VlanStack {
    ids: [u16; 2],
    len: usize,
}

impl VlanStack {
    fn of(meta: &FrameMeta) -> Self {
        let mut stack = VlanStack {
            ids: [0; 2],
            len: 0,
        };
        for (slot, id) in stack.ids.iter_mut().zip(meta.vlan_ids()) {
            *slot = id;
            stack.len += 1;
        }
        stack
    }

    fn as_slice(&self) -> &[u16] {
        &self.ids[..self.len]
    }
}

impl LinkCache {
    const MAX: usize = 64;

    fn lookup(&mut self, engine: &Engine, interface: &str, vlans: VlanStack) -> Option<LinkId> {
        if let Some((_, link)) = self.entries.iter().find(|(own, _)| *own == vlans) {
            return *link;
        }
        let link = engine.link_for_vlans(interface, vlans.as_slice());
        if self.entries.len() < Self::MAX {
            self.entries.push((vlans, link));
        }
        link
    }
}

/// UMEM frames of a server queue: 32 MiB of 2 KiB frames, so that the replies held for the
/// journal ([`held_limit`]) cover a sync of about 80 ms at 120,000 replies/s.
pub const SERVER_FRAMES: u32 = 16_384;

/// Entries of each ring of a server queue (fill, completion, receive, transmit): a receive
/// ring of 4,096 requests rides out a stall of the worker of about 20 ms at 200,000 requests
/// a second (a long sync with `--durability always`, a slow wakeup, a preempted virtual CPU)
/// where 2,048 overflowed. A request that waits 20 ms costs its client nothing; one dropped
/// costs it a retransmission a second later.
pub const SERVER_RING: u32 = 4096;

/// The most reply frames a worker holds for the journal before it waits for a sync instead
/// of receiving: every frame the fill ring, the delayed replies (`delayed_max`) and two
/// batches (the next batch's requests and its replies) cannot need. Past it, receiving more
/// would take the frames the kernel needs for the fill ring.
pub fn held_limit(config: &XskConfig, delayed_max: usize) -> usize {
    let batch = config.batch as usize;
    (config.frames as usize)
        .saturating_sub(config.ring_size as usize + delayed_max + 2 * batch)
        .max(batch)
}

/// The worker threads of one interface, from [`spawn_workers`].
#[derive(Debug)]
pub struct Workers {
    /// One per receive queue, in queue order; each returns its worker when stopped.
    pub threads: Vec<thread::JoinHandle<Result<XskWorker, XskError>>>,
    /// One per receive queue, in queue order.
    pub stats: Vec<Arc<WorkerStats>>,
}

/// Starts one AF_XDP worker per receive queue of `interface`, each pinned to the next core of
/// `cores` (round robin; unpinned when empty), all serving `engine` until `stop` is set.
///
/// The XDP program must be attached to the interface; the sockets are registered in its
/// XskMap here. `events(queue)` makes each worker's event sink. Requests are spread over the
/// workers ([`Spread::Auto`]).
#[allow(clippy::too_many_arguments)]
pub fn spawn_workers<S, G>(
    steering: &mut Steering,
    interface: &InterfaceInfo,
    config: &XskConfig,
    cores: &[usize],
    engine: Arc<G>,
    now: fn() -> u32,
    events: impl FnMut(u32) -> S,
    kernel: Option<Arc<ServerSocket>>,
    stop: Arc<AtomicBool>,
) -> Result<Workers, XskError>
where
    S: Events,
    G: EngineSource + 'static,
{
    spawn_workers_with(
        steering,
        interface,
        config,
        cores,
        engine,
        now,
        events,
        kernel,
        Spread::Auto,
        stop,
    )
}

/// [`spawn_workers`], spreading requests over the workers as `spread` says
/// ([`crate::handoff`]: with more than one queue and [`Spread::Auto`], each request is
/// answered by the worker its client hashes to, whichever queue it arrived on).
#[allow(clippy::too_many_arguments)]
pub fn spawn_workers_with<S, G>(
    steering: &mut Steering,
    interface: &InterfaceInfo,
    config: &XskConfig,
    cores: &[usize],
    engine: Arc<G>,
    now: fn() -> u32,
    mut events: impl FnMut(u32) -> S,
    kernel: Option<Arc<ServerSocket>>,
    spread: Spread,
    stop: Arc<AtomicBool>,
) -> Result<Workers, XskError>
where
    S: Events,
    G: EngineSource + 'static,
{
    let queues = rx_queue_count(&interface.name);
    let group = if spread.applies(queues) {
        let group =
            handoff::Group::new(queues as usize, handoff::INBOX_SLOTS).map_err(|source| {
                XskError::Os {
                    what: "making the hand-off wakeups",
                    interface: interface.name.clone(),
                    queue: 0,
                    source,
                }
            })?;
        Some(group)
    } else {
        None
    };
    // Each worker is built, its fill ring primed, before its socket enters the program's map:
    // a request steered to a socket with an empty fill ring is dropped, and the daemon says
    // it serves as soon as this returns.
    let mut built = Vec::new();
    for queue in 0..queues {
        let socket = XskSocket::bind(interface, queue, config)?;
        let mut worker = XskWorker::new(socket, interface);
        if let Some(kernel) = &kernel {
            worker = worker.with_kernel_socket(Arc::clone(kernel));
        }
        if let Some(group) = &group {
            worker = worker.with_handoff(group.member(queue as usize));
        }
        register(steering, worker.socket())?;
        built.push(worker);
    }
    let mut workers = Workers {
        threads: Vec::new(),
        stats: Vec::new(),
    };
    for (i, worker) in built.into_iter().enumerate() {
        let queue = worker.socket().queue();
        let core = (!cores.is_empty()).then(|| cores[i % cores.len()]);
        let stats = Arc::new(WorkerStats::default());
        let mut sink = events(queue);
        let name = interface.name.clone();
        let interface = interface.clone();
        let engine = Arc::clone(&engine);
        let stop = Arc::clone(&stop);
        let thread_stats = Arc::clone(&stats);
        let thread = thread::Builder::new()
            .name(format!("xsk-{name}-{queue}"))
            .spawn(move || {
                serve_queue(
                    worker,
                    &interface,
                    core,
                    &*engine,
                    now,
                    &mut sink,
                    &stop,
                    &thread_stats,
                )
            })
            .map_err(|source| XskError::Os {
                what: "spawning a worker thread",
                interface: name,
                queue,
                source,
            })?;
        workers.threads.push(thread);
        workers.stats.push(stats);
    }
    if queues > 1 && cores.len() < queues as usize && !cores.is_empty() {
        warn!(
            interface = interface.name,
            queues,
            cores = cores.len(),
            "fewer cores than queues: some workers share a core"
        );
    }
    Ok(workers)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use xdhcp6_common::{IPPROTO_UDP, frames::FrameBuilder};
    use xdhcp6_engine::{table::LeaseEvent, testing};

    use super::*;

    #[test]
    fn held_replies_use_what_the_fill_ring_cannot() {
        let server = XskConfig {
            frames: SERVER_FRAMES,
            ring_size: SERVER_RING,
            ..XskConfig::default()
        };
        // 16384 frames: 4096 for the fill ring, 2048 delayed, two batches of 64.
        assert_eq!(held_limit(&server, 2048), 10_112);
        // The default 4096: more than the quarter it used to be.
        assert_eq!(held_limit(&XskConfig::default(), 512), 1408);
        // Never less than a batch, even when the rings want every frame.
        let small = XskConfig {
            frames: 128,
            ring_size: 128,
            ..XskConfig::default()
        };
        assert_eq!(held_limit(&small, 16), 64);
    }

    /// Clients that compete for a small range and repeat within a group; relayed messages
    /// through a relay prefix.
    const GROUP_CONFIG: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:01"
salt = "group"
expected-leases = 256
RELAYS

[[link]]
name = "access-1"
interfaces = ["eth0"]
relay-prefixes = ["2001:db8:ffff:1::/64"]

[[link.pool]]
prefix = "2001:db8:1::/64"
range = "2001:db8:1::/124"

[[link.pd-pool]]
prefix = "2001:db8:100::/48"
range = "2001:db8:100::/60"
delegated-length = 64
"#;

    /// A script of messages from few clients (so that they repeat within a group), of every
    /// kind that looks up leases, some relayed.
    fn group_script(server: &[u8]) -> Vec<Vec<u8>> {
        use xdhcp6_engine::testing::{Client, Relay, ip};
        let mut state = 0x2545_f491_u64;
        (0..72)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                let pick = state >> 33;
                let mut client = Client::new(pick % 6);
                let relayed = (pick >> 3).is_multiple_of(3);
                if relayed {
                    client = client.via(Relay::new(ip("2001:db8:ffff:1::1")));
                }
                let msg = match (pick >> 5) % 7 {
                    0 | 1 => client.solicit(),
                    2 => client.request(server),
                    3 => client.renew(server),
                    4 => client.rebind(),
                    5 => client.release(server),
                    _ => client.confirm(),
                };
                let msg = msg.ia_na(1 + ((pick >> 8) % 2) as u32, &[]);
                if !relayed && (pick >> 9).is_multiple_of(2) {
                    msg.ia_pd(1, &[]).encode()
                } else {
                    msg.encode()
                }
            })
            .collect()
    }

    /// What a responder gave: each plan and reply, the lease events, the worker's counters,
    /// and how many relayed messages it refused.
    #[derive(Debug, PartialEq)]
    struct Answered {
        answers: Vec<(Option<ReplyPlan>, Vec<u8>)>,
        events: Vec<LeaseEvent>,
        counters: String,
        relay_refused: u64,
    }

    /// What a fresh engine's responder gave for `script` handed to it `group` requests at a
    /// time: each plan and reply, the lease events, and the worker's counters.
    fn answer_in_groups(relays: &str, group: usize) -> Answered {
        let server = testing::Server::new(&GROUP_CONFIG.replace("RELAYS", relays));
        let engine: &Engine = &server.engine;
        let script = group_script(&server.duid());
        let frames: Vec<_> = script
            .iter()
            .map(|payload| {
                FrameBuilder::with_tags(&[])
                    .ipv6(IPPROTO_UDP)
                    .udp(546, 547, payload)
            })
            .collect();
        let metas: Vec<FrameMeta> = frames
            .iter()
            .map(|frame| frame::parse(frame.bytes(), true).expect("a test frame parses"))
            .collect();
        let stats = WorkerStats::default();
        let starts = Cell::new(true);
        let mut responder = EngineResponder {
            source: engine,
            engine: engine.current(),
            interface: "eth0",
            relays_here: engine.config().relays_on("eth0"),
            links: LinkCache::default(),
            now: || testing::T0,
            stats: &stats,
            batch_starts: &starts,
        };
        let mut events = Vec::new();
        let mut replies = vec![vec![0; 1500]; frames.len()];
        let mut plans = Vec::new();
        for ((frames, metas), replies) in frames
            .chunks(group)
            .zip(metas.chunks(group))
            .zip(replies.chunks_mut(group))
        {
            let mut requests: Vec<Request<'_>> = frames
                .iter()
                .zip(metas)
                .zip(replies.iter_mut())
                .map(|((frame, meta), reply)| Request {
                    payload: &frame.bytes()[meta.payload()],
                    meta: *meta,
                    reply,
                    plan: None,
                })
                .collect();
            starts.set(true);
            responder.respond(&mut requests, &mut events);
            plans.extend(requests.iter().map(|request| request.plan));
        }
        let answers = plans
            .into_iter()
            .zip(replies)
            .map(|(plan, reply)| (plan, reply[..plan.map_or(0, |plan| plan.len)].to_vec()))
            .collect();
        let relay_refused = DropReason::ALL
            .iter()
            .position(|&reason| reason == DropReason::RelayNotAllowed)
            .map_or(0, |i| stats.dropped[i].load(Ordering::Relaxed));
        Answered {
            answers,
            events,
            counters: format!("{stats:?}"),
            relay_refused,
        }
    }

    #[test]
    fn a_group_is_answered_as_its_requests_one_at_a_time() {
        // Relayed messages taken, then refused on this interface (so that the engine's
        // batch skips some requests of a group).
        for relays in ["", r#"relay-interfaces = ["eth9"]"#] {
            let single = answer_in_groups(relays, 1);
            let sent = single
                .answers
                .iter()
                .filter(|(plan, _)| plan.is_some())
                .count();
            assert!(
                sent > 20,
                "{relays:?}: only {sent} replies: the script tests too little"
            );
            assert!(!single.events.is_empty(), "{relays:?}: no lease events");
            assert_eq!(
                single.relay_refused > 0,
                !relays.is_empty(),
                "{relays:?}: {} relayed messages refused",
                single.relay_refused
            );
            for group in [2, 3, GROUP] {
                let grouped = answer_in_groups(relays, group);
                assert!(
                    grouped.answers == single.answers,
                    "{relays:?}: groups of {group} answer differently"
                );
                assert_eq!(grouped, single, "{relays:?}: groups of {group}");
            }
        }
    }

    #[test]
    fn replies_come_from_the_interface_addresses() {
        let global: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let interface = InterfaceInfo {
            name: "eth0".into(),
            index: 2,
            mac: [2, 0, 0, 0, 0, 1],
            link_local: "fe80::1".parse().unwrap(),
            global: Some(global),
            addresses: vec!["fe80::1".parse().unwrap(), global],
            mtu: Some(1500),
        };
        let source = reply_source(&interface);
        assert_eq!(source.mac, interface.mac);
        assert_eq!(source.link_local, interface.link_local);
        assert_eq!(source.global, Some(global));
    }
}
