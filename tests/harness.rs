//! Tests of the harness itself, so that a failing end-to-end test points at
//! trunkline and not at its peers: the Kamailio config behaves as documented
//! (checked with SIPp, a third-party UA), the backend implements CONTRACT.md §3
//! with working fault injection, and each call scenario of `tests/sipp/` works
//! against its SIPp counterpart directly (provider UAC to destination UAS, no
//! trunkline; where trunkline has a part to play, a SIPp UAC plays it). The DNS
//! server of the RFC 3263 tests answers the records it is given, and a paused
//! Kamailio answers nothing until resumed, with its bindings intact.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};
use trunkline_tests::calls::{
    start_uas, trunkline_headers, Call, DigestHeader, SippRun, DEFAULT_CALLER, REINVITE_FIELDS,
};
use trunkline_tests::dns::{Transport, DEFAULT_TTL};
use trunkline_tests::sipp::run_scenario;
use trunkline_tests::{
    Backend, DnsServer, Endpoint, Fault, Kamailio, KamailioOptions, Provider, WAIT_LIMIT,
};

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
        ..KamailioOptions::default()
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

/// A REGISTER without credentials (answered 401 by the registrar) for `user`, from
/// `from`, identified by `call_id`.
fn raw_register(kamailio: &Kamailio, from: SocketAddr, user: &str, call_id: &str) -> Vec<u8> {
    let to = kamailio.addr();
    let realm = kamailio.realm();
    format!(
        "REGISTER sip:{to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bK-{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@{realm}>;tag={call_id}\r\n\
         To: <sip:{user}@{realm}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:{user}@{from}>\r\n\
         Expires: 300\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The next datagram on `socket`, as text; fails after [`WAIT_LIMIT`].
async fn next_reply(socket: &tokio::net::UdpSocket, waiting_for: &str) -> String {
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(WAIT_LIMIT, socket.recv(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("no answer to {waiting_for} within {WAIT_LIMIT:?}"))
        .expect("receiving from the registrar");
    String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_paused_answers_nothing_until_resumed_and_keeps_its_bindings() {
    let mut kamailio = Kamailio::start().await;
    run_scenario(
        kamailio.addr(),
        "register.xml",
        "alice",
        &kamailio.password("alice"),
        &["-key", "expires", "300", "-set", "granted_expected", "300"],
    )
    .await
    .unwrap_or_else(|e| panic!("registering alice: {e}"));
    assert_eq!(kamailio.bindings_of("alice").await.len(), 1);

    let socket = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    socket.connect(kamailio.addr()).await.unwrap();
    let from = socket.local_addr().unwrap();
    socket
        .send(&raw_register(&kamailio, from, "pauser", "before-pause"))
        .await
        .unwrap();
    let reply = next_reply(&socket, "the REGISTER before the pause").await;
    assert!(reply.starts_with("SIP/2.0 401 "), "{reply}");

    kamailio.pause().await;
    assert!(kamailio.is_paused());
    assert_eq!(kamailio.udp_rx_queue(), 0, "nothing waits before we send");
    socket
        .send(&raw_register(&kamailio, from, "pauser", "while-paused"))
        .await
        .unwrap();
    // The REGISTER arriving in the stopped registrar's socket is the event; the
    // kernel shows it in nothing a test can await, so poll (bounded).
    let deadline = Instant::now() + WAIT_LIMIT;
    while kamailio.udp_rx_queue() == 0 {
        assert!(
            Instant::now() < deadline,
            "the REGISTER never reached the paused registrar's socket"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // It waits there unread, and every Kamailio process is stopped (pause()
    // returned), so nothing can have answered it.
    let mut buf = [0u8; 2048];
    let early = socket.try_recv(&mut buf);
    assert!(
        matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a paused registrar answered: {early:?}"
    );

    kamailio.resume().await;
    assert!(!kamailio.is_paused());
    // The queued REGISTER is processed on resume and answered.
    let reply = next_reply(&socket, "the REGISTER sent while paused").await;
    assert!(reply.starts_with("SIP/2.0 401 "), "{reply}");
    assert!(reply.contains("Call-ID: while-paused\r\n"), "{reply}");
    assert_eq!(kamailio.register_count("pauser").await, 2);
    // Its memory survived: alice is still bound.
    let bindings = kamailio.bindings_of("alice").await;
    assert_eq!(bindings.len(), 1, "{bindings:?}");

    // Dropping a paused Kamailio still stops it (SIGTERM, then SIGCONT).
    kamailio.pause().await;
    drop(kamailio);
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

// ---- The call scenarios, SIPp against SIPp ----

const DID: &str = "+5511999990001";

/// What trunkline adds, played by the UAC so that call-uas.xml's checks pass.
fn stand_in_headers(call_id: &str) -> String {
    trunkline_headers(
        "p-stand-in",
        "Stand-in Provider",
        DID,
        DEFAULT_CALLER,
        call_id,
    )
}

/// Runs `uac` against a fresh `uas_scenario` SIPp (with `uas_args`) and requires both
/// to succeed with one call each.
async fn run_pair(uas_scenario: &str, uas_args: &[&str], uac: Call) -> (SippRun, SippRun) {
    let uas = start_uas(uas_scenario, 1, uas_args).await;
    let uac = uac.run(uas.addr()).await;
    uac.assert_succeeded(1);
    let uas = uas.wait().await;
    uas.assert_succeeded(1);
    (uac, uas)
}

/// The SDP offer arrived as sent, and the answer came back as the UAS sent it.
fn assert_sdp_passed(uac: &SippRun, uas: &SippRun, call: u32) {
    let (sent, seen) = (uac.log.call(call), uas.log.call(call));
    for key in ["offer_s", "offer_o", "offer_m"] {
        assert_eq!(seen.field(key), sent.field(key), "{key} of call {call}");
    }
    assert_eq!(
        sent.field("answer_s"),
        seen.field("answer_s"),
        "call {call}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_scenarios_answered_call_caller_hangs_up() {
    let uas = start_uas("call-uas.xml", 1, &[]).await;
    let uac = Call::new("call-uac.xml", DID)
        .custom("hello custom")
        .headers(&stand_in_headers("provider-leg-call-id"))
        .run(uas.addr())
        .await;
    uac.assert_succeeded(1);
    let uas = uas.wait().await;
    uas.assert_succeeded(1);

    let (sent, seen) = (uac.log.call(1), uas.log.call(1));
    assert_eq!(seen.field("ruri_user"), DID);
    assert_eq!(seen.field("to_user"), DID);
    assert_eq!(seen.field("from_user"), DEFAULT_CALLER);
    assert_eq!(seen.field("call_id"), sent.field("call_id"));
    assert_eq!(seen.field("x_did"), DID);
    assert_eq!(seen.field("x_caller"), DEFAULT_CALLER);
    assert_eq!(seen.field("x_provider_id"), "p-stand-in");
    assert_eq!(seen.field("x_provider_name"), "Stand-in Provider");
    assert_eq!(seen.field("x_call_id"), "provider-leg-call-id");
    assert_eq!(seen.field("x_custom"), "hello custom");
    assert!(seen.field("pai").contains(DEFAULT_CALLER), "{seen:?}");
    assert_eq!(seen.field("offer_c"), "IN IP4 127.0.0.1");
    assert_sdp_passed(&uac, &uas, 1);
    assert!(seen.has("ack") && seen.has("bye") && sent.has("bye_ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_scenarios_destination_fails_an_invite_without_trunkline_headers() {
    let uas = start_uas("call-uas.xml", 1, &[]).await;
    // SIPp marks the call failed on a check_it miss and plays the rest of the
    // scenario, so the caller's side may well succeed: only the UAS's verdict counts.
    let _uac = Call::new("call-uac.xml", DID).run(uas.addr()).await;
    let uas = uas.wait().await;
    assert_eq!(
        (uas.status.code(), uas.successful, uas.failed),
        (Some(1), 0, 1),
        "{}",
        uas.diagnostics()
    );
    // The actions after the failed check did not run.
    assert_eq!(uas.log.count("invite"), 0, "{}", uas.diagnostics());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_scenarios_to_a_contact_keep_the_did_in_to() {
    let uas = start_uas("call-uas.xml", 1, &[]).await;
    let uac = Call::new("call-uac.xml", DID)
        .to_contact("trunk-account", ";line=abc123")
        .headers(&stand_in_headers("x"))
        .run(uas.addr())
        .await;
    uac.assert_succeeded(1);
    let uas = uas.wait().await;
    uas.assert_succeeded(1);
    let seen = uas.log.call(1);
    assert_eq!(seen.field("ruri_user"), "trunk-account");
    assert!(seen.field("ruri").ends_with(";line=abc123"), "{seen:?}");
    assert_eq!(seen.field("to_user"), DID);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_scenarios_callee_hangs_up() {
    let (uac, uas) = run_pair(
        "call-uas-hangup.xml",
        &["-d", "200"],
        Call::new("call-uac-wait-bye.xml", DID),
    )
    .await;
    assert!(uac.log.call(1).has("bye"));
    assert!(uas.log.call(1).has("bye_ok"));
    assert_eq!(uas.log.call(1).field("ruri_user"), DID);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_scenarios_cancel_while_ringing() {
    let (uac, uas) = run_pair(
        "call-uas-ring.xml",
        &[],
        Call::new("call-uac-cancel.xml", DID),
    )
    .await;
    let (sent, seen) = (uac.log.call(1), uas.log.call(1));
    assert!(sent.has("ringing") && sent.has("cancel_ok") && sent.has("terminated"));
    assert!(seen.has("cancel") && seen.has("ack"));
    assert_eq!(seen.field("cancel_branch"), seen.field("branch"));
    assert_eq!(seen.field("ack_branch"), seen.field("branch"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_scenarios_expected_status_passes_and_another_fails() {
    let uas = start_uas("call-uas-busy.xml", 1, &[]).await;
    let uac = Call::new("call-uac-expect.xml", DID)
        .expect_status(486)
        .run(uas.addr())
        .await;
    uac.assert_succeeded(1);
    assert_eq!(uac.log.call(1).field("status"), "486");
    assert_eq!(uac.log.call(1).field("retry_after"), "");
    let uas = uas.wait().await;
    uas.assert_succeeded(1);
    let seen = uas.log.call(1);
    assert_eq!(seen.field("ack_branch"), seen.field("branch"));

    // Expecting another status: the call fails, saying what it got.
    let uas = start_uas("call-uas-busy.xml", 1, &[]).await;
    let uac = Call::new("call-uac-expect.xml", DID)
        .expect_status(503)
        .run(uas.addr())
        .await;
    assert_eq!(
        (uac.successful, uac.failed),
        (0, 1),
        "{}",
        uac.diagnostics()
    );
    assert_eq!(uac.log.call(1).field("status"), "486");
    uas.wait().await.assert_succeeded(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_scenarios_digest_challenge_and_answer() {
    let password = trunkline_tests::random_hex(12);
    let uac = Call::new("call-uac-auth.xml", DID).args(&["-au", "lk-user", "-ap", &password]);
    let (uac, uas) = run_pair("call-uas-auth.xml", &[], uac).await;
    let seen = uas.log.call(1);
    assert!(seen.has("ack_407") && seen.has("invite_2") && seen.has("bye"));
    assert_eq!(seen.field("method_2"), "INVITE");
    let cseq = |key| seen.field(key).parse::<u32>().unwrap();
    assert!(cseq("cseq_2") > cseq("cseq"), "{seen:?}");
    let header = DigestHeader::parse(seen.field("proxy_authorization")).unwrap();
    assert_eq!(header.param("username"), Some("lk-user"));
    assert_eq!(header.param("realm"), Some("LiveKit"));
    assert_eq!(header.param("nonce"), Some(seen.field("nonce")));
    assert!(header.verify("INVITE", &password), "{header:?}");
    assert!(!header.verify("INVITE", "not-the-password"));
    assert_eq!(uac.log.call(1).field("answer_s"), seen.field("answer_s"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_scenarios_held_call_ends_when_poked() {
    let mut uas = start_uas("call-uas.xml", 1, &[]).await;
    let uac = Call::new("call-uac-hold.xml", DID)
        .headers(&stand_in_headers("x"))
        .start(uas.addr())
        .await;
    uas.wait_for_log("the ACK", |log| log.count("ack") == 1)
        .await;
    assert_eq!(uas.log().count("bye"), 0, "held until poked");
    uac.poke(1);
    let uac = uac.wait().await;
    uac.assert_succeeded(1);
    assert!(uac.log.call(1).has("poked"));
    uas.wait().await.assert_succeeded(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_scenarios_a_hundred_calls_at_a_steady_rate() {
    let uas = start_uas("call-uas.xml", 100, &[]).await;
    let uac = Call::new("call-uac.xml", DID)
        .headers(&stand_in_headers("x"))
        .calls(100, 50)
        .hold_ms(100)
        .run(uas.addr())
        .await;
    uac.assert_succeeded(100);
    let uas = uas.wait().await;
    uas.assert_succeeded(100);
    assert_eq!(uas.log.count("bye"), 100);
    let ids: std::collections::BTreeSet<&str> =
        uas.log.calls().map(|c| c.field("call_id")).collect();
    assert_eq!(ids.len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_scenarios_hold_and_resume_reinvites() {
    let (uac, uas) = run_pair(
        "call-uas-reinvite.xml",
        &[],
        Call::new("call-uac-reinvite.xml", DID),
    )
    .await;
    let (sent, seen) = (uac.log.call(1), uas.log.call(1));
    for key in REINVITE_FIELDS {
        assert_eq!(seen.field(key), sent.field(key), "{key}");
    }
    assert_eq!(seen.field("hold_direction"), "sendonly");
    assert_eq!(seen.field("hold_answer_direction"), "recvonly");
    assert_eq!(seen.field("resume_direction"), "sendrecv");
    assert_eq!(
        (seen.field("hold_cseq"), seen.field("resume_cseq")),
        ("2", "3")
    );
    assert!(seen.has("hold_ack") && seen.has("resume_ack") && seen.has("bye"));
    assert!(sent.has("bye_ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_scenarios_refer_from_the_destination() {
    let (uac, uas) = run_pair(
        "call-uas-refer.xml",
        &["-d", "200"],
        Call::new("call-uac-refer.xml", DID),
    )
    .await;
    let (caller, callee) = (uac.log.call(1), uas.log.call(1));
    assert!(callee
        .field("refer_to")
        .starts_with("<sip:+5511977776666@127.0.0.1;xfer=e2e-"));
    assert_eq!(caller.field("refer_to"), callee.field("refer_to"));
    assert_eq!(caller.field("referred_by"), callee.field("referred_by"));
    assert!(caller.has("accepted") && callee.has("accepted"));
    assert!(caller.has("bye") && callee.has("bye_ok"));
}

// ---- The DNS server of the RFC 3263 tests (dnsmasq) ----

/// (priority, weight, port, target, TTL) of each SRV answer, sorted: dnsmasq rotates
/// the order of SRV records from one answer to the next.
fn srv_answers(message: &Message) -> Vec<(u16, u16, u16, String, u32)> {
    let mut srv: Vec<_> = message
        .answers
        .iter()
        .map(|record| match &record.data {
            RData::SRV(srv) => (
                srv.priority,
                srv.weight,
                srv.port,
                srv.target.to_ascii(),
                record.ttl,
            ),
            other => panic!("not an SRV answer: {other:?} in {message:?}"),
        })
        .collect();
    srv.sort();
    srv
}

/// (name, address, TTL) of each A or AAAA record of `records`, in order.
fn addresses(records: &[Record]) -> Vec<(String, IpAddr, u32)> {
    records
        .iter()
        .filter_map(|record| {
            let ip = match &record.data {
                RData::A(a) => IpAddr::V4(a.0),
                RData::AAAA(aaaa) => IpAddr::V6(aaaa.0),
                _ => return None,
            };
            Some((record.name.to_ascii(), ip, record.ttl))
        })
        .collect()
}

#[tokio::test]
async fn dns_server_answers_the_records_it_was_given() {
    let sip1 = Ipv4Addr::new(127, 0, 0, 2);
    let sip2 = Ipv4Addr::new(127, 0, 0, 3);
    let dns = DnsServer::builder()
        .a("sip1.example.test", sip1)
        .aaaa("sip1.example.test", Ipv6Addr::LOCALHOST)
        .a("sip2.example.test", sip2)
        .srv("_sip._udp.example.test", "sip1.example.test", 5071, 10, 60)
        .srv("_sip._udp.example.test", "sip2.example.test", 5072, 20, 40)
        .naptr(
            "example.test",
            10,
            50,
            "s",
            "SIP+D2U",
            "_sip._udp.example.test",
        )
        .naptr(
            "example.test",
            20,
            50,
            "s",
            "SIP+D2T",
            "_sip._tcp.example.test",
        )
        .ttl(120)
        .start()
        .await;
    assert_eq!(dns.ttl(), 120);
    assert!(dns.addr().ip().is_loopback());

    // SRV, over both transports: priority, weight, port and target as given (the
    // man page's order target,port,priority,weight holds), with the TTL.
    let expected_srv = vec![
        (10, 60, 5071, "sip1.example.test.".to_owned(), 120),
        (20, 40, 5072, "sip2.example.test.".to_owned(), 120),
    ];
    for transport in [Transport::Udp, Transport::Tcp] {
        let answer = dns
            .query_over(transport, "_sip._udp.example.test", RecordType::SRV)
            .await;
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert_eq!(srv_answers(&answer), expected_srv, "{transport:?}");
        // The targets' addresses come along in the additional section.
        let mut extra = addresses(&answer.additionals);
        extra.sort();
        assert_eq!(
            extra,
            [
                ("sip1.example.test.".to_owned(), sip1.into(), 120),
                (
                    "sip1.example.test.".to_owned(),
                    Ipv6Addr::LOCALHOST.into(),
                    120
                ),
                ("sip2.example.test.".to_owned(), sip2.into(), 120),
            ],
            "{transport:?}"
        );
    }
    // The order of SRV answers means nothing: dnsmasq moves the first to the end
    // each time, so a client that does not sort by priority picks wrong half the time.
    let first_target = |message: Message| match message.answers.first().map(|r| &r.data) {
        Some(RData::SRV(srv)) => srv.target.to_ascii(),
        other => panic!("no SRV answer: {other:?}"),
    };
    let one = first_target(dns.query("_sip._udp.example.test", RecordType::SRV).await);
    let two = first_target(dns.query("_sip._udp.example.test", RecordType::SRV).await);
    assert_ne!(
        one, two,
        "consecutive SRV answers start with the same record"
    );

    // A and AAAA, with the TTL.
    let a = dns.query("sip1.example.test", RecordType::A).await;
    assert!(a.metadata.authoritative, "{a:?}");
    assert_eq!(
        addresses(&a.answers),
        [("sip1.example.test.".to_owned(), sip1.into(), 120)]
    );
    let aaaa = dns.query("sip1.example.test", RecordType::AAAA).await;
    assert_eq!(
        addresses(&aaaa.answers),
        [(
            "sip1.example.test.".to_owned(),
            Ipv6Addr::LOCALHOST.into(),
            120
        )]
    );

    // NAPTR: order, preference, flags, service, an empty regexp, the replacement.
    let naptr = dns.query("example.test", RecordType::NAPTR).await;
    let mut rules: Vec<_> = naptr
        .answers
        .iter()
        .map(|record| match &record.data {
            RData::NAPTR(n) => (
                n.order,
                n.preference,
                String::from_utf8_lossy(&n.flags).into_owned(),
                String::from_utf8_lossy(&n.services).into_owned(),
                String::from_utf8_lossy(&n.regexp).into_owned(),
                n.replacement.to_ascii(),
                record.ttl,
            ),
            other => panic!("not a NAPTR answer: {other:?}"),
        })
        .collect();
    rules.sort();
    let rule = |order, service: &str, replacement: &str| {
        (
            order,
            50,
            "s".to_owned(),
            service.to_owned(),
            String::new(),
            replacement.to_owned(),
            120,
        )
    };
    assert_eq!(
        rules,
        [
            rule(10, "SIP+D2U", "_sip._udp.example.test."),
            rule(20, "SIP+D2T", "_sip._tcp.example.test."),
        ]
    );

    // Nothing else: a type the name lacks is NODATA, a name nobody gave NXDOMAIN,
    // both without an SOA (so, by RFC 2308, not for a client to cache); a name
    // outside .test is refused, never forwarded.
    let nodata = dns.query("sip2.example.test", RecordType::AAAA).await;
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.answers.is_empty(), "{nodata:?}");
    assert!(nodata.authorities.is_empty(), "{nodata:?}");
    for name in ["sip3.example.test", "_sip._tcp.example.test"] {
        let missing = dns.query(name, RecordType::SRV).await;
        assert_eq!(
            missing.metadata.response_code,
            ResponseCode::NXDomain,
            "{name}"
        );
        assert!(missing.authorities.is_empty(), "{missing:?}");
    }
    let outside = dns.query("example.com", RecordType::A).await;
    assert_eq!(outside.metadata.response_code, ResponseCode::Refused);

    // The questions, in order, without the harness's readiness probes.
    let queries = dns.queries();
    assert_eq!(
        queries.first().map(String::as_str),
        Some("query[SRV] _sip._udp.example.test from 127.0.0.1"),
        "{queries:?}"
    );
    assert_eq!(queries.len(), 11, "{queries:?}");
    assert_eq!(dns.query_count("SRV", "_sip._udp.example.test"), 4);
    assert_eq!(dns.query_count("NAPTR", "example.test"), 1);
    assert_eq!(dns.query_count("A", "sip2.example.test"), 0);
}

#[tokio::test]
async fn dns_server_ttl_defaults_and_zero() {
    let ip = Ipv4Addr::new(127, 0, 0, 9);
    let default = DnsServer::builder().a("sip.example.test", ip).start().await;
    let zero = DnsServer::builder()
        .a("sip.example.test", ip)
        .srv("_sip._udp.example.test", "sip.example.test", 5060, 0, 0)
        .ttl(0)
        .start()
        .await;
    assert_ne!(default.addr(), zero.addr());
    let ttls = |message: Message| message.answers.iter().map(|r| r.ttl).collect::<Vec<_>>();
    assert_eq!(
        ttls(default.query("sip.example.test", RecordType::A).await),
        [DEFAULT_TTL]
    );
    assert_eq!(
        ttls(zero.query("sip.example.test", RecordType::A).await),
        [0]
    );
    assert_eq!(
        ttls(zero.query("_sip._udp.example.test", RecordType::SRV).await),
        [0]
    );
}
