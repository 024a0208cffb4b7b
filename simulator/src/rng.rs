//! Every random choice of a run comes from one seed, split into independent streams so
//! that, for example, an extra packet-loss draw does not change which faults a scenario
//! generator picks.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::time::Duration;

/// A seeded generator with the few draws the simulator needs.
#[derive(Debug, Clone)]
pub struct SimRng(ChaCha8Rng);

impl SimRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A raw 64-bit draw (used to seed other generators).
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        ((u128::from(self.0.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p`. `p <= 0` draws nothing, so a fault-free link leaves
    /// the stream untouched and adding a lossy link elsewhere does not shift it.
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        self.unit() < p
    }

    /// An index into a slice of `len` items.
    pub fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.below(len as u64)).unwrap_or(0)
    }

    /// An exponentially distributed duration with the given mean, capped at 10 means
    /// (a bounded tail keeps every packet inside the 32 s transaction window).
    pub fn exp(&mut self, mean: Duration) -> Duration {
        if mean.is_zero() {
            return Duration::ZERO;
        }
        let u = self.unit();
        let x = -(1.0 - u).ln();
        mean.mul_f64(x.min(10.0))
    }

    /// A uniform duration in `lo..=hi`, at millisecond resolution.
    pub fn duration(&mut self, lo: Duration, hi: Duration) -> Duration {
        let lo_ms = u64::try_from(lo.as_millis()).unwrap_or(u64::MAX);
        let hi_ms = u64::try_from(hi.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(self.range(lo_ms, hi_ms))
    }
}

/// The independent streams of one run, all derived from its seed.
#[derive(Debug, Clone)]
pub struct Streams {
    /// Per-packet decisions: latency, loss, duplication.
    pub net: SimRng,
    /// Randomness inside the models (nonces, backend timing).
    pub models: SimRng,
    /// Scenario generation (providers, behaviours, fault schedule).
    pub workload: SimRng,
    /// The seed handed to the core's own generator.
    pub core_seed: u64,
}

impl Streams {
    /// Splits `seed` into the streams of one run.
    pub fn split(seed: u64) -> Self {
        let mut root = SimRng::new(seed);
        Self {
            net: SimRng::new(root.next_u64()),
            models: SimRng::new(root.next_u64()),
            workload: SimRng::new(root.next_u64()),
            core_seed: root.next_u64(),
        }
    }
}
