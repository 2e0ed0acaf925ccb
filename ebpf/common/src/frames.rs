//! Hand-built Ethernet frames for tests (feature `testing`).
//!
//! ```
//! use xdhcp6_common::{classify, ethertype, frames::FrameBuilder, IPPROTO_UDP, Verdict};
//!
//! let frame = FrameBuilder::with_tags(&[ethertype::QINQ, ethertype::VLAN])
//!     .ipv6(IPPROTO_UDP)
//!     .udp(546, 547, &[1, 0, 0, 1]);
//! assert!(matches!(classify(frame.bytes()), Verdict::Steer(_)));
//! ```

use core::net::Ipv6Addr;

use crate::wire::{
    ethernet::{self, Tag, ethertype},
    ipv6, udp,
};

/// Largest frame the builder makes.
pub const MAX_FRAME_LEN: usize = 256;

/// Destination MAC of the frames: 33:33:00:01:00:02 (ff02::1:2, All_DHCP_Relay_Agents_and_Servers).
pub const DESTINATION_MAC: [u8; 6] = [0x33, 0x33, 0x00, 0x01, 0x00, 0x02];
/// Source MAC of the frames (locally administered).
pub const SOURCE_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
/// Source address: fe80::200:5eff:fe10:1.
pub const SOURCE_ADDRESS: [u8; 16] = [
    0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x00, 0x5e, 0xff, 0xfe, 0x10, 0x00, 0x01,
];
/// Destination address: ff02::1:2.
pub const DESTINATION_ADDRESS: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2];

/// A finished frame.
#[derive(Clone)]
pub struct Frame {
    buf: [u8; MAX_FRAME_LEN],
    len: usize,
}

impl Frame {
    /// The frame's bytes, from the destination MAC address on.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The frame's bytes, to corrupt a field.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }
}

impl core::fmt::Debug for Frame {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Frame(")?;
        for byte in self.bytes() {
            write!(f, "{byte:02x}")?;
        }
        write!(f, ")")
    }
}

/// Builds a frame header by header; lengths and the UDP checksum are filled in at the end.
///
/// Panics when a frame outgrows [`MAX_FRAME_LEN`]: it is for tests only.
pub struct FrameBuilder {
    frame: Frame,
    ipv6: Option<usize>,
}

impl FrameBuilder {
    /// Starts a frame with the MAC addresses and `tags` (TPIDs, outermost first; VLAN IDs
    /// 100, 101, ...). The next call writes the EtherType.
    pub fn with_tags(tags: &[u16]) -> Self {
        let mut builder = FrameBuilder {
            frame: Frame {
                buf: [0; MAX_FRAME_LEN],
                len: 0,
            },
            ipv6: None,
        };
        builder.push(&DESTINATION_MAC);
        builder.push(&SOURCE_MAC);
        for (i, tpid) in tags.iter().enumerate() {
            let mut bytes = [0; ethernet::TAG_LEN];
            let tag = Tag {
                tpid: *tpid,
                tci: 100 + i as u16,
            };
            tag.emit(&mut bytes).expect("a tag fits its own length");
            builder.push(&bytes);
        }
        builder
    }

    /// Writes `ethertype`; what follows is up to the caller.
    pub fn ethertype(mut self, ethertype: u16) -> Self {
        self.push(&ethertype.to_be_bytes());
        self
    }

    /// Writes EtherType IPv6 and an IPv6 header (fe80::... to ff02::1:2, hop limit 1).
    pub fn ipv6(mut self, next_header: u8) -> Self {
        self = self.ethertype(ethertype::IPV6);
        self.ipv6 = Some(self.frame.len);
        let mut header = [0; ipv6::HEADER_LEN];
        let repr = ipv6::Repr {
            source: Ipv6Addr::from(SOURCE_ADDRESS),
            destination: Ipv6Addr::from(DESTINATION_ADDRESS),
            next_header,
            hop_limit: 1,
            // Filled in by `finish`.
            payload_len: 0,
        };
        repr.emit(&mut header)
            .expect("a header fits its own length");
        self.push(&header);
        self
    }

    /// Appends an 8-byte options-style extension header (hop-by-hop, destination, ...) padded
    /// with PadN.
    pub fn extension(self, next_header: u8) -> Self {
        self.raw(&[next_header, 0, 1, 4, 0, 0, 0, 0])
    }

    /// Appends raw bytes.
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.push(bytes);
        self
    }

    /// Appends a UDP header and `payload`, and finishes the frame.
    pub fn udp(mut self, source: u16, destination: u16, payload: &[u8]) -> Frame {
        let start = self.frame.len;
        let mut header = [0; udp::HEADER_LEN];
        let repr = udp::Repr {
            source_port: source,
            destination_port: destination,
        };
        repr.emit(&mut header, payload.len())
            .expect("test payloads fit a datagram");
        self.push(&header);
        self.push(payload);
        let mut datagram = udp::Packet::new_checked(&mut self.frame.buf[start..self.frame.len])
            .expect("the datagram was just written");
        datagram.fill_checksum(
            &Ipv6Addr::from(SOURCE_ADDRESS),
            &Ipv6Addr::from(DESTINATION_ADDRESS),
        );
        self.finish()
    }

    /// Appends `payload` and finishes the frame.
    pub fn payload(mut self, payload: &[u8]) -> Frame {
        self.push(payload);
        self.finish()
    }

    fn finish(mut self) -> Frame {
        if let Some(ipv6) = self.ipv6 {
            let payload_len = (self.frame.len - ipv6 - ipv6::HEADER_LEN) as u16;
            self.frame.buf[ipv6 + 4..ipv6 + 6].copy_from_slice(&payload_len.to_be_bytes());
        }
        debug_assert!(self.frame.len >= ethernet::HEADER_LEN);
        self.frame
    }

    fn push(&mut self, bytes: &[u8]) {
        let end = self.frame.len + bytes.len();
        assert!(
            end <= MAX_FRAME_LEN,
            "test frame longer than {MAX_FRAME_LEN} bytes"
        );
        self.frame.buf[self.frame.len..end].copy_from_slice(bytes);
        self.frame.len = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_checksum_are_filled_in() {
        let frame = FrameBuilder::with_tags(&[ethertype::VLAN])
            .ipv6(crate::IPPROTO_UDP)
            .udp(546, 547, &[1, 2, 3]);
        let bytes = frame.bytes();
        assert_eq!(bytes.len(), 18 + 40 + 8 + 3);
        assert_eq!(&bytes[16..18], &[0x86, 0xdd]);
        assert_eq!(u16::from_be_bytes([bytes[22], bytes[23]]), 11);
        assert_eq!(u16::from_be_bytes([bytes[62], bytes[63]]), 11);
        assert!(crate::wire::checksum::udp_is_valid(
            &Ipv6Addr::from(SOURCE_ADDRESS),
            &Ipv6Addr::from(DESTINATION_ADDRESS),
            &bytes[58..],
        ));
    }
}
