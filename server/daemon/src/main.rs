//! `xdhcp6d`: the xdhcp6 DHCPv6 server appliance.

use std::{
    path::PathBuf,
    process::ExitCode,
    sync::Arc,
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use xdhcp6_common::{Counters, PassReason};
use xdhcp6_engine::{Engine, alloc::SaltKey, config::Config, table::LeaseTable};
use xdhcp6d::xdp::{AttachMode, EbpfObject, Steering};

/// DHCPv6 server appliance (RFC 9915) for semi-redundant deployments (RFC 6853).
#[derive(Debug, Parser)]
#[command(name = "xdhcp6d", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration file and print what it serves.
    ///
    /// Every error names the file, the field and the problem; the exit status is non-zero when
    /// the file is invalid. Nothing is written (a `duid-file` that does not exist yet is
    /// reported, not created).
    CheckConfig {
        /// The TOML configuration file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Attach the XDP steering program to an interface and print its counters every second.
    ///
    /// Frames that are DHCPv6 to a server (IPv6/UDP port 547, up to two VLAN tags) count as
    /// `steered`, or `no_socket` while no AF_XDP socket serves their queue (they then go to the
    /// kernel); all other frames count as `passed`, split by reason. Needs root (CAP_BPF and
    /// CAP_NET_ADMIN). Ctrl-C detaches the program.
    XdpWatch {
        /// Interface to attach to.
        #[arg(short, long, value_name = "IF")]
        interface: String,
        /// XDP attach mode: native (driver), skb (generic) or auto (native, else skb).
        #[arg(short, long, value_enum, default_value_t = AttachMode::Auto)]
        mode: AttachMode,
        /// Stop after this many seconds (default: run until interrupted).
        #[arg(short, long, value_name = "N")]
        seconds: Option<u64>,
        /// The compiled XDP object (default: $XDHCP6_EBPF_OBJECT, else the embedded copy).
        #[arg(long, value_name = "PATH")]
        ebpf_object: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match Cli::parse().command {
        Command::CheckConfig { file } => check_config(&file),
        Command::XdpWatch {
            interface,
            mode,
            seconds,
            ebpf_object,
        } => xdp_watch(&interface, mode, seconds, ebpf_object),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The chain of causes, not a backtrace: operators read this.
            eprintln!("xdhcp6d: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(file: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("{}: cannot read", file.display()))?;
    let mut config = Config::from_toml_str(&text, &file.display().to_string())?;
    let duid = if config.server.duid.is_empty() {
        match &config.server.duid_file {
            Some(path) if path.exists() => format!("read from {} at start", path.display()),
            Some(path) => format!("generated into {} at first start", path.display()),
            None => "none".to_owned(),
        }
    } else {
        hex(&config.server.duid)
    };
    if config.server.duid.is_empty() {
        // A stand-in so the allocators can be built; the real DUID is resolved at start.
        config.server.duid = vec![0, 3, 0, 1, 0, 0, 0, 0, 0, 0];
    }
    let config = Arc::new(config);
    let table = Arc::new(LeaseTable::with_capacity(
        1024,
        SaltKey::from_salt(&config.server.salt),
    ));
    Engine::new(Arc::clone(&config), table)
        .with_context(|| format!("{}: the pools cannot be served", file.display()))?;
    println!("{}: valid", file.display());
    println!("  server DUID: {duid}");
    println!("  preference:  {}", config.server.preference);
    println!("  rebind-foreign: {:?}", config.server.rebind_foreign);
    for link in &config.links {
        let timers = link.timers;
        println!(
            "  link {:?}: T1 {} s, T2 {} s, preferred {} s, valid {} s, rapid commit {}",
            link.name, timers.t1, timers.t2, timers.preferred, timers.valid, link.rapid_commit
        );
        for pool in &link.na_pools {
            println!(
                "    addresses {} (this server: {})",
                pool.prefix, pool.range
            );
        }
        for pool in &link.pd_pools {
            println!(
                "    prefixes /{} from {} (this server: {})",
                pool.delegated_len, pool.prefix, pool.range
            );
        }
    }
    println!("  reservations: {}", config.reservations.len());
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn xdp_watch(
    interface: &str,
    mode: AttachMode,
    seconds: Option<u64>,
    ebpf_object: Option<PathBuf>,
) -> anyhow::Result<()> {
    let object = EbpfObject::locate(ebpf_object.as_deref())?;
    let mut steering = Steering::load(&object)
        .with_context(|| format!("loading the XDP program from {}", object.origin()))?;
    let used = steering
        .attach(interface, mode)
        .with_context(|| format!("attaching to {interface}"))?;
    println!("xdp-watch: attached to {interface} in {used} mode");
    stop_on_signals();

    let start = Instant::now();
    let deadline = seconds.map(|seconds| start + Duration::from_secs(seconds));
    let mut previous = steering.counters()?;
    let mut tick = 1u64;
    loop {
        let next = start + Duration::from_secs(tick);
        if sleep_until(next) {
            break;
        }
        steering.flush_log();
        let counters = steering.counters()?;
        println!("{}", line(tick, &counters, &counters.since(&previous)));
        previous = counters;
        if deadline.is_some_and(|deadline| next >= deadline) {
            break;
        }
        tick += 1;
    }
    steering.detach()?;
    println!("xdp-watch: detached from {interface}");
    Ok(())
}

/// `t=3s steered=... (+delta) ...` with every pass reason, for people and for the demo's grep.
fn line(tick: u64, total: &Counters, delta: &Counters) -> String {
    let mut text = format!(
        "t={tick}s steered={} (+{}) no_socket={} (+{}) passed={} (+{})",
        total.steered, delta.steered, total.no_socket, delta.no_socket, total.passed, delta.passed
    );
    for reason in PassReason::ALL {
        text.push_str(&format!(" {}={}", reason.name(), total.passed_for(reason)));
    }
    text
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_signal: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// SIGINT and SIGTERM end the watch loop, so that the program is detached on the way out.
fn stop_on_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // Safety: `request_stop` only stores to an atomic, which is async-signal-safe, and has
        // the `extern "C" fn(c_int)` signature `signal` expects.
        unsafe {
            libc::signal(
                signal,
                request_stop as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}

/// Sleeps until `when` in short steps; true when a stop was requested meanwhile.
fn sleep_until(when: Instant) -> bool {
    loop {
        if STOP.load(Ordering::Relaxed) {
            return true;
        }
        let now = Instant::now();
        if now >= when {
            return false;
        }
        thread::sleep((when - now).min(Duration::from_millis(100)));
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn xdp_watch_parses() {
        let cli = Cli::try_parse_from([
            "xdhcp6d",
            "xdp-watch",
            "--interface",
            "eth0",
            "--mode",
            "skb",
            "--seconds",
            "3",
        ])
        .unwrap();
        let Command::XdpWatch {
            interface,
            mode,
            seconds,
            ebpf_object,
        } = cli.command
        else {
            panic!("parsed as another command: {:?}", cli.command);
        };
        assert_eq!(interface, "eth0");
        assert_eq!(mode, AttachMode::Skb);
        assert_eq!(seconds, Some(3));
        assert_eq!(ebpf_object, None);
    }

    #[test]
    fn mode_defaults_to_auto_and_rejects_unknown() {
        let cli = Cli::try_parse_from(["xdhcp6d", "xdp-watch", "-i", "eth0"]).unwrap();
        let Command::XdpWatch { mode, .. } = cli.command else {
            panic!("parsed as another command: {:?}", cli.command);
        };
        assert_eq!(mode, AttachMode::Auto);
        assert!(Cli::try_parse_from(["xdhcp6d", "xdp-watch", "-i", "eth0", "-m", "hw"]).is_err());
    }

    #[test]
    fn check_config_accepts_the_examples_and_names_the_bad_field() {
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        for name in [
            "split-a",
            "split-b",
            "unique-a",
            "unique-b",
            "identical-a",
            "identical-b",
        ] {
            check_config(&examples.join(format!("{name}.toml"))).unwrap();
        }
        let bad = std::env::temp_dir().join(format!("xdhcp6d-bad-{}.toml", std::process::id()));
        std::fs::write(
            &bad,
            "[server]\nduid = \"00:03:00:01:02:00:00:00:00:01\"\n[[link]]\nname = \"a\"\n\
             interfaces = [\"eth0\"]\n[[link.pool]]\nprefix = \"2001:db8::/64\"\n\
             range = \"2001:db9::/65\"\n",
        )
        .unwrap();
        let error = format!("{:#}", check_config(&bad).unwrap_err());
        std::fs::remove_file(&bad).unwrap();
        assert!(error.contains("link[0].pool[0].range"), "{error}");
        assert!(
            error.contains("is not inside prefix 2001:db8::/64"),
            "{error}"
        );
    }

    #[test]
    fn line_lists_every_counter() {
        let mut total = Counters::default();
        total.record_pass(PassReason::OtherPort);
        total.no_socket = 2;
        let text = line(4, &total, &total);
        assert!(text.starts_with("t=4s steered=0 (+0) no_socket=2 (+2) passed=1 (+1)"));
        assert!(text.ends_with("other_port=1"), "{text}");
    }
}
