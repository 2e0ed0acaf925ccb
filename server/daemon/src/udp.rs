//! The kernel UDP datapath: `[::]:547` with `recvmmsg` / `sendmmsg` batches.
//!
//! This is the portable datapath (`--datapath udp`) and the slow path for what the XDP program
//! passes to the kernel. One socket serves every worker: the workers all block in `recvmmsg` on
//! it and the kernel hands each datagram to exactly one of them. One socket per worker with
//! `SO_REUSEPORT` would spread unicast well, but the kernel copies a multicast datagram to
//! *every* socket of the group that joined it, and each worker would then answer the same
//! Solicit. Sharing the socket keeps answers single; the lease table is sharded, so the
//! workers do not serialize behind one another after the receive.
//!
//! Per datagram, `IPV6_PKTINFO` tells the arriving interface (mapped to a configured link by
//! name, cached) and the destination address; the reply leaves through the same interface,
//! from that destination address when it was unicast, else from a source the kernel picks
//! for the client's (link-local) address.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use xdhcp6_datapath::interface_name;
use xdhcp6_datapath::mmsg::{MmsgBatch, PacketInfo, ReceiveMode};
use xdhcp6_datapath::os::{Readiness, pin_to_core, unix_now, wait};
use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::proto::MessageType;
use xdhcp6_engine::{
    Arrival, Context, Destination, DropReason, Engine, Outcome, Peer, received_type,
};

use crate::delay::{self, DelayQueue};
use crate::events::{Events, refused_by_journal};
use crate::reload::EngineSource;
use crate::stats::WorkerStats;

/// All_DHCP_Relay_Agents_and_Servers (RFC 9915 §7.1), link scope.
pub const ALL_RELAY_AGENTS_AND_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
/// All_DHCP_Servers (RFC 9915 §7.1), site scope.
pub const ALL_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff05, 0, 0, 0, 0, 0, 1, 3);

/// Datagrams received or sent per system call.
pub const BATCH: usize = 64;

/// Bytes per receive slot. Larger datagrams (relay chains with big options) are cut off by the
/// kernel, flagged `MSG_TRUNC` and counted as bad frames.
const RECV_SIZE: usize = 4096;

/// Bytes per reply slot; the engine drops (`reply_too_large`) what does not fit.
const REPLY_SIZE: usize = 4096;

/// How long a worker blocks in `recvmmsg` before it looks at the stop flag again.
const RECEIVE_TIMEOUT: Duration = Duration::from_millis(200);

/// UDP ports of the protocol (RFC 9915 §7.2); tests move them off the privileged ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    /// The port the server listens on (547).
    pub server: u16,
    /// The port clients listen on (546).
    pub client: u16,
    /// The port relay agents listen on (547).
    pub relay: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Self {
            server: 547,
            client: 546,
            relay: 547,
        }
    }
}

pub use xdhcp6_datapath::udp::ServerSocket;

/// The groups the server socket joins on every served interface.
pub const GROUPS: [Ipv6Addr; 2] = [ALL_RELAY_AGENTS_AND_SERVERS, ALL_SERVERS];

/// Binds the server socket on `[::]:port` (port 0 picks one), with a receive timeout short
/// enough for the workers to notice the stop flag.
pub fn bind(port: u16) -> io::Result<ServerSocket> {
    ServerSocket::bind(port, RECEIVE_TIMEOUT)
}

/// The running UDP workers.
#[derive(Debug)]
pub struct UdpDatapath {
    workers: Vec<JoinHandle<()>>,
}

impl UdpDatapath {
    /// Starts one worker thread per entry of `events` on the shared `socket`, pinned to
    /// `cores[i]` when given; they run until `stop` is set.
    pub fn start<E: Events, S: EngineSource + 'static>(
        engine: Arc<S>,
        socket: Arc<ServerSocket>,
        ports: Ports,
        events: Vec<E>,
        stats: &[Arc<WorkerStats>],
        cores: &[usize],
        stop: Arc<AtomicBool>,
    ) -> io::Result<Self> {
        let mut workers = Vec::with_capacity(events.len());
        for (index, events) in events.into_iter().enumerate() {
            let worker = Worker {
                engine: Arc::clone(&engine),
                socket: Arc::clone(&socket),
                ports,
                events,
                stats: stats.get(index).cloned().unwrap_or_default(),
                stop: Arc::clone(&stop),
                links: LinkCache::default(),
                core: cores.get(index).copied(),
                delayed: DelayQueue::default(),
                staged: Vec::new(),
            };
            let spawned = thread::Builder::new()
                .name(format!("udp-worker-{index}"))
                .spawn(move || worker.run());
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(error) => {
                    // Do not leave the ones already started running.
                    stop.store(true, Ordering::Relaxed);
                    for handle in workers {
                        let _ = handle.join();
                    }
                    return Err(error);
                }
            }
        }
        Ok(Self { workers })
    }

    /// Whether every worker thread still runs (none has panicked or returned).
    pub fn running(&self) -> bool {
        self.workers.iter().all(|worker| !worker.is_finished())
    }

    /// Waits for every worker to notice the stop flag and end.
    pub fn join(self) {
        for handle in self.workers {
            if handle.join().is_err() {
                tracing::error!("a UDP worker panicked");
            }
        }
    }
}

/// Interface index → configured link, resolved by name on first sight.
///
/// Indexes are never reused while the interface exists; a renamed interface keeps its old
/// mapping until the daemon restarts.
#[derive(Debug, Default)]
struct LinkCache {
    links: HashMap<u32, Arriving>,
}

/// What the server knows about an interface datagrams arrive on.
#[derive(Clone, Copy, Debug, Default)]
struct Arriving {
    /// The link of its direct clients.
    link: Option<LinkId>,
    /// Whether relay agents are accepted on it (`[server] relay-interfaces`).
    relays: bool,
}

impl LinkCache {
    /// Forgets every interface (another engine, maybe another configuration, answers now).
    fn clear(&mut self) {
        self.links.clear();
    }

    fn lookup(&mut self, engine: &Engine, index: u32) -> Arriving {
        if index == 0 {
            // No IPV6_PKTINFO: the interface is unknown, so only an empty relay-interfaces
            // list (relays anywhere) admits a relay.
            return Arriving {
                link: None,
                relays: engine.config().server.relay_interfaces.is_empty(),
            };
        }
        *self.links.entry(index).or_insert_with(|| {
            let name = interface_name(index);
            Arriving {
                link: name
                    .as_deref()
                    .and_then(|name| engine.link_for_interface(name, None)),
                relays: match name {
                    Some(name) => engine.config().relays_on(&name),
                    None => engine.config().server.relay_interfaces.is_empty(),
                },
            }
        })
    }
}

struct Worker<E, S> {
    /// Where each batch takes its engine from (a reload swaps it between batches).
    engine: Arc<S>,
    socket: Arc<ServerSocket>,
    ports: Ports,
    events: E,
    stats: Arc<WorkerStats>,
    stop: Arc<AtomicBool>,
    links: LinkCache,
    core: Option<usize>,
    /// Advertise messages held for `advertise-delay-ms` ([`crate::delay`]).
    delayed: DelayQueue<DelayedDatagram>,
    /// The delayed replies of the batch being answered, queued once its events settle.
    staged: Vec<(Instant, DelayedDatagram)>,
}

/// A reply held in the delayed-reply queue: its bytes and where it goes.
#[derive(Debug)]
struct DelayedDatagram {
    payload: Vec<u8>,
    to: SocketAddrV6,
    from: PacketInfo,
}

impl<E: Events, S: EngineSource> Worker<E, S> {
    fn run(mut self) {
        if let Some(core) = self.core
            && let Err(error) = pin_to_core(core)
        {
            tracing::warn!(core, %error, "cannot pin the UDP worker; it runs unpinned");
        }
        let mut received_batch = MmsgBatch::new(BATCH, RECV_SIZE);
        let mut replies_batch = MmsgBatch::new(BATCH, REPLY_SIZE);
        let mut delayed_batch = MmsgBatch::new(BATCH, REPLY_SIZE);
        let socket = Arc::clone(&self.socket);
        let fd = socket.as_fd();
        let source = Arc::clone(&self.engine);
        let mut engine = source.current();
        let mut last_error: Option<io::ErrorKind> = None;
        while !self.stop.load(Ordering::Relaxed) {
            self.send_due(&mut delayed_batch, fd, false);
            // With replies held, wait no longer than until the next one is due; the shared
            // socket's own timeout bounds the wait otherwise.
            let mode = if self.delayed.is_empty() {
                ReceiveMode::WaitForOne
            } else {
                let timeout = self
                    .delayed
                    .timeout_ms(Instant::now(), RECEIVE_TIMEOUT.as_millis() as i32);
                if !readable(fd, timeout) {
                    continue;
                }
                ReceiveMode::DontWait
            };
            let received = match received_batch.receive(fd, mode) {
                Ok(received) => received,
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(error) => {
                    // Log a failure once per kind, not once per batch.
                    if last_error != Some(error.kind()) {
                        tracing::warn!(%error, "recvmmsg failed");
                        last_error = Some(error.kind());
                    }
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            if received > 0 {
                self.stats.count_busy_turn();
            }
            // One engine answers the whole batch: a reload takes effect between batches.
            let next = source.current();
            if !std::ptr::eq::<Engine>(&*next, &*engine) {
                self.links.clear();
            }
            engine = next;
            let replies = self.answer(&engine, &received_batch, received, &mut replies_batch);
            if replies == 0 && self.staged.is_empty() {
                continue;
            }
            if self.events.settle() {
                send(&mut replies_batch, fd, replies, &self.stats);
                self.hold_staged();
            } else {
                // The journal failed: a reply would promise a lease that a restart forgets.
                for _ in 0..replies + self.staged.len() {
                    self.stats.count_send_failure();
                }
                self.staged.clear();
            }
        }
        // Stopping: what is held leaves now rather than never.
        self.send_due(&mut delayed_batch, fd, true);
    }

    /// Moves the settled batch's delayed replies into the queue; those it has no room for
    /// are dropped and counted.
    fn hold_staged(&mut self) {
        for (due, datagram) in self.staged.drain(..) {
            let bytes = datagram.payload.len();
            match self.delayed.push(due, bytes, datagram) {
                Ok(()) => self.stats.count_advertise_delayed(),
                Err(_) => self.stats.count_advertise_delay_overflow(),
            }
        }
    }

    /// Sends the held replies that are due (with `all`, every one), a batch at a time.
    fn send_due(&mut self, batch: &mut MmsgBatch, fd: BorrowedFd<'_>, all: bool) {
        loop {
            let now = Instant::now();
            let mut count = 0;
            while count < BATCH {
                let next = if all {
                    self.delayed.pop()
                } else {
                    self.delayed.pop_due(now)
                };
                let Some(datagram) = next else { break };
                let len = datagram.payload.len().min(REPLY_SIZE);
                batch.slot_mut(count)[..len].copy_from_slice(&datagram.payload[..len]);
                batch.prepare(count, len, datagram.to, Some(datagram.from));
                count += 1;
            }
            if count == 0 {
                return;
            }
            send(batch, fd, count, &self.stats);
        }
    }

    /// Runs the engine over `received` datagrams; returns the number of replies queued.
    fn answer(
        &mut self,
        engine: &Engine,
        batch: &MmsgBatch,
        received: usize,
        out: &mut MmsgBatch,
    ) -> usize {
        let now = unix_now();
        let mut replies = 0;
        for slot in 0..received {
            let Some(datagram) = batch.datagram(slot) else {
                self.stats.count_bad_frame();
                continue;
            };
            let payload = batch.payload(slot);
            if payload.is_empty() {
                self.stats.count_bad_frame();
                continue;
            }
            let arriving = self.links.lookup(engine, datagram.info.interface);
            if !engine.admits_relay(arriving.relays, payload, *datagram.source.ip()) {
                self.stats.count_received(received_type(payload));
                self.stats.count_drop(DropReason::RelayNotAllowed);
                continue;
            }
            if let Some(kind) = refused_by_journal(&self.events, payload) {
                // The journal cannot be written: make and extend no binding (see `events`).
                self.stats.count_received(kind);
                self.stats.count_drop(DropReason::JournalUnavailable);
                continue;
            }
            let cx = Context {
                link: arriving.link,
                // The IPV6_PKTINFO destination: ff02::1:2 (ff05::1:3) or one of ours.
                arrival: Arrival::of(datagram.info.local),
                now,
            };
            let reply = out.slot_mut(replies);
            // The sender, for the per-relay and per-client limits (no MAC on this socket).
            let peer = Peer {
                address: Some(*datagram.source.ip()),
                mac: None,
            };
            let outcome = engine.handle_from(payload, &cx, peer, reply, &mut self.events);
            self.stats.count_received(outcome.received());
            match outcome {
                Outcome::Reply {
                    len,
                    to,
                    unknown_link,
                    delay_ms,
                    ..
                } => {
                    if unknown_link {
                        self.stats.count_unknown_link_answered();
                    }
                    let port = match to {
                        Destination::Client => self.ports.client,
                        Destination::Relay {
                            to_source_port: true,
                        }
                        | Destination::Requestor => datagram.source.port(),
                        Destination::Relay {
                            to_source_port: false,
                        } => self.ports.relay,
                    };
                    let source = if datagram.info.local.is_multicast() {
                        Ipv6Addr::UNSPECIFIED
                    } else {
                        datagram.info.local
                    };
                    let to = SocketAddrV6::new(
                        *datagram.source.ip(),
                        port,
                        0,
                        datagram.source.scope_id(),
                    );
                    let from = PacketInfo {
                        local: source,
                        interface: datagram.info.interface,
                    };
                    if delay_ms > 0 {
                        // An Advertise of a standby link: held, never waited for here.
                        let payload = out.slot_mut(replies).get(..len).unwrap_or_default();
                        self.staged.push((
                            delay::due(Instant::now(), delay_ms),
                            DelayedDatagram {
                                payload: payload.to_vec(),
                                to,
                                from,
                            },
                        ));
                        continue;
                    }
                    out.prepare(replies, len, to, Some(from));
                    replies += 1;
                }
                Outcome::Drop { reason, .. } => self.stats.count_drop(reason),
            }
        }
        replies
    }
}

/// Whether `fd` has a datagram to read within `timeout_ms` (an interrupted or failed wait
/// reads as not yet).
fn readable(fd: BorrowedFd<'_>, timeout_ms: i32) -> bool {
    let timeout = Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0));
    wait(fd, Readiness::Readable, timeout).unwrap_or(false)
}

/// Sends the first `count` prepared replies, retrying after partial sends; failures are
/// counted per reply.
fn send(batch: &mut MmsgBatch, fd: BorrowedFd<'_>, count: usize, stats: &WorkerStats) {
    let mut next = 0;
    while next < count {
        let sent = match batch.send(fd, next..count) {
            Ok(sent) => sent,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                // The first datagram failed (unreachable peer, no route, buffer full): count
                // it and go on with the rest.
                stats.count_send_failure();
                next += 1;
                continue;
            }
        };
        for slot in next..next + sent {
            if let Some(&first) = batch.payload(slot).first() {
                stats.count_sent(MessageType::from(first));
            }
        }
        // A zero-count success does not happen for a non-empty batch; stop rather than spin.
        if sent == 0 {
            break;
        }
        next += sent;
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;

    use xdhcp6_engine::alloc::SaltKey;
    use xdhcp6_engine::config::Config;
    use xdhcp6_engine::proto::{MessageWriter, OptionCode, Packet};
    use xdhcp6_engine::table::{EventSink, LeaseEvent, LeaseTable};

    use super::*;

    /// Collects events and counts the durability barriers.
    #[derive(Default)]
    struct Recorder {
        events: Arc<std::sync::Mutex<Vec<LeaseEvent>>>,
        settles: Arc<std::sync::atomic::AtomicUsize>,
        /// Set: the events cannot be made durable (a journal on a full disk).
        stalled: Arc<AtomicBool>,
    }

    impl EventSink for Recorder {
        fn emit(&mut self, event: LeaseEvent) {
            self.events.lock().unwrap().push(event);
        }
    }

    impl Events for Recorder {
        fn settle(&mut self) -> bool {
            self.settles.fetch_add(1, Ordering::Relaxed);
            !self.stalled.load(Ordering::Relaxed)
        }

        fn persisting(&self) -> bool {
            !self.stalled.load(Ordering::Relaxed)
        }
    }

    fn engine() -> Arc<Engine> {
        engine_with("")
    }

    /// The test engine with `server` lines added to `[server]`.
    fn engine_with(server: &str) -> Arc<Engine> {
        let config = Config::from_toml_str(
            &format!(
                "[server]\nduid = \"00:03:00:01:02:00:00:00:00:01\"\nsalt = \"t\"\n{server}\n\
                 [[link]]\nname = \"loop\"\ninterfaces = [\"lo\"]\n\
                 [[link.pool]]\nprefix = \"2001:db8:1::/64\"\n"
            ),
            "test.toml",
        )
        .unwrap();
        let config = Arc::new(config);
        let table = Arc::new(LeaseTable::with_capacity(64, SaltKey::from_salt("t")));
        Arc::new(Engine::new(config, table).unwrap())
    }

    fn solicit(buf: &mut [u8], xid: u32) -> usize {
        let mut w = MessageWriter::client(buf, MessageType::Solicit, xid).unwrap();
        w.client_id(&[0, 3, 0, 1, 2, 0, 0, 0, 0, 0x42]).unwrap();
        w.elapsed_time(0).unwrap();
        let mark = w.begin_ia_na(7, 0, 0).unwrap();
        w.end_option(mark).unwrap();
        w.oro(&[OptionCode::DnsServers]).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn answers_a_solicit_over_loopback_and_stops() {
        let socket = Arc::new(bind(0).unwrap());
        let client = UdpSocket::bind("[::1]:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // The test's socket plays the client and the relay agent.
        let ports = Ports {
            server: socket.port(),
            client: client.local_addr().unwrap().port(),
            relay: client.local_addr().unwrap().port(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let recorder = Recorder::default();
        let events = Arc::clone(&recorder.events);
        let settles = Arc::clone(&recorder.settles);
        let stats = vec![Arc::new(WorkerStats::default())];
        let datapath = UdpDatapath::start(
            engine(),
            Arc::clone(&socket),
            ports,
            vec![recorder],
            &stats,
            &[],
            Arc::clone(&stop),
        )
        .unwrap();

        let mut request = [0u8; 256];
        let len = solicit(&mut request, 0x00ab_cdef);
        // Sent to ::1, a unicast address: a client's own message is dropped (RFC 9915 §16).
        client
            .send_to(&request[..len], ("::1", socket.port()))
            .unwrap();
        // A message servers never answer is counted and dropped, not answered.
        client
            .send_to(&[2, 0, 0, 1], ("::1", socket.port()))
            .unwrap();
        // The same Solicit through a relay agent, which sends to the server's unicast address.
        let mut forward = [0u8; 512];
        let forward_len = relayed(&request[..len], &mut forward);
        client
            .send_to(&forward[..forward_len], ("::1", socket.port()))
            .unwrap();
        let mut reply = [0u8; 1500];
        let (got, from) = client.recv_from(&mut reply).unwrap();
        let Ok(Packet::Relay(relay)) = Packet::parse(&reply[..got]) else {
            panic!("not a Relay-reply: {:?}", &reply[..got]);
        };
        let inner = relay.chain().unwrap().message();
        assert_eq!(inner.msg_type(), MessageType::Advertise);
        assert_eq!(inner.transaction_id(), 0x00ab_cdef);
        assert_eq!(from.port(), socket.port());

        // The worker notices the stop flag within its receive timeout.
        let started = std::time::Instant::now();
        stop.store(true, Ordering::Relaxed);
        datapath.join();
        assert!(started.elapsed() < Duration::from_secs(2));

        // An Advertise reserves nothing, so it writes no lease event.
        assert_eq!(events.lock().unwrap().len(), 0, "an offer is no event");
        assert!(settles.load(Ordering::Relaxed) >= 1);
        let stats = &stats[0];
        assert_eq!(stats.received[1].load(Ordering::Relaxed), 2);
        assert_eq!(stats.received[2].load(Ordering::Relaxed), 1);
        assert_eq!(stats.sent[13].load(Ordering::Relaxed), 1);
        let dropped = |reason: xdhcp6_engine::DropReason| {
            let index = xdhcp6_engine::DropReason::ALL
                .iter()
                .position(|known| *known == reason)
                .unwrap();
            stats.dropped[index].load(Ordering::Relaxed)
        };
        assert_eq!(dropped(xdhcp6_engine::DropReason::Unicast), 1);
        assert_eq!(dropped(xdhcp6_engine::DropReason::NotForServer), 1);
    }

    /// `message` wrapped in a Relay-forward from the link of `engine()`.
    fn relayed(message: &[u8], out: &mut [u8]) -> usize {
        let link: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
        let mut w = MessageWriter::relay(out, MessageType::RelayForw, 0, link, link).unwrap();
        w.relay_msg(message).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn while_the_journal_cannot_write_a_solicit_gets_no_advertise() {
        let socket = Arc::new(bind(0).unwrap());
        let client = UdpSocket::bind("[::1]:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let ports = Ports {
            server: socket.port(),
            client: client.local_addr().unwrap().port(),
            relay: client.local_addr().unwrap().port(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let recorder = Recorder::default();
        let events = Arc::clone(&recorder.events);
        let stalled = Arc::clone(&recorder.stalled);
        stalled.store(true, Ordering::Relaxed);
        let stats = vec![Arc::new(WorkerStats::default())];
        let datapath = UdpDatapath::start(
            engine(),
            Arc::clone(&socket),
            ports,
            vec![recorder],
            &stats,
            &[],
            Arc::clone(&stop),
        )
        .unwrap();
        let mut message = [0u8; 256];
        let mut datagram = [0u8; 512];
        let mut reply = [0u8; 1500];

        // No Advertise: an offer the server could not keep would pull the client away from
        // the servers that can.
        let len = solicit(&mut message, 1);
        let len = relayed(&message[..len], &mut datagram);
        client
            .send_to(&datagram[..len], ("::1", socket.port()))
            .unwrap();
        assert!(client.recv_from(&mut reply).is_err(), "answered a Solicit");
        assert!(events.lock().unwrap().is_empty(), "the engine saw it");

        // Writes work again: the same Solicit is answered.
        stalled.store(false, Ordering::Relaxed);
        let len = solicit(&mut message, 2);
        let len = relayed(&message[..len], &mut datagram);
        client
            .send_to(&datagram[..len], ("::1", socket.port()))
            .unwrap();
        let (got, _) = client.recv_from(&mut reply).unwrap();
        let Ok(Packet::Relay(relay)) = Packet::parse(&reply[..got]) else {
            panic!("not a Relay-reply: {:?}", &reply[..got]);
        };
        let inner = relay.chain().unwrap().message();
        assert_eq!(inner.msg_type(), MessageType::Advertise);
        assert_eq!(inner.transaction_id(), 2);

        stop.store(true, Ordering::Relaxed);
        datapath.join();
        let stats = &stats[0];
        let index = xdhcp6_engine::DropReason::ALL
            .iter()
            .position(|known| *known == xdhcp6_engine::DropReason::JournalUnavailable)
            .unwrap();
        assert_eq!(stats.dropped[index].load(Ordering::Relaxed), 1);
        // Both Solicits count as received.
        assert_eq!(stats.received[1].load(Ordering::Relaxed), 2);
    }

    #[test]
    fn only_messages_that_make_or_extend_bindings_wait_for_the_journal() {
        use crate::events::makes_bindings;
        for kind in [
            MessageType::Solicit,
            MessageType::Request,
            MessageType::Renew,
            MessageType::Rebind,
        ] {
            assert!(makes_bindings(kind), "{kind:?}");
        }
        for kind in [
            MessageType::Release,
            MessageType::Decline,
            MessageType::Confirm,
            MessageType::InformationRequest,
        ] {
            assert!(!makes_bindings(kind), "{kind:?}");
        }
    }

    /// Sends a relayed Solicit from `client` to the datapath of `engine` on loopback; returns
    /// the reply, if one came within a second, and the worker's stats.
    fn relayed_over_loopback(engine: Arc<Engine>) -> (Option<Vec<u8>>, Arc<WorkerStats>) {
        let socket = Arc::new(bind(0).unwrap());
        let client = UdpSocket::bind("[::1]:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let port = client.local_addr().unwrap().port();
        let ports = Ports {
            server: socket.port(),
            client: port,
            relay: port,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stats = vec![Arc::new(WorkerStats::default())];
        let datapath = UdpDatapath::start(
            engine,
            Arc::clone(&socket),
            ports,
            vec![Recorder::default()],
            &stats,
            &[],
            Arc::clone(&stop),
        )
        .unwrap();
        let mut request = [0u8; 256];
        let len = solicit(&mut request, 0x0012_3456);
        let mut forward = [0u8; 512];
        let forward_len = relayed(&request[..len], &mut forward);
        client
            .send_to(&forward[..forward_len], ("::1", socket.port()))
            .unwrap();
        let mut reply = [0u8; 1500];
        let got = client
            .recv_from(&mut reply)
            .ok()
            .map(|(got, _)| reply[..got].to_vec());
        stop.store(true, Ordering::Relaxed);
        datapath.join();
        (got, Arc::clone(&stats[0]))
    }

    #[test]
    fn relay_forward_on_a_management_interface_is_dropped_and_counted() {
        // Relay agents live on uplink0 only: a Relay-forward arriving on lo is not theirs.
        let (reply, stats) = relayed_over_loopback(engine_with("relay-interfaces = [\"uplink0\"]"));
        assert_eq!(reply, None, "answered a relay on an interface not listed");
        let index = xdhcp6_engine::DropReason::ALL
            .iter()
            .position(|known| *known == xdhcp6_engine::DropReason::RelayNotAllowed)
            .unwrap();
        assert_eq!(stats.dropped[index].load(Ordering::Relaxed), 1);
        assert_eq!(
            stats.received[1].load(Ordering::Relaxed),
            1,
            "counted as a Solicit"
        );

        // From a source outside relay-sources: dropped the same way.
        let (reply, stats) =
            relayed_over_loopback(engine_with("relay-sources = [\"2001:db8:ffff::/48\"]"));
        assert_eq!(reply, None, "answered a relay from a source not listed");
        assert_eq!(stats.dropped[index].load(Ordering::Relaxed), 1);

        // Listed: answered.
        let (reply, _) = relayed_over_loopback(engine_with(
            "relay-interfaces = [\"lo\"]\nrelay-sources = [\"::1/128\"]",
        ));
        assert!(reply.is_some(), "no answer where relays are allowed");
    }
}
