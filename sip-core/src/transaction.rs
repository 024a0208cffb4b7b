//! Client transactions (RFC 3261 §17.1).
//!
//! Only the non-INVITE client transaction exists so far (REGISTER). Each transaction has
//! one [`TimerKey::Transaction`] timer that stands for whichever of Timers E, F and K is
//! due next; INVITE and server transactions will be further kinds in this table.

use crate::config::SipTimers;
use crate::message::Response;
use crate::time::{TimerKey, TimerTable};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Who a transaction works for, so its outcome reaches the right machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The registration in this slot.
    Registration(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Sent, no response yet: Timer E retransmits from T1 doubling to T2.
    Trying,
    /// A provisional response came: retransmit every T2.
    Proceeding,
    /// Final response passed up; absorb its retransmissions until Timer K.
    Completed,
}

#[derive(Debug)]
struct ClientTxn {
    branch: String,
    method: String,
    owner: Owner,
    remote: SocketAddr,
    request: Vec<u8>,
    state: State,
    interval: Duration,
    retransmit_at: Instant,
    timeout_at: Instant,
    /// Timer K deadline, once completed.
    linger_until: Option<Instant>,
}

/// What a transaction reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnEvent {
    /// A final response (status >= 200).
    Final(Box<Response>),
    /// Timer F fired: no final response.
    Timeout,
}

/// What the transaction layer asks of the controller.
#[derive(Debug)]
pub enum TxnAction {
    /// Send (or resend) these bytes.
    Send {
        remote: SocketAddr,
        payload: Vec<u8>,
    },
    /// Tell the owner how transaction `id` ended.
    Notify {
        owner: Owner,
        id: u64,
        event: TxnEvent,
    },
}

/// All client transactions, by id and by branch.
#[derive(Debug, Default)]
pub struct Transactions {
    by_id: BTreeMap<u64, ClientTxn>,
    by_branch: BTreeMap<String, u64>,
    next_id: u64,
}

impl Transactions {
    /// Starts a non-INVITE client transaction: the caller sends `request` right away
    /// (this returns its id and arms Timers E and F).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        &mut self,
        now: Instant,
        timers: &SipTimers,
        table: &mut TimerTable,
        owner: Owner,
        branch: String,
        method: &str,
        remote: SocketAddr,
        request: Vec<u8>,
    ) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let txn = ClientTxn {
            branch: branch.clone(),
            method: method.to_owned(),
            owner,
            remote,
            request,
            state: State::Trying,
            interval: timers.t1,
            retransmit_at: now + timers.t1,
            timeout_at: now + timers.t1 * 64,
            linger_until: None,
        };
        table.set(
            TimerKey::Transaction(id),
            txn.retransmit_at.min(txn.timeout_at),
        );
        self.by_branch.insert(branch, id);
        self.by_id.insert(id, txn);
        id
    }

    /// Forgets a transaction whose owner lost interest (e.g. the provider was removed);
    /// late responses to it are then dropped as strays.
    pub fn abandon(&mut self, id: u64, table: &mut TimerTable) {
        if let Some(txn) = self.by_id.remove(&id) {
            self.by_branch.remove(&txn.branch);
            table.cancel(TimerKey::Transaction(id));
        }
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Matches a response by top Via branch and CSeq method (RFC 3261 §17.1.3).
    /// Returns `None` when it belongs to no transaction (a stray, to be dropped).
    pub fn on_response(
        &mut self,
        now: Instant,
        timers: &SipTimers,
        table: &mut TimerTable,
        response: Response,
    ) -> Option<TxnAction> {
        let branch = response.headers.top_via()?.branch?;
        let &id = self.by_branch.get(&branch)?;
        let txn = self.by_id.get_mut(&id)?;
        let method_matches = response
            .headers
            .cseq()
            .is_some_and(|(_, m)| m.eq_ignore_ascii_case(&txn.method));
        if !method_matches {
            return None;
        }
        match txn.state {
            // Retransmission of the final response: absorbed.
            State::Completed => None,
            State::Trying | State::Proceeding if response.status < 200 => {
                if txn.state == State::Trying {
                    txn.state = State::Proceeding;
                    txn.interval = timers.t2;
                    txn.retransmit_at = now + timers.t2;
                    table.set(
                        TimerKey::Transaction(id),
                        txn.retransmit_at.min(txn.timeout_at),
                    );
                }
                None
            }
            State::Trying | State::Proceeding => {
                txn.state = State::Completed;
                // Timer K: over UDP, linger T4 to absorb retransmitted responses.
                let until = now + timers.t4;
                txn.linger_until = Some(until);
                txn.request = Vec::new();
                table.set(TimerKey::Transaction(id), until);
                Some(TxnAction::Notify {
                    owner: txn.owner,
                    id,
                    event: TxnEvent::Final(Box::new(response)),
                })
            }
        }
    }

    /// Fires the transaction's timer.
    pub fn on_timer(
        &mut self,
        id: u64,
        now: Instant,
        timers: &SipTimers,
        table: &mut TimerTable,
    ) -> Option<TxnAction> {
        let txn = self.by_id.get_mut(&id)?;
        if txn.state == State::Completed {
            if txn.linger_until.is_some_and(|t| t <= now) {
                self.abandon(id, table);
            }
            return None;
        }
        if now >= txn.timeout_at {
            let owner = txn.owner;
            self.abandon(id, table);
            return Some(TxnAction::Notify {
                owner,
                id,
                event: TxnEvent::Timeout,
            });
        }
        if now >= txn.retransmit_at {
            txn.interval = match txn.state {
                State::Trying => (txn.interval * 2).min(timers.t2),
                _ => timers.t2,
            };
            txn.retransmit_at = now + txn.interval;
            table.set(
                TimerKey::Transaction(id),
                txn.retransmit_at.min(txn.timeout_at),
            );
            return Some(TxnAction::Send {
                remote: txn.remote,
                payload: txn.request.clone(),
            });
        }
        table.set(
            TimerKey::Transaction(id),
            txn.retransmit_at.min(txn.timeout_at),
        );
        None
    }
}
