//! Ethernet + IPv6 + UDP framing for the AF_XDP transport and the reflector, on the shared wire
//! module ([`xdhcp6_common::wire`]).
//!
//! [`HeaderTemplate`] holds everything of the 62 header bytes that does not change between
//! frames of one flow of traffic (destination MAC and address, ports, hop limit);
//! [`HeaderTemplate::write`] adds the sender's MAC and address, the lengths, the payload and the
//! checksum. [`parse`] finds the DHCPv6 payload of a received frame with the shared classifier
//! and checks the lengths and the checksum; it never panics. [`reflect`] turns a received frame
//! into its echo in place.
//!
//! Checksums are the Internet checksum (RFC 1071) over the IPv6 pseudo-header (RFC 8200 §8.1)
//! and the UDP datagram; a computed 0 is sent as 0xffff, and a received 0 is invalid over IPv6.

use std::net::Ipv6Addr;

use xdhcp6_common::wire::{
    Headers, Tags, checksum,
    ethernet::{self, multicast_address},
    ipv6, udp,
};
use xdhcp6_common::{IPPROTO_UDP, Verdict, classify, classify_client};

/// A MAC address.
pub type Mac = ethernet::Address;

/// Length of the headers [`HeaderTemplate`] writes (no VLAN tags).
pub const HEADERS_LEN: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + udp::HEADER_LEN;

/// The multicast MAC of an IPv6 multicast address (RFC 2464 §7): 33:33 and its last 32 bits.
pub fn multicast_mac(group: Ipv6Addr) -> Mac {
    multicast_address(&group)
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Result<Mac, String> {
    let mut mac = [0; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts
            .next()
            .ok_or_else(|| format!("{text:?}: expected six hex bytes separated by ':'"))?;
        if part.is_empty() || part.len() > 2 {
            return Err(format!("{text:?}: {part:?} is not a hex byte"));
        }
        *byte = u8::from_str_radix(part, 16)
            .map_err(|_| format!("{text:?}: {part:?} is not a hex byte"))?;
    }
    if parts.next().is_some() {
        return Err(format!("{text:?}: more than six bytes"));
    }
    Ok(mac)
}

/// The fixed part of the headers of frames to one destination.
#[derive(Clone, Debug)]
pub struct HeaderTemplate {
    headers: Headers,
}

impl HeaderTemplate {
    /// Frames to `destination` (`mac`, address, `destination_port`) from `source_port`.
    /// Multicast goes out with hop limit 1 (link scope), unicast with 64.
    pub fn new(mac: Mac, destination: Ipv6Addr, source_port: u16, destination_port: u16) -> Self {
        HeaderTemplate {
            headers: Headers {
                destination_mac: mac,
                source_mac: [0; 6],
                tags: Tags::default(),
                ipv6: ipv6::Repr {
                    source: Ipv6Addr::UNSPECIFIED,
                    destination,
                    next_header: IPPROTO_UDP,
                    hop_limit: if destination.is_multicast() { 1 } else { 64 },
                    payload_len: 0,
                },
                udp: udp::Repr {
                    source_port,
                    destination_port,
                },
            },
        }
    }

    /// Writes a frame from `source_mac`/`source` carrying `payload` into `frame`; returns its
    /// length, or `None` when it does not fit (or the payload exceeds a UDP datagram).
    pub fn write(
        &self,
        frame: &mut [u8],
        source_mac: &Mac,
        source: &Ipv6Addr,
        payload: &[u8],
    ) -> Option<usize> {
        let body = frame.get_mut(HEADERS_LEN..HEADERS_LEN.checked_add(payload.len())?)?;
        body.copy_from_slice(payload);
        let mut headers = self.headers;
        headers.source_mac = *source_mac;
        headers.ipv6.source = *source;
        headers.emit(frame, payload.len()).ok()
    }
}

/// A received DHCPv6 frame, taken apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Where the DHCPv6 message lies in the frame.
    pub payload: (usize, usize),
    /// Offset of the IPv6 header (after 0 to 2 VLAN tags).
    pub l3: usize,
    /// Offset of the UDP header.
    pub l4: usize,
}

impl Received {
    /// The DHCPv6 message of `frame` (the frame this was parsed from).
    pub fn payload<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        frame.get(self.payload.0..self.payload.1).unwrap_or(&[])
    }
}

/// Why a received frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadFrame {
    /// Not IPv6/UDP to the expected ports (the XDP program should not have steered it).
    NotDhcp,
    /// The IPv6 or UDP length disagrees with the frame.
    Length,
    /// The UDP checksum is wrong (or zero).
    Checksum,
}

/// Which side's rule picks the frames: replies to clients and relays, or requests to servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// UDP to 546 or 547 (the generator receives).
    Client,
    /// UDP to 547 (the reflector receives).
    Server,
}

/// Finds the DHCPv6 payload of `frame` and checks its lengths and UDP checksum.
pub fn parse(frame: &[u8], side: Side) -> Result<Received, BadFrame> {
    let (received, headers) = parse_with_headers(frame, side)?;
    // A datagram from a kernel socket on a veth peer carries only the pseudo-header sum
    // (CHECKSUM_PARTIAL); the kernel accepts those unverified, and so does the generator.
    if !headers.verify_checksum(frame) && !headers.checksum_is_partial(frame) {
        return Err(BadFrame::Checksum);
    }
    Ok(received)
}

/// Like [`parse`] without the checksum: for the reflector, whose incremental checksum update
/// keeps a wrong checksum wrong, so that the generator still finds it.
pub fn parse_headers(frame: &[u8], side: Side) -> Result<Received, BadFrame> {
    parse_with_headers(frame, side).map(|(received, _)| received)
}

fn parse_with_headers(frame: &[u8], side: Side) -> Result<(Received, Headers), BadFrame> {
    let verdict = match side {
        Side::Client => classify_client(frame),
        Side::Server => classify(frame),
    };
    let Verdict::Steer(offsets) = verdict else {
        return Err(BadFrame::NotDhcp);
    };
    // Ethernet pads short frames: trailing bytes beyond the IPv6 payload length are allowed.
    let (headers, payload) = Headers::parse(frame).map_err(|_| BadFrame::Length)?;
    let received = Received {
        payload: (payload.start, payload.end),
        l3: offsets.l3,
        l4: offsets.l4,
    };
    Ok((received, headers))
}

/// Turns a received request (`frame`, parsed as `received`) into its echo, in place: MACs
/// swapped with `own_mac` as the source, IPv6 addresses swapped (from `link_local` when the
/// request went to a multicast group), UDP ports swapped, checksum updated. Returns the length
/// of the echo (the frame without Ethernet padding); `None` when `received` does not describe
/// `frame`.
pub fn reflect(
    frame: &mut [u8],
    received: &Received,
    own_mac: &Mac,
    link_local: &Ipv6Addr,
) -> Option<usize> {
    let end = received.payload.1;
    let mut packet = ipv6::Packet::new_checked(frame.get_mut(received.l3..end)?).ok()?;
    let old_source = packet.source();
    let old_destination = packet.destination();
    let new_source = if old_destination.is_multicast() {
        *link_local
    } else {
        old_destination
    };
    packet.set_source(&new_source);
    packet.set_destination(&old_source);
    let mut datagram = udp::Packet::new_checked(packet.payload_mut()).ok()?;
    datagram.swap_ports();
    // Swapping fields leaves the one's-complement sum as it was; only a replaced multicast
    // destination changes it.
    if new_source != old_destination {
        let updated = checksum::update(
            datagram.checksum(),
            &old_destination.octets(),
            &new_source.octets(),
        );
        datagram.set_checksum(updated);
    }
    ethernet::Frame::new_checked(&mut *frame)
        .ok()?
        .turn_around(own_mac);
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets in an untagged frame.
    const IP: usize = ethernet::HEADER_LEN;
    const UDP: usize = IP + ipv6::HEADER_LEN;

    fn udp_checksum_of(frame: &[u8]) -> u16 {
        let mut udp = frame[UDP..].to_vec();
        udp[6] = 0;
        udp[7] = 0;
        let source: [u8; 16] = frame[IP + 8..IP + 24].try_into().unwrap();
        let destination: [u8; 16] = frame[IP + 24..IP + 40].try_into().unwrap();
        checksum::udp(&source.into(), &destination.into(), &udp)
    }

    const CLIENT_MAC: Mac = [0x02, 0xbe, 0, 0, 0, 7];
    const SERVER_MAC: Mac = [0x02, 0, 0, 0, 0x05, 0x47];

    fn client() -> Ipv6Addr {
        "fe80::be:ff:fe00:7".parse().unwrap()
    }

    fn group() -> Ipv6Addr {
        "ff02::1:2".parse().unwrap()
    }

    #[test]
    fn built_frames_carry_the_reference_checksum() {
        let template = HeaderTemplate::new(multicast_mac(group()), group(), 546, 547);
        let mut buf = [0u8; 2048];
        // Odd and even lengths, and one whose checksum would fold to zero without the rule.
        for len in [0, 1, 2, 3, 10, 61, 64, 101, 1400] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let n = template
                .write(&mut buf, &CLIENT_MAC, &client(), &payload)
                .unwrap();
            let frame = &buf[..n];
            assert_eq!(n, HEADERS_LEN + len);
            assert_eq!(&frame[..6], &[0x33, 0x33, 0, 1, 0, 2]);
            assert_eq!(&frame[6..12], &CLIENT_MAC);
            assert_eq!(&frame[12..14], &[0x86, 0xdd]);
            assert_eq!(frame[IP] >> 4, 6);
            assert_eq!(frame[IP + 7], 1, "hop limit of link-scope multicast");
            let checksum = u16::from_be_bytes([frame[UDP + 6], frame[UDP + 7]]);
            assert_eq!(checksum, udp_checksum_of(frame), "payload length {len}");
            let received = parse(frame, Side::Server).unwrap();
            assert_eq!(received.payload(frame), &payload[..]);
        }
    }

    #[test]
    fn known_answer() {
        // fe80::1 -> ff02::1:2, 546 -> 547, payload 01 02 03: computed by hand, RFC 1071.
        let template = HeaderTemplate::new(multicast_mac(group()), group(), 546, 547);
        let mut buf = [0u8; 128];
        let source: Ipv6Addr = "fe80::1".parse().unwrap();
        let n = template
            .write(&mut buf, &CLIENT_MAC, &source, &[1, 2, 3])
            .unwrap();
        // Words: fe80 0001 ff02 0001 0002 | 000b | 0011 | 0222 0223 000b | 0102 0300
        // = 0x205f4; folded 0x05f6; complement 0xfa09.
        assert_eq!(&buf[UDP + 6..UDP + 8], &[0xfa, 0x09]);
        assert_eq!(n, HEADERS_LEN + 3);
    }

    #[test]
    fn unicast_frames_have_hop_limit_64() {
        let server: Ipv6Addr = "2001:db8::547".parse().unwrap();
        let template = HeaderTemplate::new(SERVER_MAC, server, 547, 547);
        let mut buf = [0u8; 256];
        let relay: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
        let n = template
            .write(&mut buf, &CLIENT_MAC, &relay, &[12; 40])
            .unwrap();
        assert_eq!(buf[IP + 7], 64);
        assert_eq!(&buf[..6], &SERVER_MAC);
        let checksum = u16::from_be_bytes([buf[UDP + 6], buf[UDP + 7]]);
        assert_eq!(checksum, udp_checksum_of(&buf[..n]));
    }

    #[test]
    fn too_small_a_buffer_is_refused() {
        let template = HeaderTemplate::new(SERVER_MAC, client(), 547, 546);
        let mut buf = [0u8; 70];
        assert!(
            template
                .write(&mut buf, &CLIENT_MAC, &client(), &[0; 9])
                .is_none()
        );
        assert!(
            template
                .write(&mut buf, &CLIENT_MAC, &client(), &[0; 8])
                .is_some()
        );
    }

    #[test]
    fn parse_rejects_bad_checksums_lengths_and_other_traffic() {
        let template = HeaderTemplate::new(CLIENT_MAC, client(), 547, 546);
        let mut buf = [0u8; 256];
        let n = template
            .write(
                &mut buf,
                &SERVER_MAC,
                &"fe80::547".parse().unwrap(),
                &[7; 33],
            )
            .unwrap();
        let good = buf[..n].to_vec();
        assert!(parse(&good, Side::Client).is_ok());
        assert_eq!(parse(&good, Side::Server), Err(BadFrame::NotDhcp));

        let mut bad = good.clone();
        bad[n - 1] ^= 0x40;
        assert_eq!(parse(&bad, Side::Client), Err(BadFrame::Checksum));
        let mut zero = good.clone();
        zero[UDP + 6] = 0;
        zero[UDP + 7] = 0;
        assert_eq!(parse(&zero, Side::Client), Err(BadFrame::Checksum));
        let mut long = good.clone();
        long[UDP + 5] += 1;
        assert_eq!(parse(&long, Side::Client), Err(BadFrame::Length));
        assert_eq!(parse(&good[..n - 1], Side::Client), Err(BadFrame::Length));
        // Ethernet padding after the datagram is fine.
        let mut padded = good.clone();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(
            parse(&padded, Side::Client).unwrap().payload(&padded),
            &[7; 33]
        );
    }

    #[test]
    fn headers_only_parse_leaves_the_checksum_alone() {
        let template = HeaderTemplate::new(multicast_mac(group()), group(), 546, 547);
        let mut buf = [0u8; 256];
        let n = template
            .write(&mut buf, &CLIENT_MAC, &client(), &[3; 17])
            .unwrap();
        buf[n - 1] ^= 1;
        assert_eq!(parse(&buf[..n], Side::Server), Err(BadFrame::Checksum));
        let received = parse_headers(&buf[..n], Side::Server).unwrap();
        assert_eq!(received.payload(&buf[..n]).len(), 17);
        assert_eq!(
            parse_headers(&buf[..n - 1], Side::Server),
            Err(BadFrame::Length)
        );
    }

    #[test]
    fn parse_never_panics() {
        let template = HeaderTemplate::new(CLIENT_MAC, client(), 547, 546);
        let mut buf = [0u8; 256];
        let n = template
            .write(
                &mut buf,
                &SERVER_MAC,
                &"fe80::547".parse().unwrap(),
                &[7; 20],
            )
            .unwrap();
        for len in 0..=n {
            let _ = parse(&buf[..len], Side::Client);
        }
        let mut state = 0x1234_5678_u32;
        for _ in 0..20_000 {
            let len = (state % 120) as usize;
            let mut frame = buf[..n].to_vec();
            frame.truncate(len);
            for byte in frame.iter_mut().skip((state >> 8) as usize % 70).take(3) {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                *byte = (state >> 16) as u8;
            }
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let _ = parse(&frame, Side::Client);
            let _ = parse(&frame, Side::Server);
        }
    }

    #[test]
    fn reflect_swaps_everything_and_keeps_a_valid_checksum() {
        let reflector_mac: Mac = [0x02, 0xee, 0, 0, 0, 1];
        let reflector_ll: Ipv6Addr = "fe80::ee:1".parse().unwrap();
        // A direct client's multicast Solicit: the echo comes from the link-local address.
        let template = HeaderTemplate::new(multicast_mac(group()), group(), 546, 547);
        let mut buf = [0u8; 512];
        for len in [0, 1, 10, 77, 300] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 13) as u8).collect();
            let n = template
                .write(&mut buf, &CLIENT_MAC, &client(), &payload)
                .unwrap();
            let received = parse(&buf[..n], Side::Server).unwrap();
            let echo_len =
                reflect(&mut buf[..n], &received, &reflector_mac, &reflector_ll).unwrap();
            let echo = &buf[..echo_len];
            assert_eq!(&echo[..6], &CLIENT_MAC);
            assert_eq!(&echo[6..12], &reflector_mac);
            assert_eq!(&echo[IP + 8..IP + 24], &reflector_ll.octets());
            assert_eq!(&echo[IP + 24..IP + 40], &client().octets());
            assert_eq!(&echo[UDP..UDP + 4], &[2, 35, 2, 34], "547 -> 546");
            let checksum = u16::from_be_bytes([echo[UDP + 6], echo[UDP + 7]]);
            assert_eq!(checksum, udp_checksum_of(echo), "payload length {len}");
            let back = parse(echo, Side::Client).unwrap();
            assert_eq!(back.payload(echo), &payload[..]);
        }

        // A relay's unicast Relay-forward: addresses swap, the checksum stays.
        let server: Ipv6Addr = "2001:db8::547".parse().unwrap();
        let relay: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
        let template = HeaderTemplate::new(reflector_mac, server, 547, 547);
        let n = template
            .write(&mut buf, &CLIENT_MAC, &relay, &[12; 61])
            .unwrap();
        let before = buf[UDP + 6..UDP + 8].to_vec();
        let received = parse(&buf[..n], Side::Server).unwrap();
        reflect(&mut buf[..n], &received, &reflector_mac, &reflector_ll).unwrap();
        assert_eq!(&buf[IP + 8..IP + 24], &server.octets());
        assert_eq!(&buf[IP + 24..IP + 40], &relay.octets());
        assert_eq!(&buf[UDP + 6..UDP + 8], &before[..]);
        assert!(parse(&buf[..n], Side::Client).is_ok());
    }

    #[test]
    fn macs_parse_and_multicast_macs_follow_rfc_2464() {
        assert_eq!(parse_mac("02:00:5e:10:00:01"), Ok([2, 0, 0x5e, 0x10, 0, 1]));
        assert!(parse_mac("02:00:5e:10:00").is_err());
        assert!(parse_mac("02:00:5e:10:00:01:02").is_err());
        assert!(parse_mac("02:00:5e:10:00:zz").is_err());
        assert!(parse_mac("02:00:5e:10:00:100").is_err());
        assert_eq!(multicast_mac(group()), [0x33, 0x33, 0, 1, 0, 2]);
    }
}
