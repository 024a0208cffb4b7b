//! Virtual time: one real `Instant` taken at setup, then only `Duration`s added.
//!
//! `Instant` has no public constructor, so the simulator needs one real reading as the
//! origin; after that, time moves only when the event loop says so. Nothing printed ever
//! shows an absolute `Instant` — traces use the offset from the origin.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Wall time at the origin of every run: fixed, so `lastRegisterAt` values (and so the
/// PATCH bodies and traces) are the same on every machine and every day.
pub const WALL_ORIGIN_SECS: u64 = 1_790_000_000;

/// The simulator's clock: monotonic `now` plus the wall time it maps to.
#[derive(Debug, Clone, Copy)]
pub struct VirtualClock {
    origin: Instant,
    now: Instant,
}

impl VirtualClock {
    /// A clock at offset zero. This is the one place the simulator reads the real clock.
    #[allow(clippy::disallowed_methods)]
    pub fn new() -> Self {
        let origin = Instant::now();
        Self {
            origin,
            now: origin,
        }
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the origin.
    pub fn elapsed(&self) -> Duration {
        self.now - self.origin
    }

    /// The instant `offset` after the origin.
    pub fn at(&self, offset: Duration) -> Instant {
        self.origin + offset
    }

    /// The offset of `t` from the origin (zero for instants before it).
    pub fn offset_of(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.origin)
    }

    /// Moves time forward to `t`; never backwards (an earlier `t` is ignored), so an
    /// event scheduled "in the past" runs now instead of rewinding the world.
    pub fn advance_to(&mut self, t: Instant) {
        if t > self.now {
            self.now = t;
        }
    }

    /// Wall time at the origin (see [`WALL_ORIGIN_SECS`]).
    pub fn wall_origin(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(WALL_ORIGIN_SECS)
    }
}

impl Default for VirtualClock {
    fn default() -> Self {
        Self::new()
    }
}
