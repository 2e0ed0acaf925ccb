//! Moving datagrams between the generator and a server.

use std::io;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::os::fd::AsFd;
use std::time::Duration;

use xdhcp6_datapath::interface_index;
use xdhcp6_datapath::mmsg::{MmsgBatch, ReceiveMode};
use xdhcp6_datapath::os::{self, Readiness};
use xdhcp6_datapath::udp::set_int_option;
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

    /// Frames sent to the generator that its own socket dropped before it could read them
    /// (a receive ring full, no free frame to receive into): answers the server sent, which
    /// the run then counts as lost.
    fn receive_drops(&self) -> u64 {
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
/// Room for one sent datagram: any UDP payload, so that nothing is ever cut (the pages of the
/// batch are touched only as far as datagrams reach).
const SEND_SLOT: usize = u16::MAX as usize;

/// The kernel UDP socket transport, batched with sendmmsg/recvmmsg.
///
/// Direct clients share one socket bound to `[::]:546`, where the server answers clients;
/// emulated relays share one bound to `[::]:547`, where the server answers relays.
pub struct UdpTransport {
    socket: UdpSocket,
    server: SocketAddrV6,
    outgoing: MmsgBatch,
    incoming: MmsgBatch,
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
        set_int_option(socket.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, 16 << 20)?;
        set_int_option(socket.as_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, 16 << 20)?;
        let target = server.unwrap_or(ALL_DHCP_RELAY_AGENTS_AND_SERVERS);
        if target.is_multicast() {
            if ifindex == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "multicast needs --interface (or give --server)",
                ));
            }
            set_int_option(
                socket.as_fd(),
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
            outgoing: MmsgBatch::new(BATCH, SEND_SLOT),
            incoming: MmsgBatch::new(BATCH, SLOT),
            send_drops: 0,
        })
    }

    /// Where datagrams go.
    pub fn server(&self) -> SocketAddr {
        SocketAddr::V6(self.server)
    }

    /// Waits up to `wait` (microsecond precision) for `readiness`; false on timeout.
    fn wait_for(&self, readiness: Readiness, wait: Duration) -> io::Result<bool> {
        os::wait(self.socket.as_fd(), readiness, wait)
    }

    /// One sendmmsg call for up to [`BATCH`] datagrams; returns how many left.
    fn send_batch(&mut self, datagrams: &[&[u8]]) -> io::Result<usize> {
        let n = datagrams.len().min(BATCH);
        for (slot, datagram) in datagrams[..n].iter().enumerate() {
            let buf = self.outgoing.slot_mut(slot);
            let len = datagram.len().min(buf.len());
            buf[..len].copy_from_slice(&datagram[..len]);
            self.outgoing.prepare(slot, len, self.server, None);
        }
        self.outgoing.send(self.socket.as_fd(), 0..n)
    }

    /// One non-blocking recvmmsg call; hands each datagram to `sink`.
    fn receive_batch(&mut self, sink: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        let n = self
            .incoming
            .receive(self.socket.as_fd(), ReceiveMode::DontWait)?;
        for slot in 0..n {
            sink(self.incoming.payload(slot));
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
                    self.wait_for(Readiness::Writable, Duration::from_millis(1))?;
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
                    if !self.wait_for(Readiness::Readable, wait)? {
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
