//! Ethernet framing for the AF_XDP datapath: checking a steered request frame, and writing the
//! reply's Ethernet, VLAN, IPv6 and UDP headers in front of the engine's payload.
//!
//! The request is located with [`xdhcp6_common::classify`], the classifier the XDP program runs,
//! so userspace and the kernel agree on which frames are DHCPv6. [`parse`] then checks what the
//! XDP program did not (lengths, checksum, source address) with the shared wire module
//! ([`xdhcp6_common::wire`]) and returns a [`FrameMeta`]: every field of the request the reply
//! needs. The reply reuses the request's header layout, so its payload starts at the same
//! offset ([`FrameMeta::header_len`]) and the datapath lets the engine write straight into the
//! transmit frame; [`write_headers`] decides the reply's addresses and ports ([`route`]) and has
//! [`Headers::emit`] fill in the rest.

use std::net::Ipv6Addr;

use xdhcp6_common::wire::{self, Headers, Tags, ipv6, udp};
use xdhcp6_common::{
    DHCPV6_CLIENT_PORT, DHCPV6_SERVER_PORT, IPPROTO_UDP, PassReason, Verdict, classify,
};
use xdhcp6_engine::Destination;

/// Length of a MAC address.
pub const MAC_LEN: usize = 6;

/// Longest header chain of a request or reply: Ethernet, two tags, IPv6, UDP.
pub const MAX_HEADER_LEN: usize = wire::MAX_HEADERS_LEN;

// RFC 4861 §6.1.2, in substance:
// Link-local traffic carries hop limit 255 so that receivers can tell it was not routed; routed
// replies (toward relay agents) use the usual default.
/// Hop limit of replies to a link-local address.
pub const LINK_LOCAL_HOP_LIMIT: u8 = 255;
/// Hop limit of replies to any other address (relay agents).
pub const ROUTED_HOP_LIMIT: u8 = 64;

/// Why a frame was not used. Each is counted as a bad frame and dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The classifier would not steer this frame (the XDP program and userspace disagree, or
    /// the frame was corrupted on the way).
    #[error("not a steerable DHCPv6 frame ({})", .0.name())]
    NotSteered(PassReason),
    /// The IPv6 payload length runs past the end of the frame.
    #[error("IPv6 payload length runs past the frame")]
    Truncated,
    /// The UDP length disagrees with the IPv6 payload length, or is shorter than its header.
    #[error("UDP length disagrees with the IPv6 payload length")]
    BadLength,
    /// The UDP checksum is zero (not allowed over IPv6) or wrong.
    #[error("bad UDP checksum")]
    BadChecksum,
    /// The source address cannot be replied to (multicast, unspecified or loopback).
    #[error("source address cannot be replied to")]
    BadSource,
    /// The frame is addressed to another host: neither its destination MAC nor its IPv6
    /// destination is this interface's (or a DHCPv6 group's).
    #[error("frame for another host")]
    NotOurs,
    /// The reply goes to a global address and the interface has none to send from.
    #[error("no global address to reply to a relay agent from")]
    NoGlobalAddress,
    /// The reply does not fit the transmit frame.
    #[error("reply does not fit the frame")]
    TooLarge,
}

impl FrameError {
    /// Short snake_case names, indexed by [`FrameError::index`], for metrics labels.
    pub const NAMES: [&'static str; 8] = [
        "not_steered",
        "truncated",
        "bad_length",
        "bad_checksum",
        "bad_source",
        "not_ours",
        "no_global_address",
        "too_large",
    ];

    /// This error's index in [`FrameError::NAMES`].
    pub const fn index(self) -> usize {
        match self {
            FrameError::NotSteered(_) => 0,
            FrameError::Truncated => 1,
            FrameError::BadLength => 2,
            FrameError::BadChecksum => 3,
            FrameError::BadSource => 4,
            FrameError::NotOurs => 5,
            FrameError::NoGlobalAddress => 6,
            FrameError::TooLarge => 7,
        }
    }
}

/// What the reply needs to know about a request frame; see [`parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameMeta {
    /// The request's destination MAC address (multicast 33:33:00:01:00:02, or ours).
    pub destination_mac: [u8; MAC_LEN],
    /// The request's source MAC address: the reply's destination.
    pub source_mac: [u8; MAC_LEN],
    /// The VLAN tags as received (TPID and TCI each), outermost first.
    tags: Tags,
    /// The request's IPv6 source address: the reply's destination.
    pub source: Ipv6Addr,
    /// The request's IPv6 destination address (ff02::1:2, or one of ours).
    pub destination: Ipv6Addr,
    /// The request's hop limit.
    pub hop_limit: u8,
    /// The request's UDP source port (546 from clients, 547 from relay agents, or any port
    /// from a relay agent using RFC 8357 relay source ports).
    pub source_port: u16,
    /// Offset of the DHCPv6 message in the frame; the reply's payload goes at the same offset.
    pub header_len: usize,
    /// Length of the DHCPv6 message.
    pub payload_len: usize,
    /// The UDP checksum field held only the pseudo-header sum: the sender left the checksum
    /// to offload (CHECKSUM_PARTIAL, a veth peer on this host) and the frame was accepted
    /// unverified, as the kernel would.
    pub partial_checksum: bool,
}

impl FrameMeta {
    /// Number of VLAN tags (0, 1 or 2).
    pub fn vlan_tags(&self) -> usize {
        self.tags.len()
    }

    /// The VLAN ID of the innermost tag; `None` when untagged. The link is chosen by the whole
    /// stack ([`FrameMeta::vlan_ids`]).
    pub fn vlan(&self) -> Option<u16> {
        self.tags.innermost().map(|tag| tag.vlan_id())
    }

    /// The VLAN IDs, outermost first.
    pub fn vlan_ids(&self) -> impl Iterator<Item = u16> + '_ {
        self.tags.as_slice().iter().map(|tag| tag.vlan_id())
    }

    /// The range of the DHCPv6 message in the frame.
    pub fn payload(&self) -> std::ops::Range<usize> {
        self.header_len..self.header_len + self.payload_len
    }
}

/// What a reply is sent from: the receiving interface's addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplySource {
    /// The interface's MAC address.
    pub mac: [u8; MAC_LEN],
    /// The interface's link-local address, the source of replies to link-local addresses.
    pub link_local: Ipv6Addr,
    /// The server's global address, the source of replies to relay agents' global addresses.
    pub global: Option<Ipv6Addr>,
}

/// The DHCPv6 multicast MAC addresses: 33:33 and the low 32 bits of All_DHCP_Relay_Agents_and_Servers
/// (ff02::1:2) and All_DHCP_Servers (ff05::1:3) (RFC 2464 §7).
pub const MULTICAST_MACS: [[u8; MAC_LEN]; 2] = [[0x33, 0x33, 0, 1, 0, 2], [0x33, 0x33, 0, 1, 0, 3]];

/// What a frame must be addressed to for this interface to take it, as the kernel would: our
/// MAC or a DHCPv6 multicast MAC, and one of the interface's addresses or a DHCPv6 group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Local {
    /// The interface's MAC address.
    pub mac: [u8; MAC_LEN],
    /// The interface's unicast IPv6 addresses (and the configured reply source, if any).
    pub addresses: Vec<Ipv6Addr>,
}

impl Local {
    /// Whether `request` is for this interface; its source was checked by [`parse`].
    pub fn admits(&self, request: &FrameMeta) -> Result<(), FrameError> {
        let mac = request.destination_mac == self.mac
            || MULTICAST_MACS.contains(&request.destination_mac);
        let destination = request.destination;
        let address = self.addresses.contains(&destination)
            || destination == ALL_DHCP_RELAY_AGENTS_AND_SERVERS
            || destination == ALL_DHCP_SERVERS;
        if mac && address {
            Ok(())
        } else {
            Err(FrameError::NotOurs)
        }
    }
}

/// ff02::1:2 (RFC 9915 §7.1).
pub const ALL_DHCP_RELAY_AGENTS_AND_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
/// ff05::1:3 (RFC 9915 §7.1).
pub const ALL_DHCP_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff05, 0, 0, 0, 0, 0, 1, 3);

/// Checks a frame steered to us and returns what the reply needs.
///
/// `verify_checksum` checks the UDP checksum in software. A checksum field that holds just the
/// pseudo-header sum is a datagram whose sender left the checksum to offload
/// (CHECKSUM_PARTIAL: a veth peer, a container or VM on this host); the kernel accepts those
/// unverified, and so does this ([`FrameMeta::partial_checksum`]).
pub fn parse(frame: &[u8], verify_checksum: bool) -> Result<FrameMeta, FrameError> {
    if let Verdict::Pass(reason) = classify(frame) {
        return Err(FrameError::NotSteered(reason));
    }
    let (headers, payload) = Headers::parse(frame).map_err(|error| match error {
        wire::Error::Malformed => FrameError::BadLength,
        wire::Error::Truncated | wire::Error::Unsupported | wire::Error::Exhausted => {
            FrameError::Truncated
        }
    })?;
    // RFC 8200 §8.1, in substance:
    // IPv6 receivers must discard UDP packets containing a zero checksum
    let mut partial_checksum = false;
    if verify_checksum && !headers.verify_checksum(frame) {
        partial_checksum = headers.checksum_is_partial(frame);
        if !partial_checksum {
            return Err(FrameError::BadChecksum);
        }
    }
    // A reply to a multicast or unspecified source cannot be sent, and one to ::1 would leave
    // on the wire with a loopback destination (RFC 4291 §2.5.3: never sent outside a node).
    let source = headers.ipv6.source;
    if source.is_multicast() || source.is_unspecified() || source.is_loopback() {
        return Err(FrameError::BadSource);
    }
    Ok(FrameMeta {
        destination_mac: headers.destination_mac,
        source_mac: headers.source_mac,
        tags: headers.tags,
        source,
        destination: headers.ipv6.destination,
        hop_limit: headers.ipv6.hop_limit,
        source_port: headers.udp.source_port,
        header_len: payload.start,
        payload_len: payload.len(),
        partial_checksum,
    })
}

/// Where a reply goes: addresses, ports and hop limit, decided from the request and the
/// engine's [`Destination`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// IPv6 source.
    pub source: Ipv6Addr,
    /// IPv6 destination: always the request's source.
    pub destination: Ipv6Addr,
    /// UDP source port (547).
    pub source_port: u16,
    /// UDP destination port.
    pub destination_port: u16,
    /// Hop limit.
    pub hop_limit: u8,
}

/// Decides the addresses and ports of the reply to `request`.
pub fn route(
    request: &FrameMeta,
    from: &ReplySource,
    to: Destination,
) -> Result<Route, FrameError> {
    let destination = request.source;
    let link_local = destination.is_unicast_link_local();
    // A reply leaves from an address of the destination's scope: clients on the link talk to
    // our link-local address, relay agents (RFC 9915 section 19.2) to a global one.
    let source = if link_local {
        from.link_local
    } else {
        from.global.ok_or(FrameError::NoGlobalAddress)?
    };
    let destination_port = match to {
        // RFC 9915 §7.2, in substance:
        // Clients listen for DHCP messages on UDP port 546.
        Destination::Client => DHCPV6_CLIENT_PORT,
        // RFC 8357 §5.2, in substance:
        // the server MUST send the
        // Relay-reply message to the relay agent's source port
        Destination::Relay {
            to_source_port: true,
        } => request.source_port,
        // RFC 5007 §4.3.5, in substance: the LEASEQUERY-REPLY goes back to the requestor's
        // address and the port it sent from.
        Destination::Requestor => request.source_port,
        Destination::Relay {
            to_source_port: false,
        } => DHCPV6_SERVER_PORT,
    };
    Ok(Route {
        source,
        destination,
        source_port: DHCPV6_SERVER_PORT,
        destination_port,
        hop_limit: if link_local {
            LINK_LOCAL_HOP_LIMIT
        } else {
            ROUTED_HOP_LIMIT
        },
    })
}

/// Writes the reply's headers in front of its payload and returns the frame's length.
///
/// `frame[request.header_len..][..payload_len]` already holds the DHCPv6 reply; this writes
/// `frame[..request.header_len]`: Ethernet (to the request's source MAC, from `from.mac`), the
/// request's VLAN tags unchanged, IPv6 and UDP with the checksum computed in software.
pub fn write_headers(
    frame: &mut [u8],
    request: &FrameMeta,
    from: &ReplySource,
    to: Destination,
    payload_len: usize,
) -> Result<usize, FrameError> {
    let route = route(request, from, to)?;
    let headers = Headers {
        destination_mac: request.source_mac,
        source_mac: from.mac,
        tags: request.tags,
        ipv6: ipv6::Repr {
            source: route.source,
            destination: route.destination,
            next_header: IPPROTO_UDP,
            hop_limit: route.hop_limit,
            payload_len: 0,
        },
        udp: udp::Repr {
            source_port: route.source_port,
            destination_port: route.destination_port,
        },
    };
    debug_assert_eq!(headers.len(), request.header_len);
    headers
        .emit(frame, payload_len)
        .map_err(|_| FrameError::TooLarge)
}

#[cfg(test)]
mod tests {
    use xdhcp6_common::ethertype;
    use xdhcp6_common::frames::{FrameBuilder, SOURCE_ADDRESS, SOURCE_MAC};
    use xdhcp6_common::wire::checksum;

    use super::*;

    const SOLICIT: &[u8] = &[1, 0x12, 0x34, 0x56, 0, 8, 0, 2, 0, 0];
    const SERVER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x05, 0x47];

    fn server() -> ReplySource {
        ReplySource {
            mac: SERVER_MAC,
            link_local: "fe80::547".parse().unwrap(),
            global: Some("2001:db8::547".parse().unwrap()),
        }
    }

    /// Builds the reply to `request` with `payload`, the way the datapath does.
    fn reply(request: &[u8], payload: &[u8], to: Destination) -> Result<Vec<u8>, FrameError> {
        let meta = parse(request, true).unwrap();
        let mut frame = vec![0xaa; 512];
        frame[meta.header_len..][..payload.len()].copy_from_slice(payload);
        let len = write_headers(&mut frame, &meta, &server(), to, payload.len())?;
        frame.truncate(len);
        Ok(frame)
    }

    fn be16(bytes: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([bytes[at], bytes[at + 1]])
    }

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    /// A relayed frame from 2001:db8:1::1 port `source_port` to 2001:db8::547.
    fn relayed(source_port: u16) -> Vec<u8> {
        let mut frame = FrameBuilder::with_tags(&[])
            .ipv6(IPPROTO_UDP)
            .udp(source_port, 547, SOLICIT)
            .bytes()
            .to_vec();
        let source: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
        let destination: Ipv6Addr = "2001:db8::547".parse().unwrap();
        frame[22..38].copy_from_slice(&source.octets());
        frame[38..54].copy_from_slice(&destination.octets());
        frame[60..62].copy_from_slice(&[0, 0]);
        let checksum = checksum::udp(&source, &destination, &frame[54..]);
        frame[60..62].copy_from_slice(&checksum.to_be_bytes());
        frame
    }

    #[test]
    fn parses_untagged_and_tagged_requests() {
        for (tags, vlan, header_len) in [
            (&[][..], None, 62),
            (&[ethertype::VLAN][..], Some(100), 66),
            (&[ethertype::QINQ][..], Some(100), 66),
            (&[ethertype::QINQ, ethertype::VLAN][..], Some(101), 70),
            (&[ethertype::VLAN, ethertype::VLAN][..], Some(101), 70),
        ] {
            let frame = FrameBuilder::with_tags(tags)
                .ipv6(IPPROTO_UDP)
                .udp(546, 547, SOLICIT);
            let meta = parse(frame.bytes(), true).unwrap();
            assert_eq!(meta.vlan_tags(), tags.len());
            assert_eq!(meta.vlan(), vlan, "{tags:x?}");
            assert_eq!(meta.header_len, header_len);
            assert_eq!(&frame.bytes()[meta.payload()], SOLICIT);
            assert_eq!(meta.source_mac, SOURCE_MAC);
            assert_eq!(meta.source, Ipv6Addr::from(SOURCE_ADDRESS));
            assert_eq!(meta.destination, "ff02::1:2".parse::<Ipv6Addr>().unwrap());
            assert_eq!(meta.source_port, 546);
            assert_eq!(meta.hop_limit, 1);
        }
    }

    #[test]
    fn vlan_ids_ignore_priority_bits() {
        let mut frame = FrameBuilder::with_tags(&[ethertype::QINQ, ethertype::VLAN])
            .ipv6(IPPROTO_UDP)
            .udp(546, 547, SOLICIT);
        // PCP 5 and DEI on the inner tag (VLAN 101).
        frame.bytes_mut()[18] |= 0xb0;
        let meta = parse(frame.bytes(), true).unwrap();
        assert_eq!(meta.vlan(), Some(101));
        assert_eq!(meta.vlan_ids().collect::<Vec<_>>(), [100, 101]);
    }

    #[test]
    fn bad_frames_are_rejected() {
        let good = FrameBuilder::with_tags(&[ethertype::VLAN])
            .ipv6(IPPROTO_UDP)
            .udp(546, 547, SOLICIT);
        let good = good.bytes();
        assert!(parse(good, true).is_ok());

        // Checksum: flipped payload bit, zero checksum.
        let mut frame = good.to_vec();
        *frame.last_mut().unwrap() ^= 1;
        assert_eq!(parse(&frame, true), Err(FrameError::BadChecksum));
        assert!(parse(&frame, false).is_ok(), "unchecked checksum");
        let mut frame = good.to_vec();
        frame[18 + 40 + 6..18 + 40 + 8].copy_from_slice(&[0, 0]);
        assert_eq!(parse(&frame, true), Err(FrameError::BadChecksum));

        // IPv6 payload length past the frame, UDP length disagreeing.
        let mut frame = good.to_vec();
        frame[22..24].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(parse(&frame, false), Err(FrameError::Truncated));
        let mut frame = good.to_vec();
        frame[18 + 40 + 4..18 + 40 + 6].copy_from_slice(&9u16.to_be_bytes());
        assert_eq!(parse(&frame, false), Err(FrameError::BadLength));
        let mut frame = good.to_vec();
        frame[22..24].copy_from_slice(&4u16.to_be_bytes());
        frame[18 + 40 + 4..18 + 40 + 6].copy_from_slice(&4u16.to_be_bytes());
        assert_eq!(parse(&frame, false), Err(FrameError::BadLength));

        // Multicast source.
        let mut frame = good.to_vec();
        frame[26] = 0xff;
        assert_eq!(parse(&frame, false), Err(FrameError::BadSource));

        // Not steered at all; every truncation.
        assert!(matches!(
            parse(&good[..40], true),
            Err(FrameError::NotSteered(PassReason::Truncated))
        ));
        for len in 0..good.len() {
            assert!(parse(&good[..len], true).is_err(), "cut at {len}");
        }
    }

    #[test]
    fn trailing_padding_is_ignored() {
        let frame = FrameBuilder::with_tags(&[])
            .ipv6(IPPROTO_UDP)
            .udp(546, 547, SOLICIT);
        let mut padded = frame.bytes().to_vec();
        padded.extend_from_slice(&[0; 6]);
        let meta = parse(&padded, true).unwrap();
        assert_eq!(meta.payload_len, SOLICIT.len());
    }

    #[test]
    fn reply_to_a_direct_client() {
        for tags in [
            &[][..],
            &[ethertype::VLAN],
            &[ethertype::QINQ, ethertype::VLAN],
            &[ethertype::VLAN, ethertype::VLAN],
        ] {
            let request = FrameBuilder::with_tags(tags)
                .ipv6(IPPROTO_UDP)
                .udp(546, 547, SOLICIT);
            let advertise = [2, 0x12, 0x34, 0x56, 0, 1, 0, 0];
            let frame = reply(request.bytes(), &advertise, Destination::Client).unwrap();
            let l3 = 14 + 4 * tags.len();
            assert_eq!(frame.len(), l3 + 48 + advertise.len());
            assert_eq!(&frame[0..6], &SOURCE_MAC, "to the client's MAC");
            assert_eq!(&frame[6..12], &SERVER_MAC);
            // Tags (TPID and TCI) exactly as received.
            assert_eq!(&frame[12..l3 - 2], &request.bytes()[12..l3 - 2]);
            assert_eq!(be16(&frame, l3 - 2), ethertype::IPV6);
            assert_eq!(frame[l3], 0x60);
            assert_eq!(usize::from(be16(&frame, l3 + 4)), 8 + advertise.len());
            assert_eq!(frame[l3 + 6], IPPROTO_UDP);
            assert_eq!(frame[l3 + 7], 255, "link-local hop limit");
            assert_eq!(&frame[l3 + 8..l3 + 24], &server().link_local.octets());
            assert_eq!(&frame[l3 + 24..l3 + 40], &SOURCE_ADDRESS);
            assert_eq!(be16(&frame, l3 + 40), 547);
            assert_eq!(be16(&frame, l3 + 42), 546);
            assert_eq!(usize::from(be16(&frame, l3 + 44)), 8 + advertise.len());
            assert_eq!(&frame[l3 + 48..], &advertise);
            // The reply is itself a well-formed frame with a valid checksum (its ports make the
            // classifier pass it, so check the sum directly).
            assert!(checksum::udp_is_valid(
                &server().link_local,
                &Ipv6Addr::from(SOURCE_ADDRESS),
                &frame[l3 + 40..],
            ));
        }
    }

    #[test]
    fn reply_to_a_relay_agent() {
        let request = relayed(547);
        let frame = reply(
            &request,
            &[13, 0, 0, 0],
            Destination::Relay {
                to_source_port: false,
            },
        )
        .unwrap();
        assert_eq!(&frame[22..38], &server().global.unwrap().octets());
        assert_eq!(&frame[38..54], &request[22..38]);
        assert_eq!(frame[21], 64, "routed hop limit");
        assert_eq!(be16(&frame, 54), 547);
        assert_eq!(be16(&frame, 56), 547);
        // The reply to a relay agent is steerable (port 547), so `parse` checks it fully.
        let meta = parse(&frame, true).unwrap();
        assert_eq!(meta.source, server().global.unwrap());
        assert_eq!(meta.source_port, 547);
    }

    #[test]
    fn reply_echoes_the_relay_source_port() {
        let request = relayed(40_000);
        let to = Destination::Relay {
            to_source_port: true,
        };
        let frame = reply(&request, &[13, 0, 0, 0], to).unwrap();
        assert_eq!(be16(&frame, 54), 547);
        assert_eq!(be16(&frame, 56), 40_000);
        let not_asked = Destination::Relay {
            to_source_port: false,
        };
        let frame = reply(&request, &[13, 0, 0, 0], not_asked).unwrap();
        assert_eq!(be16(&frame, 56), 547);
    }

    #[test]
    fn relay_reply_needs_a_global_address() {
        let request = relayed(547);
        let meta = parse(&request, true).unwrap();
        let from = ReplySource {
            global: None,
            ..server()
        };
        let mut frame = [0; 128];
        let to = Destination::Relay {
            to_source_port: false,
        };
        assert_eq!(
            write_headers(&mut frame, &meta, &from, to, 4),
            Err(FrameError::NoGlobalAddress)
        );
    }

    #[test]
    fn reply_larger_than_the_frame_is_refused() {
        let request = FrameBuilder::with_tags(&[])
            .ipv6(IPPROTO_UDP)
            .udp(546, 547, SOLICIT);
        let meta = parse(request.bytes(), true).unwrap();
        let mut frame = [0; 100];
        assert_eq!(
            write_headers(&mut frame, &meta, &server(), Destination::Client, 39),
            Err(FrameError::TooLarge)
        );
        assert_eq!(
            write_headers(&mut frame, &meta, &server(), Destination::Client, 38),
            Ok(100)
        );
        let mut big = vec![0; 70_000];
        assert_eq!(
            write_headers(&mut big, &meta, &server(), Destination::Client, 65_530),
            Err(FrameError::TooLarge)
        );
    }

    /// The interface of [`server`], with the client's frames' destination not among them.
    fn local() -> Local {
        Local {
            mac: SERVER_MAC,
            addresses: vec![server().link_local, server().global.unwrap()],
        }
    }

    #[test]
    fn solicit_to_a_foreign_mac_or_address_is_not_ours() {
        let good = FrameBuilder::with_tags(&[])
            .ipv6(IPPROTO_UDP)
            .udp(546, 547, SOLICIT);
        let meta = parse(good.bytes(), true).unwrap();
        assert_eq!(local().admits(&meta), Ok(()), "multicast MAC and group");

        // Another host's MAC, our group.
        let mut foreign_mac = meta;
        foreign_mac.destination_mac = [0x02, 0, 0, 0, 0, 0x99];
        assert_eq!(local().admits(&foreign_mac), Err(FrameError::NotOurs));
        // Our MAC, another host's address.
        let mut foreign_ip = meta;
        foreign_ip.destination_mac = SERVER_MAC;
        foreign_ip.destination = "2001:db8:dead::1".parse().unwrap();
        assert_eq!(local().admits(&foreign_ip), Err(FrameError::NotOurs));
        // A multicast MAC other than the DHCPv6 ones.
        let mut all_nodes = meta;
        all_nodes.destination_mac = [0x33, 0x33, 0, 0, 0, 1];
        assert_eq!(local().admits(&all_nodes), Err(FrameError::NotOurs));
        // Our MAC and our address; ff05::1:3 on its MAC.
        let mut unicast = meta;
        unicast.destination_mac = SERVER_MAC;
        unicast.destination = server().global.unwrap();
        assert_eq!(local().admits(&unicast), Ok(()));
        let mut site = meta;
        site.destination_mac = MULTICAST_MACS[1];
        site.destination = ALL_DHCP_SERVERS;
        assert_eq!(local().admits(&site), Ok(()));
    }

    #[test]
    fn request_from_loopback_source_is_not_answered() {
        let mut frame = FrameBuilder::with_tags(&[])
            .ipv6(IPPROTO_UDP)
            .udp(546, 547, SOLICIT)
            .bytes()
            .to_vec();
        let source = Ipv6Addr::LOCALHOST;
        let destination: Ipv6Addr = "ff02::1:2".parse().unwrap();
        frame[22..38].copy_from_slice(&source.octets());
        frame[60..62].copy_from_slice(&[0, 0]);
        let sum = checksum::udp(&source, &destination, &frame[54..]);
        frame[60..62].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(parse(&frame, true), Err(FrameError::BadSource));
    }

    #[test]
    fn checksum_left_to_offload_is_accepted_and_flagged() {
        let mut frame = FrameBuilder::with_tags(&[ethertype::VLAN])
            .ipv6(IPPROTO_UDP)
            .udp(546, 547, SOLICIT)
            .bytes()
            .to_vec();
        let meta = parse(&frame, true).unwrap();
        assert!(!meta.partial_checksum);
        // What a CHECKSUM_PARTIAL sender leaves: the folded pseudo-header sum, uncomplemented.
        let l4 = 18 + 40;
        let len = (frame.len() - l4) as u32;
        let pseudo = checksum::pseudo_header(&meta.source, &meta.destination, IPPROTO_UDP, len);
        frame[l4 + 6..l4 + 8].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
        let meta = parse(&frame, true).unwrap();
        assert!(meta.partial_checksum);
        assert_eq!(&frame[meta.payload()], SOLICIT);
        // Any other wrong value is still a bad checksum.
        frame[l4 + 6] ^= 0x10;
        assert_eq!(parse(&frame, true), Err(FrameError::BadChecksum));
    }

    /// A reply frame checked independently: the bytes were fed to tshark
    /// (`text2pcap` then `tshark -o udp.check_checksum:TRUE -V`), which reported
    /// "Checksum: 0x5c5d [correct]"; a separate RFC 1071 sum in Python agreed.
    #[test]
    fn checksum_matches_a_tshark_verified_frame() {
        let expected = hex(TSHARK_FRAME);
        let request = FrameBuilder::with_tags(&[ethertype::VLAN])
            .ipv6(IPPROTO_UDP)
            .udp(546, 547, SOLICIT);
        let advertise = hex("02123456 0001000a 00030001 0200000005 47");
        let frame = reply(request.bytes(), &advertise, Destination::Client).unwrap();
        assert_eq!(frame, expected);
        assert_eq!(be16(&frame, 18 + 40 + 6), TSHARK_CHECKSUM);
    }

    /// Advertise to fe80::200:5eff:fe10:1 port 546 from fe80::547 port 547 on VLAN 100.
    const TSHARK_FRAME: &str = "02005e100001 020000000547 8100 0064 86dd \
        60000000 001a 11 ff fe800000000000000000000000000547 fe8000000000000002005efffe100001 \
        0223 0222 001a 5c5d 021234560001000a00030001020000000547";
    const TSHARK_CHECKSUM: u16 = 0x5c5d;
}
