//! The command line as a shell user meets it.

use std::process::{Command, Stdio};

const DAEMON: &str = env!("CARGO_BIN_EXE_xdhcp6d");

/// `xdhcp6d check-config FILE | head -1`: the reader goes away before the daemon has written
/// everything; the daemon ends quietly instead of panicking with a backtrace.
#[test]
fn check_config_into_a_closed_pipe_exits_quietly() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/split-a.toml");
    let (reader, writer) = std::io::pipe().expect("a pipe");
    // Closed before the daemon starts: its first write already finds no reader.
    drop(reader);
    let output = Command::new(DAEMON)
        .args(["check-config", example])
        .stdin(Stdio::null())
        .stdout(writer)
        .output()
        .expect("xdhcp6d starts");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}: {stderr}", output.status);
    assert!(stderr.is_empty(), "{stderr}");
}
