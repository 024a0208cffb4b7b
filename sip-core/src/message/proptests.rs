//! Property tests: `parse` never panics, on noise or on mutations of real messages.

use proptest::prelude::*;

use super::{canonical_name, parse, Message, MessageBuilder};

const REGISTER: &[u8] = b"REGISTER sip:registrar.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKabc;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=f1\r\n\
To: <sip:alice@example.com>\r\n\
Call-ID: c1@192.0.2.10\r\n\
CSeq: 7 REGISTER\r\n\
Contact: <sip:alice@192.0.2.10:5060;line=abc>;+sip.instance=\"<urn:uuid:1>\";expires=3600\r\n\
Expires: 3600\r\n\
Content-Length: 0\r\n\r\n";

const OK_200: &[u8] = b"SIP/2.0 200 OK\r\n\
v: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKabc;rport=5060;received=2001:db8::2\r\n\
f: <sip:alice@example.com>;tag=f1\r\n\
t: <sip:alice@example.com>;tag=t1\r\n\
i: c1@192.0.2.10\r\n\
CSeq: 7 REGISTER\r\n\
m: <sip:alice@127.0.0.1:5070;line=abc>;expires=20, <sip:alice@10.0.0.1>;expires=3000\r\n\
Retry-After: 120 (busy);duration=60\r\n\
l: 4\r\n\r\nbody";

/// Runs every reader, so that the property covers them too.
fn exercise(bytes: &[u8]) {
    if let Ok(message) = parse(bytes) {
        let h = message.headers();
        let _ = (h.top_via(), h.call_id(), h.cseq(), h.from_tag(), h.to_tag());
        let _ = (h.expires(), h.min_expires(), h.retry_after());
        for c in h.contacts() {
            let _ = c.uri_param("line");
        }
        // Whatever parsed can be written again.
        let mut b = MessageBuilder::response(200, "OK");
        for (n, v) in h.iter() {
            b = b.header(n, v);
        }
        let _ = b.body(message.body().to_vec()).to_bytes();
    }
}

/// One edit of a message: overwrite, insert or delete a byte at a position.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bias bytes toward the ones that matter to the grammar.
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"\r\n \t:;,<>\"=@[]\\/0123456789".to_vec()),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
    ]
}

fn apply(base: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut bytes = base.to_vec();
    for e in edits {
        let len = bytes.len().max(1);
        match *e {
            Edit::Set(i, b) => {
                if let Some(slot) = bytes.get_mut(i % len) {
                    *slot = b;
                }
            }
            Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Edit::Delete(i) => {
                if !bytes.is_empty() {
                    bytes.remove(i % len);
                }
            }
        }
    }
    bytes
}

/// 2000 cases unless `PROPTEST_CASES` asks for another number (e.g. a long soak).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// A header value as a caller would pass it: no control characters, no surrounding
/// whitespace (parsing trims it), any other Unicode.
fn header_value() -> impl Strategy<Value = String> {
    "[^\\p{Cc}]{0,40}".prop_map(|v| v.trim_matches([' ', '\t']).to_owned())
}

fn header_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "Subject",
        "X-Custom",
        "v",
        "i",
        "m",
        "call-id",
        "Max-Forwards",
        "WWW-Authenticate",
        "P-Asserted-Identity",
        "a.b!c%d*e_f+g`h'i~j",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// The byte-level check agrees with the char-level rule it replaced.
    #[test]
    fn safe_header_value_matches_the_char_rule(s in "\\PC*|[\\x00-\\x{a0}\\t ]{0,8}") {
        let by_chars = s.chars().all(|c| c == '\t' || !c.is_control());
        prop_assert_eq!(crate::message::is_safe_header_value(&s), by_chars);
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(&bytes);
    }

    #[test]
    fn never_panics_on_mutated_register(edits in prop::collection::vec(edit(), 1..8)) {
        exercise(&apply(REGISTER, &edits));
    }

    #[test]
    fn never_panics_on_mutated_200_ok(edits in prop::collection::vec(edit(), 1..8)) {
        exercise(&apply(OK_200, &edits));
    }

    #[test]
    fn built_messages_parse_back(
        headers in prop::collection::vec((header_name(), header_value()), 0..12),
        body in prop::collection::vec(any::<u8>(), 0..64),
        request in any::<bool>(),
    ) {
        let mut builder = if request {
            MessageBuilder::request("MESSAGE", "sip:bob@example.com")
        } else {
            MessageBuilder::response(202, "Accepted")
        };
        for (name, value) in &headers {
            builder = builder.header(name, value.clone());
        }
        let bytes = builder.body(body.clone()).try_to_bytes();
        prop_assert!(bytes.is_ok(), "{:?}", bytes);
        let parsed = parse(&bytes.unwrap_or_default());
        prop_assert!(parsed.is_ok(), "{:?}", parsed);
        let message = parsed.unwrap();
        prop_assert_eq!(matches!(message, Message::Request(_)), request);
        let mut expected: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (canonical_name(n).to_owned(), v.clone()))
            .collect();
        expected.push(("Content-Length".to_owned(), body.len().to_string()));
        let got: Vec<(String, String)> = message
            .headers()
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        prop_assert_eq!(&got, &expected);
        prop_assert_eq!(message.body(), &body[..]);
    }

    #[test]
    fn valid_messages_parse(_x in 0..1u8) {
        prop_assert!(parse(REGISTER).is_ok());
        prop_assert!(parse(OK_200).is_ok());
    }
}
