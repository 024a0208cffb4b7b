//! The provider's answer to a `401`/`407` (RFC 2617, RFC 7616), with the model crate's
//! own digest code: MD5 or SHA-256 as the challenge names, `qop=auth` when offered.

use crate::digest::{self, Algorithm, QopAuth, ResponseInput};
use crate::sip::Credentials;
use sip_core::message::Response;

/// The header (name, value) that answers the challenge in `resp` for an INVITE to `uri`.
pub(super) fn authorization(
    resp: &Response,
    creds: &Credentials,
    uri: &str,
    cnonce: &str,
) -> (&'static str, String) {
    let (challenge_name, answer_name) = if resp.status == 407 {
        ("Proxy-Authenticate", "Proxy-Authorization")
    } else {
        ("WWW-Authenticate", "Authorization")
    };
    let (_, p) = digest::parse_credentials(resp.headers.get(challenge_name).unwrap_or_default());
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let algorithm = p
        .get("algorithm")
        .and_then(|a| Algorithm::from_token(a))
        .unwrap_or(Algorithm::Md5);
    let qop = get("qop").split(',').any(|q| q.trim() == "auth");
    let response = digest::expected_response(&ResponseInput {
        algorithm,
        username: &creds.username,
        realm: get("realm"),
        password: &creds.password,
        method: "INVITE",
        uri,
        nonce: get("nonce"),
        qop: qop.then_some(QopAuth {
            nc: "00000001",
            cnonce,
        }),
    });
    let mut value = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\"",
        creds.username,
        get("realm"),
        get("nonce"),
    );
    if p.contains_key("algorithm") {
        value.push_str(&format!(", algorithm={}", algorithm.token()));
    }
    if qop {
        value.push_str(&format!(", qop=auth, nc=00000001, cnonce=\"{cnonce}\""));
    }
    (answer_name, value)
}
