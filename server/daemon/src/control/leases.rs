//! The lease and pool queries of the control API, on the engine that serves now.
//!
//! A lookup by address or prefix is one index probe; by DUID with an IAID, one probe per
//! link and IA kind. A lookup by DUID alone or by link-layer address, a listing and the
//! offered and declined counts of `GET /v1/pools` walk the table shard by shard (each shard
//! locked only while it is read), and keep at most a page of results.

use std::collections::BinaryHeap;

use axum::http::StatusCode;
use xdhcp6_engine::Engine;
use xdhcp6_engine::engine::PoolUsage;
use xdhcp6_engine::prefix::Prefix;
use xdhcp6_engine::table::{EventSink, IaKind, LeaseEvent, LeaseRecord, LeaseState};

use super::error::ApiError;
use super::model::{LeaseView, Leases, PoolView, Pools, kind_name};
use super::params::{LeaseQuery, ListQuery, MAX_LIMIT, Position, ReleaseQuery};
use crate::events::Events;

/// Answers `GET /v1/leases`.
pub fn lookup(engine: &Engine, query: &LeaseQuery, now: u32) -> Result<Leases, ApiError> {
    let config = engine.config();
    let table = engine.table();
    let live = |record: &LeaseRecord| !record.lease.is_expired(now);
    let found = match query {
        LeaseQuery::Address(address) => {
            let record = table
                .lease_at(u128::from(*address), IaKind::Na)
                .filter(live)
                .ok_or_else(|| ApiError::not_found("address", format!("no lease on {address}")))?;
            vec![record]
        }
        LeaseQuery::Prefix(prefix) => {
            let record = table
                .lease_at(prefix.bits(), IaKind::Pd)
                .filter(|record| live(record) && record.lease.prefix_len == prefix.len())
                .ok_or_else(|| ApiError::not_found("prefix", format!("no lease of {prefix}")))?;
            vec![record]
        }
        LeaseQuery::Duid { duid, iaid } => {
            let mut records = Vec::new();
            match iaid {
                Some(iaid) => {
                    for link in &config.links {
                        for kind in [IaKind::Na, IaKind::Pd] {
                            let key = table.ia_key(duid, *iaid, kind, link.id);
                            table.records_of(&key, |record| records.push(record));
                        }
                    }
                    records.retain(live);
                }
                None => {
                    table.client_leases(duid, |record| {
                        if live(record) && records.len() < MAX_LIMIT {
                            records.push(record.clone());
                        }
                    });
                }
            }
            if records.is_empty() {
                let field = if iaid.is_some() { "iaid" } else { "duid" };
                return Err(ApiError::not_found(field, "no lease of this client"));
            }
            records
        }
        LeaseQuery::LinkLayer(address) => {
            let records = matching(engine, MAX_LIMIT, |record| {
                live(record) && duid_link_layer(record.duid.as_bytes()) == Some(address.as_slice())
            });
            if records.is_empty() {
                return Err(ApiError::not_found(
                    "hw-address",
                    "no lease of a client whose DUID-LL or DUID-LLT carries this address",
                ));
            }
            records
        }
        LeaseQuery::List(list) => return page(engine, list, now),
    };
    let mut leases: Vec<(Position, LeaseView)> = found
        .iter()
        .map(|record| {
            (
                Position::of(record.lease.addr, record.lease.kind),
                LeaseView::new(record, config),
            )
        })
        .collect();
    leases.sort_by_key(|(position, _)| *position);
    Ok(Leases {
        leases: leases.into_iter().map(|(_, view)| view).collect(),
        next: None,
    })
}

/// The link-layer address inside a DUID-LLT (type 1) or DUID-LL (type 3), RFC 9915 §11.2 and
/// §11.4.
pub fn duid_link_layer(duid: &[u8]) -> Option<&[u8]> {
    match duid {
        [0, 1, _, _, _, _, _, _, address @ ..] if !address.is_empty() => Some(address),
        [0, 3, _, _, address @ ..] if !address.is_empty() => Some(address),
        _ => None,
    }
}

/// Up to `most` records that `wanted` takes, walking the whole table.
fn matching(
    engine: &Engine,
    most: usize,
    wanted: impl Fn(&LeaseRecord) -> bool,
) -> Vec<LeaseRecord> {
    let table = engine.table();
    let mut records = Vec::new();
    for shard in 0..table.shard_count() {
        table.iter_shard(shard, |record| {
            if records.len() < most && wanted(record) {
                records.push(record.clone());
            }
        });
    }
    records
}

/// A record ordered by its position, for the page heap.
struct ByPosition(Position, LeaseRecord);

impl PartialEq for ByPosition {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for ByPosition {}

impl PartialOrd for ByPosition {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByPosition {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

/// One page of a listing: the first `limit` live leases after the cursor, in address order.
fn page(engine: &Engine, list: &ListQuery, now: u32) -> Result<Leases, ApiError> {
    let config = engine.config();
    let link = match &list.link {
        Some(name) => Some(config.link_by_name(name).ok_or_else(|| {
            ApiError::not_found("link", format!("the configuration has no link {name:?}"))
        })?),
        None => None,
    };
    let slice = match (&list.link, list.pool) {
        (Some(name), Some(index)) => Some(pool_slice(engine, name, index)?),
        _ => None,
    };
    let table = engine.table();
    // The `limit + 1` smallest positions after the cursor: a max-heap that drops its largest.
    let mut heap: BinaryHeap<ByPosition> = BinaryHeap::with_capacity(list.limit + 1);
    for shard in 0..table.shard_count() {
        table.iter_shard(shard, |record| {
            let lease = &record.lease;
            let position = Position::of(lease.addr, lease.kind);
            if list.after.is_some_and(|after| position <= after)
                || lease.is_expired(now)
                || link.is_some_and(|link| link != lease.link)
                || slice
                    .is_some_and(|(kind, range)| kind != lease.kind || !range.contains(lease.ip()))
            {
                return;
            }
            if heap.len() > list.limit && heap.peek().is_some_and(|largest| largest.0 <= position) {
                return;
            }
            heap.push(ByPosition(position, record.clone()));
            if heap.len() > list.limit + 1 {
                heap.pop();
            }
        });
    }
    let mut records = heap.into_sorted_vec();
    let more = records.len() > list.limit;
    records.truncate(list.limit);
    let leases: Vec<LeaseView> = records
        .iter()
        .map(|ByPosition(_, record)| LeaseView::new(record, config))
        .collect();
    let next = more
        .then(|| leases.last().map(|view| view.lease.clone()))
        .flatten();
    Ok(Leases { leases, next })
}

/// The kind and range of pool `index` of link `name`, numbered as `GET /v1/pools` shows.
fn pool_slice(engine: &Engine, name: &str, index: usize) -> Result<(IaKind, Prefix), ApiError> {
    let pools: Vec<PoolUsage> = engine
        .pool_usage()
        .into_iter()
        .filter(|pool| pool.link == name)
        .collect();
    pools
        .get(index)
        .map(|pool| (pool.kind, pool.range))
        .ok_or_else(|| {
            ApiError::not_found(
                "pool",
                format!(
                    "link {name:?} has {} pool(s), numbered from 0 (see GET /v1/pools)",
                    pools.len()
                ),
            )
        })
}

/// Answers `GET /v1/pools`: every slice's size and bound count (the counters the metrics
/// export) and, from one walk of the table, its offered and declined leases.
pub fn pools(engine: &Engine, now: u32) -> Pools {
    let config = engine.config();
    let usage = engine.pool_usage();
    let mut views: Vec<PoolView> = Vec::with_capacity(usage.len());
    // The slices of each link by its index, for the walk: (kind, range, view index).
    let mut by_link: Vec<Vec<(IaKind, Prefix, usize)>> = vec![Vec::new(); config.links.len()];
    for pool in &usage {
        let number = views.iter().filter(|view| view.link == pool.link).count();
        let unit_length = unit_length(engine, pool);
        if let Some(link) = config.link_by_name(&pool.link)
            && let Some(slices) = by_link.get_mut(link.index())
        {
            slices.push((pool.kind, pool.range, views.len()));
        }
        views.push(PoolView {
            link: pool.link.clone(),
            pool: number,
            kind: kind_name(pool.kind).to_owned(),
            prefix: pool.prefix.to_string(),
            range: pool.range.to_string(),
            unit_length,
            size: u32::from(unit_length)
                .checked_sub(u32::from(pool.range.len()))
                .and_then(|bits| 1u128.checked_shl(bits)),
            bound: pool.bound,
            offered: 0,
            declined: 0,
            free: pool.free,
        });
    }
    let table = engine.table();
    for shard in 0..table.shard_count() {
        table.iter_shard(shard, |record| {
            let lease = &record.lease;
            if lease.state == LeaseState::Bound || lease.is_expired(now) {
                return;
            }
            let Some(slices) = by_link.get(lease.link.index()) else {
                return;
            };
            let owner = slices
                .iter()
                .find(|(kind, range, _)| *kind == lease.kind && range.contains(lease.ip()));
            if let Some(view) = owner.and_then(|(_, _, index)| views.get_mut(*index)) {
                match lease.state {
                    LeaseState::Offered => view.offered += 1,
                    LeaseState::Declined => view.declined += 1,
                    LeaseState::Bound => {}
                }
            }
        });
    }
    Pools { pools: views }
}

/// The length of the units a slice hands out: 128, or the PD pool's delegated length.
fn unit_length(engine: &Engine, pool: &PoolUsage) -> u8 {
    match pool.kind {
        IaKind::Na => 128,
        IaKind::Pd => engine
            .config()
            .links
            .iter()
            .filter(|link| link.name == pool.link)
            .flat_map(|link| &link.pd_pools)
            .find(|configured| configured.prefix == pool.prefix && configured.range == pool.range)
            .map_or(pool.range.len(), |configured| configured.delegated_len),
    }
}

/// An [`EventSink`] over a boxed [`Events`].
struct Boxed<'a>(&'a mut dyn Events);

impl EventSink for Boxed<'_> {
    fn emit(&mut self, event: LeaseEvent) {
        self.0.emit(event);
    }
}

/// Answers `DELETE /v1/leases`: ends the lease as the client's Release would, through
/// `events` (the journal), and waits until its record is as durable as replies require.
pub fn release(
    engine: &Engine,
    query: ReleaseQuery,
    now: u32,
    events: &mut dyn Events,
) -> Result<LeaseView, ApiError> {
    let (field, addr, kind, len, shown) = match query {
        ReleaseQuery::Address(address) => (
            "address",
            u128::from(address),
            IaKind::Na,
            128,
            address.to_string(),
        ),
        ReleaseQuery::Prefix(prefix) => (
            "prefix",
            prefix.bits(),
            IaKind::Pd,
            prefix.len(),
            prefix.to_string(),
        ),
    };
    let current = engine
        .table()
        .lease_at(addr, kind)
        .filter(|record| !record.lease.is_expired(now) && record.lease.prefix_len == len)
        .ok_or_else(|| ApiError::not_found(field, format!("no lease on {shown}")))?;
    if current.lease.state == LeaseState::Declined {
        return Err(ApiError::about(
            StatusCode::CONFLICT,
            field,
            format!("{shown} is declined and in probation: no client holds it"),
        ));
    }
    let released = engine
        .release_lease(addr, kind, now, &mut Boxed(events))
        .ok_or_else(|| ApiError::not_found(field, format!("no lease on {shown}")))?;
    if !events.settle() {
        return Err(ApiError::about(
            StatusCode::SERVICE_UNAVAILABLE,
            field,
            format!(
                "{shown} is released, but the journal cannot write at the moment: its record \
                 is written once the journal recovers"
            ),
        ));
    }
    Ok(LeaseView::new(&released, engine.config()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_layer_addresses_come_from_duid_ll_and_llt_only() {
        let llt = [0, 1, 0, 1, 0x2e, 0, 0, 9, 2, 0, 0, 0, 0, 7];
        assert_eq!(duid_link_layer(&llt), Some(&[2, 0, 0, 0, 0, 7][..]));
        let ll = [0, 3, 0, 1, 2, 0, 0, 0, 0, 1];
        assert_eq!(duid_link_layer(&ll), Some(&[2, 0, 0, 0, 0, 1][..]));
        assert_eq!(duid_link_layer(&[0, 2, 0, 0, 0, 9, 1, 2]), None, "DUID-EN");
        assert_eq!(duid_link_layer(&[0, 4, 1, 2, 3]), None, "DUID-UUID");
        assert_eq!(duid_link_layer(&[0, 3, 0, 1]), None, "no address");
        assert_eq!(
            duid_link_layer(&[0, 1, 0, 1, 0, 0, 0, 0]),
            None,
            "no address"
        );
        assert_eq!(duid_link_layer(&[]), None);
    }
}
