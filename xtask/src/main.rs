//! `cargo xtask`: everything that needs the BPF toolchain, root or network namespaces.
//!
//! `setup` installs what a fresh Debian 12 machine lacks, `build` builds the eBPF object and
//! the release binaries, `test` runs every test layer, `bench` measures the appliance against
//! the link's ceiling and Kea, `demo` shows the appliance working in a throw-away network
//! namespace, and `failover` kills one server of a redundant pair under load and measures what
//! the clients lose, `torture` floods it as an attacker would and shows what its default
//! limits keep safe, and `package` builds the Debian package.

mod bench;
mod build;
mod cmd;
mod demo;
mod failover;
mod package;
mod process;
mod setup;
mod test;
mod torture;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Developer and operator tasks for xdhcp6.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what this machine lacks: apt packages, nightly rust-src, bpf-linker.
    ///
    /// Idempotent and quick when everything is present; says exactly what it could not install.
    Setup,
    /// Build the eBPF object and the release binaries (xdhcp6d with the object embedded).
    Build,
    /// Run every test layer: formatting, clippy, unit/property tests, the appliance tests
    /// that need root (XDP program under BPF_PROG_TEST_RUN, AF_XDP, real dhclient, dhcrelay
    /// and perfdhcp in network namespaces), the Debian package (installed, its units verified
    /// and run with their own user and capabilities, purged) and the fuzz targets over the
    /// seed corpus.
    ///
    /// Runs `setup` first, so it works on a fresh clone.
    Test(test::Options),
    /// Set up, build, then show the appliance at work in throw-away network namespaces:
    /// xdhcp6d over AF_XDP, real dhclient, the load generator, the metrics.
    Demo,
    /// Set up, build, then measure in one run, on the same veth topology and the same
    /// generator: the link's ceiling (an AF_XDP bounce program), xdhcp6d over AF_XDP, xdhcp6d
    /// over UDP and Kea; prints one side-by-side table and writes JSON and an SVG plot under
    /// target/xtask-bench/.
    Bench(Box<bench::Options>),
    /// Build, then run the RFC 6853 split-prefix pair (examples/split-a.toml and -b) on the
    /// UDP datapath with 100,000 emulated clients that keep their leases, SIGKILL the
    /// Preference-255 server once every client has renewed, and compare how many clients
    /// lost service and for how long under several choices of T1/T2/lifetimes.
    Failover(failover::Options),
    /// Build, then flood the appliance (its default limits in force) on each datapath with
    /// random-DUID Solicits, Requests without a Solicit, Declines and malformed datagrams from
    /// one relay while a legitimate population comes through others; prints RSS and lease
    /// table before, during and after, journal bytes written, the legitimate success rate and
    /// the drops by reason, and writes them under target/torture/.
    Torture(torture::Options),
    /// Build the Debian package (target/package/xdhcp6_VERSION_ARCH.deb): xdhcp6d with the
    /// XDP object embedded, the hardened systemd units of dist/systemd, the example
    /// configuration as /etc/xdhcp6/xdhcp6.toml, man pages and bash, zsh and fish completions
    /// generated from the command line, and the maintainer scripts of dist/debian.
    Package(package::Options),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Setup => setup::run(),
        Task::Build => build::all().map(drop),
        Task::Test(options) => setup::run().and_then(|()| test::run(&options)),
        Task::Demo => setup::run().and_then(|()| demo::run()),
        Task::Bench(options) => setup::run().and_then(|()| bench::run(&options)),
        Task::Failover(options) => failover::run(&options),
        Task::Torture(options) => torture::run(&options),
        Task::Package(options) => package::run(&options),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
