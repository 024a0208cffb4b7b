//! A call's setup, up to the callee's final answer: the destination looked up
//! ([`crate::routing`]) and resolved, our INVITE sent (again with credentials after a
//! 401/407, once), provisional answers relayed (183 with its SDP: early media), a
//! CANCEL once the callee has sent a provisional, and the callee's refusals relayed
//! with their status (3xx are not followed: the caller gets `480`).

use super::call::{Call, CalleeLeg, CallerLeg, Cancel, Outbound};
use super::outbound::{self, CallIdentity, OutboundLeg};
use super::uri::{host_port, host_with_port, join_host_port, our_contact};
use crate::auth::{self, DigestInput};
use crate::backend::destination::{NoRoute, Route};
use crate::ctx::Ctx;
use crate::dns::locate::{locate, Asker, Located, Place};
use crate::dns::Waiter;
use crate::message::{self, Request, Response};
use crate::transaction::{Leg, Owner, TxnEvent};
use crate::transport::Transport;
use std::time::Instant;

impl Call {
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
        if host_port(&route.uri).is_none() {
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
        }
        self.destination = Some(route.uri.clone());
        self.callee = CalleeLeg::Resolving;
        self.on_resolved(now, ctx);
    }

    /// Locates the destination (RFC 3263: NAPTR, SRV, A/AAAA as its URI calls for);
    /// called again by every answer it waited for. The call goes to the first target;
    /// see [`Call::try_next_target`] for when it moves to the next.
    pub(super) fn on_resolved(&mut self, now: Instant, ctx: &mut Ctx) {
        if self.callee != CalleeLeg::Resolving || self.caller != CallerLeg::Inviting {
            return;
        }
        let Some(destination) = self.destination.clone() else {
            return;
        };
        let Some(hp) = host_port(&destination) else {
            return;
        };
        let targets = match self.locate_destination(now, ctx, &hp, false) {
            Located::Ready(t) => t,
            Located::Failed(e) => {
                self.unresolved(now, ctx, &destination, &e);
                return;
            }
            Located::Pending => return,
        };
        let Some(&addr) = targets.addrs.first() else {
            self.unresolved(now, ctx, &destination, "no address");
            return;
        };
        let (ip, local_ip, transport) = (addr.ip(), targets.local_ip, targets.transport);
        let port = ctx.cfg.listen_port(transport);
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
        // A connection of ours on TCP (one to that address reused), a datagram on UDP.
        // TLS checks the destination's certificate against the host its URI names.
        let name = (transport == Transport::Tls).then_some(hp.host.as_str());
        let Some(link) = ctx.link_to(now, transport, addr, name) else {
            let reason = "too many connections open".to_owned();
            self.reject(now, ctx, 503, "Service Unavailable", "failed", reason);
            return;
        };
        self.out = Some(Outbound {
            // Written by `transmit_invite`, which builds it.
            request: Request::default(),
            addr: link,
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
            transport: out.addr.flow.transport(),
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
        );
        let addr = out.addr;
        self.callee = CalleeLeg::Inviting {
            txn,
            provisional: false,
            cancel: Cancel::No,
        };
        ctx.transmit(addr, bytes);
    }

    /// What the callee's INVITE transaction reports.
    pub(super) fn on_invite_event(&mut self, now: Instant, ctx: &mut Ctx, event: TxnEvent) {
        let failed = matches!(event, TxnEvent::TransportError(_));
        if failed && self.untouched() && self.try_next_target(now, ctx) {
            return;
        }
        match event {
            TxnEvent::Provisional(resp) => self.on_provisional(now, ctx, &resp),
            TxnEvent::Final(resp) if (200..300).contains(&resp.status) => {
                self.on_answer(now, ctx, &resp);
            }
            TxnEvent::Final(resp) => self.on_refusal(now, ctx, &resp),
            TxnEvent::Timeout | TxnEvent::NoAck | TxnEvent::TransportError(_) => {
                if matches!(self.callee, CalleeLeg::Inviting { .. }) {
                    self.callee = CalleeLeg::Done;
                }
                let (status, reason, why) = match event {
                    TxnEvent::TransportError(e) => (
                        503,
                        "Service Unavailable: no connection to the destination",
                        format!("the connection to the destination failed: {e}"),
                    ),
                    _ => (
                        408,
                        "Request Timeout: destination did not answer",
                        "the destination did not answer the INVITE".to_owned(),
                    ),
                };
                self.reject(now, ctx, status, reason, "failed", why);
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
        let transport = self.caller_source.flow.transport();
        self.caller_local
            .as_ref()
            .map(|l| our_contact(l, transport))
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

    fn on_refusal(&mut self, now: Instant, ctx: &mut Ctx, resp: &Response) {
        if resp.status == 503 && self.untouched() && self.try_next_target(now, ctx) {
            return;
        }
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

    /// RFC 3263 for the destination `hp` (see [`crate::dns::locate`]); `stale_ok`:
    /// expired answers do, to choose where a failed INVITE goes next.
    fn locate_destination(
        &self,
        now: Instant,
        ctx: &mut Ctx,
        hp: &super::uri::HostPort,
        stale_ok: bool,
    ) -> Located {
        let place = Place {
            host: &hp.host,
            port: hp.port,
            transport: hp.transport_given.then_some(hp.transport),
        };
        let waiter = Waiter::Call(self.id);
        let mut asker = Asker::new(&mut ctx.dns, waiter, &mut ctx.out, &mut ctx.next_query);
        asker.stale_ok = stale_ok;
        locate(place, now, self.id, &mut asker)
    }

    /// Whether our INVITE has had no provisional answer and no CANCEL, while the caller
    /// still waits: the only time it may go to another target unnoticed.
    fn untouched(&self) -> bool {
        self.caller == CallerLeg::Inviting
            && matches!(
                self.callee,
                CalleeLeg::Inviting {
                    provisional: false,
                    cancel: Cancel::No,
                    ..
                }
            )
    }

    /// RFC 3263 §4.3: our INVITE's connection failed or the destination answered `503`:
    /// the INVITE goes to the destination's next target, each tried once in order
    /// (a timeout is not retried: the caller's own 32 s have run out by then). Returns
    /// whether it went.
    fn try_next_target(&mut self, now: Instant, ctx: &mut Ctx) -> bool {
        let (Some(destination), Some(out)) = (self.destination.as_deref(), self.out.as_ref())
        else {
            return false;
        };
        let Some(hp) = host_port(destination) else {
            return false;
        };
        let current = out.addr.remote;
        let Located::Ready(targets) = self.locate_destination(now, ctx, &hp, true) else {
            return false;
        };
        let next = targets
            .addrs
            .iter()
            .position(|a| *a == current)
            .and_then(|i| targets.addrs.get(i + 1).copied());
        let Some(next) = next else {
            return false;
        };
        let name = (targets.transport == Transport::Tls).then_some(hp.host.as_str());
        let Some(link) = ctx.link_to(now, targets.transport, next, name) else {
            return false;
        };
        let Some(out) = self.out.as_mut() else {
            return false;
        };
        out.addr = link;
        out.cseq = out.cseq.wrapping_add(1);
        out.authenticated = false;
        self.transmit_invite(now, ctx, None);
        true
    }
}
