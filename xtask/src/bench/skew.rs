//! `cargo xtask bench --relay-skew N`: the same clients behind one relay and behind N relays.
//!
//! A relay agent (a cable modem termination system, say) sends all its Relay-forward messages
//! from one address and port, so a NIC's receive-side scaling puts all of them on one queue;
//! N relays spread over the queues. With `--queues` above 1, the generator sends each relay's
//! traffic on the queue RSS would pick (`xdhcp6-bench --queues`), and this compares the
//! highest rate of each target in both cases: a server that spreads one queue's load over its
//! workers reaches about the same rate with 1 relay as with N. The two ramps of a round run
//! in alternating order (1 then N, N then 1), each against a freshly started server, so that
//! a drift of the machine's load touches both alike.

use anyhow::Result;
use serde_json::json;

use super::{Lab, Measured, TARGETS, Target, core_list, rounds};

/// The targets compared when --only names none.
const DEFAULT_TARGETS: [&str; 2] = ["ceiling", "xdhcp6d-xdp"];

pub(super) fn run(lab: &Lab<'_>, many: u32) -> Result<()> {
    let options = lab.options;
    let targets: Vec<Target> = TARGETS
        .into_iter()
        .filter(|t| {
            if options.only.is_empty() {
                DEFAULT_TARGETS.contains(&t.name)
            } else {
                options.only.iter().any(|n| n == t.name)
            }
        })
        .collect();
    // (target, relays, measurement)
    let mut results: Vec<(&'static str, u32, Measured)> = Vec::new();
    for round in 1..=options.rounds {
        println!("\n== round {round} of {}", options.rounds);
        for &target in &targets {
            let order = if round % 2 == 1 { [1, many] } else { [many, 1] };
            for relays in order {
                println!(
                    "\n== {} (round {round}), clients behind {relays} relay(s): {}",
                    target.name, target.what
                );
                lab.relays.set(relays);
                let server = lab.start_server(target)?;
                lab.wait_answering(target)?;
                let measured = lab.ramp(target, round)?;
                drop(server);
                println!(
                    "  {} round {round}, {relays} relay(s): best {} flows/s{}",
                    target.name,
                    measured
                        .best_rate
                        .map_or("none".to_owned(), |r| format!("{r:.0}")),
                    if measured.disturbed {
                        " (disturbed)"
                    } else {
                        ""
                    }
                );
                results.push((target.name, relays, measured));
            }
        }
    }
    lab.relays.set(options.relays);

    let mut table = format!(
        "relay skew: sarr flows/s (echo for the ceiling) with loss <= {} %, {} clients behind 1 \
         relay or {many} relays, {} queue(s) on each end of the veth pair, generator over {} \
         on core(s) {}, server on core(s) {}, {} s per step, xdhcp6d journal durability {}; \
         {} rounds; medians over the rounds not disturbed, ranges over all\n\n\
         | target | 1 relay (median) | range | {many} relays (median) | range | 1 relay / \
         {many} relays (median) | range |\n|---|---|---|---|---|---|---|\n",
        options.loss,
        options.clients,
        options.queues,
        options.transport,
        core_list(&options.generator_cores()),
        core_list(&options.server_cores()),
        options.step_seconds,
        options.durability,
        options.rounds,
    );
    let mut targets_json = Vec::new();
    for target in &targets {
        let rates = |relays: u32| -> Vec<(f64, bool)> {
            results
                .iter()
                .filter(|(name, r, _)| *name == target.name && *r == relays)
                .map(|(_, _, m)| (m.best_rate.unwrap_or(0.0), m.disturbed))
                .collect()
        };
        let (one, many_rates) = (rates(1), rates(many));
        // Per round: the two ramps of one round ran side by side.
        let ratios: Vec<(f64, bool)> = one
            .iter()
            .zip(&many_rates)
            .filter(|(_, m)| m.0 > 0.0)
            .map(|(o, m)| (o.0 / m.0, o.1 || m.1))
            .collect();
        let cell = |values: &[(f64, bool)], percent: bool| -> (String, String, serde_json::Value) {
            let (kept, _) = rounds::undisturbed(values);
            let all: Vec<f64> = values.iter().map(|v| v.0).collect();
            match (rounds::spread(&kept), rounds::spread(&all)) {
                (Some(median), Some(range)) => {
                    let (scale, unit) = if percent { (100.0, " %") } else { (1.0, "/s") };
                    (
                        format!("{:.0}{unit}", scale * median.median),
                        format!("{:.0}-{:.0}{unit}", scale * range.min, scale * range.max),
                        json!({ "median": median.median, "min": range.min, "max": range.max,
                                "rounds": values.len() }),
                    )
                }
                _ => ("-".to_owned(), "-".to_owned(), serde_json::Value::Null),
            }
        };
        let (one_median, one_range, one_json) = cell(&one, false);
        let (many_median, many_range, many_json) = cell(&many_rates, false);
        let (ratio_median, ratio_range, ratio_json) = cell(&ratios, true);
        table.push_str(&format!(
            "| {} | {one_median} | {one_range} | {many_median} | {many_range} | {ratio_median} \
             | {ratio_range} |\n",
            target.name
        ));
        targets_json.push(json!({
            "name": target.name,
            "one_relay": one_json,
            "many_relays": many_json,
            "one_over_many": ratio_json,
        }));
    }
    println!("\n{table}");
    let summary = json!({
        "many_relays": many,
        "queues": options.queues,
        "clients": options.clients,
        "generator_cores": options.generator_cores(),
        "server_cores": options.server_cores(),
        "rounds": options.rounds,
        "targets": targets_json,
        "per_round": results.iter().map(|(name, relays, m)| json!({
            "name": name,
            "relays": relays,
            "round": m.round,
            "best_rate": m.best_rate,
            "disturbed": m.disturbed,
            "summary": m.json.display().to_string(),
        })).collect::<Vec<_>>(),
    });
    let md = lab.work.join("relay-skew.md");
    let json_path = lab.work.join("relay-skew.json");
    std::fs::write(&md, &table)?;
    std::fs::write(&json_path, serde_json::to_string_pretty(&summary)? + "\n")?;
    println!("  table: {}", md.display());
    println!("  json:  {}", json_path.display());
    Ok(())
}
