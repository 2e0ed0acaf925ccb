//! Reconfigure from the control API (`POST /v1/reconfigure`, `xdhcp6d ctl reconfigure`): the
//! server's reconfigure key secret and replay counter, kept in the journal's folder, and the
//! sending of a Reconfigure the engine builds (see docs/reconfigure.md).
//!
//! The secret (`reconfigure.key`, 32 random bytes, mode 0600) is made on the first start and
//! read on every later one, so a client's key (derived from it and the client's DUID by the
//! engine) stays the same across restarts. The replay detection counter is written to
//! `reconfigure.counter` before each Reconfigure leaves, and the engine never hands out a
//! value below the time in seconds shifted left by 32 bits, so it keeps increasing across
//! restarts.
//!
//! The control thread sends from a UDP socket of its own (an ephemeral port on `[::]`), never
//! through the datapath's workers: with the AF_XDP datapath too, the kernel routes it. A
//! Renew or Rebind Reconfigure is sent again after 2, 4, 8, ... seconds (RFC 9915 §18.3.11,
//! REC_TIMEOUT and REC_MAX_RC of §7.6) until the client's binding is extended after it was
//! first sent, by a thread of its own, at most [`MAX_RETRANSMITTING`] at once.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use xdhcp6_datapath::os;
use xdhcp6_engine::table::LeaseState;
use xdhcp6_engine::{
    Engine, ReconfigureError, ReconfigureKeys, ReconfigureResult, ReconfigureType, SECRET_LEN,
};

use crate::control::{ApiError, ControlHooks, StatusCode, params};
use crate::reload::{Live, Reloader};

/// The secret's file, in the journal's folder.
pub const SECRET_FILE: &str = "reconfigure.key";

/// The replay counter's file, in the journal's folder.
pub const COUNTER_FILE: &str = "reconfigure.counter";

/// Reconfigure messages being retransmitted at once; further ones are sent once.
pub const MAX_RETRANSMITTING: usize = 256;

/// REC_TIMEOUT (RFC 9915 §7.6): the first wait before a retransmission, doubled each time.
const REC_TIMEOUT: Duration = Duration::from_secs(2);

/// REC_MAX_RC (RFC 9915 §7.6): the most transmissions of one Reconfigure.
const REC_MAX_RC: u32 = 8;

/// The longest Reconfigure: 8 Relay-reply headers with their Interface-Ids around it.
const MAX_LEN: usize = 4096;

/// The folder of the journal at `journal`.
fn folder_of(journal: &Path) -> PathBuf {
    match journal.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Reads the reconfigure key secret and counter from the journal's folder, making the secret
/// (0600) on the first start.
pub fn load_keys(journal: &Path) -> anyhow::Result<Arc<ReconfigureKeys>> {
    let folder = folder_of(journal);
    fs::create_dir_all(&folder)
        .with_context(|| format!("creating the journal folder {}", folder.display()))?;
    let path = folder.join(SECRET_FILE);
    let secret = match fs::read(&path) {
        Ok(bytes) => {
            let Ok(secret) = <[u8; SECRET_LEN]>::try_from(bytes.as_slice()) else {
                bail!(
                    "{}: the reconfigure key secret is {} bytes, not {SECRET_LEN} (remove the \
                     file to make a new one; clients then get new keys)",
                    path.display(),
                    bytes.len()
                );
            };
            if let Ok(meta) = fs::metadata(&path)
                && meta.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{:o}", meta.permissions().mode() & 0o777),
                    "the reconfigure key secret is readable by others than its owner"
                );
            }
            secret
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => create_secret(&path)?,
        Err(error) => {
            return Err(error).with_context(|| format!("reading {}", path.display()));
        }
    };
    let counter = folder.join(COUNTER_FILE);
    let floor = match fs::read_to_string(&counter) {
        Ok(text) => text.trim().parse::<u64>().with_context(|| {
            format!(
                "{}: the reconfigure replay counter is not a number",
                counter.display()
            )
        })?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
        Err(error) => return Err(error).with_context(|| format!("reading {}", counter.display())),
    };
    Ok(Arc::new(ReconfigureKeys::new(secret, floor)))
}

fn create_secret(path: &Path) -> anyhow::Result<[u8; SECRET_LEN]> {
    let mut secret = [0; SECRET_LEN];
    File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut secret))
        .context("reading /dev/urandom for the reconfigure key secret")?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(&secret)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), "made the reconfigure key secret");
    Ok(secret)
}

/// Writes the counter file: a temporary file, fsync, rename.
fn persist_counter(path: &Path, value: u64) -> std::io::Result<()> {
    let temporary = path.with_extension("counter.tmp");
    let mut file = File::create(&temporary)?;
    writeln!(file, "{value}")?;
    file.sync_all()?;
    fs::rename(&temporary, path)
}

/// Sends Reconfigure messages for the control API.
pub struct Reconfigurer {
    live: Weak<Live>,
    counter: PathBuf,
    socket: Mutex<Option<Arc<UdpSocket>>>,
    retransmitting: Arc<AtomicUsize>,
    /// Where the retransmission threads run (empty: where they start; see
    /// [`crate::placement`]).
    cores: Vec<usize>,
}

impl Reconfigurer {
    /// A sender for the engines `live` serves, persisting the counter next to `journal`.
    pub fn new(live: &Arc<Live>, journal: &Path) -> Self {
        Self {
            live: Arc::downgrade(live),
            counter: folder_of(journal).join(COUNTER_FILE),
            socket: Mutex::new(None),
            retransmitting: Arc::new(AtomicUsize::new(0)),
            cores: Vec::new(),
        }
    }

    /// Runs the retransmission threads on `cores` (`--service-cores`).
    pub fn with_cores(mut self, cores: Vec<usize>) -> Self {
        self.cores = cores;
        self
    }

    fn socket(&self) -> std::io::Result<Arc<UdpSocket>> {
        let mut socket = self
            .socket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(socket) = &*socket {
            return Ok(Arc::clone(socket));
        }
        let made = Arc::new(UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0))?);
        *socket = Some(Arc::clone(&made));
        Ok(made)
    }

    /// Builds, persists the counter for and sends one Reconfigure; the JSON answer of the API.
    pub fn send(&self, request: &Value) -> Result<Value, ApiError> {
        let (duid, msg) = parse_request(request)?;
        let live = self
            .live
            .upgrade()
            .ok_or_else(|| ApiError::internal("the server is stopping"))?;
        let engine = live.load();
        let now = os::unix_now();
        let (bytes, sent) = build(&engine, &duid, msg, now)?;
        let Some(keys) = engine.reconfigure_keys() else {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "reconfigure is not available in this server",
            ));
        };
        persist_counter(&self.counter, keys.replay_counter()).map_err(|error| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "{}: the replay counter cannot be written: {error}",
                    self.counter.display()
                ),
            )
        })?;
        let socket = self.socket().map_err(|error| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("no socket to send the Reconfigure from: {error}"),
            )
        })?;
        if let Err(error) = socket.send_to(&bytes, SocketAddr::V6(sent.to)) {
            keys.count(ReconfigureResult::SendFailed);
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("sending the Reconfigure to {} failed: {error}", sent.to),
            ));
        }
        keys.count(ReconfigureResult::Sent);
        let link = engine.config().link(sent.link).name.clone();
        tracing::info!(
            duid = %crate::control::model::hex(&duid),
            msg = msg.as_str(),
            to = %sent.to,
            via_relay = sent.via_relay,
            link,
            "Reconfigure sent"
        );
        if msg != ReconfigureType::InformationRequest {
            let baseline = last_transaction(&engine, &duid);
            self.retransmit(socket, duid.clone(), msg, baseline);
        }
        Ok(json!({
            "reconfigure": {
                "duid": crate::control::model::hex(&duid),
                "msg": msg.as_str(),
                "to": sent.to.to_string(),
                "via": if sent.via_relay { "relay" } else { "direct" },
                "link": link,
                "replay": sent.replay,
                "bytes": sent.len,
            }
        }))
    }

    /// Sends the Reconfigure again, REC_TIMEOUT doubling, until the client's last transaction
    /// is later than `baseline` (the one before the Reconfigure was sent; the table keeps
    /// seconds, so a Renew in the same second as the binding it extends goes unseen and costs
    /// one needless retransmission), REC_MAX_RC transmissions, or the server stops.
    fn retransmit(
        &self,
        socket: Arc<UdpSocket>,
        duid: Vec<u8>,
        msg: ReconfigureType,
        baseline: u32,
    ) {
        if self.retransmitting.fetch_add(1, Ordering::Relaxed) >= MAX_RETRANSMITTING {
            self.retransmitting.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let live = Weak::clone(&self.live);
        let counter = self.counter.clone();
        let retransmitting = Arc::clone(&self.retransmitting);
        let spawned = std::thread::Builder::new()
            .name("xdhcp6-reconf".into())
            .spawn(move || {
                let mut wait = REC_TIMEOUT;
                for _ in 1..REC_MAX_RC {
                    std::thread::sleep(wait);
                    wait *= 2;
                    let Some(live) = live.upgrade() else { break };
                    let engine = live.load();
                    // RFC 9915 §18.3.11, in substance: the server interprets the receipt of
                    // the Renew or Rebind asked for as satisfying the Reconfigure; without
                    // one in REC_TIMEOUT, it retransmits, doubling REC_TIMEOUT, until
                    // REC_MAX_RC unsuccessful attempts.
                    if last_transaction(&engine, &duid) > baseline {
                        break;
                    }
                    let now = os::unix_now();
                    let Ok((bytes, sent)) = build(&engine, &duid, msg, now) else {
                        break;
                    };
                    let Some(keys) = engine.reconfigure_keys() else {
                        break;
                    };
                    if persist_counter(&counter, keys.replay_counter()).is_err() {
                        break;
                    }
                    match socket.send_to(&bytes, SocketAddr::V6(sent.to)) {
                        Ok(_) => keys.count(ReconfigureResult::Sent),
                        Err(_) => keys.count(ReconfigureResult::SendFailed),
                    }
                }
                retransmitting.fetch_sub(1, Ordering::Relaxed);
            });
        match spawned {
            // Its first step is a sleep of REC_TIMEOUT: pinned before it sends anything.
            Ok(thread) => {
                if let Err(error) = crate::placement::place(&thread, &self.cores) {
                    tracing::warn!(%error, cores = ?self.cores, "a Reconfigure thread stays unplaced");
                }
            }
            Err(_) => {
                self.retransmitting.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// The Reconfigure for `duid`, or the API's error.
fn build(
    engine: &Engine,
    duid: &[u8],
    msg: ReconfigureType,
    now: u32,
) -> Result<(Vec<u8>, xdhcp6_engine::ReconfigureSent), ApiError> {
    let mut buf = vec![0; MAX_LEN];
    let sent = engine
        .reconfigure(duid, msg, now, &mut buf)
        .map_err(|error| match error {
            ReconfigureError::NoBinding => ApiError::not_found("duid", error),
            ReconfigureError::Disabled => {
                ApiError::new(StatusCode::NOT_IMPLEMENTED, error.to_string())
            }
            ReconfigureError::TooLong => ApiError::internal(error.to_string()),
            _ => ApiError::about(StatusCode::CONFLICT, "duid", error),
        })?;
    buf.truncate(sent.len);
    Ok((buf, sent))
}

/// The time of the client `duid`'s last transaction that bound or extended a lease (a
/// binding's expiry less its valid lifetime), 0 when it has none.
fn last_transaction(engine: &Engine, duid: &[u8]) -> u32 {
    let table = engine.table();
    let mut last = 0;
    for shard in 0..table.shard_count() {
        table.iter_shard(shard, |record| {
            if record.duid.as_bytes() == duid && record.lease.state == LeaseState::Bound {
                last = last.max(
                    record
                        .lease
                        .expires
                        .saturating_sub(record.lease.lifetimes.valid),
                );
            }
        });
    }
    last
}

/// The `duid` and `msg` of a request body.
fn parse_request(request: &Value) -> Result<(Vec<u8>, ReconfigureType), ApiError> {
    let Value::Object(fields) = request else {
        return Err(ApiError::invalid("body", "expected a JSON object"));
    };
    if let Some(other) = fields
        .keys()
        .find(|key| !["duid", "msg"].contains(&key.as_str()))
    {
        return Err(ApiError::invalid(
            other,
            "is not a key of a reconfigure request (duid, msg)",
        ));
    }
    let duid = match fields.get("duid") {
        Some(Value::String(text)) => params::hex_bytes("duid", text, 130)?,
        Some(_) => return Err(ApiError::invalid("duid", "expected hexadecimal text")),
        None => return Err(ApiError::invalid("duid", "is required")),
    };
    if duid.len() < 2 {
        return Err(ApiError::invalid("duid", "is shorter than a DUID"));
    }
    let msg = match fields.get("msg") {
        None => ReconfigureType::Renew,
        Some(Value::String(text)) => text
            .parse()
            .map_err(|problem: String| ApiError::invalid("msg", problem))?,
        Some(_) => return Err(ApiError::invalid("msg", "expected text")),
    };
    Ok((duid, msg))
}

/// The control API's hooks: reload and reservations from the [`Reloader`], Reconfigure from a
/// [`Reconfigurer`].
pub struct Hooks {
    /// Reload and runtime reservations.
    pub reloader: Arc<Reloader>,
    /// Reconfigure.
    pub reconfigurer: Reconfigurer,
}

impl ControlHooks for Hooks {
    fn reload(&self) -> Result<Value, ApiError> {
        ControlHooks::reload(&*self.reloader)
    }

    fn reservations(&self) -> Result<Value, ApiError> {
        ControlHooks::reservations(&*self.reloader)
    }

    fn add_reservation(&self, reservation: Value) -> Result<Value, ApiError> {
        ControlHooks::add_reservation(&*self.reloader, reservation)
    }

    fn remove_reservation(&self, reservation: Value) -> Result<Value, ApiError> {
        ControlHooks::remove_reservation(&*self.reloader, reservation)
    }

    fn reconfigure(&self, request: Value) -> Result<Value, ApiError> {
        self.reconfigurer.send(&request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_the_field_that_is_wrong() {
        let parsed = parse_request(&json!({"duid": "00:03"})).unwrap();
        assert_eq!(parsed, (vec![0, 3], ReconfigureType::Renew));
        let (_, msg) = parse_request(&json!({"duid": "0003", "msg": "rebind"})).unwrap();
        assert_eq!(msg, ReconfigureType::Rebind);
        let error = parse_request(&json!({"duid": "0003", "msg": "solicit"})).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("msg"));
        let error = parse_request(&json!({"msg": "renew"})).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("duid"));
        let error = parse_request(&json!({"duid": "0003", "to": "x"})).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("to"));
        let error = parse_request(&json!({"duid": "zz"})).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("duid"));
    }

    #[test]
    fn the_secret_is_made_once_with_mode_0600_and_read_back() {
        let dir = std::env::temp_dir().join(format!("xdhcp6-reconf-keys-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let journal = dir.join("leases.journal");
        let keys = load_keys(&journal).unwrap();
        let mode = fs::metadata(dir.join(SECRET_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_keys(&journal).unwrap();
        assert_eq!(keys.key(b"client"), again.key(b"client"));
        // The counter persisted is the floor after a restart.
        persist_counter(&dir.join(COUNTER_FILE), (u64::from(u32::MAX) << 32) + 5).unwrap();
        let restarted = load_keys(&journal).unwrap();
        assert_eq!(restarted.next_replay(1), (u64::from(u32::MAX) << 32) + 6);
        // A secret of another length is refused, naming the file.
        fs::write(dir.join(SECRET_FILE), b"short").unwrap();
        let error = load_keys(&journal).unwrap_err().to_string();
        assert!(error.contains(SECRET_FILE), "{error}");
        let _ = fs::remove_dir_all(&dir);
    }
}
