//! The admin API over real HTTP on loopback, with a stand-in for the driver.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;
use sip_core::stats::Stats;
use sip_core::{RegisterStatus, RegistrationView, RouteSource};
use std::net::SocketAddr;

const TOKEN: &str = "unit-test-admin-token";

/// A stand-in driver: answers snapshots with `synced` and one registration, and
/// hands every command to the test.
fn fake_driver(synced: bool) -> (mpsc::Sender<AdminCall>, mpsc::UnboundedReceiver<Command>) {
    fake_driver_in(synced, false)
}

/// [`fake_driver`], shutting down or not; routing checks: `+1` has a backend route,
/// `+0` has none and no default.
fn fake_driver_in(
    synced: bool,
    shutting_down: bool,
) -> (mpsc::Sender<AdminCall>, mpsc::UnboundedReceiver<Command>) {
    let (calls, mut rx) = mpsc::channel(8);
    let (commands, seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(call) = rx.recv().await {
            match call {
                AdminCall::Snapshot(reply) => {
                    let _ = reply.send(Snapshot {
                        registrations: vec![RegistrationView {
                            id: "p-alice".into(),
                            name: "Alice".into(),
                            status: RegisterStatus::Registered,
                            error: None,
                            last_register_at: Some("2026-01-02T03:04:05Z".into()),
                            expires_at: Some("2026-01-02T04:04:05Z".into()),
                            next_refresh_at: Some("2026-01-02T03:52:05Z".into()),
                            registrar: "127.0.0.1:5090".into(),
                        }],
                        stats: Stats::default(),
                        synced,
                        shutting_down,
                    });
                }
                AdminCall::Destination { did, reply } => {
                    let answer = match did.as_str() {
                        "+1" => Ok(Route {
                            uri: "sip:+1@lk.example".into(),
                            source: RouteSource::Backend,
                            cached: true,
                        }),
                        "+0" => Err(NoRoute::NoDefault { did }),
                        _ => Err(NoRoute::BadDid { did }),
                    };
                    let _ = reply.send(answer);
                }
                AdminCall::Command(c) => {
                    let _ = commands.send(c);
                }
            }
        }
    });
    (calls, seen)
}

async fn start(calls: mpsc::Sender<AdminCall>, token: Option<&str>) -> String {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(
        listener,
        AdminState::new(calls, token.map(Secret::new)),
    ));
    url
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn error_of(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.unwrap();
    body["error"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn reads_are_open_and_show_the_snapshot() {
    let (calls, _seen) = fake_driver(true);
    let url = start(calls, Some(TOKEN)).await;
    let c = client();

    let health = c.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");

    assert_eq!(
        c.get(format!("{url}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let regs = c
        .get(format!("{url}/api/registrations"))
        .send()
        .await
        .unwrap();
    assert_eq!(regs.status(), 200);
    let body: serde_json::Value = regs.json().await.unwrap();
    assert_eq!(body[0]["id"], "p-alice");
    assert_eq!(body[0]["status"], "registered");
    assert_eq!(body[0]["lastRegisterAt"], "2026-01-02T03:04:05Z");
    assert_eq!(body[0]["error"], serde_json::Value::Null);

    let metrics = c.get(format!("{url}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert_eq!(
        metrics.headers()[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(metrics
        .text()
        .await
        .unwrap()
        .contains("trunkline_registrations{state=\"registered\"} 1\n"));
}

#[tokio::test]
async fn not_ready_until_the_first_sync() {
    let (calls, _seen) = fake_driver(false);
    let url = start(calls, None).await;
    let r = client().get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("provider list"));
}

#[tokio::test]
async fn not_ready_once_shutting_down() {
    let (calls, _seen) = fake_driver_in(true, true);
    let url = start(calls, None).await;
    let r = client().get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("shutting down"));
}

#[tokio::test]
async fn routing_check_shows_the_destination_or_why_there_is_none() {
    let (calls, _seen) = fake_driver(true);
    let url = start(calls, Some(TOKEN)).await;
    let c = client();
    let r = c
        .get(format!("{url}/api/destinations/%2B1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["did"], "+1");
    assert_eq!(body["destinationUri"], "sip:+1@lk.example");
    assert_eq!(body["source"], "backend");
    assert_eq!(body["cached"], true);

    let r = c
        .get(format!("{url}/api/destinations/+0"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(error_of(r).await.contains("LIVEKIT_SIP_DOMAIN"));

    let r = c
        .get(format!("{url}/api/destinations/a%40b"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(error_of(r).await.contains("not a dialable number"));
}

#[tokio::test]
async fn orders_need_the_token_when_one_is_set() {
    let (calls, mut seen) = fake_driver(true);
    let url = start(calls, Some(TOKEN)).await;
    let c = client();
    let register = format!("{url}/api/registrations/p-alice/register");

    for auth in [None, Some("Bearer wrong"), Some("Basic dXNlcjpwYXNz")] {
        let mut req = c.post(&register);
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"trunkline\""
        );
        let error = error_of(r).await;
        assert!(error.contains("ADMIN_TOKEN"), "{error}");
        assert!(!error.contains(TOKEN), "the 401 must not reveal the token");
    }
    let r = c.post(format!("{url}/api/sync")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        seen.try_recv().is_err(),
        "a refused call must not reach the core"
    );

    let r = c.post(&register).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(
        seen.recv().await,
        Some(Command::Reregister {
            id: "p-alice".into()
        })
    );

    let r = c
        .post(format!("{url}/api/sync"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(seen.recv().await, Some(Command::Resync));
}

#[tokio::test]
async fn unknown_id_is_404_and_reaches_nothing() {
    let (calls, mut seen) = fake_driver(true);
    let url = start(calls, None).await;
    let r = client()
        .post(format!("{url}/api/registrations/p-nobody/register"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let error = error_of(r).await;
    assert!(
        error.contains("p-nobody") && error.contains("GET /api/registrations"),
        "{error}"
    );
    assert!(seen.try_recv().is_err());
}

#[tokio::test]
async fn without_a_token_orders_are_open() {
    let (calls, mut seen) = fake_driver(true);
    let url = start(calls, None).await;
    let r = client()
        .post(format!("{url}/api/sync"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(seen.recv().await, Some(Command::Resync));
}

#[tokio::test]
async fn a_stopped_driver_is_503_but_the_process_is_alive() {
    let (calls, rx) = mpsc::channel::<AdminCall>(8);
    drop(rx);
    let url = start(calls, None).await;
    let c = client();
    assert_eq!(
        c.get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for path in ["/readyz", "/metrics", "/api/registrations"] {
        let r = c.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 503, "{path}");
        assert!(error_of(r).await.contains("not running"), "{path}");
    }
    let r = c.post(format!("{url}/api/sync")).send().await.unwrap();
    assert_eq!(r.status(), 503);
}

#[tokio::test]
async fn a_driver_that_drops_the_question_is_503() {
    let (calls, mut rx) = mpsc::channel::<AdminCall>(8);
    // Takes each call and drops it unanswered, as a driver that stops mid-way would.
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let url = start(calls, None).await;
    let r = client()
        .get(format!("{url}/api/registrations"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
}
