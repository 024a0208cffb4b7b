//! The B2BUA through the controller in virtual time (issue 9 §2): a provider's INVITE
//! bridged to the destination, answered, hung up from either side, cancelled, refused,
//! challenged, timed out, limited, drained, and relayed in-dialog requests. The test
//! plays both peers by hand, so each assertion names exactly what went on the wire.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// Virtual time is anchored once with `Instant::now()`; everything after adds durations.
#![allow(clippy::disallowed_methods)]

mod support;

use sip_core::{Command, DigestCredentials, Input, Secret};
use std::net::SocketAddr;
use std::time::Duration;
use support::calls::*;
use support::{config, header, registered, REGISTRAR};

#[test]
fn an_answered_call_is_bridged_and_the_caller_hangs_up() {
    let mut s = dial(call_config(), "c1");
    // The outbound leg: the destination, a new Call-ID, the caller's number, the body
    // unchanged, identity headers relayed, ours added, a forged one of ours dropped.
    assert!(s
        .out
        .starts_with(&format!("INVITE sip:{DID}@{LIVEKIT} SIP/2.0")));
    assert_ne!(header(&s.out, "Call-ID"), Some("c1"));
    assert!(header(&s.out, "From").unwrap().contains("sip:+15550100@"));
    assert!(header(&s.out, "From").unwrap().starts_with("\"Bob\""));
    assert_eq!(header(&s.out, "Max-Forwards"), Some("69"));
    assert_eq!(
        header(&s.out, "P-Asserted-Identity"),
        Some("<sip:+15550100@carrier>")
    );
    assert_eq!(header(&s.out, "X-Trunkline-Did"), Some(DID));
    assert_eq!(header(&s.out, "X-Trunkline-Provider-Id"), Some("p1"));
    assert_eq!(header(&s.out, "X-Trunkline-Call-Id"), Some("c1"));
    assert!(!s.out.contains("forged"));
    assert!(s.out.ends_with(SDP));

    let ok = answer(&mut s);
    assert!(ok.ends_with(SDP), "the callee's SDP relayed to the caller");
    assert!(header(&ok, "To").unwrap().contains("tag="));
    assert_eq!(
        header(&ok, "Contact"),
        Some("<sip:trunkline@198.51.100.1:5070>")
    );
    caller_ack(&mut s, &ok, "c1");
    assert_eq!(s.w.core.calls()[0].state, "answered");

    // No more 200 after the ACK, even after a while.
    let before = s.w.sent.len();
    s.w.run_for(Duration::from_secs(10));
    assert!(sent_to(&s.w, caller(), before).is_empty());

    // The callee resends its 200 (our ACK was lost): the very same ACK again, rebuilt
    // from the dialog (the call keeps no bytes of it), and nothing to the caller.
    let first_ack = last_request(&s.w, livekit(), "ACK");
    let resent_ok = response(
        &s.out,
        "200 OK",
        Some("lk"),
        &format!("Contact: <sip:lk@{LIVEKIT}>\r\nContent-Type: application/sdp\r\n"),
        SDP,
    );
    let before = s.w.sent.len();
    feed(&mut s.w, livekit(), &resent_ok);
    assert_eq!(sent_to(&s.w, livekit(), before), [first_ack]);
    assert!(sent_to(&s.w, caller(), before).is_empty());

    // The caller hangs up: 200 to it, BYE to the callee, whose 200 ends the call.
    let to = header(&ok, "To").unwrap();
    let bye = in_dialog(
        "BYE",
        "sip:trunkline@198.51.100.1:5070",
        &format!("{REGISTRAR}:5060"),
        "\"Bob\" <sip:+15550100@192.0.2.10>;tag=f-c1",
        to,
        "c1",
        2,
        "",
    );
    let before = s.w.sent.len();
    feed(&mut s.w, caller(), &bye);
    assert_eq!(lines(&sent_to(&s.w, caller(), before)), ["SIP/2.0 200 OK"]);
    let bye_out = last_request(&s.w, livekit(), "BYE");
    assert_eq!(header(&bye_out, "Call-ID"), header(&s.out, "Call-ID"));
    feed(
        &mut s.w,
        livekit(),
        &response(&bye_out, "200 OK", None, "", ""),
    );
    assert_eq!(s.w.core.active_calls(), 0);
    let rec = ended(&s.w);
    assert_eq!(rec.len(), 1);
    assert_eq!((rec[0].outcome, rec[0].status), ("answered", 200));
    assert_eq!(rec[0].reason, "the caller hung up");
    assert_eq!(rec[0].did, DID);
    assert_eq!(rec[0].provider_id.as_deref(), Some("p1"));
    assert_eq!(s.w.core.stats().calls.get("answered"), Some(&1));
    assert_eq!(s.w.core.stats().call_setup.count, 1);
}

#[test]
fn the_200_is_resent_until_the_callers_ack_then_both_legs_get_bye() {
    let mut s = dial(call_config(), "c2");
    let before = s.w.sent.len();
    answer(&mut s);
    s.w.run_for(Duration::from_secs(40));
    let to_caller = sent_to(&s.w, caller(), before);
    let oks = to_caller
        .iter()
        .filter(|m| m.starts_with("SIP/2.0 200"))
        .count();
    // T1 doubling to T2 over 64·T1: 1 + retransmissions at 0.5, 1.5, 3.5, 7.5, 11.5 …
    assert!(oks >= 7, "200 resent while no ACK: {oks}");
    // No ACK within 64·T1: BYE both legs.
    assert!(to_caller.iter().any(|m| m.starts_with("BYE ")));
    assert!(sent_to(&s.w, livekit(), before)
        .iter()
        .any(|m| m.starts_with("BYE ")));
}

#[test]
fn the_callee_hangs_up() {
    let mut s = dial(call_config(), "c3");
    let ok = answer(&mut s);
    caller_ack(&mut s, &ok, "c3");
    let from = format!("<sip:{DID}@{LIVEKIT}>;tag=lk");
    let to = header(&s.out, "From").unwrap().to_owned();
    let call_id = header(&s.out, "Call-ID").unwrap().to_owned();
    let bye = in_dialog(
        "BYE",
        "sip:trunkline@198.51.100.1:5070",
        LIVEKIT,
        &from,
        &to,
        &call_id,
        5,
        "",
    );
    let before = s.w.sent.len();
    feed(&mut s.w, livekit(), &bye);
    assert_eq!(lines(&sent_to(&s.w, livekit(), before)), ["SIP/2.0 200 OK"]);
    let bye_in = last_request(&s.w, caller(), "BYE");
    assert!(bye_in.starts_with(&format!("BYE sip:+15550100@{REGISTRAR}:5060 SIP/2.0")));
    assert_eq!(header(&bye_in, "Call-ID"), Some("c3"));
    assert!(header(&bye_in, "From").unwrap().contains("tag="));
    assert!(header(&bye_in, "To").unwrap().ends_with("tag=f-c3"));
    feed(
        &mut s.w,
        caller(),
        &response(&bye_in, "200 OK", None, "", ""),
    );
    assert_eq!(s.w.core.active_calls(), 0);
    assert_eq!(ended(&s.w)[0].reason, "the destination hung up");
}

#[test]
fn a_cancel_before_the_answer_is_carried_to_the_callee() {
    let mut s = dial(call_config(), "c4");
    ring(&mut s);
    let cancel = cancel_of("c4");
    let before = s.w.sent.len();
    feed(&mut s.w, caller(), &cancel);
    let to_caller = sent_to(&s.w, caller(), before);
    assert_eq!(
        lines(&to_caller),
        ["SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"]
    );
    let cancel_out = last_request(&s.w, livekit(), "CANCEL");
    assert_eq!(
        header(&cancel_out, "Via").unwrap(),
        header(&s.out, "Via").unwrap(),
        "the CANCEL is in our INVITE's transaction"
    );
    // The callee: 200 to the CANCEL, 487 to the INVITE, which we ACK.
    feed(
        &mut s.w,
        livekit(),
        &response(&cancel_out, "200 OK", Some("lk"), "", ""),
    );
    let before = s.w.sent.len();
    feed(
        &mut s.w,
        livekit(),
        &response(&s.out, "487 Request Terminated", Some("lk"), "", ""),
    );
    assert_eq!(lines(&sent_to(&s.w, livekit(), before)).len(), 1);
    assert!(sent_to(&s.w, livekit(), before)[0].starts_with("ACK "));
    // The caller ACKs the 487 (its transaction absorbs it).
    assert_eq!(s.w.core.active_calls(), 0);
    assert_eq!(ended(&s.w)[0].outcome, "cancelled");
}

#[test]
fn a_callee_that_answers_after_our_cancel_is_acked_and_hung_up() {
    let mut s = dial(call_config(), "c5");
    ring(&mut s);
    let cancel = cancel_of("c5");
    feed(&mut s.w, caller(), &cancel);
    let before = s.w.sent.len();
    let ok = response(
        &s.out,
        "200 OK",
        Some("lk"),
        &format!("Contact: <sip:lk@{LIVEKIT}>\r\n"),
        SDP,
    );
    feed(&mut s.w, livekit(), &ok);
    let to_lk = sent_to(&s.w, livekit(), before);
    assert_eq!(lines(&to_lk)[0], format!("ACK sip:lk@{LIVEKIT} SIP/2.0"));
    assert!(to_lk[1].starts_with("BYE "));
    feed(
        &mut s.w,
        livekit(),
        &response(&to_lk[1], "200 OK", None, "", ""),
    );
    assert_eq!(s.w.core.active_calls(), 0);
}

/// RFC 3261 §13.2.2.4: every 2xx is ACKed; a B2BUA bridges one dialog, so a second
/// fork's is hung up at once and the call stays on the first. Found by the controller
/// fuzzer (a fork's 2xx went un-ACKed, so the callee resent it and kept a ghost call).
#[test]
fn a_second_forks_2xx_is_acked_and_hung_up_and_the_call_goes_on() {
    let mut s = dial(call_config(), "c-fork");
    let ok = answer(&mut s);
    caller_ack(&mut s, &ok, "c-fork");
    let before = s.w.sent.len();
    let fork = response(
        &s.out,
        "200 OK",
        Some("lk-fork2"),
        &format!("Contact: <sip:fork2@{LIVEKIT}>\r\n"),
        SDP,
    );
    feed(&mut s.w, livekit(), &fork);
    let to_lk = sent_to(&s.w, livekit(), before);
    assert_eq!(
        lines(&to_lk),
        [
            format!("ACK sip:fork2@{LIVEKIT} SIP/2.0").as_str(),
            format!("BYE sip:fork2@{LIVEKIT} SIP/2.0").as_str()
        ]
    );
    // Our side of the fork's dialog is our INVITE's (built from the first fork's
    // dialog: our INVITE itself is given back once the callee answered).
    for m in &to_lk {
        assert!(header(m, "To").unwrap().ends_with(";tag=lk-fork2"), "{m}");
        assert_eq!(header(m, "Call-ID"), header(&s.out, "Call-ID"), "{m}");
        assert_eq!(header(m, "From"), header(&s.out, "From"), "{m}");
    }
    let invite_cseq = header(&s.out, "CSeq").unwrap().replace("INVITE", "ACK");
    assert_eq!(header(&to_lk[0], "CSeq"), Some(invite_cseq.as_str()));
    assert!(
        sent_to(&s.w, caller(), before).is_empty(),
        "the caller hears nothing of the fork"
    );
    // The fork resends its 2xx (our ACK was lost): the same ACK, no second BYE.
    let before = s.w.sent.len();
    feed(&mut s.w, livekit(), &fork);
    assert_eq!(
        lines(&sent_to(&s.w, livekit(), before)),
        [format!("ACK sip:fork2@{LIVEKIT} SIP/2.0").as_str()]
    );
    assert_eq!(
        s.w.core.active_calls(),
        1,
        "the call goes on with the first fork"
    );
    assert_eq!(s.w.core.stats().forks_hung_up, 1);
}

/// A 2xx after the call ended (the INVITE's transaction still in Accepted, RFC 6026)
/// is ACKed and hung up from what the 2xx itself says.
#[test]
fn a_2xx_after_the_call_ended_is_acked_and_hung_up() {
    let mut s = dial(call_config(), "c-late");
    let ok = answer(&mut s);
    caller_ack(&mut s, &ok, "c-late");
    let bye = in_dialog(
        "BYE",
        "sip:trunkline@198.51.100.1:5070",
        &format!("{REGISTRAR}:5060"),
        &format!("\"Bob\" <sip:+15550100@{REGISTRAR}>;tag=f-c-late"),
        header(&ok, "To").unwrap(),
        "c-late",
        2,
        "",
    );
    feed(&mut s.w, caller(), &bye);
    let our_bye = last_request(&s.w, livekit(), "BYE");
    feed(
        &mut s.w,
        livekit(),
        &response(&our_bye, "200 OK", None, "", ""),
    );
    assert_eq!(s.w.core.active_calls(), 0);
    let before = s.w.sent.len();
    let late = response(
        &s.out,
        "200 OK",
        Some("lk-late"),
        &format!("Contact: <sip:late@{LIVEKIT}>\r\n"),
        SDP,
    );
    feed(&mut s.w, livekit(), &late);
    assert_eq!(
        lines(&sent_to(&s.w, livekit(), before)),
        [
            format!("ACK sip:late@{LIVEKIT} SIP/2.0").as_str(),
            format!("BYE sip:late@{LIVEKIT} SIP/2.0").as_str()
        ]
    );
    // Resent (our ACK was lost), that 2xx and the call's own get their ACK again and
    // no second BYE (found by the controller fuzzer: a second BYE reused the CSeq).
    let own = response(
        &s.out,
        "200 OK",
        Some("lk"),
        &format!("Contact: <sip:lk@{LIVEKIT}>\r\n"),
        SDP,
    );
    for (resent, contact) in [(&late, "late"), (&own, "lk")] {
        let before = s.w.sent.len();
        feed(&mut s.w, livekit(), resent);
        assert_eq!(
            lines(&sent_to(&s.w, livekit(), before)),
            [format!("ACK sip:{contact}@{LIVEKIT} SIP/2.0").as_str()]
        );
    }
}

/// Under a flood the driver hands `Known` datagrams in first: a provider's INVITE must
/// not queue behind a scanner's in the unknown sources' budget.
#[test]
fn a_providers_requests_are_triaged_as_known() {
    let w = registered(call_config());
    let inv = invite("c-triage", SDP);
    assert_eq!(
        w.core.triage(caller(), inv.as_bytes()),
        sip_core::Triage::Known,
        "from the registrar's address"
    );
    let stranger: SocketAddr = "203.0.113.9:5060".parse().unwrap();
    assert_eq!(
        w.core.triage(stranger, inv.as_bytes()),
        sip_core::Triage::Unknown
    );
    let mut cfg = call_config();
    cfg.calls.allowed_sources = vec!["203.0.113.0/24".parse().unwrap()];
    let w = registered(cfg);
    assert_eq!(
        w.core.triage(stranger, inv.as_bytes()),
        sip_core::Triage::Known,
        "from an allowed source"
    );
}

#[test]
fn a_busy_callee_is_relayed() {
    let mut s = dial(call_config(), "c6");
    let before = s.w.sent.len();
    feed(
        &mut s.w,
        livekit(),
        &response(&s.out, "486 Busy Here", Some("lk"), "", ""),
    );
    assert_eq!(
        lines(&sent_to(&s.w, caller(), before)),
        ["SIP/2.0 486 Busy Here"]
    );
    assert!(sent_to(&s.w, livekit(), before)[0].starts_with("ACK "));
    assert_eq!(ended(&s.w)[0].outcome, "busy");
}

#[test]
fn a_challenge_is_answered_with_the_configured_credentials_once() {
    let mut cfg = call_config();
    cfg.calls.destination_auth = Some(DigestCredentials {
        username: "trunk".into(),
        password: Secret::new("s3cret-lk"),
    });
    let mut s = dial(cfg, "c7");
    let challenge = "Proxy-Authenticate: Digest realm=\"LiveKit\", nonce=\"n1\"\r\n";
    let before = s.w.sent.len();
    feed(
        &mut s.w,
        livekit(),
        &response(
            &s.out,
            "407 Proxy Authentication Required",
            Some("lk"),
            challenge,
            "",
        ),
    );
    let to_lk = sent_to(&s.w, livekit(), before);
    assert!(to_lk[0].starts_with("ACK "));
    let again = &to_lk[1];
    assert!(again.starts_with("INVITE "));
    assert_eq!(header(again, "Call-ID"), header(&s.out, "Call-ID"));
    assert_eq!(header(again, "CSeq"), Some("2 INVITE"));
    let auth = header(again, "Proxy-Authorization").unwrap();
    assert!(auth.contains("username=\"trunk\"") && auth.contains("realm=\"LiveKit\""));
    assert!(!s.w.sent.iter().any(|(_, _, m)| m.contains("s3cret-lk")));
    // A second challenge is not answered: the caller gets 403.
    let before = s.w.sent.len();
    feed(
        &mut s.w,
        livekit(),
        &response(
            again,
            "407 Proxy Authentication Required",
            Some("lk2"),
            challenge,
            "",
        ),
    );
    assert_eq!(
        lines(&sent_to(&s.w, caller(), before)),
        ["SIP/2.0 403 Forbidden: the destination refused our credentials"]
    );
}

#[test]
fn no_answer_within_the_ring_timeout_cancels_the_callee_and_408s_the_caller() {
    let mut cfg = call_config();
    cfg.calls.ring_timeout = Duration::from_secs(20);
    let mut s = dial(cfg, "c8");
    ring(&mut s);
    let before = s.w.sent.len();
    s.w.run_for(Duration::from_secs(21));
    let to_caller = lines(&sent_to(&s.w, caller(), before))
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>();
    assert_eq!(
        to_caller.first().map(String::as_str),
        Some("SIP/2.0 408 Request Timeout: no answer")
    );
    assert!(sent_to(&s.w, livekit(), before)
        .iter()
        .any(|m| m.starts_with("CANCEL ")));
    assert_eq!(ended(&s.w).len(), 0, "the callee's leg is still ending");
    let cancel_out = last_request(&s.w, livekit(), "CANCEL");
    feed(
        &mut s.w,
        livekit(),
        &response(&cancel_out, "200 OK", Some("lk"), "", ""),
    );
    feed(
        &mut s.w,
        livekit(),
        &response(&s.out, "487 Request Terminated", Some("lk"), "", ""),
    );
    assert_eq!(ended(&s.w)[0].outcome, "no_answer");
}

#[test]
fn max_calls_refuses_with_503_and_retry_after() {
    let mut cfg = call_config();
    cfg.calls.max_calls = Some(1);
    let mut s = dial(cfg, "c9");
    let before = s.w.sent.len();
    feed(&mut s.w, caller(), &invite("c10", SDP));
    let to_caller = sent_to(&s.w, caller(), before);
    assert_eq!(
        lines(&to_caller).last().copied(),
        Some("SIP/2.0 503 Service Unavailable: MAX_CALLS reached")
    );
    assert_eq!(header(to_caller.last().unwrap(), "Retry-After"), Some("5"));
    assert_eq!(sent_to(&s.w, livekit(), before).len(), 0);
    assert_eq!(s.w.core.stats().calls.get("refused_limit"), Some(&1));
}

#[test]
fn a_stranger_is_refused_and_never_forwarded() {
    let mut w = registered(call_config());
    let stranger: SocketAddr = "203.0.113.5:5060".parse().unwrap();
    let text = invite("c11", SDP).replace(
        &format!("{REGISTRAR}:5060;branch"),
        "203.0.113.5:5060;branch",
    );
    let before = w.sent.len();
    feed(&mut w, stranger, &text);
    assert_eq!(
        lines(&sent_to(&w, stranger, before)),
        ["SIP/2.0 403 Forbidden"]
    );
    assert!(sent_to(&w, livekit(), before).is_empty());
}

#[test]
fn no_route_is_404() {
    let mut w = registered(config());
    let before = w.sent.len();
    feed(&mut w, caller(), &invite("c12", SDP));
    assert_eq!(
        lines(&sent_to(&w, caller(), before)),
        [
            "SIP/2.0 100 Trying",
            "SIP/2.0 404 Not Found: no route for this number"
        ]
    );
    assert_eq!(ended(&w)[0].outcome, "no_route");
}

#[test]
fn a_reinvite_is_relayed_with_its_sdp_both_ways() {
    let mut s = dial(call_config(), "c13");
    let ok = answer(&mut s);
    caller_ack(&mut s, &ok, "c13");
    let to = header(&ok, "To").unwrap().to_owned();
    let hold = SDP.replace(
        "m=audio 4000 RTP/AVP 0\r\n",
        "m=audio 4000 RTP/AVP 0\r\na=sendonly\r\n",
    );
    let reinvite = in_dialog(
        "INVITE",
        "sip:trunkline@198.51.100.1:5070",
        &format!("{REGISTRAR}:5060"),
        "\"Bob\" <sip:+15550100@192.0.2.10>;tag=f-c13",
        &to,
        "c13",
        2,
        &hold,
    );
    feed(&mut s.w, caller(), &reinvite);
    let relayed = last_request(&s.w, livekit(), "INVITE");
    assert!(relayed.ends_with(&hold));
    assert_eq!(header(&relayed, "Call-ID"), header(&s.out, "Call-ID"));
    assert_eq!(header(&relayed, "CSeq"), Some("2 INVITE"));
    assert!(header(&relayed, "To").unwrap().ends_with("tag=lk"));
    let before = s.w.sent.len();
    let ok2 = response(
        &relayed,
        "200 OK",
        None,
        "Content-Type: application/sdp\r\n",
        SDP,
    );
    feed(&mut s.w, livekit(), &ok2);
    assert!(sent_to(&s.w, livekit(), before)[0].starts_with("ACK "));
    let back = sent_to(&s.w, caller(), before);
    assert_eq!(lines(&back), ["SIP/2.0 200 OK"]);
    assert_eq!(header(&back[0], "CSeq"), Some("2 INVITE"));
    assert!(back[0].ends_with(SDP));
    // A REFER from the destination (a transfer) reaches the caller with its Refer-To.
    let from = format!("<sip:{DID}@{LIVEKIT}>;tag=lk");
    let our_from = header(&s.out, "From").unwrap().to_owned();
    let call_id = header(&s.out, "Call-ID").unwrap().to_owned();
    let refer = in_dialog(
        "REFER",
        "sip:trunkline@198.51.100.1:5070",
        LIVEKIT,
        &from,
        &our_from,
        &call_id,
        7,
        "",
    )
    .replace(
        "Content-Length: 0",
        "Refer-To: <sip:+15557777@carrier>\r\nContent-Length: 0",
    );
    feed(&mut s.w, livekit(), &refer);
    let refer_in = last_request(&s.w, caller(), "REFER");
    assert_eq!(
        header(&refer_in, "Refer-To"),
        Some("<sip:+15557777@carrier>")
    );
    assert_eq!(header(&refer_in, "Call-ID"), Some("c13"));
    let before = s.w.sent.len();
    feed(
        &mut s.w,
        caller(),
        &response(&refer_in, "202 Accepted", None, "", ""),
    );
    assert_eq!(
        lines(&sent_to(&s.w, livekit(), before)),
        ["SIP/2.0 202 Accepted"]
    );
}

#[test]
fn a_shutdown_refuses_new_calls_and_drains_the_ones_up() {
    let mut cfg = call_config();
    cfg.calls.drain = Duration::from_secs(30);
    let mut s = dial(cfg, "c14");
    let ok = answer(&mut s);
    caller_ack(&mut s, &ok, "c14");
    s.w.input(Input::Command(Command::Shutdown {
        grace: Duration::from_secs(5),
    }));
    let before = s.w.sent.len();
    feed(&mut s.w, caller(), &invite("c15", SDP));
    assert_eq!(
        lines(&sent_to(&s.w, caller(), before)).last().copied(),
        Some("SIP/2.0 503 Service Unavailable: shutting down")
    );
    s.w.run_for(Duration::from_secs(20));
    assert_eq!(s.w.core.active_calls(), 1, "the call survives the grace");
    assert!(!s.w.shutdown_complete());
    s.w.run_for(Duration::from_secs(11));
    // The drain ran out: BYE both legs.
    let bye_in = last_request(&s.w, caller(), "BYE");
    let bye_out = last_request(&s.w, livekit(), "BYE");
    feed(
        &mut s.w,
        caller(),
        &response(&bye_in, "200 OK", None, "", ""),
    );
    feed(
        &mut s.w,
        livekit(),
        &response(&bye_out, "200 OK", None, "", ""),
    );
    assert_eq!(s.w.core.active_calls(), 0);
    assert!(s.w.shutdown_complete());
}

/// A callee that never sent a provisional cannot be CANCELled (RFC 3261 §9.1), so its
/// call outlives the drain; the shutdown's end gives it up: the held-back CANCEL goes,
/// the call is recorded as ended, and nothing is left after ShutdownComplete. Found by
/// the controller fuzzer.
#[test]
fn the_shutdowns_end_gives_up_a_call_whose_legs_did_not_finish() {
    let mut cfg = call_config();
    cfg.calls.drain = Duration::from_secs(2);
    cfg.calls.ring_timeout = Duration::from_secs(1);
    let mut s = dial(cfg, "c-stuck");
    s.w.run_for(Duration::from_millis(1100));
    assert!(
        sent_to(&s.w, caller(), 0)
            .iter()
            .any(|m| m.starts_with("SIP/2.0 408 ")),
        "the ring timeout answered the caller"
    );
    assert!(
        !sent_to(&s.w, livekit(), 0)
            .iter()
            .any(|m| m.starts_with("CANCEL ")),
        "no CANCEL before a provisional"
    );
    assert_eq!(
        s.w.core.active_calls(),
        1,
        "the callee's INVITE is still out"
    );
    s.w.input(Input::Command(Command::Shutdown {
        grace: Duration::from_secs(5),
    }));
    s.w.run_for(Duration::from_secs(6));
    assert!(s.w.shutdown_complete());
    assert_eq!(
        s.w.core.active_calls(),
        0,
        "nothing left after ShutdownComplete"
    );
    assert!(
        sent_to(&s.w, livekit(), 0)
            .iter()
            .any(|m| m.starts_with("CANCEL ")),
        "the held-back CANCEL went at the end"
    );
    assert_eq!(ended(&s.w).len(), 1, "the call has its record");
    assert_eq!(
        s.w.core.timer_count(),
        0,
        "no timer of the given-up call's CANCEL outlives ShutdownComplete"
    );
}

/// A late offer: our ACK to the callee waits for the caller's, which holds the answer.
/// Hung up before that (here by the drain), the callee's 2xx is still ACKed before its
/// BYE. Found by the controller fuzzer.
#[test]
fn a_late_offer_call_hung_up_before_the_callers_ack_still_acks_the_callee() {
    let mut cfg = call_config();
    cfg.calls.drain = Duration::from_secs(1);
    let mut w = registered(cfg);
    feed(&mut w, caller(), &invite("c-lo", ""));
    let out = last_request(&w, livekit(), "INVITE");
    let before = w.sent.len();
    let ok = response(
        &out,
        "200 OK",
        Some("lk"),
        &format!("Contact: <sip:lk@{LIVEKIT}>\r\nContent-Type: application/sdp\r\n"),
        SDP,
    );
    feed(&mut w, livekit(), &ok);
    assert!(
        sent_to(&w, livekit(), before).is_empty(),
        "our ACK waits for the caller's answer"
    );
    w.input(Input::Command(Command::Shutdown {
        grace: Duration::from_secs(5),
    }));
    w.run_for(Duration::from_millis(1100));
    let to_lk = sent_to(&w, livekit(), before);
    assert_eq!(
        lines(&to_lk),
        [
            format!("ACK sip:lk@{LIVEKIT} SIP/2.0").as_str(),
            format!("BYE sip:lk@{LIVEKIT} SIP/2.0").as_str()
        ]
    );
}

/// The same late offer, hung up by the callee itself before the caller's ACK: its
/// 2xx gets its ACK (without a body) along with the 200 to its BYE, or it would resend
/// the 2xx for 32 s. Found by the controller fuzzer
/// (fuzz/regressions/controller/late-offer-2xx-then-callee-bye-never-acked).
#[test]
fn a_late_offer_callee_that_hangs_up_before_the_callers_ack_is_acked() {
    let mut w = registered(call_config());
    feed(&mut w, caller(), &invite("c-lb", ""));
    let out = last_request(&w, livekit(), "INVITE");
    let ok = response(
        &out,
        "200 OK",
        Some("lk"),
        &format!("Contact: <sip:lk@{LIVEKIT}>\r\nContent-Type: application/sdp\r\n"),
        SDP,
    );
    feed(&mut w, livekit(), &ok);
    let before = w.sent.len();
    let to = header(&ok, "To").unwrap();
    let from = header(&ok, "From").unwrap();
    let call_id = header(&ok, "Call-ID").unwrap();
    let bye = in_dialog(
        "BYE",
        "sip:trunkline@198.51.100.1:5070",
        LIVEKIT,
        to,
        from,
        call_id,
        1,
        "",
    );
    feed(&mut w, livekit(), &bye);
    let to_lk = sent_to(&w, livekit(), before);
    assert_eq!(
        lines(&to_lk),
        [
            "SIP/2.0 200 OK",
            format!("ACK sip:lk@{LIVEKIT} SIP/2.0").as_str()
        ],
        "{to_lk:?}"
    );
    assert_eq!(header(&to_lk[1], "Content-Length"), Some("0"));
}

#[test]
fn a_call_out_of_hops_is_refused_before_any_routing() {
    let mut w = registered(call_config());
    let before = w.sent.len();
    let text = invite("c16", SDP).replace("Max-Forwards: 70", "Max-Forwards: 0");
    feed(&mut w, caller(), &text);
    assert_eq!(
        lines(&sent_to(&w, caller(), before)),
        ["SIP/2.0 100 Trying", "SIP/2.0 483 Too Many Hops"]
    );
    assert!(sent_to(&w, livekit(), before).is_empty());
    assert_eq!(w.core.stats().calls.get("bad_request"), Some(&1));
}

/// A request without one of the headers every request carries (RFC 3261 §8.1.1) gets a
/// stateless 400 that names it, and an INVITE without Call-ID never becomes a call
/// (found by the controller fuzzer: it became one with an empty Call-ID).
#[test]
fn an_invite_without_call_id_gets_400_and_goes_nowhere() {
    let mut w = registered(call_config());
    let before = w.sent.len();
    let text = invite("no-call-id", SDP).replace("Call-ID: no-call-id\r\n", "");
    feed(&mut w, caller(), &text);
    let answers = sent_to(&w, caller(), before);
    assert_eq!(
        lines(&answers),
        ["SIP/2.0 400 Bad Request: no Call-ID header"]
    );
    assert!(
        sent_to(&w, livekit(), before).is_empty(),
        "nothing forwarded"
    );
    assert_eq!(w.core.active_calls(), 0);
    // The same for From.
    let before = w.sent.len();
    let text = invite("no-from", SDP).replace(
        "From: \"Bob\" <sip:+15550100@192.0.2.10>;tag=f-no-from\r\n",
        "",
    );
    feed(&mut w, caller(), &text);
    assert_eq!(
        lines(&sent_to(&w, caller(), before)),
        ["SIP/2.0 400 Bad Request: no From header"]
    );
    assert_eq!(w.core.active_calls(), 0);
}

/// The server-transaction cap of [`capped`].
const CAP: usize = 50;

/// The calls' configuration with a server-transaction cap small enough to fill.
fn capped() -> sip_core::Config {
    sip_core::Config {
        max_server_transactions: CAP,
        ..call_config()
    }
}

/// Fills the server-transaction table ([`CAP`] entries) with distinct OPTIONS from a
/// stranger, the way a flood would; returns how many were answered statelessly.
fn flood_the_server_transactions(w: &mut support::World) -> u64 {
    let flood: SocketAddr = "203.0.113.9:5060".parse().unwrap();
    for i in 0..CAP {
        let options = in_dialog(
            "OPTIONS",
            "sip:trunkline@198.51.100.1:5070",
            "203.0.113.9:5060",
            "<sip:scan@203.0.113.9>;tag=s",
            "<sip:trunkline@198.51.100.1>",
            &format!("flood-{i}"),
            1,
            "",
        );
        feed(w, flood, &options);
    }
    w.core.stats().stateless_answers
}

#[test]
fn past_the_server_transaction_cap_a_call_in_progress_still_hangs_up() {
    let mut s = dial(capped(), "c-cap");
    let ok = answer(&mut s);
    caller_ack(&mut s, &ok, "c-cap");
    assert!(
        flood_the_server_transactions(&mut s.w) > 0,
        "the table is full"
    );

    // The caller's BYE still reaches its call: 200, and the BYE carried to the callee
    // (not a stateless 481 that would leave the callee's leg up).
    let to = header(&ok, "To").unwrap();
    let bye = in_dialog(
        "BYE",
        "sip:trunkline@198.51.100.1:5070",
        &format!("{REGISTRAR}:5060"),
        "\"Bob\" <sip:+15550100@192.0.2.10>;tag=f-c-cap",
        to,
        "c-cap",
        2,
        "",
    );
    let stateless = s.w.core.stats().stateless_answers;
    let before = s.w.sent.len();
    feed(&mut s.w, caller(), &bye);
    assert_eq!(lines(&sent_to(&s.w, caller(), before)), ["SIP/2.0 200 OK"]);
    let bye_out = last_request(&s.w, livekit(), "BYE");
    assert_eq!(header(&bye_out, "Call-ID"), header(&s.out, "Call-ID"));
    assert_eq!(s.w.core.stats().stateless_answers, stateless);

    // A BYE for no call gets no such room: still a stateless 481.
    let stray = in_dialog(
        "BYE",
        "sip:trunkline@198.51.100.1:5070",
        &format!("{REGISTRAR}:5060"),
        "<sip:+15550100@192.0.2.10>;tag=f-none",
        "<sip:+15550100@198.51.100.1>;tag=t-none",
        "no-such-call",
        2,
        "",
    );
    let before = s.w.sent.len();
    feed(&mut s.w, caller(), &stray);
    let answers = sent_to(&s.w, caller(), before);
    assert_eq!(
        lines(&answers),
        ["SIP/2.0 481 Call/Transaction Does Not Exist"]
    );
    assert_eq!(s.w.core.stats().stateless_answers, stateless + 1);
}

#[test]
fn past_the_server_transaction_cap_a_ringing_call_can_still_be_cancelled() {
    let mut s = dial(capped(), "c-cap2");
    ring(&mut s);
    assert!(
        flood_the_server_transactions(&mut s.w) > 0,
        "the table is full"
    );
    let before = s.w.sent.len();
    feed(&mut s.w, caller(), &cancel_of("c-cap2"));
    assert_eq!(
        lines(&sent_to(&s.w, caller(), before)),
        ["SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"]
    );
    let cancel_out = last_request(&s.w, livekit(), "CANCEL");
    assert_eq!(header(&cancel_out, "Call-ID"), header(&s.out, "Call-ID"));
}

#[test]
fn the_answers_that_form_the_dialog_carry_the_callers_record_route() {
    // RFC 3261 §12.1.1: the provider's proxies recorded a route; the caller's ACK, BYE
    // and re-INVITEs follow it only if our 18x and 2xx copy it (found behind a real
    // NAT with Kamailio as the provider's proxy: tests/nat.rs).
    let mut w = registered(call_config());
    let routes =
        "Record-Route: <sip:192.0.2.77;lr;ftag=f-rr>\r\nRecord-Route: <sip:192.0.2.78;lr>\r\n";
    let inv = invite("rr", SDP).replacen(
        "Max-Forwards: 70\r\n",
        &format!("{routes}Max-Forwards: 70\r\n"),
        1,
    );
    let before = w.sent.len();
    feed(&mut w, caller(), &inv);
    let out = last_request(&w, livekit(), "INVITE");
    assert!(
        header(&out, "Record-Route").is_none(),
        "the caller's route is not the callee's"
    );
    answer_in(&mut w, &out);
    let to_caller = sent_to(&w, caller(), before);
    assert_eq!(
        lines(&to_caller),
        [
            "SIP/2.0 100 Trying",
            "SIP/2.0 180 Ringing",
            "SIP/2.0 200 OK"
        ]
    );
    for m in &to_caller[1..] {
        let rr: Vec<&str> = m
            .split("\r\n")
            .filter(|l| l.starts_with("Record-Route:"))
            .collect();
        assert_eq!(
            rr,
            [
                "Record-Route: <sip:192.0.2.77;lr;ftag=f-rr>",
                "Record-Route: <sip:192.0.2.78;lr>"
            ],
            "in order: {m}"
        );
    }
}

#[test]
fn a_refusal_forms_no_dialog_and_carries_no_record_route() {
    let mut w = registered(call_config());
    let inv = invite("rr2", SDP).replacen(
        "Max-Forwards: 70\r\n",
        "Record-Route: <sip:192.0.2.77;lr>\r\nMax-Forwards: 70\r\n",
        1,
    );
    let before = w.sent.len();
    feed(&mut w, caller(), &inv);
    let out = last_request(&w, livekit(), "INVITE");
    feed(
        &mut w,
        livekit(),
        &response(&out, "486 Busy Here", Some("lk"), "", ""),
    );
    let busy = sent_to(&w, caller(), before)
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 486"))
        .unwrap();
    assert!(header(&busy, "Record-Route").is_none(), "{busy}");
}
