//! Simulator benchmark (not a test): events per second, and the wall time to simulate
//! 10,000 providers for 24 hours with faults.
//!
//! `cargo run --release -p simulator --example bench [-- PROVIDERS HOURS]`
//! (`BENCH_TRACE=1` also renders and hashes the trace, as the seed sweep does.)

use simulator::check::KnownIssues;
use simulator::generate::{generate, generate_large};
use simulator::trace::TraceMode;
use simulator::{run, RunOptions};
use std::time::Instant;

#[allow(clippy::disallowed_methods)] // wall time of the benchmark itself
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed().as_secs_f64())
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let providers = args.first().copied().unwrap_or(10_000);
    let hours = args.get(1).copied().unwrap_or(24);
    let trace = if simulator::env::flag("BENCH_TRACE") {
        TraceMode::Hash
    } else {
        TraceMode::Off
    };
    let options = RunOptions {
        trace,
        stop_at_first: false,
        keep_patch_log: false,
        known: KnownIssues::open(),
    };

    // Small worlds: throughput of the seed sweep.
    if simulator::env::flag("BENCH_SKIP_SWEEP") {
        return large(providers, hours, options);
    }
    let sweep = RunOptions {
        trace: TraceMode::Hash,
        ..options
    };
    let ((steps, sim_secs), wall) = timed(|| {
        let mut steps = 0u64;
        let mut sim = 0f64;
        for seed in 0..100 {
            let r = run(generate(seed), sweep);
            steps += r.stats.steps;
            sim += r.stats.sim_time.as_secs_f64();
        }
        (steps, sim)
    });
    println!(
        "sweep: 100 seeds, {steps} events, {:.1} simulated hours in {wall:.2}s wall: {:.0} events/s, {:.1} seeds/s",
        sim_secs / 3600.0,
        steps as f64 / wall,
        100.0 / wall
    );

    large(providers, hours, options);
}

/// The large world: `providers` accounts for `hours` simulated hours with faults.
fn large(providers: u64, hours: u64, options: RunOptions) {
    let scenario = generate_large(1, usize::try_from(providers).unwrap_or(10_000), 40, hours);
    let faults = scenario.faults.len();
    let (report, wall) = timed(|| run(scenario, options));
    let s = &report.stats;
    println!(
        "large: {providers} providers, {hours} simulated hours, {faults} faults: {:.2}s wall, {} events ({:.0} events/s), {} SIP datagrams, {} REGISTERs at registrars, {} backend requests, {} PATCHes stored",
        wall,
        s.steps,
        s.steps as f64 / wall,
        s.sip_datagrams,
        s.registrar_requests,
        s.backend_requests,
        s.patches
    );
    println!(
        "large: simulated/wall = {:.0}x; violations: {}; tolerated known issues: {}",
        s.sim_time.as_secs_f64() / wall,
        report.violations.len(),
        s.tolerated
    );
    for v in report.violations.iter().take(10) {
        println!("  {v}");
    }
}
