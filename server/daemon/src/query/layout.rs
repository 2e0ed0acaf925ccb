//! Which server of an RFC 6853 set would own an address or a prefix, read from the servers'
//! configurations: the pool prefixes every server of a link shares, and the slice (`range`,
//! `split`) each one hands out from. The same rules the engine applies to a client's Rebind
//! (an address in a pool prefix but outside this server's range is another server's), seen
//! from every server at once.

use std::net::Ipv6Addr;

use xdhcp6_engine::alloc::{AllocKey, Range, SaltKey, link_anycast};
use xdhcp6_engine::config::{Config, Link};
use xdhcp6_engine::prefix::Prefix;

/// The servers' configurations, in the order of `--servers`.
#[derive(Debug)]
pub struct Layout {
    servers: Vec<Config>,
}

/// One server's claim on a unit: the server hands it out from one of its slices, or by a
/// reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The server (its index in `--servers`).
    pub server: usize,
    /// The link of its configuration.
    pub link: String,
    /// Address (`na`) or delegated prefix (`pd`).
    pub kind: &'static str,
    /// The pool prefix the unit lies in (shared by the servers of a split or identical pool).
    pub pool: Prefix,
    /// The slice of the pool this server hands out from.
    pub range: Prefix,
    /// The unit asked about: the address as a /128, or the delegated prefix that holds it.
    pub unit: Prefix,
    /// Whether a reservation of this server names the unit.
    pub reserved: bool,
}

/// What the layout says about one address or prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// No configuration was given.
    Unknown,
    /// In no pool prefix of any server: none of them hands it out.
    Unconfigured,
    /// In a pool prefix, but in no server's slice of it (a gap between slices, or an address
    /// the servers never hand out).
    NoSlice {
        /// The pool prefixes that hold it.
        pools: Vec<Prefix>,
    },
    /// Exactly one server hands it out (split and unique models): the one that would hold it.
    Owner(Claim),
    /// Several servers hand it out from the same range (identical model): any of them may
    /// hold it.
    Shared(Vec<Claim>),
}

/// The unit a server hands a client first: the first hashed candidate of its slice that is
/// not reserved, as the engine proposes it from a slice where nothing else is bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    /// The server (its index in `--servers`).
    pub server: usize,
    /// The link of its configuration.
    pub link: String,
    /// Address (`na`) or delegated prefix (`pd`).
    pub kind: &'static str,
    /// The address (as a /128) or delegated prefix.
    pub unit: Prefix,
}

impl Layout {
    /// The layout of these configurations, one per server in `--servers` order.
    pub fn new(servers: Vec<Config>) -> Self {
        Self { servers }
    }

    /// How many servers it describes.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Whether it describes no server.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// The configuration of server `index`.
    pub fn config(&self, index: usize) -> Option<&Config> {
        self.servers.get(index)
    }

    /// What each server would hand the client `duid` first for the IA `iaid` (IA_NA and
    /// IA_PD of that IAID) on each of its links: the allocation hash of its salt, link name
    /// and slice (docs/architecture.md, "Split-prefix hashing"). A server whose slice is
    /// empty around it gives exactly this; a client that holds nothing gets it unless
    /// another client took it first. Servers of the identical model agree on it.
    pub fn first_choices(&self, duid: &[u8], iaid: u32) -> Vec<Choice> {
        let mut choices = Vec::new();
        for (server, config) in self.servers.iter().enumerate() {
            let salt = SaltKey::from_salt(&config.server.salt);
            for link in config.links.iter().filter(|link| !link.retired) {
                let key = AllocKey::new(&salt, duid, iaid, &link.name);
                for (kind, unit) in link_choices(config, link, &key) {
                    choices.push(Choice {
                        server,
                        link: link.name.clone(),
                        kind,
                        unit,
                    });
                }
            }
        }
        choices
    }

    /// Who would own `target`: an address as a /128, or a prefix.
    pub fn ownership(&self, target: Prefix) -> Ownership {
        if self.servers.is_empty() {
            return Ownership::Unknown;
        }
        let mut claims = Vec::new();
        let mut pools = Vec::new();
        for (server, config) in self.servers.iter().enumerate() {
            claims.extend(claims_of(server, config, target, &mut pools));
        }
        // A server's reservation of the unit wins over every slice: that server gives it to
        // that client alone.
        if let Some(reserved) = claims.iter().find(|claim| claim.reserved) {
            return Ownership::Owner(reserved.clone());
        }
        match claims.len() {
            0 if pools.is_empty() => Ownership::Unconfigured,
            0 => {
                pools.sort_by_key(|pool| (pool.bits(), pool.len()));
                pools.dedup();
                Ownership::NoSlice { pools }
            }
            1 => Ownership::Owner(claims.remove(0)),
            _ => Ownership::Shared(claims),
        }
    }
}

/// The first unit of each pool of `link` for `key`, as the engine's pools build their ranges
/// (reservations of the link and the on-link anycast addresses kept out).
fn link_choices(config: &Config, link: &Link, key: &AllocKey) -> Vec<(&'static str, Prefix)> {
    let reserved = || {
        config
            .reservations
            .iter()
            .filter(|reservation| reservation.applies_to(link.id))
    };
    let addresses: Vec<u128> = reserved()
        .filter_map(|reservation| reservation.address.map(u128::from))
        .collect();
    let prefixes: Vec<u128> = reserved()
        .filter_map(|reservation| reservation.prefix.map(|prefix| prefix.bits()))
        .collect();
    let mut choices = Vec::new();
    // Only the first pool the engine tries: later ones serve when it is full.
    if let Some(pool) = link.na_pools.first()
        && let Ok(range) = Range::addresses(pool.prefix, pool.range, 0)
    {
        let range = range.with_reserved(addresses.iter().copied());
        if let Some(unit) = range.propose(key, |_| true) {
            choices.push(("na", Prefix::containing(unit.into(), 128)));
        }
    }
    if let Some(pool) = link.pd_pools.first()
        && let Ok(range) = Range::prefixes(pool.prefix, pool.range, pool.delegated_len, 0)
    {
        let mut range = range.with_reserved(prefixes.iter().copied());
        if pool.inside_on_link {
            for na in link
                .na_pools
                .iter()
                .filter(|na| na.prefix.covers(&pool.prefix))
            {
                range = range.with_reserved(link_anycast(na.prefix));
            }
        }
        if let Some(unit) = range.propose(key, |_| true) {
            choices.push(("pd", Prefix::containing(unit.into(), pool.delegated_len)));
        }
    }
    choices
}

/// The claims of one server on `target`; pushes every pool prefix holding it to `pools`.
fn claims_of(
    server: usize,
    config: &Config,
    target: Prefix,
    pools: &mut Vec<Prefix>,
) -> Vec<Claim> {
    let mut claims = Vec::new();
    let address = target.addr();
    for link in config.links.iter().filter(|link| !link.retired) {
        // An address inside a PD pool carved from the on-link prefix is delegated space, not
        // an address the link hands out (as the engine's pools decide).
        let delegated = link
            .pd_pools
            .iter()
            .any(|pool| pool.inside_on_link && pool.prefix.contains(address));
        if target.len() == 128 && !delegated {
            for pool in link
                .na_pools
                .iter()
                .filter(|pool| pool.prefix.contains(address))
            {
                pools.push(pool.prefix);
                if pool.range.contains(address) {
                    claims.push(Claim {
                        server,
                        link: link.name.clone(),
                        kind: "na",
                        pool: pool.prefix,
                        range: pool.range,
                        unit: target,
                        reserved: false,
                    });
                }
            }
        }
        for pool in link
            .pd_pools
            .iter()
            .filter(|pool| pool.prefix.covers(&target))
        {
            pools.push(pool.prefix);
            // The delegated prefix that holds the target (an address behind a subscriber's
            // router finds its prefix), or the target itself when it is shorter.
            let unit = if target.len() >= pool.delegated_len {
                Prefix::containing(address, pool.delegated_len)
            } else {
                target
            };
            if pool.range.covers(&unit) {
                claims.push(Claim {
                    server,
                    link: link.name.clone(),
                    kind: "pd",
                    pool: pool.prefix,
                    range: pool.range,
                    unit,
                    reserved: false,
                });
            }
        }
    }
    for reservation in &config.reservations {
        let link = reservation
            .link
            .map(|id| config.link(id).name.clone())
            .unwrap_or_default();
        if target.len() == 128 && reservation.address == Some(address) {
            claims.push(reserved_claim(server, link.clone(), "na", target));
        }
        if let Some(prefix) = reservation.prefix
            && prefix.covers(&target)
        {
            claims.push(reserved_claim(server, link, "pd", prefix));
        }
    }
    claims
}

fn reserved_claim(server: usize, link: String, kind: &'static str, unit: Prefix) -> Claim {
    Claim {
        server,
        link,
        kind,
        pool: unit,
        range: unit,
        unit,
        reserved: true,
    }
}

/// An address as the /128 the layout is asked about.
pub fn host(address: Ipv6Addr) -> Prefix {
    Prefix::containing(address, 128)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(duid: &str, body: &str) -> Config {
        let text = format!(
            "[server]\nduid = \"{duid}\"\n[[link]]\nname = \"access\"\ninterfaces = [\"eth1\"]\n{body}"
        );
        Config::from_toml_str(&text, "test.toml").unwrap()
    }

    fn split(part: &str) -> String {
        format!(
            "[[link.pool]]\nprefix = \"2001:db8:1::/64\"\nsplit = \"{part}\"\n\
             [[link.pd-pool]]\nprefix = \"2001:db8:100::/48\"\ndelegated-length = 56\nsplit = \"{part}\"\n"
        )
    }

    const A: &str = "00:01:00:01:2e:00:00:01:02:00:00:00:00:0a";
    const B: &str = "00:01:00:01:2e:00:00:01:02:00:00:00:00:0b";
    const C: &str = "00:01:00:01:2e:00:00:01:02:00:00:00:00:0c";

    fn address(text: &str) -> Prefix {
        host(text.parse().unwrap())
    }

    fn owner(ownership: Ownership) -> (usize, &'static str, String) {
        match ownership {
            Ownership::Owner(claim) => (claim.server, claim.kind, claim.unit.to_string()),
            other => panic!("no single owner: {other:?}"),
        }
    }

    #[test]
    fn split_pair_owns_one_half_each() {
        let layout = Layout::new(vec![config(A, &split("1/2")), config(B, &split("2/2"))]);
        assert_eq!(
            owner(layout.ownership(address("2001:db8:1::10"))),
            (0, "na", "2001:db8:1::10/128".to_owned())
        );
        assert_eq!(
            owner(layout.ownership(address("2001:db8:1:0:8000::10"))),
            (1, "na", "2001:db8:1:0:8000::10/128".to_owned())
        );
        // An address behind a delegated prefix finds the /56 that holds it.
        assert_eq!(
            owner(layout.ownership(address("2001:db8:100:1234::1"))),
            (0, "pd", "2001:db8:100:1200::/56".to_owned())
        );
        assert_eq!(
            owner(layout.ownership("2001:db8:100:8100::/56".parse().unwrap())),
            (1, "pd", "2001:db8:100:8100::/56".to_owned())
        );
        assert_eq!(
            layout.ownership(address("2001:db8:2::1")),
            Ownership::Unconfigured
        );
    }

    #[test]
    fn uneven_split_of_three_leaves_no_gap_and_a_gap_is_named() {
        let layout = Layout::new(vec![
            config(A, &split("1/2")),
            config(B, &split("3/4")),
            config(C, &split("4/4")),
        ]);
        assert_eq!(
            owner(layout.ownership(address("2001:db8:1:0:8000::1"))).0,
            1
        );
        assert_eq!(
            owner(layout.ownership(address("2001:db8:1:0:c000::1"))).0,
            2
        );
        // Without C, its quarter is in the pool but in nobody's slice.
        let pair = Layout::new(vec![config(A, &split("1/2")), config(B, &split("3/4"))]);
        assert_eq!(
            pair.ownership(address("2001:db8:1:0:c000::1")),
            Ownership::NoSlice {
                pools: vec!["2001:db8:1::/64".parse().unwrap()]
            }
        );
    }

    #[test]
    fn unique_prefixes_belong_to_their_server() {
        let unique = |prefix: &str, pd: &str| {
            format!(
                "[[link.pool]]\nprefix = \"{prefix}\"\n[[link.pd-pool]]\nprefix = \"{pd}\"\ndelegated-length = 56\n"
            )
        };
        let layout = Layout::new(vec![
            config(A, &unique("2001:db8:a::/64", "2001:db8:a00::/48")),
            config(B, &unique("2001:db8:b::/64", "2001:db8:b00::/48")),
            config(C, &unique("2001:db8:c::/64", "2001:db8:c00::/48")),
        ]);
        assert_eq!(owner(layout.ownership(address("2001:db8:b::99"))).0, 1);
        assert_eq!(
            owner(layout.ownership(address("2001:db8:c00:4500::7"))).0,
            2
        );
    }

    #[test]
    fn identical_servers_share_every_unit() {
        let whole = "[[link.pool]]\nprefix = \"2001:db8:1::/64\"\n";
        let layout = Layout::new(vec![config(A, whole), config(B, whole), config(C, whole)]);
        match layout.ownership(address("2001:db8:1::77")) {
            Ownership::Shared(claims) => {
                let servers: Vec<usize> = claims.iter().map(|claim| claim.server).collect();
                assert_eq!(servers, [0, 1, 2]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn identical_servers_agree_on_a_clients_first_choice_and_split_ones_do_not() {
        let duid = [0, 3, 0, 1, 2, 0, 0, 0, 0, 1];
        let whole = "[[link.pool]]\nprefix = \"2001:db8:1::/64\"\n[[link.pd-pool]]\nprefix = \"2001:db8:100::/48\"\ndelegated-length = 56\n";
        let identical = Layout::new(vec![config(A, whole), config(B, whole), config(C, whole)]);
        let choices = identical.first_choices(&duid, 1);
        assert_eq!(choices.len(), 6, "{choices:?}");
        let na: Vec<Prefix> = choices
            .iter()
            .filter(|c| c.kind == "na")
            .map(|c| c.unit)
            .collect();
        assert!(na.iter().all(|unit| *unit == na[0]), "{na:?}");
        assert_eq!(na[0].len(), 128);
        let pd: Vec<Prefix> = choices
            .iter()
            .filter(|c| c.kind == "pd")
            .map(|c| c.unit)
            .collect();
        assert!(
            pd.iter().all(|unit| *unit == pd[0] && unit.len() == 56),
            "{pd:?}"
        );
        // Another IAID hashes elsewhere.
        assert_ne!(identical.first_choices(&duid, 2)[0].unit, na[0]);
        // A split pair: each server's choice lies in its own half.
        let split = Layout::new(vec![config(A, &split("1/2")), config(B, &split("2/2"))]);
        let choices = split.first_choices(&duid, 1);
        for choice in &choices {
            let owner = owner(split.ownership(choice.unit));
            assert_eq!(
                (owner.0, owner.1),
                (choice.server, choice.kind),
                "{choice:?}"
            );
        }
    }

    #[test]
    fn a_reservation_names_its_server() {
        let whole = "[[link.pool]]\nprefix = \"2001:db8:1::/64\"\n";
        let reserved = format!(
            "{whole}[[reservation]]\nduid = \"00:03:00:01:02:00:00:00:00:01\"\naddress = \"2001:db8:1::77\"\n"
        );
        let layout = Layout::new(vec![config(A, whole), config(B, &reserved)]);
        let (server, kind, _) = owner(layout.ownership(address("2001:db8:1::77")));
        assert_eq!((server, kind), (1, "na"));
    }

    #[test]
    fn delegated_space_inside_the_on_link_prefix_is_no_address() {
        let body = "[[link.pool]]\nprefix = \"2001:db8:1::/48\"\nrange = \"2001:db8:1::/64\"\n\
                    [[link.pd-pool]]\nprefix = \"2001:db8:1:100::/56\"\ndelegated-length = 60\ninside-on-link = true\n";
        let layout = Layout::new(vec![config(A, body)]);
        assert_eq!(
            owner(layout.ownership(address("2001:db8:1:110::1"))),
            (0, "pd", "2001:db8:1:110::/60".to_owned())
        );
    }
}
