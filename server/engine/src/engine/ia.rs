//! IA handling: what the server does with each IA_NA and IA_PD of a request, through one
//! per-request context ([`Exchange`]). Addresses and delegated prefixes go the same way; only
//! the options written differ.

use std::net::Ipv6Addr;

use xdhcp6_proto::{MessageType, MessageWriter, OptionCode, StatusCode};

use super::limits::Origin;
use super::pools::LinkPools;
use super::request::{Client, ClientRequest, Hint, Ia};
use super::{DropReason, Engine, Lookahead, Sender};
use crate::alloc::AllocKey;
use crate::config::{Link, RebindForeign, Reservation};
use crate::prefix::Prefix;
use crate::table::{ClaimAs, EventSink, IaKey, IaKind, Lease, LeaseState, Lifetimes, RelayData};

mod offer;

/// One request being answered: who asks, on which link and when, the reply being written and
/// where the lease events go.
pub(super) struct Exchange<'x, 'r, 'b, S> {
    pub(super) engine: &'x Engine,
    pub(super) request: &'x ClientRequest<'r>,
    pub(super) client: Client<'r>,
    pub(super) link: &'x Link,
    /// The client's reservation on this link, if any ([`crate::config::Config::reservation_for`]).
    pub(super) reservation: Option<&'x Reservation>,
    pub(super) pools: &'x LinkPools,
    /// The relay data the leases bound or extended keep (`None` for a direct client).
    pub(super) relay: Option<&'x RelayData>,
    /// Whether the client gets its reconfigure key and its leases are marked as accepting
    /// Reconfigure ([`Engine::gives_reconfigure_key`]).
    pub(super) reconfigure: bool,
    /// Who sent the request, for [`Self::origin`].
    pub(super) sender: Sender<'x>,
    /// The relay and MAC budgets new bindings of this request are charged to, once a new
    /// binding needs them ([`Self::origin`]).
    pub(super) origin: Option<Origin>,
    pub(super) now: u32,
    pub(super) w: &'x mut MessageWriter<'b>,
    pub(super) events: &'x mut S,
    /// What [`Engine::lookahead`] read of the request: the client hash of its first IA.
    pub(super) ahead: &'x Lookahead,
}

impl<'x, 'r, S: EventSink> Exchange<'x, 'r, '_, S> {
    /// Solicit and Request: the client's current lease of this IA, its reservation, or a new
    /// address or prefix by split-prefix hashing.
    pub(super) fn assign(&mut self, ia: Ia<'r>, how: ClaimAs) -> Result<(), DropReason> {
        let timers = self.link.timers;
        // RFC 9915 §18.3.2, in substance:
        // If the server finds that the prefix on one or more IP addresses in any IA in the
        // message from the client is not appropriate for the link to which the client is
        // connected, the server MUST return the IA to the client with a Status Code option
        // with the value NotOnLink.
        if ia.kind() == IaKind::Na
            && self.request.msg_type == MessageType::Request
            && ia.listed().any(|(addr, _)| !self.on_link(IaKind::Na, addr))
        {
            let mark = ia.begin(self.w, 0, 0)?;
            self.w
                .status_code(StatusCode::NotOnLink, "address not on this link")?;
            return Ok(self.w.end_option(mark)?);
        }
        let key = self.key(&ia);
        let lease = self.claim(&ia, &key, how)?;
        let mark = ia.begin(self.w, timers.t1, timers.t2)?;
        match lease {
            Some(lease) => self.write_lease(&lease)?,
            // RFC 9915 §18.3.2, in substance:
            // If the server cannot assign any addresses to an IA in the message from the
            // client, the server MUST include the IA in the Reply message with no addresses
            // in the IA and a Status Code option in the IA containing status code
            // NoAddrsAvail.
            // (And for delegated prefixes: NoPrefixAvail.)
            None => unavailable(self.w, ia.kind())?,
        }
        Ok(self.w.end_option(mark)?)
    }

    /// Claims the client's address or prefix for this IA: kept, reserved, or new: the prefix
    /// the client asked for, or one hashed from the pools that its hint prefers.
    ///
    /// A client that already holds a lease for the IA keeps it, whatever it hints.
    ///
    /// A new binding (and an offer of one) passes the limits first: over a cap the IA gets
    /// nothing (`Ok(None)`), over a rate the message is dropped.
    fn claim(
        &mut self,
        ia: &Ia<'r>,
        key: &IaKey<'x>,
        how: ClaimAs,
    ) -> Result<Option<Lease>, DropReason> {
        if let ClaimAs::Offered { hold } = how {
            // An Advertise reserves nothing: what a flood of Solicits costs stays bounded.
            let offer = self.propose(ia, key, hold);
            // An offer of a new binding (not the client's current lease nor its reservation)
            // is refused as the Request would be, without taking a token.
            if offer.is_some_and(|lease| lease.state == LeaseState::Offered)
                && self.reservation(key.kind()).is_none()
                && !self.admit(true)?
            {
                return Ok(None);
            }
            return Ok(offer);
        }
        let new = !self.holds_binding(key);
        let lease = self.claim_limited(ia, key, how, new)?;
        if let Some(lease) = lease.as_ref().filter(|_| new) {
            let engine = self.engine;
            let origin = *self.origin();
            engine.limits.record_origin(&engine.config, lease, &origin);
        }
        Ok(lease)
    }

    /// [`Self::claim`] of a binding, without counting a new one against its relay and MAC.
    fn claim_limited(
        &mut self,
        ia: &Ia<'r>,
        key: &IaKey<'x>,
        how: ClaimAs,
        new: bool,
    ) -> Result<Option<Lease>, DropReason> {
        let lifetimes = lifetimes_of(self.link);
        let reservation = self.reservation(key.kind());
        let served = self.served(reservation);
        let (table, pools, now) = (&self.engine.table, self.pools, self.now);
        // A binding the client does not hold yet (whether it solicited first or not) is a new
        // one; reserved addresses and prefixes are the operator's and take no pool space.
        if new && reservation.is_none() && !self.admit(false)? {
            return Ok(None);
        }
        // A current lease outside this server's ranges (the pool moved or shrank, or it is the
        // other server's half) is left alone: the client gets one of ours instead.
        if let Some(lease) = table.claim_current(
            key,
            how,
            lifetimes,
            now,
            |lease| served.lease(lease),
            self.events,
        ) {
            return Ok(Some(lease));
        }
        if let Some(reserved) = reservation {
            return Ok(table
                .claim(
                    key,
                    reserved.bits(),
                    reserved.len(),
                    how,
                    lifetimes,
                    now,
                    self.events,
                )
                .ok());
        }
        let hint = ia.hint();
        if let Some(lease) = self.claim_hinted(key, hint, how) {
            return Ok(Some(lease));
        }
        // A new address or prefix: hashed by the link's name, so that the link's place in the
        // file does not matter; the hint only orders the pools, so every server of the
        // identical model still computes the same one.
        let alloc_key = self.alloc_key(key);
        Ok(pools.by_hint(key.kind(), hint.len).find_map(|pool| {
            let len = pool.range.unit_len();
            pool.range
                .allocate(&alloc_key, |bits| {
                    table
                        .claim(key, bits, len, how, lifetimes, now, self.events)
                        .ok()
                })
                .ok()
                .map(|(_, lease)| lease)
        }))
    }

    /// Whether the client holds a binding (not a mere offer) of this IA.
    fn holds_binding(&self, key: &IaKey<'x>) -> bool {
        let mut bound = false;
        self.engine
            .table
            .leases_of(key, |lease| bound |= lease.state == LeaseState::Bound);
        bound
    }

    /// Whether one more new binding is allowed: false over a cap (the IA is answered
    /// NoAddrsAvail or NoPrefixAvail); over a rate, the message is dropped. The rate is charged
    /// once per message (`peek`: only looked at, for an Advertise).
    ///
    /// A cap is a state that lasts: the client is told at once and may look for another
    /// server (RFC 9915 §18.3.9 and §18.3.2 give NoAddrsAvail for an IA the server will not
    /// serve). A rate is momentary: a dropped message is retransmitted with backoff
    /// (RFC 9915 §15), so a burst of legitimate clients is slowed down, never turned away.
    fn admit(&mut self, peek: bool) -> Result<bool, DropReason> {
        let (engine, link, now) = (self.engine, self.client.link, self.now);
        let origin = *self.origin();
        if engine
            .limits
            .check_caps(&engine.config, link, &origin)
            .is_err()
        {
            return Ok(false);
        }
        let admitted = match origin.admitted {
            Some(admitted) => admitted,
            None => {
                let admitted = engine
                    .limits
                    .check_rate(&engine.config, link, &origin, now, peek);
                self.origin().admitted = Some(admitted);
                admitted
            }
        };
        admitted.map_err(|_| DropReason::RateLimited)?;
        Ok(true)
    }

    /// The very prefix the client hinted, when it is a free unit of this server's slice.
    fn claim_hinted(&mut self, key: &IaKey<'x>, hint: Hint, how: ClaimAs) -> Option<Lease> {
        let (Some(bits), Some(len)) = (hint.prefix, hint.len) else {
            return None;
        };
        // RFC 9915 §18.2.1, in substance:
        // The client MAY include values in IA Prefix options encapsulated within IA_PD
        // options as hints for the delegated prefix and/or prefix length for which the
        // client has a preference.
        // A hint the server follows when the prefix is a unit of its own slice and not
        // reserved: a prefix from another server's slice is that server's to give.
        let pool = self.pools.of(key.kind()).iter().find(|pool| {
            pool.range.unit_len() == len
                && pool.range.contains(bits)
                && !pool.range.is_reserved(bits)
        })?;
        let lifetimes = lifetimes_of(self.link);
        let lease = self
            .engine
            .table
            .claim(key, bits, len, how, lifetimes, self.now, self.events)
            .ok()?;
        pool.range.occupy(bits);
        Some(lease)
    }

    /// Renew and Rebind (RFC 9915 §18.3.4, §18.3.5), with the RFC 6853 models.
    pub(super) fn extend(&mut self, ia: Ia<'r>) -> Result<(), DropReason> {
        let timers = self.link.timers;
        let lifetimes = lifetimes_of(self.link);
        let key = self.key(&ia);
        let kind = ia.kind();
        let msg_type = self.request.msg_type;
        let create = self.link.renew_creates_bindings;
        let served = self.served(self.reservation(kind));
        let (engine, now) = (self.engine, self.now);
        if msg_type == MessageType::Rebind {
            self.count_foreign(&ia);
        }

        // The binding this server has for the IA, extended if it can be.
        // Only a binding counts: an address that was merely advertised was never the client's.
        // And only one this server still hands out: a lease of a range that moved or shrank
        // (restored from the journal, or kept over a reload) is not extended.
        let bound_here = |lease: &Lease| lease.state == LeaseState::Bound && served.lease(lease);
        let mut kept = engine.table.claim_current(
            &key,
            ClaimAs::Bound,
            lifetimes,
            now,
            bound_here,
            self.events,
        );
        let take_back = kept.is_none()
            && (create || msg_type == MessageType::Rebind)
            && ia
                .listed()
                .any(|(addr, len)| served.admits(kind, u128::from(addr), len));
        if take_back && self.admit(false)? {
            // RFC 9915 §18.3.5, in substance:
            // If the server cannot find a client entry for the IA and the server determines
            // that the addresses in the IA are appropriate for the link to which the
            // client's interface is attached according to the server's explicit
            // configuration information, the server MAY send a Reply message to the client
            // containing the client's IA, with the lifetimes for the addresses in the IA
            // set to 0 ... or extend them.
            // An address or prefix that this server hands out (its own slice: the
            // identical-prefix model, or a binding this server lost) is taken back for the
            // client if nobody else holds it; one from another server's slice only when
            // `rebind-foreign = "extend"`. A Renew that may create a binding takes the
            // client's address back the same way before it hashes a new one.
            let events = &mut *self.events;
            kept = ia.listed().find_map(|(addr, len)| {
                let bits = u128::from(addr);
                // Reserved and anycast units of our ranges go to nobody this way.
                if !served.admits(kind, bits, len) {
                    return None;
                }
                let lease = engine
                    .table
                    .claim(&key, bits, len, ClaimAs::Bound, lifetimes, now, events)
                    .ok()?;
                engine.mark(&lease, true);
                Some(lease)
            });
            if let Some(lease) = &kept {
                let origin = *self.origin();
                engine.limits.record_origin(&engine.config, lease, &origin);
            }
        }
        if kept.is_none() && create {
            // RFC 9915 §18.3.4 (and §18.3.5 for Rebind), in substance:
            // For each IA for which the server cannot find a client entry ... If the server
            // is configured to create new bindings as a result of processing Renew messages,
            // the server SHOULD create a binding and return the IA with assigned addresses
            // or delegated prefixes with lifetimes and, if applicable, T1/T2 times.
            // (`renew-creates-bindings`, RFC 7550 §4: an IA_NA or IA_PD the client adds in a
            // Renew, or one whose lease expired.) A fresh binding from this server's slice,
            // next to the old addresses with lifetimes 0.
            kept = self.claim(&ia, &key, ClaimAs::Bound)?;
        }

        let mark = ia.begin(self.w, timers.t1, timers.t2)?;
        if let Some(lease) = &kept {
            self.write_lease(lease)?;
        }
        // RFC 9915 §18.3.4, in substance:
        // If the server finds that any of the addresses in the IA are not appropriate for
        // the link to which the client is attached, the server returns the address to the
        // client with lifetimes of 0.
        // Appropriate means handed out by this server: an address of the on-link prefix
        // outside every range of ours (the pool shrank, or the other server's half in the
        // split model) is not, so that nobody extends what another client may get next.
        for (addr, len) in ia.listed() {
            let bits = u128::from(addr);
            let same = kept.is_some_and(|lease| lease.addr == bits && lease.prefix_len == len);
            let settled = kept.is_some() || create;
            if !same && zero_lifetimes(settled, served.admits(kind, bits, len), msg_type) {
                match kind {
                    IaKind::Na => self.w.ia_address(addr, 0, 0)?,
                    IaKind::Pd => self.w.ia_prefix(0, 0, len, addr)?,
                }
                // The client's binding of that address, if this server kept one, ends with
                // this Reply.
                let _ = engine.table.release(&key, bits, now, self.events);
            }
        }
        if kept.is_none() {
            not_extended(self.w, create, kind)?;
        }
        Ok(self.w.end_option(mark)?)
    }

    /// Release or Decline the listed addresses (or prefixes) of one IA, and the IA's status.
    pub(super) fn give_back(&mut self, ia: Ia<'r>) -> Result<(), DropReason> {
        let key = self.key(&ia);
        let table = &self.engine.table;
        // Only a binding counts: an address that was merely advertised (an offer waiting for
        // its Request) is no binding. The offer is left as it is, neither released nor
        // declined: the client may still send the Request, and the hold runs out otherwise.
        let mut bound = false;
        table.leases_of(&key, |lease| bound |= lease.state == LeaseState::Bound);
        let decline = self.request.msg_type == MessageType::Decline;
        if decline && ia.kind() == IaKind::Pd && bound {
            // RFC 9915 §18.3.8, in substance:
            // If the IAs in the message are in a binding for the client and the addresses in
            // the IAs have been assigned by the server to those IAs, the server deletes the
            // addresses from the IAs and makes the addresses unavailable for assignment to
            // other clients.
            // Decline is for addresses the client found in use on its link (§18.2.8); the
            // section says nothing of delegated prefixes. A prefix in a Decline is not
            // quarantined (one client could otherwise take a pool out of use): it stays
            // delegated, and the IA says so with a status.
            let mark = ia.begin(self.w, 0, 0)?;
            self.w.status_code(
                StatusCode::UnspecFail,
                "prefixes cannot be declined; the prefix stays delegated",
            )?;
            return Ok(self.w.end_option(mark)?);
        }
        let probation = self.engine.config.server.decline_probation;
        for (addr, _) in ia.listed().filter(|_| bound) {
            let bits = u128::from(addr);
            // RFC 9915 §18.3.7, §18.3.8, in substance:
            // The server ignores addresses not assigned to the IAs (though it may choose to
            // log an error if it finds such addresses).
            let mut assigned = false;
            table.leases_of(&key, |lease| {
                assigned |= lease.addr == bits && lease.state == LeaseState::Bound;
            });
            if !assigned {
                continue;
            }
            if self.request.msg_type == MessageType::Release {
                // RFC 9915 §18.3.7, in substance:
                // The server ... deletes the addresses and delegated prefixes from the IAs
                let _ = table.release(&key, bits, self.now, self.events);
            } else {
                // Each quarantined address is charged to the client's `decline-limit`; over
                // it the Decline is dropped and the address stays the client's until it
                // expires.
                let engine = self.engine;
                if !engine
                    .limits
                    .take_decline(&engine.config, self.client.duid, self.now)
                {
                    return Err(DropReason::DeclineLimited);
                }
                // RFC 9915 §18.3.8, in substance:
                // the server ... marks the addresses in the IAs as declined so that those
                // addresses are not assigned to other clients
                let _ = table.decline(&key, bits, probation, self.now, self.events);
            }
        }
        // Every IA of the request is answered with its status, as widely deployed servers do
        // (some clients wait for their IA in the Reply); T1 and T2 are 0: nothing is renewed.
        let mark = ia.begin(self.w, 0, 0)?;
        if bound {
            let text = if self.request.msg_type == MessageType::Release {
                "released"
            } else {
                "declined"
            };
            self.w.status_code(StatusCode::Success, text)?;
        } else {
            // RFC 9915 §18.3.7, in substance:
            // For each IA in the Release message for which the server has no binding
            // information, the server adds an IA option using the IAID from the Release
            // message and includes a Status Code option with the value NoBinding in the IA
            // option.
            // (§18.3.8 says the same of Decline.)
            self.w
                .status_code(StatusCode::NoBinding, "no binding for this IA")?;
        }
        Ok(self.w.end_option(mark)?)
    }

    /// An IA Address option for an address lease; an IA Prefix option for a prefix, with
    /// Prefix Exclude when the pool has one and the client asked for it (RFC 6603 §4.2).
    fn write_lease(&mut self, lease: &Lease) -> Result<(), DropReason> {
        let Lifetimes { preferred, valid } = lease.lifetimes;
        if lease.kind == IaKind::Na {
            return Ok(self.w.ia_address(lease.ip(), preferred, valid)?);
        }
        let exclude = self
            .pools
            .holding(IaKind::Pd, lease.addr)
            .and_then(|pool| pool.exclude)
            .filter(|_| self.request.requested(OptionCode::PdExclude))
            .and_then(|exclude| {
                exclude.prefix_in(Prefix::containing(lease.ip(), lease.prefix_len))
            });
        match exclude {
            Some(excluded) => {
                let mark =
                    self.w
                        .begin_ia_prefix(preferred, valid, lease.prefix_len, lease.ip())?;
                self.w
                    .pd_exclude(lease.prefix_len, excluded.addr(), excluded.len())?;
                self.w.end_option(mark)?;
            }
            None => self
                .w
                .ia_prefix(preferred, valid, lease.prefix_len, lease.ip())?,
        }
        Ok(())
    }

    /// Counts the units of another server's slice that a Rebind lists (a peer's clients,
    /// RFC 6853 §4), whatever `rebind-foreign` then does with them.
    fn count_foreign(&self, ia: &Ia<'r>) {
        let kind = ia.kind();
        for (addr, len) in ia.listed() {
            let bits = u128::from(addr);
            if self.pools.serves(kind, bits, len, true)
                && !self.pools.serves(kind, bits, len, false)
            {
                self.engine.foreign_rebinds.count(self.client.link, kind);
            }
        }
    }

    /// Whether `addr` lies in one of the link's pool prefixes of `kind` (for addresses: outside
    /// the space a pd-pool delegates from the on-link prefix).
    pub(super) fn on_link(&self, kind: IaKind, addr: Ipv6Addr) -> bool {
        self.pools.holding(kind, u128::from(addr)).is_some()
    }

    /// What the client may hold here, besides `reservation`, its own reserved unit.
    fn served(&self, reservation: Option<Prefix>) -> Served<'x> {
        Served {
            pools: self.pools,
            foreign: self.engine.config.server.rebind_foreign == RebindForeign::Extend,
            reservation,
        }
    }

    /// The relay and MAC slots of the request's sender, hashed at the first call.
    fn origin(&mut self) -> &mut Origin {
        let (engine, sender) = (self.engine, self.sender);
        self.origin.get_or_insert_with(|| engine.origin_of(&sender))
    }

    /// The allocation key of the IA of `key`: hashed by the link's name, so that the link's
    /// place in the file does not matter ([`AllocKey::new`]), or taken from the look-ahead.
    fn alloc_key(&self, key: &IaKey<'_>) -> AllocKey {
        let (duid, iaid, kind, link) = (key.duid(), key.iaid(), key.kind(), key.link());
        self.ahead
            .alloc_key_of(duid, iaid, kind, link)
            .unwrap_or_else(|| AllocKey::new(self.engine.table.salt(), duid, iaid, &self.link.name))
    }

    fn key(&self, ia: &Ia<'r>) -> IaKey<'x> {
        let (duid, iaid, kind, link) = (self.client.duid, ia.iaid(), ia.kind(), self.client.link);
        let table = &self.engine.table;
        match self.ahead.hash_of(duid, iaid, kind, link) {
            Some(hash) => table
                .ia_key_hashed(duid, iaid, kind, link, hash)
                .with_addr_hash(self.ahead.candidate_of(duid, iaid, kind, link)),
            None => table.ia_key(duid, iaid, kind, link),
        }
        .with_relay(self.relay)
        .with_reconfigure(self.reconfigure)
    }

    /// The reserved address (as a /128) or prefix of the client on its link.
    fn reservation(&self, kind: IaKind) -> Option<Prefix> {
        let reservation = self.reservation?;
        match kind {
            IaKind::Na => reservation
                .address
                .and_then(|addr| Prefix::new(addr, 128).ok()),
            IaKind::Pd => reservation.prefix,
        }
    }
}

/// What a client may hold on its link from this server (RFC 9915 §18.3.4: what is
/// "appropriate for the link"): a unit that the server's ranges hand out (with `foreign`, any
/// unit of a pool prefix, `rebind-foreign = "extend"`), or the client's reserved address or
/// prefix.
#[derive(Clone, Copy)]
struct Served<'p> {
    pools: &'p LinkPools,
    foreign: bool,
    reservation: Option<Prefix>,
}

impl Served<'_> {
    /// Whether the client may hold the unit `bits` of length `len`.
    fn admits(&self, kind: IaKind, bits: u128, len: u8) -> bool {
        self.reservation
            .is_some_and(|reserved| reserved.bits() == bits && reserved.len() == len)
            || self.pools.serves(kind, bits, len, self.foreign)
    }

    /// Whether the client may keep `lease`.
    fn lease(&self, lease: &Lease) -> bool {
        self.admits(lease.kind, lease.addr, lease.prefix_len)
    }
}

pub(super) fn lifetimes_of(link: &Link) -> Lifetimes {
    Lifetimes {
        preferred: link.timers.preferred,
        valid: link.timers.valid,
    }
}

/// Whether an address or prefix the client listed, other than the one it keeps, goes back with
/// lifetimes 0 (RFC 9915 §18.3.4, §18.3.5): always once the IA is settled (next to its binding,
/// or where the server would have created one and found nothing to assign), else when it is
/// not appropriate for the link (not handed out by this server), and on Rebind, where this
/// server cannot extend it.
fn zero_lifetimes(settled: bool, appropriate: bool, msg_type: MessageType) -> bool {
    settled || !appropriate || msg_type == MessageType::Rebind
}

/// The status of an IA for which nothing could be assigned.
pub(super) fn unavailable(w: &mut MessageWriter<'_>, kind: IaKind) -> Result<(), DropReason> {
    match kind {
        IaKind::Na => w.status_code(StatusCode::NoAddrsAvail, "no addresses available")?,
        // RFC 9915 §18.3.2, in substance:
        // If the server cannot assign any delegated prefixes to an IA in the message from
        // the client, the server MUST include the IA in the Reply message with no delegated
        // prefixes in the IA and a Status Code option in the IA containing status code
        // NoPrefixAvail.
        IaKind::Pd => w.status_code(StatusCode::NoPrefixAvail, "no prefixes available")?,
    }
    Ok(())
}

/// The status of an IA that Renew or Rebind left without a binding.
fn not_extended(w: &mut MessageWriter<'_>, create: bool, kind: IaKind) -> Result<(), DropReason> {
    if create {
        // RFC 9915 §18.3.4, §18.3.5, in substance:
        // If the server is configured to create new bindings as a result of processing
        // Renew (Rebind) messages but the server will not assign any leases to an IA, the
        // server returns the IA option containing a Status Code option with the
        // NoAddrsAvail or NoPrefixAvail status code.
        unavailable(w, kind)
    } else {
        // RFC 9915 §18.3.4, §18.3.5, in substance:
        // If the server does not support creation of new bindings for the client sending a
        // Renew (Rebind) message or the server is not configured to create new bindings as a
        // result of processing Renew messages, the server returns the IA option containing
        // a Status Code option with the NoBinding status code.
        w.status_code(StatusCode::NoBinding, "no binding for this IA")?;
        Ok(())
    }
}
