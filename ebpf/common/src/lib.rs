//! Code shared by the xdhcp6 XDP program and userspace.
//!
//! The packet classifier ([`classify`]) decides which frames the XDP program steers to an AF_XDP
//! socket; the same function runs in the kernel, in the userspace datapath (to find the headers
//! again) and in host tests. The map names, sizes and the counter layout ([`Counters`]) are the
//! contract between the program and the loaders in `xdhcp6d` and `xdhcp6-bench`.
//!
//! [`wire`] holds the Ethernet, VLAN, IPv6 and UDP views and builders and the Internet
//! checksum, which the classifier takes its offsets and constants from.
//!
//! The crate is `no_std` and does no IO, as the XDP program needs; the userspace side of AF_XDP
//! and program loading is `xdhcp6-datapath`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "testing"))]
pub mod frames;

mod classify;
mod maps;

pub mod wire;

pub use classify::{FrameReader, Offsets, PassReason, Verdict, classify, classify_client};
pub use maps::{
    CLIENT_PROGRAM, COUNTERS_INDEX, COUNTERS_MAP, Counters, MAX_QUEUES, MAX_STEERED_FRAME_LEN,
    PROGRAM, XSK_MAP,
};
pub use wire::ethernet::{HEADER_LEN as ETHERNET_HEADER_LEN, TAG_LEN as VLAN_TAG_LEN, ethertype};
pub use wire::ipv6::HEADER_LEN as IPV6_HEADER_LEN;
pub use wire::udp::HEADER_LEN as UDP_HEADER_LEN;
pub use wire::{DHCPV6_CLIENT_PORT, DHCPV6_SERVER_PORT, IPPROTO_UDP, MAX_VLAN_TAGS};
