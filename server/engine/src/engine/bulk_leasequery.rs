//! Bulk Leasequery (RFC 5460): every binding of a relay, a link or a remote-id, streamed.
//!
//! A requestor (a CMTS or BNG rebuilding its routes after a reboot) opens a TCP connection to
//! port 547 and sends LEASEQUERY messages, each framed by a two-octet length. The daemon owns
//! the socket; this module answers one query at a time without IO: [`Engine::bulk_leasequery`]
//! reads the query and returns a [`BulkAnswer`], whose [`BulkAnswer::write_more`] appends the
//! next framed messages to a buffer: the LEASEQUERY-REPLY (the first binding, or a status),
//! one LEASEQUERY-DATA per further binding, then the LEASEQUERY-DONE.
//!
//! Queries by Relay-ID, link-address and Remote-ID select by the relay data kept with each
//! binding: the interned entries are tested once (`LeaseTable::relay_match`), then the table
//! is walked one address shard at a time; the selected records of a shard are copied out
//! under its lock and encoded after it is released, so a slow requestor holds no lock.

use std::net::Ipv6Addr;

use xdhcp6_proto::{
    LqQuery, MessageType, MessageWriter, OptionCode, Packet, QueryType, StatusCode,
};

use super::leasequery::{Found, MAX_DUID_LEN, Query};
use super::{DropReason, Engine, LeasequeryResult};
use crate::config::LinkId;
use crate::table::{LeaseRecord, LeaseState, RelayMatch, RelayQuery};

/// The longest message a frame carries (RFC 5460 §5.1: a two-octet length).
pub const MAX_BULK_MESSAGE: usize = u16::MAX as usize;

/// How a Bulk Leasequery was answered, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BulkResult {
    /// At least one binding was sent.
    Found,
    /// The query was valid and matched no binding.
    NoBinding,
    /// The requestor is not in `[leasequery] requestors` (status NotAllowed).
    NotAllowed,
    /// The link-address selects no link, or the address is in no pool prefix (status
    /// NotConfigured).
    NotConfigured,
    /// A query type this server does not answer (status UnknownQueryType).
    UnknownQueryType,
    /// A query without its query option or the data its type needs (status MalformedQuery).
    MalformedQuery,
    /// The server ended the query early (status QueryTerminated): a requestor that stopped
    /// reading, a connection's query limit, a server that stops.
    Terminated,
}

impl BulkResult {
    /// Every result, for metrics.
    pub const ALL: [BulkResult; 7] = [
        BulkResult::Found,
        BulkResult::NoBinding,
        BulkResult::NotAllowed,
        BulkResult::NotConfigured,
        BulkResult::UnknownQueryType,
        BulkResult::MalformedQuery,
        BulkResult::Terminated,
    ];

    /// A short name for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            BulkResult::Found => "found",
            BulkResult::NoBinding => "no_binding",
            BulkResult::NotAllowed => "not_allowed",
            BulkResult::NotConfigured => "not_configured",
            BulkResult::UnknownQueryType => "unknown_query_type",
            BulkResult::MalformedQuery => "malformed_query",
            BulkResult::Terminated => "terminated",
        }
    }

    fn of(result: LeasequeryResult) -> Self {
        match result {
            LeasequeryResult::Found | LeasequeryResult::ClientLink => BulkResult::Found,
            LeasequeryResult::NoBinding => BulkResult::NoBinding,
            LeasequeryResult::NotAllowed => BulkResult::NotAllowed,
            LeasequeryResult::NotConfigured => BulkResult::NotConfigured,
            LeasequeryResult::UnknownQueryType => BulkResult::UnknownQueryType,
            LeasequeryResult::MalformedQuery => BulkResult::MalformedQuery,
        }
    }
}

/// What is left to send of one query.
enum Plan {
    /// Everything is written: nothing more.
    Finished,
    /// The reply is written; the LEASEQUERY-DONE follows.
    Done,
    /// A relay selection: the next address shard to walk.
    Relay {
        selected: RelayMatch,
        link: Option<LinkId>,
        shard: usize,
    },
}

/// The answer to one Bulk Leasequery, written a few messages at a time.
///
/// It holds no lock between calls; the records of one shard wait in it between the walk of
/// that shard and their encoding (a shard's selected records at most).
pub struct BulkAnswer {
    xid: u32,
    requestor: Ipv6Addr,
    requestor_duid: Vec<u8>,
    plan: Plan,
    result: BulkResult,
    /// Whether the LEASEQUERY-REPLY was written.
    replied: bool,
    streamed: u64,
    batch: Vec<LeaseRecord>,
    next: usize,
    /// One message is written here, then copied after its length.
    scratch: Vec<u8>,
    /// Framed messages written before the first call to `write_more` (the REPLY of a query
    /// answered at once).
    pending: Vec<u8>,
    found: Found,
}

impl std::fmt::Debug for BulkAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkAnswer")
            .field("xid", &self.xid)
            .field("result", &self.result)
            .field("replied", &self.replied)
            .field("streamed", &self.streamed)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Reads one Bulk Leasequery (a LEASEQUERY message, without its TCP length) from
    /// `requestor`, the connection's peer, and returns its answer.
    ///
    /// `Err` for a message that gets no answer: not a LEASEQUERY, without a Client
    /// Identifier, or for another server (RFC 5007 §4.2.1 as over UDP); the daemon closes the
    /// connection then.
    pub fn bulk_leasequery(
        &self,
        request: &[u8],
        requestor: Ipv6Addr,
        now: u32,
    ) -> Result<BulkAnswer, DropReason> {
        let message = match Packet::parse(request) {
            Ok(Packet::Client(message)) if message.msg_type() == MessageType::Leasequery => message,
            Ok(_) => return Err(DropReason::Unsupported),
            Err(_) => return Err(DropReason::Malformed),
        };
        let query = Query::read(message)?;
        let client_id = query.client_id.ok_or(DropReason::MissingClientId)?;
        if query
            .server_id
            .is_some_and(|id| id != self.config.server.duid.as_slice())
        {
            return Err(DropReason::WrongServerId);
        }
        let mut answer = BulkAnswer {
            xid: query.xid,
            requestor,
            requestor_duid: client_id.to_vec(),
            plan: Plan::Finished,
            result: BulkResult::NoBinding,
            replied: false,
            streamed: 0,
            batch: Vec::new(),
            next: 0,
            scratch: vec![0; MAX_BULK_MESSAGE],
            pending: Vec::new(),
            found: Found {
                duid: Vec::new(),
                leases: Vec::with_capacity(1),
                relay: None,
            },
        };
        answer.start(self, &query, requestor, now)?;
        Ok(answer)
    }

    /// The selection and link of a relay query, or the status that refuses it.
    fn bulk_selection(
        &self,
        lq_query: &LqQuery<'_>,
    ) -> Result<(RelayMatch, Option<LinkId>), Refusal> {
        let malformed = |text| (StatusCode::MalformedQuery, BulkResult::MalformedQuery, text);
        let link_address = lq_query.link_address();
        // RFC 5460 §5.3, in substance:
        // QUERY_BY_RELAY_ID and QUERY_BY_REMOTE_ID with a link-address other than 0::0 ask
        // for the bindings on that link only.
        let link = || {
            if link_address.is_unspecified() {
                return Ok(None);
            }
            self.config
                .link_for_relay(link_address, None)
                .map(Some)
                .ok_or((
                    StatusCode::NotConfigured,
                    BulkResult::NotConfigured,
                    "no link for the link-address",
                ))
        };
        let options = lq_query.options();
        match lq_query.query_type() {
            // RFC 5460 §5.3, in substance:
            // QUERY_BY_RELAY_ID: the query options MUST contain an OPTION_RELAY_ID with the
            // DUID of the relay agent whose clients' bindings are asked for.
            QueryType::ByRelayId => {
                let id = match options.find_raw(OptionCode::RelayId) {
                    Ok(Some(id)) if !id.is_empty() && id.len() <= MAX_DUID_LEN => id,
                    _ => return Err(malformed("no Relay-ID option")),
                };
                let link = link()?;
                Ok((self.table.relay_match(&RelayQuery::RelayId(id)), link))
            }
            // RFC 5460 §5.3, in substance:
            // QUERY_BY_LINK_ADDRESS: the bindings of clients on the link that the
            // link-address field names, the link-address a relay put in its Relay-forward.
            QueryType::ByLinkAddress => {
                if link_address.is_unspecified() {
                    return Err(malformed("a link-address is required"));
                }
                let selected = self
                    .table
                    .relay_match(&RelayQuery::LinkAddress(link_address));
                Ok((selected, None))
            }
            // RFC 5460 §5.3, in substance:
            // QUERY_BY_REMOTE_ID: the query options MUST contain an OPTION_REMOTE_ID; the
            // bindings of the clients relayed with that remote-id are asked for.
            QueryType::ByRemoteId => {
                let id = match options.find_raw(OptionCode::RemoteId) {
                    // The enterprise number, then at least one octet of remote-id.
                    Ok(Some(id)) if id.len() > 4 => id,
                    _ => return Err(malformed("no Remote-ID option")),
                };
                let link = link()?;
                Ok((self.table.relay_match(&RelayQuery::RemoteId(id)), link))
            }
            _ => Err((
                StatusCode::UnknownQueryType,
                BulkResult::UnknownQueryType,
                "query type not supported",
            )),
        }
    }
}

impl BulkAnswer {
    /// The query's transaction id, carried by every message of its answer.
    pub fn xid(&self) -> u32 {
        self.xid
    }

    /// How the query was answered (final once [`BulkAnswer::write_more`] returned true).
    pub fn result(&self) -> BulkResult {
        self.result
    }

    /// The bindings written so far (one per LEASEQUERY-REPLY or -DATA with Client Data).
    pub fn streamed(&self) -> u64 {
        self.streamed
    }

    /// Whether every message of the answer is written.
    pub fn is_finished(&self) -> bool {
        matches!(self.plan, Plan::Finished) && self.pending.is_empty()
    }

    /// Appends the next messages, each after its two-octet length (RFC 5460 §5.1), to `out`
    /// until it holds at least `limit` bytes or the answer is complete; returns whether it is
    /// complete. `engine` is the one serving now (a reload may have replaced the one that
    /// read the query; the lease table is the same).
    pub fn write_more(
        &mut self,
        engine: &Engine,
        now: u32,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> bool {
        if !self.pending.is_empty() {
            out.append(&mut self.pending);
        }
        while out.len() < limit {
            if self.next < self.batch.len() {
                let record = &self.batch[self.next];
                self.next += 1;
                self.found.duid.clear();
                self.found.duid.extend_from_slice(record.duid.as_bytes());
                self.found.leases.clear();
                self.found.leases.push(record.lease);
                self.found.relay.clone_from(&record.relay);
                if self.write_binding(engine, now, out).is_ok() {
                    self.streamed += 1;
                    self.result = BulkResult::Found;
                }
                continue;
            }
            match &mut self.plan {
                Plan::Finished => return true,
                Plan::Done => {
                    self.write_done(None, out);
                    return true;
                }
                Plan::Relay {
                    selected,
                    link,
                    shard,
                } => {
                    if *shard >= engine.table.shard_count() {
                        if !self.replied {
                            // RFC 5460 §7.2 (in substance): no binding matches, a
                            // LEASEQUERY-REPLY without Client Data and without a status.
                            let (xid, duid) = (self.xid, &self.requestor_duid);
                            let _ = frame(&mut self.scratch, out, |w| {
                                w.client_header(MessageType::LeasequeryReply, xid)?;
                                w.server_id(&engine.config.server.duid)?;
                                w.client_id(duid)?;
                                Ok(())
                            });
                            self.replied = true;
                        }
                        self.plan = Plan::Done;
                        continue;
                    }
                    let link = *link;
                    self.batch.clear();
                    self.next = 0;
                    let batch = &mut self.batch;
                    engine.table.iter_shard_relayed(*shard, selected, |record| {
                        if record.lease.state == LeaseState::Bound
                            && !record.lease.is_expired(now)
                            && link.is_none_or(|link| record.lease.link == link)
                        {
                            batch.push(record.clone());
                        }
                    });
                    *shard += 1;
                }
            }
        }
        self.is_finished()
    }

    /// Ends the answer early with the QueryTerminated status (RFC 5460 §5.5): in the
    /// LEASEQUERY-DONE once the REPLY is out, in the REPLY otherwise.
    pub fn terminate(&mut self, engine: &Engine, text: &str, out: &mut Vec<u8>) {
        if !self.pending.is_empty() {
            out.append(&mut self.pending);
        }
        if self.is_finished() {
            return;
        }
        self.batch.clear();
        self.next = 0;
        self.result = BulkResult::Terminated;
        if self.replied {
            self.write_done(Some(text), out);
        } else {
            let (xid, duid) = (self.xid, &self.requestor_duid);
            let _ = frame(&mut self.scratch, out, |w| {
                w.client_header(MessageType::LeasequeryReply, xid)?;
                w.server_id(&engine.config.server.duid)?;
                w.client_id(duid)?;
                w.status_code(StatusCode::QueryTerminated, text)?;
                Ok(())
            });
            self.replied = true;
            self.plan = Plan::Finished;
        }
    }

    /// Decides what the query gets, writing the REPLY at once when it is a status or an RFC
    /// 5007 answer.
    fn start(
        &mut self,
        engine: &Engine,
        query: &Query<'_>,
        requestor: Ipv6Addr,
        now: u32,
    ) -> Result<(), DropReason> {
        let (status, result, text) = match self.plan_of(engine, query) {
            Ok(Some(plan)) => {
                self.plan = plan;
                return Ok(());
            }
            Ok(None) => {
                // RFC 5460 §5.3, in substance: the RFC 5007 query types are answered over
                // TCP as over UDP: the one client's data in the REPLY.
                let mut result = LeasequeryResult::NoBinding;
                let (xid, duid) = (self.xid, &self.requestor_duid);
                frame(&mut self.scratch, &mut self.pending, |w| {
                    w.client_header(MessageType::LeasequeryReply, xid)?;
                    w.server_id(&engine.config.server.duid)?;
                    w.client_id(duid)?;
                    result = engine.leasequery_result(query, Some(requestor), now, w)?;
                    Ok(())
                })?;
                self.result = BulkResult::of(result);
                self.replied = true;
                // One Client Data; an LQ Client Link option names links, not a binding.
                if result == LeasequeryResult::Found {
                    self.streamed = 1;
                }
                // RFC 5460 §7.2, in substance: a query that fails ends with its REPLY and its
                // status; an answer ends with the LEASEQUERY-DONE.
                self.plan = match self.result {
                    BulkResult::Found | BulkResult::NoBinding => Plan::Done,
                    _ => Plan::Finished,
                };
                return Ok(());
            }
            Err(refusal) => refusal,
        };
        let (xid, duid) = (self.xid, &self.requestor_duid);
        frame(&mut self.scratch, &mut self.pending, |w| {
            w.client_header(MessageType::LeasequeryReply, xid)?;
            w.server_id(&engine.config.server.duid)?;
            w.client_id(duid)?;
            w.status_code(status, text)?;
            Ok(())
        })?;
        self.result = result;
        self.replied = true;
        self.plan = Plan::Finished;
        Ok(())
    }

    /// The plan of a relay query, `None` for an RFC 5007 query type, or the status that
    /// refuses the query.
    fn plan_of(&self, engine: &Engine, query: &Query<'_>) -> Result<Option<Plan>, Refusal> {
        // RFC 5460 §7.1, in substance: a server may restrict the requestors it answers; a
        // LEASEQUERY from one it does not answer gets the NotAllowed status (RFC 5007 §5).
        if !engine.config.leasequery_allowed(self.requestor) {
            return Err((
                StatusCode::NotAllowed,
                BulkResult::NotAllowed,
                "requestor not allowed",
            ));
        }
        let malformed = |text| (StatusCode::MalformedQuery, BulkResult::MalformedQuery, text);
        let lq_query = match query.query {
            Some(Ok(body)) => {
                LqQuery::new_checked(body).map_err(|_| malformed("unreadable query option"))?
            }
            _ => return Err(malformed("one query option is required")),
        };
        if matches!(
            lq_query.query_type(),
            QueryType::ByAddress | QueryType::ByClientId
        ) {
            return Ok(None);
        }
        let (selected, link) = engine.bulk_selection(&lq_query)?;
        Ok(Some(Plan::Relay {
            selected,
            link,
            shard: 0,
        }))
    }

    /// Writes one binding: in the REPLY if it is the first, in a LEASEQUERY-DATA otherwise.
    fn write_binding(
        &mut self,
        engine: &Engine,
        now: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), DropReason> {
        let (xid, duid, found) = (self.xid, &self.requestor_duid, &self.found);
        if self.replied {
            // RFC 5460 §5.2, §7.2, in substance: the bindings after the first are sent in
            // LEASEQUERY-DATA messages with the query's transaction-id, one OPTION_CLIENT_DATA
            // each.
            frame(&mut self.scratch, out, |w| {
                w.client_header(MessageType::LeasequeryData, xid)?;
                engine.write_client_data(found, now, w)
            })
        } else {
            // RFC 5460 §7.2, in substance: the first binding is sent in the LEASEQUERY-REPLY,
            // with the Server and Client Identifiers.
            frame(&mut self.scratch, out, |w| {
                w.client_header(MessageType::LeasequeryReply, xid)?;
                w.server_id(&engine.config.server.duid)?;
                w.client_id(duid)?;
                engine.write_client_data(found, now, w)
            })?;
            self.replied = true;
            Ok(())
        }
    }

    /// Writes the LEASEQUERY-DONE, with a QueryTerminated status and `text` when given, and
    /// finishes.
    fn write_done(&mut self, terminated: Option<&str>, out: &mut Vec<u8>) {
        let xid = self.xid;
        // RFC 5460 §5.2, §7.2, in substance: the LEASEQUERY-DONE, with the query's
        // transaction-id, tells the requestor that the answer to its query is complete.
        let _ = frame(&mut self.scratch, out, |w| {
            w.client_header(MessageType::LeasequeryDone, xid)?;
            if let Some(text) = terminated {
                w.status_code(StatusCode::QueryTerminated, text)?;
            }
            Ok(())
        });
        self.plan = Plan::Finished;
    }
}

/// Why a query is refused: the status, its counter and the status message.
type Refusal = (StatusCode, BulkResult, &'static str);

/// Writes one message with `write` into `scratch`, then appends it to `out` after its
/// two-octet length (RFC 5460 §5.1); `out` is unchanged when it does not fit.
fn frame(
    scratch: &mut [u8],
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), DropReason>,
) -> Result<(), DropReason> {
    let mut w = MessageWriter::new(scratch);
    write(&mut w)?;
    let len = w.finish()?;
    let Ok(prefix) = u16::try_from(len) else {
        return Err(DropReason::ReplyTooLarge);
    };
    out.extend_from_slice(&prefix.to_be_bytes());
    out.extend_from_slice(&scratch[..len]);
    Ok(())
}
