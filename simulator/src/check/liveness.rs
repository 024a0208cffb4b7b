//! Liveness, checked once after the world healed and the run converged (TigerBeetle's
//! VOPR second phase): every provider that can be registered is — in the core's view and
//! at its registrar, with exactly one binding — every other provider has the status it
//! must have, no stale binding is left, and the backend holds exactly the core's latest
//! status for every provider in the list.

use super::{Findings, Invariant};
use crate::models::backend::Backend;
use crate::models::registrar::Registrar;
use crate::scenario::{ProviderDef, RegistrarDef};
use sip_core::{RegisterStatus, RegistrationView};
use std::collections::BTreeMap;

/// What a provider should end up as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Registered, with one binding at its registrar.
    Registered,
    /// Failed (invalid entry or wrong password).
    Failed,
    /// Pending (disabled).
    Pending,
}

impl Expected {
    /// The status the core should report.
    pub fn status(self) -> RegisterStatus {
        match self {
            Self::Registered => RegisterStatus::Registered,
            Self::Failed => RegisterStatus::Failed,
            Self::Pending => RegisterStatus::Pending,
        }
    }
}

/// The reference model: what a provider's definition implies.
pub fn expected(def: &ProviderDef, registrars: &[RegistrarDef]) -> Expected {
    match def.spec(registrars).validate() {
        Err(_) => Expected::Failed,
        Ok(p) if !p.enabled => Expected::Pending,
        Ok(_) if def.wrong_password => Expected::Failed,
        Ok(_) => Expected::Registered,
    }
}

/// Everything the liveness check looks at.
pub struct World<'a> {
    /// The core's `registrations()`.
    pub views: &'a [RegistrationView],
    /// The backend model.
    pub backend: &'a Backend,
    /// The registrar models, by index.
    pub registrars: &'a [Registrar],
    /// The registrar definitions.
    pub registrar_defs: &'a [RegistrarDef],
    /// Provider definitions as they are now (workload changes applied), with whether
    /// each is in the backend's list.
    pub providers: &'a [(ProviderDef, bool)],
    /// The Call-ID each provider registers with now (from the wire).
    pub current_calls: BTreeMap<String, Option<String>>,
}

/// Bindings of the provider's account at registrars other than the one serving it now
/// (it was moved: the old binding must have been removed).
fn bindings_elsewhere(w: &World<'_>, def: &ProviderDef) -> usize {
    w.registrars
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != def.registrar)
        .map(|(_, r)| r.bindings_of(&def.username).count())
        .sum()
}

/// Runs the liveness checks.
pub fn check(f: &mut Findings, w: &World<'_>) {
    let views: BTreeMap<&str, &RegistrationView> =
        w.views.iter().map(|v| (v.id.as_str(), v)).collect();
    for (def, listed) in w.providers {
        let registrar = w.registrars.get(def.registrar);
        let bindings: Vec<_> = registrar
            .map(|r| r.bindings_of(&def.username).collect())
            .unwrap_or_default();
        let elsewhere = bindings_elsewhere(w, def);
        if elsewhere > 0 {
            f.push(
                Invariant::ExtraBinding,
                format!(
                    "{}: {elsewhere} binding(s) left at a registrar that no longer serves it",
                    def.id
                ),
            );
        }
        if !listed {
            if views.contains_key(def.id.as_str()) {
                f.push(
                    Invariant::WrongStatus,
                    format!(
                        "{}: removed from the list but still in registrations()",
                        def.id
                    ),
                );
            }
            if !bindings.is_empty() {
                f.push(
                    Invariant::ExtraBinding,
                    format!(
                        "{}: removed, but {} binding(s) remain",
                        def.id,
                        bindings.len()
                    ),
                );
            }
            continue;
        }
        let want = expected(def, w.registrar_defs);
        let Some(view) = views.get(def.id.as_str()) else {
            f.push(
                Invariant::NotRegistered,
                format!("{}: listed but absent from registrations()", def.id),
            );
            continue;
        };
        if view.status != want.status() {
            let inv = if want == Expected::Registered {
                Invariant::NotRegistered
            } else {
                Invariant::WrongStatus
            };
            f.push(
                inv,
                format!(
                    "{}: status {} (error {:?}), expected {}",
                    def.id,
                    view.status.as_str(),
                    view.error,
                    want.status().as_str()
                ),
            );
        }
        let current = w.current_calls.get(&def.id).cloned().flatten();
        if want == Expected::Registered {
            let ours = bindings
                .iter()
                .filter(|b| Some(&b.call_id) == current.as_ref())
                .count();
            if ours != 1 {
                f.push(
                    Invariant::MissingBinding,
                    format!(
                        "{}: {ours} binding(s) of the current registration at its registrar",
                        def.id
                    ),
                );
            }
            if bindings.len() > ours {
                f.push(
                    Invariant::ExtraBinding,
                    format!(
                        "{}: {} binding(s) besides the current one",
                        def.id,
                        bindings.len() - ours
                    ),
                );
            }
        } else if !bindings.is_empty() {
            f.push(
                Invariant::ExtraBinding,
                format!(
                    "{}: {} binding(s), expected none ({:?})",
                    def.id,
                    bindings.len(),
                    want
                ),
            );
        }
        match w.backend.status(&def.id) {
            None => f.push_for(
                Invariant::BackendStale,
                &def.id,
                format!(
                    "{}: backend holds no status; core says {}",
                    def.id,
                    view.status.as_str()
                ),
            ),
            Some(s) => {
                if s.register_status != view.status.as_str()
                    || s.register_error != view.error
                    || s.last_register_at != view.last_register_at
                {
                    f.push_for(
                        Invariant::BackendStale,
                        &def.id,
                        format!(
                            "{}: backend holds {} {:?} {:?}; core says {} {:?} {:?}",
                            def.id,
                            s.register_status,
                            s.register_error,
                            s.last_register_at,
                            view.status.as_str(),
                            view.error,
                            view.last_register_at
                        ),
                    );
                }
            }
        }
    }
}

/// After a graceful shutdown on healthy links: no binding is left, and the backend holds
/// the core's final status of every listed provider.
pub fn check_shutdown(f: &mut Findings, w: &World<'_>) {
    let views: BTreeMap<&str, &RegistrationView> =
        w.views.iter().map(|v| (v.id.as_str(), v)).collect();
    for (def, listed) in w.providers {
        let left = w
            .registrars
            .iter()
            .map(|r| r.bindings_of(&def.username).count())
            .sum::<usize>();
        if left > 0 {
            f.push(
                Invariant::ShutdownIncomplete,
                format!("{}: {left} binding(s) left after shutdown", def.id),
            );
        }
        if !listed {
            continue;
        }
        if let (Some(view), stored) = (views.get(def.id.as_str()), w.backend.status(&def.id)) {
            let same = stored.is_some_and(|s| {
                s.register_status == view.status.as_str() && s.register_error == view.error
            });
            if !same {
                f.push_for(
                    Invariant::ShutdownIncomplete,
                    &def.id,
                    format!(
                        "{}: backend holds {:?}, final status {} {:?}",
                        def.id,
                        stored.map(|s| (&s.register_status, &s.register_error)),
                        view.status.as_str(),
                        view.error
                    ),
                );
            }
        }
    }
}
