#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use md5::Md5;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::digest::hex;
use super::*;

const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";
const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

fn rfc7616_challenge(algorithm: &str) -> String {
    format!(
        "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
         algorithm={algorithm}, nonce=\"{RFC7616_NONCE}\", opaque=\"{RFC7616_OPAQUE}\""
    )
}

fn rfc7616_input() -> DigestInput<'static> {
    DigestInput {
        username: "Mufasa",
        password: "Circle of Life",
        method: "GET",
        uri: "/dir/index.html",
        nc: 1,
        cnonce: RFC7616_CNONCE,
        body: &[],
    }
}

fn md5_hex(s: &str) -> String {
    hex(&Md5::digest(s.as_bytes()))
}

fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

// ---- digest vectors ----

#[test]
fn rfc2617_section_3_5_vector() {
    let c = parse_challenge(
        "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
         opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    )
    .unwrap();
    let input = DigestInput {
        username: "Mufasa",
        password: "Circle Of Life",
        method: "GET",
        uri: "/dir/index.html",
        nc: 1,
        cnonce: "0a4f113b",
        body: &[],
    };
    assert_eq!(
        response_digest(&c, &input),
        "6629fae49393a05397450978507c4ef1"
    );
    assert_eq!(
        authorization_value(&c, &input),
        "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
         response=\"6629fae49393a05397450978507c4ef1\", cnonce=\"0a4f113b\", \
         opaque=\"5ccc069c403ebaf9f0171e9517f40e41\", qop=auth, nc=00000001"
    );
}

#[test]
fn rfc7616_section_3_9_1_md5() {
    let c = parse_challenge(&rfc7616_challenge("MD5")).unwrap();
    assert_eq!(c.algorithm, Algorithm::Md5);
    assert!(c.algorithm_explicit);
    assert_eq!(
        response_digest(&c, &rfc7616_input()),
        "8ca523f5e9506fed4657c9700eebdbec"
    );
}

#[test]
fn rfc7616_section_3_9_1_sha256() {
    let c = parse_challenge(&rfc7616_challenge("SHA-256")).unwrap();
    assert_eq!(c.algorithm, Algorithm::Sha256);
    let value = authorization_value(&c, &rfc7616_input());
    assert_eq!(
        value,
        format!(
            "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", \
             nonce=\"{RFC7616_NONCE}\", uri=\"/dir/index.html\", \
             response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\", \
             algorithm=SHA-256, cnonce=\"{RFC7616_CNONCE}\", opaque=\"{RFC7616_OPAQUE}\", \
             qop=auth, nc=00000001"
        )
    );
}

#[test]
fn sha512_256_is_the_truncated_sha512_variant() {
    // FIPS 180-4 SHA-512/256("abc"): guards against plain SHA-512 cut to 256 bits.
    assert_eq!(
        hex(&sha2::Sha512_256::digest(b"abc")),
        "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
    );
}

#[test]
fn sha512_256_auth_int_matches_independent_computation() {
    // Expected value computed independently with Python's hashlib ("sha512_256").
    let c = parse_challenge(&rfc7616_challenge("SHA-512-256").replace("auth, ", "")).unwrap();
    assert_eq!(c.qop, vec!["auth-int".to_owned()]);
    assert_eq!(qop_to_use(&c), Some("auth-int"));
    let input = DigestInput {
        method: "INVITE",
        uri: "sip:bob@example.org",
        nc: 10,
        body: b"v=0\r\n",
        ..rfc7616_input()
    };
    assert_eq!(
        response_digest(&c, &input),
        "d326bc78dc48d748aab3c5378ceb376f8ee595ea45c590215cb7b1e05c2535f0"
    );
    let value = authorization_value(&c, &input);
    assert!(value.contains(", algorithm=SHA-512-256, "), "{value}");
    assert!(value.ends_with(", qop=auth-int, nc=0000000a"), "{value}");
}

#[test]
fn auth_int_hashes_the_body() {
    let c = parse_challenge("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"").unwrap();
    let input = DigestInput {
        username: "u",
        password: "p",
        method: "INVITE",
        uri: "sip:x@y",
        nc: 1,
        cnonce: "c",
        body: b"hello",
    };
    let ha1 = md5_hex("u:r:p");
    let ha2 = md5_hex(&format!("INVITE:sip:x@y:{}", md5_hex("hello")));
    let expected = md5_hex(&format!("{ha1}:n:00000001:c:auth-int:{ha2}"));
    assert_eq!(response_digest(&c, &input), expected);
    let other_body = DigestInput {
        body: b"hellO",
        ..input
    };
    assert_ne!(response_digest(&c, &other_body), expected);
}

#[test]
fn auth_preferred_over_auth_int_and_unknown_qop_ignored() {
    let c = parse_challenge("Digest realm=r, nonce=n, qop=\"auth-int, AUTH\"").unwrap();
    assert_eq!(qop_to_use(&c), Some("auth"));
    let c = parse_challenge("Digest realm=r, nonce=n, qop=\"auth-conf\"").unwrap();
    assert_eq!(qop_to_use(&c), None);
}

// ---- no qop (RFC 2069) ----

#[test]
fn no_qop_challenge_uses_rfc2069_response_and_omits_qop_params() {
    let c = parse_challenge(
        "Digest realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\"",
    )
    .unwrap();
    assert_eq!(qop_to_use(&c), None);
    let input = DigestInput {
        username: "Mufasa",
        password: "CircleOfLife",
        method: "GET",
        uri: "/dir/index.html",
        nc: 1,
        cnonce: "0a4f113b",
        body: &[],
    };
    let ha1 = md5_hex("Mufasa:testrealm@host.com:CircleOfLife");
    let ha2 = md5_hex("GET:/dir/index.html");
    let hand = md5_hex(&format!("{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:{ha2}"));
    // Also computed independently with Python's hashlib.
    assert_eq!(hand, "1949323746fe6a43ef61f9606e7febea");
    assert_eq!(response_digest(&c, &input), hand);
    assert_eq!(
        authorization_value(&c, &input),
        "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
         response=\"1949323746fe6a43ef61f9606e7febea\""
    );
}

#[test]
fn sess_without_qop_still_sends_cnonce() {
    let c = parse_challenge("Digest realm=r, nonce=n, algorithm=MD5-sess").unwrap();
    let value = authorization_value(&c, &rfc7616_input());
    assert!(value.contains("cnonce="), "{value}");
    assert!(!value.contains("qop="), "{value}");
    assert!(!value.contains("nc="), "{value}");
}

// ---- header details ----

#[test]
fn nc_is_eight_lowercase_hex_digits() {
    let c = parse_challenge(&rfc7616_challenge("MD5")).unwrap();
    let input = DigestInput {
        nc: 10,
        ..rfc7616_input()
    };
    assert!(authorization_value(&c, &input).ends_with("nc=0000000a"));
    let input = DigestInput {
        nc: u32::MAX,
        ..rfc7616_input()
    };
    assert!(authorization_value(&c, &input).ends_with("nc=ffffffff"));
}

#[test]
fn algorithm_echoed_only_when_explicit() {
    let implicit = parse_challenge("Digest realm=r, nonce=n, qop=auth").unwrap();
    assert!(!implicit.algorithm_explicit);
    assert!(!authorization_value(&implicit, &rfc7616_input()).contains("algorithm"));
    let explicit = parse_challenge("Digest realm=r, nonce=n, qop=auth, algorithm=md5").unwrap();
    assert!(authorization_value(&explicit, &rfc7616_input()).contains(", algorithm=MD5,"));
    let sess =
        parse_challenge("Digest realm=r, nonce=n, qop=auth, algorithm=sha-256-SESS").unwrap();
    assert!(authorization_value(&sess, &rfc7616_input()).contains(", algorithm=SHA-256-sess,"));
}

#[test]
fn quoted_values_are_escaped_and_control_characters_dropped() {
    let c = parse_challenge(r#"Digest realm="a\"b", nonce="n\\1", opaque="o""#).unwrap();
    let input = DigestInput {
        username: "we\"ird\\user\r\nX-Injected: 1",
        uri: "sip:a@b",
        ..rfc7616_input()
    };
    let value = authorization_value(&c, &input);
    assert!(
        value.starts_with(r#"Digest username="we\"ird\\userX-Injected: 1", realm="a\"b", nonce="n\\1", uri="sip:a@b", "#),
        "{value}"
    );
    assert!(value.ends_with(r#", opaque="o""#), "{value}");
    assert!(!value.contains('\r') && !value.contains('\n'));
    // The value we emit reads back as a Digest header with the same realm and nonce.
    let reread = parse_challenge(&value).unwrap();
    assert_eq!(reread.realm, "a\"b");
    assert_eq!(reread.nonce, "n\\1");
}

// ---- -sess ----

#[test]
fn md5_sess_rehashes_ha1_and_differs_from_md5() {
    let base = parse_challenge(&rfc7616_challenge("MD5")).unwrap();
    let sess = parse_challenge(&rfc7616_challenge("MD5-sess")).unwrap();
    assert_eq!(sess.algorithm, Algorithm::Md5Sess);
    let input = rfc7616_input();
    let got = response_digest(&sess, &input);
    assert_ne!(got, response_digest(&base, &input));

    let ha1 = md5_hex(&format!(
        "{}:{RFC7616_NONCE}:{RFC7616_CNONCE}",
        md5_hex("Mufasa:http-auth@example.org:Circle of Life")
    ));
    let ha2 = md5_hex("GET:/dir/index.html");
    let hand = md5_hex(&format!(
        "{ha1}:{RFC7616_NONCE}:00000001:{RFC7616_CNONCE}:auth:{ha2}"
    ));
    assert_eq!(got, hand);
    // Also computed independently with Python's hashlib.
    assert_eq!(got, "e783283f46242139c486a698fec7211d");
}

#[test]
fn sha256_sess_rehashes_ha1_and_differs_from_sha256() {
    let base = parse_challenge(&rfc7616_challenge("SHA-256")).unwrap();
    let sess = parse_challenge(&rfc7616_challenge("SHA-256-sess")).unwrap();
    let input = rfc7616_input();
    let got = response_digest(&sess, &input);
    assert_ne!(got, response_digest(&base, &input));
    let ha1 = sha256_hex(&format!(
        "{}:{RFC7616_NONCE}:{RFC7616_CNONCE}",
        sha256_hex("Mufasa:http-auth@example.org:Circle of Life")
    ));
    let ha2 = sha256_hex("GET:/dir/index.html");
    let hand = sha256_hex(&format!(
        "{ha1}:{RFC7616_NONCE}:00000001:{RFC7616_CNONCE}:auth:{ha2}"
    ));
    assert_eq!(got, hand);
    assert_eq!(
        got,
        "2fd51b3a77ad75bad6afad6003e818d767133c46d9e2749e7f5232ae1ea3efd7"
    );
}

// ---- parser ----

#[test]
fn parses_full_challenge() {
    let c = parse_challenge(
        "Digest realm=\"x\", nonce=\"y\", qop=\"auth,auth-int\", algorithm=SHA-256, \
         opaque=\"z\", stale=TRUE",
    )
    .unwrap();
    assert_eq!(
        c,
        Challenge {
            realm: "x".into(),
            nonce: "y".into(),
            opaque: Some("z".into()),
            algorithm: Algorithm::Sha256,
            algorithm_explicit: true,
            qop: vec!["auth".into(), "auth-int".into()],
            stale: true,
        }
    );
}

#[test]
fn defaults_when_optional_params_absent() {
    let c = parse_challenge("Digest realm=\"x\", nonce=\"y\"").unwrap();
    assert_eq!(c.algorithm, Algorithm::Md5);
    assert!(!c.algorithm_explicit);
    assert!(c.qop.is_empty());
    assert_eq!(c.opaque, None);
    assert!(!c.stale);
}

#[test]
fn scheme_and_param_names_are_case_insensitive() {
    let c = parse_challenge("digest REALM=\"x\", Nonce=\"y\", QOP=auth, Stale=true").unwrap();
    assert_eq!((c.realm.as_str(), c.nonce.as_str()), ("x", "y"));
    assert_eq!(c.qop, vec!["auth".to_owned()]);
    assert!(c.stale);
    assert!(parse_challenge("DIGEST realm=x, nonce=y").is_ok());
}

#[test]
fn stale_values() {
    for (v, want) in [
        ("true", true),
        ("TRUE", true),
        ("\"true\"", true),
        ("false", false),
        ("FALSE", false),
        ("yes", false),
    ] {
        let c = parse_challenge(&format!("Digest realm=x, nonce=y, stale={v}")).unwrap();
        assert_eq!(c.stale, want, "stale={v}");
    }
}

#[test]
fn escaped_quotes_and_backslashes_in_quoted_strings() {
    let c = parse_challenge(r#"Digest realm="say \"hi\", ok", nonce="a\\b\c""#).unwrap();
    assert_eq!(c.realm, "say \"hi\", ok");
    assert_eq!(c.nonce, "a\\bc");
}

#[test]
fn tolerates_whitespace_commas_and_unknown_params() {
    let c = parse_challenge(
        "  Digest  ,, realm = \"x\" ,\t,nonce=y== ,domain=\"sip:a sip:b\", charset=UTF-8,\
         userhash=true , ",
    )
    .unwrap();
    assert_eq!(c.realm, "x");
    assert_eq!(c.nonce, "y==");
    // Missing commas between parameters are forgiven too.
    let c = parse_challenge("Digest realm=\"x\" nonce=\"y\"").unwrap();
    assert_eq!(c.nonce, "y");
}

#[test]
fn empty_quoted_values_are_kept() {
    let c = parse_challenge("Digest realm=\"\", nonce=\"n\", opaque=\"\"").unwrap();
    assert_eq!(c.realm, "");
    assert_eq!(c.opaque.as_deref(), Some(""));
}

#[test]
fn first_of_repeated_params_wins() {
    let c = parse_challenge("Digest realm=a, nonce=n, realm=b").unwrap();
    assert_eq!(c.realm, "a");
}

#[test]
fn stops_at_the_next_challenge_of_a_joined_list() {
    let c = parse_challenge("Digest realm=\"a\", nonce=\"n\", Basic realm=\"b\"").unwrap();
    assert_eq!(c.realm, "a");
}

#[test]
fn all_algorithm_tokens() {
    for (token, alg) in [
        ("MD5", Algorithm::Md5),
        ("md5-SESS", Algorithm::Md5Sess),
        ("SHA-256", Algorithm::Sha256),
        ("sha-256-sess", Algorithm::Sha256Sess),
        ("SHA-512-256", Algorithm::Sha512_256),
        ("\"SHA-512-256-sess\"", Algorithm::Sha512_256Sess),
    ] {
        let c = parse_challenge(&format!("Digest realm=x, nonce=y, algorithm={token}")).unwrap();
        assert_eq!(c.algorithm, alg, "{token}");
        assert!(c.algorithm_explicit);
        assert_eq!(Algorithm::from_token(alg.token()), Some(alg));
        assert_eq!(alg.to_string(), alg.token());
    }
}

#[test]
fn parse_errors() {
    assert_eq!(
        parse_challenge("Basic realm=\"x\""),
        Err(ChallengeError::NotDigest("Basic".into()))
    );
    assert_eq!(
        parse_challenge("Digest realm=\"x\""),
        Err(ChallengeError::MissingParam("nonce"))
    );
    assert_eq!(
        parse_challenge("Digest nonce=\"x\""),
        Err(ChallengeError::MissingParam("realm"))
    );
    assert_eq!(
        parse_challenge("Digest realm=x, nonce=y, algorithm=SHA-1"),
        Err(ChallengeError::UnsupportedAlgorithm("SHA-1".into()))
    );
    assert!(matches!(
        parse_challenge("Digest realm=\"x, nonce=y"),
        Err(ChallengeError::Malformed(_))
    ));
    assert!(matches!(
        parse_challenge("Digest realm=\"x\\"),
        Err(ChallengeError::Malformed(_))
    ));
    assert!(matches!(
        parse_challenge(""),
        Err(ChallengeError::Malformed(_))
    ));
    assert!(matches!(
        parse_challenge("   "),
        Err(ChallengeError::Malformed(_))
    ));
    assert!(matches!(
        parse_challenge("=Digest"),
        Err(ChallengeError::Malformed(_))
    ));
    assert!(matches!(
        parse_challenge("Digest =x"),
        Err(ChallengeError::Malformed(_))
    ));
}

#[test]
fn garbage_bytes_do_not_parse() {
    let garbage =
        String::from_utf8_lossy(&[0xff, 0x00, b'"', 0xc3, b'=', b'\\', 0x80, b',']).into_owned();
    assert!(parse_challenge(&garbage).is_err());
    assert!(parse_challenge(&format!("Digest {garbage}")).is_err());
    assert!(parse_challenge("Digest \u{0}\u{7f}\u{feff}=\"\\").is_err());
}

// ---- selection ----

#[test]
fn selects_sha256_over_md5_in_either_order() {
    let md5 = rfc7616_challenge("MD5");
    let sha = rfc7616_challenge("SHA-256");
    for values in [[md5.as_str(), sha.as_str()], [sha.as_str(), md5.as_str()]] {
        let c = select_challenge(values, None).unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha256);
    }
}

#[test]
fn selects_sha512_256_over_everything() {
    let values = [
        "Digest realm=r, nonce=1, algorithm=SHA-256",
        "Digest realm=r, nonce=2, algorithm=SHA-512-256-sess",
        "Digest realm=r, nonce=3",
    ];
    let c = select_challenge(values, None).unwrap();
    assert_eq!(c.algorithm, Algorithm::Sha512_256Sess);
}

#[test]
fn topmost_wins_among_equals_and_sess_ranks_with_base() {
    let values = [
        "Digest realm=r, nonce=first, algorithm=SHA-256-sess",
        "Digest realm=r, nonce=second, algorithm=SHA-256",
    ];
    assert_eq!(select_challenge(values, None).unwrap().nonce, "first");
    let values = [
        "Digest realm=r, nonce=first, algorithm=MD5",
        "Digest realm=r, nonce=second, algorithm=MD5-sess",
    ];
    assert_eq!(select_challenge(values, None).unwrap().nonce, "first");
}

#[test]
fn basic_plus_digest_selects_digest() {
    let values = ["Basic realm=\"r\"", "Digest realm=\"r\", nonce=\"n\""];
    let c = select_challenge(values, None).unwrap();
    assert_eq!(c.nonce, "n");
}

#[test]
fn unsupported_challenges_are_skipped() {
    let values = [
        "Digest realm=r, nonce=a, algorithm=SHA-1",
        "Digest realm=r, nonce=b",
    ];
    assert_eq!(select_challenge(values, None).unwrap().nonce, "b");
}

#[test]
fn realm_filter_picks_matching_even_if_weaker() {
    let values = [
        "Digest realm=\"other\", nonce=a, algorithm=SHA-512-256",
        "Digest realm=\"mine\", nonce=b",
    ];
    let c = select_challenge(values, Some(" mine ")).unwrap();
    assert_eq!(c.nonce, "b");
    let c = select_challenge(values, None).unwrap();
    assert_eq!(c.nonce, "a");
}

#[test]
fn realm_compare_is_case_sensitive() {
    let values = ["Digest realm=\"Mine\", nonce=b"];
    assert!(matches!(
        select_challenge(values, Some("mine")),
        Err(ChallengeError::RealmMismatch(..))
    ));
}

#[test]
fn realm_mismatch_lists_offered_realms() {
    let values = [
        "Digest realm=\"a.example\", nonce=1, algorithm=SHA-256",
        "Digest realm=\"b.example\", nonce=2",
        "Digest realm=\"a.example\", nonce=3",
        "Basic realm=\"c.example\"",
    ];
    let err = select_challenge(values, Some("mine")).unwrap_err();
    assert_eq!(
        err,
        ChallengeError::RealmMismatch("mine".into(), "a.example, b.example".into())
    );
    assert_eq!(
        err.to_string(),
        "no challenge for realm `mine` (challenged realms: a.example, b.example)"
    );
}

#[test]
fn selection_errors_are_informative() {
    let none: [&str; 0] = [];
    assert_eq!(select_challenge(none, None), Err(ChallengeError::None));
    assert_eq!(
        select_challenge(["", "  "], None),
        Err(ChallengeError::None)
    );
    assert_eq!(
        select_challenge(["Basic realm=x"], None),
        Err(ChallengeError::NotDigest("Basic".into()))
    );
    assert_eq!(
        select_challenge(
            ["Basic realm=x", "Digest realm=x, nonce=y, algorithm=SHA-1"],
            None
        ),
        Err(ChallengeError::UnsupportedAlgorithm("SHA-1".into()))
    );
    assert_eq!(
        select_challenge(["Bearer realm=x", "Digest realm=x"], None),
        Err(ChallengeError::MissingParam("nonce"))
    );
    // An unusable challenge in the wanted realm explains more than a realm mismatch.
    assert_eq!(
        select_challenge(
            [
                "Digest realm=other, nonce=y",
                "Digest realm=mine, nonce=y, algorithm=SHA-1"
            ],
            Some("mine")
        ),
        Err(ChallengeError::UnsupportedAlgorithm("SHA-1".into()))
    );
    // A realm mismatch explains more than a foreign scheme.
    assert!(matches!(
        select_challenge(
            ["Basic realm=mine", "Digest realm=other, nonce=y"],
            Some("mine")
        ),
        Err(ChallengeError::RealmMismatch(..))
    ));
}

proptest! {
    #[test]
    fn parse_never_panics(s in any::<String>()) {
        let _ = parse_challenge(&s);
    }

    #[test]
    fn parse_never_panics_on_digest_like_input(
        s in "(?i:digest)[ ,=\"\\\\a-zA-Z0-9\\-]{0,60}",
        tail in any::<String>(),
    ) {
        let value = format!("{s}{tail}");
        if let Ok(c) = parse_challenge(&value) {
            let _ = authorization_value(&c, &rfc7616_input());
        }
    }

    #[test]
    fn select_never_panics(values in proptest::collection::vec(any::<String>(), 0..4),
                           realm in proptest::option::of(any::<String>())) {
        let _ = select_challenge(values.iter().map(String::as_str), realm.as_deref());
    }
}
