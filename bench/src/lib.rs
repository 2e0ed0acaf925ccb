//! The xdhcp6 load generator.
//!
//! Sans-IO scenarios ([`scenario::Scenario`]: [`generator::Generator`] for the flows,
//! [`hold::Hold`] for clients that keep their leases) over one message layer ([`message`]) and
//! one client population ([`population`]), driven by nanosecond timestamps passed in, so that
//! they are tested without sockets; one driver loop ([`runner`]) runs any of them over UDP
//! sockets ([`transport`]) or AF_XDP ([`afxdp`], framing in [`frame`]). [`reflect`] is the AF_XDP bounce
//! server of `xdhcp6-reflect`. See README.md for the command line.
#![forbid(unsafe_code)]

pub mod afxdp;
pub mod avalanche;
pub mod bulk_leasequery;
pub mod cpu;
pub mod frame;
pub mod generator;
pub mod hold;
pub mod leasequery;
pub mod message;
pub mod multiqueue;
pub mod pacing;
pub mod population;
pub mod reflect;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod signal;
pub mod stats;
pub mod transport;
