//! A small, independent reader of the SIP messages on the wire, for the invariant
//! checker and the trace. It does not use `sip_core::message`: a parser bug in the core
//! must not be able to hide the violation it causes.

/// The start line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start<'a> {
    /// `METHOD URI SIP/2.0`.
    Request {
        /// Method.
        method: &'a str,
        /// Request-URI.
        uri: &'a str,
    },
    /// `SIP/2.0 STATUS REASON`.
    Response {
        /// Status code.
        status: u16,
        /// Reason phrase.
        reason: &'a str,
    },
}

/// A scanned message: start line and header lines (names as written).
#[derive(Debug, Clone)]
pub struct Scanned<'a> {
    /// The start line.
    pub start: Start<'a>,
    headers: Vec<(&'a str, &'a str)>,
}

/// Compact header forms (RFC 3261 §7.3.3) of the headers the checker reads.
fn long_name(name: &str) -> &str {
    match name {
        "i" | "I" => "Call-ID",
        "v" | "V" => "Via",
        "t" | "T" => "To",
        "f" | "F" => "From",
        "m" | "M" => "Contact",
        "l" | "L" => "Content-Length",
        other => other,
    }
}

/// Scans a datagram; `None` when it is not UTF-8 SIP with a start line.
pub fn scan(bytes: &[u8]) -> Option<Scanned<'_>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let head = text.split("\r\n\r\n").next()?;
    let mut lines = head.split("\r\n");
    let first = lines.next()?;
    let start = if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        Start::Response {
            status: code.parse().ok()?,
            reason,
        }
    } else {
        let mut parts = first.split(' ');
        let method = parts.next()?;
        let uri = parts.next()?;
        if parts.next()? != "SIP/2.0" {
            return None;
        }
        Start::Request { method, uri }
    };
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (long_name(n.trim()), v.trim()))
        .collect();
    Some(Scanned { start, headers })
}

/// The value of parameter `name` in a `;`-separated parameter list.
pub fn param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

impl<'a> Scanned<'a> {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// Every header called `name`, in order.
    pub fn headers<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&'a str> {
        match self.start {
            Start::Request { method, .. } => Some(method),
            Start::Response { .. } => None,
        }
    }

    /// The status of a response.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            Start::Response { status, .. } => Some(status),
            Start::Request { .. } => None,
        }
    }

    /// The `branch` of the top Via.
    pub fn branch(&self) -> Option<&'a str> {
        let via = self.header("Via")?;
        let first = via.split(',').next()?;
        param(first, "branch")
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Option<&'a str> {
        self.header("Call-ID")
    }

    /// `(number, method)` of CSeq.
    pub fn cseq(&self) -> Option<(u32, &'a str)> {
        let (n, m) = self.header("CSeq")?.split_once(' ')?;
        Some((n.trim().parse().ok()?, m.trim()))
    }

    /// The From tag.
    pub fn from_tag(&self) -> Option<&'a str> {
        param(self.header("From")?, "tag")
    }

    /// The user part of the To URI.
    pub fn to_user(&self) -> Option<&'a str> {
        let to = self.header("To")?;
        let start = to.find("sip:")? + 4;
        let rest = to.get(start..)?;
        rest.get(..rest.find('@')?)
    }

    /// The Contact values, split at top-level commas (outside `<>` and quotes).
    pub fn contacts(&self) -> Vec<&'a str> {
        let mut out = Vec::new();
        for line in self.headers("Contact") {
            let (mut depth, mut quoted, mut from) = (0i32, false, 0usize);
            for (i, c) in line.char_indices() {
                match c {
                    '"' => quoted = !quoted,
                    '<' if !quoted => depth += 1,
                    '>' if !quoted => depth -= 1,
                    ',' if !quoted && depth == 0 => {
                        if let Some(v) = line.get(from..i) {
                            out.push(v.trim());
                        }
                        from = i + 1;
                    }
                    _ => {}
                }
            }
            if let Some(v) = line.get(from..) {
                out.push(v.trim());
            }
        }
        out
    }

    /// The expiry a REGISTER asks for: the first Contact's `expires`, else the
    /// Expires header.
    pub fn requested_expires(&self) -> Option<u32> {
        let contact_expires = self.contacts().first().and_then(|c| contact_expires(c));
        contact_expires.or_else(|| self.header("Expires")?.parse().ok())
    }
}

/// The `expires` header parameter of one Contact value (after the `>`).
pub fn contact_expires(contact: &str) -> Option<u32> {
    let params = match contact.rfind('>') {
        Some(i) => contact.get(i + 1..)?,
        None => contact,
    };
    param(params, "expires")?.parse().ok()
}

/// The URI of one Contact value, without `<>`.
pub fn contact_uri(contact: &str) -> &str {
    match (contact.find('<'), contact.find('>')) {
        (Some(a), Some(b)) if a < b => contact.get(a + 1..b).unwrap_or(contact),
        _ => contact.split(';').next().unwrap_or(contact),
    }
}

/// What [`StreamReader::pop`] found at the head of a byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A whole message (head, blank line and `Content-Length` bytes of body).
    Message(Vec<u8>),
    /// A CRLF keep-alive (RFC 5626 §3.5.1): a `CRLFCRLF` ping, or a `CRLF` pong.
    KeepAlive {
        /// A ping (four bytes), not a pong.
        ping: bool,
    },
}

/// The largest head the reader waits for before calling the stream broken (the
/// core's own limit is 64 KiB for a whole message).
const MAX_HEAD: usize = 64 * 1024;

/// An RFC 3261 §18.3 framer of its own for the simulator's stream links: it splits
/// what the core writes into the messages the registrar model reads, and what the
/// core reads into the messages the checks see. Like [`scan`] it does not use
/// `sip_core::message`, so a framing bug in the core cannot hide the violation it
/// causes: a stream the core writes that this reader cannot frame is a finding.
#[derive(Debug, Clone, Default)]
pub struct StreamReader {
    buf: Vec<u8>,
}

impl StreamReader {
    /// Appends bytes as they were written or read.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Whether bytes of an unfinished message are held.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The next whole piece, `None` when more bytes are needed, or why the stream
    /// cannot be framed (a head without `Content-Length`, an unreadable one, a head
    /// that never ends).
    pub fn pop(&mut self) -> Result<Option<Piece>, String> {
        if self.buf.starts_with(b"\r\n") {
            let ping = self.buf.starts_with(b"\r\n\r\n");
            self.buf.drain(..if ping { 4 } else { 2 });
            return Ok(Some(Piece::KeepAlive { ping }));
        }
        let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            if self.buf.len() > MAX_HEAD {
                return Err(format!("no end of head in {} bytes", self.buf.len()));
            }
            return Ok(None);
        };
        let head = std::str::from_utf8(self.buf.get(..end).unwrap_or_default())
            .map_err(|_| "a head that is not UTF-8".to_owned())?;
        let mut length = None;
        for line in head.split("\r\n").skip(1) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let name = name.trim();
            if name.eq_ignore_ascii_case("Content-Length") || name.eq_ignore_ascii_case("l") {
                let n: usize = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("Content-Length {:?}", value.trim()))?;
                length = Some(n);
            }
        }
        let first = head.lines().next().unwrap_or_default().to_owned();
        let Some(length) = length else {
            return Err(format!("no Content-Length in {first:?}"));
        };
        let total = end + 4 + length;
        if self.buf.len() < total {
            return Ok(None);
        }
        let message: Vec<u8> = self.buf.drain(..total).collect();
        Ok(Some(Piece::Message(message)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn scans_register() {
        let m = "REGISTER sip:h SIP/2.0\r\nVia: SIP/2.0/UDP a:5060;branch=z9hG4bKx;rport\r\n\
                 i: abc\r\nCSeq: 7 REGISTER\r\nTo: <sip:u1@h>\r\n\
                 Contact: <sip:u1@a:5060;line=q>;expires=60, <sip:o@b>\r\nExpires: 99\r\n\r\n";
        let s = scan(m.as_bytes()).unwrap();
        assert_eq!(s.method(), Some("REGISTER"));
        assert_eq!(s.branch(), Some("z9hG4bKx"));
        assert_eq!(s.call_id(), Some("abc"));
        assert_eq!(s.cseq(), Some((7, "REGISTER")));
        assert_eq!(s.to_user(), Some("u1"));
        assert_eq!(s.contacts().len(), 2);
        assert_eq!(s.requested_expires(), Some(60));
        assert_eq!(contact_uri(s.contacts()[0]), "sip:u1@a:5060;line=q");
    }

    #[test]
    fn frames_a_stream_in_any_pieces() {
        let one = "OPTIONS sip:h SIP/2.0\r\nCall-ID: a\r\nContent-Length: 3\r\n\r\nxyz";
        let two = "SIP/2.0 200 OK\r\nl: 0\r\n\r\n";
        let all = format!("\r\n\r\n{one}{two}");
        for cut in 0..all.len() {
            let mut r = StreamReader::default();
            let mut got = Vec::new();
            for part in [&all[..cut], &all[cut..]] {
                r.push(part.as_bytes());
                while let Some(p) = r.pop().unwrap() {
                    got.push(p);
                }
            }
            // A ping cut in two reads as two pongs: either way no message.
            assert!(matches!(got.first(), Some(Piece::KeepAlive { .. })));
            got.retain(|p| !matches!(p, Piece::KeepAlive { .. }));
            assert_eq!(
                got,
                [
                    Piece::Message(one.as_bytes().to_vec()),
                    Piece::Message(two.as_bytes().to_vec())
                ],
                "cut at {cut}"
            );
            assert!(!r.has_partial());
        }
        let mut r = StreamReader::default();
        r.push(b"REGISTER sip:h SIP/2.0\r\nCall-ID: a\r\n\r\n");
        assert!(r.pop().is_err(), "no Content-Length on a stream");
    }
}
