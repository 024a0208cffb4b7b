//! Graceful shutdown as outside testing met it: a registrar that never answers (a black
//! hole) and a backend that is down when trunkline stops.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::UdpSocket;
use trunkline_tests::{net, Backend, Endpoint, Fault, Kamailio, Provider, Trunkline};

fn env(backend: &Backend, api_key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("BACKEND_URL", backend.url()),
        ("API_KEY", api_key.to_owned()),
        ("SIP_LISTEN_ADDRESS", "127.0.0.1".to_owned()),
        ("SIP_PORT", net::free_udp_port().to_string()),
        ("SIP_PUBLIC_ADDRESS", "127.0.0.1".to_owned()),
        ("ADMIN_LISTEN", "127.0.0.1:0".to_owned()),
        ("LOG_FORMAT", "json".to_owned()),
        ("LOG_LEVEL", "info".to_owned()),
        ("SHUTDOWN_GRACE", "3s".to_owned()),
    ]
}

/// A UDP socket on loopback that counts what it receives, never answers, and tells
/// the test about each datagram.
async fn black_hole() -> (
    std::net::SocketAddr,
    Arc<AtomicUsize>,
    tokio::sync::mpsc::UnboundedReceiver<()>,
) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let counter = count.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while socket.recv_from(&mut buf).await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(());
        }
    });
    (addr, count, rx)
}

/// Defect 5: a first REGISTER a black hole never answered is not retransmitted after
/// SIGTERM, and the final status says what happened (no un-REGISTER was sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_answered_register_is_abandoned_at_shutdown_and_reported_as_such() {
    let (hole, received, mut arrivals) = black_hole().await;
    let api_key = format!("api-key-{}", trunkline_tests::random_hex(16));
    let backend = Backend::start(&api_key).await;
    backend.set_providers(&[Provider::udp("p-hole", "nobody", "pw-hole-secret", hole)]);
    let mut t = Trunkline::start(&["run"], &env(&backend, &api_key)).await;
    t.run_until(backend.wait_for_status("p-hole", "pending"))
        .await;
    // The first REGISTER has reached the black hole; its first retransmission is due
    // 500 ms (T1) later, so SIGTERM right now comes before any retransmission.
    t.run_until(arrivals.recv()).await;
    let before = received.load(Ordering::SeqCst);
    let exited = t.terminate().await;
    assert_eq!(exited.code(), Some(0), "{}", exited.output());
    assert_eq!(
        received.load(Ordering::SeqCst),
        before,
        "nothing is sent to the black hole after SIGTERM"
    );
    let last = backend
        .patches_for("p-hole")
        .into_iter()
        .last()
        .expect("a final status");
    assert_eq!(last.register_status(), Some("pending"));
    let error = last.register_error().unwrap_or_default().to_owned();
    assert!(
        error.contains("had not answered the REGISTER") && !error.contains("un-REGISTER"),
        "{error}"
    );
    exited.assert_no_secret(&[("the password", "pw-hole-secret")]);
}

/// Defect 6: final statuses that cannot reach the backend are named at warn level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_statuses_lost_to_a_backend_outage_are_logged() {
    let kamailio = Kamailio::start().await;
    let api_key = format!("api-key-{}", trunkline_tests::random_hex(16));
    let backend = Backend::start(&api_key).await;
    backend.set_providers(&[Provider::udp(
        "p-lost",
        "lost",
        &kamailio.password("lost"),
        kamailio.addr(),
    )]);
    let mut t = Trunkline::start(&["run"], &env(&backend, &api_key)).await;
    t.run_until(backend.wait_for_status("p-lost", "registered"))
        .await;
    // From now on the backend refuses every report.
    backend.inject(Endpoint::ProviderPatch, Fault::Status(503), usize::MAX);
    let exited = t.terminate().await;
    assert_eq!(exited.code(), Some(0), "{}", exited.output());
    let lost: Vec<_> = exited
        .json_lines()
        .into_iter()
        .filter(|l| {
            l["level"] == "warn"
                && l["msg"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("final status not delivered"))
        })
        .collect();
    assert_eq!(lost.len(), 1, "{}", exited.output());
    assert_eq!(lost[0]["provider_id"], "p-lost");
    assert_eq!(lost[0]["status"], "pending");
    // The un-REGISTER itself went through: the registrar holds nothing.
    assert!(kamailio.bindings_of("lost").await.is_empty());
}
