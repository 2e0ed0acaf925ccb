//! Network interfaces: index and name lookups, addresses, receive queues.
//!
//! [`InterfaceInfo`] is what a datapath needs to answer on an interface (index, MAC,
//! link-local and global addresses); [`interface_index`] and [`interface_name`] map between
//! names and indexes, and [`rx_queue_count`] says how many receive queues there are to bind.

use std::{
    ffi::{CStr, CString},
    io,
    mem::zeroed,
    net::Ipv6Addr,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    ptr,
};

use crate::socket::XskError;

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
    /// Every unicast IPv6 address of the interface when it was queried (link-local and
    /// global): what a frame may be addressed to.
    pub addresses: Vec<Ipv6Addr>,
    /// The interface's MTU (`/sys/class/net/NAME/mtu`): the largest IPv6 packet it sends and
    /// receives; `None` when it cannot be read.
    pub mtu: Option<u32>,
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
        let index = interface_index(name).map_err(|_| XskError::NoInterface(name.to_owned()))?;
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
        let unicast = addresses
            .ipv6
            .iter()
            .copied()
            .filter(|address| !address.is_multicast() && !address.is_unspecified())
            .collect();
        Ok(InterfaceInfo {
            name: name.to_owned(),
            index,
            mac,
            link_local,
            global,
            addresses: unicast,
            mtu: interface_mtu(name),
        })
    }
}

/// The MTU of `name` (`SIOCGIFMTU`, in the calling thread's network namespace).
pub fn interface_mtu(name: &str) -> Option<u32> {
    // Safety: all-zero is a valid `ifreq`.
    let mut request: libc::ifreq = unsafe { zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= request.ifr_name.len() {
        return None;
    }
    for (to, from) in request.ifr_name.iter_mut().zip(bytes) {
        *to = *from as libc::c_char;
    }
    // Safety: plain socket(2); the result is checked before it is wrapped.
    let raw = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return None;
    }
    // Safety: `raw` is a fresh descriptor owned by nothing else.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    // Safety: SIOCGIFMTU reads the name from `request` and writes `ifru_mtu`; it lives for the
    // call.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFMTU, &mut request) };
    if rc < 0 {
        return None;
    }
    // Safety: SIOCGIFMTU succeeded, so the union holds the MTU.
    u32::try_from(unsafe { request.ifr_ifru.ifru_mtu }).ok()
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

/// The index of the interface named `name` (in the calling thread's network namespace).
pub fn interface_index(name: &str) -> io::Result<u32> {
    let name = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name has a NUL"))?;
    // Safety: `name` is a valid NUL-terminated string for the duration of the call.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface {:?}", name.to_string_lossy()),
        )),
        index => Ok(index),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_mtu_is_read() {
        assert!(interface_mtu("lo").is_some_and(|mtu| mtu >= 1280));
        assert_eq!(interface_mtu("no-such-if0"), None);
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

    #[test]
    fn interface_names_and_indexes_agree_for_loopback() {
        let index = interface_index("lo").unwrap();
        assert_eq!(interface_name(index).as_deref(), Some("lo"));
        assert!(interface_index("no-such-if0").is_err());
        assert_eq!(interface_name(0), None);
    }
}
