//! OPTIONS keep-alives to UDP registrars (issue 10, `SIP_KEEPALIVE_INTERVAL`): one per
//! registrar address per interval while a binding is held there, whatever the number
//! of accounts; silence announced once per outage, and the recovery once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// Virtual time is anchored once with `Instant::now()`; everything after adds durations.
#![allow(clippy::disallowed_methods)]

mod support;

use sip_core::{Config, Event};
use std::time::Duration;
use support::registrar::{Behaviour, Registrar};
use support::{config, provider, World};

fn keepalive_config(every: Option<Duration>) -> Config {
    let mut cfg = config();
    cfg.streams.keepalive = every;
    cfg
}

fn world(every: Option<Duration>, answer_options: bool) -> World {
    let behaviour = Behaviour {
        answer_options,
        ..Behaviour::default()
    };
    let registrar = Registrar::new(&[("alice", "pw"), ("bob", "pw")], behaviour);
    let providers = vec![provider("p1", "alice", "pw"), provider("p2", "bob", "pw")];
    World::new(keepalive_config(every), registrar, providers)
}

fn options_sent(w: &World) -> Vec<Duration> {
    w.sent
        .iter()
        .filter(|(_, _, m)| m.starts_with("OPTIONS "))
        .map(|(t, _, _)| *t)
        .collect()
}

fn silences(w: &World) -> (usize, usize) {
    let count = |f: fn(&Event) -> bool| w.events.iter().filter(|(_, e)| f(e)).count();
    (
        count(|e| matches!(e, Event::KeepaliveUnanswered { .. })),
        count(|e| matches!(e, Event::KeepaliveAnswered { .. })),
    )
}

#[test]
fn one_options_per_registrar_per_interval_for_all_its_accounts() {
    let mut w = world(Some(Duration::from_secs(30)), true);
    w.run_for(Duration::from_secs(125));
    let sent = options_sent(&w);
    assert_eq!(
        sent,
        [30, 60, 90, 120].map(Duration::from_secs),
        "two accounts, one registrar: one OPTIONS each 30 s"
    );
    let m = &w
        .sent
        .iter()
        .find(|(_, _, m)| m.starts_with("OPTIONS "))
        .unwrap()
        .2;
    assert!(
        m.starts_with("OPTIONS sip:192.0.2.10:5060 SIP/2.0\r\n"),
        "{m}"
    );
    assert!(
        support::header(m, "Via")
            .unwrap()
            .starts_with("SIP/2.0/UDP 198.51.100.1:5070;"),
        "{m}"
    );
    assert_eq!(silences(&w), (0, 0), "answered");
}

#[test]
fn a_silent_registrar_is_announced_once_and_its_recovery_once() {
    let mut w = world(Some(Duration::from_secs(30)), false);
    w.run_for(Duration::from_secs(200));
    assert_eq!(silences(&w), (1, 0), "once per outage, not per OPTIONS");
    // No pile-up: a round skips a registrar whose OPTIONS is still unanswered (each is
    // retransmitted by Timer E until Timer F, 32 s): new ones at 30, 90 and 150 s.
    let branches: std::collections::BTreeSet<&str> = w
        .sent
        .iter()
        .filter(|(_, _, m)| m.starts_with("OPTIONS "))
        .filter_map(|(_, _, m)| support::header(m, "Via"))
        .collect();
    assert_eq!(branches.len(), 3, "{branches:?}");
    w.registrar.behaviour.answer_options = true;
    w.run_for(Duration::from_secs(100));
    assert_eq!(silences(&w), (1, 1));
}

#[test]
fn no_keepalive_without_an_interval() {
    let mut w = world(None, true);
    w.run_for(Duration::from_secs(300));
    assert!(options_sent(&w).is_empty());
}
