//! The steering rules: which Ethernet frames carry DHCPv6 for this server, or for the clients
//! and relays a load generator emulates.
//!
//! A frame is steered by [`classify`] when it is Ethernet with at most two VLAN tags, then an
//! IPv6 header whose Next Header is UDP, then a UDP header whose destination port is 547.
//! Everything else goes to the kernel, which has the slow path (a UDP socket on [::]:547) for
//! the rare DHCPv6 packet that carries extension headers or arrives fragmented.
//!
//! [`classify_client`] is the same rule with destination port 546 (replies to clients) or 547
//! (Relay-reply messages to relay agents), for the client side of a link.
//!
//! The classifier reads the frame only through [`FrameReader`], so one implementation serves the
//! XDP program (where every read is a bounds check the verifier can follow) and userspace (a
//! plain `&[u8]`). It has no loops and reads at most [`MAX_HEADERS_LEN`] bytes.

use crate::maps::MAX_STEERED_FRAME_LEN;
use crate::wire::{
    DHCPV6_CLIENT_PORT, DHCPV6_SERVER_PORT, IPPROTO_UDP, MAX_HEADERS_LEN,
    ethernet::{self, ethertype},
    ipv6, udp,
};

/// Bounds-checked reads from a frame, the one way the classifier touches packet bytes.
pub trait FrameReader {
    /// Copies `N` bytes starting at `offset`, or `None` when the frame ends before
    /// `offset + N`.
    fn read<const N: usize>(&self, offset: usize) -> Option<[u8; N]>;
}

impl FrameReader for [u8] {
    #[inline(always)]
    fn read<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        let end = offset.checked_add(N)?;
        self.get(offset..end)?.try_into().ok()
    }
}

/// What to do with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// DHCPv6 towards a server: hand it to the AF_XDP socket of its receive queue.
    Steer(Offsets),
    /// Anything else: leave it to the kernel.
    Pass(PassReason),
}

/// Where the headers of a steered frame start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offsets {
    /// Offset of the IPv6 header (14, 18 or 22).
    pub l3: usize,
    /// Offset of the UDP header.
    pub l4: usize,
}

impl Offsets {
    /// Number of VLAN tags between the MAC addresses and the IPv6 header.
    pub const fn vlan_tags(&self) -> usize {
        (self.l3 - ethernet::HEADER_LEN) / ethernet::TAG_LEN
    }

    /// Offset of the UDP payload, the DHCPv6 message.
    pub const fn payload(&self) -> usize {
        self.l4 + udp::HEADER_LEN
    }
}

/// Why a frame was passed to the kernel; each reason has its own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PassReason {
    /// The EtherType after the tags is not IPv6 (ARP, IPv4, LLDP, ...).
    NotIpv6,
    /// Three or more tags, or a tag order other than S-tag/C-tag or C-tag/C-tag.
    VlanStack,
    /// The frame ends before the headers the rule needs.
    Truncated,
    /// EtherType IPv6 but the version field is not 6.
    BadVersion,
    /// IPv6 followed by an extension header (hop-by-hop, fragment, routing, ...).
    ExtensionHeader,
    /// IPv6 carrying another upper-layer protocol (ICMPv6, TCP, ...).
    NotUdp,
    /// UDP, but not to the rule's port (547; 546 or 547 for [`classify_client`]).
    OtherPort,
    /// Longer than [`MAX_STEERED_FRAME_LEN`] by its IPv6 payload length (jumbo frames): it
    /// would not fit an AF_XDP frame, so the kernel socket answers it.
    TooLarge,
}

impl PassReason {
    /// Every reason, in counter order.
    pub const ALL: [PassReason; 8] = [
        PassReason::NotIpv6,
        PassReason::VlanStack,
        PassReason::Truncated,
        PassReason::BadVersion,
        PassReason::ExtensionHeader,
        PassReason::NotUdp,
        PassReason::OtherPort,
        PassReason::TooLarge,
    ];

    /// Short snake_case name, for metrics labels and the CLI.
    pub const fn name(self) -> &'static str {
        match self {
            PassReason::NotIpv6 => "not_ipv6",
            PassReason::VlanStack => "vlan_stack",
            PassReason::Truncated => "truncated",
            PassReason::BadVersion => "bad_version",
            PassReason::ExtensionHeader => "extension_header",
            PassReason::NotUdp => "not_udp",
            PassReason::OtherPort => "other_port",
            PassReason::TooLarge => "too_large",
        }
    }
}

/// Decides whether `frame` (starting at the destination MAC address) is DHCPv6 for a server.
///
/// Never panics, whatever the frame; reads only the headers it needs.
#[inline(always)]
pub fn classify<F: FrameReader + ?Sized>(frame: &F) -> Verdict {
    match headers::<F, false>(frame) {
        Ok(offsets) => Verdict::Steer(offsets),
        Err(reason) => Verdict::Pass(reason),
    }
}

/// Decides whether `frame` is DHCPv6 for a client or a relay agent: the rule of [`classify`]
/// with UDP destination port 546 or 547.
///
/// Servers send to clients on 546 and Relay-reply messages to relay agents on 547 (RFC 9915
/// §7.2); a host that emulates both takes either. Never panics, whatever the frame.
#[inline(always)]
pub fn classify_client<F: FrameReader + ?Sized>(frame: &F) -> Verdict {
    match headers::<F, true>(frame) {
        Ok(offsets) => Verdict::Steer(offsets),
        Err(reason) => Verdict::Pass(reason),
    }
}

#[inline(always)]
fn headers<F: FrameReader + ?Sized, const CLIENT: bool>(frame: &F) -> Result<Offsets, PassReason> {
    // A tag is TPID (where the EtherType would be) and TCI, then the next EtherType/TPID.
    let mut ethertype = read_u16(frame, ethernet::field::ETHERTYPE.start)?;
    let mut l3 = ethernet::HEADER_LEN;
    if ethertype == ethertype::QINQ || ethertype == ethertype::VLAN {
        ethertype = read_u16(frame, l3 + 2)?;
        l3 += ethernet::TAG_LEN;
        // Inside either outer tag only a C-tag is decoded (802.1ad S/C, or double 802.1Q).
        if ethertype == ethertype::VLAN {
            ethertype = read_u16(frame, l3 + 2)?;
            l3 += ethernet::TAG_LEN;
        }
    }
    if ethertype != ethertype::IPV6 {
        return Err(if is_tag(ethertype) {
            PassReason::VlanStack
        } else {
            PassReason::NotIpv6
        });
    }

    // Version/class/flow (4), payload length (2), next header (1), hop limit (1).
    let fixed: [u8; 8] = frame.read(l3).ok_or(PassReason::Truncated)?;
    if fixed[0] >> 4 != 6 {
        return Err(PassReason::BadVersion);
    }
    let next_header = fixed[ipv6::field::NEXT_HEADER];
    if next_header != IPPROTO_UDP {
        // Fragments and extension headers go to the kernel, which reassembles and parses them;
        // the UDP socket slow path then sees the DHCPv6 message.
        return Err(if ipv6::is_extension_header(next_header) {
            PassReason::ExtensionHeader
        } else {
            PassReason::NotUdp
        });
    }

    let l4 = l3 + ipv6::HEADER_LEN;
    let header: [u8; udp::HEADER_LEN] = frame.read(l4).ok_or(PassReason::Truncated)?;
    let port = u16::from_be_bytes([
        header[udp::field::DESTINATION_PORT.start],
        header[udp::field::DESTINATION_PORT.start + 1],
    ]);
    let wanted = port == DHCPV6_SERVER_PORT || (CLIENT && port == DHCPV6_CLIENT_PORT);
    if !wanted {
        return Err(PassReason::OtherPort);
    }
    let payload_len = usize::from(u16::from_be_bytes([
        fixed[ipv6::field::PAYLOAD_LEN.start],
        fixed[ipv6::field::PAYLOAD_LEN.start + 1],
    ]));
    if l3 + ipv6::HEADER_LEN + payload_len > MAX_STEERED_FRAME_LEN {
        return Err(PassReason::TooLarge);
    }
    debug_assert!(l4 + udp::HEADER_LEN <= MAX_HEADERS_LEN);
    Ok(Offsets { l3, l4 })
}

#[inline(always)]
fn read_u16<F: FrameReader + ?Sized>(frame: &F, offset: usize) -> Result<u16, PassReason> {
    frame
        .read(offset)
        .map(u16::from_be_bytes)
        .ok_or(PassReason::Truncated)
}

#[inline(always)]
const fn is_tag(ethertype: u16) -> bool {
    matches!(
        ethertype,
        ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_LEGACY
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{Frame, FrameBuilder};
    use crate::{ETHERNET_HEADER_LEN, IPV6_HEADER_LEN, UDP_HEADER_LEN, VLAN_TAG_LEN};

    const IPPROTO_TCP: u8 = 6;
    const IPPROTO_ICMPV6: u8 = 58;
    const NO_NEXT_HEADER: u8 = 59;

    fn dhcp(tags: &[u16]) -> Frame {
        FrameBuilder::with_tags(tags)
            .ipv6(IPPROTO_UDP)
            .udp(546, 547, SOLICIT)
    }

    /// A Solicit with an Elapsed Time option; the classifier never looks at it.
    const SOLICIT: &[u8] = &[1, 0x12, 0x34, 0x56, 0, 8, 0, 2, 0, 0];

    fn steer(l3: usize) -> Verdict {
        Verdict::Steer(Offsets {
            l3,
            l4: l3 + IPV6_HEADER_LEN,
        })
    }

    #[test]
    fn untagged_dhcpv6_is_steered() {
        let frame = dhcp(&[]);
        assert_eq!(classify(frame.bytes()), steer(14));
    }

    #[test]
    fn one_ctag_is_steered() {
        let frame = dhcp(&[ethertype::VLAN]);
        assert_eq!(classify(frame.bytes()), steer(18));
    }

    #[test]
    fn one_stag_is_steered() {
        let frame = dhcp(&[ethertype::QINQ]);
        assert_eq!(classify(frame.bytes()), steer(18));
    }

    #[test]
    fn stag_ctag_is_steered() {
        let frame = dhcp(&[ethertype::QINQ, ethertype::VLAN]);
        assert_eq!(classify(frame.bytes()), steer(22));
    }

    #[test]
    fn double_ctag_is_steered() {
        let frame = dhcp(&[ethertype::VLAN, ethertype::VLAN]);
        assert_eq!(classify(frame.bytes()), steer(22));
    }

    #[test]
    fn offsets_locate_the_message() {
        for tags in [
            &[][..],
            &[ethertype::VLAN],
            &[ethertype::QINQ, ethertype::VLAN],
        ] {
            let frame = dhcp(tags);
            let Verdict::Steer(offsets) = classify(frame.bytes()) else {
                panic!("not steered: {tags:?}");
            };
            assert_eq!(offsets.vlan_tags(), tags.len());
            assert_eq!(&frame.bytes()[offsets.payload()..], SOLICIT);
            assert_eq!(frame.bytes()[offsets.l3] >> 4, 6);
        }
    }

    #[test]
    fn jumbo_request_is_passed_to_the_kernel() {
        // A frame of `total` bytes with two tags: the IPv6 payload length says so (the
        // classifier reads only headers).
        let sized = |total: usize| {
            let mut frame = dhcp(&[ethertype::QINQ, ethertype::VLAN]).bytes().to_vec();
            let l3 = ETHERNET_HEADER_LEN + 2 * VLAN_TAG_LEN;
            let payload = (total - l3 - IPV6_HEADER_LEN) as u16;
            frame[l3 + 4..l3 + 6].copy_from_slice(&payload.to_be_bytes());
            frame.resize(total, 0);
            frame
        };
        assert_eq!(classify(&sized(MAX_STEERED_FRAME_LEN)[..]), steer(22));
        // One byte more, or a 9,000-byte jumbo frame: the kernel's UDP socket takes it.
        for total in [MAX_STEERED_FRAME_LEN + 1, 9022] {
            assert_eq!(
                classify(&sized(total)[..]),
                Verdict::Pass(PassReason::TooLarge)
            );
        }
    }

    #[test]
    fn three_tags_are_passed() {
        for tags in [
            [ethertype::VLAN, ethertype::VLAN, ethertype::VLAN],
            [ethertype::QINQ, ethertype::VLAN, ethertype::VLAN],
        ] {
            let frame = dhcp(&tags);
            assert_eq!(
                classify(frame.bytes()),
                Verdict::Pass(PassReason::VlanStack),
                "{tags:x?}"
            );
        }
    }

    #[test]
    fn stag_inside_a_tag_is_passed() {
        for tags in [
            [ethertype::QINQ, ethertype::QINQ],
            [ethertype::VLAN, ethertype::QINQ],
        ] {
            let frame = dhcp(&tags);
            assert_eq!(
                classify(frame.bytes()),
                Verdict::Pass(PassReason::VlanStack),
                "{tags:x?}"
            );
        }
    }

    #[test]
    fn legacy_qinq_tpid_is_passed() {
        let frame = dhcp(&[ethertype::QINQ_LEGACY, ethertype::VLAN]);
        assert_eq!(
            classify(frame.bytes()),
            Verdict::Pass(PassReason::VlanStack)
        );
    }

    #[test]
    fn ipv4_and_arp_are_passed() {
        for (tags, ethertype) in [
            (&[][..], ethertype::IPV4),
            (&[][..], 0x0806),
            (&[ethertype::VLAN][..], ethertype::IPV4),
            (&[ethertype::QINQ, ethertype::VLAN][..], 0x0806),
        ] {
            let frame = FrameBuilder::with_tags(tags)
                .ethertype(ethertype)
                .payload(&[0x45; 40]);
            assert_eq!(classify(frame.bytes()), Verdict::Pass(PassReason::NotIpv6));
        }
    }

    #[test]
    fn wrong_ip_version_is_passed() {
        let mut frame = dhcp(&[ethertype::VLAN]);
        frame.bytes_mut()[18] = 0x45;
        assert_eq!(
            classify(frame.bytes()),
            Verdict::Pass(PassReason::BadVersion)
        );
    }

    #[test]
    fn extension_headers_are_passed() {
        for header in [0, 43, 44, 50, 51, 60, 135, 139, 140, 253, 254] {
            for tags in [&[][..], &[ethertype::QINQ, ethertype::VLAN]] {
                let frame = FrameBuilder::with_tags(tags)
                    .ipv6(header)
                    .extension(IPPROTO_UDP)
                    .udp(546, 547, SOLICIT);
                assert_eq!(
                    classify(frame.bytes()),
                    Verdict::Pass(PassReason::ExtensionHeader),
                    "next header {header}"
                );
            }
        }
    }

    #[test]
    fn first_fragment_is_passed() {
        // Fragment header: next header UDP, offset 0, M flag set, identification 1.
        let frame = FrameBuilder::with_tags(&[ethertype::VLAN])
            .ipv6(44)
            .raw(&[IPPROTO_UDP, 0, 0, 1, 0, 0, 0, 1])
            .udp(546, 547, SOLICIT);
        assert_eq!(
            classify(frame.bytes()),
            Verdict::Pass(PassReason::ExtensionHeader)
        );
    }

    #[test]
    fn other_upper_layers_are_passed() {
        for protocol in [IPPROTO_TCP, IPPROTO_ICMPV6, NO_NEXT_HEADER] {
            let frame = FrameBuilder::with_tags(&[]).ipv6(protocol).payload(&[0; 8]);
            assert_eq!(
                classify(frame.bytes()),
                Verdict::Pass(PassReason::NotUdp),
                "protocol {protocol}"
            );
        }
    }

    #[test]
    fn other_ports_are_passed() {
        for (source, destination) in [(547, 546), (546, 546), (547, 548), (1234, 53), (547, 0)] {
            let frame = FrameBuilder::with_tags(&[ethertype::VLAN])
                .ipv6(IPPROTO_UDP)
                .udp(source, destination, SOLICIT);
            assert_eq!(
                classify(frame.bytes()),
                Verdict::Pass(PassReason::OtherPort),
                "{source} -> {destination}"
            );
        }
    }

    #[test]
    fn relay_to_relay_is_steered() {
        // Relay agents send Relay-forward from port 547 to port 547.
        let frame = FrameBuilder::with_tags(&[])
            .ipv6(IPPROTO_UDP)
            .udp(547, 547, SOLICIT);
        assert_eq!(classify(frame.bytes()), steer(14));
    }

    #[test]
    fn empty_udp_payload_is_steered() {
        // The rule stops at the UDP header; the engine drops short messages and counts them.
        let frame = FrameBuilder::with_tags(&[])
            .ipv6(IPPROTO_UDP)
            .udp(546, 547, &[]);
        assert_eq!(classify(frame.bytes()), steer(14));
    }

    #[test]
    fn every_truncation_is_passed_without_panic() {
        let frames = [
            dhcp(&[]),
            dhcp(&[ethertype::VLAN]),
            dhcp(&[ethertype::QINQ]),
            dhcp(&[ethertype::QINQ, ethertype::VLAN]),
            dhcp(&[ethertype::VLAN, ethertype::VLAN]),
        ];
        for frame in &frames {
            let full = frame.bytes();
            let Verdict::Steer(offsets) = classify(full) else {
                panic!("not steered");
            };
            for len in 0..full.len() {
                let expected = if len < offsets.payload() {
                    Verdict::Pass(PassReason::Truncated)
                } else {
                    Verdict::Steer(offsets)
                };
                assert_eq!(classify(&full[..len]), expected, "length {len}");
            }
        }
    }

    #[test]
    fn truncated_passes_keep_their_reason_once_decided() {
        // A frame cut after the EtherType is already known not to be IPv6.
        let frame = FrameBuilder::with_tags(&[])
            .ethertype(ethertype::IPV4)
            .payload(&[0x45; 20]);
        for len in 0..frame.bytes().len() {
            let verdict = classify(&frame.bytes()[..len]);
            let expected = if len < ETHERNET_HEADER_LEN {
                PassReason::Truncated
            } else {
                PassReason::NotIpv6
            };
            assert_eq!(verdict, Verdict::Pass(expected), "length {len}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic sweep; the fuzz target covers the rest.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut buf = [0u8; 96];
        for round in 0..20_000 {
            for byte in buf.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = state as u8;
            }
            // Bias towards the interesting paths.
            if round % 2 == 0 {
                buf[12..14].copy_from_slice(&ethertype::VLAN.to_be_bytes());
                buf[16..18].copy_from_slice(&ethertype::IPV6.to_be_bytes());
                buf[18] = 0x60;
                buf[24] = IPPROTO_UDP;
            }
            let len = (state as usize >> 8) % (buf.len() + 1);
            let _ = classify(&buf[..len]);
        }
    }

    #[test]
    fn reader_rejects_overflowing_offsets() {
        let bytes = [0u8; 4];
        assert_eq!(bytes[..].read::<2>(usize::MAX), None);
        assert_eq!(bytes[..].read::<2>(3), None);
        assert_eq!(bytes[..].read::<2>(2), Some([0, 0]));
        assert_eq!(bytes[..].read::<0>(4), Some([]));
    }

    #[test]
    fn reason_names_are_unique() {
        for (i, a) in PassReason::ALL.iter().enumerate() {
            for b in &PassReason::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
        }
    }

    #[test]
    fn headers_fit_the_documented_maximum() {
        let frame = dhcp(&[ethertype::QINQ, ethertype::VLAN]);
        let Verdict::Steer(offsets) = classify(frame.bytes()) else {
            panic!("not steered");
        };
        assert_eq!(offsets.payload(), MAX_HEADERS_LEN);
    }

    // The client rule.

    #[test]
    fn client_rule_takes_replies_to_clients_and_relays() {
        for tags in [
            &[][..],
            &[ethertype::VLAN],
            &[ethertype::QINQ, ethertype::VLAN],
        ] {
            let l3 = ETHERNET_HEADER_LEN + tags.len() * VLAN_TAG_LEN;
            let to_client = FrameBuilder::with_tags(tags)
                .ipv6(IPPROTO_UDP)
                .udp(547, 546, SOLICIT);
            assert_eq!(classify_client(to_client.bytes()), steer(l3));
            let to_relay = FrameBuilder::with_tags(tags)
                .ipv6(IPPROTO_UDP)
                .udp(547, 547, SOLICIT);
            assert_eq!(classify_client(to_relay.bytes()), steer(l3));
        }
    }

    #[test]
    fn server_rule_leaves_replies_to_clients_alone() {
        let to_client = FrameBuilder::with_tags(&[])
            .ipv6(IPPROTO_UDP)
            .udp(547, 546, SOLICIT);
        assert_eq!(
            classify(to_client.bytes()),
            Verdict::Pass(PassReason::OtherPort)
        );
    }

    #[test]
    fn client_rule_passes_everything_else() {
        for port in [53, 545, 548, 5460, 0, u16::MAX] {
            let frame = FrameBuilder::with_tags(&[])
                .ipv6(IPPROTO_UDP)
                .udp(546, port, SOLICIT);
            assert_eq!(
                classify_client(frame.bytes()),
                Verdict::Pass(PassReason::OtherPort),
                "port {port}"
            );
        }
        let icmp = FrameBuilder::with_tags(&[])
            .ipv6(IPPROTO_ICMPV6)
            .udp(547, 546, SOLICIT);
        assert_eq!(
            classify_client(icmp.bytes()),
            Verdict::Pass(PassReason::NotUdp)
        );
        let tcp = FrameBuilder::with_tags(&[])
            .ipv6(IPPROTO_TCP)
            .udp(547, 546, SOLICIT);
        assert_eq!(
            classify_client(tcp.bytes()),
            Verdict::Pass(PassReason::NotUdp)
        );
        let fragment = FrameBuilder::with_tags(&[]).ipv6(44).udp(547, 546, SOLICIT);
        assert_eq!(
            classify_client(fragment.bytes()),
            Verdict::Pass(PassReason::ExtensionHeader)
        );
        let three_tags =
            FrameBuilder::with_tags(&[ethertype::QINQ, ethertype::VLAN, ethertype::VLAN])
                .ipv6(IPPROTO_UDP)
                .udp(547, 546, SOLICIT);
        assert_eq!(
            classify_client(three_tags.bytes()),
            Verdict::Pass(PassReason::VlanStack)
        );
    }

    #[test]
    fn client_rule_never_panics_on_truncations() {
        let frame = FrameBuilder::with_tags(&[ethertype::VLAN])
            .ipv6(IPPROTO_UDP)
            .udp(547, 546, SOLICIT);
        let bytes = frame.bytes();
        let full = ETHERNET_HEADER_LEN + VLAN_TAG_LEN + IPV6_HEADER_LEN + UDP_HEADER_LEN;
        for len in 0..full {
            assert_eq!(
                classify_client(&bytes[..len]),
                Verdict::Pass(PassReason::Truncated),
                "length {len}"
            );
        }
        assert!(matches!(classify_client(&bytes[..full]), Verdict::Steer(_)));
    }
}
