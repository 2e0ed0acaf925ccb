//! The configuration file as serde reads and writes it, before validation.
//!
//! Every key is kebab-case and unknown keys are errors. Values that need checking against other
//! values (prefixes, addresses, hex) stay text here; `validate` turns them into the model and
//! names the field of every problem.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ddns::RawDdns;
use super::leasequery::RawLeasequery;
use super::text::parse_duration;
use super::{RebindForeign, UnknownLink};

/// The whole file.
#[derive(Deserialize, Serialize, Clone, Default, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawConfig {
    /// `[server]`: identity, Preference, salt, default lifetimes.
    #[serde(default)]
    pub server: RawServer,
    /// `[options]`: options every link sends unless it sets its own.
    #[serde(default, skip_serializing_if = "RawOptions::is_empty")]
    pub options: RawOptions,
    /// `[[link]]`: the links served, in order (a link's position is its `LinkId`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link: Vec<RawLink>,
    /// `[[reservation]]`: fixed bindings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reservation: Vec<RawReservation>,
    /// `[leasequery]`: who may ask about bindings.
    #[serde(default, skip_serializing_if = "RawLeasequery::is_empty")]
    pub leasequery: RawLeasequery,
}

/// `[server]`.
#[derive(Deserialize, Serialize, Clone, Default, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawServer {
    /// Server DUID as hex (`00:01:00:01:...` or `00010001...`); or use `duid-file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duid: Option<String>,
    /// File that keeps a DUID generated on first start (when `duid` is absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duid_file: Option<String>,
    /// Preference option value 0..=255 (default 0; 255 = take me at once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preference: Option<u8>,
    /// Milliseconds an Advertise waits when the Preference is below 255, 0..=1000 (default 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise_delay_ms: Option<u16>,
    /// Send Reconfigure Accept (option 20) in Advertise and Reply (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconfigure_accept: Option<bool>,
    /// Allocation salt (default empty): equal salts and ranges give equal addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// `"zero"` (default) or `"extend"`: Rebind of another server's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebind_foreign: Option<RebindForeign>,
    /// Renew and Rebind of an IA without a binding create one (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renew_creates_bindings: Option<bool>,
    /// `"drop"` (default) or `"no-addrs-avail"`: a relayed client on no configured link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_link: Option<UnknownLink>,
    /// How long a declined address rests (default `"1d"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_probation: Option<Seconds>,
    /// Lease table sizing hint (default 65536).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_leases: Option<u64>,
    /// Default T1 (default `"30m"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t1: Option<Seconds>,
    /// Default T2 (default `"48m"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t2: Option<Seconds>,
    /// Default preferred lifetime (default `"1h"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_lifetime: Option<Seconds>,
    /// Default valid lifetime (default `"2h"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_lifetime: Option<Seconds>,
    /// Interfaces where relay agents live (default: every interface); XDP is attached there
    /// without making them links of direct clients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relay_interfaces: Vec<String>,
    /// Prefixes relay agents send from (default: any source).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relay_sources: Vec<String>,
    /// Bound leases at most (default 16777216; 0: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_leases: Option<u64>,
    /// Bindings one relay's clients hold at most (default 0: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_max_bindings: Option<u32>,
    /// New bindings a second per relay (default 1000; 0: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_binding_rate: Option<u32>,
    /// Burst of new bindings per relay (default 10000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_binding_burst: Option<u32>,
    /// Bindings per client link-layer address at most (default 32; 0: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_max_bindings: Option<u32>,
    /// New bindings a second per client link-layer address (default 4; 0: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_binding_rate: Option<u32>,
    /// Burst of new bindings per client link-layer address (default 32).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_binding_burst: Option<u32>,
    /// Declines per client per `decline-probation` (default 4; 0: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_limit: Option<u32>,
}

/// `[[link]]`.
#[derive(Deserialize, Serialize, Clone, Default, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawLink {
    /// Unique link name, used in logs, metrics and `reservation.link`.
    pub name: String,
    /// Interfaces (and VLANs) of direct clients: `"eth1"` or `{ name, vlan }`.
    #[serde(
        default,
        deserialize_with = "string_or_table_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub interfaces: Vec<RawInterface>,
    /// Extra prefixes matched against a relay's link-address (pool prefixes always are).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relay_prefixes: Vec<String>,
    /// Interface-Id values that select the link: `"text"` or `{ hex = "..." }`.
    #[serde(
        default,
        deserialize_with = "string_or_table_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub interface_ids: Vec<RawInterfaceId>,
    /// T1 on this link (default: `[server]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t1: Option<Seconds>,
    /// T2 on this link (default: `[server]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t2: Option<Seconds>,
    /// Preferred lifetime on this link (default: `[server]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_lifetime: Option<Seconds>,
    /// Valid lifetime on this link (default: `[server]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_lifetime: Option<Seconds>,
    /// Preference option value on this link (default: `[server]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preference: Option<u8>,
    /// Milliseconds an Advertise waits when `preference` < 255 (default: `[server]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise_delay_ms: Option<u16>,
    /// Send Reconfigure Accept (option 20) in Advertise and Reply (default: `[server]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconfigure_accept: Option<bool>,
    /// Honour Rapid Commit (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rapid_commit: Option<bool>,
    /// Renew and Rebind of an IA without a binding create one (default: `[server]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renew_creates_bindings: Option<bool>,
    /// Address pools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pool: Vec<RawNaPool>,
    /// Prefix delegation pools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pd_pool: Vec<RawPdPool>,
    /// Options of this link, on top of `[options]`.
    #[serde(default, skip_serializing_if = "RawOptions::is_empty")]
    pub options: RawOptions,
    /// Option codes a relay may hand to clients in a Relay-Supplied Options option, on top of
    /// the RFC 6422 default set (default none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rsoo_allow: Vec<u16>,
    /// Bound leases on this link at most (default 0: the pools' size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_leases: Option<u64>,
    /// New bindings a second on this link (default 20000; 0: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding_rate: Option<u32>,
    /// Burst of new bindings on this link (default 100000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding_burst: Option<u32>,
    /// `[link.ddns]`: DNS updates of this link's clients (default: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ddns: Option<RawDdns>,
}

/// An interface selector: `"eth1"`, `{ name = "eth1", vlan = 100 }` or, double-tagged (QinQ),
/// `{ name = "eth1", vlan = 100, outer-vlan = 20 }`.
#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawInterface {
    /// Interface name.
    pub name: String,
    /// VLAN id 1..=4094; absent = untagged frames only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// The outer (S-tag) VLAN id of double-tagged frames, 1..=4094; absent = one tag only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outer_vlan: Option<u16>,
}

/// An Interface-Id: `"text"` (its bytes) or `{ hex = "0a0b" }`.
#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawInterfaceId {
    /// The Interface-Id as text (its UTF-8 bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The Interface-Id as hex bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
}

/// `[[link.pool]]`.
#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawNaPool {
    /// The on-link prefix, the same on every server of the link.
    pub prefix: String,
    /// The slice of `prefix` this server allocates from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    /// `"PART/PARTS"` (from 1, PARTS a power of two) instead of `range`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
}

/// `[[link.pd-pool]]`.
#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawPdPool {
    /// The aggregate delegated prefixes come from.
    pub prefix: String,
    /// Length of each delegated prefix.
    pub delegated_length: u8,
    /// The slice of `prefix` this server delegates from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    /// `"PART/PARTS"` instead of `range`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    /// RFC 6603 excluded prefix length (> delegated-length, <= 128).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excluded_prefix_length: Option<u8>,
    /// Which subnet of that length is excluded (default 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excluded_subnet: Option<u64>,
    /// The aggregate lies inside an address pool prefix of this link (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inside_on_link: Option<bool>,
}

/// `[options]` (defaults for every link) and `[link.options]`.
#[derive(Deserialize, Serialize, Clone, Default, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawOptions {
    /// Option 23 addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_servers: Option<Vec<String>>,
    /// Option 24 domain names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_search: Option<Vec<String>>,
    /// Option 56: addresses, multicast groups or names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ntp_servers: Option<Vec<String>>,
    /// Option 31 addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sntp_servers: Option<Vec<String>>,
    /// Option 82, 60..=86400 seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sol_max_rt: Option<Seconds>,
    /// Option 83, 60..=86400 seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inf_max_rt: Option<Seconds>,
    /// Option 32, at least 600 seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub information_refresh_time: Option<Seconds>,
    /// Option 59 URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootfile_url: Option<String>,
    /// Option 60 parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootfile_params: Option<Vec<String>>,
    /// Option 17, one per enterprise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<Vec<RawVendor>>,
    /// Any other option by code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom: Option<Vec<RawValue>>,
    /// Options sent whether the client asked or not: typed keys by name, `custom` by code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub always_send: Option<Vec<RawOptionName>>,
}

/// An option named in `always-send`: a typed key (`"dns-servers"`) or a `custom` code.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub(crate) enum RawOptionName {
    /// An option code.
    Code(u16),
    /// The key of a typed option.
    Key(String),
}

impl RawOptions {
    pub fn is_empty(&self) -> bool {
        self.dns_servers.is_none()
            && self.domain_search.is_none()
            && self.ntp_servers.is_none()
            && self.sntp_servers.is_none()
            && self.sol_max_rt.is_none()
            && self.inf_max_rt.is_none()
            && self.information_refresh_time.is_none()
            && self.bootfile_url.is_none()
            && self.bootfile_params.is_none()
            && self.vendor.is_none()
            && self.custom.is_none()
            && self.always_send.is_none()
    }
}

/// One Vendor-specific Information option: `{ enterprise = 4491, sub-options = [...] }`.
#[derive(Deserialize, Serialize, Clone, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawVendor {
    /// IANA enterprise number.
    pub enterprise: u32,
    /// Sub-options, each a code and one typed value.
    #[serde(default)]
    pub sub_options: Vec<RawValue>,
    /// Send this option whether the client asked or not (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub always_send: Option<bool>,
}

/// An option (or vendor sub-option) by code with exactly one typed value.
#[derive(Deserialize, Serialize, Clone, Default, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawValue {
    /// Option or sub-option code.
    pub code: u16,
    /// Raw bytes as hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
    /// UTF-8 text, no terminator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// One IPv6 address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// A list of IPv6 addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<String>>,
    /// DNS names in wire format, concatenated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domains: Option<Vec<String>>,
    /// One byte.
    #[serde(rename = "u8", skip_serializing_if = "Option::is_none")]
    pub uint8: Option<u8>,
    /// A big-endian 16-bit value.
    #[serde(rename = "u16", skip_serializing_if = "Option::is_none")]
    pub uint16: Option<u16>,
    /// A big-endian 32-bit value.
    #[serde(rename = "u32", skip_serializing_if = "Option::is_none")]
    pub uint32: Option<u32>,
    /// A `custom` option sent whether the client asked or not (default false); not for
    /// sub-options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub always_send: Option<bool>,
}

/// `[[reservation]]`.
#[derive(Deserialize, Serialize, Clone, Default, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawReservation {
    /// The client DUID as hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duid: Option<String>,
    /// The RFC 6939 client link-layer address as hex (instead of `duid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hw_address: Option<String>,
    /// Its hardware type (default 1, Ethernet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hw_type: Option<u16>,
    /// Reserved IA_NA address, inside a pool prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Reserved IA_PD prefix, of delegated-length inside a pd-pool prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Name of the only link where the reservation applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The RFC 4649 Remote-ID option body as hex, enterprise number first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    /// The RFC 4580 Subscriber-ID: `"text"` or `{ hex = "..." }`.
    #[serde(
        default,
        deserialize_with = "string_or_table_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub subscriber_id: Option<RawInterfaceId>,
    /// The Interface-Id of the relay's interface (with `link`): `"text"` or `{ hex = "..." }`.
    #[serde(
        default,
        deserialize_with = "string_or_table_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub interface_id: Option<RawInterfaceId>,
    /// The cable modem MAC a CMTS relays (CableLabs vendor sub-option 1026) as hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cm_mac: Option<String>,
    /// Options for this client, replacing the link's of the same code.
    #[serde(default, skip_serializing_if = "RawOptions::is_empty")]
    pub options: RawOptions,
}

/// A duration in seconds: an integer, or a string such as `"30m"`, `"1h"`, `"2d"`, `"infinite"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seconds(pub u32);

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 == u32::MAX {
            serializer.serialize_str("infinite")
        } else {
            serializer.serialize_u32(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecondsVisitor;

        impl Visitor<'_> for SecondsVisitor {
            type Value = Seconds;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("seconds (3600) or a duration such as \"30m\", \"1h\", \"2d\"")
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Seconds, E> {
                u32::try_from(value).map(Seconds).map_err(|_| {
                    E::custom(format!(
                        "{value} is not a number of seconds from 0 to 4294967295 \
                         (write \"infinite\" for no limit)"
                    ))
                })
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Seconds, E> {
                self.visit_i64(i64::try_from(value).unwrap_or(i64::MAX))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Seconds, E> {
                parse_duration(value).map(Seconds).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(SecondsVisitor)
    }
}

/// Reads `T` from a table, or from a bare string through `From<String>`.
struct StringOrTable<T>(PhantomData<T>);

impl<'de, T> Visitor<'de> for StringOrTable<T>
where
    T: Deserialize<'de> + From<String>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or a table")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<T, E> {
        Ok(T::from(value.to_owned()))
    }

    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<T, M::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map))
    }
}

impl From<String> for RawInterface {
    fn from(name: String) -> Self {
        Self {
            name,
            vlan: None,
            outer_vlan: None,
        }
    }
}

impl From<String> for RawInterfaceId {
    fn from(text: String) -> Self {
        Self {
            text: Some(text),
            hex: None,
        }
    }
}

/// Deserializes one value that is a string or a table.
pub(crate) fn string_or_table_option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + From<String>,
{
    deserializer
        .deserialize_any(StringOrTable(PhantomData))
        .map(Some)
}

/// Deserializes a list whose items are strings or tables.
pub(crate) fn string_or_table_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + From<String>,
{
    struct Item<T>(T);

    impl<'de, T: Deserialize<'de> + From<String>> Deserialize<'de> for Item<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer
                .deserialize_any(StringOrTable(PhantomData))
                .map(Item)
        }
    }

    let items: Vec<Item<T>> = Vec::deserialize(deserializer)?;
    Ok(items.into_iter().map(|Item(item)| item).collect())
}
