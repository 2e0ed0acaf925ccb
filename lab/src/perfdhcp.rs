//! Kea's `perfdhcp -6`: its command line and its final report.

use std::collections::BTreeMap;
use std::process::Command;

use crate::netns::Netns;

/// How perfdhcp runs.
#[derive(Clone, Copy, Debug)]
pub struct Perfdhcp<'a> {
    /// The interface it sends on.
    pub interface: &'a str,
    /// Exchanges started per second.
    pub rate: u32,
    /// Seconds it runs.
    pub period: u64,
    /// Distinct clients it picks from at random.
    pub clients: u64,
    /// `-u`: counts an address handed out twice as non-unique.
    pub unique: bool,
}

impl Perfdhcp<'_> {
    /// `perfdhcp -6` in `netns`, in single-thread mode (its only working mode on a small
    /// machine).
    pub fn command(&self, netns: &Netns) -> Command {
        let mut command = netns.command("perfdhcp");
        command
            .args(["-6", "-l", self.interface, "-g", "single"])
            .args(["-r", &self.rate.to_string(), "-p", &self.period.to_string()])
            .args(["-R", &self.clients.to_string(), "-W", "500000"]);
        if self.unique {
            command.arg("-u");
        }
        command
    }
}

/// The counters of perfdhcp's final report, by exchange (`SOLICIT-ADVERTISE`) and name.
#[derive(Debug, Default)]
pub struct Report {
    /// Counter values by exchange, then by name (`sent packets`, `drops`, ...).
    pub exchanges: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Report {
    /// Reads `***Statistics for: NAME***` sections of `key: value` lines.
    pub fn parse(text: &str) -> Self {
        let mut report = Self::default();
        let mut section: Option<String> = None;
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("***Statistics for:") {
                section = Some(rest.trim().trim_end_matches('*').trim().to_owned());
                continue;
            }
            if line.starts_with("***") {
                section = None;
                continue;
            }
            let (Some(name), Some((key, value))) = (&section, line.split_once(':')) else {
                continue;
            };
            if let Ok(value) = value.trim().parse::<u64>() {
                report
                    .exchanges
                    .entry(name.clone())
                    .or_default()
                    .insert(key.trim().to_owned(), value);
            }
        }
        report
    }

    /// One counter, if the report has it.
    pub fn get(&self, exchange: &str, key: &str) -> Option<u64> {
        self.exchanges
            .get(exchange)
            .and_then(|counters| counters.get(key))
            .copied()
    }

    /// One counter; panics naming it when the report lacks it (for tests).
    pub fn value(&self, exchange: &str, key: &str) -> u64 {
        self.get(exchange, key)
            .unwrap_or_else(|| panic!("no {exchange} {key:?} in perfdhcp's report: {self:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_report_parses_by_exchange() {
        let text = "***Rate statistics***\nrate: 5\n***Statistics for: SOLICIT-ADVERTISE***\n\
                    sent packets: 10\nreceived packets: 9\n***Statistics for: REQUEST-REPLY***\n\
                    sent packets: 9\ndrops: 0\n";
        let report = Report::parse(text);
        assert_eq!(report.get("SOLICIT-ADVERTISE", "received packets"), Some(9));
        assert_eq!(report.value("REQUEST-REPLY", "drops"), 0);
        assert_eq!(report.get("REQUEST-REPLY", "rate"), None);
    }
}
