//! Every call in progress, found by either leg's dialog, and the rules that hold
//! across calls: admission limits, the shutdown drain, the counters.
//!
//! Limits (CONTRACT.md §6): beyond `MAX_CALLS` calls in all, or
//! `MAX_CALLS_PER_PROVIDER` from one provider (counted per registration; calls that
//! no single provider can be named for count only towards the total), a new INVITE
//! gets `503` with `Retry-After: 5`, soon enough for a carrier to retry and long
//! enough not to hammer. From a shutdown on, new INVITEs get `503` without
//! Retry-After (carriers then try their next route at once, which is the new instance
//! in a rolling deploy), and calls in progress go on until `CALL_DRAIN` runs out.
//!
//! Outcome labels of `trunkline_calls_total`: `answered`, `busy` (486/600),
//! `rejected` (any other refusal by the destination), `cancelled` (by the caller),
//! `no_answer` (ring timeout), `no_route`, `failed` (the destination unreachable or
//! silent, or ended by us before an answer), `bad_request`, `refused_limit`,
//! `refused_shutdown`, `refused_unknown_source`.

use super::call::{Call, CallerProvider, UNAVAILABLE};
use super::dialed;
use super::fork;
use super::outbound::{self, NotForwarded};
use crate::backend::destination::{NoRoute, Route};
use crate::ctx::Ctx;
use crate::io::{CallView, Event};
use crate::message::{response_to, Request};
use crate::routing::RouteLookups;
use crate::time::{CallTimer, TimerKey};
use crate::transaction::{Leg, TxnEvent};
use crate::transport::Link;
use std::collections::BTreeMap;
use std::time::Instant;

/// `Retry-After` of a `503` for a limit, in seconds.
pub const LIMIT_RETRY_AFTER: u32 = 5;

/// An INVITE that admission let in, as [`Calls::on_invite`] takes it.
#[derive(Debug)]
pub struct NewCall<'a> {
    /// Its server transaction.
    pub txn: u64,
    /// The INVITE.
    pub request: &'a Request,
    /// Where it came from (answers and our requests to the caller go back on it).
    pub source: Link,
    /// Our `host:port` towards the caller, when known (a public address, or the
    /// socket's own address when bound to one).
    pub local: Option<String>,
    /// The provider, when one can be named.
    pub provider: Option<CallerProvider>,
}

/// The calls in progress.
#[derive(Debug, Default)]
pub struct Calls {
    /// Boxed: a `Call` is over a kilobyte, and a B-tree node holds room for eleven
    /// values whether they are there or not (half full after sequential inserts), which
    /// doubled each call's bytes (`sip-core/tests/memory.rs`, `core_bytes_per_call`).
    calls: BTreeMap<u64, Box<Call>>,
    /// (Call-ID, From tag) of the caller's dialog → call.
    by_caller: BTreeMap<(String, String), u64>,
    /// Our Call-ID towards the destination → call.
    by_callee: BTreeMap<String, u64>,
    /// Calls per provider registration slot.
    per_provider: BTreeMap<u32, u32>,
    next_id: u64,
    draining: bool,
    /// Destination dialogs of calls that ended lately, for their late 2xx.
    ended: fork::EndedDialogs,
}

impl Calls {
    /// Calls in progress.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// What `GET /api/calls` shows, by id.
    pub fn views(&self, ctx: &Ctx) -> Vec<CallView> {
        self.calls.values().map(|c| c.view(ctx)).collect()
    }

    /// A new call from `new`, unless a limit or the shutdown refuses it. The route
    /// lookup starts here; its answer comes back through [`Calls::on_route`].
    pub fn on_invite(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        routing: &mut RouteLookups,
        new: NewCall<'_>,
    ) {
        let key = caller_key(new.request);
        if self.by_caller.contains_key(&key) {
            // The same INVITE under a new branch (a caller that restarts its
            // transaction): the call in progress stands.
            refuse(now, ctx, new.txn, new.request, 482, "Loop Detected", None);
            return;
        }
        let slot = new.provider.as_ref().map(|p| p.slot);
        let settings = &ctx.cfg.calls;
        let total_full = settings
            .max_calls
            .is_some_and(|m| self.calls.len() >= m as usize);
        let provider_full = match (settings.max_calls_per_provider, slot) {
            (Some(m), Some(s)) => self.per_provider.get(&s).copied().unwrap_or(0) >= m,
            _ => false,
        };
        if self.draining || ctx.shutting_down() {
            count(ctx, "refused_shutdown", new.provider.as_ref());
            refuse(
                now,
                ctx,
                new.txn,
                new.request,
                503,
                "Service Unavailable: shutting down",
                None,
            );
            return;
        }
        if total_full || provider_full {
            count(ctx, "refused_limit", new.provider.as_ref());
            let reason = if total_full {
                "Service Unavailable: MAX_CALLS reached"
            } else {
                "Service Unavailable: this provider's call limit reached"
            };
            refuse(
                now,
                ctx,
                new.txn,
                new.request,
                503,
                reason,
                Some(LIMIT_RETRY_AFTER),
            );
            return;
        }
        let account = new.provider.as_ref().map(|p| p.username.as_str());
        let to = new.request.headers.get("To");
        let Some(did) = dialed::dialed_number(&new.request.uri, to, account) else {
            count(ctx, "bad_request", new.provider.as_ref());
            refuse(
                now,
                ctx,
                new.txn,
                new.request,
                484,
                "Address Incomplete: no number dialed",
                None,
            );
            return;
        };
        // Checked before any routing: a looping call goes nowhere.
        let max_forwards = match outbound::next_max_forwards(new.request) {
            Ok(n) => n,
            Err(e) => {
                let reason = match e {
                    NotForwarded::TooManyHops => "Too Many Hops",
                    NotForwarded::BadMaxForwards => "Bad Request: Max-Forwards is not a number",
                };
                let status = if e == NotForwarded::TooManyHops {
                    483
                } else {
                    400
                };
                count(ctx, "bad_request", new.provider.as_ref());
                refuse(now, ctx, new.txn, new.request, status, reason, None);
                return;
            }
        };
        self.next_id += 1;
        let id = self.next_id;
        let call = Call::new(
            now,
            ctx,
            id,
            new.request.clone(),
            new.txn,
            new.source,
            new.local,
            new.provider,
            did.clone(),
            max_forwards,
        );
        if let Some(s) = slot {
            *self.per_provider.entry(s).or_default() += 1;
        }
        self.by_caller.insert(key, id);
        self.calls.insert(id, Box::new(call));
        routing.lookup(now, ctx, did, crate::routing::Waiter::Call(id));
    }

    /// The route for call `id`.
    pub fn on_route(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        id: u64,
        result: Result<Route, NoRoute>,
    ) {
        self.with(now, ctx, id, |call, ctx| call.on_route(now, ctx, result));
    }

    /// The destination address for call `id`.
    /// An answer call `id` waited for arrived: it looks again.
    pub fn on_resolved(&mut self, now: Instant, ctx: &mut Ctx, id: u64) {
        self.with(now, ctx, id, |call, ctx| call.on_resolved(now, ctx));
    }

    /// What a transaction of call `id` towards (or from) `leg` reports.
    pub fn on_txn(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        id: u64,
        leg: Leg,
        txn: u64,
        event: TxnEvent,
    ) {
        if !self.calls.contains_key(&id) {
            // The call has ended, its INVITE's transaction lives on (Timer M): a 2xx
            // from the destination still wants its ACK, and a BYE.
            if let (Leg::Callee, TxnEvent::Final(resp)) = (leg, &event) {
                let invite = resp.headers.cseq().is_some_and(|(_, m)| m == "INVITE");
                match ctx.txns.link_of(txn) {
                    Some(came) if invite && (200..300).contains(&resp.status) => {
                        self.ended.on_late_answer(now, ctx, resp, came);
                    }
                    _ => {}
                }
            }
            return;
        }
        self.with(now, ctx, id, |call, ctx| {
            call.on_txn(now, ctx, leg, txn, event)
        });
    }

    /// A timer of call `id`.
    pub fn on_timer(&mut self, now: Instant, ctx: &mut Ctx, id: u64, timer: CallTimer) {
        self.with(now, ctx, id, |call, ctx| call.on_timer(now, ctx, timer));
    }

    /// A CANCEL (server transaction `txn`); `false` when it is for no call of ours.
    pub fn on_cancel(&mut self, now: Instant, ctx: &mut Ctx, txn: u64, req: &Request) -> bool {
        let Some(&id) = self.by_caller.get(&caller_key(req)) else {
            return false;
        };
        self.with(now, ctx, id, |call, ctx| call.on_cancel(now, ctx, txn, req));
        true
    }

    /// Whether `req` is for a call we hold: a CANCEL of its INVITE, or a request inside
    /// one of its dialogs.
    pub fn holds(&self, req: &Request) -> bool {
        if req.method == "CANCEL" {
            return self.by_caller.contains_key(&caller_key(req));
        }
        self.find(req).is_some()
    }

    /// The leg of a call an in-dialog request (with a To-tag) belongs to.
    fn find(&self, req: &Request) -> Option<(u64, Leg)> {
        let to_tag = req.headers.to_tag()?;
        if let Some(&id) = self.by_caller.get(&caller_key(req)) {
            let call = self.calls.get(&id)?;
            return (call.tag == to_tag).then_some((id, Leg::Caller));
        }
        let &id = self.by_callee.get(req.headers.call_id()?)?;
        Some((id, Leg::Callee))
    }

    /// A request inside a call's dialog (server transaction `txn`); `false` when it
    /// belongs to no call (the caller answers `481`).
    pub fn on_in_dialog(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        txn: u64,
        source: Link,
        req: &Request,
    ) -> bool {
        let Some((id, leg)) = self.find(req) else {
            return false;
        };
        self.with(now, ctx, id, |call, ctx| {
            call.on_in_dialog(now, ctx, leg, txn, source, req)
        });
        true
    }

    /// An ACK outside any transaction (for a 2xx); `false` when it is for no call.
    pub fn on_ack(&mut self, now: Instant, ctx: &mut Ctx, req: &Request) -> bool {
        let Some((id, leg)) = self.find(req) else {
            return false;
        };
        self.with(now, ctx, id, |call, ctx| call.on_ack(ctx, leg, req));
        true
    }

    /// Hangs call `id` up on both legs (the admin API); `false` when unknown.
    pub fn hang_up(&mut self, now: Instant, ctx: &mut Ctx, id: u64) -> bool {
        if !self.calls.contains_key(&id) {
            return false;
        }
        let why = "hung up by an operator (DELETE /api/calls)".to_owned();
        self.with(now, ctx, id, |call, ctx| {
            call.hang_up(now, ctx, UNAVAILABLE, why)
        });
        true
    }

    /// A shutdown began: new calls are refused; those in progress are hung up when
    /// `CALL_DRAIN` runs out. Returns when that is.
    pub fn on_shutdown(&mut self, now: Instant, ctx: &mut Ctx) -> Instant {
        self.draining = true;
        let at = now + ctx.cfg.calls.drain;
        if self.calls.is_empty() {
            return now;
        }
        ctx.timers.set(TimerKey::CallDrain, at);
        at
    }

    /// `CALL_DRAIN` ran out: every call still up is hung up.
    pub fn on_drain_expired(&mut self, now: Instant, ctx: &mut Ctx) {
        let ids: Vec<u64> = self.calls.keys().copied().collect();
        for id in ids {
            let why = "CALL_DRAIN ran out during a shutdown".to_owned();
            let status = (503, "Service Unavailable: shutting down");
            self.with(now, ctx, id, |call, ctx| {
                call.hang_up(now, ctx, status, why)
            });
        }
    }

    /// The shutdown ends: every call still in the table (a BYE unanswered, a CANCEL
    /// still waiting for a provisional) is given up and recorded as ended.
    pub fn abandon_all(&mut self, now: Instant, ctx: &mut Ctx) {
        let ids: Vec<u64> = self.calls.keys().copied().collect();
        for id in ids {
            self.with(now, ctx, id, |call, ctx| call.abandon(now, ctx));
        }
    }

    /// Runs `f` on call `id`, then keeps the indexes up to date and forgets the call
    /// once both legs are over.
    fn with(&mut self, now: Instant, ctx: &mut Ctx, id: u64, f: impl FnOnce(&mut Call, &mut Ctx)) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        f(call, ctx);
        if let Some(cid) = call.outbound_call_id() {
            if !self.by_callee.contains_key(cid) {
                self.by_callee.insert(cid.to_owned(), id);
            }
        }
        if !call.is_over() {
            return;
        }
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        call.cancel_timers(ctx);
        self.by_caller.remove(&(
            call.inbound_call_id().to_owned(),
            call.caller_tag().to_owned(),
        ));
        if let Some(cid) = call.outbound_call_id() {
            self.by_callee.remove(cid);
            for tag in call.callee_dialog_tags() {
                self.ended.insert(now, cid, tag);
            }
        }
        if let Some(p) = &call.provider {
            if let Some(n) = self.per_provider.get_mut(&p.slot) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_provider.remove(&p.slot);
                }
            }
        }
        let record = call.record(now);
        count(ctx, record.outcome, call.provider.as_ref());
        if let Some(setup) = record.setup_time {
            ctx.stats.call_setup.observe(setup);
        }
        call.announce_end(now, ctx);
        if self.draining && self.calls.is_empty() {
            ctx.timers.cancel(TimerKey::CallDrain);
        }
    }
}

/// The caller's dialog key of a request: (Call-ID, From tag).
fn caller_key(req: &Request) -> (String, String) {
    (
        req.headers.call_id().unwrap_or_default().to_owned(),
        req.headers.from_tag().unwrap_or_default().to_owned(),
    )
}

/// Counts a call's outcome (and the provider's calls).
fn count(ctx: &mut Ctx, label: &'static str, provider: Option<&CallerProvider>) {
    *ctx.stats.calls.entry(label).or_default() += 1;
    if let Some(p) = provider {
        *ctx.stats.calls_by_provider.entry(p.id.clone()).or_default() += 1;
    }
}

/// Refuses an INVITE before it became a call, and logs it as a call that ended.
fn refuse(
    now: Instant,
    ctx: &mut Ctx,
    txn: u64,
    req: &Request,
    status: u16,
    reason: &str,
    retry_after: Option<u32>,
) {
    let tag = ctx.ids.tag();
    let mut b = response_to(req, status, reason, Some(&tag));
    if let Some(secs) = retry_after {
        b = b.header("Retry-After", secs.to_string());
    }
    ctx.respond(now, txn, status, b.to_bytes());
    ctx.emit(Event::CallRefused {
        call_id: req.headers.call_id().unwrap_or_default().to_owned(),
        status,
        reason: reason.to_owned(),
    });
}
