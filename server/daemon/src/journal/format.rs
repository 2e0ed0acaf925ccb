//! The journal's bytes: the file header and the framed, checksummed records, encoded and
//! decoded without any IO (and fuzzed as such).
//!
//! # File format (little endian)
//!
//! ```text
//! header : magic "XD6JRNL\0" (8) | version u32 | reserved u32 (0)
//! record : len u32 | crc u32 (CRC-32/IEEE of the len bytes then the payload) | payload (len)
//! payload, version 4:
//!          the version-3 payload | flags u8 (bit 0: the client accepts Reconfigure)
//! payload, version 3:
//!          the version-2 payload | relay data len u16 | relay data (0: none)
//! payload, version 2:
//!          event u8 | at u32 | ia kind u8 | state u8 | prefix_len u8 | iaid u32 | addr u128
//!          | preferred u32 | valid u32 | expires u32 | duid len u16 | duid bytes
//!          | link tag u8 | tag 1: name len u16, name (UTF-8) ; tag 0: position u16
//! payload, version 1:
//!          event u8 | at u32 | ia kind u8 | state u8 | prefix_len u8 | link position u16
//!          | iaid u32 | addr u128 | preferred u32 | valid u32 | expires u32 | duid len u16
//!          | duid bytes
//! ```
//!
//! Version 2 names the link by its `[[link]]` name, so that reordering the configuration
//! cannot move a lease to another link. Version 1 recorded the link's position in the
//! configuration; such records decode to [`Link::Position`], and version 2 writes a position
//! only for a lease whose link has no name (one replayed from a version-1 journal whose
//! position was not in the configuration).
//!
//! Version 3 adds the lease's relay data ([`RelayData::as_bytes`], at most
//! [`MAX_RELAY_DATA_LEN`] bytes, validated on decoding); version-2 records decode without it.
//! Its relay data may hold the relay agent's datagram source ([`RelayData::source`]), which
//! version-3 files, written before it was kept, never do.
//!
//! Version 4 adds a flags byte: whether the client accepts Reconfigure messages
//! ([`LeaseRecord::reconfigure`]); version-3 records decode with none set.

use std::borrow::Cow;

use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::table::{
    DuidBuf, EventKind, IaKind, Lease, LeaseRecord, LeaseState, Lifetimes, MAX_RELAY_DATA_LEN,
    RelayData,
};

/// The first eight bytes of every journal file.
pub const MAGIC: [u8; 8] = *b"XD6JRNL\0";

/// The format version this build writes.
pub const VERSION: u32 = 4;

/// The previous format version, with relay data but without flags: still read (and
/// rewritten as [`VERSION`] on open).
pub const VERSION_3: u32 = 3;

/// The previous format version, without relay data: still read (and rewritten as [`VERSION`]
/// on open).
pub const VERSION_2: u32 = 2;

/// The oldest format version this build still reads (and rewrites as [`VERSION`] on open).
pub const VERSION_1: u32 = 1;

/// Bytes of the file header: magic, version, reserved.
pub const HEADER_LEN: u64 = 16;

/// Bytes in front of every payload: length and checksum.
pub const FRAME_LEN: usize = 8;

/// Payload bytes of the lease, before the DUID, shared by both versions (version 1 adds the
/// link position in the middle).
const LEASE_LEN: usize = 1 + 4 + 1 + 1 + 1 + 4 + 16 + 4 + 4 + 4 + 2;

/// The longest DUID a record holds (RFC 9915 §11.1: a DUID is at most 128 octets after its
/// 2-octet type). A longer length field is damage, never a real record.
pub const MAX_DUID_LEN: usize = 130;

/// The longest link name a record holds; [`super::Journal::open`] refuses a configuration
/// with a longer one, so that a length field beyond it is known to be damage.
pub const MAX_LINK_NAME_LEN: usize = 255;

/// Link tag of a version-2 record: the link's position (a version-1 record's leftover).
const LINK_POSITION: u8 = 0;

/// Link tag of a version-2 record: the link's name.
const LINK_NAME: u8 = 1;

/// The link a record's lease is on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Link<'a> {
    /// The `[[link]]` name.
    Name(Cow<'a, str>),
    /// The position of the `[[link]]` block in the configuration the record was written with.
    Position(u16),
}

impl Link<'_> {
    /// The same link, owning its name.
    pub fn into_owned(self) -> Link<'static> {
        match self {
            Self::Name(name) => Link::Name(Cow::Owned(name.into_owned())),
            Self::Position(position) => Link::Position(position),
        }
    }
}

/// One decoded record: an event, when it happened, and the whole lease it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// What happened.
    pub kind: EventKind,
    /// When (engine clock, Unix seconds).
    pub at: u32,
    /// The lease's link.
    pub link: Link<'a>,
    /// The lease; its `lease.link` is the position of a [`Link::Position`], 0 with a name.
    pub record: LeaseRecord,
}

/// The header of a file of `version`.
pub fn header(version: u32) -> [u8; HEADER_LEN as usize] {
    let mut header = [0; HEADER_LEN as usize];
    header[..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&version.to_le_bytes());
    header
}

/// What a file header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    /// A journal of this version (maybe one this build does not read).
    Version(u32),
    /// Not a journal.
    Foreign,
}

/// Reads a complete header.
pub fn parse_header(bytes: &[u8; HEADER_LEN as usize]) -> Header {
    if bytes[..8] != MAGIC {
        return Header::Foreign;
    }
    Header::Version(u32::from_le_bytes([
        bytes[8], bytes[9], bytes[10], bytes[11],
    ]))
}

/// Whether `bytes`, shorter than a header, can be the start of a header this build writes or
/// reads (a file created but never fully written), or is all zeros.
pub fn is_header_start(bytes: &[u8]) -> bool {
    bytes.iter().all(|&byte| byte == 0)
        || [VERSION_1, VERSION_2, VERSION_3, VERSION]
            .iter()
            .any(|&version| header(version).starts_with(bytes))
}

/// Whether this build reads files of `version`.
pub fn is_readable(version: u32) -> bool {
    version == VERSION || version == VERSION_3 || version == VERSION_2 || version == VERSION_1
}

/// The shortest and the longest payload of a valid record of `version`: the longest holds a
/// DUID of [`MAX_DUID_LEN`] and a link name of [`MAX_LINK_NAME_LEN`], so that a damaged
/// length field is seen as damage rather than as a record running past the end of the file.
pub fn payload_bounds(version: u32) -> (usize, usize) {
    match version {
        VERSION_1 => (LEASE_LEN + 2, LEASE_LEN + 2 + MAX_DUID_LEN),
        VERSION_2 => (
            LEASE_LEN + 3,
            LEASE_LEN + 3 + MAX_DUID_LEN + MAX_LINK_NAME_LEN,
        ),
        VERSION_3 => (
            LEASE_LEN + 3 + 2,
            LEASE_LEN + 3 + MAX_DUID_LEN + MAX_LINK_NAME_LEN + 2 + MAX_RELAY_DATA_LEN,
        ),
        _ => (
            LEASE_LEN + 3 + 2 + 1,
            LEASE_LEN + 3 + MAX_DUID_LEN + MAX_LINK_NAME_LEN + 2 + MAX_RELAY_DATA_LEN + 1,
        ),
    }
}

/// The longest framed record of any version this build reads.
pub const MAX_RECORD_LEN: usize =
    FRAME_LEN + LEASE_LEN + 3 + MAX_DUID_LEN + MAX_LINK_NAME_LEN + 2 + MAX_RELAY_DATA_LEN + 1;

/// Flag of a version-4 record: the client accepts Reconfigure messages.
const FLAG_RECONFIGURE: u8 = 1;

/// Appends the framed version-4 record of one event to `out`. The lease's own `link` field is
/// not written: `link` is. A DUID longer than [`MAX_DUID_LEN`] or a link name longer than
/// [`MAX_LINK_NAME_LEN`] is cut (neither occurs: the engine takes no longer DUID, and the
/// journal refuses a configuration with a longer name).
pub fn encode(out: &mut Vec<u8>, kind: EventKind, at: u32, link: &Link<'_>, record: &LeaseRecord) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_LEN]);
    encode_v2_payload(out, kind, at, link, record);
    push_relay(out, record);
    out.push(if record.reconfigure {
        FLAG_RECONFIGURE
    } else {
        0
    });
    frame(out, start);
}

/// Appends the framed version-3 record of one event to `out`, without its flags (tests make
/// version-3 files).
pub fn encode_v3(
    out: &mut Vec<u8>,
    kind: EventKind,
    at: u32,
    link: &Link<'_>,
    record: &LeaseRecord,
) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_LEN]);
    encode_v2_payload(out, kind, at, link, record);
    push_relay(out, record);
    frame(out, start);
}

fn push_relay(out: &mut Vec<u8>, record: &LeaseRecord) {
    let relay = record.relay.as_ref().map_or(&[][..], RelayData::as_bytes);
    out.extend_from_slice(&(relay.len() as u16).to_le_bytes());
    out.extend_from_slice(relay);
}

/// Appends the framed version-2 record of one event to `out`, without its relay data (tests
/// make version-2 files).
pub fn encode_v2(
    out: &mut Vec<u8>,
    kind: EventKind,
    at: u32,
    link: &Link<'_>,
    record: &LeaseRecord,
) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_LEN]);
    encode_v2_payload(out, kind, at, link, record);
    frame(out, start);
}

fn encode_v2_payload(
    out: &mut Vec<u8>,
    kind: EventKind,
    at: u32,
    link: &Link<'_>,
    record: &LeaseRecord,
) {
    encode_lease(out, kind, at, record);
    match link {
        Link::Position(position) => {
            out.push(LINK_POSITION);
            out.extend_from_slice(&position.to_le_bytes());
        }
        Link::Name(name) => {
            out.push(LINK_NAME);
            let name = cut(name.as_bytes(), MAX_LINK_NAME_LEN);
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name);
        }
    }
}

/// Appends the framed version-1 record of one event to `out` (tests make version-1 files).
pub fn encode_v1(out: &mut Vec<u8>, kind: EventKind, at: u32, record: &LeaseRecord) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_LEN]);
    let lease = &record.lease;
    let duid = cut(record.duid.as_bytes(), MAX_DUID_LEN);
    push_head(out, kind, at, lease);
    out.extend_from_slice(&lease.link.0.to_le_bytes());
    push_body(out, lease, duid);
    frame(out, start);
}

/// The length of the record [`encode`] writes.
pub fn encoded_len(link: &Link<'_>, record: &LeaseRecord) -> u64 {
    let link = match link {
        Link::Position(_) => 3,
        Link::Name(name) => 3 + cut(name.as_bytes(), MAX_LINK_NAME_LEN).len(),
    };
    let relay = 2
        + record
            .relay
            .as_ref()
            .map_or(0, |relay| relay.as_bytes().len())
        + 1;
    (FRAME_LEN + LEASE_LEN + cut(record.duid.as_bytes(), MAX_DUID_LEN).len() + link + relay) as u64
}

/// The checksum of a record of payload `payload`.
pub fn checksum(len: u32, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// Reads the frame in front of a payload: (payload length, checksum).
pub fn parse_frame(bytes: &[u8; FRAME_LEN]) -> (u32, u32) {
    (
        u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
        u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
    )
}

/// Why [`decode_record`] found no record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// The bytes end inside the record: `needed` bytes from the record's start would hold it.
    Short {
        /// Bytes the record would take.
        needed: u64,
    },
    /// The length is out of bounds or the checksum does not match.
    Damaged,
    /// The checksum matches but the payload is not one of this version.
    Invalid,
}

/// Decodes the framed record at the start of `bytes` of a file of `version`; returns it and
/// its length.
pub fn decode_record(version: u32, bytes: &[u8]) -> Result<(Entry<'_>, usize), RecordError> {
    let Some(frame) = bytes.first_chunk::<FRAME_LEN>() else {
        return Err(RecordError::Short {
            needed: FRAME_LEN as u64,
        });
    };
    let (len, crc) = parse_frame(frame);
    let (min, max) = payload_bounds(version);
    if (len as usize) < min || len as usize > max {
        return Err(RecordError::Damaged);
    }
    let end = FRAME_LEN + len as usize;
    let Some(payload) = bytes.get(FRAME_LEN..end) else {
        return Err(RecordError::Short { needed: end as u64 });
    };
    if checksum(len, payload) != crc {
        return Err(RecordError::Damaged);
    }
    let entry = decode(version, payload).ok_or(RecordError::Invalid)?;
    Ok((entry, end))
}

/// Decodes a payload whose checksum matched; `None` if it is not a valid payload of `version`.
pub fn decode(version: u32, payload: &[u8]) -> Option<Entry<'_>> {
    let mut reader = Fields(payload);
    let kind = match reader.u8()? {
        0 => EventKind::Offered,
        1 => EventKind::Bound,
        2 => EventKind::Renewed,
        3 => EventKind::Released,
        4 => EventKind::Declined,
        5 => EventKind::Expired,
        6 => EventKind::ProbationEnded,
        _ => return None,
    };
    let at = reader.u32()?;
    let ia_kind = match reader.u8()? {
        0 => IaKind::Na,
        1 => IaKind::Pd,
        _ => return None,
    };
    let state = match reader.u8()? {
        0 => LeaseState::Offered,
        1 => LeaseState::Bound,
        2 => LeaseState::Declined,
        _ => return None,
    };
    let prefix_len = reader.u8()?;
    let position = if version == VERSION_1 {
        Some(u16::from_le_bytes(reader.array()?))
    } else {
        None
    };
    let iaid = reader.u32()?;
    let addr = u128::from_le_bytes(reader.array()?);
    let preferred = reader.u32()?;
    let valid = reader.u32()?;
    let expires = reader.u32()?;
    let duid_len = usize::from(u16::from_le_bytes(reader.array()?));
    if duid_len > MAX_DUID_LEN {
        return None;
    }
    let duid = reader.take(duid_len)?;
    let link = match position {
        Some(position) => Link::Position(position),
        None => match reader.u8()? {
            LINK_POSITION => Link::Position(u16::from_le_bytes(reader.array()?)),
            LINK_NAME => {
                let len = usize::from(u16::from_le_bytes(reader.array()?));
                if len > MAX_LINK_NAME_LEN {
                    return None;
                }
                let name = std::str::from_utf8(reader.take(len)?).ok()?;
                Link::Name(Cow::Borrowed(name))
            }
            _ => return None,
        },
    };
    let relay = if version >= VERSION_3 {
        let len = usize::from(u16::from_le_bytes(reader.array()?));
        match len {
            0 => None,
            len if len > MAX_RELAY_DATA_LEN => return None,
            len => Some(RelayData::from_bytes(reader.take(len)?)?),
        }
    } else {
        None
    };
    let reconfigure = if version >= VERSION {
        match reader.u8()? {
            0 => false,
            FLAG_RECONFIGURE => true,
            _ => return None,
        }
    } else {
        false
    };
    if !reader.0.is_empty() || prefix_len > 128 {
        return None;
    }
    let record = LeaseRecord {
        duid: DuidBuf::new(duid),
        lease: Lease {
            addr,
            prefix_len,
            kind: ia_kind,
            iaid,
            link: match link {
                Link::Position(position) => LinkId(position),
                Link::Name(_) => LinkId(0),
            },
            state,
            lifetimes: Lifetimes { preferred, valid },
            expires,
        },
        relay,
        reconfigure,
    };
    Some(Entry {
        kind,
        at,
        link,
        record,
    })
}

/// The first `max` bytes of `bytes`.
fn cut(bytes: &[u8], max: usize) -> &[u8] {
    bytes.get(..max).unwrap_or(bytes)
}

/// Event, time and the lease's kind, state and prefix length.
fn push_head(out: &mut Vec<u8>, kind: EventKind, at: u32, lease: &Lease) {
    out.push(event_code(kind));
    out.extend_from_slice(&at.to_le_bytes());
    out.push(match lease.kind {
        IaKind::Na => 0,
        IaKind::Pd => 1,
    });
    out.push(match lease.state {
        LeaseState::Offered => 0,
        LeaseState::Bound => 1,
        LeaseState::Declined => 2,
    });
    out.push(lease.prefix_len);
}

/// IAID, address, lifetimes, expiry and the DUID.
fn push_body(out: &mut Vec<u8>, lease: &Lease, duid: &[u8]) {
    out.extend_from_slice(&lease.iaid.to_le_bytes());
    out.extend_from_slice(&lease.addr.to_le_bytes());
    out.extend_from_slice(&lease.lifetimes.preferred.to_le_bytes());
    out.extend_from_slice(&lease.lifetimes.valid.to_le_bytes());
    out.extend_from_slice(&lease.expires.to_le_bytes());
    out.extend_from_slice(&(duid.len() as u16).to_le_bytes());
    out.extend_from_slice(duid);
}

fn encode_lease(out: &mut Vec<u8>, kind: EventKind, at: u32, record: &LeaseRecord) {
    push_head(out, kind, at, &record.lease);
    push_body(
        out,
        &record.lease,
        cut(record.duid.as_bytes(), MAX_DUID_LEN),
    );
}

/// Fills in the length and checksum of the record starting at `start`.
fn frame(out: &mut [u8], start: usize) {
    let len = (out.len() - start - FRAME_LEN) as u32;
    let crc = checksum(len, &out[start + FRAME_LEN..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + FRAME_LEN].copy_from_slice(&crc.to_le_bytes());
}

fn event_code(kind: EventKind) -> u8 {
    match kind {
        EventKind::Offered => 0,
        EventKind::Bound => 1,
        EventKind::Renewed => 2,
        EventKind::Released => 3,
        EventKind::Declined => 4,
        EventKind::Expired => 5,
        EventKind::ProbationEnded => 6,
    }
}

/// A cursor over a payload.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(duid: &[u8], addr: u128) -> LeaseRecord {
        LeaseRecord {
            duid: DuidBuf::new(duid),
            lease: Lease {
                addr,
                prefix_len: 128,
                kind: IaKind::Na,
                iaid: 7,
                link: LinkId(0),
                state: LeaseState::Bound,
                lifetimes: Lifetimes {
                    preferred: 100,
                    valid: 200,
                },
                expires: 1234,
            },
            relay: None,
            reconfigure: false,
        }
    }

    #[test]
    fn payload_round_trips_and_rejects_junk() {
        let original = record(&[1, 2, 3, 4], 0x2001_0db8 << 96 | 5);
        let link = Link::Name("access-1".into());
        let mut out = Vec::new();
        encode(&mut out, EventKind::Renewed, 99, &link, &original);
        assert_eq!(out.len() as u64, encoded_len(&link, &original));
        let (len, crc) = parse_frame(out.first_chunk().unwrap());
        assert_eq!(checksum(len, &out[8..]), crc);
        let entry = Entry {
            kind: EventKind::Renewed,
            at: 99,
            link: link.clone(),
            record: original.clone(),
        };
        assert_eq!(decode(VERSION, &out[8..]), Some(entry.clone()));
        assert_eq!(decode_record(VERSION, &out), Ok((entry, out.len())));
        assert_eq!(decode(VERSION, &out[8..out.len() - 1]), None);
        assert_eq!(
            decode_record(VERSION, &out[..out.len() - 1]),
            Err(RecordError::Short {
                needed: out.len() as u64
            })
        );
        let mut bad = out[8..].to_vec();
        bad[0] = 42;
        assert_eq!(decode(VERSION, &bad), None);
        let mut flipped = out.clone();
        flipped[20] ^= 1;
        assert_eq!(decode_record(VERSION, &flipped), Err(RecordError::Damaged));
    }

    #[test]
    fn version_1_records_carry_the_position() {
        let mut original = record(b"client", 5);
        original.lease.link = LinkId(3);
        let mut out = Vec::new();
        encode_v1(&mut out, EventKind::Bound, 1, &original);
        let (entry, used) = decode_record(VERSION_1, &out).unwrap();
        assert_eq!(used, out.len());
        assert_eq!(entry.link, Link::Position(3));
        assert_eq!(entry.record, original);
        // Read as the other version, the same bytes are not a record.
        assert!(decode_record(VERSION, &out).is_err());
    }

    #[test]
    fn a_position_survives_version_2() {
        let mut original = record(b"client", 5);
        original.lease.link = LinkId(9);
        let mut out = Vec::new();
        encode(
            &mut out,
            EventKind::Declined,
            1,
            &Link::Position(9),
            &original,
        );
        let (entry, _) = decode_record(VERSION, &out).unwrap();
        assert_eq!(entry.link, Link::Position(9));
        assert_eq!(entry.record, original);
    }

    /// One cable relay's data: Interface-Id and Relay-ID, then Remote-ID, then the Client
    /// Link-Layer Address (the canonical order).
    fn relay_data() -> RelayData {
        let option = |code: u16, body: &[u8]| {
            let mut out = code.to_be_bytes().to_vec();
            out.extend_from_slice(&(body.len() as u16).to_be_bytes());
            out.extend_from_slice(body);
            out
        };
        let mut options = option(18, b"cable-1/0");
        options.extend(option(53, &[0, 3, 0, 1, 10, 11, 12, 13, 14, 15]));
        options.extend(option(37, &[0, 0, 0x11, 0x8b, 1, 2, 3, 4, 5, 6]));
        options.extend(option(79, &[0, 1, 1, 2, 3, 4, 5, 6]));
        let mut bytes = vec![1, 0];
        bytes.extend_from_slice(
            &"2001:db8:1::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        bytes.extend_from_slice(&"fe80::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
        bytes.extend_from_slice(&(options.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&options);
        RelayData::from_bytes(&bytes).expect("canonical relay data")
    }

    #[test]
    fn version_3_records_carry_relay_data() {
        let mut original = record(b"relayed client", 9);
        original.relay = Some(relay_data());
        let link = Link::Name("cable".into());
        let mut out = Vec::new();
        encode(&mut out, EventKind::Bound, 5, &link, &original);
        assert_eq!(out.len() as u64, encoded_len(&link, &original));
        let (entry, used) = decode_record(VERSION, &out).unwrap();
        assert_eq!(used, out.len());
        assert_eq!(entry.record, original);
        assert_eq!(
            entry.record.relay.as_ref().and_then(RelayData::remote_id),
            Some(&[0, 0, 0x11, 0x8b, 1, 2, 3, 4, 5, 6][..])
        );
        // Relay data that is not in canonical form is damage: the Remote-ID moved in front
        // of the Interface-Id.
        let bytes = original.relay.as_ref().unwrap().as_bytes();
        let start = out.len() - 1 - bytes.len();
        let mut swapped = out[FRAME_LEN..].to_vec();
        let opts = start - FRAME_LEN + 1 + 1 + 32 + 2;
        let (interface_id, rest) = swapped[opts..].split_at(13);
        let (relay_id, rest) = rest.split_at(14);
        let (remote_id, rest) = rest.split_at(14);
        let moved = [remote_id, interface_id, relay_id, rest].concat();
        swapped.truncate(opts);
        swapped.extend_from_slice(&moved);
        assert_eq!(decode(VERSION, &swapped), None);
    }

    #[test]
    fn version_4_records_carry_the_reconfigure_flag_and_the_relays_source() {
        let mut original = record(b"cable router", 12);
        let relay = relay_data();
        // The relay agent's source in front of the hops (first byte 0x80 | hops).
        let mut bytes = vec![relay.as_bytes()[0] | 0x80];
        bytes.extend_from_slice(
            &"2001:db8:ff::7"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        bytes.extend_from_slice(&relay.as_bytes()[1..]);
        original.relay = Some(RelayData::from_bytes(&bytes).expect("relay data with a source"));
        original.reconfigure = true;
        let link = Link::Name("cable".into());
        let mut out = Vec::new();
        encode(&mut out, EventKind::Renewed, 5, &link, &original);
        assert_eq!(out.len() as u64, encoded_len(&link, &original));
        let (entry, used) = decode_record(VERSION, &out).unwrap();
        assert_eq!(used, out.len());
        assert_eq!(entry.record, original);
        assert_eq!(
            entry.record.relay.unwrap().source(),
            Some("2001:db8:ff::7".parse().unwrap())
        );
        // Unknown flags are damage.
        let mut flags = out[FRAME_LEN..].to_vec();
        *flags.last_mut().unwrap() = 2;
        assert_eq!(decode(VERSION, &flags), None);
        // A version-3 record (no flags byte) reads with no flag set; it is not one of
        // version 4, nor is a version-4 record one of version 3.
        let mut v3 = Vec::new();
        encode_v3(&mut v3, EventKind::Renewed, 5, &link, &original);
        let (entry, used) = decode_record(VERSION_3, &v3).unwrap();
        assert_eq!(used, v3.len());
        assert!(!entry.record.reconfigure);
        assert_eq!(entry.record.relay, original.relay);
        assert!(decode_record(VERSION, &v3).is_err());
        assert!(decode_record(VERSION_3, &out).is_err());
        assert!(is_readable(VERSION_3) && is_header_start(&header(VERSION_3)[..12]));
    }

    #[test]
    fn version_2_records_still_decode_without_relay_data() {
        let mut original = record(b"old client", 11);
        let link = Link::Name("access-1".into());
        let mut out = Vec::new();
        original.relay = Some(relay_data());
        encode_v2(&mut out, EventKind::Renewed, 7, &link, &original);
        let (entry, used) = decode_record(VERSION_2, &out).unwrap();
        assert_eq!(used, out.len());
        original.relay = None;
        assert_eq!(entry.record, original);
        assert_eq!(entry.link, link);
        // A version-2 record is not one of version 3 (its relay length is missing).
        assert!(decode_record(VERSION, &out).is_err());
        assert!(is_readable(VERSION_2) && is_header_start(&header(VERSION_2)[..12]));
    }

    #[test]
    fn headers_are_recognised() {
        assert_eq!(parse_header(&header(VERSION)), Header::Version(VERSION));
        assert_eq!(parse_header(&[1; 16]), Header::Foreign);
        assert!(is_header_start(&header(VERSION)[..10]));
        assert!(is_header_start(&header(VERSION_1)[..12]));
        assert!(is_header_start(&[0; 5]));
        assert!(!is_header_start(b"XD6J!"));
    }
}
