//! A thread's I/O scheduling priority (`ioprio_set(2)`, `ioprio_get(2)`), which libc does not
//! wrap: the block layer's scheduler serves a thread's requests by its class and level (BFQ
//! by both; mq-deadline by class; the `none` scheduler of many NVMe devices ignores it). The
//! class applies to the I/O a thread submits itself, its `fsync`/`fdatasync` writeback
//! included.
//!
//! The `ioprio` crate wraps the same two calls, but pins an old `nix`; two calls and their
//! encoding are kept here instead.

use std::io;

/// `IOPRIO_CLASS_SHIFT` (linux/ioprio.h): the class sits above 13 bits of level.
const CLASS_SHIFT: u32 = 13;
/// `IOPRIO_WHO_PROCESS`: `who` is a thread id, 0 the calling thread.
const WHO_PROCESS: libc::c_int = 1;
/// Levels run from 0 (first served) to 7.
const LEVELS: u8 = 8;

/// An I/O scheduling class, with its level where it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoPriority {
    /// No class set: the kernel derives one from the thread's CPU nice value.
    None,
    /// Served before everything else, level 0 to 7 (needs `CAP_SYS_ADMIN`).
    RealTime(u8),
    /// The default class, level 0 (first) to 7 (last).
    BestEffort(u8),
    /// Served only when no other thread has I/O waiting (for a grace period).
    Idle,
}

impl IoPriority {
    /// The kernel's encoding; `None` for a level out of range.
    fn encode(self) -> Option<libc::c_int> {
        let (class, level) = match self {
            Self::None => (0, 0),
            Self::RealTime(level) => (1, level),
            Self::BestEffort(level) => (2, level),
            Self::Idle => (3, 0),
        };
        (level < LEVELS).then(|| (class << CLASS_SHIFT) | libc::c_int::from(level))
    }

    /// The priority the kernel's encoding `value` names.
    fn decode(value: libc::c_int) -> Self {
        let level = (value & ((1 << CLASS_SHIFT) - 1)) as u8;
        match value >> CLASS_SHIFT {
            1 => Self::RealTime(level),
            2 => Self::BestEffort(level),
            3 => Self::Idle,
            _ => Self::None,
        }
    }
}

/// Sets the calling thread's I/O priority (other threads keep theirs).
pub fn set_thread_io_priority(priority: IoPriority) -> io::Result<()> {
    let Some(value) = priority.encode() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{priority:?}: levels run from 0 to 7"),
        ));
    };
    // Safety: ioprio_set takes three integers and reads no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_ioprio_set, WHO_PROCESS, 0, value) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The calling thread's I/O priority, as the kernel has it.
pub fn thread_io_priority() -> io::Result<IoPriority> {
    // Safety: ioprio_get takes two integers and reads no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_ioprio_get, WHO_PROCESS, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(IoPriority::decode(rc as libc::c_int))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoding_is_the_kernels() {
        // linux/ioprio.h: IOPRIO_PRIO_VALUE(class, level) = class << 13 | level.
        assert_eq!(IoPriority::BestEffort(7).encode(), Some(0x4007));
        assert_eq!(IoPriority::Idle.encode(), Some(0x6000));
        assert_eq!(IoPriority::RealTime(0).encode(), Some(0x2000));
        assert_eq!(IoPriority::BestEffort(8).encode(), None);
        for priority in [
            IoPriority::None,
            IoPriority::RealTime(3),
            IoPriority::BestEffort(0),
            IoPriority::BestEffort(7),
            IoPriority::Idle,
        ] {
            assert_eq!(IoPriority::decode(priority.encode().unwrap()), priority);
        }
    }

    #[test]
    fn a_thread_reads_back_what_it_set_and_others_keep_theirs() {
        let before = thread_io_priority().unwrap();
        let set = std::thread::spawn(|| {
            set_thread_io_priority(IoPriority::BestEffort(7)).unwrap();
            let low = thread_io_priority().unwrap();
            set_thread_io_priority(IoPriority::Idle).unwrap();
            (low, thread_io_priority().unwrap())
        })
        .join()
        .unwrap();
        assert_eq!(set, (IoPriority::BestEffort(7), IoPriority::Idle));
        assert_eq!(thread_io_priority().unwrap(), before);
        assert_ne!(before, IoPriority::Idle);
    }

    #[test]
    fn a_level_out_of_range_is_refused() {
        let error = set_thread_io_priority(IoPriority::BestEffort(9)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}
