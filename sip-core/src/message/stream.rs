//! Messages out of a byte stream (TCP, TLS): RFC 3261 §18.3 framing.
//!
//! On a stream the only boundary between two messages is the `Content-Length` of the
//! first, so it is mandatory there (§18.3, §20.14), and a stream whose framing is wrong
//! cannot be resynchronised: any guess (scan for the next `SIP/2.0`?) could splice a
//! body into a message. [`Framer`] therefore tells *incomplete* (wait for more bytes)
//! from *malformed* (close the connection), keeps a connection's unread bytes and stays
//! failed after an error.
//!
//! CR/LF between messages is RFC 5626 §4.4.1 keep-alive traffic: `CRLFCRLF` is a ping
//! (answer `CRLF`), a lone `CRLF` a pong. A lone `CRLF` at the end of what has arrived
//! is taken as a pong at once, not held back in case a second one follows: a pong is
//! exactly that and nothing may follow it for a while. A ping split between its two
//! CRLFs (the peer's TCP would have to cut a 4-byte write) reads as two pongs and goes
//! unanswered once; the peer's next ping gets its pong.

use super::limits;
use super::parse::declared_length;
use super::MAX_MESSAGE_SIZE;

/// Why a stream cannot be framed: the connection is to be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The headers (or the whole message) would exceed [`MAX_MESSAGE_SIZE`].
    #[error("a message on this stream exceeds the {limit}-byte limit ({size} bytes so far or announced)")]
    TooLarge {
        /// Bytes read or announced for this message.
        size: usize,
        /// The limit, [`MAX_MESSAGE_SIZE`].
        limit: usize,
    },
    /// No `Content-Length`, which a stream needs to find where the message ends.
    #[error("a message on a stream transport has no Content-Length (RFC 3261 §18.3 makes it mandatory there)")]
    NoContentLength,
    /// `Content-Length` is not a decimal number, or two disagree.
    #[error("invalid Content-Length on a stream: {0}")]
    InvalidContentLength(String),
    /// Neither a request nor a response starts here.
    #[error("the stream does not carry SIP here: {0}")]
    NotSip(String),
    /// An earlier error closed this framer.
    #[error("the stream was already given up after a framing error")]
    Closed,
}

/// What the bytes at the front of a stream are, as far as they have arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// A whole message of this many bytes (start line, headers, blank line, body).
    Message(usize),
    /// A keep-alive ping (`CRLFCRLF`, 4 bytes).
    Ping,
    /// A keep-alive pong, or a stray line end between messages (`CRLF`, 2 bytes).
    Pong,
    /// The head has not ended yet.
    NeedHead,
    /// The head has ended: the message will be this many bytes.
    NeedBody(usize),
}

/// The frame at the front of `buf`, found without parsing headers other than
/// `Content-Length` (compact form `l` too), knowing that `buf` has no empty line ending
/// the head before byte `scanned` (so a head arriving a byte at a time is searched
/// once, not once per byte).
fn step(buf: &[u8], scanned: usize) -> Result<Step, FrameError> {
    match buf {
        [] => return Ok(Step::NeedHead),
        [b'\r', b'\n', b'\r', b'\n', ..] => return Ok(Step::Ping),
        [b'\r', b'\n', b'\r'] | [b'\r'] => return Ok(Step::NeedHead),
        [b'\r', b'\n', ..] => return Ok(Step::Pong),
        _ => {}
    }
    let Some(head_len) = head_end(buf, scanned) else {
        return if buf.len() > MAX_MESSAGE_SIZE {
            Err(too_large(buf.len()))
        } else {
            Ok(Step::NeedHead)
        };
    };
    let head = buf.get(..head_len).unwrap_or_default();
    limits::peek(head).map_err(|e| FrameError::NotSip(e.to_string()))?;
    let body = content_length(head)?;
    let total = head_len.saturating_add(body);
    if total > MAX_MESSAGE_SIZE {
        return Err(too_large(total));
    }
    Ok(if buf.len() >= total {
        Step::Message(total)
    } else {
        Step::NeedBody(total)
    })
}

fn too_large(size: usize) -> FrameError {
    FrameError::TooLarge {
        size,
        limit: MAX_MESSAGE_SIZE,
    }
}

/// The length of the start line and headers with the empty line that ends them, if it
/// has arrived. An empty line is LF or CRLF right after a line's LF (bare LF line ends
/// are read as the parser reads them). The search starts a line end before `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let limit = buf.len().min(MAX_MESSAGE_SIZE + 2);
    let mut i = from.saturating_sub(2);
    while i < limit {
        let lf = i + buf.get(i..limit)?.iter().position(|&b| b == b'\n')?;
        match buf.get(lf + 1..) {
            Some([b'\n', ..]) => return Some(lf + 2),
            Some([b'\r', b'\n', ..]) => return Some(lf + 3),
            _ => i = lf + 1,
        }
    }
    None
}

/// The body length the head announces, by the parser's rule (every `Content-Length`
/// and `l` line must agree), which here must be present.
fn content_length(head: &[u8]) -> Result<usize, FrameError> {
    // The first line is the start line; folded continuation lines start with SP/HT
    // and carry no header name.
    let values: Vec<_> = head
        .split(|&b| b == b'\n')
        .skip(1)
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            let name = line.get(..colon)?.trim_ascii();
            let length =
                name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l");
            length.then(|| {
                String::from_utf8_lossy(line.get(colon + 1..).unwrap_or_default().trim_ascii())
            })
        })
        .collect();
    declared_length(values.iter().map(|v| v.as_ref()))
        .map_err(FrameError::InvalidContentLength)?
        .ok_or(FrameError::NoContentLength)
}

/// One thing read off a stream by [`Framer::pop`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed {
    /// A whole message's bytes, for [`parse`](super::parse).
    Message(Vec<u8>),
    /// A keep-alive ping: answer `CRLF`.
    Ping,
    /// A keep-alive pong.
    Pong,
}

/// What a [`Framer`] knows of the frame it is waiting for, so that a message arriving
/// in many small reads is searched once in all, not once per read.
#[derive(Debug, Clone, Copy)]
enum Waiting {
    /// The head has not ended within this many bytes (none searched yet: 0).
    Head(usize),
    /// The message is this many bytes; its body is still arriving.
    Body(usize),
}

impl Default for Waiting {
    fn default() -> Self {
        Waiting::Head(0)
    }
}

/// A connection's unread bytes, cut into messages as they complete.
///
/// After a [`FrameError`] every later call fails with [`FrameError::Closed`]: the
/// connection is to be closed, not resynchronised.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already handed out.
    read: usize,
    /// What is known of the frame after `read` while it is incomplete.
    waiting: Waiting,
    failed: bool,
}

impl Framer {
    /// An empty framer for a new connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends what the connection delivered.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed {
            return;
        }
        // Give back what was handed out before growing: the buffer holds at most one
        // message in progress plus the last read.
        if self.read > 0 {
            self.buf.drain(..self.read);
            self.read = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Whether bytes of a frame not yet whole are held (a message has begun).
    pub fn has_partial(&self) -> bool {
        !self.failed && self.buf.len() > self.read
    }

    /// The next whole frame, or `None` until more bytes arrive.
    pub fn pop(&mut self) -> Result<Option<Framed>, FrameError> {
        if self.failed {
            return Err(FrameError::Closed);
        }
        let rest = self.buf.get(self.read..).unwrap_or_default();
        let found = match self.waiting {
            Waiting::Body(total) if rest.len() < total => return Ok(None),
            Waiting::Body(total) => Ok(Step::Message(total)),
            Waiting::Head(scanned) => step(rest, scanned),
        };
        let (out, len) = match found {
            Ok(Step::Message(n)) => (
                Framed::Message(rest.get(..n).unwrap_or_default().to_vec()),
                n,
            ),
            Ok(Step::Ping) => (Framed::Ping, 4),
            Ok(Step::Pong) => (Framed::Pong, 2),
            Ok(Step::NeedHead) => {
                self.waiting = Waiting::Head(rest.len());
                return Ok(None);
            }
            Ok(Step::NeedBody(total)) => {
                self.waiting = Waiting::Body(total);
                return Ok(None);
            }
            Err(e) => {
                self.failed = true;
                self.buf = Vec::new();
                self.read = 0;
                return Err(e);
            }
        };
        self.read += len;
        self.waiting = Waiting::default();
        Ok(Some(out))
    }
}
#[cfg(test)]
#[allow(clippy::indexing_slicing)] // test inputs are built here, their lengths known
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The frame at the front of a stream with nothing searched before.
    fn next_frame(buf: &[u8]) -> Result<Step, FrameError> {
        step(buf, 0)
    }

    fn invite(body: &str) -> String {
        format!(
            "INVITE sip:100@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
             From: <sip:a@h>;tag=1\r\nTo: <sip:100@example.com>\r\nCall-ID: c\r\n\
             CSeq: 1 INVITE\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn ok(body: &str) -> String {
        format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl: {}\r\n\r\n{body}",
            body.len()
        )
    }

    /// Everything a framer yields for `chunks`, and the error that stopped it.
    fn frame_all(chunks: &[&[u8]]) -> (Vec<Framed>, Option<FrameError>) {
        let mut framer = Framer::new();
        let mut out = Vec::new();
        for chunk in chunks {
            framer.push(chunk);
            loop {
                match framer.pop() {
                    Ok(Some(f)) => out.push(f),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e)),
                }
            }
        }
        (out, None)
    }

    #[test]
    fn content_length_cuts_back_to_back_messages() {
        let a = invite("v=0\r\n");
        let b = ok("");
        let stream = format!("{a}{b}");
        assert_eq!(next_frame(stream.as_bytes()), Ok(Step::Message(a.len())));
        let (frames, err) = frame_all(&[stream.as_bytes()]);
        assert_eq!(err, None);
        assert_eq!(
            frames,
            vec![
                Framed::Message(a.into_bytes()),
                Framed::Message(b.into_bytes())
            ]
        );
    }

    #[test]
    fn a_message_without_its_whole_body_is_incomplete_not_malformed() {
        let a = invite("hello world");
        for cut in 0..a.len() {
            let front = next_frame(&a.as_bytes()[..cut]);
            assert!(
                matches!(front, Ok(Step::NeedHead | Step::NeedBody(_))),
                "cut at {cut}: {front:?}"
            );
        }
        assert_eq!(next_frame(a.as_bytes()), Ok(Step::Message(a.len())));
    }

    #[test]
    fn a_stream_read_a_byte_at_a_time_gives_the_same_messages() {
        let a = invite("v=0\r\n");
        let b = ok("xyz");
        let stream = format!("{a}\r\n\r\n{b}");
        let bytes: Vec<&[u8]> = stream.as_bytes().chunks(1).collect();
        let (frames, err) = frame_all(&bytes);
        assert_eq!(err, None);
        // The ping arrives a byte at a time too, so it reads as two pongs (module doc).
        assert_eq!(
            frames,
            vec![
                Framed::Message(a.into_bytes()),
                Framed::Pong,
                Framed::Pong,
                Framed::Message(b.into_bytes())
            ]
        );
    }

    #[test]
    fn keepalives_are_pings_and_pongs() {
        assert_eq!(next_frame(b"\r\n\r\n"), Ok(Step::Ping));
        assert_eq!(next_frame(b"\r\n"), Ok(Step::Pong));
        assert_eq!(next_frame(b"\r\nSIP/2.0"), Ok(Step::Pong));
        assert_eq!(next_frame(b"\r\n\r"), Ok(Step::NeedHead));
        let b = ok("");
        let (frames, err) = frame_all(&[b"\r\n\r\n", b"\r\n", b.as_bytes()]);
        assert_eq!(err, None);
        assert_eq!(
            frames,
            vec![Framed::Ping, Framed::Pong, Framed::Message(b.into_bytes())]
        );
    }

    #[test]
    fn a_stream_message_needs_content_length() {
        let m = "OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n";
        assert_eq!(next_frame(m.as_bytes()), Err(FrameError::NoContentLength));
    }

    #[test]
    fn bad_or_disagreeing_content_lengths_close_the_stream() {
        let m = "SIP/2.0 200 OK\r\nContent-Length: 1x\r\n\r\n";
        assert!(matches!(
            next_frame(m.as_bytes()),
            Err(FrameError::InvalidContentLength(_))
        ));
        let m = "SIP/2.0 200 OK\r\nContent-Length: 1\r\nl: 2\r\n\r\nab";
        assert!(matches!(
            next_frame(m.as_bytes()),
            Err(FrameError::InvalidContentLength(_))
        ));
        let m = "SIP/2.0 200 OK\r\nContent-Length: -1\r\n\r\n";
        assert!(matches!(
            next_frame(m.as_bytes()),
            Err(FrameError::InvalidContentLength(_))
        ));
    }

    #[test]
    fn garbage_is_not_resynchronised() {
        let b = ok("");
        let stream = format!("GET / HTTP/1.1\r\nHost: x\r\n\r\n{b}");
        let (frames, err) = frame_all(&[stream.as_bytes()]);
        assert!(frames.is_empty());
        assert!(matches!(err, Some(FrameError::NotSip(_))), "{err:?}");
        let mut framer = Framer::new();
        framer.push(stream.as_bytes());
        assert!(framer.pop().is_err());
        framer.push(b.as_bytes());
        assert_eq!(framer.pop(), Err(FrameError::Closed));
    }

    #[test]
    fn limits_bound_a_head_that_never_ends_and_a_huge_body() {
        let mut endless = b"INVITE sip:h SIP/2.0\r\n".to_vec();
        while endless.len() <= MAX_MESSAGE_SIZE {
            endless.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert!(matches!(
            next_frame(&endless),
            Err(FrameError::TooLarge { .. })
        ));
        let announced = format!(
            "SIP/2.0 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_MESSAGE_SIZE
        );
        assert!(matches!(
            next_frame(announced.as_bytes()),
            Err(FrameError::TooLarge { .. })
        ));
        let absurd = "SIP/2.0 200 OK\r\nContent-Length: 99999999999999999999999999\r\n\r\n";
        assert!(matches!(
            next_frame(absurd.as_bytes()),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_framed_message_parses_as_the_same_message() {
        let a = invite("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n");
        let (frames, _) = frame_all(&[a.as_bytes()]);
        let Some(Framed::Message(bytes)) = frames.first() else {
            panic!("no message in {frames:?}");
        };
        let whole = crate::message::parse(a.as_bytes()).map_err(|e| e.to_string());
        let framed = crate::message::parse(bytes).map_err(|e| e.to_string());
        assert_eq!(format!("{whole:?}"), format!("{framed:?}"));
    }

    /// A stream of messages and keep-alives, and where to cut it.
    fn stream_and_cuts() -> impl Strategy<Value = (Vec<u8>, Vec<Framed>, Vec<usize>)> {
        let item = prop_oneof![
            "[a-z0-9 =\r\n]{0,40}".prop_map(|b| Framed::Message(invite(&b).into_bytes())),
            "[a-z0-9]{0,20}".prop_map(|b| Framed::Message(ok(&b).into_bytes())),
            Just(Framed::Ping),
        ];
        proptest::collection::vec(item, 0..8).prop_flat_map(|items| {
            let mut bytes = Vec::new();
            for item in &items {
                match item {
                    Framed::Message(m) => bytes.extend_from_slice(m),
                    Framed::Ping => bytes.extend_from_slice(b"\r\n\r\n"),
                    Framed::Pong => bytes.extend_from_slice(b"\r\n"),
                }
            }
            let len = bytes.len();
            (
                Just(bytes),
                Just(items),
                proptest::collection::vec(0..=len, 0..12),
            )
        })
    }

    proptest! {
        /// However the stream is cut into reads (pings kept whole, as the doc says), the
        /// framer yields what went in, in order.
        #[test]
        fn any_chunking_yields_the_same_frames((bytes, items, mut cuts) in stream_and_cuts()) {
            cuts.sort_unstable();
            // A ping cut between its CRLFs reads as two pongs (module doc): move such a cut.
            let mut starts = Vec::new();
            let mut at = 0;
            for item in &items {
                if *item == Framed::Ping {
                    starts.push(at);
                }
                at += match item { Framed::Message(m) => m.len(), _ => 4 };
            }
            for c in &mut cuts {
                if starts.iter().any(|&s| *c == s + 2) {
                    *c += 2;
                }
            }
            let mut chunks = Vec::new();
            let mut last = 0;
            for &c in &cuts {
                chunks.push(&bytes[last..c.max(last)]);
                last = c.max(last);
            }
            chunks.push(&bytes[last..]);
            let (frames, err) = frame_all(&chunks);
            prop_assert_eq!(err, None);
            prop_assert_eq!(frames, items);
        }

        /// Arbitrary bytes never panic the framer, and it never hands out more than it
        /// was given.
        #[test]
        fn arbitrary_bytes_frame_or_fail(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..6)) {
            let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            let (frames, _) = frame_all(&refs);
            let given: usize = chunks.iter().map(Vec::len).sum();
            let taken: usize = frames.iter().map(|f| match f { Framed::Message(m) => m.len(), Framed::Ping => 4, Framed::Pong => 2 }).sum();
            prop_assert!(taken <= given);
        }
    }
}
