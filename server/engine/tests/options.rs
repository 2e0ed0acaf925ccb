//! Conversation tests for the options of a reply that no IA carries: options sent without
//! being asked (`always-send`), vendor options asked for inside the client's own vendor
//! option (CableLabs), and options supplied by relays (RFC 6422). Test names end in the
//! section they check.

use xdhcp6_engine::DropReason;
use xdhcp6_engine::proto::{MessageType, OptionCode};
use xdhcp6_engine::testing::{Client, Relay, ReplyView, Server, ip};

const CABLELABS: u32 = 4491;

/// One link, served directly on eth1 and through relays in 2001:db8:ffff:1::/64.
const BASE: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:01"
salt = "options"

[[link]]
name = "cable-1"
interfaces = ["eth1"]
relay-prefixes = ["2001:db8:ffff:1::/64"]

[[link.pool]]
prefix = "2001:db8:1::/64"
"#;

fn server(options: &str) -> Server {
    Server::new(&format!("{BASE}{options}"))
}

/// A relay on the link, at this link-address.
fn relay(n: u16) -> Relay {
    Relay::new(ip(&format!("2001:db8:ffff:1::{n:x}")))
}

/// A client's Vendor-specific Information option for `enterprise` whose sub-option 1 lists
/// `codes`, the way DOCSIS cable modems ask for CableLabs sub-options.
fn vendor_oro(enterprise: u32, codes: &[u16]) -> Vec<u8> {
    let mut body = enterprise.to_be_bytes().to_vec();
    body.extend_from_slice(&1u16.to_be_bytes());
    body.extend_from_slice(&((codes.len() * 2) as u16).to_be_bytes());
    for code in codes {
        body.extend_from_slice(&code.to_be_bytes());
    }
    body
}

/// Sub-options of a vendor option: code and data.
type SubOptions = Vec<(u16, Vec<u8>)>;

/// The Vendor-specific Information options of a reply: enterprise and sub-options.
fn vendor_options(reply: &ReplyView) -> Vec<(u32, SubOptions)> {
    reply
        .options
        .iter()
        .filter(|(code, _)| *code == u16::from(OptionCode::VendorOpts))
        .map(|(_, body)| {
            let enterprise = u32::from_be_bytes(body[..4].try_into().unwrap());
            let mut subs = Vec::new();
            let mut rest = &body[4..];
            while rest.len() >= 4 {
                let code = u16::from_be_bytes([rest[0], rest[1]]);
                let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
                subs.push((code, rest[4..4 + len].to_vec()));
                rest = &rest[4 + len..];
            }
            assert!(rest.is_empty(), "vendor option framing: {body:?}");
            (enterprise, subs)
        })
        .collect()
}

fn sub_codes(subs: &[(u16, Vec<u8>)]) -> Vec<u16> {
    subs.iter().map(|(code, _)| *code).collect()
}

/// CableLabs sub-options as a cable operator configures them, and a second enterprise.
const DOCSIS: &str = r#"
[options]
dns-servers = ["2001:db8:53::1"]

[[options.vendor]]
enterprise = 4491
sub-options = [
    { code = 32, addresses = ["2001:db8:69::1"] },
    { code = 33, text = "modem.cfg" },
    { code = 34, addresses = ["2001:db8:514::1"] },
    { code = 37, addresses = ["2001:db8:37::1"] },
    { code = 38, u32 = 3600 },
]

[[options.vendor]]
enterprise = 9999
sub-options = [{ code = 1, text = "other" }]
"#;

// ---- always-send ----

#[test]
fn always_send_option_reaches_a_client_without_oro_rfc9915_21_7() {
    let mut s = server(
        r#"
[options]
dns-servers = ["2001:db8:53::1"]
domain-search = ["example.net"]
custom = [{ code = 100, hex = "0a0b" }]
always-send = ["dns-servers", 100]
"#,
    );
    let client = Client::new(1);
    let advertise = s.send(&client.solicit().ia_na(1, &[]));
    assert_eq!(advertise.msg_type, MessageType::Advertise);
    assert_eq!(advertise.dns_servers(), [ip("2001:db8:53::1")]);
    assert_eq!(advertise.option(OptionCode::from(100)), Some(&[10, 11][..]));
    // Not marked: still only on request.
    assert!(!advertise.has(OptionCode::DomainList));

    // An ORO that asks for something else does not hide them either.
    let info = s.send(&client.information_request().oro(&[OptionCode::DomainList]));
    assert_eq!(info.dns_servers(), [ip("2001:db8:53::1")]);
    assert!(info.has(OptionCode::DomainList));
    assert!(info.has(OptionCode::from(100)));
    assert_eq!(
        info.codes().iter().filter(|code| **code == 23).count(),
        1,
        "asked for and always sent: once"
    );
}

#[test]
fn always_send_inline_marks_one_custom_option_rfc9915_21_7() {
    let mut s = server(
        r#"
[options]
custom = [
    { code = 100, u8 = 1, always-send = true },
    { code = 101, u8 = 2 },
]
"#,
    );
    let client = Client::new(2);
    let (_, reply) = s.bind_na(&client, 1);
    assert_eq!(reply.option(OptionCode::from(100)), Some(&[1][..]));
    assert!(!reply.has(OptionCode::from(101)));
    let renewed = s.send(&client.renew(&s.duid()).ia_na(1, &[]));
    assert_eq!(renewed.option(OptionCode::from(100)), Some(&[1][..]));
}

#[test]
fn always_sent_information_refresh_time_only_answers_information_request_rfc9915_21_23() {
    let mut s = server(
        r#"
[options]
information-refresh-time = 86400
always-send = ["information-refresh-time"]
"#,
    );
    let client = Client::new(3);
    let advertise = s.send(&client.solicit().ia_na(1, &[]));
    assert!(!advertise.has(OptionCode::InformationRefreshTime));
    let info = s.send(&client.information_request());
    assert_eq!(
        info.option(OptionCode::InformationRefreshTime),
        Some(&86400u32.to_be_bytes()[..])
    );
}

#[test]
fn link_always_send_replaces_the_servers_rfc9915_21_7() {
    let mut s = Server::new(&format!(
        r#"{BASE}
[options]
dns-servers = ["2001:db8:53::1"]
sntp-servers = ["2001:db8:123::1"]
always-send = ["dns-servers"]

[[link]]
name = "cable-2"
interfaces = ["eth2"]

[[link.pool]]
prefix = "2001:db8:2::/64"

[link.options]
always-send = ["sntp-servers"]
"#
    ));
    let client = Client::new(4);
    let first = s.send(&client.information_request());
    assert!(first.has(OptionCode::DnsServers));
    assert!(!first.has(OptionCode::SntpServers));

    s.link = s.engine.link_for_interface("eth2", None);
    let second = s.send(&client.information_request());
    assert!(!second.has(OptionCode::DnsServers));
    assert!(second.has(OptionCode::SntpServers));
}

// ---- vendor options asked for inside the client's vendor option ----

#[test]
fn cable_modem_gets_the_cablelabs_sub_options_it_asked_for_cl_sp_cann_dhcp_reg() {
    let mut s = server(DOCSIS);
    let modem = Client::new(10);
    // No ORO at all: the request is inside option 17 (CL_OPTION_ORO, sub-option 1).
    let solicit = modem
        .solicit()
        .ia_na(1, &[])
        .option(17, &vendor_oro(CABLELABS, &[32, 33, 37, 99]));
    let advertise = s.send(&solicit);
    let vendors = vendor_options(&advertise);
    assert_eq!(vendors.len(), 1, "{vendors:?}");
    let (enterprise, subs) = &vendors[0];
    assert_eq!(*enterprise, CABLELABS);
    assert_eq!(sub_codes(subs), [32, 33, 37]);
    assert_eq!(subs[1].1, b"modem.cfg");
    assert!(!advertise.has(OptionCode::DnsServers));

    // The Request of the same modem is answered the same way.
    let request = modem
        .request(&s.duid())
        .ia_na(1, &[])
        .option(17, &vendor_oro(CABLELABS, &[34, 38]));
    let reply = s.send(&request);
    assert_eq!(reply.msg_type, MessageType::Reply);
    let vendors = vendor_options(&reply);
    assert_eq!(vendors.len(), 1);
    assert_eq!(sub_codes(&vendors[0].1), [34, 38]);
    assert_eq!(vendors[0].1[1].1, 3600u32.to_be_bytes());
}

#[test]
fn vendor_oro_narrows_a_top_level_request_for_option_17_cl_sp_cann_dhcp_reg() {
    let mut s = server(DOCSIS);
    let modem = Client::new(11);
    let solicit = modem
        .solicit()
        .ia_na(1, &[])
        .oro(&[OptionCode::VendorOpts, OptionCode::DnsServers])
        .option(17, &vendor_oro(CABLELABS, &[33]));
    let advertise = s.send(&solicit);
    let vendors = vendor_options(&advertise);
    // CableLabs answers only what the modem listed; the other enterprise, asked for by the
    // top-level ORO alone, comes whole.
    assert_eq!(vendors.len(), 2, "{vendors:?}");
    assert_eq!(vendors[0].0, CABLELABS);
    assert_eq!(sub_codes(&vendors[0].1), [33]);
    assert_eq!(vendors[1].0, 9999);
    assert_eq!(sub_codes(&vendors[1].1), [1]);
    assert!(advertise.has(OptionCode::DnsServers));
}

#[test]
fn vendor_oro_asking_for_nothing_configured_gets_no_vendor_option_cl_sp_cann_dhcp_reg() {
    let mut s = server(DOCSIS);
    let modem = Client::new(12);
    let solicit = modem
        .solicit()
        .ia_na(1, &[])
        .oro(&[OptionCode::VendorOpts])
        .option(17, &vendor_oro(CABLELABS, &[2, 99]));
    let enterprises: Vec<u32> = vendor_options(&s.send(&solicit))
        .iter()
        .map(|(enterprise, _)| *enterprise)
        .collect();
    // No empty CableLabs option; the other enterprise, asked for by the ORO, comes.
    assert_eq!(enterprises, [9999]);
}

#[test]
fn always_sent_vendor_option_goes_whole_without_any_request_rfc9915_21_17() {
    let mut s = server(
        r#"
[[options.vendor]]
enterprise = 4491
always-send = true
sub-options = [
    { code = 32, addresses = ["2001:db8:69::1"] },
    { code = 33, text = "modem.cfg" },
]

[[options.vendor]]
enterprise = 9999
sub-options = [{ code = 1, text = "other" }]
"#,
    );
    let client = Client::new(13);
    let advertise = s.send(&client.solicit().ia_na(1, &[]));
    let vendors = vendor_options(&advertise);
    assert_eq!(vendors.len(), 1, "{vendors:?}");
    assert_eq!(vendors[0].0, CABLELABS);
    assert_eq!(sub_codes(&vendors[0].1), [32, 33]);
}

#[test]
fn vendor_oro_of_odd_length_is_malformed_rfc9915_21_7() {
    let mut s = server(DOCSIS);
    let mut body = CABLELABS.to_be_bytes().to_vec();
    body.extend_from_slice(&[0, 1, 0, 3, 0, 32, 0]);
    let solicit = Client::new(14).solicit().ia_na(1, &[]).option(17, &body);
    assert_eq!(s.drop_reason(&solicit), DropReason::Malformed);
}

#[test]
fn another_vendors_option_is_not_read_even_when_its_body_is_not_sub_options_rfc9915_21_17() {
    let mut s = server(DOCSIS);
    // Enterprise 9 with an opaque body that is no code/length/value sequence.
    let body = [0, 0, 0, 9, 0xde, 0xad, 0xbe];
    let solicit = Client::new(15).solicit().ia_na(1, &[]).option(17, &body);
    let advertise = s.send(&solicit);
    assert_eq!(advertise.msg_type, MessageType::Advertise);
}

// ---- relay-supplied options (RFC 6422) ----

/// An ERP Local Domain Name option body (RFC 6440): `example.net` in DNS wire format.
const ERP_DOMAIN: &[u8] = b"\x07example\x03net\x00";

#[test]
fn relay_supplied_erp_local_domain_reaches_the_client_rfc6422_6() {
    let mut s = server("");
    let client = Client::new(20).via(relay(1).supplying(&[(65, ERP_DOMAIN)]));
    let advertise = s.send(&client.solicit().ia_na(1, &[]));
    assert_eq!(advertise.relays.len(), 1);
    assert_eq!(advertise.option(OptionCode::from(65)), Some(ERP_DOMAIN));
    assert!(!advertise.has(OptionCode::RelaySuppliedOptions));
    let info = s.send(&client.information_request());
    assert_eq!(info.option(OptionCode::from(65)), Some(ERP_DOMAIN));
}

#[test]
fn relay_supplied_option_outside_the_allowed_set_is_ignored_rfc6422_6() {
    let config = |allow: &str| {
        format!(
            r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:01"

[[link]]
name = "cable-1"
relay-prefixes = ["2001:db8:ffff:1::/64"]
{allow}

[[link.pool]]
prefix = "2001:db8:1::/64"
"#
        )
    };
    let supplied: [(u16, &[u8]); 2] = [(99, b"\x01\x02"), (65, ERP_DOMAIN)];
    let client = Client::new(21).via(relay(1).supplying(&supplied));

    let mut closed = Server::new(&config(""));
    let reply = closed.send(&client.solicit().ia_na(1, &[]));
    assert!(!reply.has(OptionCode::from(99)));
    assert!(reply.has(OptionCode::from(65)));

    let mut open = Server::new(&config("rsoo-allow = [99]"));
    let reply = open.send(&client.solicit().ia_na(1, &[]));
    assert_eq!(reply.option(OptionCode::from(99)), Some(&[1, 2][..]));
    assert!(reply.has(OptionCode::from(65)));
}

#[test]
fn servers_own_option_wins_over_a_relay_supplied_one_rfc6422_6() {
    let mut s = Server::new(
        r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:01"

[options]
dns-servers = ["2001:db8:53::1"]

[[link]]
name = "cable-1"
relay-prefixes = ["2001:db8:ffff:1::/64"]
rsoo-allow = [23, 99]

[[link.pool]]
prefix = "2001:db8:1::/64"
"#,
    );
    let relay_dns = ip("2001:db8:dead::1").octets();
    let client = Client::new(22).via(relay(1).supplying(&[(23, &relay_dns), (99, b"\x07")]));
    // Asked for: the server's own DNS servers, once.
    let asked = s.send(
        &client
            .solicit()
            .ia_na(1, &[])
            .oro(&[OptionCode::DnsServers]),
    );
    assert_eq!(asked.dns_servers(), [ip("2001:db8:53::1")]);
    assert_eq!(asked.codes().iter().filter(|c| **c == 23).count(), 1);
    assert_eq!(asked.option(OptionCode::from(99)), Some(&[7][..]));
    // Not asked for: the server still has a candidate of its own, so the relay's is dropped.
    let unasked = s.send(&client.solicit().ia_na(1, &[]));
    assert!(!unasked.has(OptionCode::DnsServers));
}

#[test]
fn relay_closest_to_the_client_supplies_the_option_rfc6422_6() {
    let mut s = server("");
    let inner_domain: &[u8] = b"\x05inner\x00";
    let outer_domain: &[u8] = b"\x05outer\x00";
    let client = Client::new(23)
        .via(relay(1).supplying(&[(65, inner_domain)]))
        .via(Relay::new(ip("2001:db8:eeee::1")).supplying(&[(65, outer_domain)]));
    let reply = s.send(&client.solicit().ia_na(1, &[]));
    assert_eq!(reply.relays.len(), 2);
    let erp: Vec<&Vec<u8>> = reply
        .options
        .iter()
        .filter(|(code, _)| *code == 65)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(erp, [&inner_domain.to_vec()]);

    // Only the outer relay supplies it: that one is used.
    let client = Client::new(24)
        .via(relay(1))
        .via(Relay::new(ip("2001:db8:eeee::1")).supplying(&[(65, outer_domain)]));
    let reply = s.send(&client.solicit().ia_na(1, &[]));
    assert_eq!(reply.option(OptionCode::from(65)), Some(outer_domain));
}

#[test]
fn relay_supplied_options_that_overrun_their_container_are_malformed_rfc6422_3() {
    let mut s = server("");
    // One option announcing 9 bytes with 2 present.
    let broken = [0, 65, 0, 9, 1, 2];
    let client = Client::new(25).via(relay(1).option(66, &broken));
    assert_eq!(
        s.drop_reason(&client.solicit().ia_na(1, &[])),
        DropReason::Malformed
    );
}
