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

/// The Relay-ID (a DUID-LL) of the relay that [`one_relay_engine`] binds every client through.
pub const BENCH_RELAY_ID: &[u8] = &[0, 3, 0, 1, 0x02, 0x00, 0x5e, 0x00, 0x53, 0x01];

/// A requestor address [`one_relay_engine`]'s configuration lists (with `::1`).
pub const BENCH_REQUESTOR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 9, 0, 0, 0, 5);

/// An engine whose table holds `count` bound IA_NA leases, all relayed by one relay (a CMTS
/// port: link-address, Interface-Id, Relay-ID [`BENCH_RELAY_ID`]) with one Remote-ID per four
/// clients, a link-local peer-address and a Client Link-Layer Address per client, and
/// distinct 14-byte DUID-LLTs; the leases were bound at [`super::T0`] for 3600/7200 s. For
/// the Bulk Leasequery benchmarks.
pub fn one_relay_engine(count: u64) -> std::sync::Arc<crate::Engine> {
    one_relay_engine_with(count, "")
}

/// [`one_relay_engine`] with `extra` lines in its `[leasequery]` table (the `bulk-*` keys).
pub fn one_relay_engine_with(count: u64, extra: &str) -> std::sync::Arc<crate::Engine> {
    use crate::config::LinkId;
    use crate::table::{DuidBuf, IaKind, Lease, LeaseRecord, LeaseState, Lifetimes, RelayData};

    let config = super::config(&format!(
        r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:42"
salt = "bulk-bench"
expected-leases = {count}

[leasequery]
requestors = ["{BENCH_REQUESTOR}/128", "::1/128"]
{extra}

[[link]]
name = "cable"
relay-prefixes = ["2001:db8:ffff:1::/64"]

[[link.pool]]
prefix = "2001:db8:1::/64"
"#
    ));
    let relay_data = |client: u64| {
        let option = |out: &mut Vec<u8>, code: u16, body: &[u8]| {
            out.extend_from_slice(&code.to_be_bytes());
            out.extend_from_slice(&(body.len() as u16).to_be_bytes());
            out.extend_from_slice(body);
        };
        let mut options = Vec::with_capacity(64);
        option(&mut options, 18, b"cable-1/0/0");
        option(&mut options, 53, BENCH_RELAY_ID);
        let mut remote_id = vec![0, 0, 0x11, 0x8b, 0x00, 0x20];
        remote_id.extend_from_slice(&((client / 4) as u32).to_be_bytes());
        option(&mut options, 37, &remote_id);
        let mut link_layer = vec![0, 1, 0x02, 0x30];
        link_layer.extend_from_slice(&(client as u32).to_be_bytes());
        option(&mut options, 79, &link_layer);
        // One hop, with the relay agent's datagram source (LQ Relay Data's peer-address).
        let mut bytes = vec![0x81];
        bytes.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 9, 0, 0, 0, 1).octets());
        bytes.push(0);
        bytes.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 1, 0, 0, 0, 1).octets());
        let iid = client.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        bytes.extend_from_slice(&(0xfe80u128 << 112 | u128::from(iid)).to_be_bytes());
        bytes.extend_from_slice(&(options.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&options);
        RelayData::from_bytes(&bytes)
    };
    let records = (0..count).map(|client| {
        let mut duid = vec![0, 1, 0, 1, 0x2e, 0, 0, 0];
        duid.extend_from_slice(&client.to_be_bytes()[2..]);
        LeaseRecord {
            duid: DuidBuf::new(&duid),
            lease: Lease {
                addr: 0x2001_0db8_0001_0000_0000_0000_0000_0000 | u128::from(client + 0x100),
                prefix_len: 128,
                kind: IaKind::Na,
                iaid: 1,
                link: LinkId(0),
                state: LeaseState::Bound,
                lifetimes: Lifetimes {
                    preferred: 3600,
                    valid: 7200,
                },
                expires: super::T0 + 7200,
            },
            relay: relay_data(client),
            reconfigure: false,
        }
    });
    let engine = match crate::Engine::new(
        std::sync::Arc::clone(&config),
        std::sync::Arc::new(crate::table::LeaseTable::with_capacity(
            count as usize,
            crate::alloc::SaltKey::from_salt(&config.server.salt),
        )),
    ) {
        Ok(engine) => engine,
        Err(error) => panic!("engine does not start: {error}"),
    };
    let report = engine.restore(records);
    assert_eq!(engine.table().len() as u64, count, "{report:?}");
    std::sync::Arc::new(engine)
}

/// A framed-free QUERY_BY_RELAY_ID for [`BENCH_RELAY_ID`] from a requestor, as bytes.
pub fn bench_query(xid: u32) -> Vec<u8> {
    let mut requestor = Client::new(9000);
    requestor.xid = xid;
    by_relay_id(&requestor, BENCH_RELAY_ID, Ipv6Addr::UNSPECIFIED).encode()
}
