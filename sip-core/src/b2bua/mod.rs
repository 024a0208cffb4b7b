//! The B2BUA: each inbound call from a provider bridged to its destination as two legs
//! (the provider side, where we are the UAS; the destination side, where we are the
//! UAC).
//!
//! * [`admission`]: who may call; [`dialed`]: what was dialed; [`outbound`]: the
//!   INVITE towards the destination.
//! * [`calls`]: the table of calls, limits and drain; [`call`]: one call, its state,
//!   timers and record; [`setup`]: its setup up to the callee's final answer;
//!   [`answer`]: the 2xx on both legs and their ACKs; [`hangup`]: CANCEL, BYE, ACK and
//!   our own hang-ups; [`indialog`]: requests
//!   relayed inside a call; [`relay`]: what crosses between the legs; [`dialog`]: one
//!   leg's dialog; [`fork`]: 2xx dialogs the call does not use; [`uri`]: where a URI points.

pub mod admission;
mod answer;
pub mod call;
pub mod calls;
pub mod dialed;
pub mod dialog;
pub mod fork;
mod hangup;
pub mod indialog;
pub mod outbound;
pub mod relay;
mod setup;
pub mod uri;
