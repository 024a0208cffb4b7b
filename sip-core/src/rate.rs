//! The REGISTER pacer: new REGISTER transactions leave at most at the configured rate
//! (one ceiling for all registrars), so ten thousand providers starting together never
//! become a burst, and never more at once than each registrar answers without queueing
//! or dropping (a congestion window per registrar address, as TCP has per connection:
//! the rate follows the answers).
//!
//! `REGISTER_RATE` is only the ceiling. Below it each registrar's [`Window`] decides: a
//! REGISTER
//! transaction counts as in flight from its first send until its final response or its
//! first retransmission (Timer E firing means the request or its answer was lost, so it
//! no longer occupies the path). The window grows by one per answer while answers come
//! back as fast as ever (slow start), then by one per window's worth of answers; it
//! stops growing when answers queue (the round trip exceeds the fastest seen from that
//! registrar by more than [`TARGET_QUEUE_DELAY`]) and halves on a loss. A fixed rate
//! cannot do this: 20,000 REGISTERs per second to a registrar that takes 5,000 is lost
//! and retransmitted, and retransmissions are more load still.
//!
//! The window is per registrar so that a dead or lossy one (its window at the floor)
//! slows only its own accounts, and the queue is ordered across registrars but released
//! per registrar: the next send is the first queued one whose registrar has room, so a
//! full registrar does not hold the others up behind it (no head-of-line blocking).

use std::collections::{BTreeMap, BTreeSet};
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

/// The congestion window over one registrar's REGISTER transactions in flight (AIMD
/// with a delay signal). Pure: every input carries its `now`.
#[derive(Debug)]
pub struct Window {
    cwnd: f64,
    ssthresh: f64,
    /// The registrar's fastest round trip and when it was seen, so that a far registrar
    /// is not mistaken for a congested one.
    min_rtt: Option<(Duration, Instant)>,
    /// Smoothed queueing delay: round trip minus the fastest, in seconds.
    queue_delay: f64,
    /// Losses of requests sent before this instant belong to the last decrease.
    recovery_from: Option<Instant>,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            cwnd: INITIAL_WINDOW,
            ssthresh: MAX_WINDOW,
            min_rtt: None,
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

    /// A final response came to a request sent at `sent_at`, never retransmitted (a
    /// retransmitted one gives no round trip, as in Karn's algorithm).
    pub fn on_answer(&mut self, now: Instant, sent_at: Instant) {
        let rtt = now.saturating_duration_since(sent_at);
        let (min, seen) = self.min_rtt.get_or_insert((rtt, now));
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

/// Where a queued send stands in the release order: attempts in progress (negative,
/// the latest first) ahead of new ones (positive, first come first served).
type Order = i64;

/// One registrar's share of the pacer: its queued sends, its window and how many of its
/// transactions are in flight (as the transaction layer last said).
#[derive(Debug, Default)]
struct Lane {
    queue: BTreeMap<Order, u32>,
    in_flight: usize,
    window: Window,
}

/// A lane's index in [`Pacer::lanes`] (4 bytes per queued send rather than an address).
type LaneId = u32;

impl Lane {
    /// The lane's entry in the pacer's ready set: its first send, if its window has room.
    fn ready_key(&self, id: LaneId) -> Option<(Order, LaneId)> {
        if self.in_flight >= self.window.size() {
            return None;
        }
        self.queue.first_key_value().map(|(o, _)| (*o, id))
    }
}

/// Registrations waiting to send, each queued under its registrar's address, released at
/// most at the configured pace (across all registrars) and while that registrar's
/// congestion [`Window`] has room. Urgent sends (the answer to a challenge, the retry
/// after a 423) go ahead of new ones: an attempt that has started finishes before new
/// ones begin. Every operation is O(log n): the registrars whose window has room are
/// kept ordered by their first queued send.
#[derive(Debug)]
pub struct Pacer {
    /// One per registrar address ever queued to (few: one per registrar, not per
    /// account), found by address through `lane_ids`.
    lanes: Vec<Lane>,
    lane_ids: BTreeMap<SocketAddr, LaneId>,
    /// Lanes with a queued send and room in their window, by their first send's order.
    ready: BTreeSet<(Order, LaneId)>,
    /// Where each queued slot is, so that removing one is not a scan.
    queued: BTreeMap<u32, (LaneId, Order)>,
    next_back: Order,
    next_front: Order,
    interval: Duration,
    next_at: Option<Instant>,
    burst: u32,
}

/// The lane of a registration that has no address yet (its send restarts it).
const NO_TARGET: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::UNSPECIFIED,
    0,
));

impl Pacer {
    /// A pacer releasing `rate` sends per second (at least 1).
    pub fn new(rate: u32) -> Self {
        let rate = rate.max(1);
        Self {
            lanes: Vec::new(),
            lane_ids: BTreeMap::new(),
            ready: BTreeSet::new(),
            queued: BTreeMap::new(),
            next_back: 0,
            next_front: -1,
            interval: Duration::from_secs(1) / rate,
            next_at: None,
            // Allow catching up on 50 ms of sends after a late wake-up, no more.
            burst: (rate / 20).max(1),
        }
    }

    /// The lane of `addr`, made on first use.
    fn lane_of(&mut self, addr: SocketAddr) -> LaneId {
        if let Some(id) = self.lane_ids.get(&addr) {
            return *id;
        }
        let id = LaneId::try_from(self.lanes.len()).unwrap_or(LaneId::MAX);
        if id == LaneId::MAX {
            // Four billion registrar addresses: share the last lane rather than fail.
            return id - 1;
        }
        self.lanes.push(Lane::default());
        self.lane_ids.insert(addr, id);
        id
    }

    /// Applies `change` to lane `id` and keeps the ready set in step with it.
    fn with_lane<R: Default>(&mut self, id: LaneId, change: impl FnOnce(&mut Lane) -> R) -> R {
        let Some(lane) = self.lanes.get_mut(id as usize) else {
            return R::default();
        };
        let before = lane.ready_key(id);
        let r = change(lane);
        let after = lane.ready_key(id);
        if before != after {
            if let Some(k) = before {
                self.ready.remove(&k);
            }
            if let Some(k) = after {
                self.ready.insert(k);
            }
        }
        r
    }

    fn enqueue(&mut self, slot: u32, target: Option<SocketAddr>, order: Order) {
        self.remove(slot);
        let id = self.lane_of(target.unwrap_or(NO_TARGET));
        self.queued.insert(slot, (id, order));
        self.with_lane(id, |l| l.queue.insert(order, slot));
    }

    /// Queues `slot` (to send to `target`) behind the others.
    pub fn push_back(&mut self, slot: u32, target: Option<SocketAddr>) {
        let order = self.next_back;
        self.next_back += 1;
        self.enqueue(slot, target, order);
    }

    /// Queues `slot` (to send to `target`) ahead of the others.
    pub fn push_front(&mut self, slot: u32, target: Option<SocketAddr>) {
        let order = self.next_front;
        self.next_front -= 1;
        self.enqueue(slot, target, order);
    }

    /// Removes `slot` wherever it is queued.
    pub fn remove(&mut self, slot: u32) {
        if let Some((id, order)) = self.queued.remove(&slot) {
            self.with_lane(id, |l| l.queue.remove(&order));
        }
    }

    /// How many addresses have a lane: it only grows, so a caller can tell cheaply
    /// whether [`Self::registrars`] changed.
    pub fn lane_count(&self) -> usize {
        self.lane_ids.len()
    }

    /// The registrar addresses ever queued to, in the order they were first queued
    /// (the placeholder lane of registrations without an address left out).
    pub fn registrars(&self) -> Vec<SocketAddr> {
        let mut by_id: Vec<(LaneId, SocketAddr)> = self
            .lane_ids
            .iter()
            .filter(|(addr, _)| **addr != NO_TARGET)
            .map(|(addr, id)| (*id, *addr))
            .collect();
        by_id.sort_unstable();
        by_id.into_iter().map(|(_, addr)| addr).collect()
    }

    /// The transaction layer's count of REGISTERs in flight to `addr` (sent, neither
    /// answered nor retransmitted yet).
    pub fn set_in_flight(&mut self, addr: SocketAddr, n: usize) {
        if n == 0 && !self.lane_ids.contains_key(&addr) {
            return;
        }
        let id = self.lane_of(addr);
        self.with_lane(id, |l| l.in_flight = n);
    }

    /// A final response from `remote` to a request sent at `sent_at`, never
    /// retransmitted: that registrar's window learns the round trip.
    pub fn on_answer(&mut self, now: Instant, remote: SocketAddr, sent_at: Instant) {
        let id = self.lane_of(remote);
        self.with_lane(id, |l| l.window.on_answer(now, sent_at));
    }

    /// A request sent at `sent_at` to `remote` was retransmitted for the first time:
    /// that registrar's window shrinks.
    pub fn on_loss(&mut self, now: Instant, remote: SocketAddr, sent_at: Instant) {
        let id = self.lane_of(remote);
        self.with_lane(id, |l| l.window.on_loss(now, sent_at));
    }

    /// The window of the registrar at `addr` now (the initial one if it is unknown).
    pub fn window_size(&self, addr: SocketAddr) -> usize {
        self.lane_ids
            .get(&addr)
            .and_then(|id| self.lanes.get(*id as usize))
            .map_or_else(|| Window::default().size(), |l| l.window.size())
    }

    /// Sends at most this many per second from now on (used to un-register everything
    /// within the shutdown grace).
    pub fn speed_up_to(&mut self, interval: Duration) {
        self.interval = self.interval.min(interval.max(Duration::from_micros(10)));
    }

    /// Number of queued sends.
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// The next slot allowed to send at `now`, if any: the first queued whose
    /// registrar's window has room, when the pace allows one. The caller reports the
    /// registrar's new count with [`Pacer::set_in_flight`] before asking again.
    pub fn pop_ready(&mut self, now: Instant) -> Option<u32> {
        let &(order, id) = self.ready.first()?;
        let earliest = now.checked_sub(self.interval * self.burst).unwrap_or(now);
        let at = self.next_at.map_or(now, |t| t.max(earliest));
        if at > now {
            return None;
        }
        let slot = self.with_lane(id, |l| l.queue.remove(&order))?;
        self.queued.remove(&slot);
        self.next_at = Some(at + self.interval);
        Some(slot)
    }

    /// When the next queued send may leave, if a registrar with a queued send has room
    /// (a full window opens on an answer or a retransmission, not at a time).
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        self.ready.first()?;
        Some(self.next_at.map_or(now, |t| t.max(now)))
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests anchor virtual time once
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    const A: Option<SocketAddr> = Some(SocketAddr::V4(std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::LOCALHOST,
        5060,
    )));
    const B: Option<SocketAddr> = Some(SocketAddr::V4(std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::LOCALHOST,
        5061,
    )));

    /// Everything `p` releases from `t0` on, a microsecond apart (its pace at 1,000,000/s),
    /// calling `on_release` after each release.
    fn drain(p: &mut Pacer, t0: Instant, mut on_release: impl FnMut(&mut Pacer, u32)) -> Vec<u32> {
        let mut out = Vec::new();
        for i in 0..100_000 {
            let Some(s) = p.pop_ready(t0 + Duration::from_micros(i)) else {
                break;
            };
            out.push(s);
            on_release(p, s);
        }
        out
    }

    #[test]
    fn paces_at_the_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(10);
        for s in 0..5 {
            p.push_back(s, A);
        }
        assert_eq!(p.pop_ready(t0), Some(0));
        assert_eq!(p.pop_ready(t0), None);
        assert_eq!(p.next_deadline(t0), Some(t0 + Duration::from_millis(100)));
        assert_eq!(p.pop_ready(t0 + Duration::from_millis(100)), Some(1));
        p.push_front(9, A);
        assert_eq!(p.pop_ready(t0 + Duration::from_millis(200)), Some(9));
        p.remove(3);
        assert_eq!(p.len(), 2);
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
            p.push_back(s, A);
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

    #[test]
    fn a_full_window_holds_sends_until_an_answer() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1_000_000);
        for s in 0..100 {
            p.push_back(s, A);
        }
        let full = p.window_size(addr(5060));
        assert_eq!(full, 32);
        p.set_in_flight(addr(5060), full);
        assert!(p.pop_ready(t0).is_none());
        assert_eq!(p.next_deadline(t0), None);
        p.set_in_flight(addr(5060), full - 1);
        assert_eq!(p.pop_ready(t0), Some(0));
    }

    #[test]
    fn a_full_registrar_does_not_hold_up_the_others_queued_behind_it() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1_000_000);
        // 1,000 for A queued first, then 10 for B.
        for s in 0..1000 {
            p.push_back(s, A);
        }
        for s in 1000..1010 {
            p.push_back(s, B);
        }
        p.set_in_flight(addr(5060), 32);
        let released = drain(&mut p, t0, |_, _| ());
        assert_eq!(released, (1000..1010).collect::<Vec<_>>());
        // A gets room: its sends come out in their order again.
        p.set_in_flight(addr(5060), 30);
        assert_eq!(p.pop_ready(t0 + Duration::from_millis(1)), Some(0));
        assert_eq!(p.len(), 999);
    }

    #[test]
    fn attempts_in_progress_go_first_across_registrars_and_in_order() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1_000_000);
        p.push_back(1, A);
        p.push_back(2, B);
        p.push_back(3, A);
        p.push_front(4, B);
        p.push_front(5, A);
        // Re-queuing a queued slot moves it (one entry per slot).
        p.push_back(1, B);
        assert_eq!(p.len(), 5);
        assert_eq!(drain(&mut p, t0, |_, _| ()), vec![5, 4, 2, 3, 1]);
        // Without a target: released through a lane of its own.
        p.push_back(7, None);
        assert_eq!(p.pop_ready(t0 + Duration::from_millis(1)), Some(7));
    }

    #[test]
    fn a_lossy_registrar_shrinks_only_its_own_window() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut p = Pacer::new(1_000_000);
        for i in 0..64 {
            p.on_answer(t0 + ms(i + 1), addr(5060), t0 + ms(i));
            p.on_loss(t0 + ms(600 + 600 * i), addr(5061), t0 + ms(500 + 600 * i));
        }
        assert_eq!(p.window_size(addr(5061)), 4);
        assert_eq!(p.window_size(addr(5060)), 96);
        // The lossy one full with 4 retrying, queued first; the healthy one still sends
        // a full window of its own.
        for s in 0..200 {
            p.push_back(s, B);
        }
        for s in 200..400 {
            p.push_back(s, A);
        }
        p.set_in_flight(addr(5061), 4);
        let mut in_flight = 0;
        let released = drain(&mut p, t0, |p, _| {
            in_flight += 1;
            p.set_in_flight(addr(5060), in_flight);
        });
        assert_eq!(released, (200..296).collect::<Vec<_>>());
    }

    #[test]
    fn grows_on_prompt_answers_and_halves_once_per_burst_of_losses() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = Window::default();
        // Slow start: one more per answer.
        for i in 0..32 {
            w.on_answer(t0 + ms(i + 1), t0 + ms(i));
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
            w.on_answer(t0 + ms(1301 + i), t0 + ms(1300 + i));
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
        let mut p = Pacer::new(1_000_000);
        // A near registrar (1 ms) and a far one (80 ms): both at their fastest.
        for i in 0..10 {
            p.on_answer(t0 + ms(i + 1), addr(5060), t0 + ms(i));
            p.on_answer(t0 + ms(i + 80), addr(5061), t0 + ms(i));
        }
        assert_eq!(p.window_size(addr(5060)), 42);
        assert_eq!(p.window_size(addr(5061)), 42);
        // The near one now answers after 60 ms: a queue; its window holds.
        for i in 0..50 {
            p.on_answer(t0 + ms(100 + i + 60), addr(5060), t0 + ms(100 + i));
        }
        let held = p.window_size(addr(5060));
        assert!(held < 42 + 10, "grew to {held} while answers queued");
        for i in 0..50 {
            p.on_answer(t0 + ms(200 + i + 60), addr(5060), t0 + ms(200 + i));
            // The far one, answering at its usual 80 ms, keeps growing.
            p.on_answer(t0 + ms(200 + i + 80), addr(5061), t0 + ms(200 + i));
        }
        assert_eq!(p.window_size(addr(5060)), held);
        assert_eq!(p.window_size(addr(5061)), 92);
    }

    #[test]
    fn never_more_in_flight_than_the_socket_absorbs() {
        let t0 = Instant::now();
        let mut w = Window::default();
        for i in 0..100_000u64 {
            let at = t0 + Duration::from_micros(i);
            w.on_answer(at + Duration::from_micros(50), at);
        }
        assert_eq!(w.size(), 1024);
    }
}
