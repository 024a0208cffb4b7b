//! What crosses from one leg of a call to the other: a response onto the request it
//! answers on the other side, an in-dialog request into the other dialog, and which of
//! their headers go along.

use super::dialog::Dialog;
use super::outbound::relayed_header;
use crate::message::{response_to, MessageBuilder, Request, Response};

/// Whether a header of an in-dialog request or of a response crosses to the other leg:
/// what [`relayed_header`] relays on the INVITE, plus what in-dialog methods carry —
/// REFER's Refer-To and Referred-By (LiveKit's transfer), NOTIFY's Event and
/// Subscription-State, Reason (why a call ended), Replaces, and the `Require: timer` of
/// a session-timer answer (RFC 4028; other extensions are not ours to promise).
pub fn crosses(name: &str, value: &str) -> bool {
    const IN_DIALOG: [&str; 7] = [
        "Refer-To",
        "Referred-By",
        "Event",
        "Subscription-State",
        "Reason",
        "Replaces",
        "Allow-Events",
    ];
    if name.eq_ignore_ascii_case("Require") {
        return value.trim().eq_ignore_ascii_case("timer");
    }
    relayed_header(name) || IN_DIALOG.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// `answer` (from one leg) as our response to `request` (from the other), with our
/// To-tag `tag`, our `contact` (given for dialog-forming and target-refresh answers),
/// the headers that cross and the body unchanged; `status` and `reason` may differ from
/// the answer's (the call maps a few).
pub fn response(
    request: &Request,
    answer: &Response,
    status: u16,
    reason: &str,
    tag: &str,
    contact: Option<&str>,
) -> MessageBuilder {
    let mut b = with_record_route(
        request,
        status,
        response_to(request, status, reason, Some(tag)),
    );
    if let Some(c) = contact {
        b = b.header("Contact", c);
    }
    for (name, value) in answer.headers.iter() {
        if crosses(name, value) {
            b = b.header(name, value);
        }
    }
    b.body(answer.body.clone())
}

/// `b`, our response with `status` to `request`, with the request's Record-Route
/// copied in order when the response forms a dialog (a 101–299 to an INVITE outside
/// one): RFC 3261 §12.1.1, so that the caller's ACK, BYE and re-INVITEs follow the
/// route its proxies recorded (a provider's edge behind which we are reached).
pub fn with_record_route(request: &Request, status: u16, mut b: MessageBuilder) -> MessageBuilder {
    let forms_dialog = (101..300).contains(&status)
        && request.method == "INVITE"
        && request.headers.to_tag().is_none();
    if forms_dialog {
        for value in request.headers.get_all("Record-Route") {
            b = b.header("Record-Route", value);
        }
    }
    b
}

/// `request` (an in-dialog request from one leg) as a new request in `dialog` (the
/// other leg's), with Via branch `branch`: the same method, the headers that cross,
/// our Contact, the body unchanged.
pub fn request(dialog: &mut Dialog, request: &Request, branch: &str) -> MessageBuilder {
    let mut b = dialog
        .request(&request.method, branch)
        .header("Contact", dialog.contact());
    for (name, value) in request.headers.iter() {
        if crosses(name, value) {
            b = b.header(name, value);
        }
    }
    b.body(request.body.clone())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn what_crosses_between_the_legs() {
        assert!(crosses("Refer-To", "<sip:+1555@carrier>"));
        assert!(crosses("content-type", "application/sdp"));
        assert!(crosses("Require", "timer"));
        assert!(!crosses("Require", "100rel"), "no PRACK behind us");
        assert!(!crosses("Via", "SIP/2.0/UDP x"));
        assert!(!crosses("Contact", "<sip:x>"));
        assert!(!crosses("X-Trunkline-Did", "1"), "ours to write");
        assert!(crosses("X-Agent", "1"));
    }
}
