//! `xdhcp6d run` under a service manager (`Type=notify`, `WatchdogSec=`): the test plays
//! systemd's part with a unix datagram socket in `NOTIFY_SOCKET`. READY=1 comes once the
//! datapath answers (a client binds right after it), WATCHDOG=1 pings follow at half of
//! WATCHDOG_USEC, and SIGTERM brings STOPPING=1 before a clean exit.

mod common;

use std::fs;
use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::{DAEMON, Exchange, exchange, fixtures};

const SERVER_IF: &str = "xd6nots";
const CLIENT_IF: &str = "xd6notc";

/// The notifications received so far, one datagram each.
struct Manager {
    socket: UnixDatagram,
    received: Vec<String>,
}

impl Manager {
    /// Reads datagrams until one has the line `wanted`; panics after `limit` with what came.
    fn wait_for(&mut self, wanted: &str, limit: Duration, log: impl Fn() -> String) -> String {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        loop {
            match self.socket.recv(&mut buf) {
                Ok(len) => {
                    let message = String::from_utf8_lossy(&buf[..len]).into_owned();
                    self.received.push(message.clone());
                    if message.lines().any(|line| line == wanted) {
                        return message;
                    }
                }
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(error) => panic!("reading the notify socket: {error}"),
            }
            assert!(
                Instant::now() < deadline,
                "no {wanted} in {limit:?}; received {:?}:\n{}",
                self.received,
                log()
            );
        }
    }
}

#[test]
#[ignore = "needs root and network namespaces; run by cargo xtask test"]
fn notifies_ready_once_serving_pings_the_watchdog_and_says_stopping() {
    let mut net = common::lab("notify", &["srv", "cli"]);
    net.veth(("srv", SERVER_IF), ("cli", CLIENT_IF));
    let config = net.path("server.toml");
    let text = fixtures::render(fixtures::ACCESS, &[("SERVER_IF", SERVER_IF)]).unwrap();
    fs::write(&config, text).unwrap();
    let journal = net.path("leases.journal");
    let control_arg = net.path("control.sock").display().to_string();
    let notify_path = net.path("notify.sock");
    let socket = UnixDatagram::bind(&notify_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut manager = Manager {
        socket,
        received: Vec::new(),
    };
    let (config_arg, journal_arg) = (config.display().to_string(), journal.display().to_string());
    let notify_env = format!("NOTIFY_SOCKET={}", notify_path.display());
    net.spawn(
        "srv",
        "daemon",
        &[
            "env",
            &notify_env,
            // 600 ms: a ping every 300 ms.
            "WATCHDOG_USEC=600000",
            DAEMON,
            "run",
            "--config",
            &config_arg,
            "--journal",
            &journal_arg,
            "--datapath",
            "udp",
            "--metrics",
            "off",
            "--control",
            &control_arg,
        ],
    );

    let ready = manager.wait_for("READY=1", Duration::from_secs(20), || net.log("daemon"));
    assert!(
        ready.contains("STATUS=serving on the udp datapath"),
        "{ready:?}"
    );
    // Ready means ready: the first client, right after READY=1, is answered and bound.
    let bound = exchange(&net, CLIENT_IF, 1);
    assert!(
        matches!(bound, Exchange::Bound(_)),
        "{bound:?} right after READY=1:\n{}",
        net.log("daemon")
    );
    assert!(
        net.log("daemon").contains("serving"),
        "{}",
        net.log("daemon")
    );

    // Pings keep coming while the workers live: three more after the exchange.
    for _ in 0..3 {
        manager.wait_for("WATCHDOG=1", Duration::from_secs(10), || net.log("daemon"));
    }
    let ready_at = manager
        .received
        .iter()
        .position(|message| message.contains("READY=1"))
        .unwrap();
    assert!(
        manager.received[..ready_at]
            .iter()
            .all(|message| !message.contains("WATCHDOG=1")),
        "a watchdog ping before READY=1: {:?}",
        manager.received
    );

    let (status, log) = net.stop("daemon", "-TERM");
    manager.wait_for("STOPPING=1", Duration::from_secs(1), || log.clone());
    assert!(status.success(), "{status}:\n{log}");
    let stopping_at = manager
        .received
        .iter()
        .rposition(|message| message.contains("STOPPING=1"))
        .unwrap();
    assert!(
        manager.received[stopping_at + 1..]
            .iter()
            .all(|message| !message.contains("READY=1") && !message.contains("WATCHDOG=1")),
        "notifications after STOPPING=1: {:?}",
        manager.received
    );
}

#[test]
#[ignore = "needs root and network namespaces; run by cargo xtask test"]
fn runs_the_same_without_a_service_manager() {
    // No NOTIFY_SOCKET: nothing is sent, nothing fails, the server serves and stops cleanly.
    let mut net = common::lab("nonotify", &["srv", "cli"]);
    net.veth(("srv", SERVER_IF), ("cli", CLIENT_IF));
    let config = net.path("server.toml");
    let text = fixtures::render(fixtures::ACCESS, &[("SERVER_IF", SERVER_IF)]).unwrap();
    fs::write(&config, text).unwrap();
    let journal = net.path("leases.journal");
    let control_arg = net.path("control.sock").display().to_string();
    let (config_arg, journal_arg) = (config.display().to_string(), journal.display().to_string());
    net.spawn(
        "srv",
        "daemon",
        &[
            "env",
            "-u",
            "NOTIFY_SOCKET",
            "WATCHDOG_USEC=600000",
            DAEMON,
            "run",
            "--config",
            &config_arg,
            "--journal",
            &journal_arg,
            "--metrics",
            "off",
            "--control",
            &control_arg,
        ],
    );
    net.wait_for_log("daemon", "serving", Duration::from_secs(20));
    assert!(matches!(exchange(&net, CLIENT_IF, 2), Exchange::Bound(_)));
    let (status, log) = net.stop("daemon", "-TERM");
    assert!(status.success(), "{status}:\n{log}");
    assert!(!log.contains("cannot notify"), "{log}");
}
