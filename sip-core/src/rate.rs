//! The global REGISTER pacer: new REGISTER transactions leave at most at the configured
//! rate, so ten thousand providers starting together never become a burst.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A FIFO of registrations waiting to send, released at a fixed pace. Urgent sends (the
/// answer to a challenge, the retry after a 423) go to the front: an attempt that has
/// started finishes before new ones begin.
#[derive(Debug)]
pub struct Pacer {
    queue: VecDeque<u32>,
    interval: Duration,
    next_at: Option<Instant>,
    burst: u32,
}

impl Pacer {
    /// A pacer releasing `rate` sends per second (at least 1).
    pub fn new(rate: u32) -> Self {
        let rate = rate.max(1);
        Self {
            queue: VecDeque::new(),
            interval: Duration::from_secs(1) / rate,
            next_at: None,
            // Allow catching up on 50 ms of sends after a late wake-up, no more.
            burst: (rate / 20).max(1),
        }
    }

    /// Queues `slot` behind the others.
    pub fn push_back(&mut self, slot: u32) {
        self.queue.push_back(slot);
    }

    /// Queues `slot` ahead of the others.
    pub fn push_front(&mut self, slot: u32) {
        self.queue.push_front(slot);
    }

    /// Removes `slot` wherever it is queued.
    pub fn remove(&mut self, slot: u32) {
        self.queue.retain(|s| *s != slot);
    }

    /// Sends at most this many per second from now on (used to un-register everything
    /// within the shutdown grace).
    pub fn speed_up_to(&mut self, interval: Duration) {
        self.interval = self.interval.min(interval.max(Duration::from_micros(10)));
    }

    /// Number of queued sends.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The next slot allowed to send at `now`, if any.
    pub fn pop_ready(&mut self, now: Instant) -> Option<u32> {
        if self.queue.is_empty() {
            return None;
        }
        let earliest = now.checked_sub(self.interval * self.burst).unwrap_or(now);
        let at = self.next_at.map_or(now, |t| t.max(earliest));
        if at > now {
            return None;
        }
        let slot = self.queue.pop_front()?;
        self.next_at = Some(at + self.interval);
        Some(slot)
    }

    /// When the next queued send may leave, if anything is queued.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        if self.queue.is_empty() {
            return None;
        }
        Some(self.next_at.map_or(now, |t| t.max(now)))
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests anchor virtual time once
mod tests {
    use super::*;

    #[test]
    fn paces_at_the_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(10);
        for s in 0..5 {
            p.push_back(s);
        }
        assert_eq!(p.pop_ready(t0), Some(0));
        assert_eq!(p.pop_ready(t0), None);
        assert_eq!(p.next_deadline(t0), Some(t0 + Duration::from_millis(100)));
        assert_eq!(p.pop_ready(t0 + Duration::from_millis(100)), Some(1));
        p.push_front(9);
        assert_eq!(p.pop_ready(t0 + Duration::from_millis(200)), Some(9));
        p.remove(3);
        assert_eq!(p.pop_ready(t0 + Duration::from_millis(300)), Some(2));
        assert_eq!(p.pop_ready(t0 + Duration::from_millis(400)), Some(4));
        assert!(p.is_empty());
        assert_eq!(p.next_deadline(t0), None);
    }

    #[test]
    fn late_wakeup_catches_up_only_a_little() {
        let t0 = Instant::now();
        let mut p = Pacer::new(100);
        for s in 0..100 {
            p.push_back(s);
        }
        assert!(p.pop_ready(t0).is_some());
        let late = t0 + Duration::from_secs(10);
        let mut n = 0;
        while p.pop_ready(late).is_some() {
            n += 1;
        }
        // burst = 100/20 = 5 intervals of catch-up, plus the one due now.
        assert!(n <= 6, "released {n} at once");
    }
}
