//! Messages parsed per second by `sip_core::message::parse` (issue 9, §4: the goal is
//! ≥ 1,000,000 per second per core for the messages a B2BUA handles most).
//!
//! `cargo bench -p sip-core --bench parse`; the figure is the throughput line per
//! message kind (criterion prints elements/s).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sip_core::message::parse;
use std::hint::black_box;

const INVITE: &str = "INVITE sip:alice@127.0.0.1:5060;line=abc123 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Bob\" <sip:+15550100@provider.invalid>;tag=1928301774\r\n\
To: <sip:+4930123456@127.0.0.1>\r\n\
Call-ID: a84b4c76e66710@pc33.provider.invalid\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:+15550100@127.0.0.10:5060>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REFER, NOTIFY\r\n\
Supported: timer, replaces\r\n\
Session-Expires: 1800;refresher=uac\r\n\
P-Asserted-Identity: <sip:+15550100@provider.invalid>\r\n\
User-Agent: provider-sbc/1.0\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 142\r\n\
\r\n\
v=0\r\n\
o=- 20518 0 IN IP4 127.0.0.10\r\n\
s=-\r\n\
c=IN IP4 127.0.0.10\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 101\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=sendrecv\r\n";

const OK_200: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnashds8;rport=5060;received=127.0.0.1\r\n\
From: <sip:alice@registrar.invalid>;tag=456248\r\n\
To: <sip:alice@registrar.invalid>;tag=2493k59kd\r\n\
Call-ID: 843817637684230@998sdasdh09\r\n\
CSeq: 1826 REGISTER\r\n\
Contact: <sip:alice@127.0.0.1:5060;line=abc123>;expires=3600\r\n\
Date: Tue, 01 Dec 2026 22:00:00 GMT\r\n\
Server: registrar/1.0\r\n\
Content-Length: 0\r\n\r\n";

const BYE: &str = "BYE sip:trunkline@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bKbye1\r\n\
Max-Forwards: 70\r\n\
From: <sip:+15550100@provider.invalid>;tag=1928301774\r\n\
To: <sip:+4930123456@127.0.0.1>;tag=a6c85cf\r\n\
Call-ID: a84b4c76e66710@pc33.provider.invalid\r\n\
CSeq: 314160 BYE\r\n\
Content-Length: 0\r\n\r\n";

fn parse_messages(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(1));
    for (name, msg) in [
        ("invite_with_sdp", INVITE),
        ("register_200", OK_200),
        ("bye", BYE),
    ] {
        assert!(parse(msg.as_bytes()).is_ok(), "{name} must parse");
        group.bench_function(name, |b| b.iter(|| parse(black_box(msg.as_bytes()))));
    }
    group.finish();
}

criterion_group!(benches, parse_messages);
criterion_main!(benches);
