//! The xdhcp6 DHCPv6 server appliance: datapaths, workers, journal, control plane.
#![forbid(unsafe_code)]

pub mod afxdp;
pub mod bulk_leasequery;
pub mod check;
pub mod config;
pub mod control;
pub mod ctl;
pub mod ddns;
pub mod delay;
pub mod events;
pub mod frame;
pub mod generate;
pub mod handoff;
pub mod journal;
pub mod kea;
pub mod logging;
pub mod metrics;
pub mod placement;
pub mod query;
pub mod reconfigure;
pub mod reload;
pub mod runtime;
pub mod service;
pub mod stats;
pub mod udp;
pub mod xdp;
