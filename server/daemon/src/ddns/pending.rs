//! The updater's own journal, `<journal>.ddns`: JSON lines, appended and synced by the updater
//! thread. A `job` line is written when an update is queued, a `done` line when it has
//! succeeded, met a conflict or been given up; an `owner` line (written only when the file is
//! compacted at start) is a name this server wrote for an address. A restart replays the file:
//! the jobs without their `done` run again, and the owners tell which name a released or
//! expired address had, so that its records can go.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What an updater job does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    /// The client holds `addresses` under its name: take or replace the AAAA RRset (when
    /// `forward`), write their PTRs (when `reverse`), and delete the PTRs of `stale`.
    Bind {
        /// The addresses the client holds from this server.
        addresses: Vec<Ipv6Addr>,
        /// Addresses it no longer holds (another server's, after a Rebind).
        stale: Vec<Ipv6Addr>,
    },
    /// The client no longer holds `address` (released, declined, expired).
    Remove {
        /// The address that went.
        address: Ipv6Addr,
    },
}

/// One update of one client's records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Its number in the file.
    pub id: u64,
    /// The link's name.
    pub link: String,
    /// The client's name, absolute.
    pub name: String,
    /// The client's DUID, hex.
    pub duid: String,
    /// Whether the server updates AAAA and DHCID.
    pub forward: bool,
    /// Whether the server updates PTR.
    pub reverse: bool,
    /// What to do.
    pub kind: JobKind,
    /// When it was queued, seconds since the epoch.
    #[serde(default)]
    pub at: u64,
}

/// The name an address was given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The address.
    pub address: Ipv6Addr,
    /// The link's name.
    pub link: String,
    /// The client's name.
    pub name: String,
    /// The client's DUID, hex.
    pub duid: String,
    /// Whether the server wrote the AAAA and DHCID.
    pub forward: bool,
    /// Whether the server wrote the PTR.
    pub reverse: bool,
    /// When the update that wrote it was queued, seconds since the epoch.
    #[serde(default)]
    pub at: u64,
}

/// One line of the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Line {
    Job(Job),
    Done(u64),
    Owner(Owner),
}

/// The state the file holds.
#[derive(Debug, Default)]
pub struct State {
    /// Updates queued and not done, in order.
    pub pending: Vec<Job>,
    /// Names written, by address.
    pub owners: HashMap<Ipv6Addr, Owner>,
    /// The next job number.
    pub next_id: u64,
    /// Lines that could not be read (a torn last line after a crash).
    pub unreadable: usize,
}

impl State {
    /// Applies a queued job to the owners (what the records will be once it is done).
    pub fn apply(&mut self, job: &Job) {
        match &job.kind {
            JobKind::Bind { addresses, stale } => {
                for address in stale {
                    if self
                        .owners
                        .get(address)
                        .is_some_and(|owner| owner.duid == job.duid)
                    {
                        self.owners.remove(address);
                    }
                }
                for &address in addresses {
                    self.owners.insert(
                        address,
                        Owner {
                            address,
                            link: job.link.clone(),
                            name: job.name.clone(),
                            duid: job.duid.clone(),
                            forward: job.forward,
                            reverse: job.reverse,
                            at: job.at,
                        },
                    );
                }
            }
            JobKind::Remove { address } => {
                self.owners.remove(address);
            }
        }
    }
}

/// The open file.
#[derive(Debug)]
pub struct PendingFile {
    path: PathBuf,
    file: std::io::BufWriter<File>,
    dirty: bool,
}

impl PendingFile {
    /// Reads `path` (absent: empty), rewrites it compacted (the owners and the pending jobs,
    /// through a temporary file renamed over it) and opens it for appending.
    pub fn open(path: &Path) -> std::io::Result<(Self, State)> {
        let mut state = State::default();
        let mut jobs: BTreeMap<u64, Job> = BTreeMap::new();
        match File::open(path) {
            Ok(file) => {
                for line in BufReader::new(file).lines() {
                    let line = line?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<Line>(&line) {
                        Ok(Line::Job(job)) => {
                            state.next_id = state.next_id.max(job.id + 1);
                            state.apply(&job);
                            jobs.insert(job.id, job);
                        }
                        Ok(Line::Done(id)) => {
                            jobs.remove(&id);
                        }
                        Ok(Line::Owner(owner)) => {
                            state.owners.insert(owner.address, owner);
                        }
                        Err(_) => state.unreadable += 1,
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        state.pending = jobs.into_values().collect();
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        {
            let mut out = std::io::BufWriter::new(File::create(&temporary)?);
            let mut owners: Vec<&Owner> = state.owners.values().collect();
            owners.sort_by_key(|owner| owner.address);
            for owner in owners {
                write_line(&mut out, &Line::Owner(owner.clone()))?;
            }
            for job in &state.pending {
                write_line(&mut out, &Line::Job(job.clone()))?;
            }
            out.flush()?;
            out.get_ref().sync_all()?;
        }
        std::fs::rename(&temporary, path)?;
        if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty()) {
            File::open(folder)?.sync_all()?;
        }
        let file = std::io::BufWriter::new(OpenOptions::new().append(true).open(path)?);
        Ok((
            Self {
                path: path.to_owned(),
                file,
                dirty: false,
            },
            state,
        ))
    }

    /// Appends a queued job.
    pub fn job(&mut self, job: &Job) -> std::io::Result<()> {
        self.dirty = true;
        write_line(&mut self.file, &Line::Job(job.clone()))
    }

    /// Appends the end of a job.
    pub fn done(&mut self, id: u64) -> std::io::Result<()> {
        self.dirty = true;
        write_line(&mut self.file, &Line::Done(id))
    }

    /// Writes out and syncs what was appended since the last sync.
    pub fn sync(&mut self) -> std::io::Result<()> {
        if std::mem::take(&mut self.dirty) {
            self.file.flush()?;
            self.file.get_ref().sync_data()?;
        }
        Ok(())
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn write_line(out: &mut impl Write, line: &Line) -> std::io::Result<()> {
    let mut text = serde_json::to_vec(line).map_err(std::io::Error::other)?;
    text.push(b'\n');
    out.write_all(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64, kind: JobKind) -> Job {
        Job {
            id,
            link: "lan".into(),
            name: "pc.example.net.".into(),
            duid: "000300010102030405".into(),
            forward: true,
            reverse: true,
            kind,
            at: 1_800_000_000,
        }
    }

    #[test]
    fn pending_jobs_and_owners_survive_a_restart() {
        let folder = std::env::temp_dir().join(format!("xdhcp6-ddns-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join("leases.journal.ddns");
        let _ = std::fs::remove_file(&path);
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8::2".parse().unwrap();
        {
            let (mut file, mut state) = PendingFile::open(&path).unwrap();
            assert!(state.pending.is_empty());
            let first = job(
                0,
                JobKind::Bind {
                    addresses: vec![a],
                    stale: vec![],
                },
            );
            let second = job(
                1,
                JobKind::Bind {
                    addresses: vec![b],
                    stale: vec![a],
                },
            );
            for j in [&first, &second] {
                state.apply(j);
                file.job(j).unwrap();
            }
            file.done(0).unwrap();
            file.sync().unwrap();
            // A line torn by a crash.
            file.file.write_all(b"{\"job\":{\"id\":7").unwrap();
            file.file.flush().unwrap();
        }
        let (_, state) = PendingFile::open(&path).unwrap();
        assert_eq!(state.unreadable, 1);
        assert_eq!(state.pending.len(), 1);
        assert_eq!(state.pending[0].id, 1);
        assert_eq!(state.next_id, 2);
        assert!(!state.owners.contains_key(&a));
        assert_eq!(state.owners[&b].name, "pc.example.net.");
        // Compacted: read again, the same.
        let (_, again) = PendingFile::open(&path).unwrap();
        assert_eq!(again.unreadable, 0);
        assert_eq!(again.pending, state.pending);
        assert_eq!(again.owners, state.owners);
        std::fs::remove_dir_all(&folder).unwrap();
    }
}
