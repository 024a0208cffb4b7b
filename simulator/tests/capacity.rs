//! A registrar that takes less than `REGISTER_RATE` offers: the pacer's congestion
//! window finds its capacity instead of flooding it and paying in retransmissions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use simulator::models::registrar::{Capacity, RegistrarConfig};
use simulator::net::LinkConfig;
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
    run(
        s,
        RunOptions {
            trace: TraceMode::Hash,
            stop_at_first: true,
            keep_patch_log: false,
            known: simulator::check::KnownIssues::none(),
        },
    )
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
