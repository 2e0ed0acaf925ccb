//! Namespace and veth helpers shared by the root-only XDP and AF_XDP tests.

#![allow(
    dead_code,
    reason = "each test crate that includes this uses a part of it"
)]

use std::{
    ffi::CString,
    fs::File,
    io,
    mem::{size_of, zeroed},
    net::Ipv6Addr,
    os::fd::{AsRawFd, OwnedFd},
    process::Command,
    ptr,
    sync::atomic::{AtomicU32, Ordering},
    thread,
};

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

/// Runs `ip ARGS`, panicking when it fails.
pub fn ip(args: &[&str]) {
    let status = Command::new("ip")
        .args(args)
        .status()
        .unwrap_or_else(|error| panic!("running ip {args:?}: {error}"));
    assert!(status.success(), "ip {args:?} failed");
}

/// A network namespace holding a veth pair, deleted on drop.
pub struct VethPair {
    namespace: String,
}

impl VethPair {
    /// The end the program and the AF_XDP sockets sit on (fe80::547 and 2001:db8::547).
    pub const SERVER: &str = "xsrv0";
    /// The end frames are sent from.
    pub const CLIENT: &str = "xcli0";
    /// The server's global address.
    pub const SERVER_GLOBAL: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x547);

    pub fn new() -> Self {
        Self::with_queues(1)
    }

    /// A pair whose ends have `queues` receive and transmit queues each.
    pub fn with_queues(queues: u32) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let namespace = format!(
            "xdhcp6-veth-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &namespace]);
        let pair = VethPair { namespace };
        let ns = pair.namespace.as_str();
        let queues = queues.to_string();
        let queues = queues.as_str();
        ip(&[
            "-n",
            ns,
            "link",
            "add",
            Self::SERVER,
            "numtxqueues",
            queues,
            "numrxqueues",
            queues,
            "type",
            "veth",
            "peer",
            "name",
            Self::CLIENT,
            "numtxqueues",
            queues,
            "numrxqueues",
            queues,
        ]);
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            "fe80::547/64",
            "dev",
            Self::SERVER,
            "nodad",
        ]);
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            "2001:db8::547/64",
            "dev",
            Self::SERVER,
            "nodad",
        ]);
        for interface in [Self::SERVER, Self::CLIENT] {
            ip(&["-n", ns, "link", "set", interface, "up"]);
        }
        pair
    }

    /// Runs `body` on a thread inside the namespace (setns affects only the calling thread;
    /// threads it spawns inherit the namespace).
    pub fn run_in_namespace<T: Send>(&self, body: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.namespace);
        thread::scope(|scope| {
            let handle = scope.spawn(|| {
                let namespace = File::open(&path).expect("opening the namespace");
                // Safety: setns on a valid namespace fd changes only this thread's network
                // namespace; the thread ends with `body`.
                let rc = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", io::Error::last_os_error());
                body()
            });
            match handle.join() {
                Ok(value) => value,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.namespace])
            .status();
    }
}

/// The index of `interface` in this thread's namespace.
pub fn if_index(interface: &str) -> io::Result<u32> {
    let name = CString::new(interface).map_err(io::Error::other)?;
    // Safety: `name` is a valid NUL-terminated string for the duration of the call.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        index => Ok(index),
    }
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
