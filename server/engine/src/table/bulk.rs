//! Whole-table work: the expiry sweep, bulk restore from the journal, and walking a shard.

use super::LeaseTable;
use super::lease::{EventKind, EventSink, LeaseRecord, LeaseState, RestoreReport, SweepReport};
use super::relay::RelayMatch;
use super::shard::{Record, STATE_BOUND, STATE_DECLINED, STATE_OFFERED, addr_hash};

/// Leases expired under one lock of an address shard before it is let go for a moment.
const LOCK_BATCH: usize = 1024;

impl LeaseTable {
    /// Removes leases that ran out by `now`, at most `budget` of them per call, taken from
    /// each address shard's expiry index: the work is in proportion to what expires, never to
    /// the size of the table. A call that stops at the budget goes on where it stopped.
    pub fn handle_timeout(
        &self,
        now: u32,
        budget: usize,
        sink: &mut impl EventSink,
    ) -> SweepReport {
        let mut cursor = self.cursor.lock();
        let mut report = SweepReport::default();
        for _ in 0..self.addrs.len() {
            let addr_shard = cursor.shard % self.addrs.len();
            let mut guard = self.addrs[addr_shard].lock();
            let mut held = 0;
            loop {
                if report.removed >= budget {
                    return report;
                }
                if held >= LOCK_BATCH {
                    // Let the workers in between batches of a large expiry.
                    drop(guard);
                    guard = self.addrs[addr_shard].lock();
                    held = 0;
                }
                let shard = &mut *guard;
                let Some((at, slot)) = shard.pop_due(now) else {
                    break;
                };
                report.examined += 1;
                held += 1;
                let Some(record) = shard.records.get(slot as usize) else {
                    continue;
                };
                if record.is_free() || record.expires != at {
                    // Stale: released, renewed, or its slot reused since.
                    continue;
                }
                let ended = if record.raw_state() == STATE_DECLINED {
                    EventKind::ProbationEnded
                } else {
                    EventKind::Expired
                };
                sink.emit(record.event(ended, now, &self.relays, sink.wants_records(), None));
                let loc = self.loc(addr_shard, slot);
                if record.is_held() {
                    let old = self.client_hash_of(record);
                    // Never block on a client shard while holding an address shard.
                    if let Some(mut clients) = self.clients[self.client_shard_of(old)].try_lock() {
                        clients.remove(old, loc);
                    }
                }
                let hash = addr_hash(record.addr(), record.kind(), &self.index_key);
                shard.remove(slot, hash, &self.relays);
                report.removed += 1;
            }
            drop(guard);
            cursor.shard = (addr_shard + 1) % self.addrs.len();
        }
        report
    }

    /// Bulk-loads records (journal replay, start-up) without emitting events.
    pub fn restore(&self, records: impl IntoIterator<Item = LeaseRecord>) -> RestoreReport {
        let mut report = RestoreReport::default();
        for item in records {
            let lease = &item.lease;
            let key = self.ia_key(item.duid.as_bytes(), lease.iaid, lease.kind, lease.link);
            let mut clients = self.clients[self.client_shard_of(key.hash)].lock();
            let hash = addr_hash(lease.addr, lease.kind, &self.index_key);
            let addr_shard = self.addr_shard_of(hash);
            let mut guard = self.addrs[addr_shard].lock();
            let shard = &mut *guard;
            let state = match lease.state {
                LeaseState::Offered => STATE_OFFERED,
                LeaseState::Bound => STATE_BOUND,
                LeaseState::Declined => STATE_DECLINED,
            };
            let slot = match shard.find(hash, lease.addr, lease.kind) {
                Some(slot) => {
                    let loc = self.loc(addr_shard, slot);
                    match shard.records.get_mut(slot as usize) {
                        Some(record) if record.matches(&key) => {
                            record.set(state, lease.lifetimes, lease.expires);
                            record.prefix_len = lease.prefix_len;
                            self.relays.replace(&mut record.relay, item.relay.as_ref());
                            record.set_reconfigure(item.reconfigure);
                            if state == STATE_DECLINED {
                                clients.remove(key.hash, loc);
                            }
                            shard.schedule(slot, lease.expires);
                            Some(slot)
                        }
                        _ => None,
                    }
                }
                None => {
                    let mut record = Record::new(&key, lease.addr, lease.prefix_len);
                    record.set(state, lease.lifetimes, lease.expires);
                    record.relay = self.relays.store(item.relay.as_ref());
                    record.set_reconfigure(item.reconfigure);
                    let tail = record.relay;
                    let slot = shard.insert(record, hash, self.max_slot);
                    if slot.is_none() {
                        self.relays.release(&tail);
                    }
                    slot
                }
            };
            match slot {
                Some(slot) => {
                    if state != STATE_DECLINED {
                        clients.insert(key.hash, self.loc(addr_shard, slot));
                    }
                    report.loaded += 1;
                }
                None => report.conflicts += 1,
            }
        }
        report
    }

    /// Passes every lease of address shard `shard` (any state) to `each`, for dumps and
    /// leasequery; holds that shard's lock meanwhile.
    pub fn iter_shard(&self, shard: usize, mut each: impl FnMut(&LeaseRecord)) {
        let Some(shard) = self.addrs.get(shard) else {
            return;
        };
        let shard = shard.lock();
        for record in shard.records.iter().filter(|record| !record.is_free()) {
            each(&record.to_record(&self.relays));
        }
    }

    /// Passes every lease of address shard `shard` (any state) whose relay data `selected`
    /// selects to `each`, for Bulk Leasequery by Relay-ID, Remote-ID or link-address: a walk
    /// of the shard's records comparing one handle each, holding that shard's lock meanwhile;
    /// only the selected leases' relay data is read.
    pub fn iter_shard_relayed(
        &self,
        shard: usize,
        selected: &RelayMatch,
        mut each: impl FnMut(&LeaseRecord),
    ) {
        if selected.is_empty() {
            return;
        }
        let Some(shard) = self.addrs.get(shard) else {
            return;
        };
        let shard = shard.lock();
        let query = selected.query();
        for record in shard.records.iter() {
            if !record.is_free() && selected.contains(&record.relay) {
                let record = record.to_record(&self.relays);
                if record
                    .relay
                    .as_ref()
                    .is_some_and(|data| query.matches(data))
                {
                    each(&record);
                }
            }
        }
    }
}
