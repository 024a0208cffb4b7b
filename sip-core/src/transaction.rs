//! Client transactions (RFC 3261 §17.1).
//!
//! Only the non-INVITE client transaction exists so far (REGISTER). Each transaction has
//! one [`TimerKey::Transaction`] timer that stands for whichever of Timers E and F is due
//! next. A transaction is forgotten as soon as its final response has been passed up:
//! the Completed state of RFC 3261 §17.1.2.2 only absorbs retransmissions of that
//! response until Timer K, and a response that matches no transaction is dropped just
//! the same (counted as stray), so keeping ten thousand completed transactions for T4
//! after a burst would cost megabytes and change nothing on the wire. (INVITE client
//! transactions, whose Completed state does act, will keep theirs.)

use crate::config::SipTimers;
use crate::message::Response;
use crate::time::{TimerKey, TimerTable};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
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
    /// When the request first left, for the round trip the pacer's window learns from.
    sent_at: Instant,
    /// Timer E has retransmitted it: no round trip sample, no longer in flight.
    lost: bool,
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
        /// On the first retransmission: when the request first left (a loss for the
        /// REGISTER pacer's congestion window).
        lost_since: Option<Instant>,
    },
    /// Tell the owner how transaction `id` ended.
    Notify {
        owner: Owner,
        id: u64,
        event: TxnEvent,
        /// For a final response to a request never retransmitted: the round trip.
        rtt: Option<RttSample>,
    },
}

/// A round trip measured by a transaction (for the REGISTER pacer's window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttSample {
    /// Where the request went.
    pub remote: SocketAddr,
    /// When it left.
    pub sent_at: Instant,
}

/// All client transactions, by id and by branch.
#[derive(Debug, Default)]
pub struct Transactions {
    by_id: BTreeMap<u64, ClientTxn>,
    by_branch: BTreeMap<String, u64>,
    /// Live transactions per remote IP: answers are expected only from these (the
    /// port is left out, since some registrars answer from another port).
    by_remote: BTreeMap<IpAddr, u32>,
    next_id: u64,
    /// Transactions neither answered nor retransmitted yet, per remote address (one
    /// entry per registrar in use: the pacer's windows are per registrar).
    in_flight: BTreeMap<SocketAddr, usize>,
    /// Remotes whose count changed since the pacer last heard (see [`Self::take_changed`]).
    changed: Vec<SocketAddr>,
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
            sent_at: now,
            lost: false,
        };
        *self.in_flight.entry(remote).or_default() += 1;
        self.changed.push(remote);
        table.set(
            TimerKey::Transaction(id),
            txn.retransmit_at.min(txn.timeout_at),
        );
        self.by_branch.insert(branch, id);
        *self.by_remote.entry(remote.ip()).or_default() += 1;
        self.by_id.insert(id, txn);
        id
    }

    /// Forgets a transaction whose owner lost interest (e.g. the provider was removed);
    /// late responses to it are then dropped as strays.
    pub fn abandon(&mut self, id: u64, table: &mut TimerTable) {
        if let Some(txn) = self.by_id.remove(&id) {
            if !txn.lost {
                self.left_flight(txn.remote);
            }
            self.by_branch.remove(&txn.branch);
            if let Some(n) = self.by_remote.get_mut(&txn.remote.ip()) {
                *n -= 1;
                if *n == 0 {
                    self.by_remote.remove(&txn.remote.ip());
                }
            }
            table.cancel(TimerKey::Transaction(id));
        }
    }

    /// Keeps the transaction open for its final response until Timer F, but sends the
    /// request no more (a shutdown gives up on a registrar that never answered, while a
    /// late answer must still be heard).
    pub fn stop_retransmitting(&mut self, id: u64, table: &mut TimerTable) {
        if let Some(txn) = self.by_id.get_mut(&id) {
            txn.retransmit_at = txn.timeout_at;
            table.set(TimerKey::Transaction(id), txn.timeout_at);
            // No longer on the path: it must not hold a place in the pacer's window.
            if !txn.lost {
                txn.lost = true;
                let remote = txn.remote;
                self.left_flight(remote);
            }
        }
    }

    /// Whether a live transaction waits for an answer from `ip`.
    pub fn awaits(&self, ip: IpAddr) -> bool {
        self.by_remote.contains_key(&ip)
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Transactions neither answered nor retransmitted: what the pacer's windows count.
    pub fn in_flight(&self) -> usize {
        self.in_flight.values().sum()
    }

    /// Those of them sent to `remote`.
    pub fn in_flight_to(&self, remote: SocketAddr) -> usize {
        self.in_flight.get(&remote).copied().unwrap_or(0)
    }

    /// The remotes whose count in flight changed since the last call (possibly
    /// repeated), for the pacer to re-read with [`Self::in_flight_to`].
    pub fn take_changed(&mut self) -> Vec<SocketAddr> {
        std::mem::take(&mut self.changed)
    }

    fn left_flight(&mut self, remote: SocketAddr) {
        if let Some(n) = self.in_flight.get_mut(&remote) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight.remove(&remote);
            }
        }
        self.changed.push(remote);
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
                let rtt = (!txn.lost).then_some(RttSample {
                    remote: txn.remote,
                    sent_at: txn.sent_at,
                });
                // Completed: forgotten at once (see the module docs on Timer K).
                self.abandon(id, table);
                Some(TxnAction::Notify {
                    owner,
                    id,
                    event: TxnEvent::Final(Box::new(response)),
                    rtt,
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
                rtt: None,
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
            // Only an unanswered request is a loss: after a provisional response the
            // registrar has it, and Timer E just keeps the transaction alive.
            let lost_since = (txn.state == State::Trying && !txn.lost).then_some(txn.sent_at);
            let (remote, payload) = (txn.remote, txn.request.clone());
            if lost_since.is_some() {
                txn.lost = true;
                self.left_flight(remote);
            }
            return Some(TxnAction::Send {
                remote,
                payload,
                lost_since,
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
    fn a_completed_transaction_is_forgotten_and_its_retransmissions_dropped() {
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
        assert!(txns.awaits(remote.ip()));
        assert!(!txns.awaits("192.0.2.2".parse().unwrap()));
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
        // Nothing is kept: no transaction, no branch, no timer.
        assert_eq!((txns.len(), txns.by_branch.len(), table.len()), (0, 0, 0));
        assert!(!txns.awaits(remote.ip()) && txns.by_remote.is_empty());
        // A retransmitted final response is not passed up again.
        assert!(txns
            .on_response(t1, &timers, &mut table, response("z9hG4bK-3", 200))
            .is_none());
    }

    #[test]
    fn the_first_retransmission_is_a_loss_and_leaves_the_window() {
        let timers = SipTimers::default();
        let mut table = TimerTable::default();
        let mut txns = Transactions::default();
        let t0 = Instant::now();
        let remote: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let start = |txns: &mut Transactions, table: &mut TimerTable, i: u32| {
            txns.start(
                t0,
                &timers,
                table,
                Owner::Registration(i),
                format!("z9hG4bK-{i}"),
                "REGISTER",
                remote,
                b"REGISTER sip:b SIP/2.0\r\n\r\n".to_vec(),
            )
        };
        let lost = start(&mut txns, &mut table, 0);
        start(&mut txns, &mut table, 1);
        assert_eq!(txns.in_flight(), 2);
        // Timer E, first firing: a loss, reported once, out of the window.
        let e1 = t0 + timers.t1;
        let act = txns.on_timer(lost, e1, &timers, &mut table);
        assert!(matches!(act, Some(TxnAction::Send { lost_since: Some(at), .. }) if at == t0));
        assert_eq!(txns.in_flight(), 1);
        let e2 = e1 + timers.t1 * 2;
        let act = txns.on_timer(lost, e2, &timers, &mut table);
        assert!(matches!(
            act,
            Some(TxnAction::Send {
                lost_since: None,
                ..
            })
        ));
        // Its late answer gives no round trip (Karn); the other's does.
        let at = e2 + Duration::from_millis(1);
        let late = txns.on_response(at, &timers, &mut table, response("z9hG4bK-0", 200));
        assert!(matches!(late, Some(TxnAction::Notify { rtt: None, .. })));
        let prompt = txns.on_response(at, &timers, &mut table, response("z9hG4bK-1", 200));
        assert!(matches!(
            prompt,
            Some(TxnAction::Notify { rtt: Some(RttSample { sent_at, .. }), .. }) if sent_at == t0
        ));
        assert_eq!(txns.in_flight(), 0);
    }
}
