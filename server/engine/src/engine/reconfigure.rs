//! Reconfigure (RFC 9915 §18.3.11) with the Reconfigure Key Authentication Protocol
//! (RFC 9915 §20.4).
//!
//! A client that sends Reconfigure Accept on a link whose `reconfigure-accept` is on gets its
//! reconfigure key in an Authentication option of every Reply that binds or extends its leases
//! (and of a Reply to Information-request), and its leases are marked
//! ([`crate::table::LeaseRecord::reconfigure`]). The key is not stored per lease: it is
//! HMAC-SHA256 of the client's DUID under the server's secret ([`ReconfigureKeys`], the
//! daemon keeps the secret in a file), cut to 16 octets, so the same client always gets the
//! same key from the same server, and the lease table stays as small as without it.
//!
//! [`Engine::reconfigure`] builds a Reconfigure for a bound client, signed with HMAC-MD5 under
//! its key, and says where to send it: through the relays the client's last message came
//! through (a Relay-reply to the relay agent's source address, port 547), or to the client's
//! address (port 546). The caller sends it.

use std::fmt;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::Sha256;
use xdhcp6_proto::{MessageType, MessageWriter, OptionCode, OptionMark, RawOptions};

use super::{DropReason, Engine, HOP_COUNT_LIMIT};
use crate::config::LinkId;
use crate::table::{IaKind, LeaseRecord, LeaseState};

/// Authentication protocol 3: the Reconfigure Key Authentication Protocol (RFC 9915 §20.4).
pub const RECONFIGURE_KEY_PROTOCOL: u8 = 3;

/// Authentication algorithm 1: HMAC-MD5 (RFC 9915 §20.4.1).
pub const ALGORITHM_HMAC_MD5: u8 = 1;

/// Replay detection method 0: a monotonically increasing counter (RFC 9915 §20.2).
pub const RDM_MONOTONIC: u8 = 0;

/// Authentication information type 1: the reconfigure key value (in a Reply).
pub const INFO_KEY: u8 = 1;

/// Authentication information type 2: the HMAC-MD5 digest of the message (in a Reconfigure).
pub const INFO_HMAC_MD5: u8 = 2;

/// Bytes of the Authentication option's body in this protocol: protocol, algorithm, RDM,
/// replay detection (8), type, value (16).
pub const AUTH_BODY_LEN: usize = 3 + 8 + 1 + 16;

/// The UDP port clients listen on (RFC 9915 §7.2).
pub const CLIENT_PORT: u16 = 546;

/// The UDP port servers and relay agents listen on (RFC 9915 §7.2).
pub const AGENT_PORT: u16 = 547;

/// The bytes of a server's reconfigure key secret.
pub const SECRET_LEN: usize = 32;

/// The server's reconfigure key secret and its replay detection counter, shared by the
/// engines of one process (a reload keeps them).
pub struct ReconfigureKeys {
    secret: [u8; SECRET_LEN],
    counter: AtomicU64,
    results: [AtomicU64; ReconfigureResult::ALL.len()],
}

/// What became of a Reconfigure the operator asked for, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReconfigureResult {
    /// Built and handed to the socket.
    Sent,
    /// Built, but the socket refused it (no route, ...).
    SendFailed,
    /// The client has no bound lease.
    NoBinding,
    /// The client did not accept Reconfigure ([`ReconfigureError::NotAccepted`]).
    NotAccepted,
    /// A direct client without an address.
    NoAddress,
    /// Relay data without the relay agent's source address.
    RelaySourceUnknown,
}

impl ReconfigureResult {
    /// Every result, for metrics.
    pub const ALL: [ReconfigureResult; 6] = [
        ReconfigureResult::Sent,
        ReconfigureResult::SendFailed,
        ReconfigureResult::NoBinding,
        ReconfigureResult::NotAccepted,
        ReconfigureResult::NoAddress,
        ReconfigureResult::RelaySourceUnknown,
    ];

    /// A short name for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ReconfigureResult::Sent => "sent",
            ReconfigureResult::SendFailed => "send_failed",
            ReconfigureResult::NoBinding => "no_binding",
            ReconfigureResult::NotAccepted => "not_accepted",
            ReconfigureResult::NoAddress => "no_address",
            ReconfigureResult::RelaySourceUnknown => "relay_source_unknown",
        }
    }
}

impl fmt::Debug for ReconfigureKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReconfigureKeys")
            .field("counter", &self.counter.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ReconfigureKeys {
    /// Keys derived from `secret`; the replay detection counter starts above `floor` (the
    /// last value handed out before a restart, as persisted by the caller).
    pub fn new(secret: [u8; SECRET_LEN], floor: u64) -> Self {
        Self {
            secret,
            counter: AtomicU64::new(floor),
            results: Default::default(),
        }
    }

    /// Counts one Reconfigure's fate ([`Engine::reconfigure`] counts those it refuses; the
    /// sender counts [`ReconfigureResult::Sent`] and [`ReconfigureResult::SendFailed`]).
    pub fn count(&self, result: ReconfigureResult) {
        if let Some(index) = ReconfigureResult::ALL.iter().position(|own| *own == result) {
            self.results[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counts, by result.
    pub fn results(&self) -> impl Iterator<Item = (ReconfigureResult, u64)> + '_ {
        ReconfigureResult::ALL
            .iter()
            .zip(&self.results)
            .map(|(result, count)| (*result, count.load(Ordering::Relaxed)))
    }

    /// The reconfigure key of the client `duid`: HMAC-SHA256(secret, DUID), its first 16
    /// octets.
    pub fn key(&self, duid: &[u8]) -> [u8; 16] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(duid);
        let digest = mac.finalize().into_bytes();
        let mut key = [0; 16];
        key.copy_from_slice(&digest[..16]);
        key
    }

    /// The next replay detection value, for a Reconfigure: greater than every one handed out
    /// before (Replies included), and above the time in seconds shifted left by 32 bits, so
    /// that it keeps increasing across restarts even where the caller's persisted floor is
    /// lost.
    pub fn next_replay(&self, now: u32) -> u64 {
        let seeded = u64::from(now) << 32;
        let next = |last: u64| last.max(seeded).saturating_add(1);
        let previous = self
            .counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(next(last))
            })
            .unwrap_or_else(|last| last);
        next(previous)
    }

    /// The replay detection value of a Reply that carries a key: the last one handed out, or
    /// the time shifted left by 32 bits if greater. Never above the next Reconfigure's, and
    /// read without a write, so that the workers share no written cache line for it.
    pub fn current_replay(&self, now: u32) -> u64 {
        self.counter
            .load(Ordering::Relaxed)
            .max(u64::from(now) << 32)
    }

    /// The last replay detection value handed out (to persist).
    pub fn replay_counter(&self) -> u64 {
        self.counter.load(Ordering::Relaxed)
    }
}

/// HMAC-MD5 of `message` under `key` (RFC 2104).
pub fn hmac_md5(key: &[u8], message: &[u8]) -> [u8; 16] {
    let mut mac = <Hmac<Md5> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// What a client checks of a Reconfigure before it acts on it (RFC 9915 §20.4.3): an
/// Authentication option of this protocol, HMAC-MD5, a monotonic replay counter, and an
/// HMAC-MD5 digest computed over the whole message with the digest field zeroed that matches
/// `key`. Returns the replay detection value. For clients, tools and tests.
pub fn verify_reconfigure(message: &[u8], key: &[u8; 16]) -> Option<u64> {
    if message.first() != Some(&u8::from(MessageType::Reconfigure)) {
        return None;
    }
    let options = message.get(4..)?;
    let mut offset = 4;
    let mut found = None;
    for option in RawOptions::new(options) {
        let option = option.ok()?;
        let start = offset;
        offset += 4 + option.data.len();
        if option.code == u16::from(OptionCode::Auth) {
            if found.is_some() {
                return None;
            }
            found = Some((start + 4, option.data));
        }
    }
    let (at, body) = found?;
    if body.len() != AUTH_BODY_LEN
        || body[0] != RECONFIGURE_KEY_PROTOCOL
        || body[1] != ALGORITHM_HMAC_MD5
        || body[2] != RDM_MONOTONIC
        || body[11] != INFO_HMAC_MD5
    {
        return None;
    }
    let replay = u64::from_be_bytes(body[3..11].try_into().ok()?);
    let mut zeroed = message.to_vec();
    zeroed.get_mut(at + 12..at + 28)?.fill(0);
    let digest = hmac_md5(key, &zeroed);
    // A comparison whose time does not depend on where the digests differ.
    let differs = digest
        .iter()
        .zip(&body[12..28])
        .fold(0, |acc, (a, b)| acc | (a ^ b));
    (differs == 0).then_some(replay)
}

/// The message a Reconfigure asks the client to send (its Reconfigure Message option, RFC
/// 9915 §21.19).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReconfigureType {
    /// Renew (5).
    Renew,
    /// Rebind (6).
    Rebind,
    /// Information-request (11).
    InformationRequest,
}

impl ReconfigureType {
    /// The message type the option carries.
    pub fn message_type(self) -> MessageType {
        match self {
            ReconfigureType::Renew => MessageType::Renew,
            ReconfigureType::Rebind => MessageType::Rebind,
            ReconfigureType::InformationRequest => MessageType::InformationRequest,
        }
    }

    /// The name the CLI and the API use.
    pub fn as_str(self) -> &'static str {
        match self {
            ReconfigureType::Renew => "renew",
            ReconfigureType::Rebind => "rebind",
            ReconfigureType::InformationRequest => "information-request",
        }
    }
}

impl FromStr for ReconfigureType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "renew" => Ok(ReconfigureType::Renew),
            "rebind" => Ok(ReconfigureType::Rebind),
            "information-request" => Ok(ReconfigureType::InformationRequest),
            other => Err(format!(
                "{other:?} is not one of renew, rebind, information-request"
            )),
        }
    }
}

/// A Reconfigure built by [`Engine::reconfigure`], to be sent by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReconfigureSent {
    /// Bytes written into the buffer: the UDP payload.
    pub len: usize,
    /// Where to send it: the relay agent's source address and port 547, or the client's
    /// address and port 546.
    pub to: SocketAddrV6,
    /// Whether it goes through relay agents (a Relay-reply).
    pub via_relay: bool,
    /// Its replay detection value.
    pub replay: u64,
    /// The link of the client's binding.
    pub link: LinkId,
}

/// Why no Reconfigure was built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReconfigureError {
    /// The engine has no reconfigure key secret.
    #[error("reconfigure is not available: the server has no reconfigure key secret")]
    Disabled,
    /// The client holds no bound lease.
    #[error("the client has no bound lease")]
    NoBinding,
    /// The client's last message that bound or extended its leases had no Reconfigure Accept
    /// (or its link's `reconfigure-accept` was off): it holds no reconfigure key.
    #[error(
        "the client did not send Reconfigure Accept in the message that last bound or extended \
         its leases, or its link does not have reconfigure-accept on: it holds no reconfigure key"
    )]
    NotAccepted,
    /// A direct client without an address lease: nowhere to send.
    #[error("the client is not relayed and holds no address to send to")]
    NoAddress,
    /// The relay data has no source address (stored from an older journal).
    #[error(
        "the relay agent's source address was not recorded for this client (relay data from \
         an older journal): its next Renew or Rebind records it"
    )]
    RelaySourceUnknown,
    /// The Reconfigure did not fit the buffer.
    #[error("the Reconfigure does not fit the buffer")]
    TooLong,
}

impl From<xdhcp6_proto::WriteError> for ReconfigureError {
    fn from(_: xdhcp6_proto::WriteError) -> Self {
        ReconfigureError::TooLong
    }
}

impl Engine {
    /// This engine with the server's reconfigure key secret: clients that send Reconfigure
    /// Accept on a link with `reconfigure-accept` get their key, and [`Self::reconfigure`]
    /// works. [`Self::reloaded`] keeps it.
    pub fn with_reconfigure(mut self, keys: std::sync::Arc<ReconfigureKeys>) -> Self {
        self.reconfigure = Some(keys);
        self
    }

    /// The reconfigure key secret and counter, when set.
    pub fn reconfigure_keys(&self) -> Option<&std::sync::Arc<ReconfigureKeys>> {
        self.reconfigure.as_ref()
    }

    /// Whether a client that sent Reconfigure Accept (or not: `accepts`) in a message to
    /// `link` is given its reconfigure key and marked as accepting Reconfigure.
    pub(super) fn gives_reconfigure_key(&self, accepts: bool, link: LinkId) -> bool {
        accepts && self.reconfigure.is_some() && self.config.link(link).reconfigure_accept
    }

    /// Writes the Authentication option with the client's reconfigure key into a Reply.
    ///
    /// RFC 9915 §20.4.2, in substance:
    /// The server selects a reconfigure key for a client during the Request/Reply,
    /// Solicit/Reply or Information-request/Reply message exchange. The server records the
    /// reconfigure key and transmits that key to the client in an Authentication option in the
    /// Reply message. The reconfigure key is 128 bits long and MUST be a cryptographically
    /// strong random or pseudorandom number that cannot easily be predicted.
    /// (A pseudorandom function of the DUID under a 256-bit random secret: the server
    /// "records" it by being able to compute it again.)
    pub(super) fn write_reconfigure_key(
        &self,
        duid: &[u8],
        now: u32,
        w: &mut MessageWriter<'_>,
    ) -> Result<(), DropReason> {
        let Some(keys) = &self.reconfigure else {
            return Ok(());
        };
        let mut body = [0; AUTH_BODY_LEN];
        body[0] = RECONFIGURE_KEY_PROTOCOL;
        body[1] = ALGORITHM_HMAC_MD5;
        body[2] = RDM_MONOTONIC;
        body[3..11].copy_from_slice(&keys.current_replay(now).to_be_bytes());
        body[11] = INFO_KEY;
        body[12..].copy_from_slice(&keys.key(duid));
        w.option(OptionCode::Auth, &body)?;
        Ok(())
    }

    /// Builds a Reconfigure for the client `duid` into `buf` (RFC 9915 §18.3.11), signed with
    /// its reconfigure key, and says where it goes. The client's binding is the bound lease of
    /// its last transaction (any link); its relay data says whether it goes through relays.
    ///
    /// It walks the table shard by shard (the table has no index by DUID alone). Refusals are
    /// counted ([`ReconfigureKeys::results`]).
    pub fn reconfigure(
        &self,
        duid: &[u8],
        msg: ReconfigureType,
        now: u32,
        buf: &mut [u8],
    ) -> Result<ReconfigureSent, ReconfigureError> {
        let keys = self
            .reconfigure
            .as_ref()
            .ok_or(ReconfigureError::Disabled)?;
        let built = self.build_reconfigure(keys, duid, msg, now, buf);
        let refused = match built {
            Err(ReconfigureError::NoBinding) => Some(ReconfigureResult::NoBinding),
            Err(ReconfigureError::NotAccepted) => Some(ReconfigureResult::NotAccepted),
            Err(ReconfigureError::NoAddress) => Some(ReconfigureResult::NoAddress),
            Err(ReconfigureError::RelaySourceUnknown) => {
                Some(ReconfigureResult::RelaySourceUnknown)
            }
            Err(_) => Some(ReconfigureResult::SendFailed),
            Ok(_) => None,
        };
        if let Some(result) = refused {
            keys.count(result);
        }
        built
    }

    /// The Reconfigures asked for, by result (all 0 without a secret).
    pub fn reconfigure_results(&self) -> Vec<(ReconfigureResult, u64)> {
        match &self.reconfigure {
            Some(keys) => keys.results().collect(),
            None => ReconfigureResult::ALL.iter().map(|r| (*r, 0)).collect(),
        }
    }

    fn build_reconfigure(
        &self,
        keys: &ReconfigureKeys,
        duid: &[u8],
        msg: ReconfigureType,
        now: u32,
        buf: &mut [u8],
    ) -> Result<ReconfigureSent, ReconfigureError> {
        let mut latest: Option<LeaseRecord> = None;
        let mut address: Option<Ipv6Addr> = None;
        for shard in 0..self.table.shard_count() {
            self.table.iter_shard(shard, |record| {
                if record.duid.as_bytes() != duid
                    || record.lease.state != LeaseState::Bound
                    || record.lease.is_expired(now)
                {
                    return;
                }
                if record.lease.kind == IaKind::Na && address.is_none() {
                    address = Some(record.lease.ip());
                }
                let last = |record: &LeaseRecord| {
                    record
                        .lease
                        .expires
                        .saturating_sub(record.lease.lifetimes.valid)
                };
                if latest
                    .as_ref()
                    .is_none_or(|other| last(record) > last(other))
                {
                    latest = Some(record.clone());
                }
            });
        }
        let record = latest.ok_or(ReconfigureError::NoBinding)?;
        // RFC 9915 §18.3.11, in substance: the server sends Reconfigure only to a client
        // that announced, with a Reconfigure Accept option, that it accepts them (and was
        // given a reconfigure key to authenticate them with).
        if !record.reconfigure {
            return Err(ReconfigureError::NotAccepted);
        }
        // RFC 9915 §18.3.11, in substance:
        // A server sends each Reconfigure message to a single DHCP client, using an IPv6
        // unicast address of sufficient scope belonging to the DHCP client. If the server
        // does not have an address to which it can send the Reconfigure message directly to
        // the client, the server uses a Relay-reply message (as described in Section 19.3) to
        // send the Reconfigure message to a relay agent that will relay the message to the
        // client.
        // (A relayed client's own address may not be reachable from the server: it is always
        // sent through the relays its last message came through.)
        let (to, via_relay) = match &record.relay {
            Some(relay) => {
                let source = relay.source().ok_or(ReconfigureError::RelaySourceUnknown)?;
                (SocketAddrV6::new(source, AGENT_PORT, 0, 0), true)
            }
            None => {
                let address = address.ok_or(ReconfigureError::NoAddress)?;
                (SocketAddrV6::new(address, CLIENT_PORT, 0, 0), false)
            }
        };
        let mut w = MessageWriter::new(buf);
        let mut marks: [Option<OptionMark>; HOP_COUNT_LIMIT] = Default::default();
        if let Some(relay) = &record.relay {
            // RFC 9915 §19.3, in substance: the Relay-reply headers are those of the
            // Relay-forward messages, each with the Interface-Id the relay sent.
            for (hop, mark) in relay.hops().zip(marks.iter_mut()) {
                w.relay_header(
                    MessageType::RelayRepl,
                    hop.hop_count(),
                    hop.link_address(),
                    hop.peer_address(),
                )?;
                if let Some(id) = hop.option(u16::from(OptionCode::InterfaceId)) {
                    w.interface_id(id)?;
                }
                *mark = Some(w.begin_option(OptionCode::RelayMsg)?);
            }
        }
        let start = w.len();
        // RFC 9915 §18.3.11, in substance:
        // The server MUST include a Server Identifier option containing its DUID, a Client
        // Identifier option containing the client's DUID, and a Reconfigure Message option
        // in the Reconfigure message. When the server sends a Reconfigure message to a
        // client, the server MUST set the transaction-id field of the Reconfigure message
        // to 0.
        w.client_header(MessageType::Reconfigure, 0)?;
        w.server_id(&self.config.server.duid)?;
        w.client_id(duid)?;
        w.reconf_msg(msg.message_type())?;
        // RFC 9915 §20.4.2, in substance:
        // The server computes the HMAC-MD5 over the entire DHCP Reconfigure message,
        // including the Authentication option; the HMAC-MD5 field in the Authentication
        // option is set to zero for the HMAC-MD5 computation.
        let replay = keys.next_replay(now);
        let mut body = [0; AUTH_BODY_LEN];
        body[0] = RECONFIGURE_KEY_PROTOCOL;
        body[1] = ALGORITHM_HMAC_MD5;
        body[2] = RDM_MONOTONIC;
        body[3..11].copy_from_slice(&replay.to_be_bytes());
        body[11] = INFO_HMAC_MD5;
        w.option(OptionCode::Auth, &body)?;
        let end = w.len();
        for mark in marks.into_iter().rev().flatten() {
            w.end_option(mark)?;
        }
        let len = w.finish()?;
        let key = keys.key(duid);
        let message = buf.get_mut(start..end).ok_or(ReconfigureError::TooLong)?;
        let digest = hmac_md5(&key, message);
        let at = message.len() - 16;
        message[at..].copy_from_slice(&digest);
        Ok(ReconfigureSent {
            len,
            to,
            via_relay,
            replay,
            link: record.lease.link,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_the_secret_and_the_duid() {
        let keys = ReconfigureKeys::new([7; SECRET_LEN], 0);
        let other = ReconfigureKeys::new([8; SECRET_LEN], 0);
        assert_eq!(keys.key(b"\x00\x03client-1"), keys.key(b"\x00\x03client-1"));
        assert_ne!(keys.key(b"\x00\x03client-1"), keys.key(b"\x00\x03client-2"));
        assert_ne!(
            keys.key(b"\x00\x03client-1"),
            other.key(b"\x00\x03client-1")
        );
    }

    #[test]
    fn replay_values_only_grow() {
        let keys = ReconfigureKeys::new([0; SECRET_LEN], 0);
        assert_eq!(keys.current_replay(1000), 1000 << 32);
        let first = keys.next_replay(1000);
        assert_eq!(first, (1000 << 32) + 1);
        // A Reply's value is never above the last Reconfigure's, nor below the clock's.
        assert_eq!(keys.current_replay(1000), first);
        assert_eq!(keys.current_replay(2000), 2000 << 32);
        assert_eq!(keys.next_replay(1000), first + 1);
        // The clock going back does not take the counter back.
        assert_eq!(keys.next_replay(10), first + 2);
        assert_eq!(keys.replay_counter(), first + 2);
        // A persisted floor above the clock wins.
        let restarted = ReconfigureKeys::new([0; SECRET_LEN], (5000 << 32) + 7);
        assert_eq!(restarted.next_replay(1000), (5000 << 32) + 8);
    }

    #[test]
    fn hmac_md5_matches_rfc_2202() {
        // RFC 2202 §2, test case 2.
        assert_eq!(
            hmac_md5(b"Jefe", b"what do ya want for nothing?"),
            [
                0x75, 0x0c, 0x78, 0x3e, 0x6a, 0xb0, 0xb5, 0x03, 0xea, 0xa8, 0x6e, 0x31, 0x0a, 0x5d,
                0xb7, 0x38
            ]
        );
    }
}
