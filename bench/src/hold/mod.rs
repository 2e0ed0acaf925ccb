//! The `hold` scenario: every emulated client obtains an address (or a delegated prefix, or
//! both) and keeps it over time, the way a real client does (RFC 9915 §18.2), so that the loss
//! of a server shows as clients without a lease.
//!
//! Each client solicits (taking an Advertise with Preference 255 at once, otherwise the
//! highest preference heard within the first retransmission timeout), requests from the
//! chosen server, renews at T1 with that server's identifier, rebinds at T2 without one,
//! applies each Reply to its leases (a valid lifetime of 0 removes an address or prefix, new
//! ones are added, each expires at its own valid lifetime) and starts over with a Solicit when
//! the last one runs out. Out-of-service intervals (no lease with a valid lifetime left, after
//! the first binding) are measured per client.
//!
//! Like [`crate::generator`], [`Hold`] is a sans-IO [`Scenario`]: time comes in as nanoseconds
//! and datagrams go out through an [`Outbox`], written and read by [`crate::message`] (direct
//! or through an emulated relay); [`crate::runner::run_hold`] drives it. [`report`] keeps the
//! timeline and writes the summary, its table and its plot.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::net::Ipv6Addr;
use std::time::Duration;

use serde::Serialize;
use xdhcp6_proto::{MessageType, StatusCode};

use crate::message::{ClientMessage, Exchange, IaSet, Reply, relay_matches, sender_of};
use crate::population::{Population, Prefix};
use crate::scenario::Outbox;
use crate::scenario::Scenario;
use crate::stats::{Failure, Histogram};

pub mod report;

pub use report::{HoldSample, HoldSummary, OutageSummary};

const MS: u64 = 1_000_000;
/// Leases one client keeps at once (addresses and prefixes together); further ones in a
/// Reply are ignored (and counted).
const MAX_LEASES: usize = 2;
/// The prefix length that marks a lease as an address.
const ADDRESS: u8 = 128;
/// Servers told apart (their index + 1 is stored in a byte).
const MAX_SERVERS: usize = 254;
/// Messages a client sends in this scenario, in counter order.
pub const KINDS: [Exchange; 4] = [
    Exchange::Solicit,
    Exchange::Request,
    Exchange::Renew,
    Exchange::Rebind,
];

/// The scenario's parameters.
#[derive(Clone, Debug)]
pub struct HoldSettings {
    /// The clients, on the link or behind the population's relays.
    pub population: Population,
    /// The IAs every client asks for and keeps: an IA_NA, an IA_PD or both.
    pub ias: IaSet,
    /// Clients start evenly spread over this many milliseconds.
    pub ramp_up_ms: u32,
    /// Initial retransmission timeout of every exchange, ms (SOL/REQ_TIMEOUT; also the
    /// Advertise collection window). RFC 9915: 1 s.
    pub initial_rt_ms: u32,
    /// Largest retransmission timeout, ms (the RFC's 30 s to 3600 s, scaled down with the
    /// lifetimes of a test).
    pub max_rt_ms: u32,
    /// Request transmissions before going back to Solicit (REQ_MAX_RC, 10 in the RFC).
    pub request_max_rc: u8,
    /// Renew starts at T1 plus up to this fraction of T1, drawn per client and renewal, so
    /// that clients bound in the same millisecond drift apart.
    pub renew_jitter: f64,
    /// Every address must lie in one of these (none: anything goes).
    pub expect_ranges: Vec<Prefix>,
    /// Every delegated prefix must lie in one of these (none: anything goes).
    pub expect_pd_ranges: Vec<Prefix>,
    /// Seeds the random draws (retransmission RAND, jitter, transaction ids).
    pub seed: u64,
}

impl HoldSettings {
    /// RFC-shaped defaults for `population`: one IA_NA, 1 s initial RT, 8 s largest, 4
    /// Requests.
    pub fn new(population: Population) -> Self {
        Self {
            population,
            ias: IaSet::NA,
            ramp_up_ms: 10_000,
            initial_rt_ms: 1000,
            max_rt_ms: 8000,
            request_max_rc: 4,
            renew_jitter: 0.05,
            expect_ranges: Vec::new(),
            expect_pd_ranges: Vec::new(),
            seed: 0x5eed,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Not started yet (the ramp-up reaches it later).
    Waiting,
    Soliciting,
    Requesting,
    Bound,
    Renewing,
    Rebinding,
}

/// An address (length [`ADDRESS`]) or a delegated prefix a client holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Lease {
    addr: Ipv6Addr,
    len: u8,
    /// Milliseconds since the start when the valid lifetime ends.
    valid_until: u32,
}

impl Lease {
    fn key(&self) -> (Ipv6Addr, u8) {
        (self.addr, self.len)
    }
}

/// An address or prefix of a reply, with its lifetimes in seconds.
#[derive(Clone, Copy, Debug)]
struct Offered {
    addr: Ipv6Addr,
    len: u8,
    preferred: u32,
    valid: u32,
}

/// One client, about 120 bytes.
#[derive(Clone, Copy, Debug)]
struct Client {
    leases: [Option<Lease>; MAX_LEASES],
    /// The address of the Advertise chosen so far (unspecified: none).
    offer: Ipv6Addr,
    xid: u32,
    /// The previous exchange's transaction id: its late replies are not failures.
    prev_xid: u32,
    exchange_start: u32,
    next_tx: u32,
    rt: u32,
    t1_at: u32,
    t2_at: u32,
    out_since: u32,
    /// The time of the client's live heap entry.
    wake: u32,
    state: State,
    /// Server (index + 1) of the last Reply that bound it.
    server: u8,
    /// Server (index + 1) the outstanding Request or Renew goes to.
    target: u8,
    /// Server (index + 1) the client is counted under in `by_server` (0: not in service).
    counted: u8,
    /// Preference of the offer (`offer_server` 0: none yet).
    offer_pref: u8,
    offer_server: u8,
    transmissions: u8,
    /// Server (index + 1) it was counted under before its current outage.
    lost_from: u8,
    flags: u8,
}

const EVER_BOUND: u8 = 1;
const RENEWED: u8 = 2;
const LOST: u8 = 4;
/// The first Solicit RT has not run out: Advertises are collected, not taken.
const COLLECTING: u8 = 8;
const SWITCHED: u8 = 16;

impl Client {
    const NEW: Client = Client {
        leases: [None; MAX_LEASES],
        offer: Ipv6Addr::UNSPECIFIED,
        xid: 0,
        prev_xid: u32::MAX,
        exchange_start: 0,
        next_tx: 0,
        rt: 0,
        t1_at: 0,
        t2_at: 0,
        out_since: 0,
        wake: u32::MAX,
        state: State::Waiting,
        server: 0,
        target: 0,
        counted: 0,
        offer_pref: 0,
        offer_server: 0,
        transmissions: 0,
        lost_from: 0,
        flags: 0,
    };

    fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    fn holds_any(&self) -> bool {
        self.leases.iter().any(Option::is_some)
    }
}

/// A server heard on the link.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServerInfo {
    /// Its DUID, hex.
    pub duid: String,
    /// The Preference of its Advertises (0 when absent, RFC 9915 §18.2.1).
    pub preference: u8,
    /// Advertises received from it.
    pub advertises: u64,
    /// Valid Replies received from it.
    pub replies: u64,
    #[serde(skip)]
    raw: Vec<u8>,
}

/// Counters of the whole run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HoldStats {
    /// Messages sent, by [`KINDS`] index.
    pub sent: [u64; 4],
    /// Retransmissions among them.
    pub retransmissions: u64,
    /// Datagrams received.
    pub received: u64,
    /// Valid Advertises and Replies acted upon.
    pub accepted: u64,
    /// Answers to an exchange already answered (a second server's Advertise or Reply).
    pub extra: u64,
    /// Answers to the client's previous exchange.
    pub late: u64,
    /// Failures by [`Failure::ALL`] index.
    pub failures: [u64; Failure::ALL.len()],
    /// Addresses and prefixes removed because a Reply gave them a valid lifetime of 0.
    pub zeroed: u64,
    /// Addresses and prefixes removed because their valid lifetime ran out.
    pub expired: u64,
    /// Addresses and prefixes a Reply added beyond what a client keeps.
    pub ignored: u64,
    /// Renew/Rebind Replies with NoBinding (the client then Requests).
    pub no_binding: u64,
    /// Replies to Request without a lease (the client solicits again).
    pub no_address: u64,
}

impl HoldStats {
    fn fail(&mut self, failure: Failure) {
        if let Some(i) = Failure::ALL.iter().position(|&f| f == failure) {
            self.failures[i] += 1;
        }
    }

    /// All failed validations.
    pub fn total_failures(&self) -> u64 {
        self.failures.iter().sum()
    }
}

/// The holding population.
pub struct Hold {
    settings: HoldSettings,
    clients: Vec<Client>,
    heap: BinaryHeap<Reverse<(u32, u32)>>,
    /// The next client the ramp-up starts.
    next_start: u32,
    origin_ns: Option<u64>,
    servers: Vec<ServerInfo>,
    /// The client holding each address and prefix.
    owner: HashMap<(Ipv6Addr, u8), u32>,
    /// The run ends here (see [`Hold::start`]).
    end_ns: u64,
    /// Clients in service by `counted` (index 0: not in service).
    by_server: Vec<u64>,
    ever_bound: u64,
    renewed: u64,
    out: u64,
    rng: u64,
    outages: Histogram,
    stats: HoldStats,
    last: HoldStats,
    mark_ms: Option<u32>,
    last_recovery_ms: Option<u32>,
    switched: u64,
    /// The T1 of the last Reply, ms.
    last_t1_ms: u32,
    samples: Vec<HoldSample>,
}

impl Hold {
    /// A population that starts at the first [`Hold::poll`].
    pub fn new(settings: HoldSettings) -> Self {
        let n = settings.population.len() as usize;
        let rng = settings.seed ^ 0x9e37_79b9_7f4a_7c15;
        Self {
            clients: vec![Client::NEW; n],
            heap: BinaryHeap::new(),
            next_start: 0,
            origin_ns: None,
            servers: Vec::new(),
            owner: HashMap::new(),
            end_ns: u64::MAX,
            by_server: vec![0; MAX_SERVERS + 1],
            ever_bound: 0,
            renewed: 0,
            out: 0,
            rng,
            outages: Histogram::default(),
            stats: HoldStats::default(),
            last: HoldStats::default(),
            mark_ms: None,
            last_recovery_ms: None,
            switched: 0,
            last_t1_ms: 0,
            samples: Vec::new(),
            settings,
        }
    }

    /// Servers heard so far.
    pub fn servers(&self) -> &[ServerInfo] {
        &self.servers
    }

    /// Everything counted so far.
    pub fn stats(&self) -> &HoldStats {
        &self.stats
    }

    /// Clients holding a lease (an address or a prefix) now.
    pub fn in_service(&self) -> u64 {
        self.by_server[1..].iter().sum()
    }

    /// Clients in service bound by server `index` (order of [`Hold::servers`]).
    pub fn bound_to(&self, index: usize) -> u64 {
        self.by_server.get(index + 1).copied().unwrap_or(0)
    }

    /// Clients that had a lease and have none now.
    pub fn out_of_service(&self) -> u64 {
        self.out
    }

    /// Clients that completed a Renew or Rebind.
    pub fn renewed(&self) -> u64 {
        self.renewed
    }

    /// Ends the run `duration_ns` after `now_ns`; without it the run has no end.
    pub fn start(&mut self, now_ns: u64, duration_ns: u64) {
        self.end_ns = now_ns.saturating_add(duration_ns);
    }

    /// The addresses client `c` holds now.
    pub fn addresses(&self, c: u32) -> Vec<Ipv6Addr> {
        self.leases(c)
            .filter(|&(_, len)| len == ADDRESS)
            .map(|(addr, _)| addr)
            .collect()
    }

    /// The delegated prefixes client `c` holds now.
    pub fn prefixes(&self, c: u32) -> Vec<(Ipv6Addr, u8)> {
        self.leases(c).filter(|&(_, len)| len != ADDRESS).collect()
    }

    fn leases(&self, c: u32) -> impl Iterator<Item = (Ipv6Addr, u8)> + '_ {
        self.clients
            .get(c as usize)
            .into_iter()
            .flat_map(|client| client.leases.iter().flatten().map(Lease::key))
    }

    /// Out-of-service intervals that ended, in microseconds.
    pub fn outages(&self) -> &Histogram {
        &self.outages
    }

    /// The samples taken with [`Hold::sample`].
    pub fn samples(&self) -> &[HoldSample] {
        &self.samples
    }

    fn ms(&mut self, now_ns: u64) -> u32 {
        let origin = *self.origin_ns.get_or_insert(now_ns);
        (now_ns.saturating_sub(origin) / MS).min(u64::from(u32::MAX / 2)) as u32
    }

    fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform draw in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.random() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Marks the timeline (a server was stopped) at `now_ns`; the recovery is measured from
    /// the first mark.
    pub fn mark(&mut self, now_ns: u64) {
        let now = self.ms(now_ns);
        self.mark_ms.get_or_insert(now);
    }

    /// Starts the clients due, retransmits, and runs the timers due at `now_ns`.
    pub fn poll(&mut self, now_ns: u64, out: &mut Outbox) {
        let now = self.ms(now_ns);
        let n = self.settings.population.len();
        while self.next_start < n {
            let c = self.next_start;
            let at = (u64::from(self.settings.ramp_up_ms) * u64::from(c) / u64::from(n)) as u32;
            if at > now {
                break;
            }
            self.next_start += 1;
            self.solicit(c, now, out);
            self.schedule(c);
        }
        while let Some(&Reverse((at, c))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            if self.clients[c as usize].wake != at {
                continue;
            }
            self.clients[c as usize].wake = u32::MAX;
            self.wake(c, now, out);
            self.schedule(c);
        }
    }

    fn schedule(&mut self, c: u32) {
        let client = &self.clients[c as usize];
        let mut at = match client.state {
            State::Waiting => return,
            State::Soliciting | State::Requesting | State::Rebinding => client.next_tx,
            State::Bound => client.t1_at,
            State::Renewing => client.next_tx.min(client.t2_at),
        };
        for lease in client.leases.iter().flatten() {
            at = at.min(lease.valid_until);
        }
        if at < client.wake {
            self.clients[c as usize].wake = at;
            self.heap.push(Reverse((at, c)));
        }
    }

    /// Runs client `c`'s timers due at `now`.
    fn wake(&mut self, c: u32, now: u32, out: &mut Outbox) {
        self.expire(c, now, out);
        let client = self.clients[c as usize];
        match client.state {
            State::Waiting => {}
            State::Soliciting if now >= client.next_tx => {
                if client.has(COLLECTING) && client.offer_server != 0 {
                    let server = client.offer_server;
                    self.request(c, now, server, out);
                } else {
                    self.clients[c as usize].flags &= !COLLECTING;
                    self.retransmit(c, now, Exchange::Solicit, out);
                }
            }
            State::Requesting if now >= client.next_tx => {
                if client.transmissions >= self.settings.request_max_rc {
                    self.solicit(c, now, out);
                } else {
                    self.retransmit(c, now, Exchange::Request, out);
                }
            }
            State::Bound if now >= client.t1_at => {
                let server = client.server;
                self.begin(c, now, State::Renewing, server);
                self.transmit(c, now, Exchange::Renew, out);
            }
            State::Renewing if now >= client.t2_at => {
                // RFC 9915 §18.2.5: at T2 the client Rebinds, to any server.
                self.begin(c, now, State::Rebinding, 0);
                self.transmit(c, now, Exchange::Rebind, out);
            }
            State::Renewing if now >= client.next_tx => {
                self.retransmit(c, now, Exchange::Renew, out);
            }
            State::Rebinding if now >= client.next_tx => {
                self.retransmit(c, now, Exchange::Rebind, out);
            }
            _ => {}
        }
    }

    /// Drops the addresses whose valid lifetime ended by `now`; a client left with none
    /// starts over.
    fn expire(&mut self, c: u32, now: u32, out: &mut Outbox) {
        let mut last_end = None;
        for slot in 0..MAX_LEASES {
            let Some(lease) = self.clients[c as usize].leases[slot] else {
                continue;
            };
            if lease.valid_until <= now {
                self.clients[c as usize].leases[slot] = None;
                self.release_owner(c, lease.key());
                self.stats.expired += 1;
                last_end =
                    Some(last_end.map_or(lease.valid_until, |t: u32| t.max(lease.valid_until)));
            }
        }
        let Some(end) = last_end else {
            return;
        };
        self.recount(c, end);
        let client = self.clients[c as usize];
        // RFC 9915 §18.2.5, in substance: Rebind ends when the valid lifetimes of all
        // leases have expired; the client then starts over with a Solicit.
        if !client.holds_any()
            && matches!(
                client.state,
                State::Bound | State::Renewing | State::Rebinding
            )
        {
            self.solicit(c, now, out);
        }
    }

    fn release_owner(&mut self, c: u32, key: (Ipv6Addr, u8)) {
        if self.owner.get(&key) == Some(&c) {
            self.owner.remove(&key);
        }
    }

    /// Brings the per-server counters and the outage record of `c` up to date; `at` is when
    /// the change happened.
    fn recount(&mut self, c: u32, at: u32) {
        let client = self.clients[c as usize];
        let now_server = if client.holds_any() {
            client.server.max(1)
        } else {
            0
        };
        let before = client.counted;
        if before == now_server {
            return;
        }
        self.by_server[usize::from(before)] -= u64::from(before != 0);
        self.by_server[usize::from(now_server)] += u64::from(now_server != 0);
        self.clients[c as usize].counted = now_server;
        let after_mark = self.mark_ms.is_some_and(|m| at >= m);
        if now_server == 0 {
            let client = &mut self.clients[c as usize];
            client.flags |= LOST;
            client.out_since = at;
            client.lost_from = before;
            self.out += 1;
            return;
        }
        if before == 0 && !client.has(EVER_BOUND) {
            self.clients[c as usize].flags |= EVER_BOUND;
            self.ever_bound += 1;
            return;
        }
        let previous = if before == 0 {
            // Back in service after an outage.
            self.out -= 1;
            let outage_ms = at.saturating_sub(client.out_since);
            self.outages.record(u64::from(outage_ms) * 1000);
            client.lost_from
        } else {
            before
        };
        if after_mark {
            self.last_recovery_ms = Some(at);
            if previous != now_server && !client.has(SWITCHED) {
                self.clients[c as usize].flags |= SWITCHED;
                self.switched += 1;
            }
        }
    }

    /// Starts (or restarts) the Solicit exchange.
    fn solicit(&mut self, c: u32, now: u32, out: &mut Outbox) {
        self.begin(c, now, State::Soliciting, 0);
        let client = &mut self.clients[c as usize];
        client.flags |= COLLECTING;
        client.offer = Ipv6Addr::UNSPECIFIED;
        client.offer_server = 0;
        client.offer_pref = 0;
        self.transmit(c, now, Exchange::Solicit, out);
    }

    fn request(&mut self, c: u32, now: u32, server: u8, out: &mut Outbox) {
        self.begin(c, now, State::Requesting, server);
        self.transmit(c, now, Exchange::Request, out);
    }

    /// A new exchange: new transaction id, first transmission pending.
    fn begin(&mut self, c: u32, now: u32, state: State, target: u8) {
        let xid = (self.random() & 0xff_ffff) as u32;
        let client = &mut self.clients[c as usize];
        client.prev_xid = client.xid;
        client.xid = xid;
        client.state = state;
        client.target = target;
        client.exchange_start = now;
        client.transmissions = 0;
        client.rt = 0;
    }

    fn retransmit(&mut self, c: u32, now: u32, kind: Exchange, out: &mut Outbox) {
        self.stats.retransmissions += 1;
        self.transmit(c, now, kind, out);
    }

    /// Sends the exchange's message and sets the next retransmission (RFC 9915 §15).
    fn transmit(&mut self, c: u32, now: u32, kind: Exchange, out: &mut Outbox) {
        let irt = f64::from(self.settings.initial_rt_ms.max(1));
        let mrt = f64::from(
            self.settings
                .max_rt_ms
                .max(self.settings.initial_rt_ms)
                .max(1),
        );
        let rand = self.unit() * 0.2 - 0.1;
        let client = self.clients[c as usize];
        let rt = if client.rt == 0 {
            // RFC 9915 §18.2.1, in substance: the first Solicit RT is strictly greater
            // than IRT (RAND strictly positive), which is also the Advertise collection time.
            let rand = if kind == Exchange::Solicit {
                rand.abs().max(0.001)
            } else {
                rand
            };
            irt + rand * irt
        } else {
            let next = 2.0 * f64::from(client.rt) + rand * f64::from(client.rt);
            if next > mrt { mrt + rand * mrt } else { next }
        };
        let client = &mut self.clients[c as usize];
        client.rt = rt.max(1.0) as u32;
        client.next_tx = now.saturating_add(client.rt);
        client.transmissions = client.transmissions.saturating_add(1);
        self.stats.sent[kind.index()] += 1;
        let client = self.clients[c as usize];
        let population = &self.settings.population;
        let duid = population.duid(c);
        let server_id = match kind {
            Exchange::Request | Exchange::Renew => client
                .target
                .checked_sub(1)
                .and_then(|i| self.servers.get(usize::from(i)))
                .map(|s| s.raw.as_slice()),
            _ => None,
        };
        let mut addresses = [Ipv6Addr::UNSPECIFIED; MAX_LEASES];
        let mut prefixes = [(Ipv6Addr::UNSPECIFIED, 0); MAX_LEASES];
        let (mut na, mut pd) = (0, 0);
        match kind {
            Exchange::Request if !client.offer.is_unspecified() => {
                addresses[0] = client.offer;
                na = 1;
            }
            Exchange::Renew | Exchange::Rebind => {
                for lease in client.leases.iter().flatten() {
                    if lease.len == ADDRESS {
                        addresses[na] = lease.addr;
                        na += 1;
                    } else {
                        prefixes[pd] = lease.key();
                        pd += 1;
                    }
                }
            }
            _ => {}
        }
        let message = ClientMessage {
            exchange: kind,
            xid: client.xid,
            client_id: duid.as_bytes(),
            server_id,
            elapsed: ((now - client.exchange_start) / 10).min(0xffff) as u16,
            ias: self.settings.ias,
            addresses: &addresses[..na],
            prefixes: &prefixes[..pd],
            rapid_commit: false,
            relay: None,
        };
        // 1500 bytes hold every message built here; a failure would be a bug in this crate
        // and shows as an exchange that is never answered.
        let _ = out.push(sender_of(population, c), |buf| {
            message.write_as(population, c, buf)
        });
    }

    /// Validates a datagram from a server and acts on it.
    pub fn handle_datagram(&mut self, now_ns: u64, datagram: &[u8], out: &mut Outbox) {
        let now = self.ms(now_ns);
        self.stats.received += 1;
        let Ok(answer) = Reply::parse(datagram) else {
            self.stats.fail(Failure::Malformed);
            return;
        };
        let Some(c) = answer
            .client_id
            .and_then(|id| self.settings.population.client_of(id))
        else {
            self.stats.fail(Failure::WrongClientId);
            return;
        };
        if !relay_matches(&self.settings.population, c, answer.relay) {
            self.stats.fail(Failure::BadRelay);
            return;
        }
        if answer.msg_type == MessageType::Advertise
            && let Some(id) = answer.server_id
        {
            // Every server on the link answers a Solicit: learn each one from its Advertise,
            // also from those that come after the client has chosen.
            self.learn(id, answer.preference.unwrap_or(0));
        }
        // Timers that ran out before this reply arrived come first.
        self.expire(c, now, out);
        self.answer(c, now, &answer, out);
        self.schedule(c);
    }

    fn answer(&mut self, c: u32, now: u32, answer: &Reply<'_>, out: &mut Outbox) {
        let client = self.clients[c as usize];
        if answer.xid != client.xid {
            if answer.xid == client.prev_xid {
                self.stats.late += 1;
            } else {
                self.stats.fail(Failure::UnknownXid);
            }
            return;
        }
        let expected = match client.state {
            State::Soliciting => MessageType::Advertise,
            State::Requesting | State::Renewing | State::Rebinding => MessageType::Reply,
            State::Waiting | State::Bound => {
                // The exchange was answered already (the other server, or a retransmission).
                if matches!(answer.msg_type, MessageType::Advertise | MessageType::Reply) {
                    self.stats.extra += 1;
                } else {
                    self.stats.fail(Failure::WrongType);
                }
                return;
            }
        };
        if answer.msg_type != expected {
            if client.state == State::Requesting && answer.msg_type == MessageType::Advertise {
                self.stats.extra += 1;
            } else {
                self.stats.fail(Failure::WrongType);
            }
            return;
        }
        match self.validate(c, &client, answer) {
            Ok(server) => {
                self.stats.accepted += 1;
                if answer.msg_type == MessageType::Advertise {
                    self.on_advertise(c, now, server, answer, out);
                } else {
                    self.on_reply(c, now, server, answer, out);
                }
            }
            // RFC 9915 §16: a client discards an invalid message and goes on waiting.
            Err(failure) => self.stats.fail(failure),
        }
    }

    /// Records an Advertise from `server_id`, adding the server when it is new.
    fn learn(&mut self, server_id: &[u8], preference: u8) {
        let info = match self.servers.iter().position(|s| s.raw == server_id) {
            Some(i) => &mut self.servers[i],
            None if self.servers.len() < MAX_SERVERS => {
                self.servers.push(ServerInfo {
                    duid: hex(server_id),
                    raw: server_id.to_vec(),
                    ..ServerInfo::default()
                });
                let last = self.servers.len() - 1;
                &mut self.servers[last]
            }
            None => return,
        };
        info.advertises += 1;
        info.preference = preference;
    }

    /// Checks the server and the addresses; returns the server's index + 1.
    fn validate(&mut self, c: u32, client: &Client, answer: &Reply<'_>) -> Result<u8, Failure> {
        let server_id = answer.server_id.ok_or(Failure::MissingServerId)?;
        let known = self.servers.iter().position(|s| s.raw == server_id);
        // A Reply from a server that never advertised is not one the client knows.
        let server = known.ok_or(Failure::WrongServerId)? as u8 + 1;
        // RFC 9915 §16, in substance: the Reply to a Request or Renew comes from the server
        // the client addressed; a Rebind goes to any server.
        if matches!(client.state, State::Requesting | State::Renewing) && server != client.target {
            return Err(Failure::WrongServerId);
        }
        if answer.status.is_some_and(|s| s != StatusCode::Success) {
            return Err(Failure::StatusFailure);
        }
        for a in self.offered(answer) {
            if a.valid == 0 {
                continue;
            }
            let (ranges, outside, taken) = if a.len == ADDRESS {
                let ranges = &self.settings.expect_ranges;
                (
                    ranges,
                    Failure::AddressOutOfRange,
                    Failure::DuplicateAddress,
                )
            } else {
                let ranges = &self.settings.expect_pd_ranges;
                (ranges, Failure::PrefixOutOfRange, Failure::DuplicatePrefix)
            };
            if !ranges.is_empty() && !ranges.iter().any(|r| r.contains_prefix(a.addr, a.len)) {
                return Err(outside);
            }
            if answer.msg_type == MessageType::Reply
                && self.owner.get(&(a.addr, a.len)).is_some_and(|&o| o != c)
            {
                return Err(taken);
            }
        }
        Ok(server)
    }

    /// The addresses and prefixes of the IAs the clients ask for, withdrawn ones included.
    fn offered<'r>(&self, answer: &Reply<'r>) -> impl Iterator<Item = Offered> + 'r {
        let ias = self.settings.ias;
        let na = answer.na_leases().filter(move |_| ias.na).map(|a| Offered {
            addr: a.lease,
            len: ADDRESS,
            preferred: a.preferred,
            valid: a.valid,
        });
        let pd = answer.pd_leases().filter(move |_| ias.pd).map(|p| Offered {
            addr: p.lease.0,
            len: p.lease.1,
            preferred: p.preferred,
            valid: p.valid,
        });
        na.chain(pd)
    }

    /// The failure of an answer that lacks one of the IAs the clients ask for, if it does.
    fn missing_ia(&self, answer: &Reply<'_>, lease_needed: bool) -> Option<Failure> {
        let ias = self.settings.ias;
        let lacks = |present: bool, lease: bool| !present || (lease_needed && !lease);
        if ias.na && lacks(answer.na.present, answer.na.lease.is_some()) {
            Some(Failure::NoAddress)
        } else if ias.pd && lacks(answer.pd.present, answer.pd.lease.is_some()) {
            Some(Failure::NoPrefix)
        } else {
            None
        }
    }

    fn on_advertise(&mut self, c: u32, now: u32, server: u8, answer: &Reply<'_>, out: &mut Outbox) {
        let preference = answer.preference.unwrap_or(0);
        if let Some(failure) = self.missing_ia(answer, true) {
            // An Advertise without addresses is not an offer (RFC 9915 §18.2.9); nor is one
            // without the prefix asked for.
            self.stats.fail(failure);
            return;
        }
        // The Request names the offered address; an IA_PD goes out empty and the server
        // delegates again what it offered.
        let offer = answer.na.lease.unwrap_or(Ipv6Addr::UNSPECIFIED);
        let client = &mut self.clients[c as usize];
        if client.offer_server == 0 || preference > client.offer_pref {
            client.offer = offer;
            client.offer_server = server;
            client.offer_pref = preference;
        }
        // RFC 9915 §18.2.1, in substance: an Advertise with Preference 255 is taken at once;
        // otherwise the client collects until the first RT ends and takes the best; after
        // that, the first Advertise that arrives ends the Solicit.
        if preference == 255 || !client.has(COLLECTING) {
            let chosen = client.offer_server;
            self.request(c, now, chosen, out);
        }
    }

    fn on_reply(&mut self, c: u32, now: u32, server: u8, answer: &Reply<'_>, out: &mut Outbox) {
        self.servers[usize::from(server - 1)].replies += 1;
        let state = self.clients[c as usize].state;
        let no_binding = |status: Option<StatusCode>| status == Some(StatusCode::NoBinding);
        if state != State::Requesting
            && (no_binding(answer.na.status) || no_binding(answer.pd.status))
        {
            // RFC 9915 §18.2.10.1, in substance: an IA with NoBinding in the Reply to a
            // Renew or Rebind makes the client Request it from the server that answered.
            self.stats.no_binding += 1;
            let addr = self.clients[c as usize]
                .leases
                .iter()
                .flatten()
                .find(|l| l.len == ADDRESS)
                .map(|l| l.addr);
            self.clients[c as usize].offer = addr.unwrap_or(Ipv6Addr::UNSPECIFIED);
            self.request(c, now, server, out);
            return;
        }
        if let Some(failure) = self.missing_ia(answer, false) {
            // No IA at all: nothing to apply; the retransmissions go on.
            self.stats.fail(failure);
            return;
        }
        let mut shortest_preferred = u32::MAX;
        let mut added = false;
        // RFC 9915 §18.2.10.1, in substance: a lease with valid lifetime 0 in the Reply is
        // discarded; new ones are added, known ones get the new lifetimes. Withdrawals come
        // first so that they make room for what replaces them.
        let offered: Vec<Offered> = self.offered(answer).collect();
        for a in offered.iter().filter(|a| a.valid == 0) {
            let client = &mut self.clients[c as usize];
            let key = (a.addr, a.len);
            if let Some(slot) = client
                .leases
                .iter()
                .position(|l| l.is_some_and(|l| l.key() == key))
            {
                client.leases[slot] = None;
                self.stats.zeroed += 1;
                self.release_owner(c, key);
            }
        }
        for a in offered.iter().filter(|a| a.valid > 0) {
            let client = &mut self.clients[c as usize];
            let key = (a.addr, a.len);
            let slot = client
                .leases
                .iter()
                .position(|l| l.is_some_and(|l| l.key() == key));
            shortest_preferred = shortest_preferred.min(a.preferred);
            let valid_until = now.saturating_add(a.valid.saturating_mul(1000).min(u32::MAX / 4));
            let lease = Lease {
                addr: a.addr,
                len: a.len,
                valid_until,
            };
            match slot.or_else(|| client.leases.iter().position(Option::is_none)) {
                Some(slot) => {
                    client.leases[slot] = Some(lease);
                    self.owner.insert(key, c);
                    added = true;
                }
                None => self.stats.ignored += 1,
            }
        }
        if !added {
            // Nothing usable: a Request answered with NoAddrsAvail, or a Renew whose
            // addresses were all withdrawn.
            if state == State::Requesting {
                self.stats.no_address += 1;
            }
            self.clients[c as usize].server = server;
            self.recount(c, now);
            if !self.clients[c as usize].holds_any() {
                if state == State::Requesting {
                    // Solicit again after one initial RT rather than at once, so a server
                    // that offers and then refuses is not asked in a tight loop.
                    self.begin(c, now, State::Soliciting, 0);
                    let irt = self.settings.initial_rt_ms.max(1);
                    let client = &mut self.clients[c as usize];
                    client.offer_server = 0;
                    client.flags &= !COLLECTING;
                    client.next_tx = now.saturating_add(irt);
                } else {
                    self.solicit(c, now, out);
                }
                return;
            }
        }
        // One T1/T2 for the client: the IA_NA's, else the IA_PD's.
        let (t1, t2) = if self.settings.ias.na {
            (answer.na.t1, answer.na.t2)
        } else {
            (answer.pd.t1, answer.pd.t2)
        };
        let t1_ms = self.timer_ms(t1, shortest_preferred, 0.5);
        let t2_ms = self.timer_ms(t2, shortest_preferred, 0.8).max(t1_ms);
        self.last_t1_ms = t1_ms;
        let jitter = (f64::from(t1_ms) * self.settings.renew_jitter * self.unit()) as u32;
        let client = &mut self.clients[c as usize];
        client.server = server;
        client.state = State::Bound;
        client.t2_at = now.saturating_add(t2_ms);
        client.t1_at = now
            .saturating_add(t1_ms)
            .saturating_add(jitter)
            .min(client.t2_at);
        if matches!(state, State::Renewing | State::Rebinding) && !client.has(RENEWED) {
            client.flags |= RENEWED;
            self.renewed += 1;
        }
        self.recount(c, now);
    }

    /// T1 or T2 in ms; 0 from the server leaves the choice to the client (RFC 9915 §21.4),
    /// which takes `fraction` of the shortest preferred lifetime.
    fn timer_ms(&self, seconds: u32, shortest_preferred: u32, fraction: f64) -> u32 {
        let seconds = if seconds == 0 || seconds == u32::MAX {
            if shortest_preferred == u32::MAX || shortest_preferred == 0 {
                1
            } else {
                (f64::from(shortest_preferred) * fraction).max(1.0) as u32
            }
        } else {
            seconds
        };
        seconds.saturating_mul(1000).min(u32::MAX / 4)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl Scenario for Hold {
    fn poll(&mut self, now_ns: u64, out: &mut Outbox) {
        Hold::poll(self, now_ns, out);
    }

    fn handle_datagram(&mut self, now_ns: u64, datagram: &[u8], out: &mut Outbox) {
        Hold::handle_datagram(self, now_ns, datagram, out);
    }

    fn wait(&self, _now_ns: u64) -> Duration {
        // Timers run in milliseconds.
        Duration::from_millis(1)
    }

    fn is_finished(&self, now_ns: u64) -> bool {
        now_ns >= self.end_ns
    }

    fn mark(&mut self, now_ns: u64) {
        Hold::mark(self, now_ns);
    }
}

#[cfg(test)]
mod tests {
    use xdhcp6_proto::{DhcpOption, MessageWriter, Packet};

    use super::*;
    use crate::population::IAID_NA;

    const SERVER_A: [u8; 10] = [0, 3, 0, 1, 0xaa, 0, 0, 0, 0, 0xa];
    const SERVER_B: [u8; 10] = [0, 3, 0, 1, 0xbb, 0, 0, 0, 0, 0xb];

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn hold(clients: u32) -> Hold {
        let mut settings =
            HoldSettings::new(Population::new(clients, 0, 0xbe, "::/0".parse().unwrap()));
        settings.ramp_up_ms = 0;
        settings.expect_ranges = vec!["2001:db8:1::/64".parse().unwrap()];
        Hold::new(settings)
    }

    /// A server answer to client 0's outstanding message.
    struct Say {
        msg_type: MessageType,
        server: [u8; 10],
        preference: Option<u8>,
        addresses: Vec<(Ipv6Addr, u32)>,
        ia_status: Option<StatusCode>,
    }

    fn answer_to(request: &[u8], say: &Say) -> Vec<u8> {
        let Packet::Client(m) = Packet::parse(request).unwrap() else {
            panic!("relayed")
        };
        let client_id = m
            .options()
            .find_map(|o| match o.unwrap() {
                DhcpOption::ClientId(d) => Some(d.as_bytes().to_vec()),
                _ => None,
            })
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let mut w = MessageWriter::client(&mut buf, say.msg_type, m.transaction_id()).unwrap();
        w.client_id(&client_id).unwrap();
        w.server_id(&say.server).unwrap();
        if let Some(p) = say.preference {
            w.preference(p).unwrap();
        }
        let addresses = say.addresses.clone();
        let status = say.ia_status;
        w.ia_na(IAID_NA, 10, 16, |w| {
            for (a, valid) in addresses {
                w.ia_address(a, valid.min(20), valid)?;
            }
            if let Some(code) = status {
                w.status_code(code, "")?;
            }
            Ok(())
        })
        .unwrap();
        let n = w.finish().unwrap();
        buf.truncate(n);
        buf
    }

    fn sent(out: &mut Outbox) -> Vec<Vec<u8>> {
        let v = out.iter().map(<[u8]>::to_vec).collect();
        out.clear();
        v
    }

    fn msg_type(datagram: &[u8]) -> MessageType {
        Packet::parse(datagram).unwrap().msg_type()
    }

    fn server_id(datagram: &[u8]) -> Option<Vec<u8>> {
        let Packet::Client(m) = Packet::parse(datagram).unwrap() else {
            return None;
        };
        m.options().find_map(|o| match o.unwrap() {
            DhcpOption::ServerId(d) => Some(d.as_bytes().to_vec()),
            _ => None,
        })
    }

    fn advertise(server: [u8; 10], preference: u8, addr: &str) -> Say {
        Say {
            msg_type: MessageType::Advertise,
            server,
            preference: Some(preference),
            addresses: vec![(ip(addr), 30)],
            ia_status: None,
        }
    }

    fn reply(server: [u8; 10], addresses: &[(&str, u32)]) -> Say {
        Say {
            msg_type: MessageType::Reply,
            server,
            preference: None,
            addresses: addresses.iter().map(|&(a, v)| (ip(a), v)).collect(),
            ia_status: None,
        }
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn preference_255_is_taken_at_once_and_the_second_advertise_is_extra() {
        let mut h = hold(1);
        let mut out = Outbox::default();
        h.poll(0, &mut out);
        let solicit = sent(&mut out).remove(0);
        assert_eq!(msg_type(&solicit), MessageType::Solicit);
        h.handle_datagram(
            S / 100,
            &answer_to(&solicit, &advertise(SERVER_B, 0, "2001:db8:1:0:8000::1")),
            &mut out,
        );
        assert!(out.is_empty(), "preference 0: keep collecting");
        h.handle_datagram(
            S / 50,
            &answer_to(&solicit, &advertise(SERVER_A, 255, "2001:db8:1::1")),
            &mut out,
        );
        let request = sent(&mut out).remove(0);
        assert_eq!(msg_type(&request), MessageType::Request);
        assert_eq!(server_id(&request), Some(SERVER_A.to_vec()));
        assert_eq!(h.servers().len(), 2);
        assert_eq!(h.servers()[1].preference, 255);
    }

    #[test]
    fn without_255_the_best_offer_wins_when_the_window_ends() {
        let mut h = hold(1);
        let mut out = Outbox::default();
        h.poll(0, &mut out);
        let solicit = sent(&mut out).remove(0);
        h.handle_datagram(
            S / 100,
            &answer_to(&solicit, &advertise(SERVER_B, 7, "2001:db8:1::b")),
            &mut out,
        );
        h.handle_datagram(
            S / 100,
            &answer_to(&solicit, &advertise(SERVER_A, 9, "2001:db8:1::a")),
            &mut out,
        );
        assert!(out.is_empty());
        // The first RT is between 1.0 and 1.1 s.
        h.poll(S * 11 / 10 + 1, &mut out);
        let request = sent(&mut out).remove(0);
        assert_eq!(server_id(&request), Some(SERVER_A.to_vec()));
    }

    /// Binds client 0 to A with `address`, valid `valid` s, at time 0.
    fn bound(valid: u32) -> (Hold, Outbox) {
        let mut h = hold(1);
        let mut out = Outbox::default();
        h.poll(0, &mut out);
        let solicit = sent(&mut out).remove(0);
        h.handle_datagram(
            0,
            &answer_to(&solicit, &advertise(SERVER_A, 255, "2001:db8:1::1")),
            &mut out,
        );
        let request = sent(&mut out).remove(0);
        h.handle_datagram(
            0,
            &answer_to(&request, &reply(SERVER_A, &[("2001:db8:1::1", valid)])),
            &mut out,
        );
        assert_eq!(h.in_service(), 1);
        assert_eq!(h.addresses(0), [ip("2001:db8:1::1")]);
        (h, out)
    }

    #[test]
    fn renew_at_t1_to_the_server_then_rebind_at_t2_to_all() {
        let (mut h, mut out) = bound(30);
        h.poll(9 * S, &mut out);
        assert!(out.is_empty());
        // T1 = 10 s plus at most 5 % jitter.
        h.poll(10 * S + S / 2 + 1, &mut out);
        let renew = sent(&mut out).remove(0);
        assert_eq!(msg_type(&renew), MessageType::Renew);
        assert_eq!(server_id(&renew), Some(SERVER_A.to_vec()));
        // Unanswered Renews are retransmitted until T2 (16 s), then a Rebind goes out.
        let mut renews = 1;
        let mut rebind = None;
        for ms in (10_600..16_001).step_by(10) {
            h.poll(ms * MS, &mut out);
            for m in sent(&mut out) {
                match msg_type(&m) {
                    MessageType::Renew => renews += 1,
                    MessageType::Rebind => rebind = Some(m),
                    other => panic!("{other:?}"),
                }
            }
        }
        assert!((3..=5).contains(&renews), "{renews}");
        let rebind = rebind.expect("a Rebind at T2");
        assert_eq!(server_id(&rebind), None);
        // B answers: A's address with lifetime 0, a new one of its own.
        let answer = reply(
            SERVER_B,
            &[("2001:db8:1::1", 0), ("2001:db8:1:0:8000::5", 30)],
        );
        // B must have been heard in an Advertise first.
        h.handle_datagram(16 * S + 1, &answer_to(&rebind, &answer), &mut out);
        assert_eq!(h.stats().failures_of_wrong_server(), 1);
        h.servers.push(ServerInfo {
            duid: hex(&SERVER_B),
            raw: SERVER_B.to_vec(),
            ..ServerInfo::default()
        });
        h.handle_datagram(16 * S + 2, &answer_to(&rebind, &answer), &mut out);
        assert_eq!(h.addresses(0), [ip("2001:db8:1:0:8000::5")]);
        assert_eq!(h.stats().zeroed, 1);
        assert_eq!(h.bound_to(1), 1);
        assert_eq!(h.renewed(), 1);
        assert_eq!(h.out_of_service(), 0);
        assert_eq!(h.outages().count(), 0);
    }

    impl HoldStats {
        fn failures_of_wrong_server(&self) -> u64 {
            self.failures[Failure::ALL
                .iter()
                .position(|&f| f == Failure::WrongServerId)
                .unwrap()]
        }
    }

    #[test]
    fn expiry_takes_the_client_out_of_service_and_back_to_solicit() {
        let (mut h, mut out) = bound(12);
        h.poll(11 * S, &mut out);
        sent(&mut out);
        h.poll(12 * S, &mut out);
        let again = sent(&mut out);
        assert!(
            again.iter().any(|m| msg_type(m) == MessageType::Solicit),
            "starts over"
        );
        assert_eq!(h.out_of_service(), 1);
        assert_eq!(h.in_service(), 0);
        assert_eq!(h.stats().expired, 1);
        let solicit = again
            .into_iter()
            .find(|m| msg_type(m) == MessageType::Solicit)
            .unwrap();
        h.handle_datagram(
            12 * S + S / 2,
            &answer_to(&solicit, &advertise(SERVER_A, 255, "2001:db8:1::2")),
            &mut out,
        );
        let request = sent(&mut out).remove(0);
        h.handle_datagram(
            13 * S,
            &answer_to(&request, &reply(SERVER_A, &[("2001:db8:1::2", 30)])),
            &mut out,
        );
        assert_eq!(h.out_of_service(), 0);
        assert_eq!(h.outages().count(), 1);
        // One second without an address, in microseconds.
        assert_eq!(h.outages().max(), 1_000_000);
        let summary = h.summary(14 * S);
        assert_eq!(summary.clients_lost_service, 1);
        assert_eq!(summary.never_recovered, 0);
    }

    #[test]
    fn validation_failures_are_counted_and_the_reply_ignored() {
        let mut h = hold(2);
        let mut out = Outbox::default();
        h.poll(0, &mut out);
        let solicits = sent(&mut out);
        let outside = advertise(SERVER_A, 255, "2001:db8:2::1");
        h.handle_datagram(1, &answer_to(&solicits[0], &outside), &mut out);
        assert!(out.is_empty());
        assert_eq!(h.stats().total_failures(), 1);
        // Both clients are offered, and given, the same address.
        for s in &solicits {
            h.handle_datagram(
                2,
                &answer_to(s, &advertise(SERVER_A, 255, "2001:db8:1::7")),
                &mut out,
            );
        }
        let requests = sent(&mut out);
        for r in &requests {
            h.handle_datagram(
                3,
                &answer_to(r, &reply(SERVER_A, &[("2001:db8:1::7", 30)])),
                &mut out,
            );
        }
        assert_eq!(h.in_service(), 1);
        assert_eq!(
            h.stats().failures[Failure::ALL
                .iter()
                .position(|&f| f == Failure::DuplicateAddress)
                .unwrap()],
            1
        );
        // A Reply from the wrong server to a Request, and one with an old xid.
        let (mut h, mut out) = bound(30);
        h.poll(11 * S, &mut out);
        let renew = sent(&mut out).remove(0);
        h.servers.push(ServerInfo {
            duid: hex(&SERVER_B),
            raw: SERVER_B.to_vec(),
            ..ServerInfo::default()
        });
        h.handle_datagram(
            11 * S,
            &answer_to(&renew, &reply(SERVER_B, &[("2001:db8:1::1", 30)])),
            &mut out,
        );
        assert_eq!(h.stats().failures_of_wrong_server(), 1);
    }

    #[test]
    fn no_binding_leads_to_a_request() {
        let (mut h, mut out) = bound(30);
        h.poll(11 * S, &mut out);
        let renew = sent(&mut out).remove(0);
        let mut answer = reply(SERVER_A, &[]);
        answer.ia_status = Some(StatusCode::NoBinding);
        h.handle_datagram(11 * S, &answer_to(&renew, &answer), &mut out);
        let request = sent(&mut out).remove(0);
        assert_eq!(msg_type(&request), MessageType::Request);
        assert_eq!(server_id(&request), Some(SERVER_A.to_vec()));
        assert_eq!(h.stats().no_binding, 1);
        assert_eq!(h.in_service(), 1, "the address is still valid");
    }

    #[test]
    fn garbage_never_panics() {
        let (mut h, mut out) = bound(30);
        h.poll(11 * S, &mut out);
        let renew = sent(&mut out).remove(0);
        let good = answer_to(&renew, &reply(SERVER_A, &[("2001:db8:1::1", 30)]));
        let mut x = 0x1234_5678_u64;
        for i in 0..20_000 {
            let mut bytes = good.clone();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = (x as usize) % bytes.len();
            bytes[at] ^= (x >> 32) as u8 | 1;
            if i % 3 == 0 {
                bytes.truncate((x >> 40) as usize % (bytes.len() + 1));
            }
            h.handle_datagram(11 * S, &bytes, &mut out);
        }
        h.handle_datagram(11 * S, &[], &mut out);
        h.handle_datagram(11 * S, &[7; 3], &mut out);
        assert!(h.stats().received > 20_000);
    }

    #[test]
    fn the_plot_marks_the_kill() {
        let (mut h, _) = bound(30);
        h.sample(S);
        h.mark(S + 1);
        h.sample(2 * S);
        let summary = h.summary(2 * S);
        let doc = summary.svg("hold <test>");
        assert!(doc.contains("server killed"));
        assert!(doc.contains("&lt;test&gt;"));
        assert!(doc.trim_end().ends_with("</svg>"));
        assert!(summary.table().contains("clients that lost service"));
        let v = serde_json::to_value(&summary).unwrap();
        assert_eq!(v["clients_bound"], 1);
        assert_eq!(v["timeline"][0]["in_service"], 1);
        assert_eq!(v["servers"][0]["duid"], hex(&SERVER_A));
    }

    #[test]
    fn relayed_clients_take_answers_through_their_own_relay_only() {
        let link = "2001:db8:1::/64".parse().unwrap();
        let mut settings = HoldSettings::new(Population::new(1, 1, 0xbe, link));
        settings.ramp_up_ms = 0;
        let mut h = Hold::new(settings);
        let mut out = Outbox::default();
        h.poll(0, &mut out);
        let (sender, forward) = out
            .iter_with_senders()
            .map(|(s, d)| (s, d.to_vec()))
            .next()
            .unwrap();
        out.clear();
        assert_eq!(sender.relay, Some(0));
        let Packet::Relay(r) = Packet::parse(&forward).unwrap() else {
            panic!("not relayed")
        };
        assert_eq!(r.msg_type(), MessageType::RelayForw);
        let interface_id = r
            .options()
            .find_map(|o| match o.unwrap() {
                DhcpOption::InterfaceId(id) => Some(id.to_vec()),
                _ => None,
            })
            .unwrap();
        let offer = answer_to(
            r.relayed_message().unwrap(),
            &advertise(SERVER_A, 255, "2001:db8:1::1"),
        );
        let relay_reply = |interface_id: &[u8]| {
            let mut buf = vec![0u8; 1024];
            let mut w = MessageWriter::relay(
                &mut buf,
                MessageType::RelayRepl,
                0,
                r.link_address(),
                r.peer_address(),
            )
            .unwrap();
            w.interface_id(interface_id).unwrap();
            w.relay_msg(&offer).unwrap();
            let n = w.finish().unwrap();
            buf.truncate(n);
            buf
        };
        h.handle_datagram(1, &offer, &mut out);
        h.handle_datagram(1, &relay_reply(b"elsewhere"), &mut out);
        assert!(out.is_empty());
        let bad_relay = Failure::ALL
            .iter()
            .position(|&f| f == Failure::BadRelay)
            .unwrap();
        assert_eq!(h.stats().failures[bad_relay], 2);
        h.handle_datagram(1, &relay_reply(&interface_id), &mut out);
        let request = sent(&mut out).remove(0);
        let Packet::Relay(r) = Packet::parse(&request).unwrap() else {
            panic!("not relayed")
        };
        assert_eq!(msg_type(r.relayed_message().unwrap()), MessageType::Request);
    }

    #[test]
    fn one_client_stays_small() {
        assert!(size_of::<Client>() <= 128, "{}", size_of::<Client>());
    }
}
