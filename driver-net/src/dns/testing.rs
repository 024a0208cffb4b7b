//! A small DNS server on loopback with a zone of known records and TTLs, and the checks
//! every runtime provider of [`Dns`] must pass against it. Both drivers' providers run
//! the same checks (driver-net's tests with tokio's provider, runtime-smol's tests with
//! its own), so "the smol resolver works" means exactly what it means for tokio.
//!
//! The server runs on plain threads with std sockets, so it needs no runtime and cannot
//! be starved by the one under test. Enabled by the `test-support` feature.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::{Dns, QUERY_RETRIES, QUERY_TIMEOUT};
use hickory_resolver::net::runtime::RuntimeProvider;
use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, NAPTR, SOA, SRV};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use sip_core::{Answer, NaptrRecord, QueryId, QueryKind, Records, ResolveQuery, SrvRecord};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The zone's negative-caching time (its SOA's MINIMUM, below the SOA's own TTL).
pub const NEGATIVE_TTL: Duration = Duration::from_secs(30);

/// A DNS server on `127.0.0.1`, UDP and TCP on the same port, serving `example.test`:
///
/// | name | type | answer |
/// |---|---|---|
/// | `_sip._udp.example.test` | SRV | `10 60 5060 sip1.example.test.` (TTL 300), `20 0 5080 sip2.example.test.` (TTL 120) |
/// | `_sip._tcp.example.test` | SRV | `0 0 0 .` (TTL 3600): no service |
/// | `big.example.test` | SRV | truncated over UDP; over TCP three records, TTL 50 |
/// | `example.test` | NAPTR | `10 50 "s" "SIP+D2U" "" _sip._udp.example.test.` (TTL 600), `20 50 "s" "SIP+D2T" "" _sip._tcp.example.test.` (TTL 900) |
/// | `sip1.example.test` | A | `127.0.0.1` (TTL 60); no AAAA (NODATA) |
/// | `dual.example.test` | A, AAAA | `127.0.0.2` (TTL 90), `::1` (TTL 30) |
/// | `broken.example.test` | any | SERVFAIL |
/// | anything else | any | NXDOMAIN |
///
/// Negative answers carry the zone's SOA ([`NEGATIVE_TTL`]). Stopped when dropped.
pub struct TestServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl TestServer {
    /// Binds a free port (UDP and TCP alike) and starts serving.
    pub fn start() -> io::Result<Self> {
        let (udp, tcp) = bind_pair()?;
        let addr = udp.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let udp_thread = {
            let stop = stop.clone();
            std::thread::spawn(move || serve_udp(&udp, &stop))
        };
        let tcp_thread = {
            let stop = stop.clone();
            std::thread::spawn(move || serve_tcp(&tcp, &stop))
        };
        Ok(Self {
            addr,
            stop,
            threads: vec![udp_thread, tcp_thread],
        })
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake both blocking loops so they see the flag.
        if let Ok(s) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) {
            let _ = s.send_to(&[], self.addr);
        }
        let _ = TcpStream::connect(self.addr);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A UDP socket on loopback that reads nothing and answers nothing: a dead server.
/// Keep it alive for as long as the resolver should find the port taken.
pub fn silent_server() -> io::Result<UdpSocket> {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
}

/// UDP and TCP sockets on the same free loopback port (another process may hold the
/// TCP port of a free UDP one: then try another).
fn bind_pair() -> io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        match TcpListener::bind(udp.local_addr()?) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free port pair")))
}

fn serve_udp(socket: &UdpSocket, stop: &AtomicBool) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        if let Some(reply) = buf.get(..n).and_then(|q| respond(q, false)) {
            let _ = socket.send_to(&reply, from);
        }
    }
}

fn serve_tcp(listener: &TcpListener, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        if let Ok((stream, _)) = listener.accept() {
            // A resolver may keep its connection open: one thread each, so the accept
            // loop still sees the stop flag.
            std::thread::spawn(move || serve_connection(stream));
        }
    }
}

/// DNS over TCP: each message behind its two-byte length (RFC 1035 §4.2.2).
fn serve_connection(mut stream: TcpStream) {
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            return;
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut query).is_err() {
            return;
        }
        let Some(reply) = respond(&query, true) else {
            return;
        };
        let Ok(reply_len) = u16::try_from(reply.len()) else {
            return;
        };
        if stream.write_all(&reply_len.to_be_bytes()).is_err() || stream.write_all(&reply).is_err()
        {
            return;
        }
    }
}

/// What the zone says to one question.
enum Reply {
    Records(Vec<Record>),
    NoData,
    NxDomain,
    ServFail,
    Truncated,
}

/// The answer to one query message, or `None` for garbage (ignored, as a server would).
fn respond(query: &[u8], over_tcp: bool) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let question = request.queries.first()?.clone();
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.metadata.authoritative = true;
    let name = question.name().to_ascii().to_ascii_lowercase();
    let name = name.trim_end_matches('.');
    let kind = question.query_type();
    response.add_query(question);
    match zone(name, kind, over_tcp) {
        Reply::Records(records) => {
            response.add_answers(records);
        }
        Reply::NoData => {
            response.add_authority(soa());
        }
        Reply::NxDomain => {
            response.metadata.response_code = ResponseCode::NXDomain;
            response.add_authority(soa());
        }
        Reply::ServFail => response.metadata.response_code = ResponseCode::ServFail,
        Reply::Truncated => response.metadata.truncation = true,
    }
    response.to_vec().ok()
}

fn zone(name: &str, kind: RecordType, over_tcp: bool) -> Reply {
    let srv = |ttl, priority, weight, port, target: &str| {
        record(
            name,
            ttl,
            RData::SRV(SRV::new(priority, weight, port, fqdn(target))),
        )
    };
    let naptr = |ttl, order, services: &str, replacement: &str| {
        record(
            name,
            ttl,
            RData::NAPTR(NAPTR::new(
                order,
                50,
                b"s".to_vec().into_boxed_slice(),
                services.as_bytes().to_vec().into_boxed_slice(),
                Vec::new().into_boxed_slice(),
                fqdn(replacement),
            )),
        )
    };
    match (name, kind) {
        ("_sip._udp.example.test", RecordType::SRV) => Reply::Records(vec![
            srv(300, 10, 60, 5060, "sip1.example.test."),
            srv(120, 20, 0, 5080, "sip2.example.test."),
        ]),
        ("_sip._tcp.example.test", RecordType::SRV) => {
            Reply::Records(vec![srv(3600, 0, 0, 0, ".")])
        }
        ("big.example.test", RecordType::SRV) if !over_tcp => Reply::Truncated,
        ("big.example.test", RecordType::SRV) => Reply::Records(
            (1..=3)
                .map(|i| srv(50, i, 10, 5060, &format!("sip{i}.big.example.test.")))
                .collect(),
        ),
        ("example.test", RecordType::NAPTR) => Reply::Records(vec![
            naptr(600, 10, "SIP+D2U", "_sip._udp.example.test."),
            naptr(900, 20, "SIP+D2T", "_sip._tcp.example.test."),
        ]),
        ("sip1.example.test", RecordType::A) => {
            Reply::Records(vec![record(name, 60, RData::A(A(Ipv4Addr::LOCALHOST)))])
        }
        ("dual.example.test", RecordType::A) => Reply::Records(vec![record(
            name,
            90,
            RData::A(A(Ipv4Addr::new(127, 0, 0, 2))),
        )]),
        ("dual.example.test", RecordType::AAAA) => Reply::Records(vec![record(
            name,
            30,
            RData::AAAA(AAAA(Ipv6Addr::LOCALHOST)),
        )]),
        ("broken.example.test", _) => Reply::ServFail,
        (
            "example.test"
            | "_sip._udp.example.test"
            | "_sip._tcp.example.test"
            | "big.example.test"
            | "sip1.example.test"
            | "dual.example.test",
            _,
        ) => Reply::NoData,
        _ => Reply::NxDomain,
    }
}

fn fqdn(name: &str) -> Name {
    Name::from_ascii(name).expect("a name of the test zone")
}

fn record(name: &str, ttl: u32, data: RData) -> Record {
    Record::from_rdata(fqdn(&format!("{name}.")), ttl, data)
}

/// The zone's SOA: TTL 3600, MINIMUM 30, so the negative TTL is 30 s (RFC 2308 §5).
fn soa() -> Record {
    let soa = SOA::new(
        fqdn("ns.example.test."),
        fqdn("hostmaster.example.test."),
        1,
        3600,
        600,
        86_400,
        30,
    );
    record("example.test", 3600, RData::SOA(soa))
}

async fn ask<P: RuntimeProvider>(
    dns: &Dns<P>,
    host: &str,
    kind: QueryKind,
    need_local: Option<IpAddr>,
) -> Result<Answer, String> {
    let query = ResolveQuery {
        id: QueryId(1),
        host: host.to_owned(),
        kind,
    };
    dns.answer(&query, need_local).await
}

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

/// Every answer of [`TestServer`]'s zone through `dns` (built with `Some(server.addr())`):
/// records by kind, their order, TTLs, targets without the trailing dot, negative
/// answers as empty `Ok` with the SOA's time, SERVFAIL as `Err`, a truncated UDP answer
/// asked again over TCP.
pub async fn check_answers<P: RuntimeProvider>(dns: &Dns<P>) {
    let srv = |priority, weight, port, target: &str| SrvRecord {
        priority,
        weight,
        port,
        target: target.to_owned(),
    };
    let a = ask(dns, "_sip._udp.example.test", QueryKind::Srv, None).await;
    assert_eq!(
        a,
        Ok(Answer {
            records: Records::Services(vec![
                srv(10, 60, 5060, "sip1.example.test"),
                srv(20, 0, 5080, "sip2.example.test"),
            ]),
            ttl: secs(120),
        })
    );
    let a = ask(dns, "_sip._tcp.example.test", QueryKind::Srv, None).await;
    assert_eq!(
        a,
        Ok(Answer {
            records: Records::Services(vec![srv(0, 0, 0, ".")]),
            ttl: secs(3600),
        }),
        "the root target stays `.`"
    );
    let a = ask(dns, "big.example.test", QueryKind::Srv, None).await;
    assert_eq!(
        a,
        Ok(Answer {
            records: Records::Services(
                (1..=3)
                    .map(|i| srv(i, 10, 5060, &format!("sip{i}.big.example.test")))
                    .collect()
            ),
            ttl: secs(50),
        }),
        "a truncated UDP answer is asked again over TCP"
    );

    let naptr = |order, services: &str, replacement: &str| NaptrRecord {
        order,
        preference: 50,
        flags: "s".to_owned(),
        services: services.to_owned(),
        replacement: replacement.to_owned(),
    };
    let a = ask(dns, "example.test", QueryKind::Naptr, None).await;
    assert_eq!(
        a,
        Ok(Answer {
            records: Records::Naptr(vec![
                naptr(10, "SIP+D2U", "_sip._udp.example.test"),
                naptr(20, "SIP+D2T", "_sip._tcp.example.test"),
            ]),
            ttl: secs(600),
        })
    );

    // A found, AAAA NODATA: the addresses' TTL is the A record's.
    let a = ask(dns, "sip1.example.test", QueryKind::Address, None).await;
    assert_eq!(
        a,
        Ok(Answer {
            records: Records::Addresses(sip_core::Resolution {
                addrs: vec![Ipv4Addr::LOCALHOST.into()],
                local_ip: None,
            }),
            ttl: secs(60),
        })
    );
    // Both families, IPv4 first, the smaller TTL; our address towards the first.
    let a = ask(
        dns,
        "dual.example.test",
        QueryKind::Address,
        Some(Ipv4Addr::UNSPECIFIED.into()),
    )
    .await
    .unwrap();
    assert_eq!(a.ttl, secs(30));
    let Records::Addresses(res) = a.records else {
        panic!("addresses asked, {:?} answered", a.records);
    };
    assert_eq!(
        res.addrs,
        vec![
            IpAddr::from(Ipv4Addr::new(127, 0, 0, 2)),
            Ipv6Addr::LOCALHOST.into()
        ]
    );
    assert!(res.local_ip.is_some_and(|ip| ip.is_loopback()), "{res:?}");

    // NXDOMAIN and NODATA: empty, with the negative-caching time.
    for (host, kind, empty) in [
        (
            "nowhere.example.test",
            QueryKind::Address,
            Records::Addresses(sip_core::Resolution {
                addrs: Vec::new(),
                local_ip: None,
            }),
        ),
        (
            "_sip._udp.nowhere.example.test",
            QueryKind::Srv,
            Records::Services(Vec::new()),
        ),
        (
            "nowhere.example.test",
            QueryKind::Naptr,
            Records::Naptr(Vec::new()),
        ),
        (
            "sip1.example.test",
            QueryKind::Naptr,
            Records::Naptr(Vec::new()),
        ),
    ] {
        let a = ask(dns, host, kind, None).await;
        assert_eq!(
            a,
            Ok(Answer {
                records: empty,
                ttl: Some(NEGATIVE_TTL),
            }),
            "{kind:?} {host}"
        );
    }

    // SERVFAIL is a failed lookup, not an empty answer.
    for kind in [QueryKind::Address, QueryKind::Srv, QueryKind::Naptr] {
        let e = ask(dns, "broken.example.test", kind, None)
            .await
            .unwrap_err();
        assert!(e.contains("SERVFAIL"), "{kind:?}: {e}");
    }
}

/// IP literals are answered as themselves, without asking anyone (the server behind
/// `dns` may be dead) and without a TTL.
pub async fn check_literals<P: RuntimeProvider>(dns: &Dns<P>) {
    let started = Instant::now();
    let a = ask(
        dns,
        "127.0.0.1",
        QueryKind::Address,
        Some(Ipv4Addr::LOCALHOST.into()),
    )
    .await;
    assert_eq!(
        a,
        Ok(Answer::addresses(
            vec![Ipv4Addr::LOCALHOST.into()],
            Some(Ipv4Addr::LOCALHOST.into())
        ))
    );
    let a = ask(dns, "[::1]", QueryKind::Address, None).await;
    assert_eq!(
        a,
        Ok(Answer::addresses(vec![Ipv6Addr::LOCALHOST.into()], None))
    );
    let a = ask(dns, "::1", QueryKind::Address, None).await;
    assert_eq!(
        a,
        Ok(Answer::addresses(vec![Ipv6Addr::LOCALHOST.into()], None))
    );
    assert!(started.elapsed() < QUERY_TIMEOUT, "no lookup for a literal");
}

/// A server that never answers makes every kind of query an error naming it, within
/// the resolver's tries (not hickory's defaults of 5 s and three tries).
pub async fn check_silent<P: RuntimeProvider>(dns: &Dns<P>, server: SocketAddr) {
    let bound = QUERY_TIMEOUT * u32::try_from(QUERY_RETRIES + 1).unwrap() + Duration::from_secs(3);
    // All three at once: each waits out the same tries.
    let timed = |host: &'static str, kind| async move {
        let started = Instant::now();
        let result = ask(dns, host, kind, None).await;
        (kind, result, started.elapsed())
    };
    let (a, (b, c)) = futures_lite::future::zip(
        timed("sip.example.test", QueryKind::Address),
        futures_lite::future::zip(
            timed("_sip._udp.example.test", QueryKind::Srv),
            timed("example.test", QueryKind::Naptr),
        ),
    )
    .await;
    for (kind, result, took) in [a, b, c] {
        assert_eq!(
            result,
            Err(format!("DNS server {server} did not answer")),
            "{kind:?}"
        );
        assert!(took < bound, "{kind:?} took {took:?}");
    }
}
