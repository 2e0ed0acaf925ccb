//! Running commands (the lab's helpers with anyhow errors, and the cargo that runs this
//! xtask) and showing progress.

use std::process::Command;

use anyhow::Result;
pub use xdhcp6_lab::cmd::{answers, display, workspace_root};

/// The cargo that runs this xtask (so `cargo +toolchain xtask` stays consistent).
pub fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace_root());
    command
}

/// Runs a command with inherited stdio, failing with its command line when it fails.
pub fn run(command: &mut Command) -> Result<()> {
    Ok(xdhcp6_lab::cmd::run(command)?)
}

/// Runs a command quietly and returns its standard output.
pub fn output(command: &mut Command) -> Result<String> {
    Ok(xdhcp6_lab::cmd::output(command)?)
}

/// Fails unless this process runs as root.
pub fn require_root(why: &str) -> Result<()> {
    Ok(xdhcp6_lab::cmd::require_root(why)?)
}

/// Announces the next step of a run.
pub fn step(text: &str) {
    println!("\n== {text}");
}

/// A text block indented under a step, marked as quoted.
pub fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("  | {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}
