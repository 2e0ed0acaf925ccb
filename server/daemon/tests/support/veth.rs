//! What the root-only XDP and AF_XDP tests add to the lab's veth pair: the XDP program loaded
//! from the built eBPF object, and raw frames sent out of the peer.

#![allow(
    dead_code,
    reason = "each test crate that includes this uses a part of it"
)]

use std::{
    io,
    mem::{size_of, zeroed},
    os::fd::{AsRawFd, OwnedFd},
    ptr,
};

pub use xdhcp6_lab::harness::VethPair;
use xdhcp6d::xdp::{EbpfObject, OBJECT_ENV, Steering};

/// Why these tests are ignored by plain `cargo test`.
pub const NEEDS: &str = "needs root and the eBPF object; run by cargo xtask test";

/// Loads the XDP program from `$XDHCP6_EBPF_OBJECT`; panics with what is missing.
pub fn load() -> Steering {
    load_named(xdhcp6_common::PROGRAM)
}

/// Loads the client-side XDP program (`xdhcp6_client_xdp`) from `$XDHCP6_EBPF_OBJECT`.
pub fn load_client() -> Steering {
    load_named(xdhcp6_common::CLIENT_PROGRAM)
}

fn load_named(program: &'static str) -> Steering {
    let path = std::env::var_os(OBJECT_ENV).unwrap_or_else(|| {
        panic!(
            "{OBJECT_ENV} is not set: point it at the built xdhcp6-ebpf object \
             (`cargo xtask test` does); {NEEDS}"
        )
    });
    let object = EbpfObject::read(path.as_ref()).expect("reading the eBPF object");
    Steering::load_program(&object, program).unwrap_or_else(|error| {
        panic!(
            "loading the XDP program (root?): {}",
            xdhcp6d::xdp::error_chain(&error)
        )
    })
}

/// The index of `interface` in this thread's namespace.
pub fn if_index(interface: &str) -> io::Result<u32> {
    xdhcp6_lab::netns::if_index(interface).map_err(io::Error::other)
}

/// Sends a whole Ethernet frame out of interface `ifindex` through the AF_PACKET socket `fd`.
pub fn send_frame(fd: &OwnedFd, ifindex: u32, frame: &[u8]) -> io::Result<()> {
    // Safety: all-zero is a valid `sockaddr_ll`.
    let mut address: libc::sockaddr_ll = unsafe { zeroed() };
    address.sll_family = libc::AF_PACKET as u16;
    address.sll_ifindex = ifindex as i32;
    address.sll_halen = 6;
    address.sll_addr[..6].copy_from_slice(&frame[..6]);
    // Safety: `frame` and `address` are valid for the stated lengths during the call.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            ptr::from_ref(&address).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    assert_eq!(sent as usize, frame.len(), "short AF_PACKET send");
    Ok(())
}
