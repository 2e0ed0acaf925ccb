//! Where a worker's lease events go, and the durability barrier before its replies leave.
//!
//! Both datapaths (UDP and AF_XDP) hand every lease change to an [`Events`] sink and call
//! [`Events::settle`] once per batch before its replies leave, so that with
//! `--durability always` no reply announces a lease the journal could still lose.

use xdhcp6_engine::table::EventSink;

/// Where a worker's lease events go, and the durability barrier before its replies leave.
pub trait Events: EventSink + Send + 'static {
    /// Returns once every event emitted so far is as durable as replies require (at once
    /// unless the journal runs with `--durability always`); false when they cannot be made
    /// durable, and the replies that depend on them must not be sent.
    fn settle(&mut self) -> bool;
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
