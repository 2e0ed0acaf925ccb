//! The message layer every scenario shares: client messages written with [`MessageWriter`]
//! (inside a Relay-forward for a relayed client) and replies taken apart with [`Packet`].

use std::net::Ipv6Addr;

use xdhcp6_proto::{
    DhcpOption, IaNa, IaPd, Message, MessageType, MessageWriter, OptionCode, Packet, StatusCode,
    WriteError,
};

use crate::population::{ENTERPRISE, IAID_NA, IAID_PD, Population};
use crate::scenario::Sender;

/// One request/reply exchange of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exchange {
    /// Solicit, answered by Advertise (or Reply with Rapid Commit).
    Solicit,
    /// Request, answered by Reply.
    Request,
    /// Renew, answered by Reply.
    Renew,
    /// Rebind, answered by Reply.
    Rebind,
    /// Release, answered by Reply.
    Release,
    /// Information-request, answered by Reply.
    Information,
}

impl Exchange {
    /// Every exchange, in counter order.
    pub const ALL: [Exchange; 6] = [
        Exchange::Solicit,
        Exchange::Request,
        Exchange::Renew,
        Exchange::Rebind,
        Exchange::Release,
        Exchange::Information,
    ];

    /// The index in [`crate::stats::Stats::sent`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The message type the client sends.
    pub fn msg_type(self) -> MessageType {
        match self {
            Exchange::Solicit => MessageType::Solicit,
            Exchange::Request => MessageType::Request,
            Exchange::Renew => MessageType::Renew,
            Exchange::Rebind => MessageType::Rebind,
            Exchange::Release => MessageType::Release,
            Exchange::Information => MessageType::InformationRequest,
        }
    }

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Exchange::Solicit => "solicit",
            Exchange::Request => "request",
            Exchange::Renew => "renew",
            Exchange::Rebind => "rebind",
            Exchange::Release => "release",
            Exchange::Information => "information_request",
        }
    }
}

/// The identity associations a message carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IaSet {
    /// An IA_NA (addresses).
    pub na: bool,
    /// An IA_PD (delegated prefixes).
    pub pd: bool,
}

impl IaSet {
    /// IA_NA only.
    pub const NA: IaSet = IaSet {
        na: true,
        pd: false,
    };
    /// IA_PD only.
    pub const PD: IaSet = IaSet {
        na: false,
        pd: true,
    };
    /// Both.
    pub const BOTH: IaSet = IaSet { na: true, pd: true };
    /// Neither.
    pub const NONE: IaSet = IaSet {
        na: false,
        pd: false,
    };

    /// The name on the command line (`--ia`): `na`, `pd`, `na+pd` or `none`.
    pub fn name(self) -> &'static str {
        match (self.na, self.pd) {
            (true, false) => "na",
            (false, true) => "pd",
            (true, true) => "na+pd",
            (false, false) => "none",
        }
    }
}

impl std::str::FromStr for IaSet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "na" => Ok(IaSet::NA),
            "pd" => Ok(IaSet::PD),
            "na+pd" => Ok(IaSet::BOTH),
            other => Err(format!("--ia {other:?}: expected na, pd or na+pd")),
        }
    }
}

/// What an emulated relay wraps around a client message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayWrap<'a> {
    /// link-address: selects the server's link.
    pub link_address: Ipv6Addr,
    /// peer-address: the client's link-local address.
    pub peer_address: Ipv6Addr,
    /// Interface-Id option body.
    pub interface_id: &'a [u8],
    /// Remote-Id option body (after the enterprise number).
    pub remote_id: &'a [u8],
}

/// A client message to write.
#[derive(Clone, Copy, Debug)]
pub struct ClientMessage<'a> {
    /// Which exchange it starts.
    pub exchange: Exchange,
    /// Transaction id (24 bits).
    pub xid: u32,
    /// The client's DUID.
    pub client_id: &'a [u8],
    /// The chosen server's DUID (Request, Renew, Release).
    pub server_id: Option<&'a [u8]>,
    /// Elapsed Time: hundredths of a second since the exchange began.
    pub elapsed: u16,
    /// The IAs to include.
    pub ias: IaSet,
    /// The addresses to include in the IA_NA (Request, Renew, Rebind, Release).
    pub addresses: &'a [Ipv6Addr],
    /// The prefixes to include in the IA_PD.
    pub prefixes: &'a [(Ipv6Addr, u8)],
    /// Add Rapid Commit to a Solicit.
    pub rapid_commit: bool,
    /// Relay-forward wrapping, if relayed.
    pub relay: Option<RelayWrap<'a>>,
}

impl ClientMessage<'_> {
    /// Writes the message (inside a Relay-forward if relayed) into `buf`, returning its length.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, WriteError> {
        let mut w = MessageWriter::new(buf);
        match self.relay {
            Some(relay) => {
                w.relay_header(
                    MessageType::RelayForw,
                    0,
                    relay.link_address,
                    relay.peer_address,
                )?;
                w.interface_id(relay.interface_id)?;
                w.remote_id(ENTERPRISE, relay.remote_id)?;
                let m = w.begin_option(OptionCode::RelayMsg)?;
                self.write_body(&mut w)?;
                w.end_option(m)?;
            }
            None => self.write_body(&mut w)?,
        }
        w.finish()
    }

    fn write_body(&self, w: &mut MessageWriter<'_>) -> Result<(), WriteError> {
        w.client_header(self.exchange.msg_type(), self.xid)?;
        w.client_id(self.client_id)?;
        if let Some(server_id) = self.server_id {
            w.server_id(server_id)?;
        }
        w.elapsed_time(self.elapsed)?;
        if self.exchange != Exchange::Release {
            w.oro(&[OptionCode::DnsServers, OptionCode::DomainList])?;
        }
        if self.rapid_commit && self.exchange == Exchange::Solicit {
            w.rapid_commit()?;
        }
        if self.exchange == Exchange::Information {
            return Ok(());
        }
        if self.ias.na {
            let addresses = self.addresses;
            w.ia_na(IAID_NA, 0, 0, |w| {
                addresses.iter().try_for_each(|&a| w.ia_address(a, 0, 0))
            })?;
        }
        if self.ias.pd {
            let prefixes = self.prefixes;
            w.ia_pd(IAID_PD, 0, 0, |w| {
                prefixes
                    .iter()
                    .try_for_each(|&(p, len)| w.ia_prefix(0, 0, len, p))
            })?;
        }
        Ok(())
    }

    /// Writes the message as client `client` of `population` sends it: inside a Relay-forward
    /// from its relay (link-address, the client's link-local address as peer-address, the
    /// relay's Interface-Id and the client's Remote-Id) when it has one.
    pub fn write_as(
        self,
        population: &Population,
        client: u32,
        buf: &mut [u8],
    ) -> Result<usize, WriteError> {
        let Some(relay) = population.relay_of(client) else {
            return Self {
                relay: None,
                ..self
            }
            .write(buf);
        };
        let interface_id = relay.interface_id();
        let remote_id = population.remote_id(client);
        let msg = ClientMessage {
            exchange: self.exchange,
            xid: self.xid,
            client_id: self.client_id,
            server_id: self.server_id,
            elapsed: self.elapsed,
            ias: self.ias,
            addresses: self.addresses,
            prefixes: self.prefixes,
            rapid_commit: self.rapid_commit,
            relay: Some(RelayWrap {
                link_address: relay.link_address,
                peer_address: population.link_local(client),
                interface_id: &interface_id,
                remote_id: &remote_id,
            }),
        };
        msg.write(buf)
    }
}

/// Who sends client `client`'s messages: the client, or the relay in front of it.
pub fn sender_of(population: &Population, client: u32) -> Sender {
    Sender {
        client,
        relay: population.relay_of(client).map(|r| r.index),
    }
}

/// Whether the relay part of a reply is what client `client`'s relay expects: none for a
/// client on the link; for a relayed one, a Relay-reply to the client's link-local address
/// with the relay's own Interface-Id.
pub fn relay_matches(
    population: &Population,
    client: u32,
    answer: Option<RelayAnswer<'_>>,
) -> bool {
    match (population.relay_of(client), answer) {
        (None, None) => true,
        (Some(relay), Some(answer)) => {
            let id = relay.interface_id();
            answer.peer_address == population.link_local(client)
                && answer.interface_id == Some(&id[..])
        }
        _ => false,
    }
}

/// An address or prefix of a reply with its lifetimes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IaLease<T> {
    /// The address, or the prefix and its length.
    pub lease: T,
    /// Preferred lifetime, seconds.
    pub preferred: u32,
    /// Valid lifetime, seconds (0: the server withdraws it).
    pub valid: u32,
}

/// An IA as the server answered it (the first IA option with the client's IAID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IaAnswer<T> {
    /// The IA option was present.
    pub present: bool,
    /// Its Status Code, if any.
    pub status: Option<StatusCode>,
    /// The first address/prefix with a non-zero valid lifetime.
    pub lease: Option<T>,
    /// T1, seconds (0: the client chooses).
    pub t1: u32,
    /// T2, seconds (0: the client chooses).
    pub t2: u32,
}

impl<T> Default for IaAnswer<T> {
    fn default() -> Self {
        Self {
            present: false,
            status: None,
            lease: None,
            t1: 0,
            t2: 0,
        }
    }
}

/// The relay part of a Relay-reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayAnswer<'a> {
    /// peer-address.
    pub peer_address: Ipv6Addr,
    /// Interface-Id option body, if echoed.
    pub interface_id: Option<&'a [u8]>,
}

/// A reply taken apart into the values validation needs; borrows the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply<'a> {
    /// Message type of the (inner) message.
    pub msg_type: MessageType,
    /// Transaction id.
    pub xid: u32,
    /// Client Identifier body.
    pub client_id: Option<&'a [u8]>,
    /// Server Identifier body.
    pub server_id: Option<&'a [u8]>,
    /// Top-level Status Code.
    pub status: Option<StatusCode>,
    /// Preference option (an Advertise's), if any.
    pub preference: Option<u8>,
    /// Rapid Commit present.
    pub rapid_commit: bool,
    /// IA_NA with IAIDs [`IAID_NA`].
    pub na: IaAnswer<Ipv6Addr>,
    /// IA_PD with IAID [`IAID_PD`].
    pub pd: IaAnswer<(Ipv6Addr, u8)>,
    /// Set for a Relay-reply.
    pub relay: Option<RelayAnswer<'a>>,
    /// The IA_NA read, for [`Reply::na_leases`].
    na_view: Option<IaNa<'a>>,
    /// The IA_PD read, for [`Reply::pd_leases`].
    pd_view: Option<IaPd<'a>>,
}

/// The transaction id of an echoed client message, inside a Relay-forward when relayed.
pub fn echo_xid(datagram: &[u8]) -> Option<u32> {
    match Packet::parse(datagram).ok()? {
        Packet::Client(msg) => Some(msg.transaction_id()),
        Packet::Relay(relay) => relay.options().find_map(|opt| match opt {
            Ok(DhcpOption::RelayMsg(inner)) => Message::new_checked(inner)
                .ok()
                .map(|msg| msg.transaction_id()),
            _ => None,
        }),
    }
}

/// Why a datagram is not a reply at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

impl<'a> Reply<'a> {
    /// Parses a datagram from the server: a client message or a single-hop Relay-reply.
    pub fn parse(datagram: &'a [u8]) -> Result<Self, Malformed> {
        match Packet::parse(datagram).map_err(|_| Malformed)? {
            Packet::Client(msg) => Self::from_message(msg, None),
            Packet::Relay(relay) => {
                if relay.msg_type() != MessageType::RelayRepl {
                    return Err(Malformed);
                }
                let mut interface_id = None;
                let mut inner = None;
                for opt in relay.options() {
                    match opt.map_err(|_| Malformed)? {
                        DhcpOption::InterfaceId(id) => interface_id = Some(id),
                        DhcpOption::RelayMsg(m) => inner = Some(m),
                        _ => {}
                    }
                }
                let inner = inner.ok_or(Malformed)?;
                let msg = Message::new_checked(inner).map_err(|_| Malformed)?;
                Self::from_message(
                    msg,
                    Some(RelayAnswer {
                        peer_address: relay.peer_address(),
                        interface_id,
                    }),
                )
            }
        }
    }

    fn from_message(msg: Message<'a>, relay: Option<RelayAnswer<'a>>) -> Result<Self, Malformed> {
        let mut reply = Reply {
            msg_type: msg.msg_type(),
            xid: msg.transaction_id(),
            client_id: None,
            server_id: None,
            status: None,
            preference: None,
            rapid_commit: false,
            na: IaAnswer::default(),
            pd: IaAnswer::default(),
            relay,
            na_view: None,
            pd_view: None,
        };
        for opt in msg.options() {
            match opt.map_err(|_| Malformed)? {
                DhcpOption::ClientId(d) => reply.client_id = Some(d.as_bytes()),
                DhcpOption::ServerId(d) => reply.server_id = Some(d.as_bytes()),
                DhcpOption::StatusCode { code, .. } => reply.status = Some(code),
                DhcpOption::Preference(p) => reply.preference = Some(p),
                DhcpOption::RapidCommit => reply.rapid_commit = true,
                DhcpOption::IaNa(ia) if ia.iaid() == IAID_NA && !reply.na.present => {
                    reply.na.present = true;
                    reply.na.t1 = ia.t1();
                    reply.na.t2 = ia.t2();
                    reply.na_view = Some(ia);
                    for o in ia.options() {
                        match o.map_err(|_| Malformed)? {
                            DhcpOption::StatusCode { code, .. } => reply.na.status = Some(code),
                            DhcpOption::IaAddr(a) if a.valid_lifetime() > 0 => {
                                reply.na.lease.get_or_insert(a.addr());
                            }
                            _ => {}
                        }
                    }
                }
                DhcpOption::IaPd(ia) if ia.iaid() == IAID_PD && !reply.pd.present => {
                    reply.pd.present = true;
                    reply.pd.t1 = ia.t1();
                    reply.pd.t2 = ia.t2();
                    reply.pd_view = Some(ia);
                    for o in ia.options() {
                        match o.map_err(|_| Malformed)? {
                            DhcpOption::StatusCode { code, .. } => reply.pd.status = Some(code),
                            DhcpOption::IaPrefix(p) if p.valid_lifetime() > 0 => {
                                reply.pd.lease.get_or_insert((p.prefix(), p.prefix_len()));
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(reply)
    }

    /// Every address of the IA_NA in order, withdrawn ones (valid lifetime 0) included.
    pub fn na_leases(&self) -> impl Iterator<Item = IaLease<Ipv6Addr>> + 'a {
        // `parse` read every option once already: none fails here.
        let options = self.na_view.map(|ia| ia.options().flatten());
        options.into_iter().flatten().filter_map(|o| match o {
            DhcpOption::IaAddr(a) => Some(IaLease {
                lease: a.addr(),
                preferred: a.preferred_lifetime(),
                valid: a.valid_lifetime(),
            }),
            _ => None,
        })
    }

    /// Every prefix of the IA_PD in order, withdrawn ones (valid lifetime 0) included.
    pub fn pd_leases(&self) -> impl Iterator<Item = IaLease<(Ipv6Addr, u8)>> + 'a {
        let options = self.pd_view.map(|ia| ia.options().flatten());
        options.into_iter().flatten().filter_map(|o| match o {
            DhcpOption::IaPrefix(p) => Some(IaLease {
                lease: (p.prefix(), p.prefix_len()),
                preferred: p.preferred_lifetime(),
                valid: p.valid_lifetime(),
            }),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn solicit_parses_back() {
        let duid = [0, 3, 0, 1, 2, 0xbe, 0, 0, 0, 7];
        let msg = ClientMessage {
            exchange: Exchange::Solicit,
            xid: 0x12_3456,
            client_id: &duid,
            server_id: None,
            elapsed: 0,
            ias: IaSet::BOTH,
            addresses: &[],
            prefixes: &[],
            rapid_commit: true,
            relay: None,
        };
        let mut buf = [0u8; 512];
        let len = msg.write(&mut buf).unwrap();
        let Packet::Client(m) = Packet::parse(&buf[..len]).unwrap() else {
            panic!("not a client message");
        };
        assert_eq!(m.msg_type(), MessageType::Solicit);
        assert_eq!(m.transaction_id(), 0x12_3456);
        let opts: Vec<_> = m.options().map(|o| o.unwrap()).collect();
        assert!(opts.contains(&DhcpOption::RapidCommit));
        assert!(
            opts.iter()
                .any(|o| matches!(o, DhcpOption::ClientId(d) if d.as_bytes() == duid))
        );
        assert!(
            opts.iter()
                .any(|o| matches!(o, DhcpOption::IaNa(ia) if ia.iaid() == IAID_NA))
        );
        assert!(
            opts.iter()
                .any(|o| matches!(o, DhcpOption::IaPd(ia) if ia.iaid() == IAID_PD))
        );
    }

    #[test]
    fn relayed_request_parses_back() {
        let duid = [0, 3, 0, 1, 2, 0xbe, 0, 0, 0, 7];
        let server = [0, 3, 0, 1, 9, 9, 9, 9, 9, 9];
        let msg = ClientMessage {
            exchange: Exchange::Request,
            xid: 7,
            client_id: &duid,
            server_id: Some(&server),
            elapsed: 0,
            ias: IaSet::NA,
            addresses: &[ip("2001:db8:1::55")],
            prefixes: &[],
            rapid_commit: false,
            relay: Some(RelayWrap {
                link_address: ip("2001:db8:1::1"),
                peer_address: ip("fe80::1"),
                interface_id: b"bench0001",
                remote_id: b"line0001",
            }),
        };
        let mut buf = [0u8; 512];
        let len = msg.write(&mut buf).unwrap();
        let Packet::Relay(r) = Packet::parse(&buf[..len]).unwrap() else {
            panic!("not relayed");
        };
        assert_eq!(r.msg_type(), MessageType::RelayForw);
        assert_eq!(r.link_address(), ip("2001:db8:1::1"));
        assert_eq!(r.peer_address(), ip("fe80::1"));
        let opts: Vec<_> = r.options().map(|o| o.unwrap()).collect();
        assert!(opts.contains(&DhcpOption::InterfaceId(b"bench0001")));
        assert!(opts.iter().any(|o| matches!(
            o,
            DhcpOption::RemoteId {
                enterprise: ENTERPRISE,
                ..
            }
        )));
        let inner = r.relayed_message().unwrap();
        let m = Message::new_checked(inner).unwrap();
        assert_eq!(m.msg_type(), MessageType::Request);
        let ia = m
            .options()
            .find_map(|o| match o.unwrap() {
                DhcpOption::IaNa(ia) => Some(ia),
                _ => None,
            })
            .unwrap();
        let addr = ia
            .options()
            .find_map(|o| match o.unwrap() {
                DhcpOption::IaAddr(a) => Some(a.addr()),
                _ => None,
            })
            .unwrap();
        assert_eq!(addr, ip("2001:db8:1::55"));
    }

    #[test]
    fn reply_views_read_ias_and_relay() {
        let mut inner = [0u8; 256];
        let mut w = MessageWriter::client(&mut inner, MessageType::Reply, 99).unwrap();
        w.client_id(&[0, 3, 0, 1, 1, 2, 3, 4, 5, 6]).unwrap();
        w.server_id(&[0, 3, 0, 1, 6, 5, 4, 3, 2, 1]).unwrap();
        w.ia_na(IAID_NA, 10, 16, |w| {
            w.ia_address(ip("2001:db8:1::9"), 20, 30)
        })
        .unwrap();
        w.ia_pd(IAID_PD, 10, 16, |w| {
            w.ia_prefix(20, 30, 56, ip("2001:db8:100:ff00::"))
        })
        .unwrap();
        let n = w.finish().unwrap();
        let mut outer = [0u8; 512];
        let mut w = MessageWriter::relay(
            &mut outer,
            MessageType::RelayRepl,
            0,
            ip("2001:db8:1::1"),
            ip("fe80::7"),
        )
        .unwrap();
        w.interface_id(b"x").unwrap();
        w.relay_msg(&inner[..n]).unwrap();
        let m = w.finish().unwrap();
        let reply = Reply::parse(&outer[..m]).unwrap();
        assert_eq!(reply.msg_type, MessageType::Reply);
        assert_eq!(reply.xid, 99);
        assert_eq!(reply.na.lease, Some(ip("2001:db8:1::9")));
        assert_eq!(reply.pd.lease, Some((ip("2001:db8:100:ff00::"), 56)));
        let relay = reply.relay.unwrap();
        assert_eq!(relay.peer_address, ip("fe80::7"));
        assert_eq!(relay.interface_id, Some(&b"x"[..]));
        assert_eq!(Reply::parse(&[7, 0]), Err(Malformed));
        assert_eq!(Reply::parse(&[12; 40]), Err(Malformed));
    }

    #[test]
    fn reply_lists_every_lease_with_its_lifetimes() {
        let mut buf = [0u8; 512];
        let mut w = MessageWriter::client(&mut buf, MessageType::Advertise, 5).unwrap();
        w.preference(7).unwrap();
        w.ia_na(IAID_NA, 10, 16, |w| {
            w.ia_address(ip("2001:db8:1::1"), 0, 0)?;
            w.ia_address(ip("2001:db8:1::2"), 20, 30)
        })
        .unwrap();
        w.ia_pd(IAID_PD, 11, 17, |w| {
            w.ia_prefix(21, 31, 64, ip("2001:db8:100:1::"))
        })
        .unwrap();
        let n = w.finish().unwrap();
        let reply = Reply::parse(&buf[..n]).unwrap();
        assert_eq!(reply.preference, Some(7));
        assert_eq!((reply.na.t1, reply.na.t2), (10, 16));
        assert_eq!((reply.pd.t1, reply.pd.t2), (11, 17));
        // The first lease with a valid lifetime; the withdrawn one before it is listed too.
        assert_eq!(reply.na.lease, Some(ip("2001:db8:1::2")));
        let na: Vec<_> = reply.na_leases().collect();
        assert_eq!(
            na,
            [
                IaLease {
                    lease: ip("2001:db8:1::1"),
                    preferred: 0,
                    valid: 0
                },
                IaLease {
                    lease: ip("2001:db8:1::2"),
                    preferred: 20,
                    valid: 30
                }
            ]
        );
        let pd: Vec<_> = reply.pd_leases().collect();
        assert_eq!(
            pd,
            [IaLease {
                lease: (ip("2001:db8:100:1::"), 64),
                preferred: 21,
                valid: 31
            }]
        );
    }

    #[test]
    fn the_message_carries_every_address() {
        let addrs = [ip("2001:db8:1::1"), ip("2001:db8:1:0:8000::1")];
        let m = ClientMessage {
            exchange: Exchange::Rebind,
            xid: 7,
            client_id: &[0, 3, 0, 1, 1, 2, 3, 4, 5, 6],
            server_id: None,
            elapsed: 150,
            ias: IaSet::NA,
            addresses: &addrs,
            prefixes: &[],
            rapid_commit: false,
            relay: None,
        };
        let mut buf = [0u8; 512];
        let n = m.write(&mut buf).unwrap();
        let Packet::Client(msg) = Packet::parse(&buf[..n]).unwrap() else {
            panic!()
        };
        let mut found = Vec::new();
        for o in msg.options() {
            match o.unwrap() {
                DhcpOption::IaNa(ia) => {
                    for a in ia.options() {
                        if let DhcpOption::IaAddr(a) = a.unwrap() {
                            found.push(a.addr());
                        }
                    }
                }
                DhcpOption::ElapsedTime(e) => assert_eq!(e, 150),
                DhcpOption::ServerId(_) => panic!("a Rebind names no server"),
                _ => {}
            }
        }
        assert_eq!(found, addrs);
    }
}
