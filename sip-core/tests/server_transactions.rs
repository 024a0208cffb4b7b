//! Inbound requests through server transactions (RFC 3261 §17.2), through the
//! controller in virtual time: a retransmitted INVITE gets the same final response (same To-tag),
//! the ACK to it stops Timer G, an OPTIONS retransmission gets the same 200, and an
//! RFC 2543 request (no magic cookie) gets 400.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// Virtual time is anchored once with `Instant::now()`; everything after adds durations.
#![allow(clippy::disallowed_methods)]

mod support;

use sip_core::{Config, Input};
use std::net::SocketAddr;
use std::time::Duration;
use support::{config, registered, World, LOCAL, REGISTRAR};

fn request(method: &str, branch: &str, from: &str) -> Vec<u8> {
    format!(
        "{method} sip:alice@198.51.100.1:5070 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+15550100@{from}>;tag=f-1\r\n\
         To: <sip:+4930123456@198.51.100.1>\r\n\
         Call-ID: st-1\r\n\
         CSeq: 1 {}\r\n\
         Contact: <sip:+15550100@{from}>\r\n\
         Content-Length: 0\r\n\r\n",
        if method == "ACK" { "INVITE" } else { method }
    )
    .into_bytes()
}

/// Feeds `payload` from `from`; returns the messages sent back to it.
fn feed(w: &mut World, from: &str, payload: Vec<u8>) -> Vec<String> {
    let remote: SocketAddr = from.parse().unwrap();
    let before = w.sent.len();
    w.input(Input::Datagram {
        local: LOCAL.parse().unwrap(),
        remote,
        payload,
    });
    sent_to(w, before, remote)
}

fn sent_to(w: &World, before: usize, remote: SocketAddr) -> Vec<String> {
    w.sent[before..]
        .iter()
        .filter(|(_, to, _)| *to == remote)
        .map(|(_, _, m)| m.clone())
        .collect()
}

#[test]
fn a_retransmitted_invite_gets_the_same_final_and_its_ack_stops_timer_g() {
    let mut w = registered(config());
    let from = format!("{REGISTRAR}:5060");
    let remote: SocketAddr = from.parse().unwrap();
    // A provider's call with no destination configured: 100 Trying, then 404.
    let answers = feed(&mut w, &from, request("INVITE", "z9hG4bK-st1", &from));
    assert_eq!(answers.len(), 2);
    assert!(answers[0].starts_with("SIP/2.0 100 "), "{}", answers[0]);
    assert!(answers[1].starts_with("SIP/2.0 404 "), "{}", answers[1]);
    let first = vec![answers[1].clone()];
    let again = feed(&mut w, &from, request("INVITE", "z9hG4bK-st1", &from));
    assert_eq!(again, first, "byte-identical: same To-tag");
    // Unacknowledged, Timer G resends the same 480.
    let before = w.sent.len();
    w.run_for(Duration::from_millis(600));
    assert_eq!(sent_to(&w, before, remote), first);
    // The ACK is absorbed (no answer) and nothing more is resent.
    assert!(feed(&mut w, &from, request("ACK", "z9hG4bK-st1", &from)).is_empty());
    let before = w.sent.len();
    w.run_for(Duration::from_secs(40));
    assert!(sent_to(&w, before, remote)
        .iter()
        .all(|m| !m.starts_with("SIP/2.0 404")));
}

#[test]
fn options_retransmission_gets_the_same_200_and_rfc_2543_gets_400() {
    let mut w = registered(config());
    let from = "192.0.2.77:5060";
    let first = feed(&mut w, from, request("OPTIONS", "z9hG4bK-o1", from));
    assert_eq!(first.len(), 1);
    assert!(first[0].starts_with("SIP/2.0 200 OK"));
    assert_eq!(
        feed(&mut w, from, request("OPTIONS", "z9hG4bK-o1", from)),
        first
    );
    let old = feed(&mut w, from, request("OPTIONS", "1234", from));
    assert_eq!(old.len(), 1);
    assert!(old[0].starts_with("SIP/2.0 400 "), "{}", old[0]);
}

#[test]
fn past_the_server_transaction_cap_new_requests_are_answered_statelessly() {
    let cap = 500;
    let mut w = registered(Config {
        max_server_transactions: cap,
        ..config()
    });
    let from = "203.0.113.9:5060";
    for i in 0..cap {
        let answers = feed(
            &mut w,
            from,
            request("OPTIONS", &format!("z9hG4bK-cap-{i}"), from),
        );
        assert_eq!(answers.len(), 1);
    }
    assert_eq!(w.core.stats().stateless_answers, 0);
    // Still answered, but nothing more is held for it.
    let answers = feed(&mut w, from, request("OPTIONS", "z9hG4bK-cap-over", from));
    assert_eq!(answers.len(), 1);
    assert!(answers[0].starts_with("SIP/2.0 200 OK"), "{}", answers[0]);
    assert_eq!(w.core.stats().stateless_answers, 1);
    // An INVITE past the cap is an overload, not a stranger: 503, never the 403 of
    // admission (which it never went through).
    let answers = feed(&mut w, from, request("INVITE", "z9hG4bK-cap-invite", from));
    assert_eq!(answers.len(), 1);
    assert!(answers[0].starts_with("SIP/2.0 503 "), "{}", answers[0]);
    assert_eq!(w.core.stats().stateless_answers, 2);
    // Timer J (32 s) frees the table; new requests are held again.
    w.run_for(Duration::from_secs(40));
    let _ = feed(&mut w, from, request("OPTIONS", "z9hG4bK-cap-after", from));
    assert_eq!(w.core.stats().stateless_answers, 2);
}
