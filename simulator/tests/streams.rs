//! Stream links (issue 10's TCP): TCP providers against the registrar models over
//! modelled connections — one shared connection per registrar, REGISTERs framed on it
//! and read back in random chunks — and the faults of a stream (a reset, a close, a
//! listener that refuses, one that closes after every answer, a partition that times
//! a connection out), each run with every invariant checked after every step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use simulator::check::KnownIssues;
use simulator::generate::generate;
use simulator::models::registrar::RegistrarConfig;
use simulator::net::{Cut, LinkConfig};
use simulator::scenario::{Fault, SipTransport, StreamMode, Target};
use simulator::trace::TraceMode;
use simulator::{run, Report, RunOptions, Scenario};
use std::time::Duration;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// One registrar on a WAN link, `tcp` TCP accounts and `udp` UDP ones on it.
fn world(name: &str, tcp: usize, udp: usize) -> Scenario {
    let mut s = Scenario::new(name, 11);
    s.add_registrar(RegistrarConfig::default(), LinkConfig::wan());
    for i in 0..tcp + udp {
        let p = s.add_provider(0);
        if i < tcp {
            s.providers[p].transport = SipTransport::Tcp;
        }
    }
    s.backend_link = LinkConfig::fixed(Duration::from_millis(5));
    s.core.sync_interval = None;
    s.heal_at = secs(900);
    s.shutdown_grace = Some(secs(10));
    s
}

fn run_full(s: Scenario) -> Report {
    let r = run(
        s,
        RunOptions {
            trace: TraceMode::Full,
            stop_at_first: false,
            keep_patch_log: true,
            known: KnownIssues::open(),
        },
    );
    assert!(r.passed(), "{}", r.failure_text(80));
    r
}

fn lines<'a>(r: &'a Report, needle: &str) -> Vec<&'a String> {
    r.trace.iter().filter(|l| l.contains(needle)).collect()
}

/// The trace time of a line (`+   12.345s  …`).
fn at(line: &str) -> f64 {
    line.trim_start_matches('+')
        .split_whitespace()
        .next()
        .and_then(|t| t.trim_end_matches('s').parse().ok())
        .unwrap()
}

#[test]
fn tcp_accounts_share_one_connection_and_udp_ones_stay_datagrams() {
    let r = run_full(world("share", 3, 1));
    assert_eq!(
        r.stats.stream_connects, 1,
        "one connection for three accounts"
    );
    let on_stream = lines(&r, "conn#1 trunkline => reg-0  REGISTER");
    let datagrams = lines(&r, "trunkline -> reg-0  REGISTER");
    assert!(
        on_stream.len() >= 6,
        "a challenge and an answer each: {on_stream:?}"
    );
    // The UDP account's REGISTERs are datagrams, the TCP accounts' never are (the
    // register-on-its-transport invariant also checks the Via and Contact of each).
    let authorized_as = |l: &&String, user: &str| l.contains(&format!("user={user},"));
    assert!(datagrams.iter().any(|l| authorized_as(l, "u4")));
    assert!(!datagrams
        .iter()
        .any(|l| ["u1", "u2", "u3"].iter().any(|u| authorized_as(l, u))));
    assert!(!on_stream.iter().any(|l| authorized_as(l, "u4")));
    assert!(r.stats.stream_reads > 0);
    let connected = lines(&r, "conn#1  connected");
    assert_eq!(connected.len(), 1);
}

#[test]
fn a_reset_and_a_close_each_bring_a_new_connection_and_a_new_registration() {
    let mut s = world("drops", 2, 0);
    s.at(
        secs(300),
        Fault::DropConnections {
            registrar: 0,
            reset: true,
        },
    );
    s.at(
        secs(600),
        Fault::DropConnections {
            registrar: 0,
            reset: false,
        },
    );
    let r = run_full(s);
    assert_eq!(r.stats.stream_connects, 3, "{:#?}", lines(&r, "conn#"));
    assert_eq!(
        r.stats.reregistrations_checked, 4,
        "both accounts owed a new registration after each drop"
    );
    let reset = lines(&r, "conn#1  closed by reg-0 (connection reset by peer)");
    let closed = lines(&r, "conn#2  closed by reg-0");
    assert_eq!((reset.len(), closed.len()), (1, 1));
    // Registered again on the new connection within a second of each drop.
    for (conn, dropped) in [("conn#2", 300.0), ("conn#3", 600.0)] {
        let again = lines(&r, &format!("{conn} reg-0 => trunkline  200 OK"));
        assert!(
            again.first().is_some_and(|l| at(l) < dropped + 1.0),
            "{conn}: {again:?}"
        );
    }
}

#[test]
fn a_refusing_listener_fails_the_registrations_until_it_accepts_again() {
    let mut s = world("refuse", 2, 1);
    s.at(
        Duration::ZERO,
        Fault::Streams {
            registrar: 0,
            mode: StreamMode::Refuse,
        },
    );
    s.at(
        secs(120),
        Fault::Streams {
            registrar: 0,
            mode: StreamMode::Accept,
        },
    );
    let r = run_full(s);
    let refused = lines(&r, "refused");
    assert!(!refused.is_empty() && refused.iter().all(|l| at(l) < 121.0));
    let failed = lines(&r, "failed: connection refused\"");
    assert!(!failed.is_empty(), "reported with its cause");
    // The UDP account at the same registrar is unaffected.
    assert!(lines(&r, "p3 status=registered")
        .first()
        .is_some_and(|l| at(l) < 5.0));
}

#[test]
fn a_listener_that_closes_after_each_answer_is_backed_off_not_looped() {
    let mut s = world("close-after-answer", 1, 0);
    s.at(
        Duration::ZERO,
        Fault::Streams {
            registrar: 0,
            mode: StreamMode::CloseAfterAnswer,
        },
    );
    s.at(
        secs(600),
        Fault::Streams {
            registrar: 0,
            mode: StreamMode::Accept,
        },
    );
    let r = run_full(s);
    let connects: Vec<f64> = lines(&r, "trunkline -> reg-0  connect tcp")
        .iter()
        .map(|l| at(l))
        .collect();
    let during: Vec<f64> = connects.into_iter().filter(|t| *t < 600.0).collect();
    // At a constant pace it would be a connection every few seconds (150 in 10
    // minutes); each close within 64·T1 of registering continues the run of failures,
    // whose backoff doubles.
    assert!(
        (3..=12).contains(&during.len()),
        "{} connections: {during:?}",
        during.len()
    );
    let last_gap = during.windows(2).map(|p| p[1] - p[0]).next_back().unwrap();
    assert!(last_gap > 60.0, "the backoff grows: {during:?}");
}

#[test]
fn a_partition_holds_the_bytes_and_then_times_the_connection_out() {
    let mut s = world("partition", 1, 0);
    s.at(
        secs(100),
        Fault::Partition {
            target: Target::Registrar(0),
            cut: Cut::Both,
        },
    );
    // A re-register order while cut off: its REGISTER waits in the stalled stream.
    s.at(
        secs(110),
        Fault::Command(simulator::scenario::SimCommand::Reregister { provider: 0 }),
    );
    s.at(
        secs(400),
        Fault::Repair {
            target: Target::Registrar(0),
        },
    );
    let r = run_full(s);
    let stalled = lines(&r, "[stalled]");
    assert!(
        !stalled.is_empty(),
        "the REGISTER was held by the partition"
    );
    let timed_out = lines(&r, "closed by network (connection timed out)");
    assert_eq!(timed_out.len(), 1);
    assert!((229.0..232.0).contains(&at(timed_out[0])), "{timed_out:?}");
    // After the repair it registers on a new connection.
    assert!(lines(&r, "p1 status=registered")
        .iter()
        .any(|l| at(l) > 400.0));
}

/// Over the generated worlds the sweep runs, TCP providers appear, their connections
/// drop and are refused, and the core reads messages cut anywhere and several at once.
#[test]
fn generated_worlds_cover_stream_links() {
    let (mut worlds, mut connects, mut partial, mut several, mut ends, mut owed) =
        (0, 0, 0, 0, 0, 0);
    for seed in 0..48 {
        let s = generate(seed);
        if s.providers.iter().any(|p| p.sip_transport().is_stream()) {
            worlds += 1;
        }
        let r = run(s, RunOptions::default());
        assert!(r.passed(), "seed {seed}: {}", r.failure_text(20));
        connects += r.stats.stream_connects;
        partial += r.stats.stream_reads_partial;
        several += r.stats.stream_reads_several;
        ends += r.stats.stream_ends;
        owed += r.stats.reregistrations_checked;
    }
    assert!(
        worlds >= 20,
        "{worlds} of 48 worlds have TCP or TLS providers"
    );
    assert!(
        connects > 100 && ends > 20,
        "{connects} connects, {ends} ends"
    );
    assert!(partial > 100, "{partial} reads cut a message");
    assert!(several > 10, "{several} reads held several messages");
    assert!(owed > 5, "{owed} re-registrations after a drop checked");
}

#[test]
fn pinged_connections_are_answered_and_stay_open() {
    let mut s = world("keepalive", 1, 0);
    s.core.keepalive = Some(secs(30));
    let r = run_full(s);
    assert_eq!(r.stats.stream_connects, 1, "{:#?}", lines(&r, "conn#"));
    // Every 30 s a CRLFCRLF ping; each CRLF pong is a read of two bytes.
    let pongs = lines(&r, "read 2 bytes: 0 message(s)");
    assert!(pongs.len() > 250, "{} pongs", pongs.len());
    assert!(lines(&r, "closed by trunkline").is_empty());
}

#[test]
fn a_tls_account_registers_on_a_stream_of_its_own() {
    let mut s = world("tls", 1, 0);
    let p = s.add_provider(0);
    s.providers[p].transport = SipTransport::Tls;
    let r = run_full(s);
    assert_eq!(
        r.stats.stream_connects, 2,
        "one per transport to one registrar"
    );
    // register-on-its-transport checked SIP/2.0/TLS and ;transport=tls on each.
    assert!(lines(&r, "conn#2 trunkline => reg-0  REGISTER").len() >= 2);
}
