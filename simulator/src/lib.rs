//! Deterministic discrete-event simulator for `sip-core` (being built).
