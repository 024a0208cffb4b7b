//! One bridged call: the caller's leg (we are its UAS) and the callee's (we are its
//! UAC), from the provider's INVITE to the last BYE answer.
//!
//! This module owns a call's state (both legs, our INVITE, the 2xx being resent), its
//! timers, the responses to the caller's INVITE and the record of its end. The call's
//! course is in its siblings: the setup, up to the callee's final answer (`100 Trying`
//! went out with the INVITE's server transaction; lookup, resolution, our INVITE,
//! provisional answers, refusals, 401/407 answered once with `LIVEKIT_SIP_USERNAME`,
//! 3xx not followed: a redirect behind us would take the call around us, the caller
//! gets `480`) is [`super::setup`]; the 2xx on both legs and their ACKs (RFC 3261
//! §13.3.1.4) are [`super::answer`]; the ending (CANCEL, BYE, limits) is
//! [`super::hangup`]; in-dialog requests are [`super::indialog`].

use super::dialog::Dialog;
use super::fork::Forks;
use super::outbound;
use super::relay;
use crate::ctx::Ctx;
use crate::io::{CallRecord, CallView, Event};
use crate::message::{response_to, MessageBuilder, Request, Response};
use crate::time::{CallTimer, TimerKey};
use crate::transaction::{Leg, Owner, TxnEvent};
use crate::transport::Link;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The provider a call came from, as far as admission could name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerProvider {
    /// Its registration's slot (per-provider limits count by it).
    pub slot: u32,
    /// The provider's `id`.
    pub id: String,
    /// The provider's `name`.
    pub name: String,
    /// The account username (the Request-URI user of calls to our Contact).
    pub username: String,
    /// Our address towards its registrar, when known.
    pub local_ip: Option<IpAddr>,
    /// The public address its registrar saw us at, when we are behind a NAT.
    pub public: Option<SocketAddr>,
}

/// The caller's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CallerLeg {
    /// No final response yet.
    Inviting,
    /// Our 2xx went out; its ACK has not come.
    Answered,
    /// ACKed: the dialog is up.
    Up,
    /// Our BYE (this transaction) awaits its answer.
    Closing(u64),
    /// Over: a final error was sent, or the BYE was answered either way.
    Done,
}

/// Whether the callee's INVITE should be cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cancel {
    No,
    /// Wanted, but no provisional response has come yet (RFC 3261 §9.1: not before).
    Pending,
    Sent,
}

/// The destination's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CalleeLeg {
    /// Waiting for the destination lookup.
    Routing,
    /// Waiting for the destination host's address.
    Resolving,
    /// Our INVITE (this transaction) has no final answer yet.
    Inviting {
        txn: u64,
        provisional: bool,
        cancel: Cancel,
    },
    /// The 2xx came: the dialog is up.
    Up,
    /// Our BYE (this transaction) awaits its answer.
    Closing(u64),
    /// Over.
    Done,
}

/// Our INVITE towards the destination.
#[derive(Debug, Clone)]
pub(super) struct Outbound {
    /// As sent, for its CANCEL, its re-sending with credentials and its dialog: all
    /// before the callee's 2xx, after which it is given back (empty).
    pub request: Request,
    pub addr: Link,
    /// Our `host:port` towards it.
    pub local: String,
    pub call_id: String,
    pub from_tag: String,
    pub cseq: u32,
    /// Credentials were sent (a second challenge is not answered again).
    pub authenticated: bool,
}

/// A 2xx we resend until its ACK (RFC 3261 §13.3.1.4).
#[derive(Debug, Clone)]
pub(super) struct Resend {
    pub to: Link,
    pub bytes: Vec<u8>,
    pub interval: Duration,
    /// The CSeq of the INVITE it answers (the ACK carries it too).
    pub cseq: u32,
    /// The leg it went to.
    pub leg: Leg,
}

/// An ACK the other leg owes us before we can send ours (a 2xx answered an INVITE
/// without an offer: the answer is in the ACK, RFC 3264 §4).
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingAck {
    /// The leg our ACK goes to.
    pub to: Leg,
    /// The CSeq of the INVITE our ACK is for.
    pub cseq: u32,
}

/// An ACK we sent for a 2xx: the CSeq it acknowledges, its branch and body. A
/// retransmitted 2xx gets the same ACK again, rebuilt from the dialog rather than kept
/// as bytes: ~330 B a call for as long as it is up, for a resend that seldom happens.
#[derive(Debug, Clone)]
pub(super) struct SentAck {
    pub cseq: u32,
    pub branch: String,
    pub body: Vec<u8>,
}

/// How the call ends for the record.
#[derive(Debug, Clone)]
pub(super) struct Outcome {
    pub label: &'static str,
    pub status: u16,
    pub reason: String,
}

/// One call.
#[derive(Debug)]
pub struct Call {
    pub(super) id: u64,
    pub(super) provider: Option<CallerProvider>,
    pub(super) did: String,
    pub(super) caller_number: Option<String>,
    /// Max-Forwards of our INVITE: one less than the caller's.
    pub(super) max_forwards: u32,
    /// The caller's INVITE, until its ACK: the responses to it, our INVITE and the
    /// caller's dialog are made from it, and nothing reads it once the caller's ACK
    /// has come, so [`Call::on_ack`] gives its memory back (issue 9 §4: a held call's
    /// bytes).
    pub(super) invite: Request,
    /// The caller's Call-ID and From tag: its key in the call table, for the call's life.
    pub(super) caller_call_id: String,
    pub(super) caller_tag: String,
    pub(super) caller_txn: u64,
    /// Our To-tag towards the caller.
    pub(super) tag: String,
    /// Our `host:port` towards the caller, once known.
    pub(super) caller_local: Option<String>,
    pub(super) caller_source: Link,
    pub(super) caller: CallerLeg,
    pub(super) caller_dialog: Option<Dialog>,
    pub(super) callee: CalleeLeg,
    pub(super) out: Option<Outbound>,
    pub(super) callee_dialog: Option<Dialog>,
    pub(super) destination: Option<String>,
    /// The last ACK we sent to each leg (caller, callee), with its CSeq, resent when
    /// that leg resends its 2xx.
    /// Boxed (see [`CALL_SIZE`]).
    pub(super) acks: (Option<Box<SentAck>>, Option<Box<SentAck>>),
    /// Dialogs of other forks' 2xx, ACKed and hung up.
    pub(super) forks: Forks,
    /// Boxed: only between a 2xx and its ACK (see [`CALL_SIZE`]).
    pub(super) resend: Option<Box<Resend>>,
    pub(super) pending_ack: Option<PendingAck>,
    pub(super) relays: Vec<super::indialog::Relay>,
    pub(super) started: Instant,
    pub(super) answered: Option<Instant>,
    pub(super) outcome: Option<Outcome>,
}

/// The most bytes a [`Call`] may take: each one is a heap block of its own (the call
/// table boxes them), and the allocator rounds a block up to its size class, of which
/// 1,280 B is one and 1,536 B the next. At 1,352 B every call wasted 184 B; fields that
/// are there only for a moment or not at all in most calls (the 2xx being resent, the
/// ACKs we sent) are boxed to stay below, and a [`Dialog`]'s strings, which never
/// change, are boxed `str`s (8 bytes less each: room for the flows of issue 10).
const CALL_SIZE: usize = 1280;
const _: () = assert!(size_of::<Call>() <= CALL_SIZE);

/// What the caller gets when we end a call before its answer, other than by a limit.
pub(super) const UNAVAILABLE: (u16, &str) = (480, "Temporarily Unavailable");

/// Every timer a call may have armed.
const CALL_TIMERS: [CallTimer; 4] = [
    CallTimer::Ring,
    CallTimer::MaxDuration,
    CallTimer::Resend2xx,
    CallTimer::AckWait,
];

impl Call {
    /// A call for the caller's `invite` (server transaction `txn`, from `source`),
    /// dialing `did`; `local` is our `host:port` towards the caller when known.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        now: Instant,
        ctx: &mut Ctx,
        id: u64,
        invite: Request,
        txn: u64,
        source: Link,
        local: Option<String>,
        provider: Option<CallerProvider>,
        did: String,
        max_forwards: u32,
    ) -> Self {
        ctx.txns.set_owner(
            txn,
            Owner::Leg {
                call: id,
                leg: Leg::Caller,
            },
        );
        // Bounded by Timer C of the caller's transaction (3 min), which would end it.
        let ring = ctx.cfg.calls.ring_timeout.min(Duration::from_secs(170));
        ctx.timers
            .set(TimerKey::Call(id, CallTimer::Ring), now + ring);
        Self {
            id,
            provider,
            did,
            caller_number: outbound::caller_number(&invite).map(str::to_owned),
            max_forwards,
            caller_call_id: invite.headers.call_id().unwrap_or_default().to_owned(),
            caller_tag: invite.headers.from_tag().unwrap_or_default().to_owned(),
            invite,
            caller_txn: txn,
            tag: ctx.ids.tag(),
            caller_local: local,
            caller_source: source,
            caller: CallerLeg::Inviting,
            caller_dialog: None,
            callee: CalleeLeg::Routing,
            out: None,
            callee_dialog: None,
            destination: None,
            acks: (None, None),
            forks: Forks::default(),
            resend: None,
            pending_ack: None,
            relays: Vec::new(),
            started: now,
            answered: None,
            outcome: None,
        }
    }

    /// The caller's Call-ID.
    pub(super) fn inbound_call_id(&self) -> &str {
        &self.caller_call_id
    }

    /// The caller's From tag.
    pub(super) fn caller_tag(&self) -> &str {
        &self.caller_tag
    }

    /// Our Call-ID towards the destination, once it was called.
    pub(super) fn outbound_call_id(&self) -> Option<&str> {
        self.out.as_ref().map(|o| o.call_id.as_str())
    }

    /// The To tags of the destination dialogs this call had: the one it used and the
    /// forks it hung up.
    pub(super) fn callee_dialog_tags(&self) -> impl Iterator<Item = &str> {
        let used = self
            .callee_dialog
            .as_ref()
            .and_then(|d| remote_tag(&d.remote_party));
        used.into_iter().chain(self.forks.tags())
    }

    /// Both legs are over: the call can be forgotten.
    pub(super) fn is_over(&self) -> bool {
        self.caller == CallerLeg::Done
            && matches!(
                self.callee,
                CalleeLeg::Done | CalleeLeg::Routing | CalleeLeg::Resolving
            )
    }

    /// Sets the outcome, unless one was already set (the first cause wins).
    pub(super) fn set_outcome(&mut self, label: &'static str, status: u16, reason: String) {
        if self.outcome.is_none() {
            self.outcome = Some(Outcome {
                label,
                status,
                reason,
            });
        }
    }

    /// Our final error to the caller before any answer, and the call's outcome.
    pub(super) fn reject(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        status: u16,
        reason: &str,
        label: &'static str,
        why: String,
    ) {
        self.set_outcome(label, status, why);
        let response = self.response_to_caller(status, reason);
        self.final_to_caller(now, ctx, status, response);
    }

    /// The callee's `resp` as our response to the caller's INVITE, with `status`.
    pub(super) fn relayed(
        &self,
        resp: &Response,
        status: u16,
        reason: &str,
        contact: Option<&str>,
    ) -> MessageBuilder {
        relay::response(&self.invite, resp, status, reason, &self.tag, contact)
    }

    /// A response of ours to the caller's INVITE.
    pub(super) fn response_to_caller(&self, status: u16, reason: &str) -> MessageBuilder {
        let b = response_to(&self.invite, status, reason, Some(&self.tag));
        relay::with_record_route(&self.invite, status, b)
    }

    /// Sends a final non-2xx to the caller's INVITE: its leg is over.
    pub(super) fn final_to_caller(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        status: u16,
        response: MessageBuilder,
    ) {
        if self.caller != CallerLeg::Inviting {
            return;
        }
        ctx.timers.cancel(TimerKey::Call(self.id, CallTimer::Ring));
        let bytes = response.to_bytes();
        ctx.respond(now, self.caller_txn, status, bytes);
        self.caller = CallerLeg::Done;
    }

    /// What a transaction of this call towards `leg` (or from it) reports.
    pub(super) fn on_txn(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        leg: Leg,
        id: u64,
        event: TxnEvent,
    ) {
        if self.is_relay(id) {
            self.on_relay_event(now, ctx, id, event);
            return;
        }
        let our_invite = leg == Leg::Callee
            && matches!(self.callee, CalleeLeg::Inviting { txn, .. } if txn == id);
        if our_invite {
            self.on_invite_event(now, ctx, event);
            return;
        }
        match event {
            TxnEvent::Final(resp)
                if (200..300).contains(&resp.status)
                    && resp.headers.cseq().is_some_and(|(_, m)| m == "INVITE") =>
            {
                self.resend_ack(now, ctx, leg, &resp);
            }
            // Timer C of the caller's INVITE: as the ring timeout.
            TxnEvent::Timeout if leg == Leg::Caller && id == self.caller_txn => {
                self.on_timer(now, ctx, CallTimer::Ring);
            }
            event => self.on_leg_request_event(leg, id, &event),
        }
    }

    /// Fires one of the call's timers.
    pub(super) fn on_timer(&mut self, now: Instant, ctx: &mut Ctx, timer: CallTimer) {
        match timer {
            CallTimer::Ring => {
                let secs = ctx.cfg.calls.ring_timeout.as_secs();
                let why = format!("no answer within CALL_RING_TIMEOUT ({secs} s)");
                self.abort_callee(now, ctx);
                self.reject(
                    now,
                    ctx,
                    408,
                    "Request Timeout: no answer",
                    "no_answer",
                    why,
                );
            }
            CallTimer::MaxDuration => {
                let secs = ctx.cfg.calls.max_duration.as_secs();
                self.hang_up(
                    now,
                    ctx,
                    UNAVAILABLE,
                    format!("CALL_MAX_DURATION ({secs} s) reached"),
                );
            }
            CallTimer::Resend2xx => {
                let t2 = ctx.cfg.timers.t2;
                if let Some(r) = self.resend.as_mut() {
                    r.interval = (r.interval * 2).min(t2);
                    let (to, bytes, at) = (r.to, r.bytes.clone(), now + r.interval);
                    ctx.transmit(to, bytes);
                    ctx.timers
                        .set(TimerKey::Call(self.id, CallTimer::Resend2xx), at);
                }
            }
            CallTimer::AckWait => {
                let leg = self.resend.as_ref().map_or(Leg::Caller, |r| r.leg);
                self.stop_resend(ctx);
                let side = match leg {
                    Leg::Caller => "the caller",
                    Leg::Callee => "the destination",
                };
                // hang_up → bye ACKs a 2xx still waiting for this missing ACK's answer.
                self.hang_up(now, ctx, UNAVAILABLE, format!("{side} never ACKed our 2xx"));
            }
        }
    }

    /// Disarms every timer of the call (it is over).
    pub(super) fn cancel_timers(&self, ctx: &mut Ctx) {
        for t in CALL_TIMERS {
            ctx.timers.cancel(TimerKey::Call(self.id, t));
        }
    }

    /// The record logged when the call ends.
    pub(super) fn record(&self, now: Instant) -> CallRecord {
        let outcome = self.outcome.clone().unwrap_or(Outcome {
            label: "failed",
            status: 500,
            reason: "ended without an outcome".to_owned(),
        });
        CallRecord {
            id: self.id,
            provider_id: self.provider.as_ref().map(|p| p.id.clone()),
            provider_name: self.provider.as_ref().map(|p| p.name.clone()),
            did: self.did.clone(),
            caller: self.caller_number.clone(),
            destination: self.destination.clone(),
            inbound_call_id: self.inbound_call_id().to_owned(),
            outbound_call_id: self.outbound_call_id().map(str::to_owned),
            status: outcome.status,
            outcome: outcome.label,
            reason: outcome.reason,
            setup_time: self
                .answered
                .map(|a| a.saturating_duration_since(self.started)),
            duration: self.answered.map(|a| now.saturating_duration_since(a)),
        }
    }

    /// What `GET /api/calls` shows.
    pub(super) fn view(&self, ctx: &Ctx) -> CallView {
        let state = match (self.caller, self.callee) {
            (CallerLeg::Closing(_) | CallerLeg::Done, _)
            | (_, CalleeLeg::Closing(_) | CalleeLeg::Done) => "ending",
            (_, CalleeLeg::Routing | CalleeLeg::Resolving) => "routing",
            (CallerLeg::Inviting, _) => "ringing",
            _ => "answered",
        };
        CallView {
            id: self.id,
            provider_id: self.provider.as_ref().map(|p| p.id.clone()),
            did: self.did.clone(),
            caller: self.caller_number.clone(),
            destination: self.destination.clone(),
            state,
            started_at: ctx.clock.rfc3339(self.started),
            answered_at: self.answered.map(|a| ctx.clock.rfc3339(a)),
        }
    }

    /// Announces the end (once, when the call is over).
    pub(super) fn announce_end(&self, now: Instant, ctx: &mut Ctx) {
        ctx.emit(Event::CallEnded(Box::new(self.record(now))));
    }
}

/// The tag parameter of a From/To value.
pub(super) fn remote_tag(party: &str) -> Option<&str> {
    party
        .split(';')
        .skip(1)
        .find_map(|p| p.trim().strip_prefix("tag="))
}
