//! Moving datagrams between the generator and a server.

use std::ffi::CString;
use std::io;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use xdhcp6_proto::{CLIENT_PORT, SERVER_PORT};

use crate::scenario::Outbox;

/// All_DHCP_Relay_Agents_and_Servers (RFC 9915 §7.1).
pub const ALL_DHCP_RELAY_AGENTS_AND_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

/// A datagram transport to one server (or the All_DHCP_Relay_Agents_and_Servers group).
pub trait Transport {
    /// Sends every datagram in `out`; returns how many left (the rest are counted as dropped).
    fn send(&mut self, out: &Outbox) -> io::Result<usize>;

    /// Hands each datagram that arrived to `sink`, waiting up to `wait` for the first one;
    /// returns how many arrived.
    fn receive(&mut self, wait: Duration, sink: &mut dyn FnMut(&[u8])) -> io::Result<usize>;

    /// Datagrams the transport could not send.
    fn send_drops(&self) -> u64 {
        0
    }

    /// Received frames dropped as malformed before the generator saw them.
    fn bad_frames(&self) -> u64 {
        0
    }

    /// A line of the transport's own counters for the end of a run, if it has any.
    fn diagnostics(&self) -> Option<String> {
        None
    }
}

/// Datagrams per sendmmsg/recvmmsg call.
const BATCH: usize = 64;
/// Room for one received datagram (replies are far smaller).
const SLOT: usize = 2048;

/// The kernel UDP socket transport, batched with sendmmsg/recvmmsg.
///
/// Direct clients share one socket bound to [::]:546, where the server answers clients;
/// emulated relays share one bound to [::]:547, where the server answers relays.
pub struct UdpTransport {
    socket: UdpSocket,
    server: SocketAddrV6,
    buf: Vec<u8>,
    send_drops: u64,
}

impl UdpTransport {
    /// Opens the socket; `server` unicast or, without it, the multicast group on `interface`.
    pub fn open(
        interface: Option<&str>,
        server: Option<Ipv6Addr>,
        relayed: bool,
    ) -> io::Result<Self> {
        let port = if relayed { SERVER_PORT } else { CLIENT_PORT };
        let ifindex = match interface {
            Some(name) => interface_index(name)?,
            None => 0,
        };
        let socket = UdpSocket::bind(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0))?;
        socket.set_nonblocking(true)?;
        set_int_option(&socket, libc::SOL_SOCKET, libc::SO_RCVBUF, 16 << 20)?;
        set_int_option(&socket, libc::SOL_SOCKET, libc::SO_SNDBUF, 16 << 20)?;
        let target = server.unwrap_or(ALL_DHCP_RELAY_AGENTS_AND_SERVERS);
        if target.is_multicast() {
            if ifindex == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "multicast needs --interface (or give --server)",
                ));
            }
            set_int_option(
                &socket,
                libc::IPPROTO_IPV6,
                libc::IPV6_MULTICAST_IF,
                ifindex as i32,
            )?;
        }
        let scope = if target.is_multicast() || target.is_unicast_link_local() {
            ifindex
        } else {
            0
        };
        Ok(Self {
            socket,
            server: SocketAddrV6::new(target, SERVER_PORT, 0, scope),
            buf: vec![0; BATCH * SLOT],
            send_drops: 0,
        })
    }

    /// Where datagrams go.
    pub fn server(&self) -> SocketAddr {
        SocketAddr::V6(self.server)
    }

    /// Waits up to `wait` (microsecond precision) for `events`; false on timeout.
    fn wait_for(&self, events: i16, wait: Duration) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.socket.as_raw_fd(),
            events,
            revents: 0,
        };
        let timeout = libc::timespec {
            tv_sec: wait.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: wait.subsec_nanos() as libc::c_long,
        };
        // Safety: `pfd` and `timeout` are valid for the duration of the call, nfds is 1, and a
        // null signal mask leaves the mask alone.
        let n = unsafe { libc::ppoll(&mut pfd, 1, &timeout, std::ptr::null()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(e);
        }
        Ok(n > 0)
    }

    fn sockaddr(&self) -> libc::sockaddr_in6 {
        libc::sockaddr_in6 {
            sin6_family: libc::AF_INET6 as libc::sa_family_t,
            sin6_port: self.server.port().to_be(),
            sin6_flowinfo: 0,
            sin6_addr: libc::in6_addr {
                s6_addr: self.server.ip().octets(),
            },
            sin6_scope_id: self.server.scope_id(),
        }
    }

    /// One sendmmsg call for up to [`BATCH`] datagrams; returns how many left.
    fn send_batch(&mut self, datagrams: &[&[u8]]) -> io::Result<usize> {
        let mut to = self.sockaddr();
        // Safety: iovec and mmsghdr are plain C structs for which all-zero bytes are valid.
        let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        // Safety: as above.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let n = datagrams.len().min(BATCH);
        for i in 0..n {
            iovs[i].iov_base = datagrams[i].as_ptr() as *mut libc::c_void;
            iovs[i].iov_len = datagrams[i].len();
            msgs[i].msg_hdr.msg_name = (&mut to as *mut libc::sockaddr_in6).cast();
            msgs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            msgs[i].msg_hdr.msg_iov = &mut iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // Safety: the first `n` headers point at live iovecs, the datagrams they describe and
        // `to`, all of which outlive the call; the kernel only reads them.
        let rc = unsafe {
            libc::sendmmsg(
                self.socket.as_raw_fd(),
                msgs.as_mut_ptr(),
                n as libc::c_uint,
                0,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(rc as usize)
    }

    /// One non-blocking recvmmsg call; hands each datagram to `sink`.
    fn receive_batch(&mut self, sink: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        // Safety: iovec and mmsghdr are plain C structs for which all-zero bytes are valid.
        let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        // Safety: as above.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, slot) in self.buf.chunks_exact_mut(SLOT).enumerate().take(BATCH) {
            iovs[i].iov_base = slot.as_mut_ptr().cast();
            iovs[i].iov_len = SLOT;
            msgs[i].msg_hdr.msg_iov = &mut iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // Safety: every header points at its own iovec, which points at a distinct SLOT-byte
        // part of `self.buf`; all outlive the call, and no source address is asked for.
        let rc = unsafe {
            libc::recvmmsg(
                self.socket.as_raw_fd(),
                msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = rc as usize;
        for (i, msg) in msgs.iter().enumerate().take(n) {
            let len = (msg.msg_len as usize).min(SLOT);
            sink(&self.buf[i * SLOT..i * SLOT + len]);
        }
        Ok(n)
    }
}

impl Transport for UdpTransport {
    fn send(&mut self, out: &Outbox) -> io::Result<usize> {
        let datagrams: Vec<&[u8]> = out.iter().collect();
        let mut sent = 0;
        let mut stalls = 0;
        while sent < datagrams.len() {
            match self.send_batch(&datagrams[sent..]) {
                Ok(n) if n > 0 => sent += n,
                Ok(_) => {
                    self.send_drops += (datagrams.len() - sent) as u64;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && stalls < 2 => {
                    stalls += 1;
                    self.wait_for(libc::POLLOUT, Duration::from_millis(1))?;
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(libc::ENOBUFS) =>
                {
                    // Open loop: a full send queue is part of the load offered; count the rest
                    // of this batch as dropped and go on.
                    self.send_drops += (datagrams.len() - sent) as u64;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }

    fn receive(&mut self, wait: Duration, sink: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        let mut n = 0;
        let mut waited = false;
        // A bounded batch keeps the sender on schedule under a flood of replies.
        while n < 16 * BATCH {
            match self.receive_batch(sink) {
                Ok(0) => break,
                Ok(got) => n += got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if n > 0 || waited || wait.is_zero() {
                        break;
                    }
                    waited = true;
                    if !self.wait_for(libc::POLLIN, wait)? {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    fn send_drops(&self) -> u64 {
        self.send_drops
    }
}

fn interface_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // Safety: `c` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface {name:?}"),
        ));
    }
    Ok(index)
}

fn set_int_option(socket: &UdpSocket, level: i32, name: i32, value: i32) -> io::Result<()> {
    // Safety: the pointer and length describe `value`, an i32 that lives through the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
