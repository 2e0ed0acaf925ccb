//! Running commands with their command line echoed and their failures named.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::{Error, Result};

/// The workspace root (the parent of this crate's folder).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// A command line as a shell would show it, for progress output and errors.
pub fn display(command: &Command) -> String {
    let mut line = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs a command with inherited stdio, echoing its command line; fails when it fails.
pub fn run(command: &mut Command) -> Result<()> {
    let line = display(command);
    eprintln!("$ {line}");
    let status = command.status().map_err(|source| Error::Start {
        line: line.clone(),
        source,
    })?;
    if !status.success() {
        return Err(Error::Failed {
            line,
            status,
            stderr: String::new(),
        });
    }
    Ok(())
}

/// Runs a command quietly and returns its output, whatever its exit status.
pub fn capture(command: &mut Command) -> Result<Output> {
    let line = display(command);
    command
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Start { line, source })
}

/// Runs a command quietly and returns its standard output; fails when it fails.
pub fn output(command: &mut Command) -> Result<String> {
    let line = display(command);
    let output = capture(command)?;
    if !output.status.success() {
        return Err(Error::Failed {
            line,
            status: output.status,
            stderr: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
            .trim()
            .to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Whether a program is on PATH and answers `args` successfully.
pub fn answers<S: AsRef<OsStr>>(program: &str, args: &[S]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Fails unless this process runs as root.
pub fn require_root(why: &str) -> Result<()> {
    let uid = output(Command::new("id").arg("-u"))?;
    if uid.trim() != "0" {
        return Err(Error::State(format!(
            "{why} needs root (network namespaces, XDP); run it as root (CI does)"
        )));
    }
    Ok(())
}

/// Fails when one of `tools` is not on PATH.
pub fn require_tools(tools: &[&str]) -> Result<()> {
    for tool in tools {
        let found = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            return Err(Error::State(format!(
                "{tool} is not installed (`cargo xtask setup` installs it)"
            )));
        }
    }
    Ok(())
}
