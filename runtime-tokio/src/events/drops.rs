//! Dropped datagrams at a bounded rate: under a flood every drop used to make a debug
//! line (790 KB/s). The first few of a burst are logged with their reason; after that
//! they are counted, and at most one summary line per [`SUMMARY_INTERVAL`] says how many
//! and the last one's source and reason.
//!
//! How often to log is a presentation decision of the driver, so the clock is read
//! here, not in the core; every method takes the instant so tests need no sleeps. A
//! summary is written by the next event recorded after its interval (the logger has no
//! timer of its own), and at shutdown.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Drops logged one by one, with their reason, at the start of a burst.
pub(super) const LOGGED_SINGLY: u32 = 5;

/// At most one summary line per this interval while drops go on.
pub(super) const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

/// The drop counter of one logger.
#[derive(Debug, Default)]
pub(super) struct DropLog {
    /// The start of the current interval; `None` when no drop is being counted.
    since: Option<Instant>,
    /// Drops logged singly since the burst began.
    singly: u32,
    /// Drops counted and not yet summarised.
    counted: u64,
    last_from: Option<SocketAddr>,
    /// Reused, so that counting a drop allocates nothing.
    last_reason: String,
}

impl DropLog {
    /// One dropped datagram from `remote` at `now`.
    pub(super) fn dropped(&mut self, now: Instant, remote: SocketAddr, reason: &str) {
        self.tick(now);
        if self.since.is_none() {
            self.since = Some(now);
        }
        if self.singly < LOGGED_SINGLY {
            self.singly += 1;
            if self.singly == LOGGED_SINGLY {
                tracing::debug!(
                    remote = %remote, reason = %reason,
                    "dropped an unusable SIP message; further drops are counted and summarised every {} s",
                    SUMMARY_INTERVAL.as_secs()
                );
            } else {
                tracing::debug!(remote = %remote, reason = %reason, "dropped an unusable SIP message");
            }
            return;
        }
        self.counted += 1;
        self.last_from = Some(remote);
        self.last_reason.clear();
        self.last_reason.push_str(reason);
    }

    /// Writes the summary once its interval is over; a quiet interval ends the burst,
    /// so the next drop is logged with its reason again.
    pub(super) fn tick(&mut self, now: Instant) {
        let Some(since) = self.since else { return };
        if now.saturating_duration_since(since) >= SUMMARY_INTERVAL {
            self.flush(now);
        }
    }

    /// Writes what is counted now, whatever the interval (at shutdown).
    pub(super) fn flush(&mut self, now: Instant) {
        let Some(since) = self.since else { return };
        if self.counted == 0 {
            *self = Self {
                last_reason: std::mem::take(&mut self.last_reason),
                ..Self::default()
            };
            return;
        }
        let secs = now.saturating_duration_since(since).as_secs();
        let remote = self.last_from.map_or_else(String::new, |r| r.to_string());
        tracing::debug!(
            dropped = self.counted, seconds = secs, remote = %remote, reason = %self.last_reason,
            "dropped {} datagrams in the last {secs} s; last from {remote}: {}",
            self.counted, self.last_reason
        );
        self.counted = 0;
        self.since = Some(now);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::config::LogLevel;
    use crate::logging::tests::capture;

    fn from(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_flood_logs_the_first_drops_then_one_summary_per_interval() {
        let t0 = Instant::now();
        let lines = capture(LogLevel::Debug, || {
            let mut log = DropLog::default();
            // 10,000 drops over 25 s: the first few singly, then two summaries.
            for i in 0..10_000u32 {
                let at = t0 + Duration::from_micros(u64::from(i) * 2_500);
                log.dropped(at, from(5000 + (i % 7) as u16), &format!("garbage {i}"));
            }
            log.flush(t0 + Duration::from_secs(25));
        });
        let n = LOGGED_SINGLY as usize;
        assert_eq!(lines.len(), n + 3, "{lines:#?}");
        for (i, l) in lines[..n].iter().enumerate() {
            assert_eq!(l["reason"], format!("garbage {i}"), "{l}");
        }
        // Summaries at 10 s and 20 s, then the rest at shutdown; together every drop.
        let summaries = &lines[n..];
        let total: u64 = summaries
            .iter()
            .map(|l| l["dropped"].as_u64().unwrap())
            .sum();
        assert_eq!(total, 10_000 - u64::from(LOGGED_SINGLY));
        assert_eq!(summaries[0]["seconds"], 10);
        let last = &summaries[2];
        assert_eq!(last["reason"], "garbage 9999");
        assert_eq!(last["remote"], from(5000 + (9999 % 7) as u16).to_string());
        let message = last["msg"].as_str().unwrap();
        assert!(
            message.starts_with(&format!(
                "dropped {} datagrams in the last",
                last["dropped"]
            )) && message.contains(": garbage 9999"),
            "{message}"
        );
    }

    #[test]
    fn a_quiet_interval_ends_the_burst() {
        let t0 = Instant::now();
        let lines = capture(LogLevel::Debug, || {
            let mut log = DropLog::default();
            for i in 0..LOGGED_SINGLY + 2 {
                log.dropped(t0, from(5060), &format!("first burst {i}"));
            }
            // The summary of the two counted, then an interval with no drop at all.
            log.tick(t0 + SUMMARY_INTERVAL);
            log.tick(t0 + SUMMARY_INTERVAL * 2);
            log.dropped(t0 + SUMMARY_INTERVAL * 3, from(5060), "second burst");
        });
        let n = LOGGED_SINGLY as usize;
        assert_eq!(lines.len(), n + 2, "{lines:#?}");
        assert_eq!(lines[n]["dropped"], 2);
        assert_eq!(lines[n + 1]["reason"], "second burst");
        assert!(lines[n + 1].get("dropped").is_none());
    }

    #[test]
    fn nothing_is_written_without_drops() {
        let lines = capture(LogLevel::Debug, || {
            let mut log = DropLog::default();
            log.tick(Instant::now() + SUMMARY_INTERVAL * 5);
            log.flush(Instant::now());
        });
        assert!(lines.is_empty(), "{lines:#?}");
    }
}
