//! `xdhcp6d`: the xdhcp6 DHCPv6 server appliance.
#![forbid(unsafe_code)]

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser, Subcommand};
use xdhcp6_common::{Counters, PassReason};
use xdhcp6_datapath::os;
use xdhcp6_engine::{
    Engine,
    alloc::SaltKey,
    config::Config,
    table::{INFINITE, IaKind, LeaseRecord, LeaseState, LeaseTable},
};
use xdhcp6d::control::{ControlOptions, DEFAULT_SOCKET};
use xdhcp6d::ctl::CtlArgs;
use xdhcp6d::handoff::Spread;
use xdhcp6d::journal::{Durability, JournalErrors, Link, LinkNames, read_journal};
use xdhcp6d::logging::{self, LogFormat};
use xdhcp6d::runtime::{self, DEFAULT_JOURNAL, Datapath, RunOptions};
use xdhcp6d::xdp::{AttachMode, Steering};

/// `print!` that hands a failed write (a closed pipe: `xdhcp6d check-config FILE | head -1`)
/// back as an error instead of panicking; `main` ends quietly on a broken pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        std::io::Write::write_fmt(&mut std::io::stdout(), format_args!($($arg)*))?
    };
}

/// `println!` that hands a failed write back as an error, as [`out!`] does.
macro_rules! outln {
    ($($arg:tt)*) => {
        out!("{}\n", format_args!($($arg)*))
    };
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// DHCPv6 server appliance (RFC 9915) for semi-redundant deployments (RFC 6853).
#[derive(Debug, Parser)]
#[command(name = "xdhcp6d", version, propagate_version = true)]
struct Cli {
    /// How log lines are written to stderr: text (readable) or json (one object per line with
    /// timestamp, level, target, message and the event's fields, for log pipelines).
    #[arg(long, global = true, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the DHCPv6 server until SIGTERM or SIGINT.
    ///
    /// Loads the configuration, replays the lease journal, binds [::]:547 (joined to
    /// ff02::1:2 and ff05::1:3 on every interface the links name) and answers clients. On
    /// SIGHUP it reloads the configuration (docs/reload.md); on SIGTERM/SIGINT it stops the
    /// workers, syncs the journal and exits 0. Needs root, or CAP_NET_BIND_SERVICE (UDP) plus
    /// CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_NET_RAW and CAP_IPC_LOCK (XDP), to start; with
    /// --user it then runs unprivileged. Under systemd (NOTIFY_SOCKET set) it reports READY=1
    /// once it answers, pings the watchdog (WATCHDOG_USEC) while every worker runs, and
    /// STOPPING=1 on the way out.
    Run {
        /// The TOML configuration file (see `check-config`).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Which datapath answers clients: udp (kernel socket, portable) or xdp (AF_XDP).
        #[arg(long, value_enum, default_value_t = Datapath::Udp)]
        datapath: Datapath,
        /// XDP attach mode for --datapath xdp: native (driver), skb (generic) or auto.
        #[arg(long, default_value_t = AttachMode::Auto)]
        xdp_mode: AttachMode,
        /// The lease journal: replayed at start, appended to while running. PATH.lock names
        /// the server using it: a second server on the same journal is refused.
        #[arg(long, value_name = "PATH", default_value = DEFAULT_JOURNAL)]
        journal: PathBuf,
        /// What damaged journal records do at start. skip (default): replay every good record
        /// around them, keep the file as PATH.corrupt, log and count what was skipped
        /// (xdhcp6_journal_damaged_records). strict: refuse to start, changing nothing.
        #[arg(long, value_enum, value_name = "MODE", default_value_t = JournalErrors::Skip)]
        journal_errors: JournalErrors,
        /// Mebibytes of zeros kept written and synced after the journal's last record, so that
        /// each sync overwrites blocks the file has and commits no file-system metadata (the
        /// journal file is that much longer than its records); when half is used, a
        /// compaction writes the next file with its own zeros (as many as its snapshot has
        /// bytes, if more) while the server goes on. 0 (default): the file grows with every
        /// write. A tail takes the sync's metadata commit away but adds a compaction's writes
        /// every half tail of records, which cost throughput where they share the disk.
        #[arg(long, value_name = "MIB", default_value_t = xdhcp6d::journal::DEFAULT_PREALLOC_BYTES >> 20)]
        journal_prealloc: u64,
        /// always (default): a reply leaves only once its lease is synced to disk (group commit
        /// keeps the throughput). batch: the journal syncs every --batch-interval; a crash can
        /// lose the leases of that last interval although their Replies left. With either,
        /// while the journal cannot be written (a full disk) the server answers no Solicit,
        /// Request, Renew or Rebind, and retries the writes until they succeed.
        #[arg(long, value_enum, default_value_t = DurabilityMode::Always)]
        durability: DurabilityMode,
        /// With --durability always: the least time from the start of one journal sync to the
        /// start of the next, microseconds; the leases bound meanwhile wait and share the next
        /// sync. 0 (default): a sync starts as soon as the last one ends. A window caps the
        /// syncs per second (1000 at 1000 µs), and with them the CPU the writer and the
        /// workers spend on each, and adds at most that much to a reply's wait.
        #[arg(long, value_name = "US", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=100_000))]
        group_commit_us: u64,
        /// Milliseconds between journal syncs with --durability batch.
        #[arg(long, value_name = "MS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        batch_interval: u64,
        /// Address of the Prometheus endpoint (http://ADDR/metrics), or "off".
        #[arg(long, value_name = "ADDR|off", default_value = "[::1]:9547", value_parser = parse_metrics)]
        metrics: MetricsAddress,
        /// UDP datapath worker threads, all on the one server socket.
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        workers: u16,
        /// Cores to pin the workers to, in worker order, e.g. "2,3" or "2-5" (default:
        /// unpinned). UDP workers beyond the list run with the threads of --service-cores.
        #[arg(long, value_name = "LIST", value_parser = parse_cores)]
        cores: Option<CoreList>,
        /// Cores for the lease journal's writer thread (its write and fdatasync for every
        /// group commit, and the compactions it starts), e.g. "0" (default: every core the
        /// process may use except those of --cores, so that it does not take the workers'
        /// time; with no other core, or without --cores, it is not pinned).
        #[arg(long, value_name = "LIST", value_parser = parse_cores)]
        journal_cores: Option<CoreList>,
        /// Cores for the threads off the packet path: the main thread, the timer, metrics and
        /// control threads, the DNS updater, the Bulk Leasequery listener, the Reconfigure
        /// retransmissions and, with --datapath xdp, the UDP slow path, e.g. "0" (default:
        /// every core the process may use except those of --cores; with no other core, or
        /// without --cores, they are not pinned).
        #[arg(long, value_name = "LIST", value_parser = parse_cores)]
        service_cores: Option<CoreList>,
        /// With --datapath xdp: auto spreads the requests of an interface with several RX
        /// queues over its workers by client (a relay's traffic arrives on one queue), off
        /// leaves each queue's requests to its own worker.
        #[arg(long, value_enum, value_name = "MODE", default_value_t = Spread::Auto)]
        spread: Spread,
        /// With --datapath xdp: microseconds an AF_XDP worker keeps polling its rings after
        /// the last request it received before it sleeps in poll(2). 0 (default): it sleeps
        /// as soon as it finds nothing. While requests come closer together than this the
        /// worker never sleeps, so that none waits for its core to wake from idle (a halted
        /// virtual CPU, a deep C-state); the worker's core is then busy all the time. At most
        /// 1,000,000 (one second).
        #[arg(long, value_name = "US", default_value_t = 0, value_parser = clap::value_parser!(u32).range(..=1_000_000))]
        busy_poll: u32,
        /// The compiled XDP object for --datapath xdp (default: $XDHCP6_EBPF_OBJECT, else the
        /// embedded copy).
        #[arg(long, value_name = "PATH")]
        ebpf_object: Option<PathBuf>,
        /// Run as this unprivileged user once the sockets are bound and XDP is attached,
        /// keeping only CAP_NET_ADMIN (to detach XDP on the way out). The journal's folder must
        /// be writable by the user (compaction writes new files there).
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// The control API's unix socket (mode 0600; `xdhcp6d ctl` talks to it), or "off".
        /// A stale socket file is replaced; one another running server holds is an error.
        #[arg(long, value_name = "PATH|off", default_value = DEFAULT_SOCKET, value_parser = parse_control)]
        control: ControlSocket,
        /// Also serve the control API on this TCP address, e.g. `[::1]:9548` (needs
        /// --control-token-file).
        #[arg(long, value_name = "ADDR", requires = "control_token_file")]
        control_tcp: Option<SocketAddr>,
        /// The file holding the bearer token the TCP listener requires ("Authorization:
        /// Bearer TOKEN"); never given on the command line.
        #[arg(long, value_name = "FILE", requires = "control_tcp")]
        control_token_file: Option<PathBuf>,
        /// The runtime reservations file: reservations added through the control API, in the
        /// configuration's [[reservation]] syntax, merged with the configuration's at start
        /// and on every reload (SIGHUP). Default: reservations.toml in the journal's folder.
        #[arg(long, value_name = "PATH")]
        reservations: Option<PathBuf>,
    },
    /// Ask a running server through its control API (leases, pools, reservations, reload).
    ///
    /// Talks HTTP/JSON to the server's control socket (or its TCP listener with --url and
    /// --token-file); prints tables, or the server's JSON with --json. An error answer is
    /// printed and the exit status is non-zero. See docs/api.md.
    Ctl(CtlArgs),
    /// Ask every server of an RFC 6853 set who holds an address, a prefix or a client's
    /// bindings (Leasequery, RFC 5007; Bulk Leasequery over TCP, RFC 5460).
    ///
    /// Sends one query to each server at once, merges the answers and prints which server
    /// holds the binding (addresses, prefixes, lifetimes, time since the client's last
    /// transaction, relay data), which servers did not answer and why, and, with --configs,
    /// which server would own the address or prefix. Exit status: 0 found, 3 every server
    /// answered and none holds it, 4 none holds it and a server did not answer or refused,
    /// 1 an error, 2 a command-line mistake. See docs/leasequery.md.
    Query(xdhcp6d::query::QueryArgs),
    /// Print the live leases of a lease journal (the server may be running).
    ///
    /// Reads the journal without changing it. Columns: client DUID (hex), IAID, kind (na:
    /// address, pd: delegated prefix), address or prefix, link, state, preferred and valid
    /// lifetimes (seconds) and when the lease expires (UTC).
    Leases {
        /// The lease journal.
        #[arg(long, value_name = "PATH", default_value = DEFAULT_JOURNAL)]
        journal: PathBuf,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Also print leases that have expired but were not yet swept from the journal.
        #[arg(long)]
        all: bool,
        /// The configuration, for the link names of a version-1 journal (which records link
        /// numbers); a journal of version 2 or later names its links itself.
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Validate a configuration file and print what it serves.
    ///
    /// Every error names the file, the field and the problem; the exit status is non-zero when
    /// the file is invalid. Nothing is written (a `duid-file` that does not exist yet is
    /// reported, not created).
    CheckConfig {
        /// The TOML configuration file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The journal `run` is given: its folder holds the default runtime reservations
        /// file.
        #[arg(long, value_name = "PATH", default_value = DEFAULT_JOURNAL)]
        journal: PathBuf,
        /// The runtime reservations file `run` is given (`run --reservations`), merged with
        /// the configuration's reservations as at start. Default: reservations.toml in the
        /// journal's folder; a missing file holds none.
        #[arg(long, value_name = "PATH")]
        reservations: Option<PathBuf>,
    },
    /// Import a Kea DHCPv6 server: its configuration, its leases and its server DUID.
    ///
    /// Writes DIR/xdhcp6.toml (subnets and shared networks as links, pools, pd-pools,
    /// interface, interface-id and relay selection, reservations, options, lifetimes, Kea's
    /// server DUID), DIR/leases.journal (the active leases of the memfile lease file, for
    /// `run --journal`) and DIR/import-report.txt. Whatever xdhcp6 cannot express is listed in
    /// the report, printed and written at the top of the TOML; nothing is dropped silently.
    /// Errors name the Kea file and the JSON path or CSV line. See docs/migration.md.
    ImportKea {
        /// Kea's configuration (kea-dhcp6.json; // # and /* */ comments allowed).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Kea's memfile lease file (kea-leases6.csv); without it no journal is written.
        #[arg(short, long, value_name = "FILE")]
        leases: Option<PathBuf>,
        /// The server DUID Kea generated and kept (DATA-DIRECTORY/kea-dhcp6-serverid); needed
        /// unless the configuration's server-id gives the whole DUID.
        #[arg(long, value_name = "FILE")]
        server_id_file: Option<PathBuf>,
        /// The folder written to (created if missing).
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
        /// Replace files a previous import left in DIR.
        #[arg(long)]
        force: bool,
    },
    /// Attach the XDP steering program to an interface and print its counters every second.
    ///
    /// Frames that are DHCPv6 to a server (IPv6/UDP port 547, up to two VLAN tags) count as
    /// `steered`, or `no_socket` while no AF_XDP socket serves their queue (they then go to the
    /// kernel); all other frames count as `passed`, split by reason. Needs root (CAP_BPF and
    /// CAP_NET_ADMIN). Ctrl-C detaches the program.
    XdpWatch {
        /// Interface to attach to.
        #[arg(short, long, value_name = "IF")]
        interface: String,
        /// XDP attach mode: native (driver), skb (generic) or auto (native, else skb).
        #[arg(short, long, default_value_t = AttachMode::Auto)]
        mode: AttachMode,
        /// Stop after this many seconds (default: run until interrupted).
        #[arg(short, long, value_name = "N")]
        seconds: Option<u64>,
        /// The compiled XDP object (default: $XDHCP6_EBPF_OBJECT, else the embedded copy).
        #[arg(long, value_name = "PATH")]
        ebpf_object: Option<PathBuf>,
    },
    /// Write the man pages or shell completions (for packaging).
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: xdhcp6d::generate::Generate,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Nothing else installs a subscriber; should one be there, its format stays.
    let _ = logging::init(cli.log_format);
    let result = match cli.command {
        Command::Run {
            config,
            datapath,
            xdp_mode,
            journal,
            journal_errors,
            journal_prealloc,
            durability,
            group_commit_us,
            batch_interval,
            metrics,
            workers,
            cores,
            journal_cores,
            service_cores,
            spread,
            busy_poll,
            ebpf_object,
            user,
            control,
            control_tcp,
            control_token_file,
            reservations,
        } => runtime::run(RunOptions {
            config,
            datapath,
            xdp_mode,
            journal,
            journal_errors,
            journal_prealloc: journal_prealloc.saturating_mul(1 << 20),
            durability: durability.with_interval(batch_interval),
            group_commit: std::time::Duration::from_micros(group_commit_us),
            metrics: metrics.0,
            workers: usize::from(workers),
            cores: cores.map(|cores| cores.0).unwrap_or_default(),
            journal_cores: journal_cores.map(|cores| cores.0).unwrap_or_default(),
            service_cores: service_cores.map(|cores| cores.0).unwrap_or_default(),
            spread,
            busy_poll_us: busy_poll,
            ebpf_object,
            user,
            control: ControlOptions {
                socket: control.0,
                tcp: control_tcp,
                token_file: control_token_file,
            },
            reservations,
        }),
        Command::Ctl(args) => xdhcp6d::ctl::run(&args),
        Command::Query(args) => match xdhcp6d::query::main(&args) {
            Ok(status) => return status,
            Err(error) => Err(error),
        },
        Command::Leases {
            journal,
            json,
            all,
            config,
        } => leases(&journal, json, all, config.as_deref()),
        Command::CheckConfig {
            file,
            journal,
            reservations,
        } => check_config(
            &file,
            &reservations.unwrap_or_else(|| xdhcp6d::reload::default_reservations(&journal)),
        ),
        Command::ImportKea {
            config,
            leases,
            server_id_file,
            output,
            force,
        } => import_kea(
            &config,
            leases.as_deref(),
            server_id_file.as_deref(),
            &output,
            force,
        ),
        Command::XdpWatch {
            interface,
            mode,
            seconds,
            ebpf_object,
        } => xdp_watch(&interface, mode, seconds, ebpf_object),
        Command::Generate { what } => what.write(Cli::command()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output has gone (`| head -1`): nothing is wrong, nobody listens.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            // The chain of causes, not a backtrace: operators read this. A log pipeline reads
            // it as one more JSON line.
            match cli.log_format {
                LogFormat::Text => eprintln!("xdhcp6d: error: {error:#}"),
                LogFormat::Json => tracing::error!(error = format!("{error:#}"), "xdhcp6d failed"),
            }
            ExitCode::FAILURE
        }
    }
}

/// Whether an error comes from writing to a closed pipe.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|cause| cause.kind() == std::io::ErrorKind::BrokenPipe)
}

/// `--durability` on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum DurabilityMode {
    /// Reply only once the lease is on disk.
    Always,
    /// Sync every --batch-interval milliseconds.
    Batch,
}

impl DurabilityMode {
    fn with_interval(self, milliseconds: u64) -> Durability {
        match self {
            DurabilityMode::Always => Durability::Always,
            DurabilityMode::Batch => Durability::Batch {
                interval: Duration::from_millis(milliseconds),
            },
        }
    }
}

/// `--metrics`: an address, or `None` for "off".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MetricsAddress(Option<SocketAddr>);

fn parse_metrics(text: &str) -> Result<MetricsAddress, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(MetricsAddress(None));
    }
    text.parse()
        .map(|address| MetricsAddress(Some(address)))
        .map_err(|_| {
            format!("{text:?} is not an address like [::1]:9547 or 127.0.0.1:9547, or \"off\"")
        })
}

/// `--control`: a socket path, or `None` for "off".
#[derive(Clone, Debug, PartialEq, Eq)]
struct ControlSocket(Option<PathBuf>);

fn parse_control(text: &str) -> Result<ControlSocket, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(ControlSocket(None));
    }
    if text.is_empty() {
        return Err("give a socket path, or \"off\"".to_owned());
    }
    Ok(ControlSocket(Some(PathBuf::from(text))))
}

/// `--cores`: a list of core numbers and ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CoreList(Vec<usize>);

fn parse_cores(text: &str) -> Result<CoreList, String> {
    let cores = xdhcp6_datapath::os::parse_core_list(text)?;
    if cores.is_empty() {
        return Err("no cores given".to_owned());
    }
    Ok(CoreList(cores))
}

/// `xdhcp6d leases`.
fn leases(journal: &Path, json: bool, all: bool, config: Option<&Path>) -> anyhow::Result<()> {
    let links: Vec<String> = match config {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("{}: cannot read", file.display()))?;
            Config::from_toml_str(&text, &file.display().to_string())?
                .links
                .into_iter()
                .map(|link| link.name)
                .collect()
        }
        None => Vec::new(),
    };
    let names = LinkNames::new(links.iter().map(String::as_str));
    let replay =
        read_journal(journal, &names).with_context(|| format!("reading {}", journal.display()))?;
    if replay.corrupt {
        eprintln!(
            "{}: skipped {} damaged record(s), {} bytes from offset {}; every other lease is listed",
            journal.display(),
            replay.damaged_records,
            replay.skipped_bytes,
            replay.corrupt_offset.unwrap_or(0),
        );
    }
    let now = os::unix_now();
    // Leases on a configured link first, in its order; then those the journal names a link
    // the configuration lacks (all of a named journal's, without --config).
    let placed = replay.records.into_iter().map(|record| (None, record));
    let unplaced = replay.unplaced.into_iter().map(|lease| {
        let label = match lease.link {
            Link::Name(name) => name.into_owned(),
            Link::Position(position) => position.to_string(),
        };
        (Some(label), lease.record)
    });
    let mut records: Vec<(Option<String>, LeaseRecord)> = placed
        .chain(unplaced)
        .filter(|(_, record)| all || !record.lease.is_expired(now))
        .collect();
    records.sort_by(|(a_label, a), (b_label, b)| {
        let key = |label: &Option<String>, record: &LeaseRecord| {
            (
                label.clone(),
                record.lease.link,
                record.lease.kind == IaKind::Pd,
                record.lease.addr,
            )
        };
        key(a_label, a).cmp(&key(b_label, b))
    });
    let rows: Vec<LeaseRow> = records
        .iter()
        .map(|(label, record)| {
            let mut row = LeaseRow::new(record, &links);
            if let Some(label) = label {
                row.link.clone_from(label);
            }
            row
        })
        .collect();
    if json {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        out!("{}", lease_table(&rows));
    }
    Ok(())
}

/// `xdhcp6d import-kea`.
fn import_kea(
    config: &Path,
    leases: Option<&Path>,
    server_id_file: Option<&Path>,
    output: &Path,
    force: bool,
) -> anyhow::Result<()> {
    let read = |path: &Path| -> anyhow::Result<String> {
        let size = std::fs::metadata(path)
            .with_context(|| format!("{}: cannot read", path.display()))?
            .len();
        anyhow::ensure!(
            size <= (xdhcp6d::kea::MAX_CONFIG_BYTES as u64) * 16,
            "{}: {size} bytes is too large to import",
            path.display()
        );
        std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
    };
    let config_text = read(config)?;
    let leases_text = leases.map(read).transpose()?;
    let server_id_text = server_id_file.map(read).transpose()?;
    let names = [Some(config), leases, server_id_file].map(|path| {
        path.map(|path| path.display().to_string())
            .unwrap_or_default()
    });
    let imported = xdhcp6d::kea::import(xdhcp6d::kea::Sources {
        config: (&config_text, &names[0]),
        leases: leases_text.as_deref().map(|text| (text, names[1].as_str())),
        server_id: server_id_text
            .as_deref()
            .map(|text| (text, names[2].as_str())),
        now: os::unix_now(),
    })?;
    std::fs::create_dir_all(output)
        .with_context(|| format!("{}: cannot create", output.display()))?;
    let toml_path = output.join("xdhcp6.toml");
    let journal_path = output.join("leases.journal");
    let report_path = output.join("import-report.txt");
    let mut files: Vec<(&Path, &[u8])> = vec![(&toml_path, imported.toml.as_bytes())];
    if let Some(journal) = &imported.journal {
        files.push((&journal_path, journal));
    }
    let report = imported.report.to_string();
    files.push((&report_path, report.as_bytes()));
    if !force {
        for (path, _) in &files {
            anyhow::ensure!(
                !path.exists(),
                "{} exists already (a previous import?): give --force to replace it",
                path.display()
            );
        }
    }
    for (path, bytes) in &files {
        // Written beside and renamed, so that a server never reads half a file.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, bytes)
            .with_context(|| format!("{}: cannot write", partial.display()))?;
        std::fs::rename(&partial, path)
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    out!("{report}");
    outln!(
        "Wrote {} ({} links, {} reservations){}.",
        toml_path.display(),
        imported.config.links.len(),
        imported.config.reservations.len(),
        if imported.journal.is_some() {
            format!(" and {}", journal_path.display())
        } else {
            String::new()
        }
    );
    Ok(())
}

/// One lease as `leases` prints it.
#[derive(Debug, serde::Serialize)]
struct LeaseRow {
    duid: String,
    iaid: u32,
    kind: &'static str,
    lease: String,
    link: String,
    state: &'static str,
    preferred: Option<u32>,
    valid: Option<u32>,
    /// Unix seconds; `None` for never.
    expires: Option<u32>,
    expires_at: String,
    relay: Option<xdhcp6d::control::relay::RelayView>,
    reconfigure: bool,
}

impl LeaseRow {
    fn new(record: &LeaseRecord, links: &[String]) -> Self {
        let lease = &record.lease;
        let finite = |seconds: u32| (seconds != INFINITE).then_some(seconds);
        Self {
            duid: hex(record.duid.as_bytes()),
            iaid: lease.iaid,
            kind: match lease.kind {
                IaKind::Na => "na",
                IaKind::Pd => "pd",
            },
            lease: match lease.kind {
                IaKind::Na => lease.ip().to_string(),
                IaKind::Pd => format!("{}/{}", lease.ip(), lease.prefix_len),
            },
            link: links
                .get(lease.link.index())
                .cloned()
                .unwrap_or_else(|| lease.link.0.to_string()),
            state: match lease.state {
                LeaseState::Offered => "offered",
                LeaseState::Bound => "bound",
                LeaseState::Declined => "declined",
            },
            preferred: finite(lease.lifetimes.preferred),
            valid: finite(lease.lifetimes.valid),
            expires: finite(lease.expires),
            expires_at: match finite(lease.expires) {
                Some(at) => utc(at),
                None => "never".to_owned(),
            },
            relay: record
                .relay
                .as_ref()
                .map(xdhcp6d::control::relay::RelayView::of),
            reconfigure: record.reconfigure,
        }
    }
}

/// The rows as a table with aligned columns and a header.
fn lease_table(rows: &[LeaseRow]) -> String {
    let lifetime = |seconds: Option<u32>| seconds.map_or("infinite".to_owned(), |s| s.to_string());
    let header = [
        "DUID",
        "IAID",
        "KIND",
        "LEASE",
        "LINK",
        "STATE",
        "PREFERRED",
        "VALID",
        "EXPIRES",
    ];
    let mut table: Vec<[String; 9]> = vec![header.map(str::to_owned)];
    for row in rows {
        table.push([
            row.duid.clone(),
            row.iaid.to_string(),
            row.kind.to_owned(),
            row.lease.clone(),
            row.link.clone(),
            row.state.to_owned(),
            lifetime(row.preferred),
            lifetime(row.valid),
            row.expires_at.clone(),
        ]);
    }
    let mut widths = [0usize; 9];
    for line in &table {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.len());
        }
    }
    let mut text = String::new();
    for line in &table {
        let cells: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc(seconds: u32) -> String {
    let days = i64::from(seconds / 86_400);
    let rest = seconds % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

fn check_config(file: &std::path::Path, reservations: &std::path::Path) -> anyhow::Result<()> {
    // As start-up reads them: the runtime reservations merged into the file's.
    let runtime = xdhcp6d::reload::read_reservations(reservations)?;
    let mut config = xdhcp6d::reload::check(file, reservations, &runtime)?;
    xdhcp6d::check::bulk_listeners(file, &config)?;
    let duid = if config.server.duid.is_empty() {
        match &config.server.duid_file {
            Some(path) if path.exists() => format!("read from {} at start", path.display()),
            Some(path) => format!("generated into {} at first start", path.display()),
            None => "none".to_owned(),
        }
    } else {
        hex(&config.server.duid)
    };
    if config.server.duid.is_empty() {
        // A stand-in so the allocators can be built; the real DUID is resolved at start.
        config.server.duid = vec![0, 3, 0, 1, 0, 0, 0, 0, 0, 0];
    }
    let config = Arc::new(config);
    let table = Arc::new(LeaseTable::with_capacity(
        1024,
        SaltKey::from_salt(&config.server.salt),
    ));
    Engine::new(Arc::clone(&config), table)
        .with_context(|| format!("{}: the pools cannot be served", file.display()))?;
    outln!("{}: valid", file.display());
    outln!("  server DUID: {duid}");
    outln!("  preference:  {}", config.server.preference);
    outln!("  rebind-foreign: {:?}", config.server.rebind_foreign);
    outln!("  unknown-link: {:?}", config.server.unknown_link);
    for link in &config.links {
        let timers = link.timers;
        outln!(
            "  link {:?}: T1 {} s, T2 {} s, preferred {} s, valid {} s, rapid commit {}",
            link.name,
            timers.t1,
            timers.t2,
            timers.preferred,
            timers.valid,
            link.rapid_commit
        );
        outln!(
            "    preference {}, renew-creates-bindings {}",
            link.preference,
            link.renew_creates_bindings
        );
        outln!(
            "    advertise-delay-ms {} (applied: {} ms), reconfigure-accept {}",
            link.advertise_delay_ms,
            link.advertise_delay(),
            link.reconfigure_accept
        );
        if !link.options.always_send.is_empty() {
            outln!("    always-send options {:?}", link.options.always_send);
        }
        if !link.rsoo_allow.is_empty() {
            outln!("    relay-supplied options allowed {:?}", link.rsoo_allow);
        }
        for pool in &link.na_pools {
            outln!(
                "    addresses {} (this server: {})",
                pool.prefix,
                pool.range
            );
        }
        for pool in &link.pd_pools {
            outln!(
                "    prefixes /{} from {} (this server: {}){}",
                pool.delegated_len,
                pool.prefix,
                pool.range,
                if pool.inside_on_link {
                    ", inside the on-link prefix"
                } else {
                    ""
                }
            );
        }
    }
    outln!("  reservations: {}", config.reservations.len());
    for key in xdhcp6_engine::config::ClientKey::NAMES {
        let count = config
            .reservations
            .iter()
            .filter(|reservation| reservation.client.name() == key)
            .count();
        if count > 0 {
            outln!("    by {key}: {count}");
        }
    }
    let with_options = config
        .reservations
        .iter()
        .filter(|reservation| !reservation.options.encoded.is_empty())
        .count();
    if with_options > 0 {
        outln!("    with their own options: {with_options}");
    }
    outln!(
        "  runtime reservations: {} ({})",
        runtime.len(),
        reservations.display()
    );
    outln!(
        "  leasequery requestors: {}",
        leasequery_requestors(&config)
    );
    let bulk = &config.leasequery.bulk;
    if bulk.listen.is_empty() {
        outln!("  bulk leasequery: off (no bulk-listen)");
    } else {
        let listen: Vec<String> = bulk.listen.iter().map(ToString::to_string).collect();
        outln!(
            "  bulk leasequery: listen {}, {} connections, idle timeout {} s, {} queries per \
             connection",
            listen.join(", "),
            bulk.max_connections,
            bulk.idle_timeout,
            bulk.max_queries
        );
    }
    Ok(())
}

/// `[leasequery] requestors` for `check-config`: the prefixes, or who is answered without any.
fn leasequery_requestors(config: &Config) -> String {
    let requestors = &config.leasequery.requestors;
    if requestors.is_empty() {
        return "none (every Leasequery is answered NotAllowed)".to_owned();
    }
    let prefixes: Vec<String> = requestors.iter().map(ToString::to_string).collect();
    prefixes.join(", ")
}

fn hex(bytes: &[u8]) -> String {
    xdhcp6_engine::hex::colon(bytes)
}

fn xdp_watch(
    interface: &str,
    mode: AttachMode,
    seconds: Option<u64>,
    ebpf_object: Option<PathBuf>,
) -> anyhow::Result<()> {
    let object = xdhcp6d::xdp::locate(ebpf_object.as_deref())?;
    let mut steering = Steering::load(&object)
        .with_context(|| format!("loading the XDP program from {}", object.origin()))?;
    let used = steering
        .attach(interface, mode)
        .with_context(|| format!("attaching to {interface}"))?;
    outln!("xdp-watch: attached to {interface} in {used} mode");
    // SIGINT and SIGTERM end the watch loop, so that the program is detached on the way out.
    os::install_stop_handler().context("installing the SIGINT and SIGTERM handlers")?;

    let start = Instant::now();
    let deadline = seconds.map(|seconds| start + Duration::from_secs(seconds));
    let mut previous = steering.counters()?;
    let mut tick = 1u64;
    loop {
        let next = start + Duration::from_secs(tick);
        if sleep_until(next) {
            break;
        }
        steering.flush_log();
        let counters = steering.counters()?;
        outln!("{}", line(tick, &counters, &counters.since(&previous)));
        previous = counters;
        if deadline.is_some_and(|deadline| next >= deadline) {
            break;
        }
        tick += 1;
    }
    steering.detach()?;
    outln!("xdp-watch: detached from {interface}");
    Ok(())
}

/// `t=3s steered=... (+delta) ...` with every pass reason, for people and for the demo's grep.
fn line(tick: u64, total: &Counters, delta: &Counters) -> String {
    let mut text = format!(
        "t={tick}s steered={} (+{}) no_socket={} (+{}) passed={} (+{})",
        total.steered, delta.steered, total.no_socket, delta.no_socket, total.passed, delta.passed
    );
    for reason in PassReason::ALL {
        text.push_str(&format!(" {}={}", reason.name(), total.passed_for(reason)));
    }
    text
}

/// Sleeps until `when` in short steps; true when a stop was requested meanwhile.
fn sleep_until(when: Instant) -> bool {
    loop {
        if os::stop_requested() {
            return true;
        }
        let now = Instant::now();
        if now >= when {
            return false;
        }
        thread::sleep((when - now).min(Duration::from_millis(100)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn xdp_watch_parses() {
        let cli = Cli::try_parse_from([
            "xdhcp6d",
            "xdp-watch",
            "--interface",
            "eth0",
            "--mode",
            "skb",
            "--seconds",
            "3",
        ])
        .unwrap();
        let Command::XdpWatch {
            interface,
            mode,
            seconds,
            ebpf_object,
        } = cli.command
        else {
            panic!("parsed as another command: {:?}", cli.command);
        };
        assert_eq!(interface, "eth0");
        assert_eq!(mode, AttachMode::Skb);
        assert_eq!(seconds, Some(3));
        assert_eq!(ebpf_object, None);
    }

    #[test]
    fn mode_defaults_to_auto_and_rejects_unknown() {
        let cli = Cli::try_parse_from(["xdhcp6d", "xdp-watch", "-i", "eth0"]).unwrap();
        let Command::XdpWatch { mode, .. } = cli.command else {
            panic!("parsed as another command: {:?}", cli.command);
        };
        assert_eq!(mode, AttachMode::Auto);
        assert!(Cli::try_parse_from(["xdhcp6d", "xdp-watch", "-i", "eth0", "-m", "hw"]).is_err());
    }

    #[test]
    fn check_config_accepts_the_examples_and_names_the_bad_field() {
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let no_reservations = examples.join("no-such-reservations.toml");
        for name in [
            "split-a",
            "split-b",
            "unique-a",
            "unique-b",
            "identical-a",
            "identical-b",
            "identical-c",
            "unique-c",
            "reference",
            "package/xdhcp6",
        ] {
            check_config(&examples.join(format!("{name}.toml")), &no_reservations).unwrap();
        }
        let bad = std::env::temp_dir().join(format!("xdhcp6d-bad-{}.toml", std::process::id()));
        std::fs::write(
            &bad,
            "[server]\nduid = \"00:03:00:01:02:00:00:00:00:01\"\n[[link]]\nname = \"a\"\n\
             interfaces = [\"eth0\"]\n[[link.pool]]\nprefix = \"2001:db8::/64\"\n\
             range = \"2001:db9::/65\"\n",
        )
        .unwrap();
        let error = format!("{:#}", check_config(&bad, &no_reservations).unwrap_err());
        std::fs::remove_file(&bad).unwrap();
        assert!(error.contains("link[0].pool[0].range"), "{error}");
        assert!(
            error.contains("is not inside prefix 2001:db8::/64"),
            "{error}"
        );
    }

    #[test]
    fn run_parses_every_flag() {
        let cli = Cli::try_parse_from([
            "xdhcp6d",
            "run",
            "--config",
            "a.toml",
            "--datapath",
            "udp",
            "--journal",
            "/tmp/j",
            "--journal-errors",
            "strict",
            "--durability",
            "always",
            "--metrics",
            "off",
            "--workers",
            "3",
            "--cores",
            "1,4-5",
            "--journal-cores",
            "0",
            "--service-cores",
            "0,2",
        ])
        .unwrap();
        let Command::Run {
            config,
            datapath,
            journal,
            journal_errors,
            durability,
            metrics,
            workers,
            cores,
            journal_cores,
            service_cores,
            ..
        } = cli.command
        else {
            panic!("parsed as another command: {:?}", cli.command);
        };
        assert_eq!(config, PathBuf::from("a.toml"));
        assert_eq!(datapath, Datapath::Udp);
        assert_eq!(journal, PathBuf::from("/tmp/j"));
        assert_eq!(journal_errors, JournalErrors::Strict);
        assert_eq!(durability.with_interval(10), Durability::Always);
        assert_eq!(metrics, MetricsAddress(None));
        assert_eq!(workers, 3);
        assert_eq!(cores, Some(CoreList(vec![1, 4, 5])));
        assert_eq!(journal_cores, Some(CoreList(vec![0])));
        assert_eq!(service_cores, Some(CoreList(vec![0, 2])));
    }

    #[test]
    fn run_defaults() {
        let cli = Cli::try_parse_from(["xdhcp6d", "run", "-c", "a.toml"]).unwrap();
        let Command::Run {
            journal,
            durability,
            group_commit_us,
            batch_interval,
            metrics,
            workers,
            cores,
            ..
        } = cli.command
        else {
            panic!("parsed as another command: {:?}", cli.command);
        };
        assert_eq!(journal, PathBuf::from(DEFAULT_JOURNAL));
        assert_eq!(durability.with_interval(batch_interval), Durability::Always);
        assert_eq!(batch_interval, 10);
        assert_eq!(group_commit_us, 0);
        assert_eq!(metrics, MetricsAddress(Some("[::1]:9547".parse().unwrap())));
        assert_eq!(workers, 1);
        assert_eq!(cores, None);
        for bad in [
            &["xdhcp6d", "run", "-c", "a", "--workers", "0"][..],
            &["xdhcp6d", "run", "-c", "a", "--cores", "3-1"],
            &["xdhcp6d", "run", "-c", "a", "--metrics", "localhost"],
            &["xdhcp6d", "run", "-c", "a", "--durability", "never"],
            &["xdhcp6d", "run"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn control_flags_parse() {
        let cli = Cli::try_parse_from(["xdhcp6d", "run", "-c", "a.toml"]).unwrap();
        let Command::Run {
            control,
            control_tcp,
            ..
        } = cli.command
        else {
            panic!("parsed as another command: {:?}", cli.command);
        };
        assert_eq!(control, ControlSocket(Some(PathBuf::from(DEFAULT_SOCKET))));
        assert_eq!(control_tcp, None);
        let cli = Cli::try_parse_from([
            "xdhcp6d",
            "run",
            "-c",
            "a.toml",
            "--control",
            "off",
            "--control-tcp",
            "[::1]:9548",
            "--control-token-file",
            "/etc/xdhcp6/token",
        ])
        .unwrap();
        let Command::Run {
            control,
            control_tcp,
            control_token_file,
            ..
        } = cli.command
        else {
            panic!("parsed as another command: {:?}", cli.command);
        };
        assert_eq!(control, ControlSocket(None));
        assert_eq!(control_tcp, Some("[::1]:9548".parse().unwrap()));
        assert_eq!(control_token_file, Some(PathBuf::from("/etc/xdhcp6/token")));
        // TCP without a token file, and a token file alone, are refused.
        for bad in [
            &["xdhcp6d", "run", "-c", "a", "--control-tcp", "[::1]:9548"][..],
            &["xdhcp6d", "run", "-c", "a", "--control-token-file", "t"],
            &["xdhcp6d", "run", "-c", "a", "--control", ""],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ctl_parses_each_request() {
        use xdhcp6d::ctl::{CtlCommand, plan};
        let parse = |args: &[&str]| {
            let mut line = vec!["xdhcp6d", "ctl"];
            line.extend_from_slice(args);
            match Cli::try_parse_from(line) {
                Ok(Cli {
                    command: Command::Ctl(args),
                    ..
                }) => Ok(args),
                Ok(other) => panic!("parsed as another command: {other:?}"),
                Err(error) => Err(error),
            }
        };
        let args = parse(&["leases", "--duid", "00:01", "--iaid", "3"]).unwrap();
        assert_eq!(args.socket, PathBuf::from(DEFAULT_SOCKET));
        let (method, path, body) = plan(&args.command);
        assert_eq!(method, hyper::Method::GET);
        assert_eq!(path, "/v1/leases?duid=00:01&iaid=3");
        assert_eq!(body, None);
        let args = parse(&[
            "--json", "leases", "--link", "cmts 1&2", "--pool", "1", "--limit", "5",
        ])
        .unwrap();
        assert!(args.json);
        assert_eq!(
            plan(&args.command).1,
            "/v1/leases?link=cmts%201%262&pool=1&limit=5"
        );
        let args = parse(&["--socket", "/tmp/x.sock", "release", "2001:db8:100::/56"]).unwrap();
        assert_eq!(args.socket, PathBuf::from("/tmp/x.sock"));
        let (method, path, _) = plan(&args.command);
        assert_eq!(method, hyper::Method::DELETE);
        assert_eq!(path, "/v1/leases?prefix=2001:db8:100::/56");
        let args = parse(&[
            "reservations",
            "add",
            "--hw-address",
            "02:00:00:00:00:01",
            "--address",
            "2001:db8::9",
        ])
        .unwrap();
        let (method, path, body) = plan(&args.command);
        assert_eq!(
            (method, path.as_str()),
            (hyper::Method::POST, "/v1/reservations")
        );
        assert_eq!(
            body,
            Some(serde_json::json!({"hw-address": "02:00:00:00:00:01", "address": "2001:db8::9"}))
        );
        assert!(matches!(
            parse(&["reload"]).unwrap().command,
            CtlCommand::Reload
        ));
        for bad in [
            &[
                "leases",
                "--address",
                "2001:db8::1",
                "--prefix",
                "2001:db8::/56",
            ][..],
            &["leases", "--iaid", "3"],
            &["leases", "--pool", "1"],
            &["--url", "http://[::1]:9548", "server"],
            &["release"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_798_761_599), "2026-12-31T23:59:59Z");
    }

    #[test]
    fn lease_rows_are_aligned() {
        use xdhcp6_engine::table::{DuidBuf, Lease, Lifetimes};
        let record = LeaseRecord {
            relay: None,
            reconfigure: false,
            duid: DuidBuf::new(&[0, 3, 0, 1, 2, 0, 0, 0, 0, 1]),
            lease: Lease {
                addr: u128::from("2001:db8:100::".parse::<std::net::Ipv6Addr>().unwrap()),
                prefix_len: 56,
                kind: IaKind::Pd,
                iaid: 7,
                link: xdhcp6_engine::config::LinkId(0),
                state: LeaseState::Bound,
                lifetimes: Lifetimes {
                    preferred: 20,
                    valid: INFINITE,
                },
                expires: INFINITE,
            },
        };
        let row = LeaseRow::new(&record, &["access-1".to_owned()]);
        assert_eq!(row.lease, "2001:db8:100::/56");
        assert_eq!(row.link, "access-1");
        let text = lease_table(&[row]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("DUID"));
        assert_eq!(lines[0].find("IAID"), lines[1].find("7  "));
        assert!(lines[1].ends_with("never"), "{text}");
        assert!(lines[1].contains("infinite"), "{text}");
    }

    #[test]
    fn line_lists_every_counter() {
        let mut total = Counters::default();
        total.record_pass(PassReason::OtherPort);
        total.no_socket = 2;
        let text = line(4, &total, &total);
        assert!(text.starts_with("t=4s steered=0 (+0) no_socket=2 (+2) passed=1 (+1)"));
        assert!(text.contains(" other_port=1 "), "{text}");
        assert!(text.ends_with("too_large=0"), "{text}");
    }
}
