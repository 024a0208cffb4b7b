//! Seed runs: the sweep over generated worlds, the determinism self-check, and the
//! proptest worlds that shrink a failure to a minimal schedule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use simulator::env;
use simulator::generate::generate;
use simulator::trace::TraceMode;
use simulator::{run, Report, RunOptions};

fn run_seed(seed: u64, trace: TraceMode) -> Report {
    run(
        generate(seed),
        RunOptions {
            trace,
            stop_at_first: true,
            keep_patch_log: true,
            known: simulator::check::KnownIssues::open(),
        },
    )
}

/// Prints a failing seed with everything needed to replay it, then panics.
fn fail(report: &Report) -> ! {
    // Re-run with the full trace for the report (the run is deterministic).
    let full = run_seed(report.seed, TraceMode::Full);
    let path = env::write_failure_trace(&full);
    panic!(
        "{}\nscenario: {}\n{}{}",
        full.failure_text(60),
        serde_json::to_string(&generate(report.seed)).unwrap_or_default(),
        env::reproduce_line(report.seed),
        path.map(|p| format!("\nfull trace: {}", p.display()))
            .unwrap_or_default()
    );
}

/// `SIM_SEED` runs one seed; `SIM_SEEDS=n` sweeps n seeds from it (default 64 from 0).
#[test]
fn seed_sweep() {
    let start = env::seed().unwrap_or(0);
    let count = if env::seed().is_some() && std::env::var("SIM_SEEDS").is_err() {
        1
    } else {
        env::seeds(64)
    };
    let check_determinism = env::flag("SIM_CHECK_DETERMINISM");
    for seed in start..start.saturating_add(count) {
        let report = run_seed(seed, TraceMode::Hash);
        if !report.passed() {
            fail(&report);
        }
        if check_determinism {
            let again = run_seed(seed, TraceMode::Hash);
            assert_eq!(
                report.trace_hash,
                again.trace_hash,
                "seed {seed} is not deterministic\n{}",
                env::reproduce_line(seed)
            );
        }
    }
}

/// The same seed twice gives the same trace, byte for byte.
#[test]
fn determinism_self_check() {
    for seed in [1, 7, 99] {
        let a = run_seed(seed, TraceMode::Hash);
        let b = run_seed(seed, TraceMode::Hash);
        assert!(a.stats.trace_lines > 10, "seed {seed}: trace too short");
        assert_eq!(
            (a.trace_hash, a.stats.trace_lines, a.stats.steps),
            (b.trace_hash, b.stats.trace_lines, b.stats.steps),
            "seed {seed} diverged\n{}",
            env::reproduce_line(seed)
        );
    }
}

/// `SIM_SCENARIO=path.json` replays a saved scenario (as written by a failing property
/// test) with the full trace; without the variable it does nothing.
#[test]
fn replay_scenario() {
    let Ok(path) = std::env::var("SIM_SCENARIO") else {
        return;
    };
    let text = std::fs::read_to_string(&path).expect("readable SIM_SCENARIO");
    let scenario: simulator::Scenario = serde_json::from_str(&text).expect("scenario JSON");
    let report = run(
        scenario,
        RunOptions {
            trace: TraceMode::Full,
            stop_at_first: true,
            keep_patch_log: true,
            known: simulator::check::KnownIssues::open(),
        },
    );
    if env::flag("SIM_TRACE") {
        println!("{}", report.trace_text());
    }
    assert!(report.passed(), "{}", report.failure_text(60));
}

mod worlds {
    //! Random worlds as a proptest strategy: a failure shrinks to fewer providers,
    //! registrars and faults, and is saved in `proptest-regressions/sim.txt`.
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, FileFailurePersistence};
    use simulator::models::backend::BackendMode;
    use simulator::models::digest::Algorithm;
    use simulator::models::registrar::{ExpiresPlacement, Mode, RegistrarConfig};
    use simulator::net::{Cut, LinkConfig};
    use simulator::scenario::{
        Fault, ProviderChange, ProviderDef, RegistrarDef, Scenario, Scheduled, SimCommand, Target,
    };
    use std::time::Duration;

    fn link() -> impl Strategy<Value = LinkConfig> {
        prop_oneof![
            Just(LinkConfig::lan()),
            Just(LinkConfig::wan()),
            Just(LinkConfig::lossy()),
        ]
    }

    fn registrar() -> impl Strategy<Value = RegistrarDef> {
        (
            (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
            prop::option::of(30u64..1800),
            prop::sample::select(vec![60u32, 120, 300, 600, 1800, 3600]),
            prop::option::of(prop::sample::select(vec![60u32, 120, 300])),
            prop::sample::select(vec![
                ExpiresPlacement::ContactParam,
                ExpiresPlacement::Header,
                ExpiresPlacement::Both,
            ]),
            (any::<bool>(), any::<bool>()),
            link(),
        )
            .prop_map(
                |((sha, also_md5, qop, proxy), ttl, max, min, place, (foreign, by_name), link)| {
                    RegistrarDef {
                        config: RegistrarConfig {
                            realm: "realm.sim.test".to_owned(),
                            algorithm: if sha {
                                Algorithm::Sha256
                            } else {
                                Algorithm::Md5
                            },
                            also_md5,
                            qop,
                            proxy_challenge: proxy,
                            nonce_ttl: ttl.map(Duration::from_secs),
                            max_expires: max,
                            min_expires: min.filter(|m| *m <= max),
                            expires_in: place,
                            foreign_binding: foreign,
                            capacity: None,
                        },
                        link,
                        by_name,
                    }
                },
            )
    }

    fn provider() -> impl Strategy<Value = (usize, Option<i64>, bool, bool, bool)> {
        (
            0usize..8,
            prop::sample::select(vec![None, Some(30i64), Some(60), Some(300), Some(3600)]),
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.9),
            prop::bool::weighted(0.9),
        )
    }

    fn target() -> impl Strategy<Value = Target> {
        prop_oneof![
            (0usize..8).prop_map(Target::Registrar),
            Just(Target::Backend),
            Just(Target::All),
        ]
    }

    fn fault() -> impl Strategy<Value = Fault> {
        prop_oneof![
            (
                target(),
                prop::sample::select(vec![Cut::Both, Cut::ToPeer, Cut::FromPeer])
            )
                .prop_map(|(target, cut)| Fault::Partition { target, cut }),
            target().prop_map(|target| Fault::Repair { target }),
            (
                target(),
                prop_oneof![Just(LinkConfig::lossy()), Just(LinkConfig::hostile())]
            )
                .prop_map(|(target, config)| Fault::Link { target, config }),
            (
                0usize..8,
                prop_oneof![
                    Just(Mode::Normal),
                    Just(Mode::Silent),
                    (
                        prop::sample::select(vec![403u16, 404, 500, 503]),
                        prop::option::of(1u32..600)
                    )
                        .prop_map(|(status, retry_after)| Mode::Reject {
                            status,
                            retry_after
                        }),
                    (1u64..40).prop_map(|s| Mode::Slow {
                        delay: Duration::from_secs(s)
                    }),
                ]
            )
                .prop_map(|(registrar, mode)| Fault::Registrar { registrar, mode }),
            (0usize..8).prop_map(|registrar| Fault::RestartRegistrar { registrar }),
            prop_oneof![
                Just(BackendMode::Up),
                Just(BackendMode::Down),
                Just(BackendMode::Error { status: 503 }),
                Just(BackendMode::NotFound),
                Just(BackendMode::Unauthorized),
                (1u64..10).prop_map(|s| BackendMode::Slow {
                    delay: Duration::from_secs(s)
                }),
            ]
            .prop_map(Fault::Backend),
            (
                0usize..20,
                prop_oneof![
                    Just(ProviderChange::Remove),
                    Just(ProviderChange::Add),
                    any::<bool>().prop_map(ProviderChange::Credentials),
                    Just(ProviderChange::Expires(Some(60))),
                    any::<bool>().prop_map(ProviderChange::Enabled),
                    (0usize..8).prop_map(ProviderChange::Registrar),
                ]
            )
                .prop_map(|(provider, change)| Fault::Provider { provider, change }),
            Just(Fault::Command(SimCommand::Resync)),
            (0usize..20).prop_map(|provider| Fault::Command(SimCommand::Reregister { provider })),
        ]
    }

    fn scenario() -> impl Strategy<Value = Scenario> {
        (
            any::<u64>(),
            prop::collection::vec(registrar(), 1..=3),
            prop::collection::vec(provider(), 1..=20),
            prop::collection::vec((0u64..3_600_000, fault()), 0..25),
            600u64..3600,
            prop::option::of(10u64..30),
        )
            .prop_map(|(seed, registrars, providers, faults, heal, grace)| {
                let mut s = Scenario::new("proptest", seed);
                let n_reg = registrars.len();
                s.registrars = registrars;
                for (i, (reg, expires, wrong, enabled, listed)) in providers.into_iter().enumerate()
                {
                    let mut p = ProviderDef::new(i + 1, reg % n_reg);
                    p.expires = expires;
                    p.wrong_password = wrong;
                    p.enabled = enabled;
                    p.listed = listed;
                    s.providers.push(p);
                }
                s.heal_at = Duration::from_secs(heal);
                let window = heal * 1000;
                s.faults = faults
                    .into_iter()
                    .map(|(at, fault)| Scheduled {
                        at: Duration::from_millis(at % window),
                        fault,
                    })
                    .collect();
                s.faults.sort_by_key(|f| f.at);
                s.shutdown_grace = grace.map(Duration::from_secs);
                s
            })
    }

    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(12)
    }

    proptest! {
        #![proptest_config(Config {
            cases: cases(),
            max_shrink_iters: 512,
            failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/sim.txt"))),
            ..Config::default()
        })]

        /// Random worlds keep every invariant (known core issues tolerated, as in the
        /// sweep); a failure shrinks to a minimal schedule and prints its replay.
        #[test]
        fn random_worlds(s in scenario()) {
            let report = run(s.clone(), RunOptions {
                trace: TraceMode::Hash,
                stop_at_first: true,
                keep_patch_log: true,
                known: simulator::check::KnownIssues::open(),
            });
            if !report.passed() {
                let json = serde_json::to_string_pretty(&s).unwrap_or_default();
                let dir = env::failure_dir();
                let _ = std::fs::create_dir_all(&dir);
                let path = dir.join(format!("proptest-{:016x}.json", report.trace_hash));
                let _ = std::fs::write(&path, &json);
                prop_assert!(
                    false,
                    "{}\nreproduce: SIM_SCENARIO={} SIM_TRACE=1 cargo test -p simulator --test sim -- replay_scenario --exact --nocapture",
                    report.failure_text(0),
                    path.display()
                );
            }
        }
    }
}
