//! `message_parse`: [`sip_core::message::parse`] on arbitrary bytes.
//!
//! Beyond "no panic", two properties: every reader of a parsed message runs (they are
//! what the core calls on peer input), and a parsed message written again with
//! [`MessageBuilder`] parses back to the same header fields and body — the B2BUA relays
//! headers it does not own through exactly that path.

use sip_core::message::{check_limits, parse, peek, Headers, Message, MessageBuilder, Peek};

/// Runs one input through the parser, the readers and the writer.
pub fn run(data: &[u8]) {
    // The cheap checks before the parse never panic, and never refuse what parses.
    let kind = peek(data);
    let limits = check_limits(data);
    let Ok(message) = parse(data) else {
        return;
    };
    assert_eq!(limits, Ok(()), "check_limits refused a message that parses");
    let expected = match &message {
        Message::Request(_) => Peek::Request,
        Message::Response(_) => Peek::Response,
    };
    assert_eq!(kind, Ok(expected), "peek disagrees with the parser");
    read_everything(message.headers());
    let rebuilt = rebuild(&message).to_bytes();
    let again = match parse(&rebuilt) {
        Ok(m) => m,
        Err(e) => panic!(
            "a parsed message written again does not parse: {e}\nrebuilt: {:?}",
            String::from_utf8_lossy(&rebuilt)
        ),
    };
    assert_eq!(
        without_length(again.headers()),
        without_length(message.headers()),
        "header fields changed in a parse → build → parse round trip"
    );
    assert_eq!(
        again.body(),
        message.body(),
        "the body changed in a round trip"
    );
    match (&message, &again) {
        (Message::Request(a), Message::Request(b)) => {
            assert_eq!((&a.method, &a.uri), (&b.method, &b.uri));
        }
        (Message::Response(a), Message::Response(b)) => {
            assert_eq!((a.status, &a.reason), (b.status, &b.reason));
        }
        _ => panic!("a round trip turned a request into a response or back"),
    }
}

/// Calls every header reader the core uses on peer input.
pub fn read_everything(h: &Headers) {
    if let Some(via) = h.top_via() {
        // Fields the transaction layer and symmetric responses read.
        let _ = (via.branch, via.received, via.rport, via.port, via.host);
    }
    let _ = (h.call_id(), h.cseq(), h.from_tag(), h.to_tag());
    let _ = (h.expires(), h.min_expires(), h.retry_after());
    for binding in h.contacts() {
        let _ = binding.uri_param("line");
        let _ = binding.uri_param("transport");
        let _ = binding.param("expires");
        let _ = binding.expires;
    }
}

/// The message written again with [`MessageBuilder`].
pub fn rebuild(message: &Message) -> MessageBuilder {
    let mut b = match message {
        Message::Request(r) => MessageBuilder::request(&r.method, &r.uri),
        Message::Response(r) => MessageBuilder::response(r.status, &r.reason),
    };
    for (name, value) in message.headers().iter() {
        b = b.header(name, value);
    }
    b.body(message.body().to_vec())
}

/// The header fields without `Content-Length`, which the builder always rewrites.
fn without_length(h: &Headers) -> Vec<(String, String)> {
    h.iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("Content-Length"))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}
