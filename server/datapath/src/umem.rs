//! The UMEM: the packet buffer an AF_XDP socket shares with the kernel, cut into frames.

use std::ptr;

use crate::socket::XskConfig;

/// A UMEM mapping, unmapped on drop.
pub(crate) struct Umem {
    ptr: *mut u8,
    len: usize,
    frame_size: usize,
}

impl Drop for Umem {
    fn drop(&mut self) {
        // Safety: the mapping came from mmap with `len` and no reference into it survives
        // us. In `XskSocket` the socket is closed before this runs; on the error paths of
        // `XskSocket::open` it may still be open (locals drop in reverse order), which is
        // harmless: the kernel pinned the pages at XDP_UMEM_REG and releases them on close.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

impl Umem {
    /// Maps an anonymous, populated UMEM of `config.frames` frames of `config.frame_size`.
    pub(crate) fn map(config: &XskConfig) -> std::io::Result<Self> {
        let len = config.frames as usize * config.frame_size as usize;
        // Safety: an anonymous private mapping with no address hint; checked below.
        let ptr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Umem {
            ptr: ptr.cast(),
            len,
            frame_size: config.frame_size as usize,
        })
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
