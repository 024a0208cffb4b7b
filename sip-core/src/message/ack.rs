//! The ACK a client INVITE transaction sends for a non-2xx final response, and the
//! CANCEL of an INVITE: both belong to the INVITE's transaction.
//!
//! RFC 3261 §17.1.1.3: the ACK belongs to the INVITE's transaction (same branch), so it
//! is built from the INVITE's own headers, not from the response's, except To, which
//! carries the tag the response added.

use super::syntax::split_top_level;
use super::{MessageBuilder, Request, Response};

/// The ACK for `response` (a 300–699 final) to `invite`: the INVITE's Request-URI,
/// Call-ID, From and CSeq number (method ACK), one Via (the INVITE's top Via, so the
/// branch matches), To from the response, and the INVITE's Route headers in order.
///
/// `None` when the INVITE lacks a Via, CSeq, Call-ID or From, or the response a To:
/// an INVITE we sent always has them, and a response without To cannot be ACKed.
pub fn ack_for_non_2xx(invite: &Request, response: &Response) -> Option<MessageBuilder> {
    same_transaction(invite, "ACK", response.headers.get("To")?)
}

/// The CANCEL for `invite` (RFC 3261 §9.1): like the ACK for a non-2xx, built from the
/// INVITE's own headers with its branch, and To exactly as the INVITE had it.
pub fn cancel_for(invite: &Request) -> Option<MessageBuilder> {
    same_transaction(invite, "CANCEL", invite.headers.get("To")?)
}

/// A request of `invite`'s transaction: its Request-URI, top Via, From, Call-ID, CSeq
/// number and Routes, with `method` and `to`.
fn same_transaction(invite: &Request, method: &str, to: &str) -> Option<MessageBuilder> {
    let top_via = split_top_level(invite.headers.get("Via")?, ',').next()?;
    let (cseq, _) = invite.headers.cseq()?;
    let mut req = MessageBuilder::request(method, &invite.uri)
        .header("Via", top_via.trim())
        .header("Max-Forwards", "70")
        .header("From", invite.headers.get("From")?)
        .header("To", to)
        .header("Call-ID", invite.headers.call_id()?)
        .header("CSeq", format!("{cseq} {method}"));
    for route in invite.headers.get_all("Route") {
        req = req.header("Route", route);
    }
    Some(req)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::message::{parse, Message};

    #[test]
    fn ack_copies_the_invites_headers_and_the_responses_to() {
        let invite = match parse(
            b"INVITE sip:bob@192.0.2.9 SIP/2.0\r\n\
              Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinv, SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKold\r\n\
              Via: SIP/2.0/UDP 192.0.2.3;branch=z9hG4bKolder\r\n\
              Route: <sip:p1.example;lr>\r\nRoute: <sip:p2.example;lr>\r\n\
              Max-Forwards: 69\r\nFrom: \"A\" <sip:a@example>;tag=ft\r\nTo: <sip:bob@example>\r\n\
              Call-ID: cid@x\r\nCSeq: 314 INVITE\r\nContact: <sip:a@192.0.2.1>\r\n\
              Content-Length: 0\r\n\r\n",
        )
        .unwrap()
        {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        };
        let response = match parse(
            b"SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinv\r\n\
              From: \"A\" <sip:a@example>;tag=ft\r\nTo: <sip:bob@example>;tag=tt\r\n\
              Call-ID: cid@x\r\nCSeq: 314 INVITE\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap()
        {
            Message::Response(r) => r,
            Message::Request(_) => unreachable!(),
        };
        let bytes = ack_for_non_2xx(&invite, &response).unwrap().to_bytes();
        let Message::Request(ack) = parse(&bytes).unwrap() else {
            panic!("not a request");
        };
        assert_eq!(
            (ack.method.as_str(), ack.uri.as_str()),
            ("ACK", "sip:bob@192.0.2.9")
        );
        assert_eq!(
            ack.headers.get_all("Via").collect::<Vec<_>>(),
            ["SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinv"]
        );
        assert_eq!(ack.headers.get("From"), invite.headers.get("From"));
        assert_eq!(ack.headers.get("To"), Some("<sip:bob@example>;tag=tt"));
        assert_eq!(ack.headers.call_id(), Some("cid@x"));
        assert_eq!(ack.headers.cseq(), Some((314, "ACK")));
        assert_eq!(
            ack.headers.get_all("Route").collect::<Vec<_>>(),
            ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
        );
        assert_eq!(ack.headers.get("Contact"), None);
        assert!(ack.body.is_empty());
    }

    #[test]
    fn cancel_keeps_the_invites_branch_and_to() {
        let Message::Request(invite) = parse(
            b"INVITE sip:bob@192.0.2.9 SIP/2.0\r\n\
              Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinv\r\n\
              Max-Forwards: 69\r\nFrom: <sip:a@example>;tag=ft\r\nTo: <sip:bob@example>\r\n\
              Call-ID: cid@x\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap() else {
            panic!("not a request");
        };
        let Message::Request(cancel) = parse(&cancel_for(&invite).unwrap().to_bytes()).unwrap()
        else {
            panic!("not a request");
        };
        assert_eq!(
            (cancel.method.as_str(), cancel.uri.as_str()),
            ("CANCEL", "sip:bob@192.0.2.9")
        );
        assert_eq!(
            cancel.headers.top_via().unwrap().branch.as_deref(),
            Some("z9hG4bKinv")
        );
        assert_eq!(cancel.headers.get("To"), Some("<sip:bob@example>"));
        assert_eq!(cancel.headers.cseq(), Some((7, "CANCEL")));
    }

    #[test]
    fn no_ack_without_the_headers_it_copies() {
        let invite = match parse(b"INVITE sip:b@h SIP/2.0\r\nCall-ID: c\r\n\r\n").unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        };
        let response = match parse(b"SIP/2.0 500 X\r\nTo: <sip:b@h>;tag=1\r\n\r\n").unwrap() {
            Message::Response(r) => r,
            Message::Request(_) => unreachable!(),
        };
        assert!(ack_for_non_2xx(&invite, &response).is_none());
    }
}
