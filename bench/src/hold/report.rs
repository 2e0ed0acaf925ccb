//! What `hold` measured: the per-second timeline, the summary, its table and its plot.

use std::fmt::Write as _;

use serde::Serialize;

use super::{EVER_BOUND, Hold, KINDS, LOST, ServerInfo};
use crate::report::{Counts, Panel};
use crate::stats::{Failure, Histogram, LatencySummary};

/// One second of the timeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HoldSample {
    /// Seconds since the start (end of the window).
    pub t_s: f64,
    /// Clients holding at least one lease (an address or a prefix).
    pub in_service: u64,
    /// Clients that held a lease and hold none now.
    pub out_of_service: u64,
    /// Clients that never held one yet.
    pub not_yet_bound: u64,
    /// Clients that completed a Renew or Rebind at least once.
    pub renewed: u64,
    /// Clients in service, by the server that bound them (order of [`Hold::servers`]).
    pub by_server: Vec<u64>,
    /// Messages sent in the window, by kind.
    pub sent: Counts,
    /// Datagrams received in the window.
    pub received: u64,
    /// Failed validations in the window.
    pub failures: u64,
}

impl HoldSample {
    /// Messages sent in the window.
    pub fn messages(&self) -> u64 {
        self.sent.0.iter().map(|&(_, n)| n).sum()
    }

    /// The live progress line (also read by `cargo xtask failover`).
    pub fn progress_line(&self, servers: &[ServerInfo]) -> String {
        let mut line = format!(
            "[{:>5.0}s] in-service {} out {} waiting {} renewed {} |",
            self.t_s, self.in_service, self.out_of_service, self.not_yet_bound, self.renewed
        );
        for (server, n) in servers.iter().zip(&self.by_server) {
            let _ = write!(line, " {}={n}", server.duid);
        }
        let _ = write!(line, " | sent/s");
        for (name, n) in &self.sent.0 {
            let _ = write!(line, " {name} {n}");
        }
        let _ = write!(
            line,
            " | received/s {} fail {}",
            self.received, self.failures
        );
        line
    }
}

/// What `hold` measured, for the table and `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct HoldSummary {
    /// Emulated clients.
    pub clients: u32,
    /// The IAs each client keeps: `na`, `pd` or `na+pd`.
    pub ia: &'static str,
    /// Emulated relays (0: clients on the link).
    pub relays: u32,
    /// Seconds run.
    pub duration_s: f64,
    /// Servers heard, in the order first heard.
    pub servers: Vec<ServerInfo>,
    /// Clients that ever held a lease.
    pub clients_bound: u64,
    /// Clients holding a lease at the end.
    pub in_service_at_end: u64,
    /// Clients that completed a Renew or Rebind at least once.
    pub clients_renewed: u64,
    /// Clients that were without a lease at some point after their first binding.
    pub clients_lost_service: u64,
    /// Out-of-service intervals (finished ones and those still open at the end).
    pub outages: u64,
    /// Their durations.
    pub outage: OutageSummary,
    /// Clients without a lease at the end although they had one.
    pub never_recovered: u64,
    /// Clients that never obtained a lease.
    pub never_bound: u64,
    /// Seconds from the start when the run was marked (a server killed), if it was.
    pub mark_s: Option<f64>,
    /// Clients that moved to another server after the mark.
    pub clients_switched: u64,
    /// Seconds from the mark to the last client that regained service or moved to another
    /// server.
    pub recovery_s: Option<f64>,
    /// Messages sent per second over the last T1 before the mark.
    pub load_before: Option<f64>,
    /// Messages sent per second from the mark to the recovery.
    pub load_after: Option<f64>,
    /// The busiest second after the mark.
    pub load_after_peak: Option<u64>,
    /// Messages sent by kind.
    pub sent: Counts,
    /// Retransmissions among them.
    pub retransmissions: u64,
    /// Datagrams received.
    pub received: u64,
    /// Datagrams the transport could not send (a full socket buffer).
    pub send_drops: u64,
    /// Received frames the transport dropped as malformed (AF_XDP).
    pub bad_frames: u64,
    /// Second answers to answered exchanges.
    pub extra_replies: u64,
    /// Answers to an earlier exchange.
    pub late_replies: u64,
    /// Addresses and prefixes removed by a valid lifetime of 0.
    pub addresses_zeroed: u64,
    /// Addresses and prefixes that expired.
    pub addresses_expired: u64,
    /// Failed validations by kind.
    pub failures: std::collections::BTreeMap<&'static str, u64>,
    /// All failed validations.
    pub total_failures: u64,
    /// One sample per second.
    pub timeline: Vec<HoldSample>,
}

/// Outage durations in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct OutageSummary {
    /// Median.
    pub p50_s: f64,
    /// 90th percentile.
    pub p90_s: f64,
    /// 99th percentile.
    pub p99_s: f64,
    /// Longest.
    pub max_s: f64,
    /// Mean.
    pub mean_s: f64,
}

impl From<&Histogram> for OutageSummary {
    fn from(h: &Histogram) -> Self {
        // Recorded in microseconds; LatencySummary reports them divided by 1000.
        let l = LatencySummary::from(h);
        let s = |ms: f64| ms / 1000.0;
        Self {
            p50_s: s(l.p50_us),
            p90_s: s(l.p90_us),
            p99_s: s(l.p99_us),
            max_s: s(l.max_us),
            mean_s: s(l.mean_us),
        }
    }
}

impl Hold {
    /// Closes a one-second window at `now_ns`: counters since the last sample.
    pub fn sample(&mut self, now_ns: u64) -> HoldSample {
        let now = self.ms(now_ns);
        let n = u64::from(self.settings.population.len());
        let window = |a: u64, b: u64| a.saturating_sub(b);
        let sample = HoldSample {
            t_s: f64::from(now) / 1000.0,
            in_service: self.in_service(),
            out_of_service: self.out,
            not_yet_bound: n - self.ever_bound,
            renewed: self.renewed,
            by_server: self.by_server[1..=self.servers.len()].to_vec(),
            sent: Counts(
                KINDS
                    .iter()
                    .map(|&k| {
                        let i = k as usize;
                        (k.name(), window(self.stats.sent[i], self.last.sent[i]))
                    })
                    .collect(),
            ),
            received: window(self.stats.received, self.last.received),
            failures: window(self.stats.total_failures(), self.last.total_failures()),
        };
        self.last = self.stats.clone();
        self.samples.push(sample.clone());
        sample
    }

    /// The summary at `now_ns` (open outages are counted up to then).
    pub fn summary(&mut self, now_ns: u64) -> HoldSummary {
        let now = self.ms(now_ns);
        let mut outages = self.outages.clone();
        let mut lost = 0;
        let mut never_recovered = 0;
        for client in &self.clients {
            if client.has(LOST) {
                lost += 1;
            }
            if client.has(EVER_BOUND) && client.counted == 0 {
                never_recovered += 1;
                outages.record(u64::from(now.saturating_sub(client.out_since)) * 1000);
            }
        }
        let mark = self.mark_ms;
        let per_second = |from: f64, to: f64| -> Option<f64> {
            let window: Vec<&HoldSample> = self
                .samples
                .iter()
                .filter(|s| s.t_s > from && s.t_s <= to + 1e-9)
                .collect();
            (!window.is_empty()).then(|| {
                window.iter().map(|s| s.messages() as f64).sum::<f64>() / window.len() as f64
            })
        };
        let mark_s = mark.map(|m| f64::from(m) / 1000.0);
        let recovery_s = mark.and_then(|m| {
            self.last_recovery_ms
                .map(|r| f64::from(r.saturating_sub(m)) / 1000.0)
        });
        let load_before = mark_s.and_then(|m| {
            let t1 = f64::from(self.last_t1_ms.max(1000)) / 1000.0;
            per_second(m - t1, m)
        });
        let load_after = mark_s.and_then(|m| per_second(m, m + recovery_s.unwrap_or(0.0).max(1.0)));
        let load_after_peak = mark_s.and_then(|m| {
            self.samples
                .iter()
                .filter(|s| s.t_s > m)
                .map(HoldSample::messages)
                .max()
        });
        HoldSummary {
            clients: self.settings.population.len(),
            ia: self.settings.ias.name(),
            relays: self.settings.population.relays(),
            duration_s: f64::from(now) / 1000.0,
            servers: self.servers.clone(),
            clients_bound: self.ever_bound,
            in_service_at_end: self.in_service(),
            clients_renewed: self.renewed,
            clients_lost_service: lost,
            outages: outages.count(),
            outage: OutageSummary::from(&outages),
            never_recovered,
            never_bound: u64::from(self.settings.population.len()) - self.ever_bound,
            mark_s,
            clients_switched: self.switched,
            recovery_s,
            load_before,
            load_after,
            load_after_peak,
            sent: Counts(
                KINDS
                    .iter()
                    .map(|&k| (k.name(), self.stats.sent[k as usize]))
                    .collect(),
            ),
            retransmissions: self.stats.retransmissions,
            received: self.stats.received,
            send_drops: 0,
            bad_frames: 0,
            extra_replies: self.stats.extra,
            late_replies: self.stats.late,
            addresses_zeroed: self.stats.zeroed,
            addresses_expired: self.stats.expired,
            failures: Failure::ALL
                .iter()
                .zip(self.stats.failures)
                .map(|(f, n)| (f.name(), n))
                .collect(),
            total_failures: self.stats.total_failures(),
            timeline: self.samples.clone(),
        }
    }
}

impl HoldSummary {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let mut setup = String::new();
        if self.ia != "na" {
            let _ = write!(setup, "  ia {}", self.ia);
        }
        if self.relays > 0 {
            let _ = write!(setup, "  relays {}", self.relays);
        }
        let _ = writeln!(
            t,
            "scenario hold{setup}  clients {}  {:.1} s",
            self.clients, self.duration_s
        );
        let row = |t: &mut String, k: &str, v: String| {
            let _ = writeln!(t, "  {k:<34} {v:>14}");
        };
        for (i, s) in self.servers.iter().enumerate() {
            let _ = writeln!(
                t,
                "  server {} {} preference {:>3}: {} advertises, {} replies",
                i + 1,
                s.duid,
                s.preference,
                s.advertises,
                s.replies
            );
        }
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
        row(
            &mut t,
            "clients bound (ever)",
            self.clients_bound.to_string(),
        );
        row(
            &mut t,
            "clients renewed at least once",
            self.clients_renewed.to_string(),
        );
        row(
            &mut t,
            "in service at the end",
            self.in_service_at_end.to_string(),
        );
        row(
            &mut t,
            "clients that lost service",
            self.clients_lost_service.to_string(),
        );
        row(&mut t, "outages", self.outages.to_string());
        let o = &self.outage;
        row(
            &mut t,
            "outage s p50 / p90 / p99 / max",
            format!(
                "{:.2} / {:.2} / {:.2} / {:.2}",
                o.p50_s, o.p90_s, o.p99_s, o.max_s
            ),
        );
        row(&mut t, "never recovered", self.never_recovered.to_string());
        row(&mut t, "never bound", self.never_bound.to_string());
        row(&mut t, "mark (s)", opt(self.mark_s));
        row(
            &mut t,
            "clients moved after the mark",
            self.clients_switched.to_string(),
        );
        row(&mut t, "recovery after the mark (s)", opt(self.recovery_s));
        row(&mut t, "messages/s before the mark", opt(self.load_before));
        row(&mut t, "messages/s mark..recovery", opt(self.load_after));
        row(
            &mut t,
            "busiest second after the mark",
            self.load_after_peak
                .map_or_else(|| "-".into(), |n| n.to_string()),
        );
        for (name, n) in &self.sent.0 {
            row(&mut t, &format!("sent {name}"), n.to_string());
        }
        row(&mut t, "retransmissions", self.retransmissions.to_string());
        row(&mut t, "received", self.received.to_string());
        row(&mut t, "send drops", self.send_drops.to_string());
        if self.bad_frames > 0 {
            row(&mut t, "bad frames dropped", self.bad_frames.to_string());
        }
        row(&mut t, "extra replies", self.extra_replies.to_string());
        row(&mut t, "late replies", self.late_replies.to_string());
        row(
            &mut t,
            "addresses zeroed by a Reply",
            self.addresses_zeroed.to_string(),
        );
        row(
            &mut t,
            "addresses expired",
            self.addresses_expired.to_string(),
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
        t
    }

    /// Clients in service by server against time (left) and messages sent per second
    /// (right), with the mark drawn as a vertical line; a standalone SVG document.
    pub fn svg(&self, title: &str) -> String {
        const COLORS: [&str; 6] = [
            "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
        ];
        let t_max = self.timeline.iter().map(|s| s.t_s).fold(1.0, f64::max);
        let clients = f64::from(self.clients);
        let mut s = crate::report::document(title);
        // Headroom above the curves keeps the legend clear of them.
        let left = Panel::new(90.0, t_max, clients * 1.3);
        left.frame(&mut s, "time (s)", "clients");
        let series = |f: &dyn Fn(&HoldSample) -> u64| -> Vec<(f64, f64)> {
            self.timeline.iter().map(|x| (x.t_s, f(x) as f64)).collect()
        };
        let mut legend: Vec<(String, &str)> = Vec::new();
        left.line(
            &mut s,
            &series(&|x| x.in_service),
            "#333333",
            "in service",
            true,
        );
        legend.push(("in service".into(), "#333333"));
        left.line(
            &mut s,
            &series(&|x| x.out_of_service),
            "#d62728",
            "out of service",
            false,
        );
        legend.push(("out of service".into(), "#d62728"));
        for (i, server) in self.servers.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let tail = &server.duid[server.duid.len().saturating_sub(4)..];
            let name = format!(
                "server {} (pref {}, DUID ..{tail})",
                i + 1,
                server.preference
            );
            let points = series(&|x| x.by_server.get(i).copied().unwrap_or(0));
            left.line(&mut s, &points, color, &name, false);
            legend.push((name, color));
        }
        let legend: Vec<(&str, &str)> = legend.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        left.legend(&mut s, &legend);
        let peak = self
            .timeline
            .iter()
            .map(HoldSample::messages)
            .max()
            .unwrap_or(0);
        let right = Panel::new(580.0, t_max, peak as f64 * 1.3);
        right.frame(&mut s, "time (s)", "messages sent per second");
        let mut right_legend = Vec::new();
        for (k, kind) in KINDS.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let points: Vec<(f64, f64)> = self
                .timeline
                .iter()
                .map(|x| (x.t_s, x.sent.0.get(k).map_or(0, |&(_, n)| n) as f64))
                .collect();
            right.line(&mut s, &points, color, kind.name(), false);
            right_legend.push((kind.name(), color));
        }
        right.legend(&mut s, &right_legend);
        if let Some(mark) = self.mark_s {
            for panel in [&left, &right] {
                panel.marker(&mut s, mark, "server killed");
            }
        }
        s.push_str("</svg>\n");
        s
    }
}
