//! End to end: the `trunkline` binary registers the backend's providers with a real
//! Kamailio, reports every status to a real HTTP backend, refreshes with one Call-ID,
//! and un-registers on SIGTERM. CONTRACT.md §1, §3 and §5.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use trunkline_tests::{Backend, Kamailio, Provider, RecordedRequest, Trunkline};

const ALICE: &str = "p-alice";
const BOB: &str = "p-bob";
const CAROL: &str = "p-carol";
const DAVE: &str = "p-dave";
const MALLORY: &str = "p-mallory";

/// Refreshes of the 20 s grant that must be seen after the initial registration.
const SHORT_REFRESHES: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_refreshes_reports_and_unregisters_at_shutdown() {
    let kamailio = Kamailio::start().await;
    let api_key = format!("api-key-{}", trunkline_tests::random_hex(16));
    let backend = Backend::start(&api_key).await;
    let registrar = kamailio.addr();

    let alice_pw = kamailio.password("alice");
    let bob_pw = format!("wrong-{}", trunkline_tests::random_hex(12));
    let carol_pw = kamailio.password("minexp-carol");
    let dave_pw = kamailio.password("short-dave");
    let mallory_pw = kamailio.password("mallory");
    // CR LF in a field that goes into a SIP header: header injection if sent.
    let mallory_user = "mallory\r\nX-Injected: 1";
    backend.set_providers(&[
        Provider::udp(ALICE, "alice", &alice_pw, registrar),
        Provider::udp(BOB, "bob", &bob_pw, registrar),
        Provider::udp(CAROL, "minexp-carol", &carol_pw, registrar).expires_in(300),
        Provider::udp(DAVE, "short-dave", &dave_pw, registrar).expires_in(3600),
        Provider::udp(MALLORY, mallory_user, &mallory_pw, registrar),
    ]);

    let sip_port = trunkline_tests::net::free_udp_port();
    let mut env = trunkline_tests::trunkline::loopback_env(sip_port);
    env.extend([
        ("BACKEND_URL", backend.url()),
        ("API_KEY", api_key.clone()),
        ("SHUTDOWN_GRACE", "5s".to_owned()),
    ]);
    let mut trunkline = Trunkline::start(&["run"], &env).await;

    // Valid account: registered, reported with a timestamp, bound at the registrar.
    let alice = trunkline
        .run_until(backend.wait_for_status(ALICE, "registered"))
        .await;
    assert!(
        alice.last_register_at_time().is_some(),
        "registered PATCH for {ALICE} without lastRegisterAt: {alice}"
    );
    let alice_bindings = kamailio.bindings_of("alice").await;
    assert_eq!(
        alice_bindings.len(),
        1,
        "alice should have exactly one binding after registering: {alice_bindings:?}"
    );

    // Wrong password: a failure that says it is about authentication.
    let bob = trunkline
        .run_until(backend.wait_for_status(BOB, "failed"))
        .await;
    let bob_error = bob.register_error().unwrap_or_default().to_lowercase();
    assert!(
        bob_error.contains("auth"),
        "{BOB}'s registerError should mention authentication: {bob}"
    );
    assert!(
        kamailio.bindings_of("bob").await.is_empty(),
        "bob must not be bound with a wrong password"
    );

    // 423 Interval Too Brief: retried with Min-Expires (600) instead of the 300 asked.
    trunkline
        .run_until(backend.wait_for_status(CAROL, "registered"))
        .await;
    let carol_bindings = kamailio.bindings_of("minexp-carol").await;
    let [carol_binding] = carol_bindings.as_slice() else {
        panic!("minexp-carol should have exactly one binding: {carol_bindings:?}");
    };
    assert!(
        carol_binding.expires.is_some_and(|left| left > 300),
        "minexp-carol's binding should run for the 600 s Min-Expires, not the 300 s asked: {carol_binding:?}"
    );

    // Invalid entry: reported as failed naming the field, never sent to the registrar.
    let mallory = trunkline
        .run_until(backend.wait_for_status(MALLORY, "failed"))
        .await;
    assert!(
        mallory
            .register_error()
            .unwrap_or_default()
            .contains("username"),
        "{MALLORY}'s registerError should name the invalid field `username`: {mallory}"
    );

    // Short grant (20 s): refreshed at least twice, always replacing the one binding.
    let mut dave_call_id: Option<String> = None;
    let mut last_cseq = 0;
    let mut last_at = None;
    for seen in 1..=SHORT_REFRESHES + 1 {
        let registered = trunkline
            .run_until(backend.wait_for(
                &format!("{seen} registered PATCHes for {DAVE}"),
                |history| nth_registered(history, DAVE, seen),
            ))
            .await;
        let at = registered
            .last_register_at_time()
            .unwrap_or_else(|| panic!("registered PATCH without lastRegisterAt: {registered}"));
        if let Some(previous) = last_at {
            assert!(
                at > previous,
                "lastRegisterAt should advance with each refresh: {registered}"
            );
        }
        last_at = Some(at);

        let bindings = kamailio.bindings_of("short-dave").await;
        let [binding] = bindings.as_slice() else {
            panic!("after registered PATCH #{seen} short-dave should have exactly one binding: {bindings:?}");
        };
        assert!(
            binding.expires.is_some_and(|left| left <= 20),
            "short-dave's binding should be the 20 s grant: {binding:?}"
        );
        match &dave_call_id {
            None => dave_call_id = Some(binding.call_id.clone()),
            Some(first) => assert_eq!(
                &binding.call_id, first,
                "refreshes of short-dave's registration must keep its Call-ID: {binding:?}"
            ),
        }
        assert!(
            binding.cseq > last_cseq,
            "each refresh must use a higher CSeq ({} after {last_cseq}): {binding:?}",
            binding.cseq
        );
        last_cseq = binding.cseq;
    }

    // Only the accounts of valid entries ever reached Kamailio.
    let counts = kamailio.register_counts().await;
    assert!(
        counts.keys().all(|user| !user.starts_with("mallory")),
        "a REGISTER for the invalid username reached Kamailio: {counts:?}"
    );
    let expected_users: BTreeSet<&str> = ["alice", "bob", "minexp-carol", "short-dave"].into();
    let seen_users: BTreeSet<&str> = counts.keys().map(String::as_str).collect();
    assert_eq!(
        seen_users, expected_users,
        "REGISTERs reached Kamailio for these users"
    );

    // SIGTERM: un-REGISTER everything, report the final status, exit 0.
    let before_signal = backend.history().len();
    let exited = trunkline.terminate().await;
    assert_eq!(
        exited.code(),
        Some(0),
        "trunkline should exit 0 after SIGTERM, exited {}",
        exited.status
    );
    let left = kamailio.ul_dump().await;
    assert!(
        left.is_empty(),
        "the location table should be empty after shutdown: {left:?}"
    );
    let history = backend.history();
    for id in [ALICE, CAROL, DAVE] {
        let last = history
            .iter()
            .skip(before_signal)
            .rfind(|r| r.is_accepted_patch_for(id))
            .unwrap_or_else(|| {
                panic!(
                    "no PATCH for {id} after SIGTERM; backend history:\n{}",
                    backend.history_text()
                )
            });
        let error = last.register_error().unwrap_or_default().to_lowercase();
        assert!(
            last.register_status() == Some("pending")
                && (error.contains("unregister")
                    || error.contains("un-register")
                    || error.contains("shut")),
            "final PATCH for {id} should be pending with an error saying it was unregistered at shutdown: {last}"
        );
    }

    // The backend saw only contract-conforming requests, all with the right key.
    assert_eq!(
        backend.contract_violations(),
        Vec::<String>::new(),
        "requests outside CONTRACT.md §3"
    );
    assert!(
        history
            .iter()
            .all(|r| r.api_key.as_deref() == Some(api_key.as_str())),
        "every backend request must carry x-api-key"
    );

    exited.assert_no_secret(&[
        ("alice's password", &alice_pw),
        ("bob's password", &bob_pw),
        ("minexp-carol's password", &carol_pw),
        ("short-dave's password", &dave_pw),
        ("mallory's password", &mallory_pw),
        ("the API key", &api_key),
    ]);
}

/// The `n`th (from 1) accepted `registered` PATCH for `id`, if it has arrived.
fn nth_registered(history: &[RecordedRequest], id: &str, n: usize) -> Option<RecordedRequest> {
    history
        .iter()
        .filter(|r| r.is_accepted_patch_for(id) && r.register_status() == Some("registered"))
        .nth(n.checked_sub(1)?)
        .cloned()
}
