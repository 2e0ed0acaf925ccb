//! `cargo xtask build`: the eBPF object (nightly, build-std, bpf-linker) and release binaries.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::cmd;

/// Builds the eBPF object, then the release binaries with the object embedded; returns the
/// path of the appliance binary.
pub fn all() -> Result<PathBuf> {
    let ebpf_object = ebpf()?;
    cmd::run(cmd::cargo().env("XDHCP6_EBPF_OBJECT", &ebpf_object).args([
        "build",
        "--release",
        "-p",
        "xdhcp6d",
        "-p",
        "xdhcp6-bench",
    ]))?;
    let daemon = target_dir().join("release/xdhcp6d");
    eprintln!("build: {}", ebpf_object.display());
    eprintln!("build: {}", daemon.display());
    Ok(daemon)
}

/// Builds the XDP program and returns the path of its object file.
pub fn ebpf() -> Result<PathBuf> {
    let mut command = Command::new("cargo");
    command
        .current_dir(cmd::workspace_root())
        // The outer (stable) cargo's choices must not leak into the nightly build.
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .env_remove("CARGO")
        .args(["+nightly", "build", "-p", "xdhcp6-ebpf", "--release"])
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"]);
    cmd::run(&mut command).context(
        "building the eBPF program needs nightly rust-src and bpf-linker: run `cargo xtask setup`",
    )?;
    Ok(target_dir().join("bpfel-unknown-none/release/xdhcp6-ebpf"))
}

/// The cargo target directory of the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cmd::workspace_root().join("target"))
}
