//! Live reload of the running daemon, on both datapaths: SIGHUP with a changed file changes
//! the replies, an invalid file or a change that needs a restart is refused while the old
//! configuration keeps serving, reloads under perfdhcp load drop nothing, and a runtime
//! reservation (the reservations file next to the journal) is served after a reload and
//! after a restart.
//!
//! Each test needs root and network namespaces (the load test also Kea's perfdhcp);
//! `cargo xtask test` runs them with `--include-ignored --test-threads=1`.

mod common;

use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use common::perfdhcp::{Perfdhcp, Report};
use common::{DaemonOptions, Datapath, Lab, metric_sum};
use xdhcp6_engine::Destination;
use xdhcp6_engine::proto::{MessageType, OptionCode};
use xdhcp6_engine::testing::{Client, ReplyView, duid_llt};

const SERVER_IF: &str = "xd6rs";
const CLIENT_IF: &str = "xd6rc";

/// One link on the server's interface; `preference` and `salt` vary between tests.
fn config(preference: u8, salt: &str) -> String {
    format!(
        r#"
[server]
duid = "00:01:00:01:2e:00:00:0d:02:00:00:00:00:0d"
salt = "{salt}"
# perfdhcp sends every client from one MAC and one address: no per-MAC limits.
mac-max-bindings = 0
mac-binding-rate = 0

[[link]]
name = "direct"
interfaces = ["{SERVER_IF}"]
preference = {preference}

[[link.pool]]
prefix = "2001:db8:d::/64"
"#
    )
}

struct Running {
    lab: Lab,
    datapath: Datapath,
    journal: PathBuf,
    config: PathBuf,
}

fn start(tag: &str, datapath: Datapath) -> Running {
    let mut lab = common::lab(tag, &["srv", "cli"]);
    lab.veth_with_finished_checksums(("srv", SERVER_IF), ("cli", CLIENT_IF));
    let journal = lab.path("leases.journal");
    let options = DaemonOptions {
        datapath,
        journal: &journal,
        durability: "always",
        log: "daemon",
    };
    lab.start_daemon("srv", &config(10, "reload"), &options);
    let config = lab.path("server.toml");
    Running {
        lab,
        datapath,
        journal,
        config,
    }
}

impl Running {
    /// Rewrites the configuration file, sends SIGHUP and waits for the reload's log line;
    /// returns the log lines the reload wrote.
    fn reload(&mut self, text: &str) -> String {
        std::fs::write(&self.config, text).unwrap();
        self.hang_up()
    }

    fn hang_up(&mut self) -> String {
        let before = self.lab.daemon_log().len();
        self.lab.signal_server("server", "HUP");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.lab.daemon_log();
            let new = log.get(before..).unwrap_or_default();
            if new.contains("configuration reload") {
                return new.to_owned();
            }
            assert!(Instant::now() < deadline, "no reload logged:\n{log}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Client `n`'s Advertise.
    fn advertise(&self, n: u64) -> ReplyView {
        self.lab
            .netns("cli")
            .run(move || {
                let index = xdhcp6_datapath::interface_index(CLIENT_IF).unwrap();
                let socket = UdpSocket::bind("[::]:546").unwrap();
                socket
                    .set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                let servers = SocketAddrV6::new("ff02::1:2".parse().unwrap(), 547, 0, index);
                let mut client = Client::new(n);
                client.xid = n as u32 & 0x00ff_ffff;
                let solicit = client.solicit().ia_na(1, &[]).encode();
                for _ in 0..5 {
                    socket.send_to(&solicit, servers).unwrap();
                    let mut buf = [0u8; 1500];
                    while let Ok((len, _)) = socket.recv_from(&mut buf) {
                        let reply = ReplyView::parse(&buf[..len], Destination::Client);
                        if reply.msg_type == MessageType::Advertise && reply.xid == client.xid {
                            return Some(reply);
                        }
                    }
                }
                None
            })
            .unwrap()
            .unwrap_or_else(|| panic!("no Advertise for client {n}:\n{}", self.lab.daemon_log()))
    }

    fn preference(&self, n: u64) -> u8 {
        let advertise = self.advertise(n);
        let offered = advertise.ia_na[0].live_addrs();
        assert_eq!(offered.len(), 1, "client {n} was offered {offered:?}");
        advertise
            .option(OptionCode::Preference)
            .and_then(|body| body.first().copied())
            .expect("a Preference option")
    }

    fn metric(&self, name: &str) -> u64 {
        metric_sum(&self.lab.metrics(), name)
    }
}

// ---------------------------------------------------------------------------------------
// A valid change, an invalid file, a change that needs a restart.

#[test]
#[ignore = "needs root and network namespaces; run by cargo xtask test"]
fn sighup_applies_a_valid_change_and_refuses_invalid_and_restart_only_ones_over_udp() {
    sighup_changes(Datapath::Udp);
}

#[test]
#[ignore = "needs root and network namespaces; run by cargo xtask test"]
fn sighup_applies_a_valid_change_and_refuses_invalid_and_restart_only_ones_over_xdp() {
    sighup_changes(Datapath::XdpNative);
}

fn sighup_changes(datapath: Datapath) {
    let mut s = start("reload-sighup", datapath);
    assert_eq!(s.preference(1), 10);
    assert_eq!(s.metric("xdhcp6_config_generation"), 1);

    // A valid change: the next Advertise carries the new Preference.
    let log = s.reload(&config(200, "reload"));
    assert!(log.contains("configuration reloaded"), "{log}");
    assert!(log.contains("links_changed=[\"direct\"]"), "{log}");
    assert_eq!(s.preference(2), 200);
    let metrics = s.lab.metrics();
    assert!(
        metrics.contains("xdhcp6_config_generation 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("xdhcp6_config_reloads_total{result=\"ok\"} 1\n"),
        "{metrics}"
    );

    // An invalid file: refused, naming file and field; the running configuration serves.
    let broken = config(200, "reload").replace("2001:db8:d::/64", "2001:db8:d::/129");
    let log = s.reload(&broken);
    assert!(log.contains("configuration reload refused"), "{log}");
    assert!(log.contains(&s.config.display().to_string()), "{log}");
    assert!(log.contains("link[0].pool[0].prefix"), "{log}");
    assert_eq!(s.preference(3), 200);

    // A change only a restart applies: refused with the list.
    let mut moved = config(50, "another salt");
    moved = moved.replace(
        &format!("interfaces = [\"{SERVER_IF}\"]"),
        &format!("interfaces = [\"{SERVER_IF}\", \"eth42\"]"),
    );
    let log = s.reload(&moved);
    assert!(log.contains("configuration reload refused"), "{log}");
    assert!(log.contains("restart required"), "{log}");
    assert!(log.contains("server.salt changed"), "{log}");
    assert!(
        log.contains("link[0] \\\"direct\\\" interfaces changed (eth42 added"),
        "{log}"
    );
    assert_eq!(s.preference(4), 200);

    let metrics = s.lab.metrics();
    assert!(
        metrics.contains("xdhcp6_config_generation 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("xdhcp6_config_reloads_total{result=\"failed\"} 2\n"),
        "{metrics}"
    );
    if datapath != Datapath::Udp {
        s.lab.assert_steered(datapath, 4);
    }
    s.lab.stop_daemon();
}

// ---------------------------------------------------------------------------------------
// Reloads under load.

#[test]
#[ignore = "needs root, network namespaces and Kea's perfdhcp; run by cargo xtask test"]
fn reloads_under_perfdhcp_load_drop_nothing_over_udp() {
    reloads_under_load(Datapath::Udp);
}

#[test]
#[ignore = "needs root, network namespaces and Kea's perfdhcp; run by cargo xtask test"]
fn reloads_under_perfdhcp_load_drop_nothing_over_xdp() {
    reloads_under_load(Datapath::XdpNative);
}

/// perfdhcp at 500 exchanges a second for 8 s while the configuration is reloaded every
/// 100 ms (the Preference alternates): every message the server received was answered, and
/// perfdhcp lost no exchange.
fn reloads_under_load(datapath: Datapath) {
    common::require_tools(&["perfdhcp"]);
    let mut s = start("reload-load", datapath);
    const PERIOD_S: u64 = 8;
    s.lab.start_perfdhcp(
        "cli",
        &Perfdhcp {
            interface: CLIENT_IF,
            rate: 500,
            period: PERIOD_S,
            clients: 100_000_000,
            unique: true,
        },
    );
    let started = Instant::now();
    let mut reloads = 0u64;
    while started.elapsed() < Duration::from_secs(PERIOD_S - 1) {
        let preference = if reloads.is_multiple_of(2) { 20 } else { 30 };
        let log = s.reload(&config(preference, "reload"));
        assert!(log.contains("configuration reloaded"), "{log}");
        reloads += 1;
        thread::sleep(Duration::from_millis(100));
    }
    let (status, report) = s.lab.wait("perfdhcp", Duration::from_secs(PERIOD_S + 15));
    let stats = Report::parse(&report);
    let metrics = s.lab.metrics();
    let received = metric_sum(&metrics, "xdhcp6_messages_received_total");
    let sent = metric_sum(&metrics, "xdhcp6_messages_sent_total");
    let dropped = metric_sum(&metrics, "xdhcp6_dropped_total");
    let send_failures = metric_sum(&metrics, "xdhcp6_send_failures_total");
    eprintln!(
        "{datapath:?}: {reloads} reloads; server received={received} sent={sent} \
         dropped={dropped} send_failures={send_failures}; perfdhcp {status}: {stats:?}"
    );
    assert!(reloads >= 10, "only {reloads} reloads");
    assert!(
        metrics.contains(&format!("xdhcp6_config_generation {}\n", reloads + 1)),
        "{metrics}"
    );
    assert_eq!(dropped, 0, "{metrics}");
    assert_eq!(send_failures, 0, "{metrics}");
    assert_eq!(received, sent, "{metrics}");
    for exchange in ["SOLICIT-ADVERTISE", "REQUEST-REPLY"] {
        let sent = stats.value(exchange, "sent packets");
        assert!(sent > 0, "{report}");
        assert_eq!(stats.value(exchange, "drops"), 0, "{exchange}: {report}");
        assert_eq!(stats.value(exchange, "received packets"), sent, "{report}");
        assert_eq!(stats.value(exchange, "rejected leases"), 0, "{report}");
        assert_eq!(stats.value(exchange, "non unique addresses"), 0, "{report}");
    }
    // Every Advertise (each with an address) led to a Request that got its Reply.
    assert_eq!(
        stats.value("REQUEST-REPLY", "sent packets"),
        stats.value("SOLICIT-ADVERTISE", "received packets"),
        "{report}"
    );
    if datapath != Datapath::Udp {
        s.lab.assert_steered(datapath, received);
    }
    s.lab.stop_daemon();
}

// ---------------------------------------------------------------------------------------
// Runtime reservations.

#[test]
#[ignore = "needs root and network namespaces; run by cargo xtask test"]
fn a_runtime_reservation_is_served_after_a_reload_and_after_a_restart() {
    let mut s = start("reload-reservation", Datapath::Udp);
    let reserved: Ipv6Addr = "2001:db8:d::7777".parse().unwrap();
    assert_ne!(s.advertise(77).ia_na[0].address(), reserved);
    // The default place: next to the journal.
    let file = s.journal.with_file_name("reservations.toml");
    let duid: Vec<String> = duid_llt(77).iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(
        &file,
        format!(
            "[[reservation]]\nduid = \"{}\"\naddress = \"{reserved}\"\n",
            duid.join(":")
        ),
    )
    .unwrap();
    let log = s.hang_up();
    assert!(log.contains("runtime_reservations=1"), "{log}");
    assert_eq!(s.advertise(77).ia_na[0].address(), reserved);

    s.lab.stop_daemon();
    let options = DaemonOptions {
        datapath: s.datapath,
        journal: &s.journal,
        durability: "always",
        log: "restarted",
    };
    let text = std::fs::read_to_string(&s.config).unwrap();
    s.lab.start_daemon("srv", &text, &options);
    assert_eq!(s.advertise(77).ia_na[0].address(), reserved);
    // A reservation the configuration file already has for that client is refused, naming
    // both files.
    let clash = format!(
        "{text}\n[[reservation]]\nduid = \"{}\"\naddress = \"2001:db8:d::8888\"\n",
        duid.join(":")
    );
    let log = s.reload(&clash);
    assert!(log.contains("configuration reload refused"), "{log}");
    assert!(log.contains(&file.display().to_string()), "{log}");
    assert!(log.contains("reservation[0].duid"), "{log}");
    assert_eq!(s.advertise(77).ia_na[0].address(), reserved);
    s.lab.stop_daemon();
}
