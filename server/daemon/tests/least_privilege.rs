//! `xdhcp6d run --user`: once the sockets are bound and XDP is attached the server runs as an
//! unprivileged user with CAP_NET_ADMIN alone, still answers and journals, and detaches XDP
//! on the way out; a user that does not exist, or one that cannot write the journal's folder,
//! stops the start with an error that says so.

mod common;

use std::fs;
use std::os::unix::fs::chown;
use std::time::Duration;

use common::{DAEMON, Exchange, exchange, fixtures, journal_leases};
use xdhcp6_datapath::os::lookup_user;

const SERVER_IF: &str = "xd6s";
const CLIENT_IF: &str = "xd6c";
const USER: &str = "nobody";
/// CAP_NET_ADMIN (12) alone, as /proc/PID/status prints the sets.
const NET_ADMIN_ONLY: &str = "0000000000001000";

/// The value of a `Key:` line of /proc/PID/status.
fn status_line(pid: &str, key: &str) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
#[ignore = "needs root, network namespaces and the eBPF object; run by cargo xtask test"]
fn server_runs_as_an_unprivileged_user_with_net_admin_alone() {
    let user = lookup_user(USER).unwrap();
    let mut net = common::lab("user", &["srv", "cli"]);
    net.veth(("srv", SERVER_IF), ("cli", CLIENT_IF));
    let state = net.path("state");
    fs::create_dir_all(&state).unwrap();
    chown(&state, Some(user.uid), Some(user.gid)).unwrap();
    let config = net.path("server.toml");
    let text = fixtures::render(fixtures::ACCESS, &[("SERVER_IF", SERVER_IF)]).unwrap();
    fs::write(&config, text).unwrap();
    let journal = state.join("leases.journal");
    let (config_arg, journal_arg) = (config.display().to_string(), journal.display().to_string());
    net.spawn(
        "srv",
        "daemon",
        &[
            DAEMON,
            "run",
            "--config",
            &config_arg,
            "--journal",
            &journal_arg,
            "--datapath",
            "xdp",
            "--metrics",
            "off",
            "--control",
            "off",
            "--user",
            USER,
        ],
    );
    net.wait_for_log("daemon", "serving", Duration::from_secs(20));
    let log = net.log("daemon");
    assert!(log.contains("running unprivileged"), "{log}");
    let pid = fs::read_to_string(state.join("leases.journal.lock")).unwrap();
    let pid = pid.trim();

    // Every thread runs as the user, with no supplementary group; the process (its main
    // thread) keeps CAP_NET_ADMIN alone, and can gain nothing more.
    let ids = format!("{0} {0} {0} {0}", user.uid);
    assert_eq!(status_line(pid, "Uid"), ids);
    assert_eq!(
        status_line(pid, "Gid"),
        format!("{0} {0} {0} {0}", user.gid)
    );
    assert_eq!(status_line(pid, "Groups"), "");
    assert_eq!(status_line(pid, "CapEff"), NET_ADMIN_ONLY);
    assert_eq!(status_line(pid, "CapPrm"), NET_ADMIN_ONLY);
    assert_eq!(status_line(pid, "NoNewPrivs"), "1");
    for task in fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().file_name().into_string().unwrap();
        assert_eq!(status_line(&format!("{pid}/task/{task}"), "Uid"), ids);
    }
    let attached = net.exec("srv", &["ip", "link", "show", SERVER_IF]);
    assert!(
        String::from_utf8_lossy(&attached.stdout).contains("xdp"),
        "XDP is not attached"
    );

    // It still answers over AF_XDP and journals what it acknowledged.
    let Exchange::Bound(address) = exchange(&net, CLIENT_IF, 1) else {
        panic!(
            "no lease from the unprivileged server:\n{}",
            net.log("daemon")
        );
    };

    // SIGTERM: it stops cleanly and detaches XDP with the capability it kept.
    let (status, log) = net.stop("daemon", "-TERM");
    assert!(status.success(), "{status}:\n{log}");
    let detached = net.exec("srv", &["ip", "link", "show", SERVER_IF]);
    assert!(
        !String::from_utf8_lossy(&detached.stdout).contains("xdp"),
        "XDP is still attached after the stop:\n{log}"
    );
    let leases = journal_leases(&journal);
    assert!(
        leases.iter().any(
            |lease| lease["lease"] == address.to_string().as_str() && lease["state"] == "bound"
        ),
        "{address} is not in the journal: {leases:?}"
    );
}

#[test]
#[ignore = "needs root and network namespaces; run by cargo xtask test"]
fn user_that_cannot_run_the_server_stops_the_start_naming_why() {
    let mut net = common::lab("user-refused", &["srv"]);
    let config = net.path("server.toml");
    let text = fixtures::render(fixtures::ACCESS, &[("SERVER_IF", "lo")]).unwrap();
    fs::write(&config, text).unwrap();
    let config_arg = config.display().to_string();
    // The lab folder belongs to root: the user could not compact the journal there.
    let journal = net.path("leases.journal").display().to_string();
    for (user, expected) in [
        ("no-such-user-xdhcp6", "no user \"no-such-user-xdhcp6\""),
        (USER, "cannot write the journal folder"),
    ] {
        net.spawn(
            "srv",
            user,
            &[
                DAEMON,
                "run",
                "--config",
                &config_arg,
                "--journal",
                &journal,
                "--metrics",
                "off",
                "--control",
                "off",
                "--user",
                user,
            ],
        );
        let (status, log) = net.wait(user, Duration::from_secs(20));
        assert!(!status.success(), "{log}");
        assert!(log.contains(expected), "{log}");
        assert!(!log.contains("serving"), "{log}");
    }
}
