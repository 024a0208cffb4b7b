//! SIP messages: the only module that names `rsip`.
//!
//! STUB — the interface below is fixed; the bodies are being written.

use thiserror::Error;

/// The largest message we accept or build, in bytes.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// Why bytes from the network are not a SIP message we can use.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// The datagram is larger than [`MAX_MESSAGE_SIZE`].
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    /// The bytes are not a SIP message.
    #[error("malformed SIP message: {0}")]
    Malformed(String),
}

/// Header fields in order, names in their canonical long form (`v` → `Via`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub uri: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// The fields of a Via header value that the core reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub branch: Option<String>,
    pub received: Option<String>,
    pub rport: Option<u16>,
}

/// One binding of a Contact header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactBinding {
    pub uri: String,
    pub params: Vec<(String, Option<String>)>,
    pub expires: Option<u32>,
}

impl ContactBinding {
    /// A parameter of the URI itself (inside `<>`), e.g. `line`.
    pub fn uri_param(&self, _name: &str) -> Option<&str> {
        todo!()
    }
}

impl Headers {
    pub fn get(&self, _name: &str) -> Option<&str> {
        todo!()
    }
    pub fn get_all<'a>(&'a self, _name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        std::iter::empty()
    }
    pub fn top_via(&self) -> Option<Via> {
        todo!()
    }
    pub fn call_id(&self) -> Option<&str> {
        todo!()
    }
    pub fn cseq(&self) -> Option<(u32, &str)> {
        todo!()
    }
    pub fn from_tag(&self) -> Option<&str> {
        todo!()
    }
    pub fn to_tag(&self) -> Option<&str> {
        todo!()
    }
    pub fn contacts(&self) -> Vec<ContactBinding> {
        todo!()
    }
    pub fn expires(&self) -> Option<u32> {
        todo!()
    }
    pub fn min_expires(&self) -> Option<u32> {
        todo!()
    }
    pub fn retry_after(&self) -> Option<u32> {
        todo!()
    }
}

/// Parses one datagram.
pub fn parse(_bytes: &[u8]) -> Result<Message, ParseError> {
    todo!()
}

/// Whether `value` may be put in a header: no CR, LF or other control characters.
pub fn is_safe_header_value(_value: &str) -> bool {
    todo!()
}

/// Builds a message; `to_bytes` writes `Content-Length` itself.
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    start_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl MessageBuilder {
    pub fn request(method: &str, uri: &str) -> Self {
        Self {
            start_line: format!("{method} {uri} SIP/2.0"),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    pub fn response(status: u16, reason: &str) -> Self {
        Self {
            start_line: format!("SIP/2.0 {status} {reason}"),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }
    pub fn to_bytes(&self) -> Vec<u8> {
        todo!()
    }
}

/// A response to `req` that copies Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6),
/// adding `;tag=to_tag` to To when given and To has no tag yet.
pub fn response_to(_req: &Request, _status: u16, _reason: &str, _to_tag: Option<&str>) -> MessageBuilder {
    todo!()
}
