//! Destination lookups for callers: each caller holds a ticket, lookups of one DID
//! share one backend request, and every ticket is answered once — from the cache, the
//! backend, or the default when the backend is slower than `route_lookup_timeout`,
//! fails, or a shutdown has begun. The cache and its rules are `backend::destination`.

use crate::backend::client::PendingRequest;
use crate::backend::destination::{Answer, Destinations, Lookup, NoRoute, Route, RouteSource};
use crate::ctx::Ctx;
use crate::io::{BackendOp, BackendReply, Event, RequestId};
use crate::time::TimerKey;
use std::collections::BTreeMap;
use std::time::Instant;

/// Who waits for a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiter {
    /// A [`crate::Command::LookupDestination`]'s ticket: answered as an event.
    Ticket(u64),
    /// A call (its id): answered through [`RouteLookups::take_ready`].
    Call(u64),
}

/// The destination cache and the lookups in flight.
#[derive(Debug)]
pub struct RouteLookups {
    /// Call destinations and who waits for them.
    routes: Destinations<Waiter>,
    /// Answers for calls, not yet handed to them.
    ready: Vec<(u64, Result<Route, NoRoute>)>,
    /// The destination lookup in flight per DID.
    requests: BTreeMap<String, RequestId>,
}

impl RouteLookups {
    /// Routes as the config says: its default domain, fixed routes, and whether the
    /// backend is asked.
    pub fn new(ctx: &Ctx) -> Self {
        Self {
            routes: Destinations::new(
                ctx.cfg.default_domain.clone(),
                ctx.cfg.fixed_routes.clone(),
                ctx.cfg.routes_from_backend,
            ),
            requests: BTreeMap::new(),
            ready: Vec::new(),
        }
    }

    /// The routes found for calls since the last call.
    pub fn take_ready(&mut self) -> Vec<(u64, Result<Route, NoRoute>)> {
        std::mem::take(&mut self.ready)
    }

    /// The domain of default destinations now, if any.
    pub fn default_domain(&self) -> Option<&str> {
        self.routes.default_domain()
    }

    /// The backend named a default domain; announced when it changes.
    pub fn set_default_domain(&mut self, ctx: &mut Ctx, domain: &str) {
        if let Some(d) = self.routes.set_default_domain(domain) {
            let domain = d.to_owned();
            ctx.emit(Event::DefaultDomainChanged { domain });
        }
    }

    /// Looks up `did` for `waiter`; a ticket's answer comes as
    /// [`Event::DestinationFound`], a call's through [`Self::take_ready`].
    pub fn lookup(&mut self, now: Instant, ctx: &mut Ctx, did: String, waiter: Waiter) {
        match self.routes.lookup(&did, now, waiter) {
            Lookup::Ready(result) => {
                answer_waiters(ctx, &mut self.ready, &did, &result, vec![waiter], None);
            }
            // Shutting down: no new request may hold up the end; the default.
            Lookup::Ask { .. } if ctx.shutting_down() => {
                let reply = BackendReply::Failed("trunkline is shutting down".to_owned());
                self.on_reply(now, ctx, did, reply);
            }
            Lookup::Ask {
                start_request: true,
            } => {
                let id = ctx.backend_request(
                    now,
                    BackendOp::LookupDestination { did: did.clone() },
                    PendingRequest::Destination { did: did.clone() },
                );
                self.requests.insert(did, id);
                let wait = now + ctx.cfg.route_lookup_timeout;
                ctx.timers.set(TimerKey::RouteWait(id.0), wait);
            }
            // Joins the request in flight; one that outlived its first callers' wait
            // gets a wait again (never longer than the lookup timeout).
            Lookup::Ask {
                start_request: false,
            } => {
                if let Some(&id) = self.requests.get(&did) {
                    let key = TimerKey::RouteWait(id.0);
                    if ctx.timers.get(key).is_none() {
                        let wait = now + ctx.cfg.route_lookup_timeout;
                        ctx.timers.set(key, wait);
                    }
                }
            }
        }
    }

    /// The callers of lookup `id` take the default: the backend is slower than
    /// `route_lookup_timeout`. The request stays in flight to fill the cache.
    pub fn release_waiters(&mut self, ctx: &mut Ctx, id: RequestId) {
        ctx.timers.cancel(TimerKey::RouteWait(id.0));
        let Some(PendingRequest::Destination { did }) = ctx.backend.pending(id) else {
            return;
        };
        let did = did.clone();
        let (result, waiting) = self.routes.release(&did);
        let secs = ctx.cfg.route_lookup_timeout.as_secs_f64();
        let reason = format!("backend did not answer within {secs}s (ROUTE_LOOKUP_TIMEOUT)");
        answer_waiters(ctx, &mut self.ready, &did, &result, waiting, Some(reason));
    }

    /// The backend's reply to lookup `id` of `did` (or its deadline).
    pub fn on_backend_reply(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        id: RequestId,
        did: String,
        reply: BackendReply,
    ) {
        ctx.timers.cancel(TimerKey::RouteWait(id.0));
        self.requests.remove(&did);
        self.on_reply(now, ctx, did, reply);
    }

    fn on_reply(&mut self, now: Instant, ctx: &mut Ctx, did: String, reply: BackendReply) {
        let (answer, fallback) = match reply {
            BackendReply::Destination { uri } => (Answer::Route(uri), None),
            BackendReply::NotFound => (Answer::NoEntry, None),
            BackendReply::Unauthorized { status } => {
                ctx.emit(Event::ApiKeyRejected { status });
                let reason = format!("backend rejected the API key (HTTP {status})");
                (Answer::Unavailable, Some(reason))
            }
            BackendReply::Failed(e) => (Answer::Unavailable, Some(e)),
            BackendReply::Providers(_) | BackendReply::Delivered | BackendReply::Config { .. } => (
                Answer::Unavailable,
                Some("unexpected reply to a destination lookup".to_owned()),
            ),
        };
        let (result, waiting) = self.routes.answer(&did, answer, now);
        // A route the cache refused (its checks live there) also falls back.
        let refused = || {
            matches!(&result, Ok(r) if r.source == RouteSource::Fallback).then(|| {
                "the backend's destinationUri is not a usable sip: or sips: URI".to_owned()
            })
        };
        let fallback = fallback.or_else(refused);
        answer_waiters(ctx, &mut self.ready, &did, &result, waiting, fallback);
    }

    /// A shutdown began: lookups in flight are dropped, their callers take the default
    /// now, and their answers must not hold up the end.
    pub fn on_shutdown(&mut self, now: Instant, ctx: &mut Ctx) {
        for (did, id) in std::mem::take(&mut self.requests) {
            self.release_waiters(ctx, id);
            ctx.backend.take(id, &mut ctx.timers);
            let _ = self.routes.answer(&did, Answer::Unavailable, now);
        }
    }
}

/// Hands `result` to every waiting caller; `fallback` says why they got the default
/// (only worth a warning when somebody was waiting).
fn answer_waiters(
    ctx: &mut Ctx,
    ready: &mut Vec<(u64, Result<Route, NoRoute>)>,
    did: &str,
    result: &Result<Route, NoRoute>,
    waiting: Vec<Waiter>,
    fallback: Option<String>,
) {
    if waiting.is_empty() {
        return;
    }
    if let Some(reason) = fallback {
        ctx.emit(Event::DestinationFallback {
            did: did.to_owned(),
            reason,
        });
    }
    for waiter in waiting {
        match waiter {
            Waiter::Ticket(ticket) => ctx.emit(Event::DestinationFound {
                ticket,
                did: did.to_owned(),
                result: result.clone(),
            }),
            Waiter::Call(id) => ready.push((id, result.clone())),
        }
    }
}
