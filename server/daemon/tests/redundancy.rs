//! RFC 6853 redundancy end to end: two or three `xdhcp6d` on one link, each in its own
//! namespace, configured by the files in `examples/` (only the interface is replaced), and one
//! ISC `dhclient -6 -N -P` asking for an address and a prefix, on the link or behind one ISC
//! `dhcrelay -6` that forwards to every server. On the link, a second `dhclient -6 -P` asks
//! for a prefix only.
//!
//! ```text
//!  server a ─┐          ┌─ client     server a ─┐
//!  server b ─┼─ switch ─┤             server b ─┼─ switch ─ relay ─ client
//!  server c ─┘ (bridge) └─ pd-client  server c ─┘
//! ```
//!
//! The client binds to the server with Preference 255, which is then SIGKILLed. Its Renew
//! (to that server) goes unanswered, and its Rebind reaches the others:
//!
//! - split and unique prefixes: the survivor returns the old address and prefix with
//!   lifetimes 0 next to new ones from its own slice;
//! - identical prefixes: the survivor extends the same address and prefix.
//!
//! After the kill, the client must hold a working address from a survivor (configured on its
//! interface by its script) within its Rebind time, derived from the example's T1 and T2 (see
//! [`rebind_bound`]), plus a few seconds, and before its first address's valid lifetime ends;
//! at the next T1 it renews with that survivor alone. The survivor's journal has the bindings.
//! A last test has two servers below Preference 255 and checks that the client waits for both
//! Advertises and takes the higher one.
//!
//! Each test needs root, network namespaces and the ISC tools (dhclient, dhcrelay, tcpdump,
//! tshark); `cargo xtask test` runs them with `--include-ignored --test-threads=1`.

mod common;

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{
    CapturedMessage, DaemonOptions, Datapath, Lab, ScriptEvent, captured_messages, journal_leases,
    metric_sum,
};
use xdhcp6_engine::config::Config;
use xdhcp6_engine::prefix::Prefix;

/// Interfaces (names are per namespace).
const SERVER_IF: &str = "xd6s";
const CLIENT_IF: &str = "xd6c";
const RELAY_UP_IF: &str = "xd6u";
const RELAY_DOWN_IF: &str = "xd6d";
const BRIDGE: &str = "xd6br";

/// The relay's address on the clients' link: its link-address, inside the examples'
/// `relay-prefixes` (2001:db8:ffff:1::/64), which selects their one link.
const RELAY_DOWN_ADDRESS: &str = "2001:db8:ffff:1::1";
/// The relay's address on the servers' link; the servers are `2001:db8:f::a`, `::b`, `::c`.
const RELAY_UP_ADDRESS: &str = "2001:db8:f::1";

/// The dhclient under test (`-N -P`: an address and a prefix).
const CLIENT: &str = "client";
/// A second dhclient on the servers' link that asks for a prefix only (`-P`), in its own
/// namespace, in the direct tests.
const PD_CLIENT: &str = "pd-client";

/// The first retransmission timeout of Renew (REN_TIMEOUT, RFC 9915 §7.6), with its +10%
/// randomisation. ISC dhclient moves from Renew to Rebind only when a Renew retransmission
/// timer fires, so when T2 - T1 is shorter than this (as in the examples' test timers) its
/// Rebind goes out at T1 + about 10 s rather than at T2.
const RENEW_TIMEOUT_S: f64 = 11.0;

/// Seconds the client may take beyond its Rebind time, after the kill, to hold a survivor's
/// address: one exchange, plus dhclient's and its script's own latency.
const REBIND_SLACK_S: f64 = 2.0;

/// When, at the latest after the kill, the client holds a survivor's address: its Rebind goes
/// out at T2, or at T1 + the first Renew timeout if that is later (see [`RENEW_TIMEOUT_S`]),
/// counted from the last Reply (before the kill), and one exchange follows.
fn rebind_bound(t1: u32, t2: u32) -> f64 {
    f64::from(t2).max(f64::from(t1) + RENEW_TIMEOUT_S) + REBIND_SLACK_S
}

/// How clients reach the servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// The client is on the servers' link.
    Direct,
    /// The client is behind one dhcrelay that forwards to every server.
    Relayed,
}

/// What the survivor does with the client's address and prefix at Rebind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Model {
    /// Returns them with lifetimes 0 and binds new ones from its own slice or prefix.
    Moves,
    /// Extends them: the client keeps what it had.
    Keeps,
}

/// One server of a test: an example file with the lab's interface put in.
struct Server {
    /// `a`, `b`, `c`: the daemon's name, its namespace role (`sa`) and its log (`a.log`).
    name: String,
    file: &'static str,
    text: String,
    config: Config,
}

impl Server {
    fn new(file: &'static str) -> Self {
        let name = file
            .trim_end_matches(".toml")
            .rsplit('-')
            .next()
            .unwrap()
            .to_owned();
        let path = examples().join(file);
        let original = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
        // The examples name `eth1` with VLAN 100; the lab's server interface is untagged: the
        // UDP datapath sees VLANs only as VLAN interfaces, and a tagged client would need one
        // (the 8021q module), which not every test machine has.
        let mut replaced = 0;
        let text: String = original
            .lines()
            .map(|line| {
                if line.starts_with("interfaces = ") {
                    replaced += 1;
                    format!("interfaces = [\"{SERVER_IF}\"]")
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            replaced, 1,
            "{file} should have one `interfaces = ` line (one link) for the lab to replace"
        );
        let config = Config::from_toml_str(&text, file).unwrap_or_else(|error| panic!("{error}"));
        Self {
            name,
            file,
            text,
            config,
        }
    }

    fn role(&self) -> String {
        format!("s{}", self.name)
    }

    /// The server's address on the relay's upstream link.
    fn uplink_address(&self) -> String {
        format!("2001:db8:f::{}", self.name)
    }

    fn journal(&self, lab: &Lab) -> PathBuf {
        lab.path(&format!("{}.journal", self.name))
    }

    /// The part of the address pool this server allocates from.
    fn na_range(&self) -> Prefix {
        self.config.links[0].na_pools[0].range
    }

    /// The part of the prefix-delegation pool this server delegates from.
    fn pd_range(&self) -> Prefix {
        self.config.links[0].pd_pools[0].range
    }

    fn owns_address(&self, address: Ipv6Addr) -> bool {
        self.na_range().contains(address)
    }

    fn owns_prefix(&self, prefix: &str) -> bool {
        let (network, _) = prefix.split_once('/').expect("prefix/length");
        self.pd_range().contains(network.parse().unwrap())
    }

    fn preference(&self) -> u8 {
        self.config.server.preference
    }
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// The servers, the switch, the client (and the relay), all started.
struct Network {
    lab: Lab,
    servers: Vec<Server>,
    reach: Reach,
    capture: PathBuf,
}

impl Network {
    fn new(tag: &str, files: &[&'static str], reach: Reach, datapath: Datapath) -> Self {
        common::require_tools(&["dhclient", "dhcrelay", "tcpdump", "tshark", "bridge"]);
        let servers: Vec<Server> = files.iter().map(|file| Server::new(file)).collect();
        let mut roles = vec!["sw".to_owned(), "cli".to_owned()];
        match reach {
            Reach::Direct => roles.push("pd".to_owned()),
            Reach::Relayed => roles.push("rly".to_owned()),
        }
        roles.extend(servers.iter().map(Server::role));
        let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
        let mut lab = common::lab(tag, &roles);
        lab.bridge("sw", BRIDGE);
        for server in &servers {
            let port = format!("p{}", server.name);
            lab.veth((&server.role(), SERVER_IF), ("sw", &port));
            lab.attach("sw", &port, BRIDGE);
            if reach == Reach::Relayed {
                let cidr = format!("{}/64", server.uplink_address());
                lab.address(&server.role(), SERVER_IF, &cidr);
            }
        }
        match reach {
            Reach::Direct => {
                lab.veth(("cli", CLIENT_IF), ("sw", "pcli"));
                lab.attach("sw", "pcli", BRIDGE);
                lab.veth(("pd", CLIENT_IF), ("sw", "ppd"));
                lab.attach("sw", "ppd", BRIDGE);
            }
            Reach::Relayed => {
                lab.veth(("rly", RELAY_UP_IF), ("sw", "prly"));
                lab.attach("sw", "prly", BRIDGE);
                lab.veth(("rly", RELAY_DOWN_IF), ("cli", CLIENT_IF));
                lab.address("rly", RELAY_UP_IF, &format!("{RELAY_UP_ADDRESS}/64"));
                lab.address("rly", RELAY_DOWN_IF, &format!("{RELAY_DOWN_ADDRESS}/64"));
            }
        }
        for server in &servers {
            let journal = server.journal(&lab);
            let options = DaemonOptions {
                datapath,
                journal: &journal,
                durability: "always",
                log: &server.name,
            };
            lab.start_server(&server.name, &server.role(), &server.text, &options);
        }
        if reach == Reach::Relayed {
            let upstreams: Vec<String> = servers
                .iter()
                .map(|server| format!("{}%{RELAY_UP_IF}", server.uplink_address()))
                .collect();
            lab.start_dhcrelay("rly", RELAY_DOWN_IF, &upstreams);
        }
        let capture = lab.start_capture("cli", CLIENT_IF, "capture");
        Self {
            lab,
            servers,
            reach,
            capture,
        }
    }

    fn server(&self, name: &str) -> &Server {
        self.servers
            .iter()
            .find(|server| server.name == name)
            .unwrap()
    }

    /// Everything that explains a failure: the client's log, script calls and lease file,
    /// the relay's and every daemon's log, and the decoded capture.
    fn report(&self) -> String {
        let mut text = self.lab.dhclient_report(CLIENT);
        match self.reach {
            Reach::Direct => text.push_str(&self.lab.dhclient_report(PD_CLIENT)),
            Reach::Relayed => text.push_str(&format!(
                "--- dhcrelay log:\n{}\n",
                self.lab.log("dhcrelay")
            )),
        }
        text.push_str(&self.lab.daemon_logs());
        text.push_str("--- capture on the client's interface:\n");
        for message in captured_messages(&self.capture) {
            text.push_str(&format!("{message:?}\n"));
        }
        text
    }

    /// Waits until the script of the prefix-only client has been called with a prefix (valid
    /// lifetime above 0) for `reasons` after `since`; returns it, the time of the call and
    /// the Server Identifier.
    fn wait_for_prefix(
        &self,
        reasons: &[&str],
        since: f64,
        timeout: Duration,
    ) -> (String, f64, String) {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .lab
                .dhclient_events(PD_CLIENT)
                .into_iter()
                .find(|event| {
                    event.time >= since
                        && reasons.contains(&event.reason.as_str())
                        && event.valid.is_some_and(|valid| valid > 0)
                        && event.prefix.is_some()
                });
            if let Some(event) = found {
                return (event.prefix.unwrap(), event.time, event.server);
            }
            assert!(
                Instant::now() < deadline,
                "the prefix-only client has no prefix by {reasons:?} after {timeout:?}:\n{}",
                self.report()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server whose DUID dhclient printed as `printed`.
    fn server_by_duid(&self, printed: &str) -> &Server {
        self.servers
            .iter()
            .find(|server| same_duid(printed, &server.config.server.duid))
            .unwrap_or_else(|| {
                panic!(
                    "{printed} is the DUID of none of the servers:\n{}",
                    self.report()
                )
            })
    }

    /// Waits until the client's script has been called with an address and a prefix (valid
    /// lifetime above 0) for `reasons` after `since`, and the address is on the interface.
    fn wait_for_lease(&self, reasons: &[&str], since: f64, timeout: Duration) -> Lease {
        let deadline = Instant::now() + timeout;
        loop {
            let events = self.lab.dhclient_events(CLIENT);
            let fresh = |event: &&ScriptEvent| {
                event.time >= since
                    && reasons.contains(&event.reason.as_str())
                    && event.valid.is_some_and(|valid| valid > 0)
            };
            let address = events.iter().filter(fresh).find(|e| e.address.is_some());
            let prefix = events.iter().filter(fresh).find(|e| e.prefix.is_some());
            if let (Some(address), Some(prefix)) = (address, prefix) {
                let on_interface = self.lab.global_addresses("cli", CLIENT_IF);
                let ip = address.address.unwrap();
                if on_interface.contains(&ip) {
                    return Lease {
                        address: ip,
                        prefix: prefix.prefix.clone().unwrap(),
                        time: address.time.max(prefix.time),
                        address_server: address.server.clone(),
                    };
                }
            }
            assert!(
                Instant::now() < deadline,
                "the client has no address and prefix by {reasons:?} after {timeout:?} \
                 (addresses on {CLIENT_IF}: {:?}):\n{}",
                self.lab.global_addresses("cli", CLIENT_IF),
                self.report()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// What the client holds: an address (configured on its interface) and a delegated prefix.
#[derive(Clone, Debug)]
struct Lease {
    address: Ipv6Addr,
    prefix: String,
    /// When the script was called for the later of the two (seconds since the epoch).
    time: f64,
    /// The Server Identifier of the Reply that gave the address, as dhclient prints it.
    address_server: String,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Whether dhclient's rendering of a DUID (`0:1:0:1:2e:...`) is `duid`.
fn same_duid(printed: &str, duid: &[u8]) -> bool {
    let bytes: Option<Vec<u8>> = printed
        .split(':')
        .map(|byte| u8::from_str_radix(byte, 16).ok())
        .collect();
    bytes.as_deref() == Some(duid)
}

// ---------------------------------------------------------------------------------------
// Failover: the primary is killed, the client rebinds to a survivor

#[test]
#[ignore = "needs root, network namespaces and ISC tools; run by cargo xtask test"]
fn split_two_servers_failover_direct_over_udp() {
    failover(
        "split-direct",
        &["split-a.toml", "split-b.toml"],
        Reach::Direct,
        Datapath::Udp,
        Model::Moves,
    );
}

#[test]
#[ignore = "needs root, network namespaces, ISC tools and the eBPF object; run by cargo xtask test"]
fn split_two_servers_failover_direct_over_xdp() {
    failover(
        "split-xdp",
        &["split-a.toml", "split-b.toml"],
        Reach::Direct,
        Datapath::XdpNative,
        Model::Moves,
    );
}

#[test]
#[ignore = "needs root, network namespaces and ISC tools; run by cargo xtask test"]
fn split_two_servers_failover_relayed_over_udp() {
    failover(
        "split-relayed",
        &["split-a.toml", "split-b.toml"],
        Reach::Relayed,
        Datapath::Udp,
        Model::Moves,
    );
}

#[test]
#[ignore = "needs root, network namespaces and ISC tools; run by cargo xtask test"]
fn unique_three_servers_failover_direct_over_udp() {
    failover(
        "unique-direct",
        &["unique-a.toml", "unique-b.toml", "unique-c.toml"],
        Reach::Direct,
        Datapath::Udp,
        Model::Moves,
    );
}

#[test]
#[ignore = "needs root, network namespaces and ISC tools; run by cargo xtask test"]
fn unique_three_servers_failover_relayed_over_udp() {
    failover(
        "unique-relayed",
        &["unique-a.toml", "unique-b.toml", "unique-c.toml"],
        Reach::Relayed,
        Datapath::Udp,
        Model::Moves,
    );
}

#[test]
#[ignore = "needs root, network namespaces and ISC tools; run by cargo xtask test"]
fn identical_three_servers_failover_direct_over_udp() {
    failover(
        "identical-direct",
        &["identical-a.toml", "identical-b.toml", "identical-c.toml"],
        Reach::Direct,
        Datapath::Udp,
        Model::Keeps,
    );
}

#[test]
#[ignore = "needs root, network namespaces, ISC tools and the eBPF object; run by cargo xtask test"]
fn identical_two_servers_failover_relayed_over_xdp() {
    failover(
        "identical-relayed",
        &["identical-a.toml", "identical-b.toml"],
        Reach::Relayed,
        Datapath::XdpNative,
        Model::Keeps,
    );
}

/// Binds the client to the first server (Preference 255), kills it, and checks what the
/// client holds after its Rebind, how fast, and what the Reply to the Rebind carried.
fn failover(tag: &str, files: &[&'static str], reach: Reach, datapath: Datapath, model: Model) {
    let started = Instant::now();
    let mut net = Network::new(tag, files, reach, datapath);
    let primary = &net.servers[0];
    assert_eq!(primary.preference(), 255, "{} is the primary", primary.file);
    let (primary_name, primary_duid) = (primary.name.clone(), primary.config.server.duid.clone());
    let timers = primary.config.links[0].timers;
    let (t1, t2) = (timers.t1, timers.t2);
    let bound = rebind_bound(t1, t2);

    net.lab
        .start_dhclient("cli", CLIENT_IF, CLIENT, &["-N", "-P"]);
    let with_pd_client = reach == Reach::Direct;
    if with_pd_client {
        net.lab.start_dhclient("pd", CLIENT_IF, PD_CLIENT, &["-P"]);
    }
    let first = net.wait_for_lease(&["BOUND6"], 0.0, Duration::from_secs(15));
    let pd_first =
        with_pd_client.then(|| net.wait_for_prefix(&["BOUND6"], 0.0, Duration::from_secs(15)));
    let primary = net.server(&primary_name);
    if let Some((prefix, _, server)) = &pd_first {
        assert!(
            primary.owns_prefix(prefix) && same_duid(server, &primary_duid),
            "the prefix-only client bound {prefix} from {server} instead of a prefix of {}:\n{}",
            primary.file,
            net.report()
        );
    }
    assert!(
        primary.owns_address(first.address) && primary.owns_prefix(&first.prefix),
        "the client bound {} and {} instead of an address and prefix of {} (Preference 255):\n{}",
        first.address,
        first.prefix,
        primary.file,
        net.report()
    );
    assert!(
        same_duid(&first.address_server, &primary_duid),
        "bound by {} instead of {}:\n{}",
        first.address_server,
        primary.file,
        net.report()
    );

    net.lab.kill_server(&primary_name);
    let killed = unix_now();
    let after = net.wait_for_lease(&["REBIND6"], killed, Duration::from_secs_f64(bound + 5.0));
    let took = after.time - killed;
    let survivor = net.server_by_duid(&after.address_server);
    // The bindings each survivor's journal must hold at the end: (server, kind, lease).
    let mut journaled = vec![
        (survivor.name.clone(), "na", after.address.to_string()),
        (survivor.name.clone(), "pd", after.prefix.clone()),
    ];
    assert_ne!(survivor.name, primary_name, "{}", net.report());
    assert!(
        took <= bound,
        "the client held {}'s address {:.1} s after the kill, more than {bound:.1} s (T1 \
         {t1} s, T2 {t2} s):\n{}",
        survivor.file,
        took,
        net.report()
    );

    // Service without a gap: the survivor's lease came before the first one ran out.
    assert!(
        after.time < first.time + f64::from(timers.valid),
        "the survivor's lease came {:.1} s after the first binding, when its valid lifetime \
         ({} s) had ended:\n{}",
        after.time - first.time,
        timers.valid,
        net.report()
    );

    // The exchanges after the kill, as the client's interface saw them.
    let messages = captured_messages(&net.capture);
    let later: Vec<&CapturedMessage> = messages.iter().filter(|m| m.time >= killed).collect();
    // Renews (to the dead server) went out and nobody answered them: the survivors drop a
    // Renew with another server's identifier.
    let renews: Vec<&String> = later
        .iter()
        .filter(|m| m.msg_type == 5)
        .map(|m| &m.xid)
        .collect();
    assert!(
        !renews.is_empty(),
        "no Renew between the kill and the Rebind:\n{}",
        net.report()
    );
    assert!(
        !later
            .iter()
            .any(|m| m.msg_type == 7 && renews.contains(&&m.xid)),
        "a Renew to the dead server was answered:\n{}",
        net.report()
    );
    let rebinds: Vec<&String> = later
        .iter()
        .filter(|m| m.msg_type == 6)
        .map(|m| &m.xid)
        .collect();
    // Several survivors answer the same Rebind: judge the Reply the client took, the one that
    // holds the address it ended up with (the first Reply on the wire is not always the one
    // dhclient reads first).
    let replies: Vec<&&CapturedMessage> = later
        .iter()
        .filter(|m| m.msg_type == 7 && rebinds.contains(&&m.xid))
        .collect();
    let reply = replies
        .iter()
        .find(|m| {
            m.addresses
                .iter()
                .any(|&(address, _, valid)| address == after.address && valid > 0)
        })
        .or(replies.first())
        .unwrap_or_else(|| panic!("no Reply to a Rebind:\n{}", net.report()));

    match model {
        Model::Moves => {
            assert!(
                survivor.owns_address(after.address) && survivor.owns_prefix(&after.prefix),
                "after the Rebind the client holds {} and {}, not an address and prefix of \
                 {}:\n{}",
                after.address,
                after.prefix,
                survivor.file,
                net.report()
            );
            assert!(
                reply.addresses.contains(&(first.address, 0, 0))
                    && reply.prefixes.contains(&(first.prefix.clone(), 0, 0)),
                "the Rebind Reply does not return {} and {} with lifetimes 0: {reply:?}\n{}",
                first.address,
                first.prefix,
                net.report()
            );
            assert!(
                reply
                    .addresses
                    .iter()
                    .any(|&(address, _, valid)| address == after.address && valid > 0),
                "the Rebind Reply does not bind {}: {reply:?}\n{}",
                after.address,
                net.report()
            );
            // dhclient drops the address with lifetimes 0 right after taking the new one.
            let deadline = Instant::now() + Duration::from_secs(5);
            while net
                .lab
                .global_addresses("cli", CLIENT_IF)
                .contains(&first.address)
            {
                assert!(
                    Instant::now() < deadline,
                    "the client still has {} configured:\n{}",
                    first.address,
                    net.report()
                );
                thread::sleep(Duration::from_millis(50));
            }
        }
        Model::Keeps => {
            assert_eq!(
                (after.address, &after.prefix),
                (first.address, &first.prefix),
                "the client did not keep its address and prefix:\n{}",
                net.report()
            );
            assert!(
                reply
                    .addresses
                    .iter()
                    .all(|&(address, _, valid)| address == first.address && valid > 0)
                    && reply
                        .prefixes
                        .iter()
                        .all(|(prefix, _, valid)| *prefix == first.prefix && *valid > 0)
                    && !reply.addresses.is_empty()
                    && !reply.prefixes.is_empty(),
                "the Rebind Reply does not extend {} and {}: {reply:?}\n{}",
                first.address,
                first.prefix,
                net.report()
            );
        }
    }

    // The prefix-only client went through the same failover.
    let mut pd_took = None;
    if let Some((first_prefix, _, _)) = &pd_first {
        let (prefix, time, server) =
            net.wait_for_prefix(&["REBIND6"], killed, Duration::from_secs_f64(bound + 5.0));
        let pd_survivor = net.server_by_duid(&server);
        let moved = match model {
            Model::Moves => pd_survivor.owns_prefix(&prefix),
            Model::Keeps => prefix == *first_prefix,
        };
        assert!(
            pd_survivor.name != primary_name && moved && time - killed <= bound,
            "the prefix-only client went from {first_prefix} to {prefix} from {} {:.1} s after \
             the kill (bound {bound:.1} s, model {model:?}):\n{}",
            pd_survivor.file,
            time - killed,
            net.report()
        );
        pd_took = Some(time - killed);
        journaled.push((pd_survivor.name.clone(), "pd", prefix));
    }

    // The survivor goes on serving the client: at T1 the client renews with it (the other
    // survivors drop that Renew) and keeps its address and prefix.
    let renewed = net.wait_for_lease(
        &["RENEW6"],
        after.time,
        Duration::from_secs_f64(f64::from(t1) + RENEW_TIMEOUT_S),
    );
    assert!(
        (renewed.address, &renewed.prefix) == (after.address, &after.prefix)
            && same_duid(&renewed.address_server, &survivor.config.server.duid),
        "after the Rebind the client renewed {renewed:?} instead of {} and {} with {}:\n{}",
        after.address,
        after.prefix,
        survivor.file,
        net.report()
    );

    // On AF_XDP, the survivor's program steered the exchange: at least the Solicit, the
    // Request (for another server), the Renew and the Rebind.
    let metrics = net.lab.assert_server_steered(&survivor.name, datapath, 4);
    // The survivor of a split saw the dead server's address and prefix in the Rebind
    // (xdhcp6_rebind_foreign_total: the RFC 6853 sign that a peer is down). A server of the
    // unique model does not know its peer's prefix, and in the identical model nothing is
    // another server's.
    let foreign = metric_sum(&metrics, "xdhcp6_rebind_foreign_total");
    if files[0].starts_with("split") {
        assert!(foreign >= 2, "{foreign} foreign units counted:\n{metrics}");
    } else {
        assert_eq!(foreign, 0, "{metrics}");
    }

    // The survivors' journals have the bindings.
    let survivor_file = survivor.file;
    let survivors: Vec<String> = net
        .servers
        .iter()
        .filter(|server| server.name != primary_name)
        .map(|server| server.name.clone())
        .collect();
    for name in &survivors {
        net.lab.stop_server(name);
    }
    for (name, kind, lease) in &journaled {
        let server = net.server(name);
        let rows = journal_leases(&server.journal(&net.lab));
        assert!(
            rows.iter().any(|row| row["kind"] == *kind
                && row["lease"] == *lease.as_str()
                && row["state"] == "bound"),
            "{lease} is not bound in {}'s journal: {rows:#?}\n{}",
            server.file,
            net.report()
        );
    }
    eprintln!(
        "{tag} ({datapath:?}): {} / {} from {} -> {} / {} from {} {took:.1} s after the kill \
         (T1 {t1} s, T2 {t2} s, bound {bound:.1} s); prefix-only client: {}; test {:.1} s",
        first.address,
        first.prefix,
        net.server(&primary_name).file,
        after.address,
        after.prefix,
        survivor_file,
        pd_took.map_or("none".to_owned(), |took| format!("{took:.1} s")),
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------
// Preference below 255: the client collects Advertises and takes the highest

#[test]
#[ignore = "needs root, network namespaces and ISC tools; run by cargo xtask test"]
fn preference_below_255_client_takes_the_highest_over_udp() {
    let started = Instant::now();
    let files = ["unique-b.toml", "unique-c.toml"];
    let mut net = Network::new("preference", &files, Reach::Direct, Datapath::Udp);
    let highest = net
        .servers
        .iter()
        .max_by_key(|server| server.preference())
        .unwrap();
    assert!(
        net.servers.iter().all(|server| server.preference() < 255),
        "every server below 255"
    );
    let highest_name = highest.name.clone();
    // The highest Preference answers last: it is stopped until the client has heard
    // another server, so a client that took the first Advertise would bind elsewhere.
    net.lab.signal_server(&highest_name, "-STOP");
    net.lab
        .start_dhclient("cli", CLIENT_IF, CLIENT, &["-N", "-P"]);
    net.lab
        .wait_for_log(CLIENT, "RCV: Advertise", Duration::from_secs(10));
    net.lab.signal_server(&highest_name, "-CONT");
    let lease = net.wait_for_lease(&["BOUND6"], 0.0, Duration::from_secs(15));

    let highest = net.server(&highest_name);
    assert!(
        highest.owns_address(lease.address) && highest.owns_prefix(&lease.prefix),
        "the client bound {} and {} instead of an address and prefix of {} (Preference {}):\n{}",
        lease.address,
        lease.prefix,
        highest.file,
        highest.preference(),
        net.report()
    );
    let messages = captured_messages(&net.capture);
    let advertised: Vec<Option<u8>> = messages
        .iter()
        .filter(|m| m.msg_type == 2)
        .map(|m| m.preference)
        .collect();
    let first_preference = advertised.first().copied().flatten();
    assert!(
        advertised.len() >= 2 && first_preference.is_some_and(|p| p < highest.preference()),
        "expected a lower Preference first, then {}: {advertised:?}\n{}",
        highest.preference(),
        net.report()
    );
    eprintln!(
        "preference: Advertises {advertised:?}, bound {} / {} from {}; test {:.1} s",
        lease.address,
        lease.prefix,
        highest.file,
        started.elapsed().as_secs_f64()
    );
}
