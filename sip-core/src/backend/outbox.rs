//! The status outbox: per provider, the latest status wins, one report in flight at a
//! time, retried with backoff until delivered or superseded. Nothing is lost through a
//! backend outage, and an older status never overwrites a newer one.

use crate::io::{RegisterStatus, StatusReport};
use crate::time::Backoff;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A deterministic 64-bit fingerprint of a report (FNV-1a over its fields): equal
/// reports have equal fingerprints, and a collision between two successive statuses of
/// one provider is a 2^-64 event.
fn fingerprint(r: &StatusReport) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    eat(r.register_status.as_str().as_bytes());
    eat(r
        .register_error
        .as_deref()
        .unwrap_or("\u{0}null")
        .as_bytes());
    eat(r
        .last_register_at
        .as_deref()
        .unwrap_or("\u{0}null")
        .as_bytes());
    h
}

/// What the outbox asks the controller to do next for one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxStep {
    /// Send this report now.
    Send(StatusReport),
    /// Try again at this instant.
    RetryAt(Instant),
    /// Nothing to do.
    Idle,
}

#[derive(Debug)]
struct Entry {
    /// Shared with the key of `Outbox::by_id`: one allocation per provider, not two.
    provider_id: Arc<str>,
    /// The newest status the controller wants the backend to hold.
    desired: Option<StatusReport>,
    /// A fingerprint of the last status the backend acknowledged (a fingerprint, not a
    /// copy: ten thousand providers' reports are held once, in `desired`).
    delivered: Option<u64>,
    /// A fingerprint of what is on the wire now.
    in_flight: Option<u64>,
    retry_at: Option<Instant>,
    /// Waiting for a free request slot (the controller limits reports in flight).
    deferred: bool,
    backoff: Backoff,
}

/// Per-provider report queues, addressed by a small index (for timer keys).
#[derive(Debug)]
pub struct Outbox {
    entries: Vec<Option<Entry>>,
    by_id: BTreeMap<Arc<str>, u32>,
    free: Vec<u32>,
    initial: Duration,
    cap: Duration,
}

impl Outbox {
    /// An outbox retrying from `initial` up to `cap`.
    pub fn new(initial: Duration, cap: Duration) -> Self {
        Self {
            entries: Vec::new(),
            by_id: BTreeMap::new(),
            free: Vec::new(),
            initial,
            cap,
        }
    }

    fn entry_mut(&mut self, idx: u32) -> Option<&mut Entry> {
        self.entries.get_mut(idx as usize).and_then(Option::as_mut)
    }

    /// The provider id of an entry.
    pub fn provider_id(&self, idx: u32) -> Option<&str> {
        self.entries
            .get(idx as usize)
            .and_then(Option::as_ref)
            .map(|e| &*e.provider_id)
    }

    /// Records the newest status of `provider_id`; returns its index and what to do now.
    pub fn push(&mut self, provider_id: &str, report: StatusReport) -> (u32, OutboxStep) {
        let idx = match self.by_id.get(provider_id) {
            Some(&i) => i,
            None => {
                let id: Arc<str> = Arc::from(provider_id);
                let entry = Entry {
                    provider_id: Arc::clone(&id),
                    desired: None,
                    delivered: None,
                    in_flight: None,
                    retry_at: None,
                    deferred: false,
                    backoff: Backoff::new(self.initial, self.cap),
                };
                let i = match self.free.pop() {
                    Some(i) => {
                        if let Some(slot) = self.entries.get_mut(i as usize) {
                            *slot = Some(entry);
                        }
                        i
                    }
                    None => {
                        self.entries.push(Some(entry));
                        u32::try_from(self.entries.len() - 1).unwrap_or(u32::MAX)
                    }
                };
                self.by_id.insert(id, i);
                i
            }
        };
        let step = match self.entry_mut(idx) {
            Some(e) => {
                e.desired = Some(report);
                Self::next_step(e)
            }
            None => OutboxStep::Idle,
        };
        (idx, step)
    }

    fn next_step(e: &mut Entry) -> OutboxStep {
        if e.in_flight.is_some() || e.deferred {
            return OutboxStep::Idle;
        }
        if let Some(at) = e.retry_at {
            return OutboxStep::RetryAt(at);
        }
        match &e.desired {
            Some(d) if e.delivered != Some(fingerprint(d)) => {
                e.in_flight = Some(fingerprint(d));
                OutboxStep::Send(d.clone())
            }
            _ => OutboxStep::Idle,
        }
    }

    /// The in-flight report was stored.
    pub fn delivered(&mut self, idx: u32) -> OutboxStep {
        let Some(e) = self.entry_mut(idx) else {
            return OutboxStep::Idle;
        };
        e.delivered = e.in_flight.take();
        e.backoff.reset();
        Self::next_step(e)
    }

    /// The in-flight report failed; returns the retry delay (from `unit_draw` jitter).
    pub fn failed(&mut self, idx: u32, now: Instant, unit_draw: f64) -> Option<Duration> {
        let e = self.entry_mut(idx)?;
        e.in_flight = None;
        // The backend may have stored it anyway (a timeout after the write): what it
        // holds is unknown now, so the next status is sent even if it equals the last
        // acknowledged one (found by the simulator).
        e.delivered = None;
        let delay = e.backoff.next_delay(unit_draw);
        e.retry_at = Some(now + delay);
        Some(delay)
    }

    /// Like [`Outbox::failed`] but with a fixed minimum delay (API key rejected).
    pub fn failed_slowly(
        &mut self,
        idx: u32,
        now: Instant,
        min_delay: Duration,
        unit_draw: f64,
    ) -> Option<Duration> {
        let e = self.entry_mut(idx)?;
        e.in_flight = None;
        e.delivered = None;
        let delay = e.backoff.next_delay(unit_draw).max(min_delay);
        e.retry_at = Some(now + delay);
        Some(delay)
    }

    /// The report chosen by the last [`OutboxStep::Send`] cannot go now: keep the entry
    /// waiting until [`Outbox::resume`].
    pub fn defer(&mut self, idx: u32) {
        if let Some(e) = self.entry_mut(idx) {
            e.in_flight = None;
            e.deferred = true;
        }
    }

    /// A request slot is free for a deferred entry: what to send (the newest status).
    pub fn resume(&mut self, idx: u32) -> OutboxStep {
        let Some(e) = self.entry_mut(idx) else {
            return OutboxStep::Idle;
        };
        e.deferred = false;
        Self::next_step(e)
    }

    /// Entries waiting for a retry: the backend is back, so they need not wait out their
    /// backoff. Returns their indexes (their retry timers are obsolete).
    pub fn take_waiting_retries(&mut self) -> Vec<u32> {
        let mut out = Vec::new();
        for (i, slot) in self.entries.iter_mut().enumerate() {
            if let Some(e) = slot.as_mut().filter(|e| e.retry_at.is_some()) {
                e.retry_at = None;
                out.push(u32::try_from(i).unwrap_or(u32::MAX));
            }
        }
        out
    }

    /// The retry time of an entry came.
    pub fn retry_due(&mut self, idx: u32) -> OutboxStep {
        let Some(e) = self.entry_mut(idx) else {
            return OutboxStep::Idle;
        };
        e.retry_at = None;
        Self::next_step(e)
    }

    /// Forgets a provider (the backend no longer has it).
    pub fn forget(&mut self, idx: u32) {
        if let Some(slot) = self.entries.get_mut(idx as usize) {
            if let Some(e) = slot.take() {
                self.by_id.remove(&e.provider_id);
                self.free.push(idx);
            }
        }
    }

    /// Forgets a provider by id; returns its index if it had one.
    pub fn forget_id(&mut self, provider_id: &str) -> Option<u32> {
        let idx = *self.by_id.get(provider_id)?;
        self.forget(idx);
        Some(idx)
    }

    /// Whether every provider's latest status is delivered and nothing is in flight.
    pub fn is_settled(&self) -> bool {
        self.entries.iter().flatten().all(|e| {
            e.in_flight.is_none()
                && e.desired
                    .as_ref()
                    .is_none_or(|d| e.delivered == Some(fingerprint(d)))
        })
    }

    /// Each provider whose latest status is not delivered, with that status, by id.
    pub fn undelivered_reports(&self) -> Vec<(String, RegisterStatus)> {
        let mut lost: Vec<(String, RegisterStatus)> = self
            .entries
            .iter()
            .flatten()
            .filter_map(|e| {
                let d = e.desired.as_ref()?;
                (e.delivered != Some(fingerprint(d)))
                    .then(|| (e.provider_id.to_string(), d.register_status))
            })
            .collect();
        lost.sort_by(|a, b| a.0.cmp(&b.0));
        lost
    }

    /// Reports not yet delivered (for metrics and the shutdown log).
    pub fn undelivered(&self) -> usize {
        self.entries
            .iter()
            .flatten()
            .filter(|e| {
                e.desired
                    .as_ref()
                    .is_some_and(|d| e.delivered != Some(fingerprint(d)))
            })
            .count()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used)] // tests anchor virtual time once
mod tests {
    use super::*;

    fn rep(s: RegisterStatus, at: Option<&str>) -> StatusReport {
        StatusReport {
            register_status: s,
            register_error: None,
            last_register_at: at.map(str::to_owned),
        }
    }

    #[test]
    fn latest_wins_one_in_flight() {
        let now = Instant::now();
        let mut o = Outbox::new(Duration::from_secs(1), Duration::from_secs(60));
        let (i, step) = o.push("p1", rep(RegisterStatus::Pending, None));
        assert_eq!(step, OutboxStep::Send(rep(RegisterStatus::Pending, None)));
        // Two newer statuses while the first is in flight: only the newest goes next.
        assert_eq!(
            o.push("p1", rep(RegisterStatus::Failed, None)).1,
            OutboxStep::Idle
        );
        let newest = rep(RegisterStatus::Registered, Some("t1"));
        assert_eq!(o.push("p1", newest.clone()).1, OutboxStep::Idle);
        assert_eq!(o.delivered(i), OutboxStep::Send(newest.clone()));
        assert!(!o.is_settled());
        assert_eq!(o.delivered(i), OutboxStep::Idle);
        assert!(o.is_settled());
        // Unchanged status: no new report.
        assert_eq!(o.push("p1", newest).1, OutboxStep::Idle);
        let _ = now;
    }

    #[test]
    fn failure_retries_the_newest_after_backoff() {
        let now = Instant::now();
        let mut o = Outbox::new(Duration::from_secs(1), Duration::from_secs(60));
        let (i, _) = o.push("p1", rep(RegisterStatus::Pending, None));
        let d = o.failed(i, now, 0.0).unwrap();
        assert_eq!(d, Duration::from_millis(500));
        let newer = rep(RegisterStatus::Registered, Some("t"));
        assert_eq!(o.push("p1", newer.clone()).1, OutboxStep::RetryAt(now + d));
        assert_eq!(o.retry_due(i), OutboxStep::Send(newer));
        assert_eq!(o.undelivered(), 1);
    }
}
