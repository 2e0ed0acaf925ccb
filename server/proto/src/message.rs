//! Message views: client/server layout, relay layout, and the relay chain walk.

use core::net::Ipv6Addr;

use crate::MAX_RELAY_HOPS;
use crate::codes::{MessageType, OptionCode};
use crate::error::{ParseError, WriteError};
use crate::options::{Options, write_options};
use crate::writer::MessageWriter;

/// A client/server message: msg-type, transaction-id, options (RFC 9915 §8).
///
/// Leasequery messages (RFC 5007 §4.2, RFC 5460 §5.2) use the same layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Message<'a> {
    bytes: &'a [u8],
    hdr: &'a [u8; 4],
    opts: &'a [u8],
}

impl<'a> Message<'a> {
    /// Checks the 4-byte header and that the type is not a relay type.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, ParseError> {
        let (hdr, opts) = buf.split_first_chunk::<4>().ok_or(ParseError::Truncated)?;
        if MessageType::from(hdr[0]).is_relay() {
            return Err(ParseError::MessageType(hdr[0]));
        }
        Ok(Message {
            bytes: buf,
            hdr,
            opts,
        })
    }

    /// The whole message as received.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The message type.
    #[inline]
    pub fn msg_type(&self) -> MessageType {
        MessageType::from(self.hdr[0])
    }

    /// The 24-bit transaction id.
    #[doc(alias = "xid")]
    #[inline]
    pub fn transaction_id(&self) -> u32 {
        u32::from_be_bytes([0, self.hdr[1], self.hdr[2], self.hdr[3]])
    }

    /// The options.
    #[inline]
    pub fn options(&self) -> Options<'a> {
        Options::new(self.opts)
    }
}

/// A Relay-forward or Relay-reply: msg-type, hop-count, link-address, peer-address, options (RFC 9915 §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RelayMessage<'a> {
    bytes: &'a [u8],
    hdr: &'a [u8; 34],
    opts: &'a [u8],
}

impl<'a> RelayMessage<'a> {
    /// Checks the 34-byte header and that the type is Relay-forward or Relay-reply.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, ParseError> {
        let (hdr, opts) = buf.split_first_chunk::<34>().ok_or(ParseError::Truncated)?;
        if !MessageType::from(hdr[0]).is_relay() {
            return Err(ParseError::MessageType(hdr[0]));
        }
        Ok(RelayMessage {
            bytes: buf,
            hdr,
            opts,
        })
    }

    /// The whole message as received (what OPTION_LQ_RELAY_DATA carries, RFC 5007 §4.1.2.4).
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The message type (Relay-forward or Relay-reply).
    #[inline]
    pub fn msg_type(&self) -> MessageType {
        MessageType::from(self.hdr[0])
    }

    /// Number of relays that have relayed this message.
    #[inline]
    pub fn hop_count(&self) -> u8 {
        self.hdr[1]
    }

    /// Address the server uses to identify the client's link (may be `::`).
    #[inline]
    pub fn link_address(&self) -> Ipv6Addr {
        let (_, rest) = self.hdr.split_at(2);
        let (a, _) = rest.split_first_chunk::<16>().unwrap_or((&[0; 16], &[]));
        Ipv6Addr::from(*a)
    }

    /// Address of the client or relay the message came from.
    #[inline]
    pub fn peer_address(&self) -> Ipv6Addr {
        let (_, a) = self.hdr.split_last_chunk::<16>().unwrap_or((&[], &[0; 16]));
        Ipv6Addr::from(*a)
    }

    /// The options.
    #[inline]
    pub fn options(&self) -> Options<'a> {
        Options::new(self.opts)
    }

    /// The body of OPTION_RELAY_MSG: the relayed message (RFC 9915 §9: a relay message carries one).
    #[inline]
    pub fn relayed_message(&self) -> Result<&'a [u8], ParseError> {
        self.options()
            .find_raw(OptionCode::RelayMsg)?
            .ok_or(ParseError::MissingRelayMessage)
    }

    /// Walks the chain of relay messages down to the client message.
    #[inline]
    pub fn chain(&self) -> Result<RelayChain<'a>, ParseError> {
        RelayChain::new(*self)
    }
}

/// Any DHCPv6 message, by layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Packet<'a> {
    /// Client/server layout (every type but 12 and 13).
    Client(Message<'a>),
    /// Relay layout (Relay-forward, Relay-reply).
    Relay(RelayMessage<'a>),
}

impl<'a> Packet<'a> {
    /// Checks the header of a UDP payload; the single door for untrusted message bytes.
    #[inline]
    pub fn parse(buf: &'a [u8]) -> Result<Self, ParseError> {
        let first = buf.first().ok_or(ParseError::Truncated)?;
        if MessageType::from(*first).is_relay() {
            RelayMessage::new_checked(buf).map(Packet::Relay)
        } else {
            Message::new_checked(buf).map(Packet::Client)
        }
    }

    /// The message type.
    #[inline]
    pub fn msg_type(&self) -> MessageType {
        match self {
            Packet::Client(m) => m.msg_type(),
            Packet::Relay(r) => r.msg_type(),
        }
    }

    /// The whole message as received.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        match self {
            Packet::Client(m) => m.as_bytes(),
            Packet::Relay(r) => r.as_bytes(),
        }
    }

    /// The top-level options.
    #[inline]
    pub fn options(&self) -> Options<'a> {
        match self {
            Packet::Client(m) => m.options(),
            Packet::Relay(r) => r.options(),
        }
    }

    /// Writes header and options at the writer's position (inside an OPTION_RELAY_MSG).
    ///
    /// Options are re-encoded from their typed views; what does not type is copied verbatim,
    /// so the output equals the parsed bytes.
    pub fn write(&self, w: &mut MessageWriter<'_>) -> Result<(), WriteError> {
        match self {
            Packet::Client(m) => {
                w.client_header(m.msg_type(), m.transaction_id())?;
                write_options(w, m.opts)
            }
            Packet::Relay(r) => {
                w.relay_header(
                    r.msg_type(),
                    r.hop_count(),
                    r.link_address(),
                    r.peer_address(),
                )?;
                write_options(w, r.opts)
            }
        }
    }

    /// Re-encodes the whole message into `buf` and returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, WriteError> {
        let mut w = MessageWriter::new(buf);
        self.write(&mut w)?;
        w.finish()
    }
}

/// A validated chain of relay messages and the client message at its end (RFC 9915 §9, §19).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RelayChain<'a> {
    outermost: RelayMessage<'a>,
    innermost: RelayMessage<'a>,
    message: Message<'a>,
    hops: usize,
}

impl<'a> RelayChain<'a> {
    /// Walks OPTION_RELAY_MSG iteratively from `outermost`, at most [`MAX_RELAY_HOPS`] relays.
    pub fn new(outermost: RelayMessage<'a>) -> Result<Self, ParseError> {
        let mut current = outermost;
        let mut hops = 1usize;
        loop {
            match Packet::parse(current.relayed_message()?)? {
                Packet::Client(message) => {
                    return Ok(RelayChain {
                        outermost,
                        innermost: current,
                        message,
                        hops,
                    });
                }
                Packet::Relay(next) => {
                    hops += 1;
                    if hops > MAX_RELAY_HOPS {
                        return Err(ParseError::RelayTooDeep);
                    }
                    current = next;
                }
            }
        }
    }

    /// The client (or server) message the relays carry.
    #[inline]
    pub fn message(&self) -> Message<'a> {
        self.message
    }

    /// The relay message the server received (or sends).
    #[inline]
    pub fn outermost(&self) -> RelayMessage<'a> {
        self.outermost
    }

    /// The relay closest to the client: its link-address and peer-address locate the client.
    #[inline]
    pub fn innermost(&self) -> RelayMessage<'a> {
        self.innermost
    }

    /// Number of relay messages (at least 1).
    #[inline]
    pub fn len(&self) -> usize {
        self.hops
    }

    /// Always false: a chain holds at least one relay message.
    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The relay messages, outermost first: the order a Relay-reply is written in.
    #[inline]
    pub fn hops(&self) -> RelayHops<'a> {
        RelayHops {
            next: Some(self.outermost),
            remaining: self.hops,
        }
    }
}

/// Iterator over the relay messages of a [`RelayChain`], outermost first.
#[derive(Debug, Clone)]
pub struct RelayHops<'a> {
    next: Option<RelayMessage<'a>>,
    remaining: usize,
}

impl<'a> Iterator for RelayHops<'a> {
    type Item = RelayMessage<'a>;

    fn next(&mut self) -> Option<RelayMessage<'a>> {
        let current = self.next.take()?;
        self.remaining = self.remaining.saturating_sub(1);
        if self.remaining > 0 {
            // The chain was validated in `RelayChain::new`, so these steps succeed.
            self.next = current
                .relayed_message()
                .ok()
                .and_then(|m| RelayMessage::new_checked(m).ok());
        }
        Some(current)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}
