//! Reconfigure (RFC 9915 §18.3.11, §20.4) against a running server in network namespaces:
//! a client that sends Reconfigure Accept gets its reconfigure key in the Reply; `xdhcp6d ctl
//! reconfigure` then sends it a Reconfigure, directly to its address or back through ISC
//! dhcrelay; the client checks the HMAC-MD5 with the key it got, renews and gets a Reply. A
//! client that did not accept Reconfigure is refused with 409.
//!
//! ISC dhclient does not accept Reconfigure, so the client is the proto crate's message
//! layer on a UDP socket.

mod common;

use std::net::{Ipv6Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{DAEMON, DaemonOptions, Datapath, Lab, fixtures, metric_sum};
use xdhcp6_engine::proto::MessageType;
use xdhcp6_engine::testing::{Client, ReplyView};
use xdhcp6_engine::{Destination, verify_reconfigure};

/// Interfaces (names are per namespace): server — relay upstream, relay downstream — client
/// (the relayed link), and server — client (the server's own link).
const SERVER_UP_IF: &str = "rcs";
const RELAY_UP_IF: &str = "rcu";
const RELAY_DOWN_IF: &str = "rcd";
const RELAYED_IF: &str = "rcc";
const SERVER_IF: &str = "rcS";
const DIRECT_IF: &str = "rcC";

const SERVER_UP_ADDRESS: &str = "2001:db8:f::1";
const RELAY_UP_ADDRESS: &str = "2001:db8:f::2";
/// The relay's link-address, in the relayed link's pool.
const RELAY_DOWN_ADDRESS: &str = "2001:db8:2::1";
/// The server's address on its own link (pool 2001:db8:1::/64), the route to its clients.
const SERVER_ADDRESS: &str = "2001:db8:1::1";

const RECONF_ACCEPT: u16 = 20;
const AUTH: u16 = 11;
const RECONF_MSG: u16 = 19;

fn config() -> String {
    fixtures::render(
        fixtures::TWO_LINKS,
        &[("SERVER_IF", SERVER_IF), ("SALT", "reconfigure")],
    )
    .unwrap()
    .replacen(
        "[server]\n",
        &format!("[server]\nreconfigure-accept = true\nrelay-interfaces = [\"{SERVER_UP_IF}\"]\n"),
        1,
    )
}

fn option(view: &ReplyView, code: u16) -> Option<Vec<u8>> {
    view.options
        .iter()
        .find(|(own, _)| *own == code)
        .map(|(_, body)| body.clone())
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Sends `bytes` to All_DHCP_Relay_Agents_and_Servers on `interface` and waits for a reply
/// of `expect` with the client's transaction id.
fn ask(
    socket: &UdpSocket,
    index: u32,
    client: &Client,
    bytes: &[u8],
    expect: MessageType,
) -> Option<ReplyView> {
    common::ask_on(
        socket,
        index,
        client.xid,
        bytes,
        expect,
        3,
        Duration::from_millis(1500),
    )
}

/// What a client learnt from its binding.
struct Bound {
    address: Ipv6Addr,
    server: Vec<u8>,
    /// The reconfigure key of the Reply's Authentication option (type 1).
    key: Option<[u8; 16]>,
}

/// Client `n` solicits and requests an address on `interface` (with Reconfigure Accept when
/// `accept`).
fn bind(net: &Lab, interface: &str, n: u64, accept: bool) -> Bound {
    let interface = interface.to_owned();
    net.netns("cli")
        .run(move || {
            let index = xdhcp6_datapath::interface_index(&interface).unwrap();
            let socket = UdpSocket::bind("[::]:546").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let client = Client::new(n);
            let solicit = client.solicit().ia_na(1, &[]).encode();
            let advertise = ask(&socket, index, &client, &solicit, MessageType::Advertise)
                .expect("an Advertise");
            let server = advertise.server_id.clone().unwrap();
            let offered = advertise.ia_na[0].live_addrs();
            let mut request = client.request(&server).ia_na(1, &offered);
            if accept {
                request = request.option(RECONF_ACCEPT, &[]);
            }
            let reply = ask(
                &socket,
                index,
                &client,
                &request.encode(),
                MessageType::Reply,
            )
            .expect("a Reply");
            let key = option(&reply, AUTH).map(|auth| {
                // Protocol 3 (reconfigure key), algorithm 1 (HMAC-MD5), RDM 0, type 1.
                assert_eq!(auth.len(), 28, "{auth:?}");
                assert_eq!(&auth[..3], &[3, 1, 0]);
                assert_eq!(auth[11], 1);
                <[u8; 16]>::try_from(&auth[12..]).unwrap()
            });
            if accept {
                assert!(
                    option(&reply, RECONF_ACCEPT).is_some(),
                    "the server's Reply has no Reconfigure Accept"
                );
            }
            Bound {
                address: reply.ia_na[0].live_addrs()[0],
                server,
                key,
            }
        })
        .unwrap()
}

/// `xdhcp6d ctl reconfigure --duid D`: its exit status, stdout and stderr.
fn ctl_reconfigure(socket: &Path, duid: &[u8]) -> (bool, String, String) {
    let output = Command::new(DAEMON)
        .args(["ctl", "--socket"])
        .arg(socket)
        .args(["reconfigure", "--duid", &hex(duid), "--msg", "renew"])
        .output()
        .expect("xdhcp6d ctl runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// On `interface`, client `n` listens on port 546, has the server send it a Reconfigure,
/// checks it with `key` (and, with `late`, lets it be retransmitted once first), renews
/// `bound`'s address and returns the Renew's Reply.
fn reconfigured_and_renewed(
    net: &Lab,
    interface: &str,
    n: u64,
    bound: &Bound,
    control: PathBuf,
    late: bool,
) -> (String, ReplyView) {
    let interface = interface.to_owned();
    let (address, server, key) = (bound.address, bound.server.clone(), bound.key.unwrap());
    net.netns("cli")
        .run(move || {
            let index = xdhcp6_datapath::interface_index(&interface).unwrap();
            let socket = UdpSocket::bind("[::]:546").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut client = Client::new(n);
            let (sent, stdout, stderr) = ctl_reconfigure(&control, &client.duid);
            assert!(sent, "ctl reconfigure failed: {stderr}");
            let mut buf = [0u8; 1500];
            let (len, _) = socket.recv_from(&mut buf).expect("a Reconfigure");
            let message = &buf[..len];
            let view = ReplyView::parse(message, Destination::Client);
            assert_eq!(view.msg_type, MessageType::Reconfigure);
            assert_eq!(view.xid, 0);
            assert_eq!(view.client_id.as_deref(), Some(&client.duid[..]));
            assert_eq!(view.server_id.as_deref(), Some(&server[..]));
            assert_eq!(option(&view, RECONF_MSG), Some(vec![5]));
            // RFC 9915 §20.4.3: the client accepts it only if the HMAC-MD5 under its key
            // matches.
            assert!(
                verify_reconfigure(message, &key).is_some(),
                "the Reconfigure's HMAC does not verify with the key of the Reply"
            );
            let mut wrong = key;
            wrong[0] ^= 1;
            assert_eq!(verify_reconfigure(message, &wrong), None);
            if late {
                // No Renew yet: the server sends it again (RFC 9915 §18.3.11, REC_TIMEOUT),
                // as a new message with a greater replay detection value.
                let first = verify_reconfigure(message, &key).unwrap();
                let (len, _) = socket
                    .recv_from(&mut buf)
                    .expect("a retransmitted Reconfigure");
                let again = verify_reconfigure(&buf[..len], &key).expect("a valid HMAC");
                assert!(again > first, "replay value {again} after {first}");
            }
            // The Renew it asks for.
            client.xid = 0x00ab_cd00 | n as u32;
            let renew = client
                .renew(&server)
                .ia_na(1, &[address])
                .option(RECONF_ACCEPT, &[])
                .encode();
            let reply = ask(&socket, index, &client, &renew, MessageType::Reply)
                .expect("a Reply to the Renew");
            (stdout, reply)
        })
        .unwrap()
}

#[test]
#[ignore = "needs root, network namespaces and ISC dhcrelay; run by cargo xtask test"]
fn reconfigure_reaches_direct_and_relayed_clients_over_udp() {
    scenario(Datapath::Udp);
}

#[test]
#[ignore = "needs root, network namespaces, ISC dhcrelay and the eBPF object; run by cargo xtask test"]
fn reconfigure_reaches_direct_and_relayed_clients_over_xdp() {
    scenario(Datapath::XdpSkb);
}

/// The relay's Relay-forwards arrive on the server's uplink (`relay-interfaces`), where the
/// AF_XDP datapath reads them too: the relay agent's source comes from the frame there.
fn scenario(datapath: Datapath) {
    let mut net = common::lab("reconfigure", &["srv", "rly", "cli"]);
    net.veth(("srv", SERVER_UP_IF), ("rly", RELAY_UP_IF));
    net.veth(("rly", RELAY_DOWN_IF), ("cli", RELAYED_IF));
    net.veth(("srv", SERVER_IF), ("cli", DIRECT_IF));
    net.address("srv", SERVER_UP_IF, &format!("{SERVER_UP_ADDRESS}/64"));
    net.address("rly", RELAY_UP_IF, &format!("{RELAY_UP_ADDRESS}/64"));
    net.address("rly", RELAY_DOWN_IF, &format!("{RELAY_DOWN_ADDRESS}/64"));
    net.address("srv", SERVER_IF, &format!("{SERVER_ADDRESS}/64"));
    let journal = net.path("leases.journal");
    let options = DaemonOptions {
        datapath,
        journal: &journal,
        durability: "always",
        log: "daemon",
    };
    net.start_daemon("srv", &config(), &options);
    let upper = format!("{SERVER_UP_ADDRESS}%{RELAY_UP_IF}");
    net.start_dhcrelay("rly", RELAY_DOWN_IF, &[upper]);
    let control = net.daemon_control_socket();
    // The secret was made in the journal's folder, for the owner alone.
    let secret = journal.parent().unwrap().join("reconfigure.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&secret).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    // Direct: the client's address is where the Reconfigure goes.
    let direct = bind(&net, DIRECT_IF, 1, true);
    assert!(
        direct.key.is_some(),
        "no reconfigure key\n{}",
        net.daemon_log()
    );
    net.exec(
        "cli",
        &[
            "ip",
            "-6",
            "addr",
            "add",
            &format!("{}/128", direct.address),
            "dev",
            DIRECT_IF,
            "nodad",
        ],
    );
    let (said, reply) =
        reconfigured_and_renewed(&net, DIRECT_IF, 1, &direct, control.clone(), true);
    assert!(said.contains("directly"), "{said}");
    assert!(
        said.contains(&format!("[{}]:546", direct.address)),
        "{said}"
    );
    assert_eq!(reply.ia_na[0].live_addrs(), vec![direct.address]);

    // Relayed: back through dhcrelay, to the client's link-local address.
    let relayed = bind(&net, RELAYED_IF, 2, true);
    assert!(
        relayed.key.is_some(),
        "no reconfigure key\n{}",
        net.daemon_log()
    );
    let (said, reply) =
        reconfigured_and_renewed(&net, RELAYED_IF, 2, &relayed, control.clone(), false);
    assert!(said.contains("through its relays"), "{said}");
    assert!(
        said.contains(&format!("[{RELAY_UP_ADDRESS}]:547")),
        "{said}"
    );
    assert_eq!(reply.ia_na[0].live_addrs(), vec![relayed.address]);
    // Both keys are the clients' own.
    assert_ne!(direct.key, relayed.key);
    // The control API shows the relayed lease's relay data and its Reconfigure mark.
    let output = Command::new(DAEMON)
        .args(["ctl", "--json", "--socket"])
        .arg(&control)
        .args(["leases", "--address", &relayed.address.to_string()])
        .output()
        .expect("xdhcp6d ctl runs");
    let found: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let lease = &found["leases"][0];
    assert_eq!(lease["reconfigure"], true, "{found}");
    assert_eq!(lease["relay"]["source"], RELAY_UP_ADDRESS, "{found}");
    assert_eq!(
        lease["relay"]["hops"][0]["link_address"], RELAY_DOWN_ADDRESS,
        "{found}"
    );

    // A client without Reconfigure Accept gets no key, and is refused by name.
    let plain = bind(&net, DIRECT_IF, 3, false);
    assert_eq!(plain.key, None);
    let (sent, _, stderr) = ctl_reconfigure(&control, &Client::new(3).duid);
    assert!(!sent);
    assert!(stderr.contains("Reconfigure Accept"), "{stderr}");
    assert!(stderr.contains("HTTP 409"), "{stderr}");

    // Solicit, Request and Renew of the direct and the relayed client at least, through
    // AF_XDP with the XDP datapath.
    let metrics = net.assert_steered(datapath, 6);
    assert!(
        metric_sum(&metrics, "xdhcp6_reconfigure_sent_total{result=\"sent\"}") >= 3,
        "{metrics}"
    );
    assert_eq!(
        metric_sum(
            &metrics,
            "xdhcp6_reconfigure_sent_total{result=\"not_accepted\"}"
        ),
        1
    );
    net.stop_daemon();
    net.stop("dhcrelay", "-TERM");
}
