//! `--scenario avalanche`: every client of the population starts at once, as after a
//! region-wide outage, and binds with the retransmission of RFC 9915 §15 and §18.2.1-2:
//! the first Solicit after a random delay of 0 to SOL_MAX_DELAY (1 s), Solicit retransmitted
//! from SOL_TIMEOUT (1 s) doubling to SOL_MAX_RT (3,600 s), Request from REQ_TIMEOUT (1 s)
//! to REQ_MAX_RT (30 s) at most REQ_MAX_RC (10) times and then back to Solicit, each RT with
//! RAND of ±0.1. Nothing paces the clients but their own timers and, when set, the
//! generator's own cap on messages per second (reported). The run ends when every client is
//! bound (or at its time limit); the report gives the time until 50, 90, 99 and 100 % were
//! bound, messages and retransmissions by kind, and bound clients over time.
//!
//! Memory: one 40-byte [`Client`] per client in one array, a timer wheel of client indexes
//! (4 bytes per pending timer) and the learned server DUIDs: 10,000,000 clients take about
//! 450 MB. Addresses are not checked for duplicates across clients (that would need an
//! index); each is checked against `--expect-range`.

use std::fmt::Write as _;
use std::io;
use std::net::Ipv6Addr;
use std::time::Duration;

use serde::Serialize;
use xdhcp6_proto::{MessageType, StatusCode};

use crate::message::{ClientMessage, Exchange, IaSet, Reply, relay_matches, sender_of};
use crate::population::{Population, Prefix};
use crate::report::{Counts, Panel, document};
use crate::runner::{Clock, Control, drive};
use crate::scenario::{Outbox, Scenario};
use crate::stats::{Failure, Stats};
use crate::transport::Transport;

const MS: u64 = 1_000_000;

/// SOL_MAX_DELAY: the first Solicit waits a random time up to this, milliseconds.
pub const SOL_MAX_DELAY_MS: u32 = 1_000;

/// A message's retransmission parameters (RFC 9915 §7.6), milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// Initial retransmission time.
    pub irt: u32,
    /// Maximum retransmission time.
    pub mrt: u32,
    /// Maximum transmissions (0: no limit).
    pub mrc: u8,
}

/// Solicit: SOL_TIMEOUT 1 s, SOL_MAX_RT 3,600 s, no limit on transmissions.
pub const SOLICIT: Timers = Timers {
    irt: 1_000,
    mrt: 3_600_000,
    mrc: 0,
};

/// Request: REQ_TIMEOUT 1 s, REQ_MAX_RT 30 s, REQ_MAX_RC 10.
pub const REQUEST: Timers = Timers {
    irt: 1_000,
    mrt: 30_000,
    mrc: 10,
};

/// RAND of RFC 9915 §15 from a 64-bit draw: uniform in [-0.1, 0.1], in steps of 1/10,000.
pub fn rand_factor(draw: u64) -> f64 {
    ((draw % 2001) as f64 - 1000.0) / 10_000.0
}

impl Timers {
    /// The first RT: IRT + RAND*IRT. For a Solicit RAND is taken strictly above 0 (its
    /// absolute value, and at least 1 ms), so the first RT is strictly greater than IRT.
    pub fn first(&self, rand: f64, solicit: bool) -> u32 {
        if solicit {
            // At least a millisecond above IRT.
            self.irt + ((f64::from(self.irt) * rand.abs()).round() as u32).max(1)
        } else {
            (f64::from(self.irt) * (1.0 + rand)).round() as u32
        }
    }

    /// The RT after `rt`: 2*RTprev + RAND*RTprev, and MRT + RAND*MRT once that passes MRT.
    pub fn next(&self, rt: u32, rand: f64) -> u32 {
        let rt = f64::from(rt);
        let next = 2.0 * rt + rand * rt;
        let mrt = f64::from(self.mrt);
        if self.mrt > 0 && next > mrt {
            (mrt + rand * mrt).round() as u32
        } else {
            next.round() as u32
        }
    }
}

/// Where a client stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
enum State {
    /// Before its first Solicit (the random delay).
    #[default]
    Delayed,
    /// Soliciting: collecting Advertises during the first RT, then taking the first.
    Soliciting,
    /// Requesting from the chosen server (`sent` 0: the Request is due at the deadline).
    Requesting,
    /// Bound: `began` holds the time it was.
    Bound,
}

/// One client: 40 bytes.
#[derive(Clone, Copy, Debug, Default)]
struct Client {
    /// When its timer runs out, ms since the start.
    deadline: u32,
    /// The current retransmission time, ms.
    rt: u32,
    /// The current exchange's transaction id.
    xid: u32,
    /// When the exchange began (Elapsed Time), or when the client was bound.
    began: u32,
    /// The address of the Advertise kept (valid with `offered`).
    offer: [u8; 16],
    /// The server of that Advertise, an index into the learned DUIDs.
    server: u16,
    state: State,
    /// Transmissions of the current exchange.
    sent: u8,
    /// An Advertise is kept.
    offered: bool,
    /// Its preference.
    preference: u8,
}

/// Timer wheel slots: one per millisecond, 65.536 s ahead; later timers wait in a list
/// that is looked at every half turn.
const SLOTS: usize = 1 << 16;
const HORIZON: u32 = SLOTS as u32;

/// How an avalanche runs.
#[derive(Clone, Debug)]
pub struct AvalancheSettings {
    /// The clients (and their relays).
    pub population: Population,
    /// Every address must lie here.
    pub expect_range: Option<Prefix>,
    /// The generator's own cap on messages sent per second (0: none). Messages held back by
    /// it leave later; the clients' timers then count from when they left.
    pub max_rate: f64,
    /// Seeds the random delays, RAND and transaction ids.
    pub seed: u64,
    /// The run ends here even if some clients are not bound, nanoseconds after the start.
    pub limit_ns: u64,
}

impl AvalancheSettings {
    /// Settings for `population` with no cap, no range check and a limit of one hour.
    pub fn new(population: Population) -> Self {
        Self {
            population,
            expect_range: None,
            max_rate: 0.0,
            seed: 0,
            limit_ns: 3_600 * 1_000 * MS,
        }
    }
}

/// Counters of an avalanche; `timeline` has them per second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AvalancheCounts {
    /// Solicits sent, retransmissions included.
    pub solicit: u64,
    /// Solicit retransmissions.
    pub solicit_retransmissions: u64,
    /// Requests sent, retransmissions included.
    pub request: u64,
    /// Request retransmissions.
    pub request_retransmissions: u64,
    /// Requests that reached REQ_MAX_RC unanswered: the client went back to Solicit.
    pub request_gave_up: u64,
    /// Advertises received for the client's current Solicit.
    pub advertise: u64,
    /// Replies received for the client's current Request.
    pub reply: u64,
    /// Replies that refused the address (NoAddrsAvail, or no address): back to Solicit.
    pub refused: u64,
    /// Clients that became bound.
    pub bound: u64,
}

/// One second of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct AvalancheSample {
    /// Seconds since the start (end of the window).
    pub t_s: f64,
    /// Clients bound by then.
    pub bound_total: u64,
    /// What happened in the second.
    #[serde(flatten)]
    pub counts: AvalancheCounts,
}

/// The scenario.
pub struct Avalanche {
    settings: AvalancheSettings,
    clients: Vec<Client>,
    wheel: Vec<Vec<u32>>,
    far: Vec<u32>,
    /// The next millisecond whose slot has not been run.
    cursor: u32,
    origin_ns: Option<u64>,
    rng: u64,
    servers: Vec<Vec<u8>>,
    counts: AvalancheCounts,
    last: AvalancheCounts,
    timeline: Vec<AvalancheSample>,
    stats: Stats,
    /// The cap's bucket.
    tokens: f64,
    last_refill_ms: u32,
    /// Messages that waited for the cap, and the longest wait, ms.
    capped: u64,
    max_cap_lag_ms: u32,
    finished_ms: Option<u32>,
}

/// A token, less rounding: a tenth added ten times makes one.
const ONE_TOKEN: f64 = 1.0 - 1e-9;

/// The most messages one poll writes, so that replies are read in between.
const PER_POLL: usize = 1024;

impl Avalanche {
    /// A population that has not started: [`Avalanche::start`] starts it.
    pub fn new(settings: AvalancheSettings) -> Self {
        let n = settings.population.len() as usize;
        let rng = settings.seed ^ 0x6176_616c_616e_6368;
        Self {
            settings,
            clients: vec![Client::default(); n],
            wheel: vec![Vec::new(); SLOTS],
            far: Vec::new(),
            cursor: 0,
            origin_ns: None,
            rng,
            servers: Vec::new(),
            counts: AvalancheCounts::default(),
            last: AvalancheCounts::default(),
            timeline: Vec::new(),
            stats: Stats::default(),
            tokens: 0.0,
            last_refill_ms: 0,
            capped: 0,
            max_cap_lag_ms: 0,
            finished_ms: None,
        }
    }

    /// Every client draws its first Solicit's delay, 0 to SOL_MAX_DELAY, from `now_ns`.
    pub fn start(&mut self, now_ns: u64) {
        self.origin_ns = Some(now_ns);
        for c in 0..self.clients.len() as u32 {
            let delay = (self.random() % u64::from(SOL_MAX_DELAY_MS + 1)) as u32;
            self.schedule(c, delay);
        }
        self.tokens = self.burst();
    }

    fn burst(&self) -> f64 {
        (self.settings.max_rate / 100.0).max(1.0)
    }

    fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn ms(&self, now_ns: u64) -> u32 {
        let origin = self.origin_ns.unwrap_or(now_ns);
        (now_ns.saturating_sub(origin) / MS).min(u64::from(u32::MAX / 2)) as u32
    }

    /// Sets client `c`'s timer to `at` (not before the slot the wheel runs next).
    fn schedule(&mut self, c: u32, at: u32) {
        let at = at.max(self.cursor);
        self.clients[c as usize].deadline = at;
        if at - self.cursor < HORIZON {
            self.wheel[at as usize % SLOTS].push(c);
        } else {
            self.far.push(c);
        }
    }

    /// Moves the far timers that now fall within the wheel into it.
    fn pull_far(&mut self) {
        let far = std::mem::take(&mut self.far);
        for c in far {
            let client = self.clients[c as usize];
            if client.state == State::Bound || client.deadline < self.cursor {
                continue;
            }
            if client.deadline - self.cursor < HORIZON {
                self.wheel[client.deadline as usize % SLOTS].push(c);
            } else {
                self.far.push(c);
            }
        }
    }

    fn new_xid(&mut self) -> u32 {
        (self.random() & 0xff_ffff) as u32
    }

    /// Client `c`'s timer ran out at `now`: its next transmission.
    fn fire(&mut self, c: u32, now: u32, out: &mut Outbox) {
        let client = self.clients[c as usize];
        match client.state {
            State::Bound => {}
            State::Delayed => self.solicit(c, now, out),
            State::Soliciting if client.offered => self.begin_request(c, now, out),
            State::Soliciting => {
                let rand = rand_factor(self.random());
                let client = &mut self.clients[c as usize];
                client.rt = SOLICIT.next(client.rt, rand);
                client.sent = client.sent.saturating_add(1);
                let at = now + client.rt;
                self.counts.solicit_retransmissions += 1;
                self.transmit(c, now, Exchange::Solicit, out);
                self.schedule(c, at);
            }
            State::Requesting if client.sent == 0 => self.begin_request(c, now, out),
            State::Requesting if client.sent >= REQUEST.mrc => {
                self.counts.request_gave_up += 1;
                self.solicit(c, now, out);
            }
            State::Requesting => {
                let rand = rand_factor(self.random());
                let client = &mut self.clients[c as usize];
                client.rt = REQUEST.next(client.rt, rand);
                client.sent += 1;
                let at = now + client.rt;
                self.counts.request_retransmissions += 1;
                self.transmit(c, now, Exchange::Request, out);
                self.schedule(c, at);
            }
        }
    }

    /// Starts a Solicit exchange (the first, or again after a Request failed).
    fn solicit(&mut self, c: u32, now: u32, out: &mut Outbox) {
        let xid = self.new_xid();
        let rand = rand_factor(self.random());
        let client = &mut self.clients[c as usize];
        *client = Client {
            state: State::Soliciting,
            xid,
            began: now,
            rt: SOLICIT.first(rand, true),
            sent: 1,
            ..Client::default()
        };
        let at = now + client.rt;
        self.transmit(c, now, Exchange::Solicit, out);
        self.schedule(c, at);
    }

    /// Sends the first Request to the kept Advertise's server.
    fn begin_request(&mut self, c: u32, now: u32, out: &mut Outbox) {
        let xid = self.new_xid();
        let rand = rand_factor(self.random());
        let client = &mut self.clients[c as usize];
        client.state = State::Requesting;
        client.xid = xid;
        client.began = now;
        client.rt = REQUEST.first(rand, false);
        client.sent = 1;
        let at = now + client.rt;
        self.transmit(c, now, Exchange::Request, out);
        self.schedule(c, at);
    }

    fn transmit(&mut self, c: u32, now: u32, exchange: Exchange, out: &mut Outbox) {
        let client = self.clients[c as usize];
        let population = &self.settings.population;
        let duid = population.duid(c);
        let offer = [Ipv6Addr::from(client.offer)];
        let request = exchange == Exchange::Request;
        let message = ClientMessage {
            exchange,
            xid: client.xid,
            client_id: duid.as_bytes(),
            server_id: request.then(|| &self.servers[usize::from(client.server)][..]),
            elapsed: ((now - client.began) / 10).min(0xffff) as u16,
            ias: IaSet::NA,
            addresses: if request { &offer } else { &[] },
            prefixes: &[],
            rapid_commit: false,
            relay: None,
        };
        let sender = sender_of(population, c);
        if out
            .push(sender, |buf| message.write_as(population, c, buf))
            .is_ok()
        {
            self.stats.sent[exchange.index()] += 1;
            match exchange {
                Exchange::Request => self.counts.request += 1,
                _ => self.counts.solicit += 1,
            }
        }
    }

    /// Sends what is due at `now_ns`, within the cap and [`PER_POLL`].
    pub fn poll(&mut self, now_ns: u64, out: &mut Outbox) {
        let now = self.ms(now_ns);
        let capped = self.settings.max_rate > 0.0;
        if capped {
            let elapsed = now.saturating_sub(self.last_refill_ms);
            self.tokens = (self.tokens + f64::from(elapsed) * self.settings.max_rate / 1000.0)
                .min(self.burst());
            self.last_refill_ms = now;
        }
        let mut budget = PER_POLL;
        while self.cursor <= now {
            let index = self.cursor as usize % SLOTS;
            let mut slot = std::mem::take(&mut self.wheel[index]);
            let mut done = 0;
            let mut stopped = false;
            for &c in &slot {
                let client = self.clients[c as usize];
                done += 1;
                if client.state == State::Bound || client.deadline != self.cursor {
                    // Stale: the timer was moved, or the client is bound.
                    continue;
                }
                if budget == 0 || (capped && self.tokens < ONE_TOKEN) {
                    if capped && self.tokens < ONE_TOKEN {
                        self.capped += 1;
                        self.max_cap_lag_ms = self.max_cap_lag_ms.max(now - self.cursor);
                    }
                    done -= 1;
                    stopped = true;
                    break;
                }
                budget -= 1;
                if capped {
                    self.tokens -= 1.0;
                }
                self.fire(c, now, out);
            }
            if stopped {
                slot.drain(..done);
                slot.append(&mut self.wheel[index]);
                self.wheel[index] = slot;
                return;
            }
            slot.clear();
            // Keep the slot's memory for the next turn, unless something was pushed meanwhile.
            if self.wheel[index].is_empty() {
                self.wheel[index] = slot;
            }
            self.cursor += 1;
            if self.cursor.is_multiple_of(HORIZON / 2) {
                self.pull_far();
            }
        }
    }

    /// Takes a datagram that arrived at `now_ns`.
    pub fn handle_datagram(&mut self, now_ns: u64, datagram: &[u8]) {
        let now = self.ms(now_ns);
        self.stats.received += 1;
        let Ok(answer) = Reply::parse(datagram) else {
            self.stats.fail(Failure::Malformed);
            return;
        };
        let population = &self.settings.population;
        let Some(c) = answer.client_id.and_then(|id| population.client_of(id)) else {
            self.stats.fail(Failure::WrongClientId);
            return;
        };
        if !relay_matches(population, c, answer.relay) {
            self.stats.fail(Failure::BadRelay);
            return;
        }
        let client = self.clients[c as usize];
        if answer.xid != client.xid {
            // An answer to an exchange the client has left (or a late second answer).
            self.stats.late += 1;
            return;
        }
        match (client.state, answer.msg_type) {
            (State::Soliciting, MessageType::Advertise) => self.advertise(c, now, &answer),
            (State::Requesting, MessageType::Reply) if client.sent > 0 => {
                self.reply(c, now, &answer)
            }
            (State::Bound, _) | (State::Requesting, MessageType::Advertise) => {
                self.stats.extra += 1
            }
            _ => self.stats.fail(Failure::WrongType),
        }
    }

    fn advertise(&mut self, c: u32, now: u32, answer: &Reply<'_>) {
        let Some(server_id) = answer.server_id else {
            self.stats.fail(Failure::MissingServerId);
            return;
        };
        if answer.status.is_some_and(|s| s != StatusCode::Success) {
            self.counts.refused += 1;
            return;
        }
        let Some(address) = answer.na.lease else {
            // RFC 9915 §18.2.9: an Advertise without an address is not taken.
            self.counts.refused += 1;
            return;
        };
        if let Some(range) = self.settings.expect_range
            && !range.contains(address)
        {
            self.stats.fail(Failure::AddressOutOfRange);
            return;
        }
        self.counts.advertise += 1;
        let server = match self.servers.iter().position(|s| s[..] == *server_id) {
            Some(i) => i,
            None if self.servers.len() < usize::from(u16::MAX) => {
                self.servers.push(server_id.to_vec());
                self.servers.len() - 1
            }
            None => {
                self.stats.fail(Failure::WrongServerId);
                return;
            }
        };
        let preference = answer.preference.unwrap_or(0);
        let client = &mut self.clients[c as usize];
        let collecting = client.sent == 1;
        if client.offered && preference <= client.preference {
            self.stats.extra += 1;
            return;
        }
        client.offer = address.octets();
        client.server = server as u16;
        client.preference = preference;
        client.offered = true;
        // During the first RT the client collects Advertises unless one has preference 255
        // (RFC 9915 §18.2.1); after it, it takes the first one at once.
        if !collecting || preference == 255 {
            client.state = State::Requesting;
            client.sent = 0;
            self.schedule(c, now);
        }
    }

    fn reply(&mut self, c: u32, now: u32, answer: &Reply<'_>) {
        let client = self.clients[c as usize];
        if answer.server_id != Some(&self.servers[usize::from(client.server)][..]) {
            self.stats.fail(Failure::WrongServerId);
            return;
        }
        if answer.status.is_some_and(|s| s != StatusCode::Success) {
            self.stats.fail(Failure::StatusFailure);
            return;
        }
        self.counts.reply += 1;
        let refused = answer.na.status.is_some_and(|s| s != StatusCode::Success);
        let Some(address) = answer.na.lease.filter(|_| !refused) else {
            // No address for this client: try again from a Solicit (RFC 9915 §18.2.10.1).
            self.counts.refused += 1;
            let client = &mut self.clients[c as usize];
            client.state = State::Delayed;
            self.schedule(c, now);
            return;
        };
        if let Some(range) = self.settings.expect_range
            && !range.contains(address)
        {
            self.stats.fail(Failure::AddressOutOfRange);
            return;
        }
        let client = &mut self.clients[c as usize];
        client.state = State::Bound;
        client.began = now;
        self.counts.bound += 1;
        if self.counts.bound == self.clients.len() as u64 {
            self.finished_ms = Some(now);
        }
    }

    /// The sample of the second that ends at `now_ns`; also kept for the timeline.
    pub fn sample(&mut self, now_ns: u64) -> AvalancheSample {
        let c = self.counts;
        let l = self.last;
        let sample = AvalancheSample {
            t_s: self.ms(now_ns) as f64 / 1000.0,
            bound_total: c.bound,
            counts: AvalancheCounts {
                solicit: c.solicit - l.solicit,
                solicit_retransmissions: c.solicit_retransmissions - l.solicit_retransmissions,
                request: c.request - l.request,
                request_retransmissions: c.request_retransmissions - l.request_retransmissions,
                request_gave_up: c.request_gave_up - l.request_gave_up,
                advertise: c.advertise - l.advertise,
                reply: c.reply - l.reply,
                refused: c.refused - l.refused,
                bound: c.bound - l.bound,
            },
        };
        self.last = c;
        self.timeline.push(sample);
        sample
    }

    /// Clients bound so far.
    pub fn bound(&self) -> u64 {
        self.counts.bound
    }

    /// Every counter so far.
    pub fn counts(&self) -> AvalancheCounts {
        self.counts
    }

    /// The validation failures, late and extra answers counted so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// When client `c` was bound, milliseconds since the start (None: not bound).
    pub fn bound_at_ms(&self, c: u32) -> Option<u32> {
        let client = self.clients.get(c as usize)?;
        (client.state == State::Bound).then_some(client.began)
    }

    /// The summary at `now_ns`.
    pub fn summary(&self, now_ns: u64) -> AvalancheSummary {
        let mut times: Vec<u32> = self
            .clients
            .iter()
            .filter(|c| c.state == State::Bound)
            .map(|c| c.began)
            .collect();
        times.sort_unstable();
        let n = self.clients.len() as u64;
        // The time by which `percent` of all clients (not of those bound) were bound.
        let at = |percent: f64| -> Option<f64> {
            let need = ((n as f64 * percent / 100.0).ceil() as u64).max(1);
            times
                .get(need as usize - 1)
                .map(|&ms| f64::from(ms) / 1000.0)
        };
        AvalancheSummary {
            clients: self.clients.len() as u32,
            relays: self.settings.population.relays(),
            bound: times.len() as u64,
            all_bound_s: self.finished_ms.map(|ms| f64::from(ms) / 1000.0),
            bound_p50_s: at(50.0),
            bound_p90_s: at(90.0),
            bound_p99_s: at(99.0),
            bound_p100_s: at(100.0),
            duration_s: f64::from(self.ms(now_ns)) / 1000.0,
            max_send_rate: self.settings.max_rate,
            held_by_send_cap: self.capped,
            max_send_cap_lag_ms: self.max_cap_lag_ms,
            counts: self.counts,
            servers: self.servers.len() as u32,
            received: self.stats.received,
            late: self.stats.late,
            extra: self.stats.extra,
            failures: Counts(
                Failure::ALL
                    .iter()
                    .map(|&f| (f.name(), self.stats.failures_of(f)))
                    .filter(|&(_, n)| n > 0)
                    .collect(),
            ),
            total_failures: self.stats.total_failures(),
            send_drops: 0,
            bad_frames: 0,
            timeline: self.timeline.clone(),
        }
    }
}

impl Scenario for Avalanche {
    fn poll(&mut self, now_ns: u64, out: &mut Outbox) {
        Avalanche::poll(self, now_ns, out);
    }

    fn handle_datagram(&mut self, now_ns: u64, datagram: &[u8], _out: &mut Outbox) {
        // Answers only move timers; what follows leaves from `poll`, within the cap.
        Avalanche::handle_datagram(self, now_ns, datagram);
    }

    fn wait(&self, _now_ns: u64) -> Duration {
        Duration::from_millis(1)
    }

    fn is_finished(&self, now_ns: u64) -> bool {
        self.finished_ms.is_some()
            || self
                .origin_ns
                .is_some_and(|o| now_ns.saturating_sub(o) >= self.settings.limit_ns)
    }
}

/// A series of the messages plot: its name, colour and counter.
type Kind = (&'static str, &'static str, fn(&AvalancheCounts) -> u64);

/// What an avalanche measured (`--json`).
#[derive(Clone, Debug, Serialize)]
pub struct AvalancheSummary {
    /// Clients.
    pub clients: u32,
    /// Emulated relays (0: on the link).
    pub relays: u32,
    /// Clients bound at the end.
    pub bound: u64,
    /// Seconds until every client was bound (None: not all were).
    pub all_bound_s: Option<f64>,
    /// Seconds until half of all clients were bound.
    pub bound_p50_s: Option<f64>,
    /// ... 90 %.
    pub bound_p90_s: Option<f64>,
    /// ... 99 %.
    pub bound_p99_s: Option<f64>,
    /// ... all (the same as `all_bound_s`).
    pub bound_p100_s: Option<f64>,
    /// Seconds the run lasted.
    pub duration_s: f64,
    /// The generator's cap on messages per second (0: none).
    pub max_send_rate: f64,
    /// Messages that waited for the cap before leaving.
    pub held_by_send_cap: u64,
    /// The longest such wait, milliseconds.
    pub max_send_cap_lag_ms: u32,
    /// Messages, retransmissions, answers and bindings.
    pub counts: AvalancheCounts,
    /// Servers heard (distinct Server Identifiers in Advertises).
    pub servers: u32,
    /// Datagrams received.
    pub received: u64,
    /// Answers to an exchange the client had left.
    pub late: u64,
    /// Answers to an exchange already answered.
    pub extra: u64,
    /// Validation failures by kind (the kinds seen).
    pub failures: Counts,
    /// All failures.
    pub total_failures: u64,
    /// Datagrams the transport could not send.
    pub send_drops: u64,
    /// Received frames dropped as malformed by the transport.
    pub bad_frames: u64,
    /// One sample per second.
    pub timeline: Vec<AvalancheSample>,
}

impl AvalancheSummary {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let secs = |s: Option<f64>| s.map_or("-".to_owned(), |s| format!("{s:.1} s"));
        let c = &self.counts;
        let mut t = String::new();
        let _ = writeln!(
            t,
            "avalanche: {} clients{} start at once (RFC 9915 timers), generator cap {}",
            self.clients,
            if self.relays > 0 {
                format!(" behind {} relays", self.relays)
            } else {
                String::new()
            },
            if self.max_send_rate > 0.0 {
                format!(
                    "{:.0} messages/s ({} held, longest {} ms)",
                    self.max_send_rate, self.held_by_send_cap, self.max_send_cap_lag_ms
                )
            } else {
                "none".to_owned()
            }
        );
        let _ = writeln!(
            t,
            "  bound            {} of {} after {:.1} s",
            self.bound, self.clients, self.duration_s
        );
        let _ = writeln!(
            t,
            "  bound by         50 % {}  90 % {}  99 % {}  100 % {}",
            secs(self.bound_p50_s),
            secs(self.bound_p90_s),
            secs(self.bound_p99_s),
            secs(self.bound_p100_s)
        );
        let _ = writeln!(
            t,
            "  sent             solicit {} ({} retransmissions)  request {} ({} \
             retransmissions, {} gave up)",
            c.solicit,
            c.solicit_retransmissions,
            c.request,
            c.request_retransmissions,
            c.request_gave_up
        );
        let _ = writeln!(
            t,
            "  received         {} (advertise {}, reply {}, refused {}, late {}, extra {}) \
             from {} servers",
            self.received, c.advertise, c.reply, c.refused, self.late, self.extra, self.servers
        );
        let _ = writeln!(
            t,
            "  failures         {}  send drops {}  bad frames {}",
            self.total_failures, self.send_drops, self.bad_frames
        );
        t
    }

    /// Bound clients against time (left) and messages per second by kind (right).
    pub fn svg(&self, title: &str) -> String {
        let t_max = self.timeline.last().map_or(1.0, |s| s.t_s);
        let mut s = document(title);
        let left = Panel::new(90.0, t_max, f64::from(self.clients));
        left.frame(&mut s, "seconds since the outage ended", "clients bound");
        let bound: Vec<(f64, f64)> = self
            .timeline
            .iter()
            .map(|p| (p.t_s, p.bound_total as f64))
            .collect();
        left.line(&mut s, &bound, "#1f77b4", "bound", false);
        left.legend(&mut s, &[("bound", "#1f77b4")]);
        let kinds: [Kind; 4] = [
            ("solicit", "#1f77b4", |c| c.solicit),
            ("solicit retransmissions", "#9467bd", |c| {
                c.solicit_retransmissions
            }),
            ("request", "#2ca02c", |c| c.request),
            ("request retransmissions", "#d62728", |c| {
                c.request_retransmissions
            }),
        ];
        let y_max = self
            .timeline
            .iter()
            .flat_map(|p| kinds.iter().map(|k| (k.2)(&p.counts)))
            .max()
            .unwrap_or(1) as f64;
        let right = Panel::new(580.0, t_max, y_max);
        right.frame(
            &mut s,
            "seconds since the outage ended",
            "messages per second",
        );
        for (name, color, of) in kinds {
            let points: Vec<(f64, f64)> = self
                .timeline
                .iter()
                .map(|p| (p.t_s, of(&p.counts) as f64))
                .collect();
            right.line(&mut s, &points, color, name, false);
        }
        right.legend(
            &mut s,
            &kinds.iter().map(|k| (k.0, k.1)).collect::<Vec<_>>(),
        );
        s.push_str("</svg>\n");
        s
    }
}

/// Runs an avalanche until every client is bound, its limit passes or `control` stops it;
/// `progress` sees each second's sample.
pub fn run_avalanche(
    avalanche: &mut Avalanche,
    transport: &mut dyn Transport,
    clock: &mut dyn Clock,
    progress: &mut dyn FnMut(&AvalancheSample),
    control: &mut dyn FnMut(u64) -> Control,
) -> io::Result<AvalancheSummary> {
    let start = clock.now_ns();
    avalanche.start(start);
    let mut second = |a: &mut Avalanche, tick: u64| {
        let sample = a.sample(tick);
        progress(&sample);
    };
    drive(avalanche, transport, clock, start, &mut second, control)?;
    let now = clock.now_ns();
    // The last, partial second.
    if avalanche
        .timeline
        .last()
        .is_none_or(|s| s.bound_total != avalanche.bound())
    {
        avalanche.sample(now);
    }
    let mut summary = avalanche.summary(now);
    summary.send_drops = transport.send_drops();
    summary.bad_frames = transport.bad_frames();
    Ok(summary)
}

/// Several avalanches side by side: clients bound against time, one colour per series.
pub fn compare_svg(title: &str, series: &[(String, Vec<(f64, f64)>)]) -> String {
    const COLORS: [&str; 6] = [
        "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#7f7f7f",
    ];
    let t_max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let y_max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.1))
        .fold(1.0, f64::max);
    let mut s = document(title);
    let panel = Panel::new(90.0, t_max, y_max);
    panel.frame(&mut s, "seconds since the outage ended", "clients bound");
    let mut legend = Vec::new();
    for (i, (name, points)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        panel.line(&mut s, points, color, name, false);
        legend.push((name.as_str(), color));
    }
    panel.legend(&mut s, &legend);
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests;
