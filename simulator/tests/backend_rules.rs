//! The resync and status-outbox rules, one named scenario each. Every scenario passes
//! every safety and liveness check strictly, pins its trace with insta, and asserts its
//! rule directly from the run's journal, so a snapshot update cannot quietly accept a
//! broken rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::snapshot;
use simulator::journal::{BackendCall, Journal, RegisterSent, Reply};
use simulator::models::backend::BackendMode;
use simulator::models::registrar::{Mode, RegistrarConfig};
use simulator::net::LinkConfig;
use simulator::scenario::{Fault, ProviderChange, SimCommand};
use simulator::Scenario;
use sip_core::{Event, RegisterStatus};
use std::time::Duration;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// `providers` accounts on one registrar 10 ms away that grants what is asked (3600 s:
/// no refresh within these runs, so every REGISTER after the first exchange is caused
/// by the rule under test), the backend 5 ms away, no periodic sync.
fn world(name: &str, providers: usize, heal: u64, converge: u64) -> Scenario {
    let mut s = Scenario::new(name, 1);
    let r = s.add_registrar(RegistrarConfig::default(), LinkConfig::fixed(millis(10)));
    for _ in 0..providers {
        s.add_provider(r);
    }
    s.backend_link = LinkConfig::fixed(millis(5));
    s.core.sync_interval = None;
    s.heal_at = secs(heal);
    s.converge_for = Some(secs(converge));
    s
}

fn registers<'a>(j: &'a Journal, provider: &'a str) -> Vec<&'a RegisterSent> {
    j.registers_of(provider).collect()
}

fn reports<'a>(j: &'a Journal, provider: &'a str) -> Vec<&'a BackendCall> {
    j.reports_of(provider).collect()
}

/// Every applied list: when, and its `ProvidersApplied` counts (added, removed, changed).
fn applied(j: &Journal) -> Vec<(Duration, usize, usize, usize)> {
    j.events
        .iter()
        .filter_map(|(at, e)| match e {
            Event::ProvidersApplied {
                added,
                removed,
                changed,
                ..
            } => Some((*at, *added, *removed, *changed)),
            _ => None,
        })
        .collect()
}

/// Gaps between successive times.
fn gaps(times: &[Duration]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Outbox rule: the backend holds exactly the core's latest status of `provider`; it
/// stored the reports in the order the core issued them (an older one never overwrote a
/// newer one); and no report of `provider` was issued while an earlier one awaited its
/// answer.
fn assert_latest_wins(j: &Journal, provider: &str) {
    let (_, latest) = j
        .statuses_of(provider)
        .last()
        .expect("the core reported a status");
    let held = &j.statuses[provider];
    assert_eq!(
        (
            held.register_status.as_str(),
            &held.register_error,
            &held.last_register_at
        ),
        (
            latest.status.as_str(),
            &latest.error,
            &latest.last_register_at
        ),
        "{provider}: the backend does not hold the latest status"
    );
    let issued = reports(j, provider);
    let order: Vec<usize> = j
        .stored_of(provider)
        .map(|s| {
            issued
                .iter()
                .position(|c| c.id == s.request)
                .expect("a stored report was issued")
        })
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "{provider}: stored out of issue order: {order:?}"
    );
    // The core's own deadline: backend timeout (5 s) plus one second.
    let deadline = secs(6);
    for w in issued.windows(2) {
        let done = w[0]
            .answer
            .as_ref()
            .filter(|a| !a.late)
            .map_or(w[0].sent_at + deadline, |a| a.at);
        assert!(
            w[1].sent_at >= done,
            "{provider}: report at {:?} issued while the one at {:?} was in flight",
            w[1].sent_at,
            w[0].sent_at
        );
    }
}

// Rule 1: an unchanged provider is untouched by a resync — no REGISTER, no report —
// while the list is diffed by id: a change to another entry touches only that entry.
#[test]
fn unchanged_provider_untouched_by_resync() {
    let mut s = world("unchanged_untouched", 2, 80, 30);
    for t in [20, 40, 60] {
        s.at(secs(t), Fault::Command(SimCommand::Resync));
    }
    s.at(
        secs(30),
        Fault::Provider {
            provider: 1,
            change: ProviderChange::Expires(Some(1800)),
        },
    );
    let r = snapshot("unchanged_provider_untouched_by_resync", s);
    let j = &r.journal;

    // p1: only the first exchange (challenged, then answered) in the whole run, three
    // resyncs and the runner's final one notwithstanding.
    let p1 = registers(j, "p1");
    assert_eq!(p1.len(), 2, "p1 REGISTERs: {p1:?}");
    assert!(p1.iter().all(|r| r.at < secs(1) && r.expires == 3600));
    let p1_reports = reports(j, "p1");
    assert_eq!(p1_reports.len(), 2, "p1: pending, registered; then nothing");
    assert!(p1_reports.iter().all(|c| c.sent_at < secs(1)));
    assert_eq!(
        j.fetches().count(),
        5,
        "start, three resyncs, the final one"
    );

    // p2 changed before the second resync: only it is re-registered.
    let p2: Vec<_> = registers(j, "p2")
        .into_iter()
        .filter(|r| r.at >= secs(40))
        .collect();
    assert!(p2.iter().all(|r| r.at < secs(41)), "p2: {p2:?}");
    // Same binding, new expiry: refreshed in place, nothing un-REGISTERed.
    assert!(!p2.is_empty() && p2.iter().all(|r| !r.is_unregister() && r.expires == 1800));
    let lists = applied(j);
    let changes: Vec<usize> = lists.iter().map(|&(_, a, r, c)| a + r + c).collect();
    assert_eq!(changes, [2, 0, 1, 0, 0], "added+removed+changed per list");
    assert_eq!(lists[2].3, 1, "the resync at 40 s changed p2");
}

// Rule 1: changed expiry of the same account at the same registrar → the binding is
// refreshed in place: same Call-ID, higher CSeq, the new expiry, no un-REGISTER; one
// binding is left.
#[test]
fn provider_changed_by_resync() {
    let mut s = world("provider_changed", 1, 40, 30);
    s.at(
        secs(20),
        Fault::Provider {
            provider: 0,
            change: ProviderChange::Expires(Some(1800)),
        },
    );
    s.at(secs(21), Fault::Command(SimCommand::Resync));
    let r = snapshot("provider_changed_by_resync", s);
    let j = &r.journal;

    let all = registers(j, "p1");
    let (before, after): (Vec<&RegisterSent>, Vec<&RegisterSent>) =
        all.into_iter().partition(|r| r.at < secs(21));
    let old_call = &before[0].call_id;
    assert!(before
        .iter()
        .all(|r| &r.call_id == old_call && r.expires == 3600));
    assert!(!after.is_empty());
    assert!(after[0].at < secs(22), "refreshed at the resync: {after:?}");
    assert!(after.iter().all(|r| !r.is_unregister()
        && &r.call_id == old_call
        && r.expires == 1800
        && r.cseq > before[before.len() - 1].cseq));
    let left: Vec<_> = j.bindings_of("p1").collect();
    assert_eq!(left.len(), 1);
    assert_eq!(&left[0].call_id, old_call);
    assert_eq!(
        applied(j)[1].3,
        1,
        "the resync reports one changed provider"
    );
    assert_eq!(j.statuses["p1"].register_status, "registered");
}

// Rule 1: changed credentials of the same account → the binding is refreshed in place
// with them (a rotation changes the password at the provider first, so un-REGISTERing
// with the old one may already fail). A wrong password: the refresh is rejected and
// reported failed; the binding is not removed. The right password again: the same
// binding is refreshed. One Call-ID throughout, nothing un-REGISTERed, one binding.
#[test]
fn provider_credentials_changed_by_resync() {
    let mut s = world("credentials_changed", 1, 60, 30);
    s.at(
        secs(20),
        Fault::Provider {
            provider: 0,
            change: ProviderChange::Credentials(false),
        },
    );
    s.at(secs(21), Fault::Command(SimCommand::Resync));
    s.at(
        secs(40),
        Fault::Provider {
            provider: 0,
            change: ProviderChange::Credentials(true),
        },
    );
    s.at(secs(41), Fault::Command(SimCommand::Resync));
    let r = snapshot("provider_credentials_changed_by_resync", s);
    let j = &r.journal;

    let all = registers(j, "p1");
    let calls: Vec<&str> = {
        let mut c: Vec<&str> = all.iter().map(|r| r.call_id.as_str()).collect();
        c.dedup();
        c
    };
    assert_eq!(calls.len(), 1, "one binding, one Call-ID: {calls:?}");
    assert!(all.iter().all(|r| !r.is_unregister()), "{all:?}");
    assert!(
        all.iter().any(|r| r.at >= secs(21) && r.at < secs(22)),
        "the new (wrong) password is tried at once: {all:?}"
    );
    assert!(
        all.iter().any(|r| r.at >= secs(41) && r.at < secs(42)),
        "the right password is tried at once, not after the rejection's backoff: {all:?}"
    );
    let rejected = j.statuses_of("p1").any(|(at, v)| {
        at >= secs(21)
            && at < secs(40)
            && v.status == RegisterStatus::Failed
            && v.error
                .as_deref()
                .is_some_and(|e| e.starts_with("authentication rejected"))
    });
    assert!(rejected, "the wrong password is reported");
    assert!(j
        .stored_of("p1")
        .any(|s| s.report.register_status == RegisterStatus::Failed));
    let left: Vec<_> = j.bindings_of("p1").collect();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].call_id, calls[0]);
    assert_eq!(j.statuses["p1"].register_status, "registered");
    assert_latest_wins(j, "p1");
}

// Rule 1: a changed registrar → the old binding is un-REGISTERed at the old registrar
// before anything goes to the new one; the new one ends with the only binding.
#[test]
fn provider_moved_to_another_registrar() {
    let mut s = world("provider_moved", 1, 40, 30);
    s.add_registrar(RegistrarConfig::default(), LinkConfig::fixed(millis(10)));
    s.at(
        secs(20),
        Fault::Provider {
            provider: 0,
            change: ProviderChange::Registrar(1),
        },
    );
    s.at(secs(21), Fault::Command(SimCommand::Resync));
    let r = snapshot("provider_moved_to_another_registrar", s);
    let j = &r.journal;

    let all = registers(j, "p1");
    let first_new = all
        .iter()
        .position(|r| r.registrar == 1)
        .expect("registered at reg-1");
    let unregister = all
        .iter()
        .position(|r| r.is_unregister())
        .expect("un-REGISTER at reg-0");
    assert!(unregister < first_new, "un-REGISTER first: {all:?}");
    assert_eq!(all[unregister].registrar, 0);
    assert_eq!(all[unregister].call_id, all[0].call_id);
    assert!(all[first_new..]
        .iter()
        .all(|r| r.registrar == 1 && r.call_id != all[0].call_id));
    let left: Vec<_> = j.bindings_of("p1").collect();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].registrar, 1);
}

// Rule 1: `enabled:false` → un-REGISTER (Expires: 0) and the disabled status reported;
// `enabled:true` again → registered anew.
#[test]
fn provider_disabled_by_resync() {
    let mut s = world("provider_disabled", 1, 60, 30);
    s.at(
        secs(20),
        Fault::Provider {
            provider: 0,
            change: ProviderChange::Enabled(false),
        },
    );
    s.at(secs(21), Fault::Command(SimCommand::Resync));
    s.at(
        secs(40),
        Fault::Provider {
            provider: 0,
            change: ProviderChange::Enabled(true),
        },
    );
    s.at(secs(41), Fault::Command(SimCommand::Resync));
    let r = snapshot("provider_disabled_by_resync", s);
    let j = &r.journal;

    let all = registers(j, "p1");
    let disabled: Vec<_> = all
        .iter()
        .filter(|r| r.at >= secs(21) && r.at < secs(41))
        .collect();
    assert_eq!(disabled.len(), 1, "only the un-REGISTER while disabled");
    assert!(disabled[0].is_unregister() && disabled[0].call_id == all[0].call_id);
    let stored_disabled = j.stored_of("p1").find(|s| {
        s.report.register_status == RegisterStatus::Pending
            && s.report
                .register_error
                .as_deref()
                .is_some_and(|e| e.starts_with("disabled"))
    });
    let stored_disabled = stored_disabled.expect("the disabled status reached the backend");
    assert!(stored_disabled.at >= secs(21) && stored_disabled.at < secs(22));
    let enabled: Vec<_> = all.iter().filter(|r| r.at >= secs(41)).collect();
    assert!(!enabled.is_empty() && enabled.iter().all(|r| r.expires == 3600));
    assert!(enabled.iter().all(|r| r.call_id != all[0].call_id));
    let left: Vec<_> = j.bindings_of("p1").collect();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].call_id, enabled[0].call_id);
    assert_eq!(j.statuses["p1"].register_status, "registered");
}

// Rule 1: a failed fetch keeps the running set as it is (no un-REGISTER, no REGISTER,
// no status change) and is retried with growing backoff until the backend answers; the
// list then applied is unchanged and causes nothing.
#[test]
fn provider_list_fetch_failure_keeps_running_set() {
    let mut s = world("fetch_failure", 2, 100, 30);
    s.at(secs(20), Fault::Backend(BackendMode::Error { status: 500 }));
    s.at(secs(21), Fault::Command(SimCommand::Resync));
    s.at(secs(45), Fault::Backend(BackendMode::Up));
    let r = snapshot("provider_list_fetch_failure_keeps_running_set", s);
    let j = &r.journal;

    let fetches: Vec<_> = j.fetches().filter(|c| c.sent_at >= secs(21)).collect();
    let failed: Vec<_> = fetches
        .iter()
        .take_while(|c| matches!(c.answer.as_ref().map(|a| &a.reply), Some(Reply::Failed(_))))
        .collect();
    assert!(failed.len() >= 4, "retried: {fetches:?}");
    let recovered = fetches[failed.len()];
    assert!(recovered.sent_at >= secs(45));
    assert!(matches!(
        recovered.answer.as_ref().map(|a| &a.reply),
        Some(Reply::Providers(ids)) if ids.len() == 2
    ));
    // Backoff: every gap longer than the one before, and at least the announced delay.
    let times: Vec<Duration> = fetches[..=failed.len()].iter().map(|c| c.sent_at).collect();
    let spacing = gaps(&times);
    assert!(
        spacing.windows(2).all(|w| w[1] > w[0]),
        "spacing {spacing:?}"
    );
    let announced: Vec<Duration> = j
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ProvidersFetchFailed { retry_in, .. } => Some(*retry_in),
            _ => None,
        })
        .collect();
    assert_eq!(announced.len(), failed.len());
    assert!(spacing
        .iter()
        .zip(&announced)
        .all(|(gap, wait)| gap >= wait));
    // The running set untouched throughout.
    for p in ["p1", "p2"] {
        assert!(registers(j, p).iter().all(|r| r.at < secs(1)), "{p}");
        assert!(j.statuses_of(p).all(|(at, _)| at < secs(1)), "{p}");
        assert_eq!(j.statuses[p].register_status, "registered");
    }
    let after: Vec<_> = applied(j)
        .into_iter()
        .filter(|(at, ..)| *at >= secs(21))
        .collect();
    assert!(!after.is_empty() && after.iter().all(|&(_, a, r, c)| a + r + c == 0));
}

// Rule 2: through a backend outage, the registration flaps registered → failed →
// registered → failed → registered. Reports are retried with growing backoff, each
// retry carrying the newest status; once the backend is back it receives only the
// latest, and never an older status after a newer one.
#[test]
fn status_flaps_during_outage_latest_wins() {
    let mut s = world("status_flaps", 1, 120, 60);
    let reject = Mode::Reject {
        status: 503,
        retry_after: None,
    };
    s.at(secs(10), Fault::Backend(BackendMode::Down));
    for (t, mode) in [(11, reject.clone()), (30, reject)] {
        s.at(secs(t), Fault::Registrar { registrar: 0, mode });
        s.at(
            secs(t + 1),
            Fault::Command(SimCommand::Reregister { provider: 0 }),
        );
        // Normal again before the retry (at least 2.5 s later) goes out.
        s.at(
            secs(t + 2),
            Fault::Registrar {
                registrar: 0,
                mode: Mode::Normal,
            },
        );
    }
    s.at(secs(90), Fault::Backend(BackendMode::Up));
    let r = snapshot("status_flaps_during_outage_latest_wins", s);
    let j = &r.journal;

    let flaps: Vec<RegisterStatus> = j
        .statuses_of("p1")
        .filter(|(at, _)| *at >= secs(10))
        .map(|(_, v)| v.status)
        .collect();
    use RegisterStatus::{Failed, Registered};
    assert_eq!(flaps, [Failed, Registered, Failed, Registered]);
    // Nothing reached the backend during the outage; after it, only the latest.
    let stored: Vec<_> = j.stored_of("p1").filter(|s| s.at >= secs(10)).collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].at >= secs(90));
    assert_eq!(stored[0].report.register_status, Registered);
    assert_latest_wins(j, "p1");
    // Retries back off: each gap longer than the last, up to the first doubling past
    // the 60 s cap.
    let attempts: Vec<Duration> = reports(j, "p1")
        .iter()
        .filter(|c| c.sent_at >= secs(10) && c.sent_at < secs(90))
        .map(|c| c.sent_at)
        .collect();
    let spacing = gaps(&attempts);
    assert!(spacing.len() >= 5, "{attempts:?}");
    assert!(spacing[..5].windows(2).all(|w| w[1] > w[0]), "{spacing:?}");
}

// Rule 2: a PATCH answered 404 → the core stops that attempt and resyncs (a
// provider-list GET follows each 404 at once); the provider is still listed, so its
// status is delivered once the backend stops answering 404.
#[test]
fn patch_404_triggers_resync() {
    let mut s = world("patch_404", 1, 60, 60);
    s.at(secs(10), Fault::Backend(BackendMode::NotFound));
    s.at(
        secs(12),
        Fault::Command(SimCommand::Reregister { provider: 0 }),
    );
    s.at(secs(30), Fault::Backend(BackendMode::Up));
    let r = snapshot("patch_404_triggers_resync", s);
    let j = &r.journal;

    let not_found: Vec<_> = reports(j, "p1")
        .into_iter()
        .filter(|c| c.answered(&Reply::NotFound))
        .collect();
    assert!(!not_found.is_empty());
    for c in &not_found {
        let answered = c.answer.as_ref().unwrap().at;
        assert!(
            j.fetches().any(|f| f.sent_at == answered),
            "no resync when the 404 at {answered:?} came"
        );
    }
    // The resyncs found the list unchanged: no REGISTER beyond the commanded one.
    let after: Vec<_> = registers(j, "p1")
        .into_iter()
        .filter(|r| r.at >= secs(1))
        .collect();
    assert!(after.iter().all(|r| r.at < secs(13)), "{after:?}");
    let delivered = reports(j, "p1")
        .into_iter()
        .find(|c| c.sent_at >= secs(30) && c.answered(&Reply::Delivered));
    assert!(delivered.is_some(), "delivered once the backend is back");
    assert_latest_wins(j, "p1");
}

// Rule 2: a PATCH answered 404 for a provider the backend really dropped → the core
// stops reporting it: the resync that follows the 404 finds it gone, un-REGISTERs and
// forgets it, and no PATCH for it follows.
#[test]
fn patch_404_for_removed_provider_stops() {
    let mut s = world("patch_404_removed", 2, 40, 30);
    // Gone from the backend without a resync yet: only the 404 can tell the core.
    s.at(
        secs(10),
        Fault::Provider {
            provider: 0,
            change: ProviderChange::Remove,
        },
    );
    s.at(
        secs(12),
        Fault::Command(SimCommand::Reregister { provider: 0 }),
    );
    let r = snapshot("patch_404_for_removed_provider_stops", s);
    let j = &r.journal;

    let p1 = reports(j, "p1");
    let last = p1.last().expect("reported");
    assert!(
        last.answered(&Reply::NotFound),
        "the last PATCH got the 404"
    );
    assert!(last.sent_at >= secs(12));
    let answered = last.answer.as_ref().unwrap().at;
    let resync = j
        .fetches()
        .find(|f| f.sent_at == answered)
        .expect("a resync follows the 404 at once");
    assert!(matches!(
        resync.answer.as_ref().map(|a| &a.reply),
        Some(Reply::Providers(ids)) if ids == &["p2".to_owned()]
    ));
    let unregister = registers(j, "p1")
        .into_iter()
        .find(|r| r.is_unregister())
        .expect("un-REGISTERed");
    assert!(unregister.at >= resync.sent_at);
    assert!(j.events.iter().any(|(at, e)| *at >= resync.sent_at
        && matches!(e, Event::BindingForgotten { provider_id } if provider_id == "p1")));
    assert_eq!(j.bindings_of("p1").count(), 0);
    // p2 is untouched throughout.
    assert!(reports(j, "p2").iter().all(|c| c.sent_at < secs(1)));
}

// Rule 2: 401/403 from the backend → an "API key rejected" event for every rejection,
// and retries no sooner than the slow interval (60 s), for reports and provider fetches
// alike; once the key is accepted again the latest status is delivered.
#[test]
fn api_key_rejected_retries_slowly() {
    let mut s = world("api_key_rejected", 1, 300, 60);
    s.at(secs(10), Fault::Backend(BackendMode::Unauthorized));
    s.at(
        secs(12),
        Fault::Command(SimCommand::Reregister { provider: 0 }),
    );
    s.at(secs(15), Fault::Command(SimCommand::Resync));
    s.at(
        secs(100),
        Fault::Backend(BackendMode::Error { status: 403 }),
    );
    s.at(secs(200), Fault::Backend(BackendMode::Up));
    let r = snapshot("api_key_rejected_retries_slowly", s);
    let j = &r.journal;

    let slow = secs(60);
    let rejected: Vec<(&BackendCall, u16)> = j
        .backend
        .iter()
        .filter_map(|c| match c.answer.as_ref() {
            Some(a) if !a.late => match a.reply {
                Reply::Unauthorized(status) => Some((c, status)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let statuses: Vec<u16> = rejected.iter().map(|(_, s)| *s).collect();
    let events: Vec<u16> = j
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ApiKeyRejected { status } => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(events, statuses, "one API-key event per rejection");
    assert!(statuses.contains(&401) && statuses.contains(&403));
    let rejected_reports = rejected.iter().filter(|(c, _)| !c.is_fetch()).count();
    let rejected_fetches = rejected.iter().filter(|(c, _)| c.is_fetch()).count();
    assert!(rejected_reports >= 3 && rejected_fetches >= 3);
    for (c, _) in &rejected {
        let at = c.answer.as_ref().unwrap().at;
        let next = j
            .backend
            .iter()
            .find(|n| n.sent_at > c.sent_at && n.provider == c.provider)
            .expect("retried");
        assert!(
            next.sent_at - at >= slow,
            "retried {:?} after a rejected key",
            next.sent_at - at
        );
    }
    let delivered = reports(j, "p1")
        .into_iter()
        .find(|c| c.sent_at >= secs(200) && c.answered(&Reply::Delivered));
    assert!(delivered.is_some(), "delivered once the key is accepted");
    assert_latest_wins(j, "p1");
}
