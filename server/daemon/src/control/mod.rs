//! The control API: HTTP/JSON on a unix socket (and optionally TCP with a bearer token),
//! served by the `xdhcp6-control` thread on a current-thread tokio runtime; `xdhcp6d ctl` is
//! its client (see `docs/api.md`).
//!
//! It reads the engine that serves now through a getter on every request, never a kept
//! copy, since a reload swaps it. Lease lookups and listings run on tokio's blocking pool
//! (a walk of the table may take a while), a few at once. A forced release goes through
//! [`Engine::release_lease`] and the journal sink the runtime hands over, so that the
//! journal, the metrics and the pool counters see it as a client's Release. Reload and
//! runtime reservations are [`ControlHooks`]: until they are wired, they answer 501.
//!
//! [`Engine::release_lease`]: xdhcp6_engine::Engine::release_lease

mod error;
mod http;
mod leases;
mod listen;
pub mod model;
pub mod params;
pub mod relay;
mod reloader;

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use serde_json::Value;
use tokio::sync::oneshot;
use xdhcp6_engine::Engine;

/// The status of an [`ApiError`], for [`ControlHooks`] implementations.
pub use axum::http::StatusCode;

pub use self::error::ApiError;
pub use self::leases::duid_link_layer;
pub use self::listen::Limits;
use self::model::JournalView;
use crate::events::Events;
use crate::metrics::Probe;
use crate::stats::WorkerStats;

/// The control socket when `--control` is not given.
pub const DEFAULT_SOCKET: &str = "/run/xdhcp6/control.sock";

/// The largest request body taken (a reservation is a few hundred bytes).
pub const MAX_BODY: usize = 64 * 1024;

/// Requests doing blocking work (table walks, hooks, a release waiting for the journal) at
/// once; the others wait their turn.
const BLOCKING_REQUESTS: usize = 4;

/// Where the control API listens (`--control`, `--control-tcp`, `--control-token-file`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlOptions {
    /// The unix socket (mode 0600); `None` for `--control off`.
    pub socket: Option<PathBuf>,
    /// A TCP address, served only with a bearer token.
    pub tcp: Option<SocketAddr>,
    /// The file holding the TCP listener's bearer token.
    pub token_file: Option<PathBuf>,
}

impl Default for ControlOptions {
    fn default() -> Self {
        Self {
            socket: Some(PathBuf::from(DEFAULT_SOCKET)),
            tcp: None,
            token_file: None,
        }
    }
}

impl ControlOptions {
    /// No control API at all.
    pub fn off() -> Self {
        Self {
            socket: None,
            tcp: None,
            token_file: None,
        }
    }

    /// Whether anything listens.
    pub fn is_on(&self) -> bool {
        self.socket.is_some() || self.tcp.is_some()
    }
}

/// Reload and runtime reservations, which the control API hands on: each takes and returns
/// JSON, and is called on a blocking thread. An error is answered as it is (status, message,
/// field). The default methods answer 501 Not Implemented.
pub trait ControlHooks: Send + Sync + 'static {
    /// `POST /v1/reload`: reads, validates and applies the configuration file; returns the
    /// report (what changed), or the error naming file, field and problem.
    fn reload(&self) -> Result<Value, ApiError> {
        Err(unwired("reload"))
    }

    /// `GET /v1/reservations`: the runtime reservations (and those of the file, if the
    /// implementation lists them).
    fn reservations(&self) -> Result<Value, ApiError> {
        Err(unwired("reservations"))
    }

    /// `POST /v1/reservations`: adds `reservation` (a JSON object with the keys of a
    /// `[[reservation]]` table: `duid` or `hw-address` (+ `hw-type`), `address`, `prefix`,
    /// `link`); returns what was added.
    fn add_reservation(&self, reservation: Value) -> Result<Value, ApiError> {
        let _ = reservation;
        Err(unwired("reservations"))
    }

    /// `DELETE /v1/reservations`: removes the reservation that `reservation` names (its
    /// `duid`, or `hw-address` + `hw-type`, and `link` if it has one); returns what was removed.
    fn remove_reservation(&self, reservation: Value) -> Result<Value, ApiError> {
        let _ = reservation;
        Err(unwired("reservations"))
    }

    /// `POST /v1/reconfigure`: sends a Reconfigure to the client that `request` names (its
    /// `duid`, and `msg`: `renew`, `rebind` or `information-request`); returns where it went.
    fn reconfigure(&self, request: Value) -> Result<Value, ApiError> {
        let _ = request;
        Err(unwired("reconfigure"))
    }
}

/// Hooks that answer 501: no reload, no runtime reservations.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unwired;

impl ControlHooks for Unwired {}

fn unwired(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        format!("{what} is not available in this server"),
    )
}

/// Hands out a sink for the lease events of a forced release (the journal's).
pub type SinkFactory = Arc<dyn Fn() -> Box<dyn Events> + Send + Sync>;

/// What the control API reads and acts on; the runtime wires it.
#[derive(Clone)]
pub struct Sources {
    /// The engine serving now (asked on every request: a reload swaps it).
    pub engine: Probe<Arc<Engine>>,
    /// The journal's sink, for forced releases.
    pub events: SinkFactory,
    /// The journal's state.
    pub journal: Probe<JournalView>,
    /// Every datapath worker's counters, with its datapath's name (`udp`, `af_xdp`).
    pub workers: Vec<(&'static str, Arc<WorkerStats>)>,
    /// The interfaces the XDP program is attached to, with their mode.
    pub xdp: Probe<Vec<String>>,
    /// The datapath chosen (`udp` or `xdp`).
    pub datapath: String,
    /// The configuration file the server was started with.
    pub config_file: PathBuf,
    /// The engine clock (Unix seconds).
    pub clock: fn() -> u32,
    /// Reload and runtime reservations.
    pub hooks: Arc<dyn ControlHooks>,
}

impl Sources {
    /// Sources for a fixed `engine`, discarding release events, without workers or journal:
    /// for tests and tools; the runtime sets every field.
    pub fn for_engine(engine: Arc<Engine>) -> Self {
        Self {
            engine: Arc::new(move || Arc::clone(&engine)),
            events: Arc::new(|| Box::new(xdhcp6_engine::table::Discard)),
            journal: Arc::new(|| JournalView {
                path: String::new(),
                durability: "none".to_owned(),
                healthy: true,
                lag: 0,
                write_failures: 0,
            }),
            workers: Vec::new(),
            xdp: Arc::new(Vec::new),
            datapath: "none".to_owned(),
            config_file: PathBuf::new(),
            clock: xdhcp6_datapath::os::unix_now,
            hooks: Arc::new(Unwired),
        }
    }
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("workers", &self.workers.len())
            .field("datapath", &self.datapath)
            .field("config_file", &self.config_file)
            .finish_non_exhaustive()
    }
}

/// The running control API; dropping it stops the thread and removes the socket file.
#[derive(Debug)]
pub struct ControlHandle {
    socket: Option<(PathBuf, (u64, u64))>,
    tcp: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ControlHandle {
    /// The unix socket served, if any.
    pub fn socket(&self) -> Option<&Path> {
        self.socket.as_ref().map(|(path, _)| path.as_path())
    }

    /// The TCP address served (the port the kernel chose for port 0), if any.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }
}

impl Drop for ControlHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the control thread panicked");
        }
        // Only the socket this server made: another may have replaced it since.
        if let Some((path, identity)) = &self.socket
            && std::fs::symlink_metadata(path)
                .is_ok_and(|meta| (meta.dev(), meta.ino()) == *identity)
            && let Err(error) = std::fs::remove_file(path)
        {
            tracing::debug!(path = %path.display(), %error, "cannot remove the control socket");
        }
    }
}

/// Starts the control API on the `xdhcp6-control` thread.
pub fn spawn(options: &ControlOptions, sources: Sources) -> anyhow::Result<ControlHandle> {
    spawn_with_limits(options, sources, Limits::default())
}

/// [`spawn`], each listener serving at most `limits.connections` connections at once and
/// closing those idle for `limits.idle`.
pub fn spawn_with_limits(
    options: &ControlOptions,
    sources: Sources,
    limits: Limits,
) -> anyhow::Result<ControlHandle> {
    let token = match (&options.tcp, &options.token_file) {
        (Some(_), Some(file)) => Some(read_token(file)?),
        (Some(address), None) => bail!(
            "--control-tcp {address} needs --control-token-file FILE: the TCP listener serves \
             only requests with that bearer token"
        ),
        (None, _) => None,
    };
    let unix = options
        .socket
        .as_deref()
        .map(|path| bind_socket(path).map(|listener| (path.to_path_buf(), listener)))
        .transpose()?;
    let tcp = options
        .tcp
        .map(|address| {
            let listener = std::net::TcpListener::bind(address)
                .with_context(|| format!("binding the control API to {address}"))?;
            listener.set_nonblocking(true)?;
            anyhow::Ok(listener)
        })
        .transpose()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(BLOCKING_REQUESTS)
        .build()
        .context("building the control API's runtime")?;
    let state = Arc::new(http::State::new(sources));
    let mut socket = None;
    let mut tcp_addr = None;
    let mut servers = Vec::new();
    {
        let _context = runtime.enter();
        if let Some((path, listener)) = unix {
            let meta = std::fs::symlink_metadata(&path)?;
            socket = Some((path.clone(), (meta.dev(), meta.ino())));
            listener.set_nonblocking(true)?;
            let listener = tokio::net::UnixListener::from_std(listener)?;
            tracing::info!(socket = %path.display(), "control API listening");
            servers.push(http::Listener::Unix(listener));
        }
        if let Some(listener) = tcp {
            tcp_addr = Some(listener.local_addr()?);
            let listener = tokio::net::TcpListener::from_std(listener)?;
            tracing::info!(address = ?tcp_addr, "control API listening on TCP (bearer token)");
            servers.push(http::Listener::Tcp(
                listener,
                token.clone().unwrap_or_default(),
            ));
        }
    }
    let (stop, stopped) = oneshot::channel();
    let thread = thread::Builder::new()
        .name("xdhcp6-control".to_owned())
        .spawn(move || {
            runtime.block_on(http::serve(servers, state, limits, stopped));
            // Requests still running are cut off with the runtime; blocking work finishes
            // on its own thread.
            runtime.shutdown_timeout(Duration::from_secs(1));
        })
        .context("starting the control thread")?;
    Ok(ControlHandle {
        socket,
        tcp: tcp_addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// The bearer token in `file`, without surrounding whitespace.
fn read_token(file: &Path) -> anyhow::Result<Arc<[u8]>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("--control-token-file {}: cannot read", file.display()))?;
    let token = text.trim();
    if token.is_empty() {
        bail!("--control-token-file {}: the file is empty", file.display());
    }
    if let Ok(meta) = std::fs::metadata(file)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            file = %file.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "the control token file is readable by others; make it 0600"
        );
    }
    Ok(Arc::from(token.as_bytes()))
}

/// Binds the unix socket at `path` with mode 0600: made under a temporary name, its mode set,
/// then renamed into place, so that it is never reachable with a wider mode. A stale socket
/// (nobody accepts on it) is replaced; one a running server holds is an error.
fn bind_socket(path: &Path) -> anyhow::Result<std::os::unix::net::UnixListener> {
    let shown = path.display();
    if let Some(folder) = path.parent()
        && !folder.as_os_str().is_empty()
    {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating the control socket folder {}", folder.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => bail!(
            "control socket {shown}: the path exists and is not a socket; remove it or give \
             another --control PATH"
        ),
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => bail!(
                "control socket {shown} is in use by another running server; give each server \
                 its own --control PATH (or --control off)"
            ),
            Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
                tracing::info!(socket = %shown, "replacing a stale control socket");
                std::fs::remove_file(path)
                    .with_context(|| format!("removing the stale control socket {shown}"))?;
            }
            Err(error) => {
                return Err(error).with_context(|| format!("control socket {shown}"));
            }
        },
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("control socket {shown}")),
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let _ = std::fs::remove_file(&temporary);
    let listener = std::os::unix::net::UnixListener::bind(&temporary)
        .with_context(|| format!("binding the control socket {}", temporary.display()))?;
    let placed = std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(error) = placed {
        let _ = std::fs::remove_file(&temporary);
        return Err(error).with_context(|| format!("placing the control socket {shown}"));
    }
    Ok(listener)
}

/// Seconds since `started`, and `started` in Unix seconds.
fn uptime(started: SystemTime) -> (u64, u64) {
    let since = |time: SystemTime| {
        time.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs())
    };
    let start = since(started);
    (start, since(SystemTime::now()).saturating_sub(start))
}

#[cfg(test)]
mod tests;
