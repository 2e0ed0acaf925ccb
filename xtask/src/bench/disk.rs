//! The completions of the disk that holds the journals, kept on the journal writer's core for
//! the bench and put back as they were after it ([`xdhcp6_datapath::blockdev`] says why).
//!
//! For the run the disk's interrupts are moved to the writer's core where the kernel allows
//! it (not for managed interrupts, which it places itself), and the disk's request queue is
//! told to complete every request on the core that submitted it (`rq_affinity` 2), which
//! leaves the interrupt's core only the handler. docs/deployment.md tells operators the same.

use std::fs;
use std::path::{Path, PathBuf};

use xdhcp6_datapath::blockdev::{self, Placement, RQ_AFFINITY_SUBMITTER as SUBMITTER};

/// What was changed for a run, each with its value before; dropping it puts them back.
pub(super) struct DiskPlacement {
    /// Interrupts moved, with the cores they had.
    irqs: Vec<(u32, String)>,
    /// The request queue's `rq_affinity` file and its value before.
    rq_affinity: Option<(PathBuf, String)>,
}

impl DiskPlacement {
    /// Keeps the completions of the block device holding `path` on `core`, and says what it
    /// changed (or why not): a device without interrupts of its own in sysfs (a loop or
    /// network file system) is left as it is, and so are managed interrupts.
    pub(super) fn keep_on(path: &Path, core: usize) -> Self {
        let mut placement = Self {
            irqs: Vec::new(),
            rq_affinity: None,
        };
        let Some(disk) = Placement::of(path) else {
            println!(
                "== the file system of {} is on no disk that sysfs describes: its completions \
                 are left where they are",
                path.display()
            );
            return placement;
        };
        let name = disk.name();
        let mut left = Vec::new();
        for &(irq, _) in &disk.irqs {
            let Ok(before) = blockdev::irq_affinity(irq) else {
                continue;
            };
            match blockdev::set_irq_cores(irq, &core.to_string()) {
                Ok(()) => placement.irqs.push((irq, before)),
                Err(error) => left.push(format!("{irq} on {before} ({error})")),
            }
        }
        if let Some(before) = disk.rq_affinity.clone()
            && before != SUBMITTER
        {
            let queue = disk.rq_affinity_file();
            match fs::write(&queue, SUBMITTER) {
                Ok(()) => placement.rq_affinity = Some((queue, before)),
                Err(error) => println!("== {}: {error}: left at {before}", queue.display()),
            }
        }
        let mut said = Vec::new();
        if !placement.irqs.is_empty() {
            let moved: Vec<String> = placement
                .irqs
                .iter()
                .map(|(irq, before)| format!("{irq} (was on {before})"))
                .collect();
            said.push(format!(
                "interrupts moved to core {core}: {}",
                moved.join(", ")
            ));
        }
        if !left.is_empty() {
            said.push(format!(
                "interrupts left where they are: {}",
                left.join(", ")
            ));
        }
        if let Some((_, before)) = &placement.rq_affinity {
            said.push(format!(
                "requests completed on the submitting core, the writer's (rq_affinity 2, was \
                 {before})"
            ));
        }
        if !said.is_empty() {
            println!(
                "== the journals' disk ({name}), for the run: {}",
                said.join("; ")
            );
        }
        placement
    }
}

impl Drop for DiskPlacement {
    fn drop(&mut self) {
        for (irq, before) in &self.irqs {
            if let Err(error) = blockdev::set_irq_cores(*irq, before) {
                eprintln!("could not put IRQ {irq} back on cores {before}: {error}");
            }
        }
        if let Some((file, before)) = &self.rq_affinity
            && let Err(error) = fs::write(file, before)
        {
            eprintln!("could not set {} back to {before}: {error}", file.display());
        }
    }
}
