//! Where the journal writer thread runs (`--journal-cores`).
//!
//! With `--durability always` the writer wakes for every group commit, copies the batch into
//! the page cache and calls `fdatasync`, whose block-layer work (and, in a VM, the doorbell
//! exits) runs on the calling core. On a datapath worker's core that time is taken from the
//! worker, and every wakeup preempts it. So the writer is kept off the workers' cores: on
//! the cores `--journal-cores` names, else on every core the process may use except those of
//! `--cores`. When that leaves none (the process is confined to the workers' cores), the
//! writer stays where it is and shares them.
//!
//! The compactions the writer starts run on a thread it spawns, which inherits its cores.

/// The cores for the journal writer: `explicit` when given, else `allowed` (the cores the
/// process may use) without `workers` (the datapath workers' cores). Empty: leave the writer
/// where it is (no worker is pinned, or no other core is allowed).
pub fn writer_cores(explicit: &[usize], workers: &[usize], allowed: &[usize]) -> Vec<usize> {
    if !explicit.is_empty() {
        return explicit.to_vec();
    }
    if workers.is_empty() {
        return Vec::new();
    }
    allowed
        .iter()
        .copied()
        .filter(|core| !workers.contains(core))
        .collect()
}

pub use xdhcp6_datapath::os::{allowed_cores, pin_thread};

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[test]
    fn explicit_cores_win() {
        assert_eq!(writer_cores(&[3], &[1], &[0, 1, 2, 3]), vec![3]);
        // Even a worker's core, when asked for.
        assert_eq!(writer_cores(&[1], &[1], &[0, 1]), vec![1]);
    }

    #[test]
    fn the_writer_leaves_the_workers_cores() {
        assert_eq!(writer_cores(&[], &[1], &[0, 1]), vec![0]);
        assert_eq!(writer_cores(&[], &[2, 3], &[0, 1, 2, 3, 4]), vec![0, 1, 4]);
    }

    #[test]
    fn unpinned_workers_or_no_other_core_leave_the_writer_alone() {
        assert!(writer_cores(&[], &[], &[0, 1]).is_empty());
        assert!(writer_cores(&[], &[1], &[1]).is_empty());
        assert!(writer_cores(&[], &[0, 1], &[0, 1]).is_empty());
    }

    #[test]
    fn a_thread_is_pinned_and_reads_its_cores_back() {
        let allowed = allowed_cores().unwrap();
        let first = allowed[0];
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            rx.recv().unwrap();
            allowed_cores().unwrap()
        });
        pin_thread(&thread, &[first]).unwrap();
        tx.send(()).unwrap();
        assert_eq!(thread.join().unwrap(), vec![first]);
    }

    #[test]
    fn out_of_range_cores_are_refused() {
        let thread = std::thread::spawn(|| ());
        let error = pin_thread(&thread, &[1 << 20]).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(pin_thread(&thread, &[]).is_err());
        thread.join().unwrap();
    }
}
