//! The INVITE server transaction (RFC 3261 §17.2.1, RFC 6026 §7.1): `100 Trying` at
//! once, Timers G, H, I and L.
//!
//! The `100 Trying` goes out as soon as the INVITE arrives rather than after 200 ms:
//! the issue asks for it, it stops the caller's Timer A at once, and a B2BUA that waits
//! for a destination lookup would answer later than 200 ms anyway.

use super::invite_client::TIMER_C;
use super::{send, Clock, Owner, Step, TxnEvent};
use crate::message::{response_to, Request};
use crate::time::TxnTimer;
use crate::transport::Link;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Proceeding,
    /// A non-2xx final was sent: Timer G resends it until the ACK or Timer H.
    Completed,
    /// Its ACK came: Timer I absorbs retransmitted ACKs.
    Confirmed,
    /// A 2xx was sent (RFC 6026): Timer L absorbs INVITE retransmissions; the owner
    /// retransmits the 2xx until its ACK.
    Accepted,
}

/// One INVITE we received.
#[derive(Debug)]
pub(super) struct InviteServer {
    pub owner: Owner,
    pub to: Link,
    state: State,
    /// The last response sent, resent byte for byte to a retransmitted INVITE.
    last: Vec<u8>,
    interval: Duration,
}

impl InviteServer {
    pub fn start(
        clock: &mut Clock<'_>,
        request: &Request,
        to: Link,
    ) -> (Self, Vec<super::TxnAction>) {
        let trying = response_to(request, 100, "Trying", None).to_bytes();
        clock.set(TxnTimer::C, TIMER_C);
        let txn = Self {
            owner: Owner::Inbound,
            to,
            state: State::Proceeding,
            last: trying.clone(),
            interval: clock.cfg.t1,
        };
        (txn, vec![send(to, trying)])
    }

    pub fn is_accepted(&self) -> bool {
        self.state == State::Accepted
    }

    pub fn on_retransmission(&self) -> Step {
        match self.state {
            State::Proceeding | State::Completed => {
                Step::live(vec![send(self.to, self.last.clone())])
            }
            State::Confirmed | State::Accepted => Step::default(),
        }
    }

    pub fn on_ack(&mut self, clock: &mut Clock<'_>) -> Step {
        if self.state != State::Completed {
            return Step::default();
        }
        clock.cancel(TxnTimer::G);
        clock.cancel(TxnTimer::H);
        if self.to.is_reliable() {
            return Step::done(Vec::new());
        }
        self.state = State::Confirmed;
        clock.set(TxnTimer::I, clock.cfg.t4);
        Step::default()
    }

    pub fn respond(&mut self, clock: &mut Clock<'_>, status: u16, payload: Vec<u8>) -> Step {
        match self.state {
            State::Proceeding if status < 200 => {
                self.last = payload.clone();
                clock.set(TxnTimer::C, TIMER_C);
            }
            State::Proceeding if status < 300 => {
                self.state = State::Accepted;
                clock.cancel(TxnTimer::C);
                clock.set(TxnTimer::L, clock.cfg.t1 * 64);
            }
            State::Proceeding if status < 700 => {
                self.state = State::Completed;
                self.last = payload.clone();
                clock.cancel(TxnTimer::C);
                if !self.to.is_reliable() {
                    clock.set(TxnTimer::G, clock.cfg.t1);
                }
                clock.set(TxnTimer::H, clock.cfg.t1 * 64);
            }
            // RFC 6026 §8.7: further 2xx from the TU (retransmissions) pass in Accepted.
            State::Accepted if (200..300).contains(&status) => {}
            _ => return Step::default(),
        }
        Step::live(vec![send(self.to, payload)])
    }

    pub fn on_timer(&mut self, clock: &mut Clock<'_>, timer: TxnTimer) -> Step {
        match (timer, self.state) {
            (TxnTimer::G, State::Completed) => {
                self.interval = (self.interval * 2).min(clock.cfg.t2);
                clock.set(TxnTimer::G, self.interval);
                Step::live(vec![send(self.to, self.last.clone())])
            }
            (TxnTimer::H, State::Completed) => {
                Step::done(vec![clock.notify(self.owner, TxnEvent::NoAck)])
            }
            (TxnTimer::C, State::Proceeding) => {
                Step::done(vec![clock.notify(self.owner, TxnEvent::Timeout)])
            }
            (TxnTimer::I, State::Confirmed) | (TxnTimer::L, State::Accepted) => {
                Step::done(Vec::new())
            }
            _ => Step::default(),
        }
    }
}
