//! The kernel UDP datapath: `[::]:547` with `recvmmsg` / `sendmmsg` batches.
//!
//! This is the portable datapath (`--datapath udp`) and the slow path for what the XDP program
//! passes to the kernel. One socket serves every worker: the workers all block in `recvmmsg` on
//! it and the kernel hands each datagram to exactly one of them. One socket per worker with
//! `SO_REUSEPORT` would spread unicast well, but the kernel copies a multicast datagram to
//! *every* socket of the group that joined it, and each worker would then answer the same
//! Solicit. Sharing the socket keeps answers single; the lease table is sharded, so the
//! workers do not serialize behind one another after the receive.
//!
//! Per datagram, `IPV6_PKTINFO` tells the arriving interface (mapped to a configured link by
//! name, cached) and the destination address; the reply leaves through the same interface,
//! from that destination address when it was unicast, else from a source the kernel picks
//! for the client's (link-local) address.

use std::collections::HashMap;
use std::ffi::CStr;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::proto::MessageType;
use xdhcp6_engine::{Context, Destination, Engine, Outcome};

use crate::events::Events;
use crate::stats::WorkerStats;

/// All_DHCP_Relay_Agents_and_Servers (RFC 9915 §7.1), link scope.
pub const ALL_RELAY_AGENTS_AND_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
/// All_DHCP_Servers (RFC 9915 §7.1), site scope.
pub const ALL_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff05, 0, 0, 0, 0, 0, 1, 3);

/// Datagrams received or sent per system call.
pub const BATCH: usize = 64;

/// Bytes per receive slot. Larger datagrams (relay chains with big options) are cut off by the
/// kernel, flagged `MSG_TRUNC` and counted as bad frames.
const RECV_SIZE: usize = 4096;

/// Bytes per reply slot; the engine drops (`reply_too_large`) what does not fit.
const REPLY_SIZE: usize = 4096;

/// Control buffer per message: room for one `in6_pktinfo` cmsg, 8-byte aligned.
const CONTROL_WORDS: usize = 8;

/// How long a worker blocks in `recvmmsg` before it looks at the stop flag again.
const RECEIVE_TIMEOUT: Duration = Duration::from_millis(200);

/// UDP ports of the protocol (RFC 9915 §7.2); tests move them off the privileged ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    /// The port the server listens on (547).
    pub server: u16,
    /// The port clients listen on (546).
    pub client: u16,
    /// The port relay agents listen on (547).
    pub relay: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Self {
            server: 547,
            client: 546,
            relay: 547,
        }
    }
}

/// The server's UDP socket, bound and joined to the DHCPv6 groups.
#[derive(Debug)]
pub struct ServerSocket {
    fd: OwnedFd,
    port: u16,
    joined: Vec<(String, u32)>,
}

impl ServerSocket {
    /// Binds `[::]:port` (port 0 picks one) with `IPV6_V6ONLY`, `SO_REUSEADDR`,
    /// `IPV6_RECVPKTINFO` and a receive timeout.
    pub fn bind(port: u16) -> io::Result<Self> {
        // Safety: plain system call with constant arguments; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_INET6,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::IPPROTO_UDP,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // Safety: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        set_option(raw, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, &1i32)?;
        set_option(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, &1i32)?;
        set_option(raw, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, &1i32)?;
        // Large bursts (a CMTS reboot) should queue in the kernel rather than be lost.
        set_option(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, &(4i32 << 20))?;
        let timeout = libc::timeval {
            tv_sec: RECEIVE_TIMEOUT.as_secs() as libc::time_t,
            tv_usec: RECEIVE_TIMEOUT.subsec_micros() as libc::suseconds_t,
        };
        set_option(raw, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &timeout)?;
        let address = sockaddr(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0));
        // Safety: `address` is a valid sockaddr_in6 and its exact size is passed.
        let bound = unsafe {
            libc::bind(
                raw,
                (&raw const address).cast(),
                size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        };
        if bound < 0 {
            return Err(io::Error::last_os_error());
        }
        let port = local_port(raw)?;
        Ok(Self {
            fd,
            port,
            joined: Vec::new(),
        })
    }

    /// Joins ff02::1:2 and ff05::1:3 on `interface` (which also programs the NIC's multicast
    /// filter and sends the MLD reports).
    pub fn join(&mut self, interface: &str) -> io::Result<u32> {
        let index = interface_index(interface)?;
        for group in [ALL_RELAY_AGENTS_AND_SERVERS, ALL_SERVERS] {
            let request = libc::ipv6_mreq {
                ipv6mr_multiaddr: libc::in6_addr {
                    s6_addr: group.octets(),
                },
                ipv6mr_interface: index,
            };
            set_option(
                self.fd.as_raw_fd(),
                libc::IPPROTO_IPV6,
                libc::IPV6_ADD_MEMBERSHIP,
                &request,
            )
            .map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("joining {group} on {interface}: {error}"),
                )
            })?;
        }
        self.joined.push((interface.to_owned(), index));
        Ok(index)
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The interfaces joined so far, with their indexes.
    pub fn joined(&self) -> &[(String, u32)] {
        &self.joined
    }
}

impl AsRawFd for ServerSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The running UDP workers.
#[derive(Debug)]
pub struct UdpDatapath {
    workers: Vec<JoinHandle<()>>,
}

impl UdpDatapath {
    /// Starts one worker thread per entry of `events` on the shared `socket`, pinned to
    /// `cores[i]` when given; they run until `stop` is set.
    pub fn start<E: Events>(
        engine: Arc<Engine>,
        socket: Arc<ServerSocket>,
        ports: Ports,
        events: Vec<E>,
        stats: &[Arc<WorkerStats>],
        cores: &[usize],
        stop: Arc<AtomicBool>,
    ) -> io::Result<Self> {
        let mut workers = Vec::with_capacity(events.len());
        for (index, events) in events.into_iter().enumerate() {
            let worker = Worker {
                engine: Arc::clone(&engine),
                socket: Arc::clone(&socket),
                ports,
                events,
                stats: stats.get(index).cloned().unwrap_or_default(),
                stop: Arc::clone(&stop),
                links: LinkCache::default(),
                core: cores.get(index).copied(),
            };
            let spawned = thread::Builder::new()
                .name(format!("udp-worker-{index}"))
                .spawn(move || worker.run());
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(error) => {
                    // Do not leave the ones already started running.
                    stop.store(true, Ordering::Relaxed);
                    for handle in workers {
                        let _ = handle.join();
                    }
                    return Err(error);
                }
            }
        }
        Ok(Self { workers })
    }

    /// Waits for every worker to notice the stop flag and end.
    pub fn join(self) {
        for handle in self.workers {
            if handle.join().is_err() {
                tracing::error!("a UDP worker panicked");
            }
        }
    }
}

/// Interface index → configured link, resolved by name on first sight.
///
/// Indexes are never reused while the interface exists; a renamed interface keeps its old
/// mapping until the daemon restarts.
#[derive(Debug, Default)]
struct LinkCache {
    links: HashMap<u32, Option<LinkId>>,
}

impl LinkCache {
    fn lookup(&mut self, engine: &Engine, index: u32) -> Option<LinkId> {
        if index == 0 {
            return None;
        }
        *self.links.entry(index).or_insert_with(|| {
            interface_name(index).and_then(|name| engine.link_for_interface(&name, None))
        })
    }
}

struct Worker<E> {
    engine: Arc<Engine>,
    socket: Arc<ServerSocket>,
    ports: Ports,
    events: E,
    stats: Arc<WorkerStats>,
    stop: Arc<AtomicBool>,
    links: LinkCache,
    core: Option<usize>,
}

impl<E: Events> Worker<E> {
    fn run(mut self) {
        if let Some(core) = self.core
            && let Err(error) = pin_to_core(core)
        {
            tracing::warn!(core, %error, "cannot pin the UDP worker; it runs unpinned");
        }
        let mut batch = Batch::new();
        let fd = self.socket.as_raw_fd();
        let mut last_error: Option<io::ErrorKind> = None;
        while !self.stop.load(Ordering::Relaxed) {
            let received = match batch.receive(fd) {
                Ok(received) => received,
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(error) => {
                    // Log a failure once per kind, not once per batch.
                    if last_error != Some(error.kind()) {
                        tracing::warn!(%error, "recvmmsg failed");
                        last_error = Some(error.kind());
                    }
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            let replies = self.answer(&mut batch, received);
            if replies == 0 {
                continue;
            }
            if self.events.settle() {
                batch.send(fd, replies, &self.stats);
            } else {
                // The journal failed: a reply would promise a lease that a restart forgets.
                for _ in 0..replies {
                    self.stats.count_send_failure();
                }
            }
        }
    }

    /// Runs the engine over `received` datagrams; returns the number of replies queued.
    fn answer(&mut self, batch: &mut Batch, received: usize) -> usize {
        let now = unix_now();
        let mut replies = 0;
        for slot in 0..received {
            let Some(datagram) = batch.datagram(slot) else {
                self.stats.count_bad_frame();
                continue;
            };
            let payload = &batch.recv_bufs[slot][..datagram.len];
            if payload.is_empty() {
                self.stats.count_bad_frame();
                continue;
            }
            let cx = Context {
                link: self.links.lookup(&self.engine, datagram.interface),
                now,
            };
            let reply = &mut batch.reply_bufs[replies][..];
            let outcome = self.engine.handle(payload, &cx, reply, &mut self.events);
            self.stats.count_received(outcome.received());
            match outcome {
                Outcome::Reply { len, to, .. } => {
                    let port = match to {
                        Destination::Client => self.ports.client,
                        Destination::Relay {
                            to_source_port: true,
                        } => datagram.source.port(),
                        Destination::Relay {
                            to_source_port: false,
                        } => self.ports.relay,
                    };
                    let source = if datagram.local.is_multicast() {
                        Ipv6Addr::UNSPECIFIED
                    } else {
                        datagram.local
                    };
                    batch.outgoing[replies] = Outgoing {
                        len,
                        to: SocketAddrV6::new(
                            *datagram.source.ip(),
                            port,
                            0,
                            datagram.source.scope_id(),
                        ),
                        source,
                        interface: datagram.interface,
                    };
                    replies += 1;
                }
                Outcome::Drop { reason, .. } => self.stats.count_drop(reason),
            }
        }
        replies
    }
}

/// What `recvmmsg` reported for one slot.
#[derive(Clone, Copy, Debug)]
struct Datagram {
    len: usize,
    source: SocketAddrV6,
    /// The destination address of the datagram (ours, or a group).
    local: Ipv6Addr,
    /// The arriving interface index (0 when the kernel did not say).
    interface: u32,
}

/// A reply waiting for `sendmmsg`; its bytes are in the matching reply slot.
#[derive(Clone, Copy, Debug)]
struct Outgoing {
    len: usize,
    to: SocketAddrV6,
    source: Ipv6Addr,
    interface: u32,
}

impl Default for Outgoing {
    fn default() -> Self {
        Self {
            len: 0,
            to: SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0),
            source: Ipv6Addr::UNSPECIFIED,
            interface: 0,
        }
    }
}

/// The buffers of one worker: `BATCH` receive slots and `BATCH` reply slots, with the
/// headers the batch system calls need.
struct Batch {
    recv_bufs: Vec<[u8; RECV_SIZE]>,
    reply_bufs: Vec<[u8; REPLY_SIZE]>,
    outgoing: Vec<Outgoing>,
    names: Vec<libc::sockaddr_in6>,
    controls: Vec<[u64; CONTROL_WORDS]>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

impl Batch {
    fn new() -> Self {
        Self {
            recv_bufs: vec![[0; RECV_SIZE]; BATCH],
            reply_bufs: vec![[0; REPLY_SIZE]; BATCH],
            outgoing: vec![Outgoing::default(); BATCH],
            // Safety: sockaddr_in6, iovec and mmsghdr are plain C structs for which all-zero
            // bytes are a valid value (null pointers, zero lengths).
            names: vec![unsafe { zeroed() }; BATCH],
            controls: vec![[0; CONTROL_WORDS]; BATCH],
            // Safety: as above.
            iovecs: vec![unsafe { zeroed() }; BATCH],
            // Safety: as above.
            headers: vec![unsafe { zeroed() }; BATCH],
        }
    }

    /// Blocks (up to the socket's receive timeout) for at least one datagram, then takes what
    /// else is queued, up to `BATCH`.
    fn receive(&mut self, fd: RawFd) -> io::Result<usize> {
        for slot in 0..BATCH {
            self.iovecs[slot] = libc::iovec {
                iov_base: self.recv_bufs[slot].as_mut_ptr().cast(),
                iov_len: RECV_SIZE,
            };
            let header = &mut self.headers[slot];
            header.msg_len = 0;
            header.msg_hdr.msg_name = (&raw mut self.names[slot]).cast();
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            header.msg_hdr.msg_iov = &raw mut self.iovecs[slot];
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_control = self.controls[slot].as_mut_ptr().cast();
            header.msg_hdr.msg_controllen = size_of::<[u64; CONTROL_WORDS]>() as _;
            header.msg_hdr.msg_flags = 0;
        }
        // Safety: every header points at buffers owned by `self` that outlive the call, with
        // their true lengths; MSG_WAITFORONE makes only the first datagram block (bounded by
        // SO_RCVTIMEO). A null timeout is allowed.
        let received = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(received as usize)
    }

    /// The metadata of received slot `slot`; `None` when it is unusable (truncated, not from
    /// an IPv6 peer).
    fn datagram(&self, slot: usize) -> Option<Datagram> {
        let header = &self.headers[slot];
        if header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            return None;
        }
        let name = &self.names[slot];
        if name.sin6_family != libc::AF_INET6 as libc::sa_family_t {
            return None;
        }
        let source = SocketAddrV6::new(
            Ipv6Addr::from(name.sin6_addr.s6_addr),
            u16::from_be(name.sin6_port),
            0,
            name.sin6_scope_id,
        );
        let (local, interface) = packet_info(&header.msg_hdr)?;
        Some(Datagram {
            len: header.msg_len as usize,
            source,
            local,
            interface,
        })
    }

    /// Sends the first `count` queued replies, retrying after partial sends; failures are
    /// counted per reply.
    fn send(&mut self, fd: RawFd, count: usize, stats: &WorkerStats) {
        for slot in 0..count {
            let outgoing = self.outgoing[slot];
            self.names[slot] = sockaddr(outgoing.to);
            self.iovecs[slot] = libc::iovec {
                iov_base: self.reply_bufs[slot].as_mut_ptr().cast(),
                iov_len: outgoing.len,
            };
            let control_len = write_packet_info(
                &mut self.controls[slot],
                outgoing.source,
                outgoing.interface,
            );
            let header = &mut self.headers[slot];
            header.msg_len = 0;
            header.msg_hdr.msg_name = (&raw mut self.names[slot]).cast();
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            header.msg_hdr.msg_iov = &raw mut self.iovecs[slot];
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_control = self.controls[slot].as_mut_ptr().cast();
            header.msg_hdr.msg_controllen = control_len as _;
            header.msg_hdr.msg_flags = 0;
        }
        let mut next = 0;
        while next < count {
            // Safety: headers `next..count` point at buffers owned by `self` with their true
            // lengths, filled above; the kernel only reads them (and writes `msg_len`).
            let sent = unsafe {
                libc::sendmmsg(
                    fd,
                    self.headers[next..].as_mut_ptr(),
                    (count - next) as libc::c_uint,
                    0,
                )
            };
            if sent < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // The first datagram failed (unreachable peer, no route, buffer full):
                // count it and go on with the rest.
                stats.count_send_failure();
                next += 1;
                continue;
            }
            for slot in next..next + sent as usize {
                let reply = &self.reply_bufs[slot];
                stats.count_sent(MessageType::from(reply[0]));
            }
            next += sent as usize;
        }
    }
}

/// The destination address and arriving interface from a received message's IPV6_PKTINFO.
fn packet_info(header: &libc::msghdr) -> Option<(Ipv6Addr, u32)> {
    // Safety: `header` was filled by recvmmsg: its control pointer and (kernel-set) length
    // describe our control buffer, so the CMSG_* walk stays inside it. The data is read
    // unaligned because the buffer gives no alignment guarantee for in6_pktinfo.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::IPPROTO_IPV6 && (*cmsg).cmsg_type == libc::IPV6_PKTINFO {
                let info: libc::in6_pktinfo =
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                return Some((Ipv6Addr::from(info.ipi6_addr.s6_addr), info.ipi6_ifindex));
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    None
}

/// Writes one IPV6_PKTINFO cmsg (source address, outgoing interface) into `control`;
/// returns its length.
fn write_packet_info(
    control: &mut [u64; CONTROL_WORDS],
    source: Ipv6Addr,
    interface: u32,
) -> usize {
    let info = libc::in6_pktinfo {
        ipi6_addr: libc::in6_addr {
            s6_addr: source.octets(),
        },
        ipi6_ifindex: interface,
    };
    // Safety: CMSG_SPACE of in6_pktinfo (40 bytes) fits the 64-byte, 8-aligned buffer; a
    // msghdr over exactly that buffer makes CMSG_FIRSTHDR return its start (non-null), and
    // CMSG_DATA points inside it. The data is written unaligned.
    unsafe {
        let space = libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize;
        debug_assert!(space <= size_of::<[u64; CONTROL_WORDS]>());
        control.fill(0);
        let mut header: libc::msghdr = zeroed();
        header.msg_control = control.as_mut_ptr().cast();
        header.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&header);
        (*cmsg).cmsg_level = libc::IPPROTO_IPV6;
        (*cmsg).cmsg_type = libc::IPV6_PKTINFO;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast(), info);
        space
    }
}

fn sockaddr(address: SocketAddrV6) -> libc::sockaddr_in6 {
    // Safety: all-zero is a valid sockaddr_in6; the fields that matter are set below.
    let mut raw: libc::sockaddr_in6 = unsafe { zeroed() };
    raw.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    raw.sin6_port = address.port().to_be();
    raw.sin6_addr = libc::in6_addr {
        s6_addr: address.ip().octets(),
    };
    raw.sin6_flowinfo = address.flowinfo();
    raw.sin6_scope_id = address.scope_id();
    raw
}

fn set_option<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // Safety: `value` is a live `T` and its exact size is passed; the kernel copies it.
    let result = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn local_port(fd: RawFd) -> io::Result<u16> {
    // Safety: all-zero is a valid sockaddr_in6; getsockname writes at most `len` bytes to it.
    let mut address: libc::sockaddr_in6 = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    // Safety: see above; `len` is in/out.
    let result = unsafe { libc::getsockname(fd, (&raw mut address).cast(), &mut len) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u16::from_be(address.sin6_port))
}

/// The index of the interface named `name`.
pub fn interface_index(name: &str) -> io::Result<u32> {
    let name = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name has a NUL"))?;
    // Safety: `name` is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface {:?}", name.to_string_lossy()),
        ));
    }
    Ok(index)
}

/// The name of the interface with index `index`, if it exists.
pub fn interface_name(index: u32) -> Option<String> {
    let mut buffer = [0 as libc::c_char; libc::IF_NAMESIZE];
    // Safety: `buffer` has the IF_NAMESIZE bytes if_indextoname may write.
    let name = unsafe { libc::if_indextoname(index, buffer.as_mut_ptr()) };
    if name.is_null() {
        return None;
    }
    // Safety: on success the buffer holds a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(buffer.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// Pins the calling thread to `core`.
pub fn pin_to_core(core: usize) -> io::Result<()> {
    if core >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("core {core} is out of range"),
        ));
    }
    // Safety: all-zero is an empty cpu_set_t; CPU_SET stays in range (checked above), and
    // sched_setaffinity(0, ...) reads the set for the calling thread.
    let result = unsafe {
        let mut set: libc::cpu_set_t = zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Seconds since the Unix epoch, the engine clock.
pub fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as u32)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;

    use xdhcp6_engine::alloc::SaltKey;
    use xdhcp6_engine::config::Config;
    use xdhcp6_engine::proto::{MessageWriter, OptionCode, Packet};
    use xdhcp6_engine::table::{EventSink, LeaseEvent, LeaseTable};

    use super::*;

    /// Collects events and counts the durability barriers.
    #[derive(Default)]
    struct Recorder {
        events: Arc<std::sync::Mutex<Vec<LeaseEvent>>>,
        settles: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl EventSink for Recorder {
        fn emit(&mut self, event: LeaseEvent) {
            self.events.lock().unwrap().push(event);
        }
    }

    impl Events for Recorder {
        fn settle(&mut self) -> bool {
            self.settles.fetch_add(1, Ordering::Relaxed);
            true
        }
    }

    fn engine() -> Arc<Engine> {
        let config = Config::from_toml_str(
            "[server]\nduid = \"00:03:00:01:02:00:00:00:00:01\"\nsalt = \"t\"\n\
             [[link]]\nname = \"loop\"\ninterfaces = [\"lo\"]\n\
             [[link.pool]]\nprefix = \"2001:db8:1::/64\"\n",
            "test.toml",
        )
        .unwrap();
        let config = Arc::new(config);
        let table = Arc::new(LeaseTable::with_capacity(64, SaltKey::from_salt("t")));
        Arc::new(Engine::new(config, table).unwrap())
    }

    fn solicit(buf: &mut [u8], xid: u32) -> usize {
        let mut w = MessageWriter::client(buf, MessageType::Solicit, xid).unwrap();
        w.client_id(&[0, 3, 0, 1, 2, 0, 0, 0, 0, 0x42]).unwrap();
        w.elapsed_time(0).unwrap();
        let mark = w.begin_ia_na(7, 0, 0).unwrap();
        w.end_option(mark).unwrap();
        w.oro(&[OptionCode::DnsServers]).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn answers_a_solicit_over_loopback_and_stops() {
        let socket = Arc::new(ServerSocket::bind(0).unwrap());
        let client = UdpSocket::bind("[::1]:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let ports = Ports {
            server: socket.port(),
            client: client.local_addr().unwrap().port(),
            relay: 547,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let recorder = Recorder::default();
        let events = Arc::clone(&recorder.events);
        let settles = Arc::clone(&recorder.settles);
        let stats = vec![Arc::new(WorkerStats::default())];
        let datapath = UdpDatapath::start(
            engine(),
            Arc::clone(&socket),
            ports,
            vec![recorder],
            &stats,
            &[],
            Arc::clone(&stop),
        )
        .unwrap();

        let mut request = [0u8; 256];
        let len = solicit(&mut request, 0x00ab_cdef);
        client
            .send_to(&request[..len], ("::1", socket.port()))
            .unwrap();
        // A message servers never answer is counted and dropped, not answered.
        client
            .send_to(&[2, 0, 0, 1], ("::1", socket.port()))
            .unwrap();
        let mut reply = [0u8; 1500];
        let (got, from) = client.recv_from(&mut reply).unwrap();
        let packet = Packet::parse(&reply[..got]).unwrap();
        assert_eq!(packet.msg_type(), MessageType::Advertise);
        assert_eq!(from.port(), socket.port());
        assert_eq!(&reply[1..4], &[0xab, 0xcd, 0xef]);

        // The worker notices the stop flag within its receive timeout.
        let started = std::time::Instant::now();
        stop.store(true, Ordering::Relaxed);
        datapath.join();
        assert!(started.elapsed() < Duration::from_secs(2));

        assert_eq!(events.lock().unwrap().len(), 1, "the offer is an event");
        assert!(settles.load(Ordering::Relaxed) >= 1);
        let stats = &stats[0];
        assert_eq!(stats.received[1].load(Ordering::Relaxed), 1);
        assert_eq!(stats.received[2].load(Ordering::Relaxed), 1);
        assert_eq!(stats.sent[2].load(Ordering::Relaxed), 1);
        let dropped: u64 = stats
            .dropped
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .sum();
        assert_eq!(dropped, 1);
    }

    #[test]
    fn packet_info_round_trips_through_a_control_buffer() {
        let mut control = [0u64; CONTROL_WORDS];
        let source: Ipv6Addr = "2001:db8::5".parse().unwrap();
        let len = write_packet_info(&mut control, source, 7);
        // Safety: all-zero is a valid msghdr (null pointers, zero lengths).
        let mut header: libc::msghdr = unsafe { zeroed() };
        header.msg_control = control.as_mut_ptr().cast();
        header.msg_controllen = len as _;
        assert_eq!(packet_info(&header), Some((source, 7)));
    }

    #[test]
    fn interface_names_and_indexes_agree_for_loopback() {
        let index = interface_index("lo").unwrap();
        assert_eq!(interface_name(index).as_deref(), Some("lo"));
        assert!(interface_index("no-such-if0").is_err());
        assert_eq!(interface_name(0), None);
    }
}
