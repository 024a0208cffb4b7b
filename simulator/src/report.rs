//! What a run hands back: the violations, the trace (hash, and lines when kept), the
//! journal (when kept) and counters.

use crate::check::Violation;
use crate::journal::Journal;
use sip_core::stats::Stats;
use std::fmt::Write;
use std::time::Duration;

/// Counters of one run.
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    /// Events processed.
    pub steps: u64,
    /// Virtual time simulated.
    pub sim_time: Duration,
    /// Datagrams trunkline sent.
    pub sip_datagrams: u64,
    /// Backend requests trunkline made.
    pub backend_requests: u64,
    /// PATCHes the backend stored.
    pub patches: u64,
    /// REGISTERs the registrars received.
    pub registrar_requests: u64,
    /// REGISTERs the registrars dropped for want of capacity.
    pub registrar_overflowed: u64,
    /// Per registrar (by index), what it received and when it held every account.
    pub registrars: Vec<RegistrarRun>,
    /// Trace lines rendered.
    pub trace_lines: u64,
    /// Violations of known issues that were tolerated.
    pub tolerated: u64,
    /// The core's own counters.
    pub core: Stats,
    /// Connections the core asked for.
    pub stream_connects: u64,
    /// Chunks the core read from connections.
    pub stream_reads: u64,
    /// Of those, chunks that left a message unfinished (cut inside it).
    pub stream_reads_partial: u64,
    /// Of those, chunks that completed more than one message.
    pub stream_reads_several: u64,
    /// Connections that ended under the core (it read `Closed`).
    pub stream_ends: u64,
    /// Re-registrations after a connection drop that were owed and checked (not made
    /// void by a later fault).
    pub reregistrations_checked: u64,
}

/// One registrar's share of a run.
#[derive(Debug, Clone, Default)]
pub struct RegistrarRun {
    /// REGISTERs it received (retransmissions included).
    pub requests: u64,
    /// REGISTERs it dropped for want of capacity.
    pub overflowed: u64,
    /// Virtual time from the start until it first held a binding for every account.
    pub all_bound_at: Option<Duration>,
}

/// The outcome of one run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The scenario's name.
    pub name: String,
    /// The scenario's seed.
    pub seed: u64,
    /// Broken invariants, in order.
    pub violations: Vec<Violation>,
    /// Hash of the whole trace (the determinism self-check compares it).
    pub trace_hash: u64,
    /// The trace lines (when the run kept them).
    pub trace: Vec<String>,
    /// Counters.
    pub stats: RunStats,
    /// What crossed the core's boundary (empty unless the trace was kept in full).
    pub journal: Journal,
}

impl Report {
    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The first violation, if any.
    pub fn first_violation(&self) -> Option<&Violation> {
        self.violations.first()
    }

    /// The trace as one text.
    pub fn trace_text(&self) -> String {
        let mut s = self.trace.join("\n");
        s.push('\n');
        s
    }

    /// A failure summary: the violations and the last `tail` trace lines.
    pub fn failure_text(&self, tail: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "scenario {:?} seed {} broke {} invariant check(s):",
            self.name,
            self.seed,
            self.violations.len()
        );
        for v in self.violations.iter().take(20) {
            let _ = writeln!(s, "  {v}");
        }
        if !self.trace.is_empty() {
            let from = self.trace.len().saturating_sub(tail);
            let _ = writeln!(s, "last {} trace lines:", self.trace.len() - from);
            for l in self.trace.iter().skip(from) {
                let _ = writeln!(s, "  {l}");
            }
        }
        s
    }
}
