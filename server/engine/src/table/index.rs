//! The index of a shard: `(key hash << 32) | location` entries in one open-addressed array
//! with linear probing. A client shard's index maps the 32-bit client hash to record
//! locations, an address shard's maps 32 bits of the address hash to slab slots; both verify
//! the record an entry names, so entries of colliding hashes are merely skipped.
//!
//! A lookup reads the entries themselves from the key hash's home slot on, so that it costs
//! one cache line (eight entries) in the common case: a general hash table keeps control bytes
//! apart from its entries, and a hit there costs a miss for each before the record's. It grows
//! (doubling) past a load of 3/4: 8 bytes per slot, from 11 bytes per entry; deletion shifts
//! the entries after the hole back, so there are no tombstones.

use super::shard::mix64;
use super::slots::Slots;

/// The value of an empty slot: no entry has it (the table keeps the all-ones location free).
const EMPTY: u64 = u64::MAX;

/// The fewest slots an index has.
const MIN_SLOTS: usize = 8;

pub(super) struct HashIndex {
    slots: Slots,
    len: usize,
}

impl HashIndex {
    /// An index that holds `capacity` entries without growing.
    #[cfg(test)]
    pub(super) fn with_capacity(capacity: usize) -> Self {
        Self::in_slots(Slots::filled(Self::slots_for(capacity), EMPTY))
    }

    /// `parts` empty indexes that each hold `capacity` entries without growing, cut from one
    /// allocation ([`Slots::split_filled`]).
    pub(super) fn split(parts: usize, capacity: usize) -> Vec<Self> {
        Slots::split_filled(parts, Self::slots_for(capacity), EMPTY)
            .into_iter()
            .map(Self::in_slots)
            .collect()
    }

    /// The slots an index of `capacity` entries starts with: a power of two, at a load of at
    /// most 3/4.
    fn slots_for(capacity: usize) -> usize {
        capacity
            .saturating_mul(4)
            .div_ceil(3)
            .max(MIN_SLOTS)
            .next_power_of_two()
    }

    fn in_slots(slots: Slots) -> Self {
        debug_assert!(slots.len().is_power_of_two() && slots.iter().all(|&e| e == EMPTY));
        Self { slots, len: 0 }
    }

    /// The number of entries.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Every entry, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.slots.iter().copied().filter(|&entry| entry != EMPTY)
    }

    /// The entries of `key_hash`: those whose top 32 bits are it.
    pub(super) fn entries_of(&self, key_hash: u32) -> impl Iterator<Item = u64> + '_ {
        let mask = self.mask();
        let mut at = home(key_hash, mask);
        std::iter::from_fn(move || {
            loop {
                let entry = *self.slots.get(at)?;
                if entry == EMPTY {
                    return None;
                }
                at = (at + 1) & mask;
                if (entry >> 32) as u32 == key_hash {
                    return Some(entry);
                }
            }
        })
    }

    /// Adds `entry` unless it is there already.
    pub(super) fn insert(&mut self, entry: u64) {
        debug_assert_ne!(entry, EMPTY);
        if self.find(entry).is_some() {
            return;
        }
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        self.place(entry);
        self.len += 1;
    }

    /// Removes `entry`; whether it was there.
    pub(super) fn remove(&mut self, entry: u64) -> bool {
        let Some(mut hole) = self.find(entry) else {
            return false;
        };
        let mask = self.mask();
        let mut at = hole;
        loop {
            at = (at + 1) & mask;
            let next = self.slots[at];
            if next == EMPTY {
                break;
            }
            // An entry may move back into the hole when the hole lies between its home slot
            // and where it is now.
            let home = home((next >> 32) as u32, mask);
            if at.wrapping_sub(home) & mask >= at.wrapping_sub(hole) & mask {
                self.slots[hole] = next;
                hole = at;
            }
        }
        self.slots[hole] = EMPTY;
        self.len -= 1;
        true
    }

    /// Where the slots are and how many there are, for [`super::prefetch::Window`].
    pub(super) fn slots(&self) -> (*const u64, usize) {
        (self.slots.as_ptr(), self.slots.len())
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    fn find(&self, entry: u64) -> Option<usize> {
        let mask = self.mask();
        let mut at = home((entry >> 32) as u32, mask);
        loop {
            match self.slots[at] {
                EMPTY => return None,
                found if found == entry => return Some(at),
                _ => at = (at + 1) & mask,
            }
        }
    }

    fn place(&mut self, entry: u64) {
        let mask = self.mask();
        let mut at = home((entry >> 32) as u32, mask);
        while self.slots[at] != EMPTY {
            at = (at + 1) & mask;
        }
        self.slots[at] = entry;
    }

    fn grow(&mut self) {
        let grown = Slots::filled(self.slots.len() * 2, EMPTY);
        let old = std::mem::replace(&mut self.slots, grown);
        for entry in old.iter().copied().filter(|&entry| entry != EMPTY) {
            self.place(entry);
        }
    }
}

/// The slot where the entries of `key_hash` start looking.
pub(super) fn home(key_hash: u32, mask: usize) -> usize {
    mix64(u64::from(key_hash)) as usize & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hash: u32, loc: u32) -> u64 {
        u64::from(hash) << 32 | u64::from(loc)
    }

    #[test]
    fn entries_are_found_by_hash_and_removed_without_losing_others() {
        let mut index = HashIndex::with_capacity(4);
        let mut model = std::collections::BTreeSet::new();
        // Few distinct hashes, so that runs collide, wrap and grow.
        let mut state = 0x1234_5678_u64;
        for step in 0..20_000u32 {
            state = mix64(state.wrapping_add(u64::from(step)));
            let e = entry((state >> 40) as u32 % 97, (state as u32) % 50);
            if state & 3 == 0 {
                assert_eq!(index.remove(e), model.remove(&e), "step {step}");
            } else {
                index.insert(e);
                model.insert(e);
            }
            assert_eq!(index.len(), model.len());
            if step % 997 == 0 {
                for hash in 0..97 {
                    let mut found: Vec<u64> = index.entries_of(hash).collect();
                    found.sort_unstable();
                    let expected: Vec<u64> = model
                        .iter()
                        .copied()
                        .filter(|e| (e >> 32) as u32 == hash)
                        .collect();
                    assert_eq!(found, expected, "hash {hash} at step {step}");
                }
                let mut all: Vec<u64> = index.iter().collect();
                all.sort_unstable();
                assert_eq!(all, model.iter().copied().collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn an_entry_is_kept_once_and_the_load_stays_bounded() {
        let mut index = HashIndex::with_capacity(0);
        for loc in 0..1000 {
            index.insert(entry(7, loc));
            index.insert(entry(7, loc));
        }
        assert_eq!(index.len(), 1000);
        assert!(index.slots.len() * 3 >= 1000 * 4);
        assert_eq!(index.entries_of(7).count(), 1000);
        assert_eq!(index.entries_of(8).count(), 0);
        for loc in 0..1000 {
            assert!(index.remove(entry(7, loc)));
        }
        assert!(!index.remove(entry(7, 0)));
        assert_eq!(index.iter().count(), 0);
    }
}
