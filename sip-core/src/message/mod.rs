//! SIP messages: parsing, reading and building — the only module that names `rsip`.
//!
//! `rsip` 0.4.0 parses a well-formed message envelope but mishandles much of what real
//! peers send (see `DESIGN.md`, "rsip: use it behind a facade"). This module is the
//! wall around it:
//!
//! * [`parse()`] normalizes the bytes first — leading CRLFs skipped, LF-only line endings
//!   accepted, folded lines joined, whitespace before `:` dropped, compact header names
//!   expanded — and only then asks `rsip` to accept the envelope. Where `rsip` rejects a
//!   start line that SIP allows (an unknown method the core must answer with 501, a
//!   `tel:`, GRUU or IPv6 Request-URI) our own start-line grammar decides.
//!   The body is framed by `Content-Length`, which `rsip` ignores.
//! * [`Headers`] keeps every header line as an owned `(name, value)` string pair, so
//!   the B2BUA can relay what it does not own byte-for-byte, and offers small readers of
//!   our own (Via, Contact, CSeq, tags, Expires …) instead of `rsip`'s typed headers,
//!   which fail on multi-binding Contact, quoted parameters and IPv6 Via.
//! * [`MessageBuilder`] writes messages itself and always computes `Content-Length`.
//!
//! Nothing here calls `rsip`'s random `Default`s; ids come from the core's seeded
//! generator.

mod ack;
mod build;
mod contact;
mod headers;
mod limits;
mod names;
mod normalize;
mod parse;
mod syntax;
mod via;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod proptests;

use thiserror::Error;

pub use ack::ack_for_non_2xx;
pub use build::{response_to, BuildError, MessageBuilder};
pub use contact::ContactBinding;
pub use limits::{check_limits, is_keepalive, peek, Peek, MAX_HEADERS, MAX_VIAS};
pub use names::canonical_name;
pub use parse::parse;
pub use via::Via;

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

/// Header fields in order, names in their canonical long form (`v` → `Via`).
///
/// One entry per header line: a line that carries several comma-separated values (two
/// Via, two Contact bindings) stays one entry, because a naive comma split breaks
/// values such as `WWW-Authenticate`. The readers split where the grammar allows it.
/// Values are trimmed, unfolded and free of control characters other than HTAB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method exactly as sent (methods are case-sensitive, RFC 3261 §7.1); may be
    /// one the core does not know, so that it can answer 501.
    pub method: String,
    /// The Request-URI exactly as sent; never re-serialized through `rsip`, which
    /// corrupts GRUUs and IPv6 hosts.
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
/// `rsip` and [`MessageBuilder::to_bytes`] write values verbatim, so a CR or LF from
/// configuration or from a backend would inject headers; check every value that did not
/// come from a parsed message (parsed values already pass).
pub fn is_safe_header_value(value: &str) -> bool {
    value.chars().all(|c| c == '\t' || !c.is_control())
}
