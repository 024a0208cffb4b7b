//! The B2BUA: each inbound call from a provider bridged to its destination as two legs
//! (the provider side, where we are the UAS; the destination side, where we are the
//! UAC). Built in steps (issue 9): so far the pure rules a call needs before its
//! machine — who may call ([`admission`]), what was dialed ([`dialed`]), and the
//! INVITE towards the destination ([`outbound`]).

pub mod admission;
pub mod dialed;
pub mod outbound;
