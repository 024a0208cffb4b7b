//! # sip-core — trunkline's sans-IO SIP core
//!
//! A deterministic state machine that keeps SIP registrations alive with providers and
//! reports their status to a backend. It performs no I/O, reads no clock and draws no
//! OS randomness: time comes in as `now` on every call, wall time is derived from an
//! anchor given at construction, and every random choice comes from one seed. Given the
//! same seed and the same `(now, input)` sequence it produces the same outputs, byte for
//! byte — which is what lets the simulator replay a failing run from its seed.
//!
//! ## The drive loop
//!
//! A driver (tokio, smol, the simulator) owns the socket, one timer, an HTTP client and a
//! resolver, and runs this loop:
//!
//! 1. Build the [`Controller`] with a seed and the current time.
//! 2. Drain [`Controller::poll_output`] until it returns [`Output::Timeout`], carrying out
//!    each output: [`Output::Transmit`] (send the datagram), [`Output::Backend`] (start the
//!    request; answer later with [`Input::Backend`] and the same id — map it onto HTTP with
//!    [`backend::http`] or onto the config file), [`Output::Resolve`] (look the name up;
//!    answer with [`Input::Resolved`]), [`Output::Event`] (log, count, show).
//! 3. `Output::Timeout(at)` is the one "set timer" action: sleep until `at` (forever when
//!    `None`) or until an input arrives, whichever is first.
//! 4. Perform exactly one mutation — [`Controller::handle_input`] for an input, or
//!    [`Controller::handle_timeout`] once `at` has passed — then go to 2. (Datagrams
//!    read together as one batch may be fed one after another before that drain, in
//!    the order [`Controller::triage`] asks: their outputs queue in order.)
//!
//! **Every mutation must be followed by a complete drain** (step 2): outputs are queued in
//! order and the deadline is only correct after the drain. The core owns every timer —
//! SIP retransmissions, refreshes, backoff, backend deadlines — in one table keyed by
//! [`time::TimerKey`], so a driver needs exactly one sleep, whatever the number of
//! registrations. Peer garbage never makes `handle_input` fail: it is counted
//! ([`Controller::stats`]), announced as an event and dropped.
//!
//! ## Modules
//!
//! [`message`] parses and builds SIP messages (our own parser); [`auth`] computes digests;
//! [`transaction`] runs RFC 3261 client transactions; [`registration`] is the
//! per-provider machine; [`backend`] holds the status outbox and the HTTP mapping.

#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod auth;
pub mod b2bua;
pub mod backend;
pub mod config;
pub mod connections;
pub mod controller;
pub mod ctx;
pub mod dns;
pub mod inbound;
pub mod io;
pub mod keepalive;
pub mod keyed;
pub mod message;
pub mod provider;
pub mod rate;
pub mod registrars;
pub mod registration;
pub mod registry;
pub mod rng;
pub mod routing;
pub mod secret;
pub mod silent_targets;
pub mod stats;
pub mod sync;
pub mod time;
pub mod transaction;
pub mod transport;
pub mod triage;
pub mod wallclock;

pub use backend::destination::{NoRoute, Route, RouteSource};
pub use config::{CallSettings, Config, DigestCredentials, RejectUnknown, SipTimers};
pub use controller::Controller;
pub use io::{
    Answer, BackendOp, BackendReply, BackendRequest, BindingIdentity, CallRecord, CallView,
    Command, Connect, Event, FailureNotice, Input, LeftBehind, NaptrRecord, Output, QueryId,
    QueryKind, Records, RegisterOutcome, RegisterStatus, RegistrationView, RequestId, Resolution,
    ResolveQuery, SentRegister, SrvRecord, StatusReport, Transmit,
};
pub use provider::{Provider, ProviderSpec};
pub use registrars::Registrars;
pub use secret::Secret;
pub use transport::{ConnId, Flow, Link, Transport};
pub use triage::{Dropped, Triage};
