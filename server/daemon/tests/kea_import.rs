//! A Kea-to-xdhcp6 cut-over on files Kea itself wrote: Debian's `kea-dhcp6` serves two links
//! in a namespace (memfile lease file, a server DUID it generates and persists), ISC dhclient
//! takes an address and a prefix and perfdhcp a batch of addresses; Kea stops,
//! `xdhcp6d import-kea` reads Kea's configuration, lease file and server-id file, xdhcp6d
//! starts in Kea's place, and the clients' Renews (to Kea's Server Identifier) are answered
//! with the same addresses and prefixes.

mod common;

use std::collections::BTreeMap;
use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use common::{DAEMON, DaemonOptions, Datapath, Lab, ScriptEvent, perfdhcp::Perfdhcp, run};
use xdhcp6_engine::Destination;
use xdhcp6_engine::proto::{MessageType, StatusCode};
use xdhcp6_engine::testing::{Client, ReplyView};

/// The server's ends of the two links, and the clients' ends (names are per namespace).
const SERVER_DHCLIENT_IF: &str = "xd6ka";
const SERVER_PERF_IF: &str = "xd6kb";
const DHCLIENT_IF: &str = "xd6kc";
const PERF_IF: &str = "xd6kp";

/// Kea's configuration as an operator writes it, comments included. T1 is short, so that
/// dhclient renews a few seconds after the cut-over.
fn kea_config(lab: &Lab) -> String {
    let leases = lab.path("kea-leases6.csv");
    let data = lab.path("");
    format!(
        r#"// kea-dhcp6 for the import test.
{{
  "Dhcp6": {{
    "interfaces-config": {{ "interfaces": [ "{SERVER_DHCLIENT_IF}", "{SERVER_PERF_IF}" ] }},
    # Kea generates its DUID and keeps it here, as /var/lib/kea on a real server.
    "data-directory": "{data}",
    "lease-database": {{ "type": "memfile", "name": "{leases}", "lfc-interval": 0 }},
    "renew-timer": 4,
    "rebind-timer": 100,
    "preferred-lifetime": 200,
    "valid-lifetime": 300,
    "option-data": [ {{ "name": "dns-servers", "data": "2001:db8:53::1" }} ],
    /* Two links: dhclient's with addresses and prefixes, perfdhcp's with addresses. */
    "subnet6": [
      {{
        "id": 11,
        "subnet": "2001:db8:1::/64",
        "interface": "{SERVER_DHCLIENT_IF}",
        "pools": [ {{ "pool": "2001:db8:1::1000 - 2001:db8:1::1fff" }} ],
        "pd-pools": [ {{ "prefix": "2001:db8:100::", "prefix-len": 40, "delegated-len": 56 }} ]
      }},
      {{
        "id": 12,
        "subnet": "2001:db8:2::/64",
        "interface": "{SERVER_PERF_IF}",
        "pools": [ {{ "pool": "2001:db8:2::100-2001:db8:2::4ff" }} ]
      }}
    ],
    "loggers": [ {{ "name": "kea-dhcp6", "severity": "INFO",
                   "output_options": [ {{ "output": "stderr" }} ] }} ]
  }}
}}
"#,
        data = data.display().to_string().trim_end_matches('/'),
        leases = leases.display(),
    )
}

/// One active lease of Kea's lease file (the last line of its address wins).
#[derive(Clone, Debug)]
struct KeaLease {
    address: Ipv6Addr,
    duid: Vec<u8>,
    iaid: u32,
    subnet: u32,
    lease_type: u8,
}

fn kea_leases(path: &Path) -> Vec<KeaLease> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let column = |name: &str| header.iter().position(|c| *c == name).unwrap();
    let mut latest = BTreeMap::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let field = |name: &str| fields[column(name)];
        let lease = KeaLease {
            address: field("address").parse().unwrap(),
            duid: field("duid")
                .split(':')
                .map(|byte| u8::from_str_radix(byte, 16).unwrap())
                .collect(),
            iaid: field("iaid").parse().unwrap(),
            subnet: field("subnet_id").parse().unwrap(),
            lease_type: field("lease_type").parse().unwrap(),
        };
        let live = field("valid_lifetime") != "0" && field("state") == "0";
        latest.insert((lease.lease_type, lease.address), live.then_some(lease));
    }
    latest.into_values().flatten().collect()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Waits until dhclient's script saw `want` since `since`, or fails with its report.
fn wait_for_event(
    lab: &Lab,
    since: f64,
    timeout: Duration,
    want: impl Fn(&ScriptEvent) -> bool,
) -> ScriptEvent {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(event) = lab
            .dhclient_events("dhc")
            .into_iter()
            .find(|event| event.time >= since && want(event))
        {
            return event;
        }
        assert!(
            Instant::now() < deadline,
            "dhclient did not get there in {timeout:?}:\n{}\n{}\nkea:\n{}",
            lab.dhclient_report("dhc"),
            lab.daemon_logs(),
            lab.log("kea")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs root, network namespaces, kea-dhcp6, perfdhcp and dhclient; run by cargo xtask test"]
fn clients_of_kea_keep_their_leases_after_import_kea() {
    common::require_tools(&["kea-dhcp6", "perfdhcp", "dhclient", "env"]);
    let mut lab = common::lab("kea-import", &["srv", "cli", "perf"]);
    lab.veth(("srv", SERVER_DHCLIENT_IF), ("cli", DHCLIENT_IF));
    lab.veth(("srv", SERVER_PERF_IF), ("perf", PERF_IF));
    lab.address("srv", SERVER_DHCLIENT_IF, "2001:db8:1::1/64");
    lab.address("srv", SERVER_PERF_IF, "2001:db8:2::1/64");

    // Kea, as Debian installs it, with its pid and lock files in the lab.
    let kea_json = lab.path("kea-dhcp6.json");
    std::fs::write(&kea_json, kea_config(&lab)).unwrap();
    std::fs::create_dir_all("/run/kea").unwrap();
    let dir = lab.path("").display().to_string();
    let pid_dir = format!("KEA_PIDFILE_DIR={dir}");
    let lock_dir = format!("KEA_LOCKFILE_DIR={dir}");
    let kea_arg = kea_json.display().to_string();
    lab.spawn(
        "srv",
        "kea",
        &["env", &pid_dir, &lock_dir, "kea-dhcp6", "-c", &kea_arg],
    );
    lab.wait_for_log("kea", "DHCP6_STARTED", Duration::from_secs(15));

    // A real host: address and prefix, renewing every T1 (4 s).
    lab.start_dhclient("cli", DHCLIENT_IF, "dhc", &["-N", "-P"]);
    let bound_na = wait_for_event(&lab, 0.0, Duration::from_secs(20), |e| {
        e.reason == "BOUND6" && e.address.is_some()
    });
    let bound_pd = wait_for_event(&lab, 0.0, Duration::from_secs(20), |e| {
        e.reason == "BOUND6" && e.prefix.is_some()
    });
    let address = bound_na.address.unwrap();
    let prefix = bound_pd.prefix.clone().unwrap();

    // A batch of clients.
    lab.start_perfdhcp(
        "perf",
        &Perfdhcp {
            interface: PERF_IF,
            rate: 20,
            period: 2,
            clients: 30,
            unique: false,
        },
    );
    let (_, perf_log) = lab.wait("perfdhcp", Duration::from_secs(30));

    // The cut-over: Kea stops, its files are imported, xdhcp6d starts in its place.
    let (status, kea_log) = lab.stop("kea", "-TERM");
    assert!(
        status.success(),
        "kea-dhcp6 exited with {status}:\n{kea_log}"
    );
    let csv = lab.path("kea-leases6.csv");
    let server_id = lab.path("kea-dhcp6-serverid");
    let leases = kea_leases(&csv);
    let batch: Vec<KeaLease> = leases
        .iter()
        .filter(|lease| lease.subnet == 12 && lease.lease_type == 0)
        .cloned()
        .collect();
    assert!(
        batch.len() >= 5,
        "perfdhcp got {} leases from Kea:\n{perf_log}",
        batch.len()
    );
    let out = lab.path("imported");
    let output = run(
        DAEMON,
        &[
            "import-kea",
            "--config",
            &kea_arg,
            "--leases",
            &csv.display().to_string(),
            "--server-id-file",
            &server_id.display().to_string(),
            "--output",
            &out.display().to_string(),
        ],
    );
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "import-kea failed:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Every active lease is carried: dhclient's address and prefix, and the batch.
    assert!(
        report.contains(&format!("Leases: {} imported", leases.len())),
        "{report}"
    );
    assert!(report.contains(", 0 left out ("), "{report}");
    let toml = std::fs::read_to_string(out.join("xdhcp6.toml")).unwrap();
    let kea_duid = std::fs::read_to_string(&server_id).unwrap();
    assert!(
        toml.contains(&format!("duid = \"{}\"", kea_duid.trim().to_lowercase())),
        "Kea's server DUID {kea_duid} is not the imported one:\n{toml}"
    );
    let journal = out.join("leases.journal");
    lab.start_daemon(
        "srv",
        &toml,
        &DaemonOptions {
            datapath: Datapath::Udp,
            journal: &journal,
            durability: "always",
            log: "daemon",
        },
    );

    // From here on only xdhcp6d answers; it serves every lease Kea had.
    let switched = now();
    let metrics = lab.metrics();
    assert_eq!(
        common::metric_sum(&metrics, "xdhcp6_leases"),
        leases.len() as u64,
        "{metrics}"
    );

    // dhclient renews with Kea's Server Identifier; xdhcp6d answers with the same address and
    // prefix (a Rebind would mean the Renew went unanswered).
    let renewed_na = wait_for_event(&lab, switched, Duration::from_secs(30), |e| {
        (e.reason == "RENEW6" || e.reason == "REBIND6") && e.address.is_some()
    });
    assert_eq!(
        renewed_na.reason,
        "RENEW6",
        "{}",
        lab.dhclient_report("dhc")
    );
    assert_eq!(
        renewed_na.address,
        Some(address),
        "{}",
        lab.dhclient_report("dhc")
    );
    assert!(renewed_na.valid.unwrap_or(0) > 0, "{renewed_na:?}");
    let renewed_pd = wait_for_event(&lab, switched, Duration::from_secs(30), |e| {
        (e.reason == "RENEW6" || e.reason == "REBIND6") && e.prefix.is_some()
    });
    assert_eq!(
        renewed_pd.reason,
        "RENEW6",
        "{}",
        lab.dhclient_report("dhc")
    );
    assert_eq!(renewed_pd.prefix.as_deref(), Some(prefix.as_str()));
    assert!(renewed_pd.valid.unwrap_or(0) > 0, "{renewed_pd:?}");

    // perfdhcp's clients are gone; their Renews, with the DUIDs and IAIDs of Kea's lease
    // file and Kea's Server Identifier, are answered with their addresses.
    let kea_duid: Vec<u8> = kea_duid
        .trim()
        .split(':')
        .map(|byte| u8::from_str_radix(byte, 16).unwrap())
        .collect();
    let answers = lab
        .netns("perf")
        .run(move || {
            let index = xdhcp6_datapath::interface_index(PERF_IF).unwrap();
            let socket = UdpSocket::bind("[::]:546").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let servers = SocketAddrV6::new("ff02::1:2".parse().unwrap(), 547, 0, index);
            // A client that never had the first address asks for it: it is taken.
            let thief = KeaLease {
                duid: vec![0, 3, 0, 1, 2, 0, 0, 0, 0xee, 1],
                ..batch[0].clone()
            };
            let mut answers = Vec::new();
            for (n, lease) in std::iter::once(&thief).chain(&batch).enumerate() {
                let client = Client::with_duid(&lease.duid);
                let xid = 0x4b_0000 + n as u32;
                let renew = client
                    .renew(&kea_duid)
                    .xid(xid)
                    .ia_na(lease.iaid, &[lease.address])
                    .encode();
                let mut reply = None;
                'tries: for _ in 0..3 {
                    socket.send_to(&renew, servers).unwrap();
                    let deadline = Instant::now() + Duration::from_secs(1);
                    let mut buf = [0u8; 1500];
                    while Instant::now() < deadline {
                        let Ok((len, _)) = socket.recv_from(&mut buf) else {
                            continue;
                        };
                        let view = ReplyView::parse(&buf[..len], Destination::Client);
                        if view.msg_type == MessageType::Reply && view.xid == xid {
                            reply = Some(view);
                            break 'tries;
                        }
                    }
                }
                answers.push((lease.clone(), reply));
            }
            answers
        })
        .unwrap();
    let (thief, thief_reply) = &answers[0];
    let thief_reply = thief_reply.as_ref().expect("a Reply to the other client");
    assert!(
        thief_reply
            .ia_na
            .iter()
            .all(|ia| !ia.live_addrs().contains(&thief.address)),
        "{} was given to another client: {thief_reply:?}",
        thief.address
    );
    let answers = &answers[1..];
    for (lease, reply) in answers {
        let reply = reply
            .as_ref()
            .unwrap_or_else(|| panic!("no Reply to the Renew of {lease:?}\n{}", lab.daemon_log()));
        let ia = reply
            .ia_na
            .iter()
            .find(|ia| ia.iaid == lease.iaid)
            .unwrap_or_else(|| panic!("no IA_NA {} in {reply:?}", lease.iaid));
        assert_eq!(ia.status_code(), StatusCode::Success, "{lease:?}: {ia:?}");
        assert_eq!(ia.live_addrs(), [lease.address], "{lease:?}: {ia:?}");
    }
    // The Renews reached xdhcp6d as Renews to this server: none was dropped for another
    // server's identifier, none created a binding (no Solicit or Request was needed).
    let metrics = lab.metrics();
    let renews = common::metric_sum(&metrics, "xdhcp6_messages_received_total{type=\"renew\"}");
    assert!(renews >= answers.len() as u64 + 2, "{metrics}");
    for zero in [
        "xdhcp6_dropped_total{reason=\"wrong_server_id\"}",
        "xdhcp6_messages_received_total{type=\"solicit\"}",
        "xdhcp6_messages_received_total{type=\"rebind\"}",
    ] {
        assert_eq!(common::metric_sum(&metrics, zero), 0, "{zero}:\n{metrics}");
    }
    lab.stop_daemon();
}

/// `import-kea` as an operator runs it on the fixture: three files written, the report printed,
/// a second run refused without `--force`, a bad file named with its JSON path.
#[test]
fn import_kea_writes_the_configuration_the_journal_and_the_report() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/kea");
    let config = format!("{fixtures}/kea-dhcp6.json");
    let leases = format!("{fixtures}/kea-leases6.csv");
    let out = std::env::temp_dir().join(format!("xdhcp6d-kea-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let out_arg = out.display().to_string();
    let args = [
        "import-kea",
        "--config",
        &config,
        "--leases",
        &leases,
        "--output",
        &out_arg,
    ];
    let output = run(DAEMON, &args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Dhcp6.client-classes"), "{stdout}");
    assert!(stdout.contains("Leases: 4 imported"), "{stdout}");
    let toml = std::fs::read_to_string(out.join("xdhcp6.toml")).unwrap();
    assert!(toml.starts_with("# Imported from a Kea DHCPv6 configuration"));
    let report = std::fs::read_to_string(out.join("import-report.txt")).unwrap();
    assert!(stdout.starts_with(&report), "{report}");
    let check = run(
        DAEMON,
        &[
            "check-config",
            &out.join("xdhcp6.toml").display().to_string(),
        ],
    );
    assert!(check.status.success(), "{check:?}");
    let journal = out.join("leases.journal").display().to_string();
    let listed = run(
        DAEMON,
        &["leases", "--journal", &journal, "--json", "--all"],
    );
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(4), "{rows:#}");

    // `run` fails the test on a failed command; these are meant to fail.
    let output_of = |args: &[&str]| {
        std::process::Command::new(DAEMON)
            .args(args)
            .output()
            .unwrap()
    };
    let again = output_of(&args);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("--force"), "{stderr}");
    let mut forced = args.to_vec();
    forced.push("--force");
    assert!(run(DAEMON, &forced).status.success());

    let bad = out.join("bad.json");
    std::fs::write(
        &bad,
        r#"{ "Dhcp6": { "server-id": { "type": "EN", "identifier": "01" },
             "subnet6": [ { "id": 1, "subnet": "2001:db8::/64",
                            "pools": [ { "pool": "2001:db8::1-" } ] } ] } }"#,
    )
    .unwrap();
    let bad_arg = bad.display().to_string();
    let failed = output_of(&["import-kea", "-c", &bad_arg, "-o", &out_arg, "--force"]);
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains(&format!(
            "{bad_arg}: Dhcp6.subnet6[0].pools[0].pool: \"2001:db8::1-\" is not a range"
        )),
        "{stderr}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}
