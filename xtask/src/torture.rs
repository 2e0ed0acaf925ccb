//! `cargo xtask torture`: the floods an ISP's server meets, against the appliance with the
//! limits it ships with, while a legitimate population keeps binding.
//!
//! Topology: a server namespace and a client namespace joined by a veth pair, as for `cargo
//! xtask bench`, and the flooding relay's namespace behind the client one, which routes for
//! it (as a router in front of a relay does). In the client namespace the generator (`xdhcp6-bench`) runs the legitimate
//! population: `sarr` flows through several emulated relays (distinct Interface-Ids), each
//! client with its own Remote-Id. Meanwhile one flooding relay (its own source address and
//! Interface-Id, a fresh Remote-Id per message) sends, one after the other, random-DUID
//! Solicits, Requests without a Solicit and Declines at ten times the default per-relay
//! binding rate, and in parallel malformed datagrams to the server's port. For each datapath
//! (UDP, XDP/AF_XDP) the task prints the server's RSS and lease table before, during (the
//! peak) and after, the journal bytes written, the legitimate success rate and the drops by
//! reason, and writes the table as Markdown, CSV and JSON under target/torture/.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use xdhcp6_lab::fixtures;
use xdhcp6_lab::netns::{self, Netns};
use xdhcp6_lab::process::Process;

use crate::build;
use crate::cmd;
use crate::process;

const SERVER_IF: &str = "xt-srv0";
const CLIENT_IF: &str = "xt-cli0";
const SERVER_ADDRESS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xf, 0, 0, 0, 0, 1);
const CLIENT_ADDRESS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xf, 0, 0, 0, 0, 2);
const FLOOD_IF: &str = "xt-fld0";
const ROUTER_IF: &str = "xt-rtr0";
/// The flooding relay's address, in a namespace of its own behind the client namespace (which
/// routes): the server's replies to it never reach the generator's relay socket.
const FLOOD_SOURCE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xf1, 0, 0, 0, 0, 0x100);
const ROUTER_ADDRESS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xf1, 0, 0, 0, 0, 1);
/// The link-address the flooding relay names (inside the pool, so the link is selected).
const FLOOD_LINK: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0xf1, 0);
const POOL: &str = "2001:db8:1::/64";
const METRICS: &str = "[::1]:9547";
/// The server DUID of tests/fixtures/configs/torture.toml.
const SERVER_DUID: [u8; 14] = [0, 1, 0, 1, 0x2e, 0, 0, 1, 2, 0, 0, 0, 0, 0x0b];

/// Options of `cargo xtask torture`.
#[derive(clap::Args)]
pub struct Options {
    /// Seconds of flooding per datapath (a third for each of Solicit, Request and Decline).
    #[arg(long, default_value_t = 24.0)]
    seconds: f64,
    /// udp, xdp or both.
    #[arg(long, default_value = "both")]
    datapath: String,
    /// Who floods: relay (one relay, a fresh Remote-ID per message) or mac (one client
    /// link-layer address: one Remote-ID behind that relay).
    #[arg(long, default_value = "relay")]
    flooder: String,
    /// Flood messages a second (default: ten times the default rate of the flooder's limit,
    /// relay-binding-rate 1,000 or mac-binding-rate 4).
    #[arg(long)]
    flood_rate: Option<f64>,
    /// Malformed datagrams sent over the run, spread over it.
    #[arg(long, default_value_t = 1_000_000)]
    malformed: u64,
    /// The legitimate population's flows a second (sarr: Solicit, Advertise, Request, Reply).
    #[arg(long, default_value_t = 200.0)]
    legit_rate: f64,
    /// Relays the legitimate population comes through.
    #[arg(long, default_value_t = 16)]
    legit_relays: u32,
    /// Seconds to wait after the floods before the "after" sample.
    #[arg(long, default_value_t = 5.0)]
    settle: f64,
}

/// What one flood sent.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Sent {
    messages: u64,
    /// Sends the socket refused (buffer full).
    refused: u64,
}

/// The measurements of one datapath.
#[derive(Clone, Debug, Default, PartialEq)]
struct Row {
    datapath: String,
    rss_kib: [u64; 3],
    leases: [u64; 3],
    journal_bytes: u64,
    legit_started: u64,
    legit_completed: u64,
    /// Legitimate flows whose request went unanswered within the generator's timeout.
    legit_timeouts: u64,
    /// Legitimate flows with a reply that failed validation (a NoAddrsAvail among them).
    legit_failed: u64,
    /// Solicit, Request, Decline, malformed.
    sent: [Sent; 4],
    /// `dropped:REASON` and `refused:LIMIT` counters, the run's increase.
    drops: BTreeMap<String, u64>,
}

const FLOODS: [&str; 4] = ["solicit", "request", "decline", "malformed"];

impl Options {
    fn flood_rate(&self) -> f64 {
        self.flood_rate
            .unwrap_or(if self.one_mac() { 40.0 } else { 10_000.0 })
    }

    fn one_mac(&self) -> bool {
        self.flooder == "mac"
    }
}

impl Row {
    fn success_percent(&self) -> f64 {
        if self.legit_started == 0 {
            0.0
        } else {
            100.0 * self.legit_completed as f64 / self.legit_started as f64
        }
    }
}

pub fn run(options: &Options) -> Result<()> {
    cmd::require_root("cargo xtask torture")?;
    let datapaths: &[&str] = match options.datapath.as_str() {
        "udp" => &["udp"],
        "xdp" => &["xdp"],
        "both" => &["udp", "xdp"],
        other => bail!("--datapath {other:?}: expected udp, xdp or both"),
    };
    if !matches!(options.flooder.as_str(), "relay" | "mac") {
        bail!("--flooder {:?}: expected relay or mac", options.flooder);
    }
    if !(options.seconds >= 3.0 && options.flood_rate() > 0.0 && options.legit_rate > 0.0) {
        bail!("--seconds must be at least 3, --flood-rate and --legit-rate positive");
    }
    build::all()?;
    let release = build::target_dir().join("release");
    let work = build::target_dir().join("torture");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let lab = Lab::new(&release, &work)?;
    let mut rows = Vec::new();
    for datapath in datapaths {
        println!("\n== xdhcp6d --datapath {datapath}");
        rows.push(lab.torture(datapath, options)?);
    }
    let table = table(&rows, options);
    println!("\n{table}");
    std::fs::write(work.join("torture.md"), &table)?;
    std::fs::write(work.join("torture.csv"), csv(&rows))?;
    let summary = summary_json(&rows, options);
    std::fs::write(
        work.join("torture.json"),
        serde_json::to_string_pretty(&summary)? + "\n",
    )?;
    println!("  table: {}", work.join("torture.md").display());
    println!("  csv:   {}", work.join("torture.csv").display());
    println!("  json:  {}", work.join("torture.json").display());
    Ok(())
}

/// The namespaces and the binaries; dropping it removes the namespaces.
struct Lab {
    server: Netns,
    client: Netns,
    flood: Netns,
    release: PathBuf,
    work: PathBuf,
}

impl Lab {
    fn new(release: &Path, work: &Path) -> Result<Self> {
        println!(
            "== namespaces xdhcp6-torture-srv and xdhcp6-torture-cli joined by a veth pair, \
             xdhcp6-torture-fld (the flooding relay) routed through -cli"
        );
        let server = Netns::create("xdhcp6-torture-srv")?;
        let client = Netns::create("xdhcp6-torture-cli")?;
        let flood = Netns::create("xdhcp6-torture-fld")?;
        netns::veth_pair(&server, SERVER_IF, &client, CLIENT_IF)?;
        netns::veth_pair(&flood, FLOOD_IF, &client, ROUTER_IF)?;
        for (ns, interface) in [
            (&server, SERVER_IF),
            (&client, CLIENT_IF),
            (&client, ROUTER_IF),
            (&flood, FLOOD_IF),
        ] {
            ns.finish_checksums(interface)?;
        }
        server.add_address(SERVER_IF, &format!("{SERVER_ADDRESS}/64"))?;
        client.add_address(CLIENT_IF, &format!("{CLIENT_ADDRESS}/64"))?;
        client.add_address(ROUTER_IF, &format!("{ROUTER_ADDRESS}/64"))?;
        flood.add_address(FLOOD_IF, &format!("{FLOOD_SOURCE}/64"))?;
        cmd::run(
            client
                .command("sysctl")
                .args(["-qw", "net.ipv6.conf.all.forwarding=1"]),
        )?;
        let router = ROUTER_ADDRESS.to_string();
        let client_address = CLIENT_ADDRESS.to_string();
        flood.ip(&["-6", "route", "add", "default", "via", &router])?;
        server.ip(&[
            "-6",
            "route",
            "add",
            "2001:db8:f1::/64",
            "via",
            &client_address,
        ])?;
        for (ns, interface) in [
            (&server, SERVER_IF),
            (&client, CLIENT_IF),
            (&client, ROUTER_IF),
            (&flood, FLOOD_IF),
        ] {
            ns.wait_for_addresses(interface)?;
        }
        Ok(Self {
            server,
            client,
            flood,
            release: release.to_owned(),
            work: work.to_owned(),
        })
    }

    fn start_server(&self, datapath: &str, journal: &Path) -> Result<Process> {
        let config = self.work.join("xdhcp6d.toml");
        std::fs::write(
            &config,
            fixtures::render(fixtures::TORTURE, &[("SERVER_IF", SERVER_IF)])?,
        )?;
        let log = self.work.join(format!("xdhcp6d-{datapath}.log"));
        let mut command = self.server.command(self.release.join("xdhcp6d"));
        command
            .current_dir(&self.work)
            .arg("run")
            .arg("--config")
            .arg(&config)
            .args(["--datapath", datapath, "--xdp-mode", "native"])
            .args(["--metrics", METRICS])
            .arg("--journal")
            .arg(journal)
            // The journal's growth is what is reported as written: no zero tail ahead of it.
            .args(["--journal-prealloc", "0"])
            .arg("--control")
            .arg(self.work.join(format!("xdhcp6d-{datapath}.control.sock")));
        let server = process::start(command, &log, &format!("xdhcp6d-{datapath}"))?;
        process::wait_for_metrics(&self.server, METRICS, &log)?;
        Ok(server)
    }

    /// The legitimate population: `sarr` through `--legit-relays` relays for `seconds`.
    fn legit(&self, options: &Options, seconds: f64, json: &Path) -> Result<Process> {
        let mut command = self.client.command(self.release.join("xdhcp6-bench"));
        command
            .current_dir(&self.work)
            .args(["--interface", CLIENT_IF])
            .args(["--server", &SERVER_ADDRESS.to_string()])
            .args(["--scenario", "sarr", "--clients", "1000000"])
            .args(["--relays", &options.legit_relays.to_string()])
            .args(["--expect-range", POOL, "--seed", "1"])
            .args(["--rate", &options.legit_rate.to_string()])
            .args(["--duration", &seconds.to_string()])
            .arg("--json")
            .arg(json)
            .arg("-q")
            .stdout(Stdio::null());
        process::start(command, &self.work.join("legit.log"), "xdhcp6-bench")
    }

    fn torture(&self, datapath: &str, options: &Options) -> Result<Row> {
        let journal = self.work.join(format!("{datapath}.journal"));
        let _ = std::fs::remove_file(&journal);
        let mut server = self.start_server(datapath, &journal)?;
        let pid = server.id();
        let sample = || -> Result<(u64, u64, String)> {
            let text = process::metrics(&self.server, METRICS)?;
            Ok((
                rss_kib(pid)?,
                xdhcp6_lab::http::metric_sum(&text, "xdhcp6_leases"),
                text,
            ))
        };
        let (rss0, leases0, metrics0) = sample()?;
        let journal0 = file_size(&journal);
        println!("  before: RSS {rss0} KiB, {leases0} leases, journal {journal0} B");

        let legit_json = self.work.join(format!("legit-{datapath}.json"));
        let mut legit = self.legit(options, options.seconds + 2.0, &legit_json)?;
        std::thread::sleep(Duration::from_secs(1));

        let done = AtomicBool::new(false);
        let mut peak = (rss0, leases0);
        let sent = std::thread::scope(|scope| -> Result<[Sent; 4]> {
            let floods = scope.spawn(|| {
                let result = self.flood.run(|| floods(options));
                done.store(true, Ordering::Release);
                result
            });
            let mut last = Instant::now();
            while !done.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(250));
                if let Ok((rss, leases, _)) = sample() {
                    peak = (peak.0.max(rss), peak.1.max(leases));
                    if last.elapsed() >= Duration::from_secs(2) {
                        println!("  during: RSS {rss} KiB, {leases} leases");
                        last = Instant::now();
                    }
                }
            }
            match floods.join() {
                Ok(result) => Ok(result??),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })?;
        process::wait_generator(&mut legit, Duration::from_secs_f64(options.seconds + 30.0))?;
        std::thread::sleep(Duration::from_secs_f64(options.settle));
        let (rss2, leases2, metrics2) = sample()?;
        let journal2 = file_size(&journal);
        println!("  after:  RSS {rss2} KiB, {leases2} leases, journal {journal2} B");
        server.stop("TERM", Duration::from_secs(10))?;

        let summary: Value = serde_json::from_str(
            &std::fs::read_to_string(&legit_json)
                .with_context(|| format!("reading {}", legit_json.display()))?,
        )
        .with_context(|| format!("parsing {}", legit_json.display()))?;
        let count = |key: &str| summary[key].as_u64().unwrap_or(0);
        let mut drops = BTreeMap::new();
        for (prefix, name, label) in [
            ("dropped", "xdhcp6_dropped_total", "reason"),
            ("refused", "xdhcp6_limit_refusals_total", "limit"),
        ] {
            let before = labeled(&metrics0, name, label);
            for (key, after) in labeled(&metrics2, name, label) {
                let delta = after.saturating_sub(before.get(&key).copied().unwrap_or(0));
                if delta > 0 {
                    drops.insert(format!("{prefix}:{key}"), delta);
                }
            }
        }
        let row = Row {
            datapath: datapath.to_owned(),
            rss_kib: [rss0, peak.0.max(rss2), rss2],
            leases: [leases0, peak.1.max(leases2), leases2],
            journal_bytes: journal2.saturating_sub(journal0),
            legit_started: count("flows_started"),
            legit_completed: count("flows_completed"),
            legit_timeouts: count("timeouts"),
            legit_failed: count("flows_failed"),
            sent,
            drops,
        };
        println!(
            "  legitimate: {} of {} flows completed ({:.2} %), {} timed out, {} failed",
            row.legit_completed,
            row.legit_started,
            row.success_percent(),
            row.legit_timeouts,
            row.legit_failed
        );
        Ok(row)
    }
}

/// Runs the floods from the calling thread's namespace: the three message floods one after
/// the other at `--flood-rate`, the malformed datagrams alongside them.
fn floods(options: &Options) -> Result<[Sent; 4]> {
    let socket = flood_socket()?;
    let malformed_socket = flood_socket()?;
    let server = SocketAddrV6::new(SERVER_ADDRESS, 547, 0, 0);
    let third = Duration::from_secs_f64(options.seconds / 3.0);
    std::thread::scope(|scope| {
        let malformed = scope.spawn(|| {
            let rate = options.malformed as f64 / options.seconds;
            let mut rng = Rng(0x5eed_0bad);
            paced(
                &malformed_socket,
                server,
                rate,
                Duration::from_secs_f64(options.seconds * 1.5),
                options.malformed,
                |buf| malformed_message(&mut rng, buf),
            )
        });
        let mut rng = Rng(0x5eed_f100d);
        let mut sent = [Sent::default(); 4];
        for (i, kind) in FLOODS[..3].iter().enumerate() {
            println!(
                "  flood: {kind} at {:.0}/s for {third:?}",
                options.flood_rate()
            );
            sent[i] = paced(
                &socket,
                server,
                options.flood_rate(),
                third,
                u64::MAX,
                |buf| flood_message(i, options.one_mac(), &mut rng, buf),
            );
        }
        sent[3] = match malformed.join() {
            Ok(sent) => sent,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        println!("  flood: {} malformed datagrams sent", sent[3].messages);
        Ok(sent)
    })
}

/// A UDP socket of the flooding relay, on a port of its own (a relay may send from any port,
/// RFC 8357): the server's answers go to port 547, where nothing listens in its namespace.
fn flood_socket() -> Result<UdpSocket> {
    UdpSocket::bind(SocketAddrV6::new(FLOOD_SOURCE, 0, 0, 0))
        .with_context(|| format!("binding [{FLOOD_SOURCE}]:0"))
}

/// Sends what `write` builds at `rate` a second until `limit` passed or `count` are sent.
fn paced(
    socket: &UdpSocket,
    to: SocketAddrV6,
    rate: f64,
    limit: Duration,
    count: u64,
    mut write: impl FnMut(&mut Vec<u8>),
) -> Sent {
    let start = Instant::now();
    let mut sent = Sent::default();
    let mut buf = Vec::with_capacity(1500);
    loop {
        let elapsed = start.elapsed();
        if elapsed >= limit || sent.messages >= count {
            return sent;
        }
        let due = ((elapsed.as_secs_f64() * rate) as u64).min(count);
        while sent.messages < due {
            buf.clear();
            write(&mut buf);
            if socket.send_to(&buf, to).is_err() {
                sent.refused += 1;
            }
            sent.messages += 1;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// xorshift64: the floods need cheap, repeatable noise, not secrecy.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn bytes(&mut self, out: &mut Vec<u8>, n: usize) {
        for _ in 0..n {
            out.push(self.next() as u8);
        }
    }
}

fn option(buf: &mut Vec<u8>, code: u16, body: impl FnOnce(&mut Vec<u8>)) {
    buf.extend_from_slice(&code.to_be_bytes());
    let at = buf.len();
    buf.extend_from_slice(&[0, 0]);
    body(buf);
    let len = (buf.len() - at - 2) as u16;
    buf[at..at + 2].copy_from_slice(&len.to_be_bytes());
}

/// Flood `kind` (0: Solicit, 1: Request without a Solicit, 2: Decline) from a random DUID
/// (Declines: one of 16 DUIDs, of a random pool address), inside a Relay-forward of the
/// flooding relay with a fresh Remote-Id, or always the same one with `one_mac`.
fn flood_message(kind: usize, one_mac: bool, rng: &mut Rng, buf: &mut Vec<u8>) {
    let (msg_type, duids) = match kind {
        0 => (1u8, u64::MAX),
        1 => (3, u64::MAX),
        _ => (9, 16),
    };
    buf.extend_from_slice(&[12, 0]);
    buf.extend_from_slice(&FLOOD_LINK.octets());
    let peer = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, rng.next() as u16 | 1);
    buf.extend_from_slice(&peer.octets());
    option(buf, 18, |b| b.extend_from_slice(b"torture-flood"));
    option(buf, 37, |b| {
        b.extend_from_slice(&4491u32.to_be_bytes());
        if one_mac {
            b.extend_from_slice(b"torture1");
        } else {
            rng.bytes(b, 8);
        }
    });
    option(buf, 9, |b| {
        b.push(msg_type);
        rng.bytes(b, 3);
        let duid = rng.next() % duids;
        option(b, 1, |b| {
            // DUID-EN: enterprise 4491, then the identifier.
            b.extend_from_slice(&[0, 2, 0, 0, 0x11, 0x8b]);
            b.extend_from_slice(&duid.to_be_bytes());
        });
        if msg_type != 1 {
            option(b, 2, |b| b.extend_from_slice(&SERVER_DUID));
        }
        option(b, 8, |b| b.extend_from_slice(&[0, 0]));
        option(b, 3, |b| {
            b.extend_from_slice(&[0, 0, 0, 1]);
            b.extend_from_slice(&[0; 8]);
            if msg_type == 9 {
                option(b, 5, |b| {
                    let host = rng.next();
                    let address = (u128::from(0x2001_0db8_0001_0000_u64) << 64) | u128::from(host);
                    b.extend_from_slice(&address.to_be_bytes());
                    b.extend_from_slice(&[0; 8]);
                });
            }
        });
    });
}

/// A malformed datagram: random bytes, a valid flood message cut short, or one whose option
/// claims more bytes than follow.
fn malformed_message(rng: &mut Rng, buf: &mut Vec<u8>) {
    match rng.next() % 3 {
        0 => {
            let len = (rng.next() % 300) as usize;
            rng.bytes(buf, len);
        }
        1 => {
            flood_message((rng.next() % 3) as usize, false, rng, buf);
            let cut = (rng.next() as usize) % buf.len();
            buf.truncate(cut);
        }
        _ => {
            flood_message(0, false, rng, buf);
            // The Relay Message option (after link, peer, Interface-Id and Remote-Id) claims
            // more than the datagram holds.
            let at = 34 + 4 + 13 + 4 + 12;
            let len = u16::from_be_bytes([buf[at + 2], buf[at + 3]]);
            buf[at + 2..at + 4]
                .copy_from_slice(&(len + 1 + (rng.next() as u16 % 64)).to_be_bytes());
        }
    }
}

fn rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    text.lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The samples of metric `name` by the value of its label `label`.
fn labeled(text: &str, name: &str, label: &str) -> BTreeMap<String, u64> {
    let prefix = format!("{name}{{{label}=\"");
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(&prefix)?;
            let (key, rest) = rest.split_once('"')?;
            let value = rest.rsplit(' ').next()?.parse::<f64>().ok()?;
            Some((key.to_owned(), value as u64))
        })
        .collect()
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The table (Markdown): one row per datapath, then the drops by reason.
fn table(rows: &[Row], options: &Options) -> String {
    let mut t = format!(
        "{} floods random-DUID Solicits, Requests without Solicit and Declines at {:.0}/s \
         ({:.1} s each) and {} malformed datagrams, while {} relays bring {:.0} legitimate sarr \
         flows/s; the limits shipped by default (examples/reference.toml)\n\n",
        if options.one_mac() {
            "One MAC (one Remote-ID behind one relay)"
        } else {
            "One relay"
        },
        options.flood_rate(),
        options.seconds / 3.0,
        options.malformed,
        options.legit_relays,
        options.legit_rate
    );
    t.push_str(
        "| datapath | RSS before / peak / after | leases before / peak / after | journal written \
         | legitimate success | sent solicit / request / decline / malformed |\n",
    );
    t.push_str("|---|---|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(
            t,
            "| {} | {} / {} / {} | {} / {} / {} | {} B | {:.2} % ({} of {}; {} timed out, {} failed) | {} / {} / {} / {} |",
            r.datapath,
            mib(r.rss_kib[0]),
            mib(r.rss_kib[1]),
            mib(r.rss_kib[2]),
            r.leases[0],
            r.leases[1],
            r.leases[2],
            r.journal_bytes,
            r.success_percent(),
            r.legit_completed,
            r.legit_started,
            r.legit_timeouts,
            r.legit_failed,
            r.sent[0].messages,
            r.sent[1].messages,
            r.sent[2].messages,
            r.sent[3].messages,
        );
    }
    let mut reasons: Vec<&String> = rows.iter().flat_map(|r| r.drops.keys()).collect();
    reasons.sort();
    reasons.dedup();
    t.push_str("\n| drops (xdhcp6_dropped_total{reason}, xdhcp6_limit_refusals_total{limit}) |");
    for r in rows {
        let _ = write!(t, " {} |", r.datapath);
    }
    t.push_str("\n|---|");
    t.push_str(&"---|".repeat(rows.len()));
    t.push('\n');
    for reason in reasons {
        let _ = write!(t, "| {reason} |");
        for r in rows {
            let _ = write!(t, " {} |", r.drops.get(reason).copied().unwrap_or(0));
        }
        t.push('\n');
    }
    t
}

fn csv(rows: &[Row]) -> String {
    let mut t = String::from(
        "datapath,rss_before_kib,rss_peak_kib,rss_after_kib,leases_before,leases_peak,\
         leases_after,journal_bytes,legit_started,legit_completed,legit_timeouts,legit_failed,\
         legit_success_percent",
    );
    for kind in FLOODS {
        let _ = write!(t, ",sent_{kind}");
    }
    t.push_str(",drops\n");
    for r in rows {
        let _ = write!(
            t,
            "{},{},{},{},{},{},{},{},{},{},{},{},{:.3}",
            r.datapath,
            r.rss_kib[0],
            r.rss_kib[1],
            r.rss_kib[2],
            r.leases[0],
            r.leases[1],
            r.leases[2],
            r.journal_bytes,
            r.legit_started,
            r.legit_completed,
            r.legit_timeouts,
            r.legit_failed,
            r.success_percent()
        );
        for s in r.sent {
            let _ = write!(t, ",{}", s.messages);
        }
        let drops: Vec<String> = r.drops.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(t, ",{}", drops.join(";"));
    }
    t
}

fn summary_json(rows: &[Row], options: &Options) -> Value {
    json!({
        "seconds": options.seconds,
        "flooder": options.flooder,
        "flood_rate": options.flood_rate(),
        "malformed": options.malformed,
        "legit_rate": options.legit_rate,
        "legit_relays": options.legit_relays,
        "datapaths": rows.iter().map(|r| json!({
            "datapath": r.datapath,
            "rss_kib": { "before": r.rss_kib[0], "peak": r.rss_kib[1], "after": r.rss_kib[2] },
            "leases": { "before": r.leases[0], "peak": r.leases[1], "after": r.leases[2] },
            "journal_bytes": r.journal_bytes,
            "legit_started": r.legit_started,
            "legit_completed": r.legit_completed,
            "legit_timeouts": r.legit_timeouts,
            "legit_failed": r.legit_failed,
            "legit_success_percent": r.success_percent(),
            "sent": FLOODS.iter().zip(r.sent).map(|(k, s)| (k.to_string(), json!({
                "messages": s.messages, "refused_by_socket": s.refused,
            }))).collect::<serde_json::Map<_, _>>(),
            "drops": r.drops,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(datapath: &str, drops: &[(&str, u64)]) -> Row {
        Row {
            datapath: datapath.to_owned(),
            rss_kib: [10240, 20480, 11264],
            leases: [0, 1500, 1200],
            journal_bytes: 4096,
            legit_started: 1000,
            legit_completed: 995,
            legit_timeouts: 5,
            legit_failed: 0,
            sent: [Sent {
                messages: 7,
                refused: 0,
            }; 4],
            drops: drops.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        }
    }

    #[test]
    fn table_has_a_row_per_datapath_and_a_drop_line_per_reason() {
        let options = Options {
            seconds: 24.0,
            datapath: "both".to_owned(),
            flooder: "relay".to_owned(),
            flood_rate: None,
            malformed: 1_000_000,
            legit_rate: 200.0,
            legit_relays: 16,
            settle: 5.0,
        };
        let rows = [
            row("udp", &[("dropped:rate_limited", 5)]),
            row("xdp", &[("refused:relay_rate", 3)]),
        ];
        let t = table(&rows, &options);
        assert!(t.contains(
            "| udp | 10.0 MiB / 20.0 MiB / 11.0 MiB | 0 / 1500 / 1200 | 4096 B | 99.50 % (995 of 1000; 5 timed out, 0 failed) | 7 / 7 / 7 / 7 |"
        ), "{t}");
        assert!(t.contains("| dropped:rate_limited | 5 | 0 |\n"), "{t}");
        assert!(t.contains("| refused:relay_rate | 0 | 3 |\n"), "{t}");
        let c = csv(&rows);
        assert_eq!(c.lines().count(), 3);
        assert!(c.contains("udp,10240,20480,11264,0,1500,1200,4096,1000,995,5,0,99.500,7,7,7,7,dropped:rate_limited=5\n"), "{c}");
    }

    #[test]
    fn labeled_reads_one_counter_per_label_value() {
        let text = "xdhcp6_dropped_total{reason=\"malformed\"} 12\n\
                    xdhcp6_dropped_total{reason=\"rate_limited\"} 3\n\
                    xdhcp6_dropped_totals{reason=\"x\"} 9\n";
        let map = labeled(text, "xdhcp6_dropped_total", "reason");
        assert_eq!(map.len(), 2);
        assert_eq!(map["malformed"], 12);
        assert_eq!(map["rate_limited"], 3);
    }

    #[test]
    fn flood_messages_are_well_formed_relay_forwards() {
        let mut rng = Rng(1);
        for kind in 0..3 {
            let mut buf = Vec::new();
            flood_message(kind, kind == 1, &mut rng, &mut buf);
            assert_eq!(buf[0], 12);
            // Options after the 34-byte header add up to the datagram.
            let mut at = 34;
            while at < buf.len() {
                let len = u16::from_be_bytes([buf[at + 2], buf[at + 3]]) as usize;
                at += 4 + len;
            }
            assert_eq!(at, buf.len(), "kind {kind}");
        }
        for _ in 0..100 {
            let mut buf = Vec::new();
            malformed_message(&mut rng, &mut buf);
            assert!(buf.len() < 1500);
        }
    }
}
