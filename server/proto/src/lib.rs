//! DHCPv6 wire format: zero-copy views over `&[u8]` and a writer into `&mut [u8]`.
//!
//! Untrusted bytes enter through one door, [`Packet::parse`] (or the `new_checked`
//! constructors); after that no accessor can panic. Options are read with the borrowing
//! [`Options`] iterator, which checks each option's length when it yields it, so typed
//! views never index past their data. Nested options and relay chains are iterators over
//! sub-slices; nothing here recurses on input. [`MessageWriter`] encodes into a caller's
//! buffer, back-patches option lengths and returns [`WriteError::BufferFull`] when full.
//!
//! The library uses `core` only: no allocation, no `unsafe`.
//!
//! ```
//! use xdhcp6_proto::{DhcpOption, MessageType, MessageWriter, OptionCode, Packet};
//!
//! // A client's Solicit: the client writes it with the same writer.
//! let mut buf = [0u8; 128];
//! let mut w = MessageWriter::client(&mut buf, MessageType::Solicit, 0x00c0_ffee)?;
//! w.client_id(&[0, 3, 0, 1, 2, 0, 0, 0, 0, 1])?;
//! w.ia_na(1, 0, 0, |_| Ok(()))?;
//! let n = w.finish()?;
//!
//! // The server's view: the header first (cheap rejects), then the options it needs.
//! let Packet::Client(msg) = Packet::parse(&buf[..n])? else { unreachable!() };
//! assert_eq!(msg.msg_type(), MessageType::Solicit);
//! let Some(DhcpOption::ClientId(duid)) = msg.options().find(OptionCode::ClientId)? else {
//!     unreachable!()
//! };
//!
//! // The Advertise, into the server's reply buffer.
//! let mut out = [0u8; 256];
//! let mut w = MessageWriter::client(&mut out, MessageType::Advertise, msg.transaction_id())?;
//! w.client_id(duid.as_bytes())?;
//! w.server_id(&[0, 2, 0, 0, 0x0d, 0xe9, 1])?;
//! w.ia_na(1, 1800, 2880, |w| w.ia_address("2001:db8::7".parse().unwrap(), 3600, 7200))?;
//! w.preference(255)?;
//! let len = w.finish()?;
//! assert_eq!(Packet::parse(&out[..len])?.msg_type(), MessageType::Advertise);
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

mod codes;
mod duid;
mod error;
mod message;
mod name;
mod options;
mod writer;

pub use codes::{DuidType, MessageType, OptionCode, QueryType, StatusCode};
pub use duid::{Duid, DuidKind};
pub use error::{ParseError, WriteError};
pub use message::{Message, Packet, RelayChain, RelayHops, RelayMessage};
pub use name::{DnsName, DomainList, DomainListIter, Labels};
pub use options::{
    AddressList, ArchTypes, Auth, DhcpOption, IaAddress, IaNa, IaPd, IaPrefix, IaTa, LqQuery,
    NtpServer, NtpSuboption, NtpSuboptions, OpaqueList, OpaqueListIter, Options, Oro, RawOption,
    RawOptions, VendorSubOptions,
};
pub use writer::{MAX_OPTION_DEPTH, MessageWriter, OptionMark};

/// The most relay hops [`RelayChain`] walks before it gives up with [`ParseError::RelayTooDeep`].
///
/// RFC 9915 §7.6 sets HOP_COUNT_LIMIT to 8; we accept more because the hop-count field is the
/// relays' business, but never an unbounded chain.
pub const MAX_RELAY_HOPS: usize = 32;

/// UDP port servers and relays listen on (RFC 9915 §7.2).
pub const SERVER_PORT: u16 = 547;

/// UDP port clients listen on (RFC 9915 §7.2).
pub const CLIENT_PORT: u16 = 546;
