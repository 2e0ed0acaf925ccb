//! `xdhcp6d import-kea`: a Kea DHCPv6 deployment (its `kea-dhcp6.json`, its memfile lease file
//! and its server DUID) turned into an xdhcp6 configuration and a lease journal, so that the
//! clients Kea served keep their addresses and prefixes when xdhcp6d answers in its place.
//!
//! Nothing is read from or written to disk here: the caller hands in the files' text and
//! writes what [`import`] returns. `config` maps the JSON to TOML text, `leases` reads the CSV
//! and encodes the journal; both put whatever xdhcp6 cannot express into the [`Report`].

mod config;
mod leases;

use std::fmt;
#[cfg(test)]
use std::net::Ipv6Addr;

use xdhcp6_engine::config::Config;

pub use config::strip_comments;
pub use leases::{CsvLease, read_leases};

/// Inputs no larger than this are refused: a Kea configuration of this size is not a real one,
/// and a lease file of millions of lines is read in one go.
pub const MAX_CONFIG_BYTES: usize = 64 << 20;

/// What was imported.
#[derive(Debug)]
pub struct Imported {
    /// The xdhcp6 configuration, the report at its top as comments; it passed
    /// [`Config::from_toml_str`].
    pub toml: String,
    /// The validated configuration.
    pub config: Config,
    /// The journal (format version 3) holding the active leases, when a lease file was given.
    pub journal: Option<Vec<u8>>,
    /// Everything that was not carried over, and how many leases were.
    pub report: Report,
}

/// The inputs of one import.
#[derive(Clone, Copy, Debug)]
pub struct Sources<'a> {
    /// The Kea configuration's text and its file name (for errors).
    pub config: (&'a str, &'a str),
    /// The memfile lease file's text and name.
    pub leases: Option<(&'a str, &'a str)>,
    /// The server-id file Kea persisted (one DUID as colon-separated hex) and its name.
    pub server_id: Option<(&'a str, &'a str)>,
    /// Unix seconds now: leases that expired before it are not carried.
    pub now: u32,
}

/// A Kea file that cannot be imported: the file, where in it, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {at}: {problem}")]
pub struct KeaError {
    /// The Kea file.
    pub file: String,
    /// The JSON path (`Dhcp6.subnet6[2].pools[0].pool`) or CSV line (`line 7`).
    pub at: String,
    /// What is wrong.
    pub problem: String,
}

impl KeaError {
    pub(crate) fn new(file: &str, at: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            at: at.into(),
            problem: problem.into(),
        }
    }
}

/// What the import could not carry over, and what it did with the leases.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Kea settings xdhcp6 cannot express: `Dhcp6.client-classes: no xdhcp6 equivalent`.
    pub not_carried: Vec<String>,
    /// Choices the import made that an operator should know about.
    pub notes: Vec<String>,
    /// Leases not written to the journal, each with its reason.
    pub leases_left_out: Vec<String>,
    /// Active leases written to the journal.
    pub leases_imported: usize,
    /// Lease lines read, and distinct leases after the last line of each won.
    pub lease_lines: usize,
    /// Leases released, expired or reclaimed in Kea (not carried, nothing to do).
    pub leases_ended: usize,
}

impl Report {
    /// Whether every setting and every active lease was carried over.
    pub fn is_complete(&self) -> bool {
        self.not_carried.is_empty() && self.leases_left_out.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.not_carried.is_empty() {
            writeln!(f, "Not carried over: nothing.")?;
        } else {
            writeln!(f, "Not carried over ({}):", self.not_carried.len())?;
            for line in &self.not_carried {
                writeln!(f, "  - {line}")?;
            }
        }
        if !self.notes.is_empty() {
            writeln!(f, "Notes:")?;
            for line in &self.notes {
                writeln!(f, "  - {line}")?;
            }
        }
        writeln!(
            f,
            "Leases: {} imported, {} ended in Kea (released, expired or reclaimed), {} left out \
             ({} lines read).",
            self.leases_imported,
            self.leases_ended,
            self.leases_left_out.len(),
            self.lease_lines
        )?;
        for line in &self.leases_left_out {
            writeln!(f, "  - {line}")?;
        }
        Ok(())
    }
}

/// Imports a Kea DHCPv6 configuration (and its leases): the xdhcp6 TOML, validated, and the
/// journal of the active leases.
pub fn import(sources: Sources<'_>) -> Result<Imported, KeaError> {
    let (text, file) = sources.config;
    if text.len() > MAX_CONFIG_BYTES {
        return Err(KeaError::new(
            file,
            "file",
            format!("is larger than {MAX_CONFIG_BYTES} bytes"),
        ));
    }
    let mut report = Report::default();
    let mapped = config::map(text, file, sources.server_id, &mut report)?;
    let mut journal = None;
    let mut config = validate(&mapped.toml(&report), file, &mapped)?;
    if let Some((leases_text, leases_file)) = sources.leases {
        if leases_text.len() > MAX_CONFIG_BYTES * 16 {
            return Err(KeaError::new(
                leases_file,
                "file",
                format!("is larger than {} bytes", MAX_CONFIG_BYTES * 16),
            ));
        }
        let csv = read_leases(leases_text, leases_file)?;
        journal = Some(leases::journal(
            &csv,
            &mapped.links_by_subnet,
            &config,
            sources.now,
            &mut report,
        ));
    } else {
        report.notes.push(
            "no --leases given: no lease journal written, clients Kea served get new \
             addresses"
                .to_owned(),
        );
    }
    // The report changed with the leases: the comments at the top say so too.
    let toml = mapped.toml(&report);
    config = validate(&toml, file, &mapped)?;
    Ok(Imported {
        toml,
        config,
        journal,
        report,
    })
}

/// The generated TOML through the daemon's own validation; a failure names the Kea file, since
/// what is wrong came from it, and the Kea subnet or shared network of the link at fault.
fn validate(toml: &str, kea_file: &str, mapped: &config::Mapped) -> Result<Config, KeaError> {
    Config::from_toml_str(toml, "the imported configuration").map_err(|error| {
        let error = error.to_string();
        let origin = error
            .split("link[")
            .nth(1)
            .and_then(|rest| rest.split(']').next())
            .and_then(|index| index.parse::<usize>().ok())
            .and_then(|index| mapped.origin(index).map(|origin| (index, origin)));
        let problem = match origin {
            Some((index, origin)) => format!(
                "the xdhcp6 configuration made from it is invalid: {error} (link[{index}] is \
                 {origin})"
            ),
            None => format!("the xdhcp6 configuration made from it is invalid: {error}"),
        };
        KeaError::new(kea_file, "Dhcp6", problem)
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use xdhcp6_engine::table::{IaKind, LeaseState};

    use super::*;
    use crate::journal::{LinkNames, replay_bytes};

    const CONFIG: &str = include_str!("../../../../tests/fixtures/kea/kea-dhcp6.json");
    const LEASES: &str = include_str!("../../../../tests/fixtures/kea/kea-leases6.csv");
    /// Before the fixture's leases end (4000001000), after its expired one (1000).
    const NOW: u32 = 2_000_000_000;

    fn import_config(config: &str) -> Result<Imported, KeaError> {
        import(Sources {
            config: (config, "kea-dhcp6.json"),
            leases: None,
            server_id: None,
            now: NOW,
        })
    }

    fn fixture() -> Imported {
        import(Sources {
            config: (CONFIG, "kea-dhcp6.json"),
            leases: Some((LEASES, "kea-leases6.csv")),
            server_id: None,
            now: NOW,
        })
        .unwrap()
    }

    /// A minimal configuration around one subnet's JSON.
    fn with_subnet(subnet: &str) -> String {
        format!(
            r#"{{ "Dhcp6": {{ "server-id": {{ "type": "LL", "htype": 1,
                 "identifier": "020000000001" }}, "subnet6": [ {subnet} ] }} }}"#
        )
    }

    #[test]
    fn subnets_shared_networks_and_selection_become_links() {
        let imported = fixture();
        let config = &imported.config;
        let names: Vec<&str> = config.links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["subnet-1", "subnet-2", "bng-1"]);
        let (one, two, shared) = (&config.links[0], &config.links[1], &config.links[2]);
        // Kea's server-id (EN, ISC's enterprise number 2495) is the server's DUID.
        assert_eq!(
            config.server.duid,
            [0, 2, 0, 0, 0x09, 0xbf, 1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(one.interfaces[0].name, "eth1");
        assert!(one.rapid_commit);
        // The range ::100-::1ff is one block, the /65 another, the out-of-pool reservation
        // a third.
        let ranges: Vec<String> = one.na_pools.iter().map(|p| p.range.to_string()).collect();
        assert_eq!(
            ranges,
            [
                "2001:db8:1::100/120",
                "2001:db8:1:0:8000::/65",
                "2001:db8:1::5/128"
            ]
        );
        let pd = &one.pd_pools[0];
        assert_eq!(pd.prefix.to_string(), "2001:db8:100::/40");
        assert_eq!(pd.delegated_len, 56);
        let exclude = pd.exclude.expect("excluded prefix");
        assert_eq!((exclude.len, exclude.subnet), (64, 0));
        // Relay selection: Interface-Id, the relay's address, the subnet.
        assert_eq!(two.interface_ids, [b"cmts-1:cable1/0".to_vec()]);
        let relay: Vec<String> = two.relay_prefixes.iter().map(|p| p.to_string()).collect();
        assert!(
            relay.contains(&"2001:db8:ffff:2::1/128".to_owned()),
            "{relay:?}"
        );
        assert!(relay.contains(&"2001:db8:2::/64".to_owned()), "{relay:?}");
        assert_eq!(two.preference, 255);
        assert_eq!(one.preference, 100);
        assert_eq!(
            (two.timers.t1, two.timers.t2, two.timers.valid),
            (600, 960, 4000)
        );
        assert_eq!((one.timers.t1, one.timers.t2), (1000, 2000));
        assert_eq!(
            two.options.dns_servers,
            ["2001:db8:2::53".parse::<Ipv6Addr>().unwrap()]
        );
        assert_eq!(one.options.dns_servers.len(), 2);
        // A shared network is one link with the pools of all its subnets.
        assert_eq!(shared.na_pools.len(), 2);
        assert_eq!(shared.interfaces[0].name, "eth2");
        assert_eq!(config.reservations.len(), 2);
        assert_eq!(config.server.decline_probation, 3600);
        // The global always-send list holds on every link, with a link's own additions.
        for link in &config.links {
            assert_eq!(link.options.domain_search.len(), 2, "{}", link.name);
        }
        assert!(imported.toml.contains("always-send = [\"domain-search\"]"));
        assert_eq!(one.options.always_send, [24]);
        // Kea's NTP sub-options are one option 56.
        assert!(
            imported
                .toml
                .contains("ntp-servers = [\"2001:db8:123::1\", \"ntp.example.net\"]"),
            "{}",
            imported.toml
        );
        assert_eq!(one.options.ntp_servers.len(), 2);
        assert_eq!(two.options.always_send, [23, 24]);
    }

    #[test]
    fn what_cannot_be_expressed_is_listed_in_the_report_and_the_toml() {
        let imported = fixture();
        let report = &imported.report;
        for expected in [
            "Dhcp6.client-classes",
            "Dhcp6.hooks-libraries",
            "Dhcp6.subnet6[0].reservations[0].hostname",
            "Dhcp6.subnet6[0].reservations[2]: reserved by another identifier",
            "Dhcp6.subnet6[1].option-data[3]: option nis-servers",
            "Dhcp6.subnet6[1].pools[0].client-class",
        ] {
            assert!(
                report
                    .not_carried
                    .iter()
                    .any(|line| line.starts_with(expected)),
                "{expected} not in {report}"
            );
            assert!(imported.toml.contains(&format!("#   - {expected}")));
        }
        assert!(!report.is_complete());
        // The TOML is the one validated.
        let again = Config::from_toml_str(&imported.toml, "again").unwrap();
        assert_eq!(again.links.len(), imported.config.links.len());
    }

    #[test]
    fn active_leases_become_a_journal_the_daemon_replays() {
        let imported = fixture();
        let report = &imported.report;
        assert_eq!(report.lease_lines, 10);
        assert_eq!(report.leases_imported, 4, "{report}");
        // The released ::102 (its last line) and the expired ::103.
        assert_eq!(report.leases_ended, 2, "{report}");
        let left_out = report.leases_left_out.join("\n");
        assert!(left_out.contains("line 8: 2001:db8:1::104") && left_out.contains("declined"));
        assert!(left_out.contains("line 9: 2001:db8:1::5000") && left_out.contains("outside"));
        assert!(left_out.contains("line 10: 2001:db8:9::1") && left_out.contains("no subnet"));

        let journal = imported.journal.unwrap();
        let replay = replay_bytes(
            &journal,
            Path::new("leases.journal"),
            &LinkNames::of(&imported.config),
        )
        .unwrap();
        assert!(!replay.corrupt && replay.unplaced.is_empty());
        let mut leases: Vec<(String, IaKind, u32, String)> = replay
            .records
            .iter()
            .map(|r| {
                assert_eq!(r.lease.state, LeaseState::Bound);
                assert_eq!(r.lease.expires, 4_000_001_000);
                assert_eq!(r.lease.lifetimes.valid, 4000);
                let link = &imported.config.links[r.lease.link.index()].name;
                (
                    format!("{}/{}", r.lease.ip(), r.lease.prefix_len),
                    r.lease.kind,
                    r.lease.iaid,
                    link.clone(),
                )
            })
            .collect();
        leases.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            leases,
            [
                (
                    "2001:db8:100:100::/56".into(),
                    IaKind::Pd,
                    7,
                    "subnet-1".into()
                ),
                (
                    "2001:db8:1::101/128".into(),
                    IaKind::Na,
                    1,
                    "subnet-1".into()
                ),
                (
                    "2001:db8:2::abcd/128".into(),
                    IaKind::Na,
                    5,
                    "subnet-2".into()
                ),
                ("2001:db8:3::77/128".into(), IaKind::Na, 9, "bng-1".into()),
            ]
        );
    }

    /// The imported configuration and journal in an engine: Kea's clients Renew with Kea's
    /// Server Identifier, directly or through a relay selected by Interface-Id or relay
    /// address, and get their leases back.
    #[test]
    fn kea_clients_renew_their_imported_leases() {
        use std::sync::Arc;

        use xdhcp6_engine::testing::{Client, Relay, Server};

        let imported = fixture();
        let replay = replay_bytes(
            imported.journal.as_deref().unwrap(),
            Path::new("leases.journal"),
            &LinkNames::of(&imported.config),
        )
        .unwrap();
        let link = |name: &str| imported.config.link_by_name(name).unwrap();
        let (subnet_1, bng_1) = (link("subnet-1"), link("bng-1"));
        let mut server = Server::from_config(Arc::new(imported.config.clone()));
        let restored = server.engine.restore(replay.records);
        assert_eq!(restored.loaded, 4);
        let kea = server.duid();
        let duid = |last: u8| [0, 1, 0, 1, 0x2a, 0, 0, 1, 2, 0, 0, 0, 0, last];
        let ip = |text: &str| text.parse::<Ipv6Addr>().unwrap();

        // A direct client on eth1: its address and its prefix.
        server.link = Some(subnet_1);
        let client = Client::with_duid(&duid(1));
        let reply = server.send(&client.renew(&kea).ia_na(1, &[ip("2001:db8:1::101")]));
        assert_eq!(reply.ia_na[0].live_addrs(), [ip("2001:db8:1::101")]);
        let reply = server.send(
            &client
                .renew(&kea)
                .ia_pd(7, &[(ip("2001:db8:100:100::"), 56)]),
        );
        let prefix = &reply.ia_pd[0].prefixes[0];
        assert_eq!((prefix.prefix, prefix.len), (ip("2001:db8:100:100::"), 56));
        assert!(prefix.valid > 0);

        // A relayed client of subnet 2, found by its relay's Interface-Id, then by the relay's
        // address.
        server.link = None;
        let address = ip("2001:db8:2::abcd");
        for relay in [
            Relay::new(ip("fe80::1")).interface_id(b"cmts-1:cable1/0"),
            Relay::new(ip("2001:db8:ffff:2::1")),
        ] {
            let client = Client::with_duid(&duid(3)).via(relay);
            let reply = server.send(&client.renew(&kea).ia_na(5, &[address]));
            assert_eq!(reply.ia_na[0].live_addrs(), [address], "{reply:?}");
        }

        // The shared network's client.
        server.link = Some(bng_1);
        let client = Client::with_duid(&duid(7));
        let reply = server.send(&client.renew(&kea).ia_na(9, &[ip("2001:db8:3::77")]));
        assert_eq!(reply.ia_na[0].live_addrs(), [ip("2001:db8:3::77")]);

        // Another client cannot have an imported address.
        server.link = Some(subnet_1);
        let other = Client::with_duid(&duid(99));
        let reply = server.send(&other.renew(&kea).ia_na(1, &[ip("2001:db8:1::101")]));
        assert!(!reply.ia_na[0].live_addrs().contains(&ip("2001:db8:1::101")));
    }

    #[test]
    fn bad_pools_name_the_json_path() {
        let config = with_subnet(
            r#"{ "id": 7, "subnet": "2001:db8::/64", "pools": [ { "pool": "2001:db8::1-" } ] }"#,
        );
        let error = import_config(&config).unwrap_err().to_string();
        assert_eq!(
            error,
            "kea-dhcp6.json: Dhcp6.subnet6[0].pools[0].pool: \"2001:db8::1-\" is not a range \
             FIRST - LAST of IPv6 addresses"
        );
        let config = with_subnet(
            r#"{ "id": 7, "subnet": "2001:db8::/64", "pools": [ { "pool": "2001:db9::/64" } ] }"#,
        );
        let error = import_config(&config).unwrap_err().to_string();
        assert!(
            error.starts_with("kea-dhcp6.json: Dhcp6.subnet6[0].pools[0].pool:")
                && error.contains("not inside the subnet"),
            "{error}"
        );
        let config = with_subnet(
            r#"{ "id": 7, "subnet": "2001:db8::/64", "pd-pools": [ { "prefix": "2001:db8:1::",
                 "prefix-len": 48, "delegated-len": 40 } ] }"#,
        );
        let error = import_config(&config).unwrap_err().to_string();
        assert!(
            error.starts_with("kea-dhcp6.json: Dhcp6.subnet6[0].pd-pools[0].delegated-len:"),
            "{error}"
        );
        let error = import_config("{ \"Dhcp6\": { \"subnet6\": 5 } }")
            .unwrap_err()
            .to_string();
        assert!(error.contains("Dhcp6.server-id"), "{error}");
        let error = import_config("{ \"Dhcp4\": {} }").unwrap_err().to_string();
        assert_eq!(
            error,
            "kea-dhcp6.json: Dhcp6: missing: not a kea-dhcp6 configuration"
        );
        let error = import_config("{ \"Dhcp6\": [1, }").unwrap_err().to_string();
        assert!(
            error.starts_with("kea-dhcp6.json: file: not JSON:"),
            "{error}"
        );
    }

    #[test]
    fn the_server_duid_comes_from_the_file_kea_kept() {
        let config = r#"{ "Dhcp6": { "server-id": { "type": "LLT", "persist": true } } }"#;
        let error = import_config(config).unwrap_err().to_string();
        assert!(
            error.starts_with("kea-dhcp6.json: Dhcp6.server-id: no identifier")
                && error.contains("/var/lib/kea/kea-dhcp6-serverid")
                && error.contains("--server-id-file"),
            "{error}"
        );
        let imported = import(Sources {
            config: (config, "kea-dhcp6.json"),
            leases: None,
            server_id: Some(("00:01:00:01:2a:bc:de:f0:02:42:ac:11:00:02\n", "serverid")),
            now: NOW,
        })
        .unwrap();
        assert_eq!(
            imported.config.server.duid,
            [
                0, 1, 0, 1, 0x2a, 0xbc, 0xde, 0xf0, 2, 0x42, 0xac, 0x11, 0, 2
            ]
        );
        let error = import(Sources {
            config: (config, "kea-dhcp6.json"),
            leases: None,
            server_id: Some(("zz", "serverid")),
            now: NOW,
        })
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("serverid: file: not a DUID"), "{error}");
    }

    #[test]
    fn lease_files_of_other_kea_versions_are_read_by_their_header() {
        // Kea 2.6 appends pool_id; an older file may stop before state.
        let newer = "address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,\
                     prefix_len,fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context,hwtype,\
                     hwaddr_source,pool_id\n\
                     2001:db8::1,00:01:02,100,200,1,50,0,3,128,0,0,,,0,,,,0\n";
        let leases = read_leases(newer, "x.csv").unwrap();
        assert_eq!(leases.len(), 1);
        assert_eq!((leases[0].iaid, leases[0].expire), (3, 200));
        let older = "address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,\
                     prefix_len\n2001:db8::/56,00:01:02,100,200,1,50,2,3,56\n";
        let error = read_leases(older, "x.csv").unwrap_err().to_string();
        assert_eq!(
            error,
            "x.csv: line 2: column address: \"2001:db8::/56\" is not an IPv6 address"
        );
        let older = older.replace("2001:db8::/56", "2001:db8::");
        let leases = read_leases(&older, "x.csv").unwrap();
        assert_eq!(
            (leases[0].lease_type, leases[0].prefix_len, leases[0].state),
            (2, 56, 0)
        );
        let short = "address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,\
                     prefix_len\n2001:db8::1,00:01:02,100\n";
        let error = read_leases(short, "x.csv").unwrap_err().to_string();
        assert_eq!(error, "x.csv: line 2: column expire is missing");
        let error = read_leases("address,duid\n", "x.csv")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("x.csv: line 1: the header has no column"),
            "{error}"
        );
        let bad = "address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,\
                   prefix_len\n2001:db8::1,00:01:02,100,200,1,50,7,3,128\n";
        let error = read_leases(bad, "x.csv").unwrap_err().to_string();
        assert_eq!(
            error,
            "x.csv: line 2: column lease_type: 7 is larger than 2"
        );
    }

    #[test]
    fn the_last_line_of_a_lease_wins() {
        let config = with_subnet(
            r#"{ "id": 1, "subnet": "2001:db8::/64", "interface": "eth0",
                 "pools": [ { "pool": "2001:db8::/64" } ] }"#,
        );
        let header = "address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,\
                      iaid,prefix_len,fqdn_fwd,fqdn_rev,hostname,hwaddr,state\n";
        let lines = [
            // Bound, renewed, released, bound to another client.
            "2001:db8::1,00:01:00:01,100,2000000100,1,50,0,1,128,0,0,,,0",
            "2001:db8::1,00:01:00:01,100,2000000200,1,50,0,1,128,0,0,,,0",
            "2001:db8::1,00:01:00:01,0,2000000200,1,0,0,1,128,0,0,,,0",
            "2001:db8::1,00:01:00:02,100,2000000300,1,50,0,4,128,0,0,,,0",
            // Bound, then reclaimed.
            "2001:db8::2,00:01:00:03,100,2000000100,1,50,0,1,128,0,0,,,0",
            "2001:db8::2,00:01:00:03,100,2000000100,1,50,0,1,128,0,0,,,2",
        ];
        let csv = format!("{header}{}\n", lines.join("\n"));
        let imported = import(Sources {
            config: (&config, "kea-dhcp6.json"),
            leases: Some((&csv, "kea-leases6.csv")),
            server_id: None,
            now: NOW,
        })
        .unwrap();
        assert_eq!(imported.report.leases_imported, 1);
        assert_eq!(imported.report.leases_ended, 1);
        let replay = replay_bytes(
            &imported.journal.unwrap(),
            Path::new("j"),
            &LinkNames::of(&imported.config),
        )
        .unwrap();
        assert_eq!(replay.records.len(), 1);
        let record = &replay.records[0];
        assert_eq!(record.duid.as_bytes(), [0, 1, 0, 2]);
        assert_eq!(
            (record.lease.iaid, record.lease.expires),
            (4, 2_000_000_300)
        );
        assert_eq!(record.lease.lifetimes.preferred, 50);
    }

    #[test]
    fn global_reservations_apply_on_any_link_when_kea_uses_them() {
        let subnet = r#"{ "id": 1, "subnet": "2001:db8::/64", "interface": "eth0",
                          "pools": [ { "pool": "2001:db8::/64", "option-data": [] } ] }"#;
        let reservations = r#""reservations": [
            { "duid": "00:03:00:01:02:00:00:00:00:01", "ip-addresses": [ "2001:db8::10" ] },
            { "duid": "00:03:00:01:02:00:00:00:00:02", "ip-addresses": [ "2001:db9::10" ] } ]"#;
        let config = |global: bool| {
            format!(
                r#"{{ "Dhcp6": {{ "server-id": {{ "type": "LL", "identifier": "020000000001" }},
                   "reservations-global": {global}, {reservations}, "subnet6": [ {subnet} ] }} }}"#
            )
        };
        let imported = import_config(&config(true)).unwrap();
        let reservations = &imported.config.reservations;
        assert_eq!(reservations.len(), 1);
        assert_eq!(reservations[0].link, None);
        assert_eq!(
            reservations[0].address,
            Some("2001:db8::10".parse().unwrap())
        );
        let report = imported.report.to_string();
        assert!(
            report.contains("Dhcp6.reservations[1]: 2001:db9::10 is in no imported pool"),
            "{report}"
        );
        assert!(
            report.contains("Dhcp6.subnet6[0].pools[0].option-data = []: options of one pool"),
            "{report}"
        );
        let imported = import_config(&config(false)).unwrap();
        assert!(imported.config.reservations.is_empty());
        let report = imported.report.to_string();
        assert!(
            report.contains("Dhcp6.reservations (2 entries): Kea ignores them"),
            "{report}"
        );
    }

    /// Kea files are untrusted input: cut short or with bytes changed, they give an error or
    /// an import, never a panic.
    #[test]
    fn damaged_files_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let replacements = b"{}[],:\"0-/#*9af. \n";
        for (text, is_csv) in [(CONFIG, false), (LEASES, true)] {
            let mut cuts: Vec<usize> = (0..text.len()).step_by(11).collect();
            cuts.push(text.len());
            let mut variants: Vec<String> = cuts
                .into_iter()
                .filter(|&cut| text.is_char_boundary(cut))
                .map(|cut| text[..cut].to_owned())
                .collect();
            for _ in 0..500 {
                let mut bytes = text.as_bytes().to_vec();
                for _ in 0..1 + next() % 4 {
                    let at = (next() % bytes.len() as u64) as usize;
                    bytes[at] = replacements[(next() % replacements.len() as u64) as usize];
                }
                variants.push(String::from_utf8_lossy(&bytes).into_owned());
            }
            for variant in &variants {
                let (config, leases) = if is_csv {
                    (CONFIG, variant.as_str())
                } else {
                    (variant.as_str(), LEASES)
                };
                let _ = import(Sources {
                    config: (config, "kea-dhcp6.json"),
                    leases: Some((leases, "kea-leases6.csv")),
                    server_id: None,
                    now: NOW,
                });
            }
        }
    }

    #[test]
    fn an_invalid_result_names_the_kea_file() {
        // Two subnets with the same interface: xdhcp6 links are told apart by it.
        let config = r#"{ "Dhcp6": { "server-id": { "type": "LL", "identifier": "020000000001" },
               "subnet6": [
                 { "id": 1, "subnet": "2001:db8:1::/64", "interface": "eth0" },
                 { "id": 2, "subnet": "2001:db8:2::/64", "interface": "eth0" } ] } }"#;
        let error = import_config(config).unwrap_err().to_string();
        assert!(
            error.starts_with(
                "kea-dhcp6.json: Dhcp6: the xdhcp6 configuration made from it is invalid"
            ) && error.contains("eth0")
                && error.contains("(link[1] is Kea Dhcp6.subnet6[1] (id 2, 2001:db8:2::/64))"),
            "{error}"
        );
        let config = config.replace("\"id\": 2", "\"id\": 1");
        let error = import_config(&config).unwrap_err().to_string();
        assert_eq!(
            error,
            "kea-dhcp6.json: Dhcp6.subnet6[1].id: 1 is already the id of a subnet of link \
             \"subnet-1\""
        );
    }
}
