//! One bridged call: the caller's leg (we are its UAS) and the callee's (we are its
//! UAC), from the provider's INVITE to the last BYE answer.
//!
//! Setup: `100 Trying` went out with the INVITE's server transaction; the destination
//! is looked up ([`crate::routing`]), its host resolved, our INVITE sent. Provisional
//! answers are relayed (183 with its SDP: early media); a 2xx is ACKed towards the
//! callee and relayed to the caller, whose ACK we await while resending the 2xx (RFC
//! 3261 §13.3.1.4). Errors are relayed with their status, except those we answer
//! ourselves: 401/407 (digest with `LIVEKIT_SIP_USERNAME`, once) and 3xx, which are not
//! followed (a redirect behind us would take the call around us): the caller gets
//! `480`. The ending (CANCEL, BYE, limits) is [`super::hangup`]; in-dialog requests are
//! [`super::indialog`].

use super::dialog::Dialog;
use super::fork::Forks;
use super::outbound::{self, CallIdentity, OutboundLeg};
use super::relay;
use super::uri::{host_port, host_with_port, join_host_port};
use crate::auth::{self, DigestInput};
use crate::backend::destination::{NoRoute, Route};
use crate::ctx::Ctx;
use crate::dns::{Lookup, Waiter};
use crate::io::{CallRecord, CallView, Event, Resolution};
use crate::message::{self, response_to, MessageBuilder, Request, Response};
use crate::time::{CallTimer, TimerKey};
use crate::transaction::{Leg, Owner, TxnEvent};
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
    pub addr: SocketAddr,
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
    pub to: SocketAddr,
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
    pub(super) caller_source: SocketAddr,
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
/// ACKs we sent) are boxed to stay below.
pub(super) const CALL_SIZE: usize = 1280;
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
        source: SocketAddr,
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

    /// The answer to the destination lookup.
    pub(super) fn on_route(&mut self, now: Instant, ctx: &mut Ctx, result: Result<Route, NoRoute>) {
        if self.callee != CalleeLeg::Routing || self.caller != CallerLeg::Inviting {
            return;
        }
        let route = match result {
            Ok(r) => r,
            Err(e) => {
                let reason = e.to_string();
                self.reject(
                    now,
                    ctx,
                    404,
                    "Not Found: no route for this number",
                    "no_route",
                    reason,
                );
                return;
            }
        };
        let Some(hp) = host_port(&route.uri) else {
            let reason = format!("destination {} is not a sip: URI", route.uri);
            self.reject(
                now,
                ctx,
                404,
                "Not Found: no usable route for this number",
                "no_route",
                reason,
            );
            return;
        };
        self.destination = Some(route.uri.clone());
        if hp.secure {
            let reason = format!(
                "destination {} needs TLS (sips:), not supported yet",
                route.uri
            );
            self.reject(now, ctx, 503, "Service Unavailable", "failed", reason);
            return;
        }
        self.callee = CalleeLeg::Resolving;
        match ctx.dns.lookup(&hp.host, now) {
            Lookup::Ready(res) => self.on_resolved(now, ctx, Ok(res)),
            Lookup::Failed(e) => self.on_resolved(now, ctx, Err(e)),
            Lookup::Pending => {
                ctx.dns.wait(
                    &hp.host,
                    Waiter::Call(self.id),
                    &mut ctx.out,
                    &mut ctx.next_query,
                );
            }
        }
    }

    /// The destination host's address (or why there is none).
    pub(super) fn on_resolved(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        result: Result<Resolution, String>,
    ) {
        if self.callee != CalleeLeg::Resolving || self.caller != CallerLeg::Inviting {
            return;
        }
        let Some(destination) = self.destination.clone() else {
            return;
        };
        let port = host_port(&destination).map_or(5060, |hp| hp.port_or_default());
        let (ip, local_ip) = match result {
            Ok(res) => match res.addrs.first() {
                Some(&ip) => (ip, res.local_ip),
                None => {
                    self.unresolved(now, ctx, &destination, "no address");
                    return;
                }
            },
            Err(e) => {
                self.unresolved(now, ctx, &destination, &e);
                return;
            }
        };
        let addr = SocketAddr::new(ip, port);
        let port = ctx.cfg.local_port;
        let local = match (&ctx.cfg.contact_host, local_ip) {
            (Some(h), _) => host_with_port(h, port),
            (None, Some(ip)) => join_host_port(ip, port),
            (None, None) => self
                .caller_local
                .clone()
                .unwrap_or_else(|| join_host_port(ip, port)),
        };
        if self.caller_local.is_none() {
            // Single-homed hosts: our address towards the destination is ours towards
            // the caller too (set SIP_PUBLIC_ADDRESS otherwise).
            self.caller_local = Some(local.clone());
        }
        self.out = Some(Outbound {
            // Written by `transmit_invite`, which builds it.
            request: Request::default(),
            addr,
            local,
            call_id: ctx.ids.call_id(),
            from_tag: ctx.ids.tag(),
            cseq: 1,
            authenticated: false,
        });
        self.transmit_invite(now, ctx, None);
    }

    /// The destination's host has no address: `503` to the caller.
    fn unresolved(&mut self, now: Instant, ctx: &mut Ctx, destination: &str, why: &str) {
        let reason = format!("cannot resolve the destination {destination}: {why}");
        self.reject(now, ctx, 503, "Service Unavailable", "failed", reason);
    }

    /// Builds and sends our INVITE (again, with `authorization` after a challenge).
    fn transmit_invite(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        authorization: Option<(&str, String)>,
    ) {
        let (Some(out), Some(destination)) = (self.out.as_mut(), self.destination.as_deref())
        else {
            return;
        };
        let branch = ctx.ids.branch();
        let who = CallIdentity {
            provider_id: self.provider.as_ref().map(|p| p.id.as_str()),
            provider_name: self.provider.as_ref().map(|p| p.name.as_str()),
            did: Some(&self.did),
            inbound_call_id: self.invite.headers.call_id(),
        };
        let leg = OutboundLeg {
            destination,
            local: &out.local,
            branch: &branch,
            call_id: &out.call_id,
            from_tag: &out.from_tag,
            cseq: out.cseq,
            max_forwards: self.max_forwards,
            user_agent: &ctx.cfg.user_agent,
        };
        let mut builder = outbound::outbound_invite(&self.invite, &leg, &who);
        if let Some((name, value)) = authorization {
            builder = builder.header(name, value);
        }
        let bytes = builder.to_bytes();
        let Ok(message::Message::Request(request)) = message::parse(&bytes) else {
            let reason = "the INVITE towards the destination could not be built".to_owned();
            self.reject(now, ctx, 500, "Server Internal Error", "failed", reason);
            return;
        };
        out.request = request.clone();
        let txn = ctx.txns.start_invite(
            now,
            &ctx.cfg.timers,
            &mut ctx.timers,
            Owner::Leg {
                call: self.id,
                leg: Leg::Callee,
            },
            branch,
            request,
            out.addr,
            bytes.clone(),
            false,
        );
        let addr = out.addr;
        self.callee = CalleeLeg::Inviting {
            txn,
            provisional: false,
            cancel: Cancel::No,
        };
        ctx.transmit(addr, bytes);
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
    fn relayed(
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
        response_to(&self.invite, status, reason, Some(&self.tag))
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

    /// What the callee's INVITE transaction reports.
    pub(super) fn on_invite_event(&mut self, now: Instant, ctx: &mut Ctx, event: TxnEvent) {
        match event {
            TxnEvent::Provisional(resp) => self.on_provisional(now, ctx, &resp),
            TxnEvent::Final(resp) if (200..300).contains(&resp.status) => {
                self.on_answer(now, ctx, &resp);
            }
            TxnEvent::Final(resp) => self.on_refusal(now, ctx, &resp),
            TxnEvent::Timeout | TxnEvent::NoAck => {
                if matches!(self.callee, CalleeLeg::Inviting { .. }) {
                    self.callee = CalleeLeg::Done;
                }
                let why = "the destination did not answer the INVITE".to_owned();
                self.reject(
                    now,
                    ctx,
                    408,
                    "Request Timeout: destination did not answer",
                    "failed",
                    why,
                );
            }
        }
    }

    fn on_provisional(&mut self, now: Instant, ctx: &mut Ctx, resp: &Response) {
        let CalleeLeg::Inviting {
            txn,
            provisional,
            cancel,
        } = self.callee
        else {
            return;
        };
        if !provisional && cancel == Cancel::Pending {
            self.send_cancel(now, ctx);
        } else {
            self.callee = CalleeLeg::Inviting {
                txn,
                provisional: true,
                cancel,
            };
        }
        // The caller got its 100 Trying already; ringing and early media are relayed.
        if resp.status == 100 || self.caller != CallerLeg::Inviting {
            return;
        }
        let contact = self.caller_contact();
        let reason = resp.reason.clone();
        let b = self.relayed(resp, resp.status, &reason, contact.as_deref());
        ctx.respond(now, self.caller_txn, resp.status, b.to_bytes());
    }

    /// Our Contact towards the caller.
    fn caller_contact(&self) -> Option<String> {
        self.caller_local
            .as_ref()
            .map(|l| format!("<sip:trunkline@{l}>"))
    }

    /// Sends the CANCEL of our INVITE (a provisional has come).
    pub(super) fn send_cancel(&mut self, now: Instant, ctx: &mut Ctx) {
        let CalleeLeg::Inviting { txn, .. } = self.callee else {
            return;
        };
        self.callee = CalleeLeg::Inviting {
            txn,
            provisional: true,
            cancel: Cancel::Sent,
        };
        let Some(out) = &self.out else {
            return;
        };
        let Some(cancel) = message::cancel_for(&out.request) else {
            return;
        };
        let Some(branch) = out.request.headers.top_via().and_then(|v| v.branch) else {
            return;
        };
        let bytes = cancel.to_bytes();
        let owner = Owner::Leg {
            call: self.id,
            leg: Leg::Callee,
        };
        let addr = out.addr;
        ctx.txns.start(
            now,
            &ctx.cfg.timers,
            &mut ctx.timers,
            owner,
            branch,
            "CANCEL",
            addr,
            bytes.clone(),
        );
        ctx.transmit(addr, bytes);
    }

    fn on_answer(&mut self, now: Instant, ctx: &mut Ctx, resp: &Response) {
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
        let contact = format!("<sip:trunkline@{local}>");
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
        to: SocketAddr,
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

    fn on_refusal(&mut self, now: Instant, ctx: &mut Ctx, resp: &Response) {
        let CalleeLeg::Inviting { cancel, .. } = self.callee else {
            return;
        };
        self.callee = CalleeLeg::Done;
        if self.caller != CallerLeg::Inviting {
            return;
        }
        if cancel == Cancel::No
            && matches!(resp.status, 401 | 407)
            && self.authenticate(now, ctx, resp)
        {
            return;
        }
        let status = resp.status;
        let (status, reason, label, why) = match status {
            300..=399 => (
                480,
                "Temporarily Unavailable: destination redirected (not followed)".to_owned(),
                "rejected",
                format!("destination answered {status} {}: redirects are not followed", resp.reason),
            ),
            401 | 407 => (
                403,
                "Forbidden: the destination refused our credentials".to_owned(),
                "rejected",
                match &ctx.cfg.calls.destination_auth {
                    None => format!("destination demands authentication ({status}): set LIVEKIT_SIP_USERNAME and LIVEKIT_SIP_PASSWORD"),
                    Some(_) => format!("destination refused the credentials of LIVEKIT_SIP_USERNAME ({status})"),
                },
            ),
            486 | 600 => (status, resp.reason.clone(), "busy", format!("destination answered {status} {}", resp.reason)),
            _ => (status, resp.reason.clone(), "rejected", format!("destination answered {status} {}", resp.reason)),
        };
        self.set_outcome(label, status, why);
        let b = self.relayed(resp, status, &reason, None);
        self.final_to_caller(now, ctx, status, b);
    }

    /// Answers a 401/407 to our INVITE once, with the configured credentials: the same
    /// Call-ID and From tag, CSeq + 1 (RFC 3261 §22.2). `false` when it cannot.
    fn authenticate(&mut self, now: Instant, ctx: &mut Ctx, resp: &Response) -> bool {
        let Some(creds) = ctx.cfg.calls.destination_auth.clone() else {
            return false;
        };
        let Some(out) = self.out.as_mut() else {
            return false;
        };
        if out.authenticated {
            return false;
        }
        let (challenge_header, answer_header) = if resp.status == 407 {
            ("Proxy-Authenticate", "Proxy-Authorization")
        } else {
            ("WWW-Authenticate", "Authorization")
        };
        let Ok(challenge) = auth::select_challenge(resp.headers.get_all(challenge_header), None)
        else {
            return false;
        };
        let cnonce = ctx.ids.cnonce();
        let Some(destination) = self.destination.clone() else {
            return false;
        };
        let value = auth::authorization_value(
            &challenge,
            &DigestInput {
                username: &creds.username,
                password: creds.password.expose(),
                method: "INVITE",
                uri: &destination,
                nc: 1,
                cnonce: &cnonce,
                body: &self.invite.body,
            },
        );
        out.authenticated = true;
        out.cseq = out.cseq.wrapping_add(1);
        self.transmit_invite(now, ctx, Some((answer_header, value)));
        true
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
