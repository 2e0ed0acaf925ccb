//! `[link.ddns]`: DNS updates (RFC 2136) of the AAAA and PTR records of a link's clients, and
//! the server's Client FQDN policy (RFC 4704).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::raw::Seconds;

/// TTL of the records written when `ttl` is not given (seconds).
pub const DEFAULT_DDNS_TTL: u32 = 300;
/// The first label's prefix of generated names when `generated-prefix` is not given.
pub const DEFAULT_GENERATED_PREFIX: &str = "dhcp";
/// The DNS port servers are reached on when an entry of `servers` gives none.
pub const DNS_PORT: u16 = 53;

/// A link's DNS update settings (`[link.ddns]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DdnsSettings {
    /// The zone the AAAA and DHCID records go into (`forward-zone`), lower case, absolute
    /// (ends with a dot).
    pub forward_zone: String,
    /// The zone the PTR records go into (`reverse-zone`), lower case, absolute, under
    /// `ip6.arpa.`.
    pub reverse_zone: String,
    /// The DNS servers updates are sent to, in order (`servers`; port 53 unless given).
    pub servers: Vec<SocketAddr>,
    /// A BIND key file (`key "name" { algorithm hmac-sha256; secret "..."; };`) whose key signs
    /// every update with TSIG (`tsig-key-file`; absent: unsigned updates). Read by the daemon.
    pub tsig_key_file: Option<PathBuf>,
    /// TTL of the AAAA, PTR and DHCID records (`ttl`, default 300 s).
    pub ttl: u32,
    /// Appended to names a client sends without their domain (a partial name, RFC 4704 §4.1)
    /// and to generated names (`qualifying-suffix`, default `forward-zone`); lower case,
    /// absolute.
    pub qualifying_suffix: String,
    /// The name given to clients that send no Client FQDN option (`generated-name`).
    pub generated_name: GeneratedName,
    /// The first label of generated names starts with this (`generated-prefix`, default
    /// `"dhcp"`).
    pub generated_prefix: String,
    /// Whether the server updates the AAAA record even when the client asks to do it itself
    /// (S = 0), answering with O set (`override-client-update`, default false; RFC 4704 §6.1).
    pub override_client_update: bool,
    /// Whether the server updates DNS even when the client asks nobody to (N = 1), answering
    /// with O set (`override-no-update`, default false; RFC 4704 §6.1).
    pub override_no_update: bool,
    /// Whether the other servers of the RFC 6853 set hand out the same addresses as this one
    /// (the identical model; `identical-peers`, default false): then the expiry of a lease
    /// whose rebinding time came before this server started removes no records, since the
    /// client could only Rebind with a peer, which extends the same address (docs/ddns.md).
    pub identical_peers: bool,
}

/// How a name is made for a client that sends no Client FQDN option.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GeneratedName {
    /// From the address: `dhcp-2001-db8-0-0-0-0-0-1a.<suffix>` (every group, so no `::`).
    #[default]
    Address,
    /// From the DUID: `dhcp-<DUID in hex>.<suffix>`, the DUID cut to 28 bytes.
    Duid,
    /// No name: clients without a Client FQDN option get no records.
    None,
}

/// `[link.ddns]` as the file has it.
#[derive(Deserialize, Serialize, Clone, Default, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawDdns {
    /// The zone of the AAAA and DHCID records (required).
    #[serde(default)]
    pub forward_zone: String,
    /// The zone of the PTR records, under ip6.arpa (required).
    #[serde(default)]
    pub reverse_zone: String,
    /// DNS servers: `"2001:db8::53"` or `"[2001:db8::53]:5353"` (at least one).
    #[serde(default)]
    pub servers: Vec<String>,
    /// BIND key file with the TSIG key (default: none, updates unsigned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tsig_key_file: Option<String>,
    /// TTL of the records (default `"5m"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Seconds>,
    /// Suffix of partial and generated names (default: `forward-zone`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qualifying_suffix: Option<String>,
    /// `"address"` (default), `"duid"` or `"none"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_name: Option<GeneratedName>,
    /// First label prefix of generated names (default `"dhcp"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_prefix: Option<String>,
    /// Update AAAA when the client asks to do it (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_client_update: Option<bool>,
    /// Update DNS when the client asks nobody to (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_no_update: Option<bool>,
    /// The other servers hand out the same addresses (RFC 6853 identical model; default
    /// false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identical_peers: Option<bool>,
}

/// Validates `[link.ddns]`; `base` is the link's field (`link[0]`); an error names its field.
pub(crate) fn build(raw: &RawDdns, base: &str) -> Result<DdnsSettings, (String, String)> {
    let field = |name: &str| format!("{base}.ddns.{name}");
    let forward_zone = zone_name(&raw.forward_zone).map_err(|e| (field("forward-zone"), e))?;
    let reverse_zone = zone_name(&raw.reverse_zone).map_err(|e| (field("reverse-zone"), e))?;
    if !(reverse_zone == "ip6.arpa." || reverse_zone.ends_with(".ip6.arpa.")) {
        return Err((
            field("reverse-zone"),
            format!("{reverse_zone} is not under ip6.arpa."),
        ));
    }
    if raw.servers.is_empty() {
        return Err((
            field("servers"),
            "is empty: give the DNS servers that take updates".into(),
        ));
    }
    let mut servers = Vec::with_capacity(raw.servers.len());
    for (i, text) in raw.servers.iter().enumerate() {
        let server = server_address(text).map_err(|e| (format!("{}[{i}]", field("servers")), e))?;
        if servers.contains(&server) {
            return Err((
                format!("{}[{i}]", field("servers")),
                format!("{server} is listed twice"),
            ));
        }
        servers.push(server);
    }
    let tsig_key_file = match &raw.tsig_key_file {
        Some(path) if path.trim().is_empty() => {
            return Err((field("tsig-key-file"), "is empty".into()));
        }
        Some(path) => Some(PathBuf::from(path)),
        None => None,
    };
    let ttl = raw.ttl.map_or(DEFAULT_DDNS_TTL, |s| s.0);
    if ttl == 0 || ttl > i32::MAX as u32 {
        return Err((
            field("ttl"),
            format!("{ttl} is out of range: 1 s to 2147483647 s (RFC 2181 §8)"),
        ));
    }
    let qualifying_suffix = match &raw.qualifying_suffix {
        Some(text) => zone_name(text).map_err(|e| (field("qualifying-suffix"), e))?,
        None => forward_zone.clone(),
    };
    let generated_prefix = raw
        .generated_prefix
        .clone()
        .unwrap_or_else(|| DEFAULT_GENERATED_PREFIX.to_owned());
    if generated_prefix.is_empty()
        || generated_prefix.len() > 20
        || !generated_prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        || generated_prefix.starts_with('-')
    {
        return Err((
            field("generated-prefix"),
            format!(
                "{generated_prefix:?} is not 1 to 20 letters, digits or hyphens starting with \
                 a letter or digit"
            ),
        ));
    }
    Ok(DdnsSettings {
        forward_zone,
        reverse_zone,
        servers,
        tsig_key_file,
        ttl,
        qualifying_suffix,
        generated_name: raw.generated_name.unwrap_or_default(),
        generated_prefix: generated_prefix.to_ascii_lowercase(),
        override_client_update: raw.override_client_update.unwrap_or(false),
        override_no_update: raw.override_no_update.unwrap_or(false),
        identical_peers: raw.identical_peers.unwrap_or(false),
    })
}

/// The settings back as the file has them.
pub(crate) fn unbuild(settings: &DdnsSettings) -> RawDdns {
    RawDdns {
        forward_zone: settings.forward_zone.clone(),
        reverse_zone: settings.reverse_zone.clone(),
        servers: settings.servers.iter().map(|s| s.to_string()).collect(),
        tsig_key_file: settings
            .tsig_key_file
            .as_ref()
            .map(|p| p.display().to_string()),
        ttl: Some(Seconds(settings.ttl)),
        qualifying_suffix: Some(settings.qualifying_suffix.clone()),
        generated_name: Some(settings.generated_name),
        generated_prefix: Some(settings.generated_prefix.clone()),
        override_client_update: Some(settings.override_client_update),
        override_no_update: Some(settings.override_no_update),
        identical_peers: Some(settings.identical_peers),
    }
}

/// A zone or suffix name: lower case, absolute, each label 1..=63 letters, digits, hyphens or
/// underscores, 253 characters at most.
fn zone_name(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed == "." {
        return Err("is empty: give a domain name such as \"example.net\"".into());
    }
    let bare = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if bare.len() > 253 {
        return Err(format!("{trimmed:?} is longer than 253 characters"));
    }
    for label in bare.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "{trimmed:?} has an empty label or one longer than 63 characters"
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "{trimmed:?}: label {label:?} holds a character other than a letter, digit, \
                 hyphen or underscore"
            ));
        }
    }
    Ok(format!("{}.", bare.to_ascii_lowercase()))
}

/// `"2001:db8::53"`, `"[2001:db8::53]:5353"` or an IPv4 address.
fn server_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        if address.port() == 0 {
            return Err(format!("{text:?}: port 0"));
        }
        return Ok(address);
    }
    if let Ok(address) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(address, DNS_PORT));
    }
    Err(format!(
        "{text:?} is not an address (\"2001:db8::53\") or an address and port \
         (\"[2001:db8::53]:53\")"
    ))
}

/// The reverse name of `address` (`….ip6.arpa.`, RFC 3596 §2.5).
pub fn reverse_name(address: Ipv6Addr) -> String {
    let mut name = String::with_capacity(73);
    for byte in address.octets().iter().rev() {
        for nibble in [byte & 0x0f, byte >> 4] {
            name.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
            name.push('.');
        }
    }
    name.push_str("ip6.arpa.");
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawDdns {
        RawDdns {
            forward_zone: "Example.NET".into(),
            reverse_zone: "8.b.d.0.1.0.0.2.ip6.arpa".into(),
            servers: vec!["2001:db8::53".into(), "[2001:db8::54]:5353".into()],
            ..RawDdns::default()
        }
    }

    #[test]
    fn defaults() {
        let settings = build(&raw(), "link[0]").unwrap();
        assert_eq!(settings.forward_zone, "example.net.");
        assert_eq!(settings.qualifying_suffix, "example.net.");
        assert_eq!(settings.reverse_zone, "8.b.d.0.1.0.0.2.ip6.arpa.");
        assert_eq!(settings.servers[0], "[2001:db8::53]:53".parse().unwrap());
        assert_eq!(settings.servers[1], "[2001:db8::54]:5353".parse().unwrap());
        assert_eq!(settings.ttl, DEFAULT_DDNS_TTL);
        assert_eq!(settings.generated_name, GeneratedName::Address);
        assert!(!settings.override_client_update && !settings.override_no_update);
        assert!(!settings.identical_peers);
    }

    #[test]
    fn errors_name_the_field() {
        let mut bad = raw();
        bad.reverse_zone = "example.net".into();
        assert_eq!(
            build(&bad, "link[2]").unwrap_err().0,
            "link[2].ddns.reverse-zone"
        );
        let mut bad = raw();
        bad.servers = vec!["2001:db8::53".into(), "nameserver".into()];
        assert_eq!(
            build(&bad, "link[0]").unwrap_err().0,
            "link[0].ddns.servers[1]"
        );
        let mut bad = raw();
        bad.forward_zone = "bad name.net".into();
        assert_eq!(
            build(&bad, "link[0]").unwrap_err().0,
            "link[0].ddns.forward-zone"
        );
        let mut bad = raw();
        bad.servers.clear();
        assert_eq!(
            build(&bad, "link[0]").unwrap_err().0,
            "link[0].ddns.servers"
        );
        let mut bad = raw();
        bad.ttl = Some(Seconds(0));
        assert_eq!(build(&bad, "link[0]").unwrap_err().0, "link[0].ddns.ttl");
    }

    #[test]
    fn reverse_names_are_nibbles() {
        let name = reverse_name("2001:db8::1".parse().unwrap());
        assert_eq!(
            name,
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
        );
    }
}
