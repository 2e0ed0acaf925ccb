//! End to end against the real engine, in process: the generator's datagrams go straight to
//! `Engine::handle` through a loopback transport, on a virtual clock.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use xdhcp6_bench::generator::{Flow, Flows, Generator, Settings};
use xdhcp6_bench::hold::{Hold, HoldSettings};
use xdhcp6_bench::message::IaSet;
use xdhcp6_bench::population::{Population, Prefix};
use xdhcp6_bench::runner::{Control, Ramp, run_hold, run_phase, run_ramp};
use xdhcp6_bench::scenario::Outbox;
use xdhcp6_bench::stats::Stats;
use xdhcp6_bench::transport::Transport;
use xdhcp6_engine::alloc::SaltKey;
use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::table::{Discard, LeaseTable};
use xdhcp6_engine::testing;
use xdhcp6_engine::{Arrival, Context, Destination, Engine, Outcome};

const CONFIG: &str = xdhcp6_lab::fixtures::BENCH_ENGINE;

#[path = "support/clock.rs"]
mod clock;

use clock::{T0, VirtualClock};

/// Hands every datagram to the engine; replies wait in a queue for `receive`.
struct Loopback {
    engine: Engine,
    relayed: bool,
    time: Rc<Cell<u64>>,
    replies: VecDeque<Vec<u8>>,
    buf: Vec<u8>,
    /// Requests the engine may take per virtual second (a token bucket), `None` for all.
    capacity: Option<u64>,
    tokens: f64,
    last_ns: u64,
    dropped: u64,
}

impl Loopback {
    fn new(relayed: bool, time: Rc<Cell<u64>>) -> Self {
        let config = testing::config(CONFIG);
        let table = Arc::new(LeaseTable::with_capacity(
            100_000,
            SaltKey::from_salt(&config.server.salt),
        ));
        Self {
            engine: Engine::new(config, table).expect("engine starts"),
            relayed,
            time,
            replies: VecDeque::new(),
            buf: vec![0; 4096],
            capacity: None,
            tokens: 0.0,
            last_ns: 0,
            dropped: 0,
        }
    }
}

impl Transport for Loopback {
    fn send(&mut self, out: &Outbox) -> io::Result<usize> {
        let now_ns = self.time.get();
        if let Some(capacity) = self.capacity {
            let refill = (now_ns - self.last_ns) as f64 * capacity as f64 / 1e9;
            self.tokens = (self.tokens + refill).min(capacity as f64 / 100.0);
            self.last_ns = now_ns;
        }
        for request in out.iter() {
            if self.capacity.is_some() {
                if self.tokens < 1.0 {
                    self.dropped += 1;
                    continue;
                }
                self.tokens -= 1.0;
            }
            let cx = Context {
                // Relayed messages are placed by their link-address.
                link: if self.relayed { None } else { Some(LinkId(0)) },
                arrival: Arrival::Multicast,
                now: u32::try_from(T0 + now_ns / 1_000_000_000).expect("fits"),
            };
            match self
                .engine
                .handle(request, &cx, &mut self.buf, &mut Discard)
            {
                Outcome::Reply { len, to, .. } => {
                    let expected = if self.relayed {
                        matches!(to, Destination::Relay { .. })
                    } else {
                        to == Destination::Client
                    };
                    assert!(expected, "reply sent to {to:?}");
                    self.replies.push_back(self.buf[..len].to_vec());
                }
                Outcome::Drop { reason, .. } => panic!("engine dropped a request: {reason:?}"),
            }
        }
        Ok(out.len())
    }

    fn receive(&mut self, wait: Duration, sink: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        let n = self.replies.len();
        // The server takes 10 us to answer; an idle wait lasts as long as asked.
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

fn settings(scenario: Flows, clients: u32, relays: u32, ias: IaSet) -> Settings {
    let pool: Prefix = "2001:db8:1::/64".parse().unwrap();
    Settings {
        scenario,
        ias,
        population: Population::new(clients, relays, 0xbe, pool),
        timeout_ns: 200_000_000,
        expect_range: Some("2001:db8:1::/65".parse().unwrap()),
        expect_pd_range: Some("2001:db8:100::/49".parse().unwrap()),
    }
}

/// Runs `scenario` for `clients` clients at 20,000 flows/s for 0.25 virtual seconds.
fn run(scenario: Flows, clients: u32, relays: u32, ias: IaSet) -> (Generator, Stats) {
    let clock = VirtualClock::default();
    let mut transport = Loopback::new(relays > 0, clock.0.clone());
    let mut generator = Generator::new(settings(scenario, clients, relays, ias));
    let mut samples = 0;
    let phase = run_phase(
        &mut generator,
        &mut transport,
        &mut clock.clone(),
        20_000.0,
        Duration::from_millis(250),
        &mut |_| samples += 1,
    )
    .expect("loopback never fails");
    assert_eq!(phase.samples.len(), samples);
    (generator, phase.stats)
}

fn assert_clean(what: &str, s: &Stats) {
    assert_eq!(s.flows_started, 5000, "{what}: {s:?}");
    assert_eq!(s.flows_completed, s.flows_started, "{what}: {s:?}");
    assert_eq!(s.total_failures(), 0, "{what}: {s:?}");
    assert_eq!(s.timeouts, 0, "{what}");
    assert_eq!(s.skipped, 0, "{what}");
}

#[test]
fn every_scenario_runs_clean_against_the_engine() {
    for flow in Flow::ALL {
        for relays in [0, 10] {
            let what = format!("{flow} with {relays} relays");
            let (generator, stats) = run(Flows::One(flow), 3000, relays, IaSet::NA);
            assert_clean(&what, &stats);
            assert_eq!(generator.servers().len(), 1, "{what}");
            match flow {
                // Every release flow binds first (the client has no binding) and then lets go.
                Flow::Info | Flow::Release => {
                    assert_eq!(generator.bound_clients(), 0, "{what}");
                    assert_eq!(stats.flows_known, 0, "{what}");
                }
                // 5,000 flows over 3,000 clients: the population wraps after 3,000, and every
                // later flow is a bound client's.
                _ => {
                    assert_eq!(generator.bound_clients(), 3000, "{what}");
                    assert_eq!(stats.flows_known, 2000, "{what}");
                }
            }
        }
    }
}

#[test]
fn prefix_delegation_and_mixes_run_clean() {
    let (_, s) = run(Flows::One(Flow::Renew), 3000, 0, IaSet::BOTH);
    assert_clean("renew na+pd", &s);
    let (_, s) = run(Flows::One(Flow::Release), 3000, 4, IaSet::PD);
    assert_clean("release pd", &s);
    let mix = Flows::mix("sarr=4,rapid=1,renew=2,rebind=1,release=1,info=1,pd=1,na+pd=1").unwrap();
    for relays in [0, 3] {
        let (_, s) = run(mix.clone(), 2000, relays, IaSet::NA);
        assert_clean("mix", &s);
    }
}

/// Ramps SARR against a loopback engine that takes `capacity` requests per virtual second;
/// returns each step's (rate, passed), the result and the transport.
fn ramp_against(
    capacity: u64,
    ramp: Ramp,
) -> (Vec<(f64, bool)>, xdhcp6_bench::runner::RampResult, Loopback) {
    let clock = VirtualClock::default();
    let mut transport = Loopback::new(false, clock.0.clone());
    transport.capacity = Some(capacity);
    let mut generator = Generator::new(settings(Flows::One(Flow::Sarr), 20_000, 0, IaSet::NA));
    let mut verdicts = Vec::new();
    let result = run_ramp(
        &mut generator,
        &mut transport,
        &mut clock.clone(),
        &ramp,
        &mut |_| {},
        &mut |phase, passed| verdicts.push((phase.rate, passed)),
    )
    .expect("loopback never fails");
    (verdicts, result, transport)
}

#[test]
fn ramp_finds_the_capacity_of_a_limited_server() {
    // 5000 requests/s: SARR takes two per flow, so 2500 flows/s is the limit.
    let (verdicts, result, transport) = ramp_against(
        5000,
        Ramp {
            start: 1000.0,
            step: 1000.0,
            max: 5000.0,
            loss_percent: 1.0,
            step_duration: Duration::from_secs(1),
            refine: 0,
        },
    );
    assert_eq!(verdicts, [(1000.0, true), (2000.0, true), (3000.0, false)]);
    assert_eq!(result.best_rate, Some(2000.0));
    assert!(transport.dropped > 0);
    let last = &result.steps[2].stats;
    assert!(last.timeouts > 0);
    assert_eq!(last.total_failures(), 0);
}

#[test]
fn ramp_refinement_bisects_towards_the_capacity() {
    // 5400 requests/s: 2700 SARR flows/s.
    let (verdicts, result, _) = ramp_against(
        5400,
        Ramp {
            start: 2000.0,
            step: 2000.0,
            max: 10_000.0,
            loss_percent: 1.0,
            step_duration: Duration::from_secs(1),
            refine: 2,
        },
    );
    // 2000 passes, 4000 fails; then 3000 (fails), then 2500 (under the limit: passes).
    assert_eq!(
        verdicts,
        [
            (2000.0, true),
            (4000.0, false),
            (3000.0, false),
            (2500.0, true)
        ]
    );
    assert_eq!(result.best_rate, Some(2500.0));
    assert_eq!(result.steps.len(), 4);
}

/// Runs `hold` for `clients` clients (started over 1 s) for 25 virtual seconds: everyone binds,
/// renews at T1 (10 s) and still holds its lease at the end.
fn hold_against_the_engine(clients: u32, relays: u32, ias: IaSet) {
    let what = format!("hold {} with {relays} relays", ias.name());
    let clock = VirtualClock::default();
    let mut transport = Loopback::new(relays > 0, clock.0.clone());
    let pool: Prefix = "2001:db8:1::/64".parse().unwrap();
    let mut settings = HoldSettings::new(Population::new(clients, relays, 0xbe, pool));
    settings.ias = ias;
    settings.ramp_up_ms = 1000;
    settings.expect_ranges = vec!["2001:db8:1::/65".parse().unwrap()];
    settings.expect_pd_ranges = vec!["2001:db8:100::/49".parse().unwrap()];
    let mut hold = Hold::new(settings);
    let mut seconds = 0;
    let summary = run_hold(
        &mut hold,
        &mut transport,
        &mut clock.clone(),
        Duration::from_secs(25),
        &mut |_, _| seconds += 1,
        &mut |_| Control::Continue,
    )
    .expect("loopback never fails");
    let all = u64::from(clients);
    assert_eq!(summary.total_failures, 0, "{what}: {}", summary.table());
    assert_eq!(summary.clients_bound, all, "{what}");
    assert_eq!(summary.clients_renewed, all, "{what}");
    assert_eq!(summary.in_service_at_end, all, "{what}");
    assert_eq!(summary.clients_lost_service, 0, "{what}");
    assert_eq!(summary.servers.len(), 1, "{what}");
    assert_eq!(summary.relays, relays, "{what}");
    assert_eq!(summary.timeline.len(), seconds, "{what}");
    let sent = |kind: &str| {
        summary
            .sent
            .0
            .iter()
            .find(|&&(k, _)| k == kind)
            .map(|&(_, n)| n)
    };
    assert_eq!(sent("solicit"), Some(all), "{what}");
    assert_eq!(sent("request"), Some(all), "{what}");
    assert!(sent("renew") >= Some(all), "{what}");
    let pd_pool: Prefix = "2001:db8:100::/48".parse().unwrap();
    for c in 0..clients {
        let addresses = hold.addresses(c);
        let prefixes = hold.prefixes(c);
        assert_eq!(addresses.len(), usize::from(ias.na), "{what}: client {c}");
        assert_eq!(prefixes.len(), usize::from(ias.pd), "{what}: client {c}");
        assert!(addresses.iter().all(|&a| pool.contains(a)), "{what}");
        assert!(
            prefixes
                .iter()
                .all(|&(p, len)| len == 64 && pd_pool.contains_prefix(p, len)),
            "{what}: {prefixes:?}"
        );
    }
}

#[test]
fn hold_keeps_addresses_behind_relays() {
    hold_against_the_engine(600, 10, IaSet::NA);
}

#[test]
fn hold_keeps_delegated_prefixes() {
    hold_against_the_engine(600, 0, IaSet::PD);
    hold_against_the_engine(600, 4, IaSet::BOTH);
}
