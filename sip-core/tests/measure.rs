//! Measurements of backend traffic in virtual time (benchmarks, not tests: run with
//! `cargo test --release -p sip-core --test measure -- --ignored --nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// Virtual time is anchored once with `Instant::now()`; everything after adds durations.
#![allow(clippy::disallowed_methods)]

mod support;

use sip_core::{Config, RegisterStatus};
use std::time::Duration;
use support::registrar::Behaviour;
use support::{config, numbered, BackendMode, World};

const N: usize = 1000;

fn world() -> World {
    let (reg, providers) = numbered(
        N,
        "u",
        "p",
        Behaviour {
            max_expires: 3600,
            ..Behaviour::default()
        },
    );
    World::new(
        Config {
            register_rate: 200,
            ..config()
        },
        reg,
        providers,
    )
}

#[test]
#[ignore = "measurement: run with --ignored --nocapture"]
fn patch_traffic_in_steady_state() {
    let mut w = world();
    w.run_for(Duration::from_secs(600));
    let before = w.attempted_reports;
    w.run_for(Duration::from_secs(3600));
    let per_hour = w.attempted_reports - before;
    println!(
        "steady state, {N} providers granted 3600 s: {per_hour} PATCHes in one simulated hour = {:.2} per provider per hour",
        per_hour as f64 / N as f64
    );
}

#[test]
#[ignore = "measurement: run with --ignored --nocapture"]
fn recovery_after_a_ten_minute_outage() {
    let mut w = world();
    w.run_for(Duration::from_secs(30));
    w.backend = BackendMode::Down;
    // During the outage the registrar answers 503: every provider's status changes.
    w.registrar.behaviour.fixed = Some((503, "Service Unavailable", vec![]));
    for p in 0..N {
        w.input(sip_core::Input::Command(sip_core::Command::Reregister {
            id: format!("p{p}"),
        }));
    }
    w.run_for(Duration::from_secs(600));
    let attempts_during = w.attempted_reports;
    w.backend = BackendMode::Up;
    let recovered_at = w.elapsed();
    let mut step = 0;
    loop {
        w.run_for(Duration::from_secs(1));
        step += 1;
        let views = w.core.registrations();
        let all = views.iter().all(|v| {
            w.last_report(&v.id)
                .is_some_and(|r| r.register_status == v.status && r.register_error == v.error)
        });
        if all || step > 600 {
            break;
        }
    }
    let failed = w
        .core
        .registrations()
        .iter()
        .filter(|v| v.status == RegisterStatus::Failed)
        .count();
    println!(
        "{N} providers, 10-minute backend outage ({attempts_during} report attempts in all by its end, {failed} failed statuses to deliver): all latest statuses delivered {} s after recovery",
        (w.elapsed() - recovered_at).as_secs()
    );
}

#[test]
#[ignore = "measurement: run with --ignored --nocapture"]
fn shutdown_of_ten_thousand() {
    let n = 10_000;
    let (reg, providers) = numbered(n, "u", "p", Behaviour::default());
    let mut w = World::new(
        Config {
            register_rate: 10_000,
            max_reports_in_flight: usize::MAX,
            ..config()
        },
        reg,
        providers,
    );
    w.run_for(Duration::from_secs(20));
    let start = w.elapsed();
    w.input(sip_core::Input::Command(sip_core::Command::Shutdown {
        grace: Duration::from_secs(5),
    }));
    w.run_for(Duration::from_secs(6));
    let done = w
        .events
        .iter()
        .find(|(_, e)| matches!(e, sip_core::Event::ShutdownComplete))
        .map(|(t, _)| *t - start);
    let views = w.core.registrations();
    let stopped_pending = views
        .iter()
        .filter(|v| v.status == RegisterStatus::Pending)
        .count();
    println!("shutdown of {n}: complete after {done:?}; bindings left {}; pending views {stopped_pending}", w.registrar.bindings.len());
}
