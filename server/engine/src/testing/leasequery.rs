//! Leasequery (RFC 5007) for tests: queries sent by a requestor, replies taken apart.
//!
//! A requestor is a [`Client`] whose DUID is the requestor's own; its LEASEQUERY is a
//! [`Msg`] of type Leasequery carrying an OPTION_LQ_QUERY built here, so relays work as for
//! any client message.

use std::net::Ipv6Addr;

use super::{Client, Msg, REPLY_BUF, Server, must};
use crate::proto::{
    DhcpOption, MessageType, MessageWriter, OptionCode, Packet, QueryType, StatusCode,
};
use crate::{Arrival, Context, DropReason, Outcome, Peer};

/// The body of an OPTION_LQ_QUERY: `query_type`, `link_address` and the query options
/// (code, body).
pub fn query_option(query_type: u8, link_address: Ipv6Addr, options: &[(u16, &[u8])]) -> Vec<u8> {
    let mut body = vec![query_type];
    body.extend_from_slice(&link_address.octets());
    for (code, data) in options {
        body.extend_from_slice(&code.to_be_bytes());
        body.extend_from_slice(&(data.len() as u16).to_be_bytes());
        body.extend_from_slice(data);
    }
    body
}

/// A LEASEQUERY from `requestor` with this OPTION_LQ_QUERY body.
pub fn leasequery(requestor: &Client, query: &[u8]) -> Msg {
    requestor
        .message(MessageType::Leasequery)
        .option(OptionCode::LqQuery.into(), query)
}

/// QUERY_BY_ADDRESS for `address` on the link of `link_address` (`::`: any link).
pub fn by_address(requestor: &Client, address: Ipv6Addr, link_address: Ipv6Addr) -> Msg {
    let mut iaaddr = address.octets().to_vec();
    iaaddr.extend_from_slice(&[0; 8]);
    let query = query_option(
        QueryType::ByAddress.into(),
        link_address,
        &[(OptionCode::IaAddr.into(), &iaaddr)],
    );
    leasequery(requestor, &query)
}

/// QUERY_BY_CLIENTID for the client `duid` on the link of `link_address` (`::`: any link).
pub fn by_client_id(requestor: &Client, duid: &[u8], link_address: Ipv6Addr) -> Msg {
    let query = query_option(
        QueryType::ByClientId.into(),
        link_address,
        &[(OptionCode::ClientId.into(), duid)],
    );
    leasequery(requestor, &query)
}

/// One OPTION_CLIENT_DATA taken apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientData {
    /// The client's DUID.
    pub client_id: Option<Vec<u8>>,
    /// OPTION_IAADDR: address, preferred and valid lifetimes.
    pub addresses: Vec<(Ipv6Addr, u32, u32)>,
    /// OPTION_IAPREFIX: prefix, length, preferred and valid lifetimes.
    pub prefixes: Vec<(Ipv6Addr, u8, u32, u32)>,
    /// OPTION_CLT_TIME.
    pub clt_time: Option<u32>,
    /// OPTION_LQ_RELAY_DATA: peer-address and the relayed message.
    pub relay_data: Option<(Ipv6Addr, Vec<u8>)>,
    /// Every option code inside, in order.
    pub codes: Vec<u16>,
}

/// A LEASEQUERY-REPLY taken apart (inside any Relay-reply messages).
#[derive(Clone, Debug)]
pub struct LeasequeryReply {
    /// The message type (Leasequery-reply).
    pub msg_type: MessageType,
    /// The transaction id.
    pub xid: u32,
    /// Relay-reply layers around it.
    pub relays: usize,
    /// Server Identifier DUID.
    pub server_id: Option<Vec<u8>>,
    /// Client Identifier DUID (the requestor's).
    pub client_id: Option<Vec<u8>>,
    /// The top-level Status Code.
    pub status: Option<(StatusCode, String)>,
    /// OPTION_CLIENT_DATA.
    pub client_data: Option<ClientData>,
    /// OPTION_LQ_CLIENT_LINK addresses.
    pub client_links: Vec<Ipv6Addr>,
}

impl LeasequeryReply {
    /// Parses a reply; panics on anything malformed (the engine must never write that).
    pub fn parse(bytes: &[u8]) -> Self {
        let mut current = bytes;
        let mut relays = 0;
        let message = loop {
            match Packet::parse(current) {
                Ok(Packet::Client(message)) => break message,
                Ok(Packet::Relay(relay)) => {
                    relays += 1;
                    current = must(relay.relayed_message());
                }
                Err(error) => panic!("malformed reply: {error:?}"),
            }
        };
        let mut reply = LeasequeryReply {
            msg_type: message.msg_type(),
            xid: message.transaction_id(),
            relays,
            server_id: None,
            client_id: None,
            status: None,
            client_data: None,
            client_links: Vec::new(),
        };
        for option in message.options() {
            match must(option) {
                DhcpOption::ServerId(duid) => reply.server_id = Some(duid.as_bytes().to_vec()),
                DhcpOption::ClientId(duid) => reply.client_id = Some(duid.as_bytes().to_vec()),
                DhcpOption::StatusCode { code, message } => {
                    reply.status = Some((code, String::from_utf8_lossy(message).into_owned()));
                }
                DhcpOption::ClientData(options) => {
                    assert!(reply.client_data.is_none(), "two Client Data options");
                    let mut data = ClientData::default();
                    for raw in options.raw() {
                        data.codes.push(must(raw).code);
                    }
                    for option in options {
                        match must(option) {
                            DhcpOption::ClientId(duid) => {
                                data.client_id = Some(duid.as_bytes().to_vec());
                            }
                            DhcpOption::IaAddr(a) => data.addresses.push((
                                a.addr(),
                                a.preferred_lifetime(),
                                a.valid_lifetime(),
                            )),
                            DhcpOption::IaPrefix(p) => data.prefixes.push((
                                p.prefix(),
                                p.prefix_len(),
                                p.preferred_lifetime(),
                                p.valid_lifetime(),
                            )),
                            DhcpOption::CltTime(seconds) => data.clt_time = Some(seconds),
                            DhcpOption::LqRelayData {
                                peer_address,
                                message,
                            } => data.relay_data = Some((peer_address, message.to_vec())),
                            _ => {}
                        }
                    }
                    reply.client_data = Some(data);
                }
                DhcpOption::LqClientLink(links) => reply.client_links = links.iter().collect(),
                _ => {}
            }
        }
        reply
    }

    /// The status code, Success when the reply has none (RFC 9915 §21.13).
    pub fn status_code(&self) -> StatusCode {
        self.status
            .as_ref()
            .map_or(StatusCode::Success, |(code, _)| *code)
    }
}

impl Server {
    /// Hands a LEASEQUERY to the engine as sent by unicast from `source` (a requestor, or the
    /// relay nearest the server when `msg` is relayed).
    pub fn leasequery(
        &mut self,
        msg: &Msg,
        source: Ipv6Addr,
    ) -> Result<LeasequeryReply, DropReason> {
        let request = msg.encode();
        let cx = Context {
            link: self.link,
            arrival: Arrival::Unicast,
            now: self.now,
        };
        let peer = Peer {
            address: Some(source),
            mac: None,
        };
        let mut buf = vec![0; REPLY_BUF];
        match self
            .engine
            .handle_from(&request, &cx, peer, &mut buf, &mut self.events)
        {
            Outcome::Reply { len, sent, .. } => {
                assert_eq!(sent, MessageType::LeasequeryReply);
                Ok(LeasequeryReply::parse(&buf[..len]))
            }
            Outcome::Drop { reason, .. } => Err(reason),
        }
    }
}

/// Writes a LEASEQUERY without the harness, for callers outside it: `xid`, the requestor's
/// DUID and an OPTION_LQ_QUERY body.
pub fn encode(xid: u32, requestor: &[u8], query: &[u8]) -> Vec<u8> {
    let mut buf = vec![0; REPLY_BUF];
    let mut w = must(MessageWriter::client(
        &mut buf,
        MessageType::Leasequery,
        xid,
    ));
    must(w.client_id(requestor));
    must(w.option(OptionCode::LqQuery, query));
    let len = must(w.finish());
    buf.truncate(len);
    buf
}
