//! Ethernet II frames and their 802.1Q / 802.1ad tags.
//!
//! A tag sits where the EtherType would be: its TPID ([`ethertype::VLAN`], [`ethertype::QINQ`])
//! then its TCI, then the next EtherType or TPID. [`Frame`] reads and writes the MAC addresses
//! and the first EtherType; [`Tag`] is one tag as a value.

use super::{Error, Result, read_u16};

/// Length of an Ethernet II header (destination, source, EtherType).
pub const HEADER_LEN: usize = 14;
/// Length of one 802.1Q / 802.1ad tag (TPID and TCI).
pub const TAG_LEN: usize = 4;

/// A MAC address.
pub type Address = [u8; 6];

/// EtherType and TPID values.
pub mod ethertype {
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// IPv4 (only ever passed).
    pub const IPV4: u16 = 0x0800;
    /// 802.1Q customer tag (C-tag); also the outer tag of "double 802.1Q" QinQ.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service tag (S-tag).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ outer tag; recognised only to count it as an unsupported tag stack.
    pub const QINQ_LEGACY: u16 = 0x9100;
}

/// Byte ranges of the Ethernet header.
pub mod field {
    use core::ops::Range;

    /// Destination MAC address.
    pub const DESTINATION: Range<usize> = 0..6;
    /// Source MAC address.
    pub const SOURCE: Range<usize> = 6..12;
    /// EtherType, or the TPID of the first tag.
    pub const ETHERTYPE: Range<usize> = 12..14;
    /// The rest: tags or the network-layer packet.
    pub const PAYLOAD: usize = 14;
}

/// The multicast MAC address of an IPv6 multicast group (RFC 2464 §7): 33:33 and the group's
/// last 32 bits.
pub const fn multicast_address(group: &core::net::Ipv6Addr) -> Address {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// A view of an Ethernet II frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer` after checking that it holds the header; no accessor can panic then.
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Frame { buffer })
    }

    /// The destination MAC address.
    pub fn destination(&self) -> Address {
        address(&self.buffer.as_ref()[field::DESTINATION])
    }

    /// The source MAC address.
    pub fn source(&self) -> Address {
        address(&self.buffer.as_ref()[field::SOURCE])
    }

    /// The EtherType, or the TPID of the first tag.
    pub fn ethertype(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ETHERTYPE.start)
    }

    /// Everything after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC address.
    pub fn set_destination(&mut self, address: &Address) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(address);
    }

    /// Sets the source MAC address.
    pub fn set_source(&mut self, address: &Address) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(address);
    }

    /// Sets the EtherType (or the first tag's TPID).
    pub fn set_ethertype(&mut self, ethertype: u16) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&ethertype.to_be_bytes());
    }

    /// Swaps the destination and source addresses, then sets the source to `source`: the
    /// addresses of a frame turned around by `source`'s owner.
    pub fn turn_around(&mut self, source: &Address) {
        let destination = self.source();
        self.set_destination(&destination);
        self.set_source(source);
    }

    /// Everything after the header, to write.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

/// One VLAN tag: its TPID and its TCI (priority, drop eligibility and VLAN ID).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tag {
    /// [`ethertype::VLAN`] (C-tag) or [`ethertype::QINQ`] (S-tag).
    pub tpid: u16,
    /// Priority (3 bits), drop eligible (1 bit), VLAN ID (12 bits).
    pub tci: u16,
}

impl Tag {
    /// Reads the tag at the start of `bytes` (TPID, TCI).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < TAG_LEN {
            return Err(Error::Truncated);
        }
        Ok(Tag {
            tpid: read_u16(bytes, 0),
            tci: read_u16(bytes, 2),
        })
    }

    /// Writes the tag to the start of `bytes`.
    pub fn emit(&self, bytes: &mut [u8]) -> Result<()> {
        let bytes = bytes.get_mut(..TAG_LEN).ok_or(Error::Exhausted)?;
        bytes[..2].copy_from_slice(&self.tpid.to_be_bytes());
        bytes[2..].copy_from_slice(&self.tci.to_be_bytes());
        Ok(())
    }

    /// The VLAN ID, without the priority bits.
    pub const fn vlan_id(&self) -> u16 {
        self.tci & 0x0fff
    }
}

fn address(bytes: &[u8]) -> Address {
    let mut address = [0; 6];
    address.copy_from_slice(bytes);
    address
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_the_header() {
        let mut bytes = [0u8; 20];
        assert_eq!(Frame::new_checked(&bytes[..13]), Err(Error::Truncated));
        let mut frame = Frame::new_checked(&mut bytes[..]).unwrap();
        frame.set_destination(&[1, 2, 3, 4, 5, 6]);
        frame.set_source(&[7, 8, 9, 10, 11, 12]);
        frame.set_ethertype(ethertype::IPV6);
        frame.turn_around(&[0xaa; 6]);
        assert_eq!(frame.destination(), [7, 8, 9, 10, 11, 12]);
        assert_eq!(frame.source(), [0xaa; 6]);
        assert_eq!(frame.ethertype(), ethertype::IPV6);
        assert_eq!(frame.payload().len(), 6);
    }

    #[test]
    fn tags_round_trip_and_drop_priority_from_the_id() {
        let tag = Tag {
            tpid: ethertype::QINQ,
            tci: 0xb065,
        };
        let mut bytes = [0u8; 4];
        tag.emit(&mut bytes).unwrap();
        assert_eq!(bytes, [0x88, 0xa8, 0xb0, 0x65]);
        assert_eq!(Tag::parse(&bytes), Ok(tag));
        assert_eq!(tag.vlan_id(), 101);
        assert_eq!(Tag::parse(&bytes[..3]), Err(Error::Truncated));
        assert_eq!(tag.emit(&mut [0; 3]), Err(Error::Exhausted));
    }

    #[test]
    fn multicast_addresses_follow_rfc_2464() {
        let group = "ff02::1:2".parse().unwrap();
        assert_eq!(multicast_address(&group), [0x33, 0x33, 0, 1, 0, 2]);
    }
}
