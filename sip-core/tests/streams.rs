//! Requests on TCP/TLS connections (issue 10, transport-neutral core): a listener's
//! connection is named by the core ([`Controller::accept`]), its bytes are framed in
//! any chunking, answers and a call's requests go back on it, and the limits close
//! only the connection that broke them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// Virtual time is anchored once with `Instant::now()`; everything after adds durations.
#![allow(clippy::disallowed_methods)]

mod support;

use sip_core::{ConnId, Flow, Input, Transport};
use std::net::SocketAddr;
use std::time::Duration;
use support::calls::{
    call_config, caller, first_line, in_dialog, invite, livekit, response, sent_to, DID, SDP,
};
use support::{config, header, registered, World, LOCAL, REGISTRAR};

fn local() -> SocketAddr {
    LOCAL.parse().unwrap()
}

fn accept(w: &mut World, from: SocketAddr) -> Option<ConnId> {
    let now = w.now;
    let conn = w.core.accept(now, Transport::Tcp, local(), from);
    w.input(Input::Command(sip_core::Command::Resync)); // drains the outputs
    conn
}

fn feed(w: &mut World, conn: ConnId, bytes: &[u8]) {
    w.input(Input::Received {
        conn,
        bytes: bytes.to_vec(),
    });
}

/// What the core wrote on `conn`, in order.
fn written(w: &World, conn: ConnId) -> Vec<String> {
    w.written
        .iter()
        .filter(|(_, f, _)| f.conn() == Some(conn))
        .map(|(_, _, m)| m.clone())
        .collect()
}

fn options(branch: &str) -> String {
    format!(
        "OPTIONS sip:{LOCAL} SIP/2.0\r\nVia: SIP/2.0/TCP {REGISTRAR}:40000;branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:ping@{REGISTRAR}>;tag=p\r\nTo: <sip:{LOCAL}>\r\n\
         Call-ID: ping-{branch}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

fn source() -> SocketAddr {
    format!("{REGISTRAR}:40000").parse().unwrap()
}

#[test]
fn a_request_in_any_chunking_is_answered_on_its_connection() {
    let mut w = World::new(
        config(),
        support::registrar::Registrar::new(&[], Default::default()),
        vec![],
    );
    let conn = accept(&mut w, source()).unwrap();
    let two = format!("{}{}", options("a"), options("b"));
    // Cut across the first message's head, its end and the second's start.
    for chunk in [&two[..7], &two[7..120], &two[120..200], &two[200..]] {
        feed(&mut w, conn, chunk.as_bytes());
    }
    let out = written(&w, conn);
    assert_eq!(out.len(), 2, "{out:?}");
    for (m, branch) in out.iter().zip(["a", "b"]) {
        assert_eq!(first_line(m), "SIP/2.0 200 OK");
        assert!(header(m, "Via")
            .unwrap()
            .contains(&format!("z9hG4bK{branch}")));
    }
    assert!(
        w.written.iter().all(|(_, f, _)| *f == Flow::Tcp(conn)),
        "on the connection, as TCP"
    );
    assert!(w.sent.is_empty(), "nothing as a datagram: {:?}", w.sent);
}

#[test]
fn a_keepalive_ping_gets_its_pong_and_a_pong_nothing() {
    let mut w = World::new(
        config(),
        support::registrar::Registrar::new(&[], Default::default()),
        vec![],
    );
    let conn = accept(&mut w, source()).unwrap();
    feed(&mut w, conn, b"\r\n\r\n");
    assert_eq!(written(&w, conn), ["\r\n"], "RFC 5626 §4.4.1");
    feed(&mut w, conn, b"\r\n");
    assert_eq!(written(&w, conn).len(), 1);
    assert_eq!(w.core.stats().keepalives, 2);
}

#[test]
fn a_badly_framed_stream_closes_its_connection_only() {
    let mut w = World::new(
        config(),
        support::registrar::Registrar::new(&[], Default::default()),
        vec![],
    );
    let bad = accept(&mut w, source()).unwrap();
    let good = accept(&mut w, "192.0.2.11:40001".parse().unwrap()).unwrap();
    let no_length = options("x").replace("Content-Length: 0\r\n", "");
    feed(&mut w, bad, no_length.as_bytes());
    assert_eq!(w.closed, [bad]);
    assert!(
        written(&w, bad).is_empty(),
        "nothing answered on a stream we cannot frame"
    );
    assert_eq!(w.core.stats().connections.get("closed_framing"), Some(&1));
    // Later bytes for it are ignored; the other connection works on.
    feed(&mut w, bad, options("y").as_bytes());
    feed(&mut w, good, options("z").as_bytes());
    assert!(written(&w, bad).is_empty());
    assert_eq!(written(&w, good).len(), 1, "{:?} {:?}", w.written, w.events);
}

#[test]
fn connections_past_a_limit_are_refused_and_counted() {
    let mut cfg = config();
    cfg.streams.max_per_source = 2;
    cfg.streams.max_connections = 3;
    let mut w = World::new(
        cfg,
        support::registrar::Registrar::new(&[], Default::default()),
        vec![],
    );
    let a: SocketAddr = "192.0.2.20:1".parse().unwrap();
    assert!(accept(&mut w, a).is_some() && accept(&mut w, a).is_some());
    assert_eq!(accept(&mut w, a), None, "a third from one source");
    assert!(accept(&mut w, "192.0.2.21:1".parse().unwrap()).is_some());
    assert_eq!(
        accept(&mut w, "192.0.2.22:1".parse().unwrap()),
        None,
        "a fourth in all"
    );
    let stats = w.core.stats();
    assert_eq!(stats.connections.get("accepted"), Some(&3));
    assert_eq!(stats.connections.get("refused_source_limit"), Some(&1));
    assert_eq!(stats.connections.get("refused_total_limit"), Some(&1));
}

#[test]
fn a_message_sent_a_byte_a_second_is_cut_off() {
    let mut w = World::new(
        config(),
        support::registrar::Registrar::new(&[], Default::default()),
        vec![],
    );
    let conn = accept(&mut w, source()).unwrap();
    // A first message in time, then the slow one.
    feed(&mut w, conn, options("a").as_bytes());
    let slow = options("b");
    for b in slow.as_bytes().iter().take(40) {
        w.run_for(Duration::from_secs(1));
        if !w.closed.is_empty() {
            break;
        }
        feed(&mut w, conn, &[*b]);
    }
    assert_eq!(w.closed, [conn], "closed at its deadline (32 s)");
    assert_eq!(w.core.stats().connections.get("closed_slow"), Some(&1));
    assert_eq!(written(&w, conn).len(), 1, "the first message was answered");
}

#[test]
fn a_connection_that_never_speaks_is_closed_and_an_idle_one_later() {
    let mut w = World::new(
        config(),
        support::registrar::Registrar::new(&[], Default::default()),
        vec![],
    );
    let mute = accept(&mut w, source()).unwrap();
    let idle = accept(&mut w, "192.0.2.30:1".parse().unwrap()).unwrap();
    feed(&mut w, idle, b"\r\n\r\n");
    w.run_for(Duration::from_secs(33));
    assert_eq!(
        w.closed,
        [mute],
        "no first frame within 32 s (a TLS handshake that never ends)"
    );
    w.run_for(Duration::from_secs(600));
    assert_eq!(w.closed, [mute, idle], "then nothing for the idle timeout");
    assert_eq!(w.core.stats().connections.get("closed_idle"), Some(&1));
}

/// The provider's INVITE over its TCP connection (its address is the registrar's, so
/// it is admitted by source).
fn tcp_invite(call_id: &str) -> String {
    invite(call_id, SDP).replace("Via: SIP/2.0/UDP", "Via: SIP/2.0/TCP")
}

#[test]
fn a_call_over_tcp_is_answered_and_hung_up_on_its_connection() {
    let mut w = registered(call_config());
    let conn = accept(&mut w, caller()).unwrap();
    let before = w.sent.len();
    feed(&mut w, conn, tcp_invite("t1").as_bytes());
    assert_eq!(
        written(&w, conn)
            .iter()
            .map(|m| first_line(m))
            .collect::<Vec<_>>(),
        ["SIP/2.0 100 Trying"]
    );
    assert!(
        sent_to(&w, caller(), before).is_empty(),
        "nothing to the caller as UDP"
    );
    // The destination leg is UDP; it answers.
    let out = sent_to(&w, livekit(), before)
        .into_iter()
        .find(|m| m.starts_with("INVITE "))
        .expect("our INVITE to the destination");
    assert!(header(&out, "Via").unwrap().starts_with("SIP/2.0/UDP "));
    let ok = response(
        &out,
        "200 OK",
        Some("lk"),
        &format!(
            "Contact: <sip:lk@{}>\r\nContent-Type: application/sdp\r\n",
            livekit()
        ),
        SDP,
    );
    support::calls::feed(&mut w, livekit(), &ok);
    let ours = written(&w, conn);
    assert_eq!(first_line(&ours[1]), "SIP/2.0 200 OK");
    let to = header(&ours[1], "To").unwrap().to_owned();
    let ack = in_dialog(
        "ACK",
        "sip:trunkline@198.51.100.1:5070",
        &format!("{REGISTRAR}:5060"),
        &format!("\"Bob\" <sip:+15550100@{REGISTRAR}>;tag=f-t1"),
        &to,
        "t1",
        1,
        "",
    )
    .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    feed(&mut w, conn, ack.as_bytes());
    assert_eq!(w.core.active_calls(), 1);
    // We hang up (the admin API's DELETE): the caller's BYE goes on its connection.
    let id = w.core.calls()[0].id;
    w.input(Input::Command(sip_core::Command::HangUp { id }));
    let bye = written(&w, conn)
        .into_iter()
        .find(|m| m.starts_with("BYE "))
        .expect("a BYE to the caller on its connection");
    assert!(
        header(&bye, "Via").unwrap().starts_with("SIP/2.0/TCP "),
        "{bye}"
    );
    assert!(header(&bye, "To").unwrap().contains("tag=f-t1"));
    let _ = DID;
}

fn tcp_provider(id: &str, user: &str) -> sip_core::ProviderSpec {
    sip_core::ProviderSpec {
        transport: Some("tcp".into()),
        ..support::provider(id, user, "pw")
    }
}

fn tcp_world(ids: &[(&str, &str)]) -> World {
    tcp_world_with(config(), ids)
}

fn tcp_world_with(cfg: sip_core::Config, ids: &[(&str, &str)]) -> World {
    let accounts: Vec<(&str, &str)> = ids.iter().map(|(_, u)| (*u, "pw")).collect();
    let registrar = support::registrar::Registrar::new(&accounts, Default::default());
    let providers = ids.iter().map(|(id, u)| tcp_provider(id, u)).collect();
    World::new(cfg, registrar, providers)
}

fn status(w: &World, id: &str) -> Option<(sip_core::RegisterStatus, Option<String>)> {
    w.last_report(id)
        .map(|r| (r.register_status, r.register_error.clone()))
}

fn registrar_addr() -> SocketAddr {
    format!("{REGISTRAR}:5060").parse().unwrap()
}

#[test]
fn tcp_registrations_share_one_connection_and_register_over_it() {
    let mut w = tcp_world(&[("p1", "alice"), ("p2", "bob")]);
    w.run_for(Duration::from_secs(5));
    assert_eq!(
        w.connects.len(),
        1,
        "one connection for both: {:?}",
        w.connects
    );
    let c = &w.connects[0];
    assert_eq!((c.transport, c.remote), (Transport::Tcp, registrar_addr()));
    for id in ["p1", "p2"] {
        assert_eq!(
            status(&w, id).map(|s| s.0),
            Some(sip_core::RegisterStatus::Registered)
        );
    }
    let registers: Vec<&String> = w
        .written
        .iter()
        .filter(|(_, f, m)| *f == Flow::Tcp(c.conn) && m.starts_with("REGISTER "))
        .map(|(_, _, m)| m)
        .collect();
    assert_eq!(registers.len(), 4, "a challenge and an answer each");
    for m in registers {
        assert!(header(m, "Via").unwrap().starts_with("SIP/2.0/TCP "), "{m}");
        assert!(
            header(m, "Contact")
                .unwrap()
                .contains(";transport=tcp;line="),
            "{m}"
        );
    }
    assert!(w.sent.is_empty(), "nothing over UDP: {:?}", w.sent);
}

#[test]
fn a_dropped_connection_is_replaced_and_the_binding_made_again_on_it() {
    let mut w = tcp_world(&[("p1", "alice")]);
    w.run_for(Duration::from_secs(60));
    let first = w.connects[0].conn;
    let before = w.reports_for("p1").len();
    w.input(Input::Closed {
        conn: first,
        error: Some("connection reset by peer".into()),
    });
    let pending = &w.reports_for("p1")[before];
    assert_eq!(pending.register_status, sip_core::RegisterStatus::Pending);
    assert!(
        pending
            .register_error
            .as_deref()
            .is_some_and(|e| e.contains("closed (connection reset by peer)")),
        "{pending:?}"
    );
    w.run_for(Duration::from_secs(2));
    assert_eq!(w.connects.len(), 2, "a new connection at once");
    let second = w.connects[1].conn;
    assert_ne!(second, first);
    assert_eq!(
        status(&w, "p1"),
        Some((sip_core::RegisterStatus::Registered, None))
    );
    assert!(w
        .written
        .iter()
        .any(|(_, f, m)| *f == Flow::Tcp(second) && m.starts_with("REGISTER ")));
}

#[test]
fn a_connection_that_cannot_be_opened_fails_the_registration_and_backs_off() {
    let mut w = tcp_world(&[("p1", "alice")]);
    w.auto_connect = false;
    w.run_for(Duration::from_secs(1));
    let conn = w.connects[0].conn;
    w.input(Input::Closed {
        conn,
        error: Some("connection refused".into()),
    });
    let (st, err) = status(&w, "p1").unwrap();
    assert_eq!(st, sip_core::RegisterStatus::Failed);
    assert_eq!(
        err.as_deref(),
        Some("the connection to 192.0.2.10:5060 failed: connection refused")
    );
    // No new connection before the backoff (5 s at first).
    w.run_for(Duration::from_secs(3));
    assert_eq!(w.connects.len(), 1);
    w.run_for(Duration::from_secs(10));
    assert_eq!(w.connects.len(), 2, "tried again after the backoff");
}

#[test]
fn a_connection_that_closes_right_after_each_registration_is_backed_off() {
    let mut w = tcp_world(&[("p1", "alice")]);
    w.run_for(Duration::from_secs(2));
    assert_eq!(
        status(&w, "p1").map(|s| s.0),
        Some(sip_core::RegisterStatus::Registered)
    );
    for _ in 0..5 {
        let conn = w.connects.last().unwrap().conn;
        w.input(Input::Closed { conn, error: None });
        w.run_for(Duration::from_secs(2));
    }
    // Not five new connections in ten seconds: the first close already counted as a
    // failure, with its backoff.
    assert!(w.connects.len() <= 3, "{} connections", w.connects.len());
    let failing = w
        .reports_for("p1")
        .iter()
        .any(|r| r.register_status == sip_core::RegisterStatus::Failed);
    assert!(failing);
}

#[test]
fn a_register_in_flight_fails_when_its_connection_closes_not_at_timer_f() {
    let mut w = tcp_world(&[("p1", "alice")]);
    w.auto_connect = false;
    w.run_for(Duration::from_secs(1));
    let conn = w.connects[0].conn;
    // Up, but the registrar never answers; then the connection closes.
    w.input(Input::Connected {
        conn,
        local: "198.51.100.1:40001".parse().unwrap(),
    });
    w.registrar_delay = Duration::from_secs(3600);
    w.run_for(Duration::from_secs(1));
    assert!(w.written.iter().any(|(_, _, m)| m.starts_with("REGISTER ")));
    let at = w.elapsed();
    w.input(Input::Closed { conn, error: None });
    let (st, err) = status(&w, "p1").unwrap();
    assert_eq!(st, sip_core::RegisterStatus::Failed);
    assert!(err.unwrap().contains("closed by the peer"));
    assert_eq!(w.elapsed(), at, "at once");
}

#[test]
fn a_destination_with_transport_tcp_is_called_over_a_connection_of_ours() {
    let mut cfg = call_config();
    cfg.default_domain = Some(format!("{};transport=tcp", livekit()));
    let mut w = registered(cfg);
    support::calls::feed(&mut w, caller(), &invite("d1", SDP));
    let c = w
        .connects
        .last()
        .expect("a connection to the destination")
        .clone();
    assert_eq!((c.transport, c.remote), (Transport::Tcp, livekit()));
    let out = written(&w, c.conn)
        .into_iter()
        .find(|m| m.starts_with("INVITE "))
        .expect("our INVITE on it");
    assert!(
        header(&out, "Via").unwrap().starts_with("SIP/2.0/TCP "),
        "{out}"
    );
    assert!(
        header(&out, "Contact")
            .unwrap()
            .ends_with(";transport=tcp>"),
        "{out}"
    );
    // Answered on the connection; no retransmission of our INVITE meanwhile.
    w.run_for(Duration::from_secs(4));
    let invites = written(&w, c.conn)
        .iter()
        .filter(|m| m.starts_with("INVITE "))
        .count();
    assert_eq!(invites, 1, "no Timer A on TCP");
    let ok = response(
        &out,
        "200 OK",
        Some("lk"),
        &format!(
            "Contact: <sip:lk@{};transport=tcp>\r\nContent-Type: application/sdp\r\n",
            livekit()
        ),
        SDP,
    );
    let before = w.sent.len();
    feed(&mut w, c.conn, ok.as_bytes());
    assert_eq!(
        sent_to(&w, caller(), before)
            .iter()
            .map(|m| first_line(m))
            .collect::<Vec<_>>(),
        ["SIP/2.0 200 OK"]
    );
    assert!(
        written(&w, c.conn).iter().any(|m| m.starts_with("ACK ")),
        "the ACK on the same connection"
    );
}

#[test]
fn a_tls_registration_names_the_registrar_for_its_certificate_and_our_tls_port() {
    let registrar = support::registrar::Registrar::new(&[("alice", "pw")], Default::default());
    let provider = sip_core::ProviderSpec {
        transport: Some("tls".into()),
        port: Some(5061),
        ..support::provider("p1", "alice", "pw")
    };
    let cfg = sip_core::Config {
        tls_port: Some(5071),
        ..config()
    };
    let mut w = World::new(cfg, registrar, vec![provider]);
    w.run_for(Duration::from_secs(5));
    let c = &w.connects[0];
    assert_eq!(c.transport, Transport::Tls);
    assert_eq!(
        c.server_name.as_deref(),
        Some(REGISTRAR),
        "checked against the provider's host"
    );
    assert_eq!(
        status(&w, "p1").map(|s| s.0),
        Some(sip_core::RegisterStatus::Registered)
    );
    let register = written(&w, c.conn)
        .into_iter()
        .find(|m| m.starts_with("REGISTER "))
        .unwrap();
    assert!(
        header(&register, "Via")
            .unwrap()
            .starts_with("SIP/2.0/TLS 198.51.100.1:5071;"),
        "{register}"
    );
    assert!(
        header(&register, "Contact")
            .unwrap()
            .contains("@198.51.100.1:5071;transport=tls;line="),
        "{register}"
    );
    assert!(matches!(c.conn, conn if w.written.iter().all(|(_, f, _)| *f == Flow::Tls(conn))));
}

#[test]
fn our_connection_is_pinged_and_one_that_stops_answering_is_replaced() {
    let mut cfg = config();
    cfg.streams.keepalive = Some(Duration::from_secs(30));
    let mut w = tcp_world_with(cfg, &[("p1", "alice")]);
    w.run_for(Duration::from_secs(95));
    let first = w.connects[0].conn;
    let pings = |w: &World| {
        w.written
            .iter()
            .filter(|(_, f, m)| *f == Flow::Tcp(first) && m == "\r\n\r\n")
            .count()
    };
    assert_eq!(pings(&w), 3, "every 30 s (RFC 5626 §4.4.1)");
    assert_eq!(w.connects.len(), 1, "answered: the connection stays");
    // The registrar's side goes silent: 10 s after the next ping the flow has failed,
    // and the registration moves to a new connection.
    w.answer_pings = false;
    w.run_for(Duration::from_secs(40));
    assert_eq!(w.core.stats().connections.get("closed_no_pong"), Some(&1));
    assert!(w.closed.contains(&first));
    assert_eq!(w.connects.len(), 2, "registered again on a new connection");
    assert_eq!(
        status(&w, "p1").map(|s| s.0),
        Some(sip_core::RegisterStatus::Registered)
    );
}

#[test]
fn over_an_outbound_proxy_tls_checks_the_proxys_certificate() {
    let registrar = support::registrar::Registrar::new(&[("alice", "pw")], Default::default());
    let provider = sip_core::ProviderSpec {
        transport: Some("tls".into()),
        outbound_proxy: Some("sip:edge.example:5061".into()),
        ..support::provider("p1", "alice", "pw")
    };
    let mut w = World::new(config(), registrar, vec![provider]);
    w.run_for(Duration::from_secs(2));
    let c = &w.connects[0];
    assert_eq!(
        c.server_name.as_deref(),
        Some("edge.example"),
        "the host we connect to"
    );
}

/// Found by the simulator's seed sweep (seed 12, `connection-churn-bounded`; replay:
/// `SIM_SEED=12 cargo test -p simulator --test sim -- seed_sweep --exact`): a
/// registrar that closes the connection after every answer made us open a new one and
/// REGISTER every 2.5–5 s forever, the status flapping registered/failed (two PATCHes a
/// cycle), because each success reset the backoff that the close within 64·T1 then
/// started again from its first step. The run of failures must go on growing.
#[test]
fn a_connection_closed_after_every_registration_backs_off_further_each_time() {
    let mut w = tcp_world(&[("p1", "alice")]);
    let mut closed = 0;
    let mut at = Vec::new();
    for _ in 0..1200 {
        w.run_for(Duration::from_millis(500));
        let registered =
            status(&w, "p1").map(|s| s.0) == Some(sip_core::RegisterStatus::Registered);
        let open = w.connects.len();
        if registered && open > closed {
            let conn = w.connects[open - 1].conn;
            w.input(Input::Closed { conn, error: None });
            closed = open;
            at.push(w.elapsed().as_secs_f64());
        }
    }
    // 5 s doubling to 5 min with equal jitter: about eight tries in ten minutes, not
    // one every few seconds.
    assert!(
        (3..=10).contains(&w.connects.len()),
        "{} connections in 10 minutes, closed at {at:?}",
        w.connects.len()
    );
    let gaps: Vec<f64> = at.windows(2).map(|p| p[1] - p[0]).collect();
    assert!(
        gaps.last().is_some_and(|g| *g > 60.0),
        "the backoff grows: gaps {gaps:?}"
    );
}
