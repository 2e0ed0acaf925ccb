//! `xdhcp6d run`: the appliance put together.
//!
//! Start-up loads the configuration, builds the lease table and engine, replays the lease
//! journal into the table, opens the kernel UDP socket on `[::]:547` (joined to the DHCPv6
//! groups on every configured interface) and starts the datapath workers, a timer thread
//! (lease expiry, once a second), the metrics endpoint and the control API. SIGTERM or SIGINT
//! stops the workers, then the timer, then syncs and closes the journal, and `run` returns `Ok`.
//! Under systemd the main loop also speaks the service protocol ([`crate::service`]): READY=1
//! once serving, watchdog pings while every worker runs, STOPPING=1.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use xdhcp6_common::Counters;
use xdhcp6_datapath::os::{self, error_chain};
use xdhcp6_engine::Engine;
use xdhcp6_engine::alloc::SaltKey;
use xdhcp6_engine::config::Config;
use xdhcp6_engine::table::{LeaseRecord, LeaseTable};

use crate::afxdp::{self, InterfaceInfo, XskConfig, XskError, XskWorker};
use crate::bulk_leasequery::{self, BulkHandle, BulkStats};
use crate::control::{self, ControlHandle, ControlOptions};
use crate::handoff::Spread;
use crate::journal::{
    Durability, Journal, JournalErrors, JournalOptions, JournalSink, LinkNames, Snapshot,
};
use crate::metrics::{self, JournalHealth, MetricsHandle, Sources};
use crate::reload::{Live, ReloadError, ReloadReport, Reloader};
use crate::service::Notifier;
use crate::stats::WorkerStats;
use crate::udp::{self, Ports, ServerSocket, UdpDatapath};
use crate::xdp::{AttachMode, Steering};

/// The journal's place when `--journal` is not given.
pub const DEFAULT_JOURNAL: &str = "/var/lib/xdhcp6/leases.journal";

/// The metrics endpoint's address when `--metrics` is not given.
pub const DEFAULT_METRICS: SocketAddr =
    SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 9547, 0, 0));

/// Which datapath answers clients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Datapath {
    /// AF_XDP sockets, one worker per RX queue of each configured interface (the production
    /// path); the kernel socket stays open, with one worker, for what the program passes.
    Xdp,
    /// The kernel UDP socket on `[::]:547` with recvmmsg/sendmmsg batches (portable).
    #[default]
    Udp,
}

impl std::fmt::Display for Datapath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Datapath::Xdp => "xdp",
            Datapath::Udp => "udp",
        })
    }
}

/// Everything `xdhcp6d run` is told on its command line.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The TOML configuration file.
    pub config: PathBuf,
    /// Which datapath answers clients.
    pub datapath: Datapath,
    /// How the XDP program is attached (`Datapath::Xdp` only).
    pub xdp_mode: AttachMode,
    /// The lease journal.
    pub journal: PathBuf,
    /// When the journal syncs, and whether replies wait for it.
    pub durability: Durability,
    /// Whether damaged journal records are skipped or stop the start.
    pub journal_errors: JournalErrors,
    /// Bytes of zeros kept written after the journal's records (0: the file grows).
    pub journal_prealloc: u64,
    /// With `Durability::Always`, the least time from one sync's start to the next's
    /// (`JournalOptions::group_window`; zero: none).
    pub group_commit: std::time::Duration,
    /// Where the Prometheus endpoint listens; `None` turns it off.
    pub metrics: Option<SocketAddr>,
    /// Datapath worker threads (UDP; the XDP datapath runs one per RX queue).
    pub workers: usize,
    /// Cores to pin the workers to, in worker order (empty: not pinned).
    pub cores: Vec<usize>,
    /// Cores for the journal writer (empty: every allowed core but the workers'; see
    /// [`crate::placement`]).
    pub journal_cores: Vec<usize>,
    /// Cores for the DNS updater, Bulk Leasequery and Reconfigure threads (empty: every
    /// allowed core but the workers'; see [`crate::placement`]).
    pub service_cores: Vec<usize>,
    /// Whether the AF_XDP workers of an interface spread requests over each other.
    pub spread: Spread,
    /// Microseconds an AF_XDP worker polls after its last request before it sleeps (0:
    /// sleeps at once; `XskConfig::busy_poll_us`).
    pub busy_poll_us: u32,
    /// The compiled XDP object (`Datapath::Xdp`; default: `$XDHCP6_EBPF_OBJECT`, else the
    /// embedded copy).
    pub ebpf_object: Option<PathBuf>,
    /// The user to run as once everything privileged is done (`--user`); `None` keeps the
    /// user the server started as.
    pub user: Option<String>,
    /// Where the control API listens (`--control`, `--control-tcp`).
    pub control: ControlOptions,
    /// The runtime reservations file (`--reservations`); `None`: `reservations.toml` in the
    /// journal's folder.
    pub reservations: Option<PathBuf>,
}

impl RunOptions {
    /// Options with the defaults of the command line for `config`.
    pub fn new(config: PathBuf) -> Self {
        Self {
            config,
            datapath: Datapath::default(),
            xdp_mode: AttachMode::default(),
            journal: PathBuf::from(DEFAULT_JOURNAL),
            durability: Durability::Always,
            journal_errors: JournalErrors::Skip,
            journal_prealloc: crate::journal::DEFAULT_PREALLOC_BYTES,
            group_commit: std::time::Duration::ZERO,
            metrics: Some(DEFAULT_METRICS),
            workers: 1,
            cores: Vec::new(),
            journal_cores: Vec::new(),
            service_cores: Vec::new(),
            spread: Spread::Auto,
            busy_poll_us: 0,
            ebpf_object: None,
            user: None,
            control: ControlOptions::default(),
            reservations: None,
        }
    }

    /// The runtime reservations file: `--reservations`, else next to the journal.
    pub fn reservations_path(&self) -> PathBuf {
        self.reservations
            .clone()
            .unwrap_or_else(|| crate::reload::default_reservations(&self.journal))
    }
}

/// Runs the server until SIGTERM or SIGINT.
pub fn run(options: RunOptions) -> anyhow::Result<()> {
    os::install_stop_handler().context("installing the SIGINT and SIGTERM handlers")?;
    os::install_hup_handler().context("installing the SIGHUP handler")?;
    serve(options, os::stop_flag())
}

/// Runs the server until `stop` is set (by a signal handler, or a test).
pub fn serve(options: RunOptions, stop: &AtomicBool) -> anyhow::Result<()> {
    // The main thread, and every thread started from here that is not placed on its own (the
    // timer, metrics, control and, with XDP, the UDP slow path), run on the service cores:
    // they inherit the main thread's. The workers and the journal writer are placed apart.
    let service_cores = service_cores(&options)?;
    if !service_cores.is_empty() {
        crate::placement::pin_current_thread(&service_cores).with_context(|| {
            format!("--service-cores: pinning the main thread to {service_cores:?}")
        })?;
        tracing::info!(cores = ?service_cores, "main thread placed");
    }
    let reservations = options.reservations_path();
    let runtime_reservations = crate::reload::read_reservations(&reservations)?;
    let config = crate::reload::load(&options.config, &reservations, &runtime_reservations)?;
    let config = Arc::new(config);
    log_config(&options, &config);

    let table = Arc::new(LeaseTable::with_capacity(
        config.server.expected_leases as usize,
        SaltKey::from_salt(&config.server.salt),
    ));
    let reconfigure_keys = crate::reconfigure::load_keys(&options.journal)?;
    let engine = Arc::new(
        Engine::new(Arc::clone(&config), Arc::clone(&table))
            .with_context(|| format!("{}: the pools cannot be served", options.config.display()))?
            .with_reconfigure(reconfigure_keys),
    );

    if let Some(folder) = options.journal.parent()
        && !folder.as_os_str().is_empty()
    {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating the journal folder {}", folder.display()))?;
    }
    let snapshot: Snapshot = {
        let table = Arc::clone(&table);
        Arc::new(move || snapshot(&table))
    };
    let (journal, replay) = Journal::open_with(
        &options.journal,
        options.durability,
        LinkNames::of(&config),
        snapshot,
        JournalOptions {
            errors: options.journal_errors,
            prealloc_bytes: options.journal_prealloc,
            group_window: options.group_commit,
            held_limit: usize::try_from(config.server.expected_leases).unwrap_or(usize::MAX),
            ..JournalOptions::default()
        },
    )
    .with_context(|| format!("opening the lease journal {}", options.journal.display()))?;
    let journal = Arc::new(journal);
    place_journal_writer(&journal, &options)?;
    let replayed = replay.records.len();
    let restored = engine.restore(replay.records);
    // Workers, timer and metrics take the engine from here; a reload replaces it.
    let live = Arc::new(Live::new(engine));
    let reloader = Arc::new(Reloader::new(
        options.config.clone(),
        reservations,
        options.datapath,
        Arc::clone(&live),
        Some(Arc::clone(&journal)),
    ));
    tracing::info!(
        journal = %options.journal.display(),
        durability = %options.durability,
        events = replay.events,
        leases = replayed,
        loaded = restored.loaded,
        conflicts = restored.conflicts,
        torn_bytes = replay.torn_bytes,
        corrupt = replay.corrupt,
        damaged_records = replay.damaged_records,
        skipped_bytes = replay.skipped_bytes,
        unplaced = replay.unplaced.len(),
        "lease journal replayed"
    );

    // DNS updates: started before the workers, so that no name is missed; stopped after
    // them (what is not done stays in `<journal>.ddns` for the next start).
    let ddns = crate::ddns::Ddns::start(&config, &options.config, &options.journal)?;
    if let Some(ddns) = &ddns {
        journal.set_ddns(ddns.feed());
        if ddns.place(&service_cores).with_context(|| {
            format!("--service-cores: pinning the DNS updater to {service_cores:?}")
        })? {
            tracing::info!(cores = ?service_cores, "DNS updater placed");
        }
    }

    // Everything started from here on is stopped and joined when `running` drops, on the
    // error paths as on the way out.
    let mut running = Running::new();
    running.ddns = ddns.as_ref().map(crate::ddns::Ddns::probe);

    // The kernel socket runs with either datapath: it holds the group memberships (the NIC's
    // multicast filter, MLD), and with XDP it is the slow path for what the program passes.
    let socket = Arc::new(open_socket(&config)?);
    if options.datapath == Datapath::Udp && options.busy_poll_us > 0 {
        tracing::warn!(
            busy_poll_us = options.busy_poll_us,
            "--busy-poll applies to --datapath xdp only; the UDP workers sleep in recvmmsg"
        );
    }
    let udp_workers = match options.datapath {
        Datapath::Udp => options.workers.max(1),
        Datapath::Xdp => 1,
    };
    let udp_stats: Vec<Arc<WorkerStats>> = (0..udp_workers)
        .map(|_| Arc::new(WorkerStats::default()))
        .collect();
    let udp_cores: &[usize] = match options.datapath {
        Datapath::Udp => &options.cores,
        Datapath::Xdp => &[],
    };
    let events = (0..udp_workers).map(|_| journal.sink()).collect();
    running.udp = Some(
        UdpDatapath::start(
            Arc::clone(&live),
            Arc::clone(&socket),
            Ports::default(),
            events,
            &udp_stats,
            udp_cores,
            Arc::clone(&running.stop),
        )
        .context("starting the UDP workers")?,
    );
    running.stats.extend(udp_stats);
    if options.datapath == Datapath::Xdp {
        start_xdp(&options, &config, &live, &journal, &socket, &mut running)?;
    }
    tracing::info!(
        datapath = %options.datapath,
        udp_workers,
        xdp_workers = running.stats.len() - udp_workers,
        cores = ?options.cores,
        port = socket.port(),
        "datapath started"
    );

    running.timer = Some(
        start_timer(
            Arc::clone(&live),
            journal.sink(),
            Arc::clone(&running.steering),
            Arc::clone(&running.stop),
        )
        .context("starting the timer thread")?,
    );
    if let Some(address) = options.metrics {
        let skipped = (replay.damaged_records, replay.skipped_bytes);
        running.metrics = Some(start_metrics(
            address, &reloader, &journal, skipped, &running,
        )?);
    }

    if options.control.is_on() {
        running.control = Some(start_control(
            &options,
            &reloader,
            &journal,
            udp_workers,
            &running,
            &service_cores,
        )?);
    }

    // Bound before the privileges go: port 547 is a privileged port.
    running.bulk_leasequery = start_bulk_leasequery(&config, &reloader, &running)?;
    if let Some(bulk) = &running.bulk_leasequery
        && bulk.place(&service_cores).with_context(|| {
            format!("--service-cores: pinning the Bulk Leasequery listener to {service_cores:?}")
        })?
    {
        tracing::info!(cores = ?service_cores, "Bulk Leasequery listener placed");
    }

    if let Some(name) = &options.user {
        become_user(name, &options.journal)?;
    }

    tracing::info!(
        runtime_reservations = runtime_reservations.len(),
        reservations = %reloader.reservations_path().display(),
        "serving"
    );
    let mut notifier = Notifier::from_env();
    notifier.ready(&serving_status(&options, &running, table.len()));
    let mut status_at = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        notifier.tick(now, running.alive() && journal.writer_running());
        if now.duration_since(status_at) >= STATUS_INTERVAL {
            status_at = now;
            notifier.status(&serving_status(&options, &running, table.len()));
        }
        thread::sleep(Duration::from_millis(100));
        if os::take_hup() {
            notifier.reloading("reloading the configuration (SIGHUP)");
            log_reload(&reloader.reload(), "SIGHUP");
            notifier.ready(&serving_status(&options, &running, table.len()));
        }
    }
    tracing::info!("stopping");
    notifier.stopping("stopping: syncing the lease journal");

    let stats = std::mem::take(&mut running.stats);
    drop(running);
    drop(ddns);
    drop(reloader);
    let leases = table.len();
    match Arc::try_unwrap(journal) {
        Ok(journal) => journal.shutdown(),
        // Unreachable once every worker and the timer are joined; dropping the last
        // reference syncs the journal all the same.
        Err(journal) => drop(journal),
    }
    let (received, sent) = totals(&stats);
    let busy_turns = crate::stats::total(&stats, |stats| &stats.busy_turns);
    let sleeps = crate::stats::total(&stats, |stats| &stats.sleeps);
    let lost = crate::stats::losses(&stats);
    tracing::info!(leases, received, sent, busy_turns, sleeps, lost, "stopped");
    Ok(())
}

/// How often the `STATUS=` line shown by `systemctl status` is refreshed.
const STATUS_INTERVAL: Duration = Duration::from_secs(10);

/// The `STATUS=` line of a serving server: datapath, workers, leases, messages.
fn serving_status(options: &RunOptions, running: &Running, leases: usize) -> String {
    let (received, sent) = totals(&running.stats);
    format!(
        "serving on the {} datapath, {} workers: {leases} leases, {received} messages received, \
         {sent} sent",
        options.datapath,
        running.stats.len()
    )
}

/// The one capability the server keeps once it runs as `--user`: detaching the XDP programs on
/// the way out. Sockets are bound, XDP is attached and the BPF maps are open by then; sending,
/// receiving, reading the maps and writing the open journal need no capability.
const KEPT_CAPABILITIES: [caps::Capability; 1] = [caps::Capability::CAP_NET_ADMIN];

/// Becomes the unprivileged `name`, and checks that it can still write the journal's folder
/// (where compaction writes its new file).
fn become_user(name: &str, journal: &Path) -> anyhow::Result<()> {
    let user = os::lookup_user(name).with_context(|| format!("--user {name}"))?;
    os::drop_privileges(&user, &KEPT_CAPABILITIES)
        .with_context(|| format!("--user {name}: dropping root"))?;
    let folder = match journal.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let probe = folder.join(format!(".xdhcp6d-user-check.{}", std::process::id()));
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .with_context(|| {
            format!(
                "--user {name}: cannot write the journal folder {} (make it the user's)",
                folder.display()
            )
        })?;
    tracing::info!(
        user = name,
        uid = user.uid,
        gid = user.gid,
        kept = ?KEPT_CAPABILITIES,
        "running unprivileged"
    );
    Ok(())
}

/// The threads and attachments of a running server; dropping it stops them in order:
/// control API, datapath workers, XDP programs, timer, metrics endpoint.
struct Running {
    stop: Arc<AtomicBool>,
    stats: Vec<Arc<WorkerStats>>,
    udp: Option<UdpDatapath>,
    xdp_workers: Vec<JoinHandle<Result<XskWorker, XskError>>>,
    /// The attached XDP programs, one per interface (behind a lock for the metrics probe).
    steering: Arc<Mutex<Vec<Steering>>>,
    timer: Option<JoinHandle<()>>,
    metrics: Option<MetricsHandle>,
    control: Option<ControlHandle>,
    bulk_leasequery: Option<BulkHandle>,
    bulk_stats: Arc<BulkStats>,
    /// The DNS updater's counters, when a link has `[link.ddns]`.
    ddns: Option<metrics::Probe<crate::ddns::DdnsCounts>>,
}

impl Running {
    fn new() -> Self {
        Self {
            stop: Arc::new(AtomicBool::new(false)),
            stats: Vec::new(),
            udp: None,
            xdp_workers: Vec::new(),
            steering: Arc::new(Mutex::new(Vec::new())),
            timer: None,
            metrics: None,
            control: None,
            bulk_leasequery: None,
            bulk_stats: Arc::default(),
            ddns: None,
        }
    }
}

impl Running {
    /// Whether every datapath worker and the timer still run (with the journal writer, the
    /// watchdog's condition).
    fn alive(&self) -> bool {
        self.udp.as_ref().is_none_or(UdpDatapath::running)
            && self.xdp_workers.iter().all(|worker| !worker.is_finished())
            && self.timer.as_ref().is_none_or(|timer| !timer.is_finished())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // No forced release may start once the workers stop.
        self.control.take();
        self.bulk_leasequery.take();
        self.stop.store(true, Ordering::Relaxed);
        if let Some(udp) = self.udp.take() {
            udp.join();
        }
        for worker in self.xdp_workers.drain(..) {
            match worker.join() {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    tracing::error!(error = %error_chain(&error), "an AF_XDP worker failed")
                }
                Err(_) => tracing::error!("an AF_XDP worker panicked"),
            }
        }
        let mut steering = lock(&self.steering);
        for program in steering.iter_mut() {
            let interface = program.attached().map(|(name, _)| name.to_owned());
            if let Err(error) = program.detach() {
                tracing::error!(?interface, error = %error_chain(&error), "cannot detach the XDP program");
            }
        }
        steering.clear();
        drop(steering);
        if let Some(timer) = self.timer.take()
            && timer.join().is_err()
        {
            tracing::error!("the timer thread panicked");
        }
        self.metrics.take();
    }
}

/// Attaches the XDP program to every interface the links name, and to `[server]
/// relay-interfaces`, and starts one AF_XDP worker per receive queue of each.
fn start_xdp(
    options: &RunOptions,
    config: &Config,
    engine: &Arc<Live>,
    journal: &Arc<Journal>,
    socket: &Arc<ServerSocket>,
    running: &mut Running,
) -> anyhow::Result<()> {
    let object = crate::xdp::locate(options.ebpf_object.as_deref())?;
    let mut interfaces: Vec<&str> = Vec::new();
    for link in &config.links {
        for interface in &link.interfaces {
            if !interfaces.contains(&interface.name.as_str()) {
                interfaces.push(&interface.name);
            }
        }
    }
    // Relay-facing interfaces get the program and workers too: relayed traffic reaches AF_XDP
    // there, while direct clients find no link (`link_for_interface` is None) and are dropped.
    for name in &config.server.relay_interfaces {
        if !interfaces.contains(&name.as_str()) {
            interfaces.push(name);
        }
    }
    for name in interfaces {
        let mut steering = Steering::load(&object)
            .with_context(|| format!("loading the XDP program from {}", object.origin()))?;
        let mode = steering
            .attach(name, options.xdp_mode)
            .with_context(|| format!("attaching the XDP program to {name}"))?;
        // From here on `running` detaches it, whatever happens next.
        let steering_list = Arc::clone(&running.steering);
        let mut programs = lock(&steering_list);
        programs.push(steering);
        let Some(steering) = programs.last_mut() else {
            unreachable!("pushed just above");
        };
        let info = InterfaceInfo::query(name, None).with_context(|| format!("interface {name}"))?;
        let workers = afxdp::spawn_workers_with(
            steering,
            &info,
            &XskConfig {
                frames: afxdp::SERVER_FRAMES,
                ring_size: afxdp::SERVER_RING,
                busy_poll_us: options.busy_poll_us,
                ..XskConfig::default()
            },
            &options.cores,
            Arc::clone(engine),
            os::unix_now,
            |_queue| journal.sink(),
            Some(Arc::clone(socket)),
            options.spread,
            Arc::clone(&running.stop),
        )
        .with_context(|| format!("starting the AF_XDP workers on {name}"))?;
        tracing::info!(
            interface = name,
            mode = %mode,
            queues = workers.threads.len(),
            spread = options.spread.applies(workers.threads.len() as u32),
            busy_poll_us = options.busy_poll_us,
            "XDP program attached, AF_XDP workers started"
        );
        running.xdp_workers.extend(workers.threads);
        running.stats.extend(workers.stats);
    }
    Ok(())
}

/// Binds `[::]:547` and joins the DHCPv6 groups on every interface the links name.
fn open_socket(config: &Config) -> anyhow::Result<ServerSocket> {
    let port = Ports::default().server;
    let mut socket = udp::bind(port).map_err(|error| {
        let holder = match error.kind() {
            std::io::ErrorKind::AddrInUse => match port_holder(port) {
                Some(holder) => format!(": in use by {holder}; one server per host and port"),
                None => ": in use by another process; one server per host and port".to_owned(),
            },
            _ => String::new(),
        };
        anyhow::Error::new(error).context(format!(
            "binding the DHCPv6 server socket [::]:{port}{holder}"
        ))
    })?;
    for link in &config.links {
        for interface in &link.interfaces {
            if let Some(vlan) = interface.vlan {
                // The UDP datapath sees VLANs only as kernel VLAN interfaces (eth1.100),
                // which the configuration names like any other interface.
                tracing::warn!(
                    link = %link.name,
                    interface = %interface.name,
                    vlan,
                    "the UDP datapath does not see VLAN tags; name the VLAN interface instead"
                );
                continue;
            }
            if socket
                .joined()
                .iter()
                .any(|(name, _)| *name == interface.name)
            {
                continue;
            }
            let index = socket
                .join(&interface.name, &udp::GROUPS)
                .with_context(|| format!("link {:?}", link.name))?;
            tracing::info!(
                link = %link.name,
                interface = %interface.name,
                index,
                "joined ff02::1:2 and ff05::1:3"
            );
        }
    }
    Ok(socket)
}

/// The process that has a UDP socket bound to `port` (`pid N (name)`), from `/proc`.
fn port_holder(port: u16) -> Option<String> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/udp6", "/proc/net/udp"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|local| local.rsplit(':').next())
                .and_then(|hex| u16::from_str_radix(hex, 16).ok());
            if local_port == Some(port)
                && let Some(inode) = fields.get(9)
            {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|target| {
                inodes
                    .iter()
                    .any(|inode| target.as_os_str() == inode.as_str())
            })
        });
        if holds {
            let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            return Some(format!("pid {pid} ({})", name.trim()));
        }
    }
    None
}

/// Every lease in the table, for journal compaction.
fn snapshot(table: &LeaseTable) -> Vec<LeaseRecord> {
    let mut records = Vec::with_capacity(table.len());
    for shard in 0..table.shard_count() {
        table.iter_shard(shard, |record| records.push(record.clone()));
    }
    records
}

fn start_metrics(
    address: SocketAddr,
    reloader: &Arc<Reloader>,
    journal: &Arc<Journal>,
    (damaged_records, skipped_bytes): (u64, u64),
    running: &Running,
) -> anyhow::Result<MetricsHandle> {
    // Weak references, so that the journal can be shut down while the endpoint still runs.
    let lag = Arc::downgrade(journal);
    let health = Arc::downgrade(journal);
    let live = Arc::clone(reloader.live());
    let reloads = Arc::downgrade(reloader);
    let mut sources = Sources::new(running.stats.clone())
        .with_ddns(running.ddns.clone())
        .with_engine_probe(Arc::new(move || live.load()))
        .with_reloads(Arc::new(move || {
            reloads
                .upgrade()
                .map(|reloader| reloader.counts())
                .unwrap_or_default()
        }))
        .with_journal_lag(Arc::new(move || {
            lag.upgrade().map(|journal| journal.lag()).unwrap_or(0)
        }))
        .with_journal_health(Arc::new(move || {
            let journal = health.upgrade();
            JournalHealth {
                healthy: journal.as_ref().is_some_and(|journal| journal.is_healthy()),
                write_failures: journal.map_or(0, |journal| journal.write_failures()),
                damaged_records,
                skipped_bytes,
            }
        }));
    sources = sources.with_bulk_leasequery(Arc::clone(&running.bulk_stats));
    if !lock(&running.steering).is_empty() {
        let steering = Arc::clone(&running.steering);
        sources = sources.with_xdp(Arc::new(move || {
            let programs = lock(&steering);
            let mut total: Option<Counters> = None;
            for program in programs.iter() {
                if let Ok(counters) = program.counters() {
                    total
                        .get_or_insert_with(Counters::default)
                        .accumulate(&counters);
                }
            }
            total
        }));
    }
    metrics::spawn(address, sources)
        .with_context(|| format!("starting the metrics endpoint on {address}"))
}

/// Starts the control API over the engine, the journal (its sink for forced releases, its
/// health), the workers' counters and the XDP programs.
fn start_control(
    options: &RunOptions,
    reloader: &Arc<Reloader>,
    journal: &Arc<Journal>,
    udp_workers: usize,
    running: &Running,
    service_cores: &[usize],
) -> anyhow::Result<ControlHandle> {
    // A reload swaps the engine: the API asks this getter on every request. `running` stops
    // the control API before the reloader and the journal go.
    let live = Arc::clone(reloader.live());
    let sink = Arc::downgrade(journal);
    let state = Arc::downgrade(journal);
    let journal_path = options.journal.display().to_string();
    let durability = options.durability.to_string();
    let steering = Arc::clone(&running.steering);
    let sources = control::Sources {
        engine: Arc::new(move || live.load()),
        events: Arc::new(move || match sink.upgrade() {
            // A request emits a few events: a short lane, not a worker's.
            Some(journal) => Box::new(journal.sink_with_capacity(16)),
            // The journal is closing: the server is stopping and its answers with it.
            None => Box::new(xdhcp6_engine::table::Discard),
        }),
        journal: Arc::new(move || {
            let journal = state.upgrade();
            control::model::JournalView {
                path: journal_path.clone(),
                durability: durability.clone(),
                healthy: journal.as_ref().is_some_and(|journal| journal.is_healthy()),
                lag: journal.as_ref().map_or(0, |journal| journal.lag()),
                write_failures: journal.map_or(0, |journal| journal.write_failures()),
            }
        }),
        workers: running
            .stats
            .iter()
            .enumerate()
            .map(|(index, stats)| {
                let datapath = if index < udp_workers { "udp" } else { "af_xdp" };
                (datapath, Arc::clone(stats))
            })
            .collect(),
        xdp: Arc::new(move || {
            lock(&steering)
                .iter()
                .filter_map(|program| program.attached())
                .map(|(interface, mode)| format!("{interface} ({mode})"))
                .collect()
        }),
        datapath: options.datapath.to_string(),
        config_file: options.config.clone(),
        clock: os::unix_now,
        hooks: Arc::new(crate::reconfigure::Hooks {
            reloader: Arc::clone(reloader),
            reconfigurer: crate::reconfigure::Reconfigurer::new(reloader.live(), &options.journal)
                .with_cores(service_cores.to_vec()),
        }) as Arc<dyn control::ControlHooks>,
    };
    control::spawn(&options.control, sources).context("starting the control API")
}

/// Starts the Bulk Leasequery listener when `[leasequery] bulk-listen` names addresses.
fn start_bulk_leasequery(
    config: &Config,
    reloader: &Arc<Reloader>,
    running: &Running,
) -> anyhow::Result<Option<BulkHandle>> {
    let bulk = &config.leasequery.bulk;
    if bulk.listen.is_empty() {
        return Ok(None);
    }
    let live = Arc::clone(reloader.live());
    bulk_leasequery::spawn(
        &bulk.listen,
        bulk.max_connections,
        Arc::new(move || live.load()),
        Arc::clone(&running.bulk_stats),
        os::unix_now,
    )
    .map(Some)
    .context("starting the Bulk Leasequery listener ([leasequery] bulk-listen)")
}

/// The cores of the threads off the packet path (`--service-cores`, else the other cores the
/// process may use; empty: leave them where they start).
fn service_cores(options: &RunOptions) -> anyhow::Result<Vec<usize>> {
    let allowed = crate::placement::allowed_cores().context("reading the process's cores")?;
    Ok(crate::placement::service_cores(
        &options.service_cores,
        &options.cores,
        &allowed,
    ))
}

/// Keeps the journal writer (its write and `fdatasync` for every group commit) off the
/// workers' cores: on `--journal-cores`, else on the other cores the process may use.
fn place_journal_writer(journal: &Journal, options: &RunOptions) -> anyhow::Result<()> {
    let allowed = crate::placement::allowed_cores().context("reading the process's cores")?;
    let cores = crate::placement::writer_cores(&options.journal_cores, &options.cores, &allowed);
    if cores.is_empty() {
        if !options.cores.is_empty() {
            tracing::info!(
                cores = ?options.cores,
                "the journal writer shares the workers' cores: the process may use no other"
            );
        }
        return Ok(());
    }
    journal
        .pin_writer(&cores)
        .with_context(|| format!("--journal-cores: pinning the journal writer to {cores:?}"))?;
    tracing::info!(cores = ?cores, "journal writer placed");
    if options.durability == Durability::Always {
        warn_of_disk_completions(&options.journal, &options.cores);
    }
    Ok(())
}

/// Warns when the requests of the journal's disk complete on the workers' cores
/// ([`xdhcp6_datapath::blockdev`]): a disk with one request queue whose interrupts reach
/// them, with `rq_affinity` other than 2.
fn warn_of_disk_completions(journal: &Path, workers: &[usize]) {
    let Some(disk) = xdhcp6_datapath::blockdev::Placement::of(journal) else {
        return;
    };
    let cores = disk.worker_cores(workers);
    if cores.is_empty() {
        return;
    }
    let irqs: Vec<String> = disk
        .irqs
        .iter()
        .map(|(irq, cores)| format!("{irq} on {cores:?}"))
        .collect();
    let name = disk.name();
    tracing::warn!(
        disk = name,
        irqs = irqs.join(", "),
        rq_affinity = disk.rq_affinity.as_deref().unwrap_or("none"),
        worker_cores = ?cores,
        "the journal's disk completes its requests on workers' cores: they pay for every sync \
         of --durability always; write 2 to /sys/block/{name}/queue/rq_affinity, or move the \
         disk's interrupts off them (docs/deployment.md)"
    );
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Calls `handle_timeout` once a second until `stop`; its events go to the journal. Also
/// forwards what the XDP programs logged (aya-log) to the daemon's log.
fn start_timer(
    live: Arc<Live>,
    mut events: JournalSink,
    steering: Arc<Mutex<Vec<Steering>>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("xdhcp6-timer".into())
        .spawn(move || {
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now < next {
                    thread::sleep((next - now).min(Duration::from_millis(100)));
                    continue;
                }
                live.load().handle_timeout(os::unix_now(), &mut events);
                for program in lock(&steering).iter_mut() {
                    program.flush_log();
                }
                next += Duration::from_secs(1);
                if next < now {
                    // Fell behind (suspend, a stalled disk): do not catch up in a burst.
                    next = now + Duration::from_secs(1);
                }
            }
        })
}

/// Logs the outcome of a reload asked for by `cause`.
pub fn log_reload(result: &Result<ReloadReport, ReloadError>, cause: &str) {
    match result {
        Ok(report) => tracing::info!(
            cause,
            generation = report.generation,
            links_added = ?report.links_added,
            links_retired = ?report.links_retired,
            links_changed = ?report.links_changed,
            pools_changed = ?report.pools_changed,
            reservations = report.reservations,
            runtime_reservations = report.runtime_reservations,
            leases_loaded = report.leases_loaded,
            lease_conflicts = report.lease_conflicts,
            "configuration reloaded"
        ),
        Err(error) => tracing::error!(
            cause,
            file = %error.file,
            field = %error.field,
            problem = %error.problem,
            restart_required = ?error.restart_required,
            "configuration reload refused; the running configuration keeps serving"
        ),
    }
}

fn log_config(options: &RunOptions, config: &Config) {
    tracing::info!(
        config = %options.config.display(),
        duid = %hex(&config.server.duid),
        preference = config.server.preference,
        links = config.links.len(),
        reservations = config.reservations.len(),
        "configuration loaded"
    );
    for link in &config.links {
        let interfaces: Vec<String> = link
            .interfaces
            .iter()
            .map(|interface| match interface.vlan {
                Some(vlan) => format!("{}.{vlan}", interface.name),
                None => interface.name.clone(),
            })
            .collect();
        tracing::info!(
            link = %link.name,
            interfaces = ?interfaces,
            relay_prefixes = link.relay_prefixes.len(),
            rapid_commit = link.rapid_commit,
            "link"
        );
        for pool in &link.na_pools {
            tracing::info!(link = %link.name, prefix = %pool.prefix, range = %pool.range, "address pool");
        }
        for pool in &link.pd_pools {
            tracing::info!(
                link = %link.name,
                prefix = %pool.prefix,
                range = %pool.range,
                delegated_length = pool.delegated_len,
                "prefix pool"
            );
        }
    }
}

fn totals(stats: &[Arc<WorkerStats>]) -> (u64, u64) {
    let sum = |counters: &[std::sync::atomic::AtomicU64]| -> u64 {
        counters
            .iter()
            .map(|counter| counter.load(Ordering::Relaxed))
            .sum()
    };
    stats.iter().fold((0, 0), |(received, sent), stats| {
        (received + sum(&stats.received), sent + sum(&stats.sent))
    })
}

/// Colon-separated hex, as DUIDs are written in the configuration.
pub fn hex(bytes: &[u8]) -> String {
    xdhcp6_engine::hex::colon(bytes)
}

#[cfg(test)]
mod tests {
    use xdhcp6_engine::table::{ClaimAs, Discard, IaKind, Lifetimes};

    use super::*;

    #[test]
    fn snapshot_holds_every_lease() {
        let table = LeaseTable::with_shards(64, 4, SaltKey::from_salt("t"));
        for client in 0u8..10 {
            let duid = [0, 3, 0, 1, 2, 0, 0, 0, 0, client];
            let key = table.ia_key(&duid, 1, IaKind::Na, xdhcp6_engine::config::LinkId(0));
            let addr = 0x2001_0db8_0000_0000_0000_0000_0000_0100 + u128::from(client);
            let lifetimes = Lifetimes {
                preferred: 10,
                valid: 20,
            };
            table
                .claim(
                    &key,
                    addr,
                    128,
                    ClaimAs::Bound,
                    lifetimes,
                    1000,
                    &mut Discard,
                )
                .unwrap();
        }
        let mut records = snapshot(&table);
        records.sort_by_key(|record| record.lease.addr);
        assert_eq!(records.len(), 10);
        assert_eq!(records[3].duid.as_bytes()[9], 3);
    }

    #[test]
    fn hex_matches_the_configuration_syntax() {
        assert_eq!(hex(&[0, 1, 0xab]), "00:01:ab");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn options_default_like_the_command_line() {
        let options = RunOptions::new(PathBuf::from("x.toml"));
        assert_eq!(options.datapath, Datapath::Udp);
        assert_eq!(options.journal, PathBuf::from(DEFAULT_JOURNAL));
        assert_eq!(options.metrics, Some("[::1]:9547".parse().unwrap()));
        assert_eq!(options.workers, 1);
    }
}
