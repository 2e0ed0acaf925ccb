//! `--scenario leasequery`: Leasequery (RFC 5007) at a paced rate against what the generator
//! bound itself.
//!
//! The run has two phases. First every client binds once with SARR (the [`Generator`] at
//! `--rate`, one flow per client); then a requestor asks the server, at `--rate` for
//! `--duration`, about the clients that got a binding, in turn: by address
//! (QUERY_BY_ADDRESS with the client's address, or the first address of its delegated
//! prefix) and by client identifier (QUERY_BY_CLIENTID), alternating unless `--query-by`
//! picks one. Every LEASEQUERY-REPLY is validated against the binding: its transaction id,
//! the requestor's Client Identifier, a Server Identifier, no error status, Client Data of
//! that client holding, with a valid lifetime, the address (or prefix) asked by address, or
//! everything the client bound when asked by client identifier. Each wrong answer is
//! counted by kind ([`Mismatch`]) and as a failure of the run.
//!
//! The requestor sends from the generator's socket (port 546, or 547 with `--relays`) to the
//! generator's destination, without relay wrapping: the server must list that source in
//! `[leasequery] requestors` (a link-local source for multicast, fe80::/10).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::Ipv6Addr;
use std::time::Duration;

use serde::Serialize;
use xdhcp6_proto::{
    DhcpOption, MessageType, MessageWriter, OptionCode, Packet, QueryType, StatusCode, WriteError,
};

use crate::generator::Generator;
use crate::message::sender_of;
use crate::pacing::Pacer;
use crate::population::Population;
use crate::report::{Counts, Summary};
use crate::runner::{Clock, Control, Phase, Sample, drive};
use crate::scenario::{Outbox, Scenario};
use crate::stats::{Failure, Stats};
use crate::transport::Transport;

/// Transaction ids are 24 bits.
const XID_SPACE: usize = 1 << 24;

/// How queries are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryBy {
    /// QUERY_BY_ADDRESS only.
    Address,
    /// QUERY_BY_CLIENTID only.
    ClientId,
    /// One of each in turn.
    Both,
}

impl std::str::FromStr for QueryBy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "address" => Ok(QueryBy::Address),
            "client-id" => Ok(QueryBy::ClientId),
            "both" => Ok(QueryBy::Both),
            other => Err(format!(
                "--query-by {other:?}: expected address, client-id or both"
            )),
        }
    }
}

/// A client the generator bound, as the requestor checks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bound {
    /// The client's index in the population.
    pub client: u32,
    /// Its address.
    pub address: Option<Ipv6Addr>,
    /// Its delegated prefix.
    pub prefix: Option<(Ipv6Addr, u8)>,
}

/// Why an answer did not match the binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// Not a parseable DHCPv6 message.
    Malformed,
    /// Not a LEASEQUERY-REPLY.
    WrongType,
    /// A transaction id no outstanding query has.
    UnknownXid,
    /// The Client Identifier is not the requestor's.
    WrongRequestor,
    /// No Server Identifier.
    MissingServerId,
    /// A status code other than Success (NotAllowed: the source is not a listed requestor).
    Status,
    /// No Client Data: the server says nobody holds the binding.
    NoClientData,
    /// Client Data of another client.
    WrongClient,
    /// The client's address is missing or has a valid lifetime of 0.
    AddressMissing,
    /// The client's delegated prefix is missing or has a valid lifetime of 0.
    PrefixMissing,
}

impl Mismatch {
    /// Every kind, in counter order.
    pub const ALL: [Mismatch; 10] = [
        Mismatch::Malformed,
        Mismatch::WrongType,
        Mismatch::UnknownXid,
        Mismatch::WrongRequestor,
        Mismatch::MissingServerId,
        Mismatch::Status,
        Mismatch::NoClientData,
        Mismatch::WrongClient,
        Mismatch::AddressMissing,
        Mismatch::PrefixMissing,
    ];

    /// The kind's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mismatch::Malformed => "malformed",
            Mismatch::WrongType => "wrong_type",
            Mismatch::UnknownXid => "unknown_xid",
            Mismatch::WrongRequestor => "wrong_requestor",
            Mismatch::MissingServerId => "missing_server_id",
            Mismatch::Status => "status",
            Mismatch::NoClientData => "no_client_data",
            Mismatch::WrongClient => "wrong_client",
            Mismatch::AddressMissing => "address_missing",
            Mismatch::PrefixMissing => "prefix_missing",
        }
    }

    /// The generator's failure kind it is counted as too.
    fn failure(self) -> Failure {
        match self {
            Mismatch::Malformed => Failure::Malformed,
            Mismatch::WrongType => Failure::WrongType,
            Mismatch::UnknownXid => Failure::UnknownXid,
            Mismatch::WrongRequestor | Mismatch::WrongClient => Failure::WrongClientId,
            Mismatch::MissingServerId => Failure::MissingServerId,
            Mismatch::Status => Failure::StatusFailure,
            Mismatch::NoClientData | Mismatch::AddressMissing => Failure::NoAddress,
            Mismatch::PrefixMissing => Failure::NoPrefix,
        }
    }

    fn index(self) -> usize {
        Mismatch::ALL.iter().position(|&m| m == self).unwrap_or(0)
    }
}

/// Everything the requestor needs up front.
#[derive(Clone, Debug)]
pub struct LeasequerySettings {
    /// The clients (for their DUIDs and senders).
    pub population: Population,
    /// The clients to ask about.
    pub bound: Vec<Bound>,
    /// The requestor's DUID.
    pub requestor: Vec<u8>,
    /// A query unanswered this long is lost.
    pub timeout_ns: u64,
    /// Which queries.
    pub by: QueryBy,
}

/// One outstanding query.
#[derive(Clone, Copy, Debug)]
struct Pending {
    target: usize,
    by_address: bool,
    sent_ns: u64,
}

/// The requestor's state: a [`Scenario`].
pub struct Leasequery {
    settings: LeasequerySettings,
    pacer: Pacer,
    end_ns: u64,
    cursor: usize,
    queries: u64,
    next_xid: u32,
    pending: HashMap<u32, Pending>,
    deadlines: VecDeque<(u64, u32)>,
    /// Per transaction id: 0 never used, 1 answered, 2 timed out (a later answer is late).
    ended: Vec<u8>,
    stats: Stats,
    mismatches: [u64; Mismatch::ALL.len()],
    /// Queries sent by address and by client identifier.
    sent_by: [u64; 2],
}

impl Leasequery {
    /// A requestor with nothing scheduled yet (see [`Leasequery::start`]).
    pub fn new(settings: LeasequerySettings) -> Self {
        Self {
            settings,
            pacer: Pacer::new(0.0, 0),
            end_ns: 0,
            cursor: 0,
            queries: 0,
            next_xid: 0,
            pending: HashMap::new(),
            deadlines: VecDeque::new(),
            ended: vec![0; XID_SPACE],
            stats: Stats::default(),
            mismatches: [0; Mismatch::ALL.len()],
            sent_by: [0; 2],
        }
    }

    /// Sends queries at `rate` per second from `now_ns` for `duration_ns`.
    pub fn start(&mut self, now_ns: u64, rate: f64, duration_ns: u64) {
        self.pacer = Pacer::new(rate, now_ns);
        self.end_ns = now_ns.saturating_add(duration_ns);
    }

    /// Everything counted so far (queries are the flows).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Wrong answers by kind.
    pub fn mismatches(&self) -> Counts {
        Counts(
            Mismatch::ALL
                .iter()
                .map(|&m| (m.name(), self.mismatches[m.index()]))
                .collect(),
        )
    }

    /// Queries sent by address and by client identifier.
    pub fn sent_by(&self) -> (u64, u64) {
        (self.sent_by[0], self.sent_by[1])
    }

    fn is_sending(&self, now_ns: u64) -> bool {
        now_ns < self.end_ns
    }

    fn mismatch(&mut self, mismatch: Mismatch) {
        self.mismatches[mismatch.index()] += 1;
        self.stats.fail(mismatch.failure());
    }

    fn expire(&mut self, now_ns: u64) {
        while let Some(&(deadline, xid)) = self.deadlines.front() {
            if deadline > now_ns {
                break;
            }
            self.deadlines.pop_front();
            if self.pending.remove(&xid).is_some() {
                self.stats.timeouts += 1;
                self.ended[xid as usize] = 2;
            }
        }
    }

    fn send_query(&mut self, now_ns: u64, out: &mut Outbox) {
        if self.settings.bound.is_empty() {
            self.stats.skipped += 1;
            return;
        }
        let target = self.cursor;
        self.cursor = (self.cursor + 1) % self.settings.bound.len();
        let by_address = match self.settings.by {
            QueryBy::Address => true,
            QueryBy::ClientId => false,
            QueryBy::Both => self.queries.is_multiple_of(2),
        };
        self.queries += 1;
        // A transaction id not outstanding (the space is 16M: it never wraps onto one).
        self.next_xid = self.next_xid % (XID_SPACE as u32 - 1) + 1;
        let xid = self.next_xid;
        if self.pending.contains_key(&xid) {
            self.stats.skipped += 1;
            return;
        }
        let bound = self.settings.bound[target];
        let duid = self.settings.population.duid(bound.client);
        let sender = sender_of(&self.settings.population, bound.client);
        let requestor = &self.settings.requestor;
        let written = out.push(sender, |buf| {
            write_query(buf, xid, requestor, &bound, duid.as_bytes(), by_address)
        });
        if written.is_err() {
            self.stats.skipped += 1;
            return;
        }
        self.ended[xid as usize] = 0;
        self.pending.insert(
            xid,
            Pending {
                target,
                by_address,
                sent_ns: now_ns,
            },
        );
        self.deadlines
            .push_back((now_ns.saturating_add(self.settings.timeout_ns), xid));
        self.sent_by[usize::from(!by_address)] += 1;
        self.stats.flows_started += 1;
    }

    /// Validates one answer.
    fn answer(&mut self, now_ns: u64, datagram: &[u8]) {
        self.stats.received += 1;
        let Ok(Packet::Client(message)) = Packet::parse(datagram) else {
            self.mismatch(Mismatch::Malformed);
            return;
        };
        let xid = message.transaction_id();
        let Some(pending) = self.pending.remove(&xid) else {
            match self.ended.get(xid as usize) {
                Some(2) => self.stats.late += 1,
                Some(1) => self.stats.extra += 1,
                _ => self.mismatch(Mismatch::UnknownXid),
            }
            return;
        };
        self.ended[xid as usize] = 1;
        self.stats
            .latency
            .record(now_ns.saturating_sub(pending.sent_ns));
        let mut bound = self.settings.bound[pending.target];
        // A query by address is answered with the IA that holds it (RFC 5007 §4.1.2.5): the
        // address, or the delegated prefix when the client holds no address.
        if pending.by_address {
            if bound.address.is_some() {
                bound.prefix = None;
            } else {
                bound.address = None;
            }
        }
        let duid = self.settings.population.duid(bound.client);
        match check(
            message.msg_type(),
            message.options(),
            &self.settings.requestor,
            duid.as_bytes(),
            &bound,
        ) {
            Ok(()) => self.stats.flows_completed += 1,
            Err(mismatch) => {
                self.stats.flows_failed += 1;
                self.mismatch(mismatch);
            }
        }
    }
}

impl Scenario for Leasequery {
    fn poll(&mut self, now_ns: u64, out: &mut Outbox) {
        self.expire(now_ns);
        if !self.is_sending(now_ns) {
            return;
        }
        let dropped = self.pacer.dropped();
        let due = self.pacer.take_due(now_ns);
        self.stats.skipped += self.pacer.dropped() - dropped;
        for _ in 0..due {
            self.send_query(now_ns, out);
        }
    }

    fn handle_datagram(&mut self, now_ns: u64, datagram: &[u8], _out: &mut Outbox) {
        self.answer(now_ns, datagram);
    }

    fn wait(&self, now_ns: u64) -> Duration {
        if self.is_sending(now_ns) {
            Duration::from_micros(200)
        } else {
            Duration::from_millis(5)
        }
    }

    fn is_finished(&self, now_ns: u64) -> bool {
        !self.is_sending(now_ns) && self.pending.is_empty()
    }
}

/// Writes a LEASEQUERY about `bound`: by its address (or its prefix's first address), or by
/// its DUID, on every link.
fn write_query(
    buf: &mut [u8],
    xid: u32,
    requestor: &[u8],
    bound: &Bound,
    duid: &[u8],
    by_address: bool,
) -> Result<usize, WriteError> {
    let mut w = MessageWriter::client(buf, MessageType::Leasequery, xid)?;
    w.client_id(requestor)?;
    let query = w.begin_option(OptionCode::LqQuery)?;
    let address = bound.address.or(bound.prefix.map(|(prefix, _)| prefix));
    match (by_address, address) {
        (true, Some(address)) => {
            w.put_bytes(&[QueryType::ByAddress.into()])?;
            w.put_bytes(&Ipv6Addr::UNSPECIFIED.octets())?;
            w.ia_address(address, 0, 0)?;
        }
        _ => {
            w.put_bytes(&[QueryType::ByClientId.into()])?;
            w.put_bytes(&Ipv6Addr::UNSPECIFIED.octets())?;
            w.client_id(duid)?;
        }
    }
    w.end_option(query)?;
    w.finish()
}

/// Checks a reply's options against the binding it is about.
fn check<'a>(
    msg_type: MessageType,
    options: impl Iterator<Item = Result<DhcpOption<'a>, xdhcp6_proto::ParseError>>,
    requestor: &[u8],
    duid: &[u8],
    bound: &Bound,
) -> Result<(), Mismatch> {
    if msg_type != MessageType::LeasequeryReply {
        return Err(Mismatch::WrongType);
    }
    let (mut server_id, mut client_id_ok, mut status) = (false, false, StatusCode::Success);
    let mut data = None;
    for option in options {
        match option.map_err(|_| Mismatch::Malformed)? {
            DhcpOption::ServerId(_) => server_id = true,
            DhcpOption::ClientId(id) => client_id_ok = id.as_bytes() == requestor,
            DhcpOption::StatusCode { code, .. } => status = code,
            DhcpOption::ClientData(inner) => data = Some(inner),
            _ => {}
        }
    }
    if !client_id_ok {
        return Err(Mismatch::WrongRequestor);
    }
    if !server_id {
        return Err(Mismatch::MissingServerId);
    }
    if status != StatusCode::Success {
        return Err(Mismatch::Status);
    }
    let data = data.ok_or(Mismatch::NoClientData)?;
    let (mut client, mut address, mut prefix) =
        (false, bound.address.is_none(), bound.prefix.is_none());
    for option in data {
        match option.map_err(|_| Mismatch::Malformed)? {
            DhcpOption::ClientId(id) => client = id.as_bytes() == duid,
            DhcpOption::IaAddr(a) if Some(a.addr()) == bound.address && a.valid_lifetime() > 0 => {
                address = true;
            }
            DhcpOption::IaPrefix(p)
                if Some((p.prefix(), p.prefix_len())) == bound.prefix && p.valid_lifetime() > 0 =>
            {
                prefix = true;
            }
            _ => {}
        }
    }
    if !client {
        return Err(Mismatch::WrongClient);
    }
    if !address {
        return Err(Mismatch::AddressMissing);
    }
    if !prefix {
        return Err(Mismatch::PrefixMissing);
    }
    Ok(())
}

/// The clients the generator bound, in population order.
pub fn bound_by(generator: &Generator, population: &Population) -> Vec<Bound> {
    (0..population.len())
        .filter_map(|client| {
            let (address, prefix) = generator.binding(client);
            (address.is_some() || prefix.is_some()).then_some(Bound {
                client,
                address,
                prefix,
            })
        })
        .collect()
}

/// Runs the requestor at `rate` for `duration`, then waits for outstanding queries.
/// `progress` sees each one-second sample.
pub fn run_queries(
    requestor: &mut Leasequery,
    transport: &mut dyn Transport,
    clock: &mut dyn Clock,
    rate: f64,
    duration: Duration,
    progress: &mut dyn FnMut(&Sample),
) -> io::Result<Phase> {
    let start = clock.now_ns();
    requestor.start(start, rate, duration.as_nanos() as u64);
    let mut last = requestor.stats().clone();
    let mut samples = Vec::new();
    let mut second = |requestor: &mut Leasequery, tick: u64| {
        let stats = requestor.stats().clone();
        let window = stats.since(&last);
        last = stats;
        let sample = Sample::of(
            &window,
            1.0,
            (tick - start) as f64 / 1e9,
            requestor.pending.len() as u64,
        );
        progress(&sample);
        samples.push(sample);
    };
    drive(requestor, transport, clock, start, &mut second, &mut |_| {
        Control::Continue
    })?;
    Ok(Phase {
        rate,
        duration_s: duration.as_secs_f64(),
        stats: requestor.stats().clone(),
        samples,
    })
}

/// The `--json` summary: the generator's, plus the binding phase and the answers' mismatches.
#[derive(Clone, Debug, Serialize)]
pub struct LeasequerySummary {
    /// Rate, latency, loss and failures of the queries (a query is a flow).
    #[serde(flatten)]
    pub summary: Summary,
    /// Clients that bound in the first phase (those asked about).
    pub bound_clients: u64,
    /// Queries by address.
    pub queries_by_address: u64,
    /// Queries by client identifier.
    pub queries_by_client_id: u64,
    /// Wrong answers by kind (also counted in `failures`).
    pub mismatches: Counts,
}

impl LeasequerySummary {
    /// The table: the generator's, then the leasequery lines.
    pub fn table(&self) -> String {
        let mut table = self.summary.table();
        let row = |t: &mut String, k: &str, v: u64| {
            t.push_str(&format!("  {k:<24} {v:>14}\n"));
        };
        row(&mut table, "clients bound", self.bound_clients);
        row(&mut table, "queries by address", self.queries_by_address);
        row(
            &mut table,
            "queries by client-id",
            self.queries_by_client_id,
        );
        let wrong: Vec<&(&str, u64)> = self.mismatches.0.iter().filter(|(_, n)| *n > 0).collect();
        if wrong.is_empty() {
            table.push_str("  mismatches: none\n");
        } else {
            table.push_str("  mismatches:\n");
            for (name, n) in wrong {
                row(&mut table, name, *n);
            }
        }
        table
    }
}

#[cfg(test)]
mod tests;
