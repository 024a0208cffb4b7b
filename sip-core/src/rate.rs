//! The global REGISTER pacer: new REGISTER transactions leave at most at the configured
//! rate, so ten thousand providers starting together never become a burst, and never
//! more at once than the registrars answer without queueing or dropping (a congestion
//! window, as TCP has: the rate follows the answers).
//!
//! `REGISTER_RATE` is only the ceiling. Below it the [`Window`] decides: a REGISTER
//! transaction counts as in flight from its first send until its final response or its
//! first retransmission (Timer E firing means the request or its answer was lost, so it
//! no longer occupies the path). The window grows by one per answer while answers come
//! back as fast as ever (slow start), then by one per window's worth of answers; it
//! stops growing when answers queue (the round trip exceeds the fastest seen from that
//! registrar by more than [`TARGET_QUEUE_DELAY`]) and halves on a loss. A fixed rate
//! cannot do this: 20,000 REGISTERs per second to a registrar that takes 5,000 is lost
//! and retransmitted, and retransmissions are more load still.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Transactions in flight allowed before any answer came back.
const INITIAL_WINDOW: f64 = 32.0;
/// The window never shrinks below this: a lossy path still makes progress.
const MIN_WINDOW: f64 = 4.0;
/// The window never grows beyond this: at most this many answers can arrive at once,
/// which the default 4 MiB socket buffer (about 1,800 datagrams of kernel accounting)
/// absorbs even when the driver is slow to read, so trunkline's own socket never drops.
const MAX_WINDOW: f64 = 1024.0;
/// Queueing the window tolerates on top of a registrar's fastest round trip before it
/// stops growing: small against Timer E's T1 (500 ms), large against loopback jitter.
pub const TARGET_QUEUE_DELAY: Duration = Duration::from_millis(10);
/// How long a registrar's fastest round trip stands before a new sample replaces it.
const MIN_RTT_LIFETIME: Duration = Duration::from_secs(10);
/// Weight of a new round-trip sample in the smoothed queueing delay (as TCP's SRTT).
const DELAY_GAIN: f64 = 1.0 / 8.0;

/// The congestion window over REGISTER transactions in flight (AIMD with a delay
/// signal). Pure: every input carries its `now`.
#[derive(Debug)]
pub struct Window {
    cwnd: f64,
    ssthresh: f64,
    /// The fastest round trip seen per registrar address (few entries: one per
    /// registrar, not per account), so that a far registrar is not mistaken for a
    /// congested one.
    min_rtt: BTreeMap<SocketAddr, (Duration, Instant)>,
    /// Smoothed queueing delay: round trip minus its registrar's fastest, in seconds.
    queue_delay: f64,
    /// Losses of requests sent before this instant belong to the last decrease.
    recovery_from: Option<Instant>,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            cwnd: INITIAL_WINDOW,
            ssthresh: MAX_WINDOW,
            min_rtt: BTreeMap::new(),
            queue_delay: 0.0,
            recovery_from: None,
        }
    }
}

impl Window {
    /// Transactions allowed in flight now.
    pub fn size(&self) -> usize {
        // Truncation is intended: the window is between MIN_WINDOW and MAX_WINDOW.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = self.cwnd as usize;
        n
    }

    /// A final response came to a request sent at `sent_at` to `remote`, never
    /// retransmitted (a retransmitted one gives no round trip, as in Karn's algorithm).
    pub fn on_answer(&mut self, now: Instant, remote: SocketAddr, sent_at: Instant) {
        let rtt = now.saturating_duration_since(sent_at);
        let (min, seen) = self.min_rtt.entry(remote).or_insert((rtt, now));
        // An old minimum is forgotten, so that a path that became slower for good is
        // not taken for a queue forever (BBR keeps its minimum for 10 s likewise).
        if rtt <= *min || now.saturating_duration_since(*seen) > MIN_RTT_LIFETIME {
            (*min, *seen) = (rtt, now);
        }
        let excess = rtt.saturating_sub(*min).as_secs_f64();
        self.queue_delay += DELAY_GAIN * (excess - self.queue_delay);
        if self.queue_delay > TARGET_QUEUE_DELAY.as_secs_f64() {
            // Answers queue: hold the window and leave slow start.
            self.ssthresh = self.ssthresh.min(self.cwnd);
            return;
        }
        self.cwnd += if self.cwnd < self.ssthresh {
            1.0
        } else {
            1.0 / self.cwnd
        };
        self.cwnd = self.cwnd.min(MAX_WINDOW);
    }

    /// A request sent at `sent_at` was retransmitted for the first time (Timer E):
    /// the window halves, once per burst of losses (those of requests sent before the
    /// last decrease do not count again).
    pub fn on_loss(&mut self, now: Instant, sent_at: Instant) {
        if self.recovery_from.is_some_and(|r| sent_at < r) {
            return;
        }
        self.cwnd = (self.cwnd / 2.0).max(MIN_WINDOW);
        self.ssthresh = self.cwnd;
        self.recovery_from = Some(now);
    }
}

/// A FIFO of registrations waiting to send, released at most at the configured pace and
/// while the congestion [`Window`] has room. Urgent sends (the answer to a challenge, the
/// retry after a 423) go to the front: an attempt that has started finishes before new
/// ones begin.
#[derive(Debug)]
pub struct Pacer {
    queue: VecDeque<u32>,
    interval: Duration,
    next_at: Option<Instant>,
    burst: u32,
    /// How many REGISTER transactions may be in flight; fed by the transaction layer.
    pub window: Window,
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
            window: Window::default(),
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

    /// The next slot allowed to send at `now` with `in_flight` transactions unanswered
    /// (and not yet retransmitted), if any.
    pub fn pop_ready(&mut self, now: Instant, in_flight: usize) -> Option<u32> {
        if self.queue.is_empty() || in_flight >= self.window.size() {
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

    /// When the next queued send may leave, if anything is queued and the window has
    /// room (a full window opens on an answer or a retransmission, not at a time).
    pub fn next_deadline(&self, now: Instant, in_flight: usize) -> Option<Instant> {
        if self.queue.is_empty() || in_flight >= self.window.size() {
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
        assert_eq!(p.pop_ready(t0, 0), Some(0));
        assert_eq!(p.pop_ready(t0, 0), None);
        assert_eq!(
            p.next_deadline(t0, 0),
            Some(t0 + Duration::from_millis(100))
        );
        assert_eq!(p.pop_ready(t0 + Duration::from_millis(100), 0), Some(1));
        p.push_front(9);
        assert_eq!(p.pop_ready(t0 + Duration::from_millis(200), 0), Some(9));
        p.remove(3);
        assert_eq!(p.pop_ready(t0 + Duration::from_millis(300), 0), Some(2));
        assert_eq!(p.pop_ready(t0 + Duration::from_millis(400), 0), Some(4));
        assert!(p.is_empty());
        assert_eq!(p.next_deadline(t0, 0), None);
    }

    #[test]
    fn late_wakeup_catches_up_only_a_little() {
        let t0 = Instant::now();
        let mut p = Pacer::new(100);
        for s in 0..100 {
            p.push_back(s);
        }
        assert!(p.pop_ready(t0, 0).is_some());
        let late = t0 + Duration::from_secs(10);
        let mut n = 0;
        while p.pop_ready(late, 0).is_some() {
            n += 1;
        }
        // burst = 100/20 = 5 intervals of catch-up, plus the one due now.
        assert!(n <= 6, "released {n} at once");
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_full_window_holds_sends_until_an_answer() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1_000_000);
        for s in 0..100 {
            p.push_back(s);
        }
        let full = p.window.size();
        assert_eq!(full, 32);
        assert!(p.pop_ready(t0, full).is_none());
        assert_eq!(p.next_deadline(t0, full), None);
        assert!(p.pop_ready(t0, full - 1).is_some());
    }

    #[test]
    fn grows_on_prompt_answers_and_halves_once_per_burst_of_losses() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = Window::default();
        // Slow start: one more per answer.
        for i in 0..32 {
            w.on_answer(t0 + ms(i + 1), addr(5060), t0 + ms(i));
        }
        assert_eq!(w.size(), 64);
        // Two losses of requests sent before the decrease: one halving.
        w.on_loss(t0 + ms(600), t0 + ms(100));
        w.on_loss(t0 + ms(601), t0 + ms(101));
        assert_eq!(w.size(), 32);
        // A request sent after the decrease, lost too: halves again.
        w.on_loss(t0 + ms(1200), t0 + ms(700));
        assert_eq!(w.size(), 16);
        // Out of slow start: a window's worth of answers adds one.
        for i in 0..18 {
            w.on_answer(t0 + ms(1301 + i), addr(5060), t0 + ms(1300 + i));
        }
        assert_eq!(w.size(), 17);
        // Never below the floor.
        for i in 0..20 {
            w.on_loss(t0 + ms(2000 + 600 * i), t0 + ms(1500 + 600 * i));
        }
        assert_eq!(w.size(), 4);
    }

    #[test]
    fn stops_growing_when_answers_queue_but_not_for_a_far_registrar() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = Window::default();
        // A near registrar (1 ms) and a far one (80 ms): both at their fastest.
        for i in 0..10 {
            w.on_answer(t0 + ms(i + 1), addr(5060), t0 + ms(i));
            w.on_answer(t0 + ms(i + 80), addr(5061), t0 + ms(i));
        }
        assert_eq!(w.size(), 52);
        // The near one now answers after 60 ms: a queue; the window holds.
        for i in 0..50 {
            w.on_answer(t0 + ms(100 + i + 60), addr(5060), t0 + ms(100 + i));
        }
        let held = w.size();
        assert!(held < 52 + 10, "grew to {held} while answers queued");
        for i in 0..50 {
            w.on_answer(t0 + ms(200 + i + 60), addr(5060), t0 + ms(200 + i));
        }
        assert_eq!(w.size(), held);
    }

    #[test]
    fn never_more_in_flight_than_the_socket_absorbs() {
        let t0 = Instant::now();
        let mut w = Window::default();
        for i in 0..100_000u64 {
            let at = t0 + Duration::from_micros(i);
            w.on_answer(at + Duration::from_micros(50), addr(5060), at);
        }
        assert_eq!(w.size(), 1024);
    }
}
