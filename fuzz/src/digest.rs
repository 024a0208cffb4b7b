//! `digest_challenge`: the challenge parser, the challenge choice and the answer.
//!
//! The input is split at `\n` (a header value never contains one): the first piece is
//! the configured realm (empty: any realm), every further piece is the value of one
//! `WWW-Authenticate` header. Properties checked besides "no panic":
//!
//! * what [`select_challenge`] picks is one of the values [`parse_challenge`] accepts;
//! * the `Authorization` value answering it reads back, with our own challenge parser,
//!   as the same realm, nonce, opaque and algorithm, with `qop` only when the challenge
//!   offered one (the rsipstack #22 class of bug), never a control character (header
//!   injection), and a lowercase hex `response` of the algorithm's length.

use sip_core::auth::{
    authorization_value, parse_challenge, qop_to_use, select_challenge, Algorithm, Challenge,
    DigestInput,
};

/// Runs one input.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut pieces = text.split('\n');
    let realm = pieces.next().filter(|r| !r.is_empty());
    let values: Vec<&str> = pieces.collect();

    let mut accepted = Vec::new();
    for value in &values {
        if let Ok(c) = parse_challenge(value) {
            check_answer(&c, values.len());
            accepted.push(c);
        }
    }
    if let Ok(chosen) = select_challenge(values.iter().copied(), realm) {
        assert!(
            accepted.contains(&chosen),
            "select_challenge chose {chosen:?}, which parse_challenge accepts from no value"
        );
        if let Some(realm) = realm {
            assert_eq!(
                chosen.realm.trim(),
                realm.trim(),
                "a challenge for another realm was chosen"
            );
        }
    }
}

/// Answers `c` and checks the answer; `nc` varies so that hex formatting above 9 runs.
fn check_answer(c: &Challenge, nc: usize) {
    let input = DigestInput {
        username: "alice",
        password: "fuzz-password",
        method: "REGISTER",
        uri: "sip:registrar.test",
        nc: u32::try_from(nc).unwrap_or(u32::MAX).wrapping_add(9),
        cnonce: "0a4f113b",
        body: b"v=0\r\n",
    };
    let value = authorization_value(c, &input);
    assert!(
        value.starts_with("Digest "),
        "not a Digest answer: {value:?}"
    );
    assert!(
        value.chars().all(|ch| ch == '\t' || !ch.is_control()),
        "a control character reached the Authorization value: {value:?}"
    );
    assert!(
        !value.contains("fuzz-password"),
        "the password appears in clear in the Authorization value"
    );

    let back = match parse_challenge(&value) {
        Ok(back) => back,
        Err(e) => panic!("our Authorization value does not read back ({e}): {value:?}"),
    };
    assert_eq!(back.realm, without_controls(&c.realm), "realm: {value:?}");
    assert_eq!(back.nonce, without_controls(&c.nonce), "nonce: {value:?}");
    assert_eq!(
        back.opaque,
        c.opaque.as_deref().map(without_controls),
        "opaque: {value:?}"
    );
    assert_eq!(back.algorithm, c.algorithm, "algorithm: {value:?}");
    let expected_qop: Vec<String> = qop_to_use(c).map(str::to_owned).into_iter().collect();
    assert_eq!(back.qop, expected_qop, "qop: {value:?}");

    let response = value
        .split_once(", response=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(hex, _)| hex);
    let want_len = match c.algorithm {
        Algorithm::Md5 | Algorithm::Md5Sess => 32,
        Algorithm::Sha256
        | Algorithm::Sha256Sess
        | Algorithm::Sha512_256
        | Algorithm::Sha512_256Sess => 64,
    };
    assert!(
        response.is_some_and(|r| r.len() == want_len
            && r.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))),
        "response= is not {want_len} lowercase hex digits: {value:?}"
    );
}

/// What `authorization_value` keeps of a quoted value: every char but controls (HTAB
/// stays).
fn without_controls(s: &str) -> String {
    s.chars()
        .filter(|c| *c == '\t' || !c.is_control())
        .collect()
}
