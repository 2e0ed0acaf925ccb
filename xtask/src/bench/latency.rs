//! `cargo xtask bench --latency RATE`: request-to-reply latency at one offered rate.
//!
//! The ramps report the latency at each target's best rate, where queues are full and the
//! tail is the queueing of an overloaded server. This runs every target at the same rate
//! instead (80 % of xdhcp6d's best, say) and splits what the p99 is made of: the ceiling (the
//! reflector, no DHCP) is what the generator and the veth pair add; xdhcp6d with
//! `--durability batch` adds the engine and the journal's writes (replies do not wait for a
//! sync); `--durability always` adds the wait for the sync; with --busy-poll, `batch` and
//! `always` also run with xdhcp6d's `--busy-poll`. Each round runs them in turn, each against
//! a freshly started server, for --step-seconds (one ramp step at RATE, so that the generator records the CPU's load).
//!
//! At one rate the server's CPU time per flow also compares builds better than their best
//! rates do on a shared machine: a ramp's best rate moves with the host's load, the work a
//! flow costs much less. The generator reads it from `/proc/PID/stat` of the server process
//! (every thread) over the step, drain included.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::{Lab, TARGETS, Target, cmd, core_list, rounds};

/// The runs of a round: a target, xdhcp6d's durability ("baseline": `always` with the
/// --latency-baseline binary) and whether xdhcp6d runs with --busy-poll.
const RUNS: [(&str, &str, bool); 6] = [
    ("ceiling", "-", false),
    ("xdhcp6d-xdp", "batch", false),
    ("xdhcp6d-xdp", "batch", true),
    ("xdhcp6d-xdp", "always", false),
    ("xdhcp6d-xdp", "always", true),
    ("xdhcp6d-xdp", "baseline", false),
];

/// The runs of this bench: [`RUNS`], without the baseline when there is none and without
/// the busy-polling runs without --busy-poll.
fn runs(lab: &Lab<'_>) -> Vec<(&'static str, &'static str, bool)> {
    RUNS.into_iter()
        .filter(|run| run.1 != "baseline" || lab.options.latency_baseline.is_some())
        .filter(|run| !run.2 || lab.options.busy_poll.is_some())
        .collect()
}

/// How a run is named in the table.
fn label(lab: &Lab<'_>, name: &str, durability: &str, busy_poll: bool) -> String {
    match (
        name,
        durability,
        lab.options.busy_poll.filter(|_| busy_poll),
    ) {
        ("ceiling", _, _) => name.to_owned(),
        (_, "baseline", _) => format!("{name} durability always, baseline build"),
        (_, _, Some(us)) => format!("{name} durability {durability} busy-poll {us}us"),
        _ => format!("{name} durability {durability}"),
    }
}

/// One run at the fixed rate.
struct Point {
    label: String,
    round: u32,
    throughput: f64,
    loss_percent: f64,
    p50_us: f64,
    p99_us: f64,
    /// The server process's CPU time per completed flow, microseconds.
    cpu_us_per_flow: f64,
    disturbed: bool,
}

/// `/proc` counts CPU time in clock ticks of USER_HZ, which Linux fixes at 100 a second.
const USER_HZ: f64 = 100.0;

/// The CPU time per flow, microseconds, of `ticks` over a step of `seconds` that completed
/// `throughput` flows a second; NaN when nothing completed.
fn cpu_us_per_flow(ticks: u64, throughput: f64, seconds: f64) -> f64 {
    let flows = throughput * seconds;
    if flows > 0.0 {
        ticks as f64 / USER_HZ / flows * 1e6
    } else {
        f64::NAN
    }
}

pub(super) fn run(lab: &Lab<'_>, rate: f64) -> Result<()> {
    let options = lab.options;
    if !rate.is_finite() || rate <= 0.0 {
        bail!("--latency {rate}: expected a positive rate (flows/s)");
    }
    let mut points: Vec<Point> = Vec::new();
    for round in 1..=options.rounds {
        println!("\n== round {round} of {}", options.rounds);
        for (name, durability, busy_poll) in runs(lab) {
            let target = TARGETS
                .into_iter()
                .find(|t| t.name == name)
                .context("a latency target is missing from TARGETS")?;
            let label = label(lab, name, durability, busy_poll);
            println!("\n== {label} (round {round}) at {rate:.0} flows/s");
            lab.busy_poll.set(options.busy_poll.filter(|_| busy_poll));
            if durability == "baseline" {
                lab.durability.set(Some("always"));
                lab.xdhcp6d.set(options.latency_baseline.as_deref());
            } else {
                lab.durability.set(Some(durability));
                lab.xdhcp6d.set(None);
            }
            let server = lab.start_server(target)?;
            lab.wait_answering(target)?;
            let point = fixed(lab, target, rate, round, &label);
            lab.stop_server(target, server);
            let point = point?;
            println!(
                "  {label} round {round}: {:.0} flows/s, loss {:.2} %, p50 {:.0} us, p99 {:.0} us, \
                 server CPU {:.1} us a flow{}",
                point.throughput,
                point.loss_percent,
                point.p50_us,
                point.p99_us,
                point.cpu_us_per_flow,
                if point.disturbed { " (disturbed)" } else { "" }
            );
            points.push(point);
        }
    }
    lab.durability.set(None);
    lab.xdhcp6d.set(None);
    lab.busy_poll.set(options.busy_poll);

    let mut table = format!(
        "latency at {rate:.0} sarr flows/s (echo for the ceiling), {} clients, {} relays, \
         generator over {} on core(s) {}, server on core(s) {}, {} s per run, {} rounds; \
         medians over the rounds not disturbed, ranges over all; microseconds; server CPU: \
         the server process's CPU time (all threads, /proc/PID/stat) per completed flow\n\n\
         | target | completed/s | p50 (median) | p99 (median) | p99 range | server CPU per flow (median) | its range |\n\
         |---|---|---|---|---|---|---|\n",
        options.clients,
        options.relays,
        options.transport,
        core_list(&options.generator_cores()),
        core_list(&options.server_cores()),
        options.step_seconds,
        options.rounds,
    );
    let mut rows = Vec::new();
    for (name, durability, busy_poll) in runs(lab) {
        let label = label(lab, name, durability, busy_poll);
        let of = |f: fn(&Point) -> f64| -> Vec<(f64, bool)> {
            points
                .iter()
                .filter(|p| p.label == label)
                .map(|p| (f(p), p.disturbed))
                .collect()
        };
        let median = |values: &[(f64, bool)]| {
            let (kept, _) = rounds::undisturbed(values);
            rounds::spread(&kept).map_or(f64::NAN, |s| s.median)
        };
        let p99 = of(|p| p.p99_us);
        let all: Vec<f64> = p99.iter().map(|v| v.0).collect();
        let range = rounds::spread(&all);
        let cpu = of(|p| p.cpu_us_per_flow);
        let cpu_all: Vec<f64> = cpu.iter().map(|v| v.0).filter(|v| v.is_finite()).collect();
        let cpu_range = rounds::spread(&cpu_all);
        let cpu_median = median(&cpu);
        let (throughput, p50, p99_median) = (
            median(&of(|p| p.throughput)),
            median(&of(|p| p.p50_us)),
            median(&p99),
        );
        table.push_str(&format!(
            "| {label} | {throughput:.0} | {p50:.0} | {p99_median:.0} | {} | {cpu_median:.1} | {} |\n",
            range.map_or("-".to_owned(), |r| format!("{:.0}-{:.0}", r.min, r.max)),
            cpu_range.map_or("-".to_owned(), |r| format!("{:.1}-{:.1}", r.min, r.max))
        ));
        rows.push(json!({
            "target": label,
            "throughput": throughput,
            "p50_us": p50,
            "p99_us": p99_median,
            "p99_min_us": range.map(|r| r.min),
            "p99_max_us": range.map(|r| r.max),
            "server_cpu_us_per_flow": cpu_median,
        }));
    }
    table.push_str("\nper round:\n\n");
    for p in &points {
        table.push_str(&format!(
            "- round {}: {}: {:.0}/s, loss {:.2} %, p50 {:.0}, p99 {:.0}, server CPU {:.1} a flow{}\n",
            p.round,
            p.label,
            p.throughput,
            p.loss_percent,
            p.p50_us,
            p.p99_us,
            p.cpu_us_per_flow,
            if p.disturbed { " (disturbed)" } else { "" }
        ));
    }
    println!("\n{table}");
    let summary = json!({
        "rate": rate,
        "rounds": options.rounds,
        "targets": rows,
        "per_round": points.iter().map(|p| json!({
            "target": p.label,
            "round": p.round,
            "throughput": p.throughput,
            "loss_percent": p.loss_percent,
            "p50_us": p.p50_us,
            "p99_us": p.p99_us,
            "server_cpu_us_per_flow": p.cpu_us_per_flow,
            "disturbed": p.disturbed,
        })).collect::<Vec<_>>(),
    });
    let md = lab.work.join("latency.md");
    let json_path = lab.work.join("latency.json");
    std::fs::write(&md, &table)?;
    std::fs::write(&json_path, serde_json::to_string_pretty(&summary)? + "\n")?;
    println!("  table: {}", md.display());
    println!("  json:  {}", json_path.display());
    Ok(())
}

/// One generator run at `rate` against the running target: a ramp of one step, so that the
/// summary has the step's CPU shares.
fn fixed(lab: &Lab<'_>, target: Target, rate: f64, round: u32, label: &str) -> Result<Point> {
    let options = lab.options;
    let file = label.replace(' ', "-");
    let path = lab.work.join(format!("latency-{file}-r{round}.json"));
    let rate_text = rate.to_string();
    let mut command = lab.generator(target, options.clients, 0xbe);
    command
        .args(["--ramp", "--start", &rate_text, "--step", &rate_text])
        .args(["--max", &rate_text, "--loss", "100"])
        .args(["--duration", &options.step_seconds.to_string()])
        .arg("--json")
        .arg(&path)
        .stdout(std::process::Stdio::null());
    let line = cmd::display(&command);
    eprintln!("$ {line}");
    let status = command
        .status()
        .with_context(|| format!("cannot start `{line}`"))?;
    if !(status.success() || status.code() == Some(1)) {
        bail!("`{line}` failed ({status})");
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let summary: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let step = &summary["ramp"]["steps"][0];
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let detail = &summary["ramp"]["step_details"][0];
    let known = super::known_percent(detail);
    if known > super::KNOWN_LIMIT_PERCENT {
        println!(
            "  {label}: {known:.1} % of the flows were by clients already bound (the {} clients \
             wrapped): a lighter workload than new clients; raise --clients",
            options.clients
        );
    }
    let load = rounds::step_load(
        &detail["cpu"],
        detail["process_ticks"].as_u64(),
        &options.measured_cores(),
        rounds::Thresholds {
            steal_percent: options.steal_limit,
            foreign_percent: options.foreign_limit,
            foreign_core_percent: options.foreign_core_limit,
        },
    );
    Ok(Point {
        label: label.to_owned(),
        round,
        throughput: num(&step["throughput"]),
        loss_percent: num(&step["loss_percent"]),
        p50_us: num(&step["p50_us"]),
        p99_us: num(&step["p99_us"]),
        cpu_us_per_flow: detail["server_ticks"].as_u64().map_or(f64::NAN, |ticks| {
            cpu_us_per_flow(ticks, num(&step["throughput"]), options.step_seconds)
        }),
        disturbed: load.disturbed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_per_flow_is_the_servers_ticks_over_the_flows_completed() {
        // 150 ticks (1.5 s) over a 3 s step at 30,000 flows/s: 90,000 flows, 16.7 us each.
        let us = cpu_us_per_flow(150, 30_000.0, 3.0);
        assert!((us - 16.666).abs() < 0.01, "{us}");
        assert!(cpu_us_per_flow(150, 0.0, 3.0).is_nan());
    }
}
