//! The table's shard locks: `parking_lot::Mutex`, or, with the `lock-stats` feature (for
//! benchmarks), the same lock counting the acquisitions that found it held and the time they
//! waited ([`lock_waits`]). The count costs nothing on an acquisition that does not wait.

#[cfg(not(feature = "lock-stats"))]
pub(crate) use parking_lot::Mutex;

#[cfg(feature = "lock-stats")]
pub(crate) use self::counted::Mutex;
#[cfg(feature = "lock-stats")]
pub use self::counted::{LockWaits, lock_waits};

#[cfg(feature = "lock-stats")]
mod counted {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use parking_lot::MutexGuard;

    static WAITS: AtomicU64 = AtomicU64::new(0);
    static WAIT_NS: AtomicU64 = AtomicU64::new(0);

    /// What the shard locks of every table in the process counted so far.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct LockWaits {
        /// Acquisitions that found the lock held and waited.
        pub waits: u64,
        /// The time they waited altogether.
        pub wait_time: Duration,
    }

    /// The waits counted so far (subtract an earlier reading for one stretch of work).
    pub fn lock_waits() -> LockWaits {
        LockWaits {
            waits: WAITS.load(Ordering::Relaxed),
            wait_time: Duration::from_nanos(WAIT_NS.load(Ordering::Relaxed)),
        }
    }

    /// A `parking_lot::Mutex` that counts its waits.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(parking_lot::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            if let Some(guard) = self.0.try_lock() {
                return guard;
            }
            let started = Instant::now();
            let guard = self.0.lock();
            let waited = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            WAITS.fetch_add(1, Ordering::Relaxed);
            WAIT_NS.fetch_add(waited, Ordering::Relaxed);
            guard
        }

        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock()
        }
    }
}
