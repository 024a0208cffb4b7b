//! RFC 3263 against real peers (issue 10): a provider named by a domain without a port
//! is located through a real DNS server on loopback (dnsmasq: SRV, then A records) and
//! registered at the SRV target of the lowest priority. When that registrar stops
//! answering (a paused Kamailio: it keeps its bindings), the registration moves to the
//! second target; when the first answers again, trunkline removes the binding it left
//! there, so the account is bound at exactly one registrar. CONTRACT.md §7.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use trunkline_tests::{Backend, DnsServer, Kamailio, KamailioOptions, Provider, Trunkline};

const ALICE: &str = "p-alice";
const DOMAIN: &str = "sip.example.test";

/// Two registrars of one provider, sharing its accounts (the second on 127.0.0.2),
/// and a DNS server whose SRV records for [`DOMAIN`] list the first at priority 10 and
/// the second at priority 20.
struct Registrars {
    first: Kamailio,
    second: Kamailio,
    second_addr: SocketAddr,
    dns: DnsServer,
}

async fn two_registrars() -> Registrars {
    let first = Kamailio::start().await;
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
    let srv = format!("_sip._udp.{DOMAIN}");
    let dns = DnsServer::builder()
        .srv(&srv, "a.example.test", first.port(), 10, 0)
        .srv(&srv, "b.example.test", second.port(), 20, 0)
        .a("a.example.test", Ipv4Addr::LOCALHOST)
        .a("b.example.test", Ipv4Addr::new(127, 0, 0, 2))
        .start()
        .await;
    Registrars {
        first,
        second,
        second_addr,
        dns,
    }
}

/// The `trunkline` binary's settings against `backend`, resolving through `dns`,
/// with its admin API on `admin_port` behind `admin_token`.
fn settings(
    backend: &Backend,
    api_key: &str,
    dns: &DnsServer,
    admin_port: u16,
    admin_token: &str,
) -> Vec<(&'static str, String)> {
    let mut env = trunkline_tests::trunkline::loopback_env(trunkline_tests::net::free_udp_port());
    env.extend([
        ("BACKEND_URL", backend.url()),
        ("API_KEY", api_key.to_owned()),
        ("DNS_SERVER", dns.addr().to_string()),
        ("ADMIN_LISTEN", format!("127.0.0.1:{admin_port}")),
        ("ADMIN_TOKEN", admin_token.to_owned()),
    ]);
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_registrar_is_left_for_the_next_srv_target_and_its_binding_removed_when_it_answers_again(
) {
    // Two registrars of one provider, sharing its accounts: the second on 127.0.0.2.
    let Registrars {
        mut first,
        second,
        second_addr,
        dns,
    } = two_registrars().await;

    let api_key = format!("api-key-{}", trunkline_tests::random_hex(16));
    let backend = Backend::start(&api_key).await;
    let mut alice = Provider::udp(ALICE, "alice", &first.password("alice"), first.addr());
    alice.host = DOMAIN.to_owned();
    alice.port = None;
    backend.set_providers(&[alice]);

    let admin_token = format!("admin-token-{}", trunkline_tests::random_hex(16));
    let admin_port = trunkline_tests::net::free_tcp_port();
    let admin = format!("http://127.0.0.1:{admin_port}");
    let env = settings(&backend, &api_key, &dns, admin_port, &admin_token);
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

/// The failover measurement of issue 10 (a benchmark, not run by CI: `cargo test
/// --release -p trunkline-tests --test rfc3263 -- --ignored --nocapture`): 1,000
/// registrations at the priority-10 target; it is paused and every registration asked
/// to re-register at once (the admin API; as if all refreshes fell due together), and
/// the time until all 1,000 are registered at the second target is printed, then the
/// time from the first's return until no binding is left there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run it with --ignored"]
async fn failover_of_1000_registrations() {
    const N: usize = 1000;
    let Registrars {
        mut first,
        second,
        second_addr: _,
        dns,
    } = two_registrars().await;
    let api_key = format!("api-key-{}", trunkline_tests::random_hex(16));
    let backend = Backend::start(&api_key).await;
    let ids: Vec<String> = (0..N).map(|i| format!("p-fo{i:04}")).collect();
    let providers: Vec<Provider> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let user = format!("fo{i:04}");
            let mut p = Provider::udp(id, &user, &first.password(&user), first.addr());
            p.host = DOMAIN.to_owned();
            p.port = None;
            p
        })
        .collect();
    backend.set_providers(&providers);
    let admin_token = format!("admin-token-{}", trunkline_tests::random_hex(16));
    let admin_port = trunkline_tests::net::free_tcp_port();
    let admin = format!("http://127.0.0.1:{admin_port}");
    let mut env = settings(&backend, &api_key, &dns, admin_port, &admin_token);
    // One line per registration would be 2,000 debug lines a second.
    env.push(("LOG_LEVEL", "info".to_owned()));
    let mut trunkline = Trunkline::start(&["run"], &env).await;
    let registered_after = |start: usize| {
        let ids = ids.clone();
        move |h: &[trunkline_tests::RecordedRequest]| {
            let done = ids
                .iter()
                .filter(|id| {
                    h.iter().skip(start).any(|r| {
                        r.is_accepted_patch_for(id) && r.register_status() == Some("registered")
                    })
                })
                .count();
            (done == N).then_some(())
        }
    };
    trunkline
        .run_until(backend.wait_for("all registered", registered_after(0)))
        .await;
    assert_eq!(first.binding_count().await, N as u64);

    first.pause().await;
    let before = backend.history().len();
    let paused_at = Instant::now();
    let http = trunkline_tests::admin_client();
    for id in &ids {
        let r = http
            .post(format!("{admin}/api/registrations/{id}/register"))
            .bearer_auth(&admin_token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    trunkline
        .run_until(backend.wait_for("all registered at the second", registered_after(before)))
        .await;
    let failover = paused_at.elapsed();
    assert_eq!(second.binding_count().await, N as u64);

    first.resume().await;
    let resumed_at = Instant::now();
    let deadline = resumed_at + Duration::from_secs(600);
    // Kamailio offers nothing to await: poll its count, bounded.
    while first.binding_count().await > 0 {
        assert!(
            Instant::now() < deadline,
            "bindings left at the first registrar"
        );
        trunkline
            .run_until(tokio::time::sleep(Duration::from_millis(250)))
            .await;
    }
    let cleanup = resumed_at.elapsed();
    println!(
        "failover of {N} registrations: all registered at the second target {:.1} s after the first stopped answering (Timer F is 32 s); no binding left at the first {:.1} s after it answered again",
        failover.as_secs_f64(),
        cleanup.as_secs_f64()
    );
    let log = std::env::temp_dir().join("trunkline-failover-1000.log");
    std::fs::write(&log, trunkline.stdout()).unwrap();
    println!("trunkline's log: {}", log.display());
    trunkline.terminate().await;
}
