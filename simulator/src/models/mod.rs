//! Sans-IO models of trunkline's peers. They know nothing of the simulator: bytes and
//! `Instant`s in, bytes and replies out, so `trunkline demo` can run the same models on
//! real loopback sockets.
//!
//! * [`registrar::Registrar`] — a SIP registrar serving many accounts, with digest
//!   challenges (its own digest code in [`digest`]) and scriptable misbehaviour.
//! * [`backend::Backend`] — the provider-list and status HTTP backend.

pub mod backend;
pub mod digest;
pub mod registrar;
