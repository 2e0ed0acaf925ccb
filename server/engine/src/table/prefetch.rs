//! Read-only prefetching of the memory a client lookup will touch, for batches of requests
//! whose cache misses should overlap instead of following one another.
//!
//! Each shard publishes where its arrays live (the client index's slots, the address shard's
//! records and index slots) in a [`Window`] kept outside its mutex, updated under the lock whenever the array
//! moves. A prefetch reads the window without the lock: at worst it names memory that was just
//! freed or the wrong slot, and a prefetch instruction never faults nor changes what any
//! thread reads, so a stale window costs a useless memory access and nothing else.

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use super::index::home;
use super::shard::{Record, addr_hash, index_hash};
use super::{IaKind, LeaseTable};

/// Where a shard's array is and how many elements it has, for prefetching only.
pub(super) struct Window {
    base: AtomicPtr<u8>,
    len: AtomicUsize,
}

impl Window {
    pub(super) fn new() -> Self {
        Self {
            base: AtomicPtr::new(std::ptr::null_mut()),
            len: AtomicUsize::new(0),
        }
    }

    /// Records that the array now starts at `base` and holds `len` elements (a store only
    /// when it moved or grew).
    pub(super) fn publish<T>(&self, base: *const T, len: usize) {
        let base = base.cast::<u8>().cast_mut();
        if self.base.load(Ordering::Relaxed) != base {
            self.base.store(base, Ordering::Relaxed);
        }
        if self.len.load(Ordering::Relaxed) != len {
            self.len.store(len, Ordering::Relaxed);
        }
    }

    /// Prefetches the element of `size` bytes just past the last one: where an array with
    /// room to spare appends next. Past its allocation the prefetch is merely useless.
    fn prefetch_end(&self, size: usize) {
        let base = self.base.load(Ordering::Relaxed);
        if base.is_null() {
            return;
        }
        let start = base.wrapping_add(self.len.load(Ordering::Relaxed) * size);
        prefetch(start);
        let last = start.wrapping_add(size - 1);
        if (last as usize) / 64 != (start as usize) / 64 {
            prefetch(last);
        }
    }

    /// Prefetches the `size` bytes of element `index` of elements of `size` bytes.
    fn prefetch(&self, index: usize, size: usize) {
        let base = self.base.load(Ordering::Relaxed);
        if base.is_null() || index >= self.len.load(Ordering::Relaxed) {
            return;
        }
        let start = base.wrapping_add(index * size);
        prefetch(start);
        let last = start.wrapping_add(size - 1);
        // An element that straddles two cache lines.
        if (last as usize) / 64 != (start as usize) / 64 {
            prefetch(last);
        }
    }
}

/// Asks the CPU to bring the cache line of `at` into its caches; a no-op where the target
/// has no prefetch instruction wired here.
#[inline(always)]
pub(crate) fn prefetch(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is part of SSE, which every x86_64 CPU has; it is a hint that reads
    // nothing into the program, never faults, and may name any address, freed or invalid.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(at.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

impl LeaseTable {
    /// Prefetches the client index slots where the entries of `client_hash` (an
    /// [`super::IaKey`]'s hash) start, and the shard's lock, without taking any lock: the first step of a lookup
    /// that a batch overlaps with the others' ([`Self::prefetch_client_records`] next).
    pub fn prefetch_client_index(&self, client_hash: u32) {
        let shard = self.client_shard_of(client_hash);
        // The shard's lock, taken next.
        prefetch((&raw const self.clients[shard]).cast());
        let window = &self.client_windows[shard];
        let mask = window.len.load(Ordering::Relaxed).wrapping_sub(1);
        window.prefetch(home(client_hash, mask), size_of::<u64>());
    }

    /// Prefetches the records that the client index lists for `client_hash`: reads the index
    /// under its shard's lock when that lock is free (and does nothing when it is not), and
    /// the records' addresses without any lock. Changes nothing.
    pub fn prefetch_client_records(&self, client_hash: u32) {
        let Some(clients) = self.clients[self.client_shard_of(client_hash)].try_lock() else {
            return;
        };
        for entry in clients.index.entries_of(client_hash) {
            let (shard, slot) = self.split_loc(entry as u32);
            if let Some(window) = self.record_windows.get(shard) {
                window.prefetch(slot, size_of::<Record>());
                // The record's shard lock, taken when the request is answered.
                prefetch((&raw const self.addrs[shard]).cast());
            }
        }
    }

    /// Prefetches the address index slots where `addr` of `kind` would be found, and its
    /// shard's lock, without taking any lock: for a new client, whose first hashed candidate
    /// is known before its request is answered. With `claims` (a Request), also where the
    /// shard's next record goes when no freed slot is reused. Returns the address's index
    /// hash, for [`super::IaKey::with_addr_hash`].
    pub(crate) fn prefetch_addr_index(&self, addr: u128, kind: IaKind, claims: bool) -> u64 {
        let hash = addr_hash(addr, kind, &self.index_key);
        let shard = self.addr_shard_of(hash);
        prefetch((&raw const self.addrs[shard]).cast());
        let window = &self.addr_index_windows[shard];
        let mask = window.len.load(Ordering::Relaxed).wrapping_sub(1);
        window.prefetch(home(index_hash(hash), mask), size_of::<u64>());
        if claims && let Some(records) = self.record_windows.get(shard) {
            records.prefetch_end(size_of::<Record>());
        }
        hash
    }
}
