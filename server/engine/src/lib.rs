//! The sans-IO DHCPv6 server engine of xdhcp6.
//!
//! The engine answers DHCPv6 messages without touching sockets, threads, files or the clock:
//! every datapath and every test drives [`Engine::handle`], and time is passed in.
//! Configuration is validated once from text into an immutable [`config::Config`] (reading
//! the file and keeping the server DUID file are the caller's); addresses and prefixes come
//! from split-prefix hashing ([`alloc`]) over the lock-sharded [`table::LeaseTable`]. See
//! `docs/architecture.md` for its place in the appliance.
//!
//! Embedding it takes a configuration, a table and a loop that hands it messages:
//!
//! ```
//! use std::sync::Arc;
//!
//! use xdhcp6_engine::proto::{MessageType, MessageWriter};
//! use xdhcp6_engine::{Arrival, Context, Engine, Outcome, alloc::SaltKey, config::Config, table::LeaseTable};
//!
//! let text = r#"
//!     [server]
//!     duid = "00:01:00:01:2e:00:00:01:02:00:00:00:00:0a"
//!     [[link]]
//!     name = "access"
//!     interfaces = ["eth1"]
//!     [[link.pool]]
//!     prefix = "2001:db8:1::/64"
//! "#;
//! let config = Arc::new(Config::from_toml_str(text, "example.toml")?);
//! let table = LeaseTable::with_capacity(1024, SaltKey::from_salt(&config.server.salt));
//! let engine = Engine::new(Arc::clone(&config), Arc::new(table))?;
//!
//! // A client's Solicit for one address (IA_NA), as it arrives in a UDP datagram.
//! let mut solicit = [0; 64];
//! let mut w = MessageWriter::client(&mut solicit, MessageType::Solicit, 0x00c0ffee)?;
//! w.client_id(&[0, 3, 0, 1, 0x02, 0, 0, 0, 0, 0x01])?;
//! let ia = w.begin_ia_na(1, 0, 0)?;
//! w.end_option(ia)?;
//! let len = w.finish()?;
//!
//! // The datapath says which link the message came from, at which kind of address, and when.
//! let cx = Context {
//!     link: engine.link_for_interface("eth1", None),
//!     arrival: Arrival::Multicast,
//!     now: 1_750_000_000,
//! };
//! let (mut reply, mut events) = ([0; 1500], Vec::new());
//! let outcome = engine.handle(&solicit[..len], &cx, &mut reply, &mut events);
//! assert!(matches!(outcome, Outcome::Reply { sent: MessageType::Advertise, .. }));
//! assert!(events.is_empty(), "an Advertise reserves nothing");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Public enums that may grow are `#[non_exhaustive]`. [`Outcome`] and [`Destination`], and
//! the lease data of [`table`] ([`table::IaKind`], [`table::LeaseState`],
//! [`table::EventKind`]), are not: a datapath must handle every outcome, and a journal must
//! encode every lease state, so a new variant should fail to compile there.

// Only the two table modules that lay out memory may use `unsafe` (docs/architecture.md).
#![deny(unsafe_code)]

pub mod alloc;
pub mod config;
pub mod engine;
pub mod fqdn;
pub mod hex;
pub mod prefix;
pub mod table;
#[cfg(feature = "testing")]
pub mod testing;

pub use engine::{
    Arrival, BatchItem, Context, Destination, DropReason, Engine, EngineError, LeasequeryResult,
    Outcome, Peer, PoolUsage, ReconfigureError, ReconfigureKeys, ReconfigureResult,
    ReconfigureSent, ReconfigureType, Refusal, SECRET_LEN, received_type, verify_reconfigure,
};
pub use xdhcp6_proto as proto;
