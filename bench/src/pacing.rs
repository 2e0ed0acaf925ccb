//! Open-loop pacing: how many new flows are due by a given time.

/// A token bucket refilled once per millisecond at a fixed rate.
///
/// The schedule never depends on replies: a generator that waited for answers before sending
/// more would measure its own round trip, not the server (perfdhcp's open loop does the same).
#[derive(Clone, Debug)]
pub struct Pacer {
    rate: f64,
    start_ns: u64,
    released: u64,
    dropped: u64,
    max_burst: u64,
}

impl Pacer {
    /// A pacer for `rate` flows per second starting at `start_ns`.
    pub fn new(rate: f64, start_ns: u64) -> Self {
        // A late caller gets at most 100 ms of backlog at once, so a stall does not turn into
        // one huge burst that the server's socket buffer would drop.
        let max_burst = ((rate / 10.0).ceil() as u64).max(1);
        Self {
            rate: rate.max(0.0),
            start_ns,
            released: 0,
            dropped: 0,
            max_burst,
        }
    }

    /// The configured rate, flows per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Flows the schedule allows by `now_ns` in total: flow k is due at k / rate seconds, and
    /// every flow due within the current millisecond is released at its start.
    pub fn allowed(&self, now_ns: u64) -> u64 {
        if now_ns < self.start_ns {
            return 0;
        }
        let slot_end_ms = (now_ns - self.start_ns) / 1_000_000 + 1;
        (self.rate * slot_end_ms as f64 / 1000.0).ceil() as u64
    }

    /// Takes the flows due at `now_ns`; each call hands out each flow once.
    pub fn take_due(&mut self, now_ns: u64) -> u64 {
        let allowed = self.allowed(now_ns);
        let mut due = allowed.saturating_sub(self.released);
        if due > self.max_burst {
            // Skip the part of the backlog that is too old to send: it is counted by the caller
            // as not offered rather than sent late.
            self.dropped += due - self.max_burst;
            self.released = allowed - self.max_burst;
            due = self.max_burst;
        }
        self.released += due;
        due
    }

    /// Flows handed out so far.
    pub fn released(&self) -> u64 {
        self.released
    }

    /// Flows skipped because the caller fell more than 100 ms behind the schedule.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn releases_rate_per_second_in_millisecond_steps() {
        let mut p = Pacer::new(5000.0, 0);
        assert_eq!(p.take_due(0), 5);
        assert_eq!(p.take_due(MS / 2), 0);
        assert_eq!(p.take_due(MS), 5);
        assert_eq!(p.take_due(MS), 0);
        let mut total = 10;
        for ms in 2..1000 {
            total += p.take_due(ms * MS);
        }
        assert_eq!(total, 5000);
        assert_eq!(p.released(), 5000);
    }

    #[test]
    fn fractional_rates_accumulate() {
        let mut p = Pacer::new(10.0, 7 * MS);
        assert_eq!(p.take_due(0), 0);
        assert_eq!(p.take_due(7 * MS), 1);
        let mut total = 1;
        for ms in 8..2007 {
            total += p.take_due(ms * MS);
        }
        assert_eq!(total, 20);
    }

    #[test]
    fn a_stall_is_capped_at_100ms_of_backlog() {
        let mut p = Pacer::new(1000.0, 0);
        assert_eq!(p.take_due(5000 * MS), 100);
        assert_eq!(p.dropped(), 4901);
        assert_eq!(p.take_due(5001 * MS), 1);
        assert_eq!(p.dropped(), 4901);
        assert_eq!(p.allowed(5001 * MS), 5002);
    }

    #[test]
    fn zero_rate_releases_nothing() {
        let mut p = Pacer::new(0.0, 0);
        assert_eq!(p.take_due(10_000 * MS), 0);
    }
}
