//! Unit tests of the model, in virtual time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::disallowed_methods)] // the tests anchor virtual time once

use super::*;
use crate::digest::{self, Algorithm, ResponseInput};

const CALLER: &str = "127.0.0.1:5060";

fn livekit(config: impl FnOnce(&mut LiveKitConfig)) -> LiveKit {
    let mut c = LiveKitConfig::answering("127.0.0.1:5080".parse().unwrap());
    config(&mut c);
    LiveKit::new(c, 3)
}

fn invite(branch: &str, cseq: u32, auth: Option<String>) -> Vec<u8> {
    let auth = auth
        .map(|a| format!("Proxy-Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "INVITE sip:+15550001111@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch={branch}\r\n\
         From: <sip:+15559998888@127.0.0.1>;tag=tl1\r\nTo: <sip:+15550001111@127.0.0.1:5080>\r\n\
         Call-ID: out-1\r\nCSeq: {cseq} INVITE\r\nContact: <sip:trunkline@{CALLER}>\r\n\
         X-Trunkline-Did: +15550001111\r\n{auth}Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n"
    )
    .into_bytes()
}

fn text(d: &Datagram) -> String {
    String::from_utf8_lossy(&d.1).into_owned()
}

fn response(d: &Datagram) -> Response {
    match message::parse(&d.1).unwrap() {
        Message::Response(r) => r,
        Message::Request(_) => panic!("a request"),
    }
}

fn ack(to_tag: &str, branch: &str, cseq: u32) -> Vec<u8> {
    format!(
        "ACK sip:livekit@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch={branch}\r\n\
         From: <sip:+15559998888@127.0.0.1>;tag=tl1\r\nTo: <sip:+15550001111@127.0.0.1:5080>;tag={to_tag}\r\n\
         Call-ID: out-1\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn drain(lk: &mut LiveKit, until: Instant) -> Vec<(Instant, Datagram)> {
    let mut out = Vec::new();
    while let Some(at) = lk.poll_timeout().filter(|at| *at <= until) {
        out.extend(lk.handle_timeout(at).into_iter().map(|d| (at, d)));
    }
    out
}

/// An INVITE answered (no 180) and ACKed at once: (its time, the caller, our tag).
fn answered(lk: &mut LiveKit) -> (Instant, SocketAddr, String) {
    let t0 = Instant::now();
    let from = CALLER.parse().unwrap();
    lk.handle_datagram(t0, from, &invite("z9hG4bKa", 1, None));
    let ok = drain(lk, t0 + Duration::from_millis(300));
    let tag = response(&ok[0].1).headers.to_tag().unwrap().to_owned();
    lk.handle_datagram(t0, from, &ack(&tag, "z9hG4bKack", 1));
    (t0, from, tag)
}

#[test]
fn it_rings_answers_with_sdp_and_retransmits_the_2xx_until_a_bye_at_64_t1() {
    let mut lk = livekit(|_| {});
    let t0 = Instant::now();
    let from = CALLER.parse().unwrap();
    let out = lk.handle_datagram(t0, from, &invite("z9hG4bKa", 1, None));
    assert!(text(&out[0]).starts_with("SIP/2.0 100 Trying"));
    assert_eq!(
        lk.invites()[0].header("x-trunkline-did"),
        Some("+15550001111")
    );
    assert_eq!(
        lk.invites()[0].request_uri,
        "sip:+15550001111@127.0.0.1:5080"
    );
    let sent = drain(&mut lk, t0 + Duration::from_secs(120));
    let statuses: Vec<String> = sent
        .iter()
        .map(|(_, d)| text(d).lines().next().unwrap().to_owned())
        .collect();
    assert_eq!(statuses[0], "SIP/2.0 180 Ringing");
    assert_eq!(statuses[1], "SIP/2.0 200 OK");
    assert!(text(&sent[1].1).contains("m=audio"));
    // 2xx at 0.3 s, again after 0.5, 1, 2, 4, 4, … s, then the BYE at 0.3 + 32 s.
    let gaps: Vec<Duration> = sent
        .windows(2)
        .skip(1)
        .take(5)
        .map(|w| w[1].0 - w[0].0)
        .collect();
    let ms = Duration::from_millis;
    assert_eq!(gaps, [ms(500), ms(1000), ms(2000), ms(4000), ms(4000)]);
    let (at, bye) = sent
        .iter()
        .find(|(_, d)| text(d).starts_with("BYE"))
        .unwrap();
    assert!(text(bye).starts_with("BYE sip:trunkline@127.0.0.1:5060 SIP/2.0"));
    // No 2xx after the BYE; the unanswered BYE is retransmitted, then given up.
    assert!(sent
        .iter()
        .all(|(t, d)| t <= at || text(d).starts_with("BYE")));
    assert!(lk.poll_timeout().is_none());
    assert_eq!(*at, t0 + ms(300) + Duration::from_secs(32));
    assert_eq!(lk.stats().ack_timeouts, 1);
}

#[test]
fn an_ack_stops_the_2xx_and_in_dialog_requests_get_their_answers() {
    let mut lk = livekit(|c| c.ring_after = None);
    let (t0, from, tag) = answered(&mut lk);
    // Nothing more until the first keep-alive probe.
    assert!(drain(&mut lk, t0 + KEEPALIVE - Duration::from_millis(1)).is_empty());
    assert_eq!((lk.stats().acks, lk.active_calls()), (1, 1));
    let in_dialog = |method: &str, n: u32| {
        String::from_utf8(ack(&tag, &format!("z9hG4bK{method}"), n))
            .unwrap()
            .replace("ACK", method)
            .into_bytes()
    };
    let re = lk.handle_datagram(t0, from, &in_dialog("INVITE", 2));
    assert!(text(&re[0]).starts_with("SIP/2.0 200") && text(&re[0]).contains("m=audio"));
    let refer = lk.handle_datagram(t0, from, &in_dialog("REFER", 3));
    assert!(text(&refer[0]).starts_with("SIP/2.0 202"));
    let bye = lk.handle_datagram(t0, from, &in_dialog("BYE", 4));
    assert!(text(&bye[0]).starts_with("SIP/2.0 200"));
    assert_eq!((lk.stats().reinvites, lk.stats().refers), (1, 1));
    assert_eq!(lk.active_calls(), 0);
    // The ended session is forgotten after it absorbed stragglers.
    drain(&mut lk, t0 + Duration::from_secs(60));
    let late = lk.handle_datagram(t0 + Duration::from_secs(60), from, &in_dialog("BYE", 5));
    assert!(text(&late[0]).starts_with("SIP/2.0 481"));
}

#[test]
fn a_cancel_gets_200_and_the_invite_487_and_a_busy_callee_486() {
    let mut lk = livekit(|c| c.answer_after = Duration::from_secs(10));
    let t0 = Instant::now();
    let from = CALLER.parse().unwrap();
    lk.handle_datagram(t0, from, &invite("z9hG4bKa", 1, None));
    let cancel = String::from_utf8(invite("z9hG4bKa", 1, None))
        .unwrap()
        .replace("INVITE", "CANCEL")
        .into_bytes();
    let out = lk.handle_datagram(t0, from, &cancel);
    assert!(text(&out[0]).starts_with("SIP/2.0 200") && text(&out[0]).contains("CSeq: 1 CANCEL"));
    assert!(text(&out[1]).starts_with("SIP/2.0 487") && text(&out[1]).contains("CSeq: 1 INVITE"));
    assert_eq!(lk.invites()[0].answered, Some(487));
    // No 200 later: the INVITE is over.
    let later = drain(&mut lk, t0 + Duration::from_secs(11));
    assert!(later
        .iter()
        .all(|(_, d)| text(d).starts_with("SIP/2.0 487")));

    let mut busy = livekit(|c| c.answer = Answer::Reject(486));
    busy.handle_datagram(t0, from, &invite("z9hG4bKb", 1, None));
    let out = drain(&mut busy, t0 + Duration::from_millis(300));
    assert!(text(&out.last().unwrap().1).starts_with("SIP/2.0 486 Busy Here"));
}

#[test]
fn it_challenges_like_livekit_and_checks_the_digest() {
    let creds = Credentials {
        username: "trunk".to_owned(),
        password: "lk-secret".to_owned(),
    };
    let mut lk = livekit(|c| c.auth = Some(creds.clone()));
    let t0 = Instant::now();
    let from = CALLER.parse().unwrap();
    let out = lk.handle_datagram(t0, from, &invite("z9hG4bKa", 1, None));
    let challenge = response(&out[0]);
    assert_eq!(challenge.status, 407);
    let header = challenge.headers.get("Proxy-Authenticate").unwrap();
    assert!(header.contains("realm=\"LiveKit\"") && !header.contains("qop"));
    let (_, p) = digest::parse_credentials(header);
    let uri = "sip:+15550001111@127.0.0.1:5080";
    let answer = |password: &str| {
        let response = digest::expected_response(&ResponseInput {
            algorithm: Algorithm::Md5,
            username: "trunk",
            realm: REALM,
            password,
            method: "INVITE",
            uri,
            nonce: &p["nonce"],
            qop: None,
        });
        format!(
            "Digest username=\"trunk\", realm=\"LiveKit\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\"",
            p["nonce"]
        )
    };
    let wrong = lk.handle_datagram(t0, from, &invite("z9hG4bKb", 2, Some(answer("guess"))));
    assert_eq!(response(&wrong[0]).status, 403);
    let good = lk.handle_datagram(t0, from, &invite("z9hG4bKc", 3, Some(answer("lk-secret"))));
    assert_eq!(response(&good[0]).status, 100);
    assert_eq!(lk.stats().challenges, 1);
    assert_eq!(lk.stats().bad_digest, 1);
    assert!(!format!("{:?}", lk.config).contains("lk-secret"));
}

#[test]
fn a_late_ack_of_the_challenge_does_not_confirm_the_answered_invite() {
    let creds = Credentials {
        username: "trunk".to_owned(),
        password: "pw".to_owned(),
    };
    let mut lk = livekit(|c| {
        c.auth = Some(creds);
        c.ring_after = None;
    });
    let t0 = Instant::now();
    let from = CALLER.parse().unwrap();
    let out = lk.handle_datagram(t0, from, &invite("z9hG4bKa", 1, None));
    let header = response(&out[0])
        .headers
        .get("Proxy-Authenticate")
        .unwrap()
        .to_owned();
    let (_, p) = digest::parse_credentials(&header);
    let uri = "sip:+15550001111@127.0.0.1:5080";
    let digest = digest::expected_response(&ResponseInput {
        algorithm: Algorithm::Md5,
        username: "trunk",
        realm: REALM,
        password: "pw",
        method: "INVITE",
        uri,
        nonce: &p["nonce"],
        qop: None,
    });
    let auth = format!(
        "Digest username=\"trunk\", realm=\"LiveKit\", nonce=\"{}\", uri=\"{uri}\", response=\"{digest}\"",
        p["nonce"]
    );
    lk.handle_datagram(t0, from, &invite("z9hG4bKb", 2, Some(auth)));
    let ok = drain(&mut lk, t0 + Duration::from_millis(300));
    let tag = response(&ok[0].1).headers.to_tag().unwrap().to_owned();
    lk.handle_datagram(t0, from, &ack(&tag, "z9hG4bKa", 1));
    assert_eq!(lk.stats().acks, 0);
    lk.handle_datagram(t0, from, &ack(&tag, "z9hG4bKack", 2));
    assert_eq!(lk.stats().acks, 1);
}

#[test]
fn an_up_call_is_probed_and_a_481_or_silence_ends_it_with_bye() {
    let mut lk = livekit(|c| {
        c.ring_after = None;
        c.refer_after = Some(Duration::from_secs(1));
    });
    let (t0, from, _) = answered(&mut lk);
    // The REFER asked for after the ACK, retransmitted until answered.
    let refer = drain(&mut lk, t0 + Duration::from_millis(1500));
    assert!(text(&refer[0].1).starts_with("REFER sip:trunkline@127.0.0.1:5060"));
    assert!(text(&refer[0].1).contains("Refer-To: <sip:+15557777@transfer.invalid>"));
    assert_eq!(lk.stats().refers_sent, 1);
    let refer_req = match message::parse(&refer[0].1 .1).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => panic!("a request"),
    };
    let accepted = message::response_to(&refer_req, 202, reason(202), None).to_bytes();
    lk.handle_datagram(t0 + Duration::from_millis(1500), from, &accepted);
    assert_eq!(lk.stats().refer_answers, [202]);
    // The probe at 60 s, then silence: BYE at 60 + 32 s.
    let sent = drain(&mut lk, t0 + KEEPALIVE + Duration::from_secs(33));
    assert!(text(&sent[0].1).starts_with("OPTIONS sip:trunkline@127.0.0.1:5060"));
    let (at, _) = sent
        .iter()
        .find(|(_, d)| text(d).starts_with("BYE"))
        .unwrap();
    assert_eq!(*at, t0 + KEEPALIVE + Duration::from_secs(32));
    assert_eq!(lk.active_calls(), 0);
}
