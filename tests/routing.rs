//! End to end: call routing against a real HTTP backend with fault injection
//! (CONTRACT.md §3): `livekitDomain` from `GET /api/sip/config`, per-DID destinations
//! from `GET /api/sip/destination/{did}` with a short cache, and the default
//! destination on 404, errors and a backend slower than the lookup timeout. Observed
//! through the admin API's routing check, which runs the lookup a call runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::Value;
use std::time::Duration;
use trunkline_tests::{net, Backend, Endpoint, Fault, Trunkline};

async fn route(http: &reqwest::Client, admin: &str, did: &str) -> (u16, Value) {
    let r = http
        .get(format!(
            "{admin}/api/destinations/{}",
            did.replace('+', "%2B")
        ))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn lookups_of(backend: &Backend, did: &str) -> usize {
    let path = format!("/api/sip/destination/{}", did.replace('+', "%2B"));
    backend
        .history()
        .iter()
        .filter(|r| r.endpoint == Endpoint::Destination && r.path == path)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_come_from_the_backend_with_cache_and_fallback() {
    let api_key = format!("api-key-{}", trunkline_tests::random_hex(16));
    let backend = Backend::start(&api_key).await;
    backend.set_providers(&[]);
    backend.set_config(Some(
        serde_json::json!({ "livekitDomain": "proj.sip.livekit.cloud", "other": 1 }),
    ));
    backend.set_destination("+1555", "sip:+1555@other.example;transport=tcp");

    let admin_port = net::free_tcp_port();
    let admin = format!("http://127.0.0.1:{admin_port}");
    let mut t = Trunkline::start(
        &["run"],
        &[
            ("BACKEND_URL", backend.url()),
            ("API_KEY", api_key.clone()),
            ("SIP_LISTEN_ADDRESS", "127.0.0.1".to_owned()),
            ("SIP_PORT", net::free_udp_port().to_string()),
            ("ADMIN_LISTEN", format!("127.0.0.1:{admin_port}")),
            ("LIVEKIT_SIP_DOMAIN", "configured.example".to_owned()),
            ("ROUTE_LOOKUP_TIMEOUT", "300ms".to_owned()),
            ("LOG_FORMAT", "json".to_owned()),
            ("LOG_LEVEL", "debug".to_owned()),
        ],
    )
    .await;
    t.wait_for_log("the backend's livekitDomain applied", |lines| {
        lines
            .iter()
            .any(|l| l["domain"] == "proj.sip.livekit.cloud")
    })
    .await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // The backend's route, then the same from the cache.
    let (status, body) = route(&http, &admin, "+1555").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["destinationUri"],
        "sip:+1555@other.example;transport=tcp"
    );
    assert_eq!(body["source"], "backend");
    assert_eq!(body["cached"], false);
    let (_, body) = route(&http, &admin, "+1555").await;
    assert_eq!(body["cached"], true);
    assert_eq!(
        lookups_of(&backend, "+1555"),
        1,
        "{}",
        backend.history_text()
    );

    // No entry (404): the default, on the backend's domain rather than the configured one.
    let (_, body) = route(&http, &admin, "+1666").await;
    assert_eq!(body["destinationUri"], "sip:+1666@proj.sip.livekit.cloud");
    assert_eq!(body["source"], "default");

    // A 503: the default now, and the next call asks again (failures are not cached).
    backend.inject(Endpoint::Destination, Fault::Status(503), 1);
    let (_, body) = route(&http, &admin, "+1777").await;
    assert_eq!(body["destinationUri"], "sip:+1777@proj.sip.livekit.cloud");
    assert_eq!(body["source"], "fallback");
    let (_, body) = route(&http, &admin, "+1777").await;
    assert_eq!(body["source"], "default");
    assert_eq!(lookups_of(&backend, "+1777"), 2);

    // A dropped connection and a backend slower than the lookup timeout: the default.
    backend.inject(Endpoint::Destination, Fault::Drop, 1);
    let (_, body) = route(&http, &admin, "+1888").await;
    assert_eq!(body["source"], "fallback");
    backend.set_delay(Some(Duration::from_secs(3)));
    let (_, body) = route(&http, &admin, "+1999").await;
    assert_eq!(body["source"], "fallback", "{body}");
    assert_eq!(body["destinationUri"], "sip:+1999@proj.sip.livekit.cloud");
    backend.set_delay(None);

    // Bad input is refused with what is wrong.
    let (status, body) = route(&http, &admin, "1@evil.example").await;
    assert_eq!(status, 400);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("not a dialable number"));

    let exited = t.terminate().await;
    assert_eq!(exited.code(), Some(0));
    let lines = exited.json_lines();
    for did in ["+1777", "+1888", "+1999"] {
        assert!(
            lines.iter().any(|l| l["level"] == "warn"
                && l["did"] == did
                && l["msg"]
                    .as_str()
                    .is_some_and(|m| m.contains("using the default destination"))),
            "a warning says why {did} took the default:\n{}",
            exited.output()
        );
    }
    let history = backend.history();
    assert!(
        history
            .iter()
            .filter(|r| matches!(r.endpoint, Endpoint::Config | Endpoint::Destination))
            .all(|r| r.api_key.as_deref() == Some(api_key.as_str()) && r.method == "GET"),
        "every routing request is a GET with the API key:\n{}",
        backend.history_text()
    );
    exited.assert_no_secret(&[("the API key", api_key.as_str())]);
}
