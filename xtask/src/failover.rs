//! `cargo xtask failover`: RFC 6853 split-prefix redundancy at scale, one server killed.
//!
//! For each choice of timers: two `xdhcp6d` (configured from `examples/split-a.toml` and
//! `examples/split-b.toml`, with only the interface, the timers and `expected-leases`
//! changed), each in its own namespace, and the load generator in a third, all joined by a
//! bridge in a fourth. The generator runs the `hold` scenario (every client keeps its lease
//! like a real client); once every client is bound and has renewed, the server with
//! Preference 255 gets SIGKILL, and the run goes on until every client is served by the
//! survivor (plus a margin). A table compares the choices; JSON and SVG plots of each run are
//! left in `target/xtask-failover/`. Namespaces and processes are removed on every exit.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use xdhcp6_lab::netns::{self, Netns};
use xdhcp6_lab::process::Process;

use crate::build;
use crate::cmd::{self, indent, step};
use crate::process;

const METRICS: &str = "[::1]:9547";
const BRIDGE: &str = "fo-br0";
const GENERATOR_IF: &str = "fo-g0";
/// The generator runs on this core, the servers on the other.
const GENERATOR_CORE: &str = "0";
const SERVER_CORE: &str = "1";

/// Options of `cargo xtask failover`.
#[derive(clap::Args)]
pub struct Options {
    /// Emulated clients.
    #[arg(long, default_value_t = 100_000)]
    clients: u32,
    /// A choice of timers, NAME=T1/T2/PREFERRED/VALID in seconds; repeat to compare several
    /// (default: fast=10/16/20/30, tight=10/16/16/16, standard=30/48/60/120).
    #[arg(long = "timers", value_name = "NAME=T1/T2/PREF/VALID", value_parser = parse_timers)]
    timers: Vec<Timers>,
    /// Seconds over which the clients start.
    #[arg(long, default_value_t = 20)]
    ramp_up: u32,
    /// Seconds to keep running once every client is served again.
    #[arg(long, default_value_t = 10)]
    margin: u32,
    /// Use the release binaries already built instead of building them.
    #[arg(long)]
    no_build: bool,
}

/// One choice of T1, T2 and lifetimes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timers {
    name: String,
    t1: u32,
    t2: u32,
    preferred: u32,
    valid: u32,
}

impl Timers {
    fn new(name: &str, t1: u32, t2: u32, preferred: u32, valid: u32) -> Self {
        Self {
            name: name.to_owned(),
            t1,
            t2,
            preferred,
            valid,
        }
    }

    fn describe(&self) -> String {
        format!("{}/{}/{}/{}", self.t1, self.t2, self.preferred, self.valid)
    }
}

fn parse_timers(text: &str) -> Result<Timers, String> {
    let (name, values) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected NAME=T1/T2/PREFERRED/VALID"))?;
    let numbers: Vec<u32> = values
        .split('/')
        .map(|v| v.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{text:?}: {e}"))?;
    let [t1, t2, preferred, valid] = numbers[..] else {
        return Err(format!("{text:?}: expected four numbers"));
    };
    if !(0 < t1 && t1 <= t2 && t2 <= preferred && preferred <= valid) {
        return Err(format!("{text:?}: need 0 < T1 <= T2 <= preferred <= valid"));
    }
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!("{text:?}: the name must be letters, digits or '-'"));
    }
    Ok(Timers::new(name, t1, t2, preferred, valid))
}

pub fn run(options: &Options) -> Result<()> {
    cmd::require_root("cargo xtask failover")?;
    let choices = if options.timers.is_empty() {
        vec![
            Timers::new("fast", 10, 16, 20, 30),
            Timers::new("tight", 10, 16, 16, 16),
            Timers::new("standard", 30, 48, 60, 120),
        ]
    } else {
        options.timers.clone()
    };
    if !options.no_build {
        step("building the release binaries (UDP datapath: no eBPF object needed)");
        cmd::run(cmd::cargo().args(["build", "--release", "-p", "xdhcp6d", "-p", "xdhcp6-bench"]))?;
    }
    let release = build::target_dir().join("release");
    let binaries = Binaries {
        daemon: release.join("xdhcp6d"),
        bench: release.join("xdhcp6-bench"),
    };
    for path in [&binaries.daemon, &binaries.bench] {
        if !path.exists() {
            bail!("{} is missing (build without --no-build)", path.display());
        }
    }
    let work = build::target_dir().join("xtask-failover");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let root = cmd::workspace_root();
    let examples = [
        read(&root.join("examples/split-a.toml"))?,
        read(&root.join("examples/split-b.toml"))?,
    ];
    let mut results = Vec::new();
    for timers in &choices {
        let result = run_choice(options, timers, &examples, &binaries, &work)
            .with_context(|| format!("timers {} ({})", timers.name, timers.describe()))?;
        results.push(result);
    }
    let table = comparison(options.clients, &results);
    step("failover: one server of two (split prefixes) killed with SIGKILL");
    print!("{table}");
    let path = work.join("comparison.txt");
    fs::write(&path, &table).with_context(|| format!("writing {}", path.display()))?;
    println!("\n  table:   {}", path.display());
    for r in &results {
        println!(
            "  {:<8} {}  {}",
            r.timers.name,
            r.json.display(),
            r.svg.display()
        );
    }
    Ok(())
}

struct Binaries {
    daemon: PathBuf,
    bench: PathBuf,
}

/// What one choice of timers gave.
struct Outcome {
    timers: Timers,
    /// The generator's JSON summary.
    summary: Value,
    json: PathBuf,
    svg: PathBuf,
    /// Whether the kill waited for every client to be bound and renewed.
    kill_on_time: bool,
    /// Whether every client was served again before the deadline.
    recovered: bool,
    /// UDP receive-buffer drops in the survivor's namespace.
    survivor_drops: Option<u64>,
    /// UDP receive-buffer drops in the generator's namespace.
    generator_drops: Option<u64>,
}

fn run_choice(
    options: &Options,
    timers: &Timers,
    examples: &[String; 2],
    binaries: &Binaries,
    work: &Path,
) -> Result<Outcome> {
    step(&format!(
        "timers {}: T1 {} s, T2 {} s, preferred {} s, valid {} s; {} clients",
        timers.name, timers.t1, timers.t2, timers.preferred, timers.valid, options.clients
    ));
    // One bridge joins the two servers and the generator: every multicast reaches both.
    let link = Netns::create("xdhcp6-fo-link")?;
    link.add_bridge(BRIDGE)?;
    let mut servers = Vec::new();
    for (i, example) in examples.iter().enumerate() {
        let letter = ["a", "b"][i];
        let netns = Netns::create(&format!("xdhcp6-fo-{letter}"))?;
        let interface = format!("fo-{letter}0");
        attach(&netns, &interface, &link, &format!("fo-p{letter}"))?;
        let config = configure(example, &interface, timers, options.clients)
            .with_context(|| format!("adapting examples/split-{letter}.toml"))?;
        let path = work.join(format!("{}-{letter}.toml", timers.name));
        fs::write(&path, &config).with_context(|| format!("writing {}", path.display()))?;
        cmd::output(
            Command::new(&binaries.daemon)
                .arg("check-config")
                .arg(&path),
        )?;
        servers.push(Server {
            letter,
            netns,
            interface,
            config: path,
            duid: field(&config, "duid")?.replace(':', ""),
            preference: field(&config, "preference")?
                .parse()
                .context("preference")?,
            pool: pool_prefix(&config)?,
            process: None,
        });
    }
    let generator_ns = Netns::create("xdhcp6-fo-gen")?;
    attach(&generator_ns, GENERATOR_IF, &link, "fo-pg")?;
    for server in &servers {
        server.netns.wait_for_addresses(&server.interface)?;
    }
    generator_ns.wait_for_addresses(GENERATOR_IF)?;

    for server in &mut servers {
        let log = work.join(format!("{}-{}.log", timers.name, server.letter));
        let mut command = server.netns.command("taskset");
        command
            .args(["-c", SERVER_CORE])
            .arg(&binaries.daemon)
            .arg("run")
            .arg("--config")
            .arg(&server.config)
            .args(["--datapath", "udp", "--metrics", METRICS])
            .arg("--journal")
            .arg(work.join(format!("{}-{}.journal", timers.name, server.letter)))
            // Both servers run at once: each its own control socket.
            .arg("--control")
            .arg(work.join(format!("{}-{}.control.sock", timers.name, server.letter)));
        println!(
            "  xdhcp6d {} (preference {}, DUID {}) on core {SERVER_CORE}: {}",
            server.letter.to_uppercase(),
            server.preference,
            server.duid,
            cmd::display(&command)
        );
        server.process = Some(process::start(command, &log, "xdhcp6d")?.expect("xdhcp6d"));
    }
    for server in &servers {
        let log = work.join(format!("{}-{}.log", timers.name, server.letter));
        process::wait_for_metrics(&server.netns, METRICS, &log)?;
    }
    let victim = servers
        .iter()
        .position(|s| s.preference == 255)
        .context("neither example has preference = 255")?;
    let survivor_duid = servers[1 - victim].duid.clone();
    let victim_duid = servers[victim].duid.clone();

    // The longest a run may need: ramp-up, everyone renewed, the kill, the lifetimes out,
    // a Solicit and the margin; the generator is stopped earlier once all are served again.
    let bind_deadline = options.ramp_up + timers.t1 * 2 + 30;
    let recover_deadline = timers.valid + timers.t2 + 30;
    let duration = bind_deadline + recover_deadline + options.margin + 10;
    let json = work.join(format!("{}.json", timers.name));
    let svg = work.join(format!("{}.svg", timers.name));
    let table = work.join(format!("{}.txt", timers.name));
    let range = servers[0].pool.clone();
    let mut command = generator_ns.command("taskset");
    command
        .args(["-c", GENERATOR_CORE])
        .arg(&binaries.bench)
        .args(["--interface", GENERATOR_IF, "--scenario", "hold"])
        .args(["--clients", &options.clients.to_string()])
        .args(["--ramp-up", &options.ramp_up.to_string()])
        .args(["--duration", &duration.to_string()])
        .args(["--expect-range", &range])
        .arg("--json")
        .arg(&json)
        .arg("--plot")
        .arg(&svg);
    println!(
        "  generator on core {GENERATOR_CORE}: {}",
        cmd::display(&command)
    );
    let table_file =
        fs::File::create(&table).with_context(|| format!("creating {}", table.display()))?;
    command
        .stdout(Stdio::from(table_file))
        .stderr(Stdio::piped());
    let mut generator = Process::spawn(command, "xdhcp6-bench")?.expect("xdhcp6-bench");
    let lines = generator.lines()?;
    let started = Instant::now();

    println!(
        "  phase 1: binding {} clients over {} s, then every client renews once (T1 {} s)",
        options.clients, options.ramp_up, timers.t1
    );
    let all = u64::from(options.clients);
    let phase1 = watch(&lines, &mut generator, bind_deadline, |p| {
        p.in_service == all && p.waiting == 0 && p.out == 0 && p.renewed == all
    })?;
    let kill_on_time = phase1.is_some();
    if !kill_on_time {
        println!("  not every client was bound and renewed within {bind_deadline} s: killing now");
    }
    let victim_server = &mut servers[victim];
    let victim_process = victim_server
        .process
        .as_mut()
        .context("the server to kill is not running")?;
    let kill_at = started.elapsed();
    victim_process.signal("KILL")?;
    generator.signal("USR1")?;
    println!(
        "  {:>5.0}s SIGKILL to xdhcp6d {} (preference 255); the generator marks the time",
        kill_at.as_secs_f64(),
        victim_server.letter.to_uppercase()
    );
    println!(
        "  phase 2: waiting until every client is served by {} again (at most {recover_deadline} s)",
        servers[1 - victim].letter.to_uppercase()
    );
    let phase2 = watch(&lines, &mut generator, recover_deadline, |p| {
        p.in_service == all
            && p.out == 0
            && p.by_server.get(&victim_duid).copied().unwrap_or(0) == 0
            && p.by_server.get(&survivor_duid).copied().unwrap_or(0) == all
    })?;
    let recovered = phase2.is_some();
    if recovered {
        println!(
            "  every client is served again; {} s more for the margin",
            options.margin
        );
        watch(&lines, &mut generator, options.margin, |_| false)?;
    } else {
        println!("  not every client was served again within {recover_deadline} s");
    }
    generator.signal("INT")?;
    process::wait_generator(&mut generator, Duration::from_secs(60))?;
    let survivor_drops = receive_buffer_drops(&servers[1 - victim].netns);
    let generator_drops = receive_buffer_drops(&generator_ns);
    drop(servers);
    let survivor_log = work.join(format!("{}-{}.log", timers.name, ["a", "b"][1 - victim]));
    if let Some(last) = read(&survivor_log)?.lines().last() {
        println!("  survivor: {last}");
    }
    let report = read(&table)?;
    println!("{}", indent(&report));
    let summary: Value = serde_json::from_str(&read(&json)?)
        .with_context(|| format!("parsing {}", json.display()))?;
    Ok(Outcome {
        timers: timers.clone(),
        summary,
        json,
        svg,
        kill_on_time,
        recovered,
        survivor_drops,
        generator_drops,
    })
}

/// Datagrams the kernel dropped in `netns` because a UDP socket's receive buffer was full
/// (`Udp6RcvbufErrors`), where it can be read.
fn receive_buffer_drops(netns: &Netns) -> Option<u64> {
    let text = cmd::output(netns.command("cat").arg("/proc/net/snmp6")).ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(char::is_whitespace)?;
        (key == "Udp6RcvbufErrors").then(|| value.trim().parse().ok())?
    })
}

/// One server: its namespace, configuration and process.
struct Server {
    letter: &'static str,
    netns: Netns,
    interface: String,
    config: PathBuf,
    duid: String,
    preference: u8,
    pool: String,
    process: Option<Process>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // The process goes before the namespace it runs in.
        self.process.take();
    }
}

/// A veth pair from `netns` (`interface`) to the bridge in `link` (`port`).
fn attach(netns: &Netns, interface: &str, link: &Netns, port: &str) -> Result<()> {
    netns::veth_pair(netns, interface, link, port)?;
    link.attach(port, BRIDGE)?;
    Ok(())
}

/// The example with the interface, the timers and the expected leases replaced. Every other
/// line stays as it is, so that the examples are what runs; a line that is not found fails.
fn configure(example: &str, interface: &str, timers: &Timers, clients: u32) -> Result<String> {
    let replacements = [
        // The UDP datapath sees the interface, not VLAN tags: the link is the interface.
        ("interfaces", format!("interfaces = [\"{interface}\"]")),
        ("t1", format!("t1 = {}", timers.t1)),
        ("t2", format!("t2 = {}", timers.t2)),
        (
            "preferred-lifetime",
            format!("preferred-lifetime = {}", timers.preferred),
        ),
        (
            "valid-lifetime",
            format!("valid-lifetime = {}", timers.valid),
        ),
        // The generator's clients all send from one address on the UDP transport: the
        // per-client limits would see one host. The others keep their defaults.
        (
            "expected-leases",
            format!("expected-leases = {clients}\nmac-max-bindings = 0\nmac-binding-rate = 0"),
        ),
    ];
    let mut found: HashMap<&str, usize> = HashMap::new();
    let mut out = String::new();
    for line in example.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        match replacements.iter().find(|(k, _)| *k == key) {
            Some((k, replacement)) => {
                *found.entry(k).or_default() += 1;
                out.push_str(replacement);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    for (key, _) in &replacements {
        match found.get(key) {
            Some(1) => {}
            Some(n) => bail!("`{key} =` appears {n} times; expected once"),
            None => bail!("no `{key} =` line"),
        }
    }
    Ok(out)
}

/// The string value of the first `key = "..."` (or bare) line.
fn field(config: &str, key: &str) -> Result<String> {
    config
        .lines()
        .find_map(|line| {
            let (k, v) = line.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
        })
        .with_context(|| format!("no `{key} =` line"))
}

/// The first address pool's prefix (the whole /64 both servers share).
fn pool_prefix(config: &str) -> Result<String> {
    let rest = config
        .split("[[link.pool]]")
        .nth(1)
        .context("no [[link.pool]]")?;
    field(rest, "prefix")
}

/// The numbers of one progress line of the generator.
#[derive(Debug, Default)]
struct Progress {
    seconds: f64,
    in_service: u64,
    out: u64,
    waiting: u64,
    renewed: u64,
    by_server: HashMap<String, u64>,
}

impl Progress {
    /// Reads `[   35s] in-service N out N waiting N renewed N | DUID=N ... | ...`.
    fn parse(line: &str) -> Option<Self> {
        let rest = line.strip_prefix('[')?;
        let (seconds, rest) = rest.split_once("s]")?;
        let mut p = Progress {
            seconds: seconds.trim().parse().ok()?,
            ..Progress::default()
        };
        let mut sections = rest.split('|');
        let words: Vec<&str> = sections.next()?.split_whitespace().collect();
        for pair in words.chunks(2) {
            let [key, value] = pair else { return None };
            let value: u64 = value.parse().ok()?;
            match *key {
                "in-service" => p.in_service = value,
                "out" => p.out = value,
                "waiting" => p.waiting = value,
                "renewed" => p.renewed = value,
                _ => {}
            }
        }
        for word in sections.next()?.split_whitespace() {
            let (duid, n) = word.split_once('=')?;
            p.by_server.insert(duid.to_owned(), n.parse().ok()?);
        }
        Some(p)
    }
}

/// Follows the generator's progress for up to `limit` seconds until `done` holds; shows a
/// line every 5 s. `None` when the time ran out.
fn watch(
    lines: &Receiver<String>,
    generator: &mut Process,
    limit: u32,
    mut done: impl FnMut(&Progress) -> bool,
) -> Result<Option<Progress>> {
    let deadline = Instant::now() + Duration::from_secs(u64::from(limit));
    let mut shown = -5.0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        match lines.recv_timeout(left.min(Duration::from_secs(1))) {
            Ok(line) => match Progress::parse(&line) {
                Some(p) => {
                    if p.seconds - shown >= 5.0 {
                        println!("  {line}");
                        shown = p.seconds;
                    }
                    if done(&p) {
                        if p.seconds > shown {
                            println!("  {line}");
                        }
                        return Ok(Some(p));
                    }
                }
                None => println!("  generator: {line}"),
            },
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                let status = generator.try_wait()?;
                bail!("the generator ended early ({status:?}); see its output above");
            }
        }
    }
}

/// The table that compares the choices.
fn comparison(clients: u32, results: &[Outcome]) -> String {
    let number = |v: &Value, key: &str| v.get(key).and_then(Value::as_f64);
    let text = |v: Option<f64>, digits: usize| match v {
        Some(x) => format!("{x:.digits$}"),
        None => "-".to_owned(),
    };
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&Outcome) -> String| {
        rows.push((name.to_owned(), results.iter().map(f).collect()));
    };
    row("T1/T2/preferred/valid (s)", &|r| r.timers.describe());
    row("clients", &|_| clients.to_string());
    row("bound and renewed before the kill", &|r| {
        if r.kill_on_time { "all" } else { "NOT all" }.to_owned()
    });
    row("kill at (s)", &|r| text(number(&r.summary, "mark_s"), 1));
    row("clients that lost service", &|r| {
        text(number(&r.summary, "clients_lost_service"), 0)
    });
    row("outage p50 / p99 / max (s)", &|r| {
        let o = r.summary.get("outage").cloned().unwrap_or_default();
        format!(
            "{} / {} / {}",
            text(number(&o, "p50_s"), 2),
            text(number(&o, "p99_s"), 2),
            text(number(&o, "max_s"), 2)
        )
    });
    row("never recovered", &|r| {
        text(number(&r.summary, "never_recovered"), 0)
    });
    row("clients moved to the survivor", &|r| {
        text(number(&r.summary, "clients_switched"), 0)
    });
    row("recovery after the kill (s)", &|r| {
        if r.recovered {
            text(number(&r.summary, "recovery_s"), 1)
        } else {
            "NOT recovered".to_owned()
        }
    });
    row("messages/s before (last T1)", &|r| {
        text(number(&r.summary, "load_before"), 0)
    });
    row("messages/s kill..recovery", &|r| {
        text(number(&r.summary, "load_after"), 0)
    });
    row("busiest second after the kill", &|r| {
        text(number(&r.summary, "load_after_peak"), 0)
    });
    row("retransmissions", &|r| {
        text(number(&r.summary, "retransmissions"), 0)
    });
    row("survivor UDP receive-buffer drops", &|r| {
        text(r.survivor_drops.map(|n| n as f64), 0)
    });
    row("generator UDP receive-buffer drops", &|r| {
        text(r.generator_drops.map(|n| n as f64), 0)
    });
    row("generator send drops", &|r| {
        text(number(&r.summary, "send_drops"), 0)
    });
    row("validation failures", &|r| {
        text(number(&r.summary, "total_failures"), 0)
    });
    let width = rows
        .iter()
        .flat_map(|(_, cells)| cells.iter().map(String::len))
        .chain(results.iter().map(|r| r.timers.name.len()))
        .max()
        .unwrap_or(8)
        .max(8);
    let mut out = format!("  {:<34}", "timers");
    for r in results {
        out.push_str(&format!(" {:>width$}", r.timers.name));
    }
    out.push('\n');
    for (name, cells) in rows {
        out.push_str(&format!("  {name:<34}"));
        for cell in cells {
            out.push_str(&format!(" {cell:>width$}"));
        }
        out.push('\n');
    }
    out
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../examples/split-a.toml");

    #[test]
    fn the_example_gets_interface_timers_and_size_only() {
        let timers = Timers::new("x", 30, 48, 60, 120);
        let config = configure(EXAMPLE, "fo-a0", &timers, 100_000).unwrap();
        assert!(config.contains("interfaces = [\"fo-a0\"]\n"));
        assert!(config.contains("\nt1 = 30\n"));
        assert!(config.contains("\nvalid-lifetime = 120\n"));
        assert!(config.contains("\nexpected-leases = 100000\n"));
        assert!(!config.contains("name = \"eth1\""));
        assert!(config.contains("\nmac-max-bindings = 0\nmac-binding-rate = 0\n"));
        let config: String = config
            .lines()
            .filter(|line| !line.starts_with("mac-"))
            .map(|line| format!("{line}\n"))
            .collect();
        let changed = EXAMPLE
            .lines()
            .zip(config.lines())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(changed, 6);
        assert_eq!(EXAMPLE.lines().count(), config.lines().count());
        assert_eq!(field(&config, "preference").unwrap(), "255");
        assert_eq!(
            field(&config, "duid").unwrap(),
            "00:01:00:01:2e:00:00:01:02:00:00:00:00:0a"
        );
        assert_eq!(pool_prefix(&config).unwrap(), "2001:db8:1::/64");
        assert!(configure("t1 = 1\n", "x", &timers, 1).is_err());
    }

    #[test]
    fn timers_parse() {
        assert_eq!(
            parse_timers("fast=10/16/20/30").unwrap(),
            Timers::new("fast", 10, 16, 20, 30)
        );
        assert!(parse_timers("x=10/16/20").is_err());
        assert!(parse_timers("x=20/16/20/30").is_err());
        assert!(parse_timers("x y=1/1/1/1").is_err());
    }

    #[test]
    fn progress_lines_parse() {
        let line = "[   35s] in-service 99 out 1 waiting 0 renewed 98 | 0001aa=60 0001bb=39 \
                    | sent/s solicit 0 request 0 renew 9980 rebind 0 | received/s 9980 fail 0";
        let p = Progress::parse(line).unwrap();
        assert_eq!(p.seconds, 35.0);
        assert_eq!((p.in_service, p.out, p.waiting, p.renewed), (99, 1, 0, 98));
        assert_eq!(p.by_server["0001aa"], 60);
        assert_eq!(p.by_server["0001bb"], 39);
        assert!(Progress::parse("xdhcp6-bench: error").is_none());
    }
}
