//! Client transactions (RFC 3261 §17.1).
//!
//! Only the non-INVITE client transaction exists so far (REGISTER). Each transaction has
//! one [`TimerKey::Transaction`] timer that stands for whichever of Timers E and F is due
//! next. A completed transaction keeps only its branch for Timer K (absorbing
//! retransmitted final responses), in a FIFO under one [`TimerKey::TxnLinger`] timer:
//! T4 is the same for all, so completion order is expiry order, and ten thousand
//! registrations completing together cost a branch each, not a transaction and two
//! timer entries each. INVITE and server transactions will be further kinds here.

use crate::config::SipTimers;
use crate::message::Response;
use crate::time::{TimerKey, TimerTable};
use std::collections::{BTreeMap, VecDeque};
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
}

#[derive(Debug)]
struct ClientTxn {
    branch: String,
    method: &'static str,
    owner: Owner,
    remote: SocketAddr,
    request: Vec<u8>,
    state: State,
    interval: Duration,
    retransmit_at: Instant,
    timeout_at: Instant,
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
    /// Live and completed (lingering) transactions; a completed one has no `by_id` entry.
    by_branch: BTreeMap<String, u64>,
    /// Completed transactions in completion order, with their Timer K deadline.
    lingering: VecDeque<(Instant, String)>,
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
        method: &'static str,
        remote: SocketAddr,
        request: Vec<u8>,
    ) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let txn = ClientTxn {
            branch: branch.clone(),
            method,
            owner,
            remote,
            request,
            state: State::Trying,
            interval: timers.t1,
            retransmit_at: now + timers.t1,
            timeout_at: now + timers.t1 * 64,
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

    /// Number of live transactions (lingering completed ones not included).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Number of completed transactions still absorbing retransmissions (Timer K).
    pub fn lingering(&self) -> usize {
        self.lingering.len()
    }

    /// Timer K: forgets the completed transactions whose T4 has passed.
    pub fn on_linger_timer(&mut self, now: Instant, table: &mut TimerTable) {
        while let Some((until, _)) = self.lingering.front() {
            if *until > now {
                break;
            }
            if let Some((_, branch)) = self.lingering.pop_front() {
                self.by_branch.remove(&branch);
            }
        }
        match self.lingering.front() {
            Some((until, _)) => table.set(TimerKey::TxnLinger, *until),
            None => {
                table.cancel(TimerKey::TxnLinger);
                // A burst of ten thousand completions must not keep its room forever.
                self.lingering.shrink_to(64);
            }
        }
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
        // No live transaction: a completed one lingering for Timer K absorbs the
        // retransmission of its final response.
        let txn = self.by_id.get_mut(&id)?;
        let method_matches = response
            .headers
            .cseq()
            .is_some_and(|(_, m)| m.eq_ignore_ascii_case(txn.method));
        if !method_matches {
            return None;
        }
        match txn.state {
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
                let owner = txn.owner;
                // Timer K: over UDP, linger T4 to absorb retransmitted responses; only
                // the branch (in `by_branch`) is needed for that.
                if let Some(txn) = self.by_id.remove(&id) {
                    table.cancel(TimerKey::Transaction(id));
                    let until = now + timers.t4;
                    if self.lingering.is_empty() {
                        table.set(TimerKey::TxnLinger, until);
                    }
                    self.lingering.push_back((until, txn.branch));
                }
                Some(TxnAction::Notify {
                    owner,
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]
mod tests {
    use super::*;
    use crate::message::{parse, Message};

    fn response(branch: &str, status: u16) -> Response {
        let text = format!(
            "SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch={branch}\r\n\
             From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: c\r\n\
             CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
        );
        match parse(text.as_bytes()).unwrap() {
            Message::Response(r) => r,
            Message::Request(_) => unreachable!(),
        }
    }

    #[test]
    fn completed_transactions_linger_as_a_branch_under_one_timer() {
        let timers = SipTimers::default();
        let mut table = TimerTable::default();
        let mut txns = Transactions::default();
        let t0 = Instant::now();
        let remote: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        for i in 0..10 {
            txns.start(
                t0,
                &timers,
                &mut table,
                Owner::Registration(i),
                format!("z9hG4bK-{i}"),
                "REGISTER",
                remote,
                b"REGISTER sip:b SIP/2.0\r\n\r\n".to_vec(),
            );
        }
        assert_eq!(table.len(), 10);
        let t1 = t0 + Duration::from_millis(100);
        for i in 0..10 {
            let done = txns.on_response(
                t1,
                &timers,
                &mut table,
                response(&format!("z9hG4bK-{i}"), 200),
            );
            assert!(matches!(
                done,
                Some(TxnAction::Notify {
                    event: TxnEvent::Final(_),
                    ..
                })
            ));
        }
        // Ten completed transactions: no live one, ten branches, one Timer K.
        assert_eq!((txns.len(), txns.lingering(), table.len()), (0, 10, 1));
        // A retransmitted final response is absorbed, not passed up again.
        assert!(txns
            .on_response(t1, &timers, &mut table, response("z9hG4bK-3", 200))
            .is_none());
        assert_eq!(table.next_deadline(), Some(t1 + timers.t4));
        txns.on_linger_timer(t1 + timers.t4, &mut table);
        assert_eq!((txns.lingering(), table.len()), (0, 0));
        assert!(txns.by_branch.is_empty());
    }
}
