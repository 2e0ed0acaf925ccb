//! `xdhcp6-bench`: the xdhcp6 load generator.
#![forbid(unsafe_code)]

use std::fs;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;

use xdhcp6_bench::afxdp::{AfXdpOptions, AfXdpTransport, locate_object};
use xdhcp6_bench::avalanche::{Avalanche, AvalancheSample, AvalancheSettings, run_avalanche};
use xdhcp6_bench::cpu;
use xdhcp6_bench::frame::{Mac, parse_mac};
use xdhcp6_bench::generator::{Flow, Flows, Generator, Settings};
use xdhcp6_bench::hold::{Hold, HoldSample, HoldSettings, ServerInfo};
use xdhcp6_bench::leasequery::{self as lq, Leasequery, LeasequerySettings, LeasequerySummary};
use xdhcp6_bench::message::IaSet;
use xdhcp6_bench::multiqueue::{self, Lane, MAX_QUEUES};
use xdhcp6_bench::population::{MAX_CLIENTS, Population, Prefix};
use xdhcp6_bench::report::{PlotPoint, RunInfo, StepDetail, Summary, svg};
use xdhcp6_bench::runner::{
    Control, Phase, Ramp, RampResult, Sample, SystemClock, run_hold, run_phase, run_ramp,
};
use xdhcp6_bench::stats::Stats;
use xdhcp6_bench::transport::{Transport, UdpTransport};
use xdhcp6_datapath::steer::AttachMode;

/// Emulates DHCPv6 clients (optionally behind relays) against a server, validates every
/// reply and reports rate, loss and latency.
#[derive(Debug, Parser)]
#[command(name = "xdhcp6-bench", version)]
struct Cli {
    /// Interface to send on (needed for multicast to ff02::1:2 and link-local servers, and for
    /// --transport afxdp).
    #[arg(long, short = 'i')]
    interface: Option<String>,
    /// Unicast server address instead of All_DHCP_Relay_Agents_and_Servers: for relayed
    /// clients (--relays); servers drop client messages sent unicast (RFC 9915 §16).
    #[arg(long)]
    server: Option<Ipv6Addr>,
    /// udp (kernel sockets) or afxdp (hand-built frames on one queue of --interface).
    #[arg(long, default_value = "udp")]
    transport: String,
    /// The server's MAC address, for --transport afxdp with a unicast --server.
    #[arg(long, value_name = "MAC", value_parser = parse_mac)]
    server_mac: Option<Mac>,
    /// XDP attach mode of the client program for --transport afxdp: native, skb or auto.
    #[arg(long, default_value_t = AttachMode::Auto)]
    xdp_mode: AttachMode,
    /// --transport afxdp: every emulated relay sends from this address and the interface's
    /// MAC (a relay agent's upstream address, owned by the interface so that the kernel
    /// answers neighbour discovery for it) instead of from its link-address and own MAC.
    #[arg(long, value_name = "ADDR")]
    relay_source: Option<Ipv6Addr>,
    /// The receive queue of --interface to bind for --transport afxdp (the first one, with
    /// --queues).
    #[arg(long, default_value_t = 0)]
    queue: u32,
    /// --transport afxdp: drive this many queues (--queue, --queue + 1, ...) with as many
    /// threads, each with its own socket and UMEM. Each client's requests leave on the queue
    /// a NIC's receive-side scaling would put its flow on (the Toeplitz hash of its source
    /// address and port; a relay's, for relayed clients), and each thread runs the clients of
    /// its queue at their share of --rate. The flow scenarios only (sarr ... echo).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_QUEUES)))]
    queues: u32,
    /// The eBPF object for --transport afxdp (default: $XDHCP6_EBPF_OBJECT, else the copy
    /// embedded at build time).
    #[arg(long, value_name = "PATH")]
    ebpf_object: Option<PathBuf>,
    /// sarr, rapid, renew, rebind, release, info, pd, na+pd, mix, hold (clients that keep
    /// their leases over time: Renew at T1, Rebind at T2, Solicit when they expire), echo
    /// (against xdhcp6-reflect: each flow's Solicit and Request must come back unchanged), or
    /// bulk-leasequery (bind every client through --relays at --rate, then ask the server over
    /// TCP for each relay's bindings by link-address and some clients' by Remote-ID, report
    /// leases streamed per second and check every answer against what was bound), or
    /// leasequery (every client binds once with SARR, then Leasequery at --rate for
    /// --duration, each answer checked against the binding), or avalanche (every client
    /// starts at once and binds with the RFC 9915 retransmission timers; ends when all are
    /// bound or after --duration seconds).
    #[arg(long, default_value = "sarr")]
    scenario: String,
    /// leasequery: address (QUERY_BY_ADDRESS), client-id (QUERY_BY_CLIENTID) or both in turn.
    #[arg(long, default_value = "both")]
    query_by: String,
    /// Weights for `--scenario mix`.
    #[arg(long, default_value = "sarr=60,renew=20,rebind=5,release=5,info=10")]
    mix: String,
    /// IAs for sarr, rapid, first bindings and hold: na, pd or na+pd.
    #[arg(long, default_value = "na")]
    ia: String,
    /// Emulated clients (distinct DUIDs, a mix of DUID-LLT, DUID-EN and DUID-LL).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CLIENTS)))]
    clients: u32,
    /// Flows started per second (open loop).
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Seconds of sending (per step with --ramp; the longest run for hold and avalanche).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Emulated relays (0: clients on the link); relay r sends Relay-forward messages with
    /// link-address = the (r+1)-th address of --relay-link, an Interface-Id and a Remote-Id.
    #[arg(long, default_value_t = 0)]
    relays: u32,
    /// Prefix the relays' link-addresses come from (default: --expect-range).
    #[arg(long)]
    relay_link: Option<Prefix>,
    /// A request unanswered this long counts as lost.
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// Raise the rate step by step to find the highest one with loss under --loss.
    #[arg(long)]
    ramp: bool,
    /// With --ramp: a process (the server under test) whose CPU time is recorded for each
    /// step next to the generator's own (`ramp.step_details[].process_ticks`, from
    /// /proc/PID/stat, all its threads), so that a comparison can tell the time other
    /// processes took on the cores under test. Repeatable.
    #[arg(long, value_name = "PID")]
    watch_pid: Vec<u32>,
    /// Acceptable loss for --ramp, percent (timeouts and failed validations).
    #[arg(long, default_value_t = 1.0)]
    loss: f64,
    /// First rate of the ramp (default: --rate).
    #[arg(long)]
    start: Option<f64>,
    /// Ramp increment (default: the first rate).
    #[arg(long)]
    step: Option<f64>,
    /// Highest rate of the ramp.
    #[arg(long, default_value_t = 1_000_000.0)]
    max: f64,
    /// After the ramp's first failing step, bisect between it and the last passing rate this
    /// many times (each step halves the uncertainty).
    #[arg(long, default_value_t = 0)]
    refine: u32,
    /// Every address must lie in this prefix, e.g. 2001:db8:1::/65.
    #[arg(long)]
    expect_range: Option<Prefix>,
    /// Every delegated prefix must lie in this prefix, e.g. 2001:db8:100::/49.
    #[arg(long)]
    expect_pd_range: Option<Prefix>,
    /// Distinguishes the DUIDs of benches run side by side.
    #[arg(long, default_value_t = 0xbe)]
    seed: u8,
    /// Write the JSON summary here ("-" for stdout).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an SVG plot of throughput and latency against offered load here.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// hold: clients start evenly spread over this many seconds.
    #[arg(long, default_value_t = 10.0)]
    ramp_up: f64,
    /// hold: the largest retransmission timeout, milliseconds (the first is 1 s).
    #[arg(long, default_value_t = 8000, value_parser = clap::value_parser!(u32).range(1000..))]
    max_rt_ms: u32,
    /// bulk-leasequery: the server's Bulk Leasequery TCP port (`[leasequery] bulk-listen`).
    #[arg(long, default_value_t = 547)]
    bulk_port: u16,
    /// bulk-leasequery: clients asked about by Remote-ID after the link-address queries.
    #[arg(long, default_value_t = 100)]
    bulk_remote_ids: u32,
    /// avalanche: the generator's own cap on messages sent per second (0: none); messages
    /// the cap holds back leave later and the report counts them.
    #[arg(long, default_value_t = 0.0)]
    max_send_rate: f64,
    /// No progress line.
    #[arg(long, short = 'q')]
    quiet: bool,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(0) => ExitCode::SUCCESS,
        // Validation failures make the run fail, so scripts notice a misbehaving server.
        Ok(_) => ExitCode::from(1),
        Err(error) => {
            eprintln!("xdhcp6-bench: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u64> {
    if cli.queues > 1
        && matches!(
            cli.scenario.as_str(),
            "hold" | "bulk-leasequery" | "leasequery" | "avalanche"
        )
    {
        bail!(
            "--queues {} is for the flow scenarios (sarr ... mix, echo), not --scenario {}",
            cli.queues,
            cli.scenario
        );
    }
    if cli.scenario == "hold" {
        return hold(&cli);
    }
    if cli.scenario == "bulk-leasequery" {
        return bulk_leasequery(&cli);
    }
    if cli.scenario == "leasequery" {
        return leasequery(&cli);
    }
    if cli.scenario == "avalanche" {
        return avalanche(&cli);
    }
    let scenario = match cli.scenario.as_str() {
        "mix" => Flows::mix(&cli.mix).map_err(anyhow::Error::msg)?,
        name => Flows::One(name.parse::<Flow>().map_err(anyhow::Error::msg)?),
    };
    let ias: IaSet = cli.ia.parse().map_err(anyhow::Error::msg)?;
    let valid = |x: f64| x.is_finite() && x >= 0.0;
    if !valid(cli.rate) || !valid(cli.duration) || cli.duration == 0.0 {
        bail!("--rate and --duration must be positive numbers");
    }
    let population = population(&cli)?;
    let settings = Settings {
        scenario: scenario.clone(),
        ias,
        population,
        timeout_ns: cli.timeout_ms.saturating_mul(1_000_000),
        expect_range: cli.expect_range,
        expect_pd_range: cli.expect_pd_range,
    };
    let (mut driver, server) = if cli.queues > 1 {
        open_lanes(&cli, settings)?
    } else {
        let (transport, server) = open_transport(&cli, &settings.population)?;
        (
            Driver::One {
                generator: Box::new(Generator::new(settings)),
                transport,
                clock: SystemClock::default(),
            },
            server,
        )
    };
    let info = RunInfo {
        scenario: scenario.describe(),
        clients: cli.clients,
        relays: cli.relays,
        timeout_ms: cli.timeout_ms,
        server,
        transport: cli.transport.clone(),
    };
    let quiet = cli.quiet;
    let mut progress = |s: &Sample| {
        if !quiet {
            eprintln!("{}", s.progress_line());
        }
    };
    let duration = Duration::from_secs_f64(cli.duration);
    let (summary, points) = if cli.ramp {
        let start = cli.start.unwrap_or(cli.rate).max(1.0);
        let ramp = Ramp {
            start,
            step: cli.step.unwrap_or(start).max(1.0),
            max: cli.max,
            loss_percent: cli.loss,
            step_duration: duration,
            refine: cli.refine,
        };
        // What the machine's CPUs did during each step, so a comparison can set aside the
        // steps taken while something else ran.
        // And what the generator and the watched processes took of it, so that it can tell
        // their time on the cores under test from other processes'.
        let mut details = Vec::new();
        let mut watched = vec![std::process::id()];
        watched.extend(&cli.watch_pid);
        let mut cpu_before = cpu::snapshot();
        let mut processes_before = cpu::process_snapshot(&watched);
        let mut step_done = |phase: &xdhcp6_bench::runner::Phase, passed: bool| {
            let cpu_after = cpu::snapshot();
            let processes_after = cpu::process_snapshot(&watched);
            // The watched processes without the generator (the first pid).
            let servers = |snapshot: &[(u32, u64)]| -> Vec<(u32, u64)> {
                snapshot
                    .iter()
                    .copied()
                    .filter(|(pid, _)| *pid != watched[0])
                    .collect()
            };
            details.push(StepDetail {
                rate: phase.rate,
                passed,
                cpu: cpu::shares(&cpu_before, &cpu_after),
                process_ticks: cpu::process_ticks(&processes_before, &processes_after),
                server_ticks: cpu::process_ticks(
                    &servers(&processes_before),
                    &servers(&processes_after),
                ),
                flows_known: phase.stats.flows_known,
                flows_started: phase.stats.flows_started,
            });
            cpu_before = cpu_after;
            processes_before = processes_after;
            if !quiet {
                let s = phase.summary();
                eprintln!(
                    "step {:.0}/s: completed {:.0}/s, loss {:.3} %, failed {}, p99 {:.1} us: {}",
                    phase.rate,
                    s.throughput,
                    s.loss_percent,
                    phase.stats.flows_failed,
                    s.p99_us,
                    if passed { "pass" } else { "over threshold" }
                );
            }
        };
        let result = driver.ramp(&ramp, &mut progress, &mut step_done)?;
        // The generator counted every step, from a fresh start.
        let total = driver.stats();
        let last_rate = result.steps.last().map_or(start, |p| p.rate);
        let seconds = duration.as_secs_f64() * result.steps.len() as f64;
        let samples: Vec<Sample> = result
            .steps
            .iter()
            .flat_map(|p| p.samples.clone())
            .collect();
        let points: Vec<PlotPoint> = result
            .steps
            .iter()
            .map(|p| PlotPoint::from(&p.summary()))
            .collect();
        let summary = Summary::new(
            info,
            last_rate,
            seconds,
            &total,
            driver.send_drops(),
            samples,
        )
        .with_ramp(&result, cli.loss)
        .with_step_details(details)
        .with_bad_frames(driver.bad_frames());
        (summary, points)
    } else {
        let phase = driver.phase(cli.rate, duration, &mut progress)?;
        let points: Vec<PlotPoint> = phase.samples.iter().map(PlotPoint::from).collect();
        let summary = Summary::new(
            info,
            cli.rate,
            phase.duration_s,
            &phase.stats,
            driver.send_drops(),
            phase.samples.clone(),
        )
        .with_bad_frames(driver.bad_frames());
        (summary, points)
    };
    // Said even with -q: the loss of the run then includes answers the server did send.
    let receive_drops = driver.receive_drops();
    if receive_drops > 0 {
        eprintln!(
            "the generator's own sockets dropped {receive_drops} received frames (receive ring \
             full or no free frame): answers the server sent, counted as lost"
        );
    }
    if !quiet || receive_drops > 0 {
        for line in driver.diagnostics() {
            eprintln!("{line}");
        }
    }
    let title = format!(
        "xdhcp6-bench {} ({} clients)",
        summary.run.scenario, cli.clients
    );
    report(&cli, &summary.table(), &summary, || svg(&title, &points))?;
    Ok(summary.total_failures)
}

/// The flow scenarios' generator and transport: one of each, or one of each per queue.
enum Driver {
    One {
        generator: Box<Generator>,
        transport: Box<dyn Transport>,
        clock: SystemClock,
    },
    Lanes(Vec<Lane>),
}

impl Driver {
    fn ramp(
        &mut self,
        ramp: &Ramp,
        progress: &mut dyn FnMut(&Sample),
        step_done: &mut dyn FnMut(&Phase, bool),
    ) -> std::io::Result<RampResult> {
        match self {
            Driver::One {
                generator,
                transport,
                clock,
            } => run_ramp(
                generator,
                transport.as_mut(),
                clock,
                ramp,
                progress,
                step_done,
            ),
            Driver::Lanes(lanes) => multiqueue::run_ramp(lanes, ramp, progress, step_done),
        }
    }

    fn phase(
        &mut self,
        rate: f64,
        duration: Duration,
        progress: &mut dyn FnMut(&Sample),
    ) -> std::io::Result<Phase> {
        match self {
            Driver::One {
                generator,
                transport,
                clock,
            } => run_phase(
                generator,
                transport.as_mut(),
                clock,
                rate,
                duration,
                progress,
            ),
            Driver::Lanes(lanes) => multiqueue::run_phase(lanes, rate, duration, progress),
        }
    }

    fn stats(&self) -> Stats {
        match self {
            Driver::One { generator, .. } => generator.stats().clone(),
            Driver::Lanes(lanes) => multiqueue::total_stats(lanes),
        }
    }

    fn send_drops(&self) -> u64 {
        match self {
            Driver::One { transport, .. } => transport.send_drops(),
            Driver::Lanes(lanes) => lanes.iter().map(|l| l.transport.send_drops()).sum(),
        }
    }

    fn bad_frames(&self) -> u64 {
        match self {
            Driver::One { transport, .. } => transport.bad_frames(),
            Driver::Lanes(lanes) => lanes.iter().map(|l| l.transport.bad_frames()).sum(),
        }
    }

    fn receive_drops(&self) -> u64 {
        match self {
            Driver::One { transport, .. } => transport.receive_drops(),
            Driver::Lanes(lanes) => lanes.iter().map(|l| l.transport.receive_drops()).sum(),
        }
    }

    fn diagnostics(&self) -> Vec<String> {
        match self {
            Driver::One { transport, .. } => transport.diagnostics().into_iter().collect(),
            Driver::Lanes(lanes) => lanes
                .iter()
                .filter_map(|l| {
                    let sent = l.generator.stats().total_sent();
                    let received = l.generator.stats().received;
                    l.transport.diagnostics().map(|line| {
                        format!("{line}; sent {sent} received {received} by its thread")
                    })
                })
                .collect(),
        }
    }
}

/// `--queues N`: N AF_XDP sockets on one attached program, a generator per queue over the
/// clients RSS puts there.
fn open_lanes(cli: &Cli, settings: Settings) -> anyhow::Result<(Driver, String)> {
    if cli.transport != "afxdp" {
        bail!("--queues {} needs --transport afxdp", cli.queues);
    }
    let Some(interface) = cli.interface.clone() else {
        bail!("--transport afxdp needs --interface");
    };
    let object = locate_object(cli.ebpf_object.as_deref())
        .context("--transport afxdp needs the eBPF object: build it with `cargo xtask build`")?;
    let options = afxdp_options(cli, interface.clone());
    let population = settings.population.clone();
    let transports = AfXdpTransport::open_queues(&object, &options, population.clone(), cli.queues)
        .with_context(|| {
            format!(
                "opening AF_XDP on {interface} queues {}..={}",
                cli.queue,
                cli.queue.saturating_add(cli.queues - 1)
            )
        })?;
    let parts = multiqueue::partition(&population, cli.relay_source, cli.queues);
    if !cli.quiet {
        let (xdp, socket) = transports[0].modes();
        let shares: Vec<String> = parts
            .iter()
            .zip(&transports)
            .map(|(clients, t)| format!("queue {}: {} clients", t.queue_id(), clients.len()))
            .collect();
        eprintln!(
            "AF_XDP on {interface}, {} queues: XDP {xdp}, socket {socket}; {}",
            cli.queues,
            shares.join(", ")
        );
    }
    let server = format!("[{}]:547 via {interface}", transports[0].destination());
    let lanes = transports
        .into_iter()
        .zip(parts)
        .map(|(transport, clients)| {
            Lane::new(
                Generator::new(settings.clone()),
                transport,
                clients,
                population.len(),
            )
        })
        .collect();
    Ok((Driver::Lanes(lanes), server))
}

fn afxdp_options(cli: &Cli, interface: String) -> AfXdpOptions {
    AfXdpOptions {
        interface,
        queue: cli.queue,
        mode: cli.xdp_mode,
        server: cli.server,
        server_mac: cli.server_mac,
        relayed: cli.relays > 0,
        relay_source: cli.relay_source,
    }
}

/// The emulated clients: `--clients`, behind `--relays` relays whose link-addresses come
/// from `--relay-link` (default `--expect-range`).
fn population(cli: &Cli) -> anyhow::Result<Population> {
    let relay_link = match (cli.relay_link, cli.expect_range) {
        (Some(p), _) | (None, Some(p)) => p,
        (None, None) if cli.relays > 0 => bail!("--relays needs --relay-link or --expect-range"),
        (None, None) => Prefix::new(Ipv6Addr::UNSPECIFIED, 0).context("the empty prefix")?,
    };
    Ok(Population::new(
        cli.clients,
        cli.relays,
        cli.seed,
        relay_link,
    ))
}

/// Opens `--transport` for `population`; returns it and where it sends, for the report.
fn open_transport(
    cli: &Cli,
    population: &Population,
) -> anyhow::Result<(Box<dyn Transport>, String)> {
    match cli.transport.as_str() {
        "udp" => {
            let transport =
                UdpTransport::open(cli.interface.as_deref(), cli.server, cli.relays > 0).context(
                    "opening the UDP socket (port 546, or 547 with --relays; root may be needed)",
                )?;
            let server = transport.server().to_string();
            Ok((Box::new(transport), server))
        }
        "afxdp" => {
            let Some(interface) = cli.interface.clone() else {
                bail!("--transport afxdp needs --interface");
            };
            let object = locate_object(cli.ebpf_object.as_deref()).context(
                "--transport afxdp needs the eBPF object: build it with `cargo xtask build`",
            )?;
            let options = afxdp_options(cli, interface.clone());
            let transport = AfXdpTransport::open(&object, &options, population.clone())
                .with_context(|| format!("opening AF_XDP on {interface} queue {}", cli.queue))?;
            let (xdp, socket) = transport.modes();
            if !cli.quiet {
                eprintln!(
                    "AF_XDP on {interface} queue {}: XDP {xdp}, socket {socket}",
                    cli.queue
                );
            }
            let server = format!("[{}]:547 via {interface}", transport.destination());
            Ok((Box::new(transport), server))
        }
        other => bail!("--transport {other:?}: expected udp or afxdp"),
    }
}

/// `--scenario hold`: a population that keeps its leases; SIGUSR1 marks the timeline (a
/// server stopped), SIGINT/SIGTERM end the run early with the report.
fn hold(cli: &Cli) -> anyhow::Result<u64> {
    let positive = |x: f64| x.is_finite() && x >= 0.0;
    if !positive(cli.ramp_up) || !positive(cli.duration) || cli.duration == 0.0 {
        bail!("--ramp-up and --duration must be positive numbers");
    }
    let mut settings = HoldSettings::new(population(cli)?);
    settings.ias = cli.ia.parse().map_err(anyhow::Error::msg)?;
    settings.ramp_up_ms = (cli.ramp_up * 1000.0).min(f64::from(u32::MAX / 4)) as u32;
    settings.max_rt_ms = cli.max_rt_ms;
    settings.expect_ranges = cli.expect_range.into_iter().collect();
    settings.expect_pd_ranges = cli.expect_pd_range.into_iter().collect();
    settings.seed = u64::from(cli.seed);
    let (mut transport, _) = open_transport(cli, &settings.population)?;
    xdhcp6_bench::signal::install().context("installing the signal handlers")?;
    let mut generator = Hold::new(settings);
    let mut clock = SystemClock::default();
    let quiet = cli.quiet;
    let mut progress = |s: &HoldSample, servers: &[ServerInfo]| {
        if !quiet {
            eprintln!("{}", s.progress_line(servers));
        }
    };
    let mut control = |_: u64| {
        if xdhcp6_bench::signal::stop_requested() {
            Control::Stop
        } else if xdhcp6_bench::signal::take_mark() {
            Control::Mark
        } else {
            Control::Continue
        }
    };
    let summary = run_hold(
        &mut generator,
        transport.as_mut(),
        &mut clock,
        Duration::from_secs_f64(cli.duration),
        &mut progress,
        &mut control,
    )?;
    if !quiet && let Some(line) = transport.diagnostics() {
        eprintln!("{line}");
    }
    let title = format!("xdhcp6-bench hold ({} clients)", cli.clients);
    report(cli, &summary.table(), &summary, || summary.svg(&title))?;
    Ok(summary.total_failures)
}

/// `--scenario avalanche`: every client starts at once and binds with the RFC 9915 timers;
/// the run ends when all are bound or after --duration seconds; SIGINT/SIGTERM end it early
/// with the report.
fn avalanche(cli: &Cli) -> anyhow::Result<u64> {
    if !(cli.duration.is_finite() && cli.duration > 0.0) {
        bail!("--duration must be a positive number of seconds");
    }
    if !(cli.max_send_rate.is_finite() && cli.max_send_rate >= 0.0) {
        bail!("--max-send-rate must be a number of messages per second, 0 for no cap");
    }
    let mut settings = AvalancheSettings::new(population(cli)?);
    settings.expect_range = cli.expect_range;
    settings.max_rate = cli.max_send_rate;
    settings.seed = u64::from(cli.seed);
    settings.limit_ns = (cli.duration * 1e9) as u64;
    let (mut transport, _) = open_transport(cli, &settings.population)?;
    xdhcp6_bench::signal::install().context("installing the signal handlers")?;
    let mut scenario = Avalanche::new(settings);
    let mut clock = SystemClock::default();
    let quiet = cli.quiet;
    let mut progress = |s: &AvalancheSample| {
        if !quiet {
            let c = &s.counts;
            eprintln!(
                "[{:>5.0}s] bound {} | sent/s solicit {} ({} again) request {} ({} again) | \
                 received/s advertise {} reply {}",
                s.t_s,
                s.bound_total,
                c.solicit,
                c.solicit_retransmissions,
                c.request,
                c.request_retransmissions,
                c.advertise,
                c.reply
            );
        }
    };
    let mut control = |_: u64| {
        if xdhcp6_bench::signal::stop_requested() {
            Control::Stop
        } else {
            Control::Continue
        }
    };
    let summary = run_avalanche(
        &mut scenario,
        transport.as_mut(),
        &mut clock,
        &mut progress,
        &mut control,
    )?;
    if !quiet && let Some(line) = transport.diagnostics() {
        eprintln!("{line}");
    }
    let title = format!("xdhcp6-bench avalanche ({} clients)", cli.clients);
    report(cli, &summary.table(), &summary, || summary.svg(&title))?;
    Ok(summary.total_failures)
}

/// `--scenario bulk-leasequery`: every client bound once through `--relays` (Solicit,
/// Request), then Bulk Leasequery over TCP to `--server` port `--bulk-port`.
fn bulk_leasequery(cli: &Cli) -> anyhow::Result<u64> {
    let Some(server) = cli.server else {
        bail!("--scenario bulk-leasequery needs --server (the TCP queries go there)");
    };
    if cli.relays == 0 {
        bail!("--scenario bulk-leasequery needs --relays: queries select by relay data");
    }
    if !(cli.rate.is_finite() && cli.rate > 0.0) {
        bail!("--rate must be a positive number");
    }
    let settings = Settings {
        scenario: Flows::One(Flow::Sarr),
        ias: cli.ia.parse().map_err(anyhow::Error::msg)?,
        population: population(cli)?,
        timeout_ns: cli.timeout_ms.saturating_mul(1_000_000),
        expect_range: cli.expect_range,
        expect_pd_range: cli.expect_pd_range,
    };
    let population = settings.population.clone();
    let (mut transport, _) = open_transport(cli, &population)?;
    let mut generator = Generator::new(settings);
    let mut clock = SystemClock::default();
    // One flow per client: the whole population binds once.
    let duration = Duration::from_secs_f64(f64::from(cli.clients) / cli.rate);
    let quiet = cli.quiet;
    let phase = run_phase(
        &mut generator,
        transport.as_mut(),
        &mut clock,
        cli.rate,
        duration,
        &mut |s: &Sample| {
            if !quiet {
                eprintln!("{}", s.progress_line());
            }
        },
    )?;
    if !quiet {
        eprintln!(
            "bound {} of {} clients in {:.1} s",
            generator.bound_clients(),
            cli.clients,
            phase.duration_s
        );
    }
    let address = std::net::SocketAddr::new(server.into(), cli.bulk_port);
    let summary = xdhcp6_bench::bulk_leasequery::run(
        address,
        &population,
        &|client| generator.binding(client),
        cli.bulk_remote_ids,
        Duration::from_millis(cli.timeout_ms.max(1000) * 10),
    )
    .with_context(|| format!("Bulk Leasequery to {address}"))?;
    report(cli, &summary.table(), &summary, String::new)?;
    Ok(summary.checked.failures)
}

/// `--scenario leasequery`: every client binds once with SARR at `--rate`, then a requestor
/// (DUID-LL from `--seed`) asks about the bound clients at `--rate` for `--duration`.
fn leasequery(cli: &Cli) -> anyhow::Result<u64> {
    let by: lq::QueryBy = cli.query_by.parse().map_err(anyhow::Error::msg)?;
    let valid = |x: f64| x.is_finite() && x > 0.0;
    if !valid(cli.rate) || !valid(cli.duration) {
        bail!("--rate and --duration must be positive numbers");
    }
    let population = population(cli)?;
    let timeout_ns = cli.timeout_ms.saturating_mul(1_000_000);
    let settings = Settings {
        scenario: Flows::One(Flow::Sarr),
        ias: cli.ia.parse().map_err(anyhow::Error::msg)?,
        population: population.clone(),
        timeout_ns,
        expect_range: cli.expect_range,
        expect_pd_range: cli.expect_pd_range,
    };
    let (mut transport, server) = open_transport(cli, &population)?;
    let transport = transport.as_mut();
    let mut clock = SystemClock::default();
    let mut generator = Generator::new(settings);
    let bind_time = Duration::from_secs_f64(f64::from(cli.clients) / cli.rate);
    let bind = run_phase(
        &mut generator,
        transport,
        &mut clock,
        cli.rate,
        bind_time,
        &mut |_| {},
    )?;
    let bound = lq::bound_by(&generator, &population);
    if !cli.quiet {
        eprintln!(
            "bound {} of {} clients in {:.1} s ({} flows, {} lost, {} skipped, {} failures)",
            bound.len(),
            cli.clients,
            bind_time.as_secs_f64(),
            bind.stats.flows_started,
            bind.stats.timeouts,
            bind.stats.skipped,
            bind.stats.total_failures()
        );
    }
    let bound_clients = bound.len() as u64;
    let mut requestor = Leasequery::new(LeasequerySettings {
        population,
        bound,
        requestor: vec![0, 3, 0, 1, 0x02, 0x4c, 0x51, 0, 0, cli.seed],
        timeout_ns,
        by,
    });
    let quiet = cli.quiet;
    let mut progress = |s: &Sample| {
        if !quiet {
            eprintln!("{}", s.progress_line());
        }
    };
    let duration = Duration::from_secs_f64(cli.duration);
    let phase = lq::run_queries(
        &mut requestor,
        transport,
        &mut clock,
        cli.rate,
        duration,
        &mut progress,
    )?;
    let info = RunInfo {
        scenario: format!("leasequery (by {})", cli.query_by),
        clients: cli.clients,
        relays: cli.relays,
        timeout_ms: cli.timeout_ms,
        server,
        transport: cli.transport.clone(),
    };
    let (queries_by_address, queries_by_client_id) = requestor.sent_by();
    let summary = LeasequerySummary {
        summary: Summary::new(
            info,
            cli.rate,
            phase.duration_s,
            &phase.stats,
            transport.send_drops(),
            phase.samples.clone(),
        )
        .with_bad_frames(transport.bad_frames()),
        bound_clients,
        queries_by_address,
        queries_by_client_id,
        mismatches: requestor.mismatches(),
    };
    let points: Vec<PlotPoint> = phase.samples.iter().map(PlotPoint::from).collect();
    let title = format!("xdhcp6-bench leasequery ({} clients)", cli.clients);
    report(cli, &summary.table(), &summary, || svg(&title, &points))?;
    Ok(summary.summary.total_failures + bind.stats.total_failures())
}

/// Prints the table (on stderr when the JSON goes to stdout) and writes `--json` and `--plot`.
fn report(
    cli: &Cli,
    table: &str,
    summary: &impl serde::Serialize,
    plot: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    let json_to_stdout = cli.json.as_ref().is_some_and(|p| p.as_os_str() == "-");
    if json_to_stdout {
        eprint!("{table}");
    } else {
        print!("{table}");
    }
    if let Some(path) = &cli.json {
        let text = serde_json::to_string_pretty(summary).context("encoding the JSON summary")?;
        if json_to_stdout {
            println!("{text}");
        } else {
            fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        }
    }
    if let Some(path) = &cli.plot {
        fs::write(path, plot()).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
