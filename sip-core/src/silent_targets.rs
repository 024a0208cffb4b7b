//! Registrar addresses that stopped answering, shared by every registration.
//!
//! When one registration's REGISTER to an address times out (Timer F) or its
//! connection fails and it moves to the next RFC 3263 target, the others registered
//! there learn it here: their next REGISTER moves on at once instead of each waiting
//! 32 s of its own for the same silence. Without this, 1,000 registrations behind a
//! registrar that went silent trickled over at the pace its congestion window let
//! REGISTERs towards it (8 a second: 100 s for all, against 33 s with it).
//!
//! Registrations with a REGISTER in flight to an address when it is marked stop
//! waiting for it and move on too (`Registration::on_target_silent`).
//!
//! An address is marked for [`SILENT_FOR`] from its last failure, and unmarked as soon
//! as anything of ours gets an answer from it. A mark only makes a registration that
//! has another target skip this one; a registration with no other target still sends
//! (the mark is advice, not a verdict).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a failure marks an address: 64·T1 with the default T1, a transaction's
/// whole span. Long enough for every registration's next attempt in a failover to see
/// it, short enough that a new round tries the address again soon after.
pub const SILENT_FOR: Duration = Duration::from_secs(32);

/// The marked addresses and when each mark ends.
#[derive(Debug, Default)]
pub struct SilentTargets {
    until: BTreeMap<SocketAddr, Instant>,
    /// Addresses marked since [`SilentTargets::take_fresh`] last ran.
    fresh: Vec<SocketAddr>,
}

impl SilentTargets {
    /// `target` failed to answer at `now`.
    pub fn failed(&mut self, target: SocketAddr, now: Instant) {
        let was = self.is_silent(target, now);
        self.until.insert(target, now + SILENT_FOR);
        if !was {
            self.fresh.push(target);
        }
    }

    /// The addresses newly marked since the last call: the registrations with a
    /// REGISTER in flight there move on now rather than wait for their own Timer F.
    pub fn take_fresh(&mut self) -> Vec<SocketAddr> {
        std::mem::take(&mut self.fresh)
    }

    /// `target` answered.
    pub fn answered(&mut self, target: SocketAddr) {
        if !self.until.is_empty() {
            self.until.remove(&target);
        }
    }

    /// Whether `target` is marked at `now` (expired marks are dropped as they are met).
    pub fn is_silent(&mut self, target: SocketAddr, now: Instant) -> bool {
        match self.until.get(&target) {
            Some(until) if *until > now => true,
            Some(_) => {
                self.until.remove(&target);
                false
            }
            None => false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::disallowed_methods)] // tests anchor virtual time once
mod tests {
    use super::*;

    #[test]
    fn a_mark_lasts_until_an_answer_or_its_time() {
        let t0 = Instant::now();
        let a: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let mut s = SilentTargets::default();
        assert!(!s.is_silent(a, t0));
        s.failed(a, t0);
        assert!(s.is_silent(a, t0 + SILENT_FOR / 2));
        assert!(!s.is_silent(a, t0 + SILENT_FOR));
        s.failed(a, t0);
        s.answered(a);
        assert!(!s.is_silent(a, t0));
    }
}
