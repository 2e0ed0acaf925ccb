//! Waking the workers that sleep in `poll(2)` beside their sockets while their replies wait
//! for a sync ([`crate::events::Events::sleep_until`]).
//!
//! A worker with replies held and nothing received used to block on the journal's condition
//! variable until the oldest mark was durable: requests that arrived meanwhile waited in the
//! receive ring for the sync to end, were handled only then, and so missed the next sync as
//! well. Sleeping in `poll(2)` on the socket and an `eventfd` the writer makes readable when
//! it publishes, the worker handles those requests while the sync runs, and their records are
//! in the next group commit; the held replies still leave only once their mark is durable.
//!
//! The writer writes the `eventfd` only for a worker that said it sleeps (`sleeping`), so a
//! busy worker costs it nothing: the worker sets the flag, then reads the durable mark; the
//! writer stores the mark, then reads the flag; sequentially consistent fences between each
//! pair make at least one of them see the other.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, Mutex, Weak};

use xdhcp6_datapath::wake::{WAIT_ANY_MAX, Wakeup, wait_readable};

use super::lock;

/// One worker's wakeup.
#[derive(Debug)]
pub(super) struct DurableWaiter {
    wakeup: Wakeup,
    /// Set while the worker sleeps (or is about to): the writer then notifies it.
    sleeping: AtomicBool,
}

impl DurableWaiter {
    /// Sleeps until `ready()` holds, one of `beside` (at most [`WAIT_ANY_MAX`] - 1) is readable,
    /// or `timeout_ms` passes; returns at once if `ready()` holds once the waiter is armed.
    pub(super) fn sleep(
        &self,
        beside: &[BorrowedFd<'_>],
        timeout_ms: i32,
        ready: impl Fn() -> bool,
    ) {
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let mut notified = false;
        if !ready() {
            let mut fds = [self.wakeup.as_fd(); WAIT_ANY_MAX];
            let count = 1 + beside.len().min(WAIT_ANY_MAX - 1);
            fds[1..count].copy_from_slice(&beside[..count - 1]);
            notified = wait_readable(&fds[..count], timeout_ms) & 1 != 0;
        }
        self.sleeping.store(false, Ordering::Relaxed);
        // Reset only what poll saw written: a read per sleep costs a system call on every
        // turn that holds replies. A notification that comes after the poll (or while `ready`
        // held) stays readable and ends the next sleep at once, which then resets it.
        if notified {
            self.wakeup.clear();
        }
    }
}

/// The journal's waiters: every sink that slept on it once.
#[derive(Debug, Default)]
pub(super) struct Waiters(Mutex<Vec<Weak<DurableWaiter>>>);

impl Waiters {
    /// A new waiter, notified from now on.
    pub(super) fn register(&self) -> io::Result<Arc<DurableWaiter>> {
        let waiter = Arc::new(DurableWaiter {
            wakeup: Wakeup::new()?,
            sleeping: AtomicBool::new(false),
        });
        lock(&self.0).push(Arc::downgrade(&waiter));
        Ok(waiter)
    }

    /// Wakes every waiter that sleeps; called after the durable mark moved or the journal
    /// failed. Forgets the waiters whose sinks are gone.
    pub(super) fn wake(&self) {
        fence(Ordering::SeqCst);
        lock(&self.0).retain(|waiter| match waiter.upgrade() {
            Some(waiter) => {
                if waiter.sleeping.load(Ordering::Relaxed) {
                    waiter.wakeup.notify();
                }
                true
            }
            None => false,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;
    use std::thread;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_publish_wakes_a_sleeper_and_a_late_one_does_not_sleep() {
        let waiters = Arc::new(Waiters::default());
        let waiter = waiters.register().unwrap();
        let durable = Arc::new(AtomicU64::new(0));
        let publisher = {
            let (waiters, durable) = (Arc::clone(&waiters), Arc::clone(&durable));
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(20));
                durable.store(5, Ordering::Release);
                waiters.wake();
            })
        };
        // No timeout: only the publish can end the sleep.
        waiter.sleep(&[], -1, || durable.load(Ordering::Acquire) >= 5);
        assert_eq!(durable.load(Ordering::Acquire), 5);
        publisher.join().unwrap();
        // Already durable: returns without sleeping.
        waiter.sleep(&[], -1, || durable.load(Ordering::Acquire) >= 5);
    }

    #[test]
    fn a_readable_descriptor_beside_ends_the_sleep() {
        let waiters = Waiters::default();
        let waiter = waiters.register().unwrap();
        let socket = Wakeup::new().unwrap();
        socket.notify();
        waiter.sleep(&[socket.as_fd()], -1, || false);
    }

    #[test]
    fn a_late_notification_ends_the_next_sleep_once() {
        let waiters = Waiters::default();
        let waiter = waiters.register().unwrap();
        // The writer saw the flag and notified, but the mark was durable already: no poll,
        // and the notification stays.
        waiter.sleeping.store(true, Ordering::Relaxed);
        waiters.wake();
        waiter.sleep(&[], -1, || true);
        assert!(wait_readable(&[waiter.wakeup.as_fd()], 0) & 1 != 0);
        // It ends the next sleep at once (no timeout: only it can) and is reset by it.
        waiter.sleep(&[], -1, || false);
        assert_eq!(wait_readable(&[waiter.wakeup.as_fd()], 0), 0);
    }

    #[test]
    fn a_dropped_waiter_is_forgotten() {
        let waiters = Waiters::default();
        let waiter = waiters.register().unwrap();
        drop(waiter);
        waiters.wake();
        assert!(lock(&waiters.0).is_empty());
    }
}
