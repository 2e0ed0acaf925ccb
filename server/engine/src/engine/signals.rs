//! Counters of what a peer's failure looks like from this server in an RFC 6853 deployment,
//! read by the metrics endpoint.
//!
//! RFC 6853 §4: servers never talk to each other, so one server learns that a peer is gone
//! only from that peer's clients. When their T2 passes they Rebind to every server, listing
//! addresses and prefixes from the peer's slice. Counting those (per link and kind) makes the
//! failure visible here, where the peer's own metrics have stopped.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::LinkId;
use crate::table::IaKind;

/// Units of another server's slice listed in Rebind messages, per link and kind.
#[derive(Debug)]
pub(super) struct ForeignRebinds {
    /// Indexed by link, then [`kind_index`].
    counts: Box<[[AtomicU64; 2]]>,
}

impl ForeignRebinds {
    /// Zeroed counters for `links` links.
    pub(super) fn new(links: usize) -> Self {
        Self {
            counts: (0..links).map(|_| Default::default()).collect(),
        }
    }

    /// Counters for `links` links that start from this engine's counts, for the engine that
    /// replaces it on a reload: a link keeps its id across reloads, so its counter goes on
    /// and Prometheus sees no reset.
    pub(super) fn reloaded(&self, links: usize) -> Self {
        let next = Self::new(links);
        for (index, counts) in next.counts.iter().enumerate() {
            for kind in [IaKind::Na, IaKind::Pd] {
                counts[kind_index(kind)].store(self.get(index, kind), Ordering::Relaxed);
            }
        }
        next
    }

    /// Counts one unit of `kind` on `link`.
    pub(super) fn count(&self, link: LinkId, kind: IaKind) {
        if let Some(counts) = self.counts.get(link.index()) {
            counts[kind_index(kind)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The count of `kind` on the link at `index`.
    pub(super) fn get(&self, index: usize, kind: IaKind) -> u64 {
        self.counts
            .get(index)
            .map_or(0, |counts| counts[kind_index(kind)].load(Ordering::Relaxed))
    }
}

fn kind_index(kind: IaKind) -> usize {
    match kind {
        IaKind::Na => 0,
        IaKind::Pd => 1,
    }
}
