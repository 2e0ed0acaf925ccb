//! The lease journal: an append-only file of checksummed lease events, written by one thread.
//!
//! # Data flow
//!
//! The event path is engine → journal. Workers hand a [`JournalSink`] to `Engine::handle`;
//! the table calls [`EventSink::emit`] with a shard lock held, so the sink only encodes the
//! event ([`format`]; Offered events are skipped: an offer hold is not worth a disk write),
//! takes the next sequence number (one atomic add) and copies the record into its own ring of
//! bytes (`lanes`); no lock is shared by the sinks and no record waits in a sink. The writer
//! thread (`writer`) takes what every ring holds, merges it in sequence order, writes it with
//! one `write`, calls `fdatasync` once (group commit) and publishes the newest durable
//! sequence number. A sink whose ring is full waits for the writer (counted:
//! [`Journal::lane_waits`]).
//!
//! The sink is also the worker's durability barrier ([`Events`]): with [`Durability::Always`]
//! a worker's replies leave only once the sink says the events they announce are synced
//! ([`Events::settle`], or [`Events::mark`] and [`Events::barrier`] per batch). With
//! [`Durability::Batch`] the writer syncs at most once per interval and nobody waits.
//!
//! # Modules
//!
//! - [`format`]: the bytes of the header and of a record, encoded and decoded without IO.
//! - `replay`: reading a file back into live leases ([`Replay`]), torn and corrupt ends, link
//!   names.
//! - `lanes`: the sinks' queues, the writer's merge, and why it keeps each key's order.
//! - `writer`: the writer thread and its group commit.
//! - `compaction`: rewriting the file as a snapshot of the live leases, and why that
//!   replays to the same state.
//! - `prealloc`: the zero tail kept after the records, so that a group commit's
//!   `fdatasync` commits no file-system metadata, and why it is written rather than
//!   `fallocate`d.
//! - `held`: the leases of links the configuration lacks, held over (bounded) until a reload
//!   adds their link ([`Journal::take_placed`]).
//!
//! On open, a file with damaged records is kept as `<path>.corrupt` and replaced by a fresh one
//! holding every good record's lease (or, with [`JournalErrors::Strict`], the open fails and
//! changes nothing); a torn last record is copied to `<path>.torn` before it is cut off; a
//! file of an older version (1: links by position, 2: without relay data, 3: without the
//! Reconfigure flag) is kept as `<path>.v1`, `<path>.v2` or `<path>.v3` and rewritten as
//! version 4. `<path>.lock` is locked
//! while the journal is open and names the process that has it: a second server on the same
//! journal is refused.

mod compaction;
pub mod format;
mod held;
mod lanes;
mod prealloc;
mod replay;
mod wakeup;
mod writer;

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

use arc_swap::ArcSwap;
use xdhcp6_engine::config::{Config, LinkId};
use xdhcp6_engine::table::{EventKind, EventSink, LeaseEvent, LeaseRecord};

pub use self::compaction::COMPACTION_IO_PRIORITY;
pub use self::format::{HEADER_LEN, Link, MAGIC, VERSION};
use self::lanes::{Control, LANE_HEADER, LaneSender, LaneStats, Merge};
pub use self::lanes::{LANE_CAPACITY, LaneWaits};
pub use self::replay::{Replay, Unplaced, read_journal, replay_bytes};
use self::wakeup::{DurableWaiter, Waiters};
use self::writer::JournalWriter;
use crate::events::{Barrier, Events};

/// The zero tail the daemon keeps after the journal's records when none is given
/// (`--journal-prealloc`): none, the file grows with every write. A tail's rotations (a
/// compaction for every half tail of records) cost the server throughput on a disk they
/// share with its syncs (docs/performance.md, "A journal that syncs data only").
pub const DEFAULT_PREALLOC_BYTES: u64 = 0;

/// The sync interval of `"batch"` when none is given.
pub const DEFAULT_BATCH_INTERVAL: Duration = Duration::from_millis(10);

/// When the writer syncs the journal.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Durability {
    /// Every event is synced before [`Journal::wait_durable`] returns for it (group commit).
    Always,
    /// The writer syncs at most once per `interval`; a crash loses at most that much.
    Batch {
        /// The longest time between two syncs.
        interval: Duration,
    },
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Always => f.write_str("always"),
            Self::Batch { interval } => write!(f, "batch:{}ms", interval.as_millis()),
        }
    }
}

/// Why a durability setting did not parse.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("invalid durability {0:?}: expected \"always\", \"batch\" or \"batch:<n>ms\" (also us, s)")]
pub struct ParseDurabilityError(String);

impl FromStr for Durability {
    type Err = ParseDurabilityError;

    /// Parses `always`, `batch` (every [`DEFAULT_BATCH_INTERVAL`]) or `batch:<n><us|ms|s>`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ParseDurabilityError(text.to_owned());
        let text = text.trim();
        if text.eq_ignore_ascii_case("always") {
            return Ok(Self::Always);
        }
        if text.eq_ignore_ascii_case("batch") {
            return Ok(Self::Batch {
                interval: DEFAULT_BATCH_INTERVAL,
            });
        }
        let interval = text
            .strip_prefix("batch:")
            .and_then(parse_interval)
            .ok_or_else(error)?;
        if interval.is_zero() {
            return Err(error());
        }
        Ok(Self::Batch { interval })
    }
}

fn parse_interval(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit): (&str, fn(u64) -> Duration) = if let Some(n) = text.strip_suffix("us") {
        (n, Duration::from_micros)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, Duration::from_millis)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, Duration::from_secs)
    } else {
        (text, Duration::from_millis)
    };
    number.trim().parse().ok().map(unit)
}

/// What opening a journal with damaged records does (`--journal-errors`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, clap::ValueEnum)]
pub enum JournalErrors {
    /// Skip the damaged records, replay every good one, keep the damaged file as
    /// `<journal>.corrupt`, log and count what was skipped, and serve.
    #[default]
    Skip,
    /// Refuse to start, changing nothing, so that an operator looks first.
    Strict,
}

impl fmt::Display for JournalErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Skip => "skip",
            Self::Strict => "strict",
        })
    }
}

/// How the journal is kept: when the writer compacts it (once the file is at least
/// `min_bytes` long and holds at least `ratio` times as many records as there are live
/// leases, so that the snapshot would drop at least `1 - 1/ratio` of it), and what a damaged
/// file does on open.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct JournalOptions {
    /// The smallest file worth compacting.
    pub min_bytes: u64,
    /// How many times the live set (counted in records: the leases a snapshot would write)
    /// the file may hold before it is compacted. The live set is estimated by the writer:
    /// the last snapshot's (or the replay's) leases, plus every `Bound` record written since,
    /// less every removal.
    pub ratio: u64,
    /// What a damaged record found on open does.
    pub errors: JournalErrors,
    /// The most leases of links the configuration lacks that are held over (kept for a reload
    /// that adds their link, and written again by every compaction); past it, those that end
    /// first are dropped at open. The daemon passes `server.expected-leases`.
    pub held_limit: usize,
    /// The zeros kept written after the records (`prealloc`): the file is that much longer
    /// than its records, so that the writer overwrites blocks it already has and its
    /// `fdatasync` commits no metadata; when less than half is left, a compaction writes the
    /// next file (with a tail of its own, as long as its snapshot if that is more) while the
    /// writer goes on. 0 (the default, and the daemon's, [`DEFAULT_PREALLOC_BYTES`]): the
    /// file grows with every write.
    pub prealloc_bytes: u64,
    /// With [`Durability::Always`], the least time from the start of one sync to the start
    /// of the next (`--group-commit-us`): records that come meanwhile wait and join the next
    /// group. Zero (the default): the next sync starts as soon as the last one ends, with
    /// whatever came during it. A window caps the syncs per second at its inverse, and with
    /// them the writer's CPU time and the wakeups between the writer and the workers, and
    /// adds at most its length to a reply's wait.
    pub group_window: Duration,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            min_bytes: 64 << 20,
            ratio: 4,
            errors: JournalErrors::Skip,
            held_limit: usize::MAX,
            prealloc_bytes: 0,
            group_window: Duration::ZERO,
        }
    }
}

/// Why the journal could not be read, opened or kept.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file operation failed.
    #[error("lease journal {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The file does not start with the journal magic.
    #[error("{path} is not an xdhcp6 lease journal")]
    NotAJournal {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a format version this build does not read.
    #[error(
        "{path}: journal format version {version} is not supported (this build reads 1 to {VERSION})"
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// The version found in the header.
        version: u32,
    },
    /// Writes or syncs fail at the moment: events are not made durable until they succeed
    /// again.
    #[error("the lease journal cannot be written at the moment; events are not durable")]
    Failed,
    /// Another process holds the journal.
    #[error(
        "lease journal {path} is in use by another xdhcp6d ({holder}, lock file {lock}); one \
         server per journal"
    )]
    Locked {
        /// The journal.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// Who holds it, as its lock file says (`pid N`).
        holder: String,
    },
    /// Damaged records were found and `--journal-errors strict` was asked for.
    #[error(
        "lease journal {path} has {records} damaged record(s) ({bytes} bytes, the first at \
         offset {offset}); not starting (--journal-errors strict). Start with \
         --journal-errors skip to replay every good record and keep the file as \
         {path}.corrupt"
    )]
    Damaged {
        /// The journal.
        path: PathBuf,
        /// Damaged stretches.
        records: u64,
        /// Their bytes.
        bytes: u64,
        /// Where the first starts.
        offset: u64,
    },
    /// A link name is longer than a record holds.
    #[error(
        "link name {name:?} is longer than the lease journal's {max} bytes",
        max = format::MAX_LINK_NAME_LEN
    )]
    LinkName {
        /// The name.
        name: String,
    },
}

impl JournalError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The names of the configured links, by link id: what the journal records instead of ids.
/// Cloning is cheap (shared).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkNames(Arc<Names>);

#[derive(Debug, Default, PartialEq, Eq)]
struct Names {
    names: Vec<String>,
    ids: HashMap<String, u16>,
}

impl LinkNames {
    /// Link `i` is called `names[i]`.
    pub fn new<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        let ids = names
            .iter()
            .enumerate()
            .filter_map(|(id, name)| Some((name.clone(), u16::try_from(id).ok()?)))
            .collect();
        Self(Arc::new(Names { names, ids }))
    }

    /// The links of `config`.
    pub fn of(config: &Config) -> Self {
        Self::new(config.links.iter().map(|link| link.name.as_str()))
    }

    /// The name of link `id`.
    pub fn name(&self, id: LinkId) -> Option<&str> {
        self.0.names.get(usize::from(id.0)).map(String::as_str)
    }

    /// The id of the link called `name`.
    pub fn id(&self, name: &str) -> Option<LinkId> {
        self.0.ids.get(name).copied().map(LinkId)
    }

    /// How a record names link `id`: by name; by position only for an id without one.
    fn link(&self, id: LinkId) -> Link<'_> {
        match self.name(id) {
            Some(name) => Link::Name(name.into()),
            None => Link::Position(id.0),
        }
    }
}

/// The snapshot closure compaction calls: every live lease of the table.
pub type Snapshot = Arc<dyn Fn() -> Vec<LeaseRecord> + Send + Sync>;

/// The lease journal: shared by all workers (via `Arc`), written by one thread.
pub struct Journal {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    path: PathBuf,
    /// `<journal>.lock`, locked while the journal is open.
    _lock: File,
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("durability", &self.shared.durability)
            .field("durable_seq", &self.durable_seq())
            .field("lag", &self.lag())
            .finish()
    }
}

impl Journal {
    /// Replays the journal at `path` (creating it if missing) against the configured `links`
    /// and starts the writer thread.
    pub fn open(
        path: &Path,
        durability: Durability,
        links: LinkNames,
        snapshot: Snapshot,
    ) -> Result<(Self, Replay), JournalError> {
        Self::open_with(path, durability, links, snapshot, JournalOptions::default())
    }

    /// [`Journal::open`] with compaction thresholds of your own.
    pub fn open_with(
        path: &Path,
        durability: Durability,
        links: LinkNames,
        snapshot: Snapshot,
        options: JournalOptions,
    ) -> Result<(Self, Replay), JournalError> {
        if let Some(name) = links
            .0
            .names
            .iter()
            .find(|name| name.len() > format::MAX_LINK_NAME_LEN)
        {
            return Err(JournalError::LinkName { name: name.clone() });
        }
        // One server per journal: two would both append, and one's compaction would drop the
        // other's records.
        let lock_file = lock_journal(path)?;
        let compact_path = sibling(path, "compact");
        // A compaction that never reached its rename: the journal itself is complete.
        match fs::remove_file(&compact_path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                return Err(JournalError::io(&compact_path)(error));
            }
            _ => {}
        }
        let scanned = match replay::scan(path, &links) {
            Ok(replay) => Some(replay),
            Err(JournalError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                None
            }
            Err(error) => return Err(error),
        };
        if let Some(replay) = &scanned
            && replay.corrupt
            && options.errors == JournalErrors::Strict
        {
            return Err(JournalError::Damaged {
                path: path.to_owned(),
                records: replay.damaged_records,
                bytes: replay.skipped_bytes,
                offset: replay.corrupt_offset.unwrap_or(0),
            });
        }
        let (file, len, size, base, (records, live), replay) = match scanned {
            Some(replay) if replay.version == Some(VERSION) && !replay.corrupt => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(JournalError::io(path))?;
                if replay.torn_bytes > 0 {
                    // Never cut bytes off without keeping them.
                    let kept_as = keep_tail(path, replay.valid_bytes, replay.torn_bytes)?;
                    tracing::warn!(
                        path = %path.display(),
                        offset = replay.valid_bytes,
                        torn_bytes = replay.torn_bytes,
                        kept_as = %kept_as.display(),
                        "a torn last record is cut off the lease journal"
                    );
                    file.set_len(replay.valid_bytes)
                        .and_then(|()| file.sync_all())
                        .map_err(JournalError::io(path))?;
                }
                let base = compaction::snapshot_len(&links, &replay.records, &replay.unplaced);
                let live = (replay.records.len() + replay.unplaced.len()) as u64;
                // The writer goes on after the last record, not at the end of the file: past
                // the records there are only zeros (a torn end was cut off above). A file
                // without enough of them (written with none, or nearly used up) gets them now,
                // before the first reply.
                let size = file
                    .metadata()
                    .map_err(JournalError::io(path))?
                    .len()
                    .max(replay.valid_bytes);
                let size = prealloc::extend(
                    &file,
                    path,
                    replay.valid_bytes,
                    size,
                    options.prealloc_bytes,
                );
                (
                    file,
                    replay.valid_bytes,
                    size,
                    base,
                    (replay.events, live),
                    replay,
                )
            }
            scanned => {
                let replay = scanned.unwrap_or_default();
                if replay.corrupt {
                    let aside = set_aside(path, "corrupt")?;
                    tracing::error!(
                        path = %path.display(),
                        kept_as = %aside.display(),
                        damaged_records = replay.damaged_records,
                        first_offset = replay.corrupt_offset,
                        skipped_bytes = replay.skipped_bytes,
                        torn_bytes = replay.torn_bytes,
                        events = replay.events,
                        "lease journal has damaged records; skipped them and replayed every \
                         good record"
                    );
                } else if let Some(version) = replay.version.filter(|&version| version != VERSION) {
                    let aside = set_aside(path, &format!("v{version}"))?;
                    tracing::info!(
                        path = %path.display(),
                        kept_as = %aside.display(),
                        version,
                        "rewriting the lease journal in format version {VERSION}"
                    );
                }
                // Missing, torn inside its header, corrupt or of an older version: start a
                // fresh file holding what was replayed, written aside and renamed so that a
                // crash leaves either file.
                let at = 0;
                let snapshot = compaction::write_snapshot(
                    &compact_path,
                    &links,
                    &replay.records,
                    &replay.unplaced,
                    at,
                    options.prealloc_bytes,
                )?;
                compaction::install(&compact_path, path)?;
                let (len, written) = (snapshot.len, snapshot.records);
                (
                    snapshot.file,
                    len,
                    snapshot.size,
                    len,
                    (written, written),
                    replay,
                )
            }
        };
        if !replay.unplaced.is_empty() {
            tracing::warn!(
                path = %path.display(),
                leases = replay.unplaced.len(),
                links = ?unplaced_links(&replay.unplaced),
                "leases on links the configuration does not have are kept in the journal but \
                 not served until a reload adds their link"
            );
        }
        let (held, dropped) = held::Held::bounded(replay.unplaced.clone(), options.held_limit);
        if dropped > 0 {
            tracing::warn!(
                path = %path.display(),
                dropped,
                kept = held.len(),
                limit = options.held_limit,
                "more leases on links the configuration does not have than the table is sized \
                 for: those that end first are dropped from the journal at its next compaction"
            );
        }
        let (control, control_rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            durability,
            links: ArcSwap::from_pointee(links),
            links_version: AtomicU64::new(0),
            control,
            closing: AtomicBool::new(false),
            compacted: Mutex::new(None),
            lane_stats: LaneStats::default(),
            issued_seq: AtomicU64::new(0),
            durable_seq: AtomicU64::new(0),
            durable_lock: Mutex::new(()),
            durable_changed: Condvar::new(),
            failed: AtomicBool::new(false),
            write_failures: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            ddns: std::sync::OnceLock::new(),
            writer_thread: OnceLock::new(),
            writer_idle: AtomicBool::new(false),
            held: Mutex::new(held),
            compaction_io_priority: Mutex::new(None),
            waiters: Waiters::default(),
        });
        let writer = JournalWriter::new(
            Arc::clone(&shared),
            path.to_owned(),
            compact_path,
            (file, len, size, base),
            (records, live),
            snapshot,
            options,
            Merge::new(control_rx),
        );
        let writer = thread::Builder::new()
            .name("xdhcp6-journal".into())
            .spawn(move || writer.run())
            .map_err(JournalError::io(path))?;
        let journal = Self {
            shared,
            writer: Some(writer),
            path: path.to_owned(),
            _lock: lock_file,
        };
        Ok((journal, replay))
    }

    /// Restricts the writer thread (and the compactions it starts from now on) to `cores`
    /// (see [`crate::placement`]).
    pub fn pin_writer(&self, cores: &[usize]) -> io::Result<()> {
        match &self.writer {
            Some(writer) => crate::placement::pin_thread(writer, cores),
            None => Ok(()),
        }
    }

    /// A sink for one worker's events, with a ring of its own (about [`LANE_CAPACITY`]
    /// records), and its durability barrier.
    pub fn sink(&self) -> JournalSink {
        self.sink_with_capacity(LANE_CAPACITY)
    }

    /// [`Journal::sink`] with a ring of about `capacity` records (never too small for the
    /// largest record).
    pub fn sink_with_capacity(&self, capacity: usize) -> JournalSink {
        let (lane, queue) = lanes::lane(capacity);
        // The writer takes the new lane when it next looks: records pushed before then wait
        // in it like any others.
        let _ = self.shared.control.send(queue);
        self.shared.wake();
        // The number first: names stored after it make the sink load them again.
        let links_version = self.shared.links_version.load(Ordering::Acquire);
        JournalSink {
            shared: Arc::clone(&self.shared),
            lane,
            scratch: Vec::with_capacity(256),
            links: self.shared.links.load_full(),
            links_version,
            last_seq: 0,
            waiter: None,
        }
    }

    /// How often sinks found their queue full and waited for the writer, and for how long.
    pub fn lane_waits(&self) -> LaneWaits {
        self.shared.lane_stats.snapshot()
    }

    /// Blocks until every event up to `seq` is synced ([`Durability::Always`]); returns at
    /// once with [`Durability::Batch`]. Fails while the writer cannot write: the caller must
    /// then not send the replies that depend on those events (the events themselves stay
    /// queued and are written once the writer recovers).
    pub fn wait_durable(&self, seq: u64) -> Result<(), JournalError> {
        self.shared.wait_durable(seq)
    }

    /// Whether every event up to `seq` is as durable as [`Self::wait_durable`] would make it,
    /// without waiting (always true with [`Durability::Batch`]).
    pub fn is_durable(&self, seq: u64) -> bool {
        self.shared.is_durable(seq)
    }

    /// The newest sequence number whose event (and every earlier one) is synced.
    pub fn durable_seq(&self) -> u64 {
        self.shared.durable_seq.load(Ordering::Acquire)
    }

    /// Events queued but not yet synced.
    pub fn lag(&self) -> u64 {
        let issued = self.shared.issued_seq.load(Ordering::Acquire);
        issued.saturating_sub(self.durable_seq())
    }

    /// Whether writes or syncs fail at the moment (the writer retries them until they
    /// succeed): the server then makes and extends no binding.
    pub fn has_failed(&self) -> bool {
        self.shared.has_failed()
    }

    /// Names links as `links` from now on: a reloaded configuration keeps every running
    /// link at its id and appends new ones, so records already queued keep their names.
    pub fn set_links(&self, links: LinkNames) {
        self.shared.links.store(Arc::new(links));
        // After the store: a sink that sees the new number loads the new names.
        self.shared.links_version.fetch_add(1, Ordering::Release);
    }

    /// Takes out the held-over leases (of links the configuration lacked) whose link the
    /// names given to [`Journal::set_links`] now have, with their link ids, for the table:
    /// a reload that adds a link loads them, so that their clients keep their leases. Every
    /// compaction from now on writes them from the table.
    pub fn take_placed(&self) -> Vec<LeaseRecord> {
        let links = self.shared.links.load();
        lock(&self.shared.held).take_placed(&links)
    }

    /// How many leases of links the configuration lacks are held over.
    pub fn held_leases(&self) -> usize {
        lock(&self.shared.held).len()
    }

    /// Hands names and the ends of leases to the DNS updater from now on (once; a second
    /// feed is ignored).
    pub fn set_ddns(&self, feed: crate::ddns::DdnsFeed) {
        let _ = self.shared.ddns.set(feed);
    }

    /// Whether the journal writes (the `xdhcp6_journal_healthy` gauge).
    pub fn is_healthy(&self) -> bool {
        !self.shared.has_failed()
    }

    /// Whether the writer thread still runs: it ends only at shutdown, or when it panicked
    /// (then nothing becomes durable again, and the service watchdog stops being fed).
    pub fn writer_running(&self) -> bool {
        self.writer
            .as_ref()
            .is_some_and(|writer| !writer.is_finished())
    }

    /// Times the journal's writes started failing since open.
    pub fn write_failures(&self) -> u64 {
        self.shared.write_failures.load(Ordering::Acquire)
    }

    /// Compactions completed since open.
    pub fn compactions(&self) -> u64 {
        self.shared.compactions.load(Ordering::Acquire)
    }

    /// Group commits (a write and its `fdatasync`) that succeeded since open.
    pub fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::Acquire)
    }

    /// The I/O priority the last compaction's thread runs at, as the kernel read it back
    /// ([`COMPACTION_IO_PRIORITY`] once one has started); `None` before the first, or when it
    /// could not be set.
    pub fn compaction_io_priority(&self) -> Option<xdhcp6_datapath::ioprio::IoPriority> {
        *lock(&self.shared.compaction_io_priority)
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes and syncs everything queued, then stops the writer thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        self.shared.closing.store(true, Ordering::Release);
        self.shared.wake();
        if writer.join().is_err() {
            tracing::error!(path = %self.path.display(), "lease journal writer panicked");
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The distinct links of `unplaced`, for the log.
fn unplaced_links(unplaced: &[Unplaced]) -> Vec<String> {
    let mut links: Vec<String> = unplaced
        .iter()
        .map(|lease| match &lease.link {
            Link::Name(name) => name.to_string(),
            Link::Position(position) => format!("#{position}"),
        })
        .collect();
    links.sort_unstable();
    links.dedup();
    links
}

/// One worker's way into the journal: the [`EventSink`] it hands the engine, which encodes and
/// queues events, and the [`Events`] barrier its replies wait on.
pub struct JournalSink {
    shared: Arc<Shared>,
    lane: LaneSender,
    /// A lane header followed by the record being encoded.
    scratch: Vec<u8>,
    /// The link names as of `links_version` (`Shared::links`, loaded only when it changes).
    links: Arc<LinkNames>,
    links_version: u64,
    last_seq: u64,
    /// Wakes the worker sleeping beside its socket when a mark becomes durable
    /// ([`Events::sleep_until`]; made on first use).
    waiter: Option<Arc<DurableWaiter>>,
}

impl fmt::Debug for JournalSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalSink")
            .field("last_seq", &self.last_seq)
            .finish()
    }
}

impl JournalSink {
    /// The sequence number of the newest event this sink queued (0 if none).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
}

impl EventSink for JournalSink {
    /// Every kind but offers, which `emit` does not write: the table then builds no event for
    /// a Solicit's offer (with the engine's own sink, which counts none either).
    fn wants(&self, kind: EventKind) -> bool {
        kind != EventKind::Offered
    }

    fn emit(&mut self, event: LeaseEvent) {
        // An offer is a hold of seconds: losing it in a crash costs the client one more
        // Solicit, so it is not worth a write.
        if event.kind == EventKind::Offered {
            return;
        }
        let version = self.shared.links_version.load(Ordering::Acquire);
        if version != self.links_version {
            self.links = self.shared.links.load_full();
            self.links_version = version;
        }
        let names = &*self.links;
        if let Some(feed) = self.shared.ddns.get() {
            feed.lease_event(names.name(event.record.lease.link), &event);
        }
        let link = names.link(event.record.lease.link);
        self.scratch.clear();
        self.scratch.resize(LANE_HEADER, 0);
        format::encode(
            &mut self.scratch,
            event.kind,
            event.at,
            &link,
            &event.record,
        );
        if self.shared.closing.load(Ordering::Acquire) {
            return;
        }
        // Taken under the shard lock the table holds, so per key the numbers follow the
        // table's order; the writer writes in number order (`lanes`).
        // Sequentially consistent, with the load of `writer_idle` below: see `lanes`.
        let seq = self.shared.issued_seq.fetch_add(1, Ordering::SeqCst) + 1;
        lanes::set_header(&mut self.scratch, seq, event.at);
        let shared = &*self.shared;
        lanes::push(&mut self.lane, &self.scratch, &shared.lane_stats, || {
            shared.wake();
        });
        self.last_seq = seq;
        if shared.writer_idle.load(Ordering::SeqCst) {
            shared.wake();
        } else if seq.is_multiple_of(lanes::FILL_CHECK) && lanes::half_full(&self.lane) {
            // Between two syncs the writer takes from the lanes only every so often: have it
            // do so before this one fills.
            shared.wake();
        }
    }

    fn name(&mut self, binding: xdhcp6_engine::fqdn::NameBinding) {
        if let Some(feed) = self.shared.ddns.get() {
            let names = self.shared.links.load();
            if let Some(link) = names.name(binding.link) {
                feed.bind(link, binding);
            }
        }
    }
}

impl Events for JournalSink {
    fn settle(&mut self) -> bool {
        let mark = self.mark();
        self.wait(mark)
    }

    fn mark(&self) -> u64 {
        self.last_seq
    }

    fn barrier(&self, mark: u64) -> Barrier {
        if self.shared.is_durable(mark) {
            Barrier::Ready
        } else if self.shared.has_failed() {
            Barrier::Failed
        } else {
            Barrier::Pending
        }
    }

    fn wait(&mut self, mark: u64) -> bool {
        self.shared.wait_durable(mark).is_ok()
    }

    fn sleep_until(&mut self, mark: u64, beside: &[BorrowedFd<'_>], timeout_ms: i32) -> bool {
        if self.waiter.is_none() {
            match self.shared.waiters.register() {
                Ok(waiter) => self.waiter = Some(waiter),
                Err(error) => {
                    tracing::warn!(%error, "no eventfd for the journal's wakeup; workers block on it instead");
                    return false;
                }
            }
        }
        let Some(waiter) = &self.waiter else {
            return false;
        };
        let shared = &*self.shared;
        waiter.sleep(beside, timeout_ms, || {
            shared.is_durable(mark) || shared.has_failed()
        });
        true
    }

    fn persisting(&self) -> bool {
        !self.shared.has_failed()
    }
}

/// State shared by the journal, its sinks and its writer.
struct Shared {
    durability: Durability,
    /// How records name links; replaced on a configuration reload ([`Journal::set_links`]).
    links: ArcSwap<LinkNames>,
    /// Bumped after every change of `links`, so that sinks reload them only then.
    links_version: AtomicU64,
    /// New sinks' lanes for the writer.
    control: crossbeam_channel::Sender<Control>,
    /// Set once by [`Journal::shutdown`]: sinks queue nothing more.
    closing: AtomicBool,
    /// A finished compaction, handed over by its thread.
    compacted: Mutex<Option<io::Result<compaction::Snapshotted>>>,
    /// Sinks that waited for the writer because their lane was full.
    lane_stats: LaneStats,
    /// The newest sequence number handed out: each sink takes the next one with an atomic
    /// add under the table's shard lock.
    issued_seq: AtomicU64,
    durable_seq: AtomicU64,
    durable_lock: Mutex<()>,
    durable_changed: Condvar,
    /// Whether the writer cannot write at the moment (it retries until it can).
    failed: AtomicBool,
    /// Times the journal went from writing to failing.
    write_failures: AtomicU64,
    compactions: AtomicU64,
    /// Group commits that succeeded ([`Journal::syncs`]).
    syncs: AtomicU64,
    /// Where names and the ends of leases go for DNS updates ([`Journal::set_ddns`]).
    ddns: std::sync::OnceLock<crate::ddns::DdnsFeed>,
    /// The writer thread, to wake it (set by the thread itself when it starts).
    writer_thread: OnceLock<Thread>,
    /// The writer sleeps until woken: every number handed out was written (see `lanes`).
    writer_idle: AtomicBool,
    /// The I/O priority the last compaction thread read back after lowering its own.
    compaction_io_priority: Mutex<Option<xdhcp6_datapath::ioprio::IoPriority>>,
    /// Leases on links the configuration lacks: every snapshot writes them again, a reload
    /// that adds their link takes them out ([`Journal::take_placed`]).
    held: Mutex<held::Held>,
    /// Workers sleeping beside their sockets until a mark is durable.
    waiters: Waiters,
}

impl Shared {
    /// Wakes the writer (a new lane, a full lane, closing, a finished compaction, a record
    /// while it sleeps).
    fn wake(&self) {
        if let Some(writer) = self.writer_thread.get() {
            writer.unpark();
        }
    }

    fn wait_durable(&self, seq: u64) -> Result<(), JournalError> {
        if matches!(self.durability, Durability::Batch { .. }) {
            // Batch replies do not wait for the sync, but none leaves past a failed one.
            return match self.has_failed() {
                false => Ok(()),
                true => Err(JournalError::Failed),
            };
        }
        // Never wait for a number no sink has taken: it would never become durable.
        let seq = seq.min(self.issued_seq.load(Ordering::Acquire));
        if self.durable_seq.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let mut guard = lock(&self.durable_lock);
        loop {
            if self.durable_seq.load(Ordering::Acquire) >= seq {
                return Ok(());
            }
            if self.failed.load(Ordering::Acquire) {
                return Err(JournalError::Failed);
            }
            guard = self
                .durable_changed
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn is_durable(&self, seq: u64) -> bool {
        matches!(self.durability, Durability::Batch { .. }) && !self.has_failed()
            || self.durable_seq.load(Ordering::Acquire)
                >= seq.min(self.issued_seq.load(Ordering::Acquire))
    }

    fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    fn publish(&self, seq: u64) {
        self.durable_seq.store(seq, Ordering::Release);
        // Taking the lock orders this with a waiter between its check and its wait.
        drop(lock(&self.durable_lock));
        self.durable_changed.notify_all();
        self.waiters.wake();
    }

    fn fail(&self) {
        self.failed.store(true, Ordering::Release);
        self.write_failures.fetch_add(1, Ordering::AcqRel);
        drop(lock(&self.durable_lock));
        self.durable_changed.notify_all();
        self.waiters.wake();
    }

    fn recover(&self) {
        self.failed.store(false, Ordering::Release);
    }
}

/// Keeps a copy of the journal as `<path>.<suffix>` (or `.<suffix>.N`, keeping older ones).
/// The journal itself stays in place until the fresh one is renamed over it, so a crash in
/// between replays the same file again rather than nothing.
fn set_aside(path: &Path, suffix: &str) -> Result<PathBuf, JournalError> {
    let mut aside = sibling(path, suffix);
    for n in 1.. {
        if !aside.exists() {
            break;
        }
        aside = sibling(path, &format!("{suffix}.{n}"));
    }
    if fs::hard_link(path, &aside).is_err() {
        fs::copy(path, &aside)
            .and_then(|_| File::open(&aside)?.sync_all())
            .map_err(JournalError::io(&aside))?;
    }
    Ok(aside)
}

/// Takes `<path>.lock` (an advisory lock, released when the file closes, so also when the
/// process dies) and writes this process's id into it; fails naming the holder if another
/// process has it.
fn lock_journal(path: &Path) -> Result<File, JournalError> {
    let lock_path = sibling(path, "lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(JournalError::io(&lock_path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "pid unknown".to_owned(),
                pid => format!("pid {pid}"),
            };
            return Err(JournalError::Locked {
                path: path.to_owned(),
                lock: lock_path,
                holder,
            });
        }
        Err(fs::TryLockError::Error(error)) => return Err(JournalError::io(&lock_path)(error)),
    }
    file.set_len(0)
        .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
        .map_err(JournalError::io(&lock_path))?;
    Ok(file)
}

/// Copies `len` bytes of the journal from `offset` on (the torn record, without the zero tail
/// after it) to `<path>.torn` (or `.torn.N`), synced, before they are cut off.
fn keep_tail(path: &Path, offset: u64, len: u64) -> Result<PathBuf, JournalError> {
    let mut aside = sibling(path, "torn");
    for n in 1.. {
        if !aside.exists() {
            break;
        }
        aside = sibling(path, &format!("torn.{n}"));
    }
    let mut tail = Vec::new();
    File::open(path)
        .and_then(|mut file| {
            file.seek(io::SeekFrom::Start(offset))?;
            file.take(len).read_to_end(&mut tail)
        })
        .map_err(JournalError::io(path))?;
    File::create(&aside)
        .and_then(|mut file| {
            file.write_all(&tail)?;
            file.sync_all()
        })
        .map_err(JournalError::io(&aside))?;
    Ok(aside)
}

/// `<path>.<suffix>`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_is_shared_across_threads() {
        fn shared<T: Send + Sync>() {}
        fn sent<T: Send>() {}
        shared::<Journal>();
        sent::<JournalSink>();
    }

    #[test]
    fn links_are_named_and_found() {
        let links = LinkNames::new(["a", "b"]);
        assert_eq!(links.name(LinkId(1)), Some("b"));
        assert_eq!(links.id("a"), Some(LinkId(0)));
        assert_eq!(links.id("c"), None);
        assert_eq!(links.link(LinkId(0)), Link::Name("a".into()));
        assert_eq!(links.link(LinkId(7)), Link::Position(7));
    }

    #[test]
    fn durability_parses_and_prints() {
        assert_eq!("always".parse(), Ok(Durability::Always));
        assert_eq!(
            "batch".parse(),
            Ok(Durability::Batch {
                interval: DEFAULT_BATCH_INTERVAL
            })
        );
        let twenty = Durability::Batch {
            interval: Duration::from_millis(20),
        };
        assert_eq!("batch:20ms".parse(), Ok(twenty));
        assert_eq!("batch:20".parse(), Ok(twenty));
        assert_eq!(twenty.to_string().parse(), Ok(twenty));
        assert_eq!(
            "batch:1s".parse(),
            Ok(Durability::Batch {
                interval: Duration::from_secs(1)
            })
        );
        assert!("batch:0ms".parse::<Durability>().is_err());
        assert!("sometimes".parse::<Durability>().is_err());
    }
}
