//! End to end: the daemon in a network namespace, real clients in others, on both datapaths
//! (UDP, and AF_XDP with the program in veth's native mode; `udp_dhclient.rs` covers skb mode).
//!
//! - ISC dhclient (address, then prefix) through ISC dhcrelay: the relay's link-address
//!   selects the link, and the leases end up in `xdhcp6d leases --json`.
//! - Kea perfdhcp at 2,000 exchanges/s for 10 s: no drops, no rejected or repeated addresses.
//! - SIGKILL under perfdhcp load with `--durability always`: every address a client saw in a
//!   Reply is in the journal, and a restart loads them.
//!
//! Each test needs root, network namespaces and the ISC/Kea tools; `cargo xtask test` runs
//! them with `--include-ignored --test-threads=1` (they share the kernel's namespaces).

mod common;

use std::collections::BTreeSet;
use std::net::Ipv6Addr;
use std::thread;
use std::time::{Duration, Instant};

use common::perfdhcp::{Perfdhcp, Report};
use common::{
    DaemonOptions, Datapath, Lab, capture, captured_messages, contains, fixtures, journal_leases,
    lease_value, metric_sum,
};

/// Interfaces (names are per namespace): server — relay upstream, relay downstream — client.
const SERVER_IF: &str = "xd6s";
const RELAY_UP_IF: &str = "xd6u";
const RELAY_DOWN_IF: &str = "xd6d";
const CLIENT_IF: &str = "xd6c";

/// The server's and the relay's addresses on the link between them.
const SERVER_ADDRESS: &str = "2001:db8:f::1";
const RELAY_UP_ADDRESS: &str = "2001:db8:f::2";
/// The relay's address on the clients' link: its link-address, inside the relayed pool.
const RELAY_DOWN_ADDRESS: &str = "2001:db8:2::1";

/// Two links: the server's own (selected by interface) and the relayed one (selected by the
/// relay's link-address, which lies in its pool's prefix).
fn config(salt: &str) -> String {
    fixtures::render(
        fixtures::TWO_LINKS,
        &[("SERVER_IF", SERVER_IF), ("SALT", salt)],
    )
    .expect("the two-links fixture")
}

// ---------------------------------------------------------------------------------------
// 1. dhclient through dhcrelay

#[test]
#[ignore = "needs root, network namespaces and ISC/Kea tools; run by cargo xtask test"]
fn relayed_dhclient_over_udp() {
    relayed_dhclient(Datapath::Udp);
}

#[test]
#[ignore = "needs root, network namespaces and ISC/Kea tools; run by cargo xtask test"]
fn relayed_dhclient_over_xdp() {
    relayed_dhclient(Datapath::XdpNative);
}

/// client ns — relay ns — server ns; dhclient gets an address and a prefix of the relayed
/// link, and both are in the journal, on that link.
fn relayed_dhclient(datapath: Datapath) {
    let started = Instant::now();
    let mut lab = common::lab("relayed", &["srv", "rly", "cli"]);
    lab.veth(("srv", SERVER_IF), ("rly", RELAY_UP_IF));
    lab.veth(("rly", RELAY_DOWN_IF), ("cli", CLIENT_IF));
    lab.address("srv", SERVER_IF, &format!("{SERVER_ADDRESS}/64"));
    lab.address("rly", RELAY_UP_IF, &format!("{RELAY_UP_ADDRESS}/64"));
    lab.address("rly", RELAY_DOWN_IF, &format!("{RELAY_DOWN_ADDRESS}/64"));

    let journal = lab.path("leases.journal");
    let options = DaemonOptions {
        datapath,
        journal: &journal,
        durability: "always",
        log: "daemon",
    };
    lab.start_daemon("srv", &config("relayed"), &options);
    let upper = format!("{SERVER_ADDRESS}%{RELAY_UP_IF}");
    lab.start_dhcrelay("rly", RELAY_DOWN_IF, &[upper]);

    let na = lab.dhclient("cli", CLIENT_IF, "na", &[]);
    let address = lease_value(&na, "iaaddr ").unwrap_or_else(|| panic!("no address:\n{na}"));
    let parsed: Ipv6Addr = address.parse().unwrap();
    // Split "1/2": this server allocates from the first half of the relayed /64.
    let relayed: Ipv6Addr = "2001:db8:2::".parse().unwrap();
    assert!(
        contains(relayed, 65, parsed),
        "{address} is outside 2001:db8:2::/65 (the relayed link's range)"
    );

    let pd = lab.dhclient("cli", CLIENT_IF, "pd", &["-P"]);
    let prefix = lease_value(&pd, "iaprefix ").unwrap_or_else(|| panic!("no prefix:\n{pd}"));
    let (network, length) = prefix.split_once('/').expect("prefix/length");
    let pd_pool: Ipv6Addr = "2001:db8:200::".parse().unwrap();
    assert!(
        length == "56" && contains(pd_pool, 48, network.parse().unwrap()),
        "{prefix} is not a /56 of 2001:db8:200::/48"
    );

    // Four Relay-forwards (Solicit and Request, twice), each steered to AF_XDP.
    lab.assert_steered(datapath, 4);
    lab.stop_daemon();
    lab.stop("dhcrelay", "-TERM");

    let rows = journal_leases(&journal);
    let find = |kind: &str, lease: &str| {
        rows.iter()
            .find(|row| row["kind"] == kind && row["lease"] == lease && row["state"] == "bound")
    };
    let na_row = find("na", &address).unwrap_or_else(|| panic!("{address} not in {rows:#?}"));
    let pd_row = find("pd", &prefix).unwrap_or_else(|| panic!("{prefix} not in {rows:#?}"));
    // Link "relayed" (the second): the relay's link-address chose it, not the arrival
    // interface. The journal records links by name.
    assert_eq!(na_row["link"], "relayed", "{na_row:#?}");
    assert_eq!(pd_row["link"], "relayed", "{pd_row:#?}");
    eprintln!(
        "{datapath:?}: relayed {address} and {prefix} in {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// 2. perfdhcp at 2,000 exchanges/s

#[test]
#[ignore = "needs root, network namespaces and ISC/Kea tools; run by cargo xtask test"]
fn perfdhcp_2000_per_second_over_udp() {
    perfdhcp_rate(Datapath::Udp);
}

#[test]
#[ignore = "needs root, network namespaces and ISC/Kea tools; run by cargo xtask test"]
fn perfdhcp_2000_per_second_over_xdp() {
    perfdhcp_rate(Datapath::XdpNative);
}

/// A server and a client namespace joined by one veth pair. Its checksums are finished in
/// software (offload off), as from a physical NIC; the relayed tests keep veth's offload on,
/// so the AF_XDP datapath is tried with both kinds of frame.
fn direct_lab(tag: &str) -> Lab {
    let lab = common::lab(tag, &["srv", "cli"]);
    lab.veth_with_finished_checksums(("srv", SERVER_IF), ("cli", CLIENT_IF));
    lab
}

/// The exchange rate, the test length and the client count perfdhcp runs with. The client
/// count is large so that random picks rarely repeat a client: `-u` counts a second lease
/// for the same client (the same address again) as non-unique.
const RATE: u32 = 2000;
const PERIOD_S: u64 = 10;
const CLIENTS: u64 = 100_000_000;

fn perfdhcp_rate(datapath: Datapath) {
    let started = Instant::now();
    let mut lab = direct_lab("perfdhcp");
    let journal = lab.path("leases.journal");
    let options = DaemonOptions {
        datapath,
        journal: &journal,
        durability: "always",
        log: "daemon",
    };
    lab.start_daemon("srv", &config("perfdhcp"), &options);

    let overflows_before = client_receive_overflows(&lab);
    lab.start_perfdhcp("cli", &perfdhcp(RATE, PERIOD_S, true));
    let (status, report) = lab.wait("perfdhcp", Duration::from_secs(PERIOD_S + 15));
    let overflows = client_receive_overflows(&lab) - overflows_before;
    let metrics = lab.metrics();
    let stats = Report::parse(&report);
    let exchanges = stats
        .exchanges
        .get("REQUEST-REPLY")
        .and_then(|c| c.get("sent packets"));
    lab.assert_steered(datapath, 2 * exchanges.copied().unwrap_or(1));
    eprintln!(
        "{datapath:?}: perfdhcp {status} in {:?}: {stats:?}\nclient socket overflows: {overflows}\nserver: dropped={} bad_frames={} send_failures={} leases={}",
        started.elapsed(),
        metric_sum(&metrics, "xdhcp6_dropped_total"),
        metric_sum(&metrics, "xdhcp6_bad_frames_total"),
        metric_sum(&metrics, "xdhcp6_send_failures_total"),
        metric_sum(&metrics, "xdhcp6_leases"),
    );
    let context = format!(
        "perfdhcp exited with {status}:\n{report}\nclient socket overflows: {overflows}\n\
         server metrics:\n{metrics}"
    );
    assert!(
        !stats.exchanges.is_empty(),
        "no statistics from perfdhcp:\n{context}"
    );
    let mut missing = 0;
    for (exchange, request, reply) in [
        ("SOLICIT-ADVERTISE", "solicit", "advertise"),
        ("REQUEST-REPLY", "request", "reply"),
    ] {
        let sent = stats.value(exchange, "sent packets");
        assert!(sent > 0, "no {exchange} sent:\n{context}");
        // The server received every request perfdhcp sent, and answered each.
        let count = |kind: &str, name: &str| {
            metric_sum(
                &metrics,
                &format!("xdhcp6_messages_{kind}_total{{type=\"{name}\"}}"),
            )
        };
        assert_eq!(count("received", request), sent, "{exchange}\n{context}");
        assert_eq!(count("sent", reply), sent, "{exchange}\n{context}");
        let lost = sent - stats.value(exchange, "received packets");
        assert_eq!(
            stats.value(exchange, "drops"),
            lost,
            "{exchange}\n{context}"
        );
        missing += lost;
        assert_eq!(stats.value(exchange, "rejected leases"), 0, "{context}");
        assert_eq!(
            stats.value(exchange, "non unique addresses"),
            0,
            "{context}"
        );
    }
    // perfdhcp reads every reply through one socket. The replies held through a slow sync
    // leave together, and such a burst can overflow its receive buffer: those left the server
    // and the client's kernel counted them. Any other reply missing fails.
    assert!(
        missing <= overflows,
        "{missing} replies never reached perfdhcp, {overflows} counted as its socket's \
         overflows:\n{context}"
    );
    // 10 s at 2,000/s, with some slack for perfdhcp's ramp-up and its own pacing.
    let requests = stats.value("REQUEST-REPLY", "sent packets");
    assert!(
        requests >= PERIOD_S * 2000 * 9 / 10,
        "only {requests} exchanges in {PERIOD_S} s:\n{context}"
    );
    // perfdhcp exits 3 when it counted drops.
    assert!(
        status.success() || (missing > 0 && status.code() == Some(3)),
        "{context}"
    );
    lab.stop_daemon();
}

/// Datagrams the client namespace's kernel dropped because a UDP socket's receive buffer was
/// full (`Udp6RcvbufErrors` in its `snmp6`, read from a thread in it): perfdhcp's, the only one there.
fn client_receive_overflows(lab: &common::Lab) -> u64 {
    lab.netns("cli")
        .run(|| {
            let text = std::fs::read_to_string("/proc/thread-self/net/snmp6")
                .expect("/proc/thread-self/net/snmp6");
            text.lines()
                .find_map(|line| line.strip_prefix("Udp6RcvbufErrors"))
                .and_then(|value| value.trim().parse().ok())
                .expect("Udp6RcvbufErrors in /proc/thread-self/net/snmp6")
        })
        .expect("running in the client namespace")
}

/// `perfdhcp -6` on the client interface; `-u` checks that no address is handed out twice.
fn perfdhcp(rate: u32, period: u64, unique: bool) -> Perfdhcp<'static> {
    Perfdhcp {
        interface: CLIENT_IF,
        rate,
        period,
        clients: CLIENTS,
        unique,
    }
}

// ---------------------------------------------------------------------------------------
// 3. SIGKILL under load with --durability always

#[test]
#[ignore = "needs root, network namespaces and ISC/Kea tools; run by cargo xtask test"]
fn kill_9_under_load_keeps_every_reply_over_udp() {
    kill_under_load(Datapath::Udp, &[]);
}

#[test]
#[ignore = "needs root, network namespaces and ISC/Kea tools; run by cargo xtask test"]
fn kill_9_under_load_keeps_every_reply_over_xdp() {
    kill_under_load(Datapath::XdpNative, &[]);
}

/// The same with the journal kept 1 MiB longer than its records (`--journal-prealloc`): the
/// kill leaves zeros after the last record, where the replay must end, and the restarted
/// server goes on writing over them.
#[test]
#[ignore = "needs root, network namespaces and ISC/Kea tools; run by cargo xtask test"]
fn kill_9_under_load_with_a_zero_tail_keeps_every_reply_over_xdp() {
    kill_under_load(Datapath::XdpNative, &["--journal-prealloc", "1"]);
}

fn kill_under_load(datapath: Datapath, extra: &[&str]) {
    let started = Instant::now();
    let mut lab = direct_lab("kill9");
    let journal = lab.path("leases.journal");
    let options = DaemonOptions {
        datapath,
        journal: &journal,
        durability: "always",
        log: "daemon",
    };
    lab.start_daemon_with("srv", &config("kill9"), &options, extra);

    // Every Reply that reached the client side, captured before perfdhcp starts.
    let capture = lab.start_capture_of("cli", CLIENT_IF, "tcpdump", capture::TO_CLIENTS);
    lab.start_perfdhcp("cli", &perfdhcp(1000, 6, false));
    thread::sleep(Duration::from_secs(3));
    lab.assert_steered(datapath, 1000);
    lab.kill_daemon();
    let killed_log = lab.daemon_log();
    let (_, report) = lab.stop("perfdhcp", "-INT");
    // Let the last frames reach the capture before stopping it.
    thread::sleep(Duration::from_millis(200));
    let (_, tcpdump_log) = lab.stop("tcpdump", "-INT");

    let replied: BTreeSet<String> = captured_messages(&capture)
        .into_iter()
        .filter(|message| message.msg_type == 7)
        .flat_map(|message| message.addresses)
        .map(|(address, _, _)| address.to_string())
        .collect();
    let context =
        format!("perfdhcp:\n{report}\ntcpdump:\n{tcpdump_log}\ndaemon log:\n{killed_log}");
    assert!(
        replied.len() > 100,
        "only {} addresses in Replies:\n{context}",
        replied.len()
    );

    let file_len = std::fs::metadata(&journal).map_or(0, |meta| meta.len());
    if !extra.is_empty() {
        // The tail is there: the records of a few thousand exchanges are far from 1 MiB.
        assert!(
            file_len >= 1 << 20,
            "a journal of {file_len} bytes has no 1 MiB zero tail\n{killed_log}"
        );
    }
    let rows = journal_leases(&journal);
    let journaled: BTreeSet<String> = rows
        .iter()
        // Bound, not just offered: the Advertise's offer is journaled well before the Reply.
        .filter(|row| row["kind"] == "na" && row["state"] == "bound")
        .filter_map(|row| row["lease"].as_str().map(str::to_owned))
        .collect();
    let missing: Vec<&String> = replied.difference(&journaled).collect();
    assert!(
        missing.is_empty(),
        "{} of {} addresses the clients got in a Reply are not bound in the journal \
         ({} bound leases there), e.g. {:?}\n{context}",
        missing.len(),
        replied.len(),
        journaled.len(),
        &missing[..missing.len().min(5)]
    );

    // A restart on the same journal loads them all.
    let options = DaemonOptions {
        log: "daemon-restarted",
        ..options
    };
    lab.start_daemon_with("srv", &config("kill9"), &options, extra);
    let log = lab.daemon_log();
    let loaded = format!("leases={0} loaded={0} conflicts=0", rows.len());
    assert!(log.contains(&loaded), "expected {loaded:?}:\n{log}");
    lab.stop_daemon();
    eprintln!(
        "{datapath:?}: {} addresses replied, {} leases journaled, in {:?}",
        replied.len(),
        rows.len(),
        started.elapsed()
    );
}
