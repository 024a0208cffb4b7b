//! The INVITE client transaction (RFC 3261 §17.1.1, RFC 6026 §7.2): Timers A, B, D, M.

use super::{send, Clock, Owner, Step, TxnEvent};
use crate::message::{ack_for_non_2xx, Request, Response};
use crate::time::TxnTimer;
use crate::transport::Link;
use std::time::Duration;

/// Timer D on an unreliable transport (RFC 3261 Table 4: "> 32 s for UDP").
const TIMER_D_UDP: Duration = Duration::from_secs(32);
/// Timer C: how long Proceeding waits for a final response (§16.6: "> 3 min").
pub(super) const TIMER_C: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Calling,
    Proceeding,
    /// A non-2xx final came and was ACKed; retransmissions of it are ACKed again.
    Completed,
    /// A 2xx came (RFC 6026): more 2xx (retransmissions, forks) go to the owner.
    Accepted,
}

/// One INVITE we sent.
#[derive(Debug)]
pub(super) struct InviteClient {
    owner: Owner,
    pub to: Link,
    invite: Request,
    payload: Vec<u8>,
    state: State,
    interval: Duration,
    /// The ACK sent for the non-2xx final, resent for its retransmissions.
    ack: Option<Vec<u8>>,
}

impl InviteClient {
    /// Who this transaction reports to.
    pub fn owner(&self) -> Owner {
        self.owner
    }

    pub fn start(
        clock: &mut Clock<'_>,
        owner: Owner,
        to: Link,
        invite: Request,
        payload: Vec<u8>,
    ) -> Self {
        let t1 = clock.cfg.t1;
        if !to.is_reliable() {
            clock.set(TxnTimer::A, t1);
        }
        clock.set(TxnTimer::B, t1 * 64);
        Self {
            owner,
            to,
            invite,
            payload,
            state: State::Calling,
            interval: t1,
            ack: None,
        }
    }

    pub fn on_response(&mut self, clock: &mut Clock<'_>, response: Response) -> Step {
        let status = response.status;
        match self.state {
            State::Calling | State::Proceeding if status < 200 => {
                self.state = State::Proceeding;
                clock.cancel(TxnTimer::A);
                clock.cancel(TxnTimer::B);
                clock.set(TxnTimer::C, TIMER_C);
                Step::live(vec![
                    clock.notify(self.owner, TxnEvent::Provisional(Box::new(response)))
                ])
            }
            State::Calling | State::Proceeding if status < 300 => {
                self.state = State::Accepted;
                self.stop_waiting(clock);
                clock.set(TxnTimer::M, clock.cfg.t1 * 64);
                Step::live(vec![
                    clock.notify(self.owner, TxnEvent::Final(Box::new(response)))
                ])
            }
            State::Calling | State::Proceeding => {
                self.stop_waiting(clock);
                self.ack = ack_for_non_2xx(&self.invite, &response).map(|b| b.to_bytes());
                let mut actions = Vec::with_capacity(2);
                if let Some(ack) = &self.ack {
                    actions.push(send(self.to, ack.clone()));
                }
                actions.push(clock.notify(self.owner, TxnEvent::Final(Box::new(response))));
                if self.to.is_reliable() {
                    return Step::done(actions);
                }
                self.state = State::Completed;
                clock.set(TxnTimer::D, TIMER_D_UDP);
                Step::live(actions)
            }
            State::Completed if status >= 300 => match &self.ack {
                Some(ack) => Step::live(vec![send(self.to, ack.clone())]),
                None => Step::default(),
            },
            State::Accepted if (200..300).contains(&status) => Step::live(vec![
                clock.notify(self.owner, TxnEvent::Final(Box::new(response)))
            ]),
            // A provisional or 2xx after a non-2xx, a non-2xx after a 2xx: discarded.
            State::Completed | State::Accepted => Step::default(),
        }
    }

    fn stop_waiting(&self, clock: &mut Clock<'_>) {
        clock.cancel(TxnTimer::A);
        clock.cancel(TxnTimer::B);
        clock.cancel(TxnTimer::C);
    }

    pub fn on_timer(&mut self, clock: &mut Clock<'_>, timer: TxnTimer) -> Step {
        match (timer, self.state) {
            (TxnTimer::A, State::Calling) => {
                // No T2 cap for INVITE (§17.1.1.2): 2·T1, 4·T1, … until Timer B.
                self.interval = self.interval.saturating_mul(2);
                clock.set(TxnTimer::A, self.interval);
                Step::live(vec![send(self.to, self.payload.clone())])
            }
            (TxnTimer::B, State::Calling) | (TxnTimer::C, State::Proceeding) => {
                Step::done(vec![clock.notify(self.owner, TxnEvent::Timeout)])
            }
            (TxnTimer::D, State::Completed) | (TxnTimer::M, State::Accepted) => {
                Step::done(Vec::new())
            }
            _ => Step::default(),
        }
    }
}
