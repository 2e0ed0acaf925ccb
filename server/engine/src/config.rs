//! Configuration: TOML read with serde, validated into an immutable model.
//!
//! The file has five parts: `[server]` (identity, Preference, salt, default lifetimes),
//! `[options]` (options every link sends unless it sets its own), `[[link]]` (how clients are
//! matched to a link, its pools and options), `[[reservation]]` (fixed bindings) and
//! `[leasequery]` (who may ask about bindings, RFC 5007). The
//! examples in `examples/` show one pair of files per RFC 6853 model.
//!
//! Validation happens once, here: the allocator and the reply builder read the model and never
//! check it again. Every error names the file, the field (`link[1].pool[0].range`, keys as in
//! the file, lists indexed from 0) and the problem.

mod align;
mod ddns;
mod duid;
mod leasequery;
mod options;
mod raw;
mod text;
mod validate;

use std::fmt;
use std::net::Ipv6Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use self::ddns::{
    DEFAULT_DDNS_TTL, DEFAULT_GENERATED_PREFIX, DNS_PORT, DdnsSettings, GeneratedName, reverse_name,
};
pub use self::duid::{ServerDuid, duid_llt};
use crate::prefix::Prefix;

/// A validated server configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Server-wide settings: identity, Preference, salt, defaults.
    pub server: ServerSettings,
    /// The links this server serves; `LinkId(i)` is `links[i]`.
    pub links: Vec<Link>,
    /// Fixed bindings of clients to addresses and prefixes.
    pub reservations: Vec<Reservation>,
    /// Who may send Leasequery messages (`[leasequery]`, RFC 5007).
    pub leasequery: LeasequerySettings,
    index: Index,
}

/// `[leasequery]`: the requestors (relay agents, CMTS, BNG, operators' tools) this server
/// answers Leasequery messages from (RFC 5007).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeasequerySettings {
    /// The source prefixes requestors send from (`requestors`, default empty: nobody). A
    /// Leasequery from another address is answered with the NotAllowed status; a relayed one
    /// is judged by the innermost relay's peer-address, the requestor's own address.
    pub requestors: Vec<Prefix>,
    /// Bulk Leasequery over TCP (RFC 5460): where it listens and its limits.
    pub bulk: BulkLeasequerySettings,
}

/// `[leasequery] bulk-*`: the Bulk Leasequery listener (RFC 5460) and its limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkLeasequerySettings {
    /// TCP addresses to listen on (`bulk-listen`, default empty: no listener).
    pub listen: Vec<std::net::SocketAddr>,
    /// Connections served at once (`bulk-max-connections`, default 10, RFC 5460's
    /// BULK_LQ_MAX_CONNS); more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Seconds a connection may wait for the requestor, to send a query or to read the
    /// answer, before it is closed (`bulk-idle-timeout`, default 300, BULK_LQ_DATA_TIMEOUT).
    pub idle_timeout: u32,
    /// Queries answered on one connection (`bulk-max-queries`, default 1,000); the next
    /// gets QueryTerminated and the connection is closed.
    pub max_queries: u32,
}

impl Default for BulkLeasequerySettings {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            max_connections: 10,
            idle_timeout: 300,
            max_queries: 1000,
        }
    }
}

/// Server-wide settings (`[server]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSettings {
    /// The Server Identifier DUID sent in every reply (`duid`, or read from `duid-file`).
    ///
    /// Empty only between `Config::from_toml_str` and `Config::set_server_duid` when the file
    /// names a `duid-file` instead of a `duid`.
    pub duid: Vec<u8>,
    /// Where the generated DUID is kept when `duid` is not given (`duid-file`, as written:
    /// whoever reads the file resolves a relative path).
    pub duid_file: Option<PathBuf>,
    /// The Preference option value, 0..=255 (`preference`, default 0). In an RFC 6853 pair the
    /// primary sends 255 so that clients pick it at once. The default of every link's own
    /// `preference`.
    pub preference: u8,
    /// The allocation salt mixed into every address hash (`salt`, default empty). Servers with
    /// the same salt and range compute the same address for a client (identical-prefix model).
    pub salt: String,
    /// What Rebind does with an address in another server's slice of a prefix we serve.
    pub rebind_foreign: RebindForeign,
    /// Whether Renew and Rebind give an IA the server has no binding for a new one, like a
    /// Request (`renew-creates-bindings`, default true; links may override it).
    pub renew_creates_bindings: bool,
    /// What a relayed Solicit or Request from a link no `[[link]]` selects gets
    /// (`unknown-link`, default `"drop"`).
    pub unknown_link: UnknownLink,
    /// Seconds a declined address stays out of use (`decline-probation`, default 1 day).
    pub decline_probation: u32,
    /// How many leases the table should be sized for (`expected-leases`, default 65536).
    pub expected_leases: u64,
    /// Lifetimes for links that do not set their own (`t1`, `t2`, `preferred-lifetime`,
    /// `valid-lifetime` in `[server]`).
    pub timers: Timers,
    /// The interfaces relay agents reach the server on (`relay-interfaces`, default empty:
    /// any interface). A Relay-forward arriving on another interface is dropped
    /// (`relay_not_allowed`). The AF_XDP datapath attaches to them too; they serve no direct
    /// clients unless a link names them in its `interfaces`.
    pub relay_interfaces: Vec<String>,
    /// The source prefixes relay agents send from (`relay-sources`, default empty: any
    /// source). A Relay-forward from another address is dropped (`relay_not_allowed`).
    pub relay_sources: Vec<Prefix>,
    /// Limits on new bindings and Declines (`max-leases`, `relay-*`, `mac-*`,
    /// `decline-limit`).
    pub limits: ServerLimits,
    /// Milliseconds an Advertise waits before it leaves when the link's Preference is below
    /// 255 (`advertise-delay-ms`, 0..=1000, default 0: at once). The default of every link's
    /// own `advertise-delay-ms`; see [`Link::advertise_delay_ms`].
    pub advertise_delay_ms: u16,
    /// Whether Advertise and Reply carry a Reconfigure Accept option (`reconfigure-accept`,
    /// default false). The default of every link's own `reconfigure-accept`; see
    /// [`Link::reconfigure_accept`].
    pub reconfigure_accept: bool,
}

/// The longest `advertise-delay-ms`: a client waits about a second (SOL_TIMEOUT) for
/// Advertise messages before it takes the best one it has (RFC 9915 §18.2.1).
pub const MAX_ADVERTISE_DELAY_MS: u16 = 1000;

/// Server-wide limits on new bindings (`[server]`). A binding the client already holds is
/// always renewed: limits only refuse new ones. A cap that is reached answers the IA
/// NoAddrsAvail (NoPrefixAvail); an empty rate bucket drops the message, and the client
/// retransmits with backoff. 0 turns a limit off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServerLimits {
    /// Bound leases the server holds at most (`max-leases`, default 16,777,216).
    pub max_leases: u64,
    /// Per relay agent: the identity is the relay's source address (or, where the datapath
    /// does not give it, the innermost relay's link-address) with the innermost relay's
    /// Interface-Id (`relay-max-bindings`, default 0: off; `relay-binding-rate`, default
    /// 1000 a second; `relay-binding-burst`, default 10,000).
    pub relay: SourceLimits,
    /// Per client link-layer address: the frame's source MAC (or source address) of a direct
    /// client, the RFC 6939 Client Link-Layer Address or else the RFC 4649 Remote-ID of a
    /// relayed one (`mac-max-bindings`, default 32; `mac-binding-rate`, default 4 a second;
    /// `mac-binding-burst`, default 32).
    pub mac: SourceLimits,
    /// Declines one client (DUID) may send per `decline-probation`; more are dropped
    /// (`decline-limit`, default 4).
    pub decline_limit: u32,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_leases: 16_777_216,
            relay: SourceLimits {
                max_bindings: 0,
                rate: RateLimit {
                    per_second: 1000,
                    burst: 10_000,
                },
            },
            mac: SourceLimits {
                max_bindings: 32,
                rate: RateLimit {
                    per_second: 4,
                    burst: 32,
                },
            },
            decline_limit: 4,
        }
    }
}

/// Limits of one kind of sender (a relay agent, a client link-layer address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourceLimits {
    /// Bindings one sender's clients may hold at once (0: no cap).
    pub max_bindings: u32,
    /// New bindings a second for one sender.
    pub rate: RateLimit,
}

/// A token bucket: `burst` new bindings at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Tokens added a second (0: no rate limit).
    pub per_second: u32,
    /// Tokens the bucket holds at most (at least 1 when `per_second` is set).
    pub burst: u32,
}

impl RateLimit {
    /// Whether the rate limits anything.
    pub fn is_limited(&self) -> bool {
        self.per_second != 0
    }
}

/// Limits of one link (`[[link]]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkLimits {
    /// Bound leases on the link at most (`max-leases`, default 0: only the pools' size).
    pub max_leases: u64,
    /// New bindings a second on the link (`binding-rate`, default 20,000; `binding-burst`,
    /// default 100,000).
    pub rate: RateLimit,
}

impl Default for LinkLimits {
    fn default() -> Self {
        Self {
            max_leases: 0,
            rate: RateLimit {
                per_second: 20_000,
                burst: 100_000,
            },
        }
    }
}

/// What a Rebind does with an address from another server's slice (`rebind-foreign`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RebindForeign {
    /// Answer with lifetimes 0 so the client moves to an address of ours (the default: the
    /// other server may still hold, or hand out again, that address).
    #[default]
    Zero,
    /// Extend it: the address is appropriate for the link (RFC 9915 §18.3.5 allows this).
    Extend,
}

/// What the server does with a relayed client whose link no `[[link]]` selects
/// (`unknown-link`).
///
/// Messages other than Solicit and Request are dropped either way: a Confirm MUST get no
/// Reply when the server does not know the link's prefixes (RFC 9915 §18.3.3), and Renew,
/// Rebind, Release, Decline and Information-request concern bindings and options of a link.
/// A direct client on an interface that serves no link is always dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum UnknownLink {
    /// Send nothing (the default), counted as the drop reason `unknown_link`. RFC 9915
    /// §18.3.1: a server not permitted by its policy to respond to the client discards the
    /// Solicit; another server of the deployment may serve that link.
    #[default]
    Drop,
    /// Answer a Solicit with an Advertise and a Request with a Reply in which every IA_NA
    /// carries NoAddrsAvail and every IA_PD NoPrefixAvail (RFC 9915 §18.3.9, §18.3.2), so the
    /// client stops waiting for this server.
    NoAddrsAvail,
}

/// The four lifetimes of IA_NA / IA_PD, in seconds; `T1 <= T2 <= preferred <= valid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timers {
    /// When the client starts renewing with this server (`t1`).
    pub t1: u32,
    /// When the client starts rebinding with any server (`t2`).
    pub t2: u32,
    /// Preferred lifetime of addresses and prefixes (`preferred-lifetime`).
    pub preferred: u32,
    /// Valid lifetime of addresses and prefixes (`valid-lifetime`).
    pub valid: u32,
}

impl Default for Timers {
    /// RFC 9915 §21.4 suggests T1 = 0.5 and T2 = 0.8 times the preferred lifetime.
    fn default() -> Self {
        Self {
            t1: 1800,
            t2: 2880,
            preferred: 3600,
            valid: 7200,
        }
    }
}

/// A link of one configuration: its index in `Config::links`.
///
/// A compact handle for this process only. It changes when the `[[link]]` blocks of the file
/// are reordered, so nothing persisted or hashed uses it: the journal records the link's name
/// (`Config::link(id).name`, mapped back with [`Config::link_by_name`]) and allocation hashes
/// the name too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub u16);

impl LinkId {
    /// The index into `Config::links`.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// One link (`[[link]]`): a subnet with its pools and options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Its index in `Config::links`.
    pub id: LinkId,
    /// A name unique in the file, used in logs, metrics and `reservation.link`; the link's
    /// identity: leases are journaled and addresses hashed by it, never by position.
    pub name: String,
    /// Interfaces (and VLANs) whose directly attached clients are on this link.
    pub interfaces: Vec<InterfaceSelector>,
    /// Prefixes that select this link for a relayed message whose link-address lies inside:
    /// the NA pool prefixes first, then the explicit `relay-prefixes`. Several links may list
    /// one prefix (one relay address in front of several links) when each of them has
    /// `interface_ids` and no Interface-Id is on two of them; see [`Config::link_for_relay`].
    pub relay_prefixes: Vec<Prefix>,
    /// Interface-Id option values (RFC 9915 §21.18) that select this link for relayed messages.
    /// Several links may list one value (relays that number their interfaces alike) when each
    /// of them has `relay_prefixes` to tell them apart; see [`Config::link_for_relay`].
    pub interface_ids: Vec<Vec<u8>>,
    /// The Preference option value of Advertise messages on this link (`preference`, default
    /// `[server]`'s): an RFC 6853 server can be primary for some links, standby for others.
    pub preference: u8,
    /// Lifetimes handed out on this link.
    pub timers: Timers,
    /// Whether a Solicit with Rapid Commit gets a Reply at once (`rapid-commit`).
    pub rapid_commit: bool,
    /// Milliseconds an Advertise on this link waits before it leaves (`advertise-delay-ms`,
    /// 0..=1000, default `[server]`'s), applied only while `preference` is below 255: a
    /// standby of an RFC 6853 pair lets the primary's Advertise reach clients that take the
    /// first one and ignore Preference. Replies are never delayed. See
    /// [`Link::advertise_delay`].
    pub advertise_delay_ms: u16,
    /// Whether Advertise and Reply messages to clients on this link carry a Reconfigure
    /// Accept option, telling them to accept Reconfigure messages from this server
    /// (`reconfigure-accept`, default `[server]`'s; RFC 9915 §21.20).
    pub reconfigure_accept: bool,
    /// Whether Renew and Rebind give an IA without a binding a new one
    /// (`renew-creates-bindings`, default: `[server]`'s).
    pub renew_creates_bindings: bool,
    /// Address pools (`[[link.pool]]`).
    pub na_pools: Vec<NaPool>,
    /// Prefix delegation pools (`[[link.pd-pool]]`).
    pub pd_pools: Vec<PdPool>,
    /// Options sent to clients on this link.
    pub options: LinkOptions,
    /// Option codes a relay may supply for the client in a Relay-Supplied Options option
    /// (RFC 6422), on top of [`RSOO_DEFAULT`] (`rsoo-allow`).
    pub rsoo_allow: Vec<u16>,
    /// Limits on new bindings on this link (`max-leases`, `binding-rate`, `binding-burst`).
    pub limits: LinkLimits,
    /// DNS updates of this link's clients and the Client FQDN policy (`[link.ddns]`; absent:
    /// no updates, and a Client FQDN option is answered with N set).
    pub ddns: Option<Box<DdnsSettings>>,
    /// A link of an earlier configuration that the file no longer has, kept at its index by
    /// [`Config::aligned_to`] so that its leases keep their link: nothing selects it (no
    /// interfaces, relay prefixes or Interface-Ids) and it has no pools; its leases end on
    /// the timer. Always false in a configuration read from a file.
    pub retired: bool,
}

/// The options a relay may supply on every link: the IANA registry "Options Permitted in the
/// Relay-Supplied Options Option" (RFC 6422, IANA Considerations): ERP Local Domain Name
/// (65, RFC 6440).
pub const RSOO_DEFAULT: [u16; 1] = [65];

impl Link {
    /// How long an Advertise on this link is held before it leaves, in milliseconds: the
    /// configured delay when the link's Preference is below 255, else 0.
    pub fn advertise_delay(&self) -> u16 {
        if self.preference < 255 {
            self.advertise_delay_ms
        } else {
            0
        }
    }

    /// Whether a relay may supply option `code` for clients on this link (RFC 6422).
    pub fn rsoo_allows(&self, code: u16) -> bool {
        RSOO_DEFAULT.contains(&code) || self.rsoo_allow.contains(&code)
    }
}

/// An interface name and optional VLAN id that select a link for direct clients.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InterfaceSelector {
    /// The interface name as the kernel knows it (`eth1`).
    pub name: String,
    /// The 802.1Q VLAN id (1..=4094); `None` matches untagged frames only. With
    /// `outer_vlan`, the inner (C-tag) id of a double-tagged frame.
    pub vlan: Option<u16>,
    /// The outer (S-tag) VLAN id of a double-tagged (QinQ) frame (`outer-vlan`); `None`
    /// matches frames with one tag (or none) only. The link is chosen by the whole stack.
    pub outer_vlan: Option<u16>,
}

impl InterfaceSelector {
    /// The VLAN ids this selector matches, outermost first (empty: untagged).
    fn tags(&self) -> Tags {
        Tags {
            outer: self.outer_vlan,
            inner: self.vlan,
        }
    }
}

/// A frame's VLAN ids: the outer one only when there are two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Tags {
    outer: Option<u16>,
    inner: Option<u16>,
}

impl Tags {
    /// From the ids outermost first (0, 1 or 2 of them; more never select a link).
    fn of(ids: &[u16]) -> Option<Tags> {
        match *ids {
            [] => Some(Tags::default()),
            [inner] => Some(Tags {
                outer: None,
                inner: Some(inner),
            }),
            [outer, inner] => Some(Tags {
                outer: Some(outer),
                inner: Some(inner),
            }),
            _ => None,
        }
    }
}

/// An IA_NA pool: the link prefix and the slice of it this server allocates from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NaPool {
    /// The on-link prefix (`prefix`), shared by every server of the link.
    pub prefix: Prefix,
    /// The part this server owns (`range`, `split`, or the whole prefix).
    pub range: Prefix,
}

/// An IA_PD pool: prefixes of `delegated_len` bits carved from `range`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PdPool {
    /// The aggregate the delegated prefixes come from (`prefix`).
    pub prefix: Prefix,
    /// The part this server owns (`range`, `split`, or the whole prefix).
    pub range: Prefix,
    /// Length of each delegated prefix (`delegated-length`).
    pub delegated_len: u8,
    /// The RFC 6603 excluded prefix sent with each delegation, if any.
    pub exclude: Option<PdExclude>,
    /// Whether the aggregate is carved from an address pool prefix of the same link
    /// (`inside-on-link`, default false): allowed only then, and only outside this server's
    /// address ranges; addresses inside it are not appropriate for IA_NA on the link.
    pub inside_on_link: bool,
}

/// RFC 6603 Prefix Exclude: which subnet of each delegated prefix the client must not use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PdExclude {
    /// Length of the excluded prefix (`excluded-prefix-length`), > delegated length, <= 128.
    pub len: u8,
    /// Which subnet of that length inside the delegated prefix (`excluded-subnet`, default 0).
    pub subnet: u128,
}

impl PdExclude {
    /// The excluded prefix inside `delegated`.
    pub fn prefix_in(&self, delegated: Prefix) -> Option<Prefix> {
        let extra = self.len.checked_sub(delegated.len())?;
        let offset = self
            .subnet
            .checked_shl(128 - u32::from(self.len))
            .unwrap_or(0);
        if extra < 128 && self.subnet >> extra != 0 {
            return None;
        }
        Prefix::new(Ipv6Addr::from(delegated.bits() | offset), self.len).ok()
    }
}

/// Options for one link: typed values and the same options encoded for the wire.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LinkOptions {
    /// DNS Recursive Name Servers, option 23 (`dns-servers`).
    pub dns_servers: Vec<Ipv6Addr>,
    /// Domain Search List, option 24 (`domain-search`).
    pub domain_search: Vec<String>,
    /// NTP servers, option 56 with RFC 5908 sub-options (`ntp-servers`).
    pub ntp_servers: Vec<NtpServer>,
    /// SNTP servers, option 31 (`sntp-servers`).
    pub sntp_servers: Vec<Ipv6Addr>,
    /// SOL_MAX_RT, option 82, seconds (`sol-max-rt`, 60..=86400).
    pub sol_max_rt: Option<u32>,
    /// INF_MAX_RT, option 83, seconds (`inf-max-rt`, 60..=86400).
    pub inf_max_rt: Option<u32>,
    /// Information Refresh Time, option 32, seconds (`information-refresh-time`, >= 600).
    pub information_refresh_time: Option<u32>,
    /// Boot File URL, option 59 (`bootfile-url`).
    pub bootfile_url: Option<String>,
    /// Boot File Parameters, option 60 (`bootfile-params`).
    pub bootfile_params: Vec<String>,
    /// Vendor-specific Information options, option 17 (`vendor`).
    pub vendor: Vec<VendorOption>,
    /// Options given by code (`custom`), encoded.
    pub custom: Vec<EncodedOption>,
    /// Every option above as wire bodies, sorted by code (stable: vendor options keep their
    /// order). The reply builder copies these after a 4-byte code/length header.
    pub encoded: Vec<EncodedOption>,
    /// Codes of the options sent whether the client asked for them or not, sorted
    /// (`always-send`, and `always-send = true` in `custom` entries); vendor options carry
    /// their own [`VendorOption::always_send`].
    pub always_send: Vec<u16>,
}

impl LinkOptions {
    /// The encoded options with this code (several only for vendor options).
    pub fn encoded_with_code(&self, code: u16) -> &[EncodedOption] {
        let start = self.encoded.partition_point(|option| option.code < code);
        let end = self.encoded.partition_point(|option| option.code <= code);
        &self.encoded[start..end]
    }
}

/// An NTP time source (RFC 5908 §4).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NtpServer {
    /// A unicast server address, sub-option 1.
    Address(Ipv6Addr),
    /// A multicast group address, sub-option 2.
    Multicast(Ipv6Addr),
    /// A server name, sub-option 3.
    Fqdn(String),
}

/// A Vendor-specific Information option (RFC 9915 §21.17).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VendorOption {
    /// The IANA enterprise number (`enterprise`).
    pub enterprise: u32,
    /// Its sub-options, code and encoded value (`sub-options`).
    pub sub_options: Vec<EncodedOption>,
    /// Sent whether the client asked for it or not (`always-send`).
    pub always_send: bool,
}

/// An option code and its body: the bytes after the 4-byte option header on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EncodedOption {
    /// The option code.
    pub code: u16,
    /// The option data, without code and length.
    pub body: Vec<u8>,
}

/// A fixed binding (`[[reservation]]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// How the client is recognised.
    pub client: ClientKey,
    /// The address it gets in IA_NA (`address`).
    pub address: Option<Ipv6Addr>,
    /// The prefix it gets in IA_PD (`prefix`).
    pub prefix: Option<Prefix>,
    /// The only link where it applies (`link`); `None` means any link. Required with an
    /// Interface-Id key.
    pub link: Option<LinkId>,
    /// Options for this client (`[reservation.options]`, the keys of `[options]`): an option
    /// configured here replaces the link's option of the same code; the link's others are
    /// sent as usual. Empty when none is set.
    pub options: LinkOptions,
}

impl Reservation {
    /// Whether the reservation applies to a client on `link`.
    pub fn applies_to(&self, link: LinkId) -> bool {
        self.link.is_none_or(|own| own == link)
    }
}

/// How a reservation recognises its client: one key a reservation.
///
/// When several reservations match one client, the first in this order wins (and applies to
/// the client's link): `duid`, `hw-address`, `cm-mac`, `subscriber-id`, `remote-id`,
/// `interface-id`: from the key that names the client itself to the one that names the port
/// it is behind. See [`Config::reservation_for`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientKey {
    /// The Client Identifier DUID (`duid`).
    Duid(Vec<u8>),
    /// The RFC 6939 Client Link-Layer Address a relay adds, or the link-layer address inside
    /// a DUID-LLT or DUID-LL (`hw-address`, `hw-type`).
    LinkLayer {
        /// The IANA hardware type (1 = Ethernet).
        hw_type: u16,
        /// The link-layer address.
        address: Vec<u8>,
    },
    /// The cable modem MAC address a DOCSIS CMTS adds to the Relay-forward of the modem and
    /// of every device behind it, in its CableLabs Vendor-specific Information option
    /// (enterprise 4491), sub-option 1026 CL_OPTION_CMTS_CM_MAC (`cm-mac`).
    CmMac(Vec<u8>),
    /// The RFC 4580 Subscriber-ID option body a relay adds (`subscriber-id`).
    SubscriberId(Vec<u8>),
    /// The RFC 4649 Remote-ID option body a relay adds: enterprise number, then the remote-id
    /// (`remote-id`).
    RemoteId(Vec<u8>),
    /// The Interface-Id option of the relay closest to the client, on the reservation's link
    /// (`interface-id` with `link`).
    InterfaceId(Vec<u8>),
}

impl ClientKey {
    /// The configuration keys, in the order of precedence.
    pub const NAMES: [&'static str; 6] = [
        "duid",
        "hw-address",
        "cm-mac",
        "subscriber-id",
        "remote-id",
        "interface-id",
    ];

    /// The configuration key of this kind (one of [`ClientKey::NAMES`]).
    pub fn name(&self) -> &'static str {
        match self {
            ClientKey::Duid(_) => "duid",
            ClientKey::LinkLayer { .. } => "hw-address",
            ClientKey::CmMac(_) => "cm-mac",
            ClientKey::SubscriberId(_) => "subscriber-id",
            ClientKey::RemoteId(_) => "remote-id",
            ClientKey::InterfaceId(_) => "interface-id",
        }
    }
}

/// What a client offers to match a reservation: its DUID and what the relay closest to it
/// said about it. Empty fields match nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientKeys<'a> {
    /// The Client Identifier DUID.
    pub duid: &'a [u8],
    /// The link-layer address: the RFC 6939 option of the relay, else the one inside a
    /// DUID-LLT or DUID-LL.
    pub link_layer: Option<(u16, &'a [u8])>,
    /// The cable modem MAC (CableLabs sub-option 1026 in the relay's vendor option).
    pub cm_mac: Option<&'a [u8]>,
    /// The Subscriber-ID option body (38).
    pub subscriber_id: Option<&'a [u8]>,
    /// The Remote-ID option body (37).
    pub remote_id: Option<&'a [u8]>,
    /// The Interface-Id option body (18).
    pub interface_id: Option<&'a [u8]>,
}

/// The maps of [`Index`].
pub(crate) type FastMap<K, V> = hashbrown::HashMap<K, V>;

/// Lookups built once at validation. Their keys come from the configuration, so they hash
/// with hashbrown's fast default hasher rather than std's SipHash: a packet chooses only what
/// is looked up (a relay's link-address and Interface-Id, a client's identifiers), never what
/// is stored, so it cannot crowd one bucket; and `link_for_relay` runs for every relayed
/// message.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct Index {
    links: FastMap<String, LinkId>,
    interfaces: FastMap<String, Vec<(Tags, LinkId)>>,
    /// Relay prefixes grouped by length, longest first, for longest-prefix match; the links
    /// that list each prefix.
    relay_prefixes: Vec<(u8, FastMap<u128, Vec<LinkId>>)>,
    /// The links that list each Interface-Id.
    interface_ids: FastMap<Vec<u8>, Vec<LinkId>>,
    duids: FastMap<Vec<u8>, usize>,
    link_layer: FastMap<u16, FastMap<Vec<u8>, usize>>,
    cm_macs: FastMap<Vec<u8>, usize>,
    subscriber_ids: FastMap<Vec<u8>, usize>,
    remote_ids: FastMap<Vec<u8>, usize>,
    /// Per Interface-Id, the reservations keyed by it and their links.
    reserved_interface_ids: FastMap<Vec<u8>, Vec<(LinkId, usize)>>,
    addresses: FastMap<Ipv6Addr, usize>,
    prefixes: FastMap<Prefix, usize>,
}

/// A configuration problem: which file, which field, what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    file: String,
    field: String,
    problem: String,
    position: Option<(usize, usize)>,
}

impl ConfigError {
    /// An error in `file` at `field` (empty for the whole file): `problem`.
    pub fn new(file: &str, field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            field: field.into(),
            problem: problem.into(),
            position: None,
        }
    }

    /// The file name given to the loader.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The field path, e.g. `link[1].pool[0].range`; empty for syntax and I/O errors.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong.
    pub fn problem(&self) -> &str {
        &self.problem
    }

    /// Line and column (from 1) where the TOML reader stopped, for syntax and type errors.
    pub fn line_column(&self) -> Option<(usize, usize)> {
        self.position
    }
}

impl fmt::Display for ConfigError {
    /// `FILE: FIELD: PROBLEM`, then ` (line L, column C)` when the reader knows the position.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.problem)?;
        if let Some((line, column)) = self.position {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Parses and validates `text`; `file` names it in errors.
    ///
    /// Does no I/O: when the file gives `duid-file` instead of `duid`, `server.duid` stays
    /// empty until [`Config::set_server_duid`].
    pub fn from_toml_str(text: &str, file: &str) -> Result<Config, ConfigError> {
        let raw = validate::parse(text, file)?;
        validate::build(raw, file)
    }

    /// Sets the Server Identifier DUID, for a configuration that names a `duid-file`: the
    /// caller reads (or generates and saves) the DUID kept there.
    pub fn set_server_duid(&mut self, duid: ServerDuid) {
        self.server.duid = duid.into_bytes();
    }

    /// The configuration as TOML that `from_toml_str` reads back into an equal `Config`.
    pub fn to_toml_string(&self) -> String {
        validate::unbuild(self)
    }

    /// The link with this id; ids come from this configuration, so it is always there.
    pub fn link(&self, id: LinkId) -> &Link {
        &self.links[id.index()]
    }

    /// The link configured with this name (`[[link]]` `name`, unique in the file), or the
    /// retired link of that name (see [`Config::aligned_to`]).
    pub fn link_by_name(&self, name: &str) -> Option<LinkId> {
        self.index.links.get(name).copied()
    }

    /// The link a direct client arriving on `interface` (with `vlan`) belongs to.
    pub fn link_for_interface(&self, interface: &str, vlan: Option<u16>) -> Option<LinkId> {
        match vlan {
            Some(vlan) => self.link_for_vlans(interface, &[vlan]),
            None => self.link_for_vlans(interface, &[]),
        }
    }

    /// The link served directly on `interface` for a frame with VLAN ids `vlans`, outermost
    /// first: the whole stack selects it, so customers with the same C-tag inside different
    /// S-tags are on different links.
    pub fn link_for_vlans(&self, interface: &str, vlans: &[u16]) -> Option<LinkId> {
        let tags = Tags::of(vlans)?;
        self.index
            .interfaces
            .get(interface)?
            .iter()
            .find(|(own, _)| *own == tags)
            .map(|(_, link)| *link)
    }

    /// Whether a Relay-forward from `source` may be answered: `relay-sources` is empty, or
    /// holds it. Datapaths check this and [`Config::relays_on`] before the engine reads one.
    pub fn relay_source_allowed(&self, source: Ipv6Addr) -> bool {
        let sources = &self.server.relay_sources;
        sources.is_empty() || sources.iter().any(|prefix| prefix.contains(source))
    }

    /// Whether `requestor` may send Leasequery messages: `[leasequery] requestors` holds it
    /// (an empty list admits nobody).
    pub fn leasequery_allowed(&self, requestor: Ipv6Addr) -> bool {
        self.leasequery
            .requestors
            .iter()
            .any(|prefix| prefix.contains(requestor))
    }

    /// Whether relay agents are accepted on `interface` at all (`relay-interfaces` is empty,
    /// or lists it).
    pub fn relays_on(&self, interface: &str) -> bool {
        let list = &self.server.relay_interfaces;
        list.is_empty() || list.iter().any(|own| own == interface)
    }

    /// The link of a relayed client, from the relay's link-address and Interface-Id option.
    ///
    /// In this order:
    /// 1. both keys: the link that lists the Interface-Id and the longest relay prefix (pool
    ///    prefix or `relay-prefixes`) holding the link-address among such links;
    /// 2. the Interface-Id alone, when one link lists it;
    /// 3. the link-address alone: the longest relay prefix holding it, when one link lists
    ///    that prefix.
    ///
    /// So links behind one relay address are told apart by Interface-Id, and links behind
    /// relays that send the same Interface-Id by link-address. Validation rejects the
    /// configurations where one pair of keys could select two links.
    pub fn link_for_relay(
        &self,
        link_address: Ipv6Addr,
        interface_id: Option<&[u8]>,
    ) -> Option<LinkId> {
        // RFC 9915 §13.1, in substance:
        // If the server receives the message from a forwarding relay agent, then the client
        // is on the same link as the one to which the interface, identified by the
        // link-address field in the message from the relay agent, is attached. According to
        // RFC 6221, the server MUST ignore any link-address field whose value is zero.
        // (The server also uses "other information in options supplied by the relay agent":
        // the Interface-Id.)
        let bits = u128::from(link_address);
        let by_prefix = self
            .index
            .relay_prefixes
            .iter()
            .filter(|_| !link_address.is_unspecified())
            .filter_map(move |(len, links)| links.get(&(bits & crate::prefix::mask(*len))));
        if let Some(id) = interface_id {
            let both = by_prefix.clone().flatten().find(|link| {
                self.link(**link)
                    .interface_ids
                    .iter()
                    .any(|own| own.as_slice() == id)
            });
            if let Some(link) = both {
                return Some(*link);
            }
            if let Some([link]) = self.index.interface_ids.get(id).map(Vec::as_slice) {
                return Some(*link);
            }
        }
        match by_prefix.clone().next().map(Vec::as_slice) {
            Some([link]) => Some(*link),
            _ => None,
        }
    }

    /// The reservation for a client DUID, on whatever link (check `Reservation::applies_to`).
    pub fn reservation_for_duid(&self, duid: &[u8]) -> Option<&Reservation> {
        let index = *self.index.duids.get(duid)?;
        self.reservations.get(index)
    }

    /// The reservation for an RFC 6939 client link-layer address.
    pub fn reservation_for_link_layer(&self, hw_type: u16, address: &[u8]) -> Option<&Reservation> {
        let index = *self.index.link_layer.get(&hw_type)?.get(address)?;
        self.reservations.get(index)
    }

    /// The reservation of a client on `link`, by the first key that selects one applying to
    /// that link, in the order `duid`, `hw-address`, `cm-mac`, `subscriber-id`, `remote-id`,
    /// `interface-id` (on `link`).
    pub fn reservation_for(&self, link: LinkId, keys: &ClientKeys<'_>) -> Option<&Reservation> {
        if self.reservations.is_empty() {
            // The common case, without hashing anything.
            return None;
        }
        let index = &self.index;
        let applies = |i: Option<&usize>| {
            i.and_then(|i| self.reservations.get(*i))
                .filter(|reservation| reservation.applies_to(link))
        };
        applies(index.duids.get(keys.duid))
            .or_else(|| {
                let (hw_type, address) = keys.link_layer?;
                applies(index.link_layer.get(&hw_type)?.get(address))
            })
            .or_else(|| applies(index.cm_macs.get(keys.cm_mac?)))
            .or_else(|| applies(index.subscriber_ids.get(keys.subscriber_id?)))
            .or_else(|| applies(index.remote_ids.get(keys.remote_id?)))
            .or_else(|| {
                let on_links = index.reserved_interface_ids.get(keys.interface_id?)?;
                let (_, i) = on_links.iter().find(|(own, _)| *own == link)?;
                applies(Some(i))
            })
    }

    /// The reservation holding this address, so the allocator can skip it.
    pub fn reservation_for_address(&self, address: Ipv6Addr) -> Option<&Reservation> {
        let index = *self.index.addresses.get(&address)?;
        self.reservations.get(index)
    }

    /// The reservation holding this delegated prefix, so the allocator can skip it.
    pub fn reservation_for_prefix(&self, prefix: Prefix) -> Option<&Reservation> {
        let index = *self.index.prefixes.get(&prefix)?;
        self.reservations.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_display_with_and_without_position() {
        let error = ConfigError::new("a.toml", "link[0].name", "is empty");
        assert_eq!(error.to_string(), "a.toml: link[0].name: is empty");
        let error = ConfigError {
            position: Some((3, 7)),
            ..ConfigError::new("a.toml", "", "bad")
        };
        assert_eq!(error.to_string(), "a.toml: bad (line 3, column 7)");
    }

    #[test]
    fn exclude_prefix_inside_delegation() {
        let delegated: Prefix = "2001:db8:0:100::/56".parse().unwrap();
        let exclude = PdExclude { len: 64, subnet: 1 };
        assert_eq!(
            exclude.prefix_in(delegated).unwrap().to_string(),
            "2001:db8:0:101::/64"
        );
        let too_big = PdExclude {
            len: 64,
            subnet: 256,
        };
        assert_eq!(too_big.prefix_in(delegated), None);
    }

    #[test]
    fn encoded_with_code_finds_runs() {
        let options = LinkOptions {
            encoded: vec![
                EncodedOption {
                    code: 17,
                    body: vec![1],
                },
                EncodedOption {
                    code: 17,
                    body: vec![2],
                },
                EncodedOption {
                    code: 23,
                    body: vec![3],
                },
            ],
            ..LinkOptions::default()
        };
        assert_eq!(options.encoded_with_code(17).len(), 2);
        assert_eq!(options.encoded_with_code(23)[0].body, [3]);
        assert!(options.encoded_with_code(24).is_empty());
    }
}
