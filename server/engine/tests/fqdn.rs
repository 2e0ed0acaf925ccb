//! The Client FQDN option (RFC 4704) on links with and without `[link.ddns]`: the reply's
//! option (flags and name) and the `NameBinding` the engine hands its event sink, including
//! the RFC 6853 Rebind of another server's address.

use std::net::Ipv6Addr;
use std::sync::Arc;

use xdhcp6_engine::alloc::SaltKey;
use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::fqdn::{FLAG_N, FLAG_O, FLAG_S, NameBinding};
use xdhcp6_engine::proto::MessageType;
use xdhcp6_engine::table::{EventKind, EventSink, IaKind, LeaseEvent, LeaseTable};
use xdhcp6_engine::testing::{Client, Msg, ReplyView, config, ip};
use xdhcp6_engine::{Arrival, Context, Engine, Outcome, Peer};

const WITH_DDNS: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:0b"
salt = "fqdn"
rebind-foreign = "zero"

[[link]]
name = "lan"
interfaces = ["eth1"]

[[link.pool]]
prefix = "2001:db8:1::/64"
split = "2/2"

[link.ddns]
forward-zone = "example.net"
reverse-zone = "0.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
servers = ["2001:db8:53::53"]
qualifying-suffix = "dyn.example.net"
"#;

const WITHOUT_DDNS: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:0b"

[[link]]
name = "lan"
interfaces = ["eth1"]

[[link.pool]]
prefix = "2001:db8:1::/64"
"#;

/// Lease events and names, as the daemon's journal sink gets them.
#[derive(Default)]
struct Sink {
    events: Vec<LeaseEvent>,
    names: Vec<NameBinding>,
}

impl EventSink for Sink {
    fn emit(&mut self, event: LeaseEvent) {
        self.events.push(event);
    }

    fn name(&mut self, binding: NameBinding) {
        self.names.push(binding);
    }
}

struct Rig {
    engine: Engine,
    sink: Sink,
    buf: Vec<u8>,
}

impl Rig {
    fn new(toml: &str) -> Self {
        let config = config(toml);
        let table = Arc::new(LeaseTable::with_capacity(
            1024,
            SaltKey::from_salt(&config.server.salt),
        ));
        Self {
            engine: Engine::new(config, table).unwrap(),
            sink: Sink::default(),
            buf: vec![0; 4096],
        }
    }

    fn send(&mut self, msg: &Msg) -> ReplyView {
        let cx = Context {
            link: Some(LinkId(0)),
            arrival: Arrival::Multicast,
            now: 1000,
        };
        let request = msg.encode();
        match self.engine.handle_from(
            &request,
            &cx,
            Peer::default(),
            &mut self.buf,
            &mut self.sink,
        ) {
            Outcome::Reply { len, to, .. } => ReplyView::parse(&self.buf[..len], to),
            other => panic!("no reply: {other:?}"),
        }
    }

    fn duid(&self) -> Vec<u8> {
        self.engine.config().server.duid.clone()
    }
}

/// A Client FQDN option body: flags, then the name in wire format (`root`: fully qualified).
fn fqdn(flags: u8, labels: &[&str], root: bool) -> Vec<u8> {
    let mut body = vec![flags];
    for label in labels {
        body.push(label.len() as u8);
        body.extend_from_slice(label.as_bytes());
    }
    if root {
        body.push(0);
    }
    body
}

/// The reply's Client FQDN option: flags and the name as dotted text (final dot when fully
/// qualified).
fn reply_fqdn(reply: &ReplyView) -> Option<(u8, String)> {
    let (_, body) = reply.options.iter().find(|(code, _)| *code == 39)?;
    let (&flags, mut rest) = body.split_first()?;
    let mut name = String::new();
    while let Some((&len, tail)) = rest.split_first() {
        if len == 0 {
            name.push('.');
            break;
        }
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(std::str::from_utf8(&tail[..usize::from(len)]).unwrap());
        rest = &tail[usize::from(len)..];
    }
    Some((flags, name))
}

fn with_option(msg: Msg, body: Vec<u8>) -> Msg {
    let mut msg = msg;
    msg.options.push((39, body));
    msg
}

#[test]
fn a_request_with_s_set_is_answered_and_named() {
    let mut rig = Rig::new(WITH_DDNS);
    let client = Client::new(7);
    let server = rig.duid();
    let advertise = rig.send(&with_option(
        client.solicit().ia_na(1, &[]),
        fqdn(FLAG_S, &["My_PC"], false),
    ));
    assert_eq!(advertise.msg_type, MessageType::Advertise);
    assert_eq!(
        reply_fqdn(&advertise),
        Some((FLAG_S, "my-pc.dyn.example.net.".to_owned()))
    );
    assert!(rig.sink.names.is_empty(), "an Advertise binds nothing");

    let reply = rig.send(&with_option(
        client.request(&server).ia_na(1, &[]),
        fqdn(FLAG_S, &["My_PC"], false),
    ));
    assert_eq!(
        reply_fqdn(&reply),
        Some((FLAG_S, "my-pc.dyn.example.net.".to_owned()))
    );
    let address = reply.ia_na[0].addrs[0].addr;
    assert_eq!(rig.sink.names.len(), 1);
    let binding = &rig.sink.names[0];
    assert_eq!(binding.name, "my-pc.dyn.example.net.");
    assert_eq!(binding.duid.as_bytes(), client.duid.as_slice());
    assert!(binding.forward && binding.reverse);
    assert_eq!(binding.addresses, [address]);
    assert!(binding.stale.is_empty());
}

#[test]
fn flags_follow_the_policy() {
    let mut rig = Rig::new(WITH_DDNS);
    let server = rig.duid();
    // S = 0: the client updates its AAAA, the server its PTR.
    let reply = rig.send(&with_option(
        Client::new(1).request(&server).ia_na(1, &[]),
        fqdn(0, &["a", "example", "net"], true),
    ));
    assert_eq!(reply_fqdn(&reply), Some((0, "a.example.net.".to_owned())));
    let binding = rig.sink.names.pop().unwrap();
    assert!(!binding.forward && binding.reverse);
    // N = 1: nobody updates; nothing for the updater.
    let reply = rig.send(&with_option(
        Client::new(2).request(&server).ia_na(1, &[]),
        fqdn(FLAG_N, &["b"], false),
    ));
    assert_eq!(reply_fqdn(&reply).unwrap().0, FLAG_N);
    assert!(rig.sink.names.is_empty());

    let overriding =
        format!("{WITH_DDNS}override-client-update = true\noverride-no-update = true\n");
    let mut rig = Rig::new(&overriding);
    let reply = rig.send(&with_option(
        Client::new(1).request(&server).ia_na(1, &[]),
        fqdn(0, &["a"], false),
    ));
    assert_eq!(reply_fqdn(&reply).unwrap().0, FLAG_S | FLAG_O);
    let reply = rig.send(&with_option(
        Client::new(2).request(&server).ia_na(1, &[]),
        fqdn(FLAG_N, &["b"], false),
    ));
    assert_eq!(reply_fqdn(&reply).unwrap().0, FLAG_S | FLAG_O);
    assert_eq!(rig.sink.names.len(), 2);
    assert!(rig.sink.names.iter().all(|b| b.forward && b.reverse));
}

#[test]
fn a_client_without_the_option_gets_a_generated_name_and_no_option() {
    let mut rig = Rig::new(WITH_DDNS);
    let server = rig.duid();
    let reply = rig.send(&Client::new(3).request(&server).ia_na(1, &[]));
    assert_eq!(
        reply_fqdn(&reply),
        None,
        "RFC 4704: only to a client that sent one"
    );
    let address: Ipv6Addr = reply.ia_na[0].addrs[0].addr;
    let binding = rig.sink.names.pop().unwrap();
    let groups: Vec<String> = address
        .segments()
        .iter()
        .map(|g| format!("{g:x}"))
        .collect();
    assert_eq!(
        binding.name,
        format!("dhcp-{}.dyn.example.net.", groups.join("-"))
    );
}

#[test]
fn a_rebind_of_another_servers_address_names_it_stale() {
    // Server B of a split pair ("2/2"): the client Rebinds with an address of A's half.
    let mut rig = Rig::new(WITH_DDNS);
    let client = Client::new(9);
    let foreign = ip("2001:db8:1::5");
    let reply = rig.send(&with_option(
        client.rebind().ia_na(1, &[foreign]),
        fqdn(FLAG_S, &["pc1", "example", "net"], true),
    ));
    let addresses = &reply.ia_na[0].addrs;
    assert!(
        addresses.iter().any(|a| a.addr == foreign && a.valid == 0),
        "A's address is returned with lifetimes 0: {addresses:?}"
    );
    let own = addresses
        .iter()
        .find(|a| a.valid > 0)
        .expect("an address of B's half")
        .addr;
    let binding = rig.sink.names.pop().unwrap();
    assert_eq!(binding.name, "pc1.example.net.");
    assert_eq!(binding.addresses, [own]);
    assert_eq!(binding.stale, [foreign]);
}

#[test]
fn links_without_ddns_answer_with_n() {
    let mut rig = Rig::new(WITHOUT_DDNS);
    let server = rig.duid();
    let reply = rig.send(&with_option(
        Client::new(1).request(&server).ia_na(1, &[]),
        fqdn(FLAG_S, &["a"], false),
    ));
    assert_eq!(reply_fqdn(&reply), Some((FLAG_N | FLAG_O, "a".to_owned())));
    assert!(rig.sink.names.is_empty());
}

#[test]
fn a_decline_hands_the_sink_the_end_of_the_named_address() {
    // The daemon's DNS updater removes a name's records on the Declined event of an address
    // it wrote a name for: the event carries the address and the client's DUID.
    let mut rig = Rig::new(WITH_DDNS);
    let client = Client::new(11);
    let server = rig.duid();
    let reply = rig.send(&with_option(
        client.request(&server).ia_na(1, &[]),
        fqdn(FLAG_S, &["pc2"], false),
    ));
    let address = reply.ia_na[0].addrs[0].addr;
    assert_eq!(rig.sink.names.pop().unwrap().addresses, [address]);
    rig.sink.events.clear();

    let reply = rig.send(&client.decline(&server).ia_na(1, &[address]));
    assert_eq!(reply.msg_type, MessageType::Reply);
    assert!(rig.sink.names.is_empty(), "a Decline names nothing");
    let declined: Vec<&LeaseEvent> = rig
        .sink
        .events
        .iter()
        .filter(|event| event.kind == EventKind::Declined)
        .collect();
    assert_eq!(declined.len(), 1, "{:?}", rig.sink.events);
    assert_eq!(declined[0].record.lease.ip(), address);
    assert_eq!(declined[0].record.lease.kind, IaKind::Na);
    assert_eq!(declined[0].record.duid.as_bytes(), client.duid.as_slice());
}
