//! Property tests: parsing never panics, re-encoding is the identity, and what the writer
//! writes parses back to the same values.

mod common;

use std::net::Ipv6Addr;

use proptest::prelude::*;
use xdhcp6_proto::{
    DhcpOption, DuidKind, MessageType, MessageWriter, OptionCode, Packet, StatusCode,
};

/// Known option codes, to steer random options into the typed parsers.
const CODES: &[u16] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 23, 24, 25, 26, 31, 32, 37,
    38, 39, 44, 45, 46, 47, 48, 53, 56, 59, 60, 61, 62, 67, 79, 82, 83, 135, 999,
];

/// A well-framed option with a random known code and a random body (often invalid for the code).
fn framed_option() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(CODES),
        prop::collection::vec(any::<u8>(), 0..48),
    )
        .prop_map(|(c, b)| {
            let mut v = c.to_be_bytes().to_vec();
            v.extend_from_slice(&(b.len() as u16).to_be_bytes());
            v.extend(b);
            v
        })
}

/// Options nested a few levels inside IA/relay-shaped containers.
fn nested_options() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop::collection::vec(framed_option(), 0..4).prop_map(|v| v.concat());
    leaf.prop_recursive(4, 256, 4, |inner| {
        (
            prop::sample::select(&[3u16, 4, 5, 9, 17, 25, 26, 44, 45, 47][..]),
            prop::collection::vec(any::<u8>(), 0..26),
            inner,
        )
            .prop_map(|(code, head, body)| {
                let mut v = code.to_be_bytes().to_vec();
                v.extend_from_slice(&((head.len() + body.len()) as u16).to_be_bytes());
                v.extend(head);
                v.extend(body);
                v
            })
    })
}

fn message_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600),
        (1u8..=17, any::<[u8; 3]>(), nested_options()).prop_map(|(t, x, o)| {
            let mut v = vec![t];
            v.extend(x);
            v.extend(o);
            v
        }),
        (12u8..=13, any::<[u8; 33]>(), nested_options()).prop_map(|(t, h, o)| {
            let mut v = vec![t];
            v.extend(h);
            v.extend(o);
            v
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Any bytes: parsing and walking every option never panics, and whatever parses
    /// re-encodes to exactly the same bytes.
    #[test]
    fn parse_never_panics_and_reencodes_identically(bytes in message_bytes()) {
        let _ = common::walk(&bytes);
        if let Ok(p) = Packet::parse(&bytes) {
            let mut out = vec![0u8; bytes.len()];
            prop_assert_eq!(p.encode(&mut out), Ok(bytes.len()));
            prop_assert_eq!(&out, &bytes);
            // A buffer one byte short is an error, not a panic.
            if !bytes.is_empty() {
                let mut short = vec![0u8; bytes.len() - 1];
                prop_assert!(p.encode(&mut short).is_err());
            }
        }
    }
}

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9-]{0,20}"
}

fn domain() -> impl Strategy<Value = String> {
    prop::collection::vec(label(), 1..4).prop_map(|l| l.join("."))
}

fn addr() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

#[derive(Debug, Clone)]
struct Params {
    hops: u8,
    link: Ipv6Addr,
    peer: Ipv6Addr,
    interface_id: Vec<u8>,
    xid: u32,
    client_duid: Vec<u8>,
    server_duid: Vec<u8>,
    iaid: u32,
    t1: u32,
    t2: u32,
    address: Ipv6Addr,
    preferred: u32,
    valid: u32,
    prefix_len: u8,
    prefix: Ipv6Addr,
    status: u16,
    status_text: String,
    oro: Vec<u16>,
    preference: u8,
    dns: Vec<Ipv6Addr>,
    domains: Vec<String>,
    fqdn_flags: u8,
    fqdn: String,
}

fn params() -> impl Strategy<Value = Params> {
    (
        (
            0u8..32,
            addr(),
            addr(),
            prop::collection::vec(any::<u8>(), 0..40),
            0u32..(1 << 24),
        ),
        (
            prop::collection::vec(any::<u8>(), 1..=128),
            prop::collection::vec(any::<u8>(), 1..=128),
            any::<[u32; 3]>(),
            addr(),
            any::<[u32; 2]>(),
        ),
        (
            0u8..=128,
            addr(),
            any::<u16>(),
            "[ -~]{0,30}",
            prop::collection::vec(any::<u16>(), 0..12),
        ),
        (
            any::<u8>(),
            prop::collection::vec(addr(), 0..4),
            prop::collection::vec(domain(), 0..4),
            0u8..8,
            domain(),
        ),
    )
        .prop_map(|(a, b, c, d)| {
            // DUID-EN so that new_checked accepts any tail (type 2, enterprise, id).
            let duid = |tail: Vec<u8>| {
                let mut v = vec![0, 2, 0, 0, 0x0d, 0xe9];
                v.extend(tail.into_iter().take(124));
                v
            };
            Params {
                hops: a.0,
                link: a.1,
                peer: a.2,
                interface_id: a.3,
                xid: a.4,
                client_duid: duid(b.0),
                server_duid: duid(b.1),
                iaid: b.2[0],
                t1: b.2[1],
                t2: b.2[2],
                address: b.3,
                preferred: b.4[0],
                valid: b.4[1],
                prefix_len: c.0,
                prefix: c.1,
                status: c.2,
                status_text: c.3,
                oro: c.4,
                preference: d.0,
                dns: d.1,
                domains: d.2,
                fqdn_flags: d.3,
                fqdn: d.4,
            }
        })
}

fn write_reply(p: &Params, buf: &mut [u8]) -> usize {
    let mut w = MessageWriter::relay(buf, MessageType::RelayRepl, p.hops, p.link, p.peer).unwrap();
    w.interface_id(&p.interface_id).unwrap();
    let relay = w.begin_option(OptionCode::RelayMsg).unwrap();
    w.client_header(MessageType::Reply, p.xid).unwrap();
    w.client_id(&p.client_duid).unwrap();
    w.server_id(&p.server_duid).unwrap();
    w.preference(p.preference).unwrap();
    w.ia_na(p.iaid, p.t1, p.t2, |w| {
        let m = w.begin_ia_address(p.address, p.preferred, p.valid)?;
        w.status_code(StatusCode::from(p.status), &p.status_text)?;
        w.end_option(m)
    })
    .unwrap();
    w.ia_pd(p.iaid, p.t1, p.t2, |w| {
        w.ia_prefix(p.preferred, p.valid, p.prefix_len, p.prefix)
    })
    .unwrap();
    let oro: Vec<OptionCode> = p.oro.iter().map(|c| OptionCode::from(*c)).collect();
    w.oro(&oro).unwrap();
    w.dns_servers(&p.dns).unwrap();
    let names: Vec<&str> = p.domains.iter().map(String::as_str).collect();
    w.domain_list(&names).unwrap();
    w.client_fqdn(p.fqdn_flags, &p.fqdn, true).unwrap();
    w.end_option(relay).unwrap();
    w.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever the writer writes parses back to the same values.
    #[test]
    fn written_messages_parse_back_equal(p in params()) {
        let mut buf = vec![0u8; 4096];
        let n = write_reply(&p, &mut buf);
        let bytes = &buf[..n];
        prop_assert_eq!(common::walk(bytes).error, None);
        let Ok(Packet::Relay(r)) = Packet::parse(bytes) else { panic!("not a relay") };
        prop_assert_eq!((r.hop_count(), r.link_address(), r.peer_address()), (p.hops, p.link, p.peer));
        prop_assert_eq!(
            r.options().find(OptionCode::InterfaceId).unwrap(),
            Some(DhcpOption::InterfaceId(&p.interface_id))
        );
        let chain = r.chain().unwrap();
        let m = chain.message();
        prop_assert_eq!((m.msg_type(), m.transaction_id()), (MessageType::Reply, p.xid));
        let mut seen = 0;
        for o in m.options() {
            seen += 1;
            match o.unwrap() {
                DhcpOption::ClientId(d) => {
                    prop_assert_eq!(d.as_bytes(), &p.client_duid[..]);
                    let DuidKind::En { enterprise, .. } = d.kind() else { panic!() };
                    prop_assert_eq!(enterprise, 3561);
                }
                DhcpOption::ServerId(d) => prop_assert_eq!(d.as_bytes(), &p.server_duid[..]),
                DhcpOption::Preference(v) => prop_assert_eq!(v, p.preference),
                DhcpOption::IaNa(ia) => {
                    prop_assert_eq!((ia.iaid(), ia.t1(), ia.t2()), (p.iaid, p.t1, p.t2));
                    let Some(DhcpOption::IaAddr(a)) = ia.options().find(OptionCode::IaAddr).unwrap() else { panic!() };
                    prop_assert_eq!((a.addr(), a.preferred_lifetime(), a.valid_lifetime()), (p.address, p.preferred, p.valid));
                    let st = a.options().find(OptionCode::StatusCode).unwrap();
                    prop_assert_eq!(st, Some(DhcpOption::StatusCode { code: StatusCode::from(p.status), message: p.status_text.as_bytes() }));
                }
                DhcpOption::IaPd(pd) => {
                    prop_assert_eq!((pd.iaid(), pd.t1(), pd.t2()), (p.iaid, p.t1, p.t2));
                    let Some(DhcpOption::IaPrefix(x)) = pd.options().next().transpose().unwrap() else { panic!() };
                    prop_assert_eq!((x.prefix_len(), x.prefix(), x.preferred_lifetime(), x.valid_lifetime()), (p.prefix_len, p.prefix, p.preferred, p.valid));
                }
                DhcpOption::Oro(o) => prop_assert_eq!(o.iter().map(u16::from).collect::<Vec<_>>(), p.oro.clone()),
                DhcpOption::DnsServers(l) => prop_assert_eq!(l.iter().collect::<Vec<_>>(), p.dns.clone()),
                DhcpOption::DomainList(l) => prop_assert_eq!(l.iter().map(|n| n.to_string()).collect::<Vec<_>>(), p.domains.clone()),
                DhcpOption::ClientFqdn { flags, name } => {
                    prop_assert_eq!(flags, p.fqdn_flags);
                    prop_assert_eq!(name.to_string(), p.fqdn.clone());
                    prop_assert!(name.is_fully_qualified());
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        prop_assert_eq!(seen, 9);
        // Round trip of the writer's output.
        let mut again = vec![0u8; n];
        prop_assert_eq!(Packet::Relay(r).encode(&mut again), Ok(n));
        prop_assert_eq!(&again[..], bytes);
        // Any smaller buffer fails cleanly with BufferFull.
        let cut = n / 2;
        let mut small = vec![0u8; cut];
        let mut w = MessageWriter::new(&mut small);
        prop_assert!(Packet::Relay(r).write(&mut w).is_err());
    }
}
