//! [`parse`]: normalize, split the start line, frame the body — one pass of our own.

use super::limits::check_size;
use super::names::is_token;
use super::normalize::{excerpt, malformed, split_head, Head};
use super::syntax::trim_ws;
use super::{Headers, Message, ParseError, Request, Response};

/// Parses one datagram (or one message framed off a stream).
///
/// In order: the size limit; the header-count and Via-count limits of
/// [`check_limits`](super::check_limits), counted while reading the head;
/// normalization (leading CRLFs, LF-only endings, folding, space before `:`, compact
/// names) into one buffer of header text; our own start-line grammar; body framing.
/// The body is exactly `Content-Length` bytes when that header is present (extra
/// trailing bytes are ignored, too few is an error), else the rest.
///
/// This parser replaced `rsip`'s envelope check, which tokenized every message a
/// second (for start lines it could not read, a third) time and capped parsing at
/// about 100k messages per second; every rule it enforced that SIP needs is here
/// (tokens for names and methods, a colon per header line, no control characters,
/// UTF-8, a scheme in the Request-URI, a status in 100–699).
///
/// Malformed input returns `Err`; no input panics.
pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
    // The size first, before anything allocates; header and Via counts as the head is
    // read (the same limits as `check_limits`, which triage applies before this).
    check_size(bytes)?;
    let Head {
        start_line,
        headers,
        rest,
    } = split_head(bytes)?;
    let start = parse_start_line(start_line)?;
    let body = frame_body(&headers, rest)?.to_vec();
    Ok(match start {
        StartLine::Request { method, uri } => Message::Request(Request {
            method: method.to_owned(),
            uri: uri.to_owned(),
            headers,
            body,
        }),
        StartLine::Response { status, reason } => Message::Response(Response {
            status,
            reason: reason.to_owned(),
            headers,
            body,
        }),
    })
}

/// A start line, split by our own grammar (RFC 3261 §7.1, §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartLine<'a> {
    Request { method: &'a str, uri: &'a str },
    Response { status: u16, reason: &'a str },
}

/// Splits and checks a start line.
///
/// Lenient where peers differ harmlessly: runs of whitespace between elements, the
/// version's case (§7.1 calls it case-insensitive), a status line without the space
/// before an empty reason. Strict where the core depends on it: the method is a token,
/// the URI has a scheme, the status has three digits in 100–699.
fn parse_start_line(line: &str) -> Result<StartLine<'_>, ParseError> {
    let mut words = line.split([' ', '\t']).filter(|w| !w.is_empty());
    let first = words.next().unwrap_or_default();
    if is_sip_version(first) {
        let rest = line.get(first.len()..).unwrap_or_default().trim_start();
        let (code, reason) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed(format!(
                "status code {} is not three digits",
                excerpt(code)
            )));
        }
        let status: u16 = code
            .parse()
            .map_err(|_| malformed("status code is not a number"))?;
        if !(100..=699).contains(&status) {
            return Err(malformed(format!(
                "status code {status} is outside 100-699"
            )));
        }
        return Ok(StartLine::Response {
            status,
            reason: trim_ws(reason),
        });
    }

    let (Some(uri), Some(version), None) = (words.next(), words.next(), words.next()) else {
        return Err(malformed(format!(
            "start line {} is neither `METHOD URI SIP/2.0` nor `SIP/2.0 CODE REASON`",
            excerpt(line)
        )));
    };
    if !is_token(first) {
        return Err(malformed(format!(
            "method {} is not a token",
            excerpt(first)
        )));
    }
    if !is_sip_version(version) {
        return Err(malformed(format!(
            "version {} is not SIP/2.0",
            excerpt(version)
        )));
    }
    if !has_scheme(uri) {
        return Err(malformed(format!(
            "Request-URI {} has no scheme",
            excerpt(uri)
        )));
    }
    Ok(StartLine::Request { method: first, uri })
}

/// Whether `s` is `SIP/2.0`, in any case.
fn is_sip_version(s: &str) -> bool {
    s.eq_ignore_ascii_case("SIP/2.0")
}

/// Whether `uri` starts with `scheme ":"` followed by something (RFC 3986 §3.1).
fn has_scheme(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
}

/// The body: `Content-Length` bytes of `rest` when the header is present, else all of
/// `rest` (RFC 3261 §18.3: on a datagram the length may be omitted).
fn frame_body<'a>(headers: &Headers, rest: &'a [u8]) -> Result<&'a [u8], ParseError> {
    match declared_length(headers.get_all("Content-Length"))
        .map_err(ParseError::InvalidContentLength)?
    {
        None => Ok(rest),
        Some(len) => rest.get(..len).ok_or(ParseError::Truncated {
            declared: len,
            available: rest.len(),
        }),
    }
}

/// The body length that `values` (every `Content-Length` of a message) declare: none
/// when there is no value; an error naming the fault when one is not a decimal number
/// or two disagree. The one rule for datagrams and streams (`stream.rs`).
pub(super) fn declared_length<'v>(
    values: impl IntoIterator<Item = &'v str>,
) -> Result<Option<usize>, String> {
    let mut declared: Option<usize> = None;
    for value in values {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{} is not a decimal number", excerpt(value)));
        }
        // Digits only, so the only failure left is overflow: more than any message.
        let len = value.parse::<usize>().unwrap_or(usize::MAX);
        match declared {
            Some(previous) if previous != len => {
                return Err(format!(
                    "two Content-Length headers disagree ({previous} and {len})"
                ))
            }
            _ => declared = Some(len),
        }
    }
    Ok(declared)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::message::MAX_MESSAGE_SIZE;

    const REGISTER: &str = "REGISTER sip:registrar.example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKabc;rport\r\n\
        Max-Forwards: 70\r\n\
        From: <sip:alice@example.com>;tag=f1\r\n\
        To: <sip:alice@example.com>\r\n\
        Call-ID: c1@192.0.2.10\r\n\
        CSeq: 7 REGISTER\r\n\
        Contact: <sip:alice@192.0.2.10:5060>\r\n\
        Expires: 3600\r\n\
        Content-Length: 0\r\n\r\n";

    fn request(s: &str) -> Request {
        match parse(s.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    fn response(s: &str) -> Response {
        match parse(s.as_bytes()) {
            Ok(Message::Response(r)) => r,
            other => panic!("not a response: {other:?}"),
        }
    }

    #[test]
    fn plain_register() {
        let r = request(REGISTER);
        assert_eq!(r.method, "REGISTER");
        assert_eq!(r.uri, "sip:registrar.example.com");
        assert_eq!(r.headers.len(), 9);
        assert_eq!(r.headers.call_id(), Some("c1@192.0.2.10"));
        assert!(r.body.is_empty());
    }

    #[test]
    fn compact_headers() {
        let r = request(
            "INVITE sip:bob@example.com SIP/2.0\r\n\
             v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
             f: <sip:a@example.com>;tag=ft\r\n\
             t: <sip:bob@example.com>\r\n\
             i: compact@id\r\n\
             m: <sip:a@192.0.2.1>\r\n\
             c: application/sdp\r\n\
             k: timer\r\n\
             l: 5\r\n\r\nv=0\r\n",
        );
        let names: Vec<&str> = r.headers.iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "Via",
                "From",
                "To",
                "Call-ID",
                "Contact",
                "Content-Type",
                "Supported",
                "Content-Length"
            ]
        );
        assert_eq!(r.headers.call_id(), Some("compact@id"));
        assert_eq!(r.headers.from_tag(), Some("ft"));
        assert_eq!(r.body, b"v=0\r\n");
        assert_eq!(
            r.headers.top_via().and_then(|v| v.branch),
            Some("z9hG4bK1".into())
        );
    }

    #[test]
    fn folded_lines_and_space_before_colon() {
        let r = request(
            "OPTIONS sip:a@example.com SIP/2.0\r\n\
             Via : SIP/2.0/UDP 192.0.2.1\r\n\t;branch=z9hG4bKf\r\n\
             Subject\t: a\r\n   folded\r\n subject\r\n\
             Call-ID:x\r\n\r\n",
        );
        assert_eq!(r.headers.get("subject"), Some("a folded subject"));
        assert_eq!(
            r.headers.get("Via"),
            Some("SIP/2.0/UDP 192.0.2.1 ;branch=z9hG4bKf")
        );
        assert_eq!(
            r.headers.top_via().and_then(|v| v.branch).as_deref(),
            Some("z9hG4bKf")
        );
        assert_eq!(r.headers.call_id(), Some("x"));
    }

    #[test]
    fn lf_only_line_endings() {
        let r = request(&REGISTER.replace("\r\n", "\n"));
        assert_eq!(r.method, "REGISTER");
        assert_eq!(r.headers.cseq(), Some((7, "REGISTER")));
        assert_eq!(r.headers.len(), 9);
    }

    #[test]
    fn leading_crlf_skipped() {
        assert_eq!(request(&format!("\r\n\r\n{REGISTER}")).method, "REGISTER");
    }

    #[test]
    fn unknown_method_parses_for_501() {
        let r = request(&REGISTER.replacen("REGISTER sip", "FOO sip", 1));
        assert_eq!(r.method, "FOO");
        assert_eq!(r.uri, "sip:registrar.example.com");
        // Case is kept: methods are case-sensitive, `register` is not REGISTER.
        let r = request(&REGISTER.replacen("REGISTER sip", "register sip", 1));
        assert_eq!(r.method, "register");
    }

    #[test]
    fn uris_rsip_cannot_read_still_parse() {
        for uri in [
            "tel:+15551234567",
            "sip:alice@[2001:db8::1]:5060;transport=tcp",
            "sip:alice@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
            "urn:service:sos",
        ] {
            let r = request(&REGISTER.replacen("sip:registrar.example.com", uri, 1));
            assert_eq!(r.uri, uri);
        }
    }

    #[test]
    fn response_reason_kept_verbatim() {
        let r = response(
            "SIP/2.0 200 Okay then\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!((r.status, r.reason.as_str()), (200, "Okay then"));
        let r = response("SIP/2.0 486\r\nCall-ID: x\r\n\r\n");
        assert_eq!((r.status, r.reason.as_str()), (486, ""));
        let r = response("sip/2.0  180   Ringing \r\n\r\n");
        assert_eq!((r.status, r.reason.as_str()), (180, "Ringing"));
    }

    #[test]
    fn ipv6_via_and_retry_after_comment() {
        let r = response(
            "SIP/2.0 503 Service Unavailable\r\n\
             Via: SIP/2.0/UDP [2001:db8::1]:5062;branch=z9hG4bKv6;rport=5062;received=2001:db8::7\r\n\
             Retry-After: 120 (maintenance) ;duration=60\r\n\
             Content-Length: 0\r\n\r\n",
        );
        let via = r.headers.top_via().unwrap();
        assert_eq!(via.host, "[2001:db8::1]");
        assert_eq!(via.port, Some(5062));
        assert_eq!(via.rport, Some(5062));
        assert_eq!(via.received.as_deref(), Some("2001:db8::7"));
        assert_eq!(r.headers.retry_after(), Some(120));
    }

    #[test]
    fn bad_start_lines() {
        for bad in [
            "SIP/2.0 99 Low\r\n\r\n",
            "SIP/2.0 700 High\r\n\r\n",
            "SIP/2.0 2000 Long\r\n\r\n",
            "SIP/2.0 abc Nope\r\n\r\n",
            "SIP/3.0 200 OK\r\n\r\n",
            "OPTIONS sip:a SIP/3.0\r\n\r\n",
            "OPTIONS sip:a\r\n\r\n",
            "OPTIONS sip:a SIP/2.0 extra\r\n\r\n",
            "OPTIONS nocolon SIP/2.0\r\n\r\n",
            "OPT<IONS sip:a SIP/2.0\r\n\r\n",
            "OPTIONS 1x:a SIP/2.0\r\n\r\n",
            "hello\r\n\r\n",
        ] {
            assert!(
                matches!(parse(bad.as_bytes()), Err(ParseError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn content_length_frames_the_body() {
        let msg = |cl: &str, rest: &str| {
            format!("MESSAGE sip:a@b SIP/2.0\r\nCall-ID: x\r\n{cl}\r\n{rest}")
        };
        // Extra trailing bytes are ignored.
        assert_eq!(
            request(&msg("Content-Length: 5\r\n", "hello world")).body,
            b"hello"
        );
        assert_eq!(request(&msg("Content-Length: 0\r\n", "junk")).body, b"");
        // No Content-Length: the rest of the datagram.
        assert_eq!(request(&msg("", "hello world")).body, b"hello world");
        // Fewer bytes than announced.
        assert_eq!(
            parse(msg("Content-Length: 50\r\n", "short").as_bytes()),
            Err(ParseError::Truncated {
                declared: 50,
                available: 5
            })
        );
        assert_eq!(
            parse(msg("Content-Length: 99999999999999999999999\r\n", "x").as_bytes()),
            Err(ParseError::Truncated {
                declared: usize::MAX,
                available: 1
            })
        );
        for bad in [
            "Content-Length: -1\r\n",
            "Content-Length: 1e3\r\n",
            "l:\r\n",
        ] {
            assert!(matches!(
                parse(msg(bad, "").as_bytes()),
                Err(ParseError::InvalidContentLength(_))
            ));
        }
        // Repeated but equal is fine; disagreeing is not.
        assert_eq!(
            request(&msg("Content-Length: 2\r\nl: 2\r\n", "abc")).body,
            b"ab"
        );
        assert!(matches!(
            parse(msg("Content-Length: 2\r\nl: 3\r\n", "abc").as_bytes()),
            Err(ParseError::InvalidContentLength(_))
        ));
    }

    #[test]
    fn binary_body_kept() {
        let mut bytes = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 4\r\n\r\n".to_vec();
        bytes.extend_from_slice(&[0, 0xff, b'\r', b'\n']);
        match parse(&bytes) {
            Ok(Message::Request(r)) => assert_eq!(r.body, [0, 0xff, b'\r', b'\n']),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn size_limit_checked_first() {
        let mut big = REGISTER.as_bytes().to_vec();
        big.resize(MAX_MESSAGE_SIZE + 1, b'x');
        assert_eq!(
            parse(&big),
            Err(ParseError::TooLarge {
                size: MAX_MESSAGE_SIZE + 1,
                limit: MAX_MESSAGE_SIZE
            })
        );
        // Exactly at the limit is accepted.
        let mut max = REGISTER.replace("Content-Length: 0\r\n", "").into_bytes();
        max.resize(MAX_MESSAGE_SIZE, b'x');
        assert!(parse(&max).is_ok());
        // The limit applies before anything else, even to garbage.
        assert!(matches!(
            parse(&vec![0u8; MAX_MESSAGE_SIZE + 1]),
            Err(ParseError::TooLarge { .. })
        ));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = parse(b"OPTIONS sip:a SIP/2.0\r\nNoColon\r\n\r\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed SIP message: header line \"NoColon\" has no colon"
        );
    }
}
