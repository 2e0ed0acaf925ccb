//! One server per journal and per port: a second `xdhcp6d run` on the journal of a running
//! one, or on its port with another journal, refuses to start and names the running one
//! (today both would answer every message and append to one file).

mod common;

use std::fs;
use std::time::Duration;

use common::{DAEMON, DaemonOptions, Datapath, fixtures};

const SERVER_IF: &str = "xd6s";
const CLIENT_IF: &str = "xd6c";

#[test]
#[ignore = "needs root and network namespaces; run by cargo xtask test"]
fn a_second_server_on_the_same_journal_or_port_refuses_naming_the_first() {
    let mut net = common::lab("one-server", &["srv", "cli"]);
    net.veth(("srv", SERVER_IF), ("cli", CLIENT_IF));
    let config = fixtures::render(fixtures::ACCESS, &[("SERVER_IF", SERVER_IF)]).unwrap();
    let journal = net.path("leases.journal");
    let options = DaemonOptions {
        datapath: Datapath::Udp,
        journal: &journal,
        durability: "always",
        log: "daemon",
    };
    net.start_daemon("srv", &config, &options);
    let lock = fs::read_to_string(net.path("leases.journal.lock")).unwrap();
    let pid = lock.trim().to_owned();
    assert!(pid.parse::<u32>().is_ok(), "{lock:?}");
    let config_path = net.path("server.toml").display().to_string();

    // The same journal.
    let journal_arg = journal.display().to_string();
    net.spawn(
        "srv",
        "same-journal",
        &[
            DAEMON,
            "run",
            "--config",
            &config_path,
            "--journal",
            &journal_arg,
            "--metrics",
            "off",
            "--control",
            "off",
        ],
    );
    let (status, log) = net.wait("same-journal", Duration::from_secs(10));
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&format!("in use by another xdhcp6d (pid {pid}")),
        "{log}"
    );
    assert!(!log.contains("serving"), "{log}");

    // Another journal, the same port.
    let other = net.path("other.journal").display().to_string();
    net.spawn(
        "srv",
        "same-port",
        &[
            DAEMON,
            "run",
            "--config",
            &config_path,
            "--journal",
            &other,
            "--metrics",
            "off",
            "--control",
            "off",
        ],
    );
    let (status, log) = net.wait("same-port", Duration::from_secs(10));
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&format!("[::]:547: in use by pid {pid} (xdhcp6d)")),
        "{log}"
    );
    assert!(!log.contains("serving"), "{log}");

    // The first one was not disturbed.
    net.stop_daemon();
}
