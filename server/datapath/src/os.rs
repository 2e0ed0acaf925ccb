//! Operating-system helpers the datapaths, the daemon and the load generator share: pinning a
//! thread to a core, waiting on a descriptor, stop and mark signals, the wall clock, dropping
//! root for an unprivileged user, and one-line error chains for logs.

use std::{
    io,
    mem::{size_of, zeroed},
    os::fd::{AsRawFd, BorrowedFd},
    ptr,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Pins the calling thread to `core`.
pub fn pin_to_core(core: usize) -> io::Result<()> {
    pin_current_thread(&[core])
}

/// Restricts the calling thread to `cores` (not empty). Threads it starts afterwards inherit
/// them.
pub fn pin_current_thread(cores: &[usize]) -> io::Result<()> {
    let set = cpu_set(cores)?;
    // Safety: sched_setaffinity(0, ...) reads a set of the stated size for the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The CPU set of `cores`: refused when empty or when a core is beyond what a set holds.
fn cpu_set(cores: &[usize]) -> io::Result<libc::cpu_set_t> {
    let limit = 8 * size_of::<libc::cpu_set_t>();
    if let Some(core) = cores.iter().find(|&&core| core >= limit) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("core {core} is out of range"),
        ));
    }
    if cores.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no cores given",
        ));
    }
    // Safety: all-zero is an empty CPU set; CPU_SET stays inside it (checked above).
    unsafe {
        let mut set: libc::cpu_set_t = zeroed();
        for &core in cores {
            libc::CPU_SET(core, &mut set);
        }
        Ok(set)
    }
}

/// The cores the calling thread may run on (at start, those of the process).
pub fn allowed_cores() -> io::Result<Vec<usize>> {
    // Safety: all-zero is an empty CPU set; sched_getaffinity(0, ...) writes at most a set of
    // the stated size for the calling thread, and CPU_ISSET reads inside it.
    unsafe {
        let mut set: libc::cpu_set_t = zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((0..8 * size_of::<libc::cpu_set_t>())
            .filter(|&core| libc::CPU_ISSET(core, &set))
            .collect())
    }
}

/// The cores of a core list as Linux writes them and `taskset -c` reads them (`0-3,8`), in
/// the order written; empty for an empty list. An error names the part that is not a core
/// number or a range.
pub fn parse_core_list(text: &str) -> Result<Vec<usize>, String> {
    let mut cores = Vec::new();
    for part in text
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        let number = |text: &str| {
            text.trim()
                .parse::<usize>()
                .map_err(|_| format!("{text:?} is not a core number"))
        };
        match part.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (number(first)?, number(last)?);
                if first > last || last - first > 4096 {
                    return Err(format!("{part:?} is not a range of cores"));
                }
                cores.extend(first..=last);
            }
            None => cores.push(number(part)?),
        }
    }
    Ok(cores)
}

/// Restricts `thread` to `cores` (not empty).
pub fn pin_thread<T>(thread: &std::thread::JoinHandle<T>, cores: &[usize]) -> io::Result<()> {
    use std::os::unix::thread::JoinHandleExt;
    let set = cpu_set(cores)?;
    // Safety: the handle's pthread_t names a thread that has not been joined (the caller holds
    // its handle), and the set is of the stated size.
    let rc = unsafe {
        libc::pthread_setaffinity_np(thread.as_pthread_t(), size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// What to wait for on a descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Something to read (`POLLIN`).
    Readable,
    /// Room to write (`POLLOUT`).
    Writable,
}

/// Sleeps in `ppoll(2)` until `fd` is ready or `timeout` passes (nanosecond precision);
/// false on timeout or when a signal interrupted the wait.
pub fn wait(fd: BorrowedFd<'_>, readiness: Readiness, timeout: Duration) -> io::Result<bool> {
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: match readiness {
            Readiness::Readable => libc::POLLIN,
            Readiness::Writable => libc::POLLOUT,
        },
        revents: 0,
    };
    let timeout = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // Safety: one valid pollfd and timespec for the duration of the call; a null signal mask
    // leaves the mask alone.
    let ready = unsafe { libc::ppoll(&mut poll, 1, &timeout, ptr::null()) };
    if ready < 0 {
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(error);
    }
    Ok(ready > 0)
}

/// Set by SIGINT and SIGTERM once [`install_stop_handler`] ran.
static STOP: AtomicBool = AtomicBool::new(false);
/// Set by SIGUSR1 once [`install_mark_handler`] ran.
static MARK: AtomicBool = AtomicBool::new(false);
/// Set by SIGHUP once [`install_hup_handler`] ran.
static HUP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    if signal == libc::SIGUSR1 {
        MARK.store(true, Ordering::SeqCst);
    } else if signal == libc::SIGHUP {
        HUP.store(true, Ordering::SeqCst);
    } else {
        STOP.store(true, Ordering::SeqCst);
    }
}

/// Asks the CPU to bring the cache line of `at` into its caches; a no-op where the target
/// has no prefetch instruction here.
pub fn prefetch(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // Safety: PREFETCHT0 is part of SSE, which every x86_64 CPU has; it is a hint that reads
    // nothing into the program, never faults, and may name any address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(at.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// Asks the CPU to bring the cache line of `at` into its caches ready to be written
/// (`PREFETCHW`: x86-64 CPUs without it decode its opcode as a no-op); a no-op where the
/// target has no prefetch instruction here.
pub fn prefetch_write(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // Safety: PREFETCHW is a hint like PREFETCHT0: it reads nothing into the program, writes
    // nothing, never faults and may name any address. (The intrinsic's write hint is lowered to
    // a plain PREFETCHT0 unless the whole build targets CPUs with PRFCHW.)
    unsafe {
        core::arch::asm!("prefetchw [{0}]", in(reg) at, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// Makes SIGINT and SIGTERM set the stop flag ([`stop_flag`]) instead of ending the process.
pub fn install_stop_handler() -> io::Result<()> {
    install(&[libc::SIGINT, libc::SIGTERM])
}

/// Makes SIGUSR1 set the mark flag ([`take_mark`]) instead of ending the process.
pub fn install_mark_handler() -> io::Result<()> {
    install(&[libc::SIGUSR1])
}

/// Makes SIGHUP set the hangup flag ([`take_hup`]: reload the configuration) instead of
/// ending the process.
pub fn install_hup_handler() -> io::Result<()> {
    install(&[libc::SIGHUP])
}

fn install(signals: &[libc::c_int]) -> io::Result<()> {
    for &signal in signals {
        // Safety: a zeroed sigaction is valid (empty mask, no flags); the handler only stores
        // to atomics, which is async-signal-safe, and lives for the whole program. SA_RESTART
        // keeps interrupted system calls going, as `signal(2)` does on Linux.
        let rc = unsafe {
            let mut action: libc::sigaction = zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigaction(signal, &action, ptr::null_mut())
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The flag SIGINT and SIGTERM set, for loops that poll it.
pub fn stop_flag() -> &'static AtomicBool {
    &STOP
}

/// Whether SIGINT or SIGTERM arrived.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Whether SIGUSR1 arrived since the last call.
pub fn take_mark() -> bool {
    MARK.swap(false, Ordering::SeqCst)
}

/// Whether SIGHUP arrived since the last call.
pub fn take_hup() -> bool {
    HUP.swap(false, Ordering::SeqCst)
}

/// Moves the calling thread into a new, empty network namespace (`unshare(CLONE_NEWNET)`);
/// threads and processes it starts afterwards inherit it. Needs `CAP_SYS_ADMIN`.
pub fn unshare_network() -> io::Result<()> {
    // Safety: unshare has no memory effects; it moves only this thread to a new namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends SIGINT to process `pid`, as Ctrl-C would.
pub fn interrupt(pid: u32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // Safety: kill(2) has no memory effects.
    if unsafe { libc::kill(pid, libc::SIGINT) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A user of the password database: its name, user id and primary group id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The login name.
    pub name: String,
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
}

/// Looks `name` up in the password database (`getpwnam_r`, so NSS sources count too).
pub fn lookup_user(name: &str) -> io::Result<User> {
    let c_name = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "user name holds a NUL byte"))?;
    let mut buf = vec![0u8; 16 * 1024];
    // Safety: zeroed is a valid passwd (null pointers, zero ids); getpwnam_r fills it with
    // pointers into `buf`, which outlives every use below, and writes at most `buf.len()`
    // bytes there.
    let mut entry: libc::passwd = unsafe { zeroed() };
    let mut found: *mut libc::passwd = ptr::null_mut();
    // Safety: every pointer is valid for the call, as above.
    let status = unsafe {
        libc::getpwnam_r(
            c_name.as_ptr(),
            &mut entry,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if status != 0 {
        return Err(io::Error::from_raw_os_error(status));
    }
    if found.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no user {name:?} in the password database"),
        ));
    }
    Ok(User {
        name: name.to_owned(),
        uid: entry.pw_uid,
        gid: entry.pw_gid,
    })
}

/// Runs as `user` from now on, keeping only the capabilities in `keep`.
///
/// The user and group ids change for every thread of the process (the C library passes the
/// change on), and supplementary groups are dropped. Threads other than the calling one lose
/// every capability; the calling thread keeps `keep` permitted and effective, and threads it
/// starts later inherit them. `PR_SET_NO_NEW_PRIVS` is set so that nothing regains more.
pub fn drop_privileges(user: &User, keep: &[caps::Capability]) -> io::Result<()> {
    let os = |result: libc::c_int| {
        if result == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    let caps_error = |error: caps::errors::CapsError| io::Error::other(error.to_string());
    // Safety: prctl, setgroups, setresgid and setresuid take plain integers (and a null
    // group list of length 0); they have no memory effects on this process.
    unsafe {
        // Keep the permitted set across the change of user id, for the calling thread.
        os(libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0))?;
        os(libc::setgroups(0, ptr::null()))?;
        os(libc::setresgid(user.gid, user.gid, user.gid))?;
        os(libc::setresuid(user.uid, user.uid, user.uid))?;
        os(libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0))?;
    }
    let keep: caps::CapsHashSet = keep.iter().copied().collect();
    caps::set(None, caps::CapSet::Inheritable, &caps::CapsHashSet::new()).map_err(caps_error)?;
    caps::set(None, caps::CapSet::Permitted, &keep).map_err(caps_error)?;
    caps::set(None, caps::CapSet::Effective, &keep).map_err(caps_error)?;
    // Safety: prctl with integer arguments has no memory effects.
    unsafe { os(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) }?;
    Ok(())
}

/// Seconds since the Unix epoch: the engine's clock (0 before 1970, never panics).
pub fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as u32)
        .unwrap_or(0)
}

/// `error: cause: cause`, for one-line logs.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn core_lists_read_as_linux_and_taskset_write_them() {
        assert_eq!(parse_core_list("0-3,8"), Ok(vec![0, 1, 2, 3, 8]));
        assert_eq!(parse_core_list(" 5 , 1-2 "), Ok(vec![5, 1, 2]));
        assert_eq!(parse_core_list(""), Ok(Vec::new()));
        assert_eq!(
            parse_core_list("1,x"),
            Err("\"x\" is not a core number".to_owned())
        );
        assert_eq!(
            parse_core_list("3-1"),
            Err("\"3-1\" is not a range of cores".to_owned())
        );
        assert!(parse_core_list("0-100000").is_err());
    }

    #[test]
    fn lookup_user_finds_root_and_names_a_missing_user() {
        let root = lookup_user("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        let error = lookup_user("no-such-user-xdhcp6").unwrap_err();
        assert!(error.to_string().contains("no-such-user-xdhcp6"), "{error}");
    }

    #[test]
    fn cpu_out_of_range_is_refused() {
        assert!(pin_to_core(1 << 20).is_err());
    }

    #[test]
    fn error_chain_joins_causes() {
        #[derive(Debug)]
        struct Outer(io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("cannot read x.o")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let error = Outer(io::Error::new(io::ErrorKind::NotFound, "gone"));
        assert_eq!(error_chain(&error), "cannot read x.o: gone");
    }

    #[test]
    fn wait_times_out_on_a_quiet_socket_and_sees_a_datagram() {
        let socket = std::net::UdpSocket::bind("[::1]:0").unwrap();
        let quiet = wait(
            socket.as_fd(),
            Readiness::Readable,
            Duration::from_millis(1),
        );
        assert!(!quiet.unwrap());
        assert!(wait(socket.as_fd(), Readiness::Writable, Duration::ZERO).unwrap());
        socket.send_to(b"x", socket.local_addr().unwrap()).unwrap();
        let ready = wait(socket.as_fd(), Readiness::Readable, Duration::from_secs(5));
        assert!(ready.unwrap());
    }

    #[test]
    fn clock_is_past_2020() {
        assert!(unix_now() > 1_577_836_800);
    }
}
