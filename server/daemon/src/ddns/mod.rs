//! DNS updates (RFC 2136) of the AAAA, DHCID and PTR records of the clients of links with
//! `[link.ddns]`, off the reply path.
//!
//! The engine decides (the Client FQDN policy, `xdhcp6_engine::fqdn`) and hands the journal's
//! sink a [`NameBinding`] per Reply that binds; the sink passes it, and the lease events that
//! end an address (release, decline, expiry), to a [`DdnsFeed`], which only tries to put them
//! on the updater's bounded intake queue (full: dropped and counted). The updater thread
//! (`xdhcp6-ddns`, a current-thread tokio runtime) journals each update in `<journal>.ddns`
//! ([`pending`]), then queues it on the bounded queue of the link's DNS servers; one task per
//! queue sends the updates in order ([`update`], TSIG-signed with the link's key), retrying
//! with backoff, and marks them done. A restart runs again what was not done.

pub mod key;
pub mod pending;
pub mod update;

use std::collections::HashMap;
use std::net::{Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, TSigner};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc};
use xdhcp6_engine::config::{Config, DdnsSettings, reverse_name};
use xdhcp6_engine::fqdn::{NameBinding, in_zone};
use xdhcp6_engine::table::{EventKind, IaKind, LeaseEvent, LeaseState};

use self::key::TsigKey;
use self::pending::{Job, JobKind, PendingFile, State};
use self::update::Forward;

/// Updates the feed may hold before the updater takes them; more are dropped and counted.
const INTAKE_CAPACITY: usize = 16_384;
/// How often the updater takes what the feed holds.
const INTAKE_TICK: Duration = Duration::from_millis(10);
/// Updates one DNS server queue holds; more are dropped and counted.
const QUEUE_CAPACITY: usize = 4_096;
/// Tries of one update before it is given up (counted as failed).
const ATTEMPTS: u32 = 6;
/// The wait before the second try; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between tries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long an answer from the DNS server is waited for.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// A Reply that changes nothing sends no update, unless the records were last written this
/// long ago: then they are written again, so that records removed meanwhile (by another
/// server of the set whose copy of the lease expired, or by hand) come back.
const REFRESH_SECONDS: u64 = 3600;

/// The updater's counters, for the `xdhcp6_ddns_*` metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DdnsCounts {
    /// DNS UPDATE messages sent (every try).
    pub updates_sent: u64,
    /// Updates whose records were written (or removed) as asked.
    pub succeeded: u64,
    /// Updates given up after every try (no answer, refused, a bad signature).
    pub failed: u64,
    /// Updates refused by RFC 4703's rules: the name belongs to another client (its DHCID).
    pub conflicts: u64,
    /// Updates queued and not done.
    pub queue_depth: u64,
    /// Updates dropped because a queue was full.
    pub dropped: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    conflicts: AtomicU64,
    depth: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    fn counts(&self) -> DdnsCounts {
        DdnsCounts {
            updates_sent: self.sent.load(Ordering::Relaxed),
            succeeded: self.succeeded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            conflicts: self.conflicts.load(Ordering::Relaxed),
            queue_depth: self.depth.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// What the feed hands the updater.
#[derive(Debug)]
enum Intake {
    Bind {
        link: String,
        binding: NameBinding,
    },
    Gone {
        link: String,
        address: Ipv6Addr,
        duid: String,
        /// For an expiry: when the lease ended and its valid lifetime (engine clock).
        expired: Option<(u32, u32)>,
    },
}

/// Where the journal's sinks hand names and lease events; never blocks.
#[derive(Clone, Debug)]
pub struct DdnsFeed {
    links: Arc<HashMap<String, usize>>,
    intake: mpsc::Sender<Intake>,
    counters: Arc<Counters>,
}

impl DdnsFeed {
    /// A Reply bound or extended addresses of a named client on `link`.
    pub fn bind(&self, link: &str, binding: NameBinding) {
        if !self.links.contains_key(link) {
            return;
        }
        self.offer(Intake::Bind {
            link: link.to_owned(),
            binding,
        });
    }

    /// A lease event: a bound address that was released, declined or expired loses its
    /// records.
    pub fn lease_event(&self, link: Option<&str>, event: &LeaseEvent) {
        let lease = &event.record.lease;
        let gone = match event.kind {
            EventKind::Released | EventKind::Declined => true,
            EventKind::Expired => lease.state == LeaseState::Bound,
            _ => false,
        };
        if !gone || lease.kind != IaKind::Na {
            return;
        }
        let Some(link) = link.filter(|link| self.links.contains_key(*link)) else {
            return;
        };
        self.offer(Intake::Gone {
            link: link.to_owned(),
            address: lease.ip(),
            duid: crate::runtime::hex(event.record.duid.as_bytes()),
            expired: (event.kind == EventKind::Expired)
                .then_some((lease.expires, lease.lifetimes.valid)),
        });
    }

    fn offer(&self, intake: Intake) {
        if self.intake.try_send(intake).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One link's update settings, resolved: zones as names, the TSIG signer.
struct LinkUpdates {
    settings: DdnsSettings,
    forward_zone: Name,
    reverse_zone: Name,
    signer: Option<TSigner>,
    queue: usize,
    /// The link's T2: when a client rebinds with any server.
    t2: u32,
}

/// The running updater.
pub struct Ddns {
    feed: DdnsFeed,
    counters: Arc<Counters>,
    stop: Arc<Notify>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl Ddns {
    /// Restricts the updater's thread to `cores` (none: left where it is; see
    /// [`crate::placement::place`]). Returns whether it was pinned.
    pub fn place(&self, cores: &[usize]) -> std::io::Result<bool> {
        match &self.thread {
            Some(thread) => crate::placement::place(thread, cores),
            None => Ok(false),
        }
    }
}

impl std::fmt::Debug for Ddns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ddns").field("path", &self.path).finish()
    }
}

impl Ddns {
    /// The file of pending updates that goes with the lease journal at `journal`.
    pub fn pending_path(journal: &Path) -> PathBuf {
        let mut path = journal.as_os_str().to_owned();
        path.push(".ddns");
        PathBuf::from(path)
    }

    /// Starts the updater when a link of `config` (read from `config_path`) has
    /// `[link.ddns]`: reads the TSIG keys (an error names the file and the field), replays
    /// the pending updates next to `journal` and starts the `xdhcp6-ddns` thread.
    pub fn start(
        config: &Config,
        config_path: &Path,
        journal: &Path,
    ) -> anyhow::Result<Option<Self>> {
        let mut links = HashMap::new();
        let mut updates = HashMap::new();
        let mut queues: Vec<Vec<SocketAddr>> = Vec::new();
        for (i, link) in config.links.iter().enumerate() {
            let Some(settings) = link.ddns.as_deref() else {
                continue;
            };
            let field = |name: &str| format!("{}: link[{i}].ddns.{name}", config_path.display());
            let signer = match &settings.tsig_key_file {
                Some(path) => {
                    let path = match config_path.parent() {
                        Some(folder) if path.is_relative() => folder.join(path),
                        _ => path.clone(),
                    };
                    let key = TsigKey::read(&path)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", field("tsig-key-file")))?;
                    Some(
                        key.signer()
                            .map_err(|e| anyhow::anyhow!("{}: {e}", field("tsig-key-file")))?,
                    )
                }
                None => None,
            };
            let forward_zone = Name::from_ascii(&settings.forward_zone)
                .map_err(|e| anyhow::anyhow!("{}: {e}", field("forward-zone")))?;
            let reverse_zone = Name::from_ascii(&settings.reverse_zone)
                .map_err(|e| anyhow::anyhow!("{}: {e}", field("reverse-zone")))?;
            // One queue per first server: links updating the same server share its order.
            let queue = match queues
                .iter()
                .position(|q| q.first() == settings.servers.first())
            {
                Some(queue) => queue,
                None => {
                    queues.push(settings.servers.clone());
                    queues.len() - 1
                }
            };
            links.insert(link.name.clone(), updates.len());
            updates.insert(
                link.name.clone(),
                LinkUpdates {
                    settings: settings.clone(),
                    forward_zone,
                    reverse_zone,
                    signer,
                    queue,
                    t2: link.timers.t2,
                },
            );
        }
        if updates.is_empty() {
            return Ok(None);
        }
        let path = Self::pending_path(journal);
        let (file, state) = PendingFile::open(&path)
            .with_context(|| format!("opening the pending DNS updates {}", path.display()))?;
        tracing::info!(
            file = %path.display(),
            pending = state.pending.len(),
            names = state.owners.len(),
            unreadable = state.unreadable,
            "DNS updates replayed"
        );
        let counters = Arc::new(Counters::default());
        let (intake_tx, intake_rx) = mpsc::channel(INTAKE_CAPACITY);
        let stop = Arc::new(Notify::new());
        let updater = Updater {
            links: Arc::new(updates),
            queues,
            counters: Arc::clone(&counters),
            file,
            state,
            started: unix_seconds(),
        };
        let thread = {
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("xdhcp6-ddns".into())
                .spawn(move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => runtime,
                        Err(e) => {
                            tracing::error!(error = %e, "DNS updater: no runtime");
                            return;
                        }
                    };
                    runtime.block_on(updater.run(intake_rx, stop));
                })
                .context("starting the DNS updater thread")?
        };
        Ok(Some(Self {
            feed: DdnsFeed {
                links: Arc::new(links),
                intake: intake_tx,
                counters: Arc::clone(&counters),
            },
            counters,
            stop,
            thread: Some(thread),
            path,
        }))
    }

    /// A feed for the journal's sinks.
    pub fn feed(&self) -> DdnsFeed {
        self.feed.clone()
    }

    /// The counters for the metrics.
    pub fn counts(&self) -> DdnsCounts {
        self.counters.counts()
    }

    /// A probe of the counters that outlives nothing.
    pub fn probe(&self) -> Arc<dyn Fn() -> DdnsCounts + Send + Sync> {
        let counters = Arc::clone(&self.counters);
        Arc::new(move || counters.counts())
    }
}

impl Drop for Ddns {
    fn drop(&mut self) {
        // What is not done stays in the file and runs again at the next start.
        self.stop.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The updater thread's state.
struct Updater {
    links: Arc<HashMap<String, LinkUpdates>>,
    queues: Vec<Vec<SocketAddr>>,
    counters: Arc<Counters>,
    file: PendingFile,
    state: State,
    /// When this server started, seconds since the epoch.
    started: u64,
}

impl Updater {
    async fn run(mut self, mut intake: mpsc::Receiver<Intake>, stop: Arc<Notify>) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<u64>();
        let mut senders = Vec::with_capacity(self.queues.len());
        for servers in &self.queues {
            let (tx, rx) = mpsc::channel::<Job>(QUEUE_CAPACITY);
            senders.push(tx);
            tokio::spawn(serve_queue(
                rx,
                servers.clone(),
                Arc::clone(&self.links),
                Arc::clone(&self.counters),
                done_tx.clone(),
            ));
        }
        for job in std::mem::take(&mut self.state.pending) {
            self.dispatch(&senders, job);
        }
        // The intake is polled on a tick rather than awaited: a worker's `try_send` then
        // wakes no thread, and the updater takes what arrived in batches, instead of being
        // woken (and taking a core from the workers) once per reply.
        let mut tick = tokio::time::interval(INTAKE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = stop.notified() => break,
                _ = tick.tick() => {}
            }
            while let Ok(id) = done_rx.try_recv() {
                self.write(|file| file.done(id));
            }
            let mut closed = false;
            for _ in 0..INTAKE_CAPACITY {
                match intake.try_recv() {
                    Ok(item) => self.take(&senders, item),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            self.write(PendingFile::sync);
            if closed {
                break;
            }
        }
    }

    fn write(&mut self, what: impl FnOnce(&mut PendingFile) -> std::io::Result<()>) {
        if let Err(e) = what(&mut self.file) {
            tracing::warn!(file = %self.file.path().display(), error = %e, "DNS updates: cannot write the pending file");
        }
    }

    /// Turns a name or a lease's end into a job, unless the records are already as asked.
    fn take(&mut self, senders: &[mpsc::Sender<Job>], item: Intake) {
        let job = match item {
            Intake::Bind { link, binding } => {
                let duid = crate::runtime::hex(binding.duid.as_bytes());
                let now = unix_seconds();
                let unchanged = binding.stale.iter().all(|a| {
                    self.state
                        .owners
                        .get(a)
                        .is_none_or(|owner| owner.duid != duid)
                }) && binding.addresses.iter().all(|a| {
                    self.state.owners.get(a).is_some_and(|owner| {
                        owner.duid == duid
                            && now.saturating_sub(owner.at) < REFRESH_SECONDS
                            && owner.name == binding.name
                            && owner.forward == binding.forward
                            && owner.reverse == binding.reverse
                    })
                });
                if unchanged && binding.stale.is_empty() {
                    return;
                }
                Job {
                    id: 0,
                    link,
                    name: binding.name,
                    duid,
                    forward: binding.forward,
                    reverse: binding.reverse,
                    kind: JobKind::Bind {
                        addresses: binding.addresses,
                        stale: binding.stale,
                    },
                    at: now,
                }
            }
            Intake::Gone {
                link,
                address,
                duid,
                expired,
            } => {
                let Some(owner) = self.state.owners.get(&address) else {
                    return;
                };
                if owner.duid != duid || owner.link != link {
                    return;
                }
                let left_to_peers = self.links.get(&link).is_some_and(|updates| {
                    updates.settings.identical_peers
                        && expired.is_some_and(|(expires, valid)| {
                            rebound_before_start(expires, valid, updates.t2, self.started)
                        })
                });
                if left_to_peers {
                    tracing::info!(
                        %address,
                        name = %owner.name,
                        "DNS records of an expired lease left in place: the client's rebinding \
                         time came before this server started, and an identical peer may \
                         serve the address"
                    );
                    self.state.owners.remove(&address);
                    return;
                }
                Job {
                    id: 0,
                    link,
                    name: owner.name.clone(),
                    duid,
                    forward: owner.forward,
                    reverse: owner.reverse,
                    kind: JobKind::Remove { address },
                    at: unix_seconds(),
                }
            }
        };
        // A full queue drops the update before it costs a write or changes what the
        // updater believes the records are.
        let full = self
            .links
            .get(&job.link)
            .and_then(|link| senders.get(link.queue))
            .is_none_or(|sender| sender.capacity() == 0);
        if full {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let job = Job {
            id: self.state.next_id,
            ..job
        };
        self.state.next_id += 1;
        self.state.apply(&job);
        self.write(|file| file.job(&job));
        self.dispatch(senders, job);
    }

    fn dispatch(&mut self, senders: &[mpsc::Sender<Job>], job: Job) {
        let Some(queue) = self.links.get(&job.link).map(|link| link.queue) else {
            // The link lost its `[link.ddns]` since the update was queued.
            let id = job.id;
            self.write(|file| file.done(id));
            return;
        };
        let Some(sender) = senders.get(queue) else {
            return;
        };
        self.counters.depth.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = sender.try_send(job) {
            self.counters.depth.fetch_sub(1, Ordering::Relaxed);
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            let id = match error {
                mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job) => {
                    job.id
                }
            };
            self.write(|file| file.done(id));
        }
    }
}

/// How one update ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Conflict,
}

/// Sends one queue's updates in order, each retried with backoff.
async fn serve_queue(
    mut rx: mpsc::Receiver<Job>,
    servers: Vec<SocketAddr>,
    links: Arc<HashMap<String, LinkUpdates>>,
    counters: Arc<Counters>,
    done: mpsc::UnboundedSender<u64>,
) {
    while let Some(job) = rx.recv().await {
        let mut backoff = FIRST_BACKOFF;
        let mut result = Err(String::from("no try"));
        if let Some(link) = links.get(&job.link) {
            for attempt in 0..ATTEMPTS {
                let server = servers[attempt as usize % servers.len()];
                result = run_job(&job, link, server, &counters).await;
                match &result {
                    Ok(_) => break,
                    Err(error) => {
                        tracing::debug!(name = %job.name, %server, attempt, error = %error, "DNS update failed; retrying");
                    }
                }
                if attempt + 1 < ATTEMPTS {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        counters.depth.fetch_sub(1, Ordering::Relaxed);
        match result {
            Ok(Outcome::Done) => {
                counters.succeeded.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Outcome::Conflict) => {
                counters.conflicts.fetch_add(1, Ordering::Relaxed);
                tracing::info!(name = %job.name, duid = %job.duid, "DNS update: the name belongs to another client (DHCID), left alone");
            }
            Err(error) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(name = %job.name, error = %error, "DNS update given up");
            }
        }
        let _ = done.send(job.id);
    }
}

/// One try of a job against `server`.
async fn run_job(
    job: &Job,
    link: &LinkUpdates,
    server: SocketAddr,
    counters: &Counters,
) -> Result<Outcome, String> {
    let name = Name::from_ascii(&job.name).map_err(|e| format!("name {}: {e}", job.name))?;
    let duid = decode_hex(&job.duid);
    let dhcid = update::dhcid(&duid, &job.name);
    let forward = Forward {
        zone: &link.forward_zone,
        name: &name,
        dhcid: &dhcid,
        ttl: link.settings.ttl,
    };
    let forward_wanted = job.forward && in_zone(&job.name, &link.settings.forward_zone);
    let send = |message: Message| exchange(server, message, link.signer.as_ref(), counters);
    match &job.kind {
        JobKind::Bind { addresses, stale } => {
            if forward_wanted && !addresses.is_empty() {
                match send(forward.add(addresses)).await? {
                    ResponseCode::NoError => {}
                    ResponseCode::YXDomain => match send(forward.replace(addresses)).await? {
                        ResponseCode::NoError => {}
                        // RFC 4703 §5.3.2, in substance: if the DHCID does not match, the
                        // name belongs to another client: the updater MUST NOT change it (and
                        // writes no PTR for it).
                        ResponseCode::NXRRSet => return Ok(Outcome::Conflict),
                        code => return Err(format!("replace: {code}")),
                    },
                    code => return Err(format!("add: {code}")),
                }
            } else if forward_wanted {
                for &address in stale {
                    match send(forward.remove(address)).await? {
                        ResponseCode::NoError | ResponseCode::NXRRSet => {}
                        code => return Err(format!("remove: {code}")),
                    }
                }
            }
            if job.reverse {
                for &address in addresses {
                    let Some(reverse) = reverse_of(link, address) else {
                        continue;
                    };
                    let message =
                        update::replace_ptr(&link.reverse_zone, &reverse, &name, link.settings.ttl);
                    match send(message).await? {
                        ResponseCode::NoError => {}
                        code => return Err(format!("PTR: {code}")),
                    }
                }
                for &address in stale {
                    let Some(reverse) = reverse_of(link, address) else {
                        continue;
                    };
                    match send(update::remove_ptr(&link.reverse_zone, &reverse, &name)).await? {
                        ResponseCode::NoError | ResponseCode::NXRRSet => {}
                        code => return Err(format!("PTR removal: {code}")),
                    }
                }
            }
        }
        JobKind::Remove { address } => {
            if forward_wanted {
                match send(forward.remove(*address)).await? {
                    ResponseCode::NoError => match send(forward.release_name()).await? {
                        // NXRRSet / YXRRSet: the name still has other addresses.
                        ResponseCode::NoError | ResponseCode::NXRRSet | ResponseCode::YXRRSet => {}
                        code => return Err(format!("DHCID removal: {code}")),
                    },
                    // Not this client's name (any more): leave it.
                    ResponseCode::NXRRSet => {}
                    code => return Err(format!("remove: {code}")),
                }
            }
            if job.reverse
                && let Some(reverse) = reverse_of(link, *address)
            {
                match send(update::remove_ptr(&link.reverse_zone, &reverse, &name)).await? {
                    ResponseCode::NoError | ResponseCode::NXRRSet => {}
                    code => return Err(format!("PTR removal: {code}")),
                }
            }
        }
    }
    Ok(Outcome::Done)
}

/// The reverse name of `address` when the link's reverse zone holds it.
fn reverse_of(link: &LinkUpdates, address: Ipv6Addr) -> Option<Name> {
    let text = reverse_name(address);
    if !in_zone(&text, &link.settings.reverse_zone) {
        return None;
    }
    Name::from_ascii(&text).ok()
}

/// Sends `message` (signed when there is a key) and returns the answer's response code.
async fn exchange(
    server: SocketAddr,
    mut message: Message,
    signer: Option<&TSigner>,
    counters: &Counters,
) -> Result<ResponseCode, String> {
    let now = unix_seconds();
    let mut verifier = match signer {
        Some(signer) => message
            .finalize(signer, now)
            .map_err(|e| format!("signing: {e}"))?,
        None => None,
    };
    let id = message.metadata.id;
    let bytes = message.to_vec().map_err(|e| format!("encoding: {e}"))?;
    let local: SocketAddr = if server.is_ipv6() {
        "[::]:0".parse().map_err(|_| "address")?
    } else {
        "0.0.0.0:0".parse().map_err(|_| "address")?
    };
    let socket = UdpSocket::bind(local).await.map_err(|e| e.to_string())?;
    socket.connect(server).await.map_err(|e| e.to_string())?;
    socket.send(&bytes).await.map_err(|e| e.to_string())?;
    counters.sent.fetch_add(1, Ordering::Relaxed);
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
    loop {
        let len = tokio::time::timeout_at(deadline, socket.recv(&mut buf))
            .await
            .map_err(|_| format!("no answer from {server}"))?
            .map_err(|e| e.to_string())?;
        let answer = buf.get(..len).unwrap_or_default();
        let Ok(parsed) = Message::from_vec(answer) else {
            continue;
        };
        if parsed.metadata.id != id {
            continue;
        }
        return match &mut verifier {
            Some(verifier) => {
                let verified = verifier.verify(answer).map_err(|e| {
                    format!(
                        "{server}: answer fails TSIG ({}): {e}",
                        parsed.metadata.response_code
                    )
                })?;
                Ok(verified.metadata.response_code)
            }
            None => Ok(parsed.metadata.response_code),
        };
    }
}

/// Whether a lease that ended at `expires` (valid lifetime `valid`, the link's T2 `t2`, engine
/// clock) had its rebinding time before `started`: this server was not running when the
/// client, unanswered at T1, Rebound with every server of the set, so a peer may have extended
/// it. In the identical model that peer serves the very address and name this server wrote:
/// the expiry of this server's copy says nothing about the client.
fn rebound_before_start(expires: u32, valid: u32, t2: u32, started: u64) -> bool {
    let extended = u64::from(expires.saturating_sub(valid));
    extended + u64::from(t2) < started
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The bytes of [`crate::runtime::hex`]'s colon-separated hex, as the pending file keeps DUIDs.
fn decode_hex(text: &str) -> Vec<u8> {
    xdhcp6_engine::hex::parse(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use xdhcp6_engine::config::{GeneratedName, LinkId};
    use xdhcp6_engine::table::{DuidBuf, Lease, LeaseRecord, Lifetimes};

    use super::*;

    const DUID: [u8; 6] = [0, 3, 0, 1, 0xaa, 0xbb];

    /// An updater for one link `lan` (T2 16 s) over a pending file in a scratch folder, its
    /// feed, the feed's intake and the link's queue.
    struct Rig {
        updater: Updater,
        feed: DdnsFeed,
        intake: mpsc::Receiver<Intake>,
        senders: Vec<mpsc::Sender<Job>>,
        queue: mpsc::Receiver<Job>,
        folder: PathBuf,
    }

    impl Rig {
        fn new(tag: &str, identical_peers: bool, started: u64) -> Self {
            let folder =
                std::env::temp_dir().join(format!("xdhcp6-ddns-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&folder);
            std::fs::create_dir_all(&folder).unwrap();
            let (file, state) = PendingFile::open(&folder.join("leases.journal.ddns")).unwrap();
            let settings = DdnsSettings {
                forward_zone: "example.net.".into(),
                reverse_zone: "ip6.arpa.".into(),
                servers: vec!["[2001:db8::53]:53".parse().unwrap()],
                tsig_key_file: None,
                ttl: 60,
                qualifying_suffix: "example.net.".into(),
                generated_name: GeneratedName::Address,
                generated_prefix: "dhcp".into(),
                override_client_update: false,
                override_no_update: false,
                identical_peers,
            };
            let link = LinkUpdates {
                forward_zone: Name::from_ascii("example.net.").unwrap(),
                reverse_zone: Name::from_ascii("ip6.arpa.").unwrap(),
                settings,
                signer: None,
                queue: 0,
                t2: 16,
            };
            let counters = Arc::new(Counters::default());
            let (intake_tx, intake) = mpsc::channel(16);
            let (sender, queue) = mpsc::channel(16);
            Self {
                updater: Updater {
                    links: Arc::new(HashMap::from([("lan".to_owned(), link)])),
                    queues: vec![vec!["[2001:db8::53]:53".parse().unwrap()]],
                    counters: Arc::clone(&counters),
                    file,
                    state,
                    started,
                },
                feed: DdnsFeed {
                    links: Arc::new(HashMap::from([("lan".to_owned(), 0)])),
                    intake: intake_tx,
                    counters,
                },
                intake,
                senders: vec![sender],
                queue,
                folder,
            }
        }

        /// Hands the updater what the feed took; returns the jobs it queued.
        fn step(&mut self) -> Vec<Job> {
            while let Ok(item) = self.intake.try_recv() {
                self.updater.take(&self.senders, item);
            }
            let mut jobs = Vec::new();
            while let Ok(job) = self.queue.try_recv() {
                jobs.push(job);
            }
            jobs
        }

        fn bind(&mut self, address: Ipv6Addr) -> Vec<Job> {
            self.feed.bind(
                "lan",
                NameBinding {
                    link: LinkId(0),
                    duid: DuidBuf::new(&DUID),
                    name: "pc.example.net.".into(),
                    forward: true,
                    reverse: true,
                    addresses: vec![address],
                    stale: vec![],
                    at: 0,
                },
            );
            self.step()
        }

        fn event(&mut self, kind: EventKind, state: LeaseState, address: Ipv6Addr, expires: u32) {
            let event = LeaseEvent {
                kind,
                at: expires,
                record: LeaseRecord {
                    duid: DuidBuf::new(&DUID),
                    lease: Lease {
                        addr: u128::from(address),
                        prefix_len: 128,
                        kind: IaKind::Na,
                        iaid: 1,
                        link: LinkId(0),
                        state,
                        lifetimes: Lifetimes {
                            preferred: 20,
                            valid: 30,
                        },
                        expires,
                    },
                    relay: None,
                    reconfigure: false,
                },
            };
            self.feed.lease_event(Some("lan"), &event);
        }
    }

    impl Drop for Rig {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.folder);
        }
    }

    #[test]
    fn a_decline_removes_the_records_of_the_address() {
        let mut rig = Rig::new("decline", false, 1_800_000_000);
        let address: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let jobs = rig.bind(address);
        assert_eq!(jobs.len(), 1);
        assert!(matches!(jobs[0].kind, JobKind::Bind { .. }));
        rig.event(
            EventKind::Declined,
            LeaseState::Declined,
            address,
            1_800_000_600,
        );
        let jobs = rig.step();
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!(jobs[0].kind, JobKind::Remove { address });
        assert_eq!(jobs[0].name, "pc.example.net.");
        assert!(jobs[0].forward && jobs[0].reverse);
        // The declined address's probation ends later: nothing more to remove.
        rig.event(
            EventKind::Expired,
            LeaseState::Declined,
            address,
            1_800_000_600,
        );
        assert!(rig.step().is_empty());
    }

    #[test]
    fn an_expiry_removes_the_records_unless_an_identical_peer_may_serve_them() {
        let started = 1_800_000_000;
        let address: Ipv6Addr = "2001:db8::1".parse().unwrap();
        // Bound 20 s before the start (T2 16 s, valid 30 s): the client rebound while this
        // server was not running.
        let expires = started as u32 + 10;
        for identical_peers in [false, true] {
            let mut rig = Rig::new("expiry", identical_peers, started);
            rig.bind(address);
            rig.event(EventKind::Expired, LeaseState::Bound, address, expires);
            let jobs = rig.step();
            if identical_peers {
                assert!(jobs.is_empty(), "left to the peer: {jobs:?}");
            } else {
                assert_eq!(jobs.len(), 1);
                assert_eq!(jobs[0].kind, JobKind::Remove { address });
            }
        }
        // Bound 10 s before the start: the server ran at the client's T2, so a client that
        // did not come back is gone, whatever the model.
        let mut rig = Rig::new("expiry-late", true, started);
        rig.bind(address);
        rig.event(
            EventKind::Expired,
            LeaseState::Bound,
            address,
            started as u32 + 20,
        );
        let jobs = rig.step();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].kind, JobKind::Remove { address });
    }

    #[test]
    fn rebinding_before_the_start() {
        // Extended at 1000 (expires 1030, valid 30), T2 16: rebinding at 1016.
        assert!(rebound_before_start(1030, 30, 16, 1017));
        assert!(!rebound_before_start(1030, 30, 16, 1016));
        assert!(!rebound_before_start(1030, 30, 16, 900));
        // Expired while the server was down.
        assert!(rebound_before_start(1030, 30, 16, 5000));
    }

    #[test]
    fn hex_round_trips() {
        let duid = [0u8, 3, 0, 1, 0xaa, 0xbb];
        assert_eq!(crate::runtime::hex(&duid), "00:03:00:01:aa:bb");
        assert_eq!(decode_hex(&crate::runtime::hex(&duid)), duid);
    }
}
