//! What must hold of the calls on a tape (issue 9 §3), checked on every message the
//! core sends and at the end of the run:
//!
//! * every request the core sends has a `z9hG4bK` branch, Max-Forwards, a From tag, a
//!   Call-ID and a CSeq naming its own method; per dialog direction (Call-ID, From
//!   tag, To tag) a new request counts its CSeq up from the INVITE's, and a
//!   retransmission is the first send's bytes;
//! * an INVITE the core originates names, in `X-Trunkline-Call-Id`, a call that came
//!   from an admitted source (never the stranger's), under a Call-ID of its own that is
//!   no caller's and serves that one call only;
//! * every server INVITE transaction the core answered at all ends with a final
//!   response (the last one the core sent for its Call-ID and branch is final);
//! * every 2xx the destination gave the core's INVITE, while that INVITE's client
//!   transaction can still be there (64·T1 from its first send), is ACKed, fork by
//!   fork (each To tag is a dialog of its own);
//! * after the shutdown, no call is left.

use sip_core::message::{Request, Response};
use sip_core::Controller;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How long after its first send an INVITE client transaction surely still exists:
/// Timer B (64·T1 with T1 = 500 ms) ends it at the earliest, at that very instant. A 2xx
/// after that matches no transaction and is dropped as a stray: answering a stray 2xx
/// with ACK and BYE to its Contact would let anyone aim our requests at any address.
const INVITE_TXN_LIFETIME: Duration = Duration::from_secs(32);

/// Record sets are cleared past this many entries, so a long tape stays cheap.
const MAX_RECORDS: usize = 4096;

/// A dialog's direction: (Call-ID, From tag, To tag or empty before the dialog).
type DialogKey = (String, String, String);

/// A 2xx's dialog: (Call-ID, CSeq number, To tag).
type AnswerKey = (String, u32, String);

/// The records the call invariants need.
#[derive(Debug, Default)]
pub struct CallChecks {
    /// Call-IDs (sanitised) of the INVITEs delivered from an admitted source.
    admitted: BTreeSet<String>,
    /// Call-IDs of every INVITE delivered, from any source.
    inbound: BTreeSet<String>,
    /// The core's outbound Call-IDs and the inbound Call-ID each one serves.
    outbound: BTreeMap<String, String>,
    /// The core's INVITEs by (Call-ID, CSeq): when first sent.
    invites_sent: BTreeMap<(String, u32), Instant>,
    /// Server INVITE transactions by (Call-ID, branch): the last status the core sent.
    server_invites: BTreeMap<(String, String), u16>,
    /// 2xx answers the core must ACK.
    answers: BTreeSet<AnswerKey>,
    /// The core's INVITEs (Call-ID, CSeq) a final error was delivered for.
    refused: BTreeSet<(String, u32)>,
    /// ACKs the core sent.
    acks: BTreeSet<AnswerKey>,
    /// Per dialog direction: the CSeq and branch of the newest request.
    cseqs: BTreeMap<DialogKey, (u32, String)>,
    /// Per (branch, method): the bytes of the first send.
    first_sends: BTreeMap<(String, String), Vec<u8>>,
}

/// `value` with what the core's builder would strip (controls, CR/LF) removed, so a
/// Call-ID compares as the core can have copied it.
fn sanitised(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_owned()
}

impl CallChecks {
    /// A request delivered to the core from an admitted source or not.
    pub fn delivered_request(&mut self, admitted: bool, req: &Request) {
        if req.method != "INVITE" || req.headers.to_tag().is_some() {
            return;
        }
        let Some(call_id) = req.headers.call_id() else {
            return;
        };
        if self.inbound.len() > MAX_RECORDS {
            self.inbound.clear();
        }
        self.inbound.insert(call_id.to_owned());
        if admitted {
            self.admitted.insert(sanitised(call_id));
        }
    }

    /// A response delivered to the core. Only an unmutated 2xx to an INVITE the core
    /// sent within the transaction's lifetime must be ACKed: a mutated one may no
    /// longer match the transaction, and a late one matches none.
    ///
    /// A 2xx after a final error to the same INVITE (a proxy forwarding a late branch
    /// statelessly) finds its transaction Completed, which absorbs only 300–699 (RFC
    /// 6026 §7.2): it is a stray, not owed an ACK.
    pub fn delivered_response(&mut self, resp: &Response, now: Instant, unmutated: bool) {
        let (Some(call_id), Some((cseq, "INVITE"))) = (resp.headers.call_id(), resp.headers.cseq())
        else {
            return;
        };
        let invite = (call_id.to_owned(), cseq);
        if resp.status >= 300 {
            self.refused.insert(invite);
            return;
        }
        let Some(tag) = resp.headers.to_tag() else {
            return;
        };
        if !unmutated || resp.status < 200 || self.refused.contains(&invite) {
            return;
        }
        let fresh = self
            .invites_sent
            .get(&invite)
            .is_some_and(|sent| now < *sent + INVITE_TXN_LIFETIME);
        if fresh {
            self.answers
                .insert((call_id.to_owned(), cseq, tag.to_owned()));
        }
    }

    /// A response the core sent.
    pub fn sent_response(&mut self, resp: &Response) {
        let (Some(call_id), Some((_, "INVITE"))) = (resp.headers.call_id(), resp.headers.cseq())
        else {
            return;
        };
        let branch = resp
            .headers
            .top_via()
            .and_then(|v| v.branch)
            .unwrap_or_default();
        self.server_invites
            .insert((call_id.to_owned(), branch), resp.status);
    }

    /// A request the core sent; panics on a broken rule.
    pub fn sent_request(&mut self, req: &Request, payload: &[u8], now: Instant) {
        let h = &req.headers;
        let (Some(call_id), Some((cseq, method)), Some(branch), Some(from_tag)) = (
            h.call_id(),
            h.cseq(),
            h.top_via().and_then(|v| v.branch),
            h.from_tag(),
        ) else {
            panic!(
                "a {} without Call-ID, CSeq, Via branch or From tag: {req:?}",
                req.method
            );
        };
        assert_eq!(method, req.method, "the CSeq method of a {}", req.method);
        assert!(
            branch.starts_with("z9hG4bK"),
            "the {} branch {branch:?} lacks the magic cookie",
            req.method
        );
        assert!(
            h.get("Max-Forwards").is_some(),
            "a {} without Max-Forwards",
            req.method
        );
        let key = (branch.clone(), req.method.clone());
        if let Some(first) = self.first_sends.get(&key) {
            assert_eq!(
                first.as_slice(),
                payload,
                "a retransmitted {} differs from its first send (branch {branch})",
                req.method
            );
            return;
        }
        if self.first_sends.len() > MAX_RECORDS {
            self.first_sends.clear();
        }
        self.first_sends.insert(key, payload.to_vec());
        match req.method.as_str() {
            "ACK" => {
                if let Some(tag) = h.to_tag() {
                    self.acks.insert((call_id.to_owned(), cseq, tag.to_owned()));
                }
                return;
            }
            // A CANCEL repeats its INVITE's CSeq.
            "CANCEL" => return,
            _ => {}
        }
        // Forks share Call-ID and From tag: the To tag tells their dialogs apart, and
        // each dialog counts on from the INVITE that opened it.
        let to_tag = h.to_tag().unwrap_or_default();
        let setup = (call_id.to_owned(), from_tag.to_owned(), String::new());
        let dialog = (call_id.to_owned(), from_tag.to_owned(), to_tag.to_owned());
        let last = [&setup, &dialog]
            .into_iter()
            .filter_map(|k| self.cseqs.get(k).map(|(n, _)| *n))
            .max();
        if let Some(last) = last {
            assert!(
                cseq > last,
                "{} CSeq {cseq} after {last} in dialog {call_id} (From tag {from_tag}, To tag \
                 {to_tag:?}): a new request must count up",
                req.method
            );
        }
        if self.cseqs.len() > MAX_RECORDS {
            self.cseqs.clear();
        }
        self.cseqs.insert(dialog, (cseq, branch));
        if req.method == "INVITE" {
            self.invites_sent
                .entry((call_id.to_owned(), cseq))
                .or_insert(now);
            if h.to_tag().is_none() {
                self.outbound_invite(req, call_id);
            }
        }
    }

    /// An INVITE the core originates: for an admitted call, under a Call-ID of its own.
    fn outbound_invite(&mut self, req: &Request, call_id: &str) {
        let Some(serves) = req.headers.get("X-Trunkline-Call-Id") else {
            panic!("an outbound INVITE without X-Trunkline-Call-Id: {req:?}");
        };
        assert!(
            self.admitted.contains(&sanitised(serves)),
            "an INVITE forwarded for call {serves:?}, which no admitted source sent \
             (admitted: {:?})",
            self.admitted
        );
        assert!(
            !self.inbound.contains(call_id),
            "the outbound leg reuses the caller's Call-ID {call_id:?}"
        );
        let previous = self
            .outbound
            .entry(call_id.to_owned())
            .or_insert_with(|| serves.to_owned());
        assert_eq!(
            previous, serves,
            "outbound Call-ID {call_id:?} serves two calls"
        );
    }

    /// At the end of the run, after the shutdown completed.
    pub fn at_end(&self, core: &Controller) {
        for ((call_id, branch), status) in &self.server_invites {
            assert!(
                *status >= 200,
                "the INVITE {call_id} (branch {branch}) never got a final response: the \
                 last the core sent was {status}"
            );
        }
        for answer in &self.answers {
            assert!(
                self.acks.contains(answer),
                "a 2xx (Call-ID {}, CSeq {}, To tag {}) was never ACKed",
                answer.0,
                answer.1,
                answer.2
            );
        }
        assert_eq!(core.active_calls(), 0, "calls left after the shutdown");
        assert!(core.calls().is_empty(), "calls listed after the shutdown");
    }
}
