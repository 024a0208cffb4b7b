//! The controller against hostile input: answers are never larger than the request,
//! limits hold before the full parse, CRLF keep-alives and out-of-range CSeqs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// Virtual time is anchored once with `Instant::now()`.
#![allow(clippy::disallowed_methods)]

use sip_core::message::{parse, Message, MAX_VIAS};
use sip_core::{Config, Controller, Dropped, Input, Output, Triage};
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

const LOCAL: &str = "127.0.0.1:5060";
const PEER: &str = "127.0.0.2:5099";
const COMPACT: &str = "v:SIP/2.0/UDP h\r\n";
const LONG: &str = "Via: SIP/2.0/UDP h\r\n";

fn core() -> (Controller, Instant) {
    let now = Instant::now();
    (
        Controller::new(Config::default(), 7, now, SystemTime::now()),
        now,
    )
}

/// Feeds one datagram and returns what the core sent back.
fn feed(core: &mut Controller, now: Instant, payload: &[u8]) -> Vec<Vec<u8>> {
    core.handle_input(
        now,
        Input::Datagram {
            local: LOCAL.parse().unwrap(),
            remote: PEER.parse().unwrap(),
            payload: payload.to_vec(),
        },
    );
    let mut sent = Vec::new();
    loop {
        match core.poll_output() {
            Output::Transmit(t) => sent.push(t.payload),
            Output::Timeout(_) => return sent,
            _ => {}
        }
    }
}

/// An OPTIONS with `vias` Vias; `padding` is the form of the second and later ones
/// (compact, so that 3,000 fit in one datagram as in the report, or long).
fn options(vias: usize, cseq: &str, padding: &str) -> Vec<u8> {
    let mut s = String::from("OPTIONS sip:trunkline@127.0.0.1 SIP/2.0\r\n");
    // A branch per CSeq: one probe is one transaction (the same branch would be a retransmission).
    s.push_str(&format!(
        "Via: SIP/2.0/UDP 127.0.0.2:5099;branch=z9hG4bK-probe{cseq}\r\n"
    ));
    for _ in 1..vias {
        s.push_str(padding);
    }
    s.push_str(&format!(
        "From: <sip:probe@127.0.0.2>;tag=p1\r\nTo: <sip:trunkline@127.0.0.1>\r\n\
         Call-ID: probe-1\r\nCSeq: {cseq} OPTIONS\r\nMax-Forwards: 70\r\n\
         Contact: <sip:probe@127.0.0.2:5099>\r\nUser-Agent: probe/1.0\r\n\
         Content-Length: 0\r\n\r\n"
    ));
    s.into_bytes()
}

#[test]
fn a_request_with_3000_vias_gets_no_answer() {
    let (mut core, now) = core();
    let request = options(3000, "1", COMPACT);
    let sent = feed(&mut core, now, &request);
    assert!(
        sent.iter().all(|r| r.len() <= request.len()),
        "an answer larger than the request"
    );
    assert!(sent.is_empty(), "answered {} datagrams", sent.len());
    assert_eq!(core.stats().parse_errors, 1);
    // The triage says so before any parse.
    assert_eq!(
        core.triage(PEER.parse().unwrap(), &request),
        Triage::Drop(Dropped::TooManyVias)
    );
}

#[test]
fn answers_are_never_larger_than_the_request() {
    let (mut core, now) = core();
    // A normal OPTIONS ping is answered in full.
    let ping = options(1, "1", LONG);
    let sent = feed(&mut core, now, &ping);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].len() <= ping.len());
    // At the Via limit, too: never more bytes than arrived.
    let many = options(MAX_VIAS, "2", LONG);
    let sent = feed(&mut core, now, &many);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].len() <= many.len());
    // Compact Vias are answered in their long form: larger, so dropped and counted.
    assert!(feed(&mut core, now, &options(MAX_VIAS, "3", COMPACT)).is_empty());
    assert_eq!(core.stats().dropped.get("amplification"), Some(&1));
    // A request that is all Via and no padding: the answer would be larger (To tag,
    // status line), so it is dropped and counted.
    let bare = b"OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bKx\r\nTo: <sip:a>\r\n\r\n";
    assert!(feed(&mut core, now, bare).is_empty());
    assert_eq!(core.stats().dropped.get("amplification"), Some(&2));
}

#[test]
fn crlf_keepalives_are_not_parse_errors() {
    let (mut core, now) = core();
    assert!(feed(&mut core, now, b"\r\n\r\n").is_empty());
    assert!(feed(&mut core, now, b"\r\n").is_empty());
    let stats = core.stats();
    assert_eq!(
        (stats.keepalives, stats.parse_errors, stats.sip_in),
        (2, 0, 2)
    );
}

#[test]
fn a_cseq_of_2_pow_31_or_more_is_rejected_with_400() {
    let (mut core, now) = core();
    for cseq in ["2147483648", "4294967296"] {
        let sent = feed(&mut core, now, &options(1, cseq, LONG));
        assert_eq!(sent.len(), 1);
        let Message::Response(r) = parse(&sent[0]).unwrap() else {
            panic!("not a response")
        };
        assert_eq!(r.status, 400);
        assert!(r.reason.contains("2^31"), "{}", r.reason);
    }
    // The largest allowed number is answered normally.
    let sent = feed(&mut core, now, &options(1, "2147483647", LONG));
    let Message::Response(r) = parse(&sent[0]).unwrap() else {
        panic!("not a response")
    };
    assert_eq!(r.status, 200);
    // A response with one is ignored, not matched.
    let resp = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKq\r\n\
        CSeq: 2147483648 REGISTER\r\nContent-Length: 0\r\n\r\n";
    assert!(feed(&mut core, now, resp).is_empty());
    assert_eq!(core.stats().dropped.get("invalid_cseq"), Some(&1));
    assert_eq!(core.stats().stray_responses, 0);
}

#[test]
fn dropped_datagrams_are_counted_as_received() {
    let (mut core, _) = core();
    let from: SocketAddr = PEER.parse().unwrap();
    let garbage = b"SIP/2.0 200 OK\r\n\r\n";
    assert_eq!(
        core.triage(from, garbage),
        Triage::Drop(Dropped::UnknownSource)
    );
    core.count_dropped(Dropped::UnknownSource, 5);
    core.count_dropped(Dropped::KeepAlive, 2);
    let stats = core.stats();
    assert_eq!(stats.sip_in, 7);
    assert_eq!(stats.keepalives, 2);
    assert_eq!(stats.dropped.get("unknown_source"), Some(&5));
}
