//! The header chain of a DHCPv6 frame: Ethernet, up to two VLAN tags, IPv6, UDP.

use core::ops::Range;

use super::ethernet::{self, Address, Tag, ethertype};
use super::{Error, IPPROTO_UDP, Result, ipv6, read_u16, udp};

/// Most VLAN tags a frame may carry (802.1ad S-tag and C-tag, or double 802.1Q).
pub const MAX_VLAN_TAGS: usize = 2;

/// Longest header chain: Ethernet, two tags, IPv6, UDP.
pub const MAX_HEADERS_LEN: usize =
    ethernet::HEADER_LEN + MAX_VLAN_TAGS * ethernet::TAG_LEN + ipv6::HEADER_LEN + udp::HEADER_LEN;

/// Up to [`MAX_VLAN_TAGS`] VLAN tags, outermost first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tags {
    tags: [Tag; MAX_VLAN_TAGS],
    len: u8,
}

impl Tags {
    /// Tags from a list, outermost first; [`Error::Unsupported`] past [`MAX_VLAN_TAGS`].
    pub fn from_slice(tags: &[Tag]) -> Result<Self> {
        let mut all = Tags::default();
        for tag in tags {
            all.push(*tag)?;
        }
        Ok(all)
    }

    /// Adds an inner tag.
    pub fn push(&mut self, tag: Tag) -> Result<()> {
        let slot = self
            .tags
            .get_mut(usize::from(self.len))
            .ok_or(Error::Unsupported)?;
        *slot = tag;
        self.len += 1;
        Ok(())
    }

    /// The tags, outermost first.
    pub fn as_slice(&self) -> &[Tag] {
        &self.tags[..usize::from(self.len)]
    }

    /// The number of tags.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether the frame is untagged.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The innermost tag, the one that selects the link.
    pub fn innermost(&self) -> Option<&Tag> {
        self.as_slice().last()
    }
}

/// The headers of an Ethernet / VLAN / IPv6 / UDP frame, as values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headers {
    /// Destination MAC address.
    pub destination_mac: Address,
    /// Source MAC address.
    pub source_mac: Address,
    /// VLAN tags, outermost first.
    pub tags: Tags,
    /// The IPv6 header (its payload length is the UDP length; [`Headers::emit`] sets it).
    pub ipv6: ipv6::Repr,
    /// The UDP ports.
    pub udp: udp::Repr,
}

impl Headers {
    /// Parses the headers of `frame` and checks its lengths: the IPv6 payload length stays
    /// inside the frame (Ethernet padding after it is allowed) and is exactly the UDP datagram
    /// (no extension headers). Returns the headers and where the UDP payload lies. The checksum
    /// is not checked (see [`Headers::verify_checksum`]).
    pub fn parse(frame: &[u8]) -> Result<(Self, Range<usize>)> {
        let ethernet = ethernet::Frame::new_checked(frame)?;
        let mut next = ethernet.ethertype();
        let mut offset = ethernet::field::ETHERTYPE.start;
        let mut tags = Tags::default();
        while next == ethertype::VLAN || next == ethertype::QINQ {
            let tag = Tag::parse(frame.get(offset..).ok_or(Error::Truncated)?)?;
            tags.push(tag)?;
            offset += ethernet::TAG_LEN;
            next = read_u16(frame.get(offset..offset + 2).ok_or(Error::Truncated)?, 0);
        }
        if next != ethertype::IPV6 {
            return Err(Error::Unsupported);
        }
        let l3 = offset + 2;
        let packet = ipv6::Packet::new_checked(frame.get(l3..).ok_or(Error::Truncated)?)?;
        if packet.next_header() != IPPROTO_UDP {
            return Err(Error::Unsupported);
        }
        // The length fields are compared before the datagram is taken from the IPv6 payload,
        // so that a UDP length that disagrees reads as malformed, not truncated.
        let l4 = l3 + ipv6::HEADER_LEN;
        let header = frame
            .get(l4..l4 + udp::HEADER_LEN)
            .ok_or(Error::Truncated)?;
        let udp_len = read_u16(header, udp::field::LENGTH.start);
        // No extension headers: the UDP datagram is the whole IPv6 payload.
        if udp_len != packet.payload_len() || usize::from(udp_len) < udp::HEADER_LEN {
            return Err(Error::Malformed);
        }
        let datagram = udp::Packet::new_checked(packet.payload())?;
        let headers = Headers {
            destination_mac: ethernet.destination(),
            source_mac: ethernet.source(),
            tags,
            ipv6: ipv6::Repr::parse(&packet),
            udp: udp::Repr {
                source_port: datagram.source_port(),
                destination_port: datagram.destination_port(),
            },
        };
        let payload = headers.len()..l4 + usize::from(datagram.len());
        Ok((headers, payload))
    }

    /// Length of the headers: where the UDP payload starts.
    pub fn len(&self) -> usize {
        self.l3() + ipv6::HEADER_LEN + udp::HEADER_LEN
    }

    /// Whether there are no headers: never, there is at least Ethernet, IPv6 and UDP.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Offset of the IPv6 header.
    pub fn l3(&self) -> usize {
        ethernet::HEADER_LEN + self.tags.len() * ethernet::TAG_LEN
    }

    /// Writes the headers in front of the `payload_len` bytes already at
    /// `frame[self.len()..]`: Ethernet, tags, IPv6 (payload length set) and UDP with its
    /// checksum. Returns the frame's length; [`Error::Exhausted`] when it does not fit `frame`
    /// or a UDP datagram.
    pub fn emit(&self, frame: &mut [u8], payload_len: usize) -> Result<usize> {
        let l3 = self.l3();
        let l4 = l3 + ipv6::HEADER_LEN;
        let total = self
            .len()
            .checked_add(payload_len)
            .ok_or(Error::Exhausted)?;
        let frame = frame.get_mut(..total).ok_or(Error::Exhausted)?;
        let udp_len = self.udp.emit(&mut frame[l4..], payload_len)?;
        let mut ethernet = ethernet::Frame::new_checked(&mut *frame)?;
        ethernet.set_destination(&self.destination_mac);
        ethernet.set_source(&self.source_mac);
        let mut offset = ethernet::field::ETHERTYPE.start;
        for tag in self.tags.as_slice() {
            tag.emit(&mut frame[offset..])?;
            offset += ethernet::TAG_LEN;
        }
        frame[offset..offset + 2].copy_from_slice(&ethertype::IPV6.to_be_bytes());
        let ipv6 = ipv6::Repr {
            next_header: IPPROTO_UDP,
            // `udp_len` fits 16 bits: `udp::Repr::emit` checked it.
            payload_len: udp_len as u16,
            ..self.ipv6
        };
        ipv6.emit(&mut frame[l3..])?;
        let mut datagram = udp::Packet::new_checked(&mut frame[l4..])?;
        datagram.fill_checksum(&self.ipv6.source, &self.ipv6.destination);
        Ok(total)
    }

    /// Whether the UDP checksum of `frame`, parsed into these headers, is right.
    pub fn verify_checksum(&self, frame: &[u8]) -> bool {
        self.datagram(frame).is_some_and(|datagram| {
            super::checksum::udp_is_valid(&self.ipv6.source, &self.ipv6.destination, datagram)
        })
    }

    /// Whether the UDP checksum of `frame` (the frame these headers were parsed from) was
    /// left to offload: the field holds the pseudo-header sum only
    /// ([`super::checksum::udp_is_partial`]).
    pub fn checksum_is_partial(&self, frame: &[u8]) -> bool {
        self.datagram(frame).is_some_and(|datagram| {
            super::checksum::udp_is_partial(&self.ipv6.source, &self.ipv6.destination, datagram)
        })
    }

    /// The UDP datagram (header and payload) of `frame`.
    fn datagram<'f>(&self, frame: &'f [u8]) -> Option<&'f [u8]> {
        let l4 = self.l3() + ipv6::HEADER_LEN;
        let end = l4 + usize::from(self.ipv6.payload_len);
        frame.get(l4..end)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;

    use super::*;

    fn headers(tags: &[Tag]) -> Headers {
        Headers {
            destination_mac: [0x33, 0x33, 0, 1, 0, 2],
            source_mac: [2, 0, 0x5e, 0x10, 0, 1],
            tags: Tags::from_slice(tags).unwrap(),
            ipv6: ipv6::Repr {
                source: "fe80::200:5eff:fe10:1".parse().unwrap(),
                destination: "ff02::1:2".parse().unwrap(),
                next_header: IPPROTO_UDP,
                hop_limit: 1,
                payload_len: 0,
            },
            udp: udp::Repr {
                source_port: 546,
                destination_port: 547,
            },
        }
    }

    const S_TAG: Tag = Tag {
        tpid: ethertype::QINQ,
        tci: 100,
    };
    const C_TAG: Tag = Tag {
        tpid: ethertype::VLAN,
        tci: 0xb065,
    };

    #[test]
    fn emit_then_parse_round_trips() {
        for tags in [&[][..], &[C_TAG], &[S_TAG, C_TAG]] {
            let mut frame = vec![0u8; 128];
            let written = headers(tags);
            let at = written.len();
            frame[at..at + 4].copy_from_slice(&[1, 0x12, 0x34, 0x56]);
            let len = written.emit(&mut frame, 4).unwrap();
            assert_eq!(len, 14 + 4 * tags.len() + 48 + 4);
            // Ethernet padding after the datagram is allowed.
            let (parsed, payload) = Headers::parse(&frame[..len + 6]).unwrap();
            assert_eq!(payload, at..at + 4);
            assert_eq!(parsed.tags.as_slice(), tags);
            assert_eq!(parsed.ipv6.payload_len, 12);
            assert_eq!(
                Headers {
                    ipv6: ipv6::Repr {
                        payload_len: 0,
                        ..parsed.ipv6
                    },
                    ..parsed
                },
                written
            );
            assert!(parsed.verify_checksum(&frame[..len]));
            frame[len - 1] ^= 1;
            assert!(!parsed.verify_checksum(&frame[..len]));
        }
    }

    #[test]
    fn parse_refuses_what_it_does_not_handle() {
        let mut frame = vec![0u8; 128];
        let len = headers(&[S_TAG, C_TAG]).emit(&mut frame, 4).unwrap();
        for cut in 0..len {
            assert!(Headers::parse(&frame[..cut]).is_err(), "cut at {cut}");
        }
        let mut three = frame.clone();
        three.splice(12..12, [0x81, 0, 0, 7]);
        assert_eq!(Headers::parse(&three), Err(Error::Unsupported));
        let mut not_udp = frame.clone();
        not_udp[22 + 6] = 58;
        assert_eq!(Headers::parse(&not_udp), Err(Error::Unsupported));
        let mut short_udp = frame.clone();
        short_udp[22 + 40 + 5] -= 1;
        assert_eq!(Headers::parse(&short_udp), Err(Error::Malformed));
    }

    #[test]
    fn emit_refuses_short_buffers_and_huge_payloads() {
        let headers = headers(&[]);
        let mut frame = [0u8; 100];
        assert_eq!(headers.emit(&mut frame, 39), Err(Error::Exhausted));
        assert_eq!(headers.emit(&mut frame, 38), Ok(100));
        let mut big = vec![0u8; 70_000];
        assert_eq!(headers.emit(&mut big, 65_530), Err(Error::Exhausted));
    }
}
