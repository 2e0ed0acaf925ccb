//! From TOML text to the validated model, and back.

use std::collections::{HashMap, HashSet};
use std::net::Ipv6Addr;
use std::path::PathBuf;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use super::raw::{
    RawConfig, RawInterface, RawInterfaceId, RawLink, RawNaPool, RawOptions, RawPdPool,
    RawReservation, RawServer, RawValue, RawVendor, Seconds,
};
use super::text::{parse_hex, to_colon_hex, to_hex};
use super::{
    ClientKey, Config, ConfigError, FastMap, Index, InterfaceSelector, Link, LinkId, LinkLimits,
    LinkOptions, MAX_ADVERTISE_DELAY_MS, NaPool, NtpServer, PdExclude, PdPool, RateLimit,
    Reservation, ServerDuid, ServerLimits, ServerSettings, SourceLimits, Timers, ddns, leasequery,
    options,
};
use crate::prefix::Prefix;

/// Default `decline-probation`: one day.
const DEFAULT_DECLINE_PROBATION: u32 = 86_400;
/// Default `expected-leases`.
const DEFAULT_EXPECTED_LEASES: u64 = 65_536;
/// Default `renew-creates-bindings`: RFC 7550 §4 recommends that servers create bindings on
/// Renew and Rebind (RFC 9915 §18.3.4, §18.3.5 leave it to configuration).
const DEFAULT_RENEW_CREATES_BINDINGS: bool = true;
/// Longest Linux interface name (IFNAMSIZ - 1).
const MAX_INTERFACE_NAME: usize = 15;

type Problem = (String, String);

/// TOML text to the raw structs; syntax and type errors carry a field path and line:column.
pub(crate) fn parse(text: &str, file: &str) -> Result<RawConfig, ConfigError> {
    let table = DeTable::parse(text).map_err(|error| {
        let mut problem = ConfigError::new(file, "", error.message().trim_end());
        problem.position = error.span().map(|span| line_column(text, span.start));
        problem
    })?;
    let tree = table.clone();
    RawConfig::deserialize(toml::de::Deserializer::from(table)).map_err(|error| {
        let span = error.span();
        let field = span
            .as_ref()
            .map(|span| path_at(tree.get_ref(), span.start))
            .unwrap_or_default();
        let mut problem = ConfigError::new(file, field, error.message().trim_end());
        problem.position = span.map(|span| line_column(text, span.start));
        problem
    })
}

/// Line and column (from 1, columns in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The path (`link[1].pool[0].range`) of the smallest key or value whose span holds `offset`.
fn path_at(root: &DeTable<'_>, offset: usize) -> String {
    fn hit(span: &std::ops::Range<usize>, offset: usize) -> bool {
        span.start <= offset && offset < span.end.max(span.start + 1)
    }
    fn walk_table(
        table: &DeTable<'_>,
        offset: usize,
        path: &str,
        best: &mut Option<(usize, String)>,
    ) {
        for (key, value) in table.iter() {
            let here = if path.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{path}.{}", key.get_ref())
            };
            for span in [key.span(), value.span()] {
                if hit(&span, offset) && best.as_ref().is_none_or(|(size, _)| span.len() <= *size) {
                    *best = Some((span.len(), here.clone()));
                }
            }
            walk_value(value.get_ref(), offset, &here, best);
        }
    }
    fn walk_value(
        value: &DeValue<'_>,
        offset: usize,
        path: &str,
        best: &mut Option<(usize, String)>,
    ) {
        match value {
            DeValue::Table(table) => walk_table(table, offset, path, best),
            DeValue::Array(array) => {
                for (i, item) in array.iter().enumerate() {
                    let here = format!("{path}[{i}]");
                    let span = item.span();
                    if hit(&span, offset)
                        && best.as_ref().is_none_or(|(size, _)| span.len() <= *size)
                    {
                        *best = Some((span.len(), here.clone()));
                    }
                    walk_value(item.get_ref(), offset, &here, best);
                }
            }
            _ => {}
        }
    }
    let mut best = None;
    walk_table(root, offset, "", &mut best);
    best.map(|(_, path)| path).unwrap_or_default()
}

/// Validates the raw structs into the model.
pub(crate) fn build(raw: RawConfig, file: &str) -> Result<Config, ConfigError> {
    let error = |(field, problem): Problem| ConfigError::new(file, field, problem);
    let server = server(&raw.server).map_err(error)?;
    // Server-wide options alone first, so their errors name `options.…`.
    options::build(&raw.options)
        .map_err(|(field, problem)| error((join("options", &field), problem)))?;
    let mut index = Index::default();
    let links = links(&raw, &server.timers, server.preference, &mut index).map_err(error)?;
    let reservations = reservations(&raw.reservation, &links, &mut index).map_err(error)?;
    let leasequery = leasequery::build(&raw.leasequery).map_err(error)?;
    Ok(Config {
        server,
        links,
        reservations,
        leasequery,
        index,
    })
}

fn join(base: &str, field: &str) -> String {
    match field {
        "" => base.to_owned(),
        f if f.starts_with('[') || f.starts_with('.') => format!("{base}{f}"),
        f => format!("{base}.{f}"),
    }
}

fn server(raw: &RawServer) -> Result<ServerSettings, Problem> {
    let (duid, duid_file) = match (&raw.duid, &raw.duid_file) {
        (Some(_), Some(_)) => {
            return Err((
                "server.duid-file".into(),
                "give duid or duid-file, not both".into(),
            ));
        }
        (Some(hex), None) => {
            let duid = parse_hex(hex)
                .and_then(ServerDuid::from_bytes)
                .map_err(|problem| ("server.duid".to_owned(), problem))?;
            (duid.into_bytes(), None)
        }
        (None, Some(path)) if path.trim().is_empty() => {
            return Err(("server.duid-file".into(), "is empty".into()));
        }
        (None, Some(path)) => (Vec::new(), Some(PathBuf::from(path))),
        (None, None) => {
            return Err((
                "server.duid".into(),
                "missing: give duid (hex) or duid-file (where a generated DUID is kept)".into(),
            ));
        }
    };
    let timers = timers(
        Timers::default(),
        [raw.t1, raw.t2, raw.preferred_lifetime, raw.valid_lifetime],
        "server",
    )?;
    let mut relay_interfaces: Vec<String> = Vec::new();
    for (i, name) in raw.relay_interfaces.iter().enumerate() {
        let field = format!("server.relay-interfaces[{i}]");
        if name.trim().is_empty() {
            return Err((field, "is empty".into()));
        }
        if relay_interfaces.contains(name) {
            return Err((field, format!("{name:?} is listed twice")));
        }
        relay_interfaces.push(name.clone());
    }
    let mut relay_sources: Vec<Prefix> = Vec::new();
    for (i, text) in raw.relay_sources.iter().enumerate() {
        let field = format!("server.relay-sources[{i}]");
        let prefix: Prefix = text.parse().map_err(|e| (field.clone(), format!("{e}")))?;
        if relay_sources.contains(&prefix) {
            return Err((field, format!("{prefix} is listed twice")));
        }
        relay_sources.push(prefix);
    }
    Ok(ServerSettings {
        duid,
        duid_file,
        preference: raw.preference.unwrap_or(0),
        salt: raw.salt.clone().unwrap_or_default(),
        rebind_foreign: raw.rebind_foreign.unwrap_or_default(),
        renew_creates_bindings: raw
            .renew_creates_bindings
            .unwrap_or(DEFAULT_RENEW_CREATES_BINDINGS),
        unknown_link: raw.unknown_link.unwrap_or_default(),
        decline_probation: raw
            .decline_probation
            .map_or(DEFAULT_DECLINE_PROBATION, |s| s.0),
        expected_leases: raw.expected_leases.unwrap_or(DEFAULT_EXPECTED_LEASES),
        timers,
        relay_interfaces,
        relay_sources,
        limits: server_limits(raw)?,
        advertise_delay_ms: advertise_delay(raw.advertise_delay_ms, "server")?.unwrap_or(0),
        reconfigure_accept: raw.reconfigure_accept.unwrap_or(false),
    })
}

/// An `advertise-delay-ms` of `base`, checked against [`MAX_ADVERTISE_DELAY_MS`].
fn advertise_delay(value: Option<u16>, base: &str) -> Result<Option<u16>, Problem> {
    match value {
        Some(ms) if ms > MAX_ADVERTISE_DELAY_MS => Err((
            format!("{base}.advertise-delay-ms"),
            format!(
                "{ms} is more than {MAX_ADVERTISE_DELAY_MS} ms: clients take the best Advertise \
                 they have after about a second"
            ),
        )),
        other => Ok(other),
    }
}

/// The largest burst of a rate limit (the bucket counts in 1/1024 of a token in 32 bits).
const MAX_BURST: u32 = 4_000_000;

/// `[server]`'s limits over the defaults.
fn server_limits(raw: &RawServer) -> Result<ServerLimits, Problem> {
    let defaults = ServerLimits::default();
    Ok(ServerLimits {
        max_leases: raw.max_leases.unwrap_or(defaults.max_leases),
        relay: SourceLimits {
            max_bindings: raw
                .relay_max_bindings
                .unwrap_or(defaults.relay.max_bindings),
            rate: rate_limit(
                defaults.relay.rate,
                raw.relay_binding_rate,
                raw.relay_binding_burst,
                "server.relay-binding",
            )?,
        },
        mac: SourceLimits {
            max_bindings: raw.mac_max_bindings.unwrap_or(defaults.mac.max_bindings),
            rate: rate_limit(
                defaults.mac.rate,
                raw.mac_binding_rate,
                raw.mac_binding_burst,
                "server.mac-binding",
            )?,
        },
        decline_limit: raw.decline_limit.unwrap_or(defaults.decline_limit),
    })
}

/// A token bucket over `defaults`: a rate given without a burst gets at least one second's
/// worth; `base` is the keys' common stem (`server.relay-binding` for `-rate` and `-burst`).
fn rate_limit(
    defaults: RateLimit,
    rate: Option<u32>,
    burst: Option<u32>,
    base: &str,
) -> Result<RateLimit, Problem> {
    let per_second = rate.unwrap_or(defaults.per_second);
    let burst = burst.unwrap_or(defaults.burst.max(per_second));
    if per_second != 0 && burst == 0 {
        return Err((
            format!("{base}-burst"),
            format!("must be at least 1 when {base}-rate is set"),
        ));
    }
    if burst > MAX_BURST {
        return Err((format!("{base}-burst"), format!("at most {MAX_BURST}")));
    }
    Ok(RateLimit { per_second, burst })
}

/// `defaults` with the given values on top, checked for `T1 <= T2 <= preferred <= valid`.
fn timers(defaults: Timers, given: [Option<Seconds>; 4], base: &str) -> Result<Timers, Problem> {
    let [t1, t2, preferred, valid] = given;
    let timers = Timers {
        t1: t1.map_or(defaults.t1, |s| s.0),
        t2: t2.map_or(defaults.t2, |s| s.0),
        preferred: preferred.map_or(defaults.preferred, |s| s.0),
        valid: valid.map_or(defaults.valid, |s| s.0),
    };
    // RFC 9915 §21.4, in substance:
    // If the time at which the addresses in an IA_NA are to be renewed is to be left to the
    // discretion of the client, the server sets the T1 and T2 values to 0.
    let checks = [
        ("t1", "T1", timers.t1, "T2", timers.t2),
        (
            "t2",
            "T2",
            timers.t2,
            "the preferred lifetime",
            timers.preferred,
        ),
        (
            "preferred-lifetime",
            "the preferred lifetime",
            timers.preferred,
            "the valid lifetime",
            timers.valid,
        ),
    ];
    for (field, name, value, next_name, next) in checks {
        if value > next {
            return Err((
                format!("{base}.{field}"),
                format!("{name} ({value} s) is greater than {next_name} ({next} s)"),
            ));
        }
    }
    if timers.valid == 0 {
        return Err((
            format!("{base}.valid-lifetime"),
            "must be more than 0".into(),
        ));
    }
    Ok(timers)
}

/// Where a pool or relay prefix was first seen, for "already used by" messages.
struct Seen {
    field: String,
    link: LinkId,
    /// Position among all pools of the file, to report the later of two conflicting ones.
    order: usize,
}

fn links(
    raw: &RawConfig,
    defaults: &Timers,
    preference: u8,
    index: &mut Index,
) -> Result<Vec<Link>, Problem> {
    if raw.link.len() > usize::from(u16::MAX) {
        return Err(("link".into(), format!("at most {} links", u16::MAX)));
    }
    let mut links: Vec<Link> = Vec::with_capacity(raw.link.len());
    let mut na_prefixes: HashMap<Prefix, Seen> = HashMap::new();
    let mut pd_prefixes: HashMap<Prefix, Seen> = HashMap::new();
    // Every link that lists a relay prefix.
    let mut relay: HashMap<Prefix, Vec<Seen>> = HashMap::new();
    let mut ranges: Vec<(Prefix, String)> = Vec::new();
    // PD aggregates that the operator placed inside the link's on-link space.
    let mut inside_on_link: HashSet<Prefix> = HashSet::new();

    for (i, raw_link) in raw.link.iter().enumerate() {
        let base = format!("link[{i}]");
        let id = LinkId(i as u16);
        let name = raw_link.name.trim();
        if name.is_empty() {
            return Err((format!("{base}.name"), "is empty".into()));
        }
        if let Some(other) = links.iter().find(|link| link.name == name) {
            return Err((
                format!("{base}.name"),
                format!("\"{name}\" is already the name of link[{}]", other.id.0),
            ));
        }
        index.links.insert(name.to_owned(), id);

        let mut interfaces = Vec::new();
        for (j, raw_interface) in raw_link.interfaces.iter().enumerate() {
            let field = format!("{base}.interfaces[{j}]");
            let selector = interface(raw_interface, &field)?;
            let entries = index.interfaces.entry(selector.name.clone()).or_default();
            if let Some((_, other)) = entries.iter().find(|(tags, _)| *tags == selector.tags()) {
                let vlan = match (selector.outer_vlan, selector.vlan) {
                    (Some(outer), Some(inner)) => format!("VLAN {inner} in {outer}"),
                    (_, Some(vlan)) => format!("VLAN {vlan}"),
                    (_, None) => "untagged".to_owned(),
                };
                return Err((
                    field,
                    format!(
                        "{} ({vlan}) already selects {}",
                        selector.name,
                        describe(&links, *other, id, name)
                    ),
                ));
            }
            entries.push((selector.tags(), id));
            interfaces.push(selector);
        }

        let mut interface_ids = Vec::new();
        for (j, raw_id) in raw_link.interface_ids.iter().enumerate() {
            let field = format!("{base}.interface-ids[{j}]");
            let bytes = interface_id(raw_id, &field)?;
            if interface_ids.contains(&bytes) {
                return Err((
                    field,
                    format!(
                        "this Interface-Id already selects {}",
                        describe(&links, id, id, name)
                    ),
                ));
            }
            // Other links with the same value are checked once this link's prefixes are known.
            interface_ids.push(bytes);
        }

        let timers = timers(
            *defaults,
            [
                raw_link.t1,
                raw_link.t2,
                raw_link.preferred_lifetime,
                raw_link.valid_lifetime,
            ],
            &base,
        )?;

        let mut na_pools = Vec::new();
        for (j, raw_pool) in raw_link.pool.iter().enumerate() {
            let field = format!("{base}.pool[{j}]");
            let pool = na_pool(raw_pool, &field)?;
            let seen = Seen {
                field: field.clone(),
                link: id,
                order: na_prefixes.len() + pd_prefixes.len(),
            };
            first_use(&mut na_prefixes, pool.prefix, seen, &links, name, "pool")?;
            ranges.push((pool.range, format!("{field}.range")));
            na_pools.push(pool);
        }

        let mut pd_pools = Vec::new();
        for (j, raw_pool) in raw_link.pd_pool.iter().enumerate() {
            let field = format!("{base}.pd-pool[{j}]");
            let pool = pd_pool(raw_pool, &field)?;
            let seen = Seen {
                field: field.clone(),
                link: id,
                order: na_prefixes.len() + pd_prefixes.len(),
            };
            first_use(&mut pd_prefixes, pool.prefix, seen, &links, name, "pd-pool")?;
            if pool.inside_on_link {
                inside_link_space(&pool, &na_pools, &base, &field)?;
                inside_on_link.insert(pool.prefix);
            }
            ranges.push((pool.range, format!("{field}.range")));
            pd_pools.push(pool);
        }

        // The link's NA prefixes select it for relayed messages, then the explicit list.
        let mut relay_prefixes: Vec<Prefix> = Vec::new();
        let pool_prefixes = na_pools
            .iter()
            .enumerate()
            .map(|(j, pool)| (pool.prefix, format!("{base}.pool[{j}].prefix")));
        let mut explicit = Vec::new();
        for (j, text) in raw_link.relay_prefixes.iter().enumerate() {
            let field = format!("{base}.relay-prefixes[{j}]");
            let prefix: Prefix = text.parse().map_err(|e| (field.clone(), format!("{e}")))?;
            explicit.push((prefix, field));
        }
        for (prefix, field) in pool_prefixes.chain(explicit) {
            if relay_prefixes.contains(&prefix) {
                continue;
            }
            let sharing = relay.entry(prefix).or_default();
            // Links behind one relay address are told apart by Interface-Id: each of them
            // needs its own, or a relayed message could select either.
            for seen in sharing.iter() {
                let other = &links[seen.link.index()];
                let told_apart = !interface_ids.is_empty()
                    && !other.interface_ids.is_empty()
                    && !other
                        .interface_ids
                        .iter()
                        .any(|own| interface_ids.contains(own));
                if !told_apart {
                    return Err((
                        field,
                        format!(
                            "{prefix} already selects {} for relayed messages ({}); links that \
                             share a relay prefix need interface-ids, none in common",
                            describe(&links, seen.link, id, name),
                            seen.field
                        ),
                    ));
                }
            }
            sharing.push(Seen {
                field,
                link: id,
                order: 0,
            });
            relay_prefixes.push(prefix);
        }

        // Links with the same Interface-Id (relays that number their interfaces alike) are
        // told apart by link-address: each of them needs relay prefixes.
        for (j, bytes) in interface_ids.iter().enumerate() {
            let entry = index.interface_ids.entry(bytes.clone()).or_default();
            if let Some(other) = entry.iter().find(|other| {
                relay_prefixes.is_empty() || links[other.index()].relay_prefixes.is_empty()
            }) {
                return Err((
                    format!("{base}.interface-ids[{j}]"),
                    format!(
                        "this Interface-Id already selects {}; links that share an \
                         Interface-Id need relay-prefixes or pools to tell them apart",
                        describe(&links, *other, id, name)
                    ),
                ));
            }
            entry.push(id);
        }

        if interfaces.is_empty() && relay_prefixes.is_empty() && interface_ids.is_empty() {
            return Err((
                base,
                "no way to select this link: give interfaces, relay-prefixes, interface-ids \
                 or an address pool"
                    .into(),
            ));
        }

        let merged = options::merge(&raw.options, raw_link.options.clone());
        let options = options::build(&merged)
            .map_err(|(field, problem)| (join(&format!("{base}.options"), &field), problem))?;
        let rsoo_allow = options::rsoo_allow(&raw_link.rsoo_allow)
            .map_err(|(field, problem)| (join(&base, &field), problem))?;

        let ddns = match &raw_link.ddns {
            Some(raw_ddns) => Some(Box::new(ddns::build(raw_ddns, &base)?)),
            None => None,
        };
        links.push(Link {
            id,
            name: name.to_owned(),
            interfaces,
            relay_prefixes,
            interface_ids,
            preference: raw_link.preference.unwrap_or(preference),
            timers,
            rapid_commit: raw_link.rapid_commit.unwrap_or(false),
            advertise_delay_ms: advertise_delay(raw_link.advertise_delay_ms, &base)?
                .or(raw.server.advertise_delay_ms)
                .unwrap_or(0),
            reconfigure_accept: raw_link
                .reconfigure_accept
                .or(raw.server.reconfigure_accept)
                .unwrap_or(false),
            renew_creates_bindings: raw_link
                .renew_creates_bindings
                .or(raw.server.renew_creates_bindings)
                .unwrap_or(DEFAULT_RENEW_CREATES_BINDINGS),
            na_pools,
            pd_pools,
            options,
            rsoo_allow,
            limits: LinkLimits {
                max_leases: raw_link
                    .max_leases
                    .unwrap_or(LinkLimits::default().max_leases),
                rate: rate_limit(
                    LinkLimits::default().rate,
                    raw_link.binding_rate,
                    raw_link.binding_burst,
                    &format!("{base}.binding"),
                )?,
            },
            ddns,
            retired: false,
        });
    }

    no_overlapping_ranges(ranges)?;
    no_overlapping_pools(&na_prefixes)?;
    no_overlapping_pools(&pd_prefixes)?;
    no_delegation_of_on_link_space(&na_prefixes, &pd_prefixes, &inside_on_link)?;

    let mut by_len: HashMap<u8, FastMap<u128, Vec<LinkId>>> = HashMap::new();
    for (prefix, seen) in relay {
        by_len
            .entry(prefix.len())
            .or_default()
            .insert(prefix.bits(), seen.iter().map(|seen| seen.link).collect());
    }
    let mut by_len: Vec<_> = by_len.into_iter().collect();
    by_len.sort_by_key(|(len, _)| std::cmp::Reverse(*len));
    index.relay_prefixes = by_len;
    Ok(links)
}

/// `link[0] "name"`, also for the link being built (not yet in `links`).
fn describe(links: &[Link], other: LinkId, current: LinkId, current_name: &str) -> String {
    let name = if other == current {
        current_name
    } else {
        links
            .get(other.index())
            .map_or("", |link| link.name.as_str())
    };
    format!("link[{}] \"{name}\"", other.0)
}

fn first_use(
    seen: &mut HashMap<Prefix, Seen>,
    prefix: Prefix,
    this: Seen,
    links: &[Link],
    name: &str,
    kind: &str,
) -> Result<(), Problem> {
    if let Some(first) = seen.get(&prefix) {
        let whose = if first.link == this.link {
            "this link".to_owned()
        } else {
            describe(links, first.link, this.link, name)
        };
        return Err((
            format!("{}.prefix", this.field),
            format!("{prefix} is already a {kind} of {whose} ({})", first.field),
        ));
    }
    seen.insert(prefix, this);
    Ok(())
}

/// Ranges of one server never overlap: an address (or delegated prefix) would belong to two
/// pools. Sorted by start, a range overlaps an earlier one iff it starts before the furthest
/// end so far.
fn no_overlapping_ranges(ranges: Vec<(Prefix, String)>) -> Result<(), Problem> {
    let mut ranges: Vec<(Prefix, String, usize)> = ranges
        .into_iter()
        .enumerate()
        .map(|(order, (range, field))| (range, field, order))
        .collect();
    ranges.sort_by_key(|(prefix, _, _)| (prefix.bits(), prefix.len()));
    let mut furthest: Option<(u128, usize)> = None;
    for (i, (range, field, order)) in ranges.iter().enumerate() {
        if let Some((end, j)) = furthest
            && range.bits() <= end
        {
            let (other, other_field, other_order) = &ranges[j];
            // Report the one that comes later in the file.
            let (field, range, other, other_field) = if order > other_order {
                (field, range, other, other_field)
            } else {
                (other_field, other, range, field)
            };
            return Err((
                field.clone(),
                format!("{range} overlaps {other} ({other_field})"),
            ));
        }
        let end = range.bits() | !range.mask();
        if furthest.is_none_or(|(far, _)| end > far) {
            furthest = Some((end, i));
        }
    }
    Ok(())
}

/// Pools of one kind never overlap, on one link or on two: their prefixes are shared by every
/// server of the link, so another server's slice of one would be inside the other. (Equal
/// prefixes were reported by `first_use`.)
fn no_overlapping_pools(pools: &HashMap<Prefix, Seen>) -> Result<(), Problem> {
    let mut in_file_order: Vec<(&Prefix, &Seen)> = pools.iter().collect();
    in_file_order.sort_by_key(|(_, seen)| seen.order);
    no_overlapping_ranges(
        in_file_order
            .into_iter()
            .map(|(prefix, seen)| (*prefix, format!("{}.prefix", seen.field)))
            .collect(),
    )
}

/// A pd-pool with `inside-on-link = true` (at `field`, on the link at `base`): its aggregate
/// lies inside one of the link's address pool prefixes and outside all of this server's
/// address ranges, so that the two allocators never hand out the same space.
fn inside_link_space(
    pool: &PdPool,
    na_pools: &[NaPool],
    base: &str,
    field: &str,
) -> Result<(), Problem> {
    let prefix = pool.prefix;
    if !na_pools.iter().any(|na| na.prefix.covers(&prefix)) {
        return Err((
            format!("{field}.inside-on-link"),
            format!("{prefix} is not inside an address pool prefix of this link"),
        ));
    }
    if let Some((j, na)) = na_pools
        .iter()
        .enumerate()
        .find(|(_, na)| na.range.overlaps(&prefix))
    {
        return Err((
            format!("{field}.prefix"),
            format!(
                "{prefix} overlaps {} ({base}.pool[{j}].range): prefixes delegated from the \
                 on-link space must lie outside this server's address ranges",
                na.range
            ),
        ));
    }
    Ok(())
}

/// An address pool prefix is on-link space: a PD aggregate that overlaps it would delegate
/// prefixes that clients also use as addresses, unless the operator carved the aggregate out
/// of the link's own on-link prefix (`inside`, checked by `inside_link_space`).
fn no_delegation_of_on_link_space(
    na: &HashMap<Prefix, Seen>,
    pd: &HashMap<Prefix, Seen>,
    inside: &HashSet<Prefix>,
) -> Result<(), Problem> {
    // Any prefix covering `prefix` (including itself) found in `set`.
    fn covering(set: &HashMap<Prefix, Seen>, prefix: Prefix) -> Option<(&Prefix, &Seen)> {
        (0..=prefix.len())
            .find_map(|len| set.get_key_value(&Prefix::containing(prefix.addr(), len)))
    }
    // A PD aggregate inside an address pool prefix of its own link, as the operator said.
    let allowed = |na_prefix: &Prefix, na_seen: &Seen, pd_prefix: &Prefix, pd_seen: &Seen| {
        inside.contains(pd_prefix) && na_seen.link == pd_seen.link && na_prefix.covers(pd_prefix)
    };
    let mut conflicts: Vec<(&Seen, Prefix, &Prefix, &Seen)> = Vec::new();
    for (prefix, seen) in na {
        if let Some((other, other_seen)) = covering(pd, *prefix)
            && !allowed(prefix, seen, other, other_seen)
        {
            conflicts.push((seen, *prefix, other, other_seen));
        }
    }
    for (prefix, seen) in pd {
        if let Some((other, other_seen)) = covering(na, *prefix)
            && !allowed(other, other_seen, prefix, seen)
        {
            conflicts.push((seen, *prefix, other, other_seen));
        }
    }
    // Report the conflict whose field comes last in the file, naming the earlier one.
    let conflict = conflicts.into_iter().map(|(a, pa, pb, b)| {
        if a.order >= b.order {
            (a, pa, *pb, b)
        } else {
            (b, *pb, pa, a)
        }
    });
    if let Some((seen, prefix, other, other_seen)) =
        conflict.max_by_key(|(seen, _, _, _)| seen.order)
    {
        return Err((
            format!("{}.prefix", seen.field),
            format!(
                "{prefix} overlaps {other} ({}.prefix): address pools and delegated prefixes \
                 must not share space",
                other_seen.field
            ),
        ));
    }
    Ok(())
}

fn interface(raw: &RawInterface, field: &str) -> Result<InterfaceSelector, Problem> {
    let name = raw.name.trim();
    if name.is_empty() || name.len() > MAX_INTERFACE_NAME || name.contains(['/', ' ']) {
        return Err((
            format!("{field}.name"),
            format!(
                "`{}` is not an interface name (1 to 15 bytes, no `/` or space)",
                raw.name
            ),
        ));
    }
    if let Some(vlan) = raw.vlan
        && !(1..=4094).contains(&vlan)
    {
        return Err((
            format!("{field}.vlan"),
            format!("{vlan} is not a VLAN id (1..=4094)"),
        ));
    }
    if let Some(outer) = raw.outer_vlan {
        if !(1..=4094).contains(&outer) {
            return Err((
                format!("{field}.outer-vlan"),
                format!("{outer} is not a VLAN id (1..=4094)"),
            ));
        }
        if raw.vlan.is_none() {
            return Err((
                format!("{field}.outer-vlan"),
                "needs `vlan`, the inner tag of the double-tagged frames".into(),
            ));
        }
    }
    Ok(InterfaceSelector {
        name: name.to_owned(),
        vlan: raw.vlan,
        outer_vlan: raw.outer_vlan,
    })
}

fn interface_id(raw: &RawInterfaceId, field: &str) -> Result<Vec<u8>, Problem> {
    let bytes = match (&raw.text, &raw.hex) {
        (Some(text), None) => text.as_bytes().to_vec(),
        (None, Some(hex)) => parse_hex(hex).map_err(|e| (format!("{field}.hex"), e))?,
        _ => return Err((field.to_owned(), "give text or hex, exactly one".into())),
    };
    if bytes.is_empty() {
        return Err((
            field.to_owned(),
            "an Interface-Id has at least one byte".into(),
        ));
    }
    Ok(bytes)
}

/// The prefix and the slice of it this server owns.
fn prefix_and_range(
    prefix: &str,
    range: &Option<String>,
    split: &Option<String>,
    field: &str,
) -> Result<(Prefix, Prefix), Problem> {
    let prefix: Prefix = prefix
        .parse()
        .map_err(|e| (format!("{field}.prefix"), format!("{e}")))?;
    let range = match (range, split) {
        (Some(_), Some(_)) => {
            return Err((
                format!("{field}.split"),
                "give range or split, not both".into(),
            ));
        }
        (Some(text), None) => {
            let range: Prefix = text
                .parse()
                .map_err(|e| (format!("{field}.range"), format!("{e}")))?;
            if !prefix.covers(&range) {
                return Err((
                    format!("{field}.range"),
                    format!("{range} is not inside prefix {prefix}"),
                ));
            }
            range
        }
        (None, Some(text)) => {
            split_part(prefix, text).map_err(|e| (format!("{field}.split"), e))?
        }
        (None, None) => prefix,
    };
    Ok((prefix, range))
}

/// `"k/n"`: the k-th (from 1) of n equal parts, n a power of two.
fn split_part(prefix: Prefix, text: &str) -> Result<Prefix, String> {
    let bad = || format!("`{text}` is not PART/PARTS such as \"1/2\" or \"3/4\"");
    let (part, parts) = text.split_once('/').ok_or_else(bad)?;
    let part: u32 = part.trim().parse().map_err(|_| bad())?;
    let parts: u32 = parts.trim().parse().map_err(|_| bad())?;
    if !parts.is_power_of_two() {
        return Err(format!(
            "{parts} parts: the number of parts must be a power of two"
        ));
    }
    if part == 0 || part > parts {
        return Err(format!(
            "part {part} of {parts}: parts are numbered from 1 to {parts}"
        ));
    }
    prefix
        .split(part - 1, parts)
        .ok_or_else(|| format!("{prefix} cannot be split in {parts}: longer than /128"))
}

fn na_pool(raw: &RawNaPool, field: &str) -> Result<NaPool, Problem> {
    let (prefix, range) = prefix_and_range(&raw.prefix, &raw.range, &raw.split, field)?;
    Ok(NaPool { prefix, range })
}

fn pd_pool(raw: &RawPdPool, field: &str) -> Result<PdPool, Problem> {
    let (prefix, range) = prefix_and_range(&raw.prefix, &raw.range, &raw.split, field)?;
    let delegated_len = raw.delegated_length;
    let len_field = format!("{field}.delegated-length");
    if delegated_len > 128 {
        return Err((len_field, format!("{delegated_len} is longer than 128")));
    }
    if delegated_len < prefix.len() {
        return Err((
            len_field,
            format!("/{delegated_len} is shorter than the pool prefix {prefix}"),
        ));
    }
    if delegated_len < range.len() {
        return Err((
            len_field,
            format!("/{delegated_len} is shorter than this server's range {range}"),
        ));
    }
    let exclude = match (raw.excluded_prefix_length, raw.excluded_subnet) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err((
                format!("{field}.excluded-subnet"),
                "needs excluded-prefix-length".into(),
            ));
        }
        (Some(len), subnet) => {
            // RFC 6603 §4.2, in substance:
            // The prefix-len MUST be greater than the length of the delegated prefix
            if len <= delegated_len || len > 128 {
                return Err((
                    format!("{field}.excluded-prefix-length"),
                    format!(
                        "{len} must be greater than delegated-length {delegated_len} and at most 128"
                    ),
                ));
            }
            let subnet = u128::from(subnet.unwrap_or(0));
            let bits = u32::from(len - delegated_len);
            if bits < 128 && subnet >> bits != 0 {
                return Err((
                    format!("{field}.excluded-subnet"),
                    format!(
                        "{subnet} is not a /{len} inside a /{delegated_len} (0 to {})",
                        (1u128 << bits) - 1
                    ),
                ));
            }
            Some(PdExclude { len, subnet })
        }
    };
    Ok(PdPool {
        prefix,
        range,
        delegated_len,
        exclude,
        inside_on_link: raw.inside_on_link.unwrap_or(false),
    })
}

fn reservations(
    raw: &[RawReservation],
    links: &[Link],
    index: &mut Index,
) -> Result<Vec<Reservation>, Problem> {
    let mut reservations = Vec::with_capacity(raw.len());
    for (i, raw) in raw.iter().enumerate() {
        let base = format!("reservation[{i}]");
        let client = reservation_key(raw, &base, i, index)?;
        let link = match &raw.link {
            None => None,
            Some(name) => Some(
                links
                    .iter()
                    .find(|link| link.name == name.trim())
                    .map(|link| link.id)
                    .ok_or_else(|| {
                        (
                            format!("{base}.link"),
                            format!("no link is named \"{name}\""),
                        )
                    })?,
            ),
        };
        let candidates: Vec<&Link> = links
            .iter()
            .filter(|l| link.is_none_or(|id| id == l.id))
            .collect();
        let where_ = match link {
            Some(id) => format!("link[{}] \"{}\"", id.0, links[id.index()].name),
            None => "any link".to_owned(),
        };
        if let ClientKey::InterfaceId(id) = &client {
            let Some(link) = link else {
                return Err((
                    format!("{base}.interface-id"),
                    "needs `link`: Interface-Ids are only unique per relay".into(),
                ));
            };
            let on_links = index.reserved_interface_ids.entry(id.clone()).or_default();
            if let Some((_, other)) = on_links.iter().find(|(own, _)| *own == link) {
                return Err((
                    format!("{base}.interface-id"),
                    format!(
                        "this Interface-Id on link \"{}\" is already reserved by \
                         reservation[{other}]",
                        links[link.index()].name
                    ),
                ));
            }
            on_links.push((link, i));
        }
        let options = options::build(&raw.options)
            .map_err(|(field, problem)| (join(&format!("{base}.options"), &field), problem))?;
        if raw.address.is_none() && raw.prefix.is_none() && options.encoded.is_empty() {
            return Err((
                base,
                "give an address, a prefix, or both (or options)".into(),
            ));
        }
        let address = match &raw.address {
            None => None,
            Some(text) => {
                let field = format!("{base}.address");
                let address: Ipv6Addr = text
                    .parse()
                    .map_err(|_| (field.clone(), format!("`{text}` is not an IPv6 address")))?;
                if !candidates
                    .iter()
                    .any(|l| l.na_pools.iter().any(|p| p.prefix.contains(address)))
                {
                    return Err((
                        field,
                        format!("{address} is not inside a pool prefix of {where_}"),
                    ));
                }
                if let Some(other) = index.addresses.get(&address) {
                    return Err((
                        field,
                        format!("{address} is already reserved by reservation[{other}]"),
                    ));
                }
                index.addresses.insert(address, i);
                Some(address)
            }
        };
        let prefix = match &raw.prefix {
            None => None,
            Some(text) => {
                let field = format!("{base}.prefix");
                let prefix: Prefix = text.parse().map_err(|e| (field.clone(), format!("{e}")))?;
                if !candidates.iter().any(|l| {
                    l.pd_pools
                        .iter()
                        .any(|p| p.prefix.covers(&prefix) && p.delegated_len == prefix.len())
                }) {
                    return Err((
                        field,
                        format!(
                            "{prefix} is not a delegated-length prefix inside a pd-pool of {where_}"
                        ),
                    ));
                }
                if let Some((_, other)) = index.prefixes.iter().find(|(p, _)| p.overlaps(&prefix)) {
                    return Err((
                        field,
                        format!("{prefix} is already reserved by reservation[{other}]"),
                    ));
                }
                index.prefixes.insert(prefix, i);
                Some(prefix)
            }
        };
        reservations.push(Reservation {
            client,
            address,
            prefix,
            link,
            options,
        });
    }
    Ok(reservations)
}

/// The one key of `reservation[i]`, checked and entered in the index (the Interface-Id, which
/// is unique per link, once the link is known).
fn reservation_key(
    raw: &RawReservation,
    base: &str,
    i: usize,
    index: &mut Index,
) -> Result<ClientKey, Problem> {
    let given: Vec<&str> = [
        ("duid", raw.duid.is_some()),
        ("hw-address", raw.hw_address.is_some()),
        ("cm-mac", raw.cm_mac.is_some()),
        ("subscriber-id", raw.subscriber_id.is_some()),
        ("remote-id", raw.remote_id.is_some()),
        ("interface-id", raw.interface_id.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, set)| set.then_some(key))
    .collect();
    match given.as_slice() {
        [] => {
            return Err((
                base.to_owned(),
                "give the client's duid or hw-address (or one of cm-mac, subscriber-id, \
                 remote-id, interface-id)"
                    .into(),
            ));
        }
        [_] => {}
        [first, second, ..] => {
            return Err((
                format!("{base}.{second}"),
                format!("give one client key a reservation, not both {first} and {second}"),
            ));
        }
    }
    if raw.hw_type.is_some() && raw.hw_address.is_none() {
        return Err((
            format!("{base}.hw-type"),
            "only goes with hw-address".into(),
        ));
    }
    let taken = |other: &usize, what: &str| {
        format!("this {what} is already reserved by reservation[{other}]")
    };
    let bytes = |hex: &str, key: &str| -> Result<Vec<u8>, Problem> {
        let field = format!("{base}.{key}");
        let bytes = parse_hex(hex).map_err(|e| (field.clone(), e))?;
        if bytes.is_empty() {
            return Err((field, "is empty".into()));
        }
        Ok(bytes)
    };
    let insert = |map: &mut FastMap<Vec<u8>, usize>, key: Vec<u8>, name: &str, what: &str| {
        if let Some(other) = map.get(&key) {
            return Err((format!("{base}.{name}"), taken(other, what)));
        }
        map.insert(key.clone(), i);
        Ok(key)
    };
    if let Some(hex) = &raw.duid {
        let duid = parse_hex(hex)
            .and_then(ServerDuid::from_bytes)
            .map_err(|e| (format!("{base}.duid"), e))?
            .into_bytes();
        return insert(&mut index.duids, duid, "duid", "DUID").map(ClientKey::Duid);
    }
    if let Some(hex) = &raw.hw_address {
        let address = bytes(hex, "hw-address")?;
        // RFC 6939 carries the IANA hardware type; 1 is Ethernet.
        let hw_type = raw.hw_type.unwrap_or(1);
        let by_type = index.link_layer.entry(hw_type).or_default();
        let address = insert(by_type, address, "hw-address", "address")?;
        return Ok(ClientKey::LinkLayer { hw_type, address });
    }
    if let Some(hex) = &raw.cm_mac {
        let mac = bytes(hex, "cm-mac")?;
        return insert(&mut index.cm_macs, mac, "cm-mac", "cable modem MAC").map(ClientKey::CmMac);
    }
    if let Some(id) = &raw.subscriber_id {
        let field = format!("{base}.subscriber-id");
        let id = interface_id(id, &field)?;
        return insert(
            &mut index.subscriber_ids,
            id,
            "subscriber-id",
            "Subscriber-ID",
        )
        .map(ClientKey::SubscriberId);
    }
    if let Some(hex) = &raw.remote_id {
        let id = bytes(hex, "remote-id")?;
        // RFC 4649 §3: a 4-byte enterprise number, then the remote-id itself.
        if id.len() < 5 {
            return Err((
                format!("{base}.remote-id"),
                "is the whole option body: a 4-byte enterprise number, then at least one byte \
                 of remote-id"
                    .into(),
            ));
        }
        return insert(&mut index.remote_ids, id, "remote-id", "Remote-ID")
            .map(ClientKey::RemoteId);
    }
    let id = raw.interface_id.as_ref().map_or_else(
        || Ok(Vec::new()),
        |id| interface_id(id, &format!("{base}.interface-id")),
    )?;
    Ok(ClientKey::InterfaceId(id))
}

/// The model back to raw structs; `from_toml_str` of the result gives an equal `Config`.
pub(crate) fn unbuild(config: &Config) -> String {
    let server = &config.server;
    let raw = RawConfig {
        server: RawServer {
            duid: (!server.duid.is_empty()).then(|| to_colon_hex(&server.duid)),
            duid_file: server
                .duid_file
                .as_ref()
                .filter(|_| server.duid.is_empty())
                .map(|path| path.display().to_string()),
            preference: Some(server.preference),
            advertise_delay_ms: Some(server.advertise_delay_ms),
            reconfigure_accept: Some(server.reconfigure_accept),
            salt: Some(server.salt.clone()),
            rebind_foreign: Some(server.rebind_foreign),
            renew_creates_bindings: Some(server.renew_creates_bindings),
            unknown_link: Some(server.unknown_link),
            decline_probation: Some(Seconds(server.decline_probation)),
            expected_leases: Some(server.expected_leases),
            t1: Some(Seconds(server.timers.t1)),
            t2: Some(Seconds(server.timers.t2)),
            preferred_lifetime: Some(Seconds(server.timers.preferred)),
            valid_lifetime: Some(Seconds(server.timers.valid)),
            relay_interfaces: server.relay_interfaces.clone(),
            relay_sources: server.relay_sources.iter().map(|p| p.to_string()).collect(),
            max_leases: Some(server.limits.max_leases),
            relay_max_bindings: Some(server.limits.relay.max_bindings),
            relay_binding_rate: Some(server.limits.relay.rate.per_second),
            relay_binding_burst: Some(server.limits.relay.rate.burst),
            mac_max_bindings: Some(server.limits.mac.max_bindings),
            mac_binding_rate: Some(server.limits.mac.rate.per_second),
            mac_binding_burst: Some(server.limits.mac.rate.burst),
            decline_limit: Some(server.limits.decline_limit),
        },
        options: RawOptions::default(),
        link: config
            .links
            .iter()
            .filter(|link| !link.retired)
            .map(unbuild_link)
            .collect(),
        reservation: config
            .reservations
            .iter()
            .map(|r| {
                let mut raw = RawReservation {
                    address: r.address.map(|a| a.to_string()),
                    prefix: r.prefix.map(|p| p.to_string()),
                    link: r.link.map(|id| config.link(id).name.clone()),
                    options: unbuild_options(&r.options),
                    ..RawReservation::default()
                };
                match &r.client {
                    ClientKey::Duid(duid) => raw.duid = Some(to_colon_hex(duid)),
                    ClientKey::LinkLayer { hw_type, address } => {
                        raw.hw_address = Some(to_colon_hex(address));
                        raw.hw_type = Some(*hw_type);
                    }
                    ClientKey::CmMac(mac) => raw.cm_mac = Some(to_colon_hex(mac)),
                    ClientKey::SubscriberId(id) => raw.subscriber_id = Some(unbuild_bytes(id)),
                    ClientKey::RemoteId(id) => raw.remote_id = Some(to_hex(id)),
                    ClientKey::InterfaceId(id) => raw.interface_id = Some(unbuild_bytes(id)),
                }
                raw
            })
            .collect(),
        leasequery: leasequery::unbuild(&config.leasequery),
    };
    // Every value above is a string, integer, bool, table or array: serializing cannot fail.
    toml::to_string(&raw).unwrap_or_default()
}

fn unbuild_link(link: &Link) -> RawLink {
    RawLink {
        name: link.name.clone(),
        interfaces: link
            .interfaces
            .iter()
            .map(|i| RawInterface {
                name: i.name.clone(),
                vlan: i.vlan,
                outer_vlan: i.outer_vlan,
            })
            .collect(),
        relay_prefixes: link
            .relay_prefixes
            .iter()
            .filter(|p| !link.na_pools.iter().any(|pool| pool.prefix == **p))
            .map(|p| p.to_string())
            .collect(),
        interface_ids: link
            .interface_ids
            .iter()
            .map(|id| unbuild_bytes(id))
            .collect(),
        t1: Some(Seconds(link.timers.t1)),
        t2: Some(Seconds(link.timers.t2)),
        preferred_lifetime: Some(Seconds(link.timers.preferred)),
        valid_lifetime: Some(Seconds(link.timers.valid)),
        preference: Some(link.preference),
        advertise_delay_ms: Some(link.advertise_delay_ms),
        reconfigure_accept: Some(link.reconfigure_accept),
        rapid_commit: Some(link.rapid_commit),
        renew_creates_bindings: Some(link.renew_creates_bindings),
        pool: link
            .na_pools
            .iter()
            .map(|p| RawNaPool {
                prefix: p.prefix.to_string(),
                range: Some(p.range.to_string()),
                split: None,
            })
            .collect(),
        pd_pool: link
            .pd_pools
            .iter()
            .map(|p| RawPdPool {
                prefix: p.prefix.to_string(),
                delegated_length: p.delegated_len,
                range: Some(p.range.to_string()),
                split: None,
                excluded_prefix_length: p.exclude.map(|e| e.len),
                // Excluded subnets come from an i64 in TOML, so they fit in u64.
                excluded_subnet: p.exclude.map(|e| e.subnet as u64),
                inside_on_link: p.inside_on_link.then_some(true),
            })
            .collect(),
        options: unbuild_options(&link.options),
        rsoo_allow: link.rsoo_allow.clone(),
        max_leases: Some(link.limits.max_leases),
        binding_rate: Some(link.limits.rate.per_second),
        binding_burst: Some(link.limits.rate.burst),
        ddns: link.ddns.as_deref().map(ddns::unbuild),
    }
}

/// An Interface-Id or Subscriber-ID as text when it is printable, else as hex.
fn unbuild_bytes(id: &[u8]) -> RawInterfaceId {
    match std::str::from_utf8(id) {
        Ok(text) if text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') => RawInterfaceId {
            text: Some(text.to_owned()),
            hex: None,
        },
        _ => RawInterfaceId {
            text: None,
            hex: Some(to_hex(id)),
        },
    }
}

fn unbuild_options(options: &LinkOptions) -> RawOptions {
    fn list<T: ToString>(items: &[T]) -> Option<Vec<String>> {
        (!items.is_empty()).then(|| items.iter().map(T::to_string).collect())
    }
    let hex_value = |code: u16, body: &[u8]| RawValue {
        code,
        hex: Some(to_hex(body)),
        ..RawValue::default()
    };
    RawOptions {
        dns_servers: list(&options.dns_servers),
        domain_search: list(&options.domain_search),
        ntp_servers: (!options.ntp_servers.is_empty()).then(|| {
            options
                .ntp_servers
                .iter()
                .map(|server| match server {
                    NtpServer::Address(a) | NtpServer::Multicast(a) => a.to_string(),
                    NtpServer::Fqdn(name) => name.clone(),
                })
                .collect()
        }),
        sntp_servers: list(&options.sntp_servers),
        sol_max_rt: options.sol_max_rt.map(Seconds),
        inf_max_rt: options.inf_max_rt.map(Seconds),
        information_refresh_time: options.information_refresh_time.map(Seconds),
        bootfile_url: options.bootfile_url.clone(),
        bootfile_params: list(&options.bootfile_params),
        vendor: (!options.vendor.is_empty()).then(|| {
            options
                .vendor
                .iter()
                .map(|v| RawVendor {
                    enterprise: v.enterprise,
                    sub_options: v
                        .sub_options
                        .iter()
                        .map(|s| hex_value(s.code, &s.body))
                        .collect(),
                    always_send: v.always_send.then_some(true),
                })
                .collect()
        }),
        custom: (!options.custom.is_empty()).then(|| {
            options
                .custom
                .iter()
                .map(|c| hex_value(c.code, &c.body))
                .collect()
        }),
        always_send: (!options.always_send.is_empty()).then(|| {
            options
                .always_send
                .iter()
                .map(|c| options::option_name(*c))
                .collect()
        }),
    }
}
