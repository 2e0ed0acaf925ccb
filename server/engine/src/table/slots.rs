//! The slot arrays of the shards' indexes, in memory that the kernel may back with huge pages.
//!
//! An index lookup lands on a random slot of a large array: with 4 KiB pages, nearly every one
//! also misses the TLB, and the page walk (two-dimensional in a virtual machine) costs about
//! as much as the cache miss itself, and a prefetch of the slot waits for it. The indexes of
//! all the shards of one kind are therefore cut from one allocation, aligned to 2 MiB and
//! marked `MADV_HUGEPAGE` (what transparent huge pages in `madvise` mode need): 2 MiB pages
//! cover a 10-million-lease index with a few hundred TLB entries. Every slot is written when
//! the array is made (the empty marker), so huge pages cost no memory that 4 KiB pages would
//! not. An index that outgrows its part moves to an allocation of its own, made the same way;
//! the part it leaves stays allocated until the other shards' parts are dropped with the table.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;

/// The huge page size that an allocation is aligned to, and rounded up to, when it is at least
/// that large.
const HUGE_PAGE: usize = 2 << 20;

/// One allocation, freed when the last [`Slots`] cut from it is dropped.
struct Block {
    ptr: NonNull<u64>,
    layout: Layout,
}

// Safety: a `Block` is a plain heap allocation of `u64`s; the `Slots` cut from it give access
// to disjoint parts only (see `Slots`), and the block itself reads nothing.
unsafe impl Send for Block {}
// Safety: as above; `&Block` allows nothing but dropping it (through its `Arc`).
unsafe impl Sync for Block {}

impl Drop for Block {
    fn drop(&mut self) {
        // Safety: `ptr` was returned by `alloc` with this very `layout` and is freed once, here.
        unsafe { dealloc(self.ptr.as_ptr().cast(), self.layout) };
    }
}

/// A part of a [`Block`] that this value alone reads and writes, like a `Box<[u64]>`.
pub(super) struct Slots {
    _block: Arc<Block>,
    ptr: NonNull<u64>,
    len: usize,
}

// Safety: `Slots` owns its part exclusively (it is neither `Clone` nor `Copy`, and parts never
// overlap), so it is `Send` and `Sync` for the same reasons as `Box<[u64]>`.
unsafe impl Send for Slots {}
// Safety: as above: `&Slots` gives shared access to `u64`s only.
unsafe impl Sync for Slots {}

impl Slots {
    /// One array of `len` slots, each set to `value`.
    pub(super) fn filled(len: usize, value: u64) -> Self {
        Self::split_filled(1, len, value)
            .pop()
            .unwrap_or_else(|| unreachable!("one part was asked for"))
    }

    /// `parts` arrays of `each` slots, each slot set to `value`, cut from one allocation.
    ///
    /// Panics, as `Vec::with_capacity` does, when the size overflows `isize`: the capacity
    /// comes from the configuration's expected leases, which the table has already bounded.
    pub(super) fn split_filled(parts: usize, each: usize, value: u64) -> Vec<Self> {
        let len = parts.checked_mul(each).expect("the index fits in memory");
        let bytes = len
            .checked_mul(size_of::<u64>())
            .expect("the index fits in memory")
            .max(size_of::<u64>());
        let (bytes, align) = if bytes >= HUGE_PAGE {
            (bytes.next_multiple_of(HUGE_PAGE), HUGE_PAGE)
        } else {
            // A cache line: the eight slots a probe reads first share one.
            (bytes, 64)
        };
        let layout = Layout::from_size_align(bytes, align).expect("the index fits in memory");
        // Safety: `layout` has a non-zero size.
        let ptr = unsafe { alloc(layout) }.cast::<u64>();
        let Some(ptr) = NonNull::new(ptr) else {
            handle_alloc_error(layout)
        };
        if align == HUGE_PAGE {
            advise_huge_pages(ptr.as_ptr().cast(), bytes);
        }
        // Safety: the allocation holds `bytes >= len * 8` bytes, aligned for `u64`; writing
        // every slot once initialises the parts handed out below.
        unsafe {
            for at in 0..len {
                ptr.as_ptr().add(at).write(value);
            }
        }
        let block = Arc::new(Block { ptr, layout });
        (0..parts)
            .map(|part| Self {
                _block: Arc::clone(&block),
                // Safety: `part * each + each <= len`: the part lies inside the allocation.
                ptr: unsafe { NonNull::new_unchecked(ptr.as_ptr().add(part * each)) },
                len: each,
            })
            .collect()
    }
}

impl Deref for Slots {
    type Target = [u64];

    fn deref(&self) -> &[u64] {
        // Safety: `ptr..ptr + len` is an initialised part of the live block (the `Arc` keeps it),
        // which no other `Slots` covers.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for Slots {
    fn deref_mut(&mut self) -> &mut [u64] {
        // Safety: as in `deref`, and `&mut self` makes this the only access to the part.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

/// Has the kernel fault in, writable, the whole pages under `spare` (the reserved, unwritten
/// capacity of a `Vec`), so that filling it later, inside requests, takes no page fault and
/// zeroes no page (with transparent huge pages, 2 MiB at a time). Contents are unchanged. A
/// hint: where the kernel cannot (`MADV_POPULATE_WRITE` needs Linux 5.14; another OS), or
/// lacks the memory now, the pages fault on first write as before.
pub(super) fn populate<T>(spare: &mut [std::mem::MaybeUninit<T>]) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = spare.as_mut_ptr() as usize;
        let end = start + size_of_val(spare);
        // Whole pages inside `spare` only.
        let (first, last) = (start.next_multiple_of(PAGE), end / PAGE * PAGE);
        if last > first {
            // Safety: `first..last` is page-aligned and lies inside `spare`, memory of this
            // process that the exclusive borrow says nothing else reads or writes now;
            // MADV_POPULATE_WRITE only faults its pages in, never changing their contents.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_POPULATE_WRITE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = spare;
}

/// Asks the kernel to back `bytes` bytes from `at` (2 MiB aligned) with transparent huge
/// pages; where it will not (THP off, another OS), the memory stays in small pages.
fn advise_huge_pages(at: *mut u8, bytes: usize) {
    #[cfg(target_os = "linux")]
    // Safety: `at..at + bytes` is one live allocation of this process, page-aligned;
    // MADV_HUGEPAGE changes how it is backed, never its contents.
    unsafe {
        libc::madvise(at.cast(), bytes, libc::MADV_HUGEPAGE);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (at, bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_disjoint_filled_and_outlive_each_other() {
        let mut parts = Slots::split_filled(3, 5, 7);
        assert!(
            parts
                .iter()
                .all(|part| part.len() == 5 && part.iter().all(|&v| v == 7))
        );
        for (n, part) in parts.iter_mut().enumerate() {
            part.fill(n as u64);
        }
        let last = parts.pop().unwrap();
        drop(parts);
        assert_eq!(&*last, &[2; 5]);
        // Large enough for huge pages: aligned, and still all there.
        let big = Slots::filled(HUGE_PAGE / 8 + 1, u64::MAX);
        assert_eq!(big.as_ptr() as usize % HUGE_PAGE, 0);
        assert!(big.iter().all(|&v| v == u64::MAX));
    }
}
