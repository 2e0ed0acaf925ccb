//! A network built for one test: namespaces joined by veth pairs, `xdhcp6d` and the
//! client-side tools (dhclient, dhcrelay, perfdhcp, tcpdump) started in them, and a scratch
//! folder. Everything is stopped and removed in `Drop` (see dora's `bin/tests/common/env.rs`).
//!
//! Its methods panic with what went wrong, logs included: they are meant for tests. The tests
//! need root and the ISC/Kea tools; a missing tool fails the test, it never skips.

use std::fs;
use std::net::{Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::capture::{self, CapturedMessage};
use crate::dhclient::{Dhclient, ScriptEvent};
use crate::http::{self, metric_sum};
use crate::netns::{self, Netns};
use crate::perfdhcp::Perfdhcp;
use crate::process::{self, Process};
use crate::{Result, cmd, relay};

/// Where the daemon serves its metrics, inside its namespace.
pub const METRICS: &str = "[::1]:9547";

/// The name of the daemon that [`Lab::start_daemon`] and its companions manage.
const SERVER: &str = "server";

/// The datapath the daemon runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Datapath {
    /// The kernel's UDP socket.
    Udp,
    /// AF_XDP in generic (skb) mode, which veth supports without a program on the peer.
    XdpSkb,
    /// AF_XDP in driver (native) mode: veth runs the program in its NAPI poll, as a NIC
    /// driver would (copy mode; veth has no zero-copy).
    XdpNative,
}

impl Datapath {
    /// The `xdhcp6d run` flags that select it.
    pub fn args(self) -> &'static [&'static str] {
        match self {
            Self::Udp => &["--datapath", "udp"],
            Self::XdpSkb => &["--datapath", "xdp", "--xdp-mode", "skb"],
            Self::XdpNative => &["--datapath", "xdp", "--xdp-mode", "native"],
        }
    }
}

/// How [`Lab::start_daemon`] runs the daemon.
#[derive(Clone, Copy, Debug)]
pub struct DaemonOptions<'a> {
    /// The datapath.
    pub datapath: Datapath,
    /// The lease journal.
    pub journal: &'a Path,
    /// `always` or `batch`.
    pub durability: &'a str,
    /// The name of the log file, without `.log`.
    pub log: &'a str,
}

/// The value of a lab step, or a panic that says what went wrong.
fn must<T>(result: Result<T>) -> T {
    result.unwrap_or_else(|error| panic!("{error}"))
}

/// Runs a command, failing the test with its output when it cannot start or fails.
pub fn run(program: &str, args: &[&str]) -> Output {
    let output = must(cmd::capture(Command::new(program).args(args)));
    assert!(
        output.status.success(),
        "{program} {args:?} failed with {}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Fails the test at once when a tool it needs is not installed.
pub fn require_tools(tools: &[&str]) {
    must(cmd::require_tools(tools));
}

/// The DHCPv6 messages between client and server ports in a capture, in order.
pub fn captured_messages(capture: &Path) -> Vec<CapturedMessage> {
    must(capture::captured_messages(capture))
}

/// Whether `address` lies in `prefix/length`.
pub fn contains(prefix: Ipv6Addr, length: u32, address: Ipv6Addr) -> bool {
    let mask = u128::MAX.checked_shl(128 - length).unwrap_or(0);
    u128::from(prefix) & mask == u128::from(address) & mask
}

/// The rows of `DAEMON leases --journal J --json`.
pub fn journal_leases(daemon: &Path, journal: &Path) -> Vec<serde_json::Value> {
    let output = must(cmd::capture(
        Command::new(daemon)
            .args(["leases", "--journal"])
            .arg(journal)
            .arg("--json"),
    ));
    assert!(
        output.status.success(),
        "xdhcp6d leases failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("xdhcp6d leases --json: {error}"));
    rows.as_array().expect("a JSON array").clone()
}

/// A network namespace holding one veth pair, for the tests that bind AF_XDP sockets and
/// attach the XDP program in process; deleted on drop.
pub struct VethPair {
    netns: Netns,
}

impl VethPair {
    /// The end the program and the AF_XDP sockets sit on (fe80::547 and 2001:db8::547).
    pub const SERVER: &str = "xsrv0";
    /// The end frames are sent from.
    pub const CLIENT: &str = "xcli0";
    /// The server's global address.
    pub const SERVER_GLOBAL: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x547);

    /// A pair with one queue on each end.
    pub fn new() -> Self {
        Self::with_queues(1)
    }

    /// A pair whose ends have `queues` receive and transmit queues each.
    pub fn with_queues(queues: u32) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "xdhcp6-veth-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let netns = must(Netns::create(&name));
        must(netns::veth_pair_with_queues(
            &netns,
            Self::SERVER,
            &netns,
            Self::CLIENT,
            queues,
        ));
        // The kernel gives each end a link-local address of its own once the carrier is up;
        // when the link-watch event comes late (a loaded machine) that address is made after
        // ours, listed first, and still tentative (DAD): taken as the replies' source, the
        // kernel would refuse to send from it. The server end keeps fe80::547 alone.
        must(netns.ip(&["link", "set", "dev", Self::SERVER, "addrgenmode", "none"]));
        must(netns.ip(&["-6", "addr", "flush", "dev", Self::SERVER, "scope", "link"]));
        must(netns.add_address(Self::SERVER, "fe80::547/64"));
        must(netns.add_address(Self::SERVER, "2001:db8::547/64"));
        Self { netns }
    }

    /// The namespace.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// Runs `body` on a thread inside the namespace (threads it spawns inherit it).
    pub fn run_in_namespace<T: Send>(&self, body: impl FnOnce() -> T + Send) -> T {
        must(self.netns.run(body))
    }
}

impl Default for VethPair {
    fn default() -> Self {
        Self::new()
    }
}

/// A daemon started by a test, by name (`server` for the single daemon of most tests).
struct Daemon {
    name: String,
    role: String,
    process: Option<Process>,
    log: PathBuf,
}

/// A namespace of the lab and the role it plays.
struct Role {
    role: String,
    netns: Netns,
}

/// Namespaces, veth pairs, bridges, processes and a scratch folder; removed in `Drop`.
pub struct Lab {
    daemon: PathBuf,
    dir: PathBuf,
    id: u32,
    roles: Vec<Role>,
    daemons: Vec<Daemon>,
    background: Vec<Process>,
    dhclients: Vec<Dhclient>,
}

impl Lab {
    /// An empty lab for the daemon binary `daemon`, named after the test (`tag`), with one
    /// namespace per role.
    pub fn new(daemon: impl Into<PathBuf>, tag: &str, roles: &[&str]) -> Self {
        require_tools(&["ip", "ethtool", "sysctl"]);
        let id = std::process::id();
        let dir = std::env::temp_dir().join(format!("xdhcp6d-{tag}-{id}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
        let mut lab = Self {
            daemon: daemon.into(),
            dir,
            id,
            roles: Vec::new(),
            daemons: Vec::new(),
            background: Vec::new(),
            dhclients: Vec::new(),
        };
        for role in roles {
            let netns = must(Netns::create(&lab.ns(role)));
            must(netns.disable_dad());
            lab.roles.push(Role {
                role: (*role).to_owned(),
                netns,
            });
        }
        lab
    }

    /// The namespace name of a role.
    pub fn ns(&self, role: &str) -> String {
        format!("xd6{role}{}", self.id)
    }

    /// The namespace of a role.
    pub fn netns(&self, role: &str) -> &Netns {
        self.roles
            .iter()
            .find(|r| r.role == role)
            .map(|r| &r.netns)
            .unwrap_or_else(|| panic!("no role {role}"))
    }

    /// A path in the scratch folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Joins two namespaces with a veth pair, brings both ends up and waits for their
    /// link-local addresses. The ends keep their offloads, as containers and VM bridges do:
    /// UDP checksums sent from a kernel socket stay unfinished (CHECKSUM_PARTIAL), which the
    /// AF_XDP datapath must accept.
    pub fn veth(&self, a: (&str, &str), b: (&str, &str)) {
        self.veth_pair(a, b, false);
    }

    /// [`Lab::veth`] with transmit checksum offload off on both ends (`ethtool -K IF tx off`):
    /// every frame carries a finished checksum, as from a physical NIC.
    pub fn veth_with_finished_checksums(&self, a: (&str, &str), b: (&str, &str)) {
        self.veth_pair(a, b, true);
    }

    fn veth_pair(&self, (role_a, if_a): (&str, &str), (role_b, if_b): (&str, &str), finish: bool) {
        let (a, b) = (self.netns(role_a), self.netns(role_b));
        must(netns::veth_pair(a, if_a, b, if_b));
        if finish {
            for (netns, interface) in [(a, if_a), (b, if_b)] {
                must(netns.finish_checksums(interface));
            }
        }
        for (netns, interface) in [(a, if_a), (b, if_b)] {
            must(netns.wait_for_link_local(interface));
        }
    }

    /// Adds an address (`2001:db8::1/64`) to an interface, usable at once.
    pub fn address(&self, role: &str, interface: &str, cidr: &str) {
        must(self.netns(role).add_address(interface, cidr));
    }

    /// Adds a bridge (a switch that floods multicast at once) to a role's namespace.
    pub fn bridge(&self, role: &str, bridge: &str) {
        must(self.netns(role).add_bridge(bridge));
    }

    /// Makes an interface of a role a port of a bridge in the same namespace.
    pub fn attach(&self, role: &str, interface: &str, bridge: &str) {
        must(self.netns(role).attach(interface, bridge));
    }

    /// The global IPv6 addresses of an interface of a role.
    pub fn global_addresses(&self, role: &str, interface: &str) -> Vec<Ipv6Addr> {
        must(self.netns(role).global_addresses(interface))
    }

    /// Runs a command in a role's namespace and returns its output, whatever its status.
    pub fn exec(&self, role: &str, args: &[&str]) -> Output {
        must(self.netns(role).exec(args))
    }

    /// Starts a command in a role's namespace in the background, its output in `NAME.log`.
    pub fn spawn(&mut self, role: &str, name: &str, args: &[&str]) {
        let (program, rest) = args.split_first().expect("a command line");
        require_tools(&[program]);
        let mut command = self.netns(role).command(program);
        command.args(rest);
        self.start(command, name);
    }

    fn start(&mut self, command: Command, name: &str) {
        let log = self.path(&format!("{name}.log"));
        self.background
            .push(must(Process::start(command, &log, name)));
    }

    /// The log of a background process.
    pub fn log(&self, name: &str) -> String {
        fs::read_to_string(self.path(&format!("{name}.log"))).unwrap_or_default()
    }

    /// Waits until a background process's log contains `text`.
    pub fn wait_for_log(&mut self, name: &str, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log(name);
            if log.contains(text) {
                return;
            }
            if let Some(status) = must(self.process(name).try_wait()) {
                panic!("{name} exited with {status} before saying {text:?}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not say {text:?} in {timeout:?}:\n{log}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn process(&mut self, name: &str) -> &mut Process {
        self.background
            .iter_mut()
            .find(|process| process.name() == name)
            .unwrap_or_else(|| panic!("no process {name}"))
    }

    /// Waits for a background process to exit on its own, then returns its status and log.
    pub fn wait(&mut self, name: &str, timeout: Duration) -> (ExitStatus, String) {
        let status = match self.process(name).wait(timeout) {
            Ok(status) => status,
            Err(error) => panic!("{error}:\n{}", self.log(name)),
        };
        self.background.retain(|process| process.name() != name);
        (status, self.log(name))
    }

    /// Sends a signal (`-INT`, `-TERM`) to a background process and waits for it to exit.
    pub fn stop(&mut self, name: &str, signal: &str) -> (ExitStatus, String) {
        let _ = self.process(name).signal(signal.trim_start_matches('-'));
        self.wait(name, Duration::from_secs(10))
    }

    /// Starts the daemon in a role's namespace and waits until it serves.
    pub fn start_daemon(&mut self, role: &str, config: &str, options: &DaemonOptions<'_>) {
        self.start_server(SERVER, role, config, options);
    }

    /// [`Self::start_daemon`] with further arguments after the others.
    pub fn start_daemon_with(
        &mut self,
        role: &str,
        config: &str,
        options: &DaemonOptions<'_>,
        extra: &[&str],
    ) {
        self.start_server_with(SERVER, role, config, options, extra);
    }

    /// Starts one of several daemons (`name`, its configuration in `NAME.toml`) in a role's
    /// namespace and waits until it serves; `options.log` names its log file, so that a
    /// restart keeps the first log.
    pub fn start_server(
        &mut self,
        name: &str,
        role: &str,
        config: &str,
        options: &DaemonOptions<'_>,
    ) {
        self.start_server_with(name, role, config, options, &[]);
    }

    /// [`Self::start_server`] with further arguments after the others.
    pub fn start_server_with(
        &mut self,
        name: &str,
        role: &str,
        config: &str,
        options: &DaemonOptions<'_>,
        extra: &[&str],
    ) {
        assert!(
            self.daemons
                .iter()
                .all(|daemon| daemon.name != name || daemon.process.is_none()),
            "the daemon {name} runs already"
        );
        self.daemons.retain(|daemon| daemon.name != name);
        let config_path = self.path(&format!("{name}.toml"));
        fs::write(&config_path, config)
            .unwrap_or_else(|error| panic!("{}: {error}", config_path.display()));
        let log = self.path(&format!("{}.log", options.log));
        let mut command = self.netns(role).command(&self.daemon);
        command
            .args(["run", "--config"])
            .arg(&config_path)
            .args(options.datapath.args())
            .args(["--durability", options.durability])
            .args(["--metrics", METRICS, "--journal"])
            .arg(options.journal)
            // Each daemon its own control socket: the namespaces share the file system.
            .arg("--control")
            .arg(self.control_socket(name))
            .args(extra)
            .env("RUST_LOG", "info");
        let process = must(Process::start(command, &log, name));
        self.daemons.push(Daemon {
            name: name.to_owned(),
            role: role.to_owned(),
            process: Some(process),
            log,
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.server_log(name);
            if log.contains("serving") {
                return;
            }
            if let Some(status) = self
                .daemon(name)
                .process
                .as_mut()
                .and_then(|process| must(process.try_wait()))
            {
                panic!("the daemon {name} exited with {status}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "the daemon {name} did not start:\n{log}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn daemon(&mut self, name: &str) -> &mut Daemon {
        self.daemons
            .iter_mut()
            .find(|daemon| daemon.name == name)
            .unwrap_or_else(|| panic!("no daemon {name}"))
    }

    fn running(&mut self, name: &str) -> Process {
        self.daemon(name)
            .process
            .take()
            .unwrap_or_else(|| panic!("the daemon {name} does not run"))
    }

    /// The control API socket of the daemon `name` (`xdhcp6d ctl --socket`).
    pub fn control_socket(&self, name: &str) -> PathBuf {
        self.path(&format!("{name}.control.sock"))
    }

    /// The control API socket of the daemon [`Lab::start_daemon`] runs.
    pub fn daemon_control_socket(&self) -> PathBuf {
        self.control_socket(SERVER)
    }

    /// The running (or last) daemon's log.
    pub fn daemon_log(&self) -> String {
        self.server_log(SERVER)
    }

    /// The log of the daemon `name` (empty if it never started).
    pub fn server_log(&self, name: &str) -> String {
        self.daemons
            .iter()
            .find(|daemon| daemon.name == name)
            .and_then(|daemon| fs::read_to_string(&daemon.log).ok())
            .unwrap_or_default()
    }

    /// Every daemon's log under a heading, for failure messages.
    pub fn daemon_logs(&self) -> String {
        let mut text = String::new();
        for daemon in &self.daemons {
            let log = fs::read_to_string(&daemon.log).unwrap_or_default();
            text.push_str(&format!("--- daemon {} log:\n{log}\n", daemon.name));
        }
        text
    }

    /// Sends SIGTERM and expects a clean exit.
    pub fn stop_daemon(&mut self) {
        self.stop_server(SERVER);
    }

    /// Sends SIGTERM to the daemon `name` and expects a clean exit.
    pub fn stop_server(&mut self, name: &str) {
        let mut process = self.running(name);
        must(process.signal("TERM"));
        let status = process
            .wait(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("the daemon {name} ignored SIGTERM"));
        let log = self.server_log(name);
        assert!(
            status.success(),
            "the daemon {name} exited with {status}:\n{log}"
        );
        assert!(log.contains("stopped"), "{log}");
    }

    /// SIGKILLs the daemon: no shutdown, no journal sync.
    pub fn kill_daemon(&mut self) {
        self.kill_server(SERVER);
    }

    /// SIGKILLs the daemon `name`: no shutdown, no journal sync.
    pub fn kill_server(&mut self, name: &str) {
        self.running(name).kill();
    }

    /// Sends a signal (`-STOP`, `-CONT`) to the running daemon `name`.
    pub fn signal_server(&mut self, name: &str, signal: &str) {
        let process = self
            .daemon(name)
            .process
            .as_mut()
            .unwrap_or_else(|| panic!("the daemon {name} does not run"));
        must(process.signal(signal.trim_start_matches('-')));
    }

    /// The daemon's metrics, as `name{labels} value` lines.
    pub fn metrics(&self) -> String {
        self.server_metrics(SERVER)
    }

    /// The metrics of the daemon `name`, fetched inside its namespace.
    pub fn server_metrics(&self, name: &str) -> String {
        let role = &self
            .daemons
            .iter()
            .find(|daemon| daemon.name == name)
            .unwrap_or_else(|| panic!("no daemon {name}"))
            .role;
        let address: SocketAddr = METRICS.parse().expect("a socket address");
        must(
            self.netns(role)
                .run(|| http::get(address, "/metrics"))
                .and_then(|body| body),
        )
    }

    /// Fails unless the daemon's XDP program steered at least `frames` frames to AF_XDP
    /// (with `--datapath xdp`), so that an XDP test cannot pass on the kernel's slow path.
    pub fn assert_steered(&self, datapath: Datapath, frames: u64) -> String {
        self.assert_server_steered(SERVER, datapath, frames)
    }

    /// As [`Lab::assert_steered`], for the daemon `name`.
    pub fn assert_server_steered(&self, name: &str, datapath: Datapath, frames: u64) -> String {
        let metrics = self.server_metrics(name);
        if datapath != Datapath::Udp {
            let steered = metric_sum(&metrics, "xdhcp6_xdp_frames_total{verdict=\"steered\"}");
            assert!(
                steered >= frames,
                "the XDP program steered {steered} frames to AF_XDP, expected {frames} or \
                 more:\n{metrics}"
            );
        }
        metrics
    }

    fn new_dhclient(&mut self, name: &str) -> Dhclient {
        require_tools(&["dhclient", "timeout"]);
        let client = must(Dhclient::new(&self.dir, name));
        self.dhclients.push(client.clone());
        client
    }

    /// Runs `dhclient -6 -1` (with `extra` flags) on an interface of a role until it has a
    /// lease, stops it, and returns its lease file. Its script is
    /// [`SCRIPT`](crate::dhclient::SCRIPT), as for [`Lab::start_dhclient`].
    pub fn dhclient(&mut self, role: &str, interface: &str, name: &str, extra: &[&str]) -> String {
        let client = self.new_dhclient(name);
        let mut command = client.command(self.netns(role), interface, extra, true);
        let output = must(cmd::capture(&mut command));
        // dhclient went to the background to renew; the test needs only the lease.
        if output.status.success() {
            client.stop_background();
        } else {
            process::kill_pid_file(&client.pid);
        }
        let text = client.lease_file();
        assert!(
            output.status.success(),
            "dhclient {extra:?} failed: {}\n{}\nlease file:\n{text}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.daemon_logs()
        );
        text
    }

    /// Starts `dhclient -6 -d` (with `extra` flags such as `-N -P`) on an interface of a role
    /// and leaves it running: it solicits, binds, renews and rebinds like a real host. Its
    /// log is `NAME.log`, its lease file `NAME.leases`, and its script adds and removes its
    /// addresses on the interface and writes one line per call to `NAME.events` (see
    /// [`ScriptEvent`]).
    pub fn start_dhclient(&mut self, role: &str, interface: &str, name: &str, extra: &[&str]) {
        let client = self.new_dhclient(name);
        let command = client.command(self.netns(role), interface, extra, false);
        self.start(command, name);
    }

    fn dhclient_files(&self, name: &str) -> Dhclient {
        Dhclient::files(&self.dir, name)
    }

    /// The calls of a dhclient's script so far (see [`Lab::start_dhclient`]).
    pub fn dhclient_events(&self, name: &str) -> Vec<ScriptEvent> {
        self.dhclient_files(name).script_events()
    }

    /// What a dhclient started by [`Lab::start_dhclient`] did: its log, its script's calls
    /// and its lease file, for failure messages.
    pub fn dhclient_report(&self, name: &str) -> String {
        let client = self.dhclient_files(name);
        let events = fs::read_to_string(&client.events).unwrap_or_default();
        format!(
            "--- {name} log:\n{}\n--- {name} script calls:\n{events}\n--- {name} lease file:\n{}\n",
            self.log(name),
            client.lease_file()
        )
    }

    /// Starts `dhcrelay -6` (named `dhcrelay`) in a role's namespace, relaying from the
    /// clients on `downstream` to `upstreams` (`ADDRESS%INTERFACE`), and waits until it relays.
    pub fn start_dhcrelay(&mut self, role: &str, downstream: &str, upstreams: &[String]) {
        require_tools(&["dhcrelay"]);
        let command = relay::dhcrelay(self.netns(role), downstream, upstreams);
        self.start(command, "dhcrelay");
        self.wait_for_log("dhcrelay", relay::READY, Duration::from_secs(10));
    }

    /// Starts `perfdhcp -6` (named `perfdhcp`) in a role's namespace; its report is in its
    /// log once it ends (see [`crate::perfdhcp::Report`]).
    pub fn start_perfdhcp(&mut self, role: &str, perfdhcp: &Perfdhcp<'_>) {
        require_tools(&["perfdhcp"]);
        let command = perfdhcp.command(self.netns(role));
        self.start(command, "perfdhcp");
    }

    /// Starts tcpdump on an interface of a role, writing DHCPv6 client/server traffic to
    /// `NAME.pcap`; returns the capture's path once tcpdump listens.
    pub fn start_capture(&mut self, role: &str, interface: &str, name: &str) -> PathBuf {
        self.start_capture_of(role, interface, name, capture::CLIENTS_AND_SERVERS)
    }

    /// As [`Lab::start_capture`], of the traffic `filter` selects (see [`capture`]).
    pub fn start_capture_of(
        &mut self,
        role: &str,
        interface: &str,
        name: &str,
        filter: &[&str],
    ) -> PathBuf {
        require_tools(&["tcpdump", "tshark"]);
        let file = self.path(&format!("{name}.pcap"));
        let command = capture::tcpdump(self.netns(role), interface, &file, filter);
        self.start(command, name);
        self.wait_for_log(name, "listening on", Duration::from_secs(10));
        file
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for client in &self.dhclients {
            process::kill_pid_file(&client.pid);
        }
        // Processes first (SIGTERM, then SIGKILL), then the namespaces they ran in.
        self.background.clear();
        for daemon in &mut self.daemons {
            if let Some(mut process) = daemon.process.take() {
                process.kill();
            }
        }
        self.roles.clear();
        if !thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("kept {} for a look", self.dir.display());
        }
    }
}
