//! The lock-sharded lease table.
//!
//! # Layout
//!
//! Two arrays of N (a power of two) shards, each shard behind its own `parking_lot::Mutex`:
//!
//! - **address shards**, chosen by a hash of (address or prefix, IA kind), are authoritative:
//!   each holds a slab of compact 80-byte records (`Vec<Record>` plus a free list), an index
//!   from address to slab slot (`u64` entries: 32 bits of the address hash, the slot), so an
//!   address holds at most one lease, and an expiry index (a min-heap of expiry and slot) that
//!   [`LeaseTable::handle_timeout`] pops;
//! - **client shards**, chosen by the client key hash, hold `u64` entries (32-bit client hash,
//!   32-bit location of the record in an address shard).
//!
//! Both indexes are open-addressed arrays probed linearly from the hash (`table/index.rs`), so
//! that a lookup reads one cache line of entries before the record (no separate control bytes
//! to miss on first), and a batch can prefetch that line from the hash alone
//! (`table/prefetch.rs`). Each kind's shard indexes start in one allocation that the kernel
//! may back with huge pages (`table/slots.rs`). A client may hold
//!   several leases (one entry each); entries are verified against the record on every lookup,
//!   so a stale one is harmless and is dropped when met. The hash's top 16 bits hash the DUID
//!   alone, so all of a client's IAs share one client shard and a lookup by DUID alone
//!   ([`LeaseTable::client_leases`]: Leasequery by client identifier, the control API) walks
//!   that shard, not the table.
//!
//! At 10 million IA_NA leases this is 80 bytes of record, 8 bytes of address index and 8 of
//! client index per slot at a load factor up to 3/4 (13.4 bytes each per lease in a table
//! sized for them: 19,532 leases in 32,768 slots a shard), and 8 bytes of expiry index (16 at
//! most, with stale entries): roughly 115 to 123 bytes per lease, 126.6 measured with the
//! relay data (`cargo bench --bench lease_memory -- 10000000 relay`).
//!
//! A record keeps the per-client part of its lease's relay data inline (20 bytes: a handle,
//! a link-local peer's interface identifier, an Ethernet link-layer address); the rest is
//! interned in two reference-counted stores shared by the whole table, one entry per relay
//! port and one per subscriber line (`table/relay.rs`; `cargo bench --bench
//! lease_memory -- COUNT relay` measures it).
//!
//! Both indexes hash under a key drawn at random for each table, never the configured salt:
//! clients choose the addresses they Rebind and Decline, and their DUIDs, and may know the
//! salt, so they must not be able to aim at one bucket. The salt keys only the allocation
//! hash ([`crate::alloc::AllocKey`]), which servers of the identical model must share.
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

mod bulk;
mod index;
mod intern_index;
mod lease;
mod locks;
#[allow(unsafe_code)]
mod prefetch;
mod relay;
mod shard;
#[allow(unsafe_code)]
mod slots;

use std::fmt;
use std::sync::Arc;

use self::index::HashIndex;
use self::locks::Mutex;

pub use self::lease::{
    ClaimAs, ClaimError, Discard, DuidBuf, EventKind, EventSink, INLINE_DUID_LEN, IaKey, IaKind,
    Lease, LeaseError, LeaseEvent, LeaseRecord, LeaseState, Lifetimes, RestoreReport, SweepReport,
};
#[cfg(feature = "lock-stats")]
pub use self::locks::{LockWaits, lock_waits};
use self::prefetch::Window;
use self::relay::RelayStore;
pub use self::relay::{
    Captured, KEPT_OPTIONS, MAX_RELAY_DATA_LEN, MAX_RELAY_HOPS, RelayData, RelayHop, RelayMatch,
    RelayQuery, RelayStats,
};
use self::shard::{
    AddrShard, ClientShard, Record, STATE_BOUND, STATE_DECLINED, STATE_OFFERED, addr_hash, expiry,
    random_key,
};
use crate::alloc::SaltKey;
use crate::config::LinkId;

/// The lifetime and expiry value that never runs out (RFC 9915 §7.7: 0xffffffff is infinity).
pub const INFINITE: u32 = u32::MAX;

/// The fewest shards a table has.
pub const MIN_SHARDS: usize = 64;

/// The most shards a table has (the location of a record keeps 10 bits for its shard).
pub const MAX_SHARDS: usize = 1024;

/// How many leases a shard is sized for when the table picks its shard count.
const LEASES_PER_SHARD: usize = 32 * 1024;

/// Leases per subscriber part of the relay data that the relay store is sized for at start:
/// a cable modem or an access line has several clients behind it (a router's address and its
/// delegated prefix, the hosts behind a modem). A store sized for one part per lease would
/// hold some 5 bytes a lease more at 10M leases in the cable mix of the `lease_memory` bench
/// (four leases a modem); past this the store grows.
const LEASES_PER_SUBSCRIBER: usize = 4;

/// Where [`LeaseTable::handle_timeout`] goes on: the address shard it looks at first.
#[derive(Default)]
struct SweepCursor {
    shard: usize,
}

/// The lease table shared by all workers.
pub struct LeaseTable {
    salt: SaltKey,
    /// The key of the address and client indexes: random, per table.
    index_key: SaltKey,
    shard_bits: u32,
    max_slot: u32,
    clients: Box<[Mutex<ClientShard>]>,
    addrs: Box<[Mutex<AddrShard>]>,
    cursor: Mutex<SweepCursor>,
    relays: RelayStore,
    /// Each client shard's index slots, each address shard's records and index slots, for
    /// prefetching without the locks (`table/prefetch.rs`).
    client_windows: Box<[Arc<Window>]>,
    record_windows: Box<[Arc<Window>]>,
    addr_index_windows: Box<[Arc<Window>]>,
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
        // Room for a shard that fills faster than the others (`shard::share_slack`), in each
        // kind's indexes (one allocation per kind, for huge pages: `table/slots.rs`) and in the
        // address shards' records and expiry heaps.
        let reserved = per_shard + shard::share_slack(per_shard);
        let clients: Box<[Mutex<ClientShard>]> = HashIndex::split(shards, reserved)
            .into_iter()
            .map(|index| Mutex::new(ClientShard::new(index)))
            .collect();
        let addrs: Box<[Mutex<AddrShard>]> = HashIndex::split(shards, reserved)
            .into_iter()
            .map(|index| Mutex::new(AddrShard::with_capacity(per_shard, reserved, index)))
            .collect();
        let client_windows = clients
            .iter()
            .map(|shard| Arc::clone(&shard.lock().window))
            .collect();
        let record_windows = addrs
            .iter()
            .map(|shard| Arc::clone(&shard.lock().window))
            .collect();
        let addr_index_windows = addrs
            .iter()
            .map(|shard| Arc::clone(&shard.lock().index_window))
            .collect();
        Self {
            salt,
            index_key: random_key(),
            shard_bits,
            // The all-ones location is never used: the client index marks empty slots with it.
            max_slot: (u32::MAX >> shard_bits) - 1,
            clients,
            addrs,
            cursor: Mutex::new(SweepCursor::default()),
            relays: RelayStore::with_capacity(expected_leases / LEASES_PER_SUBSCRIBER),
            client_windows,
            record_windows,
            addr_index_windows,
        }
    }

    /// The key of a client's IA, hashed under this table's random index key.
    pub fn ia_key<'a>(&self, duid: &'a [u8], iaid: u32, kind: IaKind, link: LinkId) -> IaKey<'a> {
        IaKey::new(&self.index_key, duid, iaid, kind, link)
    }

    /// [`Self::ia_key`] with its `hash` computed before (by [`Self::ia_key`] of the same
    /// DUID, IAID, kind and link).
    pub(crate) fn ia_key_hashed<'a>(
        &self,
        duid: &'a [u8],
        iaid: u32,
        kind: IaKind,
        link: LinkId,
        hash: u32,
    ) -> IaKey<'a> {
        IaKey::hashed(duid, iaid, kind, link, hash)
    }

    /// The configured salt's key, for the allocation hash ([`crate::alloc::AllocKey`]); the
    /// table's own indexes are keyed apart, at random.
    pub fn salt(&self) -> &SaltKey {
        &self.salt
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
    pub fn find_client(&self, key: &IaKey<'_>) -> Option<Lease> {
        let mut clients = self.clients[self.client_shard_of(key.hash)].lock();
        loop {
            // An entry that points at no lease of this client nor of another one with the same
            // hash is stale (the slot was freed or reused by a client with another hash).
            let mut stale = None;
            for entry in clients.index.entries_of(key.hash) {
                let (shard, slot) = self.split_loc(entry as u32);
                let shard = self.addrs[shard].lock();
                match shard.records.get(slot) {
                    Some(record) if record.is_held() && record.matches(key) => {
                        return Some(record.lease());
                    }
                    // Another client whose hash collides: its entry, keep looking.
                    Some(record) if record.is_held() && self.client_hash_of(record) == key.hash => {
                    }
                    _ => {
                        stale = Some(entry);
                        break;
                    }
                }
            }
            clients.index.remove(stale?);
        }
    }

    /// Claims the client's current lease again, in place, found through the client index.
    ///
    /// The fast path of Request, Renew and Rebind, and of a repeated Solicit: the first offered
    /// or bound lease of `key` (as [`Self::find_client`] finds it) is offered again, bound, or
    /// renewed as [`Self::claim`] would, without searching the address index. `accept` may turn
    /// a lease down (an address no longer served, a mere offer where a binding is needed):
    /// that lease stays as it is and the client's next lease is tried; `None` when none is
    /// accepted, as when the client holds no lease.
    #[allow(clippy::too_many_arguments)]
    pub fn claim_current(
        &self,
        key: &IaKey<'_>,
        how: ClaimAs,
        lifetimes: Lifetimes,
        now: u32,
        accept: impl Fn(&Lease) -> bool,
        sink: &mut impl EventSink,
    ) -> Option<Lease> {
        let clients = self.clients[self.client_shard_of(key.hash)].lock();
        for entry in clients.index.entries_of(key.hash) {
            let (shard, slot) = self.split_loc(entry as u32);
            let mut shard = self.addrs[shard].lock();
            let shard = &mut *shard;
            let Some(record) = shard.records.get_mut(slot) else {
                continue;
            };
            if !(record.is_held() && record.matches(key)) {
                // A stale entry: `find_client` drops those; here it is only skipped.
                continue;
            }
            let lease = record.lease();
            if !accept(&lease) {
                continue;
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
            let moved = record.expires != expires;
            record.set(state, lifetimes, expires);
            self.relays.replace(&mut record.relay, key.relay);
            record.set_reconfigure(key.reconfigure);
            let event = sink
                .wants(event)
                .then(|| record.event(event, now, &self.relays, sink.wants_records(), key.relay));
            let lease = record.lease();
            if moved {
                shard.schedule(slot as u32, expires);
            }
            if let Some(event) = event {
                sink.emit(event);
            }
            return Some(lease);
        }
        None
    }

    /// The client's first offered or bound lease that `accept` takes, changing nothing: what
    /// an Advertise shows a client that holds a lease already.
    pub fn current(&self, key: &IaKey<'_>, accept: impl Fn(&Lease) -> bool) -> Option<Lease> {
        let clients = self.clients[self.client_shard_of(key.hash)].lock();
        clients.index.entries_of(key.hash).find_map(|entry| {
            let (shard, slot) = self.split_loc(entry as u32);
            let shard = self.addrs[shard].lock();
            shard
                .records
                .get(slot)
                .filter(|record| record.is_held() && record.matches(key))
                .map(Record::lease)
                .filter(|lease| accept(lease))
        })
    }

    /// Passes every lease (any state) of the client with this DUID to `each`, on every link,
    /// IA type and IAID: a walk of the one client shard its DUID selects (the top bits of each
    /// [`IaKey`] hash the DUID alone), reading only the records whose entries carry the same
    /// DUID bits. Each lease is passed once, with no lock held.
    pub fn client_leases(&self, duid: &[u8], mut each: impl FnMut(&LeaseRecord)) {
        let bits = lease::duid_hash_bits(self.index_key.hash_duid(duid));
        let mut found = Vec::new();
        {
            let clients = self.clients[self.client_shard_of(bits)].lock();
            let mut locs: Vec<u32> = clients
                .index
                .iter()
                .filter(|&entry| (entry >> 32) as u32 & lease::DUID_HASH_MASK == bits)
                .map(|entry| entry as u32)
                .collect();
            // A stale entry may name a slot a live one names too.
            locs.sort_unstable();
            locs.dedup();
            for loc in locs {
                let (shard, slot) = self.split_loc(loc);
                let shard = self.addrs[shard].lock();
                if let Some(record) = shard
                    .records
                    .get(slot)
                    .filter(|record| !record.is_free() && record.duid.as_bytes() == duid)
                {
                    found.push(record.to_record(&self.relays));
                }
            }
        }
        for record in &found {
            each(record);
        }
    }

    /// Whether [`Self::claim`] would give `addr` to `key` at `now`: nobody holds it, the
    /// client does, or its lease or probation has run out. Changes nothing.
    pub fn is_free_for(&self, key: &IaKey<'_>, addr: u128, now: u32) -> bool {
        let hash = self.addr_hash_for(key, addr);
        let shard = self.addrs[self.addr_shard_of(hash)].lock();
        let Some(slot) = shard.find(hash, addr, key.kind) else {
            return true;
        };
        shard.records.get(slot as usize).is_some_and(|record| {
            (record.is_held() && record.matches(key)) || record.is_expired(now)
        })
    }

    /// Every offered or bound lease of `key`, passed to `each`.
    pub fn leases_of(&self, key: &IaKey<'_>, mut each: impl FnMut(Lease)) {
        let clients = self.clients[self.client_shard_of(key.hash)].lock();
        for entry in clients.index.entries_of(key.hash) {
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

    /// Every offered or bound lease of `key` as a whole record (DUID and relay data), passed
    /// to `each`: Leasequery by client identifier.
    pub fn records_of(&self, key: &IaKey<'_>, mut each: impl FnMut(LeaseRecord)) {
        let clients = self.clients[self.client_shard_of(key.hash)].lock();
        for entry in clients.index.entries_of(key.hash) {
            let (shard, slot) = self.split_loc(entry as u32);
            let shard = self.addrs[shard].lock();
            if let Some(record) = shard.records.get(slot)
                && record.is_held()
                && record.matches(key)
            {
                each(record.to_record(&self.relays));
            }
        }
    }

    /// The lease (any state) on `addr` of `kind`, with its DUID and relay data.
    pub fn lease_at(&self, addr: u128, kind: IaKind) -> Option<LeaseRecord> {
        let hash = addr_hash(addr, kind, &self.index_key);
        let shard = self.addrs[self.addr_shard_of(hash)].lock();
        let slot = shard.find(hash, addr, kind)?;
        shard
            .records
            .get(slot as usize)
            .map(|record| record.to_record(&self.relays))
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
        key: &IaKey<'_>,
        addr: u128,
        prefix_len: u8,
        how: ClaimAs,
        lifetimes: Lifetimes,
        now: u32,
        sink: &mut impl EventSink,
    ) -> Result<Lease, ClaimError> {
        let client_shard = self.client_shard_of(key.hash);
        let mut clients = self.clients[client_shard].lock();
        let hash = self.addr_hash_for(key, addr);
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
                let moved = record.expires != expires;
                record.set(state, lifetimes, expires);
                record.prefix_len = prefix_len;
                self.relays.replace(&mut record.relay, key.relay);
                record.set_reconfigure(key.reconfigure);
                let event = sink.wants(event).then(|| {
                    record.event(event, now, &self.relays, sink.wants_records(), key.relay)
                });
                let lease = record.lease();
                if moved {
                    shard.schedule(slot, expires);
                }
                if let Some(event) = event {
                    sink.emit(event);
                }
                clients.insert(key.hash, loc);
                return Ok(lease);
            }
            if !record.is_expired(now) {
                return Err(ClaimError::Taken);
            }
            let ended = if record.raw_state() == STATE_DECLINED {
                EventKind::ProbationEnded
            } else {
                EventKind::Expired
            };
            sink.emit(record.event(ended, now, &self.relays, sink.wants_records(), None));
            if record.is_held() {
                let old = self.client_hash_of(record);
                if self.client_shard_of(old) == client_shard {
                    clients.remove(old, loc);
                } else if let Some(mut other) = self.clients[self.client_shard_of(old)].try_lock() {
                    other.remove(old, loc);
                }
                // Otherwise the old entry stays: lookups verify the record and drop it.
            }
            self.relays.release(&record.relay);
            *record = Record::new(key, addr, prefix_len);
            record.set(state, lifetimes, expires);
            record.relay = self.relays.store(key.relay);
            record.set_reconfigure(key.reconfigure);
            let (event, lease) = (
                record.event(event, now, &self.relays, sink.wants_records(), key.relay),
                record.lease(),
            );
            shard.schedule(slot, expires);
            sink.emit(event);
            clients.insert(key.hash, loc);
            return Ok(lease);
        }
        let mut record = Record::new(key, addr, prefix_len);
        record.set(state, lifetimes, expires);
        record.relay = self.relays.store(key.relay);
        record.set_reconfigure(key.reconfigure);
        let lease = record.lease();
        let tail = record.relay;
        let Some(slot) = shard.insert(record, hash, self.max_slot) else {
            self.relays.release(&tail);
            return Err(ClaimError::Full);
        };
        if let Some(record) = shard.records.get(slot as usize) {
            sink.emit(record.event(event, now, &self.relays, sink.wants_records(), key.relay));
        }
        clients.insert(key.hash, self.loc(addr_shard, slot));
        Ok(lease)
    }

    /// Extends the client's offered or bound lease on `addr` (Renew, Rebind, Request, Confirm).
    pub fn renew(
        &self,
        key: &IaKey<'_>,
        addr: u128,
        lifetimes: Lifetimes,
        now: u32,
        sink: &mut impl EventSink,
    ) -> Result<Lease, LeaseError> {
        let hash = addr_hash(addr, key.kind, &self.index_key);
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
        let expires = expiry(now, lifetimes.valid);
        let moved = record.expires != expires;
        record.set(STATE_BOUND, lifetimes, expires);
        self.relays.replace(&mut record.relay, key.relay);
        record.set_reconfigure(key.reconfigure);
        let (event, lease) = (
            record.event(event, now, &self.relays, sink.wants_records(), key.relay),
            record.lease(),
        );
        if moved {
            shard.schedule(slot, expires);
        }
        sink.emit(event);
        Ok(lease)
    }

    /// Removes the client's lease on `addr` (Release, or an offer the client turned down).
    pub fn release(
        &self,
        key: &IaKey<'_>,
        addr: u128,
        now: u32,
        sink: &mut impl EventSink,
    ) -> Result<Lease, LeaseError> {
        let mut clients = self.clients[self.client_shard_of(key.hash)].lock();
        let hash = addr_hash(addr, key.kind, &self.index_key);
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
        sink.emit(record.event(
            EventKind::Released,
            now,
            &self.relays,
            sink.wants_records(),
            None,
        ));
        clients.remove(key.hash, self.loc(addr_shard, slot));
        shard.remove(slot, hash, &self.relays);
        Ok(lease)
    }

    /// Quarantines the client's lease on `addr` until `now + probation` (Decline).
    ///
    /// RFC 9915 §18.4.7: the server "SHOULD mark the addresses declined by the client so that
    /// those addresses are not assigned to other clients".
    pub fn decline(
        &self,
        key: &IaKey<'_>,
        addr: u128,
        probation: u32,
        now: u32,
        sink: &mut impl EventSink,
    ) -> Result<Lease, LeaseError> {
        let mut clients = self.clients[self.client_shard_of(key.hash)].lock();
        let hash = addr_hash(addr, key.kind, &self.index_key);
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
        let expires = now.saturating_add(probation);
        record.set(STATE_DECLINED, lifetimes, expires);
        let (event, lease) = (
            record.event(
                EventKind::Declined,
                now,
                &self.relays,
                sink.wants_records(),
                None,
            ),
            record.lease(),
        );
        shard.schedule(slot, expires);
        sink.emit(event);
        clients.remove(key.hash, self.loc(addr_shard, slot));
        Ok(lease)
    }

    /// What the relay data store holds: interned parts, and what it left out.
    pub fn relay_stats(&self) -> RelayStats {
        self.relays.stats()
    }

    /// Counts relay options left out of a lease's relay data ([`Captured::cut`]).
    pub fn count_relay_cut(&self, options: u32) {
        self.relays.count_cut(options);
    }

    /// The interned relay data that `query` selects, for [`Self::iter_shard_relayed`]: computed
    /// once per query from the interned parts (one per relay port and one per subscriber line,
    /// roughly), never from the leases.
    pub fn relay_match(&self, query: &RelayQuery<'_>) -> RelayMatch {
        self.relays.matching(query)
    }

    /// The client index hash of the IA a record belongs to (as [`Self::ia_key`] computes it:
    /// records do not keep it).
    fn client_hash_of(&self, record: &Record) -> u32 {
        IaKey::new(
            &self.index_key,
            record.duid.as_bytes(),
            record.iaid,
            record.kind(),
            LinkId(record.link),
        )
        .hash
    }

    /// The address index hash of `addr` of the key's kind: the one the key carries, when it
    /// is of this address ([`IaKey::with_addr_hash`]).
    fn addr_hash_for(&self, key: &IaKey<'_>, addr: u128) -> u64 {
        match key.addr_hash {
            Some((ahead, hash)) if ahead == addr => hash,
            _ => addr_hash(addr, key.kind, &self.index_key),
        }
    }

    fn client_shard_of(&self, client_hash: u32) -> usize {
        client_hash.checked_shr(32 - self.shard_bits).unwrap_or(0) as usize
    }

    fn addr_shard_of(&self, hash: u64) -> usize {
        // Middle bits: the shard's index keys on the low 32 (`shard::index_hash`).
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
    fn record_is_80_bytes_and_short_duids_are_inline() {
        assert_eq!(std::mem::size_of::<Record>(), 80);
        assert_eq!(std::mem::size_of::<DuidBuf>(), 24);
        assert!(!DuidBuf::new(&[1; 14]).is_spilled());
        assert!(!DuidBuf::new(&[1; INLINE_DUID_LEN]).is_spilled());
        let long = DuidBuf::new(&[7; 130]);
        assert!(long.is_spilled());
        assert_eq!(long.as_bytes(), &[7; 130][..]);
        assert_eq!(DuidBuf::new(&[1, 2, 3]).as_bytes(), &[1, 2, 3]);
    }

    /// The shards fill unevenly: binding as many leases as the table expects, at hashed
    /// addresses, grows no shard's records, expiry heap or index (a shard that grew would copy
    /// itself inside the request that crossed its line).
    #[test]
    fn the_expected_leases_fit_without_a_shard_growing() {
        const EXPECTED: usize = 64 * 4000;
        let table = LeaseTable::with_capacity(EXPECTED, salt());
        let shape = |table: &LeaseTable| -> Vec<(usize, usize, usize, usize)> {
            table
                .addrs
                .iter()
                .zip(table.clients.iter())
                .map(|(addrs, clients)| {
                    let (addrs, clients) = (addrs.lock(), clients.lock());
                    (
                        addrs.records.capacity(),
                        addrs.expiry.capacity(),
                        addrs.index.slots().1,
                        clients.index.slots().1,
                    )
                })
                .collect()
        };
        let before = shape(&table);
        for n in 0..EXPECTED as u64 {
            let duid = n.to_be_bytes();
            let key = table.ia_key(&duid, 1, IaKind::Na, LinkId(0));
            let addr = u128::from(shard::mix64(n)) << 64 | u128::from(n);
            table
                .claim(&key, addr, 128, ClaimAs::Bound, LIFE, 0, &mut Discard)
                .expect("a free address");
        }
        assert_eq!(table.len(), EXPECTED);
        let fullest = table.addrs.iter().map(|shard| shard.lock().live).max();
        assert!(
            fullest > Some(EXPECTED / 64),
            "{fullest:?}: the shards fill unevenly"
        );
        assert_eq!(shape(&table), before, "a shard grew (fullest: {fullest:?})");
    }

    #[test]
    fn one_shard_table_works() {
        let table = LeaseTable::with_shards(4, 1, salt());
        let key = table.ia_key(b"duid-one", 1, IaKind::Na, LinkId(0));
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
        let key = table.ia_key(b"client", 1, IaKind::Na, LinkId(0));
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
    fn every_ia_of_a_duid_sits_in_one_client_shard_and_is_found_by_duid_alone() {
        let table = LeaseTable::with_shards(1 << 20, 1024, salt());
        let mut addr = 0u128;
        // 300 clients, each with IAs on two links, both kinds, several IAIDs.
        for client in 0..300u32 {
            let duid = format!("duid-{client}");
            let first = table.ia_key(duid.as_bytes(), 0, IaKind::Na, LinkId(0));
            for (iaid, kind, link) in [
                (0, IaKind::Na, 0),
                (1, IaKind::Na, 0),
                (7, IaKind::Pd, 0),
                (0, IaKind::Na, 1),
                (u32::MAX, IaKind::Pd, 1),
            ] {
                let key = table.ia_key(duid.as_bytes(), iaid, kind, LinkId(link));
                assert_eq!(
                    table.client_shard_of(key.hash),
                    table.client_shard_of(first.hash),
                    "client {client} IAID {iaid} {kind:?}"
                );
                addr += 1;
                let len = if kind == IaKind::Pd { 64 } else { 128 };
                table
                    .claim(&key, addr, len, ClaimAs::Bound, LIFE, 0, &mut Discard)
                    .unwrap();
            }
        }
        for client in [0u32, 17, 299] {
            let duid = format!("duid-{client}");
            let mut found = Vec::new();
            table.client_leases(duid.as_bytes(), |record| {
                assert_eq!(record.duid.as_bytes(), duid.as_bytes());
                found.push((record.lease.link.0, record.lease.kind, record.lease.iaid));
            });
            found.sort_unstable_by_key(|&(link, kind, iaid)| (link, kind == IaKind::Pd, iaid));
            assert_eq!(
                found,
                [
                    (0, IaKind::Na, 0),
                    (0, IaKind::Na, 1),
                    (0, IaKind::Pd, 7),
                    (1, IaKind::Na, 0),
                    (1, IaKind::Pd, u32::MAX),
                ]
            );
        }
        let mut none = 0;
        table.client_leases(b"duid-300", |_| none += 1);
        assert_eq!(none, 0);
    }

    #[test]
    fn a_lookup_by_duid_skips_stale_entries_and_reports_each_lease_once() {
        let table = LeaseTable::with_shards(4, 2, salt());
        let key = table.ia_key(b"client", 1, IaKind::Na, LinkId(0));
        table
            .claim(&key, 9, 128, ClaimAs::Bound, LIFE, 0, &mut Discard)
            .unwrap();
        let shard = table.client_shard_of(key.hash);
        let (live_shard, live_slot) = {
            let clients = table.clients[shard].lock();
            let entry = clients.index.iter().next().unwrap();
            table.split_loc(entry as u32)
        };
        // A duplicate of the live entry and one naming an empty slot.
        table.clients[shard]
            .lock()
            .insert(key.hash, table.loc(live_shard, live_slot as u32));
        table.clients[shard]
            .lock()
            .insert(key.hash, table.loc(1 - live_shard, 4000));
        let mut addrs = Vec::new();
        table.client_leases(b"client", |record| addrs.push(record.lease.addr));
        assert_eq!(addrs, [9]);
    }

    #[test]
    fn colliding_client_hashes_are_told_apart_and_kept() {
        let table = LeaseTable::with_shards(4, 1, salt());
        // Two DUIDs whose 32-bit client hashes collide under this table's key (the birthday
        // bound: some 80,000 tries).
        let mut seen = std::collections::HashMap::new();
        let (one, two) = (0u32..)
            .find_map(|n| {
                let hash = table
                    .ia_key(format!("client {n}").as_bytes(), 1, IaKind::Na, LinkId(0))
                    .hash;
                seen.insert(hash, n).map(|earlier| (earlier, n))
            })
            .unwrap();
        let (one, two) = (format!("client {one}"), format!("client {two}"));
        let one = table.ia_key(one.as_bytes(), 1, IaKind::Na, LinkId(0));
        let two = table.ia_key(two.as_bytes(), 1, IaKind::Na, LinkId(0));
        assert_eq!(one.hash, two.hash);
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
    fn address_index_key_differs_between_tables() {
        // Clients choose the addresses they Rebind or Decline and may know the salt (the
        // examples ship one): two tables of one salt must not index alike.
        let (one, two) = (
            LeaseTable::with_shards(4, 1, salt()),
            LeaseTable::with_shards(4, 1, salt()),
        );
        let hashes = |table: &LeaseTable| {
            (0..8u128)
                .map(|addr| addr_hash(addr, IaKind::Na, &table.index_key))
                .collect::<Vec<_>>()
        };
        assert_ne!(hashes(&one), hashes(&two));
        let (a, b) = (
            one.ia_key(b"client", 1, IaKind::Na, LinkId(0)),
            two.ia_key(b"client", 1, IaKind::Na, LinkId(0)),
        );
        assert_ne!(a.hash, b.hash, "the client index key is the salt's");
        // The allocation hash stays the salt's, the same on every server.
        assert_eq!(one.salt(), two.salt());
    }

    #[test]
    fn expiry_index_stays_bounded_under_renewals() {
        let table = LeaseTable::with_shards(4, 1, salt());
        let key = table.ia_key(b"renewer", 1, IaKind::Na, LinkId(0));
        table
            .claim(&key, 5, 128, ClaimAs::Bound, LIFE, 0, &mut Discard)
            .unwrap();
        for now in 1..100_000 {
            table.renew(&key, 5, LIFE, now, &mut Discard).unwrap();
        }
        assert!(table.addrs[0].lock().expiry.len() <= 2 + 1024 + 1);
        let mut events = Vec::new();
        table.handle_timeout(99_999 + LIFE.valid - 1, usize::MAX, &mut events);
        assert!(events.is_empty());
        table.handle_timeout(99_999 + LIFE.valid, usize::MAX, &mut events);
        assert_eq!(events.len(), 1);
        assert!(table.is_empty());
    }

    #[test]
    fn a_sink_that_reads_no_records_gets_the_lease_alone() {
        struct LeasesOnly(Vec<LeaseEvent>);
        impl EventSink for LeasesOnly {
            fn emit(&mut self, event: LeaseEvent) {
                self.0.push(event);
            }
            fn wants_records(&self) -> bool {
                false
            }
        }
        let table = LeaseTable::with_shards(4, 1, salt());
        let key = table.ia_key(b"counted", 3, IaKind::Na, LinkId(0));
        let (mut whole, mut bare) = (Vec::new(), LeasesOnly(Vec::new()));
        let lease = table
            .claim(&key, 7, 128, ClaimAs::Bound, LIFE, 0, &mut whole)
            .unwrap();
        table.renew(&key, 7, LIFE, 5, &mut bare).unwrap();
        assert_eq!(whole[0].record.duid.as_bytes(), b"counted");
        let [renewed] = &bare.0[..] else {
            panic!("one event: {:?}", bare.0)
        };
        assert_eq!(renewed.kind, EventKind::Renewed);
        assert_eq!(renewed.at, 5);
        assert_eq!(renewed.record.lease.addr, lease.addr);
        assert_eq!(renewed.record.lease.expires, 5 + LIFE.valid);
        assert!(renewed.record.duid.as_bytes().is_empty());
        assert_eq!(renewed.record.relay, None);
    }

    #[test]
    fn a_sink_that_turns_renewals_down_gets_none_and_the_lease_is_renewed() {
        struct NoRenewals(Vec<LeaseEvent>);
        impl EventSink for NoRenewals {
            fn emit(&mut self, event: LeaseEvent) {
                self.0.push(event);
            }
            fn wants(&self, kind: EventKind) -> bool {
                kind != EventKind::Renewed
            }
        }
        let table = LeaseTable::with_shards(4, 1, salt());
        let key = table.ia_key(b"renewing", 3, IaKind::Na, LinkId(0));
        let mut sink = NoRenewals(Vec::new());
        table
            .claim(&key, 7, 128, ClaimAs::Bound, LIFE, 0, &mut sink)
            .unwrap();
        let renewed = table
            .claim_current(&key, ClaimAs::Bound, LIFE, 5, |_| true, &mut sink)
            .unwrap();
        assert_eq!(renewed.expires, 5 + LIFE.valid);
        let again = table
            .claim(&key, 7, 128, ClaimAs::Bound, LIFE, 9, &mut sink)
            .unwrap();
        assert_eq!(again.expires, 9 + LIFE.valid);
        assert_eq!(table.find_client(&key).unwrap().expires, 9 + LIFE.valid);
        let kinds: Vec<EventKind> = sink.0.iter().map(|event| event.kind).collect();
        assert_eq!(kinds, [EventKind::Bound]);
        // The renewal's expiry is scheduled all the same.
        let report = table.handle_timeout(5 + LIFE.valid, 100, &mut sink);
        assert_eq!(report.removed, 0);
        assert!(table.find_client(&key).is_some());
    }

    #[test]
    fn infinite_lifetimes_never_expire() {
        let table = LeaseTable::with_shards(4, 1, salt());
        let key = table.ia_key(b"forever", 1, IaKind::Pd, LinkId(0));
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
