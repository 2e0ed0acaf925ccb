//! The AF_XDP transport: the generator's datagrams framed by hand and sent on one queue of an
//! interface, the replies received through the client-side XDP program.
//!
//! [`AfXdpTransport::open`] loads `xdhcp6_client_xdp` from the eBPF object, attaches it,
//! binds one AF_XDP socket ([`xdhcp6_datapath::socket`], copy or zero-copy) to `--queue` and puts it
//! into the program's XskMap. Every emulated client sends from its own MAC and link-local
//! address (from its index, see [`Population::mac`]) on port 546 to ff02::1:2
//! (33:33:00:01:00:02) or to `--server`/`--server-mac`; emulated relays send from their
//! link-address and their own MAC on port 547. Headers come from a precomputed
//! [`HeaderTemplate`] and the UDP checksum is computed in software; frames go out in batches of
//! 64, and the kernel is woken (when it asks: `need_wakeup`) once per turn of the loop, at the
//! start of [`Transport::receive`], for everything queued since. Replies are checked
//! (lengths, UDP checksum) and their DHCPv6 payload handed to the generator; the rest is counted
//! as bad frames.
//!
//! The UMEM has four rings' worth of frames, so that the fill, RX, TX and completion rings can
//! all be full at once; one ring's worth is always kept back for transmitting, and the fill ring
//! is topped up before every receive batch. A fill ring that runs dry makes the kernel drop
//! replies (`fill ring empty` in the socket's statistics): that is what limits a generator with
//! fewer frames.

use std::io;
use std::net::Ipv6Addr;
use std::time::Duration;

use xdhcp6_datapath::os::error_chain;
use xdhcp6_datapath::steer::{AttachMode, EbpfObject, Steering};
use xdhcp6_datapath::{
    BindMode, FrameAudit, InterfaceInfo, XskConfig, XskQueue, XskSocket, register,
};
use xdhcp6_proto::{CLIENT_PORT, SERVER_PORT};

use crate::frame::{self, HeaderTemplate, Mac, Side};
use crate::multiqueue::Fanout;
use crate::population::Population;
use crate::scenario::Outbox;
use crate::transport::{ALL_DHCP_RELAY_AGENTS_AND_SERVERS, Transport};

/// Frames sent or received per ring operation.
pub const BATCH: u32 = 64;

/// The eBPF object embedded at build time, if `XDHCP6_EBPF_OBJECT` was set for the build.
pub fn embedded_object() -> Option<EbpfObject> {
    #[cfg(xdhcp6_embedded_ebpf)]
    {
        /// ELF64 headers and eBPF instructions want 8-byte alignment.
        #[repr(C, align(8))]
        struct Aligned<T: ?Sized>(T);
        const ALIGNED: &Aligned<[u8]> =
            &Aligned(*include_bytes!(env!("XDHCP6_EMBEDDED_EBPF_OBJECT")));
        Some(EbpfObject::embedded(&ALIGNED.0))
    }
    #[cfg(not(xdhcp6_embedded_ebpf))]
    None
}

/// Finds the eBPF object: `explicit`, else `XDHCP6_EBPF_OBJECT` now, else the embedded copy.
pub fn locate_object(explicit: Option<&std::path::Path>) -> io::Result<EbpfObject> {
    EbpfObject::locate(explicit, embedded_object())
        .map_err(|error| io::Error::other(error_chain(&error)))
}

/// The socket sizes the generator and the reflector use.
pub fn socket_config() -> XskConfig {
    XskConfig {
        frames: 16384,
        frame_size: 2048,
        ring_size: 4096,
        batch: BATCH,
        mode: BindMode::Auto,
        need_wakeup: true,
        verify_checksum: true,
        idle_timeout_ms: 100,
        busy_poll_us: 0,
    }
}

/// Loads `program` from `object`, attaches it to `interface` in `mode`, binds a socket to
/// `queue` and registers it: everything a one-queue AF_XDP user needs.
pub fn bind_queue(
    object: &EbpfObject,
    program: &'static str,
    interface: &InterfaceInfo,
    queue: u32,
    mode: AttachMode,
) -> io::Result<(Steering, XskQueue, AttachMode)> {
    let wrap = |what: &str, error: &dyn std::error::Error| {
        io::Error::other(format!("{what}: {}", error_chain(error)))
    };
    let mut steering = Steering::load_program(object, program)
        .map_err(|error| wrap("loading the XDP program (root?)", &error))?;
    let used = steering
        .attach(&interface.name, mode)
        .map_err(|error| wrap("attaching the XDP program", &error))?;
    let socket = XskSocket::bind(interface, queue, &socket_config())
        .map_err(|error| wrap("binding the AF_XDP socket", &error))?;
    // The fill ring primed before the program may redirect to the socket: a frame steered to
    // an empty fill ring is dropped.
    let mut queue = XskQueue::new(socket);
    queue.refill(tx_reserve(&queue));
    register(&mut steering, queue.socket())
        .map_err(|error| wrap("registering the socket", &error))?;
    Ok((steering, queue, used))
}

/// [`bind_queue`] for `count` queues from `first` on: the program loaded and attached once,
/// a socket with its own UMEM bound to each queue and registered, in queue order.
pub fn bind_queues(
    object: &EbpfObject,
    program: &'static str,
    interface: &InterfaceInfo,
    first: u32,
    count: u32,
    mode: AttachMode,
) -> io::Result<(Steering, Vec<XskQueue>, AttachMode)> {
    let (mut steering, queue, used) = bind_queue(object, program, interface, first, mode)?;
    let mut queues = vec![queue];
    for id in first + 1..first.saturating_add(count) {
        let socket = XskSocket::bind(interface, id, &socket_config()).map_err(|error| {
            io::Error::other(format!(
                "binding the AF_XDP socket to queue {id}: {}",
                error_chain(&error)
            ))
        })?;
        let mut bound = XskQueue::new(socket);
        bound.refill(tx_reserve(&bound));
        register(&mut steering, bound.socket()).map_err(|error| {
            io::Error::other(format!(
                "registering the socket of queue {id}: {}",
                error_chain(&error)
            ))
        })?;
        queues.push(bound);
    }
    Ok((steering, queues, used))
}

/// Free frames held back from the fill ring for transmitting: one TX ring's worth.
fn tx_reserve(queue: &XskQueue) -> usize {
    queue.config().ring_size as usize
}

/// Where the generator's frames go.
#[derive(Clone, Debug)]
pub struct AfXdpOptions {
    /// The interface to send and receive on.
    pub interface: String,
    /// Its receive queue to bind (and to steer replies to).
    pub queue: u32,
    /// How to attach the client program.
    pub mode: AttachMode,
    /// Unicast server address (default: ff02::1:2).
    pub server: Option<Ipv6Addr>,
    /// The server's MAC (needed for a unicast `server`).
    pub server_mac: Option<Mac>,
    /// Whether the population sends through relays (port 547) or directly (546).
    pub relayed: bool,
    /// The source address of every emulated relay, sent from the interface's own MAC, like
    /// the upstream interface of a relay agent: the kernel then answers neighbour discovery
    /// for it, so servers that reply through the kernel (a UDP socket) reach the relays.
    /// `None`: each relay sends from its link-address and its own MAC.
    pub relay_source: Option<Ipv6Addr>,
}

/// The AF_XDP transport (see the module documentation).
pub struct AfXdpTransport {
    // Field order is drop order: the socket is closed before the program is detached.
    queue: XskQueue,
    /// The program, held by the first queue's transport of a multi-queue set.
    steering: Option<Steering>,
    population: Population,
    template: HeaderTemplate,
    destination: Ipv6Addr,
    mode: AttachMode,
    /// Relays' MAC and source address, when they share the interface's (see
    /// [`AfXdpOptions::relay_source`]).
    relay_source: Option<(Mac, Ipv6Addr)>,
    send_drops: u64,
    bad_frames: u64,
    /// With several queues: where replies to another queue's clients go.
    fanout: Option<Fanout>,
}

impl AfXdpTransport {
    /// Attaches the client program to `options.interface` and binds the socket.
    pub fn open(
        object: &EbpfObject,
        options: &AfXdpOptions,
        population: Population,
    ) -> io::Result<Self> {
        let mut all = Self::open_queues(object, options, population, 1)?;
        Ok(all.remove(0))
    }

    /// Attaches the client program to `options.interface` once and binds `queues` sockets,
    /// each with its own UMEM, to the queues from `options.queue` on: one transport per queue,
    /// for one thread each. With more than one, each transport hands the replies that arrive
    /// for another queue's clients to that queue's transport (see [`crate::multiqueue`]).
    pub fn open_queues(
        object: &EbpfObject,
        options: &AfXdpOptions,
        population: Population,
        queues: u32,
    ) -> io::Result<Vec<Self>> {
        let interface = InterfaceInfo::query(&options.interface, None)
            .map_err(|error| io::Error::other(error_chain(&error)))?;
        let destination = options.server.unwrap_or(ALL_DHCP_RELAY_AGENTS_AND_SERVERS);
        let mac = match (options.server_mac, destination.is_multicast()) {
            (Some(mac), _) => mac,
            (None, true) => frame::multicast_mac(destination),
            (None, false) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "--transport afxdp with a unicast --server needs --server-mac",
                ));
            }
        };
        let source_port = if options.relayed {
            SERVER_PORT
        } else {
            CLIENT_PORT
        };
        let template = HeaderTemplate::new(mac, destination, source_port, SERVER_PORT);
        let (steering, sockets, mode) = bind_queues(
            object,
            xdhcp6_common::CLIENT_PROGRAM,
            &interface,
            options.queue,
            queues.max(1),
            options.mode,
        )?;
        let mut steering = Some(steering);
        let mut fanouts = if queues > 1 {
            Fanout::connected(queues).into_iter().map(Some).collect()
        } else {
            vec![None]
        };
        Ok(sockets
            .into_iter()
            .zip(fanouts.drain(..))
            .map(|(queue, fanout)| AfXdpTransport {
                queue,
                steering: steering.take(),
                population: population.clone(),
                template: template.clone(),
                destination,
                mode,
                relay_source: options.relay_source.map(|address| (interface.mac, address)),
                send_drops: 0,
                bad_frames: 0,
                fanout,
            })
            .collect())
    }

    /// The queue the socket is bound to.
    pub fn queue_id(&self) -> u32 {
        self.queue.socket().queue()
    }

    /// Replies handed to another queue's transport, and taken from others.
    pub fn handed_over(&self) -> (u64, u64) {
        self.fanout
            .as_ref()
            .map_or((0, 0), |f| (f.handed_over, f.taken_over))
    }

    /// Where requests go.
    pub fn destination(&self) -> Ipv6Addr {
        self.destination
    }

    /// The mode the program was attached in and the socket bound in.
    pub fn modes(&self) -> (AttachMode, BindMode) {
        (self.mode, self.queue.socket().mode())
    }

    /// The client program's counters.
    pub fn program_counters(&self) -> io::Result<xdhcp6_common::Counters> {
        self.steering
            .as_ref()
            .ok_or_else(|| io::Error::other("the program is held by the first queue's transport"))?
            .counters()
            .map_err(|error| io::Error::other(error_chain(&error)))
    }

    /// The kernel's counters for the socket.
    pub fn socket_statistics(&self) -> io::Result<libc::xdp_statistics> {
        self.queue.socket().statistics()
    }

    /// Where every frame is (complete only when nothing is in flight).
    pub fn audit(&mut self) -> FrameAudit {
        self.queue.reclaim();
        self.queue.audit()
    }

    /// Waits up to `wait` for every transmitted frame to come back from the kernel.
    pub fn drain(&mut self, wait: Duration) {
        let deadline = std::time::Instant::now() + wait;
        while self.queue.in_tx() > 0 && std::time::Instant::now() < deadline {
            self.queue.kick_tx();
            self.queue.reclaim();
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

impl Transport for AfXdpTransport {
    fn send(&mut self, out: &Outbox) -> io::Result<usize> {
        self.queue.reclaim();
        let population = &self.population;
        let (mut first, mut space) = self.queue.tx_space();
        let mut queued = 0;
        let mut sent = 0;
        for (sender, payload) in out.iter_with_senders() {
            if queued == space.min(BATCH) {
                self.queue.tx_publish(first, queued);
                self.queue.kick_tx();
                sent += queued as usize;
                self.queue.reclaim();
                (first, space) = self.queue.tx_space();
                queued = 0;
                if space == 0 {
                    // The kernel has not sent the last batches yet: kick it once more.
                    self.queue.kick_tx();
                    self.queue.reclaim();
                    (first, space) = self.queue.tx_space();
                }
            }
            let Some(addr) = (queued < space).then(|| self.queue.alloc()).flatten() else {
                // Open loop: a full ring or UMEM is part of the load offered.
                self.send_drops += 1;
                continue;
            };
            let (mac, source) = match (sender.relay, self.relay_source) {
                (Some(_), Some(shared)) => shared,
                (Some(relay), None) => (
                    population.relay_mac(relay),
                    population
                        .relay_of(sender.client)
                        .map_or(Ipv6Addr::UNSPECIFIED, |r| r.link_address),
                ),
                (None, _) => (
                    population.mac(sender.client),
                    population.link_local(sender.client),
                ),
            };
            // `addr` was just taken from the free list: the frame is ours until its descriptor
            // is submitted.
            let buf = self.queue.frame_mut(addr);
            match self.template.write(buf, &mac, &source, payload) {
                Some(len) => {
                    self.queue
                        .tx_write(first.wrapping_add(queued), addr, len as u32);
                    queued += 1;
                }
                None => {
                    self.queue.recycle(addr);
                    self.send_drops += 1;
                }
            }
        }
        // The last batch leaves with the next kick: at the start of `receive`, which the loop
        // calls right after sending, before it waits. The follow-ups that `receive` produces
        // and the next flows then share one system call.
        self.queue.tx_publish(first, queued);
        sent += queued as usize;
        Ok(sent)
    }

    fn receive(&mut self, wait: Duration, sink: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        self.queue.kick_tx();
        let keep = tx_reserve(&self.queue);
        let mut received = 0;
        if let Some(fanout) = self.fanout.as_mut() {
            received += fanout.take(sink);
        }
        let mut waited = false;
        // A bounded number of batches keeps the sender on schedule under a flood of replies.
        while received < 16 * BATCH as usize {
            self.queue.reclaim();
            self.queue.refill(keep);
            let (first, count) = self.queue.rx_peek(BATCH);
            if count == 0 {
                self.queue.kick_rx();
                if received > 0 || waited || wait.is_zero() {
                    break;
                }
                waited = true;
                if !self.queue.wait_for(wait) {
                    break;
                }
                continue;
            }
            for i in 0..count {
                let Some(desc) = self.queue.rx_desc(first.wrapping_add(i)) else {
                    continue;
                };
                let bytes = self.queue.frame(desc.addr, desc.len as usize);
                match frame::parse(bytes, Side::Client) {
                    Ok(parsed) => match self.fanout.as_mut() {
                        Some(fanout) => {
                            let (address, port) = reply_destination(bytes, &parsed);
                            if fanout.owns(address, port) {
                                sink(parsed.payload(bytes));
                            } else {
                                fanout.hand_over(address, port, parsed.payload(bytes));
                            }
                        }
                        None => sink(parsed.payload(bytes)),
                    },
                    Err(_) => self.bad_frames += 1,
                }
                self.queue.recycle(desc.addr);
            }
            self.queue.rx_release(first, count);
            received += count as usize;
        }
        self.queue.kick_rx();
        Ok(received)
    }

    fn send_drops(&self) -> u64 {
        self.send_drops
    }

    fn bad_frames(&self) -> u64 {
        self.bad_frames
    }

    fn receive_drops(&self) -> u64 {
        self.socket_statistics().map_or(0, |s| {
            s.rx_dropped + s.rx_ring_full + s.rx_fill_ring_empty_descs
        })
    }

    fn diagnostics(&self) -> Option<String> {
        let mut line = format!("afxdp queue {}:", self.queue_id());
        if let Ok(s) = self.socket_statistics() {
            line += &format!(
                " socket rx dropped {} rx ring full {} fill ring empty {} tx invalid {}",
                s.rx_dropped, s.rx_ring_full, s.rx_fill_ring_empty_descs, s.tx_invalid_descs
            );
        }
        if let Ok(c) = self.program_counters() {
            line += &format!(
                "; xdp steered {} no socket {} passed {}",
                c.steered, c.no_socket, c.passed
            );
        }
        if let Some(f) = &self.fanout {
            line += &format!(
                "; replies handed to other queues {} taken from them {}",
                f.handed_over, f.taken_over
            );
        }
        Some(line)
    }
}

/// The destination address and port of a parsed reply: the requester's side of the flow.
fn reply_destination(frame: &[u8], parsed: &frame::Received) -> (Ipv6Addr, u16) {
    let address = frame
        .get(parsed.l3 + 24..parsed.l3 + 40)
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .map_or(Ipv6Addr::UNSPECIFIED, Ipv6Addr::from);
    let port = frame
        .get(parsed.l4 + 2..parsed.l4 + 4)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    (address, port)
}
