//! IPv6 fixed headers (RFC 8200 §3).

use core::net::Ipv6Addr;

use super::{Error, Result, read_u16};

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;

/// Byte ranges and offsets of the fixed header.
pub mod field {
    use core::ops::Range;

    /// Version (4 bits), traffic class (8), flow label (20).
    pub const VERSION_CLASS_FLOW: Range<usize> = 0..4;
    /// Payload length: everything after the fixed header.
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    /// Next header: the upper-layer protocol or the first extension header.
    pub const NEXT_HEADER: usize = 6;
    /// Hop limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SOURCE: Range<usize> = 8..24;
    /// Destination address.
    pub const DESTINATION: Range<usize> = 24..40;
    /// The payload.
    pub const PAYLOAD: usize = 40;
}

/// Whether `next_header` is one of IANA's "IPv6 Extension Header Types" (RFC 8200 §4 and
/// RFC 7045), rather than an upper-layer protocol.
#[inline(always)]
pub const fn is_extension_header(next_header: u8) -> bool {
    matches!(
        next_header,
        0 // hop-by-hop options
        | 43 // routing
        | 44 // fragment
        | 50 // ESP
        | 51 // AH
        | 60 // destination options
        | 135 // mobility
        | 139 // HIP
        | 140 // shim6
        | 253 | 254 // experimentation and testing
    )
}

/// A view of an IPv6 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` after checking it: the fixed header is there, the version is 6 and the
    /// payload length stays inside the buffer (bytes after it, Ethernet padding, are allowed).
    /// No accessor can panic then.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let bytes = buffer.as_ref();
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if bytes[0] >> 4 != 6 {
            return Err(Error::Malformed);
        }
        let packet = Packet { buffer };
        if HEADER_LEN + usize::from(packet.payload_len()) > packet.buffer.as_ref().len() {
            return Err(Error::Truncated);
        }
        Ok(packet)
    }

    /// The payload length field.
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PAYLOAD_LEN.start)
    }

    /// The next header field.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// The hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// The source address.
    pub fn source(&self) -> Ipv6Addr {
        address(&self.buffer.as_ref()[field::SOURCE])
    }

    /// The destination address.
    pub fn destination(&self) -> Ipv6Addr {
        address(&self.buffer.as_ref()[field::DESTINATION])
    }

    /// The payload: the payload length's bytes after the header.
    pub fn payload(&self) -> &[u8] {
        let end = field::PAYLOAD + usize::from(self.payload_len());
        &self.buffer.as_ref()[field::PAYLOAD..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source address.
    pub fn set_source(&mut self, address: &Ipv6Addr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&address.octets());
    }

    /// Sets the destination address.
    pub fn set_destination(&mut self, address: &Ipv6Addr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&address.octets());
    }

    /// The payload, to write.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = field::PAYLOAD + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[field::PAYLOAD..end]
    }
}

/// The fields of a fixed header, to write one (traffic class and flow label zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub source: Ipv6Addr,
    /// Destination address.
    pub destination: Ipv6Addr,
    /// Next header.
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Payload length.
    pub payload_len: u16,
}

impl Repr {
    /// Reads the fields of a checked packet.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Self {
        Repr {
            source: packet.source(),
            destination: packet.destination(),
            next_header: packet.next_header(),
            hop_limit: packet.hop_limit(),
            payload_len: packet.payload_len(),
        }
    }

    /// Writes the fixed header to the start of `bytes`.
    pub fn emit(&self, bytes: &mut [u8]) -> Result<()> {
        let header = bytes.get_mut(..HEADER_LEN).ok_or(Error::Exhausted)?;
        // Version 6, traffic class 0, flow label 0.
        header[field::VERSION_CLASS_FLOW].copy_from_slice(&[0x60, 0, 0, 0]);
        header[field::PAYLOAD_LEN].copy_from_slice(&self.payload_len.to_be_bytes());
        header[field::NEXT_HEADER] = self.next_header;
        header[field::HOP_LIMIT] = self.hop_limit;
        header[field::SOURCE].copy_from_slice(&self.source.octets());
        header[field::DESTINATION].copy_from_slice(&self.destination.octets());
        Ok(())
    }
}

fn address(bytes: &[u8]) -> Ipv6Addr {
    let mut octets = [0; 16];
    octets.copy_from_slice(bytes);
    Ipv6Addr::from(octets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr() -> Repr {
        Repr {
            source: "fe80::1".parse().unwrap(),
            destination: "ff02::1:2".parse().unwrap(),
            next_header: super::super::IPPROTO_UDP,
            hop_limit: 1,
            payload_len: 4,
        }
    }

    #[test]
    fn round_trips_and_checks_lengths() {
        let mut bytes = [0u8; 46];
        repr().emit(&mut bytes).unwrap();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet), repr());
        assert_eq!(
            packet.payload().len(),
            4,
            "padding after the payload is not payload"
        );
        assert_eq!(Packet::new_checked(&bytes[..43]), Err(Error::Truncated));
        assert_eq!(Packet::new_checked(&bytes[..39]), Err(Error::Truncated));
        bytes[0] = 0x40;
        assert_eq!(Packet::new_checked(&bytes[..]), Err(Error::Malformed));
        assert_eq!(repr().emit(&mut [0; 39]), Err(Error::Exhausted));
    }

    #[test]
    fn extension_headers_are_told_from_upper_layers() {
        for next_header in [0, 43, 44, 60] {
            assert!(is_extension_header(next_header));
        }
        for next_header in [6, 17, 58, 59] {
            assert!(!is_extension_header(next_header));
        }
    }
}
