//! Ethernet, 802.1Q / 802.1ad, IPv6 and UDP: zero-copy views, builders and the Internet
//! checksum, written once for the server, the load generator, the tests and (its constants and
//! field offsets) the XDP classifier.
//!
//! Each protocol module follows smoltcp's `wire`: a `Packet<T: AsRef<[u8]>>` view whose
//! `new_checked` is the only door for untrusted bytes (after it no accessor can panic), a
//! `mod field` of byte ranges, and a `Repr` of the header's values whose `emit` writes into a
//! caller's buffer and returns [`Error::Exhausted`] when it is too short. [`Headers`] is the
//! whole chain of a DHCPv6 frame (Ethernet, up to two VLAN tags, IPv6, UDP) as values: parsed
//! from a received frame, or written in front of a payload with the UDP checksum.

pub mod checksum;
pub mod ethernet;
mod headers;
pub mod ipv6;
pub mod udp;

pub use headers::{Headers, MAX_HEADERS_LEN, MAX_VLAN_TAGS, Tags};

/// IANA protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

// RFC 9915 §7.2, in substance:
// Clients listen for DHCP messages on UDP port 546. Servers and relay agents listen for DHCP
// messages on UDP port 547.
/// UDP port that servers and relay agents listen on.
pub const DHCPV6_SERVER_PORT: u16 = 547;
/// UDP port that clients listen on.
pub const DHCPV6_CLIENT_PORT: u16 = 546;

/// Why bytes could not be read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The bytes end before a header or a length field says.
    Truncated,
    /// A field has a value the protocol does not allow (IP version, a length below the header).
    Malformed,
    /// Well-formed, but not what this module handles (another EtherType or upper layer, more
    /// tags than [`MAX_VLAN_TAGS`]).
    Unsupported,
    /// The buffer to write into is too short, or a length does not fit its field.
    Exhausted,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated",
            Error::Malformed => "malformed header",
            Error::Unsupported => "unsupported protocol",
            Error::Exhausted => "buffer too short",
        })
    }
}

impl core::error::Error for Error {}

/// Result of the wire module.
pub type Result<T> = core::result::Result<T, Error>;

/// The big-endian `u16` at `offset`; callers have checked the length.
#[inline(always)]
fn read_u16(bytes: &[u8], offset: usize) -> u16 {
    u16::from_be_bytes([bytes[offset], bytes[offset + 1]])
}
