//! Reading a journal back: the live leases after every good event, and where the file ends
//! (torn or corrupt).
//!
//! Events apply in file order: Bound, Renewed and Declined upsert the lease keyed by
//! (DUID, IAID, IA kind, link, address); Released, Expired and ProbationEnded remove it. A
//! record cut short by a crash at the end of the file (or followed only by zeros, as a file
//! extended by a write that never reached the disk reads back) is torn: it is ignored and cut
//! off on open. A bad record followed by real data is corruption: replay stops there and says
//! so in [`Replay::corrupt`].
//!
//! # Links
//!
//! A version-2 record names its link; the name is looked up in the configuration that is
//! loaded ([`LinkNames`]). A version-1 record has only the link's position in the
//! configuration it was written with, and is read against the configuration that is loaded:
//! a version-1 journal must be replayed once with the configuration it was written with, after
//! which [`super::Journal::open`] has rewritten it as version 2 with names. A record whose link
//! is not in the configuration (a name that is gone, a version-1 position past the last link,
//! or a position kept in a version-2 file) is [`Unplaced`]: it is not served, but it is kept,
//! reported, and written again by every compaction, so that putting the link back restores
//! its leases.

use std::collections::HashSet;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{self, BufReader, Read};
use std::path::Path;

use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::table::{EventKind, LeaseRecord};

use super::format::{self, FRAME_LEN, HEADER_LEN, Header, Link, VERSION_1};
use super::{JournalError, LinkNames};

/// What a journal replayed to: the live leases, and what was skipped.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Replay {
    /// The leases live after every good event, bound or declined, on a link of the
    /// configuration (`lease.link` is its id there), in no particular order.
    pub records: Vec<LeaseRecord>,
    /// The live leases whose link is not in the configuration: kept in the journal, not served.
    pub unplaced: Vec<Unplaced>,
    /// Good records read.
    pub events: u64,
    /// The format version of the file replayed; `None` when there was none (or only the start
    /// of a header).
    pub version: Option<u32>,
    /// Bytes of a torn last record (cut off on open).
    pub torn_bytes: u64,
    /// Whether a damaged record with data after it stopped the replay.
    pub corrupt: bool,
    /// Where the damaged record starts (file offset), when `corrupt`.
    pub corrupt_offset: Option<u64>,
    /// Bytes from the damaged record to the end of the file, not replayed.
    pub skipped_bytes: u64,
    /// Bytes of the good part of the file, header included.
    pub valid_bytes: u64,
}

/// A live lease whose link is not in the configuration.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Unplaced {
    /// The link as the journal names it.
    pub link: Link<'static>,
    /// The lease; its `lease.link` means nothing here (see [`format::Entry`]).
    pub record: LeaseRecord,
}

/// Reads a journal without changing it (for `xdhcp6d leases`), placing its leases on the
/// links of `links`.
pub fn read_journal(path: &Path, links: &LinkNames) -> Result<Replay, JournalError> {
    scan(path, links)
}

/// Where a lease is: on a configured link (by id), or on one the configuration lacks.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Place {
    Placed(LinkId),
    Unplaced(Link<'static>),
}

/// A lease compared and hashed by its key alone: (DUID, IAID, kind, link, address).
struct Keyed {
    place: Place,
    record: LeaseRecord,
}

impl PartialEq for Keyed {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.record.lease, &other.record.lease);
        a.addr == b.addr
            && a.kind == b.kind
            && a.iaid == b.iaid
            && self.place == other.place
            && self.record.duid == other.record.duid
    }
}

impl Eq for Keyed {}

impl Hash for Keyed {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let lease = &self.record.lease;
        lease.addr.hash(state);
        lease.kind.hash(state);
        lease.iaid.hash(state);
        self.place.hash(state);
        self.record.duid.as_bytes().hash(state);
    }
}

/// The live set while replaying.
#[derive(Default)]
struct Live(HashSet<Keyed>);

impl Live {
    fn apply(&mut self, version: u32, links: &LinkNames, entry: format::Entry<'_>) {
        let format::Entry {
            kind,
            link,
            mut record,
            ..
        } = entry;
        let place = match links.place(version, &link) {
            Some(id) => {
                record.lease.link = id;
                Place::Placed(id)
            }
            None => Place::Unplaced(link.into_owned()),
        };
        let keyed = Keyed { place, record };
        match kind {
            EventKind::Offered => {}
            EventKind::Bound | EventKind::Renewed | EventKind::Declined => {
                self.0.replace(keyed);
            }
            EventKind::Released | EventKind::Expired | EventKind::ProbationEnded => {
                self.0.remove(&keyed);
            }
        }
    }

    fn finish(self, replay: &mut Replay) {
        for keyed in self.0 {
            match keyed.place {
                Place::Placed(_) => replay.records.push(keyed.record),
                Place::Unplaced(link) => replay.unplaced.push(Unplaced {
                    link,
                    record: keyed.record,
                }),
            }
        }
    }
}

/// Reads the journal at `path` and replays it, changing nothing.
pub(super) fn scan(path: &Path, links: &LinkNames) -> Result<Replay, JournalError> {
    let file = File::open(path).map_err(JournalError::io(path))?;
    let file_len = file.metadata().map_err(JournalError::io(path))?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut replay = Replay::default();

    let mut header = [0; HEADER_LEN as usize];
    let got = read_full(&mut reader, &mut header).map_err(JournalError::io(path))?;
    if got < header.len() {
        // Created but never fully written: empty, if what is there is a header's beginning.
        if !format::is_header_start(&header[..got]) {
            return Err(JournalError::NotAJournal {
                path: path.to_owned(),
            });
        }
        replay.torn_bytes = got as u64;
        return Ok(replay);
    }
    let version = match format::parse_header(&header) {
        Header::Foreign => {
            return Err(JournalError::NotAJournal {
                path: path.to_owned(),
            });
        }
        Header::Version(version) if !format::is_readable(version) => {
            return Err(JournalError::Version {
                path: path.to_owned(),
                version,
            });
        }
        Header::Version(version) => version,
    };
    replay.version = Some(version);

    let mut live = Live::default();
    let mut pos = HEADER_LEN;
    let mut record = Vec::new();
    loop {
        let remaining = file_len - pos;
        if remaining == 0 {
            break;
        }
        let mut frame = [0; FRAME_LEN];
        let got = read_full(&mut reader, &mut frame).map_err(JournalError::io(path))?;
        if got < FRAME_LEN {
            replay.torn_bytes = remaining;
            break;
        }
        let (len, _) = format::parse_frame(&frame);
        let (min, max) = format::payload_bounds(version);
        let bad = if (len as usize) < min || len as usize > max {
            Some(frame.iter().all(|&byte| byte == 0))
        } else if remaining < (FRAME_LEN as u64) + u64::from(len) {
            // Cut short by the end of the file: a write that did not finish.
            replay.torn_bytes = remaining;
            break;
        } else {
            record.clear();
            record.extend_from_slice(&frame);
            record.resize(FRAME_LEN + len as usize, 0);
            reader
                .read_exact(&mut record[FRAME_LEN..])
                .map_err(JournalError::io(path))?;
            match format::decode_record(version, &record) {
                Ok((entry, used)) => {
                    live.apply(version, links, entry);
                    replay.events += 1;
                    pos += used as u64;
                    None
                }
                Err(format::RecordError::Invalid) => {
                    // The checksum matched but the payload is not one this build writes.
                    Some(false)
                }
                Err(_) => Some(true),
            }
        };
        if let Some(may_be_torn) = bad {
            // A bad record with only zeros after it is the end of a write that never reached
            // the disk (a file extended by the write reads back zeros): torn, not corrupt.
            let zeros_after = rest_is_zero(&mut reader).map_err(JournalError::io(path))?;
            if may_be_torn && zeros_after {
                replay.torn_bytes = remaining;
            } else {
                replay.corrupt = true;
                replay.corrupt_offset = Some(pos);
                replay.skipped_bytes = remaining;
            }
            break;
        }
    }
    replay.valid_bytes = pos;
    live.finish(&mut replay);
    Ok(replay)
}

impl LinkNames {
    /// The configured link a record of a file of `version` is on, if it is configured.
    fn place(&self, version: u32, link: &Link<'_>) -> Option<LinkId> {
        match link {
            Link::Name(name) => self.id(name),
            // A version-1 position means the configuration that is loaded (see the module
            // documentation); one kept in a version-2 file was not in it once and is not
            // guessed at again.
            Link::Position(position) if version == VERSION_1 => {
                self.name(LinkId(*position)).map(|_| LinkId(*position))
            }
            Link::Position(_) => None,
        }
    }
}

/// Reads until `buf` is full or the end of the input; returns how much was read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(got)
}

fn rest_is_zero(reader: &mut impl Read) -> io::Result<bool> {
    let mut chunk = [0; 8192];
    loop {
        let n = read_full(reader, &mut chunk)?;
        if chunk[..n].iter().any(|&byte| byte != 0) {
            return Ok(false);
        }
        if n < chunk.len() {
            return Ok(true);
        }
    }
}
