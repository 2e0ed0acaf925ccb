//! Link options: typed values from the file and their wire encoding.

use std::net::Ipv6Addr;

use super::raw::{RawOptionName, RawOptions, RawValue, RawVendor};
use super::text::{encode_dns_name, parse_hex};
use super::{EncodedOption, LinkOptions, NtpServer, VendorOption};

/// Option codes (IANA "DHCPv6 Option Codes").
pub(crate) mod code {
    pub const VENDOR_OPTS: u16 = 17;
    pub const DNS_SERVERS: u16 = 23;
    pub const DOMAIN_LIST: u16 = 24;
    pub const SNTP_SERVERS: u16 = 31;
    pub const INFORMATION_REFRESH_TIME: u16 = 32;
    pub const NTP_SERVER: u16 = 56;
    pub const BOOTFILE_URL: u16 = 59;
    pub const BOOTFILE_PARAM: u16 = 60;
    pub const SOL_MAX_RT: u16 = 82;
    pub const INF_MAX_RT: u16 = 83;
}

/// RFC 5908 §4 NTP sub-option codes.
const NTP_SUBOPTION_SRV_ADDR: u16 = 1;
const NTP_SUBOPTION_MC_ADDR: u16 = 2;
const NTP_SUBOPTION_SRV_FQDN: u16 = 3;

/// The keys of the typed options and their codes, as `always-send` names them.
const TYPED_KEYS: [(&str, u16); 9] = [
    ("dns-servers", code::DNS_SERVERS),
    ("domain-search", code::DOMAIN_LIST),
    ("sntp-servers", code::SNTP_SERVERS),
    ("information-refresh-time", code::INFORMATION_REFRESH_TIME),
    ("ntp-servers", code::NTP_SERVER),
    ("bootfile-url", code::BOOTFILE_URL),
    ("bootfile-params", code::BOOTFILE_PARAM),
    ("sol-max-rt", code::SOL_MAX_RT),
    ("inf-max-rt", code::INF_MAX_RT),
];

/// The `always-send` name of an option: its typed key, or its code.
pub(crate) fn option_name(code: u16) -> RawOptionName {
    match TYPED_KEYS.iter().find(|(_, c)| *c == code) {
        Some((key, _)) => RawOptionName::Key((*key).to_owned()),
        None => RawOptionName::Code(code),
    }
}

/// Codes no configuration may hand out: reserved, or built by the server itself.
fn server_built(code: u16) -> Option<&'static str> {
    Some(match code {
        0 => "code 0 is reserved",
        1..=9 | 11 | 13 | 14 | 18..=20 | 25 | 26 | 67 => "the server builds this option itself",
        66 => "relay-supplied options are never sent to a client",
        _ => return None,
    })
}

/// Checks a link's `rsoo-allow`; errors are `(field below the link, problem)`.
pub(crate) fn rsoo_allow(codes: &[u16]) -> Result<Vec<u16>, (String, String)> {
    for (i, code) in codes.iter().enumerate() {
        if let Some(problem) = server_built(*code) {
            return Err((
                format!("rsoo-allow[{i}]"),
                format!("option {code}: {problem}"),
            ));
        }
        if codes[..i].contains(code) {
            return Err((
                format!("rsoo-allow[{i}]"),
                format!("option {code} appears twice"),
            ));
        }
    }
    Ok(codes.to_vec())
}

/// Codes the engine writes itself, or that have a named key: `custom` may not set them.
fn reserved_code(code: u16) -> Option<&'static str> {
    if let Some(problem) = server_built(code) {
        return Some(problem);
    }
    Some(match code {
        code::VENDOR_OPTS => "use `vendor` for vendor options",
        code::DNS_SERVERS => "use `dns-servers`",
        code::DOMAIN_LIST => "use `domain-search`",
        code::SNTP_SERVERS => "use `sntp-servers`",
        code::INFORMATION_REFRESH_TIME => "use `information-refresh-time`",
        code::NTP_SERVER => "use `ntp-servers`",
        code::BOOTFILE_URL => "use `bootfile-url`",
        code::BOOTFILE_PARAM => "use `bootfile-params`",
        code::SOL_MAX_RT => "use `sol-max-rt`",
        code::INF_MAX_RT => "use `inf-max-rt`",
        _ => return None,
    })
}

/// Server-wide `[options]` with a link's own on top: each key the link sets replaces the
/// server's; `vendor` entries merge by enterprise and `custom` entries by code.
pub(crate) fn merge(server: &RawOptions, link: RawOptions) -> RawOptions {
    fn merge_by<T: Clone, K: PartialEq>(
        server: &Option<Vec<T>>,
        link: Option<Vec<T>>,
        key: impl Fn(&T) -> K,
    ) -> Option<Vec<T>> {
        match (server, link) {
            (None, link) => link,
            (Some(server), None) => Some(server.clone()),
            (Some(server), Some(link)) => {
                // The link's entries first, so error paths index the link's own list.
                let inherited: Vec<T> = server
                    .iter()
                    .filter(|s| !link.iter().any(|l| key(l) == key(s)))
                    .cloned()
                    .collect();
                let mut merged = link;
                merged.extend(inherited);
                Some(merged)
            }
        }
    }
    RawOptions {
        dns_servers: link.dns_servers.or_else(|| server.dns_servers.clone()),
        domain_search: link.domain_search.or_else(|| server.domain_search.clone()),
        ntp_servers: link.ntp_servers.or_else(|| server.ntp_servers.clone()),
        sntp_servers: link.sntp_servers.or_else(|| server.sntp_servers.clone()),
        sol_max_rt: link.sol_max_rt.or(server.sol_max_rt),
        inf_max_rt: link.inf_max_rt.or(server.inf_max_rt),
        information_refresh_time: link
            .information_refresh_time
            .or(server.information_refresh_time),
        bootfile_url: link.bootfile_url.or_else(|| server.bootfile_url.clone()),
        bootfile_params: link
            .bootfile_params
            .or_else(|| server.bootfile_params.clone()),
        vendor: merge_by(&server.vendor, link.vendor, |v: &RawVendor| v.enterprise),
        custom: merge_by(&server.custom, link.custom, |c: &RawValue| c.code),
        always_send: link.always_send.or_else(|| server.always_send.clone()),
    }
}

/// Validates and encodes options; errors are `(field below the options table, problem)`.
pub(crate) fn build(raw: &RawOptions) -> Result<LinkOptions, (String, String)> {
    let mut options = LinkOptions::default();
    let mut encoded = Vec::new();

    if let Some(list) = &raw.dns_servers {
        options.dns_servers = addresses(list, "dns-servers")?;
        // RFC 3646 §3, in substance:
        // The OPTION_DNS_SERVERS option MUST be at least 16 octets long
        push_nonempty(
            &mut encoded,
            code::DNS_SERVERS,
            address_bytes(&options.dns_servers),
        );
    }
    if let Some(list) = &raw.domain_search {
        let mut body = Vec::new();
        for (i, name) in list.iter().enumerate() {
            encode_dns_name(name, &mut body).map_err(|e| (format!("domain-search[{i}]"), e))?;
        }
        options.domain_search = list.clone();
        push_nonempty(&mut encoded, code::DOMAIN_LIST, body);
    }
    if let Some(list) = &raw.ntp_servers {
        let mut body = Vec::new();
        for (i, text) in list.iter().enumerate() {
            let server = match text.parse::<Ipv6Addr>() {
                Ok(address) if address.is_multicast() => NtpServer::Multicast(address),
                Ok(address) => NtpServer::Address(address),
                Err(_) => NtpServer::Fqdn(text.clone()),
            };
            // RFC 5908 §4, in substance:
            // The NTP Server option ... contains one or more time source suboptions
            match &server {
                NtpServer::Address(address) => {
                    sub_option(&mut body, NTP_SUBOPTION_SRV_ADDR, &address.octets())
                }
                NtpServer::Multicast(address) => {
                    sub_option(&mut body, NTP_SUBOPTION_MC_ADDR, &address.octets())
                }
                NtpServer::Fqdn(name) => {
                    let mut wire = Vec::new();
                    encode_dns_name(name, &mut wire).map_err(|e| {
                        (
                            format!("ntp-servers[{i}]"),
                            format!("neither an IPv6 address nor a server name: {e}"),
                        )
                    })?;
                    sub_option(&mut body, NTP_SUBOPTION_SRV_FQDN, &wire);
                }
            }
            options.ntp_servers.push(server);
        }
        push_nonempty(&mut encoded, code::NTP_SERVER, body);
    }
    if let Some(list) = &raw.sntp_servers {
        options.sntp_servers = addresses(list, "sntp-servers")?;
        push_nonempty(
            &mut encoded,
            code::SNTP_SERVERS,
            address_bytes(&options.sntp_servers),
        );
    }
    // RFC 9915 §21.24, in substance:
    // MUST ignore any SOL_MAX_RT option values that are less than 60 or more than 86400
    if let Some(seconds) = raw.sol_max_rt {
        let value = max_rt(seconds.0, "sol-max-rt")?;
        options.sol_max_rt = Some(value);
        encoded.push(u32_option(code::SOL_MAX_RT, value));
    }
    if let Some(seconds) = raw.inf_max_rt {
        let value = max_rt(seconds.0, "inf-max-rt")?;
        options.inf_max_rt = Some(value);
        encoded.push(u32_option(code::INF_MAX_RT, value));
    }
    // RFC 9915 §21.23, in substance:
    // If the "information-refresh-time" field is less than IRT_MINIMUM, the client uses
    // IRT_MINIMUM.
    if let Some(seconds) = raw.information_refresh_time {
        if seconds.0 < 600 {
            return Err((
                "information-refresh-time".into(),
                format!(
                    "{} seconds is below the 600 s minimum clients accept",
                    seconds.0
                ),
            ));
        }
        options.information_refresh_time = Some(seconds.0);
        encoded.push(u32_option(code::INFORMATION_REFRESH_TIME, seconds.0));
    }
    if let Some(url) = &raw.bootfile_url {
        if !url.is_ascii() || !url.contains("://") || url.chars().any(char::is_whitespace) {
            return Err((
                "bootfile-url".into(),
                format!("`{url}` is not a URL (RFC 5970 wants e.g. tftp://[2001:db8::1]/boot)"),
            ));
        }
        options.bootfile_url = Some(url.clone());
        encoded.push(EncodedOption {
            code: code::BOOTFILE_URL,
            body: url.as_bytes().to_vec(),
        });
    }
    if let Some(params) = &raw.bootfile_params {
        // RFC 5970 §3.2, in substance:
        // param-len 2 octets field describing the length of the parameter
        let mut body = Vec::new();
        for (i, param) in params.iter().enumerate() {
            let len = u16::try_from(param.len())
                .ok()
                .filter(|len| *len > 0)
                .ok_or_else(|| {
                    (
                        format!("bootfile-params[{i}]"),
                        "must be 1 to 65535 bytes".to_owned(),
                    )
                })?;
            body.extend_from_slice(&len.to_be_bytes());
            body.extend_from_slice(param.as_bytes());
        }
        options.bootfile_params = params.clone();
        push_nonempty(&mut encoded, code::BOOTFILE_PARAM, body);
    }
    if let Some(vendors) = &raw.vendor {
        for (i, vendor) in vendors.iter().enumerate() {
            let field = format!("vendor[{i}]");
            if vendors[..i]
                .iter()
                .any(|v| v.enterprise == vendor.enterprise)
            {
                return Err((
                    format!("{field}.enterprise"),
                    format!("enterprise {} appears twice", vendor.enterprise),
                ));
            }
            // RFC 9915 §21.17, in substance:
            // enterprise-number  The vendor's registered Enterprise Number
            let mut body = vendor.enterprise.to_be_bytes().to_vec();
            let mut sub_options = Vec::new();
            for (j, raw_sub) in vendor.sub_options.iter().enumerate() {
                let sub_field = format!("{field}.sub-options[{j}]");
                if raw_sub.always_send.is_some() {
                    return Err((
                        format!("{sub_field}.always-send"),
                        "set always-send on the vendor option, not on a sub-option".into(),
                    ));
                }
                let sub = value(raw_sub).map_err(|(f, e)| (format!("{sub_field}{f}"), e))?;
                sub_option(&mut body, sub.code, &sub.body);
                sub_options.push(sub);
            }
            options.vendor.push(VendorOption {
                enterprise: vendor.enterprise,
                sub_options,
                always_send: vendor.always_send.unwrap_or(false),
            });
            encoded.push(EncodedOption {
                code: code::VENDOR_OPTS,
                body,
            });
        }
    }
    if let Some(custom) = &raw.custom {
        for (i, raw_value) in custom.iter().enumerate() {
            let field = format!("custom[{i}]");
            if let Some(problem) = reserved_code(raw_value.code) {
                return Err((
                    format!("{field}.code"),
                    format!("option {}: {problem}", raw_value.code),
                ));
            }
            if custom[..i].iter().any(|c| c.code == raw_value.code) {
                return Err((
                    format!("{field}.code"),
                    format!("option {} appears twice", raw_value.code),
                ));
            }
            let option = value(raw_value).map_err(|(f, e)| (format!("{field}{f}"), e))?;
            if raw_value.always_send == Some(true) {
                options.always_send.push(option.code);
            }
            options.custom.push(option.clone());
            encoded.push(option);
        }
    }
    if let Some(names) = &raw.always_send {
        for (i, name) in names.iter().enumerate() {
            let field = format!("always-send[{i}]");
            let code = match name {
                RawOptionName::Key(key) => {
                    match TYPED_KEYS.iter().find(|(typed, _)| typed == key) {
                        Some((_, code)) => *code,
                        None if key == "vendor" => {
                            return Err((
                                field,
                                "mark a vendor option with `always-send = true` in its \
                                 `vendor` entry"
                                    .into(),
                            ));
                        }
                        None => {
                            let keys: Vec<&str> = TYPED_KEYS.iter().map(|(k, _)| *k).collect();
                            return Err((
                                field,
                                format!(
                                    "`{key}` is not an option key; give one of {} or a \
                                     `custom` option's code",
                                    keys.join(", ")
                                ),
                            ));
                        }
                    }
                }
                RawOptionName::Code(code) => *code,
            };
            if code == code::VENDOR_OPTS {
                return Err((
                    field,
                    "mark a vendor option with `always-send = true` in its `vendor` entry".into(),
                ));
            }
            if !encoded.iter().any(|option| option.code == code) {
                return Err((
                    field,
                    format!(
                        "option {} is not set in this options table (nor inherited from \
                         `[options]`)",
                        describe(code)
                    ),
                ));
            }
            if options.always_send.contains(&code) {
                return Err((field, format!("option {} appears twice", describe(code))));
            }
            options.always_send.push(code);
        }
    }
    options.always_send.sort_unstable();
    for option in &encoded {
        if option.body.len() > usize::from(u16::MAX) {
            return Err((
                String::new(),
                format!("option {} is longer than 65535 bytes", option.code),
            ));
        }
    }
    encoded.sort_by_key(|option| option.code);
    options.encoded = encoded;
    Ok(options)
}

/// An option for messages: `dns-servers (23)` or `100`.
fn describe(code: u16) -> String {
    match TYPED_KEYS.iter().find(|(_, c)| *c == code) {
        Some((key, _)) => format!("`{key}` ({code})"),
        None => code.to_string(),
    }
}

/// One typed value (`{ code = 100, hex = "0a0b" }` and friends) encoded; errors name the
/// value key as a suffix (`.hex`).
fn value(raw: &RawValue) -> Result<EncodedOption, (String, String)> {
    let mut given = Vec::new();
    let mut body = Vec::new();
    if let Some(hex) = &raw.hex {
        given.push("hex");
        body = parse_hex(hex).map_err(|e| (".hex".to_owned(), e))?;
    }
    if let Some(text) = &raw.text {
        given.push("text");
        body = text.as_bytes().to_vec();
    }
    if let Some(address) = &raw.address {
        given.push("address");
        body = address_bytes(&addresses(std::slice::from_ref(address), "")?);
    }
    if let Some(list) = &raw.addresses {
        given.push("addresses");
        body = address_bytes(&addresses(list, "")?);
    }
    if let Some(names) = &raw.domains {
        given.push("domains");
        body.clear();
        for (i, name) in names.iter().enumerate() {
            encode_dns_name(name, &mut body).map_err(|e| (format!(".domains[{i}]"), e))?;
        }
    }
    if let Some(v) = raw.uint8 {
        given.push("u8");
        body = vec![v];
    }
    if let Some(v) = raw.uint16 {
        given.push("u16");
        body = v.to_be_bytes().to_vec();
    }
    if let Some(v) = raw.uint32 {
        given.push("u32");
        body = v.to_be_bytes().to_vec();
    }
    match given.len() {
        1 => Ok(EncodedOption {
            code: raw.code,
            body,
        }),
        0 => Err((
            String::new(),
            "give a value: one of hex, text, address, addresses, domains, u8, u16, u32".into(),
        )),
        _ => Err((
            String::new(),
            format!("give one value, not {}", given.join(" and ")),
        )),
    }
}

fn addresses(list: &[String], field: &str) -> Result<Vec<Ipv6Addr>, (String, String)> {
    list.iter()
        .enumerate()
        .map(|(i, text)| {
            text.parse().map_err(|_| {
                let field = if field.is_empty() {
                    String::new()
                } else {
                    format!("{field}[{i}]")
                };
                (field, format!("`{text}` is not an IPv6 address"))
            })
        })
        .collect()
}

fn address_bytes(list: &[Ipv6Addr]) -> Vec<u8> {
    list.iter().flat_map(|address| address.octets()).collect()
}

fn max_rt(seconds: u32, field: &str) -> Result<u32, (String, String)> {
    if (60..=86_400).contains(&seconds) {
        Ok(seconds)
    } else {
        Err((
            field.to_owned(),
            format!("{seconds} seconds is outside 60..=86400, clients ignore it"),
        ))
    }
}

fn u32_option(code: u16, value: u32) -> EncodedOption {
    EncodedOption {
        code,
        body: value.to_be_bytes().to_vec(),
    }
}

/// An empty list sends no option at all: an empty DNS option is malformed.
fn push_nonempty(encoded: &mut Vec<EncodedOption>, code: u16, body: Vec<u8>) {
    if !body.is_empty() {
        encoded.push(EncodedOption { code, body });
    }
}

fn sub_option(out: &mut Vec<u8>, code: u16, data: &[u8]) {
    out.extend_from_slice(&code.to_be_bytes());
    // Lengths above u16 are caught by the whole-option check in `build`.
    out.extend_from_slice(&(data.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    out.extend_from_slice(data);
}
