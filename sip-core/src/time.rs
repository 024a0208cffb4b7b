//! Timers and backoff without a clock: one deadline table for the whole core.

use crate::keyed::OwnKeyMap;
use crate::transport::ConnId;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// What a timer is for. Each key has at most one deadline at a time, so re-arming a key
/// replaces its deadline: no timer can pile up (the bug of the service we replace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKey {
    /// The registration's next action: refresh, retry after a failure, or a queued send.
    Registration(u32),
    /// The next un-REGISTER of a binding the registration left at a target it moved
    /// away from (`registration::cleanup`).
    Cleanup(u32),
    /// One named RFC 3261 §17 timer of transaction `id` (a transaction arms at most two
    /// at a time: a retransmission timer and a timeout).
    Transaction(u64, TxnTimer),
    /// One timer of call `id` (the B2BUA's): see [`CallTimer`].
    Call(u64, CallTimer),
    /// One timer of a stream connection: see [`ConnTimer`].
    Conn(ConnId, ConnTimer),
    /// After a shutdown began: calls still up when `CALL_DRAIN` runs out are hung up.
    CallDrain,
    /// The deadline of a backend request.
    BackendDeadline(u64),
    /// How long calls wait for the destination lookup with this request id.
    RouteWait(u64),
    /// When the status outbox may retry the report of one provider.
    OutboxRetry(u32),
    /// When the provider list is fetched again.
    Sync,
    /// The next round of OPTIONS keep-alives to UDP registrars.
    Keepalive,
    /// When a failed `GET /api/sip/config` is tried again.
    ConfigRetry,
    /// When the global REGISTER rate limiter releases the next send.
    RateLimit,
    /// Half-way through the shutdown grace: un-REGISTERs still unanswered are given up
    /// so the final statuses can still be delivered in the other half.
    ShutdownUnregisterDeadline,
    /// The end of the shutdown grace period.
    Shutdown,
}

/// The timers of RFC 3261 §17 (and RFC 6026's L and M), named as there, plus two that
/// bound what the RFC leaves to the TU, so that every transaction ends by a timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TxnTimer {
    /// INVITE client: retransmit the INVITE (T1, doubling, no cap; unreliable only).
    A,
    /// INVITE client: no response at all within 64·T1.
    B,
    /// INVITE client and server in Proceeding: 3 minutes (RFC 3261 §16.6's Timer C,
    /// restarted by each provisional) after which the transaction gives up: the TU's
    /// ringing timeout normally ends it long before.
    C,
    /// INVITE client: Completed absorbs retransmitted finals (32 s UDP, 0 reliable).
    D,
    /// Non-INVITE client: retransmit (T1 doubling to T2; T2 in Proceeding).
    E,
    /// Non-INVITE client: no final response within 64·T1.
    F,
    /// INVITE server: retransmit the non-2xx final (T1 doubling to T2).
    G,
    /// INVITE server: no ACK for the non-2xx final within 64·T1.
    H,
    /// INVITE server: Confirmed absorbs retransmitted ACKs (T4 UDP, 0 reliable).
    I,
    /// Non-INVITE server: Completed resends the final on retransmissions (64·T1 UDP).
    J,
    /// INVITE server, RFC 6026: Accepted absorbs INVITE retransmissions (64·T1).
    L,
    /// INVITE client, RFC 6026: Accepted passes on retransmitted and forked 2xx (64·T1).
    M,
    /// Non-INVITE server in Trying/Proceeding: the TU has not answered within 64·T1,
    /// when the client has given up (its Timer F).
    Unanswered,
}

/// The timers of a call, beside its legs' transaction timers: what RFC 3261 leaves
/// to the TU (the 2xx retransmission, §13.3.1.4) and the limits of CONTRACT.md §6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallTimer {
    /// No final answer from the destination within `CALL_RING_TIMEOUT`: CANCEL it,
    /// `408` to the caller.
    Ring,
    /// An answered call reached `CALL_MAX_DURATION`: BYE both legs.
    MaxDuration,
    /// Resend the 2xx to the caller (T1 doubling to T2) until its ACK.
    Resend2xx,
    /// No ACK for the 2xx within 64·T1 (§13.3.1.4): BYE both legs.
    AckWait,
}

/// A connection's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConnTimer {
    /// The message in progress (or an accepted connection's first frame, or our
    /// connection's setup) did not complete in time.
    Deadline,
    /// Nothing arrived on an accepted connection for the idle timeout (checked
    /// lazily: the timer re-arms itself from the last arrival).
    Idle,
    /// Time for a keep-alive ping (`CRLFCRLF`) on a connection of ours (RFC 5626
    /// §4.4.1), every keep-alive interval.
    Keepalive,
    /// The pong (anything, in fact) for the last ping has not come within 10 s: the
    /// flow has failed (RFC 5626 §4.4.1).
    Pong,
}

impl ConnTimer {
    /// Every one, for a connection's removal to cancel.
    pub const ALL: [ConnTimer; 4] = [
        ConnTimer::Deadline,
        ConnTimer::Idle,
        ConnTimer::Keepalive,
        ConnTimer::Pong,
    ];
}

/// The one deadline structure of the core: ordered by `(deadline, insertion sequence)`,
/// so equal deadlines fire in the order they were set, deterministically.
#[derive(Debug, Default)]
pub struct TimerTable {
    by_deadline: BTreeSet<(Instant, u64, TimerKey)>,
    by_key: OwnKeyMap<TimerKey, (Instant, u64)>,
    seq: u64,
}

impl TimerTable {
    /// Arms `key` at `at`, replacing any deadline it had.
    pub fn set(&mut self, key: TimerKey, at: Instant) {
        self.cancel(key);
        self.seq += 1;
        self.by_deadline.insert((at, self.seq, key));
        self.by_key.insert(key, (at, self.seq));
    }

    /// Disarms `key`; no effect if it was not armed.
    pub fn cancel(&mut self, key: TimerKey) {
        if let Some((at, seq)) = self.by_key.remove(&key) {
            self.by_deadline.remove(&(at, seq, key));
        }
    }

    /// The deadline of `key`, if armed.
    pub fn get(&self, key: TimerKey) -> Option<Instant> {
        self.by_key.get(&key).map(|(at, _)| *at)
    }

    /// The earliest deadline of all.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.first().map(|(at, _, _)| *at)
    }

    /// Removes and returns the earliest key whose deadline is at or before `now`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<TimerKey> {
        let &(at, seq, key) = self.by_deadline.first()?;
        if at > now {
            return None;
        }
        self.by_deadline.remove(&(at, seq, key));
        self.by_key.remove(&key);
        Some(key)
    }

    /// How many timers are armed (bounded by the number of registrations, transactions
    /// and requests in flight: the simulator checks it).
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Disarms every timer (the core has finished: nothing may fire again).
    pub fn clear(&mut self) {
        self.by_deadline.clear();
        self.by_key.clear();
    }
}

/// Exponential backoff with jitter and a cap, as a value: it never reads a clock; the
/// caller asks it for the next delay given a uniform draw in `[0, 1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub initial: Duration,
    /// The delay never exceeds this.
    pub cap: Duration,
    /// Failures so far in this run of failures.
    pub attempts: u32,
}

impl Backoff {
    /// A backoff starting at `initial`, doubling up to `cap`.
    pub const fn new(initial: Duration, cap: Duration) -> Self {
        Self {
            initial,
            cap,
            attempts: 0,
        }
    }

    /// Records one more failure and returns the delay before the next try: "equal jitter",
    /// uniformly within `[d/2, d)` where `d = min(cap, initial * 2^attempts)`, so that
    /// many registrations failing together spread out and never retry in lockstep.
    pub fn next_delay(&mut self, unit_draw: f64) -> Duration {
        let delay = jittered(self.initial, self.cap, self.attempts, unit_draw);
        self.attempts = self.attempts.saturating_add(1);
        delay
    }

    /// Forgets past failures (after a success).
    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

/// The delay after `attempts` earlier failures (see [`Backoff::next_delay`]).
fn jittered(initial: Duration, cap: Duration, attempts: u32, unit_draw: f64) -> Duration {
    let exp = attempts.min(20);
    let base = initial
        .saturating_mul(1u32 << exp)
        .min(cap)
        .max(Duration::from_millis(1));
    let half = base / 2;
    half + half.mul_f64(unit_draw.clamp(0.0, 1.0))
}

/// The two failure runs of one registration (temporary, rejected), each backed off like
/// a [`Backoff`] but holding only its count: the delays and caps are the same for every
/// registration and stay in the config. 8 bytes instead of two 40-byte `Backoff`s, times
/// 100,000 registrations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryCounts {
    temporary: u32,
    rejected: u32,
}

impl RetryCounts {
    /// Counts one more temporary failure; the delay before the next try, as
    /// [`Backoff::next_delay`] with this `initial` and `cap`.
    pub fn next_temporary(&mut self, initial: Duration, cap: Duration, unit_draw: f64) -> Duration {
        let delay = jittered(initial, cap, self.temporary, unit_draw);
        self.temporary = self.temporary.saturating_add(1);
        delay
    }

    /// The same for a rejection, counted apart.
    pub fn next_rejected(&mut self, initial: Duration, cap: Duration, unit_draw: f64) -> Duration {
        let delay = jittered(initial, cap, self.rejected, unit_draw);
        self.rejected = self.rejected.saturating_add(1);
        delay
    }

    /// Forgets both runs (after a success).
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests anchor virtual time once
mod tests {
    use super::*;

    #[test]
    fn earliest_first_and_ties_in_insertion_order() {
        let t0 = Instant::now();
        let mut t = TimerTable::default();
        t.set(TimerKey::Registration(2), t0 + Duration::from_secs(5));
        t.set(TimerKey::Registration(1), t0 + Duration::from_secs(5));
        t.set(TimerKey::Sync, t0 + Duration::from_secs(1));
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(t.pop_expired(t0), None);
        let now = t0 + Duration::from_secs(10);
        assert_eq!(t.pop_expired(now), Some(TimerKey::Sync));
        assert_eq!(t.pop_expired(now), Some(TimerKey::Registration(2)));
        assert_eq!(t.pop_expired(now), Some(TimerKey::Registration(1)));
        assert_eq!(t.pop_expired(now), None);
        assert!(t.is_empty());
    }

    #[test]
    fn rearming_replaces_never_adds() {
        let t0 = Instant::now();
        let mut t = TimerTable::default();
        for i in 0..100 {
            t.set(TimerKey::Registration(7), t0 + Duration::from_secs(i));
        }
        assert_eq!(t.len(), 1);
        assert_eq!(
            t.get(TimerKey::Registration(7)),
            Some(t0 + Duration::from_secs(99))
        );
        t.cancel(TimerKey::Registration(7));
        assert!(t.is_empty());
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_secs(2), Duration::from_secs(60));
        let d1 = b.next_delay(0.0);
        assert_eq!(d1, Duration::from_secs(1));
        let d2 = b.next_delay(0.999);
        assert!(d2 >= Duration::from_secs(2) && d2 < Duration::from_secs(4));
        for _ in 0..40 {
            assert!(b.next_delay(0.5) <= Duration::from_secs(60));
        }
        b.reset();
        assert_eq!(b.next_delay(0.0), Duration::from_secs(1));
    }

    #[test]
    fn retry_counts_back_off_like_a_backoff_each() {
        let (initial, cap) = (Duration::from_secs(2), Duration::from_secs(60));
        let mut b = Backoff::new(initial, cap);
        let mut r = RetryCounts::default();
        for draw in [0.0, 0.3, 0.999, 0.5, 0.1, 0.7, 0.2] {
            assert_eq!(r.next_temporary(initial, cap, draw), b.next_delay(draw));
        }
        // The rejected run has its own count: it starts from the initial delay.
        assert_eq!(r.next_rejected(initial, cap, 0.0), Duration::from_secs(1));
        assert_eq!(r.next_rejected(initial, cap, 0.0), Duration::from_secs(2));
        r.reset();
        assert_eq!(r.next_temporary(initial, cap, 0.0), Duration::from_secs(1));
        assert_eq!(r.next_rejected(initial, cap, 0.0), Duration::from_secs(1));
    }
}
