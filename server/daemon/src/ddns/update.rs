//! The DNS UPDATE messages (RFC 2136) of the RFC 4703 procedures, built with hickory-proto,
//! and the DHCID of a client (RFC 4701).
//!
//! Forward (AAAA) records are guarded by the DHCID record at the same name: a name is taken
//! only when it is free, and changed or removed only by the client whose DHCID it holds, so a
//! server never touches another client's name and two servers of an RFC 6853 set that serve
//! the same client agree on who owns it.

use std::net::Ipv6Addr;

use hickory_proto::op::{Message, MessageType, OpCode, Query, UpdateMessage};
use hickory_proto::rr::rdata::{AAAA, NULL, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use ring::digest;

/// The DHCID resource record type (RFC 4701 §2).
pub const DHCID_TYPE: u16 = 49;
/// Identifier type of a DHCID made from a DUID (RFC 4701 §3.3).
const DHCID_IDENTIFIER_DUID: u16 = 0x0002;
/// Digest type SHA-256 (RFC 4701 §3.4).
const DHCID_DIGEST_SHA256: u8 = 1;

/// The DHCID RDATA of a client: identifier type 0x0002 (DUID), digest type 1, then
/// SHA-256 of the DUID followed by the name in canonical wire format (RFC 4701 §3.3, §3.5).
pub fn dhcid(duid: &[u8], name: &str) -> Vec<u8> {
    let mut input = Vec::with_capacity(duid.len() + name.len() + 2);
    input.extend_from_slice(duid);
    input.extend_from_slice(&canonical_wire(name));
    let mut rdata = Vec::with_capacity(35);
    rdata.extend_from_slice(&DHCID_IDENTIFIER_DUID.to_be_bytes());
    rdata.push(DHCID_DIGEST_SHA256);
    rdata.extend_from_slice(digest::digest(&digest::SHA256, &input).as_ref());
    rdata
}

/// `name` (dotted, absolute or not) in DNS wire format, lower case, root label included
/// (RFC 4034 §6.2's canonical form, which RFC 4701 §3.5 asks for).
fn canonical_wire(name: &str) -> Vec<u8> {
    let mut wire = Vec::with_capacity(name.len() + 2);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() {
            continue;
        }
        let bytes = label.as_bytes();
        wire.push(bytes.len().min(63) as u8);
        wire.extend(bytes.iter().take(63).map(u8::to_ascii_lowercase));
    }
    wire.push(0);
    wire
}

/// The records one update is about.
#[derive(Clone, Debug)]
pub struct Forward<'a> {
    /// The zone (`forward-zone`).
    pub zone: &'a Name,
    /// The client's name.
    pub name: &'a Name,
    /// The client's DHCID RDATA ([`dhcid`]).
    pub dhcid: &'a [u8],
    /// TTL of what is added.
    pub ttl: u32,
}

impl Forward<'_> {
    fn dhcid_record(&self, ttl: u32) -> Record {
        Record::from_rdata(
            self.name.clone(),
            ttl,
            RData::Unknown {
                code: RecordType::from(DHCID_TYPE),
                rdata: NULL::with(self.dhcid.to_vec()),
            },
        )
    }

    fn aaaa(&self, address: Ipv6Addr, ttl: u32) -> Record {
        Record::from_rdata(self.name.clone(), ttl, RData::AAAA(AAAA(address)))
    }

    /// RFC 4703 §5.3.1: the name is not in use (prerequisite "name is not in use", RFC 2136
    /// §2.4.5); add the AAAA records and the DHCID.
    pub fn add(&self, addresses: &[Ipv6Addr]) -> Message {
        let mut message = update(self.zone);
        message.add_pre_requisite(class(
            Record::update0(self.name.clone(), 0, RecordType::ANY),
            DNSClass::NONE,
        ));
        for &address in addresses {
            message.add_update(self.aaaa(address, self.ttl));
        }
        message.add_update(self.dhcid_record(self.ttl));
        message
    }

    /// RFC 4703 §5.3.2: the name holds this client's DHCID (prerequisite "RRset exists, value
    /// dependent", RFC 2136 §2.4.2); replace the AAAA RRset with `addresses`.
    pub fn replace(&self, addresses: &[Ipv6Addr]) -> Message {
        let mut message = update(self.zone);
        message.add_pre_requisite(self.dhcid_record(0));
        message.add_update(class(
            Record::update0(self.name.clone(), 0, RecordType::AAAA),
            DNSClass::ANY,
        ));
        for &address in addresses {
            message.add_update(self.aaaa(address, self.ttl));
        }
        message
    }

    /// RFC 4703 §5.5, first update: the name holds this client's DHCID; delete the AAAA
    /// record of `address` (RFC 2136 §2.5.4).
    pub fn remove(&self, address: Ipv6Addr) -> Message {
        let mut message = update(self.zone);
        message.add_pre_requisite(self.dhcid_record(0));
        message.add_update(class(self.aaaa(address, 0), DNSClass::NONE));
        message
    }

    /// RFC 4703 §5.5, second update: the name holds this client's DHCID and no AAAA record
    /// (prerequisite "RRset does not exist", RFC 2136 §2.4.3); delete the DHCID.
    pub fn release_name(&self) -> Message {
        let mut message = update(self.zone);
        message.add_pre_requisite(self.dhcid_record(0));
        message.add_pre_requisite(class(
            Record::update0(self.name.clone(), 0, RecordType::AAAA),
            DNSClass::NONE,
        ));
        message.add_update(class(
            Record::update0(self.name.clone(), 0, RecordType::from(DHCID_TYPE)),
            DNSClass::ANY,
        ));
        message
    }
}

/// RFC 4703 §5.4: the PTR RRset of `reverse` becomes `name` alone.
pub fn replace_ptr(zone: &Name, reverse: &Name, name: &Name, ttl: u32) -> Message {
    let mut message = update(zone);
    message.add_update(class(
        Record::update0(reverse.clone(), 0, RecordType::PTR),
        DNSClass::ANY,
    ));
    message.add_update(Record::from_rdata(
        reverse.clone(),
        ttl,
        RData::PTR(PTR(name.clone())),
    ));
    message
}

/// The PTR RRset of `reverse` goes, if it is `name` alone (prerequisite "RRset exists, value
/// dependent", RFC 2136 §2.4.2): an address the client no longer holds, whose PTR nobody else
/// has rewritten since.
pub fn remove_ptr(zone: &Name, reverse: &Name, name: &Name) -> Message {
    let mut message = update(zone);
    message.add_pre_requisite(Record::from_rdata(
        reverse.clone(),
        0,
        RData::PTR(PTR(name.clone())),
    ));
    message.add_update(class(
        Record::update0(reverse.clone(), 0, RecordType::PTR),
        DNSClass::ANY,
    ));
    message
}

/// An UPDATE for `zone` (its zone section: the zone's SOA, class IN, RFC 2136 §2.3).
fn update(zone: &Name) -> Message {
    let mut message = Message::new(rand_id(), MessageType::Query, OpCode::Update);
    let mut query = Query::new();
    query
        .set_name(zone.clone())
        .set_query_class(DNSClass::IN)
        .set_query_type(RecordType::SOA);
    message.add_zone(query);
    message
}

fn class(mut record: Record, class: DNSClass) -> Record {
    record.dns_class = class;
    record
}

/// A message id that an off-path sender cannot guess.
fn rand_id() -> u16 {
    let mut bytes = [0u8; 2];
    // A failure of the system's randomness leaves 0: TSIG still authenticates the reply.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    u16::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::TSigner;
    use hickory_proto::rr::rdata::tsig::TsigAlgorithm;

    use super::*;

    #[test]
    fn dhcid_matches_rfc_4701() {
        // RFC 4701 §3.6.1: DUID 00:01:00:06:41:2d:f1:66:01:02:03:04:05:06 and the name
        // chi6.example.com give AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA=.
        let duid = [
            0x00, 0x01, 0x00, 0x06, 0x41, 0x2d, 0xf1, 0x66, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
        ];
        let rdata = dhcid(&duid, "chi6.example.com");
        assert_eq!(
            data_encoding::BASE64.encode(&rdata),
            "AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA="
        );
        // Case does not matter; the final dot does not either.
        assert_eq!(rdata, dhcid(&duid, "CHI6.Example.COM."));
        assert_ne!(rdata, dhcid(&duid, "chi7.example.com"));
    }

    fn names() -> (Name, Name) {
        (
            Name::from_ascii("example.net.").unwrap(),
            Name::from_ascii("pc.example.net.").unwrap(),
        )
    }

    #[test]
    fn add_requires_a_free_name() {
        let (zone, name) = names();
        let dhcid = dhcid(&[0, 3, 0, 1, 1, 2, 3, 4, 5, 6], "pc.example.net.");
        let forward = Forward {
            zone: &zone,
            name: &name,
            dhcid: &dhcid,
            ttl: 300,
        };
        let message = forward.add(&["2001:db8::1".parse().unwrap()]);
        let bytes = message.to_vec().unwrap();
        let parsed = Message::from_vec(&bytes).unwrap();
        assert_eq!(parsed.metadata.op_code, OpCode::Update);
        // Zone section.
        assert_eq!(parsed.queries.len(), 1);
        assert_eq!(parsed.queries[0].query_type(), RecordType::SOA);
        assert_eq!(parsed.queries[0].name(), &zone);
        // Prerequisite: NONE ANY at the name.
        assert_eq!(parsed.answers.len(), 1);
        assert_eq!(parsed.answers[0].dns_class, DNSClass::NONE);
        assert_eq!(parsed.answers[0].record_type(), RecordType::ANY);
        // Updates: the AAAA and the DHCID.
        let types: Vec<RecordType> = parsed.authorities.iter().map(|r| r.record_type()).collect();
        assert_eq!(types, [RecordType::AAAA, RecordType::from(DHCID_TYPE)]);
        assert!(parsed.authorities.iter().all(|r| r.ttl == 300));
    }

    #[test]
    fn replace_requires_the_dhcid_and_swaps_the_aaaa_rrset() {
        let (zone, name) = names();
        let dhcid = dhcid(&[0, 3, 0, 1, 1, 2, 3, 4, 5, 6], "pc.example.net.");
        let forward = Forward {
            zone: &zone,
            name: &name,
            dhcid: &dhcid,
            ttl: 300,
        };
        let message = forward.replace(&["2001:db8::2".parse().unwrap()]);
        let parsed = Message::from_vec(&message.to_vec().unwrap()).unwrap();
        assert_eq!(parsed.answers.len(), 1);
        let prerequisite = &parsed.answers[0];
        assert_eq!(prerequisite.dns_class, DNSClass::IN);
        assert_eq!(prerequisite.record_type(), RecordType::from(DHCID_TYPE));
        assert_eq!(prerequisite.ttl, 0);
        let update = &parsed.authorities;
        assert_eq!(update.len(), 2);
        assert_eq!(update[0].dns_class, DNSClass::ANY);
        assert_eq!(update[0].record_type(), RecordType::AAAA);
        assert_eq!(
            update[1].data,
            RData::AAAA(AAAA("2001:db8::2".parse().unwrap()))
        );

        let release = Message::from_vec(&forward.release_name().to_vec().unwrap()).unwrap();
        assert_eq!(release.answers.len(), 2);
        assert_eq!(release.answers[1].dns_class, DNSClass::NONE);
        assert_eq!(release.answers[1].record_type(), RecordType::AAAA);
    }

    #[test]
    fn ptr_removal_is_value_dependent() {
        let zone = Name::from_ascii("8.b.d.0.1.0.0.2.ip6.arpa.").unwrap();
        let (_, name) = names();
        let reverse = Name::from_ascii(xdhcp6_engine::config::reverse_name(
            "2001:db8::1".parse().unwrap(),
        ))
        .unwrap();
        let parsed =
            Message::from_vec(&remove_ptr(&zone, &reverse, &name).to_vec().unwrap()).unwrap();
        assert_eq!(parsed.answers[0].data, RData::PTR(PTR(name.clone())));
        assert_eq!(parsed.authorities[0].dns_class, DNSClass::ANY);
        let parsed =
            Message::from_vec(&replace_ptr(&zone, &reverse, &name, 60).to_vec().unwrap()).unwrap();
        assert!(parsed.answers.is_empty());
        assert_eq!(parsed.authorities.len(), 2);
    }

    #[test]
    fn updates_are_signed() {
        let (zone, name) = names();
        let signer = TSigner::new(
            b"secret-secret-secret".to_vec(),
            TsigAlgorithm::HmacSha256,
            Name::from_ascii("xdhcp6-ddns").unwrap(),
            300,
        )
        .unwrap();
        let mut message = replace_ptr(&zone, &name, &name, 60);
        message.finalize(&signer, 1_700_000_000).unwrap();
        let parsed = Message::from_vec(&message.to_vec().unwrap()).unwrap();
        let signature = parsed.signature.as_ref().expect("a TSIG record");
        assert_eq!(signature.name, Name::from_ascii("xdhcp6-ddns.").unwrap());
    }
}
