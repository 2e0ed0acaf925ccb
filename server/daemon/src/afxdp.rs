//! The AF_XDP datapath: one socket, UMEM and pinned worker thread per receive queue.
//!
//! # Entry points
//!
//! - [`spawn_workers`]: everything for one interface. Finds its queues
//!   ([`rx_queue_count`]), binds an [`XskSocket`] per queue, puts each into the XDP program's
//!   XskMap ([`register`]) and starts one thread per queue running [`serve_queue`], pinned to the
//!   next core of the list. The program must already be attached ([`Steering::attach`]).
//! - [`serve_queue`]: one queue's loop with the engine: each request goes through
//!   [`Engine::handle`] with the link of the receiving interface and VLAN, and each
//!   [`Outcome::Reply`] is framed ([`crate::frame`]) and sent. Returns when `stop` is set.
//! - [`run_queue`]: the same loop with any handler
//!   (`FnMut(request payload, &FrameMeta, reply payload buffer) -> Option<ReplyPlan>`), for
//!   tests and other servers.
//!
//! # The loop
//!
//! Every UMEM frame is in exactly one place: our free list, the fill ring (or the kernel, on its
//! way to the RX ring), the RX ring, the TX ring (or the kernel, on its way to the completion
//! ring), or the completion ring. Each turn of [`XskWorker::poll`] moves completed transmit
//! frames back to the free list, tops the fill ring up from it (keeping one batch free for
//! replies), then takes up to one batch from the RX ring. A request's frame goes back to the free
//! list as soon as it is handled; its reply is written by the engine straight into another free
//! frame, at the same header offset, so nothing is copied. Transmit descriptors of a batch are
//! published together and the kernel is woken with one `sendto` only when the TX ring asks
//! (`XDP_USE_NEED_WAKEUP`); an idle worker sleeps in `poll(2)`, which is also the fill ring's
//! wakeup. [`XskWorker::audit`] checks the frame accounting.
//!
//! The socket, its rings and the frame accounting are `xdhcp6_common::xsk` ([`XskQueue`]),
//! shared with the load generator and re-exported here; this module is the server's loop.
//!
//! Copy mode (`XDP_COPY`) works on every driver, veth included; [`BindMode::Auto`] tries
//! zero-copy first.
use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
};

use tracing::{debug, warn};
pub use xdhcp6_common::xsk::{
    BindMode, FrameAudit, InterfaceInfo, XskConfig, XskError, XskQueue, XskSocket, pin_to_core,
    register, rx_queue_count,
};
use xdhcp6_engine::{Context, Destination, Engine, Outcome, config::LinkId};

use crate::{
    events::Events,
    frame::{self, FrameMeta, ReplySource},
    stats::{WorkerStats, innermost_type},
    xdp::Steering,
};

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

/// What the handler wants sent: `len` bytes of the reply buffer, to `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyPlan {
    /// Bytes of the reply payload written to the buffer.
    pub len: usize,
    /// Where it goes, relative to the request.
    pub to: Destination,
}

/// What a worker does with each request, and the barrier before a batch of replies leaves.
///
/// Any `FnMut(request payload, &FrameMeta, reply payload buffer) -> Option<ReplyPlan>` is a
/// handler whose replies may always leave.
pub trait Handler {
    /// Answers one request into `reply`; `None` sends nothing.
    fn handle(&mut self, request: &[u8], meta: &FrameMeta, reply: &mut [u8]) -> Option<ReplyPlan>;

    /// Called once per batch before its replies are sent; false holds them all back (they are
    /// dropped and counted as send failures).
    fn settle(&mut self) -> bool {
        true
    }
}

impl<F> Handler for F
where
    F: FnMut(&[u8], &FrameMeta, &mut [u8]) -> Option<ReplyPlan>,
{
    fn handle(&mut self, request: &[u8], meta: &FrameMeta, reply: &mut [u8]) -> Option<ReplyPlan> {
        self(request, meta, reply)
    }
}

/// One queue's datapath: the socket with its frame accounting, and the reply source.
pub struct XskWorker {
    queue: XskQueue,
    source: ReplySource,
    /// The transmit frames of the batch being built, until they are submitted.
    batch_tx: Vec<u64>,
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
        XskWorker {
            queue,
            source: reply_source(interface),
            batch_tx: Vec::with_capacity(batch),
        }
    }

    /// The socket.
    pub fn socket(&self) -> &XskSocket {
        self.queue.socket()
    }

    /// Runs the loop until `stop` is set.
    pub fn run<H: Handler>(&mut self, mut handler: H, stop: &AtomicBool, stats: &WorkerStats) {
        let idle_timeout = i32::from(self.queue.config().idle_timeout_ms);
        while !stop.load(Ordering::Relaxed) {
            if self.poll(&mut handler, stats) == 0 {
                // Transmit completions are reclaimed on the next turn; do not sleep long
                // while some are outstanding.
                let timeout = if self.queue.in_tx() > 0 {
                    1
                } else {
                    idle_timeout
                };
                self.queue.wait(timeout);
            }
        }
    }

    /// One turn: reclaims completions, refills (keeping one batch free for replies), handles up
    /// to one batch. Returns the number of frames received.
    pub fn poll<H: Handler>(&mut self, handler: &mut H, stats: &WorkerStats) -> usize {
        let batch = self.queue.config().batch;
        self.queue.reclaim();
        self.queue.refill(batch as usize);
        // A wakeup that found the kernel busy (EAGAIN) left descriptors on the TX ring: kick
        // again rather than wait for the next reply to do it.
        self.queue.kick_tx();

        let (rx_first, received) = self.queue.rx_peek(batch);
        if received == 0 {
            self.queue.kick_rx();
            return 0;
        }
        let (tx_first, tx_space) = self.queue.tx_space();
        let mut queued = 0;
        for i in 0..received {
            let desc = self.queue.rx_desc(rx_first.wrapping_add(i));
            if queued < tx_space
                && let Some((addr, len)) = self.handle(desc, &mut *handler, stats)
            {
                self.queue
                    .tx_write(tx_first.wrapping_add(queued), addr, len);
                self.batch_tx.push(addr);
                queued += 1;
            } else if queued >= tx_space {
                stats.count_send_failure();
            }
            self.queue.recycle(desc.addr);
        }
        self.queue.rx_release(rx_first, received);

        // With `--durability always` the leases these replies announce must be on disk first;
        // if they cannot be, the replies are not sent (the descriptors written above are never
        // published) and their frames are ours again.
        if queued > 0 && !handler.settle() {
            for _ in 0..queued {
                stats.count_send_failure();
            }
            for addr in self.batch_tx.drain(..) {
                self.queue.recycle(addr);
            }
            queued = 0;
        }
        self.batch_tx.clear();
        self.queue.tx_submit(tx_first, queued);
        self.queue.kick_rx();
        received as usize
    }

    /// Handles one received frame; returns the transmit frame (address, length) of its reply.
    fn handle<H: Handler>(
        &mut self,
        desc: libc::xdp_desc,
        handler: &mut H,
        stats: &WorkerStats,
    ) -> Option<(u64, u32)> {
        // The reply's frame is taken first (and given back when unused): the request is read
        // in place while it is written.
        let tx_addr = self.queue.alloc();
        let request = self.queue.frame(desc.addr, desc.len as usize);
        let verify = self.queue.config().verify_checksum;
        let meta = match frame::parse(request, verify) {
            Ok(meta) => meta,
            Err(_) => {
                stats.count_bad_frame();
                if let Some(tx_addr) = tx_addr {
                    self.queue.recycle(tx_addr);
                }
                return None;
            }
        };
        let payload = &request[meta.payload()];
        stats.count_received(innermost_type(payload));
        let Some(tx_addr) = tx_addr else {
            // Every free frame is out: drop the request before the engine sees it, so that
            // it has no effect; the client retransmits.
            stats.count_send_failure();
            return None;
        };
        // Safety: `tx_addr` came from the free list just now, so the frame is ours and not the
        // request's; nothing else refers to it until its descriptor is written.
        let reply = unsafe { self.queue.frame_mut(tx_addr) };
        let Some(plan) = reply
            .get_mut(meta.header_len..)
            .and_then(|buf| handler.handle(payload, &meta, buf))
        else {
            self.queue.recycle(tx_addr);
            return None;
        };
        let reply_type = reply
            .get(meta.header_len..meta.header_len + plan.len)
            .map(innermost_type);
        match frame::write_headers(reply, &meta, &self.source, plan.to, plan.len) {
            Ok(len) => {
                if let Some(reply_type) = reply_type {
                    stats.count_sent(reply_type);
                }
                Some((tx_addr, len as u32))
            }
            Err(_) => {
                stats.count_send_failure();
                self.queue.recycle(tx_addr);
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

/// Runs one queue's loop with `handler` until `stop` is set, on this thread (pinned to `core`
/// when given); returns the worker, for its [`XskWorker::audit`].
///
/// `handler(request, meta, reply)` gets the DHCPv6 message, the request's framing and the
/// buffer where the reply payload goes; it returns what to send, or `None` to send nothing.
pub fn run_queue<H>(
    socket: XskSocket,
    interface: &InterfaceInfo,
    core: Option<usize>,
    handler: H,
    stop: &AtomicBool,
    stats: &WorkerStats,
) -> Result<XskWorker, XskError>
where
    H: Handler,
{
    if let Some(core) = core {
        pin_to_core(core).map_err(|source| XskError::Pin {
            queue: socket.queue(),
            core,
            source,
        })?;
    }
    let mut worker = XskWorker::new(socket, interface);
    debug!(
        interface = interface.name,
        queue = worker.socket().queue(),
        core,
        "AF_XDP worker running"
    );
    worker.run(handler, stop, stats);
    Ok(worker)
}

/// Runs one queue's loop with the engine until `stop` is set: [`run_queue`] with a handler that
/// calls [`Engine::handle`] and counts drops.
///
/// The link is the one configured for `interface` and the innermost VLAN of each request
/// ([`Engine::link_for_interface`]); `now` is the engine clock (Unix seconds).
#[allow(clippy::too_many_arguments)]
pub fn serve_queue(
    socket: XskSocket,
    interface: &InterfaceInfo,
    core: Option<usize>,
    engine: &Engine,
    now: impl Fn() -> u32,
    events: &mut impl Events,
    stop: &AtomicBool,
    stats: &WorkerStats,
) -> Result<XskWorker, XskError> {
    let handler = EngineHandler {
        engine,
        interface,
        now,
        events,
        stats,
        links: LinkCache::default(),
    };
    run_queue(socket, interface, core, handler, stop, stats)
}

/// [`serve_queue`]'s handler: the engine, with the worker's journal as the barrier.
struct EngineHandler<'a, N, E> {
    engine: &'a Engine,
    interface: &'a InterfaceInfo,
    now: N,
    events: &'a mut E,
    stats: &'a WorkerStats,
    links: LinkCache,
}

impl<N: Fn() -> u32, E: Events> Handler for EngineHandler<'_, N, E> {
    fn handle(&mut self, request: &[u8], meta: &FrameMeta, reply: &mut [u8]) -> Option<ReplyPlan> {
        let link = self
            .links
            .lookup(self.engine, &self.interface.name, meta.vlan());
        let cx = Context {
            link,
            now: (self.now)(),
        };
        match self.engine.handle(request, &cx, reply, self.events) {
            Outcome::Reply { len, to } => Some(ReplyPlan { len, to }),
            Outcome::Drop(reason) => {
                self.stats.count_drop(reason);
                None
            }
        }
    }

    fn settle(&mut self) -> bool {
        self.events.settle()
    }
}

/// Remembers `Engine::link_for_interface` per VLAN: a handful of VLANs per interface at most
/// are seen on a queue, and the lookup hashes the interface name.
#[derive(Default)]
struct LinkCache {
    entries: Vec<(Option<u16>, Option<LinkId>)>,
}

impl LinkCache {
    const MAX: usize = 64;

    fn lookup(&mut self, engine: &Engine, interface: &str, vlan: Option<u16>) -> Option<LinkId> {
        if let Some((_, link)) = self.entries.iter().find(|(own, _)| *own == vlan) {
            return *link;
        }
        let link = engine.link_for_interface(interface, vlan);
        if self.entries.len() < Self::MAX {
            self.entries.push((vlan, link));
        }
        link
    }
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
/// XskMap here. `events(queue)` makes each worker's event sink.
#[allow(clippy::too_many_arguments)]
pub fn spawn_workers<S>(
    steering: &mut Steering,
    interface: &InterfaceInfo,
    config: &XskConfig,
    cores: &[usize],
    engine: Arc<Engine>,
    now: fn() -> u32,
    mut events: impl FnMut(u32) -> S,
    stop: Arc<AtomicBool>,
) -> Result<Workers, XskError>
where
    S: Events,
{
    let queues = rx_queue_count(&interface.name);
    let mut sockets = Vec::new();
    for queue in 0..queues {
        let socket = XskSocket::bind(interface, queue, config)?;
        register(steering, &socket)?;
        sockets.push(socket);
    }
    let mut workers = Workers {
        threads: Vec::new(),
        stats: Vec::new(),
    };
    for (i, socket) in sockets.into_iter().enumerate() {
        let queue = socket.queue();
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
                    socket,
                    &interface,
                    core,
                    &engine,
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

    use super::*;

    #[test]
    fn replies_come_from_the_interface_addresses() {
        let global: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let interface = InterfaceInfo {
            name: "eth0".into(),
            index: 2,
            mac: [2, 0, 0, 0, 0, 1],
            link_local: "fe80::1".parse().unwrap(),
            global: Some(global),
        };
        let source = reply_source(&interface);
        assert_eq!(source.mac, interface.mac);
        assert_eq!(source.link_local, interface.link_local);
        assert_eq!(source.global, Some(global));
    }
}
