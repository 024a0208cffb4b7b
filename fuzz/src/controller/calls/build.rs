//! The SIP messages of a call on the tape: the caller's requests (the provider side),
//! the destination's requests inside a dialog the core opened, and the destination's
//! (or the caller's) answers to the requests the core sent.
//!
//! Every builder is a pure function of the tape's choice and of what the dialog has
//! learned so far, so a tape means the same run every time.

use super::super::ops::SipReply;
use super::super::pools::{self, FIXED_DID};
use sip_core::message::{response_to, MessageBuilder, Request};
use std::net::{Ipv4Addr, SocketAddr};

/// Calls the caller can have going at once (the call index is two bits of a kind byte).
pub const CALLS: u8 = 4;

/// The caller: an allowed source (`127.0.0.1/32` in call mode), the provider's side.
pub fn caller_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 5090))
}

/// A source that is no provider and in no allow-list: its INVITEs must go nowhere.
pub fn stranger_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(127, 0, 0, 9), 5090))
}

/// The caller's offer.
pub const SDP_OFFER: &[u8] = b"v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

/// The caller putting the call on hold (RFC 3264 §8.4).
pub const SDP_HOLD: &[u8] = b"v=0\r\no=caller 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n";

/// The destination's answer.
pub const SDP_ANSWER: &[u8] = b"v=0\r\no=lk 7 7 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=sendrecv\r\n";

/// The DID each call index dials: two routed by lookup, the fixed route, and an account
/// name in the Request-URI (call 3 dials our Contact form, so the To user counts).
const CALL_DIDS: [&str; CALLS as usize] = ["+15551234", FIXED_DID, "+15559876", "alice"];

/// Which caller call a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CallerCall {
    /// The call index, below [`CALLS`].
    pub index: u8,
    /// Sent from [`stranger_addr`] instead of [`caller_addr`].
    pub stranger: bool,
}

impl CallerCall {
    /// Where its requests come from.
    pub fn source(&self) -> SocketAddr {
        if self.stranger {
            stranger_addr()
        } else {
            caller_addr()
        }
    }

    /// Its Call-ID: never one the core would make up (the core's are random tokens).
    pub fn call_id(&self) -> String {
        let who = if self.stranger { "stranger" } else { "call" };
        format!("{who}-{}@peer", self.index)
    }

    fn tag(&self) -> String {
        format!("f{}{}", u8::from(self.stranger), self.index)
    }

    /// The initial INVITE's branch: sending it again is a retransmission.
    fn invite_branch(&self) -> String {
        format!("z9hG4bKinv{}{}", u8::from(self.stranger), self.index)
    }

    /// Call 2 makes no offer in its INVITE (a late offer: the ACK carries the answer).
    fn late_offer(&self) -> bool {
        self.index == 2
    }
}

/// What the caller has learned of its dialog with the core.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerDialog {
    /// The core's To tag, from its responses.
    pub to_tag: Option<String>,
    /// The core's Contact URI, the Request-URI of in-dialog requests.
    pub target: Option<String>,
    /// The CSeq of the next new in-dialog request (the INVITE used 1).
    pub next_cseq: u32,
    /// The CSeq of the last re-INVITE, for its ACK.
    pub reinvite_cseq: Option<u32>,
}

impl CallerDialog {
    fn new_cseq(&mut self) -> u32 {
        self.next_cseq = self.next_cseq.max(2);
        let n = self.next_cseq;
        self.next_cseq += 1;
        n
    }
}

/// A request of `call` chosen by the low four bits of `kind`: the INVITE (twice as
/// likely), its ACKs and CANCEL, BYE, hold and resume re-INVITEs and their ACK, UPDATE,
/// INFO (DTMF), REFER, NOTIFY, OPTIONS, and a BYE in a dialog the core never had.
pub fn caller_request(call: CallerCall, dialog: &mut CallerDialog, kind: u8) -> Vec<u8> {
    let host = call.source();
    let did = CALL_DIDS
        .get(usize::from(call.index))
        .copied()
        .unwrap_or("+15551234");
    let to_uri = if call.index == 3 {
        "sip:+15557777@127.0.0.1".to_owned()
    } else {
        format!("sip:{did}@127.0.0.1")
    };
    let in_dialog = |tag: Option<&str>| match tag {
        Some(tag) => format!("<{to_uri}>;tag={tag}"),
        None => format!("<{to_uri}>"),
    };
    let target = dialog
        .target
        .clone()
        .unwrap_or_else(|| "sip:trunkline@127.0.0.1:5060".to_owned());
    let our_tag = dialog.to_tag.clone();
    let branch_of = |what: &str, cseq: u32| format!("z9hG4bK{what}{}-{cseq}", call.tag());
    // (method, Request-URI, To, CSeq, branch, body)
    let (method, uri, to, cseq, branch, body): (&str, String, String, u32, String, &[u8]) =
        match kind & 0x0F {
            0 | 1 => {
                let uri = if call.index == 3 {
                    "sip:alice@127.0.0.1:5060;line=abc".to_owned()
                } else {
                    format!("sip:{did}@127.0.0.1:5060")
                };
                let body: &[u8] = if call.late_offer() { b"" } else { SDP_OFFER };
                let to = in_dialog(None);
                ("INVITE", uri, to, 1, call.invite_branch(), body)
            }
            2 => {
                let body: &[u8] = if call.late_offer() { SDP_OFFER } else { b"" };
                let to = in_dialog(our_tag.as_deref());
                ("ACK", target, to, 1, branch_of("ack", 1), body)
            }
            3 => {
                let to = in_dialog(our_tag.as_deref());
                let uri = format!("sip:{did}@127.0.0.1:5060");
                ("ACK", uri, to, 1, call.invite_branch(), b"")
            }
            4 => {
                let uri = format!("sip:{did}@127.0.0.1:5060");
                ("CANCEL", uri, in_dialog(None), 1, call.invite_branch(), b"")
            }
            6 | 7 => {
                let cseq = dialog.new_cseq();
                dialog.reinvite_cseq = Some(cseq);
                let body = if kind & 0x0F == 6 {
                    SDP_HOLD
                } else {
                    SDP_OFFER
                };
                let to = in_dialog(our_tag.as_deref());
                ("INVITE", target, to, cseq, branch_of("re", cseq), body)
            }
            8 => {
                let cseq = dialog.reinvite_cseq.unwrap_or(2);
                let to = in_dialog(our_tag.as_deref());
                ("ACK", target, to, cseq, branch_of("reack", cseq), b"")
            }
            15 => {
                let cseq = dialog.new_cseq();
                let to = in_dialog(Some("never-ours"));
                ("BYE", target, to, cseq, branch_of("gone", cseq), b"")
            }
            other => {
                let (method, body): (&str, &[u8]) = match other {
                    5 => ("BYE", b""),
                    9 => ("UPDATE", SDP_OFFER),
                    10 => ("INFO", b"Signal=5\r\nDuration=160\r\n"),
                    11 => ("REFER", b""),
                    12 => ("NOTIFY", b"SIP/2.0 200 OK\r\n"),
                    _ => ("OPTIONS", b""),
                };
                let cseq = dialog.new_cseq();
                let to = in_dialog(our_tag.as_deref());
                let branch = branch_of(&method.to_ascii_lowercase(), cseq);
                (method, target, to, cseq, branch, body)
            }
        };
    let mut b = MessageBuilder::request(method, &uri)
        .header("Via", format!("SIP/2.0/UDP {host};branch={branch};rport"))
        .header("Max-Forwards", "70")
        .header(
            "From",
            format!(
                "\"Caller {}\" <sip:+1555000{}@{}>;tag={}",
                call.index,
                call.index,
                host.ip(),
                call.tag()
            ),
        )
        .header("To", to)
        .header("Call-ID", call.call_id())
        .header("CSeq", format!("{cseq} {method}"));
    if matches!(method, "INVITE" | "UPDATE" | "REFER" | "NOTIFY") {
        b = b.header("Contact", format!("<sip:caller@{host}>"));
    }
    b = with_extras(b, method, body, cseq == 1);
    b.body(body.to_vec()).to_bytes()
}

/// The headers a method's body and purpose need; the initial INVITE also carries the
/// identity and `X-` headers the core relays.
fn with_extras(mut b: MessageBuilder, method: &str, body: &[u8], initial: bool) -> MessageBuilder {
    if !body.is_empty() {
        let content_type = match method {
            "INFO" => "application/dtmf-relay",
            "NOTIFY" => "message/sipfrag;version=2.0",
            _ => "application/sdp",
        };
        b = b.header("Content-Type", content_type);
    }
    match method {
        "INVITE" if initial => b
            .header("P-Asserted-Identity", "<sip:+15550000@127.0.0.1>")
            .header("X-Agent-Hint", "sales")
            .header("Session-Expires", "1800;refresher=uac"),
        "REFER" => b
            .header("Refer-To", "<sip:+15550002@127.0.0.1>")
            .header("Referred-By", "<sip:agent@127.0.0.1>"),
        "NOTIFY" => b
            .header("Event", "refer")
            .header("Subscription-State", "terminated;reason=noresource"),
        _ => b,
    }
}

/// One of the core's outbound legs, as its destination sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalleeLeg {
    /// The leg's Call-ID (the core's).
    pub call_id: String,
    /// Where the core sent its INVITE: the destination's address.
    pub remote: SocketAddr,
    /// The INVITE's From, with the core's tag.
    pub from: String,
    /// The INVITE's To, without a tag.
    pub to: String,
    /// The core's Contact URI.
    pub target: String,
    /// The tag the destination answers with: the first 18x/2xx's, else `lk0`.
    pub to_tag: Option<String>,
    /// The CSeq of the destination's next request.
    pub next_cseq: u32,
    /// The CSeq of its last re-INVITE, for its ACK.
    pub reinvite_cseq: Option<u32>,
}

/// A request the destination sends inside `leg`'s dialog, by the low four bits of
/// `kind`: BYE, hold and resume re-INVITEs and their ACK, UPDATE, INFO, REFER (LiveKit's
/// transfer), NOTIFY, OPTIONS.
pub fn callee_request(leg: &mut CalleeLeg, kind: u8) -> Vec<u8> {
    let (method, body): (&str, &[u8]) = match kind & 0x0F {
        0 | 8 => ("BYE", b""),
        1 | 9 => ("INVITE", SDP_HOLD),
        2 | 10 => ("INVITE", SDP_ANSWER),
        3 | 11 => ("ACK", b""),
        4 | 12 => ("UPDATE", SDP_ANSWER),
        5 | 13 => ("INFO", b"Signal=1\r\nDuration=100\r\n"),
        6 | 14 => ("REFER", b""),
        7 => ("NOTIFY", b"SIP/2.0 100 Trying\r\n"),
        _ => ("OPTIONS", b""),
    };
    let cseq = if method == "ACK" {
        leg.reinvite_cseq.unwrap_or(leg.next_cseq)
    } else {
        let n = leg.next_cseq.max(100);
        leg.next_cseq = n + 1;
        if method == "INVITE" {
            leg.reinvite_cseq = Some(n);
        }
        n
    };
    let tag = leg.to_tag.clone().unwrap_or_else(|| "lk0".to_owned());
    let branch = format!("z9hG4bKlk-{cseq}-{}", method.to_ascii_lowercase());
    let mut b = MessageBuilder::request(method, &leg.target)
        .header(
            "Via",
            format!("SIP/2.0/UDP {};branch={branch};rport", leg.remote),
        )
        .header("Max-Forwards", "70")
        .header("From", format!("{};tag={tag}", leg.to))
        .header("To", leg.from.clone())
        .header("Call-ID", leg.call_id.clone())
        .header("CSeq", format!("{cseq} {method}"));
    if matches!(method, "INVITE" | "UPDATE" | "REFER" | "NOTIFY") {
        b = b.header("Contact", format!("<sip:lk@{}>", leg.remote));
    }
    b = with_extras(b, method, body, false);
    b.body(body.to_vec()).to_bytes()
}

/// Final statuses a destination (or a caller asked something in-dialog) answers with.
const CALL_FAILURES: &[(u16, &str)] = &[
    (486, "Busy Here"),
    (487, "Request Terminated"),
    (603, "Decline"),
    (302, "Moved Temporarily"),
    (404, "Not Found"),
    (480, "Temporarily Unavailable"),
    (500, "Server Internal Error"),
    (503, "Service Unavailable"),
    (600, "Busy Everywhere"),
    (403, "Forbidden"),
];

/// Statuses the [`SipReply::TooBrief`] pick stands for in a call.
const CALL_ODD: &[(u16, &str)] = &[
    (491, "Request Pending"),
    (481, "Call/Transaction Does Not Exist"),
    (408, "Request Timeout"),
    (488, "Not Acceptable Here"),
];

/// The bytes answering `req` (a request the core sent to `remote`), as the registrar
/// picks mean for a call: 1xx (100, 180, 183 with SDP, 180 of a second fork), 401/407
/// (LiveKit's `Proxy-Authenticate` without qop, or the registrar challenge pool), 2xx
/// (with or without SDP, Contact, Record-Route; from fork `lk0` or `lk1`), 491 / 481 /
/// 408 / 488, or a failure (486, 487, 603, 302 with a Contact, 503 with Retry-After …).
pub fn call_response(req: &Request, remote: SocketAddr, reply: &SipReply) -> Vec<u8> {
    let offers = matches!(req.method.as_str(), "INVITE" | "UPDATE");
    let contact = format!("<sip:lk@{remote}>");
    match reply {
        SipReply::Provisional { variant } => match variant % 4 {
            0 => response_to(req, 100, "Trying", None).to_bytes(),
            1 => response_to(req, 180, "Ringing", Some("lk0"))
                .header("Contact", contact)
                .to_bytes(),
            2 => response_to(req, 183, "Session Progress", Some("lk0"))
                .header("Contact", contact)
                .header("Content-Type", "application/sdp")
                .body(SDP_ANSWER.to_vec())
                .to_bytes(),
            _ => response_to(req, 180, "Ringing", Some("lk1"))
                .header("Contact", contact)
                .to_bytes(),
        },
        SipReply::Challenge {
            proxy,
            variant,
            realm,
            nonce,
            stale,
        } => {
            let nonce_value = pools::pick(NONCES, *nonce).unwrap_or("n0");
            let (status, reason, header) = pools::challenge_status(*proxy);
            let mut b = response_to(req, status, reason, Some("lk0"));
            if variant % 3 == 0 {
                b = b.header(
                    header,
                    format!("Digest realm=\"LiveKit\", nonce=\"{nonce_value}\", algorithm=MD5"),
                );
            } else {
                for value in pools::challenge_values(*variant, *realm, *nonce, *stale) {
                    b = b.header(header, value);
                }
            }
            b.to_bytes()
        }
        SipReply::Ok { variant, expires } => {
            let tag = if expires % 2 == 0 { "lk0" } else { "lk1" };
            let mut b = response_to(req, 200, "OK", Some(tag));
            if variant % 4 != 3 {
                b = b.header("Contact", contact);
            }
            if variant % 4 == 2 {
                b = b.header("Record-Route", "<sip:127.0.0.3;lr>");
            }
            if offers && variant % 4 != 1 {
                b = b
                    .header("Content-Type", "application/sdp")
                    .body(SDP_ANSWER.to_vec());
            }
            b.to_bytes()
        }
        SipReply::TooBrief { min } => {
            let (status, reason) = pools::pick(CALL_ODD, *min).unwrap_or((491, ""));
            response_to(req, status, reason, Some("lk0")).to_bytes()
        }
        SipReply::Failure {
            status,
            retry_after,
        } => {
            let (status, reason) = pools::pick(CALL_FAILURES, *status).unwrap_or((486, ""));
            let mut b = response_to(req, status, reason, Some("lk0"));
            if status == 302 {
                b = b.header("Contact", "<sip:elsewhere@127.0.0.1>");
            }
            if matches!(status, 486 | 480 | 503 | 600) {
                if let Some(ra) = pools::retry_after(*retry_after) {
                    b = b.header("Retry-After", ra);
                }
            }
            b.to_bytes()
        }
    }
}

/// Nonces of LiveKit-style challenges (few: a repeated nonce means "wrong password").
const NONCES: &[&str] = &["lk-n0", "lk-n1", "lk-n2"];
