//! Child processes that stop when dropped: SIGTERM, then SIGKILL when they linger.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use crate::cmd;
use crate::{Error, Result};

/// How long a process may take to end after SIGTERM on drop before it is killed.
const TERM_GRACE: Duration = Duration::from_secs(5);

/// A child process, stopped when dropped (SIGTERM, then SIGKILL after 5 s).
#[derive(Debug)]
pub struct Process {
    child: Child,
    name: String,
    /// The program whose pid this must be before a signal is sent (see [`Process::expect`]).
    program: Option<String>,
    log: Option<PathBuf>,
}

impl Process {
    /// Starts `command` with its standard output and error in `log`.
    pub fn start(mut command: Command, log: &Path, name: &str) -> Result<Self> {
        let file =
            fs::File::create(log).map_err(Error::io(format!("creating {}", log.display())))?;
        let copy = file
            .try_clone()
            .map_err(Error::io(format!("opening {}", log.display())))?;
        command.stdout(Stdio::from(copy)).stderr(Stdio::from(file));
        let mut process = Self::spawn(command, name)?;
        process.log = Some(log.to_owned());
        Ok(process)
    }

    /// Starts `command` with the standard output and error it was given.
    pub fn spawn(mut command: Command, name: &str) -> Result<Self> {
        let line = cmd::display(&command);
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .map_err(|source| Error::Start { line, source })?;
        Ok(Self {
            child,
            name: name.to_owned(),
            program: None,
            log: None,
        })
    }

    /// Refuses signals unless the pid still runs `program` (`/proc/PID/comm`): `ip netns
    /// exec` and `taskset` exec the program in place, so the pid becomes the program's.
    pub fn expect(mut self, program: &str) -> Self {
        self.program = Some(program.to_owned());
        self
    }

    /// The name it was started under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its log file, when started with one.
    pub fn log(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// Its log so far (empty without one).
    pub fn log_text(&self) -> String {
        self.log
            .as_ref()
            .and_then(|log| fs::read_to_string(log).ok())
            .unwrap_or_default()
    }

    /// Its standard error, line by line, read on a thread.
    pub fn lines(&mut self) -> Result<Receiver<String>> {
        let stderr = self
            .child
            .stderr
            .take()
            .ok_or_else(|| Error::State(format!("the stderr of {} is not piped", self.name)))?;
        let (sender, receiver) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(receiver)
    }

    /// Sends `signal` (a name such as TERM or KILL) while it runs.
    pub fn signal(&mut self, signal: &str) -> Result<()> {
        if self.try_wait()?.is_some() {
            return Err(Error::State(format!(
                "{} exited before SIG{signal}",
                self.name
            )));
        }
        let pid = self.child.id().to_string();
        if let Some(program) = &self.program {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim().is_empty() || !program.starts_with(comm.trim()) {
                return Err(Error::State(format!(
                    "pid {pid} is {:?}, not {program}",
                    comm.trim()
                )));
            }
        }
        cmd::output(Command::new("kill").args([&format!("-{signal}"), &pid]))?;
        Ok(())
    }

    /// Its exit status, if it has ended.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        let name = &self.name;
        self.child
            .try_wait()
            .map_err(Error::io(format!("waiting for {name}")))
    }

    /// Waits for it to end on its own; kills it and fails after `limit`.
    pub fn wait(&mut self, limit: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(Error::State(format!(
                    "{} still runs after {limit:?}",
                    self.name
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` and waits for it to end; kills it and fails after `limit`.
    pub fn stop(&mut self, signal: &str, limit: Duration) -> Result<ExitStatus> {
        self.signal(signal)?;
        self.wait(limit)
    }

    /// SIGKILLs it and reaps it: no shutdown at all.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = cmd::capture(Command::new("kill").args(["-TERM", &self.child.id().to_string()]));
        let deadline = Instant::now() + TERM_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }
}

/// Sends SIGTERM to the process whose pid is in `pid_file` (a daemon that went to the
/// background, such as dhclient) and removes the file.
pub fn kill_pid_file(pid_file: &Path) {
    if let Ok(pid) = fs::read_to_string(pid_file) {
        let pid = pid.trim();
        if !pid.is_empty() {
            let _ = cmd::capture(Command::new("kill").args(["-TERM", pid]));
        }
    }
    let _ = fs::remove_file(pid_file);
}
