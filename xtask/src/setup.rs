//! `cargo xtask setup`: install what a fresh Debian 12 machine lacks.
//!
//! Each requirement is checked first, so a second run is quick; what cannot be installed is
//! listed at the end and the task fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Debian packages the tests and the demo use, with a command that proves each is usable.
const APT_PACKAGES: &[(&str, &str)] = &[
    ("iproute2", "ip"),
    ("isc-dhcp-client", "dhclient"),
    ("isc-dhcp-relay", "dhcrelay"),
    ("kea-dhcp6-server", "kea-dhcp6"),
    ("kea-admin", "perfdhcp"),
    ("tshark", "tshark"),
    ("tcpdump", "tcpdump"),
    ("ethtool", "ethtool"),
    // The DNS update tests: BIND 9 with its tools (dig, tsig-keygen).
    ("bind9", "named"),
    ("bind9-dnsutils", "dig"),
    // `cargo xtask package` and its test.
    ("dpkg-dev", "dpkg-shlibdeps"),
    ("systemd", "systemd-analyze"),
    ("man-db", "man"),
    ("adduser", "adduser"),
    ("strace", "strace"),
];

/// The bpf-linker release line that builds against the nightly's own LLVM.
const BPF_LINKER_VERSION: &str = "^0.13";

/// One requirement: checks, installs if needed, and says what it found or did.
type Step = fn() -> Result<String>;

pub fn run() -> Result<()> {
    let mut failures = Vec::new();
    let steps: [(&str, Step); 4] = [
        ("apt packages", apt_packages),
        ("nightly rust-src", nightly_rust_src),
        ("bpf-linker", bpf_linker),
        ("cargo-fuzz", cargo_fuzz),
    ];
    for (name, step) in steps {
        match step() {
            Ok(what) => eprintln!("setup: {name}: {what}"),
            Err(error) => {
                eprintln!("setup: {name}: FAILED: {error:#}");
                failures.push(name);
            }
        }
    }
    if !failures.is_empty() {
        bail!("could not set up: {}", failures.join(", "));
    }
    eprintln!("setup: everything is in place");
    Ok(())
}

fn apt_packages() -> Result<String> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .filter(|(package, _)| !package_installed(package))
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(format!("all {} present", APT_PACKAGES.len()));
    }
    cmd::require_root("installing apt packages")?;
    eprintln!("setup: installing {}", missing.join(" "));
    cmd::run(Command::new("apt-get").args(["update", "-qq"]))?;
    cmd::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing),
    )?;
    let still_missing: Vec<&str> = APT_PACKAGES
        .iter()
        .filter(|(package, program)| !package_installed(package) || which(program).is_none())
        .map(|(package, _)| *package)
        .collect();
    if !still_missing.is_empty() {
        bail!("still missing after apt-get: {}", still_missing.join(" "));
    }
    Ok(format!("installed {}", missing.join(" ")))
}

fn package_installed(package: &str) -> bool {
    cmd::output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_ok_and(|status| status.trim() == "install ok installed")
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    // Debian puts daemons (dhcrelay, kea-dhcp6) in sbin, which a non-login PATH may lack.
    dirs.extend(["/usr/sbin", "/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

fn nightly_rust_src() -> Result<String> {
    let sysroot = nightly_sysroot()?;
    if sysroot.join("lib/rustlib/src/rust/library/core").is_dir() {
        return Ok("present".into());
    }
    cmd::run(Command::new("rustup").args([
        "component",
        "add",
        "rust-src",
        "--toolchain",
        "nightly",
    ]))?;
    Ok("installed".into())
}

fn nightly_sysroot() -> Result<PathBuf> {
    let sysroot = cmd::output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))
        .context("the nightly toolchain is needed to build the eBPF program (`rustup toolchain install nightly`)")?;
    Ok(PathBuf::from(sysroot.trim()))
}

/// Installs bpf-linker built against the nightly's own libLLVM.
///
/// bpf-linker links LLVM dynamically and records the prefix as its run path, so the prefix
/// lives under CARGO_HOME, next to the binary, rather than in a temporary folder.
fn bpf_linker() -> Result<String> {
    if cmd::answers("bpf-linker", &["--version"]) {
        let version = cmd::output(Command::new("bpf-linker").arg("--version"))?;
        return Ok(format!("present ({})", version.trim()));
    }
    let sysroot = nightly_sysroot()?;
    let library = nightly_libllvm(&sysroot)?;
    let file_name = library
        .file_name()
        .and_then(|name| name.to_str())
        .context("libLLVM has no file name")?
        .to_owned();
    // "libLLVM.so.22.1-rust-1.97.0-nightly" -> 22
    let major = file_name
        .trim_start_matches("libLLVM.so.")
        .split(['.', '-'])
        .next()
        .filter(|major| major.chars().all(|c| c.is_ascii_digit()) && !major.is_empty())
        .with_context(|| format!("cannot read the LLVM major version from {file_name}"))?
        .to_owned();

    let prefix = cargo_home()?.join("xdhcp6-llvm-prefix");
    let lib = prefix.join("lib");
    std::fs::create_dir_all(&lib).with_context(|| format!("creating {}", lib.display()))?;
    for link in ["libLLVM.so", file_name.as_str()] {
        let path = lib.join(link);
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(&library, &path)
            .with_context(|| format!("linking {} to {}", path.display(), library.display()))?;
    }
    eprintln!(
        "setup: building bpf-linker against {} (LLVM {major}); this takes a few minutes",
        library.display()
    );
    cmd::run(
        Command::new("cargo")
            .env("LLVM_PREFIX", &prefix)
            .args([
                "install",
                "bpf-linker",
                "--force",
                "--version",
                BPF_LINKER_VERSION,
            ])
            .args(["--no-default-features", "--features"])
            .arg(format!("llvm-{major}")),
    )?;
    if !cmd::answers("bpf-linker", &["--version"]) {
        bail!("bpf-linker was installed but does not run; is CARGO_HOME/bin on PATH?");
    }
    Ok(format!("installed (LLVM {major})"))
}

/// Installs cargo-fuzz, which `cargo xtask test` uses to run the fuzz targets.
fn cargo_fuzz() -> Result<String> {
    if cmd::answers("cargo", &["fuzz", "--version"]) {
        return Ok("present".into());
    }
    cmd::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    Ok("installed".into())
}

/// The nightly's shared libLLVM (the real file, not the linker script beside it).
fn nightly_libllvm(sysroot: &Path) -> Result<PathBuf> {
    let lib = sysroot.join("lib");
    let entries = std::fs::read_dir(&lib).with_context(|| format!("reading {}", lib.display()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("libLLVM.so.") && entry.metadata()?.len() > 1 << 20 {
            return Ok(entry.path());
        }
    }
    bail!("no libLLVM.so.* in {}", lib.display())
}

fn cargo_home() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        return Ok(PathBuf::from(home));
    }
    let home = std::env::var_os("HOME").context("neither CARGO_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cargo"))
}
