//! The seed corpus of every target, generated here so that controller seeds are written
//! as step lists rather than opaque bytes. `cargo run --example gen_seeds` writes them
//! to `fuzz/seeds/<target>/`; a test checks that the checked-in files are current.

use crate::controller::ops::{
    BackendPick, CommandPick, ConfigPick, Mutation, Op, Pick, ProviderPick, Script, SipReply,
};

/// Seeds of one target: `(file name, bytes)`.
pub type Seeds = Vec<(&'static str, Vec<u8>)>;

/// The targets and their seeds.
pub fn all() -> Vec<(&'static str, Seeds)> {
    vec![
        ("message_parse", message_parse()),
        ("digest_challenge", digest_challenge()),
        ("controller", controller()),
        ("stream_frame", stream_frame()),
    ]
}

fn text(seeds: &[(&'static str, &str)]) -> Seeds {
    seeds
        .iter()
        .map(|(name, s)| (*name, s.as_bytes().to_vec()))
        .collect()
}

/// SIP messages as registrars and peers send them.
pub fn message_parse() -> Seeds {
    text(&[
        (
            "register_200_ok",
            "SIP/2.0 200 OK\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKreg;rport=5070;received=127.0.0.1\r\n\
             From: <sip:alice@trunkline.test>;tag=ft\r\n\
             To: <sip:alice@trunkline.test>;tag=tt\r\n\
             Call-ID: reg1@127.0.0.1\r\n\
             CSeq: 2 REGISTER\r\n\
             Contact: <sip:alice@127.0.0.1:5070;line=abc>;expires=20, <sip:alice@10.0.0.1>;expires=3000\r\n\
             Expires: 3600\r\n\
             Server: kamailio (5.7.4 (x86_64/linux))\r\n\
             Content-Length: 0\r\n\r\n",
        ),
        (
            "register_401_sha256_md5",
            "SIP/2.0 401 Unauthorized\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKreg;rport=5070\r\n\
             From: <sip:alice@trunkline.test>;tag=ft\r\n\
             To: <sip:alice@trunkline.test>;tag=tt\r\n\
             Call-ID: reg1@127.0.0.1\r\n\
             CSeq: 1 REGISTER\r\n\
             WWW-Authenticate: Digest realm=\"trunkline.test\", nonce=\"bm9uY2Ux\", qop=\"auth,auth-int\", algorithm=SHA-256, stale=FALSE\r\n\
             WWW-Authenticate: Digest realm=\"trunkline.test\", nonce=\"bm9uY2Ux\", qop=\"auth\", algorithm=MD5, opaque=\"xyz\"\r\n\
             Content-Length: 0\r\n\r\n",
        ),
        (
            "compact_headers",
            "SIP/2.0 200 OK\r\n\
             v: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKabc;rport=5060;received=2001:db8::2\r\n\
             f: <sip:alice@example.com>;tag=f1\r\n\
             t: <sip:alice@example.com>;tag=t1\r\n\
             i: c1@192.0.2.10\r\n\
             CSeq: 7 REGISTER\r\n\
             m: <sip:alice@127.0.0.1:5070;line=abc>;expires=20, <sip:alice@10.0.0.1>;expires=3000\r\n\
             Retry-After: 120 (busy);duration=60\r\n\
             l: 4\r\n\r\nbody",
        ),
        (
            "register_request",
            "REGISTER sip:registrar.example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKabc;rport\r\n\
             Max-Forwards: 70\r\n\
             From: \"Alice\" <sip:alice@example.com>;tag=f1\r\n\
             To: <sip:alice@example.com>\r\n\
             Call-ID: c1@192.0.2.10\r\n\
             CSeq: 7 REGISTER\r\n\
             Contact: <sip:alice@192.0.2.10:5060;line=abc>;+sip.instance=\"<urn:uuid:1>\";expires=3600\r\n\
             Authorization: Digest username=\"alice\", realm=\"r\", nonce=\"n\", uri=\"sip:registrar.example.com\", response=\"0123456789abcdef0123456789abcdef\", qop=auth, nc=0000000a, cnonce=\"c\"\r\n\
             Expires: 3600\r\n\
             Content-Length: 0\r\n\r\n",
        ),
        (
            "interval_too_brief",
            "SIP/2.0 423 Interval Too Brief\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n\
             From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: x\r\nCSeq: 3 REGISTER\r\n\
             Min-Expires: 600\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            "folded_lf_only",
            "SIP/2.0 503 Service Unavailable\n\
             Via : SIP/2.0/UDP 127.0.0.1:5060\n ;branch=z9hG4bK1\n\
             From: <sip:a@b>;tag=1\nTo: <sip:a@b>\nCall-ID: x\nCSeq: 3 REGISTER\n\
             Retry-After: 18000;duration=3600\n\n",
        ),
        (
            "invite_with_sdp",
            "INVITE sip:+15551234@127.0.0.1:5060;line=abc SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKinv;rport\r\n\
             Max-Forwards: 70\r\n\
             From: \"Caller, Inc\" <sip:+15550001@127.0.0.1>;tag=peer\r\n\
             To: <sip:+15551234@127.0.0.1>\r\n\
             Call-ID: inv1@127.0.0.1\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:peer@127.0.0.1:5090>\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: 34\r\n\r\n\
             v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n",
        ),
        (
            "ok_with_sdp_and_record_route",
            "SIP/2.0 200 OK\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKout;rport=5060;received=127.0.0.1\r\n\
             Record-Route: <sip:127.0.0.3;lr>, <sip:[::1]:5070;lr;transport=udp>\r\n\
             From: <sip:+15550001@127.0.0.1>;tag=ours\r\n\
             To: <sip:+15551234@lk.example>;tag=lk0\r\n\
             Call-ID: out1\r\nCSeq: 2 INVITE\r\n\
             Contact: \"LiveKit\" <sip:lk@127.0.0.2:5080;transport=udp>\r\n\
             Session-Expires: 1800;refresher=uac\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: 139\r\n\r\n\
             v=0\r\no=lk 7 7 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
             m=audio 5000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
        ),
        (
            "refer_in_dialog",
            "REFER sip:trunkline@127.0.0.1:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.2:5080;branch=z9hG4bKrefer\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:+15551234@lk.example>;tag=lk0\r\n\
             To: <sip:+15550001@127.0.0.1>;tag=ours\r\n\
             Call-ID: out1\r\nCSeq: 101 REFER\r\n\
             Refer-To: <sip:+15550002@127.0.0.1?Replaces=abc%40x%3Bto-tag%3D1%3Bfrom-tag%3D2>\r\n\
             Referred-By: <sip:agent@lk.example>\r\n\
             Contact: <sip:lk@127.0.0.2:5080>\r\n\
             Content-Length: 0\r\n\r\n",
        ),
        (
            "info_dtmf_body",
            "INFO sip:trunkline@127.0.0.1:5060 SIP/2.0\r\n\
             v: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKinfo\r\n\
             f: <sip:+15550001@127.0.0.1>;tag=peer\r\nt: <sip:+15551234@127.0.0.1>;tag=ours\r\n\
             i: inv1@127.0.0.1\r\nCSeq: 3 INFO\r\n\
             c: application/dtmf-relay\r\nl: 24\r\n\r\n\
             Signal=5\r\nDuration=160\r\n",
        ),
        (
            "unknown_method",
            "FOO sip:trunkline@[::1] SIP/2.0\r\n\
             Via: SIP/2.0/UDP [::1]:5090;branch=z9hG4bKfoo\r\n\
             From: <sip:x@[::1]>;tag=1\r\nTo: <tel:+15551234>\r\nCall-ID: foo\r\nCSeq: 1 FOO\r\n\r\n",
        ),
    ])
}

/// Challenge header values; the first line of each is the realm filter.
pub fn digest_challenge() -> Seeds {
    text(&[
        (
            "md5_qop_auth",
            "\nDigest realm=\"trunkline.test\", nonce=\"bm9uY2Ux\", qop=\"auth\", algorithm=MD5",
        ),
        (
            "sha256_then_md5",
            "trunkline.test\n\
             Digest realm=\"trunkline.test\", nonce=\"n1\", qop=\"auth,auth-int\", algorithm=SHA-256\n\
             Digest realm=\"trunkline.test\", nonce=\"n1\", qop=\"auth\", algorithm=MD5",
        ),
        (
            "rfc7616_sess_opaque",
            "\nDigest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=SHA-512-256-sess, \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
        ),
        (
            "rfc2069_no_qop_stale",
            "\ndigest REALM=r, NONCE=\"a\\\"b\", stale=TRUE",
        ),
        (
            "realm_mismatch_and_basic",
            "wanted.test\nBasic realm=\"x\"\nDigest realm=\"other.test\", nonce=\"n\"\nDigest realm=\"wanted.test\", nonce=\"n\", algorithm=SHA-1",
        ),
        (
            "comma_joined_list",
            "\nDigest realm=\"a\", nonce=\"1\", Basic realm=\"b\"",
        ),
    ])
}

pub(crate) fn respond(which: u8, reply: SipReply) -> Op {
    Op::Respond {
        which,
        reply,
        mutations: Vec::new(),
        twice: false,
    }
}

fn challenge(variant: u8, nonce: u8) -> SipReply {
    SipReply::Challenge {
        proxy: false,
        variant,
        realm: 0,
        nonce,
        stale: false,
    }
}

pub(crate) fn ok(variant: u8, expires: u8) -> SipReply {
    SipReply::Ok { variant, expires }
}

fn delivered(times: usize) -> Vec<Op> {
    vec![
        Op::Backend {
            which: 0,
            reply: BackendPick::Delivered,
        };
        times
    ]
}

/// Byte tapes for the whole core, written as steps.
pub fn controller() -> Seeds {
    let mut seeds = Vec::new();

    // Two providers: alice answers the challenge and is bound; bob's password is wrong
    // (the same nonce comes back). Refresh, then shut down with an un-REGISTER.
    let mut ops = vec![Op::Backend {
        which: 0,
        reply: BackendPick::Providers(vec![
            ProviderPick::valid(0, 0, 0),
            ProviderPick::valid(1, 1, 1),
        ]),
    }];
    ops.extend(delivered(2));
    ops.extend([
        Op::Resolve {
            which: 0,
            answer: 1,
        },
        // The pacer sends bob's REGISTER a moment after alice's.
        Op::Deadline,
    ]);
    // A challenged REGISTER is re-sent through the pacer: `Deadline` releases it.
    ops.extend([
        respond(1, challenge(0, 0)),
        Op::Deadline,
        respond(0, ok(0, 0)),
        respond(1, challenge(1, 1)),
        Op::Deadline,
        respond(0, challenge(1, 1)),
    ]);
    ops.extend(delivered(3));
    ops.extend([Op::Deadline, Op::Deadline, respond(0, ok(1, 0))]);
    ops.extend(delivered(1));
    ops.extend([
        Op::Command(CommandPick::Shutdown { grace_centis: 500 }),
        respond(0, ok(0, 4)),
    ]);
    ops.extend(delivered(3));
    seeds.push(("two_providers_auth_and_wrong_password", old_config(), ops));

    // A host name to resolve, a 423 then a compact 200, a 503 with Retry-After.
    let mut dns = ProviderPick::valid(2, 2, 2);
    dns.host = Pick::Pool(1);
    dns.expires = Pick::Pool(1);
    let ops = vec![
        Op::Backend {
            which: 0,
            reply: BackendPick::Providers(vec![dns]),
        },
        Op::Backend {
            which: 0,
            reply: BackendPick::Delivered,
        },
        Op::Resolve {
            which: 0,
            answer: 1,
        },
        respond(0, challenge(2, 2)),
        Op::Deadline,
        respond(0, SipReply::TooBrief { min: 0 }),
        Op::Deadline,
        respond(0, ok(4, 1)),
        Op::Advance {
            amount: 3000,
            scale: 1,
        },
        respond(
            0,
            SipReply::Failure {
                status: 0,
                retry_after: 1,
            },
        ),
        Op::Deadline,
        respond(0, ok(5, 2)),
    ];
    seeds.push(("dns_423_compact_503", old_config(), ops));

    // Provider lists that change: resync, a removed provider, a changed one, invalid
    // entries; backend failures in between.
    let mut invalid = ProviderPick::valid(3, 6, 0);
    invalid.port = Pick::Pool(3);
    let mut raw = ProviderPick::valid(0, 0, 0);
    raw.id = Pick::Raw(b"raw\x00id".to_vec());
    raw.host = Pick::Raw(b"h\r\nX: y".to_vec());
    raw.expires = Pick::Raw(vec![0xff; 8]);
    let mut changed = ProviderPick::valid(0, 0, 0);
    changed.expires = Pick::Pool(2);
    let ops = vec![
        Op::Backend {
            which: 0,
            reply: BackendPick::Failed,
        },
        Op::Deadline,
        Op::Backend {
            which: 0,
            reply: BackendPick::Unauthorized(0),
        },
        Op::Command(CommandPick::Resync),
        Op::Backend {
            which: 0,
            reply: BackendPick::Providers(vec![
                ProviderPick::valid(0, 0, 0),
                ProviderPick::valid(1, 1, 1),
                invalid,
                raw,
            ]),
        },
        Op::Backend {
            which: 0,
            reply: BackendPick::NotFound,
        },
        Op::Resolve {
            which: 0,
            answer: 0,
        },
        respond(0, ok(0, 1)),
        respond(1, ok(2, 1)),
        Op::Command(CommandPick::Resync),
        Op::Backend {
            which: 200,
            reply: BackendPick::Providers(vec![changed]),
        },
        Op::Command(CommandPick::Reregister(Pick::Pool(0))),
        respond(0, ok(0, 2)),
        Op::Advance {
            amount: 10,
            scale: 2,
        },
    ];
    seeds.push(("provider_list_changes", old_config(), ops));

    // Peers and noise: requests of every kind, a mutated one, a raw datagram, a
    // proxy challenge answered twice, a folded 200.
    let mut proxied = ProviderPick::valid(0, 0, 0);
    proxied.outbound_proxy = Pick::Pool(1);
    let ops = vec![
        Op::Backend {
            which: 0,
            reply: BackendPick::Providers(vec![proxied]),
        },
        Op::Resolve {
            which: 0,
            answer: 0,
        },
        peer(0),
        peer(1),
        Op::Request {
            kind: 5,
            mutations: vec![Mutation {
                at: 3,
                kind: 0,
                byte: b'\n',
            }],
            twice: false,
        },
        Op::Raw(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x;branch=z9hG4bKnothing\r\nCSeq: 1 REGISTER\r\n\r\n".to_vec()),
        Op::Respond {
            which: 0,
            reply: SipReply::Challenge {
                proxy: true,
                variant: 4,
                realm: 0,
                nonce: 3,
                stale: false,
            },
            mutations: Vec::new(),
            twice: true,
        },
        Op::Deadline,
        Op::Respond {
            which: 0,
            reply: SipReply::Challenge {
                proxy: true,
                variant: 4,
                realm: 0,
                nonce: 0,
                stale: true,
            },
            mutations: Vec::new(),
            twice: false,
        },
        Op::Deadline,
        respond(0, ok(5, 0)),
        Op::Deadline,
        Op::Deadline,
        Op::Deadline,
    ];
    seeds.push(("peers_noise_and_proxy_auth", old_config(), ops));

    seeds.push((
        "routes_lookup_config_and_cache",
        routes_config(0x84, 1),
        routes_lookup_config_and_cache(),
    ));
    seeds.push((
        "routes_no_default_timeouts_and_config_retry",
        ConfigPick {
            backend_timeout: 1,
            ..routes_config(0x88, 0)
        },
        routes_no_default_timeouts_and_config_retry(),
    ));
    seeds.extend(super::seeds_calls::controller_calls());

    seeds
        .into_iter()
        .map(|(name, config, ops)| (name, Script { config, ops }.encode()))
        .collect()
}

/// A peer's request of this kind, unmutated, once.
pub(crate) fn peer(kind: u8) -> Op {
    Op::Request {
        kind,
        mutations: Vec::new(),
        twice: false,
    }
}

/// The configuration of the seeds written before call routing: all zero, routing off.
fn old_config() -> ConfigPick {
    ConfigPick::default()
}

/// Routing on (`reports` at or above 0x80, see `pools::routing`): `reports` also holds
/// the fixed route (0x04) and the lookup timeout (bits 3–4: 2 s, 50 ms, 0, 10 s);
/// `domain` indexes `pools::DEFAULT_DOMAINS` from `contact`'s bit 2 up.
pub(crate) fn routes_config(reports: u8, domain: u8) -> ConfigPick {
    ConfigPick {
        reports,
        contact: domain << 2,
        ..ConfigPick::default()
    }
}

fn lookup(did: Pick) -> Op {
    // With routing on, a re-register pick also asks for the route of a DID.
    Op::Command(CommandPick::Reregister(did))
}

pub(crate) fn answer(which: u8, reply: BackendPick) -> Op {
    Op::Backend { which, reply }
}

/// A first entry whose host picks a `livekitDomain` (config reply) or a destination URI
/// (lookup reply) from its pool.
pub(crate) fn host_reply(host: u8) -> BackendPick {
    let mut entry = ProviderPick::valid(0, 0, 0);
    entry.host = Pick::Pool(host);
    BackendPick::Providers(vec![entry])
}

/// Routing from the backend with a configured default domain (`lk.example`) and a
/// fixed route for `+100`, lookup timeout 2 s: the backend's `livekitDomain` replaces
/// the default; two tickets for one DID share a request and its backend route, which
/// is then cached; the fixed route and an undialable DID need no request; a 404 gives
/// the (cached) default; an injected URI, a timeout and a failure fall back.
fn routes_lookup_config_and_cache() -> Vec<Op> {
    vec![
        // Pending: the provider fetch, the config fetch.
        answer(1, host_reply(0)),
        answer(
            0,
            BackendPick::Providers(vec![ProviderPick::valid(0, 0, 0)]),
        ),
        answer(0, BackendPick::Delivered),
        lookup(Pick::Pool(0)),
        lookup(Pick::Pool(3)),
        lookup(Pick::Pool(2)),
        answer(0, host_reply(0)),
        lookup(Pick::Pool(0)),
        lookup(Pick::Pool(4)),
        lookup(Pick::Pool(1)),
        answer(0, BackendPick::NotFound),
        lookup(Pick::Pool(1)),
        lookup(Pick::Pool(8)),
        answer(0, host_reply(4)),
        lookup(Pick::Raw(b"+4930123".to_vec())),
        Op::Advance {
            amount: 3,
            scale: 1,
        },
        lookup(Pick::Pool(10)),
        // Pending: the timed-out lookup (a late reply now), this one.
        answer(1, BackendPick::Failed),
        Op::Command(CommandPick::Resync),
        // A config without livekitDomain keeps the domain.
        answer(2, BackendPick::Delivered),
        answer(
            1,
            BackendPick::Providers(vec![ProviderPick::valid(0, 0, 0)]),
        ),
        Op::Command(CommandPick::Shutdown { grace_centis: 300 }),
    ]
}

/// Routing from the backend without a default domain, lookup timeout 50 ms, backend
/// timeout 100 ms: the config fetch fails and is retried; two tickets time out together
/// with no default to fall back to; the retried config brings a domain (trimmed);
/// a 401 falls back; undialable DIDs are refused; a lookup asked during the shutdown
/// is still answered.
fn routes_no_default_timeouts_and_config_retry() -> Vec<Op> {
    vec![
        answer(1, BackendPick::Failed),
        lookup(Pick::Pool(0)),
        lookup(Pick::Pool(3)),
        Op::Advance {
            amount: 50,
            scale: 0,
        },
        // The config retry, then the provider fetch's deadline.
        Op::Deadline,
        Op::Deadline,
        // Pending: the timed-out provider fetch and lookup (late replies now), the
        // retried config fetch.
        answer(2, host_reply(3)),
        lookup(Pick::Pool(1)),
        answer(2, BackendPick::Unauthorized(0)),
        lookup(Pick::Pool(5)),
        lookup(Pick::Pool(6)),
        lookup(Pick::Pool(9)),
        // A lookup in flight holds the shutdown; two more join during it.
        lookup(Pick::Pool(0)),
        Op::Command(CommandPick::Shutdown { grace_centis: 100 }),
        lookup(Pick::Pool(3)),
        lookup(Pick::Pool(1)),
        Op::Deadline,
        Op::Deadline,
    ]
}

/// Streams as a TCP/TLS connection carries them: back-to-back messages with bodies,
/// keep-alives between them, the compact `l` form; the first byte picks the reads.
pub fn stream_frame() -> Seeds {
    let invite = "INVITE sip:100@trunk.example SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK1\r\n\
                  From: <sip:a@192.0.2.1>;tag=1\r\nTo: <sip:100@trunk.example>\r\nCall-ID: s1\r\n\
                  CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 31\r\n\r\n\
                  v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n";
    let ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK1\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n";
    vec![
        (
            "two_messages",
            [b"\x05".as_slice(), invite.as_bytes(), ok.as_bytes()].concat(),
        ),
        (
            "keepalives_between",
            [
                b"\x2a\r\n\r\n".as_slice(),
                ok.as_bytes(),
                b"\r\n",
                invite.as_bytes(),
            ]
            .concat(),
        ),
        (
            "no_content_length",
            b"\x01OPTIONS sip:h SIP/2.0\r\nCall-ID: x\r\n\r\n".to_vec(),
        ),
    ]
}
