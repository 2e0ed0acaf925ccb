//! Waking a thread that sleeps in `poll(2)` on its own descriptor: an `eventfd(2)` it polls
//! beside that descriptor ([`wait_either`]), written by whoever hands it work
//! ([`Wakeup::notify`]).

use std::{
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
};

/// A non-blocking `eventfd`: [`Self::notify`] makes it readable, [`Self::clear`] resets it.
#[derive(Debug)]
pub struct Wakeup {
    fd: OwnedFd,
}

impl Wakeup {
    /// A new event descriptor, not readable.
    pub fn new() -> io::Result<Self> {
        // Safety: eventfd takes no pointers; a non-negative result is a new descriptor that
        // nothing else owns.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // Safety: `fd` was just returned by eventfd and is owned by no one else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd })
    }

    /// Makes the descriptor readable, waking a thread in [`wait_either`] on it.
    pub fn notify(&self) {
        let one: u64 = 1;
        // Safety: writes the 8 bytes of `one`, which lives for the call. A full counter
        // (EAGAIN) means it is readable already.
        unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&one as *const u64).cast(),
                size_of::<u64>(),
            )
        };
    }

    /// Resets the descriptor to not readable (EAGAIN when it was not: nothing to do).
    pub fn clear(&self) {
        let mut count: u64 = 0;
        // Safety: reads at most 8 bytes into `count`, which lives for the call.
        unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut count as *mut u64).cast(),
                size_of::<u64>(),
            )
        };
    }
}

impl AsFd for Wakeup {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Sleeps in `poll(2)` until `first` or `second` is readable or `timeout_ms` passes; returns
/// whether `second` is readable (false on timeout, error or signal).
pub fn wait_either(first: BorrowedFd<'_>, second: BorrowedFd<'_>, timeout_ms: i32) -> bool {
    let mut polls = [
        libc::pollfd {
            fd: first.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: second.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // Safety: two valid pollfds for the duration of the call.
    let ready = unsafe { libc::poll(polls.as_mut_ptr(), 2, timeout_ms) };
    ready > 0 && polls[1].revents & libc::POLLIN != 0
}

/// Sleeps in `poll(2)` until one of `fds` (at most [`WAIT_ANY_MAX`]) is readable or
/// `timeout_ms` passes; returns whether one is (false on timeout, error or signal). Extra
/// descriptors past the limit are not watched.
pub fn wait_any(fds: &[BorrowedFd<'_>], timeout_ms: i32) -> bool {
    wait_readable(fds, timeout_ms) != 0
}

/// [`wait_any`], returning which of `fds` are readable: bit `i` for `fds[i]` (0 on timeout,
/// error or signal), so that a caller resets an `eventfd` ([`Wakeup::clear`]) only when it
/// was notified.
pub fn wait_readable(fds: &[BorrowedFd<'_>], timeout_ms: i32) -> u32 {
    let mut polls = [libc::pollfd {
        fd: -1,
        events: libc::POLLIN,
        revents: 0,
    }; WAIT_ANY_MAX];
    let count = fds.len().min(WAIT_ANY_MAX);
    for (poll, fd) in polls.iter_mut().zip(fds) {
        poll.fd = fd.as_raw_fd();
    }
    // Safety: `count` valid pollfds for the duration of the call.
    let ready = unsafe { libc::poll(polls.as_mut_ptr(), count as libc::nfds_t, timeout_ms) };
    if ready <= 0 {
        return 0;
    }
    polls[..count]
        .iter()
        .enumerate()
        .filter(|(_, poll)| poll.revents & libc::POLLIN != 0)
        .fold(0, |mask, (i, _)| mask | 1 << i)
}

/// The most descriptors [`wait_any`] watches.
pub const WAIT_ANY_MAX: usize = 4;

#[cfg(test)]
mod tests {
    use std::{sync::Arc, thread, time::Duration, time::Instant};

    use super::*;

    #[test]
    fn a_notification_wakes_a_waiter_and_clears() {
        let wakeup = Arc::new(Wakeup::new().unwrap());
        let idle = Wakeup::new().unwrap();
        // Not readable: the wait times out.
        assert!(!wait_either(idle.as_fd(), wakeup.as_fd(), 10));
        let notifier = Arc::clone(&wakeup);
        let started = Instant::now();
        let thread = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            notifier.notify();
        });
        assert!(wait_either(idle.as_fd(), wakeup.as_fd(), 10_000));
        assert!(started.elapsed() < Duration::from_secs(10));
        thread.join().unwrap();
        wakeup.clear();
        assert!(!wait_either(idle.as_fd(), wakeup.as_fd(), 0));
        // Clearing what is not readable does nothing.
        wakeup.clear();
    }

    #[test]
    fn any_of_three_wakes_a_waiter() {
        let fds: Vec<Wakeup> = (0..3).map(|_| Wakeup::new().unwrap()).collect();
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
        assert!(!wait_any(&borrowed, 10));
        fds[2].notify();
        assert!(wait_any(&borrowed, 10_000));
        fds[2].clear();
        fds[0].notify();
        assert!(wait_any(&borrowed, 10_000));
        fds[0].clear();
        assert!(!wait_any(&borrowed, 0));
    }

    #[test]
    fn the_readable_ones_are_named() {
        let fds: Vec<Wakeup> = (0..3).map(|_| Wakeup::new().unwrap()).collect();
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
        assert_eq!(wait_readable(&borrowed, 0), 0);
        fds[1].notify();
        assert_eq!(wait_readable(&borrowed, 10_000), 0b010);
        fds[2].notify();
        assert_eq!(wait_readable(&borrowed, 10_000), 0b110);
        fds[1].clear();
        fds[2].clear();
        assert_eq!(wait_readable(&borrowed, 0), 0);
    }
}
