//! Core bugs the simulator found, each as a minimal deterministic scenario, kept as
//! regression tests. All four were fixed in the core in commit db414e8 ("fix five bugs
//! found by the simulator…"); before it, each of these runs broke the invariant named
//! in its comment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use simulator::check::KnownIssues;
use simulator::models::backend::BackendMode;
use simulator::models::registrar::{Mode, RegistrarConfig};
use simulator::net::{Cut, LinkConfig};
use simulator::scenario::{Fault, ProviderChange, SimCommand, Target};
use simulator::trace::TraceMode;
use simulator::{run, Report, RunOptions, Scenario};
use std::time::Duration;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn base(name: &str) -> Scenario {
    let mut s = Scenario::new(name, 3);
    s.add_registrar(
        RegistrarConfig::default(),
        LinkConfig::fixed(Duration::from_millis(10)),
    );
    s.add_provider(0);
    s.backend_link = LinkConfig::fixed(Duration::from_millis(5));
    s.core.sync_interval = None;
    s
}

fn run_with(s: Scenario, known: KnownIssues) -> Report {
    run(
        s,
        RunOptions {
            trace: TraceMode::Full,
            stop_at_first: false,
            keep_patch_log: true,
            known,
        },
    )
}

/// Broke `liveness-backend-latest` (found by seed 59 of the sweep). The status outbox
/// compared a new status with the last *acknowledged* one. A report
/// that timed out although the backend stored it leaves the backend holding something
/// newer than the core believes; when the status then returns to the acknowledged value
/// it is never sent, and the backend keeps the stale status.
fn outbox_unknown_outcome() -> Scenario {
    let mut s = base("outbox_unknown_outcome");
    // Wrong password: "authentication rejected" is reported and acknowledged first.
    s.providers[0].wrong_password = true;
    // The backend stores PATCHes but answers after the core's 6 s deadline.
    s.at(
        secs(60),
        Fault::Backend(BackendMode::Slow { delay: secs(8) }),
    );
    s.at(
        secs(61),
        Fault::Partition {
            target: Target::Registrar(0),
            cut: Cut::Both,
        },
    );
    // A REGISTER now times out: "no response" is stored, its outcome unknown to the core.
    s.at(
        secs(62),
        Fault::Command(SimCommand::Reregister { provider: 0 }),
    );
    // The retry in flight gets through once repaired: "authentication rejected" again,
    // which the outbox thinks the backend holds.
    s.at(
        secs(100),
        Fault::Repair {
            target: Target::Registrar(0),
        },
    );
    s.at(secs(200), Fault::Backend(BackendMode::Up));
    s.heal_at = secs(300);
    s.converge_for = Some(secs(300));
    s
}

#[test]
fn outbox_resends_after_unknown_outcome() {
    let r = run_with(outbox_unknown_outcome(), KnownIssues::none());
    assert!(r.passed(), "{}", r.failure_text(30));
}

/// Broke `one-register-in-flight` (seed 5). A provider removed while its REGISTER is in
/// flight: the core abandoned the
/// transaction and sent the un-REGISTER at once — a second transaction of the same
/// registration without a final response to the first (RFC 3261 §10.2).
fn unregister_overlap() -> Scenario {
    let mut s = base("unregister_overlap");
    s.at(
        secs(20),
        Fault::Registrar {
            registrar: 0,
            mode: Mode::Slow { delay: secs(10) },
        },
    );
    s.at(
        secs(21),
        Fault::Command(SimCommand::Reregister { provider: 0 }),
    );
    s.at(
        secs(22),
        Fault::Provider {
            provider: 0,
            change: ProviderChange::Remove,
        },
    );
    s.at(secs(23), Fault::Command(SimCommand::Resync));
    s.heal_at = secs(60);
    s.converge_for = Some(secs(60));
    s
}

#[test]
fn unregister_waits_for_in_flight_register() {
    let r = run_with(unregister_overlap(), KnownIssues::none());
    assert!(r.passed(), "{}", r.failure_text(30));
}

/// Broke `one-register-in-flight` (seeds 278, 349). `Command::Reregister` while a
/// REGISTER was in flight abandoned it and started another.
fn reregister_overlap() -> Scenario {
    let mut s = base("reregister_overlap");
    s.at(
        secs(20),
        Fault::Registrar {
            registrar: 0,
            mode: Mode::Slow { delay: secs(10) },
        },
    );
    s.at(
        secs(21),
        Fault::Command(SimCommand::Reregister { provider: 0 }),
    );
    s.at(
        secs(22),
        Fault::Command(SimCommand::Reregister { provider: 0 }),
    );
    s.heal_at = secs(60);
    s.converge_for = Some(secs(60));
    s
}

#[test]
fn reregister_waits_for_in_flight_register() {
    let r = run_with(reregister_overlap(), KnownIssues::none());
    assert!(r.passed(), "{}", r.failure_text(30));
}

/// Broke `liveness-backend-latest` (found by a probe). A PATCH answered 404 although
/// the provider is still listed: the core forgot the
/// report and resynced; the unchanged list re-created nothing, so a status that does not
/// change again (a disabled provider) never reaches the backend.
fn patch_404_for_listed_provider() -> Scenario {
    let mut s = base("patch_404_listed");
    s.providers[0].enabled = false;
    s.at(Duration::ZERO, Fault::Backend(BackendMode::NotFound));
    s.at(secs(30), Fault::Backend(BackendMode::Up));
    s.heal_at = secs(60);
    s.converge_for = Some(secs(600));
    s
}

#[test]
fn patch_404_for_listed_provider_is_reported_again() {
    let r = run_with(patch_404_for_listed_provider(), KnownIssues::none());
    assert!(r.passed(), "{}", r.failure_text(30));
}
