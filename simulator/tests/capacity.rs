//! A registrar that takes less than `REGISTER_RATE` offers: the pacer's congestion
//! window finds its capacity instead of flooding it and paying in retransmissions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use simulator::models::registrar::{Capacity, Mode, RegistrarConfig};
use simulator::net::LinkConfig;
use simulator::scenario::Fault;
use simulator::trace::TraceMode;
use simulator::{run, Report, RunOptions, Scenario};
use std::time::Duration;

/// `n` accounts on one registrar serving 2,000 requests per second with room for 100
/// waiting, `link` away; the core may send 1,000,000 REGISTERs per second (500 times
/// what the registrar takes).
fn overloaded(n: usize, link: LinkConfig, shutdown: Option<Duration>) -> Report {
    let mut s = Scenario::new("registrar_capacity", 3);
    let config = RegistrarConfig {
        capacity: Some(Capacity {
            per_second: 2_000,
            queue: 100,
        }),
        ..RegistrarConfig::default()
    };
    let r = s.add_registrar(config, link);
    for _ in 0..n {
        s.add_provider(r);
    }
    s.core.register_rate = 1_000_000;
    s.core.sync_interval = None;
    s.heal_at = Duration::from_secs(1);
    s.converge_for = Some(Duration::from_secs(120));
    s.shutdown_grace = shutdown;
    run(s, options())
}

fn options() -> RunOptions {
    RunOptions {
        trace: TraceMode::Hash,
        stop_at_first: true,
        keep_patch_log: false,
        known: simulator::check::KnownIssues::none(),
    }
}

/// How the second registrar fails until the heal at 30 s.
#[derive(Clone, Copy, Debug)]
enum Bad {
    /// None: the healthy registrar alone.
    Absent,
    /// Answers nothing (a dead registrar, or a firewall dropping everything).
    BlackHole,
    /// A path losing 30 % of the datagrams each way.
    Lossy,
}

/// `healthy` accounts on a registrar serving 2,000 requests per second, `link` away,
/// queued after `bad` accounts on a second registrar that fails as `how` says for the
/// first 30 s (the fault phase); the core may send 1,000,000 REGISTERs per second.
fn beside_a_bad_registrar(healthy: usize, bad: usize, how: Bad, link: LinkConfig) -> Report {
    let mut s = Scenario::new("registrar_beside_a_bad_one", 5);
    let config = RegistrarConfig {
        capacity: Some(Capacity {
            per_second: 2_000,
            queue: 100,
        }),
        ..RegistrarConfig::default()
    };
    let good = s.add_registrar(config.clone(), link.clone());
    if !matches!(how, Bad::Absent) {
        let bad_link = match how {
            Bad::Lossy => LinkConfig { loss: 0.3, ..link },
            _ => link,
        };
        let b = s.add_registrar(config, bad_link);
        if matches!(how, Bad::BlackHole) {
            s.at(
                Duration::ZERO,
                Fault::Registrar {
                    registrar: b,
                    mode: Mode::Silent,
                },
            );
        }
        // Queued first: a shared window or queue would hold the healthy ones up.
        for _ in 0..bad {
            s.add_provider(b);
        }
    }
    for _ in 0..healthy {
        s.add_provider(good);
    }
    s.core.register_rate = 1_000_000;
    s.core.sync_interval = None;
    s.heal_at = Duration::from_secs(30);
    s.converge_for = Some(Duration::from_secs(300));
    run(s, options())
}

#[test]
fn a_black_hole_or_lossy_registrar_does_not_slow_a_healthy_one() {
    for (link, name) in [
        (LinkConfig::lan(), "LAN"),
        (LinkConfig::fixed(Duration::from_millis(40)), "40 ms"),
    ] {
        let n = 2_500;
        let alone = beside_a_bad_registrar(n, 0, Bad::Absent, link.clone());
        assert!(alone.passed(), "{name} alone: {}", alone.failure_text(40));
        let alone_at = alone.stats.registrars[0].all_bound_at.expect("all bound");
        for how in [Bad::BlackHole, Bad::Lossy] {
            let report = beside_a_bad_registrar(n, 1_000, how, link.clone());
            // Everything converges after the heal, black-hole accounts included.
            assert!(
                report.passed(),
                "{name} {how:?}: {}",
                report.failure_text(40)
            );
            let good = &report.stats.registrars[0];
            let cost = good.requests as f64 / n as f64;
            assert!(
                cost <= 2.05,
                "{name} {how:?}: {cost:.3} REGISTERs per healthy account ({} dropped)",
                good.overflowed
            );
            // Every healthy account registered (long) before the bad registrar healed,
            // and about as soon as without it (virtual time: the ratio is exact).
            let at = good
                .all_bound_at
                .expect("the healthy registrar held every account");
            assert!(
                at.as_secs_f64() <= alone_at.as_secs_f64() * 1.1 + 0.1,
                "{name} {how:?}: all healthy accounts bound at {at:?}, alone at {alone_at:?}"
            );
            assert!(
                report.stats.registrars[1].requests >= 1_000,
                "{name} {how:?}: the bad registrar was tried"
            );
        }
    }
}

fn per_account(report: &Report, n: usize) -> f64 {
    report.stats.registrar_requests as f64 / n as f64
}

#[test]
fn a_rate_ceiling_far_above_capacity_converges_with_few_retransmissions() {
    for (link, name) in [
        (LinkConfig::lan(), "LAN"),
        (LinkConfig::fixed(Duration::from_millis(40)), "40 ms"),
    ] {
        let n = 2_500;
        let report = overloaded(n, link, None);
        assert!(report.passed(), "{name}: {}", report.failure_text(40));
        // A 401 and the answer to it: 2 per account when nothing is retransmitted.
        let cost = per_account(&report, n);
        assert!(
            cost <= 2.05,
            "{name}: {cost:.3} REGISTERs per account ({} dropped by the registrar)",
            report.stats.registrar_overflowed
        );
    }
}

#[test]
fn shutdown_unregisters_everyone_within_the_grace_despite_the_capacity() {
    let n = 2_500;
    let report = overloaded(n, LinkConfig::lan(), Some(Duration::from_secs(10)));
    // The shutdown checks: ShutdownComplete within the grace, no binding left.
    assert!(report.passed(), "{}", report.failure_text(40));
    // The un-REGISTER reuses the cached challenge: one more per account.
    let cost = per_account(&report, n);
    assert!(cost <= 3.05, "{cost:.3} REGISTERs per account");
}
