//! What every scenario is to the driver ([`crate::runner::drive`]): a sans-IO state machine
//! fed with the time and with the datagrams that arrive, writing what it sends into an
//! [`Outbox`].
//!
//! Two implement it: [`crate::generator::Generator`] runs flows (`sarr`, `rapid`, `renew`,
//! `rebind`, `release`, `info`, `pd`, `na+pd`, a `mix` of them, and `echo` against a
//! reflector) paced at a rate, and [`crate::hold::Hold`] runs `hold`, a population that keeps
//! its leases over time. Both write and read messages with [`crate::message`], so each runs
//! over every [`crate::transport::Transport`] and behind emulated relays.

use std::time::Duration;

use crate::generator::Outbox;

/// A scenario as the driver sees it. Times are nanoseconds since any fixed origin.
pub trait Scenario {
    /// Sends what is due at `now_ns`: new flows or clients, retransmissions, timers.
    fn poll(&mut self, now_ns: u64, out: &mut Outbox);

    /// Takes a datagram that arrived at `now_ns` and queues what the client sends next.
    fn handle_datagram(&mut self, now_ns: u64, datagram: &[u8], out: &mut Outbox);

    /// How long the driver may wait for datagrams at `now_ns` before it polls again.
    fn wait(&self, now_ns: u64) -> Duration;

    /// Whether the run is over at `now_ns`.
    fn is_finished(&self, now_ns: u64) -> bool;

    /// Marks the timeline at `now_ns` (a server was stopped); only `hold` keeps one.
    fn mark(&mut self, now_ns: u64) {
        let _ = now_ns;
    }
}
