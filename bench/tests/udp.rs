//! The UDP transport and the real-time loop against the engine over real sockets, inside a
//! network namespace of the test's own (so ports 546/547 of the host are never touched).

use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use xdhcp6_bench::generator::{Flow, Flows, Generator, Settings};
use xdhcp6_bench::message::IaSet;
use xdhcp6_bench::population::{Population, Prefix};
use xdhcp6_bench::runner::{SystemClock, run_phase};
use xdhcp6_bench::transport::UdpTransport;
use xdhcp6_engine::alloc::SaltKey;
use xdhcp6_engine::config::{Config, LinkId};
use xdhcp6_engine::table::{Discard, LeaseTable};
use xdhcp6_engine::{Arrival, Context, Destination, Engine, Outcome};
use xdhcp6_lab::fixtures;
use xdhcp6_lab::netns::Netns;

const CONFIG: &str = fixtures::BENCH_UDP;

/// Answers DHCPv6 on [::1]:547 with the engine until `stop` is set.
fn serve(stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    let config = Arc::new(Config::from_toml_str(CONFIG, "udp.toml").expect("config loads"));
    let table = Arc::new(LeaseTable::with_capacity(
        10_000,
        SaltKey::from_salt(&config.server.salt),
    ));
    let engine = Engine::new(config, table).expect("engine starts");
    let socket = UdpSocket::bind((Ipv6Addr::LOCALHOST, 547)).expect("bind [::1]:547");
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("read timeout");
    thread::spawn(move || {
        let (mut request, mut reply) = (vec![0u8; 2048], vec![0u8; 4096]);
        while !stop.load(Ordering::Relaxed) {
            let Ok((len, from)) = socket.recv_from(&mut request) else {
                continue;
            };
            let cx = Context {
                link: Some(LinkId(0)),
                // [::1] stands in for the All_DHCP_Relay_Agents_and_Servers group.
                arrival: Arrival::Multicast,
                now: 1_750_000_000,
            };
            if let Outcome::Reply { len: n, to, .. } =
                engine.handle(&request[..len], &cx, &mut reply, &mut Discard)
            {
                assert_eq!(to, Destination::Client);
                let to = SocketAddr::new(from.ip(), 546);
                socket.send_to(&reply[..n], to).expect("send reply");
            }
        }
    })
}

#[test]
#[ignore = "needs root; run by cargo xtask test"]
fn sarr_over_udp_in_a_network_namespace() {
    // A namespace with only loopback up; the thread that runs in it, and the threads it
    // starts, have it to themselves.
    let netns = Netns::create(&format!("xbench-udp-{}", std::process::id())).expect("a namespace");
    let stats = netns.run(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let server = serve(stop.clone());
        let mut transport =
            UdpTransport::open(None, Some(Ipv6Addr::LOCALHOST), false).expect("bind [::]:546");
        let range: Prefix = "2001:db8:1::/65".parse().unwrap();
        let mut generator = Generator::new(Settings {
            scenario: Flows::One(Flow::Sarr),
            ias: IaSet::NA,
            population: Population::new(500, 0, 0xbe, range),
            // Generous: a loaded machine must not turn into a failed test.
            timeout_ns: 5_000_000_000,
            expect_range: Some(range),
            expect_pd_range: None,
        });
        let phase = run_phase(
            &mut generator,
            &mut transport,
            &mut SystemClock::default(),
            2000.0,
            Duration::from_millis(500),
            &mut |_| {},
        )
        .expect("the run works");
        stop.store(true, Ordering::Relaxed);
        server.join().expect("server thread");
        phase.stats
    });
    let stats = stats.expect("entering the namespace");
    assert!(stats.flows_started > 0);
    assert_eq!(stats.flows_completed, stats.flows_started, "{stats:?}");
    assert_eq!(stats.total_failures(), 0, "{stats:?}");
    assert_eq!(stats.timeouts, 0);
    assert_eq!(stats.received, 2 * stats.flows_started);
}
