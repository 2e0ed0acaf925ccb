//! `--scenario leasequery` against the real engine, in process: the generator binds its
//! clients, then the requestor asks about each of them by address and by client identifier,
//! and every answer must match what was bound; against an engine that never saw the clients,
//! or one that does not admit the requestor, every answer is counted as a mismatch.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io;
use std::net::Ipv6Addr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use xdhcp6_bench::generator::{Flow, Flows, Generator, Settings};
use xdhcp6_bench::leasequery::{
    Leasequery, LeasequerySettings, Mismatch, QueryBy, bound_by, run_queries,
};
use xdhcp6_bench::message::IaSet;
use xdhcp6_bench::population::{Population, Prefix};
use xdhcp6_bench::runner::run_phase;
use xdhcp6_bench::scenario::Outbox;
use xdhcp6_bench::transport::Transport;
use xdhcp6_engine::alloc::SaltKey;
use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::table::{Discard, LeaseTable};
use xdhcp6_engine::testing;
use xdhcp6_engine::{Arrival, Context, Engine, Outcome, Peer};

#[path = "support/clock.rs"]
mod clock;

use clock::{T0, VirtualClock};

/// The requestor's source address, as the datagram's source would show it.
const REQUESTOR_SOURCE: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x4c51);

/// Hands every datagram to an engine; a LEASEQUERY comes from [`REQUESTOR_SOURCE`].
struct Loopback {
    engine: Engine,
    time: Rc<Cell<u64>>,
    replies: VecDeque<Vec<u8>>,
    buf: Vec<u8>,
}

impl Loopback {
    fn new(time: Rc<Cell<u64>>, requestors: &str) -> Self {
        let text = format!(
            "{}\n[leasequery]\nrequestors = [{requestors}]\n",
            xdhcp6_lab::fixtures::BENCH_ENGINE
        );
        let config = testing::config(&text);
        let table = Arc::new(LeaseTable::with_capacity(
            100_000,
            SaltKey::from_salt(&config.server.salt),
        ));
        Self {
            engine: Engine::new(config, table).expect("engine starts"),
            time,
            replies: VecDeque::new(),
            buf: vec![0; 4096],
        }
    }
}

impl Transport for Loopback {
    fn send(&mut self, out: &Outbox) -> io::Result<usize> {
        for request in out.iter() {
            let cx = Context {
                link: Some(LinkId(0)),
                arrival: Arrival::Multicast,
                now: u32::try_from(T0 + self.time.get() / 1_000_000_000).expect("fits"),
            };
            let peer = Peer {
                address: (request.first() == Some(&14)).then_some(REQUESTOR_SOURCE),
                mac: None,
            };
            match self
                .engine
                .handle_from(request, &cx, peer, &mut self.buf, &mut Discard)
            {
                Outcome::Reply { len, .. } => self.replies.push_back(self.buf[..len].to_vec()),
                Outcome::Drop { reason, .. } => panic!("engine dropped a request: {reason:?}"),
            }
        }
        Ok(out.len())
    }

    fn receive(&mut self, wait: Duration, sink: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        let n = self.replies.len();
        let pause = if n > 0 {
            10_000
        } else {
            wait.as_nanos() as u64
        };
        self.time.set(self.time.get() + pause);
        while let Some(reply) = self.replies.pop_front() {
            sink(&reply);
        }
        Ok(n)
    }
}

const CLIENTS: u32 = 2000;

/// Binds every client (address and prefix) against `binder`, then runs 5,000 queries a
/// virtual second for 0.4 s against `asked`; returns the requestor.
fn bind_then_ask(asked_requestors: Option<&str>, by: QueryBy) -> Leasequery {
    let clock = VirtualClock::default();
    let mut binder = Loopback::new(clock.0.clone(), "\"fe80::/10\"");
    let pool: Prefix = "2001:db8:1::/64".parse().unwrap();
    let population = Population::new(CLIENTS, 0, 0xbe, pool);
    let mut generator = Generator::new(Settings {
        scenario: Flows::One(Flow::Sarr),
        ias: IaSet::BOTH,
        population: population.clone(),
        timeout_ns: 200_000_000,
        expect_range: Some("2001:db8:1::/65".parse().unwrap()),
        expect_pd_range: Some("2001:db8:100::/49".parse().unwrap()),
    });
    let bind = run_phase(
        &mut generator,
        &mut binder,
        &mut clock.clone(),
        20_000.0,
        Duration::from_millis(100),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(bind.stats.total_failures(), 0, "{:?}", bind.stats);
    let bound = bound_by(&generator, &population);
    assert_eq!(bound.len(), CLIENTS as usize);
    assert!(
        bound
            .iter()
            .all(|b| b.address.is_some() && b.prefix.is_some())
    );
    let mut requestor = Leasequery::new(LeasequerySettings {
        population,
        bound,
        requestor: vec![0, 3, 0, 1, 2, 0x4c, 0x51, 0, 0, 1],
        timeout_ns: 200_000_000,
        by,
    });
    let mut fresh;
    let transport: &mut dyn Transport = match asked_requestors {
        None => &mut binder,
        Some(requestors) => {
            fresh = Loopback::new(clock.0.clone(), requestors);
            &mut fresh
        }
    };
    let phase = run_queries(
        &mut requestor,
        transport,
        &mut clock.clone(),
        5_000.0,
        Duration::from_millis(400),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(phase.stats.flows_started, 2000, "{:?}", phase.stats);
    requestor
}

fn mismatch(requestor: &Leasequery, kind: Mismatch) -> u64 {
    requestor
        .mismatches()
        .0
        .iter()
        .find(|(name, _)| *name == kind.name())
        .map_or(0, |(_, n)| *n)
}

#[test]
fn every_answer_matches_what_was_bound() {
    let requestor = bind_then_ask(None, QueryBy::Both);
    let stats = requestor.stats();
    assert_eq!(stats.flows_completed, 2000, "{stats:?}");
    assert_eq!(stats.total_failures(), 0, "{:?}", requestor.mismatches());
    assert_eq!((stats.timeouts, stats.skipped), (0, 0));
    assert_eq!(requestor.sent_by(), (1000, 1000));
    assert_eq!(stats.latency.count(), 2000);
    for by in [QueryBy::Address, QueryBy::ClientId] {
        let requestor = bind_then_ask(None, by);
        assert_eq!(requestor.stats().flows_completed, 2000, "{by:?}");
    }
}

#[test]
fn a_server_without_the_bindings_or_refusing_the_requestor_fails_every_query() {
    // Another server of the set (same configuration, none of these bindings).
    let requestor = bind_then_ask(Some("\"fe80::/10\""), QueryBy::Both);
    assert_eq!(requestor.stats().flows_completed, 0);
    assert_eq!(mismatch(&requestor, Mismatch::NoClientData), 2000);
    // A server that does not list the requestor answers NotAllowed.
    let requestor = bind_then_ask(Some("\"2001:db8:ffff::/48\""), QueryBy::Address);
    assert_eq!(mismatch(&requestor, Mismatch::Status), 2000);
    assert_eq!(requestor.stats().total_failures(), 2000);
}
