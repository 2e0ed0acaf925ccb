//! One memory-mapped AF_XDP ring (fill, completion, RX or TX), shared with the kernel through
//! atomic producer and consumer indices.

use std::{
    io,
    mem::size_of,
    os::fd::{AsRawFd, BorrowedFd},
    ptr,
    sync::atomic::{AtomicU32, Ordering},
};

/// One mapped ring, the kernel at the other end. `T` is `u64` (fill, completion: frame
/// addresses) or `libc::xdp_desc` (RX, TX).
pub(crate) struct Ring<T> {
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    descs: *mut T,
    mask: u32,
    map: *mut libc::c_void,
    map_len: usize,
}

impl<T: Copy> Ring<T> {
    /// Maps the ring at `page_offset` of the socket, laid out as `offsets` says.
    pub(crate) fn map(
        fd: BorrowedFd<'_>,
        offsets: &libc::xdp_ring_offset,
        size: u32,
        page_offset: u64,
    ) -> io::Result<Self> {
        let map_len = offsets.desc as usize + size as usize * size_of::<T>();
        // Safety: a shared mapping of the socket's ring, of the length the kernel's offsets
        // describe; checked below.
        let map = unsafe {
            libc::mmap(
                ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                page_offset as libc::off_t,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = map.cast::<u8>();
        // Safety: the offsets come from XDP_MMAP_OFFSETS and lie within the mapping; the
        // producer, consumer and flags words are u32s aligned by the kernel.
        unsafe {
            Ok(Ring {
                producer: base.add(offsets.producer as usize).cast(),
                consumer: base.add(offsets.consumer as usize).cast(),
                flags: base.add(offsets.flags as usize).cast(),
                descs: base.add(offsets.desc as usize).cast(),
                mask: size - 1,
                map,
                map_len,
            })
        }
    }

    fn producer(&self) -> &AtomicU32 {
        // Safety: the pointer is into our live mapping; the kernel updates it atomically.
        unsafe { &*self.producer }
    }

    fn consumer(&self) -> &AtomicU32 {
        // Safety: as for `producer`.
        unsafe { &*self.consumer }
    }

    pub(crate) fn needs_wakeup(&self) -> bool {
        // Safety: as for `producer`.
        let flags = unsafe { &*self.flags };
        flags.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    pub(crate) fn read(&self, index: u32) -> T {
        // Safety: `index & mask` is within the ring's `size` descriptors.
        unsafe { self.descs.add((index & self.mask) as usize).read() }
    }

    pub(crate) fn write(&self, index: u32, value: T) {
        // Safety: as for `read`; entries between our producer index and the kernel's consumer
        // index belong to us.
        unsafe { self.descs.add((index & self.mask) as usize).write(value) }
    }

    fn size(&self) -> u32 {
        self.mask + 1
    }

    // We produce (fill, TX): entries free for us, and publishing them.

    pub(crate) fn free_entries(&self) -> (u32, u32) {
        let producer = self.producer().load(Ordering::Relaxed);
        let consumer = self.consumer().load(Ordering::Acquire);
        (producer, self.size() - producer.wrapping_sub(consumer))
    }

    pub(crate) fn submit(&self, producer: u32) {
        // Release: the descriptors written before are visible to the kernel with the index.
        self.producer().store(producer, Ordering::Release);
    }

    // The kernel produces (RX, completion): entries ready for us, and handing them back.

    pub(crate) fn ready(&self) -> (u32, u32) {
        let consumer = self.consumer().load(Ordering::Relaxed);
        let producer = self.producer().load(Ordering::Acquire);
        (consumer, producer.wrapping_sub(consumer))
    }

    pub(crate) fn release(&self, consumer: u32) {
        // Release: our reads of the descriptors are done before the kernel may reuse them.
        self.consumer().store(consumer, Ordering::Release);
    }

    /// Whether the other side has entries it has not consumed yet.
    pub(crate) fn has_pending(&self) -> bool {
        self.producer().load(Ordering::Relaxed) != self.consumer().load(Ordering::Acquire)
    }

    /// The entries between consumer and producer, for audits.
    pub(crate) fn pending(&self) -> impl Iterator<Item = T> + '_ {
        let consumer = self.consumer().load(Ordering::Acquire);
        let producer = self.producer().load(Ordering::Acquire);
        (0..producer.wrapping_sub(consumer)).map(move |i| self.read(consumer.wrapping_add(i)))
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // Safety: `map` came from mmap with `map_len`, and no reference into it survives us.
        unsafe { libc::munmap(self.map, self.map_len) };
    }
}
