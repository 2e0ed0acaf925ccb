//! The server: `Engine::handle` answers one DHCPv6 message, sans IO.
//!
//! Every datapath and every test drives the same entry point: the request's UDP payload, a
//! [`Context`] (the link the datapath received it on, and the time), a buffer for the reply and
//! a sink for lease events. Client mistakes are never errors: they become a reply with a status
//! code, or [`Outcome::Drop`] with a reason that the datapath counts.

use std::net::Ipv6Addr;
use std::sync::Arc;

use xdhcp6_proto::{
    DhcpOption, IaNa, IaPd, Message, MessageType, MessageWriter, OptionCode, OptionMark, Oro,
    Packet, ParseError, RelayChain, StatusCode, WriteError,
};

use crate::alloc::{NaRange, PdRange};
use crate::config::{Config, Link, LinkId, PdExclude, RebindForeign};
use crate::prefix::Prefix;
use crate::table::{
    ClaimAs, ClientKey, EventKind, EventSink, IaKind, Lease, LeaseEvent, LeaseRecord, LeaseState,
    LeaseTable, Lifetimes, RestoreReport,
};

/// The most relay hops the server answers through (RFC 9915 §7.6 HOP_COUNT_LIMIT).
pub const HOP_COUNT_LIMIT: usize = 8;

/// IA_NA or IA_PD options of one kind answered per message; further ones are ignored.
pub const MAX_IAS: usize = 8;

/// Seconds an Advertise holds its address for the client's Request.
pub const OFFER_HOLD: u32 = 60;

/// Leases the table sweep looks at per [`Engine::handle_timeout`] call and shard step.
pub const SWEEP_BUDGET: usize = 4096;

/// What the datapath tells the engine about a received message.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    /// The link of the interface (and VLAN) the message arrived on, from
    /// [`Engine::link_for_interface`]; `None` when that interface serves no link directly.
    /// Relayed messages are placed by their relay information instead.
    pub link: Option<LinkId>,
    /// The time, in seconds on the engine clock (Unix time).
    pub now: u32,
}

/// What to do with a message, and what was received and sent, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send the first `len` bytes of the reply buffer.
    Reply {
        /// Bytes written to the reply buffer.
        len: usize,
        /// Where the reply goes.
        to: Destination,
        /// The type of the client message received, inside any relay messages.
        received: MessageType,
        /// The type of the reply to the client (Advertise or Reply), inside any Relay-reply.
        sent: MessageType,
    },
    /// Send nothing; the reason is counted.
    Drop {
        /// Why.
        reason: DropReason,
        /// The type of the message received, inside any relay messages as far as they could
        /// be read (see [`received_type`]).
        received: MessageType,
    },
}

impl Outcome {
    /// The type of the message received, inside any relay messages.
    pub fn received(&self) -> MessageType {
        match *self {
            Outcome::Reply { received, .. } | Outcome::Drop { received, .. } => received,
        }
    }

    /// The type of the client reply sent, if any.
    pub fn sent(&self) -> Option<MessageType> {
        match *self {
            Outcome::Reply { sent, .. } => Some(sent),
            Outcome::Drop { .. } => None,
        }
    }
}

/// The type of the message inside any relay messages, read leniently: the first Relay Message
/// option of each relay, as far as the bytes go; a relay without one counts as itself, and
/// an empty message or one nested past [`HOP_COUNT_LIMIT`] relays as `Unknown(0)`.
///
/// [`Engine::handle`] reports this in [`Outcome`] (from its own parse where the message is
/// well-formed); a datapath that drops a request before the engine sees it (no buffer for
/// the reply) counts it with this.
pub fn received_type(mut message: &[u8]) -> MessageType {
    const RELAY_HEADER_LEN: usize = 34;
    for _ in 0..=HOP_COUNT_LIMIT {
        let Some(&first) = message.first() else {
            return MessageType::Unknown(0);
        };
        let kind = MessageType::from(first);
        if !kind.is_relay() {
            return kind;
        }
        let mut options = message.get(RELAY_HEADER_LEN..).unwrap_or_default();
        let mut inner = None;
        while let [a, b, c, d, rest @ ..] = options {
            let code = u16::from_be_bytes([*a, *b]);
            let len = usize::from(u16::from_be_bytes([*c, *d]));
            let Some(value) = rest.get(..len) else { break };
            if code == u16::from(OptionCode::RelayMsg) {
                inner = Some(value);
                break;
            }
            options = rest.get(len..).unwrap_or_default();
        }
        match inner {
            Some(inner) => message = inner,
            None => return kind,
        }
    }
    MessageType::Unknown(0)
}

/// Where a reply goes, relative to the request's source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The client itself: the request's source address, UDP port 546.
    Client,
    /// The relay agent: the request's source address, UDP port 547, or the request's source
    /// port when the relay asked for that with a Relay Source Port option (RFC 8357 §5.2).
    Relay {
        /// Reply to the request's UDP source port rather than 547.
        to_source_port: bool,
    },
}

/// Why a message got no reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Not a DHCPv6 message: too short, or an option runs past its container.
    Malformed,
    /// A message type servers never receive (Advertise, Reply, Reconfigure, Relay-reply, ...).
    NotForServer,
    /// A message type this server does not answer (Leasequery, unknown types).
    Unsupported,
    /// A client message without the Client Identifier its type requires (RFC 9915 §16).
    MissingClientId,
    /// A Request, Renew, Release or Decline without a Server Identifier (RFC 9915 §16).
    MissingServerId,
    /// A Server Identifier that names another server (RFC 9915 §16).
    WrongServerId,
    /// A Server Identifier in a message that must not carry one (Solicit, Confirm, Rebind).
    UnexpectedServerId,
    /// An Information-request that carries an IA option (RFC 9915 §16.12).
    IaInInformationRequest,
    /// A Confirm with no address to confirm (RFC 9915 §18.3.3).
    NothingToConfirm,
    /// The message came from no configured link (interface, relay link-address, Interface-Id).
    UnknownLink,
    /// A relay chain longer than HOP_COUNT_LIMIT.
    HopLimit,
    /// The reply did not fit the buffer.
    ReplyTooLarge,
}

impl DropReason {
    /// Every reason, for metrics.
    pub const ALL: [DropReason; 12] = [
        DropReason::Malformed,
        DropReason::NotForServer,
        DropReason::Unsupported,
        DropReason::MissingClientId,
        DropReason::MissingServerId,
        DropReason::WrongServerId,
        DropReason::UnexpectedServerId,
        DropReason::IaInInformationRequest,
        DropReason::NothingToConfirm,
        DropReason::UnknownLink,
        DropReason::HopLimit,
        DropReason::ReplyTooLarge,
    ];

    /// A short name for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::NotForServer => "not_for_server",
            DropReason::Unsupported => "unsupported",
            DropReason::MissingClientId => "missing_client_id",
            DropReason::MissingServerId => "missing_server_id",
            DropReason::WrongServerId => "wrong_server_id",
            DropReason::UnexpectedServerId => "unexpected_server_id",
            DropReason::IaInInformationRequest => "ia_in_information_request",
            DropReason::NothingToConfirm => "nothing_to_confirm",
            DropReason::UnknownLink => "unknown_link",
            DropReason::HopLimit => "hop_limit",
            DropReason::ReplyTooLarge => "reply_too_large",
        }
    }
}

impl From<WriteError> for DropReason {
    fn from(_: WriteError) -> Self {
        DropReason::ReplyTooLarge
    }
}

/// The allocation state of one link: its ranges, in configuration order.
#[derive(Debug)]
struct LinkPools {
    na: Vec<NaRange>,
    pd: Vec<(PdRange, Option<PdExclude>)>,
}

/// The DHCPv6 server engine, shared by all workers.
#[derive(Debug)]
pub struct Engine {
    config: Arc<Config>,
    table: Arc<LeaseTable>,
    pools: Vec<LinkPools>,
}

/// Why an engine could not be built from a configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// A pool's range could not be turned into an allocator.
    #[error("link {link:?}: {problem}")]
    Pool {
        /// The link's name.
        link: String,
        /// What is wrong.
        problem: String,
    },
    /// The configuration has no server DUID (call `Config::set_server_duid` first).
    #[error("the server has no DUID")]
    NoServerDuid,
}

impl Engine {
    /// An engine serving `config` from `table`; the table outlives configuration reloads.
    pub fn new(config: Arc<Config>, table: Arc<LeaseTable>) -> Result<Self, EngineError> {
        if config.server.duid.is_empty() {
            return Err(EngineError::NoServerDuid);
        }
        let mut pools = Vec::with_capacity(config.links.len());
        for link in &config.links {
            let problem = |error: crate::alloc::AllocError| EngineError::Pool {
                link: link.name.clone(),
                problem: error.to_string(),
            };
            let reserved_addresses: Vec<u128> = config
                .reservations
                .iter()
                .filter(|reservation| reservation.applies_to(link.id))
                .filter_map(|reservation| reservation.address.map(u128::from))
                .collect();
            let reserved_prefixes: Vec<u128> = config
                .reservations
                .iter()
                .filter(|reservation| reservation.applies_to(link.id))
                .filter_map(|reservation| reservation.prefix.map(|prefix| prefix.bits()))
                .collect();
            let mut na = Vec::with_capacity(link.na_pools.len());
            for (index, pool) in link.na_pools.iter().enumerate() {
                let range = NaRange::new(pool.prefix, pool.range, index as u32)
                    .map_err(problem)?
                    .with_reserved(reserved_addresses.iter().copied());
                na.push(range);
            }
            let mut pd = Vec::with_capacity(link.pd_pools.len());
            for (index, pool) in link.pd_pools.iter().enumerate() {
                let range = PdRange::new(pool.prefix, pool.range, pool.delegated_len, index as u32)
                    .map_err(problem)?
                    .with_reserved(reserved_prefixes.iter().copied());
                pd.push((range, pool.exclude));
            }
            pools.push(LinkPools { na, pd });
        }
        Ok(Self {
            config,
            table,
            pools,
        })
    }

    /// The configuration this engine serves.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The lease table.
    pub fn table(&self) -> &Arc<LeaseTable> {
        &self.table
    }

    /// The link served directly on `interface` (with `vlan`), for [`Context::link`].
    pub fn link_for_interface(&self, interface: &str, vlan: Option<u16>) -> Option<LinkId> {
        self.config.link_for_interface(interface, vlan)
    }

    /// Loads leases back (journal replay) and marks their addresses taken in the allocators.
    pub fn restore(&self, records: impl IntoIterator<Item = LeaseRecord>) -> RestoreReport {
        let records: Vec<LeaseRecord> = records.into_iter().collect();
        let report = self.table.restore(records.iter().cloned());
        for record in &records {
            self.mark(&record.lease, true);
        }
        report
    }

    /// Expires leases and ends probations due at `now`, a bounded amount of work per call.
    pub fn handle_timeout(&self, now: u32, events: &mut impl EventSink) {
        let mut sink = Tracking {
            engine: self,
            inner: events,
        };
        self.table.handle_timeout(now, SWEEP_BUDGET, &mut sink);
    }

    /// Answers one DHCPv6 message (the UDP payload) into `reply`.
    pub fn handle(
        &self,
        request: &[u8],
        cx: &Context,
        reply: &mut [u8],
        events: &mut impl EventSink,
    ) -> Outcome {
        let mut sink = Tracking {
            engine: self,
            inner: events,
        };
        let mut received = MessageType::Unknown(0);
        match self.answer(request, cx, reply, &mut sink, &mut received) {
            Ok(Answer { len, to, sent }) => Outcome::Reply {
                len,
                to,
                received,
                sent,
            },
            Err(reason) => {
                if received.is_relay() {
                    // The relay chain could not be walked strictly (or the type is one the
                    // server never answers): count what a lenient walk finds inside.
                    received = received_type(request);
                }
                Outcome::Drop { reason, received }
            }
        }
    }

    /// Answers into `reply`; sets `received` to the type of the message as soon as it is known
    /// (the outermost type until the relay chain is read).
    fn answer(
        &self,
        request: &[u8],
        cx: &Context,
        reply: &mut [u8],
        events: &mut impl EventSink,
        received: &mut MessageType,
    ) -> Result<Answer, DropReason> {
        // RFC 9915 §16, in substance:
        // Servers MUST discard any received messages of types they do not expect.
        // Decide on the first byte before decoding anything.
        let first = *request.first().ok_or(DropReason::Malformed)?;
        *received = MessageType::from(first);
        match MessageType::from(first) {
            MessageType::Solicit
            | MessageType::Request
            | MessageType::Confirm
            | MessageType::Renew
            | MessageType::Rebind
            | MessageType::Release
            | MessageType::Decline
            | MessageType::InformationRequest
            | MessageType::RelayForw => {}
            MessageType::Leasequery | MessageType::Unknown(_) => {
                return Err(DropReason::Unsupported);
            }
            _ => return Err(DropReason::NotForServer),
        }
        match Packet::parse(request).map_err(|_| DropReason::Malformed)? {
            Packet::Client(message) => {
                let link = cx.link.ok_or(DropReason::UnknownLink)?;
                let request = ClientRequest::read(message)?;
                self.check(&request)?;
                let mut w = MessageWriter::new(reply);
                let sent = self.respond(&request, link, None, cx.now, &mut w, events)?;
                Ok(Answer {
                    len: w.finish()?,
                    to: Destination::Client,
                    sent,
                })
            }
            Packet::Relay(relay) => {
                let chain = relay.chain().map_err(|error| match error {
                    ParseError::RelayTooDeep => DropReason::HopLimit,
                    _ => DropReason::Malformed,
                })?;
                if chain.len() > HOP_COUNT_LIMIT {
                    return Err(DropReason::HopLimit);
                }
                let message = chain.message();
                *received = message.msg_type();
                if !matches!(
                    message.msg_type(),
                    MessageType::Solicit
                        | MessageType::Request
                        | MessageType::Confirm
                        | MessageType::Renew
                        | MessageType::Rebind
                        | MessageType::Release
                        | MessageType::Decline
                        | MessageType::InformationRequest
                ) {
                    return Err(DropReason::NotForServer);
                }
                let link = self.relay_link(&chain).ok_or(DropReason::UnknownLink)?;
                let request = ClientRequest::read(message)?;
                self.check(&request)?;
                let link_layer = client_link_layer(&chain);
                let to_source_port = relay
                    .options()
                    .find_raw(OptionCode::RelaySourcePort)
                    .map_err(|_| DropReason::Malformed)?
                    .is_some();
                let mut w = MessageWriter::new(reply);
                let mut marks: [Option<OptionMark>; HOP_COUNT_LIMIT] = Default::default();
                // RFC 9915 §19.3, in substance:
                // If the Relay-forward message includes an Interface-Id option, the server
                // MUST copy the Interface-Id option to the Relay-reply message.
                for (hop, mark) in chain.hops().zip(marks.iter_mut()) {
                    w.relay_header(
                        MessageType::RelayRepl,
                        hop.hop_count(),
                        hop.link_address(),
                        hop.peer_address(),
                    )?;
                    let interface_id = hop
                        .options()
                        .find_raw(OptionCode::InterfaceId)
                        .map_err(|_| DropReason::Malformed)?;
                    if let Some(id) = interface_id {
                        w.interface_id(id)?;
                    }
                    *mark = Some(w.begin_option(OptionCode::RelayMsg)?);
                }
                let sent = self.respond(&request, link, link_layer, cx.now, &mut w, events)?;
                for mark in marks.into_iter().rev().flatten() {
                    w.end_option(mark)?;
                }
                Ok(Answer {
                    len: w.finish()?,
                    to: Destination::Relay { to_source_port },
                    sent,
                })
            }
        }
    }

    /// The link of a relayed client: the innermost relay's Interface-Id or link-address, then
    /// the relays further out (RFC 9915 §13.1).
    fn relay_link(&self, chain: &RelayChain<'_>) -> Option<LinkId> {
        let mut hops: [Option<xdhcp6_proto::RelayMessage<'_>>; HOP_COUNT_LIMIT] =
            [None; HOP_COUNT_LIMIT];
        for (hop, slot) in chain.hops().zip(hops.iter_mut()) {
            *slot = Some(hop);
        }
        hops.iter().rev().flatten().find_map(|hop| {
            let interface_id = hop
                .options()
                .find_raw(OptionCode::InterfaceId)
                .ok()
                .flatten();
            self.config.link_for_relay(hop.link_address(), interface_id)
        })
    }

    /// The discard rules of RFC 9915 §16, checked before any lease is touched.
    fn check(&self, request: &ClientRequest<'_>) -> Result<(), DropReason> {
        let ours = |id: &[u8]| id == self.config.server.duid.as_slice();
        match request.msg_type {
            // RFC 9915 §16.2, in substance:
            // Servers MUST discard any Solicit messages that do not include a Client
            // Identifier option or that do include a Server Identifier option.
            MessageType::Solicit | MessageType::Confirm | MessageType::Rebind => {
                if request.client_id.is_none() {
                    return Err(DropReason::MissingClientId);
                }
                if request.server_id.is_some() {
                    return Err(DropReason::UnexpectedServerId);
                }
            }
            // RFC 9915 §16.4, in substance:
            // Servers MUST discard any received Request message that meets any of the
            // following conditions: the message does not include a Server Identifier
            // option; the contents of the Server Identifier option do not match the
            // server's DUID; the message does not include a Client Identifier option.
            MessageType::Request
            | MessageType::Renew
            | MessageType::Release
            | MessageType::Decline => {
                let server_id = request.server_id.ok_or(DropReason::MissingServerId)?;
                if !ours(server_id) {
                    return Err(DropReason::WrongServerId);
                }
                if request.client_id.is_none() {
                    return Err(DropReason::MissingClientId);
                }
            }
            // RFC 9915 §16.12, in substance:
            // Servers MUST discard any received Information-request message that meets any
            // of the following conditions: the message includes a Server Identifier option,
            // and the DUID in the option does not match the server's DUID; the message
            // includes an IA option.
            MessageType::InformationRequest => {
                if request.server_id.is_some_and(|id| !ours(id)) {
                    return Err(DropReason::WrongServerId);
                }
                if request.has_ia {
                    return Err(DropReason::IaInInformationRequest);
                }
            }
            _ => return Err(DropReason::NotForServer),
        }
        Ok(())
    }

    /// Writes the client message of the reply (after any Relay-reply headers); returns its
    /// type.
    fn respond(
        &self,
        request: &ClientRequest<'_>,
        link_id: LinkId,
        link_layer: Option<(u16, &[u8])>,
        now: u32,
        w: &mut MessageWriter<'_>,
        events: &mut impl EventSink,
    ) -> Result<MessageType, DropReason> {
        let link = self.config.link(link_id);
        let client = Client {
            duid: request.client_id.unwrap_or_default(),
            link: link_id,
            link_layer,
        };
        let (reply_type, how) = match request.msg_type {
            // RFC 9915 §18.3.1, in substance:
            // If the client has included a Rapid Commit option and the server has been
            // configured to respond with committed address assignments and other resources,
            // responds to the Solicit with a Reply message.
            MessageType::Solicit if request.rapid_commit && link.rapid_commit => {
                (MessageType::Reply, ClaimAs::Bound)
            }
            MessageType::Solicit => (
                MessageType::Advertise,
                ClaimAs::Offered { hold: OFFER_HOLD },
            ),
            _ => (MessageType::Reply, ClaimAs::Bound),
        };
        w.client_header(reply_type, request.xid)?;
        w.server_id(&self.config.server.duid)?;
        if let Some(client_id) = request.client_id {
            w.client_id(client_id)?;
        }

        match request.msg_type {
            MessageType::Solicit | MessageType::Request => {
                if reply_type == MessageType::Reply && request.msg_type == MessageType::Solicit {
                    w.rapid_commit()?;
                }
                if reply_type == MessageType::Advertise {
                    // RFC 9915 §18.3.9, in substance:
                    // The server MAY include a Preference option to indicate the preference
                    // of the server.
                    w.preference(self.config.server.preference)?;
                }
                for ia in request.ia_na.iter() {
                    self.assign_na(&client, link, ia, how, request.msg_type, now, w, events)?;
                }
                for ia in request.ia_pd.iter() {
                    self.assign_pd(&client, link, ia, how, request, now, w, events)?;
                }
                self.write_fqdn(request, w)?;
                self.write_options(request, link, w)?;
            }
            MessageType::Renew | MessageType::Rebind => {
                for ia in request.ia_na.iter() {
                    self.extend_na(&client, link, ia, request.msg_type, now, w, events)?;
                }
                for ia in request.ia_pd.iter() {
                    self.extend_pd(&client, link, ia, request, now, w, events)?;
                }
                self.write_fqdn(request, w)?;
                self.write_options(request, link, w)?;
            }
            MessageType::Release | MessageType::Decline => {
                for ia in request.ia_na.iter() {
                    let addresses = ia_addresses(ia).map(u128::from);
                    self.give_back_ia(
                        &client,
                        IaKind::Na,
                        ia.iaid(),
                        addresses,
                        request,
                        now,
                        w,
                        events,
                    )?;
                }
                for ia in request.ia_pd.iter() {
                    let prefixes = ia_prefixes(ia).map(|(prefix, _)| u128::from(prefix));
                    self.give_back_ia(
                        &client,
                        IaKind::Pd,
                        ia.iaid(),
                        prefixes,
                        request,
                        now,
                        w,
                        events,
                    )?;
                }
                // RFC 9915 §18.3.7, in substance:
                // the server generates a Reply message ... includes a Status Code option
                // with the value Success
                let text = if request.msg_type == MessageType::Release {
                    "released"
                } else {
                    "declined"
                };
                w.status_code(StatusCode::Success, text)?;
            }
            MessageType::Confirm => {
                // RFC 9915 §18.3.3, in substance:
                // If all of the addresses in the Confirm message pass this test, the server
                // returns a status of Success. If any of the addresses do not pass this test,
                // the server returns a status of NotOnLink. If the server is unable to perform
                // this test ... or there were no addresses in any of the IAs sent by the
                // client, the server MUST NOT send a reply to the client.
                let mut any = false;
                let mut on_link = true;
                for ia in request.ia_na.iter() {
                    for addr in ia_addresses(ia) {
                        any = true;
                        on_link &= on_link_na(link, addr);
                    }
                }
                if !any {
                    return Err(DropReason::NothingToConfirm);
                }
                if on_link {
                    w.status_code(StatusCode::Success, "all addresses are on link")?;
                } else {
                    w.status_code(StatusCode::NotOnLink, "addresses not on this link")?;
                }
            }
            MessageType::InformationRequest => {
                self.write_options(request, link, w)?;
            }
            _ => return Err(DropReason::NotForServer),
        }
        Ok(reply_type)
    }

    /// Solicit and Request: the client's current lease of this IA, its reservation, or a new
    /// address by split-prefix hashing.
    #[allow(clippy::too_many_arguments)]
    fn assign_na(
        &self,
        client: &Client<'_>,
        link: &Link,
        ia: &IaNa<'_>,
        how: ClaimAs,
        msg_type: MessageType,
        now: u32,
        w: &mut MessageWriter<'_>,
        events: &mut impl EventSink,
    ) -> Result<(), DropReason> {
        let timers = link.timers;
        let key = self.key(client, ia.iaid(), IaKind::Na);
        // RFC 9915 §18.3.2, in substance:
        // If the server finds that the prefix on one or more IP addresses in any IA in the
        // message from the client is not appropriate for the link to which the client is
        // connected, the server MUST return the IA to the client with a Status Code option
        // with the value NotOnLink.
        if msg_type == MessageType::Request && ia_addresses(ia).any(|addr| !on_link_na(link, addr))
        {
            let mark = w.begin_ia_na(ia.iaid(), 0, 0)?;
            w.status_code(StatusCode::NotOnLink, "address not on this link")?;
            return Ok(w.end_option(mark)?);
        }
        let lease = self.claim_na(client, &key, how, now, events);
        let mark = w.begin_ia_na(ia.iaid(), timers.t1, timers.t2)?;
        match lease {
            Some(lease) => {
                w.ia_address(lease.ip(), lease.lifetimes.preferred, lease.lifetimes.valid)?
            }
            // RFC 9915 §18.3.2, in substance:
            // If the server cannot assign any addresses to an IA in the message from the
            // client, the server MUST include the IA in the Reply message with no addresses
            // in the IA and a Status Code option in the IA containing status code
            // NoAddrsAvail.
            None => w.status_code(StatusCode::NoAddrsAvail, "no addresses available")?,
        }
        Ok(w.end_option(mark)?)
    }

    /// Claims the client's address for this IA: kept, reserved, or newly hashed.
    fn claim_na(
        &self,
        client: &Client<'_>,
        key: &ClientKey<'_>,
        how: ClaimAs,
        now: u32,
        events: &mut impl EventSink,
    ) -> Option<Lease> {
        let link = self.config.link(client.link);
        let lifetimes = lifetimes_of(link);
        let pools = &self.pools[client.link.index()];
        let served = |lease: &Lease| {
            pools
                .na
                .iter()
                .any(|range| range.prefix().contains(lease.ip()))
        };
        if let Some(lease) = self
            .table
            .claim_current(key, how, lifetimes, now, served, events)
        {
            return Some(lease);
        }
        if let Some(addr) = self.reservation(client).and_then(|(addr, _)| addr) {
            return self
                .table
                .claim(key, u128::from(addr), 128, how, lifetimes, now, events)
                .ok();
        }
        pools.na.iter().find_map(|range| {
            range
                .allocate(key.alloc_key(), |addr| {
                    self.table
                        .claim(key, addr, 128, how, lifetimes, now, events)
                        .ok()
                })
                .ok()
                .map(|(_, lease)| lease)
        })
    }

    /// Solicit and Request for IA_PD: as [`Self::assign_na`], for delegated prefixes.
    #[allow(clippy::too_many_arguments)]
    fn assign_pd(
        &self,
        client: &Client<'_>,
        link: &Link,
        ia: &IaPd<'_>,
        how: ClaimAs,
        request: &ClientRequest<'_>,
        now: u32,
        w: &mut MessageWriter<'_>,
        events: &mut impl EventSink,
    ) -> Result<(), DropReason> {
        let timers = link.timers;
        let key = self.key(client, ia.iaid(), IaKind::Pd);
        let lease = self.claim_pd(client, &key, how, now, events);
        let mark = w.begin_ia_pd(ia.iaid(), timers.t1, timers.t2)?;
        match lease {
            Some(lease) => self.write_prefix(client.link, &lease, request, w)?,
            // RFC 9915 §18.3.2, in substance:
            // If the server cannot assign any delegated prefixes to an IA in the message
            // from the client, the server MUST include the IA in the Reply message with no
            // delegated prefixes in the IA and a Status Code option in the IA containing
            // status code NoPrefixAvail.
            None => w.status_code(StatusCode::NoPrefixAvail, "no prefixes available")?,
        }
        Ok(w.end_option(mark)?)
    }

    /// Claims the client's delegated prefix for this IA: kept, reserved, or newly hashed.
    fn claim_pd(
        &self,
        client: &Client<'_>,
        key: &ClientKey<'_>,
        how: ClaimAs,
        now: u32,
        events: &mut impl EventSink,
    ) -> Option<Lease> {
        let link = self.config.link(client.link);
        let lifetimes = lifetimes_of(link);
        let pools = &self.pools[client.link.index()];
        let served = |lease: &Lease| {
            pools.pd.iter().any(|(range, _)| {
                range.prefix().contains(lease.ip()) && range.delegated_len() == lease.prefix_len
            })
        };
        if let Some(lease) = self
            .table
            .claim_current(key, how, lifetimes, now, served, events)
        {
            return Some(lease);
        }
        if let Some(prefix) = self.reservation(client).and_then(|(_, prefix)| prefix) {
            return self
                .table
                .claim(
                    key,
                    prefix.bits(),
                    prefix.len(),
                    how,
                    lifetimes,
                    now,
                    events,
                )
                .ok();
        }
        pools.pd.iter().find_map(|(range, _)| {
            range
                .allocate(key.alloc_key(), |bits| {
                    self.table
                        .claim(
                            key,
                            bits,
                            range.delegated_len(),
                            how,
                            lifetimes,
                            now,
                            events,
                        )
                        .ok()
                })
                .ok()
                .map(|(_, lease)| lease)
        })
    }

    /// Renew and Rebind for an IA_NA (RFC 9915 §18.3.4, §18.3.5), with the RFC 6853 models.
    #[allow(clippy::too_many_arguments)]
    fn extend_na(
        &self,
        client: &Client<'_>,
        link: &Link,
        ia: &IaNa<'_>,
        msg_type: MessageType,
        now: u32,
        w: &mut MessageWriter<'_>,
        events: &mut impl EventSink,
    ) -> Result<(), DropReason> {
        let timers = link.timers;
        let lifetimes = lifetimes_of(link);
        let key = self.key(client, ia.iaid(), IaKind::Na);
        let pools = &self.pools[client.link.index()];

        // The binding this server has for the IA, extended if it can be.
        // Only a binding counts: an address that was merely advertised was never the client's.
        let bound_here = |lease: &Lease| {
            lease.state == LeaseState::Bound
                && pools
                    .na
                    .iter()
                    .any(|range| range.prefix().contains(lease.ip()))
        };
        let mut kept =
            self.table
                .claim_current(&key, ClaimAs::Bound, lifetimes, now, bound_here, events);
        if kept.is_none() && msg_type == MessageType::Rebind {
            // RFC 9915 §18.3.5, in substance:
            // If the server cannot find a client entry for the IA and the server determines
            // that the addresses in the IA are appropriate for the link to which the
            // client's interface is attached according to the server's explicit
            // configuration information, the server MAY send a Reply message to the client
            // containing the client's IA, with the lifetimes for the addresses in the IA
            // set to 0 ... or extend them.
            // An address from our own slice (the identical-prefix model, or a binding this
            // server lost) is taken back for the client if nobody else holds it; one from
            // another server's slice only when `rebind-foreign = "extend"`.
            kept = ia_addresses(ia).find_map(|addr| {
                let bits = u128::from(addr);
                // Reserved and anycast addresses of our ranges go to nobody by Rebind.
                if pools.na.iter().any(|range| range.is_reserved(bits)) {
                    return None;
                }
                let ours = pools.na.iter().any(|range| range.contains(bits));
                let foreign = !ours && on_link_na(link, addr);
                let extend =
                    ours || (foreign && self.config.server.rebind_foreign == RebindForeign::Extend);
                if !extend {
                    return None;
                }
                let lease = self
                    .table
                    .claim(&key, bits, 128, ClaimAs::Bound, lifetimes, now, events)
                    .ok()?;
                self.mark(&lease, true);
                Some(lease)
            });
            if kept.is_none() {
                // A fresh binding from this server's slice, next to the old addresses with
                // lifetimes 0.
                kept = self.claim_na(client, &key, ClaimAs::Bound, now, events);
            }
        }

        let mark = w.begin_ia_na(ia.iaid(), timers.t1, timers.t2)?;
        if let Some(lease) = kept {
            w.ia_address(lease.ip(), lease.lifetimes.preferred, lease.lifetimes.valid)?;
        }
        // RFC 9915 §18.3.4, in substance:
        // If the server finds that any of the addresses in the IA are not appropriate for
        // the link to which the client is attached, the server returns the address to the
        // client with lifetimes of 0.
        for addr in ia_addresses(ia) {
            let same = kept.is_some_and(|lease| lease.ip() == addr);
            if !same && zero_lifetimes(kept.is_some(), on_link_na(link, addr), msg_type) {
                w.ia_address(addr, 0, 0)?;
            }
        }
        if kept.is_none() {
            not_extended(w, msg_type, IaKind::Na)?;
        }
        Ok(w.end_option(mark)?)
    }

    /// Renew and Rebind for an IA_PD: as [`Self::extend_na`], for delegated prefixes.
    #[allow(clippy::too_many_arguments)]
    fn extend_pd(
        &self,
        client: &Client<'_>,
        link: &Link,
        ia: &IaPd<'_>,
        request: &ClientRequest<'_>,
        now: u32,
        w: &mut MessageWriter<'_>,
        events: &mut impl EventSink,
    ) -> Result<(), DropReason> {
        let timers = link.timers;
        let lifetimes = lifetimes_of(link);
        let key = self.key(client, ia.iaid(), IaKind::Pd);
        let pools = &self.pools[client.link.index()];
        let msg_type = request.msg_type;
        let pool_of = |bits: u128| {
            pools
                .pd
                .iter()
                .find(|(range, _)| range.prefix().contains(bits.into()))
        };

        let bound_here = |lease: &Lease| {
            lease.state == LeaseState::Bound
                && pool_of(lease.addr)
                    .is_some_and(|(range, _)| range.delegated_len() == lease.prefix_len)
        };
        let mut kept =
            self.table
                .claim_current(&key, ClaimAs::Bound, lifetimes, now, bound_here, events);
        if kept.is_none() && msg_type == MessageType::Rebind {
            kept = ia_prefixes(ia).find_map(|(prefix, len)| {
                let bits = u128::from(prefix);
                let (range, _) = pool_of(bits)?;
                if len != range.delegated_len() || range.is_reserved(bits) {
                    return None;
                }
                let ours = range.contains(bits);
                if !ours && self.config.server.rebind_foreign != RebindForeign::Extend {
                    return None;
                }
                let lease = self
                    .table
                    .claim(&key, bits, len, ClaimAs::Bound, lifetimes, now, events)
                    .ok()?;
                self.mark(&lease, true);
                Some(lease)
            });
            if kept.is_none() {
                kept = self.claim_pd(client, &key, ClaimAs::Bound, now, events);
            }
        }

        let mark = w.begin_ia_pd(ia.iaid(), timers.t1, timers.t2)?;
        if let Some(lease) = &kept {
            self.write_prefix(client.link, lease, request, w)?;
        }
        // RFC 9915 §18.3.4, in substance:
        // If the server finds that any of the delegated prefixes in the IA are not
        // appropriate for the link to which the client is attached, the server returns
        // the delegated prefix to the client with lifetimes of 0.
        for (prefix, len) in ia_prefixes(ia) {
            let same = kept.is_some_and(|lease| lease.ip() == prefix && lease.prefix_len == len);
            let on_link = pool_of(u128::from(prefix)).is_some();
            if !same && zero_lifetimes(kept.is_some(), on_link, msg_type) {
                w.ia_prefix(0, 0, len, prefix)?;
            }
        }
        if kept.is_none() {
            not_extended(w, msg_type, IaKind::Pd)?;
        }
        Ok(w.end_option(mark)?)
    }

    /// Release or Decline the listed addresses (or prefixes) of one IA.
    #[allow(clippy::too_many_arguments)]
    fn give_back_ia(
        &self,
        client: &Client<'_>,
        kind: IaKind,
        iaid: u32,
        listed: impl Iterator<Item = u128>,
        request: &ClientRequest<'_>,
        now: u32,
        w: &mut MessageWriter<'_>,
        events: &mut impl EventSink,
    ) -> Result<(), DropReason> {
        let key = self.key(client, iaid, kind);
        let had_binding = self.table.find_client(&key).is_some();
        let probation = self.config.server.decline_probation;
        for bits in listed {
            // Addresses not assigned to the IA are ignored (RFC 9915 §18.3.7, §18.3.8).
            if request.msg_type == MessageType::Release {
                // RFC 9915 §18.3.7, in substance:
                // The server ... deletes the addresses and delegated prefixes from the IAs
                let _ = self.table.release(&key, bits, now, events);
            } else {
                // RFC 9915 §18.3.8, in substance:
                // the server ... marks the addresses in the IAs as declined so that those
                // addresses are not assigned to other clients
                let _ = self.table.decline(&key, bits, probation, now, events);
            }
        }
        if !had_binding {
            // RFC 9915 §18.3.7, in substance:
            // For each IA in the Release message for which the server has no binding
            // information, the server adds an IA option using the IAID from the Release
            // message and includes a Status Code option with the value NoBinding in the IA
            // option.
            let code = if kind == IaKind::Na {
                OptionCode::IaNa
            } else {
                OptionCode::IaPd
            };
            no_binding(w, code, iaid)?;
        }
        Ok(())
    }

    /// An IA Prefix option for `lease`, with Prefix Exclude when the pool has one and the
    /// client asked for it (RFC 6603 §4.2).
    fn write_prefix(
        &self,
        link: LinkId,
        lease: &Lease,
        request: &ClientRequest<'_>,
        w: &mut MessageWriter<'_>,
    ) -> Result<(), DropReason> {
        let exclude = self.pools[link.index()]
            .pd
            .iter()
            .find(|(range, _)| range.prefix().contains(lease.ip()))
            .and_then(|(_, exclude)| *exclude)
            .filter(|_| request.requested(OptionCode::PdExclude))
            .and_then(|exclude| {
                exclude.prefix_in(Prefix::containing(lease.ip(), lease.prefix_len))
            });
        let Lifetimes { preferred, valid } = lease.lifetimes;
        match exclude {
            Some(excluded) => {
                let mark = w.begin_ia_prefix(preferred, valid, lease.prefix_len, lease.ip())?;
                w.pd_exclude(lease.prefix_len, excluded.addr(), excluded.len())?;
                w.end_option(mark)?;
            }
            None => w.ia_prefix(preferred, valid, lease.prefix_len, lease.ip())?,
        }
        Ok(())
    }

    /// The configured options the client asked for in its ORO (RFC 9915 §18.3, §21.7).
    fn write_options(
        &self,
        request: &ClientRequest<'_>,
        link: &Link,
        w: &mut MessageWriter<'_>,
    ) -> Result<(), DropReason> {
        let Some(oro) = request.oro else {
            return Ok(());
        };
        for option in &link.options.encoded {
            let code = OptionCode::from(option.code);
            // RFC 9915 §21.23, in substance:
            // The information refresh time option ... MUST only be used in Reply messages
            // in response to Information-request messages.
            if code == OptionCode::InformationRefreshTime
                && request.msg_type != MessageType::InformationRequest
            {
                continue;
            }
            if oro.contains(code) {
                w.raw(option.code, &option.body)?;
            }
        }
        Ok(())
    }

    /// Echoes the Client FQDN option: this server does not update DNS itself yet, so it sets
    /// N and, when the client asked the server to update, O (RFC 4704 §5.1, §6.2).
    fn write_fqdn(
        &self,
        request: &ClientRequest<'_>,
        w: &mut MessageWriter<'_>,
    ) -> Result<(), DropReason> {
        let Some((flags, name)) = request.fqdn else {
            return Ok(());
        };
        const S: u8 = 0b001;
        const O: u8 = 0b010;
        const N: u8 = 0b100;
        let flags = if flags & S != 0 { N | O } else { N };
        let mark = w.begin_option(OptionCode::ClientFqdn)?;
        w.put_bytes(&[flags])?;
        w.put_bytes(name)?;
        Ok(w.end_option(mark)?)
    }

    fn key<'a>(&self, client: &Client<'a>, iaid: u32, kind: IaKind) -> ClientKey<'a> {
        self.table
            .client_key(client.duid, iaid, kind, client.link.0)
    }

    /// The reserved address and prefix of a client on its link, by DUID or by link-layer
    /// address (RFC 6939).
    fn reservation(&self, client: &Client<'_>) -> Option<(Option<Ipv6Addr>, Option<Prefix>)> {
        if self.config.reservations.is_empty() {
            // The common case, without hashing the DUID.
            return None;
        }
        let by_duid = self.config.reservation_for_duid(client.duid);
        let by_link_layer = || {
            let (hw_type, address) = client.link_layer.or_else(|| duid_link_layer(client.duid))?;
            self.config.reservation_for_link_layer(hw_type, address)
        };
        let reservation = by_duid
            .filter(|reservation| reservation.applies_to(client.link))
            .or_else(|| {
                by_link_layer().filter(|reservation| reservation.applies_to(client.link))
            })?;
        Some((reservation.address, reservation.prefix))
    }

    /// Marks a lease's address taken or free in its range's bitmap.
    fn mark(&self, lease: &Lease, taken: bool) {
        let Some(pools) = self.pools.get(usize::from(lease.link)) else {
            return;
        };
        match lease.kind {
            IaKind::Na => {
                if let Some(range) = pools.na.iter().find(|range| range.contains(lease.addr)) {
                    if taken {
                        range.occupy(lease.addr);
                    } else {
                        range.release(lease.addr);
                    }
                }
            }
            IaKind::Pd => {
                if let Some((range, _)) = pools
                    .pd
                    .iter()
                    .find(|(range, _)| range.contains(lease.addr))
                {
                    if taken {
                        range.occupy(lease.addr);
                    } else {
                        range.release(lease.addr);
                    }
                }
            }
        }
    }

    /// Each owned range's bindings and, where it keeps a bitmap, free space: for metrics.
    ///
    /// Walks the whole table, one shard lock at a time: call it per scrape, not per packet.
    pub fn pool_usage(&self) -> Vec<PoolUsage> {
        let mut usage = Vec::new();
        // Where each link's ranges start in `usage`.
        let mut first = Vec::with_capacity(self.pools.len());
        for (link, pools) in self.config.links.iter().zip(&self.pools) {
            first.push(usage.len());
            for range in &pools.na {
                usage.push(PoolUsage {
                    link: link.name.clone(),
                    kind: IaKind::Na,
                    prefix: range.prefix(),
                    range: range.range(),
                    free: range.free_count(),
                    bound: 0,
                });
            }
            for (range, _) in &pools.pd {
                usage.push(PoolUsage {
                    link: link.name.clone(),
                    kind: IaKind::Pd,
                    prefix: range.prefix(),
                    range: range.range(),
                    free: range.free_count(),
                    bound: 0,
                });
            }
        }
        // One pass over the table (a shard lock at a time) counts the bindings of each slice:
        // the number that stops growing when a peer's slice no longer gets Rebinds.
        for shard in 0..self.table.shard_count() {
            self.table.iter_shard(shard, |record| {
                let lease = &record.lease;
                if lease.state != LeaseState::Bound {
                    return;
                }
                let link = usize::from(lease.link);
                let (Some(pools), Some(&start)) = (self.pools.get(link), first.get(link)) else {
                    return;
                };
                let index = match lease.kind {
                    IaKind::Na => pools.na.iter().position(|range| range.contains(lease.addr)),
                    IaKind::Pd => pools
                        .pd
                        .iter()
                        .position(|(range, _)| range.contains(lease.addr))
                        .map(|index| pools.na.len() + index),
                };
                if let Some(pool) = index.and_then(|index| usage.get_mut(start + index)) {
                    pool.bound += 1;
                }
            });
        }
        usage
    }
}

/// The state of one owned range, for metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolUsage {
    /// The link's name.
    pub link: String,
    /// Addresses or delegated prefixes.
    pub kind: IaKind,
    /// The pool prefix.
    pub prefix: Prefix,
    /// The slice this server owns.
    pub range: Prefix,
    /// Free addresses or prefixes, where the range keeps a bitmap.
    pub free: Option<u64>,
    /// Bindings in the slice (bound leases; offers and declined addresses not counted).
    pub bound: u64,
}

/// Keeps the allocators' bitmaps in step with the table, then passes events on.
struct Tracking<'e, S> {
    engine: &'e Engine,
    inner: &'e mut S,
}

impl<S: EventSink> EventSink for Tracking<'_, S> {
    fn emit(&mut self, event: LeaseEvent) {
        match event.kind {
            EventKind::Released | EventKind::Expired | EventKind::ProbationEnded => {
                self.engine.mark(&event.record.lease, false);
            }
            EventKind::Offered | EventKind::Bound | EventKind::Renewed | EventKind::Declined => {}
        }
        self.inner.emit(event);
    }
}

/// A reply written: its length, where it goes, and the client reply's type.
struct Answer {
    len: usize,
    to: Destination,
    sent: MessageType,
}

/// Who is asking: DUID, link, and the link-layer address a relay reported.
struct Client<'a> {
    duid: &'a [u8],
    link: LinkId,
    link_layer: Option<(u16, &'a [u8])>,
}

/// A fixed-capacity list, so reading a request never allocates.
#[derive(Clone, Copy)]
struct List<T: Copy, const N: usize> {
    items: [Option<T>; N],
    len: usize,
}

impl<T: Copy, const N: usize> List<T, N> {
    fn new() -> Self {
        Self {
            items: [None; N],
            len: 0,
        }
    }

    /// Appends `item`; false when full.
    fn push(&mut self, item: T) -> bool {
        let Some(slot) = self.items.get_mut(self.len) else {
            return false;
        };
        *slot = Some(item);
        self.len += 1;
        true
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter().take(self.len).flatten()
    }
}

/// What the engine needs of a client message, read in one pass over its options.
struct ClientRequest<'a> {
    msg_type: MessageType,
    xid: u32,
    client_id: Option<&'a [u8]>,
    server_id: Option<&'a [u8]>,
    ia_na: List<IaNa<'a>, MAX_IAS>,
    ia_pd: List<IaPd<'a>, MAX_IAS>,
    has_ia: bool,
    oro: Option<Oro<'a>>,
    rapid_commit: bool,
    fqdn: Option<(u8, &'a [u8])>,
}

impl<'a> ClientRequest<'a> {
    /// Client ID, Server ID, IA_NA, IA_TA, ORO, Rapid Commit, IA_PD, Client FQDN.
    const ACTED_ON: [u16; 8] = [1, 2, 3, 4, 6, 14, 25, 39];

    fn read(message: Message<'a>) -> Result<Self, DropReason> {
        let mut request = ClientRequest {
            msg_type: message.msg_type(),
            xid: message.transaction_id(),
            client_id: None,
            server_id: None,
            ia_na: List::new(),
            ia_pd: List::new(),
            has_ia: false,
            oro: None,
            rapid_commit: false,
            fqdn: None,
        };
        // Only the options the server acts on are typed (and must be well-formed); the framing
        // of every option is checked.
        for raw in message.options().raw() {
            let raw = raw.map_err(|_| DropReason::Malformed)?;
            if !ClientRequest::ACTED_ON.contains(&raw.code) {
                continue;
            }
            match raw.parse().map_err(|_| DropReason::Malformed)? {
                DhcpOption::ClientId(duid) => request.client_id = Some(duid.as_bytes()),
                DhcpOption::ServerId(duid) => request.server_id = Some(duid.as_bytes()),
                DhcpOption::IaNa(ia) => {
                    request.has_ia = true;
                    // One answer per IAID: a repeated IA is the client's mistake.
                    if request.ia_na.iter().all(|other| other.iaid() != ia.iaid()) {
                        request.ia_na.push(ia);
                    }
                }
                DhcpOption::IaPd(ia) => {
                    request.has_ia = true;
                    if request.ia_pd.iter().all(|other| other.iaid() != ia.iaid()) {
                        request.ia_pd.push(ia);
                    }
                }
                DhcpOption::IaTa(_) => request.has_ia = true,
                DhcpOption::Oro(oro) => request.oro = Some(oro),
                DhcpOption::RapidCommit => request.rapid_commit = true,
                DhcpOption::ClientFqdn { flags, name } => {
                    request.fqdn = Some((flags, name.as_bytes()));
                }
                _ => {}
            }
        }
        Ok(request)
    }

    fn requested(&self, code: OptionCode) -> bool {
        self.oro.is_some_and(|oro| oro.contains(code))
    }
}

/// The addresses a client listed in an IA_NA.
fn ia_addresses<'a>(ia: &IaNa<'a>) -> impl Iterator<Item = Ipv6Addr> + 'a {
    ia.options()
        .map_while(Result::ok)
        .filter_map(|option| match option {
            DhcpOption::IaAddr(addr) => Some(addr.addr()),
            _ => None,
        })
}

/// The prefixes (and lengths) a client listed in an IA_PD.
fn ia_prefixes<'a>(ia: &IaPd<'a>) -> impl Iterator<Item = (Ipv6Addr, u8)> + 'a {
    ia.options()
        .map_while(Result::ok)
        .filter_map(|option| match option {
            DhcpOption::IaPrefix(prefix) => Some((prefix.prefix(), prefix.prefix_len())),
            _ => None,
        })
}

/// Whether `addr` lies in one of the link's address pool prefixes.
fn on_link_na(link: &Link, addr: Ipv6Addr) -> bool {
    link.na_pools.iter().any(|pool| pool.prefix.contains(addr))
}

fn lifetimes_of(link: &Link) -> Lifetimes {
    Lifetimes {
        preferred: link.timers.preferred,
        valid: link.timers.valid,
    }
}

/// Whether an address or prefix the client listed, other than the one it keeps, goes back with
/// lifetimes 0 (RFC 9915 §18.3.4, §18.3.5): always next to a binding, else when it is not on
/// the link, and on Rebind, where this server cannot extend it.
fn zero_lifetimes(kept: bool, on_link: bool, msg_type: MessageType) -> bool {
    kept || !on_link || msg_type == MessageType::Rebind
}

/// The status of an IA that Renew or Rebind left without a binding.
fn not_extended(
    w: &mut MessageWriter<'_>,
    msg_type: MessageType,
    kind: IaKind,
) -> Result<(), DropReason> {
    if msg_type == MessageType::Renew {
        // RFC 9915 §18.3.4, in substance: if the server cannot find a client entry for the IA,
        // it returns the IA with no addresses and a Status Code option set to NoBinding.
        w.status_code(StatusCode::NoBinding, "no binding for this IA")?;
    } else if kind == IaKind::Na {
        w.status_code(StatusCode::NoAddrsAvail, "no addresses available")?;
    } else {
        w.status_code(StatusCode::NoPrefixAvail, "no prefixes available")?;
    }
    Ok(())
}

/// An IA with a NoBinding status (Release, Decline of something the server does not hold).
fn no_binding(w: &mut MessageWriter<'_>, code: OptionCode, iaid: u32) -> Result<(), DropReason> {
    let mark = if code == OptionCode::IaNa {
        w.begin_ia_na(iaid, 0, 0)?
    } else {
        w.begin_ia_pd(iaid, 0, 0)?
    };
    w.status_code(StatusCode::NoBinding, "no binding for this IA")?;
    Ok(w.end_option(mark)?)
}

/// The Client Link-Layer Address (RFC 6939) the innermost relay reported.
fn client_link_layer<'a>(chain: &RelayChain<'a>) -> Option<(u16, &'a [u8])> {
    chain
        .innermost()
        .options()
        .map_while(Result::ok)
        .find_map(|option| match option {
            DhcpOption::ClientLinkLayerAddr { hw_type, addr } => Some((hw_type, addr)),
            _ => None,
        })
}

/// The link-layer address inside a DUID-LLT or DUID-LL.
fn duid_link_layer(duid: &[u8]) -> Option<(u16, &[u8])> {
    let kind = u16::from_be_bytes([*duid.first()?, *duid.get(1)?]);
    let hw_type = u16::from_be_bytes([*duid.get(2)?, *duid.get(3)?]);
    match kind {
        1 => Some((hw_type, duid.get(8..)?)),
        3 => Some((hw_type, duid.get(4..)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_type_looks_through_relays() {
        assert_eq!(received_type(&[1, 0, 0, 0]), MessageType::Solicit);
        assert_eq!(received_type(&[]), MessageType::Unknown(0));
        // Relay-forward, hop 0, link and peer addresses, then an Interface-Id option and a
        // Relay Message option holding a Request.
        let mut relayed = vec![12, 0];
        relayed.extend_from_slice(&[0; 32]);
        relayed.extend_from_slice(&[0, 18, 0, 2, b'x', b'y']);
        relayed.extend_from_slice(&[0, 9, 0, 4, 3, 0, 0, 1]);
        assert_eq!(received_type(&relayed), MessageType::Request);
        // Two levels.
        let mut twice = vec![12, 1];
        twice.extend_from_slice(&[0; 32]);
        twice.extend_from_slice(&[0, 9]);
        twice.extend_from_slice(&(relayed.len() as u16).to_be_bytes());
        twice.extend_from_slice(&relayed);
        assert_eq!(received_type(&twice), MessageType::Request);
        // A relay message without option 9 counts as itself; truncated options do not panic.
        assert_eq!(received_type(&relayed[..40]), MessageType::RelayForw);
        for len in 0..twice.len() {
            let _ = received_type(&twice[..len]);
        }
    }
}
