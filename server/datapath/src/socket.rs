//! AF_XDP sockets: configuration, creation and binding, statistics, and registration in the
//! XDP program's XskMap.
//!
//! [`XskSocket`] is one socket bound to one receive queue of an interface, with its own UMEM
//! (`umem`) and fill, completion, RX and TX rings (`ring`); [`register`] puts
//! it into the XskMap ([`crate::steer`]). Copy mode (`XDP_COPY`) works on every driver, veth
//! included; [`BindMode::Auto`] tries zero-copy first.

use std::{
    fmt, io,
    mem::{size_of, zeroed},
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
    ptr,
};

use tracing::{debug, info};

use crate::iface::InterfaceInfo;
use crate::ring::Ring;
use crate::steer::{Steering, SteeringError};
use crate::umem::Umem;

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
    /// Bytes per frame: a power of two from 2048 to the page size. The XDP program steers
    /// frames of up to `xdhcp6_common::MAX_STEERED_FRAME_LEN` (2048) bytes.
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
    /// Microseconds a worker keeps polling its rings after the last turn that received a
    /// frame before it sleeps in `poll(2)` (0: it sleeps as soon as a turn finds nothing).
    /// While requests come closer together than this it never sleeps, so none waits for
    /// its core to wake (an idle virtual CPU halts, a physical one enters a C-state); it
    /// spends its core doing so.
    pub busy_poll_us: u32,
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
            busy_poll_us: 0,
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

/// An AF_XDP socket bound to one receive queue, with its own UMEM and four rings.
pub struct XskSocket {
    // Field order is drop order: the rings are unmapped, then the socket is closed (which
    // unregisters the UMEM), then the UMEM is unmapped.
    pub(crate) fill: Ring<u64>,
    pub(crate) completion: Ring<u64>,
    pub(crate) rx: Ring<libc::xdp_desc>,
    pub(crate) tx: Ring<libc::xdp_desc>,
    fd: OwnedFd,
    pub(crate) umem: Umem,
    interface: String,
    queue: u32,
    mode: BindMode,
    pub(crate) config: XskConfig,
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
                        error = %crate::os::error_chain(&error),
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

        // From here the UMEM is unmapped on every error path when it drops.
        let umem = Umem::map(config).map_err(|_| os("mmap(UMEM)"))?;

        // Safety: all-zero is a valid `xdp_umem_reg`.
        let mut registration: libc::xdp_umem_reg = unsafe { zeroed() };
        registration.addr = umem.address();
        registration.len = umem.len() as u64;
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

    pub(crate) fn wake_tx(&self) {
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

    pub(crate) fn wake_rx(&self) {
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

    pub(crate) fn wait(&self, timeout_ms: i32) {
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
            map: xdhcp6_common::XSK_MAP,
            source,
        })
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_frames_hold_every_steered_frame() {
        // The XDP program steers frames up to MAX_STEERED_FRAME_LEN and passes longer ones to
        // the kernel; a frame it steers must fit the UMEM frame, or the kernel drops it.
        let config = XskConfig::default();
        assert!(config.frame_size as usize >= xdhcp6_common::MAX_STEERED_FRAME_LEN);
    }

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
}
