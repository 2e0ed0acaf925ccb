//! `cargo xtask bench --avalanche N`: N clients start at once, as after a region-wide
//! outage, and bind with the RFC 9915 retransmission timers (`xdhcp6-bench --scenario
//! avalanche`), against xdhcp6d over AF_XDP, xdhcp6d over UDP and Kea in turn; one table and
//! one plot of clients bound against time.

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::{Lab, TARGETS, Target};
use crate::cmd;

/// The targets an avalanche runs against (the reflector answers no DHCP).
const AVALANCHE_TARGETS: [&str; 3] = ["xdhcp6d-xdp", "xdhcp6d-udp", "kea"];

pub(super) fn run(lab: &Lab<'_>, clients: u32) -> Result<()> {
    let options = lab.options;
    if !(options.avalanche_limit > 0.0 && options.avalanche_max_rate >= 0.0) {
        bail!("--avalanche-limit must be positive and --avalanche-max-rate not negative");
    }
    let targets: Vec<Target> = TARGETS
        .into_iter()
        .filter(|t| AVALANCHE_TARGETS.contains(&t.name))
        .filter(|t| options.only.is_empty() || options.only.iter().any(|n| n == t.name))
        .collect();
    if targets.is_empty() {
        bail!("--avalanche: --only names none of xdhcp6d-xdp, xdhcp6d-udp, kea");
    }
    let mut results = Vec::new();
    for target in targets {
        println!(
            "\n== avalanche of {clients} clients: {}: {}",
            target.name, target.what
        );
        let server = lab.start_server(target)?;
        lab.wait_answering(target)?;
        let json = lab.work.join(format!("avalanche-{}.json", target.name));
        let _ = std::fs::remove_file(&json);
        let mut command = lab.generator(
            Target {
                scenario: "avalanche",
                ..target
            },
            clients,
            0xa1,
        );
        command
            .args(["--duration", &options.avalanche_limit.to_string()])
            .args(["--max-send-rate", &options.avalanche_max_rate.to_string()])
            .arg("--json")
            .arg(&json)
            .arg("--plot")
            .arg(lab.work.join(format!("avalanche-{}.svg", target.name)))
            .stdout(Stdio::null());
        let line = cmd::display(&command);
        eprintln!("$ {line}");
        let status = command
            .status()
            .with_context(|| format!("cannot start `{line}`"))?;
        drop(server);
        if !(status.success() || status.code() == Some(1)) {
            bail!("`{line}` failed ({status})");
        }
        let text = std::fs::read_to_string(&json)
            .with_context(|| format!("reading {}", json.display()))?;
        let summary: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", json.display()))?;
        println!(
            "  {}: {} of {clients} bound, all after {}",
            target.name,
            summary["bound"],
            seconds(&summary["all_bound_s"])
        );
        results.push((target, json, summary));
    }
    let table = table(clients, options.avalanche_max_rate, &results);
    println!("\n{table}");
    let work = &lab.work;
    std::fs::write(work.join("avalanche.md"), &table)?;
    let combined = json!({
        "clients": clients,
        "relays": options.relays,
        "transport": options.transport,
        "max_send_rate": options.avalanche_max_rate,
        "limit_seconds": options.avalanche_limit,
        "targets": results.iter().map(|(t, path, s)| json!({
            "name": t.name,
            "what": t.what,
            "summary": path.display().to_string(),
            "all_bound_s": s["all_bound_s"],
            "bound": s["bound"],
            "bound_p50_s": s["bound_p50_s"],
            "bound_p90_s": s["bound_p90_s"],
            "bound_p99_s": s["bound_p99_s"],
            "bound_p100_s": s["bound_p100_s"],
            "counts": s["counts"],
            "total_failures": s["total_failures"],
        })).collect::<Vec<_>>(),
    });
    std::fs::write(
        work.join("avalanche.json"),
        serde_json::to_string_pretty(&combined)? + "\n",
    )?;
    let plot_path = work.join("avalanche.svg");
    let mut plot = Command::new(lab.release.join("xdhcp6-compare"));
    plot.arg("--title")
        .arg(format!(
            "avalanche: {clients} clients start at once, clients bound over time ({} transport, \
             {} relays)",
            options.transport, options.relays
        ))
        .arg("--output")
        .arg(&plot_path)
        .args(
            results
                .iter()
                .map(|(t, path, _)| format!("{}={}", t.name, path.display())),
        );
    cmd::run(&mut plot)?;
    println!("  table: {}", work.join("avalanche.md").display());
    println!("  json:  {}", work.join("avalanche.json").display());
    println!("  plot:  {}", plot_path.display());
    Ok(())
}

fn seconds(v: &Value) -> String {
    v.as_f64().map_or("-".to_owned(), |s| format!("{s:.1} s"))
}

/// The side-by-side table of avalanche summaries (Markdown).
fn table(clients: u32, max_rate: f64, results: &[(Target, std::path::PathBuf, Value)]) -> String {
    let mut t = format!(
        "avalanche: {clients} clients start at once (first Solicit within 1 s; RFC 9915 \
         Solicit and Request retransmission), generator cap {}\n\n",
        if max_rate > 0.0 {
            format!("{max_rate:.0} messages/s")
        } else {
            "none".to_owned()
        }
    );
    t.push_str(
        "| target | bound | 50 % bound | 90 % | 99 % | all bound | Solicits (retransmitted) \
         | Requests (retransmitted) | failures |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for (target, _, s) in results {
        let c = &s["counts"];
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} ({}) | {} ({}) | {} |\n",
            target.name,
            s["bound"],
            seconds(&s["bound_p50_s"]),
            seconds(&s["bound_p90_s"]),
            seconds(&s["bound_p99_s"]),
            seconds(&s["all_bound_s"]),
            c["solicit"],
            c["solicit_retransmissions"],
            c["request"],
            c["request_retransmissions"],
            s["total_failures"],
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avalanche_table_reads_the_generator_summary() {
        let summary = json!({
            "bound": 100000, "bound_p50_s": 1.25, "bound_p90_s": 2.0, "bound_p99_s": 3.5,
            "all_bound_s": 4.0, "total_failures": 0,
            "counts": {"solicit": 120000, "solicit_retransmissions": 20000,
                       "request": 101000, "request_retransmissions": 1000},
        });
        let target = TARGETS[1];
        let t = table(100_000, 0.0, &[(target, "x.json".into(), summary)]);
        assert!(
            t.contains("| xdhcp6d-xdp | 100000 | 1.2 s | 2.0 s | 3.5 s | 4.0 s | 120000 (20000) | 101000 (1000) | 0 |"),
            "{t}"
        );
        assert!(t.contains("generator cap none"));
        let unbound = json!({"bound": 5, "all_bound_s": null, "counts": {}});
        assert!(table(10, 5000.0, &[(target, "y".into(), unbound)]).contains("| - |"));
    }
}
