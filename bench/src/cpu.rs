//! What the machine's CPUs did while a ramp step ran, from `/proc/stat`: each CPU's share of
//! busy time and of steal (time the hypervisor gave to another guest), so that a comparison
//! run can tell a step measured on a quiet machine from one taken while something else ran;
//! and the CPU time of the processes under test (the generator, the server: `/proc/PID/stat`),
//! so that it can tell how much of the busy time of their cores other processes took.

use serde::Serialize;

/// One CPU's counters from a `cpuN` line of `/proc/stat`, in clock ticks since boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// The CPU's number (`cpu3` is 3).
    pub cpu: u32,
    /// user + nice + system + irq + softirq (guest time is already inside user and nice).
    pub busy: u64,
    /// user + nice + system: the time tasks ran, the part of `busy` that processes' own
    /// utime and stime account for (interrupts and softirqs are the kernel's).
    pub task: u64,
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
                task: at(0) + at(1) + at(2),
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
    /// Clock ticks tasks ran (user, nice, system).
    pub task_ticks: u64,
    /// Clock ticks that passed on the CPU (busy, idle and steal).
    pub ticks: u64,
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
                task_ticks: a.task.saturating_sub(b.task),
                ticks: total,
            })
        })
        .collect()
}

/// The CPU time of a process from its `/proc/PID/stat` text: utime + stime in clock ticks,
/// which for a process (not one of its `task/` threads) covers all its threads, live and
/// ended. `None` when the line does not parse.
pub fn parse_process_stat(text: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces and parentheses:
    // the fields that follow start after the last `)`, field 3 (state) first.
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// The CPU time of each process of `pids` now (those that cannot be read are left out).
pub fn process_snapshot(pids: &[u32]) -> Vec<(u32, u64)> {
    pids.iter()
        .filter_map(|&pid| {
            let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, parse_process_stat(&text)?))
        })
        .collect()
}

/// The CPU time the processes took between two snapshots, clock ticks (a process missing
/// from either is left out).
pub fn process_ticks(before: &[(u32, u64)], after: &[(u32, u64)]) -> u64 {
    after
        .iter()
        .filter_map(|&(pid, ticks)| {
            let (_, earlier) = before.iter().find(|(other, _)| *other == pid)?;
            Some(ticks.saturating_sub(*earlier))
        })
        .sum()
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
                    task: 100 + 100,
                    idle: 2510,
                    steal: 20
                },
                CpuTimes {
                    cpu: 1,
                    busy: 200 + 10 + 100 + 10,
                    task: 200 + 10 + 100,
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
                task: 1 + 2 + 3,
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
        // Of the busy 90, tasks ran 80 (50 user, 30 system).
        assert_eq!((s[0].task_ticks, s[0].ticks), (80, 180));
        // cpu1: idle only.
        assert_eq!(s[1].busy, 0.0);
        assert_eq!(s[1].steal, 0.0);
        // No time passed: all zero, no division by zero.
        let same = shares(&parse_proc_stat(AFTER), &parse_proc_stat(AFTER));
        assert!(same.iter().all(|c| c.busy == 0.0 && c.steal == 0.0));
    }

    /// `/proc/stat` and the generator's and the server's `/proc/PID/stat` recorded on a 2-core
    /// VM at the start and the end of a step (the server's command name as a tricky one).
    const STEP_START: &str = "cpu  4560156 237045 943557 2929407 73022 0 95468 22134 0 0
cpu0 2183249 117576 439230 1612580 23113 0 37446 10787 0 0
cpu1 2376906 119468 504326 1316826 49908 0 58022 11346 0 0
";
    const STEP_END: &str = "cpu  4560776 237045 943761 2929407 73022 0 95520 22134 0 0
cpu0 2183529 117576 439316 1612628 23113 0 37468 10788 0 0
cpu1 2377246 119468 504444 1316826 49908 0 58052 11346 0 0
";
    const GENERATOR_START: &str = "32755 (xdhcp6-bench) R 32749 32749 6611 0 -1 4194304 100 0 0 0 \
        1200 340 0 0 20 0 3 0 4468872 3133440 396 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 \
        0 17 0 0 0 0 0 0";
    const GENERATOR_END: &str = "32755 (xdhcp6-bench) R 32749 32749 6611 0 -1 4194304 100 0 0 0 \
        1410 390 0 0 20 0 3 0 4468872 3133440 396 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 \
        0 17 0 0 0 0 0 0";
    const SERVER_START: &str = "32801 (xdhcp6d (x) 1) S 32790 32790 6611 0 -1 4194560 2000 0 0 \
        0 5000 2500 0 0 20 0 9 0 4468900 93133440 2396 18446744073709551615 0 0 0 0 0 0 0 0 0 \
        0 0 0 17 1 0 0 0 0 0";
    const SERVER_END: &str = "32801 (xdhcp6d (x) 1) S 32790 32790 6611 0 -1 4194560 2000 0 0 \
        0 5230 2620 0 0 20 0 9 0 4468900 93133440 2396 18446744073709551615 0 0 0 0 0 0 0 0 \
        0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn process_time_from_proc_pid_stat() {
        assert_eq!(parse_process_stat(GENERATOR_START), Some(1200 + 340));
        // Spaces and parentheses in the command name.
        assert_eq!(parse_process_stat(SERVER_START), Some(5000 + 2500));
        assert_eq!(parse_process_stat("1 (cut) R 0 0"), None);
        assert_eq!(parse_process_stat(""), None);
        let before = [
            (32755, parse_process_stat(GENERATOR_START).unwrap()),
            (32801, parse_process_stat(SERVER_START).unwrap()),
        ];
        let after = [
            (32755, parse_process_stat(GENERATOR_END).unwrap()),
            (32801, parse_process_stat(SERVER_END).unwrap()),
            // Started during the step: no time of its own to compare with.
            (40000, 7),
        ];
        // 210 + 50 for the generator, 230 + 120 for the server.
        assert_eq!(process_ticks(&before, &after), 610);
        // A process that ended is left out.
        assert_eq!(process_ticks(&before, &after[..1]), 260);
    }

    #[test]
    fn a_recorded_step_leaves_time_to_other_processes() {
        let shares = shares(&parse_proc_stat(STEP_START), &parse_proc_stat(STEP_END));
        // cpu0: user 280, system 86 (task 366), softirq 22, idle 48, steal 1: 437 ticks.
        assert_eq!((shares[0].task_ticks, shares[0].ticks), (366, 437));
        // cpu1: user 340, system 118 (task 458), softirq 30: 488 ticks.
        assert_eq!((shares[1].task_ticks, shares[1].ticks), (458, 488));
        // The two processes took 610 ticks of the 824 tasks ran: 214 were other processes'.
        let tasks: u64 = shares.iter().map(|s| s.task_ticks).sum();
        assert_eq!(tasks - 610, 214);
    }
}
