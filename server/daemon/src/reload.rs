//! Live reload: the engine the workers answer with, and the [`Reloader`] that replaces it.
//!
//! [`Live`] holds the current engine in an `ArcSwap`. Every datapath worker and the timer
//! take it once per batch ([`EngineSource`]), so a batch is answered by one configuration
//! from its first packet to its last, and a reload costs the hot path one atomic load per
//! batch.
//!
//! [`Reloader::reload`] (SIGHUP, the control API) reads the configuration file with the
//! start-up loader (server DUID included) and the runtime reservations file, checks what
//! cannot change without a restart, lines the new links up with the running ones
//! (`Config::aligned_to`: a link name keeps its id, a link taken out stays as a retired
//! placeholder), builds the new engine over the same lease table (`Engine::reloaded`) and
//! swaps it in. Any error leaves the running engine serving and names the file, the field
//! and the problem.
//!
//! Runtime reservations (added and removed through the control API) live in their own TOML
//! file, `<journal folder>/reservations.toml` by default, with the `[[reservation]]` syntax of
//! the configuration file; they are merged with the configuration's reservations at start-up
//! and on every reload. A change is validated by building the new engine first; the file is
//! then written atomically and the engine swapped in, so a refused change leaves the file as
//! it was.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write as _;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use xdhcp6_engine::Engine;
use xdhcp6_engine::config::{Config, ConfigError, DdnsSettings, Link};

use crate::journal::{Journal, LinkNames};
use crate::runtime::Datapath;

/// The runtime reservations file's name, in the journal's folder, when `--reservations` is
/// not given.
pub const RESERVATIONS_FILE: &str = "reservations.toml";

/// The runtime reservations file for a journal at `journal`.
pub fn default_reservations(journal: &Path) -> PathBuf {
    match journal.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder.join(RESERVATIONS_FILE),
        _ => PathBuf::from(RESERVATIONS_FILE),
    }
}

// ---------------------------------------------------------------------------------------------
// The engine handle.

/// The engine that answers now; a reload replaces it whole.
pub struct Live {
    engine: ArcSwap<Engine>,
    generation: AtomicU64,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl Live {
    /// A handle serving `engine`, generation 1.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine: ArcSwap::new(engine),
            generation: AtomicU64::new(1),
        }
    }

    /// The engine serving now.
    pub fn load(&self) -> Arc<Engine> {
        self.engine.load_full()
    }

    /// How many configurations were served so far: 1 at start-up, one more per reload.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Serves `engine` from the next batch on; returns the new generation.
    pub fn replace(&self, engine: Arc<Engine>) -> u64 {
        self.engine.store(engine);
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }
}

/// Where a datapath worker takes its engine from, once per batch: a fixed engine, or the
/// [`Live`] handle a reload replaces.
pub trait EngineSource: Send + Sync {
    /// The engine, held for one batch.
    type Current<'a>: Deref<Target = Engine>
    where
        Self: 'a;

    /// The engine serving now.
    fn current(&self) -> Self::Current<'_>;
}

impl EngineSource for Engine {
    type Current<'a> = &'a Engine;

    fn current(&self) -> &Engine {
        self
    }
}

impl EngineSource for Arc<Engine> {
    type Current<'a> = &'a Engine;

    fn current(&self) -> &Engine {
        self
    }
}

impl EngineSource for Live {
    type Current<'a> = Arc<Engine>;

    fn current(&self) -> Arc<Engine> {
        self.load()
    }
}

// ---------------------------------------------------------------------------------------------
// Runtime reservations.

/// A reservation added at runtime: the keys of a `[[reservation]]` entry of the configuration
/// file (kebab-case in TOML and JSON alike), with exactly one client key.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuntimeReservation {
    /// The client's DUID, colon-separated hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duid: Option<String>,
    /// The RFC 6939 client link-layer address, colon-separated hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hw_address: Option<String>,
    /// Its hardware type (default 1, Ethernet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hw_type: Option<u16>,
    /// The cable modem MAC a CMTS relays in its CableLabs vendor option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cm_mac: Option<String>,
    /// The Subscriber-ID (RFC 4580) a relay adds: text, or `{ hex = "..." }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_id: Option<toml::Value>,
    /// The Remote-ID (RFC 4649) a relay adds: hex of the option body, enterprise number first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    /// The Interface-Id of the relay closest to the client (with `link`): text, or
    /// `{ hex = "..." }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_id: Option<toml::Value>,
    /// The IA_NA address, inside a pool prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The IA_PD prefix, of a pd-pool's delegated length, inside its prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The only link where it applies (by name); any link when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Options of this client only: the keys of `[options]` (`[reservation.options]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<toml::Table>,
}

/// Which client a runtime reservation is for: the key [`Reloader::remove_reservation`]
/// looks it up by. Exactly one of `duid`, `hw-address` (with `hw-type`, default 1),
/// `cm-mac`, `subscriber-id`, `remote-id` or `interface-id` (with the `link` it was
/// reserved on).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReservationClient {
    /// The client's DUID, hex (colons optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duid: Option<String>,
    /// The client's link-layer address, hex (colons optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hw_address: Option<String>,
    /// Its hardware type (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hw_type: Option<u16>,
    /// The cable modem MAC, hex (colons optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cm_mac: Option<String>,
    /// The Subscriber-ID: text, or `{ hex = "..." }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_id: Option<toml::Value>,
    /// The Remote-ID, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    /// The Interface-Id: text, or `{ hex = "..." }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_id: Option<toml::Value>,
    /// The link of an Interface-Id reservation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl ReservationClient {
    /// How many client keys this names (a removal needs exactly one).
    pub fn keys(&self) -> usize {
        [
            self.duid.is_some(),
            self.hw_address.is_some(),
            self.cm_mac.is_some(),
            self.subscriber_id.is_some(),
            self.remote_id.is_some(),
            self.interface_id.is_some(),
        ]
        .into_iter()
        .filter(|named| *named)
        .count()
    }

    /// Whether `reservation` is for this client (hex compared as bytes, colons and case
    /// aside).
    pub fn matches(&self, reservation: &RuntimeReservation) -> bool {
        if self.keys() != 1 {
            return false;
        }
        let hex = |mine: &Option<String>, theirs: &Option<String>| match (mine, theirs) {
            (Some(mine), Some(theirs)) => same_hex(mine, theirs),
            _ => false,
        };
        if self.duid.is_some() {
            hex(&self.duid, &reservation.duid)
        } else if self.hw_address.is_some() {
            hex(&self.hw_address, &reservation.hw_address)
                && reservation.hw_type.unwrap_or(1) == self.hw_type.unwrap_or(1)
        } else if self.cm_mac.is_some() {
            hex(&self.cm_mac, &reservation.cm_mac)
        } else if self.remote_id.is_some() {
            hex(&self.remote_id, &reservation.remote_id)
        } else if let Some(id) = &self.subscriber_id {
            reservation
                .subscriber_id
                .as_ref()
                .is_some_and(|own| same_id(own, id))
        } else if let Some(id) = &self.interface_id {
            reservation
                .interface_id
                .as_ref()
                .is_some_and(|own| same_id(own, id))
                && reservation.link == self.link
        } else {
            false
        }
    }
}

/// The client key a removal names, for its errors.
fn client_key_name(client: &ReservationClient) -> &'static str {
    if client.duid.is_some() {
        "duid"
    } else if client.hw_address.is_some() {
        "hw-address"
    } else if client.cm_mac.is_some() {
        "cm-mac"
    } else if client.subscriber_id.is_some() {
        "subscriber-id"
    } else if client.remote_id.is_some() {
        "remote-id"
    } else {
        "interface-id"
    }
}

/// Whether two identifiers written as text or `{ hex = "..." }` are the same bytes.
fn same_id(a: &toml::Value, b: &toml::Value) -> bool {
    fn bytes(value: &toml::Value) -> Option<Vec<u8>> {
        match value {
            toml::Value::String(text) => Some(text.as_bytes().to_vec()),
            toml::Value::Table(table) => {
                let digits: String = table
                    .get("hex")?
                    .as_str()?
                    .chars()
                    .filter(|c| *c != ':' && !c.is_whitespace())
                    .collect();
                (0..digits.len())
                    .step_by(2)
                    .map(|at| {
                        digits
                            .get(at..at + 2)
                            .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                    })
                    .collect()
            }
            _ => None,
        }
    }
    matches!((bytes(a), bytes(b)), (Some(a), Some(b)) if a == b)
}

/// The runtime reservations file: `[[reservation]]` entries only.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ReservationsFile {
    #[serde(default)]
    reservation: Vec<RuntimeReservation>,
}

fn same_hex(a: &str, b: &str) -> bool {
    let digits = |text: &str| -> String {
        text.chars()
            .filter(|c| *c != ':' && !c.is_whitespace())
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    digits(a) == digits(b)
}

// ---------------------------------------------------------------------------------------------
// Reports and errors.

/// What a reload changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReloadReport {
    /// The configuration generation now served (1 at start-up).
    pub generation: u64,
    /// Links the new configuration adds, or brings back, by name.
    pub links_added: Vec<String>,
    /// Links it no longer has: retired, their leases kept until they expire.
    pub links_retired: Vec<String>,
    /// Links whose settings changed (pools, options, selection, limits).
    pub links_changed: Vec<String>,
    /// Pools new or changed, as `link "NAME" pool PREFIX range RANGE` (`pd-pool` for IA_PD);
    /// their counters start from the table.
    pub pools_changed: Vec<String>,
    /// Reservations served, from the file and the runtime reservations together.
    pub reservations: usize,
    /// Of those, runtime reservations.
    pub runtime_reservations: usize,
    /// Leases of the journal held over for links the configuration lacked, loaded into the
    /// table because this reload adds their link.
    pub leases_loaded: usize,
    /// Of those, leases not loaded: another client holds the address, or the table is full.
    pub lease_conflicts: usize,
}

/// Why a reload (or a runtime reservation change) was refused; the running configuration
/// keeps serving.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct ReloadError {
    /// The file at fault: the configuration or the runtime reservations file.
    pub file: String,
    /// The field, as in configuration errors (`link[1].pool[0].range`); empty for the whole
    /// file.
    pub field: String,
    /// What is wrong.
    pub problem: String,
    /// Changes that only a restart applies; the reload is refused when there is any.
    pub restart_required: Vec<String>,
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.file)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.problem)?;
        if !self.restart_required.is_empty() {
            write!(f, ": {}", self.restart_required.join("; "))?;
        }
        Ok(())
    }
}

impl From<ConfigError> for ReloadError {
    fn from(error: ConfigError) -> Self {
        let mut problem = error.problem().to_owned();
        if let Some((line, column)) = error.line_column() {
            problem.push_str(&format!(" (line {line}, column {column})"));
        }
        Self {
            file: error.file().to_owned(),
            field: error.field().to_owned(),
            problem,
            restart_required: Vec::new(),
        }
    }
}

impl ReloadError {
    fn new(file: &Path, field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            file: file.display().to_string(),
            field: field.into(),
            problem: problem.into(),
            restart_required: Vec::new(),
        }
    }
}

/// Reload counts, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReloadCounts {
    /// Reloads that swapped a new engine in.
    pub ok: u64,
    /// Reloads refused (the old configuration kept serving).
    pub failed: u64,
    /// The configuration generation served.
    pub generation: u64,
}

// ---------------------------------------------------------------------------------------------
// The reloader.

/// What only a restart changes, as the server started.
#[derive(Debug)]
struct Fixed {
    /// Interfaces the datapath listens on (group joins, XDP attachments).
    interfaces: BTreeSet<String>,
}

/// Reloads the configuration into a [`Live`] handle; one reload at a time.
pub struct Reloader {
    config: PathBuf,
    reservations: PathBuf,
    datapath: Datapath,
    live: Arc<Live>,
    journal: Option<Arc<Journal>>,
    fixed: Fixed,
    /// Held for a whole reload or reservation change.
    busy: Mutex<()>,
    ok: AtomicU64,
    failed: AtomicU64,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("config", &self.config)
            .field("reservations", &self.reservations)
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// A reloader for the server that started from `config` (merged with the runtime
    /// reservations file `reservations`) on `datapath`, serving through `live`; `journal`
    /// learns the names of links a reload adds.
    pub fn new(
        config: PathBuf,
        reservations: PathBuf,
        datapath: Datapath,
        live: Arc<Live>,
        journal: Option<Arc<Journal>>,
    ) -> Self {
        let fixed = Fixed {
            interfaces: listened(live.load().config(), datapath),
        };
        Self {
            config,
            reservations,
            datapath,
            live,
            journal,
            fixed,
            busy: Mutex::new(()),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// The engine handle.
    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }

    /// The configuration file.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The runtime reservations file.
    pub fn reservations_path(&self) -> &Path {
        &self.reservations
    }

    /// Reloads so far, and the generation served.
    pub fn counts(&self) -> ReloadCounts {
        ReloadCounts {
            ok: self.ok.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            generation: self.live.generation(),
        }
    }

    /// Reads the configuration and the runtime reservations again and serves them from the
    /// next batch on; on error the running configuration keeps serving.
    pub fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let _busy = lock(&self.busy);
        let result = self
            .read_reservations()
            .and_then(|runtime| self.apply(&runtime, false));
        self.count(result)
    }

    /// The runtime reservations, as in their file.
    pub fn runtime_reservations(&self) -> Result<Vec<RuntimeReservation>, ReloadError> {
        let _busy = lock(&self.busy);
        self.read_reservations()
    }

    /// Adds a runtime reservation: validated with the configuration, written to the runtime
    /// reservations file, then served (a reload). A reservation for a client the
    /// configuration file or the runtime file already reserves is refused, naming both.
    pub fn add_reservation(
        &self,
        reservation: RuntimeReservation,
    ) -> Result<ReloadReport, ReloadError> {
        let _busy = lock(&self.busy);
        let result = self.read_reservations().and_then(|mut runtime| {
            runtime.push(reservation);
            self.apply(&runtime, true)
        });
        self.count(result)
    }

    /// Removes the runtime reservation of `client`, writes the file and reloads.
    pub fn remove_reservation(
        &self,
        client: &ReservationClient,
    ) -> Result<ReloadReport, ReloadError> {
        let _busy = lock(&self.busy);
        if client.keys() != 1 {
            let error = ReloadError::new(
                &self.reservations,
                "duid",
                "name the client by exactly one of duid, hw-address, cm-mac, subscriber-id, \
                 remote-id or interface-id (with its link)",
            );
            return self.count(Err(error));
        }
        let result = self.read_reservations().and_then(|mut runtime| {
            let before = runtime.len();
            runtime.retain(|reservation| !client.matches(reservation));
            if runtime.len() == before {
                let field = client_key_name(client);
                return Err(ReloadError::new(
                    &self.reservations,
                    field,
                    "no runtime reservation for this client (reservations of the \
                     configuration file are changed there)",
                ));
            }
            self.apply(&runtime, true)
        });
        self.count(result)
    }

    fn count(
        &self,
        result: Result<ReloadReport, ReloadError>,
    ) -> Result<ReloadReport, ReloadError> {
        match &result {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
        result
    }

    /// Reads the runtime reservations file; a missing file holds none.
    fn read_reservations(&self) -> Result<Vec<RuntimeReservation>, ReloadError> {
        read_reservations(&self.reservations)
    }

    /// Builds the engine for the configuration file with `runtime` reservations; with
    /// `write`, writes them to their file; then swaps the engine in.
    fn apply(
        &self,
        runtime: &[RuntimeReservation],
        write: bool,
    ) -> Result<ReloadReport, ReloadError> {
        let next = load(&self.config, &self.reservations, runtime)?;
        let running = self.live.load();
        let current = running.config();
        let restart = self.restart_required(current, &next);
        if !restart.is_empty() {
            return Err(ReloadError {
                file: self.config.display().to_string(),
                field: String::new(),
                problem: "restart required".into(),
                restart_required: restart,
            });
        }
        let aligned = next.aligned_to(current)?;
        let mut report = diff(current, &aligned);
        report.reservations = aligned.reservations.len();
        report.runtime_reservations = runtime.len();
        let names = LinkNames::of(&aligned);
        let engine = running
            .reloaded(Arc::new(aligned))
            .map_err(|error| ReloadError::new(&self.config, "", error.to_string()))?;
        if write {
            write_reservations(&self.reservations, runtime)?;
        }
        // Names of new links before any event on them: ids only ever get added, so records
        // already queued keep theirs.
        if let Some(journal) = &self.journal {
            journal.set_links(names);
            // Leases of the journal whose link was missing: loaded before the swap, so that
            // the first batch answered with the new links finds them. No worker can touch
            // them meanwhile: the running engine has no link they are on.
            let held = journal.take_placed();
            if !held.is_empty() {
                let restored = engine.restore(held);
                report.leases_loaded = restored.loaded;
                report.lease_conflicts = restored.conflicts;
            }
        }
        report.generation = self.live.replace(engine);
        Ok(report)
    }

    /// What in `next` differs from the running `current` in a way only a restart applies.
    fn restart_required(&self, current: &Config, next: &Config) -> Vec<String> {
        let mut changes = Vec::new();
        let (old, new) = (&current.server, &next.server);
        if old.salt != new.salt {
            changes.push(
                "server.salt changed (every allocation hash and the lease table's key)".into(),
            );
        }
        if old.duid != new.duid {
            changes.push("server.duid changed (the Server Identifier of every reply)".into());
        }
        if old.expected_leases != new.expected_leases {
            changes.push(format!(
                "server.expected-leases changed ({} to {}; the lease table is sized at start)",
                old.expected_leases, new.expected_leases
            ));
        }
        for (index, link) in next.links.iter().enumerate() {
            let added: Vec<&str> = link_interfaces(link, self.datapath)
                .filter(|name| !self.fixed.interfaces.contains(*name))
                .collect();
            if !added.is_empty() {
                changes.push(format!(
                    "link[{index}] \"{}\" interfaces changed ({} added; the server listens \
                     only on the interfaces it started with)",
                    link.name,
                    added.join(", ")
                ));
            }
        }
        for (index, link) in next.links.iter().enumerate() {
            let old = current
                .links
                .iter()
                .find(|old| old.name == link.name)
                .and_then(|old| old.ddns.as_deref());
            changes.extend(ddns_changes(index, link, old));
        }
        if self.datapath == Datapath::Xdp {
            let added: Vec<&String> = new
                .relay_interfaces
                .iter()
                .filter(|name| !self.fixed.interfaces.contains(*name))
                .collect();
            if !added.is_empty() {
                changes.push(format!(
                    "server.relay-interfaces changed ({} added; the XDP program is attached at \
                     start)",
                    added
                        .iter()
                        .map(|name| name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        changes
    }
}

/// What of `link`'s `[link.ddns]` (at `link[index]` of the new file) differs from the running
/// `old` in the part the DNS updater reads at start: whether the link has DNS updates, its
/// zones, servers, key file, TTL and `identical-peers`. The rest (the Client FQDN policy and
/// names) is the engine's and reloads.
fn ddns_changes(index: usize, link: &Link, old: Option<&DdnsSettings>) -> Vec<String> {
    const WHY: &str = "the DNS updater reads [link.ddns] at start";
    let field = |name: &str| {
        format!(
            "link[{index}] \"{}\" ddns.{name} changed ({WHY})",
            link.name
        )
    };
    match (old, link.ddns.as_deref()) {
        (None, None) => Vec::new(),
        (None, Some(_)) => vec![format!(
            "link[{index}] \"{}\" ddns added ({WHY})",
            link.name
        )],
        (Some(_), None) => vec![format!(
            "link[{index}] \"{}\" ddns removed ({WHY})",
            link.name
        )],
        (Some(old), Some(new)) => {
            let mut changes = Vec::new();
            if old.forward_zone != new.forward_zone {
                changes.push(field("forward-zone"));
            }
            if old.reverse_zone != new.reverse_zone {
                changes.push(field("reverse-zone"));
            }
            if old.servers != new.servers {
                changes.push(field("servers"));
            }
            if old.tsig_key_file != new.tsig_key_file {
                changes.push(field("tsig-key-file"));
            }
            if old.ttl != new.ttl {
                changes.push(field("ttl"));
            }
            if old.identical_peers != new.identical_peers {
                changes.push(field("identical-peers"));
            }
            changes
        }
    }
}

/// The interface names of `link` the datapath listens on: UDP joins the groups on untagged
/// interfaces only (it sees VLANs as interfaces of their own), XDP attaches to every one.
fn link_interfaces(link: &Link, datapath: Datapath) -> impl Iterator<Item = &str> {
    link.interfaces
        .iter()
        .filter(move |selector| datapath == Datapath::Xdp || selector.vlan.is_none())
        .map(|selector| selector.name.as_str())
}

/// Every interface the server listens on for `config`.
fn listened(config: &Config, datapath: Datapath) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = config
        .links
        .iter()
        .flat_map(|link| link_interfaces(link, datapath))
        .map(str::to_owned)
        .collect();
    if datapath == Datapath::Xdp {
        names.extend(config.server.relay_interfaces.iter().cloned());
    }
    names
}

/// What `next` (aligned to `current`) changes, links and pools.
fn diff(current: &Config, next: &Config) -> ReloadReport {
    let mut report = ReloadReport::default();
    for link in &next.links {
        let old = current.links.get(link.id.index());
        match old {
            None if !link.retired => report.links_added.push(link.name.clone()),
            None => {}
            Some(old) if old.retired && !link.retired => report.links_added.push(link.name.clone()),
            Some(old) if !old.retired && link.retired => {
                report.links_retired.push(link.name.clone())
            }
            Some(old) if old != link && !link.retired => {
                report.links_changed.push(link.name.clone())
            }
            Some(_) => {}
        }
        if link.retired {
            continue;
        }
        let kept = |kind: &str, prefix: String, range: String| {
            format!("link \"{}\" {kind} {prefix} range {range}", link.name)
        };
        for pool in &link.na_pools {
            let same = old.is_some_and(|old| !old.retired && old.na_pools.contains(pool));
            if !same {
                report.pools_changed.push(kept(
                    "pool",
                    pool.prefix.to_string(),
                    pool.range.to_string(),
                ));
            }
        }
        for pool in &link.pd_pools {
            let same = old.is_some_and(|old| !old.retired && old.pd_pools.contains(pool));
            if !same {
                report.pools_changed.push(kept(
                    "pd-pool",
                    pool.prefix.to_string(),
                    pool.range.to_string(),
                ));
            }
        }
    }
    report
}

/// Reads the configuration at `config` with the runtime reservations `runtime` (those of the
/// file at `reservations`) added to its own, as start-up and every reload do: the start-up
/// loader, server DUID included. An error in a runtime reservation names the reservations
/// file and its index there.
pub fn load(
    config: &Path,
    reservations: &Path,
    runtime: &[RuntimeReservation],
) -> Result<Config, ReloadError> {
    load_with(config, reservations, runtime, crate::config::from_text)
}

/// [`load`] without the server DUID's resolution, which may write a `duid-file`: what
/// `xdhcp6d check-config` validates.
pub fn check(
    config: &Path,
    reservations: &Path,
    runtime: &[RuntimeReservation],
) -> Result<Config, ReloadError> {
    load_with(config, reservations, runtime, |path, text| {
        Config::from_toml_str(text, &path.display().to_string())
    })
}

fn load_with(
    config: &Path,
    reservations: &Path,
    runtime: &[RuntimeReservation],
    parse: impl Fn(&Path, &str) -> Result<Config, ConfigError>,
) -> Result<Config, ReloadError> {
    let text = fs::read_to_string(config)
        .map_err(|error| ReloadError::new(config, "", format!("cannot read: {error}")))?;
    if runtime.is_empty() {
        return Ok(parse(config, &text)?);
    }
    // How many reservations the file has, to tell its errors from the runtime ones.
    let own = match text.parse::<toml::Table>() {
        Ok(table) => table
            .get("reservation")
            .and_then(toml::Value::as_array)
            .map_or(0, Vec::len),
        // The loader below reports the syntax error.
        Err(_) => return Ok(parse(config, &text)?),
    };
    let extra = toml::to_string(&ReservationsFile {
        reservation: runtime.to_vec(),
    })
    .map_err(|error| ReloadError::new(reservations, "", error.to_string()))?;
    let merged = format!("{text}\n{extra}");
    parse(config, &merged).map_err(|error| {
        let mut error = ReloadError::from(error);
        relocate(&mut error, own, config, reservations);
        error
    })
}

/// Rewrites an error of the merged text that lies in a runtime reservation (index `own` or
/// more) to name the reservations file and the index there, and the configuration file for
/// the reservations it clashes with.
fn relocate(error: &mut ReloadError, own: usize, config: &Path, reservations: &Path) {
    let Some(index) = reservation_index(&error.field) else {
        return;
    };
    if index < own {
        return;
    }
    let rest = error.field[error.field.find(']').map_or(0, |end| end + 1)..].to_owned();
    error.field = format!("reservation[{}]{rest}", index - own);
    error.file = reservations.display().to_string();
    // "already reserved by reservation[j]": say which file j is in.
    if let Some(start) = error.problem.find("reservation[")
        && let Some(other) = reservation_index(&error.problem[start..])
    {
        let end = start + error.problem[start..].find(']').map_or(0, |end| end + 1);
        let place = if other < own {
            format!("reservation[{other}] of {}", config.display())
        } else {
            format!("reservation[{}] of {}", other - own, reservations.display())
        };
        error.problem.replace_range(start..end, &place);
    }
}

/// `N` of a text starting `reservation[N]`.
fn reservation_index(text: &str) -> Option<usize> {
    let rest = text.strip_prefix("reservation[")?;
    rest[..rest.find(']')?].parse().ok()
}

/// The runtime reservations in the file at `path`; none when it does not exist.
pub fn read_reservations(path: &Path) -> Result<Vec<RuntimeReservation>, ReloadError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(ReloadError::new(path, "", format!("cannot read: {error}")));
        }
    };
    toml::from_str::<ReservationsFile>(&text)
        .map(|file| file.reservation)
        .map_err(|error| {
            let mut problem = error.message().trim_end().to_owned();
            if let Some(span) = error.span() {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                problem.push_str(&format!(" (line {line})"));
            }
            ReloadError::new(path, "", problem)
        })
}

/// Writes `runtime` to `path` atomically: a temporary file next to it, synced, renamed over
/// it, and the folder synced.
fn write_reservations(path: &Path, runtime: &[RuntimeReservation]) -> Result<(), ReloadError> {
    let text = toml::to_string(&ReservationsFile {
        reservation: runtime.to_vec(),
    })
    .map_err(|error| ReloadError::new(path, "", error.to_string()))?;
    let failed = |what: &str| {
        let what = what.to_owned();
        move |error: std::io::Error| ReloadError::new(path, "", format!("{what}: {error}"))
    };
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&folder).map_err(failed("cannot create its folder"))?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = File::create(&temporary).map_err(failed("cannot write"))?;
    file.write_all(
        b"# Runtime reservations (xdhcp6d control API), merged with the configuration's.\n",
    )
    .and_then(|()| file.write_all(text.as_bytes()))
    .and_then(|()| file.sync_all())
    .map_err(failed("cannot write"))?;
    drop(file);
    fs::rename(&temporary, path).map_err(failed("cannot rename the new file over it"))?;
    File::open(&folder)
        .and_then(|folder| folder.sync_all())
        .map_err(failed("cannot sync its folder"))?;
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use xdhcp6_engine::alloc::SaltKey;
    use xdhcp6_engine::config::LinkId;
    use xdhcp6_engine::table::LeaseTable;

    use super::*;

    const CONFIG: &str = r#"
[server]
duid = "00:01:00:01:2e:00:00:09:02:00:00:00:00:07"
salt = "reload"

[[link]]
name = "cmts-1"
interfaces = ["eth1"]

[[link.pool]]
prefix = "2001:db8:1::/64"

[[link]]
name = "cmts-2"
interfaces = ["eth2"]

[[link.pool]]
prefix = "2001:db8:2::/64"

[[reservation]]
duid = "00:03:00:01:02:00:00:00:00:01"
address = "2001:db8:1::100"
"#;

    struct Setup {
        folder: PathBuf,
        config: PathBuf,
        reloader: Reloader,
    }

    fn setup(name: &str) -> Setup {
        let folder =
            std::env::temp_dir().join(format!("xdhcp6d-reload-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&folder);
        fs::create_dir_all(&folder).unwrap();
        let config = folder.join("xdhcp6.toml");
        fs::write(&config, CONFIG).unwrap();
        let reservations = folder.join(RESERVATIONS_FILE);
        let loaded = load(&config, &reservations, &[]).unwrap();
        let table = Arc::new(LeaseTable::with_capacity(
            1024,
            SaltKey::from_salt(&loaded.server.salt),
        ));
        let engine = Arc::new(Engine::new(Arc::new(loaded), table).unwrap());
        let live = Arc::new(Live::new(engine));
        let reloader = Reloader::new(config.clone(), reservations, Datapath::Udp, live, None);
        Setup {
            folder,
            config,
            reloader,
        }
    }

    impl Drop for Setup {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.folder);
        }
    }

    fn reservation(duid: &str, address: &str) -> RuntimeReservation {
        RuntimeReservation {
            duid: Some(duid.into()),
            address: Some(address.into()),
            ..RuntimeReservation::default()
        }
    }

    #[test]
    fn a_valid_change_is_served_from_the_next_generation() {
        let s = setup("valid");
        let before = s.reloader.live().load();
        let text = CONFIG
            .replace(
                "\"cmts-1\"\ninterfaces = [\"eth1\"]\n",
                "\"cmts-1\"\ninterfaces = [\"eth1\"]\npreference = 7\n",
            )
            .replace(
                "prefix = \"2001:db8:2::/64\"\n",
                "prefix = \"2001:db8:2::/64\"\nrange = \"2001:db8:2::/65\"\n",
            );
        fs::write(&s.config, text).unwrap();
        let report = s.reloader.reload().unwrap();
        assert_eq!(report.generation, 2);
        assert_eq!(report.links_changed, ["cmts-1", "cmts-2"]);
        assert_eq!(
            report.pools_changed,
            ["link \"cmts-2\" pool 2001:db8:2::/64 range 2001:db8:2::/65"]
        );
        let after = s.reloader.live().load();
        assert!(!Arc::ptr_eq(&before, &after));
        assert_eq!(after.config().link(LinkId(0)).preference, 7);
        assert!(Arc::ptr_eq(before.table(), after.table()));
        assert_eq!(
            s.reloader.counts(),
            ReloadCounts {
                ok: 1,
                failed: 0,
                generation: 2
            }
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["generation"], 2);
    }

    #[test]
    fn an_invalid_file_keeps_the_running_engine_and_names_file_and_field() {
        let s = setup("invalid");
        let before = s.reloader.live().load();
        fs::write(
            &s.config,
            CONFIG.replace(
                "prefix = \"2001:db8:2::/64\"",
                "prefix = \"2001:db8:2::/129\"",
            ),
        )
        .unwrap();
        let error = s.reloader.reload().unwrap_err();
        assert_eq!(error.file, s.config.display().to_string());
        assert_eq!(error.field, "link[1].pool[0].prefix");
        assert!(!error.problem.is_empty());
        assert!(Arc::ptr_eq(&before, &s.reloader.live().load()));
        assert_eq!(s.reloader.counts().failed, 1);
        assert_eq!(s.reloader.live().generation(), 1);
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(json["field"], "link[1].pool[0].prefix");
    }

    #[test]
    fn restart_only_changes_are_refused_with_the_list() {
        let s = setup("restart");
        let text = CONFIG
            .replace("salt = \"reload\"", "salt = \"other\"")
            .replace(
                "interfaces = [\"eth2\"]",
                "interfaces = [\"eth2\", \"eth3\"]",
            );
        fs::write(&s.config, text).unwrap();
        let error = s.reloader.reload().unwrap_err();
        assert_eq!(error.problem, "restart required");
        assert_eq!(error.restart_required.len(), 2, "{error}");
        assert!(error.restart_required[0].starts_with("server.salt changed"));
        assert!(
            error.restart_required[1]
                .starts_with("link[1] \"cmts-2\" interfaces changed (eth3 added"),
            "{error}"
        );
        assert_eq!(s.reloader.live().generation(), 1);
        // A link moving to an interface the server already listens on needs no restart.
        let swapped = CONFIG
            .replace("interfaces = [\"eth1\"]", "interfaces = [\"eth9\"]")
            .replace("interfaces = [\"eth2\"]", "interfaces = [\"eth1\"]");
        fs::write(&s.config, swapped).unwrap();
        let error = s.reloader.reload().unwrap_err();
        assert_eq!(error.restart_required.len(), 1, "{error}");
        assert!(error.restart_required[0].contains("eth9 added"));
    }

    #[test]
    fn dns_update_changes_the_updater_reads_at_start_are_refused() {
        const DDNS: &str = "\n[link.ddns]\nforward-zone = \"example.net\"\nreverse-zone = \
                            \"ip6.arpa\"\nservers = [\"2001:db8::53\"]\n";
        let with_ddns = CONFIG.replace(
            "prefix = \"2001:db8:1::/64\"\n",
            &format!("prefix = \"2001:db8:1::/64\"\n{DDNS}"),
        );
        let folder =
            std::env::temp_dir().join(format!("xdhcp6d-reload-ddns-{}", std::process::id()));
        let _ = fs::remove_dir_all(&folder);
        fs::create_dir_all(&folder).unwrap();
        let config = folder.join("xdhcp6.toml");
        fs::write(&config, &with_ddns).unwrap();
        let reservations = folder.join(RESERVATIONS_FILE);
        let loaded = load(&config, &reservations, &[]).unwrap();
        assert!(loaded.links[0].ddns.is_some());
        let table = Arc::new(LeaseTable::with_capacity(
            1024,
            SaltKey::from_salt(&loaded.server.salt),
        ));
        let engine = Arc::new(Engine::new(Arc::new(loaded), table).unwrap());
        let reloader = Reloader::new(
            config.clone(),
            reservations,
            Datapath::Udp,
            Arc::new(Live::new(engine)),
            None,
        );

        // The engine's part reloads.
        let policy = with_ddns.replace(
            "servers = [\"2001:db8::53\"]\n",
            "servers = [\"2001:db8::53\"]\noverride-client-update = true\n",
        );
        fs::write(&config, &policy).unwrap();
        reloader.reload().unwrap();

        // The updater's part does not.
        let moved = policy.replace("2001:db8::53", "2001:db8::54").replace(
            "forward-zone = \"example.net\"",
            "forward-zone = \"example.org\"",
        );
        fs::write(&config, moved).unwrap();
        let error = reloader.reload().unwrap_err();
        assert_eq!(error.problem, "restart required");
        assert_eq!(
            error.restart_required,
            [
                "link[0] \"cmts-1\" ddns.forward-zone changed (the DNS updater reads [link.ddns] \
                 at start)",
                "link[0] \"cmts-1\" ddns.servers changed (the DNS updater reads [link.ddns] at \
                 start)"
            ],
            "{error}"
        );
        // Gaining or losing [link.ddns] too.
        fs::write(
            &config,
            policy.replace(
                "prefix = \"2001:db8:2::/64\"\n",
                &format!("prefix = \"2001:db8:2::/64\"\n{DDNS}"),
            ),
        )
        .unwrap();
        let error = reloader.reload().unwrap_err();
        assert_eq!(
            error.restart_required,
            ["link[1] \"cmts-2\" ddns added (the DNS updater reads [link.ddns] at start)"]
        );
        fs::write(&config, CONFIG).unwrap();
        let error = reloader.reload().unwrap_err();
        assert_eq!(
            error.restart_required,
            ["link[0] \"cmts-1\" ddns removed (the DNS updater reads [link.ddns] at start)"]
        );
        assert_eq!(reloader.live().generation(), 2);
        let _ = fs::remove_dir_all(&folder);
    }

    #[test]
    fn runtime_reservations_are_written_served_and_removed() {
        let s = setup("runtime");
        let added = s
            .reloader
            .add_reservation(reservation(
                "00:03:00:01:02:00:00:00:00:02",
                "2001:db8:2::200",
            ))
            .unwrap();
        assert_eq!(added.reservations, 2);
        assert_eq!(added.runtime_reservations, 1);
        let served = s.reloader.live().load();
        let duid = [0, 3, 0, 1, 2, 0, 0, 0, 0, 2];
        assert!(served.config().reservation_for_duid(&duid).is_some());
        // The file holds it, in the configuration's syntax, and reads back.
        let text = fs::read_to_string(s.reloader.reservations_path()).unwrap();
        assert!(text.contains("[[reservation]]"), "{text}");
        assert!(text.contains("address = \"2001:db8:2::200\""), "{text}");
        assert_eq!(
            s.reloader.runtime_reservations().unwrap(),
            [reservation(
                "00:03:00:01:02:00:00:00:00:02",
                "2001:db8:2::200"
            )]
        );
        // A reload (SIGHUP) keeps it.
        s.reloader.reload().unwrap();
        assert!(
            s.reloader
                .live()
                .load()
                .config()
                .reservation_for_duid(&duid)
                .is_some()
        );

        let client = ReservationClient {
            duid: Some("0003000102000000 0002".into()),
            ..ReservationClient::default()
        };
        let removed = s.reloader.remove_reservation(&client).unwrap();
        assert_eq!(removed.runtime_reservations, 0);
        assert!(
            s.reloader
                .live()
                .load()
                .config()
                .reservation_for_duid(&duid)
                .is_none()
        );
        assert!(s.reloader.runtime_reservations().unwrap().is_empty());
        let again = s.reloader.remove_reservation(&client).unwrap_err();
        assert_eq!(again.field, "duid");
        assert!(
            again.problem.starts_with("no runtime reservation"),
            "{again}"
        );
        let neither = s
            .reloader
            .remove_reservation(&ReservationClient::default())
            .unwrap_err();
        assert!(
            neither.problem.contains("exactly one of duid, hw-address"),
            "{neither}"
        );
    }

    #[test]
    fn runtime_reservations_take_the_subscriber_keys_and_their_own_options() {
        let s = setup("subscriber");
        let by_modem: RuntimeReservation = serde_json::from_value(serde_json::json!({
            "cm-mac": "00:11:22:aa:bb:cc",
            "address": "2001:db8:1::300",
            "options": {"dns-servers": ["2001:db8:53::1"]},
        }))
        .unwrap();
        let by_port: RuntimeReservation = serde_json::from_value(serde_json::json!({
            "interface-id": {"hex": "00ff01"},
            "link": "cmts-2",
            "address": "2001:db8:2::301",
        }))
        .unwrap();
        s.reloader.add_reservation(by_modem.clone()).unwrap();
        let added = s.reloader.add_reservation(by_port.clone()).unwrap();
        assert_eq!(added.runtime_reservations, 2);
        let served = s.reloader.live().load();
        let keys: Vec<&str> = served
            .config()
            .reservations
            .iter()
            .map(|reservation| reservation.client.name())
            .collect();
        assert!(
            keys.contains(&"cm-mac") && keys.contains(&"interface-id"),
            "{keys:?}"
        );
        let modem = served
            .config()
            .reservations
            .iter()
            .find(|reservation| reservation.client.name() == "cm-mac")
            .unwrap();
        assert!(
            !modem.options.encoded.is_empty(),
            "the reservation's own options"
        );
        // The file reads back as written, and a restart (a fresh load) serves them again.
        assert_eq!(
            s.reloader.runtime_reservations().unwrap(),
            [by_modem, by_port]
        );
        // Removed by their keys: the Interface-Id with the link it was reserved on.
        let wrong_link = ReservationClient {
            interface_id: Some(toml::Value::String("\u{0}\u{ff}\u{1}".into())),
            link: Some("cmts-1".into()),
            ..ReservationClient::default()
        };
        assert!(s.reloader.remove_reservation(&wrong_link).is_err());
        let port = ReservationClient {
            interface_id: Some(toml::Value::Table(toml::Table::from_iter([(
                "hex".to_owned(),
                toml::Value::String("00:ff:01".into()),
            )]))),
            link: Some("cmts-2".into()),
            ..ReservationClient::default()
        };
        assert_eq!(
            s.reloader
                .remove_reservation(&port)
                .unwrap()
                .runtime_reservations,
            1
        );
        let modem = ReservationClient {
            cm_mac: Some("001122AABBCC".into()),
            ..ReservationClient::default()
        };
        assert_eq!(
            s.reloader
                .remove_reservation(&modem)
                .unwrap()
                .runtime_reservations,
            0
        );
    }

    #[test]
    fn a_runtime_reservation_clashing_with_the_file_is_refused_naming_both_and_changes_nothing() {
        let s = setup("clash");
        s.reloader
            .add_reservation(reservation(
                "00:03:00:01:02:00:00:00:00:02",
                "2001:db8:2::200",
            ))
            .unwrap();
        let before = fs::read(s.reloader.reservations_path()).unwrap();
        // The DUID the configuration file reserves.
        let error = s
            .reloader
            .add_reservation(reservation(
                "00:03:00:01:02:00:00:00:00:01",
                "2001:db8:2::300",
            ))
            .unwrap_err();
        assert_eq!(
            error.file,
            s.reloader.reservations_path().display().to_string()
        );
        assert_eq!(error.field, "reservation[1].duid");
        assert!(
            error
                .problem
                .contains(&format!("reservation[0] of {}", s.config.display())),
            "{error}"
        );
        // An address outside every pool.
        let error = s
            .reloader
            .add_reservation(reservation(
                "00:03:00:01:02:00:00:00:00:03",
                "2001:db8:9::1",
            ))
            .unwrap_err();
        assert_eq!(error.field, "reservation[1].address");
        assert_eq!(fs::read(s.reloader.reservations_path()).unwrap(), before);
        assert_eq!(s.reloader.live().generation(), 2);
    }

    #[test]
    fn a_damaged_reservations_file_is_named() {
        let s = setup("damaged");
        fs::write(
            s.reloader.reservations_path(),
            "[[reservation]]\nduid = 5\n",
        )
        .unwrap();
        let error = s.reloader.reload().unwrap_err();
        assert_eq!(
            error.file,
            s.reloader.reservations_path().display().to_string()
        );
        assert!(error.problem.contains("line 2"), "{error}");
    }
}
