//! Transports against a real registrar (issue 10): the `trunkline` binary registers
//! over TCP with Kamailio, keeps exactly one binding per account, and when the
//! registrar restarts (its connection closes, its bindings are gone) registers again
//! on a new connection at once. CONTRACT.md §7.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use trunkline_tests::calls::{start_uas, Call};
use trunkline_tests::tls::TestCa;
use trunkline_tests::{Backend, Kamailio, KamailioOptions, Provider, RecordedRequest, Trunkline};

const ALICE: &str = "p-alice";
const BOB: &str = "p-bob";

fn registered_after(history: &[RecordedRequest], id: &str, after: usize) -> bool {
    history
        .iter()
        .skip(after)
        .any(|r| r.is_accepted_patch_for(id) && r.register_status() == Some("registered"))
}

/// Kamailio with `options`, and a backend listing `accounts` (provider id, user) at
/// it, each made what `over` makes it (`Provider::tcp`, `Provider::tls`).
async fn registrar_and_backend(
    options: KamailioOptions,
    accounts: &[(&str, &str)],
    over: fn(Provider) -> Provider,
) -> (Kamailio, Backend, String) {
    let kamailio = Kamailio::start_with(options).await;
    let api_key = format!("api-key-{}", trunkline_tests::random_hex(16));
    let backend = Backend::start(&api_key).await;
    let registrar = kamailio.addr();
    let providers: Vec<Provider> = accounts
        .iter()
        .map(|(id, user)| over(Provider::udp(id, user, &kamailio.password(user), registrar)))
        .collect();
    backend.set_providers(&providers);
    (kamailio, backend, api_key)
}

/// The `trunkline` binary against `backend`, with `extra` settings.
async fn trunkline_for(
    backend: &Backend,
    api_key: &str,
    extra: &[(&'static str, String)],
) -> Trunkline {
    let sip_port = trunkline_tests::net::free_udp_port();
    let mut env = trunkline_tests::trunkline::loopback_env(sip_port);
    env.extend([
        ("BACKEND_URL", backend.url()),
        ("API_KEY", api_key.to_owned()),
    ]);
    env.extend(extra.iter().cloned());
    Trunkline::start(&["run"], &env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_over_tcp_and_again_on_a_new_connection_after_the_registrar_restarts() {
    let options = KamailioOptions {
        tcp: true,
        ..KamailioOptions::default()
    };
    let accounts = [(ALICE, "alice"), (BOB, "bob")];
    let (mut kamailio, backend, api_key) =
        registrar_and_backend(options, &accounts, Provider::tcp).await;
    let registrar = kamailio.addr();
    let mut trunkline = trunkline_for(&backend, &api_key, &[]).await;

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

/// A CA of the test's own (files in `dir`), and Kamailio options listening on TLS
/// with a certificate for 127.0.0.1 it signed.
fn tls_options(dir: &std::path::Path) -> (TestCa, KamailioOptions) {
    let ca = TestCa::new(dir, "trunkline-test");
    let server = ca.issue(
        "registrar",
        std::net::Ipv4Addr::LOCALHOST.into(),
        "registrar.test",
    );
    let options = KamailioOptions {
        tls: Some((server.cert_file, server.key_file)),
        ..KamailioOptions::default()
    };
    (ca, options)
}

/// Kamailio listening on TLS ([`tls_options`]), and a backend with `alice` over TLS.
async fn tls_registrar(dir: &std::path::Path) -> (Kamailio, TestCa, Backend, String) {
    let (ca, options) = tls_options(dir);
    let (kamailio, backend, api_key) =
        registrar_and_backend(options, &[(ALICE, "alice")], Provider::tls).await;
    (kamailio, ca, backend, api_key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_over_tls_checking_the_registrars_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (kamailio, ca, backend, api_key) = tls_registrar(dir.path()).await;
    let ca_file = ("SIP_TLS_CA_FILE", ca.cert_file.display().to_string());
    let mut trunkline = trunkline_for(&backend, &api_key, &[ca_file]).await;
    trunkline
        .run_until(backend.wait_for_status(ALICE, "registered"))
        .await;
    let bindings = kamailio.bindings_of("alice").await;
    assert_eq!(bindings.len(), 1, "{bindings:?}");
    assert!(
        bindings
            .iter()
            .all(|b| b.contact.contains(";transport=tls")),
        "{bindings:?}"
    );
    let exited = trunkline.terminate().await;
    assert_eq!(exited.code(), Some(0), "{}", exited.output());
    assert_eq!(kamailio.binding_count().await, 0, "un-REGISTERed over TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registrar_certificate_from_an_unknown_ca_fails_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (kamailio, _ca, backend, api_key) = tls_registrar(dir.path()).await;
    // Trusted: another CA, not the one that signed the registrar's certificate.
    let other = TestCa::new(dir.path(), "someone-else");
    let ca_file = ("SIP_TLS_CA_FILE", other.cert_file.display().to_string());
    let mut trunkline = trunkline_for(&backend, &api_key, &[ca_file]).await;
    let failed = trunkline
        .run_until(backend.wait_for_status(ALICE, "failed"))
        .await;
    let error = failed.register_error().unwrap_or_default().to_owned();
    assert!(
        error.contains("certificate") && error.contains("TLS handshake"),
        "the error names the certificate problem: {error}"
    );
    assert_eq!(kamailio.binding_count().await, 0);
    let exited = trunkline.terminate().await;
    assert_eq!(exited.code(), Some(0), "{}", exited.output());
}

/// RFC 5626/5923: a provider reaches a trunk registered over TLS on the connection the
/// REGISTER opened (our Via's `;alias`), here with no TLS listener of ours at all.
/// Kamailio is the provider's registrar and proxy: a SIPp caller sends it the INVITE
/// for the account, it relays it over that connection; trunkline bridges it to a SIPp
/// destination over UDP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_comes_in_on_the_tls_connection_our_register_opened() {
    const DID: &str = "+5511999990077";
    let dir = tempfile::tempdir().unwrap();
    let (ca, tls) = tls_options(dir.path());
    let options = KamailioOptions { proxy: true, ..tls };
    let (kamailio, backend, api_key) =
        registrar_and_backend(options, &[(ALICE, "alice")], Provider::tls).await;
    let uas = start_uas("call-uas.xml", 1, &[]).await;
    backend.set_destination(DID, &format!("sip:{DID}@{}", uas.addr()));
    let ca_file = ("SIP_TLS_CA_FILE", ca.cert_file.display().to_string());
    let mut trunkline = trunkline_for(&backend, &api_key, &[ca_file]).await;
    trunkline
        .run_until(backend.wait_for_status(ALICE, "registered"))
        .await;

    let caller = trunkline
        .run_until(
            Call::new("call-uac.xml", DID)
                .to_contact("alice", "")
                .run(kamailio.addr()),
        )
        .await;
    caller.assert_succeeded(1);
    let uas = trunkline.run_until(uas.wait()).await;
    uas.assert_succeeded(1);
    let seen = uas.log.call(1);
    assert_eq!(seen.field("x_provider_id"), ALICE, "{seen:?}");
    assert_eq!(seen.field("ruri_user"), DID, "{seen:?}");
    // Kamailio relayed it to the TLS binding (trunkline has no TLS listener: only the
    // connection it opened could carry it).
    let log = kamailio.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("INVITE") && l.contains(";transport=tls")),
        "Kamailio's log: {log}"
    );
    let exited = trunkline.terminate().await;
    assert_eq!(exited.code(), Some(0), "{}", exited.output());
}

/// The value of `name` (with `labels`, as written) on trunkline's /metrics page.
fn metric(page: &str, sample: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or(0)
}

/// RFC 5626 §4.4.1 against Kamailio: our TCP connection is pinged every
/// SIP_KEEPALIVE_INTERVAL, Kamailio answers each ping, and the connection stays (no
/// flow failure, no second connection) past several 10 s pong deadlines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_pings_on_a_tcp_flow_are_answered_and_it_stays_up() {
    let options = KamailioOptions {
        tcp: true,
        ..KamailioOptions::default()
    };
    let (_kamailio, backend, api_key) =
        registrar_and_backend(options, &[(ALICE, "alice")], Provider::tcp).await;
    let admin_port = trunkline_tests::net::free_tcp_port();
    let extra = [
        ("SIP_KEEPALIVE_INTERVAL", "1s".to_owned()),
        ("ADMIN_LISTEN", format!("127.0.0.1:{admin_port}")),
    ];
    let mut trunkline = trunkline_for(&backend, &api_key, &extra).await;
    trunkline
        .run_until(backend.wait_for_status(ALICE, "registered"))
        .await;
    let url = format!("http://127.0.0.1:{admin_port}/metrics");
    let http = reqwest::Client::new();
    // Polled (bounded): no event tells the test that a ping went out.
    let deadline = tokio::time::Instant::now() + trunkline_tests::WAIT_LIMIT;
    let page = loop {
        let page = trunkline
            .run_until(async { http.get(&url).send().await.unwrap().text().await.unwrap() })
            .await;
        // 15 pings at 1 s: past the pong deadline (10 s) of the first ones.
        if metric(&page, "trunkline_sip_keepalives_sent_total") >= 15 {
            break page;
        }
        assert!(tokio::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    let event = |e: &str| {
        metric(
            &page,
            &format!("trunkline_sip_connections_total{{event=\"{e}\"}}"),
        )
    };
    assert_eq!(
        event("closed_no_pong"),
        0,
        "Kamailio answered every ping: {page}"
    );
    assert_eq!(event("opened"), 1, "one connection all along: {page}");
    assert!(
        metric(&page, "trunkline_sip_keepalives_total") >= 14,
        "the pongs: {page}"
    );
    let exited = trunkline.terminate().await;
    assert_eq!(exited.code(), Some(0), "{}", exited.output());
}
