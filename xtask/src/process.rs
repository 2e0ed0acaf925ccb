//! Child processes that stop when dropped, and waiting for a daemon to serve.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::netns::Netns;

/// A child process, stopped when dropped (SIGTERM, then SIGKILL after 5 s).
pub struct Process {
    child: Child,
    name: &'static str,
}

impl Process {
    /// Starts `command` with its output in `log`.
    pub fn start(mut command: Command, log: &Path, name: &'static str) -> Result<Self> {
        let file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        println!("  log: {}", log.display());
        command
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file));
        Self::spawn(command, name)
    }

    pub fn spawn(mut command: Command, name: &'static str) -> Result<Self> {
        let line = cmd::display(&command);
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting `{line}`"))?;
        Ok(Self { child, name })
    }

    /// Its standard error, line by line, read on a thread.
    pub fn lines(&mut self) -> Result<Receiver<String>> {
        let stderr = self.child.stderr.take().context("stderr is not piped")?;
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(receiver)
    }

    /// Sends `signal` (a name such as KILL) after checking that the pid is still ours.
    pub fn signal(&mut self, signal: &str) -> Result<()> {
        if self.child.try_wait()?.is_some() {
            bail!("{} exited before SIG{signal}", self.name);
        }
        // `ip netns exec` and `taskset` exec the program in place: the pid is the program's.
        let pid = self.child.id().to_string();
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if !self.name.starts_with(comm.trim()) || comm.trim().is_empty() {
            bail!("pid {pid} is {:?}, not {}", comm.trim(), self.name);
        }
        cmd::output(Command::new("kill").args([&format!("-{signal}"), &pid]))?;
        Ok(())
    }

    /// Its exit status, if it has ended.
    pub fn try_wait(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        self.child.try_wait()
    }

    /// Waits for the process to end, killing it after `limit`.
    pub fn wait(&mut self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                // 1: some reply failed validation; the report says which.
                if status.success() || status.code() == Some(1) {
                    return Ok(());
                }
                bail!("{} failed ({status})", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        bail!("{} did not stop within {} s", self.name, limit.as_secs())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the `xdhcp6d` in `netns` answers on its metrics endpoint `address` (it is then
/// serving); `log` names where to look when it does not.
pub fn wait_for_metrics(netns: &Netns, address: &str, log: &Path) -> Result<()> {
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let probe = cmd::output(netns.command(&exe).args(["http-get", address, "/metrics"]));
        if probe.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "xdhcp6d in {} did not start serving within 15 s (see {})",
                netns.name(),
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
