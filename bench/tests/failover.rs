//! RFC 6853 split-prefix failover in process: the `hold` population against two real engines
//! configured by `examples/split-a.toml` and `examples/split-b.toml`, both on one emulated
//! link (every message reaches both), on a virtual clock. Server A (Preference 255) is
//! stopped once every client has renewed; B must take every client over.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io;
use std::net::Ipv6Addr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use xdhcp6_bench::hold::{Hold, HoldSettings, HoldSummary};
use xdhcp6_bench::message::IaSet;
use xdhcp6_bench::population::{Population, Prefix};
use xdhcp6_bench::runner::{Control, run_hold};
use xdhcp6_bench::scenario::Outbox;
use xdhcp6_bench::transport::Transport;
use xdhcp6_engine::alloc::SaltKey;
use xdhcp6_engine::config::{Config, LinkId};
use xdhcp6_engine::table::{Discard, LeaseTable};
use xdhcp6_engine::{Arrival, Context, Engine, Outcome};

const SPLIT_A: &str = include_str!("../../examples/split-a.toml");
const SPLIT_B: &str = include_str!("../../examples/split-b.toml");
#[path = "support/clock.rs"]
mod clock;

use clock::{T0, VirtualClock};

const S: u64 = 1_000_000_000;

/// One link with two servers: every datagram reaches every live engine (multicast), and each
/// answers or drops it on its own.
struct Link {
    engines: Vec<Engine>,
    /// Requests come through relays: each engine places them by their link-address.
    relayed: bool,
    alive: Vec<bool>,
    time: Rc<Cell<u64>>,
    replies: VecDeque<Vec<u8>>,
    buf: Vec<u8>,
}

impl Link {
    fn new(configs: &[String], relayed: bool, time: Rc<Cell<u64>>) -> Self {
        let engines: Vec<Engine> = configs
            .iter()
            .map(|text| {
                let config = Arc::new(Config::from_toml_str(text, "split.toml").expect("loads"));
                let table = Arc::new(LeaseTable::with_capacity(
                    10_000,
                    SaltKey::from_salt(&config.server.salt),
                ));
                Engine::new(config, table).expect("engine starts")
            })
            .collect();
        Self {
            alive: vec![true; engines.len()],
            engines,
            relayed,
            time,
            replies: VecDeque::new(),
            buf: vec![0; 4096],
        }
    }
}

impl Transport for Link {
    fn send(&mut self, out: &Outbox) -> io::Result<usize> {
        let cx = Context {
            link: (!self.relayed).then_some(LinkId(0)),
            arrival: Arrival::Multicast,
            now: u32::try_from(T0 + self.time.get() / S).expect("fits"),
        };
        for request in out.iter() {
            for (engine, alive) in self.engines.iter().zip(&self.alive) {
                if !alive {
                    continue;
                }
                // Another server's Request or Renew is dropped: that is the point.
                if let Outcome::Reply { len, .. } =
                    engine.handle(request, &cx, &mut self.buf, &mut Discard)
                {
                    self.replies.push_back(self.buf[..len].to_vec());
                }
            }
        }
        Ok(out.len())
    }

    fn receive(&mut self, wait: Duration, sink: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        let n = self.replies.len();
        let pause = if n > 0 {
            20_000
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

/// The example with other lifetimes (the examples' own are 10/16/20/30).
fn with_lifetimes(text: &str, preferred: u32, valid: u32) -> String {
    text.replace(
        "preferred-lifetime = 20",
        &format!("preferred-lifetime = {preferred}"),
    )
    .replace("valid-lifetime = 30", &format!("valid-lifetime = {valid}"))
}

const CLIENTS: u32 = 1500;
const KILL_S: u64 = 15;

/// Binds `CLIENTS` over 2 s, stops A at 15 s (every client renewed once by then: T1 is 10 s),
/// runs until `end_s`.
fn failover(configs: [String; 2], end_s: u64) -> (Hold, HoldSummary) {
    failover_with(configs, end_s, 0, IaSet::NA)
}

/// [`failover`] with clients behind `relays` relays (on the examples' relay prefix) asking
/// for `ias`.
fn failover_with(configs: [String; 2], end_s: u64, relays: u32, ias: IaSet) -> (Hold, HoldSummary) {
    let clock = VirtualClock::default();
    let mut link = Link::new(&configs, relays > 0, clock.0.clone());
    let relay_link = "2001:db8:ffff:1::/64".parse().unwrap();
    let mut settings = HoldSettings::new(Population::new(CLIENTS, relays, 0xbe, relay_link));
    settings.ias = ias;
    settings.ramp_up_ms = 2000;
    settings.expect_ranges = vec!["2001:db8:1::/64".parse().unwrap()];
    settings.expect_pd_ranges = vec!["2001:db8:100::/48".parse().unwrap()];
    let mut hold = Hold::new(settings);
    let kill = Rc::new(Cell::new(false));
    let killed = kill.clone();
    let mut control = |elapsed: u64| {
        if elapsed >= KILL_S * S && !killed.get() {
            killed.set(true);
            Control::Mark
        } else {
            Control::Continue
        }
    };
    // The link is borrowed by the loop; A is stopped through a shared flag it reads.
    let summary = {
        let mut gated = Gated {
            link: &mut link,
            kill: kill.clone(),
        };
        run_hold(
            &mut hold,
            &mut gated,
            &mut clock.clone(),
            Duration::from_secs(end_s),
            &mut |_, _| {},
            &mut control,
        )
        .expect("in-process link never fails")
    };
    assert!(kill.get(), "the kill happened");
    (hold, summary)
}

/// The link with server A (the first) switched off once `kill` is set.
struct Gated<'a> {
    link: &'a mut Link,
    kill: Rc<Cell<bool>>,
}

impl Transport for Gated<'_> {
    fn send(&mut self, out: &Outbox) -> io::Result<usize> {
        if self.kill.get() {
            self.link.alive[0] = false;
        }
        self.link.send(out)
    }

    fn receive(&mut self, wait: Duration, sink: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        self.link.receive(wait, sink)
    }
}

fn index_of_preference(summary: &HoldSummary, preference: u8) -> usize {
    summary
        .servers
        .iter()
        .position(|s| s.preference == preference)
        .expect("server heard")
}

fn assert_all_moved_to_b(hold: &Hold, summary: &HoldSummary) {
    let b_half: Prefix = "2001:db8:1:0:8000::/65".parse().unwrap();
    let a = index_of_preference(summary, 255);
    let b = index_of_preference(summary, 0);
    assert_eq!(summary.servers.len(), 2);
    // At the kill every client was A's and had renewed with it.
    let at_kill = summary
        .timeline
        .iter()
        .find(|s| s.t_s >= KILL_S as f64 - 0.5)
        .expect("a sample at the kill");
    assert_eq!(at_kill.by_server[a], u64::from(CLIENTS), "{at_kill:?}");
    assert_eq!(at_kill.renewed, u64::from(CLIENTS));
    // At the end every client is B's, with an address from B's half only.
    assert_eq!(hold.bound_to(b), u64::from(CLIENTS));
    assert_eq!(hold.bound_to(a), 0);
    for c in 0..CLIENTS {
        let addresses: Vec<Ipv6Addr> = hold.addresses(c);
        assert!(!addresses.is_empty(), "client {c} holds nothing");
        assert!(
            addresses.iter().all(|&x| b_half.contains(x)),
            "client {c}: {addresses:?}"
        );
    }
    assert_eq!(summary.clients_switched, u64::from(CLIENTS));
    assert_eq!(summary.never_recovered, 0);
    assert_eq!(summary.total_failures, 0, "{:?}", summary.failures);
}

#[test]
fn split_failover_with_the_example_lifetimes_loses_no_client() {
    // The examples: T1 10, T2 16, preferred 20, valid 30. A client of A renews in vain from
    // T1, rebinds at T2 and B answers before its address expires: no outage.
    let (hold, summary) = failover([SPLIT_A.to_string(), SPLIT_B.to_string()], KILL_S + 22);
    assert_all_moved_to_b(&hold, &summary);
    assert_eq!(summary.clients_lost_service, 0, "{}", summary.table());
    // B gave every old address of A's half lifetime 0 (rebind-foreign = "zero").
    assert_eq!(summary.addresses_zeroed, u64::from(CLIENTS));
    assert!(
        summary
            .sent
            .0
            .iter()
            .any(|&(k, n)| k == "rebind" && n >= u64::from(CLIENTS))
    );
    // The last client rebinds at most T2 (16 s) after its last renewal, which was before the
    // kill; one more initial RT covers a lost first Rebind.
    let recovery = summary.recovery_s.expect("recovered");
    assert!(recovery <= 16.0 + 1.1, "{recovery}");
}

#[test]
fn split_failover_with_t2_equal_to_valid_costs_one_solicit_each() {
    // T2 = preferred = valid = 16: the address expires when the Rebind would start, so each
    // client of A solicits; B's Advertise (Preference 0) is taken when the collection window
    // (the first Solicit RT, 1.0 to 1.1 s) ends.
    let configs = [
        with_lifetimes(SPLIT_A, 16, 16),
        with_lifetimes(SPLIT_B, 16, 16),
    ];
    let (hold, summary) = failover(configs, KILL_S + 22);
    assert_all_moved_to_b(&hold, &summary);
    assert_eq!(summary.clients_lost_service, u64::from(CLIENTS));
    assert_eq!(summary.outages, u64::from(CLIENTS));
    assert!(summary.outage.p50_s >= 1.0, "{:?}", summary.outage);
    assert!(summary.outage.max_s <= 1.2, "{:?}", summary.outage);
    assert_eq!(summary.addresses_zeroed, 0);
    assert_eq!(summary.addresses_expired, u64::from(CLIENTS));
}

#[test]
fn split_failover_behind_relays_with_prefixes_loses_no_client() {
    // The same as with the example lifetimes, through four relays, each client holding an
    // address and a /64 (half of a /48 holds only 128 of the examples' /56s): B zeroes A's
    // address and prefix and hands out its own.
    let configs = [SPLIT_A, SPLIT_B]
        .map(|text| text.replace("delegated-length = 56", "delegated-length = 64"));
    let (hold, summary) = failover_with(configs, KILL_S + 22, 4, IaSet::BOTH);
    assert_all_moved_to_b(&hold, &summary);
    assert_eq!(summary.clients_lost_service, 0, "{}", summary.table());
    assert_eq!(summary.relays, 4);
    let b_pd_half: Prefix = "2001:db8:100:8000::/49".parse().unwrap();
    for c in 0..CLIENTS {
        let prefixes = hold.prefixes(c);
        assert_eq!(prefixes.len(), 1, "client {c}: {prefixes:?}");
        assert!(
            prefixes
                .iter()
                .all(|&(p, len)| len == 64 && b_pd_half.contains_prefix(p, len)),
            "client {c}: {prefixes:?}"
        );
    }
    assert_eq!(summary.addresses_zeroed, 2 * u64::from(CLIENTS));
}
