//! One scenario, two drivers, one outcome: the same core behaves the same on tokio (the
//! `trunkline` binary, as a child process) and on smol (this crate, in process).
//!
//! Real peers on loopback (tests/README.md): Kamailio as the registrar and the HTTP
//! backend of CONTRACT.md §3 serving two providers, `alice` with the right password and
//! `bob` with a wrong one. Each driver gets a fresh registrar and backend, runs until
//! both statuses are reported, then shuts down; the outcomes must be equal and right:
//! alice registered with exactly one binding, bob failed with an authentication error
//! and never bound, no binding left after the shutdown, and the same final status per
//! provider at the backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use runtime_smol::{bind_udp, DriverConfig, Exit, HttpBackend};
use sip_core::{Config, Controller, Secret};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};
use trunkline_tests::{
    Backend, Kamailio, KamailioOptions, Provider, RecordedRequest, Trunkline, WAIT_LIMIT,
};

const ALICE: &str = "p-alice";
const BOB: &str = "p-bob";
/// The shutdown grace given to both drivers.
const GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driver {
    Tokio,
    Smol,
}

/// What a run leaves behind, in terms that do not depend on ports or timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    /// Per provider: the status reported while running, and whether its error is
    /// about authentication.
    running: BTreeMap<&'static str, (String, bool)>,
    /// Bindings at the registrar while running, per user.
    bindings_while_running: BTreeMap<&'static str, usize>,
    /// Per provider: the status of the last accepted PATCH after the shutdown, and
    /// whether its error says it was un-registered.
    final_status: BTreeMap<&'static str, (String, bool)>,
    /// Bindings left in the location table after the shutdown.
    bindings_after_shutdown: usize,
}

/// How the providers reach the registrar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Over {
    Udp,
    Tcp,
    /// With a certificate of a CA of the test's own, which both drivers trust.
    Tls,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_and_smol_drivers_reach_the_same_outcome() {
    same_outcome(Over::Udp).await;
}

/// And over TLS: the engine's rustls, with `SIP_TLS_CA_FILE` / `TlsConfig::load`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_and_smol_drivers_reach_the_same_outcome_over_tls() {
    same_outcome(Over::Tls).await;
}

/// The same over TCP: both drivers run driver-net's one connection engine, so a
/// difference here is in how a driver feeds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_and_smol_drivers_reach_the_same_outcome_over_tcp() {
    same_outcome(Over::Tcp).await;
}

async fn same_outcome(over: Over) {
    let tokio = scenario(Driver::Tokio, over).await;
    let smol = scenario(Driver::Smol, over).await;

    // Right on its own (an equal but wrong outcome would pass the comparison).
    let expected = Outcome {
        running: BTreeMap::from([
            (ALICE, ("registered".to_owned(), false)),
            (BOB, ("failed".to_owned(), true)),
        ]),
        bindings_while_running: BTreeMap::from([("alice", 1), ("bob", 0)]),
        final_status: smol.final_status.clone(),
        bindings_after_shutdown: 0,
    };
    assert_eq!(smol, expected, "the smol driver's outcome");
    assert_eq!(
        smol.final_status.get(ALICE),
        Some(&("pending".to_owned(), true)),
        "alice's last report should say she was un-registered at shutdown"
    );
    assert_eq!(
        tokio, smol,
        "the tokio driver (left) and the smol driver (right) disagree"
    );
}

/// Runs the scenario on one driver with its own registrar and backend, `over` a
/// transport.
async fn scenario(driver: Driver, over: Over) -> Outcome {
    let dir = tempfile::tempdir().expect("a temp dir for the TLS files");
    let ca = trunkline_tests::tls::TestCa::new(dir.path(), "conformance");
    let server = ca.issue(
        "registrar",
        std::net::Ipv4Addr::LOCALHOST.into(),
        "registrar.test",
    );
    let kamailio = Kamailio::start_with(KamailioOptions {
        tcp: over == Over::Tcp,
        tls: (over == Over::Tls).then_some((server.cert_file, server.key_file)),
        ..KamailioOptions::default()
    })
    .await;
    let ca_file = (over == Over::Tls).then_some(ca.cert_file);
    let api_key = format!("api-key-{}", trunkline_tests::random_hex(16));
    let backend = Backend::start(&api_key).await;
    let registrar = kamailio.addr();
    let alice_pw = kamailio.password("alice");
    let bob_pw = format!("wrong-{}", trunkline_tests::random_hex(12));
    let on = |p: Provider| match over {
        Over::Udp => p,
        Over::Tcp => p.tcp(),
        Over::Tls => p.tls(),
    };
    backend.set_providers(&[
        on(Provider::udp(ALICE, "alice", &alice_pw, registrar)),
        on(Provider::udp(BOB, "bob", &bob_pw, registrar)),
    ]);
    let sip_port = trunkline_tests::net::free_udp_port();
    let mut running = Running::start(driver, &backend, &api_key, sip_port, ca_file).await;

    let alice = running
        .until(backend.wait_for_status(ALICE, "registered"))
        .await;
    let bob = running.until(backend.wait_for_status(BOB, "failed")).await;
    let mut bindings_while_running = BTreeMap::new();
    for user in ["alice", "bob"] {
        let bindings = kamailio.bindings_of(user).await;
        let wanted = match over {
            Over::Udp => "",
            Over::Tcp => ";transport=tcp",
            Over::Tls => ";transport=tls",
        };
        let transport_ok = bindings.iter().all(|b| match over {
            Over::Udp => !b.contact.contains(";transport="),
            _ => b.contact.contains(wanted),
        });
        assert!(
            transport_ok,
            "{driver:?}: {user}'s Contact transport: {bindings:?}"
        );
        bindings_while_running.insert(user, bindings.len());
    }

    running.shut_down().await;
    let bindings_after_shutdown = kamailio.ul_dump().await.len();

    assert_eq!(
        backend.contract_violations(),
        Vec::<String>::new(),
        "{driver:?}: requests outside CONTRACT.md §3"
    );
    let history = backend.history();
    assert!(
        history
            .iter()
            .all(|r| r.api_key.as_deref() == Some(api_key.as_str())),
        "{driver:?}: every backend request must carry x-api-key"
    );
    let final_status = [ALICE, BOB]
        .into_iter()
        .map(|id| {
            let last = last_patch(&history, id).unwrap_or_else(|| {
                panic!("{driver:?}: no PATCH for {id}:\n{}", backend.history_text())
            });
            let error = last.register_error().unwrap_or_default().to_lowercase();
            let status = last.register_status().unwrap_or_default().to_owned();
            (id, (status, error.contains("unregister")))
        })
        .collect();
    Outcome {
        running: BTreeMap::from([(ALICE, summary(&alice)), (BOB, summary(&bob))]),
        bindings_while_running,
        final_status,
        bindings_after_shutdown,
    }
}

fn summary(patch: &RecordedRequest) -> (String, bool) {
    let error = patch.register_error().unwrap_or_default().to_lowercase();
    (
        patch.register_status().unwrap_or_default().to_owned(),
        error.contains("auth"),
    )
}

fn last_patch(history: &[RecordedRequest], id: &str) -> Option<RecordedRequest> {
    history
        .iter()
        .rfind(|r| r.is_accepted_patch_for(id))
        .cloned()
}

/// A driver running the scenario.
enum Running {
    /// The `trunkline` binary (boxed: the guard is large, and there is one).
    Tokio(Box<Trunkline>),
    /// `runtime_smol::run` on its own thread, stopped through `stop`.
    Smol {
        stop: smol::channel::Sender<()>,
        done: tokio::sync::oneshot::Receiver<Result<Exit, String>>,
    },
}

impl Running {
    async fn start(
        driver: Driver,
        backend: &Backend,
        api_key: &str,
        sip_port: u16,
        ca_file: Option<std::path::PathBuf>,
    ) -> Self {
        match driver {
            Driver::Tokio => {
                let mut env = vec![
                    ("BACKEND_URL", backend.url()),
                    ("API_KEY", api_key.to_owned()),
                    ("SIP_LISTEN_ADDRESS", "127.0.0.1".to_owned()),
                    ("SIP_PORT", sip_port.to_string()),
                    ("SIP_PUBLIC_ADDRESS", "127.0.0.1".to_owned()),
                    ("ADMIN_LISTEN", "127.0.0.1:0".to_owned()),
                    ("SHUTDOWN_GRACE", format!("{}s", GRACE.as_secs())),
                ];
                if let Some(ca) = &ca_file {
                    env.push(("SIP_TLS_CA_FILE", ca.display().to_string()));
                }
                Self::Tokio(Box::new(Trunkline::start(&["run"], &env).await))
            }
            Driver::Smol => {
                // The same core settings `trunkline run` derives from that environment.
                let sip = SocketAddr::from(([127, 0, 0, 1], sip_port));
                let socket = bind_udp(sip, 0).expect("binding the smol driver's SIP socket");
                let tcp = smol::block_on(smol::net::TcpListener::bind(sip))
                    .expect("listening for the smol driver's SIP over TCP");
                let cfg = Config {
                    local_port: sip_port,
                    contact_host: Some("127.0.0.1".to_owned()),
                    backend_timeout: Duration::from_secs(5),
                    ..Config::default()
                };
                let seed = u64::from(std::process::id());
                let core = Controller::new(cfg, seed, Instant::now(), SystemTime::now());
                let http =
                    HttpBackend::new(&backend.url(), Secret::new(api_key), Duration::from_secs(5))
                        .expect("the backend URL is plain http");
                let tls = Some(
                    driver_net::TlsConfig::load(ca_file.as_deref(), None, None)
                        .expect("the test CA loads"),
                );
                let (stop, stopped) = smol::channel::bounded::<()>(1);
                let (done_tx, done) = tokio::sync::oneshot::channel();
                std::thread::spawn(move || {
                    let exit = smol::block_on(runtime_smol::run(
                        core,
                        socket,
                        runtime_smol::Listeners {
                            tcp: Some(tcp),
                            tls: None,
                        },
                        http,
                        DriverConfig {
                            shutdown_grace: GRACE,
                            learn_local_ip: None,
                            tls,
                            dns_server: None,
                        },
                        async move {
                            let _ = stopped.recv().await;
                        },
                        // Shown by the test harness only when the test fails.
                        |event| eprintln!("smol driver: {event:?}"),
                    ));
                    let _ = done_tx.send(exit.map_err(|e| e.to_string()));
                });
                Self::Smol { stop, done }
            }
        }
    }

    /// Runs `future`, failing at once if the driver stops first.
    async fn until<F: Future>(&mut self, future: F) -> F::Output {
        match self {
            Self::Tokio(trunkline) => trunkline.run_until(future).await,
            Self::Smol { done, .. } => tokio::select! {
                output = future => output,
                exit = done => panic!("the smol driver stopped early: {exit:?}"),
            },
        }
    }

    /// Asks for the shutdown and waits (bounded) for a clean end.
    async fn shut_down(self) {
        match self {
            Self::Tokio(trunkline) => {
                let exited = (*trunkline).terminate().await;
                assert_eq!(
                    exited.code(),
                    Some(0),
                    "trunkline should exit 0 after SIGTERM, exited {}",
                    exited.status
                );
            }
            Self::Smol { stop, done } => {
                stop.send(()).await.expect("the smol driver is running");
                let exit = tokio::time::timeout(WAIT_LIMIT, done)
                    .await
                    .expect("the smol driver did not stop after the shutdown")
                    .expect("the smol driver thread ended without an answer");
                assert_eq!(exit, Ok(Exit::Complete), "the smol driver's exit");
            }
        }
    }
}
