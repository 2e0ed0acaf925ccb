//! The requestor's side of Leasequery on the wire, without IO: the LEASEQUERY a requestor
//! sends (RFC 5007 §4.1.2, RFC 5460 §5.3 for the bulk query types) and the answers taken
//! apart without trusting them (a malformed answer is an error, never a panic).

use std::net::Ipv6Addr;

use xdhcp6_engine::prefix::Prefix;
use xdhcp6_engine::proto::{
    DhcpOption, Message, MessageType, MessageWriter, OptionCode, Packet, ParseError, QueryType,
    RelayMessage, StatusCode, WriteError,
};

/// The longest LEASEQUERY written: a DUID is at most 130 bytes, a Remote-ID a few hundred.
const MAX_QUERY: usize = 1024;

/// The most relay hops an LQ Relay Data option is walked through (RFC 9915 §19.1:
/// HOP_COUNT_LIMIT).
const MAX_HOPS: usize = 32;

/// What is asked about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Who holds this address (QUERY_BY_ADDRESS).
    Address(Ipv6Addr),
    /// Who holds this delegated prefix (QUERY_BY_ADDRESS with its first address: the server
    /// answers with the delegated prefix that holds it).
    Prefix(Prefix),
    /// What this client holds (QUERY_BY_CLIENTID); `iaid` narrows nothing on the wire (Client
    /// Data has no IAs) but names the IA whose hashed address the layout shows.
    ClientId {
        /// The client's DUID.
        duid: Vec<u8>,
        /// The client's IAID, if known.
        iaid: Option<u32>,
    },
    /// Every binding relayed by the relay with this DUID (QUERY_BY_RELAY_ID, RFC 5460, TCP).
    RelayId(Vec<u8>),
    /// Every binding with this Remote-ID (QUERY_BY_REMOTE_ID, RFC 5460, TCP).
    RemoteId {
        /// The relay vendor's enterprise number.
        enterprise: u32,
        /// The remote-id.
        id: Vec<u8>,
    },
}

impl Target {
    /// Whether only Bulk Leasequery (TCP, RFC 5460) has this query type.
    pub fn is_bulk_only(&self) -> bool {
        matches!(self, Target::RelayId(_) | Target::RemoteId { .. })
    }

    /// The query type on the wire.
    pub fn query_type(&self) -> QueryType {
        match self {
            Target::Address(_) | Target::Prefix(_) => QueryType::ByAddress,
            Target::ClientId { .. } => QueryType::ByClientId,
            Target::RelayId(_) => QueryType::ByRelayId,
            Target::RemoteId { .. } => QueryType::ByRemoteId,
        }
    }

    /// The address or prefix asked about, if the query names one.
    pub fn prefix(&self) -> Option<Prefix> {
        match self {
            Target::Address(address) => Some(Prefix::containing(*address, 128)),
            Target::Prefix(prefix) => Some(*prefix),
            _ => None,
        }
    }
}

/// Writes a LEASEQUERY: transaction `xid`, the requestor's own DUID as Client Identifier and
/// one OPTION_LQ_QUERY for `target` on the link of `link_address` (`::`: any link).
pub fn encode(
    xid: u32,
    requestor: &[u8],
    target: &Target,
    link_address: Ipv6Addr,
) -> Result<Vec<u8>, WriteError> {
    let mut buf = vec![0; MAX_QUERY];
    let mut w = MessageWriter::client(&mut buf, MessageType::Leasequery, xid & 0x00ff_ffff)?;
    w.client_id(requestor)?;
    let query = w.begin_option(OptionCode::LqQuery)?;
    w.put_bytes(&[target.query_type().into()])?;
    w.put_bytes(&link_address.octets())?;
    match target {
        Target::Address(address) => w.ia_address(*address, 0, 0)?,
        Target::Prefix(prefix) => w.ia_address(prefix.addr(), 0, 0)?,
        Target::ClientId { duid, .. } => w.client_id(duid)?,
        Target::RelayId(duid) => w.relay_id(duid)?,
        Target::RemoteId { enterprise, id } => w.remote_id(*enterprise, id)?,
    }
    w.end_option(query)?;
    let len = w.finish()?;
    buf.truncate(len);
    Ok(buf)
}

/// One binding of an answer: OPTION_CLIENT_DATA taken apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Binding {
    /// The client's DUID.
    pub client_id: Vec<u8>,
    /// Addresses with their preferred and valid lifetimes left.
    pub addresses: Vec<(Ipv6Addr, u32, u32)>,
    /// Delegated prefixes with their preferred and valid lifetimes left.
    pub prefixes: Vec<(Prefix, u32, u32)>,
    /// Seconds since the client's last transaction (OPTION_CLT_TIME).
    pub clt_time: Option<u32>,
    /// The relay data of the client's last exchange (OPTION_LQ_RELAY_DATA).
    pub relay: Option<RelayData>,
}

impl Binding {
    /// Whether it holds `prefix` (an address as a /128): one of its addresses, or a
    /// delegated prefix that covers it.
    pub fn holds(&self, prefix: Prefix) -> bool {
        self.addresses
            .iter()
            .any(|(address, _, _)| prefix.len() == 128 && prefix.addr() == *address)
            || self
                .prefixes
                .iter()
                .any(|(delegated, _, _)| delegated.covers(&prefix) || prefix.covers(delegated))
    }
}

/// OPTION_LQ_RELAY_DATA: the peer-address and the relay hops of the last Relay-forward.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelayData {
    /// The peer-address field of the option (RFC 5007 §4.1.2.4).
    pub peer_address: Option<Ipv6Addr>,
    /// The hops, outermost (the relay closest to the server) first.
    pub hops: Vec<RelayHop>,
}

/// One Relay-forward of the relay data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelayHop {
    /// Its link-address.
    pub link_address: Option<Ipv6Addr>,
    /// Its peer-address.
    pub peer_address: Option<Ipv6Addr>,
    /// Interface-Id (18).
    pub interface_id: Option<Vec<u8>>,
    /// Remote-ID (37): enterprise number and remote-id.
    pub remote_id: Option<(u32, Vec<u8>)>,
    /// Subscriber-ID (38).
    pub subscriber_id: Option<Vec<u8>>,
    /// Relay-ID (53).
    pub relay_id: Option<Vec<u8>>,
}

/// A LEASEQUERY-REPLY, LEASEQUERY-DATA or LEASEQUERY-DONE taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Its message type.
    pub msg_type: MessageType,
    /// Its transaction id.
    pub xid: u32,
    /// The server's DUID.
    pub server_id: Option<Vec<u8>>,
    /// The requestor's DUID, echoed.
    pub client_id: Option<Vec<u8>>,
    /// The top-level Status Code, when there is one.
    pub status: Option<(StatusCode, String)>,
    /// The binding, when the message carries OPTION_CLIENT_DATA.
    pub binding: Option<Binding>,
    /// OPTION_LQ_CLIENT_LINK: the links the client has bindings on (ask each one).
    pub client_links: Vec<Ipv6Addr>,
}

impl Answer {
    /// The status, Success when the message has none.
    pub fn status_code(&self) -> StatusCode {
        self.status
            .as_ref()
            .map_or(StatusCode::Success, |(code, _)| *code)
    }
}

/// Takes an answer apart. Anything but a Leasequery answer, or a malformed one, is an error.
pub fn parse(bytes: &[u8]) -> Result<Answer, ParseError> {
    let message = match Packet::parse(bytes)? {
        Packet::Client(message) => message,
        Packet::Relay(relay) => return Err(ParseError::MessageType(relay.msg_type().into())),
    };
    answer(&message)
}

fn answer(message: &Message<'_>) -> Result<Answer, ParseError> {
    let mut answer = Answer {
        msg_type: message.msg_type(),
        xid: message.transaction_id(),
        server_id: None,
        client_id: None,
        status: None,
        binding: None,
        client_links: Vec::new(),
    };
    for option in message.options() {
        match option? {
            DhcpOption::ServerId(duid) => answer.server_id = Some(duid.as_bytes().to_vec()),
            DhcpOption::ClientId(duid) => answer.client_id = Some(duid.as_bytes().to_vec()),
            DhcpOption::StatusCode { code, message } => {
                answer.status = Some((code, String::from_utf8_lossy(message).into_owned()));
            }
            DhcpOption::ClientData(options) => {
                let mut binding = Binding::default();
                for option in options {
                    match option? {
                        DhcpOption::ClientId(duid) => binding.client_id = duid.as_bytes().to_vec(),
                        DhcpOption::IaAddr(a) => binding.addresses.push((
                            a.addr(),
                            a.preferred_lifetime(),
                            a.valid_lifetime(),
                        )),
                        DhcpOption::IaPrefix(p) => {
                            let prefix = Prefix::containing(p.prefix(), p.prefix_len().min(128));
                            binding.prefixes.push((
                                prefix,
                                p.preferred_lifetime(),
                                p.valid_lifetime(),
                            ));
                        }
                        DhcpOption::CltTime(seconds) => binding.clt_time = Some(seconds),
                        DhcpOption::LqRelayData {
                            peer_address,
                            message,
                        } => binding.relay = Some(relay_data(peer_address, message)),
                        _ => {}
                    }
                }
                answer.binding = Some(binding);
            }
            DhcpOption::LqClientLink(links) => answer.client_links = links.iter().collect(),
            _ => {}
        }
    }
    Ok(answer)
}

/// The hops of an LQ Relay Data option's Relay-forward chain, as far as they parse (the
/// innermost carries no client message).
fn relay_data(peer_address: Ipv6Addr, message: &[u8]) -> RelayData {
    let mut data = RelayData {
        peer_address: Some(peer_address),
        hops: Vec::new(),
    };
    let mut current = message;
    while data.hops.len() < MAX_HOPS {
        let Ok(relay) = RelayMessage::new_checked(current) else {
            break;
        };
        let mut hop = RelayHop {
            link_address: Some(relay.link_address()),
            peer_address: Some(relay.peer_address()),
            ..RelayHop::default()
        };
        let mut inner = None;
        for option in relay.options().flatten() {
            match option {
                DhcpOption::InterfaceId(id) => hop.interface_id = Some(id.to_vec()),
                DhcpOption::RemoteId { enterprise, id } => {
                    hop.remote_id = Some((enterprise, id.to_vec()));
                }
                DhcpOption::SubscriberId(id) => hop.subscriber_id = Some(id.to_vec()),
                DhcpOption::RelayId(duid) => hop.relay_id = Some(duid.as_bytes().to_vec()),
                DhcpOption::RelayMsg(bytes) => inner = Some(bytes),
                _ => {}
            }
        }
        data.hops.push(hop);
        match inner {
            Some(bytes) if bytes.first() == Some(&u8::from(MessageType::RelayForw)) => {
                current = bytes;
            }
            _ => break,
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUESTOR: &[u8] = &[0, 3, 0, 1, 2, 0, 0, 0, 0x4c, 0x51];

    #[test]
    fn query_by_address_is_the_documented_datagram() {
        // docs/leasequery.md, "Example".
        let bytes = encode(
            0x10,
            REQUESTOR,
            &Target::Address("2001:db8:1::1c2".parse().unwrap()),
            Ipv6Addr::UNSPECIFIED,
        )
        .unwrap();
        let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(
            hex,
            "0e0000100001000a00030001020000004c51002c002d01000000000000000000000000000000000005\
             001820010db80001000000000000000001c20000000000000000"
        );
    }

    #[test]
    fn bulk_query_types_carry_their_option() {
        let remote = encode(
            1,
            REQUESTOR,
            &Target::RemoteId {
                enterprise: 4491,
                id: vec![0xaa, 0xbb],
            },
            Ipv6Addr::UNSPECIFIED,
        )
        .unwrap();
        // LQ_QUERY at offset 18: type 5, 16 bytes of link-address, then OPTION_REMOTE_ID.
        assert_eq!(&remote[22..23], &[5]);
        assert_eq!(
            &remote[39..49],
            &[0, 37, 0, 6, 0, 0, 0x11, 0x8b, 0xaa, 0xbb]
        );
        let relay = encode(
            1,
            REQUESTOR,
            &Target::RelayId(REQUESTOR.to_vec()),
            Ipv6Addr::UNSPECIFIED,
        )
        .unwrap();
        assert_eq!(&relay[22..23], &[3]);
        assert_eq!(&relay[39..43], &[0, 53, 0, 10]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&[][..], &[15], &[15, 0, 0, 1, 0, 45, 0, 9, 0]] {
            assert!(parse(bytes).is_err(), "{bytes:?}");
        }
    }
}
