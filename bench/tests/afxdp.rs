//! The AF_XDP transport end to end: two network namespaces joined by a veth pair, the
//! generator (`--transport afxdp`) on one end, and on the other `xdhcp6-reflect` or `xdhcp6d
//! --datapath xdp`.
//!
//! These need root and the eBPF object: `cargo xtask test` builds it and runs
//! `XDHCP6_EBPF_OBJECT=... cargo test -p xdhcp6d -p xdhcp6-bench -- --include-ignored
//! --test-threads=1`, which also builds the `xdhcp6d` binary next to this crate's. Nothing here
//! skips itself: a missing prerequisite fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use xdhcp6_lab::fixtures;
use xdhcp6_lab::netns::{self, Netns};
use xdhcp6_lab::process::Process;

const NEEDS: &str = "needs root and the eBPF object; run by cargo xtask test";
const OBJECT_ENV: &str = "XDHCP6_EBPF_OBJECT";
const CLIENT_IF: &str = "xbg0";
const SERVER_IF: &str = "xbs0";
const SERVER_GLOBAL: &str = "2001:db8::547";
const CLIENT_GLOBAL: &str = "2001:db8::1";

/// Two namespaces and the veth pair between them, removed on drop.
/// The client and server namespaces joined by the veth pair; removed on drop.
struct Link {
    client: Netns,
    server: Netns,
}

impl Link {
    fn new() -> Self {
        Self::with_queues(1)
    }

    /// The link with `queues` receive and transmit queues on both ends.
    fn with_queues(queues: u32) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n}", std::process::id());
        let client = Netns::create(&format!("xbench-cli-{id}")).expect("client namespace");
        let server = Netns::create(&format!("xbench-srv-{id}")).expect("server namespace");
        if queues == 1 {
            netns::veth_pair(&client, CLIENT_IF, &server, SERVER_IF).expect("veth pair");
        } else {
            netns::veth_pair_with_queues(&client, CLIENT_IF, &server, SERVER_IF, queues)
                .expect("veth pair");
        }
        for (namespace, interface, address) in [
            (&client, CLIENT_IF, "2001:db8::1/64"), // CLIENT_GLOBAL
            (&server, SERVER_IF, "2001:db8::547/64"),
        ] {
            // Offloads stay on: kernel sockets' checksums arrive unfinished (CHECKSUM_PARTIAL)
            // and the generator takes them; the leak test below keeps them off.
            namespace.add_address(interface, address).expect("address");
        }
        for (namespace, interface) in [(&client, CLIENT_IF), (&server, SERVER_IF)] {
            namespace
                .wait_for_addresses(interface)
                .unwrap_or_else(|error| panic!("{error}"));
        }
        Link { client, server }
    }

    fn server_mac(&self) -> String {
        self.server
            .mac(SERVER_IF)
            .expect("the server's MAC address")
    }
}

/// A process of a test, its output in a log file; SIGINT stops it.
struct Background {
    process: Process,
    dir: PathBuf,
}

impl Background {
    fn start(command: Command, what: &'static str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("xbench-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a log folder");
        let process = Process::start(command, &dir.join(format!("{what}.log")), what)
            .unwrap_or_else(|error| panic!("starting {what}: {error}"));
        Background { process, dir }
    }

    fn stop(mut self) -> String {
        let status = self
            .process
            .stop("INT", Duration::from_secs(30))
            .unwrap_or_else(|error| panic!("{error}"));
        let text = self.process.log_text();
        assert!(status.success(), "{} failed: {text}", self.process.name());
        text
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.process.try_wait().expect("polling the process") {
            panic!(
                "{} exited early ({status}): {}",
                self.process.name(),
                self.process.log_text()
            );
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.process.signal("INT");
        let _ = self.process.wait(Duration::from_secs(10));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn object() -> String {
    std::env::var(OBJECT_ENV).unwrap_or_else(|_| {
        panic!("{OBJECT_ENV} is not set: point it at the built xdhcp6-ebpf object; {NEEDS}")
    })
}

fn bench() -> &'static str {
    env!("CARGO_BIN_EXE_xdhcp6-bench")
}

fn reflector() -> &'static str {
    env!("CARGO_BIN_EXE_xdhcp6-reflect")
}

/// The daemon binary of the same build: `xdhcp6d` beside this crate's binaries.
fn daemon() -> PathBuf {
    let path = Path::new(bench()).with_file_name("xdhcp6d");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p xdhcp6d` (cargo xtask test does); {NEEDS}",
        path.display()
    );
    path
}

/// Runs the generator over AF_XDP in the client namespace and returns its JSON summary.
fn generate(link: &Link, args: &[&str]) -> serde_json::Value {
    let mut command = link.client.command(bench());
    command
        .env(OBJECT_ENV, object())
        .args([
            "--transport",
            "afxdp",
            "--interface",
            CLIENT_IF,
            "--quiet",
            "--json",
            "-",
        ])
        .args(args);
    let output = command.output().expect("running xdhcp6-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "xdhcp6-bench {args:?} failed ({}): {stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

/// One second of SARR at 500 flows/s from 1,000 clients (plus `extra` flags), every flow
/// answered correctly with two replies; returns the number of flows.
fn sarr_500(link: &Link, extra: &[&str]) -> u64 {
    let mut args = vec![
        "--scenario",
        "sarr",
        "--clients",
        "1000",
        "--rate",
        "500",
        "--duration",
        "1",
        "--expect-range",
        "2001:db8:1::/65",
    ];
    args.extend_from_slice(extra);
    let summary = generate(link, &args);
    let flows = assert_clean(&summary, 500);
    assert_eq!(count(&summary, "received"), 2 * flows, "{summary}");
    flows
}

fn count(summary: &serde_json::Value, field: &str) -> u64 {
    summary[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {summary}"))
}

fn sent(summary: &serde_json::Value, exchange: &str) -> u64 {
    summary["sent"][exchange].as_u64().unwrap_or(0)
}

/// Every flow started completed: nothing lost, nothing failed, nothing malformed. A flow the
/// pacer could not start in time on a busy machine is counted as skipped, not lost. Returns
/// the flows started.
fn assert_clean(summary: &serde_json::Value, flows: u64) -> u64 {
    let started = count(summary, "flows_started");
    assert_eq!(started + count(summary, "skipped"), flows, "{summary}");
    assert!(started >= flows / 2, "{summary}");
    assert_eq!(count(summary, "flows_completed"), started, "{summary}");
    assert_eq!(count(summary, "total_failures"), 0, "{summary}");
    assert_eq!(count(summary, "timeouts"), 0, "{summary}");
    assert_eq!(count(summary, "bad_frames"), 0, "{summary}");
    assert_eq!(count(summary, "send_drops"), 0, "{summary}");
    started
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn echo_through_the_reflector_returns_every_request() {
    let link = Link::new();
    let mut reflect = Background::start(
        {
            let mut command = link.server.command(reflector());
            command.env(OBJECT_ENV, object()).args([
                "--interface",
                SERVER_IF,
                "--xdp-mode",
                "native",
            ]);
            command
        },
        "xdhcp6-reflect",
    );
    thread::sleep(Duration::from_millis(500));
    reflect.assert_running();

    // Direct clients to ff02::1:2, then relays to the reflector's unicast address.
    let direct = generate(
        &link,
        &[
            "--scenario",
            "echo",
            "--clients",
            "500",
            "--rate",
            "1000",
            "--duration",
            "1",
        ],
    );
    let flows = assert_clean(&direct, 1000);
    let requests = sent(&direct, "solicit") + sent(&direct, "request");
    assert_eq!(requests, 2 * flows, "{direct}");
    assert_eq!(
        count(&direct, "received"),
        requests,
        "replies == requests: {direct}"
    );

    let mac = link.server_mac();
    let relayed = generate(
        &link,
        &[
            "--scenario",
            "echo",
            "--clients",
            "500",
            "--rate",
            "1000",
            "--duration",
            "1",
            "--relays",
            "5",
            "--relay-link",
            "2001:db8:1::/64",
            "--server",
            SERVER_GLOBAL,
            "--server-mac",
            &mac,
            "--xdp-mode",
            "skb",
        ],
    );
    let relayed_flows = assert_clean(&relayed, 1000);
    let relayed_requests = sent(&relayed, "solicit") + sent(&relayed, "request");
    assert_eq!(relayed_requests, 2 * relayed_flows, "{relayed}");
    assert_eq!(count(&relayed, "received"), relayed_requests, "{relayed}");

    let output = reflect.stop();
    let total = requests + relayed_requests;
    assert!(
        output.contains(&format!(
            "received {total}  reflected {total}  bad frames 0"
        )),
        "{output}"
    );
}

/// The reflector's count of frames received on `queue`, from its report at exit.
fn reflected_on(output: &str, queue: u32) -> u64 {
    let prefix = format!("queue {queue}: received ");
    let line = output
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no line for queue {queue}: {output}"));
    line.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count for queue {queue}: {output}"))
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn two_queues_of_the_generator_reach_two_queues_of_the_reflector() {
    let link = Link::with_queues(2);
    let start_reflector = || {
        let mut reflect = Background::start(
            {
                let mut command = link.server.command(reflector());
                command.env(OBJECT_ENV, object()).args([
                    "--interface",
                    SERVER_IF,
                    "--xdp-mode",
                    "native",
                    "--queues",
                    "2",
                ]);
                command
            },
            "xdhcp6-reflect",
        );
        thread::sleep(Duration::from_millis(500));
        reflect.assert_running();
        reflect
    };
    let echo = |extra: &[&str]| {
        let mut args = vec![
            "--queues",
            "2",
            "--xdp-mode",
            "native",
            "--scenario",
            "echo",
            "--clients",
            "1000",
            "--rate",
            "1000",
            "--duration",
            "1",
        ];
        args.extend_from_slice(extra);
        let summary = generate(&link, &args);
        let flows = assert_clean(&summary, 1000);
        let requests = sent(&summary, "solicit") + sent(&summary, "request");
        assert_eq!(requests, 2 * flows, "{summary}");
        assert_eq!(count(&summary, "received"), requests, "{summary}");
        requests
    };

    // Direct clients: each sends from its own address, so RSS spreads them over both queues
    // and every request sent on the generator's queue i arrives on the reflector's queue i.
    let reflect = start_reflector();
    let requests = echo(&[]);
    let output = reflect.stop();
    let (q0, q1) = (reflected_on(&output, 0), reflected_on(&output, 1));
    assert!(q0 > 0 && q1 > 0, "both queues carry traffic: {output}");
    assert_eq!(q0 + q1, requests, "{output}");
    assert!(
        output.contains(&format!(
            "all queues: received {requests}  reflected {requests}  bad frames 0"
        )),
        "{output}"
    );

    // One relay: one source address and port, so all of it on one queue, as on a NIC.
    let mac = link.server_mac();
    let reflect = start_reflector();
    let relayed = echo(&[
        "--relays",
        "1",
        "--relay-link",
        "2001:db8:1::/64",
        "--server",
        SERVER_GLOBAL,
        "--server-mac",
        &mac,
    ]);
    let output = reflect.stop();
    let (q0, q1) = (reflected_on(&output, 0), reflected_on(&output, 1));
    assert_eq!((q0.min(q1), q0.max(q1)), (0, relayed), "{output}");
}

/// Starts `xdhcp6d --datapath DATAPATH` on the server end with the `bench-afxdp` fixture, its files in `work`,
/// and waits until it runs.
fn start_daemon(link: &Link, work: &Path, datapath: &str) -> Background {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work).unwrap();
    let config = work.join("server.toml");
    let text = fixtures::render(fixtures::BENCH_AFXDP, &[("SERVER_IF", SERVER_IF)]).unwrap();
    std::fs::write(&config, text).unwrap();
    let mut server = Background::start(
        {
            let mut command = link.server.command(daemon());
            command
                .current_dir(work)
                .env(OBJECT_ENV, object())
                .arg("run")
                .arg("--config")
                .arg(&config)
                .args(["--datapath", datapath, "--xdp-mode", "native"])
                .args(["--metrics", "off", "--control", "off"])
                .arg("--journal")
                .arg(work.join("leases.journal"));
            command
        },
        "xdhcp6d",
    );
    thread::sleep(Duration::from_secs(2));
    server.assert_running();
    server
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn relays_sharing_the_interface_address_reach_a_kernel_socket_server() {
    // xdhcp6d --datapath udp answers through the kernel, which must resolve the relay's
    // address by neighbour discovery: with --relay-source the relays send from the client
    // interface's own address, which the client kernel answers for.
    let link = Link::new();
    let work = std::env::temp_dir().join(format!("xdhcp6-bench-relay-src-{}", std::process::id()));
    let server = start_daemon(&link, &work, "udp");
    let mac = link.server_mac();
    let flows = sarr_500(
        &link,
        &[
            "--relays",
            "4",
            "--relay-source",
            CLIENT_GLOBAL,
            "--server",
            SERVER_GLOBAL,
            "--server-mac",
            &mac,
        ],
    );
    let log = server.stop();
    let total = 2 * flows;
    assert!(
        log.contains(&format!("received={total} sent={total}")),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn xdhcp6d_over_xdp_answers_sarr_over_afxdp() {
    let link = Link::new();
    let work = std::env::temp_dir().join(format!("xdhcp6-bench-afxdp-{}", std::process::id()));
    let server = start_daemon(&link, &work, "xdp");

    let flows = sarr_500(&link, &[]);

    let mac = link.server_mac();
    let relayed_flows = sarr_500(
        &link,
        &[
            "--relays",
            "4",
            "--server",
            SERVER_GLOBAL,
            "--server-mac",
            &mac,
            "--seed",
            "7",
        ],
    );

    let log = server.stop();
    let total = 2 * (flows + relayed_flows);
    assert!(
        log.contains(&format!("received={total} sent={total}")),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn xdhcp6d_over_xdp_keeps_hold_clients_over_afxdp() {
    let link = Link::new();
    let work = std::env::temp_dir().join(format!("xdhcp6-bench-hold-{}", std::process::id()));
    let server = start_daemon(&link, &work, "xdp");
    let mac = link.server_mac();
    let relayed_with_prefixes = [
        "--relays",
        "4",
        "--ia",
        "na+pd",
        "--server",
        SERVER_GLOBAL,
        "--server-mac",
        &mac,
        "--seed",
        "7",
    ];
    for extra in [&[][..], &relayed_with_prefixes[..]] {
        // The server sends no Preference: each client takes its Advertise when the first
        // Solicit RT (1.0 to 1.1 s) ends, so 300 clients started over 1 s are bound by 2.2 s.
        let mut args = vec![
            "--scenario",
            "hold",
            "--clients",
            "300",
            "--ramp-up",
            "1",
            "--duration",
            "4",
            "--expect-range",
            "2001:db8:1::/65",
            "--expect-pd-range",
            "2001:db8:100::/49",
        ];
        args.extend_from_slice(extra);
        let summary = generate(&link, &args);
        assert_eq!(
            count(&summary, "clients_bound"),
            300,
            "{extra:?}: {summary}"
        );
        assert_eq!(count(&summary, "in_service_at_end"), 300, "{summary}");
        assert_eq!(count(&summary, "total_failures"), 0, "{summary}");
        assert_eq!(count(&summary, "bad_frames"), 0, "{summary}");
        assert_eq!(count(&summary, "send_drops"), 0, "{summary}");
        assert_eq!(summary["servers"].as_array().map(Vec::len), Some(1));
    }
    server.stop();
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
#[ignore = "needs root and the eBPF object; run by cargo xtask test"]
fn no_frame_leaks_on_either_side() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use xdhcp6_bench::afxdp::{AfXdpOptions, AfXdpTransport, bind_queue};
    use xdhcp6_bench::generator::{Flow, Flows, Generator, Settings};
    use xdhcp6_bench::message::IaSet;
    use xdhcp6_bench::population::{Population, Prefix};
    use xdhcp6_bench::reflect::{ReflectStats, run as reflect};
    use xdhcp6_bench::runner::{SystemClock, run_phase};
    use xdhcp6_datapath::InterfaceInfo;
    use xdhcp6_datapath::steer::{AttachMode, EbpfObject};

    // Both ends in one namespace; the thread that runs in it, and the threads it starts,
    // have it to themselves.
    let namespace =
        Netns::create(&format!("xbench-leaks-{}", std::process::id())).expect("a namespace");
    netns::veth_pair(&namespace, CLIENT_IF, &namespace, SERVER_IF).expect("veth pair");
    for interface in [CLIENT_IF, SERVER_IF] {
        namespace.finish_checksums(interface).expect("ethtool");
    }
    let worker = namespace.run(|| {
        let deadline = Instant::now() + Duration::from_secs(10);
        let server = loop {
            match InterfaceInfo::query(SERVER_IF, None) {
                Ok(info) => break info,
                Err(error) if Instant::now() > deadline => panic!("{error}"),
                Err(_) => thread::sleep(Duration::from_millis(100)),
            }
        };
        let object = EbpfObject::read(Path::new(&object())).expect("reading the eBPF object");

        let (steering, mut queue, _) = bind_queue(
            &object,
            xdhcp6_common::PROGRAM,
            &server,
            0,
            AttachMode::Native,
        )
        .expect("reflector socket");
        let stop = Arc::new(AtomicBool::new(false));
        let reflector = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut stats = ReflectStats::default();
                reflect(
                    &mut queue,
                    &server.mac,
                    &server.link_local,
                    &stop,
                    &mut stats,
                );
                (queue, stats, steering)
            })
        };

        let link = Prefix::new("2001:db8:1::".parse().unwrap(), 64).unwrap();
        let population = Population::new(2000, 0, 0xbe, link);
        let options = AfXdpOptions {
            interface: CLIENT_IF.into(),
            queue: 0,
            mode: AttachMode::Skb,
            server: None,
            server_mac: None,
            relayed: false,
            relay_source: None,
        };
        let mut transport =
            AfXdpTransport::open(&object, &options, population.clone()).expect("AF_XDP transport");
        let mut generator = Generator::new(Settings {
            scenario: Flows::One(Flow::Echo),
            ias: IaSet::NA,
            population,
            timeout_ns: 1_000_000_000,
            expect_range: None,
            expect_pd_range: None,
        });
        let phase = run_phase(
            &mut generator,
            &mut transport,
            &mut SystemClock::default(),
            // More than the rings hold at once, so that frames wrap around the UMEM.
            5000.0,
            Duration::from_secs(2),
            &mut |_| {},
        )
        .expect("running the echo phase");
        let started = phase.stats.flows_started;
        assert_eq!(started + phase.stats.skipped, 10_000, "{:?}", phase.stats);
        assert!(started >= 5_000, "{:?}", phase.stats);
        assert_eq!(phase.stats.flows_completed, started, "{:?}", phase.stats);
        assert_eq!(phase.stats.total_failures(), 0);

        transport.drain(Duration::from_secs(1));
        let audit = transport.audit();
        assert!(audit.is_complete(), "generator: {audit:?}");
        assert_eq!(audit.total, xdhcp6_bench::afxdp::socket_config().frames);

        stop.store(true, Ordering::Relaxed);
        let (queue, stats, _steering) = reflector.join().expect("reflector thread");
        assert_eq!(stats.reflected, 2 * started, "{stats:?}");
        let audit = queue.audit();
        assert!(audit.is_complete(), "reflector: {audit:?}");
    });
    worker.expect("entering the namespace");
}
