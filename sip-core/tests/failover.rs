//! RFC 3263 failover (issue 10): a provider without a port is located by SRV; its
//! registration keeps the target that answers, moves to the next on a timeout, a 503
//! or a failed connection, and removes the binding it left at the old target once
//! that one answers again — so the provider never holds two bindings for one account.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// Virtual time is anchored once with `Instant::now()`; everything after adds durations.
#![allow(clippy::disallowed_methods)]

mod support;

use sip_core::{Answer, Event, QueryKind, Records, RegisterStatus, Resolution, SrvRecord};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use support::registrar::{Behaviour, Registrar};
use support::{config, provider, World, REGISTRAR, REGISTRAR2};

const HOST: &str = "sip.example.test";
const SRV_NAME: &str = "_sip._udp.sip.example.test";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn srv(list: &[(u16, u16, &str)], ttl: u64) -> Result<Answer, String> {
    Ok(Answer {
        records: Records::Services(
            list.iter()
                .map(|&(priority, weight, target)| SrvRecord {
                    priority,
                    weight,
                    port: 5060,
                    target: target.into(),
                })
                .collect(),
        ),
        ttl: Some(Duration::from_secs(ttl)),
    })
}

fn a(addr: &str) -> Result<Answer, String> {
    Ok(Answer {
        records: Records::Addresses(Resolution {
            addrs: vec![ip(addr)],
            local_ip: None,
        }),
        ttl: Some(Duration::from_secs(3600)),
    })
}

/// `alice` at a provider named `sip.example.test` without a port, whose SRV records
/// list `a.example.test` (REGISTRAR, priority 10) and `b.example.test` (REGISTRAR2,
/// priority 20); both registrars know alice. Grants 300 s (refresh after ~270 s).
fn world(behaviour: Behaviour) -> World {
    let registrar = Registrar::new(&[("alice", "pw")], behaviour.clone());
    let mut p = provider("p1", "alice", "pw");
    p.host = HOST.into();
    p.port = None;
    p.expires = Some(300);
    let second = Registrar::new(&[("alice", "pw")], Behaviour::default());
    with_dns(
        World::new(config(), registrar, vec![p]),
        second,
        &[(20, 0, "b.example.test"), (10, 0, "a.example.test")],
    )
}

/// `w` with `second` at REGISTRAR2, SRV `records` for the provider's domain and the
/// addresses of `a.example.test` (REGISTRAR) and `b.example.test` (REGISTRAR2).
fn with_dns(mut w: World, second: Registrar, records: &[(u16, u16, &str)]) -> World {
    w.second = Some(second);
    w.dns
        .insert((QueryKind::Srv, SRV_NAME.into()), srv(records, 3600));
    w.dns
        .insert((QueryKind::Address, "a.example.test".into()), a(REGISTRAR));
    w.dns
        .insert((QueryKind::Address, "b.example.test".into()), a(REGISTRAR2));
    w
}

fn registers_to(w: &World, to: &str) -> usize {
    w.registers()
        .iter()
        .filter(|(_, r, _)| r.ip() == ip(to))
        .count()
}

/// REGISTERs asking for a binding (not un-REGISTERs) sent to `to` after `after`.
fn binding_registers_to(w: &World, to: &str, after: Duration) -> usize {
    w.registers()
        .iter()
        .filter(|(t, r, m)| *t > after && r.ip() == ip(to) && !m.contains("Expires: 0"))
        .count()
}

fn target_changes(w: &World) -> Vec<(SocketAddr, SocketAddr)> {
    w.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::TargetChanged { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

fn second_bound(w: &World) -> bool {
    w.second.as_ref().unwrap().bindings.contains_key("alice")
}

#[test]
fn registers_at_the_srv_target_of_the_lowest_priority() {
    let mut w = world(Behaviour::default());
    w.run_for(Duration::from_secs(5));
    assert_eq!(
        w.last_report("p1").map(|r| r.register_status),
        Some(RegisterStatus::Registered)
    );
    assert!(w.registrar.bindings.contains_key("alice"));
    assert!(!second_bound(&w));
    assert_eq!(registers_to(&w, REGISTRAR2), 0);
    // SRV first, then both targets' addresses at once.
    assert_eq!(
        w.queries.first(),
        Some(&(QueryKind::Srv, SRV_NAME.to_owned()))
    );
    // The Request-URI names the domain, not a port the entry did not give.
    let (_, _, first) = w.registers()[0];
    assert!(
        first.starts_with("REGISTER sip:sip.example.test SIP/2.0"),
        "{first}"
    );
}

#[test]
fn a_silent_target_is_left_for_the_next_and_its_binding_removed_when_it_answers_again() {
    let mut w = world(Behaviour::default());
    w.run_for(Duration::from_secs(5));
    assert!(w.registrar.bindings.contains_key("alice"));
    // The first registrar stops answering (a paused process: it keeps its bindings).
    w.silent.insert(ip(REGISTRAR));
    // The refresh at ~270 s times out after 32 s (Timer F), then goes to b at once.
    w.run_for(Duration::from_secs(300));
    assert_eq!(
        target_changes(&w),
        vec![(
            SocketAddr::new(ip(REGISTRAR), 5060),
            SocketAddr::new(ip(REGISTRAR2), 5060)
        )]
    );
    assert!(second_bound(&w), "registered at the second target");
    let reports = w.reports_for("p1");
    let registered: Vec<_> = reports
        .iter()
        .skip_while(|r| r.register_status == RegisterStatus::Pending)
        .collect();
    assert!(registered.len() >= 2, "{reports:?}");
    assert!(
        registered.iter().all(|r| r.register_status == RegisterStatus::Registered),
        "the failover happened within the binding's lifetime: never reported failed: {registered:?}"
    );
    // The binding at the silent one is still there: it cannot be removed yet.
    assert!(w.registrar.bindings.contains_key("alice"));
    let cleanups_sent = w
        .registers()
        .iter()
        .filter(|(_, r, m)| r.ip() == ip(REGISTRAR) && m.contains("Expires: 0"))
        .count();
    assert!(
        cleanups_sent > 0,
        "un-REGISTERs are tried at the silent target"
    );

    // It answers again: the next un-REGISTER removes the binding there.
    w.silent.clear();
    w.run_for(Duration::from_secs(600));
    assert!(
        !w.registrar.bindings.contains_key("alice"),
        "the binding at the abandoned target is removed"
    );
    assert!(second_bound(&w), "and the one in use stays");
    assert!(w
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::AbandonedBindingCleared { removed: true, .. })));
    // Sticky: the refreshes stay at the second target though the first is back.
    let first_to_a_after = binding_registers_to(&w, REGISTRAR, Duration::from_secs(400));
    assert_eq!(
        first_to_a_after, 0,
        "no REGISTER with a binding back to the first target"
    );
    assert!(registers_to(&w, REGISTRAR2) >= 3, "refreshes at the second");
}

#[test]
fn a_503_moves_to_the_next_target_at_once() {
    let behaviour = Behaviour {
        fixed: Some((503, "Service Unavailable", vec![])),
        ..Behaviour::default()
    };
    let mut w = world(behaviour);
    w.run_for(Duration::from_secs(2));
    assert!(
        second_bound(&w),
        "no backoff between the targets of one round"
    );
    assert_eq!(target_changes(&w).len(), 1);
    assert_eq!(
        w.last_report("p1").map(|r| r.register_status),
        Some(RegisterStatus::Registered)
    );
    // A 503 made no binding: nothing to clean up at the first.
    assert!(!w
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::AbandonedBindingCleared { .. })));
    assert_eq!(
        w.registers()
            .iter()
            .filter(|(_, r, m)| r.ip() == ip(REGISTRAR) && m.contains("Expires: 0"))
            .count(),
        0
    );
}

#[test]
fn when_every_target_fails_the_round_ends_in_backoff_and_a_later_round_finds_the_one_back() {
    let mut w = world(Behaviour::default());
    w.silent.insert(ip(REGISTRAR));
    w.silent.insert(ip(REGISTRAR2));
    w.run_for(Duration::from_secs(70));
    let last = w.last_report("p1").unwrap();
    assert_eq!(last.register_status, RegisterStatus::Failed);
    assert!(
        last.register_error
            .as_deref()
            .unwrap()
            .contains("no response from sip.example.test (192.0.2.11:5060)"),
        "the error names the target that failed last: {last:?}"
    );
    assert_eq!(
        target_changes(&w).first().map(|c| c.1),
        Some(SocketAddr::new(ip(REGISTRAR2), 5060))
    );
    // The second registrar comes back: a later round reaches it and succeeds.
    w.silent.remove(&ip(REGISTRAR2));
    w.run_for(Duration::from_secs(120));
    assert!(second_bound(&w));
    assert_eq!(
        w.last_report("p1").map(|r| r.register_status),
        Some(RegisterStatus::Registered)
    );
}

#[test]
fn a_failing_srv_lookup_is_reported_with_the_name() {
    let mut w = world(Behaviour::default());
    w.dns.insert(
        (QueryKind::Srv, SRV_NAME.into()),
        Err("DNS server 127.0.0.1:53 did not answer".into()),
    );
    w.run_for(Duration::from_secs(2));
    let last = w.last_report("p1").unwrap();
    assert_eq!(last.register_status, RegisterStatus::Failed);
    let e = last.register_error.as_deref().unwrap();
    assert!(e.contains(SRV_NAME) && e.contains("did not answer"), "{e}");
}

#[test]
fn no_srv_records_means_the_host_at_the_default_port() {
    let mut w = world(Behaviour::default());
    w.dns
        .insert((QueryKind::Srv, SRV_NAME.into()), srv(&[], 60));
    w.dns
        .insert((QueryKind::Address, HOST.into()), a(REGISTRAR2));
    w.run_for(Duration::from_secs(2));
    assert!(second_bound(&w));
    assert_eq!(registers_to(&w, REGISTRAR), 0);
}

#[test]
fn a_target_dropped_from_dns_is_left_at_the_next_resolution_and_its_binding_removed() {
    let mut w = world(Behaviour::default());
    w.dns.insert(
        (QueryKind::Srv, SRV_NAME.into()),
        srv(&[(10, 0, "a.example.test"), (20, 0, "b.example.test")], 60),
    );
    w.run_for(Duration::from_secs(5));
    assert!(w.registrar.bindings.contains_key("alice"));
    // The provider moves the service: only b is listed now. The refresh (after the
    // TTL ran out) resolves again and goes there; a still answers and loses our binding.
    w.dns.insert(
        (QueryKind::Srv, SRV_NAME.into()),
        srv(&[(10, 0, "b.example.test")], 60),
    );
    w.run_for(Duration::from_secs(300));
    assert!(second_bound(&w));
    assert!(
        !w.registrar.bindings.contains_key("alice"),
        "no binding left behind"
    );
    assert_eq!(
        w.queries
            .iter()
            .filter(|(k, n)| *k == QueryKind::Srv && n == SRV_NAME)
            .count(),
        2,
        "looked up again once, after the TTL"
    );
}

#[test]
fn equal_priority_targets_share_the_registrations_by_weight() {
    let (mut registrar, mut providers) = support::numbered(200, "u", "p", Behaviour::default());
    let mut second = Registrar::new(&[], Behaviour::default());
    for p in &mut providers {
        p.host = HOST.into();
        p.port = None;
        second.accounts.insert(p.username.clone(), "pw".into());
    }
    registrar.behaviour.max_expires = 3600;
    let mut w = with_dns(
        World::new(config(), registrar, providers),
        second,
        &[(10, 75, "a.example.test"), (10, 25, "b.example.test")],
    );
    w.run_for(Duration::from_secs(30));
    let at_a = w.registrar.bindings.len();
    let at_b = w.second.as_ref().unwrap().bindings.len();
    assert_eq!(at_a + at_b, 200, "every account registered once");
    // 75/25 of 200: about 150/50 (binomial, σ ≈ 6).
    assert!(
        (120..=180).contains(&at_a),
        "{at_a} at the weight-75 target, {at_b} at the other"
    );
}

#[test]
fn the_answers_running_out_while_a_request_times_out_does_not_stop_the_failover() {
    let mut w = world(Behaviour::default());
    let short = |r: Result<Answer, String>| {
        r.map(|mut a| {
            a.ttl = Some(Duration::from_secs(60));
            a
        })
    };
    for v in w.dns.values_mut() {
        *v = short(v.clone());
    }
    w.run_for(Duration::from_secs(45));
    w.silent.insert(ip(REGISTRAR));
    w.input(sip_core::Input::Command(sip_core::Command::Reregister {
        id: "p1".into(),
    }));
    // The REGISTER times out at ~77 s, after every answer (60 s) ran out.
    w.run_for(Duration::from_secs(40));
    assert_eq!(target_changes(&w).len(), 1, "moved on at the first timeout");
    assert!(second_bound(&w));
}

#[test]
fn one_registrations_timeout_moves_the_others_on_without_waiting_their_own() {
    let (registrar, mut providers) = support::numbered(50, "u", "p", Behaviour::default());
    let mut second = Registrar::new(&[], Behaviour::default());
    for p in &mut providers {
        p.host = HOST.into();
        p.port = None;
        second.accounts.insert(p.username.clone(), "pw".into());
    }
    let records = [(10, 0, "a.example.test"), (20, 0, "b.example.test")];
    let mut w = with_dns(World::new(config(), registrar, providers), second, &records);
    w.run_for(Duration::from_secs(10));
    assert_eq!(w.registrar.bindings.len(), 50);
    w.silent.insert(ip(REGISTRAR));
    // The first re-registers now and times out 32 s later; the others re-register
    // after that: theirs go straight to b, without 32 s of their own.
    w.input(sip_core::Input::Command(sip_core::Command::Reregister {
        id: "p0".into(),
    }));
    w.run_for(Duration::from_secs(35));
    for i in 1..50 {
        w.input(sip_core::Input::Command(sip_core::Command::Reregister {
            id: format!("p{i}"),
        }));
    }
    w.run_for(Duration::from_secs(5));
    let at_b = w.second.as_ref().unwrap().bindings.len();
    assert_eq!(at_b, 50, "all at the second target 5 s after they asked");
    let to_a_after = binding_registers_to(&w, REGISTRAR, Duration::from_secs(44));
    assert_eq!(
        to_a_after, 0,
        "no REGISTER to the silent one once it is known silent"
    );
}

#[test]
fn a_calls_invite_answered_503_goes_to_the_destinations_next_srv_target() {
    use support::calls::{call_config, feed, livekit, place, response, sent_to};
    let mut cfg = call_config();
    cfg.default_domain = Some("lk.example.test".into());
    let mut w = support::registered(cfg);
    let second: SocketAddr = "198.51.100.51:5080".parse().unwrap();
    let services = |list: Vec<SrvRecord>| {
        Ok(Answer {
            records: Records::Services(list),
            ttl: None,
        })
    };
    let target = |priority, name: &str| SrvRecord {
        priority,
        weight: 0,
        port: 5080,
        target: name.into(),
    };
    w.dns.insert(
        (QueryKind::Naptr, "lk.example.test".into()),
        Ok(Answer {
            records: Records::Naptr(vec![]),
            ttl: None,
        }),
    );
    w.dns.insert(
        (QueryKind::Srv, "_sip._udp.lk.example.test".into()),
        services(vec![
            target(20, "lk2.example.test"),
            target(10, "lk1.example.test"),
        ]),
    );
    for name in ["_sip._tcp.lk.example.test", "_sips._tcp.lk.example.test"] {
        w.dns
            .insert((QueryKind::Srv, name.into()), services(vec![]));
    }
    w.dns.insert(
        (QueryKind::Address, "lk1.example.test".into()),
        a(&livekit().ip().to_string()),
    );
    w.dns.insert(
        (QueryKind::Address, "lk2.example.test".into()),
        a(&second.ip().to_string()),
    );
    // The first INVITE goes to the priority-10 target, which is overloaded.
    let out = place(&mut w, "c503");
    let before = w.sent.len();
    feed(
        &mut w,
        livekit(),
        &response(&out, "503 Service Unavailable", Some("lk"), "", ""),
    );
    let to_second = sent_to(&w, second, before);
    assert!(
        to_second
            .iter()
            .any(|m| m.starts_with("INVITE sip:+4930123456@lk.example.test ")),
        "the INVITE went to the next target: {to_second:?}"
    );
    assert!(
        sent_to(&w, support::calls::caller(), before)
            .iter()
            .all(|m| !m.starts_with("SIP/2.0 503")),
        "the caller does not hear the first target's 503"
    );
}
