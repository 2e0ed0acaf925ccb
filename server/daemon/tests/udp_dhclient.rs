//! ISC dhclient against `xdhcp6d run --datapath udp`, across a veth pair between two network
//! namespaces: an address (IA_NA) and a delegated prefix (IA_PD) end up in dhclient's lease
//! file and, after the daemon stops, in `xdhcp6d leases --json`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const DAEMON: &str = env!("CARGO_BIN_EXE_xdhcp6d");

/// The server's and the client's end of the veth pair (names are per namespace).
const SERVER_IF: &str = "xd6s";
const CLIENT_IF: &str = "xd6c";

/// Runs a command, failing the test with its output when it fails.
fn run(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Two namespaces joined by a veth pair, a scratch folder, and the processes started in them;
/// everything is removed in `Drop`.
struct Net {
    server_ns: String,
    client_ns: String,
    dir: PathBuf,
    daemon: Option<Child>,
    pid_files: Vec<PathBuf>,
}

impl Net {
    fn new() -> Self {
        let id = std::process::id();
        let dir = std::env::temp_dir().join(format!("xdhcp6d-udp-dhclient-{id}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let net = Self {
            server_ns: format!("xd6srv{id}"),
            client_ns: format!("xd6cli{id}"),
            dir,
            daemon: None,
            pid_files: Vec::new(),
        };
        for ns in [&net.server_ns, &net.client_ns] {
            run("ip", &["netns", "add", ns]);
            // No duplicate address detection: the link-local addresses are usable at once
            // (dhclient binds to the tentative one otherwise and fails).
            for key in [
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            ] {
                run("ip", &["netns", "exec", ns, "sysctl", "-qw", key]);
            }
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        run(
            "ip",
            &[
                "-n",
                &net.server_ns,
                "link",
                "add",
                SERVER_IF,
                "type",
                "veth",
                "peer",
                "name",
                CLIENT_IF,
                "netns",
                &net.client_ns,
            ],
        );
        run(
            "ip",
            &["-n", &net.server_ns, "link", "set", SERVER_IF, "up"],
        );
        run(
            "ip",
            &["-n", &net.client_ns, "link", "set", CLIENT_IF, "up"],
        );
        // veth leaves UDP checksums to "hardware" (CHECKSUM_PARTIAL), so a frame read raw
        // through AF_XDP carries an unfinished checksum and is dropped as bad. Real NICs hand
        // over finished checksums; have the kernels finish theirs here.
        for (ns, interface) in [(&net.server_ns, SERVER_IF), (&net.client_ns, CLIENT_IF)] {
            run(
                "ip",
                &["netns", "exec", ns, "ethtool", "-K", interface, "tx", "off"],
            );
        }
        net
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Starts the daemon in the server namespace and waits until it serves.
    fn start_daemon(&mut self, config: &Path, journal: &Path, datapath: &[&str]) {
        let log = fs::File::create(self.path("daemon.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.server_ns, DAEMON, "run", "--config"])
            .arg(config)
            .args(datapath)
            .args(["--metrics", "[::1]:9547", "--journal"])
            .arg(journal)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the daemon starts");
        self.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = fs::read_to_string(self.path("daemon.log")).unwrap_or_default();
            if log.contains("serving") {
                return;
            }
            if let Some(status) = self.daemon.as_mut().and_then(|d| d.try_wait().unwrap()) {
                panic!("the daemon exited with {status}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not start:\n{log}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and expects a clean exit.
    fn stop_daemon(&mut self) {
        let mut child = self.daemon.take().expect("the daemon runs");
        // `ip netns exec` execs the daemon, so the child's pid is the daemon's.
        run("kill", &["-TERM", &child.id().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the daemon ignored SIGTERM");
            thread::sleep(Duration::from_millis(50));
        };
        let log = fs::read_to_string(self.path("daemon.log")).unwrap_or_default();
        assert!(status.success(), "the daemon exited with {status}:\n{log}");
        assert!(log.contains("stopped"), "{log}");
    }

    /// Runs `dhclient -6 -1` (with `extra` flags) in the client namespace until it has a
    /// lease, stops it, and returns its lease file.
    fn dhclient(&mut self, name: &str, extra: &[&str]) -> String {
        let leases = self.path(&format!("{name}.leases"));
        let pid = self.path(&format!("{name}.pid"));
        self.pid_files.push(pid.clone());
        let leases_arg = leases.display().to_string();
        let pid_arg = pid.display().to_string();
        let mut args = vec![
            "netns",
            "exec",
            &self.client_ns,
            "timeout",
            "60",
            "dhclient",
            "-6",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-v", "-1", "-lf", &leases_arg, "-pf", &pid_arg, CLIENT_IF]);
        let output = Command::new("ip").args(&args).output().unwrap();
        let text = fs::read_to_string(&leases).unwrap_or_default();
        assert!(
            output.status.success(),
            "dhclient {extra:?} failed: {}\n{}\nlease file:\n{text}\ndaemon log:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            fs::read_to_string(self.path("daemon.log")).unwrap_or_default()
        );
        // dhclient went to the background to renew; this test needs only the lease.
        kill_pid_file(&pid);
        text
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for pid in &self.pid_files {
            kill_pid_file(pid);
        }
        if let Some(mut daemon) = self.daemon.take() {
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
        for ns in [&self.server_ns, &self.client_ns] {
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
fn lease_value(text: &str, keyword: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix(keyword))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
}

fn config(server_if: &str) -> String {
    format!(
        r#"[server]
duid = "00:01:00:01:2e:00:00:01:02:00:00:00:00:0a"
preference = 255
salt = "udp-dhclient"
t1 = 100
t2 = 160
preferred-lifetime = 200
valid-lifetime = 300

[[link]]
name = "access-1"
interfaces = ["{server_if}"]

[[link.pool]]
prefix = "2001:db8:1::/64"
split = "1/2"

[[link.pd-pool]]
prefix = "2001:db8:100::/48"
delegated-length = 56
split = "1/2"
"#
    )
}

#[test]
#[ignore = "needs root, network namespaces and dhclient; run by cargo xtask test"]
fn dhclient_gets_an_address_and_a_prefix_over_udp() {
    dhclient_scenario(&["--datapath", "udp"]);
}

#[test]
#[ignore = "needs root, network namespaces, dhclient and the eBPF object; run by cargo xtask test"]
fn dhclient_gets_an_address_and_a_prefix_over_xdp() {
    // The XDP object comes from XDHCP6_EBPF_OBJECT (set by `cargo xtask test`) or is embedded.
    dhclient_scenario(&["--datapath", "xdp", "--xdp-mode", "skb"]);
}

/// Address, prefix, `leases --json`, then a restart that replays both from the journal.
fn dhclient_scenario(datapath: &[&str]) {
    let mut net = Net::new();
    let config_path = net.path("server.toml");
    fs::write(&config_path, config(SERVER_IF)).unwrap();
    let journal = net.path("leases.journal");
    net.start_daemon(&config_path, &journal, datapath);

    let na = net.dhclient("na", &[]);
    let address = lease_value(&na, "iaaddr ").unwrap_or_else(|| panic!("no address:\n{na}"));
    let parsed: std::net::Ipv6Addr = address.parse().unwrap();
    // Split "1/2": this server allocates from the first half of the /64.
    assert_eq!(parsed.segments()[..4], [0x2001, 0xdb8, 1, 0], "{address}");
    assert!(
        parsed.segments()[4] < 0x8000,
        "{address} is outside 2001:db8:1::/65"
    );

    let pd = net.dhclient("pd", &["-P"]);
    let prefix = lease_value(&pd, "iaprefix ").unwrap_or_else(|| panic!("no prefix:\n{pd}"));
    assert!(
        prefix.starts_with("2001:db8:1") && prefix.ends_with("/56"),
        "{prefix}"
    );

    net.stop_daemon();

    let journal_arg = journal.display().to_string();
    let output = run(DAEMON, &["leases", "--journal", &journal_arg, "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = rows.as_array().expect("a JSON array");
    let find = |kind: &str, lease: &str| {
        rows.iter()
            .find(|row| row["kind"] == kind && row["lease"] == lease && row["state"] == "bound")
    };
    let na_row = find("na", &address).unwrap_or_else(|| panic!("{address} not in {rows:#?}"));
    assert_eq!(na_row["valid"], 300);
    let pd_row = find("pd", &prefix).unwrap_or_else(|| panic!("{prefix} not in {rows:#?}"));
    assert_eq!(pd_row["link"], "0");

    // The table form lists both too, with link names from the configuration.
    let config_arg = config_path.display().to_string();
    let output = run(
        DAEMON,
        &["leases", "--journal", &journal_arg, "--config", &config_arg],
    );
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains(&address) && table.contains(&prefix) && table.contains("access-1"),
        "{table}"
    );

    // A restart replays both leases, and the client (same DUID, from its lease file) gets
    // its address back.
    net.start_daemon(&config_path, &journal, datapath);
    let log = fs::read_to_string(net.path("daemon.log")).unwrap();
    assert!(
        log.contains("leases=2 loaded=2 conflicts=0 torn_bytes=0"),
        "{log}"
    );
    let again = net.dhclient("na", &[]);
    assert!(again.contains(&format!("iaaddr {address} ")), "{again}");
    net.stop_daemon();
}
