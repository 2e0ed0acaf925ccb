//! A conversation harness for tests of the engine and of what embeds it (the `testing`
//! feature): the engine's conversation tests and simulations, the daemon's metrics tests.
//!
//! [`Client`] writes every client message (optionally relayed through one or more relays),
//! [`Server`] drives an [`Engine`] on a virtual clock and collects its lease events, and
//! [`ReplyView`] is a reply taken apart into plain values that tests compare against.

pub mod bulk_leasequery;
pub mod leasequery;

use std::net::Ipv6Addr;
use std::sync::Arc;

use crate::alloc::SaltKey;
use crate::config::{Config, LinkId};
use crate::proto::{
    DhcpOption, Message, MessageType, MessageWriter, OptionCode, Packet, StatusCode,
};
use crate::table::{
    DuidBuf, EventKind, IaKind, Lease, LeaseEvent, LeaseRecord, LeaseState, LeaseTable, Lifetimes,
};
use crate::{Arrival, Context, Destination, DropReason, Engine, Outcome, Peer};

/// The virtual clock's start: any Unix time works, the engine only compares.
pub const T0: u32 = 1_750_000_000;

/// A reply buffer large enough for every test message.
pub const REPLY_BUF: usize = 4096;

/// A validated configuration from TOML text.
pub fn config(toml: &str) -> Arc<Config> {
    match Config::from_toml_str(toml, "test.toml") {
        Ok(config) => Arc::new(config),
        Err(error) => panic!("test configuration does not load: {error}"),
    }
}

/// A bound address lease for tests of what stores and replays leases (the journal, its
/// compaction): `duid`'s IA_NA `iaid` holds the /128 `addr` on `link`, preferred 300 s,
/// valid 600 s, expiring at 1600, without relay data.
pub fn bound_lease(duid: &[u8], iaid: u32, addr: u128, link: LinkId) -> LeaseRecord {
    LeaseRecord::new(
        DuidBuf::new(duid),
        Lease {
            addr,
            prefix_len: 128,
            kind: IaKind::Na,
            iaid,
            link,
            state: LeaseState::Bound,
            lifetimes: Lifetimes {
                preferred: 300,
                valid: 600,
            },
            expires: 1600,
        },
    )
}

/// A DUID-LLT (type 1, Ethernet) whose link-layer address is `n`'s low 48 bits.
pub fn duid_llt(n: u64) -> Vec<u8> {
    let mut duid = vec![0, 1, 0, 1, 0x2e, 0, 0, 0];
    duid.extend_from_slice(&n.to_be_bytes()[2..]);
    duid
}

/// Shorthand for an address literal.
pub fn ip(text: &str) -> Ipv6Addr {
    match text.parse() {
        Ok(addr) => addr,
        Err(error) => panic!("bad address {text}: {error}"),
    }
}

/// An engine on a virtual clock, with the events it emitted so far.
pub struct Server {
    /// The engine under test (replaced by [`Server::reload`]).
    pub engine: Arc<Engine>,
    /// The clock passed to the engine.
    pub now: u32,
    /// The link direct (unrelayed) messages arrive on.
    pub link: Option<LinkId>,
    /// The kind of destination messages arrive at (multicast unless a test says otherwise).
    pub arrival: Arrival,
    /// Every lease event since the last [`Server::take_events`].
    pub events: Vec<LeaseEvent>,
    /// What the datapath tells of the sender (none unless a test sets it).
    pub peer: Peer,
    buf: Vec<u8>,
}

impl Server {
    /// A server for a TOML configuration, with direct clients on its first link.
    pub fn new(toml: &str) -> Self {
        Self::from_config(config(toml))
    }

    /// A server for `config`, with an empty table of its own.
    pub fn from_config(config: Arc<Config>) -> Self {
        let capacity = usize::try_from(config.server.expected_leases).unwrap_or(1 << 16);
        let table = Arc::new(LeaseTable::with_capacity(
            capacity,
            SaltKey::from_salt(&config.server.salt),
        ));
        Self::with_table(config, table)
    }

    /// A server for `config` over an existing table.
    pub fn with_table(config: Arc<Config>, table: Arc<LeaseTable>) -> Self {
        let engine = match Engine::new(config, table) {
            Ok(engine) => engine,
            Err(error) => panic!("engine does not start: {error}"),
        };
        Self {
            engine: Arc::new(engine),
            now: T0,
            link: Some(LinkId(0)),
            arrival: Arrival::Multicast,
            events: Vec::new(),
            peer: Peer::default(),
            buf: vec![0; REPLY_BUF],
        }
    }

    /// Reloads the configuration `toml`, as the daemon does: aligned to the running links,
    /// a new engine over the same table.
    pub fn reload(&mut self, toml: &str) {
        let next = match Config::from_toml_str(toml, "reload.toml") {
            Ok(next) => next,
            Err(error) => panic!("bad configuration: {error}"),
        };
        let aligned = match next.aligned_to(self.engine.config()) {
            Ok(aligned) => aligned,
            Err(error) => panic!("cannot align: {error}"),
        };
        self.engine = match self.engine.reloaded(Arc::new(aligned)) {
            Ok(engine) => engine,
            Err(error) => panic!("reload refused: {error}"),
        };
    }

    /// This server's DUID, for Server Identifier options.
    pub fn duid(&self) -> Vec<u8> {
        self.engine.config().server.duid.clone()
    }

    /// Hands `msg` to the engine at the current time.
    pub fn handle(&mut self, msg: &Msg) -> Result<ReplyView, DropReason> {
        let request = msg.encode();
        self.handle_bytes(&request)
    }

    /// Hands raw bytes to the engine at the current time.
    pub fn handle_bytes(&mut self, request: &[u8]) -> Result<ReplyView, DropReason> {
        let cx = Context {
            link: self.link,
            arrival: self.arrival,
            now: self.now,
        };
        match self
            .engine
            .handle_from(request, &cx, self.peer, &mut self.buf, &mut self.events)
        {
            Outcome::Reply { len, to, .. } => Ok(ReplyView::parse(&self.buf[..len], to)),
            Outcome::Drop { reason, .. } => Err(reason),
        }
    }

    /// Hands `msg` to the engine at the current time; the engine's whole answer.
    pub fn outcome(&mut self, msg: &Msg) -> Outcome {
        let request = msg.encode();
        let cx = Context {
            link: self.link,
            arrival: self.arrival,
            now: self.now,
        };
        self.engine
            .handle_from(&request, &cx, self.peer, &mut self.buf, &mut self.events)
    }

    /// Hands `msg` to the engine and expects a reply.
    pub fn send(&mut self, msg: &Msg) -> ReplyView {
        match self.handle(msg) {
            Ok(reply) => reply,
            Err(reason) => panic!("{:?} was dropped: {reason:?}", msg.msg_type),
        }
    }

    /// Hands `msg` to the engine as sent to one of the server's unicast addresses.
    pub fn handle_unicast(&mut self, msg: &Msg) -> Result<ReplyView, DropReason> {
        let arrival = std::mem::replace(&mut self.arrival, Arrival::Unicast);
        let result = self.handle(msg);
        self.arrival = arrival;
        result
    }

    /// Hands `msg` to the engine and expects it dropped.
    pub fn drop_reason(&mut self, msg: &Msg) -> DropReason {
        match self.handle(msg) {
            Ok(reply) => panic!("{:?} got a {:?}", msg.msg_type, reply.msg_type),
            Err(reason) => reason,
        }
    }

    /// Moves the clock forward by `seconds` (without expiring anything).
    pub fn advance(&mut self, seconds: u32) {
        self.now += seconds;
    }

    /// Runs the timer sweep at the current time.
    pub fn handle_timeout(&mut self) {
        self.engine.handle_timeout(self.now, &mut self.events);
    }

    /// The events collected so far, leaving none.
    pub fn take_events(&mut self) -> Vec<LeaseEvent> {
        std::mem::take(&mut self.events)
    }

    /// The kinds of the events collected so far, leaving none.
    pub fn take_event_kinds(&mut self) -> Vec<EventKind> {
        self.take_events()
            .into_iter()
            .map(|event| event.kind)
            .collect()
    }

    /// Solicit then Request for one IA_NA; returns (Advertise, Reply).
    pub fn bind_na(&mut self, client: &Client, iaid: u32) -> (ReplyView, ReplyView) {
        let advertise = self.send(&client.solicit().ia_na(iaid, &[]));
        assert_eq!(advertise.msg_type, MessageType::Advertise);
        let offered: Vec<Ipv6Addr> = advertise
            .ia_na(iaid)
            .addrs
            .iter()
            .map(|addr| addr.addr)
            .collect();
        let reply = self.send(&client.request(&self.duid()).ia_na(iaid, &offered));
        assert_eq!(reply.msg_type, MessageType::Reply);
        (advertise, reply)
    }

    /// Solicit then Request for one IA_NA; returns the bound address.
    pub fn bind_address(&mut self, client: &Client, iaid: u32) -> Ipv6Addr {
        let (_, reply) = self.bind_na(client, iaid);
        reply.ia_na(iaid).address()
    }

    /// Solicit then Request for one IA_PD; returns the delegated prefix.
    pub fn bind_prefix(&mut self, client: &Client, iaid: u32) -> (Ipv6Addr, u8) {
        let advertise = self.send(&client.solicit().ia_pd(iaid, &[]));
        let offered: Vec<(Ipv6Addr, u8)> = advertise
            .ia_pd(iaid)
            .prefixes
            .iter()
            .map(|prefix| (prefix.prefix, prefix.len))
            .collect();
        let reply = self.send(&client.request(&self.duid()).ia_pd(iaid, &offered));
        reply.ia_pd(iaid).prefix()
    }
}

/// One relay agent between the client and the server.
#[derive(Clone, Debug)]
pub struct Relay {
    /// The hop-count field; by default the relay's position counting from the client (0).
    pub hop_count: Option<u8>,
    /// The link-address field.
    pub link: Ipv6Addr,
    /// The peer-address field.
    pub peer: Ipv6Addr,
    /// An Interface-Id option.
    pub interface_id: Option<Vec<u8>>,
    /// An RFC 6939 Client Link-Layer Address option (hardware type, address).
    pub link_layer: Option<(u16, Vec<u8>)>,
    /// An RFC 8357 Relay Source Port option.
    pub source_port: Option<u16>,
    /// Further options, code and body, after those above.
    pub options: Vec<(u16, Vec<u8>)>,
}

impl Relay {
    /// A relay with this link-address and a fixed link-local peer.
    pub fn new(link: Ipv6Addr) -> Self {
        Self {
            hop_count: None,
            link,
            peer: ip("fe80::1234"),
            interface_id: None,
            link_layer: None,
            source_port: None,
            options: Vec::new(),
        }
    }

    /// The same relay sending an Interface-Id option.
    pub fn interface_id(mut self, id: &[u8]) -> Self {
        self.interface_id = Some(id.to_vec());
        self
    }

    /// The same relay reporting the client's link-layer address (RFC 6939).
    pub fn link_layer(mut self, hw_type: u16, addr: &[u8]) -> Self {
        self.link_layer = Some((hw_type, addr.to_vec()));
        self
    }

    /// The same relay with this peer-address.
    pub fn peer(mut self, peer: Ipv6Addr) -> Self {
        self.peer = peer;
        self
    }

    /// The same relay with an explicit hop-count.
    pub fn hop_count(mut self, hop_count: u8) -> Self {
        self.hop_count = Some(hop_count);
        self
    }

    /// The same relay asking for replies to its source port (RFC 8357).
    pub fn source_port(mut self, port: u16) -> Self {
        self.source_port = Some(port);
        self
    }

    /// The same relay sending one more option, `code` with `body`.
    pub fn option(mut self, code: u16, body: &[u8]) -> Self {
        self.options.push((code, body.to_vec()));
        self
    }

    /// The same relay supplying `options` (code, body) for the client in a Relay-Supplied
    /// Options option (RFC 6422).
    pub fn supplying(self, options: &[(u16, &[u8])]) -> Self {
        let mut body = Vec::new();
        for (code, data) in options {
            body.extend_from_slice(&code.to_be_bytes());
            body.extend_from_slice(&(data.len() as u16).to_be_bytes());
            body.extend_from_slice(data);
        }
        self.option(OptionCode::RelaySuppliedOptions.into(), &body)
    }
}

/// A client: its DUID and the relays its messages pass through.
#[derive(Clone, Debug)]
pub struct Client {
    /// The Client Identifier.
    pub duid: Vec<u8>,
    /// Relays, the one closest to the client first.
    pub relays: Vec<Relay>,
    /// The transaction id of the next message.
    pub xid: u32,
}

impl Client {
    /// Client number `n`, with a DUID-LLT made from it.
    pub fn new(n: u64) -> Self {
        Self::with_duid(&duid_llt(n))
    }

    /// A client with this DUID.
    pub fn with_duid(duid: &[u8]) -> Self {
        Self {
            duid: duid.to_vec(),
            relays: Vec::new(),
            xid: 0x00_1234,
        }
    }

    /// The same client behind one more relay (further from the client than those before).
    pub fn via(mut self, relay: Relay) -> Self {
        self.relays.push(relay);
        self
    }

    /// A message of `msg_type` with this client's Client Identifier and relays.
    pub fn message(&self, msg_type: MessageType) -> Msg {
        Msg {
            msg_type,
            xid: self.xid,
            client_id: Some(self.duid.clone()),
            server_id: None,
            ia_na: Vec::new(),
            ia_pd: Vec::new(),
            ia_ta: None,
            oro: Vec::new(),
            rapid_commit: false,
            options: Vec::new(),
            relays: self.relays.clone(),
        }
    }

    /// A Solicit.
    pub fn solicit(&self) -> Msg {
        self.message(MessageType::Solicit)
    }

    /// A Request to the server with DUID `server`.
    pub fn request(&self, server: &[u8]) -> Msg {
        self.message(MessageType::Request).server_id(server)
    }

    /// A Renew to the server with DUID `server`.
    pub fn renew(&self, server: &[u8]) -> Msg {
        self.message(MessageType::Renew).server_id(server)
    }

    /// A Rebind (to any server).
    pub fn rebind(&self) -> Msg {
        self.message(MessageType::Rebind)
    }

    /// A Release to the server with DUID `server`.
    pub fn release(&self, server: &[u8]) -> Msg {
        self.message(MessageType::Release).server_id(server)
    }

    /// A Decline to the server with DUID `server`.
    pub fn decline(&self, server: &[u8]) -> Msg {
        self.message(MessageType::Decline).server_id(server)
    }

    /// A Confirm.
    pub fn confirm(&self) -> Msg {
        self.message(MessageType::Confirm)
    }

    /// An Information-request.
    pub fn information_request(&self) -> Msg {
        self.message(MessageType::InformationRequest)
    }
}

/// A client message, built up field by field and encoded on demand.
#[derive(Clone, Debug)]
pub struct Msg {
    /// The message type (any: tests also send server message types).
    pub msg_type: MessageType,
    /// The transaction id.
    pub xid: u32,
    /// Client Identifier DUID.
    pub client_id: Option<Vec<u8>>,
    /// Server Identifier DUID.
    pub server_id: Option<Vec<u8>>,
    /// IA_NA options: IAID and the addresses listed in it.
    pub ia_na: Vec<(u32, Vec<Ipv6Addr>)>,
    /// IA_PD options: IAID and the prefixes listed in it.
    pub ia_pd: Vec<(u32, Vec<(Ipv6Addr, u8)>)>,
    /// An empty IA_TA option with this IAID.
    pub ia_ta: Option<u32>,
    /// Option Request option codes (no ORO when empty).
    pub oro: Vec<OptionCode>,
    /// A Rapid Commit option.
    pub rapid_commit: bool,
    /// Further options, code and body, after those above.
    pub options: Vec<(u16, Vec<u8>)>,
    /// Relays, the one closest to the client first.
    pub relays: Vec<Relay>,
}

impl Msg {
    /// The same message with an IA_NA listing `addrs`.
    pub fn ia_na(mut self, iaid: u32, addrs: &[Ipv6Addr]) -> Self {
        self.ia_na.push((iaid, addrs.to_vec()));
        self
    }

    /// The same message with an IA_PD listing `prefixes`.
    pub fn ia_pd(mut self, iaid: u32, prefixes: &[(Ipv6Addr, u8)]) -> Self {
        self.ia_pd.push((iaid, prefixes.to_vec()));
        self
    }

    /// The same message with an (empty) IA_TA.
    pub fn ia_ta(mut self, iaid: u32) -> Self {
        self.ia_ta = Some(iaid);
        self
    }

    /// The same message with an ORO asking for `codes`.
    pub fn oro(mut self, codes: &[OptionCode]) -> Self {
        self.oro = codes.to_vec();
        self
    }

    /// The same message with Rapid Commit.
    pub fn rapid_commit(mut self) -> Self {
        self.rapid_commit = true;
        self
    }

    /// The same message with one more option, `code` with `body`.
    pub fn option(mut self, code: u16, body: &[u8]) -> Self {
        self.options.push((code, body.to_vec()));
        self
    }

    /// The same message with this Server Identifier.
    pub fn server_id(mut self, duid: &[u8]) -> Self {
        self.server_id = Some(duid.to_vec());
        self
    }

    /// The same message without a Server Identifier.
    pub fn without_server_id(mut self) -> Self {
        self.server_id = None;
        self
    }

    /// The same message without a Client Identifier.
    pub fn without_client_id(mut self) -> Self {
        self.client_id = None;
        self
    }

    /// The same message with this transaction id.
    pub fn xid(mut self, xid: u32) -> Self {
        self.xid = xid;
        self
    }

    /// The same message behind one more relay.
    pub fn via(mut self, relay: Relay) -> Self {
        self.relays.push(relay);
        self
    }

    /// The UDP payload: the client message inside one Relay-forward per relay.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = vec![0; REPLY_BUF];
        let len = self.encode_into(&mut buf);
        buf.truncate(len);
        buf
    }

    /// Writes the UDP payload into `buf` and returns its length.
    pub fn encode_into(&self, buf: &mut [u8]) -> usize {
        let mut inner = vec![0; REPLY_BUF];
        let mut len = self.encode_client(&mut inner);
        for (position, relay) in self.relays.iter().enumerate() {
            let mut outer = vec![0; REPLY_BUF];
            let hop_count = relay.hop_count.unwrap_or(position as u8);
            let mut w = must(MessageWriter::relay(
                &mut outer,
                MessageType::RelayForw,
                hop_count,
                relay.link,
                relay.peer,
            ));
            if let Some(id) = &relay.interface_id {
                must(w.interface_id(id));
            }
            if let Some((hw_type, addr)) = &relay.link_layer {
                must(w.client_link_layer_addr(*hw_type, addr));
            }
            if let Some(port) = relay.source_port {
                must(w.relay_source_port(port));
            }
            for (code, body) in &relay.options {
                must(w.raw(*code, body));
            }
            must(w.relay_msg(&inner[..len]));
            len = must(w.finish());
            inner = outer;
        }
        buf[..len].copy_from_slice(&inner[..len]);
        len
    }

    fn encode_client(&self, buf: &mut [u8]) -> usize {
        let mut w = must(MessageWriter::client(buf, self.msg_type, self.xid));
        if let Some(duid) = &self.client_id {
            must(w.client_id(duid));
        }
        if let Some(duid) = &self.server_id {
            must(w.server_id(duid));
        }
        must(w.elapsed_time(0));
        for (iaid, addrs) in &self.ia_na {
            let mark = must(w.begin_ia_na(*iaid, 0, 0));
            for addr in addrs {
                must(w.ia_address(*addr, 0, 0));
            }
            must(w.end_option(mark));
        }
        for (iaid, prefixes) in &self.ia_pd {
            let mark = must(w.begin_ia_pd(*iaid, 0, 0));
            for (prefix, len) in prefixes {
                must(w.ia_prefix(0, 0, *len, *prefix));
            }
            must(w.end_option(mark));
        }
        if let Some(iaid) = self.ia_ta {
            must(w.option(OptionCode::IaTa, &iaid.to_be_bytes()));
        }
        if !self.oro.is_empty() {
            must(w.oro(&self.oro));
        }
        if self.rapid_commit {
            must(w.rapid_commit());
        }
        for (code, body) in &self.options {
            must(w.raw(*code, body));
        }
        must(w.finish())
    }
}

fn must<T, E: std::fmt::Debug>(result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("test message does not encode: {error:?}"),
    }
}

/// An IA Address in a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrView {
    /// The address.
    pub addr: Ipv6Addr,
    /// Preferred lifetime.
    pub preferred: u32,
    /// Valid lifetime.
    pub valid: u32,
}

/// An IA Prefix in a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixView {
    /// The prefix.
    pub prefix: Ipv6Addr,
    /// Its length.
    pub len: u8,
    /// Preferred lifetime.
    pub preferred: u32,
    /// Valid lifetime.
    pub valid: u32,
    /// An RFC 6603 Prefix Exclude sub-option: excluded length and subnet id bytes.
    pub exclude: Option<(u8, Vec<u8>)>,
}

/// An IA_NA or IA_PD in a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IaView {
    /// The IAID.
    pub iaid: u32,
    /// T1.
    pub t1: u32,
    /// T2.
    pub t2: u32,
    /// IA Address options (IA_NA).
    pub addrs: Vec<AddrView>,
    /// IA Prefix options (IA_PD).
    pub prefixes: Vec<PrefixView>,
    /// The IA's Status Code, if any.
    pub status: Option<(StatusCode, String)>,
}

impl IaView {
    /// The status code (Success when absent, RFC 9915 §21.13).
    pub fn status_code(&self) -> StatusCode {
        self.status
            .as_ref()
            .map_or(StatusCode::Success, |(code, _)| *code)
    }

    /// The addresses with non-zero valid lifetimes.
    pub fn live_addrs(&self) -> Vec<Ipv6Addr> {
        self.addrs
            .iter()
            .filter(|addr| addr.valid > 0)
            .map(|addr| addr.addr)
            .collect()
    }

    /// The addresses returned with lifetimes 0.
    pub fn zeroed_addrs(&self) -> Vec<Ipv6Addr> {
        self.addrs
            .iter()
            .filter(|addr| addr.valid == 0 && addr.preferred == 0)
            .map(|addr| addr.addr)
            .collect()
    }

    /// The one address with non-zero lifetimes; panics otherwise.
    pub fn address(&self) -> Ipv6Addr {
        match self.live_addrs().as_slice() {
            [addr] => *addr,
            other => panic!("IA {} has live addresses {other:?}: {self:?}", self.iaid),
        }
    }

    /// The lifetimes of `addr` in this IA.
    pub fn lifetimes_of(&self, addr: Ipv6Addr) -> Option<(u32, u32)> {
        self.addrs
            .iter()
            .find(|view| view.addr == addr)
            .map(|view| (view.preferred, view.valid))
    }

    /// The one prefix with non-zero lifetimes; panics otherwise.
    pub fn prefix(&self) -> (Ipv6Addr, u8) {
        let live: Vec<&PrefixView> = self
            .prefixes
            .iter()
            .filter(|prefix| prefix.valid > 0)
            .collect();
        match live.as_slice() {
            [prefix] => (prefix.prefix, prefix.len),
            other => panic!("IA_PD {} has live prefixes {other:?}", self.iaid),
        }
    }
}

/// One Relay-reply around the answer, outermost first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayView {
    /// The message type (Relay-reply).
    pub msg_type: MessageType,
    /// The hop-count field.
    pub hop_count: u8,
    /// The link-address field.
    pub link: Ipv6Addr,
    /// The peer-address field.
    pub peer: Ipv6Addr,
    /// The Interface-Id option.
    pub interface_id: Option<Vec<u8>>,
}

/// A reply taken apart.
#[derive(Clone, Debug)]
pub struct ReplyView {
    /// The whole UDP payload.
    pub bytes: Vec<u8>,
    /// Where the engine sends it.
    pub to: Destination,
    /// Relay-reply layers, outermost first.
    pub relays: Vec<RelayView>,
    /// The client message type.
    pub msg_type: MessageType,
    /// The transaction id.
    pub xid: u32,
    /// Server Identifier DUID.
    pub server_id: Option<Vec<u8>>,
    /// Client Identifier DUID.
    pub client_id: Option<Vec<u8>>,
    /// IA_NA options.
    pub ia_na: Vec<IaView>,
    /// IA_PD options.
    pub ia_pd: Vec<IaView>,
    /// The top-level Status Code.
    pub status: Option<(StatusCode, String)>,
    /// The Preference option.
    pub preference: Option<u8>,
    /// Whether a Rapid Commit option is present.
    pub rapid_commit: bool,
    /// Every top-level option of the client message: code and body.
    pub options: Vec<(u16, Vec<u8>)>,
}

impl ReplyView {
    /// Parses a reply; panics on anything malformed (the engine must never write that).
    pub fn parse(bytes: &[u8], to: Destination) -> Self {
        let mut relays = Vec::new();
        let mut current = bytes;
        let message = loop {
            match Packet::parse(current) {
                Ok(Packet::Client(message)) => break message,
                Ok(Packet::Relay(relay)) => {
                    let mut interface_id = None;
                    let mut inner = None;
                    for option in relay.options() {
                        match option {
                            Ok(DhcpOption::InterfaceId(id)) => interface_id = Some(id.to_vec()),
                            Ok(DhcpOption::RelayMsg(message)) => inner = Some(message),
                            Ok(_) => {}
                            Err(error) => panic!("malformed relay option: {error:?}"),
                        }
                    }
                    relays.push(RelayView {
                        msg_type: relay.msg_type(),
                        hop_count: relay.hop_count(),
                        link: relay.link_address(),
                        peer: relay.peer_address(),
                        interface_id,
                    });
                    current = inner.unwrap_or_else(|| panic!("Relay-reply without Relay Message"));
                }
                Err(error) => panic!("malformed reply: {error:?}"),
            }
        };
        let mut view = Self {
            bytes: bytes.to_vec(),
            to,
            relays,
            msg_type: message.msg_type(),
            xid: message.transaction_id(),
            server_id: None,
            client_id: None,
            ia_na: Vec::new(),
            ia_pd: Vec::new(),
            status: None,
            preference: None,
            rapid_commit: false,
            options: Vec::new(),
        };
        view.read_options(message);
        view
    }

    fn read_options(&mut self, message: Message<'_>) {
        for raw in message.options().raw() {
            let raw = raw.unwrap_or_else(|error| panic!("malformed reply option: {error:?}"));
            self.options.push((raw.code, raw.data.to_vec()));
        }
        for option in message.options() {
            let option = option.unwrap_or_else(|error| panic!("malformed reply option: {error:?}"));
            match option {
                DhcpOption::ServerId(duid) => self.server_id = Some(duid.as_bytes().to_vec()),
                DhcpOption::ClientId(duid) => self.client_id = Some(duid.as_bytes().to_vec()),
                DhcpOption::StatusCode { code, message } => {
                    self.status = Some((code, String::from_utf8_lossy(message).into_owned()));
                }
                DhcpOption::Preference(value) => self.preference = Some(value),
                DhcpOption::RapidCommit => self.rapid_commit = true,
                DhcpOption::IaNa(ia) => {
                    let mut view = ia_view(ia.iaid(), ia.t1(), ia.t2());
                    for option in ia.options() {
                        match option {
                            Ok(DhcpOption::IaAddr(addr)) => view.addrs.push(AddrView {
                                addr: addr.addr(),
                                preferred: addr.preferred_lifetime(),
                                valid: addr.valid_lifetime(),
                            }),
                            Ok(DhcpOption::StatusCode { code, message }) => {
                                view.status =
                                    Some((code, String::from_utf8_lossy(message).into_owned()));
                            }
                            Ok(other) => panic!("unexpected option in IA_NA: {other:?}"),
                            Err(error) => panic!("malformed IA_NA: {error:?}"),
                        }
                    }
                    self.ia_na.push(view);
                }
                DhcpOption::IaPd(ia) => {
                    let mut view = ia_view(ia.iaid(), ia.t1(), ia.t2());
                    for option in ia.options() {
                        match option {
                            Ok(DhcpOption::IaPrefix(prefix)) => {
                                let mut exclude = None;
                                for sub in prefix.options() {
                                    match sub {
                                        Ok(DhcpOption::PdExclude {
                                            prefix_len,
                                            subnet_id,
                                        }) => exclude = Some((prefix_len, subnet_id.to_vec())),
                                        other => panic!("unexpected in IA Prefix: {other:?}"),
                                    }
                                }
                                view.prefixes.push(PrefixView {
                                    prefix: prefix.prefix(),
                                    len: prefix.prefix_len(),
                                    preferred: prefix.preferred_lifetime(),
                                    valid: prefix.valid_lifetime(),
                                    exclude,
                                });
                            }
                            Ok(DhcpOption::StatusCode { code, message }) => {
                                view.status =
                                    Some((code, String::from_utf8_lossy(message).into_owned()));
                            }
                            Ok(other) => panic!("unexpected option in IA_PD: {other:?}"),
                            Err(error) => panic!("malformed IA_PD: {error:?}"),
                        }
                    }
                    self.ia_pd.push(view);
                }
                _ => {}
            }
        }
    }

    /// The IA_NA with `iaid`; panics when absent.
    pub fn ia_na(&self, iaid: u32) -> &IaView {
        self.ia_na
            .iter()
            .find(|ia| ia.iaid == iaid)
            .unwrap_or_else(|| panic!("no IA_NA {iaid} in {:?}", self.ia_na))
    }

    /// The IA_PD with `iaid`; panics when absent.
    pub fn ia_pd(&self, iaid: u32) -> &IaView {
        self.ia_pd
            .iter()
            .find(|ia| ia.iaid == iaid)
            .unwrap_or_else(|| panic!("no IA_PD {iaid} in {:?}", self.ia_pd))
    }

    /// The top-level status code (Success when absent, RFC 9915 §21.13).
    pub fn status_code(&self) -> StatusCode {
        self.status
            .as_ref()
            .map_or(StatusCode::Success, |(code, _)| *code)
    }

    /// Whether a top-level option with `code` is present.
    pub fn has(&self, code: OptionCode) -> bool {
        self.option(code).is_some()
    }

    /// The body of the first top-level option with `code`.
    pub fn option(&self, code: OptionCode) -> Option<&[u8]> {
        let code = u16::from(code);
        self.options
            .iter()
            .find(|(each, _)| *each == code)
            .map(|(_, body)| body.as_slice())
    }

    /// The top-level option codes, in order.
    pub fn codes(&self) -> Vec<u16> {
        self.options.iter().map(|(code, _)| *code).collect()
    }

    /// The DNS Recursive Name Server addresses (option 23).
    pub fn dns_servers(&self) -> Vec<Ipv6Addr> {
        self.option(OptionCode::DnsServers)
            .map(|body| {
                body.chunks_exact(16)
                    .map(|chunk| {
                        let mut octets = [0; 16];
                        octets.copy_from_slice(chunk);
                        Ipv6Addr::from(octets)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn ia_view(iaid: u32, t1: u32, t2: u32) -> IaView {
    IaView {
        iaid,
        t1,
        t2,
        addrs: Vec::new(),
        prefixes: Vec::new(),
        status: None,
    }
}
