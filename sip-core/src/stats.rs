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
    /// CRLF keep-alives (RFC 5626 §3.5.1): received and ignored, not parse errors.
    pub keepalives: u64,
    /// Datagrams dropped without the full parse or without an answer, by reason label
    /// (see [`Dropped::label`](crate::triage::Dropped::label)).
    pub dropped: BTreeMap<&'static str, u64>,
    /// REGISTER transactions by outcome label.
    pub register_outcomes: BTreeMap<&'static str, u64>,
    /// New requests answered without a server transaction because
    /// [`MAX_SERVER_TRANSACTIONS`](crate::transaction::MAX_SERVER_TRANSACTIONS) were held.
    pub stateless_answers: u64,
    /// Inbound calls by outcome label (`refused_unknown_source`, `unavailable`, …).
    pub calls: BTreeMap<&'static str, u64>,
    /// Backend requests by operation and outcome label, e.g. `("report", "delivered")`.
    pub backend_requests: BTreeMap<(&'static str, &'static str), u64>,
}
