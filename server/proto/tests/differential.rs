//! Differential test against an independent decoder (`dhcproto`, dev-dependency only).
//!
//! For every built-in vector, our re-encoding of it, and every captured `.bin` under
//! `fuzz/seeds/*/`, both decoders must agree on message type, transaction id, relay fields
//! and, per option code, on the values dhcproto understands (raw bytes for the rest).

mod common;

use std::fmt::Write as _;

use dhcproto::{Decodable, Decoder, v6};
use xdhcp6_proto::{
    DhcpOption, MessageWriter, NtpSuboption, Options, Packet, RawOption, RawOptions,
};

/// Codes dhcproto 0.15 decodes into typed variants; it passes every other code (32 included) raw.
const TYPED_BY_DHCPROTO: &[u16] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 23, 24, 25, 26, 56, 61,
];

fn hexs(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

/// Fingerprints of our options: (code, text), sorted.
fn ours(area: &[u8], depth: usize) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    for raw in RawOptions::new(area) {
        let raw = raw.expect("our walk already accepted this message");
        out.push((raw.code, our_print(raw, depth)));
    }
    out.sort();
    out
}

fn nested(o: Options<'_>, depth: usize) -> String {
    if depth > 8 {
        return "deep".into();
    }
    format!("{:?}", ours(o.as_bytes(), depth + 1))
}

fn our_print(raw: RawOption<'_>, depth: usize) -> String {
    if !TYPED_BY_DHCPROTO.contains(&raw.code) {
        return hexs(raw.data);
    }
    let opt = raw.parse().expect("typed");
    match opt {
        DhcpOption::ClientId(d) | DhcpOption::ServerId(d) => hexs(d.as_bytes()),
        DhcpOption::IaNa(v) => format!(
            "{} {} {} {}",
            v.iaid(),
            v.t1(),
            v.t2(),
            nested(v.options(), depth)
        ),
        DhcpOption::IaPd(v) => format!(
            "{} {} {} {}",
            v.iaid(),
            v.t1(),
            v.t2(),
            nested(v.options(), depth)
        ),
        DhcpOption::IaTa(v) => format!("{} {}", v.iaid(), nested(v.options(), depth)),
        DhcpOption::IaAddr(v) => format!(
            "{} {} {} {}",
            v.addr(),
            v.preferred_lifetime(),
            v.valid_lifetime(),
            nested(v.options(), depth)
        ),
        DhcpOption::IaPrefix(v) => format!(
            "{} {} {} {} {}",
            v.preferred_lifetime(),
            v.valid_lifetime(),
            v.prefix_len(),
            v.prefix(),
            nested(v.options(), depth)
        ),
        DhcpOption::Oro(o) => format!("{:?}", o.iter().map(u16::from).collect::<Vec<_>>()),
        DhcpOption::Preference(p) => p.to_string(),
        DhcpOption::ElapsedTime(t) => t.to_string(),
        DhcpOption::Auth(a) => format!(
            "{} {} {} {} {}",
            a.protocol(),
            a.algorithm(),
            a.rdm(),
            a.replay_detection(),
            hexs(a.info())
        ),
        DhcpOption::Unicast(a) => a.to_string(),
        DhcpOption::StatusCode { code, message } => {
            format!("{} {}", u16::from(code), String::from_utf8_lossy(message))
        }
        DhcpOption::RapidCommit | DhcpOption::ReconfAccept => String::new(),
        DhcpOption::UserClass(l) => format!("{:?}", l.iter().map(hexs).collect::<Vec<_>>()),
        DhcpOption::VendorClass { enterprise, data } => {
            format!(
                "{enterprise} {:?}",
                data.iter().map(hexs).collect::<Vec<_>>()
            )
        }
        DhcpOption::VendorOpts { enterprise, .. } => enterprise.to_string(),
        DhcpOption::InterfaceId(id) => hexs(id),
        DhcpOption::ReconfMsg(t) => u8::from(t).to_string(),
        DhcpOption::DnsServers(l) => format!("{:?}", l.iter().collect::<Vec<_>>()),
        DhcpOption::DomainList(l) => format!(
            "{:?}",
            l.iter()
                .map(|n| n.labels().map(hexs).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        ),
        DhcpOption::InformationRefreshTime(t) => t.to_string(),
        DhcpOption::NtpServer(n) => format!(
            "{:?}",
            n.suboptions()
                .map(|s| match s {
                    NtpSuboption::ServerAddress(a) | NtpSuboption::MulticastAddress(a) =>
                        a.to_string(),
                    NtpSuboption::ServerFqdn(n) =>
                        format!("{:?}", n.labels().map(hexs).collect::<Vec<_>>()),
                    NtpSuboption::Unknown { code, .. } => code.to_string(),
                })
                .collect::<Vec<_>>()
        ),
        DhcpOption::ClientArchTypes(a) => format!("{:?}", a.iter().collect::<Vec<_>>()),
        other => panic!("unexpected {other:?}"),
    }
}

fn theirs(opts: &v6::DhcpOptions, depth: usize) -> Vec<(u16, String)> {
    let mut out: Vec<(u16, String)> = opts
        .iter()
        .map(|o| (u16::from(v6::OptionCode::from(o)), their_print(o, depth)))
        .collect();
    out.sort();
    out
}

fn their_nested(o: &v6::DhcpOptions, depth: usize) -> String {
    if depth > 8 {
        return "deep".into();
    }
    format!("{:?}", theirs(o, depth + 1))
}

fn their_print(o: &v6::DhcpOption, depth: usize) -> String {
    use v6::DhcpOption as D;
    match o {
        D::ClientId(d) | D::ServerId(d) => hexs(d),
        D::IANA(v) => format!(
            "{} {} {} {}",
            v.id,
            v.t1,
            v.t2,
            their_nested(&v.opts, depth)
        ),
        D::IAPD(v) => format!(
            "{} {} {} {}",
            v.id,
            v.t1,
            v.t2,
            their_nested(&v.opts, depth)
        ),
        D::IATA(v) => format!("{} {}", v.id, their_nested(&v.opts, depth)),
        D::IAAddr(v) => format!(
            "{} {} {} {}",
            v.addr,
            v.preferred_life,
            v.valid_life,
            their_nested(&v.opts, depth)
        ),
        D::IAPrefix(v) => format!(
            "{} {} {} {} {}",
            v.preferred_lifetime,
            v.valid_lifetime,
            v.prefix_len,
            v.prefix_ip,
            their_nested(&v.opts, depth)
        ),
        D::ORO(o) => format!(
            "{:?}",
            o.opts.iter().map(|c| u16::from(*c)).collect::<Vec<_>>()
        ),
        D::Preference(p) => p.to_string(),
        D::ElapsedTime(t) => t.to_string(),
        D::Authentication(a) => {
            format!(
                "{} {} {} {} {}",
                a.proto,
                a.algo,
                a.rdm,
                a.replay_detection,
                hexs(&a.info)
            )
        }
        D::ServerUnicast(a) => a.to_string(),
        D::StatusCode(s) => format!("{} {}", u16::from(s.status), s.msg),
        D::RapidCommit | D::ReconfAccept => String::new(),
        D::UserClass(u) => format!("{:?}", u.data.iter().map(|d| hexs(d)).collect::<Vec<_>>()),
        D::VendorClass(v) => {
            format!(
                "{} {:?}",
                v.num,
                v.data.iter().map(|d| hexs(d)).collect::<Vec<_>>()
            )
        }
        D::VendorOpts(v) => v.num.to_string(),
        D::InterfaceId(id) => hexs(id),
        D::ReconfMsg(t) => u8::from(*t).to_string(),
        D::DomainNameServers(l) => format!("{l:?}"),
        D::DomainSearchList(l) => format!(
            "{:?}",
            l.iter()
                .map(|n| n.iter().map(hexs).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        ),
        D::InformationRefreshTime(t) => t.to_string(),
        D::NtpServer(subs) => format!(
            "{:?}",
            subs.iter()
                .map(|s| match s {
                    v6::NtpSuboption::ServerAddress(a) | v6::NtpSuboption::MulticastAddress(a) => {
                        a.to_string()
                    }
                    v6::NtpSuboption::FQDN(n) => {
                        format!("{:?}", n.iter().map(hexs).collect::<Vec<_>>())
                    }
                })
                .collect::<Vec<_>>()
        ),
        D::ClientArchType(a) => {
            format!("{:?}", a.iter().map(|x| u16::from(*x)).collect::<Vec<_>>())
        }
        D::Unknown(u) => hexs(u.data()),
        D::RelayMsg(_) => "relay".into(),
    }
}

/// Compares one payload and everything relayed inside it; returns messages compared.
fn compare(name: &str, payload: &[u8]) -> usize {
    let mut compared = 0;
    let mut queue = vec![payload.to_vec()];
    while let Some(bytes) = queue.pop() {
        let Ok(packet) = Packet::parse(&bytes) else {
            eprintln!("{name}: header does not parse; skipped");
            continue;
        };
        if let Some(e) = common::walk(&bytes).error {
            eprintln!("{name}: we reject it ({e}); skipped");
            continue;
        }
        match packet {
            Packet::Client(m) => {
                let d = v6::Message::decode(&mut Decoder::new(&bytes)).expect("dhcproto decodes");
                assert_eq!(u8::from(d.msg_type()), u8::from(m.msg_type()), "{name}");
                assert_eq!(d.xid_num(), m.transaction_id(), "{name}");
                assert_eq!(
                    ours(m.options().as_bytes(), 0),
                    theirs(d.opts(), 0),
                    "{name}"
                );
                for raw in m.options().raw() {
                    if let Ok(DhcpOption::LqRelayData { message, .. }) = raw.unwrap().parse() {
                        queue.push(message.to_vec());
                    }
                }
            }
            Packet::Relay(r) => {
                // dhcproto decodes every OPTION_RELAY_MSG body as a relay message, so hand it
                // the relay without that option and compare the relayed message on its own.
                let mut stripped = vec![0u8; bytes.len()];
                let mut w = MessageWriter::relay(
                    &mut stripped,
                    r.msg_type(),
                    r.hop_count(),
                    r.link_address(),
                    r.peer_address(),
                )
                .unwrap();
                for raw in r.options().raw() {
                    let raw = raw.unwrap();
                    if raw.code == 9 {
                        queue.push(raw.data.to_vec());
                    } else {
                        w.raw(raw.code, raw.data).unwrap();
                    }
                }
                let n = w.finish().unwrap();
                stripped.truncate(n);
                let d = v6::RelayMessage::decode(&mut Decoder::new(&stripped))
                    .expect("dhcproto decodes");
                assert_eq!(u8::from(d.msg_type()), u8::from(r.msg_type()), "{name}");
                assert_eq!(d.hop_count(), r.hop_count(), "{name}");
                assert_eq!(d.link_addr(), r.link_address(), "{name}");
                assert_eq!(d.peer_addr(), r.peer_address(), "{name}");
                assert_eq!(ours(&stripped[34..], 0), theirs(d.opts(), 0), "{name}");
            }
        }
        compared += 1;
    }
    compared
}

#[test]
fn agrees_with_dhcproto_on_vectors_our_output_and_captures() {
    let vectors = common::vectors();
    let mut checked_vectors = 0;
    let mut messages = 0;
    for (name, bytes) in &vectors {
        messages += compare(name, bytes);
        // Our own output: re-encode, then let dhcproto judge what we wrote.
        let mut out = vec![0u8; bytes.len()];
        let n = Packet::parse(bytes).unwrap().encode(&mut out).unwrap();
        messages += compare(name, &out[..n]);
        checked_vectors += 1;
    }
    assert_eq!(checked_vectors, vectors.len());
    // Relayed messages are compared on their own: more messages than vectors.
    assert!(messages > 2 * vectors.len(), "{messages}");

    // Captured payloads shipped with the tests: must parse, round trip and agree.
    for (name, bytes) in common::captured() {
        assert_eq!(common::walk(&bytes).error, None, "{name}");
        assert_eq!(compare(name, &bytes), 1, "{name}");
        let mut out = vec![0u8; bytes.len()];
        assert_eq!(
            Packet::parse(&bytes).unwrap().encode(&mut out),
            Ok(bytes.len())
        );
        assert_eq!(out, bytes, "{name}");
        messages += 1;
    }

    let seeds = common::seed_files();
    // The repository ships the captured corpus (fuzz/seeds): its absence is a failure.
    assert!(
        seeds.len() >= 100,
        "expected the captured packets under fuzz/seeds, found {}",
        seeds.len()
    );
    let mut seed_messages = 0;
    for (path, bytes) in &seeds {
        seed_messages += compare(path, bytes);
        // Every real capture parses, and the round trip holds for it too.
        let p = Packet::parse(bytes).unwrap_or_else(|error| panic!("{path}: {error}"));
        let mut out = vec![0u8; bytes.len()];
        assert_eq!(p.encode(&mut out), Ok(bytes.len()), "{path}");
        assert_eq!(&out, bytes, "{path}");
    }
    eprintln!(
        "differential: {checked_vectors} vectors ({messages} messages), {} captures ({seed_messages} messages)",
        seeds.len()
    );
}
