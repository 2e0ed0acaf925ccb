//! `--scenario bulk-leasequery` against the real engine, in process: the generator binds its
//! clients through relays (datagrams straight to `Engine::handle` on a virtual clock), then
//! the scenario's requestor asks a loopback TCP listener that answers with the engine's Bulk
//! Leasequery stream, and every answer is checked against what the generator bound.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Ipv6Addr, TcpListener};
use std::rc::Rc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use xdhcp6_bench::bulk_leasequery;
use xdhcp6_bench::generator::{Flow, Flows, Generator, Settings};
use xdhcp6_bench::message::IaSet;
use xdhcp6_bench::population::{Population, Prefix};
use xdhcp6_bench::runner::run_phase;
use xdhcp6_bench::scenario::Outbox;
use xdhcp6_bench::transport::Transport;
use xdhcp6_engine::alloc::SaltKey;
use xdhcp6_engine::table::{Discard, LeaseTable};
use xdhcp6_engine::testing;
use xdhcp6_engine::{Arrival, Context, Engine, Outcome};

#[path = "support/clock.rs"]
mod clock;

use clock::{T0, VirtualClock};

/// Relayed datagrams to the engine; replies wait in a queue.
struct Loopback {
    engine: Arc<Engine>,
    time: Rc<Cell<u64>>,
    replies: VecDeque<Vec<u8>>,
    buf: Vec<u8>,
}

impl Transport for Loopback {
    fn send(&mut self, out: &Outbox) -> io::Result<usize> {
        for request in out.iter() {
            let cx = Context {
                link: None,
                arrival: Arrival::Multicast,
                now: u32::try_from(T0 + self.time.get() / 1_000_000_000).expect("fits"),
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

/// Serves Bulk Leasequery from `engine` to one connection on `listener`, as the daemon does:
/// one query at a time, each answer written chunk by chunk.
fn serve(listener: TcpListener, engine: Arc<Engine>, now: u32) {
    let (mut stream, peer) = listener.accept().unwrap();
    let requestor = match peer.ip() {
        std::net::IpAddr::V6(address) => address,
        std::net::IpAddr::V4(address) => address.to_ipv6_mapped(),
    };
    let mut out = Vec::new();
    loop {
        let mut length = [0u8; 2];
        if stream.read_exact(&mut length).is_err() {
            return;
        }
        let mut request = vec![0; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut request).unwrap();
        let mut answer = engine.bulk_leasequery(&request, requestor, now).unwrap();
        loop {
            out.clear();
            let done = answer.write_more(&engine, now, &mut out, 16 * 1024);
            stream.write_all(&out).unwrap();
            if done {
                break;
            }
        }
    }
}

fn scenario(ias: IaSet) {
    let config = testing::config(&format!(
        "{}\n[leasequery]\nrequestors = [\"::1/128\"]\n",
        xdhcp6_lab::fixtures::BENCH_ENGINE
    ));
    let table = Arc::new(LeaseTable::with_capacity(
        100_000,
        SaltKey::from_salt(&config.server.salt),
    ));
    let engine = Arc::new(Engine::new(config, table).expect("engine starts"));
    let pool: Prefix = "2001:db8:1::/64".parse().unwrap();
    let population = Population::new(3000, 7, 0xbe, pool);
    let clock = VirtualClock::default();
    let mut transport = Loopback {
        engine: Arc::clone(&engine),
        time: clock.0.clone(),
        replies: VecDeque::new(),
        buf: vec![0; 4096],
    };
    let mut generator = Generator::new(Settings {
        scenario: Flows::One(Flow::Sarr),
        ias,
        population: population.clone(),
        timeout_ns: 200_000_000,
        expect_range: Some("2001:db8:1::/65".parse().unwrap()),
        expect_pd_range: Some("2001:db8:100::/49".parse().unwrap()),
    });
    // 3,000 flows: every client binds once.
    run_phase(
        &mut generator,
        &mut transport,
        &mut clock.clone(),
        20_000.0,
        Duration::from_millis(150),
        &mut |_| {},
    )
    .expect("loopback never fails");
    assert_eq!(generator.bound_clients(), 3000);

    let listener = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).unwrap();
    let address = listener.local_addr().unwrap();
    let server = {
        let engine = Arc::clone(&engine);
        let now = u32::try_from(T0 + 1).unwrap();
        thread::spawn(move || serve(listener, engine, now))
    };
    let summary = bulk_leasequery::run(
        address,
        &population,
        &|client| generator.binding(client),
        25,
        Duration::from_secs(30),
    )
    .expect("the queries are answered");
    server.join().unwrap();
    let per_client = u64::from(ias.na) + u64::from(ias.pd);
    assert_eq!(summary.checked.failures, 0, "{}", summary.table());
    assert_eq!(summary.relay_queries, 7);
    assert_eq!(summary.leases_streamed, 3000 * per_client);
    assert_eq!(summary.remote_id_queries, 25);
    assert_eq!(
        summary.checked.confirmed,
        (3000 + 25) * per_client,
        "{}",
        summary.table()
    );
    assert_eq!(summary.checked.unconfirmed, 0);
    assert!(summary.leases_per_second > 0.0);
}

#[test]
fn every_relay_streams_what_the_generator_bound() {
    scenario(IaSet::NA);
}

#[test]
fn addresses_and_prefixes_are_both_checked() {
    scenario(IaSet::BOTH);
}
