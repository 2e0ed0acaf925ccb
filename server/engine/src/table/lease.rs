//! What the table holds and reports: leases and their records, the events of their changes,
//! and the key of a client's identity association.

use std::fmt;
use std::net::Ipv6Addr;

use super::INFINITE;
use super::relay::RelayData;
use super::shard::{kind_bits, mix64};
use crate::alloc::SaltKey;
use crate::config::LinkId;

/// DUIDs up to this length live inside the record (DUID-LLT 14, DUID-EN ≤ 22, DUID-UUID 18).
pub const INLINE_DUID_LEN: usize = 22;

/// An owned copy of a client DUID, as the table keeps it (the borrowed wire view is
/// [`xdhcp6_proto::Duid`]): inline when it is at most [`INLINE_DUID_LEN`] bytes, on the heap
/// otherwise.
#[derive(Clone)]
pub struct DuidBuf(DuidRepr);

#[derive(Clone)]
enum DuidRepr {
    Inline {
        len: u8,
        bytes: [u8; INLINE_DUID_LEN],
    },
    Spilled(Box<[u8]>),
}

impl DuidBuf {
    /// Copies `bytes`; allocates only when they do not fit inline.
    pub fn new(bytes: &[u8]) -> Self {
        if bytes.len() <= INLINE_DUID_LEN {
            let mut inline = [0; INLINE_DUID_LEN];
            inline[..bytes.len()].copy_from_slice(bytes);
            Self(DuidRepr::Inline {
                len: bytes.len() as u8,
                bytes: inline,
            })
        } else {
            Self(DuidRepr::Spilled(bytes.into()))
        }
    }

    /// The DUID bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            DuidRepr::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or(bytes),
            DuidRepr::Spilled(bytes) => bytes,
        }
    }

    /// Whether the DUID was too long to be stored inline.
    pub fn is_spilled(&self) -> bool {
        matches!(self.0, DuidRepr::Spilled(_))
    }

    pub(super) fn empty() -> Self {
        Self(DuidRepr::Inline {
            len: 0,
            bytes: [0; INLINE_DUID_LEN],
        })
    }
}

impl PartialEq for DuidBuf {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for DuidBuf {}

impl fmt::Debug for DuidBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.as_bytes() {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// The kind of identity association a lease belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum IaKind {
    /// IA_NA: a non-temporary address.
    Na,
    /// IA_PD: a delegated prefix.
    Pd,
}

/// The state of a lease in the table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum LeaseState {
    /// Reserved for a short hold ([`ClaimAs::Offered`]); the engine's Advertise reserves
    /// nothing, so only a caller of the table makes these.
    Offered,
    /// Assigned by a Reply.
    Bound,
    /// Declined by a client: quarantined, given to nobody until its probation ends.
    Declined,
}

/// Preferred and valid lifetimes in seconds ([`INFINITE`] for infinity).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Lifetimes {
    /// The preferred lifetime.
    pub preferred: u32,
    /// The valid lifetime.
    pub valid: u32,
}

/// A lease without its DUID: what lookups and claims return.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Lease {
    /// The address, or the first address of the delegated prefix.
    pub addr: u128,
    /// 128 for an address, the delegated length for a prefix.
    pub prefix_len: u8,
    /// IA_NA or IA_PD.
    pub kind: IaKind,
    /// The IAID of the client's IA.
    pub iaid: u32,
    /// The link the lease was assigned on (a handle of the configuration loaded: persist its
    /// name).
    pub link: LinkId,
    /// Offered, bound or declined.
    pub state: LeaseState,
    /// The lifetimes given to the client.
    pub lifetimes: Lifetimes,
    /// When the lease (or the offer hold, or the probation) ends, on the engine clock.
    pub expires: u32,
}

impl Lease {
    /// The address (or first address of the prefix) as an [`Ipv6Addr`].
    pub fn ip(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.addr)
    }

    /// Whether the lease has run out at `now`.
    pub fn is_expired(&self, now: u32) -> bool {
        self.expires != INFINITE && now >= self.expires
    }
}

/// A whole lease, DUID and relay data included: events, dumps, journal replay.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LeaseRecord {
    /// The client's DUID.
    pub duid: DuidBuf,
    /// Everything else.
    pub lease: Lease,
    /// What the relay agents said when the lease was last bound or extended (`None` for a
    /// client that is not relayed).
    pub relay: Option<RelayData>,
    /// Whether the client sent Reconfigure Accept in the message that last bound or extended
    /// the lease, and was given its reconfigure key (RFC 9915 §20.4): the server may send it
    /// Reconfigure messages.
    pub reconfigure: bool,
}

impl LeaseRecord {
    /// A record without relay data.
    pub fn new(duid: DuidBuf, lease: Lease) -> Self {
        Self {
            duid,
            lease,
            relay: None,
            reconfigure: false,
        }
    }
}

/// What happened to a lease.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum EventKind {
    /// Held for a client ([`ClaimAs::Offered`]); the engine, whose Advertise reserves nothing,
    /// emits none.
    Offered,
    /// Assigned (first Reply, or an offer taken up).
    Bound,
    /// Extended by a Renew, Rebind or repeated Request.
    Renewed,
    /// Given back by a Release; removed.
    Released,
    /// Declined; quarantined until the probation ends.
    Declined,
    /// Ran out (a bound lease or an offer hold); removed or reclaimed.
    Expired,
    /// A declined address left quarantine; removed or reclaimed.
    ProbationEnded,
}

/// One change to the table.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LeaseEvent {
    /// What happened.
    pub kind: EventKind,
    /// When, on the engine clock.
    pub at: u32,
    /// The lease after the change (before it, for removals).
    pub record: LeaseRecord,
}

/// Where the table puts its events; called with a shard lock held, so keep it short.
pub trait EventSink {
    /// Takes one event.
    fn emit(&mut self, event: LeaseEvent);

    /// Whether this sink reads the DUID and the relay data of the events' records (by
    /// default it does). A sink that answers `false` ([`Discard`]) is passed events whose
    /// record holds the lease, its kind, time and Reconfigure flag only, with an empty DUID
    /// and no relay data: the table copies no DUID and rebuilds no relay data for it.
    fn wants_records(&self) -> bool {
        true
    }

    /// Whether this sink takes events of `kind` at all (by default it does). The table builds
    /// and emits no event of a kind its sink turns down: a Renew answered for a sink that
    /// discards everything ([`Discard`]) costs no event.
    fn wants(&self, kind: EventKind) -> bool {
        let _ = kind;
        true
    }

    /// Takes a client's name and addresses for DNS updates (links with `[link.ddns]`); by
    /// default dropped.
    fn name(&mut self, binding: crate::fqdn::NameBinding) {
        let _ = binding;
    }
}

impl EventSink for Vec<LeaseEvent> {
    fn emit(&mut self, event: LeaseEvent) {
        self.push(event);
    }
}

/// An [`EventSink`] that drops every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct Discard;

impl EventSink for Discard {
    fn emit(&mut self, _event: LeaseEvent) {}

    fn wants_records(&self) -> bool {
        false
    }

    fn wants(&self, _kind: EventKind) -> bool {
        false
    }
}

/// The state a claim puts a lease in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ClaimAs {
    /// An offer held for `hold` seconds (Advertise).
    Offered {
        /// Seconds the address stays reserved for the client.
        hold: u32,
    },
    /// A binding that lasts for the valid lifetime (Reply).
    Bound,
}

/// Why a claim failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimError {
    /// Another client holds the address, or it is declined and in probation.
    #[error("address is taken")]
    Taken,
    /// The shard that would hold the record has no free slot location left.
    #[error("lease table is full")]
    Full,
}

/// Why a renew, release or decline failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// The client holds no lease on that address (never had, released, or lost it).
    #[error("client holds no lease on this address")]
    NotFound,
}

/// What [`LeaseTable::handle_timeout`](super::LeaseTable::handle_timeout) did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SweepReport {
    /// Entries of the expiry index looked at (stale ones included).
    pub examined: usize,
    /// Leases removed (expired, or out of probation).
    pub removed: usize,
}

/// What [`LeaseTable::restore`](super::LeaseTable::restore) did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct RestoreReport {
    /// Records loaded (a later record for the same client and address replaces an earlier one).
    pub loaded: usize,
    /// Records skipped because another client held the address, or the table was full.
    pub conflicts: usize,
}

/// A client's identity association: (DUID, IAID, kind, link) with its hash computed once,
/// and the relay data a claim or renewal through it stores ([`IaKey::with_relay`]).
/// The bits of [`IaKey`]'s hash that hash the DUID alone (the client shard is chosen from
/// them, the most significant first).
pub(super) const DUID_HASH_MASK: u32 = 0xffff_0000;

/// The DUID part of an [`IaKey`] hash, from the keyed DUID hash.
pub(super) fn duid_hash_bits(duid_bits: u64) -> u32 {
    (duid_bits >> 32) as u32 & DUID_HASH_MASK
}

#[derive(Clone, Copy, Debug)]
pub struct IaKey<'a> {
    pub(super) duid: &'a [u8],
    pub(super) iaid: u32,
    pub(super) kind: IaKind,
    pub(super) link: LinkId,
    pub(super) hash: u32,
    pub(super) relay: Option<&'a RelayData>,
    pub(super) reconfigure: bool,
    /// An address and its address index hash, computed ahead
    /// ([`super::LeaseTable::prefetch_addr_index`]).
    pub(super) addr_hash: Option<(u128, u64)>,
}

impl<'a> IaKey<'a> {
    /// Hashes the key under `salt` (the table's random index key, see
    /// [`super::LeaseTable::ia_key`]).
    ///
    /// The hash covers (DUID, IAID, kind) only: it places the client in the table, in this
    /// process, and the link is compared on the record. Its top 16 bits hash the DUID alone
    /// ([`DUID_HASH_MASK`]), so every IA of one client sits in one client shard and a lookup by
    /// DUID ([`super::LeaseTable::client_leases`]) visits that shard only. The address a client gets is hashed
    /// apart, by the link's name ([`crate::alloc::AllocKey`]).
    pub(crate) fn new(
        salt: &SaltKey,
        duid: &'a [u8],
        iaid: u32,
        kind: IaKind,
        link: LinkId,
    ) -> Self {
        let duid_bits = salt.hash_duid(duid);
        let ia = mix64(duid_bits.rotate_left(29) ^ u64::from(iaid) ^ kind_bits(kind));
        Self {
            duid,
            iaid,
            kind,
            link,
            hash: duid_hash_bits(duid_bits) | (ia as u32 & !DUID_HASH_MASK),
            relay: None,
            reconfigure: false,
            addr_hash: None,
        }
    }

    /// A key whose `hash` was computed by [`Self::new`] for the same DUID, IAID and kind.
    pub(crate) fn hashed(duid: &'a [u8], iaid: u32, kind: IaKind, link: LinkId, hash: u32) -> Self {
        Self {
            duid,
            iaid,
            kind,
            link,
            hash,
            relay: None,
            reconfigure: false,
            addr_hash: None,
        }
    }

    /// The same key, marking the leases a claim, binding or renewal through it makes or
    /// extends as those of a client that accepts Reconfigure messages
    /// ([`LeaseRecord::reconfigure`]). Lookups ignore it.
    pub fn with_reconfigure(self, reconfigure: bool) -> Self {
        Self {
            reconfigure,
            ..self
        }
    }

    /// The same key, carrying the relay data of the request: a claim, binding or renewal
    /// through it stores `relay` with the lease (`None`: the lease keeps none). Lookups ignore
    /// it.
    pub fn with_relay(self, relay: Option<&'a RelayData>) -> Self {
        Self { relay, ..self }
    }

    /// The same key, carrying the address index hash of an address of its kind, as
    /// [`super::LeaseTable::prefetch_addr_index`] returned it: a claim of that address or a
    /// look at it through this key does not hash it again.
    pub(crate) fn with_addr_hash(self, addr_hash: Option<(u128, u64)>) -> Self {
        Self { addr_hash, ..self }
    }

    /// The relay data a claim or renewal through this key stores.
    pub fn relay(&self) -> Option<&'a RelayData> {
        self.relay
    }

    /// The DUID bytes.
    pub fn duid(&self) -> &'a [u8] {
        self.duid
    }

    /// The client index hash (under the table's random key), for
    /// [`super::LeaseTable::prefetch_client_index`].
    pub fn hash(&self) -> u32 {
        self.hash
    }

    /// The IAID.
    pub fn iaid(&self) -> u32 {
        self.iaid
    }

    /// IA_NA or IA_PD.
    pub fn kind(&self) -> IaKind {
        self.kind
    }

    /// The link.
    pub fn link(&self) -> LinkId {
        self.link
    }
}
