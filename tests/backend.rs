//! The backend contract under faults (CONTRACT.md §3): status reports survive outages
//! and errors, a 404 on a report triggers a resync, a resync applies the differences
//! only, and a rejected API key is reported clearly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Duration;
use trunkline_tests::{Backend, Endpoint, Fault, Kamailio, Provider, RecordedRequest, Trunkline};

fn env(
    backend: &Backend,
    api_key: &str,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("BACKEND_URL", backend.url()),
        ("API_KEY", api_key.to_owned()),
        ("SIP_LISTEN_ADDRESS", "127.0.0.1".to_owned()),
        (
            "SIP_PORT",
            trunkline_tests::net::free_udp_port().to_string(),
        ),
        ("SIP_PUBLIC_ADDRESS", "127.0.0.1".to_owned()),
        ("ADMIN_LISTEN", "127.0.0.1:0".to_owned()),
        ("LOG_FORMAT", "json".to_owned()),
        ("LOG_LEVEL", "debug".to_owned()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    env
}

fn key() -> String {
    format!("api-key-{}", trunkline_tests::random_hex(16))
}

fn patches<'a>(
    history: &'a [RecordedRequest],
    id: &'a str,
) -> impl Iterator<Item = &'a RecordedRequest> + 'a {
    history
        .iter()
        .filter(move |r| r.method == "PATCH" && r.path.ends_with(&format!("/{id}")))
}

fn provider_gets(history: &[RecordedRequest]) -> usize {
    history
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/api/sip/provider-registration")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_reports_are_retried_until_the_latest_status_is_delivered() {
    let kamailio = Kamailio::start().await;
    let api_key = key();
    let backend = Backend::start(&api_key).await;
    let reg = kamailio.addr();
    backend.set_providers(&[
        Provider::udp("p-a", "amy", &kamailio.password("amy"), reg),
        Provider::udp("p-b", "bea", &kamailio.password("bea"), reg),
    ]);
    // The backend is broken for the first reports: 500s, then dropped connections.
    backend.inject(Endpoint::ProviderPatch, Fault::Status(500), 3);
    backend.inject(Endpoint::ProviderPatch, Fault::Drop, 3);
    let mut t = Trunkline::start(&["run"], &env(&backend, &api_key, &[])).await;
    for id in ["p-a", "p-b"] {
        t.run_until(backend.wait_for_status(id, "registered")).await;
    }
    let history = backend.history();
    let failed: Vec<_> = history
        .iter()
        .filter(|r| r.method == "PATCH" && r.fault.is_some())
        .collect();
    assert_eq!(
        failed.len(),
        6,
        "every injected fault met a PATCH:\n{}",
        backend.history_text()
    );
    for id in ["p-a", "p-b"] {
        let accepted: Vec<_> = patches(&history, id)
            .filter(|r| r.fault.is_none())
            .collect();
        // Latest status wins: once `registered` is accepted, no older status follows.
        let first_registered = accepted
            .iter()
            .position(|r| r.register_status() == Some("registered"))
            .unwrap();
        assert!(
            accepted[first_registered..]
                .iter()
                .all(|r| r.register_status() == Some("registered")),
            "an older status overwrote a newer one for {id}:\n{}",
            backend.history_text()
        );
    }
    let exited = t.terminate().await;
    assert_eq!(exited.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_backend_times_out_and_reports_are_retried() {
    let kamailio = Kamailio::start().await;
    let api_key = key();
    let backend = Backend::start(&api_key).await;
    backend.set_providers(&[Provider::udp(
        "p-c",
        "cal",
        &kamailio.password("cal"),
        kamailio.addr(),
    )]);
    let mut t = Trunkline::start(
        &["run"],
        &env(&backend, &api_key, &[("BACKEND_TIMEOUT", "1s")]),
    )
    .await;
    // The provider list arrives; then the backend hangs longer than the timeout.
    t.run_until(backend.wait_for("the provider list fetch", |h| {
        (provider_gets(h) > 0).then_some(())
    }))
    .await;
    backend.set_delay(Some(Duration::from_secs(3)));
    // Timed-out requests never complete at the backend, so the log tells of them.
    t.wait_for_log("two timed-out status reports", |lines| {
        lines
            .iter()
            .filter(|l| {
                l["msg"] == "status report not delivered; will retry"
                    && l["error"].as_str().is_some_and(|e| e.contains("timed out"))
            })
            .count()
            >= 2
    })
    .await;
    backend.set_delay(None);
    let reg = t
        .run_until(backend.wait_for_status("p-c", "registered"))
        .await;
    assert!(reg.last_register_at().is_some());
    let exited = t.terminate().await;
    assert_eq!(exited.code(), Some(0));
    let log = exited.output();
    assert!(
        log.contains("status report not delivered"),
        "the retries are logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_404_triggers_a_resync_that_unregisters_the_removed_provider() {
    let kamailio = Kamailio::start().await;
    let api_key = key();
    let backend = Backend::start(&api_key).await;
    let reg = kamailio.addr();
    backend.set_providers(&[
        Provider::udp("p-keep", "kim", &kamailio.password("kim"), reg),
        // A 20 s grant: refreshed (and reported) every 10 s.
        Provider::udp("p-gone", "short-gil", &kamailio.password("short-gil"), reg),
    ]);
    let mut t = Trunkline::start(
        &["run"],
        &env(&backend, &api_key, &[("SYNC_INTERVAL", "1h")]),
    )
    .await;
    t.run_until(backend.wait_for_status("p-gone", "registered"))
        .await;
    t.run_until(backend.wait_for_status("p-keep", "registered"))
        .await;
    assert_eq!(kamailio.bindings_of("short-gil").await.len(), 1);
    let gets_before = provider_gets(&backend.history());
    // The backend deletes p-gone: its next report (after the refresh) gets 404.
    backend.set_providers(&[Provider::udp(
        "p-keep",
        "kim",
        &kamailio.password("kim"),
        reg,
    )]);
    t.run_until(backend.wait_for(
        "a 404 on p-gone's report, then a provider list fetch",
        |h| {
            let at = h.iter().position(|r| {
                r.method == "PATCH" && r.path.ends_with("/p-gone") && r.status == Some(404)
            })?;
            (provider_gets(&h[at..]) > 0 && provider_gets(h) > gets_before).then_some(())
        },
    ))
    .await;
    // The resync un-registers it (bounded poll: Kamailio has no event to await).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !kamailio.bindings_of("short-gil").await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "p-gone's binding was not removed after the resync"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        kamailio.bindings_of("kim").await.len(),
        1,
        "p-keep untouched"
    );
    let exited = t.terminate().await;
    assert_eq!(exited.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_applies_additions_removals_and_changes_only() {
    let kamailio = Kamailio::start().await;
    let api_key = key();
    let backend = Backend::start(&api_key).await;
    let reg = kamailio.addr();
    let same = Provider::udp("p-same", "sam", &kamailio.password("sam"), reg).expires_in(3600);
    backend.set_providers(&[
        same.clone(),
        Provider::udp("p-drop", "dot", &kamailio.password("dot"), reg),
        Provider::udp("p-edit", "eli", &kamailio.password("eli"), reg).expires_in(300),
    ]);
    let mut t = Trunkline::start(
        &["run"],
        &env(&backend, &api_key, &[("SYNC_INTERVAL", "1s")]),
    )
    .await;
    for id in ["p-same", "p-drop", "p-edit"] {
        t.run_until(backend.wait_for_status(id, "registered")).await;
    }
    let sam_registers = kamailio.register_count("sam").await;
    let patches_before = backend.history().len();
    backend.set_providers(&[
        same,
        Provider::udp("p-edit", "eli", &kamailio.password("eli"), reg).expires_in(900),
        Provider::udp("p-new", "neo", &kamailio.password("neo"), reg),
    ]);
    t.run_until(backend.wait_for_status("p-new", "registered"))
        .await;
    t.run_until(
        backend.wait_for("p-edit registered again after the change", |h| {
            h.iter()
                .skip(patches_before)
                .find(|r| {
                    r.is_accepted_patch_for("p-edit") && r.register_status() == Some("registered")
                })
                .cloned()
        }),
    )
    .await;
    // A few more syncs of the same list: nothing changes for anyone.
    let gets = provider_gets(&backend.history());
    t.run_until(backend.wait_for("three more provider list fetches", |h| {
        (provider_gets(h) >= gets + 3).then_some(())
    }))
    .await;
    assert_eq!(
        kamailio.register_count("sam").await,
        sam_registers,
        "an unchanged provider must not be re-registered by a sync"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !kamailio.bindings_of("dot").await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the removed provider is still bound"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let eli = kamailio.bindings_of("eli").await;
    assert_eq!(
        eli.len(),
        1,
        "the changed provider has exactly one binding: {eli:?}"
    );
    assert!(
        eli[0].expires.is_some_and(|e| e > 300),
        "re-registered with the new expiry: {eli:?}"
    );
    let exited = t.terminate().await;
    assert_eq!(exited.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_api_key_is_reported_clearly() {
    let api_key = key();
    let backend = Backend::start(&api_key).await;
    let mut t = Trunkline::start(&["run"], &env(&backend, "the-wrong-key-123", &[])).await;
    t.run_until(backend.wait_for("a rejected provider list fetch", |h| {
        h.iter().find(|r| r.status == Some(401)).cloned()
    }))
    .await;
    let exited = t.terminate().await;
    assert_eq!(exited.code(), Some(0));
    let rejected = exited.json_lines().into_iter().any(|l| {
        l["level"] == "error"
            && l["msg"]
                .as_str()
                .is_some_and(|m| m.contains("API key rejected"))
    });
    assert!(
        rejected,
        "an error line saying the API key was rejected:\n{}",
        exited.output()
    );
    exited.assert_no_secret(&[("the API key", "the-wrong-key-123")]);
}
