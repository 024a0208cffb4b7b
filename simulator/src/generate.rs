//! Random worlds from a seed (swarm testing, as VOPR's `options_swarm`): every knob of a
//! scenario — registrar personalities, links, providers, the fault schedule — is drawn
//! from the seed's workload stream, so one number reproduces a whole world.

use crate::models::backend::BackendMode;
use crate::models::digest::Algorithm;
use crate::models::livekit::Answer;
use crate::models::provider::Ending;
use crate::models::registrar::{ExpiresPlacement, Mode, RegistrarConfig};
use crate::net::{Cut, LinkConfig};
use crate::rng::{SimRng, Streams};
use crate::scenario::{
    CallDef, CallSource, Defect, Fault, LiveKitDef, ProviderChange, ProviderDef, Scenario,
    Scheduled, SimCommand, SipTransport, StreamMode, Target,
};
use std::time::Duration;

fn pick<T: Clone>(rng: &mut SimRng, items: &[T]) -> Option<T> {
    items.get(rng.index(items.len())).cloned()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A random registrar personality.
pub fn registrar_config(rng: &mut SimRng, index: usize) -> RegistrarConfig {
    let max_expires = pick(rng, &[60, 120, 300, 600, 1800, 3600]).unwrap_or(3600);
    let min_expires = if rng.chance(0.25) {
        pick(rng, &[60u32, 120, 300]).filter(|m| *m <= max_expires)
    } else {
        None
    };
    RegistrarConfig {
        realm: format!("realm-{index}.sim.test"),
        algorithm: if rng.chance(0.4) {
            Algorithm::Sha256
        } else {
            Algorithm::Md5
        },
        also_md5: rng.chance(0.3),
        qop: rng.chance(0.7),
        proxy_challenge: rng.chance(0.15),
        nonce_ttl: rng.chance(0.4).then(|| rng.duration(secs(30), secs(1800))),
        max_expires,
        min_expires,
        expires_in: pick(
            rng,
            &[
                ExpiresPlacement::ContactParam,
                ExpiresPlacement::Header,
                ExpiresPlacement::Both,
            ],
        )
        .unwrap_or(ExpiresPlacement::ContactParam),
        foreign_binding: rng.chance(0.3),
        capacity: None,
    }
}

fn random_link(rng: &mut SimRng) -> LinkConfig {
    match rng.below(10) {
        0..=3 => LinkConfig::lan(),
        4..=8 => LinkConfig::wan(),
        _ => LinkConfig::lossy(),
    }
}

fn random_target(rng: &mut SimRng, registrars: usize) -> Target {
    match rng.below(10) {
        0..=5 => Target::Registrar(rng.index(registrars)),
        6..=8 => Target::Backend,
        _ => Target::All,
    }
}

/// One fault, and possibly the fault that ends it `later`.
fn random_fault(rng: &mut SimRng, registrars: usize, providers: usize) -> (Fault, Option<Fault>) {
    let registrar = rng.index(registrars);
    match rng.below(20) {
        0..=3 => {
            let target = random_target(rng, registrars);
            let cut = pick(rng, &[Cut::Both, Cut::ToPeer, Cut::FromPeer]).unwrap_or(Cut::Both);
            (
                Fault::Partition { target, cut },
                Some(Fault::Repair { target }),
            )
        }
        4..=5 => {
            let target = random_target(rng, registrars);
            let config = if rng.chance(0.5) {
                LinkConfig::lossy()
            } else {
                LinkConfig::hostile()
            };
            (Fault::Link { target, config }, None)
        }
        6..=9 => {
            let mode = match rng.below(4) {
                0 => Mode::Silent,
                1 => Mode::Reject {
                    status: pick(rng, &[403, 404]).unwrap_or(403),
                    retry_after: None,
                },
                2 => Mode::Reject {
                    status: pick(rng, &[500, 503, 480]).unwrap_or(503),
                    retry_after: rng
                        .chance(0.5)
                        .then(|| u32::try_from(rng.range(1, 600)).unwrap_or(60)),
                },
                _ => Mode::Slow {
                    delay: rng.duration(Duration::from_millis(600), secs(40)),
                },
            };
            (
                Fault::Registrar { registrar, mode },
                Some(Fault::Registrar {
                    registrar,
                    mode: Mode::Normal,
                }),
            )
        }
        10 => (Fault::RestartRegistrar { registrar }, None),
        11..=13 => {
            let mode = match rng.below(5) {
                0 => BackendMode::Down,
                1 => BackendMode::Error {
                    status: pick(rng, &[500, 502, 503]).unwrap_or(500),
                },
                2 => BackendMode::NotFound,
                3 => BackendMode::Unauthorized,
                _ => BackendMode::Slow {
                    delay: rng.duration(Duration::from_millis(100), secs(10)),
                },
            };
            (Fault::Backend(mode), Some(Fault::Backend(BackendMode::Up)))
        }
        14..=17 => {
            let provider = rng.index(providers);
            let change = match rng.below(6) {
                0 => ProviderChange::Remove,
                1 => ProviderChange::Add,
                2 => ProviderChange::Credentials(rng.chance(0.6)),
                3 => ProviderChange::Expires(
                    pick(rng, &[None, Some(60), Some(300), Some(3600)]).flatten(),
                ),
                4 => ProviderChange::Enabled(rng.chance(0.6)),
                _ => ProviderChange::Add,
            };
            (Fault::Provider { provider, change }, None)
        }
        18 => (Fault::Command(SimCommand::Resync), None),
        _ => (
            Fault::Command(SimCommand::Reregister {
                provider: rng.index(providers),
            }),
            None,
        ),
    }
}

/// A random provider on one of `registrars` registrars.
pub fn provider(rng: &mut SimRng, index: usize, registrars: usize) -> ProviderDef {
    let mut p = ProviderDef::new(index, rng.index(registrars));
    p.expires = pick(
        rng,
        &[
            None,
            Some(30),
            Some(60),
            Some(120),
            Some(300),
            Some(600),
            Some(1800),
            Some(3600),
        ],
    )
    .flatten();
    p.wrong_password = rng.chance(0.1);
    p.enabled = !rng.chance(0.1);
    p.defect = if rng.chance(0.05) {
        pick(
            rng,
            &[Defect::BadPort, Defect::Tls, Defect::ControlCharacter],
        )
    } else {
        None
    };
    p.listed = !rng.chance(0.1);
    p
}

/// The random world of `seed`: 1–4 registrars, 1–20 providers, up to 25 faults in a
/// 10–60 minute fault phase, and a shutdown phase most of the time.
pub fn generate(seed: u64) -> Scenario {
    let mut rng = Streams::split(seed).workload;
    let mut s = Scenario::new(&format!("seed-{seed}"), seed);
    let registrars = usize::try_from(rng.range(1, 4)).unwrap_or(1);
    for i in 0..registrars {
        let config = registrar_config(&mut rng, i);
        let link = random_link(&mut rng);
        let idx = s.add_registrar(config, link);
        if let Some(r) = s.registrars.get_mut(idx) {
            r.by_name = rng.chance(0.7);
        }
    }
    let providers = usize::try_from(rng.range(1, 20)).unwrap_or(1);
    for i in 0..providers {
        s.providers.push(provider(&mut rng, i + 1, registrars));
    }
    s.backend_link = if rng.chance(0.5) {
        LinkConfig::lan()
    } else {
        LinkConfig::wan()
    };
    s.heal_at = rng.duration(secs(600), secs(3600));
    if rng.chance(0.5) {
        s.core.sync_interval = Some(rng.duration(secs(60), secs(600)));
    }
    let n_faults = rng.below(26);
    for _ in 0..n_faults {
        let at = rng.duration(Duration::ZERO, s.heal_at);
        let (fault, end) = random_fault(&mut rng, registrars, providers);
        s.faults.push(Scheduled { at, fault });
        if let Some(end) = end {
            if rng.chance(0.8) {
                let later = at + rng.duration(secs(1), secs(900));
                s.faults.push(Scheduled {
                    at: later,
                    fault: end,
                });
            }
        }
    }
    s.shutdown_grace = rng.chance(0.7).then(|| rng.duration(secs(10), secs(30)));
    // Calls come from a stream of their own, so that the registration part of a world
    // stays what it was before calls were simulated.
    let mut calls = Streams::split(seed ^ CALLS_STREAM).workload;
    if calls.chance(CALL_WORLDS) {
        add_calls(&mut calls, &mut s);
    }
    // TCP from a stream of its own too: a world keeps its UDP part as it was.
    let mut streams = Streams::split(seed ^ STREAMS_STREAM).workload;
    add_streams(&mut streams, &mut s);
    s.faults.sort_by_key(|f| f.at);
    s
}

/// Mixed into the seed for the TCP providers' and stream faults' stream.
const STREAMS_STREAM: u64 = 0x7C90_5EED_0000_0010;

/// The share of generated providers that register over TCP.
pub const TCP_SHARE: f64 = 0.22;

/// The share of generated providers that register over TLS (besides the
/// [`Defect::Tls`] entries, which are TLS too).
pub const TLS_SHARE: f64 = 0.05;

/// Makes about [`TCP_SHARE`] of the providers TCP ones and [`TLS_SHARE`] TLS ones
/// and, when there are any, pings their connections in half the worlds and schedules
/// up to six stream faults within the fault phase: connections dropped or reset, a
/// listener that refuses for a while, one that closes after every answer.
fn add_streams(rng: &mut SimRng, s: &mut Scenario) {
    for p in &mut s.providers {
        // Drawn for every provider, so one provider's defect does not shift the others.
        let u = rng.unit();
        if p.defect != Some(Defect::Tls) {
            if u < TCP_SHARE {
                p.transport = SipTransport::Tcp;
            } else if u < TCP_SHARE + TLS_SHARE {
                p.transport = SipTransport::Tls;
            }
        }
    }
    let targets: Vec<usize> = s.stream_targets().into_iter().map(|(_, r)| r).collect();
    if targets.is_empty() {
        return;
    }
    if rng.chance(0.5) {
        // What the binary runs with (SIP_KEEPALIVE_INTERVAL's default).
        s.core.keepalive = Some(secs(30));
    }
    for _ in 0..rng.below(7) {
        let at = rng.duration(Duration::ZERO, s.heal_at);
        // Mostly the registrars TCP providers use; now and then another one.
        let registrar = if rng.chance(0.9) {
            pick(rng, &targets).unwrap_or(0)
        } else {
            rng.index(s.registrars.len())
        };
        let (fault, end) = match rng.below(6) {
            0..=2 => (
                Fault::DropConnections {
                    registrar,
                    reset: rng.chance(0.5),
                },
                None,
            ),
            3..=4 => (
                Fault::Streams {
                    registrar,
                    mode: StreamMode::Refuse,
                },
                Some(rng.duration(secs(1), secs(600))),
            ),
            _ => (
                Fault::Streams {
                    registrar,
                    mode: StreamMode::CloseAfterAnswer,
                },
                Some(rng.duration(secs(1), secs(600))),
            ),
        };
        s.faults.push(Scheduled { at, fault });
        if let Some(after) = end {
            // Most end before the heal; the rest are ended by it.
            if rng.chance(0.8) {
                s.faults.push(Scheduled {
                    at: at + after,
                    fault: Fault::Streams {
                        registrar,
                        mode: StreamMode::Accept,
                    },
                });
            }
        }
    }
}

/// Mixed into the seed for the calls' stream.
const CALLS_STREAM: u64 = 0xCA11_5EED_0000_0009;

/// The share of generated worlds with calls.
const CALL_WORLDS: f64 = 0.6;

/// The DID routed to LiveKit model `index`.
pub fn did_of(index: usize) -> String {
    format!("+4930555{index:04}")
}

/// A random LiveKit personality.
pub fn livekit(rng: &mut SimRng) -> LiveKitDef {
    let (answer, answer_after) = match rng.below(10) {
        0..=5 => (
            Answer::Accept,
            rng.duration(Duration::from_millis(100), secs(3)),
        ),
        6..=7 => (
            Answer::Reject(pick(rng, &[486, 603, 480, 404, 500, 503]).unwrap_or(486)),
            rng.duration(Duration::from_millis(100), secs(3)),
        ),
        8 => (Answer::Never, secs(1)),
        // Slower than some ring timeouts: answered, or cancelled by the core.
        _ => (Answer::Accept, rng.duration(secs(5), secs(70))),
    };
    LiveKitDef {
        ring_after: rng
            .chance(0.8)
            .then(|| rng.duration(Duration::from_millis(20), Duration::from_millis(500))),
        answer_after,
        answer,
        challenge: rng.chance(0.25),
        hang_up_after: rng.chance(0.3).then(|| rng.duration(secs(2), secs(120))),
        refer_after: rng.chance(0.15).then(|| rng.duration(secs(1), secs(10))),
        link: random_link(rng),
    }
}

/// LiveKit models, routes, calls (a stranger's among them, sometimes), call settings
/// and faults on the LiveKit links, all within the fault phase of `s`.
fn add_calls(rng: &mut SimRng, s: &mut Scenario) {
    let n_livekits = usize::try_from(rng.range(1, 3)).unwrap_or(1);
    for _ in 0..n_livekits {
        s.livekits.push(livekit(rng));
    }
    // The default domain (resolved by DNS) serves model 0 most of the time; the others
    // are fixed routes by IP. Without a default, model 0's DID is fixed too and any
    // other number has no route.
    if rng.chance(0.8) {
        s.routing.default_livekit = Some(0);
    } else {
        s.routing.fixed.push((did_of(0), 0));
    }
    for i in 1..n_livekits {
        s.routing.fixed.push((did_of(i), i));
    }
    s.core.calls.ring_timeout = rng.duration(secs(10), secs(60));
    s.core.calls.max_duration = rng.duration(secs(120), secs(900));
    let n_calls = rng.range(1, 10);
    for _ in 0..n_calls {
        let at = rng.duration(Duration::ZERO, s.heal_at);
        let from = if rng.chance(0.1) {
            CallSource::Stranger
        } else {
            CallSource::Provider(rng.index(s.providers.len()))
        };
        // Now and then a number no route knows (the default takes it, or 404).
        let did = if rng.chance(0.1) {
            "+4930999999".to_owned()
        } else {
            did_of(rng.index(n_livekits))
        };
        let ending = match rng.below(20) {
            0..=8 => Ending::HangUpAfter(rng.duration(secs(1), secs(300))),
            9..=13 => Ending::Wait,
            _ => Ending::CancelAfter(rng.duration(Duration::from_millis(200), secs(15))),
        };
        s.calls.push(CallDef {
            at,
            from,
            did,
            ending,
            reinvite_after: rng.chance(0.15).then(|| rng.duration(secs(1), secs(20))),
        });
    }
    for _ in 0..rng.below(4) {
        let at = rng.duration(Duration::ZERO, s.heal_at);
        let target = Target::LiveKit(rng.index(n_livekits));
        let (fault, end) = if rng.chance(0.5) {
            let cut = pick(rng, &[Cut::Both, Cut::ToPeer, Cut::FromPeer]).unwrap_or(Cut::Both);
            (Fault::Partition { target, cut }, Fault::Repair { target })
        } else {
            let config = if rng.chance(0.5) {
                LinkConfig::lossy()
            } else {
                LinkConfig::hostile()
            };
            let base = s
                .livekits
                .get(rng.index(n_livekits))
                .map(|l| l.link.clone())
                .unwrap_or_else(LinkConfig::lan);
            (
                Fault::Link { target, config },
                Fault::Link {
                    target,
                    config: base,
                },
            )
        };
        s.faults.push(Scheduled { at, fault });
        let later = at + rng.duration(secs(1), secs(300));
        s.faults.push(Scheduled {
            at: later,
            fault: end,
        });
    }
}

/// A large world for the benchmark: `providers` accounts over `registrars` registrars,
/// `hours` of simulated time with recurring faults (partitions, loss, slow and failing
/// registrars, restarts, backend outages, list changes) until the last two hours.
pub fn generate_large(seed: u64, providers: usize, registrars: usize, hours: u64) -> Scenario {
    let mut rng = Streams::split(seed).workload;
    let mut s = Scenario::new(&format!("large-{providers}x{hours}h"), seed);
    let registrars = registrars.max(1);
    for i in 0..registrars {
        let mut config = registrar_config(&mut rng, i);
        // Realistic grants, so a day means tens of refreshes per account, not thousands.
        config.max_expires = pick(&mut rng, &[600, 1800, 3600]).unwrap_or(3600);
        config.min_expires = None;
        s.add_registrar(config, LinkConfig::wan());
    }
    for i in 0..providers {
        let mut p = ProviderDef::new(i + 1, rng.index(registrars));
        p.expires = pick(&mut rng, &[Some(600), Some(1800), Some(3600), None]).flatten();
        p.wrong_password = rng.chance(0.01);
        p.enabled = !rng.chance(0.01);
        s.providers.push(p);
    }
    s.core.register_rate = 500;
    let total = secs(hours * 3600);
    let converge = secs(2 * 3600).min(total);
    s.heal_at = total - converge;
    s.converge_for = Some(converge);
    let mut t = secs(600);
    while t < s.heal_at {
        let registrar = rng.index(registrars);
        let end = t + rng.duration(secs(30), secs(600));
        let (fault, undo) = match rng.below(6) {
            0 => (
                Fault::Partition {
                    target: Target::Registrar(registrar),
                    cut: Cut::Both,
                },
                Some(Fault::Repair {
                    target: Target::Registrar(registrar),
                }),
            ),
            1 => (
                Fault::Link {
                    target: Target::Registrar(registrar),
                    config: LinkConfig::lossy(),
                },
                Some(Fault::Link {
                    target: Target::Registrar(registrar),
                    config: LinkConfig::wan(),
                }),
            ),
            2 => (
                Fault::Registrar {
                    registrar,
                    mode: Mode::Reject {
                        status: 503,
                        retry_after: Some(60),
                    },
                },
                Some(Fault::Registrar {
                    registrar,
                    mode: Mode::Normal,
                }),
            ),
            3 => (Fault::RestartRegistrar { registrar }, None),
            4 => (
                Fault::Backend(BackendMode::Down),
                Some(Fault::Backend(BackendMode::Up)),
            ),
            _ => (
                Fault::Provider {
                    provider: rng.index(providers),
                    change: ProviderChange::Expires(Some(1800)),
                },
                None,
            ),
        };
        s.faults.push(Scheduled { at: t, fault });
        if let Some(undo) = undo {
            s.faults.push(Scheduled {
                at: end,
                fault: undo,
            });
        }
        t += rng.duration(secs(300), secs(1800));
    }
    s.faults.sort_by_key(|f| f.at);
    s
}
