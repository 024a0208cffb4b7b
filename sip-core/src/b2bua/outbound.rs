//! The INVITE towards the destination, made from the caller's INVITE.
//!
//! A new dialog of our own (new Call-ID, From tag, our Via and Contact) that carries the
//! call's meaning across: From has the caller's number and display name, To and the
//! Request-URI are the destination, Max-Forwards is one less, the body (the SDP offer)
//! goes unchanged with its Content-Type. Behind us the destination can no longer tell
//! providers apart by source address, so the `X-Trunkline-*` headers of CONTRACT.md §6
//! say who is calling; such headers from the caller are dropped, not relayed, so no
//! caller can pose as another provider. Which caller headers are relayed is
//! [`relayed_header`].

use crate::message::{display_name, header_uri, is_safe_header_value, MessageBuilder, Request};
use crate::transport::Transport;

use super::admission::uri_user;

/// Max-Forwards when the caller sent none (RFC 3261 §8.1.1.6).
pub const DEFAULT_MAX_FORWARDS: u32 = 70;

/// Methods we handle in a call's dialogs, announced in `Allow`.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REFER, NOTIFY";

/// Why the caller's INVITE cannot be forwarded as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotForwarded {
    /// Max-Forwards reached 0: `483 Too Many Hops`.
    #[error("Max-Forwards reached 0")]
    TooManyHops,
    /// Max-Forwards is not a number: `400`.
    #[error("Max-Forwards is not a number")]
    BadMaxForwards,
}

/// The Max-Forwards of the outbound INVITE: one less than the caller's.
pub fn next_max_forwards(req: &Request) -> Result<u32, NotForwarded> {
    match req.headers.get("Max-Forwards") {
        None => Ok(DEFAULT_MAX_FORWARDS),
        Some(v) => match v.trim().parse::<u32>() {
            Ok(0) => Err(NotForwarded::TooManyHops),
            // RFC 3261 §20.22 bounds it at 255 in practice; a huge value is not ours
            // to pass on.
            Ok(n) => Ok((n - 1).min(255)),
            Err(_) => Err(NotForwarded::BadMaxForwards),
        },
    }
}

/// Whether a header of the caller's request goes on to the destination.
///
/// Relayed: identity and redirection (P-Asserted-Identity, P-Preferred-Identity,
/// Remote-Party-ID, Privacy, Diversion, History-Info), what agents read
/// (User-to-User, Subject, Priority, Call-Info, Alert-Info, `X-*`), session timers
/// (Session-Expires, Min-SE: RFC 4028, so refreshes flow end to end) and the body's
/// description (Content-Type, Content-Disposition, Content-Language). Not relayed:
/// whatever is hop-by-hop or ours to write (Via, Route, Record-Route, Contact, From,
/// To, Call-ID, CSeq, Max-Forwards, Content-Length, Allow, Supported, Require,
/// authorization headers, User-Agent) and `X-Trunkline-*`, which we write.
pub fn relayed_header(name: &str) -> bool {
    const RELAYED: [&str; 16] = [
        "P-Asserted-Identity",
        "P-Preferred-Identity",
        "Remote-Party-ID",
        "Privacy",
        "Diversion",
        "History-Info",
        "User-to-User",
        "Subject",
        "Priority",
        "Call-Info",
        "Alert-Info",
        "Session-Expires",
        "Min-SE",
        "Content-Type",
        "Content-Disposition",
        "Content-Language",
    ];
    if name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("X-")) {
        return !name
            .get(..12)
            .is_some_and(|p| p.eq_ignore_ascii_case("X-Trunkline-"));
    }
    RELAYED.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Who is calling, as the destination is told in `X-Trunkline-*` (each only when known).
#[derive(Debug, Clone, Copy, Default)]
pub struct CallIdentity<'a> {
    /// The provider's `id`.
    pub provider_id: Option<&'a str>,
    /// The provider's `name`.
    pub provider_name: Option<&'a str>,
    /// The dialed number.
    pub did: Option<&'a str>,
    /// The provider leg's Call-ID.
    pub inbound_call_id: Option<&'a str>,
}

/// What our side of the new dialog is.
#[derive(Debug, Clone, Copy)]
pub struct OutboundLeg<'a> {
    /// Request-URI and To: where the call goes.
    pub destination: &'a str,
    /// Our `host:port`, for Via's sent-by, From's host and Contact.
    pub local: &'a str,
    /// Via branch (with the magic cookie).
    pub branch: &'a str,
    /// The new dialog's Call-ID.
    pub call_id: &'a str,
    /// Our From tag.
    pub from_tag: &'a str,
    /// The INVITE's CSeq number.
    pub cseq: u32,
    /// From [`next_max_forwards`].
    pub max_forwards: u32,
    /// Our `User-Agent`.
    pub user_agent: &'a str,
    /// The transport the INVITE goes over (Via, Contact).
    pub transport: Transport,
}

/// The caller's number (the From user) of a request, if it has one.
pub fn caller_number(req: &Request) -> Option<&str> {
    req.headers
        .get("From")
        .and_then(header_uri)
        .and_then(uri_user)
}

/// The INVITE to the destination for the caller's `inbound` INVITE.
pub fn outbound_invite(
    inbound: &Request,
    leg: &OutboundLeg<'_>,
    who: &CallIdentity<'_>,
) -> MessageBuilder {
    let from_value = inbound.headers.get("From");
    let caller = caller_number(inbound).unwrap_or("anonymous");
    let from_uri = format!("sip:{caller}@{}", leg.local);
    let from = match from_value.and_then(display_name) {
        Some(name) => format!("{} <{from_uri}>;tag={}", quoted(&name), leg.from_tag),
        None => format!("<{from_uri}>;tag={}", leg.from_tag),
    };
    let mut b = MessageBuilder::request("INVITE", leg.destination)
        .header("Via", leg.transport.via(leg.local, leg.branch))
        .header("Max-Forwards", leg.max_forwards.to_string())
        .header("From", from)
        .header("To", format!("<{}>", leg.destination))
        .header("Call-ID", leg.call_id)
        .header("CSeq", format!("{} INVITE", leg.cseq))
        .header("Contact", super::uri::our_contact(leg.local, leg.transport))
        .header("Allow", ALLOW)
        .header("Supported", "timer")
        .header("User-Agent", leg.user_agent);
    for (name, value) in inbound.headers.iter() {
        if relayed_header(name) {
            b = b.header(name, value);
        }
    }
    let added = [
        ("X-Trunkline-Provider-Id", who.provider_id),
        ("X-Trunkline-Provider-Name", who.provider_name),
        ("X-Trunkline-Did", who.did),
        ("X-Trunkline-Caller", caller_number(inbound)),
        ("X-Trunkline-Call-Id", who.inbound_call_id),
    ];
    for (name, value) in added {
        if let Some(v) = value
            .map(str::trim)
            .filter(|v| !v.is_empty() && is_safe_header_value(v))
        {
            b = b.header(name, v);
        }
    }
    b.body(inbound.body.clone())
}

/// A display name as a quoted string (RFC 3261 §25.1), `"` and `\` escaped.
fn quoted(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::message::{parse, Message};

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

    fn inbound(extra: &str) -> Request {
        let text = format!(
            "INVITE sip:alice@127.0.0.1:5060;line=abc SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bKprov\r\n\
             Max-Forwards: 69\r\n\
             From: \"Bob \\\"B\\\" Caller\" <sip:+15550100@provider.invalid>;tag=pt\r\n\
             To: <sip:+4930123456@127.0.0.1>\r\n\
             Call-ID: provider-call-1\r\n\
             CSeq: 7 INVITE\r\n\
             Contact: <sip:+15550100@127.0.0.10>\r\n\
             P-Asserted-Identity: <sip:+15550100@provider.invalid>\r\n\
             X-Customer: 42\r\n\
             X-Trunkline-Provider-Id: forged\r\n\
             Record-Route: <sip:127.0.0.10;lr>\r\n\
             Session-Expires: 1800;refresher=uac\r\n\
             Supported: 100rel, timer\r\n\
             {extra}Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{SDP}",
            SDP.len()
        );
        match parse(text.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => panic!("a request"),
        }
    }

    fn leg() -> OutboundLeg<'static> {
        OutboundLeg {
            destination: "sip:+4930123456@livekit.invalid",
            local: "127.0.0.1:5060",
            branch: "z9hG4bKout",
            call_id: "new-call-id",
            from_tag: "ft",
            cseq: 1,
            max_forwards: 68,
            user_agent: "trunkline/test",
            transport: Transport::Udp,
        }
    }

    fn who() -> CallIdentity<'static> {
        CallIdentity {
            provider_id: Some("p1"),
            provider_name: Some("WaVoIP\r\nX-Evil: 1"),
            did: Some("+4930123456"),
            inbound_call_id: Some("provider-call-1"),
        }
    }

    #[test]
    fn the_outbound_invite_is_a_new_dialog_that_says_who_calls() {
        let bytes = outbound_invite(&inbound(""), &leg(), &who()).to_bytes();
        let Message::Request(out) = parse(&bytes).unwrap() else {
            panic!("a request")
        };
        let h = &out.headers;
        assert_eq!(out.uri, "sip:+4930123456@livekit.invalid");
        assert_eq!(h.get("To"), Some("<sip:+4930123456@livekit.invalid>"));
        assert_eq!(h.call_id(), Some("new-call-id"));
        assert_eq!(h.get("CSeq"), Some("1 INVITE"));
        assert_eq!(h.get("Max-Forwards"), Some("68"));
        assert_eq!(
            h.get("From"),
            Some("\"Bob \\\"B\\\" Caller\" <sip:+15550100@127.0.0.1:5060>;tag=ft")
        );
        assert_eq!(h.get_all("Via").count(), 1);
        assert!(h.get("Via").unwrap().contains("z9hG4bKout"));
        assert_eq!(h.get("Contact"), Some("<sip:trunkline@127.0.0.1:5060>"));
        assert_eq!(h.get("Record-Route"), None);
        assert_eq!(h.get("Supported"), Some("timer"));
        // Relayed as they came.
        assert_eq!(
            h.get("P-Asserted-Identity"),
            Some("<sip:+15550100@provider.invalid>")
        );
        assert_eq!(h.get("X-Customer"), Some("42"));
        assert_eq!(h.get("Session-Expires"), Some("1800;refresher=uac"));
        assert_eq!(out.body, SDP.as_bytes());
        assert_eq!(h.get("Content-Type"), Some("application/sdp"));
        // Ours, and only ours: the caller's forged one is gone; an unsafe value is left out.
        let ids: Vec<&str> = h.get_all("X-Trunkline-Provider-Id").collect();
        assert_eq!(ids, ["p1"]);
        assert_eq!(h.get("X-Trunkline-Provider-Name"), None);
        assert_eq!(h.get("X-Evil"), None);
        assert_eq!(h.get("X-Trunkline-Did"), Some("+4930123456"));
        assert_eq!(h.get("X-Trunkline-Caller"), Some("+15550100"));
        assert_eq!(h.get("X-Trunkline-Call-Id"), Some("provider-call-1"));
    }

    #[test]
    fn max_forwards_counts_down_and_stops_at_zero() {
        assert_eq!(next_max_forwards(&inbound("")), Ok(68));
        let mut r = inbound("");
        r.headers.retain(|n, _| n != "Max-Forwards");
        assert_eq!(next_max_forwards(&r), Ok(70));
        r.headers.set("Max-Forwards", "0");
        assert_eq!(next_max_forwards(&r), Err(NotForwarded::TooManyHops));
        r.headers.set("Max-Forwards", "many");
        assert_eq!(next_max_forwards(&r), Err(NotForwarded::BadMaxForwards));
        r.headers.set("Max-Forwards", "100000");
        assert_eq!(next_max_forwards(&r), Ok(255));
    }

    #[test]
    fn an_anonymous_caller_stays_anonymous() {
        let mut r = inbound("");
        r.headers.set("From", "<sip:anonymous.invalid>;tag=x");
        let bytes = outbound_invite(&r, &leg(), &CallIdentity::default()).to_bytes();
        let Message::Request(out) = parse(&bytes).unwrap() else {
            panic!("a request")
        };
        assert_eq!(
            out.headers.get("From"),
            Some("<sip:anonymous@127.0.0.1:5060>;tag=ft")
        );
        assert_eq!(out.headers.get("X-Trunkline-Caller"), None);
        assert_eq!(out.headers.get("X-Trunkline-Did"), None);
    }

    #[test]
    fn relay_policy() {
        for h in [
            "x-foo",
            "X-LK-Room",
            "Diversion",
            "user-to-user",
            "content-language",
            "Min-SE",
        ] {
            assert!(relayed_header(h), "{h}");
        }
        for h in [
            "Via",
            "Route",
            "Record-Route",
            "Contact",
            "Require",
            "Supported",
            "Authorization",
            "Proxy-Authorization",
            "x-trunkline-did",
            "X-Trunkline-Call-Id",
            "Content-Length",
            "X",
        ] {
            assert!(!relayed_header(h), "{h}");
        }
    }
}
