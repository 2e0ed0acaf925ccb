//! `xdhcp6-reflect`: bounces every DHCPv6-to-server frame back to its sender over AF_XDP, to
//! measure the ceiling of a link and of the generator (`xdhcp6-bench --scenario echo`).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use xdhcp6_bench::afxdp::{bind_queues, locate_object};
use xdhcp6_bench::reflect::{ReflectStats, run};
use xdhcp6_datapath::os;
use xdhcp6_datapath::steer::AttachMode;
use xdhcp6_datapath::{InterfaceInfo, XskQueue};

/// Reflects DHCPv6 frames (IPv6 UDP to port 547) received on one or more queues of an interface
/// back to their senders: MACs, addresses and ports swapped, sent on the queue they came in on.
/// Runs until SIGINT or SIGTERM, then prints its counters (per queue with --queues).
#[derive(Debug, Parser)]
#[command(name = "xdhcp6-reflect", version)]
struct Cli {
    /// The interface to reflect on.
    #[arg(long, short = 'i')]
    interface: String,
    /// XDP attach mode: native (driver), skb (generic) or auto (native, else skb).
    #[arg(long, default_value_t = AttachMode::Auto)]
    xdp_mode: AttachMode,
    /// The receive queue to bind (the first one, with --queues).
    #[arg(long, default_value_t = 0)]
    queue: u32,
    /// Reflect on this many queues (--queue, --queue + 1, ...), one thread and one socket
    /// with its own UMEM each.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    queues: u32,
    /// The eBPF object (default: $XDHCP6_EBPF_OBJECT, else the copy embedded at build time).
    #[arg(long, value_name = "PATH")]
    ebpf_object: Option<PathBuf>,
}

fn main() -> ExitCode {
    match reflect(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xdhcp6-reflect: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn reflect(cli: Cli) -> anyhow::Result<()> {
    os::install_stop_handler().context("installing a signal handler")?;
    let object = locate_object(cli.ebpf_object.as_deref())?;
    let interface = InterfaceInfo::query(&cli.interface, None)
        .map_err(|error| anyhow::anyhow!(os::error_chain(&error)))?;
    let (steering, queues, mode) = bind_queues(
        &object,
        xdhcp6_common::PROGRAM,
        &interface,
        cli.queue,
        cli.queues,
        cli.xdp_mode,
    )?;
    eprintln!(
        "xdhcp6-reflect: {} queues {}..={}, XDP {mode}, AF_XDP {}; SIGINT or SIGTERM stops",
        interface.name,
        cli.queue,
        cli.queue.saturating_add(cli.queues - 1),
        queues[0].socket().mode()
    );
    // One thread per queue; each returns its socket and counters when stopped.
    let finished: Vec<(XskQueue, ReflectStats)> = std::thread::scope(|scope| {
        let handles: Vec<_> = queues
            .into_iter()
            .map(|mut queue| {
                let interface = &interface;
                scope.spawn(move || {
                    let mut stats = ReflectStats::default();
                    run(
                        &mut queue,
                        &interface.mac,
                        &interface.link_local,
                        os::stop_flag(),
                        &mut stats,
                    );
                    (queue, stats)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a reflector thread panicked"))
            .collect()
    });
    let mut total = ReflectStats::default();
    for (queue, stats) in &finished {
        if cli.queues > 1 {
            print!("queue {}: ", queue.socket().queue());
        }
        print_queue(queue, stats);
        total.received += stats.received;
        total.reflected += stats.reflected;
        total.bad_frames += stats.bad_frames;
        total.tx_full += stats.tx_full;
    }
    if cli.queues > 1 {
        println!(
            "all queues: received {}  reflected {}  bad frames {}  tx ring full {}",
            total.received, total.reflected, total.bad_frames, total.tx_full
        );
    }
    if let Ok(c) = steering.counters() {
        println!(
            "xdp: steered {}  no socket {}  passed {}",
            c.steered, c.no_socket, c.passed
        );
    }
    drop(finished);
    drop(steering);
    Ok(())
}

/// One queue's counters, its socket's and its frame audit.
fn print_queue(queue: &XskQueue, stats: &ReflectStats) {
    println!(
        "received {}  reflected {}  bad frames {}  tx ring full {}",
        stats.received, stats.reflected, stats.bad_frames, stats.tx_full
    );
    if let Ok(s) = queue.socket().statistics() {
        println!(
            "socket: rx dropped {}  rx invalid {}  tx invalid {}  rx ring full {}  fill ring empty {}  tx ring empty {}",
            s.rx_dropped,
            s.rx_invalid_descs,
            s.tx_invalid_descs,
            s.rx_ring_full,
            s.rx_fill_ring_empty_descs,
            s.tx_ring_empty_descs
        );
    }
    let audit = queue.audit();
    if !audit.is_complete() {
        println!("frames: {audit:?}");
    }
}
