//! One relay agent's traffic spread over the AF_XDP workers (`--spread`).
//!
//! A relay agent sends every Relay-forward from one address and port, so a multi-queue NIC's
//! RSS (here a veth with two receive queues, which delivers on the queue its peer sent from)
//! puts it all on one receive queue. The server end has two queues, so two AF_XDP workers;
//! the relay namespace runs ISC dhcrelay with ISC dhclient behind it, and relays 64 emulated
//! clients itself from one UDP socket. With `--spread auto` (the default) both workers answer
//! the relay's clients, every client is bound, and the journal has each lease; with `--spread
//! off` the one worker of the relay's queue answers all of them.
//!
//! Needs root, network namespaces, the ISC tools and the XDP object
//! (`XDHCP6_EBPF_OBJECT`); `cargo xtask test` runs it with `--include-ignored`.

mod common;

use std::collections::BTreeMap;
use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{DAEMON, Lab, contains, fixtures, journal_leases, lease_value};
use xdhcp6_engine::Destination;
use xdhcp6_engine::proto::MessageType;
use xdhcp6_engine::testing::{Client, Relay, ReplyView};
use xdhcp6_lab::harness::METRICS;
use xdhcp6_lab::process::Process;
use xdhcp6_lab::{http, netns};

/// Interfaces (names are per namespace): server — relay upstream, relay downstream — client.
const SERVER_IF: &str = "xd6s";
const RELAY_UP_IF: &str = "xd6u";
const RELAY_DOWN_IF: &str = "xd6d";
const CLIENT_IF: &str = "xd6c";

const SERVER_ADDRESS: &str = "2001:db8:f::1";
const RELAY_UP_ADDRESS: &str = "2001:db8:f::2";
/// The relay's address on the clients' link: its link-address, inside the relayed pool.
const RELAY_DOWN_ADDRESS: &str = "2001:db8:2::1";

/// The emulated relay's UDP port: dhcrelay holds 547 in the same namespace, so it asks for
/// replies to its source port (RFC 8357).
const RELAY_PORT: u16 = 5470;
/// Clients the emulated relay brings.
const CLIENTS: u64 = 64;

#[test]
#[ignore = "needs root, network namespaces, ISC tools and the XDP object; run by cargo xtask test"]
fn one_relays_clients_are_answered_by_both_workers() {
    let mut net = Net::new("spread", "auto");

    // A real client through a real relay first.
    let na = net.lab.dhclient("cli", CLIENT_IF, "na", &[]);
    let address = lease_value(&na, "iaaddr ").unwrap_or_else(|| panic!("no address:\n{na}"));
    let relayed: Ipv6Addr = "2001:db8:2::".parse().unwrap();
    assert!(
        contains(relayed, 65, address.parse().unwrap()),
        "{address} is outside 2001:db8:2::/65"
    );

    let phase = net.relay_clients();
    eprintln!(
        "spread auto: by queue {:?}, answered by worker {:?}, handed out {:?}",
        phase.queues, phase.received, phase.handed_out
    );
    // Every frame of the emulated relay arrived on one receive queue.
    assert!(
        phase.queues.iter().filter(|frames| **frames > 0).count() == 1
            && phase.queues.iter().sum::<u64>() >= 2 * CLIENTS,
        "the relay's frames by receive queue: {:?}",
        phase.queues
    );
    // Both workers answered its clients: each owns about half of them (64 clients: fewer
    // than 16 on one worker has a chance below 1 in 10,000).
    assert_eq!(phase.received.len(), 2, "{phase:?}");
    assert!(
        phase.received.iter().all(|received| *received >= 2 * 16),
        "requests answered per worker: {phase:?}"
    );
    let out: u64 = phase.handed_out.iter().sum();
    let handed_in: u64 = phase.handed_in.iter().sum();
    assert!(out >= 2 * 16, "{phase:?}");
    assert_eq!(out, handed_in, "{phase:?}");
    assert_eq!(phase.dropped, 0, "{phase:?}");
    assert!(
        phase.received.iter().sum::<u64>() >= 2 * CLIENTS,
        "{phase:?}"
    );
    let endpoint = METRICS.parse().unwrap();
    let metrics = net
        .lab
        .netns("srv")
        .run(move || http::get(endpoint, "/metrics"))
        .unwrap()
        .unwrap();
    // The metrics say the same as the workers (totals since start: dhclient's messages too).
    let total = |field: &str| -> u64 {
        net.workers()
            .iter()
            .map(|worker| worker[field].as_u64().unwrap())
            .sum()
    };
    for (direction, field) in [("out", "handed_out"), ("in", "handed_in")] {
        let line = format!(
            "xdhcp6_handoff_total{{direction=\"{direction}\"}} {}",
            total(field)
        );
        assert!(metrics.contains(&line), "no {line:?} in\n{metrics}");
    }
    assert!(
        metrics.contains("xdhcp6_handoff_dropped_total 0"),
        "{metrics}"
    );

    // Every lease is in the journal (the replies waited for it: --durability always).
    let journal = net.journal.clone();
    net.stop();
    let rows = journal_leases(&journal);
    let bound = |lease: &str| {
        rows.iter()
            .any(|row| row["lease"] == lease && row["state"] == "bound" && row["link"] == "relayed")
    };
    assert!(bound(&address), "{address} not in {rows:#?}");
    for lease in &phase.bound {
        assert!(bound(&lease.to_string()), "{lease} not in {rows:#?}");
    }
}

#[test]
#[ignore = "needs root, network namespaces, ISC tools and the XDP object; run by cargo xtask test"]
fn without_spread_one_worker_answers_the_whole_relay() {
    let mut net = Net::new("nospread", "off");
    let phase = net.relay_clients();
    eprintln!(
        "spread off: by queue {:?}, answered by worker {:?}",
        phase.queues, phase.received
    );
    assert!(
        phase.queues.iter().filter(|frames| **frames > 0).count() == 1,
        "the relay's frames by receive queue: {:?}",
        phase.queues
    );
    // The skew the spread removes: one worker answered every request.
    let mut received = phase.received.clone();
    received.sort_unstable();
    assert_eq!(received[0], 0, "{phase:?}");
    assert!(received[1] >= 2 * CLIENTS, "{phase:?}");
    assert_eq!(phase.handed_out.iter().sum::<u64>(), 0, "{phase:?}");
    net.stop();
}

/// The lab: three namespaces, a two-queue veth between server and relay, the daemon on
/// AF_XDP (native mode, so that frames arrive on the queue their sender used), dhcrelay.
struct Net {
    lab: Lab,
    daemon: Option<Process>,
    journal: std::path::PathBuf,
    control: std::path::PathBuf,
}

/// What one phase of the emulated relay did, as differences of the server's counters.
#[derive(Debug)]
struct Phase {
    /// The addresses its clients were bound to.
    bound: Vec<Ipv6Addr>,
    /// Frames steered to AF_XDP, by receive queue of the server's interface.
    queues: Vec<u64>,
    /// Requests answered, per AF_XDP worker.
    received: Vec<u64>,
    handed_out: Vec<u64>,
    handed_in: Vec<u64>,
    dropped: u64,
}

impl Net {
    fn new(tag: &str, spread: &str) -> Self {
        common::require_tools(&["dhcrelay", "dhclient", "ethtool"]);
        let mut lab = common::lab(tag, &["srv", "rly", "cli"]);
        netns::veth_pair_with_queues(
            lab.netns("srv"),
            SERVER_IF,
            lab.netns("rly"),
            RELAY_UP_IF,
            2,
        )
        .unwrap();
        for (role, interface) in [("srv", SERVER_IF), ("rly", RELAY_UP_IF)] {
            lab.netns(role).wait_for_link_local(interface).unwrap();
        }
        lab.veth(("rly", RELAY_DOWN_IF), ("cli", CLIENT_IF));
        lab.address("srv", SERVER_IF, &format!("{SERVER_ADDRESS}/64"));
        lab.address("rly", RELAY_UP_IF, &format!("{RELAY_UP_ADDRESS}/64"));
        lab.address("rly", RELAY_DOWN_IF, &format!("{RELAY_DOWN_ADDRESS}/64"));

        let config = fixtures::render(
            fixtures::TWO_LINKS,
            &[("SERVER_IF", SERVER_IF), ("SALT", tag)],
        )
        .expect("the two-links fixture");
        let config_path = lab.path("server.toml");
        std::fs::write(&config_path, config).unwrap();
        let journal = lab.path("leases.journal");
        let control = lab.path("control.sock");
        let mut command = lab.netns("srv").command(DAEMON);
        command
            .args(["run", "--config"])
            .arg(&config_path)
            .args([
                "--datapath",
                "xdp",
                "--xdp-mode",
                "native",
                "--spread",
                spread,
            ])
            .args(["--durability", "always", "--metrics", METRICS])
            .arg("--journal")
            .arg(&journal)
            .arg("--control")
            .arg(&control)
            .env("RUST_LOG", "info");
        let log = lab.path("daemon.log");
        let mut daemon = Process::start(command, &log, "xdhcp6d").unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("serving") {
                assert!(text.contains("queues=2"), "{text}");
                break;
            }
            if let Some(status) = daemon.try_wait().unwrap() {
                panic!("xdhcp6d exited with {status}:\n{text}");
            }
            assert!(Instant::now() < deadline, "xdhcp6d did not start:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let upper = format!("{SERVER_ADDRESS}%{RELAY_UP_IF}");
        lab.start_dhcrelay("rly", RELAY_DOWN_IF, &[upper]);
        Self {
            lab,
            daemon: Some(daemon),
            journal,
            control,
        }
    }

    /// Binds [`CLIENTS`] clients through one emulated relay (one socket, one address and
    /// port) and returns what the server's counters say of it.
    fn relay_clients(&mut self) -> Phase {
        let queues_before = self.steered_by_queue();
        let workers_before = self.workers();
        let bound = self
            .lab
            .netns("rly")
            .run(relay_clients)
            .unwrap()
            .unwrap_or_else(|error| panic!("{error}\n{}", self.log()));
        assert_eq!(bound.len() as u64, CLIENTS, "{bound:?}\n{}", self.log());
        let queues = self
            .steered_by_queue()
            .iter()
            .zip(&queues_before)
            .map(|(after, before)| after - before)
            .collect();
        let workers = self.workers();
        let delta = |field: &str| -> Vec<u64> {
            workers
                .iter()
                .zip(&workers_before)
                .map(|(after, before)| {
                    after[field].as_u64().unwrap() - before[field].as_u64().unwrap()
                })
                .collect()
        };
        Phase {
            bound,
            queues,
            received: delta("received"),
            handed_out: delta("handed_out"),
            handed_in: delta("handed_in"),
            dropped: delta("handoff_dropped").iter().sum(),
        }
    }

    /// `rx_queue_N_xdp_redirect` of the server's interface (frames the program steered to an
    /// AF_XDP socket), by queue.
    fn steered_by_queue(&self) -> Vec<u64> {
        let output = self.lab.exec("srv", &["ethtool", "-S", SERVER_IF]);
        let text = String::from_utf8_lossy(&output.stdout);
        let mut queues = BTreeMap::new();
        for line in text.lines() {
            let Some((name, value)) = line.trim().split_once(':') else {
                continue;
            };
            let Some(queue) = name
                .strip_prefix("rx_queue_")
                .and_then(|rest| rest.strip_suffix("_xdp_redirect"))
            else {
                continue;
            };
            queues.insert(
                queue.parse::<u32>().unwrap(),
                value.trim().parse::<u64>().unwrap(),
            );
        }
        assert_eq!(queues.len(), 2, "ethtool -S {SERVER_IF}:\n{text}");
        queues.into_values().collect()
    }

    /// The AF_XDP workers of `xdhcp6d ctl server --json`.
    fn workers(&self) -> Vec<serde_json::Value> {
        let output = Command::new(DAEMON)
            .args(["ctl", "--json", "--socket"])
            .arg(&self.control)
            .arg("server")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let server: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        server["workers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|worker| worker["datapath"] == "af_xdp")
            .cloned()
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.lab.path("daemon.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            let status = daemon.stop("TERM", Duration::from_secs(15)).unwrap();
            assert!(status.success(), "xdhcp6d: {status}\n{}", self.log());
        }
        self.lab.stop("dhcrelay", "-TERM");
    }
}

/// One relay agent for [`CLIENTS`] clients: every message from one UDP socket (the relay's
/// address, [`RELAY_PORT`]), each client behind its own peer-address. All Solicits are sent,
/// then all Requests, each round repeated for the clients not yet answered. Returns the
/// addresses bound, by client.
fn relay_clients() -> Result<Vec<Ipv6Addr>, String> {
    let local: Ipv6Addr = RELAY_UP_ADDRESS.parse().unwrap();
    let server = SocketAddrV6::new(SERVER_ADDRESS.parse().unwrap(), 547, 0, 0);
    let socket = UdpSocket::bind(SocketAddrV6::new(local, RELAY_PORT, 0, 0))
        .map_err(|error| format!("binding the relay's socket: {error}"))?;
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let link: Ipv6Addr = RELAY_DOWN_ADDRESS.parse().unwrap();
    let peer = |n: u64| Ipv6Addr::new(0xfe80, 0, 0, 0, 0x0200, 0x5eff, 0xfe00, n as u16 + 1);
    let clients: Vec<Client> = (0..CLIENTS)
        .map(|n| {
            let mut client =
                Client::new(1000 + n).via(Relay::new(link).peer(peer(n)).source_port(RELAY_PORT));
            client.xid = 0x10_0000 + n as u32;
            client
        })
        .collect();
    let index_of = |reply: &ReplyView| -> Option<usize> {
        let peer_address = reply.relays.first()?.peer;
        (0..CLIENTS).position(|n| peer(n) == peer_address)
    };

    // Solicit → Advertise, for every client.
    let mut advertised: Vec<Option<ReplyView>> = vec![None; CLIENTS as usize];
    let mut replied: Vec<Option<Ipv6Addr>> = vec![None; CLIENTS as usize];
    for round in 0..5 {
        for (n, client) in clients.iter().enumerate() {
            if advertised[n].is_none() {
                let message = client.solicit().ia_na(1, &[]).encode();
                socket
                    .send_to(&message, server)
                    .map_err(|e| e.to_string())?;
            }
        }
        collect(&socket, &mut |reply| {
            if reply.msg_type == MessageType::Advertise
                && let Some(n) = index_of(&reply)
            {
                advertised[n] = Some(reply);
            }
        });
        if advertised.iter().all(Option::is_some) {
            break;
        }
        if round == 4 {
            let missing = advertised.iter().filter(|a| a.is_none()).count();
            return Err(format!("{missing} clients got no Advertise"));
        }
    }
    // Request → Reply.
    for round in 0..5 {
        for (n, client) in clients.iter().enumerate() {
            if replied[n].is_none() {
                let advertise = advertised[n].as_ref().unwrap();
                let server_id = advertise.server_id.clone().unwrap();
                let offered = advertise.ia_na[0].live_addrs();
                let message = client.request(&server_id).ia_na(1, &offered).encode();
                socket
                    .send_to(&message, server)
                    .map_err(|e| e.to_string())?;
            }
        }
        collect(&socket, &mut |reply| {
            if reply.msg_type == MessageType::Reply
                && let Some(n) = index_of(&reply)
                && let Some(address) = reply
                    .ia_na
                    .first()
                    .and_then(|ia| ia.live_addrs().first().copied())
            {
                replied[n] = Some(address);
            }
        });
        if replied.iter().all(Option::is_some) {
            break;
        }
        if round == 4 {
            let missing = replied.iter().filter(|a| a.is_none()).count();
            return Err(format!("{missing} clients got no Reply"));
        }
    }
    Ok(replied.into_iter().flatten().collect())
}

/// Hands every Relay-reply that arrives to `take` until none came for the read timeout.
fn collect(socket: &UdpSocket, take: &mut dyn FnMut(ReplyView)) {
    let mut buf = [0u8; 1500];
    while let Ok(len) = socket.recv(&mut buf) {
        take(ReplyView::parse(
            &buf[..len],
            Destination::Relay {
                to_source_port: true,
            },
        ));
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // The lab removes the namespaces; the daemon goes first.
        if let Some(mut daemon) = self.daemon.take() {
            daemon.kill();
        }
    }
}
