//! What the in-process tests share: a virtual clock.

use std::cell::Cell;
use std::rc::Rc;

use xdhcp6_bench::runner::Clock;

/// Engine seconds at virtual time 0.
pub const T0: u64 = 1_750_000_000;

/// Virtual time shared by the clock and the transport.
#[derive(Clone, Default)]
pub struct VirtualClock(pub Rc<Cell<u64>>);

impl Clock for VirtualClock {
    /// Each look at the clock moves it 1 us (the loop's own cost); the transport's receive
    /// moves it further.
    fn now_ns(&mut self) -> u64 {
        let t = self.0.get() + 1_000;
        self.0.set(t);
        t
    }
}
