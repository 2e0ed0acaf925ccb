//! Hex vectors for every message and option: typed values, round trip, writer equivalence.

mod common;

use std::net::Ipv6Addr;

use common::{hex, vectors, walk};
use xdhcp6_proto::{
    DhcpOption, DuidKind, DuidType, MAX_RELAY_HOPS, Message, MessageType, MessageWriter,
    NtpSuboption, OptionCode, Packet, ParseError, QueryType, RelayMessage, StatusCode, WriteError,
};

fn ip(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn vector(name: &str) -> Vec<u8> {
    vectors()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
        .1
}

fn client(buf: &[u8]) -> Message<'_> {
    match Packet::parse(buf).unwrap() {
        Packet::Client(m) => m,
        Packet::Relay(_) => panic!("relay"),
    }
}

fn relay(buf: &[u8]) -> RelayMessage<'_> {
    match Packet::parse(buf).unwrap() {
        Packet::Relay(r) => r,
        Packet::Client(_) => panic!("client"),
    }
}

fn find<'a>(opts: xdhcp6_proto::Options<'a>, code: OptionCode) -> DhcpOption<'a> {
    opts.find(code)
        .unwrap()
        .unwrap_or_else(|| panic!("no {code:?}"))
}

fn codes(opts: xdhcp6_proto::Options<'_>) -> Vec<u16> {
    opts.map(|o| u16::from(o.unwrap().code())).collect()
}

const LLT: &[u8] = &[
    0, 1, 0, 1, 0x2a, 0x3b, 0x4c, 0x5d, 0, 0x11, 0x22, 0x33, 0x44, 0x55,
];
const EN: &[u8] = &[0, 2, 0, 0, 0x0d, 0xe9, 1, 2, 3, 4];
const LL: &[u8] = &[0, 3, 0, 1, 0, 0x11, 0x22, 0x33, 0x44, 0x55];

#[test]
fn every_vector_parses_deeply_and_round_trips() {
    let vs = vectors();
    assert_eq!(vs.len(), 22);
    let mut types = std::collections::BTreeSet::new();
    let mut option_codes = std::collections::BTreeSet::new();
    for (name, bytes) in &vs {
        let w = walk(bytes);
        assert_eq!(w.error, None, "{name}");
        assert!(w.options > 0, "{name}");
        let p = Packet::parse(bytes).unwrap();
        types.insert(u8::from(p.msg_type()));
        let mut out = vec![0u8; bytes.len()];
        assert_eq!(p.encode(&mut out), Ok(bytes.len()), "{name}");
        assert_eq!(&out, bytes, "{name}");
        // One byte short: the writer reports a full buffer instead of panicking.
        let mut short = vec![0u8; bytes.len() - 1];
        assert_eq!(p.encode(&mut short), Err(WriteError::BufferFull), "{name}");
        collect_codes(bytes, &mut option_codes);
    }
    assert_eq!(types, (1..=17).collect());
    // Every option named in the brief appears in some vector, Unknown included.
    for c in [
        1u16, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 23, 24, 25, 26, 31,
        32, 37, 38, 39, 44, 45, 46, 47, 48, 53, 56, 59, 60, 61, 62, 67, 79, 82, 83, 135, 255,
    ] {
        assert!(option_codes.contains(&c), "option {c} has no vector");
    }
}

fn collect_codes(buf: &[u8], out: &mut std::collections::BTreeSet<u16>) {
    let mut areas: Vec<&[u8]> = Vec::new();
    let mut msgs = vec![buf];
    while let Some(m) = msgs.pop() {
        areas.push(Packet::parse(m).unwrap().options().as_bytes());
        while let Some(area) = areas.pop() {
            for o in xdhcp6_proto::Options::new(area) {
                let o = o.unwrap();
                out.insert(o.code().into());
                match o {
                    DhcpOption::IaNa(v) => areas.push(v.options().as_bytes()),
                    DhcpOption::IaPd(v) => areas.push(v.options().as_bytes()),
                    DhcpOption::IaTa(v) => areas.push(v.options().as_bytes()),
                    DhcpOption::IaAddr(v) => areas.push(v.options().as_bytes()),
                    DhcpOption::IaPrefix(v) => areas.push(v.options().as_bytes()),
                    DhcpOption::LqQuery(v) => areas.push(v.options().as_bytes()),
                    DhcpOption::ClientData(v) => areas.push(v.as_bytes()),
                    DhcpOption::RelayMsg(m) => msgs.push(m),
                    DhcpOption::LqRelayData { message, .. } => msgs.push(message),
                    _ => {}
                }
            }
        }
    }
}

#[test]
fn captured_prefix_delegation_exchange() {
    let caps = common::captured();
    let types: Vec<_> = caps
        .iter()
        .map(|(_, b)| Packet::parse(b).unwrap().msg_type())
        .collect();
    assert_eq!(
        types,
        [
            MessageType::Solicit,
            MessageType::Advertise,
            MessageType::Request,
            MessageType::Reply
        ]
    );
    let adv = &caps[1].1;
    let m = client(adv);
    assert_eq!(m.transaction_id(), 0x100874);
    let DhcpOption::IaPd(pd) = find(m.options(), OptionCode::IaPd) else {
        panic!()
    };
    assert_eq!(pd.iaid(), 0x27fe8f95);
    let DhcpOption::IaPrefix(p) = find(pd.options(), OptionCode::IaPrefix) else {
        panic!()
    };
    assert_eq!(
        (p.prefix_len(), p.prefix(), p.valid_lifetime()),
        (64, ip("2001:0:0:fe00::"), 7200)
    );
    let DhcpOption::ServerId(d) = find(m.options(), OptionCode::ServerId) else {
        panic!()
    };
    assert_eq!(d.duid_type(), DuidType::Llt);
}

#[test]
fn solicit() {
    let b = vector("solicit");
    let m = client(&b);
    assert_eq!(m.msg_type(), MessageType::Solicit);
    assert_eq!(m.transaction_id(), 0x123456);
    assert_eq!(
        codes(m.options()),
        [1, 8, 6, 3, 25, 14, 39, 15, 16, 20, 61, 62]
    );
    let DhcpOption::ClientId(d) = find(m.options(), OptionCode::ClientId) else {
        panic!()
    };
    assert_eq!(d.as_bytes(), LLT);
    assert_eq!(d.duid_type(), DuidType::Llt);
    assert_eq!(
        d.kind(),
        DuidKind::Llt {
            hw_type: 1,
            time: 0x2a3b4c5d,
            ll_addr: &LLT[8..]
        }
    );
    assert_eq!(
        find(m.options(), OptionCode::ElapsedTime),
        DhcpOption::ElapsedTime(100)
    );
    let DhcpOption::Oro(oro) = find(m.options(), OptionCode::Oro) else {
        panic!()
    };
    assert_eq!(
        oro.iter().collect::<Vec<_>>(),
        [
            OptionCode::DnsServers,
            OptionCode::DomainList,
            OptionCode::ClientFqdn
        ]
    );
    assert!(oro.contains(OptionCode::ClientFqdn) && !oro.contains(OptionCode::SntpServers));
    let DhcpOption::IaNa(ia) = find(m.options(), OptionCode::IaNa) else {
        panic!()
    };
    assert_eq!((ia.iaid(), ia.t1(), ia.t2()), (1, 0, 0));
    assert_eq!(ia.options().count(), 0);
    let DhcpOption::IaPd(pd) = find(m.options(), OptionCode::IaPd) else {
        panic!()
    };
    let DhcpOption::IaPrefix(hint) = pd.options().next().unwrap().unwrap() else {
        panic!()
    };
    assert_eq!(
        (hint.prefix_len(), hint.prefix()),
        (56, Ipv6Addr::UNSPECIFIED)
    );
    assert_eq!(
        find(m.options(), OptionCode::RapidCommit),
        DhcpOption::RapidCommit
    );
    let DhcpOption::ClientFqdn { flags, name } = find(m.options(), OptionCode::ClientFqdn) else {
        panic!()
    };
    assert_eq!(
        (flags, name.to_string(), name.is_fully_qualified()),
        (0, "host".into(), false)
    );
    let DhcpOption::UserClass(uc) = find(m.options(), OptionCode::UserClass) else {
        panic!()
    };
    assert_eq!(uc.iter().collect::<Vec<_>>(), [b"ab", b"cd"]);
    let DhcpOption::VendorClass { enterprise, data } = find(m.options(), OptionCode::VendorClass)
    else {
        panic!()
    };
    assert_eq!(
        (enterprise, data.iter().collect::<Vec<_>>()),
        (3561, vec![&b"dsxc"[..]])
    );
    assert_eq!(
        find(m.options(), OptionCode::ReconfAccept),
        DhcpOption::ReconfAccept
    );
    let DhcpOption::ClientArchTypes(at) = find(m.options(), OptionCode::ClientArchType) else {
        panic!()
    };
    assert_eq!(at.iter().collect::<Vec<_>>(), [7, 16]);
    assert_eq!(
        find(m.options(), OptionCode::Nii),
        DhcpOption::Nii {
            nii_type: 1,
            major: 3,
            minor: 10
        }
    );

    // The same message from the writer's typed helpers.
    let mut buf = [0u8; 512];
    let mut w = MessageWriter::client(&mut buf, MessageType::Solicit, 0x123456).unwrap();
    w.client_id(LLT).unwrap();
    w.elapsed_time(100).unwrap();
    w.oro(&[
        OptionCode::DnsServers,
        OptionCode::DomainList,
        OptionCode::ClientFqdn,
    ])
    .unwrap();
    w.ia_na(1, 0, 0, |_| Ok(())).unwrap();
    w.ia_pd(3, 0, 0, |w| w.ia_prefix(0, 0, 56, Ipv6Addr::UNSPECIFIED))
        .unwrap();
    w.rapid_commit().unwrap();
    w.client_fqdn(0, "host", false).unwrap();
    w.user_class(&[b"ab", b"cd"]).unwrap();
    w.vendor_class(3561, &[b"dsxc"]).unwrap();
    w.reconf_accept().unwrap();
    w.client_arch_types(&[7, 16]).unwrap();
    w.nii(1, 3, 10).unwrap();
    let n = w.finish().unwrap();
    assert_eq!(&buf[..n], &b[..]);
}

#[test]
fn advertise() {
    let b = vector("advertise");
    let m = client(&b);
    assert_eq!(m.msg_type(), MessageType::Advertise);
    let DhcpOption::ServerId(d) = find(m.options(), OptionCode::ServerId) else {
        panic!()
    };
    assert_eq!(
        d.kind(),
        DuidKind::En {
            enterprise: 3561,
            id: &[1, 2, 3, 4]
        }
    );
    assert_eq!(
        find(m.options(), OptionCode::Preference),
        DhcpOption::Preference(255)
    );
    let DhcpOption::IaNa(ia) = find(m.options(), OptionCode::IaNa) else {
        panic!()
    };
    assert_eq!((ia.iaid(), ia.t1(), ia.t2()), (1, 1800, 2880));
    let DhcpOption::IaAddr(a) = find(ia.options(), OptionCode::IaAddr) else {
        panic!()
    };
    assert_eq!(
        (a.addr(), a.preferred_lifetime(), a.valid_lifetime()),
        (ip("2001:db8::1"), 3600, 7200)
    );
    assert_eq!(
        find(a.options(), OptionCode::StatusCode),
        DhcpOption::StatusCode {
            code: StatusCode::Success,
            message: b"ok"
        }
    );
    let DhcpOption::IaPd(pd) = find(m.options(), OptionCode::IaPd) else {
        panic!()
    };
    assert_eq!((pd.iaid(), pd.t1(), pd.t2()), (3, 1800, 2880));
    let DhcpOption::IaPrefix(p) = find(pd.options(), OptionCode::IaPrefix) else {
        panic!()
    };
    assert_eq!(
        (
            p.preferred_lifetime(),
            p.valid_lifetime(),
            p.prefix_len(),
            p.prefix()
        ),
        (3600, 7200, 48, ip("2001:db8:1::"))
    );
    assert_eq!(
        find(p.options(), OptionCode::PdExclude),
        DhcpOption::PdExclude {
            prefix_len: 64,
            subnet_id: &[0, 1]
        }
    );
    let DhcpOption::DnsServers(dns) = find(m.options(), OptionCode::DnsServers) else {
        panic!()
    };
    assert_eq!(
        dns.iter().collect::<Vec<_>>(),
        [ip("2001:4860:4860::8888"), ip("2001:4860:4860::8844")]
    );
    assert_eq!(dns.len(), 2);
    let DhcpOption::DomainList(dl) = find(m.options(), OptionCode::DomainList) else {
        panic!()
    };
    assert_eq!(
        dl.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        ["example.com", "lan"]
    );
    assert_eq!(
        find(m.options(), OptionCode::SolMaxRt),
        DhcpOption::SolMaxRt(3600)
    );

    let mut buf = [0u8; 512];
    let mut w = MessageWriter::client(&mut buf, MessageType::Advertise, 0x123456).unwrap();
    w.client_id(LLT).unwrap();
    w.server_id(EN).unwrap();
    w.preference(255).unwrap();
    w.ia_na(1, 1800, 2880, |w| {
        let m = w.begin_ia_address(ip("2001:db8::1"), 3600, 7200)?;
        w.status_code(StatusCode::Success, "ok")?;
        w.end_option(m)
    })
    .unwrap();
    w.ia_pd(3, 1800, 2880, |w| {
        let m = w.begin_ia_prefix(3600, 7200, 48, ip("2001:db8:1::"))?;
        // RFC 6603: exclude 2001:db8:1:1::/64 from 2001:db8:1::/48.
        w.pd_exclude(48, ip("2001:db8:1:1::"), 64)?;
        w.end_option(m)
    })
    .unwrap();
    w.dns_servers(&[ip("2001:4860:4860::8888"), ip("2001:4860:4860::8844")])
        .unwrap();
    w.domain_list(&["example.com", "lan."]).unwrap();
    w.sol_max_rt(3600).unwrap();
    w.status_code(StatusCode::Success, "ok").unwrap();
    let n = w.finish().unwrap();
    assert_eq!(&buf[..n], &b[..]);
}

#[test]
fn request_confirm_renew_rebind_release_decline() {
    let b = vector("request");
    let m = client(&b);
    assert_eq!(m.msg_type(), MessageType::Request);
    let DhcpOption::ServerId(d) = find(m.options(), OptionCode::ServerId) else {
        panic!()
    };
    assert_eq!(
        d.kind(),
        DuidKind::Ll {
            hw_type: 1,
            ll_addr: &LL[4..]
        }
    );
    let DhcpOption::ClientFqdn { flags, name } = find(m.options(), OptionCode::ClientFqdn) else {
        panic!()
    };
    assert_eq!(
        (flags, name.to_string(), name.is_fully_qualified()),
        (1, "host.example.com".into(), true)
    );
    let DhcpOption::VendorOpts {
        enterprise,
        options,
    } = find(m.options(), OptionCode::VendorOpts)
    else {
        panic!()
    };
    let subs: Vec<_> = options.iter().map(|s| (s.code, s.data)).collect();
    assert_eq!((enterprise, subs), (3561, vec![(1u16, &b"hello"[..])]));

    let b = vector("confirm");
    let m = client(&b);
    assert_eq!(m.msg_type(), MessageType::Confirm);
    let DhcpOption::ClientId(d) = find(m.options(), OptionCode::ClientId) else {
        panic!()
    };
    let mut uuid = [0u8; 16];
    uuid.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    assert_eq!(d.kind(), DuidKind::Uuid(uuid));

    let b = vector("renew");
    let m = client(&b);
    assert_eq!(m.msg_type(), MessageType::Renew);
    let DhcpOption::Auth(a) = find(m.options(), OptionCode::Auth) else {
        panic!()
    };
    assert_eq!(
        (
            a.protocol(),
            a.algorithm(),
            a.rdm(),
            a.replay_detection(),
            a.info()
        ),
        (3, 1, 0, 1, &[1u8, 2, 3, 4][..])
    );

    let b = vector("rebind");
    let m = client(&b);
    assert_eq!(m.msg_type(), MessageType::Rebind);
    let DhcpOption::IaTa(ta) = find(m.options(), OptionCode::IaTa) else {
        panic!()
    };
    assert_eq!(ta.iaid(), 2);
    let DhcpOption::IaAddr(a) = find(ta.options(), OptionCode::IaAddr) else {
        panic!()
    };
    assert_eq!((a.addr(), a.valid_lifetime()), (ip("2001:db8::1"), 0));

    for (name, t) in [
        ("release", MessageType::Release),
        ("decline", MessageType::Decline),
    ] {
        let b = vector(name);
        let m = client(&b);
        assert_eq!(m.msg_type(), t);
        assert_eq!(codes(m.options()), [1, 2, 3]);
    }
}

#[test]
fn reply_reconfigure_information_request() {
    let b = vector("reply");
    let m = client(&b);
    assert_eq!(m.msg_type(), MessageType::Reply);
    let DhcpOption::SntpServers(s) = find(m.options(), OptionCode::SntpServers) else {
        panic!()
    };
    assert_eq!(s.iter().collect::<Vec<_>>(), [ip("2001:db8::123")]);
    let DhcpOption::NtpServer(ntp) = find(m.options(), OptionCode::NtpServer) else {
        panic!()
    };
    let subs: Vec<_> = ntp.suboptions().collect();
    assert_eq!(subs.len(), 3);
    assert_eq!(subs[0], NtpSuboption::ServerAddress(ip("2001:db8::7b")));
    assert_eq!(subs[1], NtpSuboption::MulticastAddress(ip("ff05::101")));
    let NtpSuboption::ServerFqdn(n) = subs[2] else {
        panic!()
    };
    assert_eq!(n.to_string(), "ntp.example.com");
    assert_eq!(
        find(m.options(), OptionCode::InformationRefreshTime),
        DhcpOption::InformationRefreshTime(86400)
    );
    assert_eq!(
        find(m.options(), OptionCode::InfMaxRt),
        DhcpOption::InfMaxRt(3600)
    );
    assert_eq!(
        find(m.options(), OptionCode::Unicast),
        DhcpOption::Unicast(ip("2001:db8::2"))
    );
    assert_eq!(
        find(m.options(), OptionCode::BootFileUrl),
        DhcpOption::BootFileUrl(b"tftp://[2001:db8::1]/boot.efi")
    );
    let DhcpOption::BootFileParams(bp) = find(m.options(), OptionCode::BootFileParams) else {
        panic!()
    };
    assert_eq!(bp.iter().collect::<Vec<_>>(), [&b"root"[..], b"quiet"]);
    assert_eq!(
        find(m.options(), OptionCode::StatusCode),
        DhcpOption::StatusCode {
            code: StatusCode::NoAddrsAvail,
            message: b"no addrs"
        }
    );
    assert_eq!(
        find(m.options(), OptionCode::Unknown(255)),
        DhcpOption::Unknown {
            code: 255,
            data: &[0xde, 0xad, 0xbe, 0xef]
        }
    );

    // Re-build the tail of the Reply with the typed helpers.
    let mut buf = [0u8; 512];
    let mut w = MessageWriter::client(&mut buf, MessageType::Reply, 0x123456).unwrap();
    w.sntp_servers(&[ip("2001:db8::123")]).unwrap();
    let mk = w.begin_ntp_server().unwrap();
    w.ntp_server_address(ip("2001:db8::7b")).unwrap();
    w.ntp_multicast_address(ip("ff05::101")).unwrap();
    w.ntp_server_fqdn("ntp.example.com").unwrap();
    w.end_option(mk).unwrap();
    w.information_refresh_time(86400).unwrap();
    w.inf_max_rt(3600).unwrap();
    w.option(OptionCode::Unicast, &ip("2001:db8::2").octets())
        .unwrap();
    w.boot_file_url(b"tftp://[2001:db8::1]/boot.efi").unwrap();
    w.boot_file_params(&[b"root", b"quiet"]).unwrap();
    w.status_code(StatusCode::NoAddrsAvail, "no addrs").unwrap();
    w.reconf_accept().unwrap();
    w.raw(255, &[0xde, 0xad, 0xbe, 0xef]).unwrap();
    let n = w.finish().unwrap();
    let start = m
        .options()
        .raw()
        .position(|o| o.unwrap().code == 31)
        .unwrap();
    let tail_start = {
        let mut rest = m.options().as_bytes();
        for _ in 0..start {
            let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
            rest = &rest[4 + len..];
        }
        b.len() - rest.len()
    };
    assert_eq!(&buf[4..n], &b[tail_start..]);

    let b = vector("reconfigure");
    let m = client(&b);
    assert_eq!(m.msg_type(), MessageType::Reconfigure);
    assert_eq!(
        find(m.options(), OptionCode::ReconfMsg),
        DhcpOption::ReconfMsg(MessageType::Renew)
    );

    let b = vector("information_request");
    let m = client(&b);
    assert_eq!(m.msg_type(), MessageType::InformationRequest);
    let DhcpOption::ClientId(d) = find(m.options(), OptionCode::ClientId) else {
        panic!()
    };
    assert_eq!(d.as_bytes(), EN);
}

#[test]
fn relay_forward_one_hop() {
    let b = vector("relay_forw");
    let r = relay(&b);
    assert_eq!(r.msg_type(), MessageType::RelayForw);
    assert_eq!(
        (r.hop_count(), r.link_address(), r.peer_address()),
        (0, ip("2001:db8:1::1"), ip("fe80::1"))
    );
    assert_eq!(
        find(r.options(), OptionCode::InterfaceId),
        DhcpOption::InterfaceId(b"eth01")
    );
    assert_eq!(
        find(r.options(), OptionCode::RemoteId),
        DhcpOption::RemoteId {
            enterprise: 3561,
            id: &[1, 2, 3, 4, 5, 6]
        }
    );
    assert_eq!(
        find(r.options(), OptionCode::SubscriberId),
        DhcpOption::SubscriberId(b"sub001")
    );
    assert_eq!(
        find(r.options(), OptionCode::ClientLinkLayerAddr),
        DhcpOption::ClientLinkLayerAddr {
            hw_type: 1,
            addr: &[0, 0x11, 0x22, 0x33, 0x44, 0x55]
        }
    );
    assert_eq!(
        find(r.options(), OptionCode::RelaySourcePort),
        DhcpOption::RelaySourcePort(10547)
    );
    let chain = r.chain().unwrap();
    assert_eq!(chain.len(), 1);
    assert_eq!(chain.message().msg_type(), MessageType::Solicit);
    assert_eq!(chain.message().as_bytes_for_test(), vector("solicit"));
    assert_eq!(chain.message().as_bytes(), &vector("solicit")[..]);
    assert_eq!(r.as_bytes(), &b[..]);
    assert_eq!(chain.innermost(), r);
}

trait AsBytes {
    fn as_bytes_for_test(&self) -> Vec<u8>;
}

impl AsBytes for Message<'_> {
    fn as_bytes_for_test(&self) -> Vec<u8> {
        let mut out = vec![0u8; 2048];
        let n = Packet::Client(*self).encode(&mut out).unwrap();
        out.truncate(n);
        out
    }
}

#[test]
fn relay_forward_two_hops_and_reply_chain() {
    let b = vector("relay_forw_two_hops");
    let r = relay(&b);
    let chain = r.chain().unwrap();
    assert_eq!(chain.len(), 2);
    let hops: Vec<_> = chain.hops().collect();
    assert_eq!(hops.len(), 2);
    assert_eq!(
        (hops[0].hop_count(), hops[0].peer_address()),
        (1, ip("fe80::2"))
    );
    assert_eq!(hops[1].hop_count(), 0);
    assert_eq!(chain.innermost(), hops[1]);
    assert_eq!(chain.message().msg_type(), MessageType::Request);

    // Write the Relay-reply outermost first, echoing each hop's Interface-Id.
    let mut buf = [0u8; 1024];
    let mut w = MessageWriter::new(&mut buf);
    let mut marks = Vec::new();
    for hop in chain.hops() {
        w.relay_header(
            MessageType::RelayRepl,
            hop.hop_count(),
            hop.link_address(),
            hop.peer_address(),
        )
        .unwrap();
        if let Some(DhcpOption::InterfaceId(id)) =
            hop.options().find(OptionCode::InterfaceId).unwrap()
        {
            w.interface_id(id).unwrap();
        }
        marks.push(w.begin_option(OptionCode::RelayMsg).unwrap());
    }
    w.client_header(MessageType::Reply, chain.message().transaction_id())
        .unwrap();
    w.server_id(EN).unwrap();
    while let Some(m) = marks.pop() {
        w.end_option(m).unwrap();
    }
    let n = w.finish().unwrap();
    let reply = relay(&buf[..n]);
    assert_eq!(reply.msg_type(), MessageType::RelayRepl);
    let rc = reply.chain().unwrap();
    assert_eq!(rc.len(), 2);
    let ids: Vec<_> = rc
        .hops()
        .map(|h| {
            h.options()
                .find_raw(OptionCode::InterfaceId)
                .unwrap()
                .unwrap()
        })
        .collect();
    assert_eq!(ids, [&b"uplink"[..], b"eth01"]);
    assert_eq!(rc.message().msg_type(), MessageType::Reply);
    assert_eq!(rc.message().transaction_id(), 0x123456);
}

#[test]
fn relay_reply() {
    let b = vector("relay_repl");
    let r = relay(&b);
    assert_eq!(r.msg_type(), MessageType::RelayRepl);
    let chain = r.chain().unwrap();
    assert_eq!(chain.message().msg_type(), MessageType::Advertise);
    assert_eq!(chain.message().as_bytes_for_test(), vector("advertise"));
}

#[test]
fn relay_chain_limits() {
    // 32 hops walk; 33 are refused; each level is built outermost-last with plain bytes.
    let inner = vector("solicit");
    let mut msg = inner.clone();
    for hops in 1..=MAX_RELAY_HOPS + 1 {
        let mut buf = vec![0u8; msg.len() + 64];
        let mut w =
            MessageWriter::relay(&mut buf, MessageType::RelayForw, 0, ip("::"), ip("fe80::1"))
                .unwrap();
        w.relay_msg(&msg).unwrap();
        let n = w.finish().unwrap();
        buf.truncate(n);
        msg = buf;
        let r = relay(&msg);
        match r.chain() {
            Ok(c) => {
                assert!(hops <= MAX_RELAY_HOPS);
                assert_eq!(c.len(), hops);
                assert_eq!(c.hops().count(), hops);
                assert_eq!(c.message().msg_type(), MessageType::Solicit);
            }
            Err(e) => {
                assert_eq!(hops, MAX_RELAY_HOPS + 1);
                assert_eq!(e, ParseError::RelayTooDeep);
            }
        }
        // Re-encoding a deep chain still gives the same bytes (deep levels are copied verbatim).
        let mut out = vec![0u8; msg.len()];
        assert_eq!(Packet::parse(&msg).unwrap().encode(&mut out), Ok(msg.len()));
        assert_eq!(out, msg);
    }
    // A relay message without OPTION_RELAY_MSG.
    let mut buf = [0u8; 64];
    let mut w =
        MessageWriter::relay(&mut buf, MessageType::RelayForw, 0, ip("::"), ip("::")).unwrap();
    w.interface_id(b"x").unwrap();
    let n = w.finish().unwrap();
    assert_eq!(
        relay(&buf[..n]).chain(),
        Err(ParseError::MissingRelayMessage)
    );
}

#[test]
fn leasequery_queries() {
    let cases = [
        (
            "leasequery_by_address",
            QueryType::ByAddress,
            "::",
            OptionCode::IaAddr,
        ),
        (
            "leasequery_by_client_id",
            QueryType::ByClientId,
            "2001:db8:1::",
            OptionCode::ClientId,
        ),
        (
            "leasequery_by_relay_id",
            QueryType::ByRelayId,
            "::",
            OptionCode::RelayId,
        ),
        (
            "leasequery_by_link_address",
            QueryType::ByLinkAddress,
            "2001:db8:1::",
            OptionCode::Unknown(0),
        ),
        (
            "leasequery_by_remote_id",
            QueryType::ByRemoteId,
            "::",
            OptionCode::RemoteId,
        ),
    ];
    for (name, qt, link, first) in cases {
        let b = vector(name);
        let m = client(&b);
        assert_eq!(m.msg_type(), MessageType::Leasequery);
        let DhcpOption::LqQuery(q) = find(m.options(), OptionCode::LqQuery) else {
            panic!()
        };
        assert_eq!((q.query_type(), q.link_address()), (qt, ip(link)), "{name}");
        match q.options().next() {
            Some(o) => assert_eq!(o.unwrap().code(), first, "{name}"),
            None => assert_eq!(first, OptionCode::Unknown(0)),
        }
    }
    let b = vector("leasequery_by_relay_id");
    let m = client(&b);
    let DhcpOption::LqQuery(q) = find(m.options(), OptionCode::LqQuery) else {
        panic!()
    };
    let DhcpOption::RelayId(d) = find(q.options(), OptionCode::RelayId) else {
        panic!()
    };
    assert_eq!(d.as_bytes(), LL);

    // Writer: the by-address query.
    let mut buf = [0u8; 256];
    let mut w = MessageWriter::client(&mut buf, MessageType::Leasequery, 0x123456).unwrap();
    w.client_id(EN).unwrap();
    let mk = w
        .begin_lq_query(QueryType::ByAddress, Ipv6Addr::UNSPECIFIED)
        .unwrap();
    w.ia_address(ip("2001:db8::1"), 0, 0).unwrap();
    w.oro(&[
        OptionCode::DnsServers,
        OptionCode::DomainList,
        OptionCode::ClientFqdn,
    ])
    .unwrap();
    w.end_option(mk).unwrap();
    let n = w.finish().unwrap();
    assert_eq!(&buf[..n], &vector("leasequery_by_address")[..]);
}

#[test]
fn leasequery_reply_done_data() {
    let b = vector("leasequery_reply");
    let m = client(&b);
    assert_eq!(m.msg_type(), MessageType::LeasequeryReply);
    let DhcpOption::ClientData(cd) = find(m.options(), OptionCode::ClientData) else {
        panic!()
    };
    assert_eq!(codes(cd.clone()), [1, 5, 26, 46]);
    assert_eq!(find(cd, OptionCode::CltTime), DhcpOption::CltTime(3600));
    let DhcpOption::LqRelayData {
        peer_address,
        message,
    } = find(m.options(), OptionCode::LqRelayData)
    else {
        panic!()
    };
    assert_eq!(peer_address, ip("fe80::1"));
    assert_eq!(message, &vector("relay_forw")[..]);
    let DhcpOption::LqClientLink(l) = find(m.options(), OptionCode::LqClientLink) else {
        panic!()
    };
    assert_eq!(
        l.iter().collect::<Vec<_>>(),
        [ip("2001:db8:1::1"), ip("2001:db8:2::1")]
    );

    let b = vector("leasequery_done");
    let m = client(&b);
    assert_eq!(m.msg_type(), MessageType::LeasequeryDone);
    assert_eq!(
        find(m.options(), OptionCode::StatusCode),
        DhcpOption::StatusCode {
            code: StatusCode::QueryTerminated,
            message: b"terminated"
        }
    );

    let b = vector("leasequery_data");
    let m = client(&b);
    assert_eq!(m.msg_type(), MessageType::LeasequeryData);

    // Writer: the Leasequery-reply.
    let mut buf = [0u8; 512];
    let mut w = MessageWriter::client(&mut buf, MessageType::LeasequeryReply, 0x123456).unwrap();
    w.client_id(EN).unwrap();
    w.server_id(EN).unwrap();
    let mk = w.begin_client_data().unwrap();
    w.client_id(LLT).unwrap();
    w.ia_address(ip("2001:db8::1"), 0, 0).unwrap();
    w.ia_prefix(3600, 7200, 56, ip("2001:db8:100::")).unwrap();
    w.clt_time(3600).unwrap();
    w.end_option(mk).unwrap();
    w.lq_relay_data(ip("fe80::1"), &vector("relay_forw"))
        .unwrap();
    w.lq_client_link(&[ip("2001:db8:1::1"), ip("2001:db8:2::1")])
        .unwrap();
    w.status_code(StatusCode::Success, "").unwrap();
    let n = w.finish().unwrap();
    assert_eq!(&buf[..n], &vector("leasequery_reply")[..]);
}

#[test]
fn relay_forward_writer() {
    let mut buf = [0u8; 512];
    let mut w = MessageWriter::relay(
        &mut buf,
        MessageType::RelayForw,
        0,
        ip("2001:db8:1::1"),
        ip("fe80::1"),
    )
    .unwrap();
    w.interface_id(b"eth01").unwrap();
    w.remote_id(3561, &[1, 2, 3, 4, 5, 6]).unwrap();
    w.subscriber_id(b"sub001").unwrap();
    w.client_link_layer_addr(1, &[0, 0x11, 0x22, 0x33, 0x44, 0x55])
        .unwrap();
    w.relay_source_port(10547).unwrap();
    w.relay_msg(&vector("solicit")).unwrap();
    let n = w.finish().unwrap();
    assert_eq!(&buf[..n], &vector("relay_forw")[..]);
}

#[test]
fn rejects_bad_lengths() {
    // (code, body) pairs that must not type.
    let bad: &[(u16, &[u8])] = &[
        (1, &[0, 1]),
        (1, &[0, 1, 0, 1, 0, 0, 0]),
        (2, &[0, 4, 1]),
        (3, &[0; 11]),
        (4, &[0; 3]),
        (5, &[0; 23]),
        (6, &[0; 3]),
        (7, &[]),
        (7, &[1, 2]),
        (8, &[1]),
        (11, &[0; 10]),
        (12, &[0; 15]),
        (13, &[0]),
        (14, &[0]),
        (15, &[0, 3, 1]),
        (16, &[0, 0, 0]),
        (16, &[0, 0, 0, 1, 0]),
        (17, &[0, 0, 0, 1, 0, 1, 0, 5]),
        (19, &[]),
        (20, &[1]),
        (23, &[0; 17]),
        (24, b"\x03com"),
        (24, b"\xc0\x0c"),
        (25, &[0; 4]),
        (26, &[0; 24]),
        (31, &[0; 8]),
        (32, &[0; 3]),
        (37, &[0; 3]),
        (39, &[]),
        (39, &[0, 64]),
        (44, &[0; 16]),
        (46, &[0; 5]),
        (47, &[0; 15]),
        (48, &[0; 15]),
        (53, &[0; 2]),
        (56, &[0, 1, 0, 4, 0, 0, 0, 0]),
        (56, &[0, 3, 0, 1, 3]),
        (56, &[0, 1]),
        (60, &[0, 9]),
        (61, &[0]),
        (62, &[1, 2]),
        (67, &[64]),
        (79, &[0]),
        (82, &[0; 2]),
        (83, &[0; 5]),
        (135, &[0]),
    ];
    for (code, body) in bad {
        assert!(
            DhcpOption::parse(*code, body).is_err(),
            "option {code} {body:?}"
        );
        // Inside a message, the iterator yields the error once and stops.
        let mut buf = [0u8; 128];
        let mut w = MessageWriter::client(&mut buf, MessageType::Reply, 1).unwrap();
        w.raw(*code, body).unwrap();
        w.rapid_commit().unwrap();
        let n = w.finish().unwrap();
        let mut it = client(&buf[..n]).options();
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }
    // Framing errors.
    assert_eq!(Packet::parse(&[]), Err(ParseError::Truncated));
    assert_eq!(Packet::parse(&[1, 2, 3]), Err(ParseError::Truncated));
    assert_eq!(Packet::parse(&[12; 33]), Err(ParseError::Truncated));
    assert_eq!(
        Message::new_checked(&[12, 0, 0, 0]),
        Err(ParseError::MessageType(12))
    );
    assert_eq!(
        RelayMessage::new_checked(&[1; 40]),
        Err(ParseError::MessageType(1))
    );
    let b = hex("01000001 0001 0010 0001");
    let mut it = client(&b).options();
    assert_eq!(
        it.next(),
        Some(Err(ParseError::OptionTruncated { code: 1 }))
    );
    assert_eq!(it.next(), None);
    let b = hex("01000001 00");
    assert_eq!(
        client(&b).options().next(),
        Some(Err(ParseError::OptionTruncated { code: 0 }))
    );
    assert_eq!(
        client(&b).options().find(OptionCode::ClientId),
        Err(ParseError::OptionTruncated { code: 0 })
    );
}

#[test]
fn writer_rejects_bad_values() {
    let mut buf = [0u8; 512];
    let mut w = MessageWriter::client(&mut buf, MessageType::Reply, 1).unwrap();
    assert_eq!(w.client_id(&[0, 1]), Err(WriteError::InvalidValue));
    assert_eq!(w.server_id(&[0u8; 131]), Err(WriteError::InvalidValue));
    assert_eq!(w.domain_list(&["a..b"]), Err(WriteError::InvalidName));
    let mut w = MessageWriter::client(&mut buf, MessageType::Reply, 1).unwrap();
    assert_eq!(
        w.pd_exclude(64, ip("::"), 64),
        Err(WriteError::InvalidValue)
    );
    let big = vec![0u8; 70_000];
    let mut large = vec![0u8; 80_000];
    let mut w = MessageWriter::client(&mut large, MessageType::Reply, 1).unwrap();
    assert_eq!(w.raw(255, &big), Err(WriteError::OptionTooLong));
    let m = w.begin_option(OptionCode::VendorOpts).unwrap();
    w.put_bytes(&big).unwrap();
    assert_eq!(w.end_option(m), Err(WriteError::OptionTooLong));
    let mut tiny = [0u8; 3];
    assert_eq!(
        MessageWriter::client(&mut tiny, MessageType::Reply, 1).err(),
        Some(WriteError::BufferFull)
    );
}

#[test]
fn hostile_nesting_is_bounded() {
    // 2000 IA_NA options nested inside each other (the outer option lengths stay < 64 KiB).
    let mut body: Vec<u8> = Vec::new();
    for _ in 0..2000 {
        let mut outer = vec![0, 3];
        outer.extend_from_slice(&((12 + body.len()) as u16).to_be_bytes());
        outer.extend_from_slice(&[0; 12]);
        outer.extend_from_slice(&body);
        body = outer;
        if body.len() > 60_000 {
            break;
        }
    }
    let mut msg = vec![7, 0, 0, 1];
    msg.extend_from_slice(&body);
    assert_eq!(walk(&msg).error, None);
    let mut out = vec![0u8; msg.len()];
    assert_eq!(Packet::parse(&msg).unwrap().encode(&mut out), Ok(msg.len()));
    assert_eq!(out, msg);

    // 1500 relay hops: the walk stops at MAX_RELAY_HOPS, re-encoding still copies it all.
    let mut msg = vector("solicit");
    for _ in 0..1500 {
        let mut r = vec![12, 0];
        r.extend_from_slice(&[0; 32]);
        r.extend_from_slice(&[0, 9]);
        r.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        r.extend_from_slice(&msg);
        msg = r;
        if msg.len() > 60_000 {
            break;
        }
    }
    assert_eq!(relay(&msg).chain(), Err(ParseError::RelayTooDeep));
    let mut out = vec![0u8; msg.len()];
    assert_eq!(Packet::parse(&msg).unwrap().encode(&mut out), Ok(msg.len()));
    assert_eq!(out, msg);
}

#[test]
fn find_skips_untyped_options_and_raw_iterates() {
    let b = vector("reply");
    let m = client(&b);
    // A malformed option after the match does not matter to find.
    let mut bad = b.clone();
    bad.extend_from_slice(&[0, 7, 0, 5, 1]);
    let mbad = client(&bad);
    assert!(mbad.options().find(OptionCode::ClientId).unwrap().is_some());
    assert_eq!(
        mbad.options().find(OptionCode::RelaySourcePort),
        Err(ParseError::OptionTruncated { code: 7 })
    );
    assert_eq!(m.options().find(OptionCode::RelaySourcePort), Ok(None));
    assert_eq!(m.options().raw().count(), m.options().count());
    assert_eq!(
        m.options().find_raw(OptionCode::Unknown(255)),
        Ok(Some(&[0xde, 0xad, 0xbe, 0xef][..]))
    );
}
