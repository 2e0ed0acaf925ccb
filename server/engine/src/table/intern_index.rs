//! The index of an interner shard (`table/relay.rs`): its slab's slots by the hash of their
//! bytes.
//!
//! Open-addressed and probed linearly from the hash, with `u32` entries: a 7-bit tag of the
//! hash and the slot (25 bits). Sixteen entries share a cache line, so a lookup, and the
//! insert that follows one that found nothing, touch one line of the index. A hashbrown table
//! keeps its control bytes and its values in two arrays: two lines, each a cache miss in an
//! index of millions of entries, and the store into the second one kept the shard's lock (its
//! release waits for the stores before it) until that line arrived.
//!
//! A removed entry leaves a tombstone where a probe may still have to pass it (7 bits of hash
//! cannot say where its neighbours' probes started); an insert reuses the first one on its
//! way. Tombstones count against [`InternIndex::capacity`], as hashbrown's do, so an index
//! that gathers them is replaced by the interner's growth like a full one.
//!
//! The lease table's own index (`table/index.rs`) keeps 32 bits of hash in `u64` entries, so
//! a removal can shift its neighbours back instead of leaving tombstones, and it grows itself
//! whole; here the interner grows an index a few entries a call (`IndexGrowth`), and `u32`
//! entries keep the subscriber store at half the index memory (16 MiB less at the 2,500,000
//! parts of the 10-million-lease `lease_memory` bench, 1.7 bytes a lease).

/// The highest slot an entry holds: 25 bits, less the two values that mark an empty slot and
/// a tombstone (with the highest tag).
pub(super) const MAX_SLOT: u32 = (1 << SLOT_BITS) - 3;

const SLOT_BITS: u32 = 25;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;
const EMPTY: u32 = u32::MAX;
const DELETED: u32 = u32::MAX - 1;

/// The fewest slots of an index that holds anything.
const MIN_SLOTS: usize = 16;

/// The hash's low bits choose the interner's shard; the probe starts from the bits above them.
const HOME_SHIFT: u32 = 6;

/// Slots of an interner shard's slab by hash (module docs).
#[derive(Default)]
pub(super) struct InternIndex {
    entries: Box<[u32]>,
    len: usize,
    deleted: usize,
}

impl InternIndex {
    /// An index without slots (holds nothing until its first insert).
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// An index that holds `capacity` entries before it is full.
    pub(super) fn with_capacity(capacity: usize) -> Self {
        if capacity == 0 {
            return Self::new();
        }
        let slots = capacity
            .saturating_mul(4)
            .div_ceil(3)
            .max(MIN_SLOTS)
            .next_power_of_two();
        Self {
            entries: vec![EMPTY; slots].into_boxed_slice(),
            len: 0,
            deleted: 0,
        }
    }

    /// The live entries it holds before it is full: three quarters of its slots, less the
    /// tombstones.
    pub(super) fn capacity(&self) -> usize {
        self.max_load() - self.deleted
    }

    /// Live entries.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot of an entry of `hash` for which `eq` holds (called only for entries whose tag
    /// matches the hash's).
    pub(super) fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let mask = self.entries.len().checked_sub(1)?;
        let tag = tag(hash);
        let mut at = home(hash, mask);
        loop {
            match self.entries[at] {
                EMPTY => return None,
                DELETED => {}
                entry if entry & !SLOT_MASK == tag && eq(entry & SLOT_MASK) => {
                    return Some(entry & SLOT_MASK);
                }
                _ => {}
            }
            at = (at + 1) & mask;
        }
    }

    /// Adds `slot` (at most [`MAX_SLOT`]) of `hash`, which the index does not hold. A full
    /// index first grows to twice its slots, rehashing every entry (`rehash` gives a slot's
    /// hash): the interner grows its indexes before that happens, so this is a fallback.
    pub(super) fn insert_unique(&mut self, hash: u64, slot: u32, rehash: impl Fn(u32) -> u64) {
        debug_assert!(slot <= MAX_SLOT);
        if self.len + self.deleted >= self.max_load() {
            self.grow(&rehash);
        }
        let at = home(hash, self.entries.len() - 1);
        if self.place(at, tag(hash) | slot) == DELETED {
            self.deleted -= 1;
        }
        self.len += 1;
    }

    /// Writes `entry` into the first empty slot or tombstone from slot `at` on, and returns
    /// what that slot held.
    fn place(&mut self, mut at: usize, entry: u32) -> u32 {
        let mask = self.entries.len() - 1;
        while !matches!(self.entries[at], EMPTY | DELETED) {
            at = (at + 1) & mask;
        }
        std::mem::replace(&mut self.entries[at], entry)
    }

    /// Takes the entry of `slot` (of `hash`) out; `false` when the index does not hold it.
    pub(super) fn remove(&mut self, hash: u64, slot: u32) -> bool {
        let Some(mask) = self.entries.len().checked_sub(1) else {
            return false;
        };
        let wanted = tag(hash) | slot;
        let mut at = home(hash, mask);
        loop {
            match self.entries[at] {
                EMPTY => return false,
                entry if entry == wanted => break,
                _ => at = (at + 1) & mask,
            }
        }
        self.len -= 1;
        if self.entries[(at + 1) & mask] != EMPTY {
            self.entries[at] = DELETED;
            self.deleted += 1;
            return true;
        }
        // The end of a run: no probe needs to pass this slot, nor the tombstones just before
        // it.
        self.entries[at] = EMPTY;
        let mut before = at.wrapping_sub(1) & mask;
        while self.entries[before] == DELETED {
            self.entries[before] = EMPTY;
            self.deleted -= 1;
            before = before.wrapping_sub(1) & mask;
        }
        true
    }

    fn max_load(&self) -> usize {
        self.entries.len() / 4 * 3
    }

    fn grow(&mut self, rehash: &impl Fn(u32) -> u64) {
        let slots = (self.entries.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.entries, vec![EMPTY; slots].into_boxed_slice());
        let mask = slots - 1;
        for &entry in old
            .iter()
            .filter(|&&entry| !matches!(entry, EMPTY | DELETED))
        {
            self.place(home(rehash(entry & SLOT_MASK), mask), entry);
        }
        self.deleted = 0;
    }
}

/// The top 7 bits of `hash`, where an entry keeps them.
fn tag(hash: u64) -> u32 {
    ((hash >> 57) as u32) << SLOT_BITS
}

fn home(hash: u64, mask: usize) -> usize {
    (hash >> HOME_SHIFT) as usize & mask
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A hash for key `n` whose tag and home collide often (few distinct values), so that
    /// probes run long, pass tombstones and wrap around the end.
    fn hash_of(n: u32) -> u64 {
        let x = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // Tag from 2 values, home from 64.
        (x & (1 << 63)) | ((x >> 20) & (63 << HOME_SHIFT)) | (x & 63)
    }

    #[test]
    fn inserts_finds_and_removals_agree_with_a_map() {
        let mut index = InternIndex::with_capacity(100);
        assert_eq!(index.capacity(), 256 / 4 * 3);
        // slot -> key: the slab the index names.
        let mut live: HashMap<u32, u32> = HashMap::new();
        let mut random = 0x2545_f491_4f6c_dd1d_u64;
        let mut next_slot = 0;
        for round in 0..100_000 {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            let key = (random % 300) as u32;
            let found = index.find(hash_of(key), |slot| live.get(&slot) == Some(&key));
            let known = live.iter().find(|&(_, &k)| k == key).map(|(&slot, _)| slot);
            assert_eq!(found, known, "round {round}: key {key}");
            match found {
                Some(slot) if random >> 62 != 0 => {
                    assert!(index.remove(hash_of(key), slot), "round {round}");
                    assert!(!index.remove(hash_of(key), slot), "round {round}: twice");
                    live.remove(&slot);
                }
                Some(_) => {}
                None => {
                    let slot = next_slot;
                    next_slot = (next_slot + 1) % MAX_SLOT;
                    let keys = &live;
                    index.insert_unique(hash_of(key), slot, |slot| hash_of(keys[&slot]));
                    live.insert(slot, key);
                }
            }
            assert_eq!(index.len(), live.len());
            assert!(index.len() + index.deleted <= index.max_load());
        }
        // Each live entry is found by its own key only.
        for (&slot, &key) in &live {
            assert_eq!(index.find(hash_of(key), |s| s == slot), Some(slot));
        }
    }

    #[test]
    fn a_full_index_grows_and_keeps_its_entries() {
        let mut index = InternIndex::new();
        assert_eq!((index.capacity(), index.find(7, |_| true)), (0, None));
        assert!(!index.remove(7, 0));
        for slot in 0..1000 {
            index.insert_unique(hash_of(slot), slot, hash_of);
        }
        assert_eq!(index.len(), 1000);
        assert!(index.capacity() >= 1000);
        for slot in 0..1000 {
            assert_eq!(index.find(hash_of(slot), |s| s == slot), Some(slot));
        }
    }

    #[test]
    fn tombstones_count_against_the_capacity_until_a_run_ends() {
        let mut index = InternIndex::with_capacity(12);
        let capacity = index.capacity();
        // Two entries of one home: removing the first leaves a tombstone (the second's probe
        // passes it), removing the second then clears both.
        let hash = |slot: u32| u64::from(slot & 1) << 63;
        index.insert_unique(hash(0), 0, hash);
        index.insert_unique(hash(2), 2, hash);
        assert!(index.remove(hash(0), 0));
        assert_eq!(index.capacity(), capacity - 1);
        assert_eq!(index.find(hash(2), |s| s == 2), Some(2));
        assert!(index.remove(hash(2), 2));
        assert_eq!((index.capacity(), index.len()), (capacity, 0));
        // A slot of the highest value and tag is neither empty nor a tombstone.
        let top = u64::MAX;
        index.insert_unique(top, MAX_SLOT, |_| top);
        assert_eq!(index.find(top, |s| s == MAX_SLOT), Some(MAX_SLOT));
        assert!(index.remove(top, MAX_SLOT));
        assert!(index.is_empty());
    }
}
