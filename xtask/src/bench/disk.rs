//! The completions of the disk that holds the journals, kept on the journal writer's core for
//! the bench and put back as they were after it.
//!
//! With `--durability always` every group commit ends in a few block requests (the data, the
//! inode, the flush), each completed by an interrupt. The interrupt's handler runs on the core
//! it is delivered to, and so, by default, does the request's completion work (ending the
//! request, waking the writer) when that core shares a cache with the writer's. A disk with
//! one request queue (a virtio disk with one queue, as on the bench's VMs) delivers all of
//! them to one core, which may be the worker's: the worker then pays for the syncs that the
//! writer was placed on another core to keep away from it.
//!
//! So for the run the disk's interrupts are moved to the writer's core where the kernel allows
//! it (not for managed interrupts, which it places itself), and the disk's request queue is
//! told to complete every request on the core that submitted it (`rq_affinity` 2), which
//! leaves the interrupt's core only the handler. docs/deployment.md tells operators the same.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What was changed for a run, each with its value before; dropping it puts them back.
pub(super) struct DiskPlacement {
    /// Interrupts moved, with the cores they had.
    irqs: Vec<(u32, String)>,
    /// The request queue's `rq_affinity` file and its value before.
    rq_affinity: Option<(PathBuf, String)>,
}

/// `rq_affinity`: complete each request on the core that submitted it.
const SUBMITTER: &str = "2";

impl DiskPlacement {
    /// Keeps the completions of the block device holding `path` on `core`, and says what it
    /// changed (or why not): a device without interrupts of its own in sysfs (a loop or
    /// network file system) is left as it is, and so are managed interrupts.
    pub(super) fn keep_on(path: &Path, core: usize) -> Self {
        let mut placement = Self {
            irqs: Vec::new(),
            rq_affinity: None,
        };
        let Some(disk) = disk_of(path) else {
            println!(
                "== the file system of {} is on no disk that sysfs describes: its completions \
                 are left where they are",
                path.display()
            );
            return placement;
        };
        let name = disk
            .file_name()
            .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
        let mut left = Vec::new();
        for irq in device_with_irqs(&disk)
            .map(|device| irqs_of(&device))
            .unwrap_or_default()
        {
            let file = format!("/proc/irq/{irq}/smp_affinity_list");
            let Ok(before) = fs::read_to_string(&file) else {
                continue;
            };
            let before = before.trim().to_owned();
            match fs::write(&file, core.to_string()) {
                Ok(()) => placement.irqs.push((irq, before)),
                Err(error) => left.push(format!("{irq} on {before} ({error})")),
            }
        }
        let queue = disk.join("queue/rq_affinity");
        if let Ok(before) = fs::read_to_string(&queue) {
            let before = before.trim().to_owned();
            if before != SUBMITTER {
                match fs::write(&queue, SUBMITTER) {
                    Ok(()) => placement.rq_affinity = Some((queue.clone(), before)),
                    Err(error) => println!("== {}: {error}: left at {before}", queue.display()),
                }
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
            let file = format!("/proc/irq/{irq}/smp_affinity_list");
            if let Err(error) = fs::write(&file, before) {
                eprintln!("could not put IRQ {irq} back on cores {before}: {file}: {error}");
            }
        }
        if let Some((file, before)) = &self.rq_affinity
            && let Err(error) = fs::write(file, before)
        {
            eprintln!("could not set {} back to {before}: {error}", file.display());
        }
    }
}

/// The sysfs directory of the whole disk holding `path` (its partition's parent).
fn disk_of(path: &Path) -> Option<PathBuf> {
    disk_of_device(fs::metadata(path).ok()?.dev())
}

/// The sysfs directory of the whole disk of block device `dev` (a partition's parent).
fn disk_of_device(dev: u64) -> Option<PathBuf> {
    let node = Path::new("/sys/dev/block").join(format!("{}:{}", major(dev), minor(dev)));
    let mut disk = fs::canonicalize(node).ok()?;
    if disk.join("partition").is_file() {
        disk.pop();
    }
    Some(disk)
}

/// The sysfs directory of the device (a PCI function, usually) that raises the interrupts of
/// the disk at `disk`: the nearest of its sysfs ancestors with `msi_irqs`.
fn device_with_irqs(disk: &Path) -> Option<PathBuf> {
    let mut dir = disk.to_path_buf();
    while dir.starts_with("/sys/devices") {
        if dir.join("msi_irqs").is_dir() {
            return Some(dir);
        }
        if !dir.pop() {
            break;
        }
    }
    None
}

/// The interrupt numbers of the device at `device` (its `msi_irqs` entries), in order.
fn irqs_of(device: &Path) -> Vec<u32> {
    let mut irqs: Vec<u32> = fs::read_dir(device.join("msi_irqs"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect();
    irqs.sort_unstable();
    irqs
}

/// The major number of a Linux `dev_t` (glibc's `gnu_dev_major`).
fn major(dev: u64) -> u64 {
    ((dev >> 8) & 0xfff) | ((dev >> 32) & 0xffff_f000)
}

/// The minor number of a Linux `dev_t` (glibc's `gnu_dev_minor`).
fn minor(dev: u64) -> u64 {
    (dev & 0xff) | ((dev >> 12) & 0xffff_ff00)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `makedev(major, minor)` as glibc builds it.
    fn makedev(major: u64, minor: u64) -> u64 {
        ((major & 0xffff_f000) << 32)
            | ((major & 0xfff) << 8)
            | ((minor & 0xffff_ff00) << 12)
            | (minor & 0xff)
    }

    #[test]
    fn device_numbers_split_as_glibc_splits_them() {
        for (ma, mi) in [
            (253, 0),
            (8, 17),
            (259, 1_048_575),
            (4095, 255),
            (4096, 256),
        ] {
            let dev = makedev(ma, mi);
            assert_eq!((major(dev), minor(dev)), (ma, mi), "dev {dev:#x}");
        }
    }

    #[test]
    fn every_block_device_leads_to_its_disk_and_the_device_raising_its_interrupts() {
        // Each block device the kernel lists: its number leads to its own directory (a
        // partition's to the disk above it); the device found for its interrupts, if any,
        // lies above that disk and lists them.
        let mut seen = 0;
        for entry in fs::read_dir("/sys/class/block").expect("sysfs is mounted") {
            let path = fs::canonicalize(entry.expect("an entry").path()).expect("a device");
            let Ok(dev) = fs::read_to_string(path.join("dev")) else {
                continue;
            };
            let (ma, mi) = dev.trim().split_once(':').expect("MAJ:MIN");
            let dev = makedev(ma.parse().expect("a major"), mi.parse().expect("a minor"));
            let disk = disk_of_device(dev).expect("the device number resolves");
            let expected = if path.join("partition").is_file() {
                path.parent().expect("a disk above").to_path_buf()
            } else {
                path.clone()
            };
            assert_eq!(disk, expected, "{}", path.display());
            // Every disk has a request queue; only those of blk-mq drivers, which may complete
            // requests on another core than the submitter's, have `rq_affinity`.
            assert!(disk.join("queue").is_dir(), "{}", disk.display());
            if let Some(device) = device_with_irqs(&disk) {
                assert!(disk.starts_with(&device), "{}", device.display());
                assert!(!irqs_of(&device).is_empty(), "{}", device.display());
            }
            seen += 1;
        }
        assert!(seen > 0, "no block device in /sys/class/block");
    }
}
