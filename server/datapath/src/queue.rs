//! The frame accounting of one AF_XDP socket.
//!
//! [`XskQueue`] adds the bookkeeping every user of a socket needs: every UMEM frame is in
//! exactly one place (the free list, the fill ring or the kernel on its way to the RX ring, the
//! RX ring, the TX ring or the kernel on its way to the completion ring, the completion ring),
//! and [`XskQueue::audit`] proves it when idle. What is done with the frames (a server's
//! replies, a load generator's requests) is the caller's.

use std::{fmt, os::fd::AsFd};

use crate::os::{self, Readiness};
use crate::socket::{XskConfig, XskSocket};

/// Where the frames of a queue are (see [`XskQueue::audit`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameAudit {
    /// Frames in the UMEM.
    pub total: u32,
    /// In our free list.
    pub free: u32,
    /// In the fill ring, waiting for packets.
    pub fill_ring: u32,
    /// In the RX ring, received and not yet handled.
    pub rx_ring: u32,
    /// In the TX ring, not yet sent.
    pub tx_ring: u32,
    /// In the completion ring, sent and not yet reclaimed.
    pub completion_ring: u32,
    /// Given to the kernel and in none of the rings (in flight).
    pub in_kernel: u32,
    /// Frames seen in two places at once (a bug).
    pub duplicates: u32,
}

impl FrameAudit {
    /// Whether every frame is somewhere visible, exactly once (true only when idle).
    pub fn is_complete(&self) -> bool {
        self.duplicates == 0
            && self.in_kernel == 0
            && self.free + self.fill_ring + self.rx_ring + self.tx_ring + self.completion_ring
                == self.total
    }
}

/// A bound socket and the whereabouts of each of its UMEM frames.
///
/// Frames are addressed by their UMEM offset. The caller takes free frames ([`Self::alloc`]),
/// puts them on the TX ring ([`Self::tx_write`], [`Self::tx_submit`]) and gets them back with
/// [`Self::reclaim`]; received frames ([`Self::rx_peek`], [`Self::rx_desc`]) are handed back to
/// the free list with [`Self::recycle`] and the RX ring released with [`Self::rx_release`].
///
/// The queue knows which frames the kernel holds (given to the fill ring and not yet seen on
/// the RX ring, or written to the TX ring and not yet reclaimed): [`Self::frame`],
/// [`Self::frame_mut`] and [`Self::frame_pair`] give no access to those, so that safe code
/// never reads or writes memory the kernel may be writing.
pub struct XskQueue {
    socket: XskSocket,
    /// Frame addresses (frame-aligned) that are ours to use.
    free: Vec<u64>,
    /// Per frame: whether the kernel holds it.
    lent: Vec<bool>,
    /// Frames given to the kernel through the fill ring and not yet back on the RX ring.
    in_fill: u32,
    /// Frames given to the kernel through the TX ring and not yet back on the completion ring.
    in_tx: u32,
}

/// Cache lines of a received frame [`XskQueue::prefetch_rx`] asks for (no more than the frame
/// holds): Ethernet, IPv6 and UDP headers and the DHCPv6 message, which the worker reads to
/// its end before answering it (a relayed Request with a Remote-ID is about 250 bytes).
const PREFETCH_LINES: usize = 5;

/// Cache lines of a reply frame [`XskQueue::prefetch_reply`] asks for: where the headers and
/// a typical relayed Advertise or Reply are written.
const REPLY_PREFETCH_LINES: usize = 5;

/// Cache lines of a held reply frame [`XskQueue::prefetch_tx`] asks for: 1 KiB, more than a
/// typical Advertise or Reply.
const TX_PREFETCH_LINES: usize = 16;

/// Descriptors the kernel's copy-mode transmit takes from the TX ring per wakeup (its default
/// `max_tx_budget`): a `sendto` on a ring holding more sends this many and returns `EAGAIN`.
/// A worker releasing many held replies submits them in chunks of this size, each followed by
/// its wakeup, so that all of them leave in the same turn, each chunk right after its frames
/// were brought into the cache.
pub const TX_CHUNK: u32 = 32;

impl fmt::Debug for XskQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XskQueue")
            .field("socket", &self.socket)
            .field("free", &self.free.len())
            .field("in_fill", &self.in_fill)
            .field("in_tx", &self.in_tx)
            .finish()
    }
}

impl XskQueue {
    /// Takes over `socket`; every frame starts free. Nothing is given to the fill ring yet.
    pub fn new(socket: XskSocket) -> Self {
        let frame_size = u64::from(socket.config.frame_size);
        let free = (0..u64::from(socket.config.frames))
            .map(|i| i * frame_size)
            .collect();
        XskQueue {
            lent: vec![false; socket.config.frames as usize],
            socket,
            free,
            in_fill: 0,
            in_tx: 0,
        }
    }

    /// The socket.
    pub fn socket(&self) -> &XskSocket {
        &self.socket
    }

    /// The socket's configuration.
    pub fn config(&self) -> &XskConfig {
        &self.socket.config
    }

    /// Frames on the free list.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// Frames handed to the TX ring and not yet reclaimed.
    pub fn in_tx(&self) -> u32 {
        self.in_tx
    }

    /// Takes a free frame.
    pub fn alloc(&mut self) -> Option<u64> {
        self.free.pop()
    }

    /// Puts the frame holding UMEM address `addr` back on the free list.
    pub fn recycle(&mut self, addr: u64) {
        self.free.push(self.socket.umem.frame_base(addr));
    }

    /// Moves transmitted frames from the completion ring back to the free list; returns how
    /// many.
    pub fn reclaim(&mut self) -> u32 {
        let (consumer, ready) = self.socket.completion.ready();
        if ready == 0 {
            return 0;
        }
        for i in 0..ready {
            let addr = self.socket.completion.read(consumer.wrapping_add(i));
            self.set_lent(addr, false);
            self.free.push(self.socket.umem.frame_base(addr));
        }
        self.socket.completion.release(consumer.wrapping_add(ready));
        self.in_tx = self.in_tx.saturating_sub(ready);
        ready
    }

    /// Gives free frames to the kernel through the fill ring, keeping `keep` back.
    pub fn refill(&mut self, keep: usize) {
        let available = self.free.len().saturating_sub(keep);
        let (producer, space) = self.socket.fill.free_entries();
        let count = (space as usize).min(available) as u32;
        if count == 0 {
            return;
        }
        for i in 0..count {
            // `count <= available <= free.len()`, so the list does not run dry.
            let Some(addr) = self.free.pop() else { break };
            self.set_lent(addr, true);
            self.socket.fill.write(producer.wrapping_add(i), addr);
        }
        self.socket.fill.submit(producer.wrapping_add(count));
        self.in_fill += count;
    }

    /// Received frames ready on the RX ring, at most `max`: (first index, count).
    pub fn rx_peek(&self, max: u32) -> (u32, u32) {
        let (consumer, ready) = self.socket.rx.ready();
        (consumer, ready.min(max))
    }

    /// The RX descriptor at `index` (from [`Self::rx_peek`]); its frame is the caller's from
    /// now on. `None` when `index` is not a received, unreleased descriptor.
    pub fn rx_desc(&mut self, index: u32) -> Option<libc::xdp_desc> {
        let (consumer, ready) = self.socket.rx.ready();
        if index.wrapping_sub(consumer) >= ready {
            return None;
        }
        let desc = self.socket.rx.read(index);
        self.set_lent(desc.addr, false);
        Some(desc)
    }

    /// Hands `count` RX descriptors from `first` back to the kernel. Their frames must have
    /// been [`Self::recycle`]d (or kept, to be recycled later).
    pub fn rx_release(&mut self, first: u32, count: u32) {
        self.socket.rx.release(first.wrapping_add(count));
        // Saturating: a kernel that returned a frame twice must not crash the caller.
        self.in_fill = self.in_fill.saturating_sub(count);
    }

    /// Free TX ring entries: (first index, count).
    pub fn tx_space(&self) -> (u32, u32) {
        self.socket.tx.free_entries()
    }

    /// Writes the TX descriptor at `index` (from [`Self::tx_space`]): `len` bytes of the frame
    /// at `addr`. Nothing is sent before [`Self::tx_submit`]; the frame is the kernel's from
    /// now on, until [`Self::reclaim`] takes it back.
    pub fn tx_write(&mut self, index: u32, addr: u64, len: u32) {
        self.set_lent(addr, true);
        self.socket.tx.write(
            index,
            libc::xdp_desc {
                addr,
                len,
                options: 0,
            },
        );
    }

    /// Asks the CPU to bring the frame at UMEM address `addr`, `len` bytes (at most
    /// [`TX_PREFETCH_LINES`] cache lines of it), into its caches before its TX descriptor is
    /// submitted: a reply held for the journal was written a sync or more ago, and in copy mode
    /// the kernel copies it out on this core, where it would miss line after line. A hint
    /// only; an address outside the UMEM prefetches nothing.
    pub fn prefetch_tx(&self, addr: u64, len: u32) {
        let frame = self.socket.umem.frame(addr, len as usize);
        for line in frame.chunks(64).take(TX_PREFETCH_LINES) {
            os::prefetch(line.as_ptr());
        }
    }

    /// Publishes `count` TX descriptors written from `first` and wakes the kernel when it asks
    /// (or always, without `need_wakeup`).
    pub fn tx_submit(&mut self, first: u32, count: u32) {
        if count == 0 {
            return;
        }
        self.socket.tx.submit(first.wrapping_add(count));
        self.in_tx += count;
        if !self.socket.config.need_wakeup || self.socket.tx.needs_wakeup() {
            self.socket.wake_tx();
        }
    }

    /// Publishes `count` TX descriptors written from `first` without waking the kernel: a
    /// later [`Self::kick_tx`] sends them, so that several batches share one system call.
    pub fn tx_publish(&mut self, first: u32, count: u32) {
        if count == 0 {
            return;
        }
        self.socket.tx.submit(first.wrapping_add(count));
        self.in_tx += count;
    }

    /// Kicks the kernel again when descriptors are still waiting on the TX ring (a wakeup that
    /// found it busy).
    pub fn kick_tx(&self) {
        if self.in_tx > 0
            && self.socket.tx.has_pending()
            && (!self.socket.config.need_wakeup || self.socket.tx.needs_wakeup())
        {
            self.socket.wake_tx();
        }
    }

    /// Asks the CPU to bring the first bytes of the received frame at RX `index` (from
    /// [`Self::rx_peek`]) into its caches, so that reading it later does not stall: the kernel
    /// copied it, often on another core. A hint only; an index that is not a received,
    /// unreleased descriptor prefetches nothing.
    pub fn prefetch_rx(&self, index: u32) {
        let (consumer, ready) = self.socket.rx.ready();
        if index.wrapping_sub(consumer) >= ready {
            return;
        }
        let desc = self.socket.rx.read(index);
        let frame = self.socket.umem.frame(desc.addr, desc.len as usize);
        for line in frame.chunks(64).take(PREFETCH_LINES) {
            os::prefetch(line.as_ptr());
        }
    }

    /// Asks the CPU for the first [`REPLY_PREFETCH_LINES`] cache lines of the free frame at
    /// `addr`, which a reply is about to be written into, ready to be written: the frame was
    /// last touched by the kernel (a received request, or a reply it copied out), and each
    /// line's first store would otherwise wait for it. A hint only.
    pub fn prefetch_reply(&self, addr: u64) {
        let frame = self.socket.umem.frame(addr, REPLY_PREFETCH_LINES * 64);
        for line in frame.chunks(64) {
            os::prefetch_write(line.as_ptr());
        }
    }

    /// Lets the kernel process the fill ring when it asks (`need_wakeup`).
    pub fn kick_rx(&self) {
        if self.socket.config.need_wakeup && self.socket.fill.needs_wakeup() {
            self.socket.wake_rx();
        }
    }

    /// Sleeps in `poll(2)` until a frame arrives or `timeout_ms` pass.
    pub fn wait(&self, timeout_ms: i32) {
        self.socket.wait(timeout_ms);
    }

    /// Sleeps in `ppoll(2)` until a frame arrives or `timeout` passes (finer than
    /// [`Self::wait`]'s milliseconds); false on timeout.
    pub fn wait_for(&self, timeout: std::time::Duration) -> bool {
        os::wait(self.socket.as_fd(), Readiness::Readable, timeout).unwrap_or(false)
    }

    /// The received or free frame at UMEM address `addr`, `len` bytes (clamped to the frame);
    /// empty while the kernel holds the frame.
    pub fn frame(&self, addr: u64, len: usize) -> &[u8] {
        if self.is_lent(addr) {
            return &[];
        }
        self.socket.umem.frame(addr, len)
    }

    /// The whole frame at UMEM address `addr`, to write into (taken with [`Self::alloc`], or
    /// received and not yet recycled or submitted); empty while the kernel holds the frame.
    /// `&mut self` makes the slice the only reference into the UMEM while it lives.
    pub fn frame_mut(&mut self, addr: u64) -> &mut [u8] {
        if self.is_lent(addr) {
            return &mut [];
        }
        self.socket.umem.frame_mut(addr)
    }

    /// A received frame (`read`, `read_len` bytes) to read and another frame (`write`, whole)
    /// to write its reply into, at once; `None` when both addresses lie in the same frame or
    /// the kernel holds either.
    pub fn frame_pair(
        &mut self,
        read: u64,
        read_len: usize,
        write: u64,
    ) -> Option<(&[u8], &mut [u8])> {
        if self.is_lent(read) || self.is_lent(write) {
            return None;
        }
        self.socket.umem.frame_pair(read, read_len, write)
    }

    /// [`Self::frame_pair`] for a group at once: for each `(read, read_len, write)` of
    /// `pairs`, in order, the received frame and the whole frame its reply is written into;
    /// `None` when a frame to write lies in the frame of any read or of another write, or the
    /// kernel holds any of them.
    pub fn frame_pairs<'a>(
        &'a mut self,
        pairs: &'a [(u64, usize, u64)],
    ) -> Option<impl Iterator<Item = (&'a [u8], &'a mut [u8])> + 'a> {
        if pairs
            .iter()
            .any(|&(read, _, write)| self.is_lent(read) || self.is_lent(write))
        {
            return None;
        }
        self.socket.umem.frame_pairs(pairs)
    }

    fn frame_index(&self, addr: u64) -> usize {
        (self.socket.umem.frame_base(addr) / u64::from(self.socket.config.frame_size)) as usize
    }

    /// Whether the kernel holds the frame at `addr`; addresses past the UMEM count as held.
    fn is_lent(&self, addr: u64) -> bool {
        self.lent
            .get(self.frame_index(addr))
            .copied()
            .unwrap_or(true)
    }

    fn set_lent(&mut self, addr: u64, lent: bool) {
        let index = self.frame_index(addr);
        if let Some(slot) = self.lent.get_mut(index) {
            *slot = lent;
        }
    }

    /// Where every frame is. Meaningful when no traffic is in flight: then a complete audit
    /// ([`FrameAudit::is_complete`]) proves that no frame has leaked or been doubled.
    pub fn audit(&self) -> FrameAudit {
        let socket = &self.socket;
        let total = socket.config.frames;
        let mut seen = vec![0u8; total as usize];
        let mut mark = |addr: u64| {
            let index =
                (socket.umem.frame_base(addr) / u64::from(socket.config.frame_size)) as usize;
            if let Some(count) = seen.get_mut(index) {
                *count = count.saturating_add(1);
            }
        };
        let fill: Vec<u64> = socket.fill.pending().collect();
        let completion: Vec<u64> = socket.completion.pending().collect();
        let rx: Vec<u64> = socket.rx.pending().map(|desc| desc.addr).collect();
        let tx: Vec<u64> = socket.tx.pending().map(|desc| desc.addr).collect();
        for addr in self
            .free
            .iter()
            .chain(&fill)
            .chain(&completion)
            .chain(&rx)
            .chain(&tx)
        {
            mark(*addr);
        }
        let count = |items: usize| items as u32;
        let visible = count(self.free.len() + fill.len() + completion.len() + rx.len() + tx.len());
        let owed = self.free.len() as u32 + self.in_fill + self.in_tx;
        FrameAudit {
            total,
            free: count(self.free.len()),
            fill_ring: count(fill.len()),
            rx_ring: count(rx.len()),
            tx_ring: count(tx.len()),
            completion_ring: count(completion.len()),
            in_kernel: owed.saturating_sub(visible),
            duplicates: seen.iter().filter(|count| **count > 1).count() as u32,
        }
    }
}
