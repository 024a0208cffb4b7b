//! The non-INVITE client transaction (RFC 3261 §17.1.2), over UDP: Timers E and F.

use super::{Clock, Owner, RttSample, Step, TxnAction, TxnEvent};
use crate::message::Response;
use crate::time::TxnTimer;
use crate::transport::Link;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Sent, no response yet: Timer E retransmits from T1 doubling to T2.
    Trying,
    /// A provisional response came: retransmit every T2.
    Proceeding,
}

/// One non-INVITE request we sent (REGISTER).
#[derive(Debug)]
pub(super) struct NonInviteClient {
    owner: Owner,
    pub to: Link,
    request: Vec<u8>,
    state: State,
    interval: Duration,
    /// When the request first left, for the round trip the pacer's window learns from.
    sent_at: Instant,
    /// Timer E has retransmitted it (or the shutdown silenced it): no round trip
    /// sample, no longer in flight.
    pub lost: bool,
}

impl NonInviteClient {
    /// Who this transaction reports to.
    pub fn owner(&self) -> Owner {
        self.owner
    }

    pub fn start(clock: &mut Clock<'_>, owner: Owner, to: Link, request: Vec<u8>) -> Self {
        let t1 = clock.cfg.t1;
        // Timer E retransmits on an unreliable transport only (§17.1.2.2).
        if !to.is_reliable() {
            clock.set(TxnTimer::E, t1);
        }
        clock.set(TxnTimer::F, t1 * 64);
        Self {
            owner,
            to,
            request,
            state: State::Trying,
            interval: t1,
            sent_at: clock.now,
            lost: false,
        }
    }

    pub fn on_response(&mut self, clock: &mut Clock<'_>, response: Response) -> Step {
        if response.status < 200 {
            if self.state == State::Trying {
                self.state = State::Proceeding;
                self.interval = clock.cfg.t2;
                if !self.to.is_reliable() {
                    clock.set(TxnTimer::E, clock.cfg.t2);
                }
            }
            let event = TxnEvent::Provisional(Box::new(response));
            return Step::live(vec![clock.notify(self.owner, event)]);
        }
        // Completed: forgotten at once (see the module docs on Timer K).
        let rtt = (!self.lost).then_some(RttSample {
            remote: self.to.remote,
            sent_at: self.sent_at,
        });
        Step::done(vec![TxnAction::Notify {
            owner: self.owner,
            id: clock.id,
            event: TxnEvent::Final(Box::new(response)),
            rtt,
        }])
    }

    pub fn on_timer(&mut self, clock: &mut Clock<'_>, timer: TxnTimer) -> Step {
        match timer {
            TxnTimer::F => Step::done(vec![clock.notify(self.owner, TxnEvent::Timeout)]),
            TxnTimer::E => {
                self.interval = match self.state {
                    State::Trying => (self.interval * 2).min(clock.cfg.t2),
                    State::Proceeding => clock.cfg.t2,
                };
                clock.set(TxnTimer::E, self.interval);
                // Only an unanswered request is a loss: after a provisional response the
                // registrar has it, and Timer E just keeps the transaction alive.
                let lost_since =
                    (self.state == State::Trying && !self.lost).then_some(self.sent_at);
                if lost_since.is_some() {
                    self.lost = true;
                }
                Step::live(vec![TxnAction::Send {
                    to: self.to,
                    payload: self.request.clone(),
                    lost_since,
                }])
            }
            _ => Step::default(),
        }
    }
}
