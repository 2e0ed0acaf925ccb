//! The allocation state of each link: one [`Range`] per configured pool, addresses and
//! delegated prefixes alike, kept in step with the lease table.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{Engine, EngineError};
use crate::alloc::{AllocError, Range, link_anycast};
use crate::config::{Config, Link, PdExclude};
use crate::prefix::Prefix;
use crate::table::{EventKind, IaKind, Lease, LeaseEvent, LeaseState};

/// One pool's allocator, with the RFC 6603 exclusion its delegations carry (IA_PD only).
#[derive(Debug)]
pub(super) struct Pool {
    pub(super) range: Range,
    pub(super) exclude: Option<PdExclude>,
    /// Bound leases in the range, kept by every lease event (for metrics, in O(1)).
    bound: AtomicU64,
    /// Built for this engine and not yet counted from the table (a reload counts these).
    fresh: AtomicBool,
}

impl Pool {
    fn new(range: Range, exclude: Option<PdExclude>) -> Arc<Self> {
        Arc::new(Pool {
            range,
            exclude,
            bound: AtomicU64::new(0),
            fresh: AtomicBool::new(true),
        })
    }

    /// Whether `other` is the same pool: same units, same RFC 6603 exclusion.
    fn same_as(&self, other: &Pool) -> bool {
        self.exclude == other.exclude && self.range.same_units(&other.range)
    }
}

/// The allocation state of one link: its pools, in configuration order.
#[derive(Debug)]
pub(super) struct LinkPools {
    na: Vec<Arc<Pool>>,
    pd: Vec<Arc<Pool>>,
    /// The delegated lengths of the PD pools, each once, shortest first.
    pd_lengths: Vec<u8>,
    /// PD pool prefixes inside the link's on-link space (`inside-on-link`): no address there
    /// is appropriate for an IA_NA.
    delegated_on_link: Vec<Prefix>,
}

impl LinkPools {
    /// The ranges of `link`'s pools, with the configuration's reservations for the link left
    /// out of them.
    pub(super) fn new(config: &Config, link: &Link) -> Result<Self, EngineError> {
        let problem = |error: AllocError| EngineError::Pool {
            link: link.name.clone(),
            problem: error.to_string(),
        };
        let reservations = || {
            config
                .reservations
                .iter()
                .filter(|reservation| reservation.applies_to(link.id))
        };
        let reserved_addresses: Vec<u128> = reservations()
            .filter_map(|reservation| reservation.address.map(u128::from))
            .collect();
        let reserved_prefixes: Vec<u128> = reservations()
            .filter_map(|reservation| reservation.prefix.map(|prefix| prefix.bits()))
            .collect();
        let mut na = Vec::with_capacity(link.na_pools.len());
        for (index, pool) in link.na_pools.iter().enumerate() {
            let range = Range::addresses(pool.prefix, pool.range, index as u32)
                .map_err(problem)?
                .with_reserved(reserved_addresses.iter().copied());
            na.push(Pool::new(range, None));
        }
        let mut pd = Vec::with_capacity(link.pd_pools.len());
        let mut delegated_on_link = Vec::new();
        for (index, pool) in link.pd_pools.iter().enumerate() {
            let mut range =
                Range::prefixes(pool.prefix, pool.range, pool.delegated_len, index as u32)
                    .map_err(problem)?
                    .with_reserved(reserved_prefixes.iter().copied());
            if pool.inside_on_link {
                delegated_on_link.push(pool.prefix);
                // The prefixes that hold the link's anycast addresses stay with the link.
                let on_link = link
                    .na_pools
                    .iter()
                    .filter(|na| na.prefix.covers(&pool.prefix));
                for na in on_link {
                    range = range.with_reserved(link_anycast(na.prefix));
                }
            }
            pd.push(Pool::new(range, pool.exclude));
        }
        let mut pd_lengths: Vec<u8> = link.pd_pools.iter().map(|p| p.delegated_len).collect();
        pd_lengths.sort_unstable();
        pd_lengths.dedup();
        Ok(Self {
            na,
            pd,
            pd_lengths,
            delegated_on_link,
        })
    }

    /// Takes over `running`'s pool (the same [`Arc`], bitmap and counters) in place of each
    /// pool of this link that is the same as one of `running`'s, so that a reload misses no
    /// lease claimed meanwhile. Returns whether a pool is left that is new or changed.
    pub(super) fn adopt(&mut self, running: &LinkPools) -> bool {
        let mut fresh = false;
        for (own, old) in [(&mut self.na, &running.na), (&mut self.pd, &running.pd)] {
            for pool in own.iter_mut() {
                match old.iter().find(|old| old.same_as(pool)) {
                    Some(old) => *pool = Arc::clone(old),
                    None => fresh = true,
                }
            }
        }
        fresh
    }

    /// The pools of one IA kind.
    pub(super) fn of(&self, kind: IaKind) -> &[Arc<Pool>] {
        match kind {
            IaKind::Na => &self.na,
            IaKind::Pd => &self.pd,
        }
    }

    /// The pools of `kind` in the order a new binding tries them: configuration order, or for
    /// a client's prefix-length hint, the pools of that length, then those of shorter lengths
    /// (closest first), then the rest (closest first); configuration order within a length.
    ///
    /// RFC 8168 §3.1, in substance:
    /// the server should first try to delegate a prefix of the length the client asked for;
    /// if it has none, a prefix shorter than the hint (closest to it); otherwise any prefix
    /// it has available.
    pub(super) fn by_hint(&self, kind: IaKind, hint: Option<u8>) -> impl Iterator<Item = &Pool> {
        let pools = self.of(kind);
        let lengths = match (kind, hint) {
            (IaKind::Pd, Some(hint)) => Some(lengths_by_hint(&self.pd_lengths, hint)),
            _ => None,
        };
        let in_order = lengths.is_none().then(|| pools.iter().map(|pool| &**pool));
        let hinted = lengths.into_iter().flatten().flat_map(move |len| {
            pools
                .iter()
                .map(|pool| &**pool)
                .filter(move |pool| pool.range.unit_len() == len)
        });
        in_order.into_iter().flatten().chain(hinted)
    }

    /// The pool of `kind` whose prefix holds `bits` (on the link, in any server's slice).
    ///
    /// An address inside a PD pool carved from the on-link prefix is in no address pool: that
    /// space belongs to delegated prefixes.
    pub(super) fn holding(&self, kind: IaKind, bits: u128) -> Option<&Pool> {
        if kind == IaKind::Na && self.is_delegated(bits) {
            return None;
        }
        self.of(kind)
            .iter()
            .map(|pool| &**pool)
            .find(|pool| pool.range.prefix().contains(bits.into()))
    }

    /// Whether this server hands out the unit `bits` of length `len`: inside one of its ranges
    /// (with `foreign`, anywhere in a pool prefix), with the pool's length, and neither an
    /// anycast address nor reserved. A range that moved or shrank no longer serves the units it
    /// lost, even inside the same on-link prefix.
    /// An address inside the space delegated from the on-link prefix is not served as an
    /// address.
    pub(super) fn serves(&self, kind: IaKind, bits: u128, len: u8, foreign: bool) -> bool {
        if kind == IaKind::Na && self.is_delegated(bits) {
            return false;
        }
        self.of(kind).iter().any(|pool| {
            let range = &pool.range;
            range.unit_len() == len
                && (range.contains(bits) || (foreign && range.prefix().contains(bits.into())))
                && !range.is_reserved(bits)
        })
    }

    /// Whether `bits` lies in a PD pool carved from the on-link prefix.
    fn is_delegated(&self, bits: u128) -> bool {
        self.delegated_on_link
            .iter()
            .any(|prefix| prefix.contains(bits.into()))
    }

    /// Marks a lease's address or prefix taken or free in its range's bitmap.
    pub(super) fn mark(&self, lease: &Lease, taken: bool) {
        let owner = self
            .of(lease.kind)
            .iter()
            .find(|pool| pool.range.contains(lease.addr));
        if let Some(pool) = owner {
            if taken {
                pool.range.occupy(lease.addr);
            } else {
                pool.range.release(lease.addr);
            }
        }
    }

    /// Counts a lease event in the bindings of its range: a lease becomes bound, or a bound
    /// one is released, declined or expires.
    pub(super) fn count(&self, event: &LeaseEvent) {
        let lease = &event.record.lease;
        let up = match event.kind {
            EventKind::Bound => true,
            // The engine declines bound leases only; the event carries the declined state.
            EventKind::Declined => false,
            EventKind::Released | EventKind::Expired if lease.state == LeaseState::Bound => false,
            _ => return,
        };
        if let Some(pool) = self.owner(lease) {
            if up {
                pool.bound.fetch_add(1, Ordering::Relaxed);
            } else {
                // Saturating: a count seeded while another engine still served stays sane.
                let _ = pool
                    .bound
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
            }
        }
    }

    /// The range that hands out the lease's unit.
    fn owner(&self, lease: &Lease) -> Option<&Pool> {
        self.of(lease.kind)
            .iter()
            .map(|pool| &**pool)
            .find(|pool| pool.range.contains(lease.addr))
    }

    /// The pools of both kinds, addresses first.
    fn all(&self) -> impl Iterator<Item = &Pool> {
        self.na.iter().chain(&self.pd).map(|pool| &**pool)
    }
}

/// The delegated lengths (`lengths`: distinct, shortest first) in the order RFC 8168 §3.1
/// suggests for a client's `hint`: the same length, shorter ones closest first, then longer
/// ones closest first.
fn lengths_by_hint(lengths: &[u8], hint: u8) -> impl Iterator<Item = u8> + '_ {
    let split = lengths.partition_point(|len| *len < hint);
    let (shorter, rest) = lengths.split_at(split);
    let exact = rest.first().copied().filter(|len| *len == hint);
    let longer = rest.iter().copied().filter(move |len| *len != hint);
    exact
        .into_iter()
        .chain(shorter.iter().rev().copied())
        .chain(longer)
}

/// The state of one owned range, for metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolUsage {
    /// The link's name.
    pub link: String,
    /// Addresses or delegated prefixes.
    pub kind: IaKind,
    /// The pool prefix.
    pub prefix: Prefix,
    /// The slice this server owns.
    pub range: Prefix,
    /// Free addresses or prefixes, where the range keeps a bitmap.
    pub free: Option<u64>,
    /// Bindings in the slice (bound leases; offers and declined addresses not counted).
    pub bound: u64,
}

impl Engine {
    /// Each owned range's bindings and, where it keeps a bitmap, free space: for metrics.
    ///
    /// Reads counters that every lease event keeps (no walk of the table, no table lock):
    /// the cost of a scrape is that of the configuration, not of the leases.
    pub fn pool_usage(&self) -> Vec<PoolUsage> {
        let mut usage = Vec::new();
        for (link, pools) in self.config.links.iter().zip(&self.pools) {
            for kind in [IaKind::Na, IaKind::Pd] {
                for pool in pools.of(kind) {
                    usage.push(PoolUsage {
                        link: link.name.clone(),
                        kind,
                        prefix: pool.range.prefix(),
                        range: pool.range.range(),
                        free: pool.range.free_count(),
                        bound: pool.bound.load(Ordering::Relaxed),
                    });
                }
            }
        }
        usage
    }

    /// Sets the binding counters from the table: one pass, at start-up and after a restore.
    pub(super) fn recount(&self) {
        for pool in self.pools.iter().flat_map(LinkPools::all) {
            pool.bound.store(0, Ordering::Relaxed);
            pool.fresh.store(false, Ordering::Relaxed);
        }
        for shard in 0..self.table.shard_count() {
            self.table.iter_shard(shard, |record| {
                let lease = &record.lease;
                if lease.state != LeaseState::Bound {
                    return;
                }
                if let Some(pool) = self
                    .pools
                    .get(lease.link.index())
                    .and_then(|pools| pools.owner(lease))
                {
                    pool.bound.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        self.limits.recount(&self.table);
    }

    /// Marks the units the table holds and counts the bound leases in the pools built for
    /// this engine (a reload's new or changed pools): one pass over the table, which the
    /// running engine goes on changing; the pools taken over from it keep their own state.
    pub(super) fn seed_fresh_pools(&self) {
        for shard in 0..self.table.shard_count() {
            self.table.iter_shard(shard, |record| {
                let lease = &record.lease;
                let Some(pool) = self
                    .pools
                    .get(lease.link.index())
                    .and_then(|pools| pools.owner(lease))
                    .filter(|pool| pool.fresh.load(Ordering::Relaxed))
                else {
                    return;
                };
                pool.range.occupy(lease.addr);
                if lease.state == LeaseState::Bound {
                    pool.bound.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for pool in self.pools.iter().flat_map(LinkPools::all) {
            pool.fresh.store(false, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_follow_rfc8168_order() {
        let lengths = [48, 56, 60, 64];
        let order = |hint| lengths_by_hint(&lengths, hint).collect::<Vec<_>>();
        assert_eq!(order(56), [56, 48, 60, 64]);
        assert_eq!(order(62), [60, 56, 48, 64]);
        assert_eq!(order(44), [48, 56, 60, 64]);
        assert_eq!(order(80), [64, 60, 56, 48]);
        assert_eq!(order(48), [48, 56, 60, 64]);
    }
}
