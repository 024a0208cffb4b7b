//! A call's answer: the callee's 2xx ACKed (or, when the caller made no offer, ACKed
//! with the answer the caller's ACK brings) and relayed to the caller, whose ACK we
//! await while resending our 2xx (RFC 3261 §13.3.1.4); a resent 2xx from either leg
//! gets our ACK again, and another fork's 2xx is ACKed and hung up ([`super::fork`]).

use super::call::{remote_tag, Call, CalleeLeg, CallerLeg, PendingAck, Resend, SentAck};
use super::dialog::Dialog;
use super::outbound;
use super::uri::our_contact;
use crate::ctx::Ctx;
use crate::message::{Request, Response};
use crate::time::{CallTimer, TimerKey};
use crate::transaction::Leg;
use crate::transport::Link;
use std::time::Instant;

impl SentAck {
    /// The ACK in dialog `d`.
    fn bytes(&self, d: &Dialog) -> Vec<u8> {
        let mut b = d.request_with_cseq("ACK", &self.branch, self.cseq);
        if !self.body.is_empty() {
            b = b
                .header("Content-Type", "application/sdp")
                .body(self.body.clone());
        }
        b.to_bytes()
    }
}

impl Call {
    pub(super) fn on_answer(&mut self, now: Instant, ctx: &mut Ctx, resp: &Response) {
        let cseq = resp.headers.cseq().map_or(0, |(n, _)| n);
        if !matches!(self.callee, CalleeLeg::Inviting { .. }) {
            self.resend_ack(now, ctx, Leg::Callee, resp);
            return;
        }
        let Some(out) = &mut self.out else {
            return;
        };
        let dialog = Dialog::from_answer(&out.request, resp, out.addr, &out.local);
        out.request = Request::default();
        self.callee_dialog = Some(dialog);
        self.callee = CalleeLeg::Up;
        if self.caller != CallerLeg::Inviting {
            // The caller is gone (CANCEL, ring timeout, drain) and the callee answered
            // anyway: ACK it and hang it up (the CANCEL/2xx race).
            self.send_ack(ctx, Leg::Callee, cseq, Vec::new());
            self.bye(now, ctx, Leg::Callee);
            return;
        }
        ctx.timers.cancel(TimerKey::Call(self.id, CallTimer::Ring));
        if self.invite.body.is_empty() {
            // The caller made no offer: the 2xx holds the callee's, the caller's ACK
            // will hold the answer, and our ACK carries it on.
            self.pending_ack = Some(PendingAck {
                to: Leg::Callee,
                cseq,
            });
        } else {
            self.send_ack(ctx, Leg::Callee, cseq, Vec::new());
        }
        // Known since the destination resolved (`on_resolved` fills it in at the latest).
        let local = self.caller_local.clone().unwrap_or_default();
        self.caller_dialog = Some(Dialog::from_invite(
            &self.invite,
            &self.tag,
            self.caller_source,
            &local,
        ));
        let contact = our_contact(&local, self.caller_source.flow.transport());
        let reason = resp.reason.clone();
        let bytes = self
            .relayed(resp, resp.status, &reason, Some(&contact))
            .header("Allow", outbound::ALLOW)
            .to_bytes();
        ctx.respond(now, self.caller_txn, resp.status, bytes.clone());
        self.caller = CallerLeg::Answered;
        self.answered = Some(now);
        let invite_cseq = self.invite.headers.cseq().map_or(0, |(n, _)| n);
        self.start_resend(
            now,
            ctx,
            Leg::Caller,
            self.caller_source,
            bytes,
            invite_cseq,
        );
        let max = ctx.cfg.calls.max_duration;
        ctx.timers
            .set(TimerKey::Call(self.id, CallTimer::MaxDuration), now + max);
        self.set_outcome("answered", resp.status, String::new());
    }

    /// A 2xx from `leg` that was already ACKed (its retransmission): our ACK again. A
    /// fork's 2xx (another To-tag) is ACKed and hung up as a dialog of its own.
    pub(super) fn resend_ack(&mut self, now: Instant, ctx: &mut Ctx, leg: Leg, resp: &Response) {
        let dialog = match leg {
            Leg::Caller => self.caller_dialog.as_ref(),
            Leg::Callee => self.callee_dialog.as_ref(),
        };
        let ours = dialog.is_some_and(|d| resp.headers.to_tag() == remote_tag(&d.remote_party));
        if leg == Leg::Callee && !ours {
            // Another fork's 2xx (RFC 3261 §13.2.2.4), or one after the callee refused:
            // a dialog of its own, which the call does not use.
            let fork = match (&self.callee_dialog, &self.out) {
                (Some(ours), Some(out)) => ours.fork(resp, out.addr),
                // The callee refused (our INVITE is still whole): from it.
                (None, Some(out)) => Dialog::from_answer(&out.request, resp, out.addr, &out.local),
                (_, None) => return,
            };
            self.forks.on_answer(now, ctx, fork, resp);
            return;
        }
        let Some(d) = dialog else {
            return;
        };
        let cseq = resp.headers.cseq().map_or(0, |(n, _)| n);
        let last = match leg {
            Leg::Caller => &self.acks.0,
            Leg::Callee => &self.acks.1,
        };
        if let Some(ack) = last.as_ref().filter(|a| a.cseq == cseq) {
            ctx.transmit(d.next_hop, ack.bytes(d));
        }
    }

    /// Stops resending our 2xx (its ACK came, or the call is being hung up).
    pub(super) fn stop_resend(&mut self, ctx: &mut Ctx) {
        self.resend = None;
        ctx.timers
            .cancel(TimerKey::Call(self.id, CallTimer::Resend2xx));
        ctx.timers
            .cancel(TimerKey::Call(self.id, CallTimer::AckWait));
    }

    /// Resends `bytes` (a 2xx to an INVITE with CSeq `cseq`) to `leg` until its ACK.
    pub(super) fn start_resend(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        leg: Leg,
        to: Link,
        bytes: Vec<u8>,
        cseq: u32,
    ) {
        let t1 = ctx.cfg.timers.t1;
        self.resend = Some(Box::new(Resend {
            to,
            bytes,
            interval: t1,
            cseq,
            leg,
        }));
        ctx.timers
            .set(TimerKey::Call(self.id, CallTimer::Resend2xx), now + t1);
        ctx.timers
            .set(TimerKey::Call(self.id, CallTimer::AckWait), now + t1 * 64);
    }

    /// Sends the ACK for a 2xx to `leg`'s INVITE with CSeq `cseq`, and keeps it for
    /// that 2xx's retransmissions.
    pub(super) fn send_ack(&mut self, ctx: &mut Ctx, leg: Leg, cseq: u32, body: Vec<u8>) {
        let branch = ctx.ids.branch();
        let dialog = match leg {
            Leg::Caller => self.caller_dialog.as_ref(),
            Leg::Callee => self.callee_dialog.as_ref(),
        };
        let Some(d) = dialog else {
            return;
        };
        let ack = Box::new(SentAck { cseq, branch, body });
        ctx.transmit(d.next_hop, ack.bytes(d));
        let last = match leg {
            Leg::Caller => &mut self.acks.0,
            Leg::Callee => &mut self.acks.1,
        };
        *last = Some(ack);
    }
}
