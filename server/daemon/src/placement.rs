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
//!
//! The other threads that may wake at any time are kept off the workers' cores by the same
//! rule, on their own list (`--service-cores`): the DNS updater (`xdhcp6-ddns`), the Bulk
//! Leasequery listener (`xdhcp6-bulk-lq`), whose answers walk the whole table, and the
//! Reconfigure retransmissions (`xdhcp6-reconf`) ([`place`]). The main thread is placed there
//! first, so the threads it starts without a place of their own (the timer, metrics, control
//! and, with XDP, the UDP slow path) inherit the service cores.

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

/// The cores for the threads off the packet path (DNS updates, Bulk Leasequery, Reconfigure
/// retransmissions): the rule of [`writer_cores`], with `--service-cores` as `explicit`.
pub fn service_cores(explicit: &[usize], workers: &[usize], allowed: &[usize]) -> Vec<usize> {
    writer_cores(explicit, workers, allowed)
}

/// Restricts `thread` to `cores`; leaves it where it is when `cores` is empty (see
/// [`writer_cores`]). Returns whether it was pinned.
pub fn place<T>(thread: &std::thread::JoinHandle<T>, cores: &[usize]) -> std::io::Result<bool> {
    if cores.is_empty() {
        return Ok(false);
    }
    pin_thread(thread, cores).map(|()| true)
}

pub use xdhcp6_datapath::os::{allowed_cores, pin_current_thread, pin_thread};

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
    fn service_threads_leave_the_workers_cores_or_take_the_named_ones() {
        assert_eq!(service_cores(&[], &[1], &[0, 1]), vec![0]);
        assert_eq!(service_cores(&[], &[2, 3], &[0, 1, 2, 3, 4]), vec![0, 1, 4]);
        assert_eq!(service_cores(&[4], &[2, 3], &[0, 1, 2, 3, 4]), vec![4]);
        assert!(service_cores(&[], &[], &[0, 1]).is_empty());
        assert!(service_cores(&[], &[0, 1], &[0, 1]).is_empty());
    }

    #[test]
    fn a_pinned_thread_passes_its_cores_to_the_threads_it_starts() {
        let allowed = allowed_cores().unwrap();
        let last = *allowed.last().unwrap();
        let (own, child) = std::thread::spawn(move || {
            pin_current_thread(&[last]).unwrap();
            let child = std::thread::spawn(|| allowed_cores().unwrap());
            (allowed_cores().unwrap(), child.join().unwrap())
        })
        .join()
        .unwrap();
        assert_eq!(own, vec![last]);
        assert_eq!(child, vec![last]);
        assert!(pin_current_thread(&[]).is_err());
    }

    #[test]
    fn no_cores_leave_a_thread_where_it_is() {
        let before = allowed_cores().unwrap();
        let thread = std::thread::spawn(|| allowed_cores().unwrap());
        assert!(!place(&thread, &[]).unwrap());
        assert_eq!(thread.join().unwrap(), before);
    }

    /// The cores of each thread of this process called `name`, from /proc.
    fn cores_of_threads_named(name: &str) -> Vec<String> {
        let mut found = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let task = task.unwrap().path();
            let Ok(comm) = std::fs::read_to_string(task.join("comm")) else {
                continue;
            };
            if comm.trim_end() != name {
                continue;
            }
            let status = std::fs::read_to_string(task.join("status")).unwrap_or_default();
            if let Some(list) = status
                .lines()
                .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
            {
                found.push(list.trim().to_owned());
            }
        }
        found
    }

    #[test]
    fn the_bulk_leasequery_thread_is_placed_on_the_service_cores() {
        use std::sync::Arc;

        let allowed = allowed_cores().unwrap();
        let last = *allowed.last().unwrap();
        let listen = ["[::1]:0".parse().unwrap()];
        let handle = crate::bulk_leasequery::spawn(
            &listen,
            1,
            Arc::new(|| panic!("no query is sent")),
            Arc::new(crate::bulk_leasequery::BulkStats::default()),
            || 0,
        )
        .unwrap();
        assert!(handle.place(&[last]).unwrap());
        // Other tests may run a listener of their own, unpinned: one thread of the name has
        // exactly the core given. The new thread names itself once it runs, which may be after
        // `place` returns, so the name is awaited.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let cores = loop {
            let cores = cores_of_threads_named("xdhcp6-bulk-lq");
            if cores.contains(&last.to_string()) || std::time::Instant::now() > deadline {
                break cores;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert!(cores.contains(&last.to_string()), "{cores:?}");
        drop(handle);
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
