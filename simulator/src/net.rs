//! The modelled network: one link per peer (each registrar, the backend), each with its
//! own latency, loss, duplication and partition state, changeable while a run goes on.
//!
//! Reordering is not a separate knob: it emerges from the exponential latency tail, as
//! in TigerBeetle's packet simulator — two packets sent 1 ms apart with a 20 ms mean
//! delay often arrive swapped.

use crate::rng::SimRng;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How one link treats packets (both directions alike).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkConfig {
    /// Every packet takes at least this long.
    pub latency_min: Duration,
    /// Mean of the exponential extra delay on top of `latency_min` (0: fixed latency,
    /// no reordering).
    pub latency_jitter: Duration,
    /// Probability that a packet is lost.
    pub loss: f64,
    /// Probability that a delivered packet arrives twice (with its own delay).
    pub duplicate: f64,
}

impl LinkConfig {
    /// A fixed delay, nothing lost: for readable snapshot traces.
    pub fn fixed(latency: Duration) -> Self {
        Self {
            latency_min: latency,
            latency_jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
        }
    }

    /// A data-centre link: sub-millisecond, reliable.
    pub fn lan() -> Self {
        Self {
            latency_min: Duration::from_micros(300),
            latency_jitter: Duration::from_micros(200),
            loss: 0.0,
            duplicate: 0.0,
        }
    }

    /// An internet path: tens of milliseconds with jitter (so some reordering), rare
    /// duplicates, no loss.
    pub fn wan() -> Self {
        Self {
            latency_min: Duration::from_millis(20),
            latency_jitter: Duration::from_millis(15),
            loss: 0.0,
            duplicate: 0.01,
        }
    }

    /// A bad path: 10 % loss, 5 % duplicates, heavy jitter.
    pub fn lossy() -> Self {
        Self {
            latency_min: Duration::from_millis(30),
            latency_jitter: Duration::from_millis(80),
            loss: 0.10,
            duplicate: 0.05,
        }
    }

    /// A hostile path: 40 % loss, 20 % duplicates, jitter up to seconds.
    pub fn hostile() -> Self {
        Self {
            latency_min: Duration::from_millis(50),
            latency_jitter: Duration::from_millis(400),
            loss: 0.40,
            duplicate: 0.20,
        }
    }

    /// Whether this link loses nothing (the "reachable" of the refresh invariant).
    pub fn is_lossless(&self) -> bool {
        self.loss <= 0.0
    }
}

/// Which way a packet travels on a link, seen from trunkline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Direction {
    /// trunkline → peer.
    ToPeer,
    /// peer → trunkline.
    FromPeer,
}

/// Which directions a partition blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cut {
    /// Nothing passes either way.
    Both,
    /// Only trunkline → peer is blocked (requests vanish).
    ToPeer,
    /// Only peer → trunkline is blocked (answers vanish).
    FromPeer,
}

/// What happens to one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Dropped by random loss.
    Lost,
    /// Dropped by a partition.
    Blocked,
    /// Arrives after each of these delays (two when duplicated).
    Arrives(Vec<Duration>),
}

/// One link's current state.
#[derive(Debug, Clone)]
pub struct Link {
    /// How it behaves now.
    pub config: LinkConfig,
    /// trunkline → peer blocked.
    pub blocked_to_peer: bool,
    /// peer → trunkline blocked.
    pub blocked_from_peer: bool,
}

impl Link {
    /// A link with no partition.
    pub fn new(config: LinkConfig) -> Self {
        Self {
            config,
            blocked_to_peer: false,
            blocked_from_peer: false,
        }
    }

    /// Applies a partition.
    pub fn cut(&mut self, cut: Cut) {
        match cut {
            Cut::Both => {
                self.blocked_to_peer = true;
                self.blocked_from_peer = true;
            }
            Cut::ToPeer => self.blocked_to_peer = true,
            Cut::FromPeer => self.blocked_from_peer = true,
        }
    }

    /// Lifts every partition.
    pub fn repair(&mut self) {
        self.blocked_to_peer = false;
        self.blocked_from_peer = false;
    }

    /// Whether packets can currently pass both ways without loss.
    pub fn is_healthy(&self) -> bool {
        !self.blocked_to_peer && !self.blocked_from_peer && self.config.is_lossless()
    }

    fn delay(&self, rng: &mut SimRng) -> Duration {
        self.config.latency_min + rng.exp(self.config.latency_jitter)
    }

    /// Decides the fate of one packet. Draw order is fixed (loss, delay, duplicate,
    /// second delay) so that a run replays exactly from its seed.
    pub fn send(&self, dir: Direction, rng: &mut SimRng) -> Fate {
        let blocked = match dir {
            Direction::ToPeer => self.blocked_to_peer,
            Direction::FromPeer => self.blocked_from_peer,
        };
        if blocked {
            return Fate::Blocked;
        }
        if rng.chance(self.config.loss) {
            return Fate::Lost;
        }
        let first = self.delay(rng);
        if rng.chance(self.config.duplicate) {
            let second = self.delay(rng);
            return Fate::Arrives(vec![first, second]);
        }
        Fate::Arrives(vec![first])
    }
}
