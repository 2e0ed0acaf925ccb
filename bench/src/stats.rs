//! Counters per failure kind and a fixed log-scale latency histogram.

use serde::Serialize;

/// Sub-buckets per power of two: 16 gives at most 1/16 (6.25 %) relative error.
const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
/// Buckets for every `u64` value.
pub const BUCKETS: usize = (SUB as usize) * (64 - SUB_BITS as usize + 1);

/// Latencies in nanoseconds, in fixed buckets: recording never allocates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    sum: u128,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            sum: 0,
            max: 0,
        }
    }
}

impl Histogram {
    /// The bucket holding `value`.
    pub fn bucket(value: u64) -> usize {
        if value < SUB {
            return value as usize;
        }
        let exp = 63 - value.leading_zeros();
        let mantissa = (value >> (exp - SUB_BITS)) & (SUB - 1);
        (SUB as usize) * (exp - SUB_BITS + 1) as usize + mantissa as usize
    }

    /// The largest value that falls in bucket `index`.
    pub fn bucket_upper(index: usize) -> u64 {
        let sub = SUB as usize;
        if index < sub {
            return index as u64;
        }
        let exp = (index / sub) as u32 + SUB_BITS - 1;
        let mantissa = (index % sub) as u64;
        let width = 1u64 << (exp - SUB_BITS);
        ((SUB + mantissa) << (exp - SUB_BITS)).saturating_add(width - 1)
    }

    /// Counts one sample.
    pub fn record(&mut self, value: u64) {
        self.counts[Self::bucket(value)] += 1;
        self.total += 1;
        self.sum += u128::from(value);
        self.max = self.max.max(value);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest sample.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The mean sample, 0 when empty.
    pub fn mean(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            (self.sum / u128::from(self.total)) as u64
        }
    }

    /// The value at or below which `percent` of the samples lie (bucket upper bound, at most
    /// the largest sample); 0 when empty.
    pub fn percentile(&self, percent: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((percent / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Self::bucket_upper(index).min(self.max);
            }
        }
        self.max
    }

    /// Adds `other`'s samples (another thread's histogram of the same run).
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// The samples in `self` that are not in `earlier` (an earlier copy of the same histogram).
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let mut out = Histogram::default();
        for (i, (a, b)) in self.counts.iter().zip(earlier.counts.iter()).enumerate() {
            out.counts[i] = a.saturating_sub(*b);
        }
        out.total = self.total.saturating_sub(earlier.total);
        out.sum = self.sum.saturating_sub(earlier.sum);
        // The window's maximum is not recoverable exactly: use its highest bucket.
        out.max = out
            .counts
            .iter()
            .rposition(|&n| n > 0)
            .map_or(0, |i| Self::bucket_upper(i).min(self.max));
        out
    }
}

/// Why a reply (or a flow) was not what the scenario expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Failure {
    /// Not a parseable DHCPv6 message.
    Malformed,
    /// A transaction id that no request of this run used (late replies are counted apart).
    UnknownXid,
    /// The message type does not answer the request (e.g. Advertise to a Rapid Commit Solicit).
    WrongType,
    /// The Client Identifier is missing or not the requesting client's DUID.
    WrongClientId,
    /// No Server Identifier in the reply.
    MissingServerId,
    /// The Reply's Server Identifier is not the one the client chose from the Advertise.
    WrongServerId,
    /// Relay-reply whose peer-address or Interface-Id does not match the Relay-forward.
    BadRelay,
    /// A top-level Status Code other than Success.
    StatusFailure,
    /// An IA_NA was asked for and no address came back.
    NoAddress,
    /// An address outside `--expect-range`.
    AddressOutOfRange,
    /// An address already bound to another emulated client.
    DuplicateAddress,
    /// An IA_PD was asked for and no prefix came back.
    NoPrefix,
    /// A prefix outside `--expect-pd-range`.
    PrefixOutOfRange,
    /// A prefix already delegated to another emulated client.
    DuplicatePrefix,
    /// `--scenario echo`: the message that came back differs from the one sent.
    EchoMismatch,
}

impl Failure {
    /// Every kind, in counter order.
    pub const ALL: [Failure; 15] = [
        Failure::Malformed,
        Failure::UnknownXid,
        Failure::WrongType,
        Failure::WrongClientId,
        Failure::MissingServerId,
        Failure::WrongServerId,
        Failure::BadRelay,
        Failure::StatusFailure,
        Failure::NoAddress,
        Failure::AddressOutOfRange,
        Failure::DuplicateAddress,
        Failure::NoPrefix,
        Failure::PrefixOutOfRange,
        Failure::DuplicatePrefix,
        Failure::EchoMismatch,
    ];

    /// The kind's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Failure::Malformed => "malformed",
            Failure::UnknownXid => "unknown_xid",
            Failure::WrongType => "wrong_type",
            Failure::WrongClientId => "wrong_client_id",
            Failure::MissingServerId => "missing_server_id",
            Failure::WrongServerId => "wrong_server_id",
            Failure::BadRelay => "bad_relay",
            Failure::StatusFailure => "status_failure",
            Failure::NoAddress => "no_address",
            Failure::AddressOutOfRange => "address_out_of_range",
            Failure::DuplicateAddress => "duplicate_address",
            Failure::NoPrefix => "no_prefix",
            Failure::PrefixOutOfRange => "prefix_out_of_range",
            Failure::DuplicatePrefix => "duplicate_prefix",
            Failure::EchoMismatch => "echo_mismatch",
        }
    }

    fn index(self) -> usize {
        Failure::ALL.iter().position(|&f| f == self).unwrap_or(0)
    }
}

/// Everything counted during a run; [`Stats::since`] gives a window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages sent, by [`crate::message::Exchange`] index.
    pub sent: [u64; 6],
    /// Datagrams received.
    pub received: u64,
    /// Flows started (a flow is one scenario run by one client).
    pub flows_started: u64,
    /// Flows started by a client that already held a binding from an earlier flow of the run
    /// (the population wrapped, or the scenario renews): such a flow finds its lease in the
    /// server instead of making one.
    pub flows_known: u64,
    /// Flows whose every exchange was answered and valid.
    pub flows_completed: u64,
    /// Flows ended by an invalid reply.
    pub flows_failed: u64,
    /// Flows ended by a request that got no reply within the timeout.
    pub timeouts: u64,
    /// Replies that came after their request's timeout (already counted in `timeouts`).
    pub late: u64,
    /// Further replies to an answered request (a second server's Advertise, a duplicate).
    pub extra: u64,
    /// Flows the schedule wanted but could not start: no idle client (every one was waiting
    /// for a reply), or the sender fell more than 100 ms behind the schedule.
    pub skipped: u64,
    /// Failures by kind, in [`Failure::ALL`] order.
    pub failures: [u64; Failure::ALL.len()],
    /// Request-to-reply latency of every answered exchange, in nanoseconds.
    pub latency: Histogram,
}

impl Stats {
    /// Counts one failure.
    pub fn fail(&mut self, failure: Failure) {
        self.failures[failure.index()] += 1;
    }

    /// The count for one failure kind.
    pub fn failures_of(&self, failure: Failure) -> u64 {
        self.failures[failure.index()]
    }

    /// All failures together.
    pub fn total_failures(&self) -> u64 {
        self.failures.iter().sum()
    }

    /// Messages sent.
    pub fn total_sent(&self) -> u64 {
        self.sent.iter().sum()
    }

    /// Flows that ended, one way or another.
    pub fn flows_ended(&self) -> u64 {
        self.flows_completed + self.flows_failed + self.timeouts
    }

    /// Timed-out flows as a percentage of ended flows (0 when none ended).
    pub fn loss_percent(&self) -> f64 {
        let ended = self.flows_ended();
        if ended == 0 {
            0.0
        } else {
            100.0 * self.timeouts as f64 / ended as f64
        }
    }

    /// Adds `other`'s counts (another generator thread's statistics of the same run).
    pub fn merge(&mut self, other: &Stats) {
        for (a, b) in self.sent.iter_mut().zip(other.sent) {
            *a += b;
        }
        for (a, b) in self.failures.iter_mut().zip(other.failures) {
            *a += b;
        }
        self.received += other.received;
        self.flows_started += other.flows_started;
        self.flows_known += other.flows_known;
        self.flows_completed += other.flows_completed;
        self.flows_failed += other.flows_failed;
        self.timeouts += other.timeouts;
        self.late += other.late;
        self.extra += other.extra;
        self.skipped += other.skipped;
        self.latency.merge(&other.latency);
    }

    /// What happened after `earlier`, an earlier copy of these statistics.
    pub fn since(&self, earlier: &Stats) -> Stats {
        let mut out = Stats::default();
        for i in 0..self.sent.len() {
            out.sent[i] = self.sent[i].saturating_sub(earlier.sent[i]);
        }
        for i in 0..self.failures.len() {
            out.failures[i] = self.failures[i].saturating_sub(earlier.failures[i]);
        }
        out.received = self.received.saturating_sub(earlier.received);
        out.flows_started = self.flows_started.saturating_sub(earlier.flows_started);
        out.flows_known = self.flows_known.saturating_sub(earlier.flows_known);
        out.flows_completed = self.flows_completed.saturating_sub(earlier.flows_completed);
        out.flows_failed = self.flows_failed.saturating_sub(earlier.flows_failed);
        out.timeouts = self.timeouts.saturating_sub(earlier.timeouts);
        out.late = self.late.saturating_sub(earlier.late);
        out.extra = self.extra.saturating_sub(earlier.extra);
        out.skipped = self.skipped.saturating_sub(earlier.skipped);
        out.latency = self.latency.since(&earlier.latency);
        out
    }
}

/// Latency percentiles in microseconds, for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Answered exchanges measured.
    pub samples: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
}

impl From<&Histogram> for LatencySummary {
    fn from(h: &Histogram) -> Self {
        let us = |ns: u64| ns as f64 / 1000.0;
        Self {
            samples: h.count(),
            mean_us: us(h.mean()),
            p50_us: us(h.percentile(50.0)),
            p90_us: us(h.percentile(90.0)),
            p99_us: us(h.percentile(99.0)),
            p999_us: us(h.percentile(99.9)),
            max_us: us(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_cover_their_values() {
        let mut last = 0;
        for v in (0..100_000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let b = Histogram::bucket(v);
            assert!(b < BUCKETS);
            assert!(b >= last || v > 100_000);
            last = b;
            assert!(Histogram::bucket_upper(b) >= v, "{v} above bucket {b}");
            if b > 0 {
                assert!(
                    Histogram::bucket_upper(b - 1) < v,
                    "{v} fits bucket {}",
                    b - 1
                );
            }
        }
        assert_eq!(Histogram::bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_within_bucket_error() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        assert_eq!(h.count(), 10_000);
        let close = |got: u64, want: u64| {
            let err = got.abs_diff(want) as f64 / want as f64;
            assert!(err <= 1.0 / 16.0, "{got} vs {want}");
        };
        close(h.percentile(50.0), 5_000_000);
        close(h.percentile(99.0), 9_900_000);
        assert_eq!(h.percentile(100.0), 10_000_000);
        assert_eq!(h.max(), 10_000_000);
        assert_eq!(h.mean(), 5_000_500);
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::default();
        for v in [3, 3, 3, 7] {
            h.record(v);
        }
        assert_eq!(h.percentile(50.0), 3);
        assert_eq!(h.percentile(75.0), 3);
        assert_eq!(h.percentile(99.0), 7);
        assert_eq!(Histogram::default().percentile(50.0), 0);
    }

    #[test]
    fn windows_subtract() {
        let mut s = Stats::default();
        s.latency.record(100);
        s.flows_started = 3;
        s.fail(Failure::UnknownXid);
        let early = s.clone();
        s.latency.record(5000);
        s.flows_started = 5;
        s.timeouts = 1;
        s.flows_completed = 3;
        let w = s.since(&early);
        assert_eq!(w.flows_started, 2);
        assert_eq!(w.latency.count(), 1);
        assert_eq!(w.latency.percentile(50.0), 5000);
        assert_eq!(w.total_failures(), 0);
        assert_eq!(s.total_failures(), 1);
        assert_eq!(s.loss_percent(), 25.0);
    }

    #[test]
    fn merged_threads_count_like_one() {
        // Two threads' statistics, added up, equal one thread's that saw everything.
        let (mut a, mut b, mut one) = (Stats::default(), Stats::default(), Stats::default());
        for (i, value) in [100u64, 200, 300, 40_000, 5_000_000]
            .into_iter()
            .enumerate()
        {
            let part = if i % 2 == 0 { &mut a } else { &mut b };
            for s in [part, &mut one] {
                s.latency.record(value);
                s.flows_started += 1;
                s.sent[i % 6] += 1;
                s.received += 2;
            }
        }
        b.fail(Failure::EchoMismatch);
        one.fail(Failure::EchoMismatch);
        b.timeouts = 1;
        one.timeouts = 1;
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(merged, one);
        assert_eq!(
            merged.latency.percentile(99.0),
            one.latency.percentile(99.0)
        );
        assert_eq!(merged.latency.max(), 5_000_000);
    }
}
