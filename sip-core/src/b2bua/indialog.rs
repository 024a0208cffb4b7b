//! Requests inside an established call other than BYE and ACK — re-INVITE (hold,
//! resume, session refresh), UPDATE, INFO (DTMF), OPTIONS, REFER (LiveKit's transfer),
//! NOTIFY, MESSAGE — carried from one leg into the other dialog, with their bodies, and
//! their answers carried back.
//!
//! One re-INVITE at a time per call: a second while one is under way, from either
//! side, gets `491 Request Pending` (RFC 3261 §14.2). A 2xx to a relayed re-INVITE is
//! ACKed by us towards the side that answered and resent to the side that asked until
//! its ACK, as for the first INVITE. A `481` or `408` to a relayed request, or no
//! answer at all, means the other side has lost the call: it ends on both sides.

use super::call::{Call, CalleeLeg, CallerLeg, UNAVAILABLE};
use super::relay;
use crate::ctx::Ctx;
use crate::message::{self, response_to, Request, Response};
use crate::transaction::{Leg, Owner, TxnEvent};
use crate::transport::Link;
use std::time::Instant;

/// A request relayed from one leg to the other, waiting for its answer.
#[derive(Debug, Clone)]
pub struct Relay {
    /// Our client transaction towards the other leg.
    pub client: u64,
    /// The server transaction of the original request.
    pub server: u64,
    /// The leg the request came from.
    pub from: Leg,
    /// Where it came from (a 2xx to a re-INVITE is resent there).
    pub source: Link,
    /// The original request, to answer it.
    pub request: Request,
}

impl Call {
    /// An in-dialog request from `from` (server transaction `txn`, from `source`).
    pub(super) fn on_in_dialog(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        from: Leg,
        txn: u64,
        source: Link,
        req: &Request,
    ) {
        if req.method == "BYE" {
            self.on_bye(now, ctx, from, txn, req);
            return;
        }
        let cseq = req.headers.cseq().map_or(0, |(n, _)| n);
        let (origin, target) = match from {
            Leg::Caller => (self.caller_dialog.as_mut(), self.callee_dialog.as_mut()),
            Leg::Callee => (self.callee_dialog.as_mut(), self.caller_dialog.as_mut()),
        };
        let other_up = match from {
            Leg::Caller => self.callee == CalleeLeg::Up,
            Leg::Callee => matches!(self.caller, CallerLeg::Answered | CallerLeg::Up),
        };
        let (Some(origin), Some(target), true) = (origin, target, other_up) else {
            answer(now, ctx, txn, req, 481, "Call/Transaction Does Not Exist");
            return;
        };
        if !origin.accept_cseq(cseq) {
            answer(
                now,
                ctx,
                txn,
                req,
                500,
                "Server Internal Error: CSeq out of order",
            );
            return;
        }
        let is_invite = req.method == "INVITE";
        if is_invite && self.relays.iter().any(|r| r.request.method == "INVITE") {
            answer(now, ctx, txn, req, 491, "Request Pending");
            return;
        }
        let to = match from {
            Leg::Caller => Leg::Callee,
            Leg::Callee => Leg::Caller,
        };
        let branch = ctx.ids.branch();
        let bytes = relay::request(target, req, &branch).to_bytes();
        let next_hop = target.next_hop;
        let owner = Owner::Leg {
            call: self.id,
            leg: to,
        };
        let timers = ctx.cfg.timers;
        let client = if is_invite {
            let Ok(message::Message::Request(parsed)) = message::parse(&bytes) else {
                answer(now, ctx, txn, req, 500, "Server Internal Error");
                return;
            };
            ctx.txns.start_invite(
                now,
                &timers,
                &mut ctx.timers,
                owner,
                branch,
                parsed,
                next_hop,
                bytes.clone(),
            )
        } else {
            ctx.txns.start(
                now,
                &timers,
                &mut ctx.timers,
                owner,
                branch,
                &req.method,
                next_hop,
                bytes.clone(),
            )
        };
        ctx.txns.set_owner(
            txn,
            Owner::Leg {
                call: self.id,
                leg: from,
            },
        );
        ctx.transmit(next_hop, bytes);
        self.relays.push(Relay {
            client,
            server: txn,
            from,
            source,
            request: req.clone(),
        });
    }

    /// Whether client transaction `id` is a relayed request's.
    pub(super) fn is_relay(&self, id: u64) -> bool {
        self.relays.iter().any(|r| r.client == id)
    }

    /// The answer to relayed request `id` (or its timeout).
    pub(super) fn on_relay_event(&mut self, now: Instant, ctx: &mut Ctx, id: u64, event: TxnEvent) {
        let Some(pos) = self.relays.iter().position(|r| r.client == id) else {
            return;
        };
        let resp = match event {
            TxnEvent::Provisional(resp) if resp.status > 100 => resp,
            TxnEvent::Provisional(_) => return,
            TxnEvent::Final(resp) => resp,
            TxnEvent::Timeout | TxnEvent::NoAck | TxnEvent::TransportError(_) => {
                let r = self.relays.remove(pos);
                let method = &r.request.method;
                let (status, reason, why) = match event {
                    TxnEvent::TransportError(e) => (
                        503,
                        "Service Unavailable",
                        format!("the connection for a relayed {method} failed: {e}"),
                    ),
                    _ => (
                        408,
                        "Request Timeout",
                        format!("no answer to a relayed {method}"),
                    ),
                };
                answer(now, ctx, r.server, &r.request, status, reason);
                self.hang_up(now, ctx, UNAVAILABLE, why);
                return;
            }
        };
        let Some(r) = self.relays.get(pos).cloned() else {
            return;
        };
        let is_invite = r.request.method == "INVITE";
        if resp.status >= 200 {
            self.relays.remove(pos);
        }
        let answered = match r.from {
            Leg::Caller => Leg::Callee,
            Leg::Callee => Leg::Caller,
        };
        let contact = match r.from {
            Leg::Caller => self.caller_dialog.as_ref().map(|d| d.contact()),
            Leg::Callee => self.callee_dialog.as_ref().map(|d| d.contact()),
        };
        let success = (200..300).contains(&resp.status);
        let contact = contact.filter(|_| success || resp.status > 100);
        let bytes = relay::response(
            &r.request,
            &resp,
            resp.status,
            &resp.reason,
            &self.tag,
            contact.as_deref(),
        )
        .to_bytes();
        ctx.respond(now, r.server, resp.status, bytes.clone());
        if is_invite && success {
            self.reinvite_answered(now, ctx, &r, answered, &resp, bytes);
        }
        if matches!(resp.status, 408 | 481) {
            let why = format!(
                "a relayed {} got {} {}: the other side lost the call",
                r.request.method, resp.status, resp.reason
            );
            self.hang_up(now, ctx, UNAVAILABLE, why);
        }
    }

    /// A relayed re-INVITE was answered 2xx by `answered`: ACK it (now, or with the
    /// answer from the asking side's ACK when the re-INVITE made no offer) and resend
    /// our 2xx (`bytes`) to the asking side until it ACKs.
    fn reinvite_answered(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        r: &Relay,
        answered: Leg,
        resp: &Response,
        bytes: Vec<u8>,
    ) {
        let cseq = resp.headers.cseq().map_or(0, |(n, _)| n);
        if r.request.body.is_empty() {
            self.pending_ack = Some(super::call::PendingAck { to: answered, cseq });
        } else {
            self.send_ack(ctx, answered, cseq, Vec::new());
        }
        let asked = r.request.headers.cseq().map_or(0, |(n, _)| n);
        self.start_resend(now, ctx, r.from, r.source, bytes, asked);
    }
}

/// Our own answer to an in-dialog request (server transaction `txn`).
fn answer(now: Instant, ctx: &mut Ctx, txn: u64, req: &Request, status: u16, reason: &str) {
    let bytes = response_to(req, status, reason, None).to_bytes();
    ctx.respond(now, txn, status, bytes);
}
