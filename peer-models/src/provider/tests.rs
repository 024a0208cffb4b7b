//! Unit tests of the model, in virtual time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::disallowed_methods)] // the tests anchor virtual time once

use super::*;

fn provider() -> Provider {
    Provider::new(
        ProviderConfig {
            local: "127.0.0.1:5070".parse().unwrap(),
            domain: "provider.test".to_owned(),
            timers: TimerValues::default(),
        },
        7,
    )
}

fn spec(ending: Ending) -> CallSpec {
    CallSpec {
        target: "127.0.0.1:5060".parse().unwrap(),
        request_uri: "sip:+15550001111@127.0.0.1:5060".to_owned(),
        to_uri: None,
        caller: "+15559998888".to_owned(),
        display_name: Some("Ada".to_owned()),
        extra_headers: vec![("X-Test".to_owned(), "1".to_owned())],
        ending,
        credentials: None,
        reinvite_after: None,
    }
}

fn request(bytes: &[u8]) -> Request {
    match message::parse(bytes).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => panic!("a response"),
    }
}

fn answer(req: &Request, status: u16, tag: Option<&str>) -> Vec<u8> {
    message::response_to(req, status, reason(status), tag)
        .header("Contact", "<sip:callee@127.0.0.1:5060>")
        .to_bytes()
}

#[test]
fn the_invite_carries_an_sdp_offer_and_retransmits_per_timer_a_until_timer_b() {
    let mut p = provider();
    let t0 = Instant::now();
    let (h, out) = p.place_call(t0, spec(Ending::Wait));
    let invite = request(&out[0].1);
    assert_eq!(invite.uri, "sip:+15550001111@127.0.0.1:5060");
    assert!(invite
        .headers
        .get("From")
        .unwrap()
        .starts_with("\"Ada\" <sip:+15559998888@"));
    assert_eq!(invite.headers.get("X-Test"), Some("1"));
    assert!(String::from_utf8_lossy(&invite.body).contains("m=audio"));
    // A at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; B at 32 s.
    let mut sent = 0;
    while let Some(at) = p.poll_timeout() {
        sent += p.handle_timeout(at).len();
    }
    assert_eq!(sent, 6);
    let r = p.call(h).unwrap();
    assert_eq!(r.invite_retransmissions, 6);
    assert_eq!(r.outcome, Some(CallOutcome::Timeout));
    assert_eq!(r.ended_at, Some(t0 + Duration::from_secs(32)));
}

#[test]
fn a_busy_answer_is_acked_hop_by_hop_and_again_when_retransmitted() {
    let mut p = provider();
    let t0 = Instant::now();
    let (h, out) = p.place_call(t0, spec(Ending::Wait));
    let invite = request(&out[0].1);
    let from: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    assert!(p
        .handle_datagram(t0, from, &answer(&invite, 100, None))
        .is_empty());
    let busy = answer(&invite, 486, Some("uas1"));
    let acks = p.handle_datagram(t0, from, &busy);
    let ack = request(&acks[0].1);
    assert_eq!(ack.method, "ACK");
    assert_eq!(top_branch(&ack.headers), top_branch(&invite.headers));
    assert_eq!(ack.headers.to_tag(), Some("uas1"));
    assert_eq!(ack.headers.get("CSeq"), Some("1 ACK"));
    assert_eq!(p.handle_datagram(t0, from, &busy).len(), 1);
    let r = p.call(h).unwrap();
    assert_eq!(r.outcome, Some(CallOutcome::Rejected(486)));
    assert_eq!((r.acks_sent, r.statuses.len()), (2, 2));
    // No retransmission after a provisional.
    while let Some(at) = p.poll_timeout() {
        assert!(p.handle_timeout(at).is_empty());
    }
}

#[test]
fn an_answer_gets_a_new_transaction_ack_and_a_bye_after_the_hold_time() {
    let mut p = provider();
    let t0 = Instant::now();
    let (h, out) = p.place_call(t0, spec(Ending::HangUpAfter(Duration::from_secs(5))));
    let invite = request(&out[0].1);
    let from: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let ok = answer(&invite, 200, Some("uas1"));
    let ack = request(&p.handle_datagram(t0, from, &ok)[0].1);
    assert_ne!(top_branch(&ack.headers), top_branch(&invite.headers));
    assert_eq!(ack.uri, "sip:callee@127.0.0.1:5060");
    // Timer A and B are dead after the answer: nothing leaves before the hold time.
    assert!(p
        .handle_timeout(t0 + Duration::from_millis(4_999))
        .is_empty());
    let bye = request(&p.handle_timeout(t0 + Duration::from_secs(5))[0].1);
    assert_eq!(bye.method, "BYE");
    assert_eq!(bye.headers.get("CSeq"), Some("2 BYE"));
    assert!(p
        .handle_datagram(t0, from, &answer(&bye, 200, None))
        .is_empty());
    assert_eq!(
        p.call(h).unwrap().outcome,
        Some(CallOutcome::HungUp {
            bye_status: Some(200)
        })
    );
}

#[test]
fn in_dialog_requests_are_answered_and_a_stranger_gets_481() {
    let mut p = provider();
    let t0 = Instant::now();
    let (h, out) = p.place_call(t0, spec(Ending::Wait));
    let invite = request(&out[0].1);
    let from: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    p.handle_datagram(t0, from, &answer(&invite, 200, Some("uas1")));
    let from_hdr = invite.headers.get("From").unwrap();
    let in_dialog = |method: &str, n: u32| {
        format!(
            "{method} sip:provider@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{method}\r\n\
             From: <sip:+15550001111@127.0.0.1>;tag=uas1\r\nTo: {from_hdr}\r\nCall-ID: {}\r\nCSeq: {n} {method}\r\n\
             Content-Length: 0\r\n\r\n",
            invite.headers.call_id().unwrap()
        )
        .into_bytes()
    };
    let reinvite = p.handle_datagram(t0, from, &in_dialog("INVITE", 1));
    assert!(String::from_utf8_lossy(&reinvite[0].1).starts_with("SIP/2.0 200"));
    assert!(String::from_utf8_lossy(&reinvite[0].1).contains("m=audio"));
    let options = p.handle_datagram(t0, from, &in_dialog("OPTIONS", 2));
    assert!(String::from_utf8_lossy(&options[0].1).starts_with("SIP/2.0 200"));
    let bye = p.handle_datagram(t0, from, &in_dialog("BYE", 3));
    assert!(String::from_utf8_lossy(&bye[0].1).starts_with("SIP/2.0 200"));
    let r = p.call(h).unwrap();
    assert_eq!(r.outcome, Some(CallOutcome::RemoteHangUp));
    assert_eq!(r.requests_received.len(), 3);
    let stranger = b"BYE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKs\r\n\
        From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: nope\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n";
    let out = p.handle_datagram(t0, from, stranger);
    assert!(String::from_utf8_lossy(&out[0].1).starts_with("SIP/2.0 481"));
}

#[test]
fn a_cancel_waits_for_a_provisional_and_a_487_ends_the_call_cancelled() {
    let mut p = provider();
    let t0 = Instant::now();
    let (h, out) = p.place_call(t0, spec(Ending::CancelAfter(Duration::from_millis(100))));
    let invite = request(&out[0].1);
    let from: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    assert!(p.handle_timeout(t0 + Duration::from_millis(100)).is_empty());
    let t = t0 + Duration::from_millis(200);
    let cancel = request(&p.handle_datagram(t, from, &answer(&invite, 180, Some("u")))[0].1);
    assert_eq!(cancel.method, "CANCEL");
    assert_eq!(top_branch(&cancel.headers), top_branch(&invite.headers));
    assert_eq!(cancel.headers.to_tag(), None);
    p.handle_datagram(t, from, &answer(&cancel, 200, Some("u")));
    let ack = p.handle_datagram(t, from, &answer(&invite, 487, Some("u")));
    assert_eq!(request(&ack[0].1).method, "ACK");
    assert_eq!(p.call(h).unwrap().outcome, Some(CallOutcome::Cancelled));
}

#[test]
fn a_retransmitted_2xx_gets_the_same_ack_and_a_2xx_after_our_cancel_is_ended_with_bye() {
    let mut p = provider();
    let t0 = Instant::now();
    let (h, out) = p.place_call(t0, spec(Ending::CancelAfter(Duration::from_secs(1))));
    let invite = request(&out[0].1);
    let from: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    p.handle_datagram(t0, from, &answer(&invite, 180, Some("u")));
    let cancel = p.handle_timeout(t0 + Duration::from_secs(1));
    assert_eq!(request(&cancel[0].1).method, "CANCEL");
    // The callee answered before it saw the CANCEL: ACK it, then BYE at once.
    let t = t0 + Duration::from_millis(1_010);
    let ok = answer(&invite, 200, Some("u"));
    let out = p.handle_datagram(t, from, &ok);
    let methods: Vec<String> = out.iter().map(|d| request(&d.1).method).collect();
    assert_eq!(methods, ["ACK", "BYE"]);
    let again = p.handle_datagram(t, from, &ok);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].1, out[0].1);
    let r = p.call(h).unwrap();
    assert_eq!((r.acks_sent, r.outcome), (2, None));
    assert_eq!(r.bye_sent_at, Some(t));
}

#[test]
fn an_unanswered_bye_is_retransmitted_until_timer_f_and_then_given_up() {
    let mut p = provider();
    let t0 = Instant::now();
    let (h, out) = p.place_call(t0, spec(Ending::HangUpAfter(Duration::from_secs(1))));
    let invite = request(&out[0].1);
    let from: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    p.handle_datagram(t0, from, &answer(&invite, 200, Some("u")));
    let mut byes = 0;
    while let Some(at) = p.poll_timeout() {
        byes += p.handle_timeout(at).len();
    }
    // The BYE at 1 s, then Timer E at 0.5, 1, 2, 4, 4 … s until Timer F at 1 + 32 s.
    assert_eq!(byes, 11);
    let r = p.call(h).unwrap();
    assert_eq!(r.outcome, Some(CallOutcome::HungUp { bye_status: None }));
    assert_eq!(r.ended_at, Some(t0 + Duration::from_secs(33)));
}
