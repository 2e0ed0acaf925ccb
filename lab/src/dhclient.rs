//! ISC `dhclient -6`: its command line, the script the lab gives it and its lease file.

use std::fs;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::netns::Netns;
use crate::{Error, Result};

/// The script the lab gives dhclient. It logs each call to `@EVENTS@` (time, reason, the new
/// and old address or prefix with lifetimes, the server's DUID) and, like Debian's
/// dhclient-script, configures the addresses dhclient binds, without touching files outside
/// the lab: Debian's would write the DNS options to /etc/resolv.conf, which `ip netns exec`
/// shares with the host.
pub const SCRIPT: &str = r#"#!/bin/sh
echo "time=$(date +%s.%N) reason=$reason address=$new_ip6_address old_address=$old_ip6_address prefix=$new_ip6_prefix old_prefix=$old_ip6_prefix preferred=$new_preferred_life valid=$new_max_life server=$new_dhcp6_server_id" >> '@EVENTS@'
case "$reason" in
    PREINIT6)
        ip link set dev "$interface" up
        ;;
    BOUND6|RENEW6|REBIND6|REBOOT6)
        if [ -n "$old_ip6_address" ] && [ "$old_ip6_address" != "$new_ip6_address" ]; then
            ip -6 addr del "$old_ip6_address/128" dev "$interface" 2>/dev/null
        fi
        if [ -n "$new_ip6_address" ] && [ "$new_max_life" = 0 ]; then
            ip -6 addr del "$new_ip6_address/128" dev "$interface" 2>/dev/null
        elif [ -n "$new_ip6_address" ]; then
            ip -6 addr replace "$new_ip6_address/128" dev "$interface" nodad \
                valid_lft "$new_max_life" preferred_lft "$new_preferred_life"
        fi
        ;;
    DEPREF6)
        if [ -n "$cur_ip6_address" ]; then
            ip -6 addr change "$cur_ip6_address/128" dev "$interface" preferred_lft 0
        fi
        ;;
    EXPIRE6|RELEASE6|STOP6)
        if [ -n "$old_ip6_address" ]; then
            ip -6 addr del "$old_ip6_address/128" dev "$interface" 2>/dev/null
        fi
        ;;
esac
exit 0
"#;

/// The files of one dhclient, all named after it in a scratch folder.
#[derive(Clone, Debug)]
pub struct Dhclient {
    /// Its lease file (`NAME.leases`).
    pub leases: PathBuf,
    /// Its pid file (`NAME.pid`): dhclient goes to the background to renew.
    pub pid: PathBuf,
    /// Its script ([`SCRIPT`], `NAME.script`).
    pub script: PathBuf,
    /// The calls of its script (`NAME.events`, see [`ScriptEvent`]).
    pub events: PathBuf,
}

impl Dhclient {
    /// The files of the dhclient `name` in `dir`.
    pub fn files(dir: &Path, name: &str) -> Self {
        let path = |extension: &str| dir.join(format!("{name}.{extension}"));
        Self {
            leases: path("leases"),
            pid: path("pid"),
            script: path("script"),
            events: path("events"),
        }
    }

    /// The files of the dhclient `name` in `dir`, with its script written.
    pub fn new(dir: &Path, name: &str) -> Result<Self> {
        let client = Self::files(dir, name);
        let text = SCRIPT.replace("@EVENTS@", &client.events.display().to_string());
        fs::write(&client.script, text)
            .map_err(Error::io(format!("writing {}", client.script.display())))?;
        crate::cmd::output(Command::new("chmod").arg("+x").arg(&client.script))?;
        Ok(client)
    }

    /// `dhclient -6 EXTRA -v ... INTERFACE` in `netns`; with `once`, `timeout 30 dhclient ...
    /// -1` (one attempt, then to the background), else `-d` (foreground, renews and
    /// rebinds like a real host until stopped).
    pub fn command(&self, netns: &Netns, interface: &str, extra: &[&str], once: bool) -> Command {
        let mut command = if once {
            let mut command = netns.command("timeout");
            command.args(["30", "dhclient", "-6"]).args(extra);
            command.args(["-v", "-1"]);
            command
        } else {
            let mut command = netns.command("dhclient");
            command.args(["-6", "-d", "-v"]).args(extra);
            command
        };
        command
            .arg("-lf")
            .arg(&self.leases)
            .arg("-pf")
            .arg(&self.pid)
            .arg("-sf")
            .arg(&self.script)
            .arg(interface);
        command
    }

    /// Stops the copy of `dhclient -1` that went to the background to renew. That copy writes
    /// the pid file only once it has detached, which can be after the foreground dhclient has
    /// ended: without waiting for the file, a dhclient outlives the lab (and keeps whatever
    /// files it inherited open).
    pub fn stop_background(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let pid = fs::read_to_string(&self.pid).unwrap_or_default();
            if pid.trim().parse::<u32>().is_ok() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        crate::process::kill_pid_file(&self.pid);
    }

    /// Its lease file so far.
    pub fn lease_file(&self) -> String {
        fs::read_to_string(&self.leases).unwrap_or_default()
    }

    /// The calls of its script so far.
    pub fn script_events(&self) -> Vec<ScriptEvent> {
        fs::read_to_string(&self.events)
            .unwrap_or_default()
            .lines()
            .filter_map(ScriptEvent::parse)
            .collect()
    }
}

/// One call of [`SCRIPT`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScriptEvent {
    /// Seconds since the epoch.
    pub time: f64,
    /// dhclient's reason (BOUND6, RENEW6, ...).
    pub reason: String,
    /// The address bound.
    pub address: Option<Ipv6Addr>,
    /// The address it replaces.
    pub old_address: Option<Ipv6Addr>,
    /// The prefix bound: `2001:db8:100::/56`.
    pub prefix: Option<String>,
    /// The prefix it replaces.
    pub old_prefix: Option<String>,
    /// Preferred lifetime, seconds.
    pub preferred: Option<u32>,
    /// Valid lifetime, seconds.
    pub valid: Option<u32>,
    /// The server's DUID as dhclient prints it.
    pub server: String,
}

impl ScriptEvent {
    /// One line the script wrote.
    pub fn parse(line: &str) -> Option<Self> {
        let mut event = Self::default();
        for field in line.split_whitespace() {
            let (key, value) = field.split_once('=')?;
            let text = (!value.is_empty()).then(|| value.to_owned());
            match key {
                "time" => event.time = value.parse().ok()?,
                "reason" => event.reason = value.to_owned(),
                "address" => event.address = value.parse().ok(),
                "old_address" => event.old_address = value.parse().ok(),
                "prefix" => event.prefix = text,
                "old_prefix" => event.old_prefix = text,
                "preferred" => event.preferred = value.parse().ok(),
                "valid" => event.valid = value.parse().ok(),
                "server" => event.server = value.to_owned(),
                _ => {}
            }
        }
        Some(event)
    }
}

/// The token after `keyword` in a dhclient lease file (`iaaddr 2001:db8:1::5 {`).
pub fn lease_value(text: &str, keyword: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix(keyword))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_lines_and_lease_files_parse() {
        let event = ScriptEvent::parse(
            "time=1.5 reason=BOUND6 address=2001:db8:1::5 old_address= prefix= old_prefix= \
             preferred=200 valid=300 server=0:1:0:1",
        )
        .unwrap();
        assert_eq!(event.reason, "BOUND6");
        assert_eq!(event.address, Some("2001:db8:1::5".parse().unwrap()));
        assert_eq!((event.prefix, event.valid), (None, Some(300)));
        let leases = "lease6 {\n  ia-na 1 {\n    iaaddr 2001:db8:1::5 {\n";
        assert_eq!(
            lease_value(leases, "iaaddr").as_deref(),
            Some("2001:db8:1::5")
        );
    }
}
