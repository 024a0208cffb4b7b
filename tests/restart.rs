//! A restart after SIGKILL refreshes the registrar's existing bindings instead of adding
//! second ones: the binding identity (Contact token, Call-ID, From tag, CSeq reservation)
//! is persisted in the state file and restored at start.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Duration;
use trunkline_tests::{Backend, Kamailio, Provider, Trunkline};

fn env(backend: &Backend, api_key: &str, sip_port: u16) -> Vec<(&'static str, String)> {
    let mut env = trunkline_tests::trunkline::loopback_env(sip_port);
    env.extend([
        ("BACKEND_URL", backend.url()),
        ("API_KEY", api_key.to_owned()),
        ("STATE_FILE", "state.json".to_owned()),
    ]);
    env
}

/// Waits until the state file holds a binding identity for every id (the identity is
/// written right after the first REGISTER; polled with a bound, there is no event).
async fn wait_for_state(path: &std::path::Path, ids: &[&str]) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(bytes) = std::fs::read(path) {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                if ids.iter().all(|id| v["bindings"].get(id).is_some()) {
                    return v;
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no binding identity for {ids:?} in {} within 30 s",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_and_restart_keep_one_binding_per_account() {
    let kamailio = Kamailio::start().await;
    let api_key = format!("api-key-{}", trunkline_tests::random_hex(16));
    let backend = Backend::start(&api_key).await;
    let registrar = kamailio.addr();
    backend.set_providers(&[
        Provider::udp("p-ann", "ann", &kamailio.password("ann"), registrar),
        Provider::udp("p-ben", "ben", &kamailio.password("ben"), registrar),
    ]);
    let workdir = tempfile::tempdir().unwrap();
    let sip_port = trunkline_tests::net::free_udp_port();

    let first =
        Trunkline::start_in(workdir.path(), &["run"], &env(&backend, &api_key, sip_port)).await;
    let first = {
        let mut first = first;
        first
            .run_until(backend.wait_for_status("p-ann", "registered"))
            .await;
        first
            .run_until(backend.wait_for_status("p-ben", "registered"))
            .await;
        first
    };
    let state = wait_for_state(&workdir.path().join("state.json"), &["p-ann", "p-ben"]).await;
    let mut before = Vec::new();
    for user in ["ann", "ben"] {
        let bindings = kamailio.bindings_of(user).await;
        assert_eq!(bindings.len(), 1, "{user} before the kill: {bindings:?}");
        before.push((user, bindings));
    }
    // SIGKILL: no un-REGISTER, the bindings stay at the registrar.
    drop(first);
    let patches_before = backend.history().len();

    let mut second =
        Trunkline::start_in(workdir.path(), &["run"], &env(&backend, &api_key, sip_port)).await;
    for id in ["p-ann", "p-ben"] {
        second
            .run_until(backend.wait_for(
                &format!("a registered PATCH for {id} after the restart"),
                |h| {
                    h.iter()
                        .skip(patches_before)
                        .find(|r| {
                            r.is_accepted_patch_for(id) && r.register_status() == Some("registered")
                        })
                        .cloned()
                },
            ))
            .await;
    }
    for (user, before) in before {
        let after = kamailio.bindings_of(user).await;
        assert_eq!(
            after.len(),
            1,
            "{user} should still have exactly one binding after the restart: {after:?}"
        );
        let b = &after[0];
        let old = &before[0];
        assert_eq!(
            b.call_id, old.call_id,
            "the restart should reuse {user}'s Call-ID"
        );
        assert!(
            b.cseq > old.cseq,
            "the restart should use a higher CSeq for {user}"
        );
    }
    assert!(state["bindings"]["p-ann"]["nextCseq"].as_u64().unwrap() > 0);
    let exited = second.terminate().await;
    assert_eq!(exited.code(), Some(0));
    assert!(kamailio.ul_dump().await.is_empty());
}
