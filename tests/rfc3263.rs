//! RFC 3263 against real peers (issue 10): a provider named by a domain without a port
//! is located through a real DNS server on loopback (dnsmasq: SRV, then A records) and
//! registered at the SRV target of the lowest priority. When that registrar stops
//! answering (a paused Kamailio: it keeps its bindings), the registration moves to the
//! second target; when the first answers again, trunkline removes the binding it left
//! there, so the account is bound at exactly one registrar. CONTRACT.md §7.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;
use trunkline_tests::{Backend, DnsServer, Kamailio, KamailioOptions, Provider, Trunkline};

const ALICE: &str = "p-alice";
const DOMAIN: &str = "sip.example.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_registrar_is_left_for_the_next_srv_target_and_its_binding_removed_when_it_answers_again(
) {
    // Two registrars of one provider, sharing its accounts: the second on 127.0.0.2.
    let mut first = Kamailio::start().await;
    let second_addr = SocketAddr::from((
        Ipv4Addr::new(127, 0, 0, 2),
        trunkline_tests::net::free_udp_port(),
    ));
    let second = Kamailio::start_with(KamailioOptions {
        listen: Some(second_addr),
        password_key: Some(first.password_key().to_owned()),
        ..KamailioOptions::default()
    })
    .await;
    let dns = DnsServer::builder()
        .srv(
            &format!("_sip._udp.{DOMAIN}"),
            "a.example.test",
            first.port(),
            10,
            0,
        )
        .srv(
            &format!("_sip._udp.{DOMAIN}"),
            "b.example.test",
            second.port(),
            20,
            0,
        )
        .a("a.example.test", Ipv4Addr::LOCALHOST)
        .a("b.example.test", Ipv4Addr::new(127, 0, 0, 2))
        .start()
        .await;

    let api_key = format!("api-key-{}", trunkline_tests::random_hex(16));
    let backend = Backend::start(&api_key).await;
    let mut alice = Provider::udp(ALICE, "alice", &first.password("alice"), first.addr());
    alice.host = DOMAIN.to_owned();
    alice.port = None;
    backend.set_providers(&[alice]);

    let admin_token = format!("admin-token-{}", trunkline_tests::random_hex(16));
    let admin_port = trunkline_tests::net::free_tcp_port();
    let admin = format!("http://127.0.0.1:{admin_port}");
    let sip_port = trunkline_tests::net::free_udp_port();
    let mut env = trunkline_tests::trunkline::loopback_env(sip_port);
    env.extend([
        ("BACKEND_URL", backend.url()),
        ("API_KEY", api_key.clone()),
        ("DNS_SERVER", dns.addr().to_string()),
        ("ADMIN_LISTEN", format!("127.0.0.1:{admin_port}")),
        ("ADMIN_TOKEN", admin_token.clone()),
    ]);
    let mut trunkline = Trunkline::start(&["run"], &env).await;

    trunkline
        .run_until(backend.wait_for_status(ALICE, "registered"))
        .await;
    assert_eq!(
        first.bindings_of("alice").await.len(),
        1,
        "bound at the priority-10 target"
    );
    assert!(second.bindings_of("alice").await.is_empty());
    assert!(
        dns.query_count("SRV", &format!("_sip._udp.{DOMAIN}")) >= 1,
        "located through SRV: {:?}",
        dns.queries()
    );

    // The first registrar stops answering; an operator's re-register (the admin API)
    // stands for the next refresh.
    first.pause().await;
    let before = backend.history().len();
    let paused_at = Instant::now();
    let http = trunkline_tests::admin_client();
    let accepted = http
        .post(format!("{admin}/api/registrations/{ALICE}/register"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert!(accepted.status().is_success(), "{}", accepted.status());
    trunkline
        .run_until(
            backend.wait_for("a registered PATCH after the failover", |h| {
                h.iter()
                    .skip(before)
                    .find(|r| {
                        r.is_accepted_patch_for(ALICE) && r.register_status() == Some("registered")
                    })
                    .cloned()
            }),
        )
        .await;
    // Timer F (32 s) of the unanswered REGISTER, then the next target at once.
    eprintln!("failover took {:?}", paused_at.elapsed());
    assert_eq!(
        second.bindings_of("alice").await.len(),
        1,
        "bound at the second target"
    );
    let view: serde_json::Value = http
        .get(format!("{admin}/api/registrations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let target = view
        .as_array()
        .and_then(|a| a.iter().find(|r| r["id"] == ALICE))
        .map(|r| r["target"].clone());
    assert_eq!(target, Some(second_addr.to_string().into()), "{view}");

    // The first answers again (it processes what queued meanwhile, our stale
    // REGISTERs included): the binding we left there is removed by our un-REGISTER,
    // which trunkline logs once the registrar has answered it.
    first.resume().await;
    trunkline
        .wait_for_log("the binding left at the first registrar removed", |lines| {
            lines.iter().any(|l| {
                l["msg"] == "removed our binding at the registrar address we left"
                    && l["provider_id"] == ALICE
            })
        })
        .await;
    assert!(
        first.bindings_of("alice").await.is_empty(),
        "no binding left at the abandoned registrar: {:?}",
        first.bindings_of("alice").await
    );
    assert_eq!(
        second.bindings_of("alice").await.len(),
        1,
        "and the one in use stays"
    );
    trunkline.terminate().await;
}
