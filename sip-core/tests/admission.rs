//! Who may call (issue 9, admission), through the controller in virtual time: an INVITE
//! from a provider's registrar address is the provider's (it becomes a call: here,
//! with no destination configured, one without a route), one from anywhere else is refused with 403 — or dropped, unanswered, with
//! `SIP_REJECT_UNKNOWN=drop` — and counted; `SIP_ALLOWED_SOURCES` admits more sources.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// Virtual time is anchored once with `Instant::now()`; everything after adds durations.
#![allow(clippy::disallowed_methods)]

mod support;

use sip_core::{Command, Input, RejectUnknown};
use std::net::SocketAddr;
use std::time::Duration;
use support::{config, registered, World, LOCAL, REGISTRAR};

const STRANGER: &str = "203.0.113.5:5060";

/// What an admitted INVITE hears when no destination is configured: it became a call
/// (100 Trying) that has no route.
const ADMITTED: [&str; 2] = [
    "SIP/2.0 100 Trying",
    "SIP/2.0 404 Not Found: no route for this number",
];

/// The `line=` token of our registered Contact.
fn line_token(w: &World) -> String {
    let (_, _, register) = w.registers()[0];
    let contact = support::header(register, "Contact").unwrap();
    let at = contact.find("line=").unwrap() + 5;
    contact[at..].split(['>', ';']).next().unwrap().to_owned()
}

fn invite(from: &str, request_uri: &str, call_id: &str) -> Vec<u8> {
    format!(
        "INVITE {request_uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bK-{call_id}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+15550100@{from}>;tag=f-{call_id}\r\n\
         To: <sip:+4930123456@198.51.100.1>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:+15550100@{from}>\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Feeds an INVITE from `from` and returns the status lines sent back to it.
fn call(w: &mut World, from: &str, request_uri: &str, call_id: &str) -> Vec<String> {
    let remote: SocketAddr = from.parse().unwrap();
    let before = w.sent.len();
    w.input(Input::Datagram {
        local: LOCAL.parse().unwrap(),
        remote,
        payload: invite(from, request_uri, call_id),
    });
    w.sent[before..]
        .iter()
        .filter(|(_, to, _)| *to == remote)
        .map(|(_, _, m)| m.lines().next().unwrap().to_owned())
        .collect()
}

#[test]
fn a_provider_is_admitted_and_a_stranger_gets_403_counted() {
    let mut w = registered(config());
    let line = line_token(&w);
    let provider_addr = format!("{REGISTRAR}:5060");
    let ours = format!("sip:alice@198.51.100.1:5070;line={line}");
    assert_eq!(call(&mut w, &provider_addr, &ours, "c1"), ADMITTED);
    // The same Request-URI, token and all, from an address that is no provider's.
    assert_eq!(
        call(&mut w, STRANGER, &ours, "c2"),
        ["SIP/2.0 403 Forbidden"]
    );
    assert_eq!(
        call(&mut w, STRANGER, "sip:+4930123456@198.51.100.1", "c3"),
        ["SIP/2.0 403 Forbidden"]
    );
    let calls = &w.core.stats().calls;
    assert_eq!(calls.get("refused_unknown_source"), Some(&2));
    assert_eq!(calls.get("no_route"), Some(&1));
}

#[test]
fn drop_mode_answers_a_stranger_nothing() {
    let mut cfg = config();
    cfg.calls.reject_unknown = RejectUnknown::Drop;
    let mut w = registered(cfg);
    assert!(call(&mut w, STRANGER, "sip:+4930123456@198.51.100.1", "c1").is_empty());
    assert_eq!(w.core.stats().calls.get("refused_unknown_source"), Some(&1));
    // A provider still hears an answer.
    let provider_addr = format!("{REGISTRAR}:5060");
    assert_eq!(
        call(&mut w, &provider_addr, "sip:alice@198.51.100.1:5070", "c2"),
        ADMITTED
    );
}

#[test]
fn allowed_sources_admit_more_and_a_removed_provider_no_longer_calls() {
    let mut cfg = config();
    cfg.calls.allowed_sources = vec!["203.0.113.0/24".parse().unwrap()];
    let mut w = registered(cfg);
    assert_eq!(
        call(&mut w, STRANGER, "sip:+4930123456@198.51.100.1", "c1"),
        ADMITTED
    );
    assert_eq!(
        call(
            &mut w,
            "203.0.114.5:5060",
            "sip:+4930123456@198.51.100.1",
            "c2"
        ),
        ["SIP/2.0 403 Forbidden"]
    );
    // The provider leaves the list: its registrar's address admits nothing any more.
    let provider_addr = format!("{REGISTRAR}:5060");
    assert_eq!(
        call(&mut w, &provider_addr, "sip:alice@198.51.100.1:5070", "c3"),
        ADMITTED
    );
    w.providers.clear();
    w.input(Input::Command(Command::Resync));
    w.run_for(Duration::from_secs(5));
    assert_eq!(
        call(&mut w, &provider_addr, "sip:alice@198.51.100.1:5070", "c4"),
        ["SIP/2.0 403 Forbidden"]
    );
}
