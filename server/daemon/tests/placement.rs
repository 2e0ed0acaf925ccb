//! Where the daemon's threads run with `--cores`: the worker on its core, the journal writer
//! and every thread off the packet path (main, timer, control, DNS updates) on the other
//! cores the process may use, read back from /proc.

mod common;

use std::fs;
use std::time::Duration;

use common::{DAEMON, Exchange, exchange, fixtures};

const SERVER_IF: &str = "xd6plcs";
const CLIENT_IF: &str = "xd6plcc";

/// The pid of the xdhcp6d process whose command line names `journal`.
fn daemon_pid(journal: &str) -> u32 {
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if comm.trim_end() == "xdhcp6d" && cmdline.split('\0').any(|arg| arg == journal) {
            return pid;
        }
    }
    panic!("no xdhcp6d process runs with the journal {journal}");
}

/// Each thread of `pid`: its name and the cores it may run on (`Cpus_allowed_list`).
fn threads(pid: u32) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for task in fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let path = task.path();
        let comm = fs::read_to_string(path.join("comm")).unwrap_or_default();
        let status = fs::read_to_string(path.join("status")).unwrap_or_default();
        if let Some(cores) = status
            .lines()
            .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        {
            found.push((comm.trim_end().to_owned(), cores.trim().to_owned()));
        }
    }
    found
}

/// Cores as /proc writes them for one core or a run of them: "1", "0-2".
fn core_list(cores: &[usize]) -> String {
    match cores {
        [one] => one.to_string(),
        [first, .., last] if last - first + 1 == cores.len() => format!("{first}-{last}"),
        _ => cores
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
}

#[test]
#[ignore = "needs root and network namespaces; run by cargo xtask test"]
fn the_worker_keeps_its_core_and_every_other_thread_runs_on_the_rest() {
    let allowed = xdhcp6_datapath::os::allowed_cores().unwrap();
    assert!(
        allowed.len() >= 2,
        "this test needs two cores to place the worker apart; the process may use {allowed:?}"
    );
    let (others, worker) = allowed.split_at(allowed.len() - 1);
    let worker = worker[0];
    let others = core_list(others);

    let mut net = common::lab("placement", &["srv", "cli"]);
    net.veth(("srv", SERVER_IF), ("cli", CLIENT_IF));
    let config = net.path("server.toml");
    let text = fixtures::render(fixtures::ACCESS, &[("SERVER_IF", SERVER_IF)]).unwrap();
    fs::write(&config, text).unwrap();
    let journal = net.path("leases.journal").display().to_string();
    let control = net.path("control.sock").display().to_string();
    let (config, worker_arg) = (config.display().to_string(), worker.to_string());
    net.spawn(
        "srv",
        "daemon",
        &[
            DAEMON,
            "run",
            "--config",
            &config,
            "--journal",
            &journal,
            "--datapath",
            "udp",
            "--workers",
            "1",
            "--cores",
            &worker_arg,
            "--metrics",
            "off",
            "--control",
            &control,
        ],
    );
    net.wait_for_log("daemon", "serving", Duration::from_secs(20));
    // A binding makes the worker, the journal writer and the timer all run at least once.
    let bound = exchange(&net, CLIENT_IF, 1);
    assert!(
        matches!(bound, Exchange::Bound(_)),
        "{bound:?}:\n{}",
        net.log("daemon")
    );

    let threads = threads(daemon_pid(&journal));
    let cores_of = |name: &str| -> Vec<&str> {
        threads
            .iter()
            .filter(|(comm, _)| comm == name)
            .map(|(_, cores)| cores.as_str())
            .collect()
    };
    assert_eq!(
        cores_of("udp-worker-0"),
        [worker.to_string()],
        "{threads:?}"
    );
    for name in [
        "xdhcp6d",
        "xdhcp6-timer",
        "xdhcp6-journal",
        "xdhcp6-control",
    ] {
        assert_eq!(cores_of(name), [others.as_str()], "{name}: {threads:?}");
    }
    // Nothing else shares the worker's core, nor is left on every core.
    for (name, cores) in &threads {
        if name != "udp-worker-0" {
            assert_eq!(cores, &others, "{name}: {threads:?}");
        }
    }
    let (status, log) = net.stop("daemon", "-TERM");
    assert!(status.success(), "{status}:\n{log}");
    // The journal's disk, when its requests complete on the worker's core, is named in a
    // warning (`--durability always`, the default); otherwise nothing is said.
    let disk = xdhcp6_datapath::blockdev::Placement::of(std::path::Path::new(&journal));
    let on_worker = disk
        .as_ref()
        .is_some_and(|disk| !disk.worker_cores(&[worker]).is_empty());
    let warned = log.contains("the journal's disk completes its requests on workers' cores");
    assert_eq!(warned, on_worker, "{disk:?}:\n{log}");
    if let Some(disk) = disk.filter(|_| on_worker) {
        assert!(
            log.contains(&format!("/sys/block/{}/queue/rq_affinity", disk.name())),
            "{log}"
        );
    }
}
