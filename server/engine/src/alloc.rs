//! Allocation by split-prefix hashing.
//!
//! An address (IA_NA) or a delegated prefix (IA_PD) is a keyed hash of (DUID, IAID, link name,
//! pool index, probe) mapped into the slice of the pool that this server owns. Every server that is
//! configured with the same salt computes the same candidates for the same client (the
//! identical-prefix model of RFC 6853), servers with different salts or different slices are
//! independent. A collision moves on to the next probe; after `max_probes` the allocation fails,
//! unless the slice is small enough to keep an occupancy bitmap, in which case a free address or
//! prefix is found in O(words) while one exists.
//!
//! One [`Range`] type serves both: an address is a prefix of length 128.
//!
//! The lease table is authoritative: the bitmap is a hint that the engine keeps up to date by
//! calling [`Range::release`] when the table reports that a lease in the range ended. A claim that fails marks the candidate occupied, so a stale bitmap heals
//! itself.

use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering};

use siphasher::sip128::{Hasher128, SipHasher13};

use crate::prefix::{Prefix, mask};

/// How many hashed candidates an allocation tries before it gives up or scans the bitmap.
pub const DEFAULT_MAX_PROBES: u32 = 24;

/// Address ranges with at most this many host bits keep an occupancy bitmap (2^20 addresses).
pub const NA_BITMAP_MAX_BITS: u32 = 20;

/// Prefix ranges with at most this many index bits keep an occupancy bitmap (2^24 prefixes).
pub const PD_BITMAP_MAX_BITS: u32 = 24;

/// Interface identifiers that RFC 5453 reserves (the IANA registry of Reserved IPv6 Interface
/// Identifiers), inclusive ranges of the low 64 bits: the subnet-router anycast identifier
/// (RFC 4291 §2.6.1), those of the IANA Ethernet block (RFC 4291 appendix A) and the reserved
/// subnet anycast identifiers (RFC 2526).
/// Units [`Range::propose`] takes from the bitmap before it gives up.
const PROPOSE_SCAN: u32 = 64;

const RESERVED_IIDS: [(u64, u64); 3] = [
    (0, 0),
    (0x0200_5eff_fe00_0000, 0x0200_5eff_feff_ffff),
    (0xfdff_ffff_ffff_ff80, 0xfdff_ffff_ffff_ffff),
];

/// Fixed SipHash key that turns a salt string into a [`SaltKey`] (domain separation only).
const SALT_DERIVATION_KEY: (u64, u64) = (0x7864_6863_7036_2d73, 0x616c_742d_6b65_792d);

/// Why a range cannot be built or an allocation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AllocError {
    /// The owned range is not inside the pool prefix.
    #[error("range {range} is not inside pool prefix {prefix}")]
    RangeOutsidePrefix {
        /// The pool prefix.
        prefix: Prefix,
        /// The owned range.
        range: Prefix,
    },
    /// The delegated length is shorter than the range or longer than 128.
    #[error("delegated length /{delegated_len} does not fit range {range}")]
    BadDelegatedLength {
        /// The owned range.
        range: Prefix,
        /// The configured delegated prefix length.
        delegated_len: u8,
    },
    /// Every probe met a taken or reserved candidate and no bitmap knows of a free one.
    #[error("no address or prefix available")]
    Exhausted,
}

/// The 128-bit SipHash key derived from the configured salt.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SaltKey {
    k0: u64,
    k1: u64,
}

impl SaltKey {
    /// The keyed 64-bit hash of a DUID alone, which places all of one client's IAs in the
    /// lease table's client index (the top bits of [`crate::table::IaKey`]'s hash), so a
    /// lookup by DUID alone (Leasequery by client identifier, the control API) visits one
    /// client shard. Not persisted; only this process uses it.
    pub(crate) fn hash_duid(&self, duid: &[u8]) -> u64 {
        // The 64-bit SipHash: the 128-bit one's longer finalisation buys nothing here.
        let mut hasher = siphasher::sip::SipHasher13::new_with_keys(self.k0, self.k1);
        hasher.write(duid);
        hasher.finish()
    }

    /// The keyed 64-bit hash of an address or prefix and a tag: the lease table's address
    /// index, under its random key.
    pub(crate) fn hash_address(&self, addr: u128, tag: u64) -> u64 {
        let mut hasher = siphasher::sip::SipHasher13::new_with_keys(self.k0, self.k1);
        hasher.write_u128(addr);
        hasher.write_u64(tag);
        hasher.finish()
    }

    /// A key from its two halves (a random one keys the lease table's indexes).
    pub(crate) fn from_keys(k0: u64, k1: u64) -> Self {
        Self { k0, k1 }
    }

    /// Derives the key from the configured salt text; same text, same key on every server.
    pub fn from_salt(salt: &str) -> Self {
        let hash = SipHasher13::new_with_keys(SALT_DERIVATION_KEY.0, SALT_DERIVATION_KEY.1)
            .hash(salt.as_bytes());
        let (k0, k1) = hash.as_u64();
        Self { k0, k1 }
    }
}

/// The keyed hash of a client's (DUID, IAID, link name): the seed of all its candidates.
///
/// It may carry the hash of its first probe in one pool, computed ahead
/// ([`Self::with_first_probe`]); keys compare and hash by their bits alone.
#[derive(Clone, Copy, Debug)]
pub struct AllocKey {
    bits: u128,
    /// `(pool, Self::probe(pool, 0))`, when computed ahead.
    first: Option<(u32, u128)>,
}

impl PartialEq for AllocKey {
    fn eq(&self, other: &Self) -> bool {
        self.bits == other.bits
    }
}

impl Eq for AllocKey {}

impl std::hash::Hash for AllocKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bits.hash(state);
    }
}

impl AllocKey {
    /// Hashes (DUID, IAID, link name) under the salt key: the bytes `len(DUID)` (u32), DUID,
    /// IAID (u32), `len(name)` (u32), name, all big-endian, so every server agrees.
    ///
    /// The link enters by its configured name, never its position in the file: reordering the
    /// `[[link]]` blocks gives every client the same address, and servers of the identical
    /// model agree as long as they name the link alike.
    pub fn new(salt: &SaltKey, duid: &[u8], iaid: u32, link_name: &str) -> Self {
        let mut hasher = SipHasher13::new_with_keys(salt.k0, salt.k1);
        // The length prefixes keep (DUID, IAID, name) unambiguous. SipHash is a byte stream, so
        // one write of a stack copy (faster for the usual short DUIDs and names) hashes the
        // same as five.
        let name = link_name.as_bytes();
        let duid_len = (duid.len() as u32).to_be_bytes();
        let name_len = (name.len() as u32).to_be_bytes();
        let mut buffer = [0u8; 4 + 32 + 4 + 4 + 32];
        let total = 4 + duid.len() + 4 + 4 + name.len();
        if let Some(bytes) = buffer.get_mut(..total) {
            let (len, rest) = bytes.split_at_mut(4);
            len.copy_from_slice(&duid_len);
            let (id, rest) = rest.split_at_mut(duid.len());
            id.copy_from_slice(duid);
            let (ia, rest) = rest.split_at_mut(4);
            ia.copy_from_slice(&iaid.to_be_bytes());
            let (len, rest) = rest.split_at_mut(4);
            len.copy_from_slice(&name_len);
            rest.copy_from_slice(name);
            hasher.write(bytes);
        } else {
            hasher.write(&duid_len);
            hasher.write(duid);
            hasher.write(&iaid.to_be_bytes());
            hasher.write(&name_len);
            hasher.write(name);
        }
        Self {
            bits: hasher.finish128().as_u128(),
            first: None,
        }
    }

    /// The raw 128 hash bits.
    pub fn bits(&self) -> u128 {
        self.bits
    }

    /// The same key, carrying the hash of its first probe in `pool`, which [`Self::probe`]
    /// then returns without hashing again: for a request whose first candidate was looked at
    /// ahead of its answer.
    pub fn with_first_probe(self, pool: u32) -> Self {
        Self {
            first: Some((pool, self.hash_probe(pool, 0))),
            ..self
        }
    }

    /// The hash for probe number `probe` in the pool with salt/index `pool`.
    pub fn probe(&self, pool: u32, probe: u32) -> u128 {
        match self.first {
            Some((first_pool, hash)) if probe == 0 && first_pool == pool => hash,
            _ => self.hash_probe(pool, probe),
        }
    }

    fn hash_probe(&self, pool: u32, probe: u32) -> u128 {
        let mut hasher = SipHasher13::new_with_keys(self.bits as u64, (self.bits >> 64) as u64);
        hasher.write(&pool.to_be_bytes());
        hasher.write(&probe.to_be_bytes());
        hasher.finish128().as_u128()
    }
}

/// A shared occupancy bitmap over the units of a range (addresses or delegated prefixes).
///
/// Lock-free: workers on any core set and clear bits with atomic operations.
#[derive(Debug)]
pub(crate) struct Occupancy {
    words: Box<[AtomicU64]>,
    units: u64,
    /// Units whose bit is clear, kept by every change so that metrics read it in O(1).
    free: AtomicU64,
}

impl Occupancy {
    /// A bitmap of `units` free units.
    pub(crate) fn new(units: u64) -> Self {
        let words = units.div_ceil(64);
        let words: Box<[AtomicU64]> = (0..words).map(|_| AtomicU64::new(0)).collect();
        // Bits past the last unit are permanently occupied so scans never return them.
        let tail = units % 64;
        if tail != 0
            && let Some(last) = words.last()
        {
            last.store(u64::MAX << tail, Ordering::Relaxed);
        }
        Self {
            words,
            units,
            free: AtomicU64::new(units),
        }
    }

    /// The number of units covered.
    pub(crate) fn units(&self) -> u64 {
        self.units
    }

    /// Marks `unit` occupied; true if it was free.
    pub(crate) fn occupy(&self, unit: u64) -> bool {
        match self.word(unit) {
            Some((word, bit)) => {
                let was_free = word.fetch_or(bit, Ordering::AcqRel) & bit == 0;
                if was_free {
                    self.free.fetch_sub(1, Ordering::Relaxed);
                }
                was_free
            }
            None => false,
        }
    }

    /// Marks `unit` free.
    pub(crate) fn free(&self, unit: u64) {
        if let Some((word, bit)) = self.word(unit)
            && word.fetch_and(!bit, Ordering::AcqRel) & bit != 0
        {
            self.free.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether `unit` is marked occupied (units outside the bitmap count as occupied).
    pub(crate) fn is_occupied(&self, unit: u64) -> bool {
        match self.word(unit) {
            Some((word, bit)) => word.load(Ordering::Acquire) & bit != 0,
            None => true,
        }
    }

    /// The number of free units (a counter, not a scan).
    pub(crate) fn free_count(&self) -> u64 {
        self.free.load(Ordering::Relaxed)
    }

    /// A free unit, scanning words from the one holding `start` and wrapping around.
    pub(crate) fn find_free_from(&self, start: u64) -> Option<u64> {
        let count = self.words.len();
        if count == 0 {
            return None;
        }
        let first = (start / 64) as usize % count;
        for step in 0..count {
            let index = (first + step) % count;
            let value = self.words[index].load(Ordering::Acquire);
            if value != u64::MAX {
                // Prefer the bit at or after `start` in its own word, so that different clients
                // spread over the word instead of all racing for its lowest free bit.
                let from = if step == 0 { start % 64 } else { 0 };
                let above = !value & (u64::MAX << from);
                let free = if above != 0 { above } else { !value };
                return Some(index as u64 * 64 + u64::from(free.trailing_zeros()));
            }
        }
        None
    }

    fn word(&self, unit: u64) -> Option<(&AtomicU64, u64)> {
        if unit >= self.units {
            return None;
        }
        let word = self.words.get((unit / 64) as usize)?;
        Some((word, 1 << (unit % 64)))
    }
}

/// The slice of a pool that this server owns, cut into units of `unit_len` bits: addresses
/// (IA_NA) are the units of length 128, delegated prefixes (IA_PD) those of the delegated
/// length. A unit is named by its first address.
///
/// `2^index_bits` units of `2^unit_shift` addresses each, starting at the range's first address.
#[derive(Debug)]
pub struct Range {
    prefix: Prefix,
    range: Prefix,
    unit_len: u8,
    index_bits: u32,
    unit_shift: u32,
    pool: u32,
    max_probes: u32,
    /// Units never handed out besides the reserved interface identifiers: the caller's
    /// reservations and the link's anycast addresses, sorted.
    reserved: Vec<u128>,
    /// Whether units are addresses whose RFC 5453 reserved interface identifiers are skipped.
    skip_reserved_iids: bool,
    bitmap: Option<Occupancy>,
}

impl Range {
    /// A range of addresses `range` inside pool `prefix`; `pool` salts the hash per pool.
    ///
    /// Every address of the range is handed out except those whose interface identifier (the
    /// low 64 bits) RFC 5453 reserves: among them the subnet-router anycast address of the
    /// on-link prefix (RFC 4291 §2.6.1: a pool prefix longer than /64 lies inside the link's
    /// /64, whose all-zero identifier that is) and the reserved subnet anycast identifiers
    /// (RFC 2526). The first address of a range or of a pool prefix is nothing special.
    pub fn addresses(prefix: Prefix, range: Prefix, pool: u32) -> Result<Self, AllocError> {
        let mut this = Self::new(prefix, range, 128, pool, NA_BITMAP_MAX_BITS)?;
        this.skip_reserved_iids = true;
        if let Some(bitmap) = &this.bitmap {
            // A range with a bitmap has at most 2^20 addresses, so it lies inside one /64:
            // mark its reserved identifiers taken once, so scans never offer them.
            let first = range.bits();
            let last = first | !range.mask();
            let iid_base = first & mask(64);
            for (low, high) in RESERVED_IIDS {
                let from = first.max(iid_base | u128::from(low));
                let to = last.min(iid_base | u128::from(high));
                if from <= to {
                    // Offsets from the range's start: below 2^20, they fit.
                    for index in (from - first) as u64..=(to - first) as u64 {
                        bitmap.occupy(index);
                    }
                }
            }
        }
        Ok(this)
    }

    /// Prefixes of length `delegated_len` in `range` inside pool `prefix`, salted by `pool`.
    pub fn prefixes(
        prefix: Prefix,
        range: Prefix,
        delegated_len: u8,
        pool: u32,
    ) -> Result<Self, AllocError> {
        Self::new(prefix, range, delegated_len, pool, PD_BITMAP_MAX_BITS)
    }

    fn new(
        prefix: Prefix,
        range: Prefix,
        unit_len: u8,
        pool: u32,
        bitmap_max: u32,
    ) -> Result<Self, AllocError> {
        if !prefix.covers(&range) {
            return Err(AllocError::RangeOutsidePrefix { prefix, range });
        }
        if unit_len < range.len() || unit_len > 128 {
            return Err(AllocError::BadDelegatedLength {
                range,
                delegated_len: unit_len,
            });
        }
        let index_bits = u32::from(unit_len - range.len());
        let bitmap = (index_bits <= bitmap_max).then(|| Occupancy::new(1 << index_bits));
        Ok(Self {
            prefix,
            range,
            unit_len,
            index_bits,
            unit_shift: 128 - u32::from(unit_len),
            pool,
            max_probes: DEFAULT_MAX_PROBES,
            reserved: Vec::new(),
            skip_reserved_iids: false,
            bitmap,
        })
    }

    /// The same range, trying `max_probes` hashed candidates before the bitmap (at least 1).
    pub fn with_max_probes(mut self, max_probes: u32) -> Self {
        self.max_probes = max_probes.max(1);
        self
    }

    /// The same range with `reserved` units (static assignments, given by an address inside
    /// them) never handed out.
    pub fn with_reserved(mut self, reserved: impl IntoIterator<Item = u128>) -> Self {
        for bits in reserved {
            self.reserve(bits & mask(self.unit_len));
        }
        self
    }

    /// Whether `other` hands out the same units the same way: same pool prefix, range, unit
    /// length, hash salt, probes and never-handed-out units (its occupancy aside). A reload
    /// keeps the running range, with its bitmap, in place of an equal new one.
    pub fn same_units(&self, other: &Range) -> bool {
        self.prefix == other.prefix
            && self.range == other.range
            && self.unit_len == other.unit_len
            && self.pool == other.pool
            && self.max_probes == other.max_probes
            && self.skip_reserved_iids == other.skip_reserved_iids
            && self.reserved == other.reserved
            && self.bitmap.as_ref().map(Occupancy::units)
                == other.bitmap.as_ref().map(Occupancy::units)
    }

    /// The pool prefix.
    pub fn prefix(&self) -> Prefix {
        self.prefix
    }

    /// The slice of the pool this server owns.
    pub fn range(&self) -> Prefix {
        self.range
    }

    /// The length of each unit: 128 for addresses, the delegated length for prefixes.
    pub fn unit_len(&self) -> u8 {
        self.unit_len
    }

    /// Whether this range keeps an occupancy bitmap (at most 2^20 addresses, 2^24 prefixes).
    pub fn has_bitmap(&self) -> bool {
        self.bitmap.is_some()
    }

    /// `key` carrying the hash of its first probe in this range
    /// ([`AllocKey::with_first_probe`]), and its first candidate.
    pub fn first_candidate(&self, key: AllocKey) -> (AllocKey, u128) {
        let key = key.with_first_probe(self.pool);
        (key, self.candidate(&key, 0))
    }

    /// The first address of hashed candidate `probe` for `key`: always inside the range.
    pub fn candidate(&self, key: &AllocKey, probe: u32) -> u128 {
        self.unit_at(key.probe(self.pool, probe))
    }

    /// Whether `bits` is the first address of a unit of this range.
    pub fn contains(&self, bits: u128) -> bool {
        self.index_of(bits).is_some()
    }

    /// Whether the unit starting at `bits` is never handed out (a reserved interface
    /// identifier, an anycast address or a reservation).
    pub fn is_reserved(&self, bits: u128) -> bool {
        (self.skip_reserved_iids && is_reserved_iid(bits))
            || self.reserved.binary_search(&bits).is_ok()
    }

    /// Finds a unit for `key`: `try_claim` claims a candidate (its first address) in the
    /// lease table atomically and returns `Some` on success, `None` if it is taken.
    ///
    /// Look the client's existing lease up first: candidates that the bitmap marks occupied,
    /// the client's own included, are skipped.
    pub fn allocate<T>(
        &self,
        key: &AllocKey,
        mut try_claim: impl FnMut(u128) -> Option<T>,
    ) -> Result<(u128, T), AllocError> {
        let mut start = None;
        for probe in 0..self.max_probes {
            let unit = self.candidate(key, probe);
            start.get_or_insert(unit);
            if self.is_reserved(unit) {
                continue;
            }
            if let (Some(bitmap), Some(index)) = (&self.bitmap, self.index_of(unit))
                && bitmap.is_occupied(index)
            {
                continue;
            }
            if let Some(claimed) = try_claim(unit) {
                self.occupy(unit);
                return Ok((unit, claimed));
            }
            // Taken by a live lease: remember it so later scans skip it.
            self.occupy(unit);
        }
        let Some(bitmap) = &self.bitmap else {
            return Err(AllocError::Exhausted);
        };
        let mut from = start.and_then(|unit| self.index_of(unit)).unwrap_or(0);
        // Every failed try marks its unit occupied, so this ends after at most `units` tries;
        // the bound below only guards against a bitmap that other threads keep clearing.
        for _ in 0..bitmap.units().saturating_mul(2) {
            let Some(index) = bitmap.find_free_from(from) else {
                return Err(AllocError::Exhausted);
            };
            let unit = self.unit_at(u128::from(index));
            if !bitmap.occupy(index) {
                // Another worker took this bit between the scan and now.
                from = index;
                continue;
            }
            if !self.is_reserved(unit)
                && let Some(claimed) = try_claim(unit)
            {
                return Ok((unit, claimed));
            }
            from = index;
        }
        Err(AllocError::Exhausted)
    }

    /// The unit [`Self::allocate`] would claim for `key` now, changing nothing: the first
    /// candidate that is neither reserved, marked occupied, nor refused by `is_free` (the
    /// lease table's view), else the first unit the bitmap marks free from there. For an
    /// Advertise, which reserves nothing: the Request then claims the same unit unless
    /// another client took it meanwhile.
    pub fn propose(&self, key: &AllocKey, is_free: impl Fn(u128) -> bool) -> Option<u128> {
        let mut start = None;
        for probe in 0..self.max_probes {
            let unit = self.candidate(key, probe);
            start.get_or_insert(unit);
            if self.is_reserved(unit) {
                continue;
            }
            if let (Some(bitmap), Some(index)) = (&self.bitmap, self.index_of(unit))
                && bitmap.is_occupied(index)
            {
                continue;
            }
            if is_free(unit) {
                return Some(unit);
            }
        }
        let bitmap = self.bitmap.as_ref()?;
        let mut from = start.and_then(|unit| self.index_of(unit)).unwrap_or(0);
        // A few free bits only: a unit the bitmap calls free but the table holds (a claim
        // between the two) is rare, and the Request settles the rest.
        for _ in 0..PROPOSE_SCAN {
            let index = bitmap.find_free_from(from)?;
            let unit = self.unit_at(u128::from(index));
            if !self.is_reserved(unit) && is_free(unit) {
                return Some(unit);
            }
            from = index + 1;
        }
        None
    }

    /// Marks the unit starting at `bits` in use (journal replay, or a lease claimed outside
    /// [`Self::allocate`]).
    pub fn occupy(&self, bits: u128) {
        if let (Some(bitmap), Some(index)) = (&self.bitmap, self.index_of(bits)) {
            bitmap.occupy(index);
        }
    }

    /// Marks the unit starting at `bits` free again after its lease was released, expired or
    /// left probation.
    pub fn release(&self, bits: u128) {
        if self.is_reserved(bits) {
            return;
        }
        if let (Some(bitmap), Some(index)) = (&self.bitmap, self.index_of(bits)) {
            bitmap.free(index);
        }
    }

    /// Free units according to the bitmap, if this range has one.
    pub fn free_count(&self) -> Option<u64> {
        self.bitmap.as_ref().map(Occupancy::free_count)
    }

    fn index_mask(&self) -> u128 {
        low_bits(self.index_bits)
    }

    fn unit_at(&self, index: u128) -> u128 {
        // `index` is masked to `index_bits`, and `index_bits + unit_shift <= 128 - range.len`,
        // so the shifted index only touches host bits of the range: the unit stays inside.
        self.range.bits()
            | (index & self.index_mask())
                .checked_shl(self.unit_shift)
                .unwrap_or(0)
    }

    fn index_of(&self, unit: u128) -> Option<u64> {
        let base = self.range.bits();
        let offset = unit.wrapping_sub(base);
        let index = offset.checked_shr(self.unit_shift).unwrap_or(0);
        let inside = unit >= base && index <= self.index_mask();
        let aligned = offset & low_bits(self.unit_shift) == 0;
        (inside && aligned).then_some(index as u64)
    }

    fn reserve(&mut self, unit: u128) {
        if let Err(at) = self.reserved.binary_search(&unit) {
            self.reserved.insert(at, unit);
        }
        if let (Some(bitmap), Some(index)) = (&self.bitmap, self.index_of(unit)) {
            bitmap.occupy(index);
        }
    }
}

/// Whether RFC 5453 reserves the interface identifier (the low 64 bits) of `addr`.
pub fn is_reserved_iid(addr: u128) -> bool {
    let iid = addr as u64;
    RESERVED_IIDS
        .iter()
        .any(|(low, high)| (*low..=*high).contains(&iid))
}

/// The anycast addresses of the link whose on-link prefix is `on_link` (a prefix longer than
/// /64 stands for the /64 that holds it): the subnet-router anycast address (RFC 4291 §2.6.1)
/// and the reserved subnet anycast addresses (RFC 2526 §2). A delegated prefix carved from
/// the on-link space must hold none of them.
pub fn link_anycast(on_link: Prefix) -> impl Iterator<Item = u128> {
    let subnet = on_link.bits() & mask(on_link.len().min(64));
    let (low, high) = RESERVED_IIDS[2];
    std::iter::once(subnet).chain((low..=high).map(move |iid| subnet | u128::from(iid)))
}

/// A mask of the lowest `bits` bits.
fn low_bits(bits: u32) -> u128 {
    match bits {
        0 => 0,
        bits if bits >= 128 => u128::MAX,
        bits => (1u128 << bits) - 1,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    /// The hash of DUID 0001 0001 5e00 0000 0000 0000 002a, IAID 1, link "access-7" under the
    /// salt "xdhcp6" (checked against an independent SipHash-1-3 implementation).
    const PINNED: u128 = 0xbe8453df_cdc53e86_d9e4f5a1_118788fd;
    /// Its first candidate in 2001:db8::/64, pool 0.
    const PINNED_ADDR: u128 = 0x20010db8_00000000_eaedd53a_7a306866;

    fn prefix(text: &str) -> Prefix {
        text.parse().unwrap()
    }

    fn key(salt: &str, client: u32) -> AllocKey {
        let duid = [0, 1, 0, 1, 0x5e, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut duid = duid;
        duid[10..14].copy_from_slice(&client.to_be_bytes());
        AllocKey::new(&SaltKey::from_salt(salt), &duid, 1, "access-7")
    }

    #[test]
    fn same_salt_same_address_other_salt_other_address() {
        let pool = prefix("2001:db8:1::/64");
        let range = Range::addresses(pool, pool, 0).unwrap();
        assert_eq!(
            range.candidate(&key("a", 1), 0),
            range.candidate(&key("a", 1), 0)
        );
        assert_ne!(
            range.candidate(&key("a", 1), 0),
            range.candidate(&key("b", 1), 0)
        );
        assert_ne!(
            range.candidate(&key("a", 1), 0),
            range.candidate(&key("a", 1), 1)
        );
        let other_pool = Range::addresses(pool, pool, 1).unwrap();
        assert_ne!(
            range.candidate(&key("a", 1), 0),
            other_pool.candidate(&key("a", 1), 0)
        );
    }

    #[test]
    fn a_first_probe_computed_ahead_is_the_probe_itself() {
        let plain = key("xdhcp6", 42);
        let range = Range::addresses(prefix("2001:db8::/64"), prefix("2001:db8::/64"), 3).unwrap();
        let (ahead, first) = range.first_candidate(plain);
        assert_eq!(ahead, plain);
        assert_eq!(first, range.candidate(&plain, 0));
        for (pool, probe) in [(3, 0), (3, 1), (2, 0), (4, 0), (3, 23)] {
            assert_eq!(ahead.probe(pool, probe), plain.probe(pool, probe));
        }
    }

    #[test]
    fn hash_is_pinned() {
        // Servers of different builds and byte orders must agree: pin one value. The link
        // enters by its name, so the value does not depend on where the link is in the file.
        let first = key("xdhcp6", 42).bits();
        assert_eq!(first, PINNED);
        let pool = prefix("2001:db8::/64");
        let range = Range::addresses(pool, pool, 0).unwrap();
        assert_eq!(range.candidate(&key("xdhcp6", 42), 0), PINNED_ADDR);
    }

    #[test]
    fn buffered_hash_equals_streamed_hash() {
        let salt = SaltKey::from_salt("s");
        let long = "a link name longer than the thirty-two bytes kept on the stack";
        for (duid, name) in [
            (&[0x11; 14][..], "access-1"),
            (&[0x22; 32][..], "a-name-of-exactly-32-bytes------"),
            (&[0x22; 32][..], "a-name-of-33-bytes---------------"),
            (&[0x33; 33][..], "x"),
            (&[0x44; 130][..], long),
            (&[0x55; 14][..], long),
        ] {
            let mut hasher = SipHasher13::new_with_keys(salt.k0, salt.k1);
            hasher.write(&(duid.len() as u32).to_be_bytes());
            hasher.write(duid);
            hasher.write(&9u32.to_be_bytes());
            hasher.write(&(name.len() as u32).to_be_bytes());
            hasher.write(name.as_bytes());
            let streamed = hasher.finish128().as_u128();
            assert_eq!(AllocKey::new(&salt, duid, 9, name).bits(), streamed);
        }
    }

    #[test]
    fn skips_subnet_router_anycast_and_reserved() {
        let pool = prefix("2001:db8::/126");
        let range = Range::addresses(pool, pool, 0)
            .unwrap()
            .with_reserved([pool.bits() | 1]);
        assert!(range.is_reserved(pool.bits()));
        let mut taken = HashSet::new();
        for client in 0..10 {
            match range.allocate(&key("s", client), |addr| taken.insert(addr).then_some(())) {
                Ok((addr, ())) => {
                    assert!(addr != pool.bits() && addr != pool.bits() | 1);
                }
                Err(error) => assert_eq!(error, AllocError::Exhausted),
            }
        }
        assert_eq!(taken.len(), 2);
    }

    #[test]
    fn skips_rfc5453_anycast_identifiers() {
        let pool = prefix("2001:db8::/64");
        let range = Range::addresses(pool, pool, 0).unwrap();
        assert!(range.is_reserved(pool.bits() | 0xfdff_ffff_ffff_ffff));
        assert!(range.is_reserved(pool.bits() | 0xfdff_ffff_ffff_ff80));
        assert!(!range.is_reserved(pool.bits() | 0xfdff_ffff_ffff_ff7f));
    }

    #[test]
    fn single_address_pool_hands_out_its_address() {
        // A pool written as one address: nothing but that address is in it, and its interface
        // identifier (::5) is not reserved.
        let pool = prefix("2001:db8::5/128");
        let range = Range::addresses(pool, pool, 0).unwrap();
        assert!(!range.is_reserved(pool.bits()));
        assert_eq!(range.free_count(), Some(1));
        let (addr, ()) = range.allocate(&key("s", 1), |_| Some(())).unwrap();
        assert_eq!(addr, pool.bits());
    }

    #[test]
    fn first_address_of_a_tiny_pool_is_handed_out() {
        // The subnet-router anycast address is that of the link's /64 (2001:db8::), not the
        // first address of a pool prefix longer than /64.
        let pool = prefix("2001:db8::104/126");
        let range = Range::addresses(pool, pool, 0).unwrap();
        let mut taken = HashSet::new();
        for client in 0..4 {
            let result = range.allocate(&key("s", client), |addr| taken.insert(addr).then_some(()));
            assert!(result.is_ok(), "client {client}");
        }
        let expected: HashSet<u128> = (0..4).map(|i| pool.bits() + i).collect();
        assert_eq!(taken, expected);
        assert_eq!(range.free_count(), Some(0));
    }

    #[test]
    fn reserved_iids_are_skipped_whatever_the_pool_length() {
        // RFC 5453: the reserved subnet anycast identifiers (RFC 2526) at the top of the /64,
        // here inside a pool prefix of /120.
        let pool = prefix("2001:db8::fdff:ffff:ffff:ff00/120");
        let range = Range::addresses(pool, pool, 0).unwrap();
        assert_eq!(range.free_count(), Some(128));
        assert!(range.is_reserved(pool.bits() | 0x80));
        assert!(range.is_reserved(pool.bits() | 0xff));
        assert!(!range.is_reserved(pool.bits() | 0x7f));
        // Identifiers above the block are ordinary.
        let top = prefix("2001:db8::fe00:0:0:0/120");
        let range = Range::addresses(top, top, 0).unwrap();
        assert_eq!(range.free_count(), Some(256));
        assert!(!range.is_reserved(pool.bits()));
        // The identifiers of the IANA Ethernet block are all reserved: this pool has none.
        let ethernet = prefix("2001:db8::200:5eff:fe00:5200/120");
        let range = Range::addresses(ethernet, ethernet, 0).unwrap();
        assert_eq!(range.free_count(), Some(0));
        assert_eq!(
            range.allocate(&key("s", 1), |_| Some(())),
            Err(AllocError::Exhausted)
        );
        // The subnet-router anycast address of the /64 holding a slice is never handed out.
        let link = prefix("2001:db8::/64");
        let range = Range::addresses(link, prefix("2001:db8::/120"), 0).unwrap();
        assert!(range.is_reserved(link.bits()));
        assert_eq!(range.free_count(), Some(255));
    }

    #[test]
    fn link_anycast_lists_the_subnet_router_and_reserved_anycast_addresses() {
        let anycast: Vec<u128> = link_anycast(prefix("2001:db8:0:7::/64")).collect();
        let subnet = prefix("2001:db8:0:7::/64").bits();
        assert_eq!(anycast.len(), 129);
        assert_eq!(anycast[0], subnet);
        assert_eq!(anycast[1], subnet | 0xfdff_ffff_ffff_ff80);
        assert_eq!(anycast[128], subnet | 0xfdff_ffff_ffff_ffff);
        // A pool prefix longer than /64 stands for its /64.
        let inner: Vec<u128> = link_anycast(prefix("2001:db8:0:7::100/120")).collect();
        assert_eq!(inner, anycast);
    }

    #[test]
    fn small_na_range_allocates_every_address() {
        let pool = prefix("2001:db8::/120");
        let range = Range::addresses(pool, pool, 3).unwrap().with_max_probes(2);
        assert!(range.has_bitmap());
        let mut taken = HashSet::new();
        for client in 0..255 {
            let result = range.allocate(&key("s", client), |addr| taken.insert(addr).then_some(()));
            assert!(result.is_ok(), "client {client}");
        }
        assert_eq!(range.free_count(), Some(0));
        assert!(range.allocate(&key("s", 999), |_| Some(())).is_err());
        range.release(pool.bits() | 77);
        let (addr, ()) = range.allocate(&key("s", 999), |_| Some(())).unwrap();
        assert_eq!(addr, pool.bits() | 77);
    }

    #[test]
    fn pd_bitmap_finds_the_last_free_prefix() {
        let pool = prefix("2001:db8::/40");
        let range = Range::prefixes(pool, prefix("2001:db8:80::/41"), 52, 0).unwrap();
        assert!(range.has_bitmap());
        let units = 1u128 << (52 - 41);
        let mut taken = HashSet::new();
        for index in 0..units {
            if index != 1234 {
                let bits = range.range().bits() | (index << (128 - 52));
                taken.insert(bits);
                range.occupy(bits);
            }
        }
        let (bits, ()) = range
            .allocate(&key("s", 5), |bits| taken.insert(bits).then_some(()))
            .unwrap();
        assert_eq!(bits, range.range().bits() | (1234 << (128 - 52)));
        assert!(range.allocate(&key("s", 6), |_| Some(())).is_err());
    }

    #[test]
    fn stale_bitmap_heals() {
        let pool = prefix("2001:db8::/56");
        let range = Range::prefixes(pool, pool, 60, 0)
            .unwrap()
            .with_max_probes(1);
        // The table knows every prefix but one is taken; the bitmap knows nothing.
        let free = pool.bits() | (9 << (128 - 60));
        let result = range.allocate(&key("s", 1), |bits| (bits == free).then_some(()));
        assert_eq!(result, Ok((free, ())));
    }

    #[test]
    fn rejects_bad_ranges() {
        let pool = prefix("2001:db8::/48");
        assert!(Range::addresses(pool, prefix("2001:db9::/64"), 0).is_err());
        assert!(Range::prefixes(pool, pool, 40, 0).is_err());
        assert!(Range::prefixes(pool, prefix("2001:db8::/32"), 56, 0).is_err());
    }

    #[test]
    fn big_ranges_have_no_bitmap_and_fail_after_max_probes() {
        let pool = prefix("2001:db8::/64");
        let range = Range::addresses(pool, pool, 0).unwrap().with_max_probes(5);
        assert!(!range.has_bitmap());
        let mut tries = 0;
        let result = range.allocate(&key("s", 1), |_| {
            tries += 1;
            None::<()>
        });
        assert_eq!(result, Err(AllocError::Exhausted));
        assert_eq!(tries, 5);
    }

    #[test]
    fn occupancy_tail_bits_are_never_free() {
        let bitmap = Occupancy::new(70);
        assert_eq!(bitmap.free_count(), 70);
        for unit in 0..70 {
            assert!(bitmap.occupy(unit));
        }
        assert_eq!(bitmap.find_free_from(3), None);
        bitmap.free(69);
        assert_eq!(bitmap.find_free_from(0), Some(69));
    }

    proptest! {
        #[test]
        fn na_candidate_never_leaves_the_range(
            pool_len in 0u8..=128,
            extra in 0u8..=16,
            bits in any::<u128>(),
            client in any::<u32>(),
            probe in 0u32..64,
            salt in "[a-z]{0,8}",
        ) {
            let pool = Prefix::containing(bits.into(), pool_len);
            let range_len = pool_len.saturating_add(extra).min(128);
            let range = Prefix::containing(bits.into(), range_len);
            let na = Range::addresses(pool, range, client % 4).unwrap();
            let addr = na.candidate(&key(&salt, client), probe);
            prop_assert!(range.contains(addr.into()));
            prop_assert!(na.contains(addr));
        }

        #[test]
        fn pd_candidate_never_leaves_the_range(
            pool_len in 0u8..=64,
            extra in 0u8..=16,
            delegated_extra in 0u8..=64,
            bits in any::<u128>(),
            client in any::<u32>(),
            probe in 0u32..64,
        ) {
            let pool = Prefix::containing(bits.into(), pool_len);
            let range = Prefix::containing(bits.into(), pool_len + extra);
            let delegated_len = (pool_len + extra).saturating_add(delegated_extra).min(128);
            let pd = Range::prefixes(pool, range, delegated_len, 0).unwrap();
            let first = pd.candidate(&key("s", client), probe);
            prop_assert!(range.covers(&Prefix::containing(first.into(), delegated_len)));
            prop_assert_eq!(first & !mask(delegated_len), 0);
            prop_assert!(pd.contains(first));
        }

        #[test]
        fn different_slices_never_overlap(
            pool_len in 32u8..=120,
            parts_log in 1u32..=4,
            bits in any::<u128>(),
            client in any::<u32>(),
            probe in 0u32..32,
        ) {
            let pool = Prefix::containing(bits.into(), pool_len);
            let parts = 1u32 << parts_log;
            let mut seen = HashSet::new();
            for index in 0..parts {
                let range = pool.split(index, parts).unwrap();
                let na = Range::addresses(pool, range, 0).unwrap();
                let addr = na.candidate(&key("same", client), probe);
                prop_assert!(range.contains(addr.into()));
                for other in 0..parts {
                    if other != index {
                        prop_assert!(!pool.split(other, parts).unwrap().contains(addr.into()));
                    }
                }
                prop_assert!(seen.insert(addr));
            }
        }
    }
}
