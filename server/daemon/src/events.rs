//! Where a worker's lease events go, and the durability barrier before its replies leave.
//!
//! Both datapaths (UDP and AF_XDP) hand the engine an [`Events`] sink for its lease events,
//! and no reply leaves before the events it announces are durable, so that with
//! `--durability always` no reply announces a lease the journal could still lose. In the
//! daemon the sink is the journal's own [`crate::journal::JournalSink`]: the engine emits into
//! it and the worker asks it, so the event path is engine → journal. The UDP datapath waits with
//! [`Events::settle`] once per batch; the AF_XDP datapath takes a [`Events::mark`] per batch,
//! goes on with the next batches and sends each batch's replies once
//! [`Events::barrier`] says its mark is durable, so that one sync covers many batches.

use std::os::fd::BorrowedFd;

use xdhcp6_engine::proto::MessageType;
use xdhcp6_engine::table::EventSink;

/// Where a worker's lease events go, and the durability barrier before its replies leave.
pub trait Events: EventSink + Send + 'static {
    /// Returns once every event emitted so far is as durable as replies require (at once
    /// unless the journal runs with `--durability always`); false when they cannot be made
    /// durable, and the replies that depend on them must not be sent.
    fn settle(&mut self) -> bool;

    /// A mark covering every event emitted so far, for [`Events::barrier`].
    fn mark(&self) -> u64 {
        0
    }

    /// Whether the events up to `mark` are as durable as replies require, without waiting.
    fn barrier(&self, mark: u64) -> Barrier {
        let _ = mark;
        Barrier::Ready
    }

    /// Waits until the events up to `mark` are durable; false when they cannot be.
    fn wait(&mut self, mark: u64) -> bool {
        let _ = mark;
        true
    }

    /// Sleeps until the events up to `mark` are durable or cannot be made so, until one of
    /// `beside` (the worker's socket, its hand-off inbox) is readable, or until `timeout_ms`
    /// passes, so that a worker holding replies goes on taking requests while the journal
    /// syncs. Returns false when the sink cannot sleep beside descriptors: the caller then
    /// blocks in [`Events::wait`].
    fn sleep_until(&mut self, mark: u64, beside: &[BorrowedFd<'_>], timeout_ms: i32) -> bool {
        let _ = (mark, beside, timeout_ms);
        false
    }

    /// Whether new events can be made durable at the moment. While they cannot (the journal's
    /// writes fail: a full disk, an I/O error), the datapaths hand the engine no message that
    /// would make or extend a binding ([`makes_bindings`]), so that no Advertise or Reply
    /// promises a lease a restart would forget, and clients turn to the other servers.
    fn persisting(&self) -> bool {
        true
    }
}

/// The received type of `payload` when the datapath must not hand it to the engine because
/// `events` cannot be made durable now and the message would make or extend a binding
/// ([`Events::persisting`], [`makes_bindings`]); the datapath counts it and drops it as
/// `journal_unavailable`.
pub fn refused_by_journal(events: &impl Events, payload: &[u8]) -> Option<MessageType> {
    if events.persisting() {
        return None;
    }
    let kind = xdhcp6_engine::received_type(payload);
    makes_bindings(kind).then_some(kind)
}

/// Whether a message of `kind` (as received, looked at through relays) can make or extend a
/// binding: Solicit (the Advertise offers one; with Rapid Commit it binds), Request, Renew
/// and Rebind. Release and Decline are still handed to the engine while the journal cannot
/// be written: they only end or quarantine a lease, their replies wait for the journal like
/// any other, and their records are written once it recovers; losing a Release in a crash
/// meanwhile keeps an address out of use until it expires, which hands no address out twice.
/// Confirm and Information-request change nothing (their replies, too, leave only once the
/// worker's earlier records are durable).
pub fn makes_bindings(kind: MessageType) -> bool {
    // RFC 9915 §18.2.5, in substance: at T2, reached only if the server the Renew was sent to
    // has not responded, the client starts a Rebind exchange with any available server. A
    // silent server thus hands its clients to its peers; a Reply it could not keep would not.
    matches!(
        kind,
        MessageType::Solicit | MessageType::Request | MessageType::Renew | MessageType::Rebind
    )
}

/// Whether the replies that depend on some events may leave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Barrier {
    /// The events are durable: send.
    Ready,
    /// Not yet: hold the replies.
    Pending,
    /// They never will be (the journal failed): drop the replies.
    Failed,
}

/// Nothing to wait for: events are dropped.
impl Events for xdhcp6_engine::table::Discard {
    fn settle(&mut self) -> bool {
        true
    }
}

/// Nothing to wait for: events are kept in memory (tests, tools).
impl Events for Vec<xdhcp6_engine::table::LeaseEvent> {
    fn settle(&mut self) -> bool {
        true
    }
}
