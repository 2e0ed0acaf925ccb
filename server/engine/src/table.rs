//! The lock-sharded lease table.
//!
//! # Layout
//!
//! Two arrays of N (a power of two) shards, each shard behind its own `parking_lot::Mutex`:
//!
//! - **address shards**, chosen by a hash of (address or prefix, IA kind), are authoritative:
//!   each holds a slab of compact 64-byte records (`Vec<Record>` plus a free list) and an index
//!   `HashTable<u32>` from address to slab slot, so an address holds at most one lease;
//! - **client shards**, chosen by the client key hash, hold `HashTable<u64>` entries
//!   (32-bit client hash, 32-bit location of the record in an address shard). A client may hold
//!   several leases (one entry each); entries are verified against the record on every lookup,
//!   so a stale one is harmless and is dropped when met.
//!
//! At 10 million IA_NA leases this is 64 bytes of record plus about 5 + 9 bytes of index per
//! bucket at a load factor between 7/16 and 7/8: roughly 80 to 100 bytes per lease.
//!
//! # Locking
//!
//! An operation that changes which client owns an address locks the client's client shard and
//! then the address's address shard, always in that order, and never blocks on a client shard
//! while it holds an address shard: where it would have to (the expiry sweep, reclaiming another
//! client's expired lease), it uses `try_lock` and leaves a stale client entry if that fails.
//! Claims are therefore atomic insert-if-free under the address shard lock.
//!
//! # Time
//!
//! All times are `u32` seconds on the engine clock (`now`), never read here. An expiry of
//! [`INFINITE`] never passes.

use std::fmt;
use std::net::Ipv6Addr;

use hashbrown::HashTable;
use parking_lot::Mutex;

use crate::alloc::{AllocKey, SaltKey};

/// The lifetime and expiry value that never runs out (RFC 9915 §7.7: 0xffffffff is infinity).
pub const INFINITE: u32 = u32::MAX;

/// The fewest shards a table has.
pub const MIN_SHARDS: usize = 64;

/// The most shards a table has (the location of a record keeps 10 bits for its shard).
pub const MAX_SHARDS: usize = 1024;

/// How many leases a shard is sized for when the table picks its shard count.
const LEASES_PER_SHARD: usize = 32 * 1024;

/// DUIDs up to this length live inside the record (DUID-LLT 14, DUID-EN ≤ 22, DUID-UUID 18).
pub const INLINE_DUID_LEN: usize = 22;

/// A DUID, stored inline when it is at most [`INLINE_DUID_LEN`] bytes, on the heap otherwise.
#[derive(Clone)]
pub struct Duid(DuidRepr);

#[derive(Clone)]
enum DuidRepr {
    Inline {
        len: u8,
        bytes: [u8; INLINE_DUID_LEN],
    },
    Spilled(Box<[u8]>),
}

impl Duid {
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

    fn empty() -> Self {
        Self(DuidRepr::Inline {
            len: 0,
            bytes: [0; INLINE_DUID_LEN],
        })
    }
}

impl PartialEq for Duid {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Duid {}

impl fmt::Debug for Duid {
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
    /// Reserved by an Advertise for a short hold so that the Request finds the same address.
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
    /// The link the lease was assigned on.
    pub link: u16,
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

/// A whole lease, DUID included: events, dumps, journal replay.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LeaseRecord {
    /// The client's DUID.
    pub duid: Duid,
    /// Everything else.
    pub lease: Lease,
}

/// What happened to a lease.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum EventKind {
    /// Reserved for an Advertise.
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
pub enum LeaseError {
    /// The client holds no lease on that address (never had, released, or lost it).
    #[error("client holds no lease on this address")]
    NotFound,
}

/// What [`LeaseTable::handle_timeout`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SweepReport {
    /// Slots looked at.
    pub examined: usize,
    /// Leases removed (expired, or out of probation).
    pub removed: usize,
}

/// What [`LeaseTable::restore`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct RestoreReport {
    /// Records loaded (a later record for the same client and address replaces an earlier one).
    pub loaded: usize,
    /// Records skipped because another client held the address, or the table was full.
    pub conflicts: usize,
}

/// A client's identity association: (DUID, IAID, kind, link) with its hashes computed once.
#[derive(Clone, Copy, Debug)]
pub struct ClientKey<'a> {
    duid: &'a [u8],
    iaid: u32,
    kind: IaKind,
    link: u16,
    alloc: AllocKey,
    hash: u32,
}

impl<'a> ClientKey<'a> {
    /// Hashes the key under `salt` (the table's salt, see [`LeaseTable::client_key`]).
    pub fn new(salt: &SaltKey, duid: &'a [u8], iaid: u32, kind: IaKind, link: u16) -> Self {
        let alloc = AllocKey::new(salt, duid, iaid, link);
        let bits = alloc.bits();
        let folded = (bits as u64) ^ ((bits >> 64) as u64).rotate_left(17) ^ kind_bits(kind);
        Self {
            duid,
            iaid,
            kind,
            link,
            alloc,
            hash: mix64(folded) as u32,
        }
    }

    /// The DUID bytes.
    pub fn duid(&self) -> &'a [u8] {
        self.duid
    }

    /// The IAID.
    pub fn iaid(&self) -> u32 {
        self.iaid
    }

    /// IA_NA or IA_PD.
    pub fn kind(&self) -> IaKind {
        self.kind
    }

    /// The link id.
    pub fn link(&self) -> u16 {
        self.link
    }

    /// The allocation hash of (DUID, IAID, link), for [`crate::alloc`].
    pub fn alloc_key(&self) -> &AllocKey {
        &self.alloc
    }
}

const STATE_FREE: u8 = 0;
const STATE_OFFERED: u8 = 1;
const STATE_BOUND: u8 = 2;
const STATE_DECLINED: u8 = 3;
const STATE_MASK: u8 = 0b11;
const KIND_PD: u8 = 0b1000_0000;

/// One slab slot: 64 bytes. The address is two `u64` so that the record is not 16-aligned.
struct Record {
    duid: Duid,
    addr_lo: u64,
    addr_hi: u64,
    iaid: u32,
    client_hash: u32,
    expires: u32,
    preferred: u32,
    valid: u32,
    link: u16,
    /// IA kind (top bit) and state (low two bits).
    flags: u8,
    prefix_len: u8,
}

impl Record {
    fn free() -> Self {
        Self {
            duid: Duid::empty(),
            addr_lo: 0,
            addr_hi: 0,
            iaid: 0,
            client_hash: 0,
            expires: 0,
            preferred: 0,
            valid: 0,
            link: 0,
            flags: STATE_FREE,
            prefix_len: 0,
        }
    }

    fn new(key: &ClientKey<'_>, addr: u128, prefix_len: u8) -> Self {
        let kind = match key.kind {
            IaKind::Na => 0,
            IaKind::Pd => KIND_PD,
        };
        Self {
            duid: Duid::new(key.duid),
            addr_lo: addr as u64,
            addr_hi: (addr >> 64) as u64,
            iaid: key.iaid,
            client_hash: key.hash,
            expires: 0,
            preferred: 0,
            valid: 0,
            link: key.link,
            flags: kind | STATE_FREE,
            prefix_len,
        }
    }

    fn addr(&self) -> u128 {
        u128::from(self.addr_hi) << 64 | u128::from(self.addr_lo)
    }

    fn kind(&self) -> IaKind {
        if self.flags & KIND_PD != 0 {
            IaKind::Pd
        } else {
            IaKind::Na
        }
    }

    fn raw_state(&self) -> u8 {
        self.flags & STATE_MASK
    }

    fn state(&self) -> LeaseState {
        match self.raw_state() {
            STATE_OFFERED => LeaseState::Offered,
            STATE_DECLINED => LeaseState::Declined,
            _ => LeaseState::Bound,
        }
    }

    fn is_free(&self) -> bool {
        self.raw_state() == STATE_FREE
    }

    /// Offered or bound: a client owns it.
    fn is_held(&self) -> bool {
        matches!(self.raw_state(), STATE_OFFERED | STATE_BOUND)
    }

    fn set(&mut self, state: u8, lifetimes: Lifetimes, expires: u32) {
        self.flags = (self.flags & !STATE_MASK) | state;
        self.preferred = lifetimes.preferred;
        self.valid = lifetimes.valid;
        self.expires = expires;
    }

    fn is_expired(&self, now: u32) -> bool {
        self.expires != INFINITE && now >= self.expires
    }

    fn matches(&self, key: &ClientKey<'_>) -> bool {
        self.client_hash == key.hash
            && self.iaid == key.iaid
            && self.link == key.link
            && self.kind() == key.kind
            && self.duid.as_bytes() == key.duid
    }

    fn lease(&self) -> Lease {
        Lease {
            addr: self.addr(),
            prefix_len: self.prefix_len,
            kind: self.kind(),
            iaid: self.iaid,
            link: self.link,
            state: self.state(),
            lifetimes: Lifetimes {
                preferred: self.preferred,
                valid: self.valid,
            },
            expires: self.expires,
        }
    }

    fn to_record(&self) -> LeaseRecord {
        LeaseRecord {
            duid: self.duid.clone(),
            lease: self.lease(),
        }
    }

    fn event(&self, kind: EventKind, at: u32) -> LeaseEvent {
        LeaseEvent {
            kind,
            at,
            record: self.to_record(),
        }
    }
}

/// An address shard: the records and the index from address to slot.
struct AddrShard {
    records: Vec<Record>,
    free: Vec<u32>,
    index: HashTable<u32>,
    live: usize,
}

impl AddrShard {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            records: Vec::with_capacity(capacity),
            free: Vec::new(),
            index: HashTable::with_capacity(capacity),
            live: 0,
        }
    }

    fn find(&self, hash: u64, addr: u128, kind: IaKind) -> Option<u32> {
        let records = &self.records;
        self.index
            .find(hash, |&slot| {
                records
                    .get(slot as usize)
                    .is_some_and(|record| record.addr() == addr && record.kind() == kind)
            })
            .copied()
    }

    /// Stores `record` in a free slot and indexes it; `None` if no slot location is left.
    fn insert(&mut self, record: Record, hash: u64, seed: u64, max_slot: u32) -> Option<u32> {
        let slot = match self.free.pop() {
            Some(slot) => {
                *self.records.get_mut(slot as usize)? = record;
                slot
            }
            None => {
                let slot = u32::try_from(self.records.len())
                    .ok()
                    .filter(|slot| *slot <= max_slot)?;
                self.records.push(record);
                slot
            }
        };
        let records = &self.records;
        self.index.insert_unique(hash, slot, |&slot| {
            records
                .get(slot as usize)
                .map_or(0, |record| addr_hash(record.addr(), record.kind(), seed))
        });
        self.live += 1;
        Some(slot)
    }

    fn remove(&mut self, slot: u32, hash: u64) {
        if let Ok(entry) = self.index.find_entry(hash, |&other| other == slot) {
            entry.remove();
        }
        if let Some(record) = self.records.get_mut(slot as usize) {
            *record = Record::free();
            self.free.push(slot);
            self.live -= 1;
        }
    }
}

/// A client shard: entries `(client hash << 32) | location`.
struct ClientShard {
    index: HashTable<u64>,
}

impl ClientShard {
    fn insert(&mut self, client_hash: u32, loc: u32) {
        let entry = client_entry(client_hash, loc);
        let hash = mix64(u64::from(client_hash));
        if self.index.find(hash, |&other| other == entry).is_none() {
            self.index
                .insert_unique(hash, entry, |&entry| mix64(entry >> 32));
        }
    }

    fn remove(&mut self, client_hash: u32, loc: u32) {
        let entry = client_entry(client_hash, loc);
        let hash = mix64(u64::from(client_hash));
        while let Ok(found) = self.index.find_entry(hash, |&other| other == entry) {
            found.remove();
        }
    }
}

/// Where [`LeaseTable::handle_timeout`] goes on.
#[derive(Default)]
struct SweepCursor {
    shard: usize,
    slot: usize,
}

/// The lease table shared by all workers.
pub struct LeaseTable {
    salt: SaltKey,
    seed: u64,
    shard_bits: u32,
    max_slot: u32,
    clients: Box<[Mutex<ClientShard>]>,
    addrs: Box<[Mutex<AddrShard>]>,
    cursor: Mutex<SweepCursor>,
}

impl fmt::Debug for LeaseTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseTable")
            .field("shards", &self.addrs.len())
            .finish_non_exhaustive()
    }
}

impl LeaseTable {
    /// A table sized for `expected_leases`, hashing client keys under `salt`.
    pub fn with_capacity(expected_leases: usize, salt: SaltKey) -> Self {
        let shards = (expected_leases / LEASES_PER_SHARD)
            .next_power_of_two()
            .clamp(MIN_SHARDS, MAX_SHARDS);
        Self::with_shards(expected_leases, shards, salt)
    }

    /// A table with `shards` shards (rounded to a power of two within the limits).
    pub fn with_shards(expected_leases: usize, shards: usize, salt: SaltKey) -> Self {
        let shards = shards.next_power_of_two().clamp(1, MAX_SHARDS);
        let shard_bits = shards.trailing_zeros();
        let per_shard = expected_leases.div_ceil(shards);
        let clients = (0..shards)
            .map(|_| {
                Mutex::new(ClientShard {
                    index: HashTable::with_capacity(per_shard),
                })
            })
            .collect();
        let addrs = (0..shards)
            .map(|_| Mutex::new(AddrShard::with_capacity(per_shard)))
            .collect();
        let seed = mix64(salt_seed(&salt));
        Self {
            salt,
            seed,
            shard_bits,
            max_slot: u32::MAX >> shard_bits,
            clients,
            addrs,
            cursor: Mutex::new(SweepCursor::default()),
        }
    }

    /// The key of a client's IA under this table's salt.
    pub fn client_key<'a>(
        &self,
        duid: &'a [u8],
        iaid: u32,
        kind: IaKind,
        link: u16,
    ) -> ClientKey<'a> {
        ClientKey::new(&self.salt, duid, iaid, kind, link)
    }

    /// The number of shards (of each of the two kinds).
    pub fn shard_count(&self) -> usize {
        self.addrs.len()
    }

    /// The number of leases held (offered, bound, declined, and expired ones not yet swept).
    pub fn len(&self) -> usize {
        self.addrs.iter().map(|shard| shard.lock().live).sum()
    }

    /// Whether the table holds no lease.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first offered or bound lease of `key`, expired or not.
    pub fn find_client(&self, key: &ClientKey<'_>) -> Option<Lease> {
        let mut clients = self.clients[self.client_shard_of(key.hash)].lock();
        let hash = mix64(u64::from(key.hash));
        loop {
            // `Some(true)`: the entry points at this client's lease, `Some(false)`: it is stale
            // (the slot was freed or reused by a client with another hash).
            let mut found = None;
            let mut lease = None;
            let entry = clients.index.find_entry(hash, |&entry| {
                if (entry >> 32) as u32 != key.hash {
                    return false;
                }
                let (shard, slot) = self.split_loc(entry as u32);
                let shard = self.addrs[shard].lock();
                match shard.records.get(slot) {
                    Some(record) if record.is_held() && record.client_hash == key.hash => {
                        if !record.matches(key) {
                            // Another client whose hash collides: its entry, keep looking.
                            return false;
                        }
                        lease = Some(record.lease());
                        found = Some(true);
                    }
                    _ => found = Some(false),
                }
                true
            });
            match (entry, found) {
                (Ok(_), Some(true)) => return lease,
                (Ok(stale), _) => {
                    stale.remove();
                }
                (Err(_), _) => return None,
            }
        }
    }

    /// Claims the client's current lease again, in place, found through the client index.
    ///
    /// The fast path of Request, Renew and Rebind, and of a repeated Solicit: the first offered
    /// or bound lease of `key` (as [`Self::find_client`] finds it) is offered again, bound, or
    /// renewed as [`Self::claim`] would, without searching the address index. `accept` may turn
    /// the lease down (an address no longer served, a mere offer where a binding is needed);
    /// then nothing changes and `None` is returned, as when the client holds no lease.
    #[allow(clippy::too_many_arguments)]
    pub fn claim_current(
        &self,
        key: &ClientKey<'_>,
        how: ClaimAs,
        lifetimes: Lifetimes,
        now: u32,
        accept: impl Fn(&Lease) -> bool,
        sink: &mut impl EventSink,
    ) -> Option<Lease> {
        let clients = self.clients[self.client_shard_of(key.hash)].lock();
        for &entry in clients.index.iter_hash(mix64(u64::from(key.hash))) {
            if (entry >> 32) as u32 != key.hash {
                continue;
            }
            let (shard, slot) = self.split_loc(entry as u32);
            let mut shard = self.addrs[shard].lock();
            let Some(record) = shard.records.get_mut(slot) else {
                continue;
            };
            if !(record.is_held() && record.matches(key)) {
                // A stale entry: `find_client` drops those; here it is only skipped.
                continue;
            }
            let lease = record.lease();
            if !accept(&lease) {
                return None;
            }
            let (state, expires, event) = match (record.raw_state(), how) {
                (STATE_BOUND, ClaimAs::Offered { .. }) => return Some(lease),
                (STATE_BOUND, ClaimAs::Bound) => (
                    STATE_BOUND,
                    expiry(now, lifetimes.valid),
                    EventKind::Renewed,
                ),
                (_, ClaimAs::Offered { hold }) => {
                    (STATE_OFFERED, now.saturating_add(hold), EventKind::Offered)
                }
                (_, ClaimAs::Bound) => {
                    (STATE_BOUND, expiry(now, lifetimes.valid), EventKind::Bound)
                }
            };
            record.set(state, lifetimes, expires);
            sink.emit(record.event(event, now));
            return Some(record.lease());
        }
        None
    }

    /// Every offered or bound lease of `key`, passed to `each`.
    pub fn leases_of(&self, key: &ClientKey<'_>, mut each: impl FnMut(Lease)) {
        let clients = self.clients[self.client_shard_of(key.hash)].lock();
        for &entry in clients.index.iter_hash(mix64(u64::from(key.hash))) {
            if (entry >> 32) as u32 != key.hash {
                continue;
            }
            let (shard, slot) = self.split_loc(entry as u32);
            let shard = self.addrs[shard].lock();
            if let Some(record) = shard.records.get(slot)
                && record.is_held()
                && record.matches(key)
            {
                each(record.lease());
            }
        }
    }

    /// The lease (any state) on `addr` of `kind`, with its DUID.
    pub fn lease_at(&self, addr: u128, kind: IaKind) -> Option<LeaseRecord> {
        let hash = addr_hash(addr, kind, self.seed);
        let shard = self.addrs[self.addr_shard_of(hash)].lock();
        let slot = shard.find(hash, addr, kind)?;
        shard.records.get(slot as usize).map(Record::to_record)
    }

    /// Claims `addr` (an address, or a prefix of `prefix_len`) for `key`, atomically.
    ///
    /// Succeeds if the address is free, already the client's (an offer is upgraded to a binding,
    /// a binding is renewed; a binding is never turned back into an offer), or held by an
    /// expired lease or a declined address out of probation, which is reclaimed with an
    /// [`EventKind::Expired`] or [`EventKind::ProbationEnded`] event first.
    #[allow(clippy::too_many_arguments)]
    pub fn claim(
        &self,
        key: &ClientKey<'_>,
        addr: u128,
        prefix_len: u8,
        how: ClaimAs,
        lifetimes: Lifetimes,
        now: u32,
        sink: &mut impl EventSink,
    ) -> Result<Lease, ClaimError> {
        let client_shard = self.client_shard_of(key.hash);
        let mut clients = self.clients[client_shard].lock();
        let hash = addr_hash(addr, key.kind, self.seed);
        let addr_shard = self.addr_shard_of(hash);
        let mut guard = self.addrs[addr_shard].lock();
        let shard = &mut *guard;
        let (state, expires, event) = match how {
            ClaimAs::Offered { hold } => {
                (STATE_OFFERED, now.saturating_add(hold), EventKind::Offered)
            }
            ClaimAs::Bound => (STATE_BOUND, expiry(now, lifetimes.valid), EventKind::Bound),
        };
        if let Some(slot) = shard.find(hash, addr, key.kind) {
            let loc = self.loc(addr_shard, slot);
            let Some(record) = shard.records.get_mut(slot as usize) else {
                return Err(ClaimError::Taken);
            };
            if record.is_held() && record.matches(key) {
                let event = match (record.raw_state(), how) {
                    (STATE_BOUND, ClaimAs::Offered { .. }) => return Ok(record.lease()),
                    (STATE_BOUND, ClaimAs::Bound) => EventKind::Renewed,
                    _ => event,
                };
                record.set(state, lifetimes, expires);
                record.prefix_len = prefix_len;
                sink.emit(record.event(event, now));
                clients.insert(key.hash, loc);
                return Ok(record.lease());
            }
            if !record.is_expired(now) {
                return Err(ClaimError::Taken);
            }
            let ended = if record.raw_state() == STATE_DECLINED {
                EventKind::ProbationEnded
            } else {
                EventKind::Expired
            };
            sink.emit(record.event(ended, now));
            if record.is_held() {
                let old = record.client_hash;
                if self.client_shard_of(old) == client_shard {
                    clients.remove(old, loc);
                } else if let Some(mut other) = self.clients[self.client_shard_of(old)].try_lock() {
                    other.remove(old, loc);
                }
                // Otherwise the old entry stays: lookups verify the record and drop it.
            }
            *record = Record::new(key, addr, prefix_len);
            record.set(state, lifetimes, expires);
            sink.emit(record.event(event, now));
            clients.insert(key.hash, loc);
            return Ok(record.lease());
        }
        let mut record = Record::new(key, addr, prefix_len);
        record.set(state, lifetimes, expires);
        let lease = record.lease();
        let slot = shard
            .insert(record, hash, self.seed, self.max_slot)
            .ok_or(ClaimError::Full)?;
        if let Some(record) = shard.records.get(slot as usize) {
            sink.emit(record.event(event, now));
        }
        clients.insert(key.hash, self.loc(addr_shard, slot));
        Ok(lease)
    }

    /// Extends the client's offered or bound lease on `addr` (Renew, Rebind, Request, Confirm).
    pub fn renew(
        &self,
        key: &ClientKey<'_>,
        addr: u128,
        lifetimes: Lifetimes,
        now: u32,
        sink: &mut impl EventSink,
    ) -> Result<Lease, LeaseError> {
        let hash = addr_hash(addr, key.kind, self.seed);
        let mut shard = self.addrs[self.addr_shard_of(hash)].lock();
        let slot = shard
            .find(hash, addr, key.kind)
            .ok_or(LeaseError::NotFound)?;
        let record = shard
            .records
            .get_mut(slot as usize)
            .filter(|record| record.is_held() && record.matches(key))
            .ok_or(LeaseError::NotFound)?;
        let event = if record.raw_state() == STATE_OFFERED {
            EventKind::Bound
        } else {
            EventKind::Renewed
        };
        record.set(STATE_BOUND, lifetimes, expiry(now, lifetimes.valid));
        sink.emit(record.event(event, now));
        Ok(record.lease())
    }

    /// Removes the client's lease on `addr` (Release, or an offer the client turned down).
    pub fn release(
        &self,
        key: &ClientKey<'_>,
        addr: u128,
        now: u32,
        sink: &mut impl EventSink,
    ) -> Result<Lease, LeaseError> {
        let mut clients = self.clients[self.client_shard_of(key.hash)].lock();
        let hash = addr_hash(addr, key.kind, self.seed);
        let addr_shard = self.addr_shard_of(hash);
        let mut shard = self.addrs[addr_shard].lock();
        let slot = shard
            .find(hash, addr, key.kind)
            .ok_or(LeaseError::NotFound)?;
        let record = shard
            .records
            .get(slot as usize)
            .filter(|record| record.is_held() && record.matches(key))
            .ok_or(LeaseError::NotFound)?;
        let lease = record.lease();
        sink.emit(record.event(EventKind::Released, now));
        clients.remove(key.hash, self.loc(addr_shard, slot));
        shard.remove(slot, hash);
        Ok(lease)
    }

    /// Quarantines the client's lease on `addr` until `now + probation` (Decline).
    ///
    /// RFC 9915 §18.4.7: the server "SHOULD mark the addresses declined by the client so that
    /// those addresses are not assigned to other clients".
    pub fn decline(
        &self,
        key: &ClientKey<'_>,
        addr: u128,
        probation: u32,
        now: u32,
        sink: &mut impl EventSink,
    ) -> Result<Lease, LeaseError> {
        let mut clients = self.clients[self.client_shard_of(key.hash)].lock();
        let hash = addr_hash(addr, key.kind, self.seed);
        let addr_shard = self.addr_shard_of(hash);
        let mut shard = self.addrs[addr_shard].lock();
        let slot = shard
            .find(hash, addr, key.kind)
            .ok_or(LeaseError::NotFound)?;
        let record = shard
            .records
            .get_mut(slot as usize)
            .filter(|record| record.is_held() && record.matches(key))
            .ok_or(LeaseError::NotFound)?;
        let lifetimes = Lifetimes {
            preferred: 0,
            valid: 0,
        };
        record.set(STATE_DECLINED, lifetimes, now.saturating_add(probation));
        sink.emit(record.event(EventKind::Declined, now));
        let lease = record.lease();
        clients.remove(key.hash, self.loc(addr_shard, slot));
        Ok(lease)
    }

    /// Removes leases that ran out by `now`, looking at no more than `budget` slots (at least
    /// one shard step per call) and going on where the previous call stopped.
    pub fn handle_timeout(
        &self,
        now: u32,
        budget: usize,
        sink: &mut impl EventSink,
    ) -> SweepReport {
        let mut cursor = self.cursor.lock();
        let mut report = SweepReport::default();
        let mut shards_left = self.addrs.len();
        while report.examined < budget && shards_left > 0 {
            let addr_shard = cursor.shard % self.addrs.len();
            let mut guard = self.addrs[addr_shard].lock();
            let shard = &mut *guard;
            let end = shard
                .records
                .len()
                .min(cursor.slot.saturating_add(budget - report.examined));
            for slot in cursor.slot..end {
                report.examined += 1;
                let Some(record) = shard.records.get(slot) else {
                    break;
                };
                if record.is_free() || !record.is_expired(now) {
                    continue;
                }
                let ended = if record.raw_state() == STATE_DECLINED {
                    EventKind::ProbationEnded
                } else {
                    EventKind::Expired
                };
                sink.emit(record.event(ended, now));
                let slot = slot as u32;
                let loc = self.loc(addr_shard, slot);
                if record.is_held() {
                    let old = record.client_hash;
                    // Never block on a client shard while holding an address shard.
                    if let Some(mut clients) = self.clients[self.client_shard_of(old)].try_lock() {
                        clients.remove(old, loc);
                    }
                }
                let hash = addr_hash(record.addr(), record.kind(), self.seed);
                shard.remove(slot, hash);
                report.removed += 1;
            }
            if end >= shard.records.len() {
                cursor.shard = (addr_shard + 1) % self.addrs.len();
                cursor.slot = 0;
                shards_left -= 1;
            } else {
                cursor.slot = end;
            }
        }
        report
    }

    /// Bulk-loads records (journal replay, start-up) without emitting events.
    pub fn restore(&self, records: impl IntoIterator<Item = LeaseRecord>) -> RestoreReport {
        let mut report = RestoreReport::default();
        for item in records {
            let lease = &item.lease;
            let key = self.client_key(item.duid.as_bytes(), lease.iaid, lease.kind, lease.link);
            let mut clients = self.clients[self.client_shard_of(key.hash)].lock();
            let hash = addr_hash(lease.addr, lease.kind, self.seed);
            let addr_shard = self.addr_shard_of(hash);
            let mut guard = self.addrs[addr_shard].lock();
            let shard = &mut *guard;
            let state = match lease.state {
                LeaseState::Offered => STATE_OFFERED,
                LeaseState::Bound => STATE_BOUND,
                LeaseState::Declined => STATE_DECLINED,
            };
            let slot = match shard.find(hash, lease.addr, lease.kind) {
                Some(slot) => {
                    let loc = self.loc(addr_shard, slot);
                    match shard.records.get_mut(slot as usize) {
                        Some(record) if record.matches(&key) => {
                            record.set(state, lease.lifetimes, lease.expires);
                            record.prefix_len = lease.prefix_len;
                            if state == STATE_DECLINED {
                                clients.remove(key.hash, loc);
                            }
                            Some(slot)
                        }
                        _ => None,
                    }
                }
                None => {
                    let mut record = Record::new(&key, lease.addr, lease.prefix_len);
                    record.set(state, lease.lifetimes, lease.expires);
                    shard.insert(record, hash, self.seed, self.max_slot)
                }
            };
            match slot {
                Some(slot) => {
                    if state != STATE_DECLINED {
                        clients.insert(key.hash, self.loc(addr_shard, slot));
                    }
                    report.loaded += 1;
                }
                None => report.conflicts += 1,
            }
        }
        report
    }

    /// Passes every lease of address shard `shard` (any state) to `each`, for dumps and
    /// leasequery; holds that shard's lock meanwhile.
    pub fn iter_shard(&self, shard: usize, mut each: impl FnMut(&LeaseRecord)) {
        let Some(shard) = self.addrs.get(shard) else {
            return;
        };
        let shard = shard.lock();
        for record in shard.records.iter().filter(|record| !record.is_free()) {
            each(&record.to_record());
        }
    }

    fn client_shard_of(&self, client_hash: u32) -> usize {
        client_hash.checked_shr(32 - self.shard_bits).unwrap_or(0) as usize
    }

    fn addr_shard_of(&self, hash: u64) -> usize {
        // Middle bits: hashbrown uses the low bits for the bucket and the top 7 for its tags.
        (hash >> 40) as usize & (self.addrs.len() - 1)
    }

    fn loc(&self, addr_shard: usize, slot: u32) -> u32 {
        slot << self.shard_bits | addr_shard as u32
    }

    fn split_loc(&self, loc: u32) -> (usize, usize) {
        let shard = loc as usize & (self.addrs.len() - 1);
        (shard, (loc >> self.shard_bits) as usize)
    }
}

fn client_entry(client_hash: u32, loc: u32) -> u64 {
    u64::from(client_hash) << 32 | u64::from(loc)
}

fn expiry(now: u32, valid: u32) -> u32 {
    if valid == INFINITE {
        INFINITE
    } else {
        now.saturating_add(valid).min(INFINITE - 1)
    }
}

fn kind_bits(kind: IaKind) -> u64 {
    match kind {
        IaKind::Na => 0,
        IaKind::Pd => 0x9e37_79b9_7f4a_7c15,
    }
}

fn salt_seed(salt: &SaltKey) -> u64 {
    AllocKey::new(salt, b"xdhcp6 address index", 0, 0).bits() as u64
}

/// The hash of an address in the address index (seeded per table; addresses are not chosen by
/// clients directly, so a fast mixer is enough).
fn addr_hash(addr: u128, kind: IaKind, seed: u64) -> u64 {
    mix64(addr as u64 ^ mix64((addr >> 64) as u64 ^ seed ^ kind_bits(kind)))
}

/// MurmurHash3's 64-bit finalizer.
fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn salt() -> SaltKey {
        SaltKey::from_salt("unit")
    }

    const LIFE: Lifetimes = Lifetimes {
        preferred: 100,
        valid: 200,
    };

    #[test]
    fn record_is_64_bytes_and_short_duids_are_inline() {
        assert_eq!(std::mem::size_of::<Record>(), 64);
        assert_eq!(std::mem::size_of::<Duid>(), 24);
        assert!(!Duid::new(&[1; 14]).is_spilled());
        assert!(!Duid::new(&[1; INLINE_DUID_LEN]).is_spilled());
        let long = Duid::new(&[7; 130]);
        assert!(long.is_spilled());
        assert_eq!(long.as_bytes(), &[7; 130][..]);
        assert_eq!(Duid::new(&[1, 2, 3]).as_bytes(), &[1, 2, 3]);
    }

    #[test]
    fn one_shard_table_works() {
        let table = LeaseTable::with_shards(4, 1, salt());
        let key = table.client_key(b"duid-one", 1, IaKind::Na, 0);
        let lease = table
            .claim(&key, 5, 128, ClaimAs::Bound, LIFE, 10, &mut Discard)
            .unwrap();
        assert_eq!(lease.expires, 210);
        assert_eq!(table.find_client(&key), Some(lease));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn stale_client_entries_are_dropped() {
        let table = LeaseTable::with_shards(4, 2, salt());
        let key = table.client_key(b"client", 1, IaKind::Na, 0);
        table
            .claim(&key, 9, 128, ClaimAs::Bound, LIFE, 0, &mut Discard)
            .unwrap();
        // Forge a stale entry pointing at an empty location.
        let shard = table.client_shard_of(key.hash);
        table.clients[shard]
            .lock()
            .insert(key.hash, table.loc(0, 4000));
        table.clients[shard]
            .lock()
            .insert(key.hash, table.loc(1, 4000));
        assert_eq!(table.find_client(&key).map(|lease| lease.addr), Some(9));
        let mut count = 0;
        table.leases_of(&key, |_| count += 1);
        assert_eq!(count, 1);
    }

    #[test]
    fn colliding_client_hashes_are_told_apart_and_kept() {
        let table = LeaseTable::with_shards(4, 1, salt());
        let one = table.client_key(b"client one", 1, IaKind::Na, 0);
        let mut two = table.client_key(b"client two", 1, IaKind::Na, 0);
        two.hash = one.hash;
        table
            .claim(&one, 1, 128, ClaimAs::Bound, LIFE, 0, &mut Discard)
            .unwrap();
        table
            .claim(&two, 2, 128, ClaimAs::Bound, LIFE, 0, &mut Discard)
            .unwrap();
        for _ in 0..2 {
            assert_eq!(table.find_client(&one).map(|lease| lease.addr), Some(1));
            assert_eq!(table.find_client(&two).map(|lease| lease.addr), Some(2));
        }
        assert_eq!(table.clients[0].lock().index.len(), 2);
    }

    #[test]
    fn infinite_lifetimes_never_expire() {
        let table = LeaseTable::with_shards(4, 1, salt());
        let key = table.client_key(b"forever", 1, IaKind::Pd, 0);
        let life = Lifetimes {
            preferred: INFINITE,
            valid: INFINITE,
        };
        let lease = table
            .claim(&key, 1 << 64, 56, ClaimAs::Bound, life, 5, &mut Discard)
            .unwrap();
        assert_eq!(lease.expires, INFINITE);
        let report = table.handle_timeout(u32::MAX, 100, &mut Discard);
        assert_eq!(report.removed, 0);
    }
}
