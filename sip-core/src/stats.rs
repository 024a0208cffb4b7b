//! Counters for metrics, kept by the core so every driver reports the same numbers.

use std::collections::BTreeMap;

/// Monotonic counters since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// SIP datagrams received (those dropped by triage included).
    pub sip_in: u64,
    /// SIP datagrams sent (retransmissions included).
    pub sip_out: u64,
    /// Datagrams that were not usable SIP.
    pub parse_errors: u64,
    /// Responses that matched no transaction.
    pub stray_responses: u64,
    /// Dialogs of a forked or late 2xx to our INVITE that were ACKed and hung up.
    pub forks_hung_up: u64,
    /// CRLF keep-alives (RFC 5626 §3.5.1): received and ignored, not parse errors.
    pub keepalives: u64,
    /// Keep-alive pings we sent on our connections (`CRLFCRLF`, RFC 5626 §4.4.1).
    pub keepalives_sent: u64,
    /// Datagrams dropped without the full parse or without an answer, by reason label
    /// (see [`Dropped::label`](crate::triage::Dropped::label)).
    pub dropped: BTreeMap<&'static str, u64>,
    /// REGISTER transactions by outcome label.
    pub register_outcomes: BTreeMap<&'static str, u64>,
    /// New requests answered without a server transaction because
    /// [`MAX_SERVER_TRANSACTIONS`](crate::transaction::MAX_SERVER_TRANSACTIONS) were held.
    pub stateless_answers: u64,
    /// Inbound calls by outcome label (`answered`, `busy`, `refused_limit`, …: see
    /// `b2bua::calls`).
    pub calls: BTreeMap<&'static str, u64>,
    /// Calls per provider id (those attributed to one).
    pub calls_by_provider: BTreeMap<String, u64>,
    /// From the caller's INVITE to the answer, for answered calls.
    pub call_setup: Histogram,
    /// Stream connections by event label: `accepted`, `opened`, `closed_by_peer`, and
    /// the limits that refused or closed one (see
    /// [`ConnError::label`](crate::connections::ConnError::label)).
    pub connections: BTreeMap<&'static str, u64>,
    /// Backend requests by operation and outcome label, e.g. `("report", "delivered")`.
    pub backend_requests: BTreeMap<(&'static str, &'static str), u64>,
}

/// A histogram with fixed buckets, in the shape Prometheus exposes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Observations at or below each of [`Histogram::BOUNDS`] (not cumulative).
    pub buckets: [u64; 10],
    /// Observations above the last bound.
    pub overflow: u64,
    /// The sum of all observations, in microseconds.
    pub sum_micros: u64,
    /// How many observations.
    pub count: u64,
}

impl Histogram {
    /// Upper bounds of the buckets, in seconds: call setup runs from a few
    /// milliseconds (an agent that answers at once) to the ring timeout.
    pub const BOUNDS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

    /// Records one observation.
    pub fn observe(&mut self, value: std::time::Duration) {
        let secs = value.as_secs_f64();
        match Self::BOUNDS.iter().position(|b| secs <= *b) {
            Some(i) => {
                if let Some(b) = self.buckets.get_mut(i) {
                    *b += 1;
                }
            }
            None => self.overflow += 1,
        }
        self.sum_micros = self
            .sum_micros
            .saturating_add(u64::try_from(value.as_micros()).unwrap_or(u64::MAX));
        self.count += 1;
    }
}
