//! RFC 9915 §16 on the wire: a client message sent to one of the server's unicast addresses
//! (link-local or global) is dropped and counted, the same message sent to ff02::1:2 is
//! answered, on both datapaths (the XDP program steers every UDP 547 frame to AF_XDP,
//! whatever its destination, so the AF_XDP worker judges the frame's IPv6 destination itself).
//!
//! Needs root and network namespaces; `cargo xtask test` runs it with `--include-ignored
//! --test-threads=1`. The AF_XDP case needs the XDP object (`XDHCP6_EBPF_OBJECT`).

mod common;

use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::time::{Duration, Instant};

use common::{DaemonOptions, Datapath, Lab, fixtures, metric_sum};
use xdhcp6_engine::Destination;
use xdhcp6_engine::proto::MessageType;
use xdhcp6_engine::testing::{Client, ReplyView};
use xdhcp6_lab::netns::if_index;

const SERVER_IF: &str = "xd6s";
const CLIENT_IF: &str = "xd6c";
const SERVER_ADDRESS: &str = "2001:db8:1::547";
const CLIENT_ADDRESS: &str = "2001:db8:1::9";

#[test]
#[ignore = "needs root and network namespaces; run by cargo xtask test"]
fn unicast_solicit_is_dropped_multicast_answered_over_udp() {
    unicast_solicit_is_dropped(Datapath::Udp);
}

#[test]
#[ignore = "needs root, network namespaces and the XDP object; run by cargo xtask test"]
fn unicast_solicit_is_dropped_multicast_answered_over_xdp() {
    unicast_solicit_is_dropped(Datapath::XdpNative);
}

fn unicast_solicit_is_dropped(datapath: Datapath) {
    let mut lab = common::lab("arrival", &["srv", "cli"]);
    lab.veth(("srv", SERVER_IF), ("cli", CLIENT_IF));
    lab.address("srv", SERVER_IF, &format!("{SERVER_ADDRESS}/64"));
    lab.address("cli", CLIENT_IF, &format!("{CLIENT_ADDRESS}/64"));
    let server_link_local = link_local(&lab, "srv", SERVER_IF);
    let config = fixtures::render(
        fixtures::TWO_LINKS,
        &[("SERVER_IF", SERVER_IF), ("SALT", "arrival")],
    )
    .expect("the two-links fixture");
    let journal = lab.path("leases.journal");
    let options = DaemonOptions {
        datapath,
        journal: &journal,
        durability: "always",
        log: "daemon",
    };
    lab.start_daemon("srv", &config, &options);

    let replies = lab
        .netns("cli")
        .run(move || {
            let scope = if_index(CLIENT_IF).expect("the client interface");
            let socket = UdpSocket::bind("[::]:546").expect("bind [::]:546");
            socket
                .set_read_timeout(Some(Duration::from_millis(100)))
                .expect("read timeout");
            let send = |xid: u32, to: Ipv6Addr| {
                let solicit = Client::new(u64::from(xid)).solicit().xid(xid).ia_na(1, &[]);
                socket
                    .send_to(&solicit.encode(), SocketAddrV6::new(to, 547, 0, scope))
                    .expect("send a Solicit");
            };
            // Unicast first, so that the multicast Advertise comes after any (wrong) answer.
            send(1, server_link_local);
            send(2, SERVER_ADDRESS.parse().unwrap());
            send(3, "ff02::1:2".parse().unwrap());
            let mut replies = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut settle: Option<Instant> = None;
            let mut buf = [0; 1500];
            while Instant::now() < deadline && settle.is_none_or(|end| Instant::now() < end) {
                if let Ok((len, _)) = socket.recv_from(&mut buf) {
                    let reply = ReplyView::parse(&buf[..len], Destination::Client);
                    if reply.xid == 3 {
                        // Wait a little longer for anything sent after it.
                        settle = Some(Instant::now() + Duration::from_millis(300));
                    }
                    replies.push((reply.xid, reply.msg_type));
                }
            }
            replies
        })
        .expect("enter the client namespace");

    let context = || format!("replies: {replies:?}\n{}", lab.daemon_log());
    assert_eq!(replies, [(3, MessageType::Advertise)], "{}", context());
    let deadline = Instant::now() + Duration::from_secs(3);
    let metrics = loop {
        let metrics = lab.assert_steered(datapath, 3);
        if metric_sum(&metrics, "xdhcp6_dropped_total{reason=\"unicast\"}") >= 2
            || Instant::now() > deadline
        {
            break metrics;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        metric_sum(&metrics, "xdhcp6_dropped_total{reason=\"unicast\"}"),
        2,
        "{metrics}"
    );
    assert_eq!(
        metric_sum(&metrics, "xdhcp6_messages_sent_total{type=\"advertise\"}"),
        1,
        "{metrics}"
    );
    lab.stop_daemon();
}

/// The link-local address of an interface of a role.
fn link_local(lab: &Lab, role: &str, interface: &str) -> Ipv6Addr {
    let output = lab.exec(
        role,
        &[
            "ip", "-6", "-o", "addr", "show", "dev", interface, "scope", "link",
        ],
    );
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .find_map(|word| word.split('/').next()?.parse::<Ipv6Addr>().ok())
        .filter(Ipv6Addr::is_unicast_link_local)
        .unwrap_or_else(|| panic!("no link-local address on {interface}:\n{text}"))
}
