//! A provider's calls through the controller, played by hand: the caller's INVITE,
//! the destination's answers, the caller's ACK, shared by the call tests and the
//! memory measurement.

use super::{config, header, registered, World, LOCAL, REGISTRAR};
use sip_core::{Config, Event, Input};
use std::net::SocketAddr;

/// Where the destination (the LiveKit stand-in) listens.
pub const LIVEKIT: &str = "198.51.100.50:5080";
pub const DID: &str = "+4930123456";
pub const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

pub fn caller() -> SocketAddr {
    format!("{REGISTRAR}:5060").parse().unwrap()
}

pub fn livekit() -> SocketAddr {
    LIVEKIT.parse().unwrap()
}

pub fn call_config() -> Config {
    let mut cfg = config();
    cfg.default_domain = Some(LIVEKIT.to_owned());
    cfg
}

pub fn feed(w: &mut World, from: SocketAddr, text: &str) {
    w.input(Input::Datagram {
        local: LOCAL.parse().unwrap(),
        remote: from,
        payload: text.as_bytes().to_vec(),
    });
}

pub fn invite(call_id: &str, body: &str) -> String {
    format!(
        "INVITE sip:{DID}@198.51.100.1:5070 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {REGISTRAR}:5060;branch=z9hG4bK-{call_id}\r\n\
         Max-Forwards: 70\r\n\
         From: \"Bob\" <sip:+15550100@{REGISTRAR}>;tag=f-{call_id}\r\n\
         To: <sip:{DID}@198.51.100.1>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:+15550100@{REGISTRAR}:5060>\r\n\
         P-Asserted-Identity: <sip:+15550100@carrier>\r\n\
         X-Trunkline-Did: forged\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Messages sent to `to` from index `from_index` on.
pub fn sent_to(w: &World, to: SocketAddr, from_index: usize) -> Vec<String> {
    w.sent[from_index..]
        .iter()
        .filter(|(_, r, _)| *r == to)
        .map(|(_, _, m)| m.clone())
        .collect()
}

pub fn first_line(m: &str) -> &str {
    m.lines().next().unwrap()
}

pub fn lines(msgs: &[String]) -> Vec<&str> {
    msgs.iter().map(|m| first_line(m)).collect()
}

/// The last request with `method` sent to `to`.
pub fn last_request(w: &World, to: SocketAddr, method: &str) -> String {
    sent_to(w, to, 0)
        .into_iter()
        .rev()
        .find(|m| m.starts_with(&format!("{method} ")))
        .unwrap_or_else(|| panic!("no {method} sent to {to}"))
}

/// A response to `req` (text) with `status`, To-tag `tag`, extra header lines, body.
pub fn response(req: &str, status: &str, tag: Option<&str>, extra: &str, body: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        for line in req.split("\r\n").filter(|l| {
            l.split_once(':')
                .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        }) {
            let mut line = line.to_owned();
            if name == "To" && !line.contains("tag=") {
                if let Some(t) = tag {
                    line.push_str(&format!(";tag={t}"));
                }
            }
            out.push_str(&line);
            out.push_str("\r\n");
        }
    }
    out.push_str(extra);
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out
}

/// A request inside a dialog: `method` to `uri`, with From/To/Call-ID given.
#[allow(clippy::too_many_arguments)]
pub fn in_dialog(
    method: &str,
    uri: &str,
    via_host: &str,
    from: &str,
    to: &str,
    call_id: &str,
    cseq: u32,
    body: &str,
) -> String {
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".to_owned()
    };
    format!(
        "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {via_host};branch=z9hG4bK-{method}-{cseq}-{call_id}\r\n\
         Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
         Contact: <sip:peer@{via_host}>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A call set up to the point where our INVITE reached the destination.
pub struct Setup {
    pub w: World,
    /// Our INVITE to the destination.
    pub out: String,
}

pub fn dial(cfg: Config, call_id: &str) -> Setup {
    let mut w = registered(cfg);
    let out = place(&mut w, call_id);
    Setup { w, out }
}

/// The caller's INVITE `call_id` into `w`: 100 Trying at once; returns our INVITE to
/// the destination.
pub fn place(w: &mut World, call_id: &str) -> String {
    let before = w.sent.len();
    feed(w, caller(), &invite(call_id, SDP));
    assert_eq!(
        lines(&sent_to(w, caller(), before)),
        ["SIP/2.0 100 Trying"],
        "100 Trying at once"
    );
    sent_to(w, livekit(), before)
        .into_iter()
        .rev()
        .find(|m| m.starts_with("INVITE "))
        .expect("our INVITE to the destination")
}

/// Rings and answers the call (200 with SDP); returns the 200 sent to the caller.
pub fn answer(s: &mut Setup) -> String {
    answer_in(&mut s.w, &s.out)
}

/// Rings and answers our INVITE `out` (200 with SDP); returns the 200 sent to the
/// caller, after checking that the destination got its ACK.
pub fn answer_in(w: &mut World, out: &str) -> String {
    feed(
        w,
        livekit(),
        &response(out, "180 Ringing", Some("lk"), "", ""),
    );
    let before = w.sent.len();
    let ok = response(
        out,
        "200 OK",
        Some("lk"),
        &format!("Contact: <sip:lk@{LIVEKIT}>\r\nContent-Type: application/sdp\r\n"),
        SDP,
    );
    feed(w, livekit(), &ok);
    let to_caller = sent_to(w, caller(), before);
    assert_eq!(lines(&to_caller), ["SIP/2.0 200 OK"]);
    let acks = sent_to(w, livekit(), before);
    assert_eq!(
        lines(&acks),
        [format!("ACK sip:lk@{LIVEKIT} SIP/2.0").as_str()]
    );
    to_caller[0].clone()
}

/// The caller's ACK for our 200.
pub fn caller_ack(s: &mut Setup, ok: &str, call_id: &str) {
    caller_ack_in(&mut s.w, ok, call_id);
}

/// The caller's ACK for our 200 `ok` of its call `call_id`, into `w`.
pub fn caller_ack_in(w: &mut World, ok: &str, call_id: &str) {
    let to = header(ok, "To").unwrap();
    let ack = in_dialog(
        "ACK",
        "sip:trunkline@198.51.100.1:5070",
        &format!("{REGISTRAR}:5060"),
        &format!("\"Bob\" <sip:+15550100@{REGISTRAR}>;tag=f-{call_id}"),
        to,
        call_id,
        1,
        "",
    );
    feed(w, caller(), &ack);
}

/// The caller's CANCEL of its INVITE `call_id` (same branch, no body).
pub fn cancel_of(call_id: &str) -> String {
    let inv = invite(call_id, SDP)
        .replacen("INVITE sip:", "CANCEL sip:", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    let head = &inv[..inv.find("P-Asserted").unwrap()];
    format!("{head}Content-Length: 0\r\n\r\n")
}

/// The destination rings.
pub fn ring(s: &mut Setup) {
    let ringing = response(&s.out, "180 Ringing", Some("lk"), "", "");
    feed(&mut s.w, livekit(), &ringing);
}

pub fn ended(w: &World) -> Vec<sip_core::CallRecord> {
    w.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::CallEnded(r) => Some((**r).clone()),
            _ => None,
        })
        .collect()
}
