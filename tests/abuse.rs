//! Abuse of the stream listeners (issue 10, "Limits against abuse") against the
//! `trunkline` binary: a client that opens many connections, one that sends a byte a
//! second, one that never speaks, a TLS client that never finishes its handshake, and
//! one that sends a 10 MB message. trunkline closes each offending connection (and
//! only it), counts it in `/metrics`, and a registration at a real Kamailio stays
//! registered throughout.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use trunkline_tests::tls::TestCa;
use trunkline_tests::{net, Backend, Kamailio, Provider, Trunkline, WAIT_LIMIT};

const ALICE: &str = "p-alice";

struct Rig {
    _kamailio: Kamailio,
    backend: Backend,
    trunkline: Trunkline,
    sip: SocketAddr,
    tls: SocketAddr,
    metrics: String,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// trunkline with a TLS listener (a certificate of a test CA) and one UDP
    /// provider registered at Kamailio.
    async fn start() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new(dir.path(), "abuse");
        let ours = ca.issue(
            "trunkline",
            std::net::Ipv4Addr::LOCALHOST.into(),
            "trunkline.test",
        );
        let kamailio = Kamailio::start().await;
        let api_key = format!("api-key-{}", trunkline_tests::random_hex(16));
        let backend = Backend::start(&api_key).await;
        backend.set_providers(&[Provider::udp(
            ALICE,
            "alice",
            &kamailio.password("alice"),
            kamailio.addr(),
        )]);
        let sip_port = net::free_udp_port();
        let tls_port = net::free_tcp_port();
        let admin_port = net::free_tcp_port();
        let mut env = trunkline_tests::trunkline::loopback_env(sip_port);
        env.extend([
            ("BACKEND_URL", backend.url()),
            ("API_KEY", api_key),
            ("SIP_TLS_PORT", tls_port.to_string()),
            ("SIP_TLS_CERT_FILE", ours.cert_file.display().to_string()),
            ("SIP_TLS_KEY_FILE", ours.key_file.display().to_string()),
            ("SIP_TLS_CA_FILE", ca.cert_file.display().to_string()),
            ("ADMIN_LISTEN", format!("127.0.0.1:{admin_port}")),
        ]);
        let mut trunkline = Trunkline::start(&["run"], &env).await;
        trunkline
            .run_until(backend.wait_for_status(ALICE, "registered"))
            .await;
        Rig {
            _kamailio: kamailio,
            backend,
            trunkline,
            sip: SocketAddr::from(([127, 0, 0, 1], sip_port)),
            tls: SocketAddr::from(([127, 0, 0, 1], tls_port)),
            metrics: format!("http://127.0.0.1:{admin_port}/metrics"),
            _dir: dir,
        }
    }

    /// `trunkline_sip_connections_total{event="…"}` now.
    async fn connections(&mut self, event: &str) -> u64 {
        let url = self.metrics.clone();
        let page = self
            .trunkline
            .run_until(async move { reqwest::get(&url).await.unwrap().text().await.unwrap() })
            .await;
        let sample = format!("trunkline_sip_connections_total{{event=\"{event}\"}}");
        page.lines()
            .find_map(|l| l.strip_prefix(&sample)?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The registration is still registered: no PATCH since the first says otherwise.
    fn still_registered(&self) {
        let patches = self.backend.patches_for(ALICE);
        let last = patches.last().expect("a PATCH for alice");
        assert_eq!(
            last.register_status(),
            Some("registered"),
            "{}",
            self.backend.history_text()
        );
    }
}

/// Reads until the peer closes (EOF or reset), bounded: what trunkline does to an
/// offending connection, observed from outside.
async fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let wait = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(WAIT_LIMIT, wait)
        .await
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_connections_from_one_source_is_capped() {
    let mut rig = Rig::start().await;
    // 64 per source are accepted; the rest are closed at once.
    let mut open = Vec::new();
    for _ in 0..80 {
        open.push(TcpStream::connect(rig.sip).await.unwrap());
    }
    let mut closed = 0;
    for s in open.iter_mut().skip(64) {
        if closed_by_peer(s).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 16, "every connection past 64 closed");
    assert_eq!(rig.connections("refused_source_limit").await, 16);
    assert_eq!(rig.connections("accepted").await, 64);
    // One of the 64 still speaks SIP.
    let first = open.first_mut().unwrap();
    let options =
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKab1\r\n\
                   From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: abuse-1\r\n\
                   CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    first.write_all(options.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT_LIMIT, first.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("SIP/2.0 200 OK"));
    rig.still_registered();
    drop(open);
    rig.trunkline.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_silent_and_half_handshaken_clients_are_cut_off_and_a_huge_message_at_once() {
    let mut rig = Rig::start().await;
    // A 10 MB message: closed as soon as its announced size passes the limit.
    let mut huge = TcpStream::connect(rig.sip).await.unwrap();
    let head =
        "MESSAGE sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKh\r\n\
                Content-Length: 10485760\r\n\r\n";
    huge.write_all(head.as_bytes()).await.unwrap();
    let body = vec![b'x'; 1 << 20];
    for _ in 0..10 {
        if huge.write_all(&body).await.is_err() {
            break; // closed already
        }
    }
    assert!(
        closed_by_peer(&mut huge).await,
        "the huge message's connection closed"
    );
    assert_eq!(rig.connections("closed_framing").await, 1);

    // Silent, a TLS client that stops after a partial ClientHello, and one that sends
    // a request a byte a second: each closed by the 32 s deadline.
    let mut silent = TcpStream::connect(rig.sip).await.unwrap();
    let mut half_tls = TcpStream::connect(rig.tls).await.unwrap();
    half_tls
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    let mut slow = TcpStream::connect(rig.sip).await.unwrap();
    let trickle = async {
        for b in
            b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKs\r\n"
        {
            if slow.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    let (silent_closed, tls_closed, ()) = rig
        .trunkline
        .run_until(async {
            tokio::join!(
                closed_by_peer(&mut silent),
                closed_by_peer(&mut half_tls),
                trickle
            )
        })
        .await;
    assert!(silent_closed && tls_closed);
    assert!(
        closed_by_peer(&mut slow).await,
        "the trickling request's connection closed"
    );
    assert_eq!(
        rig.connections("closed_slow").await,
        3,
        "silent, half TLS, slow"
    );
    rig.still_registered();
    rig.trunkline.terminate().await;
}
