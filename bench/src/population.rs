//! The emulated clients: client i's DUID, IAIDs, relay and link-local address.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// Private enterprise number used in DUID-EN and Remote-Id (32473: documentation, RFC 5612).
pub const ENTERPRISE: u32 = 32473;
/// IAID of every client's IA_NA.
pub const IAID_NA: u32 = 1;
/// IAID of every client's IA_PD.
pub const IAID_PD: u32 = 2;
/// The largest population.
pub const MAX_CLIENTS: u32 = 10_000_000;

/// An IPv6 prefix such as `2001:db8:1::/65`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix {
    addr: u128,
    len: u8,
}

impl Prefix {
    /// The prefix `addr/len` (host bits cleared); `None` when `len > 128`.
    pub fn new(addr: Ipv6Addr, len: u8) -> Option<Self> {
        if len > 128 {
            return None;
        }
        Some(Self {
            addr: u128::from(addr) & Self::mask(len),
            len,
        })
    }

    fn mask(len: u8) -> u128 {
        if len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(len))
        }
    }

    /// The network address.
    pub fn addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.addr)
    }

    /// The prefix length.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// True for `::/0`-style empty prefixes of length 0.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `addr` lies inside.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        u128::from(addr) & Self::mask(self.len) == self.addr
    }

    /// Whether the prefix `addr/len` lies inside.
    pub fn contains_prefix(&self, addr: Ipv6Addr, len: u8) -> bool {
        len >= self.len && len <= 128 && self.contains(addr)
    }

    /// The address `offset` after the network address (wrapping inside the prefix).
    pub fn nth(&self, offset: u128) -> Ipv6Addr {
        Ipv6Addr::from(self.addr | (offset & !Self::mask(self.len)))
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

impl FromStr for Prefix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| format!("{s}: expected ADDRESS/LENGTH"))?;
        let addr: Ipv6Addr = addr.parse().map_err(|e| format!("{s}: {e}"))?;
        let len: u8 = len.parse().map_err(|e| format!("{s}: {e}"))?;
        Prefix::new(addr, len).ok_or_else(|| format!("{s}: length above 128"))
    }
}

/// A DUID held inline (the longest we build is 14 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DuidBuf {
    bytes: [u8; 14],
    len: u8,
}

impl DuidBuf {
    /// The DUID's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// An emulated relay agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Relay {
    /// The relay's index.
    pub index: u32,
    /// link-address of its Relay-forward messages: it selects the server's link.
    pub link_address: Ipv6Addr,
}

impl Relay {
    /// The Interface-Id option body this relay sends (and expects echoed).
    pub fn interface_id(&self) -> [u8; 9] {
        let mut id = *b"bench\0\0\0\0";
        id[5..].copy_from_slice(&self.index.to_be_bytes());
        id
    }
}

/// N clients, derived from their index so that 10 million need no per-client storage here.
#[derive(Clone, Debug)]
pub struct Population {
    clients: u32,
    relays: u32,
    seed: u8,
    relay_link: Prefix,
}

impl Population {
    /// `clients` clients behind `relays` relays (0: direct clients); `seed` distinguishes the
    /// DUIDs of two benches run side by side; relay r's link-address is `relay_link`'s
    /// (r + 1)-th address.
    pub fn new(clients: u32, relays: u32, seed: u8, relay_link: Prefix) -> Self {
        Self {
            clients: clients.clamp(1, MAX_CLIENTS),
            relays,
            seed,
            relay_link,
        }
    }

    /// Number of clients.
    pub fn len(&self) -> u32 {
        self.clients
    }

    /// Never true: a population has at least one client.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Number of relays (0: clients are on the link).
    pub fn relays(&self) -> u32 {
        self.relays
    }

    /// Client `client`'s MAC address: locally administered, from the seed and the index.
    pub fn mac(&self, client: u32) -> [u8; 6] {
        let i = client.to_be_bytes();
        // 02: a locally administered unicast MAC, never a real vendor's.
        [0x02, self.seed, i[0], i[1], i[2], i[3]]
    }

    /// Client `client`'s DUID: DUID-LLT, DUID-EN and DUID-LL in turn (RFC 9915 §11).
    pub fn duid(&self, client: u32) -> DuidBuf {
        let mut bytes = [0u8; 14];
        let mac = self.mac(client);
        let len = match client % 3 {
            0 => {
                // DUID-LLT: type 1, hardware type 1 (Ethernet), time, link-layer address.
                bytes[..8].copy_from_slice(&[0, 1, 0, 1, 0x2e, 0, 0, 0]);
                bytes[8..14].copy_from_slice(&mac);
                14
            }
            1 => {
                // DUID-EN: type 2, enterprise number, identifier.
                bytes[..2].copy_from_slice(&[0, 2]);
                bytes[2..6].copy_from_slice(&ENTERPRISE.to_be_bytes());
                bytes[6..8].copy_from_slice(&[0xbe, self.seed]);
                bytes[8..12].copy_from_slice(&client.to_be_bytes());
                12
            }
            _ => {
                // DUID-LL: type 3, hardware type 1, link-layer address.
                bytes[..4].copy_from_slice(&[0, 3, 0, 1]);
                bytes[4..10].copy_from_slice(&mac);
                10
            }
        };
        DuidBuf { bytes, len }
    }

    /// The client whose DUID this is, if it is one of this population's: the index sits in
    /// the DUID's last four bytes (the end of the MAC, or the DUID-EN identifier).
    pub fn client_of(&self, duid: &[u8]) -> Option<u32> {
        let index = match duid.len() {
            10 | 12 | 14 => u32::from_be_bytes(duid[duid.len() - 4..].try_into().ok()?),
            _ => return None,
        };
        (index < self.len() && self.duid(index).as_bytes() == duid).then_some(index)
    }

    /// Relay `relay`'s MAC address (locally administered, apart from the clients').
    pub fn relay_mac(&self, relay: u32) -> [u8; 6] {
        let i = relay.to_be_bytes();
        [0x06, self.seed, i[0], i[1], i[2], i[3]]
    }

    /// The relay in front of `client`, if clients are relayed.
    pub fn relay_of(&self, client: u32) -> Option<Relay> {
        if self.relays == 0 {
            return None;
        }
        let index = client % self.relays;
        Some(Relay {
            index,
            link_address: self.relay_link.nth(u128::from(index) + 1),
        })
    }

    /// The client's link-local address (modified EUI-64 of its MAC): the relay's peer-address.
    pub fn link_local(&self, client: u32) -> Ipv6Addr {
        let m = self.mac(client);
        Ipv6Addr::from([
            0xfe,
            0x80,
            0,
            0,
            0,
            0,
            0,
            0,
            m[0] ^ 0x02,
            m[1],
            m[2],
            0xff,
            0xfe,
            m[3],
            m[4],
            m[5],
        ])
    }

    /// The Remote-Id (RFC 4649) the relay adds for `client`: its subscriber line.
    pub fn remote_id(&self, client: u32) -> [u8; 8] {
        let mut id = *b"line\0\0\0\0";
        id[4..].copy_from_slice(&client.to_be_bytes());
        id
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use xdhcp6_proto::{Duid, DuidType};

    use super::*;

    fn population(clients: u32, relays: u32) -> Population {
        Population::new(clients, relays, 0xbe, "2001:db8:1::/64".parse().unwrap())
    }

    #[test]
    fn a_duid_names_its_client() {
        let p = population(1000, 0);
        for i in [0, 1, 2, 999] {
            assert_eq!(p.client_of(p.duid(i).as_bytes()), Some(i));
        }
        let other = Population::new(1000, 0, 0x01, "2001:db8::/64".parse().unwrap());
        assert_eq!(p.client_of(other.duid(5).as_bytes()), None);
        assert_eq!(p.client_of(population(2000, 0).duid(1500).as_bytes()), None);
        assert_eq!(p.client_of(&[0, 3, 0, 1]), None);
    }

    #[test]
    fn duids_are_distinct_and_mixed() {
        let p = population(100_000, 0);
        let mut seen = HashSet::new();
        let mut kinds = [0u32; 4];
        for i in 0..p.len() {
            let duid = p.duid(i);
            let parsed = Duid::new_checked(duid.as_bytes()).unwrap();
            match parsed.duid_type() {
                DuidType::Llt => kinds[1] += 1,
                DuidType::En => kinds[2] += 1,
                DuidType::Ll => kinds[3] += 1,
                other => panic!("unexpected {other:?}"),
            }
            assert!(seen.insert(duid), "client {i} repeats a DUID");
        }
        assert_eq!(kinds, [0, 33_334, 33_333, 33_333]);
    }

    #[test]
    fn seeds_separate_populations() {
        let a = Population::new(10, 0, 1, "::/0".parse().unwrap());
        let b = Population::new(10, 0, 2, "::/0".parse().unwrap());
        for i in 0..10 {
            assert_ne!(a.duid(i), b.duid(i));
        }
    }

    #[test]
    fn relays_round_robin_with_link_addresses_in_the_prefix() {
        let p = population(100, 10);
        let link: Prefix = "2001:db8:1::/64".parse().unwrap();
        for i in 0..100 {
            let r = p.relay_of(i).unwrap();
            assert_eq!(r.index, i % 10);
            assert!(link.contains(r.link_address));
        }
        assert_eq!(
            p.relay_of(3).unwrap().link_address,
            "2001:db8:1::4".parse::<Ipv6Addr>().unwrap()
        );
        assert!(population(5, 0).relay_of(1).is_none());
        assert!(p.link_local(7).is_unicast_link_local());
        assert_ne!(p.link_local(7), p.link_local(8));
    }

    #[test]
    fn prefixes_parse_and_contain() {
        let p: Prefix = "2001:db8:1::/65".parse().unwrap();
        assert!(p.contains("2001:db8:1::1".parse().unwrap()));
        assert!(p.contains("2001:db8:1:0:7fff::1".parse().unwrap()));
        assert!(!p.contains("2001:db8:1:0:8000::1".parse().unwrap()));
        assert!(p.contains_prefix("2001:db8:1::".parse().unwrap(), 72));
        assert!(!p.contains_prefix("2001:db8:1::".parse().unwrap(), 64));
        assert_eq!(p.to_string(), "2001:db8:1::/65");
        assert!("2001:db8::/129".parse::<Prefix>().is_err());
        assert!("2001:db8::".parse::<Prefix>().is_err());
    }
}
