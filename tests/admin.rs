//! End to end: the admin HTTP API (CONTRACT.md §4) and `trunkline status` (§1) of the
//! `trunkline` binary, registering with a real Kamailio and a real HTTP backend.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use prometheus_parse::{Scrape, Value};
use std::time::{Duration, Instant};
use trunkline_tests::{net, Backend, Endpoint, Fault, Kamailio, Provider, Trunkline, WAIT_LIMIT};

const ALICE: &str = "p-alice";

/// The number of answered provider-list GETs in the backend's history.
fn provider_list_gets(backend: &Backend) -> usize {
    backend
        .history()
        .iter()
        .filter(|r| r.endpoint == Endpoint::ProviderList && r.status == Some(200))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_and_status_command_against_a_running_trunkline() {
    let kamailio = Kamailio::start().await;
    let api_key = format!("api-key-{}", trunkline_tests::random_hex(16));
    let admin_token = format!("admin-token-{}", trunkline_tests::random_hex(16));
    let password = kamailio.password("alice");
    let backend = Backend::start(&api_key).await;
    backend.set_providers(&[Provider::udp(ALICE, "alice", &password, kamailio.addr())]);
    // The provider list fails until the test has seen /readyz answer 503.
    backend.inject(Endpoint::ProviderList, Fault::Status(503), usize::MAX);

    let admin_port = net::free_tcp_port();
    let admin = format!("http://127.0.0.1:{admin_port}");
    let mut trunkline = Trunkline::start(
        &["run"],
        &[
            ("BACKEND_URL", backend.url()),
            ("API_KEY", api_key.clone()),
            ("SIP_LISTEN_ADDRESS", "127.0.0.1".to_owned()),
            ("SIP_PORT", net::free_udp_port().to_string()),
            ("SIP_PUBLIC_ADDRESS", "127.0.0.1".to_owned()),
            ("ADMIN_LISTEN", format!("127.0.0.1:{admin_port}")),
            ("ADMIN_TOKEN", admin_token.clone()),
            ("LOG_FORMAT", "json".to_owned()),
            ("LOG_LEVEL", "debug".to_owned()),
            ("SHUTDOWN_GRACE", "5s".to_owned()),
        ],
    )
    .await;
    let http = trunkline_tests::admin_client();

    // Not ready: the admin API is bound before the first fetch, which has failed.
    trunkline
        .run_until(backend.wait_for("a failed provider-list fetch", |history| {
            history
                .iter()
                .find(|r| r.endpoint == Endpoint::ProviderList && r.status == Some(503))
                .cloned()
        }))
        .await;
    let readyz = http.get(format!("{admin}/readyz")).send().await.unwrap();
    assert_eq!(readyz.status(), 503, "/readyz before the first sync");
    let why = readyz.text().await.unwrap();
    assert!(
        why.contains("provider list"),
        "/readyz should say what it waits for: {why}"
    );
    let healthz = http.get(format!("{admin}/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200);
    assert_eq!(healthz.text().await.unwrap(), "ok");

    // Ready once the backend answers: the core retries with backoff and offers nothing
    // to await over HTTP, so /readyz is polled, bounded.
    backend.clear_faults();
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        let status = trunkline
            .run_until(http.get(format!("{admin}/readyz")).send())
            .await
            .unwrap()
            .status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "/readyz is 200 or 503, nothing else");
        assert!(
            Instant::now() < deadline,
            "/readyz still 503 after {WAIT_LIMIT:?}; backend history:\n{}",
            backend.history_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The registrations: alice registered, with a timestamp, and no secret anywhere.
    let first = trunkline
        .run_until(backend.wait_for_status(ALICE, "registered"))
        .await;
    let response = http
        .get(format!("{admin}/api/registrations"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    for (name, secret) in [
        ("the provider's password", &password),
        ("API_KEY", &api_key),
        ("ADMIN_TOKEN", &admin_token),
    ] {
        // The body is not printed: it would show the secret.
        assert!(
            !body.contains(secret.as_str()),
            "/api/registrations contains {name}"
        );
    }
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let alice = list
        .as_array()
        .and_then(|all| all.iter().find(|r| r["id"] == ALICE))
        .unwrap_or_else(|| panic!("{ALICE} missing from /api/registrations: {list}"));
    assert_eq!(alice["status"], "registered", "{alice}");
    assert_eq!(alice["error"], serde_json::Value::Null, "{alice}");
    assert_eq!(alice["registrar"], kamailio.addr().to_string(), "{alice}");
    for key in ["lastRegisterAt", "expiresAt", "nextRefreshAt"] {
        let text = alice[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} should be a timestamp once registered: {alice}"));
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{key} {text:?} is not RFC 3339: {e}"));
    }
    let mut keys: Vec<&str> = alice
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "error",
            "expiresAt",
            "id",
            "lastRegisterAt",
            "name",
            "nextRefreshAt",
            "registrar",
            "status",
            // CONTRACT.md §7.
            "target",
            "transport"
        ]
    );
    assert_eq!(alice["transport"], "udp", "{alice}");
    assert_eq!(alice["target"], kamailio.addr().to_string(), "{alice}");

    // Metrics, read by a Prometheus text parser.
    let response = http.get(format!("{admin}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let page = response.text().await.unwrap();
    let scrape = Scrape::parse(page.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let sample = |metric: &str, labels: &[(&str, &str)]| {
        scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == metric
                    && s.labels.len() == labels.len()
                    && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            })
            .map(|s| s.value.clone())
    };
    assert_eq!(
        sample("trunkline_registrations", &[("state", "registered")]),
        Some(Value::Gauge(1.0)),
        "{page}"
    );
    assert_eq!(
        sample("trunkline_registrations", &[("state", "failed")]),
        Some(Value::Gauge(0.0)),
        "{page}"
    );
    assert!(
        matches!(
            sample(
                "trunkline_backend_requests_total",
                &[("op", "fetch_providers"), ("outcome", "failed")]
            ),
            Some(Value::Counter(n)) if n >= 1.0
        ),
        "the injected provider-list failures should be counted:\n{page}"
    );
    assert!(
        matches!(
            sample("trunkline_sip_messages_total", &[("direction", "in")]),
            Some(Value::Counter(n)) if n >= 1.0
        ),
        "{page}"
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "trunkline_register_transactions_total"),
        "{page}"
    );
    assert_eq!(
        sample("trunkline_active_calls", &[]),
        Some(Value::Gauge(0.0)),
        "{page}"
    );
    assert!(scrape.docs.contains_key("trunkline_calls_total"), "{page}");

    // Re-register: refused without the token, carried out with it.
    let register = format!("{admin}/api/registrations/{ALICE}/register");
    for token in [None, Some("not-the-token")] {
        let mut request = http.post(&register);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let refused = request.send().await.unwrap();
        assert_eq!(refused.status(), 401, "POST register with token {token:?}");
        assert!(
            refused.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "a 401 names the Bearer scheme"
        );
        let error: serde_json::Value = refused.json().await.unwrap();
        assert!(error["error"].is_string(), "{error}");
    }
    let registers_before = kamailio.register_count("alice").await;
    let registered_before = backend
        .patches_for(ALICE)
        .iter()
        .filter(|p| p.register_status() == Some("registered"))
        .count();
    let accepted = http
        .post(&register)
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202, "POST register with the token");
    let again = trunkline
        .run_until(backend.wait_for(
            &format!("a new registered PATCH for {ALICE} after POST register"),
            |history| {
                history
                    .iter()
                    .filter(|r| {
                        r.is_accepted_patch_for(ALICE) && r.register_status() == Some("registered")
                    })
                    .nth(registered_before)
                    .cloned()
            },
        ))
        .await;
    assert!(
        again.last_register_at_time() >= first.last_register_at_time(),
        "lastRegisterAt should not go back: {again}"
    );
    let registers_after = kamailio.register_count("alice").await;
    assert!(
        registers_after > registers_before,
        "POST register should send a REGISTER to Kamailio (count {registers_before} -> {registers_after})"
    );

    // Unknown id: 404 with a JSON error naming it.
    let unknown = http
        .post(format!("{admin}/api/registrations/p-nobody/register"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let error: serde_json::Value = unknown.json().await.unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap_or_default()
            .contains("p-nobody"),
        "{error}"
    );

    // Sync: refused without the token; with it, the backend sees another list GET.
    let refused = http.post(format!("{admin}/api/sync")).send().await.unwrap();
    assert_eq!(refused.status(), 401, "POST /api/sync without the token");
    let gets_before = provider_list_gets(&backend);
    let accepted = http
        .post(format!("{admin}/api/sync"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202, "POST /api/sync with the token");
    trunkline
        .run_until(
            backend.wait_for("a provider-list GET after POST /api/sync", |history| {
                (history
                    .iter()
                    .filter(|r| r.endpoint == Endpoint::ProviderList && r.status == Some(200))
                    .count()
                    > gets_before)
                    .then_some(())
            }),
        )
        .await;

    // `trunkline status`, a second process, prints the table.
    let status = Trunkline::start(
        &["status", "--admin", &admin],
        &[("ADMIN_TOKEN", admin_token.clone())],
    )
    .await
    .wait_exit()
    .await;
    assert_eq!(status.code(), Some(0), "trunkline status should succeed");
    let header = status.stdout.lines().next().unwrap_or_default();
    for column in [
        "ID",
        "NAME",
        "STATUS",
        "ERROR",
        "LAST REGISTERED",
        "EXPIRES IN",
        "REGISTRAR",
    ] {
        assert!(header.contains(column), "no {column} column: {header}");
    }
    let row = status
        .stdout
        .lines()
        .find(|l| l.starts_with(ALICE))
        .unwrap_or_else(|| panic!("no line for {ALICE} in the table"));
    assert!(row.contains("registered"), "{row}");
    assert!(row.contains(&kamailio.addr().to_string()), "{row}");
    status.assert_no_secret(&[
        ("ADMIN_TOKEN", &admin_token),
        ("the provider's password", &password),
    ]);

    // ... and says clearly when nothing answers.
    let closed = format!("http://127.0.0.1:{}", net::free_tcp_port());
    let nobody = Trunkline::start(&["status", "--admin", &closed], &[])
        .await
        .wait_exit()
        .await;
    assert_eq!(nobody.code(), Some(1), "status against a closed port");
    assert!(
        nobody
            .stderr
            .contains(&format!("no trunkline answered at {closed}: "))
            && nobody
                .stderr
                .contains("(is it running? check ADMIN_LISTEN / --admin)"),
        "unclear message: {}",
        nobody.stderr
    );

    let exited = trunkline.terminate().await;
    assert_eq!(exited.code(), Some(0));
    exited.assert_no_secret(&[
        ("API_KEY", &api_key),
        ("ADMIN_TOKEN", &admin_token),
        ("the provider's password", &password),
    ]);
    let started = exited
        .json_lines()
        .into_iter()
        .find(|l| l["msg"] == "trunkline started")
        .expect("a \"trunkline started\" log line");
    assert_eq!(
        started["admin"],
        format!("127.0.0.1:{admin_port}"),
        "the start line names the admin address: {started}"
    );
}

#[tokio::test]
async fn a_taken_admin_port_exits_2_naming_admin_listen() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let exited = Trunkline::start(
        &["run"],
        &[
            ("SIP_LISTEN_ADDRESS", "127.0.0.1".to_owned()),
            ("SIP_PORT", net::free_udp_port().to_string()),
            ("ADMIN_LISTEN", addr.to_string()),
        ],
    )
    .await
    .wait_exit()
    .await;
    assert_eq!(
        exited.code(),
        Some(2),
        "a taken admin port is a runtime failure"
    );
    assert!(
        exited
            .stderr
            .contains(&format!("cannot bind the admin API on tcp {addr}"))
            && exited.stderr.contains("ADMIN_LISTEN"),
        "unclear message: {}",
        exited.stderr
    );
}

/// The descriptors `pid` holds now.
fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("reading trunkline's /proc/<pid>/fd")
        .count()
}

#[tokio::test]
async fn slow_clients_cannot_take_the_admin_api_or_the_descriptors() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    // trunkline inherits the common soft limit of 1,024 and raises it to the hard one.
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if hard > 1024 {
        setrlimit(Resource::RLIMIT_NOFILE, 1024, hard).unwrap();
    }
    let admin_port = net::free_tcp_port();
    let mut trunkline = Trunkline::start(
        &["run"],
        &[
            ("SIP_LISTEN_ADDRESS", "127.0.0.1".to_owned()),
            ("SIP_PORT", net::free_udp_port().to_string()),
            ("ADMIN_LISTEN", format!("127.0.0.1:{admin_port}")),
            ("LOG_FORMAT", "json".to_owned()),
        ],
    )
    .await;
    trunkline
        .wait_for_log("the start line", |lines| {
            lines.iter().any(|l| l["msg"] == "trunkline started")
        })
        .await;
    let lines: Vec<serde_json::Value> = trunkline
        .stdout()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let limit = lines
        .iter()
        .find(|l| {
            l["msg"]
                .as_str()
                .is_some_and(|m| m.starts_with("open-file limit"))
        })
        .unwrap_or_else(|| panic!("no open-file limit line: {lines:?}"));
    if hard != RLIM_INFINITY {
        assert_eq!(
            limit["open_files"], hard,
            "raised to the hard limit: {limit}"
        );
    }
    let cap = usize::try_from(limit["admin_connections"].as_u64().unwrap()).unwrap();
    assert!((1..=256).contains(&cap), "{limit}");

    // More slow-loris connections than the cap, each holding half a request head.
    let before = open_descriptors(trunkline.pid());
    let mut slow = Vec::new();
    for _ in 0..cap + 40 {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", admin_port))
            .await
            .unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    let healthz = trunkline
        .run_until(
            trunkline_tests::admin_client()
                .get(format!("http://127.0.0.1:{admin_port}/healthz"))
                .send(),
        )
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200);
    assert_eq!(healthz.text().await.unwrap(), "ok");
    // The oldest made room: the server closed them (a read sees the end).
    for (i, s) in slow.iter_mut().take(40).enumerate() {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(WAIT_LIMIT, s.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "slow connection {i} is still open at the server: {read:?}"
        );
    }
    // The admin side holds at most its cap (plus one connection being evicted).
    let during = open_descriptors(trunkline.pid());
    assert!(
        during <= before + cap + 1,
        "trunkline holds {during} descriptors with {} slow clients (before: {before}, cap {cap})",
        slow.len()
    );
    drop(slow);
    trunkline.terminate().await;
}
