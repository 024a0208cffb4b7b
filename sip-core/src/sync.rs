//! The provider list and the backend's settings: fetching them (on start, on resync,
//! every `sync_interval`, retried with backoff), and applying a list to the running
//! set by diffing it against what runs.

use crate::backend::client::PendingRequest;
use crate::backend::API_KEY_RETRY;
use crate::ctx::Ctx;
use crate::io::{BackendOp, BackendReply, Event, RegisterStatus, RegistrationView, StatusReport};
use crate::provider::ProviderSpec;
use crate::registration::Registration;
use crate::registry::{Inactive, Registry};
use crate::time::{Backoff, TimerKey};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The state of provider-list and config fetches.
#[derive(Debug)]
pub struct ProviderSync {
    in_flight: bool,
    backoff: Backoff,
    applied_once: bool,
    /// `GET /api/sip/config` in flight; it is fetched with every provider sync and
    /// retried on its own when it fails.
    config_in_flight: bool,
    config_backoff: Backoff,
}

impl ProviderSync {
    /// Nothing fetched yet; failures back off as the config says.
    pub fn new(ctx: &Ctx) -> Self {
        let backoff = || Backoff::new(ctx.cfg.backend_retry_initial, ctx.cfg.backend_retry_cap);
        Self {
            in_flight: false,
            backoff: backoff(),
            applied_once: false,
            config_in_flight: false,
            config_backoff: backoff(),
        }
    }

    /// Whether a provider list has been applied.
    pub fn applied_once(&self) -> bool {
        self.applied_once
    }

    /// Fetches the provider list (and the config with it), unless one is in flight or
    /// a shutdown has begun.
    pub fn start_fetch(&mut self, now: Instant, ctx: &mut Ctx) {
        if self.in_flight || ctx.shutting_down() {
            return;
        }
        self.in_flight = true;
        ctx.timers.cancel(TimerKey::Sync);
        ctx.backend_request(now, BackendOp::FetchProviders, PendingRequest::Fetch);
        self.start_config_fetch(now, ctx);
    }

    /// Fetches the backend's settings, where routes come from the backend.
    pub fn start_config_fetch(&mut self, now: Instant, ctx: &mut Ctx) {
        if !ctx.cfg.routes_from_backend || self.config_in_flight || ctx.shutting_down() {
            return;
        }
        self.config_in_flight = true;
        ctx.timers.cancel(TimerKey::ConfigRetry);
        ctx.backend_request(now, BackendOp::FetchConfig, PendingRequest::Config);
    }

    /// The reply to `GET /api/sip/config`: the LiveKit domain it names, if any.
    pub fn on_config_reply(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        reply: BackendReply,
    ) -> Option<String> {
        self.config_in_flight = false;
        let (error, rejected_key) = match reply {
            BackendReply::Config { livekit_domain } => {
                self.config_backoff.reset();
                return livekit_domain;
            }
            // The endpoint is optional (CONTRACT.md §3): no settings, nothing to change.
            BackendReply::NotFound => {
                self.config_backoff.reset();
                return None;
            }
            // A failure keeps the domain we have; an API-key problem is reported by
            // the provider fetch that goes with this one.
            BackendReply::Failed(e) => (e, false),
            BackendReply::Unauthorized { status } => (
                format!("backend rejected the API key (HTTP {status})"),
                true,
            ),
            BackendReply::Providers(_)
            | BackendReply::Delivered
            | BackendReply::Destination { .. } => {
                ("unexpected reply to GET /api/sip/config".to_owned(), false)
            }
        };
        let retry_in = schedule_retry(
            now,
            ctx,
            &mut self.config_backoff,
            rejected_key,
            TimerKey::ConfigRetry,
        );
        ctx.emit(Event::ConfigFetchFailed { error, retry_in });
        None
    }

    /// The reply to `GET /api/sip/providers`.
    pub fn on_fetch_reply(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        registry: &mut Registry,
        reply: BackendReply,
    ) {
        self.in_flight = false;
        let (error, slow) = match reply {
            BackendReply::Providers(list) => {
                self.backoff.reset();
                self.apply(now, ctx, registry, list);
                if let Some(every) = ctx.cfg.sync_interval {
                    if !ctx.shutting_down() {
                        ctx.timers.set(TimerKey::Sync, now + every);
                    }
                }
                return;
            }
            BackendReply::Unauthorized { status } => {
                ctx.emit(Event::ApiKeyRejected { status });
                (
                    format!("backend rejected the API key (HTTP {status})"),
                    true,
                )
            }
            BackendReply::NotFound => (
                "backend answered 404 for the provider list: check BACKEND_URL".to_owned(),
                false,
            ),
            BackendReply::Delivered
            | BackendReply::Config { .. }
            | BackendReply::Destination { .. } => {
                ("unexpected reply to a provider fetch".to_owned(), false)
            }
            BackendReply::Failed(e) => (e, false),
        };
        let retry_in = schedule_retry(now, ctx, &mut self.backoff, slow, TimerKey::Sync);
        ctx.emit(Event::ProvidersFetchFailed { error, retry_in });
    }

    /// Diffs a provider list against the running set by id: new → register; removed →
    /// un-register and forget; disabled → un-register; the same binding with new
    /// credentials, expiry or name → refreshed in place; otherwise changed → un-register
    /// the old binding and register anew; unchanged → untouched (no REGISTER, no new
    /// timer).
    pub fn apply(
        &mut self,
        now: Instant,
        ctx: &mut Ctx,
        registry: &mut Registry,
        list: Vec<ProviderSpec>,
    ) {
        let (mut added, mut removed, mut changed, mut invalid) = (0, 0, 0, 0);
        let mut seen = BTreeSet::new();
        let total = list.len();
        for spec in list {
            if !seen.insert(spec.id.clone()) {
                // A duplicate id: the first entry wins.
                invalid += 1;
                continue;
            }
            let validated = spec.validate();
            // Compare what registering depends on (the validated provider), so the core
            // keeps no second copy of every raw entry.
            let running_same = match (&validated, registry.running(&spec.id)) {
                (Ok(p), Some((_, r))) => r.provider == *p,
                _ => false,
            };
            let inactive_same = registry.inactive(&spec.id).is_some_and(|i| i.spec == spec);
            if running_same || inactive_same {
                continue;
            }
            let running = registry.running_slot(&spec.id);
            if let (Ok(p), Some(slot)) = (&validated, running) {
                if let Some(reg) = registry.get_mut(slot) {
                    if reg.same_binding(p) {
                        // Same binding, new password (or expiry, name…): refresh it in
                        // place. Un-registering it would need the old credentials,
                        // which a rotation may already have made useless.
                        reg.update(now, ctx, p.clone());
                        changed += 1;
                        continue;
                    }
                    reg.set_successor_credentials(p);
                }
            }
            if running.is_some() {
                stop_running(now, ctx, registry, &spec.id);
                changed += 1;
            }
            registry.clear_inactive(&spec.id);
            match validated {
                Err(e) => {
                    invalid += 1;
                    set_inactive(
                        now,
                        ctx,
                        registry,
                        spec,
                        RegisterStatus::Failed,
                        e.to_string(),
                    );
                }
                Ok(p) if !p.enabled => {
                    let why = "disabled: not registered while `enabled` is false".to_owned();
                    set_inactive(now, ctx, registry, spec, RegisterStatus::Pending, why);
                }
                Ok(p) => {
                    if running.is_none() {
                        added += 1;
                    }
                    let slot = registry.alloc_slot();
                    // A changed account gets a fresh identity: only the same account's
                    // previous binding may be refreshed.
                    let restored = registry.take_restored(&spec.id);
                    let mut reg = Registration::new(slot, p, ctx, restored);
                    ctx.started();
                    reg.report(now, ctx);
                    reg.start(now, ctx);
                    registry.insert_running(spec.id, slot, reg);
                }
            }
        }
        let gone: Vec<String> = registry
            .running_ids()
            .filter(|id| !seen.contains(*id))
            .map(str::to_owned)
            .collect();
        for id in gone {
            stop_running(now, ctx, registry, &id);
            ctx.backend.forget(&id);
            ctx.emit(Event::BindingForgotten { provider_id: id });
            removed += 1;
        }
        registry.retain_inactive(|id| seen.contains(id));
        self.applied_once = true;
        ctx.emit(Event::ProvidersApplied {
            total,
            added,
            removed,
            changed,
            invalid,
        });
    }
}

/// Arms `timer` for the retry of a failed fetch (not once a shutdown has begun) and
/// says in how long: the next step of `backoff`, and never sooner than
/// [`API_KEY_RETRY`] when the backend refused the key (one policy for every backend
/// call).
fn schedule_retry(
    now: Instant,
    ctx: &mut Ctx,
    backoff: &mut Backoff,
    key_rejected: bool,
    timer: TimerKey,
) -> Duration {
    let mut retry_in = backoff.next_delay(ctx.ids.unit());
    if key_rejected {
        retry_in = retry_in.max(API_KEY_RETRY);
    }
    if !ctx.shutting_down() {
        ctx.timers.set(timer, now + retry_in);
    }
    retry_in
}

/// Un-registers provider `id`'s running registration; it is freed once stopped.
fn stop_running(now: Instant, ctx: &mut Ctx, registry: &mut Registry, id: &str) {
    if let Some(slot) = registry.stop_running(id) {
        if let Some(reg) = registry.get_mut(slot) {
            reg.unregister(now, ctx, false);
        }
    }
}

/// Records a listed provider that does not run, and reports why.
fn set_inactive(
    now: Instant,
    ctx: &mut Ctx,
    registry: &mut Registry,
    spec: ProviderSpec,
    status: RegisterStatus,
    error: String,
) {
    let view = RegistrationView {
        id: spec.id.clone(),
        name: spec.name.clone(),
        status,
        error: Some(error.clone()),
        last_register_at: None,
        expires_at: None,
        next_refresh_at: None,
        registrar: format!("{}:{}", spec.host, spec.port.unwrap_or(5060)),
        // Not running: the entry's transport may be what is wrong with it.
        transport: crate::transport::Transport::Udp,
        target: None,
    };
    let report = StatusReport {
        register_status: status,
        register_error: Some(error),
        last_register_at: None,
    };
    ctx.report(now, view.clone(), report);
    registry.set_inactive(spec.id.clone(), Inactive { spec, view });
}
