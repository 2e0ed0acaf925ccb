//! A network built for one test: network namespaces joined by veth pairs, the daemon and the
//! client-side tools (dhclient, dhcrelay, perfdhcp, tcpdump) started in them, and a scratch
//! folder. Everything is stopped and removed in `Drop` (see dora's `bin/tests/common/env.rs`).
//!
//! The tests need root and the ISC/Kea tools; a missing tool fails the test, it never skips.

#![allow(dead_code)] // Each test binary uses its own part of the harness.

use std::fs;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The daemon under test.
pub const DAEMON: &str = env!("CARGO_BIN_EXE_xdhcp6d");

/// Where the daemon serves its metrics, inside the server namespace.
pub const METRICS: &str = "[::1]:9547";

/// The datapath the daemon runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Datapath {
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

/// Runs a command, failing the test with its output when it cannot start or fails.
pub fn run(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
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
    for tool in tools {
        let found = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
            .unwrap_or(false);
        assert!(
            found,
            "{tool} is not installed (needed by this test; see the xtask test prerequisites)"
        );
    }
}

/// A process started in the background by a test, with its output in a log file.
struct Background {
    name: String,
    child: Child,
    log: PathBuf,
}

/// A daemon started by a test, by name (`server` for the single daemon of most tests).
struct Daemon {
    name: String,
    ns: String,
    child: Option<Child>,
    log: PathBuf,
}

/// The name of the daemon that `start_daemon` and its companions manage.
const SERVER: &str = "server";

/// Namespaces, veth pairs, bridges, processes and a scratch folder; removed in `Drop`.
pub struct Lab {
    dir: PathBuf,
    id: u32,
    namespaces: Vec<String>,
    daemons: Vec<Daemon>,
    background: Vec<Background>,
    pid_files: Vec<PathBuf>,
}

impl Lab {
    /// An empty lab named after the test (`tag`), with one namespace per role.
    pub fn new(tag: &str, roles: &[&str]) -> Self {
        require_tools(&["ip", "ethtool", "sysctl"]);
        let id = std::process::id();
        let dir = std::env::temp_dir().join(format!("xdhcp6d-{tag}-{id}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let mut lab = Self {
            dir,
            id,
            namespaces: Vec::new(),
            daemons: Vec::new(),
            background: Vec::new(),
            pid_files: Vec::new(),
        };
        for role in roles {
            let ns = lab.ns(role);
            // Left over by a test that was killed: start clean.
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
            run("ip", &["netns", "add", &ns]);
            lab.namespaces.push(ns.clone());
            // No duplicate address detection: the addresses are usable at once (dhclient
            // binds to a tentative link-local address otherwise and fails).
            for key in [
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            ] {
                run("ip", &["netns", "exec", &ns, "sysctl", "-qw", key]);
            }
            run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        }
        lab
    }

    /// The namespace of a role.
    pub fn ns(&self, role: &str) -> String {
        format!("xd6{role}{}", self.id)
    }

    /// A path in the scratch folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Joins two namespaces with a veth pair and brings both ends up.
    pub fn veth(&self, (role_a, if_a): (&str, &str), (role_b, if_b): (&str, &str)) {
        let (ns_a, ns_b) = (self.ns(role_a), self.ns(role_b));
        run(
            "ip",
            &[
                "-n", &ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns",
                &ns_b,
            ],
        );
        for (ns, interface) in [(&ns_a, if_a), (&ns_b, if_b)] {
            run("ip", &["-n", ns, "link", "set", interface, "up"]);
            // veth leaves UDP checksums to "hardware" (CHECKSUM_PARTIAL), so a frame read raw
            // through AF_XDP carries an unfinished checksum and is dropped as bad. Real NICs
            // hand over finished checksums; have the kernels finish theirs here.
            run(
                "ip",
                &["netns", "exec", ns, "ethtool", "-K", interface, "tx", "off"],
            );
        }
        // Clients (perfdhcp) bind to the link-local address, which comes with the carrier.
        for (ns, interface) in [(&ns_a, if_a), (&ns_b, if_b)] {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let output = run(
                    "ip",
                    &[
                        "-n", ns, "-6", "addr", "show", "dev", interface, "scope", "link",
                    ],
                );
                if String::from_utf8_lossy(&output.stdout).contains("fe80::") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{interface} in {ns} has no link-local address"
                );
                thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Adds an address (`2001:db8::1/64`) to an interface, usable at once.
    pub fn address(&self, role: &str, interface: &str, cidr: &str) {
        run(
            "ip",
            &[
                "-n",
                &self.ns(role),
                "addr",
                "add",
                cidr,
                "dev",
                interface,
                "nodad",
            ],
        );
    }

    /// Adds a bridge (a switch: no STP, no forwarding delay, no MLD snooping, so that
    /// multicast reaches every port at once) to a role's namespace and brings it up.
    pub fn bridge(&self, role: &str, bridge: &str) {
        let ns = self.ns(role);
        run(
            "ip",
            &[
                "-n",
                &ns,
                "link",
                "add",
                bridge,
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
                "mcast_snooping",
                "0",
            ],
        );
        run("ip", &["-n", &ns, "link", "set", bridge, "up"]);
    }

    /// Makes an interface of a role a port of a bridge in the same namespace.
    pub fn attach(&self, role: &str, interface: &str, bridge: &str) {
        run(
            "ip",
            &[
                "-n",
                &self.ns(role),
                "link",
                "set",
                interface,
                "master",
                bridge,
            ],
        );
    }

    /// The global IPv6 addresses of an interface of a role.
    pub fn global_addresses(&self, role: &str, interface: &str) -> Vec<Ipv6Addr> {
        let output = run(
            "ip",
            &[
                "-n",
                &self.ns(role),
                "-6",
                "-o",
                "addr",
                "show",
                "dev",
                interface,
                "scope",
                "global",
            ],
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                words.find(|word| *word == "inet6")?;
                words.next()?.split('/').next()?.parse().ok()
            })
            .collect()
    }

    /// Runs a command in a role's namespace and returns its output, whatever its status.
    pub fn exec(&self, role: &str, args: &[&str]) -> Output {
        let ns = self.ns(role);
        let mut full = vec!["netns", "exec", &ns];
        full.extend_from_slice(args);
        Command::new("ip")
            .args(&full)
            .output()
            .unwrap_or_else(|error| panic!("cannot run {args:?}: {error}"))
    }

    /// Starts a command in a role's namespace in the background, its output in `NAME.log`.
    pub fn spawn(&mut self, role: &str, name: &str, args: &[&str]) {
        require_tools(&args[..1]);
        let log = self.path(&format!("{name}.log"));
        let file = fs::File::create(&log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(role)])
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {args:?}: {error}"));
        self.background.push(Background {
            name: name.to_owned(),
            child,
            log,
        });
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
            let process = self.process(name);
            if let Some(status) = process.child.try_wait().unwrap() {
                panic!("{name} exited with {status} before saying {text:?}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not say {text:?} in {timeout:?}:\n{log}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn process(&mut self, name: &str) -> &mut Background {
        self.background
            .iter_mut()
            .find(|process| process.name == name)
            .unwrap_or_else(|| panic!("no process {name}"))
    }

    /// Waits for a background process to exit on its own, then returns its status and log.
    pub fn wait(&mut self, name: &str, timeout: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.process(name).child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let log = self.log(name);
                panic!("{name} still runs after {timeout:?}:\n{log}");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let index = self
            .background
            .iter()
            .position(|process| process.name == name)
            .unwrap();
        let process = self.background.remove(index);
        (status, fs::read_to_string(process.log).unwrap_or_default())
    }

    /// Sends a signal (`-INT`, `-TERM`) to a background process and waits for it to exit.
    pub fn stop(&mut self, name: &str, signal: &str) -> (ExitStatus, String) {
        // `ip netns exec` execs the command, so the child's pid is the command's.
        let pid = self.process(name).child.id().to_string();
        let _ = Command::new("kill").args([signal, &pid]).output();
        self.wait(name, Duration::from_secs(10))
    }

    /// Starts the daemon in a role's namespace and waits until it serves; `log` names its
    /// log file, so that a restart keeps the first log.
    pub fn start_daemon(&mut self, role: &str, config: &str, options: &DaemonOptions<'_>) {
        self.start_server(SERVER, role, config, options);
    }

    /// Starts one of several daemons (`name`, its configuration in `NAME.toml`) in a role's
    /// namespace and waits until it serves.
    pub fn start_server(
        &mut self,
        name: &str,
        role: &str,
        config: &str,
        options: &DaemonOptions<'_>,
    ) {
        assert!(
            self.daemons
                .iter()
                .all(|daemon| daemon.name != name || daemon.child.is_none()),
            "the daemon {name} runs already"
        );
        self.daemons.retain(|daemon| daemon.name != name);
        let config_path = self.path(&format!("{name}.toml"));
        fs::write(&config_path, config).unwrap();
        let log_path = self.path(&format!("{}.log", options.log));
        let ns = self.ns(role);
        let log = fs::File::create(&log_path).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns, DAEMON, "run", "--config"])
            .arg(&config_path)
            .args(options.datapath.args())
            .args(["--durability", options.durability])
            .args(["--metrics", METRICS, "--journal"])
            .arg(options.journal)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the daemon starts");
        self.daemons.push(Daemon {
            name: name.to_owned(),
            ns,
            child: Some(child),
            log: log_path,
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.server_log(name);
            if log.contains("serving") {
                return;
            }
            if let Some(status) = self
                .daemon(name)
                .child
                .as_mut()
                .and_then(|d| d.try_wait().unwrap())
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
        let mut child = self.daemon(name).child.take().expect("the daemon runs");
        // `ip netns exec` execs the daemon, so the child's pid is the daemon's.
        run("kill", &["-TERM", &child.id().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon {name} ignored SIGTERM"
            );
            thread::sleep(Duration::from_millis(50));
        };
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
        let mut child = self.daemon(name).child.take().expect("the daemon runs");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Sends a signal (`-STOP`, `-CONT`) to the running daemon `name`.
    pub fn signal_server(&mut self, name: &str, signal: &str) {
        let child = self.daemon(name).child.as_ref().expect("the daemon runs");
        run("kill", &[signal, &child.id().to_string()]);
    }

    /// The daemon's metrics, as `name{labels} value` lines.
    pub fn metrics(&self) -> String {
        self.server_metrics(SERVER)
    }

    /// The metrics of the daemon `name`.
    pub fn server_metrics(&self, name: &str) -> String {
        require_tools(&["curl"]);
        let ns = &self
            .daemons
            .iter()
            .find(|daemon| daemon.name == name)
            .unwrap_or_else(|| panic!("no daemon {name}"))
            .ns;
        let url = format!("http://{METRICS}/metrics");
        let output = run(
            "ip",
            &[
                "netns",
                "exec",
                ns,
                "curl",
                "-sS",
                "-g",
                "--max-time",
                "5",
                &url,
            ],
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
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

    /// Runs `dhclient -6 -1` (with `extra` flags) on an interface of a role until it has a
    /// lease, stops it, and returns its lease file. Its script is [`DHCLIENT_SCRIPT`], as for
    /// [`Lab::start_dhclient`].
    pub fn dhclient(&mut self, role: &str, interface: &str, name: &str, extra: &[&str]) -> String {
        require_tools(&["dhclient", "timeout"]);
        let leases = self.path(&format!("{name}.leases"));
        let pid = self.path(&format!("{name}.pid"));
        self.pid_files.push(pid.clone());
        let leases_arg = leases.display().to_string();
        let pid_arg = pid.display().to_string();
        let script = self.dhclient_script(name);
        let mut args = vec!["timeout", "30", "dhclient", "-6"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-v", "-1", "-lf", &leases_arg, "-pf", &pid_arg]);
        args.extend_from_slice(&["-sf", &script, interface]);
        let output = self.exec(role, &args);
        let text = fs::read_to_string(&leases).unwrap_or_default();
        assert!(
            output.status.success(),
            "dhclient {extra:?} failed: {}\n{}\nlease file:\n{text}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.daemon_logs()
        );
        // dhclient went to the background to renew; the test needs only the lease.
        kill_pid_file(&pid);
        text
    }

    /// Starts `dhclient -6 -d` (with `extra` flags such as `-N -P`) on an interface of a role
    /// and leaves it running: it solicits, binds, renews and rebinds like a real host. Its
    /// log is `NAME.log`, its lease file `NAME.leases`, and its script (see
    /// [`DHCLIENT_SCRIPT`]) adds and removes its addresses on the interface and writes one
    /// line per call to `NAME.events` (see [`ScriptEvent`]).
    pub fn start_dhclient(&mut self, role: &str, interface: &str, name: &str, extra: &[&str]) {
        require_tools(&["dhclient"]);
        let script = self.dhclient_script(name);
        let leases = self.path(&format!("{name}.leases")).display().to_string();
        let pid = self.path(&format!("{name}.pid"));
        self.pid_files.push(pid.clone());
        let pid = pid.display().to_string();
        let mut args = vec!["dhclient", "-6", "-d", "-v"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-lf", &leases, "-pf", &pid, "-sf", &script, interface]);
        self.spawn(role, name, &args);
    }

    /// Writes [`DHCLIENT_SCRIPT`] for the dhclient `name` (its calls go to `NAME.events`)
    /// and returns its path. The script keeps dhclient away from the machine's own files:
    /// Debian's dhclient-script would write the DNS options to /etc/resolv.conf, which
    /// `ip netns exec` shares with the host.
    fn dhclient_script(&self, name: &str) -> String {
        let script = self.path(&format!("{name}.script"));
        let events = self.path(&format!("{name}.events"));
        fs::write(
            &script,
            DHCLIENT_SCRIPT.replace("@EVENTS@", &events.display().to_string()),
        )
        .unwrap();
        let script = script.display().to_string();
        run("chmod", &["+x", &script]);
        script
    }

    /// The calls of a dhclient's script so far (see [`Lab::start_dhclient`]).
    pub fn dhclient_events(&self, name: &str) -> Vec<ScriptEvent> {
        fs::read_to_string(self.path(&format!("{name}.events")))
            .unwrap_or_default()
            .lines()
            .filter_map(ScriptEvent::parse)
            .collect()
    }

    /// What a dhclient started by [`Lab::start_dhclient`] did: its log, its script's calls
    /// and its lease file, for failure messages.
    pub fn dhclient_report(&self, name: &str) -> String {
        let events = fs::read_to_string(self.path(&format!("{name}.events"))).unwrap_or_default();
        let leases = fs::read_to_string(self.path(&format!("{name}.leases"))).unwrap_or_default();
        format!(
            "--- {name} log:\n{}\n--- {name} script calls:\n{events}\n--- {name} lease file:\n{leases}\n",
            self.log(name)
        )
    }

    /// Starts tcpdump on an interface of a role, writing DHCPv6 client/server traffic to
    /// `NAME.pcap`; returns the capture's path.
    pub fn start_capture(&mut self, role: &str, interface: &str, name: &str) -> PathBuf {
        require_tools(&["tcpdump", "tshark"]);
        let capture = self.path(&format!("{name}.pcap"));
        let capture_arg = capture.display().to_string();
        self.spawn(
            role,
            name,
            &[
                "tcpdump",
                "-i",
                interface,
                "-n",
                // Frames are not left in an unretired ring block when tcpdump stops.
                "--immediate-mode",
                "-U",
                "-w",
                &capture_arg,
                "udp",
                "port",
                "546",
                "or",
                "udp",
                "port",
                "547",
            ],
        );
        self.wait_for_log(name, "listening on", Duration::from_secs(10));
        capture
    }
}

/// The script given to dhclient by [`Lab::start_dhclient`]. It logs each call (time, reason,
/// the new and old address or prefix with lifetimes, the server's DUID) and, like Debian's
/// dhclient-script, configures the addresses dhclient binds, without touching files outside
/// the test (no resolv.conf).
pub const DHCLIENT_SCRIPT: &str = r#"#!/bin/sh
echo "time=$(date +%s.%N) reason=$reason address=$new_ip6_address old_address=$old_ip6_address prefix=$new_ip6_prefix old_prefix=$old_ip6_prefix preferred=$new_preferred_life valid=$new_max_life server=$new_dhcp6_server_id" >> '@EVENTS@'
case "$reason" in
    PREINIT6)
        ip link set dev "$interface" up
        ;;
    BOUND6|RENEW6|REBIND6|REBOOT6)
        if [ -n "$old_ip6_address" ] && [ "$old_ip6_address" != "$new_ip6_address" ]; then
            ip -6 addr del "$old_ip6_address/128" dev "$interface" 2>/dev/null
        fi
        if [ -n "$new_ip6_address" ] && [ "$new_max_life" = 0 ]; then
            ip -6 addr del "$new_ip6_address/128" dev "$interface" 2>/dev/null
        elif [ -n "$new_ip6_address" ]; then
            ip -6 addr replace "$new_ip6_address/128" dev "$interface" nodad \
                valid_lft "$new_max_life" preferred_lft "$new_preferred_life"
        fi
        ;;
    DEPREF6)
        if [ -n "$cur_ip6_address" ]; then
            ip -6 addr change "$cur_ip6_address/128" dev "$interface" preferred_lft 0
        fi
        ;;
    EXPIRE6|RELEASE6|STOP6)
        if [ -n "$old_ip6_address" ]; then
            ip -6 addr del "$old_ip6_address/128" dev "$interface" 2>/dev/null
        fi
        ;;
esac
exit 0
"#;

/// One call of [`DHCLIENT_SCRIPT`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScriptEvent {
    /// Seconds since the epoch.
    pub time: f64,
    pub reason: String,
    pub address: Option<Ipv6Addr>,
    pub old_address: Option<Ipv6Addr>,
    /// `2001:db8:100::/56`.
    pub prefix: Option<String>,
    pub old_prefix: Option<String>,
    pub preferred: Option<u32>,
    pub valid: Option<u32>,
    pub server: String,
}

impl ScriptEvent {
    fn parse(line: &str) -> Option<Self> {
        let mut event = Self::default();
        for field in line.split_whitespace() {
            let (key, value) = field.split_once('=')?;
            let text = (!value.is_empty()).then(|| value.to_owned());
            match key {
                "time" => event.time = value.parse().ok()?,
                "reason" => event.reason = value.to_owned(),
                "address" => event.address = value.parse().ok(),
                "old_address" => event.old_address = value.parse().ok(),
                "prefix" => event.prefix = text,
                "old_prefix" => event.old_prefix = text,
                "preferred" => event.preferred = value.parse().ok(),
                "valid" => event.valid = value.parse().ok(),
                "server" => event.server = value.to_owned(),
                _ => {}
            }
        }
        Some(event)
    }
}

/// One DHCPv6 message of a capture, as tshark decodes it.
#[derive(Clone, Debug, Default)]
pub struct CapturedMessage {
    /// Seconds since the epoch.
    pub time: f64,
    /// The message type (1 Solicit, 2 Advertise, 3 Request, 5 Renew, 6 Rebind, 7 Reply).
    pub msg_type: u8,
    pub xid: String,
    /// The Preference option, if any.
    pub preference: Option<u8>,
    /// IA Address options: address, preferred and valid lifetime.
    pub addresses: Vec<(Ipv6Addr, u32, u32)>,
    /// IA Prefix options: `prefix/length`, preferred and valid lifetime.
    pub prefixes: Vec<(String, u32, u32)>,
}

/// The DHCPv6 messages between client and server ports in a capture, in order.
pub fn captured_messages(capture: &Path) -> Vec<CapturedMessage> {
    let capture = capture.display().to_string();
    let fields = [
        "frame.time_epoch",
        "dhcpv6.msgtype",
        "dhcpv6.xid",
        "dhcpv6.option_preference",
        "dhcpv6.iaaddr.ip",
        "dhcpv6.iaaddr.pref_lifetime",
        "dhcpv6.iaaddr.valid_lifetime",
        "dhcpv6.iaprefix.pref_addr",
        "dhcpv6.iaprefix.pref_len",
        "dhcpv6.iaprefix.pref_lifetime",
        "dhcpv6.iaprefix.valid_lifetime",
    ];
    let mut args = vec![
        "-r",
        &capture,
        "-Y",
        "dhcpv6",
        "-T",
        "fields",
        "-E",
        "separator=|",
    ];
    for field in &fields {
        args.extend_from_slice(&["-e", field]);
    }
    let output = run("tshark", &args);
    let list = |text: &str| -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let numbers = |text: &str| -> Vec<u32> {
        list(text)
            .iter()
            .filter_map(|item| item.parse().ok())
            .collect()
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let columns: Vec<&str> = line.split('|').collect();
            if columns.len() != fields.len() {
                return None;
            }
            let addresses = list(columns[4])
                .iter()
                .zip(numbers(columns[5]))
                .zip(numbers(columns[6]))
                .filter_map(|((address, preferred), valid)| {
                    Some((address.parse().ok()?, preferred, valid))
                })
                .collect();
            let prefixes = list(columns[7])
                .iter()
                .zip(list(columns[8]))
                .zip(numbers(columns[9]))
                .zip(numbers(columns[10]))
                .map(|(((prefix, length), preferred), valid)| {
                    (format!("{prefix}/{length}"), preferred, valid)
                })
                .collect();
            Some(CapturedMessage {
                time: columns[0].parse().ok()?,
                // A relayed message lists the relay type first, the client's message last.
                msg_type: list(columns[1]).last()?.parse().ok()?,
                xid: columns[2].to_owned(),
                preference: list(columns[3]).first().and_then(|p| p.parse().ok()),
                addresses,
                prefixes,
            })
        })
        .collect()
}

/// How `Lab::start_daemon` runs the daemon.
pub struct DaemonOptions<'a> {
    pub datapath: Datapath,
    pub journal: &'a Path,
    /// `always` or `batch`.
    pub durability: &'a str,
    /// The name of the log file, without `.log`.
    pub log: &'a str,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for pid in &self.pid_files {
            kill_pid_file(pid);
        }
        for process in &mut self.background {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
        for daemon in &mut self.daemons {
            if let Some(mut child) = daemon.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        if !thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("kept {} for a look", self.dir.display());
        }
    }
}

fn kill_pid_file(pid_file: &Path) {
    if let Ok(pid) = fs::read_to_string(pid_file) {
        let pid = pid.trim();
        if !pid.is_empty() {
            let _ = Command::new("kill").args(["-TERM", pid]).output();
        }
    }
    let _ = fs::remove_file(pid_file);
}

/// The token after `keyword` in a dhclient lease file (`iaaddr 2001:db8:1::5 {`).
pub fn lease_value(text: &str, keyword: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix(keyword))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
}

/// Whether `address` lies in `prefix/length`.
pub fn contains(prefix: Ipv6Addr, length: u32, address: Ipv6Addr) -> bool {
    let mask = u128::MAX.checked_shl(128 - length).unwrap_or(0);
    u128::from(prefix) & mask == u128::from(address) & mask
}

/// The rows of `xdhcp6d leases --journal J --json`.
pub fn journal_leases(journal: &Path) -> Vec<serde_json::Value> {
    let journal = journal.display().to_string();
    let output = run(DAEMON, &["leases", "--journal", &journal, "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    rows.as_array().expect("a JSON array").clone()
}

/// The sum of a metric's samples (all label sets) in a metrics text.
pub fn metric_sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|value| value as u64)
        .sum()
}
