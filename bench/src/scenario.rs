//! What every scenario is to the driver ([`crate::runner::drive`]): a sans-IO state machine
//! fed with the time and with the datagrams that arrive, writing what it sends into an
//! [`Outbox`], which every [`crate::transport::Transport`] takes as it is.
//!
//! Two implement it: [`crate::generator::Generator`] runs flows (`sarr`, `rapid`, `renew`,
//! `rebind`, `release`, `info`, `pd`, `na+pd`, a `mix` of them, and `echo` against a
//! reflector) paced at a rate, and [`crate::hold::Hold`] runs `hold`, a population that keeps
//! its leases over time. Both write and read messages with [`crate::message`], so each runs
//! over every [`crate::transport::Transport`] and behind emulated relays.

use std::time::Duration;

use xdhcp6_proto::WriteError;

/// Room for one outgoing datagram.
pub const MAX_DATAGRAM: usize = 1500;

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

/// Who sends a datagram: an emulated client, directly or through an emulated relay. Transports
/// that build their own frames (AF_XDP) take the addresses from it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sender {
    /// The client's index in the population.
    pub client: u32,
    /// The index of the relay in front of it, if any.
    pub relay: Option<u32>,
}

/// Datagrams to send, packed into one buffer.
#[derive(Clone, Debug, Default)]
pub struct Outbox {
    /// Never shrinks: the bytes past the last datagram are scratch room, zeroed once.
    data: Vec<u8>,
    ends: Vec<usize>,
    senders: Vec<Sender>,
}

impl Outbox {
    /// Appends the datagram `write` produces (it returns the length it wrote) from `sender`.
    pub fn push(
        &mut self,
        sender: Sender,
        write: impl FnOnce(&mut [u8]) -> Result<usize, WriteError>,
    ) -> Result<(), WriteError> {
        let start = self.ends.last().copied().unwrap_or(0);
        if self.data.len() < start + MAX_DATAGRAM {
            self.data.resize(start + MAX_DATAGRAM, 0);
        }
        match write(&mut self.data[start..start + MAX_DATAGRAM]) {
            Ok(len) => {
                self.ends.push(start + len.min(MAX_DATAGRAM));
                self.senders.push(sender);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Datagrams queued.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The queued datagrams in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let d = &self.data[start..end];
            start = end;
            d
        })
    }

    /// The queued datagrams in order, each with its sender.
    pub fn iter_with_senders(&self) -> impl Iterator<Item = (Sender, &[u8])> {
        self.senders.iter().copied().zip(self.iter())
    }

    /// Forgets every datagram, keeping the memory.
    pub fn clear(&mut self) {
        self.ends.clear();
        self.senders.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_packs_datagrams() {
        let mut out = Outbox::default();
        let first = Sender {
            client: 7,
            relay: None,
        };
        let second = Sender {
            client: 9,
            relay: Some(2),
        };
        out.push(first, |b| {
            b[..3].copy_from_slice(b"abc");
            Ok(3)
        })
        .unwrap();
        assert!(out.push(first, |_| Err(WriteError::BufferFull)).is_err());
        out.push(second, |b| {
            b[0] = b'z';
            Ok(1)
        })
        .unwrap();
        assert_eq!(out.iter().collect::<Vec<_>>(), [&b"abc"[..], b"z"]);
        assert_eq!(
            out.iter_with_senders().collect::<Vec<_>>(),
            [(first, &b"abc"[..]), (second, &b"z"[..])]
        );
        assert_eq!(out.len(), 2);
        out.clear();
        assert!(out.is_empty());
    }
}
