//! Bulk Leasequery (RFC 5460) for tests: queries by Relay-ID, link-address and Remote-ID, and
//! the framed stream of replies taken apart.

use std::net::Ipv6Addr;

use super::Msg;
use super::leasequery::{LeasequeryReply, leasequery, query_option};
use super::{Client, Server};
use crate::DropReason;
use crate::proto::{MessageType, OptionCode, QueryType};

/// QUERY_BY_RELAY_ID for the relay `relay_id` (its DUID), on the link of `link_address` (`::`:
/// any link).
pub fn by_relay_id(requestor: &Client, relay_id: &[u8], link_address: Ipv6Addr) -> Msg {
    let query = query_option(
        QueryType::ByRelayId.into(),
        link_address,
        &[(OptionCode::RelayId.into(), relay_id)],
    );
    leasequery(requestor, &query)
}

/// QUERY_BY_LINK_ADDRESS for the relays' `link_address`.
pub fn by_link_address(requestor: &Client, link_address: Ipv6Addr) -> Msg {
    let query = query_option(QueryType::ByLinkAddress.into(), link_address, &[]);
    leasequery(requestor, &query)
}

/// QUERY_BY_REMOTE_ID for the Remote-ID option body `remote_id` (enterprise number, then the
/// remote-id), on the link of `link_address` (`::`: any link).
pub fn by_remote_id(requestor: &Client, remote_id: &[u8], link_address: Ipv6Addr) -> Msg {
    let query = query_option(
        QueryType::ByRemoteId.into(),
        link_address,
        &[(OptionCode::RemoteId.into(), remote_id)],
    );
    leasequery(requestor, &query)
}

/// The messages of a TCP stream, each after its two-octet length (RFC 5460 §5.1); panics on a
/// cut frame.
pub fn split_frames(mut bytes: &[u8]) -> Vec<&[u8]> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 2, "a cut length");
        let len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
        assert!(bytes.len() >= 2 + len, "a cut message");
        frames.push(&bytes[2..2 + len]);
        bytes = &bytes[2 + len..];
    }
    frames
}

/// The messages of one Bulk Leasequery's answer, taken apart, in order.
#[derive(Clone, Debug)]
pub struct BulkReplies {
    /// Every message: the REPLY, the DATA messages, the DONE.
    pub messages: Vec<LeasequeryReply>,
}

impl BulkReplies {
    /// Parses a whole answer; panics on anything malformed.
    pub fn parse(stream: &[u8]) -> Self {
        Self {
            messages: split_frames(stream)
                .into_iter()
                .map(LeasequeryReply::parse)
                .collect(),
        }
    }

    /// The first message, the LEASEQUERY-REPLY.
    pub fn reply(&self) -> &LeasequeryReply {
        let reply = &self.messages[0];
        assert_eq!(reply.msg_type, MessageType::LeasequeryReply);
        reply
    }

    /// Every Client Data, of the REPLY and the DATA messages, in order.
    pub fn client_data(&self) -> Vec<&super::leasequery::ClientData> {
        self.messages
            .iter()
            .filter_map(|message| message.client_data.as_ref())
            .collect()
    }

    /// The message types in order.
    pub fn types(&self) -> Vec<MessageType> {
        self.messages
            .iter()
            .map(|message| message.msg_type)
            .collect()
    }
}

impl Server {
    /// Answers `msg` as a Bulk Leasequery from `requestor` over TCP, writing at most about
    /// `chunk` bytes a call, and returns the whole stream.
    pub fn bulk_leasequery_bytes(
        &mut self,
        msg: &Msg,
        requestor: Ipv6Addr,
        chunk: usize,
    ) -> Result<Vec<u8>, DropReason> {
        let mut answer = self
            .engine
            .bulk_leasequery(&msg.encode(), requestor, self.now)?;
        let mut stream = Vec::new();
        loop {
            let mut out = Vec::new();
            let done = answer.write_more(&self.engine, self.now, &mut out, chunk);
            stream.extend_from_slice(&out);
            if done {
                break;
            }
        }
        assert!(answer.is_finished());
        Ok(stream)
    }

    /// Answers `msg` as a Bulk Leasequery from `requestor` and takes the answer apart.
    pub fn bulk_leasequery(
        &mut self,
        msg: &Msg,
        requestor: Ipv6Addr,
    ) -> Result<BulkReplies, DropReason> {
        let stream = self.bulk_leasequery_bytes(msg, requestor, 512)?;
        Ok(BulkReplies::parse(&stream))
    }
}
