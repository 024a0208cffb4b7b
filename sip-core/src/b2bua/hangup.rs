//! How a call ends: the caller's CANCEL, a BYE from either side, the ACK that confirms
//! an answer, and our own hang-ups (limits, drain, the admin API).
//!
//! RFC 3261 §9.1: a CANCEL may only follow a provisional response, so when the caller
//! cancels before the callee said anything the CANCEL waits for its first provisional
//! (or Timer B ends our INVITE). A callee that answers after we cancelled is ACKed and
//! sent a BYE at once (the CANCEL/2xx race). A BYE from one side is answered `200` and
//! carried to the other; the call is over when each leg's BYE was answered or timed out.

use super::call::{Call, CalleeLeg, CallerLeg, Cancel};
use crate::ctx::Ctx;
use crate::message::{response_to, Request};
use crate::transaction::{Leg, Owner, TxnEvent};
use std::time::Instant;

impl Call {
    /// Stops our INVITE towards the callee, which has no final answer: CANCEL now if it
    /// sent a provisional, else as soon as it sends one; nothing was sent yet while the
    /// route or address is looked up.
    pub(super) fn abort_callee(&mut self, now: Instant, ctx: &mut Ctx) {
        match self.callee {
            CalleeLeg::Routing | CalleeLeg::Resolving => self.callee = CalleeLeg::Done,
            CalleeLeg::Inviting {
                provisional: true,
                cancel: Cancel::No,
                ..
            } => self.send_cancel(now, ctx),
            CalleeLeg::Inviting {
                txn,
                provisional: false,
                cancel: Cancel::No,
            } => {
                self.callee = CalleeLeg::Inviting {
                    txn,
                    provisional: false,
                    cancel: Cancel::Pending,
                };
            }
            CalleeLeg::Inviting { .. }
            | CalleeLeg::Up
            | CalleeLeg::Closing(_)
            | CalleeLeg::Done => {}
        }
    }

    /// Ends the call on both legs, whatever its state, because of `why`. Before an
    /// answer the caller gets `status` (e.g. `503` while draining).
    pub(super) fn hang_up(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        status: (u16, &str),
        why: String,
    ) {
        self.set_end_reason(why.clone());
        if self.caller == CallerLeg::Inviting {
            self.abort_callee(now, ctx);
            self.reject(now, ctx, status.0, status.1, "failed", why);
            return;
        }
        for leg in [Leg::Caller, Leg::Callee] {
            self.bye(now, ctx, leg);
        }
    }

    /// The end of a shutdown came before this call's legs finished. A CANCEL held
    /// back for want of a provisional goes now, best effort (RFC 3261 §9.1's "SHOULD
    /// NOT" guards against overtaking the INVITE; no one will be there to wait), and
    /// the call is over whatever its legs' state.
    pub(super) fn abandon(&mut self, now: Instant, ctx: &mut Ctx) {
        let why = "the shutdown ended before both legs did".to_owned();
        if self.caller == CallerLeg::Inviting {
            let status = (503, "Service Unavailable: shutting down");
            self.hang_up(now, ctx, status, why.clone());
        }
        if matches!(
            self.callee,
            CalleeLeg::Inviting {
                cancel: Cancel::Pending,
                ..
            }
        ) {
            self.send_cancel(now, ctx);
        }
        self.set_end_reason(why);
        self.caller = CallerLeg::Done;
        self.callee = CalleeLeg::Done;
    }

    /// The reason of an answered call's end (the first one wins).
    pub(super) fn set_end_reason(&mut self, why: String) {
        if let Some(o) = self.outcome.as_mut() {
            if o.reason.is_empty() {
                o.reason = why;
            }
        }
    }

    /// Sends a BYE to `leg` if its dialog is up; the leg is then `Closing` until the
    /// BYE is answered or times out.
    pub(super) fn bye(&mut self, now: Instant, ctx: &mut Ctx, leg: Leg) {
        let up = match leg {
            Leg::Caller => matches!(self.caller, CallerLeg::Answered | CallerLeg::Up),
            Leg::Callee => self.callee == CalleeLeg::Up,
        };
        if !up {
            return;
        }
        if self.resend.as_ref().is_some_and(|r| r.leg == leg) {
            self.stop_resend(ctx);
        }
        // A 2xx of `leg` still waiting for the other side's ACK (its answer to a late
        // offer) is ACKed first, bodiless: every 2xx gets its ACK (RFC 3261 §13.2.2.4),
        // and a BYE before it would leave `leg` resending the 2xx.
        if let Some(p) = self.pending_ack.filter(|p| p.to == leg) {
            self.pending_ack = None;
            self.send_ack(ctx, p.to, p.cseq, Vec::new());
        }
        let branch = ctx.ids.branch();
        let dialog = match leg {
            Leg::Caller => self.caller_dialog.as_mut(),
            Leg::Callee => self.callee_dialog.as_mut(),
        };
        let Some(d) = dialog else {
            self.leg_done(leg);
            return;
        };
        let bytes = d.request("BYE", &branch).to_bytes();
        let to = d.next_hop;
        let owner = Owner::Leg { call: self.id, leg };
        let txn = ctx.txns.start(
            now,
            &ctx.cfg.timers,
            &mut ctx.timers,
            owner,
            branch,
            "BYE",
            to,
            bytes.clone(),
        );
        ctx.transmit(to, bytes);
        match leg {
            Leg::Caller => self.caller = CallerLeg::Closing(txn),
            Leg::Callee => self.callee = CalleeLeg::Closing(txn),
        }
    }

    fn leg_done(&mut self, leg: Leg) {
        match leg {
            Leg::Caller => self.caller = CallerLeg::Done,
            Leg::Callee => self.callee = CalleeLeg::Done,
        }
    }

    /// The caller's CANCEL (server transaction `txn`): `200` to it, and before an
    /// answer `487` to the INVITE and our INVITE cancelled.
    pub(super) fn on_cancel(&mut self, now: Instant, ctx: &mut Ctx, txn: u64, cancel: &Request) {
        let ok = response_to(cancel, 200, "OK", Some(&self.tag)).to_bytes();
        ctx.respond(now, txn, 200, ok);
        if self.caller != CallerLeg::Inviting {
            return;
        }
        self.abort_callee(now, ctx);
        let why = "the caller cancelled before the answer".to_owned();
        self.reject(now, ctx, 487, "Request Terminated", "cancelled", why);
    }

    /// A BYE from `from` (server transaction `txn`): `200`, and a BYE to the other leg.
    pub(super) fn on_bye(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        from: Leg,
        txn: u64,
        bye: &Request,
    ) {
        let up = match from {
            Leg::Caller => !matches!(self.caller, CallerLeg::Done),
            Leg::Callee => matches!(self.callee, CalleeLeg::Up | CalleeLeg::Closing(_)),
        };
        let (status, reason) = if up {
            (200, "OK")
        } else {
            (481, "Call/Transaction Does Not Exist")
        };
        let bytes = response_to(bye, status, reason, None).to_bytes();
        ctx.respond(now, txn, status, bytes);
        if !up {
            return;
        }
        let who = match from {
            Leg::Caller => "the caller hung up",
            Leg::Callee => "the destination hung up",
        };
        self.set_end_reason(who.to_owned());
        if from == Leg::Caller && self.caller == CallerLeg::Inviting {
            // A BYE in the early dialog (RFC 3261 §15 allows the caller one).
            self.abort_callee(now, ctx);
            self.reject(
                now,
                ctx,
                487,
                "Request Terminated",
                "cancelled",
                who.to_owned(),
            );
            return;
        }
        // A 2xx of the leg hanging up may still wait for its ACK (a late offer: the
        // ACK carries the other side's answer, which will not come now). It gets one,
        // without a body, or it would resend its 2xx until its Timer H.
        if let Some(p) = self.pending_ack.filter(|p| p.to == from) {
            self.pending_ack = None;
            self.send_ack(ctx, p.to, p.cseq, Vec::new());
        }
        self.leg_done(from);
        let other = match from {
            Leg::Caller => Leg::Callee,
            Leg::Callee => Leg::Caller,
        };
        if other == Leg::Callee && matches!(self.callee, CalleeLeg::Inviting { .. }) {
            self.abort_callee(now, ctx);
        }
        self.bye(now, ctx, other);
    }

    /// An ACK from `from` for a 2xx of ours: stops its resending; the first confirms
    /// the call, and one that carries the answer to a 2xx's offer is passed on.
    pub(super) fn on_ack(&mut self, ctx: &mut Ctx, from: Leg, ack: &Request) {
        let cseq = ack.headers.cseq().map_or(0, |(n, _)| n);
        if self
            .resend
            .as_ref()
            .is_some_and(|r| r.leg == from && r.cseq == cseq)
        {
            self.stop_resend(ctx);
        }
        if from == Leg::Caller && self.caller == CallerLeg::Answered {
            self.caller = CallerLeg::Up;
            // Nothing reads the caller's INVITE from here on (see `Call::invite`).
            self.invite = Request::default();
        }
        if let Some(p) = self.pending_ack {
            if p.to != from {
                self.pending_ack = None;
                self.send_ack(ctx, p.to, p.cseq, ack.body.clone());
            }
        }
    }

    /// What a BYE or CANCEL of ours (transaction `id` towards `leg`) came to.
    pub(super) fn on_leg_request_event(&mut self, leg: Leg, id: u64, event: &TxnEvent) {
        if matches!(event, TxnEvent::Provisional(_)) {
            return;
        }
        let closing = match leg {
            Leg::Caller => self.caller == CallerLeg::Closing(id),
            Leg::Callee => self.callee == CalleeLeg::Closing(id),
        };
        if closing {
            self.leg_done(leg);
        }
    }
}
