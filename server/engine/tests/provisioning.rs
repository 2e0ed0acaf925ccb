//! Provisioning for cable and BNG networks: reservations selected by what a relay says about
//! the client (Remote-ID, Subscriber-ID, Interface-Id, the cable modem MAC a CMTS relays),
//! the precedence of the keys, per-reservation options, the Reconfigure Accept option and
//! the Advertise delay the engine reports for standby links.

use xdhcp6_engine::proto::{MessageType, OptionCode};
use xdhcp6_engine::testing::{Client, Relay, ReplyView, Server, ip};
use xdhcp6_engine::{Destination, Outcome};

/// Two links behind relays: `bng-1` (relay link-address in 2001:db8:ffff:1::/64, Interface-Id
/// values shared with `bng-2`) and `bng-2` (2001:db8:ffff:2::/64).
const BASE: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:01"
salt = "provisioning"

[options]
dns-servers = ["2001:db8:53::1"]

[[link]]
name = "bng-1"
relay-prefixes = ["2001:db8:ffff:1::/64"]

[[link.pool]]
prefix = "2001:db8:1::/64"

[[link.pd-pool]]
prefix = "2001:db8:100::/40"
delegated-length = 56

[[link]]
name = "bng-2"
relay-prefixes = ["2001:db8:ffff:2::/64"]

[[link.pool]]
prefix = "2001:db8:2::/64"
"#;

fn server(extra: &str) -> Server {
    Server::new(&format!("{BASE}{extra}"))
}

/// A relay on link `bng-N`.
fn relay(link: u8) -> Relay {
    Relay::new(ip(&format!("2001:db8:ffff:{link}::1")))
}

/// An RFC 4649 Remote-ID body: enterprise number, then the remote-id.
fn remote_id(enterprise: u32, id: &[u8]) -> Vec<u8> {
    let mut body = enterprise.to_be_bytes().to_vec();
    body.extend_from_slice(id);
    body
}

/// The CableLabs vendor option a CMTS adds to a Relay-forward: CMTS capabilities (1025), then
/// the cable modem MAC address (1026).
fn cmts_vendor_option(cm_mac: &[u8]) -> Vec<u8> {
    let mut body = 4491u32.to_be_bytes().to_vec();
    body.extend_from_slice(&1025u16.to_be_bytes());
    body.extend_from_slice(&4u16.to_be_bytes());
    body.extend_from_slice(&[0, 1, 0, 2]);
    body.extend_from_slice(&1026u16.to_be_bytes());
    body.extend_from_slice(&(cm_mac.len() as u16).to_be_bytes());
    body.extend_from_slice(cm_mac);
    body
}

/// The address offered to `client` in an Advertise.
fn offered(s: &mut Server, client: &Client) -> std::net::Ipv6Addr {
    let advertise = s.send(&client.solicit().ia_na(1, &[]));
    assert_eq!(advertise.msg_type, MessageType::Advertise);
    advertise.ia_na(1).address()
}

fn bound(s: &mut Server, client: &Client) -> std::net::Ipv6Addr {
    s.bind_address(client, 1)
}

#[test]
fn reservation_by_remote_id_rfc4649() {
    let mut s = server(
        r#"
[[reservation]]
remote-id = "00000de96c696e652d3432"
address = "2001:db8:1::42"
"#,
    );
    let line = remote_id(3561, b"line-42");
    let client = Client::new(1).via(relay(1).option(37, &line));
    assert_eq!(bound(&mut s, &client), ip("2001:db8:1::42"));

    // Another line, or the same remote-id under another enterprise number, is not reserved.
    let other = Client::new(2).via(relay(1).option(37, &remote_id(3561, b"line-43")));
    assert_ne!(offered(&mut s, &other), ip("2001:db8:1::42"));
    let other = Client::new(3).via(relay(1).option(37, &remote_id(9, b"line-42")));
    assert_ne!(offered(&mut s, &other), ip("2001:db8:1::42"));
}

#[test]
fn reservation_by_subscriber_id_text_and_hex_rfc4580() {
    let mut s = server(
        r#"
[[reservation]]
subscriber-id = "subscriber-0001"
address = "2001:db8:1::1:1"

[[reservation]]
subscriber-id = { hex = "00ff10" }
prefix = "2001:db8:100:ab00::/56"
"#,
    );
    let text = Client::new(1).via(relay(1).option(38, b"subscriber-0001"));
    assert_eq!(bound(&mut s, &text), ip("2001:db8:1::1:1"));
    let hex = Client::new(2).via(relay(1).option(38, &[0x00, 0xff, 0x10]));
    assert_eq!(
        s.bind_prefix(&hex, 7),
        (ip("2001:db8:100:ab00::"), 56),
        "the Subscriber-ID given as hex selects the prefix reservation"
    );
}

#[test]
fn reservation_by_interface_id_applies_on_its_link_only() {
    let mut s = server(
        r#"
[[reservation]]
interface-id = "port-7"
link = "bng-2"
address = "2001:db8:2::7"
"#,
    );
    // The same Interface-Id on bng-1 (another relay numbering its ports alike) is not it.
    let elsewhere = Client::new(1).via(relay(1).interface_id(b"port-7"));
    assert_ne!(offered(&mut s, &elsewhere), ip("2001:db8:2::7"));
    let client = Client::new(2).via(relay(2).interface_id(b"port-7"));
    assert_eq!(bound(&mut s, &client), ip("2001:db8:2::7"));
}

#[test]
fn reservation_by_cable_modem_mac_from_the_cmts_vendor_option() {
    let mut s = server(
        r#"
[[reservation]]
cm-mac = "00:11:22:aa:bb:cc"
prefix = "2001:db8:100:cc00::/56"
"#,
    );
    // The eRouter behind the modem: its own DUID, the CMTS names the modem.
    let erouter = Client::new(1).via(relay(1).option(
        17,
        &cmts_vendor_option(&[0x00, 0x11, 0x22, 0xaa, 0xbb, 0xcc]),
    ));
    assert_eq!(s.bind_prefix(&erouter, 1), (ip("2001:db8:100:cc00::"), 56));
    // Behind another modem: a prefix from the pool.
    let other = Client::new(2).via(relay(1).option(
        17,
        &cmts_vendor_option(&[0x00, 0x11, 0x22, 0xaa, 0xbb, 0xcd]),
    ));
    assert_ne!(s.bind_prefix(&other, 1), (ip("2001:db8:100:cc00::"), 56));
}

#[test]
fn reservation_by_cable_modem_mac_ignores_other_enterprises() {
    let mut s = server(
        r#"
[[reservation]]
cm-mac = "001122aabbcc"
address = "2001:db8:1::cc"
"#,
    );
    let mut body = cmts_vendor_option(&[0x00, 0x11, 0x22, 0xaa, 0xbb, 0xcc]);
    body[..4].copy_from_slice(&9999u32.to_be_bytes());
    let client = Client::new(1).via(relay(1).option(17, &body));
    assert_ne!(offered(&mut s, &client), ip("2001:db8:1::cc"));
}

#[test]
fn reservation_by_option_79_hw_address_from_the_relay_rfc6939() {
    let mut s = server(
        r#"
[[reservation]]
hw-address = "00:11:22:aa:bb:cc"
address = "2001:db8:1::79"
"#,
    );
    let client = Client::new(1).via(relay(1).link_layer(1, &[0x00, 0x11, 0x22, 0xaa, 0xbb, 0xcc]));
    assert_eq!(bound(&mut s, &client), ip("2001:db8:1::79"));
}

/// One reservation per key, each matching the one client: the highest key in the order
/// duid, hw-address, cm-mac, subscriber-id, remote-id, interface-id wins.
#[test]
fn precedence_duid_hw_address_cm_mac_subscriber_id_remote_id_interface_id() {
    const KEYS: [(&str, &str); 6] = [
        ("duid", r#"duid = "000300010000000000aa""#),
        ("hw-address", r#"hw-address = "0000000000bb""#),
        ("cm-mac", r#"cm-mac = "0000000000cc""#),
        ("subscriber-id", r#"subscriber-id = "sub-1""#),
        ("remote-id", r#"remote-id = "00000de972656d6f7465""#),
        (
            "interface-id",
            "interface-id = \"port-1\"\nlink = \"bng-1\"",
        ),
    ];
    let client = Client::with_duid(&[0, 3, 0, 1, 0, 0, 0, 0, 0, 0xaa]).via(
        relay(1)
            .link_layer(1, &[0, 0, 0, 0, 0, 0xbb])
            .option(17, &cmts_vendor_option(&[0, 0, 0, 0, 0, 0xcc]))
            .option(38, b"sub-1")
            .option(37, &remote_id(3561, b"remote"))
            .interface_id(b"port-1"),
    );
    // With the keys from index `first` on configured, the one at `first` wins.
    for first in 0..KEYS.len() {
        let reservations: String = KEYS[first..]
            .iter()
            .enumerate()
            .map(|(i, (_, key))| {
                format!(
                    "[[reservation]]\n{key}\naddress = \"2001:db8:1::{:x}\"\n",
                    first + i + 1
                )
            })
            .collect();
        let mut s = server(&reservations);
        assert_eq!(
            offered(&mut s, &client),
            ip(&format!("2001:db8:1::{:x}", first + 1)),
            "{} should win over the keys after it",
            KEYS[first].0
        );
    }
}

#[test]
fn a_reservation_for_another_link_gives_way_to_the_next_key() {
    let mut s = server(
        r#"
[[reservation]]
duid = "000300010000000000aa"
link = "bng-2"
address = "2001:db8:2::aa"

[[reservation]]
remote-id = "00000de972656d6f7465"
address = "2001:db8:1::ee"
"#,
    );
    let client = Client::with_duid(&[0, 3, 0, 1, 0, 0, 0, 0, 0, 0xaa])
        .via(relay(1).option(37, &remote_id(3561, b"remote")));
    assert_eq!(offered(&mut s, &client), ip("2001:db8:1::ee"));
}

/// The DNS servers (option 23) of a reply.
fn dns(reply: &ReplyView) -> Vec<std::net::Ipv6Addr> {
    reply.dns_servers()
}

#[test]
fn reservation_options_replace_the_links_of_the_same_code() {
    let mut s = server(
        r#"
[[reservation]]
remote-id = "00000de972656d6f7465"
address = "2001:db8:1::ee"

[reservation.options]
dns-servers = ["2001:db8:53::99"]
domain-search = ["subscriber.example"]
always-send = ["domain-search"]
"#,
    );
    let reserved = Client::new(1).via(relay(1).option(37, &remote_id(3561, b"remote")));
    let (advertise, reply) = s.bind_na(&reserved, 1);
    for message in [&advertise, &reply] {
        assert!(message.options.is_empty() || !message.has(OptionCode::DnsServers));
    }
    // Asked for: the reservation's DNS server, not the link's, exactly once.
    let info = s.send(
        &reserved
            .renew(&s.duid())
            .ia_na(1, &[ip("2001:db8:1::ee")])
            .oro(&[OptionCode::DnsServers]),
    );
    assert_eq!(dns(&info), [ip("2001:db8:53::99")]);
    assert_eq!(info.codes().iter().filter(|code| **code == 23).count(), 1);
    // The reservation's always-send option goes out unasked.
    assert!(info.has(OptionCode::DomainList));

    // Another client on the link gets the link's options.
    let other = Client::new(2).via(relay(1));
    let advertise = s.send(&other.solicit().ia_na(1, &[]).oro(&[OptionCode::DnsServers]));
    assert_eq!(dns(&advertise), [ip("2001:db8:53::1")]);
    assert!(!advertise.has(OptionCode::DomainList));
}

#[test]
fn options_only_reservation_applies_to_information_request() {
    let mut s = server(
        r#"
[[reservation]]
subscriber-id = "business-7"

[reservation.options]
dns-servers = ["2001:db8:53::7"]
"#,
    );
    let client = Client::new(1).via(relay(1).option(38, b"business-7"));
    let reply = s.send(&client.information_request().oro(&[OptionCode::DnsServers]));
    assert_eq!(reply.msg_type, MessageType::Reply);
    assert_eq!(dns(&reply), [ip("2001:db8:53::7")]);
    // Its address comes from the pool.
    let address = bound(&mut s, &client);
    assert!(
        address.segments()[..4] == [0x2001, 0xdb8, 1, 0],
        "{address}"
    );
}

// ---- Reconfigure Accept (RFC 9915 §21.20) ----

fn has_reconfigure_accept(reply: &ReplyView) -> bool {
    reply
        .options
        .iter()
        .any(|(code, body)| *code == u16::from(OptionCode::ReconfAccept) && body.is_empty())
}

#[test]
fn reconfigure_accept_only_when_configured_rfc9915_21_20() {
    let mut s = server("");
    let client = Client::new(1).via(relay(1));
    let (advertise, reply) = s.bind_na(&client, 1);
    assert!(!has_reconfigure_accept(&advertise));
    assert!(!has_reconfigure_accept(&reply));

    let mut s = Server::new(&BASE.replace(
        "salt = \"provisioning\"",
        "salt = \"provisioning\"\nreconfigure-accept = true",
    ));
    let (advertise, reply) = s.bind_na(&client, 1);
    assert!(has_reconfigure_accept(&advertise));
    assert!(has_reconfigure_accept(&reply));
    let renew = s.send(
        &client
            .renew(&s.duid())
            .ia_na(1, &[reply.ia_na(1).address()]),
    );
    assert!(has_reconfigure_accept(&renew));
    let info = s.send(&client.information_request());
    assert!(has_reconfigure_accept(&info));
    // A Release's Reply configures nothing.
    let release = s.send(
        &client
            .release(&s.duid())
            .ia_na(1, &[reply.ia_na(1).address()]),
    );
    assert!(!has_reconfigure_accept(&release));
}

#[test]
fn reconfigure_accept_per_link_overrides_the_server() {
    let text = BASE
        .replace(
            "salt = \"provisioning\"",
            "salt = \"provisioning\"\nreconfigure-accept = true",
        )
        .replace(
            "name = \"bng-2\"",
            "name = \"bng-2\"\nreconfigure-accept = false",
        );
    let mut s = Server::new(&text);
    let on_1 = s.send(&Client::new(1).via(relay(1)).solicit().ia_na(1, &[]));
    let on_2 = s.send(&Client::new(2).via(relay(2)).solicit().ia_na(1, &[]));
    assert!(has_reconfigure_accept(&on_1));
    assert!(!has_reconfigure_accept(&on_2));
}

// ---- Advertise delay ----

/// The delay the engine asks for with its answer to `msg`.
fn delay_of(s: &mut Server, msg: &xdhcp6_engine::testing::Msg) -> u16 {
    match s.outcome(msg) {
        Outcome::Reply { delay_ms, to, .. } => {
            assert!(matches!(to, Destination::Relay { .. }));
            delay_ms
        }
        other => panic!("no reply: {other:?}"),
    }
}

#[test]
fn advertise_delay_only_for_advertise_on_a_standby_link() {
    let text = BASE
        .replace(
            "salt = \"provisioning\"",
            "salt = \"provisioning\"\nadvertise-delay-ms = 50",
        )
        .replace("name = \"bng-2\"", "name = \"bng-2\"\npreference = 255");
    let mut s = Server::new(&text);
    let standby = Client::new(1).via(relay(1));
    assert_eq!(delay_of(&mut s, &standby.solicit().ia_na(1, &[])), 50);
    // Replies are never delayed: Request, Renew, Information-request.
    let address = s.bind_address(&standby, 1);
    let duid = s.duid();
    assert_eq!(
        delay_of(&mut s, &standby.request(&duid).ia_na(1, &[address])),
        0
    );
    assert_eq!(
        delay_of(&mut s, &standby.renew(&duid).ia_na(1, &[address])),
        0
    );
    assert_eq!(delay_of(&mut s, &standby.information_request()), 0);
    // The primary (Preference 255) of bng-2 answers at once.
    let primary = Client::new(2).via(relay(2));
    assert_eq!(delay_of(&mut s, &primary.solicit().ia_na(1, &[])), 0);
}

#[test]
fn rapid_commit_reply_is_never_delayed() {
    let text = BASE
        .replace(
            "salt = \"provisioning\"",
            "salt = \"provisioning\"\nadvertise-delay-ms = 200",
        )
        .replace("name = \"bng-1\"", "name = \"bng-1\"\nrapid-commit = true");
    let mut s = Server::new(&text);
    let client = Client::new(1).via(relay(1));
    assert_eq!(
        delay_of(&mut s, &client.solicit().ia_na(1, &[]).rapid_commit()),
        0
    );
    assert_eq!(
        delay_of(
            &mut s,
            &Client::new(2).via(relay(1)).solicit().ia_na(1, &[])
        ),
        200
    );
}
