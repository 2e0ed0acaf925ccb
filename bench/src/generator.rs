//! The flow scenarios (`sarr`, `rapid`, `renew`, `rebind`, `release`, `info`, `pd`, `na+pd`,
//! `mix`, `echo`), sans-IO: per-client state machines, validation, statistics.
//!
//! [`Generator::poll`] starts the flows the schedule says are due and expires timeouts;
//! [`Generator::handle_datagram`] validates a reply and queues the client's next message.
//! Both take the time as nanoseconds since any fixed origin and write outgoing datagrams into
//! an [`Outbox`]; nothing here touches a socket or the clock.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;
use std::time::Duration;

use xdhcp6_proto::{MessageType, StatusCode, WriteError};

use crate::message::{ClientMessage, Exchange, IaSet, Reply, echo_xid, relay_matches, sender_of};
use crate::pacing::Pacer;
use crate::population::{Population, Prefix};
use crate::scenario::{MAX_DATAGRAM, Outbox, Scenario};
use crate::stats::{Failure, Stats};

/// Transaction ids are 24 bits (RFC 9915 §8): one slot each maps a reply to its client.
const XID_SPACE: usize = 1 << 24;
/// Marks a `by_xid` slot whose request timed out, so that its late reply is told apart from
/// a wrong transaction id (client indexes stay below 2^30).
const LATE: u32 = 1 << 31;
/// Marks a `by_xid` slot whose request was answered: a second answer (another server's
/// Advertise to a multicast Solicit, RFC 6853) is extra, not wrong.
const ANSWERED: u32 = 1 << 30;
/// Either mark: the slot is free for a new transaction.
const DONE: u32 = LATE | ANSWERED;
/// The Server Identifier of echo Requests, as long as a DUID-LLT, so that an echo Request is
/// the size of a real one.
const ECHO_SERVER_ID: &[u8] = &[0, 1, 0, 1, 0x2e, 0, 0, 0, 0x02, 0xec, 0x40, 0, 0, 1];

/// What one client does in one flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flow {
    /// Solicit, Advertise, Request, Reply.
    Sarr,
    /// Solicit with Rapid Commit, Reply.
    Rapid,
    /// Renew a binding (obtained first with SARR when the client has none).
    Renew,
    /// Rebind a binding (obtained first with SARR when the client has none).
    Rebind,
    /// Release a binding (obtained first with SARR when the client has none).
    Release,
    /// Information-request, Reply.
    Info,
    /// SARR for a delegated prefix only.
    Pd,
    /// SARR for an address and a delegated prefix.
    NaPd,
    /// A Solicit and then a Request sent to a reflector (`xdhcp6-reflect`), each expected back
    /// unchanged: the cost of the link and the transports without a server's work. Two round
    /// trips, like `sarr`, so echo flows/s compare with SARR exchanges/s.
    Echo,
}

impl Flow {
    /// Every flow a DHCPv6 server answers ([`Flow::Echo`] needs a reflector instead).
    pub const ALL: [Flow; 8] = [
        Flow::Sarr,
        Flow::Rapid,
        Flow::Renew,
        Flow::Rebind,
        Flow::Release,
        Flow::Info,
        Flow::Pd,
        Flow::NaPd,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Flow::Sarr => "sarr",
            Flow::Rapid => "rapid",
            Flow::Renew => "renew",
            Flow::Rebind => "rebind",
            Flow::Release => "release",
            Flow::Info => "info",
            Flow::Pd => "pd",
            Flow::NaPd => "na+pd",
            Flow::Echo => "echo",
        }
    }

    /// The exchange after `done` for a client that now holds a binding, or `None` when the
    /// flow is complete.
    fn after(self, done: Exchange) -> Option<Exchange> {
        match (self, done) {
            (Flow::Renew, Exchange::Solicit | Exchange::Request) => Some(Exchange::Renew),
            (Flow::Rebind, Exchange::Solicit | Exchange::Request) => Some(Exchange::Rebind),
            (Flow::Release, Exchange::Solicit | Exchange::Request) => Some(Exchange::Release),
            _ => None,
        }
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Flow {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Flow::ALL
            .into_iter()
            .chain([Flow::Echo])
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown scenario {s:?}"))
    }
}

/// The flows a run starts: one kind, or a weighted mix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flows {
    /// Every flow the same.
    One(Flow),
    /// Flows chosen by weight, e.g. `sarr=70,renew=20,release=10`.
    Mix(Vec<(Flow, u32)>),
}

impl Flows {
    /// Parses a mix such as `sarr=70,renew=20,info=10`.
    pub fn mix(spec: &str) -> Result<Self, String> {
        let mut weights = Vec::new();
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected SCENARIO=WEIGHT"))?;
            let flow: Flow = name.trim().parse()?;
            if flow == Flow::Echo {
                return Err("echo needs a reflector and cannot be mixed with other flows".into());
            }
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|e| format!("{part:?}: {e}"))?;
            if weight > 0 {
                weights.push((flow, weight));
            }
        }
        if weights.is_empty() {
            return Err("a mix needs at least one positive weight".into());
        }
        Ok(Flows::Mix(weights))
    }

    /// The flow number `n` runs (deterministic in `n`).
    pub fn pick(&self, n: u64) -> Flow {
        match self {
            Flows::One(flow) => *flow,
            Flows::Mix(weights) => {
                let total: u64 = weights.iter().map(|&(_, w)| u64::from(w)).sum();
                let mut point = splitmix64(n) % total.max(1);
                for &(flow, w) in weights {
                    if point < u64::from(w) {
                        return flow;
                    }
                    point -= u64::from(w);
                }
                weights[0].0
            }
        }
    }

    /// The name in reports.
    pub fn describe(&self) -> String {
        match self {
            Flows::One(flow) => flow.name().to_string(),
            Flows::Mix(weights) => {
                let parts: Vec<String> = weights.iter().map(|(f, w)| format!("{f}={w}")).collect();
                format!("mix({})", parts.join(","))
            }
        }
    }
}

/// The address an echo Request carries in its IA_NA (any address: the reflector does not read
/// it; it makes the message as long as a real Request).
fn echo_address(exchange: Exchange, c: u32) -> Option<Ipv6Addr> {
    (exchange == Exchange::Request).then(|| {
        let c = c.to_be_bytes();
        Ipv6Addr::from([
            0x20, 0x01, 0x0d, 0xb8, 0, 0xec, 0, 0, 0, 0, 0, 0, c[0], c[1], c[2], c[3],
        ])
    })
}

fn splitmix64(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Everything a generator needs to know up front.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The flows to run.
    pub scenario: Flows,
    /// The IAs of `sarr`, `rapid` and of the first binding of `renew`/`rebind`/`release`.
    pub ias: IaSet,
    /// The clients.
    pub population: Population,
    /// A request unanswered this long is lost.
    pub timeout_ns: u64,
    /// Every address must lie here.
    pub expect_range: Option<Prefix>,
    /// Every delegated prefix must lie here.
    pub expect_pd_range: Option<Prefix>,
}

/// One client's state between datagrams.
#[derive(Clone, Copy, Debug)]
struct Client {
    /// A flow is running (a request is outstanding).
    busy: bool,
    flow: Flow,
    /// The outstanding exchange.
    exchange: Exchange,
    ias: IaSet,
    rapid: bool,
    xid: u32,
    sent_ns: u64,
    /// 1 + index into `Generator::servers`, 0 for none yet.
    server: u16,
    address: Option<Ipv6Addr>,
    prefix: Option<(Ipv6Addr, u8)>,
}

impl Client {
    const IDLE: Client = Client {
        busy: false,
        flow: Flow::Sarr,
        exchange: Exchange::Solicit,
        ias: IaSet::NONE,
        rapid: false,
        xid: 0,
        sent_ns: 0,
        server: 0,
        address: None,
        prefix: None,
    };

    fn bound_ias(&self) -> IaSet {
        IaSet {
            na: self.address.is_some(),
            pd: self.prefix.is_some(),
        }
    }
}

/// What a valid reply tells the client.
struct Accepted {
    server: Option<u16>,
    address: Option<Ipv6Addr>,
    prefix: Option<(Ipv6Addr, u8)>,
}

/// The load generator's state.
pub struct Generator {
    settings: Settings,
    clients: Vec<Client>,
    /// Client index + 1 for each outstanding transaction id, 0 for free.
    by_xid: Vec<u32>,
    next_xid: u32,
    deadlines: VecDeque<(u64, u32)>,
    /// Server DUIDs seen in Advertise/Reply messages.
    servers: Vec<Vec<u8>>,
    address_owner: HashMap<Ipv6Addr, u32>,
    prefix_owner: HashMap<(Ipv6Addr, u8), u32>,
    pacer: Pacer,
    end_ns: u64,
    cursor: u32,
    /// The clients this generator starts flows for (see [`Generator::restrict`]); `None`: all.
    members: Option<Vec<u32>>,
    flows: u64,
    in_flight: u64,
    stats: Stats,
    /// The scenario is [`Flow::Echo`]: datagrams are echoes, not replies.
    echo: bool,
    /// Where an echo's expected bytes are rebuilt.
    scratch: Vec<u8>,
}

impl Generator {
    /// A generator with every client idle and no schedule yet (see [`Generator::start`]).
    pub fn new(settings: Settings) -> Self {
        let n = settings.population.len() as usize;
        Self {
            clients: vec![Client::IDLE; n],
            by_xid: vec![0; XID_SPACE],
            next_xid: 0,
            deadlines: VecDeque::new(),
            servers: Vec::new(),
            address_owner: HashMap::new(),
            prefix_owner: HashMap::new(),
            pacer: Pacer::new(0.0, 0),
            end_ns: 0,
            cursor: 0,
            members: None,
            flows: 0,
            in_flight: 0,
            stats: Stats::default(),
            echo: settings.scenario == Flows::One(Flow::Echo),
            scratch: vec![0; MAX_DATAGRAM],
            settings,
        }
    }

    /// Starts flows at `rate` per second from `now_ns` for `duration_ns` (again, for a ramp).
    pub fn start(&mut self, now_ns: u64, rate: f64, duration_ns: u64) {
        self.reserve_owners();
        self.pacer = Pacer::new(rate, now_ns);
        self.end_ns = now_ns.saturating_add(duration_ns);
    }

    /// Sizes the address and prefix owner maps for every client this generator runs, so that
    /// they never grow while it sends: growing one rehashes every entry, a stall of several
    /// milliseconds at a few hundred thousand bound clients during which nothing is sent or
    /// received, which the flows in flight would count as the server's latency.
    fn reserve_owners(&mut self) {
        if self.echo {
            return;
        }
        let clients = self.members.as_ref().map_or(self.clients.len(), Vec::len);
        if self.settings.ias.na {
            let len = self.address_owner.len();
            self.address_owner.reserve(clients.saturating_sub(len));
        }
        if self.settings.ias.pd {
            let len = self.prefix_owner.len();
            self.prefix_owner.reserve(clients.saturating_sub(len));
        }
    }

    /// Stops starting flows; outstanding ones still finish or time out.
    pub fn stop(&mut self, now_ns: u64) {
        self.end_ns = self.end_ns.min(now_ns);
    }

    /// Whether the schedule still starts flows at `now_ns`.
    pub fn is_sending(&self, now_ns: u64) -> bool {
        now_ns < self.end_ns
    }

    /// Whether the schedule is over and nothing is outstanding.
    pub fn is_finished(&self, now_ns: u64) -> bool {
        !self.is_sending(now_ns) && !self.owes_flows() && self.in_flight == 0
    }

    /// Whether flows that fell due before the schedule ended are not handed out yet: a loop
    /// that comes back only after the end still starts them, so that every flow of the
    /// schedule is either started or counted as skipped.
    fn owes_flows(&self) -> bool {
        self.end_ns > 0 && self.pacer.released() < self.pacer.allowed(self.end_ns - 1)
    }

    /// Requests waiting for a reply.
    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// Everything counted so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Clients holding an address or a prefix now.
    pub fn bound_clients(&self) -> usize {
        self.clients
            .iter()
            .filter(|c| c.address.is_some() || c.prefix.is_some())
            .count()
    }

    /// Client `client`'s address and delegated prefix, as its last valid reply gave them.
    pub fn binding(&self, client: u32) -> (Option<Ipv6Addr>, Option<(Ipv6Addr, u8)>) {
        self.clients
            .get(client as usize)
            .map_or((None, None), |c| (c.address, c.prefix))
    }

    /// Distinct server DUIDs seen.
    pub fn servers(&self) -> &[Vec<u8>] {
        &self.servers
    }

    /// Expires timeouts and starts the flows due at `now_ns`.
    pub fn poll(&mut self, now_ns: u64, out: &mut Outbox) {
        while let Some(&(deadline, xid)) = self.deadlines.front() {
            if deadline > now_ns {
                break;
            }
            self.deadlines.pop_front();
            let slot = xid as usize;
            let owner = self.by_xid[slot];
            if owner == 0 || owner & DONE != 0 {
                continue;
            }
            self.by_xid[slot] = 0;
            let client = &mut self.clients[owner as usize - 1];
            if client.busy && client.xid == xid {
                client.busy = false;
                self.in_flight -= 1;
                self.stats.timeouts += 1;
                self.by_xid[slot] = owner | LATE;
            }
        }
        if !self.is_sending(now_ns) && !self.owes_flows() {
            return;
        }
        let dropped = self.pacer.dropped();
        let due = self
            .pacer
            .take_due(now_ns.min(self.end_ns.saturating_sub(1)));
        self.stats.skipped += self.pacer.dropped() - dropped;
        for _ in 0..due {
            match self.idle_client() {
                Some(c) => {
                    let flow = self.settings.scenario.pick(self.flows);
                    self.flows += 1;
                    self.start_flow(now_ns, c, flow, out);
                }
                None => self.stats.skipped += 1,
            }
        }
    }

    /// Starts flows only for `clients` (indexes into the population): one generator thread's
    /// share when several drive one population. Flows due while the list is empty are skipped.
    pub fn restrict(&mut self, clients: Vec<u32>) {
        self.members = Some(clients);
        self.cursor = 0;
    }

    fn idle_client(&mut self) -> Option<u32> {
        let n = match &self.members {
            Some(members) => members.len() as u32,
            None => self.settings.population.len(),
        };
        for _ in 0..n.min(64) {
            let i = self.cursor;
            self.cursor = (self.cursor + 1) % n;
            let c = self.members.as_ref().map_or(i, |m| m[i as usize]);
            if !self.clients[c as usize].busy {
                return Some(c);
            }
        }
        None
    }

    fn start_flow(&mut self, now_ns: u64, c: u32, flow: Flow, out: &mut Outbox) {
        let client = &mut self.clients[c as usize];
        let bound = client.bound_ias();
        let has_binding = bound.na || bound.pd;
        let (ias, first) = match flow {
            Flow::Sarr => (self.settings.ias, Exchange::Solicit),
            Flow::Rapid => (self.settings.ias, Exchange::Solicit),
            Flow::Pd => (IaSet::PD, Exchange::Solicit),
            Flow::NaPd => (IaSet::BOTH, Exchange::Solicit),
            Flow::Echo => (self.settings.ias, Exchange::Solicit),
            Flow::Info => (IaSet::NONE, Exchange::Information),
            Flow::Renew | Flow::Rebind | Flow::Release if has_binding => {
                let next = flow.after(Exchange::Request).unwrap_or(Exchange::Renew);
                (bound, next)
            }
            Flow::Renew | Flow::Rebind | Flow::Release => (self.settings.ias, Exchange::Solicit),
        };
        client.busy = true;
        client.flow = flow;
        client.ias = ias;
        client.rapid = flow == Flow::Rapid;
        self.stats.flows_started += 1;
        if has_binding {
            self.stats.flows_known += 1;
        }
        let (address, prefix) = if first == Exchange::Solicit || first == Exchange::Information {
            (None, None)
        } else {
            (client.address, client.prefix)
        };
        self.send(now_ns, c, first, address, prefix, out);
    }

    fn alloc_xid(&mut self) -> u32 {
        loop {
            self.next_xid = self.next_xid % (XID_SPACE as u32 - 1) + 1;
            let owner = self.by_xid[self.next_xid as usize];
            if owner == 0 || owner & DONE != 0 {
                return self.next_xid;
            }
        }
    }

    fn send(
        &mut self,
        now_ns: u64,
        c: u32,
        exchange: Exchange,
        address: Option<Ipv6Addr>,
        prefix: Option<(Ipv6Addr, u8)>,
        out: &mut Outbox,
    ) {
        let xid = self.alloc_xid();
        self.by_xid[xid as usize] = c + 1;
        self.in_flight += 1;
        self.deadlines
            .push_back((now_ns.saturating_add(self.settings.timeout_ns), xid));
        self.stats.sent[exchange.index()] += 1;
        let client = &mut self.clients[c as usize];
        client.xid = xid;
        client.exchange = exchange;
        client.sent_ns = now_ns;
        let sender = sender_of(&self.settings.population, c);
        // A 1500-byte buffer holds every message built here; a failure would be a bug in this
        // crate, and the request then simply times out and is counted as lost.
        let _ = out.push(sender, |buf| self.write_message(c, address, prefix, buf));
    }

    /// Writes client `c`'s message for its current exchange and transaction id.
    fn write_message(
        &self,
        c: u32,
        address: Option<Ipv6Addr>,
        prefix: Option<(Ipv6Addr, u8)>,
        buf: &mut [u8],
    ) -> Result<usize, WriteError> {
        let client = self.clients[c as usize];
        let exchange = client.exchange;
        let population = &self.settings.population;
        let duid = population.duid(c);
        // RFC 9915 §16, in substance: Request, Renew and Release name the chosen server;
        // a Rebind with a Server Identifier is discarded.
        let server_id = match exchange {
            Exchange::Request if client.flow == Flow::Echo => Some(ECHO_SERVER_ID),
            Exchange::Request | Exchange::Renew | Exchange::Release => client
                .server
                .checked_sub(1)
                .and_then(|i| self.servers.get(usize::from(i)))
                .map(Vec::as_slice),
            _ => None,
        };
        let msg = ClientMessage {
            exchange,
            xid: client.xid,
            client_id: duid.as_bytes(),
            server_id,
            elapsed: 0,
            ias: client.ias,
            addresses: address.as_slice(),
            prefixes: prefix.as_slice(),
            rapid_commit: client.rapid,
            relay: None,
        };
        msg.write_as(population, c, buf)
    }

    /// Validates a datagram from the server at `now_ns` and queues the client's next message.
    pub fn handle_datagram(&mut self, now_ns: u64, datagram: &[u8], out: &mut Outbox) {
        self.stats.received += 1;
        if self.echo {
            self.handle_echo(now_ns, datagram, out);
            return;
        }
        let Ok(reply) = Reply::parse(datagram) else {
            self.stats.fail(Failure::Malformed);
            return;
        };
        let Some(c) = self.claim(now_ns, reply.xid) else {
            return;
        };
        let client = self.clients[c as usize];
        match self.validate(c, &client, &reply) {
            Ok(mut accepted) => {
                if accepted.server.is_none()
                    && let Some(id) = reply.server_id
                {
                    accepted.server = self.server_slot(id);
                }
                self.advance(now_ns, c, reply.msg_type, accepted, out);
            }
            Err(failure) => {
                self.stats.fail(failure);
                self.stats.flows_failed += 1;
                self.clients[c as usize].busy = false;
            }
        }
    }

    /// Finds the client waiting for transaction `xid` and marks it answered; `None` (counted)
    /// for a late, extra or unknown answer.
    fn claim(&mut self, now_ns: u64, xid: u32) -> Option<u32> {
        let slot = xid as usize & (XID_SPACE - 1);
        let owner = self.by_xid[slot];
        if owner & LATE != 0 {
            // Already counted as lost; a slow server is not a wrong one.
            self.by_xid[slot] = 0;
            self.stats.late += 1;
            return None;
        }
        if owner & ANSWERED != 0 {
            self.stats.extra += 1;
            return None;
        }
        if owner == 0 {
            self.stats.fail(Failure::UnknownXid);
            return None;
        }
        let c = owner - 1;
        let client = self.clients[c as usize];
        if !client.busy || client.xid != xid {
            self.stats.fail(Failure::UnknownXid);
            return None;
        }
        self.by_xid[slot] = owner | ANSWERED;
        self.in_flight -= 1;
        self.stats
            .latency
            .record(now_ns.saturating_sub(client.sent_ns));
        Some(c)
    }

    /// An echoed message: it must be byte for byte the one client `c` sent.
    fn handle_echo(&mut self, now_ns: u64, datagram: &[u8], out: &mut Outbox) {
        let Some(xid) = echo_xid(datagram) else {
            self.stats.fail(Failure::Malformed);
            return;
        };
        let Some(c) = self.claim(now_ns, xid) else {
            return;
        };
        let exchange = self.clients[c as usize].exchange;
        let address = echo_address(exchange, c);
        let mut scratch = std::mem::take(&mut self.scratch);
        let same = self
            .write_message(c, address, None, &mut scratch)
            .is_ok_and(|len| scratch[..len] == *datagram);
        self.scratch = scratch;
        if !same {
            self.stats.fail(Failure::EchoMismatch);
            self.stats.flows_failed += 1;
            self.clients[c as usize].busy = false;
            return;
        }
        match exchange {
            Exchange::Solicit => {
                self.send(
                    now_ns,
                    c,
                    Exchange::Request,
                    echo_address(Exchange::Request, c),
                    None,
                    out,
                );
            }
            _ => self.complete(c),
        }
    }

    fn validate(&self, c: u32, client: &Client, reply: &Reply<'_>) -> Result<Accepted, Failure> {
        let population = &self.settings.population;
        let expected = match client.exchange {
            Exchange::Solicit if !client.rapid => MessageType::Advertise,
            _ => MessageType::Reply,
        };
        if reply.msg_type != expected {
            return Err(Failure::WrongType);
        }
        // A Reply that commits a Rapid Commit Solicit says so with the option (RFC 9915,
        // Solicit processing); one without it is not the answer the client asked for.
        if client.exchange == Exchange::Solicit && client.rapid && !reply.rapid_commit {
            return Err(Failure::WrongType);
        }
        // RFC 9915 §16, in substance: a client discards a reply whose Client Identifier
        // is missing or is not its own DUID.
        if reply.client_id != Some(population.duid(c).as_bytes()) {
            return Err(Failure::WrongClientId);
        }
        if !relay_matches(population, c, reply.relay) {
            return Err(Failure::BadRelay);
        }
        let server_id = reply.server_id.ok_or(Failure::MissingServerId)?;
        let known = self.servers.iter().position(|s| s == server_id);
        if matches!(
            client.exchange,
            Exchange::Request | Exchange::Renew | Exchange::Release
        ) && (client.server == 0 || known.map(|i| i + 1) != Some(usize::from(client.server)))
        {
            return Err(Failure::WrongServerId);
        }
        if let Some(status) = reply.status
            && status != StatusCode::Success
        {
            return Err(Failure::StatusFailure);
        }
        let mut accepted = Accepted {
            server: known.map(|i| i as u16 + 1),
            address: None,
            prefix: None,
        };
        if matches!(client.exchange, Exchange::Release | Exchange::Information) {
            return Ok(accepted);
        }
        let binds = reply.msg_type == MessageType::Reply;
        if client.ias.na {
            let addr = reply.na.lease.ok_or(Failure::NoAddress)?;
            if self
                .settings
                .expect_range
                .is_some_and(|range| !range.contains(addr))
            {
                return Err(Failure::AddressOutOfRange);
            }
            if binds && self.address_owner.get(&addr).is_some_and(|&o| o != c) {
                return Err(Failure::DuplicateAddress);
            }
            accepted.address = Some(addr);
        }
        if client.ias.pd {
            let (prefix, len) = reply.pd.lease.ok_or(Failure::NoPrefix)?;
            if self
                .settings
                .expect_pd_range
                .is_some_and(|range| !range.contains_prefix(prefix, len))
            {
                return Err(Failure::PrefixOutOfRange);
            }
            if binds
                && self
                    .prefix_owner
                    .get(&(prefix, len))
                    .is_some_and(|&o| o != c)
            {
                return Err(Failure::DuplicatePrefix);
            }
            accepted.prefix = Some((prefix, len));
        }
        Ok(accepted)
    }

    /// Adds a server DUID not seen before; `None` once the table is full.
    fn server_slot(&mut self, server_id: &[u8]) -> Option<u16> {
        if self.servers.len() >= usize::from(u16::MAX - 1) {
            return None;
        }
        self.servers.push(server_id.to_vec());
        Some(self.servers.len() as u16)
    }

    fn advance(
        &mut self,
        now_ns: u64,
        c: u32,
        msg_type: MessageType,
        accepted: Accepted,
        out: &mut Outbox,
    ) {
        let client = self.clients[c as usize];
        match client.exchange {
            Exchange::Solicit if msg_type == MessageType::Advertise => {
                self.remember_server(c, accepted.server);
                self.send(
                    now_ns,
                    c,
                    Exchange::Request,
                    accepted.address,
                    accepted.prefix,
                    out,
                );
            }
            Exchange::Release => {
                self.unbind(c);
                self.complete(c);
            }
            Exchange::Information => self.complete(c),
            done => {
                if done == Exchange::Rebind || done == Exchange::Solicit {
                    self.remember_server(c, accepted.server);
                }
                self.bind(c, accepted.address, accepted.prefix);
                match client.flow.after(done) {
                    Some(next) => {
                        let client = self.clients[c as usize];
                        self.clients[c as usize].ias = client.bound_ias();
                        self.send(now_ns, c, next, client.address, client.prefix, out);
                    }
                    None => self.complete(c),
                }
            }
        }
    }

    /// Records the server the client talks to from now on.
    fn remember_server(&mut self, c: u32, server: Option<u16>) {
        self.clients[c as usize].server = server.unwrap_or(0);
    }

    fn bind(&mut self, c: u32, address: Option<Ipv6Addr>, prefix: Option<(Ipv6Addr, u8)>) {
        let client = &mut self.clients[c as usize];
        if let Some(addr) = address {
            if let Some(old) = client.address.replace(addr)
                && old != addr
            {
                self.address_owner.remove(&old);
            }
            self.address_owner.insert(addr, c);
        }
        if let Some(p) = prefix {
            if let Some(old) = client.prefix.replace(p)
                && old != p
            {
                self.prefix_owner.remove(&old);
            }
            self.prefix_owner.insert(p, c);
        }
    }

    fn unbind(&mut self, c: u32) {
        let client = &mut self.clients[c as usize];
        if let Some(addr) = client.address.take() {
            self.address_owner.remove(&addr);
        }
        if let Some(p) = client.prefix.take() {
            self.prefix_owner.remove(&p);
        }
    }

    fn complete(&mut self, c: u32) {
        self.clients[c as usize].busy = false;
        self.stats.flows_completed += 1;
    }
}

impl Scenario for Generator {
    fn poll(&mut self, now_ns: u64, out: &mut Outbox) {
        Generator::poll(self, now_ns, out);
    }

    fn handle_datagram(&mut self, now_ns: u64, datagram: &[u8], out: &mut Outbox) {
        Generator::handle_datagram(self, now_ns, datagram, out);
    }

    fn wait(&self, now_ns: u64) -> Duration {
        // Less than the pacer's millisecond while sending, so sends stay on schedule.
        if self.is_sending(now_ns) {
            Duration::from_micros(200)
        } else {
            Duration::from_millis(5)
        }
    }

    fn is_finished(&self, now_ns: u64) -> bool {
        Generator::is_finished(self, now_ns)
    }
}

#[cfg(test)]
mod tests {
    use xdhcp6_proto::{DhcpOption, Message, MessageWriter, Packet};

    use super::*;
    use crate::population::{IAID_NA, IAID_PD};

    const MS: u64 = 1_000_000;
    const SERVER: [u8; 10] = [0, 3, 0, 1, 0xaa, 0xbb, 0xcc, 0, 0, 1];

    fn settings(clients: u32, relays: u32, scenario: Flows) -> Settings {
        Settings {
            scenario,
            ias: IaSet::NA,
            population: Population::new(clients, relays, 0xbe, "2001:db8:1::/64".parse().unwrap()),
            timeout_ns: 100 * MS,
            expect_range: Some("2001:db8:1::/65".parse().unwrap()),
            expect_pd_range: Some("2001:db8:100::/49".parse().unwrap()),
        }
    }

    /// What the fake server answers; tests change fields to break one thing.
    #[derive(Clone, Debug)]
    struct Answer {
        msg_type: MessageType,
        xid: u32,
        client_id: Vec<u8>,
        server_id: Option<Vec<u8>>,
        status: Option<StatusCode>,
        address: Option<Ipv6Addr>,
        prefix: Option<(Ipv6Addr, u8)>,
        relay: Option<(Ipv6Addr, Ipv6Addr, Option<Vec<u8>>)>,
        rapid_commit: bool,
        /// The request's type, for tweaks that depend on it.
        request: MessageType,
    }

    /// The correct answer to `request`: addresses and /56s numbered by the client's DUID.
    fn answer(request: &[u8]) -> Answer {
        let (relay, inner) = match Packet::parse(request).unwrap() {
            Packet::Relay(r) => {
                let mut iface = None;
                for o in r.options() {
                    if let DhcpOption::InterfaceId(id) = o.unwrap() {
                        iface = Some(id.to_vec());
                    }
                }
                (
                    Some((r.link_address(), r.peer_address(), iface)),
                    r.relayed_message().unwrap(),
                )
            }
            Packet::Client(m) => (None, m.as_bytes()),
        };
        let m = Message::new_checked(inner).unwrap();
        let (mut client_id, mut rapid, mut na, mut pd) = (Vec::new(), false, false, false);
        for o in m.options() {
            match o.unwrap() {
                DhcpOption::ClientId(d) => client_id = d.as_bytes().to_vec(),
                DhcpOption::RapidCommit => rapid = true,
                DhcpOption::IaNa(_) => na = true,
                DhcpOption::IaPd(_) => pd = true,
                _ => {}
            }
        }
        let n = u32::from_be_bytes(client_id[client_id.len() - 4..].try_into().unwrap());
        let msg_type = if m.msg_type() == MessageType::Solicit && !rapid {
            MessageType::Advertise
        } else {
            MessageType::Reply
        };
        Answer {
            msg_type,
            xid: m.transaction_id(),
            client_id,
            server_id: Some(SERVER.to_vec()),
            status: None,
            address: na.then(|| {
                Ipv6Addr::from(
                    u128::from(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100)) + u128::from(n),
                )
            }),
            prefix: pd.then(|| {
                (
                    Ipv6Addr::new(0x2001, 0xdb8, 0x100, (n as u16 & 0xff) << 8, 0, 0, 0, 0),
                    56,
                )
            }),
            relay,
            rapid_commit: rapid,
            request: m.msg_type(),
        }
    }

    impl Answer {
        fn encode(&self) -> Vec<u8> {
            let mut inner = vec![0u8; 1024];
            let mut w = MessageWriter::client(&mut inner, self.msg_type, self.xid).unwrap();
            // An empty one stands for "no Client Identifier option".
            if !self.client_id.is_empty() {
                w.client_id(&self.client_id).unwrap();
            }
            if let Some(id) = &self.server_id {
                w.server_id(id).unwrap();
            }
            if let Some(code) = self.status {
                w.status_code(code, "test").unwrap();
            }
            if self.rapid_commit {
                w.rapid_commit().unwrap();
            }
            if let Some(addr) = self.address {
                w.ia_na(IAID_NA, 10, 16, |w| w.ia_address(addr, 20, 30))
                    .unwrap();
            }
            if let Some((p, len)) = self.prefix {
                w.ia_pd(IAID_PD, 10, 16, |w| w.ia_prefix(20, 30, len, p))
                    .unwrap();
            }
            let n = w.finish().unwrap();
            inner.truncate(n);
            let Some((link, peer, iface)) = &self.relay else {
                return inner;
            };
            let mut outer = vec![0u8; 1200];
            let mut w =
                MessageWriter::relay(&mut outer, MessageType::RelayRepl, 0, *link, *peer).unwrap();
            if let Some(id) = iface {
                w.interface_id(id).unwrap();
            }
            w.relay_msg(&inner).unwrap();
            let n = w.finish().unwrap();
            outer.truncate(n);
            outer
        }
    }

    /// Runs `ms` milliseconds of virtual time; `server` answers each request (or not) 50 us
    /// later.
    fn drive(
        generator: &mut Generator,
        ms: u64,
        server: &mut dyn FnMut(Answer) -> Option<Vec<u8>>,
    ) {
        let mut out = Outbox::default();
        for t in 0..ms {
            let now = t * MS;
            generator.poll(now, &mut out);
            let mut queue: Vec<Vec<u8>> = out.iter().map(<[u8]>::to_vec).collect();
            out.clear();
            while let Some(request) = queue.pop() {
                if let Some(reply) = server(answer(&request)) {
                    generator.handle_datagram(now + 50_000, &reply, &mut out);
                    queue.extend(out.iter().map(<[u8]>::to_vec));
                    out.clear();
                }
            }
        }
    }

    /// Runs `flow` for 100 clients at 1000 flows/s for 0.1 s, then lets every request finish.
    fn run(
        flow: Flow,
        relays: u32,
        server: &mut dyn FnMut(Answer) -> Option<Vec<u8>>,
    ) -> Generator {
        let mut g = Generator::new(settings(100, relays, Flows::One(flow)));
        g.start(0, 1000.0, 100 * MS);
        drive(&mut g, 300, server);
        assert!(g.is_finished(300 * MS));
        g
    }

    fn good(a: Answer) -> Option<Vec<u8>> {
        Some(a.encode())
    }

    #[test]
    fn every_flow_succeeds_against_a_correct_server() {
        for flow in Flow::ALL {
            for relays in [0, 7] {
                let g = run(flow, relays, &mut good);
                let s = g.stats();
                assert_eq!(s.flows_started, 100, "{flow} relays {relays}");
                assert_eq!(s.flows_completed, 100, "{flow} relays {relays}: {s:?}");
                assert_eq!(s.total_failures(), 0, "{flow} relays {relays}");
                assert_eq!(s.timeouts, 0);
                assert_eq!(s.latency.count(), s.received);
                let bound = match flow {
                    Flow::Release | Flow::Info => 0,
                    _ => 100,
                };
                assert_eq!(g.bound_clients(), bound, "{flow}");
            }
        }
    }

    #[test]
    fn binding_every_client_never_grows_the_owner_maps() {
        // Growing a map rehashes it, a stall of milliseconds with hundreds of thousands of
        // clients: the maps are sized when the schedule starts, for every client.
        for (ias, pd) in [(IaSet::NA, false), (IaSet::BOTH, true)] {
            let mut g = Generator::new(Settings {
                ias,
                ..settings(100, 0, Flows::One(Flow::Sarr))
            });
            g.start(0, 1000.0, 100 * MS);
            let capacities = (g.address_owner.capacity(), g.prefix_owner.capacity());
            assert!(capacities.0 >= 100, "{capacities:?}");
            assert!(capacities.1 >= if pd { 100 } else { 0 }, "{capacities:?}");
            drive(&mut g, 300, &mut good);
            assert_eq!(g.bound_clients(), 100);
            assert_eq!(g.address_owner.len(), 100);
            assert_eq!(g.prefix_owner.len(), if pd { 100 } else { 0 });
            assert_eq!(
                (g.address_owner.capacity(), g.prefix_owner.capacity()),
                capacities,
                "a map grew while the clients bound"
            );
        }
    }

    #[test]
    fn messages_per_flow() {
        let sent = |flow| run(flow, 0, &mut good).stats().sent;
        // solicit, request, renew, rebind, release, information
        assert_eq!(sent(Flow::Sarr), [100, 100, 0, 0, 0, 0]);
        assert_eq!(sent(Flow::Rapid), [100, 0, 0, 0, 0, 0]);
        assert_eq!(sent(Flow::Renew), [100, 100, 100, 0, 0, 0]);
        assert_eq!(sent(Flow::Rebind), [100, 100, 0, 100, 0, 0]);
        assert_eq!(sent(Flow::Release), [100, 100, 0, 0, 100, 0]);
        assert_eq!(sent(Flow::Info), [0, 0, 0, 0, 0, 100]);
    }

    #[test]
    fn bound_clients_renew_without_soliciting_again() {
        let mut g = Generator::new(settings(50, 0, Flows::One(Flow::Renew)));
        g.start(0, 1000.0, 100 * MS);
        drive(&mut g, 300, &mut good);
        // 100 flows over 50 clients: the second round renews at once.
        assert_eq!(g.stats().sent, [50, 50, 100, 0, 0, 0]);
        assert_eq!(g.stats().flows_completed, 100);
    }

    fn failures_with(flow: Flow, relays: u32, mut tweak: impl FnMut(&mut Answer)) -> Stats {
        let g = run(flow, relays, &mut |mut a| {
            tweak(&mut a);
            Some(a.encode())
        });
        g.stats().clone()
    }

    #[test]
    fn wrong_xid_is_caught_and_the_flow_times_out() {
        let s = failures_with(Flow::Sarr, 0, |a| a.xid ^= 0x80_0000);
        assert_eq!(s.failures_of(Failure::UnknownXid), 100);
        assert_eq!(s.timeouts, 100);
        assert_eq!(s.flows_completed, 0);
        assert_eq!(s.loss_percent(), 100.0);
    }

    #[test]
    fn wrong_client_id_is_caught() {
        let s = failures_with(Flow::Sarr, 0, |a| a.client_id[4] ^= 0xff);
        assert_eq!(s.failures_of(Failure::WrongClientId), 100);
        assert_eq!(s.flows_failed, 100);
        let s = failures_with(Flow::Info, 0, |a| a.client_id.truncate(0));
        assert_eq!(s.failures_of(Failure::WrongClientId), 100);
    }

    #[test]
    fn address_outside_the_range_is_caught() {
        let s = failures_with(Flow::Sarr, 0, |a| {
            a.address = Some("2001:db8:1:0:8000::1".parse().unwrap());
        });
        assert_eq!(s.failures_of(Failure::AddressOutOfRange), 100);
        assert_eq!(
            s.sent[Exchange::Request.index()],
            0,
            "no Request for a bad offer"
        );
    }

    #[test]
    fn one_address_for_two_clients_is_caught() {
        let s = failures_with(Flow::Sarr, 0, |a| {
            a.address = Some("2001:db8:1::42".parse().unwrap());
        });
        assert_eq!(s.flows_completed, 1);
        assert_eq!(s.failures_of(Failure::DuplicateAddress), 99);
    }

    #[test]
    fn a_released_address_may_go_to_another_client() {
        let mut g = Generator::new(settings(2, 0, Flows::One(Flow::Release)));
        g.start(0, 1000.0, 2 * MS);
        drive(&mut g, 50, &mut |mut a| {
            a.address = a.address.map(|_| "2001:db8:1::42".parse().unwrap());
            Some(a.encode())
        });
        assert_eq!(g.stats().flows_completed, 2);
        assert_eq!(g.stats().total_failures(), 0);
    }

    #[test]
    fn duplicate_prefix_and_prefix_range_are_caught() {
        let s = failures_with(Flow::Pd, 0, |a| {
            a.prefix = Some(("2001:db8:100:7f00::".parse().unwrap(), 56));
        });
        assert_eq!(s.failures_of(Failure::DuplicatePrefix), 99);
        let s = failures_with(Flow::NaPd, 0, |a| {
            a.prefix = Some(("2001:db8:100:8000::".parse().unwrap(), 56));
        });
        assert_eq!(s.failures_of(Failure::PrefixOutOfRange), 100);
        let s = failures_with(Flow::Pd, 0, |a| a.prefix = None);
        assert_eq!(s.failures_of(Failure::NoPrefix), 100);
    }

    #[test]
    fn server_id_must_not_change_between_advertise_and_reply() {
        let s = failures_with(Flow::Sarr, 0, |a| {
            if a.msg_type == MessageType::Reply {
                a.server_id = Some(vec![0, 3, 0, 1, 1, 1, 1, 1, 1, 1]);
            }
        });
        assert_eq!(s.failures_of(Failure::WrongServerId), 100);
        let s = failures_with(Flow::Sarr, 0, |a| a.server_id = None);
        assert_eq!(s.failures_of(Failure::MissingServerId), 100);
        // A Rebind goes to any server, so its Reply may name another one.
        let mut first = true;
        let s = failures_with(Flow::Rebind, 0, |a| {
            if a.request == MessageType::Rebind {
                a.server_id = Some(vec![0, 3, 0, 1, 2, 2, 2, 2, 2, 2]);
            }
            first = false;
        });
        assert_eq!(s.total_failures(), 0);
        assert!(!first);
    }

    #[test]
    fn other_reply_problems_are_caught() {
        let s = failures_with(Flow::Rapid, 0, |a| a.msg_type = MessageType::Advertise);
        assert_eq!(s.failures_of(Failure::WrongType), 100);
        let s = failures_with(Flow::Rapid, 0, |a| a.rapid_commit = false);
        assert_eq!(s.failures_of(Failure::WrongType), 100);
        let s = failures_with(Flow::Sarr, 0, |a| a.address = None);
        assert_eq!(s.failures_of(Failure::NoAddress), 100);
        let s = failures_with(Flow::Sarr, 0, |a| a.status = Some(StatusCode::UnspecFail));
        assert_eq!(s.failures_of(Failure::StatusFailure), 100);
        let s = failures_with(Flow::Sarr, 3, |a| {
            if let Some((_, _, iface)) = &mut a.relay {
                *iface = Some(b"elsewhere".to_vec());
            }
        });
        assert_eq!(s.failures_of(Failure::BadRelay), 100);
        let s = failures_with(Flow::Sarr, 3, |a| a.relay = None);
        assert_eq!(s.failures_of(Failure::BadRelay), 100);
    }

    #[test]
    fn late_replies_are_lost_but_not_failures() {
        let mut g = Generator::new(settings(10, 0, Flows::One(Flow::Info)));
        g.start(0, 1000.0, 10 * MS);
        let mut held = Vec::new();
        drive(&mut g, 200, &mut |a| {
            held.push(a.encode());
            None
        });
        assert_eq!(g.stats().timeouts, 10);
        let mut out = Outbox::default();
        for reply in &held {
            g.handle_datagram(300 * MS, reply, &mut out);
        }
        assert_eq!(g.stats().late, 10);
        assert_eq!(g.stats().total_failures(), 0);
        // Twice is no longer late: the slot was freed by the first.
        g.handle_datagram(300 * MS, &held[0], &mut out);
        assert_eq!(g.stats().failures_of(Failure::UnknownXid), 1);
        assert!(out.is_empty());
    }

    #[test]
    fn a_second_answer_is_extra_not_wrong() {
        // Two servers answer every request (multicast, RFC 6853): only the first counts.
        let second = Some(vec![0, 3, 0, 1, 2, 2, 2, 2, 2, 2]);
        let mut g = Generator::new(settings(10, 0, Flows::One(Flow::Sarr)));
        g.start(0, 1000.0, 10 * MS);
        let mut out = Outbox::default();
        let mut queue = Vec::new();
        for t in 0..50 {
            g.poll(t * MS, &mut out);
            queue.extend(out.iter().map(<[u8]>::to_vec));
            out.clear();
            while let Some(request) = queue.pop() {
                let a = answer(&request);
                let mut b = a.clone();
                b.server_id = second.clone();
                g.handle_datagram(t * MS, &a.encode(), &mut out);
                g.handle_datagram(t * MS, &b.encode(), &mut out);
                queue.extend(out.iter().map(<[u8]>::to_vec));
                out.clear();
            }
        }
        let s = g.stats();
        assert_eq!(s.flows_completed, 10);
        // One extra Advertise and one extra Reply per flow.
        assert_eq!(s.extra, 20);
        assert_eq!(s.total_failures(), 0);
    }

    #[test]
    fn garbage_and_silence_are_counted() {
        let g = run(Flow::Sarr, 0, &mut |_| Some(vec![2, 0]));
        assert_eq!(g.stats().failures_of(Failure::Malformed), 100);
        assert_eq!(g.stats().timeouts, 100);
        let g = run(Flow::Sarr, 0, &mut |_| None);
        assert_eq!(g.stats().timeouts, 100);
        assert_eq!(g.stats().received, 0);
        assert_eq!(g.in_flight(), 0);
    }

    #[test]
    fn busy_clients_are_skipped() {
        let mut g = Generator::new(settings(10, 0, Flows::One(Flow::Sarr)));
        g.start(0, 1000.0, 50 * MS);
        drive(&mut g, 300, &mut |_| None);
        let s = g.stats();
        assert_eq!(s.flows_started + s.skipped, 50);
        // Each client waits 100 ms for a timeout before it may start again.
        assert_eq!(s.flows_started, 10);
    }

    #[test]
    fn flows_due_before_the_end_start_when_the_loop_comes_back_late() {
        let mut g = Generator::new(settings(1000, 0, Flows::One(Flow::Sarr)));
        g.start(0, 500.0, 1000 * MS);
        let mut out = Outbox::default();
        g.poll(500 * MS, &mut out);
        // The loop stalls over the end of the schedule: the flows of its last half second
        // are still owed, so the run is not finished before they start.
        assert!(!g.is_finished(1200 * MS));
        g.poll(1200 * MS, &mut out);
        let s = g.stats();
        assert_eq!(s.flows_started + s.skipped, 500);
        out.clear();
        g.poll(1300 * MS, &mut out);
        assert!(out.is_empty(), "nothing is due after the end");
    }

    #[test]
    fn mixes_follow_their_weights() {
        let mix = Flows::mix("sarr=3, info=1").unwrap();
        let n = 40_000;
        let sarr = (0..n).filter(|&i| mix.pick(i) == Flow::Sarr).count();
        assert!((29_000..31_000).contains(&sarr), "{sarr}");
        assert_eq!(mix.describe(), "mix(sarr=3,info=1)");
        assert!(Flows::mix("sarr=0").is_err());
        assert!(Flows::mix("bogus=1").is_err());
        assert_eq!("na+pd".parse::<Flow>(), Ok(Flow::NaPd));

        let mut g = Generator::new(settings(
            100,
            0,
            Flows::mix("sarr=1,info=1,renew=1").unwrap(),
        ));
        g.start(0, 1000.0, 100 * MS);
        drive(&mut g, 300, &mut good);
        assert_eq!(g.stats().flows_completed, 100);
        assert_eq!(g.stats().total_failures(), 0);
    }

    /// Runs echo flows for 100 clients against `reflect` (which may alter or drop a message).
    fn run_echo(relays: u32, reflect: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>) -> Generator {
        let mut g = Generator::new(settings(100, relays, Flows::One(Flow::Echo)));
        g.start(0, 1000.0, 100 * MS);
        let mut out = Outbox::default();
        for t in 0..300 {
            let now = t * MS;
            g.poll(now, &mut out);
            let mut queue: Vec<Vec<u8>> = out.iter().map(<[u8]>::to_vec).collect();
            out.clear();
            while let Some(request) = queue.pop() {
                if let Some(echo) = reflect(&request) {
                    g.handle_datagram(now + 50_000, &echo, &mut out);
                    queue.extend(out.iter().map(<[u8]>::to_vec));
                    out.clear();
                }
            }
        }
        assert!(g.is_finished(300 * MS));
        g
    }

    #[test]
    fn echo_flows_complete_with_two_round_trips() {
        for relays in [0, 7] {
            let mut sizes = Vec::new();
            let g = run_echo(relays, &mut |request| {
                sizes.push(request.len());
                Some(request.to_vec())
            });
            let s = g.stats();
            assert_eq!(s.flows_started, 100, "relays {relays}");
            assert_eq!(s.flows_completed, 100, "relays {relays}: {s:?}");
            assert_eq!(s.total_failures(), 0, "relays {relays}: {s:?}");
            assert_eq!(s.sent[Exchange::Solicit.index()], 100);
            assert_eq!(s.sent[Exchange::Request.index()], 100);
            assert_eq!(s.received, 200);
            // The Request carries a Server Identifier and an address: longer than the Solicit.
            assert!(sizes.iter().max() > sizes.iter().min(), "{sizes:?}");
        }
    }

    #[test]
    fn echo_that_differs_fails_and_one_that_is_lost_times_out() {
        let g = run_echo(0, &mut |request| {
            let mut echo = request.to_vec();
            let last = echo.len() - 1;
            echo[last] ^= 1;
            Some(echo)
        });
        let s = g.stats();
        assert_eq!(s.failures_of(Failure::EchoMismatch), 100, "{s:?}");
        assert_eq!(s.flows_failed, 100);
        assert_eq!(s.flows_completed, 0);

        let g = run_echo(0, &mut |request| {
            // Another transaction id: unknown, and the flow's request times out.
            let mut echo = request.to_vec();
            echo[1] ^= 0x80;
            Some(echo)
        });
        assert_eq!(g.stats().failures_of(Failure::UnknownXid), 100);
        assert_eq!(g.stats().timeouts, 100, "{:?}", g.stats());

        let g = run_echo(0, &mut |_| Some(vec![1, 2]));
        assert_eq!(g.stats().failures_of(Failure::Malformed), 100);
    }

    #[test]
    fn echo_is_a_scenario_of_its_own() {
        assert_eq!("echo".parse::<Flow>(), Ok(Flow::Echo));
        assert!(!Flow::ALL.contains(&Flow::Echo));
        assert!(Flows::mix("sarr=1,echo=1").is_err());
    }
}
