//! What [`Engine::handle`](super::Engine::handle) tells its caller: the reply to send or the
//! reason for dropping, and the message types for the counters.

use xdhcp6_proto::{MessageType, OptionCode, WriteError};

use super::HOP_COUNT_LIMIT;

/// What to do with a message, and what was received and sent, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send the first `len` bytes of the reply buffer.
    Reply {
        /// Bytes written to the reply buffer.
        len: usize,
        /// Where the reply goes.
        to: Destination,
        /// The type of the client message received, inside any relay messages.
        received: MessageType,
        /// The type of the reply (Advertise, Reply, Leasequery-reply), inside any Relay-reply.
        sent: MessageType,
        /// The client is on a link no `[[link]]` selects: its IAs are answered NoAddrsAvail or
        /// NoPrefixAvail (`unknown-link = "no-addrs-avail"`).
        unknown_link: bool,
        /// Milliseconds the datapath holds the reply before it sends it: the link's
        /// `advertise-delay-ms` for an Advertise of a link whose Preference is below 255,
        /// else 0 (send at once). Replies are never held.
        delay_ms: u16,
    },
    /// Send nothing; the reason is counted.
    Drop {
        /// Why.
        reason: DropReason,
        /// The type of the message received, inside any relay messages as far as they could
        /// be read (see [`received_type`]).
        received: MessageType,
    },
}

impl Outcome {
    /// The type of the message received, inside any relay messages.
    pub fn received(&self) -> MessageType {
        match *self {
            Outcome::Reply { received, .. } | Outcome::Drop { received, .. } => received,
        }
    }

    /// The type of the reply sent (inside any Relay-reply), if any.
    pub fn sent(&self) -> Option<MessageType> {
        match *self {
            Outcome::Reply { sent, .. } => Some(sent),
            Outcome::Drop { .. } => None,
        }
    }
}

/// The type of the message inside any relay messages, read leniently: the first Relay Message
/// option of each relay, as far as the bytes go; a relay without one counts as itself, and
/// an empty message or one nested past [`HOP_COUNT_LIMIT`] relays as `Unknown(0)`.
///
/// [`Engine::handle`](super::Engine::handle) reports this in [`Outcome`] (from its own parse where the message is
/// well-formed); a datapath that drops a request before the engine sees it (no buffer for
/// the reply) counts it with this.
pub fn received_type(mut message: &[u8]) -> MessageType {
    const RELAY_HEADER_LEN: usize = 34;
    for _ in 0..=HOP_COUNT_LIMIT {
        let Some(&first) = message.first() else {
            return MessageType::Unknown(0);
        };
        let kind = MessageType::from(first);
        if !kind.is_relay() {
            return kind;
        }
        let mut options = message.get(RELAY_HEADER_LEN..).unwrap_or_default();
        let mut inner = None;
        while let [a, b, c, d, rest @ ..] = options {
            let code = u16::from_be_bytes([*a, *b]);
            let len = usize::from(u16::from_be_bytes([*c, *d]));
            let Some(value) = rest.get(..len) else { break };
            if code == u16::from(OptionCode::RelayMsg) {
                inner = Some(value);
                break;
            }
            options = rest.get(len..).unwrap_or_default();
        }
        match inner {
            Some(inner) => message = inner,
            None => return kind,
        }
    }
    MessageType::Unknown(0)
}

/// Where a reply goes, relative to the request's source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The client itself: the request's source address, UDP port 546.
    Client,
    /// The relay agent: the request's source address, UDP port 547, or the request's source
    /// port when the relay asked for that with a Relay Source Port option (RFC 8357 §5.2).
    Relay {
        /// Reply to the request's UDP source port rather than 547.
        to_source_port: bool,
    },
    /// A Leasequery requestor that sent directly: the request's source address and UDP
    /// source port (RFC 5007 §4.3.5).
    Requestor,
}

/// Why a message got no reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Not a DHCPv6 message: too short, or an option runs past its container.
    Malformed,
    /// A message type servers never receive (Advertise, Reply, Reconfigure, Relay-reply, ...).
    NotForServer,
    /// A message type this server does not answer (unknown types).
    Unsupported,
    /// A client message without the Client Identifier its type requires (RFC 9915 §16).
    MissingClientId,
    /// A Request, Renew, Release or Decline without a Server Identifier (RFC 9915 §16).
    MissingServerId,
    /// A Server Identifier that names another server (RFC 9915 §16).
    WrongServerId,
    /// A Server Identifier in a message that must not carry one (Solicit, Confirm, Rebind).
    UnexpectedServerId,
    /// An Information-request that carries an IA option (RFC 9915 §16.12).
    IaInInformationRequest,
    /// A Confirm with no address to confirm (RFC 9915 §18.3.3).
    NothingToConfirm,
    /// The message came from no configured link (interface, relay link-address, Interface-Id).
    UnknownLink,
    /// A client message (not relayed) sent to a unicast address of the server (RFC 9915 §16).
    Unicast,
    /// A relay chain longer than HOP_COUNT_LIMIT.
    HopLimit,
    /// The reply did not fit the buffer.
    ReplyTooLarge,
    /// Two Client Identifier or two Server Identifier options in one message (RFC 9915
    /// §21.1: each option appears once unless noted otherwise).
    DuplicateId,
    /// A Relay-forward from an interface or source address that `relay-interfaces` or
    /// `relay-sources` does not list. The datapaths decide this (they know the interface)
    /// before the engine reads the message.
    RelayNotAllowed,
    /// A new binding over a rate limit (`binding-rate` of the link, `relay-binding-rate`,
    /// `mac-binding-rate`): the client retransmits with backoff.
    RateLimited,
    /// A Decline over the client's `decline-limit`.
    DeclineLimited,
    /// A Solicit, Request, Renew or Rebind while the lease journal cannot be written: the
    /// server makes and extends no binding it cannot keep (counted by the daemon, which
    /// checks before it calls the engine).
    JournalUnavailable,
}

impl DropReason {
    /// Every reason, for metrics.
    pub const ALL: [DropReason; 18] = [
        DropReason::Malformed,
        DropReason::NotForServer,
        DropReason::Unsupported,
        DropReason::MissingClientId,
        DropReason::MissingServerId,
        DropReason::WrongServerId,
        DropReason::UnexpectedServerId,
        DropReason::IaInInformationRequest,
        DropReason::NothingToConfirm,
        DropReason::UnknownLink,
        DropReason::Unicast,
        DropReason::HopLimit,
        DropReason::ReplyTooLarge,
        DropReason::DuplicateId,
        DropReason::RelayNotAllowed,
        DropReason::RateLimited,
        DropReason::DeclineLimited,
        DropReason::JournalUnavailable,
    ];

    /// A short name for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::NotForServer => "not_for_server",
            DropReason::Unsupported => "unsupported",
            DropReason::MissingClientId => "missing_client_id",
            DropReason::MissingServerId => "missing_server_id",
            DropReason::WrongServerId => "wrong_server_id",
            DropReason::UnexpectedServerId => "unexpected_server_id",
            DropReason::IaInInformationRequest => "ia_in_information_request",
            DropReason::NothingToConfirm => "nothing_to_confirm",
            DropReason::UnknownLink => "unknown_link",
            DropReason::Unicast => "unicast",
            DropReason::HopLimit => "hop_limit",
            DropReason::ReplyTooLarge => "reply_too_large",
            DropReason::DuplicateId => "duplicate_id",
            DropReason::RelayNotAllowed => "relay_not_allowed",
            DropReason::RateLimited => "rate_limited",
            DropReason::DeclineLimited => "decline_limited",
            DropReason::JournalUnavailable => "journal_unavailable",
        }
    }
}

impl From<WriteError> for DropReason {
    fn from(_: WriteError) -> Self {
        DropReason::ReplyTooLarge
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_type_looks_through_relays() {
        assert_eq!(received_type(&[1, 0, 0, 0]), MessageType::Solicit);
        assert_eq!(received_type(&[]), MessageType::Unknown(0));
        // Relay-forward, hop 0, link and peer addresses, then an Interface-Id option and a
        // Relay Message option holding a Request.
        let mut relayed = vec![12, 0];
        relayed.extend_from_slice(&[0; 32]);
        relayed.extend_from_slice(&[0, 18, 0, 2, b'x', b'y']);
        relayed.extend_from_slice(&[0, 9, 0, 4, 3, 0, 0, 1]);
        assert_eq!(received_type(&relayed), MessageType::Request);
        // Two levels.
        let mut twice = vec![12, 1];
        twice.extend_from_slice(&[0; 32]);
        twice.extend_from_slice(&[0, 9]);
        twice.extend_from_slice(&(relayed.len() as u16).to_be_bytes());
        twice.extend_from_slice(&relayed);
        assert_eq!(received_type(&twice), MessageType::Request);
        // A relay message without option 9 counts as itself; truncated options do not panic.
        assert_eq!(received_type(&relayed[..40]), MessageType::RelayForw);
        for len in 0..twice.len() {
            let _ = received_type(&twice[..len]);
        }
    }
}
