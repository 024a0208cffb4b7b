//! Transports against a real registrar (issue 10): the `trunkline` binary registers
//! over TCP with Kamailio, keeps exactly one binding per account, and when the
//! registrar restarts (its connection closes, its bindings are gone) registers again
//! on a new connection at once. CONTRACT.md §7.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use trunkline_tests::{Backend, Kamailio, KamailioOptions, Provider, RecordedRequest, Trunkline};

const ALICE: &str = "p-alice";
const BOB: &str = "p-bob";

fn registered_after(history: &[RecordedRequest], id: &str, after: usize) -> bool {
    history
        .iter()
        .skip(after)
        .any(|r| r.is_accepted_patch_for(id) && r.register_status() == Some("registered"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_over_tcp_and_again_on_a_new_connection_after_the_registrar_restarts() {
    let mut kamailio = Kamailio::start_with(KamailioOptions {
        tcp: true,
        ..KamailioOptions::default()
    })
    .await;
    let api_key = format!("api-key-{}", trunkline_tests::random_hex(16));
    let backend = Backend::start(&api_key).await;
    let registrar = kamailio.addr();
    backend.set_providers(&[
        Provider::udp(ALICE, "alice", &kamailio.password("alice"), registrar).tcp(),
        Provider::udp(BOB, "bob", &kamailio.password("bob"), registrar).tcp(),
    ]);
    let sip_port = trunkline_tests::net::free_udp_port();
    let mut env = trunkline_tests::trunkline::loopback_env(sip_port);
    env.extend([("BACKEND_URL", backend.url()), ("API_KEY", api_key.clone())]);
    let mut trunkline = Trunkline::start(&["run"], &env).await;

    for id in [ALICE, BOB] {
        trunkline
            .run_until(backend.wait_for_status(id, "registered"))
            .await;
    }
    for user in ["alice", "bob"] {
        let bindings = kamailio.bindings_of(user).await;
        assert_eq!(bindings.len(), 1, "{user}: {bindings:?}");
        assert!(
            bindings
                .iter()
                .all(|b| b.contact.contains(";transport=tcp")),
            "{user}'s Contact says TCP: {bindings:?}"
        );
    }
    // Both registrations on one connection: Kamailio holds one TCP connection.
    let tcp = kamailio.kamcmd(&["core.tcp_info"]).await;
    assert!(
        tcp.lines()
            .any(|l| l.trim().starts_with("opened_connections:") && l.trim().ends_with(" 1")),
        "Kamailio's TCP connections: {tcp}"
    );

    // The registrar restarts: its bindings are gone with it, our connection closes.
    let before = backend.history().len();
    kamailio.restart().await;
    // Reported at once with the reason: pending while it registers again, or failed
    // (with its backoff) when the binding was made less than 32 s before, as here: a
    // connection that closes right after each REGISTER must not make us loop.
    let pending = trunkline
        .run_until(
            backend.wait_for("a PATCH for p-alice naming the closed connection", |h| {
                h.iter()
                    .skip(before)
                    .find(|r| {
                        r.is_accepted_patch_for(ALICE)
                            && matches!(r.register_status(), Some("pending" | "failed"))
                            && r.register_error().is_some_and(|e| e.contains("closed"))
                    })
                    .cloned()
            }),
        )
        .await;
    assert!(
        pending
            .register_error()
            .unwrap()
            .contains(&registrar.to_string()),
        "{pending}"
    );
    for id in [ALICE, BOB] {
        trunkline
            .run_until(backend.wait_for(&format!("{id} registered again"), |h| {
                registered_after(h, id, before).then_some(())
            }))
            .await;
    }
    for user in ["alice", "bob"] {
        let bindings = kamailio.bindings_of(user).await;
        assert_eq!(bindings.len(), 1, "{user} after the restart: {bindings:?}");
    }
    let exited = trunkline.terminate().await;
    assert_eq!(exited.code(), Some(0), "{}", exited.output());
    // The un-REGISTERs went over TCP too: nothing is left bound.
    assert_eq!(
        kamailio.binding_count().await,
        0,
        "{:?}",
        kamailio.ul_dump().await
    );
}
