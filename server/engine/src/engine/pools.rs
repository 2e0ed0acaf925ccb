//! The allocation state of each link: one [`Range`] per configured pool, addresses and
//! delegated prefixes alike, kept in step with the lease table.

use super::{Engine, EngineError};
use crate::alloc::{AllocError, Range};
use crate::config::{Config, Link, PdExclude};
use crate::prefix::Prefix;
use crate::table::{IaKind, Lease, LeaseState};

/// One pool's allocator, with the RFC 6603 exclusion its delegations carry (IA_PD only).
#[derive(Debug)]
pub(super) struct Pool {
    pub(super) range: Range,
    pub(super) exclude: Option<PdExclude>,
}

/// The allocation state of one link: its pools, in configuration order.
#[derive(Debug)]
pub(super) struct LinkPools {
    na: Vec<Pool>,
    pd: Vec<Pool>,
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
            na.push(Pool {
                range,
                exclude: None,
            });
        }
        let mut pd = Vec::with_capacity(link.pd_pools.len());
        for (index, pool) in link.pd_pools.iter().enumerate() {
            let range = Range::prefixes(pool.prefix, pool.range, pool.delegated_len, index as u32)
                .map_err(problem)?
                .with_reserved(reserved_prefixes.iter().copied());
            pd.push(Pool {
                range,
                exclude: pool.exclude,
            });
        }
        Ok(Self { na, pd })
    }

    /// The pools of one IA kind.
    pub(super) fn of(&self, kind: IaKind) -> &[Pool] {
        match kind {
            IaKind::Na => &self.na,
            IaKind::Pd => &self.pd,
        }
    }

    /// The pool of `kind` whose prefix holds `bits` (on the link, in any server's slice).
    pub(super) fn holding(&self, kind: IaKind, bits: u128) -> Option<&Pool> {
        self.of(kind)
            .iter()
            .find(|pool| pool.range.prefix().contains(bits.into()))
    }

    /// Whether this server hands out the unit `bits` of length `len`: inside one of its ranges
    /// (with `foreign`, anywhere in a pool prefix), with the pool's length, and neither an
    /// anycast address nor reserved. A range that moved or shrank no longer serves the units it
    /// lost, even inside the same on-link prefix.
    pub(super) fn serves(&self, kind: IaKind, bits: u128, len: u8, foreign: bool) -> bool {
        self.of(kind).iter().any(|pool| {
            let range = &pool.range;
            range.unit_len() == len
                && (range.contains(bits) || (foreign && range.prefix().contains(bits.into())))
                && !range.is_reserved(bits)
        })
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

    /// How many pools the link has, both kinds.
    fn len(&self) -> usize {
        self.na.len() + self.pd.len()
    }

    /// The position of the lease's range among the link's pools (addresses first).
    fn position(&self, lease: &Lease) -> Option<usize> {
        let offset = match lease.kind {
            IaKind::Na => 0,
            IaKind::Pd => self.na.len(),
        };
        self.of(lease.kind)
            .iter()
            .position(|pool| pool.range.contains(lease.addr))
            .map(|index| offset + index)
    }
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
    /// Walks the whole table, one shard lock at a time: call it per scrape, not per packet.
    pub fn pool_usage(&self) -> Vec<PoolUsage> {
        let mut usage = Vec::new();
        // Where each link's ranges start in `usage`.
        let mut first = Vec::with_capacity(self.pools.len());
        for (link, pools) in self.config.links.iter().zip(&self.pools) {
            first.push(usage.len());
            usage.reserve(pools.len());
            for kind in [IaKind::Na, IaKind::Pd] {
                for pool in pools.of(kind) {
                    usage.push(PoolUsage {
                        link: link.name.clone(),
                        kind,
                        prefix: pool.range.prefix(),
                        range: pool.range.range(),
                        free: pool.range.free_count(),
                        bound: 0,
                    });
                }
            }
        }
        // One pass over the table (a shard lock at a time) counts the bindings of each slice:
        // the number that stops growing when a peer's slice no longer gets Rebinds.
        for shard in 0..self.table.shard_count() {
            self.table.iter_shard(shard, |record| {
                let lease = &record.lease;
                if lease.state != LeaseState::Bound {
                    return;
                }
                let link = lease.link.index();
                let (Some(pools), Some(&start)) = (self.pools.get(link), first.get(link)) else {
                    return;
                };
                if let Some(pool) = pools
                    .position(lease)
                    .and_then(|index| usage.get_mut(start + index))
                {
                    pool.bound += 1;
                }
            });
        }
        usage
    }
}
