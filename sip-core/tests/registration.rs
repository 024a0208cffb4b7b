//! Registration scenarios: the controller in virtual time against a scripted registrar.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// Virtual time is anchored once with `Instant::now()`; everything after adds durations.
#![allow(clippy::disallowed_methods)]

mod support;

use sip_core::{Command, Config, Input, Output, RegisterStatus, StatusReport};
use std::time::Duration;
use support::registrar::{Behaviour, Registrar};
use support::{config, header, numbered, provider, World};

const S: fn(u64) -> Duration = Duration::from_secs;

fn registered(r: &StatusReport) -> bool {
    r.register_status == RegisterStatus::Registered
}

#[test]
fn registers_with_digest_and_refreshes_before_granted_expiry() {
    let reg = Registrar::new(
        &[("alice", "s3cret-alice")],
        Behaviour {
            max_expires: 20,
            ..Behaviour::default()
        },
    );
    let mut w = World::new(config(), reg, vec![provider("p1", "alice", "s3cret-alice")]);
    w.run_for(S(1));
    let last = w.last_report("p1").unwrap();
    assert!(registered(last), "{:?}", w.reports);
    assert!(last.last_register_at.is_some());
    assert_eq!(
        w.reports_for("p1")[0].register_status,
        RegisterStatus::Pending
    );

    // Granted 20 s: refresh at 10 s (never before half), well before 20 s.
    w.run_for(S(60));
    let regs = w.registers();
    let call_ids: Vec<_> = regs
        .iter()
        .map(|(_, _, m)| header(m, "Call-ID").unwrap())
        .collect();
    assert!(
        call_ids.windows(2).all(|p| p[0] == p[1]),
        "one Call-ID: {call_ids:?}"
    );
    let cseqs: Vec<u32> = regs
        .iter()
        .map(|(_, _, m)| {
            header(m, "CSeq")
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(
        cseqs.windows(2).all(|p| p[0] < p[1]),
        "CSeq increases: {cseqs:?}"
    );
    // Refreshes send credentials pre-emptively: after the first exchange, no more 401s.
    let refreshes: Vec<_> = regs.iter().skip(2).collect();
    assert!(refreshes.len() >= 5, "refreshes: {}", refreshes.len());
    assert!(refreshes
        .iter()
        .all(|(_, _, m)| header(m, "Authorization").is_some()));
    // Every refresh lands between half and the whole of the 20 s grant.
    let times: Vec<Duration> = regs.iter().skip(1).map(|(t, _, _)| *t).collect();
    for gap in times.windows(2).map(|p| p[1] - p[0]) {
        assert!(gap >= S(10) && gap < S(20), "refresh gap {gap:?}");
    }
    // The backend hears of every refresh (lastRegisterAt moves).
    let regd: Vec<_> = w
        .reports_for("p1")
        .into_iter()
        .filter(|r| registered(r))
        .collect();
    assert!(regd.len() >= 5);
    assert!(regd
        .windows(2)
        .all(|p| p[0].last_register_at < p[1].last_register_at));
    assert_eq!(w.registrar.bindings.len(), 1);
}

#[test]
fn wrong_password_is_rejected_after_one_more_try_and_retried_slowly() {
    let reg = Registrar::new(&[("bob", "right")], Behaviour::default());
    let mut w = World::new(config(), reg, vec![provider("p2", "bob", "wrong")]);
    w.run_for(S(5));
    let last = w.last_report("p2").unwrap();
    assert_eq!(last.register_status, RegisterStatus::Failed);
    let err = last.register_error.as_deref().unwrap();
    assert!(
        err.contains("authentication rejected by example.test"),
        "{err}"
    );
    // First REGISTER, answer, one more answer for the fresh nonce: three, then stop.
    assert_eq!(w.registers().len(), 3);
    // Rejected credentials are retried, slowly (minutes, not seconds).
    w.run_for(S(120));
    assert_eq!(w.registers().len(), 3);
    w.run_for(S(600));
    assert!(w.registers().len() > 3);
}

#[test]
fn interval_too_brief_retries_with_min_expires() {
    let reg = Registrar::new(
        &[("carol", "pw")],
        Behaviour {
            min_expires: Some(600),
            ..Behaviour::default()
        },
    );
    let mut p = provider("p3", "carol", "pw");
    p.expires = Some(300);
    let mut w = World::new(config(), reg, vec![p]);
    w.run_for(S(2));
    assert!(registered(w.last_report("p3").unwrap()), "{:?}", w.reports);
    let last = w.registers().last().unwrap().2.clone();
    assert_eq!(header(&last, "Expires"), Some("600"));
    let b = &w.registrar.bindings["carol"];
    assert!(b.expires_at >= S(600));
}

#[test]
fn silence_fails_with_no_response_then_backs_off_and_recovers() {
    let reg = Registrar::new(
        &[("dave", "pw")],
        Behaviour {
            silent: true,
            ..Behaviour::default()
        },
    );
    let mut w = World::new(config(), reg, vec![provider("p4", "dave", "pw")]);
    w.run_for(S(40));
    let last = w.last_report("p4").unwrap();
    assert_eq!(last.register_status, RegisterStatus::Failed);
    assert_eq!(
        last.register_error.as_deref(),
        Some("no response from 192.0.2.10:5060")
    );
    // Timer E: retransmissions at 0.5, 1.5, 3.5, 7.5, 11.5 … (T1 doubling to T2), and
    // Timer F ends the transaction at 32 s: 11 sends in all.
    let t0 = w.registers()[0].0;
    let first: Vec<u128> = w
        .registers()
        .iter()
        .take(5)
        .map(|(t, _, _)| (*t - t0).as_millis())
        .collect();
    assert_eq!(first, vec![0, 500, 1500, 3500, 7500]);
    let in_first_txn = w
        .registers()
        .iter()
        .filter(|(t, _, _)| *t - t0 < S(32))
        .count();
    assert_eq!(in_first_txn, 11);
    // The registrar comes back: within the backoff the provider registers.
    w.registrar.behaviour.silent = false;
    w.run_for(S(400));
    assert!(registered(w.last_report("p4").unwrap()));
}

#[test]
fn server_error_honours_retry_after_and_never_gives_up() {
    let reg = Registrar::new(
        &[("erin", "pw")],
        Behaviour {
            fixed: Some((503, "Service Unavailable", vec!["Retry-After: 120".into()])),
            ..Behaviour::default()
        },
    );
    let mut w = World::new(config(), reg, vec![provider("p5", "erin", "pw")]);
    w.run_for(S(1));
    let last = w.last_report("p5").unwrap();
    assert_eq!(last.register_status, RegisterStatus::Failed);
    assert!(last
        .register_error
        .as_deref()
        .unwrap()
        .contains("503 Service Unavailable"));
    w.run_for(S(118));
    assert_eq!(w.registers().len(), 1, "Retry-After: 120 honoured");
    w.run_for(S(3600 * 6));
    let n = w.registers().len();
    assert!(n > 10, "still retrying after hours: {n}");
    w.registrar.behaviour.fixed = None;
    w.run_for(S(400));
    assert!(registered(w.last_report("p5").unwrap()));
}

#[test]
fn invalid_provider_fails_naming_the_field_and_sends_nothing() {
    let reg = Registrar::new(&[], Behaviour::default());
    let bad = provider("p6", "eve\r\nX-Injected: 1", "pw");
    let mut no_host = provider("p7", "frank", "pw");
    no_host.host = String::new();
    let mut bad_port = provider("p8", "gina", "pw");
    bad_port.port = Some(70000);
    let mut w = World::new(config(), reg, vec![bad, no_host, bad_port]);
    w.run_for(S(5));
    assert!(w.sent.is_empty(), "{:?}", w.sent);
    let e6 = w.last_report("p6").unwrap().register_error.clone().unwrap();
    assert!(e6.contains("`username`"), "{e6}");
    let e7 = w.last_report("p7").unwrap().register_error.clone().unwrap();
    assert!(e7.contains("`host`"), "{e7}");
    let e8 = w.last_report("p8").unwrap().register_error.clone().unwrap();
    assert!(e8.contains("`port`"), "{e8}");
    for id in ["p6", "p7", "p8"] {
        assert_eq!(
            w.last_report(id).unwrap().register_status,
            RegisterStatus::Failed
        );
    }
}

#[test]
fn stale_nonce_is_answered_without_failing() {
    let reg = Registrar::new(
        &[("hank", "pw")],
        Behaviour {
            max_expires: 60,
            nonce_ttl: Some(S(30)),
            ..Behaviour::default()
        },
    );
    let mut w = World::new(config(), reg, vec![provider("p9", "hank", "pw")]);
    w.run_for(S(300));
    assert!(w
        .reports_for("p9")
        .iter()
        .all(|r| r.register_status != RegisterStatus::Failed));
    assert!(registered(w.last_report("p9").unwrap()));
}

#[test]
fn sha256_challenge_and_expires_header_grant() {
    let reg = Registrar::new(
        &[("ivy", "pw")],
        Behaviour {
            sha256: true,
            max_expires: 100,
            expires_header_only: true,
            ..Behaviour::default()
        },
    );
    let mut w = World::new(config(), reg, vec![provider("p10", "ivy", "pw")]);
    w.run_for(S(2));
    assert!(registered(w.last_report("p10").unwrap()), "{:?}", w.reports);
    assert!(w.registrar.authorizations[0].contains("algorithm=SHA-256"));
    // Granted 100 s via Expires: refreshed at 50..80 s, not at 80 % of the asked 3600.
    w.run_for(S(90));
    assert!(w.registers().len() >= 3);
}

#[test]
fn shutdown_unregisters_and_reports_then_completes() {
    let reg = Registrar::new(&[("jo", "pw")], Behaviour::default());
    let mut w = World::new(config(), reg, vec![provider("p11", "jo", "pw")]);
    w.run_for(S(2));
    assert_eq!(w.registrar.bindings.len(), 1);
    assert!(!w.core.shutting_down());
    w.input(Input::Command(Command::Shutdown { grace: S(5) }));
    // Readiness drops at once: calls must stop arriving before the bindings go.
    assert!(w.core.shutting_down());
    w.run_for(S(6));
    assert!(w.registrar.bindings.is_empty());
    let last_reg = w.registers().last().unwrap().2.clone();
    assert_eq!(header(&last_reg, "Expires"), Some("0"));
    assert!(header(&last_reg, "Contact")
        .unwrap()
        .ends_with(";expires=0"));
    let last = w.last_report("p11").unwrap();
    assert_eq!(last.register_status, RegisterStatus::Pending);
    assert!(last
        .register_error
        .as_deref()
        .unwrap()
        .contains("shut down"));
    assert!(w.shutdown_complete());
    assert!(matches!(w.core.poll_output(), Output::Timeout(None)));
}

#[test]
fn shutdown_completes_within_grace_when_registrar_is_silent() {
    let reg = Registrar::new(&[("kim", "pw")], Behaviour::default());
    let mut w = World::new(config(), reg, vec![provider("p12", "kim", "pw")]);
    w.run_for(S(2));
    w.registrar.behaviour.silent = true;
    w.input(Input::Command(Command::Shutdown { grace: S(4) }));
    w.run_for(S(1));
    assert!(!w.shutdown_complete());
    w.run_for(S(3));
    assert!(w.shutdown_complete());
    // The backend still learns that the registration is no longer kept.
    let last = w.last_report("p12").unwrap();
    assert_eq!(last.register_status, RegisterStatus::Pending);
    assert!(last.register_error.as_deref().unwrap().contains("lapses"));
}

#[test]
fn backend_outage_loses_no_status() {
    let reg = Registrar::new(
        &[("lou", "pw")],
        Behaviour {
            max_expires: 60,
            ..Behaviour::default()
        },
    );
    let mut w = World::new(config(), reg, vec![provider("p13", "lou", "pw")]);
    w.run_for(S(1));
    w.backend = support::BackendMode::Down;
    w.registrar.behaviour.silent = true;
    w.run_for(S(600));
    w.backend = support::BackendMode::Up;
    // The first report that gets through (its backoff is capped at 60 s) tells the
    // core the backend is back; everything waiting goes out then, not a backoff later.
    w.run_for(S(61));
    // The backend ends up with the latest status the core holds.
    let view = w.core.registrations();
    let latest = w.last_report("p13").unwrap();
    assert_eq!(latest.register_status, view[0].status);
    assert_eq!(latest.register_error, view[0].error);
    assert_eq!(latest.register_status, RegisterStatus::Failed);
}

#[test]
fn pacer_spreads_the_first_registrations() {
    let (reg, providers) = numbered(100, "u", "p", Behaviour::default());
    let cfg = Config {
        register_rate: 50,
        ..config()
    };
    let mut w = World::new(cfg, reg, providers);
    w.run_for(S(10));
    let times: Vec<Duration> = w.registers().iter().map(|(t, _, _)| *t).collect();
    // 200 REGISTERs (challenge + answer each) at 50/s: no second holds more than 50.
    for s in 0..10 {
        let n = times
            .iter()
            .filter(|t| **t >= S(s) && **t < S(s + 1))
            .count();
        assert!(n <= 51, "{n} REGISTERs in second {s}");
    }
    assert_eq!(w.registrar.bindings.len(), 100);
}

#[test]
fn resync_leaves_unchanged_providers_alone() {
    let reg = Registrar::new(&[("mo", "pw"), ("ned", "pw")], Behaviour::default());
    let cfg = Config {
        sync_interval: Some(S(30)),
        ..config()
    };
    let mut w = World::new(
        cfg,
        reg,
        vec![provider("a", "mo", "pw"), provider("b", "ned", "pw")],
    );
    // Once registered, only the refreshes and the sync are armed.
    w.run_for(S(15));
    let before = w.registers().len();
    let timers = w.core.timer_count();
    assert_eq!(timers, 3, "two refreshes and the sync");
    w.run_for(S(100));
    assert!(w.fetches >= 4);
    assert_eq!(
        w.registers().len(),
        before,
        "no REGISTER for unchanged providers"
    );
    assert_eq!(w.core.timer_count(), timers, "no new timer");
    // Remove b, change a's password: b un-registers, a registers anew.
    w.providers = vec![provider("a", "mo", "pw2")];
    w.registrar.accounts.insert("mo".into(), "pw2".into());
    w.run_for(S(40));
    assert!(!w.registrar.bindings.contains_key("ned"));
    assert!(registered(w.last_report("a").unwrap()));
}

#[test]
fn passwords_never_leave_in_clear() {
    let secret = "Pa55-unique-XYZZY";
    let reg = Registrar::new(&[("zed", secret)], Behaviour::default());
    let mut w = World::new(
        config(),
        reg,
        vec![
            provider("pz", "zed", secret),
            provider("bad", "a\nb", secret),
        ],
    );
    w.run_for(S(30));
    w.input(Input::Command(Command::Shutdown { grace: S(2) }));
    w.run_for(S(3));
    for (_, _, m) in &w.sent {
        assert!(!m.contains(secret));
    }
    for (_, e) in &w.events {
        assert!(!format!("{e:?}").contains(secret));
    }
    for (_, _, r) in &w.reports {
        assert!(!serde_json::to_string(r).unwrap().contains(secret));
    }
    assert!(!format!("{:?}", w.core).contains(secret));
}

#[test]
fn first_register_and_authorized_register_snapshots() {
    let reg = Registrar::new(&[("alice", "pw")], Behaviour::default());
    let mut w = World::new(config(), reg, vec![provider("p1", "alice", "pw")]);
    w.run_for(S(1));
    let regs = w.registers();
    insta::assert_snapshot!("first_register", regs[0].2);
    insta::assert_snapshot!("authorized_register", regs[1].2);
}

#[test]
fn restored_identity_refreshes_the_same_binding_with_a_higher_cseq() {
    use sip_core::{BindingIdentity, Event};
    let reg = Registrar::new(&[("pat", "pw")], Behaviour::default());
    let mut w = World::new(config(), reg, vec![provider("pp", "pat", "pw")]);
    w.run_for(S(2));
    let persisted: Vec<BindingIdentity> = w
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::BindingIdentity(b) => Some(b.clone()),
            _ => None,
        })
        .collect();
    let last = persisted.last().unwrap().clone();
    let sent_cseq: u32 = header(&w.registers().last().unwrap().2, "CSeq")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        last.next_cseq > sent_cseq,
        "reservation above every CSeq used"
    );
    let first_contact = header(&w.registers()[0].2, "Contact").unwrap().to_owned();

    // "Restart": a new controller restored with the persisted identity, same registrar.
    let registrar = w.registrar.clone();
    let mut w2 = World::new_restored(
        config(),
        registrar,
        vec![provider("pp", "pat", "pw")],
        vec![last.clone()],
    );
    w2.run_for(S(2));
    let first = &w2.registers()[0].2;
    assert_eq!(header(first, "Call-ID"), Some(last.call_id.as_str()));
    assert_eq!(header(first, "Contact"), Some(first_contact.as_str()));
    let cseq: u32 = header(first, "CSeq")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(cseq, last.next_cseq);
    assert_eq!(w2.registrar.bindings.len(), 1);
    assert!(registered(w2.last_report("pp").unwrap()));

    // A different account under the same provider id gets a fresh identity.
    let mut other = last;
    other.account = "someone@else:5060".into();
    let reg3 = Registrar::new(&[("pat", "pw")], Behaviour::default());
    let mut w3 = World::new_restored(
        config(),
        reg3,
        vec![provider("pp", "pat", "pw")],
        vec![other.clone()],
    );
    w3.run_for(S(2));
    // (Same seed, so the fresh Call-ID happens to repeat; the CSeq shows it is fresh.)
    assert_eq!(header(&w3.registers()[0].2, "CSeq"), Some("1 REGISTER"));
}

#[test]
fn after_an_outage_waiting_reports_go_out_as_soon_as_one_succeeds() {
    let (reg, providers) = numbered(50, "v", "q", Behaviour::default());
    let mut w = World::new(config(), reg, providers);
    w.backend = support::BackendMode::Down;
    w.run_for(S(600));
    assert!(w.reports.is_empty());
    w.backend = support::BackendMode::Up;
    // Reports retry at most every 60 s: the first one through releases the rest.
    w.run_for(S(61));
    let first = w.reports[0].0;
    let last = w.reports.last().unwrap().0;
    assert!(
        last - first < S(1),
        "all delivered together: {first:?}..{last:?}"
    );
    for i in 0..50 {
        assert!(registered(w.last_report(&format!("q{i}")).unwrap()));
    }
}

#[test]
fn shutdown_completes_as_soon_as_everything_is_unregistered_and_reported() {
    let (reg, providers) = numbered(200, "s", "r", Behaviour::default());
    let mut w = World::new(config(), reg, providers);
    w.run_for(S(10));
    let start = w.elapsed();
    w.input(Input::Command(Command::Shutdown { grace: S(5) }));
    w.run_for(S(6));
    let done = w
        .events
        .iter()
        .find(|(_, e)| matches!(e, sip_core::Event::ShutdownComplete))
        .map(|(t, _)| *t - start)
        .unwrap();
    assert!(w.registrar.bindings.is_empty());
    // Un-REGISTERs are paced over at most half the grace; completion follows the last
    // answer and report, it does not wait for the grace to run out.
    assert!(done < S(3), "shutdown took {done:?}");
}
