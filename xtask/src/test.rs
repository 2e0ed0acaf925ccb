//! `cargo xtask test`: every test layer, in the order a failure is cheapest to find.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{build, cmd, package};

/// Options of `cargo xtask test`.
#[derive(clap::Args)]
pub struct Options {
    /// Seconds each fuzz target runs after replaying the seed corpus (0: replay only).
    #[arg(long, default_value_t = 20)]
    fuzz_seconds: u32,
}

/// The cargo-fuzz targets, each with the seed folders it starts from.
const FUZZ_TARGETS: &[(&str, &[&str])] = &[
    ("message", &["fuzz/seeds/message", "fuzz/seeds/relay"]),
    ("relay_chain", &["fuzz/seeds/relay"]),
    ("journal_format", &["fuzz/seeds/journal_format"]),
    ("engine", &["fuzz/seeds/engine"]),
    ("frame", &["fuzz/seeds/frame"]),
];

pub fn run(options: &Options) -> Result<()> {
    cmd::require_root("cargo xtask test")?;
    let started = Instant::now();
    let mut report = Vec::new();
    let mut step = |name: &str, action: &mut dyn FnMut() -> Result<()>| -> Result<()> {
        eprintln!("\n==> {name}");
        let begun = Instant::now();
        action().with_context(|| format!("test step `{name}` failed"))?;
        report.push(format!(
            "{name:<48} ok  {:>6.1} s",
            begun.elapsed().as_secs_f64()
        ));
        Ok(())
    };

    step("formatting (cargo fmt --check)", &mut || {
        cmd::run(cmd::cargo().args(["fmt", "--all", "--", "--check"]))
    })?;
    step("lints (cargo clippy -D warnings)", &mut || {
        cmd::run(cmd::cargo().args([
            "clippy",
            "--workspace",
            "--exclude",
            "xdhcp6-ebpf",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    step("unit, property and differential tests", &mut || {
        cmd::run(cmd::cargo().args(["test", "--workspace", "--exclude", "xdhcp6-ebpf"]))
    })?;
    let mut ebpf_object = None;
    step("eBPF object (nightly, bpf-linker)", &mut || {
        ebpf_object = Some(build::ebpf()?);
        Ok(())
    })?;
    let ebpf_object = ebpf_object.context("the eBPF build produced no object")?;
    step(
        "appliance tests (root: XDP, AF_XDP, dhclient, dhcrelay, perfdhcp)",
        &mut || {
            cmd::run(
                cmd::cargo()
                    .env("XDHCP6_EBPF_OBJECT", &ebpf_object)
                    .args(["test", "-p", "xdhcp6d", "-p", "xdhcp6-bench"])
                    .args(["--", "--include-ignored"])
                    .args(["--test-threads=1"]),
            )
        },
    )?;
    step(
        "Debian package (build, install, verify units, run as the units, purge)",
        &mut || {
            // The dev profile: the appliance tests above built it already, and what is
            // checked here is the package, not the optimiser.
            let deb = package::build_deb("dev", &ebpf_object)?;
            package::check(&deb)
        },
    )?;
    for (target, seeds) in FUZZ_TARGETS {
        step(
            &format!("fuzz target `{target}` over the seeds"),
            &mut || fuzz(target, seeds, options.fuzz_seconds),
        )?;
    }

    eprintln!("\ncargo xtask test: all steps passed");
    for line in &report {
        eprintln!("  {line}");
    }
    eprintln!("  total {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Replays the seeds through a fuzz target, then fuzzes it for `seconds`.
fn fuzz(target: &str, seeds: &[&str], seconds: u32) -> Result<()> {
    let root = cmd::workspace_root();
    let mut seed_count = 0;
    for seed_dir in seeds {
        let dir = root.join(seed_dir);
        seed_count += std::fs::read_dir(&dir)
            .with_context(|| format!("reading seed folder {}", dir.display()))?
            .filter_map(Result::ok)
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "bin"))
            .count();
    }
    if seed_count == 0 {
        bail!("no .bin seeds for fuzz target `{target}` under {seeds:?}");
    }
    let scratch = root.join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    eprintln!("fuzz: `{target}` from {seed_count} seeds, then {seconds} s of fuzzing");
    let mut command = Command::new("cargo");
    command
        .current_dir(&root)
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("CARGO")
        .args(["+nightly", "fuzz", "run", target])
        .arg(&scratch)
        .args(seeds.iter().map(|seed| Path::new(seed).to_path_buf()))
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(if seconds == 0 { "-runs=0" } else { "-runs=-1" })
        .arg("-print_final_stats=1");
    cmd::run(&mut command)
}
