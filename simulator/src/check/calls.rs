//! The call invariants (issue 9 §3), read from the datagrams between the core and the
//! call models with the checker's own SIP reader, and from the models' and the core's
//! state once the world has healed and converged:
//!
//! * every INVITE the core received (by source and branch) gets a final response from
//!   it;
//! * every 2xx a LiveKit model sent for an INVITE is ACKed by the core; every 2xx the
//!   core sent a provider is ACKed by the provider model, or the core ended that call
//!   with BYE;
//! * an INVITE from a source that is no provider's is never forwarded; each outbound
//!   leg has a fresh Call-ID (never an inbound one, never one of another call);
//! * CSeq grows within each dialog, per sender, as sent;
//! * after convergence no leg is up on one side only and the core holds no call and no
//!   call transaction.

use super::wire::{self, Scanned};
use super::{Findings, Invariant};
use crate::models::livekit::LiveKit;
use crate::models::provider::Provider;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// Which kind of call peer a datagram is from or to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    /// A provider model placing calls from its registrar's address.
    Caller,
    /// The model placing calls from an address that is no provider's.
    Stranger,
    /// A LiveKit model (the outbound leg's far end).
    Callee,
}

/// Who sent a request, for the CSeq order of a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Sender {
    Core,
    Peer(Side),
}

/// A Call-ID and an INVITE's CSeq number: which 2xx (and which ACK).
type InviteKey = (String, u32);

/// The call checks' memory of one run.
#[derive(Debug, Default, Clone)]
pub struct CallChecks {
    /// INVITEs the core received, by (source, branch): answered finally yet?
    server_invites: BTreeMap<(SocketAddr, String), bool>,
    /// 2xx a LiveKit model's INVITE answer delivered to the core: ACKed by the core yet?
    callee_2xx: BTreeMap<InviteKey, bool>,
    /// 2xx the core sent a caller: ACKed by the caller yet?
    caller_2xx: BTreeMap<InviteKey, bool>,
    /// Call-IDs of caller dialogs the core sent a BYE in.
    byes_to_caller: BTreeSet<String>,
    /// Call-IDs of every INVITE a provider model sent.
    inbound: BTreeSet<String>,
    /// Call-IDs of every INVITE the stranger sent.
    strangers: BTreeSet<String>,
    /// Outbound Call-ID → the inbound Call-ID it bridges (`X-Trunkline-Call-Id`).
    outbound: BTreeMap<String, String>,
    /// Per dialog and sender: the highest CSeq sent, and each transaction's (by
    /// branch) — a retransmission of an older one may come after a newer one.
    cseq: BTreeMap<(String, Sender), (u32, BTreeMap<String, u32>)>,
}

/// What the end-of-run check reads of the world.
#[derive(Debug)]
pub struct CallWorld<'a> {
    /// `Controller::active_calls()`.
    pub core_active: usize,
    /// `Controller::calls().len()`.
    pub core_views: usize,
    /// `Controller::call_transactions()`.
    pub core_transactions: usize,
    /// The provider models (and the stranger), by name.
    pub callers: Vec<(&'a str, &'a Provider)>,
    /// The LiveKit models, by name.
    pub callees: Vec<(&'a str, &'a LiveKit)>,
}

fn invite_key(m: &Scanned<'_>) -> Option<InviteKey> {
    Some((m.call_id()?.to_owned(), m.cseq()?.0))
}

fn is_to_invite(m: &Scanned<'_>) -> bool {
    m.cseq().is_some_and(|(_, method)| method == "INVITE")
}

/// The first few items of a list, for a violation's detail.
fn few<T: std::fmt::Debug>(items: &[T]) -> String {
    let shown: Vec<String> = items.iter().take(4).map(|i| format!("{i:?}")).collect();
    let more = items.len().saturating_sub(4);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// The keys of `map` whose condition is not met (`false`) and that `counts`.
fn unmet<K>(map: &BTreeMap<K, bool>, counts: impl Fn(&K) -> bool) -> Vec<&K> {
    map.iter()
        .filter(|(k, met)| !**met && counts(k))
        .map(|(k, _)| k)
        .collect()
}

impl CallChecks {
    /// A request as sent: CSeq must grow within its dialog for each new transaction of
    /// a sender (ACK and CANCEL carry the INVITE's number, a retransmission its own).
    fn check_cseq(&mut self, f: &mut Findings, sender: Sender, m: &Scanned<'_>) {
        let (Some(method), Some(call_id), Some((n, _)), Some(branch)) =
            (m.method(), m.call_id(), m.cseq(), m.branch())
        else {
            return;
        };
        if matches!(method, "ACK" | "CANCEL") {
            return;
        }
        let (highest, branches) = self
            .cseq
            .entry((call_id.to_owned(), sender))
            .or_insert_with(|| (0, BTreeMap::new()));
        let broken = match branches.get(branch) {
            // A retransmission keeps its transaction's number.
            Some(own) => (*own != n).then_some(*own),
            None => (n <= *highest && !branches.is_empty()).then_some(*highest),
        };
        if let Some(before) = broken {
            f.push(
                Invariant::CallCseqNotIncreasing,
                format!(
                    "{sender:?} sent {method} with CSeq {n} after CSeq {before} in dialog {call_id}"
                ),
            );
        }
        branches.entry(branch.to_owned()).or_insert(n);
        *highest = (*highest).max(n);
    }

    /// A datagram a call model sent (before the network decides its fate).
    pub fn on_peer_sends(&mut self, f: &mut Findings, side: Side, bytes: &[u8]) {
        let Some(m) = wire::scan(bytes) else {
            return;
        };
        self.check_cseq(f, Sender::Peer(side), &m);
        match (m.method(), side) {
            (Some("ACK"), Side::Caller) => {
                if let Some(acked) = invite_key(&m).and_then(|k| self.caller_2xx.get_mut(&k)) {
                    *acked = true;
                }
            }
            (Some("INVITE"), Side::Caller) => {
                if let Some(c) = m.call_id() {
                    self.inbound.insert(c.to_owned());
                }
            }
            (Some("INVITE"), Side::Stranger) => {
                if let Some(c) = m.call_id() {
                    self.strangers.insert(c.to_owned());
                }
            }
            _ => {}
        }
    }

    /// A datagram from a call model delivered to the core (before the core reads it).
    pub fn on_core_receives(&mut self, from: SocketAddr, side: Side, bytes: &[u8]) {
        let Some(m) = wire::scan(bytes) else {
            return;
        };
        match (m.method(), m.status()) {
            (Some("INVITE"), _) => {
                if let Some(b) = m.branch() {
                    self.server_invites
                        .entry((from, b.to_owned()))
                        .or_insert(false);
                }
            }
            (None, Some(200..=299)) if side == Side::Callee && is_to_invite(&m) => {
                if let Some(k) = invite_key(&m) {
                    self.callee_2xx.entry(k).or_insert(false);
                }
            }
            _ => {}
        }
    }

    /// A datagram the core sent to a call model.
    pub fn on_core_sends(&mut self, f: &mut Findings, to: SocketAddr, side: Side, bytes: &[u8]) {
        let Some(m) = wire::scan(bytes) else {
            return;
        };
        if let Some(status) = m.status() {
            if status >= 200 && is_to_invite(&m) {
                if let Some(answered) = m
                    .branch()
                    .and_then(|b| self.server_invites.get_mut(&(to, b.to_owned())))
                {
                    *answered = true;
                }
                if (200..300).contains(&status) && side != Side::Callee {
                    if let Some(k) = invite_key(&m) {
                        self.caller_2xx.entry(k).or_insert(false);
                    }
                }
            }
            return;
        }
        self.check_cseq(f, Sender::Core, &m);
        match (m.method(), side) {
            (Some("ACK"), Side::Callee) => {
                if let Some(acked) = invite_key(&m).and_then(|k| self.callee_2xx.get_mut(&k)) {
                    *acked = true;
                }
            }
            (Some("BYE"), Side::Caller | Side::Stranger) => {
                if let Some(c) = m.call_id() {
                    self.byes_to_caller.insert(c.to_owned());
                }
            }
            (Some("INVITE"), Side::Callee)
                if m.header("To").is_some_and(|t| !t.contains("tag=")) =>
            {
                self.on_outbound_invite(f, &m);
            }
            _ => {}
        }
    }

    /// An INVITE the core sent a LiveKit model outside any dialog: a new outbound leg
    /// (or its retransmission, or its re-sending with credentials).
    fn on_outbound_invite(&mut self, f: &mut Findings, m: &Scanned<'_>) {
        let Some(call_id) = m.call_id() else {
            return;
        };
        let bridged = m.header("X-Trunkline-Call-Id").unwrap_or_default();
        if self.strangers.contains(bridged) {
            f.push(
                Invariant::StrangerForwarded,
                format!("the stranger's INVITE {bridged} was forwarded as {call_id}"),
            );
        } else if !self.inbound.contains(bridged) {
            f.push(
                Invariant::StrangerForwarded,
                format!("INVITE {call_id} sent to a destination bridges {bridged:?}, which no provider sent"),
            );
        }
        if self.inbound.contains(call_id) || self.strangers.contains(call_id) {
            f.push(
                Invariant::OutboundCallIdReused,
                format!("the outbound leg reuses the inbound Call-ID {call_id}"),
            );
        }
        match self.outbound.get(call_id) {
            Some(earlier) if earlier != bridged => f.push(
                Invariant::OutboundCallIdReused,
                format!("Call-ID {call_id} bridged {earlier} and now {bridged}"),
            ),
            Some(_) => {}
            None => {
                self.outbound.insert(call_id.to_owned(), bridged.to_owned());
            }
        }
    }

    /// After heal and convergence: every INVITE answered, every 2xx ACKed, no leg up
    /// on one side only, nothing left in the core.
    pub fn check_end(&self, f: &mut Findings, world: &CallWorld<'_>) {
        let open = unmet(&self.server_invites, |_| true);
        if !open.is_empty() {
            f.push(
                Invariant::InviteUnanswered,
                format!(
                    "{} INVITE(s) got no final response: {}",
                    open.len(),
                    few(&open)
                ),
            );
        }
        let unacked = unmet(&self.callee_2xx, |_| true);
        if !unacked.is_empty() {
            f.push(
                Invariant::CalleeOkNotAcked,
                format!(
                    "the core never ACKed the destination's 2xx of {}",
                    few(&unacked)
                ),
            );
        }
        let unacked = unmet(&self.caller_2xx, |(call_id, _)| {
            !self.byes_to_caller.contains(call_id)
        });
        if !unacked.is_empty() {
            f.push(
                Invariant::CallerOkNotAcked,
                format!(
                    "2xx sent to the caller neither ACKed nor followed by the core's BYE: {}",
                    few(&unacked)
                ),
            );
        }
        let mut up: Vec<String> = Vec::new();
        for (name, p) in &world.callers {
            let n = p.active_calls();
            if n > 0 {
                let ids: Vec<&str> = p
                    .calls()
                    .filter(|c| c.outcome.is_none())
                    .map(|c| c.call_id.as_str())
                    .collect();
                up.push(format!("{name}: {n} call(s) up {ids:?}"));
            }
        }
        for (name, lk) in &world.callees {
            let n = lk.active_calls();
            if n > 0 {
                up.push(format!("{name}: {n} call(s) up"));
            }
        }
        if world.core_active > 0 || world.core_views > 0 {
            up.push(format!(
                "the core: {} call(s) ({} shown)",
                world.core_active, world.core_views
            ));
        }
        if !up.is_empty() {
            f.push(Invariant::OrphanLeg, up.join("; "));
        }
        if world.core_transactions > 0 {
            f.push(
                Invariant::CallsUnbounded,
                format!(
                    "{} call transaction(s) still live with no call up",
                    world.core_transactions
                ),
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const CORE: &str = "192.0.2.1:5060";

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn invite(call_id: &str, branch: &str, cseq: u32, extra: &str) -> Vec<u8> {
        format!(
            "INVITE sip:+1555@{CORE} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch={branch}\r\n\
             From: <sip:a@x>;tag=f\r\nTo: <sip:+1555@x>\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn response(status: &str, call_id: &str, branch: &str, cseq: u32, method: &str) -> Vec<u8> {
        format!(
            "SIP/2.0 {status}\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch={branch}\r\n\
             From: <sip:a@x>;tag=f\r\nTo: <sip:+1555@x>;tag=t\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn request(method: &str, call_id: &str, branch: &str, cseq: u32) -> Vec<u8> {
        format!(
            "{method} sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch={branch}\r\n\
             From: <sip:a@x>;tag=f\r\nTo: <sip:+1555@x>;tag=t\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn empty_world() -> CallWorld<'static> {
        CallWorld {
            core_active: 0,
            core_views: 0,
            core_transactions: 0,
            callers: Vec::new(),
            callees: Vec::new(),
        }
    }

    fn names(f: &Findings) -> Vec<Invariant> {
        f.list().iter().map(|v| v.invariant).collect()
    }

    #[test]
    fn an_invite_without_a_final_is_found_and_a_final_clears_it() {
        let caller = addr("10.0.0.1:5070");
        let mut c = CallChecks::default();
        let mut f = Findings::default();
        c.on_core_receives(caller, Side::Caller, &invite("in1", "z9hG4bKa", 1, ""));
        c.on_core_sends(
            &mut f,
            caller,
            Side::Caller,
            &response("100 Trying", "in1", "z9hG4bKa", 1, "INVITE"),
        );
        c.check_end(&mut f, &empty_world());
        assert_eq!(names(&f), [Invariant::InviteUnanswered]);
        let mut f = Findings::default();
        c.on_core_sends(
            &mut f,
            caller,
            Side::Caller,
            &response("486 Busy Here", "in1", "z9hG4bKa", 1, "INVITE"),
        );
        c.check_end(&mut f, &empty_world());
        assert!(f.is_empty(), "{:?}", f.list());
    }

    #[test]
    fn unacked_2xx_on_either_leg_are_found() {
        let caller = addr("10.0.0.1:5070");
        let lk = addr("10.1.0.1:5080");
        let mut c = CallChecks::default();
        let mut f = Findings::default();
        c.on_core_receives(
            lk,
            Side::Callee,
            &response("200 OK", "out1", "z9hG4bKo", 1, "INVITE"),
        );
        c.on_core_sends(
            &mut f,
            caller,
            Side::Caller,
            &response("200 OK", "in1", "z9hG4bKa", 1, "INVITE"),
        );
        c.check_end(&mut f, &empty_world());
        assert_eq!(
            names(&f),
            [Invariant::CalleeOkNotAcked, Invariant::CallerOkNotAcked]
        );
        // The core's ACK and the caller's ACK clear both; so would the core's BYE.
        let mut f = Findings::default();
        c.on_core_sends(
            &mut f,
            lk,
            Side::Callee,
            &request("ACK", "out1", "z9hG4bKk", 1),
        );
        c.on_peer_sends(&mut f, Side::Caller, &request("ACK", "in1", "z9hG4bKl", 1));
        c.check_end(&mut f, &empty_world());
        assert!(f.is_empty(), "{:?}", f.list());
    }

    #[test]
    fn a_forwarded_stranger_and_a_reused_call_id_are_found() {
        let lk = addr("10.1.0.1:5080");
        let mut c = CallChecks::default();
        let mut f = Findings::default();
        c.on_peer_sends(&mut f, Side::Stranger, &invite("evil", "z9hG4bKs", 1, ""));
        c.on_peer_sends(&mut f, Side::Caller, &invite("in1", "z9hG4bKa", 1, ""));
        c.on_core_sends(
            &mut f,
            lk,
            Side::Callee,
            &invite("out1", "z9hG4bKo", 1, "X-Trunkline-Call-Id: evil\r\n"),
        );
        assert_eq!(names(&f), [Invariant::StrangerForwarded]);
        let mut f = Findings::default();
        c.on_core_sends(
            &mut f,
            lk,
            Side::Callee,
            &invite("in1", "z9hG4bKp", 1, "X-Trunkline-Call-Id: in1\r\n"),
        );
        assert_eq!(names(&f), [Invariant::OutboundCallIdReused]);
        // A Call-ID of one bridge used for another inbound call.
        let mut f = Findings::default();
        c.on_peer_sends(&mut f, Side::Caller, &invite("in2", "z9hG4bKb", 1, ""));
        c.on_core_sends(
            &mut f,
            lk,
            Side::Callee,
            &invite("out2", "z9hG4bKq", 1, "X-Trunkline-Call-Id: in1\r\n"),
        );
        c.on_core_sends(
            &mut f,
            lk,
            Side::Callee,
            &invite("out2", "z9hG4bKr", 2, "X-Trunkline-Call-Id: in2\r\n"),
        );
        assert_eq!(names(&f), [Invariant::OutboundCallIdReused]);
    }

    #[test]
    fn cseq_must_grow_per_sender_and_retransmissions_keep_theirs() {
        let lk = addr("10.1.0.1:5080");
        let mut c = CallChecks::default();
        let mut f = Findings::default();
        c.on_core_sends(
            &mut f,
            lk,
            Side::Callee,
            &request("BYE", "d1", "z9hG4bK1", 3),
        );
        c.on_core_sends(
            &mut f,
            lk,
            Side::Callee,
            &request("BYE", "d1", "z9hG4bK1", 3),
        );
        // The other direction has its own numbers.
        c.on_peer_sends(&mut f, Side::Callee, &request("REFER", "d1", "z9hG4bK9", 1));
        assert!(f.is_empty(), "{:?}", f.list());
        // An older transaction's retransmission after a newer request is fine.
        c.on_core_sends(
            &mut f,
            lk,
            Side::Callee,
            &request("INFO", "d1", "z9hG4bK2", 4),
        );
        c.on_core_sends(
            &mut f,
            lk,
            Side::Callee,
            &request("BYE", "d1", "z9hG4bK1", 3),
        );
        assert!(f.is_empty(), "{:?}", f.list());
        c.on_core_sends(
            &mut f,
            lk,
            Side::Callee,
            &request("INFO", "d1", "z9hG4bK3", 4),
        );
        assert_eq!(names(&f), [Invariant::CallCseqNotIncreasing]);
    }

    #[test]
    fn a_call_left_in_the_core_is_an_orphan_and_live_transactions_are_unbounded() {
        let c = CallChecks::default();
        let mut f = Findings::default();
        let world = CallWorld {
            core_active: 1,
            core_views: 1,
            core_transactions: 2,
            ..empty_world()
        };
        c.check_end(&mut f, &world);
        assert_eq!(names(&f), [Invariant::OrphanLeg, Invariant::CallsUnbounded]);
    }
}
