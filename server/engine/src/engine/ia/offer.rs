//! What an Advertise offers: the lease a Request would get now, computed without changing the
//! table or the allocators.
//!
//! An offer keeps no state. Random DUIDs in a flood of Solicits each cost the work of one
//! answer and nothing after it; the client's Request claims the unit, which the hash gives
//! again: the same unit unless another client claimed it in between, when the Request gets
//! the next free one.

use super::{Exchange, lifetimes_of};
use crate::engine::request::Ia;
use crate::table::{EventSink, IaKey, Lease, LeaseState};

impl<'r, S: EventSink> Exchange<'_, 'r, '_, S> {
    /// The lease an Advertise shows for this IA: the client's current lease, its
    /// reservation, its hinted prefix or the hashed unit, whichever a Request would claim.
    ///
    /// RFC 9915 §18.3.2, in substance:
    /// The server MAY assign different addresses or delegated prefixes to an IA than
    /// those that were advertised.
    /// (So an Advertise need not reserve what it shows.)
    pub(super) fn propose(&mut self, ia: &Ia<'r>, key: &IaKey<'_>, hold: u32) -> Option<Lease> {
        let reservation = self.reservation(key.kind());
        let served = self.served(reservation);
        let (table, now) = (&self.engine.table, self.now);
        if let Some(lease) = table.current(key, |lease| served.lease(lease)) {
            return Some(lease);
        }
        let offer = |bits: u128, prefix_len: u8| Lease {
            addr: bits,
            prefix_len,
            kind: key.kind(),
            iaid: key.iaid(),
            link: key.link(),
            state: LeaseState::Offered,
            lifetimes: lifetimes_of(self.link),
            expires: now.saturating_add(hold),
        };
        if let Some(reserved) = reservation {
            return table
                .is_free_for(key, reserved.bits(), now)
                .then(|| offer(reserved.bits(), reserved.len()));
        }
        let hint = ia.hint();
        // The prefix the client hinted, as `claim_hinted` would claim it.
        if let (Some(bits), Some(len)) = (hint.prefix, hint.len) {
            let hinted = self.pools.of(key.kind()).iter().any(|pool| {
                pool.range.unit_len() == len
                    && pool.range.contains(bits)
                    && !pool.range.is_reserved(bits)
            });
            if hinted && table.is_free_for(key, bits, now) {
                return Some(offer(bits, len));
            }
        }
        let alloc_key = self.alloc_key(key);
        self.pools.by_hint(key.kind(), hint.len).find_map(|pool| {
            let len = pool.range.unit_len();
            pool.range
                .propose(&alloc_key, |bits| table.is_free_for(key, bits, now))
                .map(|bits| offer(bits, len))
        })
    }
}
