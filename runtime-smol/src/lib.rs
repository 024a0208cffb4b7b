//! The smol driver of `sip-core` (being built).
