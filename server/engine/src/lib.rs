//! The sans-IO DHCPv6 server engine of xdhcp6.
//!
//! The engine answers DHCPv6 messages without touching sockets, threads or the clock: every
//! datapath and every test drives [`Engine::handle`], and time is passed in. Configuration is
//! validated once into an immutable [`config::Config`]; addresses and prefixes come from
//! split-prefix hashing ([`alloc`]) over the lock-sharded [`table::LeaseTable`]. See
//! `ARCHITECTURE.md` for its place in the appliance.

pub mod alloc;
pub mod config;
pub mod engine;
pub mod prefix;
pub mod table;

pub use engine::{Context, Destination, DropReason, Engine, EngineError, Outcome, received_type};
pub use xdhcp6_proto as proto;
