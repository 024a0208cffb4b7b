//! Digest authentication (RFC 2617, 7616, 8760), client side.
//!
//! [`select_challenge`] picks the challenge to answer out of a 401/407 response,
//! [`parse_challenge`] reads one challenge header value, and [`authorization_value`]
//! builds the `Authorization`/`Proxy-Authorization` value that answers it.
//!
//! The parser lives in `challenge.rs`, the hashing and header building in `digest.rs`.

use std::fmt;

use thiserror::Error;

mod challenge;
mod digest;
#[cfg(test)]
mod tests;

pub use challenge::{parse_challenge, select_challenge};
pub use digest::{authorization_value, qop_to_use, response_digest};

/// A digest algorithm we can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Algorithm {
    /// `MD5` (RFC 2617), the default when a challenge names no algorithm.
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256`, i.e. SHA-512/256 (RFC 7616, RFC 8760).
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl Algorithm {
    /// Reads an `algorithm=` token, ignoring ASCII case; `None` for algorithms we cannot do.
    pub fn from_token(token: &str) -> Option<Self> {
        const ALL: [Algorithm; 6] = [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
            Algorithm::Sha512_256,
            Algorithm::Sha512_256Sess,
        ];
        ALL.into_iter()
            .find(|a| a.token().eq_ignore_ascii_case(token))
    }

    /// The token the RFCs spell this algorithm with, as echoed in `algorithm=`.
    pub fn token(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Whether this is a `-sess` variant, whose HA1 also covers the nonce and cnonce.
    pub fn is_sess(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// Preference rank for RFC 8760 §2.4; a `-sess` variant is exactly as strong as its
    /// base hash, so the header order decides between them.
    fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 0,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 1,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => 2,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

/// A parsed `WWW-Authenticate`/`Proxy-Authenticate` Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The protection space; echoed back and part of HA1.
    pub realm: String,
    /// The server's nonce, echoed back.
    pub nonce: String,
    /// Opaque server data, echoed back unchanged when present.
    pub opaque: Option<String>,
    /// The hash to answer with (MD5 when the challenge named none).
    pub algorithm: Algorithm,
    /// Whether the challenge carried `algorithm=`; only then is it echoed, since some
    /// RFC 2069-era servers reject an answer carrying parameters they never sent.
    pub algorithm_explicit: bool,
    /// The offered `qop` values (`auth`, `auth-int`, …), as the server spelled them.
    pub qop: Vec<String>,
    /// `stale=true`: the nonce expired but the credentials were right, so retry at once.
    pub stale: bool,
}

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChallengeError {
    /// The challenge uses another scheme (`Basic`, `Bearer`, …).
    #[error("registrar asked for {0} authentication; only Digest is supported")]
    NotDigest(String),
    /// A parameter every Digest challenge needs (`realm`, `nonce`) is absent.
    #[error("digest challenge lacks the `{0}` parameter")]
    MissingParam(&'static str),
    /// `algorithm=` names a hash we do not implement.
    #[error("digest algorithm `{0}` is not supported (MD5, SHA-256, SHA-512-256 and their -sess variants are)")]
    UnsupportedAlgorithm(String),
    /// The header value does not follow the challenge syntax.
    #[error("malformed digest challenge: {0}")]
    Malformed(String),
    /// A realm was configured and no challenge is for it: (wanted, offered realms).
    #[error("no challenge for realm `{0}` (challenged realms: {1})")]
    RealmMismatch(String, String),
    /// The response carried no challenge at all.
    #[error("no authentication challenge in the response")]
    None,
}

/// What goes into one digest response.
#[derive(Debug, Clone, Copy)]
pub struct DigestInput<'a> {
    /// The authentication user name.
    pub username: &'a str,
    /// The secret; only ever hashed, never echoed.
    pub password: &'a str,
    /// The request method (`REGISTER`, `INVITE`, …).
    pub method: &'a str,
    /// The Request-URI, exactly as sent on the request line.
    pub uri: &'a str,
    /// Nonce count: how many requests this nonce has answered, this one included.
    pub nc: u32,
    /// The client nonce; fresh for each new server nonce.
    pub cnonce: &'a str,
    /// The message body; hashed only for `qop=auth-int`.
    pub body: &'a [u8],
}
