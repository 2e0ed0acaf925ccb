//! `--log-format json`: every line the daemon writes to stderr is one JSON object with
//! timestamp, level, target, message and the event's fields, from start to stop and for the
//! error that ends a command; `text` (the default) stays readable.

mod common;

use std::process::Command;
use std::time::Duration;

use serde_json::{Map, Value};

use common::{DAEMON, Exchange, fixtures};

const SERVER_IF: &str = "xd6s";
const CLIENT_IF: &str = "xd6c";

/// Every line of `stderr` as a JSON object with the keys every line has; panics naming the
/// line that is not.
fn json_lines(stderr: &str) -> Vec<Map<String, Value>> {
    let lines: Vec<Map<String, Value>> = stderr
        .lines()
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(object)) => object,
            other => panic!("not a JSON object: {line:?} ({other:?})\n{stderr}"),
        })
        .collect();
    assert!(!lines.is_empty(), "no log lines");
    for line in &lines {
        let timestamp = line["timestamp"].as_str().expect("a timestamp");
        // RFC 3339 in UTC: 2026-12-06T07:49:16.468085Z
        assert!(
            timestamp.len() >= 20 && &timestamp[10..11] == "T" && timestamp.ends_with('Z'),
            "{timestamp}"
        );
        assert!(
            matches!(
                line["level"].as_str(),
                Some("ERROR" | "WARN" | "INFO" | "DEBUG" | "TRACE")
            ),
            "{line:?}"
        );
        assert!(
            line["target"].as_str().is_some_and(|t| !t.is_empty()),
            "{line:?}"
        );
        assert!(line["message"].is_string(), "{line:?}");
    }
    lines
}

#[test]
fn the_error_that_ends_a_command_is_a_json_line() {
    let output = Command::new(DAEMON)
        .args(["--log-format", "json", "leases", "--journal"])
        .arg("/nonexistent/xdhcp6/leases.journal")
        .args(["--config", "/nonexistent/xdhcp6/server.toml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines = json_lines(&stderr);
    let last = lines.last().unwrap();
    assert_eq!(last["level"], "ERROR", "{stderr}");
    assert_eq!(last["message"], "xdhcp6d failed", "{stderr}");
    let error = last["error"].as_str().expect("the error as a field");
    assert!(error.contains("/nonexistent/xdhcp6/server.toml"), "{error}");
}

#[test]
fn text_stays_the_default_and_bad_formats_are_refused() {
    let output = Command::new(DAEMON)
        .args(["check-config", "/nonexistent/xdhcp6/server.toml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("xdhcp6d: error: "), "{stderr}");
    assert!(serde_json::from_str::<Value>(stderr.trim()).is_err());

    let output = Command::new(DAEMON)
        .args(["--log-format", "yaml", "check-config", "x.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("'yaml'") && stderr.contains("json"),
        "{stderr}"
    );
}

#[test]
#[ignore = "needs root and network namespaces; run by cargo xtask test"]
fn a_running_server_logs_json_lines() {
    let mut net = common::lab("log-json", &["srv", "cli"]);
    net.veth(("srv", SERVER_IF), ("cli", CLIENT_IF));
    let config = fixtures::render(fixtures::ACCESS, &[("SERVER_IF", SERVER_IF)]).unwrap();
    let config_path = net.path("server.toml");
    std::fs::write(&config_path, config).unwrap();
    let config_arg = config_path.display().to_string();
    let journal = net.path("leases.journal").display().to_string();
    let control = net.path("control.sock").display().to_string();
    // The flag is global: after the subcommand as well as before it.
    net.spawn(
        "srv",
        "daemon",
        &[
            DAEMON,
            "run",
            "--log-format",
            "json",
            "--config",
            &config_arg,
            "--datapath",
            "udp",
            "--journal",
            &journal,
            "--control",
            &control,
        ],
    );
    net.wait_for_log("daemon", "\"message\":\"serving\"", Duration::from_secs(20));
    let exchange = common::exchange(&net, CLIENT_IF, 1);
    assert!(
        matches!(exchange, Exchange::Bound(_)),
        "{exchange:?}\n{}",
        net.log("daemon")
    );
    let (status, log) = net.stop("daemon", "-TERM");
    assert!(status.success(), "{log}");

    let lines = json_lines(&log);
    let messages: Vec<&str> = lines
        .iter()
        .filter_map(|line| line["message"].as_str())
        .collect();
    assert!(messages.contains(&"serving"), "{messages:?}");
    assert!(messages.contains(&"stopped"), "{messages:?}");
    // The events' own fields sit beside the fixed keys, typed as they were logged.
    let listening = lines
        .iter()
        .find(|line| line["message"] == "metrics endpoint listening")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(listening["addr"], "[::1]:9547", "{log}");
    assert_eq!(listening["target"], "xdhcp6d::metrics", "{log}");
    let stopped = lines
        .iter()
        .find(|line| line["message"] == "stopped")
        .unwrap();
    assert!(
        stopped["leases"].as_u64().is_some_and(|leases| leases >= 1),
        "{log}"
    );
    // Every request was answered: the last line's accounting of losses says so.
    assert_eq!(stopped["lost"], "none", "{log}");
    // The workers found the exchange's requests in at least one turn, and in no more turns
    // than there were requests.
    let received = stopped["received"]
        .as_u64()
        .unwrap_or_else(|| panic!("{log}"));
    let busy_turns = stopped["busy_turns"]
        .as_u64()
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        (1..=received).contains(&busy_turns),
        "{busy_turns} busy turns for {received} requests: {log}"
    );
    assert!(stopped["sleeps"].as_u64().is_some(), "{log}");
}
