//! The arithmetic of `cargo xtask bench --rounds`: medians and spreads over rounds, and which
//! ramp steps ran while the machine was disturbed (from the CPU shares the generator read in
//! `/proc/stat` at each step's start and end, and the CPU time of the generator and the
//! server from `/proc/PID/stat`). Pure functions, so they are tested here.

use serde_json::Value;

/// The median and the range of a set of values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The middle value (the mean of the two middle ones for an even count).
    pub median: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// How many values.
    pub count: usize,
}

/// The median and range of `values` (None when empty; NaNs are left out).
pub fn spread(values: &[f64]) -> Option<Spread> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Spread {
        median,
        min: v[0],
        max: v[n - 1],
        count: n,
    })
}

/// The values a median is taken over: those not disturbed, or all of them when every one
/// was (the second value then says so).
pub fn undisturbed(values: &[(f64, bool)]) -> (Vec<f64>, bool) {
    let quiet: Vec<f64> = values.iter().filter(|v| !v.1).map(|v| v.0).collect();
    if quiet.is_empty() {
        (values.iter().map(|v| v.0).collect(), !values.is_empty())
    } else {
        (quiet, false)
    }
}

/// When a step counts as disturbed, percent of a CPU's time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Steal on the generator's or the server's core above this.
    pub steal_percent: f64,
    /// Mean busy time of the other CPUs (neither the generator's nor the server's) above this.
    pub foreign_percent: f64,
    /// Time other processes than the generator and the server ran on their cores above this,
    /// percent of those cores' time.
    pub foreign_core_percent: f64,
}

/// What the machine did during one ramp step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLoad {
    /// The highest steal of the generator's and the server's cores, percent (of every CPU
    /// when the step has no data for them).
    pub steal_percent: f64,
    /// The mean busy time of the other CPUs, percent (None: the machine has no other CPU).
    pub foreign_percent: Option<f64>,
    /// The time other processes ran on the cores under test, percent of those cores' time
    /// (None: the step has no process or task times, from an older generator).
    pub foreign_core_percent: Option<f64>,
    /// Over any threshold.
    pub disturbed: bool,
}

/// The load of a step from its CPU shares (`[{cpu, busy, steal, task_ticks, ticks}]`, shares
/// 0 to 1, ticks since the step's start, as the generator writes them in
/// `ramp.step_details[i].cpu`) and the CPU time of the generator and the server meanwhile
/// (`process_ticks`), given the cores under test. A step without CPU data reads as
/// undisturbed.
pub fn step_load(
    cpu: &Value,
    process_ticks: Option<u64>,
    measured: &[usize],
    thresholds: Thresholds,
) -> StepLoad {
    let shares: Vec<(usize, f64, f64)> = cpu
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| {
                    Some((
                        usize::try_from(c["cpu"].as_u64()?).ok()?,
                        c["busy"].as_f64()?,
                        c["steal"].as_f64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let ours: Vec<f64> = shares
        .iter()
        .filter(|c| measured.contains(&c.0))
        .map(|c| c.2)
        .collect();
    let steal = if ours.is_empty() {
        shares.iter().map(|c| c.2).fold(0.0, f64::max)
    } else {
        ours.iter().copied().fold(0.0, f64::max)
    } * 100.0;
    let others: Vec<f64> = shares
        .iter()
        .filter(|c| !measured.contains(&c.0))
        .map(|c| c.1)
        .collect();
    let foreign =
        (!others.is_empty()).then(|| 100.0 * others.iter().sum::<f64>() / others.len() as f64);
    let foreign_core = process_ticks.and_then(|ticks| foreign_core(cpu, ticks, measured));
    StepLoad {
        steal_percent: steal,
        foreign_percent: foreign,
        foreign_core_percent: foreign_core,
        disturbed: steal > thresholds.steal_percent
            || foreign.is_some_and(|f| f > thresholds.foreign_percent)
            || foreign_core.is_some_and(|f| f > thresholds.foreign_core_percent),
    }
}

/// The time other processes ran on the cores under test, percent of those cores' time: the
/// time tasks ran on them (`task_ticks`: user, nice and system in `/proc/stat`) less the CPU
/// time of the generator and the server (`process_ticks`: their utime and stime in
/// `/proc/PID/stat`, every thread), over the ticks that passed on them. The generator and
/// the server run only on those cores, so what is left is other processes' (a compiler, a
/// kernel worker thread). Interrupts and softirqs (the packets' own kernel work) are left
/// out of the cores' side; on a kernel without `CONFIG_IRQ_TIME_ACCOUNTING` the softirqs
/// that run in a process's context are in its stime, so the share is a lower bound there.
/// Clamped at 0 for that reason and because the two counts are sampled a moment apart.
/// None without task ticks for a core under test.
pub fn foreign_core(cpu: &Value, process_ticks: u64, measured: &[usize]) -> Option<f64> {
    let mut task = 0;
    let mut ticks = 0;
    let mut seen = 0;
    for c in cpu.as_array()? {
        let Some(core) = c["cpu"].as_u64().and_then(|n| usize::try_from(n).ok()) else {
            continue;
        };
        if !measured.contains(&core) {
            continue;
        }
        task += c["task_ticks"].as_u64()?;
        ticks += c["ticks"].as_u64()?;
        seen += 1;
    }
    (seen > 0 && ticks > 0)
        .then(|| 100.0 * task.saturating_sub(process_ticks) as f64 / ticks as f64)
}

/// Whether a ramp's result may have been moved by a disturbance: a disturbance can only make
/// a step fail, and only the failing steps bound the best rate from above, so the result is
/// suspect when a step that failed ran disturbed. `steps`: (passed, disturbed) per step.
pub fn ramp_disturbed(steps: &[(bool, bool)]) -> bool {
    steps
        .iter()
        .any(|&(passed, disturbed)| !passed && disturbed)
}

/// The index of the value closest to the median (the lower one on a tie), for the plot.
pub fn closest_to(values: &[f64], median: f64) -> Option<usize> {
    values
        .iter()
        .enumerate()
        .min_by(|a, b| (a.1 - median).abs().total_cmp(&(b.1 - median).abs()))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const LIMITS: Thresholds = Thresholds {
        steal_percent: 5.0,
        foreign_percent: 20.0,
        foreign_core_percent: 10.0,
    };

    #[test]
    fn median_and_range() {
        assert_eq!(spread(&[]), None);
        let s = spread(&[56.0, 14.0, 47.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.count), (47.0, 14.0, 56.0, 3));
        let s = spread(&[35.0, 56.0, 14.0, 47.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (41.0, 14.0, 56.0));
        let s = spread(&[7.0, f64::NAN]).unwrap();
        assert_eq!((s.median, s.count), (7.0, 1));
    }

    #[test]
    fn disturbed_values_are_left_out_unless_all_are() {
        let (v, all) = undisturbed(&[(1.0, false), (2.0, true), (3.0, false)]);
        assert_eq!((v, all), (vec![1.0, 3.0], false));
        let (v, all) = undisturbed(&[(1.0, true), (2.0, true)]);
        assert_eq!((v, all), (vec![1.0, 2.0], true));
        assert_eq!(undisturbed(&[]), (vec![], false));
    }

    #[test]
    fn steal_on_the_cores_under_test_marks_a_step() {
        // Two CPUs, both under test: steal of 6 % on the server's core.
        let cpu = json!([
            {"cpu": 0, "busy": 0.99, "steal": 0.01},
            {"cpu": 1, "busy": 0.90, "steal": 0.06},
        ]);
        let load = step_load(&cpu, None, &[0, 1], LIMITS);
        assert!((load.steal_percent - 6.0).abs() < 1e-9);
        assert_eq!(load.foreign_percent, None);
        assert!(load.disturbed);
        // 4 % is within the limit.
        let cpu =
            json!([{"cpu": 0, "busy": 1.0, "steal": 0.04}, {"cpu": 1, "busy": 1.0, "steal": 0.0}]);
        assert!(!step_load(&cpu, None, &[0, 1], LIMITS).disturbed);
    }

    #[test]
    fn busy_other_cpus_mark_a_step() {
        let cpu = json!([
            {"cpu": 0, "busy": 1.0, "steal": 0.0},
            {"cpu": 1, "busy": 1.0, "steal": 0.0},
            {"cpu": 2, "busy": 0.30, "steal": 0.0},
            {"cpu": 3, "busy": 0.20, "steal": 0.0},
        ]);
        let load = step_load(&cpu, None, &[0, 1], LIMITS);
        assert!((load.foreign_percent.unwrap() - 25.0).abs() < 1e-9);
        assert!(load.disturbed);
        let load = step_load(&cpu, None, &[0, 1, 2], LIMITS);
        assert!((load.foreign_percent.unwrap() - 20.0).abs() < 1e-9);
        assert!(!load.disturbed, "20 % is not above 20 %");
        // Steal on a CPU not under test does not count while the cores under test have data.
        let cpu =
            json!([{"cpu": 0, "busy": 0.5, "steal": 0.0}, {"cpu": 5, "busy": 0.0, "steal": 0.5}]);
        assert_eq!(step_load(&cpu, None, &[0], LIMITS).steal_percent, 0.0);
        // No CPU data at all: undisturbed.
        let none = step_load(&Value::Null, Some(10), &[0, 1], LIMITS);
        assert!(!none.disturbed);
        assert_eq!(none.foreign_percent, None);
    }

    /// A step's CPU data as the generator wrote it from `/proc/stat` samples recorded on a
    /// 2-core VM (bench/src/cpu.rs `a_recorded_step_leaves_time_to_other_processes`): cpu0
    /// ran tasks 366 of 437 ticks, cpu1 458 of 488.
    fn recorded_step() -> Value {
        json!([
            {"cpu": 0, "busy": 0.888, "steal": 0.0023, "task_ticks": 366, "ticks": 437},
            {"cpu": 1, "busy": 1.0, "steal": 0.0, "task_ticks": 458, "ticks": 488},
        ])
    }

    #[test]
    fn other_processes_on_the_cores_under_test_mark_a_step() {
        let cpu = recorded_step();
        // The generator and the server took 610 ticks (their /proc/PID/stat): other
        // processes 824 - 610 = 214 of 925 ticks, 23.1 %.
        let load = step_load(&cpu, Some(610), &[0, 1], LIMITS);
        let foreign = load.foreign_core_percent.unwrap();
        assert!((foreign - 100.0 * 214.0 / 925.0).abs() < 1e-9, "{foreign}");
        assert!(load.disturbed);
        assert!(
            load.steal_percent < LIMITS.steal_percent,
            "steal alone would not mark it"
        );
        // Had they taken 740: 84 ticks, 9.1 %, within the limit.
        let load = step_load(&cpu, Some(740), &[0, 1], LIMITS);
        assert!((load.foreign_core_percent.unwrap() - 100.0 * 84.0 / 925.0).abs() < 1e-9);
        assert!(!load.disturbed);
        // More process time than task time (sampled a moment apart): none, not negative.
        assert_eq!(foreign_core(&cpu, 900, &[0, 1]), Some(0.0));
        // Only the server's core under test: 458 - 400 of 488.
        let one = foreign_core(&cpu, 400, &[1]).unwrap();
        assert!((one - 100.0 * 58.0 / 488.0).abs() < 1e-9);
        // No process time (an older generator), or no task ticks: not measured.
        assert_eq!(
            step_load(&cpu, None, &[0, 1], LIMITS).foreign_core_percent,
            None
        );
        let old = json!([{"cpu": 0, "busy": 1.0, "steal": 0.0}]);
        assert_eq!(foreign_core(&old, 10, &[0]), None);
        // No core under test in the data.
        assert_eq!(foreign_core(&cpu, 10, &[5]), None);
    }

    #[test]
    fn only_a_disturbed_failing_step_moves_a_ramp() {
        assert!(!ramp_disturbed(&[
            (true, true),
            (true, false),
            (false, false)
        ]));
        assert!(ramp_disturbed(&[(true, false), (false, true)]));
        assert!(!ramp_disturbed(&[]));
    }

    #[test]
    fn the_round_closest_to_the_median() {
        assert_eq!(closest_to(&[60.0, 20.0, 47.0], 47.0), Some(2));
        assert_eq!(closest_to(&[10.0, 30.0], 20.0), Some(0));
        assert_eq!(closest_to(&[], 1.0), None);
    }
}
