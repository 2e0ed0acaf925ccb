//! Leases held over: the live leases of the journal whose link the configuration does not
//! have ([`Unplaced`]). They are not in the table, so nothing answers for them, but every
//! compaction writes them again, and a reload that adds their link loads them into the table
//! ([`Held::take_placed`]), so that the clients' Renews and Rebinds keep their addresses and
//! Leasequery finds them.
//!
//! The set is bounded ([`super::JournalOptions::held_limit`], the server's `expected-leases`
//! in the daemon): more leases than the table is sized for could not be loaded into it
//! anyway. Past the limit the leases that end first are dropped at open (logged); the journal
//! file loses them at its next compaction.

use std::sync::Arc;

use xdhcp6_engine::table::LeaseRecord;

use super::format::VERSION;
use super::{LinkNames, Unplaced};

/// The held-over leases, replaced as a whole (compactions read a copy that stays valid).
#[derive(Debug, Default)]
pub(super) struct Held(Arc<[Unplaced]>);

impl Held {
    /// The held-over leases of a replay, at most `limit` of them: the ones that end last.
    /// Returns them and how many were dropped.
    pub(super) fn bounded(mut unplaced: Vec<Unplaced>, limit: usize) -> (Self, usize) {
        let dropped = unplaced.len().saturating_sub(limit);
        if dropped > 0 {
            unplaced.sort_unstable_by_key(|lease| std::cmp::Reverse(lease.record.lease.expires));
            unplaced.truncate(limit);
        }
        (Self(unplaced.into()), dropped)
    }

    /// The leases held over now.
    pub(super) fn leases(&self) -> Arc<[Unplaced]> {
        Arc::clone(&self.0)
    }

    /// How many leases are held over.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// Keeps only the leases that have not ended by `at`; returns how many were dropped.
    pub(super) fn drop_expired(&mut self, at: u32) -> usize {
        if !self.0.iter().any(|lease| lease.record.lease.is_expired(at)) {
            return 0;
        }
        let kept: Vec<Unplaced> = self
            .0
            .iter()
            .filter(|lease| !lease.record.lease.is_expired(at))
            .cloned()
            .collect();
        let dropped = self.0.len() - kept.len();
        self.0 = kept.into();
        dropped
    }

    /// Takes out the leases whose link `links` has, with their link id set, for the table;
    /// the others stay held over.
    pub(super) fn take_placed(&mut self, links: &LinkNames) -> Vec<LeaseRecord> {
        let mut placed = Vec::new();
        let mut kept = Vec::new();
        for lease in self.0.iter() {
            // A position kept in a current-version file names no link any more (see
            // `replay`): only names are placed.
            match links.place(VERSION, &lease.link) {
                Some(id) => {
                    let mut record = lease.record.clone();
                    record.lease.link = id;
                    placed.push(record);
                }
                None => kept.push(lease.clone()),
            }
        }
        if !placed.is_empty() {
            self.0 = kept.into();
        }
        placed
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use xdhcp6_engine::config::LinkId;
    use xdhcp6_engine::table::{DuidBuf, IaKind, Lease, LeaseState, Lifetimes};

    use super::*;
    use crate::journal::Link;

    fn lease(link: &str, last: u8, expires: u32) -> Unplaced {
        Unplaced {
            link: Link::Name(Cow::Owned(link.to_owned())),
            record: LeaseRecord::new(
                DuidBuf::new(&[0, 3, 0, 1, 2, 0, 0, 0, 0, last]),
                Lease {
                    addr: 0x2001_0db8_0000_0000_0000_0000_0000_0000 | u128::from(last),
                    prefix_len: 128,
                    kind: IaKind::Na,
                    iaid: 1,
                    link: LinkId(0),
                    state: LeaseState::Bound,
                    lifetimes: Lifetimes {
                        preferred: 100,
                        valid: 200,
                    },
                    expires,
                },
            ),
        }
    }

    #[test]
    fn the_bound_keeps_the_leases_that_end_last() {
        let leases = vec![lease("b", 1, 300), lease("b", 2, 900), lease("c", 3, 600)];
        let (held, dropped) = Held::bounded(leases, 2);
        assert_eq!(dropped, 1);
        let mut ends: Vec<u32> = held
            .leases()
            .iter()
            .map(|lease| lease.record.lease.expires)
            .collect();
        ends.sort_unstable();
        assert_eq!(ends, [600, 900]);
    }

    #[test]
    fn a_link_that_appears_takes_its_leases_out_with_its_id() {
        let (mut held, _) = Held::bounded(vec![lease("b", 1, 300), lease("c", 2, 300)], usize::MAX);
        assert!(held.take_placed(&LinkNames::new(["a"])).is_empty());
        assert_eq!(held.len(), 2);
        let placed = held.take_placed(&LinkNames::new(["a", "b"]));
        assert_eq!(placed.len(), 1);
        assert_eq!(placed[0].lease.link, LinkId(1));
        assert_eq!(placed[0].lease.addr & 0xff, 1);
        assert_eq!(held.len(), 1);
        assert!(matches!(&held.leases()[0].link, Link::Name(name) if name == "c"));
        // Taken once: a second reload finds nothing more for "b".
        assert!(held.take_placed(&LinkNames::new(["a", "b"])).is_empty());
    }

    #[test]
    fn ended_leases_are_dropped() {
        let (mut held, _) = Held::bounded(vec![lease("b", 1, 300), lease("b", 2, 900)], usize::MAX);
        assert_eq!(held.drop_expired(500), 1);
        assert_eq!(held.len(), 1);
        assert_eq!(held.drop_expired(500), 0);
    }
}
