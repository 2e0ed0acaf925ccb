//! DNS updates against BIND 9, in the RFC 6853 split model: two `xdhcp6d` (examples
//! split-a.toml and split-b.toml with a `[link.ddns]`) on one link, a BIND 9 `named` with a
//! TSIG-signed dynamic forward zone and its reverse zone, and ISC `dhclient -6` sending a Client
//! FQDN with the S flag.
//!
//! ```text
//!  server a ─┐          ┌─ client (pc1.example.net)
//!  server b ─┼─ switch ─┼─ client 2 (also pc1.example.net)
//!  named    ─┘ (bridge)
//! ```
//!
//! The client binds to A (Preference 255): A writes its AAAA, DHCID and PTR. A is SIGKILLed;
//! the client Rebinds to B with A's address, which B returns with lifetimes 0 next to one of
//! its own, and B replaces the AAAA RRset (the DHCID matches) and deletes the old PTR: BIND
//! then holds exactly one AAAA (B's address), one PTR, and the same DHCID. A second client
//! claiming the same name is refused by the DHCID rule (B counts a conflict, the records stay
//! the first client's); the first client's Release removes its records.
//!
//! Needs root, network namespaces, ISC dhclient and BIND 9 (`named`, `dig`, `tsig-keygen`);
//! `cargo xtask test` runs it with `--include-ignored --test-threads=1`.

mod common;

use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{DaemonOptions, Datapath, Lab, ScriptEvent, metric_sum};
use xdhcp6_engine::Destination;
use xdhcp6_engine::config::{Config, reverse_name};
use xdhcp6_engine::proto::MessageType;
use xdhcp6_engine::testing::{Client, Msg, ReplyView};

const SERVER_IF: &str = "xd6s";
const CLIENT_IF: &str = "xd6c";
const DNS_IF: &str = "xd6n";
const BRIDGE: &str = "xd6br";

/// BIND's address, and the servers' on the same /64 (the clients' pool is 2001:db8:1::/64).
const DNS_ADDRESS: &str = "2001:db8:53::53";
const FORWARD_ZONE: &str = "example.net";
const REVERSE_ZONE: &str = "0.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa";
const NAME: &str = "pc1.example.net";
const KEY_NAME: &str = "xdhcp6-ddns";

/// How long DNS may take to show an update (the updater sends it at once; BIND answers in
/// milliseconds; this is a ceiling for a loaded machine).
const DNS_WAIT: Duration = Duration::from_secs(20);

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// One server: an example file with the lab's interface put in and a `[link.ddns]` added.
struct Server {
    name: &'static str,
    text: String,
    config: Config,
}

impl Server {
    fn new(model: Model, name: &'static str, key_file: &Path) -> Self {
        let file = format!("{}-{name}.toml", model.examples());
        let path = examples().join(&file);
        let original = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
        let mut text: String = original
            .lines()
            .map(|line| {
                if line.starts_with("interfaces = ") {
                    format!("interfaces = [\"{SERVER_IF}\"]")
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        text.push_str(&format!(
            "\n\n[link.ddns]\nforward-zone = \"{FORWARD_ZONE}\"\nreverse-zone = \
             \"{REVERSE_ZONE}\"\nservers = [\"{DNS_ADDRESS}\"]\ntsig-key-file = \"{}\"\nttl = \
             60\n",
            key_file.display()
        ));
        if model == Model::Identical {
            // The peers hand out the same addresses: an expiry after a downtime leaves the
            // records to the peer that serves the client.
            text.push_str("identical-peers = true\n");
        }
        let config = Config::from_toml_str(&text, &file).unwrap_or_else(|error| panic!("{error}"));
        Self { name, text, config }
    }

    fn role(&self) -> String {
        format!("s{}", self.name)
    }

    fn owns(&self, address: Ipv6Addr) -> bool {
        self.config.links[0].na_pools[0].range.contains(address)
    }
}

struct Network {
    lab: Lab,
    servers: Vec<Server>,
    datapath: Datapath,
}

/// The RFC 6853 model of the servers, by the examples' files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Model {
    /// split-a.toml, split-b.toml: the survivor gives the client a new address.
    Split,
    /// identical-a.toml, identical-b.toml: the survivor extends the same address.
    Identical,
}

impl Model {
    fn examples(self) -> &'static str {
        match self {
            Model::Split => "split",
            Model::Identical => "identical",
        }
    }
}

impl Network {
    /// The lab with BIND configured; `named_running`: started too, else
    /// [`Network::start_named`] starts it later.
    fn new(
        tag: &str,
        model: Model,
        datapath: Datapath,
        names: &[&'static str],
        named_running: bool,
    ) -> Self {
        common::require_tools(&["dhclient", "named", "dig", "tsig-keygen", "bridge"]);
        let lab = common::lab(tag, &["sw", "cli", "cl2", "dns", "sa", "sb"]);
        lab.bridge("sw", BRIDGE);
        let key_file = lab.path("ddns.key");
        let servers: Vec<Server> = names
            .iter()
            .map(|name| Server::new(model, name, &key_file))
            .collect();
        for (i, server) in servers.iter().enumerate() {
            let port = format!("p{}", server.name);
            lab.veth((&server.role(), SERVER_IF), ("sw", &port));
            lab.attach("sw", &port, BRIDGE);
            lab.address(
                &server.role(),
                SERVER_IF,
                &format!("2001:db8:53::{:x}/64", 0xa + i),
            );
        }
        for (role, port) in [("cli", "pcli"), ("cl2", "pcl2")] {
            lab.veth((role, CLIENT_IF), ("sw", port));
            lab.attach("sw", port, BRIDGE);
        }
        lab.veth(("dns", DNS_IF), ("sw", "pdns"));
        lab.attach("sw", "pdns", BRIDGE);
        lab.address("dns", DNS_IF, &format!("{DNS_ADDRESS}/64"));
        write_named_config(&lab, &key_file);
        let mut net = Self {
            lab,
            servers,
            datapath,
        };
        if named_running {
            net.start_named();
        }
        for server in ["a", "b"] {
            if net.servers.iter().any(|s| s.name == server) {
                net.start_server(server);
            }
        }
        net
    }

    fn start_server(&mut self, name: &str) {
        let server = self.servers.iter().find(|s| s.name == name).unwrap();
        let journal = self.lab.path(&format!("{}.journal", server.name));
        let options = DaemonOptions {
            datapath: self.datapath,
            journal: &journal,
            durability: "always",
            log: server.name,
        };
        self.lab
            .start_server(server.name, &server.role(), &server.text, &options);
    }

    /// Starts `named` in the foreground and waits until it answers.
    fn start_named(&mut self) {
        let conf = self
            .lab
            .path("named")
            .join("named.conf")
            .display()
            .to_string();
        self.lab
            .spawn("dns", "named", &["named", "-g", "-c", &conf]);
        let deadline = Instant::now() + Duration::from_secs(20);
        let server = format!("@{DNS_ADDRESS}");
        loop {
            let output = self
                .lab
                .exec("dns", &["dig", &server, "+short", "SOA", FORWARD_ZONE]);
            if output.status.success() && !output.stdout.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "named does not answer:\n{}",
                self.lab.log("named")
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    fn server(&self, name: &str) -> &Server {
        self.servers.iter().find(|s| s.name == name).unwrap()
    }

    fn report(&self) -> String {
        let mut text = self.lab.dhclient_report("client");
        text.push_str(&self.lab.dhclient_report("client2"));
        text.push_str(&self.lab.daemon_logs());
        text.push_str(&format!("--- named log:\n{}\n", self.lab.log("named")));
        text
    }

    /// `dig +short TYPE NAME` against BIND: the records' data, sorted.
    fn dig(&self, kind: &str, name: &str) -> Vec<String> {
        let server = format!("@{DNS_ADDRESS}");
        let output = self
            .lab
            .exec("dns", &["dig", &server, "+short", "+norec", kind, name]);
        assert!(
            output.status.success(),
            "dig {kind} {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    /// `dig` that may fail (BIND not running): `None` then.
    fn dig_quiet(&self, kind: &str, name: &str) -> Option<String> {
        let server = format!("@{DNS_ADDRESS}");
        let output = self.lab.exec(
            "dns",
            &[
                "dig", &server, "+short", "+norec", "+tries=1", "+time=1", kind, name,
            ],
        );
        let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        (output.status.success() && !text.is_empty()).then_some(text)
    }

    /// Waits until `kind NAME` reads `expected` in BIND.
    fn wait_dns(&self, kind: &str, name: &str, expected: &[String], what: &str) {
        let deadline = Instant::now() + DNS_WAIT;
        let mut expected = expected.to_vec();
        expected.sort();
        loop {
            let found = self.dig(kind, name);
            if found == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {kind} {name} is {found:?}, not {expected:?} after {DNS_WAIT:?}:\n{}",
                self.report()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits for a script call of `client` for `reasons` after `since` with an address (valid
    /// lifetime above 0) that `owner` hands out.
    fn wait_for_address(
        &self,
        client: &str,
        reasons: &[&str],
        since: f64,
        owner: &str,
        timeout: Duration,
    ) -> Ipv6Addr {
        let deadline = Instant::now() + timeout;
        let owner = self.server(owner);
        loop {
            let events: Vec<ScriptEvent> = self.lab.dhclient_events(client);
            let found = events.iter().find(|event| {
                event.time >= since
                    && reasons.contains(&event.reason.as_str())
                    && event.valid.is_some_and(|valid| valid > 0)
                    && event.address.is_some_and(|address| owner.owns(address))
            });
            if let Some(event) = found {
                return event.address.unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "{client} has no address of server {} by {reasons:?} after {timeout:?}:\n{}",
                owner.name,
                self.report()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_metric(&self, server: &str, metric: &str, at_least: u64) {
        let deadline = Instant::now() + DNS_WAIT;
        loop {
            let value = metric_sum(&self.lab.server_metrics(server), metric);
            if value >= at_least {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{server}: {metric} is {value}, not at least {at_least}:\n{}",
                self.report()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Writes a TSIG key with `tsig-keygen` and a named.conf with the two zones updatable with
/// that key only, and only the types xdhcp6 writes (docs/ddns.md).
fn write_named_config(lab: &Lab, key_file: &Path) {
    let keygen = common::run("tsig-keygen", &["-a", "hmac-sha256", KEY_NAME]);
    assert!(keygen.status.success(), "tsig-keygen failed");
    std::fs::write(key_file, &keygen.stdout).unwrap();
    let dir = lab.path("named");
    std::fs::create_dir_all(&dir).unwrap();
    let soa = "$TTL 60\n@ IN SOA ns.example.net. hostmaster.example.net. 1 3600 600 86400 60\n\
               @ IN NS ns.example.net.\n";
    std::fs::write(
        dir.join("forward.zone"),
        format!("{soa}ns IN AAAA {DNS_ADDRESS}\n"),
    )
    .unwrap();
    std::fs::write(dir.join("reverse.zone"), soa).unwrap();
    let d = dir.display();
    let conf = format!(
        "include \"{key}\";\n\
         options {{\n\
           directory \"{d}\";\n\
           pid-file \"{d}/named.pid\";\n\
           session-keyfile \"{d}/session.key\";\n\
           listen-on {{ none; }};\n\
           listen-on-v6 {{ {DNS_ADDRESS}; }};\n\
           recursion no;\n\
           dnssec-validation no;\n\
           allow-query {{ any; }};\n\
         }};\n\
         controls {{ }};\n\
         zone \"{FORWARD_ZONE}\" {{ type primary; file \"{d}/forward.zone\";\n\
           update-policy {{ grant {KEY_NAME} zonesub AAAA DHCID; }}; }};\n\
         zone \"{REVERSE_ZONE}\" {{ type primary; file \"{d}/reverse.zone\";\n\
           update-policy {{ grant {KEY_NAME} zonesub PTR; }}; }};\n",
        key = key_file.display()
    );
    std::fs::write(dir.join("named.conf"), conf).unwrap();
}

/// A dhclient.conf that sends `pc1.example.net` in a Client FQDN with S set.
fn client_conf(lab: &Lab, name: &str) -> String {
    let path = lab.path(&format!("{name}.conf"));
    std::fs::write(
        &path,
        format!("send fqdn.fqdn \"{NAME}.\";\nsend fqdn.server-update on;\n"),
    )
    .unwrap();
    path.display().to_string()
}

fn reverse(address: Ipv6Addr) -> String {
    reverse_name(address)
}

/// A Client FQDN option (39) body: the S flag and `name` (dotted, absolute) in wire format.
fn fqdn_option(name: &str) -> Vec<u8> {
    let mut body = vec![0b001];
    for label in name.trim_end_matches('.').split('.') {
        body.push(label.len() as u8);
        body.extend_from_slice(label.as_bytes());
    }
    body.push(0);
    body
}

/// Sends `msg` from port 546 of `CLIENT_IF` in a role's namespace to All_DHCP_Relay_Agents_and_
/// Servers until an answer of type `expect` with its transaction id comes (ten tries).
fn raw_ask(lab: &Lab, role: &str, msg: &Msg, expect: MessageType) -> ReplyView {
    let bytes = msg.encode();
    let xid = msg.xid;
    let reply = lab
        .netns(role)
        .run(move || {
            let index = xdhcp6_datapath::interface_index(CLIENT_IF).unwrap();
            let socket = UdpSocket::bind("[::]:546").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let servers = SocketAddrV6::new("ff02::1:2".parse().unwrap(), 547, 0, index);
            let mut buf = [0u8; 1500];
            for _ in 0..10 {
                socket.send_to(&bytes, servers).unwrap();
                let deadline = Instant::now() + Duration::from_secs(1);
                while Instant::now() < deadline {
                    let Ok((len, _)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    let reply = ReplyView::parse(&buf[..len], Destination::Client);
                    if reply.msg_type == expect && reply.xid == xid {
                        return Some(reply);
                    }
                }
            }
            None
        })
        .unwrap();
    reply.unwrap_or_else(|| panic!("no {expect:?} to the raw client's {:?}", msg.msg_type))
}

/// The raw client `n` in a role's namespace solicits and requests one address under `name`
/// (Client FQDN with S set); returns the address and the server's DUID.
fn raw_bind(lab: &Lab, role: &str, client: &Client, name: &str) -> (Ipv6Addr, Vec<u8>) {
    let option = fqdn_option(name);
    let advertise = raw_ask(
        lab,
        role,
        &client.solicit().ia_na(1, &[]).option(39, &option),
        MessageType::Advertise,
    );
    let server = advertise.server_id.clone().expect("a Server Identifier");
    let offered = advertise.ia_na[0].live_addrs();
    let reply = raw_ask(
        lab,
        role,
        &client
            .request(&server)
            .ia_na(1, &offered)
            .option(39, &option),
        MessageType::Reply,
    );
    let bound = reply.ia_na[0].live_addrs();
    assert_eq!(bound.len(), 1, "one address bound: {:?}", reply.ia_na);
    (bound[0], server)
}

#[test]
#[ignore = "needs root, network namespaces, ISC dhclient and BIND 9; run by cargo xtask test"]
fn split_failover_leaves_one_aaaa_over_udp() {
    failover("ddns-split-udp", Model::Split, Datapath::Udp);
}

#[test]
#[ignore = "needs root, network namespaces, ISC dhclient, BIND 9 and the XDP object; run by cargo xtask test"]
fn split_failover_leaves_one_aaaa_over_xdp() {
    failover("ddns-split-xdp", Model::Split, Datapath::XdpNative);
}

#[test]
#[ignore = "needs root, network namespaces, ISC dhclient and BIND 9; run by cargo xtask test"]
fn identical_failover_keeps_the_records_over_udp() {
    failover("ddns-ident-udp", Model::Identical, Datapath::Udp);
}

#[test]
#[ignore = "needs root, network namespaces, ISC dhclient, BIND 9 and the XDP object; run by cargo xtask test"]
fn identical_failover_keeps_the_records_over_xdp() {
    failover("ddns-ident-xdp", Model::Identical, Datapath::XdpNative);
}

/// Binds a named client to A, kills A, lets the client Rebind to B and reads BIND; then a
/// second client claims the name, and the first releases.
fn failover(tag: &str, model: Model, datapath: Datapath) {
    let mut net = Network::new(tag, model, datapath, &["a", "b"], true);
    let conf = client_conf(&net.lab, "client");
    net.lab
        .start_dhclient("cli", CLIENT_IF, "client", &["-N", "-cf", &conf]);
    let first = net.wait_for_address("client", &["BOUND6"], 0.0, "a", Duration::from_secs(15));
    let fqdn = format!("{NAME}.");
    net.wait_dns("AAAA", NAME, &[first.to_string()], "after the bind to A");
    net.wait_dns(
        "PTR",
        &reverse(first),
        std::slice::from_ref(&fqdn),
        "A's PTR",
    );
    let dhcid = net.dig("DHCID", NAME);
    assert_eq!(dhcid.len(), 1, "one DHCID at {NAME}: {dhcid:?}");

    // A dies; the client's Rebind reaches B.
    net.lab.kill_server("a");
    let killed = unix_now();
    let second = net.wait_for_address(
        "client",
        &["REBIND6", "BOUND6", "RENEW6"],
        killed,
        "b",
        Duration::from_secs(45),
    );
    if model == Model::Identical {
        assert_eq!(second, first, "the identical model keeps the address");
    }
    net.wait_dns(
        "AAAA",
        NAME,
        &[second.to_string()],
        "after the Rebind to B: exactly one AAAA, B's",
    );
    net.wait_dns(
        "PTR",
        &reverse(second),
        std::slice::from_ref(&fqdn),
        "B's PTR",
    );
    if model == Model::Split {
        net.wait_dns("PTR", &reverse(first), &[], "A's PTR deleted by B");
    }
    assert_eq!(
        net.dig("DHCID", NAME),
        dhcid,
        "the DHCID is the client's, unchanged:\n{}",
        net.report()
    );

    // A second client claims the same name: B refuses by the DHCID rule.
    let conf2 = client_conf(&net.lab, "client2");
    net.lab
        .start_dhclient("cl2", CLIENT_IF, "client2", &["-N", "-cf", &conf2]);
    let other = net.wait_for_address("client2", &["BOUND6"], 0.0, "b", Duration::from_secs(20));
    net.wait_metric("b", "xdhcp6_ddns_conflicts_total", 1);
    assert_eq!(
        net.dig("AAAA", NAME),
        [second.to_string()],
        "the name still holds the first client's address"
    );
    assert_eq!(net.dig("DHCID", NAME), dhcid, "and its DHCID");
    assert!(
        net.dig("PTR", &reverse(other)).is_empty(),
        "no PTR for the refused client's address"
    );

    // The first client releases: its records go. The running dhclient is stopped first
    // (SIGTERM: no Release), then `dhclient -r` releases the lease of its lease file.
    let (_, _) = net.lab.stop("client", "-TERM");
    let client = net.lab.path("client");
    let leases = format!("{}.leases", client.display());
    let pid = format!("{}.pid", client.display());
    let release = net.lab.exec(
        "cli",
        &[
            "dhclient", "-6", "-r", "-cf", &conf, "-lf", &leases, "-pf", &pid, CLIENT_IF,
        ],
    );
    assert!(
        release.status.success(),
        "dhclient -r: {}",
        String::from_utf8_lossy(&release.stderr)
    );
    net.wait_dns("AAAA", NAME, &[], "after the Release: no AAAA");
    net.wait_dns("DHCID", NAME, &[], "after the Release: no DHCID");
    net.wait_dns("PTR", &reverse(second), &[], "after the Release: no PTR");
    let metrics = net.lab.server_metrics("b");
    assert_eq!(
        metric_sum(&metrics, "xdhcp6_ddns_failed_total"),
        0,
        "{metrics}"
    );
    assert_eq!(
        metric_sum(&metrics, "xdhcp6_ddns_dropped_total"),
        0,
        "{metrics}"
    );
}

#[test]
#[ignore = "needs root, network namespaces, ISC dhclient and BIND 9; run by cargo xtask test"]
fn split_failover_by_solicit_leaves_one_aaaa_and_a_decline_removes_over_udp() {
    let mut net = Network::new(
        "ddns-solicit",
        Model::Split,
        Datapath::Udp,
        &["a", "b"],
        true,
    );
    let conf = client_conf(&net.lab, "client");
    net.lab
        .start_dhclient("cli", CLIENT_IF, "client", &["-N", "-cf", &conf]);
    let first = net.wait_for_address("client", &["BOUND6"], 0.0, "a", Duration::from_secs(15));
    let fqdn = format!("{NAME}.");
    net.wait_dns("AAAA", NAME, &[first.to_string()], "after the bind to A");
    net.wait_dns(
        "PTR",
        &reverse(first),
        std::slice::from_ref(&fqdn),
        "A's PTR",
    );
    let dhcid = net.dig("DHCID", NAME);
    assert_eq!(dhcid.len(), 1, "one DHCID at {NAME}: {dhcid:?}");

    // A dies, and the client starts over: stopped without a Release (SIGTERM), started again
    // with a lease file that holds only its DUID, so it Solicits instead of Rebinding.
    net.lab.kill_server("a");
    let _ = net.lab.stop("client", "-TERM");
    let leases = std::fs::read_to_string(net.lab.path("client.leases")).unwrap();
    let duid: Vec<&str> = leases
        .lines()
        .filter(|line| line.trim_start().starts_with("default-duid"))
        .collect();
    assert_eq!(duid.len(), 1, "the DUID in the lease file:\n{leases}");
    std::fs::write(
        net.lab.path("client-again.leases"),
        format!("{}\n", duid[0]),
    )
    .unwrap();
    let restarted = unix_now();
    net.lab
        .start_dhclient("cli", CLIENT_IF, "client-again", &["-N", "-cf", &conf]);
    let second = net.wait_for_address(
        "client-again",
        &["BOUND6"],
        restarted,
        "b",
        Duration::from_secs(20),
    );
    let log = net.lab.log("client-again");
    assert!(
        log.contains("XMT: Solicit") && !log.contains("PRC: Rebinding"),
        "the client started over with a Solicit:\n{log}"
    );
    net.wait_dns(
        "AAAA",
        NAME,
        &[second.to_string()],
        "after the Solicit to B: exactly one AAAA, B's",
    );
    net.wait_dns(
        "PTR",
        &reverse(second),
        std::slice::from_ref(&fqdn),
        "B's PTR",
    );
    assert_eq!(
        net.dig("DHCID", NAME),
        dhcid,
        "the DHCID is the client's, unchanged:\n{}",
        net.report()
    );

    // A client of its own binds another name at B with a Client FQDN, then Declines the
    // address: B removes the AAAA, the DHCID and the PTR.
    let declining = "pc2.example.net";
    let raw = Client::new(0x2002);
    let (address, server) = raw_bind(&net.lab, "cl2", &raw, declining);
    assert!(net.server("b").owns(address), "{address} is B's");
    net.wait_dns(
        "AAAA",
        declining,
        &[address.to_string()],
        "the raw client's AAAA",
    );
    net.wait_dns(
        "PTR",
        &reverse(address),
        &[format!("{declining}.")],
        "the raw client's PTR",
    );
    assert_eq!(net.dig("DHCID", declining).len(), 1, "its DHCID");
    let reply = raw_ask(
        &net.lab,
        "cl2",
        &raw.decline(&server).ia_na(1, &[address]),
        MessageType::Reply,
    );
    assert_eq!(reply.msg_type, MessageType::Reply);
    net.wait_dns("AAAA", declining, &[], "after the Decline: no AAAA");
    net.wait_dns("DHCID", declining, &[], "after the Decline: no DHCID");
    net.wait_dns("PTR", &reverse(address), &[], "after the Decline: no PTR");
    // The first client's records are untouched.
    assert_eq!(net.dig("AAAA", NAME), [second.to_string()]);
    assert_eq!(net.dig("DHCID", NAME), dhcid);
    let metrics = net.lab.server_metrics("b");
    assert_eq!(
        metric_sum(&metrics, "xdhcp6_ddns_failed_total"),
        0,
        "{metrics}"
    );
}

#[test]
#[ignore = "needs root, network namespaces, ISC dhclient and BIND 9; run by cargo xtask test"]
fn identical_server_back_from_downtime_leaves_the_peers_records_over_udp() {
    let mut net = Network::new(
        "ddns-ident-back",
        Model::Identical,
        Datapath::Udp,
        &["a", "b"],
        true,
    );
    let conf = client_conf(&net.lab, "client");
    net.lab
        .start_dhclient("cli", CLIENT_IF, "client", &["-N", "-cf", &conf]);
    let address = net.wait_for_address("client", &["BOUND6"], 0.0, "a", Duration::from_secs(15));
    let bound = unix_now();
    let fqdn = format!("{NAME}.");
    net.wait_dns("AAAA", NAME, &[address.to_string()], "after the bind to A");
    net.wait_dns(
        "PTR",
        &reverse(address),
        std::slice::from_ref(&fqdn),
        "A's PTR",
    );
    let dhcid = net.dig("DHCID", NAME);
    assert_eq!(dhcid.len(), 1, "one DHCID at {NAME}: {dhcid:?}");

    // A dies; at T2 the client Rebinds and B extends the same address.
    net.lab.kill_server("a");
    let killed = unix_now();
    let rebound = net.wait_for_address(
        "client",
        &["REBIND6", "BOUND6", "RENEW6"],
        killed,
        "b",
        Duration::from_secs(45),
    );
    assert_eq!(rebound, address, "the identical model keeps the address");
    net.wait_metric("b", "xdhcp6_ddns_succeeded_total", 1);

    // A comes back after the client's rebinding time; the client renews with B, so A's copy
    // of the lease expires on A's timer (valid lifetime 30 s after the bind).
    let t2 = net.server("a").config.links[0].timers.t2;
    while unix_now() < bound + f64::from(t2) + 1.0 {
        thread::sleep(Duration::from_millis(100));
    }
    net.start_server("a");
    let valid = net.server("a").config.links[0].timers.valid;
    let deadline = Instant::now() + Duration::from_secs(u64::from(valid) + 15);
    while !net
        .lab
        .server_log("a")
        .contains("expired lease left in place")
    {
        assert!(
            Instant::now() < deadline,
            "A's copy of the lease did not expire leaving the records in place: AAAA {:?}, \
             PTR {:?}, updates A sent since its start: {}\n{}",
            net.dig("AAAA", NAME),
            net.dig("PTR", &reverse(address)),
            metric_sum(
                &net.lab.server_metrics("a"),
                "xdhcp6_ddns_updates_sent_total"
            ),
            net.report()
        );
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        metric_sum(
            &net.lab.server_metrics("a"),
            "xdhcp6_ddns_updates_sent_total"
        ),
        0,
        "A sent no update after its start:\n{}",
        net.report()
    );
    assert_eq!(
        net.dig("AAAA", NAME),
        [address.to_string()],
        "the AAAA stays"
    );
    assert_eq!(net.dig("PTR", &reverse(address)), [fqdn], "the PTR stays");
    assert_eq!(net.dig("DHCID", NAME), dhcid, "the DHCID stays");
}

#[test]
#[ignore = "needs root, network namespaces, ISC dhclient and BIND 9; run by cargo xtask test"]
fn pending_updates_survive_a_restart_and_an_expiry_removes_them_over_udp() {
    // BIND is not running yet: the update fails and is retried, pending in a.journal.ddns.
    let mut net = Network::new("ddns-restart", Model::Split, Datapath::Udp, &["a"], false);
    let conf = client_conf(&net.lab, "client");
    net.lab
        .start_dhclient("cli", CLIENT_IF, "client", &["-N", "-cf", &conf]);
    let address = net.wait_for_address("client", &["BOUND6"], 0.0, "a", Duration::from_secs(15));
    net.wait_metric("a", "xdhcp6_ddns_updates_sent_total", 1);
    // The client goes quiet (no Release, no Renew), the server dies in the middle of its
    // retries.
    let _ = net.lab.stop("client", "-TERM");
    net.lab.kill_server("a");
    let pending = std::fs::read_to_string(net.lab.path("a.journal.ddns")).unwrap();
    assert!(
        pending.contains("\"job\"") && pending.contains(NAME),
        "the update is journaled: {pending}"
    );
    assert!(
        net.dig_quiet("AAAA", NAME).is_none(),
        "BIND is not running yet"
    );

    net.start_named();
    net.start_server("a");
    net.wait_dns(
        "AAAA",
        NAME,
        &[address.to_string()],
        "the pending update, resumed after the restart",
    );
    net.wait_dns(
        "PTR",
        &reverse(address),
        &[format!("{NAME}.")],
        "the pending PTR, resumed after the restart",
    );
    net.wait_metric("a", "xdhcp6_ddns_succeeded_total", 1);

    // The client said nothing since: its lease expires on the restarted server's timer (the
    // example's valid lifetime is 30 s), and the name it had is known from the file.
    let valid = net.server("a").config.links[0].timers.valid;
    let deadline = Instant::now() + Duration::from_secs(u64::from(valid) + 10);
    loop {
        let aaaa = net.dig("AAAA", NAME);
        let ptr = net.dig("PTR", &reverse(address));
        let dhcid = net.dig("DHCID", NAME);
        if aaaa.is_empty() && ptr.is_empty() && dhcid.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the expired lease keeps its records (AAAA {aaaa:?}, PTR {ptr:?}, DHCID \
             {dhcid:?}):\n{}",
            net.report()
        );
        thread::sleep(Duration::from_millis(500));
    }
}
