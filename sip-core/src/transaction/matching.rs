//! Which transaction a message belongs to (RFC 3261 §17.1.3 and §17.2.3).
//!
//! Only RFC 3261 requests are matched: a top Via branch starting with the magic cookie
//! `z9hG4bK`. RFC 2543 peers (no cookie) are not matched by §17.2.3's fallback of
//! Request-URI, tags, Call-ID, CSeq and Via: they are told to upgrade with a `400` by
//! the caller (see [`super::ServerStep::NotRfc3261`]). RFC 3261 is from 2002; every
//! provider and LiveKit send the cookie, and the fallback would be a second matching
//! scheme to keep correct for no known peer.

use crate::message::{Request, Response};

/// The magic cookie that marks an RFC 3261 branch (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// A client transaction's identity: the branch we put in our top Via and the method
/// of the request (§17.1.3: a CANCEL shares its INVITE's branch but not its method).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct ClientKey {
    pub branch: String,
    pub method: String,
}

impl ClientKey {
    /// The key a response is matched by: its top Via branch and its CSeq method.
    pub fn of_response(response: &Response) -> Option<Self> {
        let branch = response.headers.top_via()?.branch?;
        let (_, method) = response.headers.cseq()?;
        Some(Self {
            branch,
            method: method.to_owned(),
        })
    }
}

/// A server transaction's identity (§17.2.3): the top Via's branch and sent-by, and the
/// method, where an ACK counts as the INVITE it acknowledges. A CANCEL has a
/// transaction of its own (method CANCEL); [`ServerKey::cancelled`] finds its INVITE.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct ServerKey {
    pub branch: String,
    pub sent_by: String,
    pub method: String,
}

/// Why a request cannot be matched to a server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unmatchable {
    /// No readable top Via, or its branch lacks the magic cookie (RFC 2543).
    NotRfc3261,
}

impl ServerKey {
    /// The key of `request`; an ACK maps to its INVITE's key.
    pub fn of_request(request: &Request) -> Result<Self, Unmatchable> {
        let via = request.headers.top_via().ok_or(Unmatchable::NotRfc3261)?;
        let branch = via
            .branch
            .filter(|b| b.starts_with(MAGIC_COOKIE))
            .ok_or(Unmatchable::NotRfc3261)?;
        // sent-by compared as host (case-insensitive) and port, the default port
        // written out so `host` and `host:5060` are the same sender (§18.2.1).
        let default_port = if via.transport == "TLS" { 5061 } else { 5060 };
        let sent_by = format!(
            "{}:{}",
            via.host.to_ascii_lowercase(),
            via.port.unwrap_or(default_port)
        );
        let method = if request.method == "ACK" {
            "INVITE".to_owned()
        } else {
            request.method.clone()
        };
        Ok(Self {
            branch,
            sent_by,
            method,
        })
    }

    /// For a CANCEL's key: the key of the INVITE it cancels (same branch and sent-by,
    /// RFC 3261 §9.2).
    pub fn cancelled(&self) -> Self {
        Self {
            method: "INVITE".to_owned(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::message::{parse, Message};

    fn request(method: &str, via: &str) -> Request {
        let text = format!(
            "{method} sip:a@b SIP/2.0\r\nVia: {via}\r\nCall-ID: c\r\nCSeq: 1 {method}\r\n\r\n"
        );
        match parse(text.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    #[test]
    fn ack_matches_its_invite_and_cancel_finds_it() {
        let via = "SIP/2.0/UDP Host.Example;branch=z9hG4bK1";
        let invite = ServerKey::of_request(&request("INVITE", via)).unwrap();
        let ack = ServerKey::of_request(&request("ACK", via)).unwrap();
        let cancel = ServerKey::of_request(&request("CANCEL", via)).unwrap();
        assert_eq!(invite, ack);
        assert_ne!(invite, cancel);
        assert_eq!(cancel.cancelled(), invite);
        // Default port written out, host case folded.
        let explicit = ServerKey::of_request(&request(
            "INVITE",
            "SIP/2.0/UDP host.example:5060;branch=z9hG4bK1",
        ))
        .unwrap();
        assert_eq!(explicit, invite);
        // Another sender with the same branch is another transaction.
        let other = ServerKey::of_request(&request(
            "INVITE",
            "SIP/2.0/UDP host.example:5062;branch=z9hG4bK1",
        ))
        .unwrap();
        assert_ne!(other, invite);
    }

    #[test]
    fn rfc_2543_branches_are_unmatchable() {
        for via in [
            "SIP/2.0/UDP h;branch=1234",
            "SIP/2.0/UDP h",
            "SIP/2.0/UDP h;branch=Z9HG4BK1",
        ] {
            assert_eq!(
                ServerKey::of_request(&request("OPTIONS", via)),
                Err(Unmatchable::NotRfc3261),
                "{via}"
            );
        }
    }
}
