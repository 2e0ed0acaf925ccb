//! `--scenario avalanche` against the real engine in process, on a virtual clock: every
//! client starts at once, the server takes only so many requests per second (the rest are
//! lost), and the clients' retransmissions get every one bound.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use xdhcp6_bench::avalanche::{Avalanche, AvalancheSettings, run_avalanche};
use xdhcp6_bench::population::{Population, Prefix};
use xdhcp6_bench::runner::Control;
use xdhcp6_bench::scenario::Outbox;
use xdhcp6_bench::transport::Transport;
use xdhcp6_engine::alloc::SaltKey;
use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::table::{Discard, LeaseTable};
use xdhcp6_engine::testing;
use xdhcp6_engine::{Arrival, Context, Engine, Outcome};

#[path = "support/clock.rs"]
mod clock;

use clock::{T0, VirtualClock};

/// Hands datagrams to the engine, at most `capacity` per virtual second (a token bucket of
/// 10 ms); the others are lost, as in a server's full receive queue.
struct Loopback {
    engine: Engine,
    relayed: bool,
    time: Rc<Cell<u64>>,
    replies: VecDeque<Vec<u8>>,
    buf: Vec<u8>,
    capacity: f64,
    tokens: f64,
    last_ns: u64,
    lost: u64,
}

impl Transport for Loopback {
    fn send(&mut self, out: &Outbox) -> io::Result<usize> {
        let now_ns = self.time.get();
        let refill = (now_ns - self.last_ns) as f64 * self.capacity / 1e9;
        self.tokens = (self.tokens + refill).min(self.capacity / 100.0);
        self.last_ns = now_ns;
        for request in out.iter() {
            if self.tokens < 1.0 {
                self.lost += 1;
                continue;
            }
            self.tokens -= 1.0;
            let cx = Context {
                link: if self.relayed { None } else { Some(LinkId(0)) },
                arrival: Arrival::Multicast,
                now: u32::try_from(T0 + now_ns / 1_000_000_000).expect("fits"),
            };
            match self
                .engine
                .handle(request, &cx, &mut self.buf, &mut Discard)
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

fn avalanche_against_the_engine(clients: u32, relays: u32, capacity: f64) {
    let clock = VirtualClock::default();
    let config = testing::config(xdhcp6_lab::fixtures::BENCH_ENGINE);
    let table = Arc::new(LeaseTable::with_capacity(
        100_000,
        SaltKey::from_salt(&config.server.salt),
    ));
    let mut transport = Loopback {
        engine: Engine::new(config, table.clone()).expect("engine starts"),
        relayed: relays > 0,
        time: clock.0.clone(),
        replies: VecDeque::new(),
        buf: vec![0; 4096],
        capacity,
        tokens: 0.0,
        last_ns: 0,
        lost: 0,
    };
    let pool: Prefix = "2001:db8:1::/64".parse().unwrap();
    let mut settings = AvalancheSettings::new(Population::new(clients, relays, 0xbe, pool));
    settings.expect_range = Some(pool);
    settings.seed = 42;
    settings.limit_ns = 600 * 1_000_000_000;
    let mut avalanche = Avalanche::new(settings);
    let mut seconds = 0;
    let summary = run_avalanche(
        &mut avalanche,
        &mut transport,
        &mut clock.clone(),
        &mut |_| seconds += 1,
        &mut |_| Control::Continue,
    )
    .expect("runs");
    let what = format!("{clients} clients, {relays} relays, {capacity}/s");
    eprintln!(
        "{what}, {} lost by the server:\n{}",
        transport.lost,
        summary.table()
    );
    assert_eq!(
        summary.bound,
        u64::from(clients),
        "{what}: {}",
        summary.table()
    );
    assert_eq!(summary.total_failures, 0, "{what}: {}", summary.table());
    assert!(summary.all_bound_s.is_some());
    assert_eq!(summary.bound_p100_s, summary.all_bound_s);
    assert!(summary.bound_p50_s <= summary.bound_p90_s);
    assert!(summary.bound_p90_s <= summary.bound_p99_s);
    assert!(summary.bound_p99_s <= summary.bound_p100_s);
    assert_eq!(
        table.len(),
        clients as usize,
        "{what}: one lease per client"
    );
    for c in 0..clients {
        assert!(avalanche.bound_at_ms(c).is_some(), "{what}: client {c}");
    }
    let counts = summary.counts;
    assert_eq!(counts.bound, u64::from(clients));
    // Lost requests were sent again: every client sent at least one Solicit and one Request,
    // and what the server never saw was retransmitted.
    assert!(counts.solicit >= u64::from(clients));
    assert!(counts.request >= u64::from(clients));
    assert!(
        transport.lost > 0,
        "{what}: the server's capacity was never reached"
    );
    assert!(
        counts.solicit_retransmissions + counts.request_retransmissions > 0,
        "{what}"
    );
    assert_eq!(
        summary.timeline.last().map(|s| s.bound_total),
        Some(u64::from(clients))
    );
    assert!(seconds > 0);
}

#[test]
fn avalanche_binds_everyone_through_a_slow_server() {
    avalanche_against_the_engine(3_000, 0, 1_000.0);
}

#[test]
fn avalanche_binds_everyone_behind_relays() {
    avalanche_against_the_engine(2_000, 8, 1_500.0);
}
