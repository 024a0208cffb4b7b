//! Which address a registration's REGISTERs go to (RFC 3263 §4): the next hop (the
//! outbound proxy, else the registrar) is located by [`crate::dns::locate`], and the
//! registration keeps the target it uses ("sticky": refreshes, re-registers and the
//! keep-alives go there) for as long as that target answers and is still listed.
//!
//! It moves on (RFC 3263 §4.3) when a REGISTER gets no answer (Timer F), a `503`, or
//! its connection fails: straight to the next target of its order, without backoff,
//! once per target in a round; when a whole round has failed, the usual backoff runs
//! and the next round starts at the target tried last. A target left while it may
//! still hold our binding is handed to [`super::cleanup`], which removes the binding
//! when that target answers again, so the provider never routes a call to a binding
//! nobody refreshes. When a re-resolution (the TTL ran out) no longer lists the target
//! in use, the first of the new list is used, the old one cleaned up the same way.

use super::{FailureClass, Goal, OurAddress, Phase, Registration};
use crate::ctx::Ctx;
use crate::dns::locate::{locate, Asker, Located, Place, Targets};
use crate::dns::Waiter;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// A failover waiting for the next hop's answers (see [`Registration::fail_over`]).
#[derive(Debug)]
pub(super) struct FailingOver {
    /// The target that failed.
    from: SocketAddr,
    /// What failed there.
    error: String,
    /// Whether the failed request may have made a binding there.
    may_be_bound: bool,
}

impl Registration {
    /// What RFC 3263 locates for this registration: the next hop, with the port the
    /// entry gave (none: SRV) and the entry's transport.
    fn place(&self) -> Place<'_> {
        let p = &self.provider;
        let (host, port) = match &p.outbound_proxy {
            Some(proxy) => (&*proxy.0, proxy.1),
            None => (&*p.host, p.given_port.map(std::num::NonZeroU16::get)),
        };
        Place {
            host,
            port,
            transport: Some(p.transport),
        }
    }

    /// Locates the next hop (starting queries when the cache lacks answers).
    fn located(&self, now: Instant, ctx: &mut Ctx) -> Located {
        self.locate_with(now, ctx, false)
    }

    /// [`Registration::located`], using answers whose TTL ran out when there are no
    /// fresh ones: for where a failing request goes next (a TTL shorter than Timer F
    /// must not make 1,000 registrations wait for a lookup to leave a dead target).
    fn located_for_failover(&self, now: Instant, ctx: &mut Ctx) -> Located {
        self.locate_with(now, ctx, true)
    }

    fn locate_with(&self, now: Instant, ctx: &mut Ctx, stale_ok: bool) -> Located {
        let waiter = Waiter::Registration(self.slot);
        let mut asker = Asker::new(&mut ctx.dns, waiter, &mut ctx.out, &mut ctx.next_query);
        asker.stale_ok = stale_ok;
        // The slot draws this registration's order among equal-priority SRV records:
        // the same order every time it looks, a different one per registration.
        let seed = u64::from(self.slot).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        locate(self.place(), now, seed, &mut asker)
    }

    /// Resolves the next hop if its answers ran out, then queues the REGISTER.
    pub(super) fn locate_and_queue(&mut self, now: Instant, ctx: &mut Ctx) {
        match self.located(now, ctx) {
            Located::Ready(targets) => {
                if let Some(f) = self.rare.as_mut().and_then(|r| r.failing_over.take()) {
                    // A failover that waited for the answers.
                    if !self.move_on(now, ctx, f.from, &targets, &f.error, f.may_be_bound) {
                        self.fail(now, ctx, FailureClass::Temporary, f.error, None);
                    }
                    return;
                }
                self.use_targets(now, ctx, &targets);
                self.phase = Phase::Queued;
                ctx.pacer.push_back(self.slot, self.target());
            }
            Located::Failed(error) => {
                if let Some(r) = self.rare.as_mut() {
                    r.failing_over = None;
                }
                let error = format!("temporary failure: {error}");
                self.fail(now, ctx, FailureClass::Temporary, error, None);
            }
            Located::Pending => self.phase = Phase::Resolving,
        }
    }

    /// An answer this registration waited for arrived: look again.
    pub fn on_resolved(&mut self, now: Instant, ctx: &mut Ctx) {
        if self.phase == Phase::Resolving {
            self.locate_and_queue(now, ctx);
        }
    }

    /// Keeps the target in use if `targets` still lists it, else takes the first.
    fn use_targets(&mut self, now: Instant, ctx: &mut Ctx, targets: &Targets) {
        let Some(&first) = targets.addrs.first() else {
            return;
        };
        let keep = self.target().filter(|t| targets.addrs.contains(t));
        let chosen = keep.unwrap_or(first);
        if let Some(old) = self.target().filter(|t| *t != chosen) {
            // Re-resolved and no longer listed: the old target may hold our binding.
            if let Some(until) = self.bound_until.filter(|t| *t > now) {
                self.abandon(now, ctx, old, until);
            }
        }
        self.move_to(ctx, chosen, targets);
    }

    fn move_to(&mut self, ctx: &mut Ctx, target: SocketAddr, targets: &Targets) {
        if self.target() != Some(target) {
            // Calls from this provider are admitted by the addresses of all its
            // targets: after a failover, its calls may come from any of them.
            let mut ips: Vec<IpAddr> = Vec::with_capacity(targets.addrs.len());
            ips.push(target.ip());
            for a in &targets.addrs {
                if !ips.contains(&a.ip()) {
                    ips.push(a.ip());
                }
            }
            ctx.provider_addresses(self.slot, &ips);
            self.cancel_cleanup(ctx, target);
            // A challenge belongs to the registrar that sent it: answering another
            // one's nonce to a new target would read as wrong credentials.
            self.auth = None;
            self.answered_nonce = None;
            self.challenge_rounds = 0;
        }
        self.set_target(target);
        // The driver's local address is ours towards the first target; one host
        // reaches the others from the same address in all but multi-homed setups (set
        // SIP_PUBLIC_ADDRESS there). What the registrar saw beats it.
        if let (Some(ip), false) = (
            targets.local_ip,
            matches!(self.address, OurAddress::Learned(..)),
        ) {
            self.address = OurAddress::Local(ip);
        }
    }

    /// After `error` (a timeout, `503` or a failed connection, RFC 3263 §4.3): moves
    /// to the next target and sends the REGISTER there at once. Returns `false` when
    /// there is none to move to (a single target, or this round has tried them all):
    /// the caller then fails with backoff. `may_be_bound`: the failed request may have
    /// made a binding there (it timed out), beyond the one we already had.
    pub(super) fn fail_over(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        error: &str,
        may_be_bound: bool,
    ) -> bool {
        if self.goal != Goal::Registered {
            // An un-REGISTER is for the target that holds the binding.
            return false;
        }
        let Some(current) = self.target() else {
            return false;
        };
        match self.located_for_failover(now, ctx) {
            Located::Ready(targets) => {
                self.move_on(now, ctx, current, &targets, error, may_be_bound)
            }
            Located::Pending => {
                // The answers ran out while the request waited (Timer F is 32 s, a
                // TTL may be shorter): move on once they are back.
                self.rare_mut().failing_over = Some(Box::new(FailingOver {
                    from: current,
                    error: error.to_owned(),
                    may_be_bound,
                }));
                self.phase = Phase::Resolving;
                true
            }
            Located::Failed(_) => false,
        }
    }

    /// [`Registration::fail_over`] with the located `targets`.
    fn move_on(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        current: SocketAddr,
        targets: &Targets,
        error: &str,
        may_be_bound: bool,
    ) -> bool {
        let count = targets.addrs.len();
        let tried = self.rare.as_deref().map_or(0, |r| r.failovers);
        if count < 2 || usize::from(tried) + 1 >= count {
            if let Some(r) = self.rare.as_mut() {
                r.failovers = 0;
            }
            return false;
        }
        let at = targets.addrs.iter().position(|a| *a == current);
        let next = at.map_or(0, |i| (i + 1) % count);
        let Some(&next) = targets.addrs.get(next) else {
            return false;
        };
        let rare = self.rare_mut();
        rare.failovers = rare.failovers.saturating_add(1);
        let bound = self.bound_until.filter(|t| *t > now);
        let made = may_be_bound
            .then(|| now + std::time::Duration::from_secs(u64::from(self.sent_expires)));
        if let Some(until) = bound.max(made) {
            self.abandon(now, ctx, current, until);
        }
        self.move_to(ctx, next, targets);
        ctx.emit(crate::io::Event::TargetChanged {
            provider_id: self.provider.id.clone(),
            from: current,
            to: next,
            reason: error.to_owned(),
        });
        self.requeue_now(ctx);
        true
    }

    /// The REGISTER about to go to `target` would go to an address another
    /// registration found silent ([`crate::silent_targets`]): moves to the next target
    /// instead, when there is one (returns whether it did).
    pub(super) fn skip_silent(&mut self, now: Instant, ctx: &mut Ctx, target: SocketAddr) -> bool {
        if self.goal != Goal::Registered {
            return false;
        }
        let Located::Ready(targets) = self.located_for_failover(now, ctx) else {
            return false;
        };
        // When every other target is silent too, the marks tell nothing: send.
        if !elsewhere(&targets, target, ctx, now) {
            return false;
        }
        let error =
            format!("{target} does not answer (another registration's request there failed)");
        self.move_on(now, ctx, target, &targets, &error, false)
    }

    /// Another registration found `target` silent while our REGISTER waits for it:
    /// stop waiting and move to the next target now, when there is one that is not
    /// silent too. The abandoned request may still make a binding there (a paused
    /// registrar processes it later): the cleanup removes it.
    pub fn on_target_silent(&mut self, now: Instant, ctx: &mut Ctx, target: SocketAddr) {
        let Phase::InFlight(txn) = self.phase else {
            return;
        };
        if self.goal != Goal::Registered || self.target() != Some(target) {
            return;
        }
        let Located::Ready(targets) = self.located_for_failover(now, ctx) else {
            return;
        };
        if !elsewhere(&targets, target, ctx, now) {
            return;
        }
        ctx.txns.abandon(txn, &mut ctx.timers);
        self.phase = Phase::Waiting;
        let error = format!(
            "no response from {} (another registration's request there timed out)",
            self.registrar_at()
        );
        let may_be_bound = self.sent_expires > 0;
        if !self.move_on(now, ctx, target, &targets, &error, may_be_bound) {
            self.fail(now, ctx, FailureClass::Temporary, error, None);
        }
    }

    /// A REGISTER succeeded: the round of failovers is over.
    pub(super) fn targets_confirmed(&mut self) {
        if let Some(r) = self.rare.as_mut() {
            r.failovers = 0;
        }
    }
}

/// Whether `targets` has another address than `target` that is not marked silent.
fn elsewhere(targets: &Targets, target: SocketAddr, ctx: &mut Ctx, now: Instant) -> bool {
    targets
        .addrs
        .iter()
        .any(|a| *a != target && !ctx.silent.is_silent(*a, now))
}
