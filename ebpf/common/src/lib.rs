//! Code shared by the xdhcp6 XDP program and userspace.
//!
//! The packet classifier ([`classify`]) decides which frames the XDP program steers to an AF_XDP
//! socket; the same function runs in the kernel, in the userspace datapath (to find the headers
//! again) and in host tests. The map names, sizes and the counter layout ([`Counters`]) are the
//! contract between the program and the loaders in `xdhcp6d` and `xdhcp6-bench`.
//!
//! The crate is `no_std` and does no IO, as the XDP program needs; the userspace side of AF_XDP
//! and program loading is `xdhcp6-datapath`.
#![cfg_attr(not(test), no_std)]

#[cfg(any(test, feature = "testing"))]
pub mod frames;

mod classify;
mod maps;

pub use classify::{
    DHCPV6_CLIENT_PORT, DHCPV6_SERVER_PORT, ETHERNET_HEADER_LEN, FrameReader, IPPROTO_UDP,
    IPV6_HEADER_LEN, MAX_VLAN_TAGS, Offsets, PassReason, UDP_HEADER_LEN, VLAN_TAG_LEN, Verdict,
    classify, classify_client, ethertype,
};
pub use maps::{
    CLIENT_PROGRAM, COUNTERS_INDEX, COUNTERS_MAP, Counters, MAX_QUEUES, PROGRAM, XSK_MAP,
};
