//! `controller`: the whole [`sip_core::Controller`] driven from a byte tape, as str0m
//! fuzzes its `Rtc` (see `shared/reference/anchors-style.md`, A2).
//!
//! The tape decides everything: the configuration, then step after step — let time
//! pass and fire timers, answer one of the REGISTERs the core sent (a 401/407 with
//! challenges, a 200 granting a binding, a 423, a failure; possibly mutated, possibly
//! twice), deliver a datagram of tape bytes or a peer's request, answer a pending
//! backend request (provider lists with invalid fields, delivered, 404, 401/403,
//! failure), answer a pending DNS query, or send a command (resync, re-register,
//! shutdown). With call routing on (a config byte the older tapes leave low), the core
//! also fetches its config and looks destinations up: config and lookup requests are
//! answered from the same picks (a `livekitDomain`, a destination URI, valid or not),
//! and a re-register also asks for a DID's route. In call mode (see [`calls`]) the
//! peer's requests are a call's, from the caller, a stranger or the destination, and
//! responses also answer the core's INVITEs and in-dialog requests. After every step the outputs are
//! drained and the invariants checked (see [`world::World`]); when the tape runs out
//! the run shuts down and must complete.

pub mod calls;
pub mod ops;
pub mod pools;
pub mod world;

pub use ops::Script;
pub use world::World;

/// Runs one tape.
pub fn run(data: &[u8]) {
    World::run(&Script::decode(data));
}
