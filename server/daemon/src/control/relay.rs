//! The JSON view of a lease's relay data (docs/api.md), shared by the control API, `xdhcp6d
//! ctl` and `xdhcp6d leases`.

use serde::{Deserialize, Serialize};
use xdhcp6_engine::table::RelayData;

use super::model::hex;

/// What the relay agents said when the lease was last bound or extended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayView {
    /// The relay agent the server received the message from (the datagram's source address);
    /// `null` when not recorded (relay data replayed from a version-3 journal).
    pub source: Option<String>,
    /// Each relay hop, outermost (the relay the server heard from) first.
    pub hops: Vec<HopView>,
    /// The Relay-ID (53): the relay's DUID, hex; the closest relay's first.
    pub relay_id: Option<String>,
    /// The Remote-ID (37): enterprise number and remote-id.
    pub remote_id: Option<RemoteIdView>,
    /// The Subscriber-ID (38), hex.
    pub subscriber_id: Option<String>,
    /// The Interface-Id (18), hex; the closest relay's first.
    pub interface_id: Option<String>,
    /// The Client Link-Layer Address (79) the closest relay added.
    pub client_link_layer: Option<LinkLayerView>,
}

/// One relay hop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopView {
    /// The hop-count of its Relay-forward.
    pub hop_count: u8,
    /// The link-address.
    pub link_address: String,
    /// The peer-address: the client, or the relay below.
    pub peer_address: String,
    /// The relay options kept (Interface-Id, Remote-ID, Subscriber-ID, Client Link-Layer
    /// Address, Relay-ID, Vendor-specific Information), as received.
    pub options: Vec<RelayOptionView>,
}

/// One relay option.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayOptionView {
    /// Its code.
    pub code: u16,
    /// Its body, hex.
    pub data: String,
}

/// A Remote-ID option's body (RFC 4649).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteIdView {
    /// The enterprise number (4491: CableLabs).
    pub enterprise: u32,
    /// The remote-id, hex.
    pub id: String,
}

/// A Client Link-Layer Address (RFC 6939).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkLayerView {
    /// The hardware type (1: Ethernet).
    pub hw_type: u16,
    /// The address, hex.
    pub address: String,
}

impl RelayView {
    /// The view of `relay`.
    pub fn of(relay: &RelayData) -> Self {
        Self {
            source: relay.source().map(|source| source.to_string()),
            hops: relay
                .hops()
                .map(|hop| HopView {
                    hop_count: hop.hop_count(),
                    link_address: hop.link_address().to_string(),
                    peer_address: hop.peer_address().to_string(),
                    options: hop
                        .options()
                        .map(|(code, data)| RelayOptionView {
                            code,
                            data: hex(data),
                        })
                        .collect(),
                })
                .collect(),
            relay_id: relay.relay_id().map(hex),
            remote_id: relay.remote_id().and_then(|body| {
                let (enterprise, id) = body.split_first_chunk::<4>()?;
                Some(RemoteIdView {
                    enterprise: u32::from_be_bytes(*enterprise),
                    id: hex(id),
                })
            }),
            subscriber_id: relay.subscriber_id().map(hex),
            interface_id: relay.interface_id().map(hex),
            client_link_layer: relay
                .client_link_layer()
                .map(|(hw_type, address)| LinkLayerView {
                    hw_type,
                    address: hex(address),
                }),
        }
    }
}
