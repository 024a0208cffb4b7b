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
                            transport: sip_core::Transport::Udp,
                            target: None,
                        }],
                        calls: vec![sip_core::CallView {
                            id: 7,
                            provider_id: Some("p-alice".into()),
                            did: "+15550001".into(),
                            caller: Some("+15559999".into()),
                            destination: Some("sip:+15550001@lk.example".into()),
                            state: "answered",
                            started_at: "2026-01-02T03:04:05Z".into(),
                            answered_at: Some("2026-01-02T03:04:06Z".into()),
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
        fd_budget::MAX_ADMIN_CONNECTIONS,
    ));
    url
}

/// The admin server within `limits`, without a token; its loopback address.
async fn start_with(limits: server::Limits) -> SocketAddr {
    let (calls, _seen) = fake_driver(true);
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server::serve(
        listener,
        router(AdminState::new(calls, None)),
        limits,
    ));
    addr
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

/// The safety net of the connection tests: it turns a hang into a failure, it times
/// nothing (the server's own limits are what the tests wait for).
const CLOSE_WAIT: Duration = Duration::from_secs(60);

/// A connection that sent `sent` and then nothing: a slow-loris client.
async fn slow_client(addr: SocketAddr, sent: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt as _;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(sent).await.unwrap();
    s
}

/// Waits until the server closes `s`, returning what it sent before (a reset counts as
/// a close too); fails when the server keeps it open past the safety net.
async fn closed_by_server(s: &mut tokio::net::TcpStream, what: &str) -> Vec<u8> {
    use tokio::io::AsyncReadExt as _;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(CLOSE_WAIT, s.read(&mut buf)).await {
            Err(_) => panic!(
                "the server kept {what} open; it sent {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0) | Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(buf.get(..n).unwrap()),
        }
    }
}

const PARTIAL_HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";

#[tokio::test]
async fn healthz_answers_while_more_slow_connections_than_the_cap_are_held() {
    let cap = 8;
    let addr = start_with(server::Limits::with_cap(cap)).await;
    let mut slow = Vec::new();
    for _ in 0..cap * 5 {
        slow.push(slow_client(addr, PARTIAL_HEAD).await);
    }

    let health = client()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");

    // The oldest were evicted to make room (the newest `cap` may still be open, minus
    // the one the probe took): the server holds no more than its cap.
    let evicted = slow.len() - cap;
    for (i, s) in slow.iter_mut().take(evicted).enumerate() {
        let sent = closed_by_server(s, &format!("slow connection {i} (over the cap)")).await;
        assert!(sent.is_empty(), "an evicted connection gets no answer");
    }
}

#[tokio::test]
async fn a_partial_request_head_is_closed_after_the_header_read_timeout() {
    let addr = start_with(server::Limits {
        header_read: Duration::from_millis(200),
        ..server::Limits::with_cap(8)
    })
    .await;
    let mut s = slow_client(addr, PARTIAL_HEAD).await;
    let sent = closed_by_server(&mut s, "a connection with half a request head").await;
    assert!(sent.is_empty(), "{:?}", String::from_utf8_lossy(&sent));
    // Connecting and sending nothing is the same: the head is due from the accept.
    let mut silent = slow_client(addr, b"").await;
    closed_by_server(&mut silent, "a connection that sent nothing").await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    // The header-read limit is far off: only the idle limit can close this one.
    let addr = start_with(server::Limits {
        idle: Duration::from_millis(200),
        header_read: CLOSE_WAIT * 10,
        ..server::Limits::with_cap(8)
    })
    .await;
    let mut s = slow_client(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n",
    )
    .await;
    let sent =
        String::from_utf8(closed_by_server(&mut s, "an idle keep-alive connection").await).unwrap();
    assert!(sent.starts_with("HTTP/1.1 200"), "{sent}");
    assert!(
        sent.ends_with("ok"),
        "answered before it was closed: {sent}"
    );
    assert!(
        !sent.to_ascii_lowercase().contains("connection: close"),
        "the server offered keep-alive: {sent}"
    );
}

#[tokio::test]
async fn a_kept_alive_connection_serves_request_after_request() {
    // The watchdog must not close a connection that is answering or being asked.
    let addr = start_with(server::Limits::with_cap(8)).await;
    let c = client();
    for _ in 0..3 {
        let health = c
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.text().await.unwrap(), "ok");
    }
}

#[tokio::test]
async fn an_answer_larger_than_the_connection_buffer_arrives_whole() {
    // /api/registrations of 10,000 providers is megabytes; MAX_BUF bounds reads only.
    let big = "x".repeat(3 * 1024 * 1024);
    let body = big.clone();
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/big", get(move || async move { body }));
    tokio::spawn(server::serve(listener, app, server::Limits::with_cap(8)));
    let got = client()
        .get(format!("http://{addr}/big"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(got == big, "got {} bytes of {}", got.len(), big.len());
}

#[tokio::test]
async fn a_request_head_larger_than_the_buffer_is_refused() {
    let addr = start_with(server::Limits::with_cap(8)).await;
    let response = client()
        .get(format!("http://{addr}/healthz"))
        .header("x-padding", "p".repeat(64 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
}

#[tokio::test]
async fn a_connection_being_answered_is_never_evicted() {
    use std::sync::Mutex;
    // One connection allowed; its request waits in the handler until the test lets go.
    let (entered_tx, entered) = oneshot::channel::<()>();
    let (release, released) = oneshot::channel::<()>();
    let hooks = Arc::new(Mutex::new(Some((entered_tx, released))));
    let app = Router::new().route(
        "/slow",
        get(move || {
            let hooks = hooks.lock().unwrap().take();
            async move {
                if let Some((entered, released)) = hooks {
                    let _ = entered.send(());
                    let _ = released.await;
                }
                "done"
            }
        }),
    );
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server::serve(listener, app, server::Limits::with_cap(1)));
    let answer = tokio::spawn(client().get(format!("http://{addr}/slow")).send());
    entered.await.unwrap();

    // The only slot is mid-answer: a new connection is closed at once, unanswered.
    let mut late = slow_client(addr, b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await;
    let sent = closed_by_server(&mut late, "a connection over the cap").await;
    assert!(sent.is_empty(), "{:?}", String::from_utf8_lossy(&sent));

    release.send(()).unwrap();
    let answer = answer.await.unwrap().unwrap();
    assert_eq!(answer.text().await.unwrap(), "done");
}
