//! SIP messages: parsing, reading and building, all our own.
//!
//! `rsip` 0.4.0 was the envelope checker behind this facade until issue 9 (see
//! `DESIGN.md`, "rsip: use it behind a facade"); it mishandled much of what real peers
//! send and tokenized every message again, so the facade now holds a parser that reads
//! a message once, and no module depends on `rsip`:
//!
//! * [`parse()`] reads the head once — leading CRLFs skipped, LF-only line endings
//!   accepted, folded lines joined, whitespace before `:` dropped, compact header names
//!   expanded, the header and Via limits counted — with our own start-line grammar
//!   (unknown methods, which the core answers with 501; `tel:`, GRUU and IPv6
//!   Request-URIs), and frames the body by `Content-Length`.
//! * [`Headers`] keeps every header line, name and value, in one buffer, so the B2BUA
//!   can relay what it does not own byte-for-byte, and offers small readers (Via,
//!   Contact, CSeq, tags, Expires …) that handle multi-binding Contact, quoted
//!   parameters and IPv6 Via.
//! * [`MessageBuilder`] writes messages and always computes `Content-Length`.
//!
//! Ids come from the core's seeded generator, never from a library's random default.

mod ack;
mod build;
mod contact;
mod fields;
mod headers;
mod limits;
mod names;
mod normalize;
mod parse;
mod stream;
mod syntax;
mod via;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod proptests;

use thiserror::Error;

pub use ack::{ack_for_non_2xx, cancel_for};
pub use build::{response_to, BuildError, MessageBuilder};
pub use contact::ContactBinding;
pub use limits::{check_limits, is_keepalive, peek, Peek, MAX_HEADERS, MAX_VIAS};
pub use names::canonical_name;
pub use parse::parse;
pub use stream::{FrameError, Framed, Framer};
pub use via::Via;

/// The URI of a `name-addr` or `addr-spec` header value (From, To, Refer-To …),
/// without its angle brackets, display name or header parameters.
pub fn header_uri(value: &str) -> Option<&str> {
    syntax::name_addr(value).map(|na| na.uri)
}

/// The display name of a `name-addr` header value (`"Alice" <sip:…>` → `Alice`), with
/// its quotes and escapes removed; `None` when there is none.
pub fn display_name(value: &str) -> Option<String> {
    let value = syntax::trim_ws(value);
    let before = value.get(..syntax::find_outside_quotes(value, '<')?)?;
    let name = syntax::unquote(syntax::trim_ws(before));
    (!name.is_empty()).then_some(name)
}

/// The largest message we accept or build, in bytes.
///
/// 64 KiB is the largest UDP payload; RFC 3261 §18.1.1 needs no more, and the cap bounds
/// the work a peer can make us do per datagram.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// Why bytes from the network are not a SIP message we can use.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// The datagram is larger than [`MAX_MESSAGE_SIZE`].
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Size of the input.
        size: usize,
        /// The limit, [`MAX_MESSAGE_SIZE`].
        limit: usize,
    },
    /// More header lines than [`MAX_HEADERS`].
    #[error("more than {limit} header lines")]
    TooManyHeaders {
        /// The limit, [`MAX_HEADERS`].
        limit: usize,
    },
    /// More Via values than [`MAX_VIAS`].
    #[error("more than {limit} Via values")]
    TooManyVias {
        /// The limit, [`MAX_VIAS`].
        limit: usize,
    },
    /// The bytes are not a SIP message.
    #[error("malformed SIP message: {0}")]
    Malformed(String),
    /// `Content-Length` is not a decimal number, or several disagree.
    #[error("invalid Content-Length: {0}")]
    InvalidContentLength(String),
    /// `Content-Length` announces more body bytes than arrived.
    #[error("Content-Length announces {declared} body bytes but only {available} are present")]
    Truncated {
        /// The `Content-Length` value.
        declared: usize,
        /// Body bytes actually present after the header section.
        available: usize,
    },
}

impl ParseError {
    /// A short label for counters (`reason` in metrics).
    pub fn label(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::TooManyHeaders { .. } => "too_many_headers",
            Self::TooManyVias { .. } => "too_many_vias",
            Self::Malformed(_) | Self::InvalidContentLength(_) | Self::Truncated { .. } => {
                "malformed"
            }
        }
    }
}

pub use fields::Headers;

/// A parsed request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The method exactly as sent (methods are case-sensitive, RFC 3261 §7.1); may be
    /// one the core does not know, so that it can answer 501.
    pub method: String,
    /// The Request-URI exactly as sent; never re-serialized (re-serializing corrupts
    /// GRUUs and IPv6 hosts, as `rsip` did).
    pub uri: String,
    /// The header fields.
    pub headers: Headers,
    /// The body: exactly `Content-Length` bytes when that header is present.
    pub body: Vec<u8>,
}

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, 100 to 699.
    pub status: u16,
    /// The reason phrase as sent (may be empty).
    pub reason: String,
    /// The header fields.
    pub headers: Headers,
    /// The body: exactly `Content-Length` bytes when that header is present.
    pub body: Vec<u8>,
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// The header fields, whichever kind of message this is.
    pub fn headers(&self) -> &Headers {
        match self {
            Self::Request(r) => &r.headers,
            Self::Response(r) => &r.headers,
        }
    }

    /// The body, whichever kind of message this is.
    pub fn body(&self) -> &[u8] {
        match self {
            Self::Request(r) => &r.body,
            Self::Response(r) => &r.body,
        }
    }
}

/// Whether `value` may be put in a header: no CR, LF, NUL or other control characters
/// (HTAB is allowed).
///
/// [`MessageBuilder::to_bytes`] writes values verbatim, so a CR or LF from
/// configuration or from a backend would inject headers; check every value that did not
/// come from a parsed message (parsed values already pass).
pub fn is_safe_header_value(value: &str) -> bool {
    // Bytes, not chars: every message goes through this. In UTF-8 the control
    // characters are the ASCII ones (C0 and DEL) and C1 (U+0080–U+009F), encoded as
    // 0xC2 0x80–0x9F; no other sequence contains those bytes.
    let bytes = value.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\t' => {}
            0x00..=0x1f | 0x7f => return false,
            0xc2 if bytes.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)) => return false,
            _ => {}
        }
        i += 1;
    }
    true
}
