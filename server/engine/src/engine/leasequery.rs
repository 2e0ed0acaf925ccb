//! Leasequery (RFC 5007): who holds an address, and what a client holds.
//!
//! A requestor (a relay agent, a CMTS or BNG rebuilding its routes, an operator's tool) sends
//! LEASEQUERY by unicast, from its own port, to UDP port 547, or through relay agents; the
//! server answers LEASEQUERY-REPLY to where it came from. Only the requestors that
//! `[leasequery] requestors` lists get data; the rest get the NotAllowed status.
//!
//! The lease table keeps no time of the client's last transaction: a binding's expiry is set
//! to the transaction's time plus the valid lifetime given then, so the CLT Time option (46)
//! is derived from it as `now - (expiry - valid lifetime)`, the most recent over the leases
//! reported (0 when every one of them is infinite).

use std::net::Ipv6Addr;
use std::sync::atomic::{AtomicU64, Ordering};

use xdhcp6_proto::{
    DhcpOption, LqQuery, Message, MessageType, MessageWriter, OptionCode, QueryType, RawOptions,
    StatusCode,
};

use super::{DropReason, Engine};
use crate::config::LinkId;
use crate::prefix::Prefix;
use crate::table::{INFINITE, IaKind, Lease, LeaseRecord, LeaseState, RelayData};

/// The most leases one reply reports; a client holding more gets the first ones found (a
/// reply must fit one datagram anyway).
pub const MAX_REPORTED_LEASES: usize = 64;

/// The longest DUID a query may name (RFC 9915 §11.1: 128 octets plus the type).
pub(super) const MAX_DUID_LEN: usize = 130;

/// How a Leasequery was answered, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LeasequeryResult {
    /// A binding was found: the reply holds its Client Data.
    Found,
    /// The client has bindings on several links and the query named none: the reply lists
    /// them in an LQ Client Link option.
    ClientLink,
    /// No binding matches: the reply holds no Client Data.
    NoBinding,
    /// The requestor is not in `[leasequery] requestors` (status NotAllowed).
    NotAllowed,
    /// The query's link-address selects no link, or the address asked about is in no pool
    /// prefix of the link (or of any link) (status NotConfigured).
    NotConfigured,
    /// A query type this server does not answer (status UnknownQueryType).
    UnknownQueryType,
    /// A query without its query option, address or client identifier (status
    /// MalformedQuery).
    MalformedQuery,
}

impl LeasequeryResult {
    /// Every result, for metrics.
    pub const ALL: [LeasequeryResult; 7] = [
        LeasequeryResult::Found,
        LeasequeryResult::ClientLink,
        LeasequeryResult::NoBinding,
        LeasequeryResult::NotAllowed,
        LeasequeryResult::NotConfigured,
        LeasequeryResult::UnknownQueryType,
        LeasequeryResult::MalformedQuery,
    ];

    /// A short name for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            LeasequeryResult::Found => "found",
            LeasequeryResult::ClientLink => "client_link",
            LeasequeryResult::NoBinding => "no_binding",
            LeasequeryResult::NotAllowed => "not_allowed",
            LeasequeryResult::NotConfigured => "not_configured",
            LeasequeryResult::UnknownQueryType => "unknown_query_type",
            LeasequeryResult::MalformedQuery => "malformed_query",
        }
    }
}

/// Replies sent, by [`LeasequeryResult`] (index in [`LeasequeryResult::ALL`]).
#[derive(Debug, Default)]
pub(super) struct LeasequeryCounters([AtomicU64; LeasequeryResult::ALL.len()]);

impl LeasequeryCounters {
    fn count(&self, result: LeasequeryResult) {
        if let Some(index) = LeasequeryResult::ALL.iter().position(|own| *own == result) {
            self.0[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counters that start from these, for the engine that replaces this one on a reload, so
    /// that Prometheus sees no reset.
    pub(super) fn reloaded(&self) -> Self {
        Self(self.get().map(AtomicU64::new))
    }

    pub(super) fn get(&self) -> [u64; LeasequeryResult::ALL.len()] {
        std::array::from_fn(|index| self.0[index].load(Ordering::Relaxed))
    }
}

/// What the server needs of a LEASEQUERY, read in one pass over its options.
pub(super) struct Query<'a> {
    pub(super) xid: u32,
    pub(super) client_id: Option<&'a [u8]>,
    pub(super) server_id: Option<&'a [u8]>,
    /// The OPTION_LQ_QUERY body; `Err` when there are two.
    pub(super) query: Option<Result<&'a [u8], ()>>,
}

impl<'a> Query<'a> {
    pub(super) fn read(message: Message<'a>) -> Result<Self, DropReason> {
        let mut query = Query {
            xid: message.transaction_id(),
            client_id: None,
            server_id: None,
            query: None,
        };
        for option in RawOptions::new(message.options().as_bytes()) {
            let option = option.map_err(|_| DropReason::Malformed)?;
            let id = match OptionCode::from(option.code) {
                OptionCode::ClientId => &mut query.client_id,
                OptionCode::ServerId => &mut query.server_id,
                OptionCode::LqQuery => {
                    query.query = Some(match query.query {
                        None => Ok(option.data),
                        Some(_) => Err(()),
                    });
                    continue;
                }
                _ => continue,
            };
            // RFC 9915 §21.1: each option appears once unless noted otherwise.
            if id.replace(option.data).is_some() {
                return Err(DropReason::DuplicateId);
            }
        }
        Ok(query)
    }
}

/// The leases found for a query, all of one client.
pub(super) struct Found {
    pub(super) duid: Vec<u8>,
    pub(super) leases: Vec<Lease>,
    /// The relay data of the most recent of `leases`, when the caller read it with them (a
    /// Bulk Leasequery walk); `None`: LQ Relay Data looks it up in the table.
    pub(super) relay: Option<RelayData>,
}

impl Engine {
    /// Answers a LEASEQUERY from `requestor` (the datagram's source, or the innermost relay's
    /// peer-address) into `w`, at the writer's position; returns the reply's type.
    pub(super) fn answer_leasequery(
        &self,
        message: Message<'_>,
        requestor: Option<Ipv6Addr>,
        now: u32,
        w: &mut MessageWriter<'_>,
    ) -> Result<MessageType, DropReason> {
        let query = Query::read(message)?;
        // RFC 5007 §4.2.1, in substance:
        // Servers MUST discard any received LEASEQUERY messages that meet any of the following
        // conditions: the message does not include an OPTION_CLIENTID option; the message
        // includes an OPTION_SERVERID option but the contents of the OPTION_SERVERID option
        // do not match the server's identifier.
        let client_id = query.client_id.ok_or(DropReason::MissingClientId)?;
        if query
            .server_id
            .is_some_and(|id| id != self.config.server.duid.as_slice())
        {
            return Err(DropReason::WrongServerId);
        }
        // RFC 5007 §4.3.3, in substance: the server sends a LEASEQUERY-REPLY with the
        // transaction-id of the LEASEQUERY, its Server Identifier and the requestor's Client
        // Identifier.
        w.client_header(MessageType::LeasequeryReply, query.xid)?;
        w.server_id(&self.config.server.duid)?;
        w.client_id(client_id)?;
        let result = self.leasequery_result(&query, requestor, now, w)?;
        self.leasequery.count(result);
        Ok(MessageType::LeasequeryReply)
    }

    /// Writes the body of the reply: a status, the Client Data, or the client's links.
    pub(super) fn leasequery_result(
        &self,
        query: &Query<'_>,
        requestor: Option<Ipv6Addr>,
        now: u32,
        w: &mut MessageWriter<'_>,
    ) -> Result<LeasequeryResult, DropReason> {
        // RFC 5007 §5, in substance:
        // A server SHOULD be configurable to restrict the requestors it answers; a
        // LEASEQUERY from a requestor that is not allowed is answered with the NotAllowed
        // status code.
        if !requestor.is_some_and(|address| self.config.leasequery_allowed(address)) {
            w.status_code(StatusCode::NotAllowed, "requestor not allowed")?;
            return Ok(LeasequeryResult::NotAllowed);
        }
        // RFC 5007 §4.3.3, in substance:
        // If the query is malformed (no OPTION_LQ_QUERY, or one that cannot be read), the
        // server returns the MalformedQuery status code.
        let lq_query = match query.query {
            Some(Ok(body)) => LqQuery::new_checked(body).ok(),
            _ => None,
        };
        let Some(lq_query) = lq_query else {
            w.status_code(StatusCode::MalformedQuery, "one query option is required")?;
            return Ok(LeasequeryResult::MalformedQuery);
        };
        // RFC 5007 §4.3.3, in substance:
        // If the server does not support the query-type, it returns the UnknownQueryType
        // status code.
        let query_type = lq_query.query_type();
        if !matches!(query_type, QueryType::ByAddress | QueryType::ByClientId) {
            w.status_code(StatusCode::UnknownQueryType, "query type not supported")?;
            return Ok(LeasequeryResult::UnknownQueryType);
        }
        // RFC 5007 §4.1.2.1, §4.3.3, in substance:
        // A link-address of 0::0 asks about the client on any link. Otherwise the server
        // uses it to find the link; if it has no link for it, it returns the NotConfigured
        // status code.
        let link_address = lq_query.link_address();
        let link = if link_address.is_unspecified() {
            None
        } else {
            match self.config.link_for_relay(link_address, None) {
                Some(link) => Some(link),
                None => {
                    w.status_code(StatusCode::NotConfigured, "no link for the link-address")?;
                    return Ok(LeasequeryResult::NotConfigured);
                }
            }
        };
        let options = lq_query.options();
        let found = match query_type {
            // RFC 5007 §4.1.2.1, in substance:
            // QUERY_BY_ADDRESS: the query options hold an OPTION_IAADDR with the address;
            // the server returns the binding of the client that holds it (an address inside
            // a delegated prefix finds the prefix's binding).
            QueryType::ByAddress => {
                let Ok(Some(DhcpOption::IaAddr(address))) = options.find(OptionCode::IaAddr) else {
                    w.status_code(StatusCode::MalformedQuery, "no IA Address option")?;
                    return Ok(LeasequeryResult::MalformedQuery);
                };
                let address = address.addr();
                // RFC 5007 §4.1.3, in substance:
                // NotConfigured: the server does not have the target address or link in its
                // configuration. (An address of a pool prefix that another server of an RFC
                // 6853 set hands out is configured here: it gets no Client Data.)
                if !self.configures(address, link) {
                    w.status_code(
                        StatusCode::NotConfigured,
                        "address not in a configured prefix",
                    )?;
                    return Ok(LeasequeryResult::NotConfigured);
                }
                self.by_address(address, link, now)
            }
            // RFC 5007 §4.1.2.1, in substance:
            // QUERY_BY_CLIENTID: the query options hold the OPTION_CLIENTID of the client
            // whose bindings are asked for.
            _ => {
                let duid = match options.find_raw(OptionCode::ClientId) {
                    Ok(Some(duid)) if !duid.is_empty() && duid.len() <= MAX_DUID_LEN => duid,
                    _ => {
                        w.status_code(StatusCode::MalformedQuery, "no Client Identifier option")?;
                        return Ok(LeasequeryResult::MalformedQuery);
                    }
                };
                self.by_client_id(duid, link, now)
            }
        };
        // RFC 5007 §4.3.3, in substance:
        // If the server finds no binding for the query, it returns a LEASEQUERY-REPLY without
        // an OPTION_CLIENT_DATA option.
        let Some(found) = found else {
            return Ok(LeasequeryResult::NoBinding);
        };
        // RFC 5007 §4.1.2.5, §4.3.3, in substance:
        // The Client Link option identifies the links on which the client has one or more
        // bindings. It is used in reply to a query when no link-address was specified and the
        // client is found to be on more than one link; the reply then holds no Client Data,
        // and the requestor asks again for one link.
        let mut links: Vec<LinkId> = found.leases.iter().map(|lease| lease.link).collect();
        links.sort_unstable();
        links.dedup();
        if link.is_none() && links.len() > 1 {
            let addresses: Vec<Ipv6Addr> = links
                .iter()
                .filter_map(|link| self.link_address_of(*link))
                .collect();
            w.lq_client_link(&addresses)?;
            return Ok(LeasequeryResult::ClientLink);
        }
        self.write_client_data(&found, now, w)?;
        Ok(LeasequeryResult::Found)
    }

    /// The bound lease on `address` (of an IA_NA, or inside a delegated prefix) and the other
    /// leases of the same IA, on `link` or any.
    fn by_address(&self, address: Ipv6Addr, link: Option<LinkId>, now: u32) -> Option<Found> {
        let live = |record: &LeaseRecord| {
            record.lease.state == LeaseState::Bound
                && !record.lease.is_expired(now)
                && link.is_none_or(|link| record.lease.link == link)
        };
        let table = &self.table;
        let record = table
            .lease_at(u128::from(address), IaKind::Na)
            .filter(|record| live(record))
            .or_else(|| {
                // A delegated prefix is found by its first address: mask the address to each
                // delegated length the links (or the one link) hand out.
                self.config
                    .links
                    .iter()
                    .filter(|own| link.is_none_or(|link| own.id == link))
                    .flat_map(|own| own.pd_pools.iter())
                    .filter(|pool| pool.prefix.contains(address))
                    .find_map(|pool| {
                        let first = Prefix::containing(address, pool.delegated_len).bits();
                        table.lease_at(first, IaKind::Pd).filter(|record| {
                            record.lease.prefix_len == pool.delegated_len && live(record)
                        })
                    })
            })?;
        let lease = record.lease;
        let key = table.ia_key(record.duid.as_bytes(), lease.iaid, lease.kind, lease.link);
        let mut leases = Vec::new();
        table.leases_of(&key, |other| {
            if other.state == LeaseState::Bound
                && !other.is_expired(now)
                && leases.len() < MAX_REPORTED_LEASES
            {
                leases.push(other);
            }
        });
        if leases.is_empty() {
            // Released between the two lookups.
            return None;
        }
        Some(Found {
            duid: record.duid.as_bytes().to_vec(),
            leases,
            relay: None,
        })
    }

    /// Every bound lease of the client `duid`, on `link` or any.
    ///
    /// The client index places every IA of one DUID in one client shard: this walks that
    /// shard only ([`crate::table::LeaseTable::client_leases`]).
    fn by_client_id(&self, duid: &[u8], link: Option<LinkId>, now: u32) -> Option<Found> {
        let mut leases = Vec::new();
        self.table.client_leases(duid, |record| {
            if record.lease.state == LeaseState::Bound
                && !record.lease.is_expired(now)
                && link.is_none_or(|link| record.lease.link == link)
                && leases.len() < MAX_REPORTED_LEASES
            {
                leases.push(record.lease);
            }
        });
        if leases.is_empty() {
            return None;
        }
        // A stable order: by link, kind, IAID, address.
        leases.sort_unstable_by_key(|lease| {
            (lease.link, lease.kind == IaKind::Pd, lease.iaid, lease.addr)
        });
        Some(Found {
            duid: duid.to_vec(),
            leases,
            relay: None,
        })
    }

    /// Writes OPTION_CLIENT_DATA for `found`.
    pub(super) fn write_client_data(
        &self,
        found: &Found,
        now: u32,
        w: &mut MessageWriter<'_>,
    ) -> Result<(), DropReason> {
        // RFC 5007 §4.1.2.2, in substance:
        // An OPTION_CLIENT_DATA option in a LEASEQUERY-REPLY message MUST minimally contain
        // the following options: OPTION_CLIENTID, OPTION_IAADDR and/or OPTION_IAPREFIX,
        // OPTION_CLT_TIME.
        let mark = w.begin_client_data()?;
        w.client_id(&found.duid)?;
        for lease in &found.leases {
            // RFC 5007 §4.1.2.2, in substance: the lifetimes are those remaining at the time
            // of the reply.
            let (preferred, valid) = remaining(lease, now);
            match lease.kind {
                IaKind::Na => w.ia_address(lease.ip(), preferred, valid)?,
                IaKind::Pd => w.ia_prefix(preferred, valid, lease.prefix_len, lease.ip())?,
            }
        }
        // RFC 5007 §4.1.2.3, in substance:
        // The Client Last Transaction Time option ... is the number of seconds since the
        // server last communicated with the client (on that link).
        w.clt_time(since_last_transaction(&found.leases, now))?;
        self.write_relay_data(found, w)?;
        w.end_option(mark)?;
        Ok(())
    }

    /// Writes OPTION_LQ_RELAY_DATA (47) from the relay data stored with the binding of the
    /// client's last transaction among `found`'s leases (the relay data of each lease is that
    /// of the last message that bound or extended it).
    ///
    /// RFC 5007 §4.1.2.4, in substance:
    /// The Relay Data option provides the relay agent information used when the client last
    /// communicated with the server. peer-address: the address of the relay agent from which
    /// the relayed message was received by the server. DHCP-relay-message: the last complete
    /// relayed message, excluding the client's DHCP message OPTION_RELAY_MSG, received by the
    /// server. The option MUST NOT be returned if the server does not have such information,
    /// either because the client communicated directly (without relay agent) with the server
    /// or if the server did not retain such information.
    ///
    /// The peer-address is the datagram's source address stored with the relay data; relay
    /// data stored without it (replayed from a journal of an older format, until the client's
    /// next Renew or Rebind) is not returned.
    fn write_relay_data(&self, found: &Found, w: &mut MessageWriter<'_>) -> Result<(), DropReason> {
        let last = found
            .leases
            .iter()
            .max_by_key(|lease| lease.expires.saturating_sub(lease.lifetimes.valid));
        let Some(last) = last else {
            return Ok(());
        };
        let relay = match &found.relay {
            Some(relay) => Some(relay.clone()),
            None => self
                .table
                .lease_at(last.addr, last.kind)
                .filter(|record| record.duid.as_bytes() == found.duid.as_slice())
                .and_then(|record| record.relay),
        };
        let Some((relay, source)) = relay.and_then(|relay| relay.source().map(|at| (relay, at)))
        else {
            return Ok(());
        };
        let mut message = Vec::with_capacity(relay.relay_message_len());
        relay.write_relay_message(&mut message);
        w.lq_relay_data(source, &message)?;
        Ok(())
    }

    /// Whether `address` lies in a pool prefix (addresses or delegated prefixes) of `link`, or
    /// of any link.
    fn configures(&self, address: Ipv6Addr, link: Option<LinkId>) -> bool {
        self.config
            .links
            .iter()
            .filter(|own| link.is_none_or(|link| own.id == link))
            .any(|own| {
                own.na_pools
                    .iter()
                    .any(|pool| pool.prefix.contains(address))
                    || own
                        .pd_pools
                        .iter()
                        .any(|pool| pool.prefix.contains(address))
            })
    }

    /// The link-address that selects `link` in a query: the first address of its first relay
    /// prefix (address pool prefixes, then `relay-prefixes`) that maps back to it.
    fn link_address_of(&self, link: LinkId) -> Option<Ipv6Addr> {
        self.config
            .link(link)
            .relay_prefixes
            .iter()
            .map(Prefix::addr)
            .find(|address| self.config.link_for_relay(*address, None) == Some(link))
    }
}

/// The preferred and valid lifetimes `lease` has left at `now` (infinite stays infinite).
fn remaining(lease: &Lease, now: u32) -> (u32, u32) {
    let lifetimes = lease.lifetimes;
    if lease.expires == INFINITE || lifetimes.valid == INFINITE {
        return (lifetimes.preferred, lifetimes.valid);
    }
    let valid = lease.expires.saturating_sub(now);
    let elapsed = lifetimes.valid.saturating_sub(valid);
    let preferred = if lifetimes.preferred == INFINITE {
        INFINITE
    } else {
        lifetimes.preferred.saturating_sub(elapsed)
    };
    (preferred, valid)
}

/// Seconds since the client's last transaction: the expiry of a binding is that
/// transaction's time plus the valid lifetime given then (the table keeps no other time).
fn since_last_transaction(leases: &[Lease], now: u32) -> u32 {
    leases
        .iter()
        .filter(|lease| lease.expires != INFINITE && lease.lifetimes.valid != INFINITE)
        .map(|lease| now.saturating_sub(lease.expires.saturating_sub(lease.lifetimes.valid)))
        .min()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Lifetimes;

    fn lease(preferred: u32, valid: u32, expires: u32) -> Lease {
        Lease {
            addr: 1,
            prefix_len: 128,
            kind: IaKind::Na,
            iaid: 1,
            link: LinkId(0),
            state: LeaseState::Bound,
            lifetimes: Lifetimes { preferred, valid },
            expires,
        }
    }

    #[test]
    fn remaining_lifetimes_count_down_from_the_last_transaction() {
        // Bound at 1000 with 3600/7200: expires at 8200.
        let bound = lease(3600, 7200, 8200);
        assert_eq!(remaining(&bound, 1000), (3600, 7200));
        assert_eq!(remaining(&bound, 1100), (3500, 7100));
        assert_eq!(remaining(&bound, 5000), (0, 3200));
        assert_eq!(remaining(&bound, 9000), (0, 0));
        let forever = lease(INFINITE, INFINITE, INFINITE);
        assert_eq!(remaining(&forever, 5000), (INFINITE, INFINITE));
    }

    #[test]
    fn last_transaction_is_the_most_recent_binding() {
        let older = lease(3600, 7200, 8200); // at 1000
        let newer = lease(3600, 7200, 8700); // at 1500
        assert_eq!(since_last_transaction(&[older, newer], 2000), 500);
        assert_eq!(since_last_transaction(&[older], 2000), 1000);
        assert_eq!(
            since_last_transaction(&[lease(INFINITE, INFINITE, INFINITE)], 2000),
            0
        );
    }
}
