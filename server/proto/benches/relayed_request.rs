//! Parse a relayed Request and write the matching Relay-reply: the server's hot path.

use std::hint::black_box;
use std::net::Ipv6Addr;

use criterion::{Criterion, criterion_group};
use xdhcp6_proto::{
    DhcpOption, DnsName, Duid, MessageType, MessageWriter, OptionCode, Packet, ParseError,
};

const CLIENT_DUID: &[u8] = &[
    0, 1, 0, 1, 0x2a, 0x3b, 0x4c, 0x5d, 0, 0x11, 0x22, 0x33, 0x44, 0x55,
];
const SERVER_DUID: &[u8] = &[0, 2, 0, 0, 0x0d, 0xe9, 1, 2, 3, 4];

/// Configuration the server holds in memory.
static DNS_SERVERS: [Ipv6Addr; 1] = [Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53)];
static LEASE_ADDRESS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x42);
static LEASE_PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0);

/// The relayed Request a cable relay would send: one hop with Interface-Id.
fn relayed_request() -> Vec<u8> {
    let mut inner = [0u8; 512];
    let mut w = MessageWriter::client(&mut inner, MessageType::Request, 0x00ab_cdef).unwrap();
    w.client_id(CLIENT_DUID).unwrap();
    w.server_id(SERVER_DUID).unwrap();
    w.elapsed_time(0).unwrap();
    w.ia_na(1, 0, 0, |w| {
        w.ia_address("2001:db8::1".parse().unwrap(), 0, 0)
    })
    .unwrap();
    w.ia_pd(2, 0, 0, |w| {
        w.ia_prefix(0, 0, 56, "2001:db8:100::".parse().unwrap())
    })
    .unwrap();
    w.oro(&[
        OptionCode::DnsServers,
        OptionCode::DomainList,
        OptionCode::ClientFqdn,
    ])
    .unwrap();
    w.client_fqdn(0x01, "host.example.com", true).unwrap();
    let n = w.finish().unwrap();

    let mut out = vec![0u8; 1024];
    let mut w = MessageWriter::relay(
        &mut out,
        MessageType::RelayForw,
        0,
        "2001:db8:1::1".parse().unwrap(),
        "fe80::1".parse().unwrap(),
    )
    .unwrap();
    w.interface_id(b"cable-modem-0/1/2").unwrap();
    w.relay_msg(&inner[..n]).unwrap();
    let n = w.finish().unwrap();
    out.truncate(n);
    out
}

/// What the server reads out of a relayed Request.
#[derive(Default)]
struct Request<'a> {
    hop_count: u8,
    link: Option<Ipv6Addr>,
    peer: Option<Ipv6Addr>,
    interface_id: &'a [u8],
    xid: u32,
    client_id: Option<Duid<'a>>,
    server_id: Option<Duid<'a>>,
    elapsed: u16,
    ia_na: Option<(u32, Option<Ipv6Addr>)>,
    ia_pd: Option<(u32, Option<(u8, Ipv6Addr)>)>,
    oro_mask: u64,
    fqdn: Option<(u8, DnsName<'a>, usize)>,
}

#[inline]
fn parse(buf: &[u8]) -> Result<Request<'_>, ParseError> {
    let mut req = Request::default();
    let Packet::Relay(relay) = Packet::parse(buf)? else {
        return Err(ParseError::MessageType(0));
    };
    let chain = relay.chain()?;
    let hop = chain.innermost();
    req.hop_count = hop.hop_count();
    req.link = Some(hop.link_address());
    req.peer = Some(hop.peer_address());
    req.interface_id = hop
        .options()
        .find_raw(OptionCode::InterfaceId)?
        .unwrap_or_default();
    let msg = chain.message();
    req.xid = msg.transaction_id();
    for opt in msg.options() {
        match opt? {
            DhcpOption::ClientId(d) => req.client_id = Some(d),
            DhcpOption::ServerId(d) => req.server_id = Some(d),
            DhcpOption::ElapsedTime(t) => req.elapsed = t,
            DhcpOption::IaNa(ia) => {
                let mut addr = None;
                for o in ia.options() {
                    if let DhcpOption::IaAddr(a) = o? {
                        addr = Some(a.addr());
                    }
                }
                req.ia_na = Some((ia.iaid(), addr));
            }
            DhcpOption::IaPd(pd) => {
                let mut prefix = None;
                for o in pd.options() {
                    if let DhcpOption::IaPrefix(p) = o? {
                        prefix = Some((p.prefix_len(), p.prefix()));
                    }
                }
                req.ia_pd = Some((pd.iaid(), prefix));
            }
            DhcpOption::Oro(oro) => {
                for c in oro.iter() {
                    req.oro_mask |= 1u64 << (u16::from(c) & 63);
                }
            }
            DhcpOption::ClientFqdn { flags, name } => {
                req.fqdn = Some((flags, name, name.labels().count()));
            }
            _ => {}
        }
    }
    Ok(req)
}

#[inline]
fn write(req: &Request<'_>, out: &mut [u8]) -> Result<usize, xdhcp6_proto::WriteError> {
    let unspecified = Ipv6Addr::UNSPECIFIED;
    let mut w = MessageWriter::relay(
        out,
        MessageType::RelayRepl,
        req.hop_count,
        req.link.unwrap_or(unspecified),
        req.peer.unwrap_or(unspecified),
    )?;
    // RFC 9915 §19.3: the server copies the Interface-Id into the Relay-reply.
    w.interface_id(req.interface_id)?;
    let relay = w.begin_option(OptionCode::RelayMsg)?;
    w.client_header(MessageType::Reply, req.xid)?;
    if let Some(c) = req.client_id {
        w.client_id(c.as_bytes())?;
    }
    w.server_id(SERVER_DUID)?;
    if let Some((iaid, _)) = req.ia_na {
        w.ia_na(iaid, 1800, 2880, |w| {
            w.ia_address(LEASE_ADDRESS, 3600, 7200)
        })?;
    }
    if let Some((iaid, _)) = req.ia_pd {
        w.ia_pd(iaid, 1800, 2880, |w| {
            w.ia_prefix(3600, 7200, 56, LEASE_PREFIX)
        })?;
    }
    if req.oro_mask & (1 << 23) != 0 {
        w.dns_servers(&DNS_SERVERS)?;
    }
    if req.oro_mask & (1 << 24) != 0 {
        w.domain_list(&["example.com"])?;
    }
    if let Some((_, name, _)) = req.fqdn {
        // RFC 4704 §5.1: the server sets S when it updates the AAAA record itself.
        w.client_fqdn_name(0x01, name)?;
    }
    w.end_option(relay)?;
    w.finish()
}

fn bench(c: &mut Criterion) {
    let request = relayed_request();
    let mut out = vec![0u8; 1500];
    // Sanity: the reply parses and carries what we wrote.
    let n = write(&parse(&request).unwrap(), &mut out).unwrap();
    let Ok(Packet::Relay(r)) = Packet::parse(&out[..n]) else {
        panic!()
    };
    let m = r.chain().unwrap().message();
    assert_eq!(m.msg_type(), MessageType::Reply);
    assert_eq!(m.options().filter(|o| o.is_ok()).count(), 7);
    assert!(m.options().find(OptionCode::StatusCode).unwrap().is_none());

    c.bench_function("relayed_request/parse+write", |b| {
        b.iter(|| {
            let req = parse(black_box(&request)).unwrap();
            write(&req, black_box(&mut out)).unwrap()
        })
    });
    c.bench_function("relayed_request/parse", |b| {
        b.iter(|| parse(black_box(&request)).map(|r| r.xid).unwrap())
    });
    let req = parse(&request).unwrap();
    c.bench_function("relayed_request/write", |b| {
        b.iter(|| write(black_box(&req), black_box(&mut out)).unwrap())
    });
}

criterion_group!(benches, bench);

/// Min-of-rounds timing, robust on a loaded machine: `XDHCP6_BENCH_QUICK=1 cargo bench ...`.
fn quick() {
    let request = relayed_request();
    let mut out = vec![0u8; 1500];
    let rounds = 200;
    let iters = 20_000u32;
    let mut best = [f64::MAX; 3];
    for _ in 0..rounds {
        let t = std::time::Instant::now();
        for _ in 0..iters {
            let req = parse(black_box(&request)).unwrap();
            black_box(write(&req, black_box(&mut out)).unwrap());
        }
        best[0] = best[0].min(t.elapsed().as_nanos() as f64 / f64::from(iters));
        let t = std::time::Instant::now();
        for _ in 0..iters {
            black_box(parse(black_box(&request)).map(|r| r.xid).unwrap());
        }
        best[1] = best[1].min(t.elapsed().as_nanos() as f64 / f64::from(iters));
        let req = parse(&request).unwrap();
        let t = std::time::Instant::now();
        for _ in 0..iters {
            black_box(write(black_box(&req), black_box(&mut out)).unwrap());
        }
        best[2] = best[2].min(t.elapsed().as_nanos() as f64 / f64::from(iters));
    }
    println!(
        "min of {rounds} rounds: parse+write {:.1} ns, parse {:.1} ns, write {:.1} ns",
        best[0], best[1], best[2]
    );
}

fn main() {
    if std::env::var_os("XDHCP6_BENCH_QUICK").is_some() {
        quick();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
