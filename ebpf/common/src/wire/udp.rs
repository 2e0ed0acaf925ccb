//! UDP datagrams (RFC 768) over IPv6.

use core::net::Ipv6Addr;

use super::{Error, Result, checksum, read_u16};

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

/// Byte ranges of the header.
pub mod field {
    use core::ops::Range;

    /// Source port.
    pub const SOURCE_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DESTINATION_PORT: Range<usize> = 2..4;
    /// Length of header and payload.
    pub const LENGTH: Range<usize> = 4..6;
    /// Checksum over the pseudo-header, header and payload.
    pub const CHECKSUM: Range<usize> = 6..8;
    /// The payload.
    pub const PAYLOAD: usize = 8;
}

/// A view of a UDP datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` after checking it: the header is there and the length field covers the
    /// header and stays inside the buffer. No accessor can panic then.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let bytes = buffer.as_ref();
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = usize::from(read_u16(bytes, field::LENGTH.start));
        if len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len > bytes.len() {
            return Err(Error::Truncated);
        }
        Ok(Packet { buffer })
    }

    /// The source port.
    pub fn source_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SOURCE_PORT.start)
    }

    /// The destination port.
    pub fn destination_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DESTINATION_PORT.start)
    }

    /// The length field: header and payload.
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// Whether the datagram has no payload.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) == HEADER_LEN
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Whether the checksum is right for a datagram from `source` to `destination`; a zero
    /// checksum is wrong over IPv6 (RFC 8200 §8.1).
    pub fn verify_checksum(&self, source: &Ipv6Addr, destination: &Ipv6Addr) -> bool {
        checksum::udp_is_valid(source, destination, self.datagram())
    }

    /// The payload: the length field's bytes after the header.
    pub fn payload(&self) -> &[u8] {
        &self.datagram()[field::PAYLOAD..]
    }

    /// Header and payload, as the length field says.
    fn datagram(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Swaps the source and destination ports.
    pub fn swap_ports(&mut self) {
        let bytes = self.buffer.as_mut();
        let source = [bytes[0], bytes[1]];
        bytes.copy_within(field::DESTINATION_PORT, field::SOURCE_PORT.start);
        bytes[field::DESTINATION_PORT].copy_from_slice(&source);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, checksum: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&checksum.to_be_bytes());
    }

    /// Computes and writes the checksum for a datagram from `source` to `destination`.
    pub fn fill_checksum(&mut self, source: &Ipv6Addr, destination: &Ipv6Addr) {
        self.set_checksum(0);
        let len = usize::from(self.len());
        let checksum = checksum::udp(source, destination, &self.buffer.as_ref()[..len]);
        self.set_checksum(checksum);
    }

    /// The payload, to write.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.len());
        &mut self.buffer.as_mut()[field::PAYLOAD..len]
    }
}

/// The ports of a datagram, to write its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    /// Source port.
    pub source_port: u16,
    /// Destination port.
    pub destination_port: u16,
}

impl Repr {
    /// Writes the header for `payload_len` bytes of payload to the start of `bytes`, checksum
    /// zero (see [`Packet::fill_checksum`]); returns the datagram's length.
    pub fn emit(&self, bytes: &mut [u8], payload_len: usize) -> Result<usize> {
        let len = HEADER_LEN + payload_len;
        let len_field = u16::try_from(len).map_err(|_| Error::Exhausted)?;
        let header = bytes.get_mut(..HEADER_LEN).ok_or(Error::Exhausted)?;
        header[field::SOURCE_PORT].copy_from_slice(&self.source_port.to_be_bytes());
        header[field::DESTINATION_PORT].copy_from_slice(&self.destination_port.to_be_bytes());
        header[field::LENGTH].copy_from_slice(&len_field.to_be_bytes());
        header[field::CHECKSUM].copy_from_slice(&[0, 0]);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_a_valid_checksum() {
        let source = "fe80::1".parse().unwrap();
        let destination = "ff02::1:2".parse().unwrap();
        let mut bytes = [0u8; 16];
        bytes[8..11].copy_from_slice(&[1, 2, 3]);
        let repr = Repr {
            source_port: 546,
            destination_port: 547,
        };
        assert_eq!(repr.emit(&mut bytes, 3), Ok(11));
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.fill_checksum(&source, &destination);
        assert_eq!(packet.checksum(), 0xfa09);
        assert!(packet.verify_checksum(&source, &destination));
        assert_eq!(packet.payload(), &[1, 2, 3]);
        packet.swap_ports();
        assert_eq!(
            (packet.source_port(), packet.destination_port()),
            (547, 546)
        );
        assert!(!packet.is_empty());
    }

    #[test]
    fn lengths_are_checked() {
        let mut bytes = [0u8; 12];
        bytes[4..6].copy_from_slice(&13u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&bytes[..]), Err(Error::Truncated));
        bytes[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&bytes[..]), Err(Error::Malformed));
        assert_eq!(Packet::new_checked(&bytes[..7]), Err(Error::Truncated));
        let repr = Repr {
            source_port: 1,
            destination_port: 2,
        };
        assert_eq!(repr.emit(&mut [0; 7], 0), Err(Error::Exhausted));
        assert_eq!(repr.emit(&mut [0; 8], 65_528), Err(Error::Exhausted));
    }
}
