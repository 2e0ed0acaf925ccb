//! The Client FQDN option (RFC 4704) on links with DNS updates: the name a client asks for,
//! sanitised and qualified; who updates which record (the S, O and N flags under the server's
//! policy); and the [`NameBinding`] the engine hands its event sink for the DNS updater.
//!
//! The engine sends no DNS message: it decides, the daemon's updater updates, off the reply
//! path.

use std::fmt::Write as _;
use std::net::Ipv6Addr;

use crate::config::{DdnsSettings, GeneratedName, LinkId};
use crate::table::{DuidBuf, EventKind, EventSink, IaKind, LeaseEvent};

/// S: the server performs the AAAA update (RFC 4704 §4.1).
pub const FLAG_S: u8 = 0b001;
/// O: the server overrode the client's S (RFC 4704 §4.1).
pub const FLAG_O: u8 = 0b010;
/// N: the server performs no DNS update (RFC 4704 §4.1).
pub const FLAG_N: u8 = 0b100;

/// Longest name in presentation form without its final dot (RFC 1035 §2.3.4, 255 bytes of
/// wire format).
const MAX_NAME_TEXT: usize = 253;
/// Longest label (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;

/// What the server does with a client's Client FQDN option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The flags of the option in the reply.
    pub reply_flags: u8,
    /// Whether the server updates the AAAA (and DHCID) records.
    pub forward: bool,
    /// Whether the server updates the PTR records.
    pub reverse: bool,
}

/// Decides who updates what from the client's flags and the link's policy (RFC 4704 §5, §6.1).
pub fn decide(client_flags: u8, policy: &DdnsSettings) -> Decision {
    if client_flags & FLAG_N != 0 {
        // RFC 4704 §6.1, in substance:
        // If the "N" bit is 1 in the client's option, the server SHOULD NOT perform any DNS
        // updates ... unless configured to override, and then sets "O" (and "S").
        return if policy.override_no_update {
            Decision {
                reply_flags: FLAG_S | FLAG_O,
                forward: true,
                reverse: true,
            }
        } else {
            Decision {
                reply_flags: FLAG_N,
                forward: false,
                reverse: false,
            }
        };
    }
    if client_flags & FLAG_S != 0 {
        // RFC 4704 §6.1, in substance: "S" 1 asks the server to perform the AAAA update; the
        // server echoes "S" 1.
        return Decision {
            reply_flags: FLAG_S,
            forward: true,
            reverse: true,
        };
    }
    if policy.override_client_update {
        // RFC 4704 §6.1, in substance: a server configured to perform the AAAA update even
        // though the client asked to do it sets "S" and "O" in its reply.
        Decision {
            reply_flags: FLAG_S | FLAG_O,
            forward: true,
            reverse: true,
        }
    } else {
        // RFC 4704 §5, in substance: the server performs the PTR update; the client its AAAA.
        Decision {
            reply_flags: 0,
            forward: false,
            reverse: true,
        }
    }
}

/// The name a client asked for (`wire`: the option's domain name, possibly partial, RFC 4704
/// §4.1), sanitised: lower case, characters other than letters, digits and hyphens become
/// hyphens, labels without any letter or digit are dropped. A partial name gets the link's
/// qualifying suffix; a full name outside the forward zone keeps its first label under the
/// suffix. `None` when nothing usable is left (the server then generates one).
pub fn sanitise(wire: &[u8], policy: &DdnsSettings) -> Option<String> {
    let mut labels: Vec<String> = Vec::new();
    let mut rest = wire;
    let mut fully_qualified = false;
    while let Some((&len, tail)) = rest.split_first() {
        if len == 0 {
            fully_qualified = true;
            break;
        }
        let len = usize::from(len);
        let label = tail.get(..len)?;
        rest = tail.get(len..)?;
        let clean = sanitise_label(label);
        if !clean.is_empty() {
            labels.push(clean);
        }
        if labels.len() > 127 {
            return None;
        }
    }
    let first = labels.first()?;
    let mut name = labels.join(".");
    name.push('.');
    let name = if fully_qualified {
        if in_zone(&name, &policy.forward_zone) && name != policy.forward_zone {
            name
        } else {
            format!("{first}.{}", policy.qualifying_suffix)
        }
    } else {
        format!("{name}{}", policy.qualifying_suffix)
    };
    (name.len() - 1 <= MAX_NAME_TEXT).then_some(name)
}

fn sanitise_label(label: &[u8]) -> String {
    let mut clean = String::with_capacity(label.len());
    for &byte in label {
        let c = byte.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            clean.push(char::from(c));
        } else if !clean.is_empty() && !clean.ends_with('-') {
            clean.push('-');
        }
    }
    while clean.ends_with('-') {
        clean.pop();
    }
    clean.truncate(MAX_LABEL);
    while clean.ends_with('-') {
        clean.pop();
    }
    clean
}

/// Whether `name` is `zone` or inside it (both absolute, lower case).
pub fn in_zone(name: &str, zone: &str) -> bool {
    name == zone
        || name
            .strip_suffix(zone)
            .is_some_and(|head| head.ends_with('.'))
}

/// The name of a client that sent no name (or nothing usable), by the link's
/// `generated-name` policy: from its first address, or from its DUID.
pub fn generated(policy: &DdnsSettings, duid: &[u8], address: Option<Ipv6Addr>) -> Option<String> {
    let mut label = policy.generated_prefix.clone();
    label.push('-');
    match policy.generated_name {
        GeneratedName::None => return None,
        GeneratedName::Address => {
            let address = address?;
            for (i, group) in address.segments().iter().enumerate() {
                if i > 0 {
                    label.push('-');
                }
                let _ = write!(label, "{group:x}");
            }
        }
        GeneratedName::Duid => {
            if duid.is_empty() {
                return None;
            }
            let room = (MAX_LABEL - label.len()) / 2;
            for byte in duid.iter().take(room) {
                let _ = write!(label, "{byte:02x}");
            }
        }
    }
    let name = format!("{label}.{}", policy.qualifying_suffix);
    (name.len() - 1 <= MAX_NAME_TEXT).then_some(name)
}

/// A client's name and the addresses a Reply gave it, for the DNS updater; emitted once per
/// Reply that binds or extends on a link with `[link.ddns]`, after its lease events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameBinding {
    /// The link the client is on.
    pub link: LinkId,
    /// The client's DUID (the DHCID is made of it and the name, RFC 4701 §3.3).
    pub duid: DuidBuf,
    /// The name, absolute and lower case (`example.` style, final dot included).
    pub name: String,
    /// Whether the server updates the AAAA and DHCID records.
    pub forward: bool,
    /// Whether the server updates the PTR records.
    pub reverse: bool,
    /// The addresses (IA_NA) the Reply bound or extended.
    pub addresses: Vec<Ipv6Addr>,
    /// The addresses the client listed that the Reply did not keep (returned with lifetimes 0:
    /// another server's, after a Rebind, RFC 6853 §4): their records go.
    pub stale: Vec<Ipv6Addr>,
    /// When, on the engine clock.
    pub at: u32,
}

/// Passes events on and notes the addresses bound or extended for one client (when `active`).
pub(crate) struct Collect<'a, S> {
    pub(crate) inner: &'a mut S,
    pub(crate) active: bool,
    pub(crate) addresses: Vec<Ipv6Addr>,
}

impl<'a, S: EventSink> Collect<'a, S> {
    pub(crate) fn new(inner: &'a mut S, active: bool) -> Self {
        Self {
            inner,
            active,
            addresses: Vec::new(),
        }
    }
}

impl<S: EventSink> EventSink for Collect<'_, S> {
    fn emit(&mut self, event: LeaseEvent) {
        if self.active
            && matches!(event.kind, EventKind::Bound | EventKind::Renewed)
            && event.record.lease.kind == IaKind::Na
            && event.record.lease.lifetimes.valid > 0
        {
            let address = event.record.lease.ip();
            if !self.addresses.contains(&address) {
                self.addresses.push(address);
            }
        }
        self.inner.emit(event);
    }

    /// What this sink reads of an event is its kind and lease: the inner sink decides.
    fn wants_records(&self) -> bool {
        self.inner.wants_records()
    }

    /// Bindings and renewals while it notes addresses, and what the inner sink takes.
    fn wants(&self, kind: EventKind) -> bool {
        (self.active && matches!(kind, EventKind::Bound | EventKind::Renewed))
            || self.inner.wants(kind)
    }

    fn name(&mut self, binding: NameBinding) {
        self.inner.name(binding);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> DdnsSettings {
        DdnsSettings {
            forward_zone: "example.net.".into(),
            reverse_zone: "8.b.d.0.1.0.0.2.ip6.arpa.".into(),
            servers: vec!["[2001:db8::53]:53".parse().unwrap()],
            tsig_key_file: None,
            ttl: 300,
            qualifying_suffix: "dyn.example.net.".into(),
            generated_name: GeneratedName::Address,
            generated_prefix: "dhcp".into(),
            override_client_update: false,
            override_no_update: false,
            identical_peers: false,
        }
    }

    fn wire(labels: &[&[u8]], root: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for label in labels {
            out.push(label.len() as u8);
            out.extend_from_slice(label);
        }
        if root {
            out.push(0);
        }
        out
    }

    #[test]
    fn flags_follow_the_policy() {
        let mut p = policy();
        // S = 1: the server updates both.
        assert_eq!(
            decide(FLAG_S, &p),
            Decision {
                reply_flags: FLAG_S,
                forward: true,
                reverse: true
            }
        );
        // S = 0: the client updates AAAA, the server PTR.
        assert_eq!(
            decide(0, &p),
            Decision {
                reply_flags: 0,
                forward: false,
                reverse: true
            }
        );
        // N = 1: nobody.
        assert_eq!(
            decide(FLAG_N, &p),
            Decision {
                reply_flags: FLAG_N,
                forward: false,
                reverse: false
            }
        );
        p.override_client_update = true;
        assert_eq!(decide(0, &p).reply_flags, FLAG_S | FLAG_O);
        assert!(decide(0, &p).forward);
        assert_eq!(decide(FLAG_N, &p).reply_flags, FLAG_N);
        p.override_no_update = true;
        assert_eq!(decide(FLAG_N, &p).reply_flags, FLAG_S | FLAG_O);
        assert!(decide(FLAG_N, &p).forward && decide(FLAG_N, &p).reverse);
    }

    #[test]
    fn names_are_sanitised_and_qualified() {
        let p = policy();
        assert_eq!(
            sanitise(&wire(&[b"My_Host"], false), &p).as_deref(),
            Some("my-host.dyn.example.net.")
        );
        assert_eq!(
            sanitise(&wire(&[b"pc", b"example", b"net"], true), &p).as_deref(),
            Some("pc.example.net.")
        );
        // Outside the zone: first label under the suffix.
        assert_eq!(
            sanitise(&wire(&[b"pc", b"evil", b"org"], true), &p).as_deref(),
            Some("pc.dyn.example.net.")
        );
        // The zone apex itself is not a client's.
        assert_eq!(
            sanitise(&wire(&[b"example", b"net"], true), &p).as_deref(),
            Some("example.dyn.example.net.")
        );
        assert_eq!(sanitise(&wire(&[b"--", b"..."], false), &p), None);
        assert_eq!(sanitise(&[], &p), None);
        assert_eq!(sanitise(&[0], &p), None);
        // A label that claims more bytes than there are.
        assert_eq!(sanitise(&[9, b'a'], &p), None);
    }

    #[test]
    fn generated_names() {
        let mut p = policy();
        assert_eq!(
            generated(&p, &[0, 3, 0, 1], Some("2001:db8::1a".parse().unwrap())).as_deref(),
            Some("dhcp-2001-db8-0-0-0-0-0-1a.dyn.example.net.")
        );
        p.generated_name = GeneratedName::Duid;
        assert_eq!(
            generated(&p, &[0, 3, 0, 1, 0xaa], None).as_deref(),
            Some("dhcp-00030001aa.dyn.example.net.")
        );
        let long = generated(&p, &[0xff; 130], None).unwrap();
        assert!(long.split('.').next().unwrap().len() <= MAX_LABEL);
        p.generated_name = GeneratedName::None;
        assert_eq!(generated(&p, &[1], None), None);
    }

    #[test]
    fn zones() {
        assert!(in_zone("a.example.net.", "example.net."));
        assert!(!in_zone("aexample.net.", "example.net."));
        assert!(in_zone("example.net.", "example.net."));
    }
}
