//! The xdhcp6 DHCPv6 server appliance: datapaths, workers, journal, control plane.
#![forbid(unsafe_code)]

pub mod afxdp;
pub mod config;
pub mod events;
pub mod frame;
pub mod journal;
pub mod metrics;
pub mod reload;
pub mod runtime;
pub mod stats;
pub mod udp;
pub mod xdp;
