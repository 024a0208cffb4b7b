//! # peer-models — sans-IO models of trunkline's peers
//!
//! They know nothing of the simulator: bytes and `Instant`s in, bytes and replies out, so
//! the simulator runs them in virtual time and `trunkline demo` on real loopback sockets.
//! A crate of its own so that the production binary links the models, not the simulator
//! (DESIGN.md, "Layout"). Like `sip-core` they read no clock and no OS randomness
//! (`clippy.toml` bans the clock; each model draws from its own seeded ChaCha8).
//!
//! * [`registrar::Registrar`] — a SIP registrar serving many accounts, with digest
//!   challenges (its own digest code in [`digest`]) and scriptable misbehaviour.
//! * [`backend::Backend`] — the provider-list and status HTTP backend.
//! * [`provider::Provider`] — a SIP provider that places inbound calls to a DID.
//! * [`livekit::LiveKit`] — a LiveKit-like UAS that answers (or challenges, rejects,
//!   ignores) the calls trunkline forwards.
//! * [`sip`] — timer values, a timer table and SDP, shared by the two call models.

#![warn(missing_docs)]

pub mod backend;
pub mod digest;
pub mod livekit;
pub mod provider;
pub mod registrar;
pub mod sip;
