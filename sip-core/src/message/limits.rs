//! What a datagram is, and whether it is within our limits, found without parsing it.
//!
//! A full parse copies every header line, so its cost grows with the header count.
//! These checks read the bytes once, allocate nothing and stop at the first limit, so a
//! flood of header-dense garbage costs a scan instead of a parse.

use super::ParseError;

/// The most header lines (folded continuation lines included) a message may have.
///
/// A REGISTER exchange uses about ten, an INVITE through a few proxies thirty to sixty
/// (Via, Record-Route, Route, Supported, Allow, P-headers …); 256 leaves four times
/// that for unusual peers while bounding a parse to a few tens of microseconds.
pub const MAX_HEADERS: usize = 256;

/// The most Via values a message may carry (all Via lines, comma-separated values
/// counted one by one).
///
/// Each Via is one proxy hop. Requests reach us through our provider's edge (one to a
/// few hops), and a response to our REGISTER carries exactly our one Via; 32 allows
/// chains far longer than any real path without letting a forged request make us echo
/// thousands of them (RFC 3261 §8.2.6 copies every Via into the response).
pub const MAX_VIAS: usize = 32;

/// What the first line of a datagram says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek {
    /// Only CR and LF: a keep-alive (RFC 5626 §3.5.1 `CRLFCRLF` ping, `CRLF` pong).
    KeepAlive,
    /// A start line of the shape `METHOD SP Request-URI SP SIP/2.0`.
    Request,
    /// A start line beginning `SIP/2.0 `.
    Response,
}

/// Whether `bytes` is a keep-alive: non-empty and nothing but CR and LF.
pub fn is_keepalive(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| b == b'\r' || b == b'\n')
}

/// Classifies a datagram by its size and first line only: no header is read.
///
/// The shape checked is loose (the full parse decides); it only tells a request or a
/// response from garbage cheaply. Errors are those [`parse`](super::parse) would give.
pub fn peek(bytes: &[u8]) -> Result<Peek, ParseError> {
    check_size(bytes)?;
    if is_keepalive(bytes) {
        return Ok(Peek::KeepAlive);
    }
    let start = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(bytes.len());
    let rest = bytes.get(start..).unwrap_or_default();
    let line = match rest.iter().position(|&b| b == b'\n') {
        Some(lf) => rest.get(..lf).unwrap_or_default(),
        None => return Err(malformed("no line ends the start line")),
    };
    let line = trim_start(trim_end(line));
    const VERSION: &[u8] = b"SIP/2.0";
    let starts_with_version = line
        .get(..VERSION.len())
        .is_some_and(|v| v.eq_ignore_ascii_case(VERSION));
    if starts_with_version && matches!(line.get(VERSION.len()), Some(b' ' | b'\t')) {
        return Ok(Peek::Response);
    }
    let ends_with_version = line
        .len()
        .checked_sub(VERSION.len())
        .and_then(|at| line.get(at..))
        .is_some_and(|v| v.eq_ignore_ascii_case(VERSION));
    if ends_with_version && line.iter().filter(|&&b| b == b' ' || b == b'\t').count() >= 2 {
        return Ok(Peek::Request);
    }
    Err(malformed(
        "start line is neither `METHOD URI SIP/2.0` nor `SIP/2.0 CODE REASON`",
    ))
}

/// Fails with [`ParseError::TooLarge`] above [`super::MAX_MESSAGE_SIZE`].
pub(crate) fn check_size(bytes: &[u8]) -> Result<(), ParseError> {
    if bytes.len() > super::MAX_MESSAGE_SIZE {
        return Err(ParseError::TooLarge {
            size: bytes.len(),
            limit: super::MAX_MESSAGE_SIZE,
        });
    }
    Ok(())
}

/// Counts header lines and Via values up to the empty line that ends the head, and
/// fails at the first one past [`MAX_HEADERS`] or [`MAX_VIAS`]. The body is not read.
pub fn check_limits(bytes: &[u8]) -> Result<(), ParseError> {
    check_size(bytes)?;
    // Leading CRLFs are not lines of the head (RFC 3261 §7.5).
    let start = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(bytes.len());
    let mut lines = bytes
        .get(start..)
        .unwrap_or_default()
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let _start_line = lines.next();
    let mut headers = 0usize;
    let mut vias = ViaCount::default();
    for line in lines {
        if line.is_empty() {
            break;
        }
        headers += 1;
        if headers > MAX_HEADERS {
            return Err(ParseError::TooManyHeaders { limit: MAX_HEADERS });
        }
        vias.line(line)?;
    }
    Ok(())
}

/// Via values counted line by line, up to [`MAX_VIAS`]: a `Via:`/`v:` line is one
/// value plus its commas outside quoted strings, and a folded continuation of a Via
/// line adds its commas. Both the pre-check and the parser count with it, so what one
/// accepts the other does, however the Via values are spread over lines (a message we
/// write again unfolded must count the same).
#[derive(Debug, Default)]
pub(crate) struct ViaCount {
    values: usize,
    in_via: bool,
}

impl ViaCount {
    /// Counts one header line; fails past [`MAX_VIAS`].
    pub(crate) fn line(&mut self, line: &[u8]) -> Result<(), ParseError> {
        let folded = line.first().is_some_and(|b| matches!(b, b' ' | b'\t'));
        let value = if folded {
            if !self.in_via {
                return Ok(());
            }
            line
        } else {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                self.in_via = false;
                return Ok(());
            };
            let name = trim_end(line.get(..colon).unwrap_or_default());
            self.in_via = name.eq_ignore_ascii_case(b"via") || name.eq_ignore_ascii_case(b"v");
            if !self.in_via {
                return Ok(());
            }
            self.values += 1;
            line.get(colon + 1..).unwrap_or_default()
        };
        let mut quoted = false;
        for &b in value {
            match b {
                b'"' => quoted = !quoted,
                b',' if !quoted => self.values += 1,
                _ => {}
            }
        }
        if self.values > MAX_VIAS {
            return Err(ParseError::TooManyVias { limit: MAX_VIAS });
        }
        Ok(())
    }
}

/// `s` without leading SP and HTAB.
fn trim_start(mut s: &[u8]) -> &[u8] {
    while let Some((&first, rest)) = s.split_first() {
        if !matches!(first, b' ' | b'\t') {
            break;
        }
        s = rest;
    }
    s
}

/// `s` without trailing CR, SP and HTAB.
fn trim_end(mut s: &[u8]) -> &[u8] {
    while let Some((&last, init)) = s.split_last() {
        if !matches!(last, b'\r' | b' ' | b'\t') {
            break;
        }
        s = init;
    }
    s
}

fn malformed(why: &str) -> ParseError {
    ParseError::Malformed(why.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn with_headers(extra: &str, n: usize) -> Vec<u8> {
        let mut s = String::from("OPTIONS sip:a@127.0.0.1 SIP/2.0\r\n");
        for i in 0..n {
            s.push_str(&extra.replace("{i}", &i.to_string()));
        }
        s.push_str("Content-Length: 0\r\n\r\n");
        s.into_bytes()
    }

    #[test]
    fn keepalives_are_only_crlf() {
        for ka in [&b"\r\n\r\n"[..], b"\r\n", b"\n"] {
            assert!(is_keepalive(ka));
            assert_eq!(peek(ka), Ok(Peek::KeepAlive));
        }
        assert!(!is_keepalive(b""));
        assert!(!is_keepalive(b"\r\n\r\nOPTIONS"));
    }

    #[test]
    fn peek_tells_requests_responses_and_garbage_apart() {
        assert_eq!(peek(b"SIP/2.0 200 OK\r\n\r\n"), Ok(Peek::Response));
        assert_eq!(
            peek(b"\r\nsip/2.0 401 Unauthorized\r\n"),
            Ok(Peek::Response)
        );
        assert_eq!(peek(b"OPTIONS sip:a SIP/2.0\r\n\r\n"), Ok(Peek::Request));
        assert_eq!(peek(b"FOO tel:+1 sip/2.0 \r\n"), Ok(Peek::Request));
        // Whatever the parser accepts: tabs, surrounding whitespace.
        assert_eq!(peek(b"OPTIONS\tsip:a\tSIP/2.0\n\n"), Ok(Peek::Request));
        assert_eq!(peek(b" SIP/2.0 200 OK \r\n\r\n"), Ok(Peek::Response));
        for bad in [
            &b"hello world\r\n\r\n"[..],
            b"SIP/2.0200 OK\r\n",
            b"OPTIONS sip:a SIP/2.0",
            b"OPTIONSsip:aSIP/2.0\r\n",
            b"\x00\x01\x02",
            b"",
        ] {
            assert!(
                matches!(peek(bad), Err(ParseError::Malformed(_))),
                "{bad:?}"
            );
        }
        let big = vec![b'x'; crate::message::MAX_MESSAGE_SIZE + 1];
        assert!(matches!(peek(&big), Err(ParseError::TooLarge { .. })));
    }

    #[test]
    fn header_count_is_capped() {
        // Content-Length is one of the lines.
        assert_eq!(
            check_limits(&with_headers("X-{i}: a\r\n", MAX_HEADERS - 1)),
            Ok(())
        );
        assert_eq!(
            check_limits(&with_headers("X-{i}: a\r\n", MAX_HEADERS)),
            Err(ParseError::TooManyHeaders { limit: MAX_HEADERS })
        );
        // The body is not part of the head.
        let mut bytes = with_headers("X: a\r\n", 1);
        bytes.extend(b"a: b\r\n".repeat(MAX_HEADERS * 2));
        assert_eq!(check_limits(&bytes), Ok(()));
    }

    #[test]
    fn via_count_is_capped_across_lines_and_commas() {
        let via = "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK{i}\r\n";
        assert_eq!(check_limits(&with_headers(via, MAX_VIAS)), Ok(()));
        assert_eq!(
            check_limits(&with_headers(via, MAX_VIAS + 1)),
            Err(ParseError::TooManyVias { limit: MAX_VIAS })
        );
        let compact = "v : SIP/2.0/UDP a, SIP/2.0/UDP b\r\n";
        assert_eq!(check_limits(&with_headers(compact, MAX_VIAS / 2)), Ok(()));
        assert_eq!(
            check_limits(&with_headers(compact, MAX_VIAS / 2 + 1)),
            Err(ParseError::TooManyVias { limit: MAX_VIAS })
        );
        // A comma in a quoted string is not a second Via; other headers do not count.
        assert_eq!(values(&[b"Via: SIP/2.0/UDP a;x=\"1,2\""]), 1);
        assert_eq!(values(&[b"Contact: <sip:a>, <sip:b>"]), 0);
        // A folded continuation counts with the Via it continues, not with another
        // header (found by the parser fuzzer: unfolded again, the same Vias were over
        // the limit).
        assert_eq!(
            values(&[b"v: SIP/2.0/UDP a,", b" SIP/2.0/UDP b, SIP/2.0/UDP c"]),
            3
        );
        assert_eq!(values(&[b"Contact: <sip:a>,", b" <sip:b>, <sip:c>"]), 0);
        let folded = format!(
            "v: SIP/2.0/UDP a\r\n {}\r\n",
            ", SIP/2.0/UDP b".repeat(MAX_VIAS)
        );
        let bytes = with_headers(&folded, 1);
        assert_eq!(
            check_limits(&bytes),
            Err(ParseError::TooManyVias { limit: MAX_VIAS })
        );
        assert_eq!(
            crate::message::parse(&bytes),
            Err(ParseError::TooManyVias { limit: MAX_VIAS })
        );
    }

    /// The Via values `lines` hold, counted as the limits count them.
    fn values(lines: &[&[u8]]) -> usize {
        let mut count = ViaCount::default();
        for line in lines {
            count.line(line).unwrap();
        }
        count.values
    }

    #[test]
    fn parse_applies_the_limits() {
        // 3,000 short Vias still fit in a datagram.
        let via = "v:SIP/2.0/UDP h\r\n";
        assert_eq!(
            crate::message::parse(&with_headers(via, 3000)),
            Err(ParseError::TooManyVias { limit: MAX_VIAS })
        );
        assert_eq!(
            crate::message::parse(&with_headers("X-{i}: a\r\n", 5000)),
            Err(ParseError::TooManyHeaders { limit: MAX_HEADERS })
        );
        assert!(crate::message::parse(&with_headers(via, MAX_VIAS)).is_ok());
    }
}
