//! The non-INVITE server transaction (RFC 3261 §17.2.2): Timer J.

use super::{send, Clock, Owner, Step, TxnEvent};
use crate::time::TxnTimer;
use crate::transport::Link;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No response yet: retransmissions are absorbed.
    Trying,
    /// A provisional was sent: resent to retransmissions.
    Proceeding,
    /// The final was sent: resent to retransmissions until Timer J.
    Completed,
}

/// One non-INVITE request we received (OPTIONS, BYE, CANCEL, …).
#[derive(Debug)]
pub(super) struct NonInviteServer {
    pub owner: Owner,
    pub to: Link,
    state: State,
    last: Option<Vec<u8>>,
}

impl NonInviteServer {
    pub fn start(clock: &mut Clock<'_>, to: Link) -> Self {
        // The client gives up after its Timer F (64·T1); an owner that has not answered
        // by then never will usefully.
        clock.set(TxnTimer::Unanswered, clock.cfg.t1 * 64);
        Self {
            owner: Owner::Inbound,
            to,
            state: State::Trying,
            last: None,
        }
    }

    pub fn on_retransmission(&self) -> Step {
        match &self.last {
            Some(last) => Step::live(vec![send(self.to, last.clone())]),
            None => Step::default(),
        }
    }

    pub fn respond(&mut self, clock: &mut Clock<'_>, status: u16, payload: Vec<u8>) -> Step {
        if self.state == State::Completed {
            return Step::default();
        }
        self.last = Some(payload.clone());
        let actions = vec![send(self.to, payload)];
        if status < 200 {
            self.state = State::Proceeding;
            return Step::live(actions);
        }
        clock.cancel(TxnTimer::Unanswered);
        if self.to.is_reliable() {
            return Step::done(actions);
        }
        self.state = State::Completed;
        clock.set(TxnTimer::J, clock.cfg.t1 * 64);
        Step::live(actions)
    }

    pub fn on_timer(&mut self, clock: &mut Clock<'_>, timer: TxnTimer) -> Step {
        match (timer, self.state) {
            (TxnTimer::J, State::Completed) => Step::done(Vec::new()),
            (TxnTimer::Unanswered, State::Trying | State::Proceeding) => {
                Step::done(vec![clock.notify(self.owner, TxnEvent::Timeout)])
            }
            _ => Step::default(),
        }
    }
}
