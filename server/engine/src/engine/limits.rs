//! Limits on new bindings: token buckets and binding counts, global, per link, per relay and
//! per client link-layer address, and the per-client Decline budget.
//!
//! Everything here is fixed-size and lock-free on the request path: per-relay and per-MAC
//! state lives in arrays of [`SLOTS`] buckets chosen by a hash under a per-process random key,
//! so made-up relay identities or MAC addresses cost no memory; two identities that share a
//! slot share its budget, which only makes their limits stricter. Buckets refill from the
//! engine clock (`now`), never from the system clock.
//!
//! Binding counts follow the table's events ([`Limits::on_event`]): a `Bound` event adds one, a
//! bound lease that is released, declined or expires takes one away. The relay and MAC a
//! binding was made for are not part of the lease, so a small side index remembers them for the
//! leases counted against a relay or MAC cap (only while such a cap is set); it holds at most
//! one entry of about 24 bytes per bound lease, and so is bounded by `max-leases`.

use std::hash::{BuildHasher, Hash, RandomState};
use std::net::Ipv6Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use hashbrown::HashMap;
use parking_lot::Mutex;

use crate::config::{Config, LinkId, RateLimit};
use crate::table::{EventKind, Lease, LeaseEvent, LeaseState, LeaseTable};

/// Buckets per identity class (relays, MAC addresses, declining clients); a slot number fits
/// 16 bits with one value to spare for "none".
pub const SLOTS: usize = u16::MAX as usize;

/// No slot, in the side index.
const NO_SLOT: u16 = u16::MAX;

/// Shards of the side index from a lease to the relay and MAC it was counted against.
const ORIGIN_SHARDS: usize = 64;

/// Fixed-point scale of bucket credit: 1/1024 of a token.
const SCALE: u128 = 1024;

/// Which limit refused a new binding (or a Decline), for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// `[server] max-leases`: the server holds that many bound leases.
    MaxLeases,
    /// `[[link]] max-leases`.
    LinkMaxLeases,
    /// `[[link]] binding-rate`.
    LinkRate,
    /// `[server] relay-max-bindings`.
    RelayMaxBindings,
    /// `[server] relay-binding-rate`.
    RelayRate,
    /// `[server] mac-max-bindings`.
    MacMaxBindings,
    /// `[server] mac-binding-rate`.
    MacRate,
    /// `[server] decline-limit`.
    Declines,
}

impl Refusal {
    /// Every limit, for metrics.
    pub const ALL: [Refusal; 8] = [
        Refusal::MaxLeases,
        Refusal::LinkMaxLeases,
        Refusal::LinkRate,
        Refusal::RelayMaxBindings,
        Refusal::RelayRate,
        Refusal::MacMaxBindings,
        Refusal::MacRate,
        Refusal::Declines,
    ];

    /// A short name for metrics and logs: the config key.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::MaxLeases => "max_leases",
            Refusal::LinkMaxLeases => "link_max_leases",
            Refusal::LinkRate => "link_binding_rate",
            Refusal::RelayMaxBindings => "relay_max_bindings",
            Refusal::RelayRate => "relay_binding_rate",
            Refusal::MacMaxBindings => "mac_max_bindings",
            Refusal::MacRate => "mac_binding_rate",
            Refusal::Declines => "decline_limit",
        }
    }

    /// Whether the limit is a rate (the message is dropped) rather than a cap (the IA is
    /// answered NoAddrsAvail or NoPrefixAvail).
    pub fn is_rate(self) -> bool {
        matches!(
            self,
            Refusal::LinkRate | Refusal::RelayRate | Refusal::MacRate | Refusal::Declines
        )
    }
}

/// What the datapath knows of a message's sender beyond the payload, for the per-relay and
/// per-MAC limits (see [`Engine::handle_from`](super::Engine::handle_from)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The IPv6 source address of the datagram: a direct client, or the relay agent nearest
    /// the server.
    pub address: Option<Ipv6Addr>,
    /// The Ethernet source address of the frame, when the datapath sees frames.
    pub mac: Option<[u8; 6]>,
}

/// The budgets a request is charged to: slots of the relay and MAC arrays, and the client's
/// Decline slot.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Origin {
    pub(super) relay: Option<u32>,
    pub(super) mac: Option<u32>,
    /// The rate decision of this message, taken at its first new binding.
    pub(super) admitted: Option<Result<(), Refusal>>,
}

/// A shard of the side index: the address (or prefix) of a binding, which pools never share
/// between kinds, to the relay and MAC slots it counts in (or [`NO_SLOT`]): 20 bytes an entry.
type OriginShard = Mutex<HashMap<[u64; 2], [u16; 2]>>;

/// One token bucket: the second of the last refill (high 32 bits) and the credit spent, in
/// 1/[`SCALE`] tokens (low 32 bits). A bucket never used is full.
#[derive(Default)]
struct Bucket(AtomicU64);

impl Bucket {
    /// Takes one token at `now`; false when the bucket is empty.
    fn take(&self, rate: RateLimit, now: u32) -> bool {
        let mut current = self.0.load(Ordering::Relaxed);
        loop {
            let Some(next) = refilled(current, rate, now).and_then(|(last, spent)| {
                let spent = spent + SCALE;
                (spent <= u128::from(rate.burst) * SCALE).then(|| pack(last, spent))
            }) else {
                return false;
            };
            match self
                .0
                .compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }

    /// Whether a token is there at `now`, without taking it.
    fn has_token(&self, rate: RateLimit, now: u32) -> bool {
        refilled(self.0.load(Ordering::Relaxed), rate, now)
            .is_some_and(|(_, spent)| spent + SCALE <= u128::from(rate.burst) * SCALE)
    }
}

/// The bucket state `current` refilled up to `now`: (last refill second, credit spent).
fn refilled(current: u64, rate: RateLimit, now: u32) -> Option<(u32, u128)> {
    if !rate.is_limited() {
        return None;
    }
    let last = (current >> 32) as u32;
    let spent = u128::from(current as u32);
    let elapsed = u128::from(now.saturating_sub(last));
    let gained = elapsed * u128::from(rate.per_second) * SCALE;
    // Time only advances the refill mark when it gained something, so slow rates accumulate.
    if gained == 0 && spent != 0 {
        return Some((last, spent));
    }
    Some((now.max(last), spent.saturating_sub(gained)))
}

fn pack(last: u32, spent: u128) -> u64 {
    u64::from(last) << 32 | spent.min(u128::from(u32::MAX)) as u64
}

/// A Decline bucket: `limit` Declines per `period` seconds.
#[derive(Default)]
struct SlowBucket(AtomicU64);

impl SlowBucket {
    /// Takes one Decline at `now`; false when the client has used its `limit` for `period`.
    fn take(&self, limit: u32, period: u32, now: u32) -> bool {
        if limit == 0 {
            return true;
        }
        // The credit spent fits 32 bits: a budget of millions of Declines is no limit anyway.
        let capacity = u128::from(limit.min(4_000_000)) * SCALE;
        let period = u128::from(period.max(1));
        let mut current = self.0.load(Ordering::Relaxed);
        loop {
            let last = (current >> 32) as u32;
            let spent = u128::from(current as u32);
            let gained = u128::from(now.saturating_sub(last)) * capacity / period;
            let (last, spent) = if gained == 0 && spent != 0 {
                (last, spent)
            } else {
                (now.max(last), spent.saturating_sub(gained))
            };
            if spent + SCALE > capacity {
                return false;
            }
            let next = pack(last, spent + SCALE);
            match self
                .0
                .compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }
}

/// The limit state of one engine; shared by all workers.
///
/// A reloaded engine takes over the state of the engine it replaces ([`Limits::reloaded`]):
/// the server-wide, relay, MAC and Decline state whole, each link's count and bucket by link
/// id (a reload keeps every link name at its id), so a reload neither refills a bucket nor
/// forgets whom a binding was counted against.
pub(super) struct Limits {
    shared: Arc<SharedLimits>,
    /// By link id.
    links: Box<[Arc<LinkCounters>]>,
    /// Whether a relay or MAC cap is set, so that the side index is kept at all.
    tracks_origins: bool,
}

/// The limit state that does not depend on the links.
pub(super) struct SharedLimits {
    key: RandomState,
    bound: AtomicU64,
    relay_buckets: Box<[Bucket]>,
    relay_bound: Box<[AtomicU32]>,
    mac_buckets: Box<[Bucket]>,
    mac_bound: Box<[AtomicU32]>,
    declines: Box<[SlowBucket]>,
    origins: Box<[OriginShard]>,
    refused: [AtomicU64; Refusal::ALL.len()],
}

/// One link's bound leases and binding bucket.
#[derive(Default)]
struct LinkCounters {
    bound: AtomicU64,
    bucket: Bucket,
}

impl std::ops::Deref for Limits {
    type Target = SharedLimits;

    fn deref(&self) -> &SharedLimits {
        &self.shared
    }
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("bound", &self.bound.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn array<T: Default>(len: usize) -> Box<[T]> {
    (0..len).map(|_| T::default()).collect()
}

impl Limits {
    pub(super) fn new(config: &Config) -> Self {
        Self {
            shared: Arc::new(SharedLimits {
                key: RandomState::new(),
                bound: AtomicU64::new(0),
                relay_buckets: array(SLOTS),
                relay_bound: array(SLOTS),
                mac_buckets: array(SLOTS),
                mac_bound: array(SLOTS),
                declines: array(SLOTS),
                origins: array(ORIGIN_SHARDS),
                refused: Default::default(),
            }),
            links: (0..config.links.len()).map(|_| Arc::default()).collect(),
            tracks_origins: tracks_origins(config),
        }
    }

    /// The limits of an engine for `config` that replaces this one's: the same state, and
    /// fresh counters for links `config` adds (links keep their ids across a reload, and a
    /// new id has no leases). A relay or MAC cap turned on counts the bindings made from then
    /// on, as after a restart.
    pub(super) fn reloaded(&self, config: &Config) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            links: (0..config.links.len())
                .map(|index| self.links.get(index).cloned().unwrap_or_default())
                .collect(),
            tracks_origins: tracks_origins(config),
        }
    }

    /// The slot of an identity in one of the arrays.
    pub(super) fn slot(&self, identity: impl Hash) -> u32 {
        (self.key.hash_one(identity) as usize % SLOTS) as u32
    }

    /// Counts a refusal.
    pub(super) fn refuse(&self, refusal: Refusal) -> Refusal {
        if let Some(index) = Refusal::ALL.iter().position(|r| *r == refusal) {
            self.refused[index].fetch_add(1, Ordering::Relaxed);
        }
        refusal
    }

    /// Refusals so far, by limit (index in [`Refusal::ALL`]).
    pub(super) fn refused(&self) -> [u64; Refusal::ALL.len()] {
        std::array::from_fn(|index| self.refused[index].load(Ordering::Relaxed))
    }

    /// Bound leases counted, server-wide and on `link`.
    pub(super) fn bound(&self, link: Option<LinkId>) -> u64 {
        match link {
            None => self.bound.load(Ordering::Relaxed),
            Some(link) => self
                .links
                .get(link.index())
                .map_or(0, |link| link.bound.load(Ordering::Relaxed)),
        }
    }

    /// Whether one more binding fits every cap of `link` and `origin`.
    pub(super) fn check_caps(
        &self,
        config: &Config,
        link: LinkId,
        origin: &Origin,
    ) -> Result<(), Refusal> {
        let server = &config.server.limits;
        let link_limits = &config.link(link).limits;
        if server.max_leases != 0 && self.bound(None) >= server.max_leases {
            return Err(self.refuse(Refusal::MaxLeases));
        }
        if link_limits.max_leases != 0 && self.bound(Some(link)) >= link_limits.max_leases {
            return Err(self.refuse(Refusal::LinkMaxLeases));
        }
        let full = |counts: &[AtomicU32], slot: Option<u32>, max: u32| {
            max != 0
                && slot.is_some_and(|slot| counts[slot as usize].load(Ordering::Relaxed) >= max)
        };
        if full(&self.relay_bound, origin.relay, server.relay.max_bindings) {
            return Err(self.refuse(Refusal::RelayMaxBindings));
        }
        if full(&self.mac_bound, origin.mac, server.mac.max_bindings) {
            return Err(self.refuse(Refusal::MacMaxBindings));
        }
        Ok(())
    }

    /// Takes a token from the MAC's, the relay's and the link's buckets, or none when one of
    /// them is empty (the most specific one's refusal: a flooding relay or MAC spends no
    /// token of its link); with `peek`, only looks whether each has one.
    pub(super) fn check_rate(
        &self,
        config: &Config,
        link: LinkId,
        origin: &Origin,
        now: u32,
        peek: bool,
    ) -> Result<(), Refusal> {
        let server = &config.server.limits;
        let link_rate = config.link(link).limits.rate;
        let buckets = [
            (
                origin.mac.map(|slot| &self.mac_buckets[slot as usize]),
                server.mac.rate,
                Refusal::MacRate,
            ),
            (
                origin.relay.map(|slot| &self.relay_buckets[slot as usize]),
                server.relay.rate,
                Refusal::RelayRate,
            ),
            (
                self.links.get(link.index()).map(|link| &link.bucket),
                link_rate,
                Refusal::LinkRate,
            ),
        ];
        let limited = buckets.iter().filter_map(|(bucket, rate, refusal)| {
            Some((bucket.filter(|_| rate.is_limited())?, *rate, *refusal))
        });
        for (bucket, rate, refusal) in limited.clone() {
            if !bucket.has_token(rate, now) {
                return Err(self.refuse(refusal));
            }
        }
        if !peek {
            // Another worker may have emptied a bucket since: then that one refuses (the
            // tokens taken before it are spent, which only errs on the strict side).
            for (bucket, rate, refusal) in limited {
                if !bucket.take(rate, now) {
                    return Err(self.refuse(refusal));
                }
            }
        }
        Ok(())
    }

    /// Takes one Decline from the client's budget.
    pub(super) fn take_decline(&self, config: &Config, duid: &[u8], now: u32) -> bool {
        let limit = config.server.limits.decline_limit;
        let slot = self.slot(("decline", duid)) as usize;
        let ok = self.declines[slot].take(limit, config.server.decline_probation, now);
        if !ok {
            self.refuse(Refusal::Declines);
        }
        ok
    }

    /// Remembers that the new binding `lease` was made for `origin`, for the relay and MAC
    /// caps that are set.
    pub(super) fn record_origin(&self, config: &Config, lease: &Lease, origin: &Origin) {
        let server = &config.server.limits;
        let counted = Origin {
            relay: origin.relay.filter(|_| server.relay.max_bindings != 0),
            mac: origin.mac.filter(|_| server.mac.max_bindings != 0),
            admitted: None,
        };
        if counted.relay.is_none() && counted.mac.is_none() {
            return;
        }
        let key = origin_key(lease);
        let packed = [
            counted.relay.map_or(NO_SLOT, |slot| slot as u16),
            counted.mac.map_or(NO_SLOT, |slot| slot as u16),
        ];
        let previous = self.origins[self.origin_shard(&key)]
            .lock()
            .insert(key, packed);
        if let Some(previous) = previous {
            self.uncount(previous);
        }
        if let Some(slot) = counted.relay {
            self.relay_bound[slot as usize].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(slot) = counted.mac {
            self.mac_bound[slot as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn origin_shard(&self, key: &[u64; 2]) -> usize {
        (self.key.hash_one(key) as usize) % ORIGIN_SHARDS
    }

    fn uncount(&self, [relay, mac]: [u16; 2]) {
        let decrement = |counts: &[AtomicU32], slot: u16| {
            if let Some(count) = counts.get(usize::from(slot)).filter(|_| slot != NO_SLOT) {
                let _ = count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(n.saturating_sub(1))
                });
            }
        };
        decrement(&self.relay_bound, relay);
        decrement(&self.mac_bound, mac);
    }

    /// Follows the table: a new binding counts, a binding that ends no longer does.
    pub(super) fn on_event(&self, event: &LeaseEvent) {
        let lease = &event.record.lease;
        let ended = match event.kind {
            EventKind::Bound => {
                self.bound.fetch_add(1, Ordering::Relaxed);
                if let Some(link) = self.links.get(lease.link.index()) {
                    link.bound.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            EventKind::Released | EventKind::Expired => lease.state == LeaseState::Bound,
            EventKind::Declined => true,
            EventKind::Offered | EventKind::Renewed | EventKind::ProbationEnded => false,
        };
        if !ended {
            return;
        }
        self.count_ended(lease);
    }

    /// Counts the bound leases of `table` afresh (a new engine over a table that outlived a
    /// reload, a journal replay): they count for the server and their link, not for any relay
    /// or MAC, which the table does not know.
    pub(super) fn recount(&self, table: &LeaseTable) {
        let mut links = vec![0u64; self.links.len()];
        let mut bound = 0;
        for shard in 0..table.shard_count() {
            table.iter_shard(shard, |record| {
                if record.lease.state == LeaseState::Bound {
                    bound += 1;
                    if let Some(count) = links.get_mut(record.lease.link.index()) {
                        *count += 1;
                    }
                }
            });
        }
        self.bound.store(bound, Ordering::Relaxed);
        for (link, value) in self.links.iter().zip(links) {
            link.bound.store(value, Ordering::Relaxed);
        }
    }

    fn count_ended(&self, lease: &Lease) {
        let decrement = |count: &AtomicU64| {
            let _ = count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
        };
        decrement(&self.bound);
        if let Some(link) = self.links.get(lease.link.index()) {
            decrement(&link.bound);
        }
        if !self.tracks_origins {
            return;
        }
        let key = origin_key(lease);
        let origin = self.origins[self.origin_shard(&key)].lock().remove(&key);
        if let Some(origin) = origin {
            self.uncount(origin);
        }
    }
}

/// Whether `config` sets a relay or MAC cap, for which the side index is kept.
fn tracks_origins(config: &Config) -> bool {
    config.server.limits.relay.max_bindings != 0 || config.server.limits.mac.max_bindings != 0
}

/// The side index key of a lease: its address, as two words (no 16-byte alignment).
fn origin_key(lease: &Lease) -> [u64; 2] {
    [(lease.addr >> 64) as u64, lease.addr as u64]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_gives_its_burst_then_its_rate() {
        let rate = RateLimit {
            per_second: 10,
            burst: 20,
        };
        let bucket = Bucket::default();
        let now = 1_000_000;
        assert_eq!((0..100).filter(|_| bucket.take(rate, now)).count(), 20);
        assert!(!bucket.has_token(rate, now));
        assert_eq!((0..100).filter(|_| bucket.take(rate, now + 1)).count(), 10);
        // Long idle: full again, never more than the burst.
        assert_eq!(
            (0..100).filter(|_| bucket.take(rate, now + 1000)).count(),
            20
        );
        // A clock that steps back takes nothing away and gives nothing.
        assert_eq!((0..100).filter(|_| bucket.take(rate, now)).count(), 0);
        // Unlimited.
        let off = RateLimit {
            per_second: 0,
            burst: 0,
        };
        assert!(refilled(0, off, now).is_none());
    }

    #[test]
    fn slow_bucket_refills_over_its_period() {
        let bucket = SlowBucket::default();
        let now = 1_000_000;
        assert_eq!((0..10).filter(|_| bucket.take(4, 86_400, now)).count(), 4);
        assert!(!bucket.take(4, 86_400, now + 21_000));
        // A quarter of the period gives one back.
        assert!(bucket.take(4, 86_400, now + 21_600));
        assert!(!bucket.take(4, 86_400, now + 21_600));
    }
}
