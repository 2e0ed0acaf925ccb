//! `--scenario bulk-leasequery`: once the clients are bound through the emulated relays, a
//! requestor asks the server over TCP (RFC 5460) for every binding of each relay (by its
//! link-address) and of some clients (by the Remote-ID their relay added), measures the
//! leases streamed per second and checks every answer against what the generator bound.
//!
//! The queries and the checks are plain functions over bytes ([`query`], [`read_answer`],
//! [`check_relay`], [`check_remote_id`]); [`run`] does the IO.

use std::collections::HashSet;
use std::io::{self, BufReader, Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::Serialize;
use xdhcp6_proto::{DhcpOption, MessageType, MessageWriter, OptionCode, Packet, QueryType};

use crate::population::{ENTERPRISE, Population};

/// What the generator bound for one client: its address and delegated prefix.
pub type Binding = (Option<Ipv6Addr>, Option<(Ipv6Addr, u8)>);

/// The problems kept for the report (the rest are counted).
const KEPT_PROBLEMS: usize = 20;

/// One Bulk Leasequery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// QUERY_BY_LINK_ADDRESS: every binding a relay with this link-address relayed.
    LinkAddress(Ipv6Addr),
    /// QUERY_BY_REMOTE_ID with this Remote-ID option body (enterprise number, remote-id).
    RemoteId(Vec<u8>),
}

/// The LEASEQUERY for `query`, after its two-octet length (RFC 5460 §5.1).
pub fn query(xid: u32, requestor: &[u8], query: &Query) -> Vec<u8> {
    let mut buf = vec![0u8; 1024];
    let len = {
        let write = |w: &mut MessageWriter<'_>| -> Result<(), xdhcp6_proto::WriteError> {
            w.client_header(MessageType::Leasequery, xid)?;
            w.client_id(requestor)?;
            let mark = match query {
                Query::LinkAddress(address) => {
                    w.begin_lq_query(QueryType::ByLinkAddress, *address)?
                }
                Query::RemoteId(body) => {
                    let mark = w.begin_lq_query(QueryType::ByRemoteId, Ipv6Addr::UNSPECIFIED)?;
                    w.option(OptionCode::RemoteId, body)?;
                    mark
                }
            };
            w.end_option(mark)
        };
        let mut w = MessageWriter::new(&mut buf);
        // 1 KiB holds any of these queries.
        write(&mut w).expect("a query fits 1 KiB");
        w.finish().expect("a query fits 1 KiB")
    };
    let mut framed = (len as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&buf[..len]);
    framed
}

/// The bindings of one answer: (client DUID, address or prefix and its length).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// Every binding, in the order streamed.
    pub bindings: Vec<(Vec<u8>, Ipv6Addr, u8)>,
    /// Bytes read, lengths included.
    pub bytes: u64,
    /// The status of a refused query (a REPLY with a status other than Success).
    pub refused: Option<u16>,
}

/// Reads one answer, up to its LEASEQUERY-DONE or a refusing REPLY; `Err` for IO errors and
/// for messages that break the protocol (another transaction-id, an unknown message type, an
/// unreadable message).
pub fn read_answer(reader: &mut impl Read, xid: u32) -> io::Result<Answer> {
    let invalid = |text: String| io::Error::new(io::ErrorKind::InvalidData, text);
    let mut answer = Answer::default();
    let mut message = vec![0u8; usize::from(u16::MAX)];
    let mut first = true;
    loop {
        let mut length = [0u8; 2];
        reader.read_exact(&mut length)?;
        let len = usize::from(u16::from_be_bytes(length));
        reader.read_exact(&mut message[..len])?;
        answer.bytes += 2 + len as u64;
        let Ok(Packet::Client(parsed)) = Packet::parse(&message[..len]) else {
            return Err(invalid(format!("an unreadable message of {len} bytes")));
        };
        if parsed.transaction_id() != xid {
            return Err(invalid(format!(
                "transaction-id {:#x} in the answer to {xid:#x}",
                parsed.transaction_id()
            )));
        }
        let msg_type = parsed.msg_type();
        match (first, msg_type) {
            (true, MessageType::LeasequeryReply) | (false, MessageType::LeasequeryData) => {}
            (false, MessageType::LeasequeryDone) => return Ok(answer),
            (_, other) => return Err(invalid(format!("{other:?} out of place"))),
        }
        first = false;
        for option in parsed.options() {
            match option {
                Ok(DhcpOption::StatusCode { code, .. }) if u16::from(code) != 0 => {
                    answer.refused = Some(code.into());
                }
                Ok(DhcpOption::ClientData(options)) => {
                    let mut duid = None;
                    let mut held = Vec::new();
                    for inner in options {
                        match inner {
                            Ok(DhcpOption::ClientId(id)) => duid = Some(id.as_bytes().to_vec()),
                            Ok(DhcpOption::IaAddr(a)) => held.push((a.addr(), 128)),
                            Ok(DhcpOption::IaPrefix(p)) => held.push((p.prefix(), p.prefix_len())),
                            Ok(_) => {}
                            Err(error) => {
                                return Err(invalid(format!("Client Data: {error:?}")));
                            }
                        }
                    }
                    let Some(duid) = duid else {
                        return Err(invalid("Client Data without a Client Identifier".into()));
                    };
                    for (address, len) in held {
                        answer.bindings.push((duid.clone(), address, len));
                    }
                }
                Ok(_) => {}
                Err(error) => return Err(invalid(format!("an option: {error:?}"))),
            }
        }
        if answer.refused.is_some() && msg_type == MessageType::LeasequeryReply {
            return Ok(answer);
        }
    }
}

/// What the checks of the answers found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Checked {
    /// Bindings that match what the generator bound.
    pub confirmed: u64,
    /// Bindings of clients of the population that the generator does not know as bound (their
    /// Reply was lost or timed out): reported, not failures.
    pub unconfirmed: u64,
    /// Failures: a binding of another relay or client, another address than the generator's,
    /// a binding streamed twice, one the generator bound that is missing, a refused query.
    pub failures: u64,
    /// The first problems, described.
    pub problems: Vec<String>,
}

impl Checked {
    fn fail(&mut self, problem: String) {
        self.failures += 1;
        if self.problems.len() < KEPT_PROBLEMS {
            self.problems.push(problem);
        }
    }

    /// Checks one client's streamed bindings against `bound`; `seen` collects them.
    fn binding(
        &mut self,
        client: u32,
        address: Ipv6Addr,
        len: u8,
        bound: Binding,
        seen: &mut HashSet<(u32, Ipv6Addr)>,
    ) {
        if !seen.insert((client, address)) {
            self.fail(format!("client {client}: {address}/{len} streamed twice"));
            return;
        }
        let expected = if len == 128 {
            bound.0.map(|a| (a, 128))
        } else {
            bound.1
        };
        match expected {
            Some(expected) if expected == (address, len) => self.confirmed += 1,
            Some((expected, expected_len)) => self.fail(format!(
                "client {client}: {address}/{len} streamed, {expected}/{expected_len} bound"
            )),
            None => self.unconfirmed += 1,
        }
    }

    /// Counts every binding `bound` lists for `clients` that `seen` lacks.
    fn missing(
        &mut self,
        clients: impl Iterator<Item = u32>,
        bound: &dyn Fn(u32) -> Binding,
        seen: &HashSet<(u32, Ipv6Addr)>,
        what: &str,
    ) {
        for client in clients {
            let (address, prefix) = bound(client);
            for held in address.into_iter().chain(prefix.map(|p| p.0)) {
                if !seen.contains(&(client, held)) {
                    self.fail(format!("{what}: client {client}'s {held} is missing"));
                }
            }
        }
    }
}

/// Checks the answer to the link-address query of relay `relay`: every binding is of a client
/// behind it and the one the generator bound, and every binding the generator bound behind it
/// is there.
pub fn check_relay(
    population: &Population,
    relay: u32,
    answer: &Answer,
    bound: &dyn Fn(u32) -> Binding,
    checked: &mut Checked,
) {
    let what = format!("relay {relay}");
    if let Some(status) = answer.refused {
        checked.fail(format!("{what}: refused with status {status}"));
        return;
    }
    let mut seen = HashSet::new();
    for (duid, address, len) in &answer.bindings {
        let Some(client) = population.client_of(duid) else {
            checked.fail(format!(
                "{what}: {address}/{len} of a DUID not in the population"
            ));
            continue;
        };
        if population.relay_of(client).map(|r| r.index) != Some(relay) {
            checked.fail(format!("{what}: client {client} is behind another relay"));
            continue;
        }
        checked.binding(client, *address, *len, bound(client), &mut seen);
    }
    let relays = population.relays().max(1);
    let behind = (relay..population.len()).step_by(relays as usize);
    checked.missing(behind, bound, &seen, &what);
}

/// Checks the answer to the Remote-ID query of `client`: its bindings only, all of them.
pub fn check_remote_id(
    population: &Population,
    client: u32,
    answer: &Answer,
    bound: &dyn Fn(u32) -> Binding,
    checked: &mut Checked,
) {
    let what = format!("remote-id of client {client}");
    if let Some(status) = answer.refused {
        checked.fail(format!("{what}: refused with status {status}"));
        return;
    }
    let mut seen = HashSet::new();
    for (duid, address, len) in &answer.bindings {
        if population.client_of(duid) != Some(client) {
            checked.fail(format!("{what}: {address}/{len} of another client"));
            continue;
        }
        checked.binding(client, *address, *len, bound(client), &mut seen);
    }
    checked.missing(std::iter::once(client), bound, &seen, &what);
}

/// The Remote-ID option body the emulated relays add for `client`.
pub fn remote_id_body(population: &Population, client: u32) -> Vec<u8> {
    let mut body = ENTERPRISE.to_be_bytes().to_vec();
    body.extend_from_slice(&population.remote_id(client));
    body
}

/// What a bulk-leasequery run measured and found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BulkSummary {
    /// Clients of the population.
    pub clients: u32,
    /// Emulated relays.
    pub relays: u32,
    /// Clients the generator saw bound.
    pub bound_clients: u64,
    /// Link-address queries (one per relay).
    pub relay_queries: u64,
    /// Remote-ID queries.
    pub remote_id_queries: u64,
    /// Bindings streamed by the link-address queries.
    pub leases_streamed: u64,
    /// Bytes of those answers.
    pub bytes: u64,
    /// Seconds from the first link-address query to the last answer.
    pub seconds: f64,
    /// Bindings per second over those queries.
    pub leases_per_second: f64,
    /// The checks of every answer (link-address and Remote-ID queries).
    pub checked: Checked,
}

impl BulkSummary {
    /// The report as a table.
    pub fn table(&self) -> String {
        let mut text = format!(
            "bulk leasequery: {} clients behind {} relays, {} bound\n\
             link-address queries: {}, leases streamed: {}, {} bytes in {:.3} s: {:.0} leases/s\n\
             remote-id queries: {}\n\
             checked: {} confirmed, {} unconfirmed (Reply not seen by the generator), {} failures\n",
            self.clients,
            self.relays,
            self.bound_clients,
            self.relay_queries,
            self.leases_streamed,
            self.bytes,
            self.seconds,
            self.leases_per_second,
            self.remote_id_queries,
            self.checked.confirmed,
            self.checked.unconfirmed,
            self.checked.failures,
        );
        for problem in &self.checked.problems {
            text.push_str(&format!("  {problem}\n"));
        }
        text
    }
}

/// Asks `server` (TCP) for every relay's bindings by link-address, one query after the other
/// on one connection, then for `remote_ids` clients' bindings by Remote-ID, and checks each
/// answer against `bound`.
pub fn run(
    server: SocketAddr,
    population: &Population,
    bound: &dyn Fn(u32) -> Binding,
    remote_ids: u32,
    timeout: Duration,
) -> io::Result<BulkSummary> {
    let stream = TcpStream::connect_timeout(&server, timeout)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::with_capacity(256 * 1024, stream);
    // A DUID-LL of the documentation range's MAC (RFC 7042): the requestor's own.
    let requestor = [0, 3, 0, 1, 0x00, 0x00, 0x5e, 0x00, 0x53, 0xbe];
    let mut summary = BulkSummary {
        clients: population.len(),
        relays: population.relays(),
        bound_clients: (0..population.len())
            .filter(|c| {
                let (a, p) = bound(*c);
                a.is_some() || p.is_some()
            })
            .count() as u64,
        ..BulkSummary::default()
    };
    let mut xid = 0x00b0_0000u32;
    let started = Instant::now();
    for relay in 0..population.relays() {
        let Some(link) = population.relay_of(relay).map(|r| r.link_address) else {
            break;
        };
        xid += 1;
        writer.write_all(&query(xid, &requestor, &Query::LinkAddress(link)))?;
        let answer = read_answer(&mut reader, xid)?;
        summary.relay_queries += 1;
        summary.leases_streamed += answer.bindings.len() as u64;
        summary.bytes += answer.bytes;
        check_relay(population, relay, &answer, bound, &mut summary.checked);
    }
    summary.seconds = started.elapsed().as_secs_f64();
    summary.leases_per_second = summary.leases_streamed as f64 / summary.seconds.max(1e-9);
    let step = (population.len() / remote_ids.max(1)).max(1);
    for client in (0..population.len())
        .step_by(step as usize)
        .take(remote_ids as usize)
    {
        xid += 1;
        let body = remote_id_body(population, client);
        writer.write_all(&query(xid, &requestor, &Query::RemoteId(body)))?;
        let answer = read_answer(&mut reader, xid)?;
        summary.remote_id_queries += 1;
        check_remote_id(population, client, &answer, bound, &mut summary.checked);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn population() -> Population {
        Population::new(12, 3, 0xbe, "2001:db8:2::/64".parse().unwrap())
    }

    fn address(client: u32) -> Ipv6Addr {
        Ipv6Addr::from(0x2001_0db8_0002_0000_0000_0000_0000_1000u128 + u128::from(client))
    }

    /// Every client but 11 bound an address.
    fn bound(client: u32) -> Binding {
        ((client != 11).then(|| address(client)), None)
    }

    /// An answer as a server streams it: REPLY, DATA..., DONE, one binding per message.
    fn stream(xid: u32, bindings: &[(Vec<u8>, Ipv6Addr)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut frame = |build: &dyn Fn(&mut MessageWriter<'_>)| {
            let mut buf = vec![0u8; 512];
            let mut w = MessageWriter::new(&mut buf);
            build(&mut w);
            let len = w.finish().unwrap();
            out.extend_from_slice(&(len as u16).to_be_bytes());
            out.extend_from_slice(&buf[..len]);
        };
        let data = |w: &mut MessageWriter<'_>, (duid, address): &(Vec<u8>, Ipv6Addr)| {
            let mark = w.begin_client_data().unwrap();
            w.client_id(duid).unwrap();
            w.ia_address(*address, 100, 200).unwrap();
            w.clt_time(5).unwrap();
            w.end_option(mark).unwrap();
        };
        frame(&|w| {
            w.client_header(MessageType::LeasequeryReply, xid).unwrap();
            w.server_id(&[0, 3, 0, 1, 1, 2, 3, 4, 5, 6]).unwrap();
            w.client_id(&[0, 3, 0, 1, 9, 9, 9, 9, 9, 9]).unwrap();
            if let Some(first) = bindings.first() {
                data(w, first);
            }
        });
        for binding in bindings.iter().skip(1) {
            frame(&|w| {
                w.client_header(MessageType::LeasequeryData, xid).unwrap();
                data(w, binding);
            });
        }
        frame(&|w| w.client_header(MessageType::LeasequeryDone, xid).unwrap());
        out
    }

    fn of(population: &Population, clients: &[u32]) -> Vec<(Vec<u8>, Ipv6Addr)> {
        clients
            .iter()
            .map(|c| (population.duid(*c).as_bytes().to_vec(), address(*c)))
            .collect()
    }

    #[test]
    fn a_complete_answer_for_a_relay_passes() {
        let p = population();
        // Relay 2: clients 2, 5, 8, 11 (11 has no binding the generator saw).
        let bytes = stream(7, &of(&p, &[8, 2, 5, 11]));
        let answer = read_answer(&mut bytes.as_slice(), 7).unwrap();
        assert_eq!(answer.bindings.len(), 4);
        let mut checked = Checked::default();
        check_relay(&p, 2, &answer, &bound, &mut checked);
        assert_eq!(checked.failures, 0, "{:?}", checked.problems);
        assert_eq!((checked.confirmed, checked.unconfirmed), (3, 1));
    }

    #[test]
    fn wrong_missing_and_repeated_bindings_fail() {
        let p = population();
        let mut wrong = of(&p, &[2, 5, 8]);
        wrong[1].1 = address(6);
        wrong.push(of(&p, &[2])[0].clone());
        wrong.push(of(&p, &[4])[0].clone());
        let bytes = stream(7, &wrong);
        let answer = read_answer(&mut bytes.as_slice(), 7).unwrap();
        let mut checked = Checked::default();
        check_relay(&p, 2, &answer, &bound, &mut checked);
        // Client 5's address, client 2 twice, client 4 of relay 1, client 5's missing.
        assert_eq!(checked.failures, 4, "{:?}", checked.problems);
        // A missing client alone fails too.
        let bytes = stream(8, &of(&p, &[2, 8]));
        let answer = read_answer(&mut bytes.as_slice(), 8).unwrap();
        let mut checked = Checked::default();
        check_relay(&p, 2, &answer, &bound, &mut checked);
        assert_eq!(checked.failures, 1, "{:?}", checked.problems);
        // A Remote-ID answer holds its one client.
        let bytes = stream(9, &of(&p, &[4]));
        let answer = read_answer(&mut bytes.as_slice(), 9).unwrap();
        let mut checked = Checked::default();
        check_remote_id(&p, 4, &answer, &bound, &mut checked);
        assert_eq!((checked.failures, checked.confirmed), (0, 1));
        check_remote_id(&p, 5, &answer, &bound, &mut checked);
        assert_eq!(checked.failures, 2);
    }

    #[test]
    fn another_transaction_id_breaks_the_answer() {
        let p = population();
        let bytes = stream(7, &of(&p, &[2]));
        assert!(read_answer(&mut bytes.as_slice(), 8).is_err());
        // A cut stream is an IO error.
        assert!(read_answer(&mut &bytes[..bytes.len() - 1], 7).is_err());
    }

    #[test]
    fn queries_are_framed_leasequery_messages() {
        let bytes = query(
            0x42,
            &[0, 3, 0, 1, 1, 1, 1, 1, 1, 1],
            &Query::LinkAddress("2001:db8::1".parse().unwrap()),
        );
        let len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
        assert_eq!(len, bytes.len() - 2);
        let Ok(Packet::Client(message)) = Packet::parse(&bytes[2..]) else {
            panic!("not a message");
        };
        assert_eq!(message.msg_type(), MessageType::Leasequery);
        assert_eq!(message.transaction_id(), 0x42);
    }
}
