//! `cargo xtask bench`: one run that measures the link's ceiling, xdhcp6d on both datapaths
//! and Kea with the same generator, and reports them side by side.
//!
//! Topology: a server namespace and a client namespace joined by a veth pair. The server side
//! (pinned to one core) is, in turn, `xdhcp6-reflect` (the cheapest possible "server": an
//! AF_XDP socket that bounces every DHCPv6 frame back), `xdhcp6d --datapath xdp`,
//! `xdhcp6d --datapath udp` and `kea-dhcp6` (memfile). The generator (pinned to the other
//! core) ramps the rate up, bisects around the first failing step and writes its JSON
//! summary; this task collects them into one table, one JSON file and one plot.
//!
//! The targets run in rounds (ceiling, xdp, udp, Kea, then all again, `--rounds`), so that a
//! change of the host's load within the run touches every target alike; the table gives each
//! target's median and range over the rounds, and its share of the same round's ceiling.
//! The generator reads each CPU's busy and steal time from `/proc/stat` around every ramp
//! step, and its own and the server's CPU time from `/proc/PID/stat`; a step with steal on
//! the cores under test, load on the other CPUs, or other processes' time on the cores under
//! test over the thresholds is marked, and a round whose failing step was marked is left out
//! of the medians (`rounds`). `--avalanche N` runs the avalanche scenario instead (`avalanche`).

mod avalanche;
mod disk;
mod latency;
mod rounds;
mod skew;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use xdhcp6_lab::fixtures;
use xdhcp6_lab::netns::{self, Netns};
use xdhcp6_lab::process::Process;

use crate::build;
use crate::cmd;
use crate::process;

const SERVER_IF: &str = "xb-srv0";
const CLIENT_IF: &str = "xb-cli0";
const SERVER_ADDRESS: &str = "2001:db8:f::1";
const CLIENT_ADDRESS: &str = "2001:db8:f::2";
/// The pool every server allocates from; the emulated relays' link-addresses lie in it.
const POOL: &str = "2001:db8:1::/64";

/// Options of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct Options {
    /// Seconds of sending per ramp step.
    #[arg(long, default_value_t = 3.0)]
    step_seconds: f64,
    /// Acceptable loss per step, percent (timeouts plus failed validations).
    #[arg(long, default_value_t = 1.0)]
    loss: f64,
    /// Emulated clients (distinct DUIDs); xdhcp6d's `expected-leases` is set to it. A ramp that
    /// starts more flows than this runs clients already bound in its later steps, a lighter
    /// workload: such best rates are marked W.
    #[arg(long, default_value_t = 10_000_000)]
    clients: u32,
    /// Emulated relays (Relay-forward with link-address, Interface-Id and Remote-Id).
    #[arg(long, default_value_t = 16)]
    relays: u32,
    /// The generator's transport: afxdp (frames through its own XDP program and AF_XDP
    /// socket) or udp (kernel sockets).
    #[arg(long, default_value = "afxdp")]
    transport: String,
    /// Core of the server under test.
    #[arg(long, default_value_t = 1)]
    server_core: usize,
    /// Core of the generator.
    #[arg(long, default_value_t = 0)]
    generator_core: usize,
    /// Core of xdhcp6d's journal writer (`--journal-cores`; default with one queue: the
    /// generator's core, with several: not pinned). The server process may also run there,
    /// but its workers stay on the server's cores; the server's core puts the writer back on
    /// the workers' core.
    #[arg(long)]
    journal_core: Option<usize>,
    /// Receive and transmit queues on each end of the veth pair. The generator drives them
    /// with a thread each (`xdhcp6-bench --queues`, flows spread by an RSS hash of their
    /// source), the reflector reflects on each (`--queues`) and xdhcp6d runs a worker per
    /// queue. With more than one, the server and the generator share the cores of
    /// --server-cores and --generator-cores.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    queues: u32,
    /// Cores of the server under test, comma-separated (xdhcp6d pins its workers to them in
    /// turn). Default: --server-core; with --queues N, cores 0 to N-1 (wrapped over the CPUs).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    server_cores: Vec<usize>,
    /// Cores of the generator, comma-separated (its threads may run on any of them).
    /// Default: --generator-core; with --queues N, the default of --server-cores.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    generator_cores: Vec<usize>,
    /// Instead of one ramp per target and round: two, one with all clients behind 1 relay
    /// (one source address and port: one queue, as a cable modem termination system on a
    /// NIC with RSS) and one behind RELAYS relays (spread over the queues), in alternating
    /// order, and a table of the two rates side by side (`relay-skew.md`, `relay-skew.json`).
    /// Targets: --only, else ceiling and xdhcp6d-xdp.
    #[arg(long, value_name = "RELAYS", value_parser = clap::value_parser!(u32).range(2..))]
    relay_skew: Option<u32>,
    /// xdhcp6d's journal durability: always (a reply leaves once its lease is on disk, the
    /// appliance's default) or batch (synced every few milliseconds).
    #[arg(long, default_value = "always")]
    durability: String,
    /// Measure only these targets (ceiling, xdhcp6d-xdp, xdhcp6d-udp, kea), comma-separated.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// After each xdhcp6d ramp, run the generator at --reload-percent of the best rate for
    /// --reload-seconds four times: without reloads, with, with and without (the order cancels
    /// a drift of the machine); "with" means the configuration is changed (the Preference
    /// toggles) and xdhcp6d reloaded with SIGHUP every SECS seconds. Prints the flows lost
    /// without and with reloads.
    #[arg(long, value_name = "SECS")]
    reload_every: Option<f64>,
    /// Seconds of each run of --reload-every.
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    reload_seconds: f64,
    /// The rate of the --reload-every runs, percent of the best rate.
    #[arg(long, value_name = "PERCENT", default_value_t = 80.0)]
    reload_percent: f64,
    /// Also measure xdhcp6d with DNS updates on (`[link.ddns]`, a name generated for every
    /// client) while its DNS server is stopped (nothing listens at [::1]:53 in the server's
    /// namespace): the targets xdhcp6d-xdp-ddns and xdhcp6d-udp-ddns, and their rate as a
    /// percentage of the same datapath without DNS updates.
    #[arg(long)]
    ddns: bool,
    /// Rounds: every target is measured once per round, in order, and the table gives the
    /// median and range over the rounds.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: u32,
    /// A ramp step is disturbed when the generator's or the server's core had more steal
    /// than this, percent of its time.
    #[arg(long, value_name = "PERCENT", default_value_t = 5.0)]
    steal_limit: f64,
    /// A ramp step is disturbed when the other CPUs (neither the generator's nor the
    /// server's) were busy more than this on average, percent.
    #[arg(long, value_name = "PERCENT", default_value_t = 20.0)]
    foreign_limit: f64,
    /// A ramp step is disturbed when processes other than the server and the generator ran
    /// on their cores more than this, percent of those cores' time: the time tasks ran there
    /// (user, nice, system in /proc/stat) less the server's and the generator's CPU time
    /// (/proc/PID/stat, all threads). This sees a compiler on the server's own core, which
    /// --foreign-limit cannot. A lower bound on kernels without CONFIG_IRQ_TIME_ACCOUNTING,
    /// where the processes' time includes softirqs the cores' task time leaves out.
    #[arg(long, value_name = "PERCENT", default_value_t = 10.0)]
    foreign_core_limit: f64,
    /// Instead of the ramps: an avalanche of this many clients (all start at once with the
    /// RFC 9915 retransmission timers) against xdhcp6d over AF_XDP, over UDP and Kea in
    /// turn, reporting the time until all are bound, side by side.
    #[arg(long, value_name = "CLIENTS")]
    avalanche: Option<u32>,
    /// The longest an avalanche may take, seconds (clients then unbound are reported).
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    avalanche_limit: f64,
    /// The generator's own cap on messages per second during an avalanche (0: none).
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    avalanche_max_rate: f64,
    /// Instead of the ramps: latency at this one offered rate (flows/s), per round the
    /// ceiling and xdhcp6d over AF_XDP with `--durability batch` and with `always`, each for
    /// --step-seconds; a table of p50/p99 with median and range over the
    /// rounds (`latency.md`, `latency.json`).
    #[arg(long, value_name = "RATE")]
    latency: Option<f64>,
    /// With --latency: also run this xdhcp6d binary (an earlier build) with `--durability
    /// always` in every round, as "baseline", so that before and after share one run.
    #[arg(long, value_name = "PATH", requires = "latency")]
    latency_baseline: Option<Box<Path>>,
    /// In the ramps: also measure this xdhcp6d binary (an earlier build) over AF_XDP with the
    /// same --durability in every round, right after xdhcp6d-xdp, as the target "baseline",
    /// so that before and after share one run; the table adds xdhcp6d-xdp's rate as a share
    /// of the baseline's, round by round.
    #[arg(long, value_name = "PATH", conflicts_with = "latency")]
    baseline: Option<Box<Path>>,
    /// xdhcp6d's --busy-poll for its AF_XDP targets: microseconds a worker keeps polling
    /// after its last request before it sleeps. In the ramps every xdhcp6d target over
    /// AF_XDP but the baseline runs with it; with --latency each round also runs `batch` and
    /// `always` with it, beside the runs without, so that the two share one run.
    #[arg(long, value_name = "US")]
    busy_poll: Option<u32>,
    /// Leave the disk holding the journals as it is. By default, when the journal writer
    /// has a core of its own, the disk's interrupts are moved there where the kernel allows,
    /// and its request queue completes each request on the submitting core (`rq_affinity`
    /// 2), for the run: a disk with one request queue otherwise completes every sync on one
    /// core, which may be the worker's.
    #[arg(long)]
    leave_disk: bool,
}

impl Options {
    /// The server's cores (see --server-cores).
    fn server_cores(&self) -> Vec<usize> {
        if !self.server_cores.is_empty() {
            return self.server_cores.clone();
        }
        if self.queues == 1 {
            return vec![self.server_core];
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        (0..self.queues as usize).map(|i| i % cpus).collect()
    }

    /// The core of xdhcp6d's journal writer (see --journal-core): with one queue, by default
    /// the generator's; with several, none (the writer is not pinned).
    fn journal_core(&self) -> Option<usize> {
        self.journal_core
            .or_else(|| (self.queues == 1).then_some(self.generator_core))
    }

    /// The generator's cores (see --generator-cores).
    fn generator_cores(&self) -> Vec<usize> {
        if !self.generator_cores.is_empty() {
            self.generator_cores.clone()
        } else if self.queues == 1 {
            vec![self.generator_core]
        } else {
            self.server_cores()
        }
    }

    /// The cores under test, each once: the generator's and the server's.
    fn measured_cores(&self) -> Vec<usize> {
        let mut cores = self.generator_cores();
        for core in self.server_cores() {
            if !cores.contains(&core) {
                cores.push(core);
            }
        }
        cores
    }
}

/// Cores as taskset and xdhcp6d --cores take them: `0,1`.
fn core_list(cores: &[usize]) -> String {
    cores
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// One server under test.
#[derive(Clone, Copy)]
struct Target {
    name: &'static str,
    what: &'static str,
    /// The generator's scenario against it.
    scenario: &'static str,
    /// First rate and increment of the ramp, flows per second.
    start: u32,
}

const TARGETS: [Target; 6] = [
    Target {
        name: "ceiling",
        what: "xdhcp6-reflect: AF_XDP bounce, no DHCP (2 round trips per flow)",
        scenario: "echo",
        start: 20_000,
    },
    Target {
        name: "xdhcp6d-xdp",
        what: "xdhcp6d --datapath xdp (AF_XDP)",
        scenario: "sarr",
        start: 10_000,
    },
    Target {
        name: "xdhcp6d-udp",
        what: "xdhcp6d --datapath udp",
        scenario: "sarr",
        start: 10_000,
    },
    Target {
        name: "xdhcp6d-xdp-ddns",
        what: "xdhcp6d --datapath xdp, DNS updates on, DNS server stopped",
        scenario: "sarr",
        start: 10_000,
    },
    Target {
        name: "xdhcp6d-udp-ddns",
        what: "xdhcp6d --datapath udp, DNS updates on, DNS server stopped",
        scenario: "sarr",
        start: 10_000,
    },
    Target {
        name: "kea",
        what: "Kea kea-dhcp6 (memfile, persist false)",
        scenario: "sarr",
        start: 1_000,
    },
];

/// An earlier xdhcp6d build over AF_XDP (`--baseline`), measured next to xdhcp6d-xdp.
const BASELINE: Target = Target {
    name: "baseline",
    what: "xdhcp6d --datapath xdp, the --baseline build",
    scenario: "sarr",
    start: 10_000,
};

/// What one target achieved.
struct Measured {
    target: Target,
    best_rate: Option<f64>,
    /// The step at the best rate: completed flows/s and latency.
    throughput: f64,
    p50_us: f64,
    p99_us: f64,
    json: PathBuf,
    /// With --reload-every: the runs at a fixed rate without and with reloads.
    reloads: Option<ReloadComparison>,
    /// The round it ran in, from 1.
    round: u32,
    /// Each ramp step with the machine's load meanwhile.
    steps: Vec<StepRecord>,
    /// A step that failed ran disturbed: the best rate may be too low.
    disturbed: bool,
}

/// One ramp step as the comparison keeps it.
struct StepRecord {
    rate: f64,
    offered: f64,
    throughput: f64,
    passed: bool,
    load: rounds::StepLoad,
    /// Percent of the step's flows started by clients already bound earlier in the ramp:
    /// the population (`--clients`) wrapped, and those flows found their lease instead of
    /// making one (`flows_known` of the generator's step details). Always 0 for the ceiling's
    /// echoes, which bind nothing.
    known_percent: f64,
}

/// Above this share of flows by clients already bound (percent), a passed step measured a
/// lighter workload than the steps before it: its rate is marked.
const KNOWN_LIMIT_PERCENT: f64 = 1.0;

/// Percent of a step's flows started by clients already bound, from the generator's step
/// details (`flows_known` over `flows_started`); 0 when the generator did not count them.
fn known_percent(detail: &Value) -> f64 {
    match (
        detail["flows_known"].as_u64(),
        detail["flows_started"].as_u64(),
    ) {
        (Some(known), Some(started)) if started > 0 => 100.0 * known as f64 / started as f64,
        _ => 0.0,
    }
}

impl Measured {
    /// The lowest passed step that ran more than [`KNOWN_LIMIT_PERCENT`] of its flows with
    /// clients already bound, when the best rate is at least its rate: then the best rate
    /// was reached on a lighter workload than new clients.
    fn wrapped_at(&self) -> Option<f64> {
        let best = self.best_rate?;
        self.steps
            .iter()
            .filter(|s| s.passed && s.known_percent > KNOWN_LIMIT_PERCENT && s.rate <= best)
            .map(|s| s.rate)
            .min_by(f64::total_cmp)
    }
}

/// Two runs at one rate, without and with reloads.
struct ReloadComparison {
    rate: f64,
    every: f64,
    without: Run,
    with: Run,
    /// Reloads the server logged as applied during the second run.
    reloads: u64,
}

/// What the generator counted in fixed-rate runs.
#[derive(Default)]
struct Run {
    started: u64,
    completed: u64,
    timeouts: u64,
    failed: u64,
}

impl Run {
    fn add(&mut self, other: &Run) {
        self.started += other.started;
        self.completed += other.completed;
        self.timeouts += other.timeouts;
        self.failed += other.failed;
    }

    fn lost(&self) -> u64 {
        self.started.saturating_sub(self.completed)
    }
}

pub fn run(options: &Options) -> Result<()> {
    cmd::require_root("cargo xtask bench")?;
    if !(options.step_seconds > 0.0 && options.loss >= 0.0) {
        bail!("--step-seconds must be positive and --loss not negative");
    }
    if !matches!(options.transport.as_str(), "afxdp" | "udp") {
        bail!("--transport {:?}: expected afxdp or udp", options.transport);
    }
    if !matches!(options.durability.as_str(), "always" | "batch") {
        bail!(
            "--durability {:?}: expected always or batch",
            options.durability
        );
    }
    if options.reload_every.is_some_and(|every| {
        !(every > 0.0 && options.reload_seconds > 0.0 && options.reload_percent > 0.0)
    }) {
        bail!("--reload-every, --reload-seconds and --reload-percent must be positive");
    }
    for name in &options.only {
        if !TARGETS.iter().any(|t| t.name == name) {
            bail!(
                "--only {name:?}: expected ceiling, xdhcp6d-xdp, xdhcp6d-udp, \
                 xdhcp6d-xdp-ddns, xdhcp6d-udp-ddns or kea"
            );
        }
    }
    if !(options.steal_limit >= 0.0
        && options.foreign_limit >= 0.0
        && options.foreign_core_limit >= 0.0)
    {
        bail!("--steal-limit, --foreign-limit and --foreign-core-limit must not be negative");
    }
    build::all()?;
    let release = build::target_dir().join("release");
    let work = build::target_dir().join("xtask-bench");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let lab = Lab::new(&release, &work, options)?;
    // Put back when the run ends, however it ends.
    let _disk = options
        .journal_core()
        .filter(|_| !options.leave_disk)
        .map(|core| disk::DiskPlacement::keep_on(&work, core));
    if let Some(clients) = options.avalanche {
        return avalanche::run(&lab, clients);
    }
    if let Some(relays) = options.relay_skew {
        return skew::run(&lab, relays);
    }
    if let Some(rate) = options.latency {
        return latency::run(&lab, rate);
    }

    let mut targets: Vec<Target> = TARGETS
        .into_iter()
        .filter(|target| {
            if options.only.is_empty() {
                !target.name.ends_with("-ddns") || options.ddns
            } else {
                options.only.iter().any(|n| n == target.name)
            }
        })
        .collect();
    if options.baseline.is_some() {
        // Right after xdhcp6d-xdp (or last), so that the two share the round's conditions.
        let at = targets
            .iter()
            .position(|t| t.name == "xdhcp6d-xdp")
            .map_or(targets.len(), |i| i + 1);
        targets.insert(at, BASELINE);
    }
    let mut results = Vec::new();
    for round in 1..=options.rounds {
        println!("\n== round {round} of {}", options.rounds);
        for &target in &targets {
            println!("\n== {} (round {round}): {}", target.name, target.what);
            let binary = options
                .baseline
                .as_deref()
                .filter(|_| target.name == BASELINE.name);
            lab.xdhcp6d.set(binary);
            let server = lab.start_server(target)?;
            lab.wait_answering(target)?;
            let mut measured = lab.ramp(target, round)?;
            // The reload comparison is long: once, in the first round.
            if let (Some(every), Some(best), true, 1) = (
                options.reload_every,
                measured.best_rate,
                target.name.starts_with("xdhcp6d"),
                round,
            ) {
                measured.reloads = Some(lab.reload_comparison(
                    target,
                    &server,
                    best * options.reload_percent / 100.0,
                    every,
                )?);
            }
            lab.stop_server(target, server);
            if let Some(rate) = measured.wrapped_at() {
                println!(
                    "  {}: from the {rate:.0}/s step on, over {KNOWN_LIMIT_PERCENT} % of the flows \
                     were by clients already bound (the {} clients wrapped): the best rate is \
                     marked W; raise --clients to measure new clients only",
                    target.name, options.clients
                );
            }
            println!(
                "  {} round {round}: best {} flows/s{}",
                target.name,
                measured
                    .best_rate
                    .map_or("none".to_owned(), |r| format!("{r:.0}")),
                if measured.disturbed {
                    " (disturbed: a failing step ran with steal, foreign load or other processes \
                     on the cores under test over the limits)"
                } else {
                    ""
                }
            );
            results.push(measured);
        }
    }

    let table = table(&results, options);
    println!("\n{table}");
    let summary = summary_json(&results, options);
    let json_path = work.join("bench.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&summary)? + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    let plot_path = work.join("bench.svg");
    // The generator's own binary draws the plot: this task stays free of its library. Each
    // target's series is its round closest to the median.
    let mut plot = Command::new(release.join("xdhcp6-compare"));
    plot.arg("--title")
        .arg(format!(
            "sarr (4-way) flows/s (echo for the ceiling), {} transport, {} relays, the median \
             of {} rounds",
            options.transport, options.relays, options.rounds
        ))
        .arg("--output")
        .arg(&plot_path)
        .args(
            median_rounds(&results)
                .iter()
                .map(|m| format!("{}={}", m.target.name, m.json.display())),
        );
    cmd::run(&mut plot)?;
    std::fs::write(work.join("bench.md"), &table)?;
    println!("  table: {}", work.join("bench.md").display());
    println!("  json:  {}", json_path.display());
    println!("  plot:  {}", plot_path.display());
    Ok(())
}

/// Every target's measurement whose best rate is closest to its median (over the rounds the
/// medians count), in the targets' order.
fn median_rounds(results: &[Measured]) -> Vec<&Measured> {
    let mut names: Vec<&str> = Vec::new();
    for m in results {
        if !names.contains(&m.target.name) {
            names.push(m.target.name);
        }
    }
    names
        .iter()
        .filter_map(|name| {
            let rounds: Vec<&Measured> = counted(results, name);
            let rates: Vec<f64> = rounds.iter().map(|m| m.best_rate.unwrap_or(0.0)).collect();
            let median = rounds::spread(&rates)?.median;
            rounds::closest_to(&rates, median).map(|i| rounds[i])
        })
        .collect()
}

/// A target's measurements that its medians count: the undisturbed ones, or all when every
/// one was disturbed.
fn counted<'a>(results: &'a [Measured], name: &str) -> Vec<&'a Measured> {
    let all: Vec<&Measured> = results.iter().filter(|m| m.target.name == name).collect();
    if all.iter().all(|m| m.disturbed) {
        all
    } else {
        all.into_iter().filter(|m| !m.disturbed).collect()
    }
}

/// The namespaces and the binaries; dropping it removes the namespaces.
struct Lab<'a> {
    server: Netns,
    client: Netns,
    release: PathBuf,
    work: PathBuf,
    options: &'a Options,
    server_mac: String,
    /// The generator's --relays (--relays, except while a relay-skew run changes it).
    relays: std::cell::Cell<u32>,
    /// The running server's process id, whose CPU time the generator records per step.
    server_pid: std::cell::Cell<Option<u32>>,
    /// xdhcp6d's --durability (--durability, except while a latency run changes it).
    durability: std::cell::Cell<Option<&'static str>>,
    /// The xdhcp6d binary to start (the release build's, except while a latency run
    /// measures a baseline).
    xdhcp6d: std::cell::Cell<Option<&'a Path>>,
    /// xdhcp6d's --busy-poll over AF_XDP (--busy-poll, except while a latency run measures
    /// without it).
    busy_poll: std::cell::Cell<Option<u32>>,
}

impl<'a> Lab<'a> {
    fn new(release: &Path, work: &Path, options: &'a Options) -> Result<Self> {
        println!("== namespaces xdhcp6-bench-srv and xdhcp6-bench-cli, joined by a veth pair");
        let server = Netns::create("xdhcp6-bench-srv")?;
        let client = Netns::create("xdhcp6-bench-cli")?;
        // veth keeps its offloads: the server's AF_XDP datapath takes the unfinished
        // checksums of kernel sockets (CHECKSUM_PARTIAL), and so does the generator.
        if options.queues > 1 {
            println!("   with {} queues on each end", options.queues);
            netns::veth_pair_with_queues(&server, SERVER_IF, &client, CLIENT_IF, options.queues)?;
        } else {
            netns::veth_pair(&server, SERVER_IF, &client, CLIENT_IF)?;
        }
        server.add_address(SERVER_IF, &format!("{SERVER_ADDRESS}/64"))?;
        client.add_address(CLIENT_IF, &format!("{CLIENT_ADDRESS}/64"))?;
        server.wait_for_addresses(SERVER_IF)?;
        client.wait_for_addresses(CLIENT_IF)?;
        let server_mac = server.mac(SERVER_IF)?;
        Ok(Self {
            server,
            client,
            release: release.to_owned(),
            work: work.to_owned(),
            options,
            server_mac,
            relays: std::cell::Cell::new(options.relays),
            server_pid: std::cell::Cell::new(None),
            durability: std::cell::Cell::new(None),
            xdhcp6d: std::cell::Cell::new(None),
            busy_poll: std::cell::Cell::new(options.busy_poll),
        })
    }

    /// Stops the target's `server` and, for xdhcp6d, prints what its last log line says it
    /// lost (drops by reason, unusable frames, its AF_XDP sockets' own drops), when anything.
    fn stop_server(&self, target: Target, server: Process) {
        drop(server);
        if !target.name.starts_with("xdhcp6d") && target.name != BASELINE.name {
            return;
        }
        let log = self.work.join(format!("{}.log", target.name));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let stopped = text
            .lines()
            .rev()
            .find(|line| stopped_losses(line).is_some());
        match stopped.and_then(stopped_losses) {
            Some(lost) if lost != "none" => {
                println!("  {}: the server lost {lost}", target.name);
            }
            Some(_) => {}
            None => println!(
                "  {}: no \"stopped\" line with its losses in {}",
                target.name,
                log.display()
            ),
        }
        // How loaded its workers were over the whole run (a build before these counters
        // does not say).
        if let Some(line) = stopped
            && let (Some(received), Some(turns), Some(sleeps)) = (
                stopped_field(line, "received"),
                stopped_field(line, "busy_turns"),
                stopped_field(line, "sleeps"),
            )
            && turns > 0
        {
            // Only AF_XDP workers sleep in poll(2) and count it; the UDP ones wait in recvmmsg.
            let sleeps = if target.name.contains("-udp") {
                String::new()
            } else {
                format!(", {sleeps} sleeps")
            };
            println!(
                "  {}: {:.1} requests per busy turn of its workers ({received} over {turns} turns){sleeps}",
                target.name,
                received as f64 / turns as f64
            );
        }
    }

    /// Starts the target's server pinned to the server core.
    fn start_server(&self, target: Target) -> Result<Process> {
        let core = core_list(&self.options.server_cores());
        let log = self.work.join(format!("{}.log", target.name));
        let mut command = self.server.command("taskset");
        command.current_dir(&self.work).args(["-c", &core]);
        match target.name {
            "ceiling" => {
                command.arg(self.release.join("xdhcp6-reflect")).args([
                    "--interface",
                    SERVER_IF,
                    "--xdp-mode",
                    "native",
                    "--queues",
                    &self.options.queues.to_string(),
                ]);
            }
            "xdhcp6d-xdp" | "xdhcp6d-udp" | "xdhcp6d-xdp-ddns" | "xdhcp6d-udp-ddns"
            | "baseline" => {
                let config = self.work.join(format!("{}.toml", target.name));
                let expected = self.options.clients.to_string();
                let mut text = fixtures::render(
                    fixtures::BENCH,
                    &[("SERVER_IF", SERVER_IF), ("EXPECTED_LEASES", &expected)],
                )?;
                if target.name.ends_with("-ddns") {
                    text.push_str(DDNS_STOPPED);
                }
                println!("  limits: {}", limits_of(&text));
                std::fs::write(&config, text)?;
                let journal = self.work.join(format!("{}.journal", target.name));
                let _ = std::fs::remove_file(&journal);
                let datapath =
                    if target.name.starts_with("xdhcp6d-xdp") || target.name == "baseline" {
                        "xdp"
                    } else {
                        "udp"
                    };
                // The writer's write and fdatasync off the worker's core: the process may
                // use the writer's core too, its workers only the server's. With several
                // queues the cores are shared anyway and the writer is left alone.
                let journal_core = self.options.journal_core();
                let mut command = self.server.command("taskset");
                let allowed = match journal_core {
                    Some(journal_core) => format!("{core},{journal_core}"),
                    None => core.clone(),
                };
                command
                    .current_dir(&self.work)
                    .args(["-c", &allowed])
                    .arg(
                        self.xdhcp6d
                            .get()
                            .map_or_else(|| self.release.join("xdhcp6d"), Path::to_path_buf),
                    )
                    .arg("run")
                    .arg("--config")
                    .arg(&config)
                    .args(["--datapath", datapath, "--xdp-mode", "native"])
                    .args(["--metrics", "off", "--cores", &core])
                    .args(
                        journal_core
                            .map(|journal_core| {
                                ["--journal-cores".to_owned(), journal_core.to_string()]
                            })
                            .into_iter()
                            .flatten(),
                    )
                    .args([
                        "--durability",
                        self.durability.get().unwrap_or(&self.options.durability),
                    ])
                    .args(
                        self.busy_poll
                            .get()
                            // An earlier build may not know the flag.
                            .filter(|_| datapath == "xdp" && target.name != "baseline")
                            .map(|us| ["--busy-poll".to_owned(), us.to_string()])
                            .into_iter()
                            .flatten(),
                    )
                    .arg("--journal")
                    .arg(&journal)
                    .arg("--control")
                    .arg(self.work.join(format!("{}.control.sock", target.name)));
                let server = process::start(command, &log, target.name)?;
                self.server_pid.set(Some(server.id()));
                return Ok(server);
            }
            "kea" => {
                let config = self.work.join("kea-dhcp6.json");
                std::fs::write(&config, kea_config())?;
                std::fs::create_dir_all("/run/kea").context("creating /run/kea")?;
                command
                    .env("KEA_PIDFILE_DIR", &self.work)
                    .env("KEA_LOCKFILE_DIR", &self.work)
                    .arg("kea-dhcp6")
                    .arg("-c")
                    .arg(&config);
            }
            other => bail!("unknown target {other}"),
        }
        // `ip netns exec` and taskset exec in place: the child's id is the server's.
        let server = process::start(command, &log, target.name)?;
        self.server_pid.set(Some(server.id()));
        Ok(server)
    }

    /// The generator's command line, without the rate settings.
    fn generator(&self, target: Target, clients: u32, seed: u8) -> Command {
        let mut command = self.client.command("taskset");
        command
            .current_dir(&self.work)
            .args(["-c", &core_list(&self.options.generator_cores())])
            .arg(self.release.join("xdhcp6-bench"))
            .args(["--interface", CLIENT_IF, "--server", SERVER_ADDRESS]);
        if self.options.transport == "afxdp" {
            command
                .args(["--transport", "afxdp", "--xdp-mode", "native"])
                .args(["--server-mac", &self.server_mac]);
            // Servers that answer from the request's frame (the reflector, xdhcp6d over
            // AF_XDP) reach relays at any address; with several queues each relay then sends
            // from its own link-address, so that RSS tells the relays apart.
            let own_addresses = self.options.queues > 1
                && matches!(
                    target.name,
                    "ceiling" | "xdhcp6d-xdp" | "xdhcp6d-xdp-ddns" | "baseline"
                );
            if !own_addresses {
                // The relays send from the client interface's own address, which its kernel
                // answers neighbour discovery for: servers that reply through the kernel
                // (xdhcp6d over UDP, Kea) reach them like a real relay agent.
                command.args(["--relay-source", CLIENT_ADDRESS]);
            }
            if self.options.queues > 1 {
                command.args(["--queues", &self.options.queues.to_string()]);
            }
        }
        command
            .args(["--scenario", target.scenario])
            .args(["--clients", &clients.to_string()])
            .args(["--relays", &self.relays.get().to_string()])
            .args(["--expect-range", POOL])
            .args(["--seed", &seed.to_string()])
            .arg("-q");
        if let Some(pid) = self.server_pid.get() {
            command.args(["--watch-pid", &pid.to_string()]);
        }
        command
    }

    /// Waits until the target answers a short, slow run (it has started serving).
    fn wait_answering(&self, target: Target) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let probe = self.work.join("probe.json");
            let _ = std::fs::remove_file(&probe);
            let mut command = self.generator(target, 100, 7);
            command
                .args(["--rate", "100", "--duration", "1", "--json"])
                .arg(&probe)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = command.status();
            let completed = std::fs::read_to_string(&probe)
                .ok()
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                .and_then(|v| v["flows_completed"].as_u64())
                .unwrap_or(0);
            if completed > 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not answer the generator within 20 s (see {})",
                    target.name,
                    self.work.join(format!("{}.log", target.name)).display()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Ramps the generator up against the target and reads back its summary, with the
    /// machine's load during each step.
    fn ramp(&self, target: Target, round: u32) -> Result<Measured> {
        let tag = if self.relays.get() == self.options.relays {
            String::new()
        } else {
            format!("-{}relays", self.relays.get())
        };
        let json = self
            .work
            .join(format!("{}{tag}-r{round}.json", target.name));
        let start = target.start.to_string();
        let mut command = self.generator(target, self.options.clients, 0xbe);
        command
            .args([
                "--ramp", "--refine", "3", "--start", &start, "--step", &start,
            ])
            .args(["--loss", &self.options.loss.to_string()])
            .args(["--duration", &self.options.step_seconds.to_string()])
            .arg("--json")
            .arg(&json)
            .arg("--plot")
            .arg(self.work.join(format!("{}{tag}-r{round}.svg", target.name)))
            .stdout(Stdio::null());
        // The generator exits 1 when a reply failed validation: that is a finding for the
        // table, not a reason to stop the other measurements.
        let line = cmd::display(&command);
        eprintln!("$ {line}");
        let status = command
            .status()
            .with_context(|| format!("cannot start `{line}`"))?;
        if !(status.success() || status.code() == Some(1)) {
            bail!("`{line}` failed ({status})");
        }
        let text = std::fs::read_to_string(&json)
            .with_context(|| format!("reading {}", json.display()))?;
        let summary: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", json.display()))?;
        let failures = summary["total_failures"].as_u64().unwrap_or(0);
        if failures > 0 {
            eprintln!(
                "  {}: {failures} replies failed validation: {}",
                target.name, summary["failures"]
            );
        }
        let steps = summary["ramp"]["steps"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let best_rate = summary["ramp"]["best_rate"].as_f64();
        let num = |step: &Value, key: &str| step[key].as_f64().unwrap_or(0.0);
        // The step that ran at the best rate: steps record what they offered, which is the
        // target rate up to pacing error.
        let best = best_rate.and_then(|rate| {
            steps.iter().min_by(|a, b| {
                (num(a, "offered") - rate)
                    .abs()
                    .total_cmp(&(num(b, "offered") - rate).abs())
            })
        });
        let details = summary["ramp"]["step_details"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let thresholds = rounds::Thresholds {
            steal_percent: self.options.steal_limit,
            foreign_percent: self.options.foreign_limit,
            foreign_core_percent: self.options.foreign_core_limit,
        };
        let measured_cores = self.options.measured_cores();
        let steps: Vec<StepRecord> = steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let detail = details.get(i).unwrap_or(&Value::Null);
                StepRecord {
                    rate: detail["rate"].as_f64().unwrap_or(num(step, "offered")),
                    offered: num(step, "offered"),
                    throughput: num(step, "throughput"),
                    passed: detail["passed"].as_bool().unwrap_or(true),
                    load: rounds::step_load(
                        &detail["cpu"],
                        detail["process_ticks"].as_u64(),
                        &measured_cores,
                        thresholds,
                    ),
                    known_percent: known_percent(detail),
                }
            })
            .collect();
        let disturbed = rounds::ramp_disturbed(
            &steps
                .iter()
                .map(|s| (s.passed, s.load.disturbed))
                .collect::<Vec<_>>(),
        );
        Ok(Measured {
            target,
            best_rate,
            throughput: best.map_or(0.0, |s| num(s, "throughput")),
            p50_us: best.map_or(0.0, |s| num(s, "p50_us")),
            p99_us: best.map_or(0.0, |s| num(s, "p99_us")),
            json,
            reloads: None,
            round,
            steps,
            disturbed,
        })
    }

    /// Runs the generator at `rate` for --reload-seconds four times, without reloads, with,
    /// with and without (the configuration rewritten, the Preference toggled, and `server`
    /// sent SIGHUP every `every` seconds), and sums each kind.
    fn reload_comparison(
        &self,
        target: Target,
        server: &Process,
        rate: f64,
        every: f64,
    ) -> Result<ReloadComparison> {
        println!(
            "  reloads: {rate:.0} flows/s: runs without, with, with and \
             without a reload every {every} s (the order cancels a drift of the machine)"
        );
        let log = self.work.join(format!("{}.log", target.name));
        let applied = || {
            std::fs::read_to_string(&log)
                .map(|text| text.matches("configuration reloaded").count() as u64)
                .unwrap_or(0)
        };
        let before = applied();
        let mut without = Run::default();
        let mut with = Run::default();
        for (seed, reload) in [(0xc1, false), (0xc2, true), (0xc3, true), (0xc4, false)] {
            let run = self.fixed_run(target, rate, seed, reload.then(|| (server.id(), every)))?;
            println!(
                "    {}: {} flows started, {} completed, {} lost",
                if reload {
                    "with reloads   "
                } else {
                    "without reloads"
                },
                run.started,
                run.completed,
                run.lost()
            );
            if reload { &mut with } else { &mut without }.add(&run);
        }
        let reloads = applied() - before;
        for (name, run) in [("without reloads", &without), ("with reloads", &with)] {
            println!(
                "    {name}, in all: {} flows started, {} completed, {} lost ({} timeouts, {} \
                 failed)",
                run.started,
                run.completed,
                run.lost(),
                run.timeouts,
                run.failed
            );
        }
        println!("    reloads applied: {reloads}");
        Ok(ReloadComparison {
            rate,
            every,
            without,
            with,
            reloads,
        })
    }

    /// One generator run at `rate` for --reload-seconds; with `reload` (pid, seconds), the
    /// xdhcp6d configuration is changed and the process sent SIGHUP that often meanwhile.
    fn fixed_run(
        &self,
        target: Target,
        rate: f64,
        seed: u8,
        reload: Option<(u32, f64)>,
    ) -> Result<Run> {
        let json = self
            .work
            .join(format!("{}-reload-{seed:x}.json", target.name));
        let _ = std::fs::remove_file(&json);
        let mut command = self.generator(target, self.options.clients, seed);
        command
            .args(["--rate", &format!("{rate:.0}")])
            .args(["--duration", &self.options.reload_seconds.to_string()])
            .arg("--json")
            .arg(&json)
            .stdout(Stdio::null());
        let line = cmd::display(&command);
        eprintln!("$ {line}");
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start `{line}`"))?;
        if let Some((pid, every)) = reload {
            let config = self.work.join("xdhcp6d.toml");
            let mut toggle = false;
            let period = Duration::from_secs_f64(every);
            let mut next = Instant::now() + period;
            while child.try_wait()?.is_none() {
                if Instant::now() < next {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                next += period;
                let text = std::fs::read_to_string(&config)?;
                let (from, to) = if toggle {
                    ("preference = 254", "preference = 255")
                } else {
                    ("preference = 255", "preference = 254")
                };
                toggle = !toggle;
                std::fs::write(&config, text.replacen(from, to, 1))?;
                let sent = Command::new("kill")
                    .args(["-HUP", &pid.to_string()])
                    .status()
                    .context("running kill")?;
                if !sent.success() {
                    bail!("kill -HUP {pid} failed ({sent})");
                }
            }
        }
        let status = child.wait()?;
        if !(status.success() || status.code() == Some(1)) {
            bail!("`{line}` failed ({status})");
        }
        let text = std::fs::read_to_string(&json)
            .with_context(|| format!("reading {}", json.display()))?;
        let summary: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", json.display()))?;
        let count = |key: &str| summary[key].as_u64().unwrap_or(0);
        Ok(Run {
            started: count("flows_started"),
            completed: count("flows_completed"),
            timeouts: count("timeouts"),
            failed: count("flows_failed"),
        })
    }
}

/// The limit keys of an xdhcp6d configuration, as written (`[[link]]` keys prefixed `link.`).
/// The `[link.ddns]` of the -ddns targets: every client gets a generated name, and the DNS
/// server is one that is stopped (nothing listens at [::1]:53 in the server's namespace, so
/// every update is refused at once by the kernel and retried with backoff).
const DDNS_STOPPED: &str = "
[link.ddns]
forward-zone = \"example.net\"
reverse-zone = \"1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa\"
servers = [\"::1\"]
";

fn limits_of(config: &str) -> String {
    const KEYS: [&str; 10] = [
        "max-leases",
        "relay-max-bindings",
        "relay-binding-rate",
        "relay-binding-burst",
        "mac-max-bindings",
        "mac-binding-rate",
        "mac-binding-burst",
        "decline-limit",
        "binding-rate",
        "binding-burst",
    ];
    let mut section = "";
    let mut found = Vec::new();
    for line in config.lines().map(str::trim) {
        if line.starts_with('[') {
            section = if line.starts_with("[[link]]") {
                "link."
            } else {
                ""
            };
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if KEYS.contains(&key) {
            found.push(format!("{section}{key} = {}", value.trim()));
        }
    }
    if found.is_empty() {
        "the defaults (see examples/reference.toml)".to_owned()
    } else {
        format!("{} (0: off; the rest default)", found.join(", "))
    }
}

fn kea_config() -> String {
    let config = json!({
        "Dhcp6": {
            // Kea answers relays only on an interface written with its unicast address.
            "interfaces-config": { "interfaces": [format!("{SERVER_IF}/{SERVER_ADDRESS}")] },
            "lease-database": { "type": "memfile", "persist": false },
            // A server DUID given here and not persisted: Kea otherwise writes one into its
            // data directory (/var/lib/kea), which a fresh machine does not have.
            "server-id": {
                "type": "EN",
                "enterprise-id": 2495,
                "identifier": "0102030405060708",
                "persist": false
            },
            "renew-timer": 1800,
            "rebind-timer": 2880,
            "preferred-lifetime": 3600,
            "valid-lifetime": 7200,
            "subnet6": [{
                "id": 1,
                "subnet": POOL,
                "interface": SERVER_IF,
                "pools": [{ "pool": POOL }],
                "option-data": [{ "name": "dns-servers", "data": "2001:db8:53::1" }]
            }],
            "loggers": [{
                "name": "kea-dhcp6",
                "severity": "WARN",
                "output_options": [{ "output": "stderr" }]
            }]
        }
    });
    serde_json::to_string_pretty(&config).unwrap_or_default()
}

/// A target's per-round values of `of` (with whether that round counts as disturbed).
fn per_round(
    results: &[Measured],
    name: &str,
    of: impl Fn(&Measured) -> Option<(f64, bool)>,
) -> Vec<(f64, bool)> {
    results
        .iter()
        .filter(|m| m.target.name == name)
        .filter_map(of)
        .collect()
}

/// The measurement of `name` in `round`.
fn in_round<'a>(results: &'a [Measured], name: &str, round: u32) -> Option<&'a Measured> {
    results
        .iter()
        .find(|m| m.target.name == name && m.round == round)
}

/// `m`'s best rate divided by that of `base` in the same round, disturbed when either was.
fn ratio_to(results: &[Measured], m: &Measured, base: &str) -> Option<(f64, bool)> {
    let b = in_round(results, base, m.round)?;
    match (m.best_rate, b.best_rate) {
        (Some(r), Some(bb)) if bb > 0.0 => Some((r / bb, m.disturbed || b.disturbed)),
        _ => None,
    }
}

/// The median (over the undisturbed values, or all with a mark when all were disturbed) and
/// the range of every value.
fn median_and_range(values: &[(f64, bool)]) -> Option<(f64, rounds::Spread, bool)> {
    let (kept, all_disturbed) = rounds::undisturbed(values);
    let median = rounds::spread(&kept)?.median;
    let range = rounds::spread(&values.iter().map(|v| v.0).collect::<Vec<_>>())?;
    Some((median, range, all_disturbed))
}

/// The side-by-side table (Markdown, so it can go into the README as printed), then one
/// line per round.
fn table(results: &[Measured], options: &Options) -> String {
    let mut names: Vec<&str> = Vec::new();
    for m in results {
        if !names.contains(&m.target.name) {
            names.push(m.target.name);
        }
    }
    let rate = |m: &Measured| Some((m.best_rate.unwrap_or(0.0), m.disturbed));
    let mut t = format!(
        "sarr flows/s (Solicit, Advertise, Request, Reply) with loss <= {} %, {} emulated clients \
         behind {} relays, {} queue(s), generator over {} on core(s) {}, server on core(s) {}, \
         {} s per step, \
         xdhcp6d journal durability {}; {} rounds (every target once per round, in this \
         order); medians over the rounds not disturbed (a failing step with steal over {} % \
         on the cores under test, the other CPUs over {} % busy, or other processes over {} % \
         of the cores under test; * where every round was), ranges over all\n\n",
        options.loss,
        options.clients,
        options.relays,
        options.queues,
        options.transport,
        core_list(&options.generator_cores()),
        core_list(&options.server_cores()),
        options.step_seconds,
        options.durability,
        options.rounds,
        options.steal_limit,
        options.foreign_limit,
        options.foreign_core_limit,
    );
    t.push_str(
        "| target | what | highest rate (median) | range | of ceiling (median) | range | vs Kea \
         | p50 | p99 | rounds (disturbed) |\n",
    );
    t.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    let star = |all: bool| if all { "*" } else { "" };
    for name in &names {
        let Some(first) = results.iter().find(|m| m.target.name == *name) else {
            continue;
        };
        let rates = per_round(results, name, rate);
        let (median, range, all) = median_and_range(&rates).unwrap_or((
            0.0,
            rounds::Spread {
                median: 0.0,
                min: 0.0,
                max: 0.0,
                count: 0,
            },
            false,
        ));
        let is_server = *name != "ceiling";
        let of_ceiling = per_round(results, name, |m| ratio_to(results, m, "ceiling"));
        let (ceiling_median, ceiling_range) = match (is_server, median_and_range(&of_ceiling)) {
            (true, Some((med, r, all))) => (
                format!("{:.0} %{}", 100.0 * med, star(all)),
                format!("{:.0}-{:.0} %", 100.0 * r.min, 100.0 * r.max),
            ),
            _ => ("-".to_owned(), "-".to_owned()),
        };
        let vs_kea = per_round(results, name, |m| ratio_to(results, m, "kea"));
        let vs_kea = match (is_server && *name != "kea", median_and_range(&vs_kea)) {
            (true, Some((med, _, all))) => format!("{med:.1}x{}", star(all)),
            _ => "-".to_owned(),
        };
        let counted = counted(results, name);
        let latency = |of: fn(&Measured) -> f64| {
            rounds::spread(&counted.iter().map(|m| of(m)).collect::<Vec<_>>())
                .map_or(0.0, |s| s.median)
        };
        let disturbed = rates.iter().filter(|r| r.1).count();
        t.push_str(&format!(
            "| {} | {} | {:.0}/s{} | {:.0}-{:.0}/s | {} | {} | {} | {:.0} us | {:.0} us | {} ({}) |\n",
            name,
            first.target.what,
            median,
            star(all),
            range.min,
            range.max,
            ceiling_median,
            ceiling_range,
            vs_kea,
            latency(|m| m.p50_us),
            latency(|m| m.p99_us),
            rates.len(),
            disturbed,
        ));
    }
    let of_baseline = per_round(results, "xdhcp6d-xdp", |m| ratio_to(results, m, "baseline"));
    if let Some((med, r, all)) = median_and_range(&of_baseline) {
        t.push_str(&format!(
            "\nxdhcp6d-xdp against the baseline build, same round: {:.0} %{} of its rate \
             (median; {:.0}-{:.0} %)\n",
            100.0 * med,
            star(all),
            100.0 * r.min,
            100.0 * r.max
        ));
    }
    for datapath in ["xdp", "udp"] {
        let plain = format!("xdhcp6d-{datapath}");
        let with = format!("xdhcp6d-{datapath}-ddns");
        let shares = per_round(results, &with, |m| ratio_to(results, m, &plain));
        if let Some((med, r, all)) = median_and_range(&shares) {
            t.push_str(&format!(
                "\n{plain} with DNS updates on and its DNS server stopped: {:.0} %{} of the \
                 rate without DNS updates (median; {:.0}-{:.0} %)\n",
                100.0 * med,
                star(all),
                100.0 * r.min,
                100.0 * r.max
            ));
        }
    }
    // Round by round: the best rate, the share of the round's ceiling, the highest steal,
    // foreign load and other processes' time on the cores under test of the steps; D marks
    // a disturbed measurement.
    t.push_str("\nround by round: best rate (share of the round's ceiling) [highest steal / other CPUs' load / other processes on the cores under test, of its steps], D: disturbed, W: reached with over 1 % of its flows by clients already bound (the population wrapped: a lighter workload than new clients)\n\n| round |");
    for name in &names {
        t.push_str(&format!(" {name} |"));
    }
    t.push_str("\n|---|");
    t.push_str(&"---|".repeat(names.len()));
    t.push('\n');
    for round in 1..=options.rounds {
        t.push_str(&format!("| {round} |"));
        for name in &names {
            let Some(m) = in_round(results, name, round) else {
                t.push_str(" - |");
                continue;
            };
            let share = if *name == "ceiling" {
                String::new()
            } else {
                ratio_to(results, m, "ceiling")
                    .map_or(String::new(), |(r, _)| format!(" ({:.0} %)", 100.0 * r))
            };
            let steal = m
                .steps
                .iter()
                .map(|s| s.load.steal_percent)
                .fold(0.0, f64::max);
            let foreign = m
                .steps
                .iter()
                .filter_map(|s| s.load.foreign_percent)
                .fold(None, |a: Option<f64>, f| Some(a.map_or(f, |a| a.max(f))));
            let foreign_core = m
                .steps
                .iter()
                .filter_map(|s| s.load.foreign_core_percent)
                .fold(None, |a: Option<f64>, f| Some(a.map_or(f, |a| a.max(f))));
            t.push_str(&format!(
                " {}{share} [{steal:.1} % / {} / {}]{}{} |",
                m.best_rate
                    .map_or("none".to_owned(), |r| format!("{r:.0}/s")),
                foreign.map_or("-".to_owned(), |f| format!("{f:.0} %")),
                foreign_core.map_or("-".to_owned(), |f| format!("{f:.1} %")),
                if m.disturbed { " D" } else { "" },
                if m.wrapped_at().is_some() { " W" } else { "" }
            ));
        }
        t.push('\n');
    }
    t.push_str(&steps_table(results));
    let compared: Vec<&Measured> = results.iter().filter(|m| m.reloads.is_some()).collect();
    if !compared.is_empty() {
        t.push_str(
            "\nflows lost at a fixed rate, without and with configuration reloads \
             (SIGHUP), in round 1\n\n| target | rate | run | reloads | flows started | completed | lost \
             | timeouts |\n|---|---|---|---|---|---|---|---|\n",
        );
        for m in compared {
            let Some(r) = &m.reloads else { continue };
            for (run, data, reloads) in [
                ("without reloads", &r.without, "0".to_owned()),
                (
                    "with reloads",
                    &r.with,
                    format!("{} (every {} s)", r.reloads, r.every),
                ),
            ] {
                t.push_str(&format!(
                    "| {} | {:.0}/s | {run} | {reloads} | {} | {} | {} | {} |\n",
                    m.target.name,
                    r.rate,
                    data.started,
                    data.completed,
                    data.lost(),
                    data.timeouts
                ));
            }
        }
    }
    t
}

/// Every ramp step of every round: its rate, verdict and the machine meanwhile, with the
/// time other processes took on the cores under test.
fn steps_table(results: &[Measured]) -> String {
    let mut t = String::from(
        "\nstep by step: steal (highest of the cores under test), the other CPUs' mean load, \
         and the time other processes than the server and the generator ran on the cores \
         under test (/proc/stat task time less /proc/PID/stat), the flows by clients already \
         bound (the population wrapped), D: disturbed\n\n\
         | target | round | rate | completed | passed | steal | other CPUs | other processes \
         on the cores under test | flows by bound clients | |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    let percent = |p: Option<f64>| p.map_or("-".to_owned(), |p| format!("{p:.1} %"));
    for m in results {
        for s in &m.steps {
            t.push_str(&format!(
                "| {} | {} | {:.0}/s | {:.0}/s | {} | {:.1} % | {} | {} | {:.1} % | {} |\n",
                m.target.name,
                m.round,
                s.rate,
                s.throughput,
                if s.passed { "yes" } else { "no" },
                s.load.steal_percent,
                percent(s.load.foreign_percent),
                percent(s.load.foreign_core_percent),
                s.known_percent,
                if s.load.disturbed { "D" } else { "" },
            ));
        }
    }
    t
}

fn spread_json(values: &[(f64, bool)]) -> Value {
    match median_and_range(values) {
        Some((median, range, all_disturbed)) => json!({
            "median": median,
            "min": range.min,
            "max": range.max,
            "rounds": values.len(),
            "disturbed": values.iter().filter(|v| v.1).count(),
            "median_of_disturbed": all_disturbed,
        }),
        None => Value::Null,
    }
}

fn summary_json(results: &[Measured], options: &Options) -> Value {
    let mut names: Vec<&str> = Vec::new();
    for m in results {
        if !names.contains(&m.target.name) {
            names.push(m.target.name);
        }
    }
    json!({
        "loss_threshold_percent": options.loss,
        "clients": options.clients,
        "relays": options.relays,
        "transport": options.transport,
        "step_seconds": options.step_seconds,
        "durability": options.durability,
        "generator_core": options.generator_core,
        "server_core": options.server_core,
        "queues": options.queues,
        "generator_cores": options.generator_cores(),
        "server_cores": options.server_cores(),
        "rounds": options.rounds,
        "steal_limit_percent": options.steal_limit,
        "foreign_limit_percent": options.foreign_limit,
        "foreign_core_limit_percent": options.foreign_core_limit,
        "medians": "over the rounds not disturbed (all of them, median_of_disturbed true, \
                    when every one was); min and max over all",
        "targets": names.iter().map(|name| {
            let first = results.iter().find(|m| m.target.name == *name);
            json!({
                "name": name,
                "what": first.map(|m| m.target.what),
                "scenario": first.map(|m| m.target.scenario),
                "best_rate": spread_json(&per_round(results, name, |m| {
                    Some((m.best_rate.unwrap_or(0.0), m.disturbed))
                })),
                "of_ceiling": spread_json(&per_round(results, name, |m| {
                    ratio_to(results, m, "ceiling")
                })),
                "vs_kea": spread_json(&per_round(results, name, |m| ratio_to(results, m, "kea"))),
            })
        }).collect::<Vec<_>>(),
        "per_round": results.iter().map(|m| json!({
            "round": m.round,
            "name": m.target.name,
            "best_rate": m.best_rate,
            "throughput_at_best": m.throughput,
            "p50_us_at_best": m.p50_us,
            "p99_us_at_best": m.p99_us,
            "of_ceiling": ratio_to(results, m, "ceiling").map(|r| r.0),
            "disturbed": m.disturbed,
            "wrapped_at": m.wrapped_at(),
            "summary": m.json.display().to_string(),
            "steps": m.steps.iter().map(|s| json!({
                "rate": s.rate,
                "offered": s.offered,
                "throughput": s.throughput,
                "passed": s.passed,
                "steal_percent": s.load.steal_percent,
                "foreign_percent": s.load.foreign_percent,
                "foreign_core_percent": s.load.foreign_core_percent,
                "disturbed": s.load.disturbed,
                "known_percent": s.known_percent,
            })).collect::<Vec<_>>(),
            "reloads": m.reloads.as_ref().map(|r| json!({
                "rate": r.rate,
                "every_seconds": r.every,
                "reloads_applied": r.reloads,
                "without": run_json(&r.without),
                "with": run_json(&r.with),
            })),
        })).collect::<Vec<_>>(),
    })
}

fn run_json(run: &Run) -> Value {
    json!({
        "flows_started": run.started,
        "flows_completed": run.completed,
        "flows_lost": run.lost(),
        "timeouts": run.timeouts,
        "flows_failed": run.failed,
    })
}

/// The value of field `name` of xdhcp6d's `stopped` log line (text format: `name=value` or
/// `name="value"`); `None` for another line or a field it lacks.
fn stopped_value<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    if !line.contains("stopped") {
        return None;
    }
    let key = format!(" {name}=");
    let rest = &line[line.find(&key)? + key.len()..];
    Some(match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next().unwrap_or_default(),
        None => rest.split_whitespace().next().unwrap_or_default(),
    })
}

/// A number field of xdhcp6d's `stopped` log line.
fn stopped_field(line: &str, name: &str) -> Option<u64> {
    stopped_value(line, name)?.parse().ok()
}

/// The `lost` field of xdhcp6d's `stopped` log line (`lost="…"` or `lost=none`).
fn stopped_losses(line: &str) -> Option<String> {
    stopped_value(line, "lost").map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn the_servers_losses_are_read_from_its_last_line() {
        let line = "2026-12-07T19:09:21.512036Z  INFO xdhcp6d::runtime: stopped leases=5 \
                    received=7 sent=7 lost=\"rate_limited 2, xsk rx_ring_full 1200\"";
        assert_eq!(
            stopped_losses(line).as_deref(),
            Some("rate_limited 2, xsk rx_ring_full 1200")
        );
        assert_eq!(
            stopped_losses("… INFO xdhcp6d::runtime: stopped leases=0 lost=none").as_deref(),
            Some("none")
        );
        // A daemon too old to count its losses, and other lines.
        assert_eq!(stopped_losses("… stopped leases=5 received=7 sent=7"), None);
        assert_eq!(stopped_losses("… serving lost=3"), None);
    }

    #[test]
    fn the_workers_turns_are_read_from_the_servers_last_line() {
        let line = "… INFO xdhcp6d::runtime: stopped leases=5 received=700 sent=690 \
                    busy_turns=35 sleeps=12 lost=none";
        assert_eq!(stopped_field(line, "received"), Some(700));
        assert_eq!(stopped_field(line, "busy_turns"), Some(35));
        assert_eq!(stopped_field(line, "sleeps"), Some(12));
        // A whole field name only, and a daemon too old to count its turns.
        assert_eq!(stopped_field(line, "turns"), None);
        assert_eq!(
            stopped_field("… stopped received=7 lost=none", "sleeps"),
            None
        );
    }

    /// `Options` as a command line of its own, for the tests.
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        options: Options,
    }

    impl Options {
        fn try_parse_from(args: [&str; 3]) -> Result<Self, clap::Error> {
            Cli::try_parse_from(args).map(|c| c.options)
        }
    }

    #[test]
    fn bench_config_states_its_limits() {
        let text = fixtures::render(
            fixtures::BENCH,
            &[("SERVER_IF", "veth0"), ("EXPECTED_LEASES", "10000000")],
        )
        .expect("fixture");
        assert!(text.contains("\nexpected-leases = 10000000\n"), "{text}");
        let limits = limits_of(&text);
        for key in [
            "relay-binding-rate = 0",
            "mac-max-bindings = 0",
            "link.binding-rate = 0",
        ] {
            assert!(limits.contains(key), "{limits}");
        }
    }

    fn measured(name: &str, round: u32, rate: f64, disturbed: bool) -> Measured {
        let target = TARGETS
            .into_iter()
            .find(|t| t.name == name)
            .expect("target");
        Measured {
            target,
            best_rate: Some(rate),
            throughput: rate,
            p50_us: 100.0 * f64::from(round),
            p99_us: 1000.0 * f64::from(round),
            json: PathBuf::from(format!("{name}-r{round}.json")),
            reloads: None,
            round,
            steps: vec![StepRecord {
                rate,
                offered: rate,
                throughput: rate,
                passed: true,
                load: rounds::StepLoad {
                    steal_percent: if disturbed { 12.0 } else { 0.5 },
                    foreign_percent: None,
                    foreign_core_percent: Some(if disturbed { 30.0 } else { 2.0 }),
                    disturbed,
                },
                known_percent: 0.0,
            }],
            disturbed,
        }
    }

    #[test]
    fn the_share_of_flows_by_bound_clients_comes_from_the_step_details() {
        let detail = json!({"flows_known": 250, "flows_started": 1000});
        assert_eq!(known_percent(&detail), 25.0);
        assert_eq!(known_percent(&json!({"flows_started": 1000})), 0.0);
        assert_eq!(
            known_percent(&json!({"flows_known": 0, "flows_started": 0})),
            0.0
        );
    }

    #[test]
    fn a_best_rate_reached_with_clients_already_bound_is_marked() {
        let step = |rate: f64, passed: bool, known_percent: f64| StepRecord {
            rate,
            offered: rate,
            throughput: rate,
            passed,
            load: rounds::StepLoad {
                steal_percent: 0.0,
                foreign_percent: None,
                foreign_core_percent: None,
                disturbed: false,
            },
            known_percent,
        };
        let mut m = measured("xdhcp6d-xdp", 1, 30_000.0, false);
        m.steps = vec![
            step(10_000.0, true, 0.0),
            step(20_000.0, true, 0.5),
            step(30_000.0, true, 40.0),
            step(40_000.0, false, 100.0),
        ];
        assert_eq!(m.wrapped_at(), Some(30_000.0));
        // Wrapped only in a failed step above the best: the best was new clients.
        m.steps[2].known_percent = 0.0;
        assert_eq!(m.wrapped_at(), None);
        // A refinement step below the best that ran bound clients marks it too.
        m.steps.push(step(25_000.0, true, 100.0));
        assert_eq!(m.wrapped_at(), Some(25_000.0));
        let table = table(
            &[measured("ceiling", 1, 60_000.0, false), m],
            &Options::try_parse_from(["bench", "--rounds", "1"]).expect("options"),
        );
        assert!(
            table.contains("30000/s (50 %) [0.0 % / - / -] W |"),
            "{table}"
        );
        assert!(
            table.contains("| 25000/s | 25000/s | yes | 0.0 % | - | - | 100.0 % |  |"),
            "{table}"
        );
    }

    #[test]
    fn rounds_give_medians_of_the_undisturbed_and_ranges_of_all() {
        let options = Options::try_parse_from(["bench", "--rounds", "3"]).expect("options");
        let results = vec![
            measured("ceiling", 1, 100_000.0, false),
            measured("xdhcp6d-xdp", 1, 56_000.0, false),
            measured("kea", 1, 7_000.0, false),
            measured("ceiling", 2, 80_000.0, false),
            measured("xdhcp6d-xdp", 2, 12_000.0, true),
            measured("kea", 2, 2_000.0, false),
            measured("ceiling", 3, 120_000.0, false),
            measured("xdhcp6d-xdp", 3, 60_000.0, false),
            measured("kea", 3, 8_000.0, false),
        ];
        let t = table(&results, &options);
        // xdp: the disturbed round 2 is left out of the medians (56k and 60k: 58k; of the
        // ceiling 56 % and 50 %: 53 %; of Kea 8.0 and 7.5: 7.8), kept in the ranges (12k; 15 %).
        assert!(
            t.contains("| xdhcp6d-xdp | xdhcp6d --datapath xdp (AF_XDP) | 58000/s | 12000-60000/s | 53 % | 15-56 % | 7.8x | 200 us | 2000 us | 3 (1) |"),
            "{t}"
        );
        assert!(t.contains("| ceiling |"), "{t}");
        assert!(t.contains("| 7000/s | 2000-8000/s |"), "{t}");
        assert!(t.contains("12000/s (15 %) [12.0 % / - / 30.0 %] D"), "{t}");
        // Each step with the time other processes took on the cores under test.
        assert!(
            t.contains(
                "| xdhcp6d-xdp | 2 | 12000/s | 12000/s | yes | 12.0 % | - | 30.0 % | 0.0 % | D |"
            ),
            "{t}"
        );
        // The plot takes each target's round closest to its median.
        let plotted: Vec<(&str, u32)> = median_rounds(&results)
            .iter()
            .map(|m| (m.target.name, m.round))
            .collect();
        assert_eq!(plotted, [("ceiling", 1), ("xdhcp6d-xdp", 1), ("kea", 1)]);
        let json = summary_json(&results, &options);
        assert_eq!(json["targets"][1]["best_rate"]["median"], json!(58_000.0));
        assert_eq!(json["targets"][1]["best_rate"]["disturbed"], json!(1));
        assert_eq!(json["per_round"][4]["steps"][0]["disturbed"], json!(true));
    }

    #[test]
    fn every_round_disturbed_still_gives_a_marked_median() {
        let options = Options::try_parse_from(["bench", "--rounds", "2"]).expect("options");
        let results = vec![
            measured("xdhcp6d-udp", 1, 30_000.0, true),
            measured("xdhcp6d-udp", 2, 20_000.0, true),
        ];
        let t = table(&results, &options);
        assert!(t.contains("| 25000/s* | 20000-30000/s |"), "{t}");
    }

    #[test]
    fn kea_needs_no_data_directory_for_its_server_id() {
        let config: Value = serde_json::from_str(&kea_config()).expect("JSON");
        let server_id = &config["Dhcp6"]["server-id"];
        assert_eq!(server_id["persist"], json!(false));
        assert_eq!(server_id["type"], json!("EN"));
        assert_eq!(config["Dhcp6"]["lease-database"]["persist"], json!(false));
    }
}
