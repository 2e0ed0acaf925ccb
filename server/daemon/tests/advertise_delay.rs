//! The Advertise delay of a standby server, end to end on both datapaths.
//!
//! Two `xdhcp6d` of an RFC 6853 split pair (`examples/split-a.toml`, Preference 255, and
//! `split-b.toml`, Preference 0) on one link, and a client that takes the *first* Advertise it
//! hears and ignores Preference, as some widely deployed clients do. It sends one Solicit per
//! simulated client (its own DUID and transaction id) to ff02::1:2 and records which server's
//! Advertise came first.
//!
//! ```text
//!  server a (primary) ─┐
//!                      ├─ switch (bridge) ─ first-Advertise client
//!  server b (standby) ─┘
//! ```
//!
//! - Without a delay both servers answer at once and the standby's Advertise comes first for
//!   some of the clients: such a client binds to whichever server the race favours.
//! - With `advertise-delay-ms` on the standby, the primary's Advertise comes first for (nearly)
//!   every client; the standby's still arrives, later, and is counted in
//!   `xdhcp6_advertise_delayed_total`.
//! - A Reply is never delayed: a Request to the standby, sent right after a Solicit whose
//!   Advertise the standby holds, is answered before that Advertise leaves.
//!
//! Each test needs root and network namespaces; the XDP ones the eBPF object
//! (`XDHCP6_EBPF_OBJECT`). `cargo xtask test` runs them with `--include-ignored
//! --test-threads=1`.

mod common;

use std::net::{SocketAddrV6, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{DaemonOptions, Datapath, Lab, metric_sum};
use xdhcp6_engine::Destination;
use xdhcp6_engine::proto::MessageType;
use xdhcp6_engine::testing::{Client, ReplyView};

const SERVER_IF: &str = "adls";
const CLIENT_IF: &str = "adlc";
const BRIDGE: &str = "adlbr";

/// Simulated clients per run.
const CLIENTS: u64 = 200;

/// The standby's delay in the delayed runs.
const DELAY_MS: u16 = 50;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// An example's configuration on the lab's untagged server interface, with `extra` lines
/// added to `[server]`.
fn config(file: &str, extra: &str) -> String {
    let text = std::fs::read_to_string(examples().join(file)).unwrap();
    text.lines()
        .map(|line| {
            if line.starts_with("interfaces = ") {
                format!("interfaces = [\"{SERVER_IF}\"]")
            } else if line == "[server]" {
                format!("[server]\n{extra}")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The pair on one bridge with the client; `delay` on the standby (b).
fn pair(tag: &str, datapath: Datapath, delay: u16) -> Lab {
    let mut lab = common::lab(tag, &["sw", "cli", "sa", "sb"]);
    lab.bridge("sw", BRIDGE);
    for (role, port) in [("sa", "pa"), ("sb", "pb"), ("cli", "pcli")] {
        let interface = if role == "cli" { CLIENT_IF } else { SERVER_IF };
        lab.veth((role, interface), ("sw", port));
        lab.attach("sw", port, BRIDGE);
    }
    for (name, role, file, extra) in [
        ("a", "sa", "split-a.toml", String::new()),
        (
            "b",
            "sb",
            "split-b.toml",
            format!("advertise-delay-ms = {delay}"),
        ),
    ] {
        let journal = lab.path(&format!("{name}.journal"));
        let options = DaemonOptions {
            datapath,
            journal: &journal,
            durability: "always",
            log: name,
        };
        lab.start_server(name, role, &config(file, &extra), &options);
    }
    lab
}

/// The Server Identifier DUIDs of a and b.
fn duids() -> [Vec<u8>; 2] {
    ["split-a.toml", "split-b.toml"].map(|file| {
        xdhcp6_engine::config::Config::from_toml_str(&config(file, ""), file)
            .unwrap()
            .server
            .duid
    })
}

/// How many of `CLIENTS` clients heard a (primary) first and how many b (standby) first.
fn first_advertise(lab: &Lab, seed: u64) -> (u64, u64) {
    let [a, b] = duids();
    lab.netns("cli")
        .run(move || {
            let index = xdhcp6_datapath::interface_index(CLIENT_IF).unwrap();
            let socket = UdpSocket::bind("[::]:546").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let servers = SocketAddrV6::new("ff02::1:2".parse().unwrap(), 547, 0, index);
            let (mut from_a, mut from_b) = (0, 0);
            let mut buf = [0u8; 1500];
            for n in 0..CLIENTS {
                let mut client = Client::new(seed + n);
                client.xid = (seed + n) as u32 & 0x00ff_ffff;
                socket
                    .send_to(&client.solicit().ia_na(1, &[]).encode(), servers)
                    .unwrap();
                // The first Advertise for this transaction; late ones for earlier clients
                // are skipped.
                let deadline = Instant::now() + Duration::from_secs(3);
                while Instant::now() < deadline {
                    let Ok((len, _)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    let reply = ReplyView::parse(&buf[..len], Destination::Client);
                    if reply.msg_type != MessageType::Advertise || reply.xid != client.xid {
                        continue;
                    }
                    match reply.server_id {
                        Some(ref id) if *id == a => from_a += 1,
                        Some(ref id) if *id == b => from_b += 1,
                        ref other => panic!("an Advertise from an unknown server {other:?}"),
                    }
                    break;
                }
            }
            (from_a, from_b)
        })
        .unwrap()
}

fn without_delay_the_race_decides(tag: &str, datapath: Datapath) {
    let lab = pair(tag, datapath, 0);
    let (a, b) = first_advertise(&lab, 1_000);
    println!("{datapath:?}, no delay: primary first {a}, standby first {b} of {CLIENTS}");
    assert_eq!(a + b, CLIENTS, "every client hears an Advertise");
    assert!(
        b > 0,
        "without a delay the standby's Advertise should come first for some clients \
         (primary {a}, standby {b})"
    );
    lab.assert_server_steered("b", datapath, CLIENTS);
}

fn with_delay_the_primary_comes_first(tag: &str, datapath: Datapath) {
    let lab = pair(tag, datapath, DELAY_MS);
    let (a, b) = first_advertise(&lab, 2_000);
    println!("{datapath:?}, standby delay {DELAY_MS} ms: primary first {a}, standby first {b}");
    assert_eq!(a + b, CLIENTS, "every client hears an Advertise");
    assert!(
        a * 100 >= CLIENTS * 95,
        "with the standby's delay the primary should come first for at least 95% of the \
         clients (primary {a}, standby {b})"
    );
    // The standby answered every Solicit, held. The clients stop listening at the primary's
    // Advertise, so the standby may still be reading the last Solicits: give it a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut metrics = lab.assert_server_steered("b", datapath, CLIENTS);
    while metric_sum(&metrics, "xdhcp6_advertise_delayed_total") < CLIENTS
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
        metrics = lab.server_metrics("b");
    }
    let delayed = metric_sum(&metrics, "xdhcp6_advertise_delayed_total");
    assert_eq!(delayed, CLIENTS, "{metrics}");
    assert_eq!(
        metric_sum(&metrics, "xdhcp6_advertise_delay_overflow_total"),
        0
    );
    let primary = lab.server_metrics("a");
    assert_eq!(
        metric_sum(&primary, "xdhcp6_advertise_delayed_total"),
        0,
        "the primary (Preference 255) holds nothing"
    );
}

/// A Solicit to the standby (held 1 s), then at once a Request of another client to it: the
/// Reply arrives before the held Advertise.
fn reply_is_never_delayed(tag: &str, datapath: Datapath) {
    let lab = pair(tag, datapath, 1000);
    let [_, b] = duids();
    let order = lab
        .netns("cli")
        .run(move || {
            let index = xdhcp6_datapath::interface_index(CLIENT_IF).unwrap();
            let socket = UdpSocket::bind("[::]:546").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let servers = SocketAddrV6::new("ff02::1:2".parse().unwrap(), 547, 0, index);
            let mut soliciting = Client::new(3_001);
            soliciting.xid = 0x3001;
            let mut requesting = Client::new(3_002);
            requesting.xid = 0x3002;
            socket
                .send_to(&soliciting.solicit().ia_na(1, &[]).encode(), servers)
                .unwrap();
            // A Request naming the standby; its IA asks for nothing in particular, so the
            // standby answers from its own half (the primary ignores it: not its DUID).
            socket
                .send_to(&requesting.request(&b).ia_na(1, &[]).encode(), servers)
                .unwrap();
            let mut order = Vec::new();
            let mut buf = [0u8; 1500];
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && order.len() < 2 {
                let Ok((len, _)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let reply = ReplyView::parse(&buf[..len], Destination::Client);
                if reply.server_id.as_deref() != Some(&b[..]) {
                    continue;
                }
                order.push((reply.msg_type, reply.xid));
            }
            order
        })
        .unwrap();
    assert_eq!(
        order,
        [
            (MessageType::Reply, 0x3002),
            (MessageType::Advertise, 0x3001)
        ],
        "the standby's Reply should leave at once, its Advertise after the delay"
    );
}

#[test]
#[ignore = "needs root and network namespaces"]
fn without_delay_the_race_decides_over_udp() {
    without_delay_the_race_decides("adl-race-udp", Datapath::Udp);
}

#[test]
#[ignore = "needs root, network namespaces and the eBPF object"]
fn without_delay_the_race_decides_over_xdp() {
    without_delay_the_race_decides("adl-race-xdp", Datapath::XdpSkb);
}

#[test]
#[ignore = "needs root and network namespaces"]
fn with_delay_the_primary_comes_first_over_udp() {
    with_delay_the_primary_comes_first("adl-delay-udp", Datapath::Udp);
}

#[test]
#[ignore = "needs root, network namespaces and the eBPF object"]
fn with_delay_the_primary_comes_first_over_xdp() {
    with_delay_the_primary_comes_first("adl-delay-xdp", Datapath::XdpSkb);
}

#[test]
#[ignore = "needs root and network namespaces"]
fn reply_is_never_delayed_over_udp() {
    reply_is_never_delayed("adl-reply-udp", Datapath::Udp);
}

#[test]
#[ignore = "needs root, network namespaces and the eBPF object"]
fn reply_is_never_delayed_over_xdp() {
    reply_is_never_delayed("adl-reply-xdp", Datapath::XdpSkb);
}
