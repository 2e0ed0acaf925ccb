//! The disk under a file, as sysfs and procfs describe it: its request queues, the interrupts
//! that end its requests, the cores those interrupts reach, and where the block layer
//! completes a request (`queue/rq_affinity`).
//!
//! With `--durability always` every group commit of the journal ends in a few block requests
//! (the data, the inode, the flush), each completed by an interrupt. A disk with one request
//! queue (a virtio disk with one queue, a SATA disk behind AHCI) delivers all of them to one
//! core; with `rq_affinity` 1 the block layer also finishes each request there (ending it,
//! waking the writer) whenever that core shares a cache with the writer's. When that core is
//! a worker's, the worker pays for the syncs that the writer was placed elsewhere to keep away
//! from it. `rq_affinity` 2 finishes each request on the core that submitted it, the writer's.
//! Disks with a queue per core (NVMe) complete on the submitter's queue already.
//!
//! The daemon warns at start when its journal's disk is placed so ([`Placement::worker_cores`]);
//! `cargo xtask bench` moves what it may for its runs and puts it back after.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// `rq_affinity`: complete each request on the core that submitted it.
pub const RQ_AFFINITY_SUBMITTER: &str = "2";

/// The disk holding a file, and what decides on which core its requests complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The whole disk's sysfs directory (`/sys/devices/.../block/vda`).
    pub disk: PathBuf,
    /// Its request queues (`mq/*`); 1 for a disk with one queue, 0 for a driver without
    /// blk-mq.
    pub queues: usize,
    /// `queue/rq_affinity` as read, when the disk has one.
    pub rq_affinity: Option<String>,
    /// Its interrupts, each with the cores it is delivered to (`effective_affinity_list`, or
    /// `smp_affinity_list` where the kernel has no effective one); empty for a device
    /// without interrupts of its own in sysfs (a loop device, a RAM disk).
    pub irqs: Vec<(u32, Vec<usize>)>,
}

impl Placement {
    /// The placement of the disk holding `path`; `None` for a file system on no disk that
    /// sysfs describes (tmpfs, a network file system).
    pub fn of(path: &Path) -> Option<Self> {
        let disk = disk_of(path)?;
        let queues = fs::read_dir(disk.join("mq"))
            .map(|entries| entries.flatten().count())
            .unwrap_or(0);
        let rq_affinity = fs::read_to_string(rq_affinity_file(&disk))
            .ok()
            .map(|text| text.trim().to_owned());
        let irqs = device_with_irqs(&disk)
            .map(|device| irqs_of(&device))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|irq| Some((irq, irq_cores(irq)?)))
            .collect();
        Some(Self {
            disk,
            queues,
            rq_affinity,
            irqs,
        })
    }

    /// The disk's `queue/rq_affinity` file.
    pub fn rq_affinity_file(&self) -> PathBuf {
        rq_affinity_file(&self.disk)
    }

    /// The disk's name (`vda`).
    pub fn name(&self) -> String {
        self.disk
            .file_name()
            .map_or_else(String::new, |name| name.to_string_lossy().into_owned())
    }

    /// The cores of `workers` where the journal's completions may run: those its interrupts
    /// reach, for a disk with one request queue whose `rq_affinity` is not 2. Empty when the
    /// completions stay off the workers.
    pub fn worker_cores(&self, workers: &[usize]) -> Vec<usize> {
        if self.queues != 1 || self.rq_affinity.as_deref() == Some(RQ_AFFINITY_SUBMITTER) {
            return Vec::new();
        }
        let mut cores: Vec<usize> = self
            .irqs
            .iter()
            .flat_map(|(_, cores)| cores.iter().copied())
            .filter(|core| workers.contains(core))
            .collect();
        cores.sort_unstable();
        cores.dedup();
        cores
    }
}

/// The cores interrupt `irq` is delivered to: its effective affinity, else the affinity
/// asked for.
pub fn irq_cores(irq: u32) -> Option<Vec<usize>> {
    ["effective_affinity_list", "smp_affinity_list"]
        .iter()
        .find_map(|file| {
            let text = fs::read_to_string(format!("/proc/irq/{irq}/{file}")).ok()?;
            crate::os::parse_core_list(text.trim()).ok()
        })
}

fn rq_affinity_file(disk: &Path) -> PathBuf {
    disk.join("queue/rq_affinity")
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

/// The affinity asked for interrupt `irq` (its `smp_affinity_list`, a core list), as
/// [`set_irq_cores`] takes it back.
pub fn irq_affinity(irq: u32) -> io::Result<String> {
    fs::read_to_string(irq_affinity_file(irq)).map(|text| text.trim().to_owned())
}

/// Sets interrupt `irq`'s affinity to `cores` (a core list, `smp_affinity_list`); managed
/// interrupts refuse (EPERM, EIO).
pub fn set_irq_cores(irq: u32, cores: &str) -> io::Result<()> {
    fs::write(irq_affinity_file(irq), cores)
}

fn irq_affinity_file(irq: u32) -> String {
    format!("/proc/irq/{irq}/smp_affinity_list")
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
        // lies above that disk and lists them, each delivered to some core.
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
                let irqs = irqs_of(&device);
                assert!(!irqs.is_empty(), "{}", device.display());
                for irq in irqs {
                    let cores = irq_cores(irq).unwrap_or_else(|| panic!("IRQ {irq}'s cores"));
                    assert!(!cores.is_empty(), "IRQ {irq}");
                }
            }
            seen += 1;
        }
        assert!(seen > 0, "no block device in /sys/class/block");
    }

    #[test]
    fn the_file_systems_disk_is_found_or_said_to_be_none() {
        // The test binary lies on a disk (or on tmpfs, overlay... with none); /proc has none.
        assert_eq!(Placement::of(Path::new("/proc/self/stat")), None);
        let binary = std::env::current_exe().expect("the test binary");
        if let Some(placement) = Placement::of(&binary) {
            assert!(placement.disk.starts_with("/sys/devices"), "{placement:?}");
            assert!(!placement.name().is_empty(), "{placement:?}");
        }
    }

    fn one_queue(rq_affinity: &str, irqs: Vec<(u32, Vec<usize>)>) -> Placement {
        Placement {
            disk: PathBuf::from("/sys/devices/pci0000:00/0000:00:04.0/virtio1/block/vda"),
            queues: 1,
            rq_affinity: Some(rq_affinity.to_owned()),
            irqs,
        }
    }

    #[test]
    fn completions_reach_the_workers_through_one_queues_interrupts_unless_rq_affinity_is_2() {
        let placement = one_queue("1", vec![(35, vec![0, 1]), (36, vec![1])]);
        assert_eq!(placement.name(), "vda");
        assert_eq!(placement.worker_cores(&[1]), vec![1]);
        assert_eq!(placement.worker_cores(&[1, 0]), vec![0, 1]);
        assert_eq!(placement.worker_cores(&[2, 3]), Vec::<usize>::new());
        // Completed on the submitter's core: only the interrupt's handler runs there.
        assert!(
            one_queue("2", vec![(36, vec![1])])
                .worker_cores(&[1])
                .is_empty()
        );
        // A queue per core, or no interrupts of its own: nothing to say.
        let mut many = one_queue("1", vec![(36, vec![1])]);
        many.queues = 8;
        assert!(many.worker_cores(&[1]).is_empty());
        assert!(one_queue("1", Vec::new()).worker_cores(&[1]).is_empty());
    }
}
