//! Link identity across reloads: a new configuration laid out like the running one.
//!
//! A [`LinkId`] is an index into `Config::links`, and the lease table, the allocators and the
//! limits hold link ids. A reload keeps every link name at the index the running process gave
//! it, so that no lease changes link because a `[[link]]` block moved, was added or was taken
//! out of the file.

use std::collections::HashMap;

use super::{Config, ConfigError, Link, LinkId, LinkLimits, LinkOptions, RateLimit};

impl Config {
    /// This configuration with its links at the indexes `running` gives their names.
    ///
    /// - a link whose name `running` has keeps that link's index;
    /// - a link of `running` this configuration does not have stays at its index as a
    ///   retired placeholder ([`Link::retired`]): nothing selects it, it has no pools, its
    ///   leases stay in the table until they expire; the name coming back in a later
    ///   configuration gets the index back;
    /// - new links are appended, in file order.
    ///
    /// Reservations, the interface and relay lookups follow the new ids. Fails only when the
    /// links and retired links together exceed the 65,536 link ids.
    pub fn aligned_to(&self, running: &Config) -> Result<Config, ConfigError> {
        let own: HashMap<&str, usize> = self
            .links
            .iter()
            .enumerate()
            .map(|(index, link)| (link.name.as_str(), index))
            .collect();
        let mut links: Vec<Link> = Vec::with_capacity(running.links.len() + self.links.len());
        // New id of each of this configuration's links.
        let mut moved: Vec<Option<LinkId>> = vec![None; self.links.len()];
        for old in &running.links {
            let id = link_id(links.len())?;
            match own.get(old.name.as_str()) {
                Some(&index) => {
                    moved[index] = Some(id);
                    links.push(Link {
                        id,
                        ..self.links[index].clone()
                    });
                }
                None => links.push(self.retired_link(id, &old.name)),
            }
        }
        for (index, link) in self.links.iter().enumerate() {
            if moved[index].is_none() {
                let id = link_id(links.len())?;
                moved[index] = Some(id);
                links.push(Link { id, ..link.clone() });
            }
        }
        let remap = |id: LinkId| moved.get(id.index()).copied().flatten().unwrap_or(id);

        let mut index = self.index.clone();
        index.links = links
            .iter()
            .map(|link| (link.name.clone(), link.id))
            .collect();
        for entries in index.interfaces.values_mut() {
            for (_, id) in entries.iter_mut() {
                *id = remap(*id);
            }
        }
        for (_, by_prefix) in index.relay_prefixes.iter_mut() {
            for ids in by_prefix.values_mut() {
                for id in ids.iter_mut() {
                    *id = remap(*id);
                }
            }
        }
        for ids in index.interface_ids.values_mut() {
            for id in ids.iter_mut() {
                *id = remap(*id);
            }
        }
        let mut reservations = self.reservations.clone();
        for reservation in &mut reservations {
            reservation.link = reservation.link.map(remap);
        }
        Ok(Config {
            server: self.server.clone(),
            links,
            reservations,
            leasequery: self.leasequery.clone(),
            index,
        })
    }

    /// The links of this configuration that are retired placeholders.
    pub fn retired_links(&self) -> impl Iterator<Item = &Link> {
        self.links.iter().filter(|link| link.retired)
    }

    /// A placeholder for a link the file no longer has.
    fn retired_link(&self, id: LinkId, name: &str) -> Link {
        Link {
            id,
            name: name.to_owned(),
            interfaces: Vec::new(),
            relay_prefixes: Vec::new(),
            interface_ids: Vec::new(),
            preference: self.server.preference,
            timers: self.server.timers,
            rapid_commit: false,
            renew_creates_bindings: false,
            na_pools: Vec::new(),
            pd_pools: Vec::new(),
            options: LinkOptions::default(),
            rsoo_allow: Vec::new(),
            advertise_delay_ms: 0,
            reconfigure_accept: false,
            limits: LinkLimits {
                max_leases: 0,
                rate: RateLimit {
                    per_second: 0,
                    burst: 0,
                },
            },
            ddns: None,
            retired: true,
        }
    }
}

fn link_id(index: usize) -> Result<LinkId, ConfigError> {
    u16::try_from(index).map(LinkId).map_err(|_| {
        ConfigError::new(
            "configuration",
            "link",
            "more than 65,536 links together with the retired links of earlier \
             configurations; restart the server to drop the retired ones",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(links: &[(&str, &str)]) -> Config {
        let mut text =
            String::from("[server]\nduid = \"00:01:00:01:2e:00:00:09:02:00:00:00:00:07\"\n");
        for (name, interface) in links {
            text.push_str(&format!(
                "[[link]]\nname = \"{name}\"\ninterfaces = [\"{interface}\"]\n"
            ));
            if *name == "b" {
                text.push_str("[[link.pool]]\nprefix = \"2001:db8::/64\"\n");
            }
        }
        if links.iter().any(|(name, _)| *name == "b") {
            text.push_str(
                "[[reservation]]\nduid = \"00:03:00:01:02:00:00:00:00:01\"\n\
                 address = \"2001:db8::5\"\nlink = \"b\"\n",
            );
        }
        Config::from_toml_str(&text, "t.toml").unwrap()
    }

    #[test]
    fn names_keep_their_index_retired_stay_new_are_appended() {
        let running = config(&[("a", "eth1"), ("b", "eth2"), ("c", "eth3")]);
        // c goes, b moves to the front, d is new.
        let next = config(&[("b", "eth2"), ("a", "eth1"), ("d", "eth4")]);
        let aligned = next.aligned_to(&running).unwrap();
        let names: Vec<(&str, bool)> = aligned
            .links
            .iter()
            .map(|link| (link.name.as_str(), link.retired))
            .collect();
        assert_eq!(
            names,
            [("a", false), ("b", false), ("c", true), ("d", false)]
        );
        for (index, link) in aligned.links.iter().enumerate() {
            assert_eq!(link.id.index(), index);
        }
        assert_eq!(aligned.link_by_name("b"), Some(LinkId(1)));
        assert_eq!(aligned.link_by_name("c"), Some(LinkId(2)));
        assert_eq!(aligned.link_for_interface("eth2", None), Some(LinkId(1)));
        assert_eq!(aligned.link_for_interface("eth3", None), None);
        assert_eq!(aligned.link_for_interface("eth4", None), Some(LinkId(3)));
        assert_eq!(aligned.reservations[0].link, Some(LinkId(1)));
        assert_eq!(
            aligned
                .retired_links()
                .map(|l| l.name.as_str())
                .collect::<Vec<_>>(),
            ["c"]
        );

        // c returns: index 2 again; d keeps 3.
        let back = config(&[("d", "eth4"), ("c", "eth3"), ("a", "eth1")]);
        let again = back.aligned_to(&aligned).unwrap();
        assert_eq!(again.link_by_name("c"), Some(LinkId(2)));
        assert_eq!(again.link_by_name("d"), Some(LinkId(3)));
        assert!(again.link(LinkId(1)).retired);
        assert_eq!(again.link_for_interface("eth3", None), Some(LinkId(2)));
        assert!(again.retired_links().all(|link| link.na_pools.is_empty()));
    }
}
