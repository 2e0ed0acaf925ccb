//! The sans-IO DHCPv6 server engine of xdhcp6.
//!
//! The engine answers DHCPv6 messages without touching sockets, threads or the clock:
//! every datapath and every test drives it through one entry point. See
//! `ARCHITECTURE.md` for its place in the appliance. The allocators, the lease table and the
//! message handling arrive with the engine work; this crate currently re-exports the wire
//! format it is built on.

pub use xdhcp6_proto as proto;
