//! Computing the digest response and writing the credentials header value.

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

use super::{Algorithm, Challenge, DigestInput};

/// The `qop` we answer with: `auth` when offered, else `auth-int`, else none (an
/// RFC 2069-style challenge). `auth` is preferred because SIP proxies may rewrite
/// bodies they do not own, which would break `auth-int`.
pub fn qop_to_use(challenge: &Challenge) -> Option<&'static str> {
    let offered = |wanted: &str| challenge.qop.iter().any(|q| q.eq_ignore_ascii_case(wanted));
    if offered("auth") {
        Some("auth")
    } else if offered("auth-int") {
        Some("auth-int")
    } else {
        None
    }
}

/// The lowercase hex `response=` value answering `challenge` (RFC 7616 §3.4.1).
pub fn response_digest(challenge: &Challenge, input: &DigestInput<'_>) -> String {
    let alg = challenge.algorithm;
    let mut ha1 = hash_joined(
        alg,
        &[
            input.username.as_bytes(),
            challenge.realm.as_bytes(),
            input.password.as_bytes(),
        ],
    );
    if alg.is_sess() {
        // RFC 7616 §3.4.2: the session key re-hashes HA1's hex with both nonces.
        ha1 = hash_joined(
            alg,
            &[
                ha1.as_bytes(),
                challenge.nonce.as_bytes(),
                input.cnonce.as_bytes(),
            ],
        );
    }

    let qop = qop_to_use(challenge);
    let ha2 = if qop == Some("auth-int") {
        let body = hash_joined(alg, &[input.body]);
        hash_joined(
            alg,
            &[
                input.method.as_bytes(),
                input.uri.as_bytes(),
                body.as_bytes(),
            ],
        )
    } else {
        hash_joined(alg, &[input.method.as_bytes(), input.uri.as_bytes()])
    };

    match qop {
        Some(qop) => {
            let nc = format_nc(input.nc);
            hash_joined(
                alg,
                &[
                    ha1.as_bytes(),
                    challenge.nonce.as_bytes(),
                    nc.as_bytes(),
                    input.cnonce.as_bytes(),
                    qop.as_bytes(),
                    ha2.as_bytes(),
                ],
            )
        }
        None => hash_joined(
            alg,
            &[ha1.as_bytes(), challenge.nonce.as_bytes(), ha2.as_bytes()],
        ),
    }
}

/// The full value of the `Authorization`/`Proxy-Authorization` header answering
/// `challenge`, starting with `Digest `.
///
/// `cnonce`, `nc` and `qop` appear only when a qop is used (RFC 2069 servers know none
/// of them), except that a `-sess` algorithm always sends `cnonce`, which the server
/// needs to compute HA1. `algorithm` is echoed only when the challenge named it.
pub fn authorization_value(challenge: &Challenge, input: &DigestInput<'_>) -> String {
    let response = response_digest(challenge, input);
    let qop = qop_to_use(challenge);

    let mut out = String::from("Digest ");
    push_quoted(&mut out, "username", input.username);
    out.push_str(", ");
    push_quoted(&mut out, "realm", &challenge.realm);
    out.push_str(", ");
    push_quoted(&mut out, "nonce", &challenge.nonce);
    out.push_str(", ");
    push_quoted(&mut out, "uri", input.uri);
    out.push_str(", ");
    push_quoted(&mut out, "response", &response);
    if challenge.algorithm_explicit {
        out.push_str(", algorithm=");
        out.push_str(challenge.algorithm.token());
    }
    if qop.is_some() || challenge.algorithm.is_sess() {
        out.push_str(", ");
        push_quoted(&mut out, "cnonce", input.cnonce);
    }
    if let Some(opaque) = &challenge.opaque {
        out.push_str(", ");
        push_quoted(&mut out, "opaque", opaque);
    }
    if let Some(qop) = qop {
        // Unquoted: RFC 7616 makes it a token, and strict servers reject `qop="auth"`.
        out.push_str(", qop=");
        out.push_str(qop);
        out.push_str(", nc=");
        out.push_str(&format_nc(input.nc));
    }
    out
}

fn format_nc(nc: u32) -> String {
    format!("{nc:08x}")
}

/// Appends `name="value"` with `"` and `\` escaped. CR, LF and other control characters
/// are dropped: a quoted-pair cannot carry them, and letting them through would let a
/// hostile nonce or user name inject header lines.
fn push_quoted(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `H(p1:p2:…)` in lowercase hex. The parts are fed to the hasher one by one so the
/// password never sits in a joined buffer of its own.
fn hash_joined(alg: Algorithm, parts: &[&[u8]]) -> String {
    match alg {
        Algorithm::Md5 | Algorithm::Md5Sess => hex_of::<Md5>(parts),
        Algorithm::Sha256 | Algorithm::Sha256Sess => hex_of::<Sha256>(parts),
        Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => hex_of::<Sha512_256>(parts),
    }
}

fn hex_of<D: Digest>(parts: &[&[u8]]) -> String {
    let mut hasher = D::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(part);
    }
    hex(&hasher.finalize())
}

/// Lowercase hex, as every digest RFC requires.
pub(super) fn hex(bytes: &[u8]) -> String {
    fn nibble(n: u8) -> char {
        let n = n & 0x0f;
        if n < 10 {
            char::from(b'0' + n)
        } else {
            char::from(b'a' + (n - 10))
        }
    }
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(nibble(b >> 4));
        out.push(nibble(*b));
    }
    out
}
