//! The registrar's own digest code (RFC 2617, RFC 7616), deliberately independent of
//! `sip_core::auth`: if the core computed a wrong digest, a model that shared its code
//! would agree with it and the bug would never show.

use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The digest algorithms the registrar model can demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Algorithm {
    /// `MD5` (RFC 2617).
    Md5,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
}

impl Algorithm {
    /// The token in `algorithm=`.
    pub fn token(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha256 => "SHA-256",
        }
    }

    /// Reads an `algorithm=` token (case-insensitive); `None` for anything else.
    pub fn from_token(token: &str) -> Option<Self> {
        if token.eq_ignore_ascii_case("MD5") {
            Some(Self::Md5)
        } else if token.eq_ignore_ascii_case("SHA-256") {
            Some(Self::Sha256)
        } else {
            None
        }
    }

    /// `H(data)` in lowercase hex.
    pub fn hash(self, data: &str) -> String {
        match self {
            Self::Md5 => hex(&Md5::digest(data.as_bytes())),
            Self::Sha256 => hex(&Sha256::digest(data.as_bytes())),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            let d = DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0');
            out.push(char::from(d));
        }
    }
    out
}

/// The `qop=auth` part of a response computation.
#[derive(Debug, Clone, Copy)]
pub struct QopAuth<'a> {
    /// `nc` exactly as sent (8 hex digits).
    pub nc: &'a str,
    /// `cnonce` as sent.
    pub cnonce: &'a str,
}

/// Everything the expected `response=` depends on.
#[derive(Debug, Clone, Copy)]
pub struct ResponseInput<'a> {
    /// Digest algorithm.
    pub algorithm: Algorithm,
    /// `username` as sent.
    pub username: &'a str,
    /// The realm.
    pub realm: &'a str,
    /// The account's password.
    pub password: &'a str,
    /// Request method.
    pub method: &'a str,
    /// `uri` as sent.
    pub uri: &'a str,
    /// The nonce.
    pub nonce: &'a str,
    /// `Some` for `qop=auth`, `None` for the RFC 2069 form.
    pub qop: Option<QopAuth<'a>>,
}

/// The `response=` value a correct client sends.
pub fn expected_response(i: &ResponseInput<'_>) -> String {
    let alg = i.algorithm;
    let ha1 = alg.hash(&format!("{}:{}:{}", i.username, i.realm, i.password));
    let ha2 = alg.hash(&format!("{}:{}", i.method, i.uri));
    match i.qop {
        Some(q) => alg.hash(&format!(
            "{ha1}:{}:{}:{}:auth:{ha2}",
            i.nonce, q.nc, q.cnonce
        )),
        None => alg.hash(&format!("{ha1}:{}:{ha2}", i.nonce)),
    }
}

/// Splits `Digest k=v, k="v", …` into lower-cased keys and unquoted values. Returns the
/// scheme (first word) and the parameters; quoted values may hold commas and escaped
/// quotes.
pub fn parse_credentials(value: &str) -> (String, BTreeMap<String, String>) {
    let value = value.trim();
    let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    let mut params = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.trim().is_empty() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                val.push(n);
                            }
                        }
                        '"' => break,
                        c => val.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    val.push(c);
                    chars.next();
                }
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), val.trim().to_owned());
    }
    (scheme.to_owned(), params)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_md5_vector() {
        // RFC 2617 §3.5.
        let r = expected_response(&ResponseInput {
            algorithm: Algorithm::Md5,
            username: "Mufasa",
            realm: "testrealm@host.com",
            password: "Circle Of Life",
            method: "GET",
            uri: "/dir/index.html",
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop: Some(QopAuth {
                nc: "00000001",
                cnonce: "0a4f113b",
            }),
        });
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc7616_sha256_vector() {
        // RFC 7616 §3.9.1.
        let r = expected_response(&ResponseInput {
            algorithm: Algorithm::Sha256,
            username: "Mufasa",
            realm: "http-auth@example.org",
            password: "Circle of Life",
            method: "GET",
            uri: "/dir/index.html",
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            qop: Some(QopAuth {
                nc: "00000001",
                cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            }),
        });
        assert_eq!(
            r,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn credentials_parse_quoted_and_bare() {
        let (scheme, p) = parse_credentials(
            r#"Digest username="a\"b", realm="r,1", nonce="n", uri="sip:x", response="f", qop=auth, nc=00000001, algorithm=SHA-256"#,
        );
        assert_eq!(scheme, "Digest");
        assert_eq!(p["username"], "a\"b");
        assert_eq!(p["realm"], "r,1");
        assert_eq!(p["qop"], "auth");
        assert_eq!(p["nc"], "00000001");
        assert_eq!(p["algorithm"], "SHA-256");
    }
}
