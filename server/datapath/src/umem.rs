//! The UMEM: the packet buffer an AF_XDP socket shares with the kernel, cut into frames.
//!
//! A worker's frames come back to it in the fill ring's order, so over a few thousand
//! requests it touches every frame of the ring: with 4 KiB pages, nearly every request it
//! reads and every reply it writes also misses the TLB, and the page walk (two-dimensional
//! in a virtual machine) costs about as much as the cache miss itself. A UMEM of at least
//! [`HUGE_PAGE`] is therefore mapped at a 2 MiB boundary, rounded up to whole huge pages and
//! marked `MADV_HUGEPAGE` (what transparent huge pages in `madvise` mode need), then written
//! once per page to fault it in, as `MAP_POPULATE` does for a smaller one: a server's 32 MiB
//! of frames is then 16 TLB entries instead of 8,192. Where the kernel has no huge page to
//! give, it backs the mapping with 4 KiB pages as before.

use std::ptr;

use crate::socket::XskConfig;

/// The huge page size: a UMEM at least this large is aligned to it and advised for it.
const HUGE_PAGE: usize = 2 << 20;

/// A UMEM mapping, unmapped on drop.
pub(crate) struct Umem {
    ptr: *mut u8,
    /// The frames' bytes (what the kernel registers).
    len: usize,
    /// The mapping's length: `len`, rounded up to whole huge pages when it is huge-page backed.
    mapped: usize,
    frame_size: usize,
}

impl Drop for Umem {
    fn drop(&mut self) {
        // Safety: the mapping came from mmap with `len` and no reference into it survives
        // us. In `XskSocket` the socket is closed before this runs; on the error paths of
        // `XskSocket::open` it may still be open (locals drop in reverse order), which is
        // harmless: the kernel pinned the pages at XDP_UMEM_REG and releases them on close.
        unsafe { libc::munmap(self.ptr.cast(), self.mapped) };
    }
}

impl Umem {
    /// Maps an anonymous, populated UMEM of `config.frames` frames of `config.frame_size`; one
    /// of at least [`HUGE_PAGE`] bytes on huge pages where the kernel has them (module docs).
    pub(crate) fn map(config: &XskConfig) -> std::io::Result<Self> {
        let len = config.frames as usize * config.frame_size as usize;
        let frame_size = config.frame_size as usize;
        if len < HUGE_PAGE {
            let ptr = map_anonymous(len, libc::MAP_POPULATE)?;
            return Ok(Umem {
                ptr,
                len,
                mapped: len,
                frame_size,
            });
        }
        let mapped = len.next_multiple_of(HUGE_PAGE);
        // A huge page more than needed, so that a 2 MiB boundary lies in the first one; the
        // rest is unmapped again at once.
        let reserved = mapped + HUGE_PAGE;
        let base = map_anonymous(reserved, 0)?;
        let head = (base as usize).next_multiple_of(HUGE_PAGE) - base as usize;
        // Safety: `base..base + reserved` is the mapping just made, which nothing else knows;
        // `head < HUGE_PAGE`, so the part kept, `head..head + mapped`, lies inside it, and the
        // parts unmapped (before and after it) are page-aligned, since `base` and `HUGE_PAGE`
        // are. `madvise` changes how the part kept is backed, never its contents; its failure
        // (a kernel without transparent huge pages) leaves 4 KiB pages. The writes are one
        // byte per 4 KiB page of the part kept, which is zero-filled memory of this process.
        unsafe {
            let ptr = base.add(head);
            if head > 0 {
                libc::munmap(base.cast(), head);
            }
            libc::munmap(ptr.add(mapped).cast(), reserved - head - mapped);
            libc::madvise(ptr.cast(), mapped, libc::MADV_HUGEPAGE);
            for page in (0..mapped).step_by(4096) {
                ptr.add(page).write_volatile(0);
            }
            Ok(Umem {
                ptr,
                len,
                mapped,
                frame_size,
            })
        }
    }

    /// The address of the mapping, for `XDP_UMEM_REG`.
    pub(crate) fn address(&self) -> u64 {
        self.ptr as u64
    }

    /// The length of the mapping.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The start of the frame holding UMEM address `addr`.
    pub(crate) fn frame_base(&self, addr: u64) -> u64 {
        addr & !(self.frame_size as u64 - 1)
    }

    /// The frame at UMEM address `addr`, `len` bytes (clamped to the frame).
    pub(crate) fn frame(&self, addr: u64, len: usize) -> &[u8] {
        let (start, len) = self.frame_bounds(addr, len);
        // Safety: `frame_bounds` keeps the range inside the mapping; the kernel is done with a
        // frame it put on the RX ring until it is given back.
        unsafe { std::slice::from_raw_parts(self.ptr.add(start), len) }
    }

    /// The whole frame at UMEM address `addr`, to write into.
    pub(crate) fn frame_mut(&mut self, addr: u64) -> &mut [u8] {
        let (start, len) = self.frame_bounds(addr, self.frame_size);
        // Safety: as for `frame`; `&mut self` makes this the only reference into the UMEM.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }

    /// The frame at `read` (`read_len` bytes) and the whole, different frame at `write`;
    /// `None` when both addresses lie in one frame.
    pub(crate) fn frame_pair(
        &mut self,
        read: u64,
        read_len: usize,
        write: u64,
    ) -> Option<(&[u8], &mut [u8])> {
        if self.frame_base(read) == self.frame_base(write) {
            return None;
        }
        let (read_start, read_len) = self.frame_bounds(read, read_len);
        let (write_start, write_len) = self.frame_bounds(write, self.frame_size);
        // Safety: both ranges lie inside the mapping and inside their own frame, and the two
        // frames differ (checked above), so the slices do not overlap; `&mut self` makes them
        // the only references into the UMEM.
        unsafe {
            Some((
                std::slice::from_raw_parts(self.ptr.add(read_start), read_len),
                std::slice::from_raw_parts_mut(self.ptr.add(write_start), write_len),
            ))
        }
    }

    /// For each `(read, read_len, write)` of `pairs`, in order, the frame at `read`
    /// (`read_len` bytes) and the whole frame at `write`, all at once; `None` when a frame to
    /// write lies in the frame of any read or of another write.
    pub(crate) fn frame_pairs<'a>(
        &'a mut self,
        pairs: &'a [(u64, usize, u64)],
    ) -> Option<impl Iterator<Item = (&'a [u8], &'a mut [u8])> + 'a> {
        for (i, &(_, _, write)) in pairs.iter().enumerate() {
            let base = self.frame_base(write);
            let clash = pairs.iter().enumerate().any(|(j, &(read, _, other))| {
                self.frame_base(read) == base || (j != i && self.frame_base(other) == base)
            });
            if clash {
                return None;
            }
        }
        let umem = &*self;
        Some(pairs.iter().map(move |&(read, read_len, write)| {
            let (read_start, read_len) = umem.frame_bounds(read, read_len);
            let (write_start, write_len) = umem.frame_bounds(write, umem.frame_size);
            // Safety: every range lies inside the mapping and inside its own frame; no frame
            // written lies in a frame read or in another frame written (checked above), so no
            // mutable slice overlaps another slice; `&mut self`, held for `'a`, makes them the
            // only references into the UMEM.
            unsafe {
                (
                    std::slice::from_raw_parts(umem.ptr.add(read_start), read_len),
                    std::slice::from_raw_parts_mut(umem.ptr.add(write_start), write_len),
                )
            }
        }))
    }

    fn frame_bounds(&self, addr: u64, len: usize) -> (usize, usize) {
        let start = (addr as usize).min(self.len);
        let frame_end = (self.frame_base(addr) as usize + self.frame_size).min(self.len);
        (start, len.min(frame_end.saturating_sub(start)))
    }
}

/// An anonymous private read-write mapping of `len` bytes, with `flags` added.
fn map_anonymous(len: usize, flags: libc::c_int) -> std::io::Result<*mut u8> {
    // Safety: an anonymous private mapping with no address hint; checked below.
    let ptr = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flags,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    Ok(ptr.cast())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn umem() -> Umem {
        let config = XskConfig {
            frames: 8,
            ..XskConfig::default()
        };
        match Umem::map(&config) {
            Ok(umem) => umem,
            Err(error) => panic!("cannot map a UMEM: {error}"),
        }
    }

    /// The `VmFlags` of the mapping of this process that starts at `address`.
    fn vm_flags(address: usize) -> Option<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let start = format!("{address:x}-");
        let mut mapping = smaps.lines().skip_while(|line| !line.starts_with(&start));
        mapping.next()?;
        mapping
            .take_while(|line| !line.contains('-') || line.starts_with("VmFlags"))
            .find_map(|line| line.strip_prefix("VmFlags:").map(str::to_owned))
    }

    #[test]
    fn a_large_umem_lies_on_huge_page_boundaries_advised_for_huge_pages() {
        // 8 MiB plus one frame: rounded up to five huge pages.
        let config = XskConfig {
            frames: 4097,
            ..XskConfig::default()
        };
        let mut umem = Umem::map(&config).unwrap_or_else(|error| panic!("no UMEM: {error}"));
        let size = umem.frame_size as u64;
        assert_eq!(umem.len(), 4097 * 2048);
        assert_eq!(
            umem.address() as usize % HUGE_PAGE,
            0,
            "not on a 2 MiB boundary"
        );
        assert_eq!(umem.mapped, 5 * HUGE_PAGE);
        let flags = vm_flags(umem.address() as usize)
            .unwrap_or_else(|| panic!("no mapping at {:#x} in smaps", umem.address()));
        assert!(
            flags.split_whitespace().any(|flag| flag == "hg"),
            "not advised for huge pages (MADV_HUGEPAGE): VmFlags {flags}"
        );
        // Zero-filled and writable to the last frame.
        assert!(umem.frame(4096 * size, 2048).iter().all(|&byte| byte == 0));
        umem.frame_mut(4096 * size)[2047] = 7;
        assert_eq!(umem.frame(4096 * size + 2047, 1), [7]);
        // A small one stays as it was: one mapping of its own size.
        let small = self::umem();
        assert_eq!(small.mapped, small.len());
        let flags = vm_flags(small.address() as usize).unwrap_or_default();
        assert!(
            !flags.split_whitespace().any(|flag| flag == "hg"),
            "{flags}"
        );
    }

    #[test]
    fn a_group_of_frame_pairs_reads_and_writes_its_own_frames() {
        let mut umem = umem();
        let size = umem.frame_size as u64;
        umem.frame_mut(0)[..3].copy_from_slice(b"one");
        umem.frame_mut(2 * size)[..3].copy_from_slice(b"two");
        // Requests in frames 0 and 2 (at an offset), replies into frames 1 and 3.
        let pairs = [(0, 3, size + 256), (2 * size, 3, 3 * size)];
        let Some(frames) = umem.frame_pairs(&pairs) else {
            panic!("distinct frames refused");
        };
        for (read, write) in frames {
            let len = read.len();
            write[..len].copy_from_slice(read);
        }
        assert_eq!(umem.frame(size + 256, 3), b"one");
        assert_eq!(umem.frame(3 * size, 3), b"two");
        // The second write starts in the frame the first one writes.
        assert!(
            umem.frame_pairs(&[(0, 3, size), (2 * size, 3, size + 100)])
                .is_none()
        );
        // A write in the frame of another pair's read.
        assert!(
            umem.frame_pairs(&[(0, 3, size), (2 * size, 3, 50)])
                .is_none()
        );
        // A write in its own request's frame.
        assert!(umem.frame_pairs(&[(0, 3, 64)]).is_none());
    }
}
