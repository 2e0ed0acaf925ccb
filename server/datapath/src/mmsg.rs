//! Batched UDP: many datagrams per `recvmmsg(2)` / `sendmmsg(2)` call.
//!
//! [`MmsgBatch`] owns a number of fixed-size slots and the headers the batch system calls need
//! (addresses, `iovec`s, `IPV6_PKTINFO` control buffers), allocated once and reused for every
//! call. Receiving fills the slots and says per slot where the datagram came from and, when the
//! socket asked for `IPV6_RECVPKTINFO`, which address and interface it arrived on; sending takes
//! what the caller wrote into the slots, each with its destination and optionally its source
//! address and outgoing interface. The server's UDP datapath and the load generator's UDP
//! transport both use it, each with its own retry policy around [`MmsgBatch::send`].

use std::{
    io,
    mem::{size_of, zeroed},
    net::{Ipv6Addr, SocketAddrV6},
    ops::Range,
    os::fd::{AsRawFd, BorrowedFd},
    ptr,
};

/// Control buffer per message: room for one `in6_pktinfo` cmsg, 8-byte aligned.
const CONTROL_WORDS: usize = 8;

/// How [`MmsgBatch::receive`] waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiveMode {
    /// Block for the first datagram (bounded by the socket's `SO_RCVTIMEO`), then take what
    /// else is queued (`MSG_WAITFORONE`).
    WaitForOne,
    /// Take what is queued; `WouldBlock` when nothing is (`MSG_DONTWAIT`).
    DontWait,
}

/// The address and interface of `IPV6_PKTINFO`: where a datagram arrived, or where a reply
/// leaves from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    /// The local address: a received datagram's destination (ours, or a group); a sent one's
    /// source (unspecified lets the kernel pick).
    pub local: Ipv6Addr,
    /// The interface index (0 when the kernel did not say, or to let it route).
    pub interface: u32,
}

/// What `recvmmsg` reported for one usable slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// Bytes received.
    pub len: usize,
    /// The sender.
    pub source: SocketAddrV6,
    /// Where it arrived.
    pub info: PacketInfo,
}

/// Slots for a batch of datagrams and the system call headers that describe them.
pub struct MmsgBatch {
    slot_size: usize,
    bufs: Vec<u8>,
    lens: Vec<usize>,
    names: Vec<libc::sockaddr_in6>,
    controls: Vec<[u64; CONTROL_WORDS]>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

// Safety: the raw pointers inside the headers only ever point into the batch's own buffers,
// and are rewritten before every system call; nothing is shared with another thread.
unsafe impl Send for MmsgBatch {}

impl std::fmt::Debug for MmsgBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmsgBatch")
            .field("slots", &self.slots())
            .field("slot_size", &self.slot_size)
            .finish_non_exhaustive()
    }
}

impl MmsgBatch {
    /// A batch of `slots` datagrams of up to `slot_size` bytes each.
    pub fn new(slots: usize, slot_size: usize) -> Self {
        Self {
            slot_size,
            bufs: vec![0; slots * slot_size],
            lens: vec![0; slots],
            // Safety: sockaddr_in6, iovec and mmsghdr are plain C structs for which all-zero
            // bytes are a valid value (null pointers, zero lengths).
            names: vec![unsafe { zeroed() }; slots],
            controls: vec![[0; CONTROL_WORDS]; slots],
            // Safety: as above.
            iovecs: vec![unsafe { zeroed() }; slots],
            // Safety: as above.
            headers: vec![unsafe { zeroed() }; slots],
        }
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.lens.len()
    }

    /// Bytes per slot.
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// Receives into every slot; returns how many were filled (slots `0..n`).
    ///
    /// Datagrams longer than a slot are cut off by the kernel: [`Self::datagram`] refuses them,
    /// [`Self::payload`] gives what fitted.
    pub fn receive(&mut self, fd: BorrowedFd<'_>, mode: ReceiveMode) -> io::Result<usize> {
        let slots = self.slots();
        for slot in 0..slots {
            self.point_header(slot, self.slot_size, size_of::<[u64; CONTROL_WORDS]>());
        }
        let flags = match mode {
            ReceiveMode::WaitForOne => libc::MSG_WAITFORONE,
            ReceiveMode::DontWait => libc::MSG_DONTWAIT,
        };
        // Safety: every header points at buffers owned by `self` that outlive the call, with
        // their true lengths; a null timeout is allowed.
        let received = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                self.headers.as_mut_ptr(),
                slots as libc::c_uint,
                flags,
                ptr::null_mut(),
            )
        };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        let received = received as usize;
        for slot in 0..received {
            self.lens[slot] = (self.headers[slot].msg_len as usize).min(self.slot_size);
        }
        Ok(received)
    }

    /// The metadata of received slot `slot`; `None` when it is unusable: truncated, not from
    /// an IPv6 peer, or without `IPV6_PKTINFO`.
    pub fn datagram(&self, slot: usize) -> Option<Datagram> {
        let header = self.headers.get(slot)?;
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
        let info = packet_info(&header.msg_hdr)?;
        Some(Datagram {
            len: self.lens[slot],
            source,
            info,
        })
    }

    /// The bytes of slot `slot`: what was received into it, or what [`Self::prepare`] queued.
    pub fn payload(&self, slot: usize) -> &[u8] {
        let len = self.lens.get(slot).copied().unwrap_or(0);
        self.bufs
            .get(slot * self.slot_size..slot * self.slot_size + len)
            .unwrap_or(&[])
    }

    /// The whole of slot `slot`, to write a datagram into before [`Self::prepare`]; empty when
    /// there is no such slot.
    pub fn slot_mut(&mut self, slot: usize) -> &mut [u8] {
        let start = slot.saturating_mul(self.slot_size);
        self.bufs
            .get_mut(start..start.saturating_add(self.slot_size))
            .unwrap_or(&mut [])
    }

    /// Queues the first `len` bytes of slot `slot` for `to`; with `from`, the datagram leaves
    /// from that address and interface (`IPV6_PKTINFO`).
    pub fn prepare(&mut self, slot: usize, len: usize, to: SocketAddrV6, from: Option<PacketInfo>) {
        if slot >= self.slots() {
            return;
        }
        let len = len.min(self.slot_size);
        self.lens[slot] = len;
        self.names[slot] = sockaddr(to);
        let control_len = match from {
            Some(info) => write_packet_info(&mut self.controls[slot], info),
            None => 0,
        };
        self.point_header(slot, len, control_len);
    }

    /// Points the header of `slot` at its address, its buffer (`len` bytes) and its control
    /// buffer (`control_len` bytes; none when 0).
    fn point_header(&mut self, slot: usize, len: usize, control_len: usize) {
        self.iovecs[slot] = libc::iovec {
            iov_base: self.bufs[slot * self.slot_size..].as_mut_ptr().cast(),
            iov_len: len,
        };
        let header = &mut self.headers[slot];
        header.msg_len = 0;
        header.msg_hdr.msg_name = (&raw mut self.names[slot]).cast();
        header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        header.msg_hdr.msg_iov = &raw mut self.iovecs[slot];
        header.msg_hdr.msg_iovlen = 1;
        header.msg_hdr.msg_control = if control_len == 0 {
            ptr::null_mut()
        } else {
            self.controls[slot].as_mut_ptr().cast()
        };
        header.msg_hdr.msg_controllen = control_len as _;
        header.msg_hdr.msg_flags = 0;
    }

    /// One `sendmmsg` call for the prepared slots `slots`; returns how many left (from the
    /// first on). An error means the first of them failed.
    pub fn send(&mut self, fd: BorrowedFd<'_>, slots: Range<usize>) -> io::Result<usize> {
        let end = slots.end.min(self.slots());
        if slots.start >= end {
            return Ok(0);
        }
        // Safety: headers `start..end` were filled by `prepare`, pointing at buffers owned by
        // `self` with their true lengths; the kernel only reads them (and writes `msg_len`).
        let sent = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                self.headers[slots.start..].as_mut_ptr(),
                (end - slots.start) as libc::c_uint,
                0,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sent as usize)
    }
}

/// The destination address and arriving interface from a received message's IPV6_PKTINFO.
fn packet_info(header: &libc::msghdr) -> Option<PacketInfo> {
    if header.msg_control.is_null() {
        return None;
    }
    // Safety: `header` was filled by recvmmsg: its control pointer and (kernel-set) length
    // describe our control buffer, so the CMSG_* walk stays inside it. The data is read
    // unaligned because the buffer gives no alignment guarantee for in6_pktinfo.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::IPPROTO_IPV6 && (*cmsg).cmsg_type == libc::IPV6_PKTINFO {
                let info: libc::in6_pktinfo = ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                return Some(PacketInfo {
                    local: Ipv6Addr::from(info.ipi6_addr.s6_addr),
                    interface: info.ipi6_ifindex,
                });
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    None
}

/// Writes one IPV6_PKTINFO cmsg (source address, outgoing interface) into `control`;
/// returns its length.
fn write_packet_info(control: &mut [u64; CONTROL_WORDS], info: PacketInfo) -> usize {
    let info = libc::in6_pktinfo {
        ipi6_addr: libc::in6_addr {
            s6_addr: info.local.octets(),
        },
        ipi6_ifindex: info.interface,
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
        ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast(), info);
        space
    }
}

/// `address` as the C socket address.
pub(crate) fn sockaddr(address: SocketAddrV6) -> libc::sockaddr_in6 {
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

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn packet_info_round_trips_through_a_control_buffer() {
        let mut control = [0u64; CONTROL_WORDS];
        let info = PacketInfo {
            local: "2001:db8::5".parse().unwrap(),
            interface: 7,
        };
        let len = write_packet_info(&mut control, info);
        // Safety: all-zero is a valid msghdr (null pointers, zero lengths).
        let mut header: libc::msghdr = unsafe { zeroed() };
        header.msg_control = control.as_mut_ptr().cast();
        header.msg_controllen = len as _;
        assert_eq!(packet_info(&header), Some(info));
    }

    #[test]
    fn a_batch_goes_out_and_comes_back_over_loopback() {
        let sender = UdpSocket::bind("[::1]:0").unwrap();
        let receiver = UdpSocket::bind("[::1]:0").unwrap();
        let std::net::SocketAddr::V6(to) = receiver.local_addr().unwrap() else {
            panic!("not IPv6");
        };
        let mut out = MmsgBatch::new(4, 64);
        for slot in 0..3 {
            out.slot_mut(slot)[..2].copy_from_slice(&[slot as u8, 0xee]);
            out.prepare(slot, 2, to, None);
        }
        assert_eq!(out.send(sender.as_fd(), 0..3).unwrap(), 3);
        assert_eq!(out.payload(1), &[1, 0xee]);

        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut batch = MmsgBatch::new(4, 64);
        let mut got = Vec::new();
        while got.len() < 3 {
            let n = batch
                .receive(receiver.as_fd(), ReceiveMode::WaitForOne)
                .unwrap();
            for slot in 0..n {
                got.push(batch.payload(slot).to_vec());
                // No IPV6_RECVPKTINFO on this socket: no usable metadata.
                assert_eq!(batch.datagram(slot), None);
            }
        }
        assert_eq!(got, [vec![0, 0xee], vec![1, 0xee], vec![2, 0xee]]);
        receiver.set_nonblocking(true).unwrap();
        let error = batch
            .receive(receiver.as_fd(), ReceiveMode::DontWait)
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
    }
}
