//! [`MessageBuilder`] and [`response_to`]: our own serializer.
//!
//! Bodies go out byte for byte, `Content-Length` is always computed, and every value
//! is checked for control characters (`rsip`'s serializer did none of it).

use thiserror::Error;

use super::names::{canonical_name, is_token};
use super::{is_safe_header_value, Request, MAX_MESSAGE_SIZE};

/// Why [`MessageBuilder::try_to_bytes`] refused to write a message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BuildError {
    /// A header name is not a token (RFC 3261 §25.1).
    #[error("header name {0:?} is not a token")]
    InvalidName(String),
    /// A value would inject a line break or control character into the message.
    #[error("{0} contains a CR, LF or other control character")]
    UnsafeValue(String),
    /// The message would exceed [`MAX_MESSAGE_SIZE`].
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Size of the message as it would be written.
        size: usize,
        /// The limit, [`MAX_MESSAGE_SIZE`].
        limit: usize,
    },
}

/// Builds a message; `to_bytes` writes `Content-Length` itself.
///
/// Headers are written in the order added, with the names as given. Any
/// `Content-Length` the caller adds is dropped: the one written is computed from the
/// body, so the two can never disagree.
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    start_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl MessageBuilder {
    /// A request: `METHOD URI SIP/2.0`.
    pub fn request(method: &str, uri: &str) -> Self {
        Self {
            start_line: format!("{method} {uri} SIP/2.0"),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A response: `SIP/2.0 STATUS REASON`.
    pub fn response(status: u16, reason: &str) -> Self {
        Self {
            start_line: format!("SIP/2.0 {status} {reason}"),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Appends a header line; several calls with one name write several lines.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Sets the body (bytes, written unchanged).
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// The message as bytes: start line, headers in order, the computed
    /// `Content-Length`, an empty line, the body.
    ///
    /// Callers check untrusted values with [`super::is_safe_header_value`] first (or use
    /// [`MessageBuilder::try_to_bytes`]). As a last line of defence, any control
    /// character (other than HTAB) that still reaches a start line, name or value is
    /// written as a space, so a forgotten check cannot inject a header.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.estimated_len());
        push_sanitized(&mut out, &self.start_line);
        out.extend_from_slice(b"\r\n");
        for (name, value) in self.headers_to_write() {
            push_sanitized(&mut out, name);
            out.extend_from_slice(b": ");
            push_sanitized(&mut out, value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    /// Like [`MessageBuilder::to_bytes`], but refuses instead of sanitizing: a header
    /// name that is not a token, a control character in the start line or a value, or
    /// a message larger than [`MAX_MESSAGE_SIZE`].
    pub fn try_to_bytes(&self) -> Result<Vec<u8>, BuildError> {
        if !is_safe_header_value(&self.start_line) {
            return Err(BuildError::UnsafeValue("the start line".to_owned()));
        }
        for (name, value) in self.headers_to_write() {
            if !is_token(name) {
                return Err(BuildError::InvalidName(name.to_owned()));
            }
            if !is_safe_header_value(value) {
                return Err(BuildError::UnsafeValue(format!("the {name} header")));
            }
        }
        let bytes = self.to_bytes();
        if bytes.len() > MAX_MESSAGE_SIZE {
            return Err(BuildError::TooLarge {
                size: bytes.len(),
                limit: MAX_MESSAGE_SIZE,
            });
        }
        Ok(bytes)
    }

    /// The headers that are written: all but any caller-supplied `Content-Length`.
    fn headers_to_write(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .filter(|(name, _)| !canonical_name(name.trim()).eq_ignore_ascii_case("Content-Length"))
            .map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// A capacity hint for [`MessageBuilder::to_bytes`].
    fn estimated_len(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum();
        self.start_line.len() + headers + self.body.len() + 32
    }
}

/// Appends `s`, writing every control character but HTAB as a space.
fn push_sanitized(out: &mut Vec<u8>, s: &str) {
    if is_safe_header_value(s) {
        out.extend_from_slice(s.as_bytes());
    } else {
        let clean: String = s
            .chars()
            .map(|c| if c == '\t' || !c.is_control() { c } else { ' ' })
            .collect();
        out.extend_from_slice(clean.as_bytes());
    }
}

/// A response to `req` that copies Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6),
/// adding `;tag=to_tag` to To when given and To has no tag yet.
///
/// Every Via line is copied in order (§8.2.6.2: the response travels back along
/// them); missing headers are simply not copied. The caller adds Contact, Allow and
/// the rest.
pub fn response_to(
    req: &Request,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
) -> MessageBuilder {
    let mut builder = MessageBuilder::response(status, reason);
    for via in req.headers.get_all("Via") {
        builder = builder.header("Via", via);
    }
    if let Some(from) = req.headers.get("From") {
        builder = builder.header("From", from);
    }
    if let Some(to) = req.headers.get("To") {
        let to = match to_tag {
            Some(tag) if req.headers.to_tag().is_none() => format!("{to};tag={tag}"),
            _ => to.to_owned(),
        };
        builder = builder.header("To", to);
    }
    if let Some(call_id) = req.headers.get("Call-ID") {
        builder = builder.header("Call-ID", call_id);
    }
    if let Some(cseq) = req.headers.get("CSeq") {
        builder = builder.header("CSeq", cseq);
    }
    builder
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::message::{parse, Message};

    #[test]
    fn register_round_trip() {
        let bytes = MessageBuilder::request("REGISTER", "sip:registrar.example.com")
            .header(
                "Via",
                "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKround;rport",
            )
            .header("Max-Forwards", "70")
            .header("From", "<sip:alice@example.com>;tag=abc")
            .header("To", "<sip:alice@example.com>")
            .header("Call-ID", "round@192.0.2.10")
            .header("CSeq", "3 REGISTER")
            .header(
                "Contact",
                "<sip:alice@192.0.2.10:5060;line=xyz>;expires=600",
            )
            .header("Expires", "600")
            .header("Content-Length", "999")
            .to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("REGISTER sip:registrar.example.com SIP/2.0\r\nVia: "));
        assert!(text.ends_with("Expires: 600\r\nContent-Length: 0\r\n\r\n"));
        assert!(!text.contains("999"));

        let Ok(Message::Request(r)) = parse(&bytes) else {
            panic!("round trip failed: {text}");
        };
        assert_eq!(r.method, "REGISTER");
        assert_eq!(r.uri, "sip:registrar.example.com");
        let via = r.headers.top_via().unwrap();
        assert_eq!(via.branch.as_deref(), Some("z9hG4bKround"));
        assert_eq!(
            (via.host.as_str(), via.port, via.rport),
            ("192.0.2.10", Some(5060), None)
        );
        assert_eq!(r.headers.from_tag(), Some("abc"));
        assert_eq!(r.headers.to_tag(), None);
        assert_eq!(r.headers.call_id(), Some("round@192.0.2.10"));
        assert_eq!(r.headers.cseq(), Some((3, "REGISTER")));
        assert_eq!(r.headers.expires(), Some(600));
        let contacts = r.headers.contacts();
        assert_eq!(contacts.len(), 1);
        assert_eq!(contacts[0].uri_param("line"), Some("xyz"));
        assert_eq!(contacts[0].expires, Some(600));
        assert_eq!(r.headers.get("Content-Length"), Some("0"));
        assert!(r.body.is_empty());
    }

    #[test]
    fn body_and_content_length() {
        let bytes = MessageBuilder::request("MESSAGE", "sip:b@example.com")
            .header("l", "1")
            .header("Content-Type", "text/plain")
            .body(b"hi\r\n\xff".to_vec())
            .to_bytes();
        assert!(bytes.ends_with(b"Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhi\r\n\xff"));
        let Ok(Message::Request(r)) = parse(&bytes) else {
            panic!("did not parse");
        };
        assert_eq!(r.body, b"hi\r\n\xff");
    }

    #[test]
    fn unsafe_values_are_neutralized_or_refused() {
        let builder =
            MessageBuilder::request("OPTIONS", "sip:a@b").header("Subject", "x\r\nInjected: yes");
        let text = String::from_utf8(builder.to_bytes()).unwrap();
        assert!(text.contains("Subject: x  Injected: yes\r\n"));
        assert!(!text.contains("\r\nInjected"));
        assert_eq!(
            builder.try_to_bytes(),
            Err(BuildError::UnsafeValue("the Subject header".into()))
        );
        assert_eq!(
            MessageBuilder::request("OPTIONS", "sip:a@b")
                .header("Bad Name", "v")
                .try_to_bytes(),
            Err(BuildError::InvalidName("Bad Name".into()))
        );
        assert!(matches!(
            MessageBuilder::request("MESSAGE", "sip:a@b")
                .body(vec![b'x'; MAX_MESSAGE_SIZE])
                .try_to_bytes(),
            Err(BuildError::TooLarge { .. })
        ));
        assert!(MessageBuilder::response(200, "OK")
            .header("Call-ID", "a\tb")
            .try_to_bytes()
            .is_ok());
    }

    fn invite() -> Request {
        let bytes = "INVITE sip:bob@example.com SIP/2.0\r\n\
            Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1, SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa1\r\n\
            v: SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bKa0\r\n\
            Max-Forwards: 69\r\n\
            From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
            To: Bob <sip:bob@example.com>\r\n\
            Call-ID: a84b4c76e66710\r\n\
            CSeq: 314159 INVITE\r\n\
            Contact: <sip:alice@192.0.2.1>\r\n\
            Content-Length: 0\r\n\r\n";
        match parse(bytes.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn response_copies_dialog_headers() {
        let req = invite();
        let bytes = response_to(&req, 180, "Ringing", Some("bobtag")).to_bytes();
        let Ok(Message::Response(resp)) = parse(&bytes) else {
            panic!("did not parse");
        };
        assert_eq!((resp.status, resp.reason.as_str()), (180, "Ringing"));
        let names: Vec<&str> = resp.headers.iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "Via",
                "Via",
                "From",
                "To",
                "Call-ID",
                "CSeq",
                "Content-Length"
            ]
        );
        assert_eq!(
            resp.headers.get_all("Via").collect::<Vec<_>>(),
            req.headers.get_all("Via").collect::<Vec<_>>()
        );
        assert_eq!(
            resp.headers.get("To"),
            Some("Bob <sip:bob@example.com>;tag=bobtag")
        );
        assert_eq!(resp.headers.to_tag(), Some("bobtag"));
        assert_eq!(resp.headers.from_tag(), Some("1928301774"));
        assert_eq!(resp.headers.call_id(), Some("a84b4c76e66710"));
        assert_eq!(resp.headers.cseq(), Some((314159, "INVITE")));
        assert_eq!(
            resp.headers.top_via().and_then(|v| v.branch).as_deref(),
            Some("z9hG4bKp1")
        );
    }

    #[test]
    fn response_keeps_existing_to_tag_and_omits_without_tag() {
        let mut req = invite();
        req.headers.set("To", "<sip:bob@example.com>;tag=existing");
        let resp = response_to(&req, 200, "OK", Some("new")).to_bytes();
        let text = String::from_utf8(resp).unwrap();
        assert!(text.contains("\r\nTo: <sip:bob@example.com>;tag=existing\r\n"));

        let trying =
            String::from_utf8(response_to(&invite(), 100, "Trying", None).to_bytes()).unwrap();
        assert!(trying.contains("\r\nTo: Bob <sip:bob@example.com>\r\n"));
    }
}
