//! The registration defects that outside testing found (issue 8), each pinned in virtual
//! time against the scripted registrar: password rotation, missing passwords, lapsed
//! bindings, shutdown accounting, API-key backoff, log noise, re-register coalescing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// Virtual time is anchored once with `Instant::now()`; everything after adds durations.
#![allow(clippy::disallowed_methods)]

mod support;

use sip_core::{Command, Config, Event, Input, RegisterOutcome, RegisterStatus};
use std::time::Duration;
use support::registrar::{Behaviour, Registrar};
use support::{config, header, provider, BackendMode, World};

const S: fn(u64) -> Duration = Duration::from_secs;
const MS: fn(u64) -> Duration = Duration::from_millis;

fn call_ids(w: &World) -> Vec<String> {
    let mut ids: Vec<String> = w
        .registers()
        .iter()
        .map(|(_, _, m)| header(m, "Call-ID").unwrap().to_owned())
        .collect();
    ids.dedup();
    ids
}

fn unregisters(w: &World) -> usize {
    w.registers()
        .iter()
        .filter(|(_, _, m)| header(m, "Expires") == Some("0"))
        .count()
}

fn cseqs(w: &World) -> Vec<u32> {
    w.registers()
        .iter()
        .map(|(_, _, m)| {
            header(m, "CSeq")
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

fn resync_with(w: &mut World, password: &str) {
    w.providers[0].password = password.into();
    w.input(Input::Command(Command::Resync));
}

/// Defect 1, registrar first: the provider takes the new password, then the backend.
/// The same binding is refreshed with the new password: same Call-ID, CSeq + 1, no
/// un-REGISTER (which would need the old password, already refused).
#[test]
fn password_rotation_at_the_registrar_first_refreshes_the_same_binding() {
    let reg = Registrar::new(&[("rot", "old")], Behaviour::default());
    let mut w = World::new(config(), reg, vec![provider("p1", "rot", "old")]);
    w.run_for(S(2));
    assert_eq!(
        w.last_report("p1").unwrap().register_status,
        RegisterStatus::Registered
    );
    let before = w.registers().len();
    w.registrar.accounts.insert("rot".into(), "new".into());
    resync_with(&mut w, "new");
    w.run_for(S(2));
    assert!(
        w.registers().len() > before,
        "the change is registered at once"
    );
    assert_eq!(
        call_ids(&w).len(),
        1,
        "one Call-ID: the binding is refreshed"
    );
    assert_eq!(unregisters(&w), 0, "nothing is un-REGISTERed");
    let c = cseqs(&w);
    assert!(c.windows(2).all(|p| p[1] > p[0]), "CSeq grows: {c:?}");
    assert_eq!(w.registrar.bindings.len(), 1);
    assert_eq!(
        w.registrar.bindings["rot"].call_id,
        call_ids(&w)[0],
        "the registrar's binding is the one we refresh"
    );
    assert_eq!(
        w.last_report("p1").unwrap().register_status,
        RegisterStatus::Registered
    );
}

/// Defect 1, backend first: the new password is refused until the provider takes it;
/// the binding made with the old one is neither removed nor duplicated, and a
/// re-register after the provider caught up refreshes it.
#[test]
fn password_rotation_at_the_backend_first_keeps_one_binding() {
    let reg = Registrar::new(&[("rot", "old")], Behaviour::default());
    let mut w = World::new(config(), reg, vec![provider("p1", "rot", "old")]);
    w.run_for(S(2));
    resync_with(&mut w, "new");
    w.run_for(S(2));
    let last = w.last_report("p1").unwrap();
    assert_eq!(last.register_status, RegisterStatus::Failed);
    assert!(last
        .register_error
        .as_deref()
        .unwrap()
        .starts_with("authentication rejected"));
    assert_eq!(
        w.registrar.bindings.len(),
        1,
        "the old binding is still there"
    );
    w.registrar.accounts.insert("rot".into(), "new".into());
    w.input(Input::Command(Command::Reregister { id: "p1".into() }));
    w.run_for(S(2));
    assert_eq!(
        w.last_report("p1").unwrap().register_status,
        RegisterStatus::Registered
    );
    assert_eq!(call_ids(&w).len(), 1);
    assert_eq!(unregisters(&w), 0);
    assert_eq!(w.registrar.bindings["rot"].call_id, call_ids(&w)[0]);
}

/// Defect 1: where an un-REGISTER is needed (the account moved to another port) and
/// the old password is already refused, it is retried with the new credentials.
#[test]
fn a_refused_unregister_is_retried_with_the_new_credentials() {
    let reg = Registrar::new(&[("mov", "old")], Behaviour::default());
    let mut w = World::new(config(), reg, vec![provider("p1", "mov", "old")]);
    w.run_for(S(2));
    w.registrar.accounts.insert("mov".into(), "new".into());
    w.providers[0].password = "new".into();
    w.providers[0].port = Some(5080);
    w.input(Input::Command(Command::Resync));
    w.run_for(S(3));
    let old_call = call_ids(&w)[0].clone();
    let unreg: Vec<_> = w
        .registers()
        .into_iter()
        .filter(|(_, _, m)| header(m, "Expires") == Some("0"))
        .cloned()
        .collect();
    assert!(
        unreg.len() >= 2,
        "refused with the old password, then retried"
    );
    assert!(unreg
        .iter()
        .all(|(_, _, m)| header(m, "Call-ID") == Some(old_call.as_str())));
    assert!(
        !w.events
            .iter()
            .any(|(_, e)| matches!(e, Event::BindingLeftBehind(_))),
        "the retry removed the binding"
    );
    assert_eq!(
        w.last_report("p1").unwrap().register_status,
        RegisterStatus::Registered
    );
}

/// Defect 1: a binding that cannot be removed is never forgotten silently.
#[test]
fn a_binding_that_cannot_be_removed_is_announced_with_what_stays() {
    let reg = Registrar::new(&[("gone", "pw")], Behaviour::default());
    let mut w = World::new(config(), reg, vec![provider("p1", "gone", "pw")]);
    w.run_for(S(2));
    // The provider disappears from the list and the registrar refuses everything.
    w.registrar.accounts.insert("gone".into(), "changed".into());
    w.providers.clear();
    w.input(Input::Command(Command::Resync));
    w.run_for(S(3));
    let left: Vec<_> = w
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::BindingLeftBehind(b) => Some(b),
            _ => None,
        })
        .collect();
    assert_eq!(left.len(), 1, "{:?}", w.events);
    assert_eq!(left[0].provider_id, "p1");
    assert!(left[0].aor.contains("gone@"), "{:?}", left[0]);
    assert!(left[0].expires_at.is_some());
    assert!(
        left[0].reason.contains("authentication rejected"),
        "{:?}",
        left[0]
    );
}

/// Defect 2: no password is an invalid entry naming `password`; nothing is sent.
#[test]
fn a_missing_password_is_an_invalid_entry_and_sends_nothing() {
    let reg = Registrar::new(&[("nopw", "pw")], Behaviour::default());
    let mut w = World::new(config(), reg, vec![provider("p1", "nopw", "")]);
    w.run_for(S(2));
    assert!(w.registers().is_empty());
    let last = w.last_report("p1").unwrap();
    assert_eq!(last.register_status, RegisterStatus::Failed);
    let error = last.register_error.as_deref().unwrap();
    assert!(error.contains("`password`"), "{error}");
    assert!(!error.contains("authentication rejected"), "{error}");
}

/// Item 9a: the binding's expiry passes while the refresh is unanswered → no longer
/// `registered`, reported at once with the reason, before the transaction times out.
#[test]
fn a_lapsed_binding_is_reported_at_once() {
    let reg = Registrar::new(
        &[("lap", "pw")],
        Behaviour {
            max_expires: 40,
            ..Behaviour::default()
        },
    );
    let mut w = World::new(config(), reg, vec![provider("p1", "lap", "pw")]);
    w.run_for(S(2));
    assert_eq!(
        w.last_report("p1").unwrap().register_status,
        RegisterStatus::Registered
    );
    // Granted 40 s: refreshed at 18–20 s; from now on nothing answers.
    w.registrar.behaviour.silent = true;
    w.run_for(S(41));
    let lapsed = w
        .reports
        .iter()
        .find(|(_, id, r)| {
            id == "p1"
                && r.register_status == RegisterStatus::Failed
                && r.register_error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("registration lapsed"))
        })
        .expect("the lapse is reported");
    // Granted at ≈0.03 s for 40 s; Timer F of the refresh would only fire after 50 s.
    assert!(
        lapsed.0 >= S(40) && lapsed.0 < S(41),
        "reported at {:?}",
        lapsed.0
    );
    let view = w.core.registrations().pop().unwrap();
    assert_eq!(view.status, RegisterStatus::Failed);
    assert_eq!(view.expires_at, None);
}

/// Defect 4: a registrar that confirms the un-REGISTER after 3 s of a 5 s grace is
/// confirmed: the grace goes to what is outstanding, less what the reports need.
#[test]
fn shutdown_waits_for_a_slow_unregister_answer() {
    let reg = Registrar::new(&[("slow", "pw")], Behaviour::default());
    let mut w = World::new(config(), reg, vec![provider("p1", "slow", "pw")]);
    w.run_for(S(2));
    w.registrar_delay = S(3);
    w.input(Input::Command(Command::Shutdown { grace: S(5) }));
    w.run_for(S(6));
    assert!(w.shutdown_complete());
    assert!(w.registrar.bindings.is_empty());
    let last = w.last_report("p1").unwrap();
    assert_eq!(last.register_status, RegisterStatus::Pending);
    assert_eq!(
        last.register_error.as_deref(),
        Some("unregistered: trunkline shut down"),
        "confirmed, not given up"
    );
}

/// Defect 5: a first REGISTER that was never answered (a black hole) is not
/// retransmitted after the shutdown began and is reported as what it was.
#[test]
fn shutdown_abandons_a_register_that_was_never_answered() {
    let reg = Registrar::new(
        &[("hole", "pw")],
        Behaviour {
            silent: true,
            ..Behaviour::default()
        },
    );
    let mut w = World::new(config(), reg, vec![provider("p1", "hole", "pw")]);
    w.run_for(S(2));
    let sent_before = w.registers().len();
    assert!(sent_before >= 2, "retransmitted while running");
    w.input(Input::Command(Command::Shutdown { grace: S(5) }));
    w.run_for(S(6));
    assert!(w.shutdown_complete());
    assert_eq!(
        w.registers().len(),
        sent_before,
        "nothing is sent after the shutdown began"
    );
    let last = w.last_report("p1").unwrap();
    assert_eq!(last.register_status, RegisterStatus::Pending);
    let error = last.register_error.as_deref().unwrap();
    assert!(
        error.contains("had not answered the REGISTER") && !error.contains("un-REGISTER"),
        "{error}"
    );
}

/// Defect 6: final statuses that could not be delivered are named.
#[test]
fn final_reports_lost_at_shutdown_are_named() {
    let reg = Registrar::new(&[("lost", "pw")], Behaviour::default());
    let mut w = World::new(config(), reg, vec![provider("p1", "lost", "pw")]);
    w.run_for(S(2));
    w.backend = BackendMode::Down;
    w.input(Input::Command(Command::Shutdown { grace: S(3) }));
    w.run_for(S(4));
    assert!(w.shutdown_complete());
    let lost = w
        .events
        .iter()
        .find_map(|(_, e)| match e {
            Event::FinalReportsLost { providers } => Some(providers.clone()),
            _ => None,
        })
        .expect("the lost reports are announced");
    assert_eq!(lost, vec![("p1".to_owned(), RegisterStatus::Pending)]);
}

/// Defect 7: a rejected API key slows every backend call alike (≥ 60 s).
#[test]
fn a_rejected_api_key_slows_every_backend_call_alike() {
    let cfg = Config {
        routes_from_backend: true,
        ..config()
    };
    let reg = Registrar::new(&[], Behaviour::default());
    let mut w = World::new_with_backend(cfg, reg, vec![], vec![], |w| {
        w.backend = BackendMode::Unauthorized;
    });
    w.run_for(S(300));
    let retries: Vec<Duration> = w
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ConfigFetchFailed { retry_in, .. } => Some(*retry_in),
            Event::ProvidersFetchFailed { retry_in, .. } => Some(*retry_in),
            _ => None,
        })
        .collect();
    assert!(retries.len() >= 4, "{retries:?}");
    assert!(retries.iter().all(|d| *d >= S(60)), "{retries:?}");
}

/// Defect 8: an unchanged error is announced once, then at a bounded rate with its
/// count; a new error is announced at once.
#[test]
fn an_unchanged_failure_is_announced_at_a_bounded_rate_with_a_count() {
    let reg = Registrar::new(
        &[("dark", "pw")],
        Behaviour {
            silent: true,
            ..Behaviour::default()
        },
    );
    let mut w = World::new(config(), reg, vec![provider("p1", "dark", "pw")]);
    w.run_for(S(3 * 3600));
    let changed = w
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::RegistrationChanged(v) if v.status == RegisterStatus::Failed))
        .count();
    let notices: Vec<_> = w
        .events
        .iter()
        .filter_map(|(at, e)| match e {
            Event::RegistrationFailing(n) => Some((*at, n.clone())),
            _ => None,
        })
        .collect();
    assert!(changed > 20, "retried every ≤ 5 min: {changed} failures");
    assert!(
        notices.len() <= 4,
        "once, then at most hourly: {}",
        notices.len()
    );
    assert_eq!(notices[0].1.attempts, 1);
    assert!(notices.len() >= 3);
    assert!(notices[1].1.attempts > 1 && notices[1].1.since == notices[0].1.since);
    assert!(notices[1].0 - notices[0].0 >= S(3600));
    // The registrar answers, wrongly now: a new error, announced at once.
    w.registrar.behaviour.silent = false;
    w.registrar.accounts.insert("dark".into(), "other".into());
    let before = notices.len();
    w.input(Input::Command(Command::Reregister { id: "p1".into() }));
    w.run_for(S(5));
    let after: Vec<_> = w
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::RegistrationFailing(n) => Some(n.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(after.len(), before + 1);
    assert_eq!(after[before].attempts, 1);
    assert!(after[before].error.starts_with("authentication rejected"));
}

/// Defect 8: outcome events say what was sent, so two "challenged" are told apart.
#[test]
fn outcome_events_say_what_was_sent() {
    let reg = Registrar::new(&[("who", "right")], Behaviour::default());
    let mut w = World::new(config(), reg, vec![provider("p1", "who", "wrong")]);
    w.run_for(S(2));
    let challenged: Vec<_> = w
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::RegisterOutcome {
                outcome: RegisterOutcome::Challenged,
                sent,
                ..
            } => Some(*sent),
            _ => None,
        })
        .collect();
    assert!(challenged.len() >= 2, "{challenged:?}");
    assert!(!challenged[0].credentials && challenged[1].credentials);
    assert!(challenged[1].cseq > challenged[0].cseq);
}

/// Item 12: re-register orders are coalesced: 200 in 2 s cost a handful of REGISTERs.
#[test]
fn reregister_orders_are_coalesced() {
    let reg = Registrar::new(&[("busy", "pw")], Behaviour::default());
    let mut w = World::new(config(), reg, vec![provider("p1", "busy", "pw")]);
    w.run_for(S(2));
    let before = w.registers().len();
    for _ in 0..200 {
        w.input(Input::Command(Command::Reregister { id: "p1".into() }));
        w.run_for(MS(10));
    }
    w.run_for(S(2));
    let sent = w.registers().len() - before;
    // Spaced a second apart: at 0 s, 1 s, 2 s (and the one queued behind the last).
    assert!((2..=4).contains(&sent), "{sent} REGISTERs for 200 orders");
    assert_eq!(
        w.last_report("p1").unwrap().register_status,
        RegisterStatus::Registered
    );
}
