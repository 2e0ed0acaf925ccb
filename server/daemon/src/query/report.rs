//! The answers of every server merged into one report: who holds the binding, who did not
//! answer and why, and who would own the address or prefix by the servers' layout.

use std::fmt::Write as _;
use std::net::SocketAddr;

use serde_json::{Value, json};
use xdhcp6_engine::proto::{MessageType, StatusCode};

use super::layout::{Choice, Claim, Ownership};
use super::transport::Exchange;
use super::wire::{Binding, RelayData, Target};
use crate::runtime::hex;

/// The exit status when a binding was found.
pub const EXIT_FOUND: u8 = 0;
/// The exit status when every server answered and none holds a binding.
pub const EXIT_NOT_FOUND: u8 = 3;
/// The exit status when no binding was found and at least one server did not answer (or
/// refused the query): the binding may be on that one.
pub const EXIT_INCOMPLETE: u8 = 4;

/// What one server said, judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It answered with bindings (`complete`: the whole answer came).
    Holds {
        /// Its Server Identifier.
        server_id: Option<Vec<u8>>,
        /// The bindings.
        bindings: Vec<Binding>,
        /// Whether the answer was whole (a TCP stream ended by LEASEQUERY-DONE).
        complete: bool,
    },
    /// It has bindings of the client on several links (LQ Client Link): ask on each.
    OnLinks {
        /// Its Server Identifier.
        server_id: Option<Vec<u8>>,
        /// The link-addresses to ask again with `--link`.
        links: Vec<std::net::Ipv6Addr>,
    },
    /// It answered and holds nothing (NotConfigured included: not in its configuration).
    NoBinding {
        /// Its Server Identifier.
        server_id: Option<Vec<u8>>,
        /// NotConfigured, when it said so.
        not_configured: bool,
    },
    /// It refused the query: NotAllowed (this requestor is not in its `[leasequery]
    /// requestors`), UnknownQueryType, MalformedQuery, or another status.
    Refused {
        /// The status code.
        code: StatusCode,
        /// Its message.
        message: String,
    },
    /// Nothing came back in time.
    Timeout,
    /// It could not be reached.
    Unreachable(String),
}

impl Verdict {
    /// Judges one exchange.
    pub fn of(exchange: Exchange) -> Self {
        let (answers, complete) = match exchange {
            Exchange::Timeout => return Verdict::Timeout,
            Exchange::Unreachable(why) => return Verdict::Unreachable(why),
            Exchange::Answered { answers, complete } => (answers, complete),
        };
        let Some(first) = answers.first() else {
            return Verdict::Timeout;
        };
        let server_id = first.server_id.clone();
        let code = first.status_code();
        // A LEASEQUERY-DONE may carry the status that ended a bulk query early.
        let done_status = answers
            .iter()
            .find(|answer| answer.msg_type == MessageType::LeasequeryDone)
            .map(|answer| answer.status_code())
            .filter(|code| *code != StatusCode::Success);
        let bindings: Vec<Binding> = answers
            .iter()
            .filter_map(|answer| answer.binding.clone())
            .collect();
        if code != StatusCode::Success && code != StatusCode::NotConfigured && bindings.is_empty() {
            let message = first
                .status
                .as_ref()
                .map(|(_, message)| message.clone())
                .unwrap_or_default();
            return Verdict::Refused { code, message };
        }
        if !bindings.is_empty() {
            return Verdict::Holds {
                server_id,
                bindings,
                complete: complete && done_status.is_none(),
            };
        }
        if !first.client_links.is_empty() {
            return Verdict::OnLinks {
                server_id,
                links: first.client_links.clone(),
            };
        }
        Verdict::NoBinding {
            server_id,
            not_configured: code == StatusCode::NotConfigured,
        }
    }

    /// Whether the server gave an answer one can rely on (bindings, or none).
    pub fn answered(&self) -> bool {
        matches!(
            self,
            Verdict::Holds { .. } | Verdict::OnLinks { .. } | Verdict::NoBinding { .. }
        )
    }

    fn word(&self) -> &'static str {
        match self {
            Verdict::Holds { .. } => "holds",
            Verdict::OnLinks { .. } => "on-links",
            Verdict::NoBinding { .. } => "no-binding",
            Verdict::Refused { .. } => "refused",
            Verdict::Timeout => "timeout",
            Verdict::Unreachable(_) => "unreachable",
        }
    }

    /// Why it gave no usable answer, in words.
    fn reason(&self) -> String {
        match self {
            Verdict::Refused { code, message } => {
                let name = status_name(*code);
                if message.is_empty() {
                    format!("refused: {name}")
                } else {
                    format!("refused: {name} ({message})")
                }
            }
            Verdict::Timeout => "timeout".to_owned(),
            Verdict::Unreachable(why) => format!("unreachable: {why}"),
            _ => String::new(),
        }
    }
}

fn status_name(code: StatusCode) -> String {
    match code {
        StatusCode::NotAllowed => {
            "NotAllowed (this requestor is not in its [leasequery] requestors)".to_owned()
        }
        StatusCode::UnknownQueryType => "UnknownQueryType".to_owned(),
        StatusCode::MalformedQuery => "MalformedQuery".to_owned(),
        StatusCode::NotConfigured => "NotConfigured".to_owned(),
        other => format!("status {}", u16::from(other)),
    }
}

/// One server of the report.
#[derive(Clone, Debug)]
pub struct ServerResult {
    /// Its name (`NAME=` in `--servers`, else its address).
    pub name: String,
    /// Where it was asked.
    pub address: SocketAddr,
    /// What it said.
    pub verdict: Verdict,
}

/// The merged answer of the fleet.
#[derive(Clone, Debug)]
pub struct Report {
    /// What was asked.
    pub target: Target,
    /// `udp` or `tcp`.
    pub transport: &'static str,
    /// Every server, in `--servers` order.
    pub servers: Vec<ServerResult>,
    /// Who would own the address or prefix by the layout.
    pub ownership: Ownership,
    /// For a query by client with an IAID: what each server would hand that IA first.
    pub choices: Vec<Choice>,
}

impl Report {
    /// The servers that hold a binding (or name links to ask on).
    pub fn holders(&self) -> impl Iterator<Item = &ServerResult> {
        self.servers.iter().filter(|server| {
            matches!(
                server.verdict,
                Verdict::Holds { .. } | Verdict::OnLinks { .. }
            )
        })
    }

    /// The servers without a usable answer.
    pub fn silent(&self) -> impl Iterator<Item = &ServerResult> {
        self.servers
            .iter()
            .filter(|server| !server.verdict.answered())
    }

    /// The exit status: [`EXIT_FOUND`], [`EXIT_NOT_FOUND`] or [`EXIT_INCOMPLETE`].
    pub fn exit_code(&self) -> u8 {
        if self.holders().next().is_some() {
            EXIT_FOUND
        } else if self.silent().next().is_some() {
            EXIT_INCOMPLETE
        } else {
            EXIT_NOT_FOUND
        }
    }

    /// The servers that would own the target and did not answer.
    fn silent_owners(&self) -> Vec<&str> {
        let owners: Vec<usize> = match &self.ownership {
            Ownership::Owner(claim) => vec![claim.server],
            Ownership::Shared(claims) => claims.iter().map(|claim| claim.server).collect(),
            _ => Vec::new(),
        };
        owners
            .into_iter()
            .filter_map(|index| self.servers.get(index))
            .filter(|server| !server.verdict.answered())
            .map(|server| server.name.as_str())
            .collect()
    }

    fn name_of(&self, index: usize) -> &str {
        self.servers
            .get(index)
            .map_or("?", |server| server.name.as_str())
    }

    /// The report for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "query: {} over {}, {} server{}",
            describe(&self.target),
            self.transport,
            self.servers.len(),
            if self.servers.len() == 1 { "" } else { "s" }
        );
        for server in &self.servers {
            let _ = write!(
                out,
                "  {:<12} {:<28} ",
                server.name,
                server.address.to_string()
            );
            match &server.verdict {
                Verdict::Holds {
                    server_id,
                    bindings,
                    complete,
                } => {
                    let _ = writeln!(
                        out,
                        "HOLDS {} binding{}{}{}",
                        bindings.len(),
                        if bindings.len() == 1 { "" } else { "s" },
                        server_id
                            .as_ref()
                            .map(|duid| format!(" (server-id {})", hex(duid)))
                            .unwrap_or_default(),
                        if *complete {
                            ""
                        } else {
                            ", answer cut short (no LEASEQUERY-DONE)"
                        }
                    );
                    for binding in bindings {
                        write_binding(&mut out, binding);
                    }
                }
                Verdict::OnLinks { links, .. } => {
                    let links: Vec<String> = links.iter().map(ToString::to_string).collect();
                    let _ = writeln!(
                        out,
                        "HOLDS bindings on several links: ask again with --link {}",
                        links.join(" or --link ")
                    );
                }
                Verdict::NoBinding { not_configured, .. } => {
                    let _ = writeln!(
                        out,
                        "no binding{}",
                        if *not_configured {
                            " (NotConfigured: not in its configuration)"
                        } else {
                            ""
                        }
                    );
                }
                other => {
                    let _ = writeln!(out, "NOT ANSWERING: {}", other.reason());
                }
            }
        }
        if let Some(line) = self.layout_line() {
            let _ = writeln!(out, "layout: {line}");
        }
        if let (
            Target::ClientId {
                iaid: Some(iaid), ..
            },
            false,
        ) = (&self.target, self.choices.is_empty())
        {
            let _ = writeln!(
                out,
                "layout: first choice of each server for IAID {iaid} (from its slice's hash, if free):"
            );
            for choice in &self.choices {
                let _ = writeln!(
                    out,
                    "  {:<12} {} {}  link {}",
                    self.name_of(choice.server),
                    choice.kind,
                    choice.unit,
                    choice.link
                );
            }
        }
        let _ = writeln!(out, "result: {}", self.summary());
        out
    }

    fn layout_line(&self) -> Option<String> {
        let target = self.target.prefix()?;
        Some(match &self.ownership {
            Ownership::Unknown => return None,
            Ownership::Unconfigured => {
                format!("{target} is in no pool of these servers: none of them hands it out")
            }
            Ownership::NoSlice { pools } => {
                let pools: Vec<String> = pools.iter().map(ToString::to_string).collect();
                format!(
                    "{target} is in pool {} but in no server's slice: none of these servers hands it out",
                    pools.join(", ")
                )
            }
            Ownership::Owner(claim) => {
                let name = self.name_of(claim.server);
                let down = self.silent_owners().contains(&name);
                format!(
                    "{} would be held by {name} ({}){}",
                    unit(claim),
                    where_from(claim),
                    if down { ", which is NOT ANSWERING" } else { "" }
                )
            }
            Ownership::Shared(claims) => {
                let names: Vec<&str> = claims
                    .iter()
                    .map(|claim| self.name_of(claim.server))
                    .collect();
                let first = &claims[0];
                let down = self.silent_owners();
                format!(
                    "{} is in the same range {} of every one of {} (identical model): any of them may hold it{}",
                    unit(first),
                    first.range,
                    names.join(", "),
                    if down.is_empty() {
                        String::new()
                    } else {
                        format!("; not answering: {}", down.join(", "))
                    }
                )
            }
        })
    }

    fn summary(&self) -> String {
        let holders: Vec<&str> = self.holders().map(|server| server.name.as_str()).collect();
        let silent: Vec<&str> = self.silent().map(|server| server.name.as_str()).collect();
        let mut line = if holders.is_empty() {
            "not found".to_owned()
        } else {
            format!("held by {}", holders.join(", "))
        };
        if !silent.is_empty() {
            let _ = write!(line, "; not answering: {}", silent.join(", "));
        }
        let owners = self.silent_owners();
        if holders.is_empty() && !owners.is_empty() {
            if matches!(self.ownership, Ownership::Shared(_)) {
                let _ = write!(
                    line,
                    "; of the servers that may hold it, {} did not answer",
                    owners.join(", ")
                );
            } else {
                let _ = write!(
                    line,
                    "; the server that would hold it ({}) is the one not answering",
                    owners.join(", ")
                );
            }
        }
        line
    }

    /// The report as JSON.
    pub fn json(&self) -> Value {
        let servers: Vec<Value> = self
            .servers
            .iter()
            .map(|server| {
                let mut entry = json!({
                    "name": server.name,
                    "address": server.address.to_string(),
                    "result": server.verdict.word(),
                });
                match &server.verdict {
                    Verdict::Holds {
                        server_id,
                        bindings,
                        complete,
                    } => {
                        entry["server_id"] = json!(server_id.as_deref().map(hex));
                        entry["complete"] = json!(complete);
                        entry["bindings"] = bindings.iter().map(binding_json).collect();
                    }
                    Verdict::OnLinks { server_id, links } => {
                        entry["server_id"] = json!(server_id.as_deref().map(hex));
                        entry["links"] = links.iter().map(|link| json!(link.to_string())).collect();
                    }
                    Verdict::NoBinding {
                        server_id,
                        not_configured,
                    } => {
                        entry["server_id"] = json!(server_id.as_deref().map(hex));
                        entry["not_configured"] = json!(not_configured);
                    }
                    Verdict::Refused { code, message } => {
                        entry["status"] = json!(u16::from(*code));
                        entry["reason"] = json!(server.verdict.reason());
                        entry["message"] = json!(message);
                    }
                    Verdict::Timeout | Verdict::Unreachable(_) => {
                        entry["reason"] = json!(server.verdict.reason());
                    }
                }
                entry
            })
            .collect();
        let claim_json = |claim: &Claim| {
            json!({
                "server": self.name_of(claim.server),
                "link": claim.link,
                "kind": claim.kind,
                "pool": claim.pool.to_string(),
                "range": claim.range.to_string(),
                "unit": claim.unit.to_string(),
                "reserved": claim.reserved,
                "answering": self.servers.get(claim.server).is_some_and(|server| server.verdict.answered()),
            })
        };
        let layout = match &self.ownership {
            Ownership::Unknown => json!({ "model": "unknown" }),
            Ownership::Unconfigured => json!({ "model": "unconfigured", "owners": [] }),
            Ownership::NoSlice { pools } => json!({
                "model": "no-slice",
                "pools": pools.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "owners": [],
            }),
            Ownership::Owner(claim) => json!({ "model": "owner", "owners": [claim_json(claim)] }),
            Ownership::Shared(claims) => json!({
                "model": "shared",
                "owners": claims.iter().map(claim_json).collect::<Vec<_>>(),
            }),
        };
        json!({
            "query": describe(&self.target),
            "transport": self.transport,
            "found": self.holders().next().is_some(),
            "holders": self.holders().map(|server| server.name.clone()).collect::<Vec<_>>(),
            "not_answering": self.silent().map(|server| server.name.clone()).collect::<Vec<_>>(),
            "servers": servers,
            "layout": layout,
            "first_choices": self.choices.iter().map(|choice| json!({
                "server": self.name_of(choice.server),
                "link": choice.link,
                "kind": choice.kind,
                "unit": choice.unit.to_string(),
            })).collect::<Vec<_>>(),
            "exit_code": self.exit_code(),
        })
    }
}

/// The unit in words: an address without its /128.
fn unit(claim: &Claim) -> String {
    if claim.kind == "na" && claim.unit.len() == 128 {
        claim.unit.addr().to_string()
    } else {
        claim.unit.to_string()
    }
}

fn where_from(claim: &Claim) -> String {
    if claim.reserved {
        format!("reserved there{}", link_suffix(&claim.link))
    } else {
        if claim.range == claim.pool {
            format!("its pool {}, link {}", claim.pool, claim.link)
        } else {
            format!(
                "its slice {} of pool {}, link {}",
                claim.range, claim.pool, claim.link
            )
        }
    }
}

fn link_suffix(link: &str) -> String {
    if link.is_empty() {
        String::new()
    } else {
        format!(", link {link}")
    }
}

/// The query in words.
pub fn describe(target: &Target) -> String {
    match target {
        Target::Address(address) => format!("address {address}"),
        Target::Prefix(prefix) => format!("prefix {prefix}"),
        Target::ClientId { duid, iaid } => match iaid {
            Some(iaid) => format!("client {} iaid {iaid}", hex(duid)),
            None => format!("client {}", hex(duid)),
        },
        Target::RelayId(duid) => format!("relay-id {}", hex(duid)),
        Target::RemoteId { enterprise, id } => format!("remote-id {enterprise}:{}", hex(id)),
    }
}

fn write_binding(out: &mut String, binding: &Binding) {
    let _ = writeln!(out, "      client {}", hex(&binding.client_id));
    for (address, preferred, valid) in &binding.addresses {
        let _ = writeln!(
            out,
            "        address {address}  preferred {preferred} s  valid {valid} s"
        );
    }
    for (prefix, preferred, valid) in &binding.prefixes {
        let _ = writeln!(
            out,
            "        prefix  {prefix}  preferred {preferred} s  valid {valid} s"
        );
    }
    if let Some(clt) = binding.clt_time {
        let _ = writeln!(out, "        last transaction {clt} s ago");
    }
    if let Some(relay) = &binding.relay {
        for line in relay_lines(relay) {
            let _ = writeln!(out, "        {line}");
        }
    }
}

fn relay_lines(relay: &RelayData) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(peer) = relay.peer_address {
        lines.push(format!("relayed, peer-address {peer}"));
    }
    for (index, hop) in relay.hops.iter().enumerate() {
        let mut line = format!("hop {index}:");
        if let Some(link) = hop.link_address {
            let _ = write!(line, " link-address {link}");
        }
        if let Some(peer) = hop.peer_address {
            let _ = write!(line, " peer-address {peer}");
        }
        if let Some(id) = &hop.interface_id {
            let _ = write!(line, " interface-id {}", printable(id));
        }
        if let Some((enterprise, id)) = &hop.remote_id {
            let _ = write!(line, " remote-id {enterprise}:{}", hex(id));
        }
        if let Some(id) = &hop.subscriber_id {
            let _ = write!(line, " subscriber-id {}", printable(id));
        }
        if let Some(id) = &hop.relay_id {
            let _ = write!(line, " relay-id {}", hex(id));
        }
        lines.push(line);
    }
    lines
}

/// Text when the bytes are printable ASCII, hex otherwise.
fn printable(bytes: &[u8]) -> String {
    if !bytes.is_empty()
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_graphic() || *byte == b' ')
    {
        format!("{:?}", String::from_utf8_lossy(bytes))
    } else {
        hex(bytes)
    }
}

fn binding_json(binding: &Binding) -> Value {
    let relay = binding.relay.as_ref().map(|relay| {
        json!({
            "peer_address": relay.peer_address.map(|peer| peer.to_string()),
            "hops": relay.hops.iter().map(|hop| json!({
                "link_address": hop.link_address.map(|a| a.to_string()),
                "peer_address": hop.peer_address.map(|a| a.to_string()),
                "interface_id": hop.interface_id.as_deref().map(hex),
                "remote_id": hop.remote_id.as_ref().map(|(e, id)| format!("{e}:{}", hex(id))),
                "subscriber_id": hop.subscriber_id.as_deref().map(hex),
                "relay_id": hop.relay_id.as_deref().map(hex),
            })).collect::<Vec<_>>(),
        })
    });
    json!({
        "client_id": hex(&binding.client_id),
        "addresses": binding.addresses.iter().map(|(address, preferred, valid)| json!({
            "address": address.to_string(), "preferred": preferred, "valid": valid,
        })).collect::<Vec<_>>(),
        "prefixes": binding.prefixes.iter().map(|(prefix, preferred, valid)| json!({
            "prefix": prefix.to_string(), "preferred": preferred, "valid": valid,
        })).collect::<Vec<_>>(),
        "clt_time": binding.clt_time,
        "relay_data": relay,
    })
}
