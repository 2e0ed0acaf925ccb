//! The summary table, the JSON summary and the SVG plot.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::cpu::CpuShare;
use crate::message::Exchange;
use crate::runner::{Phase, RampResult, Sample};
use crate::stats::{Failure, LatencySummary, Stats};

/// What was run, for the report's header.
#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    /// Scenario name (or mix).
    pub scenario: String,
    /// Emulated clients.
    pub clients: u32,
    /// Emulated relays (0: direct).
    pub relays: u32,
    /// Per-request timeout, milliseconds.
    pub timeout_ms: u64,
    /// Where requests went.
    pub server: String,
    /// `udp` or `afxdp`.
    pub transport: String,
}

/// The ramp part of a summary.
#[derive(Clone, Debug, Serialize)]
pub struct RampReport {
    /// Acceptable loss, percent.
    pub loss_threshold_percent: f64,
    /// The highest rate whose step passed.
    pub best_rate: Option<f64>,
    /// One point per step.
    pub steps: Vec<Sample>,
    /// Per step, in the same order: the rate asked, whether it passed and what each CPU of
    /// the machine did meanwhile (from `/proc/stat`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub step_details: Vec<StepDetail>,
}

/// A ramp step's target rate, its verdict and the machine's CPUs while it ran.
#[derive(Clone, Debug, Serialize)]
pub struct StepDetail {
    /// The rate the step was asked to offer, flows per second.
    pub rate: f64,
    /// Its loss and failures stayed within the threshold.
    pub passed: bool,
    /// Each CPU's busy and steal shares from the step's start to its end (drain included).
    pub cpu: Vec<CpuShare>,
    /// The CPU time the generator and the processes of `--watch-pid` took meanwhile
    /// (`/proc/PID/stat` utime + stime, all their threads), clock ticks as in `cpu`.
    pub process_ticks: u64,
    /// The part of it the processes of `--watch-pid` took (the server under test), clock
    /// ticks: with the step's completed flows, the server's CPU time per flow.
    pub server_ticks: u64,
    /// Flows of the step started by clients that already held a binding from an earlier
    /// flow of the run ([`crate::stats::Stats::flows_known`]): with more flows than
    /// `--clients`, the later steps run clients the server already knows.
    pub flows_known: u64,
    /// Flows the step started.
    pub flows_started: u64,
}

/// Named counters that serialize as a JSON object in their own order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts(pub Vec<(&'static str, u64)>);

impl Serialize for Counts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().copied())
    }
}

/// The machine-readable summary (`--json`).
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The run's settings.
    pub run: RunInfo,
    /// Target rate (the last step's for a ramp), flows per second.
    pub rate: f64,
    /// Seconds of sending (all steps for a ramp).
    pub duration_s: f64,
    /// Messages sent by type, in exchange order.
    pub sent: Counts,
    /// Datagrams received.
    pub received: u64,
    /// Flows started.
    pub flows_started: u64,
    /// Flows started by clients that already held a binding from an earlier flow of the run.
    pub flows_known: u64,
    /// Flows completed with every reply valid.
    pub flows_completed: u64,
    /// Flows ended by an invalid reply.
    pub flows_failed: u64,
    /// Flows lost to a timeout.
    pub timeouts: u64,
    /// Replies that arrived after their timeout.
    pub late_replies: u64,
    /// Further replies to answered requests (e.g. a second server's Advertise).
    pub extra_replies: u64,
    /// Flows not started for want of an idle client.
    pub skipped: u64,
    /// Datagrams the transport could not send.
    pub send_drops: u64,
    /// Received frames the transport dropped as malformed (bad length or checksum).
    pub bad_frames: u64,
    /// Timeouts as a percentage of ended flows.
    pub loss_percent: f64,
    /// Completed flows per second of sending.
    pub throughput: f64,
    /// Failures by kind (every kind listed, zeros included).
    pub failures: BTreeMap<&'static str, u64>,
    /// All failures.
    pub total_failures: u64,
    /// Request-to-reply latency.
    pub latency: LatencySummary,
    /// One sample per second of the run (per step for a ramp: see `ramp`).
    pub samples: Vec<Sample>,
    /// The ramp, if one ran.
    pub ramp: Option<RampReport>,
}

impl Summary {
    /// Summarizes statistics counted over `duration_s` seconds of sending.
    pub fn new(
        run: RunInfo,
        rate: f64,
        duration_s: f64,
        stats: &Stats,
        send_drops: u64,
        samples: Vec<Sample>,
    ) -> Self {
        Self {
            run,
            rate,
            duration_s,
            sent: Counts(
                Exchange::ALL
                    .iter()
                    .map(|e| (e.name(), stats.sent[e.index()]))
                    .collect(),
            ),
            received: stats.received,
            flows_started: stats.flows_started,
            flows_known: stats.flows_known,
            flows_completed: stats.flows_completed,
            flows_failed: stats.flows_failed,
            timeouts: stats.timeouts,
            late_replies: stats.late,
            extra_replies: stats.extra,
            skipped: stats.skipped,
            send_drops,
            bad_frames: 0,
            loss_percent: stats.loss_percent(),
            throughput: if duration_s > 0.0 {
                stats.flows_completed as f64 / duration_s
            } else {
                0.0
            },
            failures: Failure::ALL
                .iter()
                .map(|&f| (f.name(), stats.failures_of(f)))
                .collect(),
            total_failures: stats.total_failures(),
            latency: LatencySummary::from(&stats.latency),
            samples,
            ramp: None,
        }
    }

    /// Records the frames the transport dropped on receipt.
    pub fn with_bad_frames(mut self, bad_frames: u64) -> Self {
        self.bad_frames = bad_frames;
        self
    }

    /// Adds a ramp's steps.
    pub fn with_ramp(mut self, ramp: &RampResult, loss_threshold_percent: f64) -> Self {
        self.ramp = Some(RampReport {
            loss_threshold_percent,
            best_rate: ramp.best_rate,
            steps: ramp.steps.iter().map(Phase::summary).collect(),
            step_details: Vec::new(),
        });
        self
    }

    /// Adds each ramp step's rate, verdict and CPU shares (after [`Summary::with_ramp`]).
    pub fn with_step_details(mut self, details: Vec<StepDetail>) -> Self {
        if let Some(ramp) = &mut self.ramp {
            ramp.step_details = details;
        }
        self
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "scenario {}  clients {}  relays {}  server {}  transport {}  timeout {} ms",
            self.run.scenario,
            self.run.clients,
            self.run.relays,
            self.run.server,
            self.run.transport,
            self.run.timeout_ms
        );
        let row = |t: &mut String, k: &str, v: String| {
            let _ = writeln!(t, "  {k:<24} {v:>14}");
        };
        row(&mut t, "target rate (flows/s)", format!("{:.0}", self.rate));
        row(
            &mut t,
            "sending time (s)",
            format!("{:.1}", self.duration_s),
        );
        row(&mut t, "flows started", self.flows_started.to_string());
        row(
            &mut t,
            "of them by clients already bound",
            self.flows_known.to_string(),
        );
        row(&mut t, "flows completed", self.flows_completed.to_string());
        row(&mut t, "flows failed", self.flows_failed.to_string());
        row(&mut t, "timeouts (lost)", self.timeouts.to_string());
        row(&mut t, "late replies", self.late_replies.to_string());
        row(&mut t, "extra replies", self.extra_replies.to_string());
        row(&mut t, "loss", format!("{:.3} %", self.loss_percent));
        row(&mut t, "skipped (not started)", self.skipped.to_string());
        row(&mut t, "send drops", self.send_drops.to_string());
        row(&mut t, "bad frames dropped", self.bad_frames.to_string());
        row(
            &mut t,
            "throughput (flows/s)",
            format!("{:.1}", self.throughput),
        );
        for (name, n) in &self.sent.0 {
            if *n > 0 {
                row(&mut t, &format!("sent {name}"), n.to_string());
            }
        }
        row(&mut t, "received", self.received.to_string());
        let l = &self.latency;
        let _ = writeln!(
            t,
            "  latency us: mean {:.1}  p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  ({} samples)",
            l.mean_us, l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us, l.samples
        );
        if self.total_failures == 0 {
            let _ = writeln!(t, "  failures: none");
        } else {
            let _ = writeln!(t, "  failures:");
            for (name, n) in &self.failures {
                if *n > 0 {
                    row(&mut t, name, n.to_string());
                }
            }
        }
        if let Some(ramp) = &self.ramp {
            let _ = writeln!(
                t,
                "  ramp (loss threshold {} %):  offered/s  completed/s   loss %   p50 us   p99 us",
                ramp.loss_threshold_percent
            );
            for s in &ramp.steps {
                let _ = writeln!(
                    t,
                    "  {:>36.0} {:>12.0} {:>8.3} {:>8.1} {:>8.1}",
                    s.offered, s.throughput, s.loss_percent, s.p50_us, s.p99_us
                );
            }
            match ramp.best_rate {
                Some(r) => {
                    let _ = writeln!(t, "  highest rate within threshold: {r:.0} flows/s");
                }
                None => {
                    let _ = writeln!(t, "  no rate stayed within the threshold");
                }
            }
        }
        t
    }
}

/// One point of the plot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlotPoint {
    /// Offered load, flows per second (x).
    pub offered: f64,
    /// Completed flows per second.
    pub throughput: f64,
    /// Median latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
}

impl From<&Sample> for PlotPoint {
    fn from(s: &Sample) -> Self {
        Self {
            offered: s.offered,
            throughput: s.throughput,
            p50_us: s.p50_us,
            p99_us: s.p99_us,
        }
    }
}

const W: f64 = 1000.0;
const H: f64 = 420.0;
const PANEL_W: f64 = 380.0;
const PANEL_H: f64 = 300.0;
const TOP: f64 = 50.0;

/// Throughput against offered load (left) and latency percentiles against offered load
/// (right), as a standalone SVG document. Points are sorted by offered load.
pub fn svg(title: &str, points: &[PlotPoint]) -> String {
    let mut pts = points.to_vec();
    pts.sort_by(|a, b| a.offered.total_cmp(&b.offered));
    let x_max = pts
        .iter()
        .map(|p| p.offered.max(p.throughput))
        .fold(0.0, f64::max);
    let lat_max = pts
        .iter()
        .map(|p| p.p99_us.max(p.p50_us))
        .fold(0.0, f64::max);
    let mut s = document(title);
    let left = Panel::new(90.0, x_max, x_max);
    left.frame(&mut s, "offered load (flows/s)", "completed (flows/s)");
    // The ideal: every offered flow completes.
    left.line(
        &mut s,
        &[(0.0, 0.0), (left.x_max, left.x_max)],
        "#bbbbbb",
        "ideal",
        true,
    );
    let tp: Vec<(f64, f64)> = pts.iter().map(|p| (p.offered, p.throughput)).collect();
    left.line(&mut s, &tp, "#1f77b4", "throughput", false);
    let right = Panel::new(580.0, x_max, lat_max);
    right.frame(&mut s, "offered load (flows/s)", "latency (us)");
    let p50: Vec<(f64, f64)> = pts.iter().map(|p| (p.offered, p.p50_us)).collect();
    let p99: Vec<(f64, f64)> = pts.iter().map(|p| (p.offered, p.p99_us)).collect();
    right.line(&mut s, &p50, "#2ca02c", "p50", false);
    right.line(&mut s, &p99, "#d62728", "p99", false);
    right.legend(&mut s, &[("p50", "#2ca02c"), ("p99", "#d62728")]);
    left.legend(&mut s, &[("throughput", "#1f77b4"), ("ideal", "#bbbbbb")]);
    s.push_str("</svg>\n");
    s
}

/// The start of a standalone SVG document of the plots' size: white background and `title`.
pub(crate) fn document(title: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{W}" height="{H}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        W / 2.0,
        escape(title)
    );
    s
}

/// Colours of the series of [`compare_svg`], in order.
const SERIES_COLORS: [&str; 6] = [
    "#7f7f7f", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e",
];

/// Several runs side by side: throughput against offered load (left) and p99 latency against
/// offered load (right), one colour per named series, as a standalone SVG document.
pub fn compare_svg(title: &str, series: &[(String, Vec<PlotPoint>)]) -> String {
    let all = || series.iter().flat_map(|(_, points)| points.iter());
    let x_max = all()
        .map(|p| p.offered.max(p.throughput))
        .fold(0.0, f64::max);
    let lat_max = all().map(|p| p.p99_us).fold(0.0, f64::max);
    let mut s = document(title);
    let left = Panel::new(90.0, x_max, x_max);
    left.frame(&mut s, "offered load (flows/s)", "completed (flows/s)");
    left.line(
        &mut s,
        &[(0.0, 0.0), (left.x_max, left.x_max)],
        "#bbbbbb",
        "ideal",
        true,
    );
    let right = Panel::new(580.0, x_max, lat_max);
    right.frame(&mut s, "offered load (flows/s)", "p99 latency (us)");
    let mut legend = Vec::new();
    for (i, (name, points)) in series.iter().enumerate() {
        let color = SERIES_COLORS[i % SERIES_COLORS.len()];
        let mut pts = points.clone();
        pts.sort_by(|a, b| a.offered.total_cmp(&b.offered));
        let tp: Vec<(f64, f64)> = pts.iter().map(|p| (p.offered, p.throughput)).collect();
        left.line(&mut s, &tp, color, name, false);
        let p99: Vec<(f64, f64)> = pts.iter().map(|p| (p.offered, p.p99_us)).collect();
        right.line(&mut s, &p99, color, name, false);
        legend.push((name.as_str(), color));
    }
    left.legend(&mut s, &legend);
    s.push_str("</svg>\n");
    s
}

/// One plot panel with its axes (shared with [`crate::hold::report`]).
pub(crate) struct Panel {
    x0: f64,
    x_max: f64,
    y_max: f64,
    x_step: f64,
    y_step: f64,
}

impl Panel {
    pub(crate) fn new(x0: f64, x_data: f64, y_data: f64) -> Self {
        let x_step = nice_step(x_data);
        let y_step = nice_step(y_data);
        Self {
            x0,
            x_max: (x_data / x_step).ceil().max(1.0) * x_step,
            y_max: (y_data / y_step).ceil().max(1.0) * y_step,
            x_step,
            y_step,
        }
    }

    fn px(&self, x: f64) -> f64 {
        self.x0 + x / self.x_max * PANEL_W
    }

    fn py(&self, y: f64) -> f64 {
        TOP + PANEL_H - y / self.y_max * PANEL_H
    }

    pub(crate) fn frame(&self, s: &mut String, x_label: &str, y_label: &str) {
        let (x0, y0) = (self.x0, TOP + PANEL_H);
        let _ = writeln!(
            s,
            r##"<rect x="{x0}" y="{TOP}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#333333"/>"##
        );
        let mut x = 0.0;
        while x <= self.x_max + self.x_step / 2.0 {
            let px = self.px(x);
            let _ = writeln!(
                s,
                r##"<line x1="{px:.1}" y1="{y0}" x2="{px:.1}" y2="{:.1}" stroke="#333333"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                y0 + 5.0,
                y0 + 18.0,
                tick_label(x)
            );
            x += self.x_step;
        }
        let mut y = 0.0;
        while y <= self.y_max + self.y_step / 2.0 {
            let py = self.py(y);
            let _ = writeln!(
                s,
                r##"<line x1="{:.1}" y1="{py:.1}" x2="{x0}" y2="{py:.1}" stroke="#333333"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                x0 - 5.0,
                x0 - 8.0,
                py + 4.0,
                tick_label(y)
            );
            y += self.y_step;
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x0 + PANEL_W / 2.0,
            y0 + 38.0,
            escape(x_label)
        );
        let (lx, ly) = (x0 - 60.0, TOP + PANEL_H / 2.0);
        let _ = writeln!(
            s,
            r#"<text x="{lx:.1}" y="{ly:.1}" text-anchor="middle" transform="rotate(-90 {lx:.1} {ly:.1})">{}</text>"#,
            escape(y_label)
        );
    }

    pub(crate) fn line(
        &self,
        s: &mut String,
        points: &[(f64, f64)],
        color: &str,
        name: &str,
        dashed: bool,
    ) {
        if points.is_empty() {
            return;
        }
        let coords: Vec<String> = points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", self.px(x), self.py(y)))
            .collect();
        let dash = if dashed {
            r#" stroke-dasharray="4 4""#
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r#"<polyline class="{}" points="{}" fill="none" stroke="{color}" stroke-width="2"{dash}/>"#,
            escape(name),
            coords.join(" ")
        );
        if !dashed {
            for &(x, y) in points {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"><title>{}: {} at {}</title></circle>"#,
                    self.px(x),
                    self.py(y),
                    escape(name),
                    tick_label(y),
                    tick_label(x)
                );
            }
        }
    }

    /// A vertical line at `x` across the panel, labelled at the top.
    pub(crate) fn marker(&self, s: &mut String, x: f64, label: &str) {
        let px = self.px(x.clamp(0.0, self.x_max));
        let _ = writeln!(
            s,
            r##"<line class="marker" x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#d62728" stroke-dasharray="6 3"/><text x="{:.1}" y="{:.1}" fill="#d62728">{}</text>"##,
            TOP + PANEL_H,
            px + 4.0,
            TOP + PANEL_H - 6.0,
            escape(label)
        );
    }

    pub(crate) fn legend(&self, s: &mut String, entries: &[(&str, &str)]) {
        for (i, (name, color)) in entries.iter().enumerate() {
            let y = TOP + 15.0 + 16.0 * i as f64;
            let x = self.x0 + 10.0;
            let _ = writeln!(
                s,
                r#"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                x + 20.0,
                x + 25.0,
                y + 4.0,
                escape(name)
            );
        }
    }
}

/// A 1, 2 or 5 times a power of ten giving about five ticks up to `max`.
pub fn nice_step(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let raw = max / 5.0;
    let pow = 10f64.powf(raw.log10().floor());
    let m = raw / pow;
    let nice = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * pow
}

fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 && (v / 1e6).fract().abs() < 1e-9 {
        format!("{}M", v / 1e6)
    } else if a >= 1e4 && (v / 1e3).fract().abs() < 1e-9 {
        format!("{}k", v / 1e3)
    } else if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that every tag is closed in order (enough of XML for our own output).
    fn balanced(doc: &str) -> bool {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = doc;
        while let Some(open) = rest.find('<') {
            let Some(close) = rest[open..].find('>') else {
                return false;
            };
            let tag = &rest[open + 1..open + close];
            rest = &rest[open + close + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                if stack.pop().as_deref() != Some(name.trim()) {
                    return false;
                }
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().unwrap_or("");
                stack.push(name.to_string());
            }
        }
        stack.is_empty()
    }

    fn points() -> Vec<PlotPoint> {
        [
            (1000.0, 1000.0, 80.0, 150.0),
            (2000.0, 1990.0, 95.0, 400.0),
            (3000.0, 2400.0, 900.0, 5000.0),
        ]
        .into_iter()
        .map(|(offered, throughput, p50_us, p99_us)| PlotPoint {
            offered,
            throughput,
            p50_us,
            p99_us,
        })
        .collect()
    }

    #[test]
    fn svg_is_well_formed_and_holds_the_points() {
        let doc = svg("sarr <ramp> & co", &points());
        assert!(doc.starts_with("<svg"));
        assert!(doc.trim_end().ends_with("</svg>"));
        assert!(balanced(&doc), "{doc}");
        assert!(doc.contains("&lt;ramp&gt; &amp; co"));
        assert_eq!(doc.matches("<polyline").count(), 4);
        // Three throughput points and three of each percentile.
        assert_eq!(doc.matches("<circle").count(), 9);
        assert!(doc.contains("throughput: 2400 at 3000"));
        assert!(doc.contains("p99: 5000 at 3000"));
        assert!(doc.contains(">3000<"), "x tick labels");
    }

    #[test]
    fn compare_svg_draws_one_colour_per_series() {
        let half: Vec<PlotPoint> = points()
            .into_iter()
            .map(|p| PlotPoint {
                throughput: p.throughput / 2.0,
                ..p
            })
            .collect();
        let doc = compare_svg(
            "ceiling & servers",
            &[("ceiling".into(), points()), ("kea <memfile>".into(), half)],
        );
        assert!(balanced(&doc), "{doc}");
        assert!(doc.contains("ceiling &amp; servers"));
        // The ideal line, then throughput and p99 for each series.
        assert_eq!(doc.matches("<polyline").count(), 5);
        assert_eq!(doc.matches("<circle").count(), 12);
        assert!(doc.contains("kea &lt;memfile&gt;: 1200 at 3000"));
        assert!(doc.contains("ceiling: 5000 at 3000"));
        assert_eq!(doc.matches(SERIES_COLORS[1]).count(), 2 + 6 + 1);
    }

    #[test]
    fn empty_plots_are_still_documents() {
        let doc = svg("nothing", &[]);
        assert!(balanced(&doc));
        assert!(!doc.contains("NaN"));
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(1000.0), 200.0);
        assert_eq!(nice_step(3000.0), 1000.0);
        assert_eq!(nice_step(9.0), 2.0);
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(tick_label(20000.0), "20k");
        assert_eq!(tick_label(2_000_000.0), "2M");
        assert_eq!(tick_label(1.5), "1.5");
    }

    #[test]
    fn json_summary_has_the_fields() {
        let mut stats = Stats {
            flows_started: 10,
            flows_completed: 8,
            timeouts: 1,
            flows_failed: 1,
            ..Stats::default()
        };
        stats.sent[Exchange::Solicit.index()] = 10;
        stats.fail(Failure::AddressOutOfRange);
        stats.latency.record(250_000);
        let info = RunInfo {
            scenario: "sarr".into(),
            clients: 10,
            relays: 0,
            timeout_ms: 1000,
            server: "[ff02::1:2%eth0]:547".into(),
            transport: "udp".into(),
        };
        let summary = Summary::new(info, 5.0, 2.0, &stats, 0, Vec::new());
        let v: serde_json::Value = serde_json::to_value(&summary).unwrap();
        assert_eq!(v["run"]["scenario"], "sarr");
        assert_eq!(v["flows_completed"], 8);
        assert_eq!(v["throughput"], 4.0);
        assert_eq!(v["loss_percent"], 10.0);
        assert_eq!(v["failures"]["address_out_of_range"], 1);
        assert_eq!(v["failures"]["duplicate_address"], 0);
        assert_eq!(v["total_failures"], 1);
        assert_eq!(v["sent"]["solicit"], 10);
        assert_eq!(v["latency"]["p50_us"], 250.0);
        assert!(v["ramp"].is_null());
        let table = summary.table();
        assert!(table.contains("address_out_of_range"));
        assert!(table.contains("flows completed"));
    }
}
