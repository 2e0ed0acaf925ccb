//! The systemd service protocol (`sd_notify(3)`): readiness, status lines, the watchdog and
//! stopping, for a unit with `Type=notify` and `WatchdogSec=`.
//!
//! Everything here is a no-op when the server is not started by a service manager
//! (`NOTIFY_SOCKET` unset), so `xdhcp6d run` behaves the same from a shell. A message that
//! cannot be sent is logged once and never stops the server: serving clients matters more than
//! telling systemd about it.
//!
//! The watchdog proves more than "the main thread runs": [`Notifier::tick`] pings only while
//! every datapath worker, the timer and the journal writer are alive. If one has died the
//! pings stop, systemd declares the service hung after `WatchdogSec=` and restarts it
//! (`Restart=on-failure`), which restarts the dead thread with everything else.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// The service manager's end of the protocol, as seen by `xdhcp6d run`.
#[derive(Debug)]
pub struct Notifier {
    /// Whether a service manager listens (`NOTIFY_SOCKET` set).
    enabled: bool,
    /// How often to ping: half of `WATCHDOG_USEC`, as `sd_watchdog_enabled(3)` advises;
    /// `None` when the unit has no watchdog.
    ping_every: Option<Duration>,
    /// When the last `WATCHDOG=1` left (`None`: none yet).
    last_ping: Option<Instant>,
    /// Whether pings were withheld because a thread died (logged once).
    withheld: bool,
    /// Whether a send already failed (logged once).
    send_failed: bool,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the environment.
    pub fn from_env() -> Self {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some_and(|path| !path.is_empty());
        let ping_every = sd_notify::watchdog_enabled()
            .filter(|interval| !interval.is_zero())
            .map(|interval| interval / 2);
        if enabled {
            tracing::debug!(watchdog_ping = ?ping_every, "service manager notification enabled");
        }
        Self {
            enabled,
            ping_every,
            last_ping: None,
            withheld: false,
            send_failed: false,
        }
    }

    /// Whether systemd expects watchdog pings, and how often they are sent.
    pub fn watchdog(&self) -> Option<Duration> {
        self.ping_every
    }

    /// `READY=1` with a status line: the datapath answers clients.
    pub fn ready(&mut self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// A `STATUS=` line, shown by `systemctl status`.
    pub fn status(&mut self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    /// `RELOADING=1` with the monotonic time systemd asks for: a configuration reload
    /// starts; [`Notifier::ready`] ends it.
    pub fn reloading(&mut self, status: &str) {
        match sd_notify::NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now, NotifyState::Status(status)]),
            Err(error) => tracing::warn!(%error, "cannot read the monotonic clock for RELOADING=1"),
        }
    }

    /// `STOPPING=1`: the server is shutting down.
    pub fn stopping(&mut self, status: &str) {
        self.send(&[NotifyState::Stopping, NotifyState::Status(status)]);
    }

    /// Called from the main loop: sends `WATCHDOG=1` when half the watchdog interval has
    /// passed since the last one, but only while `alive` (every worker thread still runs).
    pub fn tick(&mut self, now: Instant, alive: bool) {
        let Some(every) = self.ping_every else {
            return;
        };
        if !alive {
            if !self.withheld {
                self.withheld = true;
                tracing::error!(
                    "a datapath worker, the timer or the journal writer has stopped; \
                     withholding the watchdog ping so that systemd restarts the service"
                );
                self.send(&[NotifyState::Status(
                    "a worker thread has stopped; waiting for the watchdog to restart the service",
                )]);
            }
            return;
        }
        if self
            .last_ping
            .is_none_or(|last| now.duration_since(last) >= every)
        {
            self.last_ping = Some(now);
            self.send(&[NotifyState::Watchdog]);
        }
    }

    fn send(&mut self, states: &[NotifyState<'_>]) {
        if !self.enabled {
            return;
        }
        if let Err(error) = sd_notify::notify(states)
            && !self.send_failed
        {
            self.send_failed = true;
            let socket = std::env::var_os("NOTIFY_SOCKET").unwrap_or_default();
            tracing::warn!(
                %error,
                socket = %socket.to_string_lossy(),
                "cannot notify the service manager (logged once)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notifier(ping_every: Option<Duration>) -> Notifier {
        Notifier {
            enabled: false,
            ping_every,
            last_ping: None,
            withheld: false,
            send_failed: false,
        }
    }

    #[test]
    fn pings_at_the_interval_and_stops_when_a_worker_dies() {
        let mut notifier = notifier(Some(Duration::from_secs(5)));
        let start = Instant::now();
        notifier.tick(start, true);
        assert_eq!(notifier.last_ping, Some(start));
        notifier.tick(start + Duration::from_secs(4), true);
        assert_eq!(
            notifier.last_ping,
            Some(start),
            "pinged before the interval"
        );
        let later = start + Duration::from_secs(5);
        notifier.tick(later, true);
        assert_eq!(notifier.last_ping, Some(later));
        notifier.tick(start + Duration::from_secs(20), false);
        assert_eq!(notifier.last_ping, Some(later), "pinged with a dead worker");
        assert!(notifier.withheld);
    }

    #[test]
    fn no_watchdog_no_pings() {
        let mut notifier = notifier(None);
        notifier.tick(Instant::now(), true);
        assert_eq!(notifier.last_ping, None);
    }
}
