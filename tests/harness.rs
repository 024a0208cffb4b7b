//! Tests of the harness itself, so that a failing end-to-end test points at
//! trunkline and not at its peers: the Kamailio config behaves as documented
//! (checked with SIPp, a third-party UA), and the backend implements CONTRACT.md §3
//! with working fault injection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use trunkline_tests::sipp::run_scenario;
use trunkline_tests::{Backend, Endpoint, Fault, Kamailio, KamailioOptions, Provider};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_registrar_behaves_as_documented() {
    let kamailio = Kamailio::start().await;
    let target = kamailio.addr();
    let granted = |user: &'static str, asked: u32, expected: u32| {
        let password = kamailio.password(user);
        async move {
            let asked = asked.to_string();
            let expected = expected.to_string();
            run_scenario(
                target,
                "register.xml",
                user,
                &password,
                &[
                    "-key",
                    "expires",
                    &asked,
                    "-set",
                    "granted_expected",
                    &expected,
                ],
            )
            .await
            .unwrap_or_else(|e| {
                panic!("{user} asking {asked} s should be granted {expected} s: {e}")
            })
        }
    };

    // Normal accounts: what is asked, within [60, 3600]. One user per check, as
    // register.xml reads the first binding of the 200 OK.
    granted("alice", 300, 300).await;
    granted("alice-long", 7200, 3600).await;
    granted("alice-brief", 10, 60).await;
    // short-*: never more than 20 s.
    granted("short-dave", 3600, 20).await;
    // minexp-*: 600 and more are granted as asked.
    granted("minexp-carol", 900, 900).await;

    // minexp-* asking less than 600: 423 with Min-Expires 600, then 600 granted.
    let log = run_scenario(
        target,
        "register-423.xml",
        "minexp-erin",
        &kamailio.password("minexp-erin"),
        &["-key", "expires", "300"],
    )
    .await
    .unwrap_or_else(|e| panic!("minexp-erin: {e}"));
    assert!(log.contains("Min-Expires 600"), "{log}");

    // Wrong password: challenged again, never bound.
    run_scenario(
        target,
        "register-wrong-password.xml",
        "bob",
        "not-bobs-password",
        &["-key", "expires", "300"],
    )
    .await
    .unwrap_or_else(|e| panic!("bob with a wrong password: {e}"));
    // Another account's valid credentials do not register this one.
    run_scenario(
        target,
        "register-wrong-password.xml",
        "bob",
        &kamailio.password("alice"),
        &["-key", "expires", "300"],
    )
    .await
    .unwrap_or_else(|e| panic!("bob with alice's password: {e}"));

    let bindings = kamailio.ul_dump().await;
    let aor_of = |aor: &str| bindings.iter().filter(|b| b.aor == aor).collect::<Vec<_>>();
    assert!(aor_of("bob").is_empty(), "{bindings:?}");
    assert_eq!(aor_of("alice").len(), 1, "{bindings:?}");
    assert!(
        aor_of("short-dave")
            .iter()
            .all(|b| b.expires.is_some_and(|e| e <= 20)),
        "{bindings:?}"
    );
    assert!(
        aor_of("minexp-erin")
            .iter()
            .all(|b| b.expires.is_some_and(|e| e > 300)),
        "{bindings:?}"
    );

    assert_eq!(kamailio.binding_count().await, bindings.len() as u64);
    assert_eq!(kamailio.bindings_of("short-dave").await.len(), 1);
    assert!(kamailio.bindings_of("nobody").await.is_empty());

    let counts = kamailio.register_counts().await;
    assert_eq!(counts.get("bob"), Some(&4), "{counts:?}");
    assert_eq!(counts.get("alice"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("mallory"), None, "{counts:?}");
    assert_eq!(kamailio.register_count("bob").await, 4);
    assert_eq!(kamailio.register_count("mallory").await, 0);

    // Un-registering is always allowed, also for minexp-* and short-*.
    for user in [
        "alice",
        "alice-long",
        "alice-brief",
        "short-dave",
        "minexp-carol",
        "minexp-erin",
    ] {
        run_scenario(
            target,
            "unregister.xml",
            user,
            &kamailio.password(user),
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("un-registering {user}: {e}"));
    }
    let left = kamailio.ul_dump().await;
    assert!(left.is_empty(), "bindings left after un-register: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_answers_an_expired_nonce_with_stale_true() {
    let kamailio = Kamailio::start_with(KamailioOptions {
        nonce_expire_secs: Some(1),
    })
    .await;
    // The scenario pauses 3 s (in SIPp) so that its nonce expires.
    let log = run_scenario(
        kamailio.addr(),
        "register-stale.xml",
        "alice",
        &kamailio.password("alice"),
        &["-key", "expires", "300"],
    )
    .await
    .unwrap_or_else(|e| panic!("register-stale.xml: {e}"));
    assert!(log.contains("stale=true"), "{log}");
}

#[tokio::test]
async fn backend_serves_records_checks_and_injects_faults() {
    let backend = Backend::start("the-key").await;
    let registrar = "127.0.0.1:5060".parse().unwrap();
    backend.set_providers(&[Provider::udp("p1", "alice", "pw", registrar).expires_in(300)]);
    let client = reqwest::Client::new();
    let list_url = format!("{}/api/sip/provider-registration", backend.url());
    let patch_url = format!("{list_url}/p1");
    let good = json!({"registerStatus": "registered", "registerError": null,
                      "lastRegisterAt": "2026-01-02T03:04:05Z"});

    // The list, camelCase, with the key; 401 without it.
    let list: serde_json::Value = client
        .get(&list_url)
        .header("x-api-key", "the-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.pointer("/0/expiresIn"), Some(&json!(300)), "{list}");
    assert_eq!(
        list.pointer("/0/transport"),
        Some(&json!("SIP_TRANSPORT_UDP")),
        "{list}"
    );
    let status = |r: reqwest::Response| r.status().as_u16();
    let wrong_key = client.get(&list_url).header("x-api-key", "nope");
    assert_eq!(status(wrong_key.send().await.unwrap()), 401);

    // Injected status, then a dropped connection, then normal service again.
    backend.inject(Endpoint::ProviderPatch, Fault::Status(503), 1);
    backend.inject(Endpoint::ProviderPatch, Fault::Drop, 1);
    let patch = || {
        client
            .patch(&patch_url)
            .header("x-api-key", "the-key")
            .json(&good)
    };
    assert_eq!(status(patch().send().await.unwrap()), 503);
    assert!(
        patch().send().await.is_err(),
        "a dropped connection is an error"
    );
    assert_eq!(status(patch().send().await.unwrap()), 200);

    // A fault without end lasts until cleared.
    backend.inject(Endpoint::ProviderList, Fault::Status(500), usize::MAX);
    let list = || client.get(&list_url).header("x-api-key", "the-key");
    assert_eq!(status(list().send().await.unwrap()), 500);
    assert_eq!(status(list().send().await.unwrap()), 500);
    backend.clear_faults();
    assert_eq!(status(list().send().await.unwrap()), 200);

    // Unknown provider: 404.
    let unknown = client
        .patch(format!("{list_url}/nope"))
        .header("x-api-key", "the-key")
        .json(&good);
    assert_eq!(status(unknown.send().await.unwrap()), 404);

    // Waiting sees requests from before the call, and only accepted ones.
    let accepted = backend.wait_for_status("p1", "registered").await;
    assert_eq!(accepted.status, Some(200));
    assert_eq!(accepted.api_key.as_deref(), Some("the-key"));
    assert_eq!(backend.patches_for("p1").len(), 1);

    // ... and requests that arrive while waiting.
    let waiting = backend.wait_for_status("p1", "failed");
    let sender = async {
        let body = json!({"registerStatus": "failed", "registerError": "auth",
                          "lastRegisterAt": null});
        let request = client
            .patch(&patch_url)
            .header("x-api-key", "the-key")
            .json(&body);
        status(request.send().await.unwrap())
    };
    let (failed, sent) = tokio::join!(waiting, sender);
    assert_eq!(sent, 200);
    assert_eq!(failed.register_error(), Some("auth"));
    assert!(backend.contract_violations().is_empty());

    // A body outside the contract is recorded as a violation.
    let bad = json!({"registerStatus": "ok"});
    let request = client
        .patch(&patch_url)
        .header("x-api-key", "the-key")
        .json(&bad);
    assert_eq!(status(request.send().await.unwrap()), 200);
    assert!(!backend.contract_violations().is_empty());
}
