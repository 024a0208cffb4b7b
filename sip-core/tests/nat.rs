//! NAT learning (issue 10, "NAT"): the registrar's `received`/`rport` (RFC 3581) say
//! where our REGISTER came from; when that differs from what we advertised, Contact and
//! Via say it from then on, a binding made at the old address is replaced in one
//! REGISTER (the old Contact with `expires=0`), `SIP_PUBLIC_ADDRESS` still wins, and
//! calls from that provider advertise the learnt address too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// Virtual time is anchored once with `Instant::now()`; everything after adds durations.
#![allow(clippy::disallowed_methods)]

mod support;

use sip_core::{Config, Event, RegisterStatus};
use std::net::SocketAddr;
use std::time::Duration;
use support::registrar::{Behaviour, Registrar};
use support::{config, header, provider, World};

/// Where the registrar sees our requests come from.
const PUBLIC: &str = "203.0.113.7:40000";

fn public() -> SocketAddr {
    PUBLIC.parse().unwrap()
}

/// No `SIP_PUBLIC_ADDRESS`: what we advertise is ours to find out.
fn unconfigured() -> Config {
    Config {
        contact_host: None,
        ..config()
    }
}

fn world(cfg: Config, nat: Option<SocketAddr>, nat_port_step: u16) -> World {
    let behaviour = Behaviour {
        nat,
        nat_port_step,
        ..Behaviour::default()
    };
    let registrar = Registrar::new(&[("alice", "pw")], behaviour);
    World::new(cfg, registrar, vec![provider("p1", "alice", "pw")])
}

fn registered(w: &World) -> bool {
    w.last_report("p1").map(|r| r.register_status) == Some(RegisterStatus::Registered)
}

fn learnt(w: &World) -> Vec<SocketAddr> {
    w.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::PublicAddressLearned { seen, .. } => Some(*seen),
            _ => None,
        })
        .collect()
}

fn contacts(w: &World) -> Vec<String> {
    w.registers()
        .iter()
        .map(|(_, _, m)| header(m, "Contact").unwrap().to_owned())
        .collect()
}

#[test]
fn a_nat_seen_in_the_challenge_is_advertised_before_any_binding_is_made() {
    let mut w = world(unconfigured(), Some(public()), 0);
    w.run_for(Duration::from_secs(5));
    assert!(registered(&w));
    let regs = w.registers();
    assert_eq!(
        regs.len(),
        2,
        "the challenged REGISTER and the authenticated one"
    );
    assert!(!regs[0].2.contains(PUBLIC));
    let second = &regs[1].2;
    assert!(
        header(second, "Contact")
            .unwrap()
            .starts_with(&format!("<sip:alice@{PUBLIC};line=")),
        "{second}"
    );
    assert!(header(second, "Via")
        .unwrap()
        .starts_with(&format!("SIP/2.0/UDP {PUBLIC};branch=")));
    // The 401 made no binding: nothing to remove, and no re-REGISTER.
    assert!(contacts(&w).iter().all(|c| !c.contains("expires=0")));
    assert_eq!(learnt(&w), [public()]);
    // Refreshes keep it, without a word more.
    w.run_for(Duration::from_secs(3 * 3600));
    assert!(w.registers().len() >= 4, "it refreshed");
    assert!(contacts(&w)[1..]
        .iter()
        .all(|c| c.starts_with(&format!("<sip:alice@{PUBLIC};line=")) && !c.contains(',')));
    assert_eq!(learnt(&w), [public()]);
    assert!(registered(&w));
}

#[test]
fn a_nat_that_appears_later_replaces_the_binding_in_one_register() {
    let mut w = world(unconfigured(), None, 0);
    w.run_for(Duration::from_secs(5));
    assert!(registered(&w));
    let before = contacts(&w).last().unwrap().clone();
    assert!(!before.contains(PUBLIC));
    let old = before
        .strip_prefix("<sip:alice@")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    // The network changes: from now on the registrar sees us through a NAT.
    w.registrar.behaviour.nat = Some(public());
    let sent_before = w.registers().len();
    w.run_for(Duration::from_secs(3600));
    let after: Vec<String> = contacts(&w)[sent_before..].to_vec();
    // The refresh (still the old address) is answered with the public one, and the
    // binding is replaced at once: the new Contact and the old one removed, together.
    assert!(
        after[0].contains(&old) && !after[0].contains(','),
        "{after:?}"
    );
    assert_eq!(
        after[1],
        format!(
            "<sip:alice@{PUBLIC};line={line}>, <sip:alice@{old};line={line}>;expires=0",
            line = line_of(&after[0])
        )
    );
    assert_eq!(
        after.len(),
        2,
        "and nothing more until the next refresh: {after:?}"
    );
    assert_eq!(learnt(&w), [public()]);
    // The next refresh has the new binding only.
    w.run_for(Duration::from_secs(3600));
    let later = contacts(&w);
    let last = later.last().unwrap();
    assert!(last.contains(PUBLIC) && !last.contains(','), "{last}");
    assert!(registered(&w));
}

fn line_of(contact: &str) -> &str {
    contact
        .split(";line=")
        .nth(1)
        .and_then(|r| r.split('>').next())
        .unwrap()
}

#[test]
fn a_nat_that_maps_every_request_anew_cannot_make_us_register_in_a_loop() {
    let mut w = world(unconfigured(), Some(public()), 1);
    w.run_for(Duration::from_secs(4 * 3600));
    assert!(registered(&w));
    // Refreshes every ~48 min of a 3,600 s grant: about five in four hours, each at
    // most followed by one replacement.
    let n = w.registers().len();
    assert!(n <= 14, "{n} REGISTERs in four hours");
    // Every REGISTER removes at most one old binding.
    assert!(contacts(&w)
        .iter()
        .all(|c| c.matches("expires=0").count() <= 1));
}

#[test]
fn sip_public_address_wins_over_what_the_registrar_saw() {
    let mut w = world(config(), Some(public()), 0);
    w.run_for(Duration::from_secs(2 * 3600));
    assert!(registered(&w));
    assert!(contacts(&w)
        .iter()
        .all(|c| c.starts_with("<sip:alice@198.51.100.1:5070;line=")));
    assert!(learnt(&w).is_empty());
}

#[test]
fn calls_from_a_provider_behind_the_nat_advertise_the_learnt_address() {
    use support::calls::{answer_in, call_config, place};
    let cfg = Config {
        contact_host: None,
        ..call_config()
    };
    let mut w = world(cfg, Some(public()), 0);
    w.run_for(Duration::from_secs(5));
    assert!(registered(&w));
    let out = place(&mut w, "nat-1");
    let ok = answer_in(&mut w, &out);
    assert_eq!(
        header(&ok, "Contact"),
        Some(format!("<sip:trunkline@{PUBLIC}>").as_str())
    );
}

#[test]
fn a_registrar_that_keeps_the_replaced_binding_does_not_shorten_our_grant() {
    // Seen against a misconfigured Kamailio: the 200 to the replacing REGISTER listed
    // the old binding (our line token, 20 s left) before the new one. Taking the old
    // one's grant refreshed every few seconds until it lapsed.
    let mut w = world(unconfigured(), None, 0);
    w.run_for(Duration::from_secs(5));
    assert!(registered(&w));
    w.registrar.behaviour.nat = Some(public());
    w.registrar.behaviour.keep_removed = true;
    let sent_before = w.registers().len();
    w.run_for(Duration::from_secs(3600));
    let after = &contacts(&w)[sent_before..];
    assert!(
        after.len() >= 2 && after[1].contains(','),
        "the replacement: {after:?}"
    );
    // The refresh that learnt the NAT, the replacement, then refreshes of the
    // hour's grant only (the first within its spread, at most half of it).
    assert!(
        after.len() <= 4,
        "{} REGISTERs in an hour: {after:?}",
        after.len()
    );
    assert!(registered(&w));
}
