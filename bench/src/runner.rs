//! The IO side: the clock, the one driver loop every scenario runs in ([`drive`]), and on top
//! of it a paced phase of flows ([`run_phase`]), the ramp search ([`run_ramp`]) and the `hold`
//! run ([`run_hold`]).

use std::io;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::generator::Generator;
use crate::hold::{Hold, HoldSample, HoldSummary, ServerInfo};
use crate::scenario::{Outbox, Scenario};
use crate::stats::Stats;
use crate::transport::Transport;

const SECOND: u64 = 1_000_000_000;

/// Nanoseconds since some fixed origin.
pub trait Clock {
    /// The time now.
    fn now_ns(&mut self) -> u64;
}

/// The monotonic system clock.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock(Instant);

impl Default for SystemClock {
    fn default() -> Self {
        Self(Instant::now())
    }
}

impl Clock for SystemClock {
    fn now_ns(&mut self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// One second of a run (or one ramp step).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since the run started (end of the window).
    pub t_s: f64,
    /// Offered load: flows started per second.
    pub offered: f64,
    /// Flows completed per second.
    pub throughput: f64,
    /// Replies received per second.
    pub replies: f64,
    /// Timed-out flows as a percentage of ended flows.
    pub loss_percent: f64,
    /// Failed validations in the window.
    pub failures: u64,
    /// Median latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
    /// Requests outstanding at the end of the window.
    pub in_flight: u64,
}

impl Sample {
    /// The sample of a window's counts over `seconds`, ending `t_s` into the run.
    pub fn of(window: &Stats, seconds: f64, t_s: f64, in_flight: u64) -> Self {
        let per_s = |n: u64| {
            if seconds > 0.0 {
                n as f64 / seconds
            } else {
                0.0
            }
        };
        Self {
            t_s,
            offered: per_s(window.flows_started),
            throughput: per_s(window.flows_completed),
            replies: per_s(window.received),
            loss_percent: window.loss_percent(),
            failures: window.total_failures(),
            p50_us: window.latency.percentile(50.0) as f64 / 1000.0,
            p99_us: window.latency.percentile(99.0) as f64 / 1000.0,
            in_flight,
        }
    }

    /// The live progress line.
    pub fn progress_line(&self) -> String {
        format!(
            "[{:>5.0}s] offered {:>9.0}/s  completed {:>9.0}/s  replies {:>9.0}/s  loss {:>6.2}%  \
             fail {:>6}  p50 {:>8.1}us  p99 {:>8.1}us  in-flight {}",
            self.t_s,
            self.offered,
            self.throughput,
            self.replies,
            self.loss_percent,
            self.failures,
            self.p50_us,
            self.p99_us,
            self.in_flight
        )
    }
}

/// What one phase (a whole run, or one ramp step) measured.
#[derive(Clone, Debug)]
pub struct Phase {
    /// The target rate, flows per second.
    pub rate: f64,
    /// Seconds of sending.
    pub duration_s: f64,
    /// Everything counted during the phase, drain included.
    pub stats: Stats,
    /// One sample per second.
    pub samples: Vec<Sample>,
}

impl Phase {
    /// The phase as one point: offered and achieved rates over the sending time.
    pub fn summary(&self) -> Sample {
        Sample::of(&self.stats, self.duration_s, self.duration_s, 0)
    }
}

/// What the driver does after a look at the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Mark the timeline now (a server was stopped), then go on.
    Mark,
    /// End the run now.
    Stop,
}

/// The loop every scenario runs in, from `start_ns` until the scenario is finished or
/// `control` (asked after each round with the time since the start) stops it: polls the
/// scenario and sends what it wrote, hands it the datagrams that arrive within its wait and
/// sends its answers, and calls `second` at the end of each second with the second's end.
pub fn drive<S: Scenario + ?Sized>(
    scenario: &mut S,
    transport: &mut dyn Transport,
    clock: &mut dyn Clock,
    start_ns: u64,
    second: &mut dyn FnMut(&mut S, u64),
    control: &mut dyn FnMut(u64) -> Control,
) -> io::Result<()> {
    let mut next_tick = start_ns + SECOND;
    let mut out = Outbox::default();
    loop {
        let now = clock.now_ns();
        scenario.poll(now, &mut out);
        if !out.is_empty() {
            transport.send(&out)?;
            out.clear();
        }
        transport.receive(scenario.wait(now), &mut |datagram| {
            let t = clock.now_ns();
            scenario.handle_datagram(t, datagram, &mut out);
        })?;
        if !out.is_empty() {
            transport.send(&out)?;
            out.clear();
        }
        let now = clock.now_ns();
        if now >= next_tick {
            second(scenario, next_tick);
            next_tick += SECOND;
        }
        match control(now - start_ns) {
            Control::Continue => {}
            Control::Mark => scenario.mark(now),
            Control::Stop => break,
        }
        if scenario.is_finished(now) {
            break;
        }
    }
    Ok(())
}

/// Runs the generator at `rate` for `duration`, then waits for outstanding requests (each
/// ends by its timeout at the latest). `progress` sees each one-second sample.
pub fn run_phase(
    generator: &mut Generator,
    transport: &mut dyn Transport,
    clock: &mut dyn Clock,
    rate: f64,
    duration: Duration,
    progress: &mut dyn FnMut(&Sample),
) -> io::Result<Phase> {
    let start = clock.now_ns();
    let duration_ns = duration.as_nanos() as u64;
    generator.start(start, rate, duration_ns);
    let base = generator.stats().clone();
    let mut last = base.clone();
    let mut samples = Vec::new();
    let mut second = |generator: &mut Generator, tick: u64| {
        let stats = generator.stats().clone();
        let window = stats.since(&last);
        last = stats;
        let sample = Sample::of(
            &window,
            1.0,
            (tick - start) as f64 / SECOND as f64,
            generator.in_flight(),
        );
        progress(&sample);
        samples.push(sample);
    };
    drive(generator, transport, clock, start, &mut second, &mut |_| {
        Control::Continue
    })?;
    Ok(Phase {
        rate,
        duration_s: duration.as_secs_f64(),
        stats: generator.stats().since(&base),
        samples,
    })
}

/// Runs `hold` for up to `duration`: takes a sample each second (shown to `progress`) and
/// asks `control` after each round whether to mark the timeline or stop early.
pub fn run_hold(
    hold: &mut Hold,
    transport: &mut dyn Transport,
    clock: &mut dyn Clock,
    duration: Duration,
    progress: &mut dyn FnMut(&HoldSample, &[ServerInfo]),
    control: &mut dyn FnMut(u64) -> Control,
) -> io::Result<HoldSummary> {
    let start = clock.now_ns();
    hold.start(start, duration.as_nanos() as u64);
    let mut second = |hold: &mut Hold, tick: u64| {
        let sample = hold.sample(tick);
        progress(&sample, hold.servers());
    };
    drive(hold, transport, clock, start, &mut second, control)?;
    let now = clock.now_ns();
    let mut summary = hold.summary(now);
    summary.send_drops = transport.send_drops();
    summary.bad_frames = transport.bad_frames();
    Ok(summary)
}

/// The ramp search's settings (perfdhcp -D style).
#[derive(Clone, Copy, Debug)]
pub struct Ramp {
    /// The first rate.
    pub start: f64,
    /// The increment.
    pub step: f64,
    /// The last rate tried.
    pub max: f64,
    /// The highest acceptable loss, percent.
    pub loss_percent: f64,
    /// Sending time per step.
    pub step_duration: Duration,
    /// Bisection steps after the first failing rate: each tries the middle of the last
    /// passing and the lowest failing rate, halving the uncertainty (0: none).
    pub refine: u32,
}

impl Ramp {
    /// The rates tried, in order.
    pub fn rates(&self) -> impl Iterator<Item = f64> + use<> {
        let (start, step, max) = (self.start, self.step.max(f64::MIN_POSITIVE), self.max);
        (0u64..)
            .map(move |i| start + step * i as f64)
            .take_while(move |&r| r <= max + 1e-9)
    }

    /// Whether a step passed: loss (timeouts) and failed validations within the threshold.
    pub fn passes(&self, phase: &Phase) -> bool {
        let s = &phase.stats;
        let ended = s.flows_ended();
        let bad = s.timeouts + s.flows_failed;
        ended > 0 && 100.0 * bad as f64 / ended as f64 <= self.loss_percent
    }
}

/// The ramp's outcome.
#[derive(Clone, Debug)]
pub struct RampResult {
    /// Every step run.
    pub steps: Vec<Phase>,
    /// The highest rate that passed.
    pub best_rate: Option<f64>,
}

/// Raises the rate step by step until a step loses more than the threshold, then bisects
/// between the best passing and the lowest failing rate `ramp.refine` times.
pub fn run_ramp(
    generator: &mut Generator,
    transport: &mut dyn Transport,
    clock: &mut dyn Clock,
    ramp: &Ramp,
    progress: &mut dyn FnMut(&Sample),
    step_done: &mut dyn FnMut(&Phase, bool),
) -> io::Result<RampResult> {
    ramp_with(ramp, step_done, &mut |rate| {
        run_phase(
            generator,
            transport,
            clock,
            rate,
            ramp.step_duration,
            progress,
        )
    })
}

/// The ramp search of [`run_ramp`] with any way of running a step at a rate: `phase(rate)`.
pub fn ramp_with(
    ramp: &Ramp,
    step_done: &mut dyn FnMut(&Phase, bool),
    phase: &mut dyn FnMut(f64) -> io::Result<Phase>,
) -> io::Result<RampResult> {
    let mut steps = Vec::new();
    let mut best_rate = None;
    let mut failed_at = None;
    let mut step = |rate: f64, steps: &mut Vec<Phase>| -> io::Result<bool> {
        let phase = phase(rate)?;
        let passed = ramp.passes(&phase);
        step_done(&phase, passed);
        steps.push(phase);
        Ok(passed)
    };
    for rate in ramp.rates() {
        if !step(rate, &mut steps)? {
            failed_at = Some(rate);
            break;
        }
        best_rate = Some(rate);
    }
    if let Some(mut high) = failed_at {
        let mut low = best_rate.unwrap_or(0.0);
        for _ in 0..ramp.refine {
            let rate = ((low + high) / 2.0).round();
            if rate <= low || rate >= high {
                break;
            }
            if step(rate, &mut steps)? {
                low = rate;
                best_rate = Some(rate);
            } else {
                high = rate;
            }
        }
    }
    Ok(RampResult { steps, best_rate })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_rates_stop_at_max() {
        let ramp = Ramp {
            start: 1000.0,
            step: 1000.0,
            max: 3500.0,
            loss_percent: 1.0,
            step_duration: Duration::from_secs(1),
            refine: 0,
        };
        assert_eq!(ramp.rates().collect::<Vec<_>>(), [1000.0, 2000.0, 3000.0]);
    }

    #[test]
    fn samples_are_per_second_rates() {
        let s = Stats {
            flows_started: 500,
            flows_completed: 400,
            timeouts: 100,
            received: 800,
            ..Stats::default()
        };
        let sample = Sample::of(&s, 0.5, 2.0, 7);
        assert_eq!(sample.offered, 1000.0);
        assert_eq!(sample.throughput, 800.0);
        assert_eq!(sample.replies, 1600.0);
        assert_eq!(sample.loss_percent, 20.0);
        assert!(sample.progress_line().contains("in-flight 7"));
    }
}
