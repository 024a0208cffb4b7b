//! Wall time without reading a clock: an anchor pair given by the driver.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use time::OffsetDateTime;

/// Maps the driver's monotonic `now` to UTC: `wall = anchor_wall + (now - anchor)`.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    anchor: Instant,
    anchor_wall: SystemTime,
}

impl WallClock {
    /// Anchors monotonic `now` to wall time `wall_now`.
    pub fn new(now: Instant, wall_now: SystemTime) -> Self {
        Self {
            anchor: now,
            anchor_wall: wall_now,
        }
    }

    /// Wall time at `now`.
    pub fn at(&self, now: Instant) -> SystemTime {
        match now.checked_duration_since(self.anchor) {
            Some(d) => self.anchor_wall + d,
            None => self.anchor_wall - self.anchor.saturating_duration_since(now),
        }
    }

    /// `now` as an RFC 3339 UTC timestamp with millisecond precision.
    pub fn rfc3339(&self, now: Instant) -> String {
        rfc3339(self.at(now))
    }
}

/// Formats a wall time as RFC 3339 UTC with milliseconds, e.g. `2026-11-24T14:43:51.120Z`
/// (always three fraction digits, so the strings sort and compare as times).
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let dt = OffsetDateTime::UNIX_EPOCH + Duration::from_secs(since.as_secs());
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        since.subsec_millis()
    )
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests anchor virtual time once
mod tests {
    use super::*;

    #[test]
    fn formats_fixed_width_utc() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_877_031_123);
        assert_eq!(rfc3339(t), "2026-11-28T14:43:51.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_877_031);
        assert_eq!(rfc3339(t), "2026-11-28T14:43:51.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_877_031_310);
        assert_eq!(rfc3339(t), "2026-11-28T14:43:51.310Z");
    }

    #[test]
    fn wall_follows_monotonic() {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1000);
        let c = WallClock::new(now, wall);
        assert_eq!(
            c.at(now + Duration::from_secs(5)),
            wall + Duration::from_secs(5)
        );
    }
}
