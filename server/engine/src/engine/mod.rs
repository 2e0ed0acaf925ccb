//! The server: `Engine::handle` answers one DHCPv6 message, sans IO.
//!
//! Every datapath and every test drives the same entry point: the request's UDP payload, a
//! [`Context`] (the link the datapath received it on, whether it arrived at a multicast or a
//! unicast destination, and the time), a buffer for the reply and a sink for lease events.
//! Client mistakes are never errors: they become a reply with a status code, or
//! [`Outcome::Drop`] with a reason that the datapath counts.

mod batch;
mod bulk_leasequery;
mod discard;
mod ia;
mod leasequery;
mod limits;
mod outcome;
mod pools;
mod reconfigure;
mod reply;
mod request;
mod signals;

use std::net::Ipv6Addr;
use std::sync::{Arc, OnceLock, Weak};

use xdhcp6_proto::{
    MessageType, MessageWriter, OptionCode, OptionMark, Packet, ParseError, RelayChain,
    RelayMessage, StatusCode,
};

pub(crate) use self::batch::Lookahead;
pub use self::batch::{BatchItem, LOOKAHEAD};
pub use self::bulk_leasequery::{BulkAnswer, BulkResult, MAX_BULK_MESSAGE};
use self::ia::Exchange;
use self::leasequery::LeasequeryCounters;
pub use self::leasequery::{LeasequeryResult, MAX_REPORTED_LEASES};
use self::limits::{Limits, Origin};
pub use self::limits::{Peer, Refusal};
pub use self::outcome::{Destination, DropReason, Outcome, received_type};
use self::pools::LinkPools;
pub use self::pools::PoolUsage;
pub use self::reconfigure::{
    AGENT_PORT, ALGORITHM_HMAC_MD5, AUTH_BODY_LEN, CLIENT_PORT, INFO_HMAC_MD5, INFO_KEY,
    RDM_MONOTONIC, RECONFIGURE_KEY_PROTOCOL, ReconfigureError, ReconfigureKeys, ReconfigureResult,
    ReconfigureSent, ReconfigureType, SECRET_LEN, hmac_md5, verify_reconfigure,
};
use self::request::{
    Client, ClientRequest, RelayKeys, client_link_layer, relay_keys, relay_supplied,
};
use self::signals::ForeignRebinds;
use crate::config::{ClientKeys, Config, LinkId, UnknownLink};
use crate::table::{
    ClaimAs, EventKind, EventSink, IaKind, Lease, LeaseEvent, LeaseRecord, LeaseState, LeaseTable,
    RelayData, RestoreReport,
};

/// The most relay hops the server answers through (RFC 9915 §7.6 HOP_COUNT_LIMIT).
pub const HOP_COUNT_LIMIT: usize = 8;

/// IA_NA or IA_PD options of one kind served per message; further ones are answered with no
/// leases and a status (NoAddrsAvail, NoPrefixAvail, or NoBinding in a Release or Decline).
pub const MAX_IAS: usize = 8;

/// The hold an Advertise's lease reports (an Advertise reserves nothing in the table: the
/// Request claims the address).
pub const OFFER_HOLD: u32 = 60;

/// What the datapath tells the engine about a received message.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    /// The link of the interface (and VLAN) the message arrived on, from
    /// [`Engine::link_for_interface`]; `None` when that interface serves no link directly.
    /// Relayed messages are placed by their relay information instead.
    pub link: Option<LinkId>,
    /// Whether the datagram's IPv6 destination was a multicast group or one of the server's
    /// unicast addresses. Only a direct client message is judged by it: relay agents send
    /// Relay-forward messages to a unicast address.
    pub arrival: Arrival,
    /// The time, in seconds on the engine clock (Unix time).
    pub now: u32,
}

/// The kind of IPv6 destination address a message arrived at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arrival {
    /// A multicast group: All_DHCP_Relay_Agents_and_Servers (ff02::1:2) or All_DHCP_Servers
    /// (ff05::1:3).
    Multicast,
    /// One of the server's unicast addresses, link-local or global.
    Unicast,
}

impl Arrival {
    /// The arrival of a datagram sent to `destination`.
    pub fn of(destination: std::net::Ipv6Addr) -> Self {
        if destination.is_multicast() {
            Arrival::Multicast
        } else {
            Arrival::Unicast
        }
    }
}

/// The DHCPv6 server engine, shared by all workers.
#[derive(Debug)]
pub struct Engine {
    config: Arc<Config>,
    table: Arc<LeaseTable>,
    pools: Vec<LinkPools>,
    limits: Limits,
    foreign_rebinds: ForeignRebinds,
    leasequery: LeasequeryCounters,
    /// The reconfigure key secret and replay counter ([`Engine::with_reconfigure`]).
    reconfigure: Option<Arc<ReconfigureKeys>>,
    /// The engine that replaced this one ([`Engine::reloaded`]): units this one claims or
    /// frees while its last batches finish are marked in that one's bitmaps too.
    successor: OnceLock<Weak<Engine>>,
}

/// Why an engine could not be built from a configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
    /// A reload's configuration does not keep a running link at its id (build it with
    /// `Config::aligned_to`).
    #[error("link {link:?} is not at its running id {id} (align the configuration first)")]
    LinkMoved {
        /// The running link's name.
        link: String,
        /// Its id in the running configuration.
        id: u16,
    },
}

impl Engine {
    /// An engine serving `config` from `table`; the table outlives configuration reloads.
    pub fn new(config: Arc<Config>, table: Arc<LeaseTable>) -> Result<Self, EngineError> {
        if config.server.duid.is_empty() {
            return Err(EngineError::NoServerDuid);
        }
        let pools = config
            .links
            .iter()
            .map(|link| LinkPools::new(&config, link))
            .collect::<Result<_, _>>()?;
        let limits = Limits::new(&config);
        let foreign_rebinds = ForeignRebinds::new(config.links.len());
        let engine = Self {
            config,
            table,
            pools,
            limits,
            foreign_rebinds,
            leasequery: LeasequeryCounters::default(),
            reconfigure: None,
            successor: OnceLock::new(),
        };
        engine.recount();
        Ok(engine)
    }

    /// An engine serving `config` from this engine's table, to replace this one (a reload).
    ///
    /// `config` must keep every running link at its id: build it with
    /// [`Config::aligned_to`]`(engine.config())`. The pools whose definition did not change are
    /// taken over with their bitmaps and counters (the same objects, which this engine goes on
    /// updating until its last batch ends); new and changed pools are counted from the table.
    /// The limits' state is taken over too (see `limits`). From now on this engine marks the
    /// units it claims or frees in the new engine's bitmaps as well, so none is missed while
    /// workers move from one engine to the other.
    ///
    /// Leases of a link that went away stay in the table and expire on the timer; leases
    /// outside a range that shrank or moved are no longer served: a Renew or Rebind gets
    /// them with lifetimes 0 and a new binding from the new ranges (RFC 9915 §18.3.4,
    /// §18.3.5).
    pub fn reloaded(&self, config: Arc<Config>) -> Result<Arc<Engine>, EngineError> {
        if config.server.duid.is_empty() {
            return Err(EngineError::NoServerDuid);
        }
        for running in &self.config.links {
            if config.links.get(running.id.index()).map(|link| &link.name) != Some(&running.name) {
                return Err(EngineError::LinkMoved {
                    link: running.name.clone(),
                    id: running.id.0,
                });
            }
        }
        let mut pools = Vec::with_capacity(config.links.len());
        for link in &config.links {
            let mut own = LinkPools::new(&config, link)?;
            if let Some(running) = self.pools.get(link.id.index()) {
                own.adopt(running);
            }
            pools.push(own);
        }
        let limits = self.limits.reloaded(&config);
        let foreign_rebinds = self.foreign_rebinds.reloaded(config.links.len());
        let leasequery = self.leasequery.reloaded();
        let engine = Arc::new(Self {
            config,
            table: Arc::clone(&self.table),
            pools,
            limits,
            foreign_rebinds,
            leasequery,
            reconfigure: self.reconfigure.clone(),
            successor: OnceLock::new(),
        });
        // Hand over before counting: a unit this engine claims or frees from here on is
        // marked in the new one's bitmaps whether or not the pass below saw it.
        let _ = self.successor.set(Arc::downgrade(&engine));
        engine.seed_fresh_pools();
        Ok(engine)
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

    /// The link served directly on `interface` for a frame with VLAN ids `vlans` (outermost
    /// first, the whole stack), for [`Context::link`].
    pub fn link_for_vlans(&self, interface: &str, vlans: &[u16]) -> Option<LinkId> {
        self.config.link_for_vlans(interface, vlans)
    }

    /// Whether `request` may be answered as far as relay agents go: anything but a
    /// Relay-forward, or a Relay-forward that arrived where `[server] relay-interfaces` allows
    /// (`relays_here`: [`Config::relays_on`] for the receiving interface) from a source
    /// `relay-sources` allows. Datapaths drop the rest as
    /// [`DropReason::RelayNotAllowed`] before calling [`Engine::handle`].
    pub fn admits_relay(&self, relays_here: bool, request: &[u8], source: Ipv6Addr) -> bool {
        if request.first() != Some(&u8::from(MessageType::RelayForw)) {
            return true;
        }
        relays_here && self.config.relay_source_allowed(source)
    }

    /// Loads leases back (journal replay) and marks their addresses taken in the allocators.
    pub fn restore(&self, records: impl IntoIterator<Item = LeaseRecord>) -> RestoreReport {
        let records: Vec<LeaseRecord> = records.into_iter().collect();
        let report = self.table.restore(records.iter().cloned());
        for record in &records {
            self.mark(&record.lease, true);
        }
        self.recount();
        report
    }

    /// Expires every lease and ends every probation due by `now`: the work is in proportion to
    /// what ends (the table's expiry index), so that a call once a second keeps every lease
    /// within a second of its end.
    pub fn handle_timeout(&self, now: u32, events: &mut impl EventSink) {
        let mut sink = Tracking {
            engine: self,
            inner: events,
        };
        self.table.handle_timeout(now, usize::MAX, &mut sink);
    }

    /// New bindings and Declines refused so far, by limit.
    pub fn limit_refusals(&self) -> impl Iterator<Item = (Refusal, u64)> {
        Refusal::ALL.into_iter().zip(self.limits.refused())
    }

    /// Leasequery replies sent so far, by how the query was answered.
    pub fn leasequery_results(&self) -> impl Iterator<Item = (LeasequeryResult, u64)> {
        LeasequeryResult::ALL.into_iter().zip(self.leasequery.get())
    }

    /// Addresses and prefixes of another server's slice (in a pool prefix of the link, outside
    /// this server's ranges) listed in Rebind messages so far, by link name and kind: in an
    /// RFC 6853 split or unique deployment, the clients of a peer that stopped answering.
    pub fn foreign_rebinds(&self) -> impl Iterator<Item = (&str, IaKind, u64)> {
        self.config
            .links
            .iter()
            .enumerate()
            .flat_map(move |(index, link)| {
                [IaKind::Na, IaKind::Pd].into_iter().map(move |kind| {
                    (
                        link.name.as_str(),
                        kind,
                        self.foreign_rebinds.get(index, kind),
                    )
                })
            })
    }

    /// Ends the lease a client holds on `addr` (an address, or the first address of a
    /// delegated prefix) as that client's Release would: the table drops it and the same
    /// [`EventKind::Released`] event reaches `events` (the journal), the pool counters, the
    /// allocator's bitmap and the limits. An operator's forced release; `None` when no client
    /// holds a lease there (free, or declined and in probation).
    pub fn release_lease(
        &self,
        addr: u128,
        kind: IaKind,
        now: u32,
        events: &mut impl EventSink,
    ) -> Option<LeaseRecord> {
        let record = self.table.lease_at(addr, kind)?;
        if record.lease.state == LeaseState::Declined {
            return None;
        }
        let key = self.table.ia_key(
            record.duid.as_bytes(),
            record.lease.iaid,
            kind,
            record.lease.link,
        );
        let mut sink = Tracking {
            engine: self,
            inner: events,
        };
        // The client may have changed the lease since the lookup: the table checks the owner
        // again under its lock.
        let lease = self.table.release(&key, addr, now, &mut sink).ok()?;
        Some(LeaseRecord {
            duid: record.duid,
            lease,
            relay: record.relay,
            reconfigure: record.reconfigure,
        })
    }

    /// Bound leases, as the limits count them (server-wide, or on one link).
    pub fn bound_leases(&self, link: Option<LinkId>) -> u64 {
        self.limits.bound(link)
    }

    /// Answers one DHCPv6 message (the UDP payload) into `reply`.
    pub fn handle(
        &self,
        request: &[u8],
        cx: &Context,
        reply: &mut [u8],
        events: &mut impl EventSink,
    ) -> Outcome {
        self.handle_from(request, cx, Peer::default(), reply, events)
    }

    /// [`Self::handle`], with what the datapath knows of the sender (its source address and
    /// MAC) for the per-relay and per-MAC limits.
    pub fn handle_from(
        &self,
        request: &[u8],
        cx: &Context,
        peer: Peer,
        reply: &mut [u8],
        events: &mut impl EventSink,
    ) -> Outcome {
        // A new client's Solicit or Request looks up its IA in the client index and its first
        // candidate in the address index: prefetching both first overlaps the two misses (a
        // Renew's record waits on its client index entry, so it gains nothing).
        let ahead = match request.first().map(|&first| MessageType::from(first)) {
            Some(MessageType::Solicit | MessageType::Request) => self.lookahead(request, cx),
            _ => Lookahead::default(),
        };
        self.handle_ahead(request, cx, peer, reply, events, &ahead)
    }

    /// [`Self::handle_from`], with what [`Self::lookahead`] read of the same request: its
    /// client hash is used instead of hashing the DUID again.
    fn handle_ahead(
        &self,
        request: &[u8],
        cx: &Context,
        peer: Peer,
        reply: &mut [u8],
        events: &mut impl EventSink,
        ahead: &Lookahead,
    ) -> Outcome {
        let mut sink = Tracking {
            engine: self,
            inner: events,
        };
        let mut received = MessageType::Unknown(0);
        match self.answer(request, cx, peer, reply, &mut sink, &mut received, ahead) {
            Ok(Answer {
                len,
                to,
                sent,
                unknown_link,
                delay_ms,
            }) => Outcome::Reply {
                len,
                to,
                received,
                sent,
                unknown_link,
                delay_ms,
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
    #[allow(clippy::too_many_arguments)]
    fn answer(
        &self,
        request: &[u8],
        cx: &Context,
        peer: Peer,
        reply: &mut [u8],
        events: &mut impl EventSink,
        received: &mut MessageType,
        ahead: &Lookahead,
    ) -> Result<Answer, DropReason> {
        // RFC 9915 §16, in substance:
        // Servers MUST discard any received messages of types they do not expect.
        // Decide on the first byte before decoding anything.
        let first = *request.first().ok_or(DropReason::Malformed)?;
        *received = MessageType::from(first);
        match *received {
            message_type if discard::is_client_request(message_type) => {}
            MessageType::RelayForw | MessageType::Leasequery => {}
            MessageType::Unknown(_) => {
                return Err(DropReason::Unsupported);
            }
            _ => return Err(DropReason::NotForServer),
        }
        match Packet::parse(request).map_err(|_| DropReason::Malformed)? {
            Packet::Client(message) if message.msg_type() == MessageType::Leasequery => {
                // RFC 5007 §4.3.2, §4.3.5, in substance:
                // A requestor sends LEASEQUERY to a server's unicast address (or through relay
                // agents); the server sends the LEASEQUERY-REPLY back to the address and port
                // the LEASEQUERY came from. (RFC 9915 §16's rule against unicast is about
                // clients: a requestor is not one.)
                let mut w = MessageWriter::new(reply);
                let sent = self.answer_leasequery(message, peer.address, cx.now, &mut w)?;
                Ok(Answer {
                    len: w.finish()?,
                    to: Destination::Requestor,
                    sent,
                    unknown_link: false,
                    delay_ms: 0,
                })
            }
            Packet::Client(message) => {
                // RFC 9915 §16, in substance:
                // Servers SHOULD NOT accept unicast traffic from clients. The Server Unicast
                // option and UseMulticast status code have been obsoleted and hence clients
                // should no longer send messages to a server's unicast address nor receive the
                // UseMulticast status code.
                // (The exception for a server that previously sent Server Unicast does not
                // apply: this server never sends it.)
                if cx.arrival == Arrival::Unicast {
                    return Err(DropReason::Unicast);
                }
                let link = cx.link.ok_or(DropReason::UnknownLink)?;
                let mut request = ClientRequest::new(message);
                request.read(message)?;
                discard::check(&request, &self.config.server.duid)?;
                let mut w = MessageWriter::new(reply);
                let sender = Sender::Direct {
                    peer,
                    duid: request.client_id.unwrap_or_default(),
                };
                let keys = RelayKeys::default();
                let sent = self.respond(
                    &request, link, keys, None, sender, cx.now, &mut w, events, ahead,
                )?;
                Ok(Answer {
                    len: w.finish()?,
                    to: Destination::Client,
                    sent,
                    unknown_link: false,
                    delay_ms: self.delay_of(sent, Some(link)),
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
                if message.msg_type() == MessageType::Leasequery {
                    return self.answer_relayed_leasequery(relay, &chain, cx.now, reply);
                }
                if !discard::is_client_request(message.msg_type()) {
                    return Err(DropReason::NotForServer);
                }
                // Looked up already when the request was looked ahead at.
                let link = match ahead
                    .relay_link_of(request)
                    .or_else(|| self.relay_link(&chain))
                {
                    Some(link) => Some(link),
                    None if self.answers_unknown_link(message.msg_type()) => None,
                    None => return Err(DropReason::UnknownLink),
                };
                let mut request = ClientRequest::new(message);
                request.read(message)?;
                discard::check(&request, &self.config.server.duid)?;
                request.relay_supplied = relay_supplied(&chain)?;
                let link_layer = client_link_layer(&chain);
                let sender = Sender::Relayed {
                    peer,
                    chain: &chain,
                    link_layer,
                };
                // Kept with the leases this message binds or extends (Leasequery's relay
                // data, RFC 5007 §4.1.2.4).
                // An Advertise binds nothing: a Solicit's relay data matters only with Rapid
                // Commit, and a flood of Solicits costs no copy of it.
                let binds = match request.msg_type {
                    MessageType::Request | MessageType::Renew | MessageType::Rebind => true,
                    MessageType::Solicit => request.rapid_commit,
                    _ => false,
                };
                let relay_data = binds
                    .then(|| RelayData::from_chain(&chain, peer.address))
                    .flatten()
                    .map(|captured| {
                        self.table.count_relay_cut(captured.cut);
                        captured.data
                    });
                let to_source_port = relay
                    .options()
                    .find_raw(OptionCode::RelaySourcePort)
                    .map_err(|_| DropReason::Malformed)?
                    .is_some();
                let mut w = MessageWriter::new(reply);
                let mut marks: [Option<OptionMark>; HOP_COUNT_LIMIT] = Default::default();
                open_relay_replies(&chain, &mut w, &mut marks)?;
                let sent = match link {
                    Some(link) => {
                        // Read only when some reservation could use them.
                        let keys = if self.config.reservations.is_empty() {
                            RelayKeys::default()
                        } else {
                            relay_keys(&chain)
                        };
                        self.respond(
                            &request,
                            link,
                            keys,
                            relay_data.as_ref(),
                            sender,
                            cx.now,
                            &mut w,
                            events,
                            ahead,
                        )?
                    }
                    None => respond_unknown_link(&request, &self.config.server.duid, &mut w)?,
                };
                for mark in marks.into_iter().rev().flatten() {
                    w.end_option(mark)?;
                }
                Ok(Answer {
                    len: w.finish()?,
                    to: Destination::Relay { to_source_port },
                    sent,
                    unknown_link: link.is_none(),
                    delay_ms: self.delay_of(sent, link),
                })
            }
        }
    }

    /// Answers a LEASEQUERY that came through relay agents: the requestor is the innermost
    /// relay's peer-address, and the reply goes back through the same relays.
    fn answer_relayed_leasequery(
        &self,
        relay: RelayMessage<'_>,
        chain: &RelayChain<'_>,
        now: u32,
        reply: &mut [u8],
    ) -> Result<Answer, DropReason> {
        let requestor = chain.innermost().peer_address();
        let to_source_port = relay
            .options()
            .find_raw(OptionCode::RelaySourcePort)
            .map_err(|_| DropReason::Malformed)?
            .is_some();
        let mut w = MessageWriter::new(reply);
        let mut marks: [Option<OptionMark>; HOP_COUNT_LIMIT] = Default::default();
        open_relay_replies(chain, &mut w, &mut marks)?;
        let sent = self.answer_leasequery(chain.message(), Some(requestor), now, &mut w)?;
        for mark in marks.into_iter().rev().flatten() {
            w.end_option(mark)?;
        }
        Ok(Answer {
            len: w.finish()?,
            to: Destination::Relay { to_source_port },
            sent,
            unknown_link: false,
            delay_ms: 0,
        })
    }

    /// How long the datapath holds a reply of type `sent` to a client on `link`: an
    /// Advertise waits the link's `advertise-delay-ms` while its Preference is below 255, so
    /// that clients taking the first Advertise hear the primary's first; a Reply never waits.
    fn delay_of(&self, sent: MessageType, link: Option<LinkId>) -> u16 {
        match (sent, link) {
            (MessageType::Advertise, Some(link)) => self.config.link(link).advertise_delay(),
            _ => 0,
        }
    }

    /// The link of a relayed client: the innermost relay's Interface-Id or link-address, then
    /// the relays further out (RFC 9915 §13.1).
    fn relay_link(&self, chain: &RelayChain<'_>) -> Option<LinkId> {
        request::hops_from_client(chain).find_map(|hop| {
            let interface_id = hop
                .options()
                .find_raw(OptionCode::InterfaceId)
                .ok()
                .flatten();
            self.config.link_for_relay(hop.link_address(), interface_id)
        })
    }

    /// The limit slots of a request's sender: hashed only when a new binding needs them.
    fn origin_of(&self, sender: &Sender<'_>) -> Origin {
        match *sender {
            Sender::Direct { peer, duid } => self.direct_origin(&peer, duid),
            Sender::Relayed {
                peer,
                chain,
                link_layer,
            } => self.relay_origin(&peer, chain, link_layer),
        }
    }

    /// The limit slots of a direct client: its MAC address, else its source address, else the
    /// link-layer address in its DUID.
    fn direct_origin(&self, peer: &Peer, duid: &[u8]) -> Origin {
        let mac = match (peer.mac, peer.address) {
            (Some(mac), _) => Some(self.limits.slot(("mac", &mac[..]))),
            (None, Some(address)) => Some(self.limits.slot(("source", address))),
            (None, None) => request::duid_link_layer(duid)
                .map(|(_, address)| self.limits.slot(("mac", address))),
        };
        Origin {
            relay: None,
            mac,
            admitted: None,
        }
    }

    /// The limit slots of a relayed client: the relay (its source address, or the innermost
    /// link-address, with the innermost Interface-Id), and the client's link-layer address
    /// (RFC 6939) or else the innermost relay's Remote-ID (RFC 4649).
    fn relay_origin(
        &self,
        peer: &Peer,
        chain: &RelayChain<'_>,
        link_layer: Option<(u16, &[u8])>,
    ) -> Origin {
        let innermost = chain.innermost();
        let interface_id = innermost
            .options()
            .find_raw(OptionCode::InterfaceId)
            .ok()
            .flatten();
        let relay = match peer.address {
            Some(address) => self.limits.slot(("relay", address, interface_id)),
            None => self
                .limits
                .slot(("relay", innermost.link_address(), interface_id)),
        };
        let remote_id = || {
            innermost
                .options()
                .find_raw(OptionCode::RemoteId)
                .ok()
                .flatten()
        };
        let mac = match link_layer {
            Some((_, address)) => Some(self.limits.slot(("mac", address))),
            None => remote_id().map(|id| self.limits.slot(("remote-id", id))),
        };
        Origin {
            relay: Some(relay),
            mac,
            admitted: None,
        }
    }

    /// Whether a relayed message of `msg_type` from a link no `[[link]]` selects is answered
    /// (`unknown-link = "no-addrs-avail"`: Solicit and Request) rather than dropped.
    fn answers_unknown_link(&self, msg_type: MessageType) -> bool {
        self.config.server.unknown_link == UnknownLink::NoAddrsAvail
            && matches!(msg_type, MessageType::Solicit | MessageType::Request)
    }

    /// Writes the client message of the reply (after any Relay-reply headers); returns its
    /// type.
    #[allow(clippy::too_many_arguments)]
    fn respond(
        &self,
        request: &ClientRequest<'_>,
        link_id: LinkId,
        keys: RelayKeys<'_>,
        relay: Option<&RelayData>,
        sender: Sender<'_>,
        now: u32,
        w: &mut MessageWriter<'_>,
        events: &mut impl EventSink,
        ahead: &Lookahead,
    ) -> Result<MessageType, DropReason> {
        let link = self.config.link(link_id);
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
        let duid = request.client_id.unwrap_or_default();
        let reservation = self.config.reservation_for(
            link_id,
            &ClientKeys {
                duid,
                // The relay's RFC 6939 option, else the address inside a DUID-LLT or DUID-LL.
                link_layer: keys.link_layer.or_else(|| request::duid_link_layer(duid)),
                cm_mac: keys.cm_mac,
                subscriber_id: keys.subscriber_id,
                remote_id: keys.remote_id,
                interface_id: keys.interface_id,
            },
        );
        let reserved_options = reservation.map(|reservation| &reservation.options);
        // Links with DNS updates note the addresses this reply binds, for the updater.
        let binds = reply_type == MessageType::Reply
            && matches!(
                request.msg_type,
                MessageType::Solicit
                    | MessageType::Request
                    | MessageType::Renew
                    | MessageType::Rebind
            );
        let mut events = crate::fqdn::Collect::new(events, binds && link.ddns.is_some());
        let events = &mut events;
        let mut exchange = Exchange {
            engine: self,
            request,
            client: Client {
                duid,
                link: link_id,
            },
            link,
            reservation,
            pools: &self.pools[link_id.index()],
            relay,
            reconfigure: self.gives_reconfigure_key(request.reconfigure_accept, link_id),
            sender,
            origin: None,
            now,
            w,
            events,
            ahead,
        };

        match request.msg_type {
            MessageType::Solicit | MessageType::Request => {
                if reply_type == MessageType::Reply && request.msg_type == MessageType::Solicit {
                    exchange.w.rapid_commit()?;
                }
                if reply_type == MessageType::Advertise {
                    // RFC 9915 §18.3.9, in substance:
                    // The server MAY add a Preference option to carry the preference value for
                    // the Advertise message. The server implementation SHOULD allow the
                    // setting of a server preference value by the administrator.
                    // (Per link, so one server can be the primary of some links and the
                    // standby of others.)
                    exchange.w.preference(link.preference)?;
                }
                for ia in request.ias() {
                    exchange.assign(ia, how)?;
                }
                beyond_limit(request, exchange.w)?;
                reply::answer_fqdn(
                    request,
                    link,
                    exchange.client.duid,
                    now,
                    exchange.w,
                    exchange.events,
                )?;
                reply::write_options(request, link, reserved_options, exchange.w)?;
            }
            MessageType::Renew | MessageType::Rebind => {
                for ia in request.ias() {
                    exchange.extend(ia)?;
                }
                beyond_limit(request, exchange.w)?;
                reply::answer_fqdn(
                    request,
                    link,
                    exchange.client.duid,
                    now,
                    exchange.w,
                    exchange.events,
                )?;
                reply::write_options(request, link, reserved_options, exchange.w)?;
            }
            MessageType::Release | MessageType::Decline => {
                for ia in request.ias() {
                    exchange.give_back(ia)?;
                }
                beyond_limit(request, exchange.w)?;
                // RFC 9915 §18.3.7, in substance:
                // the server generates a Reply message ... includes a Status Code option
                // with the value Success
                let text = if request.msg_type == MessageType::Release {
                    "released"
                } else {
                    "declined"
                };
                exchange.w.status_code(StatusCode::Success, text)?;
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
                for (addr, _) in request
                    .ias()
                    .filter(|ia| ia.kind() == IaKind::Na)
                    .flat_map(|ia| ia.listed())
                {
                    any = true;
                    // On the link: inside an address pool prefix, outside the space a
                    // pd-pool delegates from it (`inside-on-link`).
                    on_link &= exchange.on_link(IaKind::Na, addr);
                }
                if !any {
                    return Err(DropReason::NothingToConfirm);
                }
                if on_link {
                    exchange
                        .w
                        .status_code(StatusCode::Success, "all addresses are on link")?;
                } else {
                    exchange
                        .w
                        .status_code(StatusCode::NotOnLink, "addresses not on this link")?;
                }
            }
            MessageType::InformationRequest => {
                reply::write_options(request, link, reserved_options, exchange.w)?;
            }
            _ => return Err(DropReason::NotForServer),
        }
        let gives_key = matches!(
            request.msg_type,
            MessageType::Solicit
                | MessageType::Request
                | MessageType::Renew
                | MessageType::Rebind
                | MessageType::InformationRequest
        );
        if reply_type == MessageType::Reply && gives_key && exchange.reconfigure {
            self.write_reconfigure_key(duid, now, exchange.w)?;
        }
        Ok(reply_type)
    }

    /// Marks a lease's address or prefix taken or free in its range's bitmap, and in those
    /// of the engines that replaced this one.
    fn mark(&self, lease: &Lease, taken: bool) {
        if let Some(pools) = self.pools.get(lease.link.index()) {
            pools.mark(lease, taken);
        }
        if let Some(next) = self.successor.get().and_then(Weak::upgrade) {
            next.mark(lease, taken);
        }
    }
}

/// Who sent a request, for the limit slots its new bindings are charged to
/// ([`Engine::origin_of`]).
#[derive(Clone, Copy)]
pub(super) enum Sender<'a> {
    /// A client on the link: its DUID (for the link-layer address inside it) and what the
    /// datapath saw.
    Direct { peer: Peer, duid: &'a [u8] },
    /// A relayed client: the relay chain and the client's RFC 6939 link-layer address.
    Relayed {
        peer: Peer,
        chain: &'a RelayChain<'a>,
        link_layer: Option<(u16, &'a [u8])>,
    },
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
            EventKind::Bound => {
                // A unit the allocator claimed is marked in this engine's own bitmap; an engine
                // that replaced this one learns of it here.
                if let Some(next) = self.engine.successor.get().and_then(Weak::upgrade) {
                    next.mark(&event.record.lease, true);
                }
            }
            EventKind::Offered | EventKind::Renewed | EventKind::Declined => {}
        }
        if let Some(pools) = self.engine.pools.get(event.record.lease.link.index()) {
            pools.count(&event);
        }
        self.engine.limits.on_event(&event);
        self.inner.emit(event);
    }

    /// What this sink reads of an event is its kind and lease: the inner sink decides.
    fn wants_records(&self) -> bool {
        self.inner.wants_records()
    }

    /// The kinds that move a bitmap or a count above, and those the inner sink takes: an
    /// offer or a renewal changes neither.
    fn wants(&self, kind: EventKind) -> bool {
        !matches!(kind, EventKind::Offered | EventKind::Renewed) || self.inner.wants(kind)
    }

    fn name(&mut self, binding: crate::fqdn::NameBinding) {
        self.inner.name(binding);
    }
}

/// Writes one Relay-reply header per hop of `chain`, outermost first, each with the hop's
/// Interface-Id, and opens its Relay Message option (`marks`, closed by the caller).
fn open_relay_replies(
    chain: &RelayChain<'_>,
    w: &mut MessageWriter<'_>,
    marks: &mut [Option<OptionMark>; HOP_COUNT_LIMIT],
) -> Result<(), DropReason> {
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
    Ok(())
}

/// The reply to a Solicit or Request relayed from a link no `[[link]]` selects, with
/// `unknown-link = "no-addrs-avail"`: every IA without leases, and its status. Returns the
/// reply's type (Advertise or Reply; no Rapid Commit, which is a link's setting).
fn respond_unknown_link(
    request: &ClientRequest<'_>,
    server_duid: &[u8],
    w: &mut MessageWriter<'_>,
) -> Result<MessageType, DropReason> {
    let reply_type = if request.msg_type == MessageType::Solicit {
        MessageType::Advertise
    } else {
        MessageType::Reply
    };
    w.client_header(reply_type, request.xid)?;
    w.server_id(server_duid)?;
    if let Some(client_id) = request.client_id {
        w.client_id(client_id)?;
    }
    // RFC 9915 §18.3.9, in substance:
    // If the server will not assign any addresses to an IA_NA in subsequent Request messages
    // from the client, the server MUST include the IA option in the Advertise message with no
    // addresses in that IA and a Status Code option encapsulated in the IA option containing
    // status code NoAddrsAvail. (IA_PD: NoPrefixAvail.)
    // RFC 9915 §18.3.2, in substance:
    // If ... it cannot assign any IP addresses to an IA, the server MUST return the IA option
    // in the Reply message with no addresses in the IA and a Status Code option containing
    // status code NoAddrsAvail in the IA. (IA_PD: NoPrefixAvail.)
    for ia in request.ias() {
        let mark = ia.begin(w, 0, 0)?;
        ia::unavailable(w, ia.kind())?;
        w.end_option(mark)?;
    }
    beyond_limit(request, w)?;
    Ok(reply_type)
}

/// Answers the IAs past [`MAX_IAS`] of their kind, which the server does not look at: each
/// with no leases and a status, so that the client hears about every IA it sent.
///
/// Release and Decline: NoBinding (nothing was released or declined in them); other messages:
/// NoAddrsAvail or NoPrefixAvail.
fn beyond_limit(request: &ClientRequest<'_>, w: &mut MessageWriter<'_>) -> Result<(), DropReason> {
    if request.beyond_limit.is_none() {
        return Ok(());
    }
    for ia in request.ias_beyond_limit() {
        let mark = ia.begin(w, 0, 0)?;
        if matches!(
            request.msg_type,
            MessageType::Release | MessageType::Decline
        ) {
            // RFC 9915 §18.3.7, in substance:
            // For each IA in the Release message for which the server has no binding
            // information, the server adds an IA option using the IAID from the Release
            // message and includes a Status Code option with the value NoBinding in the IA
            // option.
            w.status_code(StatusCode::NoBinding, "too many IAs in one message")?;
        } else {
            // RFC 9915 §18.3.2, §18.3.9, in substance: an IA the server assigns nothing to is
            // returned with no leases and the NoAddrsAvail (IA_PD: NoPrefixAvail) status.
            ia::unavailable(w, ia.kind())?;
        }
        w.end_option(mark)?;
    }
    Ok(())
}

/// A reply written: its length, where it goes, the client reply's type, and whether it
/// answers a client on a link no `[[link]]` selects.
struct Answer {
    len: usize,
    to: Destination,
    sent: MessageType,
    unknown_link: bool,
    delay_ms: u16,
}
