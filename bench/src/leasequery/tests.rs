use xdhcp6_proto::Duid;

use super::*;
use crate::population::Prefix;

const REQUESTOR: &[u8] = &[0, 3, 0, 1, 2, 0x4c, 0x51, 0, 0, 1];
const SERVER: &[u8] = &[0, 3, 0, 1, 2, 0, 0, 0, 0, 0x0a];
const MS: u64 = 1_000_000;

fn population() -> Population {
    Population::new(4, 0, 0xbe, "2001:db8:1::/64".parse::<Prefix>().unwrap())
}

fn bound(client: u32) -> Bound {
    Bound {
        client,
        address: Some(Ipv6Addr::new(
            0x2001,
            0xdb8,
            1,
            0,
            0,
            0,
            0,
            client as u16 + 1,
        )),
        prefix: Some((
            Ipv6Addr::new(0x2001, 0xdb8, 0x100, client as u16, 0, 0, 0, 0),
            56,
        )),
    }
}

fn requestor(by: QueryBy) -> Leasequery {
    let mut lq = Leasequery::new(LeasequerySettings {
        population: population(),
        bound: (0..4).map(bound).collect(),
        requestor: REQUESTOR.to_vec(),
        timeout_ns: 100 * MS,
        by,
    });
    lq.start(0, 1000.0, 4 * MS);
    lq
}

/// The reply a server writes about `client` (its DUID, address, prefix), changed by `edit`.
struct Answer<'a> {
    msg_type: MessageType,
    requestor: &'a [u8],
    status: Option<StatusCode>,
    client: Option<Vec<u8>>,
    address: Option<(Ipv6Addr, u32)>,
    prefix: Option<(Ipv6Addr, u8, u32)>,
}

impl Answer<'_> {
    fn of(population: &Population, b: &Bound) -> Self {
        Answer {
            msg_type: MessageType::LeasequeryReply,
            requestor: REQUESTOR,
            status: None,
            client: Some(population.duid(b.client).as_bytes().to_vec()),
            address: b.address.map(|a| (a, 100)),
            prefix: b.prefix.map(|(p, l)| (p, l, 100)),
        }
    }

    fn encode(&self, xid: u32) -> Vec<u8> {
        let mut buf = vec![0; 1500];
        let mut w = MessageWriter::client(&mut buf, self.msg_type, xid).unwrap();
        w.server_id(SERVER).unwrap();
        w.client_id(self.requestor).unwrap();
        if let Some(code) = self.status {
            w.status_code(code, "").unwrap();
        }
        if let Some(client) = &self.client {
            let data = w.begin_option(OptionCode::ClientData).unwrap();
            w.client_id(client).unwrap();
            if let Some((a, valid)) = self.address {
                w.ia_address(a, valid, valid).unwrap();
            }
            if let Some((p, l, valid)) = self.prefix {
                w.ia_prefix(valid, valid, l, p).unwrap();
            }
            w.end_option(data).unwrap();
        }
        let len = w.finish().unwrap();
        buf.truncate(len);
        buf
    }
}

/// The queries sent at `now_ns`: (xid, query type, the queried address or DUID).
fn sent(lq: &mut Leasequery, now_ns: u64) -> Vec<(u32, u8, Vec<u8>)> {
    let mut out = Outbox::default();
    lq.poll(now_ns, &mut out);
    out.iter()
        .map(|datagram| {
            let Ok(Packet::Client(message)) = Packet::parse(datagram) else {
                panic!("not a message");
            };
            let query = message
                .options()
                .find_map(|o| match o.unwrap() {
                    DhcpOption::LqQuery(q) => Some(q),
                    _ => None,
                })
                .unwrap();
            let what = query
                .options()
                .find_map(|o| match o.unwrap() {
                    DhcpOption::IaAddr(a) => Some(a.addr().octets().to_vec()),
                    DhcpOption::ClientId(d) => Some(Duid::as_bytes(&d).to_vec()),
                    _ => None,
                })
                .unwrap();
            (message.transaction_id(), query.query_type().into(), what)
        })
        .collect()
}

#[test]
fn queries_alternate_and_right_answers_complete() {
    let mut lq = requestor(QueryBy::Both);
    let queries = sent(&mut lq, 0);
    assert_eq!(queries.len(), 1);
    let queries: Vec<_> = queries.into_iter().chain(sent(&mut lq, MS)).collect();
    assert_eq!(queries[0].1, 1, "by address first");
    assert_eq!(queries[0].2, bound(0).address.unwrap().octets());
    assert_eq!(queries[1].1, 2, "then by client id");
    assert_eq!(queries[1].2, population().duid(1).as_bytes());
    let population = population();
    let mut out = Outbox::default();
    for (index, (xid, _, _)) in queries.iter().enumerate() {
        let answer = Answer::of(&population, &bound(index as u32)).encode(*xid);
        lq.handle_datagram(2 * MS, &answer, &mut out);
    }
    // The same answer again is an extra, not a failure.
    lq.handle_datagram(
        2 * MS,
        &Answer::of(&population, &bound(1)).encode(queries[1].0),
        &mut out,
    );
    let stats = lq.stats();
    assert_eq!((stats.flows_started, stats.flows_completed), (2, 2));
    assert_eq!((stats.extra, stats.total_failures()), (1, 0));
    assert_eq!(lq.sent_by(), (1, 1));
    assert_eq!(stats.latency.count(), 2);
}

/// A change to a right answer.
type Edit = Box<dyn Fn(&mut Answer)>;

#[test]
fn every_wrong_answer_is_counted_by_kind() {
    let population = population();
    let cases: Vec<(Mismatch, Edit)> = vec![
        (
            Mismatch::WrongType,
            Box::new(|a| a.msg_type = MessageType::Reply),
        ),
        (Mismatch::WrongRequestor, Box::new(|a| a.requestor = SERVER)),
        (
            Mismatch::Status,
            Box::new(|a| a.status = Some(StatusCode::NotAllowed)),
        ),
        (Mismatch::NoClientData, Box::new(|a| a.client = None)),
        (
            Mismatch::WrongClient,
            Box::new(|a| a.client = Some(vec![0, 3, 0, 1, 9, 9])),
        ),
        (
            Mismatch::AddressMissing,
            Box::new(|a| a.address = a.address.map(|(x, _)| (x, 0))),
        ),
        (Mismatch::PrefixMissing, Box::new(|a| a.prefix = None)),
    ];
    for (expected, edit) in cases {
        // By client identifier: everything the client bound must be there.
        let mut lq = requestor(QueryBy::ClientId);
        let (xid, _, _) = sent(&mut lq, 0)[0];
        let mut answer = Answer::of(&population, &bound(0));
        edit(&mut answer);
        lq.handle_datagram(MS, &answer.encode(xid), &mut Outbox::default());
        let counts = lq.mismatches();
        let wrong: Vec<_> = counts.0.iter().filter(|(_, n)| *n > 0).collect();
        assert_eq!(wrong, [&(expected.name(), 1)], "{expected:?}");
        assert_eq!(lq.stats().total_failures(), 1);
        assert_eq!(lq.stats().flows_failed, 1);
    }
    // An answer to no query, and garbage.
    let mut lq = requestor(QueryBy::Address);
    lq.handle_datagram(
        0,
        &Answer::of(&population, &bound(0)).encode(77),
        &mut Outbox::default(),
    );
    lq.handle_datagram(0, &[1, 2], &mut Outbox::default());
    assert_eq!(lq.stats().failures_of(Failure::UnknownXid), 1);
    assert_eq!(lq.stats().failures_of(Failure::Malformed), 1);
}

#[test]
fn a_query_by_address_wants_only_the_unit_asked() {
    let population = population();
    let mut lq = requestor(QueryBy::Address);
    let (xid, _, _) = sent(&mut lq, 0)[0];
    let mut answer = Answer::of(&population, &bound(0));
    answer.prefix = None;
    lq.handle_datagram(MS, &answer.encode(xid), &mut Outbox::default());
    assert_eq!(lq.stats().flows_completed, 1, "{:?}", lq.mismatches());
}

#[test]
fn an_answer_after_the_timeout_is_late() {
    let population = population();
    let mut lq = requestor(QueryBy::ClientId);
    let (xid, kind, _) = sent(&mut lq, 0)[0];
    assert_eq!(kind, 2);
    let mut out = Outbox::default();
    lq.poll(200 * MS, &mut out);
    assert_eq!(lq.stats().timeouts, 1);
    lq.handle_datagram(
        201 * MS,
        &Answer::of(&population, &bound(0)).encode(xid),
        &mut out,
    );
    assert_eq!((lq.stats().late, lq.stats().total_failures()), (1, 0));
    assert!(lq.is_finished(201 * MS));
}
