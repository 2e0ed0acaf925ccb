//! The AF_XDP transport end to end: two network namespaces joined by a veth pair, the
//! generator (`--transport afxdp`) on one end, and on the other `xdhcp6-reflect` or `xdhcp6d
//! --datapath xdp`.
//!
//! These need root and the eBPF object: `cargo xtask test` builds it and runs
//! `XDHCP6_EBPF_OBJECT=... cargo test -p xdhcp6d -p xdhcp6-bench -- --include-ignored
//! --test-threads=1`, which also builds the `xdhcp6d` binary next to this crate's. Nothing here
//! skips itself: a missing prerequisite fails the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const NEEDS: &str = "needs root and the eBPF object; run by cargo xtask test";
const OBJECT_ENV: &str = "XDHCP6_EBPF_OBJECT";
const CLIENT_IF: &str = "xbg0";
const SERVER_IF: &str = "xbs0";
const SERVER_GLOBAL: &str = "2001:db8::547";
const CLIENT_GLOBAL: &str = "2001:db8::1";

/// Two namespaces and the veth pair between them, removed on drop.
struct Link {
    client: String,
    server: String,
}

impl Link {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n}", std::process::id());
        let link = Link {
            client: format!("xbench-cli-{id}"),
            server: format!("xbench-srv-{id}"),
        };
        for namespace in [&link.client, &link.server] {
            run(Command::new("ip").args(["netns", "add", namespace]));
        }
        run(Command::new("ip").args([
            "link",
            "add",
            CLIENT_IF,
            "netns",
            &link.client,
            "type",
            "veth",
            "peer",
            "name",
            SERVER_IF,
            "netns",
            &link.server,
        ]));
        for (namespace, interface, address) in [
            (&link.client, CLIENT_IF, "2001:db8::1/64"), // CLIENT_GLOBAL
            (&link.server, SERVER_IF, "2001:db8::547/64"),
        ] {
            run(Command::new("ip").args([
                "-n", namespace, "addr", "add", address, "dev", interface, "nodad",
            ]));
            run(Command::new("ip").args(["-n", namespace, "link", "set", "lo", "up"]));
            run(Command::new("ip").args(["-n", namespace, "link", "set", interface, "up"]));
            // veth + AF_XDP copy mode: the kernel's own frames must carry finished checksums.
            run(link
                .exec(namespace, "ethtool")
                .args(["-K", interface, "tx", "off"]));
        }
        link.wait_for_link_local(&link.client.clone(), CLIENT_IF);
        link.wait_for_link_local(&link.server.clone(), SERVER_IF);
        link
    }

    fn exec(&self, namespace: &str, program: impl AsRef<Path>) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", namespace])
            .arg(program.as_ref());
        command
    }

    fn wait_for_link_local(&self, namespace: &str, interface: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let output = run(Command::new("ip").args([
                "-n", namespace, "-6", "addr", "show", "dev", interface, "scope", "link",
            ]));
            let text = String::from_utf8_lossy(&output.stdout);
            if text.contains("fe80::") && !text.contains("tentative") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{interface} in {namespace} has no usable link-local address: {text}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn server_mac(&self) -> String {
        let output = run(self
            .exec(&self.server, "cat")
            .arg(format!("/sys/class/net/{SERVER_IF}/address")));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for namespace in [&self.client, &self.server] {
            let _ = Command::new("ip")
                .args(["netns", "del", namespace])
                .status();
        }
    }
}

/// A background process, interrupted (SIGINT) and reaped on drop.
struct Background {
    child: Option<Child>,
    what: &'static str,
}

impl Background {
    fn start(mut command: Command, what: &'static str) -> Self {
        let child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {what}: {error}"));
        Background {
            child: Some(child),
            what,
        }
    }

    /// Stops the process with SIGINT and returns its output; it must exit 0.
    fn stop(mut self) -> String {
        let child = self.child.take().expect("running");
        interrupt(&child);
        let output = child.wait_with_output().expect("waiting for the process");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{} failed: {text}", self.what);
        text
    }

    fn assert_running(&mut self) {
        let child = self.child.as_mut().expect("running");
        if let Some(status) = child.try_wait().expect("polling the process") {
            let output = self
                .child
                .take()
                .expect("running")
                .wait_with_output()
                .unwrap();
            panic!(
                "{} exited early ({status}): {}{}",
                self.what,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            interrupt(&child);
            let _ = child.wait();
        }
    }
}

fn interrupt(child: &Child) {
    // `ip netns exec` execs the program, so the child's pid is the program's.
    // Safety: kill(2) on a child we own and have not reaped yet.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("running {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
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
    let mut command = link.exec(&link.client, bench());
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
            let mut command = link.exec(&link.server, reflector());
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

/// Starts `xdhcp6d --datapath DATAPATH` on the server end with [`CONFIG`], its files in `work`,
/// and waits until it runs.
fn start_daemon(link: &Link, work: &Path, datapath: &str) -> Background {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work).unwrap();
    let config = work.join("server.toml");
    std::fs::write(&config, CONFIG.replace("IFACE", SERVER_IF)).unwrap();
    let mut server = Background::start(
        {
            let mut command = link.exec(&link.server, daemon());
            command
                .current_dir(work)
                .env(OBJECT_ENV, object())
                .arg("run")
                .arg("--config")
                .arg(&config)
                .args(["--datapath", datapath, "--xdp-mode", "native"])
                .args(["--metrics", "off"])
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
    use xdhcp6_common::steer::{AttachMode, EbpfObject};
    use xdhcp6_common::xsk::InterfaceInfo;

    // Both ends in one namespace of this thread's own; the threads it starts inherit it.
    let worker = thread::spawn(|| {
        // Safety: unshare has no memory effects; it moves only this thread to a new namespace.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
        run(Command::new("ip").args([
            "link", "add", CLIENT_IF, "type", "veth", "peer", "name", SERVER_IF,
        ]));
        for interface in [CLIENT_IF, SERVER_IF] {
            run(Command::new("ip").args(["link", "set", interface, "up"]));
            run(Command::new("ethtool").args(["-K", interface, "tx", "off"]));
        }
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
    worker.join().expect("test thread");
}

const CONFIG: &str = r#"
[server]
duid-file = "server.duid"
salt = "bench-afxdp"
expected-leases = 10000

[[link]]
name = "bench"
interfaces = ["IFACE"]

[[link.pool]]
prefix = "2001:db8:1::/64"
split = "1/2"

[[link.pd-pool]]
prefix = "2001:db8:100::/48"
delegated-length = 64
split = "1/2"
"#;
