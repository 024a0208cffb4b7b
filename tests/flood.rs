//! End to end: a registration granted 20 s stays registered at a real Kamailio while
//! another loopback source floods trunkline's SIP port with garbage (issue 8, item 9):
//! the garbage is dropped cheaply, and the registrar's answers, which arrive on a
//! socket of their own, are neither lost in the kernel nor starved.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use trunkline_tests::flood::{flood, Kind};
use trunkline_tests::{net, Kamailio, Trunkline};

/// Refreshes of the 20 s grant that must happen under the flood.
const REFRESHES: u64 = 2;
/// The flood's rate: as fast as one socket goes (0). One sender here reaches far more
/// than the debug build this test runs can drain, so the kernel drops datagrams at
/// the full main socket; before registrar sockets the registrar's answers were
/// dropped with them and the binding lapsed (scripts/bench-flood.sh measures the
/// release build the same way).
const RATE: u64 = 0;
/// The flood's bound in datagrams; it is stopped as soon as the refreshes are seen,
/// about 20 s in.
const MAX_DATAGRAMS: u64 = 50_000_000;

/// Datagrams the kernel dropped at full receive buffers of sockets on `port`
/// (the last column of /proc/net/udp).
fn kernel_drops(port: u16) -> u64 {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let local_port = cols.get(1)?.rsplit(':').next()?;
            (u16::from_str_radix(local_port, 16).ok()? == port)
                .then(|| cols.last()?.parse::<u64>().ok())
                .flatten()
        })
        .sum()
}

/// REGISTERs the registrar has received, retransmissions included.
async fn registers_received(kamailio: &Kamailio) -> u64 {
    let stats = kamailio.kamcmd(&["stats.get_statistics", "all"]).await;
    counter(&stats, "core:rcv_requests_register =")
}

fn counter(page: &str, sample: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_registration_survives_a_garbage_flood_from_another_source() {
    let kamailio = Kamailio::start().await;
    let user = "short-flood";
    let workdir = tempfile::tempdir().unwrap();
    let config = workdir.path().join("trunkline.toml");
    let sip_port = net::free_udp_port();
    std::fs::write(
        &config,
        format!(
            "[sip]\nport = {sip_port}\n\n[[providers]]\nid = \"p-flood\"\nname = \"flood\"\n\
             host = \"127.0.0.1\"\nport = {}\nusername = \"{user}\"\npassword = \"{}\"\n",
            kamailio.port(),
            kamailio.password(user)
        ),
    )
    .unwrap();
    let admin_port = net::free_tcp_port();
    let mut t = Trunkline::start_in(
        workdir.path(),
        &["run", "--config", config.to_str().unwrap()],
        &[
            ("SIP_LISTEN_ADDRESS", "127.0.0.1".to_owned()),
            ("SIP_PUBLIC_ADDRESS", "127.0.0.1".to_owned()),
            ("ADMIN_LISTEN", format!("127.0.0.1:{admin_port}")),
            ("LOG_FORMAT", "json".to_owned()),
            ("LOG_LEVEL", "info".to_owned()),
        ],
    )
    .await;
    t.wait_for_log("p-flood registered", |lines: &[Value]| {
        lines
            .iter()
            .any(|l| l["provider_id"] == "p-flood" && l["status"] == "registered")
    })
    .await;
    let first = kamailio.bindings_of(user).await;
    assert_eq!(first.len(), 1, "{first:?}");
    let first_cseq = first[0].cseq;
    let drops_before = kernel_drops(sip_port);
    let registers_before = registers_received(&kamailio).await;

    // Garbage from another loopback address (so no triage can take it for the
    // registrar at 127.0.0.1).
    let stop = Arc::new(AtomicBool::new(false));
    let target: SocketAddr = ([127, 0, 0, 1], sip_port).into();
    let flooder = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            flood(
                ([127, 0, 0, 2], 0).into(),
                target,
                Kind::Mixed,
                RATE,
                MAX_DATAGRAMS,
                Duration::from_secs(60),
                &stop,
            )
        })
    };

    // The binding must be there at every look until two refreshes have gone through
    // (bounded poll: Kamailio has no event to await).
    let mut looks = 0u64;
    let mut last_cseq;
    let refreshed = loop {
        let bindings = kamailio.bindings_of(user).await;
        looks += 1;
        assert_eq!(
            bindings.len(),
            1,
            "the binding lapsed under the flood (look {looks}): {bindings:?}\n{}",
            t.stdout()
        );
        last_cseq = bindings[0].cseq;
        if last_cseq >= first_cseq + REFRESHES {
            break true;
        }
        if flooder.is_finished() {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    stop.store(true, Ordering::Relaxed);
    let report = flooder.join().unwrap().unwrap();
    assert!(
        refreshed,
        "the flood ended ({} datagrams) before {REFRESHES} refreshes reached the registrar",
        report.sent
    );

    // No answer of the registrar was lost: every REGISTER it received was a new one (a
    // new CSeq), none a retransmission after a lost answer. (Before registrar sockets
    // the kernel dropped answers with the flood at the shared socket, and trunkline
    // retransmitted.)
    let received = registers_received(&kamailio).await - registers_before;
    let new_requests = last_cseq - first_cseq;
    assert_eq!(
        received, new_requests,
        "the registrar received {received} REGISTERs for {new_requests} new CSeqs: \
         answers were lost under the flood and trunkline retransmitted"
    );

    // The flood was more than trunkline could take (so it would have cost answers
    // on a shared socket), and what it took was dropped cheaply, counted by reason.
    let overflowed = kernel_drops(sip_port).saturating_sub(drops_before);
    assert!(
        overflowed > 0,
        "the flood of {} never filled trunkline's socket: the test proves nothing",
        report.sent
    );
    let page = reqwest::get(format!("http://127.0.0.1:{admin_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dense = counter(
        &page,
        "trunkline_sip_dropped_total{reason=\"too_many_headers\"}",
    );
    let forged = counter(
        &page,
        "trunkline_sip_dropped_total{reason=\"unknown_source\"}",
    );
    assert!(
        dense > 0 && forged > 0,
        "flood of {} not counted as dropped:\n{page}",
        report.sent
    );
    let exited = t.terminate().await;
    assert!(exited.status.success(), "{}", exited.stderr);
}
