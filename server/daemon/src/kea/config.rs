//! `kea-dhcp6.json` to xdhcp6 TOML: subnets (and shared networks) become links, pools and
//! pd-pools become ranges, reservations and options are carried, the rest is reported.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::Ipv6Addr;

use serde_json::{Map, Value};
use xdhcp6_engine::config::ServerDuid;
use xdhcp6_engine::prefix::Prefix;

use super::{KeaError, Report};
use crate::journal::format::MAX_LINK_NAME_LEN;

/// Kea's defaults (kea-dhcp6): lifetimes, and T1/T2 as fractions of the preferred lifetime
/// when `calculate-tee-times` is on (its DHCPv6 default).
const KEA_PREFERRED: u32 = 3600;
const KEA_VALID: u32 = 7200;
const KEA_T1_PERCENT: f64 = 0.5;
const KEA_T2_PERCENT: f64 = 0.8;

/// Kea's default data directory, where it keeps the server DUID it generated.
const KEA_DATA_DIRECTORY: &str = "/var/lib/kea";

/// Blocks one pool range may split into (a range of 128-bit integers needs at most 254).
const MAX_BLOCKS: usize = 256;

/// Removes the comments Kea accepts in its JSON (`//` and `#` to the end of the line, `/* */`
/// blocks), outside strings; every removed character but a newline becomes a space, so that
/// serde_json's line and column numbers stay those of the file.
pub fn strip_comments(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    let mut line = 1usize;
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            out.push(c);
            match c {
                '\\' => {
                    if let Some(next) = chars.next() {
                        if next == '\n' {
                            line += 1;
                        }
                        out.push(next);
                    }
                }
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '#' => skip_line(&mut chars, &mut out),
            '/' if chars.peek() == Some(&'/') => skip_line(&mut chars, &mut out),
            '/' if chars.peek() == Some(&'*') => {
                let start = line;
                chars.next();
                out.push_str("  ");
                let mut closed = false;
                while let Some(c) = chars.next() {
                    if c == '*' && chars.peek() == Some(&'/') {
                        chars.next();
                        out.push_str("  ");
                        closed = true;
                        break;
                    }
                    if c == '\n' {
                        line += 1;
                        out.push('\n');
                    } else {
                        out.push(' ');
                    }
                }
                if !closed {
                    return Err(format!("line {start}: the comment /* is never closed"));
                }
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// Replaces the rest of a line by spaces (the `#` or `//` already replaced), keeping the
/// newline.
fn skip_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut String) {
    out.push(' ');
    while let Some(&c) = chars.peek() {
        if c == '\n' {
            break;
        }
        chars.next();
        out.push(' ');
    }
}

/// The four timers of a scope, each `None` where the scope does not set it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Timers {
    t1: Option<u32>,
    t2: Option<u32>,
    preferred: Option<u32>,
    valid: Option<u32>,
    /// `calculate-tee-times`.
    calculate: Option<bool>,
    t1_percent: Option<f64>,
    t2_percent: Option<f64>,
}

impl Timers {
    /// This scope's values over its parent's.
    fn over(self, parent: Timers) -> Timers {
        Timers {
            t1: self.t1.or(parent.t1),
            t2: self.t2.or(parent.t2),
            preferred: self.preferred.or(parent.preferred),
            valid: self.valid.or(parent.valid),
            calculate: self.calculate.or(parent.calculate),
            t1_percent: self.t1_percent.or(parent.t1_percent),
            t2_percent: self.t2_percent.or(parent.t2_percent),
        }
    }

    /// What Kea sends: T1, T2, preferred, valid.
    fn resolve(self) -> [u32; 4] {
        let preferred = self.preferred.unwrap_or(KEA_PREFERRED);
        let valid = self.valid.unwrap_or(KEA_VALID);
        let calculate = self.calculate.unwrap_or(true);
        let part = |percent: f64| (f64::from(preferred) * percent) as u32;
        let t1 = self.t1.unwrap_or(if calculate {
            part(self.t1_percent.unwrap_or(KEA_T1_PERCENT))
        } else {
            0
        });
        let t2 = self.t2.unwrap_or(if calculate {
            part(self.t2_percent.unwrap_or(KEA_T2_PERCENT))
        } else {
            0
        });
        [t1, t2, preferred, valid]
    }
}

/// Options as xdhcp6 writes them in `[options]` or `[link.options]`.
#[derive(Clone, Debug, Default, PartialEq)]
struct Options {
    dns_servers: Option<Vec<String>>,
    domain_search: Option<Vec<String>>,
    sntp_servers: Option<Vec<String>>,
    /// Option 56, from Kea's `v6-ntp-suboptions`.
    ntp_servers: Option<Vec<String>>,
    information_refresh_time: Option<u32>,
    sol_max_rt: Option<u32>,
    inf_max_rt: Option<u32>,
    bootfile_url: Option<String>,
    /// By code: hex.
    custom: BTreeMap<u16, String>,
    /// Typed keys by name, `custom` codes as numbers.
    always_send: Vec<String>,
    /// The Preference option, which xdhcp6 sets with `preference`.
    preference: Option<u8>,
}

impl Options {
    fn is_empty(&self) -> bool {
        self.dns_servers.is_none()
            && self.domain_search.is_none()
            && self.sntp_servers.is_none()
            && self.ntp_servers.is_none()
            && self.information_refresh_time.is_none()
            && self.sol_max_rt.is_none()
            && self.inf_max_rt.is_none()
            && self.bootfile_url.is_none()
            && self.custom.is_empty()
            && self.always_send.is_empty()
    }

    /// The `key = value` lines of this table.
    fn write(&self, out: &mut String) {
        let list = |out: &mut String, key: &str, items: &Option<Vec<String>>| {
            if let Some(items) = items {
                let _ = writeln!(out, "{key} = {}", string_list(items));
            }
        };
        list(out, "dns-servers", &self.dns_servers);
        list(out, "domain-search", &self.domain_search);
        list(out, "sntp-servers", &self.sntp_servers);
        list(out, "ntp-servers", &self.ntp_servers);
        let number = |out: &mut String, key: &str, value: Option<u32>| {
            if let Some(value) = value {
                let _ = writeln!(out, "{key} = {value}");
            }
        };
        number(
            out,
            "information-refresh-time",
            self.information_refresh_time,
        );
        number(out, "sol-max-rt", self.sol_max_rt);
        number(out, "inf-max-rt", self.inf_max_rt);
        if let Some(url) = &self.bootfile_url {
            let _ = writeln!(out, "bootfile-url = {}", quote(url));
        }
        if !self.custom.is_empty() {
            let items: Vec<String> = self
                .custom
                .iter()
                .map(|(code, hex)| format!("{{ code = {code}, hex = {} }}", quote(hex)))
                .collect();
            let _ = writeln!(out, "custom = [{}]", items.join(", "));
        }
        if !self.always_send.is_empty() {
            let _ = writeln!(out, "always-send = [{}]", self.always_send.join(", "));
        }
    }
}

/// One xdhcp6 `[[link.pd-pool]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PdPool {
    prefix: Prefix,
    delegated_len: u8,
    excluded: Option<(u8, u64)>,
    inside_on_link: bool,
}

/// One xdhcp6 `[[link]]`, from a subnet or a shared network.
#[derive(Clone, Debug, Default)]
struct Link {
    name: String,
    /// Where it came from, for the comment above it.
    origin: Vec<String>,
    interfaces: Vec<String>,
    interface_ids: Vec<String>,
    relay_prefixes: Vec<Prefix>,
    /// T1, T2, preferred, valid when they differ from `[server]`.
    timers: Option<[u32; 4]>,
    preference: Option<u8>,
    rapid_commit: Option<bool>,
    pools: Vec<Prefix>,
    pd_pools: Vec<PdPool>,
    options: Options,
}

/// One xdhcp6 `[[reservation]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Reservation {
    /// `duid = ...` or `hw-address = ...`.
    client: (&'static str, String),
    address: Option<Ipv6Addr>,
    prefix: Option<Prefix>,
    link: Option<String>,
    origin: String,
}

/// A Kea configuration mapped to xdhcp6, before it is written as text.
#[derive(Debug)]
pub(crate) struct Mapped {
    server_duid: ServerDuid,
    timers: [u32; 4],
    preference: Option<u8>,
    decline_probation: Option<u32>,
    options: Options,
    links: Vec<Link>,
    reservations: Vec<Reservation>,
    /// Kea subnet id to the name of the link that serves it.
    pub links_by_subnet: HashMap<u32, String>,
}

impl Mapped {
    /// Where the link at `index` of the TOML came from in the Kea file.
    pub fn origin(&self, index: usize) -> Option<&str> {
        self.links
            .get(index)
            .and_then(|link| link.origin.first())
            .map(String::as_str)
    }

    /// The TOML text, the report as comments at its top.
    pub fn toml(&self, report: &Report) -> String {
        let mut out = String::new();
        out.push_str("# Imported from a Kea DHCPv6 configuration by `xdhcp6d import-kea`.\n#\n");
        for line in report.to_string().lines() {
            let _ = writeln!(out, "# {line}");
        }
        out.push_str("\n[server]\n");
        let _ = writeln!(
            out,
            "# Kea's server DUID: clients Renew with it as Server Identifier.\nduid = {}",
            quote(&self.server_duid.to_text())
        );
        if let Some(preference) = self.preference {
            let _ = writeln!(out, "preference = {preference}");
        }
        if let Some(seconds) = self.decline_probation {
            let _ = writeln!(out, "decline-probation = {seconds}");
        }
        write_timers(&mut out, self.timers);
        if !self.options.is_empty() {
            out.push_str("\n[options]\n");
            self.options.write(&mut out);
        }
        for link in &self.links {
            out.push('\n');
            for line in &link.origin {
                let _ = writeln!(out, "# {line}");
            }
            out.push_str("[[link]]\n");
            let _ = writeln!(out, "name = {}", quote(&link.name));
            if !link.interfaces.is_empty() {
                let _ = writeln!(out, "interfaces = {}", string_list(&link.interfaces));
            }
            if !link.interface_ids.is_empty() {
                let _ = writeln!(out, "interface-ids = {}", string_list(&link.interface_ids));
            }
            if !link.relay_prefixes.is_empty() {
                let prefixes: Vec<String> =
                    link.relay_prefixes.iter().map(Prefix::to_string).collect();
                let _ = writeln!(out, "relay-prefixes = {}", string_list(&prefixes));
            }
            if let Some(preference) = link.preference {
                let _ = writeln!(out, "preference = {preference}");
            }
            if let Some(rapid_commit) = link.rapid_commit {
                let _ = writeln!(out, "rapid-commit = {rapid_commit}");
            }
            if let Some(timers) = link.timers {
                write_timers(&mut out, timers);
            }
            for pool in &link.pools {
                let _ = writeln!(
                    out,
                    "\n[[link.pool]]\nprefix = {}",
                    quote(&pool.to_string())
                );
            }
            for pool in &link.pd_pools {
                let _ = writeln!(
                    out,
                    "\n[[link.pd-pool]]\nprefix = {}\ndelegated-length = {}",
                    quote(&pool.prefix.to_string()),
                    pool.delegated_len
                );
                if let Some((len, subnet)) = pool.excluded {
                    let _ = writeln!(
                        out,
                        "excluded-prefix-length = {len}\nexcluded-subnet = {subnet}"
                    );
                }
                if pool.inside_on_link {
                    out.push_str("inside-on-link = true\n");
                }
            }
            if !link.options.is_empty() {
                out.push_str("\n[link.options]\n");
                link.options.write(&mut out);
            }
        }
        for reservation in &self.reservations {
            let _ = writeln!(out, "\n# {}\n[[reservation]]", reservation.origin);
            let (key, value) = &reservation.client;
            let _ = writeln!(out, "{key} = {}", quote(value));
            if let Some(address) = reservation.address {
                let _ = writeln!(out, "address = {}", quote(&address.to_string()));
            }
            if let Some(prefix) = reservation.prefix {
                let _ = writeln!(out, "prefix = {}", quote(&prefix.to_string()));
            }
            if let Some(link) = &reservation.link {
                let _ = writeln!(out, "link = {}", quote(link));
            }
        }
        out
    }
}

fn write_timers(out: &mut String, [t1, t2, preferred, valid]: [u32; 4]) {
    let _ = writeln!(
        out,
        "t1 = {t1}\nt2 = {t2}\npreferred-lifetime = {}\nvalid-lifetime = {}",
        seconds(preferred),
        seconds(valid)
    );
}

/// Seconds as TOML: Kea writes an infinite lifetime as 4294967295.
fn seconds(value: u32) -> String {
    if value == u32::MAX {
        "\"infinite\"".to_owned()
    } else {
        value.to_string()
    }
}

/// A TOML basic string.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn string_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| quote(item)).collect();
    format!("[{}]", quoted.join(", "))
}

/// Reads values of a JSON object, every error naming the file and the JSON path.
#[derive(Clone, Copy)]
struct At<'a> {
    file: &'a str,
    path: &'a str,
    object: &'a Map<String, Value>,
}

impl<'a> At<'a> {
    fn error(&self, key: &str, problem: impl Into<String>) -> KeaError {
        KeaError::new(self.file, join(self.path, key), problem)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.object.get(key)
    }

    fn str(&self, key: &str) -> Result<Option<&'a str>, KeaError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(self.error(key, format!("{other} is not a string"))),
        }
    }

    fn u32(&self, key: &str) -> Result<Option<u32>, KeaError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| self.error(key, format!("{value} is not a number 0..4294967295"))),
        }
    }

    fn f64(&self, key: &str) -> Result<Option<f64>, KeaError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => value
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.error(key, format!("{value} is not a number"))),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, KeaError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(value)) => Ok(Some(*value)),
            Some(other) => Err(self.error(key, format!("{other} is not true or false"))),
        }
    }

    fn array(&self, key: &str) -> Result<&'a [Value], KeaError> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(self.error(key, format!("{other} is not a list"))),
        }
    }

    fn timers(&self) -> Result<Timers, KeaError> {
        Ok(Timers {
            t1: self.u32("renew-timer")?,
            t2: self.u32("rebind-timer")?,
            preferred: self.u32("preferred-lifetime")?,
            valid: self.u32("valid-lifetime")?,
            calculate: self.bool("calculate-tee-times")?,
            t1_percent: self.f64("t1-percent")?,
            t2_percent: self.f64("t2-percent")?,
        })
    }
}

/// An object at `path`, or an error naming it.
fn object<'a>(file: &'a str, path: &'a str, value: &'a Value) -> Result<At<'a>, KeaError> {
    match value {
        Value::Object(object) => Ok(At { file, path, object }),
        other => Err(KeaError::new(
            file,
            path,
            format!("{} is not an object", short(other)),
        )),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A value cut for an error message.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 60 {
        let mut end = 60;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &text[..end])
    } else {
        text
    }
}

/// Keys this import reads, per scope; any other key present is reported.
const TIMER_KEYS: &[&str] = &[
    "renew-timer",
    "rebind-timer",
    "preferred-lifetime",
    "valid-lifetime",
    "calculate-tee-times",
    "t1-percent",
    "t2-percent",
];
const GLOBAL_KEYS: &[&str] = &[
    "subnet6",
    "shared-networks",
    "server-id",
    "option-data",
    "reservations",
    "reservations-global",
    "interfaces-config",
    "lease-database",
    "decline-probation-period",
    "data-directory",
    "comment",
    "user-context",
];
const NETWORK_KEYS: &[&str] = &[
    "name",
    "subnet6",
    "interface",
    "interface-id",
    "relay",
    "option-data",
    "rapid-commit",
    "comment",
    "user-context",
];
const SUBNET_KEYS: &[&str] = &[
    "id",
    "subnet",
    "pools",
    "pd-pools",
    "interface",
    "interface-id",
    "relay",
    "reservations",
    "option-data",
    "rapid-commit",
    "comment",
    "user-context",
];

/// Why a Kea key is not carried, for the keys an operator will ask about; any other is
/// "no xdhcp6 equivalent".
fn reason(key: &str) -> &'static str {
    match key {
        "loggers" => "xdhcp6d logs to stderr; RUST_LOG sets the level",
        "control-socket" => "xdhcp6d has its own control interface",
        "hooks-libraries" => "hook libraries have no xdhcp6 equivalent",
        "client-classes" | "client-class" | "require-client-classes" => {
            "client classification has no xdhcp6 equivalent: the pool or subnet serves every client"
        }
        "option-def" => {
            "option definitions have no xdhcp6 equivalent (an option given with \
             csv-format false is carried as hex)"
        }
        "hosts-database" | "hosts-databases" => {
            "reservations kept in a database are not read: put them in the configuration"
        }
        "multi-threading" => "xdhcp6d sizes its workers with --workers and --datapath",
        "expired-leases-processing" => "xdhcp6 ends every lease within a second of its expiry",
        "dhcp-ddns" => "DNS updates are not built in xdhcp6",
        key if key.starts_with("ddns-") || key.starts_with("hostname-char") => {
            "DNS updates are not built in xdhcp6"
        }
        "reservation-mode"
        | "reservations-in-subnet"
        | "reservations-out-of-pool"
        | "host-reservation-identifiers" => {
            "xdhcp6 looks reservations up by DUID or hardware address, in and out of pools alike"
        }
        "min-preferred-lifetime"
        | "max-preferred-lifetime"
        | "min-valid-lifetime"
        | "max-valid-lifetime" => "xdhcp6 gives the configured lifetimes, whatever the client asks",
        "pd-allocator" | "allocator" => "xdhcp6 allocates by split-prefix hashing",
        "store-extended-info" => "relay information is not stored with leases",
        // Handled for subnets, shared networks and the global scope; reported from pools.
        "option-data" => "options of one pool: xdhcp6 sets options per link",
        _ => "no xdhcp6 equivalent",
    }
}

/// Reports every key of `at` outside `known` (and outside the timer keys).
fn report_unknown(at: &At<'_>, known: &[&str], report: &mut Report) {
    for (key, value) in at.object {
        if known.contains(&key.as_str()) || TIMER_KEYS.contains(&key.as_str()) {
            continue;
        }
        report.not_carried.push(format!(
            "{} = {}: {}",
            join(at.path, key),
            short(value),
            reason(key)
        ));
    }
}

/// Maps the Kea configuration; `report` gets what is not carried.
pub(crate) fn map(
    text: &str,
    file: &str,
    server_id_file: Option<(&str, &str)>,
    report: &mut Report,
) -> Result<Mapped, KeaError> {
    if text.contains("<?include") {
        return Err(KeaError::new(
            file,
            "file",
            "<?include ?> is not read: give the configuration with its included files inlined",
        ));
    }
    let json = strip_comments(text).map_err(|problem| KeaError::new(file, "file", problem))?;
    let root: Value = serde_json::from_str(&json)
        .map_err(|error| KeaError::new(file, "file", format!("not JSON: {error}")))?;
    let root = object(file, "", &root)?;
    let dhcp6 = root
        .get("Dhcp6")
        .ok_or_else(|| KeaError::new(file, "Dhcp6", "missing: not a kea-dhcp6 configuration"))?;
    for key in root.object.keys().filter(|key| *key != "Dhcp6") {
        report
            .not_carried
            .push(format!("{key}: the configuration of another Kea program"));
    }
    let global = object(file, "Dhcp6", dhcp6)?;
    report_unknown(&global, GLOBAL_KEYS, report);

    let server_duid = server_duid(&global, server_id_file)?;
    let global_timers = global.timers()?;
    let timers = global_timers.resolve();
    let global_options = options(&global, "option-data", report)?;
    let decline_probation = global.u32("decline-probation-period")?;
    if let Some(interfaces) = global.get("interfaces-config") {
        report.notes.push(format!(
            "Dhcp6.interfaces-config = {}: xdhcp6d listens on the interfaces the links name",
            short(interfaces)
        ));
    }
    if let Some(database) = global.get("lease-database") {
        let database = object(file, "Dhcp6.lease-database", database)?;
        match database.str("type")? {
            Some("memfile") | None => {}
            Some(other) => report.notes.push(format!(
                "Dhcp6.lease-database.type = \"{other}\": only memfile lease files are read; \
                 export the leases to CSV (kea-admin lease-dump) for --leases"
            )),
        }
    }

    let mut mapped = Mapped {
        server_duid,
        timers,
        preference: global_options.preference,
        decline_probation,
        options: global_options.clone(),
        links: Vec::new(),
        reservations: Vec::new(),
        links_by_subnet: HashMap::new(),
    };
    let mut subnet_number = 0u32;
    for (i, subnet) in global.array("subnet6")?.iter().enumerate() {
        let path = format!("Dhcp6.subnet6[{i}]");
        let at = object(file, &path, subnet)?;
        subnet_number += 1;
        let mut link = Link::default();
        let id = subnet_id(&at, subnet_number, report)?;
        link.name = format!("subnet-{id}");
        let parts = Parts {
            timers: global_timers,
            server_timers: timers,
            server_preference: global_options.preference,
            server_always_send: global_options.always_send.clone(),
        };
        unique_id(&at, id, &mapped.links_by_subnet)?;
        add_subnet(&mut link, &at, id, &parts, &mut mapped, report)?;
        mapped.links_by_subnet.insert(id, link.name.clone());
        finish_link(&mut link);
        mapped.links.push(link);
    }
    for (i, network) in global.array("shared-networks")?.iter().enumerate() {
        let path = format!("Dhcp6.shared-networks[{i}]");
        let net = object(file, &path, network)?;
        report_unknown(&net, NETWORK_KEYS, report);
        let name = net
            .str("name")?
            .ok_or_else(|| net.error("name", "missing"))?
            .trim();
        if name.is_empty() {
            return Err(net.error("name", "is empty"));
        }
        if name.len() > MAX_LINK_NAME_LEN {
            return Err(net.error(
                "name",
                format!("is longer than {MAX_LINK_NAME_LEN} bytes, the longest link name"),
            ));
        }
        let mut link = Link {
            name: name.to_owned(),
            ..Link::default()
        };
        link.origin
            .push(format!("Kea {path}: shared network \"{name}\", one link"));
        let network_timers = net.timers()?.over(global_timers);
        let network_options = options(&net, "option-data", report)?;
        link_selection(&mut link, &net)?;
        if let Some(rapid) = net.bool("rapid-commit")? {
            link.rapid_commit = Some(rapid);
        }
        let parts = Parts {
            timers: network_timers,
            server_timers: timers,
            server_preference: global_options.preference,
            server_always_send: global_options.always_send.clone(),
        };
        link.preference = network_options.preference;
        link.options = network_options.clone();
        let mut first = true;
        for (j, subnet) in net.array("subnet6")?.iter().enumerate() {
            let path = format!("{path}.subnet6[{j}]");
            let at = object(file, &path, subnet)?;
            subnet_number += 1;
            let id = subnet_id(&at, subnet_number, report)?;
            unique_id(&at, id, &mapped.links_by_subnet)?;
            let before = (link.timers, link.preference, link.options.clone());
            add_subnet(&mut link, &at, id, &parts, &mut mapped, report)?;
            if !first && before != (link.timers, link.preference, link.options.clone()) {
                report.not_carried.push(format!(
                    "{path}: its own lifetimes, preference or options differ from the shared \
                     network's other subnets; xdhcp6 has one set per link, the last subnet's \
                     is used"
                ));
            }
            first = false;
            mapped.links_by_subnet.insert(id, link.name.clone());
        }
        finish_link(&mut link);
        mapped.links.push(link);
    }

    // Global reservations: on any link, when Kea looks them up.
    let global_reservations = global.array("reservations")?;
    if !global_reservations.is_empty() {
        if global.bool("reservations-global")? == Some(true) {
            let links = mapped.links.clone();
            for (i, value) in global_reservations.iter().enumerate() {
                let path = format!("Dhcp6.reservations[{i}]");
                let at = object(file, &path, value)?;
                reservations_of(&at, None, &links, &mut mapped, report)?;
            }
        } else {
            report.not_carried.push(format!(
                "Dhcp6.reservations ({} entries): Kea ignores them without \
                 \"reservations-global\": true",
                global_reservations.len()
            ));
        }
    }
    Ok(mapped)
}

/// What a subnet inherits.
struct Parts {
    timers: Timers,
    server_timers: [u32; 4],
    server_preference: Option<u8>,
    /// `[options] always-send`, which a link's own list replaces in xdhcp6.
    server_always_send: Vec<String>,
}

/// The subnet's `id`, or Kea's automatic number.
fn subnet_id(at: &At<'_>, number: u32, report: &mut Report) -> Result<u32, KeaError> {
    match at.u32("id")? {
        Some(0) => Err(at.error("id", "0 is not a subnet id (1..4294967294)")),
        Some(id) => Ok(id),
        None => {
            report.notes.push(format!(
                "{}: no id, numbered {number} as Kea numbers subnets without one; check that \
                 the lease file's subnet_id agrees",
                at.path
            ));
            Ok(number)
        }
    }
}

/// Kea refuses two subnets with one id; the lease file could not tell them apart.
fn unique_id(at: &At<'_>, id: u32, seen: &HashMap<u32, String>) -> Result<(), KeaError> {
    match seen.get(&id) {
        Some(link) => Err(at.error(
            "id",
            format!("{id} is already the id of a subnet of link \"{link}\""),
        )),
        None => Ok(()),
    }
}

/// `interface`, `interface-id` and `relay` of a subnet or shared network.
fn link_selection(link: &mut Link, at: &At<'_>) -> Result<(), KeaError> {
    if let Some(interface) = at.str("interface")? {
        let interface = interface.trim();
        if !interface.is_empty() && !link.interfaces.iter().any(|i| i == interface) {
            link.interfaces.push(interface.to_owned());
        }
    }
    if let Some(id) = at.str("interface-id")?
        && !id.is_empty()
        && !link.interface_ids.iter().any(|i| i == id)
    {
        link.interface_ids.push(id.to_owned());
    }
    if let Some(relay) = at.get("relay") {
        let path = join(at.path, "relay");
        let relay = object(at.file, &path, relay)?;
        let mut addresses: Vec<(String, &Value)> = Vec::new();
        if let Some(one) = relay.get("ip-address") {
            addresses.push((join(&path, "ip-address"), one));
        }
        for (i, one) in relay.array("ip-addresses")?.iter().enumerate() {
            addresses.push((format!("{path}.ip-addresses[{i}]"), one));
        }
        for (field, value) in addresses {
            let address: Ipv6Addr = value
                .as_str()
                .and_then(|text| text.trim().parse().ok())
                .ok_or_else(|| {
                    KeaError::new(
                        at.file,
                        &field,
                        format!("{} is not an IPv6 address", short(value)),
                    )
                })?;
            let prefix = Prefix::containing(address, 128);
            if !link.relay_prefixes.contains(&prefix) {
                link.relay_prefixes.push(prefix);
            }
        }
    }
    Ok(())
}

/// Adds one Kea subnet to `link`.
fn add_subnet(
    link: &mut Link,
    at: &At<'_>,
    id: u32,
    parts: &Parts,
    mapped: &mut Mapped,
    report: &mut Report,
) -> Result<(), KeaError> {
    report_unknown(at, SUBNET_KEYS, report);
    let text = at
        .str("subnet")?
        .ok_or_else(|| at.error("subnet", "missing"))?;
    let subnet: Prefix = text
        .trim()
        .parse()
        .map_err(|error| at.error("subnet", format!("\"{text}\" is not a prefix: {error}")))?;
    let comment = at
        .str("comment")?
        .map(|c| format!(": {c}"))
        .unwrap_or_default();
    link.origin
        .push(format!("Kea {} (id {id}, {subnet}){comment}", at.path));
    link_selection(link, at)?;
    if let Some(rapid) = at.bool("rapid-commit")? {
        link.rapid_commit = Some(rapid);
    }
    let timers = at.timers()?.over(parts.timers).resolve();
    link.timers = (timers != parts.server_timers).then_some(timers);
    let own = options(at, "option-data", report)?;
    if let Some(preference) = own.preference {
        link.preference = Some(preference);
    }
    if link.preference == parts.server_preference {
        link.preference = None;
    }
    // xdhcp6 puts a link's options over `[options]` key by key, as Kea does.
    link.options = merge_options(&link.options, &own);
    // Kea sends what any scope marks always-send; a link's list replaces `[options]`'s.
    if !link.options.always_send.is_empty() {
        let mut all = parts.server_always_send.clone();
        all.retain(|item| !link.options.always_send.contains(item));
        all.append(&mut link.options.always_send);
        link.options.always_send = all;
    }
    // A relay whose link-address is in the subnet selects it, as Kea does.
    link.relay_prefixes.push(subnet);

    for (j, pool) in at.array("pools")?.iter().enumerate() {
        let path = format!("{}.pools[{j}]", at.path);
        let pool = object(at.file, &path, pool)?;
        report_unknown(&pool, &["pool", "comment", "user-context"], report);
        let text = pool
            .str("pool")?
            .ok_or_else(|| pool.error("pool", "missing"))?;
        let blocks = pool_blocks(text).map_err(|problem| pool.error("pool", problem))?;
        for block in blocks {
            if !subnet.covers(&block) {
                return Err(pool.error(
                    "pool",
                    format!("\"{text}\" is not inside the subnet {subnet}"),
                ));
            }
            link.pools.push(block);
        }
    }
    for (j, pool) in at.array("pd-pools")?.iter().enumerate() {
        let path = format!("{}.pd-pools[{j}]", at.path);
        let pool = object(at.file, &path, pool)?;
        report_unknown(
            &pool,
            &[
                "prefix",
                "prefix-len",
                "delegated-len",
                "excluded-prefix",
                "excluded-prefix-len",
                "comment",
                "user-context",
            ],
            report,
        );
        link.pd_pools.push(pd_pool(&pool)?);
    }
    let links_so_far: Vec<Link> = std::iter::once(link.clone()).collect();
    for (j, value) in at.array("reservations")?.iter().enumerate() {
        let path = format!("{}.reservations[{j}]", at.path);
        let reservation = object(at.file, &path, value)?;
        let added = reservations_of(
            &reservation,
            Some(&link.name),
            &links_so_far,
            mapped,
            report,
        )?;
        // Kea's reservations may lie outside its pools; xdhcp6's lie inside a pool prefix, so
        // an outside one gets a pool of its own (whose one unit only the reservation gets).
        for (address, prefix) in added {
            if let Some(address) = address {
                let block = Prefix::containing(address, 128);
                if !link.pools.iter().any(|pool| pool.contains(address)) {
                    link.pools.push(block);
                    report.notes.push(format!(
                        "{path}: {address} is outside the subnet's pools; it gets a pool of \
                         its own ({block}) that only its reservation uses"
                    ));
                }
            }
            if let Some(prefix) = prefix
                && !link
                    .pd_pools
                    .iter()
                    .any(|pool| pool.prefix.covers(&prefix) && pool.delegated_len == prefix.len())
            {
                link.pd_pools.push(PdPool {
                    prefix,
                    delegated_len: prefix.len(),
                    excluded: None,
                    inside_on_link: false,
                });
                report.notes.push(format!(
                    "{path}: {prefix} is outside the subnet's pd-pools; it gets a pd-pool of \
                     its own that only its reservation uses"
                ));
            }
        }
    }
    Ok(())
}

/// Pools inside the link's on-link space are marked so, and the subnet prefixes that are
/// pools already are not repeated as relay prefixes.
fn finish_link(link: &mut Link) {
    for pool in &mut link.pd_pools {
        pool.inside_on_link = link.pools.iter().any(|na| na.covers(&pool.prefix));
    }
    let pools = link.pools.clone();
    link.relay_prefixes.retain(|prefix| !pools.contains(prefix));
}

/// A Kea `pool`: `PREFIX/LEN` or `FIRST - LAST`, as the prefixes that cover it exactly.
fn pool_blocks(text: &str) -> Result<Vec<Prefix>, String> {
    let trimmed = text.trim();
    if let Some((first, last)) = trimmed.split_once('-') {
        let parse = |part: &str| -> Result<u128, String> {
            part.trim()
                .parse::<Ipv6Addr>()
                .map(u128::from)
                .map_err(|_| format!("\"{text}\" is not a range FIRST - LAST of IPv6 addresses"))
        };
        let (first, last) = (parse(first)?, parse(last)?);
        if first > last {
            return Err(format!("\"{text}\": the first address is after the last"));
        }
        Ok(range_blocks(first, last))
    } else if trimmed.contains('/') {
        let prefix: Prefix = trimmed
            .parse()
            .map_err(|error| format!("\"{text}\" is not a prefix: {error}"))?;
        Ok(vec![prefix])
    } else {
        Err(format!(
            "\"{text}\" is not a range: expected FIRST - LAST or PREFIX/LENGTH"
        ))
    }
}

/// The fewest prefixes that cover `first..=last` exactly, in order.
fn range_blocks(mut first: u128, last: u128) -> Vec<Prefix> {
    let mut blocks = Vec::new();
    loop {
        // The largest aligned block at `first` that ends at or before `last`.
        let align = first.trailing_zeros().min(128);
        let span = last - first; // one less than the count
        let fits = if span == u128::MAX {
            128
        } else {
            127 - (span + 1).leading_zeros()
        };
        let bits = align.min(fits);
        blocks.push(Prefix::containing(
            Ipv6Addr::from(first),
            (128 - bits) as u8,
        ));
        if bits == 128 || blocks.len() >= MAX_BLOCKS {
            break;
        }
        let size = 1u128 << bits;
        match first.checked_add(size) {
            Some(next) if next <= last => first = next,
            _ => break,
        }
    }
    blocks
}

/// A Kea `pd-pools` entry.
fn pd_pool(pool: &At<'_>) -> Result<PdPool, KeaError> {
    let text = pool
        .str("prefix")?
        .ok_or_else(|| pool.error("prefix", "missing"))?;
    let address: Ipv6Addr = text
        .trim()
        .parse()
        .map_err(|_| pool.error("prefix", format!("\"{text}\" is not an IPv6 address")))?;
    let len = pool
        .u32("prefix-len")?
        .ok_or_else(|| pool.error("prefix-len", "missing"))?;
    let delegated = pool
        .u32("delegated-len")?
        .ok_or_else(|| pool.error("delegated-len", "missing"))?;
    if len > 128 {
        return Err(pool.error("prefix-len", format!("{len} is not a length 0..128")));
    }
    if delegated < len || delegated > 128 {
        return Err(pool.error(
            "delegated-len",
            format!("{delegated} is not a length from prefix-len ({len}) to 128"),
        ));
    }
    let prefix = Prefix::new(address, len as u8).map_err(|error| {
        pool.error(
            "prefix",
            format!("\"{text}\" with prefix-len {len}: {error}"),
        )
    })?;
    let excluded = match (
        pool.str("excluded-prefix")?,
        pool.u32("excluded-prefix-len")?,
    ) {
        (None, None) | (Some(_), Some(0)) => None,
        (Some(text), Some(excluded_len)) => {
            if excluded_len <= delegated || excluded_len > 128 || excluded_len - delegated > 64 {
                return Err(pool.error(
                    "excluded-prefix-len",
                    format!(
                        "{excluded_len} is not a length after delegated-len ({delegated}), \
                         at most 64 bits longer"
                    ),
                ));
            }
            let address: Ipv6Addr = text.trim().parse().map_err(|_| {
                pool.error(
                    "excluded-prefix",
                    format!("\"{text}\" is not an IPv6 address"),
                )
            })?;
            // RFC 6603: the option carries the bits after the delegated prefix; Kea takes
            // them from the excluded prefix, so every delegated prefix excludes the same
            // subnet of itself.
            let bits = u128::from(address);
            let subnet_bits = excluded_len - delegated;
            let subnet = (bits >> (128 - excluded_len)) & ((1u128 << subnet_bits) - 1);
            Some((excluded_len as u8, subnet as u64))
        }
        (Some(_), None) => {
            return Err(pool.error("excluded-prefix-len", "missing (excluded-prefix is set)"));
        }
        (None, Some(_)) => {
            return Err(pool.error("excluded-prefix", "missing (excluded-prefix-len is set)"));
        }
    };
    Ok(PdPool {
        prefix,
        delegated_len: delegated as u8,
        excluded,
        inside_on_link: false,
    })
}

/// What one reservation holds: an address, a prefix, or both.
type Reserved = (Option<Ipv6Addr>, Option<Prefix>);

/// The reservations of one Kea host entry, added to `mapped`; returns what each reserves.
fn reservations_of(
    at: &At<'_>,
    link: Option<&str>,
    links: &[Link],
    mapped: &mut Mapped,
    report: &mut Report,
) -> Result<Vec<Reserved>, KeaError> {
    report_unknown(
        at,
        &[
            "duid",
            "hw-address",
            // Reported below, with what they mean.
            "client-id",
            "flex-id",
            "circuit-id",
            "ip-addresses",
            "prefixes",
            "comment",
            "user-context",
        ],
        report,
    );
    let client = match (at.str("duid")?, at.str("hw-address")?) {
        (Some(duid), _) => {
            let bytes = super::leases::parse_hex(duid)
                .filter(|bytes| bytes.len() >= 3)
                .ok_or_else(|| at.error("duid", format!("\"{duid}\" is not a DUID in hex")))?;
            ("duid", colon_hex(&bytes))
        }
        (None, Some(mac)) => {
            let bytes = super::leases::parse_hex(mac).ok_or_else(|| {
                at.error(
                    "hw-address",
                    format!("\"{mac}\" is not a hardware address in hex"),
                )
            })?;
            ("hw-address", colon_hex(&bytes))
        }
        (None, None) => {
            report.not_carried.push(format!(
                "{}: reserved by another identifier than duid or hw-address (client-id, \
                 flex-id): xdhcp6 has no equivalent",
                at.path
            ));
            return Ok(Vec::new());
        }
    };
    let mut addresses = Vec::new();
    for (i, value) in at.array("ip-addresses")?.iter().enumerate() {
        let address: Ipv6Addr = value
            .as_str()
            .and_then(|text| text.trim().parse().ok())
            .ok_or_else(|| {
                at.error(
                    &format!("ip-addresses[{i}]"),
                    format!("{} is not an IPv6 address", short(value)),
                )
            })?;
        addresses.push(address);
    }
    let mut prefixes = Vec::new();
    for (i, value) in at.array("prefixes")?.iter().enumerate() {
        let prefix: Prefix = value
            .as_str()
            .and_then(|text| text.trim().parse().ok())
            .ok_or_else(|| {
                at.error(
                    &format!("prefixes[{i}]"),
                    format!("{} is not a prefix", short(value)),
                )
            })?;
        prefixes.push(prefix);
    }
    if addresses.len() > 1 || prefixes.len() > 1 {
        report.not_carried.push(format!(
            "{}: {} addresses and {} prefixes reserved; xdhcp6 reserves one of each per \
             client, the first ones are carried",
            at.path,
            addresses.len(),
            prefixes.len()
        ));
    }
    let address = addresses.first().copied();
    let prefix = prefixes.first().copied();
    if address.is_none() && prefix.is_none() {
        report.not_carried.push(format!(
            "{}: reserves no address or prefix (hostname or options only)",
            at.path
        ));
        return Ok(Vec::new());
    }
    if mapped
        .reservations
        .iter()
        .any(|other| other.client == client)
    {
        report.not_carried.push(format!(
            "{}: {} {} has a reservation already; xdhcp6 keeps one per client",
            at.path, client.0, client.1
        ));
        return Ok(Vec::new());
    }
    if link.is_none() {
        // A global reservation lies inside some link's pools, or xdhcp6 cannot place it.
        let placed = |address: &Ipv6Addr| {
            links
                .iter()
                .any(|l| l.pools.iter().any(|p| p.contains(*address)))
        };
        if let Some(address) = address
            && !placed(&address)
        {
            report.not_carried.push(format!(
                "{}: {address} is in no imported pool: xdhcp6 cannot tell which link it is on",
                at.path
            ));
            return Ok(Vec::new());
        }
    }
    mapped.reservations.push(Reservation {
        client,
        address,
        prefix,
        link: link.map(str::to_owned),
        origin: format!("Kea {}", at.path),
    });
    Ok(vec![(address, prefix)])
}

fn colon_hex(bytes: &[u8]) -> String {
    xdhcp6_engine::hex::colon(bytes)
}

/// `parent` with `child`'s options over it, key by key (`custom` code by code).
fn merge_options(parent: &Options, child: &Options) -> Options {
    let mut custom = parent.custom.clone();
    custom.extend(child.custom.clone());
    Options {
        dns_servers: child.dns_servers.clone().or(parent.dns_servers.clone()),
        domain_search: child.domain_search.clone().or(parent.domain_search.clone()),
        sntp_servers: child.sntp_servers.clone().or(parent.sntp_servers.clone()),
        ntp_servers: child.ntp_servers.clone().or(parent.ntp_servers.clone()),
        information_refresh_time: child
            .information_refresh_time
            .or(parent.information_refresh_time),
        sol_max_rt: child.sol_max_rt.or(parent.sol_max_rt),
        inf_max_rt: child.inf_max_rt.or(parent.inf_max_rt),
        bootfile_url: child.bootfile_url.clone().or(parent.bootfile_url.clone()),
        custom,
        always_send: if child.always_send.is_empty() {
            parent.always_send.clone()
        } else {
            let mut all = parent.always_send.clone();
            for item in &child.always_send {
                if !all.contains(item) {
                    all.push(item.clone());
                }
            }
            all
        },
        preference: child.preference.or(parent.preference),
    }
}

/// The `option-data` list of a scope.
fn options(at: &At<'_>, key: &str, report: &mut Report) -> Result<Options, KeaError> {
    let mut options = Options::default();
    for (i, value) in at.array(key)?.iter().enumerate() {
        let path = format!("{}.{key}[{i}]", at.path);
        let entry = object(at.file, &path, value)?;
        report_unknown(
            &entry,
            &[
                "name",
                "code",
                "space",
                "data",
                "csv-format",
                "always-send",
                "comment",
                "user-context",
            ],
            report,
        );
        let space = entry.str("space")?.unwrap_or("dhcp6");
        let name = entry.str("name")?;
        let code = entry.u32("code")?;
        // RFC 5908: option 56 holds server addresses (1), multicast groups (2) and names (3),
        // which Kea gives as sub-options of the option `ntp-server`.
        if space == "v6-ntp-suboptions" {
            let sub = match (name, code) {
                (Some("ntp-server-address"), _) | (None, Some(1)) => Some(true),
                (Some("ntp-server-multicast"), _) | (None, Some(2)) => Some(true),
                (Some("ntp-server-fqdn"), _) | (None, Some(3)) => Some(false),
                _ => None,
            };
            let data = entry.str("data")?.unwrap_or("").trim();
            match sub {
                Some(is_address) => {
                    if is_address && data.parse::<Ipv6Addr>().is_err() {
                        return Err(
                            entry.error("data", format!("\"{data}\" is not an IPv6 address"))
                        );
                    }
                    options
                        .ntp_servers
                        .get_or_insert_with(Vec::new)
                        .push(data.to_owned());
                }
                None => report.not_carried.push(format!(
                    "{path}: NTP sub-option {}: not one of RFC 5908's",
                    name.map(str::to_owned)
                        .unwrap_or_else(|| code.unwrap_or(0).to_string())
                )),
            }
            continue;
        }
        if space != "dhcp6" {
            report.not_carried.push(format!(
                "{path}: option {} in space \"{space}\": only the dhcp6 space is carried",
                name.map(str::to_owned)
                    .unwrap_or_else(|| code.unwrap_or(0).to_string())
            ));
            continue;
        }
        let data = entry.str("data")?.unwrap_or("");
        let csv = entry.bool("csv-format")?.unwrap_or(true);
        let always = entry.bool("always-send")?.unwrap_or(false);
        let known = match (name, code) {
            (Some(name), _) => KNOWN.iter().find(|(n, _)| *n == name).copied(),
            (None, Some(code)) => KNOWN.iter().find(|(_, c)| u32::from(*c) == code).copied(),
            (None, None) => return Err(entry.error("name", "missing (give name or code)")),
        };
        let list = || -> Vec<String> {
            data.split(',')
                .map(|item| item.trim().to_owned())
                .filter(|item| !item.is_empty())
                .collect()
        };
        let addresses = || -> Result<Vec<String>, KeaError> {
            let items = list();
            for item in &items {
                item.parse::<Ipv6Addr>().map_err(|_| {
                    entry.error("data", format!("\"{item}\" is not an IPv6 address"))
                })?;
            }
            Ok(items)
        };
        let number = || -> Result<u32, KeaError> {
            data.trim()
                .parse()
                .map_err(|_| entry.error("data", format!("\"{data}\" is not a number")))
        };
        let typed = match known {
            Some((key, _)) if csv => key,
            _ => {
                // Unknown to this import, or given as hex: carried as bytes when Kea was
                // given bytes.
                match (code, csv) {
                    (Some(code), false) => {
                        let code = u16::try_from(code)
                            .map_err(|_| entry.error("code", format!("{code} is not 0..65535")))?;
                        let hex: String = data
                            .chars()
                            .filter(|c| !c.is_whitespace() && *c != ':')
                            .collect();
                        let hex = hex.strip_prefix("0x").unwrap_or(&hex).to_owned();
                        if !hex.len().is_multiple_of(2)
                            || !hex.chars().all(|c| c.is_ascii_hexdigit())
                        {
                            return Err(entry.error("data", format!("\"{data}\" is not hex")));
                        }
                        options.custom.insert(code, hex);
                        if always {
                            options.always_send.push(code.to_string());
                        }
                    }
                    _ => report.not_carried.push(format!(
                        "{path}: option {} = \"{data}\": no xdhcp6 equivalent (give it with \
                         code and csv-format false to carry its bytes)",
                        name.map(str::to_owned)
                            .unwrap_or_else(|| code.unwrap_or(0).to_string())
                    )),
                }
                continue;
            }
        };
        match typed {
            "dns-servers" => options.dns_servers = Some(addresses()?),
            "domain-search" => options.domain_search = Some(list()),
            "sntp-servers" => options.sntp_servers = Some(addresses()?),
            "information-refresh-time" => options.information_refresh_time = Some(number()?),
            "sol-max-rt" => options.sol_max_rt = Some(number()?),
            "inf-max-rt" => options.inf_max_rt = Some(number()?),
            "bootfile-url" => options.bootfile_url = Some(data.trim().to_owned()),
            "ntp-server" => {
                if always {
                    let key = quote("ntp-servers");
                    if !options.always_send.contains(&key) {
                        options.always_send.push(key);
                    }
                }
                continue;
            }
            "preference" => {
                let value = number()?;
                options.preference = Some(u8::try_from(value).map_err(|_| {
                    entry.error("data", format!("{value} is not a preference 0..255"))
                })?);
                continue;
            }
            _ => continue,
        }
        if always {
            let key = quote(typed);
            if !options.always_send.contains(&key) {
                options.always_send.push(key);
            }
        }
    }
    Ok(options)
}

/// Kea option names this import maps to typed xdhcp6 keys.
const KNOWN: &[(&str, u16)] = &[
    ("preference", 7),
    ("dns-servers", 23),
    ("domain-search", 24),
    ("sntp-servers", 31),
    ("information-refresh-time", 32),
    ("bootfile-url", 59),
    // The container of the v6-ntp-suboptions above: nothing of its own.
    ("ntp-server", 56),
    ("sol-max-rt", 82),
    ("inf-max-rt", 83),
];

/// Kea's server DUID: the persisted file when given, else a `server-id` complete enough to
/// build it.
fn server_duid(
    global: &At<'_>,
    server_id_file: Option<(&str, &str)>,
) -> Result<ServerDuid, KeaError> {
    if let Some((text, file)) = server_id_file {
        return ServerDuid::from_text(text)
            .map_err(|problem| KeaError::new(file, "file", format!("not a DUID: {problem}")));
    }
    let data_directory = global.str("data-directory")?.unwrap_or(KEA_DATA_DIRECTORY);
    let missing = |what: &str| {
        global.error(
            "server-id",
            format!(
                "{what}: Kea generated its DUID and keeps it in \
                 {data_directory}/kea-dhcp6-serverid; give that file with --server-id-file, \
                 so that the clients' Renews to Kea's Server Identifier reach xdhcp6d"
            ),
        )
    };
    let Some(value) = global.get("server-id") else {
        return Err(missing("not in the configuration"));
    };
    let path = join(global.path, "server-id");
    let at = object(global.file, &path, value)?;
    let kind = at.str("type")?.unwrap_or("LLT");
    let Some(identifier) = at.str("identifier")? else {
        return Err(missing("no identifier"));
    };
    let identifier = super::leases::parse_hex(identifier)
        .ok_or_else(|| at.error("identifier", format!("\"{identifier}\" is not hex")))?;
    let mut duid = Vec::new();
    match kind {
        "LLT" => {
            let Some(time) = at.u32("time")? else {
                return Err(missing("type LLT without time"));
            };
            let htype = at.u32("htype")?.unwrap_or(1);
            duid.extend_from_slice(&1u16.to_be_bytes());
            duid.extend_from_slice(&(htype as u16).to_be_bytes());
            duid.extend_from_slice(&time.to_be_bytes());
        }
        "EN" => {
            // ISC's enterprise number is Kea's default.
            let enterprise = at.u32("enterprise-id")?.unwrap_or(2495);
            duid.extend_from_slice(&2u16.to_be_bytes());
            duid.extend_from_slice(&enterprise.to_be_bytes());
        }
        "LL" => {
            let htype = at.u32("htype")?.unwrap_or(1);
            duid.extend_from_slice(&3u16.to_be_bytes());
            duid.extend_from_slice(&(htype as u16).to_be_bytes());
        }
        other => {
            return Err(at.error(
                "type",
                format!("\"{other}\" is not a DUID type (LLT, EN or LL)"),
            ));
        }
    }
    duid.extend_from_slice(&identifier);
    ServerDuid::from_bytes(duid).map_err(|problem| at.error("identifier", problem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_removed_outside_strings_only() {
        let text = "{ // line\n \"a\": \"x // y # z /* w */\", # hash\n /* block\n */ \"b\": 1 }";
        let json = strip_comments(text).unwrap();
        let value: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["a"], "x // y # z /* w */");
        assert_eq!(value["b"], 1);
        // Lines are kept, so serde_json's positions are the file's.
        assert_eq!(json.lines().count(), text.lines().count());
        assert_eq!(json.len(), text.len());
    }

    #[test]
    fn escaped_quotes_do_not_end_a_string() {
        let json = strip_comments(r##"{"a": "say \"#hi\" // there"} # end"##).unwrap();
        let value: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["a"], "say \"#hi\" // there");
    }

    #[test]
    fn an_unclosed_block_comment_names_its_line() {
        let error = strip_comments("{\n\n /* open\n }").unwrap_err();
        assert!(error.contains("line 3"), "{error}");
    }

    #[test]
    fn ranges_become_the_fewest_prefixes() {
        let blocks = |first: &str, last: &str| -> Vec<String> {
            let first = u128::from(first.parse::<Ipv6Addr>().unwrap());
            let last = u128::from(last.parse::<Ipv6Addr>().unwrap());
            range_blocks(first, last)
                .iter()
                .map(Prefix::to_string)
                .collect()
        };
        assert_eq!(
            blocks("2001:db8::", "2001:db8::ffff:ffff:ffff:ffff"),
            ["2001:db8::/64"]
        );
        assert_eq!(
            blocks("2001:db8::100", "2001:db8::1ff"),
            ["2001:db8::100/120"]
        );
        assert_eq!(
            blocks("2001:db8::1", "2001:db8::6"),
            [
                "2001:db8::1/128",
                "2001:db8::2/127",
                "2001:db8::4/127",
                "2001:db8::6/128"
            ]
        );
        assert_eq!(
            blocks("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ["::/0"]
        );
        // The worst case stays bounded.
        let worst = range_blocks(1, u128::MAX - 1);
        assert_eq!(worst.len(), 254);
        let covered: u128 = worst
            .iter()
            .map(|p| (1u128 << (128 - p.len())) - 1 + 1)
            .sum();
        assert_eq!(covered, u128::MAX - 1);
    }

    #[test]
    fn pool_text_forms() {
        assert_eq!(
            pool_blocks("2001:db8:1::/64").unwrap(),
            vec!["2001:db8:1::/64".parse::<Prefix>().unwrap()]
        );
        assert_eq!(
            pool_blocks(" 2001:db8::10 -2001:db8::1f ").unwrap(),
            vec!["2001:db8::10/124".parse::<Prefix>().unwrap()]
        );
        for bad in [
            "2001:db8::1-",
            "2001:db8::2 - 2001:db8::1",
            "2001:db8::1",
            "x - y",
        ] {
            assert!(pool_blocks(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kea_timers_are_calculated_from_the_preferred_lifetime() {
        let timers = Timers {
            preferred: Some(1000),
            ..Timers::default()
        };
        assert_eq!(timers.resolve(), [500, 800, 1000, 7200]);
        let off = Timers {
            calculate: Some(false),
            ..Timers::default()
        };
        assert_eq!(off.resolve(), [0, 0, 3600, 7200]);
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000A\"");
    }
}
