//! Kea's memfile lease file (`kea-leases6.csv`) read, and its active leases written as an
//! xdhcp6 journal.
//!
//! Kea appends a line whenever a lease changes, so the last line of an address (or prefix)
//! is its state. The header names the columns; versions differ in their trailing columns
//! (`pool_id` since Kea 2.5), so columns are found by name and missing trailing ones are
//! tolerated.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv6Addr;

use xdhcp6_engine::config::{ClientKey, Config, LinkId};
use xdhcp6_engine::table::{
    DuidBuf, EventKind, INFINITE, IaKind, Lease, LeaseRecord, LeaseState, Lifetimes,
};

use super::{KeaError, Report};
use crate::journal::format::{self, Link, MAX_DUID_LEN};

/// Kea's `lease_type` column.
const NA: u8 = 0;
const TA: u8 = 1;
const PD: u8 = 2;

/// Kea's `state` column: declined, expired-reclaimed (0 is default, the usable state).
const DECLINED: u8 = 1;
const RECLAIMED: u8 = 2;

/// Columns without which a line means nothing.
const REQUIRED: [&str; 9] = [
    "address",
    "duid",
    "valid_lifetime",
    "expire",
    "subnet_id",
    "pref_lifetime",
    "lease_type",
    "iaid",
    "prefix_len",
];

/// One line of the lease file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvLease {
    /// Its line number (from 1).
    pub line: usize,
    /// The address, or the first address of the prefix.
    pub address: Ipv6Addr,
    /// The client DUID (Kea writes `00` for a declined lease).
    pub duid: Vec<u8>,
    /// Valid lifetime; 0 for a released lease.
    pub valid: u32,
    /// When the lease ends (Unix seconds).
    pub expire: u64,
    /// The Kea subnet id.
    pub subnet_id: u32,
    /// Preferred lifetime.
    pub preferred: u32,
    /// 0 address, 1 temporary address, 2 prefix.
    pub lease_type: u8,
    /// The IA's IAID.
    pub iaid: u32,
    /// 128 for an address, the delegated length for a prefix.
    pub prefix_len: u8,
    /// 0 default, 1 declined, 2 expired-reclaimed.
    pub state: u8,
}

/// Reads a lease file; each line's errors name it.
pub fn read_leases(text: &str, file: &str) -> Result<Vec<CsvLease>, KeaError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Ok(Vec::new());
    };
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let column = |name: &str| names.iter().position(|n| *n == name);
    let mut index = [0usize; REQUIRED.len()];
    for (slot, name) in index.iter_mut().zip(REQUIRED) {
        *slot = column(name).ok_or_else(|| {
            KeaError::new(
                file,
                "line 1",
                format!("the header has no column {name}: not a Kea DHCPv6 lease file"),
            )
        })?;
    }
    let state_column = column("state");
    let mut leases = Vec::new();
    for (number, line) in lines {
        let number = number + 1;
        if line.trim() == header.trim() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let at = format!("line {number}");
        let field = |i: usize| -> Result<&str, KeaError> {
            let name = REQUIRED[i];
            fields
                .get(index[i])
                .map(|f| f.trim())
                .ok_or_else(|| KeaError::new(file, &at, format!("column {name} is missing")))
        };
        let number_of = |i: usize| -> Result<u64, KeaError> {
            let text = field(i)?;
            text.parse().map_err(|_| {
                KeaError::new(
                    file,
                    &at,
                    format!("column {}: \"{text}\" is not a number", REQUIRED[i]),
                )
            })
        };
        let small = |i: usize, max: u64| -> Result<u64, KeaError> {
            let value = number_of(i)?;
            if value > max {
                return Err(KeaError::new(
                    file,
                    &at,
                    format!("column {}: {value} is larger than {max}", REQUIRED[i]),
                ));
            }
            Ok(value)
        };
        let text = field(0)?;
        let address: Ipv6Addr = text.parse().map_err(|_| {
            KeaError::new(
                file,
                &at,
                format!("column address: \"{text}\" is not an IPv6 address"),
            )
        })?;
        let duid_text = field(1)?;
        let duid = parse_hex(duid_text).ok_or_else(|| {
            KeaError::new(
                file,
                &at,
                format!("column duid: \"{duid_text}\" is not hex"),
            )
        })?;
        let state = match state_column.and_then(|i| fields.get(i)) {
            None => 0,
            Some(text) if text.trim().is_empty() => 0,
            Some(text) => text.trim().parse::<u8>().map_err(|_| {
                KeaError::new(
                    file,
                    &at,
                    format!("column state: \"{}\" is not a lease state", text.trim()),
                )
            })?,
        };
        let lease = CsvLease {
            line: number,
            address,
            duid,
            valid: small(2, u64::from(u32::MAX))? as u32,
            expire: number_of(3)?,
            subnet_id: small(4, u64::from(u32::MAX))? as u32,
            preferred: small(5, u64::from(u32::MAX))? as u32,
            lease_type: small(6, 2)? as u8,
            iaid: small(7, u64::from(u32::MAX))? as u32,
            prefix_len: small(8, 128)? as u8,
            state,
        };
        leases.push(lease);
    }
    Ok(leases)
}

/// Kea's hex: colon-separated octets, or none at all.
pub(crate) fn parse_hex(text: &str) -> Option<Vec<u8>> {
    // Longer than any identifier Kea writes: refused before anything is allocated.
    if text.len() > 3 * (MAX_DUID_LEN + 16) {
        return None;
    }
    let digits: String = text.trim().chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 2 * (MAX_DUID_LEN + 16) {
        return None;
    }
    xdhcp6_engine::hex::parse(&digits).ok()
}

/// The journal of the active leases: the last line of each address or prefix, if it holds a
/// lease that is neither released, reclaimed nor expired at `now`, on a link of `config`, in
/// its ranges or reserved for the client. The rest goes into the report.
pub(crate) fn journal(
    lines: &[CsvLease],
    links_by_subnet: &HashMap<u32, String>,
    config: &Config,
    now: u32,
    report: &mut Report,
) -> Vec<u8> {
    report.lease_lines = lines.len();
    let mut latest: BTreeMap<(u8, u128, u8), &CsvLease> = BTreeMap::new();
    for lease in lines {
        latest.insert(
            (
                lease.lease_type,
                u128::from(lease.address),
                lease.prefix_len,
            ),
            lease,
        );
    }
    let mut out = format::header(format::VERSION).to_vec();
    for lease in latest.values() {
        let what = match lease.lease_type {
            PD => format!("{}/{}", lease.address, lease.prefix_len),
            _ => lease.address.to_string(),
        };
        let infinite = lease.valid == INFINITE;
        if lease.valid == 0
            || lease.state == RECLAIMED
            || (!infinite && lease.expire <= u64::from(now))
        {
            report.leases_ended += 1;
            continue;
        }
        let mut left_out = |reason: String| {
            report.leases_left_out.push(format!(
                "line {}: {what} (subnet {}, DUID {}, IAID {}): {reason}",
                lease.line,
                lease.subnet_id,
                hex(&lease.duid),
                lease.iaid
            ));
        };
        if lease.state == DECLINED {
            left_out(format!(
                "declined in Kea until {}; xdhcp6 may hand it out again",
                lease.expire
            ));
            continue;
        }
        if lease.state != 0 {
            left_out(format!("state {} is not a Kea lease state", lease.state));
            continue;
        }
        if lease.lease_type == TA {
            left_out("a temporary address (IA_TA): xdhcp6 assigns none".to_owned());
            continue;
        }
        if lease.duid.len() < 3 || lease.duid.len() > MAX_DUID_LEN {
            left_out(format!("a DUID of {} octets", lease.duid.len()));
            continue;
        }
        let Some(name) = links_by_subnet.get(&lease.subnet_id) else {
            left_out("no subnet of the configuration has this id".to_owned());
            continue;
        };
        let Some(link) = config.link_by_name(name) else {
            left_out(format!(
                "link \"{name}\" is not in the imported configuration"
            ));
            continue;
        };
        let kind = if lease.lease_type == NA {
            IaKind::Na
        } else {
            IaKind::Pd
        };
        if kind == IaKind::Na && lease.prefix_len != 128 {
            left_out(format!("an address with prefix_len {}", lease.prefix_len));
            continue;
        }
        if let Some(other) = reserved_for_another(config, kind, lease) {
            left_out(format!("reserved for another client ({other})"));
            continue;
        }
        if !served(config, link, kind, lease) {
            left_out(format!(
                "outside the imported {} of link \"{name}\" and not reserved for this client: \
                 xdhcp6 would not renew it",
                if kind == IaKind::Na {
                    "pools"
                } else {
                    "pd-pools"
                }
            ));
            continue;
        }
        let expires = if infinite {
            INFINITE
        } else {
            u32::try_from(lease.expire).unwrap_or(INFINITE - 1)
        };
        let at = if infinite {
            now
        } else {
            expires.saturating_sub(lease.valid)
        };
        let record = LeaseRecord {
            relay: None,
            reconfigure: false,
            duid: DuidBuf::new(&lease.duid),
            lease: Lease {
                addr: u128::from(lease.address),
                prefix_len: lease.prefix_len,
                kind,
                iaid: lease.iaid,
                link: LinkId(0),
                state: LeaseState::Bound,
                lifetimes: Lifetimes {
                    preferred: lease.preferred.min(lease.valid),
                    valid: lease.valid,
                },
                expires,
            },
        };
        format::encode(
            &mut out,
            EventKind::Bound,
            at,
            &Link::Name(Cow::Borrowed(name)),
            &record,
        );
        report.leases_imported += 1;
    }
    out
}

/// The DUID of another client that has this address or prefix reserved.
fn reserved_for_another(config: &Config, kind: IaKind, lease: &CsvLease) -> Option<String> {
    config.reservations.iter().find_map(|r| {
        let holds = match kind {
            IaKind::Na => r.address == Some(lease.address),
            IaKind::Pd => r
                .prefix
                .is_some_and(|p| p.addr() == lease.address && p.len() == lease.prefix_len),
        };
        match &r.client {
            ClientKey::Duid(duid) if holds && *duid != lease.duid => Some(hex(duid)),
            _ => None,
        }
    })
}

/// Whether xdhcp6 answers this lease's Renew with it: inside one of the link's ranges (of the
/// delegated length, for a prefix), or the client's reservation.
fn served(config: &Config, link: LinkId, kind: IaKind, lease: &CsvLease) -> bool {
    let Some(link_config) = config.links.get(link.index()) else {
        return false;
    };
    let reserved = config.reservations.iter().any(|r| {
        r.link.is_none_or(|id| id == link)
            && matches!(&r.client, ClientKey::Duid(duid) if *duid == lease.duid)
            && match kind {
                IaKind::Na => r.address == Some(lease.address),
                IaKind::Pd => r
                    .prefix
                    .is_some_and(|p| p.addr() == lease.address && p.len() == lease.prefix_len),
            }
    });
    if reserved {
        return true;
    }
    match kind {
        IaKind::Na => link_config
            .na_pools
            .iter()
            .any(|pool| pool.range.contains(lease.address)),
        IaKind::Pd => link_config.pd_pools.iter().any(|pool| {
            pool.delegated_len == lease.prefix_len
                && pool.range.contains(lease.address)
                && u128::from(lease.address) & !mask(lease.prefix_len) == 0
        }),
    }
}

fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

fn hex(bytes: &[u8]) -> String {
    xdhcp6_engine::hex::colon(bytes)
}
