//! Memory held by the core per registration, counted by a global allocator in virtual
//! time (a measurement, not a test: run with
//! `cargo test --release -p sip-core --test memory -- --ignored --nocapture`).
//! The process-level figure (PSS) comes from `scripts/bench-register.sh`; this one says
//! how much of it is the core's own state once every registration is up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// Virtual time is anchored once with `Instant::now()`; everything after adds durations.
#![allow(clippy::disallowed_methods)]

mod support;

use sip_core::{Config, Controller, RegisterStatus};
use std::time::{Duration, Instant, SystemTime};
use support::registrar::Behaviour;
use support::{config, numbered, World};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn live() -> usize {
    dhat::HeapStats::get().curr_bytes
}

fn cfg() -> Config {
    Config {
        register_rate: 10_000,
        max_reports_in_flight: usize::MAX,
        ..config()
    }
}

/// Bytes the world's controller holds (measured by dropping it).
fn held(w: &mut World) -> usize {
    let with_core = live();
    let empty = Controller::new(config(), 1, Instant::now(), SystemTime::now());
    drop(std::mem::replace(&mut w.core, empty));
    with_core.saturating_sub(live())
}

#[test]
#[ignore = "measurement: run with --ignored --nocapture"]
fn core_bytes_per_registration() {
    let _profiler = dhat::Profiler::builder().testing().build();
    for n in [1_000usize, 10_000] {
        let (reg, providers) = numbered(n, "u", "p", Behaviour::default());
        let mut w = World::new(cfg(), reg, providers);
        let registered = |w: &World| {
            w.core
                .registrations()
                .iter()
                .filter(|v| v.status == RegisterStatus::Registered)
                .count()
        };
        // The moment the benchmark measures: the last registration just went up (its
        // transactions still lingering for Timer K) …
        while registered(&w) < n {
            w.run_for(Duration::from_millis(50));
        }
        let at_registered = held(&mut w);
        // … and the steady state, every transaction gone.
        let (reg, providers) = numbered(n, "u", "p", Behaviour::default());
        let mut w = World::new(cfg(), reg, providers);
        w.run_for(Duration::from_secs(20));
        assert_eq!(registered(&w), n);
        let steady = held(&mut w);
        println!(
            "{n} registrations: the core holds {:.2} MB ({} B per registration) when the last \
             registers, {:.2} MB ({} B per registration) in steady state",
            at_registered as f64 / 1e6,
            at_registered / n,
            steady as f64 / 1e6,
            steady / n
        );
    }
}
