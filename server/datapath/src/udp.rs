//! UDP sockets: the server's `[::]:547` socket and the socket options around it.
//!
//! [`ServerSocket`] binds with the options the server's UDP datapath needs and joins the DHCPv6
//! groups per interface; [`set_int_option`] sets the integer options std does not cover.
//! Batches of datagrams go through [`crate::mmsg`].

use std::{
    io,
    mem::{size_of, zeroed},
    net::{Ipv6Addr, SocketAddrV6},
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd},
    time::Duration,
};

use crate::iface::interface_index;
use crate::mmsg::sockaddr;

/// A server's UDP socket: bound, receiving `IPV6_PKTINFO`, joined to groups per interface.
#[derive(Debug)]
pub struct ServerSocket {
    fd: OwnedFd,
    port: u16,
    joined: Vec<(String, u32)>,
}

impl ServerSocket {
    /// Binds `[::]:port` (port 0 picks one) with `IPV6_V6ONLY`, `IPV6_RECVPKTINFO`, a 4 MiB
    /// receive buffer and `receive_timeout`, so that a blocked receive returns in time to look
    /// at a stop flag. Neither `SO_REUSEADDR` nor `SO_REUSEPORT` is set: on Linux either lets
    /// a second server bind the same UDP port and both would answer; the bind fails with
    /// `AddrInUse` instead.
    pub fn bind(port: u16, receive_timeout: Duration) -> io::Result<Self> {
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
        set_option(raw, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, &1i32)?;
        // Large bursts (a CMTS reboot) should queue in the kernel rather than be lost.
        set_option(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, &(4i32 << 20))?;
        let timeout = libc::timeval {
            tv_sec: receive_timeout.as_secs() as libc::time_t,
            tv_usec: receive_timeout.subsec_micros() as libc::suseconds_t,
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

    /// Joins `groups` on `interface` (which also programs the NIC's multicast filter and
    /// sends the MLD reports); returns the interface's index.
    pub fn join(&mut self, interface: &str, groups: &[Ipv6Addr]) -> io::Result<u32> {
        let index = interface_index(interface)?;
        for group in groups {
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

impl AsFd for ServerSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for ServerSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Sets an integer socket option (`SO_RCVBUF`, `IPV6_MULTICAST_IF`, ...) on `fd`.
pub fn set_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: i32,
) -> io::Result<()> {
    set_option(fd.as_raw_fd(), level, name, &value)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_an_ephemeral_port_and_refuses_unknown_interfaces() {
        let mut socket = ServerSocket::bind(0, Duration::from_millis(10)).unwrap();
        assert_ne!(socket.port(), 0);
        assert!(socket.join("no-such-if0", &[]).is_err());
        assert!(socket.joined().is_empty());
        set_int_option(socket.as_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, 1 << 16).unwrap();
    }
}
