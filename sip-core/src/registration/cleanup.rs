//! Removing the binding a registration may have left at a target it moved away from
//! (see [`super::targets`]): an un-REGISTER of our Contact (`Expires: 0`, the same
//! Call-ID, the next CSeq) to that target, answered with credentials if it challenges,
//! sent again with the registration backoff while the target stays silent, until it
//! answers or the binding has lapsed there anyway. A registrar that stopped answering
//! and comes back (a paused process, a healed network) must not go on routing calls to
//! a binding nobody refreshes, beside the one at the target now in use.
//!
//! Our Contact with `expires=0`, not `Contact: *`: the wildcard would also remove
//! bindings of the same account that are not ours.

use super::{AuthCache, Parts, Registration, MAX_CHALLENGE_ROUNDS};
use crate::auth;
use crate::ctx::Ctx;
use crate::io::Event;
use crate::time::{RetryCounts, TimerKey};
use crate::transaction::{Owner, TxnEvent};
use crate::transport::Transport;
use std::net::SocketAddr;
use std::time::Instant;

/// One target to remove our binding from.
#[derive(Debug)]
pub(super) struct Cleanup {
    target: SocketAddr,
    /// When the binding lapses there by itself: nothing to do after it.
    until: Instant,
    /// `host:port` our Contact named there.
    advertised: Box<str>,
    /// The un-REGISTER in flight.
    txn: Option<u64>,
    /// When the next one is sent, while none is in flight.
    next_at: Option<Instant>,
    retries: RetryCounts,
    auth: Option<AuthCache>,
    challenge_rounds: u8,
}

impl Registration {
    /// Starts removing our binding at `target` (valid there until `until` at most).
    pub(super) fn abandon(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        target: SocketAddr,
        until: Instant,
    ) {
        if until <= now {
            return;
        }
        let advertised = self.advertised(ctx, target).into_boxed_str();
        let cleanups = &mut self.rare_mut().cleanups;
        if let Some(c) = cleanups.iter_mut().find(|c| c.target == target) {
            c.until = c.until.max(until);
            return;
        }
        cleanups.push(Cleanup {
            target,
            until,
            advertised,
            txn: None,
            next_at: Some(now),
            retries: RetryCounts::default(),
            auth: None,
            challenge_rounds: 0,
        });
        self.run_cleanups(now, ctx);
    }

    /// We use `target` again: its binding is ours to refresh, not to remove.
    pub(super) fn cancel_cleanup(&mut self, ctx: &mut Ctx, target: SocketAddr) {
        let Some(rare) = self.rare.as_mut() else {
            return;
        };
        rare.cleanups.retain(|c| {
            if c.target != target {
                return true;
            }
            if let Some(txn) = c.txn {
                ctx.txns.abandon(txn, &mut ctx.timers);
            }
            false
        });
    }

    /// Sends the un-REGISTERs that are due, drops the lapsed, and sets the timer to
    /// the next one due.
    pub(crate) fn run_cleanups(&mut self, now: Instant, ctx: &mut Ctx) {
        let Some(mut cleanups) = self.rare.as_mut().map(|r| std::mem::take(&mut r.cleanups)) else {
            return;
        };
        cleanups.retain(|c| c.until > now || c.txn.is_some());
        for c in &mut cleanups {
            if c.txn.is_none() && c.next_at.is_some_and(|t| t <= now) {
                c.next_at = None;
                self.send_cleanup(now, ctx, c);
            }
        }
        let next = cleanups.iter().filter_map(|c| c.next_at).min();
        match next {
            Some(at) => ctx.timers.set(TimerKey::Cleanup(self.slot), at),
            None => ctx.timers.cancel(TimerKey::Cleanup(self.slot)),
        }
        if let Some(r) = self.rare.as_mut() {
            r.cleanups = cleanups;
        }
    }

    fn send_cleanup(&mut self, now: Instant, ctx: &mut Ctx, c: &mut Cleanup) {
        self.bump_cseq(ctx);
        let branch = ctx.ids.branch();
        let (payload, _) = self.compose(
            ctx,
            Parts {
                local: &c.advertised,
                branch: &branch,
                expires: 0,
                stale: None,
                auth: c.auth.as_mut(),
            },
        );
        let transport = self.provider.transport;
        let name = (transport == Transport::Tls).then_some(self.next_hop());
        let Some(link) = ctx.link_to(now, transport, c.target, name) else {
            self.retry_cleanup(now, ctx, c);
            return;
        };
        let txn = ctx.txns.start(
            now,
            &ctx.cfg.timers,
            &mut ctx.timers,
            Owner::Cleanup(self.slot),
            branch,
            "REGISTER",
            link,
            payload.clone(),
        );
        c.txn = Some(txn);
        ctx.transmit(link, payload);
    }

    fn retry_cleanup(&self, now: Instant, ctx: &mut Ctx, c: &mut Cleanup) {
        let draw = ctx.ids.unit();
        let delay = c
            .retries
            .next_temporary(ctx.cfg.retry_initial, ctx.cfg.retry_cap, draw);
        c.next_at = Some((now + delay).min(c.until));
    }

    /// An un-REGISTER of ours ended.
    pub fn on_cleanup_transaction(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        txn: u64,
        event: TxnEvent,
    ) {
        let Some(mut cleanups) = self.rare.as_mut().map(|r| std::mem::take(&mut r.cleanups)) else {
            return;
        };
        let mut done: Option<(SocketAddr, bool, String)> = None;
        if let Some(at) = cleanups.iter().position(|c| c.txn == Some(txn)) {
            if let Some(c) = cleanups.get_mut(at) {
                c.txn = None;
                if matches!(event, TxnEvent::Final(_)) {
                    ctx.silent.answered(c.target);
                }
                match event {
                    TxnEvent::Final(resp) => match resp.status {
                        200..=299 => {
                            done =
                                Some((c.target, true, format!("{} {}", resp.status, resp.reason)))
                        }
                        401 | 407 => {
                            let header = if resp.status == 407 {
                                "Proxy-Authenticate"
                            } else {
                                "WWW-Authenticate"
                            };
                            let realm = self.provider.realm.as_deref();
                            match auth::select_challenge(resp.headers.get_all(header), realm) {
                                Ok(challenge) if c.challenge_rounds < MAX_CHALLENGE_ROUNDS => {
                                    c.challenge_rounds += 1;
                                    c.auth = Some(AuthCache {
                                        challenge,
                                        proxy: resp.status == 407,
                                        nc: 0,
                                    });
                                    c.next_at = Some(now);
                                }
                                _ => {
                                    let why = format!(
                                        "it answered {} {} to our credentials",
                                        resp.status, resp.reason
                                    );
                                    done = Some((c.target, false, why));
                                }
                            }
                        }
                        // Overloaded or shutting down: alive, so ask again later.
                        500..=599 => self.retry_cleanup(now, ctx, c),
                        _ => {
                            let why = format!("it answered {} {}", resp.status, resp.reason);
                            done = Some((c.target, false, why));
                        }
                    },
                    TxnEvent::Timeout | TxnEvent::TransportError(_) => {
                        self.retry_cleanup(now, ctx, c)
                    }
                    TxnEvent::Provisional(_) | TxnEvent::NoAck => c.txn = Some(txn),
                }
            }
        }
        if let Some((target, removed, why)) = &done {
            cleanups.retain(|c| c.target != *target);
            ctx.emit(Event::AbandonedBindingCleared {
                provider_id: self.provider.id.clone(),
                target: *target,
                removed: *removed,
                why: why.clone(),
            });
        }
        if let Some(r) = self.rare.as_mut() {
            r.cleanups = cleanups;
        }
        self.run_cleanups(now, ctx);
    }

    /// Whether a binding may still be left at a target other than the one in use.
    pub fn cleanups_pending(&self) -> usize {
        self.rare.as_deref().map_or(0, |r| r.cleanups.len())
    }
}
