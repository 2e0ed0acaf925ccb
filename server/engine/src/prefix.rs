//! IPv6 prefixes as 128-bit integers: parsing, containment, splitting.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// An IPv6 prefix: the address bits (host bits zero) and the prefix length.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Prefix {
    bits: u128,
    len: u8,
}

/// Why a text is not a prefix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// No `/` separates address and length.
    #[error("expected ADDRESS/LENGTH, e.g. 2001:db8::/64")]
    MissingLength,
    /// The part before `/` is not an IPv6 address.
    #[error("`{0}` is not an IPv6 address")]
    BadAddress(String),
    /// The length is not a number from 0 to 128.
    #[error("`{0}` is not a prefix length from 0 to 128")]
    BadLength(String),
    /// Bits are set beyond the prefix length.
    #[error("host bits are set: did you mean {0}?")]
    HostBitsSet(Prefix),
}

impl Prefix {
    /// A prefix from an address and a length; host bits must be zero.
    pub fn new(addr: Ipv6Addr, len: u8) -> Result<Self, PrefixError> {
        if len > 128 {
            return Err(PrefixError::BadLength(len.to_string()));
        }
        let bits = u128::from(addr);
        let masked = bits & mask(len);
        if masked != bits {
            return Err(PrefixError::HostBitsSet(Self { bits: masked, len }));
        }
        Ok(Self { bits, len })
    }

    /// The prefix that contains `addr` at length `len` (host bits cleared).
    pub fn containing(addr: Ipv6Addr, len: u8) -> Self {
        let len = len.min(128);
        Self {
            bits: u128::from(addr) & mask(len),
            len,
        }
    }

    /// The first address of the prefix.
    pub fn addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.bits)
    }

    /// The prefix bits as an integer (host bits zero).
    pub fn bits(&self) -> u128 {
        self.bits
    }

    /// The prefix length.
    #[allow(
        clippy::len_without_is_empty,
        reason = "a prefix length, not a collection size"
    )]
    pub fn len(&self) -> u8 {
        self.len
    }

    /// The netmask of this prefix as an integer.
    pub fn mask(&self) -> u128 {
        mask(self.len)
    }

    /// Whether `addr` lies inside this prefix.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        u128::from(addr) & mask(self.len) == self.bits
    }

    /// Whether `other` lies entirely inside this prefix.
    pub fn covers(&self, other: &Prefix) -> bool {
        other.len >= self.len && other.bits & mask(self.len) == self.bits
    }

    /// Whether the two prefixes share any address.
    pub fn overlaps(&self, other: &Prefix) -> bool {
        self.covers(other) || other.covers(self)
    }

    /// Part `index` (0-based) of `parts` equal parts; `parts` must be a power of two.
    pub fn split(&self, index: u32, parts: u32) -> Option<Prefix> {
        if !parts.is_power_of_two() || index >= parts {
            return None;
        }
        let extra = parts.trailing_zeros() as u8;
        let len = self.len.checked_add(extra).filter(|len| *len <= 128)?;
        let shift = 128 - u32::from(len);
        let offset = u128::from(index).checked_shl(shift).unwrap_or(0);
        Some(Self {
            bits: self.bits | offset,
            len,
        })
    }
}

/// The netmask of a prefix length as an integer.
pub(crate) fn mask(len: u8) -> u128 {
    match len {
        0 => 0,
        len if len >= 128 => u128::MAX,
        len => u128::MAX << (128 - u32::from(len)),
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr, len) = text.split_once('/').ok_or(PrefixError::MissingLength)?;
        let addr: Ipv6Addr = addr
            .trim()
            .parse()
            .map_err(|_| PrefixError::BadAddress(addr.to_owned()))?;
        let len: u8 = len
            .trim()
            .parse()
            .ok()
            .filter(|len| *len <= 128)
            .ok_or_else(|| PrefixError::BadLength(len.to_owned()))?;
        Self::new(addr, len)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let prefix: Prefix = "2001:db8:1::/64".parse().unwrap();
        assert_eq!(prefix.len(), 64);
        assert_eq!(prefix.to_string(), "2001:db8:1::/64");
    }

    #[test]
    fn rejects_host_bits_and_names_the_fix() {
        let error = "2001:db8:1::1/64".parse::<Prefix>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "host bits are set: did you mean 2001:db8:1::/64?"
        );
        assert!(matches!(
            "2001:db8::/129".parse::<Prefix>(),
            Err(PrefixError::BadLength(_))
        ));
        assert!(matches!(
            "2001:db8::".parse::<Prefix>(),
            Err(PrefixError::MissingLength)
        ));
        assert!(matches!(
            "zz::/64".parse::<Prefix>(),
            Err(PrefixError::BadAddress(_))
        ));
    }

    #[test]
    fn splits_into_halves_and_quarters() {
        let prefix: Prefix = "2001:db8:1::/64".parse().unwrap();
        assert_eq!(prefix.split(0, 2).unwrap().to_string(), "2001:db8:1::/65");
        assert_eq!(
            prefix.split(1, 2).unwrap().to_string(),
            "2001:db8:1:0:8000::/65"
        );
        assert_eq!(
            prefix.split(3, 4).unwrap().to_string(),
            "2001:db8:1:0:c000::/66"
        );
        assert_eq!(prefix.split(2, 2), None);
        assert_eq!(prefix.split(0, 3), None);
    }

    #[test]
    fn containment() {
        let prefix: Prefix = "2001:db8:1::/64".parse().unwrap();
        let half: Prefix = "2001:db8:1::/65".parse().unwrap();
        assert!(prefix.covers(&half));
        assert!(!half.covers(&prefix));
        assert!(prefix.overlaps(&half));
        assert!(prefix.contains("2001:db8:1::ffff".parse().unwrap()));
        assert!(!prefix.contains("2001:db8:2::1".parse().unwrap()));
    }
}
