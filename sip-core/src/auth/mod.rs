//! Digest authentication (RFC 2617, 7616, 8760), client side.
//!
//! STUB — the interface below is fixed; the bodies are being written.

use thiserror::Error;

/// A digest algorithm we can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
    Sha512_256,
    Sha512_256Sess,
}

/// A parsed `WWW-Authenticate`/`Proxy-Authenticate` Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    pub algorithm_explicit: bool,
    pub qop: Vec<String>,
    pub stale: bool,
}

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChallengeError {
    #[error("registrar asked for {0} authentication; only Digest is supported")]
    NotDigest(String),
    #[error("digest challenge lacks the `{0}` parameter")]
    MissingParam(&'static str),
    #[error("digest algorithm `{0}` is not supported (MD5, SHA-256, SHA-512-256 and their -sess variants are)")]
    UnsupportedAlgorithm(String),
    #[error("malformed digest challenge: {0}")]
    Malformed(String),
    #[error("no challenge for realm `{0}` (challenged realms: {1})")]
    RealmMismatch(String, String),
    #[error("no authentication challenge in the response")]
    None,
}

/// What goes into one digest response.
#[derive(Debug, Clone, Copy)]
pub struct DigestInput<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub method: &'a str,
    pub uri: &'a str,
    pub nc: u32,
    pub cnonce: &'a str,
    pub body: &'a [u8],
}

pub fn parse_challenge(_value: &str) -> Result<Challenge, ChallengeError> {
    todo!()
}

pub fn select_challenge<'a>(
    _values: impl IntoIterator<Item = &'a str>,
    _realm: Option<&str>,
) -> Result<Challenge, ChallengeError> {
    todo!()
}

pub fn authorization_value(_challenge: &Challenge, _input: &DigestInput<'_>) -> String {
    todo!()
}
