//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod captured;
pub mod vectors;

use xdhcp6_proto::{DhcpOption, DuidKind, NtpSuboption, Options, Packet, ParseError};

/// Decodes hex, ignoring whitespace.
pub fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex length");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// The built-in vectors as bytes.
pub fn vectors() -> Vec<(&'static str, Vec<u8>)> {
    vectors::VECTORS.iter().map(|(n, h)| (*n, hex(h))).collect()
}

/// The captured payloads shipped with the tests.
pub fn captured() -> Vec<(&'static str, Vec<u8>)> {
    captured::CAPTURED
        .iter()
        .map(|(n, h)| (*n, hex(h)))
        .collect()
}

/// Every `.bin` under `fuzz/seeds/*/` of the workspace (real captured payloads), if any.
///
/// `XDHCP6_SEEDS_DIR` points the search elsewhere (to try the test on other captures).
pub fn seed_files() -> Vec<(String, Vec<u8>)> {
    let root = match std::env::var_os("XDHCP6_SEEDS_DIR") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds"),
    };
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return out;
    };
    let mut stack: Vec<std::path::PathBuf> = dirs.flatten().map(|e| e.path()).collect();
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else if p.extension().is_some_and(|e| e == "bin")
            && let Ok(bytes) = std::fs::read(&p)
        {
            out.push((p.display().to_string(), bytes));
        }
    }
    out.sort();
    out
}

/// What a deep walk saw.
#[derive(Debug, Default)]
pub struct Walk {
    /// Options typed without error, at any depth.
    pub options: usize,
    /// The first error met, if any.
    pub error: Option<ParseError>,
}

/// Visits every option at every depth, relayed messages included, with an explicit stack
/// (so hostile nesting cannot overflow the test's stack) and touches every accessor.
pub fn walk(buf: &[u8]) -> Walk {
    let mut w = Walk::default();
    let mut stack: Vec<Options<'_>> = Vec::new();
    let mut messages: Vec<&[u8]> = vec![buf];
    while let Some(m) = messages.pop() {
        match Packet::parse(m) {
            Ok(p) => {
                let _ = p.msg_type();
                if let Packet::Relay(r) = p {
                    let _ = (r.hop_count(), r.link_address(), r.peer_address());
                    let _ = r.chain();
                } else if let Packet::Client(c) = p {
                    let _ = c.transaction_id();
                }
                stack.push(p.options());
            }
            Err(e) => {
                w.error.get_or_insert(e);
                continue;
            }
        }
        while let Some(mut opts) = stack.pop() {
            let Some(item) = opts.next() else { continue };
            stack.push(opts);
            let opt = match item {
                Ok(o) => o,
                Err(e) => {
                    w.error.get_or_insert(e);
                    continue;
                }
            };
            w.options += 1;
            if stack.len() > 10_000 {
                continue;
            }
            touch(&opt, &mut stack, &mut messages);
        }
    }
    w
}

fn touch<'a>(opt: &DhcpOption<'a>, stack: &mut Vec<Options<'a>>, messages: &mut Vec<&'a [u8]>) {
    let _ = format!("{opt:?}");
    match opt {
        DhcpOption::ClientId(d) | DhcpOption::ServerId(d) | DhcpOption::RelayId(d) => {
            let _ = d.duid_type();
            if let DuidKind::Llt { ll_addr, .. } = d.kind() {
                let _ = ll_addr.len();
            }
        }
        DhcpOption::IaNa(ia) => {
            let _ = (ia.iaid(), ia.t1(), ia.t2());
            stack.push(ia.options());
        }
        DhcpOption::IaPd(ia) => {
            let _ = (ia.iaid(), ia.t1(), ia.t2());
            stack.push(ia.options());
        }
        DhcpOption::IaTa(ia) => {
            let _ = ia.iaid();
            stack.push(ia.options());
        }
        DhcpOption::IaAddr(a) => {
            let _ = (a.addr(), a.preferred_lifetime(), a.valid_lifetime());
            stack.push(a.options());
        }
        DhcpOption::IaPrefix(p) => {
            let _ = (
                p.prefix(),
                p.prefix_len(),
                p.preferred_lifetime(),
                p.valid_lifetime(),
            );
            stack.push(p.options());
        }
        DhcpOption::LqQuery(q) => {
            let _ = (q.query_type(), q.link_address());
            stack.push(q.options());
        }
        DhcpOption::ClientData(o) => stack.push(o.clone()),
        DhcpOption::RelayMsg(m) => messages.push(m),
        DhcpOption::LqRelayData { message, .. } => messages.push(message),
        DhcpOption::Oro(o) => {
            let _ = o.iter().count();
        }
        DhcpOption::Auth(a) => {
            let _ = (
                a.protocol(),
                a.algorithm(),
                a.rdm(),
                a.replay_detection(),
                a.info(),
            );
        }
        DhcpOption::UserClass(l) | DhcpOption::BootFileParams(l) => {
            let _ = l.iter().count();
        }
        DhcpOption::VendorClass { data, .. } => {
            let _ = data.iter().count();
        }
        DhcpOption::VendorOpts { options, .. } => {
            let _ = options.iter().count();
        }
        DhcpOption::DnsServers(l) | DhcpOption::SntpServers(l) | DhcpOption::LqClientLink(l) => {
            let _ = l.iter().count();
        }
        DhcpOption::DomainList(l) => {
            for n in l.iter() {
                let _ = n.to_string();
            }
        }
        DhcpOption::ClientFqdn { name, .. } => {
            let _ = name.to_string();
        }
        DhcpOption::NtpServer(n) => {
            for s in n.suboptions() {
                if let NtpSuboption::ServerFqdn(name) = s {
                    let _ = name.to_string();
                }
            }
        }
        DhcpOption::ClientArchTypes(a) => {
            let _ = a.iter().count();
        }
        _ => {}
    }
}
