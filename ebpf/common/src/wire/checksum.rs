//! The Internet checksum (RFC 1071) and the UDP checksum over the IPv6 pseudo-header
//! (RFC 8200 §8.1).
//!
//! Sums are kept unfolded in a `u64` while they are built ([`sum`], [`pseudo_header`]), folded
//! to 16 bits once ([`fold`]) and complemented for the header field ([`finish`]).

use core::net::Ipv6Addr;

use super::IPPROTO_UDP;

/// The one's-complement sum of `data` as big-endian 16-bit words (an odd last byte padded with
/// zero), not yet folded: 64 bits at a time with end-around carry (RFC 1071 §2(B): the sum is
/// independent of byte order and word size once folded), then at most 7 bytes.
pub fn sum(data: &[u8]) -> u64 {
    let mut wide = 0u64;
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let (sum, carry) = wide.overflowing_add(u64::from_be_bytes(word));
        wide = sum + u64::from(carry);
    }
    // Fold 64 to 32 bits so that the 16-bit additions below cannot overflow.
    let mut total = (wide >> 32) + (wide & 0xffff_ffff);
    let rest = chunks.remainder();
    let mut words = rest.chunks_exact(2);
    for pair in &mut words {
        total += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = words.remainder() {
        total += u64::from(*last) << 8;
    }
    total
}

/// Folds a sum to 16 bits (end-around carry).
pub const fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The checksum field for `sum`: its complement, 0 sent as 0xffff (RFC 768; zero means "no
/// checksum", which IPv6 forbids, RFC 8200 §8.1).
pub const fn finish(sum: u64) -> u16 {
    match !fold(sum) {
        0 => 0xffff,
        checksum => checksum,
    }
}

/// The unfolded sum of the IPv6 pseudo-header: addresses, upper-layer length, next header.
pub fn pseudo_header(source: &Ipv6Addr, destination: &Ipv6Addr, next_header: u8, len: u32) -> u64 {
    sum(&source.octets())
        + sum(&destination.octets())
        + u64::from(len >> 16)
        + u64::from(len & 0xffff)
        + u64::from(next_header)
}

/// The UDP checksum field of `datagram` (header and payload, its checksum field zero) sent
/// from `source` to `destination`.
pub fn udp(source: &Ipv6Addr, destination: &Ipv6Addr, datagram: &[u8]) -> u16 {
    finish(pseudo_header(source, destination, IPPROTO_UDP, datagram.len() as u32) + sum(datagram))
}

/// Whether `datagram` (header and payload, checksum in place) arrived intact from `source` to
/// `destination`. A zero checksum field fails: IPv6 receivers discard it (RFC 8200 §8.1).
pub fn udp_is_valid(source: &Ipv6Addr, destination: &Ipv6Addr, datagram: &[u8]) -> bool {
    let field = datagram.get(6..8);
    if field.is_none() || field == Some(&[0, 0]) {
        return false;
    }
    let total =
        pseudo_header(source, destination, IPPROTO_UDP, datagram.len() as u32) + sum(datagram);
    fold(total) == 0xffff
}

/// Whether the checksum field of `datagram` holds only the pseudo-header sum, folded and not
/// complemented: what Linux leaves for a CHECKSUM_PARTIAL datagram whose checksum the device
/// was to finish (`udp6_hwcsum_outgoing`: `uh->check = ~csum_ipv6_magic(...)`), seen when a
/// veth peer on the same host sends it. The kernel accepts such a datagram unverified.
pub fn udp_is_partial(source: &Ipv6Addr, destination: &Ipv6Addr, datagram: &[u8]) -> bool {
    let Some(&[high, low]) = datagram.get(6..8) else {
        return false;
    };
    let field = u16::from_be_bytes([high, low]);
    let pseudo = pseudo_header(source, destination, IPPROTO_UDP, datagram.len() as u32);
    // Equal in one's-complement arithmetic: the sum plus the field's complement is zero.
    field != 0 && fold(pseudo + u64::from(!field)) == 0xffff
}

/// The checksum field after one 16-byte field covered by it changed from `old` to `new`
/// (RFC 1624 incremental update: HC' = ~(~HC + ~m + m')).
pub fn update(checksum: u16, old: &[u8; 16], new: &[u8; 16]) -> u16 {
    finish(u64::from(!checksum) + u64::from(!fold(sum(old))) + sum(new))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    /// RFC 1071 word by word, the textbook way: an independent check of the fast sum.
    fn reference(source: &Ipv6Addr, destination: &Ipv6Addr, udp: &[u8]) -> u16 {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&source.octets());
        bytes.extend_from_slice(&destination.octets());
        bytes.extend_from_slice(&(udp.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, IPPROTO_UDP]);
        bytes.extend_from_slice(udp);
        if bytes.len() % 2 == 1 {
            bytes.push(0);
        }
        let mut sum: u32 = 0;
        for word in bytes.chunks(2) {
            sum += (u32::from(word[0]) << 8) | u32::from(word[1]);
            if sum > 0xffff {
                sum = (sum & 0xffff) + 1;
            }
        }
        match !(sum as u16) {
            0 => 0xffff,
            checksum => checksum,
        }
    }

    #[test]
    fn every_length_and_alignment_sums_like_the_reference() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 31 + 7) as u8 ^ 0xa5).collect();
        for start in 0..8 {
            for len in 0..(data.len() - start) {
                let part = &data[start..start + len];
                let mut reference: u32 = 0;
                for word in part.chunks(2) {
                    let high = u32::from(word[0]) << 8;
                    reference += high | u32::from(*word.get(1).unwrap_or(&0));
                }
                while reference > 0xffff {
                    reference = (reference & 0xffff) + (reference >> 16);
                }
                assert_eq!(u32::from(fold(sum(part))), reference, "{start}+{len}");
            }
        }
    }

    #[test]
    fn udp_matches_the_reference_and_verifies() {
        let source: Ipv6Addr = "fe80::be:ff:fe00:7".parse().unwrap();
        let destination: Ipv6Addr = "ff02::1:2".parse().unwrap();
        for len in [0usize, 1, 2, 3, 10, 61, 64, 101, 1400] {
            let mut datagram: Vec<u8> = (0..8 + len).map(|i| (i * 7 + len) as u8).collect();
            datagram[6] = 0;
            datagram[7] = 0;
            let checksum = udp(&source, &destination, &datagram);
            assert_eq!(
                checksum,
                reference(&source, &destination, &datagram),
                "{len}"
            );
            datagram[6..8].copy_from_slice(&checksum.to_be_bytes());
            assert!(udp_is_valid(&source, &destination, &datagram));
            datagram[(8 + len) / 2] ^= 0x10;
            assert!(!udp_is_valid(&source, &destination, &datagram), "{len}");
        }
        assert!(!udp_is_valid(&source, &destination, &[0; 8]));
        assert!(!udp_is_valid(&source, &destination, &[0; 7]));
    }

    #[test]
    fn known_answer() {
        // fe80::1 -> ff02::1:2, 546 -> 547, payload 01 02 03: computed by hand, RFC 1071.
        // Words: fe80 0001 ff02 0001 0002 | 000b | 0011 | 0222 0223 000b | 0102 0300
        // = 0x205f4; folded 0x05f6; complement 0xfa09.
        let datagram = [0x02, 0x22, 0x02, 0x23, 0, 11, 0, 0, 1, 2, 3];
        let source = "fe80::1".parse().unwrap();
        let destination = "ff02::1:2".parse().unwrap();
        assert_eq!(udp(&source, &destination, &datagram), 0xfa09);
    }

    #[test]
    fn zero_checksum_is_sent_as_all_ones() {
        // Fix two bytes so that the sum of everything is 0xffff: the complement is zero.
        let source: Ipv6Addr = "fe80::1".parse().unwrap();
        let destination: Ipv6Addr = "fe80::2".parse().unwrap();
        let mut datagram = [0u8; 12];
        datagram[0..2].copy_from_slice(&547u16.to_be_bytes());
        datagram[2..4].copy_from_slice(&546u16.to_be_bytes());
        datagram[4..6].copy_from_slice(&12u16.to_be_bytes());
        let rest = fold(pseudo_header(&source, &destination, IPPROTO_UDP, 12) + sum(&datagram));
        datagram[8..10].copy_from_slice(&(0xffff - rest).to_be_bytes());
        assert_eq!(udp(&source, &destination, &datagram), 0xffff);
    }

    #[test]
    fn incremental_update_agrees_with_a_full_sum() {
        let source: Ipv6Addr = "fe80::1".parse().unwrap();
        let old: Ipv6Addr = "ff02::1:2".parse().unwrap();
        let new: Ipv6Addr = "fe80::547".parse().unwrap();
        let datagram = [0x02, 0x22, 0x02, 0x23, 0, 11, 0, 0, 9, 8, 7];
        let before = udp(&source, &old, &datagram);
        let after = update(before, &old.octets(), &new.octets());
        assert_eq!(after, udp(&source, &new, &datagram));
    }

    #[test]
    fn pseudo_header_sum_alone_is_a_partial_checksum() {
        let source: Ipv6Addr = "fe80::1".parse().unwrap();
        let destination: Ipv6Addr = "ff02::1:2".parse().unwrap();
        let mut datagram = [0x02, 0x22, 0x02, 0x23, 0, 12, 0, 0, 1, 2, 3, 4];
        let pseudo = pseudo_header(&source, &destination, IPPROTO_UDP, datagram.len() as u32);
        datagram[6..8].copy_from_slice(&fold(pseudo).to_be_bytes());
        assert!(udp_is_partial(&source, &destination, &datagram));
        assert!(!udp_is_valid(&source, &destination, &datagram));
        // The finished checksum is valid and not partial.
        datagram[6..8].copy_from_slice(&[0, 0]);
        let finished = udp(&source, &destination, &datagram);
        datagram[6..8].copy_from_slice(&finished.to_be_bytes());
        assert!(udp_is_valid(&source, &destination, &datagram));
        assert!(!udp_is_partial(&source, &destination, &datagram));
        // Zero and truncated fields are neither.
        datagram[6..8].copy_from_slice(&[0, 0]);
        assert!(!udp_is_partial(&source, &destination, &datagram));
        assert!(!udp_is_partial(&source, &destination, &datagram[..7]));
    }
}
