//! Reading a journal back: the live leases after every good event, and where the file ends
//! (torn or corrupt).
//!
//! Events apply in file order: Bound, Renewed and Declined upsert the lease keyed by
//! (DUID, IAID, IA kind, link, address); Released, Expired and ProbationEnded remove it.
//! Where only zeros follow the last record, the journal ends there: a preallocated file's
//! zero tail (`prealloc`) is neither damage nor a torn write, and the writer goes on writing
//! at that offset. A record cut short by a crash at the end of the file (or followed only by
//! zeros, as a file extended by a write that never reached the disk, or a record written
//! only in part into the zero tail, reads back) is torn: it is ignored, and on open its bytes
//! (up to the last byte that is not zero, or its own length, whichever ends later) are copied
//! to `<journal>.torn` and cut off.
//!
//! A damaged record (its checksum fails, its length is beyond what any valid record takes, or
//! its payload is not one of the version) does not end the replay: since every record is
//! length-framed and checksummed, replay looks for the next offset where a good record starts
//! and goes on from there, so that one flipped byte costs one record, not the rest of the
//! file. What was skipped is counted in [`Replay::damaged_records`] and
//! [`Replay::skipped_bytes`]. Length fields are bounded by the longest valid record
//! ([`format::MAX_RECORD_LEN`]), so a damaged length near the end is not taken for a record
//! that a crash cut short; and when no good record follows a damaged one, the rest is torn only
//! if the record runs past the end of the file or only zeros follow it.
//!
//! # Links
//!
//! A record of version 2 or later names its link; the name is looked up in the configuration that is
//! loaded ([`LinkNames`]). A version-1 record has only the link's position in the
//! configuration it was written with, and is read against the configuration that is loaded:
//! a version-1 journal must be replayed once with the configuration it was written with, after
//! which [`super::Journal::open`] has rewritten it as the current version with names. A record whose link
//! is not in the configuration (a name that is gone, a version-1 position past the last link,
//! or a position kept in a version-2 file) is [`Unplaced`]: it is not served, but it is kept,
//! reported, and written again by every compaction, so that putting the link back restores
//! its leases.

use std::collections::HashSet;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use xdhcp6_engine::config::LinkId;
use xdhcp6_engine::table::{EventKind, LeaseRecord};

use super::format::{self, FRAME_LEN, HEADER_LEN, Header, Link, MAX_RECORD_LEN, VERSION_1};
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
    /// Bytes of a torn last record (cut off on open, and kept as `<journal>.torn`).
    pub torn_bytes: u64,
    /// Whether damaged records were skipped.
    pub corrupt: bool,
    /// Damaged stretches skipped: each is one damaged record, or several in a row, up to the
    /// next good record (or the end of the file).
    pub damaged_records: u64,
    /// Where the first damaged record starts (file offset), when `corrupt`.
    pub corrupt_offset: Option<u64>,
    /// Bytes of the damaged stretches, not replayed.
    pub skipped_bytes: u64,
    /// Where the good part of the file ends (header included): the torn or damaged end
    /// starts here.
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
    scan_from(file, path, links)
}

/// Replays the bytes of a journal file held in memory (the fuzz target's way in); `path` only
/// names it in errors.
pub fn replay_bytes(bytes: &[u8], path: &Path, links: &LinkNames) -> Result<Replay, JournalError> {
    scan_from(io::Cursor::new(bytes), path, links)
}

fn scan_from(
    reader: impl Read + Seek,
    path: &Path,
    links: &LinkNames,
) -> Result<Replay, JournalError> {
    let mut window = Window::new(reader);
    let mut replay = Replay::default();

    let header = window
        .at(0, HEADER_LEN as usize)
        .map_err(JournalError::io(path))?;
    let Ok(header) = <&[u8; HEADER_LEN as usize]>::try_from(header) else {
        // Created but never fully written: empty, if what is there is a header's beginning.
        if !format::is_header_start(header) {
            return Err(JournalError::NotAJournal {
                path: path.to_owned(),
            });
        }
        replay.torn_bytes = header.len() as u64;
        return Ok(replay);
    };
    let version = match format::parse_header(header) {
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
    loop {
        let bytes = window
            .at(pos, MAX_RECORD_LEN)
            .map_err(JournalError::io(path))?;
        if bytes.is_empty() {
            break;
        }
        let error = match format::decode_record(version, bytes) {
            Ok((entry, used)) => {
                live.apply(version, links, entry);
                replay.events += 1;
                pos += used as u64;
                continue;
            }
            Err(error) => error,
        };
        // The record's own end, when its length is plausible (the checksum failed or the file
        // ends inside it).
        let declared_end = match error {
            format::RecordError::Short { needed } => Some(pos + needed),
            format::RecordError::Damaged => match bytes.first_chunk::<FRAME_LEN>() {
                Some(frame) => {
                    let (len, _) = format::parse_frame(frame);
                    let (min, max) = format::payload_bounds(version);
                    ((min..=max).contains(&(len as usize)))
                        .then(|| pos + (FRAME_LEN as u64) + u64::from(len))
                }
                None => None,
            },
            format::RecordError::Invalid => None,
        };
        // Only zeros from here on: the end of the journal, where a preallocated file's zero
        // tail starts (`prealloc`), not damage and not a torn write.
        if is_zero_from(&mut window, pos).map_err(JournalError::io(path))? {
            break;
        }
        // Every record is framed and checksummed: look for the next good one.
        let next = resync(&mut window, version, pos + 1).map_err(JournalError::io(path))?;
        if let Some(next) = next {
            replay.damaged_records += 1;
            replay.skipped_bytes += next - pos;
            replay.corrupt_offset.get_or_insert(pos);
            pos = next;
            continue;
        }
        // No good record after it: the end of the file. A record cut short by the end of
        // the file, or followed only by zeros (a file extended by a write that never reached
        // the disk reads back zeros, and so does a preallocated file's zero tail), is a write
        // that did not finish: torn. Anything else is damage at the end.
        let end = window.len().map_err(JournalError::io(path))?;
        let short = matches!(error, format::RecordError::Short { .. });
        let torn = short
            || match declared_end {
                Some(declared_end) if declared_end <= end => {
                    is_zero_from(&mut window, declared_end).map_err(JournalError::io(path))?
                }
                _ => false,
            };
        // Where the torn or damaged bytes end: the file's end, less the zeros after the last
        // byte that is not zero (a zero tail is no part of them), but never inside the
        // record's own length.
        let tail_end = if short {
            end
        } else {
            let data_end = data_end(&mut window, pos).map_err(JournalError::io(path))?;
            declared_end.map_or(data_end, |declared_end| declared_end.min(end).max(data_end))
        };
        if torn {
            replay.torn_bytes = tail_end - pos;
        } else {
            replay.damaged_records += 1;
            replay.skipped_bytes += tail_end - pos;
            replay.corrupt_offset.get_or_insert(pos);
        }
        break;
    }
    replay.corrupt = replay.damaged_records > 0;
    replay.valid_bytes = pos;
    live.finish(&mut replay);
    Ok(replay)
}

/// The offset of the first good record at or after `from`, if there is one.
fn resync(
    window: &mut Window<impl Read + Seek>,
    version: u32,
    from: u64,
) -> io::Result<Option<u64>> {
    let (min, _) = format::payload_bounds(version);
    let mut pos = from;
    loop {
        let bytes = window.at(pos, MAX_RECORD_LEN)?;
        if bytes.len() < FRAME_LEN + min {
            return Ok(None);
        }
        if bytes[..2] == [0, 0] {
            // A record's length (little endian) is at most `MAX_RECORD_LEN`, under 65,536,
            // and not 0: no record starts with two zero bytes, so a run of zeros (a
            // preallocated file's tail) is stepped over at once, up to the byte before the
            // first that is not zero (which may start one).
            let zeros = bytes.iter().position(|&byte| byte != 0);
            pos += zeros.unwrap_or(bytes.len()) as u64 - 1;
            continue;
        }
        if format::decode_record(version, bytes).is_ok() {
            return Ok(Some(pos));
        }
        pos += 1;
    }
}

/// Whether every byte from `from` to the end of the file is zero.
fn is_zero_from(window: &mut Window<impl Read + Seek>, from: u64) -> io::Result<bool> {
    let mut pos = from;
    loop {
        let bytes = window.at(pos, 1 << 16)?;
        if bytes.iter().any(|&byte| byte != 0) {
            return Ok(false);
        }
        if bytes.is_empty() {
            return Ok(true);
        }
        pos += bytes.len() as u64;
    }
}

/// Where the bytes from `from` on end once the zeros after the last byte that is not zero are
/// left out (`from` itself when they are all zeros).
fn data_end(window: &mut Window<impl Read + Seek>, from: u64) -> io::Result<u64> {
    let mut pos = from;
    let mut end = from;
    loop {
        let bytes = window.at(pos, 1 << 16)?;
        if bytes.is_empty() {
            return Ok(end);
        }
        if let Some(last) = bytes.iter().rposition(|&byte| byte != 0) {
            end = pos + last as u64 + 1;
        }
        pos += bytes.len() as u64;
    }
}

/// A forward-only window over a file: the bytes from `start` on, read in as asked for.
struct Window<R> {
    file: R,
    buf: Vec<u8>,
    /// The file offset of `buf[0]`.
    start: u64,
    eof: bool,
}

impl<R: Read + Seek> Window<R> {
    /// Bytes read from the file at a time.
    const CHUNK: usize = 1 << 20;

    fn new(file: R) -> Self {
        Self {
            file,
            buf: Vec::new(),
            start: 0,
            eof: false,
        }
    }

    /// Up to `n` bytes from file offset `pos` (fewer only at the end of the file).
    fn at(&mut self, pos: u64, n: usize) -> io::Result<&[u8]> {
        if pos < self.start {
            // Back before the window: read again from there.
            self.file.seek(SeekFrom::Start(pos))?;
            self.buf.clear();
            self.start = pos;
            self.eof = false;
        }
        let skip = usize::try_from(pos.saturating_sub(self.start)).unwrap_or(usize::MAX);
        if skip.saturating_add(n) > self.buf.len() && !self.eof {
            // Keep a record's worth before `pos` for a caller that steps back.
            let keep_from = skip.saturating_sub(MAX_RECORD_LEN).min(self.buf.len());
            self.buf.drain(..keep_from);
            self.start += keep_from as u64;
            let want = (skip - keep_from).saturating_add(n);
            while self.buf.len() < want && !self.eof {
                let got = (&mut self.file)
                    .take(Self::CHUNK as u64)
                    .read_to_end(&mut self.buf)?;
                self.eof = got < Self::CHUNK;
            }
        }
        let skip = usize::try_from(pos.saturating_sub(self.start)).unwrap_or(usize::MAX);
        let from = skip.min(self.buf.len());
        let to = from.saturating_add(n).min(self.buf.len());
        Ok(&self.buf[from..to])
    }

    /// The file's length (read to its end).
    fn len(&mut self) -> io::Result<u64> {
        while !self.eof {
            let end = self.start + self.buf.len() as u64;
            self.at(end, Self::CHUNK)?;
        }
        Ok(self.start + self.buf.len() as u64)
    }
}

impl LinkNames {
    /// The configured link a record of a file of `version` is on, if it is configured.
    pub(super) fn place(&self, version: u32, link: &Link<'_>) -> Option<LinkId> {
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
