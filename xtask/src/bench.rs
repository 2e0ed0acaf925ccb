//! `cargo xtask bench`: one run that measures the link's ceiling, xdhcp6d on both datapaths
//! and Kea with the same generator, and reports them side by side.
//!
//! Topology: a server namespace and a client namespace joined by a veth pair. The server side
//! (pinned to one core) is, in turn, `xdhcp6-reflect` (the cheapest possible "server": an
//! AF_XDP socket that bounces every DHCPv6 frame back), `xdhcp6d --datapath xdp`,
//! `xdhcp6d --datapath udp` and `kea-dhcp6` (memfile). The generator (pinned to the other
//! core) ramps the rate up, bisects around the first failing step and writes its JSON
//! summary; this task collects them into one table, one JSON file and one plot.

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
    /// Emulated clients (distinct DUIDs).
    #[arg(long, default_value_t = 2_000_000)]
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
    build::all()?;
    let release = build::target_dir().join("release");
    let work = build::target_dir().join("xtask-bench");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let lab = Lab::new(&release, &work, options)?;

    let mut results = Vec::new();
    for target in TARGETS {
        let chosen = if options.only.is_empty() {
            !target.name.ends_with("-ddns") || options.ddns
        } else {
            options.only.iter().any(|n| n == target.name)
        };
        if !chosen {
            continue;
        }
        println!("\n== {}: {}", target.name, target.what);
        let server = lab.start_server(target)?;
        lab.wait_answering(target)?;
        let mut measured = lab.ramp(target)?;
        if let (Some(every), Some(best), true) = (
            options.reload_every,
            measured.best_rate,
            target.name.starts_with("xdhcp6d"),
        ) {
            measured.reloads = Some(lab.reload_comparison(
                target,
                &server,
                best * options.reload_percent / 100.0,
                every,
            )?);
        }
        drop(server);
        println!(
            "  {}: best {} flows/s",
            target.name,
            measured
                .best_rate
                .map_or("none".to_owned(), |r| format!("{r:.0}"))
        );
        results.push(measured);
    }

    let table = table(&results, options);
    println!("\n{table}");
    let summary = summary_json(&results, options);
    let json_path = work.join("bench.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&summary)? + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    let plot_path = work.join("bench.svg");
    // The generator's own binary draws the plot: this task stays free of its library.
    let mut plot = Command::new(release.join("xdhcp6-compare"));
    plot.arg("--title")
        .arg(format!(
            "sarr (4-way) flows/s (echo for the ceiling), {} transport, {} relays",
            options.transport, options.relays
        ))
        .arg("--output")
        .arg(&plot_path)
        .args(
            results
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

/// The namespaces and the binaries; dropping it removes the namespaces.
struct Lab<'a> {
    server: Netns,
    client: Netns,
    release: PathBuf,
    work: PathBuf,
    options: &'a Options,
    server_mac: String,
}

impl<'a> Lab<'a> {
    fn new(release: &Path, work: &Path, options: &'a Options) -> Result<Self> {
        println!("== namespaces xdhcp6-bench-srv and xdhcp6-bench-cli, joined by a veth pair");
        let server = Netns::create("xdhcp6-bench-srv")?;
        let client = Netns::create("xdhcp6-bench-cli")?;
        // veth keeps its offloads: the server's AF_XDP datapath takes the unfinished
        // checksums of kernel sockets (CHECKSUM_PARTIAL), and so does the generator.
        netns::veth_pair(&server, SERVER_IF, &client, CLIENT_IF)?;
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
        })
    }

    /// Starts the target's server pinned to the server core.
    fn start_server(&self, target: Target) -> Result<Process> {
        let core = self.options.server_core.to_string();
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
                ]);
            }
            "xdhcp6d-xdp" | "xdhcp6d-udp" | "xdhcp6d-xdp-ddns" | "xdhcp6d-udp-ddns" => {
                let config = self.work.join(format!("{}.toml", target.name));
                let mut text = fixtures::render(fixtures::BENCH, &[("SERVER_IF", SERVER_IF)])?;
                if target.name.ends_with("-ddns") {
                    text.push_str(DDNS_STOPPED);
                }
                println!("  limits: {}", limits_of(&text));
                std::fs::write(&config, text)?;
                let journal = self.work.join(format!("{}.journal", target.name));
                let _ = std::fs::remove_file(&journal);
                let datapath = if target.name.starts_with("xdhcp6d-xdp") {
                    "xdp"
                } else {
                    "udp"
                };
                command
                    .arg(self.release.join("xdhcp6d"))
                    .arg("run")
                    .arg("--config")
                    .arg(&config)
                    .args(["--datapath", datapath, "--xdp-mode", "native"])
                    .args(["--metrics", "off", "--cores", &core])
                    .args(["--durability", &self.options.durability])
                    .arg("--journal")
                    .arg(&journal)
                    .arg("--control")
                    .arg(self.work.join(format!("{}.control.sock", target.name)));
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
        process::start(command, &log, target.name)
    }

    /// The generator's command line, without the rate settings.
    fn generator(&self, target: Target, clients: u32, seed: u8) -> Command {
        let mut command = self.client.command("taskset");
        command
            .current_dir(&self.work)
            .args(["-c", &self.options.generator_core.to_string()])
            .arg(self.release.join("xdhcp6-bench"))
            .args(["--interface", CLIENT_IF, "--server", SERVER_ADDRESS]);
        if self.options.transport == "afxdp" {
            command
                .args(["--transport", "afxdp", "--xdp-mode", "native"])
                .args(["--server-mac", &self.server_mac])
                // The relays send from the client interface's own address, which its kernel
                // answers neighbour discovery for: servers that reply through the kernel
                // (xdhcp6d over UDP, Kea) reach them like a real relay agent.
                .args(["--relay-source", CLIENT_ADDRESS]);
        }
        command
            .args(["--scenario", target.scenario])
            .args(["--clients", &clients.to_string()])
            .args(["--relays", &self.options.relays.to_string()])
            .args(["--expect-range", POOL])
            .args(["--seed", &seed.to_string()])
            .arg("-q");
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

    /// Ramps the generator up against the target and reads back its summary.
    fn ramp(&self, target: Target) -> Result<Measured> {
        let json = self.work.join(format!("{}.json", target.name));
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
            .arg(self.work.join(format!("{}.svg", target.name)))
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
        Ok(Measured {
            target,
            best_rate,
            throughput: best.map_or(0.0, |s| num(s, "throughput")),
            p50_us: best.map_or(0.0, |s| num(s, "p50_us")),
            p99_us: best.map_or(0.0, |s| num(s, "p99_us")),
            json,
            reloads: None,
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

/// The side-by-side table (Markdown, so it can go into the README as printed).
fn table(results: &[Measured], options: &Options) -> String {
    let rate_of = |name: &str| {
        results
            .iter()
            .find(|m| m.target.name == name)
            .and_then(|m| m.best_rate)
    };
    let kea = rate_of("kea");
    let ceiling = rate_of("ceiling");
    let ratio = |rate: Option<f64>, base: Option<f64>| match (rate, base) {
        (Some(r), Some(b)) if b > 0.0 => format!("{:.1}x", r / b),
        _ => "-".to_owned(),
    };
    let percent = |rate: Option<f64>, base: Option<f64>| match (rate, base) {
        (Some(r), Some(b)) if b > 0.0 => format!("{:.0} %", 100.0 * r / b),
        _ => "-".to_owned(),
    };
    let mut t = format!(
        "sarr flows/s (Solicit, Advertise, Request, Reply) with loss <= {} %, {} emulated clients \
         behind {} relays, generator over {} on core {}, server on core {}, {} s per step, \
         xdhcp6d journal durability {}\n\n",
        options.loss,
        options.clients,
        options.relays,
        options.transport,
        options.generator_core,
        options.server_core,
        options.step_seconds,
        options.durability
    );
    t.push_str("| target | what | highest rate | completed at that rate | p50 | p99 | vs Kea | of ceiling |\n");
    t.push_str("|---|---|---|---|---|---|---|---|\n");
    for m in results {
        let rate = m
            .best_rate
            .map_or("none passed".to_owned(), |r| format!("{r:.0}/s"));
        let is_server = m.target.name != "ceiling";
        t.push_str(&format!(
            "| {} | {} | {} | {:.0}/s | {:.0} us | {:.0} us | {} | {} |\n",
            m.target.name,
            m.target.what,
            rate,
            m.throughput,
            m.p50_us,
            m.p99_us,
            if is_server && m.target.name != "kea" {
                ratio(m.best_rate, kea)
            } else {
                "-".to_owned()
            },
            if is_server {
                percent(m.best_rate, ceiling)
            } else {
                "-".to_owned()
            },
        ));
    }
    for datapath in ["xdp", "udp"] {
        let plain = rate_of(&format!("xdhcp6d-{datapath}"));
        let with = rate_of(&format!("xdhcp6d-{datapath}-ddns"));
        if with.is_some() {
            t.push_str(&format!(
                "\nxdhcp6d-{datapath} with DNS updates on and its DNS server stopped: {} of \
                 the rate without DNS updates\n",
                percent(with, plain)
            ));
        }
    }
    let compared: Vec<&Measured> = results.iter().filter(|m| m.reloads.is_some()).collect();
    if !compared.is_empty() {
        t.push_str(
            "\nflows lost at a fixed rate, without and with configuration reloads \
             (SIGHUP)\n\n| target | rate | run | reloads | flows started | completed | lost \
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

fn summary_json(results: &[Measured], options: &Options) -> Value {
    json!({
        "loss_threshold_percent": options.loss,
        "clients": options.clients,
        "relays": options.relays,
        "transport": options.transport,
        "step_seconds": options.step_seconds,
        "durability": options.durability,
        "generator_core": options.generator_core,
        "server_core": options.server_core,
        "targets": results.iter().map(|m| json!({
            "name": m.target.name,
            "what": m.target.what,
            "scenario": m.target.scenario,
            "best_rate": m.best_rate,
            "throughput_at_best": m.throughput,
            "p50_us_at_best": m.p50_us,
            "p99_us_at_best": m.p99_us,
            "summary": m.json.display().to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_config_states_its_limits() {
        let text = fixtures::render(fixtures::BENCH, &[("SERVER_IF", "veth0")]).expect("fixture");
        let limits = limits_of(&text);
        for key in [
            "relay-binding-rate = 0",
            "mac-max-bindings = 0",
            "link.binding-rate = 0",
        ] {
            assert!(limits.contains(key), "{limits}");
        }
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
