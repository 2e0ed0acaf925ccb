//! The xdhcp6 DHCPv6 server appliance.
//!
//! For now this holds the XDP steering loader ([`xdp`]); the datapaths, workers, journal and
//! control plane join it here.

pub mod xdp;
