//! End to end: calls through the B2BUA (issue 9; CONTRACT.md §5, §6). A SIPp UAC
//! plays the provider calling in, the `trunkline` binary bridges the call, a SIPp UAS
//! plays the destination (LiveKit's stand-in). The provider is registered at a real
//! Kamailio on 127.0.0.1, so an INVITE from 127.0.0.1 comes from its registrar's
//! address; 127.0.0.5 is nobody's.
//!
//! Every scenario used here passes against its SIPp counterpart without trunkline
//! (`harness.rs`, `call_scenarios_*`), so a failure here is about trunkline.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use trunkline_tests::calls::{
    start_uas, Call, DigestHeader, SippRun, DEFAULT_CALLER, REINVITE_FIELDS,
};
use trunkline_tests::{net, Backend, Endpoint, Exited, Fault, Kamailio, Provider, Trunkline};

const PROVIDER_ID: &str = "p-e2e";
const PROVIDER_NAME: &str = "E2E Provider";
/// The provider's account at the registrar.
const ACCOUNT: &str = "e2e-trunk";
const DID: &str = "+5511999990001";

/// A loopback address that is no provider's and in no allow-list.
const STRANGER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);

/// trunkline with one registered provider, and what it takes to call through it.
struct Rig {
    kamailio: Kamailio,
    trunkline: Trunkline,
    /// trunkline's SIP address, where the provider's calls go.
    sip: SocketAddr,
    /// Secrets that must never appear in trunkline's output.
    secrets: Vec<(&'static str, String)>,
    _workdir: tempfile::TempDir,
}

impl Rig {
    /// File mode: the provider of the config file, registered at a fresh Kamailio,
    /// and `[routing.dids]` sending each DID to its SIPp destination.
    async fn file_mode(routes: &[(&str, SocketAddr)], env: &[(&str, String)]) -> Rig {
        let uris: Vec<(&str, String)> = routes
            .iter()
            .map(|(did, addr)| (*did, format!("sip:{did}@{addr}")))
            .collect();
        Self::file_mode_uris(&uris, env).await
    }

    /// [`Rig::file_mode`] with each DID's destination URI given whole.
    async fn file_mode_uris(routes: &[(&str, String)], env: &[(&str, String)]) -> Rig {
        let kamailio = Kamailio::start().await;
        let password = kamailio.password(ACCOUNT);
        let workdir = tempfile::tempdir().unwrap();
        let config = workdir.path().join("trunkline.toml");
        write_config(&config, &kamailio, &password, routes);
        let sip_port = net::free_udp_port();
        let mut all_env = base_env(sip_port);
        all_env.extend(env.iter().map(|(k, v)| (*k, v.clone())));
        let mut trunkline = Trunkline::start_in(
            workdir.path(),
            &["run", "--config", config.to_str().unwrap()],
            &all_env,
        )
        .await;
        trunkline
            .wait_for_log("the provider registered", |lines| {
                lines
                    .iter()
                    .any(|l| l["provider_id"] == PROVIDER_ID && l["status"] == "registered")
            })
            .await;
        Rig {
            kamailio,
            trunkline,
            sip: SocketAddr::from((Ipv4Addr::LOCALHOST, sip_port)),
            secrets: vec![("the provider's password", password)],
            _workdir: workdir,
        }
    }

    /// Runs `call` against trunkline to the end, failing at once if trunkline exits.
    async fn call(&mut self, call: Call) -> SippRun {
        let sip = self.sip;
        self.trunkline.run_until(call.run(sip)).await
    }

    /// Starts `scenario` (one call that stays up after the answer) in the background and
    /// returns once the caller has the 200. Waiting on the caller's log fails at once
    /// when the call fails (its SIPp exits).
    async fn answered_call(&mut self, scenario: &str) -> trunkline_tests::calls::Sipp {
        let mut call = Call::new(scenario, DID).start(self.sip).await;
        self.trunkline
            .run_until(call.wait_for_log("the call answered", |log| log.count("answered") == 1))
            .await;
        call
    }

    /// Waits for a destination's SIPp to finish, failing at once if trunkline exits.
    async fn finished(&mut self, uas: trunkline_tests::calls::Sipp) -> SippRun {
        self.trunkline.run_until(uas.wait()).await
    }

    /// SIGTERM: trunkline exits 0 and never printed a secret.
    async fn finish(self) -> Exited {
        self.trunkline.sigterm();
        self.exited().await
    }

    /// After a SIGTERM sent earlier: trunkline exits 0 (within
    /// `trunkline_tests::trunkline::EXIT_LIMIT`) and never printed a secret.
    async fn exited(self) -> Exited {
        let exited = self.trunkline.wait_exit().await;
        assert_eq!(
            exited.code(),
            Some(0),
            "trunkline should exit 0 after SIGTERM, exited {}",
            exited.status
        );
        let secrets: Vec<(&str, &str)> = self
            .secrets
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        exited.assert_no_secret(&secrets);
        exited
    }
}

/// One call from `call` through a fresh [`Rig::file_mode`] (with `env`) to a
/// `uas_scenario` SIPp (with `uas_args`) routed for [`DID`]; both SIPps must succeed.
async fn one_call(
    uas_scenario: &str,
    uas_args: &[&str],
    env: &[(&str, String)],
    call: Call,
) -> (Rig, SippRun, SippRun) {
    let uas = start_uas(uas_scenario, 1, uas_args).await;
    let mut rig = Rig::file_mode(&[(DID, uas.addr())], env).await;
    let uac = rig.call(call).await;
    uac.assert_succeeded(1);
    let uas = rig.finished(uas).await;
    uas.assert_succeeded(1);
    (rig, uac, uas)
}

fn base_env(sip_port: u16) -> Vec<(&'static str, String)> {
    let mut env = trunkline_tests::trunkline::loopback_env(sip_port);
    env.push(("SHUTDOWN_GRACE", "5s".to_owned()));
    env
}

fn write_config(path: &Path, kamailio: &Kamailio, password: &str, routes: &[(&str, String)]) {
    let mut text = format!(
        "[[providers]]\nid = \"{PROVIDER_ID}\"\nname = \"{PROVIDER_NAME}\"\n\
         host = \"127.0.0.1\"\nport = {}\nusername = \"{ACCOUNT}\"\npassword = \"{password}\"\n\n\
         [routing.dids]\n",
        kamailio.port()
    );
    for (did, uri) in routes {
        text.push_str(&format!("\"{did}\" = \"{uri}\"\n"));
    }
    std::fs::write(path, text).unwrap();
}

/// What the destination saw of the provider's call `call`: the dialed number as the
/// Request-URI user, a Call-ID of trunkline's own, the X-Trunkline-* headers of
/// CONTRACT.md §6 and the SDP offer unchanged (no RTP_ENGINE); and the caller got the
/// destination's SDP answer.
fn assert_bridged(uac: &SippRun, uac_call: u32, uas: &SippRun, uas_call: u32, provider_name: &str) {
    let (sent, seen) = (uac.log.call(uac_call), uas.log.call(uas_call));
    let context = || format!("provider side {sent:?}\ndestination side {seen:?}");
    assert_eq!(seen.field("ruri_user"), DID, "{}", context());
    assert_eq!(seen.field("to_user"), DID, "{}", context());
    assert_eq!(seen.field("from_user"), DEFAULT_CALLER, "{}", context());
    assert_ne!(
        seen.field("call_id"),
        sent.field("call_id"),
        "the destination leg needs a Call-ID of its own: {}",
        context()
    );
    assert_eq!(seen.field("x_did"), DID, "{}", context());
    assert_eq!(seen.field("x_caller"), DEFAULT_CALLER, "{}", context());
    assert_eq!(seen.field("x_provider_id"), PROVIDER_ID, "{}", context());
    assert_eq!(
        seen.field("x_provider_name"),
        provider_name,
        "{}",
        context()
    );
    assert_eq!(
        seen.field("x_call_id"),
        sent.field("call_id"),
        "{}",
        context()
    );
    for key in ["offer_s", "offer_o", "offer_m"] {
        assert_eq!(seen.field(key), sent.field(key), "SDP {key}: {}", context());
    }
    assert_eq!(seen.field("offer_c"), "IN IP4 127.0.0.1", "{}", context());
    assert_eq!(
        sent.field("answer_s"),
        seen.field("answer_s"),
        "the SDP answer reaches the caller: {}",
        context()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_call_the_caller_hangs_up() {
    let (rig, uac, uas) = one_call("call-uas.xml", &[], &[], Call::new("call-uac.xml", DID)).await;
    assert_bridged(&uac, 1, &uas, 1, PROVIDER_NAME);
    let seen = uas.log.call(1);
    assert!(
        seen.has("ack"),
        "trunkline ACKs the destination's 200: {seen:?}"
    );
    assert!(
        seen.has("bye"),
        "the caller's BYE reaches the destination: {seen:?}"
    );
    assert!(uac.log.call(1).has("bye_ok"));
    rig.finish().await;
}

/// Issue 10: the provider calls over TCP (SIPp `-t t1` connects to trunkline's TCP
/// listener on SIP_PORT) and the destination takes TCP too (`;transport=tcp` in its
/// URI): both legs on connections, answered, the caller's BYE through to the callee.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_call_over_tcp_on_both_legs() {
    let uas = start_uas("call-uas.xml", 1, &["-t", "t1"]).await;
    let route = format!("sip:{DID}@{};transport=tcp", uas.addr());
    let mut rig = Rig::file_mode_uris(&[(DID, route)], &[]).await;
    let uac = rig
        .call(Call::new("call-uac.xml", DID).args(&["-t", "t1"]))
        .await;
    uac.assert_succeeded(1);
    let uas = rig.finished(uas).await;
    uas.assert_succeeded(1);
    assert_bridged(&uac, 1, &uas, 1, PROVIDER_NAME);
    let seen = uas.log.call(1);
    assert!(seen.has("ack") && seen.has("bye"), "{seen:?}");
    assert!(uac.log.call(1).has("bye_ok"));
    // SIPp in `-t t1` speaks TCP only, so both legs were connections; and what
    // trunkline wrote says so.
    assert!(seen.field("via").starts_with("SIP/2.0/TCP "), "{seen:?}");
    assert!(seen.field("contact").contains(";transport=tcp"), "{seen:?}");
    rig.finish().await;
}

/// One call to `route` resolved through `dns`, answered by `uas` and bridged.
async fn answered_through(
    dns: &trunkline_tests::DnsServer,
    route: String,
    uas: trunkline_tests::calls::Sipp,
) -> (Rig, SippRun) {
    let env = [("DNS_SERVER", dns.addr().to_string())];
    let mut rig = Rig::file_mode_uris(&[(DID, route)], &env).await;
    let uac = rig.call(Call::new("call-uac.xml", DID)).await;
    uac.assert_succeeded(1);
    let uas = rig.finished(uas).await;
    uas.assert_succeeded(1);
    assert_bridged(&uac, 1, &uas, 1, PROVIDER_NAME);
    (rig, uas)
}

/// A destination named by a domain alone (`sip:<did>@livekit.example.test`, as the
/// default `sip:{did}@{livekitDomain}` is) is located by RFC 3263 through a real DNS
/// server: its NAPTR record says TCP (`SIP+D2T`) and the SRV name, the SRV record the
/// host and port, the A record the address; the call goes there over TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_located_by_naptr_srv_and_a_records() {
    let uas = start_uas("call-uas.xml", 1, &["-t", "t1"]).await;
    let domain = "livekit.example.test";
    let srv = format!("_sip._tcp.{domain}");
    let dns = trunkline_tests::DnsServer::builder()
        .naptr(domain, 10, 10, "s", "SIP+D2T", &srv)
        .naptr(
            domain,
            20,
            10,
            "s",
            "SIP+D2U",
            &format!("_sip._udp.{domain}"),
        )
        .srv(&srv, "lk.example.test", uas.addr().port(), 10, 0)
        .a("lk.example.test", Ipv4Addr::LOCALHOST)
        .start()
        .await;
    let route = format!("sip:{DID}@{domain}");
    let (rig, uas) = answered_through(&dns, route, uas).await;
    let seen = uas.log.call(1);
    assert!(
        seen.field("via").starts_with("SIP/2.0/TCP "),
        "the NAPTR record's transport: {seen:?}"
    );
    let asked = dns.queries();
    for (kind, name) in [
        ("NAPTR", domain),
        ("SRV", srv.as_str()),
        ("A", "lk.example.test"),
    ] {
        assert!(
            dns.query_count(kind, name) >= 1,
            "{kind} {name} asked: {asked:?}"
        );
    }
    rig.finish().await;
}

/// RFC 3263 §4.3 for a call: the destination's first SRV target refuses the TCP
/// connection (nothing listens there), so the INVITE goes to the second at once and
/// the call is answered there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_moves_to_the_next_srv_target_when_the_first_refuses_the_connection() {
    let uas = start_uas("call-uas.xml", 1, &["-t", "t1"]).await;
    let domain = "lk2.example.test";
    let srv = format!("_sip._tcp.{domain}");
    // A port nothing listens on: connecting to it is refused at once.
    let closed = net::free_tcp_port();
    let dns = trunkline_tests::DnsServer::builder()
        .srv(&srv, "down.example.test", closed, 10, 0)
        .srv(&srv, "lk.example.test", uas.addr().port(), 20, 0)
        .a("down.example.test", Ipv4Addr::LOCALHOST)
        .a("lk.example.test", Ipv4Addr::LOCALHOST)
        .start()
        .await;
    let route = format!("sip:{DID}@{domain};transport=tcp");
    let (rig, _) = answered_through(&dns, route, uas).await;
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_call_the_callee_hangs_up() {
    let (rig, uac, uas) = one_call(
        "call-uas-hangup.xml",
        &["-d", "300"],
        &[],
        Call::new("call-uac-wait-bye.xml", DID),
    )
    .await;
    assert!(
        uac.log.call(1).has("bye"),
        "the callee's BYE reaches the caller"
    );
    assert!(
        uas.log.call(1).has("bye_ok"),
        "trunkline answers the callee's BYE"
    );
    assert_eq!(uas.log.call(1).field("ruri_user"), DID);
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_before_answer_reaches_the_callee() {
    // The scenario itself requires 180, then 200 for the CANCEL and 487.
    let (rig, _uac, uas) = one_call(
        "call-uas-ring.xml",
        &[],
        &[],
        Call::new("call-uac-cancel.xml", DID),
    )
    .await;
    let seen = uas.log.call(1);
    assert!(
        seen.has("cancel"),
        "the CANCEL reaches the callee: {seen:?}"
    );
    assert_eq!(
        seen.field("cancel_branch"),
        seen.field("branch"),
        "a CANCEL carries its INVITE's branch (RFC 3261 §9.1)"
    );
    assert_eq!(
        seen.field("ack_branch"),
        seen.field("branch"),
        "the ACK of the 487 carries the INVITE's branch (RFC 3261 §17.1.1.3)"
    );
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_callee_is_relayed_as_486() {
    let (rig, _uac, uas) = one_call(
        "call-uas-busy.xml",
        &[],
        &[],
        Call::new("call-uac-expect.xml", DID).expect_status(486),
    )
    .await;
    let seen = uas.log.call(1);
    assert_eq!(seen.field("ruri_user"), DID);
    assert_eq!(seen.field("ack_branch"), seen.field("branch"));
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_from_an_unknown_address_gets_403_and_goes_nowhere() {
    let uas = start_uas("call-uas.xml", 1, &[]).await;
    let mut rig = Rig::file_mode(&[(DID, uas.addr())], &[]).await;

    let uac = rig
        .call(
            Call::new("call-uac-expect.xml", DID)
                .from_ip(STRANGER)
                .expect_status(403),
        )
        .await;
    uac.assert_succeeded(1);
    let uas = uas.stop().await;
    assert_eq!(
        (uas.created, uas.log.count("invite")),
        (0, 0),
        "the destination must see no INVITE:\n{}",
        uas.diagnostics()
    );
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_source_is_admitted() {
    let uas = start_uas("call-uas-busy.xml", 1, &[]).await;
    let mut rig = Rig::file_mode(
        &[(DID, uas.addr())],
        &[("SIP_ALLOWED_SOURCES", format!("{STRANGER}/32"))],
    )
    .await;

    // Forwarded (the busy destination's 486 comes back), though no provider's.
    let uac = rig
        .call(
            Call::new("call-uac-expect.xml", DID)
                .from_ip(STRANGER)
                .expect_status(486),
        )
        .await;
    uac.assert_succeeded(1);
    let uas = rig.finished(uas).await;
    uas.assert_succeeded(1);
    assert_eq!(uas.log.call(1).field("ruri_user"), DID);
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_did_is_the_to_user_when_the_request_uri_is_our_contact() {
    let uas = start_uas("call-uas.xml", 1, &[]).await;
    let mut rig = Rig::file_mode(&[(DID, uas.addr())], &[]).await;
    // What a registration trunk sends: the call to the Contact we registered.
    let bindings = rig.kamailio.bindings_of(ACCOUNT).await;
    let [binding] = bindings.as_slice() else {
        panic!("one binding expected for {ACCOUNT}: {bindings:?}");
    };
    let line = binding
        .contact
        .split(';')
        .find_map(|p| p.strip_prefix("line="))
        .map(|t| t.trim_end_matches('>').to_owned())
        .unwrap_or_else(|| panic!("no line= in the registered Contact: {binding:?}"));

    let uac = rig
        .call(Call::new("call-uac.xml", DID).to_contact(ACCOUNT, &format!(";line={line}")))
        .await;
    uac.assert_succeeded(1);
    let uas = rig.finished(uas).await;
    uas.assert_succeeded(1);
    assert_bridged(&uac, 1, &uas, 1, PROVIDER_NAME);
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_calls_reached_gets_503_with_retry_after() {
    let uas = start_uas("call-uas.xml", 1, &[]).await;
    let mut rig = Rig::file_mode(&[(DID, uas.addr())], &[("MAX_CALLS", "1".to_owned())]).await;

    // One call up (the caller has the 200), held until poked.
    let held = rig.answered_call("call-uac-hold.xml").await;

    let refused = rig
        .call(Call::new("call-uac-expect.xml", DID).expect_status(503))
        .await;
    refused.assert_succeeded(1);
    let retry_after = refused.log.call(1).field("retry_after").to_owned();
    assert!(
        retry_after.parse::<u32>().is_ok(),
        "a 503 for MAX_CALLS carries Retry-After (seconds), got {retry_after:?}"
    );

    held.poke(1);
    let held = rig.trunkline.run_until(held.wait()).await;
    held.assert_succeeded(1);
    let uas = rig.finished(uas).await;
    uas.assert_succeeded(1);
    assert_eq!(
        uas.created, 1,
        "the refused call never reached the destination"
    );
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_destination_comes_from_the_backend_else_the_default() {
    const ROUTED: &str = "+5511999990001";
    const UNLISTED: &str = "+5511999990002";
    const BACKEND_DOWN: &str = "+5511999990003";
    const BACKEND_SLOW: &str = "+5511999990004";
    let routed = start_uas("call-uas.xml", 1, &[]).await;
    let default = start_uas("call-uas.xml", 3, &[]).await;

    let kamailio = Kamailio::start().await;
    let password = kamailio.password(ACCOUNT);
    let api_key = format!("api-key-{}", trunkline_tests::random_hex(16));
    let backend = Backend::start(&api_key).await;
    let provider = Provider::udp(PROVIDER_ID, ACCOUNT, &password, kamailio.addr());
    let provider_name = provider.name.clone();
    backend.set_providers(&[provider]);
    let default_domain = default.addr().to_string();
    backend.set_config(Some(json!({ "livekitDomain": default_domain })));
    backend.set_destination(ROUTED, &format!("sip:{ROUTED}@{}", routed.addr()));
    // Its answer, were trunkline to wait for it, points where nothing listens.
    let nowhere = SocketAddr::from((Ipv4Addr::LOCALHOST, net::free_udp_port()));
    backend.set_destination(BACKEND_SLOW, &format!("sip:{BACKEND_SLOW}@{nowhere}"));

    let sip_port = net::free_udp_port();
    let mut env = base_env(sip_port);
    env.extend([
        ("BACKEND_URL", backend.url()),
        ("API_KEY", api_key.clone()),
        ("ROUTE_LOOKUP_TIMEOUT", "500ms".to_owned()),
    ]);
    let mut trunkline = Trunkline::start(&["run"], &env).await;
    trunkline
        .run_until(backend.wait_for_status(PROVIDER_ID, "registered"))
        .await;
    trunkline
        .wait_for_log("the backend's livekitDomain applied", |lines| {
            lines.iter().any(|l| l["domain"] == default_domain.as_str())
        })
        .await;
    let sip = SocketAddr::from((Ipv4Addr::LOCALHOST, sip_port));

    // The backend's destination for the DID.
    let uac = trunkline
        .run_until(Call::new("call-uac.xml", ROUTED).run(sip))
        .await;
    uac.assert_succeeded(1);
    let routed = trunkline.run_until(routed.wait()).await;
    routed.assert_succeeded(1);
    assert_bridged(&uac, 1, &routed, 1, &provider_name);

    // 404 for the DID: the default, sip:{did}@{livekitDomain}.
    let uac = trunkline
        .run_until(Call::new("call-uac.xml", UNLISTED).run(sip))
        .await;
    uac.assert_succeeded(1);
    // The backend down for lookups: the default too, without waiting beyond the
    // lookup timeout for a connection that is dropped.
    backend.inject(Endpoint::Destination, Fault::Drop, usize::MAX);
    let uac_down = trunkline
        .run_until(Call::new("call-uac.xml", BACKEND_DOWN).run(sip))
        .await;
    uac_down.assert_succeeded(1);
    backend.clear_faults();
    // The backend slower than ROUTE_LOOKUP_TIMEOUT (500 ms): the default once the
    // lookup timeout runs out, not the destination the backend gives 5 s later.
    backend.set_delay(Some(Duration::from_secs(5)));
    let uac_slow = trunkline
        .run_until(Call::new("call-uac.xml", BACKEND_SLOW).run(sip))
        .await;
    backend.set_delay(None);
    uac_slow.assert_succeeded(1);
    let default = trunkline.run_until(default.wait()).await;
    default.assert_succeeded(3);
    let dialed: BTreeSet<&str> = default.log.calls().map(|c| c.field("ruri_user")).collect();
    assert_eq!(
        dialed,
        BTreeSet::from([UNLISTED, BACKEND_DOWN, BACKEND_SLOW])
    );
    for call in default.log.calls() {
        assert_eq!(call.field("x_did"), call.field("ruri_user"), "{call:?}");
    }

    let looked_up = |did: &str| {
        let path = format!("/api/sip/destination/{}", did.replace('+', "%2B"));
        backend
            .history()
            .iter()
            .any(|r| r.endpoint == Endpoint::Destination && r.path == path)
    };
    // The slow lookup is recorded only once the backend answers it, after the call.
    for did in [ROUTED, UNLISTED, BACKEND_DOWN] {
        assert!(
            looked_up(did),
            "no lookup for {did}:\n{}",
            backend.history_text()
        );
    }

    let exited = trunkline.terminate().await;
    assert_eq!(exited.code(), Some(0));
    let fallback_reason = |did: &str| {
        exited
            .json_lines()
            .into_iter()
            .find(|l| l["level"] == "warn" && l["did"] == did)
            .and_then(|l| l["reason"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("no warning on {did}'s default destination"))
    };
    let slow = fallback_reason(BACKEND_SLOW);
    assert!(
        slow.contains("ROUTE_LOOKUP_TIMEOUT"),
        "the slow lookup took the default for its timeout: {slow}"
    );
    assert!(!fallback_reason(BACKEND_DOWN).contains("ROUTE_LOOKUP_TIMEOUT"));
    exited.assert_no_secret(&[
        ("the provider's password", password.as_str()),
        ("the API key", api_key.as_str()),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_challenge_is_answered_and_the_password_stays_secret() {
    let lk_password = format!("lk-{}", trunkline_tests::random_hex(12));
    let uas = start_uas("call-uas-auth.xml", 1, &[]).await;
    let mut rig = Rig::file_mode(
        &[(DID, uas.addr())],
        &[
            ("LIVEKIT_SIP_USERNAME", "lk-user".to_owned()),
            ("LIVEKIT_SIP_PASSWORD", lk_password.clone()),
        ],
    )
    .await;
    rig.secrets
        .push(("LIVEKIT_SIP_PASSWORD", lk_password.clone()));

    let uac = rig.call(Call::new("call-uac.xml", DID)).await;
    uac.assert_succeeded(1);
    let uas = rig.finished(uas).await;
    uas.assert_succeeded(1);
    let seen = uas.log.call(1);
    assert!(seen.has("ack_407"), "trunkline ACKs the 407: {seen:?}");
    let cseq = |key| seen.field(key).parse::<u32>().unwrap();
    assert!(
        cseq("cseq_2") > cseq("cseq"),
        "the authenticated INVITE takes a higher CSeq: {seen:?}"
    );
    let header = DigestHeader::parse(seen.field("proxy_authorization"))
        .unwrap_or_else(|| panic!("not a Digest Proxy-Authorization: {seen:?}"));
    assert_eq!(header.param("username"), Some("lk-user"), "{header:?}");
    assert_eq!(header.param("realm"), Some("LiveKit"), "{header:?}");
    assert_eq!(
        header.param("nonce"),
        Some(seen.field("nonce")),
        "{header:?}"
    );
    assert!(
        header.verify("INVITE", &lk_password),
        "the digest response is not MD5 of LIVEKIT_SIP_PASSWORD: {header:?}"
    );
    assert_eq!(uac.log.call(1).field("answer_s"), seen.field("answer_s"));
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_calls_at_a_steady_rate_all_succeed() {
    let uas = start_uas("call-uas.xml", 100, &[]).await;
    let mut rig = Rig::file_mode(&[(DID, uas.addr())], &[]).await;

    let uac = rig
        .call(Call::new("call-uac.xml", DID).calls(100, 20).hold_ms(200))
        .await;
    uac.assert_succeeded(100);
    let uas = rig.finished(uas).await;
    uas.assert_succeeded(100);

    let provider_ids: BTreeSet<&str> = uac.log.calls().map(|c| c.field("call_id")).collect();
    let destination_ids: BTreeSet<&str> = uas.log.calls().map(|c| c.field("call_id")).collect();
    let relayed_ids: BTreeSet<&str> = uas.log.calls().map(|c| c.field("x_call_id")).collect();
    assert_eq!(
        destination_ids.len(),
        100,
        "one Call-ID per destination leg"
    );
    assert!(
        destination_ids.is_disjoint(&provider_ids),
        "destination legs reuse provider Call-IDs"
    );
    assert_eq!(
        relayed_ids, provider_ids,
        "X-Trunkline-Call-Id names each provider leg"
    );
    // Huge pages are off: their first touch stalled calls by 5-10 ms (main.rs).
    if let Some(thp) = rig.trunkline.proc_status("THP_enabled") {
        assert_eq!(thp, "0", "trunkline runs with transparent huge pages on");
    }
    let exited = rig.finish().await;
    assert_no_panic(&exited);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_that_never_answers_times_out_on_both_legs() {
    // CALL_RING_TIMEOUT's minimum is 1 s; 2 s leaves the 180 time to arrive first.
    // The caller hears the 180, then must get 408; the callee's scenario requires a
    // CANCEL, answers it 200 and the INVITE 487, and requires the ACK of the 487.
    let (rig, uac, uas) = one_call(
        "call-uas-ring.xml",
        &[],
        &[("CALL_RING_TIMEOUT", "2s".to_owned())],
        Call::new("call-uac-expect.xml", DID).expect_status(408),
    )
    .await;
    assert_eq!(uac.log.call(1).field("status"), "408");
    let seen = uas.log.call(1);
    assert!(seen.has("cancel"), "the callee is cancelled: {seen:?}");
    assert_eq!(seen.field("cancel_branch"), seen.field("branch"));
    assert_eq!(seen.field("ack_branch"), seen.field("branch"));
    let exited = rig.finish().await;
    let ended = call_ended(&exited, uac.log.call(1).field("call_id"));
    assert_eq!(
        (ended["outcome"].as_str(), ended["status"].as_u64()),
        (Some("no_answer"), Some(408)),
        "{ended}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_and_resume_reinvites_are_relayed_with_their_sdp() {
    let (rig, uac, uas) = one_call(
        "call-uas-reinvite.xml",
        &[],
        &[],
        Call::new("call-uac-reinvite.xml", DID),
    )
    .await;
    let (sent, seen) = (uac.log.call(1), uas.log.call(1));
    // Each re-INVITE's SDP reached the destination as the caller sent it, and each
    // answer's SDP reached the caller as the destination sent it.
    for key in REINVITE_FIELDS {
        assert_eq!(
            seen.field(key),
            sent.field(key),
            "{key}:\ncaller {sent:?}\ndestination {seen:?}"
        );
    }
    assert_eq!(seen.field("hold_direction"), "sendonly");
    assert_eq!(sent.field("hold_answer_direction"), "recvonly");
    assert_eq!(seen.field("resume_direction"), "sendrecv");
    // Both re-INVITEs arrived in trunkline's own dialog with the destination.
    assert_ne!(seen.field("call_id"), sent.field("call_id"));
    assert_eq!(seen.field("hold_call_id"), seen.field("call_id"));
    assert_eq!(seen.field("resume_call_id"), seen.field("call_id"));
    let cseq = |key| seen.field(key).parse::<u32>().unwrap();
    assert!(cseq("resume_cseq") > cseq("hold_cseq"), "{seen:?}");
    assert!(
        seen.has("hold_ack") && seen.has("resume_ack"),
        "trunkline ACKs each 200 of the destination: {seen:?}"
    );
    assert!(seen.has("bye") && sent.has("bye_ok"));
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refer_from_the_destination_reaches_the_caller() {
    let (rig, uac, uas) = one_call(
        "call-uas-refer.xml",
        &["-d", "300"],
        &[],
        Call::new("call-uac-refer.xml", DID),
    )
    .await;
    let (caller, callee) = (uac.log.call(1), uas.log.call(1));
    let context = || format!("caller {caller:?}\ndestination {callee:?}");
    assert_eq!(
        caller.field("refer_to"),
        callee.field("refer_to"),
        "Refer-To crosses unchanged: {}",
        context()
    );
    assert_eq!(
        caller.field("referred_by"),
        callee.field("referred_by"),
        "{}",
        context()
    );
    assert_eq!(
        caller.field("refer_call_id"),
        caller.field("call_id"),
        "the REFER comes in the provider's own dialog: {}",
        context()
    );
    assert!(
        callee.has("accepted"),
        "the caller's 202 reaches the destination: {}",
        context()
    );
    assert!(
        caller.has("bye") && callee.has("bye_ok"),
        "the destination's BYE after the transfer ends both legs: {}",
        context()
    );
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_refuses_new_calls_and_the_call_up_goes_on_until_it_ends() {
    let uas = start_uas("call-uas.xml", 1, &[]).await;
    // A drain longer than EXIT_LIMIT: exiting in time means trunkline stopped once the
    // last call ended, not when the drain ran out.
    let mut rig = Rig::file_mode(&[(DID, uas.addr())], &[("CALL_DRAIN", "60s".to_owned())]).await;
    let held = rig.answered_call("call-uac-hold.xml").await;

    rig.trunkline.sigterm();
    rig.trunkline
        .wait_for_log("the shutdown began", |lines| {
            lines.iter().any(|l| l["signal"] == "SIGTERM")
        })
        .await;
    let refused = rig
        .call(Call::new("call-uac-expect.xml", DID).expect_status(503))
        .await;
    refused.assert_succeeded(1);
    assert_eq!(
        refused.log.call(1).field("retry_after"),
        "",
        "a 503 for a shutdown has no Retry-After: the carrier tries its next route now"
    );
    assert_eq!(uas.log().count("bye"), 0, "the call is still up");

    // The caller hangs up after the SIGTERM: its BYE crosses and is answered. trunkline
    // may exit as soon as both legs are over, so nothing here waits on it.
    held.poke(1);
    let held = held.wait().await;
    held.assert_succeeded(1);
    let uas = uas.wait().await;
    uas.assert_succeeded(1);
    assert!(
        uas.log.call(1).has("bye"),
        "the caller's BYE reaches the destination"
    );
    assert_eq!(
        uas.created, 1,
        "the refused call never reached the destination"
    );
    let exited = rig.exited().await;
    let ended = call_ended(&exited, held.log.call(1).field("call_id"));
    assert_eq!(ended["outcome"], "answered", "{ended}");
    assert_eq!(ended["reason"], "the caller hung up", "{ended}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_call_up_hangs_up_both_legs_when_call_drain_runs_out() {
    let uas = start_uas("call-uas.xml", 1, &[]).await;
    let mut rig = Rig::file_mode(&[(DID, uas.addr())], &[("CALL_DRAIN", "2s".to_owned())]).await;
    // Nobody hangs up: the caller waits for a BYE, and so does the destination.
    let up = rig.answered_call("call-uac-wait-bye.xml").await;

    rig.trunkline.sigterm();
    let up = up.wait().await;
    up.assert_succeeded(1);
    assert!(
        up.log.call(1).has("bye"),
        "trunkline's BYE reaches the caller"
    );
    let uas = uas.wait().await;
    uas.assert_succeeded(1);
    assert!(
        uas.log.call(1).has("bye"),
        "trunkline's BYE reaches the destination"
    );
    let exited = rig.exited().await;
    let ended = call_ended(&exited, up.log.call(1).field("call_id"));
    assert_eq!(ended["outcome"], "answered", "{ended}");
    assert!(
        ended["reason"]
            .as_str()
            .is_some_and(|r| r.contains("CALL_DRAIN")),
        "the call lasted until the drain ran out: {ended}"
    );
}

/// The `call ended` log line of the call whose provider leg is `call_id`.
fn call_ended(exited: &Exited, call_id: &str) -> Value {
    exited
        .json_lines()
        .into_iter()
        .find(|l| {
            l["call_id"] == call_id
                && l["msg"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("call ended"))
        })
        .unwrap_or_else(|| panic!("no `call ended` line for {call_id}:\n{}", exited.output()))
}

/// trunkline logged no panic (a caught one would still be a bug on peer input).
fn assert_no_panic(exited: &Exited) {
    let lines: Vec<Value> = exited.json_lines();
    assert!(
        !exited.stderr.contains("panicked at")
            && !lines
                .iter()
                .any(|l| l["msg"].as_str().is_some_and(|m| m.contains("panic"))),
        "trunkline panicked:\n{}",
        exited.output()
    );
}
