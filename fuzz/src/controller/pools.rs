//! The interesting values a tape chooses from, and the SIP messages built from them.
//!
//! Pools mix valid values (so that runs get far: registered, refreshed, shut down) with
//! the invalid ones sources really send (CR/LF in a user name, port 0, an unknown
//! transport, a non-numeric expiry): the core must report those, never send them.

use super::ops::{BackendPick, ConfigPick, Pick, ProviderPick, SipReply};
use sip_core::message::{response_to, MessageBuilder, Request};
use sip_core::{
    Answer, BackendOp, BackendReply, NaptrRecord, ProviderSpec, QueryKind, Records, Resolution,
    Secret, SrvRecord,
};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// The passwords of the pool: distinctive, so that finding one in any output is a leak.
pub const SECRETS: &[&str] = &[
    "pw-0-7c1f9a-never-on-the-wire",
    "pw-1-2b8e44-never-on-the-wire",
    "pw-2-quote\"back\\slash-never",
];

/// Provider ids: few, so that lists overlap (unchanged, changed, removed providers).
pub const IDS: &[&str] = &["p-alice", "p-bob", "p-carol", "p-dave", "", " ", "p\r\nx"];

const HOSTS: &[&str] = &[
    "127.0.0.1",
    "registrar.test",
    "[::1]",
    "::1",
    "127.0.0.2",
    "",
    "bad host",
    "a\r\nb",
    "-.-",
];

const PORTS: &[Option<i64>] = &[
    None,
    Some(5060),
    Some(5090),
    Some(0),
    Some(65_536),
    Some(-1),
];

const TRANSPORTS: &[Option<&str>] = &[
    None,
    Some("SIP_TRANSPORT_UDP"),
    Some("udp"),
    Some("tcp"),
    Some("SIP_TRANSPORT_TLS"),
    Some("carrier-pigeon"),
];

const USERS: &[&str] = &[
    "alice",
    "bob",
    "short-dave",
    "john.doe",
    "",
    "a@b",
    "x\r\nX-Injected: 1",
    "+15551234",
];

const AUTH_USERS: &[Option<&str>] = &[None, Some("alice-auth"), Some("q\"uote"), Some("")];

const REALMS: &[Option<&str>] = &[
    None,
    Some("trunkline.test"),
    Some("other.test"),
    Some("r\n"),
];

const EXPIRES: &[Option<i64>] = &[
    None,
    Some(3600),
    Some(20),
    Some(1),
    Some(0),
    Some(-5),
    Some(1 << 40),
    Some(600),
];

const PROXIES: &[Option<&str>] = &[
    None,
    Some("sip:127.0.0.1:5070"),
    Some("sip:[::1];lr"),
    Some("sip:proxy.test"),
    Some("garbage:::"),
    Some("sip:127.0.0.1:0"),
];

const ENABLED: &[Option<bool>] = &[None, Some(true), Some(false)];

const PROBLEMS: &[Option<&str>] = &[None, None, Some("`port` should be an integer, got \"x\"")];

/// The core's REGISTER rate pool.
pub const RATES: &[u32] = &[200, 1, 5, 10_000, 0];

/// The core's resync-interval pool.
pub const SYNCS: &[Option<Duration>] = &[
    Some(Duration::from_secs(300)),
    None,
    Some(Duration::from_secs(1)),
    Some(Duration::from_secs(30)),
];

/// The core's reports-in-flight pool.
pub const REPORTS: &[usize] = &[32, 1, 2, usize::MAX];

/// The core's Contact-host pool.
pub const CONTACTS: &[Option<&str>] = &[None, Some("127.0.0.1"), Some("[::1]"), Some("edge.test")];

/// The core's backend-timeout pool.
pub const BACKEND_TIMEOUTS: &[Duration] = &[
    Duration::from_secs(5),
    Duration::from_millis(100),
    Duration::from_secs(60),
];

/// Time units of [`super::ops::Op::Advance`].
pub const SCALES: &[Duration] = &[
    Duration::from_millis(1),
    Duration::from_secs(1),
    Duration::from_secs(60),
];

/// Entry `i` (modulo) of `pool`; pools are never empty.
pub fn pick<T: Copy>(pool: &[T], i: u8) -> Option<T> {
    pool.get(usize::from(i) % pool.len().max(1)).copied()
}

fn text(p: &Pick, pool: &[&str]) -> String {
    match p {
        Pick::Pool(i) => pick(pool, *i).unwrap_or_default().to_owned(),
        Pick::Raw(bytes) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn opt_text(p: &Pick, pool: &[Option<&str>]) -> Option<String> {
    match p {
        Pick::Pool(i) => pick(pool, *i).flatten().map(str::to_owned),
        Pick::Raw(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
    }
}

fn number(p: &Pick, pool: &[Option<i64>]) -> Option<i64> {
    match p {
        Pick::Pool(i) => pick(pool, *i).flatten(),
        Pick::Raw(bytes) => {
            let mut le = [0u8; 8];
            for (dst, src) in le.iter_mut().zip(bytes) {
                *dst = *src;
            }
            Some(i64::from_le_bytes(le))
        }
    }
}

/// The provider id a pick stands for.
pub fn provider_id(p: &Pick) -> String {
    text(p, IDS)
}

/// The provider entry a pick stands for, as a backend would hand it in.
pub fn provider(p: &ProviderPick) -> ProviderSpec {
    let id = provider_id(&p.id);
    ProviderSpec {
        name: format!("fuzz provider {id}"),
        id,
        host: text(&p.host, HOSTS),
        port: number(&p.port, PORTS),
        transport: opt_text(&p.transport, TRANSPORTS),
        username: text(&p.username, USERS),
        password: Secret::new(text(&p.password, SECRETS)),
        auth_username: opt_text(&p.auth_username, AUTH_USERS),
        realm: opt_text(&p.realm, REALMS),
        expires: number(&p.expires, EXPIRES),
        outbound_proxy: opt_text(&p.outbound_proxy, PROXIES),
        enabled: match p.enabled {
            Pick::Pool(i) => pick(ENABLED, i).flatten(),
            Pick::Raw(_) => Some(false),
        },
        problem: opt_text(&p.problem, PROBLEMS),
    }
}

/// The addresses a DNS answer can name (and so the only ones the core may send to,
/// besides literal hosts).
pub fn resolution(answer: u8) -> Result<Resolution, String> {
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let v4b = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let ok = |addrs: Vec<IpAddr>, local_ip| Ok(Resolution { addrs, local_ip });
    match answer % 7 {
        0 => ok(vec![v4], None),
        1 => ok(vec![v4], Some(v4)),
        2 => ok(vec![v6], Some(v6)),
        3 => ok(Vec::new(), None),
        4 => Err("no such host".to_owned()),
        5 => ok(vec![v4b, v4], None),
        _ => ok(vec![v4], Some(v6)),
    }
}

/// The answer to a query of `kind`: addresses as [`resolution`]; SRV and NAPTR
/// records naming only hosts that resolve to loopback (an SRV target is looked up as
/// an address next, and every name resolves to the pool's addresses), empty answers,
/// `.` ("no service"), TTLs of 0 and a day, and failures.
pub fn answer(kind: QueryKind, answer: u8) -> Result<Answer, String> {
    let ttl = match answer / 8 % 3 {
        0 => None,
        1 => Some(Duration::ZERO),
        _ => Some(Duration::from_secs(86_400)),
    };
    let records = match kind {
        QueryKind::Address => Records::Addresses(resolution(answer)?),
        QueryKind::Srv => {
            let srv = |priority, weight, port, target: &str| SrvRecord {
                priority,
                weight,
                port,
                target: target.to_owned(),
            };
            Records::Services(match answer % 6 {
                0 => Vec::new(),
                1 => vec![srv(10, 0, 5060, "a.srv.example")],
                2 => vec![
                    srv(20, 0, 5070, "b.srv.example"),
                    srv(10, 5, 5060, "a.srv.example"),
                ],
                3 => vec![
                    srv(10, 50, 5060, "a.srv.example"),
                    srv(10, 50, 5061, "b.srv.example"),
                ],
                4 => vec![srv(0, 0, 0, ".")],
                _ => return Err("DNS server 127.0.0.1:53 did not answer".to_owned()),
            })
        }
        QueryKind::Naptr => Records::Naptr(match answer % 3 {
            0 => Vec::new(),
            1 => vec![NaptrRecord {
                order: 10,
                preference: 10,
                flags: "s".to_owned(),
                services: "SIP+D2T".to_owned(),
                replacement: "_sip._tcp.srv.example".to_owned(),
            }],
            _ => return Err("SERVFAIL".to_owned()),
        }),
    };
    Ok(Answer { records, ttl })
}

/// Whether `ip` is one the core may legitimately send to.
pub fn known_destination(ip: IpAddr) -> bool {
    ip.is_loopback()
}

/// Statuses of [`SipReply::Failure`].
const FAILURES: &[(u16, &str)] = &[
    (503, "Service Unavailable"),
    (500, "Server Internal Error"),
    (504, "Server Time-out"),
    (403, "Forbidden"),
    (404, "Not Found"),
    (480, "Temporarily Unavailable"),
    (400, "Bad Request"),
    (302, "Moved Temporarily"),
    (603, "Decline"),
    (699, ""),
];

const RETRY_AFTERS: &[Option<&str>] = &[
    None,
    Some("120"),
    Some("0"),
    Some("120 (I'm in a meeting);duration=60"),
    Some("4294967295"),
    Some("soon"),
];

const MIN_EXPIRES: &[Option<&str>] =
    &[Some("600"), None, Some("30"), Some("4294967295"), Some("x")];

const GRANTS: &[&str] = &[
    "60",
    "3600",
    "20",
    "1",
    "0",
    "4294967295",
    "4294967296",
    "abc",
];

const CHALLENGE_REALMS: &[&str] = &["trunkline.test", "other.test", ""];

const NONCES: &[&str] = &["n0", "n1", "n2", "bm9uY2U="];

/// The value of one or more challenge headers: `(header values)`.
fn challenges(variant: u8, realm: &str, nonce: &str, stale: bool) -> Vec<String> {
    let stale = if stale { ", stale=true" } else { "" };
    let one = |rest: &str| {
        vec![format!(
            "Digest realm=\"{realm}\", nonce=\"{nonce}\"{rest}{stale}"
        )]
    };
    match variant % 10 {
        0 => one(", qop=\"auth\", algorithm=MD5"),
        // RFC 8760: the strongest first, MD5 for old clients after it.
        1 => vec![
            format!(
                "Digest realm=\"{realm}\", nonce=\"{nonce}\", qop=\"auth\", algorithm=SHA-256{stale}"
            ),
            format!(
                "Digest realm=\"{realm}\", nonce=\"{nonce}\", qop=\"auth\", algorithm=MD5{stale}"
            ),
        ],
        2 => one(", qop=\"auth,auth-int\""),
        3 => one(""),
        4 => one(", algorithm=SHA-512-256-sess, qop=auth, opaque=\"op\\\"aque\""),
        5 => vec![format!("Basic realm=\"{realm}\"")],
        6 => vec![format!("Digest realm=\"{realm}\"{stale}")],
        7 => one(", algorithm=SHA-1"),
        8 => Vec::new(),
        _ => vec![format!("Digest ,,,=\"{nonce}")],
    }
}

/// The challenge header values of the registrar pool, for a realm and nonce index: the
/// calls' 401/407 reuse them.
pub fn challenge_values(variant: u8, realm: u8, nonce: u8, stale: bool) -> Vec<String> {
    let realm = pick(CHALLENGE_REALMS, realm).unwrap_or_default();
    let nonce = pick(NONCES, nonce).unwrap_or_default();
    challenges(variant, realm, nonce, stale)
}

/// A challenge's status, reason and header: 407 from a proxy, else 401.
pub fn challenge_status(proxy: bool) -> (u16, &'static str, &'static str) {
    if proxy {
        (407, "Proxy Authentication Required", "Proxy-Authenticate")
    } else {
        (401, "Unauthorized", "WWW-Authenticate")
    }
}

/// A `Retry-After` value of the pool, or none.
pub fn retry_after(i: u8) -> Option<&'static str> {
    pick(RETRY_AFTERS, i).flatten()
}

/// Our own binding (the Contact of the request), whatever its form.
fn our_contact(req: &Request) -> String {
    req.headers
        .get("Contact")
        .unwrap_or("<sip:nobody@127.0.0.1>")
        .to_owned()
}

/// The bytes of a response to the REGISTER `req`.
pub fn response(req: &Request, reply: &SipReply) -> Vec<u8> {
    match reply {
        SipReply::Provisional { variant } => {
            let (status, reason) = if variant % 2 == 0 {
                (100, "Trying")
            } else {
                (180, "Ringing")
            };
            response_to(req, status, reason, None).to_bytes()
        }
        SipReply::Challenge {
            proxy,
            variant,
            realm,
            nonce,
            stale,
        } => {
            let realm = pick(CHALLENGE_REALMS, *realm).unwrap_or_default();
            let nonce = pick(NONCES, *nonce).unwrap_or_default();
            let (status, reason, header) = challenge_status(*proxy);
            let mut b = response_to(req, status, reason, Some("fuzz-tag"));
            for value in challenges(*variant, realm, nonce, *stale) {
                b = b.header(header, value);
            }
            b.to_bytes()
        }
        SipReply::Ok { variant, expires } => ok(req, *variant, expires),
        SipReply::TooBrief { min } => {
            let mut b = response_to(req, 423, "Interval Too Brief", Some("fuzz-tag"));
            if let Some(min) = pick(MIN_EXPIRES, *min).flatten() {
                b = b.header("Min-Expires", min);
            }
            b.to_bytes()
        }
        SipReply::Failure {
            status,
            retry_after,
        } => {
            let (status, reason) = pick(FAILURES, *status).unwrap_or((500, ""));
            let mut b = response_to(req, status, reason, Some("fuzz-tag"));
            if let Some(ra) = pick(RETRY_AFTERS, *retry_after).flatten() {
                b = b.header("Retry-After", ra);
            }
            b.to_bytes()
        }
    }
}

fn ok(req: &Request, variant: u8, expires: &u8) -> Vec<u8> {
    let grant = pick(GRANTS, *expires).unwrap_or("60");
    let ours = our_contact(req);
    // Strip an `;expires=` we sent (un-REGISTER) so the grant is the only one.
    let ours = ours
        .split(";expires=")
        .next()
        .unwrap_or_default()
        .to_owned();
    let base = response_to(req, 200, "OK", Some("fuzz-tag"));
    match variant % 7 {
        0 => base
            .header("Contact", format!("{ours};expires={grant}"))
            .to_bytes(),
        // A registrar's 200 lists every binding of the AOR, ours among them.
        1 => base
            .header(
                "Contact",
                format!("<sip:other@192.0.2.9>;expires=3000, {ours};expires={grant}"),
            )
            .header("Contact", "<sip:third@192.0.2.10>;expires=10")
            .to_bytes(),
        // No Contact: the Expires header is the grant.
        2 => base.header("Expires", grant).to_bytes(),
        // A Contact that is not ours (our line parameter missing).
        3 => base
            .header(
                "Contact",
                format!("<sip:someone@192.0.2.1>;expires={grant}"),
            )
            .header("Expires", "45")
            .to_bytes(),
        // Compact header names (RFC 3261 §7.3.3: MUST accept).
        4 => compact(
            &base
                .header("Contact", format!("{ours};expires={grant}"))
                .to_bytes(),
        ),
        // A folded Contact line and space before the colon.
        5 => {
            let bytes = base
                .header("Contact", format!("{ours};expires={grant}"))
                .to_bytes();
            replace_first(
                &replace_first(&bytes, b";expires=", b";\r\n\texpires="),
                b"Call-ID:",
                b"Call-ID :",
            )
        }
        // The wildcard, as a registrar answering a remove-all would.
        _ => base.header("Contact", "*").to_bytes(),
    }
}

/// Rewrites long header names into their compact forms.
fn compact(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for (long, short) in [
        (&b"\r\nVia:"[..], &b"\r\nv:"[..]),
        (b"\r\nFrom:", b"\r\nf:"),
        (b"\r\nTo:", b"\r\nt:"),
        (b"\r\nCall-ID:", b"\r\ni:"),
        (b"\r\nContact:", b"\r\nm:"),
        (b"\r\nContent-Length:", b"\r\nl:"),
    ] {
        out = replace_first(&out, long, short);
    }
    out
}

fn replace_first(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    match hay.windows(from.len()).position(|w| w == from) {
        Some(at) => {
            let mut out = hay.get(..at).unwrap_or_default().to_vec();
            out.extend_from_slice(to);
            out.extend_from_slice(hay.get(at + from.len()..).unwrap_or_default());
            out
        }
        None => hay.to_vec(),
    }
}

/// Requests a peer may send to our socket.
pub fn request(kind: u8) -> Vec<u8> {
    let (method, body): (&str, &[u8]) = match kind % 7 {
        0 => ("OPTIONS", b""),
        1 => (
            "INVITE",
            b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
        ),
        2 => ("BYE", b""),
        3 => ("CANCEL", b""),
        4 => ("ACK", b""),
        5 => ("FOO", b""),
        _ => ("MESSAGE", b"hello"),
    };
    MessageBuilder::request(method, "sip:alice@127.0.0.1:5060;line=abc")
        .header("Via", "SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKpeer;rport")
        .header("Max-Forwards", "70")
        .header("From", "<sip:+15550001@127.0.0.1>;tag=peer")
        .header("To", "<sip:alice@127.0.0.1>")
        .header("Call-ID", "peer-call@127.0.0.1")
        .header("CSeq", format!("1 {method}"))
        .body(body.to_vec())
        .to_bytes()
}

/// Call routing, chosen by config bytes the older tapes leave at small values: routing
/// is on only when the reports byte has its top bit set, so every tape written before
/// routing existed still runs exactly as it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// `routing.default_domain` as configured.
    pub default_domain: Option<&'static str>,
    /// What the core must make of it (trimmed, or refused when unusable).
    pub effective_domain: Option<&'static str>,
    /// `routing.dids`.
    pub fixed: BTreeMap<String, String>,
    /// `route_lookup_timeout`.
    pub timeout: Duration,
}

/// The DID with a fixed route, when the configuration has one.
pub const FIXED_DID: &str = "+100";

/// Where [`FIXED_DID`] goes.
pub const FIXED_URI: &str = "sip:+100@fixed.example;transport=tcp";

/// `routing.default_domain` as configured, and the domain the core must use.
pub const DEFAULT_DOMAINS: &[(Option<&str>, Option<&str>)] = &[
    (None, None),
    (Some("lk.example"), Some("lk.example")),
    (Some(" lk.example "), Some("lk.example")),
    (Some("bad\r\nX: y"), None),
    (Some("a@b"), None),
    (Some(""), None),
    (
        Some("proj.sip.livekit.cloud"),
        Some("proj.sip.livekit.cloud"),
    ),
    (None, None),
];

/// `route_lookup_timeout`s.
pub const ROUTE_TIMEOUTS: &[Duration] = &[
    Duration::from_secs(2),
    Duration::from_millis(50),
    Duration::ZERO,
    Duration::from_secs(10),
];

/// The routing configuration of a run, `None` when routing is off. Bits: `reports`
/// bit 7 turns it on, bit 2 adds the fixed route, bits 3–4 pick the lookup timeout;
/// `contact` bits 2–4 pick the default domain (the low bits of both still choose
/// their own pools' entries, which have four each).
pub fn routing(config: &ConfigPick) -> Option<Routing> {
    if config.reports < 0x80 {
        return None;
    }
    let (default_domain, effective_domain) =
        pick(DEFAULT_DOMAINS, config.contact >> 2).unwrap_or((None, None));
    let mut fixed = BTreeMap::new();
    if config.reports & 0x04 != 0 {
        fixed.insert(FIXED_DID.to_owned(), FIXED_URI.to_owned());
    }
    Some(Routing {
        default_domain,
        effective_domain,
        fixed,
        timeout: pick(ROUTE_TIMEOUTS, (config.reports >> 3) & 3).unwrap_or_default(),
    })
}

/// DIDs asked for: dialable ones (one of them twice, so that lookups in flight are
/// shared), the fixed one, the longest dialable, and undialable ones.
const DIDS: &[&str] = &[
    "+15551234",
    "+15559876",
    FIXED_DID,
    "+15551234",
    "a@b",
    "",
    "7777777777777777777777777777777777777777777777777777777777777777777777",
    "+1 555",
    "*#-.9x",
    "+15551234\r\nX: y",
    "1111111111111111111111111111111111111111111111111111111111111111",
];

/// The DID a pick stands for.
pub fn did(p: &Pick) -> String {
    text(p, DIDS)
}

/// `livekitDomain` values of a config reply.
const LIVEKIT_DOMAINS: &[Option<&str>] = &[
    Some("proj.sip.livekit.cloud"),
    None,
    Some("lk.example"),
    Some(" lk.example "),
    Some(""),
    Some("bad\r\nX: y"),
    Some("a@b"),
    Some("lk.example;transport=tcp"),
    Some("tab\t.example"),
];

/// Destination URIs of a lookup reply (`{did}` is the DID asked for): usable ones, and
/// ones the core must refuse (not SIP, a header injection, empty, a space, angle
/// brackets, a control character).
const DESTINATIONS: &[&str] = &[
    "sip:{did}@backend.example",
    "sips:{did}@secure.example;transport=tls",
    "SIP:{did}@Upper.Example",
    "http://x",
    "sip:a\r\nX: y",
    "",
    "sip:",
    "sip:a b@c",
    "<sip:{did}@angle.example>",
    "sip:{did}@[::1]:5080;transport=udp",
    "sip:{did}@x\u{85}y",
    "sip:\t{did}@tab.example",
];

/// The backend's answer to a request the provider-era picks were not made for: a
/// `FetchConfig` or a `LookupDestination`. `None` leaves the pick as it is (404,
/// 401/403 and failures mean the same for every request).
pub fn route_reply(op: &BackendOp, reply: &BackendPick) -> Option<BackendReply> {
    let first_host = match reply {
        BackendPick::Providers(list) => Some(list.first().map(|p| &p.host)),
        BackendPick::Delivered => None,
        _ => return None,
    };
    match op {
        BackendOp::FetchConfig => Some(BackendReply::Config {
            livekit_domain: match first_host {
                Some(Some(p)) => opt_text(p, LIVEKIT_DOMAINS),
                Some(None) => Some(String::new()),
                None => None,
            },
        }),
        BackendOp::LookupDestination { did } => Some(BackendReply::Destination {
            uri: match first_host {
                Some(Some(p)) => text(p, DESTINATIONS).replace("{did}", did),
                Some(None) => String::new(),
                None => format!("sip:{did}@backend.example"),
            },
        }),
        BackendOp::FetchProviders | BackendOp::ReportStatus { .. } => None,
    }
}
