//! `xdhcp6-compare`: one plot of several ramps, from the JSON summaries `xdhcp6-bench --ramp
//! --json` wrote (`cargo xtask bench` draws its side-by-side plot with it), or of several
//! avalanches (`--scenario avalanche --json`): clients bound against time.

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Parser;
use serde_json::Value;
use xdhcp6_bench::avalanche;
use xdhcp6_bench::report::{PlotPoint, compare_svg};

/// Draws throughput and latency against offered load for several ramps in one SVG.
#[derive(Debug, Parser)]
#[command(name = "xdhcp6-compare", version)]
struct Cli {
    /// The plot's title.
    #[arg(long)]
    title: String,
    /// Where to write the SVG.
    #[arg(long, short = 'o', value_name = "PATH")]
    output: PathBuf,
    /// The series, in order: NAME=SUMMARY.json, the summary of `xdhcp6-bench --ramp --json`
    /// (or, all of them, of `--scenario avalanche --json`).
    #[arg(value_name = "NAME=PATH", required = true)]
    series: Vec<String>,
}

fn main() -> ExitCode {
    match run(&Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xdhcp6-compare: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let mut summaries = Vec::new();
    for item in &cli.series {
        let Some((name, path)) = item.split_once('=') else {
            bail!("{item:?}: expected NAME=PATH");
        };
        let text = fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        let summary: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {path}"))?;
        summaries.push((name.to_owned(), summary));
    }
    // Avalanche summaries (a timeline of clients bound) give clients bound against time.
    let svg = if summaries
        .iter()
        .all(|(_, s)| s["timeline"][0]["bound_total"].is_u64())
    {
        let series: Vec<(String, Vec<(f64, f64)>)> = summaries
            .iter()
            .map(|(name, s)| (name.clone(), bound_points(s)))
            .collect();
        avalanche::compare_svg(&cli.title, &series)
    } else {
        let series: Vec<(String, Vec<PlotPoint>)> = summaries
            .iter()
            .map(|(name, s)| (name.clone(), ramp_points(s)))
            .collect();
        compare_svg(&cli.title, &series)
    };
    fs::write(&cli.output, svg).with_context(|| format!("writing {}", cli.output.display()))
}

/// An avalanche's clients bound at each second, starting from none at 0.
fn bound_points(summary: &Value) -> Vec<(f64, f64)> {
    let mut points = vec![(0.0, 0.0)];
    for sample in summary["timeline"].as_array().into_iter().flatten() {
        points.push((
            sample["t_s"].as_f64().unwrap_or(0.0),
            sample["bound_total"].as_f64().unwrap_or(0.0),
        ));
    }
    points
}

/// The steps of a summary's ramp (none when it ran no ramp).
fn ramp_points(summary: &Value) -> Vec<PlotPoint> {
    let number = |step: &Value, key: &str| step[key].as_f64().unwrap_or(0.0);
    summary["ramp"]["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|step| PlotPoint {
                    offered: number(step, "offered"),
                    throughput: number(step, "throughput"),
                    p50_us: number(step, "p50_us"),
                    p99_us: number(step, "p99_us"),
                })
                .collect()
        })
        .unwrap_or_default()
}
