//! Several AF_XDP queues driven by as many generator threads (`xdhcp6-bench --queues N`),
//! with the flows spread over the queues the way a NIC's receive-side scaling (RSS) would.
//!
//! # Which queue a flow uses
//!
//! A NIC hashes each packet's addresses and ports with the Toeplitz function and a 40-byte key,
//! and looks the hash's low 7 bits up in a 128-entry indirection table that names the queue
//! (`ethtool -X equal N`: entry i holds queue i mod N). [`rss_queue`] does the same with the
//! well-known default key, over the requester's side of the flow: the source address and
//! port of a request, which is the destination address and port of its reply. The server's
//! side is left out because it is the same for every flow of a run (its address, or
//! ff02::1:2 with replies from its link-local address), so it moves no flow to another queue;
//! leaving it out lets a reply name its queue from its own headers. For relayed traffic the
//! source is the relay agent's address and port 547, so every client behind one relay lands
//! on one queue, exactly like a cable modem termination system's traffic on a real NIC.
//!
//! # Threads
//!
//! [`partition`] gives each queue its clients; queue i's thread runs its own
//! [`Generator`] over them ([`Generator::restrict`]) with its own AF_XDP socket and UMEM,
//! bound to queue i, at the share of the rate its clients make up of the population (a queue
//! with no clients runs at rate 0 and only receives). Every ramp step runs on all threads at
//! once ([`run_phase`]); their statistics are added up, and the one-second samples merged,
//! so that the reports look like those of one thread.
//!
//! A reply normally comes back on the queue its request left on (on veth, the peer's queue
//! of the same index; a server answering from the worker that received). A server that hands
//! a request to another worker may answer on another queue: the receiving thread then hands
//! the reply to the owner of its destination ([`Fanout`]), which sees it on its next turn,
//! a few hundred microseconds later at most.

use std::cell::Cell;
use std::io;
use std::net::Ipv6Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use xdhcp6_proto::{CLIENT_PORT, SERVER_PORT};

use crate::afxdp::AfXdpTransport;
use crate::generator::Generator;
use crate::population::Population;
use crate::runner::{self, Clock, Phase, Ramp, RampResult, Sample, SystemClock};
use crate::scenario::{Outbox, Scenario};
use crate::stats::Stats;

/// The most queues `--queues` takes.
pub const MAX_QUEUES: u32 = 64;

/// The default Toeplitz key of RSS (Microsoft's, used by most NIC drivers unless one is set).
pub const RSS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// Entries of the indirection table.
const INDIRECTION: u32 = 128;

/// The Toeplitz hash of `input` under `key` (input up to `key.len() - 4` bytes).
pub fn toeplitz(key: &[u8; 40], input: &[u8]) -> u32 {
    let mut hash = 0u32;
    // The 32 key bits starting at the current input bit, and the next key bits to shift in.
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    for (i, byte) in input.iter().enumerate() {
        let next = key.get(i + 4).copied().unwrap_or(0);
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                hash ^= window;
            }
            window = (window << 1) | u32::from((next >> (7 - bit)) & 1);
        }
    }
    hash
}

/// The queue out of `queues` that RSS puts traffic from `address`, `port` on (see the module
/// documentation).
pub fn rss_queue(address: Ipv6Addr, port: u16, queues: u32) -> u32 {
    if queues <= 1 {
        return 0;
    }
    let mut input = [0u8; 18];
    input[..16].copy_from_slice(&address.octets());
    input[16..].copy_from_slice(&port.to_be_bytes());
    (toeplitz(&RSS_KEY, &input) % INDIRECTION) % queues
}

/// The source address and port the AF_XDP transport sends client `client`'s requests from:
/// its relay's (the shared `relay_source`, else the relay's link-address) on port 547, or
/// its own link-local address on port 546.
pub fn source_of(
    population: &Population,
    relay_source: Option<Ipv6Addr>,
    client: u32,
) -> (Ipv6Addr, u16) {
    match (population.relay_of(client), relay_source) {
        (Some(_), Some(shared)) => (shared, SERVER_PORT),
        (Some(relay), None) => (relay.link_address, SERVER_PORT),
        (None, _) => (population.link_local(client), CLIENT_PORT),
    }
}

/// Each queue's clients: client c goes to the queue RSS picks for [`source_of`] c.
pub fn partition(
    population: &Population,
    relay_source: Option<Ipv6Addr>,
    queues: u32,
) -> Vec<Vec<u32>> {
    let queues = queues.max(1);
    let mut out = vec![Vec::new(); queues as usize];
    // Relayed clients share their relay's queue: hash each relay once.
    let relay_queues: Vec<u32> = (0..population.relays())
        .map(|relay| {
            let (address, port) = source_of(population, relay_source, relay);
            rss_queue(address, port, queues)
        })
        .collect();
    for client in 0..population.len() {
        let queue = if population.relays() > 0 {
            relay_queues[(client % population.relays()) as usize]
        } else {
            let (address, port) = source_of(population, relay_source, client);
            rss_queue(address, port, queues)
        };
        out[queue as usize].push(client);
    }
    out
}

/// One thread's side of the hand-over of replies that arrived on another thread's queue.
#[derive(Debug)]
pub struct Fanout {
    queue: u32,
    queues: u32,
    inbox: Receiver<Vec<u8>>,
    peers: Vec<Sender<Vec<u8>>>,
    /// Replies this thread handed to another.
    pub handed_over: u64,
    /// Replies another thread handed to this one.
    pub taken_over: u64,
}

impl Fanout {
    /// One [`Fanout`] per queue, `queues` of them, all connected.
    pub fn connected(queues: u32) -> Vec<Fanout> {
        let (senders, inboxes): (Vec<_>, Vec<_>) = (0..queues).map(|_| channel()).unzip();
        inboxes
            .into_iter()
            .enumerate()
            .map(|(queue, inbox)| Fanout {
                queue: queue as u32,
                queues,
                inbox,
                peers: senders.clone(),
                handed_over: 0,
                taken_over: 0,
            })
            .collect()
    }

    /// The queue whose thread owns a reply to `address`, `port`.
    pub fn owner(&self, address: Ipv6Addr, port: u16) -> u32 {
        rss_queue(address, port, self.queues)
    }

    /// Whether this thread owns a reply to `address`, `port`.
    pub fn owns(&self, address: Ipv6Addr, port: u16) -> bool {
        self.owner(address, port) == self.queue
    }

    /// Hands `payload` (a reply to `address`, `port`) to its owner's thread.
    pub fn hand_over(&mut self, address: Ipv6Addr, port: u16, payload: &[u8]) {
        let owner = self.owner(address, port) as usize;
        // A thread that has ended no longer needs its replies.
        if self.peers[owner].send(payload.to_vec()).is_ok() {
            self.handed_over += 1;
        }
    }

    /// Hands each reply other threads passed on to `sink`; returns how many.
    pub fn take(&mut self, sink: &mut dyn FnMut(&[u8])) -> usize {
        let mut n = 0;
        while let Ok(payload) = self.inbox.try_recv() {
            sink(&payload);
            n += 1;
        }
        self.taken_over += n as u64;
        n
    }
}

/// One queue's thread: its generator, its socket and its clock.
pub struct Lane {
    /// The generator of the queue's clients.
    pub generator: Generator,
    /// The socket bound to the queue.
    pub transport: AfXdpTransport,
    /// The queue's clients as a share of the population: its share of the rate.
    pub share: f64,
    clock: SystemClock,
}

impl Lane {
    /// A lane of `generator` restricted to `clients` (out of `population` clients) on
    /// `transport`.
    pub fn new(
        mut generator: Generator,
        transport: AfXdpTransport,
        clients: Vec<u32>,
        population: u32,
    ) -> Self {
        let share = clients.len() as f64 / f64::from(population.max(1));
        generator.restrict(clients);
        Self {
            generator,
            transport,
            share,
            clock: SystemClock::default(),
        }
    }
}

/// A lane's generator as the driver sees it: finished only once every lane is, so that each
/// thread keeps receiving (and handing over) replies until the last one is done.
struct Shared<'a> {
    generator: &'a mut Generator,
    /// This lane's generator has finished (and said so in `finished`); it starts nothing
    /// more, since nothing of its own is outstanding.
    done: Cell<bool>,
    finished: &'a AtomicUsize,
    lanes: usize,
}

impl Scenario for Shared<'_> {
    fn poll(&mut self, now_ns: u64, out: &mut Outbox) {
        Scenario::poll(self.generator, now_ns, out);
    }

    fn handle_datagram(&mut self, now_ns: u64, datagram: &[u8], out: &mut Outbox) {
        Scenario::handle_datagram(self.generator, now_ns, datagram, out);
    }

    fn wait(&self, now_ns: u64) -> Duration {
        Scenario::wait(&*self.generator, now_ns)
    }

    fn is_finished(&self, now_ns: u64) -> bool {
        if !self.done.get() && self.generator.is_finished(now_ns) {
            self.done.set(true);
            self.finished.fetch_add(1, Ordering::AcqRel);
        }
        self.done.get() && self.finished.load(Ordering::Acquire) >= self.lanes
    }
}

/// What one lane measured in one phase: its statistics and, per second, the window's
/// statistics and the requests then outstanding.
struct LanePhase {
    stats: Stats,
    windows: Vec<(Stats, u64)>,
}

fn lane_phase(
    lane: &mut Lane,
    rate: f64,
    duration: Duration,
    finished: &AtomicUsize,
    lanes: usize,
) -> io::Result<LanePhase> {
    let Lane {
        generator,
        transport,
        share,
        clock,
    } = lane;
    let start = clock.now_ns();
    generator.start(start, rate * *share, duration.as_nanos() as u64);
    let base = generator.stats().clone();
    let mut last = base.clone();
    let mut windows = Vec::new();
    let mut shared = Shared {
        generator,
        done: Cell::new(false),
        finished,
        lanes,
    };
    runner::drive(
        &mut shared,
        transport,
        clock,
        start,
        &mut |shared, _tick| {
            let stats = shared.generator.stats().clone();
            windows.push((stats.since(&last), shared.generator.in_flight()));
            last = stats;
        },
        &mut |_| runner::Control::Continue,
    )?;
    Ok(LanePhase {
        stats: shared.generator.stats().since(&base),
        windows,
    })
}

/// Runs every lane at its share of `rate` for `duration` at once, each on its own thread,
/// then waits for every lane's outstanding requests; the lanes' statistics are added up and
/// the seconds merged. `progress` sees the merged one-second samples once the phase is over.
pub fn run_phase(
    lanes: &mut [Lane],
    rate: f64,
    duration: Duration,
    progress: &mut dyn FnMut(&Sample),
) -> io::Result<Phase> {
    let finished = AtomicUsize::new(0);
    let count = lanes.len();
    let results: Vec<io::Result<LanePhase>> = std::thread::scope(|scope| {
        let handles: Vec<_> = lanes
            .iter_mut()
            .map(|lane| {
                let finished = &finished;
                scope.spawn(move || lane_phase(lane, rate, duration, finished, count))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("a generator thread panicked")))
            })
            .collect()
    });
    let mut stats = Stats::default();
    let mut seconds: Vec<(Stats, u64)> = Vec::new();
    for result in results {
        let lane = result?;
        stats.merge(&lane.stats);
        for (i, (window, in_flight)) in lane.windows.iter().enumerate() {
            if seconds.len() <= i {
                seconds.push((Stats::default(), 0));
            }
            seconds[i].0.merge(window);
            seconds[i].1 += in_flight;
        }
    }
    let samples: Vec<Sample> = seconds
        .iter()
        .enumerate()
        .map(|(i, (window, in_flight))| Sample::of(window, 1.0, (i + 1) as f64, *in_flight))
        .collect();
    for sample in &samples {
        progress(sample);
    }
    Ok(Phase {
        rate,
        duration_s: duration.as_secs_f64(),
        stats,
        samples,
    })
}

/// The ramp search of [`runner::run_ramp`] over every lane at once.
pub fn run_ramp(
    lanes: &mut [Lane],
    ramp: &Ramp,
    progress: &mut dyn FnMut(&Sample),
    step_done: &mut dyn FnMut(&Phase, bool),
) -> io::Result<RampResult> {
    runner::ramp_with(ramp, step_done, &mut |rate| {
        run_phase(lanes, rate, ramp.step_duration, progress)
    })
}

/// Every lane's statistics, added up.
pub fn total_stats(lanes: &[Lane]) -> Stats {
    let mut total = Stats::default();
    for lane in lanes {
        total.merge(lane.generator.stats());
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn population(clients: u32, relays: u32) -> Population {
        Population::new(clients, relays, 0xbe, "2001:db8:1::/64".parse().unwrap())
    }

    #[test]
    fn toeplitz_matches_the_published_ipv6_vector() {
        // The verification suite of Microsoft's RSS specification: source
        // 3ffe:2501:200:1fff::7 port 2794, destination 3ffe:2501:200:3::1 port 1766.
        let source: Ipv6Addr = "3ffe:2501:200:1fff::7".parse().unwrap();
        let destination: Ipv6Addr = "3ffe:2501:200:3::1".parse().unwrap();
        let mut input = Vec::new();
        input.extend_from_slice(&source.octets());
        input.extend_from_slice(&destination.octets());
        assert_eq!(toeplitz(&RSS_KEY, &input), 0x2cc1_8cd5);
        input.extend_from_slice(&2794u16.to_be_bytes());
        input.extend_from_slice(&1766u16.to_be_bytes());
        assert_eq!(toeplitz(&RSS_KEY, &input), 0x4020_7d3d);
    }

    #[test]
    fn one_relay_puts_every_client_on_one_queue() {
        let p = population(10_000, 1);
        let parts = partition(&p, None, 4);
        assert_eq!(parts.iter().filter(|q| !q.is_empty()).count(), 1);
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 10_000);
        // A shared relay source address is one flow too, however many relays there are.
        let shared = partition(
            &population(10_000, 64),
            Some("2001:db8:f::2".parse().unwrap()),
            4,
        );
        assert_eq!(shared.iter().filter(|q| !q.is_empty()).count(), 1);
    }

    #[test]
    fn a_relays_clients_share_its_queue() {
        let p = population(6_400, 64);
        let parts = partition(&p, None, 2);
        for (queue, clients) in parts.iter().enumerate() {
            for &c in clients {
                let relay = p.relay_of(c).unwrap();
                assert_eq!(
                    rss_queue(relay.link_address, SERVER_PORT, 2),
                    queue as u32,
                    "client {c} of relay {}",
                    relay.index
                );
            }
        }
    }

    #[test]
    fn many_relays_and_direct_clients_spread_over_the_queues() {
        for queues in [2u32, 4] {
            let parts = partition(&population(6_400, 64), None, queues);
            let relays_per_queue: Vec<usize> = parts.iter().map(|q| q.len() / 100).collect();
            let fair = 64 / queues as usize;
            for (queue, &relays) in relays_per_queue.iter().enumerate() {
                assert!(
                    relays >= fair / 2 && relays <= fair * 3 / 2,
                    "{queues} queues: queue {queue} got {relays} of 64 relays ({relays_per_queue:?})"
                );
            }
            let direct = partition(&population(10_000, 0), None, queues);
            for (queue, clients) in direct.iter().enumerate() {
                let fair = 10_000 / queues as usize;
                assert!(
                    clients.len() > fair * 8 / 10 && clients.len() < fair * 12 / 10,
                    "{queues} queues: queue {queue} got {} of 10000 direct clients",
                    clients.len()
                );
            }
        }
        assert_eq!(rss_queue(Ipv6Addr::LOCALHOST, 547, 1), 0);
    }

    #[test]
    fn a_reply_names_the_queue_its_request_left_on() {
        let p = population(1_000, 0);
        let mut fanouts = Fanout::connected(2);
        let parts = partition(&p, None, 2);
        for (queue, clients) in parts.iter().enumerate() {
            for &c in clients.iter().take(20) {
                let (address, port) = source_of(&p, None, c);
                assert!(fanouts[queue].owns(address, port));
                assert!(!fanouts[1 - queue].owns(address, port));
            }
        }
        // A reply that arrived on queue 0 for a client of queue 1 reaches queue 1's thread.
        let c = parts[1][0];
        let (address, port) = source_of(&p, None, c);
        fanouts[0].hand_over(address, port, b"reply");
        let mut got = Vec::new();
        assert_eq!(fanouts[1].take(&mut |d| got.push(d.to_vec())), 1);
        assert_eq!(got, [b"reply".to_vec()]);
        assert_eq!((fanouts[0].handed_over, fanouts[1].taken_over), (1, 1));
        assert_eq!(fanouts[0].take(&mut |_| {}), 0);
    }
}
