//! # simulator — trunkline's deterministic discrete-event world
//!
//! Drives `sip-core` in virtual time against modelled peers on a modelled network, with
//! faults, and checks invariants after every step. One seed reproduces a whole run.
//!
//! ```no_run
//! use simulator::{generate::generate, runner::{run, RunOptions}};
//! let report = run(generate(42), RunOptions::default());
//! assert!(report.passed(), "{}", report.failure_text(40));
//! ```
//!
//! ## Pieces
//!
//! * [`clock`] — virtual time (one real `Instant` at setup, then `Duration`s).
//! * [`rng`] — one seed split into independent streams (network, models, workload, core).
//! * [`queue`] — the event queue, ties broken by insertion order.
//! * [`net`] — per-link latency, loss, duplication, partitions.
//! * [`models`] — the sans-IO peer models, re-exported from the `peer-models` crate
//!   (which `trunkline demo` uses without linking the simulator).
//! * [`scenario`] — a run as data; [`generate`] draws one from a seed.
//! * [`runner`] — the event loop and the phases (faults, heal, liveness, shutdown).
//! * [`check`] — safety and liveness invariants.
//! * [`journal`] — what crossed the core's boundary, as data, for scenarios that assert
//!   a rule directly.
//! * [`trace`] — structured, redacted, symbolic trace lines and their hash.
//! * [`env`] — `SIM_SEED`, `SIM_SEEDS`, `SIM_TRACE`, the reproduce line.

#![warn(missing_docs)]

pub mod check;
pub mod clock;
pub mod env;
pub mod generate;
pub mod journal;
pub mod net;
pub mod queue;
pub mod report;
pub mod rng;
pub mod runner;
pub mod scenario;
pub mod trace;

/// The peer models live in `peer-models`; re-exported under their old path so that
/// scenarios and tests name them as before.
pub use peer_models as models;
pub use report::Report;
pub use runner::{run, RunOptions};
pub use scenario::Scenario;
