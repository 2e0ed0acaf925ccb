//! What the machine's CPUs did while a ramp step ran, from `/proc/stat`: each CPU's share of
//! busy time and of steal (time the hypervisor gave to another guest), so that a comparison
//! run can tell a step measured on a quiet machine from one taken while something else ran.

use serde::Serialize;

/// One CPU's counters from a `cpuN` line of `/proc/stat`, in clock ticks since boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// The CPU's number (`cpu3` is 3).
    pub cpu: u32,
    /// user + nice + system + irq + softirq (guest time is already inside user and nice).
    pub busy: u64,
    /// idle + iowait.
    pub idle: u64,
    /// Time stolen by the hypervisor.
    pub steal: u64,
}

impl CpuTimes {
    fn total(&self) -> u64 {
        self.busy + self.idle + self.steal
    }
}

/// Reads the per-CPU lines of `/proc/stat` text (the `cpu` total line is skipped). Lines that
/// do not parse are skipped; a kernel older than 2.6.11 (no steal column) reads as no steal.
pub fn parse_proc_stat(text: &str) -> Vec<CpuTimes> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace();
            let cpu = fields.next()?.strip_prefix("cpu")?.parse::<u32>().ok()?;
            let values: Vec<u64> = fields.map_while(|f| f.parse().ok()).collect();
            if values.len() < 4 {
                return None;
            }
            let at = |i: usize| values.get(i).copied().unwrap_or(0);
            // user nice system idle iowait irq softirq steal guest guest_nice
            Some(CpuTimes {
                cpu,
                busy: at(0) + at(1) + at(2) + at(5) + at(6),
                idle: at(3) + at(4),
                steal: at(7),
            })
        })
        .collect()
}

/// Reads `/proc/stat` now (empty where it cannot be read: the report then has no CPU data).
pub fn snapshot() -> Vec<CpuTimes> {
    std::fs::read_to_string("/proc/stat")
        .map(|text| parse_proc_stat(&text))
        .unwrap_or_default()
}

/// One CPU over an interval: shares of the time that passed, 0 to 1.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CpuShare {
    /// The CPU's number.
    pub cpu: u32,
    /// Busy (user, nice, system, irq, softirq).
    pub busy: f64,
    /// Stolen by the hypervisor.
    pub steal: f64,
}

/// Each CPU's shares between two snapshots (CPUs missing from either are left out; a CPU
/// whose counters did not move reads as idle).
pub fn shares(before: &[CpuTimes], after: &[CpuTimes]) -> Vec<CpuShare> {
    after
        .iter()
        .filter_map(|a| {
            let b = before.iter().find(|b| b.cpu == a.cpu)?;
            let total = a.total().saturating_sub(b.total());
            let share = |x: u64, y: u64| {
                if total == 0 {
                    0.0
                } else {
                    x.saturating_sub(y) as f64 / total as f64
                }
            };
            Some(CpuShare {
                cpu: a.cpu,
                busy: share(a.busy, b.busy),
                steal: share(a.steal, b.steal),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "cpu  300 10 200 5000 20 5 15 40 0 0
cpu0 100 0 100 2500 10 5 5 20 0 0
cpu1 200 10 100 2500 10 0 10 20 0 0
intr 12345 0 0
ctxt 999
cpu_weird x
";
    const AFTER: &str = "cpu  0 0 0 0 0 0 0 0 0 0
cpu0 150 0 130 2580 10 5 15 30 0 0
cpu1 200 10 100 2700 10 0 10 20 0 0
";

    #[test]
    fn proc_stat_lines_per_cpu() {
        let cpus = parse_proc_stat(BEFORE);
        assert_eq!(
            cpus,
            [
                CpuTimes {
                    cpu: 0,
                    busy: 100 + 100 + 5 + 5,
                    idle: 2510,
                    steal: 20
                },
                CpuTimes {
                    cpu: 1,
                    busy: 200 + 10 + 100 + 10,
                    idle: 2510,
                    steal: 20
                },
            ]
        );
        // An old kernel without steal, and too few columns.
        let old = parse_proc_stat("cpu7 1 2 3 4 5 6 7\ncpu8 1 2 3\n");
        assert_eq!(
            old,
            [CpuTimes {
                cpu: 7,
                busy: 1 + 2 + 3 + 6 + 7,
                idle: 9,
                steal: 0
            }]
        );
    }

    #[test]
    fn shares_of_an_interval() {
        let s = shares(&parse_proc_stat(BEFORE), &parse_proc_stat(AFTER));
        // cpu0: busy +90 (50 user, 30 system, 10 softirq), idle +80, steal +10: 180 ticks.
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].cpu, 0);
        assert!((s[0].busy - 90.0 / 180.0).abs() < 1e-9);
        assert!((s[0].steal - 10.0 / 180.0).abs() < 1e-9);
        // cpu1: idle only.
        assert_eq!(s[1].busy, 0.0);
        assert_eq!(s[1].steal, 0.0);
        // No time passed: all zero, no division by zero.
        let same = shares(&parse_proc_stat(AFTER), &parse_proc_stat(AFTER));
        assert!(same.iter().all(|c| c.busy == 0.0 && c.steal == 0.0));
    }
}
