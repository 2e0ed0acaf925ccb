//! AF_XDP sockets: UMEM, the four rings, binding, statistics and the frame accounting.
//!
//! [`XskSocket`] is one socket bound to one receive queue of an interface, with its own UMEM
//! and fill, completion, RX and TX rings. [`XskQueue`] adds the bookkeeping every user of a
//! socket needs: every UMEM frame is in exactly one place (the free list, the fill ring or the
//! kernel on its way to the RX ring, the RX ring, the TX ring or the kernel on its way to the
//! completion ring, the completion ring), and [`XskQueue::audit`] proves it when idle. What is
//! done with the frames (a server's replies, a load generator's requests) is the caller's.
//!
//! [`register`] puts a socket into the XDP program's XskMap ([`crate::steer`]);
//! [`InterfaceInfo`], [`rx_queue_count`] and [`pin_to_core`] are the interface and thread
//! helpers around it.
//!
//! Copy mode (`XDP_COPY`) works on every driver, veth included; [`BindMode::Auto`] tries
//! zero-copy first.

use std::{
    ffi::{CStr, CString},
    fmt, io,
    mem::{size_of, zeroed},
    net::Ipv6Addr,
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
    ptr,
    sync::atomic::{AtomicU32, Ordering},
};

use tracing::{debug, info};

use crate::steer::{Steering, SteeringError};

/// How a socket is bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BindMode {
    /// `XDP_COPY`: the kernel copies frames in and out of the UMEM; works on every driver.
    Copy,
    /// `XDP_ZEROCOPY`: the NIC uses the UMEM directly; needs driver support.
    ZeroCopy,
    /// Zero-copy when the driver supports it, else copy.
    #[default]
    Auto,
}

impl fmt::Display for BindMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BindMode::Copy => "copy",
            BindMode::ZeroCopy => "zero-copy",
            BindMode::Auto => "auto",
        })
    }
}

/// Sizes and switches of one AF_XDP socket.
#[derive(Clone, Copy, Debug)]
pub struct XskConfig {
    /// UMEM frames (each holds one packet).
    pub frames: u32,
    /// Bytes per frame: a power of two from 2048 to the page size.
    pub frame_size: u32,
    /// Entries of each ring (fill, completion, RX, TX): a power of two.
    pub ring_size: u32,
    /// Most frames received or sent per turn of the loop.
    pub batch: u32,
    /// How to bind.
    pub mode: BindMode,
    /// Ask the kernel to say when it needs a syscall (`XDP_USE_NEED_WAKEUP`), rather than
    /// making one every batch.
    pub need_wakeup: bool,
    /// Check the UDP checksum of requests in software.
    pub verify_checksum: bool,
    /// How long an idle worker sleeps in `poll(2)` before looking at `stop` again.
    pub idle_timeout_ms: u16,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            frames: 4096,
            frame_size: 2048,
            ring_size: 2048,
            batch: 64,
            mode: BindMode::Auto,
            need_wakeup: true,
            verify_checksum: true,
            idle_timeout_ms: 100,
        }
    }
}

/// Errors of the AF_XDP datapath's setup.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    /// The interface does not exist (in this network namespace).
    #[error("no interface {0}")]
    NoInterface(String),
    /// The interface has no link-local address to answer clients from.
    #[error("interface {0} has no IPv6 link-local address")]
    NoLinkLocal(String),
    /// The sizes in [`XskConfig`] are not usable.
    #[error("bad AF_XDP configuration: {0}")]
    Config(&'static str),
    /// A system call failed.
    #[error("{what} on {interface} queue {queue}")]
    Os {
        /// Which call.
        what: &'static str,
        /// The interface.
        interface: String,
        /// The queue.
        queue: u32,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Reading the interface's addresses or queues failed.
    #[error("{what} for {interface}")]
    Interface {
        /// Which query.
        what: &'static str,
        /// The interface.
        interface: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Putting a socket into the XskMap failed.
    #[error("registering the AF_XDP socket")]
    Steering(#[from] SteeringError),
    /// Pinning a worker to its core failed.
    #[error("pinning the worker of queue {queue} to core {core}")]
    Pin {
        /// The queue.
        queue: u32,
        /// The core.
        core: usize,
        /// Why.
        #[source]
        source: io::Error,
    },
}

// ---------------------------------------------------------------------------------------------
// Interfaces.

/// What the datapath needs to know about a served interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Its name, as in the configuration.
    pub name: String,
    /// Its index.
    pub index: u32,
    /// Its MAC address, the source of replies.
    pub mac: [u8; 6],
    /// Its link-local address, the source of replies to clients on the link.
    pub link_local: Ipv6Addr,
    /// The source of replies to relay agents: configured, else the interface's first global
    /// address.
    pub global: Option<Ipv6Addr>,
}

impl InterfaceInfo {
    /// Reads `name`'s index, MAC and addresses (in the calling thread's network namespace).
    ///
    /// `global` overrides the address that replies to relay agents come from.
    pub fn query(name: &str, global: Option<Ipv6Addr>) -> Result<Self, XskError> {
        let interface_error = |what, source| XskError::Interface {
            what,
            interface: name.to_owned(),
            source,
        };
        let index = if_index(name).map_err(|_| XskError::NoInterface(name.to_owned()))?;
        let addresses =
            interface_addresses(name).map_err(|error| interface_error("getifaddrs", error))?;
        let mac = addresses
            .mac
            .ok_or_else(|| XskError::NoInterface(name.to_owned()))?;
        let link_local = addresses
            .ipv6
            .iter()
            .copied()
            .find(Ipv6Addr::is_unicast_link_local)
            .ok_or_else(|| XskError::NoLinkLocal(name.to_owned()))?;
        let global = global.or_else(|| {
            addresses.ipv6.iter().copied().find(|address| {
                !address.is_unicast_link_local()
                    && !address.is_loopback()
                    && !address.is_multicast()
                    && !address.is_unspecified()
            })
        });
        Ok(InterfaceInfo {
            name: name.to_owned(),
            index,
            mac,
            link_local,
            global,
        })
    }
}

struct Addresses {
    mac: Option<[u8; 6]>,
    ipv6: Vec<Ipv6Addr>,
}

fn interface_addresses(name: &str) -> io::Result<Addresses> {
    let mut list: *mut libc::ifaddrs = ptr::null_mut();
    // Safety: getifaddrs writes a list head into `list`, freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut addresses = Addresses {
        mac: None,
        ipv6: Vec::new(),
    };
    let mut entry = list;
    while !entry.is_null() {
        // Safety: `entry` is a node of the list getifaddrs returned, alive until freeifaddrs.
        let node = unsafe { &*entry };
        entry = node.ifa_next;
        if node.ifa_name.is_null() || node.ifa_addr.is_null() {
            continue;
        }
        // Safety: ifa_name is a NUL-terminated string owned by the list.
        if unsafe { CStr::from_ptr(node.ifa_name) }.to_bytes() != name.as_bytes() {
            continue;
        }
        // Safety: ifa_addr points to a sockaddr whose family says its real type.
        let family = i32::from(unsafe { (*node.ifa_addr).sa_family });
        if family == libc::AF_PACKET {
            // Safety: an AF_PACKET entry's address is a sockaddr_ll.
            let link = unsafe { &*node.ifa_addr.cast::<libc::sockaddr_ll>() };
            if link.sll_halen == 6 {
                let mut mac = [0; 6];
                mac.copy_from_slice(&link.sll_addr[..6]);
                addresses.mac = Some(mac);
            }
        } else if family == libc::AF_INET6 {
            // Safety: an AF_INET6 entry's address is a sockaddr_in6.
            let ipv6 = unsafe { &*node.ifa_addr.cast::<libc::sockaddr_in6>() };
            addresses.ipv6.push(Ipv6Addr::from(ipv6.sin6_addr.s6_addr));
        }
    }
    // Safety: `list` came from getifaddrs and no reference into it outlives this call.
    unsafe { libc::freeifaddrs(list) };
    Ok(addresses)
}

fn if_index(name: &str) -> io::Result<u32> {
    let name = CString::new(name).map_err(io::Error::other)?;
    // Safety: `name` is a valid NUL-terminated string for the duration of the call.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        index => Ok(index),
    }
}

/// The number of receive queues of `interface`: the ethtool channel count, else the `rx-N`
/// entries in sysfs, else 1.
pub fn rx_queue_count(interface: &str) -> u32 {
    if let Some(count) = ethtool_channels(interface) {
        return count;
    }
    let path = format!("/sys/class/net/{interface}/queues");
    match std::fs::read_dir(path) {
        Ok(entries) => {
            let count = entries
                .filter_map(Result::ok)
                .filter(|entry| entry.file_name().to_string_lossy().starts_with("rx-"))
                .count();
            u32::try_from(count).unwrap_or(1).max(1)
        }
        Err(_) => 1,
    }
}

/// ETHTOOL_GCHANNELS: the queues in use (combined plus RX-only), when the driver says.
fn ethtool_channels(interface: &str) -> Option<u32> {
    const ETHTOOL_GCHANNELS: u32 = 0x3c;
    #[repr(C)]
    #[derive(Default)]
    struct EthtoolChannels {
        cmd: u32,
        max_rx: u32,
        max_tx: u32,
        max_other: u32,
        max_combined: u32,
        rx_count: u32,
        tx_count: u32,
        other_count: u32,
        combined_count: u32,
    }
    let mut channels = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..EthtoolChannels::default()
    };
    // Safety: all-zero is a valid `ifreq`.
    let mut request: libc::ifreq = unsafe { zeroed() };
    let name = interface.as_bytes();
    if name.len() >= request.ifr_name.len() {
        return None;
    }
    for (to, from) in request.ifr_name.iter_mut().zip(name) {
        *to = *from as libc::c_char;
    }
    request.ifr_ifru.ifru_data = ptr::from_mut(&mut channels).cast();
    // Safety: plain socket(2); the result is checked before it is wrapped.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return None;
    }
    // Safety: `raw` is a fresh descriptor owned by nothing else.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    // Safety: SIOCETHTOOL reads `request` and writes `channels`, both live for the call.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCETHTOOL, &mut request) };
    if rc < 0 {
        return None;
    }
    let count = channels.combined_count + channels.rx_count;
    (count > 0).then_some(count)
}

/// Pins the calling thread to `core`.
pub fn pin_to_core(core: usize) -> io::Result<()> {
    // Safety: all-zero is an empty CPU set.
    let mut set: libc::cpu_set_t = unsafe { zeroed() };
    if core >= 8 * size_of::<libc::cpu_set_t>() {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // Safety: `core` is below the set's capacity, checked above.
    unsafe { libc::CPU_SET(core, &mut set) };
    // Safety: `set` is a valid CPU set of the stated size; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The socket: UMEM and rings.

/// One mapped ring, the kernel at the other end. `T` is `u64` (fill, completion: frame
/// addresses) or `libc::xdp_desc` (RX, TX).
struct Ring<T> {
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
    fn map(
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

    fn needs_wakeup(&self) -> bool {
        // Safety: as for `producer`.
        let flags = unsafe { &*self.flags };
        flags.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    fn read(&self, index: u32) -> T {
        // Safety: `index & mask` is within the ring's `size` descriptors.
        unsafe { self.descs.add((index & self.mask) as usize).read() }
    }

    fn write(&self, index: u32, value: T) {
        // Safety: as for `read`; entries between our producer index and the kernel's consumer
        // index belong to us.
        unsafe { self.descs.add((index & self.mask) as usize).write(value) }
    }

    fn size(&self) -> u32 {
        self.mask + 1
    }

    // We produce (fill, TX): entries free for us, and publishing them.

    fn free_entries(&self) -> (u32, u32) {
        let producer = self.producer().load(Ordering::Relaxed);
        let consumer = self.consumer().load(Ordering::Acquire);
        (producer, self.size() - producer.wrapping_sub(consumer))
    }

    fn submit(&self, producer: u32) {
        // Release: the descriptors written before are visible to the kernel with the index.
        self.producer().store(producer, Ordering::Release);
    }

    // The kernel produces (RX, completion): entries ready for us, and handing them back.

    fn ready(&self) -> (u32, u32) {
        let consumer = self.consumer().load(Ordering::Relaxed);
        let producer = self.producer().load(Ordering::Acquire);
        (consumer, producer.wrapping_sub(consumer))
    }

    fn release(&self, consumer: u32) {
        // Release: our reads of the descriptors are done before the kernel may reuse them.
        self.consumer().store(consumer, Ordering::Release);
    }

    /// Whether the other side has entries it has not consumed yet.
    fn has_pending(&self) -> bool {
        self.producer().load(Ordering::Relaxed) != self.consumer().load(Ordering::Acquire)
    }

    /// The entries between consumer and producer, for audits.
    fn pending(&self) -> impl Iterator<Item = T> + '_ {
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

/// An AF_XDP socket bound to one receive queue, with its own UMEM and four rings.
pub struct XskSocket {
    // Field order is drop order: the rings are unmapped, then the socket is closed (which
    // unregisters the UMEM), then the UMEM is unmapped.
    fill: Ring<u64>,
    completion: Ring<u64>,
    rx: Ring<libc::xdp_desc>,
    tx: Ring<libc::xdp_desc>,
    fd: OwnedFd,
    umem: Umem,
    interface: String,
    queue: u32,
    mode: BindMode,
    config: XskConfig,
}

// Safety: the socket owns its mappings outright; only the kernel shares them, through the
// atomic ring indices. Moving the owner to another thread is fine; it is not `Sync`.
unsafe impl Send for XskSocket {}

impl fmt::Debug for XskSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XskSocket")
            .field("interface", &self.interface)
            .field("queue", &self.queue)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl XskSocket {
    /// Creates a socket with its UMEM and binds it to `queue` of `interface`.
    ///
    /// With [`BindMode::Auto`] zero-copy is tried first and copy mode used when the driver
    /// refuses. The socket receives nothing until it is in the XskMap ([`register`]).
    pub fn bind(
        interface: &InterfaceInfo,
        queue: u32,
        config: &XskConfig,
    ) -> Result<Self, XskError> {
        check_config(config)?;
        match config.mode {
            BindMode::Copy | BindMode::ZeroCopy => {
                Self::open(interface, queue, config, config.mode)
            }
            BindMode::Auto => match Self::open(interface, queue, config, BindMode::ZeroCopy) {
                Ok(socket) => Ok(socket),
                Err(error) => {
                    debug!(
                        interface = interface.name,
                        queue,
                        error = %crate::steer::error_chain(&error),
                        "zero-copy AF_XDP refused, using copy mode"
                    );
                    Self::open(interface, queue, config, BindMode::Copy)
                }
            },
        }
    }

    fn open(
        interface: &InterfaceInfo,
        queue: u32,
        config: &XskConfig,
        mode: BindMode,
    ) -> Result<Self, XskError> {
        let os = |what| {
            let source = io::Error::last_os_error();
            XskError::Os {
                what,
                interface: interface.name.clone(),
                queue,
                source,
            }
        };
        // Safety: plain socket(2); the result is checked before it is wrapped.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(os("socket(AF_XDP)"));
        }
        // Safety: `raw` is a fresh descriptor owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        let umem_len = config.frames as usize * config.frame_size as usize;
        // Safety: an anonymous private mapping with no address hint; checked below.
        let umem = unsafe {
            libc::mmap(
                ptr::null_mut(),
                umem_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if umem == libc::MAP_FAILED {
            return Err(os("mmap(UMEM)"));
        }
        // From here the UMEM is unmapped on every error path by this guard.
        let umem = Umem {
            ptr: umem.cast(),
            len: umem_len,
        };

        // Safety: all-zero is a valid `xdp_umem_reg`.
        let mut registration: libc::xdp_umem_reg = unsafe { zeroed() };
        registration.addr = umem.ptr as u64;
        registration.len = umem_len as u64;
        registration.chunk_size = config.frame_size;
        let raw = fd.as_raw_fd();
        set_option(raw, libc::XDP_UMEM_REG, &registration).map_err(|_| os("XDP_UMEM_REG"))?;
        let size = config.ring_size;
        set_option(raw, libc::XDP_UMEM_FILL_RING, &size).map_err(|_| os("XDP_UMEM_FILL_RING"))?;
        set_option(raw, libc::XDP_UMEM_COMPLETION_RING, &size)
            .map_err(|_| os("XDP_UMEM_COMPLETION_RING"))?;
        set_option(raw, libc::XDP_RX_RING, &size).map_err(|_| os("XDP_RX_RING"))?;
        set_option(raw, libc::XDP_TX_RING, &size).map_err(|_| os("XDP_TX_RING"))?;

        // Safety: all-zero is a valid `xdp_mmap_offsets`.
        let mut offsets: libc::xdp_mmap_offsets = unsafe { zeroed() };
        let mut len = size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // Safety: the buffer and its length describe `offsets`.
        let rc = unsafe {
            libc::getsockopt(
                raw,
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                ptr::from_mut(&mut offsets).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            return Err(os("XDP_MMAP_OFFSETS"));
        }
        let map_error = |what, source| XskError::Os {
            what,
            interface: interface.name.clone(),
            queue,
            source,
        };
        let fill = Ring::map(
            fd.as_fd(),
            &offsets.fr,
            size,
            libc::XDP_UMEM_PGOFF_FILL_RING,
        )
        .map_err(|error| map_error("mmap(fill ring)", error))?;
        let completion = Ring::map(
            fd.as_fd(),
            &offsets.cr,
            size,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
        )
        .map_err(|error| map_error("mmap(completion ring)", error))?;
        let rx = Ring::map(
            fd.as_fd(),
            &offsets.rx,
            size,
            libc::XDP_PGOFF_RX_RING as u64,
        )
        .map_err(|error| map_error("mmap(RX ring)", error))?;
        let tx = Ring::map(
            fd.as_fd(),
            &offsets.tx,
            size,
            libc::XDP_PGOFF_TX_RING as u64,
        )
        .map_err(|error| map_error("mmap(TX ring)", error))?;

        // Safety: all-zero is a valid `sockaddr_xdp`.
        let mut address: libc::sockaddr_xdp = unsafe { zeroed() };
        address.sxdp_family = libc::AF_XDP as u16;
        address.sxdp_flags = match mode {
            BindMode::ZeroCopy => libc::XDP_ZEROCOPY,
            BindMode::Copy | BindMode::Auto => libc::XDP_COPY,
        };
        if config.need_wakeup {
            address.sxdp_flags |= libc::XDP_USE_NEED_WAKEUP;
        }
        address.sxdp_ifindex = interface.index;
        address.sxdp_queue_id = queue;
        // Safety: `address` is a valid `sockaddr_xdp` and the length is its size.
        let rc = unsafe {
            libc::bind(
                raw,
                ptr::from_ref(&address).cast(),
                size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(os("bind(AF_XDP)"));
        }
        info!(interface = interface.name, queue, %mode, "AF_XDP socket bound");
        Ok(XskSocket {
            fill,
            completion,
            rx,
            tx,
            fd,
            umem,
            interface: interface.name.clone(),
            queue,
            mode,
            config: *config,
        })
    }

    /// The receive queue it is bound to.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// The mode it was bound in (never `Auto`).
    pub fn mode(&self) -> BindMode {
        self.mode
    }

    /// The kernel's counters for this socket.
    pub fn statistics(&self) -> io::Result<libc::xdp_statistics> {
        // Safety: all-zero is a valid `xdp_statistics`.
        let mut statistics: libc::xdp_statistics = unsafe { zeroed() };
        let mut len = size_of::<libc::xdp_statistics>() as libc::socklen_t;
        // Safety: the buffer and its length describe `statistics`.
        let rc = unsafe {
            libc::getsockopt(
                self.as_fd().as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
                ptr::from_mut(&mut statistics).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(statistics)
    }

    /// The frame at UMEM address `addr`, `len` bytes (clamped to the frame).
    fn frame(&self, addr: u64, len: usize) -> &[u8] {
        let (start, len) = self.frame_bounds(addr, len);
        // Safety: `frame_bounds` keeps the range inside the UMEM; the kernel is done with a
        // frame it put on the RX ring until we give it back.
        unsafe { std::slice::from_raw_parts(self.umem.ptr.add(start), len) }
    }

    /// The whole frame at UMEM address `addr`, to write a reply into.
    #[allow(clippy::mut_from_ref)]
    fn frame_mut(&self, addr: u64) -> &mut [u8] {
        let (start, len) = self.frame_bounds(addr, self.config.frame_size as usize);
        // Safety: as for `frame`; the frame is ours (taken from the free list) and no other
        // reference to it exists while the reply is written.
        unsafe { std::slice::from_raw_parts_mut(self.umem.ptr.add(start), len) }
    }

    fn frame_bounds(&self, addr: u64, len: usize) -> (usize, usize) {
        let frame_size = self.config.frame_size as usize;
        let start = (addr as usize).min(self.umem.len);
        let frame_end = (self.frame_base(addr) as usize + frame_size).min(self.umem.len);
        (start, len.min(frame_end.saturating_sub(start)))
    }

    fn frame_base(&self, addr: u64) -> u64 {
        addr & !u64::from(self.config.frame_size - 1)
    }

    fn wake_tx(&self) {
        // Safety: a zero-length sendto only kicks the kernel's transmit path.
        let rc = unsafe {
            libc::sendto(
                self.as_fd().as_raw_fd(),
                ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                ptr::null(),
                0,
            )
        };
        if rc < 0 {
            // EAGAIN/EBUSY/ENOBUFS: the kernel is busy; the descriptors stay queued and the
            // next batch kicks again.
            let error = io::Error::last_os_error();
            if !matches!(
                error.raw_os_error(),
                Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENETDOWN)
            ) {
                debug!(%error, "AF_XDP transmit wakeup");
            }
        }
    }

    fn wake_rx(&self) {
        // Safety: a zero-length recvfrom only lets the kernel process the fill ring.
        unsafe {
            libc::recvfrom(
                self.as_fd().as_raw_fd(),
                ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
    }

    fn wait(&self, timeout_ms: i32) {
        let mut poll = libc::pollfd {
            fd: self.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // Safety: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut poll, 1, timeout_ms) };
    }
}

impl AsFd for XskSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A UMEM mapping, unmapped on drop.
struct Umem {
    ptr: *mut u8,
    len: usize,
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

fn check_config(config: &XskConfig) -> Result<(), XskError> {
    if !config.frame_size.is_power_of_two() || config.frame_size < 2048 {
        return Err(XskError::Config(
            "frame size must be a power of two of at least 2048",
        ));
    }
    if !config.ring_size.is_power_of_two() {
        return Err(XskError::Config("ring size must be a power of two"));
    }
    if config.batch == 0 || config.batch > config.ring_size {
        return Err(XskError::Config(
            "batch must be between 1 and the ring size",
        ));
    }
    if config.frames < 2 * config.batch {
        return Err(XskError::Config("need at least two batches of frames"));
    }
    Ok(())
}

fn set_option<T>(fd: libc::c_int, option: libc::c_int, value: &T) -> io::Result<()> {
    // Safety: `value` points to a live `T` of the given size for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            option,
            ptr::from_ref(value).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Puts `socket` into the program's XskMap at its queue: from now on the XDP program
/// redirects that queue's DHCPv6 to it.
pub fn register(steering: &mut Steering, socket: &XskSocket) -> Result<(), SteeringError> {
    steering
        .xsk_map()?
        .set(socket.queue, socket.as_fd(), 0)
        .map_err(|source| SteeringError::Map {
            map: crate::XSK_MAP,
            source,
        })
}

// ---------------------------------------------------------------------------------------------
// The frame accounting.

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
pub struct XskQueue {
    socket: XskSocket,
    /// Frame addresses (frame-aligned) that are ours to use.
    free: Vec<u64>,
    /// Frames given to the kernel through the fill ring and not yet back on the RX ring.
    in_fill: u32,
    /// Frames given to the kernel through the TX ring and not yet back on the completion ring.
    in_tx: u32,
}

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
        self.free.push(self.socket.frame_base(addr));
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
            self.free.push(self.socket.frame_base(addr));
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

    /// The RX descriptor at `index` (from [`Self::rx_peek`]).
    pub fn rx_desc(&self, index: u32) -> libc::xdp_desc {
        self.socket.rx.read(index)
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
    /// at `addr`. Nothing is sent before [`Self::tx_submit`].
    pub fn tx_write(&self, index: u32, addr: u64, len: u32) {
        self.socket.tx.write(
            index,
            libc::xdp_desc {
                addr,
                len,
                options: 0,
            },
        );
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
        let mut poll = libc::pollfd {
            fd: self.socket.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout = libc::timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
        };
        // Safety: one valid pollfd and timespec for the duration of the call; a null signal
        // mask leaves the mask alone.
        unsafe { libc::ppoll(&mut poll, 1, &timeout, ptr::null()) > 0 }
    }

    /// The received or free frame at UMEM address `addr`, `len` bytes (clamped to the frame).
    pub fn frame(&self, addr: u64, len: usize) -> &[u8] {
        self.socket.frame(addr, len)
    }

    /// The whole frame at UMEM address `addr`, to write into.
    ///
    /// # Safety
    ///
    /// The frame must be the caller's (taken with [`Self::alloc`], or received and not yet
    /// recycled or released, and not yet submitted), and no other reference to it may exist
    /// while the returned one lives.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn frame_mut(&self, addr: u64) -> &mut [u8] {
        self.socket.frame_mut(addr)
    }

    /// Where every frame is. Meaningful when no traffic is in flight: then a complete audit
    /// ([`FrameAudit::is_complete`]) proves that no frame has leaked or been doubled.
    pub fn audit(&self) -> FrameAudit {
        let socket = &self.socket;
        let total = socket.config.frames;
        let mut seen = vec![0u8; total as usize];
        let mut mark = |addr: u64| {
            let index = (socket.frame_base(addr) / u64::from(socket.config.frame_size)) as usize;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_checked() {
        let good = XskConfig::default();
        assert!(check_config(&good).is_ok());
        for bad in [
            XskConfig {
                frame_size: 3000,
                ..good
            },
            XskConfig {
                frame_size: 1024,
                ..good
            },
            XskConfig {
                ring_size: 1000,
                ..good
            },
            XskConfig { batch: 0, ..good },
            XskConfig {
                frames: 64,
                batch: 64,
                ..good
            },
        ] {
            assert!(check_config(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cpu_out_of_range_is_refused() {
        assert!(pin_to_core(1 << 20).is_err());
    }

    #[test]
    fn loopback_has_addresses_but_no_link_local() {
        // `lo` exists in every namespace; it has ::1 but no fe80:: address.
        match InterfaceInfo::query("lo", None) {
            Err(XskError::NoLinkLocal(name)) => assert_eq!(name, "lo"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            InterfaceInfo::query("no-such-if0", None),
            Err(XskError::NoInterface(_))
        ));
    }
}
