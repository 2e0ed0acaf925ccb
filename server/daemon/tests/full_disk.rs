//! A full disk under a running `xdhcp6d`: the journal sits on a small tmpfs, which the test
//! fills. Once the journal's writes fail the server answers no Solicit (no Advertise) and no
//! Request, so that clients turn to the other servers (RFC 6853); when space returns it
//! serves again, and every lease it acknowledged, before, during or after, is in the journal.
//! With `--durability always` and `batch`.

mod common;

use std::fs;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    DaemonOptions, Datapath, Exchange, Lab, exchange, fixtures, journal_leases, metric_sum,
};

const SERVER_IF: &str = "xd6s";
const CLIENT_IF: &str = "xd6c";

/// A tmpfs mounted on `path`, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(path: PathBuf) -> Self {
        fs::create_dir_all(&path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs on {}", path.display());
        Self(path)
    }

    fn fill(&self) {
        let mut filler = fs::File::create(self.0.join("filler")).unwrap();
        while filler
            .write_all(&[0x55; 4096])
            .and_then(|()| filler.sync_all())
            .is_ok()
        {}
    }

    fn free(&self) {
        fs::remove_file(self.0.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn healthy(net: &Lab) -> u64 {
    metric_sum(&net.metrics(), "xdhcp6_journal_healthy")
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

fn full_disk(tag: &str, durability: &str) {
    let mut net = common::lab(tag, &["srv", "cli"]);
    net.veth(("srv", SERVER_IF), ("cli", CLIENT_IF));
    let disk = SmallDisk::mount(net.path("disk"));
    let journal = disk.0.join("leases.journal");
    // Up to 200 clients come from the one test client: the per-MAC limits stay out of the way.
    let config = fixtures::render(fixtures::ACCESS, &[("SERVER_IF", SERVER_IF)])
        .unwrap()
        .replacen(
            "[server]\n",
            "[server]\nmac-max-bindings = 0\nmac-binding-rate = 0\n",
            1,
        );
    let options = DaemonOptions {
        datapath: Datapath::Udp,
        journal: &journal,
        durability,
        log: "daemon",
    };
    net.start_daemon("srv", &config, &options);
    let mut acknowledged = Vec::new();
    let Exchange::Bound(first) = exchange(&net, CLIENT_IF, 1) else {
        panic!("no lease before the disk fills:\n{}", net.daemon_log());
    };
    acknowledged.push(first);
    assert_eq!(healthy(&net), 1);

    disk.fill();
    // The journal learns that the disk is full from its next write that needs a new block:
    // clients come until one write fails.
    let mut n = 2;
    while healthy(&net) == 1 {
        assert!(n < 200, "the journal never failed:\n{}", net.daemon_log());
        if let Exchange::Bound(address) = exchange(&net, CLIENT_IF, n) {
            acknowledged.push(address);
        }
        n += 1;
    }
    // Now nothing: no Advertise that would draw a client away from the servers that can
    // keep its lease.
    for _ in 0..3 {
        assert_eq!(exchange(&net, CLIENT_IF, n), Exchange::NoAdvertise);
        n += 1;
    }
    let metrics = net.metrics();
    assert!(
        metric_sum(
            &metrics,
            "xdhcp6_dropped_total{reason=\"journal_unavailable\"}"
        ) >= 3,
        "{metrics}"
    );
    assert_eq!(
        metric_sum(&metrics, "xdhcp6_journal_write_failures_total"),
        1
    );
    assert!(net.daemon_log().contains("lease journal write failed"));

    disk.free();
    wait_until("the journal writes again", || healthy(&net) == 1);
    assert!(net.daemon_log().contains("lease journal writes again"));
    let Exchange::Bound(last) = exchange(&net, CLIENT_IF, n) else {
        panic!("no lease after space returned:\n{}", net.daemon_log());
    };
    acknowledged.push(last);
    net.stop_daemon();

    let rows = journal_leases(&journal);
    for address in &acknowledged {
        let text = address.to_string();
        assert!(
            rows.iter()
                .any(|row| row["lease"] == text.as_str() && row["state"] == "bound"),
            "{address} was acknowledged but is not in the journal: {rows:#?}"
        );
    }
    drop(disk);
}

#[test]
#[ignore = "needs root, network namespaces and a tmpfs mount; run by cargo xtask test"]
fn full_disk_with_durability_always_pauses_bindings_and_loses_no_acknowledged_lease() {
    full_disk("full-always", "always");
}

#[test]
#[ignore = "needs root, network namespaces and a tmpfs mount; run by cargo xtask test"]
fn full_disk_with_durability_batch_pauses_bindings_and_loses_no_acknowledged_lease() {
    full_disk("full-batch", "batch");
}
