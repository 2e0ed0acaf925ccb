//! The two kinds of shard: address shards (a slab of 80-byte records and the index from
//! address to slot) and client shards (the index from client to record locations).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::Arc;

use super::INFINITE;
use super::index::HashIndex;
use super::lease::{
    DuidBuf, EventKind, IaKey, IaKind, Lease, LeaseEvent, LeaseRecord, LeaseState, Lifetimes,
};
use super::prefetch::Window;
use super::relay::{RelayData, RelayStore, RelayTail};
use super::slots;
use crate::alloc::SaltKey;
use crate::config::LinkId;

pub(super) const STATE_FREE: u8 = 0;
pub(super) const STATE_OFFERED: u8 = 1;
pub(super) const STATE_BOUND: u8 = 2;
pub(super) const STATE_DECLINED: u8 = 3;
pub(super) const STATE_MASK: u8 = 0b11;
pub(super) const KIND_PD: u8 = 0b1000_0000;
/// The client sent Reconfigure Accept in the message that last bound or extended the lease
/// (and was given its reconfigure key).
pub(super) const RECONFIGURE: u8 = 0b0100_0000;

/// One slab slot: 80 bytes. The address is two `u64` so that the record is not 16-aligned.
/// The client's index hash is not kept: the client index entries carry it, and the rare paths
/// that start from a record (a sweep, reclaiming another client's address) compute it again
/// from the DUID, IAID and kind ([`super::LeaseTable::client_hash_of`]).
pub(super) struct Record {
    pub(super) duid: DuidBuf,
    pub(super) addr_lo: u64,
    pub(super) addr_hi: u64,
    pub(super) iaid: u32,
    pub(super) expires: u32,
    pub(super) preferred: u32,
    pub(super) valid: u32,
    pub(super) link: u16,
    /// IA kind (top bit), [`RECONFIGURE`] and state (low two bits).
    pub(super) flags: u8,
    pub(super) prefix_len: u8,
    /// The per-client part of the relay data, and the handle of the rest
    /// ([`super::relay`]); released by whoever frees or overwrites the record.
    pub(super) relay: RelayTail,
}

impl Record {
    pub(super) fn free() -> Self {
        Self {
            duid: DuidBuf::empty(),
            addr_lo: 0,
            addr_hi: 0,
            iaid: 0,
            expires: 0,
            preferred: 0,
            valid: 0,
            link: 0,
            flags: STATE_FREE,
            prefix_len: 0,
            relay: RelayTail::default(),
        }
    }

    pub(super) fn new(key: &IaKey<'_>, addr: u128, prefix_len: u8) -> Self {
        let kind = match key.kind {
            IaKind::Na => 0,
            IaKind::Pd => KIND_PD,
        };
        Self {
            duid: DuidBuf::new(key.duid),
            addr_lo: addr as u64,
            addr_hi: (addr >> 64) as u64,
            iaid: key.iaid,
            expires: 0,
            preferred: 0,
            valid: 0,
            link: key.link.0,
            flags: kind | STATE_FREE,
            prefix_len,
            relay: RelayTail::default(),
        }
    }

    /// Sets whether the client accepts Reconfigure messages ([`RECONFIGURE`]).
    pub(super) fn set_reconfigure(&mut self, on: bool) {
        self.flags = (self.flags & !RECONFIGURE) | if on { RECONFIGURE } else { 0 };
    }

    pub(super) fn addr(&self) -> u128 {
        u128::from(self.addr_hi) << 64 | u128::from(self.addr_lo)
    }

    pub(super) fn kind(&self) -> IaKind {
        if self.flags & KIND_PD != 0 {
            IaKind::Pd
        } else {
            IaKind::Na
        }
    }

    pub(super) fn raw_state(&self) -> u8 {
        self.flags & STATE_MASK
    }

    pub(super) fn state(&self) -> LeaseState {
        match self.raw_state() {
            STATE_OFFERED => LeaseState::Offered,
            STATE_DECLINED => LeaseState::Declined,
            _ => LeaseState::Bound,
        }
    }

    pub(super) fn is_free(&self) -> bool {
        self.raw_state() == STATE_FREE
    }

    /// Offered or bound: a client owns it.
    pub(super) fn is_held(&self) -> bool {
        matches!(self.raw_state(), STATE_OFFERED | STATE_BOUND)
    }

    pub(super) fn set(&mut self, state: u8, lifetimes: Lifetimes, expires: u32) {
        self.flags = (self.flags & !STATE_MASK) | state;
        self.preferred = lifetimes.preferred;
        self.valid = lifetimes.valid;
        self.expires = expires;
    }

    pub(super) fn is_expired(&self, now: u32) -> bool {
        self.expires != INFINITE && now >= self.expires
    }

    pub(super) fn matches(&self, key: &IaKey<'_>) -> bool {
        self.iaid == key.iaid
            && self.link == key.link.0
            && self.kind() == key.kind
            && self.duid.as_bytes() == key.duid
    }

    pub(super) fn lease(&self) -> Lease {
        Lease {
            addr: self.addr(),
            prefix_len: self.prefix_len,
            kind: self.kind(),
            iaid: self.iaid,
            link: LinkId(self.link),
            state: self.state(),
            lifetimes: Lifetimes {
                preferred: self.preferred,
                valid: self.valid,
            },
            expires: self.expires,
        }
    }

    pub(super) fn to_record(&self, relays: &RelayStore) -> LeaseRecord {
        self.to_record_given(relays, None)
    }

    /// [`Self::to_record`], sharing `given` as the relay data when the record was just given
    /// it ([`RelayStore::store`] of `given`) rather than joining it again from the interned
    /// parts, which give the same bytes.
    fn to_record_given(&self, relays: &RelayStore, given: Option<&RelayData>) -> LeaseRecord {
        let relay = match given {
            Some(given) if !self.relay.is_none() => Some(given.clone()),
            _ => relays.load(&self.relay),
        };
        LeaseRecord {
            duid: self.duid.clone(),
            lease: self.lease(),
            relay,
            reconfigure: self.flags & RECONFIGURE != 0,
        }
    }

    /// The event of a change to this record: with its DUID and relay data when `whole`, with
    /// the lease alone otherwise ([`super::EventSink::wants_records`]). `given`: the relay
    /// data the record was just given, if the change stored one
    /// ([`Self::to_record_given`]).
    pub(super) fn event(
        &self,
        kind: EventKind,
        at: u32,
        relays: &RelayStore,
        whole: bool,
        given: Option<&RelayData>,
    ) -> LeaseEvent {
        let record = if whole {
            self.to_record_given(relays, given)
        } else {
            LeaseRecord {
                duid: DuidBuf::empty(),
                lease: self.lease(),
                relay: None,
                reconfigure: self.flags & RECONFIGURE != 0,
            }
        };
        LeaseEvent { kind, at, record }
    }
}

/// Room a shard keeps past its share of `share` leases: a shard's count of a table's leases,
/// hashed evenly, varies by about the square root of its share, and four times that leaves
/// every shard of a table of 1,024 room until the table holds its expected leases (a shard
/// past it by chance: 1 in 30,000).
pub(super) fn share_slack(share: usize) -> usize {
    4 * share.isqrt() + 16
}

/// An address shard: the records, the index from address to slot, and the expiry index.
pub(super) struct AddrShard {
    pub(super) records: Vec<Record>,
    pub(super) free: Vec<u32>,
    /// Entries `(index hash << 32) | slot`, the index hash being the address hash's low 32
    /// bits ([`index_hash`]).
    pub(super) index: HashIndex,
    pub(super) live: usize,
    /// A min-heap of `expires << 32 | slot`, one entry per change of a record's expiry (never
    /// for [`INFINITE`]). An entry whose record is free or has another expiry by now is stale
    /// and skipped when it comes up; [`Self::schedule`] rebuilds the heap from the records
    /// when stale entries outnumber the live ones.
    pub(super) expiry: BinaryHeap<Reverse<u64>>,
    /// Where the records are, for prefetching without the lock.
    pub(super) window: Arc<Window>,
    /// Where the index's slots are, for prefetching without the lock.
    pub(super) index_window: Arc<Window>,
}

impl AddrShard {
    /// A shard for its share, `capacity`, of the table's expected leases, with room for
    /// `reserved` (the share and its [`share_slack`]), indexed by `index` (empty, of that
    /// room).
    ///
    /// The records' and the expiry heap's memory for `capacity` is faulted in now
    /// ([`slots::populate`]): a new lease then writes into memory that is there, rather than
    /// taking a page fault (with huge pages, the zeroing of 2 MiB) inside the request that
    /// binds it. The rest of `reserved` is address space until used: the shards fill
    /// unevenly, and a `Vec` that doubles copies itself inside a request (half a millisecond
    /// for a shard of 6,250 records), so that without it the fuller shards grew before the
    /// table held its expected leases.
    pub(super) fn with_capacity(capacity: usize, reserved: usize, index: HashIndex) -> Self {
        let mut records = Vec::with_capacity(reserved);
        slots::populate(&mut records.spare_capacity_mut()[..capacity]);
        let mut expiry = Vec::with_capacity(reserved);
        slots::populate(&mut expiry.spare_capacity_mut()[..capacity]);
        let shard = Self {
            records,
            free: Vec::new(),
            index,
            live: 0,
            expiry: BinaryHeap::from(expiry),
            window: Arc::new(Window::new()),
            index_window: Arc::new(Window::new()),
        };
        let (base, len) = shard.index.slots();
        shard.index_window.publish(base, len);
        shard
    }

    /// Puts the record in `slot`, whose expiry was just set to `expires`, into the expiry
    /// index.
    pub(super) fn schedule(&mut self, slot: u32, expires: u32) {
        if expires == INFINITE {
            return;
        }
        self.expiry.push(Reverse(expiry_entry(expires, slot)));
        if self.expiry.len() > 2 * self.live + COMPACT_SLACK {
            self.compact_expiry();
        }
    }

    /// The next entry of the expiry index due at `now`: (expiry, slot), stale or not.
    pub(super) fn pop_due(&mut self, now: u32) -> Option<(u32, u32)> {
        let &Reverse(entry) = self.expiry.peek()?;
        let at = (entry >> 32) as u32;
        if at > now {
            return None;
        }
        self.expiry.pop();
        Some((at, entry as u32))
    }

    /// Rebuilds the expiry index with one entry per record that can expire: renewals and
    /// removals leave stale entries, and this keeps them from outgrowing the table.
    fn compact_expiry(&mut self) {
        let mut entries = std::mem::take(&mut self.expiry).into_vec();
        entries.clear();
        entries.extend(
            self.records
                .iter()
                .enumerate()
                .filter(|(_, record)| !record.is_free() && record.expires != INFINITE)
                .map(|(slot, record)| Reverse(expiry_entry(record.expires, slot as u32))),
        );
        if entries.capacity() > 4 * entries.len() + COMPACT_SLACK {
            entries.shrink_to(2 * entries.len() + COMPACT_SLACK);
        }
        self.expiry = BinaryHeap::from(entries);
    }

    pub(super) fn find(&self, hash: u64, addr: u128, kind: IaKind) -> Option<u32> {
        let records = &self.records;
        self.index
            .entries_of(index_hash(hash))
            .map(|entry| entry as u32)
            .find(|&slot| {
                records
                    .get(slot as usize)
                    .is_some_and(|record| record.addr() == addr && record.kind() == kind)
            })
    }

    /// Stores `record` in a free slot and indexes it; `None` if no slot location is left.
    pub(super) fn insert(&mut self, record: Record, hash: u64, max_slot: u32) -> Option<u32> {
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
                // The records may have moved to a larger array.
                self.window
                    .publish(self.records.as_ptr(), self.records.len());
                slot
            }
        };
        self.index.insert(index_entry(hash, slot));
        // The index may have grown into a new array.
        let (base, len) = self.index.slots();
        self.index_window.publish(base, len);
        self.live += 1;
        if let Some(expires) = self.records.get(slot as usize).map(|record| record.expires) {
            self.schedule(slot, expires);
        }
        Some(slot)
    }

    /// Frees `slot`, dropping its relay data's references.
    pub(super) fn remove(&mut self, slot: u32, hash: u64, relays: &RelayStore) {
        self.index.remove(index_entry(hash, slot));
        if let Some(record) = self.records.get_mut(slot as usize) {
            relays.release(&record.relay);
            *record = Record::free();
            self.free.push(slot);
            self.live -= 1;
        }
    }
}

/// A client shard: entries `(client hash << 32) | location`.
pub(super) struct ClientShard {
    pub(super) index: HashIndex,
    /// Where the index's slots are, for prefetching without the lock.
    pub(super) window: Arc<Window>,
}

impl ClientShard {
    /// A shard indexed by `index` (empty).
    pub(super) fn new(index: HashIndex) -> Self {
        let shard = Self {
            index,
            window: Arc::new(Window::new()),
        };
        let (base, len) = shard.index.slots();
        shard.window.publish(base, len);
        shard
    }

    pub(super) fn insert(&mut self, client_hash: u32, loc: u32) {
        self.index.insert(client_entry(client_hash, loc));
        // The index may have grown into a new array.
        let (base, len) = self.index.slots();
        self.window.publish(base, len);
    }

    pub(super) fn remove(&mut self, client_hash: u32, loc: u32) {
        self.index.remove(client_entry(client_hash, loc));
    }
}

/// Stale entries the expiry index may hold beyond one per live record before it is rebuilt.
const COMPACT_SLACK: usize = 1024;

fn expiry_entry(expires: u32, slot: u32) -> u64 {
    u64::from(expires) << 32 | u64::from(slot)
}

/// The 32 bits of an address hash that its shard's index keys on: the low ones, apart from
/// the middle bits that chose the shard ([`super::LeaseTable`]'s `addr_shard_of`).
pub(super) fn index_hash(addr_hash: u64) -> u32 {
    addr_hash as u32
}

fn index_entry(addr_hash: u64, slot: u32) -> u64 {
    u64::from(index_hash(addr_hash)) << 32 | u64::from(slot)
}

pub(super) fn client_entry(client_hash: u32, loc: u32) -> u64 {
    u64::from(client_hash) << 32 | u64::from(loc)
}

pub(super) fn expiry(now: u32, valid: u32) -> u32 {
    if valid == INFINITE {
        INFINITE
    } else {
        now.saturating_add(valid).min(INFINITE - 1)
    }
}

pub(super) fn kind_bits(kind: IaKind) -> u64 {
    match kind {
        IaKind::Na => 0,
        IaKind::Pd => 0x9e37_79b9_7f4a_7c15,
    }
}

/// A key drawn at random for this table: the std library seeds each `RandomState` from the
/// operating system's random source once per process and steps it for every new state.
pub(super) fn random_key() -> SaltKey {
    let draw = |n: u64| {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(n);
        hasher.finish()
    };
    SaltKey::from_keys(draw(0), draw(1))
}

/// The hash of an address in the address index, under the table's random `key`: clients
/// choose the addresses they Rebind or Decline and may know the configured salt, so the index
/// must not be keyed by anything they can compute.
pub(super) fn addr_hash(addr: u128, kind: IaKind, key: &SaltKey) -> u64 {
    key.hash_address(addr, kind_bits(kind))
}

/// MurmurHash3's 64-bit finalizer.
pub(super) fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}
